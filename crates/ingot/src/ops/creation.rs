//! Array constructors: zeros, ones, full, arange, linspace, eye, identity, tri, *_like.

use crate::array::{Array, IntoArray};
use crate::dtype::{DType, Scalar};
use crate::op::Op;
use crate::ops::{astype, broadcast_to, equal, expand_dims, greater_equal, subtract};
use crate::shape::checked_size;
use crate::{Error, Result};

/// An array of `shape` filled with `value` in `dtype` (a broadcast view of one element: no
/// memory is used until something writes a new array).
pub fn full(shape: &[usize], value: impl Into<Scalar>, dtype: DType) -> Result<Array> {
    checked_size("full", shape)?;
    broadcast_to(&Array::scalar_as(value, dtype), shape)
}
pub fn zeros(shape: &[usize], dtype: DType) -> Result<Array> {
    full(shape, 0i64, dtype)
}
pub fn ones(shape: &[usize], dtype: DType) -> Result<Array> {
    full(shape, 1i64, dtype)
}
pub fn zeros_like(a: &Array) -> Result<Array> {
    zeros(a.shape(), a.dtype())
}
pub fn ones_like(a: &Array) -> Result<Array> {
    ones(a.shape(), a.dtype())
}
pub fn full_like(a: &Array, value: impl Into<Scalar>) -> Result<Array> {
    full(a.shape(), value, a.dtype())
}

/// `start, start + step, ...` up to but excluding `stop`, as NumPy's `arange`.
pub fn arange(start: f64, stop: f64, step: f64, dtype: DType) -> Result<Array> {
    if step == 0.0 || !step.is_finite() || !start.is_finite() || !stop.is_finite() {
        return Err(Error::invalid(
            "arange",
            format!("start {start}, stop {stop} and step {step} must be finite with step != 0"),
        ));
    }
    if dtype == DType::Bool {
        return Err(Error::invalid("arange", "not supported for dtype bool"));
    }
    let n = ((stop - start) / step).ceil().max(0.0);
    if n > (isize::MAX as f64) / 16.0 {
        return Err(Error::invalid(
            "arange",
            format!("{n} elements is too many"),
        ));
    }
    let n = n as usize;
    Ok(Array::from_op(
        Op::Arange {
            start: Scalar::Float(start),
            step: Scalar::Float(step),
        },
        vec![],
        vec![n],
        dtype,
    ))
}

/// `num` evenly spaced values from `start` to `stop` (inclusive when `endpoint`).
pub fn linspace(start: f64, stop: f64, num: usize, endpoint: bool, dtype: DType) -> Result<Array> {
    let div = if endpoint { num.saturating_sub(1) } else { num };
    let step = if div > 0 {
        (stop - start) / div as f64
    } else {
        0.0
    };
    if num > 0 && (isize::MAX as usize) / 16 < num {
        return Err(Error::invalid(
            "linspace",
            format!("num = {num} is too large"),
        ));
    }
    // i * step + start computed in f64, then one rounding to the target dtype.
    let idx = Array::from_op(
        Op::Arange {
            start: Scalar::Float(0.0),
            step: Scalar::Float(1.0),
        },
        vec![],
        vec![num],
        DType::F64,
    );
    let v = crate::ops::add(&crate::ops::multiply(&idx, step)?, start)?;
    let v = if endpoint && num > 1 {
        // The last value is exactly `stop`, as NumPy guarantees.
        let last = crate::ops::equal(&idx, (num - 1) as f64)?;
        crate::ops::where_(&last, stop, &v)?
    } else {
        v
    };
    astype(&v, dtype)
}

/// A 2-D array with ones on the `k`-th diagonal.
pub fn eye(n: usize, m: Option<usize>, k: isize, dtype: DType) -> Result<Array> {
    let m = m.unwrap_or(n);
    checked_size("eye", &[n, m])?;
    let i = expand_dims(&arange(0.0, n as f64, 1.0, DType::I64)?, &[1])?;
    let j = arange(0.0, m as f64, 1.0, DType::I64)?;
    astype(&equal(&subtract(&j, k as i64)?, &i)?, dtype)
}

pub fn identity(n: usize, dtype: DType) -> Result<Array> {
    eye(n, None, 0, dtype)
}

/// A 2-D array with ones at and below the `k`-th diagonal.
pub fn tri(n: usize, m: Option<usize>, k: isize, dtype: DType) -> Result<Array> {
    let m = m.unwrap_or(n);
    checked_size("tri", &[n, m])?;
    let i = expand_dims(&arange(0.0, n as f64, 1.0, DType::I64)?, &[1])?;
    let j = arange(0.0, m as f64, 1.0, DType::I64)?;
    astype(&greater_equal(&crate::ops::add(&i, k as i64)?, &j)?, dtype)
}

/// Makes anything array-like into an array (Rust numbers become weak scalars).
pub fn array(x: impl IntoArray) -> Array {
    x.into_array()
}
