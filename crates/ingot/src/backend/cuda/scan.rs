//! Scans along one axis (kernels/scan.cuh) with the reductions' recipes: cumsum and cumprod
//! in the CPU's accumulators, cummax and cummin propagating NaN, logcumsumexp for floats;
//! inclusive or exclusive, forward or reverse. A non-contiguous input is first copied to
//! row-major order on the GPU.

use super::elementwise::{ctype, row_major};
use super::reduce::{recipe, recipe_defines};
use super::{Args, Gpu};
use crate::array::{Array, Data};
use crate::backend::cpu::strided::out_data;
use crate::buffer::Buffer;
use crate::dtype::{DType, Kind};
use crate::op::{ReduceKind, ScanKind};
use crate::shape::size_of;
use crate::Result;

const SCAN: &str = include_str!("kernels/scan.cuh");

/// `INGOT_CUDA_SCAN_ITEMS` (4, 8, 16 or 32: positions a thread scans in a tile, scan.cuh's
/// ITEMS; a tile is 256 of them) and `INGOT_CUDA_SCAN_RUNS` (the blocks the two-pass scan
/// aims for; 132 SMs hold 8 blocks each; 4096 by default), for tuning on a GPU.
fn tiling() -> (Option<usize>, usize) {
    static T: std::sync::OnceLock<(Option<usize>, usize)> = std::sync::OnceLock::new();
    *T.get_or_init(|| {
        let var = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<usize>().ok());
        let items = var("INGOT_CUDA_SCAN_ITEMS").filter(|i| [4, 8, 16, 32].contains(i));
        let runs = var("INGOT_CUDA_SCAN_RUNS").filter(|r| (1..=1 << 20).contains(r));
        (items, runs.unwrap_or(4096))
    })
}

/// ITEMS for a scan of `ti` into `to`: 8 for the two-pass scan (16M f32 on an H100, run
/// G15: 82.4 us at 1024 runs, 79.0-79.6 at 2048, 77.5 at 4096; 16 a thread 79.2 at 2048, 4
/// a thread 82.5 at 4096); 32 for the look-back, whose blocks wait on the tiles before
/// theirs, so each must hold more of the line (the staged tile is all it keeps); halved
/// until the tile's shared memory fits the 48 KiB a block may have statically.
fn items(ti: DType, to: DType) -> usize {
    let want = tiling()
        .0
        .unwrap_or(if mode() == Mode::Two { 8 } else { 32 });
    let bytes = |items: usize| {
        let stage = 256 * items + 8 * items;
        let out = if ti.size() == to.size() {
            16
        } else {
            stage * to.size()
        };
        stage * ti.size() + out + 256 * 8 + 512
    };
    let mut items = want;
    while items > 4 && bytes(items) > 46 << 10 {
        items /= 2;
    }
    items
}

/// (ACC, INIT, FOLD, COMB, FIN) and the scan's starting value.
fn scan_recipe(kind: ScanKind, ti: DType, to: DType) -> Option<([String; 5], String)> {
    let red = match kind {
        ScanKind::Sum => ReduceKind::Sum,
        ScanKind::Prod => ReduceKind::Prod,
        ScanKind::Max => ReduceKind::Max,
        ScanKind::Min => ReduceKind::Min,
        ScanKind::LogAddExp => {
            if ti.kind() != Kind::Float {
                return None;
            }
            let acc = if ti == DType::F64 { "double" } else { "float" };
            let (t, o) = (ctype(ti), ctype(to));
            let r = [
                acc.to_string(),
                format!("(-({acc})__int_as_float(0x7f800000))"),
                format!("logaddexp(a, ({acc})ld<{t}>(X_))"),
                "logaddexp(a, b)".to_string(),
                format!("st<{o}>((typename Ct<{o}>::type)(a))"),
            ];
            let init = r[1].clone();
            return Some((r, init));
        }
    };
    let r = recipe(red, ti, to)?;
    // The CPU starts float and complex sums from -0.0, so a cumsum of -0.0 is -0.0.
    let start = match (kind, ti.kind()) {
        (ScanKind::Sum, Kind::Float) => format!("(({})-0.0)", r[0]),
        (ScanKind::Sum, Kind::Complex) => "cx(-0.f, -0.f)".to_string(),
        _ => r[1].clone(),
    };
    Some((r, start))
}

fn base(kind: ScanKind, ti: DType, to: DType) -> String {
    format!(
        "scan_{}_{}_{}",
        format!("{kind:?}").to_lowercase(),
        ctype(ti),
        ctype(to)
    )
}

fn source(base: &str, ti: DType, to: DType, r: &[String; 5], start: &str, items: usize) -> String {
    let r: [&str; 5] = [&r[0], &r[1], &r[2], &r[3], &r[4]];
    format!(
        "{}#define SINIT {start}\n#define ITEMS {items}\n{SCAN}\n",
        recipe_defines(base, ti, to, r),
    )
}

/// Scan modules of every kind for a sample of dtypes, for the compile check.
pub(crate) fn sample_sources() -> Vec<(String, String)> {
    use DType::*;
    let mut v = Vec::new();
    for kind in [
        ScanKind::Sum,
        ScanKind::Prod,
        ScanKind::Max,
        ScanKind::Min,
        ScanKind::LogAddExp,
    ] {
        for ti in [Bool, I8, U32, I64, F16, BF16, F32, F64, C64] {
            let to = match (kind, ti.kind()) {
                (ScanKind::Sum | ScanKind::Prod, Kind::Bool | Kind::Int) if ti != I64 => I64,
                (ScanKind::Sum | ScanKind::Prod, Kind::UInt) => U64,
                _ => ti,
            };
            if let Some((r, start)) = scan_recipe(kind, ti, to) {
                let b = base(kind, ti, to);
                // The tile of this process's scan, and the smallest one (a thread's
                // positions then fill less than a 16-byte word for 1-byte elements).
                for items in [items(ti, to), 4] {
                    v.push((b.clone(), source(&b, ti, to, &r, &start, items)));
                }
            }
        }
    }
    v
}

pub(super) fn eval(
    g: &Gpu,
    x: &Array,
    (kind, axis, reverse, inclusive): (ScanKind, usize, bool, bool),
    to: DType,
) -> Result<Option<Vec<Data>>> {
    let ti = x.dtype();
    let Some((r, start)) = scan_recipe(kind, ti, to) else {
        return Ok(None);
    };
    let shape = x.shape();
    let total = size_of(shape);
    let mem = g.alloc(total * to.size())?;
    if total == 0 {
        return Ok(Some(vec![out_data(Buffer::on_device(mem), shape)]));
    }
    let Some((_src, xptr)) = row_major(g, x)? else {
        return Ok(None);
    };
    let n = shape[axis];
    let m: usize = shape[axis + 1..].iter().product();
    let lines = total / n;
    let b = base(kind, ti, to);
    let src = || source(&b, ti, to, &r, &start, items(ti, to));
    let (rev, incl) = (reverse as i32, inclusive as i32);
    let run_blocks = tiling().1;
    let tiles = n.div_ceil(256 * items(ti, to));
    if m > 1 || n <= 64 {
        let f = g.kernel_in(&b, &format!("{b}_col"), src)?;
        let mut args = Args::new();
        args.push(mem.ptr())
            .push(xptr)
            .push(lines as i64)
            .push(n as i64)
            .push(m as i64)
            .push(rev)
            .push(incl);
        g.launch_1d(&f, lines, &args)?;
        return Ok(Some(vec![out_data(Buffer::on_device(mem), shape)]));
    }
    if mode() == Mode::LookBack {
        return look_back(
            g,
            &b,
            src,
            (mem, xptr),
            (lines, n, tiles),
            (rev, incl),
            shape,
        );
    }
    if lines > i32::MAX as usize {
        return Ok(None);
    }
    // Runs of `per` tiles, one block each: about `run_blocks` blocks in all (a few waves of
    // the largest GPUs), at most 65535 runs a line (the grid's y limit).
    let per = (tiles * lines)
        .div_ceil(run_blocks)
        .max(tiles.div_ceil(65535))
        .clamp(1, tiles);
    let nb = tiles.div_ceil(per);
    let grid = (lines as u32, nb as u32, 1);
    // Totals of every run but the last of each line feed the runs after them.
    let part = if nb > 1 {
        Some(g.alloc(lines * nb * 8)?)
    } else {
        None
    };
    let part_ptr = part.as_ref().map_or(0, |p| p.ptr());
    if nb > 1 {
        let f = g.kernel_in(&b, &format!("{b}_agg"), src)?;
        let mut args = Args::new();
        args.push(part_ptr)
            .push(xptr)
            .push(n as i64)
            .push(rev)
            .push(per as i64);
        g.launch(&f, grid, (256, 1, 1), 0, &args)?;
    }
    let f = g.kernel_in(&b, &format!("{b}_tile"), src)?;
    let mut args = Args::new();
    args.push(mem.ptr())
        .push(xptr)
        .push(part_ptr)
        .push(n as i64)
        .push(rev)
        .push(incl)
        .push(per as i64);
    g.launch(&f, grid, (256, 1, 1), 0, &args)?;
    drop(part);
    Ok(Some(vec![out_data(Buffer::on_device(mem), shape)]))
}

/// How long lines (m == 1) are scanned: in one pass with a decoupled look-back (`LookBack`,
/// the default), or with `INGOT_CUDA_SCAN=two` by agg + tile (each element read twice).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Two,
    LookBack,
}

fn mode() -> Mode {
    static M: std::sync::OnceLock<Mode> = std::sync::OnceLock::new();
    *M.get_or_init(|| match std::env::var("INGOT_CUDA_SCAN").as_deref() {
        Ok("two") => Mode::Two,
        _ => Mode::LookBack,
    })
}

/// Lines of `n` (m == 1) in one pass, a block a tile (scan.cuh's `lb`): the tile counter
/// and a flag for each tile's two statuses (used where the accumulator is 8 bytes), zeroed
/// first, then two 8-byte statuses a tile.
fn look_back(
    g: &Gpu,
    b: &str,
    src: impl FnOnce() -> String,
    (mem, xptr): (super::DeviceMem, u64),
    (lines, n, tiles): (usize, usize, usize),
    (rev, incl): (i32, i32),
    shape: &[usize],
) -> Result<Option<Vec<Data>>> {
    let total_tiles = lines * tiles;
    if total_tiles > i32::MAX as usize {
        return Ok(None);
    }
    let (scratch, sync_bytes) = flags_and_slots(g, 1 + 2 * total_tiles, 2 * total_tiles)?;
    let sync = scratch.ptr();
    let f = g.kernel_in(b, &format!("{b}_lb"), src)?;
    let mut args = Args::new();
    args.push(mem.ptr())
        .push(xptr)
        .push(sync)
        .push(sync + sync_bytes as u64)
        .push(n as i64)
        .push(tiles as i64)
        .push(rev)
        .push(incl);
    g.launch(&f, (total_tiles as u32, 1, 1), (256, 1, 1), 0, &args)?;
    drop(scratch);
    Ok(Some(vec![out_data(Buffer::on_device(mem), shape)]))
}

/// Scratch for the one-pass scans: `words` u32 (a counter and flags), then `slots` 8-byte
/// values, all zeroed on the GPU's stream; returns the block and the words' length.
fn flags_and_slots(g: &Gpu, words: usize, slots: usize) -> Result<(super::DeviceMem, usize)> {
    let sync_bytes = (words * 4).next_multiple_of(8);
    let scratch = g.alloc(sync_bytes + slots * 8)?;
    // Safety: `scratch` is a block of this GPU of this length; the memset is ordered on its
    // stream before the launch that reads it.
    unsafe {
        cudarc::driver::result::memset_d8_async(
            scratch.ptr(),
            0,
            sync_bytes + slots * 8,
            g.stream()?.cu_stream(),
        )
    }
    .map_err(|e| super::cuda_err("cumulative scan", e))?;
    Ok((scratch, sync_bytes))
}
