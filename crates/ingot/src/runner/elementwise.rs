//! Runner entries for elementwise ops.

use super::{attr, want_inputs, Attrs, OpDef};
use crate::array::Array;

macro_rules! unary_defs {
    ($r:expr, $($name:ident),*) => {$(
        $r.push(OpDef {
            name: stringify!($name),
            inputs: "a",
            attrs: &[],
            run: |x: &[Array], _: &Attrs| {
                want_inputs(stringify!($name), x, 1)?;
                Ok(vec![crate::ops::$name(&x[0])?])
            },
        });
    )*};
}
macro_rules! binary_defs {
    ($r:expr, $($name:ident),*) => {$(
        $r.push(OpDef {
            name: stringify!($name),
            inputs: "a, b",
            attrs: &[],
            run: |x: &[Array], _: &Attrs| {
                want_inputs(stringify!($name), x, 2)?;
                Ok(vec![crate::ops::$name(&x[0], &x[1])?])
            },
        });
    )*};
}

pub fn register(r: &mut Vec<OpDef>) {
    unary_defs!(
        r,
        abs,
        negative,
        sign,
        exp,
        expm1,
        log,
        log1p,
        log2,
        log10,
        sqrt,
        rsqrt,
        square,
        reciprocal,
        sin,
        cos,
        tan,
        arcsin,
        arccos,
        arctan,
        sinh,
        cosh,
        tanh,
        arcsinh,
        arccosh,
        arctanh,
        erf,
        erfinv,
        floor,
        ceil,
        sigmoid,
        gelu,
        gelu_tanh,
        logical_not,
        bitwise_invert,
        isnan,
        isinf,
        isfinite,
        signbit,
        real,
        imag,
        conj,
        angle,
        stop_gradient
    );
    binary_defs!(
        r,
        add,
        subtract,
        multiply,
        divide,
        floor_divide,
        remainder,
        power,
        maximum,
        minimum,
        arctan2,
        logaddexp,
        gelu_grad,
        gelu_tanh_grad,
        equal,
        not_equal,
        less,
        less_equal,
        greater,
        greater_equal,
        logical_and,
        logical_or,
        logical_xor,
        bitwise_and,
        bitwise_or,
        bitwise_xor,
        left_shift,
        right_shift
    );
    r.push(OpDef {
        name: "round",
        inputs: "a",
        attrs: const { &[attr("decimals", "int", Some("0"))] },
        run: |x, at| {
            want_inputs("round", x, 1)?;
            Ok(vec![crate::ops::round(
                &x[0],
                at.i64_or("decimals", 0)? as i32,
            )?])
        },
    });
    r.push(OpDef {
        name: "where",
        inputs: "condition, x, y",
        attrs: &[],
        run: |x, _| {
            want_inputs("where", x, 3)?;
            Ok(vec![crate::ops::where_(&x[0], &x[1], &x[2])?])
        },
    });
    r.push(OpDef {
        name: "clip",
        inputs: "a, a_min, a_max",
        attrs: &[],
        run: |x, _| {
            want_inputs("clip", x, 3)?;
            Ok(vec![crate::ops::clip(&x[0], Some(&x[1]), Some(&x[2]))?])
        },
    });
    r.push(OpDef {
        name: "isclose",
        inputs: "a, b",
        attrs: const {
            &[
                attr("rtol", "float", Some("1e-05")),
                attr("atol", "float", Some("1e-08")),
                attr("equal_nan", "bool", Some("false")),
            ]
        },
        run: |x, at| {
            want_inputs("isclose", x, 2)?;
            Ok(vec![crate::ops::isclose(
                &x[0],
                &x[1],
                at.f64_or("rtol", 1e-5)?,
                at.f64_or("atol", 1e-8)?,
                at.bool_or("equal_nan", false)?,
            )?])
        },
    });
    r.push(OpDef {
        name: "astype",
        inputs: "a",
        attrs: const { &[attr("dtype", "dtype", None)] },
        run: |x, at| {
            want_inputs("astype", x, 1)?;
            let d = at
                .dtype_opt("dtype")?
                .ok_or_else(|| crate::Error::invalid("astype", "attribute 'dtype' is required"))?;
            Ok(vec![crate::ops::astype(&x[0], d)?])
        },
    });
}
