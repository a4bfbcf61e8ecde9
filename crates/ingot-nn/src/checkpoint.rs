//! Training checkpoints that resume exactly: the model's parameters and buffers, the
//! optimizer's state and step, the shared random state (dropout masks continue where they
//! were) and any numbers the training loop keeps (epoch, loss scale), in one directory:
//!
//! - `model.safetensors`: [`ModuleExt::save_safetensors`];
//! - `optimizer.safetensors`: [`Optimizer::save_state_safetensors`];
//! - `trainer.json`: `{"rng_key": [hi, lo], "extra": {name: number}}`.

use crate::module::{Module, ModuleExt};
use crate::optim::Optimizer;
use crate::rng;
use ingot::{Array, Error, Result};
use std::collections::BTreeMap;
use std::path::Path;

fn io(op: &str, path: &Path, e: impl std::fmt::Display) -> Error {
    Error::invalid(op, format!("{}: {e}", path.display()))
}

/// Writes a checkpoint of `model`, `opt`, the shared random state and `extra` into `dir`
/// (created if needed; files of an older checkpoint there are replaced).
pub fn save_checkpoint<M: Module, O: Optimizer>(
    dir: impl AsRef<Path>,
    model: &M,
    opt: &O,
    extra: &BTreeMap<String, f64>,
) -> Result<()> {
    const OP: &str = "save_checkpoint";
    let dir = dir.as_ref();
    // JSON has no inf or NaN: such a number would come back as null and never load.
    if let Some((k, v)) = extra.iter().find(|(_, v)| !v.is_finite()) {
        return Err(Error::invalid(
            OP,
            format!("extra {k:?} is {v}, not a finite number"),
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| io(OP, dir, e))?;
    model.save_safetensors(dir.join("model.safetensors"))?;
    opt.save_state_safetensors(dir.join("optimizer.safetensors"))?;
    let key = rng::state().to_vec::<u32>()?;
    let json = serde_json::json!({ "rng_key": key, "extra": extra });
    let path = dir.join("trainer.json");
    let text = serde_json::to_string_pretty(&json).map_err(|e| io(OP, &path, e))?;
    std::fs::write(&path, text).map_err(|e| io(OP, &path, e))
}

/// Restores a checkpoint written by [`save_checkpoint`] into `model` and `opt` (strictly:
/// every parameter name must match), restores the shared random state, and returns the
/// extra numbers.
pub fn load_checkpoint<M: Module, O: Optimizer>(
    dir: impl AsRef<Path>,
    model: &mut M,
    opt: &mut O,
) -> Result<BTreeMap<String, f64>> {
    const OP: &str = "load_checkpoint";
    let dir = dir.as_ref();
    let path = dir.join("trainer.json");
    let text = std::fs::read_to_string(&path).map_err(|e| io(OP, &path, e))?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| io(OP, &path, e))?;
    let key: Vec<u32> = json
        .get("rng_key")
        .and_then(|k| k.as_array())
        .and_then(|k| {
            k.iter()
                .map(|v| v.as_u64().and_then(|x| u32::try_from(x).ok()))
                .collect()
        })
        .filter(|k: &Vec<u32>| k.len() == 2)
        .ok_or_else(|| io(OP, &path, "rng_key is not two 32-bit integers"))?;
    let mut extra = BTreeMap::new();
    if let Some(m) = json.get("extra").and_then(|e| e.as_object()) {
        for (k, v) in m {
            let x = v
                .as_f64()
                .ok_or_else(|| io(OP, &path, format!("extra {k:?} is not a number")))?;
            extra.insert(k.clone(), x);
        }
    }
    let (tensors, _) = ingot::io::load_safetensors(dir.join("model.safetensors"))?;
    let key = Array::from_slice(&key, &[2])?;
    // A checkpoint that fails to load leaves the run as it was.
    let before = opt.state();
    opt.load_state_safetensors(dir.join("optimizer.safetensors"))?;
    if let Err(e) = model.load_arrays(tensors.into_iter().collect(), true) {
        opt.load_state(&before)?;
        return Err(e);
    }
    rng::set_state(key)?;
    Ok(extra)
}
