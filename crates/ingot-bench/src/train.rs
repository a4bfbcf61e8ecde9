//! GPT-2 small training steps: ingot beside PyTorch eager and torch.compile in the same run
//! (scripts/gpu/torch_gpt2.py, started from here first so the two never share the GPU),
//! the same model, shapes and optimizer: batch 8 of 1024 tokens, AdamW, bf16 autocast
//! with f32 master weights. Prints a table and JSON: seconds per step, tokens/s, peak GPU
//! memory, and model FLOP/s against the GPU's bf16 peak.
//!
//! usage: ingot-train-bench [--steps N] [--warmup N] [--batch B] [--seq T] [--layers L]
//!        [--modes eager,compiled] [--json FILE] [--python python3] [--no-torch]
//! Modes: `eager` (value_and_grad then the optimizer's update, lazily evaluated each step)
//! and `compiled` (ingot_nn::TrainStep: forward, backward and update traced once into one
//! compiled program with fused elementwise chains).
//! Without a GPU it runs a tiny configuration on the CPU (a check that the step runs).

mod cli;
mod gpt2_step;

use ingot::{Array, DType, Device};
use ingot_nn::models::{Gpt2, Gpt2Config};
use ingot_nn::{ModuleExt, TrainStep};
use std::time::Instant;

/// H100/H200 SXM dense bf16 peak (the data sheet's figure), for the utilization column.
const BF16_PEAK: f64 = 989e12;

fn arg(args: &[String], name: &str, default: usize) -> usize {
    cli::value(args, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    if let Err(e) = run() {
        eprintln!("ingot-train-bench: {e}");
        std::process::exit(1);
    }
}

fn run() -> ingot::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let gpu = ingot::cuda::is_available();
    let (steps, warmup) = (arg(&args, "--steps", 20), arg(&args, "--warmup", 3));
    let mut cfg = Gpt2Config::small();
    let (batch, seq) = if gpu {
        (arg(&args, "--batch", 8), arg(&args, "--seq", 1024))
    } else {
        // A check that the step runs, not a measurement.
        cfg = Gpt2Config {
            vocab_size: 512,
            n_positions: 64,
            n_embd: 64,
            n_layer: 2,
            n_head: 4,
            layer_norm_epsilon: 1e-5,
        };
        (arg(&args, "--batch", 2), arg(&args, "--seq", 64))
    };
    cfg.n_layer = arg(&args, "--layers", cfg.n_layer);
    let device = if gpu { Device::Cuda(0) } else { Device::Cpu };
    ingot::set_default_device(device);

    // PyTorch first, so the two never share the GPU.
    let torch: serde_json::Value = if gpu && !args.iter().any(|a| a == "--no-torch") {
        let python = cli::value(&args, "--python").unwrap_or_else(|| "python3".into());
        std::process::Command::new(&python)
            .arg("scripts/gpu/torch_gpt2.py")
            .args([
                "--steps",
                &steps.to_string(),
                "--warmup",
                &warmup.to_string(),
            ])
            .args(["--batch", &batch.to_string(), "--seq", &seq.to_string()])
            .stderr(std::process::Stdio::inherit())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| serde_json::from_slice(&o.stdout).ok())
            .unwrap_or_else(|| {
                eprintln!("ingot-train-bench: PyTorch comparison unavailable");
                serde_json::json!({})
            })
    } else {
        serde_json::json!({})
    };

    let (x, y) = gpt2_step::batch(&cfg, batch, seq)?;
    let n_params = Gpt2::new(&cfg, &ingot::random::key(0), DType::F32)?.num_parameters();
    let modes: Vec<String> = cli::value(&args, "--modes")
        .unwrap_or_else(|| "eager,compiled".into())
        .split(',')
        .map(|m| m.trim().to_string())
        .collect();
    let mut rows = Vec::new();
    let mut measured = serde_json::Map::new();
    for mode in &modes {
        // The same initial weights and batch for each mode.
        let model = Gpt2::new(&cfg, &ingot::random::key(0), DType::F32)?;
        let m = match mode.as_str() {
            "eager" => {
                let (mut model, mut opt) = (model, gpt2_step::adamw());
                measure(device, gpu, steps, warmup, || {
                    gpt2_step::eager(&mut model, &mut opt, &x, &y)
                })?
            }
            "compiled" => {
                // Forward, backward and AdamW traced once into one program (fused
                // elementwise chains), replayed at every later step.
                let mut step =
                    TrainStep::new(model, gpt2_step::adamw(), |m: &Gpt2, b: &[Array]| {
                        gpt2_step::loss(m, &b[0], &b[1])
                    });
                let batch = [x.clone(), y.clone()];
                measure(device, gpu, steps, warmup, || step.step(&batch))?
            }
            other => {
                return Err(ingot::Error::invalid(
                    "ingot-train-bench",
                    format!("unknown mode {other:?} (eager, compiled)"),
                ))
            }
        };
        rows.push((format!("ingot ({mode})"), m.secs, m.peak, Some(m.loss)));
        measured.insert(
            mode.clone(),
            serde_json::json!({"seconds_per_step": m.secs, "tokens_per_second": (batch * seq) as f64 / m.secs,
                               "peak_bytes": m.peak, "warmup_seconds": m.warm, "loss": m.loss}),
        );
    }
    // Ops that ran on the CPU for want of a GPU kernel (each costs transfers), and with
    // INGOT_CUDA_STATS=1 the host time by op.
    let fallbacks = format!("{:?}", ingot::cuda::fallbacks());
    if gpu {
        eprintln!("CPU fallbacks: {fallbacks}");
        ingot::cuda::print_stats();
    }
    // The fastest of ingot's modes against the peers.
    let secs = rows.iter().map(|r| r.1).fold(f64::INFINITY, f64::min);

    // Model FLOPs per token: 6 per parameter (forward and backward) plus attention's
    // 12 · layers · width · sequence (PaLM's appendix B count; the causal half not taken off).
    let per_token = 6.0 * n_params as f64 + 12.0 * (cfg.n_layer * cfg.n_embd * seq) as f64;
    let tokens = (batch * seq) as f64;
    for (k, label) in [("eager", "PyTorch eager"), ("compile", "torch.compile")] {
        if let Some(m) = torch.get(k) {
            let f = |n: &str| m.get(n).and_then(|v| v.as_f64()).unwrap_or(f64::NAN);
            rows.push((
                label.to_string(),
                f("seconds_per_step"),
                f("peak_bytes"),
                m.get("loss").and_then(|v| v.as_f64()),
            ));
        }
    }
    println!(
        "GPT-2 training step: {} layers, width {}, {} heads, batch {batch} x {seq} tokens, {:.1}M parameters, AdamW, bf16 autocast, {}",
        cfg.n_layer,
        cfg.n_embd,
        cfg.n_head,
        n_params as f64 / 1e6,
        if gpu { "GPU" } else { "CPU (tiny check)" }
    );
    println!(
        "{:<22} {:>10} {:>12} {:>11} {:>8} {:>9}",
        "", "ms/step", "tokens/s", "peak GiB", "MFU", "loss"
    );
    for (name, s, p, l) in &rows {
        println!(
            "{name:<22} {:>10.1} {:>12.0} {:>11.2} {:>7.1}% {:>9.3}",
            s * 1e3,
            tokens / s,
            p / (1u64 << 30) as f64,
            100.0 * per_token * tokens / s / BF16_PEAK,
            l.unwrap_or(f64::NAN)
        );
    }
    let ratio = |k: &str| {
        torch
            .get(k)
            .and_then(|m| m.get("seconds_per_step"))
            .and_then(|v| v.as_f64())
            .map(|t| t / secs)
    };
    if let Some(r) = ratio("eager") {
        println!("ingot (best mode) / PyTorch eager: {r:.2}x tokens/s (goal 1.0x)");
    }
    if let Some(r) = ratio("compile") {
        println!("ingot (best mode) / torch.compile: {r:.2}x tokens/s (goal 0.8x)");
    }
    let report = serde_json::json!({
        "config": {"layers": cfg.n_layer, "width": cfg.n_embd, "heads": cfg.n_head,
                    "vocab": cfg.vocab_size, "batch": batch, "seq": seq, "parameters": n_params},
        "ingot": measured,
        "torch": torch,
        "flops_per_token": per_token,
        "fallbacks": fallbacks,
        "bf16_peak_flops": BF16_PEAK,
    });
    println!("{report}");
    if let Some(path) = cli::value(&args, "--json") {
        std::fs::write(&path, report.to_string())
            .map_err(|e| ingot::Error::invalid("ingot-train-bench", format!("{path}: {e}")))?;
    }
    Ok(())
}

/// One mode's figures.
struct Measured {
    secs: f64,
    peak: f64,
    loss: f64,
    warm: f64,
}

/// Seconds per step over `steps` after `warmup`, the peak GPU memory over both, and the
/// last loss.
fn measure(
    device: Device,
    gpu: bool,
    steps: usize,
    warmup: usize,
    mut step: impl FnMut() -> ingot::Result<Array>,
) -> ingot::Result<Measured> {
    ingot::synchronize(device)?;
    if gpu {
        ingot::memory::cuda::reset_peak_memory(0);
    }
    let t0 = Instant::now();
    let mut loss = Array::scalar(0.0f32);
    for _ in 0..warmup {
        loss = step()?;
    }
    ingot::synchronize(device)?;
    let warm = t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    for _ in 0..steps {
        loss = step()?;
    }
    ingot::synchronize(device)?;
    let secs = t0.elapsed().as_secs_f64() / steps.max(1) as f64;
    let loss = ingot::astype(&loss, DType::F32)?.item::<f32>()? as f64;
    let peak = if gpu {
        ingot::memory::cuda::peak_memory(0) as f64
    } else {
        f64::NAN
    };
    Ok(Measured {
        secs,
        peak,
        loss,
        warm,
    })
}
