//! Language modelling on ingot: byte-level BPE tokenizers ([`tokenizer`]), the corpus,
//! splits and token batches a model trains and evaluates on ([`data`]), text generation
//! with sampling and stop conditions ([`generate`]) and chat templates ([`chat`]).

pub mod chat;
pub mod data;
pub mod generate;
pub mod tokenizer;

pub use chat::{ChatTemplate, Message};
pub use data::{LmData, RandomBatches, SequentialBatches, Split, Work, VALIDATION_WORKS};
pub use generate::{
    generate, generate_batch, generate_with_cache, prefill, Finish, GenerateOptions, Generation,
    GenerationConfig, Sampler, Sampling,
};
pub use tokenizer::{Tokenizer, TrainConfig, END_OF_TEXT};
