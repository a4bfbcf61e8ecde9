//! Elementwise kernels: unary, binary, select, casts, arange and strided copies. One map
//! kernel shape serves all of them; the Rust side writes the element expression for the op
//! and dtypes (matching cpu/elementwise.rs) and how each operand is indexed: contiguous,
//! a broadcast scalar, or strided over the output's collapsed shape. Returning `None` means
//! no GPU kernel handles the case and the op runs on the CPU.

use super::{Args, DeviceMem, Gpu};
use crate::array::{Array, Data};
use crate::backend::cpu::strided::out_data;
use crate::backend::cpu::Outs;
use crate::buffer::Buffer;
use crate::dtype::{DType, Kind};
use crate::op::{BinaryOp, FusedOp, FusedProgram, Op, UnaryOp};
use crate::shape::{broadcast_strides, contiguous_strides, size_of};
use crate::Result;
use cudarc::driver::CudaFunction;
use sha2::Digest;
use std::collections::HashMap;
use std::sync::Arc;

pub(crate) const COMMON: &str = include_str!("kernels/common.cuh");
pub(crate) const FUNCS: &str = include_str!("kernels/elementwise.cuh");
const MAX_DIMS: usize = 6;

/// The kernel-side name of a dtype's storage type.
pub(crate) fn ctype(d: DType) -> &'static str {
    match d {
        DType::Bool => "boolean",
        DType::U8 => "u8",
        DType::U16 => "u16",
        DType::U32 => "u32",
        DType::U64 => "u64",
        DType::I8 => "i8",
        DType::I16 => "i16",
        DType::I32 => "i32",
        DType::I64 => "i64",
        DType::F16 => "f16",
        DType::BF16 => "bf16",
        DType::F32 => "f32",
        DType::F64 => "f64",
        DType::C64 => "c64",
    }
}

/// The compute type's name (what `ld` returns).
fn comp(d: DType) -> &'static str {
    match d {
        DType::F16 | DType::BF16 | DType::F32 => "float",
        DType::F64 => "double",
        DType::Bool => "bool",
        _ => ctype(d),
    }
}

#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct KShape {
    pub nd: i32,
    pub dim: [i64; MAX_DIMS],
}
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct KStrides {
    pub off: i64,
    pub st: [i64; MAX_DIMS],
    /// How a map kernel reads the operand (common.cuh's `Strides::mode`); 0 elsewhere.
    pub mode: i64,
}

/// How the kernel reads one operand (`Strides::mode` in common.cuh).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i64)]
enum Mode {
    Contiguous,
    Scalar,
    Strided,
    /// A broadcast scalar still on the host, passed by value (no upload for `x * 2.0`).
    Value,
}

/// The output shape collapsed with the operands' strides over it: adjacent dims merge where
/// every operand steps through them as one, size-1 dims drop. `None` when more than
/// MAX_DIMS remain.
pub(crate) fn collapse(
    shape: &[usize],
    strides: &[Vec<isize>],
) -> Option<(Vec<usize>, Vec<Vec<isize>>)> {
    let keep: Vec<usize> = (0..shape.len()).filter(|&i| shape[i] != 1).collect();
    let mut dims: Vec<usize> = Vec::new();
    let mut sts: Vec<Vec<isize>> = vec![Vec::new(); strides.len()];
    for &i in &keep {
        let merge = !dims.is_empty()
            && strides
                .iter()
                .zip(&sts)
                .all(|(s, c)| *c.last().unwrap() == s[i] * shape[i] as isize);
        if merge {
            *dims.last_mut().unwrap() *= shape[i];
            for (s, c) in strides.iter().zip(sts.iter_mut()) {
                *c.last_mut().unwrap() = s[i];
            }
        } else {
            dims.push(shape[i]);
            for (s, c) in strides.iter().zip(sts.iter_mut()) {
                c.push(s[i]);
            }
        }
    }
    if dims.is_empty() {
        dims.push(1);
        for c in sts.iter_mut() {
            c.push(0);
        }
    }
    (dims.len() <= MAX_DIMS).then_some((dims, sts))
}

/// One operand of a map kernel.
struct Operand {
    ptr: u64,
    dtype: DType,
    mode: Mode,
    strides: KStrides,
}

/// Launches `out[i] = body` over `n` elements, where `body` reads operand k as `vK`.
/// `make` gives the kernel's tag and body on a cache miss (`None`: no GPU form).
#[allow(clippy::too_many_arguments)]
fn map_kernel(
    g: &Gpu,
    op: MapOp<'_>,
    inputs: Vec<(&Array, Data)>,
    out_shape: &[usize],
    out_dtype: DType,
    donate: bool,
    make: impl FnOnce() -> Option<(String, String)>,
) -> Result<Option<Data>> {
    let make = || make().map(|(tag, body)| (tag, store(&body)));
    Ok(
        map_kernel_n(g, op, inputs, out_shape, out_dtype, 1, false, donate, make)?
            .map(|mut v| v.remove(0)),
    )
}

/// What a map kernel computes: with the operands' dtypes (and modes, when compiled in),
/// the output dtype and count and the index width, everything its source depends on.
#[derive(Clone, Copy, PartialEq, Hash)]
pub(crate) enum MapOp<'a> {
    Named(&'static str),
    Unary(UnaryOp),
    Binary(BinaryOp),
    Fused(&'a FusedProgram),
}

#[derive(PartialEq, Hash)]
struct MapKey<'a> {
    op: MapOp<'a>,
    ins: &'a [DType],
    modes: Option<&'a [Mode]>,
    out: DType,
    n_out: usize,
    wide: bool,
}

/// A `MapKey` that owns its parts, kept in the cache.
struct OwnedKey {
    op: OwnedOp,
    ins: Vec<DType>,
    modes: Option<Vec<Mode>>,
    out: DType,
    n_out: usize,
    wide: bool,
}

enum OwnedOp {
    Named(&'static str),
    Unary(UnaryOp),
    Binary(BinaryOp),
    Fused(Box<FusedProgram>),
}

impl MapKey<'_> {
    fn owned(&self) -> OwnedKey {
        OwnedKey {
            op: match self.op {
                MapOp::Named(s) => OwnedOp::Named(s),
                MapOp::Unary(u) => OwnedOp::Unary(u),
                MapOp::Binary(b) => OwnedOp::Binary(b),
                MapOp::Fused(p) => OwnedOp::Fused(Box::new(p.clone())),
            },
            ins: self.ins.to_vec(),
            modes: self.modes.map(<[Mode]>::to_vec),
            out: self.out,
            n_out: self.n_out,
            wide: self.wide,
        }
    }
}

impl OwnedKey {
    fn key(&self) -> MapKey<'_> {
        MapKey {
            op: match &self.op {
                OwnedOp::Named(s) => MapOp::Named(s),
                OwnedOp::Unary(u) => MapOp::Unary(*u),
                OwnedOp::Binary(b) => MapOp::Binary(*b),
                OwnedOp::Fused(p) => MapOp::Fused(p),
            },
            ins: &self.ins,
            modes: self.modes.as_deref(),
            out: self.out,
            n_out: self.n_out,
            wide: self.wide,
        }
    }
}

/// Map kernels by what they compute, so that a launch of a kernel already built skips
/// writing its source and name (a fused chain's source and its hash cost about 10 us of
/// host time per launch, a binary op's strings about 0.7).
#[derive(Default)]
pub(crate) struct MapCache(parking_lot::Mutex<HashMap<u64, Vec<(OwnedKey, Arc<CudaFunction>)>>>);

impl MapCache {
    fn get(&self, hash: u64, key: &MapKey<'_>) -> Option<Arc<CudaFunction>> {
        let map = self.0.lock();
        let found = map.get(&hash)?.iter().find(|(k, _)| k.key() == *key)?;
        Some(found.1.clone())
    }

    fn insert(&self, hash: u64, key: &MapKey<'_>, f: Arc<CudaFunction>) {
        let mut map = self.0.lock();
        let v = map.entry(hash).or_default();
        if !v.iter().any(|(k, _)| k.key() == *key) {
            v.push((key.owned(), f));
        }
    }
}

/// The statement of a one-output map kernel.
fn store(body: &str) -> String {
    format!("y0 = {body};")
}

/// Launches `stmts` over `n` elements: they read operand k as `vK` and set `yJ`, the
/// element of output J (of `n_out`). With `fixed`, how each operand is read is compiled
/// into the kernel (see map_source). With `donate`, an output may be written over an
/// input that nobody else holds (see `donors`); only node evaluation asks for that, never
/// a helper whose caller reads its input again.
#[allow(clippy::too_many_arguments)]
fn map_kernel_n(
    g: &Gpu,
    op: MapOp<'_>,
    inputs: Vec<(&Array, Data)>,
    out_shape: &[usize],
    out_dtype: DType,
    n_out: usize,
    fixed: bool,
    donate: bool,
    make: impl FnOnce() -> Option<(String, String)>,
) -> Result<Option<Vec<Data>>> {
    let n = size_of(out_shape);
    let out_strides = contiguous_strides(out_shape);
    if n == 0 {
        // Still the CPU's when there is no GPU form, so errors read the same.
        if make().is_none() {
            return Ok(None);
        }
        return (0..n_out)
            .map(|_| Ok(out_data(Buffer::on_device(g.alloc(0)?), out_shape)))
            .collect::<Result<Vec<_>>>()
            .map(Some);
    }
    let bstrides: Vec<Vec<isize>> = inputs
        .iter()
        .map(|(a, d)| broadcast_strides(a.shape(), &d.strides, out_shape))
        .collect();
    let mut all = bstrides.clone();
    all.push(out_strides.clone());
    let Some((dims, sts)) = collapse(out_shape, &all) else {
        return Ok(None);
    };
    let contiguous = sts.last().unwrap().clone();
    let mut ops = Vec::new();
    for (k, (a, d)) in inputs.iter().enumerate() {
        let s = &sts[k];
        let mode = if s.iter().all(|&x| x == 0) {
            Mode::Scalar
        } else if *s == contiguous {
            Mode::Contiguous
        } else {
            Mode::Strided
        };
        let mut st = [0i64; MAX_DIMS];
        for (i, &x) in s.iter().enumerate() {
            st[i] = x as i64;
        }
        if mode == Mode::Scalar && d.buffer.device_ordinal().is_none() {
            // The element's bytes, zero-padded to 8, go in place of the pointer.
            let size = a.dtype().size();
            let bytes = &d.buffer.as_bytes()[d.offset * size..(d.offset + 1) * size];
            let mut v = [0u8; 8];
            v[..size].copy_from_slice(bytes);
            ops.push(Operand {
                ptr: u64::from_le_bytes(v),
                dtype: a.dtype(),
                mode: Mode::Value,
                strides: KStrides {
                    off: 0,
                    st: [0; MAX_DIMS],
                    mode: Mode::Value as i64,
                },
            });
            continue;
        }
        // The address comes once the kernel is known to exist: an op with no GPU form
        // must not upload its inputs before falling back to the CPU.
        ops.push(Operand {
            ptr: 0,
            dtype: a.dtype(),
            mode,
            strides: KStrides {
                off: d.offset as i64,
                st,
                mode: mode as i64,
            },
        });
    }
    let wide = n > i32::MAX as usize;
    let desc: Vec<DType> = ops.iter().map(|o| o.dtype).collect();
    let modes: Option<Vec<Mode>> = fixed.then(|| ops.iter().map(|o| o.mode).collect());
    let key = MapKey {
        op,
        ins: &desc,
        modes: modes.as_deref(),
        out: out_dtype,
        n_out,
        wide,
    };
    let hash = std::hash::BuildHasher::hash_one(
        &std::hash::BuildHasherDefault::<std::hash::DefaultHasher>::default(),
        &key,
    );
    let f = match g.map_kernels.get(hash, &key) {
        Some(f) => f,
        None => {
            let Some((tag, stmts)) = make() else {
                return Ok(None);
            };
            let f = build_map_kernel(g, &tag, &key, &stmts)?;
            g.map_kernels.insert(hash, &key, f.clone());
            f
        }
    };
    for (o, (_, d)) in ops.iter_mut().zip(&inputs) {
        if o.mode != Mode::Value {
            o.ptr = d.buffer.device_ptr(g.ordinal)?;
        }
    }
    // Vector accesses need every contiguous operand's first element on a 4-element
    // boundary (outputs are fresh blocks, aligned to 512 bytes).
    let vec = ops.iter().all(|o| {
        let size = o.dtype.size() as u64;
        o.mode != Mode::Contiguous
            || (o.ptr + o.strides.off as u64 * size) % (4 * size).min(16) == 0
    });
    let mut donated = if donate {
        donors(g, &ops, inputs, n * out_dtype.size(), out_dtype, n_out)
    } else {
        Vec::new()
    };
    let mut mems = Vec::with_capacity(n_out);
    for j in 0..n_out {
        let m = match donated.iter().position(|dn| dn.out == j) {
            Some(at) => Ok(OutMem::Donated(donated.swap_remove(at))),
            None => g.alloc(n * out_dtype.size()).map(OutMem::Fresh),
        };
        match m {
            Ok(m) => mems.push(m),
            Err(e) => {
                // The kernel will not run: the donated inputs read as before.
                mems.into_iter().for_each(OutMem::give_back);
                donated.into_iter().for_each(Donor::give_back);
                return Err(e);
            }
        }
    }
    let mut args = Args::new();
    let mut kd = [0i64; MAX_DIMS];
    for (i, &x) in dims.iter().enumerate() {
        kd[i] = x as i64;
    }
    for m in &mems {
        args.push(m.ptr());
    }
    args.push(n as i64).push(vec as i32).push(KShape {
        nd: dims.len() as i32,
        dim: kd,
    });
    for o in &ops {
        args.push(o.ptr).push(o.strides);
    }
    let blocks = n.div_ceil(256 * per_thread(key.modes.is_some())) as u32;
    if let Err(e) = g.launch(&f, (blocks, 1, 1), (256, 1, 1), 0, &args) {
        mems.into_iter().for_each(OutMem::give_back);
        return Err(e);
    }
    Ok(Some(
        mems.into_iter()
            .map(|m| out_data(m.into_buffer(), out_shape))
            .collect(),
    ))
}

/// An input whose buffer an output is written over.
struct Donor<'a> {
    out: usize,
    input: &'a Array,
    buffer: Buffer,
    ptr: u64,
    strides: Vec<isize>,
}

impl Donor<'_> {
    fn give_back(self) {
        self.input.undonate(Data {
            buffer: Arc::new(self.buffer),
            strides: self.strides,
            offset: 0,
        });
    }
}

/// Where an output of a map kernel goes.
enum OutMem<'a> {
    Fresh(DeviceMem),
    Donated(Donor<'a>),
}

impl OutMem<'_> {
    fn ptr(&self) -> u64 {
        match self {
            OutMem::Fresh(m) => m.ptr(),
            OutMem::Donated(d) => d.ptr,
        }
    }
    fn into_buffer(self) -> Buffer {
        match self {
            OutMem::Fresh(m) => Buffer::on_device(m),
            OutMem::Donated(d) => d.buffer,
        }
    }
    fn give_back(self) {
        if let OutMem::Donated(d) = self {
            d.give_back();
        }
    }
}

/// Whether map kernels may write outputs over their inputs: yes, unless
/// `INGOT_CUDA_DONATE=0`. (Opt-in for a while after run G24's `ingot-gpu-bench` stopped on
/// an input read after it was donated: its host-cost row called the backend directly, and
/// only node evaluation may donate now, `array::with_donation`.)
fn donation_on() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("INGOT_CUDA_DONATE").map_or(true, |v| v != "0"))
}

/// The inputs each output can be written over: an operand read contiguously from the
/// start of a buffer of exactly the output's size and dtype, on this GPU, that nobody
/// else holds (the CPU's donation, cpu/strided.rs). Each thread of a map kernel reads all
/// of its elements' operands before it writes their outputs, and element i is read and
/// written by that thread alone, so writing over an operand is safe; multi-output
/// kernels are compiled without `__restrict__` so the compiler keeps that order. Not
/// while a CUDA graph records: its outputs live in the graph's pool and its inputs are
/// the caller's.
fn donors<'a>(
    g: &Gpu,
    ops: &[Operand],
    inputs: Vec<(&'a Array, Data)>,
    nbytes: usize,
    out_dtype: DType,
    n_out: usize,
) -> Vec<Donor<'a>> {
    let mut found = Vec::new();
    if !donation_on() || super::graph::capturing(g.ordinal) {
        return found;
    }
    for (o, (a, d)) in ops.iter().zip(inputs) {
        if found.len() == n_out {
            break;
        }
        let fits = |d: &Data| {
            d.offset == 0
                && d.buffer.len() == nbytes
                && d.buffer.device_ordinal() == Some(g.ordinal)
                && !d.buffer.in_graph_pool()
        };
        if o.mode != Mode::Contiguous || o.dtype != out_dtype || o.strides.off != 0 || !fits(&d) {
            continue;
        }
        let Ok(taken) = a.try_donate_held(d, fits) else {
            continue;
        };
        let strides = taken.strides.clone();
        match Arc::try_unwrap(taken.buffer) {
            Ok(mut buffer) => match buffer.device_ptr_mut(g.ordinal) {
                // The host copy, if any, is dropped: it is stale once the kernel writes.
                Ok(ptr) => found.push(Donor {
                    out: found.len(),
                    input: a,
                    buffer,
                    ptr,
                    strides,
                }),
                Err(_) => a.undonate(Data {
                    buffer: Arc::new(buffer),
                    strides,
                    offset: 0,
                }),
            },
            Err(buffer) => a.undonate(Data {
                buffer,
                strides,
                offset: 0,
            }),
        }
    }
    found
}

/// Map kernel `key` named from `tag`, compiled from `stmts` (on its first use anywhere).
fn build_map_kernel(
    g: &Gpu,
    tag: &str,
    key: &MapKey<'_>,
    stmts: &str,
) -> Result<Arc<CudaFunction>> {
    // Layouts are run-time arguments, so the name (and the compiled kernel) depends only on
    // the op and the dtypes: few kernels to compile however arrays are laid out.
    let sig: String = key
        .ins
        .iter()
        .map(|&d| ctype(d))
        .collect::<Vec<_>>()
        .join("_");
    let name = format!(
        "map_{tag}_{sig}_to_{}{}{}{}",
        ctype(key.out),
        if key.n_out > 1 {
            format!("x{}", key.n_out)
        } else {
            String::new()
        },
        if key.wide { "_w" } else { "" },
        key.modes.map_or(String::new(), |m| {
            let tags: String = m.iter().map(|&x| char::from(b'0' + x as u8)).collect();
            format!("_m{tags}")
        }),
    );
    g.kernel(&name, || {
        map_source_with(
            &name, key.ins, key.modes, key.out, key.n_out, key.wide, stmts,
        )
    })
}

/// Elements a thread of a map kernel takes: 8 for kernels with their operands' modes
/// compiled in (fused chains, where more arithmetic per byte needs more loads in flight to
/// keep memory busy: the gelu chain ran at 95% of the copy's time with 4 and at the copy's
/// with 8, run G14), 4 elsewhere.
fn per_thread(fixed: bool) -> usize {
    if fixed {
        8
    } else {
        4
    }
}

/// The source of map kernel `name`: operand k of dtype `ops[k]` is read as `vK`, and
/// `stmts` set `y0` .. `y{n_out - 1}`, stored to the outputs at the element's index.
/// With `vec` set (a run-time argument) each thread takes 4 consecutive elements and moves
/// contiguous operands and the outputs with one vector access each (the caller checks
/// their alignment), which keeps more bytes in flight per thread than scalar accesses do.
/// The other path (strided or unaligned operands) is not unrolled: it compiles in two
/// thirds of the time, and every new op and dtype pays that compile once.
fn map_source(
    name: &str,
    ops: &[DType],
    out_dtype: DType,
    n_out: usize,
    wide: bool,
    stmts: &str,
) -> String {
    map_source_with(name, ops, None, out_dtype, n_out, wide, stmts)
}

/// map_source, with `modes` (when given) compiling each operand's way of being read into
/// the kernel: broadcast elements and host scalars are read once per thread and only
/// contiguous operands take vector loads, which leaves a long fused chain the registers
/// for its own values (a generic gelu kernel needed 52 registers, half the occupancy of
/// the same arithmetic written plainly, and ran at 0.4x).
fn map_source_with(
    name: &str,
    ops: &[DType],
    modes: Option<&[Mode]>,
    out_dtype: DType,
    n_out: usize,
    wide: bool,
    stmts: &str,
) -> String {
    let idx_t = if wide { "long long" } else { "unsigned" };
    let to = ctype(out_dtype);
    // One output may be written over an operand it reads (donation): `__restrict__` on it
    // cannot reorder its store before its own loads. With several outputs another output's
    // loads could move past it, so those kernels go without.
    let restrict = if n_out == 1 { "__restrict__ " } else { "" };
    let mut params: String = (0..n_out)
        .map(|j| format!("{to}* {restrict}out{j}, "))
        .collect();
    params.push_str("long long n, int vec, Shape shape");
    let mut loads = String::new();
    let mut vloads = String::new();
    let mut vgets = String::new();
    // Operands read once per thread, before its elements (fixed modes only).
    let mut once = String::new();
    for (k, dt) in ops.iter().enumerate() {
        let t = ctype(*dt);
        params.push_str(&format!(", u64 p{k}, Strides s{k}"));
        let generic = format!("operand<{t}, {idx_t}>(p{k}, s{k}, i, shape)");
        match modes.map(|m| m[k]) {
            None => {
                loads.push_str(&format!("{t} v{k} = {generic};\n"));
                vloads.push_str(&format!(
                    "V4<{t}> q{k}[W]; if (s{k}.mode == 0) for (int w = 0; w < W; ++w) q{k}[w] = *(const V4<{t}>*)((const {t}*)p{k} + s{k}.off + i0 + 4 * w);\n"
                ));
                vgets.push_str(&format!(
                    "{t} v{k} = s{k}.mode == 0 ? q{k}[k >> 2].v[k & 3] : {generic};\n"
                ));
            }
            Some(Mode::Contiguous) => {
                loads.push_str(&format!("{t} v{k} = ((const {t}*)p{k})[s{k}.off + i];\n"));
                vloads.push_str(&format!(
                    "V4<{t}> q{k}[W]; for (int w = 0; w < W; ++w) q{k}[w] = *(const V4<{t}>*)((const {t}*)p{k} + s{k}.off + i0 + 4 * w);\n"
                ));
                vgets.push_str(&format!("{t} v{k} = q{k}[k >> 2].v[k & 3];\n"));
            }
            Some(Mode::Strided) => {
                loads.push_str(&format!("{t} v{k} = {generic};\n"));
                vgets.push_str(&format!("{t} v{k} = {generic};\n"));
            }
            Some(m) => {
                let read = if m == Mode::Scalar {
                    format!("((const {t}*)p{k})[s{k}.off]")
                } else {
                    format!("bits_to<{t}>(p{k})")
                };
                once.push_str(&format!("const {t} c{k} = {read};\n"));
                loads.push_str(&format!("{t} v{k} = c{k};\n"));
                vgets.push_str(&format!("{t} v{k} = c{k};\n"));
            }
        }
    }
    let decl: String = (0..n_out).map(|j| format!("{to} y{j}; ")).collect();
    let store: String = (0..n_out).map(|j| format!("out{j}[i] = y{j}; ")).collect();
    let rdecl: String = (0..n_out).map(|j| format!("V4<{to}> r{j}[W]; ")).collect();
    let rset: String = (0..n_out)
        .map(|j| format!("r{j}[k >> 2].v[k & 3] = y{j}; "))
        .collect();
    let rstore: String = (0..n_out)
        .map(|j| format!("*(V4<{to}>*)(out{j} + i0 + 4 * w) = r{j}[w]; "))
        .collect();
    let per = per_thread(modes.is_some());
    format!(
        "{COMMON}\n{FUNCS}\nextern \"C\" __global__ void __launch_bounds__(256) {name}({params}) {{\n\
         {once}\
         const int PER = {per}, W = PER / 4;\n\
         if (vec) {{\n\
         long long i0 = ((long long)blockIdx.x * blockDim.x + threadIdx.x) * PER;\n\
         if (i0 + PER <= n) {{\n{vloads}{rdecl}\n\
         #pragma unroll\n\
         for (int k = 0; k < PER; ++k) {{\nlong long i = i0 + k;\n{vgets}{decl}\n{stmts}\n{rset}\n}}\n\
         #pragma unroll\n\
         for (int w = 0; w < W; ++w) {{ {rstore} }}\n\
         }} else {{\n\
         for (long long i = i0; i < n; ++i) {{\n{loads}{decl}\n{stmts}\n{store}\n}}\n\
         }}\n\
         }} else {{\n\
         long long base = (long long)blockIdx.x * (blockDim.x * PER) + threadIdx.x;\n\
         #pragma unroll 1\n\
         for (int k = 0; k < PER; ++k) {{\n\
         long long i = base + (long long)k * blockDim.x;\n\
         if (i < n) {{\n{loads}{decl}\n{stmts}\n{store}\n}}\n}}\n\
         }}\n}}\n"
    )
}

fn unary_body(u: UnaryOp, dt: DType, out_dtype: DType) -> Option<String> {
    let e = if dt == DType::C64 {
        complex_unary_expr(u, out_dtype)?
    } else {
        unary_expr(u, dt)?
    };
    Some(format!(
        "st<{}>([&](typename Ct<{}>::type a) {{ return {e}; }}(ld(v0)))",
        ctype(out_dtype),
        ctype(dt)
    ))
}

fn binary_body(b: BinaryOp, dt: DType, out_dtype: DType) -> Option<String> {
    let e = binary_expr(b, dt)?;
    let ct = ctype(dt);
    Some(format!(
        "st<{}>([&](typename Ct<{ct}>::type a, typename Ct<{ct}>::type b) {{ return {e}; }}(ld(v0), ld(v1)))",
        ctype(out_dtype)
    ))
}

/// Sources of map kernels for every unary, binary and cast op on every dtype, for a check
/// that they compile (NVRTC needs no GPU).
pub(crate) fn all_sources() -> Vec<(String, String)> {
    use crate::dtype::DType::*;
    const ALL: [DType; 14] = [
        Bool, U8, U16, U32, U64, I8, I16, I32, I64, F16, BF16, F32, F64, C64,
    ];
    let mut v = Vec::new();
    for dt in ALL {
        for u in crate::op::UnaryOp::ALL_FOR_CHECK {
            let out = if matches!(
                u,
                UnaryOp::IsNan
                    | UnaryOp::IsInf
                    | UnaryOp::IsFinite
                    | UnaryOp::SignBit
                    | UnaryOp::LogicalNot
            ) {
                Bool
            } else {
                dt
            };
            // complex abs, angle, real and imag give f32.
            let outs = if dt == C64 { vec![out, F32] } else { vec![out] };
            for out in outs {
                if let Some(body) = unary_body(u, dt, out) {
                    let name = format!(
                        "chk_u_{}_{}_to_{}",
                        op_tag(&format!("{u:?}")),
                        ctype(dt),
                        ctype(out)
                    );
                    v.push((
                        name.clone(),
                        map_source(&name, &[dt], out, 1, false, &store(&body)),
                    ));
                }
            }
        }
        for b in crate::op::BinaryOp::ALL_FOR_CHECK {
            let out = if b.returns_bool() { Bool } else { dt };
            if let Some(body) = binary_body(b, dt, out) {
                let name = format!("chk_b_{}_{}", op_tag(&format!("{b:?}")), ctype(dt));
                v.push((
                    name.clone(),
                    map_source(&name, &[dt, dt], out, 1, true, &store(&body)),
                ));
            }
        }
        for to in ALL {
            if let Some(e) = cast_expr("v0", dt, to) {
                let name = format!("chk_cast_{}_{}", ctype(dt), ctype(to));
                v.push((
                    name.clone(),
                    map_source(&name, &[dt], to, 1, false, &store(&e)),
                ));
            }
        }
        if matches!(dt, F32 | F64) {
            // Every fusable op in one chain: x2 = u(x..), then binary ops with the input x1.
            let mut instrs = Vec::new();
            let mut last = 0;
            for u in crate::op::UnaryOp::ALL_FOR_CHECK
                .into_iter()
                .filter(|u| u.fusable())
            {
                instrs.push(crate::op::FusedInstr {
                    op: FusedOp::Unary(u),
                    args: vec![last],
                });
                last = 1 + instrs.len();
            }
            for b in crate::op::BinaryOp::ALL_FOR_CHECK
                .into_iter()
                .filter(|b| b.fusable())
            {
                instrs.push(crate::op::FusedInstr {
                    op: FusedOp::Binary(b),
                    args: vec![last, 1],
                });
                last = 1 + instrs.len();
            }
            let program = FusedProgram {
                instrs,
                outputs: vec![last, 2],
            };
            let stmts = fused_stmts(&program, 2, dt).expect("every fusable op has a float form");
            let name = format!("chk_fused_{}", ctype(dt));
            v.push((
                name.clone(),
                map_source(&name, &[dt, dt], dt, 2, false, &stmts),
            ));
            // And with the operands' modes compiled in, as compiled functions run them.
            for modes in [
                [Mode::Contiguous, Mode::Value],
                [Mode::Strided, Mode::Scalar],
            ] {
                let name = format!("chk_fused_{}_m{}", ctype(dt), modes[1] as u8);
                v.push((
                    name.clone(),
                    map_source_with(&name, &[dt, dt], Some(&modes), dt, 2, false, &stmts),
                ));
            }
        }
        let name = format!("chk_select_{}", ctype(dt));
        v.push((
            name.clone(),
            map_source(
                &name,
                &[Bool, dt, dt],
                dt,
                1,
                false,
                &store("v0.b ? v1 : v2"),
            ),
        ));
    }
    v
}

fn is_int_like(d: DType) -> bool {
    matches!(d.kind(), Kind::Bool | Kind::Int | Kind::UInt)
}

/// `x` of dtype `from` converted to `to` as `cast_elem` does, on storage values.
fn cast_expr(x: &str, from: DType, to: DType) -> Option<String> {
    let (a, b) = (ctype(from), ctype(to));
    if from == DType::C64 || to == DType::C64 {
        // A real float or bool becomes the real part, rounded once to f32 (through f64,
        // which holds every such value exactly). Integers stay on the CPU: through f64 a
        // large i64 would round twice.
        let real = matches!(from.kind(), Kind::Float | Kind::Bool);
        return match (from == to, to == DType::C64 && real) {
            (true, _) => Some(x.to_string()),
            (_, true) => Some(format!("from_f64<c64>(to_f64<{a}>({x}))")),
            _ => None,
        };
    }
    Some(if from == to {
        x.to_string()
    } else if is_int_like(from) && is_int_like(to) {
        format!("from_bits<{b}>(int_bits<{a}>({x}))")
    } else {
        format!("from_f64<{b}>(to_f64<{a}>({x}))")
    })
}

/// The compute-type expression of unary `op` on `a` (dtype `d`), or None if not on the GPU.
fn unary_expr(op: UnaryOp, d: DType) -> Option<String> {
    use UnaryOp::*;
    let c = comp(d);
    let e = match d.kind() {
        Kind::Float => match op {
            Abs => "m_abs(a)".into(),
            Negative => "-a".into(),
            Sign => "m_sign(a)".into(),
            Exp => "m_exp(a)".into(),
            Expm1 => "m_expm1(a)".into(),
            Log => "m_log(a)".into(),
            Log1p => "m_log1p(a)".into(),
            Log2 => "m_log2(a)".into(),
            Log10 => "m_log10(a)".into(),
            Sqrt => "m_sqrt(a)".into(),
            Rsqrt => format!("({c})1 / m_sqrt(a)"),
            Square => "a * a".into(),
            Reciprocal => format!("({c})1 / a"),
            Sin => "m_sin(a)".into(),
            Cos => "m_cos(a)".into(),
            Tan => "m_tan(a)".into(),
            Arcsin => "m_asin(a)".into(),
            Arccos => "m_acos(a)".into(),
            Arctan => "m_atan(a)".into(),
            Sinh => "m_sinh(a)".into(),
            Cosh => "m_cosh(a)".into(),
            Tanh => "m_tanh(a)".into(),
            // The CPU computes these in f64 for every float type.
            Arcsinh => format!("({c})asinh((double)a)"),
            Arccosh => format!("({c})acosh((double)a)"),
            Arctanh => format!("({c})atanh((double)a)"),
            Erf => format!("({c})erf((double)a)"),
            Erfinv => format!("({c})erfinv((double)a)"),
            Floor => "m_floor(a)".into(),
            Ceil => "m_ceil(a)".into(),
            Round { decimals } => format!("({c})round_dec((double)a, {decimals})"),
            Sigmoid => "m_sigmoid(a)".into(),
            Gelu => format!("({c})m_gelu((double)a)"),
            GeluTanh => "m_gelu_tanh(a)".into(),
            Real | Conj => "a".into(),
            Imag => format!("({c})0"),
            Angle => "m_angle(a)".into(),
            IsNan => "m_isnan(a)".into(),
            IsInf => "m_isinf(a)".into(),
            IsFinite => "!(m_isnan(a) || m_isinf(a))".into(),
            SignBit => "m_signbit(a)".into(),
            LogicalNot => format!("a == ({c})0"),
            _ => return None,
        },
        Kind::Int | Kind::UInt => match op {
            Abs => "i_abs(a)".into(),
            Negative => "w_neg(a)".into(),
            Sign => "i_sign(a)".into(),
            Square => "w_mul(a, a)".into(),
            BitwiseInvert => format!("({c})~a"),
            Floor | Ceil | Real | Conj => "a".into(),
            Round { decimals } if decimals >= 0 => "a".into(),
            Round { decimals } => format!("from_f64<{c}>(round_dec((double)a, {decimals}))"),
            Imag => format!("({c})0"),
            IsNan | IsInf => "false".into(),
            IsFinite => "true".into(),
            SignBit => format!("a < ({c})0"),
            LogicalNot => format!("a == ({c})0"),
            _ => return None,
        },
        Kind::Bool => match op {
            BitwiseInvert | LogicalNot => "!a".into(),
            Abs | Square | Floor | Ceil | Round { .. } | Real | Conj => "a".into(),
            Imag | IsNan | IsInf | SignBit => "false".into(),
            IsFinite => "true".into(),
            _ => return None,
        },
        Kind::Complex => return None,
    };
    Some(e)
}

/// The compute-type expression of binary `op` on `a`, `b` of dtype `d`.
fn binary_expr(op: BinaryOp, d: DType) -> Option<String> {
    use BinaryOp::*;
    if d == DType::C64 {
        return complex_binary_expr(op);
    }
    let c = comp(d);
    let cmp = |o: &str| format!("a {o} b");
    let e = match op {
        Equal => cmp("=="),
        NotEqual => cmp("!="),
        Less => cmp("<"),
        LessEqual => cmp("<="),
        Greater => cmp(">"),
        GreaterEqual => cmp(">="),
        LogicalAnd => format!("(a != ({c})0) && (b != ({c})0)"),
        LogicalOr => format!("(a != ({c})0) || (b != ({c})0)"),
        LogicalXor => format!("(a != ({c})0) != (b != ({c})0)"),
        _ => match d.kind() {
            Kind::Float => match op {
                Add => "a + b".into(),
                Subtract => "a - b".into(),
                Multiply => "a * b".into(),
                Divide => "a / b".into(),
                FloorDivide => "py_floor_div(a, b)".into(),
                Remainder => "py_mod(a, b)".into(),
                Power => "m_pow(a, b)".into(),
                Maximum => "nan_max(a, b)".into(),
                Minimum => "nan_min(a, b)".into(),
                Arctan2 => "m_atan2(a, b)".into(),
                LogAddExp => "logaddexp(a, b)".into(),
                // Exact GELU in double as the CPU; the tanh form in the compute type.
                GeluGrad => format!("({c})m_gelu_grad((double)a, (double)b)"),
                GeluTanhGrad => "m_gelu_tanh_grad(a, b)".into(),
                _ => return None,
            },
            Kind::Int | Kind::UInt => match op {
                Add => "w_add(a, b)".into(),
                Subtract => "w_sub(a, b)".into(),
                Multiply => "w_mul(a, b)".into(),
                FloorDivide => "i_floor_div(a, b)".into(),
                Remainder => "i_mod(a, b)".into(),
                Power => "i_pow(a, b)".into(),
                Maximum => "(a >= b ? a : b)".into(),
                Minimum => "(a <= b ? a : b)".into(),
                BitwiseAnd => format!("({c})(a & b)"),
                BitwiseOr => format!("({c})(a | b)"),
                BitwiseXor => format!("({c})(a ^ b)"),
                LeftShift => "i_shl(a, b)".into(),
                RightShift => "i_shr(a, b)".into(),
                _ => return None,
            },
            Kind::Bool => match op {
                Add | Maximum | BitwiseOr => "a || b".into(),
                Multiply | Minimum | BitwiseAnd => "a && b".into(),
                BitwiseXor => "a != b".into(),
                _ => return None,
            },
            Kind::Complex => return None,
        },
    };
    if d == DType::C64 {
        return None;
    }
    Some(e)
}

/// complex64 unary ops (elementwise.cuh's `c_*` functions, the CPU's formulas); `out` is
/// the op's output dtype: abs and angle give f32, and real and imag either f32 or complex.
fn complex_unary_expr(op: UnaryOp, out: DType) -> Option<String> {
    use UnaryOp::*;
    let e = match (out, op) {
        (DType::F32, Abs) => "c_abs(a)",
        (DType::F32, Real) => "a.re",
        (DType::F32, Imag) => "a.im",
        (DType::F32, Angle) => "atan2f(a.im, a.re)",
        (DType::Bool, IsNan) => "(a.re != a.re || a.im != a.im)",
        (DType::Bool, IsInf) => "(m_isinf(a.re) || m_isinf(a.im))",
        (DType::Bool, IsFinite) => "(isfinite(a.re) && isfinite(a.im))",
        (DType::Bool, LogicalNot) => "!c_nz(a)",
        (DType::C64, Negative) => "cx(-a.re, -a.im)",
        (DType::C64, Conj) => "cx(a.re, -a.im)",
        (DType::C64, Real) => "cx(a.re, 0.f)",
        (DType::C64, Imag) => "cx(a.im, 0.f)",
        (DType::C64, Square) => "c_mul(a, a)",
        (DType::C64, Reciprocal) => "c_inv(a)",
        (DType::C64, Sign) => "c_sign(a)",
        (DType::C64, Exp) => "c_exp(a)",
        _ => return None,
    };
    Some(e.into())
}

/// complex64 binary ops: arithmetic, and comparisons in the CPU's (re, im) order.
fn complex_binary_expr(op: BinaryOp) -> Option<String> {
    use BinaryOp::*;
    let e = match op {
        Add => "c_add(a, b)",
        Subtract => "c_sub(a, b)",
        Multiply => "c_mul(a, b)",
        Divide => "c_div(a, b)",
        Equal => "c_eq(a, b)",
        NotEqual => "!c_eq(a, b)",
        Less => "c_lt(a, b)",
        LessEqual => "c_le(a, b)",
        Greater => "c_gt(a, b)",
        GreaterEqual => "c_ge(a, b)",
        LogicalAnd => "(c_nz(a) && c_nz(b))",
        LogicalOr => "(c_nz(a) || c_nz(b))",
        LogicalXor => "(c_nz(a) != c_nz(b))",
        _ => return None,
    };
    Some(e.into())
}

fn op_tag(op: &str) -> String {
    op.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '-' => 'm',
            c if c.is_ascii_alphanumeric() => c.to_ascii_lowercase(),
            _ => '_',
        })
        .collect()
}

pub(super) fn eval(g: &Gpu, op: &Op, inputs: &[Array], outs: Outs) -> Result<Option<Vec<Data>>> {
    let (out_shape, out_dtype) = (&outs[0].0, outs[0].1);
    // Node evaluation: the graph gives each input up once this op has read it, so outputs
    // may be written over inputs nobody else holds (map_kernel_n's `donate`).
    let datas: Vec<(&Array, Data)> = inputs.iter().map(|a| (a, a.ready_data())).collect();
    let out = match op {
        Op::Arange { start, step } => {
            return arange(g, start.to_f64(), step.to_f64(), out_shape, out_dtype)
        }
        Op::AsType(to) => {
            let from = inputs[0].dtype();
            map_kernel(
                g,
                MapOp::Named("cast"),
                datas,
                out_shape,
                out_dtype,
                true,
                || Some(("cast".into(), cast_expr("v0", from, *to)?)),
            )?
        }
        Op::Unary(UnaryOp::StopGradient) => return Ok(copy(g, &inputs[0])?.map(|d| vec![d])),
        Op::Unary(u) => {
            let dt = inputs[0].dtype();
            map_kernel(
                g,
                MapOp::Unary(*u),
                datas,
                out_shape,
                out_dtype,
                true,
                || Some((op_tag(&format!("{u:?}")), unary_body(*u, dt, out_dtype)?)),
            )?
        }
        Op::Binary(b) => {
            let dt = inputs[0].dtype();
            if inputs[1].dtype() != dt {
                return Ok(None);
            }
            map_kernel(
                g,
                MapOp::Binary(*b),
                datas,
                out_shape,
                out_dtype,
                true,
                || Some((op_tag(&format!("{b:?}")), binary_body(*b, dt, out_dtype)?)),
            )?
        }
        Op::Select => {
            if inputs[0].dtype() != DType::Bool
                || inputs[1].dtype() != out_dtype
                || inputs[2].dtype() != out_dtype
            {
                return Ok(None);
            }
            map_kernel(
                g,
                MapOp::Named("select"),
                datas,
                out_shape,
                out_dtype,
                true,
                || Some(("select".into(), "v0.b ? v1 : v2".into())),
            )?
        }
        Op::Fused { program } => return fused(g, program, datas, out_shape, out_dtype),
        _ => return Ok(None),
    };
    Ok(out.map(|d| vec![d]))
}

/// The statements of a fused program over `n_in` operands `vK` of dtype `dt`, writing
/// `yM`; `None` when an op has no GPU expression for `dt`.
fn fused_stmts(program: &FusedProgram, n_in: usize, dt: DType) -> Option<String> {
    let c = comp(dt);
    let mut stmts = String::new();
    for k in 0..n_in {
        stmts.push_str(&format!("{c} x{k} = ld(v{k}); "));
    }
    for (j, ins) in program.instrs.iter().enumerate() {
        let e = match ins.op {
            FusedOp::Unary(u) => {
                unary_expr(u, dt).map(|e| format!("[&]({c} a) {{ return {e}; }}(x{})", ins.args[0]))
            }
            FusedOp::Binary(b) => binary_expr(b, dt).map(|e| {
                format!(
                    "[&]({c} a, {c} b) {{ return {e}; }}(x{}, x{})",
                    ins.args[0], ins.args[1]
                )
            }),
        };
        let e = e?;
        if matches!(dt, DType::F16 | DType::BF16) {
            // Rounded to the half type after every op, as the unfused kernels store it.
            stmts.push_str(&format!(
                "{c} x{} = ld(st<{}>({e}));\n",
                n_in + j,
                ctype(dt)
            ));
        } else {
            stmts.push_str(&format!("{c} x{} = ({c})({e});\n", n_in + j));
        }
    }
    for (m, o) in program.outputs.iter().enumerate() {
        stmts.push_str(&format!("y{m} = st<{}>(x{o}); ", ctype(dt)));
    }
    Some(stmts)
}

/// A compiled function's fused elementwise chain as one kernel: each value lives in a
/// register, so the chain reads its inputs and writes its outputs once. The ops are the
/// unfused kernels' own expressions, so fused and unfused results agree. `None` (CPU) for
/// what the CPU's fused kernel would reject, so errors read the same on both devices.
fn fused(
    g: &Gpu,
    program: &FusedProgram,
    datas: Vec<(&Array, Data)>,
    out_shape: &[usize],
    dt: DType,
) -> Result<Option<Vec<Data>>> {
    let n_in = datas.len();
    if program.validate(n_in).is_err()
        || !dt.is_float()
        || datas.iter().any(|(a, _)| {
            a.dtype() != dt
                || a.ndim() != out_shape.len()
                || a.shape()
                    .iter()
                    .zip(out_shape)
                    .any(|(&x, &y)| x != y && x != 1)
        })
    {
        return Ok(None);
    }
    let make = || {
        let stmts = fused_stmts(program, n_in, dt)?;
        // The program's text names the kernel: the same chain compiles once per machine.
        let digest = sha2::Sha256::digest(stmts.as_bytes());
        let tag: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        Some((format!("fz{tag}"), stmts))
    };
    map_kernel_n(
        g,
        MapOp::Fused(program),
        datas,
        out_shape,
        dt,
        program.outputs.len(),
        true,
        true,
        make,
    )
}

fn arange(g: &Gpu, start: f64, step: f64, shape: &[usize], dt: DType) -> Result<Option<Vec<Data>>> {
    let n = size_of(shape);
    let name = format!("arange_{}", ctype(dt));
    let t = ctype(dt);
    let f = g.kernel(&name, || {
        format!(
            "{COMMON}\nextern \"C\" __global__ void {name}({t}* out, long long n, double start, double step) {{\n\
             long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;\n\
             if (i < n) out[i] = from_f64<{t}>(start + (double)i * step);\n}}\n"
        )
    })?;
    let mem = g.alloc(n * dt.size())?;
    if n > 0 {
        let mut args = Args::new();
        args.push(mem.ptr()).push(n as i64).push(start).push(step);
        g.launch_1d(&f, n, &args)?;
    }
    Ok(Some(vec![out_data(Buffer::on_device(mem), shape)]))
}

/// `x`'s elements in row-major order on the GPU: its own buffer when its layout already is,
/// else a copy. Returns the data (keep it alive until the kernels reading it are queued) and
/// the address of its first element; `None` when no copy kernel handles it.
pub(super) fn row_major(g: &Gpu, x: &Array) -> Result<Option<(Data, u64)>> {
    let mut d = x.ready_data();
    if !is_row_major(x.shape(), &d.strides) {
        match copy(g, x)? {
            Some(c) => d = c,
            None => return Ok(None),
        }
    }
    let ptr = d.buffer.device_ptr(g.ordinal)? + (d.offset * x.dtype().size()) as u64;
    Ok(Some((d, ptr)))
}

/// Whether elements at `strides` lie in row-major order with no gaps. Size-1 dims may carry
/// any stride (a token's `(1, heads, 1, dim)` view after a transpose is row-major), so such
/// views are not copied.
pub(super) fn is_row_major(shape: &[usize], strides: &[isize]) -> bool {
    let mut want = 1isize;
    for (&n, &s) in shape.iter().zip(strides).rev() {
        if n != 1 {
            if s != want {
                return false;
            }
            want *= n as isize;
        }
    }
    true
}

/// The unsigned type of `d`'s width (kernels that only move elements move them as bits).
pub(super) fn bits(d: DType) -> DType {
    match d.size() {
        1 => DType::U8,
        2 => DType::U16,
        4 => DType::U32,
        _ => DType::U64,
    }
}

/// The layouts of a bit-moving kernel over elements of `size` bytes read as wider words:
/// after collapsing, when every operand's innermost stride is 1, the innermost length, the
/// other strides, the offsets and the pointers all divide by the word, the dims and strides
/// in words of up to 8 bytes (a transposed head copy of bf16 moves 4 elements a thread,
/// with a quarter of the index arithmetic). `None` where it does not apply.
pub(super) fn widened(
    shape: &[usize],
    operands: &[(u64, usize, &[isize])],
    size: usize,
) -> Option<(DType, Vec<usize>, Vec<(usize, Vec<isize>)>)> {
    let strides: Vec<Vec<isize>> = operands.iter().map(|o| o.2.to_vec()).collect();
    let (dims, sts) = collapse(shape, &strides)?;
    let last = dims.len() - 1;
    if size >= 8 || sts.iter().any(|s| s[last] != 1) {
        return None;
    }
    let w = [8 / size, 4 / size, 2 / size].into_iter().find(|&w| {
        w > 1
            && dims[last] % w == 0
            && operands.iter().zip(&sts).all(|((ptr, off, _), s)| {
                off % w == 0
                    && ptr % (w * size) as u64 == 0
                    && s[..last].iter().all(|&st| st % w as isize == 0)
            })
    })?;
    let mut wdims = dims;
    wdims[last] /= w;
    let ops = operands
        .iter()
        .zip(sts)
        .map(|((_, off, _), s)| {
            let mut ws: Vec<isize> = s.iter().map(|&st| st / w as isize).collect();
            ws[last] = 1;
            (off / w, ws)
        })
        .collect();
    let word = match w * size {
        2 => DType::U16,
        4 => DType::U32,
        _ => DType::U64,
    };
    Some((word, wdims, ops))
}

/// A row-major copy of `x` on the GPU (any dtype: elements move as plain bits, as wider
/// words where the layout allows, [`widened`]).
pub(super) fn copy(g: &Gpu, x: &Array) -> Result<Option<Data>> {
    let d = x.ready_data();
    if size_of(x.shape()) > 0 && d.buffer.device_ordinal() == Some(g.ordinal) {
        let ptr = d.buffer.device_ptr(g.ordinal)?;
        if let Some((wide, dims, ops)) =
            widened(x.shape(), &[(ptr, d.offset, &d.strides)], x.dtype().size())
        {
            let (offset, strides) = ops.into_iter().next().expect("one operand");
            let wd = Data {
                buffer: d.buffer.clone(),
                strides,
                offset,
            };
            let view = Array::from_data(wd.clone(), dims.clone(), wide);
            let out = map_kernel(
                g,
                MapOp::Named("copy"),
                vec![(&view, wd)],
                &dims,
                wide,
                false,
                || Some(("copy".into(), "v0".into())),
            )?;
            return Ok(out.map(|o| Data {
                strides: contiguous_strides(x.shape()),
                ..o
            }));
        }
    }
    let bits = bits(x.dtype());
    // Reinterpret the operand as same-size unsigned integers; the output buffer holds the
    // same bits, labelled with x's dtype by the caller.
    let view = Array::from_data(d.clone(), x.shape().to_vec(), bits);
    map_kernel(
        g,
        MapOp::Named("copy"),
        vec![(&view, d)],
        x.shape(),
        bits,
        false,
        || Some(("copy".into(), "v0".into())),
    )
}
