//! Activation functions, as functions on arrays and as parameter-free modules
//! ([`Activation`]) for [`crate::Sequential`], plus the [`PRelu`] layer.
//!
//! Every function is built from ingot ops, so it differentiates and runs wherever those ops
//! do. The output has the input's dtype: f16 and bf16 inputs are computed in f32 where the
//! function is transcendental (so `softplus` of a half does not overflow in `exp`) and cast
//! back. Integer and bool inputs are computed as f32 (as ingot's float math does); complex
//! inputs are refused.
//!
//! Piecewise functions take PyTorch's derivative at the kinks (`relu'(0) = 0`) and let NaN
//! through (`relu(NaN)` is NaN).

use crate::module::{Module, Param, Unary};
use ingot::{Array, DType, Error, Result};

/// SELU's constants (Klambauer et al. 2017), as PyTorch.
pub const SELU_ALPHA: f64 = 1.673_263_242_354_377_3;
pub const SELU_SCALE: f64 = 1.050_700_987_355_480_5;

/// The dtype to compute in and the dtype to return. `upcast`: compute halves in f32.
fn prepare(name: &str, x: &Array, upcast: bool) -> Result<(Array, DType)> {
    let dt = x.dtype();
    if dt.is_complex() {
        return Err(Error::invalid(
            name,
            format!(
                "complex input ({:?} {dt}) is not supported; activations are real functions",
                x.shape()
            ),
        ));
    }
    if !dt.is_float() {
        return Ok((ingot::astype(x, DType::F32)?, DType::F32));
    }
    if upcast && matches!(dt, DType::F16 | DType::BF16) {
        return Ok((ingot::astype(x, DType::F32)?, dt));
    }
    Ok((x.clone(), dt))
}

/// Runs `f` on `x` in its compute dtype and casts the result back to the output dtype.
fn apply(
    name: &str,
    x: &Array,
    upcast: bool,
    f: impl FnOnce(&Array) -> Result<Array>,
) -> Result<Array> {
    let (x, out) = prepare(name, x, upcast)?;
    let y = f(&x)?;
    if y.dtype() == out {
        Ok(y)
    } else {
        ingot::astype(&y, out)
    }
}

fn check_finite(name: &str, what: &str, v: f64) -> Result<()> {
    if v.is_finite() {
        Ok(())
    } else {
        Err(Error::invalid(
            name,
            format!("{what} must be finite, got {v}"),
        ))
    }
}

/// `max(x, 0)` with gradient 0 at 0 and NaN kept (`where` rather than `maximum`, whose
/// gradient splits ties).
fn pos_part(x: &Array) -> Result<Array> {
    ingot::where_(&ingot::less_equal(x, 0.0)?, 0.0, x)
}

/// `min(x, 0)` with the full gradient at 0 and NaN kept; used inside `exp` so the branch a
/// `where` discards cannot overflow and poison the gradient with `0 * inf`.
fn neg_part(x: &Array) -> Result<Array> {
    ingot::where_(&ingot::greater(x, 0.0)?, 0.0, x)
}

/// `log(1 + exp(x))` without overflow; its gradient is `sigmoid(x)` everywhere.
fn softplus_raw(x: &Array) -> Result<Array> {
    ingot::logaddexp(x, 0.0)
}

/// `max(x, 0)`.
pub fn relu(x: &Array) -> Result<Array> {
    apply("relu", x, false, pos_part)
}

/// `min(max(x, 0), 6)`.
pub fn relu6(x: &Array) -> Result<Array> {
    hardtanh_impl("relu6", x, 0.0, 6.0)
}

/// `x` for `x > 0`, else `slope * x`.
pub fn leaky_relu(x: &Array, slope: f64) -> Result<Array> {
    check_finite("leaky_relu", "slope", slope)?;
    apply("leaky_relu", x, false, |x| {
        ingot::where_(&ingot::greater(x, 0.0)?, x, &ingot::multiply(x, slope)?)
    })
}

/// `x` for `x > 0`, else `weight * x`, with `weight` a scalar, `(1,)` or `(C,)` broadcast
/// over the last (channel) axis: channels-last, where PyTorch uses axis 1. The weight is cast
/// to the input's dtype (gradients flow back through the cast).
pub fn prelu(x: &Array, weight: &Array) -> Result<Array> {
    let c = x.shape().last().copied();
    let ok = match weight.shape() {
        [] => true,
        [n] => *n == 1 || Some(*n) == c,
        _ => false,
    };
    if !ok || !weight.dtype().is_float() {
        return Err(Error::invalid(
            "prelu",
            format!(
                "weight must be a float scalar, (1,) or (C,) for input (..., C); got weight {:?} {} for input {:?} {}",
                weight.shape(),
                weight.dtype(),
                x.shape(),
                x.dtype()
            ),
        ));
    }
    apply("prelu", x, false, |x| {
        let w = if weight.dtype() == x.dtype() {
            weight.clone()
        } else {
            ingot::astype(weight, x.dtype())?
        };
        ingot::where_(&ingot::greater(x, 0.0)?, x, &ingot::multiply(x, &w)?)
    })
}

/// `x` for `x > 0`, else `alpha * (exp(x) - 1)`.
pub fn elu(x: &Array, alpha: f64) -> Result<Array> {
    check_finite("elu", "alpha", alpha)?;
    apply("elu", x, true, |x| elu_f(x, alpha))
}

fn elu_f(x: &Array, alpha: f64) -> Result<Array> {
    let neg = ingot::multiply(&ingot::expm1(&neg_part(x)?)?, alpha)?;
    ingot::where_(&ingot::greater(x, 0.0)?, x, &neg)
}

/// `scale * elu(x, alpha)` with SELU's fixed constants.
pub fn selu(x: &Array) -> Result<Array> {
    apply("selu", x, true, |x| {
        ingot::multiply(&elu_f(x, SELU_ALPHA)?, SELU_SCALE)
    })
}

/// `max(0, x) + min(0, alpha * (exp(x / alpha) - 1))`; `alpha` must be nonzero.
pub fn celu(x: &Array, alpha: f64) -> Result<Array> {
    check_finite("celu", "alpha", alpha)?;
    if alpha == 0.0 {
        return Err(Error::invalid("celu", "alpha must be nonzero, got 0"));
    }
    apply("celu", x, true, |x| {
        let inner = ingot::divide(&neg_part(x)?, alpha)?;
        let neg = ingot::multiply(&ingot::expm1(&inner)?, alpha)?;
        ingot::where_(&ingot::greater(x, 0.0)?, x, &neg)
    })
}

/// Exact GELU: `x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2))`. One node ([`ingot::gelu`]):
/// halves compute in f32 inside it, and its gradient keeps x alone.
pub fn gelu(x: &Array) -> Result<Array> {
    apply("gelu", x, false, ingot::gelu)
}

/// GELU's tanh approximation: `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))` (PyTorch's
/// `approximate="tanh"`). One node ([`ingot::gelu_tanh`]), as [`gelu`].
pub fn gelu_tanh(x: &Array) -> Result<Array> {
    apply("gelu_tanh", x, false, ingot::gelu_tanh)
}

/// `x * sigmoid(x)` (swish).
pub fn silu(x: &Array) -> Result<Array> {
    apply("silu", x, true, |x| ingot::multiply(x, &ingot::sigmoid(x)?))
}

/// `x * tanh(softplus(x))`.
pub fn mish(x: &Array) -> Result<Array> {
    apply("mish", x, true, |x| {
        ingot::multiply(x, &ingot::tanh(&softplus_raw(x)?)?)
    })
}

/// `log(1 + exp(beta x)) / beta`, and `x` itself where `beta x > threshold` (PyTorch's
/// `Softplus(beta, threshold)`; its defaults are 1 and 20). `beta` must be finite and nonzero.
pub fn softplus(x: &Array, beta: f64, threshold: f64) -> Result<Array> {
    check_finite("softplus", "beta", beta)?;
    if beta == 0.0 || threshold.is_nan() {
        return Err(Error::invalid(
            "softplus",
            format!("beta must be nonzero and threshold a number, got beta {beta}, threshold {threshold}"),
        ));
    }
    apply("softplus", x, true, |x| {
        let bx = ingot::multiply(x, beta)?;
        let soft = ingot::divide(&softplus_raw(&bx)?, beta)?;
        ingot::where_(&ingot::greater(&bx, threshold)?, x, &soft)
    })
}

/// `x / (1 + |x|)`.
pub fn softsign(x: &Array) -> Result<Array> {
    apply("softsign", x, false, |x| {
        ingot::divide(x, &ingot::add(&ingot::abs(x)?, 1.0)?)
    })
}

fn check_lambda(name: &str, lambda: f64) -> Result<()> {
    if lambda.is_finite() && lambda >= 0.0 {
        Ok(())
    } else {
        Err(Error::invalid(
            name,
            format!("lambda must be finite and >= 0, got {lambda}"),
        ))
    }
}

/// `x - lambda` above `lambda`, `x + lambda` below `-lambda`, else 0 (`lambda >= 0`).
pub fn softshrink(x: &Array, lambda: f64) -> Result<Array> {
    check_lambda("softshrink", lambda)?;
    apply("softshrink", x, false, |x| {
        let shrunk = ingot::subtract(x, &ingot::multiply(&ingot::sign(x)?, lambda)?)?;
        ingot::where_(&ingot::less_equal(&ingot::abs(x)?, lambda)?, 0.0, &shrunk)
    })
}

/// `x` where `|x| > lambda`, else 0 (`lambda >= 0`).
pub fn hardshrink(x: &Array, lambda: f64) -> Result<Array> {
    check_lambda("hardshrink", lambda)?;
    apply("hardshrink", x, false, |x| {
        ingot::where_(&ingot::less_equal(&ingot::abs(x)?, lambda)?, 0.0, x)
    })
}

/// `x` clamped to `[min, max]` (`min <= max`), gradient 0 outside the open interval.
pub fn hardtanh(x: &Array, min: f64, max: f64) -> Result<Array> {
    hardtanh_impl("hardtanh", x, min, max)
}

fn hardtanh_impl(name: &str, x: &Array, min: f64, max: f64) -> Result<Array> {
    if min.is_nan() || max.is_nan() || min > max {
        return Err(Error::invalid(
            name,
            format!("need min <= max, got min {min}, max {max}"),
        ));
    }
    apply(name, x, false, |x| hardtanh_f(x, min, max))
}

fn hardtanh_f(x: &Array, min: f64, max: f64) -> Result<Array> {
    let upper = ingot::where_(&ingot::greater_equal(x, max)?, max, x)?;
    ingot::where_(&ingot::less_equal(x, min)?, min, &upper)
}

/// `relu6(x + 3) / 6` (PyTorch's `Hardsigmoid`).
pub fn hard_sigmoid(x: &Array) -> Result<Array> {
    apply("hard_sigmoid", x, false, hard_sigmoid_f)
}

fn hard_sigmoid_f(x: &Array) -> Result<Array> {
    ingot::divide(&hardtanh_f(&ingot::add(x, 3.0)?, 0.0, 6.0)?, 6.0)
}

/// `x * relu6(x + 3) / 6` (PyTorch's `Hardswish`).
pub fn hard_swish(x: &Array) -> Result<Array> {
    apply("hard_swish", x, false, |x| {
        ingot::multiply(x, &hard_sigmoid_f(x)?)
    })
}

/// `1 / (1 + exp(-x))`.
pub fn sigmoid(x: &Array) -> Result<Array> {
    apply("sigmoid", x, true, ingot::sigmoid)
}

/// `log(sigmoid(x)) = -softplus(-x)`, stable for large `|x|`.
pub fn log_sigmoid(x: &Array) -> Result<Array> {
    apply("log_sigmoid", x, true, |x| {
        ingot::negative(&softplus_raw(&ingot::negative(x)?)?)
    })
}

/// Hyperbolic tangent.
pub fn tanh(x: &Array) -> Result<Array> {
    apply("tanh", x, true, ingot::tanh)
}

/// Gated linear unit: splits `x` in two halves `a, b` along `axis` and returns
/// `a * sigmoid(b)`. The axis must have an even length.
pub fn glu(x: &Array, axis: isize) -> Result<Array> {
    let nd = x.ndim() as isize;
    let ax = if axis < 0 { axis + nd } else { axis };
    if ax < 0 || ax >= nd {
        return Err(Error::invalid(
            "glu",
            format!("axis {axis} is out of range for input {:?}", x.shape()),
        ));
    }
    let n = x.shape()[ax as usize];
    if n % 2 != 0 {
        return Err(Error::invalid(
            "glu",
            format!(
                "axis {axis} of input {:?} has odd length {n}; it must split in halves",
                x.shape()
            ),
        ));
    }
    apply("glu", x, true, |x| {
        let half = (n / 2) as isize;
        let a = ingot::slice_axis(x, ax, ingot::SliceArg::range(0, half))?;
        let b = ingot::slice_axis(x, ax, ingot::SliceArg::range(half, 2 * half))?;
        ingot::multiply(&a, &ingot::sigmoid(&b)?)
    })
}

/// 1 where `x > 0`, else 0 (NaN gives 0), in the input's dtype, as MLX's `step`. Its
/// gradient is 0.
pub fn step(x: &Array) -> Result<Array> {
    apply("step", x, false, |x| {
        ingot::where_(&ingot::greater(x, 0.0)?, 1.0, 0.0).and_then(|y| ingot::astype(&y, x.dtype()))
    })
}

/// An activation as a module without parameters, for [`crate::Sequential`]:
/// `Sequential::new().push(linear).push(Activation::Relu)`. Scalar parameters ride in the
/// variant (`Activation::LeakyRelu(0.01)`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    Identity,
    Relu,
    Relu6,
    LeakyRelu(f64),
    Elu(f64),
    Selu,
    Celu(f64),
    Gelu,
    GeluTanh,
    Silu,
    Mish,
    Softplus {
        beta: f64,
        threshold: f64,
    },
    Softsign,
    Softshrink(f64),
    Hardshrink(f64),
    Hardtanh {
        min: f64,
        max: f64,
    },
    HardSwish,
    HardSigmoid,
    Sigmoid,
    LogSigmoid,
    Tanh,
    /// Gated linear unit along the given axis.
    Glu(isize),
    Step,
    /// Softmax along the given axis.
    Softmax(isize),
    /// Log-softmax along the given axis.
    LogSoftmax(isize),
}

impl Activation {
    /// PyTorch's `Softplus()` defaults (beta 1, threshold 20).
    pub const SOFTPLUS: Activation = Activation::Softplus {
        beta: 1.0,
        threshold: 20.0,
    };

    /// Applies the activation.
    pub fn apply(&self, x: &Array) -> Result<Array> {
        use Activation::*;
        match *self {
            Identity => Ok(x.clone()),
            Relu => relu(x),
            Relu6 => relu6(x),
            LeakyRelu(s) => leaky_relu(x, s),
            Elu(a) => elu(x, a),
            Selu => selu(x),
            Celu(a) => celu(x, a),
            Gelu => gelu(x),
            GeluTanh => gelu_tanh(x),
            Silu => silu(x),
            Mish => mish(x),
            Softplus { beta, threshold } => softplus(x, beta, threshold),
            Softsign => softsign(x),
            Softshrink(l) => softshrink(x, l),
            Hardshrink(l) => hardshrink(x, l),
            Hardtanh { min, max } => hardtanh(x, min, max),
            HardSwish => hard_swish(x),
            HardSigmoid => hard_sigmoid(x),
            Sigmoid => sigmoid(x),
            LogSigmoid => log_sigmoid(x),
            Tanh => tanh(x),
            Glu(axis) => glu(x, axis),
            Step => step(x),
            Softmax(axis) => apply("softmax", x, true, |x| ingot::softmax(x, axis)),
            LogSoftmax(axis) => apply("log_softmax", x, true, |x| ingot::log_softmax(x, axis)),
        }
    }
}

impl Module for Activation {
    fn visit(&self, _f: &mut dyn FnMut(&str, &Param)) {}
    fn visit_mut(&mut self, _f: &mut dyn FnMut(&str, &mut Param)) {}
}

impl Unary for Activation {
    fn forward(&self, x: &Array) -> Result<Array> {
        self.apply(x)
    }
}

/// PReLU: `x` for `x > 0`, else `weight * x`, with one trainable "weight" of shape
/// `(num_parameters,)` (1, or the channel count of channels-last inputs), initialized 0.25
/// as PyTorch.
#[derive(Clone, Debug)]
pub struct PRelu {
    pub weight: Param,
}

impl PRelu {
    /// An f32 layer with every slope 0.25.
    pub fn new(num_parameters: usize) -> Result<PRelu> {
        PRelu::with(num_parameters, 0.25, DType::F32)
    }

    /// A layer of `dtype` with every slope `init`.
    pub fn with(num_parameters: usize, init: f64, dtype: DType) -> Result<PRelu> {
        if num_parameters == 0 || !dtype.is_float() || !init.is_finite() {
            return Err(Error::invalid(
                "PRelu",
                format!(
                    "need num_parameters >= 1, a finite init and a float dtype; got {num_parameters}, {init}, {dtype}"
                ),
            ));
        }
        Ok(PRelu {
            weight: Param::new(ingot::full(&[num_parameters], init, dtype)?),
        })
    }
}

impl Module for PRelu {
    fn visit(&self, f: &mut dyn FnMut(&str, &Param)) {
        f("weight", &self.weight);
    }
    fn visit_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
        f("weight", &mut self.weight);
    }
}

impl Unary for PRelu {
    fn forward(&self, x: &Array) -> Result<Array> {
        prelu(x, &self.weight.value)
    }
}
