//! Runner entries: misc family (softmax, log_softmax, grid_sample, hadamard_transform,
//! histogram).

use super::{attr, want_inputs, Attrs, OpDef};
use crate::array::Array;
use crate::{Error, Result};

fn range(at: &Attrs) -> Result<Option<(f64, f64)>> {
    match at.get("range") {
        None => Ok(None),
        Some(serde_json::Value::Array(v)) if v.len() == 2 => match (v[0].as_f64(), v[1].as_f64()) {
            (Some(lo), Some(hi)) => Ok(Some((lo, hi))),
            _ => Err(Error::invalid(
                &at.op,
                "attribute 'range' must be [min, max] numbers",
            )),
        },
        Some(v) => Err(Error::invalid(
            &at.op,
            format!("attribute 'range' must be [min, max], got {v}"),
        )),
    }
}

pub fn register(r: &mut Vec<OpDef>) {
    r.push(OpDef {
        name: "softmax",
        inputs: "a",
        attrs: const { &[attr("axis", "int", Some("-1"))] },
        run: |x: &[Array], at: &Attrs| {
            want_inputs("softmax", x, 1)?;
            Ok(vec![crate::ops::softmax(&x[0], at.axis_or("axis", -1)?)?])
        },
    });
    r.push(OpDef {
        name: "log_softmax",
        inputs: "a",
        attrs: const { &[attr("axis", "int", Some("-1"))] },
        run: |x, at| {
            want_inputs("log_softmax", x, 1)?;
            Ok(vec![crate::ops::log_softmax(
                &x[0],
                at.axis_or("axis", -1)?,
            )?])
        },
    });
    r.push(OpDef {
        name: "grid_sample",
        inputs: "input, grid",
        attrs: const {
            &[
                attr("mode", "str", Some("bilinear")),
                attr("padding_mode", "str", Some("zeros")),
                attr("align_corners", "bool", Some("false")),
            ]
        },
        run: |x, at| {
            want_inputs("grid_sample", x, 2)?;
            let mode =
                crate::ops::parse_interp_mode("grid_sample", &at.str_or("mode", "bilinear")?)?;
            let pad = crate::ops::parse_grid_padding(
                "grid_sample",
                &at.str_or("padding_mode", "zeros")?,
            )?;
            Ok(vec![crate::ops::grid_sample(
                &x[0],
                &x[1],
                mode,
                pad,
                at.bool_or("align_corners", false)?,
            )?])
        },
    });
    r.push(OpDef {
        name: "hadamard_transform",
        inputs: "a",
        attrs: const { &[attr("scale", "float", Some("null"))] },
        run: |x, at| {
            want_inputs("hadamard_transform", x, 1)?;
            Ok(vec![crate::ops::hadamard_transform(
                &x[0],
                at.f64_opt("scale")?,
            )?])
        },
    });
    r.push(OpDef {
        name: "histogram",
        inputs: "a, [weights]",
        attrs: const {
            &[
                attr("bins", "int", Some("10")),
                attr("range", "floats", Some("null")),
            ]
        },
        run: |x, at| {
            if x.is_empty() || x.len() > 2 {
                return Err(Error::invalid(
                    "histogram",
                    format!("takes 1 or 2 input(s), got {}", x.len()),
                ));
            }
            let (c, e) =
                crate::ops::histogram(&x[0], at.usize_or("bins", 10)?, range(at)?, x.get(1))?;
            Ok(vec![c, e])
        },
    });
}
