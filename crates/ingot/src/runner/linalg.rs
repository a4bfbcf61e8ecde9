//! Runner entries: linalg family (NumPy / scipy.linalg names and attributes).

use super::{attr, want_inputs, Attrs, OpDef};
use crate::array::Array;
use crate::ops::{NormOrd, TensorAxes};
use crate::{Error, Result};
use serde_json::Value;

/// `ord` as NumPy takes it: absent/null, a number, or a string ('fro', 'nuc', 'inf', '-inf').
fn norm_ord(at: &Attrs) -> Result<NormOrd> {
    match at.get("ord") {
        None => Ok(NormOrd::Default),
        Some(Value::String(s)) => NormOrd::parse(s),
        Some(v) => v.as_f64().map(NormOrd::P).ok_or_else(|| {
            Error::invalid(
                &at.op,
                format!("attribute 'ord' must be a number or a string, got {v}"),
            )
        }),
    }
}

/// tensordot's `axes`: an integer, or two lists (each an int or a list of ints).
fn tensor_axes(at: &Attrs) -> Result<TensorAxes> {
    let bad = |v: &Value| {
        Error::invalid(
            &at.op,
            format!("attribute 'axes' must be an integer or two axis lists, got {v}"),
        )
    };
    let list = |v: &Value| -> Result<Vec<isize>> {
        match v {
            Value::Array(xs) => xs
                .iter()
                .map(|x| x.as_i64().map(|i| i as isize).ok_or_else(|| bad(v)))
                .collect(),
            _ => v.as_i64().map(|i| vec![i as isize]).ok_or_else(|| bad(v)),
        }
    };
    match at.get("axes") {
        None => Ok(TensorAxes::Count(2)),
        Some(v @ Value::Array(xs)) => {
            if xs.len() != 2 {
                return Err(bad(v));
            }
            Ok(TensorAxes::Pairs(list(&xs[0])?, list(&xs[1])?))
        }
        Some(v) => v
            .as_u64()
            .map(|n| TensorAxes::Count(n as usize))
            .ok_or_else(|| bad(v)),
    }
}

macro_rules! unary {
    ($r:expr, $name:literal, $f:expr) => {
        $r.push(OpDef {
            name: $name,
            inputs: "a",
            attrs: &[],
            run: |x: &[Array], _: &Attrs| {
                want_inputs($name, x, 1)?;
                Ok(vec![$f(&x[0])?])
            },
        });
    };
}

pub fn register(r: &mut Vec<OpDef>) {
    r.push(OpDef {
        name: "matmul",
        inputs: "a, b",
        attrs: &[],
        run: |x, _| {
            want_inputs("matmul", x, 2)?;
            Ok(vec![crate::ops::matmul(&x[0], &x[1])?])
        },
    });
    r.push(OpDef {
        name: "addmm",
        inputs: "c, a, b",
        attrs: const {
            &[
                attr("alpha", "float", Some("1.0")),
                attr("beta", "float", Some("1.0")),
            ]
        },
        run: |x, at| {
            want_inputs("addmm", x, 3)?;
            Ok(vec![crate::ops::addmm(
                &x[0],
                &x[1],
                &x[2],
                at.f64_or("alpha", 1.0)?,
                at.f64_or("beta", 1.0)?,
            )?])
        },
    });
    r.push(OpDef {
        name: "outer",
        inputs: "a, b",
        attrs: &[],
        run: |x, _| {
            want_inputs("outer", x, 2)?;
            Ok(vec![crate::ops::outer(&x[0], &x[1])?])
        },
    });
    r.push(OpDef {
        name: "inner",
        inputs: "a, b",
        attrs: &[],
        run: |x, _| {
            want_inputs("inner", x, 2)?;
            Ok(vec![crate::ops::inner(&x[0], &x[1])?])
        },
    });
    r.push(OpDef {
        name: "kron",
        inputs: "a, b",
        attrs: &[],
        run: |x, _| {
            want_inputs("kron", x, 2)?;
            Ok(vec![crate::ops::kron(&x[0], &x[1])?])
        },
    });
    r.push(OpDef {
        name: "tensordot",
        inputs: "a, b",
        attrs: const { &[attr("axes", "int | [axes, axes]", Some("2"))] },
        run: |x, at| {
            want_inputs("tensordot", x, 2)?;
            Ok(vec![crate::ops::tensordot(&x[0], &x[1], tensor_axes(at)?)?])
        },
    });
    r.push(OpDef {
        name: "einsum",
        inputs: "operands...",
        attrs: const { &[attr("subscripts", "str", None)] },
        run: |x, at| {
            let s = at
                .str_opt("subscripts")?
                .ok_or_else(|| Error::invalid("einsum", "attribute 'subscripts' is required"))?;
            Ok(vec![crate::ops::einsum(&s, x)?])
        },
    });
    r.push(OpDef {
        name: "cross",
        inputs: "a, b",
        attrs: const { &[attr("axis", "int", Some("-1"))] },
        run: |x, at| {
            want_inputs("cross", x, 2)?;
            Ok(vec![crate::ops::cross(
                &x[0],
                &x[1],
                at.axis_or("axis", -1)?,
            )?])
        },
    });
    r.push(OpDef {
        name: "norm",
        inputs: "a",
        attrs: const {
            &[
                attr("ord", "float | str", None),
                attr("axis", "axes", None),
                attr("keepdims", "bool", Some("false")),
            ]
        },
        run: |x, at| {
            want_inputs("norm", x, 1)?;
            let axes = at.axes_opt("axis")?;
            Ok(vec![crate::ops::norm(
                &x[0],
                norm_ord(at)?,
                axes.as_deref(),
                at.bool_or("keepdims", false)?,
            )?])
        },
    });
    r.push(OpDef {
        name: "cholesky",
        inputs: "a",
        attrs: const { &[attr("upper", "bool", Some("false"))] },
        run: |x, at| {
            want_inputs("cholesky", x, 1)?;
            Ok(vec![crate::ops::cholesky(
                &x[0],
                at.bool_or("upper", false)?,
            )?])
        },
    });
    unary!(r, "inv", crate::ops::inv);
    unary!(r, "det", crate::ops::det);
    r.push(OpDef {
        name: "slogdet",
        inputs: "a",
        attrs: &[],
        run: |x, _| {
            want_inputs("slogdet", x, 1)?;
            let (s, l) = crate::ops::slogdet(&x[0])?;
            Ok(vec![s, l])
        },
    });
    r.push(OpDef {
        name: "lu_factor",
        inputs: "a",
        attrs: &[],
        run: |x, _| {
            want_inputs("lu_factor", x, 1)?;
            let (lu, piv) = crate::ops::lu_factor(&x[0])?;
            Ok(vec![lu, piv])
        },
    });
    r.push(OpDef {
        name: "lu",
        inputs: "a",
        attrs: &[],
        run: |x, _| {
            want_inputs("lu", x, 1)?;
            let (p, l, u) = crate::ops::lu(&x[0])?;
            Ok(vec![p, l, u])
        },
    });
    r.push(OpDef {
        name: "qr",
        inputs: "a",
        attrs: &[],
        run: |x, _| {
            want_inputs("qr", x, 1)?;
            let (q, rr) = crate::ops::qr(&x[0])?;
            Ok(vec![q, rr])
        },
    });
    r.push(OpDef {
        name: "svd",
        inputs: "a",
        attrs: const {
            &[
                attr("full_matrices", "bool", Some("true")),
                attr("compute_uv", "bool", Some("true")),
            ]
        },
        run: |x, at| {
            want_inputs("svd", x, 1)?;
            crate::ops::svd(
                &x[0],
                at.bool_or("full_matrices", true)?,
                at.bool_or("compute_uv", true)?,
            )
        },
    });
    r.push(OpDef {
        name: "eigh",
        inputs: "a",
        attrs: const { &[attr("UPLO", "str", Some("L"))] },
        run: |x, at| {
            want_inputs("eigh", x, 1)?;
            let (w, v) = crate::ops::eigh(&x[0], uplo(at)?)?;
            Ok(vec![w, v])
        },
    });
    r.push(OpDef {
        name: "eigvalsh",
        inputs: "a",
        attrs: const { &[attr("UPLO", "str", Some("L"))] },
        run: |x, at| {
            want_inputs("eigvalsh", x, 1)?;
            Ok(vec![crate::ops::eigvalsh(&x[0], uplo(at)?)?])
        },
    });
    r.push(OpDef {
        name: "solve",
        inputs: "a, b",
        attrs: &[],
        run: |x, _| {
            want_inputs("solve", x, 2)?;
            Ok(vec![crate::ops::solve(&x[0], &x[1])?])
        },
    });
    r.push(OpDef {
        name: "solve_triangular",
        inputs: "a, b",
        attrs: const {
            &[
                attr("lower", "bool", Some("false")),
                attr("unit_diagonal", "bool", Some("false")),
                attr("left", "bool", Some("true")),
            ]
        },
        run: |x, at| {
            want_inputs("solve_triangular", x, 2)?;
            Ok(vec![crate::ops::solve_triangular(
                &x[0],
                &x[1],
                !at.bool_or("lower", false)?,
                at.bool_or("unit_diagonal", false)?,
                at.bool_or("left", true)?,
            )?])
        },
    });
    r.push(OpDef {
        name: "pinv",
        inputs: "a",
        attrs: const { &[attr("rcond", "float", Some("1e-15"))] },
        run: |x, at| {
            want_inputs("pinv", x, 1)?;
            Ok(vec![crate::ops::pinv(&x[0], at.f64_or("rcond", 1e-15)?)?])
        },
    });
}

/// NumPy's `UPLO`: "L" (default) or "U".
fn uplo(at: &Attrs) -> Result<bool> {
    match at.str_or("UPLO", "L")?.as_str() {
        "L" => Ok(false),
        "U" => Ok(true),
        s => Err(Error::invalid(
            &at.op,
            format!("attribute 'UPLO' must be \"L\" or \"U\", got \"{s}\""),
        )),
    }
}
