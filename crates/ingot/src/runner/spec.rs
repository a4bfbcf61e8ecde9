//! Running a JSON spec of op cases (`ingot ops run SPEC.json`): inputs are .npy files next
//! to the spec, outputs are written as `<id>.out<k>.npy`, and a case that fails for any
//! reason writes `<id>.error.txt` while the run goes on. See docs/cli.md.

use super::{run_op, Attrs};
use crate::array::Array;
use crate::device::{set_default_device, Device};
use crate::io::{load_npy, save_npy};
use crate::{Error, Result};
use rayon::prelude::*;
use serde_json::Value;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

const OP: &str = "ops run";

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Number of cases in the spec.
    pub total: usize,
    /// Cases that wrote all their outputs and no error file.
    pub passed: usize,
    /// Ids and error messages of the cases that wrote `<id>.error.txt`.
    pub failed: Vec<(String, String)>,
    /// Where the outputs went.
    pub out_dir: PathBuf,
}

impl RunSummary {
    /// The one-line summary the CLI prints.
    pub fn line(&self) -> String {
        format!(
            "ops run: {} cases, {} ok, {} with errors (outputs in {})",
            self.total,
            self.passed,
            self.failed.len(),
            self.out_dir.display()
        )
    }
}

/// The process exit status for a run: 0 when the spec was readable (whatever its cases
/// did), 2 when it was not.
pub fn exit_code(result: &Result<RunSummary>) -> i32 {
    match result {
        Ok(_) => 0,
        Err(_) => 2,
    }
}

/// One case of a spec.
#[derive(Clone, Debug)]
struct Case {
    id: String,
    op: String,
    inputs: Vec<String>,
    attrs: Option<Value>,
    vjp: Option<Vec<String>>,
}

/// Runs every case of the spec at `spec_path`, writing into `out_dir` (default: the spec's
/// folder), on `device` (default: the spec's `"device"`, else the current default).
pub fn run_spec(
    spec_path: &Path,
    out_dir: Option<&Path>,
    device: Option<Device>,
) -> Result<RunSummary> {
    run_spec_with(spec_path, out_dir, device, &mut |_, _, _| {})
}

/// [`run_spec`] calling `progress(done, total, id)` after each case (the CLI draws a
/// progress bar with it).
pub fn run_spec_with(
    spec_path: &Path,
    out_dir: Option<&Path>,
    device: Option<Device>,
    progress: &mut dyn FnMut(usize, usize, &str),
) -> Result<RunSummary> {
    let text = std::fs::read_to_string(spec_path)
        .map_err(|e| Error::io(OP, format!("{}: {e}", spec_path.display())))?;
    let spec: Value = serde_json::from_str(&text)
        .map_err(|e| Error::io(OP, format!("{}: not valid JSON: {e}", spec_path.display())))?;
    let (spec_device, cases) = parse_spec(&spec)
        .map_err(|m| Error::invalid(OP, format!("{}: {m}", spec_path.display())))?;
    let base = spec_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let base = if base.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        base
    };
    let out = out_dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| base.clone());
    std::fs::create_dir_all(&out).map_err(|e| Error::io(OP, format!("{}: {e}", out.display())))?;
    if let Some(d) = device.or(spec_device) {
        set_default_device(d);
    }

    let mut summary = RunSummary {
        total: cases.len(),
        out_dir: out.clone(),
        ..Default::default()
    };
    // Cases run in parallel a batch at a time (on a GPU, each new op's first use waits for
    // an NVRTC compile, and compiles proceed in parallel across threads); results and
    // progress are reported in the spec's order.
    let batch = rayon::current_num_threads().max(1) * 2;
    for (b, chunk) in cases.chunks(batch).enumerate() {
        let results: Vec<Result<()>> = chunk
            .par_iter()
            .map(|case| {
                clear_stale(&out, &case.id);
                // A bug in one op must not end the run: a panic becomes this case's error.
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    run_case(case, &base, &out)
                }))
                .unwrap_or_else(|p| {
                    let msg = p
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "unknown panic".into());
                    Err(Error::invalid(&case.op, format!("panicked: {msg}")))
                })
            })
            .collect();
        for (k, (case, r)) in chunk.iter().zip(results).enumerate() {
            match r {
                Ok(()) => summary.passed += 1,
                Err(e) => {
                    let msg = e.to_string();
                    let path = out.join(format!("{}.error.txt", case.id));
                    std::fs::write(&path, format!("{msg}\n"))
                        .map_err(|e| Error::io(OP, format!("{}: {e}", path.display())))?;
                    summary.failed.push((case.id.clone(), msg));
                }
            }
            progress(b * batch + k + 1, cases.len(), &case.id);
        }
    }
    Ok(summary)
}

/// Removes what an earlier run left for this id, so old results cannot pass for new ones.
fn clear_stale(out: &Path, id: &str) {
    let _ = std::fs::remove_file(out.join(format!("{id}.error.txt")));
    for kind in ["out", "vjp"] {
        for k in 0.. {
            if std::fs::remove_file(out.join(format!("{id}.{kind}{k}.npy"))).is_err() {
                break;
            }
        }
    }
}

fn run_case(case: &Case, base: &Path, out: &Path) -> Result<()> {
    let inputs = case
        .inputs
        .iter()
        .map(|f| load_npy(base.join(f)))
        .collect::<Result<Vec<Array>>>()?;
    let attrs = Attrs::new(&case.op, case.attrs.as_ref())?;
    let outs = run_op(&case.op, &inputs, &attrs)?;
    crate::eval(&outs)?;
    for (k, a) in outs.iter().enumerate() {
        save_npy(out.join(format!("{}.out{k}.npy", case.id)), a)?;
    }
    if let Some(cot) = &case.vjp {
        if cot.len() != outs.len() {
            return Err(Error::invalid(
                OP,
                format!(
                    "case '{}': vjp gives {} cotangent(s) for {} output(s)",
                    case.id,
                    cot.len(),
                    outs.len()
                ),
            ));
        }
        let cts = cot
            .iter()
            .map(|f| load_npy(base.join(f)))
            .collect::<Result<Vec<Array>>>()?;
        let (_, grads) = crate::vjp(|x| run_op(&case.op, x, &attrs), &inputs, &cts)?;
        crate::eval(&grads)?;
        for (k, g) in grads.iter().enumerate() {
            save_npy(out.join(format!("{}.vjp{k}.npy", case.id)), g)?;
        }
    }
    Ok(())
}

/// A case id names files: letters, digits, '-', '_' and '.', but no path separator and no
/// "..".
fn check_id(id: &str) -> std::result::Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 200
        && !id.contains("..")
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "case id {id:?} is not allowed (use letters, digits, '-', '_' or '.', no '..' or path separators)"
        ))
    }
}

fn parse_spec(spec: &Value) -> std::result::Result<(Option<Device>, Vec<Case>), String> {
    let obj = spec.as_object().ok_or("the spec must be a JSON object")?;
    for k in obj.keys() {
        if k != "device" && k != "cases" {
            return Err(format!("unknown key '{k}' (known: device, cases)"));
        }
    }
    let device = match obj.get("device") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.parse::<Device>().map_err(|e| e.to_string())?),
        Some(v) => return Err(format!("device must be a string, got {v}")),
    };
    let list = obj
        .get("cases")
        .and_then(Value::as_array)
        .ok_or("the spec needs a \"cases\" list")?;
    let mut seen = HashSet::new();
    let mut cases = Vec::with_capacity(list.len());
    for (i, c) in list.iter().enumerate() {
        let c = c
            .as_object()
            .ok_or_else(|| format!("case {i} is not an object"))?;
        for k in c.keys() {
            if !["id", "op", "inputs", "attrs", "vjp"].contains(&k.as_str()) {
                return Err(format!(
                    "case {i}: unknown key '{k}' (known: id, op, inputs, attrs, vjp)"
                ));
            }
        }
        let id = c
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("case {i} has no string \"id\""))?
            .to_string();
        check_id(&id)?;
        if !seen.insert(id.clone()) {
            return Err(format!("case id '{id}' appears twice"));
        }
        let op = c
            .get("op")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("case '{id}' has no string \"op\""))?
            .to_string();
        let files = |key: &str| -> std::result::Result<Option<Vec<String>>, String> {
            match c.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Array(xs)) => xs
                    .iter()
                    .map(|x| {
                        x.as_str().map(str::to_string).ok_or_else(|| {
                            format!("case '{id}': \"{key}\" must list file names, got {x}")
                        })
                    })
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map(Some),
                Some(v) => Err(format!("case '{id}': \"{key}\" must be a list, got {v}")),
            }
        };
        let inputs = files("inputs")?.unwrap_or_default();
        let vjp = files("vjp")?;
        cases.push(Case {
            id,
            op,
            inputs,
            attrs: c.get("attrs").cloned(),
            vjp,
        });
    }
    Ok((device, cases))
}
