//! Public operations: misc family. softmax and log_softmax (fast op with a reference
//! decomposition), grid_sample (PyTorch semantics, channels last), the Walsh-Hadamard
//! transform, and histogram.

use crate::array::Array;
use crate::dtype::{promote_types, DType, Scalar};
use crate::op::{GridPadding, InterpMode, Op};
use crate::ops::astype;
use crate::shape::{fmt_shape, normalize_axis};
use crate::{Error, Result};

/// Float inputs keep their dtype; integers and bool compute in float32; complex is refused.
fn float_input(op: &str, a: &Array) -> Result<Array> {
    match a.dtype() {
        d if d.is_complex() => Err(Error::invalid(
            op,
            format!(
                "not supported for dtype {d} (shape {})",
                fmt_shape(a.shape())
            ),
        )),
        d if d.is_float() => Ok(a.clone()),
        _ => astype(a, DType::F32),
    }
}

fn softmax_node(op: &str, a: &Array, axis: isize, log: bool) -> Result<Array> {
    let a = &crate::amp::high(a)?;
    let x = float_input(op, a)?;
    let ax = normalize_axis(op, axis, x.ndim())?;
    Ok(Array::from_op(
        Op::Softmax { axis: ax, log },
        vec![x.clone()],
        x.shape().to_vec(),
        x.dtype(),
    ))
}

/// `exp(a - max) / sum(exp(a - max))` along `axis`. A row of all -inf (or holding NaN or
/// +inf) gives NaN, as NumPy's formula and PyTorch do.
pub fn softmax(a: &Array, axis: isize) -> Result<Array> {
    softmax_node("softmax", a, axis, false)
}

/// `a - max - log(sum(exp(a - max)))` along `axis`.
pub fn log_softmax(a: &Array, axis: isize) -> Result<Array> {
    softmax_node("log_softmax", a, axis, true)
}

/// The decomposition of `softmax`/`log_softmax` into ordinary ops, kept beside the fast
/// kernel: transforms and backends without the kernel use it, and the tests check the
/// kernel against it.
pub fn softmax_reference(a: &Array, axis: isize, log: bool) -> Result<Array> {
    let op = if log { "log_softmax" } else { "softmax" };
    let x = float_input(op, a)?;
    normalize_axis(op, axis, x.ndim())?;
    if x.size() == 0 {
        return Ok(x);
    }
    let ax = [axis];
    let m = crate::ops::stop_gradient(&crate::ops::max(&x, Some(&ax), true)?)?;
    let z = crate::ops::subtract(&x, &m)?;
    let e = crate::ops::exp(&z)?;
    let s = crate::ops::sum(&e, Some(&ax), true)?;
    if log {
        crate::ops::subtract(&z, &crate::ops::log(&s)?)
    } else {
        crate::ops::divide(&e, &s)
    }
}

/// Parses PyTorch's mode names: "nearest", "bilinear".
pub fn parse_interp_mode(op: &str, s: &str) -> Result<InterpMode> {
    match s {
        "nearest" => Ok(InterpMode::Nearest),
        "bilinear" => Ok(InterpMode::Bilinear),
        _ => Err(Error::invalid(
            op,
            format!("invalid mode '{s}' (use \"nearest\" or \"bilinear\")"),
        )),
    }
}

/// Parses PyTorch's padding_mode names: "zeros", "border", "reflection".
pub fn parse_grid_padding(op: &str, s: &str) -> Result<GridPadding> {
    match s {
        "zeros" => Ok(GridPadding::Zeros),
        "border" => Ok(GridPadding::Border),
        "reflection" => Ok(GridPadding::Reflection),
        _ => Err(Error::invalid(
            op,
            format!("invalid padding_mode '{s}' (use \"zeros\", \"border\" or \"reflection\")"),
        )),
    }
}

/// PyTorch's `grid_sample` for 2-D images, channels last: `input` (N, H, W, C), `grid`
/// (N, Ho, Wo, 2) holding (x, y) in [-1, 1]; output (N, Ho, Wo, C). The two inputs are
/// promoted to one float dtype.
pub fn grid_sample(
    input: &Array,
    grid: &Array,
    mode: InterpMode,
    padding: GridPadding,
    align_corners: bool,
) -> Result<Array> {
    let op = "grid_sample";
    let x = float_input(op, input)?;
    let g = float_input(op, grid)?;
    if x.ndim() != 4 || g.ndim() != 4 || g.shape()[3] != 2 || g.shape()[0] != x.shape()[0] {
        return Err(Error::invalid(
            op,
            format!(
                "expected input (N, H, W, C) and grid (N, Ho, Wo, 2), got {} and {}",
                fmt_shape(x.shape()),
                fmt_shape(g.shape())
            ),
        ));
    }
    let dt = promote_types(x.dtype(), g.dtype());
    let (x, g) = (astype(&x, dt)?, astype(&g, dt)?);
    let shape = vec![x.shape()[0], g.shape()[1], g.shape()[2], x.shape()[3]];
    Ok(Array::from_op(
        Op::GridSample {
            mode,
            padding,
            align_corners,
        },
        vec![x, g],
        shape,
        dt,
    ))
}

/// Walsh-Hadamard transform over the last axis (a power of two in length), times `scale`
/// (default 1/sqrt(n), which makes the transform orthonormal).
pub fn hadamard_transform(a: &Array, scale: Option<f64>) -> Result<Array> {
    let op = "hadamard_transform";
    let x = float_input(op, a)?;
    let n = match x.shape().last() {
        Some(&n) if n.is_power_of_two() => n,
        _ => {
            return Err(Error::invalid(
                op,
                format!(
                    "the last axis must have a power-of-two length, got shape {}",
                    fmt_shape(x.shape())
                ),
            ))
        }
    };
    let scale = scale.unwrap_or(1.0 / (n as f64).sqrt());
    Ok(Array::from_op(
        Op::Hadamard {
            scale: Scalar::Float(scale),
        },
        vec![x.clone()],
        x.shape().to_vec(),
        x.dtype(),
    ))
}

/// NumPy's `histogram` with `bins` equal-width bins over `range` (default: the data's min
/// and max, widened by 0.5 each way when they are equal). Returns (counts, bin_edges):
/// counts are int64 without weights, else the weights' float dtype (int64 for integer
/// weights); edges are float64. Values outside the range (and NaN) are not counted; a
/// value equal to the last edge goes in the last bin. The counting runs here, on evaluated
/// inputs: the result is a materialized array.
pub fn histogram(
    a: &Array,
    bins: usize,
    range: Option<(f64, f64)>,
    weights: Option<&Array>,
) -> Result<(Array, Array)> {
    let op = "histogram";
    if bins == 0 {
        return Err(Error::invalid(op, "bins must be at least 1"));
    }
    if a.dtype().is_complex() {
        return Err(Error::invalid(
            op,
            format!("not supported for dtype {}", a.dtype()),
        ));
    }
    if let Some(w) = weights {
        if w.shape() != a.shape() {
            return Err(Error::invalid(
                op,
                format!(
                    "weights of shape {} should have the shape of a, {}",
                    fmt_shape(w.shape()),
                    fmt_shape(a.shape())
                ),
            ));
        }
        if w.dtype().is_complex() {
            return Err(Error::invalid(
                op,
                format!("not supported for weights of dtype {}", w.dtype()),
            ));
        }
    }
    if let Some((lo, hi)) = range {
        if lo > hi {
            return Err(Error::invalid(
                op,
                format!("max must be larger than min in range parameter, got ({lo}, {hi})"),
            ));
        }
        if !lo.is_finite() || !hi.is_finite() {
            return Err(Error::invalid(
                op,
                format!("supplied range of [{lo}, {hi}] is not finite"),
            ));
        }
    }
    let vals = a.to_f64_vec()?;
    let (mut lo, mut hi) = match range {
        Some(r) => r,
        None if vals.is_empty() => (0.0, 1.0),
        None => {
            let mut lo = f64::INFINITY;
            let mut hi = f64::NEG_INFINITY;
            for &v in &vals {
                if v.is_nan() {
                    return Err(Error::invalid(
                        op,
                        "autodetected range of [nan, nan] is not finite",
                    ));
                }
                lo = lo.min(v);
                hi = hi.max(v);
            }
            if !lo.is_finite() || !hi.is_finite() {
                return Err(Error::invalid(
                    op,
                    format!("autodetected range of [{lo}, {hi}] is not finite"),
                ));
            }
            (lo, hi)
        }
    };
    if lo == hi {
        lo -= 0.5;
        hi += 0.5;
    }
    // NumPy's linspace: start + i * step, the last edge exactly `hi`.
    let step = (hi - lo) / bins as f64;
    let mut edges: Vec<f64> = (0..=bins).map(|i| lo + i as f64 * step).collect();
    edges[bins] = hi;
    let wv = match weights {
        Some(w) => Some(w.to_f64_vec()?),
        None => None,
    };
    let counts = count_bins(&vals, wv.as_deref(), &edges);
    let counts = match weights.map(|w| w.dtype()) {
        None => Array::from_vec(counts.iter().map(|&c| c as i64).collect(), &[bins])?,
        Some(d) if d.is_float() => astype(&Array::from_vec(counts, &[bins])?, d)?,
        Some(_) => Array::from_vec(counts.iter().map(|&c| c as i64).collect(), &[bins])?,
    };
    Ok((counts, Array::from_vec(edges, &[bins + 1])?))
}

/// Bin index as NumPy computes it for equal bins: a scaled guess, corrected against the
/// actual edges so rounding never puts a value on the wrong side of an edge.
fn count_bins(vals: &[f64], weights: Option<&[f64]>, edges: &[f64]) -> Vec<f64> {
    use rayon::prelude::*;
    let bins = edges.len() - 1;
    let (lo, hi) = (edges[0], edges[bins]);
    let norm = bins as f64 / (hi - lo);
    let chunk = 1 << 16;
    let one = |acc: &mut Vec<f64>, i: usize, v: f64| {
        if !(lo..=hi).contains(&v) {
            return;
        }
        let mut k = (((v - lo) * norm) as usize).min(bins - 1);
        if v < edges[k] {
            k -= 1;
        } else if k + 1 < bins && v >= edges[k + 1] {
            k += 1;
        }
        acc[k] += weights.map_or(1.0, |w| w[i]);
    };
    vals.par_chunks(chunk)
        .enumerate()
        .map(|(c, vs)| {
            let mut acc = vec![0.0; bins];
            for (j, &v) in vs.iter().enumerate() {
                one(&mut acc, c * chunk + j, v);
            }
            acc
        })
        .reduce(
            || vec![0.0; bins],
            |mut a, b| {
                a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                a
            },
        )
}
