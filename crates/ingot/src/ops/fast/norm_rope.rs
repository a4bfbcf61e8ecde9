//! `rms_norm`, `layer_norm` and `rope`: fast ops over the last axis, each one node with a
//! CPU kernel, a CUDA kernel (`INGOT_CUDA_FAST=0` opts out) and a reference decomposition
//! that gives their gradients and vmap fallback.

use super::compute_dtype;
use crate::array::Array;
use crate::dtype::{promote_types, DType, Scalar};
use crate::op::{Op, RopeOffsetKind};
use crate::ops::view::SliceArg;
use crate::shape::fmt_shape;
use crate::{Error, Result};

type Sig = (Vec<usize>, DType);

pub(super) fn fmt_sigs(inputs: &[Sig]) -> String {
    let parts: Vec<String> = inputs
        .iter()
        .map(|(s, d)| format!("{} {d}", fmt_shape(s)))
        .collect();
    parts.join(", ")
}

fn describe(named: &[(&str, Option<&Array>)]) -> String {
    let parts: Vec<String> = named
        .iter()
        .filter_map(|(n, a)| a.map(|a| format!("{n} {} {}", fmt_shape(a.shape()), a.dtype())))
        .collect();
    parts.join(", ")
}

/// A CUDA default device without the opt-in kernels builds the decomposition (its ops have
/// GPU kernels) rather than a node that would run on the CPU.
fn build_reference() -> bool {
    matches!(crate::default_device(), crate::Device::Cuda(_))
        && !crate::backend::cuda::fast_enabled()
}

/// The node, or its decomposition where the node would have no kernel.
fn build(op: Op, inputs: Vec<Array>) -> Result<Array> {
    if build_reference() {
        return reference_of(&op, &inputs);
    }
    let (shape, dtype) = (inputs[0].shape().to_vec(), inputs[0].dtype());
    Ok(Array::from_op(op, inputs, shape, dtype))
}

/// The output of a rms_norm, layer_norm or rope node on normalized inputs, or why the
/// inputs do not fit it. Shared by the builders and the import check.
pub(crate) fn fast_out(op: &Op, inputs: &[Sig]) -> Result<Sig> {
    match op {
        Op::RmsNorm { has_weight, .. } => norm_out("rms_norm", inputs, *has_weight, false),
        Op::LayerNorm {
            has_weight,
            has_bias,
            ..
        } => norm_out("layer_norm", inputs, *has_weight, *has_bias),
        Op::Rope {
            dims, base, offset, ..
        } => rope_out(inputs, *dims, base.is_some(), *offset),
        _ => Err(Error::invalid(op.name(), "internal: not a norm or rope op")),
    }
}

fn norm_out(op: &str, inputs: &[Sig], has_weight: bool, has_bias: bool) -> Result<Sig> {
    let bad = |why: &str| Error::invalid(op, format!("{why}: inputs {}", fmt_sigs(inputs)));
    if inputs.len() != 1 + has_weight as usize + has_bias as usize {
        return Err(bad("takes x and the weight and bias its flags name"));
    }
    let (xs, dt) = &inputs[0];
    if !dt.is_float() || xs.is_empty() {
        return Err(bad("x must be floating with at least one axis"));
    }
    let d = xs[xs.len() - 1];
    if inputs[1..].iter().any(|(s, t)| t != dt || s[..] != [d]) {
        return Err(bad("the weight and bias must be (D,) of x's dtype"));
    }
    Ok((xs.clone(), *dt))
}

fn rope_out(inputs: &[Sig], dims: usize, has_base: bool, offset: RopeOffsetKind) -> Result<Sig> {
    let bad = |why: &str| Error::invalid("rope", format!("{why}: inputs {}", fmt_sigs(inputs)));
    let with_offset = !matches!(offset, RopeOffsetKind::Fixed(_));
    if inputs.len() != 1 + with_offset as usize + !has_base as usize {
        return Err(bad(
            "takes x, the offset array if any, and freqs without a base",
        ));
    }
    let (xs, dt) = &inputs[0];
    if let Some(why) = rope_x_problem(xs, *dt, dims) {
        return Err(bad(&why));
    }
    let mut k = 1;
    if with_offset {
        let (os, odt) = &inputs[1];
        let ok = *odt == DType::I64
            && match offset {
                RopeOffsetKind::PerBatch => xs.len() >= 3 && os[..] == [xs[0]],
                _ => os.is_empty(),
            };
        if !ok {
            return Err(bad(
                "the offset must be int64, 0-d or (B,) for x (B, ..., L, D)",
            ));
        }
        k = 2;
    }
    if !has_base {
        let (fs, fdt) = &inputs[k];
        if *fdt != compute_dtype(*dt) || fs[..] != [dims / 2] {
            return Err(bad("freqs must be (dims / 2,) of the compute dtype"));
        }
    }
    Ok((xs.clone(), *dt))
}

fn rope_x_problem(xs: &[usize], dt: DType, dims: usize) -> Option<String> {
    if !dt.is_float() {
        return Some("x must be floating".into());
    }
    if xs.len() < 2 {
        return Some("x must be at least (L, D)".into());
    }
    let d = xs[xs.len() - 1];
    if dims % 2 != 0 || dims > d {
        return Some(format!("dims ({dims}) must be even and at most D ({d})"));
    }
    None
}

// ---- rms_norm and layer_norm ----------------------------------------------------------------

/// x, the weight and the bias cast to their common float dtype, checked; under autocast
/// halves are widened to f32 first (PyTorch runs its norms in f32).
fn norm_inputs(
    op: &str,
    x: &Array,
    weight: Option<&Array>,
    bias: Option<&Array>,
) -> Result<Vec<Array>> {
    let bad = |why: &str| {
        Error::invalid(
            op,
            format!(
                "{why}: {}",
                describe(&[("x", Some(x)), ("weight", weight), ("bias", bias)])
            ),
        )
    };
    if !x.dtype().is_float() {
        return Err(bad("x must have a floating dtype"));
    }
    if x.ndim() == 0 {
        return Err(bad("x must have at least one axis"));
    }
    let d = x.shape()[x.ndim() - 1];
    for (name, a) in [("weight", weight), ("bias", bias)] {
        let Some(a) = a else { continue };
        if a.shape() != [d] {
            return Err(bad(&format!("the {name} must be (D,) = ({d},)")));
        }
        if !(a.dtype().is_float() || a.dtype().is_integer()) {
            return Err(bad(&format!("the {name} must be real")));
        }
    }
    let all: Vec<Array> = [Some(x), weight, bias]
        .into_iter()
        .flatten()
        .map(crate::amp::high)
        .collect::<Result<_>>()?;
    let dt = all
        .iter()
        .fold(all[0].dtype(), |t, a| promote_types(t, a.dtype()));
    all.iter().map(|a| crate::astype(a, dt)).collect()
}

/// `x / sqrt(mean(x², -1) + eps) * weight` over the last axis, as MLX's `mx.fast.rms_norm`:
/// the weight is `(D,)` (none: 1). The statistics and the product are computed in f32
/// (f64 for f64) and rounded once; the result has x's dtype, promoted with the weight's
/// (f16 x with an f32 weight gives f32, as in MLX and PyTorch). Under autocast f16/bf16
/// operands are widened to f32, as PyTorch's autocast runs its norms.
///
/// One node with a fused kernel (rows in parallel); its gradient is that of
/// [`rms_norm_reference`]. On a CUDA device the fused CUDA kernel runs (`INGOT_CUDA_FAST=0`
/// builds the decomposition).
pub fn rms_norm(x: &Array, weight: Option<&Array>, eps: f64) -> Result<Array> {
    let inputs = norm_inputs("rms_norm", x, weight, None)?;
    build(rms_op(weight, eps), inputs)
}

/// The decomposition of [`rms_norm`] into `mean`, `rsqrt` and elementwise ops.
pub fn rms_norm_reference(x: &Array, weight: Option<&Array>, eps: f64) -> Result<Array> {
    let inputs = norm_inputs("rms_norm", x, weight, None)?;
    reference_of(&rms_op(weight, eps), &inputs)
}

fn rms_op(weight: Option<&Array>, eps: f64) -> Op {
    Op::RmsNorm {
        eps: Scalar::Float(eps),
        has_weight: weight.is_some(),
    }
}

/// `(x - mean) / sqrt(var + eps) * weight + bias` over the last axis (biased variance), as
/// `torch.nn.functional.layer_norm` and MLX's `mx.fast.layer_norm`: weight and bias are
/// `(D,)`, either may be absent. Statistics in f32 (f64 for f64), two passes (mean, then
/// squared deviations), one rounding at the end; dtypes and autocast as [`rms_norm`].
pub fn layer_norm(
    x: &Array,
    weight: Option<&Array>,
    bias: Option<&Array>,
    eps: f64,
) -> Result<Array> {
    let inputs = norm_inputs("layer_norm", x, weight, bias)?;
    build(ln_op(weight, bias, eps), inputs)
}

/// The decomposition of [`layer_norm`] into `mean`, `rsqrt` and elementwise ops.
pub fn layer_norm_reference(
    x: &Array,
    weight: Option<&Array>,
    bias: Option<&Array>,
    eps: f64,
) -> Result<Array> {
    let inputs = norm_inputs("layer_norm", x, weight, bias)?;
    reference_of(&ln_op(weight, bias, eps), &inputs)
}

fn ln_op(weight: Option<&Array>, bias: Option<&Array>, eps: f64) -> Op {
    Op::LayerNorm {
        eps: Scalar::Float(eps),
        has_weight: weight.is_some(),
        has_bias: bias.is_some(),
    }
}

// ---- rope -----------------------------------------------------------------------------------

/// Where [`rope`]'s positions start.
#[derive(Clone, Copy, Debug)]
pub enum RopeOffset<'a> {
    /// The same offset for every row (a prompt's start in the cache).
    Int(usize),
    /// An integer array: 0-d (or of one element), shared by every row, or `(B,)`, giving
    /// batch row b of x `(B, ..., L, D)` its own offset (sequences of a batch at different
    /// lengths). A traced offset does not change the compiled graph, as `Int` does.
    Array(&'a Array),
}

impl From<usize> for RopeOffset<'_> {
    fn from(n: usize) -> Self {
        RopeOffset::Int(n)
    }
}

impl<'a> From<&'a Array> for RopeOffset<'a> {
    fn from(a: &'a Array) -> Self {
        RopeOffset::Array(a)
    }
}

/// Rotary position embedding, MLX's `mx.fast.rope`: x `(..., L, D)`, row i of the
/// second-to-last axis at position `p = (offset + i) * scale`. The first `dims` features
/// turn by angles `p · inv_freq[j]`, j < dims/2; the others pass through. `traditional`
/// rotates adjacent pairs `(x[2j], x[2j+1])`; otherwise the halves `(x[j], x[j + dims/2])`
/// (GPT-NeoX and Hugging Face Llama's layout). Each pair `(a, b)` becomes
/// `(a cos - b sin, a sin + b cos)`.
///
/// Exactly one of `base` and `freqs`: `inv_freq[j] = base^(-2j/dims)`, or `freqs`, a
/// `(dims/2,)` array of **inverse** frequencies (Hugging Face's `inv_freq`, e.g. after
/// Llama 3 or YaRN scaling; MLX's `freqs` are periods, their reciprocals). Angles are
/// computed in f32 (f64 for f64 x); the result has x's dtype.
///
/// One node with a fused kernel; its gradient (for x and `freqs`) is that of
/// [`rope_reference`]. On a CUDA device the fused CUDA kernel runs (`INGOT_CUDA_FAST=0`
/// builds the decomposition).
pub fn rope(
    x: &Array,
    dims: usize,
    traditional: bool,
    base: Option<f64>,
    scale: f64,
    offset: RopeOffset,
    freqs: Option<&Array>,
) -> Result<Array> {
    let (op, inputs) = rope_inputs(x, dims, traditional, base, scale, offset, freqs)?;
    build(op, inputs)
}

/// The decomposition of [`rope`] into `cos`, `sin`, slices and elementwise ops (the
/// angles materialized).
pub fn rope_reference(
    x: &Array,
    dims: usize,
    traditional: bool,
    base: Option<f64>,
    scale: f64,
    offset: RopeOffset,
    freqs: Option<&Array>,
) -> Result<Array> {
    let (op, inputs) = rope_inputs(x, dims, traditional, base, scale, offset, freqs)?;
    reference_of(&op, &inputs)
}

fn rope_inputs(
    x: &Array,
    dims: usize,
    traditional: bool,
    base: Option<f64>,
    scale: f64,
    offset: RopeOffset,
    freqs: Option<&Array>,
) -> Result<(Op, Vec<Array>)> {
    let off_arr = match offset {
        RopeOffset::Array(a) => Some(a),
        RopeOffset::Int(_) => None,
    };
    let bad = |why: &str| {
        Error::invalid(
            "rope",
            format!(
                "{why}: {} (dims {dims})",
                describe(&[("x", Some(x)), ("offset", off_arr), ("freqs", freqs)])
            ),
        )
    };
    if let Some(why) = rope_x_problem(x.shape(), x.dtype(), dims) {
        return Err(bad(&why));
    }
    let cdt = compute_dtype(x.dtype());
    let mut inputs = vec![x.clone()];
    let kind = match offset {
        RopeOffset::Int(n) => RopeOffsetKind::Fixed(n),
        RopeOffset::Array(a) => {
            if !a.dtype().is_integer() {
                return Err(bad("the offset must be an integer array"));
            }
            let o = crate::astype(a, DType::I64)?;
            let (kind, o) = if a.ndim() == 1 && x.ndim() >= 3 && a.shape()[0] == x.shape()[0] {
                (RopeOffsetKind::PerBatch, o)
            } else if a.size() == 1 && a.ndim() <= 1 {
                (RopeOffsetKind::Scalar, crate::reshape_to(&o, &[])?)
            } else {
                return Err(bad("the offset must be 0-d or (B,) for x (B, ..., L, D)"));
            };
            inputs.push(o);
            kind
        }
    };
    match (base, freqs) {
        (Some(_), None) => {}
        (None, Some(f)) => {
            if f.shape() != [dims / 2] || !(f.dtype().is_float() || f.dtype().is_integer()) {
                return Err(bad(&format!(
                    "freqs must be real of shape (dims / 2,) = ({},)",
                    dims / 2
                )));
            }
            inputs.push(crate::astype(f, cdt)?);
        }
        _ => return Err(bad("give exactly one of base and freqs")),
    }
    let op = Op::Rope {
        dims,
        traditional,
        base: base.map(Scalar::Float),
        scale: Scalar::Float(scale),
        offset: kind,
    };
    Ok((op, inputs))
}

/// `base^(-2j/dims)` for j < dims/2, in f64 (the kernels round it to their compute dtype).
pub(crate) fn rope_inv_freqs(base: f64, dims: usize) -> Vec<f64> {
    (0..dims / 2)
        .map(|j| base.powf(-2.0 * j as f64 / dims as f64))
        .collect()
}

// ---- the decompositions ----------------------------------------------------------------------

/// The decomposition of a rms_norm, layer_norm or rope node on its normalized inputs.
/// Autocast is off inside: the node's dtypes are final.
pub(crate) fn reference_of(op: &Op, inputs: &[Array]) -> Result<Array> {
    crate::amp::with(None, || match op {
        Op::RmsNorm { eps, has_weight } => {
            norm_reference(inputs, eps.to_f64(), false, *has_weight, false)
        }
        Op::LayerNorm {
            eps,
            has_weight,
            has_bias,
        } => norm_reference(inputs, eps.to_f64(), true, *has_weight, *has_bias),
        Op::Rope {
            dims,
            traditional,
            base,
            scale,
            offset,
        } => rope_reference_node(
            inputs,
            *dims,
            *traditional,
            base.map(|b| b.to_f64()),
            scale.to_f64(),
            *offset,
        ),
        _ => Err(Error::invalid(op.name(), "internal: not a norm or rope op")),
    })
}

fn norm_reference(
    inputs: &[Array],
    eps: f64,
    center: bool,
    has_weight: bool,
    has_bias: bool,
) -> Result<Array> {
    let x = &inputs[0];
    let (dt, cdt) = (x.dtype(), compute_dtype(x.dtype()));
    let last: &[isize] = &[-1];
    let mut xc = crate::astype(x, cdt)?;
    if center {
        xc = crate::subtract(&xc, &crate::mean(&xc, Some(last), true)?)?;
    }
    let var = crate::mean(&crate::square(&xc)?, Some(last), true)?;
    let mut y = crate::multiply(&xc, &crate::rsqrt(&crate::add(&var, eps)?)?)?;
    let mut k = 1;
    if has_weight {
        y = crate::multiply(&y, &crate::astype(&inputs[k], cdt)?)?;
        k += 1;
    }
    if has_bias {
        y = crate::add(&y, &crate::astype(&inputs[k], cdt)?)?;
    }
    crate::astype(&y, dt)
}

fn rope_reference_node(
    inputs: &[Array],
    dims: usize,
    traditional: bool,
    base: Option<f64>,
    scale: f64,
    offset: RopeOffsetKind,
) -> Result<Array> {
    let x = &inputs[0];
    let n = x.ndim();
    let (l, d) = (x.shape()[n - 2], x.shape()[n - 1]);
    let (dt, cdt) = (x.dtype(), compute_dtype(x.dtype()));
    let half = dims / 2;
    let rows = crate::arange(0.0, l as f64, 1.0, DType::I64)?;
    let mut k = 1;
    // Positions: (L,), or (B, 1, ..., 1, L) with an offset per batch row.
    let pos = match offset {
        RopeOffsetKind::Fixed(o) => crate::add(&rows, o as i64)?,
        RopeOffsetKind::Scalar => {
            k = 2;
            crate::add(&rows, &inputs[1])?
        }
        RopeOffsetKind::PerBatch => {
            k = 2;
            let mut s = vec![1; n - 1];
            s[0] = x.shape()[0];
            crate::add(&crate::reshape_to(&inputs[1], &s)?, &rows)?
        }
    };
    let inv = match base {
        Some(b) => crate::astype(&Array::from_vec(rope_inv_freqs(b, dims), &[half])?, cdt)?,
        None => inputs[k].clone(),
    };
    let pos = crate::multiply(&crate::astype(&pos, cdt)?, scale)?;
    let theta = crate::multiply(&crate::expand_dims(&pos, &[-1])?, &inv)?;
    let (c, s) = (crate::cos(&theta)?, crate::sin(&theta)?);
    let xf = crate::astype(x, cdt)?;
    let cut = |a: &Array, lo: usize, hi: usize| {
        crate::slice_axis(a, -1, SliceArg::range(lo as isize, hi as isize))
    };
    let turn = |a: &Array, b: &Array| -> Result<(Array, Array)> {
        let o1 = crate::subtract(&crate::multiply(a, &c)?, &crate::multiply(b, &s)?)?;
        let o2 = crate::add(&crate::multiply(a, &s)?, &crate::multiply(b, &c)?)?;
        Ok((o1, o2))
    };
    let mut parts = if traditional {
        let mut pairs = x.shape()[..n - 1].to_vec();
        pairs.extend_from_slice(&[half, 2]);
        let xp = crate::reshape_to(&cut(&xf, 0, dims)?, &pairs)?;
        let one = |j: usize| -> Result<Array> {
            crate::squeeze(
                &crate::slice_axis(&xp, -1, SliceArg::range(j as isize, j as isize + 1))?,
                Some(&[-1]),
            )
        };
        let (o1, o2) = turn(&one(0)?, &one(1)?)?;
        let mut flat = x.shape()[..n - 1].to_vec();
        flat.push(dims);
        vec![crate::reshape_to(&crate::stack(&[o1, o2], -1)?, &flat)?]
    } else {
        let (o1, o2) = turn(&cut(&xf, 0, half)?, &cut(&xf, half, dims)?)?;
        vec![o1, o2]
    };
    if dims < d {
        parts.push(cut(&xf, dims, d)?);
    }
    crate::astype(&crate::concatenate(&parts, Some(-1))?, dt)
}
