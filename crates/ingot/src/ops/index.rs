//! Public operations: indexing. `take`, `take_along_axis`, `put_along_axis`, MLX-style
//! `gather` and `scatter` (set, add, prod, max, min), `slice_update` (and its add, prod, max,
//! min forms, in place when the destination is donated), and the data-dependent `nonzero`,
//! `argwhere` and `boolean_mask`, which force evaluation.
//!
//! Index arrays may have any integer dtype; negative indices count from the end of their
//! axis. An index out of bounds is found when the kernel runs (it depends on values) and is
//! an error naming the op, the index, the axis and its size; nothing is written then.
//! Scatters with repeated indices apply the updates in row-major order of the index arrays:
//! `Set` keeps the last write, `Add`/`Prod`/`Max`/`Min` accumulate every one.

use crate::array::{Array, IntoArray};
use crate::dtype::DType;
use crate::op::{Op, ScatterKind};
use crate::ops::{astype, broadcast_to, reshape_to, SliceArg};
use crate::shape::{broadcast_many, checked_size, fmt_shape, normalize_axes, normalize_axis};
use crate::{Error, Result};

/// Indices must be integers: bool would be a mask (see [`boolean_mask`]) and floats are
/// almost always a bug.
fn check_indices(op: &str, idx: &Array) -> Result<()> {
    if !idx.dtype().is_integer() {
        return Err(Error::invalid(
            op,
            format!(
                "indices must be an integer array, got {} of shape {}",
                idx.dtype(),
                fmt_shape(idx.shape())
            ),
        ));
    }
    Ok(())
}

/// The public name of a scatter-like op with `kind`: `scatter`, `scatter_add`, ...
pub(crate) fn kind_name(base: &str, kind: ScatterKind) -> String {
    match kind {
        ScatterKind::Set => base.to_string(),
        ScatterKind::Add => format!("{base}_add"),
        ScatterKind::Prod => format!("{base}_prod"),
        ScatterKind::Max => format!("{base}_max"),
        ScatterKind::Min => format!("{base}_min"),
    }
}

/// Complex numbers have no order, so max/min updates are refused (as `maximum` does).
fn check_kind(op: &str, kind: ScatterKind, dtype: DType) -> Result<()> {
    if matches!(kind, ScatterKind::Max | ScatterKind::Min) && dtype.is_complex() {
        return Err(Error::invalid(
            op,
            format!("not supported for dtype {dtype}"),
        ));
    }
    Ok(())
}

/// `a` flattened to 1-D (for `axis = None`).
fn flat(a: &Array) -> Result<Array> {
    reshape_to(a, &[a.size()])
}

// ---- take ----------------------------------------------------------------------------------

/// Elements of `a` at `indices` along `axis` (NumPy's `take`); `None` takes from the
/// flattened array. The result's shape is `a.shape[..axis] + indices.shape +
/// a.shape[axis+1..]`. Negative indices wrap; an index out of bounds is an error at eval.
pub fn take(a: &Array, indices: &Array, axis: Option<isize>) -> Result<Array> {
    check_indices("take", indices)?;
    let (a, ax) = match axis {
        None => (flat(a)?, 0),
        Some(ax) => (a.clone(), normalize_axis("take", ax, a.ndim())?),
    };
    let mut shape = a.shape()[..ax].to_vec();
    shape.extend_from_slice(indices.shape());
    shape.extend_from_slice(&a.shape()[ax + 1..]);
    checked_size("take", &shape)?;
    let dtype = a.dtype();
    Ok(Array::from_op(
        Op::Take { axis: ax },
        vec![a, indices.clone()],
        shape,
        dtype,
    ))
}

/// Resolves `axis` for the along-axis ops; `None` flattens `a` and wants 1-D indices.
fn along_axis_args(
    op: &str,
    a: &Array,
    indices: &Array,
    axis: Option<isize>,
) -> Result<(Array, usize)> {
    check_indices(op, indices)?;
    let (a, ax) = match axis {
        None => {
            if indices.ndim() != 1 {
                return Err(Error::invalid(
                    op,
                    format!(
                        "with axis None the indices must be 1-D, got shape {}",
                        fmt_shape(indices.shape())
                    ),
                ));
            }
            (flat(a)?, 0)
        }
        Some(ax) => (a.clone(), normalize_axis(op, ax, a.ndim())?),
    };
    if indices.ndim() != a.ndim() {
        return Err(Error::invalid(
            op,
            format!(
                "indices of shape {} must have as many dimensions as the array of shape {}",
                fmt_shape(indices.shape()),
                fmt_shape(a.shape())
            ),
        ));
    }
    Ok((a, ax))
}

/// `out[..., j, ...] = a[..., indices[..., j, ...], ...]` along `axis` (NumPy's
/// `take_along_axis`); `a` and `indices` broadcast against each other on the other axes.
/// `None` works on the flattened array with 1-D indices.
pub fn take_along_axis(a: &Array, indices: &Array, axis: Option<isize>) -> Result<Array> {
    let op = "take_along_axis";
    let (a, ax) = along_axis_args(op, a, indices, axis)?;
    // Broadcast every axis but `axis`, where each side keeps its own length.
    let mut sa = a.shape().to_vec();
    let mut si = indices.shape().to_vec();
    sa[ax] = 1;
    si[ax] = 1;
    let b = broadcast_many(op, &[&sa, &si]).map_err(|_| {
        Error::invalid(
            op,
            format!(
                "indices of shape {} do not broadcast against the array of shape {} outside axis {ax}",
                fmt_shape(indices.shape()),
                fmt_shape(a.shape())
            ),
        )
    })?;
    let mut a_to = b.clone();
    a_to[ax] = a.shape()[ax];
    let mut i_to = b;
    i_to[ax] = indices.shape()[ax];
    checked_size(op, &i_to)?;
    let a2 = broadcast_to(&a, &a_to)?;
    let i2 = broadcast_to(indices, &i_to)?;
    let dtype = a.dtype();
    Ok(Array::from_op(
        Op::TakeAlongAxis { axis: ax },
        vec![a2, i2],
        i_to,
        dtype,
    ))
}

/// A copy of `a` with `values` written at `indices` along `axis` (NumPy's `put_along_axis`,
/// returning a new array). Repeated indices: the last write wins.
pub fn put_along_axis(
    a: &Array,
    indices: &Array,
    values: impl IntoArray,
    axis: Option<isize>,
) -> Result<Array> {
    put_along_axis_kind(a, indices, values, axis, ScatterKind::Set)
}

/// Like [`put_along_axis`], adding the values instead (repeated indices accumulate).
pub fn put_along_axis_add(
    a: &Array,
    indices: &Array,
    values: impl IntoArray,
    axis: Option<isize>,
) -> Result<Array> {
    put_along_axis_kind(a, indices, values, axis, ScatterKind::Add)
}

/// [`put_along_axis`] combining each value with what is there by `kind`. `indices` must
/// broadcast to `a`'s shape outside `axis`; `values` (cast to `a`'s dtype) broadcast to the
/// indices' shape. `None` works on the flattened array with 1-D indices.
pub fn put_along_axis_kind(
    a: &Array,
    indices: &Array,
    values: impl IntoArray,
    axis: Option<isize>,
    kind: ScatterKind,
) -> Result<Array> {
    let name = kind_name("put_along_axis", kind);
    let op = name.as_str();
    let values = values.into_array();
    check_kind(op, kind, a.dtype())?;
    let orig_shape = a.shape().to_vec();
    let (af, ax) = along_axis_args(op, a, indices, axis)?;
    let mut target = af.shape().to_vec();
    target[ax] = indices.shape()[ax];
    let fits = indices.ndim() == target.len()
        && indices
            .shape()
            .iter()
            .zip(&target)
            .all(|(&i, &t)| i == t || i == 1);
    if !fits {
        return Err(Error::invalid(
            op,
            format!(
                "indices of shape {} do not broadcast to the array of shape {} outside axis {ax}",
                fmt_shape(indices.shape()),
                fmt_shape(af.shape())
            ),
        ));
    }
    let vb = broadcast_many(op, &[values.shape(), &target]);
    if vb.as_deref() != Ok(target.as_slice()) {
        return Err(Error::invalid(
            op,
            format!(
                "values of shape {} cannot be broadcast to the indices' shape {}",
                fmt_shape(values.shape()),
                fmt_shape(&target)
            ),
        ));
    }
    if crate::shape::size_of(&target) == 0 {
        return Ok(a.clone());
    }
    let idx = broadcast_to(indices, &target)?;
    let vals = broadcast_to(&astype(&values, af.dtype())?, &target)?;
    let shape = af.shape().to_vec();
    let dtype = af.dtype();
    let out = Array::from_op(
        Op::PutAlongAxis { axis: ax, kind },
        vec![af, idx, vals],
        shape,
        dtype,
    );
    if axis.is_none() {
        reshape_to(&out, &orig_shape)
    } else {
        Ok(out)
    }
}

// ---- gather / scatter ----------------------------------------------------------------------

/// Checks index arrays against `axes` and broadcasts them together.
fn index_list(
    op: &str,
    a: &Array,
    indices: &[Array],
    axes: &[isize],
) -> Result<(Vec<Array>, Vec<usize>, Vec<usize>)> {
    if indices.len() != axes.len() {
        return Err(Error::invalid(
            op,
            format!(
                "got {} index arrays for {} axes {axes:?}",
                indices.len(),
                axes.len()
            ),
        ));
    }
    let axes = normalize_axes(op, axes, a.ndim())?;
    for i in indices {
        check_indices(op, i)?;
    }
    let shapes: Vec<&[usize]> = indices.iter().map(|i| i.shape()).collect();
    let bshape = broadcast_many(op, &shapes)?;
    let idx = indices
        .iter()
        .map(|i| broadcast_to(i, &bshape))
        .collect::<Result<Vec<_>>>()?;
    Ok((idx, bshape, axes))
}

/// Checks that a slice of `sizes` fits in `a`.
fn check_slice_sizes(op: &str, what: &str, a: &Array, sizes: &[usize]) -> Result<()> {
    for (d, (&s, &n)) in sizes.iter().zip(a.shape()).enumerate() {
        if s > n {
            return Err(Error::invalid(
                op,
                format!(
                    "{what} {} is larger than the array of shape {} on axis {d}",
                    fmt_shape(sizes),
                    fmt_shape(a.shape())
                ),
            ));
        }
    }
    Ok(())
}

/// MLX-style gather: the index arrays (broadcast together to shape `B`) pick, along `axes`,
/// the start of a slice of `slice_sizes` (one size per axis of `a`; other axes start at 0).
/// The result has shape `B + slice_sizes`. A slice running past the end of an axis is an
/// error at eval.
pub fn gather(
    a: &Array,
    indices: &[Array],
    axes: &[isize],
    slice_sizes: &[usize],
) -> Result<Array> {
    let op = "gather";
    let (idx, bshape, axes) = index_list(op, a, indices, axes)?;
    if slice_sizes.len() != a.ndim() {
        return Err(Error::invalid(
            op,
            format!(
                "slice_sizes {slice_sizes:?} must have one entry per axis of the array of shape {}",
                fmt_shape(a.shape())
            ),
        ));
    }
    check_slice_sizes(op, "slice_sizes", a, slice_sizes)?;
    let mut shape = bshape;
    shape.extend_from_slice(slice_sizes);
    checked_size(op, &shape)?;
    let mut inputs = vec![a.clone()];
    inputs.extend(idx);
    Ok(Array::from_op(
        Op::Gather {
            axes,
            slice_sizes: slice_sizes.to_vec(),
        },
        inputs,
        shape,
        a.dtype(),
    ))
}

/// MLX-style scatter: `updates` has shape `B + S` where `B` is the broadcast shape of the
/// index arrays and `S` (one size per axis of `a`) the slice each index tuple writes, starting
/// at the indices along `axes` and at 0 elsewhere. Updates are cast to `a`'s dtype and their
/// leading dims may broadcast to `B`. Repeated indices: the last write wins.
pub fn scatter(a: &Array, indices: &[Array], updates: &Array, axes: &[isize]) -> Result<Array> {
    scatter_kind(a, indices, updates, axes, ScatterKind::Set)
}
/// [`scatter`] adding the updates; repeated indices accumulate (NumPy's `np.add.at`).
pub fn scatter_add(a: &Array, indices: &[Array], updates: &Array, axes: &[isize]) -> Result<Array> {
    scatter_kind(a, indices, updates, axes, ScatterKind::Add)
}
/// [`scatter`] multiplying by the updates.
pub fn scatter_prod(
    a: &Array,
    indices: &[Array],
    updates: &Array,
    axes: &[isize],
) -> Result<Array> {
    scatter_kind(a, indices, updates, axes, ScatterKind::Prod)
}
/// [`scatter`] keeping the maximum (NaN wins, as `maximum`).
pub fn scatter_max(a: &Array, indices: &[Array], updates: &Array, axes: &[isize]) -> Result<Array> {
    scatter_kind(a, indices, updates, axes, ScatterKind::Max)
}
/// [`scatter`] keeping the minimum (NaN wins, as `minimum`).
pub fn scatter_min(a: &Array, indices: &[Array], updates: &Array, axes: &[isize]) -> Result<Array> {
    scatter_kind(a, indices, updates, axes, ScatterKind::Min)
}

/// [`scatter`] with the combining rule `kind`.
pub fn scatter_kind(
    a: &Array,
    indices: &[Array],
    updates: &Array,
    axes: &[isize],
    kind: ScatterKind,
) -> Result<Array> {
    let name = kind_name("scatter", kind);
    let op = name.as_str();
    check_kind(op, kind, a.dtype())?;
    let (idx, bshape, axes) = index_list(op, a, indices, axes)?;
    let k = bshape.len();
    if updates.ndim() != k + a.ndim() {
        return Err(Error::invalid(
            op,
            format!(
                "updates of shape {} must have {k} index dims plus {} slice dims (index shape {}, array shape {})",
                fmt_shape(updates.shape()),
                a.ndim(),
                fmt_shape(&bshape),
                fmt_shape(a.shape())
            ),
        ));
    }
    let slice = &updates.shape()[k..];
    check_slice_sizes(op, "update slice", a, slice)?;
    let lead = &updates.shape()[..k];
    if !lead.iter().zip(&bshape).all(|(&u, &b)| u == b || u == 1) {
        return Err(Error::invalid(
            op,
            format!(
                "updates of shape {} do not match the index shape {}",
                fmt_shape(updates.shape()),
                fmt_shape(&bshape)
            ),
        ));
    }
    let mut ushape = bshape;
    ushape.extend_from_slice(slice);
    if crate::shape::size_of(&ushape) == 0 {
        return Ok(a.clone());
    }
    let upd = broadcast_to(&astype(updates, a.dtype())?, &ushape)?;
    let mut inputs = vec![a.clone()];
    inputs.extend(idx);
    inputs.push(upd);
    Ok(Array::from_op(
        Op::Scatter { axes, kind },
        inputs,
        a.shape().to_vec(),
        a.dtype(),
    ))
}

// ---- slice_update --------------------------------------------------------------------------

/// A copy of `a` with `update` (cast to `a`'s dtype, broadcast to the window) written into
/// the window `a[args]` (Python slices, one per leading axis). In place, without a copy,
/// when `a`'s buffer is held by nothing else at eval: `cache = slice_update(&cache, ..)`
/// that drops the old handle appends to a KV cache at the cost of the update alone.
pub fn slice_update(a: &Array, update: impl IntoArray, args: &[SliceArg]) -> Result<Array> {
    slice_update_kind(a, update, args, ScatterKind::Set)
}
/// [`slice_update`] adding the update to the window.
pub fn slice_update_add(a: &Array, update: impl IntoArray, args: &[SliceArg]) -> Result<Array> {
    slice_update_kind(a, update, args, ScatterKind::Add)
}
/// [`slice_update`] multiplying the window by the update.
pub fn slice_update_prod(a: &Array, update: impl IntoArray, args: &[SliceArg]) -> Result<Array> {
    slice_update_kind(a, update, args, ScatterKind::Prod)
}
/// [`slice_update`] keeping the elementwise maximum in the window.
pub fn slice_update_max(a: &Array, update: impl IntoArray, args: &[SliceArg]) -> Result<Array> {
    slice_update_kind(a, update, args, ScatterKind::Max)
}
/// [`slice_update`] keeping the elementwise minimum in the window.
pub fn slice_update_min(a: &Array, update: impl IntoArray, args: &[SliceArg]) -> Result<Array> {
    slice_update_kind(a, update, args, ScatterKind::Min)
}

/// [`slice_update`] with the combining rule `kind`.
pub fn slice_update_kind(
    a: &Array,
    update: impl IntoArray,
    args: &[SliceArg],
    kind: ScatterKind,
) -> Result<Array> {
    let name = kind_name("slice_update", kind);
    let op = name.as_str();
    let update = update.into_array();
    check_kind(op, kind, a.dtype())?;
    if args.len() > a.ndim() {
        return Err(Error::invalid(
            op,
            format!(
                "{} slice arguments for an array of shape {}",
                args.len(),
                fmt_shape(a.shape())
            ),
        ));
    }
    let mut start = Vec::with_capacity(a.ndim());
    let mut step = Vec::with_capacity(a.ndim());
    let mut window = Vec::with_capacity(a.ndim());
    for (i, &n) in a.shape().iter().enumerate() {
        let arg = args.get(i).copied().unwrap_or(SliceArg::ALL);
        let (s, len) = arg.resolve(op, n)?;
        start.push(s);
        step.push(arg.step);
        window.push(len);
    }
    let b = broadcast_many(op, &[update.shape(), &window]);
    if b.as_deref() != Ok(window.as_slice()) {
        return Err(Error::invalid(
            op,
            format!(
                "update of shape {} cannot be broadcast to the window {} of the array of shape {}",
                fmt_shape(update.shape()),
                fmt_shape(&window),
                fmt_shape(a.shape())
            ),
        ));
    }
    if crate::shape::size_of(&window) == 0 {
        return Ok(a.clone());
    }
    let upd = broadcast_to(&astype(&update, a.dtype())?, &window)?;
    Ok(Array::from_op(
        Op::SliceUpdate { start, step, kind },
        vec![a.clone(), upd],
        a.shape().to_vec(),
        a.dtype(),
    ))
}

// ---- data-dependent shapes: these evaluate their input -------------------------------------

/// Row-major coordinates of the nonzero elements of `a`, one int64 array per axis (NumPy's
/// `nonzero`). The output's length depends on the values, so this **evaluates `a` now**.
/// NaN counts as nonzero, -0.0 as zero. 0-d arrays are an error, as in NumPy.
pub fn nonzero(a: &Array) -> Result<Vec<Array>> {
    if a.ndim() == 0 {
        return Err(Error::invalid(
            "nonzero",
            "not defined for 0-d arrays; use atleast_1d first",
        ));
    }
    let flat = crate::backend::cpu::index::nonzero_flat(a)?;
    let n = flat.len();
    let strides = crate::shape::contiguous_strides(a.shape());
    (0..a.ndim())
        .map(|d| {
            let (s, len) = (strides[d] as i64, a.shape()[d] as i64);
            let v: Vec<i64> = flat.iter().map(|&f| (f / s) % len).collect();
            Array::from_vec(v, &[n])
        })
        .collect()
}

/// The coordinates of the nonzero elements as an int64 array of shape `(count, ndim)` (NumPy's
/// `argwhere`). **Evaluates `a` now**, as the count depends on the values. A 0-d input gives
/// shape `(1, 0)` or `(0, 0)`.
pub fn argwhere(a: &Array) -> Result<Array> {
    let flat = crate::backend::cpu::index::nonzero_flat(a)?;
    let (n, nd) = (flat.len(), a.ndim());
    let strides = crate::shape::contiguous_strides(a.shape());
    let mut v = Vec::with_capacity(n * nd);
    for &f in &flat {
        for d in 0..nd {
            v.push((f / strides[d] as i64) % a.shape()[d] as i64);
        }
    }
    Array::from_vec(v, &[n, nd])
}

/// NumPy's `a[mask]`: `mask` is bool with the shape of `a`'s leading axes; the result has
/// shape `(count,) + a.shape[mask.ndim..]`, elements in row-major order. **Evaluates `mask`
/// now** (the result's length depends on it); the gather from `a` stays lazy.
pub fn boolean_mask(a: &Array, mask: &Array) -> Result<Array> {
    let op = "boolean_mask";
    if mask.dtype() != DType::Bool {
        return Err(Error::invalid(
            op,
            format!(
                "mask must be bool, got {} of shape {}",
                mask.dtype(),
                fmt_shape(mask.shape())
            ),
        ));
    }
    let k = mask.ndim();
    if k > a.ndim() || mask.shape() != &a.shape()[..k] {
        return Err(Error::invalid(
            op,
            format!(
                "mask of shape {} does not match the leading axes of the array of shape {}",
                fmt_shape(mask.shape()),
                fmt_shape(a.shape())
            ),
        ));
    }
    let flat = crate::backend::cpu::index::nonzero_flat(mask)?;
    let n = flat.len();
    let mut lead = vec![mask.size()];
    lead.extend_from_slice(&a.shape()[k..]);
    let a2 = reshape_to(a, &lead)?;
    take(&a2, &Array::from_vec(flat, &[n])?, Some(0))
}
