//! Transformer encoder and decoder layers and stacks with PyTorch's structure and names
//! (`self_attn`, `multihead_attn`, `linear1`, `linear2`, `norm1`..`norm3`), batch-first.

use super::{Dropout, LayerNorm, Linear, Mask, MultiHeadAttention};
use crate::module::{visit_child, visit_child_mut, Module, Param, Unary};
use crate::rng;
use ingot::{Array, DType, Error, Result};

/// The feed-forward block's activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeedForwardActivation {
    Relu,
    /// The exact GELU, `x * Phi(x)`.
    Gelu,
}

fn activate(a: FeedForwardActivation, x: &Array) -> Result<Array> {
    match a {
        FeedForwardActivation::Relu => ingot::maximum(x, 0.0),
        FeedForwardActivation::Gelu => {
            let phi = ingot::multiply(
                &ingot::add(
                    &ingot::erf(&ingot::multiply(x, std::f64::consts::FRAC_1_SQRT_2)?)?,
                    1.0,
                )?,
                0.5,
            )?;
            ingot::multiply(x, &phi)
        }
    }
}

/// Sizes and options of a transformer layer (PyTorch's defaults).
#[derive(Clone, Copy, Debug)]
pub struct TransformerConfig {
    pub d_model: usize,
    pub heads: usize,
    pub dim_feedforward: usize,
    pub dropout: f64,
    pub activation: FeedForwardActivation,
    pub layer_norm_eps: f64,
    /// Pre-norm (`x + f(norm(x))`) instead of post-norm (`norm(x + f(x))`).
    pub norm_first: bool,
    pub bias: bool,
    pub dtype: DType,
}

impl TransformerConfig {
    /// PyTorch's defaults: feed-forward 2048, dropout 0.1, relu, eps 1e-5, post-norm.
    pub fn new(d_model: usize, heads: usize) -> TransformerConfig {
        TransformerConfig {
            d_model,
            heads,
            dim_feedforward: 2048,
            dropout: 0.1,
            activation: FeedForwardActivation::Relu,
            layer_norm_eps: 1e-5,
            norm_first: false,
            bias: true,
            dtype: DType::F32,
        }
    }
}

/// The feed-forward block and its dropouts, shared by both layer kinds.
#[derive(Clone)]
struct FeedForward {
    linear1: Linear,
    linear2: Linear,
    dropout: Dropout,
    activation: FeedForwardActivation,
}

impl FeedForward {
    fn new(c: &TransformerConfig, key: &Array) -> Result<FeedForward> {
        let ks = ingot::random::split(key, 2)?;
        Ok(FeedForward {
            linear1: Linear::with(
                c.d_model,
                c.dim_feedforward,
                c.bias,
                &ingot::random::key_at(&ks, 0)?,
                c.dtype,
            )?,
            linear2: Linear::with(
                c.dim_feedforward,
                c.d_model,
                c.bias,
                &ingot::random::key_at(&ks, 1)?,
                c.dtype,
            )?,
            dropout: Dropout::new(c.dropout)?,
            activation: c.activation,
        })
    }
    fn forward(&self, x: &Array) -> Result<Array> {
        let h = activate(self.activation, &self.linear1.forward(x)?)?;
        self.linear2.forward(&self.dropout.forward(&h)?)
    }
}

fn check_config(name: &str, c: &TransformerConfig) -> Result<()> {
    if c.d_model == 0 || c.dim_feedforward == 0 {
        return Err(Error::invalid(
            name,
            format!(
                "d_model {} and dim_feedforward {} must be positive",
                c.d_model, c.dim_feedforward
            ),
        ));
    }
    Ok(())
}

/// Self-attention and a feed-forward block, each with a residual connection and a layer norm.
#[derive(Clone)]
pub struct TransformerEncoderLayer {
    pub self_attn: MultiHeadAttention,
    ff: FeedForward,
    pub norm1: LayerNorm,
    pub norm2: LayerNorm,
    dropout1: Dropout,
    dropout2: Dropout,
    pub norm_first: bool,
}

impl TransformerEncoderLayer {
    pub fn new(c: &TransformerConfig) -> Result<TransformerEncoderLayer> {
        TransformerEncoderLayer::with(c, &rng::next_key()?)
    }

    pub fn with(c: &TransformerConfig, key: &Array) -> Result<TransformerEncoderLayer> {
        check_config("TransformerEncoderLayer", c)?;
        let ks = ingot::random::split(key, 2)?;
        Ok(TransformerEncoderLayer {
            self_attn: MultiHeadAttention::with(
                c.d_model,
                c.heads,
                c.dropout,
                c.bias,
                &ingot::random::key_at(&ks, 0)?,
                c.dtype,
            )?,
            ff: FeedForward::new(c, &ingot::random::key_at(&ks, 1)?)?,
            norm1: LayerNorm::with(&[c.d_model], c.layer_norm_eps, true, c.bias, c.dtype)?,
            norm2: LayerNorm::with(&[c.d_model], c.layer_norm_eps, true, c.bias, c.dtype)?,
            dropout1: Dropout::new(c.dropout)?,
            dropout2: Dropout::new(c.dropout)?,
            norm_first: c.norm_first,
        })
    }

    /// `src (N, L, E)` with an optional attention mask and key padding `(N, L)` (true =
    /// ignore).
    pub fn forward_masked(
        &self,
        src: &Array,
        mask: Option<&Mask>,
        key_padding: Option<&Array>,
    ) -> Result<Array> {
        let sa = |x: &Array| -> Result<Array> {
            self.dropout1
                .forward(&self.self_attn.forward(x, x, x, mask, key_padding)?)
        };
        let ff = |x: &Array| -> Result<Array> { self.dropout2.forward(&self.ff.forward(x)?) };
        if self.norm_first {
            let x = ingot::add(src, &sa(&self.norm1.forward(src)?)?)?;
            ingot::add(&x, &ff(&self.norm2.forward(&x)?)?)
        } else {
            let x = self.norm1.forward(&ingot::add(src, &sa(src)?)?)?;
            self.norm2.forward(&ingot::add(&x, &ff(&x)?)?)
        }
    }
}

impl Module for TransformerEncoderLayer {
    fn visit(&self, f: &mut dyn FnMut(&str, &Param)) {
        visit_child("self_attn", &self.self_attn, f);
        visit_child("linear1", &self.ff.linear1, f);
        visit_child("linear2", &self.ff.linear2, f);
        visit_child("norm1", &self.norm1, f);
        visit_child("norm2", &self.norm2, f);
    }
    fn visit_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
        visit_child_mut("self_attn", &mut self.self_attn, f);
        visit_child_mut("linear1", &mut self.ff.linear1, f);
        visit_child_mut("linear2", &mut self.ff.linear2, f);
        visit_child_mut("norm1", &mut self.norm1, f);
        visit_child_mut("norm2", &mut self.norm2, f);
    }
    fn set_training(&mut self, on: bool) {
        self.self_attn.set_training(on);
        self.ff.dropout.set_training(on);
        self.dropout1.set_training(on);
        self.dropout2.set_training(on);
    }
}

impl Unary for TransformerEncoderLayer {
    fn forward(&self, x: &Array) -> Result<Array> {
        self.forward_masked(x, None, None)
    }
}

/// Self-attention, attention over an encoder's output (`memory`), and a feed-forward block.
#[derive(Clone)]
pub struct TransformerDecoderLayer {
    pub self_attn: MultiHeadAttention,
    pub multihead_attn: MultiHeadAttention,
    ff: FeedForward,
    pub norm1: LayerNorm,
    pub norm2: LayerNorm,
    pub norm3: LayerNorm,
    dropout1: Dropout,
    dropout2: Dropout,
    dropout3: Dropout,
    pub norm_first: bool,
}

/// Masks of a decoder layer's two attentions.
#[derive(Clone, Default)]
pub struct DecoderMasks<'a> {
    pub tgt_mask: Option<&'a Mask>,
    pub memory_mask: Option<&'a Mask>,
    pub tgt_key_padding: Option<&'a Array>,
    pub memory_key_padding: Option<&'a Array>,
}

impl TransformerDecoderLayer {
    pub fn new(c: &TransformerConfig) -> Result<TransformerDecoderLayer> {
        TransformerDecoderLayer::with(c, &rng::next_key()?)
    }

    pub fn with(c: &TransformerConfig, key: &Array) -> Result<TransformerDecoderLayer> {
        check_config("TransformerDecoderLayer", c)?;
        let ks = ingot::random::split(key, 3)?;
        let k = |i| ingot::random::key_at(&ks, i);
        let norm = || LayerNorm::with(&[c.d_model], c.layer_norm_eps, true, c.bias, c.dtype);
        Ok(TransformerDecoderLayer {
            self_attn: MultiHeadAttention::with(
                c.d_model,
                c.heads,
                c.dropout,
                c.bias,
                &k(0)?,
                c.dtype,
            )?,
            multihead_attn: MultiHeadAttention::with(
                c.d_model,
                c.heads,
                c.dropout,
                c.bias,
                &k(1)?,
                c.dtype,
            )?,
            ff: FeedForward::new(c, &k(2)?)?,
            norm1: norm()?,
            norm2: norm()?,
            norm3: norm()?,
            dropout1: Dropout::new(c.dropout)?,
            dropout2: Dropout::new(c.dropout)?,
            dropout3: Dropout::new(c.dropout)?,
            norm_first: c.norm_first,
        })
    }

    /// `tgt (N, L, E)` attending to itself and to `memory (N, S, E)`.
    pub fn forward(&self, tgt: &Array, memory: &Array, m: &DecoderMasks) -> Result<Array> {
        let sa = |x: &Array| -> Result<Array> {
            self.dropout1.forward(&self.self_attn.forward(
                x,
                x,
                x,
                m.tgt_mask,
                m.tgt_key_padding,
            )?)
        };
        let ca = |x: &Array| -> Result<Array> {
            self.dropout2.forward(&self.multihead_attn.forward(
                x,
                memory,
                memory,
                m.memory_mask,
                m.memory_key_padding,
            )?)
        };
        let ff = |x: &Array| -> Result<Array> { self.dropout3.forward(&self.ff.forward(x)?) };
        if self.norm_first {
            let x = ingot::add(tgt, &sa(&self.norm1.forward(tgt)?)?)?;
            let x = ingot::add(&x, &ca(&self.norm2.forward(&x)?)?)?;
            ingot::add(&x, &ff(&self.norm3.forward(&x)?)?)
        } else {
            let x = self.norm1.forward(&ingot::add(tgt, &sa(tgt)?)?)?;
            let x = self.norm2.forward(&ingot::add(&x, &ca(&x)?)?)?;
            self.norm3.forward(&ingot::add(&x, &ff(&x)?)?)
        }
    }
}

impl Module for TransformerDecoderLayer {
    fn visit(&self, f: &mut dyn FnMut(&str, &Param)) {
        visit_child("self_attn", &self.self_attn, f);
        visit_child("multihead_attn", &self.multihead_attn, f);
        visit_child("linear1", &self.ff.linear1, f);
        visit_child("linear2", &self.ff.linear2, f);
        visit_child("norm1", &self.norm1, f);
        visit_child("norm2", &self.norm2, f);
        visit_child("norm3", &self.norm3, f);
    }
    fn visit_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
        visit_child_mut("self_attn", &mut self.self_attn, f);
        visit_child_mut("multihead_attn", &mut self.multihead_attn, f);
        visit_child_mut("linear1", &mut self.ff.linear1, f);
        visit_child_mut("linear2", &mut self.ff.linear2, f);
        visit_child_mut("norm1", &mut self.norm1, f);
        visit_child_mut("norm2", &mut self.norm2, f);
        visit_child_mut("norm3", &mut self.norm3, f);
    }
    fn set_training(&mut self, on: bool) {
        self.self_attn.set_training(on);
        self.multihead_attn.set_training(on);
        self.ff.dropout.set_training(on);
        self.dropout1.set_training(on);
        self.dropout2.set_training(on);
        self.dropout3.set_training(on);
    }
}

/// `layers.0 .. layers.{n-1}` and an optional final `norm`: the encoder and decoder stacks.
#[derive(Clone)]
pub struct Stack<L> {
    pub layers: Vec<L>,
    pub norm: Option<LayerNorm>,
}

/// A stack of encoder layers.
pub type TransformerEncoder = Stack<TransformerEncoderLayer>;
/// A stack of decoder layers.
pub type TransformerDecoder = Stack<TransformerDecoderLayer>;

impl<L> Stack<L> {
    /// `n` layers from `make`, with a final layer norm when `final_norm` (usual for
    /// pre-norm stacks).
    fn build(
        c: &TransformerConfig,
        n: usize,
        final_norm: bool,
        make: impl Fn(&TransformerConfig) -> Result<L>,
    ) -> Result<Stack<L>> {
        Ok(Stack {
            layers: (0..n).map(|_| make(c)).collect::<Result<_>>()?,
            norm: if final_norm {
                Some(LayerNorm::with(
                    &[c.d_model],
                    c.layer_norm_eps,
                    true,
                    c.bias,
                    c.dtype,
                )?)
            } else {
                None
            },
        })
    }

    fn finish(&self, x: Array) -> Result<Array> {
        match &self.norm {
            Some(n) => n.forward(&x),
            None => Ok(x),
        }
    }
}

impl Stack<TransformerEncoderLayer> {
    pub fn new(c: &TransformerConfig, n: usize, final_norm: bool) -> Result<TransformerEncoder> {
        Stack::build(c, n, final_norm, TransformerEncoderLayer::new)
    }

    pub fn forward_masked(
        &self,
        src: &Array,
        mask: Option<&Mask>,
        key_padding: Option<&Array>,
    ) -> Result<Array> {
        let mut x = src.clone();
        for l in &self.layers {
            x = l.forward_masked(&x, mask, key_padding)?;
        }
        self.finish(x)
    }
}

impl Unary for Stack<TransformerEncoderLayer> {
    fn forward(&self, x: &Array) -> Result<Array> {
        self.forward_masked(x, None, None)
    }
}

impl Stack<TransformerDecoderLayer> {
    pub fn new(c: &TransformerConfig, n: usize, final_norm: bool) -> Result<TransformerDecoder> {
        Stack::build(c, n, final_norm, TransformerDecoderLayer::new)
    }

    pub fn forward(&self, tgt: &Array, memory: &Array, m: &DecoderMasks) -> Result<Array> {
        let mut x = tgt.clone();
        for l in &self.layers {
            x = l.forward(&x, memory, m)?;
        }
        self.finish(x)
    }
}

impl<L: Module> Module for Stack<L> {
    fn visit(&self, f: &mut dyn FnMut(&str, &Param)) {
        for (i, l) in self.layers.iter().enumerate() {
            visit_child(&format!("layers.{i}"), l, f);
        }
        if let Some(n) = &self.norm {
            visit_child("norm", n, f);
        }
    }
    fn visit_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
        for (i, l) in self.layers.iter_mut().enumerate() {
            visit_child_mut(&format!("layers.{i}"), l, f);
        }
        if let Some(n) = &mut self.norm {
            visit_child_mut("norm", n, f);
        }
    }
    fn set_training(&mut self, on: bool) {
        for l in &mut self.layers {
            l.set_training(on);
        }
    }
}
