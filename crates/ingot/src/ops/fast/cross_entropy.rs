//! `softmax_cross_entropy`: the loss of class-index targets over the last axis, and its
//! gradient, each one node with a CPU and a CUDA kernel (`INGOT_CUDA_FAST=0` opts out) and
//! a reference decomposition. The gradient node reads the logits again instead of keeping
//! a softmax: a language model's training step holds its (tokens, vocabulary) logits once,
//! in their own dtype, rather than several f32 copies.

use super::compute_dtype;
use super::norm_rope::fmt_sigs;
use crate::array::Array;
use crate::dtype::DType;
use crate::op::Op;
use crate::shape::fmt_shape;
use crate::{Error, Result};

type Sig = (Vec<usize>, DType);

const OP: &str = "softmax_cross_entropy";

/// The output of a cross-entropy node on normalized inputs, or why they do not fit it.
pub(crate) fn ce_out(op: &Op, inputs: &[Sig]) -> Result<Sig> {
    let grad = matches!(op, Op::CrossEntropyGrad);
    let bad = |why: &str| Error::invalid(op.name(), format!("{why}: inputs {}", fmt_sigs(inputs)));
    if inputs.len() != 2 + grad as usize {
        return Err(bad(if grad {
            "takes logits, targets and the cotangent"
        } else {
            "takes logits and targets"
        }));
    }
    let (xs, dt) = &inputs[0];
    if !dt.is_float() || xs.is_empty() || xs[xs.len() - 1] == 0 {
        return Err(bad("logits must be floating with a nonempty class axis"));
    }
    let rows = &xs[..xs.len() - 1];
    let (ts, tdt) = &inputs[1];
    if *tdt != DType::I64 || ts[..] != *rows {
        return Err(bad(
            "targets must be int64 of the logits' shape without the class axis",
        ));
    }
    if grad {
        let (gs, gdt) = &inputs[2];
        if *gdt != compute_dtype(*dt) || gs[..] != *rows {
            return Err(bad(
                "the cotangent must be one value a row, of the compute dtype",
            ));
        }
        return Ok((xs.clone(), *dt));
    }
    Ok((rows.to_vec(), compute_dtype(*dt)))
}

/// Checked, normalized operands: float logits with a class axis, int64 targets.
fn operands(logits: &Array, targets: &Array) -> Result<(Array, Array)> {
    let bad = |why: &str| {
        Error::invalid(
            OP,
            format!(
                "{why}: logits {} {}, targets {} {}",
                fmt_shape(logits.shape()),
                logits.dtype(),
                fmt_shape(targets.shape()),
                targets.dtype()
            ),
        )
    };
    if !logits.dtype().is_float() {
        return Err(bad("logits must be floating"));
    }
    let n = logits.ndim();
    if n == 0 || logits.shape()[n - 1] == 0 {
        return Err(bad("logits need a nonempty class axis (the last)"));
    }
    if !matches!(targets.dtype().kind(), crate::Kind::Int | crate::Kind::UInt) {
        return Err(bad("targets must be integer class indices"));
    }
    if targets.shape() != &logits.shape()[..n - 1] {
        return Err(bad(
            "targets must have the logits' shape without the class axis",
        ));
    }
    Ok((logits.clone(), crate::astype(targets, DType::I64)?))
}

fn node(op: Op, inputs: Vec<Array>) -> Result<Array> {
    let sigs: Vec<Sig> = inputs
        .iter()
        .map(|a| (a.shape().to_vec(), a.dtype()))
        .collect();
    let (shape, dtype) = ce_out(&op, &sigs)?;
    // A CUDA default device without the opt-in kernels builds the decomposition.
    if matches!(crate::default_device(), crate::Device::Cuda(_))
        && !crate::backend::cuda::fast_enabled()
    {
        return ce_reference_of(&op, &inputs);
    }
    Ok(Array::from_op(op, inputs, shape, dtype))
}

/// `logsumexp(logits, -1) - logits[..., t]` for class indices `targets` (`(...)` for logits
/// `(..., V)`): the per-row softmax cross entropy, in f32 (f64 for f64 logits) whatever
/// the logits' dtype. A negative target marks an ignored row (PyTorch's `ignore_index`):
/// loss 0 and no gradient. A target past the classes is an error when the node (or its
/// gradient node) is evaluated, as a gather's index out of bounds.
/// Its gradient is one node that reads the logits again, `(softmax - onehot) * g`, written
/// in the logits' dtype.
pub fn softmax_cross_entropy(logits: &Array, targets: &Array) -> Result<Array> {
    let (x, t) = operands(logits, targets)?;
    node(Op::CrossEntropy, vec![x, t])
}

/// [`softmax_cross_entropy`] built from ordinary ops (its reference).
pub fn softmax_cross_entropy_reference(logits: &Array, targets: &Array) -> Result<Array> {
    let (x, t) = operands(logits, targets)?;
    reference(&x, &t, None)
}

/// The gradient node: `(softmax(logits) - onehot(targets)) * g` in the logits' dtype.
pub(crate) fn cross_entropy_grad(logits: &Array, targets: &Array, g: &Array) -> Result<Array> {
    node(
        Op::CrossEntropyGrad,
        vec![logits.clone(), targets.clone(), g.clone()],
    )
}

/// The decomposition of either node on checked inputs.
pub(crate) fn ce_reference_of(op: &Op, inputs: &[Array]) -> Result<Array> {
    match op {
        Op::CrossEntropy => reference(&inputs[0], &inputs[1], None),
        Op::CrossEntropyGrad => reference(&inputs[0], &inputs[1], Some(&inputs[2])),
        _ => Err(Error::invalid(
            op.name(),
            "internal: not a cross-entropy op",
        )),
    }
}

/// The loss, or with `g` the gradient, from ordinary ops in the compute dtype.
fn reference(x: &Array, t: &Array, g: Option<&Array>) -> Result<Array> {
    let (dt, cdt) = (x.dtype(), compute_dtype(x.dtype()));
    let v = x.shape()[x.ndim() - 1];
    let xc = crate::astype(x, cdt)?;
    let valid = crate::greater_equal(t, 0i64)?;
    // Ignored rows read class 0 and give 0; a target past the classes stays, for the
    // gather's out-of-bounds error (the gradient's one-hot has no gather: NaN there).
    let tc = crate::expand_dims(&crate::where_(&valid, t, 0i64)?, &[-1])?;
    let past = crate::greater_equal(t, v as i64)?;
    let other = crate::where_(
        &past,
        Array::scalar_as(f64::NAN, cdt),
        Array::scalar_as(0.0, cdt),
    )?;
    let valid = crate::logical_and(&valid, &crate::logical_not(&past)?)?;
    match g {
        None => {
            let lse = crate::logsumexp(&xc, Some(&[-1]), false)?;
            let picked = crate::squeeze(&crate::take_along_axis(&xc, &tc, Some(-1))?, Some(&[-1]))?;
            crate::where_(&valid, &crate::subtract(&lse, &picked)?, &other)
        }
        Some(g) => {
            let p = crate::softmax(&xc, -1)?;
            let classes = crate::arange(0.0, v as f64, 1.0, DType::I64)?;
            let onehot = crate::astype(&crate::equal(&classes, &tc)?, cdt)?;
            let d = crate::multiply(
                &crate::subtract(&p, &onehot)?,
                &crate::expand_dims(g, &[-1])?,
            )?;
            let d = crate::where_(
                &crate::expand_dims(&valid, &[-1])?,
                &d,
                &crate::expand_dims(&other, &[-1])?,
            )?;
            crate::astype(&d, dt)
        }
    }
}
