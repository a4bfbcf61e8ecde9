//! Shapes, strides and broadcasting.

use crate::{Error, Result};

/// Formats a shape the way NumPy prints it: `(2, 3)`, `(5,)`, `()`.
pub fn fmt_shape(shape: &[usize]) -> String {
    match shape.len() {
        0 => "()".into(),
        1 => format!("({},)", shape[0]),
        _ => {
            let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
            format!("({})", parts.join(", "))
        }
    }
}

/// Number of elements, or an error when it overflows `usize`.
pub fn checked_size(op: &str, shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| {
            Error::invalid(
                op,
                format!("shape {} has too many elements", fmt_shape(shape)),
            )
        })
}

/// Number of elements (the shape is known to be valid).
pub fn size_of(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Row-major strides, in elements.
pub fn contiguous_strides(shape: &[usize]) -> Vec<isize> {
    let mut strides = vec![0isize; shape.len()];
    let mut acc = 1isize;
    for i in (0..shape.len()).rev() {
        strides[i] = acc;
        acc *= shape[i].max(1) as isize;
    }
    strides
}

/// Resolves a possibly negative axis against `ndim`.
pub fn normalize_axis(op: &str, axis: isize, ndim: usize) -> Result<usize> {
    let n = ndim as isize;
    let a = if axis < 0 { axis + n } else { axis };
    if a < 0 || a >= n {
        return Err(Error::invalid(
            op,
            format!("axis {axis} is out of bounds for an array of dimension {ndim}"),
        ));
    }
    Ok(a as usize)
}

/// Resolves a list of axes; repeated axes are an error. The result keeps the given order.
pub fn normalize_axes(op: &str, axes: &[isize], ndim: usize) -> Result<Vec<usize>> {
    let mut out = Vec::with_capacity(axes.len());
    for &a in axes {
        let a = normalize_axis(op, a, ndim)?;
        if out.contains(&a) {
            return Err(Error::invalid(op, format!("repeated axis {a} in {axes:?}")));
        }
        out.push(a);
    }
    Ok(out)
}

/// The broadcast shape of two shapes, NumPy rules.
pub fn broadcast_shapes(op: &str, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    broadcast_all(op, [a, b])
}

/// Broadcast shape of many shapes.
pub fn broadcast_many(op: &str, shapes: &[&[usize]]) -> Result<Vec<usize>> {
    broadcast_all(op, shapes.iter().copied())
}

/// [`broadcast_many`] over any shapes, folded into one vector: every op's operands pass
/// through here while a graph is built.
pub fn broadcast_all<'a, I>(op: &str, shapes: I) -> Result<Vec<usize>>
where
    I: IntoIterator<Item = &'a [usize]>,
    I::IntoIter: Clone,
{
    let shapes = shapes.into_iter();
    let n = shapes.clone().map(<[usize]>::len).max().unwrap_or(0);
    let mut out = vec![1; n];
    // The broadcast so far is `out[n - rank..]` (what the error names).
    let mut rank = 0;
    for s in shapes {
        let off = n - s.len();
        if out[off..]
            .iter()
            .zip(s)
            .any(|(&o, &d)| o != 1 && d != 1 && o != d)
        {
            return Err(Error::invalid(
                op,
                format!(
                    "shapes {} and {} cannot be broadcast together",
                    fmt_shape(&out[n - rank..]),
                    fmt_shape(s)
                ),
            ));
        }
        for (o, &d) in out[off..].iter_mut().zip(s) {
            if *o == 1 {
                *o = d;
            }
        }
        rank = rank.max(s.len());
    }
    Ok(out)
}

/// Strides of `shape`/`strides` viewed as the larger shape `to` (broadcast dims get stride 0).
pub fn broadcast_strides(shape: &[usize], strides: &[isize], to: &[usize]) -> Vec<isize> {
    let off = to.len() - shape.len();
    let mut out = vec![0isize; to.len()];
    for i in 0..shape.len() {
        out[off + i] = if shape[i] == 1 && to[off + i] != 1 {
            0
        } else {
            strides[i]
        };
    }
    out
}

/// Is (shape, strides) row-major contiguous? Dims of size 1 may have any stride.
pub fn is_row_contiguous(shape: &[usize], strides: &[isize]) -> bool {
    let mut acc = 1isize;
    for i in (0..shape.len()).rev() {
        if shape[i] == 1 {
            continue;
        }
        if strides[i] != acc {
            return false;
        }
        acc *= shape[i] as isize;
    }
    true
}

/// Merges adjacent dims that are contiguous with each other in every operand, dropping size-1
/// dims: a kernel then loops over as few, as long rows as possible.
/// Returns (shape, strides per operand).
pub fn collapse_dims(shape: &[usize], strides: &[&[isize]]) -> (Vec<usize>, Vec<Vec<isize>>) {
    let mut out_shape: Vec<usize> = Vec::with_capacity(shape.len());
    let mut out_strides: Vec<Vec<isize>> = vec![Vec::with_capacity(shape.len()); strides.len()];
    for i in 0..shape.len() {
        if shape[i] == 1 {
            continue;
        }
        if let Some(&last) = out_shape.last() {
            let merge = strides
                .iter()
                .zip(out_strides.iter())
                .all(|(s, os)| *os.last().unwrap() == s[i] * shape[i] as isize);
            if merge {
                let n = out_shape.len();
                out_shape[n - 1] = last * shape[i];
                for (s, os) in strides.iter().zip(out_strides.iter_mut()) {
                    *os.last_mut().unwrap() = s[i];
                }
                continue;
            }
        }
        out_shape.push(shape[i]);
        for (s, os) in strides.iter().zip(out_strides.iter_mut()) {
            os.push(s[i]);
        }
    }
    if out_shape.is_empty() && size_of(shape) == 1 {
        out_shape.push(1);
        for os in out_strides.iter_mut() {
            os.push(1);
        }
    }
    (out_shape, out_strides)
}

/// Infers one `-1` entry of a reshape target.
pub fn infer_reshape(op: &str, from: &[usize], to: &[isize]) -> Result<Vec<usize>> {
    let total = size_of(from);
    let mut unknown = None;
    let mut known = 1usize;
    for (i, &d) in to.iter().enumerate() {
        if d == -1 {
            if unknown.is_some() {
                return Err(Error::invalid(
                    op,
                    "can only specify one unknown dimension (-1)",
                ));
            }
            unknown = Some(i);
        } else if d < 0 {
            return Err(Error::invalid(
                op,
                format!("negative dimension {d} in {to:?}"),
            ));
        } else {
            known = known
                .checked_mul(d as usize)
                .ok_or_else(|| Error::invalid(op, format!("target shape {to:?} is too large")))?;
        }
    }
    let mut out: Vec<usize> = to.iter().map(|&d| d.max(0) as usize).collect();
    if let Some(i) = unknown {
        if known == 0 || total % known != 0 {
            return Err(Error::invalid(
                op,
                format!(
                    "cannot reshape array of shape {} into {to:?}",
                    fmt_shape(from)
                ),
            ));
        }
        out[i] = total / known;
    } else if known != total {
        return Err(Error::invalid(
            op,
            format!(
                "cannot reshape array of size {total} and shape {} into shape {}",
                fmt_shape(from),
                fmt_shape(&out)
            ),
        ));
    }
    Ok(out)
}

/// Strides that view (shape, strides) as `to` without copying, if such strides exist.
/// (The algorithm walks groups of dims whose element counts match.)
pub fn reshape_strides(shape: &[usize], strides: &[isize], to: &[usize]) -> Option<Vec<isize>> {
    let size = size_of(shape);
    if size == 0 || size == 1 {
        return Some(contiguous_strides(to));
    }
    // Drop size-1 dims from the source; they impose nothing.
    let src: Vec<(usize, isize)> = shape
        .iter()
        .zip(strides)
        .filter(|(d, _)| **d != 1)
        .map(|(d, s)| (*d, *s))
        .collect();
    let mut out = vec![0isize; to.len()];
    let (mut i, mut j) = (0usize, 0usize);
    while j < to.len() && to[j] == 1 {
        out[j] = 0;
        j += 1;
    }
    while i < src.len() {
        // Take one chunk of source dims that is contiguous in itself...
        let mut chunk = src[i].0;
        let i0 = i;
        // ...matched against target dims with the same element count.
        let j0 = j;
        let mut tchunk = 1usize;
        if j < to.len() {
            tchunk = to[j];
            j += 1;
        }
        while chunk != tchunk {
            if chunk < tchunk {
                i += 1;
                if i >= src.len() || src[i - 1].1 != src[i].1 * src[i].0 as isize {
                    return None;
                }
                chunk *= src[i].0;
            } else {
                if j >= to.len() {
                    return None;
                }
                tchunk *= to[j];
                j += 1;
            }
        }
        // Source dims i0..=i form one contiguous block with innermost stride src[i].1.
        let mut acc = src[i].1;
        for k in (j0..j).rev() {
            out[k] = acc;
            acc *= to[k] as isize;
        }
        i += 1;
        while j < to.len() && to[j] == 1 {
            out[j] = 0;
            j += 1;
        }
        let _ = i0;
    }
    if j != to.len() {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn broadcast() {
        assert_eq!(
            broadcast_shapes("t", &[2, 1, 3], &[4, 1]).unwrap(),
            vec![2, 4, 3]
        );
        assert!(broadcast_shapes("t", &[2, 3], &[4, 3]).is_err());
        assert_eq!(broadcast_shapes("t", &[], &[0, 3]).unwrap(), vec![0, 3]);
    }
    #[test]
    fn reshape_views() {
        // contiguous
        assert_eq!(
            reshape_strides(&[2, 3, 4], &[12, 4, 1], &[6, 4]),
            Some(vec![4, 1])
        );
        // transposed (3,2) of a (2,3) cannot be flattened
        assert_eq!(reshape_strides(&[3, 2], &[1, 3], &[6]), None);
        // split a stepped dim
        assert_eq!(reshape_strides(&[6], &[2], &[2, 3]), Some(vec![6, 2]));
        assert_eq!(
            reshape_strides(&[2, 3], &[3, 1], &[1, 2, 1, 3, 1]).unwrap()[1],
            3
        );
    }
    #[test]
    fn collapse() {
        let (s, st) = collapse_dims(&[2, 3, 4], &[&[12, 4, 1]]);
        assert_eq!(s, vec![24]);
        assert_eq!(st[0], vec![1]);
        let (s, _) = collapse_dims(&[2, 3], &[&[1, 2]]);
        assert_eq!(s, vec![2, 3]);
    }
}
