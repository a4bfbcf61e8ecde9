//! Decoder-only transformers of the Llama family, with Hugging Face's parameter names and
//! config.json, so a model trained here is a Hugging Face folder and a Hugging Face folder
//! loads here: Llama (2, 3, 3.1 and 3.2 rope scaling, tied embeddings), Mistral (sliding
//! window), Qwen2/2.5 (q/k/v biases, sliding layers), Qwen3 (q/k norms), Phi-3 (fused
//! projections, partial rotary) and Gemma 2 (soft-capping, alternating windows, four norms
//! a layer). One [`Decoder`] covers them; [`Arch`] selects what differs.
//!
//! Generation keeps keys and values in a [`KvCache`] of preallocated buffers that each
//! token's keys are written into with `slice_update`, in place (see the cache).

use crate::activations::gelu_tanh;
use crate::layers::{shard_of, Embedding, Linear, RoPE, ShardedLinear};
use crate::module::{visit_child, visit_child_mut, Module, ModuleExt, Param, Unary};
use crate::rng;
use ingot::distributed::Group;
use ingot::fast::{scaled_dot_product_attention, SdpaMask};
use ingot::transforms::{compile_with, CompileOptions, Compiled};
use ingot::{Array, DType, Error, Result, SliceArg};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// The architectures [`Decoder`] implements, by Hugging Face `model_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    Llama,
    Mistral,
    Qwen2,
    Qwen3,
    Phi3,
    Gemma2,
}

impl Arch {
    const ALL: [Arch; 6] = [
        Arch::Llama,
        Arch::Mistral,
        Arch::Qwen2,
        Arch::Qwen3,
        Arch::Phi3,
        Arch::Gemma2,
    ];

    /// config.json's `model_type`.
    pub fn model_type(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Mistral => "mistral",
            Arch::Qwen2 => "qwen2",
            Arch::Qwen3 => "qwen3",
            Arch::Phi3 => "phi3",
            Arch::Gemma2 => "gemma2",
        }
    }

    /// The transformers class of the causal language model.
    pub fn class_name(self) -> &'static str {
        match self {
            Arch::Llama => "LlamaForCausalLM",
            Arch::Mistral => "MistralForCausalLM",
            Arch::Qwen2 => "Qwen2ForCausalLM",
            Arch::Qwen3 => "Qwen3ForCausalLM",
            Arch::Phi3 => "Phi3ForCausalLM",
            Arch::Gemma2 => "Gemma2ForCausalLM",
        }
    }

    pub fn from_model_type(t: &str) -> Option<Arch> {
        Arch::ALL.into_iter().find(|a| a.model_type() == t)
    }
}

/// How rotary frequencies are stretched for long contexts (config.json's `rope_parameters`
/// or `rope_scaling`), as transformers computes them.
#[derive(Clone, Debug, PartialEq)]
pub enum RopeScaling {
    None,
    /// Positions divided by `factor`.
    Linear {
        factor: f64,
    },
    /// Llama 3.1/3.2: low frequencies divided by `factor`, a smooth blend in between.
    Llama3 {
        factor: f64,
        low_freq_factor: f64,
        high_freq_factor: f64,
        original_max_position_embeddings: f64,
    },
    /// YaRN: interpolated low frequencies, extrapolated high ones, and cos/sin scaled by
    /// an attention factor.
    Yarn {
        factor: f64,
        original_max_position_embeddings: f64,
        beta_fast: f64,
        beta_slow: f64,
        attention_factor: Option<f64>,
        mscale: Option<f64>,
        mscale_all_dim: Option<f64>,
        truncate: bool,
    },
}

/// The MLP's activation (`hidden_act` / `hidden_activation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Silu,
    /// `gelu_pytorch_tanh`.
    GeluTanh,
}

/// The fields of a Hugging Face config.json that shape a decoder.
#[derive(Clone, Debug, PartialEq)]
pub struct DecoderConfig {
    pub arch: Arch,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub rope_scaling: RopeScaling,
    /// The leading fraction of each head's dims that is rotated (Phi-3).
    pub partial_rotary_factor: f64,
    pub max_position_embeddings: usize,
    pub tie_word_embeddings: bool,
    /// Biases on the q, k and v projections (Qwen2 always, others with `attention_bias`).
    pub qkv_bias: bool,
    /// A bias on the output projection (`attention_bias` of Llama, Qwen3, Gemma 2).
    pub o_bias: bool,
    pub mlp_bias: bool,
    pub activation: Activation,
    /// The window of sliding-window layers: query i sees keys j with `i - window < j <= i`.
    pub sliding_window: Option<usize>,
    /// Which layers use the sliding window (empty: none).
    pub sliding_layers: Vec<bool>,
    /// Gemma 2: the scores are scaled by `query_pre_attn_scalar^-1/2` instead of
    /// `head_dim^-1/2`.
    pub query_pre_attn_scalar: Option<f64>,
    /// Gemma 2: `cap · tanh(x / cap)` on the attention scores and on the logits.
    pub attn_logit_softcapping: Option<f64>,
    pub final_logit_softcapping: Option<f64>,
    pub bos_token_id: Option<u64>,
    /// Every token that ends generation (Llama 3 lists several).
    pub eos_token_ids: Vec<u64>,
}

impl Default for DecoderConfig {
    /// A small Llama (the fields a training config usually sets are meant to be replaced).
    fn default() -> DecoderConfig {
        DecoderConfig {
            arch: Arch::Llama,
            vocab_size: 256,
            hidden_size: 64,
            intermediate_size: 176,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            num_key_value_heads: 4,
            head_dim: 16,
            rms_norm_eps: 1e-6,
            rope_theta: 10000.0,
            rope_scaling: RopeScaling::None,
            partial_rotary_factor: 1.0,
            max_position_embeddings: 2048,
            tie_word_embeddings: false,
            qkv_bias: false,
            o_bias: false,
            mlp_bias: false,
            activation: Activation::Silu,
            sliding_window: None,
            sliding_layers: Vec::new(),
            query_pre_attn_scalar: None,
            attn_logit_softcapping: None,
            final_logit_softcapping: None,
            bos_token_id: None,
            eos_token_ids: Vec::new(),
        }
    }
}

/// The most layers a config may name (published models have under 200).
const MAX_LAYERS: usize = 1 << 12;

fn cfg_err(m: impl std::fmt::Display) -> Error {
    Error::invalid("DecoderConfig", m)
}

impl DecoderConfig {
    /// Checks the sizes fit together.
    pub fn validate(&self) -> Result<()> {
        super::check_limits(
            "DecoderConfig",
            &[
                ("vocab_size", self.vocab_size, 1 << 26),
                ("hidden_size", self.hidden_size, 1 << 20),
                ("intermediate_size", self.intermediate_size, 1 << 22),
                ("num_hidden_layers", self.num_hidden_layers, MAX_LAYERS),
                ("num_attention_heads", self.num_attention_heads, 1 << 16),
                ("num_key_value_heads", self.num_key_value_heads, 1 << 16),
                ("head_dim", self.head_dim, 1 << 14),
            ],
        )?;
        if self.vocab_size == 0 || self.hidden_size == 0 || self.num_hidden_layers == 0 {
            return Err(cfg_err(format!(
                "vocab_size {}, hidden_size {} and num_hidden_layers {} must be positive",
                self.vocab_size, self.hidden_size, self.num_hidden_layers
            )));
        }
        if self.num_attention_heads == 0
            || self.num_key_value_heads == 0
            || self.num_attention_heads % self.num_key_value_heads != 0
        {
            return Err(cfg_err(format!(
                "{} attention heads do not group over {} key/value heads",
                self.num_attention_heads, self.num_key_value_heads
            )));
        }
        if self.head_dim == 0 || self.head_dim % 2 != 0 || self.rope_dims() == 0 {
            return Err(cfg_err(format!(
                "head_dim {} must be even and positive, and partial_rotary_factor {} must \
                 rotate at least two of its dims",
                self.head_dim, self.partial_rotary_factor
            )));
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 0.0) {
            return Err(cfg_err(format!(
                "rope_theta {} must be positive",
                self.rope_theta
            )));
        }
        if !self.sliding_layers.is_empty() && self.sliding_layers.len() != self.num_hidden_layers {
            return Err(cfg_err(format!(
                "layer_types has {} entries for {} layers",
                self.sliding_layers.len(),
                self.num_hidden_layers
            )));
        }
        if self.sliding_window == Some(0) {
            return Err(cfg_err("sliding_window must be positive"));
        }
        Ok(())
    }

    /// The dims of each head that RoPE rotates.
    pub fn rope_dims(&self) -> usize {
        let d = (self.head_dim as f64 * self.partial_rotary_factor) as usize;
        d - d % 2
    }

    /// The attention window of layer `layer`, if it slides.
    pub fn window(&self, layer: usize) -> Option<usize> {
        self.sliding_window
            .filter(|_| self.sliding_layers.get(layer).copied().unwrap_or(false))
    }

    /// The scale of the attention scores.
    pub fn attention_scale(&self) -> f64 {
        self.query_pre_attn_scalar
            .unwrap_or(self.head_dim as f64)
            .powf(-0.5)
    }

    /// RoPE's inverse frequencies and the factor on cos/sin, as transformers'
    /// `ROPE_INIT_FUNCTIONS` computes them for this config.
    pub fn rope_frequencies(&self) -> (Vec<f64>, f64) {
        let dim = self.rope_dims();
        let base = self.rope_theta;
        let inv: Vec<f64> = (0..dim / 2)
            .map(|i| 1.0 / base.powf((2 * i) as f64 / dim as f64))
            .collect();
        match &self.rope_scaling {
            RopeScaling::None => (inv, 1.0),
            RopeScaling::Linear { factor } => (inv.iter().map(|f| f / factor).collect(), 1.0),
            RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings: old,
            } => {
                let (low_wl, high_wl) = (old / low_freq_factor, old / high_freq_factor);
                let f = inv
                    .iter()
                    .map(|&f| {
                        let wl = 2.0 * std::f64::consts::PI / f;
                        if wl < high_wl {
                            f
                        } else if wl > low_wl {
                            f / factor
                        } else {
                            let s =
                                (old / wl - low_freq_factor) / (high_freq_factor - low_freq_factor);
                            (1.0 - s) * f / factor + s * f
                        }
                    })
                    .collect();
                (f, 1.0)
            }
            RopeScaling::Yarn {
                factor,
                original_max_position_embeddings: old,
                beta_fast,
                beta_slow,
                attention_factor,
                mscale,
                mscale_all_dim,
                truncate,
            } => {
                let get_mscale = |scale: f64, m: f64| {
                    if scale <= 1.0 {
                        1.0
                    } else {
                        0.1 * m * scale.ln() + 1.0
                    }
                };
                let att = attention_factor.unwrap_or(match (mscale, mscale_all_dim) {
                    (Some(m), Some(a)) if *m != 0.0 && *a != 0.0 => {
                        get_mscale(*factor, *m) / get_mscale(*factor, *a)
                    }
                    _ => get_mscale(*factor, 1.0),
                });
                let d = dim as f64;
                let corr = |rot: f64| {
                    (d * (old / (rot * 2.0 * std::f64::consts::PI)).ln()) / (2.0 * base.ln())
                };
                let (mut low, mut high) = (corr(*beta_fast), corr(*beta_slow));
                if *truncate {
                    (low, high) = (low.floor(), high.ceil());
                }
                let (low, mut high) = (low.max(0.0), high.min(d - 1.0));
                if low == high {
                    high += 0.001;
                }
                let f = inv
                    .iter()
                    .enumerate()
                    .map(|(i, &f)| {
                        let ramp = ((i as f64 - low) / (high - low)).clamp(0.0, 1.0);
                        let extra = 1.0 - ramp;
                        (f / factor) * (1.0 - extra) + f * extra
                    })
                    .collect();
                (f, att)
            }
        }
    }

    /// Reads a config.json value (missing optional fields take transformers' defaults for
    /// the architecture).
    pub fn from_json(v: &Value) -> Result<DecoderConfig> {
        let model_type = v
            .get("model_type")
            .and_then(Value::as_str)
            .unwrap_or("llama");
        let arch = Arch::from_model_type(model_type).ok_or_else(|| {
            cfg_err(format!(
                "model_type {model_type:?} is not one of {:?}",
                Arch::ALL.map(|a| a.model_type())
            ))
        })?;
        let int = |k: &str| v.get(k).and_then(Value::as_u64).map(|x| x as usize);
        let need =
            |k: &str| int(k).ok_or_else(|| cfg_err(format!("config.json has no integer {k:?}")));
        let float = |k: &str| v.get(k).and_then(Value::as_f64);
        let flag = |k: &str| v.get(k).and_then(Value::as_bool);
        let heads = need("num_attention_heads")?;
        let hidden = need("hidden_size")?;
        // transformers 5 writes rope_theta and the scaling inside "rope_parameters"; older
        // files have "rope_theta" and "rope_scaling" at the top.
        let rope = v
            .get("rope_parameters")
            .filter(|p| p.is_object())
            .or_else(|| v.get("rope_scaling").filter(|p| p.is_object()));
        let rp = |k: &str| rope.and_then(|p| p.get(k)).and_then(Value::as_f64);
        let rope_theta = float("rope_theta")
            .or_else(|| rp("rope_theta"))
            .unwrap_or(10000.0);
        let rope_type = rope
            .and_then(|p| p.get("rope_type").or_else(|| p.get("type")))
            .and_then(Value::as_str)
            .unwrap_or("default");
        let max_pos = int("max_position_embeddings").unwrap_or(2048);
        let rneed =
            |k: &str| rp(k).ok_or_else(|| cfg_err(format!("rope_type {rope_type:?} needs {k:?}")));
        let rope_scaling = match rope_type {
            "default" => RopeScaling::None,
            "linear" => RopeScaling::Linear {
                factor: rneed("factor")?,
            },
            "llama3" => RopeScaling::Llama3 {
                factor: rneed("factor")?,
                low_freq_factor: rneed("low_freq_factor")?,
                high_freq_factor: rneed("high_freq_factor")?,
                original_max_position_embeddings: rneed("original_max_position_embeddings")?,
            },
            "yarn" => {
                let old = rneed("original_max_position_embeddings")?;
                RopeScaling::Yarn {
                    factor: rp("factor").unwrap_or(max_pos as f64 / old),
                    original_max_position_embeddings: old,
                    beta_fast: rp("beta_fast").filter(|x| *x != 0.0).unwrap_or(32.0),
                    beta_slow: rp("beta_slow").filter(|x| *x != 0.0).unwrap_or(1.0),
                    attention_factor: rp("attention_factor"),
                    mscale: rp("mscale"),
                    mscale_all_dim: rp("mscale_all_dim"),
                    truncate: rope
                        .and_then(|p| p.get("truncate"))
                        .and_then(Value::as_bool)
                        .unwrap_or(true),
                }
            }
            t => {
                return Err(cfg_err(format!(
                    "rope_type {t:?} is not supported (default, linear, llama3, yarn are)"
                )))
            }
        };
        let partial_rotary_factor = rp("partial_rotary_factor")
            .or_else(|| float("partial_rotary_factor"))
            .unwrap_or(1.0);
        let layers = need("num_hidden_layers")?;
        // Checked before the per-layer lists below are built from it.
        super::check_limits(
            "DecoderConfig",
            &[("num_hidden_layers", layers, MAX_LAYERS)],
        )?;
        let attention_bias = flag("attention_bias").unwrap_or(false);
        // Which layers slide: transformers 5 writes "layer_types"; older files imply it.
        let window = match arch {
            Arch::Qwen2 if !flag("use_sliding_window").unwrap_or(false) => None,
            Arch::Llama | Arch::Qwen3 if !flag("use_sliding_window").unwrap_or(false) => None,
            _ => int("sliding_window"),
        };
        let sliding_layers: Vec<bool> = match v.get("layer_types").and_then(Value::as_array) {
            Some(types) => types
                .iter()
                .map(|t| t.as_str() == Some("sliding_attention"))
                .collect(),
            None => (0..layers)
                .map(|i| match arch {
                    Arch::Mistral | Arch::Phi3 => true,
                    Arch::Qwen2 | Arch::Qwen3 => i >= int("max_window_layers").unwrap_or(layers),
                    Arch::Gemma2 => i % 2 == 0,
                    Arch::Llama => false,
                })
                .collect(),
        };
        let eos_token_ids = match v.get("eos_token_id") {
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_u64).collect(),
            Some(x) => x.as_u64().into_iter().collect(),
            None => Vec::new(),
        };
        let act = v
            .get("hidden_activation")
            .or_else(|| v.get("hidden_act"))
            .and_then(Value::as_str)
            .unwrap_or(if arch == Arch::Gemma2 {
                "gelu_pytorch_tanh"
            } else {
                "silu"
            });
        let activation = match act {
            "silu" | "swish" => Activation::Silu,
            "gelu_pytorch_tanh" | "gelu_new" => Activation::GeluTanh,
            a => {
                return Err(cfg_err(format!(
                    "hidden_act {a:?} is not supported (silu, gelu_pytorch_tanh are)"
                )))
            }
        };
        let gemma = arch == Arch::Gemma2;
        let c = DecoderConfig {
            arch,
            vocab_size: need("vocab_size")?,
            hidden_size: hidden,
            intermediate_size: need("intermediate_size")?,
            num_hidden_layers: layers,
            num_attention_heads: heads,
            num_key_value_heads: int("num_key_value_heads").unwrap_or(heads),
            head_dim: int("head_dim").unwrap_or(hidden / heads.max(1)),
            rms_norm_eps: float("rms_norm_eps").unwrap_or(1e-6),
            rope_theta,
            rope_scaling,
            partial_rotary_factor,
            max_position_embeddings: max_pos,
            tie_word_embeddings: flag("tie_word_embeddings").unwrap_or(gemma),
            qkv_bias: arch == Arch::Qwen2 || attention_bias,
            o_bias: arch != Arch::Qwen2 && attention_bias,
            mlp_bias: flag("mlp_bias").unwrap_or(false),
            activation,
            sliding_window: window,
            sliding_layers: if window.is_some() {
                sliding_layers
            } else {
                Vec::new()
            },
            query_pre_attn_scalar: float("query_pre_attn_scalar").filter(|_| gemma),
            attn_logit_softcapping: float("attn_logit_softcapping").filter(|_| gemma),
            final_logit_softcapping: float("final_logit_softcapping").filter(|_| gemma),
            bos_token_id: v.get("bos_token_id").and_then(Value::as_u64),
            eos_token_ids,
        };
        c.validate()?;
        Ok(c)
    }

    /// config.json as transformers writes it for this architecture.
    pub fn to_json(&self, dtype: DType) -> Value {
        let torch_dtype = match dtype {
            DType::BF16 => "bfloat16",
            DType::F16 => "float16",
            _ => "float32",
        };
        let rope = match &self.rope_scaling {
            RopeScaling::None => json!({"rope_type": "default", "rope_theta": self.rope_theta}),
            RopeScaling::Linear { factor } => {
                json!({"rope_type": "linear", "rope_theta": self.rope_theta, "factor": factor})
            }
            RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings,
            } => json!({
                "rope_type": "llama3", "rope_theta": self.rope_theta, "factor": factor,
                "low_freq_factor": low_freq_factor, "high_freq_factor": high_freq_factor,
                "original_max_position_embeddings": original_max_position_embeddings,
            }),
            RopeScaling::Yarn {
                factor,
                original_max_position_embeddings,
                beta_fast,
                beta_slow,
                attention_factor,
                mscale,
                mscale_all_dim,
                truncate,
            } => json!({
                "rope_type": "yarn", "rope_theta": self.rope_theta, "factor": factor,
                "original_max_position_embeddings": original_max_position_embeddings,
                "beta_fast": beta_fast, "beta_slow": beta_slow,
                "attention_factor": attention_factor, "mscale": mscale,
                "mscale_all_dim": mscale_all_dim, "truncate": truncate,
            }),
        };
        let mut rope = rope;
        if self.partial_rotary_factor != 1.0 {
            rope["partial_rotary_factor"] = json!(self.partial_rotary_factor);
        }
        let eos = match self.eos_token_ids.as_slice() {
            [] => Value::Null,
            [one] => json!(one),
            many => json!(many),
        };
        let mut v = json!({
            "architectures": [self.arch.class_name()],
            "model_type": self.arch.model_type(),
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "head_dim": self.head_dim,
            "rms_norm_eps": self.rms_norm_eps,
            "rope_theta": self.rope_theta,
            "rope_parameters": rope,
            "max_position_embeddings": self.max_position_embeddings,
            "tie_word_embeddings": self.tie_word_embeddings,
            "attention_bias": self.o_bias,
            "mlp_bias": self.mlp_bias,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": eos,
            "torch_dtype": torch_dtype,
        });
        let act = match self.activation {
            Activation::Silu => "silu",
            Activation::GeluTanh => "gelu_pytorch_tanh",
        };
        v[if self.arch == Arch::Gemma2 {
            "hidden_activation"
        } else {
            "hidden_act"
        }] = json!(act);
        if let Some(w) = self.sliding_window {
            v["sliding_window"] = json!(w);
            v["use_sliding_window"] = json!(true);
            v["layer_types"] = json!(self
                .sliding_layers
                .iter()
                .map(|&s| if s {
                    "sliding_attention"
                } else {
                    "full_attention"
                })
                .collect::<Vec<_>>());
        } else if self.arch == Arch::Mistral || self.arch == Arch::Phi3 || self.arch == Arch::Gemma2
        {
            v["sliding_window"] = Value::Null;
        }
        for (k, x) in [
            ("query_pre_attn_scalar", self.query_pre_attn_scalar),
            ("attn_logit_softcapping", self.attn_logit_softcapping),
            ("final_logit_softcapping", self.final_logit_softcapping),
        ] {
            if self.arch == Arch::Gemma2 {
                v[k] = json!(x);
            }
        }
        v
    }
}

/// `weight (out, in)` N(0, 0.02) as transformers initializes it, and a zero bias if asked.
fn proj(inp: usize, out: usize, bias: bool, key: &Array, dtype: DType) -> Result<Linear> {
    Linear::from_arrays(
        ingot::random::normal(key, &[out, inp], 0.0, 0.02, dtype)?,
        if bias {
            Some(ingot::zeros(&[out], dtype)?)
        } else {
            None
        },
    )
}

/// RMSNorm as transformers computes it: statistics in f32; Llama-style norms cast the
/// normalized value back before multiplying by the weight, Gemma's multiply by `1 + weight`
/// in f32 and cast after.
#[derive(Clone)]
struct Norm {
    weight: Param,
    eps: f64,
    gemma: bool,
}

impl Norm {
    fn new(dim: usize, eps: f64, gemma: bool, dtype: DType) -> Result<Norm> {
        let w = if gemma {
            ingot::zeros(&[dim], dtype)?
        } else {
            ingot::ones(&[dim], dtype)?
        };
        // A buffer of its own, as a loaded weight has: `ones` is one element broadcast,
        // which the GPU kernels would copy to a row at every call.
        let w = ingot::copy(&w)?;
        Ok(Norm {
            weight: Param::new(w),
            eps,
            gemma,
        })
    }

    fn forward(&self, x: &Array) -> Result<Array> {
        let dt = x.dtype();
        if !self.gemma {
            // One fused node; it rounds once where transformers rounds before the weight
            // multiply too (at most an ulp of x's dtype apart).
            return ingot::fast::rms_norm(x, Some(&self.weight.value), self.eps);
        }
        let stat = if dt == DType::F64 {
            DType::F64
        } else {
            DType::F32
        };
        let xs = ingot::astype(x, stat)?;
        let ms = ingot::mean(&ingot::square(&xs)?, Some(&[-1]), true)?;
        let y = ingot::multiply(&xs, &ingot::rsqrt(&ingot::add(&ms, self.eps)?)?)?;
        let w = &self.weight.value;
        if self.gemma {
            let scale = ingot::add(&ingot::astype(w, stat)?, 1.0)?;
            ingot::astype(&ingot::multiply(&y, &scale)?, dt)
        } else {
            ingot::multiply(&ingot::astype(w, dt)?, &ingot::astype(&y, dt)?)
        }
    }
}

impl Module for Norm {
    fn visit(&self, f: &mut dyn FnMut(&str, &Param)) {
        f("weight", &self.weight);
    }
    fn visit_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
        f("weight", &mut self.weight);
    }
}

/// q, k and v as three projections or Phi-3's one `qkv_proj`.
#[derive(Clone)]
enum Qkv {
    Split { q: Linear, k: Linear, v: Linear },
    Fused(Linear),
}

#[derive(Clone)]
struct Attention {
    qkv: Qkv,
    o_proj: Linear,
    /// Qwen3's per-head norms of q and k.
    qk_norm: Option<(Norm, Norm)>,
}

/// gate and up as two projections or Phi-3's one `gate_up_proj`.
#[derive(Clone)]
enum GateUp {
    Split { gate: Linear, up: Linear },
    Fused(Linear),
}

#[derive(Clone)]
struct Mlp {
    gate_up: GateUp,
    down_proj: Linear,
}

#[derive(Clone)]
struct Block {
    input_layernorm: Norm,
    self_attn: Attention,
    post_attention_layernorm: Norm,
    /// Gemma 2's norms around the MLP (its post_attention_layernorm closes the attention).
    feedforward_norms: Option<(Norm, Norm)>,
    mlp: Mlp,
}

/// Keys and values of the positions seen so far, per layer `(B, kv_heads, T, head_dim)`,
/// for generating a token at a time without recomputing the prefix.
///
/// Each layer's keys live in a preallocated buffer (grown in steps of `step` positions,
/// or sized once by [`KvCache::with_capacity`]); a new token's keys are written into it
/// with `slice_update`, which writes in place when nothing else holds the buffer — the
/// case once the previous step's logits are evaluated — so appending never copies the
/// cache. Sliding-window layers keep a rotating buffer of `window` positions.
#[derive(Clone, Default)]
pub struct KvCache {
    layers: Vec<LayerKv>,
    offset: usize,
    capacity: usize,
    /// Left padding of each batch row (see [`Decoder::forward_padded`]).
    pads: Vec<usize>,
}

#[derive(Clone, Default)]
struct LayerKv {
    k: Option<Array>,
    v: Option<Array>,
    /// The window of a rotating layer.
    window: Option<usize>,
}

/// Where the keys an attention call sees sit in the sequence.
enum KeyPositions {
    /// Positions `0..n` in order.
    Prefix,
    /// Explicit positions, one per key.
    At(Vec<usize>),
}

/// Growth step of an unsized cache, in positions.
const CACHE_STEP: usize = 256;

impl KvCache {
    pub fn new() -> KvCache {
        KvCache::default()
    }

    /// A cache whose buffers hold `positions` tokens before they grow (a generation's
    /// prompt plus new tokens), so memory stays flat once they are allocated.
    pub fn with_capacity(positions: usize) -> KvCache {
        KvCache {
            capacity: positions,
            ..KvCache::default()
        }
    }

    /// Left-padding positions of each row, when the batch was padded.
    pub fn pads(&self) -> &[usize] {
        &self.pads
    }

    /// Positions cached so far (padding included).
    pub fn len(&self) -> usize {
        self.offset
    }
    pub fn is_empty(&self) -> bool {
        self.offset == 0
    }

    /// Forgets the positions from `n` on, so that a conversation can go on from a shared
    /// prefix. A sliding-window layer that already overwrote older positions cannot go
    /// back: then the whole cache is cleared, and `false` says so.
    pub fn truncate(&mut self, n: usize) -> bool {
        if n >= self.offset {
            return true;
        }
        let wrapped = self
            .layers
            .iter()
            .any(|l| l.window.is_some_and(|w| self.offset > w));
        if wrapped || n == 0 {
            *self = KvCache::with_capacity(self.capacity);
            return n == 0;
        }
        self.offset = n;
        true
    }

    /// The key and value buffers of `layer` (the preallocated arrays, longer than
    /// [`KvCache::len`] positions), for inspection.
    pub fn buffers(&self, layer: usize) -> Option<(&Array, &Array)> {
        let l = self.layers.get(layer)?;
        Some((l.k.as_ref()?, l.v.as_ref()?))
    }

    /// Stores `k`, `v` `(B, H, L, D)` of positions `offset..offset + L` for `layer` and
    /// returns the keys and values attention should read with their positions.
    fn update(
        &mut self,
        layer: usize,
        k: Array,
        v: Array,
        window: Option<usize>,
    ) -> Result<(Array, Array, KeyPositions)> {
        if self.layers.len() <= layer {
            self.layers.resize(layer + 1, LayerKv::default());
        }
        let (offset, cap) = (self.offset, self.capacity);
        let lk = &mut self.layers[layer];
        let l = k.shape()[2];
        let end = offset + l;
        if let Some(w) = window {
            lk.window = Some(w);
            return lk.update_rotating(k, v, offset, w);
        }
        let have = lk.k.as_ref().map_or(0, |b| b.shape()[2]);
        if have < end {
            let want = cap.max(end.div_ceil(CACHE_STEP) * CACHE_STEP);
            lk.k = Some(grown(lk.k.take(), &k, offset, want)?);
            lk.v = Some(grown(lk.v.take(), &v, offset, want)?);
        }
        let at = [SliceArg::ALL, SliceArg::ALL, range(offset, end)];
        // Taken out of the cache so the update is the buffer's only holder (donation).
        let kb = ingot::slice_update(&lk.k.take().expect("allocated"), &k, &at)?;
        let vb = ingot::slice_update(&lk.v.take().expect("allocated"), &v, &at)?;
        let upto = [SliceArg::ALL, SliceArg::ALL, range(0, end)];
        let (kv, vv) = (ingot::slice(&kb, &upto)?, ingot::slice(&vb, &upto)?);
        lk.k = Some(kb);
        lk.v = Some(vb);
        Ok((kv, vv, KeyPositions::Prefix))
    }
}

fn range(a: usize, b: usize) -> SliceArg {
    SliceArg::range(a as isize, b as isize)
}

/// A buffer of `want` positions shaped like `like` holding the first `keep` positions of
/// `old`.
fn grown(old: Option<Array>, like: &Array, keep: usize, want: usize) -> Result<Array> {
    let s = like.shape();
    let fresh = ingot::zeros(&[s[0], s[1], want - keep, s[3]], like.dtype())?;
    match old {
        Some(o) if keep > 0 => {
            let kept = ingot::slice(&o, &[SliceArg::ALL, SliceArg::ALL, range(0, keep)])?;
            ingot::concatenate(&[kept, fresh], Some(2))
        }
        _ => Ok(fresh),
    }
}

impl LayerKv {
    /// A sliding-window layer: position p lives in slot `p % window`. One new token (or a
    /// block that overwrites nothing still visible) is written in place; a longer block
    /// that wraps attends over the old window and itself, then refills the slots.
    fn update_rotating(
        &mut self,
        k: Array,
        v: Array,
        offset: usize,
        w: usize,
    ) -> Result<(Array, Array, KeyPositions)> {
        let l = k.shape()[2];
        let end = offset + l;
        if self.k.is_none() {
            let s = k.shape();
            self.k = Some(ingot::zeros(&[s[0], s[1], w, s[3]], k.dtype())?);
            self.v = Some(ingot::zeros(&[s[0], s[1], w, v.shape()[3]], v.dtype())?);
        }
        if end <= w || l == 1 {
            let slot = offset % w;
            let at = [SliceArg::ALL, SliceArg::ALL, range(slot, slot + l)];
            let kb = ingot::slice_update(&self.k.take().expect("allocated"), &k, &at)?;
            let vb = ingot::slice_update(&self.v.take().expect("allocated"), &v, &at)?;
            let out = if end <= w {
                let upto = [SliceArg::ALL, SliceArg::ALL, range(0, end)];
                (
                    ingot::slice(&kb, &upto)?,
                    ingot::slice(&vb, &upto)?,
                    KeyPositions::Prefix,
                )
            } else {
                // Every slot holds one of the last `w` positions.
                let pos = (0..w).map(|s| slot_position(s, end, w)).collect();
                (kb.clone(), vb.clone(), KeyPositions::At(pos))
            };
            self.k = Some(kb);
            self.v = Some(vb);
            return Ok(out);
        }
        // The visible old positions in order, then the block.
        let start = offset.saturating_sub(w);
        let order: Vec<i32> = (start..offset).map(|p| (p % w) as i32).collect();
        let idx = Array::from_slice(&order, &[order.len()])?;
        let (kb, vb) = (
            self.k.take().expect("allocated"),
            self.v.take().expect("allocated"),
        );
        let ka = ingot::concatenate(&[ingot::take(&kb, &idx, Some(2))?, k], Some(2))?;
        let va = ingot::concatenate(&[ingot::take(&vb, &idx, Some(2))?, v], Some(2))?;
        // Slot s keeps the position of the last `w` that falls in it.
        let refill: Vec<i32> = (0..w)
            .map(|s| (slot_position(s, end, w) - start) as i32)
            .collect();
        let ridx = Array::from_slice(&refill, &[w])?;
        self.k = Some(ingot::take(&ka, &ridx, Some(2))?);
        self.v = Some(ingot::take(&va, &ridx, Some(2))?);
        Ok((ka, va, KeyPositions::At((start..end).collect())))
    }
}

/// The position in slot `s` of a window of `w` whose newest position is `end - 1`
/// (`end >= w`).
fn slot_position(s: usize, end: usize, w: usize) -> usize {
    let first = end - w;
    first + (s + w - first % w) % w
}

/// A decoder-only language model: token ids `(B, L)` to next-token logits `(B, L, vocab)`.
#[derive(Clone)]
pub struct Decoder {
    pub config: DecoderConfig,
    embed_tokens: Embedding,
    layers: Vec<Block>,
    norm: Norm,
    lm_head: Option<Linear>,
    rope: RoPE,
    /// Set by [`Decoder::shard`]: this process's group and whether the head is split.
    tp: Option<(Group, bool)>,
}

impl Decoder {
    /// A model with fresh weights (N(0, 0.02), norms at identity) of `dtype`, from `key`.
    pub fn new(config: &DecoderConfig, key: &Array, dtype: DType) -> Result<Decoder> {
        config.validate()?;
        let c = config;
        let (h, hd) = (c.hidden_size, c.head_dim);
        let (nq, nkv) = (c.num_attention_heads * hd, c.num_key_value_heads * hd);
        let gemma = c.arch == Arch::Gemma2;
        let eps = c.rms_norm_eps;
        let keys = ingot::random::split(key, c.num_hidden_layers * 7 + 2)?;
        let k = |i: usize| ingot::random::key_at(&keys, i);
        let mut layers = Vec::with_capacity(c.num_hidden_layers);
        for l in 0..c.num_hidden_layers {
            let b = 2 + 7 * l;
            let qkv = if c.arch == Arch::Phi3 {
                Qkv::Fused(proj(h, nq + 2 * nkv, c.qkv_bias, &k(b)?, dtype)?)
            } else {
                Qkv::Split {
                    q: proj(h, nq, c.qkv_bias, &k(b)?, dtype)?,
                    k: proj(h, nkv, c.qkv_bias, &k(b + 1)?, dtype)?,
                    v: proj(h, nkv, c.qkv_bias, &k(b + 2)?, dtype)?,
                }
            };
            let gate_up = if c.arch == Arch::Phi3 {
                GateUp::Fused(proj(
                    h,
                    2 * c.intermediate_size,
                    c.mlp_bias,
                    &k(b + 4)?,
                    dtype,
                )?)
            } else {
                GateUp::Split {
                    gate: proj(h, c.intermediate_size, c.mlp_bias, &k(b + 4)?, dtype)?,
                    up: proj(h, c.intermediate_size, c.mlp_bias, &k(b + 5)?, dtype)?,
                }
            };
            layers.push(Block {
                input_layernorm: Norm::new(h, eps, gemma, dtype)?,
                self_attn: Attention {
                    qkv,
                    o_proj: proj(nq, h, c.o_bias, &k(b + 3)?, dtype)?,
                    qk_norm: if c.arch == Arch::Qwen3 {
                        Some((
                            Norm::new(hd, eps, false, dtype)?,
                            Norm::new(hd, eps, false, dtype)?,
                        ))
                    } else {
                        None
                    },
                },
                post_attention_layernorm: Norm::new(h, eps, gemma, dtype)?,
                feedforward_norms: if gemma {
                    Some((
                        Norm::new(h, eps, true, dtype)?,
                        Norm::new(h, eps, true, dtype)?,
                    ))
                } else {
                    None
                },
                mlp: Mlp {
                    gate_up,
                    down_proj: proj(c.intermediate_size, h, c.mlp_bias, &k(b + 6)?, dtype)?,
                },
            });
        }
        let embed_tokens = Embedding {
            weight: Param::new(ingot::random::normal(
                &k(0)?,
                &[c.vocab_size, h],
                0.0,
                0.02,
                dtype,
            )?),
        };
        let (freqs, factor) = c.rope_frequencies();
        Ok(Decoder {
            config: c.clone(),
            embed_tokens,
            layers,
            norm: Norm::new(h, eps, gemma, dtype)?,
            lm_head: if c.tie_word_embeddings {
                None
            } else {
                Some(proj(h, c.vocab_size, false, &k(1)?, dtype)?)
            },
            rope: RoPE::with_frequencies(c.rope_dims(), false, freqs, factor)?,
            tp: None,
        })
    }

    /// Splits the model across `group` for tensor-parallel inference (Megatron's layout):
    /// each process keeps its share of the attention heads (q, k and v rows, o_proj
    /// columns) and of the MLP's columns (gate and up rows, down_proj columns), and an
    /// untied head's vocabulary rows; embeddings and norms stay whole. A forward pass then
    /// runs one `all_sum` after each attention and each MLP (and an `all_gather` of the
    /// logits when the head is split), and each process's KV cache holds its own heads.
    /// The heads, kv heads and MLP width must divide by the group's size. A group of one
    /// changes nothing.
    pub fn shard(&mut self, group: &Group) -> Result<()> {
        let (r, n) = (group.rank(), group.size());
        if n == 1 {
            return Ok(());
        }
        if self.tp.is_some() {
            return Err(Error::invalid(
                "Decoder::shard",
                "the model is split already",
            ));
        }
        let c = &self.config;
        for (what, k) in [
            ("attention heads", c.num_attention_heads),
            ("key-value heads", c.num_key_value_heads),
            ("intermediate_size", c.intermediate_size),
        ] {
            if k % n != 0 {
                return Err(Error::invalid(
                    "Decoder::shard",
                    format!("{what} ({k}) do not split across {n} processes"),
                ));
            }
        }
        let (hd, nh, nkv) = (c.head_dim, c.num_attention_heads, c.num_key_value_heads);
        let rows = |l: &Linear| -> Result<Linear> {
            ShardedLinear::part(l, true, r, n).map(|p| p.local().clone())
        };
        // Input columns; the bias stays on rank 0 only, so the sum adds it once.
        let cols = |l: &Linear| -> Result<Linear> {
            let w = shard_of(&l.weight.value, 1, r, n, "Decoder::shard")?;
            let b = if r == 0 {
                l.bias.as_ref().map(|b| b.value.clone())
            } else {
                None
            };
            Linear::from_arrays(w, b)
        };
        // A joined projection: cut into its parts, take this rank's rows of each, join.
        let joined = |l: &Linear, sizes: &[usize]| -> Result<Linear> {
            let at: Vec<isize> = sizes
                .iter()
                .scan(0, |acc, &k| {
                    *acc += k;
                    Some(*acc as isize)
                })
                .take(sizes.len() - 1)
                .collect();
            let ws = ingot::split(&l.weight.value, ingot::SplitSpec::Indices(at.clone()), 0)?;
            let bs = match &l.bias {
                Some(b) => Some(ingot::split(&b.value, ingot::SplitSpec::Indices(at), 0)?),
                None => None,
            };
            let mut wp = Vec::new();
            let mut bp = Vec::new();
            for (i, w) in ws.iter().enumerate() {
                wp.push(shard_of(w, 0, r, n, "Decoder::shard")?);
                if let Some(bs) = &bs {
                    bp.push(shard_of(&bs[i], 0, r, n, "Decoder::shard")?);
                }
            }
            // The joined parts are a new buffer already (no copy needed).
            let w = ingot::concatenate(&wp, Some(0))?;
            let b = if bp.is_empty() {
                None
            } else {
                Some(ingot::concatenate(&bp, Some(0))?)
            };
            let mut out = vec![w.clone()];
            out.extend(b.iter().cloned());
            ingot::eval(&out)?;
            Linear::from_arrays(w, b)
        };
        for blk in &mut self.layers {
            blk.self_attn.qkv = match &blk.self_attn.qkv {
                Qkv::Split { q, k, v } => Qkv::Split {
                    q: rows(q)?,
                    k: rows(k)?,
                    v: rows(v)?,
                },
                Qkv::Fused(p) => Qkv::Fused(joined(p, &[nh * hd, nkv * hd, nkv * hd])?),
            };
            blk.self_attn.o_proj = cols(&blk.self_attn.o_proj)?;
            let inter = c.intermediate_size;
            blk.mlp.gate_up = match &blk.mlp.gate_up {
                GateUp::Split { gate, up } => GateUp::Split {
                    gate: rows(gate)?,
                    up: rows(up)?,
                },
                GateUp::Fused(p) => GateUp::Fused(joined(p, &[inter, inter])?),
            };
            blk.mlp.down_proj = cols(&blk.mlp.down_proj)?;
        }
        let split_head = match &self.lm_head {
            Some(h) if c.vocab_size % n == 0 => {
                self.lm_head = Some(rows(h)?);
                true
            }
            _ => false,
        };
        self.tp = Some((group.clone(), split_head));
        Ok(())
    }

    /// The group the model is split across, if it is.
    pub fn tensor_parallel(&self) -> Option<&Group> {
        self.tp.as_ref().map(|t| &t.0)
    }

    /// The whole result of a row-split projection: the sum over the group.
    fn tp_sum(&self, y: Array) -> Result<Array> {
        match &self.tp {
            Some((g, _)) => ingot::distributed::all_sum(&y, Some(g)),
            None => Ok(y),
        }
    }

    /// Joins each layer's q, k and v projections into one `qkv_proj` and gate and up into
    /// one `gate_up_proj` (Phi-3's layout), for inference: one matrix-vector product where
    /// there were three or two, which reads the weights at a higher fraction of the memory
    /// bandwidth and launches fewer kernels per decoded token. The joined weights are
    /// evaluated a layer at a time, so the extra memory is one layer's. Parameter names
    /// change accordingly; [`Decoder::save_pretrained`] refuses a joined non-Phi-3 model.
    pub fn fuse_projections(&mut self) -> Result<()> {
        let join = |parts: &[&Linear]| -> Result<Linear> {
            let ws: Vec<Array> = parts.iter().map(|l| l.weight.value.clone()).collect();
            let w = ingot::concatenate(&ws, Some(0))?;
            // A part without a bias contributes zeros, should the others have one.
            let b = if parts.iter().any(|l| l.bias.is_some()) {
                let bs = parts
                    .iter()
                    .map(|l| match &l.bias {
                        Some(b) => Ok(b.value.clone()),
                        None => ingot::zeros(&[l.weight.value.shape()[0]], l.weight.value.dtype()),
                    })
                    .collect::<Result<Vec<Array>>>()?;
                Some(ingot::concatenate(&bs, Some(0))?)
            } else {
                None
            };
            let mut out = vec![w.clone()];
            out.extend(b.iter().cloned());
            ingot::eval(&out)?;
            Linear::from_arrays(w, b)
        };
        for blk in &mut self.layers {
            if let Qkv::Split { q, k, v } = &blk.self_attn.qkv {
                blk.self_attn.qkv = Qkv::Fused(join(&[q, k, v])?);
            }
            if let GateUp::Split { gate, up } = &blk.mlp.gate_up {
                blk.mlp.gate_up = GateUp::Fused(join(&[gate, up])?);
            }
        }
        Ok(())
    }

    /// Whether the projections are joined where the architecture keeps them apart
    /// (after [`Decoder::fuse_projections`]).
    pub fn projections_fused(&self) -> bool {
        self.config.arch != Arch::Phi3
            && self.layers.iter().any(|b| {
                matches!(b.self_attn.qkv, Qkv::Fused(_))
                    || matches!(b.mlp.gate_up, GateUp::Fused(_))
            })
    }

    /// A model with the shared random state's key.
    pub fn random(config: &DecoderConfig, dtype: DType) -> Result<Decoder> {
        Decoder::new(config, &rng::next_key()?, dtype)
    }

    /// The dtype of the weights.
    pub fn dtype(&self) -> DType {
        self.embed_tokens.weight.value.dtype()
    }

    /// Next-token logits for every position of `ids (B, L)`.
    pub fn forward(&self, ids: &Array) -> Result<Array> {
        self.forward_cached(ids, None)
    }

    /// Logits for `ids (B, L)` that follow the positions in `cache` (which then holds
    /// them too). Without a cache, the positions start at 0.
    pub fn forward_cached(&self, ids: &Array, cache: Option<&mut KvCache>) -> Result<Array> {
        let pads = cache.as_ref().map(|kc| kc.pads.clone()).unwrap_or_default();
        self.forward_inner(ids, &pads, cache)
    }

    /// [`Decoder::forward_cached`] for a batch of prompts of different lengths, each
    /// left-padded: row b's first `pads[b]` tokens are padding, which no real position
    /// attends to, and its positions count from its first real token. The cache (empty
    /// on this call) keeps the padding for the decoding steps that follow.
    pub fn forward_padded(
        &self,
        ids: &Array,
        pads: &[usize],
        mut cache: Option<&mut KvCache>,
    ) -> Result<Array> {
        let (b, l) = match ids.shape() {
            [b, l] => (*b, *l),
            _ => (usize::MAX, 0),
        };
        // A row's padding may run past this call's block (a prompt prefilled in chunks).
        if pads.len() != b || l == 0 {
            return Err(Error::invalid(
                "Decoder::forward_padded",
                format!(
                    "pads {pads:?} do not fit ids {:?}: one per row",
                    ids.shape()
                ),
            ));
        }
        if let Some(kc) = cache.as_mut() {
            if !kc.is_empty() {
                return Err(Error::invalid(
                    "Decoder::forward_padded",
                    "padding is set on the first call; this cache already holds positions",
                ));
            }
            kc.pads = pads.to_vec();
        }
        self.forward_inner(ids, pads, cache)
    }

    fn forward_inner(
        &self,
        ids: &Array,
        pads: &[usize],
        mut cache: Option<&mut KvCache>,
    ) -> Result<Array> {
        let c = &self.config;
        if ids.ndim() != 2 || !ids.dtype().is_integer() {
            return Err(Error::invalid(
                "Decoder",
                format!(
                    "ids must be integer (batch, length), got {:?} {}",
                    ids.shape(),
                    ids.dtype()
                ),
            ));
        }
        let (b, l) = (ids.shape()[0], ids.shape()[1]);
        let offset = cache.as_ref().map_or(0, |kc| kc.len());
        let padded = pads.iter().any(|&p| p > 0);
        if padded && pads.len() != b {
            return Err(Error::invalid(
                "Decoder",
                format!(
                    "the cache has padding for {} rows, ids {:?}",
                    pads.len(),
                    ids.shape()
                ),
            ));
        }
        // A split model holds its share of the heads.
        let parts = self.tp.as_ref().map_or(1, |t| t.0.size());
        let (hd, nh, nkv) = (
            c.head_dim,
            c.num_attention_heads / parts,
            c.num_key_value_heads / parts,
        );
        let mut x = self.embed_tokens.forward(ids)?;
        if c.arch == Arch::Gemma2 {
            // Gemma scales the embeddings by sqrt(hidden) rounded to the model dtype.
            let s = ingot::astype(&Array::scalar((c.hidden_size as f64).sqrt()), x.dtype())?;
            x = ingot::multiply(&x, &s)?;
        }
        let split_heads = |y: Array, n: usize| ingot::reshape_to(&y, &[b, l, n, hd]);
        let to_bhld = |y: &Array| ingot::transpose(y, Some(&[0, 2, 1, 3]));
        let rope = |y: &Array| -> Result<Array> {
            if padded {
                let starts: Vec<i64> = pads.iter().map(|&p| offset as i64 - p as i64).collect();
                self.rope.forward_rows(y, &starts)
            } else {
                self.rope.forward_at(y, offset)
            }
        };
        for (li, blk) in self.layers.iter().enumerate() {
            let hn = blk.input_layernorm.forward(&x)?;
            let (q, k, v) = match (&blk.self_attn.qkv, &blk.self_attn.qk_norm) {
                // Joined projections: q's and k's heads are adjacent in each row, so one
                // rope over nh + nkv heads rotates both (one launch where there were two).
                (Qkv::Fused(p), None) => {
                    let y = p.forward(&hn)?;
                    let at = vec![((nh + nkv) * hd) as isize];
                    let mut parts = ingot::split(&y, ingot::SplitSpec::Indices(at), -1)?;
                    let v = parts.pop().expect("two parts");
                    let qk = rope(&to_bhld(&split_heads(parts.remove(0), nh + nkv)?)?)?;
                    let mut qk =
                        ingot::split(&qk, ingot::SplitSpec::Indices(vec![nh as isize]), 1)?;
                    let k = qk.pop().expect("two parts");
                    (qk.remove(0), k, to_bhld(&split_heads(v, nkv)?)?)
                }
                (qkv, qk_norm) => {
                    let (q, k, v) = match qkv {
                        Qkv::Split { q, k, v } => {
                            (q.forward(&hn)?, k.forward(&hn)?, v.forward(&hn)?)
                        }
                        Qkv::Fused(p) => {
                            let y = p.forward(&hn)?;
                            let at = vec![(nh * hd) as isize, ((nh + nkv) * hd) as isize];
                            let mut parts =
                                ingot::split(&y, ingot::SplitSpec::Indices(at), -1)?.into_iter();
                            let mut next = || parts.next().expect("three parts");
                            (next(), next(), next())
                        }
                    };
                    let (mut q, mut k) = (split_heads(q, nh)?, split_heads(k, nkv)?);
                    if let Some((qn, kn)) = qk_norm {
                        q = qn.forward(&q)?;
                        k = kn.forward(&k)?;
                    }
                    let q = rope(&to_bhld(&q)?)?;
                    let k = rope(&to_bhld(&k)?)?;
                    (q, k, to_bhld(&split_heads(v, nkv)?)?)
                }
            };
            let window = c.window(li);
            let (k, v, keys) = match cache.as_mut() {
                Some(kc) => kc.update(li, k, v, window)?,
                None => (k, v, KeyPositions::Prefix),
            };
            let o = self.attend(
                &q,
                &k,
                &v,
                &keys,
                offset,
                window,
                if padded { pads } else { &[] },
            )?;
            let o = ingot::reshape_to(
                &ingot::transpose(&o, Some(&[0, 2, 1, 3]))?,
                &[b, l, nh * hd],
            )?;
            let mut a = self.tp_sum(blk.self_attn.o_proj.forward(&o)?)?;
            if let Some((pre_ff, post_ff)) = &blk.feedforward_norms {
                // Gemma 2: post_attention_layernorm closes the attention branch.
                a = blk.post_attention_layernorm.forward(&a)?;
                x = ingot::add(&x, &a)?;
                let m = self.mlp(&blk.mlp, &pre_ff.forward(&x)?)?;
                x = ingot::add(&x, &post_ff.forward(&m)?)?;
            } else {
                x = ingot::add(&x, &a)?;
                let m = self.mlp(&blk.mlp, &blk.post_attention_layernorm.forward(&x)?)?;
                x = ingot::add(&x, &m)?;
            }
        }
        if let Some(kc) = cache {
            kc.offset += l;
        }
        let x = self.norm.forward(&x)?;
        let logits = match &self.lm_head {
            Some(h) => h.forward(&x)?,
            None => self.embed_tokens.as_linear(&x)?,
        };
        let logits = match &self.tp {
            Some((g, true)) => ingot::distributed::all_gather(&logits, -1, Some(g))?,
            _ => logits,
        };
        match c.final_logit_softcapping {
            Some(cap) => softcap(&logits, cap),
            None => Ok(logits),
        }
    }

    fn mlp(&self, m: &Mlp, x: &Array) -> Result<Array> {
        let (gate, up) = match &m.gate_up {
            GateUp::Split { gate, up } => (gate.forward(x)?, up.forward(x)?),
            GateUp::Fused(p) => {
                let y = p.forward(x)?;
                let mut parts = ingot::split(&y, ingot::SplitSpec::Sections(2), -1)?.into_iter();
                let gate = parts.next().expect("two parts");
                (gate, parts.next().expect("two parts"))
            }
        };
        let act = match self.config.activation {
            Activation::Silu => swiglu(&gate, &up)?,
            Activation::GeluTanh => ingot::multiply(&gelu_tanh(&gate)?, &up)?,
        };
        self.tp_sum(m.down_proj.forward(&act)?)
    }

    /// Attention of queries at positions `offset..offset + L` over keys at `keys`, causal
    /// and within the layer's window.
    fn attend(
        &self,
        q: &Array,
        k: &Array,
        v: &Array,
        keys: &KeyPositions,
        offset: usize,
        window: Option<usize>,
        pads: &[usize],
    ) -> Result<Array> {
        let c = &self.config;
        let (l, s) = (q.shape()[2], k.shape()[2]);
        let end = offset + l;
        // The causal pattern alone is right when the keys are the whole prefix, the
        // window (if any) covers it, and no row is padded.
        let plain = matches!(keys, KeyPositions::Prefix)
            && window.is_none_or(|w| end <= w)
            && pads.is_empty();
        let allow = if plain {
            None
        } else {
            let pos: Vec<usize> = match keys {
                KeyPositions::Prefix => (0..s).collect(),
                KeyPositions::At(p) => p.clone(),
            };
            // One (L, S) pattern, or one per row when rows are padded: real queries skip
            // the padding; a padding query sees what precedes it, so nothing is NaN.
            let rows: &[usize] = if pads.is_empty() { &[0] } else { pads };
            let mut m = Vec::with_capacity(rows.len() * l * s);
            for &pad in rows {
                for i in offset..end {
                    m.extend(pos.iter().map(|&j| {
                        j <= i && window.is_none_or(|w| i - j < w) && (j >= pad || i < pad)
                    }));
                }
            }
            if m.iter().all(|&a| a) {
                None
            } else if pads.is_empty() {
                Some(Array::from_slice(&m, &[l, s])?)
            } else {
                Some(Array::from_slice(&m, &[rows.len(), 1, l, s])?)
            }
        };
        let scale = c.attention_scale();
        if let Some(cap) = c.attn_logit_softcapping {
            return softcapped_attention(q, k, v, allow.as_ref(), plain, scale, cap);
        }
        let mask = match &allow {
            Some(a) => Some(SdpaMask::Allow(a)),
            None if plain => Some(SdpaMask::Causal),
            None => None,
        };
        scaled_dot_product_attention(q, k, v, mask, Some(scale))
    }

    /// Writes a Hugging Face folder: config.json and model.safetensors.
    pub fn save_pretrained(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        if self.tp.is_some() {
            return Err(Error::invalid(
                "Decoder::save_pretrained",
                "the model is split across processes (Decoder::shard); save it before splitting",
            ));
        }
        if self.projections_fused() {
            return Err(Error::invalid(
                "Decoder::save_pretrained",
                format!(
                    "the projections were joined by fuse_projections, which {} checkpoints \
                     keep apart; save before joining them",
                    self.config.arch.class_name()
                ),
            ));
        }
        let io = |e: std::io::Error| {
            Error::invalid(
                "Decoder::save_pretrained",
                format!("{}: {e}", dir.display()),
            )
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let text = serde_json::to_string_pretty(&self.config.to_json(self.dtype()))
            .map_err(|e| Error::invalid("Decoder::save_pretrained", e.to_string()))?;
        std::fs::write(dir.join("config.json"), text).map_err(io)?;
        self.save_safetensors(dir.join("model.safetensors"))
    }

    /// Loads a Hugging Face folder (config.json, and model.safetensors or the shards that
    /// model.safetensors.index.json lists), weights cast to `dtype`. Every tensor's name
    /// and shape must match the config.
    pub fn from_pretrained(dir: impl AsRef<Path>, dtype: DType) -> Result<Decoder> {
        let dir = dir.as_ref();
        let config =
            DecoderConfig::from_json(&read_json("from_pretrained", &dir.join("config.json"))?)?;
        // Shapes come from the config; the lazy initial values are replaced unevaluated.
        let mut m = Decoder::new(&config, &rng::key(0), dtype)?;
        let mut tensors = load_hf_weights(dir)?;
        if config.tie_word_embeddings {
            // Some tied checkpoints store the head anyway.
            tensors.remove("lm_head.weight");
        }
        m.load_arrays(tensors, true).map_err(|e| {
            Error::invalid(
                "Decoder::from_pretrained",
                format!("{}: {e}", dir.display()),
            )
        })?;
        Ok(m)
    }
}

/// `silu(gate) * up`, compiled once for the process into one fused elementwise kernel
/// (shapeless, so prompts and single tokens share it; bf16 and f16 fuse too, rounding after
/// each op as the eager ops do): one launch per layer where the eager ops made three.
fn swiglu(gate: &Array, up: &Array) -> Result<Array> {
    type F = fn(&[Array]) -> Result<Vec<Array>>;
    static SWIGLU: std::sync::OnceLock<Compiled<F>> = std::sync::OnceLock::new();
    let c = SWIGLU.get_or_init(|| {
        let f: F = |xs| {
            let silu = ingot::multiply(&xs[0], &ingot::sigmoid(&xs[0])?)?;
            Ok(vec![ingot::multiply(&silu, &xs[1])?])
        };
        let options = CompileOptions {
            shapeless: true,
            ..CompileOptions::default()
        };
        compile_with(f, options)
    });
    let mut out = c.call(&[gate.clone(), up.clone()])?;
    Ok(out.remove(0))
}

/// `cap · tanh(x / cap)`.
fn softcap(x: &Array, cap: f64) -> Result<Array> {
    ingot::multiply(&ingot::tanh(&ingot::divide(x, cap)?)?, cap)
}

/// Gemma 2's attention: scores soft-capped before the mask, which the fused operation does
/// not do, so it is composed (K and V repeated over the query heads of their group).
fn softcapped_attention(
    q: &Array,
    k: &Array,
    v: &Array,
    allow: Option<&Array>,
    causal: bool,
    scale: f64,
    cap: f64,
) -> Result<Array> {
    let (hq, l) = (q.shape()[1], q.shape()[2]);
    let (hkv, s) = (k.shape()[1], k.shape()[2]);
    let group = hq / hkv;
    let rep = |a: &Array| -> Result<Array> {
        if group == 1 {
            return Ok(a.clone());
        }
        ingot::repeat(a, &[group], Some(1))
    };
    let (k, v) = (rep(k)?, rep(v)?);
    let scores = ingot::multiply(&ingot::matmul(q, &ingot::swapaxes(&k, -1, -2)?)?, scale)?;
    let scores = softcap(&scores, cap)?;
    let allow = match (allow, causal) {
        (Some(a), _) => Some(a.clone()),
        (None, true) => {
            let m: Vec<bool> = (0..l)
                .flat_map(|i| (0..s).map(move |j| j + l <= i + s))
                .collect();
            Some(Array::from_slice(&m, &[l, s])?)
        }
        (None, false) => None,
    };
    let stat = if q.dtype() == DType::F64 {
        DType::F64
    } else {
        DType::F32
    };
    let scores = ingot::astype(&scores, stat)?;
    let scores = match allow {
        Some(a) => ingot::where_(&a, &scores, f64::NEG_INFINITY)?,
        None => scores,
    };
    let p = ingot::astype(&ingot::softmax(&scores, -1)?, q.dtype())?;
    ingot::matmul(&p, &v)
}

/// A JSON file of a model folder; errors name `op` and the file.
pub(super) fn read_json(op: &str, path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::invalid(op, format!("{}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| Error::invalid(op, format!("{}: {e}", path.display())))
}

/// The tensors of a Hugging Face folder: model.safetensors, or every shard named by
/// model.safetensors.index.json (memory-mapped).
pub fn load_hf_weights(dir: &Path) -> Result<BTreeMap<String, Array>> {
    let index = dir.join("model.safetensors.index.json");
    if !index.exists() {
        let (t, _) = ingot::io::load_safetensors(dir.join("model.safetensors"))?;
        return Ok(t.into_iter().collect());
    }
    let v = read_json("from_pretrained", &index)?;
    let map = v
        .get("weight_map")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            Error::invalid(
                "from_pretrained",
                format!("{} has no weight_map object", index.display()),
            )
        })?;
    let mut files: Vec<&str> = map.values().filter_map(Value::as_str).collect();
    files.sort_unstable();
    files.dedup();
    let mut out = BTreeMap::new();
    for f in files {
        // A shard name is a file in the folder, never a path out of it.
        if f.contains('/') || f.contains('\\') || f.starts_with('.') {
            return Err(Error::invalid(
                "from_pretrained",
                format!("{}: shard name {f:?} is not a file name", index.display()),
            ));
        }
        let (t, _) = ingot::io::load_safetensors(dir.join(f))?;
        out.extend(t);
    }
    for (name, file) in map {
        if !out.contains_key(name) {
            return Err(Error::invalid(
                "from_pretrained",
                format!(
                    "{name} is listed in {} for {file} but is not in it",
                    index.display()
                ),
            ));
        }
    }
    Ok(out)
}

impl Module for Attention {
    fn visit(&self, f: &mut dyn FnMut(&str, &Param)) {
        match &self.qkv {
            Qkv::Split { q, k, v } => {
                visit_child("q_proj", q, f);
                visit_child("k_proj", k, f);
                visit_child("v_proj", v, f);
            }
            Qkv::Fused(p) => visit_child("qkv_proj", p, f),
        }
        visit_child("o_proj", &self.o_proj, f);
        if let Some((qn, kn)) = &self.qk_norm {
            visit_child("q_norm", qn, f);
            visit_child("k_norm", kn, f);
        }
    }
    fn visit_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
        match &mut self.qkv {
            Qkv::Split { q, k, v } => {
                visit_child_mut("q_proj", q, f);
                visit_child_mut("k_proj", k, f);
                visit_child_mut("v_proj", v, f);
            }
            Qkv::Fused(p) => visit_child_mut("qkv_proj", p, f),
        }
        visit_child_mut("o_proj", &mut self.o_proj, f);
        if let Some((qn, kn)) = &mut self.qk_norm {
            visit_child_mut("q_norm", qn, f);
            visit_child_mut("k_norm", kn, f);
        }
    }
}

impl Module for Mlp {
    fn visit(&self, f: &mut dyn FnMut(&str, &Param)) {
        match &self.gate_up {
            GateUp::Split { gate, up } => {
                visit_child("gate_proj", gate, f);
                visit_child("up_proj", up, f);
            }
            GateUp::Fused(p) => visit_child("gate_up_proj", p, f),
        }
        visit_child("down_proj", &self.down_proj, f);
    }
    fn visit_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
        match &mut self.gate_up {
            GateUp::Split { gate, up } => {
                visit_child_mut("gate_proj", gate, f);
                visit_child_mut("up_proj", up, f);
            }
            GateUp::Fused(p) => visit_child_mut("gate_up_proj", p, f),
        }
        visit_child_mut("down_proj", &mut self.down_proj, f);
    }
}

impl Module for Block {
    fn visit(&self, f: &mut dyn FnMut(&str, &Param)) {
        visit_child("input_layernorm", &self.input_layernorm, f);
        visit_child("self_attn", &self.self_attn, f);
        visit_child(
            "post_attention_layernorm",
            &self.post_attention_layernorm,
            f,
        );
        if let Some((pre, post)) = &self.feedforward_norms {
            visit_child("pre_feedforward_layernorm", pre, f);
            visit_child("post_feedforward_layernorm", post, f);
        }
        visit_child("mlp", &self.mlp, f);
    }
    fn visit_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
        visit_child_mut("input_layernorm", &mut self.input_layernorm, f);
        visit_child_mut("self_attn", &mut self.self_attn, f);
        visit_child_mut(
            "post_attention_layernorm",
            &mut self.post_attention_layernorm,
            f,
        );
        if let Some((pre, post)) = &mut self.feedforward_norms {
            visit_child_mut("pre_feedforward_layernorm", pre, f);
            visit_child_mut("post_feedforward_layernorm", post, f);
        }
        visit_child_mut("mlp", &mut self.mlp, f);
    }
}

impl Module for Decoder {
    fn visit(&self, f: &mut dyn FnMut(&str, &Param)) {
        visit_child("model.embed_tokens", &self.embed_tokens, f);
        for (i, l) in self.layers.iter().enumerate() {
            visit_child(&format!("model.layers.{i}"), l, f);
        }
        visit_child("model.norm", &self.norm, f);
        if let Some(h) = &self.lm_head {
            visit_child("lm_head", h, f);
        }
    }
    fn visit_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
        visit_child_mut("model.embed_tokens", &mut self.embed_tokens, f);
        for (i, l) in self.layers.iter_mut().enumerate() {
            visit_child_mut(&format!("model.layers.{i}"), l, f);
        }
        visit_child_mut("model.norm", &mut self.norm, f);
        if let Some(h) = &mut self.lm_head {
            visit_child_mut("lm_head", h, f);
        }
    }
}
