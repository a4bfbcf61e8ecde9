//! Elementwise kernels: unary math, binary arithmetic and comparisons, select, casts, arange.
//! Each (op, dtype) pair is its own monomorphized loop so that simple arithmetic vectorizes;
//! f16 and bf16 compute in f32.

use super::strided::{fill_output, map1, map2, map3, out_data};
use super::Outs;
use crate::array::{Array, Data};
use crate::dtype::{DType, Element, Kind};
use crate::op::{BinaryOp, Op, UnaryOp};
use crate::{Error, Result};
use half::{bf16, f16};
use num_complex::Complex32;
use num_traits::Float;

pub fn eval(op: &Op, inputs: &[Array], outs: Outs) -> Result<Vec<Data>> {
    let (out_shape, out_dtype) = (&outs[0].0, outs[0].1);
    let d = match op {
        Op::Arange { start, step } => crate::dispatch_dtype!(out_dtype, T => arange::<T>(
            start.to_f64(), step.to_f64(), out_shape[0]
        )?),
        Op::AsType(to) => cast(&inputs[0], *to)?,
        Op::Unary(u) => unary(*u, &inputs[0], out_dtype)?,
        Op::Binary(b) => binary(*b, &inputs[0], &inputs[1], out_shape, out_dtype)?,
        Op::Select => {
            crate::dispatch_dtype!(out_dtype, T => map3::<bool, T, T, T>(
                &inputs[0], &inputs[1], &inputs[2], out_shape, |c, x, y| if c { x } else { y }
            )?)
        }
        _ => return Err(super::not_here(op)),
    };
    Ok(vec![d])
}

fn arange<T: Element>(start: f64, step: f64, n: usize) -> Result<Data> {
    let buf = fill_output::<T>(n, |s, out| {
        for (i, o) in out.iter_mut().enumerate() {
            *o = T::from_f64(start + (s + i) as f64 * step);
        }
    })?;
    Ok(out_data(buf, &[n]))
}

// ---- casts ---------------------------------------------------------------------------------

/// Exact conversions between element types: integers through i128 (wrapping, as NumPy),
/// floats through f64 (saturating to integers), complex through c64.
pub trait Cast: Element {
    fn to_i128(self) -> i128;
    fn from_i128(v: i128) -> Self;
}
macro_rules! cast_int {
    ($($t:ty),*) => {$(
        impl Cast for $t {
            #[inline] fn to_i128(self) -> i128 { self as i128 }
            #[inline] fn from_i128(v: i128) -> Self { v as $t }
        }
    )*};
}
cast_int!(u8, u16, u32, u64, i8, i16, i32, i64);
impl Cast for bool {
    #[inline]
    fn to_i128(self) -> i128 {
        self as i128
    }
    #[inline]
    fn from_i128(v: i128) -> Self {
        v != 0
    }
}
macro_rules! cast_float {
    ($($t:ty),*) => {$(
        impl Cast for $t {
            #[inline] fn to_i128(self) -> i128 { self.to_f64() as i128 }
            #[inline] fn from_i128(v: i128) -> Self { <$t as Element>::from_f64(v as f64) }
        }
    )*};
}
cast_float!(f16, bf16, f32, f64, Complex32);

#[inline]
pub fn cast_elem<A: Cast, B: Cast>(x: A) -> B {
    let (ka, kb) = (A::DTYPE.kind(), B::DTYPE.kind());
    let int_like = |k: Kind| matches!(k, Kind::Bool | Kind::Int | Kind::UInt);
    if int_like(ka) && int_like(kb) {
        B::from_i128(x.to_i128())
    } else if ka == Kind::Complex || kb == Kind::Complex {
        B::from_c64(x.to_c64())
    } else if int_like(ka) && B::DTYPE == DType::F64 {
        B::from_f64(x.to_i128() as f64)
    } else {
        B::from_f64(x.to_f64())
    }
}

macro_rules! dispatch_cast {
    ($dtype:expr, $T:ident => $body:expr) => {
        crate::dispatch_dtype!($dtype, $T => $body)
    };
}

pub fn cast(x: &Array, to: DType) -> Result<Data> {
    dispatch_cast!(x.dtype(), A => dispatch_cast!(to, B => map1::<A, B>(x, cast_elem::<A, B>)))
}

// ---- unary ---------------------------------------------------------------------------------

fn unary(op: UnaryOp, x: &Array, out: DType) -> Result<Data> {
    use UnaryOp::*;
    let dt = x.dtype();
    let bad = || {
        Error::invalid(
            format!("{op:?}").to_lowercase(),
            format!("not supported for dtype {dt}"),
        )
    };
    // Ops whose output dtype differs from the input's, or that work on every dtype.
    match op {
        StopGradient => return super::views::contiguous_copy(x, &x.ready_data()),
        LogicalNot => {
            return crate::dispatch_dtype!(dt, T => map1::<T, bool>(x, |v| v == T::default()))
        }
        IsNan | IsInf | IsFinite | SignBit => {
            return match dt {
                DType::F16 => classify::<f16>(op, x),
                DType::BF16 => classify::<bf16>(op, x),
                DType::F32 => classify::<f32>(op, x),
                DType::F64 => classify::<f64>(op, x),
                DType::C64 => match op {
                    IsNan => map1::<Complex32, bool>(x, |z| z.re.is_nan() || z.im.is_nan()),
                    IsInf => {
                        map1::<Complex32, bool>(x, |z| z.re.is_infinite() || z.im.is_infinite())
                    }
                    IsFinite => {
                        map1::<Complex32, bool>(x, |z| z.re.is_finite() && z.im.is_finite())
                    }
                    _ => Err(bad()),
                },
                _ => crate::dispatch_dtype!(dt, T => match op {
                    IsFinite => map1::<T, bool>(x, |_| true),
                    SignBit => map1::<T, bool>(x, |v| v.to_f64() < 0.0),
                    _ => map1::<T, bool>(x, |_| false),
                }),
            };
        }
        _ => {}
    }
    if dt == DType::C64 {
        return unary_complex(op, x, out).ok_or_else(bad)?;
    }
    match dt {
        DType::F32 if op == UnaryOp::Exp => super::strided::map1_slices::<f32, f32>(x, exp_slice),
        DType::F32 if op == UnaryOp::Tanh => super::strided::map1_slices::<f32, f32>(x, tanh_slice),
        DType::F32 => unary_float::<f32>(op, x).ok_or_else(bad)?,
        DType::F64 => unary_float::<f64>(op, x).ok_or_else(bad)?,
        DType::F16 => unary_float::<f16>(op, x).ok_or_else(bad)?,
        DType::BF16 => unary_float::<bf16>(op, x).ok_or_else(bad)?,
        DType::Bool => match op {
            BitwiseInvert => map1::<bool, bool>(x, |v| !v),
            Abs | Square | Floor | Ceil | Round { .. } | Real | Conj => {
                map1::<bool, bool>(x, |v| v)
            }
            Imag => map1::<bool, bool>(x, |_| false),
            _ => Err(bad()),
        },
        _ => unary_int(op, x).ok_or_else(bad)?,
    }
}

fn classify<T: Element + Float>(op: UnaryOp, x: &Array) -> Result<Data> {
    match op {
        UnaryOp::IsNan => map1::<T, bool>(x, |v| v.is_nan()),
        UnaryOp::IsInf => map1::<T, bool>(x, |v| v.is_infinite()),
        UnaryOp::IsFinite => map1::<T, bool>(x, |v| v.is_finite()),
        _ => map1::<T, bool>(x, |v| v.is_sign_negative()),
    }
}

/// Round half to even at `decimals` places, as NumPy does (scale, round, unscale).
#[inline]
pub(crate) fn round_dec(v: f64, decimals: i32) -> f64 {
    if decimals == 0 {
        return v.round_ties_even();
    }
    let s = 10f64.powi(decimals);
    (v * s).round_ties_even() / s
}

/// `out[i] = e^src[i]`, 8 wide with AVX2 and FMA where the CPU has them.
pub(crate) fn exp_slice(src: &[f32], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // Safety: the CPU has AVX2 and FMA, checked just above.
        return unsafe { exp_slice_avx2(src, out) };
    }
    for (o, &x) in out.iter_mut().zip(src) {
        *o = exp_f32(x);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn exp_slice_avx2(src: &[f32], out: &mut [f32]) {
    for (o, &x) in out.iter_mut().zip(src) {
        *o = exp_f32(x);
    }
}

/// `out[i] = tanh(src[i])`, 8 wide with AVX2 and FMA where the CPU has them.
pub(crate) fn tanh_slice(src: &[f32], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // Safety: the CPU has AVX2 and FMA, checked just above.
        return unsafe { tanh_slice_avx2(src, out) };
    }
    for (o, &x) in out.iter_mut().zip(src) {
        *o = tanh_f32(x);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tanh_slice_avx2(src: &[f32], out: &mut [f32]) {
    for (o, &x) in out.iter_mut().zip(src) {
        *o = tanh_f32(x);
    }
}

/// e^x in f32 without branches, so loops over it vectorize (libm's expf is a call per
/// element, 4x slower than NumPy's SIMD exp). Cody-Waite reduction x = n ln2 + r and a
/// degree-6 polynomial for e^r (Cephes' expf coefficients); within 2 ulp of e^x.
#[inline(always)]
pub(crate) fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 * 2^23: adding it rounds to an integer held in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    // Past these e^x is inf or 0 in f32; clamp keeps NaN as it is.
    let xc = x.clamp(-104.0, 89.0);
    let t = xc * LOG2E + ROUND;
    let n = t - ROUND;
    let r = xc - n * LN2_HI - n * LN2_LO;
    let z = r * r;
    let p = (((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2)
        * r
        + 1.666_666_5e-1)
        * r
        + 5.000_000_1e-1)
        * z
        + r
        + 1.0;
    // 2^n in two halves so that n down to -150 (subnormal results) stays exact.
    // n is an integer in [-150, 129] held in t's low mantissa bits: read it from there, a
    // float-to-int conversion would not vectorize.
    let k = t.to_bits() as i32 - ROUND.to_bits() as i32;
    let k1 = k >> 1;
    let k2 = k - k1;
    let s1 = f32::from_bits(((k1 + 127) as u32) << 23);
    let s2 = f32::from_bits(((k2 + 127) as u32) << 23);
    p * s1 * s2
}

/// Float math the kernels share, with branch-free f32 forms that vectorize.
pub(crate) trait FastMath: Element + Float {
    fn fast_exp(self) -> Self {
        self.exp()
    }
    fn fast_tanh(self) -> Self {
        self.tanh()
    }
    /// GELU's tanh form in f64, rounded once (f32 overrides it with its own f32 steps).
    fn gelu_tanh(self) -> Self {
        via(self, |x| {
            let inner = (x + GELU_CUBIC * (x * x * x)) * GELU_SQRT_2_PI;
            0.5 * x * (1.0 + inner.tanh())
        })
    }
    /// `g * gelu'(x)` (exact GELU) in f64, rounded once: `Phi(x) + x phi(x)`.
    fn gelu_grad(self, g: Self) -> Self {
        Self::from_f64(gelu_grad_f64(self.to_f64(), g.to_f64()))
    }
    /// `g * gelu_tanh'(x)` in f64, rounded once (f32 and the halves override it with f32
    /// steps, as the GPU computes them).
    fn gelu_tanh_grad(self, g: Self) -> Self {
        let (x, g) = (self.to_f64(), g.to_f64());
        let t = ((x + GELU_CUBIC * (x * x * x)) * GELU_SQRT_2_PI).tanh();
        let du = (1.0 + 3.0 * GELU_CUBIC * (x * x)) * (0.5 * GELU_SQRT_2_PI);
        Self::from_f64(g * (0.5 * (1.0 + t) + x * (1.0 - t * t) * du))
    }
}

/// The tanh GELU's constants: sqrt(2/pi) and the cubic's coefficient.
pub(crate) const GELU_SQRT_2_PI: f64 = 0.797_884_560_802_865_4;
pub(crate) const GELU_CUBIC: f64 = 0.044715;

/// Exact GELU in f64: `0.5 x (1 + erf(x / sqrt 2))`.
pub(crate) fn gelu_f64(x: f64) -> f64 {
    0.5 * x * (1.0 + libm::erf(x * std::f64::consts::FRAC_1_SQRT_2))
}
/// `g * (Phi(x) + x phi(x))` in f64, the GPU's `m_gelu_grad`.
pub(crate) fn gelu_grad_f64(x: f64, g: f64) -> f64 {
    let cdf = 0.5 * (1.0 + libm::erf(x * std::f64::consts::FRAC_1_SQRT_2));
    // 1 / sqrt(2 pi)
    let pdf = (-0.5 * x * x).exp() * 0.398_942_280_401_432_7;
    g * (cdf + x * pdf)
}

/// The tanh GELU gradient's f32 constants, written as the GPU's `m_gelu_tanh_grad` writes
/// them: 3 times the cubic's coefficient and half of sqrt(2/pi).
const GELU_CUBIC3_F32: f32 = 0.134145;
const GELU_HALF_SQRT_2_PI_F32: f32 = 0.398_942_28;

impl FastMath for f64 {}
impl FastMath for f16 {
    fn gelu_tanh_grad(self, g: Self) -> Self {
        f16::from_f32(self.to_f32().gelu_tanh_grad(g.to_f32()))
    }
}
impl FastMath for bf16 {
    fn gelu_tanh_grad(self, g: Self) -> Self {
        bf16::from_f32(self.to_f32().gelu_tanh_grad(g.to_f32()))
    }
}
impl FastMath for f32 {
    /// The same f32 steps as the GPU's `m_gelu_tanh_grad`, each rounded, so both give the
    /// same bits: `g (0.5 (1 + t) + x (1 - t^2) 0.5 c (1 + 3 k x^2))`, t = tanh(c (x + k x^3)).
    #[inline(always)]
    fn gelu_tanh_grad(self, g: f32) -> f32 {
        let x = self;
        let x2 = x * x;
        let inner = (x + GELU_CUBIC as f32 * (x2 * x)) * GELU_SQRT_2_PI as f32;
        let t = tanh_f32(inner);
        let du = (1.0 + GELU_CUBIC3_F32 * x2) * GELU_HALF_SQRT_2_PI_F32;
        g * (0.5 * (1.0 + t) + x * (1.0 - t * t) * du)
    }
    #[inline(always)]
    fn fast_exp(self) -> f32 {
        exp_f32(self)
    }
    #[inline(always)]
    fn fast_tanh(self) -> f32 {
        tanh_f32(self)
    }
    /// The same f32 steps as the GPU's `m_gelu_tanh`, each rounded, so both give the same bits.
    #[inline(always)]
    fn gelu_tanh(self) -> f32 {
        let x = self;
        let inner = (x + GELU_CUBIC as f32 * (x * x * x)) * GELU_SQRT_2_PI as f32;
        0.5 * x * (1.0 + tanh_f32(inner))
    }
}

/// tanh in f32 without branches, so loops over it vectorize 8 wide: below |x| = 0.625 the
/// odd polynomial x + x³ P(x²) (Cephes' tanhf coefficients), above it 1 - 2 / (e^2|x| + 1)
/// with `exp_f32`, both computed in f32 and the nearer-to-exact one chosen by a select.
/// Within 1 ulp of the correctly rounded result for every f32 (checked exhaustively).
/// The GPU's `m_tanh` performs the same operations, so both give the same bits; a form in
/// f64 did too, but cost the GPU's fused gelu a fifth of its time. On the CPU this form
/// costs about 1.5 ns an element on one AVX2 core, twice the f64 rational's 0.7 (the
/// exp and the division in every lane): a trade for the GPU, measured in run G11. ±inf gives ±1 and NaN
/// passes through.
#[inline(always)]
pub(crate) fn tanh_f32(x: f32) -> f32 {
    const P: [f32; 5] = [
        -3.333_328e-1,
        1.333_144_2e-1,
        -5.373_971_5e-2,
        2.063_908_8e-2,
        -5.704_988_7e-3,
    ];
    // On |x|, signed at the end: odd by construction, and -0.0 stays -0.0.
    let ax = x.abs();
    let z = ax * ax;
    // Fused multiply-adds: one instruction where the caller is built for FMA (the AVX2
    // paths), a correctly rounded libm call elsewhere, so every path gives the same bits.
    let p = P[4]
        .mul_add(z, P[3])
        .mul_add(z, P[2])
        .mul_add(z, P[1])
        .mul_add(z, P[0]);
    let small = (ax * z).mul_add(p, ax);
    let e = exp_f32(2.0 * ax);
    let big = 1.0 - 2.0 / (e + 1.0);
    (if ax < 0.625 { small } else { big }).copysign(x)
}

/// `f` computed in f64 (for functions the Float trait lacks).
#[inline(always)]
pub(crate) fn via<T: Element>(v: T, f: fn(f64) -> f64) -> T {
    T::from_f64(f(v.to_f64()))
}

/// Binds `$f` to the element function of float unary op `$op` on `$T` and evaluates
/// `$body`, or evaluates `$none` when the op has no float form: one statement of each op's
/// semantics for the elementwise kernels and the fused kernel.
macro_rules! with_float_unary {
    ($op:expr, $T:ty, $f:ident => $body:expr, $none:expr) => {{
        #[allow(unused_imports)]
        use num_traits::Float as _;
        #[allow(unused_imports)]
        use $crate::backend::cpu::elementwise::{erfinv, gelu_f64, round_dec, via, FastMath};
        use $crate::op::UnaryOp::*;
        match $op {
            Abs => {
                let $f = |v: $T| v.abs();
                $body
            }
            Negative => {
                let $f = |v: $T| -v;
                $body
            }
            Sign => {
                let $f = |v: $T| {
                    if v > <$T>::zero() {
                        <$T>::one()
                    } else if v < <$T>::zero() {
                        -<$T>::one()
                    } else if v.is_nan() {
                        v
                    } else {
                        <$T>::zero() // NumPy: sign(-0.0) is +0.0
                    }
                };
                $body
            }
            Exp => {
                let $f = |v: $T| v.fast_exp();
                $body
            }
            Expm1 => {
                let $f = |v: $T| v.exp_m1();
                $body
            }
            Log => {
                let $f = |v: $T| v.ln();
                $body
            }
            Log1p => {
                let $f = |v: $T| v.ln_1p();
                $body
            }
            Log2 => {
                let $f = |v: $T| v.log2();
                $body
            }
            Log10 => {
                let $f = |v: $T| v.log10();
                $body
            }
            Sqrt => {
                let $f = |v: $T| v.sqrt();
                $body
            }
            Rsqrt => {
                let $f = |v: $T| v.sqrt().recip();
                $body
            }
            Square => {
                let $f = |v: $T| v * v;
                $body
            }
            Reciprocal => {
                let $f = |v: $T| v.recip();
                $body
            }
            Sin => {
                let $f = |v: $T| v.sin();
                $body
            }
            Cos => {
                let $f = |v: $T| v.cos();
                $body
            }
            Tan => {
                let $f = |v: $T| v.tan();
                $body
            }
            Arcsin => {
                let $f = |v: $T| v.asin();
                $body
            }
            Arccos => {
                let $f = |v: $T| v.acos();
                $body
            }
            Arctan => {
                let $f = |v: $T| v.atan();
                $body
            }
            Sinh => {
                let $f = |v: $T| v.sinh();
                $body
            }
            Cosh => {
                let $f = |v: $T| v.cosh();
                $body
            }
            Tanh => {
                let $f = |v: $T| v.fast_tanh();
                $body
            }
            Arcsinh => {
                let $f = |v: $T| via(v, f64::asinh);
                $body
            }
            Arccosh => {
                let $f = |v: $T| via(v, f64::acosh);
                $body
            }
            Arctanh => {
                let $f = |v: $T| via(v, f64::atanh);
                $body
            }
            Erf => {
                let $f = |v: $T| via(v, libm::erf);
                $body
            }
            Erfinv => {
                let $f = |v: $T| via(v, erfinv);
                $body
            }
            Floor => {
                let $f = |v: $T| v.floor();
                $body
            }
            Ceil => {
                let $f = |v: $T| v.ceil();
                $body
            }
            Round { decimals } => {
                let $f = move |v: $T| {
                    <$T as $crate::dtype::Element>::from_f64(round_dec(
                        $crate::dtype::Element::to_f64(v),
                        decimals,
                    ))
                };
                $body
            }
            Sigmoid => {
                // Both halves from e^-|v|, selected: no overflow, and the loop vectorizes.
                let $f = |v: $T| {
                    let e = (-v.abs()).fast_exp();
                    let r = <$T>::one() / (<$T>::one() + e);
                    if v >= <$T>::zero() {
                        r
                    } else {
                        e * r
                    }
                };
                $body
            }
            Gelu => {
                let $f = |v: $T| via(v, gelu_f64);
                $body
            }
            GeluTanh => {
                let $f = |v: $T| v.gelu_tanh();
                $body
            }
            Real | Conj => {
                let $f = |v: $T| v;
                $body
            }
            Imag => {
                let $f = |_: $T| <$T>::zero();
                $body
            }
            Angle => {
                let $f = |v: $T| {
                    if v.is_nan() {
                        v
                    } else if v.is_sign_negative() {
                        <$T as $crate::dtype::Element>::from_f64(std::f64::consts::PI)
                    } else {
                        <$T>::zero()
                    }
                };
                $body
            }
            _ => $none,
        }
    }};
}
pub(crate) use with_float_unary;

/// The binary counterpart of [`with_float_unary`].
macro_rules! with_float_binary {
    ($op:expr, $T:ty, $f:ident => $body:expr, $none:expr) => {{
        #[allow(unused_imports)]
        use num_traits::Float as _;
        use $crate::backend::cpu::elementwise::{
            logaddexp, nan_max, nan_min, py_floor_div, py_mod,
        };
        use $crate::op::BinaryOp::*;
        match $op {
            Add => {
                let $f = |x: $T, y: $T| x + y;
                $body
            }
            Subtract => {
                let $f = |x: $T, y: $T| x - y;
                $body
            }
            Multiply => {
                let $f = |x: $T, y: $T| x * y;
                $body
            }
            Divide => {
                let $f = |x: $T, y: $T| x / y;
                $body
            }
            FloorDivide => {
                let $f = py_floor_div::<$T>;
                $body
            }
            Remainder => {
                let $f = py_mod::<$T>;
                $body
            }
            Power => {
                let $f = |x: $T, y: $T| x.powf(y);
                $body
            }
            Maximum => {
                let $f = nan_max::<$T>;
                $body
            }
            Minimum => {
                let $f = nan_min::<$T>;
                $body
            }
            Arctan2 => {
                let $f = |x: $T, y: $T| x.atan2(y);
                $body
            }
            LogAddExp => {
                let $f = logaddexp::<$T>;
                $body
            }
            GeluGrad => {
                let $f =
                    |x: $T, g: $T| $crate::backend::cpu::elementwise::FastMath::gelu_grad(x, g);
                $body
            }
            GeluTanhGrad => {
                let $f = |x: $T, g: $T| {
                    $crate::backend::cpu::elementwise::FastMath::gelu_tanh_grad(x, g)
                };
                $body
            }
            _ => $none,
        }
    }};
}
pub(crate) use with_float_binary;

fn unary_float<T: FastMath>(op: UnaryOp, x: &Array) -> Option<Result<Data>> {
    Some(with_float_unary!(op, T, f => map1::<T, T>(x, f), return None))
}

fn unary_int(op: UnaryOp, x: &Array) -> Option<Result<Data>> {
    use UnaryOp::*;
    macro_rules! int_ops {
        ($T:ty, signed: $signed:expr) => {
            Some(match op {
                Abs => map1::<$T, $T>(x, |v| {
                    if $signed && v.to_f64() < 0.0 {
                        (0 as $T).wrapping_sub(v)
                    } else {
                        v
                    }
                }),
                Negative => map1::<$T, $T>(x, |v| (0 as $T).wrapping_sub(v)),
                Sign => map1::<$T, $T>(x, |v| {
                    if v > 0 as $T {
                        1 as $T
                    } else if v == 0 as $T {
                        0 as $T
                    } else {
                        (0 as $T).wrapping_sub(1)
                    }
                }),
                Square => map1::<$T, $T>(x, |v| v.wrapping_mul(v)),
                BitwiseInvert => map1::<$T, $T>(x, |v| !v),
                Floor | Ceil | Real | Conj => map1::<$T, $T>(x, |v| v),
                Round { decimals } => {
                    if decimals >= 0 {
                        map1::<$T, $T>(x, |v| v)
                    } else {
                        map1::<$T, $T>(x, move |v| {
                            <$T as Element>::from_f64(round_dec(v.to_f64(), decimals))
                        })
                    }
                }
                Imag => map1::<$T, $T>(x, |_| 0 as $T),
                _ => return None,
            })
        };
    }
    match x.dtype() {
        DType::U8 => int_ops!(u8, signed: false),
        DType::U16 => int_ops!(u16, signed: false),
        DType::U32 => int_ops!(u32, signed: false),
        DType::U64 => int_ops!(u64, signed: false),
        DType::I8 => int_ops!(i8, signed: true),
        DType::I16 => int_ops!(i16, signed: true),
        DType::I32 => int_ops!(i32, signed: true),
        DType::I64 => int_ops!(i64, signed: true),
        _ => None,
    }
}

fn unary_complex(op: UnaryOp, x: &Array, out: DType) -> Option<Result<Data>> {
    use UnaryOp::*;
    type C = Complex32;
    if out == DType::F32 {
        return Some(match op {
            Abs => map1::<C, f32>(x, |z| z.norm()),
            Real => map1::<C, f32>(x, |z| z.re),
            Imag => map1::<C, f32>(x, |z| z.im),
            Angle => map1::<C, f32>(x, |z| z.arg()),
            _ => return None,
        });
    }
    Some(match op {
        Negative => map1::<C, C>(x, |z| -z),
        Sign => map1::<C, C>(x, |z| {
            let n = z.norm();
            if n == 0.0 {
                C::new(0.0, 0.0)
            } else {
                z / n
            }
        }),
        Exp => map1::<C, C>(x, |z| z.exp()),
        Expm1 => map1::<C, C>(x, |z| z.exp() - 1.0),
        Log => map1::<C, C>(x, |z| z.ln()),
        Log1p => map1::<C, C>(x, |z| (z + 1.0).ln()),
        Log2 => map1::<C, C>(x, |z| z.ln() / std::f32::consts::LN_2),
        Log10 => map1::<C, C>(x, |z| z.ln() / std::f32::consts::LN_10),
        Sqrt => map1::<C, C>(x, |z| z.sqrt()),
        Rsqrt => map1::<C, C>(x, |z| z.sqrt().inv()),
        Square => map1::<C, C>(x, |z| z * z),
        Reciprocal => map1::<C, C>(x, |z| z.inv()),
        Sin => map1::<C, C>(x, |z| z.sin()),
        Cos => map1::<C, C>(x, |z| z.cos()),
        Tan => map1::<C, C>(x, |z| z.tan()),
        Arcsin => map1::<C, C>(x, |z| z.asin()),
        Arccos => map1::<C, C>(x, |z| z.acos()),
        Arctan => map1::<C, C>(x, |z| z.atan()),
        Sinh => map1::<C, C>(x, |z| z.sinh()),
        Cosh => map1::<C, C>(x, |z| z.cosh()),
        Tanh => map1::<C, C>(x, |z| z.tanh()),
        Arcsinh => map1::<C, C>(x, |z| z.asinh()),
        Arccosh => map1::<C, C>(x, |z| z.acosh()),
        Arctanh => map1::<C, C>(x, |z| z.atanh()),
        Conj => map1::<C, C>(x, |z| z.conj()),
        Real => map1::<C, C>(x, |z| C::new(z.re, 0.0)),
        Imag => map1::<C, C>(x, |z| C::new(z.im, 0.0)),
        _ => return None,
    })
}

/// Inverse error function: a rational first guess refined by Newton steps on `erf`.
pub fn erfinv(y: f64) -> f64 {
    if y.is_nan() || !(-1.0..=1.0).contains(&y) {
        return f64::NAN;
    }
    if y == 1.0 {
        return f64::INFINITY;
    }
    if y == -1.0 {
        return f64::NEG_INFINITY;
    }
    // Giles (2010), "Approximating the erfinv function", single-precision branch.
    let w = -((1.0 - y) * (1.0 + y)).ln();
    let mut x = if w < 5.0 {
        let w = w - 2.5;
        let mut p = 2.81022636e-08;
        for c in [
            3.43273939e-07,
            -3.5233877e-06,
            -4.39150654e-06,
            0.00021858087,
            -0.00125372503,
            -0.00417768164,
            0.246640727,
            1.50140941,
        ] {
            p = c + p * w;
        }
        p * y
    } else {
        let w = w.sqrt() - 3.0;
        let mut p = -0.000200214257;
        for c in [
            0.000100950558,
            0.00134934322,
            -0.00367342844,
            0.00573950773,
            -0.0076224613,
            0.00943887047,
            1.00167406,
            2.83297682,
        ] {
            p = c + p * w;
        }
        p * y
    };
    let k = 2.0 / std::f64::consts::PI.sqrt();
    for _ in 0..3 {
        let err = libm::erf(x) - y;
        let d = k * (-x * x).exp();
        if d == 0.0 {
            break;
        }
        x -= err / d;
    }
    x
}

// ---- binary --------------------------------------------------------------------------------

fn binary(op: BinaryOp, a: &Array, b: &Array, shape: &[usize], out: DType) -> Result<Data> {
    use BinaryOp::*;
    let dt = a.dtype();
    let bad = || {
        Error::invalid(
            format!("{op:?}").to_lowercase(),
            format!("not supported for dtype {dt}"),
        )
    };
    // Comparisons and logic work on every dtype.
    if op.returns_bool() {
        return compare(op, a, b, shape).ok_or_else(bad)?;
    }
    let _ = out;
    match dt {
        DType::F32 => binary_float::<f32>(op, a, b, shape).ok_or_else(bad)?,
        DType::F64 => binary_float::<f64>(op, a, b, shape).ok_or_else(bad)?,
        DType::F16 => binary_float::<f16>(op, a, b, shape).ok_or_else(bad)?,
        DType::BF16 => binary_float::<bf16>(op, a, b, shape).ok_or_else(bad)?,
        DType::C64 => binary_complex(op, a, b, shape).ok_or_else(bad)?,
        DType::Bool => match op {
            Add | Maximum | BitwiseOr => map2::<bool, bool, bool>(a, b, shape, |x, y| x | y),
            Multiply | Minimum | BitwiseAnd => map2::<bool, bool, bool>(a, b, shape, |x, y| x & y),
            BitwiseXor => map2::<bool, bool, bool>(a, b, shape, |x, y| x ^ y),
            _ => Err(bad()),
        },
        _ => binary_int(op, a, b, shape).ok_or_else(bad)?,
    }
}

fn compare(op: BinaryOp, a: &Array, b: &Array, shape: &[usize]) -> Option<Result<Data>> {
    use BinaryOp::*;
    if a.dtype() == DType::C64 {
        type C = Complex32;
        let key = |z: C| (z.re, z.im);
        return Some(match op {
            Equal => map2::<C, C, bool>(a, b, shape, |x, y| x == y),
            NotEqual => map2::<C, C, bool>(a, b, shape, |x, y| x != y),
            Less => map2::<C, C, bool>(a, b, shape, move |x, y| key(x) < key(y)),
            LessEqual => map2::<C, C, bool>(a, b, shape, move |x, y| key(x) <= key(y)),
            Greater => map2::<C, C, bool>(a, b, shape, move |x, y| key(x) > key(y)),
            GreaterEqual => map2::<C, C, bool>(a, b, shape, move |x, y| key(x) >= key(y)),
            LogicalAnd => {
                map2::<C, C, bool>(a, b, shape, |x, y| x != C::default() && y != C::default())
            }
            LogicalOr => {
                map2::<C, C, bool>(a, b, shape, |x, y| x != C::default() || y != C::default())
            }
            LogicalXor => map2::<C, C, bool>(a, b, shape, |x, y| {
                (x != C::default()) ^ (y != C::default())
            }),
            _ => return None,
        });
    }
    macro_rules! cmp {
        ($T:ty) => {{
            let z = <$T>::default();
            Some(match op {
                Equal => map2::<$T, $T, bool>(a, b, shape, |x, y| x == y),
                NotEqual => map2::<$T, $T, bool>(a, b, shape, |x, y| x != y),
                Less => map2::<$T, $T, bool>(a, b, shape, |x, y| x < y),
                LessEqual => map2::<$T, $T, bool>(a, b, shape, |x, y| x <= y),
                Greater => map2::<$T, $T, bool>(a, b, shape, |x, y| x > y),
                GreaterEqual => map2::<$T, $T, bool>(a, b, shape, |x, y| x >= y),
                LogicalAnd => map2::<$T, $T, bool>(a, b, shape, move |x, y| x != z && y != z),
                LogicalOr => map2::<$T, $T, bool>(a, b, shape, move |x, y| x != z || y != z),
                LogicalXor => map2::<$T, $T, bool>(a, b, shape, move |x, y| (x != z) ^ (y != z)),
                _ => return None,
            })
        }};
    }
    match a.dtype() {
        DType::Bool => cmp!(bool),
        DType::U8 => cmp!(u8),
        DType::U16 => cmp!(u16),
        DType::U32 => cmp!(u32),
        DType::U64 => cmp!(u64),
        DType::I8 => cmp!(i8),
        DType::I16 => cmp!(i16),
        DType::I32 => cmp!(i32),
        DType::I64 => cmp!(i64),
        DType::F16 => cmp!(f16),
        DType::BF16 => cmp!(bf16),
        DType::F32 => cmp!(f32),
        DType::F64 => cmp!(f64),
        DType::C64 => None,
    }
}

#[inline]
pub(crate) fn nan_max<T: Float>(x: T, y: T) -> T {
    if x.is_nan() || y.is_nan() {
        T::nan()
    } else if x >= y {
        x
    } else {
        y
    }
}
#[inline]
pub(crate) fn nan_min<T: Float>(x: T, y: T) -> T {
    if x.is_nan() || y.is_nan() {
        T::nan()
    } else if x <= y {
        x
    } else {
        y
    }
}

/// Python's modulo: the result has the divisor's sign.
#[inline]
pub(crate) fn py_mod<T: Float>(x: T, y: T) -> T {
    let r = x % y;
    if r != T::zero() && ((r < T::zero()) != (y < T::zero())) {
        r + y
    } else if r == T::zero() {
        // zero takes the sign of the divisor, as NumPy does
        if y < T::zero() {
            -T::zero()
        } else {
            T::zero()
        }
    } else {
        r
    }
}

#[inline]
pub(crate) fn py_floor_div<T: Float>(x: T, y: T) -> T {
    if y == T::zero() {
        return x / y;
    }
    let m = py_mod(x, y);
    let d = (x - m) / y;
    // (x - m) / y is an integer up to rounding; snap it.
    let f = d.floor();
    let q = if d - f > T::from(0.5).unwrap() {
        f + T::one()
    } else {
        f
    };
    // A zero quotient takes the sign of x / y, as NumPy's divmod does.
    if q == T::zero() {
        (x / y).signum() * T::zero()
    } else {
        q
    }
}

#[inline]
pub(crate) fn logaddexp<T: Float>(x: T, y: T) -> T {
    if x == y {
        // also covers both infinite with the same sign
        return x + T::from(std::f64::consts::LN_2).unwrap();
    }
    let m = nan_max(x, y);
    if m.is_nan() {
        return m;
    }
    let d = (x - y).abs();
    m + (-d).exp().ln_1p()
}

fn binary_float<T: FastMath>(
    op: BinaryOp,
    a: &Array,
    b: &Array,
    s: &[usize],
) -> Option<Result<Data>> {
    Some(with_float_binary!(op, T, f => map2::<T, T, T>(a, b, s, f), return None))
}

fn binary_complex(op: BinaryOp, a: &Array, b: &Array, s: &[usize]) -> Option<Result<Data>> {
    use BinaryOp::*;
    type C = Complex32;
    Some(match op {
        Add => map2::<C, C, C>(a, b, s, |x, y| x + y),
        Subtract => map2::<C, C, C>(a, b, s, |x, y| x - y),
        Multiply => map2::<C, C, C>(a, b, s, |x, y| x * y),
        Divide => map2::<C, C, C>(a, b, s, |x, y| x / y),
        Power => map2::<C, C, C>(a, b, s, |x, y| {
            if y == C::new(0.0, 0.0) {
                C::new(1.0, 0.0)
            } else if x == C::new(0.0, 0.0) {
                C::new(0.0, 0.0)
            } else {
                x.powc(y)
            }
        }),
        _ => return None,
    })
}

fn binary_int(op: BinaryOp, a: &Array, b: &Array, s: &[usize]) -> Option<Result<Data>> {
    use BinaryOp::*;
    macro_rules! int_ops {
        ($T:ty) => {{
            const BITS: u32 = <$T>::BITS;
            Some(match op {
                Add => map2::<$T, $T, $T>(a, b, s, |x, y| x.wrapping_add(y)),
                Subtract => map2::<$T, $T, $T>(a, b, s, |x, y| x.wrapping_sub(y)),
                Multiply => map2::<$T, $T, $T>(a, b, s, |x, y| x.wrapping_mul(y)),
                // Division by zero gives 0, as NumPy does (with a warning there).
                FloorDivide => map2::<$T, $T, $T>(a, b, s, |x, y| {
                    if y == 0 {
                        return 0;
                    }
                    let q = x.wrapping_div(y);
                    if (x.wrapping_rem(y) != 0) && ((x < 0 as $T) != (y < 0 as $T)) {
                        q.wrapping_sub(1)
                    } else {
                        q
                    }
                }),
                Remainder => map2::<$T, $T, $T>(a, b, s, |x, y| {
                    if y == 0 {
                        return 0;
                    }
                    let r = x.wrapping_rem(y);
                    if r != 0 && ((r < 0 as $T) != (y < 0 as $T)) {
                        r.wrapping_add(y)
                    } else {
                        r
                    }
                }),
                Power => map2::<$T, $T, $T>(a, b, s, |x, y| {
                    #[allow(unused_comparisons)]
                    if y < 0 as $T {
                        // Integers to negative powers: only 1 and -1 have integer results.
                        return if x == 1 {
                            1
                        } else if x == (0 as $T).wrapping_sub(1) {
                            if y.wrapping_rem(2) == 0 {
                                1
                            } else {
                                x
                            }
                        } else {
                            0
                        };
                    }
                    let (mut base, mut e, mut acc) = (x, y, 1 as $T);
                    while e > 0 {
                        if e & 1 == 1 {
                            acc = acc.wrapping_mul(base);
                        }
                        base = base.wrapping_mul(base);
                        e >>= 1;
                    }
                    acc
                }),
                Maximum => map2::<$T, $T, $T>(a, b, s, |x, y| if x >= y { x } else { y }),
                Minimum => map2::<$T, $T, $T>(a, b, s, |x, y| if x <= y { x } else { y }),
                BitwiseAnd => map2::<$T, $T, $T>(a, b, s, |x, y| x & y),
                BitwiseOr => map2::<$T, $T, $T>(a, b, s, |x, y| x | y),
                BitwiseXor => map2::<$T, $T, $T>(a, b, s, |x, y| x ^ y),
                LeftShift => map2::<$T, $T, $T>(a, b, s, |x, y| {
                    #[allow(unused_comparisons)]
                    if y < 0 as $T || (y as u128) >= BITS as u128 {
                        0
                    } else {
                        x << (y as u32)
                    }
                }),
                RightShift => map2::<$T, $T, $T>(a, b, s, |x, y| {
                    #[allow(unused_comparisons)]
                    if y < 0 as $T || (y as u128) >= BITS as u128 {
                        if x < 0 as $T {
                            (0 as $T).wrapping_sub(1)
                        } else {
                            0
                        }
                    } else {
                        x >> (y as u32)
                    }
                }),
                _ => return None,
            })
        }};
    }
    match a.dtype() {
        DType::U8 => int_ops!(u8),
        DType::U16 => int_ops!(u16),
        DType::U32 => int_ops!(u32),
        DType::U64 => int_ops!(u64),
        DType::I8 => int_ops!(i8),
        DType::I16 => int_ops!(i16),
        DType::I32 => int_ops!(i32),
        DType::I64 => int_ops!(i64),
        _ => None,
    }
}
