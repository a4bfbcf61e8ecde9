//! `ingot train CONFIG`: train a Llama-layout language model on a corpus of works (a
//! byte-level BPE tokenizer first, trained on the training works only).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ingot::{Array, DType, Error, Result};
use ingot_lm::{LmData, Tokenizer, TrainConfig, VALIDATION_WORKS};
use ingot_nn::data_parallel::{average_gradients, DEFAULT_BUCKET_BYTES};
use ingot_nn::losses::{cross_entropy, CrossEntropy};
use ingot_nn::models::{Llama, LlamaConfig};
use ingot_nn::optim::{AdamW, Optimizer};
use ingot_nn::{clip_grad_norm, load_checkpoint, rng, save_checkpoint, schedule, value_and_grad};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A training config file (JSON). Paths are relative to the working directory.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainFile {
    /// The folder of works (one text file each), as scripts/data/fetch_shakespeare.sh
    /// writes it.
    #[serde(default = "default_data")]
    pub data: PathBuf,
    /// Where the model folder goes (config.json, model.safetensors, tokenizer.json,
    /// training.json) and, under `checkpoint/`, the resumable state.
    pub out: PathBuf,
    pub vocab_size: usize,
    pub model: ModelSection,
    pub train: TrainSection,
}

fn default_data() -> PathBuf {
    PathBuf::from(ingot_lm::data::DEFAULT_DATA_DIR)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    /// The context length trained on (and config.json's max_position_embeddings).
    pub context: usize,
    #[serde(default = "yes")]
    pub tie_word_embeddings: bool,
    #[serde(default = "default_theta")]
    pub rope_theta: f64,
}

fn yes() -> bool {
    true
}
fn default_theta() -> f64 {
    10000.0
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSection {
    pub steps: u64,
    pub batch: usize,
    pub lr: f64,
    #[serde(default)]
    pub min_lr: f64,
    #[serde(default)]
    pub warmup: u64,
    #[serde(default = "default_wd")]
    pub weight_decay: f64,
    #[serde(default = "default_clip")]
    pub grad_clip: f64,
    #[serde(default)]
    pub seed: u64,
    #[serde(default = "default_eval_every")]
    pub eval_every: u64,
    /// Validation batches per evaluation (all of them at the end).
    #[serde(default = "default_eval_batches")]
    pub eval_batches: usize,
    #[serde(default = "default_ckpt")]
    pub checkpoint_every: u64,
    /// "bf16": train under autocast (float32 master weights).
    #[serde(default)]
    pub autocast: Option<String>,
    /// The dtype the finished model is saved in: "f32" (default), "bf16" or "f16" (half
    /// the size, for a model shipped in the repository).
    #[serde(default)]
    pub save_dtype: Option<String>,
}

fn default_wd() -> f64 {
    0.1
}
fn default_clip() -> f64 {
    1.0
}
fn default_eval_every() -> u64 {
    250
}
fn default_eval_batches() -> usize {
    20
}
fn default_ckpt() -> u64 {
    500
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::invalid("train", msg.into())
}

/// Reads and checks a config file.
pub fn read_config(path: &Path) -> Result<TrainFile> {
    let text =
        std::fs::read_to_string(path).map_err(|e| invalid(format!("{}: {e}", path.display())))?;
    let c: TrainFile =
        serde_json::from_str(&text).map_err(|e| invalid(format!("{}: {e}", path.display())))?;
    let t = &c.train;
    if t.steps == 0 || t.batch == 0 || c.model.context < 2 {
        return Err(invalid(
            "steps, batch and a context of at least 2 are needed",
        ));
    }
    if !(t.lr > 0.0 && t.lr.is_finite()) || t.min_lr < 0.0 || t.min_lr > t.lr {
        return Err(invalid(format!(
            "lr {} and min_lr {} must satisfy 0 <= min_lr <= lr",
            t.lr, t.min_lr
        )));
    }
    if t.warmup >= t.steps {
        return Err(invalid(format!(
            "warmup {} must be below steps {}",
            t.warmup, t.steps
        )));
    }
    Ok(c)
}

fn autocast_dtype(s: &Option<String>) -> Result<Option<DType>> {
    match s.as_deref() {
        None | Some("none") => Ok(None),
        Some("bf16") => Ok(Some(DType::BF16)),
        Some("f16") => Ok(Some(DType::F16)),
        Some(o) => Err(invalid(format!(
            "autocast must be bf16, f16 or none, got {o:?}"
        ))),
    }
}

fn bar(len: u64, template: &str) -> ProgressBar {
    let b = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(template) {
        b.set_style(style);
    }
    b
}

/// Mean cross entropy over `batches` validation batches (all when 0).
fn validation_loss(model: &Llama, data: &LmData, c: &TrainFile, batches: usize) -> Result<f64> {
    let it = data.validation_batches(c.train.batch, c.model.context)?;
    let n = if batches == 0 {
        it.len()
    } else {
        batches.min(it.len())
    };
    let (mut total, mut count) = (0.0, 0usize);
    for b in it.take(n) {
        let (x, y) = b?;
        let tokens = y.size();
        let loss = cross_entropy(&model.forward(&x)?, &y, &CrossEntropy::default())?;
        total += loss.item::<f32>()? as f64 * tokens as f64;
        count += tokens;
    }
    Ok(total / count.max(1) as f64)
}

/// `ingot train CONFIG`: the tokenizer (unless out/tokenizer.json exists), then the model,
/// resuming from out/checkpoint when it is there.
pub fn train(config: &Path) -> Result<()> {
    let c = read_config(config)?;
    let low = autocast_dtype(&c.train.autocast)?;
    // Under `ingot launch -n N`, data parallelism: each rank takes its share of every batch,
    // the gradients are averaged over the ranks, and every rank takes the same step from
    // the same start (same seed). Rank 0 writes the files and reports.
    let world = ingot::distributed::init()?;
    let (rank, ranks) = (world.rank(), world.size());
    if c.train.batch % ranks != 0 {
        return Err(invalid(format!(
            "batch {} does not split across {ranks} processes",
            c.train.batch
        )));
    }
    let lead = rank == 0;
    std::fs::create_dir_all(&c.out).map_err(|e| invalid(format!("{}: {e}", c.out.display())))?;
    let tok_path = c.out.join("tokenizer.json");
    let split =
        ingot_lm::data::split_works(ingot_lm::data::read_works(&c.data)?, &VALIDATION_WORKS)?;
    let tokenizer = if tok_path.exists() {
        Tokenizer::from_file(&tok_path)?
    } else {
        let t0 = Instant::now();
        eprintln!(
            "training a {}-token byte-level BPE tokenizer on {} works",
            c.vocab_size,
            split.train.len()
        );
        let texts: Vec<&str> = split.train.iter().map(|w| w.text.as_str()).collect();
        // Every rank trains the same tokenizer from the same texts; rank 0 saves it.
        let t = Tokenizer::train_from_texts(&texts, &TrainConfig::new(c.vocab_size))?;
        if lead {
            t.save(&tok_path)?;
        }
        eprintln!("tokenizer: {:.1} s", t0.elapsed().as_secs_f64());
        t
    };
    let data = LmData::from_split(&split, &tokenizer)?;
    eprintln!(
        "{} training tokens, {} validation tokens (held out: {})",
        data.train_ids().len(),
        data.validation_ids().len(),
        data.validation_works().join(", ")
    );
    let m = &c.model;
    let eot = tokenizer.token_to_id(ingot_lm::END_OF_TEXT).map(u64::from);
    let cfg = LlamaConfig {
        vocab_size: tokenizer.vocab_size(),
        hidden_size: m.hidden_size,
        intermediate_size: m.intermediate_size,
        num_hidden_layers: m.num_hidden_layers,
        num_attention_heads: m.num_attention_heads,
        num_key_value_heads: m.num_key_value_heads,
        head_dim: m.hidden_size / m.num_attention_heads.max(1),
        rms_norm_eps: 1e-5,
        rope_theta: m.rope_theta,
        max_position_embeddings: m.context,
        tie_word_embeddings: m.tie_word_embeddings,
        bos_token_id: eot,
        eos_token_ids: eot.into_iter().collect(),
        ..LlamaConfig::default()
    };
    rng::seed(c.train.seed);
    let mut model = Llama::new(&cfg, &rng::key(c.train.seed), DType::F32)?;
    let t = &c.train;
    let decay = schedule::cosine_decay(t.lr, t.steps - t.warmup, t.min_lr);
    let lr = if t.warmup > 0 {
        schedule::join_schedules(
            vec![schedule::linear_schedule(0.0, t.lr, t.warmup)?, decay],
            &[t.warmup],
        )?
    } else {
        decay
    };
    let mut opt = AdamW::new(lr).betas(0.9, 0.95).weight_decay(t.weight_decay);
    let ckpt = c.out.join("checkpoint");
    let mut start = 0u64;
    if ckpt.join("trainer.json").exists() {
        let extra = load_checkpoint(&ckpt, &mut model, &mut opt)?;
        start = extra.get("step").copied().unwrap_or(0.0) as u64;
        eprintln!("resuming at step {start} from {}", ckpt.display());
    }
    eprintln!(
        "model: {} parameters, {} layers, width {}, context {}",
        ingot_nn::ModuleExt::num_parameters(&model),
        cfg.num_hidden_layers,
        cfg.hidden_size,
        m.context
    );
    let b = bar(t.steps, "{bar:30} {pos}/{len} {elapsed}<{eta} {msg}");
    if !lead {
        b.set_draw_target(ProgressDrawTarget::hidden());
    }
    if ranks > 1 && lead {
        eprintln!(
            "data parallel over {ranks} processes: {} sequences each a step",
            t.batch / ranks
        );
    }
    b.set_position(start);
    let t0 = Instant::now();
    let mut tokens = 0usize;
    let (mut last_loss, mut last_val) = (f64::NAN, f64::NAN);
    let mut log = Vec::new();
    // The model of the lowest sampled validation loss is the one saved (early stopping): a
    // small corpus seen for many epochs overfits before the schedule ends.
    let mut best: Option<(u64, f64, Llama)> = None;
    for step in start..t.steps {
        // The batch depends only on the seed and the step, so a resumed run sees the same.
        let (x, y) = data
            .train_batches(
                t.batch,
                m.context,
                t.seed ^ step.wrapping_mul(0x9E3779B97F4A7C15),
            )?
            .next_batch()?;
        let (x, y) = if ranks > 1 {
            let part = |a: &Array| -> Result<Array> {
                Ok(ingot::split(a, ingot::SplitSpec::Sections(ranks), 0)?.swap_remove(rank))
            };
            (part(&x)?, part(&y)?)
        } else {
            (x, y)
        };
        let loss_fn = |mm: &Llama| cross_entropy(&mm.forward(&x)?, &y, &CrossEntropy::default());
        let (loss, grads) = match low {
            Some(d) => ingot::autocast(d, || value_and_grad(&mut model, loss_fn))??,
            None => value_and_grad(&mut model, loss_fn)?,
        };
        let (grads, loss) = if ranks > 1 {
            let g = average_gradients(&grads, Some(&world), DEFAULT_BUCKET_BYTES)?;
            let l = ingot::divide(
                &ingot::distributed::all_sum(&loss, Some(&world))?,
                ranks as f64,
            )?;
            (g, l)
        } else {
            (grads, loss)
        };
        let (grads, _norm) = clip_grad_norm(&grads, t.grad_clip)?;
        opt.update(&mut model, &grads)?;
        last_loss = loss.item::<f32>()? as f64;
        if !last_loss.is_finite() {
            return Err(invalid(format!(
                "the loss became {last_loss} at step {step}"
            )));
        }
        tokens += t.batch * m.context;
        let done = step + 1;
        if done % t.eval_every == 0 || done == t.steps {
            last_val = validation_loss(&model, &data, &c, t.eval_batches)?;
            log.push(
                serde_json::json!({"step": done, "train_loss": last_loss, "val_loss": last_val}),
            );
            if best.as_ref().is_none_or(|b| last_val < b.1) {
                best = Some((done, last_val, model.clone()));
            }
            let line =
                format!("step {done}: train loss {last_loss:.3}, validation loss {last_val:.3}");
            // A hidden bar (stderr not a terminal) drops println: logs still get the line.
            if lead && b.is_hidden() {
                eprintln!("{line}");
            } else if lead {
                b.println(line);
            }
        }
        if lead && done % t.checkpoint_every == 0 && done < t.steps {
            let extra = BTreeMap::from([("step".to_string(), done as f64)]);
            save_checkpoint(&ckpt, &model, &opt, &extra)?;
        }
        b.set_message(format!(
            "loss {last_loss:.3} | {:.0} tok/s",
            tokens as f64 / t0.elapsed().as_secs_f64()
        ));
        b.inc(1);
    }
    b.finish_and_clear();
    let secs = t0.elapsed().as_secs_f64();
    let best_step = match best {
        Some((s, _, m)) => {
            model = m;
            s
        }
        None => t.steps,
    };
    if !lead {
        return Ok(());
    }
    eprintln!("full validation pass of the model of step {best_step} ...");
    let val = validation_loss(&model, &data, &c, 0)?;
    let save = match t.save_dtype.as_deref() {
        None | Some("f32") => DType::F32,
        Some("bf16") => DType::BF16,
        Some("f16") => DType::F16,
        Some(o) => {
            return Err(invalid(format!(
                "save_dtype must be f32, bf16 or f16, got {o:?}"
            )))
        }
    };
    let mut saved = model.clone();
    ingot_nn::ModuleExt::cast(&mut saved, save)?;
    saved.save_pretrained(&c.out)?;
    let report = serde_json::json!({
        "steps": t.steps,
        // A resumed run's log, seconds and rate cover only the steps run since.
        "resumed_from_step": start,
        // The saved model's step: the lowest sampled validation loss.
        "saved_step": best_step,
        "train_loss": last_loss,
        "validation_loss": val,
        "validation_perplexity": val.exp(),
        "validation_works": data.validation_works(),
        "tokens_per_second": tokens as f64 / secs,
        "processes": ranks,
        "seconds": secs,
        "log": log,
        "last_sampled_validation_loss": last_val,
    });
    let path = c.out.join("training.json");
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&report).unwrap_or_default(),
    )
    .map_err(|e| invalid(format!("{}: {e}", path.display())))?;
    eprintln!(
        "done: validation loss {val:.3} (perplexity {:.1}), {:.0} tokens/s; model in {}",
        val.exp(),
        tokens as f64 / secs,
        c.out.display()
    );
    Ok(())
}

/// The model `ingot generate` uses when none is named: the repository's
/// models/shakespeare, found from the working directory or from where ingot was built.
pub fn default_model() -> PathBuf {
    let here = PathBuf::from("models/shakespeare");
    if here.join("config.json").exists() {
        return here;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/shakespeare")
}
