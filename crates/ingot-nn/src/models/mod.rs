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

/// Refuses sizes past `(name, value, limit)`: a config file must not make the model's
/// constructor allocate without bound (limits sit far above any published model's).
fn check_limits(op: &str, sizes: &[(&str, usize, usize)]) -> ingot::Result<()> {
    match sizes.iter().find(|(_, v, max)| v > max) {
        Some((k, v, max)) => Err(ingot::Error::invalid(
            op,
            format!("{k} {v} is past the largest supported, {max}"),
        )),
        None => Ok(()),
    }
}
