//! Text generation with a [`Decoder`]: sampling (greedy, temperature, top-k, top-p, min-p,
//! repetition penalty, a seed), end-of-sequence tokens and stop strings, streaming text as
//! it becomes final, and a prompt prefilled in chunks through a KV cache sized once for
//! the whole generation, so memory stays flat while decoding.

use crate::tokenizer::Tokenizer;
use ingot::{Array, DType, Error, Result};
use ingot_nn::models::{Decoder, KvCache};
use serde_json::Value;
use std::path::Path;
use std::time::Instant;

const OP: &str = "generate";

/// How the next token is chosen from the logits. The filters run in Hugging Face's order:
/// repetition penalty, temperature, top-k, top-p, min-p; then a draw (or the argmax when
/// `temperature` is 0).
#[derive(Clone, Debug, PartialEq)]
pub struct Sampling {
    /// 0 picks the most likely token; otherwise logits are divided by it.
    pub temperature: f64,
    /// Keep the k most likely tokens (0: all).
    pub top_k: usize,
    /// Keep the most likely tokens whose probabilities add up to `top_p` (1: all).
    pub top_p: f64,
    /// Drop tokens less likely than `min_p` times the most likely one (0: none).
    pub min_p: f64,
    /// Logits of tokens already in the sequence are divided by it (multiplied when
    /// negative), as in the CTRL paper and transformers (1: off).
    pub repetition_penalty: f64,
    pub seed: u64,
}

impl Default for Sampling {
    /// Greedy.
    fn default() -> Sampling {
        Sampling {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            repetition_penalty: 1.0,
            seed: 0,
        }
    }
}

impl Sampling {
    /// Checks the settings are in range.
    pub fn validate(&self) -> Result<()> {
        let ok = self.temperature >= 0.0
            && self.temperature.is_finite()
            && (0.0..=1.0).contains(&self.top_p)
            && self.top_p > 0.0
            && (0.0..=1.0).contains(&self.min_p)
            && self.repetition_penalty > 0.0
            && self.repetition_penalty.is_finite();
        if ok {
            Ok(())
        } else {
            Err(Error::invalid(
                OP,
                format!(
                    "sampling settings out of range: {self:?} (temperature >= 0, 0 < top_p <= 1, \
                     0 <= min_p <= 1, repetition_penalty > 0)"
                ),
            ))
        }
    }
}

/// A small counter-based generator (SplitMix64): the same seed gives the same draws on
/// every machine and device.
#[derive(Clone, Debug)]
struct SplitMix(u64);

impl SplitMix {
    fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Draws tokens from logits with a [`Sampling`] and its own random state.
#[derive(Clone, Debug)]
pub struct Sampler {
    pub sampling: Sampling,
    rng: SplitMix,
}

impl Sampler {
    pub fn new(sampling: Sampling) -> Result<Sampler> {
        sampling.validate()?;
        let rng = SplitMix(sampling.seed);
        Ok(Sampler { sampling, rng })
    }

    /// The next token from one position's logits `(vocab,)`, given the tokens so far (for
    /// the repetition penalty).
    pub fn sample(&mut self, logits: &[f32], history: &[u32]) -> Result<u32> {
        let s = &self.sampling;
        if logits.is_empty() {
            return Err(Error::invalid(OP, "no logits to sample from"));
        }
        let mut l: Vec<f64> = logits.iter().map(|&x| x as f64).collect();
        if s.repetition_penalty != 1.0 {
            let mut seen = vec![false; l.len()];
            for &t in history {
                if let Some(x) = seen.get_mut(t as usize) {
                    *x = true;
                }
            }
            for (x, _) in l.iter_mut().zip(&seen).filter(|(_, &s)| s) {
                *x = if *x < 0.0 {
                    *x * s.repetition_penalty
                } else {
                    *x / s.repetition_penalty
                };
            }
        }
        let argmax = |v: &[f64]| {
            (0..v.len())
                .max_by(|&i, &j| v[i].total_cmp(&v[j]).then(j.cmp(&i)))
                .unwrap_or(0) as u32
        };
        if s.temperature == 0.0 {
            return Ok(argmax(&l));
        }
        if l.iter().any(|x| x.is_nan()) {
            return Err(Error::invalid(OP, "the logits hold NaN"));
        }
        for x in &mut l {
            *x /= s.temperature;
        }
        // Candidates from most to least likely.
        let mut order: Vec<usize> = (0..l.len()).collect();
        order.sort_by(|&i, &j| l[j].total_cmp(&l[i]).then(i.cmp(&j)));
        if s.top_k > 0 {
            order.truncate(s.top_k);
        }
        let m = l[order[0]];
        if m == f64::NEG_INFINITY {
            return Err(Error::invalid(OP, "every token has probability 0"));
        }
        let mut p: Vec<f64> = order.iter().map(|&i| (l[i] - m).exp()).collect();
        let z: f64 = p.iter().sum();
        p.iter_mut().for_each(|x| *x /= z);
        if s.top_p < 1.0 {
            // Keep the smallest head whose mass reaches top_p (at least one token).
            let mut acc = 0.0;
            let keep = p
                .iter()
                .position(|&x| {
                    acc += x;
                    acc >= s.top_p
                })
                .map_or(p.len(), |i| i + 1);
            p.truncate(keep);
        }
        if s.min_p > 0.0 {
            let floor = s.min_p * p[0];
            let keep = p.iter().take_while(|&&x| x >= floor).count().max(1);
            p.truncate(keep);
        }
        let total: f64 = p.iter().sum();
        let mut u = self.rng.next_f64() * total;
        for (k, &x) in p.iter().enumerate() {
            if u < x {
                return Ok(order[k] as u32);
            }
            u -= x;
        }
        Ok(order[p.len() - 1] as u32)
    }
}

/// Why a generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finish {
    /// An end-of-sequence token (not included in the output).
    Eos,
    /// A stop string (cut from the text).
    Stop,
    /// `max_tokens` were generated.
    Length,
}

/// What [`generate`] does besides sampling.
#[derive(Clone, Debug)]
pub struct GenerateOptions {
    pub max_tokens: usize,
    pub sampling: Sampling,
    /// Tokens that end the generation.
    pub eos: Vec<u32>,
    /// Texts that end the generation; the output stops before them.
    pub stop: Vec<String>,
    /// The prompt goes through the model in blocks of this many tokens, so a long prompt
    /// needs activations of one block at a time.
    pub prefill_chunk: usize,
}

impl Default for GenerateOptions {
    fn default() -> GenerateOptions {
        GenerateOptions {
            max_tokens: 256,
            sampling: Sampling::default(),
            eos: Vec::new(),
            stop: Vec::new(),
            prefill_chunk: 512,
        }
    }
}

/// A finished generation with its timings.
#[derive(Clone, Debug)]
pub struct Generation {
    pub tokens: Vec<u32>,
    pub text: String,
    pub finish: Finish,
    pub prompt_tokens: usize,
    /// Seconds from the start to the first new token's logits (prefill).
    pub time_to_first_token: f64,
    /// Seconds spent on the tokens after the first.
    pub decode_seconds: f64,
}

impl Generation {
    /// New tokens per second after the first.
    pub fn decode_tokens_per_second(&self) -> f64 {
        self.tokens.len().saturating_sub(1) as f64 / self.decode_seconds.max(1e-9)
    }
}

/// The logits of the last position of `(1, L, vocab)` logits, as f32 on the host.
fn last_logits(logits: &Array) -> Result<Vec<f32>> {
    let (l, v) = (logits.shape()[1], logits.shape()[2]);
    let last = ingot::slice(
        logits,
        &[
            ingot::SliceArg::ALL,
            ingot::SliceArg::range(l as isize - 1, l as isize),
        ],
    )?;
    ingot::reshape_to(&ingot::astype(&last, DType::F32)?, &[v])?.to_vec::<f32>()
}

fn ids_array(ids: &[u32]) -> Result<Array> {
    let v: Vec<i32> = ids.iter().map(|&x| x as i32).collect();
    Array::from_slice(&v, &[1, v.len()])
}

/// Runs `ids` through the model after what `cache` holds, `chunk` tokens at a time, and
/// returns the last position's logits.
pub fn prefill(
    model: &Decoder,
    ids: &[u32],
    cache: &mut KvCache,
    chunk: usize,
) -> Result<Vec<f32>> {
    if ids.is_empty() {
        return Err(Error::invalid(OP, "the prompt has no tokens"));
    }
    let vocab = model.config.vocab_size;
    if let Some(bad) = ids.iter().find(|&&t| t as usize >= vocab) {
        return Err(Error::invalid(
            OP,
            format!("token id {bad} is outside the model's vocabulary of {vocab}"),
        ));
    }
    let mut last = None;
    for block in ids.chunks(chunk.max(1)) {
        let logits = model.forward_cached(&ids_array(block)?, Some(cache))?;
        // Each block is evaluated before the next is built, so the graph stays one block.
        logits.eval()?;
        last = Some(logits);
    }
    last_logits(&last.expect("at least one block"))
}

/// Holds back the end of the text that could still become a stop string, and finds one.
struct StopScan<'a> {
    stop: &'a [String],
}

impl StopScan<'_> {
    /// Where a stop string starts in `text`, if one is complete.
    fn find(&self, text: &str) -> Option<usize> {
        self.stop
            .iter()
            .filter(|s| !s.is_empty())
            .filter_map(|s| text.find(s.as_str()))
            .min()
    }
    /// How much of `text` is final: not a possible start of a stop string, not an
    /// incomplete character.
    fn stable_len(&self, text: &str) -> usize {
        let text = text.trim_end_matches('\u{FFFD}');
        let mut n = text.len();
        for s in self.stop {
            for k in (1..s.len()).rev() {
                if s.is_char_boundary(k) && text.ends_with(&s[..k]) {
                    n = n.min(text.len() - k);
                    break;
                }
            }
        }
        n
    }
}

/// Continues `prompt` (token ids) with `model`, calling `on_text` with each piece of text
/// as it becomes final. `cache` may hold an earlier prefix of `prompt`'s conversation:
/// the prompt is appended to it.
pub fn generate_with_cache(
    model: &Decoder,
    tok: &Tokenizer,
    prompt: &[u32],
    cache: &mut KvCache,
    opts: &GenerateOptions,
    mut on_text: impl FnMut(&str),
) -> Result<Generation> {
    let mut sampler = Sampler::new(opts.sampling.clone())?;
    let t0 = Instant::now();
    let mut logits = prefill(model, prompt, cache, opts.prefill_chunk)?;
    let ttft = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let mut history: Vec<u32> = prompt.to_vec();
    let mut tokens = Vec::new();
    let scan = StopScan { stop: &opts.stop };
    let (mut text, mut shown) = (String::new(), 0usize);
    let mut finish = Finish::Length;
    for step in 0..opts.max_tokens {
        let next = sampler.sample(&logits, &history)?;
        if opts.eos.contains(&next) {
            finish = Finish::Eos;
            break;
        }
        tokens.push(next);
        history.push(next);
        // Decoding the whole continuation keeps multi-byte characters whole.
        text = tok.decode(&tokens)?;
        if let Some(at) = scan.find(&text) {
            text.truncate(at);
            if at > shown {
                on_text(&text[shown..]);
            }
            shown = text.len();
            finish = Finish::Stop;
            break;
        }
        let stable = scan.stable_len(&text);
        if stable > shown && text.is_char_boundary(shown) {
            on_text(&text[shown..stable]);
            shown = stable;
        }
        if step + 1 < opts.max_tokens {
            let out = model.forward_cached(&ids_array(&[next])?, Some(cache))?;
            logits = last_logits(&out)?;
        }
    }
    if finish != Finish::Stop && shown < text.len() {
        on_text(&text[shown..]);
    }
    Ok(Generation {
        tokens,
        text,
        finish,
        prompt_tokens: prompt.len(),
        time_to_first_token: ttft,
        decode_seconds: t1.elapsed().as_secs_f64(),
    })
}

/// [`generate_with_cache`] with a fresh cache sized for the prompt and `max_tokens`.
pub fn generate(
    model: &Decoder,
    tok: &Tokenizer,
    prompt: &[u32],
    opts: &GenerateOptions,
    on_text: impl FnMut(&str),
) -> Result<Generation> {
    let mut cache = KvCache::with_capacity(prompt.len() + opts.max_tokens);
    generate_with_cache(model, tok, prompt, &mut cache, opts, on_text)
}

/// The sampling defaults and end tokens a model folder's generation_config.json sets
/// (transformers' defaults where it is silent: greedy unless `do_sample`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GenerationConfig {
    pub sampling: Sampling,
    pub eos: Vec<u32>,
    pub max_new_tokens: Option<usize>,
}

impl GenerationConfig {
    /// Reads `dir/generation_config.json`; a folder without one gives the defaults.
    pub fn from_folder(dir: &Path) -> Result<GenerationConfig> {
        let path = dir.join("generation_config.json");
        if !path.exists() {
            return Ok(GenerationConfig::default());
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Error::io(OP, format!("cannot read {}: {e}", path.display())))?;
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| Error::invalid(OP, format!("{}: {e}", path.display())))?;
        GenerationConfig::from_json(&v)
    }

    pub fn from_json(v: &Value) -> Result<GenerationConfig> {
        let f = |k: &str| v.get(k).and_then(Value::as_f64);
        let sample = v.get("do_sample").and_then(Value::as_bool).unwrap_or(false);
        let sampling = Sampling {
            temperature: if sample {
                f("temperature").unwrap_or(1.0)
            } else {
                0.0
            },
            top_k: if sample {
                v.get("top_k").and_then(Value::as_u64).unwrap_or(50) as usize
            } else {
                0
            },
            top_p: if sample {
                f("top_p").unwrap_or(1.0)
            } else {
                1.0
            },
            min_p: if sample {
                f("min_p").unwrap_or(0.0)
            } else {
                0.0
            },
            repetition_penalty: f("repetition_penalty").unwrap_or(1.0),
            seed: 0,
        };
        sampling.validate()?;
        Ok(GenerationConfig {
            sampling,
            eos: token_ids(v.get("eos_token_id")),
            max_new_tokens: v
                .get("max_new_tokens")
                .and_then(Value::as_u64)
                .map(|x| x as usize),
        })
    }
}

/// An id or a list of ids.
pub(crate) fn token_ids(v: Option<&Value>) -> Vec<u32> {
    match v {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_u64)
            .map(|x| x as u32)
            .collect(),
        Some(x) => x.as_u64().map(|x| x as u32).into_iter().collect(),
        None => Vec::new(),
    }
}
