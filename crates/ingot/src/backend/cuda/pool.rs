//! Max and average pooling on the GPU (kernels/pool.cuh) over channels-last inputs
//! (N, *spatial, C) with 1 to 3 spatial dims, for f16, bf16, f32 and f64 (halves computed in
//! f32, as on the CPU). Padded cells never win a max and count in an average only with
//! `count_pad`. A non-contiguous input is first copied to row-major order on the GPU.

use super::elementwise::{ctype, row_major, COMMON};
use super::{Args, Gpu};
use crate::array::{Array, Data};
use crate::backend::cpu::strided::out_data;
use crate::buffer::Buffer;
use crate::op::PoolKind;
use crate::shape::size_of;
use crate::{DType, Result};

const POOL: &str = include_str!("kernels/pool.cuh");

fn module(dt: DType, kind: PoolKind) -> (String, String) {
    let t = ctype(dt);
    let ct = if dt == DType::F64 { "double" } else { "float" };
    let max = (kind == PoolKind::Max) as i32;
    let base = format!("pool_{}_{t}", if max == 1 { "max" } else { "avg" });
    let src = format!(
        "{COMMON}\n#define T {t}\n#define CT {ct}\n#define MAXPOOL {max}\n#define KNAME(k) {base}_##k\n{POOL}\n"
    );
    (base, src)
}

/// Module sources for the compile check: every dtype, both kinds.
pub(crate) fn sample_sources() -> Vec<(String, String)> {
    let mut v = Vec::new();
    for dt in [DType::F16, DType::BF16, DType::F32, DType::F64] {
        for kind in [PoolKind::Max, PoolKind::Avg] {
            v.push(module(dt, kind));
        }
    }
    v
}

/// pool.cuh's `PoolGeo`.
#[repr(C)]
#[derive(Clone, Copy)]
struct PoolGeo {
    c: i64,
    inp: [i64; 3],
    out: [i64; 3],
    win: [i64; 3],
    stride: [i64; 3],
    lo: [i64; 3],
    count_pad: i64,
    total: i64,
}

pub(super) struct PoolParams<'a> {
    pub kind: PoolKind,
    pub window: &'a [usize],
    pub stride: &'a [usize],
    pub padding: &'a [usize],
    pub count_pad: bool,
}

pub(super) fn eval(
    g: &Gpu,
    x: &Array,
    p: &PoolParams,
    (out_shape, out_dt): (&[usize], DType),
) -> Result<Option<Vec<Data>>> {
    let dt = x.dtype();
    let nd = x.ndim().wrapping_sub(2);
    if !matches!(dt, DType::F16 | DType::BF16 | DType::F32 | DType::F64)
        || out_dt != dt
        || !(1..=3).contains(&nd)
        || out_shape.len() != x.ndim()
        || [p.window.len(), p.stride.len(), p.padding.len()] != [nd; 3]
    {
        return Ok(None);
    }
    let total = size_of(out_shape);
    let mem = g.alloc(total * dt.size())?;
    let c = x.shape()[nd + 1];
    if total == 0 || c == 0 {
        return Ok(Some(vec![out_data(Buffer::on_device(mem), out_shape)]));
    }
    let Some((_src, xptr)) = row_major(g, x)? else {
        return Ok(None);
    };
    // Missing leading spatial dims are dims of 1 with a window of 1.
    let lead = 3 - nd;
    let mut geo = PoolGeo {
        c: c as i64,
        inp: [1; 3],
        out: [1; 3],
        win: [1; 3],
        stride: [1; 3],
        lo: [0; 3],
        count_pad: p.count_pad as i64,
        total: total as i64,
    };
    for d in 0..nd {
        geo.inp[lead + d] = x.shape()[1 + d] as i64;
        geo.out[lead + d] = out_shape[1 + d] as i64;
        geo.win[lead + d] = p.window[d] as i64;
        geo.stride[lead + d] = p.stride[d] as i64;
        geo.lo[lead + d] = p.padding[d] as i64;
    }
    let (base, src) = module(dt, p.kind);
    let f = g.kernel_in(&base, &format!("{base}_pool"), || src)?;
    let mut args = Args::new();
    args.push(mem.ptr()).push(xptr).push(geo);
    g.launch_1d(&f, total, &args)?;
    Ok(Some(vec![out_data(Buffer::on_device(mem), out_shape)]))
}
