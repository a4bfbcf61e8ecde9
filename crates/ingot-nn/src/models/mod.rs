//! Whole models built from the layers, with Hugging Face's names and config files.

mod llama;

pub use llama::{KvCache, Llama, LlamaConfig};
