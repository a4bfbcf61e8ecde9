//! Exported graph packages: traced, optimized programs with their weights in one file that
//! runs without the Rust code that built it. The byte layout, the manifest schema and the
//! validation rules are specified in docs/package-format.md.
//!
//! A package holds named functions, each with one or more traces (one per input
//! signature). Constants are stored once each, named by a hash of their dtype, shape and
//! bytes, in a safetensors section that every trace refers to. The reader trusts nothing in
//! the file: lengths and offsets are checked against its size, and every op application is
//! checked against the public op that builds it (`check::infer`) before anything runs.

use super::check::{infer, Sig};
use super::trace::{trace, App, Graph, Source, Value};
use super::CompileOptions;
use crate::array::Array;
use crate::io::{array_from_src, checked_nbytes, map_file, safetensors_to_bytes, ByteOrder, Src};
use crate::op::Op;
use crate::shape::{contiguous_strides, fmt_shape};
use crate::{DType, Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::Path;

/// The first 8 bytes of every package.
pub const PACKAGE_MAGIC: &[u8; 8] = b"INGOTPKG";
/// The format version this build writes and reads.
pub const PACKAGE_VERSION: u32 = 1;
/// Fixed header: magic, version, reserved word, manifest length, weights length.
const HEADER: usize = 32;
/// The weights section starts on this boundary (so tensors in it are aligned when mapped).
const ALIGN: usize = 64;

// ---- manifest schema (docs/package-format.md) ---------------------------------------------

#[derive(Serialize, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct Manifest {
    ingot_version: String,
    metadata: BTreeMap<String, String>,
    functions: Vec<FunctionM>,
}

#[derive(Serialize, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct FunctionM {
    name: String,
    traces: Vec<TraceM>,
}

#[derive(Serialize, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct TraceM {
    inputs: Vec<TensorM>,
    consts: Vec<ConstM>,
    apps: Vec<AppM>,
    outputs: Vec<OutputM>,
}

#[derive(Serialize, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct TensorM {
    name: String,
    shape: Vec<usize>,
    dtype: DType,
}

#[derive(Serialize, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct ConstM {
    weight: String,
    shape: Vec<usize>,
    dtype: DType,
}

#[derive(Serialize, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct AppM {
    op: Op,
    inputs: Vec<usize>,
    outputs: Vec<SigM>,
}

#[derive(Serialize, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
struct SigM {
    shape: Vec<usize>,
    dtype: DType,
}

#[derive(Serialize, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct OutputM {
    name: String,
    value: usize,
}

// ---- public types ---------------------------------------------------------------------------

/// The name, shape and dtype of one input or output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorSpec {
    pub name: String,
    pub shape: Vec<usize>,
    pub dtype: DType,
}

/// The inputs and outputs of one trace of a function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<TensorSpec>,
}

impl std::fmt::Display for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |v: &[TensorSpec]| {
            v.iter()
                .map(|t| format!("{}: {} {}", t.name, fmt_shape(&t.shape), t.dtype))
                .collect::<Vec<_>>()
                .join(", ")
        };
        write!(f, "({}) -> ({})", list(&self.inputs), list(&self.outputs))
    }
}

struct Function {
    name: String,
    traces: Vec<(Signature, Graph)>,
}

/// An imported package: call its functions like the originals.
pub struct Package {
    functions: Vec<Function>,
    metadata: BTreeMap<String, String>,
    ingot_version: String,
}

impl Package {
    /// The function names, in the order they were exported.
    pub fn functions(&self) -> Vec<&str> {
        self.functions.iter().map(|f| f.name.as_str()).collect()
    }

    /// The signatures of a function's traces, or `None` if there is no such function.
    pub fn signature(&self, name: &str) -> Option<Vec<Signature>> {
        self.function(name)
            .map(|f| f.traces.iter().map(|(s, _)| s.clone()).collect())
    }

    /// The user metadata given to the exporter.
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// The ingot version that wrote the package.
    pub fn ingot_version(&self) -> &str {
        &self.ingot_version
    }

    fn function(&self, name: &str) -> Option<&Function> {
        self.functions.iter().find(|f| f.name == name)
    }

    /// Runs function `name` on `inputs` with the trace whose input shapes and dtypes match
    /// them. The outputs are lazy, like any op's.
    pub fn call(&self, name: &str, inputs: &[Array]) -> Result<Vec<Array>> {
        const OP: &str = "package call";
        let f = self.function(name).ok_or_else(|| {
            Error::invalid(
                OP,
                format!(
                    "no function '{name}' in the package (it has: {})",
                    self.functions().join(", ")
                ),
            )
        })?;
        let matches = |s: &Signature| {
            s.inputs.len() == inputs.len()
                && s.inputs
                    .iter()
                    .zip(inputs)
                    .all(|(t, x)| t.shape == x.shape() && t.dtype == x.dtype())
        };
        match f.traces.iter().find(|(s, _)| matches(s)) {
            Some((_, g)) => g.call(inputs),
            None => {
                let given: Vec<String> = inputs
                    .iter()
                    .map(|x| format!("{} {}", fmt_shape(x.shape()), x.dtype()))
                    .collect();
                let traced: Vec<String> = f.traces.iter().map(|(s, _)| s.to_string()).collect();
                Err(Error::invalid(
                    OP,
                    format!(
                        "'{name}' was not traced for inputs ({}); its traces are: {}",
                        given.join(", "),
                        traced.join("; ")
                    ),
                ))
            }
        }
    }
}

// ---- export -------------------------------------------------------------------------------

/// Builds a package: add functions (each traced on one or more example input sets) and
/// metadata, then write it.
#[derive(Default)]
pub struct Exporter {
    functions: Vec<FunctionM>,
    metadata: BTreeMap<String, String>,
    /// Constants by content hash: each is stored once however many traces use it.
    weights: BTreeMap<String, Array>,
}

impl Exporter {
    pub fn new() -> Exporter {
        Exporter::default()
    }

    /// Adds function `name`, traced once per example input set, with inputs and outputs
    /// named `input0, ..` and `output0, ..`.
    pub fn function<F>(&mut self, name: &str, f: F, examples: &[Vec<Array>]) -> Result<&mut Self>
    where
        F: Fn(&[Array]) -> Result<Vec<Array>>,
    {
        self.function_named(name, f, examples, &[], &[])
    }

    /// [`Exporter::function`] with names for the inputs and outputs (empty: the defaults).
    pub fn function_named<F>(
        &mut self,
        name: &str,
        f: F,
        examples: &[Vec<Array>],
        input_names: &[&str],
        output_names: &[&str],
    ) -> Result<&mut Self>
    where
        F: Fn(&[Array]) -> Result<Vec<Array>>,
    {
        const OP: &str = "export";
        if self.functions.iter().any(|t| t.name == name) {
            return Err(Error::invalid(OP, format!("function '{name}' added twice")));
        }
        if examples.is_empty() {
            return Err(Error::invalid(
                OP,
                format!("function '{name}' needs at least one example input set"),
            ));
        }
        let mut traces = Vec::with_capacity(examples.len());
        let mut seen = HashSet::new();
        for ex in examples {
            let key: Vec<Sig> = ex.iter().map(|x| (x.shape().to_vec(), x.dtype())).collect();
            if !seen.insert(key) {
                return Err(Error::invalid(
                    OP,
                    format!("function '{name}': two example sets have the same shapes and dtypes"),
                ));
            }
            let g = trace(|x| f(x), ex)?;
            let g = super::optimize(&g, CompileOptions::default())?;
            traces.push(self.serialize(name, &g, input_names, output_names)?);
        }
        self.functions.push(FunctionM {
            name: name.to_string(),
            traces,
        });
        Ok(self)
    }

    /// Adds a metadata entry (kept as given; `Package::metadata` returns it).
    pub fn metadata(&mut self, key: &str, value: &str) -> &mut Self {
        self.metadata.insert(key.to_string(), value.to_string());
        self
    }

    /// The manifest form of a traced program: values renumbered as inputs, then constants,
    /// then each application's outputs in order, `Custom` nodes replaced by what they pass
    /// through.
    fn serialize(
        &mut self,
        fname: &str,
        g: &Graph,
        input_names: &[&str],
        output_names: &[&str],
    ) -> Result<TraceM> {
        const OP: &str = "export";
        let names = |given: &[&str], n: usize, what: &str| -> Result<Vec<String>> {
            match given.len() {
                0 => Ok((0..n).map(|i| format!("{what}{i}")).collect()),
                k if k == n => Ok(given.iter().map(|s| s.to_string()).collect()),
                k => Err(Error::invalid(
                    OP,
                    format!("function '{fname}' has {n} {what}s but {k} names were given"),
                )),
            }
        };
        let in_names = names(input_names, g.inputs.len(), "input")?;
        let out_names = names(output_names, g.outputs.len(), "output")?;
        let mut map = vec![usize::MAX; g.values.len()];
        let mut sigs: Vec<Sig> = Vec::new();
        let mut inputs = Vec::new();
        for (i, &v) in g.inputs.iter().enumerate() {
            map[v] = sigs.len();
            let val = &g.values[v];
            sigs.push((val.shape.clone(), val.dtype));
            inputs.push(TensorM {
                name: in_names[i].clone(),
                shape: val.shape.clone(),
                dtype: val.dtype,
            });
        }
        let mut consts = Vec::new();
        for (v, val) in g.values.iter().enumerate() {
            if let Source::Const(c) = val.source {
                let a = &g.consts[c];
                let bytes = a.to_bytes()?;
                let hash = content_hash(a.dtype(), a.shape(), &bytes);
                self.weights
                    .entry(hash.clone())
                    .or_insert_with(|| a.clone());
                map[v] = sigs.len();
                sigs.push((a.shape().to_vec(), a.dtype()));
                consts.push(ConstM {
                    weight: hash,
                    shape: a.shape().to_vec(),
                    dtype: a.dtype(),
                });
            }
        }
        let mut apps = Vec::new();
        for app in &g.apps {
            let ins: Vec<usize> = app.inputs.iter().map(|&i| map[i]).collect();
            if ins.contains(&usize::MAX) {
                return Err(Error::invalid(
                    OP,
                    "internal: value used before it is defined",
                ));
            }
            if let Op::Custom { n_in, .. } = app.op {
                // Its outputs are its last inputs, computed by ordinary ops.
                if n_in + app.outs.len() != ins.len() {
                    return Err(Error::invalid(OP, "internal: malformed custom node"));
                }
                for (k, &o) in app.outs.iter().enumerate() {
                    map[o] = ins[n_in + k];
                }
                continue;
            }
            let in_sigs: Vec<Sig> = ins.iter().map(|&i| sigs[i].clone()).collect();
            let declared: Vec<Sig> = app
                .outs
                .iter()
                .map(|&o| (g.values[o].shape.clone(), g.values[o].dtype))
                .collect();
            // The reader's check, run now: a program that would not import fails here. It also
            // gives the real shape of siblings the trace dropped (recorded as placeholders).
            let checked = infer(&app.op, &in_sigs, &declared)?;
            let mut outputs = Vec::new();
            for (&o, (d, c)) in app.outs.iter().zip(declared.into_iter().zip(checked)) {
                let (shape, dtype) = c.unwrap_or(d);
                map[o] = sigs.len();
                sigs.push((shape.clone(), dtype));
                outputs.push(SigM { shape, dtype });
            }
            apps.push(AppM {
                op: app.op.clone(),
                inputs: ins,
                outputs,
            });
        }
        let outputs = g
            .outputs
            .iter()
            .zip(out_names)
            .map(|(&o, name)| OutputM {
                name,
                value: map[o],
            })
            .collect();
        Ok(TraceM {
            inputs,
            consts,
            apps,
            outputs,
        })
    }

    /// The package's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.write_to(&mut out)
            .map_err(|e| Error::io("export", e))??;
        Ok(out)
    }

    /// Writes the package to `path`; returns its size in bytes.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<u64> {
        let path = path.as_ref();
        let err = |e: std::io::Error| Error::io("export", format!("{}: {e}", path.display()));
        let f = std::fs::File::create(path).map_err(err)?;
        let mut w = std::io::BufWriter::new(f);
        let n = self.write_to(&mut w).map_err(err)??;
        w.flush().map_err(err)?;
        Ok(n)
    }

    fn write_to(&self, w: &mut impl Write) -> std::io::Result<Result<u64>> {
        if self.functions.is_empty() {
            return Ok(Err(Error::invalid(
                "export",
                "the package has no functions",
            )));
        }
        let manifest = Manifest {
            ingot_version: env!("CARGO_PKG_VERSION").to_string(),
            metadata: self.metadata.clone(),
            functions: self.functions.clone(),
        };
        let json = serde_json::to_vec(&manifest).map_err(std::io::Error::other)?;
        let weights = match safetensors_to_bytes(
            self.weights.iter().map(|(k, a)| (k.as_str(), a)),
            &HashMap::new(),
        ) {
            Ok(b) => b,
            Err(e) => return Ok(Err(e)),
        };
        let start = (HEADER + json.len()).next_multiple_of(ALIGN);
        w.write_all(PACKAGE_MAGIC)?;
        w.write_all(&PACKAGE_VERSION.to_le_bytes())?;
        w.write_all(&0u32.to_le_bytes())?;
        w.write_all(&(json.len() as u64).to_le_bytes())?;
        w.write_all(&(weights.len() as u64).to_le_bytes())?;
        w.write_all(&json)?;
        w.write_all(&vec![0u8; start - HEADER - json.len()])?;
        w.write_all(&weights)?;
        Ok(Ok((start + weights.len()) as u64))
    }
}

/// The name a constant is stored under: SHA-256 of its dtype, shape and row-major bytes.
fn content_hash(dtype: DType, shape: &[usize], bytes: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(format!("{dtype:?}").as_bytes());
    h.update([0u8]);
    h.update((shape.len() as u64).to_le_bytes());
    for &d in shape {
        h.update((d as u64).to_le_bytes());
    }
    h.update(bytes);
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Exports `f` traced on `example_inputs` as a package with one function, "main".
pub fn export<F>(path: impl AsRef<Path>, f: F, example_inputs: &[Array]) -> Result<u64>
where
    F: Fn(&[Array]) -> Result<Vec<Array>>,
{
    Exporter::new()
        .function("main", f, &[example_inputs.to_vec()])?
        .write(path)
}

// ---- import -------------------------------------------------------------------------------

/// Opens a package file. The file is memory-mapped: weights are read in place, not copied.
pub fn import(path: impl AsRef<Path>) -> Result<Package> {
    let src = map_file("import", path.as_ref())?;
    parse(&src)
}

/// Reads a package held in memory (the weights are copied out of `bytes`).
pub fn import_bytes(bytes: &[u8]) -> Result<Package> {
    parse(&Src::Slice(bytes))
}

fn bad(msg: impl std::fmt::Display) -> Error {
    Error::invalid("import", msg)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn parse(src: &Src) -> Result<Package> {
    let bytes = src.bytes();
    if bytes.len() < HEADER {
        return Err(bad(format!(
            "file of {} bytes is shorter than the {HEADER}-byte header (truncated?)",
            bytes.len()
        )));
    }
    if &bytes[..8] != PACKAGE_MAGIC {
        return Err(bad("not an ingot package (bad magic number)"));
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version != PACKAGE_VERSION {
        return Err(bad(format!(
            "format version {version} is not supported (this reader knows version {PACKAGE_VERSION})"
        )));
    }
    let reserved = u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes"));
    if reserved != 0 {
        return Err(bad(format!(
            "reserved header word is {reserved}, must be 0"
        )));
    }
    let (m_len, w_len) = (u64_at(bytes, 16), u64_at(bytes, 24));
    let size = bytes.len() as u64;
    // All in u64 first: declared lengths may be anything.
    let m_end = (HEADER as u64).checked_add(m_len).filter(|&e| e <= size);
    let Some(m_end) = m_end else {
        return Err(bad(format!(
            "manifest length {m_len} runs past the end of the {size}-byte file (truncated?)"
        )));
    };
    let w_start = m_end.next_multiple_of(ALIGN as u64);
    if w_start.checked_add(w_len) != Some(size) {
        return Err(bad(format!(
            "weights section of {w_len} bytes at offset {w_start} does not end at the end of the \
             {size}-byte file (truncated or wrong length)"
        )));
    }
    let (m_end, w_start) = (m_end as usize, w_start as usize);
    if bytes[m_end..w_start].iter().any(|&b| b != 0) {
        return Err(bad("padding after the manifest is not zero"));
    }
    let manifest: Manifest = serde_json::from_slice(&bytes[HEADER..m_end])
        .map_err(|e| bad(format!("manifest is not valid: {e}")))?;
    let weights = read_weights(src, w_start, size as usize - w_start)?;
    let mut functions: Vec<Function> = Vec::with_capacity(manifest.functions.len());
    for f in manifest.functions {
        if functions.iter().any(|g| g.name == f.name) {
            return Err(bad(format!("function '{}' appears twice", f.name)));
        }
        if f.traces.is_empty() {
            return Err(bad(format!("function '{}' has no traces", f.name)));
        }
        let mut traces = Vec::with_capacity(f.traces.len());
        for (k, t) in f.traces.into_iter().enumerate() {
            let r = rebuild(t, &weights)
                .map_err(|e| bad(format!("function '{}', trace {k}: {e}", f.name)))?;
            traces.push(r);
        }
        functions.push(Function {
            name: f.name,
            traces,
        });
    }
    Ok(Package {
        functions,
        metadata: manifest.metadata,
        ingot_version: manifest.ingot_version,
    })
}

/// Checks one trace and makes its replayable graph.
fn rebuild(t: TraceM, weights: &HashMap<String, Array>) -> Result<(Signature, Graph)> {
    let mut values: Vec<Value> = Vec::new();
    // Values whose shape no check vouches for (unused siblings): nothing may read them.
    let mut unverified: HashSet<usize> = HashSet::new();
    let mut consts = Vec::with_capacity(t.consts.len());
    let mut inputs = Vec::with_capacity(t.inputs.len());
    for (i, x) in t.inputs.iter().enumerate() {
        checked_nbytes("import", &x.name, &x.shape, x.dtype)?;
        inputs.push(values.len());
        values.push(Value {
            source: Source::Input(i),
            shape: x.shape.clone(),
            dtype: x.dtype,
        });
    }
    for (c, k) in t.consts.iter().enumerate() {
        let a = weights.get(&k.weight).ok_or_else(|| {
            bad(format!(
                "constant {c} names weight '{}', which is not stored",
                k.weight
            ))
        })?;
        if a.shape() != k.shape || a.dtype() != k.dtype {
            return Err(bad(format!(
                "constant {c} is declared {} {} but weight '{}' is {} {}",
                fmt_shape(&k.shape),
                k.dtype,
                k.weight,
                fmt_shape(a.shape()),
                a.dtype()
            )));
        }
        values.push(Value {
            source: Source::Const(c),
            shape: k.shape.clone(),
            dtype: k.dtype,
        });
        consts.push(a.clone());
    }
    let mut apps = Vec::with_capacity(t.apps.len());
    for (k, app) in t.apps.into_iter().enumerate() {
        let defined = values.len();
        for &i in &app.inputs {
            if i >= defined {
                return Err(bad(format!(
                    "op {k} ({}) reads value {i}, but only {defined} values are defined before it",
                    app.op.name()
                )));
            }
            if unverified.contains(&i) {
                return Err(bad(format!(
                    "op {k} ({}) reads value {i}, an output whose shape cannot be checked",
                    app.op.name()
                )));
            }
        }
        let in_sigs: Vec<Sig> = app
            .inputs
            .iter()
            .map(|&i| (values[i].shape.clone(), values[i].dtype))
            .collect();
        let declared: Vec<Sig> = app
            .outputs
            .iter()
            .map(|s| (s.shape.clone(), s.dtype))
            .collect();
        let inferred =
            infer(&app.op, &in_sigs, &declared).map_err(|e| bad(format!("op {k}: {e}")))?;
        if inferred.len() != declared.len() {
            return Err(bad(format!(
                "op {k} ({}) makes {} outputs but declares {}",
                app.op.name(),
                inferred.len(),
                declared.len()
            )));
        }
        let mut outs = Vec::with_capacity(declared.len());
        for (j, (d, got)) in declared.into_iter().zip(inferred).enumerate() {
            match got {
                Some(g) if g != d => {
                    return Err(bad(format!(
                        "op {k} ({}) output {j} is declared {} {} but the op makes {} {}",
                        app.op.name(),
                        fmt_shape(&d.0),
                        d.1,
                        fmt_shape(&g.0),
                        g.1
                    )))
                }
                Some(_) => {}
                None => {
                    unverified.insert(values.len());
                }
            }
            outs.push(values.len());
            values.push(Value {
                source: Source::Op { app: k, index: j },
                shape: d.0,
                dtype: d.1,
            });
        }
        apps.push(App {
            op: app.op,
            inputs: app.inputs,
            outs,
        });
    }
    let mut outputs = Vec::with_capacity(t.outputs.len());
    let mut out_specs = Vec::with_capacity(t.outputs.len());
    for o in &t.outputs {
        if o.value >= values.len() || unverified.contains(&o.value) {
            return Err(bad(format!(
                "output '{}' is value {}, which is not defined ({} values)",
                o.name,
                o.value,
                values.len()
            )));
        }
        outputs.push(o.value);
        out_specs.push(TensorSpec {
            name: o.name.clone(),
            shape: values[o.value].shape.clone(),
            dtype: values[o.value].dtype,
        });
    }
    let sig = Signature {
        inputs: t
            .inputs
            .into_iter()
            .map(|x| TensorSpec {
                name: x.name,
                shape: x.shape,
                dtype: x.dtype,
            })
            .collect(),
        outputs: out_specs,
    };
    let graph = Graph {
        values,
        apps,
        consts,
        inputs,
        outputs,
        rules: HashMap::new(),
    };
    Ok((sig, graph))
}

/// The weights section: a safetensors file at `start` of `src`, `len` bytes long. Its
/// arrays borrow the mapped file.
fn read_weights(src: &Src, start: usize, len: usize) -> Result<HashMap<String, Array>> {
    let bytes = &src.bytes()[start..start + len];
    if bytes.len() < 8 {
        return Err(bad(format!(
            "weights section of {} bytes has no header length",
            bytes.len()
        )));
    }
    let n = u64_at(bytes, 0);
    if n > (bytes.len() - 8) as u64 {
        return Err(bad(format!(
            "weights header declares {n} bytes but the section has {} after its length",
            bytes.len() - 8
        )));
    }
    let n = n as usize;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + n])
            .map_err(|e| bad(format!("weights header is not a JSON object: {e}")))?;
    let data_start = start + 8 + n;
    let data_len = (len - 8 - n) as u64;
    let mut out = HashMap::with_capacity(header.len());
    for (key, v) in &header {
        if key == "__metadata__" {
            continue;
        }
        let t = |msg: String| bad(format!("weight '{key}': {msg}"));
        let dtype = v
            .get("dtype")
            .and_then(|d| d.as_str())
            .and_then(crate::io::safetensors::st_dtype)
            .ok_or_else(|| t(format!("missing or unknown dtype in {v}")))?;
        let shape = v
            .get("shape")
            .and_then(|s| s.as_array())
            .filter(|s| s.len() <= 64)
            .ok_or_else(|| t("shape must be a list of at most 64 dims".into()))?
            .iter()
            .map(|d| {
                d.as_u64()
                    .and_then(|d| usize::try_from(d).ok())
                    .ok_or_else(|| t(format!("bad dimension {d}")))
            })
            .collect::<Result<Vec<usize>>>()?;
        let offs = v
            .get("data_offsets")
            .and_then(|o| o.as_array())
            .filter(|o| o.len() == 2)
            .ok_or_else(|| t("data_offsets must be [begin, end]".into()))?;
        let (b, e) = match (offs[0].as_u64(), offs[1].as_u64()) {
            (Some(b), Some(e)) if b <= e && e <= data_len => (b as usize, e as usize),
            _ => {
                return Err(t(format!(
                    "data_offsets [{}, {}] are not inside the {data_len} bytes of data",
                    offs[0], offs[1]
                )))
            }
        };
        let nbytes = checked_nbytes("import", key, &shape, dtype)?;
        if nbytes != e - b {
            return Err(t(format!(
                "shape {} of {dtype} needs {nbytes} bytes but data_offsets [{b}, {e}] hold {}",
                fmt_shape(&shape),
                e - b
            )));
        }
        let strides = contiguous_strides(&shape);
        let a = array_from_src(
            src,
            data_start + b,
            nbytes,
            shape,
            strides,
            dtype,
            ByteOrder::Little,
        )?;
        out.insert(key.clone(), a);
    }
    Ok(out)
}
