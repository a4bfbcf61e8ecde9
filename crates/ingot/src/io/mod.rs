//! Reading and writing arrays: safetensors, .npy and .npz (formats and limits: docs/io.md).
//!
//! Readers trust no size or offset in a file: every length is checked against the bytes
//! that are really there before anything is allocated, so a malformed or hostile file gives
//! an `Err`, never a panic, an abort or a huge allocation. Files are memory-mapped and the
//! arrays read the mapped bytes directly when the layout allows it (little-endian, aligned
//! for the dtype); otherwise the data is copied once.

mod npy;
mod npz;
mod pyliteral;
pub(crate) mod safetensors;

pub use npy::{load_npy, load_npy_bytes, npy_to_bytes, save_npy};
pub use npz::{load_npz, load_npz_bytes, npz_to_bytes, save_npz};
pub use safetensors::{
    load_safetensors, load_safetensors_bytes, safetensors_to_bytes, save_safetensors,
};

use crate::array::{Array, Data};
use crate::buffer::Buffer;
use crate::dtype::DType;
use crate::shape::fmt_shape;
use crate::{Error, Result};
use std::path::Path;
use std::sync::Arc;

/// One named array, as the writers take them: `(name, &array)` pairs by value or by
/// reference, `(name, array)` pairs by reference, and map entries, so that a slice, a
/// `Vec<(String, Array)>` (what `load_npz` returns) and a `&HashMap<String, Array>` all fit.
pub trait NamedArray<'a> {
    fn named(self) -> (String, &'a Array);
}
impl<'a, K: AsRef<str>> NamedArray<'a> for (K, &'a Array) {
    fn named(self) -> (String, &'a Array) {
        (self.0.as_ref().to_string(), self.1)
    }
}
impl<'a, K: AsRef<str>> NamedArray<'a> for &'a (K, &'a Array) {
    fn named(self) -> (String, &'a Array) {
        (self.0.as_ref().to_string(), self.1)
    }
}
impl<'a, K: AsRef<str>> NamedArray<'a> for &'a (K, Array) {
    fn named(self) -> (String, &'a Array) {
        (self.0.as_ref().to_string(), &self.1)
    }
}

/// Where a reader's bytes come from: a mapped file (arrays may borrow it) or a slice (arrays
/// copy from it).
pub(crate) enum Src<'a> {
    Mapped(Arc<memmap2::Mmap>),
    Slice(&'a [u8]),
}

impl Src<'_> {
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Src::Mapped(m) => m,
            Src::Slice(s) => s,
        }
    }
}

/// Maps a whole file read-only. An empty file gives an empty slice (mapping zero bytes fails
/// on some systems).
pub(crate) fn map_file(op: &str, path: &Path) -> Result<Src<'static>> {
    let f = std::fs::File::open(path).map_err(|e| io_err(op, path, e))?;
    let len = f.metadata().map_err(|e| io_err(op, path, e))?.len();
    if len == 0 {
        return Ok(Src::Slice(&[]));
    }
    // Safety: the map is read-only; as with every mmap reader, a file truncated by another
    // process while mapped can fault (documented in docs/io.md).
    let map = unsafe { memmap2::Mmap::map(&f) }.map_err(|e| io_err(op, path, e))?;
    Ok(Src::Mapped(Arc::new(map)))
}

pub(crate) fn io_err(op: &str, path: &Path, e: impl std::fmt::Display) -> Error {
    Error::io(op, format!("{}: {e}", path.display()))
}

/// A format error: `[op] name: msg`.
pub(crate) fn bad(op: &str, name: &str, msg: impl std::fmt::Display) -> Error {
    Error::io(op, format!("{name}: {msg}"))
}

/// Alignment an element type needs to be read in place.
pub(crate) fn elem_align(d: DType) -> usize {
    match d {
        DType::C64 => 4,
        d => d.size(),
    }
}

/// Bytes that a shape of `dtype` takes, checked: the product of the dimensions (ignoring
/// zeros, so that later stride arithmetic cannot overflow either) times the element size
/// must fit in `isize`.
pub(crate) fn checked_nbytes(op: &str, name: &str, shape: &[usize], dtype: DType) -> Result<usize> {
    let too_big = || {
        bad(
            op,
            name,
            format!("shape {} of {dtype} is too large", fmt_shape(shape)),
        )
    };
    let mut nonzero = dtype.size();
    let mut any_zero = false;
    for &d in shape {
        if d == 0 {
            any_zero = true;
        } else {
            nonzero = nonzero.checked_mul(d).ok_or_else(too_big)?;
        }
    }
    if nonzero > isize::MAX as usize {
        return Err(too_big());
    }
    Ok(if any_zero { 0 } else { nonzero })
}

/// Column-major strides (in elements) for Fortran-ordered data.
pub(crate) fn fortran_strides(shape: &[usize]) -> Vec<isize> {
    let mut strides = Vec::with_capacity(shape.len());
    let mut acc = 1isize;
    for &d in shape {
        strides.push(acc);
        // checked_nbytes bounded the product of the nonzero dimensions.
        acc = acc.wrapping_mul(d.max(1) as isize);
    }
    strides
}

/// How stored elements differ from ingot's in-memory form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ByteOrder {
    Little,
    Big,
}

/// An array over `len` bytes at `start` of `src`: borrowing the mapped file when the bytes
/// can be used as they are, else one copy (byte-swapped, bools normalized to 0/1).
pub(crate) fn array_from_src(
    src: &Src,
    start: usize,
    len: usize,
    shape: Vec<usize>,
    strides: Vec<isize>,
    dtype: DType,
    order: ByteOrder,
) -> Result<Array> {
    let bytes = &src.bytes()[start..start + len];
    let bool_ok = dtype != DType::Bool || bytes.iter().all(|&b| b <= 1);
    let buffer = match src {
        Src::Mapped(map)
            if order == ByteOrder::Little
                && bool_ok
                && len > 0
                && (map.as_ptr() as usize + start) % elem_align(dtype) == 0 =>
        {
            Buffer::mapped(map.clone(), start, len)
        }
        _ => {
            let mut buf = Buffer::zeroed(len)?;
            let out = buf.as_bytes_mut();
            out.copy_from_slice(bytes);
            fix_bytes(out, dtype, order);
            buf
        }
    };
    Ok(Array::from_data(
        Data {
            buffer: Arc::new(buffer),
            strides,
            offset: 0,
        },
        shape,
        dtype,
    ))
}

/// Converts stored bytes in place to ingot's form: native (little-endian) element order and
/// bools of 0/1.
pub(crate) fn fix_bytes(bytes: &mut [u8], dtype: DType, order: ByteOrder) {
    if dtype == DType::Bool {
        for b in bytes.iter_mut() {
            *b = (*b != 0) as u8;
        }
    }
    if order == ByteOrder::Big {
        // A complex number is two floats, each swapped on its own.
        let w = elem_align(dtype);
        if w > 1 {
            for c in bytes.chunks_exact_mut(w) {
                c.reverse();
            }
        }
    }
}

/// Row-major little-endian bytes of an array (evaluates it).
pub(crate) fn array_bytes(a: &Array) -> Result<Vec<u8>> {
    a.to_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nbytes_checks_overflow_even_with_zero_dims() {
        assert!(checked_nbytes("t", "x", &[0, usize::MAX, 2], DType::F32).is_err());
        assert_eq!(
            checked_nbytes("t", "x", &[0, 1 << 20], DType::F32).unwrap(),
            0
        );
        assert_eq!(checked_nbytes("t", "x", &[3, 4], DType::F64).unwrap(), 96);
        assert_eq!(fortran_strides(&[3, 4, 5]), vec![1, 3, 12]);
    }
}
