//! Gradient clipping by the global norm, as `torch.nn.utils.clip_grad_norm_` and MLX's
//! `optimizers.clip_grad_norm`.

use ingot::{Array, DType, Error, Result};
use std::collections::BTreeMap;

/// Scales all gradients together so their joint L2 norm is at most `max_norm`, and returns
/// the clipped gradients with the norm before clipping (a 0-d array, not evaluated):
/// ```text
/// total = sqrt(sum over every gradient of sum(g^2))
/// coef  = min(max_norm / (total + 1e-6), 1)
/// g     = g * coef
/// ```
/// As in PyTorch (without `error_if_nonfinite`), a NaN or infinite total propagates: NaN
/// makes every clipped gradient NaN, and an infinite total makes them 0 (or NaN where a
/// gradient is infinite). The total is computed in f64 when any gradient is f64, else in f32
/// (f16 and bf16 gradients are squared and summed in f32); clipped gradients keep their
/// dtypes. With no gradients the total is 0.
pub fn clip_grad_norm(
    grads: &BTreeMap<String, Array>,
    max_norm: f64,
) -> Result<(BTreeMap<String, Array>, Array)> {
    if max_norm.is_nan() || max_norm < 0.0 {
        return Err(Error::invalid(
            "clip_grad_norm",
            format!("max_norm must be >= 0, got {max_norm}"),
        ));
    }
    for (name, g) in grads {
        if !g.dtype().is_float() {
            return Err(Error::invalid(
                "clip_grad_norm",
                format!(
                    "gradient {name:?} is {:?} {}, not real floating point",
                    g.shape(),
                    g.dtype()
                ),
            ));
        }
    }
    let acc = if grads.values().any(|g| g.dtype() == DType::F64) {
        DType::F64
    } else {
        DType::F32
    };
    let mut sq = ingot::zeros(&[], acc)?;
    for g in grads.values() {
        let g = ingot::astype(g, acc)?;
        sq = ingot::add(&sq, ingot::sum(&ingot::square(&g)?, None, false)?)?;
    }
    let total = ingot::sqrt(&sq)?;
    // minimum propagates NaN, so a NaN norm gives NaN gradients as in PyTorch.
    let coef = ingot::minimum(ingot::divide(max_norm, ingot::add(&total, 1e-6)?)?, 1.0)?;
    let mut out = BTreeMap::new();
    for (name, g) in grads {
        let c = ingot::astype(&coef, g.dtype())?;
        out.insert(name.clone(), ingot::multiply(g, &c)?);
    }
    Ok((out, total))
}
