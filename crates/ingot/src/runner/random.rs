//! Runner entries: random family. A `seed` (int) stands for the key input: the op runs on
//! `key(seed)`.

use super::{attr, want_inputs, Attrs, OpDef};
use crate::array::Array;
use crate::dtype::DType;
use crate::{Error, Result};

fn seed_key(at: &Attrs) -> Result<Array> {
    let s = at.i64_or("seed", 0)?;
    Ok(crate::ops::random::key(s as u64))
}

fn dtype_or(at: &Attrs, default: DType) -> Result<DType> {
    Ok(at.dtype_opt("dtype")?.unwrap_or(default))
}

fn shape(at: &Attrs) -> Result<Vec<usize>> {
    Ok(at.shape_opt("shape")?.unwrap_or_default())
}

pub fn register(r: &mut Vec<OpDef>) {
    r.push(OpDef {
        name: "random.key",
        inputs: "",
        attrs: const { &[attr("seed", "int", Some("0"))] },
        run: |x, at| {
            want_inputs("key", x, 0)?;
            Ok(vec![seed_key(at)?])
        },
    });
    r.push(OpDef {
        name: "random.split",
        inputs: "",
        attrs: const {
            &[
                attr("seed", "int", Some("0")),
                attr("num", "int", Some("2")),
            ]
        },
        run: |x, at| {
            want_inputs("split", x, 0)?;
            Ok(vec![crate::ops::random::split(
                &seed_key(at)?,
                at.usize_or("num", 2)?,
            )?])
        },
    });
    r.push(OpDef {
        name: "random.random_bits",
        inputs: "",
        attrs: const {
            &[
                attr("seed", "int", Some("0")),
                attr("shape", "shape", Some("[]")),
            ]
        },
        run: |x, at| {
            want_inputs("random_bits", x, 0)?;
            Ok(vec![crate::ops::random::random_bits(
                &seed_key(at)?,
                &shape(at)?,
            )?])
        },
    });
    r.push(OpDef {
        name: "random.uniform",
        inputs: "",
        attrs: const {
            &[
                attr("seed", "int", Some("0")),
                attr("shape", "shape", Some("[]")),
                attr("low", "float", Some("0.0")),
                attr("high", "float", Some("1.0")),
                attr("dtype", "dtype", Some("float32")),
            ]
        },
        run: |x, at| {
            want_inputs("uniform", x, 0)?;
            Ok(vec![crate::ops::random::uniform(
                &seed_key(at)?,
                &shape(at)?,
                at.f64_or("low", 0.0)?,
                at.f64_or("high", 1.0)?,
                dtype_or(at, DType::F32)?,
            )?])
        },
    });
    r.push(OpDef {
        name: "random.normal",
        inputs: "",
        attrs: const {
            &[
                attr("seed", "int", Some("0")),
                attr("shape", "shape", Some("[]")),
                attr("loc", "float", Some("0.0")),
                attr("scale", "float", Some("1.0")),
                attr("dtype", "dtype", Some("float32")),
            ]
        },
        run: |x, at| {
            want_inputs("normal", x, 0)?;
            Ok(vec![crate::ops::random::normal(
                &seed_key(at)?,
                &shape(at)?,
                at.f64_or("loc", 0.0)?,
                at.f64_or("scale", 1.0)?,
                dtype_or(at, DType::F32)?,
            )?])
        },
    });
    r.push(OpDef {
        name: "random.truncated_normal",
        inputs: "",
        attrs: const {
            &[
                attr("seed", "int", Some("0")),
                attr("lower", "float", None),
                attr("upper", "float", None),
                attr("shape", "shape", Some("[]")),
                attr("dtype", "dtype", Some("float32")),
            ]
        },
        run: |x, at| {
            want_inputs("truncated_normal", x, 0)?;
            let req = |n: &str| {
                at.f64_opt(n)?.ok_or_else(|| {
                    Error::invalid("truncated_normal", format!("attribute '{n}' is required"))
                })
            };
            Ok(vec![crate::ops::random::truncated_normal(
                &seed_key(at)?,
                req("lower")?,
                req("upper")?,
                &shape(at)?,
                dtype_or(at, DType::F32)?,
            )?])
        },
    });
    r.push(OpDef {
        name: "random.bernoulli",
        inputs: "",
        attrs: const {
            &[
                attr("seed", "int", Some("0")),
                attr("p", "float", Some("0.5")),
                attr("shape", "shape", Some("[]")),
            ]
        },
        run: |x, at| {
            want_inputs("bernoulli", x, 0)?;
            let s = shape(at)?;
            Ok(vec![crate::ops::random::bernoulli(
                &seed_key(at)?,
                at.f64_or("p", 0.5)?,
                Some(&s),
            )?])
        },
    });
    r.push(OpDef {
        name: "random.gumbel",
        inputs: "",
        attrs: const {
            &[
                attr("seed", "int", Some("0")),
                attr("shape", "shape", Some("[]")),
                attr("dtype", "dtype", Some("float32")),
            ]
        },
        run: |x, at| {
            want_inputs("gumbel", x, 0)?;
            Ok(vec![crate::ops::random::gumbel(
                &seed_key(at)?,
                &shape(at)?,
                dtype_or(at, DType::F32)?,
            )?])
        },
    });
    r.push(OpDef {
        name: "random.randint",
        inputs: "",
        attrs: const {
            &[
                attr("seed", "int", Some("0")),
                attr("low", "int", None),
                attr("high", "int", None),
                attr("shape", "shape", Some("[]")),
                attr("dtype", "dtype", Some("int32")),
            ]
        },
        run: |x, at| {
            want_inputs("randint", x, 0)?;
            Ok(vec![crate::ops::random::randint(
                &seed_key(at)?,
                at.i64_req("low")?,
                at.i64_req("high")?,
                &shape(at)?,
                dtype_or(at, DType::I32)?,
            )?])
        },
    });
    r.push(OpDef {
        name: "random.permutation",
        inputs: "",
        attrs: const { &[attr("seed", "int", Some("0")), attr("n", "int", None)] },
        run: |x, at| {
            want_inputs("permutation", x, 0)?;
            Ok(vec![crate::ops::random::permutation(
                &seed_key(at)?,
                at.usize_req("n")?,
            )?])
        },
    });
    r.push(OpDef {
        name: "random.categorical",
        inputs: "logits",
        attrs: const {
            &[
                attr("seed", "int", Some("0")),
                attr("axis", "int", Some("-1")),
                attr("num_samples", "int", Some("null")),
            ]
        },
        run: |x, at| {
            want_inputs("categorical", x, 1)?;
            let n = match at.get("num_samples") {
                None => None,
                Some(_) => Some(at.usize_req("num_samples")?),
            };
            Ok(vec![crate::ops::random::categorical(
                &seed_key(at)?,
                &x[0],
                at.axis_or("axis", -1)?,
                n,
            )?])
        },
    });
}
