//! NumPy's .npy format, versions 1.0, 2.0 and 3.0: a magic string, a version, a header
//! length, a Python dict literal (descr, fortran_order, shape), then the raw elements.

use super::pyliteral::{self, Py};
use super::{
    array_from_src, bad, checked_nbytes, fortran_strides, io_err, map_file, ByteOrder, Src,
};
use crate::array::Array;
use crate::dtype::DType;
use crate::shape::{contiguous_strides, fmt_shape};
use crate::Result;
use std::io::Write;
use std::path::Path;

const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// NumPy refuses headers over 10000 bytes by default; we allow more for very high ranks but
/// still bound what a hostile file can make us parse.
const MAX_HEADER: usize = 1 << 20;

/// Loads a .npy file. The array reads the memory-mapped file when the data is little-endian
/// and aligned for its dtype (the usual case), else it holds one converted copy.
pub fn load_npy(path: impl AsRef<Path>) -> Result<Array> {
    let path = path.as_ref();
    let src = map_file("load_npy", path)?;
    let len = src.bytes().len();
    parse_npy("load_npy", &path.display().to_string(), &src, 0, len)
}

/// Reads a .npy file held in memory (the array holds a copy).
pub fn load_npy_bytes(bytes: &[u8]) -> Result<Array> {
    parse_npy("load_npy", "<bytes>", &Src::Slice(bytes), 0, bytes.len())
}

/// Parses the .npy file in `src.bytes()[start..end]`.
pub(crate) fn parse_npy(
    op: &str,
    name: &str,
    src: &Src,
    start: usize,
    end: usize,
) -> Result<Array> {
    let bytes = &src.bytes()[start..end];
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(bad(op, name, "not a .npy file (bad magic string)"));
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (hlen, pre) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(bad(op, name, "file ends inside the header length"));
            }
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            )
        }
        _ => {
            return Err(bad(
                op,
                name,
                format!("unsupported .npy format version {major}.{minor}"),
            ))
        }
    };
    if hlen > MAX_HEADER {
        return Err(bad(
            op,
            name,
            format!("header length {hlen} exceeds the limit of {MAX_HEADER} bytes"),
        ));
    }
    if pre + hlen > bytes.len() {
        return Err(bad(
            op,
            name,
            format!(
                "header declares {hlen} bytes but only {} follow",
                bytes.len() - pre
            ),
        ));
    }
    let raw = &bytes[pre..pre + hlen];
    // Versions 1 and 2 are latin-1, version 3 UTF-8.
    let text: String = if major == 3 {
        std::str::from_utf8(raw)
            .map_err(|_| bad(op, name, "header is not UTF-8"))?
            .to_string()
    } else {
        raw.iter().map(|&b| b as char).collect()
    };
    let header = parse_header(&text).map_err(|m| bad(op, name, format!("bad header: {m}")))?;
    let nbytes = checked_nbytes(op, name, &header.shape, header.dtype)?;
    let data_start = start + pre + hlen;
    let avail = end - data_start;
    if nbytes > avail {
        return Err(bad(
            op,
            name,
            format!(
                "header declares shape {} of {} ({nbytes} bytes) but {avail} bytes follow",
                fmt_shape(&header.shape),
                header.dtype
            ),
        ));
    }
    let strides = if header.fortran {
        fortran_strides(&header.shape)
    } else {
        contiguous_strides(&header.shape)
    };
    array_from_src(
        src,
        data_start,
        nbytes,
        header.shape,
        strides,
        header.dtype,
        header.order,
    )
}

struct Header {
    dtype: DType,
    order: ByteOrder,
    fortran: bool,
    shape: Vec<usize>,
}

fn parse_header(text: &str) -> std::result::Result<Header, String> {
    let items = match pyliteral::parse(text)? {
        Py::Dict(items) => items,
        _ => return Err("not a dict".into()),
    };
    let get = |k: &str| {
        items
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v)
            .ok_or_else(|| format!("missing key '{k}'"))
    };
    let (dtype, order) = match get("descr")? {
        Py::Str(s) => parse_descr(s)?,
        other => {
            return Err(format!(
                "unsupported descr {other:?} (structured dtypes are not supported)"
            ))
        }
    };
    let fortran = match get("fortran_order")? {
        Py::Bool(b) => *b,
        other => {
            return Err(format!(
                "fortran_order must be True or False, got {other:?}"
            ))
        }
    };
    let shape = match get("shape")? {
        Py::Seq(dims) => dims
            .iter()
            .map(|d| match d {
                Py::Int(s) => s
                    .parse::<usize>()
                    .map_err(|_| format!("bad dimension {s} in shape")),
                other => Err(format!("bad dimension {other:?} in shape")),
            })
            .collect::<std::result::Result<Vec<_>, _>>()?,
        other => return Err(format!("shape must be a tuple, got {other:?}")),
    };
    if shape.len() > 64 {
        return Err(format!(
            "{} dimensions is more than the 64 supported",
            shape.len()
        ));
    }
    Ok(Header {
        dtype,
        order,
        fortran,
        shape,
    })
}

/// `'<f4'` -> (float32, little). bfloat16 has no NumPy dtype: it is written as `'<V2'`, as
/// ml_dtypes' bfloat16 saves, and a 2-byte void is read back as bfloat16.
fn parse_descr(s: &str) -> std::result::Result<(DType, ByteOrder), String> {
    let (order, code) = match s.as_bytes().first() {
        Some(b'<' | b'|' | b'=') => (ByteOrder::Little, &s[1..]),
        Some(b'>') => (ByteOrder::Big, &s[1..]),
        _ => (ByteOrder::Little, s),
    };
    let d = match code {
        "b1" | "?" => DType::Bool,
        "u1" | "B" => DType::U8,
        "u2" => DType::U16,
        "u4" => DType::U32,
        "u8" => DType::U64,
        "i1" | "b" => DType::I8,
        "i2" => DType::I16,
        "i4" => DType::I32,
        "i8" => DType::I64,
        "f2" | "e" => DType::F16,
        "f4" => DType::F32,
        "f8" => DType::F64,
        "c8" => DType::C64,
        "V2" => DType::BF16,
        "c16" => return Err("complex128 ('c16') is not an ingot dtype; use complex64".into()),
        _ => return Err(format!("unsupported dtype '{s}'")),
    };
    Ok((d, order))
}

/// The descr ingot writes for a dtype.
fn descr(d: DType) -> &'static str {
    match d {
        DType::Bool => "|b1",
        DType::U8 => "|u1",
        DType::U16 => "<u2",
        DType::U32 => "<u4",
        DType::U64 => "<u8",
        DType::I8 => "|i1",
        DType::I16 => "<i2",
        DType::I32 => "<i4",
        DType::I64 => "<i8",
        DType::F16 => "<f2",
        DType::BF16 => "<V2",
        DType::F32 => "<f4",
        DType::F64 => "<f8",
        DType::C64 => "<c8",
    }
}

/// The magic, version, length and header of a C-ordered array, padded so the data starts
/// at a multiple of 64 bytes (as NumPy writes it).
pub(crate) fn npy_header(shape: &[usize], dtype: DType) -> Vec<u8> {
    let dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
        descr(dtype),
        fmt_shape(shape)
    );
    let v1 = dict.len() + 1 + 10 <= u16::MAX as usize;
    let pre = if v1 { 10 } else { 12 };
    let total = (pre + dict.len() + 1).div_ceil(64) * 64;
    let hlen = total - pre;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(MAGIC);
    if v1 {
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&(hlen as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&[2, 0]);
        out.extend_from_slice(&(hlen as u32).to_le_bytes());
    }
    out.extend_from_slice(dict.as_bytes());
    out.resize(total - 1, b' ');
    out.push(b'\n');
    out
}

pub(crate) fn write_npy(w: &mut impl Write, a: &Array) -> std::io::Result<Result<()>> {
    let data = match super::array_bytes(a) {
        Ok(d) => d,
        Err(e) => return Ok(Err(e)),
    };
    w.write_all(&npy_header(a.shape(), a.dtype()))?;
    w.write_all(&data)?;
    Ok(Ok(()))
}

/// The .npy bytes of an array (evaluates it).
pub fn npy_to_bytes(a: &Array) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    write_npy(&mut out, a).map_err(|e| crate::Error::io("save_npy", e))??;
    Ok(out)
}

/// Writes an array as a .npy file (version 1.0, or 2.0 for huge headers; C order,
/// little-endian; bfloat16 as `'<V2'`).
pub fn save_npy(path: impl AsRef<Path>, a: &Array) -> Result<()> {
    let path = path.as_ref();
    // Evaluate before creating the file, so a failing computation leaves no empty file.
    a.eval()?;
    let f = std::fs::File::create(path).map_err(|e| io_err("save_npy", path, e))?;
    let mut w = std::io::BufWriter::new(f);
    write_npy(&mut w, a).map_err(|e| io_err("save_npy", path, e))??;
    w.flush().map_err(|e| io_err("save_npy", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_padded_to_64() {
        for shape in [vec![], vec![3], vec![2, 3, 4]] {
            let h = npy_header(&shape, DType::F32);
            assert_eq!(h.len() % 64, 0);
            assert_eq!(*h.last().unwrap(), b'\n');
        }
        assert_eq!(parse_descr(">i4").unwrap().0, DType::I32);
        assert!(parse_descr("<c16").unwrap_err().contains("complex128"));
    }
}
