//! Elementwise operations: unary math, binary arithmetic, comparisons, logic, `where`, clip,
//! isclose, astype.

use crate::array::{Array, IntoArray};
use crate::dtype::{result_type_of, DType, Kind};
use crate::op::{BinaryOp, Op, UnaryOp};
use crate::ops::broadcast_to;
use crate::shape::{broadcast_all, broadcast_many, fmt_shape};
use crate::{Error, Result};

/// Converts to `dtype` (a no-op when it already is).
pub fn astype(a: &Array, dtype: DType) -> Result<Array> {
    if a.dtype() == dtype && !a.is_weak() {
        return Ok(a.clone());
    }
    if a.is_weak() {
        // A weak scalar is a host constant (a Rust number): cast it here, with the CPU's
        // cast, into an ordinary constant. No node stands between the number and the op
        // using it, so on a GPU `x + 1.0` is one kernel taking the value as an argument,
        // not a cast kernel and a device buffer first.
        let d = crate::backend::cpu::elementwise::cast(a, dtype)?;
        return Ok(Array::from_data(d, a.shape().to_vec(), dtype));
    }
    Ok(Array::from_op(
        Op::AsType(dtype),
        vec![a.clone()],
        a.shape().to_vec(),
        dtype,
    ))
}

fn unary_node(op: UnaryOp, a: &Array, out: DType) -> Array {
    Array::from_op(Op::Unary(op), vec![a.clone()], a.shape().to_vec(), out)
}

fn unsupported(name: &str, a: &Array) -> Error {
    Error::invalid(
        name,
        format!(
            "not supported for dtype {} (shape {})",
            a.dtype(),
            fmt_shape(a.shape())
        ),
    )
}

/// Float math: integers and bool compute in float32; complex where the function has a
/// complex form.
fn float_unary(name: &str, op: UnaryOp, a: &Array, complex_ok: bool) -> Result<Array> {
    use UnaryOp::*;
    // PyTorch's float32 list under autocast: functions whose half-precision results lose
    // range or digits.
    let a = if matches!(
        op,
        Exp | Expm1
            | Log
            | Log1p
            | Log2
            | Log10
            | Rsqrt
            | Reciprocal
            | Tan
            | Arcsin
            | Arccos
            | Sinh
            | Cosh
            | Erfinv
    ) {
        &crate::amp::high(a)?
    } else {
        a
    };
    let a = if a.dtype().is_inexact() {
        a.clone()
    } else {
        astype(a, DType::F32)?
    };
    if a.dtype().is_complex() && !complex_ok {
        return Err(unsupported(name, &a));
    }
    Ok(unary_node(op, &a, a.dtype()))
}

macro_rules! float_unary_fns {
    ($($(#[$m:meta])* $name:ident => $op:ident, complex: $c:expr;)*) => {$(
        $(#[$m])*
        pub fn $name(a: &Array) -> Result<Array> {
            float_unary(stringify!($name), UnaryOp::$op, a, $c)
        }
    )*};
}
float_unary_fns! {
    exp => Exp, complex: true;
    expm1 => Expm1, complex: true;
    log => Log, complex: true;
    log1p => Log1p, complex: true;
    log2 => Log2, complex: true;
    log10 => Log10, complex: true;
    sqrt => Sqrt, complex: true;
    /// `1 / sqrt(a)`
    rsqrt => Rsqrt, complex: true;
    reciprocal => Reciprocal, complex: true;
    sin => Sin, complex: true;
    cos => Cos, complex: true;
    tan => Tan, complex: true;
    arcsin => Arcsin, complex: true;
    arccos => Arccos, complex: true;
    arctan => Arctan, complex: true;
    sinh => Sinh, complex: true;
    cosh => Cosh, complex: true;
    tanh => Tanh, complex: true;
    arcsinh => Arcsinh, complex: true;
    arccosh => Arccosh, complex: true;
    arctanh => Arctanh, complex: true;
    erf => Erf, complex: false;
    erfinv => Erfinv, complex: false;
    /// `1 / (1 + exp(-a))`
    sigmoid => Sigmoid, complex: false;
    /// Exact GELU, `a Phi(a) = 0.5 a (1 + erf(a / sqrt 2))`; halves compute in f32.
    gelu => Gelu, complex: false;
    /// GELU's tanh approximation, `0.5 a (1 + tanh(sqrt(2/pi) (a + 0.044715 a^3)))`
    /// (PyTorch's `approximate="tanh"`); halves compute in f32.
    gelu_tanh => GeluTanh, complex: false;
}

/// Absolute value; complex gives its magnitude as float32.
pub fn abs(a: &Array) -> Result<Array> {
    let out = a.dtype().real_part();
    Ok(unary_node(UnaryOp::Abs, a, out))
}
pub fn negative(a: &Array) -> Result<Array> {
    if a.dtype() == DType::Bool {
        return Err(Error::invalid(
            "negative",
            "not supported for dtype bool; use logical_not",
        ));
    }
    Ok(unary_node(UnaryOp::Negative, a, a.dtype()))
}
/// -1, 0 or 1 (NaN stays NaN; complex gives `z / |z|`).
pub fn sign(a: &Array) -> Result<Array> {
    if a.dtype() == DType::Bool {
        return Err(unsupported("sign", a));
    }
    Ok(unary_node(UnaryOp::Sign, a, a.dtype()))
}
pub fn square(a: &Array) -> Result<Array> {
    Ok(unary_node(UnaryOp::Square, a, a.dtype()))
}
fn rounding(name: &str, op: UnaryOp, a: &Array) -> Result<Array> {
    if a.dtype().is_complex() {
        return Err(unsupported(name, a));
    }
    Ok(unary_node(op, a, a.dtype()))
}
pub fn floor(a: &Array) -> Result<Array> {
    rounding("floor", UnaryOp::Floor, a)
}
pub fn ceil(a: &Array) -> Result<Array> {
    rounding("ceil", UnaryOp::Ceil, a)
}
/// Rounds half to even at `decimals` places (negative: to tens, hundreds, ...), as NumPy.
pub fn round(a: &Array, decimals: i32) -> Result<Array> {
    rounding("round", UnaryOp::Round { decimals }, a)
}
pub fn logical_not(a: &Array) -> Result<Array> {
    Ok(unary_node(UnaryOp::LogicalNot, a, DType::Bool))
}
/// Bitwise NOT of integers (logical NOT of bool).
pub fn bitwise_invert(a: &Array) -> Result<Array> {
    if a.dtype().is_inexact() {
        return Err(unsupported("bitwise_invert", a));
    }
    Ok(unary_node(UnaryOp::BitwiseInvert, a, a.dtype()))
}
pub fn isnan(a: &Array) -> Result<Array> {
    Ok(unary_node(UnaryOp::IsNan, a, DType::Bool))
}
pub fn isinf(a: &Array) -> Result<Array> {
    Ok(unary_node(UnaryOp::IsInf, a, DType::Bool))
}
pub fn isfinite(a: &Array) -> Result<Array> {
    Ok(unary_node(UnaryOp::IsFinite, a, DType::Bool))
}
/// True where the sign bit is set (-0.0 and NaNs with the bit included).
pub fn signbit(a: &Array) -> Result<Array> {
    if a.dtype().is_complex() {
        return Err(unsupported("signbit", a));
    }
    Ok(unary_node(UnaryOp::SignBit, a, DType::Bool))
}
pub fn real(a: &Array) -> Result<Array> {
    Ok(unary_node(UnaryOp::Real, a, a.dtype().real_part()))
}
pub fn imag(a: &Array) -> Result<Array> {
    Ok(unary_node(UnaryOp::Imag, a, a.dtype().real_part()))
}
pub fn conj(a: &Array) -> Result<Array> {
    Ok(unary_node(UnaryOp::Conj, a, a.dtype()))
}
/// The complex argument (real inputs: 0, or pi where negative), as float.
pub fn angle(a: &Array) -> Result<Array> {
    let a = if a.dtype().is_inexact() {
        a.clone()
    } else {
        astype(a, DType::F32)?
    };
    Ok(unary_node(UnaryOp::Angle, &a, a.dtype().real_part()))
}
/// The identity on values; transforms treat the result as a constant.
pub fn stop_gradient(a: &Array) -> Result<Array> {
    Ok(unary_node(UnaryOp::StopGradient, a, a.dtype()))
}

// ---- binary --------------------------------------------------------------------------------

/// Promotes and broadcasts operands to a common dtype and shape: what every elementwise
/// kernel expects.
pub fn broadcast_and_promote(name: &str, xs: &[Array]) -> Result<(Vec<Array>, Vec<usize>, DType)> {
    let shape = broadcast_all(name, xs.iter().map(Array::shape))?;
    let dtype = result_type_of(xs.iter().map(Array::type_info));
    let mut out = Vec::with_capacity(xs.len());
    for x in xs {
        // Not while a transform traces: a shapeless compile replays the broadcast node at
        // new sizes, where a constant of the traced shape would not fit.
        let x = if x.is_weak() && !crate::array::retaining_graph() {
            // A Rust number is a host constant: its broadcast is a view made here, so
            // `x + 1.0` is one node to evaluate, not a broadcast and the op.
            weak_constant(x, dtype, &shape)?
        } else {
            let x = astype(x, dtype)?;
            if x.shape() == shape.as_slice() {
                x
            } else {
                broadcast_to(&x, &shape)?
            }
        };
        out.push(x);
    }
    Ok((out, shape, dtype))
}

/// A weak scalar as a constant of `dtype` broadcast to `shape`: astype's cast, viewed (stride
/// 0) by the CPU backend's broadcast as evaluating the node would, with no node in between.
fn weak_constant(x: &Array, dtype: DType, shape: &[usize]) -> Result<Array> {
    let d = crate::backend::cpu::elementwise::cast(x, dtype)?;
    let d = crate::backend::cpu::views::broadcast_view(d, x.shape(), shape);
    Ok(Array::from_data(d, shape.to_vec(), dtype))
}

fn binary_node(name: &str, op: BinaryOp, a: Array, b: Array, to_inexact: bool) -> Result<Array> {
    let (xs, shape, mut dtype) = broadcast_and_promote(name, &[a, b])?;
    let Ok([mut x, mut y]) = <[Array; 2]>::try_from(xs) else {
        unreachable!("two operands give two operands")
    };
    if to_inexact && !dtype.is_inexact() {
        dtype = DType::F32;
        x = astype(&x, dtype)?;
        y = astype(&y, dtype)?;
    }
    check_binary_dtype(name, op, dtype, &x, &y)?;
    let out = if op.returns_bool() {
        DType::Bool
    } else {
        dtype
    };
    Ok(Array::from_op(Op::Binary(op), vec![x, y], shape, out))
}

fn check_binary_dtype(name: &str, op: BinaryOp, dtype: DType, x: &Array, y: &Array) -> Result<()> {
    use BinaryOp::*;
    let k = dtype.kind();
    let ok = match op {
        Add | Multiply | Equal | NotEqual | Less | LessEqual | Greater | GreaterEqual
        | LogicalAnd | LogicalOr | LogicalXor => true,
        Subtract | Power => k != Kind::Bool,
        Divide => true,
        FloorDivide | Remainder | Arctan2 | LogAddExp | GeluGrad | GeluTanhGrad => {
            !matches!(k, Kind::Bool | Kind::Complex)
        }
        Maximum | Minimum => k != Kind::Complex,
        BitwiseAnd | BitwiseOr | BitwiseXor => matches!(k, Kind::Bool | Kind::Int | Kind::UInt),
        LeftShift | RightShift => matches!(k, Kind::Int | Kind::UInt),
    };
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            name,
            format!(
                "not supported for dtype {dtype} (operands {} {} and {} {})",
                fmt_shape(x.shape()),
                x.dtype(),
                fmt_shape(y.shape()),
                y.dtype()
            ),
        ))
    }
}

macro_rules! binary_fns {
    ($($(#[$m:meta])* $name:ident => $op:ident, inexact: $f:expr;)*) => {$(
        $(#[$m])*
        pub fn $name(a: impl IntoArray, b: impl IntoArray) -> Result<Array> {
            binary_node(stringify!($name), BinaryOp::$op, a.into_array(), b.into_array(), $f)
        }
    )*};
}
binary_fns! {
    add => Add, inexact: false;
    subtract => Subtract, inexact: false;
    multiply => Multiply, inexact: false;
    /// True division: integers divide as float32.
    divide => Divide, inexact: true;
    /// Floor of the quotient (Python's `//`); integer division by zero gives 0.
    floor_divide => FloorDivide, inexact: false;
    /// Remainder with the sign of the divisor (Python's `%`).
    remainder => Remainder, inexact: false;
    power => Power, inexact: false;
    /// Elementwise maximum; NaN propagates.
    maximum => Maximum, inexact: false;
    minimum => Minimum, inexact: false;
    arctan2 => Arctan2, inexact: true;
    /// `log(exp(a) + exp(b))` without overflow.
    logaddexp => LogAddExp, inexact: true;
    /// `g * gelu'(x)` for `gelu_grad(x, g)`: exact GELU's gradient in one pass, as its vjp
    /// uses it (PyTorch's `gelu_backward`).
    gelu_grad => GeluGrad, inexact: true;
    /// `g * gelu_tanh'(x)` for `gelu_tanh_grad(x, g)`.
    gelu_tanh_grad => GeluTanhGrad, inexact: true;
    equal => Equal, inexact: false;
    not_equal => NotEqual, inexact: false;
    less => Less, inexact: false;
    less_equal => LessEqual, inexact: false;
    greater => Greater, inexact: false;
    greater_equal => GreaterEqual, inexact: false;
    logical_and => LogicalAnd, inexact: false;
    logical_or => LogicalOr, inexact: false;
    logical_xor => LogicalXor, inexact: false;
    bitwise_and => BitwiseAnd, inexact: false;
    bitwise_or => BitwiseOr, inexact: false;
    bitwise_xor => BitwiseXor, inexact: false;
    left_shift => LeftShift, inexact: false;
    right_shift => RightShift, inexact: false;
}

/// `where(cond, x, y)`: elements of `x` where `cond` is true, else of `y` (broadcast).
/// Named `where_` because `where` is a Rust keyword.
pub fn where_(cond: impl IntoArray, x: impl IntoArray, y: impl IntoArray) -> Result<Array> {
    let cond = cond.into_array();
    let cond = if cond.dtype() == DType::Bool {
        cond
    } else {
        astype(&cond, DType::Bool)?
    };
    let (xs, shape, dtype) = broadcast_and_promote("where", &[x.into_array(), y.into_array()])?;
    let shape = broadcast_many("where", &[cond.shape(), &shape])?;
    let b = |a: &Array| {
        if a.shape() == shape.as_slice() {
            Ok(a.clone())
        } else {
            broadcast_to(a, &shape)
        }
    };
    Ok(Array::from_op(
        Op::Select,
        vec![b(&cond)?, b(&xs[0])?, b(&xs[1])?],
        shape,
        dtype,
    ))
}

/// Limits values to `[min, max]`; either bound may be absent.
pub fn clip(a: &Array, min: Option<&Array>, max: Option<&Array>) -> Result<Array> {
    if min.is_none() && max.is_none() {
        return Err(Error::invalid(
            "clip",
            "at least one of min and max must be given",
        ));
    }
    let mut out = a.clone();
    if let Some(lo) = min {
        out = maximum(&out, lo)?;
    }
    if let Some(hi) = max {
        out = minimum(&out, hi)?;
    }
    Ok(out)
}

/// `|a - b| <= atol + rtol * |b|`, with infinities close only to themselves and NaN close to
/// NaN only when `equal_nan`.
pub fn isclose(a: &Array, b: &Array, rtol: f64, atol: f64, equal_nan: bool) -> Result<Array> {
    let (xs, _, dtype) = broadcast_and_promote("isclose", &[a.clone(), b.clone()])?;
    let (x, y) = if dtype.is_inexact() {
        (xs[0].clone(), xs[1].clone())
    } else {
        (astype(&xs[0], DType::F64)?, astype(&xs[1], DType::F64)?)
    };
    let diff = abs(&subtract(&x, &y)?)?;
    let tol = add(atol, multiply(rtol, &abs(&y)?)?)?;
    let finite_close = less_equal(&diff, &tol)?;
    let both_inf_equal = logical_and(&logical_or(&isinf(&x)?, &isinf(&y)?)?, &equal(&x, &y)?)?;
    let any_inf = logical_or(&isinf(&x)?, &isinf(&y)?)?;
    let mut close = where_(&any_inf, &both_inf_equal, &finite_close)?;
    if equal_nan {
        close = logical_or(&close, &logical_and(&isnan(&x)?, &isnan(&y)?)?)?;
    }
    Ok(close)
}
