//! A decoder-only transformer in the Llama layout (RMSNorm, RoPE, SwiGLU, grouped-query
//! attention), with Hugging Face's `LlamaForCausalLM` parameter names and config.json, so
//! a model trained here is a Hugging Face folder and a Hugging Face folder trains here.

use crate::layers::{scaled_dot_product_attention, Embedding, Linear, Mask, RMSNorm, RoPE};
use crate::module::{visit_child, visit_child_mut, Module, ModuleExt, Param, Unary};
use crate::rng;
use ingot::{Array, DType, Error, Result};
use serde_json::{json, Value};
use std::path::Path;

/// The fields of a Hugging Face Llama config.json that shape the model.
#[derive(Clone, Debug, PartialEq)]
pub struct LlamaConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub max_position_embeddings: usize,
    pub tie_word_embeddings: bool,
    pub bos_token_id: Option<u64>,
    pub eos_token_id: Option<u64>,
}

impl LlamaConfig {
    /// Checks the sizes fit together.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::invalid("LlamaConfig", m));
        if self.vocab_size == 0 || self.hidden_size == 0 || self.num_hidden_layers == 0 {
            return bad(format!(
                "vocab_size {}, hidden_size {} and num_hidden_layers {} must be positive",
                self.vocab_size, self.hidden_size, self.num_hidden_layers
            ));
        }
        if self.num_attention_heads == 0
            || self.num_key_value_heads == 0
            || self.num_attention_heads % self.num_key_value_heads != 0
        {
            return bad(format!(
                "{} attention heads do not group over {} key/value heads",
                self.num_attention_heads, self.num_key_value_heads
            ));
        }
        if self.head_dim == 0 || self.head_dim % 2 != 0 {
            return bad(format!(
                "head_dim {} must be even and positive",
                self.head_dim
            ));
        }
        Ok(())
    }

    /// Reads the fields from a config.json value (missing optional fields take Hugging
    /// Face's defaults).
    pub fn from_json(v: &Value) -> Result<LlamaConfig> {
        let need = |k: &str| -> Result<usize> {
            v.get(k)
                .and_then(Value::as_u64)
                .map(|x| x as usize)
                .ok_or_else(|| {
                    Error::invalid("LlamaConfig", format!("config.json has no integer {k:?}"))
                })
        };
        let heads = need("num_attention_heads")?;
        let hidden = need("hidden_size")?;
        let c = LlamaConfig {
            vocab_size: need("vocab_size")?,
            hidden_size: hidden,
            intermediate_size: need("intermediate_size")?,
            num_hidden_layers: need("num_hidden_layers")?,
            num_attention_heads: heads,
            num_key_value_heads: v
                .get("num_key_value_heads")
                .and_then(Value::as_u64)
                .map_or(heads, |x| x as usize),
            head_dim: v
                .get("head_dim")
                .and_then(Value::as_u64)
                .map_or(hidden / heads.max(1), |x| x as usize),
            rms_norm_eps: v
                .get("rms_norm_eps")
                .and_then(Value::as_f64)
                .unwrap_or(1e-6),
            // transformers 5 writes it inside "rope_parameters".
            rope_theta: v
                .get("rope_theta")
                .or_else(|| v.get("rope_parameters").and_then(|p| p.get("rope_theta")))
                .and_then(Value::as_f64)
                .unwrap_or(10000.0),
            max_position_embeddings: v
                .get("max_position_embeddings")
                .and_then(Value::as_u64)
                .map_or(2048, |x| x as usize),
            tie_word_embeddings: v
                .get("tie_word_embeddings")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            bos_token_id: v.get("bos_token_id").and_then(Value::as_u64),
            eos_token_id: v.get("eos_token_id").and_then(Value::as_u64),
        };
        let rope_type = v
            .get("rope_parameters")
            .and_then(|p| p.get("rope_type"))
            .and_then(Value::as_str);
        if rope_type.is_some_and(|t| t != "default") {
            return Err(Error::invalid(
                "LlamaConfig",
                format!(
                    "rope_type {:?} is not supported by this training model",
                    rope_type.unwrap_or_default()
                ),
            ));
        }
        if v.get("rope_scaling").is_some_and(|s| !s.is_null()) {
            return Err(Error::invalid(
                "LlamaConfig",
                "rope_scaling is not supported by this training model",
            ));
        }
        c.validate()?;
        Ok(c)
    }

    /// config.json as Hugging Face writes it for `LlamaForCausalLM`.
    pub fn to_json(&self, dtype: DType) -> Value {
        let torch_dtype = match dtype {
            DType::BF16 => "bfloat16",
            DType::F16 => "float16",
            _ => "float32",
        };
        json!({
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "head_dim": self.head_dim,
            "hidden_act": "silu",
            "rms_norm_eps": self.rms_norm_eps,
            "rope_theta": self.rope_theta,
            "max_position_embeddings": self.max_position_embeddings,
            "tie_word_embeddings": self.tie_word_embeddings,
            "attention_bias": false,
            "mlp_bias": false,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
            "torch_dtype": torch_dtype,
        })
    }
}

/// `weight (out, in)`, no bias, initialized N(0, 0.02) as Hugging Face initializes Llama.
fn proj(inp: usize, out: usize, key: &Array, dtype: DType) -> Result<Linear> {
    Linear::from_arrays(
        ingot::random::normal(key, &[out, inp], 0.0, 0.02, dtype)?,
        None,
    )
}

#[derive(Clone)]
struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    o_proj: Linear,
}

#[derive(Clone)]
struct Mlp {
    gate_proj: Linear,
    up_proj: Linear,
    down_proj: Linear,
}

#[derive(Clone)]
struct Block {
    input_layernorm: RMSNorm,
    self_attn: Attention,
    post_attention_layernorm: RMSNorm,
    mlp: Mlp,
}

/// Keys and values of the positions seen so far, per layer `(B, kv_heads, T, head_dim)`,
/// for generating a token at a time without recomputing the prefix.
#[derive(Clone, Default)]
pub struct KvCache {
    layers: Vec<Option<(Array, Array)>>,
}

impl KvCache {
    pub fn new() -> KvCache {
        KvCache::default()
    }
    /// Positions cached so far.
    pub fn len(&self) -> usize {
        self.layers
            .first()
            .and_then(|l| l.as_ref())
            .map_or(0, |(k, _)| k.shape()[2])
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `LlamaForCausalLM`: token ids `(B, L)` to next-token logits `(B, L, vocab)`.
#[derive(Clone)]
pub struct Llama {
    pub config: LlamaConfig,
    embed_tokens: Embedding,
    layers: Vec<Block>,
    norm: RMSNorm,
    lm_head: Option<Linear>,
    rope: RoPE,
}

impl Llama {
    /// A model with fresh weights (N(0, 0.02), norms ones) of `dtype`, from `key`.
    pub fn new(config: &LlamaConfig, key: &Array, dtype: DType) -> Result<Llama> {
        config.validate()?;
        let c = config;
        let (h, hd) = (c.hidden_size, c.head_dim);
        let keys = ingot::random::split(key, c.num_hidden_layers * 7 + 2)?;
        let k = |i: usize| ingot::random::key_at(&keys, i);
        let mut layers = Vec::with_capacity(c.num_hidden_layers);
        for l in 0..c.num_hidden_layers {
            let b = 2 + 7 * l;
            layers.push(Block {
                input_layernorm: RMSNorm::with(h, c.rms_norm_eps, true, dtype)?,
                self_attn: Attention {
                    q_proj: proj(h, c.num_attention_heads * hd, &k(b)?, dtype)?,
                    k_proj: proj(h, c.num_key_value_heads * hd, &k(b + 1)?, dtype)?,
                    v_proj: proj(h, c.num_key_value_heads * hd, &k(b + 2)?, dtype)?,
                    o_proj: proj(c.num_attention_heads * hd, h, &k(b + 3)?, dtype)?,
                },
                post_attention_layernorm: RMSNorm::with(h, c.rms_norm_eps, true, dtype)?,
                mlp: Mlp {
                    gate_proj: proj(h, c.intermediate_size, &k(b + 4)?, dtype)?,
                    up_proj: proj(h, c.intermediate_size, &k(b + 5)?, dtype)?,
                    down_proj: proj(c.intermediate_size, h, &k(b + 6)?, dtype)?,
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
        Ok(Llama {
            config: c.clone(),
            embed_tokens,
            layers,
            norm: RMSNorm::with(h, c.rms_norm_eps, true, dtype)?,
            lm_head: if c.tie_word_embeddings {
                None
            } else {
                Some(proj(h, c.vocab_size, &k(1)?, dtype)?)
            },
            rope: RoPE::new(hd, false, c.rope_theta)?,
        })
    }

    /// A model with the shared random state's key.
    pub fn random(config: &LlamaConfig, dtype: DType) -> Result<Llama> {
        Llama::new(config, &rng::next_key()?, dtype)
    }

    /// Next-token logits for every position of `ids (B, L)`.
    pub fn forward(&self, ids: &Array) -> Result<Array> {
        self.forward_cached(ids, None)
    }

    /// Logits for `ids (B, L)` that follow the positions in `cache` (which then holds
    /// them too). Without a cache, the positions start at 0.
    pub fn forward_cached(&self, ids: &Array, mut cache: Option<&mut KvCache>) -> Result<Array> {
        let c = &self.config;
        if ids.ndim() != 2 || !ids.dtype().is_integer() {
            return Err(Error::invalid(
                "Llama",
                format!(
                    "ids must be integer (batch, length), got {:?} {}",
                    ids.shape(),
                    ids.dtype()
                ),
            ));
        }
        let (b, l) = (ids.shape()[0], ids.shape()[1]);
        let offset = cache.as_ref().map_or(0, |kc| kc.len());
        if let Some(kc) = cache.as_mut() {
            kc.layers.resize(c.num_hidden_layers, None);
        }
        let (hd, nh, nkv) = (c.head_dim, c.num_attention_heads, c.num_key_value_heads);
        let mut x = self.embed_tokens.forward(ids)?;
        for (li, blk) in self.layers.iter().enumerate() {
            let hn = blk.input_layernorm.forward(&x)?;
            let heads = |y: Array, n: usize| -> Result<Array> {
                ingot::transpose(&ingot::reshape_to(&y, &[b, l, n, hd])?, Some(&[0, 2, 1, 3]))
            };
            let q = self
                .rope
                .forward_at(&heads(blk.self_attn.q_proj.forward(&hn)?, nh)?, offset)?;
            let mut k = self
                .rope
                .forward_at(&heads(blk.self_attn.k_proj.forward(&hn)?, nkv)?, offset)?;
            let mut v = heads(blk.self_attn.v_proj.forward(&hn)?, nkv)?;
            if let Some(kc) = cache.as_mut() {
                if let Some((pk, pv)) = &kc.layers[li] {
                    k = ingot::concatenate(&[pk.clone(), k], Some(2))?;
                    v = ingot::concatenate(&[pv.clone(), v], Some(2))?;
                }
                kc.layers[li] = Some((k.clone(), v.clone()));
            }
            // Grouped-query attention: the fused op reads each key/value head for its
            // nh / nkv query heads in place.
            let o = scaled_dot_product_attention(&q, &k, &v, Some(&Mask::Causal), None, None)?;
            let o = ingot::reshape_to(
                &ingot::transpose(&o, Some(&[0, 2, 1, 3]))?,
                &[b, l, nh * hd],
            )?;
            x = ingot::add(&x, &blk.self_attn.o_proj.forward(&o)?)?;
            let hn = blk.post_attention_layernorm.forward(&x)?;
            let gate = blk.mlp.gate_proj.forward(&hn)?;
            let silu = ingot::multiply(&gate, &ingot::sigmoid(&gate)?)?;
            let up = blk.mlp.up_proj.forward(&hn)?;
            x = ingot::add(
                &x,
                &blk.mlp.down_proj.forward(&ingot::multiply(&silu, &up)?)?,
            )?;
        }
        let x = self.norm.forward(&x)?;
        match &self.lm_head {
            Some(h) => h.forward(&x),
            None => self.embed_tokens.as_linear(&x),
        }
    }

    /// Writes a Hugging Face folder: config.json and model.safetensors.
    pub fn save_pretrained(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        let io = |e: std::io::Error| {
            Error::invalid("Llama::save_pretrained", format!("{}: {e}", dir.display()))
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let dtype = self.embed_tokens.weight.value.dtype();
        let text = serde_json::to_string_pretty(&self.config.to_json(dtype))
            .map_err(|e| Error::invalid("Llama::save_pretrained", e.to_string()))?;
        std::fs::write(dir.join("config.json"), text).map_err(io)?;
        self.save_safetensors(dir.join("model.safetensors"))
    }

    /// Loads a Hugging Face Llama folder (config.json, model.safetensors), weights cast
    /// to `dtype`.
    pub fn from_pretrained(dir: impl AsRef<Path>, dtype: DType) -> Result<Llama> {
        let dir = dir.as_ref();
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Error::invalid("Llama::from_pretrained", format!("{}: {e}", path.display()))
        })?;
        let v: Value = serde_json::from_str(&text).map_err(|e| {
            Error::invalid("Llama::from_pretrained", format!("{}: {e}", path.display()))
        })?;
        let config = LlamaConfig::from_json(&v)?;
        // Shapes come from the file; the initial values are replaced.
        let mut m = Llama::new(&config, &rng::key(0), dtype)?;
        m.load_safetensors(dir.join("model.safetensors"), true)?;
        Ok(m)
    }
}

impl Module for Attention {
    fn visit(&self, f: &mut dyn FnMut(&str, &Param)) {
        visit_child("q_proj", &self.q_proj, f);
        visit_child("k_proj", &self.k_proj, f);
        visit_child("v_proj", &self.v_proj, f);
        visit_child("o_proj", &self.o_proj, f);
    }
    fn visit_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
        visit_child_mut("q_proj", &mut self.q_proj, f);
        visit_child_mut("k_proj", &mut self.k_proj, f);
        visit_child_mut("v_proj", &mut self.v_proj, f);
        visit_child_mut("o_proj", &mut self.o_proj, f);
    }
}

impl Module for Mlp {
    fn visit(&self, f: &mut dyn FnMut(&str, &Param)) {
        visit_child("gate_proj", &self.gate_proj, f);
        visit_child("up_proj", &self.up_proj, f);
        visit_child("down_proj", &self.down_proj, f);
    }
    fn visit_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
        visit_child_mut("gate_proj", &mut self.gate_proj, f);
        visit_child_mut("up_proj", &mut self.up_proj, f);
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
        visit_child_mut("mlp", &mut self.mlp, f);
    }
}

impl Module for Llama {
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
