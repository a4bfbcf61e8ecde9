//! rms_norm, layer_norm and rope on the GPU (kernels/norm_rope.cuh) for f16, bf16, f32 and
//! f64: a block per row for the norms, a thread per rotated pair for rope.
//! `INGOT_CUDA_FAST=0` (checked by the caller) builds the decompositions instead.
//! Operands are made row-major first.

use super::elementwise::{ctype, row_major, COMMON, FUNCS};
use super::{Args, Gpu};
use crate::array::{Array, Data};
use crate::backend::cpu::strided::out_data;
use crate::buffer::Buffer;
use crate::op::{Op, RopeOffsetKind};
use crate::shape::size_of;
use crate::{DType, Result};

const NORM_ROPE: &str = include_str!("kernels/norm_rope.cuh");

fn source(base: &str, dt: DType) -> String {
    let c = if dt == DType::F64 { "double" } else { "float" };
    format!(
        "{COMMON}\n{FUNCS}\n#define T {}\n#define C {c}\n#define KNAME(k) {base}_##k\n{NORM_ROPE}\n",
        ctype(dt)
    )
}

fn base(dt: DType) -> String {
    format!("norm_rope_{}", ctype(dt))
}

/// Module sources for the compile check: every dtype.
pub(crate) fn sample_sources() -> Vec<(String, String)> {
    [DType::F16, DType::BF16, DType::F32, DType::F64]
        .into_iter()
        .map(|dt| (base(dt), source(&base(dt), dt)))
        .collect()
}

/// A compute-dtype scalar parameter.
fn push_c(args: &mut Args, dt: DType, v: f64) {
    if dt == DType::F64 {
        args.push(v);
    } else {
        args.push(v as f32);
    }
}

pub(super) fn eval(
    g: &Gpu,
    op: &Op,
    inputs: &[Array],
    out_shape: &[usize],
) -> Result<Option<Vec<Data>>> {
    let dt = inputs[0].dtype();
    if !matches!(dt, DType::F16 | DType::BF16 | DType::F32 | DType::F64) {
        return Ok(None);
    }
    let n = size_of(out_shape);
    let nd = out_shape.len();
    let d = out_shape[nd - 1];
    let mem = g.alloc(n * dt.size())?;
    if n == 0 {
        return Ok(Some(vec![out_data(Buffer::on_device(mem), out_shape)]));
    }
    let rows = n / d;
    let mut held = Vec::new();
    let mut ptrs = Vec::new();
    for x in inputs {
        let Some((h, p)) = row_major(g, x)? else {
            return Ok(None);
        };
        held.push(h);
        ptrs.push(p);
    }
    let base = base(dt);
    let mut args = Args::new();
    args.push(mem.ptr()).push(ptrs[0]);
    match op {
        Op::RmsNorm { eps, has_weight }
        | Op::LayerNorm {
            eps, has_weight, ..
        } => {
            let center = matches!(op, Op::LayerNorm { .. });
            let has_bias = matches!(op, Op::LayerNorm { has_bias: true, .. });
            if rows > i32::MAX as usize {
                return Ok(None);
            }
            let w = if *has_weight { ptrs[1] } else { 0u64 };
            let b = if has_bias {
                ptrs[1 + *has_weight as usize]
            } else {
                0u64
            };
            args.push(w).push(b).push(d as i64);
            push_c(&mut args, dt, eps.to_f64());
            args.push(center as i32);
            let f = g.kernel_in(&base, &format!("{base}_norm"), || source(&base, dt))?;
            // About four elements a thread: short rows would leave most of a large block
            // idle, and a long row (one token's hidden state) wants every thread.
            let threads = (d / 4).next_power_of_two().clamp(32, 1024) as u32;
            g.launch(&f, (rows as u32, 1, 1), (threads, 1, 1), 0, &args)?;
        }
        Op::Rope {
            dims,
            traditional,
            base: rbase,
            scale,
            offset,
        } => {
            let l = out_shape[nd - 2];
            let items = rows * (dims / 2 + d - dims);
            if items.div_ceil(256) > i32::MAX as usize {
                return Ok(None);
            }
            let (offs, fixed, k) = match offset {
                RopeOffsetKind::Fixed(o) => (0u64, *o as i64, 1),
                _ => (ptrs[1], 0i64, 2),
            };
            let freqs = if rbase.is_none() { ptrs[k] } else { 0u64 };
            let per_batch = *offset == RopeOffsetKind::PerBatch;
            let rows_per_batch = rows / out_shape[0].max(1);
            args.push(offs)
                .push(freqs)
                .push(items as i64)
                .push(d as i64)
                .push(l as i64)
                .push(rows_per_batch as i64)
                .push(*dims as i64)
                .push(fixed)
                .push(per_batch as i32)
                .push(*traditional as i32)
                .push(rbase.map_or(0.0, |b| b.to_f64()));
            push_c(&mut args, dt, scale.to_f64());
            let f = g.kernel_in(&base, &format!("{base}_rope"), || source(&base, dt))?;
            if items > 0 {
                g.launch_1d(&f, items, &args)?;
            }
        }
        _ => return Ok(None),
    }
    drop(held);
    Ok(Some(vec![out_data(Buffer::on_device(mem), out_shape)]))
}
