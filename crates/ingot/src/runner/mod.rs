//! The op runner's registry: every public operation by name, with its attributes, callable
//! from a JSON spec (`ingot ops run SPEC.json`). One file per op family registers its ops;
//! attribute names follow docs/ops.md (NumPy's names where NumPy has the op).

mod conv;
mod elementwise;
mod fft;
mod index;
mod linalg;
mod misc;
mod random;
mod reduce;
mod shape;
mod sort;
pub mod spec;

use crate::array::Array;
use crate::dtype::DType;
use crate::{Error, Result};
use serde_json::Value;

/// One attribute of an op: its name, its type as docs/ops.md writes it, and its default
/// (`None`: required).
#[derive(Clone, Copy, Debug)]
pub struct AttrDef {
    pub name: &'static str,
    pub ty: &'static str,
    pub default: Option<&'static str>,
}

/// Shorthand for an [`AttrDef`].
pub const fn attr(name: &'static str, ty: &'static str, default: Option<&'static str>) -> AttrDef {
    AttrDef { name, ty, default }
}

/// A runnable operation.
pub struct OpDef {
    pub name: &'static str,
    /// The inputs, e.g. `"a, b"`, or `"arrays..."` for a variable number.
    pub inputs: &'static str,
    pub attrs: &'static [AttrDef],
    pub run: fn(&[Array], &Attrs) -> Result<Vec<Array>>,
}

/// Every registered op, sorted by name.
pub fn registry() -> Vec<OpDef> {
    let mut r = Vec::new();
    elementwise::register(&mut r);
    reduce::register(&mut r);
    shape::register(&mut r);
    index::register(&mut r);
    sort::register(&mut r);
    linalg::register(&mut r);
    conv::register(&mut r);
    fft::register(&mut r);
    misc::register(&mut r);
    random::register(&mut r);
    r.sort_by_key(|d| d.name);
    r
}

/// Looks an op up by name.
pub fn find(name: &str) -> Option<OpDef> {
    registry().into_iter().find(|d| d.name == name)
}

/// Runs a registered op on inputs, checking the input count.
pub fn run_op(name: &str, inputs: &[Array], attrs: &Attrs) -> Result<Vec<Array>> {
    let def =
        find(name).ok_or_else(|| Error::invalid("ops run", format!("unknown op '{name}'")))?;
    attrs.check_known(&def)?;
    (def.run)(inputs, attrs)
}

/// The attributes of one case: a JSON object, read with typed getters whose errors name the
/// op and the attribute.
#[derive(Clone, Debug, Default)]
pub struct Attrs {
    pub op: String,
    pub map: serde_json::Map<String, Value>,
}

impl Attrs {
    pub fn new(op: &str, v: Option<&Value>) -> Result<Attrs> {
        let map = match v {
            None | Some(Value::Null) => Default::default(),
            Some(Value::Object(m)) => m.clone(),
            Some(other) => {
                return Err(Error::invalid(
                    op,
                    format!("attrs must be a JSON object, got {other}"),
                ))
            }
        };
        Ok(Attrs {
            op: op.to_string(),
            map,
        })
    }

    fn check_known(&self, def: &OpDef) -> Result<()> {
        for k in self.map.keys() {
            if !def.attrs.iter().any(|a| a.name == k) {
                let known: Vec<&str> = def.attrs.iter().map(|a| a.name).collect();
                return Err(Error::invalid(
                    &self.op,
                    format!("unknown attribute '{k}' (known: {})", known.join(", ")),
                ));
            }
        }
        Ok(())
    }

    fn err(&self, name: &str, want: &str, got: &Value) -> Error {
        Error::invalid(
            &self.op,
            format!("attribute '{name}' must be {want}, got {got}"),
        )
    }

    /// The raw value, if present and not null.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn i64_opt(&self, name: &str) -> Result<Option<i64>> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| self.err(name, "an integer", v)),
        }
    }
    pub fn i64_or(&self, name: &str, default: i64) -> Result<i64> {
        Ok(self.i64_opt(name)?.unwrap_or(default))
    }
    pub fn i64_req(&self, name: &str) -> Result<i64> {
        self.i64_opt(name)?
            .ok_or_else(|| Error::invalid(&self.op, format!("attribute '{name}' is required")))
    }
    /// A non-negative integer.
    pub fn usize_or(&self, name: &str, default: usize) -> Result<usize> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .as_u64()
                .map(|x| x as usize)
                .ok_or_else(|| self.err(name, "a non-negative integer", v)),
        }
    }
    pub fn usize_req(&self, name: &str) -> Result<usize> {
        match self.get(name) {
            None => Err(Error::invalid(
                &self.op,
                format!("attribute '{name}' is required"),
            )),
            Some(v) => v
                .as_u64()
                .map(|x| x as usize)
                .ok_or_else(|| self.err(name, "a non-negative integer", v)),
        }
    }
    pub fn f64_opt(&self, name: &str) -> Result<Option<f64>> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| self.err(name, "a number", v)),
        }
    }
    pub fn f64_or(&self, name: &str, default: f64) -> Result<f64> {
        Ok(self.f64_opt(name)?.unwrap_or(default))
    }
    pub fn bool_or(&self, name: &str, default: bool) -> Result<bool> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| self.err(name, "true or false", v)),
        }
    }
    pub fn str_opt(&self, name: &str) -> Result<Option<String>> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(|s| Some(s.to_string()))
                .ok_or_else(|| self.err(name, "a string", v)),
        }
    }
    pub fn str_or(&self, name: &str, default: &str) -> Result<String> {
        Ok(self.str_opt(name)?.unwrap_or_else(|| default.to_string()))
    }
    /// An integer list (a single integer counts as a list of one).
    pub fn ints_opt(&self, name: &str) -> Result<Option<Vec<i64>>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Array(xs)) => xs
                .iter()
                .map(|x| {
                    x.as_i64()
                        .ok_or_else(|| self.err(name, "a list of integers", x))
                })
                .collect::<Result<Vec<_>>>()
                .map(Some),
            Some(v) => v
                .as_i64()
                .map(|x| Some(vec![x]))
                .ok_or_else(|| self.err(name, "an integer or a list of integers", v)),
        }
    }
    /// Axes as NumPy takes them: an int, a list, or null/absent for "all".
    pub fn axes_opt(&self, name: &str) -> Result<Option<Vec<isize>>> {
        Ok(self
            .ints_opt(name)?
            .map(|v| v.into_iter().map(|x| x as isize).collect()))
    }
    pub fn axis_or(&self, name: &str, default: isize) -> Result<isize> {
        Ok(self.i64_or(name, default as i64)? as isize)
    }
    /// A shape: a list of non-negative integers (negative entries are an error here; ops
    /// that accept -1 read `ints_opt`).
    pub fn shape_opt(&self, name: &str) -> Result<Option<Vec<usize>>> {
        match self.ints_opt(name)? {
            None => Ok(None),
            Some(v) => v
                .into_iter()
                .map(|x| {
                    usize::try_from(x).map_err(|_| {
                        Error::invalid(
                            &self.op,
                            format!("attribute '{name}' has negative entry {x}"),
                        )
                    })
                })
                .collect::<Result<Vec<_>>>()
                .map(Some),
        }
    }
    pub fn shape_req(&self, name: &str) -> Result<Vec<usize>> {
        self.shape_opt(name)?
            .ok_or_else(|| Error::invalid(&self.op, format!("attribute '{name}' is required")))
    }
    pub fn dtype_opt(&self, name: &str) -> Result<Option<DType>> {
        match self.str_opt(name)? {
            None => Ok(None),
            Some(s) => DType::from_name(&s).map(Some).ok_or_else(|| {
                Error::invalid(&self.op, format!("attribute '{name}': unknown dtype '{s}'"))
            }),
        }
    }
}

/// Checks the number of inputs.
pub fn want_inputs(op: &str, inputs: &[Array], n: usize) -> Result<()> {
    if inputs.len() != n {
        return Err(Error::invalid(
            op,
            format!("takes {n} input(s), got {}", inputs.len()),
        ));
    }
    Ok(())
}
