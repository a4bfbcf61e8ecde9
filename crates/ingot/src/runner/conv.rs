//! Runner entries: convolution and pooling (channels last, MLX names and layouts).

use super::{attr, want_inputs, Attrs, OpDef};
use crate::array::Array;
use crate::ops::Padding;
use crate::{Error, Result};
use serde_json::Value;

/// A list of non-negative integers from an int or a list (`default` when absent).
fn sizes(at: &Attrs, name: &str, default: usize) -> Result<Vec<usize>> {
    match at.ints_opt(name)? {
        None => Ok(vec![default]),
        Some(v) => v
            .into_iter()
            .map(|x| {
                usize::try_from(x).map_err(|_| {
                    Error::invalid(&at.op, format!("attribute '{name}' has negative entry {x}"))
                })
            })
            .collect(),
    }
}

/// `padding`: an int, a list of ints, a list of [lo, hi] pairs, or "same" / "valid".
fn padding(at: &Attrs) -> Result<Padding> {
    let bad = |v: &Value| {
        Error::invalid(
            &at.op,
            format!(
                "attribute 'padding' must be an int, a list of ints, a list of [lo, hi] pairs, \"same\" or \"valid\", got {v}"
            ),
        )
    };
    let Some(v) = at.get("padding") else {
        return Ok(Padding::Explicit(vec![0]));
    };
    match v {
        Value::String(s) => Padding::parse(s).ok_or_else(|| bad(v)),
        Value::Array(xs) if xs.iter().any(|x| x.is_array()) => xs
            .iter()
            .map(|p| match p.as_array().map(|p| p.as_slice()) {
                Some([lo, hi]) => match (lo.as_u64(), hi.as_u64()) {
                    (Some(lo), Some(hi)) => Ok((lo as usize, hi as usize)),
                    _ => Err(bad(v)),
                },
                _ => Err(bad(v)),
            })
            .collect::<Result<Vec<_>>>()
            .map(Padding::Pairs),
        Value::Array(_) | Value::Number(_) => match at.ints_opt("padding") {
            Ok(Some(xs)) if xs.iter().all(|&x| x >= 0) => Ok(Padding::Explicit(
                xs.into_iter().map(|x| x as usize).collect(),
            )),
            _ => Err(bad(v)),
        },
        _ => Err(bad(v)),
    }
}

/// The single value a 1-D op takes.
fn one(op: &str, v: &[usize], what: &str) -> Result<usize> {
    match v {
        [a] => Ok(*a),
        _ => Err(Error::invalid(
            op,
            format!("{what} needs 1 value for 1 spatial dim, got {v:?}"),
        )),
    }
}

fn stride_opt(at: &Attrs) -> Result<Option<Vec<usize>>> {
    if at.has("stride") {
        Ok(Some(sizes(at, "stride", 1)?))
    } else {
        Ok(None)
    }
}

const PAD_TY: &str = "int, ints, [[lo, hi], ..] or \"same\"/\"valid\"";

macro_rules! conv_def {
    ($r:expr, $name:literal, $nd:expr) => {
        $r.push(OpDef {
            name: $name,
            inputs: "x, weight",
            attrs: const {
                &[
                    attr("stride", "int or ints", Some("1")),
                    attr("padding", PAD_TY, Some("0")),
                    attr("dilation", "int or ints", Some("1")),
                    attr("groups", "int", Some("1")),
                ]
            },
            run: |x: &[Array], at: &Attrs| {
                want_inputs($name, x, 2)?;
                let (s, d) = (sizes(at, "stride", 1)?, sizes(at, "dilation", 1)?);
                let (p, g) = (padding(at)?, at.usize_or("groups", 1)?);
                let y = match $nd {
                    1 => crate::ops::conv1d(
                        &x[0],
                        &x[1],
                        one($name, &s, "stride")?,
                        p,
                        one($name, &d, "dilation")?,
                        g,
                    )?,
                    2 => crate::ops::conv2d(&x[0], &x[1], &s, p, &d, g)?,
                    _ => crate::ops::conv3d(&x[0], &x[1], &s, p, &d, g)?,
                };
                Ok(vec![y])
            },
        });
    };
}

macro_rules! conv_transpose_def {
    ($r:expr, $name:literal, $nd:expr) => {
        $r.push(OpDef {
            name: $name,
            inputs: "x, weight",
            attrs: const {
                &[
                    attr("stride", "int or ints", Some("1")),
                    attr("padding", PAD_TY, Some("0")),
                    attr("dilation", "int or ints", Some("1")),
                    attr("output_padding", "int or ints", Some("0")),
                    attr("groups", "int", Some("1")),
                ]
            },
            run: |x: &[Array], at: &Attrs| {
                want_inputs($name, x, 2)?;
                let (s, d) = (sizes(at, "stride", 1)?, sizes(at, "dilation", 1)?);
                let op = sizes(at, "output_padding", 0)?;
                let (p, g) = (padding(at)?, at.usize_or("groups", 1)?);
                let y = match $nd {
                    1 => crate::ops::conv_transpose1d(
                        &x[0],
                        &x[1],
                        one($name, &s, "stride")?,
                        p,
                        one($name, &d, "dilation")?,
                        one($name, &op, "output_padding")?,
                        g,
                    )?,
                    2 => crate::ops::conv_transpose2d(&x[0], &x[1], &s, p, &d, &op, g)?,
                    _ => crate::ops::conv_transpose3d(&x[0], &x[1], &s, p, &d, &op, g)?,
                };
                Ok(vec![y])
            },
        });
    };
}

macro_rules! pool_def {
    ($r:expr, $name:literal, $nd:expr, $avg:expr $(, $extra:expr)*) => {
        $r.push(OpDef {
            name: $name,
            inputs: "x",
            attrs: const {
                &[
                    attr("kernel_size", "int or ints", None),
                    attr("stride", "int, ints or null", Some("null")),
                    attr("padding", "int or ints", Some("0")),
                    $($extra),*
                ]
            },
            run: |x: &[Array], at: &Attrs| {
                want_inputs($name, x, 1)?;
                if !at.has("kernel_size") {
                    return Err(Error::invalid($name, "attribute 'kernel_size' is required"));
                }
                let k = sizes(at, "kernel_size", 1)?;
                let s = stride_opt(at)?;
                let p = sizes(at, "padding", 0)?;
                let y = if $avg {
                    let cip = at.bool_or("count_include_pad", true)?;
                    match $nd {
                        1 => {
                            let s1 = s.as_deref().map(|s| one($name, s, "stride")).transpose()?;
                            crate::ops::avg_pool1d(&x[0], one($name, &k, "kernel_size")?, s1, one($name, &p, "padding")?, cip)?
                        },
                        2 => crate::ops::avg_pool2d(&x[0], &k, s.as_deref(), &p, cip)?,
                        _ => crate::ops::avg_pool3d(&x[0], &k, s.as_deref(), &p, cip)?,
                    }
                } else {
                    match $nd {
                        1 => {
                            let s1 = s.as_deref().map(|s| one($name, s, "stride")).transpose()?;
                            crate::ops::max_pool1d(&x[0], one($name, &k, "kernel_size")?, s1, one($name, &p, "padding")?)?
                        },
                        2 => crate::ops::max_pool2d(&x[0], &k, s.as_deref(), &p)?,
                        _ => crate::ops::max_pool3d(&x[0], &k, s.as_deref(), &p)?,
                    }
                };
                Ok(vec![y])
            },
        });
    };
}

pub fn register(r: &mut Vec<OpDef>) {
    conv_def!(r, "conv1d", 1);
    conv_def!(r, "conv2d", 2);
    conv_def!(r, "conv3d", 3);
    conv_transpose_def!(r, "conv_transpose1d", 1);
    conv_transpose_def!(r, "conv_transpose2d", 2);
    conv_transpose_def!(r, "conv_transpose3d", 3);
    r.push(OpDef {
        name: "conv_general",
        inputs: "x, weight",
        attrs: const {
            &[
                attr("stride", "int or ints", Some("1")),
                attr("padding", PAD_TY, Some("0")),
                attr("kernel_dilation", "int or ints", Some("1")),
                attr("input_dilation", "int or ints", Some("1")),
                attr("groups", "int", Some("1")),
                attr("flip", "bool", Some("false")),
            ]
        },
        run: |x, at| {
            want_inputs("conv_general", x, 2)?;
            Ok(vec![crate::ops::conv_general(
                &x[0],
                &x[1],
                &sizes(at, "stride", 1)?,
                padding(at)?,
                &sizes(at, "kernel_dilation", 1)?,
                &sizes(at, "input_dilation", 1)?,
                at.usize_or("groups", 1)?,
                at.bool_or("flip", false)?,
            )?])
        },
    });
    pool_def!(r, "max_pool1d", 1, false);
    pool_def!(r, "max_pool2d", 2, false);
    pool_def!(r, "max_pool3d", 3, false);
    pool_def!(
        r,
        "avg_pool1d",
        1,
        true,
        attr("count_include_pad", "bool", Some("true"))
    );
    pool_def!(
        r,
        "avg_pool2d",
        2,
        true,
        attr("count_include_pad", "bool", Some("true"))
    );
    pool_def!(
        r,
        "avg_pool3d",
        3,
        true,
        attr("count_include_pad", "bool", Some("true"))
    );
}
