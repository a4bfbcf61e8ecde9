//! Whole models built from the layers, with Hugging Face's names and config files.

mod gpt2;
mod llama;

pub use gpt2::{Gpt2, Gpt2Config};
pub use llama::{KvCache, Llama, LlamaConfig};
