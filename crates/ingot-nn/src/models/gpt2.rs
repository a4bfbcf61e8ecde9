//! GPT-2 (learned positions, pre-norm LayerNorm blocks, tanh-GELU MLP, tied output layer)
//! with Hugging Face's `GPT2LMHeadModel` parameter names and layouts: the projections are
//! `Conv1D`s, weight `(in, out)`, applied as `x @ W + b`.

use crate::activations::gelu_tanh;
use crate::layers::{scaled_dot_product_attention, Embedding, LayerNorm, Mask};
use crate::module::{visit_child, visit_child_mut, Module, Param, Unary};
use ingot::{Array, DType, Error, Result};

/// The fields of a Hugging Face GPT-2 config.json that shape the model.
#[derive(Clone, Debug, PartialEq)]
pub struct Gpt2Config {
    pub vocab_size: usize,
    /// Context length (`n_positions`).
    pub n_positions: usize,
    /// Width (`n_embd`).
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub layer_norm_epsilon: f64,
}

impl Gpt2Config {
    /// GPT-2 small: 12 layers, width 768, 12 heads, 1024 positions, 50257 tokens.
    pub fn small() -> Gpt2Config {
        Gpt2Config {
            vocab_size: 50257,
            n_positions: 1024,
            n_embd: 768,
            n_layer: 12,
            n_head: 12,
            layer_norm_epsilon: 1e-5,
        }
    }

    pub fn validate(&self) -> Result<()> {
        if self.vocab_size == 0
            || self.n_positions == 0
            || self.n_layer == 0
            || self.n_head == 0
            || self.n_embd % self.n_head != 0
        {
            return Err(Error::invalid(
                "Gpt2Config",
                format!(
                    "vocab {}, positions {}, layers {} must be positive and width {} a multiple of {} heads",
                    self.vocab_size, self.n_positions, self.n_layer, self.n_embd, self.n_head
                ),
            ));
        }
        Ok(())
    }
}

/// Hugging Face's `Conv1D`: `x @ weight + bias`, weight `(in, out)`.
#[derive(Clone)]
struct Conv1D {
    weight: Param,
    bias: Param,
}

impl Conv1D {
    /// Weight N(0, std), bias zeros.
    fn new(inp: usize, out: usize, std: f64, key: &Array, dtype: DType) -> Result<Conv1D> {
        Ok(Conv1D {
            weight: Param::new(ingot::random::normal(key, &[inp, out], 0.0, std, dtype)?),
            bias: Param::new(ingot::zeros(&[out], dtype)?),
        })
    }
    fn forward(&self, x: &Array) -> Result<Array> {
        // One `fast::linear` node: on the GPU the bias rides in the product's cuBLASLt
        // epilogue. Under autocast the bias joins the low-precision product in its dtype.
        let act = ingot::fast::LinearAct::None;
        ingot::fast::linear(x, &self.weight.value, Some(&self.bias.value), act)
    }
}

impl Module for Conv1D {
    fn visit(&self, f: &mut dyn FnMut(&str, &Param)) {
        f("weight", &self.weight);
        f("bias", &self.bias);
    }
    fn visit_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
        f("weight", &mut self.weight);
        f("bias", &mut self.bias);
    }
}

#[derive(Clone)]
struct Block {
    ln_1: LayerNorm,
    c_attn: Conv1D,
    attn_proj: Conv1D,
    ln_2: LayerNorm,
    c_fc: Conv1D,
    mlp_proj: Conv1D,
}

impl Module for Block {
    fn visit(&self, f: &mut dyn FnMut(&str, &Param)) {
        visit_child("ln_1", &self.ln_1, f);
        visit_child("attn.c_attn", &self.c_attn, f);
        visit_child("attn.c_proj", &self.attn_proj, f);
        visit_child("ln_2", &self.ln_2, f);
        visit_child("mlp.c_fc", &self.c_fc, f);
        visit_child("mlp.c_proj", &self.mlp_proj, f);
    }
    fn visit_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
        visit_child_mut("ln_1", &mut self.ln_1, f);
        visit_child_mut("attn.c_attn", &mut self.c_attn, f);
        visit_child_mut("attn.c_proj", &mut self.attn_proj, f);
        visit_child_mut("ln_2", &mut self.ln_2, f);
        visit_child_mut("mlp.c_fc", &mut self.c_fc, f);
        visit_child_mut("mlp.c_proj", &mut self.mlp_proj, f);
    }
}

/// `GPT2LMHeadModel`: token ids `(B, L)` to next-token logits `(B, L, vocab)`; the output
/// layer is the token embedding (tied, as in GPT-2).
#[derive(Clone)]
pub struct Gpt2 {
    pub config: Gpt2Config,
    wte: Embedding,
    wpe: Embedding,
    h: Vec<Block>,
    ln_f: LayerNorm,
}

impl Gpt2 {
    /// Fresh weights as GPT-2 initializes them: N(0, 0.02), the residual projections
    /// N(0, 0.02/sqrt(2·layers)), norms ones and zeros.
    pub fn new(config: &Gpt2Config, key: &Array, dtype: DType) -> Result<Gpt2> {
        config.validate()?;
        let c = config;
        let e = c.n_embd;
        let keys = ingot::random::split(key, 2 + 4 * c.n_layer)?;
        let k = |i: usize| ingot::random::key_at(&keys, i);
        let resid = 0.02 / (2.0 * c.n_layer as f64).sqrt();
        let ln = || LayerNorm::with(&[e], c.layer_norm_epsilon, true, true, dtype);
        let mut h = Vec::with_capacity(c.n_layer);
        for l in 0..c.n_layer {
            let b = 2 + 4 * l;
            h.push(Block {
                ln_1: ln()?,
                c_attn: Conv1D::new(e, 3 * e, 0.02, &k(b)?, dtype)?,
                attn_proj: Conv1D::new(e, e, resid, &k(b + 1)?, dtype)?,
                ln_2: ln()?,
                c_fc: Conv1D::new(e, 4 * e, 0.02, &k(b + 2)?, dtype)?,
                mlp_proj: Conv1D::new(4 * e, e, resid, &k(b + 3)?, dtype)?,
            });
        }
        let table = |key: &Array, rows: usize| -> Result<Embedding> {
            Ok(Embedding {
                weight: Param::new(ingot::random::normal(key, &[rows, e], 0.0, 0.02, dtype)?),
            })
        };
        Ok(Gpt2 {
            config: c.clone(),
            wte: table(&k(0)?, c.vocab_size)?,
            wpe: table(&k(1)?, c.n_positions)?,
            h,
            ln_f: ln()?,
        })
    }

    /// Next-token logits for every position of `ids (B, L)`, `L <= n_positions`.
    pub fn forward(&self, ids: &Array) -> Result<Array> {
        let c = &self.config;
        if ids.ndim() != 2 || !ids.dtype().is_integer() || ids.shape()[1] > c.n_positions {
            return Err(Error::invalid(
                "Gpt2",
                format!(
                    "ids must be integer (batch, length <= {}), got {:?} {}",
                    c.n_positions,
                    ids.shape(),
                    ids.dtype()
                ),
            ));
        }
        let (b, l) = (ids.shape()[0], ids.shape()[1]);
        let (nh, e) = (c.n_head, c.n_embd);
        let hd = e / nh;
        let pos = ingot::arange(0.0, l as f64, 1.0, DType::I32)?;
        let mut x = ingot::add(&self.wte.forward(ids)?, &self.wpe.forward(&pos)?)?;
        for blk in &self.h {
            let qkv = blk.c_attn.forward(&blk.ln_1.forward(&x)?)?;
            // (B, L, 3·E) -> three (B, nh, L, hd) views.
            let parts = ingot::split(&qkv, ingot::SplitSpec::Sections(3), -1)?;
            let heads = |t: &Array| -> Result<Array> {
                ingot::transpose(&ingot::reshape_to(t, &[b, l, nh, hd])?, Some(&[0, 2, 1, 3]))
            };
            let (q, k, v) = (heads(&parts[0])?, heads(&parts[1])?, heads(&parts[2])?);
            let o = scaled_dot_product_attention(&q, &k, &v, Some(&Mask::Causal), None, None)?;
            let o = ingot::reshape_to(&ingot::transpose(&o, Some(&[0, 2, 1, 3]))?, &[b, l, e])?;
            x = ingot::add(&x, &blk.attn_proj.forward(&o)?)?;
            let m = gelu_tanh(&blk.c_fc.forward(&blk.ln_2.forward(&x)?)?)?;
            x = ingot::add(&x, &blk.mlp_proj.forward(&m)?)?;
        }
        self.wte.as_linear(&self.ln_f.forward(&x)?)
    }
}

impl Module for Gpt2 {
    fn visit(&self, f: &mut dyn FnMut(&str, &Param)) {
        visit_child("transformer.wte", &self.wte, f);
        visit_child("transformer.wpe", &self.wpe, f);
        for (i, blk) in self.h.iter().enumerate() {
            visit_child(&format!("transformer.h.{i}"), blk, f);
        }
        visit_child("transformer.ln_f", &self.ln_f, f);
    }
    fn visit_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
        visit_child_mut("transformer.wte", &mut self.wte, f);
        visit_child_mut("transformer.wpe", &mut self.wpe, f);
        for (i, blk) in self.h.iter_mut().enumerate() {
            visit_child_mut(&format!("transformer.h.{i}"), blk, f);
        }
        visit_child_mut("transformer.ln_f", &mut self.ln_f, f);
    }
}
