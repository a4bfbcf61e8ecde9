//! The sort family on the GPU (kernels/sort.cuh): sort, argsort, partition, argpartition
//! and searchsorted for every dtype, in NumPy's order (the CPU's `SortElem::cmp_total`).
//!
//! Each element becomes an unsigned key whose order is that order, so one stable key sort
//! serves every dtype. Rows of up to 4096 positions (2048 for complex) are sorted by a
//! bitonic network in shared memory, several rows to a block; longer rows by an LSD radix
//! sort, 8 bits a pass, in the one-sweep form: one count of every pass's digits, then one
//! kernel a pass whose tiles find their output places by decoupled look-back (rows of 2^30
//! keys or more: per pass a count, a scan of the counts and a move). The first pass reads
//! the elements and the last writes the output. Real floats move keys alone unless the count
//! saw a value its key does not give back (-0.0, NaN). A partition is a full sort (which has
//! the partitioned property). The output is laid out as the CPU lays it out: the sorted axis
//! innermost, the other dims row-major.

use super::elementwise::{ctype, row_major, COMMON};
use super::{Args, DeviceMem, Gpu};
use crate::array::{Array, Data};
use crate::backend::cpu::strided::out_data;
use crate::backend::cpu::Outs;
use crate::buffer::Buffer;
use crate::dtype::{DType, Kind};
use crate::op::{Op, ScanKind};
use crate::shape::{contiguous_strides, size_of};
use crate::{Error, Result};
use std::sync::Arc;

const SORT: &str = include_str!("kernels/sort.cuh");

#[derive(Clone, Copy, PartialEq)]
enum Want {
    Values,
    Indices,
}

/// How one dtype sorts: its key and payload types and the module built from them.
struct Plan {
    key: &'static str,
    key_size: usize,
    /// 0: no payload (integer values come back from their keys), 1: the position in the
    /// row, 2: the element's bits (floats: -0.0 and 0.0, or NaNs, share a key).
    payload: u8,
    val: &'static str,
    val_size: usize,
    /// Radix passes of 8 bits.
    passes: usize,
    /// Positions a block sorts in shared memory; rows up to this long take the bitonic path.
    small: usize,
    /// Keys per thread in a radix tile (of 256 threads).
    ritems: usize,
    base: String,
    dtype: DType,
}

impl Plan {
    fn new(d: DType, want: Want) -> Plan {
        let (key, key_size, passes) = match (d, d.size()) {
            (DType::C64, _) => ("K3", 16, 9),
            (_, 8) => ("u64", 8, 8),
            (_, s) => ("u32", 4, s),
        };
        let float = matches!(d.kind(), Kind::Float | Kind::Complex);
        let (payload, val, val_size) = match want {
            Want::Indices => (1, "u32", 4),
            Want::Values if float => match d.size() {
                2 => (2, "u16", 2),
                4 => (2, "u32", 4),
                _ => (2, "u64", 8),
            },
            Want::Values => (0, "u32", 4),
        };
        let (small, ritems) = if d == DType::C64 {
            (2048, 8)
        } else {
            (4096, 16)
        };
        Plan {
            key,
            key_size,
            payload,
            val,
            val_size,
            passes,
            small,
            ritems,
            base: format!("sort_{}_{payload}", ctype(d)),
            dtype: d,
        }
    }

    fn source(&self) -> String {
        // Integers come back from their keys (the inverse of key_of).
        let decode = match self.dtype {
            DType::Bool => "to_boolean(k)",
            DType::U8 => "(u8)(k)",
            DType::I8 => "(i8)(u8)((k) ^ 0x80u)",
            DType::U16 => "(u16)(k)",
            DType::I16 => "(i16)(u16)((k) ^ 0x8000u)",
            DType::U32 => "(u32)(k)",
            DType::I32 => "(i32)((k) ^ 0x80000000u)",
            DType::U64 => "(u64)(k)",
            DType::I64 => "(i64)((k) ^ 0x8000000000000000ull)",
            DType::F16 => "kdec_f16(k)",
            DType::BF16 => "kdec_bf16(k)",
            DType::F32 => "kdec_f32(k)",
            DType::F64 => "kdec_f64(k)",
            _ => "(k)",
        };
        // Real floats' keys give back every value but -0.0 and NaNs.
        let roundtrip = matches!(self.dtype.kind(), Kind::Float) as u8;
        format!(
            "{COMMON}\nDEV boolean to_boolean(u32 k) {{ boolean b; b.b = (unsigned char)k; return b; }}\n\
             #define TI {t}\n#define KEY {key}\n#define VAL {val}\n#define PAYLOAD {p}\n\
             #define DECODE(k) {decode}\n#define SMALL {small}\n#define RITEMS {ritems}\n\
             #define PASSES {passes}\n#define ROUNDTRIP {roundtrip}\n\
             #define KNAME(k) {base}_##k\n{SORT}\n",
            t = ctype(self.dtype),
            key = self.key,
            val = self.val,
            p = self.payload,
            small = self.small,
            ritems = self.ritems,
            passes = self.passes,
            base = self.base,
        )
    }

    fn kernel(&self, g: &Gpu, k: &str) -> Result<Arc<cudarc::driver::CudaFunction>> {
        g.kernel_in(&self.base, &format!("{}_{k}", self.base), || self.source())
    }
}

/// Sort modules of every dtype and payload, for the compile check.
pub(crate) fn sample_sources() -> Vec<(String, String)> {
    use DType::*;
    let mut v = Vec::new();
    for d in [
        Bool, U8, I8, U16, I16, U32, I32, U64, I64, F16, BF16, F32, F64, C64,
    ] {
        for want in [Want::Values, Want::Indices] {
            let p = Plan::new(d, want);
            if !v.iter().any(|(b, _): &(String, String)| *b == p.base) {
                v.push((p.base.clone(), p.source()));
            }
        }
    }
    v
}

pub(super) fn eval(g: &Gpu, op: &Op, inputs: &[Array], outs: Outs) -> Result<Option<Vec<Data>>> {
    let x = &inputs[0];
    let d = match op {
        Op::Sort { axis } => along_axis(g, x, *axis, Want::Values, None)?,
        Op::ArgSort { axis } => along_axis(g, x, *axis, Want::Indices, None)?,
        Op::Partition { kth, axis } => along_axis(g, x, *axis, Want::Values, Some(*kth))?,
        Op::ArgPartition { kth, axis } => along_axis(g, x, *axis, Want::Indices, Some(*kth))?,
        Op::SearchSorted { right } => search(g, x, &inputs[1], *right, &outs[0].0)?,
        _ => None,
    };
    Ok(d.map(|d| vec![d]))
}

fn along_axis(
    g: &Gpu,
    x: &Array,
    axis: usize,
    want: Want,
    kth: Option<usize>,
) -> Result<Option<Data>> {
    let shape = x.shape();
    let name = match (want, kth) {
        (Want::Values, None) => "sort",
        (Want::Indices, None) => "argsort",
        (Want::Values, Some(_)) => "partition",
        (Want::Indices, Some(_)) => "argpartition",
    };
    if axis >= shape.len() {
        return Err(Error::invalid(
            name,
            format!("internal: axis {axis} for {} dims", shape.len()),
        ));
    }
    let n = shape[axis];
    if let Some(k) = kth {
        if k >= n {
            return Err(Error::invalid(
                name,
                format!("kth(={k}) out of bounds ({n})"),
            ));
        }
    }
    let total = size_of(shape);
    // Positions and radix offsets are 32-bit.
    if total > u32::MAX as usize {
        return Ok(None);
    }
    let d = x.ready_data();
    // The view with `axis` last, and the output's strides: the other dims row-major with
    // the axis innermost, presented in the input's axis order (as the CPU does).
    let rest: Vec<usize> = (0..shape.len()).filter(|&i| i != axis).collect();
    let mut pshape: Vec<usize> = rest.iter().map(|&i| shape[i]).collect();
    let mut pstrides: Vec<isize> = rest.iter().map(|&i| d.strides[i]).collect();
    let rest_out = contiguous_strides(&pshape);
    pshape.push(n);
    pstrides.push(d.strides[axis]);
    let mut out_strides = vec![1isize; shape.len()];
    for (k, &i) in rest.iter().enumerate() {
        out_strides[i] = rest_out[k] * n.max(1) as isize;
    }
    let out_dtype = match want {
        Want::Values => x.dtype(),
        Want::Indices => DType::I64,
    };
    let mem = g.alloc(total * out_dtype.size())?;
    if total > 0 {
        let view = Array::from_data(
            Data {
                buffer: d.buffer.clone(),
                strides: pstrides,
                offset: d.offset,
            },
            pshape,
            x.dtype(),
        );
        let Some((_src, xptr)) = row_major(g, &view)? else {
            return Ok(None);
        };
        sort_rows(g, x.dtype(), xptr, total / n, n, want, mem.ptr())?;
    }
    Ok(Some(Data {
        buffer: Arc::new(Buffer::on_device(mem)),
        strides: out_strides,
        offset: 0,
    }))
}

/// Sorts the `lines` rows of `n` elements at `x` (row-major) into `out`: the values, or
/// each sorted position's place in its row as int64.
fn sort_rows(
    g: &Gpu,
    dt: DType,
    x: u64,
    lines: usize,
    n: usize,
    want: Want,
    out: u64,
) -> Result<()> {
    let p = Plan::new(dt, want);
    if n <= p.small {
        let want_idx = (want == Want::Indices) as i32;
        let lg = n.next_power_of_two().trailing_zeros() as usize;
        let blocks = lines.div_ceil(p.small >> lg);
        let f = p.kernel(g, "small")?;
        let mut args = Args::new();
        args.push(out)
            .push(x)
            .push(lines as i64)
            .push(n as i32)
            .push(lg as i32)
            .push(want_idx);
        return g.launch(&f, (blocks as u32, 1, 1), (1024, 1, 1), 0, &args);
    }
    let total = lines * n;
    let tpr = n.div_ceil(256 * p.ritems);
    let blocks = lines * tpr;
    // Keys and payloads between passes; the first pass reads `x`, the last writes `out`.
    let between = p.passes > 1;
    let two = |size: usize| -> Result<[DeviceMem; 2]> {
        let size = if between { size } else { 0 };
        Ok([g.alloc(size)?, g.alloc(size)?])
    };
    let keys = two(total * p.key_size)?;
    let vals = two(if p.payload == 0 {
        0
    } else {
        total * p.val_size
    })?;
    // The one-sweep form's status words hold 30-bit counts.
    if n < 1 << 30 {
        return one_sweep(g, &p, x, (lines, n, tpr), (&keys, &vals), out);
    }
    let hist = p.kernel(g, "hist")?;
    let scatter = p.kernel(g, "scatter")?;
    let ncounts = lines * 256 * tpr;
    let mut cur = 0;
    for pass in 0..p.passes {
        let (first, last) = ((pass == 0) as i32, (pass + 1 == p.passes) as i32);
        let counts = g.alloc(ncounts * 4)?;
        let mut args = Args::new();
        args.push(counts.ptr())
            .push(keys[cur].ptr())
            .push(x)
            .push(n as i64)
            .push(tpr as i64)
            .push(pass as i32)
            .push(first);
        g.launch(&hist, (blocks as u32, 1, 1), (256, 1, 1), 0, &args)?;
        let offs = exclusive_scan(g, counts, ncounts)?;
        let offs_ptr = offs.buffer.device_ptr(g.ordinal)?;
        let mut args = Args::new();
        args.push(keys[1 - cur].ptr())
            .push(vals[1 - cur].ptr())
            .push(keys[cur].ptr())
            .push(vals[cur].ptr())
            .push(x)
            .push(out)
            .push(offs_ptr)
            .push(n as i64)
            .push(tpr as i64)
            .push(pass as i32)
            .push(first)
            .push(last);
        g.launch(&scatter, (blocks as u32, 1, 1), (256, 1, 1), 0, &args)?;
        cur = 1 - cur;
    }
    Ok(())
}

/// The radix sort of rows under 2^30 keys: one count of every pass's digits, then one kernel a
/// pass that places each tile by looking back over the tiles before it in its row (see
/// radix_pass in kernels/sort.cuh). Tiles take ticket numbers in launch order, so a tile only
/// waits on tiles that are already running.
fn one_sweep(
    g: &Gpu,
    p: &Plan,
    x: u64,
    (lines, n, tpr): (usize, usize, usize),
    (keys, vals): (&[DeviceMem; 2], &[DeviceMem; 2]),
    out: u64,
) -> Result<()> {
    let tiles = lines * tpr;
    // counts (lines x passes x 256), one ticket a pass, then two status areas of 256 words a
    // tile: pass k uses area k % 2 and clears the other for pass k + 1. Counts, tickets and
    // the first area start at zero.
    let ncounts = lines * p.passes * 256;
    let tickets = 32;
    let area = tiles * 256;
    let ws = g.alloc((ncounts + tickets + 2 * area) * 4)?;
    let base = ws.ptr();
    // Safety: `ws` is a block of this GPU at least this long; the memset is ordered on its
    // stream before the launches that read it.
    unsafe {
        cudarc::driver::result::memset_d8_async(
            base,
            0,
            (ncounts + tickets + area) * 4,
            g.stream()?.cu_stream(),
        )
    }
    .map_err(|e| super::cuda_err("sort", e))?;
    let (counts, ticket0) = (base, base + ncounts as u64 * 4);
    let status = [
        ticket0 + tickets as u64 * 4,
        ticket0 + (tickets + area) as u64 * 4,
    ];
    // The last ticket word: set by ghist when some value does not come back from its key.
    let lossy = ticket0 + (tickets as u64 - 1) * 4;
    let ghist = p.kernel(g, "ghist")?;
    let mut args = Args::new();
    args.push(counts)
        .push(lossy)
        .push(x)
        .push(n as i64)
        .push(tpr as i64);
    let gblocks = lines * tpr.div_ceil(GTILES);
    g.launch(&ghist, (gblocks as u32, 1, 1), (256, 1, 1), 0, &args)?;
    let sweep = p.kernel(g, "onesweep")?;
    let mut cur = 0;
    for pass in 0..p.passes {
        let (first, last) = ((pass == 0) as i32, (pass + 1 == p.passes) as i32);
        let mut args = Args::new();
        args.push(keys[1 - cur].ptr())
            .push(vals[1 - cur].ptr())
            .push(keys[cur].ptr())
            .push(vals[cur].ptr())
            .push(x)
            .push(out)
            .push(counts)
            .push(status[pass % 2])
            .push(status[1 - pass % 2])
            .push(ticket0 + pass as u64 * 4)
            .push(lossy)
            .push(n as i64)
            .push(tpr as i64)
            .push(pass as i32)
            .push(first)
            .push(last);
        g.launch(&sweep, (tiles as u32, 1, 1), (256, 1, 1), 0, &args)?;
        cur = 1 - cur;
    }
    Ok(())
}

/// Tiles a ghist block counts (GTILES in kernels/sort.cuh).
const GTILES: usize = 8;

/// The exclusive prefix sums of `n` u32 counts, by the scan kernels.
fn exclusive_scan(g: &Gpu, counts: DeviceMem, n: usize) -> Result<Data> {
    let a = Array::from_data(
        out_data(Buffer::on_device(counts), &[n]),
        vec![n],
        DType::U32,
    );
    super::scan::eval(g, &a, (ScanKind::Sum, 0, false, false), DType::U32)?
        .and_then(|mut v| v.pop())
        .ok_or_else(|| Error::invalid("sort", "internal: no GPU scan for the radix counts"))
}

/// Where each of `v`'s elements would go in the sorted 1-D `a`, as int64 of `v`'s shape.
fn search(g: &Gpu, a: &Array, v: &Array, right: bool, out_shape: &[usize]) -> Result<Option<Data>> {
    if a.dtype() != v.dtype() {
        return Err(Error::invalid(
            "searchsorted",
            format!("internal: dtypes {} and {}", a.dtype(), v.dtype()),
        ));
    }
    let (na, nv) = (size_of(a.shape()), size_of(v.shape()));
    let mem = g.alloc(nv * 8)?;
    if nv > 0 {
        let p = Plan::new(a.dtype(), Want::Values);
        let Some((_sa, aptr)) = row_major(g, a)? else {
            return Ok(None);
        };
        let Some((_sv, vptr)) = row_major(g, v)? else {
            return Ok(None);
        };
        let f = p.kernel(g, "search")?;
        let mut args = Args::new();
        args.push(mem.ptr())
            .push(aptr)
            .push(na as i64)
            .push(vptr)
            .push(nv as i64)
            .push(right as i32);
        g.launch_1d(&f, nv, &args)?;
    }
    Ok(Some(out_data(Buffer::on_device(mem), out_shape)))
}
