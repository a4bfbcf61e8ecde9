//! Language modelling on ingot: byte-level BPE tokenizers ([`tokenizer`]) and the corpus,
//! splits and token batches a model trains and evaluates on ([`data`]).

pub mod data;
pub mod tokenizer;

pub use data::{LmData, RandomBatches, SequentialBatches, Split, Work, VALIDATION_WORKS};
pub use tokenizer::{Tokenizer, TrainConfig, END_OF_TEXT};
