//! Peak host memory of the GPT-2 training step on the CPU (the bench's model and loss at a
//! small batch), eager and compiled: `B=1 T=256 cargo run --release --example step_memory`.
#[path = "../src/gpt2_step.rs"]
mod gpt2_step;

use ingot::{Array, DType};
use ingot_nn::models::{Gpt2, Gpt2Config};
use ingot_nn::{ModuleExt, TrainStep};

fn env(n: &str, d: usize) -> usize {
    std::env::var(n)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}
const MIB: f64 = (1u64 << 20) as f64;

fn main() -> ingot::Result<()> {
    let (batch, seq, steps) = (env("B", 1), env("T", 256), env("STEPS", 2));
    let cfg = Gpt2Config::small();
    let (x, y) = gpt2_step::batch(&cfg, batch, seq)?;
    for mode in ["eager", "compiled"] {
        let model = Gpt2::new(&cfg, &ingot::random::key(0), DType::F32)?;
        let params: Vec<Array> = model.parameters().into_values().collect();
        ingot::eval(&params)?;
        drop(params);
        let report = |s: usize, loss: &Array, base: usize| -> ingot::Result<()> {
            let l = ingot::astype(loss, DType::F32)?.item::<f32>()?;
            println!(
                "{mode} step {s}: loss {l:.4}, active before {:.1} MiB, peak {:.1} MiB (+{:.1} over before)",
                base as f64 / MIB,
                ingot::memory::peak_memory() as f64 / MIB,
                (ingot::memory::peak_memory() - base) as f64 / MIB
            );
            Ok(())
        };
        if mode == "eager" {
            let (mut model, mut opt) = (model, gpt2_step::adamw());
            for s in 0..steps {
                let base = ingot::memory::active_memory();
                ingot::memory::reset_peak_memory();
                let loss = gpt2_step::eager(&mut model, &mut opt, &x, &y)?;
                report(s, &loss, base)?;
            }
        } else {
            let mut step = TrainStep::new(model, gpt2_step::adamw(), |m: &Gpt2, b: &[Array]| {
                gpt2_step::loss(m, &b[0], &b[1])
            });
            let b = [x.clone(), y.clone()];
            for s in 0..steps {
                let base = ingot::memory::active_memory();
                ingot::memory::reset_peak_memory();
                let loss = step.step(&b)?;
                report(s, &loss, base)?;
            }
        }
    }
    Ok(())
}
