//! Shape operations: concatenate, stack, split, tile, repeat, pad, roll, diag, tril/triu,
//! meshgrid. Only `concatenate` and `pad` are primitives; the rest are built
//! from them and from the views in `ops/view.rs`.

use crate::array::Array;
use crate::dtype::{result_type, DType, Scalar};
use crate::op::Op;
pub use crate::op::PadMode;
use crate::ops::{
    astype, broadcast_arrays, broadcast_to, diagonal, expand_dims, reshape_to, slice, slice_axis,
    tri, where_, zeros, SliceArg,
};
use crate::shape::{checked_size, fmt_shape, normalize_axis};
use crate::{Error, Result};

/// Joins arrays along an existing axis (`None`: flattens them first). Dtypes are promoted;
/// every dim but `axis` must match.
pub fn concatenate(arrays: &[Array], axis: Option<isize>) -> Result<Array> {
    const OP: &str = "concatenate";
    if arrays.is_empty() {
        return Err(Error::invalid(OP, "need at least one array to concatenate"));
    }
    let flat: Vec<Array>;
    let (arrays, axis) = match axis {
        Some(ax) => (arrays, ax),
        None => {
            flat = arrays
                .iter()
                .map(|a| reshape_to(a, &[a.size()]))
                .collect::<Result<_>>()?;
            (&flat[..], 0)
        }
    };
    let first = &arrays[0];
    let nd = first.ndim();
    if nd == 0 {
        return Err(Error::invalid(
            OP,
            "zero-dimensional arrays cannot be concatenated",
        ));
    }
    let ax = normalize_axis(OP, axis, nd)?;
    let mut shape = first.shape().to_vec();
    for (i, a) in arrays.iter().enumerate().skip(1) {
        if a.ndim() != nd {
            return Err(Error::invalid(
                OP,
                format!(
                    "all the input arrays must have the same number of dimensions, but the array at index 0 has shape {} and the array at index {i} has shape {}",
                    fmt_shape(first.shape()),
                    fmt_shape(a.shape())
                ),
            ));
        }
        for d in 0..nd {
            if d != ax && a.shape()[d] != first.shape()[d] {
                return Err(Error::invalid(
                    OP,
                    format!(
                        "all the input array dimensions except for the concatenation axis must match exactly, but along dimension {d}, the array at index 0 has shape {} and the array at index {i} has shape {}",
                        fmt_shape(first.shape()),
                        fmt_shape(a.shape())
                    ),
                ));
            }
        }
        shape[ax] = shape[ax]
            .checked_add(a.shape()[ax])
            .ok_or_else(|| Error::invalid(OP, format!("axis {ax} of the result is too long")))?;
    }
    checked_size(OP, &shape)?;
    let infos: Vec<_> = arrays.iter().map(|a| a.type_info()).collect();
    let dtype = result_type(&infos);
    // Empty inputs contribute nothing: leave them out of the node.
    let mut inputs: Vec<Array> = arrays
        .iter()
        .filter(|a| a.size() > 0)
        .map(|a| astype(a, dtype))
        .collect::<Result<_>>()?;
    if inputs.is_empty() {
        inputs.push(astype(first, dtype)?);
    }
    if inputs.len() == 1 && inputs[0].shape() == shape.as_slice() {
        return Ok(inputs.pop().unwrap());
    }
    Ok(Array::from_op(
        Op::Concatenate { axis: ax },
        inputs,
        shape,
        dtype,
    ))
}

/// A row-major copy of `a` made by the concatenate kernel (a one-input concatenate): it
/// copies whole rows and runs on all threads, which materializes broadcast views fast.
fn materialize(a: &Array) -> Result<Array> {
    if a.ndim() == 0 {
        return crate::ops::copy(a);
    }
    Ok(Array::from_op(
        Op::Concatenate { axis: 0 },
        vec![a.clone()],
        a.shape().to_vec(),
        a.dtype(),
    ))
}

/// Joins arrays of one shape along a new axis.
pub fn stack(arrays: &[Array], axis: isize) -> Result<Array> {
    const OP: &str = "stack";
    if arrays.is_empty() {
        return Err(Error::invalid(OP, "need at least one array to stack"));
    }
    let first = arrays[0].shape();
    for (i, a) in arrays.iter().enumerate().skip(1) {
        if a.shape() != first {
            return Err(Error::invalid(
                OP,
                format!(
                    "all input arrays must have the same shape, but the array at index 0 has shape {} and the array at index {i} has shape {}",
                    fmt_shape(first),
                    fmt_shape(a.shape())
                ),
            ));
        }
    }
    let ax = normalize_axis(OP, axis, first.len() + 1)? as isize;
    let expanded: Vec<Array> = arrays
        .iter()
        .map(|a| expand_dims(a, &[ax]))
        .collect::<Result<_>>()?;
    concatenate(&expanded, Some(ax))
}

/// How to split: into `n` equal sections, or at the given indices along the axis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SplitSpec {
    Sections(usize),
    Indices(Vec<isize>),
}

/// Splits into views along `axis`; `Sections(n)` must divide the axis (NumPy's `split`).
pub fn split(a: &Array, spec: SplitSpec, axis: isize) -> Result<Vec<Array>> {
    split_impl("split", a, spec, axis, true)
}

/// Like [`split`], but `Sections(n)` need not divide the axis: the first `len % n`
/// sections get one element more (NumPy's `array_split`).
pub fn array_split(a: &Array, spec: SplitSpec, axis: isize) -> Result<Vec<Array>> {
    split_impl("array_split", a, spec, axis, false)
}

fn split_impl(
    op: &str,
    a: &Array,
    spec: SplitSpec,
    axis: isize,
    equal: bool,
) -> Result<Vec<Array>> {
    let ax = normalize_axis(op, axis, a.ndim())?;
    let n = a.shape()[ax];
    // Boundaries as Python slice bounds; the first and last are None (the axis ends).
    let bounds: Vec<Option<isize>> = match spec {
        SplitSpec::Sections(k) => {
            if k == 0 {
                return Err(Error::invalid(
                    op,
                    "number of sections must be larger than 0",
                ));
            }
            if equal && n % k != 0 {
                return Err(Error::invalid(
                    op,
                    format!(
                        "array split does not result in an equal division: axis {ax} of shape {} into {k} sections",
                        fmt_shape(a.shape())
                    ),
                ));
            }
            let (each, extra) = (n / k, n % k);
            let mut b = vec![Some(0isize)];
            let mut at = 0usize;
            for i in 0..k {
                at += each + usize::from(i < extra);
                b.push(Some(at as isize));
            }
            b
        }
        SplitSpec::Indices(idx) => {
            let mut b = vec![None];
            b.extend(idx.into_iter().map(Some));
            b.push(None);
            b
        }
    };
    bounds
        .windows(2)
        .map(|w| slice_axis(a, ax as isize, SliceArg::new(w[0], w[1], 1)))
        .collect()
}

/// Repeats the whole array `reps[i]` times along each axis (NumPy's `tile`: the shorter
/// of `reps` and the shape is padded with leading ones).
pub fn tile(a: &Array, reps: &[usize]) -> Result<Array> {
    const OP: &str = "tile";
    let d = reps.len().max(a.ndim());
    let mut shape = vec![1usize; d - a.ndim()];
    shape.extend_from_slice(a.shape());
    let mut r = vec![1usize; d - reps.len()];
    r.extend_from_slice(reps);
    let out: Vec<usize> = shape
        .iter()
        .zip(&r)
        .map(|(&n, &k)| n.checked_mul(k))
        .collect::<Option<_>>()
        .ok_or_else(|| {
            Error::invalid(
                OP,
                format!("reps {reps:?} on shape {} overflow", fmt_shape(a.shape())),
            )
        })?;
    checked_size(OP, &out)?;
    if r.iter().all(|&k| k == 1) {
        return reshape_to(a, &out);
    }
    // (n0, n1, ..) -> (1, n0, 1, n1, ..) -> broadcast (r0, n0, r1, n1, ..) -> one copy.
    let inter: Vec<usize> = shape.iter().flat_map(|&n| [1, n]).collect();
    let wide: Vec<usize> = shape.iter().zip(&r).flat_map(|(&n, &k)| [k, n]).collect();
    let b = broadcast_to(&reshape_to(a, &inter)?, &wide)?;
    reshape_to(&materialize(&b)?, &out)
}

/// Repeats each element along `axis` (`None`: of the flattened array): `repeats` is one
/// count for all elements or one count per element along the axis.
pub fn repeat(a: &Array, repeats: &[usize], axis: Option<isize>) -> Result<Array> {
    const OP: &str = "repeat";
    let (a, ax) = match axis {
        None => (reshape_to(a, &[a.size()])?, 0usize),
        Some(ax) => (a.clone(), normalize_axis(OP, ax, a.ndim())?),
    };
    let n = a.shape()[ax];
    let uniform = match repeats {
        [k] => Some(*k),
        _ if repeats.len() == n => {
            if repeats.iter().all(|&k| k == repeats[0]) && n > 0 {
                Some(repeats[0])
            } else {
                None
            }
        }
        _ => {
            return Err(Error::invalid(
                OP,
                format!(
                    "repeats has {} entries for axis {ax} of length {n} in shape {}: need 1 or {n}",
                    repeats.len(),
                    fmt_shape(a.shape())
                ),
            ))
        }
    };
    let mut out = a.shape().to_vec();
    out[ax] = match uniform {
        Some(k) => n.checked_mul(k),
        None => repeats.iter().try_fold(0usize, |s, &k| s.checked_add(k)),
    }
    .ok_or_else(|| Error::invalid(OP, "the result is too large"))?;
    checked_size(OP, &out)?;
    if let Some(k) = uniform {
        if k == 1 {
            return Ok(a);
        }
        // Insert a size-1 axis after `ax`, broadcast it to k, copy once, merge the two.
        let e = expand_dims(&a, &[ax as isize + 1])?;
        let mut wide = e.shape().to_vec();
        wide[ax + 1] = k;
        let b = broadcast_to(&e, &wide)?;
        return reshape_to(&materialize(&b)?, &out);
    }
    // Per-element counts: one piece per run of ones (a plain slice) or per element with a
    // larger count (a broadcast of it), then a single concatenate copies everything once.
    let mut pieces = Vec::new();
    let mut i = 0usize;
    while i < n {
        let k = repeats[i];
        if k == 1 {
            let j = (i..n).find(|&j| repeats[j] != 1).unwrap_or(n);
            pieces.push(slice_axis(
                &a,
                ax as isize,
                SliceArg::range(i as isize, j as isize),
            )?);
            i = j;
            continue;
        }
        if k > 1 {
            let s = slice_axis(&a, ax as isize, SliceArg::range(i as isize, i as isize + 1))?;
            let mut to = s.shape().to_vec();
            to[ax] = k;
            pieces.push(broadcast_to(&s, &to)?);
        }
        i += 1;
    }
    if pieces.is_empty() {
        return slice_axis(&a, ax as isize, SliceArg::range(0, 0));
    }
    concatenate(&pieces, Some(ax as isize))
}

/// Pads with `pad_width[i] = (before, after)` per axis (one pair: every axis). `Constant`
/// fills with `constant_value` (cast to the array's dtype); `Edge` repeats the border;
/// `Reflect` mirrors without and `Symmetric` with the border, reflecting again where the
/// pad is wider than the axis, as NumPy does.
pub fn pad(
    a: &Array,
    pad_width: &[(usize, usize)],
    mode: PadMode,
    constant_value: impl Into<Scalar>,
) -> Result<Array> {
    const OP: &str = "pad";
    let nd = a.ndim();
    let pairs: Vec<(usize, usize)> = if pad_width.len() == nd {
        pad_width.to_vec()
    } else if pad_width.len() == 1 {
        vec![pad_width[0]; nd]
    } else {
        return Err(Error::invalid(
            OP,
            format!(
                "pad_width has {} pairs for an array of shape {}: need 1 or {nd}",
                pad_width.len(),
                fmt_shape(a.shape())
            ),
        ));
    };
    if pairs.iter().all(|&(l, h)| l == 0 && h == 0) {
        return Ok(a.clone());
    }
    let mut shape = Vec::with_capacity(nd);
    for (d, (&n, &(l, h))) in a.shape().iter().zip(&pairs).enumerate() {
        if n == 0 && (l > 0 || h > 0) && mode != PadMode::Constant {
            return Err(Error::invalid(
                OP,
                format!(
                    "can't extend empty axis {d} of shape {} using mode {mode:?}; only Constant can",
                    fmt_shape(a.shape())
                ),
            ));
        }
        shape.push(
            n.checked_add(l)
                .and_then(|x| x.checked_add(h))
                .ok_or_else(|| Error::invalid(OP, format!("pad width on axis {d} is too large")))?,
        );
    }
    checked_size(OP, &shape)?;
    let value = if mode == PadMode::Constant {
        let v: Scalar = constant_value.into();
        v.check_fits(a.dtype())
            .map_err(|m| Error::invalid(OP, format!("constant_value: {m}")))?;
        v
    } else {
        // Unused: a fixed value keeps equal pads equal ops (CSE, compile caches).
        Scalar::Int(0)
    };
    Ok(Array::from_op(
        Op::Pad {
            low: pairs.iter().map(|p| p.0).collect(),
            high: pairs.iter().map(|p| p.1).collect(),
            mode,
            value,
        },
        vec![a.clone()],
        shape,
        a.dtype(),
    ))
}

/// Rolls elements along axes by `shift` (elements leaving one end come back at the other).
/// `axis = None` rolls the flattened array. `shift` and `axis` pair up (one of them may
/// have a single entry); shifts on the same axis add up.
pub fn roll(a: &Array, shift: &[isize], axis: Option<&[isize]>) -> Result<Array> {
    const OP: &str = "roll";
    let Some(axes) = axis else {
        let total: isize = shift.iter().fold(0isize, |s, &x| s.wrapping_add(x));
        let flat = reshape_to(a, &[a.size()])?;
        return reshape_to(&roll(&flat, &[total], Some(&[0]))?, a.shape());
    };
    let m = shift.len().max(axes.len());
    if (shift.len() != m && shift.len() != 1) || (axes.len() != m && axes.len() != 1) {
        return Err(Error::invalid(
            OP,
            format!(
                "shift has {} entries and axis {}: they must match or one must have a single entry",
                shift.len(),
                axes.len()
            ),
        ));
    }
    let mut per_axis = vec![0i128; a.ndim()];
    for i in 0..m {
        let s = if shift.len() == 1 { shift[0] } else { shift[i] };
        let ax = if axes.len() == 1 { axes[0] } else { axes[i] };
        per_axis[normalize_axis(OP, ax, a.ndim())?] += s as i128;
    }
    let mut out = a.clone();
    for (d, &s) in per_axis.iter().enumerate() {
        let n = a.shape()[d];
        if n == 0 {
            continue;
        }
        let s = s.rem_euclid(n as i128) as isize;
        if s == 0 {
            continue;
        }
        let n = n as isize;
        let tail = slice_axis(&out, d as isize, SliceArg::range(n - s, n))?;
        let head = slice_axis(&out, d as isize, SliceArg::range(0, n - s))?;
        out = concatenate(&[tail, head], Some(d as isize))?;
    }
    Ok(out)
}

/// Sum along the `offset`-th diagonal of the (`axis1`, `axis2`) planes, as NumPy's `trace`.
/// Bool and narrow integers sum as int64, like `sum`.
pub fn trace(a: &Array, offset: isize, axis1: isize, axis2: isize) -> Result<Array> {
    if a.ndim() < 2 {
        return Err(Error::invalid(
            "trace",
            format!("needs at least 2 dims, got shape {}", fmt_shape(a.shape())),
        ));
    }
    let d = crate::ops::diagonal(a, offset, axis1, axis2)
        .map_err(|e| Error::invalid("trace", e.to_string()))?;
    crate::ops::sum(&d, Some(&[-1]), false)
}

/// 1-D input: a square 2-D array with it on the `k`-th diagonal. 2-D input: its `k`-th
/// diagonal (a view).
pub fn diag(a: &Array, k: isize) -> Result<Array> {
    const OP: &str = "diag";
    match a.ndim() {
        2 => diagonal(a, k, 0, 1),
        1 => {
            let n = a.shape()[0];
            let m = n
                .checked_add(k.unsigned_abs())
                .ok_or_else(|| Error::invalid(OP, format!("k = {k} is too large")))?;
            checked_size(OP, &[m, m])?;
            // Rows [v_i, 0, .., 0] of width m + 1, flattened, put v_i exactly m + 1 apart:
            // the step between diagonal elements of an (m, m) array. Shifting the start by
            // k columns (k > 0) or |k| rows less |k| (k < 0) selects the k-th diagonal.
            let (rows_lo, col_lo, start) = if k >= 0 {
                (0, k as usize, 0)
            } else {
                (k.unsigned_abs(), 0, k.unsigned_abs())
            };
            let need = (start + m * m).div_ceil(m + 1);
            let rows_hi = need.saturating_sub(n + rows_lo);
            let col = reshape_to(a, &[n, 1])?;
            let p = pad(
                &col,
                &[(rows_lo, rows_hi), (col_lo, m - col_lo)],
                PadMode::Constant,
                0i64,
            )?;
            let flat = reshape_to(&p, &[p.size()])?;
            let s = slice(
                &flat,
                &[SliceArg::range(start as isize, (start + m * m) as isize)],
            )?;
            reshape_to(&s, &[m, m])
        }
        _ => Err(Error::invalid(
            OP,
            format!(
                "input must be 1-d or 2-d, got shape {}",
                fmt_shape(a.shape())
            ),
        )),
    }
}

/// The lower triangle of the last two axes: elements above the `k`-th diagonal are zeroed.
/// A 1-D input of length n is broadcast to (n, n), as NumPy does.
pub fn tril(a: &Array, k: isize) -> Result<Array> {
    let mask = tri_mask("tril", a, k)?;
    where_(&mask, a, &zeros(&[], a.dtype())?)
}

/// The upper triangle of the last two axes: elements below the `k`-th diagonal are zeroed.
pub fn triu(a: &Array, k: isize) -> Result<Array> {
    let mask = tri_mask("triu", a, k.saturating_sub(1))?;
    where_(&mask, &zeros(&[], a.dtype())?, a)
}

/// True at and below the `k`-th diagonal of the last two dims of `a`.
fn tri_mask(op: &str, a: &Array, k: isize) -> Result<Array> {
    let (n, m) = match a.shape() {
        [] => {
            return Err(Error::invalid(
                op,
                "input must have at least 1 dimension, got shape ()",
            ))
        }
        [m] => (*m, *m),
        [.., n, m] => (*n, *m),
    };
    tri(n, Some(m), k, DType::Bool)
}

/// Coordinate arrays from 1-D coordinate vectors (any input is flattened). `indexing` is
/// "xy" (Cartesian: the first two outputs' axes swapped) or "ij" (matrix). `sparse` returns
/// arrays with size-1 axes that broadcast together instead of full grids.
pub fn meshgrid(arrays: &[Array], indexing: &str, sparse: bool) -> Result<Vec<Array>> {
    const OP: &str = "meshgrid";
    let xy = match indexing {
        "xy" => true,
        "ij" => false,
        _ => {
            return Err(Error::invalid(
                OP,
                format!("indexing must be 'xy' or 'ij', got '{indexing}'"),
            ))
        }
    };
    let nd = arrays.len();
    let mut out = Vec::with_capacity(nd);
    for (i, x) in arrays.iter().enumerate() {
        let mut shape = vec![1usize; nd];
        shape[i] = x.size();
        if xy && nd > 1 && i < 2 {
            shape.swap(0, 1);
        }
        out.push(reshape_to(x, &shape)?);
    }
    if sparse {
        Ok(out)
    } else {
        broadcast_arrays(&out)
    }
}
