//! Counter-based random numbers, as JAX and MLX: a key is a uint32 array of shape (2,), and
//! every sampler is a pure function of (key, shape, parameters), so results are
//! reproducible and do not depend on threads or devices. Samplers are composites of
//! `RandomBits` (Threefry-2x32) and elementwise ops; docs/ops/random.md gives the scheme.

use crate::array::{Array, IntoArray};
use crate::dtype::{DType, Element};
use crate::op::Op;
use crate::ops::{
    add, argsort, astype, bitwise_or, erfinv, left_shift, less, log, maximum, minimum, multiply,
    negative, remainder, reshape_to, right_shift, slice_axis, SliceArg,
};
use crate::shape::{broadcast_shapes, checked_size, fmt_shape};
use crate::{Error, Result};
use half::{bf16, f16};

/// A key from a seed: `[seed >> 32, seed & 0xffffffff]` (JAX's `PRNGKey`).
pub fn key(seed: u64) -> Array {
    Array::from_slice(&[(seed >> 32) as u32, seed as u32], &[2]).expect("two elements fit")
}

fn check_key(name: &str, key: &Array) -> Result<()> {
    if key.dtype() != DType::U32 || key.shape() != [2] {
        return Err(Error::invalid(
            name,
            format!(
                "key must be a uint32 array of shape (2,), got shape {} {}",
                fmt_shape(key.shape()),
                key.dtype()
            ),
        ));
    }
    Ok(())
}

/// `shape` of uniformly random uint32 bits from `key` (Threefry-2x32, 20 rounds).
pub fn random_bits(key: &Array, shape: &[usize]) -> Result<Array> {
    bits_named("random_bits", key, shape)
}

fn bits_named(name: &str, key: &Array, shape: &[usize]) -> Result<Array> {
    check_key(name, key)?;
    let n = checked_size(name, shape)?;
    // Counters are 32-bit: one key gives at most 2^32 - 1 words.
    if n >= u32::MAX as usize {
        return Err(Error::invalid(
            name,
            format!(
                "shape {} has {n} elements; one key gives at most 2^32 - 1",
                fmt_shape(shape)
            ),
        ));
    }
    Ok(Array::from_op(
        Op::RandomBits,
        vec![key.clone()],
        shape.to_vec(),
        DType::U32,
    ))
}

/// `num` new keys from `key`, as an array of shape (num, 2) (JAX's `split`).
pub fn split(key: &Array, num: usize) -> Result<Array> {
    bits_named("split", key, &[num, 2])
}

/// Row `i` of a `split` result as a key of shape (2,).
pub fn key_at(keys: &Array, i: usize) -> Result<Array> {
    if keys.dtype() != DType::U32 || keys.ndim() != 2 || keys.shape()[1] != 2 {
        return Err(Error::invalid(
            "key_at",
            format!(
                "keys must be a uint32 array of shape (num, 2), got shape {} {}",
                fmt_shape(keys.shape()),
                keys.dtype()
            ),
        ));
    }
    if i >= keys.shape()[0] {
        return Err(Error::invalid(
            "key_at",
            format!("index {i} is out of bounds for {} keys", keys.shape()[0]),
        ));
    }
    let row = slice_axis(keys, 0, SliceArg::range(i as isize, i as isize + 1))?;
    reshape_to(&row, &[2])
}

/// 64 random bits per element: two words of one `RandomBits` node, as uint64.
fn bits64(name: &str, key: &Array, shape: &[usize]) -> Result<Array> {
    let mut s2 = vec![2];
    s2.extend_from_slice(shape);
    let b = bits_named(name, key, &s2)?;
    let half = |i: isize| -> Result<Array> {
        let w = slice_axis(&b, 0, SliceArg::range(i, i + 1))?;
        astype(&reshape_to(&w, shape)?, DType::U64)
    };
    let hi = left_shift(&half(0)?, Array::scalar::<u64>(32))?;
    bitwise_or(&hi, &half(1)?)
}

/// The dtype samplers compute in: float32 for the 16-bit floats (rounded once at the end).
fn compute_dtype(dtype: DType) -> DType {
    if dtype == DType::F64 {
        DType::F64
    } else {
        DType::F32
    }
}

fn check_float(name: &str, dtype: DType) -> Result<()> {
    if !dtype.is_float() {
        return Err(Error::invalid(
            name,
            format!("dtype must be a float type, got {dtype}"),
        ));
    }
    Ok(())
}

/// Uniform in [0, 1) with as many random bits as `dtype` has significand digits, in the
/// compute dtype. Every value is exact in `dtype`, so rounding cannot reach 1.
fn unit(name: &str, key: &Array, shape: &[usize], dtype: DType) -> Result<Array> {
    if dtype == DType::F64 {
        let x = right_shift(&bits64(name, key, shape)?, Array::scalar::<u64>(11))?;
        return multiply(
            &astype(&x, DType::F64)?,
            Array::scalar::<f64>(2f64.powi(-53)),
        );
    }
    let digits: u32 = match dtype {
        DType::F16 => 11,
        DType::BF16 => 8,
        _ => 24,
    };
    let b = bits_named(name, key, shape)?;
    let x = right_shift(&b, Array::scalar::<u32>(32 - digits))?;
    multiply(
        &astype(&x, DType::F32)?,
        Array::scalar::<f32>(2f32.powi(-(digits as i32))),
    )
}

/// The largest value of `dtype` below `x` (x finite or infinite, not NaN).
fn next_down(x: f64, dtype: DType) -> f64 {
    fn step64(b: u64, up: bool, sign: u64) -> u64 {
        let mag = b & !sign;
        match (b & sign != 0, up) {
            _ if mag == 0 => {
                if up {
                    1
                } else {
                    sign | 1
                }
            }
            (false, true) | (true, false) => b + 1,
            _ => b - 1,
        }
    }
    let s = |b: u64, sign: u64| step64(b, false, sign);
    match dtype {
        DType::F64 => f64::from_bits(s(x.to_bits(), 1 << 63)),
        DType::F32 => f32::from_bits(s((x as f32).to_bits() as u64, 1 << 31) as u32) as f64,
        DType::F16 => f16::from_bits(s(
            <f16 as crate::dtype::Element>::from_f64(x).to_bits() as u64,
            1 << 15,
        ) as u16)
        .to_f64(),
        DType::BF16 => bf16::from_bits(s(
            <bf16 as crate::dtype::Element>::from_f64(x).to_bits() as u64,
            1 << 15,
        ) as u16)
        .to_f64(),
        _ => x,
    }
}

/// The smallest value of `dtype` above `x`.
fn next_up(x: f64, dtype: DType) -> f64 {
    -next_down(-x, dtype)
}

/// Rounds to `dtype`, then steps down while the result is not below `x`: the largest
/// value of `dtype` strictly below `x`.
fn below(x: f64, dtype: DType) -> f64 {
    let mut r = crate::dispatch_dtype!(dtype, T => T::from_f64(x).to_f64());
    while r >= x {
        r = next_down(r, dtype);
    }
    r
}

/// `low + (high - low) * unit` in the compute dtype of `dtype`, clamped into
/// [low, high) of that compute dtype. Not validated (internal).
fn uniform_in(
    name: &str,
    key: &Array,
    shape: &[usize],
    low: f64,
    high: f64,
    dtype: DType,
) -> Result<Array> {
    let c = compute_dtype(dtype);
    let u = unit(name, key, shape, dtype)?;
    let v = add(
        &multiply(&u, Array::scalar_as(high - low, c))?,
        Array::scalar_as(low, c),
    )?;
    let v = maximum(&v, Array::scalar_as(low, c))?;
    if below(high, c) >= low {
        minimum(&v, Array::scalar_as(below(high, c), c))
    } else {
        Ok(v)
    }
}

fn clamp_in(v: &Array, lo: f64, hi: f64) -> Result<Array> {
    let d = v.dtype();
    minimum(
        &maximum(v, Array::scalar_as(lo, d))?,
        Array::scalar_as(hi, d),
    )
}

/// Uniform samples in [low, high) of `dtype` (a float type).
pub fn uniform(key: &Array, shape: &[usize], low: f64, high: f64, dtype: DType) -> Result<Array> {
    check_float("uniform", dtype)?;
    if !(low.is_finite() && high.is_finite() && low < high) {
        return Err(Error::invalid(
            "uniform",
            format!("low ({low}) and high ({high}) must be finite with low < high"),
        ));
    }
    let v = astype(&uniform_in("uniform", key, shape, low, high, dtype)?, dtype)?;
    // Rounding to a 16-bit float may reach `high`: keep the interval half-open.
    let lo = crate::dispatch_dtype!(dtype, T => T::from_f64(low).to_f64());
    let lo = if lo < low { next_up(lo, dtype) } else { lo };
    let hi = below(high, dtype);
    if hi < lo {
        return Err(Error::invalid(
            "uniform",
            format!("no {dtype} value lies in [{low}, {high})"),
        ));
    }
    clamp_in(&v, lo, hi)
}

/// Normal samples with mean `loc` and standard deviation `scale`: `sqrt(2) * erfinv(u)` for
/// u uniform in (-1, 1), as JAX and MLX.
pub fn normal(key: &Array, shape: &[usize], loc: f64, scale: f64, dtype: DType) -> Result<Array> {
    check_float("normal", dtype)?;
    if !(loc.is_finite() && scale.is_finite()) {
        return Err(Error::invalid(
            "normal",
            format!("loc ({loc}) and scale ({scale}) must be finite"),
        ));
    }
    let c = compute_dtype(dtype);
    let u = uniform_in("normal", key, shape, next_up(-1.0, c), 1.0, c)?;
    let z = multiply(
        &erfinv(&u)?,
        Array::scalar_as(std::f64::consts::SQRT_2 * scale, c),
    )?;
    astype(&add(&z, Array::scalar_as(loc, c))?, dtype)
}

/// Standard normal samples truncated to the open interval (lower, upper) (bounds may be
/// infinite): the inverse CDF of a uniform over [Phi(lower), Phi(upper)], as JAX.
pub fn truncated_normal(
    key: &Array,
    lower: f64,
    upper: f64,
    shape: &[usize],
    dtype: DType,
) -> Result<Array> {
    check_float("truncated_normal", dtype)?;
    if lower.is_nan() || upper.is_nan() || lower >= upper {
        return Err(Error::invalid(
            "truncated_normal",
            format!("lower ({lower}) must be less than upper ({upper})"),
        ));
    }
    let c = compute_dtype(dtype);
    let s2 = std::f64::consts::SQRT_2;
    let (a, b) = (libm::erf(lower / s2), libm::erf(upper / s2));
    let u = uniform_in("truncated_normal", key, shape, a, b, c)?;
    let z = astype(&multiply(&erfinv(&u)?, Array::scalar_as(s2, c))?, dtype)?;
    let lo = next_up(lower, dtype);
    let hi = next_down(upper, dtype);
    clamp_in(&z, lo.min(hi), hi)
}

/// Bool samples, true with probability `p` (an array broadcast to `shape`, or a number).
/// `shape` defaults to `p`'s shape.
pub fn bernoulli(key: &Array, p: impl IntoArray, shape: Option<&[usize]>) -> Result<Array> {
    let p = p.into_array();
    let p = if p.dtype().is_float() {
        p
    } else if p.dtype().is_complex() {
        return Err(Error::invalid(
            "bernoulli",
            format!("p must be real, got {}", p.dtype()),
        ));
    } else {
        astype(&p, DType::F32)?
    };
    let shape = shape.unwrap_or(p.shape()).to_vec();
    if broadcast_shapes("bernoulli", p.shape(), &shape)? != shape {
        return Err(Error::invalid(
            "bernoulli",
            format!(
                "p of shape {} cannot be broadcast to shape {}",
                fmt_shape(p.shape()),
                fmt_shape(&shape)
            ),
        ));
    }
    let dt = if p.dtype() == DType::F64 {
        DType::F64
    } else {
        DType::F32
    };
    let u = unit("bernoulli", key, &shape, dt)?;
    less(&u, &p)
}

/// Gumbel(0, 1) samples: `-log(-log(u))` for u uniform in [tiny, 1).
pub fn gumbel(key: &Array, shape: &[usize], dtype: DType) -> Result<Array> {
    check_float("gumbel", dtype)?;
    let c = compute_dtype(dtype);
    let tiny = if c == DType::F64 {
        f64::MIN_POSITIVE
    } else {
        f32::MIN_POSITIVE as f64
    };
    let u = uniform_in("gumbel", key, shape, tiny, 1.0, c)?;
    astype(&negative(&log(&negative(&log(&u)?)?)?)?, dtype)
}

/// Integers uniform in [low, high) of an integer `dtype`: 64 random bits reduced modulo the
/// span (bias below span / 2^64).
pub fn randint(key: &Array, low: i64, high: i64, shape: &[usize], dtype: DType) -> Result<Array> {
    if !dtype.is_integer() {
        return Err(Error::invalid(
            "randint",
            format!("dtype must be an integer type, got {dtype}"),
        ));
    }
    if low >= high {
        return Err(Error::invalid(
            "randint",
            format!("low ({low}) must be less than high ({high})"),
        ));
    }
    let (min, max): (i128, i128) = crate::dispatch_dtype!(dtype, T => {
        let bits = 8 * std::mem::size_of::<T>() as u32;
        if dtype.is_signed() {
            (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
        } else {
            (0, (1i128 << bits) - 1)
        }
    });
    if (low as i128) < min || (high as i128 - 1) > max {
        return Err(Error::invalid(
            "randint",
            format!("[{low}, {high}) does not fit in {dtype}"),
        ));
    }
    let span = (high as i128 - low as i128) as u64;
    let x = remainder(&bits64("randint", key, shape)?, Array::scalar::<u64>(span))?;
    // Wrapping u64 addition of low, then a wrapping cast: exact for every integer dtype.
    let v = add(&x, Array::scalar::<u64>(low as u64))?;
    astype(&v, dtype)
}

/// What [`permutation`] permutes: a length (`usize`) gives a permutation of 0..n.
pub trait PermutationArg {
    fn permute(self, key: &Array) -> Result<Array>;
}

impl PermutationArg for usize {
    /// Sorting 64-bit random keys: a uniformly random permutation unless two keys collide
    /// (probability below n^2 / 2^65), as JAX's shuffle by sorting.
    fn permute(self, key: &Array) -> Result<Array> {
        let k = bits64("permutation", key, &[self])?;
        argsort(&k, Some(0))
    }
}

/// A random permutation: of 0..n for `n: usize` (int64).
pub fn permutation(key: &Array, x: impl PermutationArg) -> Result<Array> {
    x.permute(key)
}

impl PermutationArg for &Array {
    /// The rows (axis 0) of the array in a random order, as NumPy's `permutation(x)`.
    fn permute(self, key: &Array) -> Result<Array> {
        if self.ndim() == 0 {
            return Err(Error::invalid(
                "permutation",
                "a 0-d array has no axis to permute; pass a length instead",
            ));
        }
        let order = self.shape()[0].permute(key)?;
        crate::ops::take(self, &order, Some(0))
    }
}

/// Samples class indices (int64) from unnormalized log-probabilities `logits` along `axis`,
/// by the Gumbel-max trick: `argmax(logits + gumbel)`. `num_samples` draws independent
/// samples, added as a new leading axis; `None` draws one with no extra axis.
pub fn categorical(
    key: &Array,
    logits: &Array,
    axis: isize,
    num_samples: Option<usize>,
) -> Result<Array> {
    if !logits.dtype().is_float() {
        return Err(Error::invalid(
            "categorical",
            format!(
                "logits must be a float array, got {} {}",
                fmt_shape(logits.shape()),
                logits.dtype()
            ),
        ));
    }
    let ax = crate::shape::normalize_axis("categorical", axis, logits.ndim())?;
    if logits.shape()[ax] == 0 {
        return Err(Error::invalid(
            "categorical",
            format!(
                "axis {axis} of logits {} has no categories",
                fmt_shape(logits.shape())
            ),
        ));
    }
    let mut shape = logits.shape().to_vec();
    let mut ax = ax as isize;
    if let Some(n) = num_samples {
        shape.insert(0, n);
        ax += 1;
    }
    let g = gumbel(key, &shape, logits.dtype())?;
    crate::ops::argmax(&add(&g, logits)?, Some(ax), false)
}
