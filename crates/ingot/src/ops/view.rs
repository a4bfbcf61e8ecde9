//! Operations that are views (no copy where the layout allows): reshape, transpose,
//! broadcast, expand_dims, squeeze, slicing, flip, diagonal, dtype views.

use crate::array::Array;
use crate::dtype::DType;
use crate::op::Op;
use crate::shape::{broadcast_shapes, fmt_shape, infer_reshape, normalize_axes, normalize_axis};
use crate::{Error, Result};

/// Reshape; one entry may be -1. A view when the strides allow, else a copy.
pub fn reshape(a: &Array, shape: &[isize]) -> Result<Array> {
    let to = infer_reshape("reshape", a.shape(), shape)?;
    reshape_to(a, &to)
}

/// Reshape to a fully known shape.
pub fn reshape_to(a: &Array, to: &[usize]) -> Result<Array> {
    if a.shape() == to {
        return Ok(a.clone());
    }
    if crate::shape::size_of(to) != a.size() {
        return Err(Error::invalid(
            "reshape",
            format!(
                "cannot reshape array of shape {} into shape {}",
                fmt_shape(a.shape()),
                fmt_shape(to)
            ),
        ));
    }
    Ok(Array::from_op(
        Op::Reshape,
        vec![a.clone()],
        to.to_vec(),
        a.dtype(),
    ))
}

/// Flattens axes `start..=end` into one (NumPy's `flatten` is `flatten(a, 0, -1)`).
pub fn flatten(a: &Array, start: isize, end: isize) -> Result<Array> {
    if a.ndim() == 0 {
        // A scalar flattens as if it were one-dimensional: only axes 0 and -1 exist.
        normalize_axis("flatten", start, 1)?;
        normalize_axis("flatten", end, 1)?;
        return reshape_to(a, &[1]);
    }
    let s = normalize_axis("flatten", start, a.ndim())?;
    let e = normalize_axis("flatten", end, a.ndim())?;
    if s > e {
        return Err(Error::invalid(
            "flatten",
            format!("start axis {start} is after end axis {end}"),
        ));
    }
    let mut to: Vec<usize> = a.shape()[..s].to_vec();
    to.push(a.shape()[s..=e].iter().product());
    to.extend_from_slice(&a.shape()[e + 1..]);
    reshape_to(a, &to)
}

/// Permutes axes; `None` reverses them.
pub fn transpose(a: &Array, axes: Option<&[isize]>) -> Result<Array> {
    let perm: Vec<usize> = match axes {
        None => (0..a.ndim()).rev().collect(),
        Some(ax) => {
            if ax.len() != a.ndim() {
                return Err(Error::invalid(
                    "transpose",
                    format!(
                        "axes {ax:?} don't match array of shape {}",
                        fmt_shape(a.shape())
                    ),
                ));
            }
            normalize_axes("transpose", ax, a.ndim())?
        }
    };
    if perm.iter().enumerate().all(|(i, &p)| i == p) {
        return Ok(a.clone());
    }
    let shape = perm.iter().map(|&p| a.shape()[p]).collect();
    Ok(Array::from_op(
        Op::Transpose { perm },
        vec![a.clone()],
        shape,
        a.dtype(),
    ))
}

pub fn swapaxes(a: &Array, axis1: isize, axis2: isize) -> Result<Array> {
    let i = normalize_axis("swapaxes", axis1, a.ndim())?;
    let j = normalize_axis("swapaxes", axis2, a.ndim())?;
    let mut perm: Vec<isize> = (0..a.ndim() as isize).collect();
    perm.swap(i, j);
    transpose(a, Some(&perm))
}

pub fn moveaxis(a: &Array, source: isize, destination: isize) -> Result<Array> {
    let s = normalize_axis("moveaxis", source, a.ndim())?;
    let d = normalize_axis("moveaxis", destination, a.ndim())?;
    let mut perm: Vec<isize> = (0..a.ndim() as isize)
        .filter(|&i| i != s as isize)
        .collect();
    perm.insert(d, s as isize);
    transpose(a, Some(&perm))
}

/// Broadcasts to `shape` (NumPy rules) as a view with zero strides.
pub fn broadcast_to(a: &Array, shape: &[usize]) -> Result<Array> {
    if a.shape() == shape {
        return Ok(a.clone());
    }
    let b = broadcast_shapes("broadcast_to", a.shape(), shape)?;
    if b != shape {
        return Err(Error::invalid(
            "broadcast_to",
            format!(
                "cannot broadcast array of shape {} to {}",
                fmt_shape(a.shape()),
                fmt_shape(shape)
            ),
        ));
    }
    Ok(Array::from_op(
        Op::Broadcast,
        vec![a.clone()],
        shape.to_vec(),
        a.dtype(),
    ))
}

pub fn broadcast_arrays(xs: &[Array]) -> Result<Vec<Array>> {
    let shapes: Vec<&[usize]> = xs.iter().map(|x| x.shape()).collect();
    let shape = crate::shape::broadcast_many("broadcast_arrays", &shapes)?;
    xs.iter().map(|x| broadcast_to(x, &shape)).collect()
}

/// Inserts size-1 axes at `axes` (positions in the result).
pub fn expand_dims(a: &Array, axes: &[isize]) -> Result<Array> {
    let nd = a.ndim() + axes.len();
    let ax = normalize_axes("expand_dims", axes, nd)?;
    let mut shape = Vec::with_capacity(nd);
    let mut it = a.shape().iter();
    for i in 0..nd {
        if ax.contains(&i) {
            shape.push(1);
        } else {
            shape.push(*it.next().unwrap());
        }
    }
    reshape_to(a, &shape)
}

/// Removes size-1 axes: the given ones (an error if one is not size 1), or all.
pub fn squeeze(a: &Array, axes: Option<&[isize]>) -> Result<Array> {
    let ax: Vec<usize> = match axes {
        Some(ax) => {
            let ax = normalize_axes("squeeze", ax, a.ndim())?;
            for &i in &ax {
                if a.shape()[i] != 1 {
                    return Err(Error::invalid(
                        "squeeze",
                        format!(
                            "cannot squeeze axis {i} of size {} in shape {}",
                            a.shape()[i],
                            fmt_shape(a.shape())
                        ),
                    ));
                }
            }
            ax
        }
        None => (0..a.ndim()).filter(|&i| a.shape()[i] == 1).collect(),
    };
    let shape: Vec<usize> = a
        .shape()
        .iter()
        .enumerate()
        .filter(|(i, _)| !ax.contains(i))
        .map(|(_, &d)| d)
        .collect();
    reshape_to(a, &shape)
}

pub fn atleast_1d(a: &Array) -> Result<Array> {
    if a.ndim() >= 1 {
        Ok(a.clone())
    } else {
        reshape_to(a, &[1])
    }
}
pub fn atleast_2d(a: &Array) -> Result<Array> {
    match a.ndim() {
        0 => reshape_to(a, &[1, 1]),
        1 => reshape_to(a, &[1, a.shape()[0]]),
        _ => Ok(a.clone()),
    }
}
pub fn atleast_3d(a: &Array) -> Result<Array> {
    match a.ndim() {
        0 => reshape_to(a, &[1, 1, 1]),
        1 => reshape_to(a, &[1, a.shape()[0], 1]),
        2 => reshape_to(a, &[a.shape()[0], a.shape()[1], 1]),
        _ => Ok(a.clone()),
    }
}

/// One axis of a slice, Python-style: `start:stop:step`, bounds may be negative or absent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SliceArg {
    pub start: Option<isize>,
    pub stop: Option<isize>,
    pub step: isize,
}

impl SliceArg {
    /// The whole axis, `:`.
    pub const ALL: SliceArg = SliceArg {
        start: None,
        stop: None,
        step: 1,
    };
    pub fn new(start: Option<isize>, stop: Option<isize>, step: isize) -> Self {
        SliceArg { start, stop, step }
    }
    pub fn range(start: isize, stop: isize) -> Self {
        SliceArg {
            start: Some(start),
            stop: Some(stop),
            step: 1,
        }
    }
    /// First index and length of this slice on an axis of size `n` (Python's rules).
    pub fn resolve(&self, op: &str, n: usize) -> Result<(usize, usize)> {
        if self.step == 0 {
            return Err(Error::invalid(op, "slice step cannot be zero"));
        }
        let n = n as isize;
        let step = self.step;
        let clamp = |v: Option<isize>, default: isize, lo: isize, hi: isize| match v {
            None => default,
            Some(v) => {
                let v = if v < 0 { v + n } else { v };
                v.clamp(lo, hi)
            }
        };
        let (start, stop) = if step > 0 {
            (clamp(self.start, 0, 0, n), clamp(self.stop, n, 0, n))
        } else {
            (
                clamp(self.start, n - 1, -1, n - 1),
                clamp(self.stop, -1, -1, n - 1),
            )
        };
        let len = if step > 0 {
            if stop > start {
                (stop - start + step - 1) / step
            } else {
                0
            }
        } else if start > stop {
            (start - stop + (-step) - 1) / (-step)
        } else {
            0
        };
        Ok((start.max(0) as usize, len as usize))
    }
}

/// Python-style slicing: one `SliceArg` per leading axis (missing trailing axes are whole).
pub fn slice(a: &Array, args: &[SliceArg]) -> Result<Array> {
    if args.len() > a.ndim() {
        return Err(Error::invalid(
            "slice",
            format!(
                "{} slice arguments for an array of shape {}",
                args.len(),
                fmt_shape(a.shape())
            ),
        ));
    }
    let mut start = Vec::with_capacity(a.ndim());
    let mut step = Vec::with_capacity(a.ndim());
    let mut shape = Vec::with_capacity(a.ndim());
    for (i, &n) in a.shape().iter().enumerate() {
        let arg = args.get(i).copied().unwrap_or(SliceArg::ALL);
        let (s, len) = arg.resolve("slice", n)?;
        start.push(s);
        step.push(arg.step);
        shape.push(len);
    }
    if shape == a.shape() && step.iter().all(|&s| s == 1) {
        return Ok(a.clone());
    }
    Ok(Array::from_op(
        Op::Slice { start, step },
        vec![a.clone()],
        shape,
        a.dtype(),
    ))
}

/// `a[start:stop]` along one axis.
pub fn slice_axis(a: &Array, axis: isize, arg: SliceArg) -> Result<Array> {
    let ax = normalize_axis("slice", axis, a.ndim())?;
    let mut args = vec![SliceArg::ALL; ax + 1];
    args[ax] = arg;
    slice(a, &args)
}

/// Reverses the order of elements along `axes` (all axes when `None`): a view.
pub fn flip(a: &Array, axes: Option<&[isize]>) -> Result<Array> {
    let ax: Vec<usize> = match axes {
        Some(ax) => normalize_axes("flip", ax, a.ndim())?,
        None => (0..a.ndim()).collect(),
    };
    let args: Vec<SliceArg> = (0..a.ndim())
        .map(|i| {
            if ax.contains(&i) {
                SliceArg::new(None, None, -1)
            } else {
                SliceArg::ALL
            }
        })
        .collect();
    slice(a, &args)
}

/// The diagonal of `axis1`/`axis2` with `offset`, appended as the last axis (a view).
pub fn diagonal(a: &Array, offset: isize, axis1: isize, axis2: isize) -> Result<Array> {
    if a.ndim() < 2 {
        return Err(Error::invalid(
            "diagonal",
            format!("needs at least 2 dims, got shape {}", fmt_shape(a.shape())),
        ));
    }
    let i = normalize_axis("diagonal", axis1, a.ndim())?;
    let j = normalize_axis("diagonal", axis2, a.ndim())?;
    if i == j {
        return Err(Error::invalid(
            "diagonal",
            format!("axis1 and axis2 are both {i}"),
        ));
    }
    let (n, m) = (a.shape()[i] as isize, a.shape()[j] as isize);
    let len = if offset >= 0 {
        (m - offset).min(n)
    } else {
        (n + offset).min(m)
    }
    .max(0) as usize;
    let mut shape: Vec<usize> = (0..a.ndim())
        .filter(|&k| k != i && k != j)
        .map(|k| a.shape()[k])
        .collect();
    shape.push(len);
    Ok(Array::from_op(
        Op::Diagonal {
            offset,
            axis1: i,
            axis2: j,
        },
        vec![a.clone()],
        shape,
        a.dtype(),
    ))
}

/// Reinterprets the bytes as `dtype`; the last axis scales by the size ratio (NumPy's `view`).
pub fn view(a: &Array, dtype: DType) -> Result<Array> {
    let (from, to) = (a.dtype().size(), dtype.size());
    if from == to {
        return Ok(Array::from_op(
            Op::ViewDtype(dtype),
            vec![a.clone()],
            a.shape().to_vec(),
            dtype,
        ));
    }
    let bad = || {
        Error::invalid(
            "view",
            format!("cannot view array of shape {} and dtype {} as {dtype}: last axis bytes don't divide", fmt_shape(a.shape()), a.dtype()),
        )
    };
    let last = *a.shape().last().ok_or_else(bad)?;
    let bytes = last * from;
    if bytes % to != 0 {
        return Err(bad());
    }
    let mut shape = a.shape().to_vec();
    *shape.last_mut().unwrap() = bytes / to;
    Ok(Array::from_op(
        Op::ViewDtype(dtype),
        vec![a.clone()],
        shape,
        dtype,
    ))
}

/// A row-major contiguous copy.
pub fn copy(a: &Array) -> Result<Array> {
    Ok(Array::from_op(
        Op::Copy,
        vec![a.clone()],
        a.shape().to_vec(),
        a.dtype(),
    ))
}
