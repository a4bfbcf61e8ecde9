//! `ingot generate`, `ingot chat` and `ingot bench-lm`: language-model inference on a
//! Hugging Face folder (or the Shakespeare model the repository ships).

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ingot::{Array, DType, Error, Result};
use ingot_lm::{
    generate_with_cache, ChatTemplate, Finish, GenerateOptions, GenerationConfig, Message,
    Sampling, Tokenizer,
};
use ingot_nn::models::{Bert, Decoder, DecoderConfig, KvCache, Pooling};
use ingot_nn::rng;
use serde_json::{json, Value};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Sampling flags; each one left out takes the folder's generation_config.json value.
#[derive(Args, Debug, Clone)]
pub struct SamplingArgs {
    /// Sampling temperature (0: the most likely token each time).
    #[arg(long)]
    pub temperature: Option<f64>,
    /// Sample among the k most likely tokens (0: all).
    #[arg(long)]
    pub top_k: Option<usize>,
    /// Sample among the most likely tokens holding this much probability (1: all).
    #[arg(long)]
    pub top_p: Option<f64>,
    /// Drop tokens less likely than this fraction of the most likely one.
    #[arg(long)]
    pub min_p: Option<f64>,
    /// Divide the logits of tokens already present by this (1: off).
    #[arg(long)]
    pub repetition_penalty: Option<f64>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// How many tokens to generate at most (default: generation_config.json's, else 256).
    #[arg(long)]
    pub max_tokens: Option<usize>,
    /// Stop when the text contains this (repeatable).
    #[arg(long)]
    pub stop: Vec<String>,
    /// Weights and activations: f32, bf16 or f16 (default: bf16 on a GPU, f32 on the CPU).
    #[arg(long)]
    pub dtype: Option<String>,
    /// Split the model across this many processes (tensor parallelism), started with
    /// `ingot launch -n N -- ingot generate --tp N ...`; rank 0 prints the text.
    #[arg(long, default_value_t = 1)]
    pub tp: usize,
}

fn parse_dtype(s: &Option<String>) -> Result<DType> {
    match s.as_deref() {
        None => Ok(match ingot::default_device() {
            ingot::Device::Cuda(_) => DType::BF16,
            _ => DType::F32,
        }),
        Some("f32" | "float32") => Ok(DType::F32),
        Some("bf16" | "bfloat16") => Ok(DType::BF16),
        Some("f16" | "float16") => Ok(DType::F16),
        Some(o) => Err(Error::invalid(
            "--dtype",
            format!("{o:?} is not f32, bf16 or f16"),
        )),
    }
}

/// A model folder loaded for inference.
struct Loaded {
    model: Decoder,
    tok: Tokenizer,
    opts: GenerateOptions,
    dir: PathBuf,
}

fn load(dir: &Path, a: &SamplingArgs) -> Result<Loaded> {
    let dtype = parse_dtype(&a.dtype)?;
    let t0 = Instant::now();
    let bar = spinner(&format!("loading {}", dir.display()));
    let mut model = Decoder::from_pretrained(dir, dtype)?;
    // One matrix-vector product for q, k, v and one for gate, up per token.
    model.fuse_projections()?;
    if a.tp > 1 {
        let g = ingot::distributed::init()?;
        if g.size() != a.tp {
            return Err(Error::invalid(
                "--tp",
                format!(
                    "--tp {} needs a world of {} processes, this one has {} (start it with \
                     `ingot launch -n {} -- ...`)",
                    a.tp,
                    a.tp,
                    g.size(),
                    a.tp
                ),
            ));
        }
        model.shard(&g)?;
    }
    // Weights are read (and cast) now, not during the first token.
    let params: Vec<Array> = ingot_nn::ModuleExt::parameters(&model)
        .into_values()
        .collect();
    ingot::eval(&params)?;
    bar.finish_and_clear();
    let tok = Tokenizer::from_file(dir.join("tokenizer.json"))?;
    let gen = GenerationConfig::from_folder(dir)?;
    let base = gen.sampling;
    let sampling = Sampling {
        temperature: a.temperature.unwrap_or(base.temperature),
        top_k: a.top_k.unwrap_or(base.top_k),
        top_p: a.top_p.unwrap_or(base.top_p),
        min_p: a.min_p.unwrap_or(base.min_p),
        repetition_penalty: a.repetition_penalty.unwrap_or(base.repetition_penalty),
        seed: a.seed,
    };
    let mut eos = gen.eos;
    for &e in &model.config.eos_token_ids {
        if !eos.contains(&(e as u32)) {
            eos.push(e as u32);
        }
    }
    let c = &model.config;
    eprintln!(
        "{}: {} layers, hidden {}, {} heads ({} key/value), vocab {}, {dtype}, loaded in {:.2} s",
        c.arch.class_name(),
        c.num_hidden_layers,
        c.hidden_size,
        c.num_attention_heads,
        c.num_key_value_heads,
        c.vocab_size,
        t0.elapsed().as_secs_f64()
    );
    Ok(Loaded {
        model,
        tok,
        opts: GenerateOptions {
            max_tokens: a.max_tokens.or(gen.max_new_tokens).unwrap_or(256),
            sampling,
            eos,
            stop: a.stop.clone(),
            ..GenerateOptions::default()
        },
        dir: dir.to_path_buf(),
    })
}

fn spinner(msg: &str) -> ProgressBar {
    let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if let Ok(s) = ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
        b.set_style(s);
    }
    b.set_message(msg.to_string());
    b.enable_steady_tick(std::time::Duration::from_millis(120));
    b
}

fn report(g: &ingot_lm::Generation) {
    let why = match g.finish {
        Finish::Eos => "end token",
        Finish::Stop => "stop string",
        Finish::Length => "max tokens",
    };
    eprintln!(
        "{} tokens ({why}); prompt of {} tokens, first token after {:.3} s; {:.1} tokens/s after it",
        g.tokens.len(),
        g.prompt_tokens,
        g.time_to_first_token,
        g.decode_tokens_per_second()
    );
}

/// `ingot generate`: streams a continuation of `prompt` (as a user turn of the chat
/// template with `chat`).
pub fn generate(dir: &Path, prompt: &str, chat: bool, a: &SamplingArgs) -> Result<()> {
    let l = load(dir, a)?;
    let text = if chat {
        let t = ChatTemplate::from_folder(&l.dir)?.ok_or_else(|| {
            Error::invalid(
                "generate",
                format!("{} has no chat template", l.dir.display()),
            )
        })?;
        t.render(&[Message::new("user", prompt)], true)?
    } else {
        prompt.to_string()
    };
    let mut ids = if chat {
        l.tok.encode(&text)?
    } else {
        l.tok.encode_special(&text)?
    };
    if ids.is_empty() {
        let start = l
            .model
            .config
            .bos_token_id
            .map(|b| b as u32)
            .or_else(|| l.tok.token_to_id(ingot_lm::END_OF_TEXT));
        ids = start.into_iter().collect();
        if ids.is_empty() {
            return Err(Error::invalid(
                "generate",
                "the prompt is empty and the model has no start token",
            ));
        }
    }
    let ctx = l.model.config.max_position_embeddings;
    if ids.len() + l.opts.max_tokens > ctx {
        eprintln!(
            "note: {} prompt tokens + {} new ones pass the model's {ctx} positions",
            ids.len(),
            l.opts.max_tokens
        );
    }
    // Under tensor parallelism every rank computes the same tokens; rank 0 prints them.
    let quiet = l.model.tensor_parallel().is_some_and(|g| g.rank() != 0);
    let mut out: Box<dyn Write> = if quiet {
        Box::new(std::io::sink())
    } else {
        Box::new(std::io::stdout().lock())
    };
    if !chat {
        let _ = write!(out, "{prompt}");
    }
    let mut cache = KvCache::with_capacity(ids.len() + l.opts.max_tokens);
    let g = generate_with_cache(&l.model, &l.tok, &ids, &mut cache, &l.opts, |t| {
        let _ = write!(out, "{t}");
        let _ = out.flush();
    })?;
    let _ = writeln!(out);
    if !quiet {
        report(&g);
    }
    Ok(())
}

/// `ingot chat`: a conversation on stdin and stdout, rendered with the folder's chat
/// template. Each turn reuses the cached prefix the conversation shares with the last one.
pub fn chat(dir: &Path, system: Option<&str>, a: &SamplingArgs) -> Result<()> {
    let l = load(dir, a)?;
    let t = ChatTemplate::from_folder(&l.dir)?.ok_or_else(|| {
        Error::invalid("chat", format!("{} has no chat template", l.dir.display()))
    })?;
    let mut history: Vec<Message> = system
        .map(|s| Message::new("system", s))
        .into_iter()
        .collect();
    let mut cache = KvCache::new();
    let mut cached: Vec<u32> = Vec::new();
    let stdin = std::io::stdin();
    eprintln!("type a message, an empty line or end of input quits");
    loop {
        eprint!("> ");
        let mut line = String::new();
        if stdin.lock().read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            return Ok(());
        }
        history.push(Message::new("user", line.trim_end()));
        let ids = l.tok.encode(&t.render(&history, true)?)?;
        // The longest prefix shared with what the cache holds is not recomputed.
        let shared = cached.iter().zip(&ids).take_while(|(a, b)| a == b).count();
        let keep = shared.min(ids.len().saturating_sub(1));
        if !cache.truncate(keep) {
            cached.clear();
        }
        let keep = cache.len();
        let mut out = std::io::stdout().lock();
        let g = generate_with_cache(&l.model, &l.tok, &ids[keep..], &mut cache, &l.opts, |s| {
            let _ = write!(out, "{s}");
            let _ = out.flush();
        })?;
        let _ = writeln!(out);
        drop(out);
        report(&g);
        cached = ids;
        cached.extend(&g.tokens);
        // The end token was not fed back; the cache holds one position less than the ids
        // when generation stopped there.
        cached.truncate(cache.len());
        history.push(Message::new("assistant", &g.text));
    }
}

/// What `ingot bench-lm` runs: prompt and new tokens, optionally fewer layers, and whether
/// the projections are joined (as generation does).
pub struct BenchShape {
    pub prompt_tokens: usize,
    pub new_tokens: usize,
    pub layers: Option<usize>,
    pub fuse: bool,
}

/// `ingot bench-lm`: prefill and decode speed and memory of a model of any size with
/// random weights (a folder's config.json or a config file).
pub fn bench_lm(
    source: &Path,
    shape: BenchShape,
    dtype: &Option<String>,
    json_out: Option<&Path>,
    torch: Option<&str>,
) -> Result<()> {
    let path = if source.is_dir() {
        source.join("config.json")
    } else {
        source.to_path_buf()
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::io("bench-lm", format!("cannot read {}: {e}", path.display())))?;
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| Error::invalid("bench-lm", format!("{}: {e}", path.display())))?;
    let BenchShape {
        prompt_tokens,
        new_tokens,
        layers,
        fuse,
    } = shape;
    let mut config = DecoderConfig::from_json(&v)?;
    if let Some(n) = layers {
        config.num_hidden_layers = n;
        config.sliding_layers.truncate(n);
        config.sliding_layers.resize(
            if config.sliding_layers.is_empty() {
                0
            } else {
                n
            },
            false,
        );
    }
    let dtype = parse_dtype(dtype)?;
    if prompt_tokens == 0 || new_tokens == 0 {
        return Err(Error::invalid(
            "bench-lm",
            "--prompt-tokens and --new-tokens must be positive",
        ));
    }
    let bar = spinner("making random weights");
    let mut model = Decoder::new(&config, &rng::key(0), dtype)?;
    if fuse {
        model.fuse_projections()?;
    }
    let params: Vec<Array> = ingot_nn::ModuleExt::parameters(&model)
        .into_values()
        .collect();
    ingot::eval(&params)?;
    let weight_bytes: usize = params.iter().map(|p| p.size() * p.dtype().size()).sum();
    bar.finish_and_clear();
    let device = ingot::default_device();
    let (active, peak, reset): (fn() -> usize, fn() -> usize, fn()) = match device {
        ingot::Device::Cuda(_) => (
            || ingot::memory::cuda::active_memory(0),
            || ingot::memory::cuda::peak_memory(0),
            || ingot::memory::cuda::reset_peak_memory(0),
        ),
        _ => (
            ingot::memory::active_memory,
            ingot::memory::peak_memory,
            ingot::memory::reset_peak_memory,
        ),
    };
    let ids: Vec<i32> = (0..prompt_tokens)
        .map(|i| ((i * 7919 + 13) % config.vocab_size) as i32)
        .collect();
    let prompt = Array::from_slice(&ids, &[1, prompt_tokens])?;
    // Per decode step: host time building the graph, host time enqueueing it (eval returns
    // before the GPU finishes), and time waiting for the token; host-bound when the wait is
    // near zero.
    let run = |record: bool| -> Result<(f64, f64, Vec<usize>, [f64; 3])> {
        let mut cache = KvCache::with_capacity(prompt_tokens + new_tokens);
        ingot::synchronize(device)?;
        reset();
        let t0 = Instant::now();
        let logits = model.forward_cached(&prompt, Some(&mut cache))?;
        let mut next = ingot::argmax(&logits, Some(-1), false)?;
        let mut tok = ingot::slice(
            &next,
            &[
                ingot::SliceArg::ALL,
                ingot::SliceArg::range(prompt_tokens as isize - 1, prompt_tokens as isize),
            ],
        )?;
        // Read back to the host, as generation does to sample and stream (and as the PyTorch
        // peer does): this also waits for the GPU, so the clock sees all of the work.
        tok.to_f64_vec()?;
        let ttft = t0.elapsed().as_secs_f64();
        let mut mem = Vec::new();
        let steps = if record {
            new_tokens
        } else {
            new_tokens.min(4)
        };
        let mut split = [0f64; 3];
        let t1 = Instant::now();
        for _ in 1..steps {
            let s0 = Instant::now();
            let logits = model.forward_cached(&tok, Some(&mut cache))?;
            next = ingot::argmax(&logits, Some(-1), false)?;
            let s1 = Instant::now();
            ingot::eval(std::slice::from_ref(&next))?;
            let s2 = Instant::now();
            tok = next.clone();
            tok.to_f64_vec()?;
            split[0] += (s1 - s0).as_secs_f64();
            split[1] += (s2 - s1).as_secs_f64();
            split[2] += s2.elapsed().as_secs_f64();
            if record {
                mem.push(active());
            }
        }
        let decode = (steps - 1) as f64 / t1.elapsed().as_secs_f64().max(1e-9);
        let per = |t: f64| t / (steps - 1).max(1) as f64;
        Ok((ttft, decode, mem, split.map(per)))
    };
    // One short warm-up run compiles kernels and fills the allocator's cache.
    run(false)?;
    let (ttft, decode, mem, split) = run(true)?;
    eprintln!(
        "decode step: build {:.3} ms, enqueue {:.3} ms, wait {:.3} ms (host-bound when the wait is near zero)",
        split[0] * 1e3,
        split[1] * 1e3,
        split[2] * 1e3
    );
    let peak_b = peak();
    if let ingot::Device::Cuda(_) = device {
        // Ops that ran on the CPU for want of a kernel, and with INGOT_CUDA_PROFILE=1 or
        // INGOT_CUDA_STATS=1 the time by op.
        eprintln!("CPU fallbacks: {:?}", ingot::cuda::fallbacks());
        ingot::cuda::print_stats();
    }
    let gib = |b: usize| b as f64 / (1u64 << 30) as f64;
    // The peer in the same run, after ingot (never sharing the device with it).
    let peer: Value = match torch {
        Some(python) => {
            let dev = match device {
                ingot::Device::Cuda(n) => format!("cuda:{n}"),
                _ => "cpu".to_string(),
            };
            let out = std::process::Command::new(python)
                .arg("scripts/bench/torch_lm.py")
                .arg(&path)
                .args([
                    prompt_tokens.to_string(),
                    new_tokens.to_string(),
                    layers.unwrap_or(0).to_string(),
                    dtype.to_string(),
                    dev,
                ])
                .output()
                .map_err(|e| Error::io("bench-lm", format!("cannot run {python}: {e}")))?;
            let text = String::from_utf8_lossy(&out.stdout);
            match text
                .lines()
                .last()
                .and_then(|l| serde_json::from_str(l).ok())
            {
                Some(v) if out.status.success() => v,
                _ => {
                    return Err(Error::invalid(
                        "bench-lm",
                        format!(
                            "the PyTorch run failed: {}",
                            String::from_utf8_lossy(&out.stderr)
                                .lines()
                                .last()
                                .unwrap_or("")
                        ),
                    ))
                }
            }
        }
        None => Value::Null,
    };
    let (mem_first, mem_last) = (
        mem.first().copied().unwrap_or(0),
        mem.last().copied().unwrap_or(0),
    );
    println!(
        "{} {} layers hidden {} on {device}, {dtype}, weights {:.2} GiB",
        config.arch.class_name(),
        config.num_hidden_layers,
        config.hidden_size,
        gib(weight_bytes)
    );
    println!("| | prompt | new | time to first token | decode tokens/s | active memory after first step → end | peak |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    println!(
        "| ingot | {prompt_tokens} | {new_tokens} | {:.1} ms | {decode:.1} | {:.3} → {:.3} GiB | {:.3} GiB |",
        ttft * 1e3,
        gib(mem_first),
        gib(mem_last),
        gib(peak_b)
    );
    if let (Some(t), Some(d)) = (
        peer["time_to_first_token_s"].as_f64(),
        peer["decode_tokens_per_s"].as_f64(),
    ) {
        println!(
            "| {} | {prompt_tokens} | {new_tokens} | {:.1} ms | {d:.1} | | |",
            peer["peer"].as_str().unwrap_or("PyTorch"),
            t * 1e3
        );
        println!(
            "ingot / PyTorch: decode {:.2}x, time to first token {:.2}x (lower is better)",
            decode / d.max(1e-9),
            ttft / t.max(1e-9)
        );
    }
    let j = json!({
        "model": config.arch.class_name(),
        "layers": config.num_hidden_layers,
        "hidden_size": config.hidden_size,
        "device": device.to_string(),
        "dtype": dtype.to_string(),
        "weight_bytes": weight_bytes,
        "prompt_tokens": prompt_tokens,
        "new_tokens": new_tokens,
        "time_to_first_token_s": ttft,
        "decode_tokens_per_s": decode,
        "projections_joined": fuse,
        "decode_step_host_s": {"build": split[0], "enqueue": split[1], "wait": split[2]},
        "active_bytes_after_first_decode": mem_first,
        "active_bytes_at_end": mem_last,
        "peak_bytes": peak_b,
        "torch": peer,
    });
    println!("{j}");
    if let Some(p) = json_out {
        std::fs::write(p, j.to_string())
            .map_err(|e| Error::io("bench-lm", format!("cannot write {}: {e}", p.display())))?;
    }
    Ok(())
}

/// `ingot embed`: sentence embeddings of `texts` with a BERT-family sentence-transformers
/// folder (pooling and normalization from its modules), printed as JSON lines or written
/// to a .npy or .json file; with several texts, their cosine similarities too.
pub fn embed(
    dir: &Path,
    texts: &[String],
    out: Option<&Path>,
    dtype: &Option<String>,
) -> Result<()> {
    if texts.is_empty() {
        return Err(Error::invalid("embed", "give at least one text"));
    }
    let dtype = match dtype {
        // Encoders are small: f32 unless asked.
        None => DType::F32,
        d => parse_dtype(d)?,
    };
    let model = Bert::from_pretrained(dir, dtype)?;
    let (pooling, normalize) = Pooling::from_sentence_transformers(dir)?;
    let mut tok = Tokenizer::from_file(dir.join("tokenizer.json"))?
        .inner()
        .clone();
    // sentence-transformers pads to the batch's longest and truncates at max_seq_length,
    // whatever tokenizer.json says.
    let st: Value = std::fs::read_to_string(dir.join("sentence_bert_config.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    let max_len = st
        .get("max_seq_length")
        .and_then(Value::as_u64)
        .map_or(model.config.max_position_embeddings, |m| m as usize)
        .min(model.config.max_position_embeddings);
    let mut pad = tok.get_padding().cloned().unwrap_or_default();
    pad.strategy = tokenizers::PaddingStrategy::BatchLongest;
    tok.with_padding(Some(pad));
    tok.with_truncation(Some(tokenizers::TruncationParams {
        max_length: max_len,
        ..Default::default()
    }))
    .map_err(|e| Error::invalid("embed", format!("truncation: {e}")))?;
    let enc = tok
        .encode_batch(texts.iter().map(|s| s.as_str()).collect(), true)
        .map_err(|e| Error::invalid("embed", format!("cannot tokenize: {e}")))?;
    let (b, l) = (enc.len(), enc[0].get_ids().len());
    let flat = |f: &dyn Fn(&tokenizers::Encoding) -> &[u32]| -> Vec<i32> {
        enc.iter()
            .flat_map(|e| f(e).iter().map(|&x| x as i32))
            .collect()
    };
    let ids = Array::from_slice(&flat(&|e| e.get_ids()), &[b, l])?;
    let mask = Array::from_slice(&flat(&|e| e.get_attention_mask()), &[b, l])?;
    let t0 = Instant::now();
    let emb = ingot::astype(
        &model.embed(&ids, Some(&mask), pooling, normalize)?,
        DType::F32,
    )?;
    let rows: Vec<Vec<f32>> = emb
        .to_vec::<f32>()?
        .chunks(emb.shape()[1].max(1))
        .map(<[f32]>::to_vec)
        .collect();
    eprintln!(
        "{b} texts, {l} tokens each after padding, {} dims, {:.1} ms",
        emb.shape()[1],
        t0.elapsed().as_secs_f64() * 1e3
    );
    match out {
        Some(p) if p.extension().is_some_and(|e| e == "npy") => ingot::io::save_npy(p, &emb)?,
        Some(p) => std::fs::write(p, json!({"texts": texts, "embeddings": rows}).to_string())
            .map_err(|e| Error::io("embed", format!("cannot write {}: {e}", p.display())))?,
        None => {
            for (t, r) in texts.iter().zip(&rows) {
                println!("{}", json!({"text": t, "embedding": r}));
            }
        }
    }
    if b > 1 {
        let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        eprintln!("cosine similarities:");
        for (i, a) in rows.iter().enumerate() {
            let line: Vec<String> = rows
                .iter()
                .map(|c| {
                    let dot: f64 = a.iter().zip(c).map(|(x, y)| *x as f64 * *y as f64).sum();
                    format!("{:6.3}", dot / (norm(a) * norm(c)).max(1e-30))
                })
                .collect();
            eprintln!("  {i:>2}: {}", line.join(" "));
        }
    }
    Ok(())
}
