//! Reductions and scans: sum, prod, max, min, all, any, mean, var, std, logsumexp,
//! count_nonzero, argmax, argmin, cumsum, cumprod, cummax, cummin, logcumsumexp, allclose,
//! array_equal. Dtype rules follow NumPy (see docs/ops/reduce.md).

use crate::array::Array;
use crate::dtype::DType;
use crate::op::{ArgReduceKind, Op, ReduceKind, ScanKind};
use crate::ops::{
    astype, conj, divide, equal, exp, full, isclose, isfinite, isnan, log, logical_and, logical_or,
    multiply, real, reshape_to, sqrt, subtract, where_,
};
use crate::shape::{fmt_shape, normalize_axes, normalize_axis};
use crate::{Error, Result};

/// The dtype of sums and products of `d`: bool and narrow signed ints give int64, narrow
/// unsigned ints give uint64, others keep their dtype (NumPy's rule).
pub fn sum_dtype(d: DType) -> DType {
    crate::backend::cpu::reduce::sum_dtype(d)
}

/// Sorted, validated axes (None: all).
fn reduce_axes(name: &str, a: &Array, axes: Option<&[isize]>) -> Result<Vec<usize>> {
    let mut ax = match axes {
        None => (0..a.ndim()).collect(),
        Some(ax) => normalize_axes(name, ax, a.ndim())?,
    };
    ax.sort_unstable();
    Ok(ax)
}

fn kept_shape(shape: &[usize], axes: &[usize]) -> Vec<usize> {
    shape
        .iter()
        .enumerate()
        .map(|(i, &d)| if axes.contains(&i) { 1 } else { d })
        .collect()
}

fn squeezed_shape(shape: &[usize], axes: &[usize]) -> Vec<usize> {
    shape
        .iter()
        .enumerate()
        .filter(|(i, _)| !axes.contains(i))
        .map(|(_, &d)| d)
        .collect()
}

/// Number of elements each output of a reduction over `axes` combines.
fn reduced_count(shape: &[usize], axes: &[usize]) -> usize {
    axes.iter().map(|&i| shape[i]).product()
}

fn not_supported(name: &str, a: &Array) -> Error {
    Error::invalid(
        name,
        format!(
            "not supported for dtype {} (shape {})",
            a.dtype(),
            fmt_shape(a.shape())
        ),
    )
}

/// Drops the kept size-1 axes unless `keepdims`.
fn finish_dims(node: Array, axes: &[usize], keepdims: bool) -> Result<Array> {
    if keepdims {
        Ok(node)
    } else {
        let s = squeezed_shape(node.shape(), axes);
        reshape_to(&node, &s)
    }
}

fn reduce_node(
    kind: ReduceKind,
    a: &Array,
    ax: &[usize],
    keepdims: bool,
    out: DType,
) -> Result<Array> {
    let node = Array::from_op(
        Op::Reduce {
            kind,
            axes: ax.to_vec(),
        },
        vec![a.clone()],
        kept_shape(a.shape(), ax),
        out,
    );
    finish_dims(node, ax, keepdims)
}

/// Sum over `axes` (None: all). bool and signed ints narrower than 64 bits give int64,
/// unsigned give uint64; floats and complex keep their dtype (f16/bf16 accumulate in f32).
/// Floats are summed pairwise.
pub fn sum(a: &Array, axes: Option<&[isize]>, keepdims: bool) -> Result<Array> {
    // Under autocast, half-precision inputs reduce in float32 (crate::amp).
    let a = &crate::amp::high(a)?;
    let ax = reduce_axes("sum", a, axes)?;
    reduce_node(ReduceKind::Sum, a, &ax, keepdims, sum_dtype(a.dtype()))
}

/// Product over `axes`; dtypes as [`sum`]. Integers wrap.
pub fn prod(a: &Array, axes: Option<&[isize]>, keepdims: bool) -> Result<Array> {
    // Under autocast, half-precision inputs reduce in float32 (crate::amp).
    let a = &crate::amp::high(a)?;
    let ax = reduce_axes("prod", a, axes)?;
    reduce_node(ReduceKind::Prod, a, &ax, keepdims, sum_dtype(a.dtype()))
}

fn extremum(
    name: &str,
    kind: ReduceKind,
    a: &Array,
    axes: Option<&[isize]>,
    keepdims: bool,
) -> Result<Array> {
    if a.dtype().is_complex() {
        return Err(not_supported(name, a));
    }
    let ax = reduce_axes(name, a, axes)?;
    if reduced_count(a.shape(), &ax) == 0 {
        return Err(Error::invalid(
            name,
            format!(
                "zero-size array to reduction operation {name} which has no identity (shape {}, axes {ax:?})",
                fmt_shape(a.shape())
            ),
        ));
    }
    reduce_node(kind, a, &ax, keepdims, a.dtype())
}

/// Maximum over `axes`; keeps the dtype, NaN propagates. Complex inputs and empty
/// reductions are errors.
pub fn max(a: &Array, axes: Option<&[isize]>, keepdims: bool) -> Result<Array> {
    extremum("max", ReduceKind::Max, a, axes, keepdims)
}

/// Minimum over `axes`; see [`max`].
pub fn min(a: &Array, axes: Option<&[isize]>, keepdims: bool) -> Result<Array> {
    extremum("min", ReduceKind::Min, a, axes, keepdims)
}

/// Are all elements non-zero (NaN counts as non-zero)? Any dtype; gives bool.
pub fn all(a: &Array, axes: Option<&[isize]>, keepdims: bool) -> Result<Array> {
    let ax = reduce_axes("all", a, axes)?;
    reduce_node(ReduceKind::All, a, &ax, keepdims, DType::Bool)
}

/// Is any element non-zero? Any dtype; gives bool.
pub fn any(a: &Array, axes: Option<&[isize]>, keepdims: bool) -> Result<Array> {
    let ax = reduce_axes("any", a, axes)?;
    reduce_node(ReduceKind::Any, a, &ax, keepdims, DType::Bool)
}

/// Number of non-zero elements (NaN counts), as int64.
pub fn count_nonzero(a: &Array, axes: Option<&[isize]>, keepdims: bool) -> Result<Array> {
    let ax = reduce_axes("count_nonzero", a, axes)?;
    let b = astype(a, DType::Bool)?;
    reduce_node(ReduceKind::Sum, &b, &ax, keepdims, DType::I64)
}

/// Mean over `axes`. Integers and bool give float32 (summed exactly in 64-bit integers
/// first), f16/bf16 are summed in f32 and rounded once, f32/f64/c64 keep their dtype.
/// An empty reduction gives NaN.
pub fn mean(a: &Array, axes: Option<&[isize]>, keepdims: bool) -> Result<Array> {
    // Under autocast, half-precision inputs reduce in float32 (crate::amp).
    let a = &crate::amp::high(a)?;
    let ax = reduce_axes("mean", a, axes)?;
    let n = reduced_count(a.shape(), &ax) as f64;
    let dt = a.dtype();
    match dt {
        DType::F32 | DType::F64 | DType::C64 => {
            let s = reduce_node(ReduceKind::Sum, a, &ax, keepdims, dt)?;
            divide(&s, n)
        }
        DType::F16 | DType::BF16 => {
            let s = reduce_node(
                ReduceKind::Sum,
                &astype(a, DType::F32)?,
                &ax,
                keepdims,
                DType::F32,
            )?;
            astype(&divide(&s, n)?, dt)
        }
        _ => {
            let s = reduce_node(ReduceKind::Sum, a, &ax, keepdims, sum_dtype(dt))?;
            let m = divide(&astype(&s, DType::F64)?, n)?;
            astype(&m, DType::F32)
        }
    }
}

/// Variance over `axes` with `ddof` delta degrees of freedom, in two passes (the mean, then
/// the squared deviations) for accuracy. Integers and bool give float32, f16/bf16 compute in
/// f32, complex gives float32 (mean of |x - mean|^2). `n - ddof <= 0` gives inf or NaN, as
/// NumPy.
pub fn var(a: &Array, axes: Option<&[isize]>, keepdims: bool, ddof: usize) -> Result<Array> {
    // Under autocast, half-precision inputs reduce in float32 (crate::amp).
    let a = &crate::amp::high(a)?;
    let ax = reduce_axes("var", a, axes)?;
    let n = reduced_count(a.shape(), &ax);
    let dt = a.dtype();
    // Computation dtype: ints in f64 (exact deviations), halves in f32.
    let (x, back) = match dt {
        DType::F32 | DType::F64 | DType::C64 => (a.clone(), None),
        DType::F16 | DType::BF16 => (astype(a, DType::F32)?, Some(dt)),
        _ => (astype(a, DType::F64)?, Some(DType::F32)),
    };
    let xt = x.dtype();
    let s = reduce_node(ReduceKind::Sum, &x, &ax, true, xt)?;
    let m = divide(&s, n as f64)?;
    let dev = subtract(&x, &m)?;
    let sq = if xt.is_complex() {
        real(&multiply(&dev, &conj(&dev)?)?)?
    } else {
        multiply(&dev, &dev)?
    };
    let ss = reduce_node(ReduceKind::Sum, &sq, &ax, keepdims, sq.dtype())?;
    let v = divide(&ss, n.saturating_sub(ddof) as f64)?;
    match back {
        Some(d) => astype(&v, d),
        None => Ok(v),
    }
}

/// Standard deviation: `sqrt(var(a, axes, keepdims, ddof))`.
pub fn std(a: &Array, axes: Option<&[isize]>, keepdims: bool, ddof: usize) -> Result<Array> {
    // Under autocast, half-precision inputs reduce in float32 (crate::amp).
    let a = &crate::amp::high(a)?;
    let v = var(a, axes, keepdims, ddof).map_err(|e| rename(e, "std"))?;
    sqrt(&v)
}

fn rename(e: Error, name: &str) -> Error {
    match e {
        Error::Invalid { msg, .. } => Error::invalid(name, msg),
        e => e,
    }
}

/// `log(sum(exp(a)))` over `axes`, shifted by the maximum so that it neither overflows nor
/// underflows. Floats (ints and bool compute in float32; f16/bf16 in f32, rounded once).
/// All -inf gives -inf, any +inf gives +inf, an empty reduction gives -inf.
pub fn logsumexp(a: &Array, axes: Option<&[isize]>, keepdims: bool) -> Result<Array> {
    // Under autocast, half-precision inputs reduce in float32 (crate::amp).
    let a = &crate::amp::high(a)?;
    if a.dtype().is_complex() {
        return Err(not_supported("logsumexp", a));
    }
    let ax = reduce_axes("logsumexp", a, axes)?;
    let dt = a.dtype();
    let out_dt = dt.to_inexact();
    let x = match dt {
        DType::F32 | DType::F64 => a.clone(),
        _ => astype(a, DType::F32)?,
    };
    let xt = x.dtype();
    let shape = if keepdims {
        kept_shape(a.shape(), &ax)
    } else {
        squeezed_shape(a.shape(), &ax)
    };
    if reduced_count(a.shape(), &ax) == 0 {
        return full(&shape, f64::NEG_INFINITY, out_dt);
    }
    let m = reduce_node(ReduceKind::Max, &x, &ax, true, xt)?;
    // An infinite or NaN maximum is not subtracted: exp(x - 0) then carries it through.
    let shift = where_(&isfinite(&m)?, &m, Array::scalar_as(0.0, xt))?;
    let e = exp(&subtract(&x, &shift)?)?;
    let s = reduce_node(ReduceKind::Sum, &e, &ax, true, xt)?;
    let r = crate::ops::add(&log(&s)?, &shift)?;
    let r = finish_dims(r, &ax, keepdims)?;
    astype(&r, out_dt)
}

fn arg_reduce(
    name: &str,
    kind: ArgReduceKind,
    a: &Array,
    axis: Option<isize>,
    keepdims: bool,
) -> Result<Array> {
    if a.dtype().is_complex() {
        return Err(not_supported(name, a));
    }
    let (x, ax) = match axis {
        None => (reshape_to(a, &[a.size()])?, 0),
        Some(ax) => (a.clone(), normalize_axis(name, ax, a.ndim())?),
    };
    if x.shape()[ax] == 0 {
        return Err(Error::invalid(
            name,
            format!(
                "attempt to get {name} of an empty sequence (shape {}, axis {ax})",
                fmt_shape(a.shape())
            ),
        ));
    }
    let node = Array::from_op(
        Op::ArgReduce { kind, axis: ax },
        vec![x.clone()],
        kept_shape(x.shape(), &[ax]),
        DType::I64,
    );
    match (axis, keepdims) {
        (None, true) => reshape_to(&node, &vec![1; a.ndim()]),
        (None, false) => reshape_to(&node, &[]),
        (Some(_), k) => finish_dims(node, &[ax], k),
    }
}

/// Index of the first maximum along `axis` (None: of the flattened array), as int64. NaN
/// counts as the maximum (the first NaN wins), as NumPy. Complex inputs and empty axes are
/// errors.
pub fn argmax(a: &Array, axis: Option<isize>, keepdims: bool) -> Result<Array> {
    arg_reduce("argmax", ArgReduceKind::ArgMax, a, axis, keepdims)
}

/// Index of the first minimum along `axis`; see [`argmax`].
pub fn argmin(a: &Array, axis: Option<isize>, keepdims: bool) -> Result<Array> {
    arg_reduce("argmin", ArgReduceKind::ArgMin, a, axis, keepdims)
}

fn scan_node(
    name: &str,
    kind: ScanKind,
    a: &Array,
    axis: Option<isize>,
    reverse: bool,
    inclusive: bool,
    out: DType,
) -> Result<Array> {
    let (x, ax) = match axis {
        None => (reshape_to(a, &[a.size()])?, 0),
        Some(ax) => (a.clone(), normalize_axis(name, ax, a.ndim())?),
    };
    Ok(Array::from_op(
        Op::Scan {
            kind,
            axis: ax,
            reverse,
            inclusive,
        },
        vec![x.clone()],
        x.shape().to_vec(),
        out,
    ))
}

/// Cumulative sum along `axis` (None: of the flattened array). `reverse` scans from the end;
/// `inclusive = false` shifts by one, starting at 0 (MLX). Dtypes as [`sum`].
pub fn cumsum(a: &Array, axis: Option<isize>, reverse: bool, inclusive: bool) -> Result<Array> {
    // Under autocast, half-precision inputs reduce in float32 (crate::amp).
    let a = &crate::amp::high(a)?;
    scan_node(
        "cumsum",
        ScanKind::Sum,
        a,
        axis,
        reverse,
        inclusive,
        sum_dtype(a.dtype()),
    )
}

/// Cumulative product; see [`cumsum`] (the exclusive form starts at 1).
pub fn cumprod(a: &Array, axis: Option<isize>, reverse: bool, inclusive: bool) -> Result<Array> {
    // Under autocast, half-precision inputs reduce in float32 (crate::amp).
    let a = &crate::amp::high(a)?;
    scan_node(
        "cumprod",
        ScanKind::Prod,
        a,
        axis,
        reverse,
        inclusive,
        sum_dtype(a.dtype()),
    )
}

/// Running maximum (NaN propagates); keeps the dtype; the exclusive form starts at the
/// dtype's lowest value (-inf for floats). Complex is an error.
pub fn cummax(a: &Array, axis: Option<isize>, reverse: bool, inclusive: bool) -> Result<Array> {
    if a.dtype().is_complex() {
        return Err(not_supported("cummax", a));
    }
    scan_node(
        "cummax",
        ScanKind::Max,
        a,
        axis,
        reverse,
        inclusive,
        a.dtype(),
    )
}

/// Running minimum; see [`cummax`] (the exclusive form starts at the highest value).
pub fn cummin(a: &Array, axis: Option<isize>, reverse: bool, inclusive: bool) -> Result<Array> {
    if a.dtype().is_complex() {
        return Err(not_supported("cummin", a));
    }
    scan_node(
        "cummin",
        ScanKind::Min,
        a,
        axis,
        reverse,
        inclusive,
        a.dtype(),
    )
}

/// Running `log(sum(exp(a)))`; floats (ints and bool compute in float32); the exclusive
/// form starts at -inf. Complex is an error.
pub fn logcumsumexp(
    a: &Array,
    axis: Option<isize>,
    reverse: bool,
    inclusive: bool,
) -> Result<Array> {
    let a = &crate::amp::high(a)?;
    if a.dtype().is_complex() {
        return Err(not_supported("logcumsumexp", a));
    }
    let x = if a.dtype().is_float() {
        a.clone()
    } else {
        astype(a, DType::F32)?
    };
    scan_node(
        "logcumsumexp",
        ScanKind::LogAddExp,
        &x,
        axis,
        reverse,
        inclusive,
        x.dtype(),
    )
}

/// Are `a` and `b` close everywhere (`ops::isclose` after broadcasting)? Evaluates.
pub fn allclose(a: &Array, b: &Array, rtol: f64, atol: f64, equal_nan: bool) -> Result<bool> {
    let c = isclose(a, b, rtol, atol, equal_nan).map_err(|e| rename(e, "allclose"))?;
    all(&c, None, false)?.item::<bool>()
}

/// Same shape and equal elements (NaN equal to NaN when `equal_nan`)? Arrays of different
/// shapes are not equal (no broadcasting). Evaluates.
pub fn array_equal(a: &Array, b: &Array, equal_nan: bool) -> Result<bool> {
    if a.shape() != b.shape() {
        return Ok(false);
    }
    let mut eq = equal(a, b)?;
    if equal_nan {
        eq = logical_or(&eq, &logical_and(&isnan(a)?, &isnan(b)?)?)?;
    }
    all(&eq, None, false)?.item::<bool>()
}

impl Array {
    /// [`sum`](crate::ops::sum) as a method.
    pub fn sum(&self, axes: Option<&[isize]>, keepdims: bool) -> Result<Array> {
        sum(self, axes, keepdims)
    }
    /// [`mean`](crate::ops::mean) as a method.
    pub fn mean(&self, axes: Option<&[isize]>, keepdims: bool) -> Result<Array> {
        mean(self, axes, keepdims)
    }
    /// [`max`](crate::ops::max) as a method.
    pub fn max(&self, axes: Option<&[isize]>, keepdims: bool) -> Result<Array> {
        max(self, axes, keepdims)
    }
    /// [`min`](crate::ops::min) as a method.
    pub fn min(&self, axes: Option<&[isize]>, keepdims: bool) -> Result<Array> {
        min(self, axes, keepdims)
    }
    /// [`argmax`](crate::ops::argmax) as a method.
    pub fn argmax(&self, axis: Option<isize>, keepdims: bool) -> Result<Array> {
        argmax(self, axis, keepdims)
    }
    /// [`argmin`](crate::ops::argmin) as a method.
    pub fn argmin(&self, axis: Option<isize>, keepdims: bool) -> Result<Array> {
        argmin(self, axis, keepdims)
    }
}
