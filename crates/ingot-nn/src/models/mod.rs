//! Whole models built from the layers, with Hugging Face's names and config files.

mod bert;
mod decoder;
mod gpt2;

pub use bert::{Bert, BertActivation, BertConfig, Pooling};
pub use decoder::{
    load_hf_weights, Activation, Arch, Decoder, DecoderConfig, KvCache, RopeScaling,
};
pub use gpt2::{Gpt2, Gpt2Config};

/// The Llama name of [`Decoder`], which the training tools and older code use.
pub type Llama = Decoder;
/// The Llama name of [`DecoderConfig`].
pub type LlamaConfig = DecoderConfig;
