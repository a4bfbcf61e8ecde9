//! argmax and argmin along one axis (kernels/argreduce.cuh) for every real dtype, any
//! layout: the kept dims are collapsed and walked with their strides, the reduced axis with
//! its own stride.

use super::elementwise::{collapse, ctype, KShape, KStrides, COMMON, FUNCS};
use super::{Args, Gpu};
use crate::array::{Array, Data};
use crate::backend::cpu::strided::out_data;
use crate::buffer::Buffer;
use crate::op::ArgReduceKind;
use crate::shape::size_of;
use crate::{DType, Result};

const ARGREDUCE: &str = include_str!("kernels/argreduce.cuh");

fn base(kind: ArgReduceKind, dt: DType) -> String {
    format!("{}_{}", format!("{kind:?}").to_lowercase(), ctype(dt))
}

fn source(base: &str, kind: ArgReduceKind, dt: DType) -> String {
    let c = match dt {
        DType::F16 | DType::BF16 => "float",
        DType::Bool => "bool",
        _ => ctype(dt),
    };
    format!(
        "{COMMON}\n{FUNCS}\n#define T {}\n#define C {c}\n#define MAX {}\n#define KNAME(k) {base}_##k\n{ARGREDUCE}\n",
        ctype(dt),
        (kind == ArgReduceKind::ArgMax) as i32
    )
}

/// Both kinds for every real dtype, for the compile check.
pub(crate) fn sample_sources() -> Vec<(String, String)> {
    use DType::*;
    let mut v = Vec::new();
    for kind in [ArgReduceKind::ArgMax, ArgReduceKind::ArgMin] {
        for dt in [
            Bool, U8, U16, U32, U64, I8, I16, I32, I64, F16, BF16, F32, F64,
        ] {
            let b = base(kind, dt);
            v.push((b.clone(), source(&b, kind, dt)));
        }
    }
    v
}

pub(super) fn eval(
    g: &Gpu,
    x: &Array,
    kind: ArgReduceKind,
    axis: usize,
    out_shape: &[usize],
) -> Result<Option<Vec<Data>>> {
    let dt = x.dtype();
    let shape = x.shape();
    // Complex inputs, and empty axes (the CPU reports the error), stay on the CPU.
    if dt == DType::C64 || axis >= shape.len() || shape[axis] == 0 {
        return Ok(None);
    }
    let d = x.ready_data();
    let kdims: Vec<usize> = (0..shape.len()).filter(|&i| i != axis).collect();
    let kshape: Vec<usize> = kdims.iter().map(|&i| shape[i]).collect();
    let kst: Vec<isize> = kdims.iter().map(|&i| d.strides[i]).collect();
    let nout = size_of(&kshape);
    let mem = g.alloc(nout * 8)?;
    if nout == 0 {
        return Ok(Some(vec![out_data(Buffer::on_device(mem), out_shape)]));
    }
    let Some((kd, ks)) = collapse(&kshape, &[kst]) else {
        return Ok(None);
    };
    let mut dim = [0i64; 6];
    let mut st = [0i64; 6];
    for (i, (&n, &s)) in kd.iter().zip(&ks[0]).enumerate() {
        dim[i] = n as i64;
        st[i] = s as i64;
    }
    let n = shape[axis];
    let step = d.strides[axis];
    let kinner = *ks[0].last().unwrap();
    let col = step.unsigned_abs() != 1 && kinner.unsigned_abs() == 1 && nout >= 32;
    if !col && nout > i32::MAX as usize {
        return Ok(None);
    }
    let b = base(kind, dt);
    let f = g.kernel_in(
        &b,
        &format!("{b}_{}", if col { "col" } else { "row" }),
        || source(&b, kind, dt),
    )?;
    let mut args = Args::new();
    args.push(mem.ptr())
        .push(d.buffer.device_ptr(g.ordinal)?)
        .push(nout as i64)
        .push(n as i64)
        .push(step as i64)
        .push(KShape {
            nd: kd.len() as i32,
            dim,
        })
        .push(KStrides {
            off: d.offset as i64,
            st,
            mode: 0,
        });
    if col {
        g.launch_1d(&f, nout, &args)?;
    } else {
        // Short axes waste most of a large block; a long one (a vocabulary's logits while
        // decoding, one row) wants every thread it can get.
        let threads = if n <= 2048 {
            64
        } else if n <= 65536 || nout >= 256 {
            256
        } else {
            1024
        };
        g.launch(&f, (nout as u32, 1, 1), (threads, 1, 1), 0, &args)?;
    }
    Ok(Some(vec![out_data(Buffer::on_device(mem), out_shape)]))
}
