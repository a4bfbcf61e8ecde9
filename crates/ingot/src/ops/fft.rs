//! Public operations: fft family (NumPy's `numpy.fft`).
//!
//! Transforms compute in complex64 (ingot has no complex128): float64 inputs are rounded to
//! single precision first. Complex transforms cast real inputs to complex64; `rfft*` takes
//! real inputs (cast to float32) and `irfft*` returns float32. The `Fft` primitive is
//! unnormalized; the norm is applied here with one multiply.

use crate::array::Array;
use crate::dtype::DType;
use crate::op::{FftKind, Op};
use crate::ops::{astype, broadcast_to, expand_dims, multiply, reshape_to, slice_axis, SliceArg};
use crate::shape::{fmt_shape, normalize_axes, normalize_axis};
use crate::{Error, Result};

/// Which direction carries the 1/n factor (NumPy's `norm`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum FftNorm {
    /// No scaling forward, 1/n on the inverse.
    #[default]
    Backward,
    /// 1/sqrt(n) both ways.
    Ortho,
    /// 1/n forward, none on the inverse.
    Forward,
}

impl FftNorm {
    /// Parses NumPy's names: "backward", "ortho", "forward".
    pub fn parse(op: &str, s: &str) -> Result<FftNorm> {
        match s {
            "backward" => Ok(FftNorm::Backward),
            "ortho" => Ok(FftNorm::Ortho),
            "forward" => Ok(FftNorm::Forward),
            _ => Err(Error::invalid(
                op,
                format!("invalid norm '{s}' (use \"backward\", \"ortho\" or \"forward\")"),
            )),
        }
    }

    /// The factor applied to a transform of `n` points in direction `inverse`.
    fn factor(self, n: usize, inverse: bool) -> f64 {
        let n = n as f64;
        match (self, inverse) {
            (FftNorm::Backward, false) | (FftNorm::Forward, true) => 1.0,
            (FftNorm::Backward, true) | (FftNorm::Forward, false) => 1.0 / n,
            (FftNorm::Ortho, _) => 1.0 / n.sqrt(),
        }
    }
}

fn scale(y: Array, f: f64) -> Result<Array> {
    if f == 1.0 {
        Ok(y)
    } else {
        multiply(&y, f)
    }
}

fn to_complex(a: &Array) -> Result<Array> {
    astype(a, DType::C64)
}

fn to_real(op: &str, a: &Array) -> Result<Array> {
    if a.dtype().is_complex() {
        return Err(Error::invalid(
            op,
            format!(
                "input must be real, got {} of shape {}",
                a.dtype(),
                fmt_shape(a.shape())
            ),
        ));
    }
    astype(a, DType::F32)
}

/// Resolves NumPy's (s, axes) pair: axes default to `default_axes` (or the last len(s)
/// axes, or all), s defaults to the input's sizes on those axes.
fn cook(
    op: &str,
    a: &Array,
    s: Option<&[usize]>,
    axes: Option<&[isize]>,
    default_axes: Option<&[isize]>,
) -> Result<(Vec<usize>, Vec<usize>)> {
    let nd = a.ndim();
    let axes: Vec<isize> = match (axes, default_axes, s) {
        (Some(ax), _, _) => ax.to_vec(),
        (None, Some(d), _) => d.to_vec(),
        (None, None, Some(s)) => {
            if s.len() > nd {
                return Err(Error::invalid(
                    op,
                    format!(
                        "s has {} entries for an array of shape {}",
                        s.len(),
                        fmt_shape(a.shape())
                    ),
                ));
            }
            (nd - s.len()..nd).map(|i| i as isize).collect()
        }
        (None, None, None) => (0..nd as isize).collect(),
    };
    let ax = normalize_axes(op, &axes, nd)?;
    let s: Vec<usize> = match s {
        Some(s) => {
            if s.len() != ax.len() {
                return Err(Error::invalid(
                    op,
                    format!("s {s:?} and axes {axes:?} have different lengths"),
                ));
            }
            s.to_vec()
        }
        None => ax.iter().map(|&i| a.shape()[i]).collect(),
    };
    Ok((ax, s))
}

fn check_points(op: &str, a: &Array, ax: &[usize], s: &[usize]) -> Result<()> {
    for (&i, &n) in ax.iter().zip(s) {
        if n < 1 {
            return Err(Error::invalid(
                op,
                format!(
                    "invalid number of data points ({n}) on axis {i} of shape {}",
                    fmt_shape(a.shape())
                ),
            ));
        }
    }
    Ok(())
}

fn c2c(
    op: &str,
    a: &Array,
    ax: &[usize],
    s: &[usize],
    norm: FftNorm,
    inverse: bool,
) -> Result<Array> {
    check_points(op, a, ax, s)?;
    let x = to_complex(a)?;
    if ax.is_empty() {
        return Ok(x);
    }
    let mut shape = x.shape().to_vec();
    for (&i, &n) in ax.iter().zip(s) {
        shape[i] = n;
    }
    let kind = if inverse {
        FftKind::Inverse
    } else {
        FftKind::Forward
    };
    let y = Array::from_op(
        Op::Fft {
            axes: ax.to_vec(),
            kind,
        },
        vec![x],
        shape,
        DType::C64,
    );
    scale(y, norm.factor(s.iter().product(), inverse))
}

fn r2c(op: &str, a: &Array, ax: &[usize], s: &[usize], norm: FftNorm) -> Result<Array> {
    let mut x = to_real(op, a)?;
    check_points(op, a, ax, s)?;
    let (&last, &n) = match (ax.last(), s.last()) {
        (Some(l), Some(n)) => (l, n),
        _ => return Err(Error::invalid(op, "needs at least one axis")),
    };
    let total: usize = s.iter().product();
    if x.shape()[last] < n {
        // No pad primitive yet: zero-pad through the complex kernel (which pads lines) and
        // keep the half spectrum. Twice the work, only when padding the real axis.
        let y = c2c(op, &x, ax, s, FftNorm::Backward, false)?;
        let y = slice_axis(&y, last as isize, SliceArg::range(0, (n / 2 + 1) as isize))?;
        return scale(y, norm.factor(total, false));
    }
    if x.shape()[last] > n {
        x = slice_axis(&x, last as isize, SliceArg::range(0, n as isize))?;
    }
    let mut shape = x.shape().to_vec();
    for (&i, &m) in ax.iter().zip(s) {
        shape[i] = m;
    }
    shape[last] = n / 2 + 1;
    let y = Array::from_op(
        Op::Fft {
            axes: ax.to_vec(),
            kind: FftKind::RealForward,
        },
        vec![x],
        shape,
        DType::C64,
    );
    scale(y, norm.factor(total, false))
}

fn c2r(op: &str, a: &Array, ax: &[usize], s: Option<&[usize]>, norm: FftNorm) -> Result<Array> {
    let x = to_complex(a)?;
    let last = *ax
        .last()
        .ok_or_else(|| Error::invalid(op, "needs at least one axis"))?;
    let s: Vec<usize> = match s {
        Some(s) => s.to_vec(),
        None => {
            let mut s: Vec<usize> = ax.iter().map(|&i| x.shape()[i]).collect();
            let m = x.shape()[last];
            if m < 1 {
                return Err(Error::invalid(
                    op,
                    format!(
                        "invalid number of data points (0) on axis {last} of shape {}",
                        fmt_shape(a.shape())
                    ),
                ));
            }
            *s.last_mut().unwrap() = 2 * (m - 1);
            s
        }
    };
    check_points(op, a, ax, &s)?;
    let mut shape = x.shape().to_vec();
    for (&i, &n) in ax.iter().zip(&s) {
        shape[i] = n;
    }
    let y = Array::from_op(
        Op::Fft {
            axes: ax.to_vec(),
            kind: FftKind::RealInverse,
        },
        vec![x],
        shape,
        DType::F32,
    );
    scale(y, norm.factor(s.iter().product(), true))
}

fn one(op: &str, a: &Array, n: Option<usize>, axis: isize) -> Result<(Vec<usize>, Vec<usize>)> {
    let ax = normalize_axis(op, axis, a.ndim())?;
    Ok((vec![ax], vec![n.unwrap_or(a.shape()[ax])]))
}

/// 1-D discrete Fourier transform along `axis`, cropped or zero-padded to `n` points.
pub fn fft(a: &Array, n: Option<usize>, axis: isize, norm: FftNorm) -> Result<Array> {
    let (ax, s) = one("fft", a, n, axis)?;
    c2c("fft", a, &ax, &s, norm, false)
}
/// 1-D inverse transform.
pub fn ifft(a: &Array, n: Option<usize>, axis: isize, norm: FftNorm) -> Result<Array> {
    let (ax, s) = one("ifft", a, n, axis)?;
    c2c("ifft", a, &ax, &s, norm, true)
}
/// 1-D transform of a real input: the n/2+1 non-negative frequencies.
pub fn rfft(a: &Array, n: Option<usize>, axis: isize, norm: FftNorm) -> Result<Array> {
    let (ax, s) = one("rfft", a, n, axis)?;
    r2c("rfft", a, &ax, &s, norm)
}
/// Inverse of `rfft`: `n` real points (default 2*(m-1) for m input bins).
pub fn irfft(a: &Array, n: Option<usize>, axis: isize, norm: FftNorm) -> Result<Array> {
    let ax = normalize_axis("irfft", axis, a.ndim())?;
    let s = n.map(|n| vec![n]);
    c2r("irfft", a, &[ax], s.as_deref(), norm)
}

const LAST2: &[isize] = &[-2, -1];

pub fn fft2(
    a: &Array,
    s: Option<&[usize]>,
    axes: Option<&[isize]>,
    norm: FftNorm,
) -> Result<Array> {
    let (ax, s) = cook("fft2", a, s, axes, Some(LAST2))?;
    c2c("fft2", a, &ax, &s, norm, false)
}
pub fn ifft2(
    a: &Array,
    s: Option<&[usize]>,
    axes: Option<&[isize]>,
    norm: FftNorm,
) -> Result<Array> {
    let (ax, s) = cook("ifft2", a, s, axes, Some(LAST2))?;
    c2c("ifft2", a, &ax, &s, norm, true)
}
pub fn rfft2(
    a: &Array,
    s: Option<&[usize]>,
    axes: Option<&[isize]>,
    norm: FftNorm,
) -> Result<Array> {
    let (ax, s) = cook("rfft2", a, s, axes, Some(LAST2))?;
    r2c("rfft2", a, &ax, &s, norm)
}
pub fn irfft2(
    a: &Array,
    s: Option<&[usize]>,
    axes: Option<&[isize]>,
    norm: FftNorm,
) -> Result<Array> {
    let (ax, s2) = cook("irfft2", a, s, axes, Some(LAST2))?;
    c2r("irfft2", a, &ax, s.map(|_| &s2[..]), norm)
}
/// N-D transform over `axes` (all by default, or the last len(s) when only `s` is given).
pub fn fftn(
    a: &Array,
    s: Option<&[usize]>,
    axes: Option<&[isize]>,
    norm: FftNorm,
) -> Result<Array> {
    let (ax, s) = cook("fftn", a, s, axes, None)?;
    c2c("fftn", a, &ax, &s, norm, false)
}
pub fn ifftn(
    a: &Array,
    s: Option<&[usize]>,
    axes: Option<&[isize]>,
    norm: FftNorm,
) -> Result<Array> {
    let (ax, s) = cook("ifftn", a, s, axes, None)?;
    c2c("ifftn", a, &ax, &s, norm, true)
}
pub fn rfftn(
    a: &Array,
    s: Option<&[usize]>,
    axes: Option<&[isize]>,
    norm: FftNorm,
) -> Result<Array> {
    let (ax, s) = cook("rfftn", a, s, axes, None)?;
    r2c("rfftn", a, &ax, &s, norm)
}
pub fn irfftn(
    a: &Array,
    s: Option<&[usize]>,
    axes: Option<&[isize]>,
    norm: FftNorm,
) -> Result<Array> {
    let (ax, s2) = cook("irfftn", a, s, axes, None)?;
    c2r("irfftn", a, &ax, s.map(|_| &s2[..]), norm)
}

/// Rotates `a` so that element i moves to (i + shift) mod n along `axis`. Built from views:
/// the axis is doubled by broadcasting (one copy), and a window of n is sliced out.
fn roll_axis(a: &Array, axis: usize, shift: usize) -> Result<Array> {
    let n = a.shape()[axis];
    if n == 0 || shift % n == 0 {
        return Ok(a.clone());
    }
    let start = (n - shift % n) as isize;
    let e = expand_dims(a, &[axis as isize])?;
    let mut two = e.shape().to_vec();
    two[axis] = 2;
    let b = broadcast_to(&e, &two)?;
    let mut doubled = a.shape().to_vec();
    doubled[axis] = 2 * n;
    let d = reshape_to(&b, &doubled)?;
    slice_axis(
        &d,
        axis as isize,
        SliceArg::range(start, start + n as isize),
    )
}

fn shift_axes(op: &str, a: &Array, axes: Option<&[isize]>, inverse: bool) -> Result<Array> {
    let ax: Vec<usize> = match axes {
        Some(ax) => normalize_axes(op, ax, a.ndim())?,
        None => (0..a.ndim()).collect(),
    };
    let mut y = a.clone();
    for i in ax {
        let n = a.shape()[i];
        let shift = if inverse { n - n / 2 } else { n / 2 };
        y = roll_axis(&y, i, shift)?;
    }
    Ok(y)
}

/// Moves the zero frequency to the centre (rolls each axis by n/2); all axes when `None`.
pub fn fftshift(a: &Array, axes: Option<&[isize]>) -> Result<Array> {
    shift_axes("fftshift", a, axes, false)
}
/// Inverse of `fftshift` (rolls each axis by -(n/2)).
pub fn ifftshift(a: &Array, axes: Option<&[isize]>) -> Result<Array> {
    shift_axes("ifftshift", a, axes, true)
}

fn freq_check(op: &str, n: usize, d: f64) -> Result<()> {
    if n == 0 {
        return Err(Error::invalid(op, "n must be at least 1"));
    }
    if d == 0.0 || !d.is_finite() {
        return Err(Error::invalid(
            op,
            format!("sample spacing d must be finite and non-zero, got {d}"),
        ));
    }
    Ok(())
}

/// Sample frequencies of an `n`-point `fft` with spacing `d`: [0, 1, .., -(n/2), .., -1] /
/// (d n), as float32 (computed in f64, rounded once).
pub fn fftfreq(n: usize, d: f64) -> Result<Array> {
    freq_check("fftfreq", n, d)?;
    let nf = n as f64 * d;
    let half = n.div_ceil(2);
    let v: Vec<f32> = (0..n)
        .map(|i| {
            let k = if i < half {
                i as f64
            } else {
                i as f64 - n as f64
            };
            (k / nf) as f32
        })
        .collect();
    Array::from_vec(v, &[n])
}

/// Sample frequencies of an `n`-point `rfft`: [0, 1, .., n/2] / (d n), as float32.
pub fn rfftfreq(n: usize, d: f64) -> Result<Array> {
    freq_check("rfftfreq", n, d)?;
    let nf = n as f64 * d;
    let v: Vec<f32> = (0..n / 2 + 1).map(|i| (i as f64 / nf) as f32).collect();
    Array::from_vec(v, &[n / 2 + 1])
}
