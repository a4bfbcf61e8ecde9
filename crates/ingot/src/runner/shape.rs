//! Runner entries for shape ops (concatenate, pad, ...) and view ops (reshape, transpose,
//! slice, ...). Attribute names are NumPy's.

use super::{attr, want_inputs, Attrs, OpDef};
use crate::array::Array;
use crate::dtype::Scalar;
use crate::ops::{PadMode, SliceArg, SplitSpec};
use crate::{Error, Result};
use serde_json::Value;

/// An axis attribute where an explicit null means "flattened" (NumPy's `axis=None`) and
/// absence means `default`.
fn axis_or_none(at: &Attrs, name: &str, default: Option<isize>) -> Result<Option<isize>> {
    match at.map.get(name) {
        None => Ok(default),
        Some(Value::Null) => Ok(None),
        Some(_) => Ok(Some(at.i64_req(name)? as isize)),
    }
}

fn ints_req(at: &Attrs, name: &str) -> Result<Vec<i64>> {
    at.ints_opt(name)?
        .ok_or_else(|| Error::invalid(&at.op, format!("attribute '{name}' is required")))
}

fn usizes_req(at: &Attrs, name: &str) -> Result<Vec<usize>> {
    at.shape_req(name)
}

/// A list whose entries are integers or null (slice bounds).
fn opt_ints(at: &Attrs, name: &str) -> Result<Vec<Option<isize>>> {
    let bad = |v: &Value| {
        Error::invalid(
            &at.op,
            format!("attribute '{name}' must be a list of integers or nulls, got {v}"),
        )
    };
    match at.map.get(name) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(xs)) => xs
            .iter()
            .map(|x| match x {
                Value::Null => Ok(None),
                x => x.as_i64().map(|v| Some(v as isize)).ok_or_else(|| bad(x)),
            })
            .collect(),
        Some(v) => v
            .as_i64()
            .map(|x| vec![Some(x as isize)])
            .ok_or_else(|| bad(v)),
    }
}

/// NumPy's `pad_width`: `n`, `[before, after]`, or `[[before, after], ...]` per axis.
fn pad_width(at: &Attrs) -> Result<Vec<(usize, usize)>> {
    let v = at
        .get("pad_width")
        .ok_or_else(|| Error::invalid(&at.op, "attribute 'pad_width' is required"))?;
    let bad = || {
        Error::invalid(
            &at.op,
            format!("attribute 'pad_width' must be n, [before, after] or a list of pairs of non-negative integers, got {v}"),
        )
    };
    let num = |x: &Value| x.as_u64().map(|n| n as usize).ok_or_else(bad);
    match v {
        Value::Array(xs) if xs.iter().all(|x| x.is_array()) => xs
            .iter()
            .map(|p| match p.as_array().map(|p| p.as_slice()) {
                Some([a]) => Ok((num(a)?, num(a)?)),
                Some([a, b]) => Ok((num(a)?, num(b)?)),
                _ => Err(bad()),
            })
            .collect(),
        Value::Array(xs) => match xs.as_slice() {
            [a] => Ok(vec![(num(a)?, num(a)?)]),
            [a, b] => Ok(vec![(num(a)?, num(b)?)]),
            _ => Err(bad()),
        },
        x => {
            let n = num(x)?;
            Ok(vec![(n, n)])
        }
    }
}

fn scalar_attr(at: &Attrs, name: &str) -> Result<Scalar> {
    Ok(match at.get(name) {
        None => Scalar::Int(0),
        Some(Value::Bool(b)) => Scalar::Bool(*b),
        Some(v) => {
            if let Some(i) = v.as_i64() {
                Scalar::Int(i)
            } else if let Some(u) = v.as_u64() {
                Scalar::UInt(u)
            } else if let Some(f) = v.as_f64() {
                Scalar::Float(f)
            } else {
                return Err(Error::invalid(
                    &at.op,
                    format!("attribute '{name}' must be a number, got {v}"),
                ));
            }
        }
    })
}

fn pad_mode(at: &Attrs) -> Result<PadMode> {
    Ok(match at.str_or("mode", "constant")?.as_str() {
        "constant" => PadMode::Constant,
        "edge" => PadMode::Edge,
        "reflect" => PadMode::Reflect,
        "symmetric" => PadMode::Symmetric,
        m => {
            return Err(Error::invalid(
                &at.op,
                format!("mode must be constant, edge, reflect or symmetric, got '{m}'"),
            ))
        }
    })
}

fn split_spec(at: &Attrs) -> Result<SplitSpec> {
    match at.get("indices_or_sections") {
        None => Err(Error::invalid(
            &at.op,
            "attribute 'indices_or_sections' is required",
        )),
        Some(Value::Array(_)) => Ok(SplitSpec::Indices(
            ints_req(at, "indices_or_sections")?
                .into_iter()
                .map(|x| x as isize)
                .collect(),
        )),
        Some(_) => Ok(SplitSpec::Sections(at.usize_req("indices_or_sections")?)),
    }
}

fn need_some(op: &str, x: &[Array]) -> Result<()> {
    if x.is_empty() {
        return Err(Error::invalid(op, "takes one or more inputs, got 0"));
    }
    Ok(())
}

macro_rules! unary_view {
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

pub fn register(r: &mut Vec<OpDef>) {
    // ---- shape ops --------------------------------------------------------------------
    r.push(OpDef {
        name: "concatenate",
        inputs: "arrays...",
        attrs: const { &[attr("axis", "int?", Some("0"))] },
        run: |x, at| {
            need_some("concatenate", x)?;
            Ok(vec![crate::ops::concatenate(
                x,
                axis_or_none(at, "axis", Some(0))?,
            )?])
        },
    });
    r.push(OpDef {
        name: "stack",
        inputs: "arrays...",
        attrs: const { &[attr("axis", "int", Some("0"))] },
        run: |x, at| {
            need_some("stack", x)?;
            Ok(vec![crate::ops::stack(x, at.axis_or("axis", 0)?)?])
        },
    });
    r.push(OpDef {
        name: "split",
        inputs: "a",
        attrs: const {
            &[
                attr("indices_or_sections", "int | list[int]", None),
                attr("axis", "int", Some("0")),
            ]
        },
        run: |x, at| {
            want_inputs("split", x, 1)?;
            crate::ops::split(&x[0], split_spec(at)?, at.axis_or("axis", 0)?)
        },
    });
    r.push(OpDef {
        name: "array_split",
        inputs: "a",
        attrs: const {
            &[
                attr("indices_or_sections", "int | list[int]", None),
                attr("axis", "int", Some("0")),
            ]
        },
        run: |x, at| {
            want_inputs("array_split", x, 1)?;
            crate::ops::array_split(&x[0], split_spec(at)?, at.axis_or("axis", 0)?)
        },
    });
    r.push(OpDef {
        name: "tile",
        inputs: "a",
        attrs: const { &[attr("reps", "list[int]", None)] },
        run: |x, at| {
            want_inputs("tile", x, 1)?;
            Ok(vec![crate::ops::tile(&x[0], &usizes_req(at, "reps")?)?])
        },
    });
    r.push(OpDef {
        name: "repeat",
        inputs: "a",
        attrs: const {
            &[
                attr("repeats", "int | list[int]", None),
                attr("axis", "int?", Some("null")),
            ]
        },
        run: |x, at| {
            want_inputs("repeat", x, 1)?;
            Ok(vec![crate::ops::repeat(
                &x[0],
                &usizes_req(at, "repeats")?,
                axis_or_none(at, "axis", None)?,
            )?])
        },
    });
    r.push(OpDef {
        name: "pad",
        inputs: "a",
        attrs: const {
            &[
                attr("pad_width", "int | [int, int] | list[[int, int]]", None),
                attr(
                    "mode",
                    "constant | edge | reflect | symmetric",
                    Some("constant"),
                ),
                attr("constant_values", "number", Some("0")),
            ]
        },
        run: |x, at| {
            want_inputs("pad", x, 1)?;
            Ok(vec![crate::ops::pad(
                &x[0],
                &pad_width(at)?,
                pad_mode(at)?,
                scalar_attr(at, "constant_values")?,
            )?])
        },
    });
    r.push(OpDef {
        name: "roll",
        inputs: "a",
        attrs: const {
            &[
                attr("shift", "int | list[int]", None),
                attr("axis", "int | list[int] | null", Some("null")),
            ]
        },
        run: |x, at| {
            want_inputs("roll", x, 1)?;
            let shift: Vec<isize> = ints_req(at, "shift")?
                .into_iter()
                .map(|v| v as isize)
                .collect();
            let axes = at.axes_opt("axis")?;
            Ok(vec![crate::ops::roll(&x[0], &shift, axes.as_deref())?])
        },
    });
    r.push(OpDef {
        name: "trace",
        inputs: "a",
        attrs: const {
            &[
                attr("offset", "int", Some("0")),
                attr("axis1", "int", Some("0")),
                attr("axis2", "int", Some("1")),
            ]
        },
        run: |x, at| {
            want_inputs("trace", x, 1)?;
            Ok(vec![crate::ops::trace(
                &x[0],
                at.axis_or("offset", 0)?,
                at.axis_or("axis1", 0)?,
                at.axis_or("axis2", 1)?,
            )?])
        },
    });
    r.push(OpDef {
        name: "diag",
        inputs: "a",
        attrs: const { &[attr("k", "int", Some("0"))] },
        run: |x, at| {
            want_inputs("diag", x, 1)?;
            Ok(vec![crate::ops::diag(&x[0], at.axis_or("k", 0)?)?])
        },
    });
    r.push(OpDef {
        name: "tril",
        inputs: "a",
        attrs: const { &[attr("k", "int", Some("0"))] },
        run: |x, at| {
            want_inputs("tril", x, 1)?;
            Ok(vec![crate::ops::tril(&x[0], at.axis_or("k", 0)?)?])
        },
    });
    r.push(OpDef {
        name: "triu",
        inputs: "a",
        attrs: const { &[attr("k", "int", Some("0"))] },
        run: |x, at| {
            want_inputs("triu", x, 1)?;
            Ok(vec![crate::ops::triu(&x[0], at.axis_or("k", 0)?)?])
        },
    });
    r.push(OpDef {
        name: "meshgrid",
        inputs: "arrays...",
        attrs: const {
            &[
                attr("indexing", "xy | ij", Some("xy")),
                attr("sparse", "bool", Some("false")),
            ]
        },
        run: |x, at| {
            crate::ops::meshgrid(
                x,
                &at.str_or("indexing", "xy")?,
                at.bool_or("sparse", false)?,
            )
        },
    });

    // ---- views ------------------------------------------------------------------------
    r.push(OpDef {
        name: "reshape",
        inputs: "a",
        attrs: const { &[attr("shape", "list[int] (one entry may be -1)", None)] },
        run: |x, at| {
            want_inputs("reshape", x, 1)?;
            let s: Vec<isize> = ints_req(at, "shape")?
                .into_iter()
                .map(|v| v as isize)
                .collect();
            Ok(vec![crate::ops::reshape(&x[0], &s)?])
        },
    });
    r.push(OpDef {
        name: "flatten",
        inputs: "a",
        attrs: const {
            &[
                attr("start_axis", "int", Some("0")),
                attr("end_axis", "int", Some("-1")),
            ]
        },
        run: |x, at| {
            want_inputs("flatten", x, 1)?;
            Ok(vec![crate::ops::flatten(
                &x[0],
                at.axis_or("start_axis", 0)?,
                at.axis_or("end_axis", -1)?,
            )?])
        },
    });
    r.push(OpDef {
        name: "transpose",
        inputs: "a",
        attrs: const { &[attr("axes", "list[int]?", Some("null"))] },
        run: |x, at| {
            want_inputs("transpose", x, 1)?;
            let axes = at.axes_opt("axes")?;
            Ok(vec![crate::ops::transpose(&x[0], axes.as_deref())?])
        },
    });
    r.push(OpDef {
        name: "swapaxes",
        inputs: "a",
        attrs: const { &[attr("axis1", "int", None), attr("axis2", "int", None)] },
        run: |x, at| {
            want_inputs("swapaxes", x, 1)?;
            Ok(vec![crate::ops::swapaxes(
                &x[0],
                at.i64_req("axis1")? as isize,
                at.i64_req("axis2")? as isize,
            )?])
        },
    });
    r.push(OpDef {
        name: "moveaxis",
        inputs: "a",
        attrs: const {
            &[
                attr("source", "int", None),
                attr("destination", "int", None),
            ]
        },
        run: |x, at| {
            want_inputs("moveaxis", x, 1)?;
            Ok(vec![crate::ops::moveaxis(
                &x[0],
                at.i64_req("source")? as isize,
                at.i64_req("destination")? as isize,
            )?])
        },
    });
    r.push(OpDef {
        name: "broadcast_to",
        inputs: "a",
        attrs: const { &[attr("shape", "list[int]", None)] },
        run: |x, at| {
            want_inputs("broadcast_to", x, 1)?;
            Ok(vec![crate::ops::broadcast_to(
                &x[0],
                &at.shape_req("shape")?,
            )?])
        },
    });
    r.push(OpDef {
        name: "broadcast_arrays",
        inputs: "arrays...",
        attrs: &[],
        run: |x, _| crate::ops::broadcast_arrays(x),
    });
    r.push(OpDef {
        name: "expand_dims",
        inputs: "a",
        attrs: const { &[attr("axis", "int | list[int]", None)] },
        run: |x, at| {
            want_inputs("expand_dims", x, 1)?;
            let ax: Vec<isize> = ints_req(at, "axis")?
                .into_iter()
                .map(|v| v as isize)
                .collect();
            Ok(vec![crate::ops::expand_dims(&x[0], &ax)?])
        },
    });
    r.push(OpDef {
        name: "squeeze",
        inputs: "a",
        attrs: const { &[attr("axis", "int | list[int] | null", Some("null"))] },
        run: |x, at| {
            want_inputs("squeeze", x, 1)?;
            let axes = at.axes_opt("axis")?;
            Ok(vec![crate::ops::squeeze(&x[0], axes.as_deref())?])
        },
    });
    unary_view!(r, atleast_1d, atleast_2d, atleast_3d, copy);
    r.push(OpDef {
        name: "slice",
        inputs: "a",
        attrs: const {
            &[
                attr("start", "list[int?]", Some("[]")),
                attr("stop", "list[int?]", Some("[]")),
                attr("step", "list[int?]", Some("[]")),
            ]
        },
        run: |x, at| {
            want_inputs("slice", x, 1)?;
            let (start, stop, step) = (
                opt_ints(at, "start")?,
                opt_ints(at, "stop")?,
                opt_ints(at, "step")?,
            );
            let n = start.len().max(stop.len()).max(step.len());
            let args: Vec<SliceArg> = (0..n)
                .map(|i| {
                    SliceArg::new(
                        start.get(i).copied().flatten(),
                        stop.get(i).copied().flatten(),
                        step.get(i).copied().flatten().unwrap_or(1),
                    )
                })
                .collect();
            Ok(vec![crate::ops::slice(&x[0], &args)?])
        },
    });
    r.push(OpDef {
        name: "flip",
        inputs: "a",
        attrs: const { &[attr("axis", "int | list[int] | null", Some("null"))] },
        run: |x, at| {
            want_inputs("flip", x, 1)?;
            let axes = at.axes_opt("axis")?;
            Ok(vec![crate::ops::flip(&x[0], axes.as_deref())?])
        },
    });
    r.push(OpDef {
        name: "diagonal",
        inputs: "a",
        attrs: const {
            &[
                attr("offset", "int", Some("0")),
                attr("axis1", "int", Some("0")),
                attr("axis2", "int", Some("1")),
            ]
        },
        run: |x, at| {
            want_inputs("diagonal", x, 1)?;
            Ok(vec![crate::ops::diagonal(
                &x[0],
                at.axis_or("offset", 0)?,
                at.axis_or("axis1", 0)?,
                at.axis_or("axis2", 1)?,
            )?])
        },
    });
    r.push(OpDef {
        name: "view",
        inputs: "a",
        attrs: const { &[attr("dtype", "dtype", None)] },
        run: |x, at| {
            want_inputs("view", x, 1)?;
            let d = at
                .dtype_opt("dtype")?
                .ok_or_else(|| Error::invalid("view", "attribute 'dtype' is required"))?;
            Ok(vec![crate::ops::view(&x[0], d)?])
        },
    });
}
