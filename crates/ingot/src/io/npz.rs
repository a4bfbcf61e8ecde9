//! NumPy's .npz format: a zip archive of .npy files, stored or deflated.

use super::npy::{npy_header, parse_npy};
use super::{bad, io_err, map_file, Src};
use crate::array::Array;
use crate::{Error, Result};
use std::collections::HashSet;
use std::io::{Cursor, Read, Seek, Write};
use std::path::Path;

/// Deflate cannot expand data by more than about 1032 times: a larger declared size is a
/// lie (a zip bomb) and is refused before anything is read.
const MAX_DEFLATE_RATIO: u64 = 1100;

/// Loads every array of a .npz file, in archive order, named without the `.npy` suffix.
/// Stored (uncompressed) members read the memory-mapped file in place when aligned.
pub fn load_npz(path: impl AsRef<Path>) -> Result<Vec<(String, Array)>> {
    let path = path.as_ref();
    let src = map_file("load_npz", path)?;
    parse_npz(&path.display().to_string(), &src)
}

/// Reads a .npz file held in memory.
pub fn load_npz_bytes(bytes: &[u8]) -> Result<Vec<(String, Array)>> {
    parse_npz("<bytes>", &Src::Slice(bytes))
}

fn parse_npz(name: &str, src: &Src) -> Result<Vec<(String, Array)>> {
    const OP: &str = "load_npz";
    let bytes = src.bytes();
    let total = bytes.len() as u64;
    let zerr = |e: zip::result::ZipError| bad(OP, name, format!("bad zip archive: {e}"));
    // A panic inside the zip crate on a malformed archive must still be an Err.
    let guarded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> Result<_> {
        let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(zerr)?;
        let mut out = Vec::with_capacity(zip.len().min(1 << 16));
        let mut seen = HashSet::new();
        for i in 0..zip.len() {
            let (member, method, size, csize, data_start) = {
                let f = zip.by_index_raw(i).map_err(zerr)?;
                (
                    f.name().to_string(),
                    f.compression(),
                    f.size(),
                    f.compressed_size(),
                    f.data_start(),
                )
            };
            if member.ends_with('/') {
                continue;
            }
            let key = member.strip_suffix(".npy").unwrap_or(&member).to_string();
            if !seen.insert(key.clone()) {
                return Err(bad(OP, name, format!("member '{key}' appears twice")));
            }
            let label = format!("{name}:{member}");
            let end = data_start.checked_add(csize).filter(|&e| e <= total);
            let end = end.ok_or_else(|| {
                bad(
                    OP,
                    &label,
                    format!("member of {csize} bytes extends past the end of the archive"),
                )
            })?;
            let arr = match method {
                zip::CompressionMethod::Stored => {
                    if size != csize {
                        return Err(bad(
                            OP,
                            &label,
                            format!("stored member declares {size} bytes but holds {csize}"),
                        ));
                    }
                    parse_npy(OP, &label, src, data_start as usize, end as usize)?
                }
                zip::CompressionMethod::Deflated => {
                    if size > csize.saturating_mul(MAX_DEFLATE_RATIO).saturating_add(1024) {
                        return Err(bad(
                            OP,
                            &label,
                            format!("declares {size} bytes inflated from {csize}: not possible with deflate"),
                        ));
                    }
                    let f = zip.by_index(i).map_err(zerr)?;
                    // Grows only as real data arrives, and never past the declared size.
                    let mut data = Vec::new();
                    f.take(size)
                        .read_to_end(&mut data)
                        .map_err(|e| bad(OP, &label, format!("cannot inflate: {e}")))?;
                    if data.len() as u64 != size {
                        return Err(bad(
                            OP,
                            &label,
                            format!("declares {size} bytes but inflates to {}", data.len()),
                        ));
                    }
                    let n = data.len();
                    parse_npy(OP, &label, &Src::Slice(&data), 0, n)?
                }
                other => {
                    return Err(bad(
                        OP,
                        &label,
                        format!("unsupported compression method {other}"),
                    ))
                }
            };
            out.push((key, arr));
        }
        Ok(out)
    }));
    guarded.unwrap_or_else(|_| Err(bad(OP, name, "malformed zip archive")))
}

fn write_npz<W: Write + Seek>(w: W, arrays: &[(&str, &Array)], compressed: bool) -> Result<W> {
    const OP: &str = "save_npz";
    let mut seen = HashSet::new();
    for (n, a) in arrays {
        if !seen.insert(*n) {
            return Err(Error::invalid(OP, format!("name '{n}' given twice")));
        }
        a.eval()?;
    }
    let zerr = |e: zip::result::ZipError| Error::io(OP, e);
    let ioerr = |e: std::io::Error| Error::io(OP, e);
    let mut zip = zip::ZipWriter::new(w);
    for (n, a) in arrays {
        let data = a.to_bytes()?;
        let header = npy_header(a.shape(), a.dtype());
        let method = if compressed {
            zip::CompressionMethod::Deflated
        } else {
            zip::CompressionMethod::Stored
        };
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(method)
            .large_file((data.len() + header.len()) as u64 >= u32::MAX as u64)
            // Stored members start on a 64-byte boundary (padding in the zip extra field),
            // and the .npy header is 64 bytes long: the data can be read in place.
            .with_alignment(if compressed { 1 } else { 64 });
        zip.start_file(format!("{n}.npy"), opts).map_err(zerr)?;
        zip.write_all(&header).map_err(ioerr)?;
        zip.write_all(&data).map_err(ioerr)?;
    }
    zip.finish().map_err(zerr)
}

/// The .npz bytes of named arrays (evaluates them).
pub fn npz_to_bytes(arrays: &[(&str, &Array)], compressed: bool) -> Result<Vec<u8>> {
    Ok(write_npz(Cursor::new(Vec::new()), arrays, compressed)?.into_inner())
}

/// Writes named arrays as a .npz file, each as `<name>.npy`; `compressed` deflates them
/// (NumPy's `savez_compressed`), else they are stored (`savez`).
pub fn save_npz(path: impl AsRef<Path>, arrays: &[(&str, &Array)], compressed: bool) -> Result<()> {
    let path = path.as_ref();
    for (_, a) in arrays {
        a.eval()?;
    }
    let f = std::fs::File::create(path).map_err(|e| io_err("save_npz", path, e))?;
    let w = write_npz(std::io::BufWriter::new(f), arrays, compressed)?;
    w.into_inner()
        .map_err(|e| io_err("save_npz", path, e.error()))?;
    Ok(())
}
