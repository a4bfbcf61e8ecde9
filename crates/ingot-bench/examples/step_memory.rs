//! Peak host memory of the GPT-2 training step on the CPU (the bench's model and loss at a
//! small batch), eager and compiled: `B=1 T=256 cargo run --release --example step_memory`.
use ingot::{Array, DType};
use ingot_nn::losses::{cross_entropy, CrossEntropy};
use ingot_nn::models::{Gpt2, Gpt2Config};
use ingot_nn::optim::{AdamW, Optimizer};
use ingot_nn::{value_and_grad, ModuleExt, TrainStep};

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
    let ids = ingot::random::randint(
        &ingot::random::key(1),
        0,
        cfg.vocab_size as i64,
        &[batch, seq + 1],
        DType::I32,
    )?;
    let x = ingot::copy(&ingot::slice_axis(
        &ids,
        1,
        ingot::SliceArg::range(0, seq as isize),
    )?)?;
    let y = ingot::copy(&ingot::slice_axis(
        &ids,
        1,
        ingot::SliceArg::range(1, seq as isize + 1),
    )?)?;
    ingot::eval(&[x.clone(), y.clone()])?;
    let adamw = || AdamW::new(6e-4).betas(0.9, 0.95).weight_decay(0.1);
    let loss_of = |m: &Gpt2, x: &Array, y: &Array| {
        ingot::autocast(DType::BF16, || {
            cross_entropy(&m.forward(x)?, y, &CrossEntropy::default())
        })?
    };
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
            let (mut model, mut opt) = (model, adamw());
            for s in 0..steps {
                let base = ingot::memory::active_memory();
                ingot::memory::reset_peak_memory();
                let (loss, grads) = value_and_grad(&mut model, |m: &Gpt2| loss_of(m, &x, &y))?;
                opt.update(&mut model, &grads)?;
                let mut outs: Vec<Array> = model.parameters().into_values().collect();
                outs.push(loss.clone());
                ingot::eval(&outs)?;
                drop(grads);
                report(s, &loss, base)?;
            }
        } else {
            let mut step = TrainStep::new(model, adamw(), move |m: &Gpt2, b: &[Array]| {
                loss_of(m, &b[0], &b[1])
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
