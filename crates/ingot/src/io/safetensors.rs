//! The safetensors format: an 8-byte little-endian header length, a JSON header naming each
//! tensor's dtype, shape and byte range, an optional `__metadata__` map of strings, then the
//! data. Written directly (not through the `safetensors` crate) so that every size and
//! offset is checked here and the arrays can borrow the mapped file.

use super::{
    array_from_src, bad, checked_nbytes, elem_align, io_err, map_file, ByteOrder, NamedArray, Src,
};
use crate::array::Array;
use crate::dtype::DType;
use crate::shape::{contiguous_strides, fmt_shape};
use crate::{Error, Result};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

/// The safetensors library refuses headers over 100 MB; so do we.
const MAX_HEADER: u64 = 100_000_000;

type Loaded = (HashMap<String, Array>, HashMap<String, String>);

/// Loads every tensor of a safetensors file and its `__metadata__`. The arrays read the
/// memory-mapped file in place when aligned for their dtype (files written by ingot and by
/// the safetensors library always are), so loading is lazy and costs no copy.
pub fn load_safetensors(path: impl AsRef<Path>) -> Result<Loaded> {
    let path = path.as_ref();
    let src = map_file("load_safetensors", path)?;
    parse(&path.display().to_string(), &src)
}

/// Reads a safetensors file held in memory (the arrays hold copies).
pub fn load_safetensors_bytes(bytes: &[u8]) -> Result<Loaded> {
    parse("<bytes>", &Src::Slice(bytes))
}

pub(crate) fn st_dtype(s: &str) -> Option<DType> {
    Some(match s {
        "BOOL" => DType::Bool,
        "U8" => DType::U8,
        "U16" => DType::U16,
        "U32" => DType::U32,
        "U64" => DType::U64,
        "I8" => DType::I8,
        "I16" => DType::I16,
        "I32" => DType::I32,
        "I64" => DType::I64,
        "F16" => DType::F16,
        "BF16" => DType::BF16,
        "F32" => DType::F32,
        "F64" => DType::F64,
        "C64" => DType::C64,
        _ => return None,
    })
}

fn st_name(d: DType) -> &'static str {
    match d {
        DType::Bool => "BOOL",
        DType::U8 => "U8",
        DType::U16 => "U16",
        DType::U32 => "U32",
        DType::U64 => "U64",
        DType::I8 => "I8",
        DType::I16 => "I16",
        DType::I32 => "I32",
        DType::I64 => "I64",
        DType::F16 => "F16",
        DType::BF16 => "BF16",
        DType::F32 => "F32",
        DType::F64 => "F64",
        DType::C64 => "C64",
    }
}

fn parse(name: &str, src: &Src) -> Result<Loaded> {
    const OP: &str = "load_safetensors";
    let bytes = src.bytes();
    if bytes.len() < 8 {
        return Err(bad(
            OP,
            name,
            format!("file of {} bytes has no header length", bytes.len()),
        ));
    }
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
    if n > MAX_HEADER {
        return Err(bad(
            OP,
            name,
            format!("header length {n} exceeds the limit of {MAX_HEADER} bytes"),
        ));
    }
    if n > (bytes.len() - 8) as u64 {
        return Err(bad(
            OP,
            name,
            format!(
                "header declares {n} bytes but only {} follow",
                bytes.len() - 8
            ),
        ));
    }
    let n = n as usize;
    let header: Map<String, Value> = serde_json::from_slice(&bytes[8..8 + n])
        .map_err(|e| bad(OP, name, format!("header is not a JSON object: {e}")))?;
    let data_start = 8 + n;
    let data_len = bytes.len() - data_start;
    let mut tensors = HashMap::new();
    let mut metadata = HashMap::new();
    for (key, v) in &header {
        if key == "__metadata__" {
            let m = v
                .as_object()
                .ok_or_else(|| bad(OP, name, "__metadata__ must be an object of strings"))?;
            for (k, v) in m {
                let s = v.as_str().ok_or_else(|| {
                    bad(
                        OP,
                        name,
                        format!("__metadata__ value of '{k}' must be a string, got {v}"),
                    )
                })?;
                metadata.insert(k.clone(), s.to_string());
            }
            continue;
        }
        let t = |msg: String| bad(OP, name, format!("tensor '{key}': {msg}"));
        let obj = v
            .as_object()
            .ok_or_else(|| t(format!("entry must be an object, got {v}")))?;
        let dname = obj
            .get("dtype")
            .and_then(Value::as_str)
            .ok_or_else(|| t("missing dtype".into()))?;
        let dtype = st_dtype(dname).ok_or_else(|| t(format!("unsupported dtype {dname}")))?;
        let shape = obj
            .get("shape")
            .and_then(Value::as_array)
            .ok_or_else(|| t("missing shape".into()))?;
        if shape.len() > 64 {
            return Err(t(format!(
                "{} dimensions is more than the 64 supported",
                shape.len()
            )));
        }
        let shape = shape
            .iter()
            .map(|d| {
                d.as_u64()
                    .and_then(|d| usize::try_from(d).ok())
                    .ok_or_else(|| t(format!("bad dimension {d}")))
            })
            .collect::<Result<Vec<usize>>>()?;
        let offs = obj
            .get("data_offsets")
            .and_then(Value::as_array)
            .filter(|o| o.len() == 2)
            .ok_or_else(|| t("data_offsets must be [begin, end]".into()))?;
        let (b, e) = match (offs[0].as_u64(), offs[1].as_u64()) {
            (Some(b), Some(e)) if b <= e => (b, e),
            _ => return Err(t(format!("bad data_offsets [{}, {}]", offs[0], offs[1]))),
        };
        if e > data_len as u64 {
            return Err(t(format!(
                "data_offsets [{b}, {e}] extend past the {data_len} bytes of data"
            )));
        }
        let (b, e) = (b as usize, e as usize);
        let nbytes = checked_nbytes(OP, name, &shape, dtype)?;
        if nbytes != e - b {
            return Err(t(format!(
                "shape {} of {dtype} needs {nbytes} bytes but data_offsets [{b}, {e}] hold {}",
                fmt_shape(&shape),
                e - b
            )));
        }
        let strides = contiguous_strides(&shape);
        let arr = array_from_src(
            src,
            data_start + b,
            nbytes,
            shape,
            strides,
            dtype,
            ByteOrder::Little,
        )?;
        tensors.insert(key.clone(), arr);
    }
    Ok((tensors, metadata))
}

/// The safetensors bytes of named arrays with metadata (evaluates them).
pub fn safetensors_to_bytes<'a>(
    tensors: impl IntoIterator<Item = impl NamedArray<'a>>,
    metadata: &HashMap<String, String>,
) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    write(&mut out, tensors, metadata).map_err(|e| Error::io("save_safetensors", e))??;
    Ok(out)
}

/// Writes named arrays and string metadata as a safetensors file. Tensors are laid out by
/// decreasing alignment and the header is padded to 8 bytes, so every tensor is aligned for
/// its dtype and loads without a copy.
pub fn save_safetensors<'a>(
    path: impl AsRef<Path>,
    tensors: impl IntoIterator<Item = impl NamedArray<'a>>,
    metadata: &HashMap<String, String>,
) -> Result<()> {
    let path = path.as_ref();
    let tensors: Vec<(String, &Array)> = tensors.into_iter().map(NamedArray::named).collect();
    let arrays: Vec<Array> = tensors.iter().map(|(_, a)| (*a).clone()).collect();
    crate::eval(&arrays)?;
    let f = std::fs::File::create(path).map_err(|e| io_err("save_safetensors", path, e))?;
    let mut w = std::io::BufWriter::new(f);
    write(&mut w, tensors, metadata).map_err(|e| io_err("save_safetensors", path, e))??;
    w.flush().map_err(|e| io_err("save_safetensors", path, e))
}

fn write<'a>(
    w: &mut impl Write,
    tensors: impl IntoIterator<Item = impl NamedArray<'a>>,
    metadata: &HashMap<String, String>,
) -> std::io::Result<Result<()>> {
    const OP: &str = "save_safetensors";
    let mut list: Vec<(String, &Array)> = tensors.into_iter().map(NamedArray::named).collect();
    list.sort_by(|x, y| {
        elem_align(y.1.dtype())
            .max(y.1.dtype().size())
            .cmp(&elem_align(x.1.dtype()).max(x.1.dtype().size()))
            .then_with(|| x.0.cmp(&y.0))
    });
    let mut header = Map::new();
    if !metadata.is_empty() {
        let m: Map<String, Value> = metadata
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        header.insert("__metadata__".into(), Value::Object(m));
    }
    let mut off = 0usize;
    for (name, a) in &list {
        if name == "__metadata__" {
            return Ok(Err(Error::invalid(
                OP,
                "'__metadata__' cannot name a tensor",
            )));
        }
        if header.contains_key(name) {
            return Ok(Err(Error::invalid(
                OP,
                format!("name '{name}' given twice"),
            )));
        }
        let n = a.nbytes();
        let mut entry = Map::new();
        entry.insert("dtype".into(), st_name(a.dtype()).into());
        entry.insert(
            "shape".into(),
            a.shape().iter().map(|&d| Value::from(d as u64)).collect(),
        );
        entry.insert(
            "data_offsets".into(),
            Value::Array(vec![(off as u64).into(), ((off + n) as u64).into()]),
        );
        header.insert(name.clone(), Value::Object(entry));
        off += n;
    }
    let mut text = serde_json::to_vec(&Value::Object(header)).map_err(std::io::Error::other)?;
    while text.len() % 8 != 0 {
        text.push(b' ');
    }
    w.write_all(&(text.len() as u64).to_le_bytes())?;
    w.write_all(&text)?;
    for (_, a) in &list {
        match a.to_bytes() {
            Ok(b) => w.write_all(&b)?,
            Err(e) => return Ok(Err(e)),
        }
    }
    Ok(Ok(()))
}
