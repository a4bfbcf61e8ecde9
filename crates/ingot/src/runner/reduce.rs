//! Runner entries for reductions and scans. `axis` takes an int, a list or null (all axes;
//! for arg-reductions and scans null means the flattened array).

use super::{attr, want_inputs, Attrs, OpDef};
use crate::array::Array;
use crate::Result;

/// A single optional axis (null: flattened).
fn axis_opt(at: &Attrs) -> Result<Option<isize>> {
    Ok(at.i64_opt("axis")?.map(|a| a as isize))
}

macro_rules! red_defs {
    ($r:expr, $($name:ident),*) => {$(
        $r.push(OpDef {
            name: stringify!($name),
            inputs: "a",
            attrs: const {
                &[
                    attr("axis", "int | list | null", Some("null")),
                    attr("keepdims", "bool", Some("false")),
                ]
            },
            run: |x: &[Array], at: &Attrs| {
                want_inputs(stringify!($name), x, 1)?;
                let axes = at.axes_opt("axis")?;
                Ok(vec![crate::ops::$name(&x[0], axes.as_deref(), at.bool_or("keepdims", false)?)?])
            },
        });
    )*};
}
macro_rules! var_defs {
    ($r:expr, $($name:ident),*) => {$(
        $r.push(OpDef {
            name: stringify!($name),
            inputs: "a",
            attrs: const {
                &[
                    attr("axis", "int | list | null", Some("null")),
                    attr("keepdims", "bool", Some("false")),
                    attr("ddof", "int", Some("0")),
                ]
            },
            run: |x: &[Array], at: &Attrs| {
                want_inputs(stringify!($name), x, 1)?;
                let axes = at.axes_opt("axis")?;
                Ok(vec![crate::ops::$name(
                    &x[0],
                    axes.as_deref(),
                    at.bool_or("keepdims", false)?,
                    at.usize_or("ddof", 0)?,
                )?])
            },
        });
    )*};
}
macro_rules! arg_defs {
    ($r:expr, $($name:ident),*) => {$(
        $r.push(OpDef {
            name: stringify!($name),
            inputs: "a",
            attrs: const {
                &[
                    attr("axis", "int | null", Some("null")),
                    attr("keepdims", "bool", Some("false")),
                ]
            },
            run: |x: &[Array], at: &Attrs| {
                want_inputs(stringify!($name), x, 1)?;
                Ok(vec![crate::ops::$name(&x[0], axis_opt(at)?, at.bool_or("keepdims", false)?)?])
            },
        });
    )*};
}
macro_rules! scan_defs {
    ($r:expr, $($name:ident),*) => {$(
        $r.push(OpDef {
            name: stringify!($name),
            inputs: "a",
            attrs: const {
                &[
                    attr("axis", "int | null", Some("null")),
                    attr("reverse", "bool", Some("false")),
                    attr("inclusive", "bool", Some("true")),
                ]
            },
            run: |x: &[Array], at: &Attrs| {
                want_inputs(stringify!($name), x, 1)?;
                Ok(vec![crate::ops::$name(
                    &x[0],
                    axis_opt(at)?,
                    at.bool_or("reverse", false)?,
                    at.bool_or("inclusive", true)?,
                )?])
            },
        });
    )*};
}

pub fn register(r: &mut Vec<OpDef>) {
    red_defs!(
        r,
        sum,
        prod,
        max,
        min,
        all,
        any,
        mean,
        logsumexp,
        count_nonzero
    );
    var_defs!(r, var, std);
    arg_defs!(r, argmax, argmin);
    scan_defs!(r, cumsum, cumprod, cummax, cummin, logcumsumexp);
    // Predicates give a 0-d bool array.
    r.push(OpDef {
        name: "allclose",
        inputs: "a, b",
        attrs: const {
            &[
                attr("rtol", "float", Some("1e-05")),
                attr("atol", "float", Some("1e-08")),
                attr("equal_nan", "bool", Some("false")),
            ]
        },
        run: |x, at| {
            want_inputs("allclose", x, 2)?;
            let v = crate::ops::allclose(
                &x[0],
                &x[1],
                at.f64_or("rtol", 1e-5)?,
                at.f64_or("atol", 1e-8)?,
                at.bool_or("equal_nan", false)?,
            )?;
            Ok(vec![Array::scalar(v)])
        },
    });
    r.push(OpDef {
        name: "array_equal",
        inputs: "a, b",
        attrs: const { &[attr("equal_nan", "bool", Some("false"))] },
        run: |x, at| {
            want_inputs("array_equal", x, 2)?;
            let v = crate::ops::array_equal(&x[0], &x[1], at.bool_or("equal_nan", false)?)?;
            Ok(vec![Array::scalar(v)])
        },
    });
}
