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
    batch_last_logits(&last.expect("at least one block"))
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

/// One sequence being generated: its sampler, tokens and the text streamed so far.
struct Row<'a> {
    sampler: Sampler,
    history: Vec<u32>,
    tokens: Vec<u32>,
    text: String,
    shown: usize,
    finish: Option<Finish>,
    opts: &'a GenerateOptions,
}

impl<'a> Row<'a> {
    fn new(prompt: &[u32], sampling: Sampling, opts: &'a GenerateOptions) -> Result<Row<'a>> {
        Ok(Row {
            sampler: Sampler::new(sampling)?,
            history: prompt.to_vec(),
            tokens: Vec::new(),
            text: String::new(),
            shown: 0,
            finish: None,
            opts,
        })
    }

    /// Samples the next token from `logits`, streams what text became final, and says
    /// whether the row goes on (the token is then to be fed back).
    fn step(
        &mut self,
        logits: &[f32],
        tok: &Tokenizer,
        on_text: &mut impl FnMut(&str),
    ) -> Result<Option<u32>> {
        let next = self.sampler.sample(logits, &self.history)?;
        if self.opts.eos.contains(&next) {
            return self.end(Finish::Eos, on_text);
        }
        self.tokens.push(next);
        self.history.push(next);
        // Decoding the whole continuation keeps multi-byte characters whole.
        self.text = tok.decode(&self.tokens)?;
        let scan = StopScan {
            stop: &self.opts.stop,
        };
        if let Some(at) = scan.find(&self.text) {
            self.text.truncate(at);
            if at > self.shown {
                on_text(&self.text[self.shown..]);
            }
            self.shown = self.text.len();
            return self.end(Finish::Stop, on_text);
        }
        let stable = scan.stable_len(&self.text);
        if stable > self.shown && self.text.is_char_boundary(self.shown) {
            on_text(&self.text[self.shown..stable]);
            self.shown = stable;
        }
        if self.tokens.len() >= self.opts.max_tokens {
            return self.end(Finish::Length, on_text);
        }
        Ok(Some(next))
    }

    fn end(&mut self, why: Finish, on_text: &mut impl FnMut(&str)) -> Result<Option<u32>> {
        if why != Finish::Stop && self.shown < self.text.len() {
            on_text(&self.text[self.shown..]);
            self.shown = self.text.len();
        }
        self.finish = Some(why);
        Ok(None)
    }

    fn done(self, prompt_tokens: usize, ttft: f64, decode: f64) -> Generation {
        Generation {
            tokens: self.tokens,
            text: self.text,
            finish: self.finish.unwrap_or(Finish::Length),
            prompt_tokens,
            time_to_first_token: ttft,
            decode_seconds: decode,
        }
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
    let mut row = Row::new(prompt, opts.sampling.clone(), opts)?;
    let t0 = Instant::now();
    let mut logits = prefill(model, prompt, cache, opts.prefill_chunk)?;
    let ttft = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    if opts.max_tokens > 0 {
        while let Some(next) = row.step(&logits, tok, &mut on_text)? {
            let out = model.forward_cached(&ids_array(&[next])?, Some(cache))?;
            logits = batch_last_logits(&out)?;
        }
    }
    Ok(row.done(prompt.len(), ttft, t1.elapsed().as_secs_f64()))
}

/// Several prompts in one batch: left-padded to the longest, prefilled together (padding
/// masked, positions counted per row), then decoded a token per row per step until every
/// row has stopped. Row r samples with seed `sampling.seed + r`, so a prompt's first row
/// draws what it draws alone. `on_text(r, text)` streams row r.
pub fn generate_batch(
    model: &Decoder,
    tok: &Tokenizer,
    prompts: &[Vec<u32>],
    opts: &GenerateOptions,
    mut on_text: impl FnMut(usize, &str),
) -> Result<Vec<Generation>> {
    let b = prompts.len();
    if b == 0 {
        return Ok(Vec::new());
    }
    let vocab = model.config.vocab_size;
    let longest = prompts.iter().map(Vec::len).max().unwrap_or(0);
    for (r, p) in prompts.iter().enumerate() {
        if p.is_empty() {
            return Err(Error::invalid(OP, format!("prompt {r} has no tokens")));
        }
        if let Some(bad) = p.iter().find(|&&t| t as usize >= vocab) {
            return Err(Error::invalid(
                OP,
                format!("prompt {r}: token id {bad} is outside the model's vocabulary of {vocab}"),
            ));
        }
    }
    // Padding is masked; any id in the vocabulary will do.
    let pad_id = opts
        .eos
        .first()
        .copied()
        .filter(|&e| (e as usize) < vocab)
        .unwrap_or(0);
    let pads: Vec<usize> = prompts.iter().map(|p| longest - p.len()).collect();
    let mut grid = Vec::with_capacity(b * longest);
    for (p, &n) in prompts.iter().zip(&pads) {
        grid.extend(std::iter::repeat_n(pad_id as i32, n));
        grid.extend(p.iter().map(|&t| t as i32));
    }
    let mut rows = prompts
        .iter()
        .enumerate()
        .map(|(r, p)| {
            let mut s = opts.sampling.clone();
            s.seed = s.seed.wrapping_add(r as u64);
            Row::new(p, s, opts)
        })
        .collect::<Result<Vec<_>>>()?;
    let mut cache = KvCache::with_capacity(longest + opts.max_tokens);
    let t0 = Instant::now();
    let chunk = opts.prefill_chunk.max(1);
    let mut logits = None;
    for c0 in (0..longest).step_by(chunk) {
        let c1 = (c0 + chunk).min(longest);
        let block: Vec<i32> = (0..b)
            .flat_map(|r| grid[r * longest + c0..r * longest + c1].to_vec())
            .collect();
        let ids = Array::from_slice(&block, &[b, c1 - c0])?;
        let out = if c0 == 0 {
            model.forward_padded(&ids, &pads, Some(&mut cache))?
        } else {
            model.forward_cached(&ids, Some(&mut cache))?
        };
        out.eval()?;
        logits = Some(out);
    }
    let mut last = batch_last_logits(&logits.expect("a prompt block"))?;
    let ttft = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let mut live = vec![opts.max_tokens > 0; b];
    while live.iter().any(|&x| x) {
        let mut feed = vec![pad_id as i32; b];
        for r in 0..b {
            if !live[r] {
                continue;
            }
            let row_logits = &last[r * vocab..(r + 1) * vocab];
            match rows[r].step(row_logits, tok, &mut |t| on_text(r, t))? {
                Some(next) => feed[r] = next as i32,
                None => live[r] = false,
            }
        }
        if !live.iter().any(|&x| x) {
            break;
        }
        let out = model.forward_cached(&Array::from_slice(&feed, &[b, 1])?, Some(&mut cache))?;
        last = batch_last_logits(&out)?;
    }
    let decode = t1.elapsed().as_secs_f64();
    Ok(rows
        .into_iter()
        .zip(prompts)
        .map(|(row, p)| row.done(p.len(), ttft, decode))
        .collect())
}

/// The last position's logits of every row of `(B, L, vocab)` logits, row-major f32.
fn batch_last_logits(logits: &Array) -> Result<Vec<f32>> {
    let (b, l, v) = (logits.shape()[0], logits.shape()[1], logits.shape()[2]);
    let last = ingot::slice(
        logits,
        &[
            ingot::SliceArg::ALL,
            ingot::SliceArg::range(l as isize - 1, l as isize),
        ],
    )?;
    ingot::reshape_to(&ingot::astype(&last, DType::F32)?, &[b * v])?.to_vec::<f32>()
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
