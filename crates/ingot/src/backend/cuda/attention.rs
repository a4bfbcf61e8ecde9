//! Fused scaled dot-product attention (kernels/attention.cuh) for f16, bf16, f32 and f64,
//! head dims up to 256: one warp per query row with an online softmax, the scores never
//! stored. Opt-in (`INGOT_CUDA_ATTENTION=1`) until it has passed the GPU suite. Operands
//! and the mask are made row-major first (a broadcast mask is expanded).

use super::elementwise::{ctype, row_major, COMMON, FUNCS};
use super::{Args, Gpu};
use crate::array::{Array, Data};
use crate::backend::cpu::strided::out_data;
use crate::buffer::Buffer;
use crate::op::AttentionMask;
use crate::shape::size_of;
use crate::{DType, Result};

const ATTENTION: &str = include_str!("kernels/attention.cuh");
const WARPS: usize = 4;

fn source(base: &str, dt: DType) -> String {
    let c = if dt == DType::F64 { "double" } else { "float" };
    format!(
        "{COMMON}\n{FUNCS}\n#define T {}\n#define C {c}\n#define KNAME(k) {base}_##k\n{ATTENTION}\n",
        ctype(dt)
    )
}

fn base(dt: DType) -> String {
    format!("attention_{}", ctype(dt))
}

/// Module sources for the compile check: every dtype.
pub(crate) fn sample_sources() -> Vec<(String, String)> {
    [DType::F16, DType::BF16, DType::F32, DType::F64]
        .into_iter()
        .map(|dt| (base(dt), source(&base(dt), dt)))
        .collect()
}

pub(super) fn eval(
    g: &Gpu,
    inputs: &[Array],
    scale: f64,
    kind: AttentionMask,
    out_shape: &[usize],
) -> Result<Option<Vec<Data>>> {
    let dt = inputs[0].dtype();
    let n = out_shape.len();
    let (qs, ks) = (inputs[0].shape(), inputs[1].shape());
    let (hq, l, e) = (qs[n - 3], qs[n - 2], qs[n - 1]);
    let (hkv, s) = (ks[n - 3], ks[n - 2]);
    let ev = out_shape[n - 1];
    if !matches!(dt, DType::F16 | DType::BF16 | DType::F32 | DType::F64) || e > 256 || ev > 256 {
        return Ok(None);
    }
    let total = size_of(out_shape);
    let mem = g.alloc(total * dt.size())?;
    let rows = size_of(&out_shape[..n - 1]);
    if total == 0 {
        return Ok(Some(vec![out_data(Buffer::on_device(mem), out_shape)]));
    }
    if l > i32::MAX as usize
        || s > i32::MAX as usize
        || hq > i32::MAX as usize
        || rows.div_ceil(WARPS) > i32::MAX as usize
    {
        return Ok(None);
    }
    let mut held = Vec::new();
    let mut ptrs = Vec::new();
    for x in &inputs[..3] {
        let Some((d, p)) = row_major(g, x)? else {
            return Ok(None);
        };
        held.push(d);
        ptrs.push(p);
    }
    let mptr = match inputs.get(3) {
        Some(m) => {
            // Bool masks are read as bytes; the additive one has the compute dtype already.
            let Some((d, p)) = row_major(g, m)? else {
                return Ok(None);
            };
            held.push(d);
            p
        }
        None => 0u64,
    };
    let kind_code: i32 = match kind {
        AttentionMask::None => 0,
        AttentionMask::Causal => 1,
        AttentionMask::Allow => 2,
        AttentionMask::Additive => 3,
    };
    let base = base(dt);
    let f = g.kernel_in(&base, &format!("{base}_fwd"), || source(&base, dt))?;
    let mut args = Args::new();
    args.push(mem.ptr())
        .push(ptrs[0])
        .push(ptrs[1])
        .push(ptrs[2])
        .push(mptr)
        .push(rows as i64)
        .push(hq as i32)
        .push(hkv as i32)
        .push(l as i32)
        .push(s as i32)
        .push(e as i32)
        .push(ev as i32);
    if dt == DType::F64 {
        args.push(scale);
    } else {
        args.push(scale as f32);
    }
    args.push(kind_code);
    g.launch(
        &f,
        (rows.div_ceil(WARPS) as u32, 1, 1),
        ((32 * WARPS) as u32, 1, 1),
        0,
        &mut args,
    )?;
    drop(held);
    Ok(Some(vec![out_data(Buffer::on_device(mem), out_shape)]))
}
