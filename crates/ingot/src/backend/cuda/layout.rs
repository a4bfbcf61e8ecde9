//! Layout ops on the GPU (kernels/layout.cuh, kernels/random.cuh): concatenate, pad in every
//! mode, slice_update (in place when the destination is donated), random bits, and the
//! views that need a copy (view-as-dtype of a strided array). Data movement runs on same-size
//! unsigned integers, so one kernel per element width serves every dtype.

use super::elementwise::{bits, collapse, copy, ctype, KShape, KStrides, COMMON, FUNCS};
use super::{Args, Gpu};
use crate::array::{Array, Data};
use crate::backend::cpu::strided::out_data;
use crate::buffer::Buffer;
use crate::dtype::{DType, Kind};
use crate::op::{PadMode, ScatterKind};
use crate::shape::{broadcast_strides, contiguous_strides, is_row_contiguous, size_of};
use crate::{Result, Scalar};
use std::sync::Arc;

const LAYOUT: &str = include_str!("kernels/layout.cuh");
const RANDOM: &str = include_str!("kernels/random.cuh");
pub(super) const MAX_DIMS: usize = 6;

/// How an update of `kind` combines with the element there, on compute values `a` (old)
/// and `b` (update), as cpu/index.rs's `Combine`; None where no kernel handles it.
pub(super) fn combine(kind: ScatterKind, d: DType) -> Option<&'static str> {
    use ScatterKind::*;
    Some(match (kind, d.kind()) {
        (Set, _) => "b",
        (_, Kind::Complex) => return None,
        (Add | Max, Kind::Bool) => "a || b",
        (Prod | Min, Kind::Bool) => "a && b",
        (Add, Kind::Float) => "a + b",
        (Prod, Kind::Float) => "a * b",
        (Max, Kind::Float) => "((a != a || b != b) ? a + b : (b > a ? b : a))",
        (Min, Kind::Float) => "((a != a || b != b) ? a + b : (b < a ? b : a))",
        (Add, _) => "w_add(a, b)",
        (Prod, _) => "w_mul(a, b)",
        (Max, _) => "(b > a ? b : a)",
        (Min, _) => "(b < a ? b : a)",
    })
}

fn module(kind: ScatterKind, d: DType) -> Option<(String, String)> {
    // A plain set moves bits; combining needs the element's own type.
    let t = if kind == ScatterKind::Set { bits(d) } else { d };
    let c = combine(kind, d)?;
    let base = format!("lay_{}_{}", format!("{kind:?}").to_lowercase(), ctype(t));
    let src = format!(
        "{COMMON}\n{FUNCS}\n#define T {}\n#define C(a, b) ({c})\n#define KNAME(k) {base}_##k\n{LAYOUT}\n",
        ctype(t)
    );
    Some((base, src))
}

/// Module sources for the compile check: every width for copies and pads, every dtype and
/// kind for updates.
pub(crate) fn sample_sources() -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = [DType::U8, DType::U16, DType::U32, DType::U64]
        .into_iter()
        .filter_map(|d| module(ScatterKind::Set, d))
        .collect();
    use ScatterKind::*;
    for d in [
        DType::Bool,
        DType::I8,
        DType::U32,
        DType::I64,
        DType::F16,
        DType::BF16,
        DType::F32,
        DType::F64,
    ] {
        for k in [Add, Prod, Max, Min] {
            v.extend(module(k, d));
        }
    }
    v.push(("random_bits".into(), random_source()));
    v
}

fn random_source() -> String {
    format!("{COMMON}\n{RANDOM}\n")
}

fn kstrides(off: usize, st: &[isize]) -> KStrides {
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

/// `dst[window] = combine(dst[window], src)` where the window has `shape` and the strides
/// `dst_st` from element `dst_off` of the buffer at `dst`. `src` is read with its own layout
/// broadcast to `shape`. Returns false when no kernel handles it (more than MAX_DIMS dims).
#[allow(clippy::too_many_arguments)]
fn update(
    g: &Gpu,
    kind: ScatterKind,
    dtype: DType,
    dst: u64,
    dst_off: usize,
    dst_st: &[isize],
    src: &Array,
    shape: &[usize],
) -> Result<bool> {
    // Nothing to do, or no kernel: decided before the source is touched (uploaded).
    if size_of(shape) == 0 {
        return Ok(true);
    }
    if combine(kind, dtype).is_none() {
        return Ok(false);
    }
    let d = src.ready_data();
    let sst = broadcast_strides(src.shape(), &d.strides, shape);
    let src_at = (d.buffer.device_ptr(g.ordinal)?, d.offset, sst.as_slice());
    update_raw(g, kind, dtype, (dst, dst_off, dst_st), src_at, shape)
}

/// [`update`] on raw layouts: (pointer, element offset, element strides over `shape`) of
/// the destination and the source.
fn update_raw(
    g: &Gpu,
    kind: ScatterKind,
    dtype: DType,
    (dst, dst_off, dst_st): (u64, usize, &[isize]),
    (src, src_off, src_st): (u64, usize, &[isize]),
    shape: &[usize],
) -> Result<bool> {
    let n = size_of(shape);
    if n == 0 {
        return Ok(true);
    }
    // A plain set moves bits: as wider words where both layouts allow.
    if kind == ScatterKind::Set {
        let ops = [(dst, dst_off, dst_st), (src, src_off, src_st)];
        if let Some((word, dims, w)) = super::elementwise::widened(shape, &ops, dtype.size()) {
            let ((doff, dsts), (soff, ssts)) = (&w[0], &w[1]);
            return update_raw(g, kind, word, (dst, *doff, dsts), (src, *soff, ssts), &dims);
        }
    }
    let Some((base, source)) = module(kind, dtype) else {
        return Ok(false);
    };
    let Some((dims, sts)) = collapse(shape, &[dst_st.to_vec(), src_st.to_vec()]) else {
        return Ok(false);
    };
    let f = g.kernel_in(&base, &format!("{base}_update"), || source)?;
    let mut kd = [0i64; MAX_DIMS];
    for (i, &x) in dims.iter().enumerate() {
        kd[i] = x as i64;
    }
    let mut args = Args::new();
    args.push(dst)
        .push(kstrides(dst_off, &sts[0]))
        .push(src)
        .push(kstrides(src_off, &sts[1]))
        .push(KShape {
            nd: dims.len() as i32,
            dim: kd,
        })
        .push(n as i64);
    g.launch_1d(&f, n, &args)?;
    Ok(true)
}

/// Writes `src` into the buffer at `dst` with the element strides `dst_st` (a layout of
/// `src`'s shape, e.g. rows padded to an aligned length), visiting the dims in `order`
/// (outermost first: a transposed source is best walked in its storage order). Returns
/// false when no kernel handles it (more than MAX_DIMS dims).
pub(super) fn copy_into(
    g: &Gpu,
    dst: u64,
    dst_st: &[isize],
    src: &Array,
    order: &[usize],
) -> Result<bool> {
    let d = src.ready_data();
    let pick = |v: &[isize]| -> Vec<isize> { order.iter().map(|&i| v[i]).collect() };
    let shape: Vec<usize> = order.iter().map(|&i| src.shape()[i]).collect();
    let (dst_st, src_st) = (pick(dst_st), pick(&d.strides));
    let src_at = (d.buffer.device_ptr(g.ordinal)?, d.offset, src_st.as_slice());
    update_raw(
        g,
        ScatterKind::Set,
        src.dtype(),
        (dst, 0, &dst_st),
        src_at,
        &shape,
    )
}

pub(super) fn concatenate(
    g: &Gpu,
    inputs: &[Array],
    axis: usize,
    out_shape: &[usize],
    dtype: DType,
) -> Result<Option<Vec<Data>>> {
    let mem = g.alloc(size_of(out_shape) * dtype.size())?;
    let ost = contiguous_strides(out_shape);
    let mut at = 0usize;
    for x in inputs {
        let off = at * ost.get(axis).copied().unwrap_or(0) as usize;
        if !update(
            g,
            ScatterKind::Set,
            dtype,
            mem.ptr(),
            off,
            &ost,
            x,
            x.shape(),
        )? {
            return Ok(None);
        }
        at += x.shape().get(axis).copied().unwrap_or(0);
    }
    Ok(Some(vec![out_data(Buffer::on_device(mem), out_shape)]))
}

pub(super) fn pad(
    g: &Gpu,
    x: &Array,
    (low, mode, value): (&[usize], PadMode, Scalar),
    out_shape: &[usize],
) -> Result<Option<Vec<Data>>> {
    let dt = x.dtype();
    let nd = x.ndim();
    if nd > MAX_DIMS {
        return Ok(None);
    }
    let n = size_of(out_shape);
    let mem = g.alloc(n * dt.size())?;
    if n > 0 {
        let d = x.ready_data();
        let (base, source) = module(ScatterKind::Set, dt).expect("set handles every dtype");
        let f = g.kernel_in(&base, &format!("{base}_pad"), || source)?;
        let mut dims = PadDims {
            nd: nd as i32,
            mode: match mode {
                PadMode::Constant => 0,
                PadMode::Edge => 1,
                PadMode::Reflect => 2,
                PadMode::Symmetric => 3,
            },
            out: [1; MAX_DIMS],
            inp: [1; MAX_DIMS],
            low: [0; MAX_DIMS],
        };
        for i in 0..nd {
            dims.out[i] = out_shape[i] as i64;
            dims.inp[i] = x.shape()[i] as i64;
            dims.low[i] = low[i] as i64;
        }
        let mut v = [0u8; 8];
        crate::dispatch_dtype!(dt, E => {
            let e: E = value.to_elem::<E>();
            // Safety: E is plain data of at most 8 bytes.
            unsafe {
                std::ptr::copy_nonoverlapping((&e as *const E).cast::<u8>(), v.as_mut_ptr(), dt.size())
            };
        });
        // An empty input gives only the constant (no element is read).
        let src = if size_of(x.shape()) == 0 {
            0
        } else {
            d.buffer.device_ptr(g.ordinal)?
        };
        let mut args = Args::new();
        args.push(mem.ptr())
            .push(src)
            .push(kstrides(d.offset, &d.strides))
            .push(dims)
            .push(n as i64)
            .push(u64::from_le_bytes(v));
        g.launch_1d(&f, n, &args)?;
    }
    Ok(Some(vec![out_data(Buffer::on_device(mem), out_shape)]))
}

#[repr(C)]
#[derive(Clone, Copy)]
struct PadDims {
    nd: i32,
    mode: i32,
    out: [i64; MAX_DIMS],
    inp: [i64; MAX_DIMS],
    low: [i64; MAX_DIMS],
}

/// `a` with `upd` combined into the window (start, step): into `a`'s own GPU buffer when it
/// is donated and row-major, else into a row-major copy made on the GPU.
pub(super) fn slice_update(
    g: &Gpu,
    inputs: &[Array],
    (start, step, kind): (&[usize], &[isize], ScatterKind),
) -> Result<Option<Vec<Data>>> {
    let (a, upd) = (&inputs[0], &inputs[1]);
    let dt = a.dtype();
    if combine(kind, dt).is_none() || a.ndim() > MAX_DIMS || upd.ndim() > MAX_DIMS {
        return Ok(None);
    }
    let shape = a.shape();
    let ostr = contiguous_strides(shape);
    let base: isize = start.iter().zip(&ostr).map(|(&s, &t)| s as isize * t).sum();
    let wstr: Vec<isize> = ostr.iter().zip(step).map(|(&t, &k)| t * k).collect();
    let n = size_of(shape);
    let (mut buffer, offset) = update_dest(g, a)?;
    if n > 0 {
        let ptr = buffer.device_ptr_mut(g.ordinal)?;
        let off = (offset as isize + base) as usize;
        if !update(g, kind, dt, ptr, off, &wstr, upd, upd.shape())? {
            // Unreachable for the dims checked above.
            return Ok(None);
        }
    }
    Ok(Some(vec![Data {
        buffer: Arc::new(buffer),
        strides: ostr,
        offset,
    }]))
}

/// The destination of an update of `a` (at most MAX_DIMS dims), as the buffer and the
/// element offset where `a` starts: `a`'s own buffer when it is donated and row-major
/// (nothing else can see the write), else a row-major copy made on the GPU. Call only after
/// every check that can fail: donation empties the input node.
pub(super) fn update_dest(g: &Gpu, a: &Array) -> Result<(Buffer, usize)> {
    let shape = a.shape();
    let donated = a.try_donate_if(|d| is_row_contiguous(shape, &d.strides));
    Ok(match donated {
        Some(d) => match Arc::try_unwrap(d.buffer) {
            Ok(b) => (b, d.offset),
            Err(buffer) => {
                let d = Data { buffer, ..d };
                let y = Array::from_data(d, shape.to_vec(), a.dtype());
                (fresh_copy(g, &y)?, 0)
            }
        },
        None => (fresh_copy(g, a)?, 0),
    })
}

/// A row-major GPU copy of `x` as an owned buffer (x has at most MAX_DIMS dims).
fn fresh_copy(g: &Gpu, x: &Array) -> Result<Buffer> {
    let mem = g.alloc(size_of(x.shape()) * x.dtype().size())?;
    let ost = contiguous_strides(x.shape());
    let done = update(
        g,
        ScatterKind::Set,
        x.dtype(),
        mem.ptr(),
        0,
        &ost,
        x,
        x.shape(),
    )?;
    debug_assert!(done, "callers check the number of dims");
    Ok(Buffer::on_device(mem))
}

/// Threefry-2x32 random bits of `shape` from `key` (uint32, shape (2,)), bit for bit the
/// CPU's.
pub(super) fn random_bits(g: &Gpu, key: &Array, shape: &[usize]) -> Result<Option<Vec<Data>>> {
    if key.dtype() != DType::U32 || key.shape() != [2] {
        // The CPU reports the error.
        return Ok(None);
    }
    let n = size_of(shape);
    if n > u32::MAX as usize {
        return Ok(None);
    }
    let mem = g.alloc(n * 4)?;
    if n > 0 {
        let d = key.ready_data();
        let f = g.kernel_in("random_bits", "random_bits_u32", random_source)?;
        let kptr = d.buffer.device_ptr(g.ordinal)? + (d.offset * 4) as u64;
        let mut args = Args::new();
        args.push(mem.ptr())
            .push(kptr)
            .push(d.strides[0] as i64)
            .push(n as i64);
        g.launch_1d(&f, n.div_ceil(2), &args)?;
    }
    Ok(Some(vec![out_data(Buffer::on_device(mem), shape)]))
}

/// View-as-dtype: the CPU's view when `x` is row-major and aligned, else the same view of a
/// row-major GPU copy; a bool target normalizes bytes to 0/1 in a cast kernel.
pub(super) fn view_dtype(
    g: &Gpu,
    op: &crate::op::Op,
    x: &Array,
    outs: crate::backend::cpu::Outs,
) -> Result<Option<Vec<Data>>> {
    let to = outs[0].1;
    let d = x.ready_data();
    let aligned = (d.offset * x.dtype().size()) % to.size() == 0;
    if is_row_contiguous(x.shape(), &d.strides) && aligned && to != DType::Bool {
        return crate::backend::cpu::eval(op, std::slice::from_ref(x), outs).map(Some);
    }
    let Some(c) = copy(g, x)? else {
        return Ok(None);
    };
    let y = Array::from_data(c, x.shape().to_vec(), x.dtype());
    if to != DType::Bool {
        return crate::backend::cpu::eval(op, &[y], outs).map(Some);
    }
    // Bytes to bools: the copy's bytes as u8, cast (nonzero -> true) on the GPU.
    let c = y.ready_data();
    let bytes = Data {
        strides: contiguous_strides(&outs[0].0),
        offset: c.offset * x.dtype().size(),
        buffer: c.buffer,
    };
    let bytes = Array::from_data(bytes, outs[0].0.clone(), DType::U8);
    super::elementwise::eval(g, &crate::op::Op::AsType(DType::Bool), &[bytes], outs)
}
