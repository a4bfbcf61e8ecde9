//! Runner entries: index family. Index arrays are inputs; axes, slice sizes and slice
//! windows (`start`/`stop`/`step` lists, null for an open end) are attributes.

use super::{attr, want_inputs, Attrs, OpDef};
use crate::array::Array;
use crate::op::ScatterKind;
use crate::ops::SliceArg;
use crate::{Error, Result};
use serde_json::Value;

/// `axis` as NumPy takes it: an integer, or null/absent for the flattened array.
fn axis_opt(at: &Attrs) -> Result<Option<isize>> {
    Ok(at.i64_opt("axis")?.map(|a| a as isize))
}

fn kind_of(op: &str, at: &Attrs) -> Result<ScatterKind> {
    Ok(match at.str_or("kind", "set")?.as_str() {
        "set" => ScatterKind::Set,
        "add" => ScatterKind::Add,
        "prod" => ScatterKind::Prod,
        "max" => ScatterKind::Max,
        "min" => ScatterKind::Min,
        other => {
            return Err(Error::invalid(
                op,
                format!("attribute 'kind' must be one of set, add, prod, max, min, got '{other}'"),
            ))
        }
    })
}

/// A list of optional integers (`[1, null, -2]`); absent gives an empty list.
fn opt_ints(at: &Attrs, name: &str) -> Result<Vec<Option<isize>>> {
    let bad = |v: &Value| {
        Error::invalid(
            &at.op,
            format!("attribute '{name}' must be a list of integers or nulls, got {v}"),
        )
    };
    match at.get(name) {
        None => Ok(Vec::new()),
        Some(Value::Array(xs)) => xs
            .iter()
            .map(|x| match x {
                Value::Null => Ok(None),
                v => v.as_i64().map(|i| Some(i as isize)).ok_or_else(|| bad(v)),
            })
            .collect(),
        Some(v) => v
            .as_i64()
            .map(|i| vec![Some(i as isize)])
            .ok_or_else(|| bad(v)),
    }
}

/// The slice window from `start`, `stop` and `step` lists (missing entries: the whole axis).
fn slice_args(at: &Attrs) -> Result<Vec<SliceArg>> {
    let start = opt_ints(at, "start")?;
    let stop = opt_ints(at, "stop")?;
    let step = opt_ints(at, "step")?;
    let n = start.len().max(stop.len()).max(step.len());
    Ok((0..n)
        .map(|i| {
            SliceArg::new(
                start.get(i).copied().flatten(),
                stop.get(i).copied().flatten(),
                step.get(i).copied().flatten().unwrap_or(1),
            )
        })
        .collect())
}

/// Splits `a, indices..., updates` inputs.
fn scatter_inputs<'a>(
    op: &str,
    x: &'a [Array],
    k: usize,
) -> Result<(&'a Array, &'a [Array], &'a Array)> {
    want_inputs(op, x, k + 2)?;
    Ok((&x[0], &x[1..=k], &x[k + 1]))
}

macro_rules! scatter_def {
    ($r:expr, $name:literal, $kind:expr) => {
        $r.push(OpDef {
            name: $name,
            inputs: "a, indices..., updates",
            attrs: const { &[attr("axes", "ints", None)] },
            run: |x, at| {
                let axes = at
                    .axes_opt("axes")?
                    .ok_or_else(|| Error::invalid($name, "attribute 'axes' is required"))?;
                let (a, idx, upd) = scatter_inputs($name, x, axes.len())?;
                Ok(vec![crate::ops::scatter_kind(a, idx, upd, &axes, $kind)?])
            },
        });
    };
}

macro_rules! slice_update_def {
    ($r:expr, $name:literal, $kind:expr) => {
        $r.push(OpDef {
            name: $name,
            inputs: "a, update",
            attrs: const {
                &[
                    attr("start", "ints?", Some("[]")),
                    attr("stop", "ints?", Some("[]")),
                    attr("step", "ints?", Some("[]")),
                ]
            },
            run: |x, at| {
                want_inputs($name, x, 2)?;
                Ok(vec![crate::ops::slice_update_kind(
                    &x[0],
                    &x[1],
                    &slice_args(at)?,
                    $kind,
                )?])
            },
        });
    };
}

pub fn register(r: &mut Vec<OpDef>) {
    r.push(OpDef {
        name: "take",
        inputs: "a, indices",
        attrs: const { &[attr("axis", "int?", Some("null"))] },
        run: |x, at| {
            want_inputs("take", x, 2)?;
            Ok(vec![crate::ops::take(&x[0], &x[1], axis_opt(at)?)?])
        },
    });
    r.push(OpDef {
        name: "take_along_axis",
        inputs: "a, indices",
        attrs: const { &[attr("axis", "int?", Some("-1"))] },
        run: |x, at| {
            want_inputs("take_along_axis", x, 2)?;
            let axis = if at.map.get("axis") == Some(&Value::Null) {
                None
            } else {
                Some(at.axis_or("axis", -1)?)
            };
            Ok(vec![crate::ops::take_along_axis(&x[0], &x[1], axis)?])
        },
    });
    r.push(OpDef {
        name: "put_along_axis",
        inputs: "a, indices, values",
        attrs: const { &[attr("axis", "int?", Some("null")), attr("kind", "str", Some("set"))] },
        run: |x, at| {
            want_inputs("put_along_axis", x, 3)?;
            let kind = kind_of("put_along_axis", at)?;
            Ok(vec![crate::ops::put_along_axis_kind(
                &x[0],
                &x[1],
                &x[2],
                axis_opt(at)?,
                kind,
            )?])
        },
    });
    r.push(OpDef {
        name: "gather",
        inputs: "a, indices...",
        attrs: const {
            &[
                attr("axes", "ints", None),
                attr("slice_sizes", "ints", None),
            ]
        },
        run: |x, at| {
            if x.is_empty() {
                return Err(Error::invalid("gather", "takes at least 1 input, got 0"));
            }
            let axes = at
                .axes_opt("axes")?
                .ok_or_else(|| Error::invalid("gather", "attribute 'axes' is required"))?;
            let sizes = at.shape_req("slice_sizes")?;
            Ok(vec![crate::ops::gather(&x[0], &x[1..], &axes, &sizes)?])
        },
    });
    scatter_def!(r, "scatter", ScatterKind::Set);
    scatter_def!(r, "scatter_add", ScatterKind::Add);
    scatter_def!(r, "scatter_prod", ScatterKind::Prod);
    scatter_def!(r, "scatter_max", ScatterKind::Max);
    scatter_def!(r, "scatter_min", ScatterKind::Min);
    slice_update_def!(r, "slice_update", ScatterKind::Set);
    slice_update_def!(r, "slice_update_add", ScatterKind::Add);
    slice_update_def!(r, "slice_update_prod", ScatterKind::Prod);
    slice_update_def!(r, "slice_update_max", ScatterKind::Max);
    slice_update_def!(r, "slice_update_min", ScatterKind::Min);
    r.push(OpDef {
        name: "nonzero",
        inputs: "a",
        attrs: &[],
        run: |x, _| {
            want_inputs("nonzero", x, 1)?;
            crate::ops::nonzero(&x[0])
        },
    });
    r.push(OpDef {
        name: "argwhere",
        inputs: "a",
        attrs: &[],
        run: |x, _| {
            want_inputs("argwhere", x, 1)?;
            Ok(vec![crate::ops::argwhere(&x[0])?])
        },
    });
    r.push(OpDef {
        name: "boolean_mask",
        inputs: "a, mask",
        attrs: &[],
        run: |x, _| {
            want_inputs("boolean_mask", x, 2)?;
            Ok(vec![crate::ops::boolean_mask(&x[0], &x[1])?])
        },
    });
}
