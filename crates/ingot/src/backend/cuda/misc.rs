//! Walsh-Hadamard transform and grid_sample on the GPU (kernels/misc.cuh), for f16, bf16,
//! f32 and f64 (halves computed in f32), with the CPU's bits. The transform runs over the
//! last axis (a power of two): the same butterflies in the same order, then one multiply by
//! the scale; a row that fits in 48 KiB of shared memory is done by one block, longer rows
//! run one launch per stage. grid_sample computes coordinates and weights in f64 as the CPU.

use super::elementwise::{ctype, row_major, COMMON};
use super::{Args, Gpu};
use crate::array::{Array, Data};
use crate::backend::cpu::strided::out_data;
use crate::buffer::Buffer;
use crate::op::{GridPadding, InterpMode};
use crate::shape::size_of;
use crate::{DType, Result};

const MISC: &str = include_str!("kernels/misc.cuh");

fn module(dt: DType) -> (String, String) {
    let t = ctype(dt);
    let ct = if dt == DType::F64 { "double" } else { "float" };
    let base = format!("hadamard_{t}");
    let src =
        format!("{COMMON}\n#define T {t}\n#define CT {ct}\n#define KNAME(k) {base}_##k\n{MISC}\n");
    (base, src)
}

/// Module sources for the compile check: every dtype.
pub(crate) fn sample_sources() -> Vec<(String, String)> {
    [DType::F16, DType::BF16, DType::F32, DType::F64]
        .into_iter()
        .map(module)
        .collect()
}

pub(super) fn hadamard(g: &Gpu, x: &Array, scale: f64) -> Result<Option<Vec<Data>>> {
    let dt = x.dtype();
    let shape = x.shape();
    let n = shape.last().copied().unwrap_or(0);
    if !matches!(dt, DType::F16 | DType::BF16 | DType::F32 | DType::F64) || !n.is_power_of_two() {
        // The CPU reports the error.
        return Ok(None);
    }
    let total = size_of(shape);
    let mem = g.alloc(total * dt.size())?;
    if total == 0 {
        return Ok(Some(vec![out_data(Buffer::on_device(mem), shape)]));
    }
    let Some((_src, xptr)) = row_major(g, x)? else {
        return Ok(None);
    };
    let rows = total / n;
    let logn = n.trailing_zeros() as i32;
    let wide = dt == DType::F64;
    let csize = if wide { 8 } else { 4 };
    let (base, src) = module(dt);
    let push_scale = |args: &mut Args| {
        if wide {
            args.push(scale);
        } else {
            args.push(scale as f32);
        }
    };
    if n * csize <= 48 << 10 && rows <= i32::MAX as usize {
        let f = g.kernel_in(&base, &format!("{base}_rows"), || src)?;
        let threads = (n / 2).clamp(32, 512) as u32;
        let mut args = Args::new();
        args.push(mem.ptr()).push(xptr).push(logn);
        push_scale(&mut args);
        g.launch(
            &f,
            (rows as u32, 1, 1),
            (threads, 1, 1),
            (n * csize) as u32,
            &args,
        )?;
    } else {
        // The work rows in the compute type: the output itself when it is one.
        let same = matches!(dt, DType::F32 | DType::F64);
        let scratch = if same {
            None
        } else {
            Some(g.alloc(total * csize)?)
        };
        let w = scratch.as_ref().map(|m| m.ptr()).unwrap_or(mem.ptr());
        let load = g.kernel_in(&base, &format!("{base}_load"), || src.clone())?;
        let mut args = Args::new();
        args.push(w).push(xptr).push(total as i64);
        g.launch_1d(&load, total, &args)?;
        let stage = g.kernel_in(&base, &format!("{base}_stage"), || src.clone())?;
        let pairs = total / 2;
        for lh in 0..logn {
            let mut args = Args::new();
            args.push(w).push(pairs as i64).push(logn).push(lh);
            g.launch_1d(&stage, pairs, &args)?;
        }
        let store = g.kernel_in(&base, &format!("{base}_store"), || src)?;
        let mut args = Args::new();
        args.push(mem.ptr()).push(w);
        push_scale(&mut args);
        args.push(total as i64);
        g.launch_1d(&store, total, &args)?;
    }
    Ok(Some(vec![out_data(Buffer::on_device(mem), shape)]))
}

/// grid_sample: input (N, H, W, C), grid (N, Ho, Wo, 2) of the same float dtype.
pub(super) fn grid_sample(
    g: &Gpu,
    inputs: &[Array],
    (mode, padding, align): (InterpMode, GridPadding, bool),
    out_shape: &[usize],
) -> Result<Option<Vec<Data>>> {
    let (x, grid) = (&inputs[0], &inputs[1]);
    let dt = x.dtype();
    if !matches!(dt, DType::F16 | DType::BF16 | DType::F32 | DType::F64)
        || grid.dtype() != dt
        || x.ndim() != 4
        || grid.ndim() != 4
        || out_shape.len() != 4
    {
        return Ok(None);
    }
    let total = size_of(out_shape);
    let mem = g.alloc(total * dt.size())?;
    if total == 0 {
        return Ok(Some(vec![out_data(Buffer::on_device(mem), out_shape)]));
    }
    let Some((_xs, xptr)) = row_major(g, x)? else {
        return Ok(None);
    };
    let Some((_gs, gptr)) = row_major(g, grid)? else {
        return Ok(None);
    };
    let (h, w, c) = (x.shape()[1], x.shape()[2], x.shape()[3]);
    let (ho, wo) = (out_shape[1], out_shape[2]);
    let (base, src) = module(dt);
    let f = g.kernel_in(&base, &format!("{base}_grid_sample"), || src)?;
    let mut args = Args::new();
    args.push(mem.ptr())
        .push(xptr)
        .push(gptr)
        .push(h as i64)
        .push(w as i64)
        .push(c as i64)
        .push(ho as i64)
        .push(wo as i64)
        .push((mode == InterpMode::Bilinear) as i32)
        .push(match padding {
            GridPadding::Zeros => 0i32,
            GridPadding::Border => 1,
            GridPadding::Reflection => 2,
        })
        .push(align as i32)
        .push(total as i64);
    g.launch_1d(&f, total, &args)?;
    Ok(Some(vec![out_data(Buffer::on_device(mem), out_shape)]))
}
