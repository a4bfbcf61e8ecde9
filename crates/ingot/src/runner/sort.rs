//! Runner entries: sort family (NumPy's attribute names: `axis`, `kth`, `side`).

use super::{attr, want_inputs, Attrs, OpDef};
use crate::{Error, Result};
use serde_json::Value;

/// `axis` as NumPy takes it for sorts: absent gives `default`, null flattens (None).
fn axis_attr(at: &Attrs, default: Option<isize>) -> Result<Option<isize>> {
    match at.map.get("axis") {
        None => Ok(default),
        Some(Value::Null) => Ok(None),
        Some(v) => v.as_i64().map(|x| Some(x as isize)).ok_or_else(|| {
            Error::invalid(&at.op, format!("attribute 'axis' must be an integer or null, got {v}"))
        }),
    }
}

pub fn register(r: &mut Vec<OpDef>) {
    r.push(OpDef {
        name: "sort",
        inputs: "a",
        attrs: const { &[attr("axis", "int or null", Some("-1"))] },
        run: |x, at| {
            want_inputs("sort", x, 1)?;
            Ok(vec![crate::ops::sort(&x[0], axis_attr(at, Some(-1))?)?])
        },
    });
    r.push(OpDef {
        name: "argsort",
        inputs: "a",
        attrs: const { &[attr("axis", "int or null", Some("-1"))] },
        run: |x, at| {
            want_inputs("argsort", x, 1)?;
            Ok(vec![crate::ops::argsort(&x[0], axis_attr(at, Some(-1))?)?])
        },
    });
    r.push(OpDef {
        name: "partition",
        inputs: "a",
        attrs: const { &[attr("kth", "int", None), attr("axis", "int or null", Some("-1"))] },
        run: |x, at| {
            want_inputs("partition", x, 1)?;
            let kth = at.i64_req("kth")? as isize;
            Ok(vec![crate::ops::partition(&x[0], kth, axis_attr(at, Some(-1))?)?])
        },
    });
    r.push(OpDef {
        name: "argpartition",
        inputs: "a",
        attrs: const { &[attr("kth", "int", None), attr("axis", "int or null", Some("-1"))] },
        run: |x, at| {
            want_inputs("argpartition", x, 1)?;
            let kth = at.i64_req("kth")? as isize;
            Ok(vec![crate::ops::argpartition(&x[0], kth, axis_attr(at, Some(-1))?)?])
        },
    });
    r.push(OpDef {
        name: "topk",
        inputs: "a",
        attrs: const {
            &[
                attr("k", "int", None),
                attr("axis", "int", Some("-1")),
                attr("largest", "bool", Some("true")),
                attr("sorted", "bool", Some("true")),
            ]
        },
        run: |x, at| {
            want_inputs("topk", x, 1)?;
            let (v, i) = crate::ops::topk(
                &x[0],
                at.usize_req("k")?,
                at.axis_or("axis", -1)?,
                at.bool_or("largest", true)?,
                at.bool_or("sorted", true)?,
            )?;
            Ok(vec![v, i])
        },
    });
    r.push(OpDef {
        name: "searchsorted",
        inputs: "a, v",
        attrs: const { &[attr("side", "str", Some("left"))] },
        run: |x, at| {
            want_inputs("searchsorted", x, 2)?;
            let right = match at.str_or("side", "left")?.as_str() {
                "left" => false,
                "right" => true,
                s => {
                    return Err(Error::invalid(
                        "searchsorted",
                        format!("side must be 'left' or 'right', got '{s}'"),
                    ))
                }
            };
            Ok(vec![crate::ops::searchsorted(&x[0], &x[1], right)?])
        },
    });
    r.push(OpDef {
        name: "unique",
        inputs: "a",
        attrs: const {
            &[
                attr("return_index", "bool", Some("false")),
                attr("return_inverse", "bool", Some("false")),
                attr("return_counts", "bool", Some("false")),
            ]
        },
        run: |x, at| {
            want_inputs("unique", x, 1)?;
            let u = crate::ops::unique(
                &x[0],
                at.bool_or("return_index", false)?,
                at.bool_or("return_inverse", false)?,
                at.bool_or("return_counts", false)?,
            )?;
            // Outputs in np.unique's order: values, then the ones asked for.
            let mut out = vec![u.values];
            out.extend(u.indices);
            out.extend(u.inverse);
            out.extend(u.counts);
            Ok(out)
        },
    });
    r.push(OpDef {
        name: "median",
        inputs: "a",
        attrs: const {
            &[
                attr("axis", "int, list of int or null", Some("null")),
                attr("keepdims", "bool", Some("false")),
            ]
        },
        run: |x, at| {
            want_inputs("median", x, 1)?;
            let axes = at.axes_opt("axis")?;
            Ok(vec![crate::ops::median(
                &x[0],
                axes.as_deref(),
                at.bool_or("keepdims", false)?,
            )?])
        },
    });
}
