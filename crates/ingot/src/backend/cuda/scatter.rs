//! Scatters on the GPU (kernels/scatter.cuh): put_along_axis and MLX-style scatter with every
//! ScatterKind, for every dtype, with the CPU's results.
//!
//! Indices are resolved into element offsets as the gathers do (index.rs's `offsets`: the
//! CPU's own code when the host holds them, so the same errors), before the destination is
//! taken: `a`'s own buffer when it is donated, else a copy made on the GPU. Then one thread
//! per update. The CPU applies updates in row-major order, so where two updates may land on
//! one element a set runs in two passes: each update atomically keeps the largest update
//! number per destination element, then only that winner writes (the last one wins, every
//! run). Combining updates are atomic: one instruction where the hardware has one that
//! rounds as the CPU does (integer add, max and min on 32/64-bit words, f64 add), else a
//! compare-and-swap loop on the aligned 32- or 64-bit word holding the element (f32 adds too:
//! the f32 atomic add of global memory flushes subnormals).
//!
//! Float and complex combines whose updates may meet would round differently in whatever
//! order atomics happen to run, so they run in the CPU's order instead (`ordered`): a thread
//! per lane walks its updates in row-major order, where a lane is an (outer, inner) column of
//! put_along_axis, or one slice element of a scatter whose slices are single elements along
//! every indexed axis (an embedding's gradient: rows). Scatters whose slices overlap in part
//! stay on the CPU.

use super::elementwise::{bits, collapse, ctype, row_major, COMMON, FUNCS};
use super::index::{kshape, kstrides, offsets, slice_parts, Part};
use super::layout::{update_dest, MAX_DIMS};
use super::{cuda_err, Args, DeviceMem, Gpu};
use crate::array::{Array, Data};
use crate::dtype::{DType, Kind};
use crate::op::ScatterKind;
use crate::ops::index::kind_name;
use crate::shape::{contiguous_strides, size_of};
use crate::Result;
use std::sync::Arc;

const SCATTER: &str = include_str!("kernels/scatter.cuh");

/// How an update of `kind` combines with the element there, on compute values `a` (old) and
/// `b` (update): layout.rs's rule, plus complex numbers.
fn combine(kind: ScatterKind, d: DType) -> &'static str {
    use ScatterKind::*;
    match (kind, d.kind()) {
        (Add, Kind::Complex) => "c_add(a, b)",
        (Prod, Kind::Complex) => "c_mul(a, b)",
        (Max, Kind::Complex) => "(c_gt(b, a) ? b : a)",
        (Min, Kind::Complex) => "(c_lt(b, a) ? b : a)",
        _ => super::layout::combine(kind, d).expect("every real dtype combines"),
    }
}

/// One atomic instruction that combines exactly as the CPU does, where there is one.
fn native(kind: ScatterKind, d: DType) -> Option<&'static str> {
    use DType::*;
    use ScatterKind::*;
    Some(match (kind, d) {
        (Add, I32 | U32) => "atomicAdd((unsigned*)p, (unsigned)u)",
        (Add, I64 | U64) => "atomicAdd((unsigned long long*)p, (unsigned long long)u)",
        (Add, F64) => "atomicAdd(p, u)",
        (Max, I32 | U32 | I64 | U64) => "atomicMax(p, u)",
        (Min, I32 | U32 | I64 | U64) => "atomicMin(p, u)",
        _ => return None,
    })
}

/// The module for `kind` over `d`: a set moves bits (one module per width), a combining
/// update computes in the element's own type.
fn module(kind: ScatterKind, d: DType) -> (String, String) {
    if kind == ScatterKind::Set {
        let t = ctype(bits(d));
        let base = format!("scat_set_{t}");
        let src = format!(
            "{COMMON}\n#define T {t}\n#define KIND 0\n#define KNAME(k) {base}_##k\n{SCATTER}\n"
        );
        return (base, src);
    }
    let t = ctype(d);
    let base = format!("scat_{}_{t}", format!("{kind:?}").to_lowercase());
    let nat = native(kind, d)
        .map(|n| format!("#define NATIVE(p, u) {n}\n"))
        .unwrap_or_default();
    let src = format!(
        "{COMMON}\n{FUNCS}\n#define T {t}\n#define KIND 1\n#define C(a, b) ({})\n{nat}#define KNAME(k) {base}_##k\n{SCATTER}\n",
        combine(kind, d)
    );
    (base, src)
}

/// Module sources for the compile check: every width for sets, every dtype and kind for
/// combining updates.
pub(crate) fn sample_sources() -> Vec<(String, String)> {
    use DType::*;
    use ScatterKind::*;
    let mut v: Vec<_> = [U8, U16, U32, U64]
        .into_iter()
        .map(|d| module(Set, d))
        .collect();
    for d in [
        Bool, U8, U16, U32, U64, I8, I16, I32, I64, F16, BF16, F32, F64, C64,
    ] {
        for k in [Add, Prod, Max, Min] {
            v.push(module(k, d));
        }
    }
    v
}

/// Where update i lands (scatter.cuh's `Geo`).
#[repr(C)]
#[derive(Clone, Copy)]
struct Geo {
    total: i64,
    along: i64,
    blk: i64,
    oblk: i64,
    inner: i64,
}

/// `put_along_axis`: a (outer, n, inner); indices and values (outer, m, inner).
pub(super) fn put_along_axis(
    g: &Gpu,
    inputs: &[Array],
    axis: usize,
    kind: ScatterKind,
) -> Result<Option<Vec<Data>>> {
    let (a, idx, vals) = (&inputs[0], &inputs[1], &inputs[2]);
    if a.ndim() > MAX_DIMS || vals.dtype() != a.dtype() || vals.shape() != idx.shape() {
        return Ok(None);
    }
    let op = kind_name("put_along_axis", kind);
    let n = a.shape()[axis];
    let m = idx.shape()[axis];
    let inner: usize = a.shape()[axis + 1..].iter().product();
    let total = size_of(idx.shape());
    let part = Part {
        idx,
        axis,
        n,
        size: 1,
        mult: inner as isize,
    };
    let Some(pos) = offsets(g, &op, &[part], total)? else {
        return Ok(None);
    };
    let geo = Geo {
        total: total as i64,
        along: 1,
        blk: (m * inner).max(1) as i64,
        oblk: (n * inner) as i64,
        inner: inner.max(1) as i64,
    };
    // Two updates can meet only when there are several along the axis; a lane is an
    // (outer, inner) column.
    let lanes = Lanes {
        lanes: total / m.max(1),
        steps: m,
    };
    apply(
        g,
        a,
        vals,
        &pos,
        geo,
        (&[1], &[0]),
        kind,
        m > 1,
        Some(lanes),
    )
}

/// MLX-style scatter: inputs (a, idx_0..idx_k, updates of shape B + S).
pub(super) fn scatter(
    g: &Gpu,
    inputs: &[Array],
    axes: &[usize],
    kind: ScatterKind,
) -> Result<Option<Vec<Data>>> {
    let a = &inputs[0];
    let k = axes.len();
    let idx = &inputs[1..=k];
    let upd = &inputs[k + 1];
    if a.ndim() > MAX_DIMS || upd.dtype() != a.dtype() || upd.ndim() < a.ndim() {
        return Ok(None);
    }
    let op = kind_name("scatter", kind);
    let nbd = upd.ndim() - a.ndim();
    let nb = size_of(&upd.shape()[..nbd]);
    if idx.iter().any(|i| size_of(i.shape()) != nb) {
        return Ok(None);
    }
    let sizes = &upd.shape()[nbd..];
    let ast = contiguous_strides(a.shape());
    let parts = slice_parts(idx, axes, a.shape(), sizes, &ast);
    let Some((dims, sts)) = collapse(sizes, std::slice::from_ref(&ast)) else {
        return Ok(None);
    };
    let Some(bases) = offsets(g, &op, &parts, nb)? else {
        return Ok(None);
    };
    let ns = size_of(sizes);
    let geo = Geo {
        total: (nb * ns) as i64,
        along: 0,
        blk: ns.max(1) as i64,
        oblk: 0,
        inner: 1,
    };
    // One slice's elements are distinct elements of `a`; two slices may overlap, unless
    // they are single elements along every indexed axis: then slice element j of two
    // updates meets only slice element j, and a lane is a slice element.
    let whole = axes.iter().all(|&ax| sizes[ax] == 1);
    let lanes = whole.then_some(Lanes {
        lanes: ns,
        steps: nb,
    });
    apply(
        g,
        a,
        upd,
        &bases,
        geo,
        (&dims, &sts[0]),
        kind,
        nb > 1,
        lanes,
    )
}

/// Independent sequences of updates (scatter.cuh's `ordered`): `lanes` of `steps` each,
/// where updates of different lanes never land on one element.
#[derive(Clone, Copy)]
struct Lanes {
    lanes: usize,
    steps: usize,
}

/// Copies (or takes) the destination and applies the updates `upd` (row-major order is the
/// update order) landing where `geo`, `pos` and the slice layout say.
#[allow(clippy::too_many_arguments)]
fn apply(
    g: &Gpu,
    a: &Array,
    upd: &Array,
    pos: &DeviceMem,
    geo: Geo,
    (sdims, sst): (&[usize], &[isize]),
    kind: ScatterKind,
    may_repeat: bool,
    lanes: Option<Lanes>,
) -> Result<Option<Vec<Data>>> {
    let dt = a.dtype();
    // Float updates that can meet would combine in the order atomics happen to run, which
    // changes the last bits from run to run and from the CPU's (seen on an H200 as a vmap
    // of scatter_add disagreeing with its loop): they run lane by lane in update order, or
    // on the CPU where the updates do not split into lanes.
    let ordered =
        may_repeat && kind != ScatterKind::Set && matches!(dt.kind(), Kind::Float | Kind::Complex);
    // Every thread of a lane reads all of the lane's updates: with few lanes and very many
    // updates (a 1-d add.at of 10^7) that walk is long and serial, and the CPU is faster.
    if ordered && lanes.is_none_or(|l| l.lanes < 64 && l.steps > 1 << 20) {
        return Ok(None);
    }
    let shape = a.shape();
    let total = geo.total as usize;
    let u = if total > 0 {
        match row_major(g, upd)? {
            Some(u) => Some(u),
            None => return Ok(None),
        }
    } else {
        None
    };
    // Every check that can fail is behind us: take the destination.
    let (mut buffer, offset) = update_dest(g, a)?;
    let n = size_of(shape);
    if let (Some((_keep, uptr)), true) = (&u, n > 0) {
        let dst = buffer.device_ptr_mut(g.ordinal)? + (offset * dt.size()) as u64;
        let (base, src) = module(kind, dt);
        let (sh, ss) = (kshape(sdims), kstrides(0, sst));
        // Every kernel's leading arguments; each adds its own after them.
        let mut args = Args::new();
        args.push(dst)
            .push(*uptr)
            .push(pos.ptr())
            .push(geo)
            .push(sh)
            .push(ss);
        if kind == ScatterKind::Set {
            // The winners' numbers, 1 + the update's, in 32 bits when they fit.
            let wide = total >= u32::MAX as usize;
            let w = if wide { "64" } else { "32" };
            let win = if may_repeat {
                let wb = if wide { 8 } else { 4 };
                let mem = g.alloc(n * wb)?;
                // Safety: `mem` holds n * wb bytes of this GPU; ordered on its stream.
                unsafe {
                    cudarc::driver::result::memset_d8_async(
                        mem.ptr(),
                        0,
                        n * wb,
                        g.stream()?.cu_stream(),
                    )
                }
                .map_err(|e| cuda_err("scatter", e))?;
                let f = g.kernel_in(&base, &format!("{base}_claim{w}"), || src.clone())?;
                let mut cargs = Args::new();
                cargs
                    .push(mem.ptr())
                    .push(pos.ptr())
                    .push(geo)
                    .push(sh)
                    .push(ss);
                g.launch_1d(&f, total, &cargs)?;
                Some(mem)
            } else {
                None
            };
            let f = g.kernel_in(&base, &format!("{base}_set{w}"), || src)?;
            args.push(win.as_ref().map(|m| m.ptr()).unwrap_or(0));
            g.launch_1d(&f, total, &args)?;
        } else if let (true, Some(l)) = (ordered, lanes) {
            // Enough threads to fill the GPU: a lane's destinations split into parts by
            // hash, each part one thread walking the lane's updates.
            let parts = 65536usize
                .div_ceil(l.lanes.max(1))
                .min(256)
                .min(l.steps)
                .max(1);
            let f = g.kernel_in(&base, &format!("{base}_ordered"), || src)?;
            args.push(l.lanes as i64)
                .push(l.steps as i64)
                .push(parts as u32);
            let blocks = l.lanes.div_ceil(256);
            g.launch(&f, (blocks as u32, parts as u32, 1), (256, 1, 1), 0, &args)?;
        } else {
            let f = g.kernel_in(&base, &format!("{base}_combine"), || src)?;
            g.launch_1d(&f, total, &args)?;
        }
    }
    Ok(Some(vec![Data {
        buffer: Arc::new(buffer),
        strides: contiguous_strides(shape),
        offset,
    }]))
}
