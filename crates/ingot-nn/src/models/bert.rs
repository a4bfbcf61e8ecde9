//! BERT-family encoders (BERT, MiniLM, the sentence-transformers models built on them) with
//! Hugging Face's `BertModel` parameter names and config.json, and sentence-transformers'
//! pooling and normalization on top, so an all-MiniLM-L6-v2 folder gives the embeddings
//! sentence-transformers gives.
//!
//! Post-norm blocks: `LayerNorm(x + attention(x))`, then `LayerNorm(h + mlp(h))`; learned
//! absolute positions and token types added to the word vectors. Padded keys are masked
//! with the most negative f32 added to their scores, as transformers does, so a row whose
//! keys are all padding averages over them instead of giving NaN.

use super::decoder::{load_hf_weights, read_json};
use crate::activations::{gelu, gelu_tanh, relu};
use crate::layers::{Embedding, LayerNorm, Linear};
use crate::module::{visit_child, visit_child_mut, Module, ModuleExt, Param, Unary};
use crate::rng;
use ingot::fast::{scaled_dot_product_attention, SdpaMask};
use ingot::{Array, DType, Error, Result};
use serde_json::Value;
use std::path::Path;

/// The MLP's activation (`hidden_act`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BertActivation {
    /// `gelu`: the exact, erf-based GELU.
    Gelu,
    /// `gelu_new` / `gelu_pytorch_tanh`: GELU's tanh approximation.
    GeluTanh,
    Relu,
}

/// The fields of a Hugging Face BERT config.json that shape the encoder.
#[derive(Clone, Debug, PartialEq)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub hidden_act: BertActivation,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
}

impl Default for BertConfig {
    /// BERT-base's shape (transformers' `BertConfig()` defaults).
    fn default() -> BertConfig {
        BertConfig {
            vocab_size: 30522,
            hidden_size: 768,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            intermediate_size: 3072,
            hidden_act: BertActivation::Gelu,
            max_position_embeddings: 512,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
        }
    }
}

fn cfg_err(m: impl std::fmt::Display) -> Error {
    Error::invalid("BertConfig", m)
}

impl BertConfig {
    /// Checks the sizes are positive and the heads divide the width.
    pub fn validate(&self) -> Result<()> {
        let sizes = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
        ];
        if let Some((k, _)) = sizes.iter().find(|(_, v)| *v == 0) {
            return Err(cfg_err(format!("{k} must be positive")));
        }
        let limits = [
            1 << 26,
            1 << 20,
            1 << 12,
            1 << 16,
            1 << 22,
            1 << 24,
            1 << 16,
        ];
        let sized: Vec<(&str, usize, usize)> = sizes
            .iter()
            .zip(limits)
            .map(|(&(k, v), max)| (k, v, max))
            .collect();
        super::check_limits("BertConfig", &sized)?;
        if self.hidden_size % self.num_attention_heads != 0 {
            return Err(cfg_err(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            )));
        }
        if !(self.layer_norm_eps.is_finite() && self.layer_norm_eps >= 0.0) {
            return Err(cfg_err(format!(
                "layer_norm_eps {} must be finite and not negative",
                self.layer_norm_eps
            )));
        }
        Ok(())
    }

    /// The width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Reads a config.json value (missing optional fields take transformers' defaults).
    pub fn from_json(v: &Value) -> Result<BertConfig> {
        let int = |k: &str| -> Result<Option<usize>> {
            match v.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(x) => x
                    .as_u64()
                    .map(|n| Some(n as usize))
                    .ok_or_else(|| cfg_err(format!("{k} is {x}, not a non-negative integer"))),
            }
        };
        let need =
            |k: &str| int(k)?.ok_or_else(|| cfg_err(format!("config.json has no integer {k:?}")));
        let d = BertConfig::default();
        if let Some(t) = v.get("position_embedding_type").filter(|t| !t.is_null()) {
            if t.as_str() != Some("absolute") {
                return Err(cfg_err(format!(
                    "position_embedding_type {t} is not supported (only \"absolute\" is)"
                )));
            }
        }
        let act = match v.get("hidden_act") {
            None | Some(Value::Null) => "gelu",
            Some(a) => a
                .as_str()
                .ok_or_else(|| cfg_err(format!("hidden_act {a} is not a string")))?,
        };
        let hidden_act = match act {
            "gelu" => BertActivation::Gelu,
            "gelu_new" | "gelu_pytorch_tanh" => BertActivation::GeluTanh,
            "relu" => BertActivation::Relu,
            a => {
                return Err(cfg_err(format!(
                "hidden_act {a:?} is not supported (gelu, gelu_new, gelu_pytorch_tanh, relu are)"
            )))
            }
        };
        let layer_norm_eps = match v.get("layer_norm_eps") {
            None | Some(Value::Null) => d.layer_norm_eps,
            Some(x) => x
                .as_f64()
                .ok_or_else(|| cfg_err(format!("layer_norm_eps {x} is not a number")))?,
        };
        let c = BertConfig {
            vocab_size: need("vocab_size")?,
            hidden_size: need("hidden_size")?,
            num_hidden_layers: need("num_hidden_layers")?,
            num_attention_heads: need("num_attention_heads")?,
            intermediate_size: need("intermediate_size")?,
            hidden_act,
            max_position_embeddings: int("max_position_embeddings")?
                .unwrap_or(d.max_position_embeddings),
            type_vocab_size: int("type_vocab_size")?.unwrap_or(d.type_vocab_size),
            layer_norm_eps,
        };
        c.validate()?;
        Ok(c)
    }
}

/// How token vectors become one sentence vector (sentence-transformers' `Pooling`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pooling {
    /// The mean over the attended (non-padded) tokens (`pooling_mode_mean_tokens`).
    Mean,
    /// The first attended token, `[CLS]` (`pooling_mode_cls_token`).
    Cls,
    /// The elementwise maximum over the attended tokens (`pooling_mode_max_tokens`).
    Max,
}

fn st_err(m: impl std::fmt::Display) -> Error {
    Error::invalid("Pooling::from_sentence_transformers", m)
}

impl Pooling {
    /// The pooling of a sentence-transformers folder and whether its embeddings are
    /// L2-normalized: the Pooling module's config.json (`1_Pooling/` or the path
    /// modules.json gives) and whether modules.json lists a Normalize module. Without
    /// modules.json or a pooling config: mean pooling, normalized. Module kinds this crate
    /// does not implement (Dense, ...) and combined pooling modes are errors.
    pub fn from_sentence_transformers(dir: impl AsRef<Path>) -> Result<(Pooling, bool)> {
        let dir = dir.as_ref();
        let mut pooling_dir = Some("1_Pooling".to_string());
        let mut normalize = true;
        let modules = dir.join("modules.json");
        if modules.exists() {
            let v = read_json("Bert::from_pretrained", &modules)?;
            let list = v
                .as_array()
                .ok_or_else(|| st_err(format!("{} is not a list", modules.display())))?;
            pooling_dir = None;
            normalize = false;
            for m in list {
                let kind = m.get("type").and_then(Value::as_str).unwrap_or("");
                let name = kind.rsplit('.').next().unwrap_or("");
                match name {
                    "Transformer" => {}
                    "Pooling" => {
                        let p = m.get("path").and_then(Value::as_str).unwrap_or("");
                        // A module folder is inside the model folder.
                        if Path::new(p).is_absolute() || p.split(['/', '\\']).any(|c| c == "..") {
                            return Err(st_err(format!(
                                "{}: Pooling path {p:?} leaves the folder",
                                modules.display()
                            )));
                        }
                        pooling_dir = Some(p.to_string());
                    }
                    "Normalize" => normalize = true,
                    _ => {
                        return Err(st_err(format!(
                            "{} lists module {kind:?}, which is not supported (Transformer, \
                             Pooling, Normalize are)",
                            modules.display()
                        )))
                    }
                }
            }
            if pooling_dir.is_none() {
                return Err(st_err(format!(
                    "{} lists no Pooling module",
                    modules.display()
                )));
            }
        }
        let cfg = dir
            .join(pooling_dir.expect("set above"))
            .join("config.json");
        if !cfg.exists() {
            return Ok((Pooling::Mean, normalize));
        }
        let v = read_json("Bert::from_pretrained", &cfg)?;
        Ok((Pooling::from_config(&v, &cfg)?, normalize))
    }

    /// Newer files name the mode (`"pooling_mode": "mean"`), older ones set one of the
    /// `pooling_mode_*` flags.
    fn from_config(v: &Value, path: &Path) -> Result<Pooling> {
        let modes: Vec<String> = match v.get("pooling_mode") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .map(|m| m.as_str().unwrap_or("?").to_string())
                .collect(),
            _ => {
                const FLAGS: [(&str, &str); 6] = [
                    ("pooling_mode_cls_token", "cls"),
                    ("pooling_mode_max_tokens", "max"),
                    ("pooling_mode_mean_tokens", "mean"),
                    ("pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len_tokens"),
                    ("pooling_mode_weightedmean_tokens", "weightedmean"),
                    ("pooling_mode_lasttoken", "lasttoken"),
                ];
                FLAGS
                    .iter()
                    .filter(|(k, _)| v.get(k).and_then(Value::as_bool).unwrap_or(false))
                    .map(|(_, m)| m.to_string())
                    .collect()
            }
        };
        match modes.as_slice() {
            // sentence-transformers' default when no flag is set.
            [] => Ok(Pooling::Mean),
            [m] => match m.as_str() {
                "mean" => Ok(Pooling::Mean),
                "cls" => Ok(Pooling::Cls),
                "max" => Ok(Pooling::Max),
                m => Err(st_err(format!(
                    "{}: pooling mode {m:?} is not supported (mean, cls, max are)",
                    path.display()
                ))),
            },
            many => Err(st_err(format!(
                "{}: combined pooling modes {many:?} are not supported",
                path.display()
            ))),
        }
    }

    /// Pools `hidden (B, L, H)` over the positions `attention_mask (B, L)` keeps (all
    /// without a mask) to `(B, H)`, in f32 for f16/bf16 as sentence-transformers does.
    pub fn apply(&self, hidden: &Array, attention_mask: Option<&Array>) -> Result<Array> {
        if hidden.ndim() != 3 || !hidden.dtype().is_float() {
            return Err(Error::invalid(
                "Pooling",
                format!(
                    "hidden states must be floating (batch, length, width), got {:?} {}",
                    hidden.shape(),
                    hidden.dtype()
                ),
            ));
        }
        let (b, l) = (hidden.shape()[0], hidden.shape()[1]);
        let keep = match attention_mask {
            Some(m) => {
                check_mask("Pooling", m, b, l)?;
                ingot::astype(m, DType::Bool)?
            }
            None => ingot::ones(&[b, l], DType::Bool)?,
        };
        let dt = hidden.dtype();
        let stat = if dt == DType::F64 {
            DType::F64
        } else {
            DType::F32
        };
        let h = ingot::astype(hidden, stat)?;
        let keep3 = ingot::expand_dims(&keep, &[-1])?;
        let y = match self {
            Pooling::Mean => {
                let w = ingot::astype(&keep3, stat)?;
                let sum = ingot::sum(&ingot::multiply(&h, &w)?, Some(&[1]), false)?;
                let n = ingot::maximum(&ingot::sum(&w, Some(&[1]), false)?, 1e-9)?;
                ingot::divide(&sum, &n)?
            }
            Pooling::Max => ingot::max(
                &ingot::where_(&keep3, &h, f64::NEG_INFINITY)?,
                Some(&[1]),
                false,
            )?,
            Pooling::Cls => {
                // The first kept position (0 for right padding), as sentence-transformers.
                let first = ingot::argmax(&ingot::astype(&keep, DType::I32)?, Some(1), false)?;
                let idx = ingot::reshape_to(&first, &[b, 1, 1])?;
                ingot::squeeze(&ingot::take_along_axis(&h, &idx, Some(1))?, Some(&[1]))?
            }
        };
        ingot::astype(&y, dt)
    }
}

/// `x / max(‖x‖₂, 1e-12)` over the last axis (PyTorch's `F.normalize`), in f32 for
/// f16/bf16.
fn l2_normalize(x: &Array) -> Result<Array> {
    let dt = x.dtype();
    let xs = ingot::astype(
        x,
        if dt == DType::F64 {
            DType::F64
        } else {
            DType::F32
        },
    )?;
    let n = ingot::sqrt(&ingot::sum(&ingot::square(&xs)?, Some(&[-1]), true)?)?;
    ingot::astype(&ingot::divide(&xs, &ingot::maximum(&n, 1e-12)?)?, dt)
}

/// An attention mask must be `(B, L)` of bools, integers or floats (nonzero: attend).
fn check_mask(op: &str, m: &Array, b: usize, l: usize) -> Result<()> {
    if m.shape() != [b, l] || m.dtype().is_complex() {
        return Err(Error::invalid(
            op,
            format!(
                "attention_mask must be real ({b}, {l}) like the ids, got {:?} {}",
                m.shape(),
                m.dtype()
            ),
        ));
    }
    Ok(())
}

/// Integer ids `(B, L)` read to the host to check they index a table of `n` rows.
fn check_ids(what: &str, ids: &Array, shape: Option<&[usize]>, n: usize) -> Result<()> {
    let op = "Bert::forward";
    let dt = ids.dtype();
    if ids.ndim() != 2 || !dt.is_integer() || shape.is_some_and(|s| s != ids.shape()) {
        let want = match shape {
            Some(s) => format!("{s:?}"),
            None => "(batch, length)".into(),
        };
        return Err(Error::invalid(
            op,
            format!("{what} must be integer {want}, got {:?} {dt}", ids.shape()),
        ));
    }
    let v = ingot::astype(ids, DType::I64)?.to_vec::<i64>()?;
    if let Some((i, bad)) = v
        .iter()
        .enumerate()
        .find(|(_, &x)| x < 0 || x as u64 >= n as u64)
    {
        let l = ids.shape()[1].max(1);
        return Err(Error::invalid(
            op,
            format!("{what}[{}, {}] = {bad} is outside 0..{n}", i / l, i % l),
        ));
    }
    Ok(())
}

/// `weight (out, in)` N(0, 0.02) as transformers initializes it, bias zeros.
fn dense(inp: usize, out: usize, key: &Array, dtype: DType) -> Result<Linear> {
    Linear::from_arrays(
        ingot::random::normal(key, &[out, inp], 0.0, 0.02, dtype)?,
        Some(ingot::zeros(&[out], dtype)?),
    )
}

fn table(rows: usize, dim: usize, key: &Array, dtype: DType) -> Result<Embedding> {
    Ok(Embedding {
        weight: Param::new(ingot::random::normal(key, &[rows, dim], 0.0, 0.02, dtype)?),
    })
}

#[derive(Clone)]
struct Embeddings {
    word_embeddings: Embedding,
    position_embeddings: Embedding,
    token_type_embeddings: Embedding,
    layer_norm: LayerNorm,
}

#[derive(Clone)]
struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    /// `attention.output.dense` and `attention.output.LayerNorm`.
    attn_out: Linear,
    attn_norm: LayerNorm,
    /// `intermediate.dense`.
    intermediate: Linear,
    /// `output.dense` and `output.LayerNorm`.
    out: Linear,
    out_norm: LayerNorm,
}

/// A BERT encoder: token ids `(B, L)` to last hidden states `(B, L, hidden)`, and with
/// [`Bert::embed`] to sentence embeddings.
#[derive(Clone)]
pub struct Bert {
    pub config: BertConfig,
    embeddings: Embeddings,
    layers: Vec<Layer>,
    /// `pooler.dense`: `BertModel`'s `tanh(dense(h[:, 0]))`, kept when the checkpoint has
    /// it so the module round-trips; sentence embeddings do not use it.
    pooler: Option<Linear>,
}

impl Bert {
    /// A model with fresh weights (N(0, 0.02), norms at identity) of `dtype`, from `key`,
    /// with a pooler as `BertModel` has by default.
    pub fn new(config: &BertConfig, key: &Array, dtype: DType) -> Result<Bert> {
        config.validate()?;
        let c = config;
        let (h, f) = (c.hidden_size, c.intermediate_size);
        let keys = ingot::random::split(key, 4 + 6 * c.num_hidden_layers)?;
        let k = |i: usize| ingot::random::key_at(&keys, i);
        let ln = || LayerNorm::with(&[h], c.layer_norm_eps, true, true, dtype);
        let mut layers = Vec::with_capacity(c.num_hidden_layers);
        for l in 0..c.num_hidden_layers {
            let b = 4 + 6 * l;
            layers.push(Layer {
                query: dense(h, h, &k(b)?, dtype)?,
                key: dense(h, h, &k(b + 1)?, dtype)?,
                value: dense(h, h, &k(b + 2)?, dtype)?,
                attn_out: dense(h, h, &k(b + 3)?, dtype)?,
                attn_norm: ln()?,
                intermediate: dense(h, f, &k(b + 4)?, dtype)?,
                out: dense(f, h, &k(b + 5)?, dtype)?,
                out_norm: ln()?,
            });
        }
        Ok(Bert {
            config: c.clone(),
            embeddings: Embeddings {
                word_embeddings: table(c.vocab_size, h, &k(0)?, dtype)?,
                position_embeddings: table(c.max_position_embeddings, h, &k(1)?, dtype)?,
                token_type_embeddings: table(c.type_vocab_size, h, &k(2)?, dtype)?,
                layer_norm: ln()?,
            },
            layers,
            pooler: Some(dense(h, h, &k(3)?, dtype)?),
        })
    }

    /// A model with the shared random state's key.
    pub fn random(config: &BertConfig, dtype: DType) -> Result<Bert> {
        Bert::new(config, &rng::next_key()?, dtype)
    }

    /// The dtype of the weights.
    pub fn dtype(&self) -> DType {
        self.embeddings.word_embeddings.weight.value.dtype()
    }

    /// Whether the model has `pooler.dense`.
    pub fn has_pooler(&self) -> bool {
        self.pooler.is_some()
    }

    /// Loads a Hugging Face folder (config.json, and model.safetensors or the shards that
    /// model.safetensors.index.json lists), weights cast to `dtype`. Names may carry the
    /// `bert.` prefix of the task models (`BertForMaskedLM`, ...); tensors the encoder has
    /// no use for (`embeddings.position_ids`, task heads) are dropped, and the pooler is
    /// loaded when the file has one. Every other tensor must be there with its shape.
    pub fn from_pretrained(dir: impl AsRef<Path>, dtype: DType) -> Result<Bert> {
        let dir = dir.as_ref();
        let config = BertConfig::from_json(&read_json(
            "Bert::from_pretrained",
            &dir.join("config.json"),
        )?)?;
        // Shapes come from the config; the lazy initial values are replaced unevaluated.
        let mut m = Bert::new(&config, &rng::key(0), dtype)?;
        let mut tensors = load_hf_weights(dir)?;
        if tensors.keys().any(|k| k.starts_with("bert.")) {
            tensors = tensors
                .into_iter()
                .filter_map(|(k, v)| k.strip_prefix("bert.").map(|s| (s.to_string(), v)))
                .collect();
        }
        if !tensors.keys().any(|k| k.starts_with("pooler.")) {
            m.pooler = None;
        }
        let names = m.parameters();
        tensors.retain(|k, _| names.contains_key(k));
        m.load_arrays(tensors, true).map_err(|e| {
            Error::invalid("Bert::from_pretrained", format!("{}: {e}", dir.display()))
        })?;
        Ok(m)
    }

    /// Last hidden states `(B, L, hidden)` of integer `ids (B, L)`. `attention_mask`
    /// `(B, L)` (bool, integer or float; nonzero: a real token) keeps padded keys out of every
    /// query's attention; without it every position is attended. `token_type_ids (B, L)`
    /// default to zeros. Padded positions get values too, which callers ignore.
    pub fn forward(
        &self,
        ids: &Array,
        attention_mask: Option<&Array>,
        token_type_ids: Option<&Array>,
    ) -> Result<Array> {
        let c = &self.config;
        check_ids("ids", ids, None, c.vocab_size)?;
        let (b, l) = (ids.shape()[0], ids.shape()[1]);
        if l == 0 || l > c.max_position_embeddings {
            return Err(Error::invalid(
                "Bert::forward",
                format!(
                    "ids {:?}: length {l} is not in 1..={} (max_position_embeddings)",
                    ids.shape(),
                    c.max_position_embeddings
                ),
            ));
        }
        if let Some(t) = token_type_ids {
            check_ids("token_type_ids", t, Some(&[b, l]), c.type_vocab_size)?;
        }
        let mask = match attention_mask {
            Some(m) => {
                check_mask("Bert::forward", m, b, l)?;
                // Additive (B, 1, 1, L): 0 where kept, the most negative f32 where padded.
                let keep = ingot::astype(m, DType::Bool)?;
                let add = ingot::where_(&keep, Array::scalar(0f32), Array::scalar(f32::MIN))?;
                Some(ingot::reshape_to(&add, &[b, 1, 1, l])?)
            }
            None => None,
        };
        let e = &self.embeddings;
        let word = e.word_embeddings.forward(ids)?;
        let types = match token_type_ids {
            Some(t) => e.token_type_embeddings.forward(t)?,
            None => e
                .token_type_embeddings
                .forward(&ingot::zeros(&[b, l], DType::I32)?)?,
        };
        let pos = ingot::arange(0.0, l as f64, 1.0, DType::I32)?;
        let mut x = ingot::add(
            &ingot::add(&word, &types)?,
            &e.position_embeddings.forward(&pos)?,
        )?;
        x = e.layer_norm.forward(&x)?;
        let (nh, hd) = (c.num_attention_heads, c.head_dim());
        let heads = |y: &Array| {
            ingot::transpose(&ingot::reshape_to(y, &[b, l, nh, hd])?, Some(&[0, 2, 1, 3]))
        };
        for blk in &self.layers {
            let q = heads(&blk.query.forward(&x)?)?;
            let k = heads(&blk.key.forward(&x)?)?;
            let v = heads(&blk.value.forward(&x)?)?;
            let o = scaled_dot_product_attention(
                &q,
                &k,
                &v,
                mask.as_ref().map(SdpaMask::Additive),
                None,
            )?;
            let o = ingot::reshape_to(
                &ingot::transpose(&o, Some(&[0, 2, 1, 3]))?,
                &[b, l, c.hidden_size],
            )?;
            x = blk
                .attn_norm
                .forward(&ingot::add(&blk.attn_out.forward(&o)?, &x)?)?;
            let a = blk.intermediate.forward(&x)?;
            let a = match c.hidden_act {
                BertActivation::Gelu => gelu(&a)?,
                BertActivation::GeluTanh => gelu_tanh(&a)?,
                BertActivation::Relu => relu(&a)?,
            };
            x = blk
                .out_norm
                .forward(&ingot::add(&blk.out.forward(&a)?, &x)?)?;
        }
        Ok(x)
    }

    /// `BertModel`'s pooler output `tanh(dense(hidden[:, 0]))` `(B, hidden)` of the last
    /// hidden states [`Bert::forward`] gives (the next-sentence head's input, not a
    /// sentence embedding).
    pub fn pooler_output(&self, hidden: &Array) -> Result<Array> {
        let p = self.pooler.as_ref().ok_or_else(|| {
            Error::invalid(
                "Bert::pooler_output",
                "the model has no pooler.dense weights",
            )
        })?;
        if hidden.ndim() != 3 || hidden.shape()[1] == 0 {
            return Err(Error::invalid(
                "Bert::pooler_output",
                format!(
                    "hidden states must be (batch, length >= 1, width), got {:?}",
                    hidden.shape()
                ),
            ));
        }
        let first = ingot::take(hidden, &Array::scalar(0i32), Some(1))?;
        ingot::tanh(&p.forward(&first)?)
    }

    /// Sentence embeddings `(B, hidden)` as sentence-transformers computes them: the last
    /// hidden states pooled over the tokens `attention_mask` keeps, then L2-normalized if
    /// `normalize` (all-MiniLM-L6-v2: [`Pooling::Mean`], normalized; see
    /// [`Pooling::from_sentence_transformers`]).
    pub fn embed(
        &self,
        ids: &Array,
        attention_mask: Option<&Array>,
        pooling: Pooling,
        normalize: bool,
    ) -> Result<Array> {
        let h = self.forward(ids, attention_mask, None)?;
        let y = pooling.apply(&h, attention_mask)?;
        if normalize {
            l2_normalize(&y)
        } else {
            Ok(y)
        }
    }
}

impl Module for Embeddings {
    fn visit(&self, f: &mut dyn FnMut(&str, &Param)) {
        visit_child("word_embeddings", &self.word_embeddings, f);
        visit_child("position_embeddings", &self.position_embeddings, f);
        visit_child("token_type_embeddings", &self.token_type_embeddings, f);
        visit_child("LayerNorm", &self.layer_norm, f);
    }
    fn visit_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
        visit_child_mut("word_embeddings", &mut self.word_embeddings, f);
        visit_child_mut("position_embeddings", &mut self.position_embeddings, f);
        visit_child_mut("token_type_embeddings", &mut self.token_type_embeddings, f);
        visit_child_mut("LayerNorm", &mut self.layer_norm, f);
    }
}

impl Module for Layer {
    fn visit(&self, f: &mut dyn FnMut(&str, &Param)) {
        visit_child("attention.self.query", &self.query, f);
        visit_child("attention.self.key", &self.key, f);
        visit_child("attention.self.value", &self.value, f);
        visit_child("attention.output.dense", &self.attn_out, f);
        visit_child("attention.output.LayerNorm", &self.attn_norm, f);
        visit_child("intermediate.dense", &self.intermediate, f);
        visit_child("output.dense", &self.out, f);
        visit_child("output.LayerNorm", &self.out_norm, f);
    }
    fn visit_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
        visit_child_mut("attention.self.query", &mut self.query, f);
        visit_child_mut("attention.self.key", &mut self.key, f);
        visit_child_mut("attention.self.value", &mut self.value, f);
        visit_child_mut("attention.output.dense", &mut self.attn_out, f);
        visit_child_mut("attention.output.LayerNorm", &mut self.attn_norm, f);
        visit_child_mut("intermediate.dense", &mut self.intermediate, f);
        visit_child_mut("output.dense", &mut self.out, f);
        visit_child_mut("output.LayerNorm", &mut self.out_norm, f);
    }
}

impl Module for Bert {
    fn visit(&self, f: &mut dyn FnMut(&str, &Param)) {
        visit_child("embeddings", &self.embeddings, f);
        for (i, l) in self.layers.iter().enumerate() {
            visit_child(&format!("encoder.layer.{i}"), l, f);
        }
        if let Some(p) = &self.pooler {
            visit_child("pooler.dense", p, f);
        }
    }
    fn visit_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
        visit_child_mut("embeddings", &mut self.embeddings, f);
        for (i, l) in self.layers.iter_mut().enumerate() {
            visit_child_mut(&format!("encoder.layer.{i}"), l, f);
        }
        if let Some(p) = &mut self.pooler {
            visit_child_mut("pooler.dense", p, f);
        }
    }
}
