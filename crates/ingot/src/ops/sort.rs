//! Sorting: sort, argsort, partition, argpartition, topk, searchsorted, unique, median.
//!
//! Orders follow NumPy: NaN after everything, complex lexicographic; sorts are stable.
//! Index outputs are int64.

use crate::array::{Array, IntoArray};
use crate::backend::cpu::sort::SortElem;
use crate::dtype::{result_type, DType};
use crate::op::Op;
use crate::ops::{
    add, astype, flip, full, isnan, multiply, reshape_to, slice_axis, subtract, transpose, where_,
    SliceArg,
};
use crate::shape::{fmt_shape, normalize_axes, normalize_axis};
use crate::{Error, Result};

/// The array to work on and the resolved axis: `None` flattens (NumPy's `axis=None`).
fn resolve_axis(name: &str, a: &Array, axis: Option<isize>) -> Result<(Array, usize)> {
    match axis {
        None => Ok((reshape_to(a, &[a.size()])?, 0)),
        Some(ax) => Ok((a.clone(), normalize_axis(name, ax, a.ndim())?)),
    }
}

/// `kth` (negative counts from the end) checked against the axis length, NumPy's message.
fn resolve_kth(name: &str, x: &Array, axis: usize, kth: isize) -> Result<usize> {
    let n = x.shape()[axis] as isize;
    let k = if kth < 0 { kth + n } else { kth };
    if k < 0 || k >= n {
        return Err(Error::invalid(
            name,
            format!(
                "kth(={kth}) out of bounds ({n}) for axis {axis} of shape {}",
                fmt_shape(x.shape())
            ),
        ));
    }
    Ok(k as usize)
}

/// Sorted copy along `axis` (`None`: of the flattened array). Stable; NaN last.
pub fn sort(a: &Array, axis: Option<isize>) -> Result<Array> {
    let (x, axis) = resolve_axis("sort", a, axis)?;
    Ok(Array::from_op(
        Op::Sort { axis },
        vec![x.clone()],
        x.shape().to_vec(),
        x.dtype(),
    ))
}

/// Indices that sort `a` along `axis` (stable: equal elements keep their order), int64.
pub fn argsort(a: &Array, axis: Option<isize>) -> Result<Array> {
    let (x, axis) = resolve_axis("argsort", a, axis)?;
    Ok(Array::from_op(
        Op::ArgSort { axis },
        vec![x.clone()],
        x.shape().to_vec(),
        DType::I64,
    ))
}

/// A copy where the `kth` element along `axis` is where a sort would put it, everything
/// before it is not greater and everything after not smaller (NumPy's `partition`).
pub fn partition(a: &Array, kth: isize, axis: Option<isize>) -> Result<Array> {
    let (x, axis) = resolve_axis("partition", a, axis)?;
    let kth = resolve_kth("partition", &x, axis, kth)?;
    Ok(Array::from_op(
        Op::Partition { kth, axis },
        vec![x.clone()],
        x.shape().to_vec(),
        x.dtype(),
    ))
}

/// Indices that partition `a` (see [`partition`]), int64.
pub fn argpartition(a: &Array, kth: isize, axis: Option<isize>) -> Result<Array> {
    let (x, axis) = resolve_axis("argpartition", a, axis)?;
    let kth = resolve_kth("argpartition", &x, axis, kth)?;
    Ok(Array::from_op(
        Op::ArgPartition { kth, axis },
        vec![x.clone()],
        x.shape().to_vec(),
        DType::I64,
    ))
}

/// The `k` largest (or smallest) elements along `axis` and their int64 indices. Largest
/// first (smallest first when `largest` is false); among equal values the lower index comes
/// first; NaN counts as the largest value. Results are always in sorted order, which
/// `sorted = false` allows (its order is unspecified).
pub fn topk(a: &Array, k: usize, axis: isize, largest: bool, sorted: bool) -> Result<(Array, Array)> {
    let _ = sorted;
    let ax = normalize_axis("topk", axis, a.ndim())?;
    let n = a.shape()[ax];
    if k > n {
        return Err(Error::invalid(
            "topk",
            format!(
                "k = {k} is larger than the size {n} of axis {axis} in shape {}",
                fmt_shape(a.shape())
            ),
        ));
    }
    let axi = ax as isize;
    if largest {
        // Sorting the flipped array ascending and reading it backwards puts the largest
        // first and, among equal values, the lower original index first.
        let f = flip(a, Some(&[axi]))?;
        let back = SliceArg::new(
            Some(n as isize - 1),
            if k < n { Some((n - 1 - k) as isize) } else { None },
            -1,
        );
        let vals = slice_axis(&sort(&f, Some(axi))?, axi, back)?;
        let idx = slice_axis(&argsort(&f, Some(axi))?, axi, back)?;
        let idx = subtract(Array::scalar::<i64>(n as i64 - 1), &idx)?;
        Ok((vals, idx))
    } else {
        let front = SliceArg::range(0, k as isize);
        let vals = slice_axis(&sort(a, Some(axi))?, axi, front)?;
        let idx = slice_axis(&argsort(a, Some(axi))?, axi, front)?;
        Ok((vals, idx))
    }
}

/// Indices where `v` would be inserted into the sorted 1-D `a` to keep it sorted: the first
/// such place, or the last when `side_right` (NumPy's `side='right'`). int64 of `v`'s
/// shape. Both are promoted to a common dtype first.
pub fn searchsorted(a: &Array, v: impl IntoArray, side_right: bool) -> Result<Array> {
    let v = v.into_array();
    if a.ndim() != 1 {
        return Err(Error::invalid(
            "searchsorted",
            format!("a must be 1-D, got shape {}", fmt_shape(a.shape())),
        ));
    }
    let dtype = result_type(&[a.type_info(), v.type_info()]);
    let (a, v) = (astype(a, dtype)?, astype(&v, dtype)?);
    let shape = v.shape().to_vec();
    Ok(Array::from_op(
        Op::SearchSorted { right: side_right },
        vec![a, v],
        shape,
        DType::I64,
    ))
}

/// The result of [`unique`]: the sorted distinct values and, when asked for, the index of
/// each value's first occurrence, the index into `values` of every input element (with the
/// input's shape, as NumPy 2), and each value's count. Index arrays are int64.
#[derive(Clone, Debug)]
pub struct Unique {
    pub values: Array,
    pub indices: Option<Array>,
    pub inverse: Option<Array>,
    pub counts: Option<Array>,
}

/// The sorted distinct elements of the flattened `a`, as `np.unique` (NaNs collapse into
/// one). Evaluates `a`: the result's size depends on its values.
pub fn unique(
    a: &Array,
    return_index: bool,
    return_inverse: bool,
    return_counts: bool,
) -> Result<Unique> {
    let flat = reshape_to(a, &[a.size()])?;
    let perm = argsort(&flat, Some(0))?;
    crate::eval(&[flat.clone(), perm.clone()])?;
    let perm = perm.to_vec::<i64>()?;
    let n = perm.len();
    // Group starts in sorted order; equal values (and all NaNs) share a group.
    let (values, starts) = crate::dispatch_dtype!(a.dtype(), T => {
        let v = flat.to_vec::<T>()?;
        let same = |x: &T, y: &T| (x.has_nan() && y.has_nan()) || x.cmp_total(y).is_eq();
        let mut starts: Vec<usize> = Vec::new();
        let mut vals: Vec<T> = Vec::new();
        for i in 0..n {
            let cur = &v[perm[i] as usize];
            if i == 0 || !same(&v[perm[i - 1] as usize], cur) {
                starts.push(i);
                vals.push(*cur);
            }
        }
        (Array::from_vec(vals, &[starts.len()])?, starts)
    });
    let u = starts.len();
    let indices = if return_index {
        // The sort is stable, so a group's first element is its first occurrence.
        let idx: Vec<i64> = starts.iter().map(|&s| perm[s]).collect();
        Some(Array::from_vec(idx, &[u])?)
    } else {
        None
    };
    let inverse = if return_inverse {
        let mut inv = vec![0i64; n];
        for (g, w) in starts.iter().enumerate() {
            let end = starts.get(g + 1).copied().unwrap_or(n);
            for &p in &perm[*w..end] {
                inv[p as usize] = g as i64;
            }
        }
        Some(Array::from_vec(inv, a.shape())?)
    } else {
        None
    };
    let counts = if return_counts {
        let c: Vec<i64> = (0..u)
            .map(|g| (starts.get(g + 1).copied().unwrap_or(n) - starts[g]) as i64)
            .collect();
        Some(Array::from_vec(c, &[u])?)
    } else {
        None
    };
    Ok(Unique {
        values,
        indices,
        inverse,
        counts,
    })
}

/// Median over `axes` (`None`: all), as `np.median`: the middle element, or the mean of the
/// two middle ones; NaN where a slice holds a NaN, NaN for empty slices. Integers and bool
/// give float32; float and complex keep their dtype (f16/bf16 average in f32).
///
/// Built from partitions, O(n) per slice: one partition at the upper middle, one of the
/// lower half for the lower middle (even lengths), and, for inexact dtypes, one of the upper
/// half to bring up the largest element, which is NaN exactly when the slice holds one.
pub fn median(a: &Array, axes: Option<&[isize]>, keepdims: bool) -> Result<Array> {
    let nd = a.ndim();
    let red: Vec<usize> = match axes {
        None => (0..nd).collect(),
        Some(ax) => normalize_axes("median", ax, nd)?,
    };
    let kept: Vec<usize> = (0..nd).filter(|i| !red.contains(i)).collect();
    let out_dtype = match a.dtype() {
        d if d.is_inexact() => d,
        _ => DType::F32,
    };
    let out_shape: Vec<usize> = if keepdims {
        (0..nd)
            .map(|i| if red.contains(&i) { 1 } else { a.shape()[i] })
            .collect()
    } else {
        kept.iter().map(|&i| a.shape()[i]).collect()
    };
    let m: usize = red.iter().map(|&i| a.shape()[i]).product();
    if m == 0 {
        return full(&out_shape, f64::NAN, out_dtype);
    }
    // Reduced axes last, flattened into one of length m.
    let perm: Vec<isize> = kept.iter().chain(red.iter()).map(|&i| i as isize).collect();
    let mut flat_shape: Vec<usize> = kept.iter().map(|&i| a.shape()[i]).collect();
    flat_shape.push(m);
    let x = reshape_to(&transpose(a, Some(&perm))?, &flat_shape)?;
    let h = m / 2;
    let p = partition(&x, h as isize, Some(-1))?;
    let pick = |arr: &Array, i: usize| slice_axis(arr, -1, SliceArg::range(i as isize, i as isize + 1));
    let upper = pick(&p, h)?;
    let compute = match out_dtype {
        DType::F16 | DType::BF16 => DType::F32,
        d => d,
    };
    let mut med = if m % 2 == 1 {
        astype(&upper, compute)?
    } else {
        let low_half = slice_axis(&p, -1, SliceArg::range(0, h as isize))?;
        let lower = pick(&partition(&low_half, h as isize - 1, Some(-1))?, h - 1)?;
        let sum = add(&astype(&lower, compute)?, &astype(&upper, compute)?)?;
        multiply(&sum, Array::scalar_as(0.5, compute))?
    };
    if a.dtype().is_inexact() && m - h > 1 {
        let top_half = slice_axis(&p, -1, SliceArg::range(h as isize, m as isize))?;
        let top = pick(&partition(&top_half, (m - h - 1) as isize, Some(-1))?, m - h - 1)?;
        let top = astype(&top, compute)?;
        med = where_(&isnan(&top)?, &top, &med)?;
    }
    reshape_to(&astype(&med, out_dtype)?, &out_shape)
}
