//! The GPT-2 training step that `ingot-train-bench` times and the `step_memory` example
//! measures: one batch, optimizer, loss and eager step, so both see the same work.

use ingot::{Array, DType};
use ingot_nn::losses::{cross_entropy, CrossEntropy};
use ingot_nn::models::{Gpt2, Gpt2Config};
use ingot_nn::optim::{AdamW, Optimizer};
use ingot_nn::{value_and_grad, ModuleExt};

/// A fixed random batch of `batch` sequences: inputs and next-token targets, evaluated.
pub fn batch(cfg: &Gpt2Config, batch: usize, seq: usize) -> ingot::Result<(Array, Array)> {
    let ids = ingot::random::randint(
        &ingot::random::key(1),
        0,
        cfg.vocab_size as i64,
        &[batch, seq + 1],
        DType::I32,
    )?;
    let x = ingot::slice_axis(&ids, 1, ingot::SliceArg::range(0, seq as isize))?;
    let y = ingot::slice_axis(&ids, 1, ingot::SliceArg::range(1, seq as isize + 1))?;
    let (x, y) = (ingot::copy(&x)?, ingot::copy(&y)?);
    ingot::eval(&[x.clone(), y.clone()])?;
    Ok((x, y))
}

/// PyTorch's side: AdamW, lr 6e-4, betas (0.9, 0.95), weight decay 0.1.
pub fn adamw() -> AdamW {
    AdamW::new(6e-4).betas(0.9, 0.95).weight_decay(0.1)
}

/// Mean next-token cross entropy under bf16 autocast.
pub fn loss(m: &Gpt2, x: &Array, y: &Array) -> ingot::Result<Array> {
    ingot::autocast(DType::BF16, || {
        cross_entropy(&m.forward(x)?, y, &CrossEntropy::default())
    })?
}

/// One eager step (value_and_grad, then the update), its new weights and loss computed
/// before it returns the loss (the host waits only when it reads).
pub fn eager(model: &mut Gpt2, opt: &mut AdamW, x: &Array, y: &Array) -> ingot::Result<Array> {
    let (l, grads) = value_and_grad(model, |m: &Gpt2| loss(m, x, y))?;
    opt.update(model, &grads)?;
    let mut outs: Vec<Array> = model.parameters().into_values().collect();
    outs.push(l.clone());
    ingot::eval(&outs)?;
    Ok(l)
}
