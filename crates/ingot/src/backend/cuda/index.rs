//! Gathers on the GPU (kernels/index.cuh): take, take_along_axis and MLX-style gather, for
//! every dtype (elements move as bits) and every integer index dtype.
//!
//! Indices are resolved first into element offsets. Indices the host holds are resolved by
//! the CPU backend's own code (same errors, no wait for the GPU). Indices that live only on
//! the GPU are resolved by a kernel that records the first bad position; the host then waits
//! for that one word, because an index out of bounds must be an error, not a wrong read.

use super::elementwise::{bits, collapse, ctype, KShape, KStrides, COMMON};
use super::DeviceMem;
use super::{cuda_err, Args, Gpu};
use crate::array::{Array, Data};
use crate::backend::cpu::index::{resolve, resolve_sized};
use crate::backend::cpu::strided::out_data;
use crate::buffer::Buffer;
use crate::dtype::DType;
use crate::shape::size_of;
use crate::Result;

const INDEX: &str = include_str!("kernels/index.cuh");
const MAX_DIMS: usize = 6;

fn gather_module(d: DType) -> (String, String) {
    let t = ctype(bits(d));
    let base = format!("gath_{t}");
    let src = format!("{COMMON}\n#define T {t}\n#define KNAME(k) {base}_##k\n{INDEX}\n");
    (base, src)
}

fn resolve_module(d: DType) -> (String, String) {
    let t = ctype(d);
    let base = format!("idxres_{t}");
    let u64_def = if d == DType::U64 {
        "#define INDEX_U64\n"
    } else {
        ""
    };
    let src = format!("{COMMON}\n#define IT {t}\n{u64_def}#define KNAME(k) {base}_##k\n{INDEX}\n");
    (base, src)
}

/// Module sources for the compile check.
pub(crate) fn sample_sources() -> Vec<(String, String)> {
    use DType::*;
    let mut v: Vec<_> = [U8, U16, U32, U64].into_iter().map(gather_module).collect();
    v.extend(
        [I8, I16, I32, I64, U8, U16, U32, U64]
            .into_iter()
            .map(resolve_module),
    );
    v
}

pub(super) fn kshape(dims: &[usize]) -> KShape {
    let mut d = [0i64; MAX_DIMS];
    for (i, &x) in dims.iter().enumerate() {
        d[i] = x as i64;
    }
    KShape {
        nd: dims.len() as i32,
        dim: d,
    }
}

pub(super) fn kstrides(off: usize, st: &[isize]) -> KStrides {
    let mut s = [0i64; MAX_DIMS];
    for (i, &x) in st.iter().enumerate() {
        s[i] = x as i64;
    }
    KStrides {
        off: off as i64,
        st: s,
        mode: 0,
    }
}

/// One index array's part of the element offsets: `pos[j] (+)= resolve(idx[j]) * mult`.
pub(super) struct Part<'a> {
    pub idx: &'a Array,
    pub axis: usize,
    pub n: usize,
    pub size: usize,
    pub mult: isize,
}

/// The parts of MLX-style gather and scatter: index array k picks, on axis `axes[k]` of
/// `shape` (element stride `strides[axes[k]]`), the start of a slice `sizes[axes[k]]` long.
pub(super) fn slice_parts<'a>(
    idx: &'a [Array],
    axes: &[usize],
    shape: &[usize],
    sizes: &[usize],
    strides: &[isize],
) -> Vec<Part<'a>> {
    idx.iter()
        .zip(axes)
        .map(|(i, &ax)| Part {
            idx: i,
            axis: ax,
            n: shape[ax],
            size: sizes[ax],
            mult: strides[ax],
        })
        .collect()
}

/// The element offsets `sum over parts of resolve(idx[j]) * mult`, one per index position
/// (`m` of them), in GPU memory. `None` when a kernel cannot index the arrays.
pub(super) fn offsets(g: &Gpu, op: &str, parts: &[Part], m: usize) -> Result<Option<DeviceMem>> {
    let capturing = super::graph::capturing(g.ordinal);
    // Indices on the host: resolved there, by the CPU's code, and uploaded once. A graph
    // being recorded cannot upload, so it resolves indices that also have a GPU copy there.
    let on_host = |p: &Part| {
        let b = p.idx.ready_data().buffer;
        b.is_on_host() && !(capturing && b.device_ordinal() == Some(g.ordinal))
    };
    if parts.iter().all(on_host) {
        super::graph::forbid(g.ordinal, "indices on the host")?;
        let mut pos = vec![0i64; m];
        for p in parts {
            let r = resolve_sized(op, p.idx, p.axis, p.n, p.size)?;
            for (o, x) in pos.iter_mut().zip(r) {
                *o += x as i64 * p.mult as i64;
            }
        }
        let mem = g.alloc(m * 8)?;
        if m > 0 {
            // Safety: `mem` holds m i64s; a copy from pageable memory is staged before return.
            unsafe {
                cudarc::driver::result::memcpy_htod_async(mem.ptr(), &pos, g.stream()?.cu_stream())
            }
            .map_err(|e| cuda_err("copy to device", e))?;
            super::count_transfer(true, m * 8);
        }
        return Ok(Some(mem));
    }
    let mem = g.alloc(m * 8)?;
    if m == 0 {
        return Ok(Some(mem));
    }
    // A recorded graph reads position 0 for a bad index, so there must be one: with an
    // axis shorter than its slice every index is bad, an error known now.
    if capturing && parts.iter().any(|p| p.n < p.size.max(1)) {
        super::graph::forbid(g.ordinal, "indices into an empty axis")?;
    }
    let bad = g.alloc(8)?;
    // Safety: `bad` is an 8-byte block of this GPU; the memset is ordered on its stream.
    unsafe { cudarc::driver::result::memset_d8_async(bad.ptr(), 0xff, 8, g.stream()?.cu_stream()) }
        .map_err(|e| cuda_err(op, e))?;
    let mut layouts = Vec::new();
    for p in parts {
        let d = p.idx.ready_data();
        let Some((dims, sts)) = collapse(p.idx.shape(), std::slice::from_ref(&d.strides)) else {
            return Ok(None);
        };
        layouts.push((d, dims, sts));
    }
    for (k, (p, (d, dims, sts))) in parts.iter().zip(&layouts).enumerate() {
        let (base, src) = resolve_module(p.idx.dtype());
        let f = g.kernel_in(&base, &format!("{base}_resolve"), || src)?;
        let mut args = Args::new();
        args.push(d.buffer.device_ptr(g.ordinal)?)
            .push(kstrides(d.offset, &sts[0]))
            .push(kshape(dims))
            .push(m as i64)
            .push(p.n as i64)
            .push(p.size as i64)
            .push(p.mult as i64)
            .push((k > 0) as i32)
            .push(mem.ptr())
            .push(bad.ptr());
        g.launch_1d(&f, m, &args)?;
    }
    // The one wait: an index out of bounds is an error. A graph checks after the fact.
    if super::graph::defer_index_check(g, op, bad.ptr())? {
        return Ok(Some(mem));
    }
    let mut first = [0u64; 1];
    // Safety: 8 bytes from an 8-byte block; the synchronize below completes the copy.
    unsafe {
        cudarc::driver::result::memcpy_dtoh_async(
            &mut first[..],
            bad.ptr(),
            g.stream()?.cu_stream(),
        )
    }
    .map_err(|e| cuda_err(op, e))?;
    g.synchronize()?;
    super::count_transfer(false, 8);
    if first[0] != u64::MAX {
        let j = first[0] as usize;
        // Which index array was bad: the first whose value at j does not resolve.
        for p in parts {
            let v = index_value(g, p.idx, j)?;
            resolve(op, v, p.axis, p.n, p.size)?;
        }
        return Err(crate::Error::invalid(
            op,
            format!("index at position {j} is out of bounds"),
        ));
    }
    Ok(Some(mem))
}

/// Element `j` (row-major) of an index array that lives on the GPU, as the CPU reads it.
fn index_value(g: &Gpu, idx: &Array, j: usize) -> Result<i64> {
    let d = idx.ready_data();
    let mut off = d.offset as isize;
    let mut rem = j;
    for (&n, &s) in idx.shape().iter().zip(&d.strides).rev() {
        off += (rem % n) as isize * s;
        rem /= n;
    }
    let size = idx.dtype().size();
    let mut b = [0u8; 8];
    let ptr = d.buffer.device_ptr(g.ordinal)? + (off as usize * size) as u64;
    // Safety: one element of the index buffer; synchronized below.
    unsafe {
        cudarc::driver::result::memcpy_dtoh_async(&mut b[..size], ptr, g.stream()?.cu_stream())
    }
    .map_err(|e| cuda_err("copy to host", e))?;
    g.synchronize()?;
    Ok(match idx.dtype() {
        DType::I64 => i64::from_le_bytes(b),
        DType::U64 => i64::try_from(u64::from_le_bytes(b)).unwrap_or(i64::MAX),
        dt => crate::dispatch_dtype!(dt, E => {
            // Safety: E is plain data of `size` bytes.
            let e: E = unsafe { std::ptr::read_unaligned(b.as_ptr() as *const E) };
            crate::dtype::Element::to_f64(e) as i64
        }),
    })
}

/// `take` (`along` false: one index per position of the axis) and `take_along_axis`
/// (`along`: one index per output element).
pub(super) fn take(
    g: &Gpu,
    inputs: &[Array],
    axis: usize,
    along: bool,
    out_shape: &[usize],
) -> Result<Option<Vec<Data>>> {
    let (a, idx) = (&inputs[0], &inputs[1]);
    let op = if along { "take_along_axis" } else { "take" };
    let dt = a.dtype();
    let total = size_of(out_shape);
    let n = a.shape()[axis];
    let d = a.ready_data();
    let m = if along {
        idx.shape()[axis]
    } else {
        size_of(idx.shape())
    };
    let inner: usize = a.shape()[axis + 1..].iter().product();
    // a's dims other than the axis, walked by the kernel (the axis comes from the offsets).
    let rest: Vec<usize> = (0..a.ndim()).filter(|&i| i != axis).collect();
    let rshape: Vec<usize> = rest.iter().map(|&i| a.shape()[i]).collect();
    let rst: Vec<isize> = rest.iter().map(|&i| d.strides[i]).collect();
    let Some((dims, sts)) = collapse(&rshape, &[rst]) else {
        return Ok(None);
    };
    let npos = if along { total } else { m };
    let part = Part {
        idx,
        axis,
        n,
        size: 1,
        mult: d.strides[axis],
    };
    let Some(pos) = offsets(g, op, &[part], npos)? else {
        return Ok(None);
    };
    let mem = g.alloc(total * dt.size())?;
    if total > 0 {
        let (base, src) = gather_module(dt);
        let f = g.kernel_in(&base, &format!("{base}_take"), || src)?;
        let mut args = Args::new();
        args.push(mem.ptr())
            .push(d.buffer.device_ptr(g.ordinal)?)
            .push(pos.ptr())
            .push(kstrides(d.offset, &sts[0]))
            .push(kshape(&dims))
            .push(m as i64)
            .push(inner as i64)
            .push(along as i32)
            .push(total as i64);
        g.launch_1d(&f, total, &args)?;
    }
    Ok(Some(vec![out_data(Buffer::on_device(mem), out_shape)]))
}

/// MLX-style gather: inputs (a, idx_0, .., idx_k) over `axes`, slices of `slice_sizes`.
pub(super) fn gather(
    g: &Gpu,
    inputs: &[Array],
    axes: &[usize],
    slice_sizes: &[usize],
    out_shape: &[usize],
) -> Result<Option<Vec<Data>>> {
    let a = &inputs[0];
    let idx = &inputs[1..];
    let dt = a.dtype();
    let d = a.ready_data();
    let nb: usize = idx.first().map(|i| size_of(i.shape())).unwrap_or(1);
    if idx.iter().any(|i| size_of(i.shape()) != nb) {
        return Ok(None);
    }
    let parts = slice_parts(idx, axes, a.shape(), slice_sizes, &d.strides);
    let Some((dims, sts)) = collapse(slice_sizes, std::slice::from_ref(&d.strides)) else {
        return Ok(None);
    };
    let total = size_of(out_shape);
    let Some(bases) = offsets(g, "gather", &parts, nb)? else {
        return Ok(None);
    };
    let mem = g.alloc(total * dt.size())?;
    if total > 0 {
        let (base, src) = gather_module(dt);
        let f = g.kernel_in(&base, &format!("{base}_gather"), || src)?;
        let mut args = Args::new();
        args.push(mem.ptr())
            .push(d.buffer.device_ptr(g.ordinal)?)
            .push(bases.ptr())
            .push(kstrides(d.offset, &sts[0]))
            .push(kshape(&dims))
            .push(size_of(slice_sizes) as i64)
            .push(total as i64);
        g.launch_1d(&f, total, &args)?;
    }
    Ok(Some(vec![out_data(Buffer::on_device(mem), out_shape)]))
}
