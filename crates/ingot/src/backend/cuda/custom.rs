//! User-written kernels (`ingot::custom::Kernel`) on the GPU: the user's body wrapped in a
//! signature made from the declared names, compiled by NVRTC like ingot's own kernels and
//! launched with one thread per element of the first output. A kernel without GPU source
//! for these dtypes returns `None`, and its CPU code runs (counted as a fallback).

use super::elementwise::{ctype, row_major, COMMON};
use super::{Args, Gpu};
use crate::array::{Array, Data};
use crate::backend::cpu::strided::out_data;
use crate::buffer::Buffer;
use crate::shape::size_of;
use crate::{DType, Result, Scalar};

pub(super) fn eval(
    g: &Gpu,
    name: &str,
    params: &[Scalar],
    inputs: &[Array],
    outs: &[(Vec<usize>, DType)],
) -> Result<Option<Vec<Data>>> {
    let def = crate::custom::lookup(name)?;
    let in_dt: Vec<DType> = inputs.iter().map(|a| a.dtype()).collect();
    let out_dt: Vec<DType> = outs.iter().map(|o| o.1).collect();
    let Some((entry, src)) = crate::custom::cuda_source(&def, &in_dt, &out_dt, COMMON, ctype)
    else {
        return Ok(None);
    };
    let mut args = Args::new();
    // Row-major copies made for strided inputs stay alive until the launch is queued (freed
    // memory is reused only by later work on the same stream).
    let mut keep = Vec::new();
    for x in inputs {
        if x.size() == 0 {
            args.push(0u64).push(0i64);
            continue;
        }
        let Some((d, ptr)) = row_major(g, x)? else {
            return Ok(None);
        };
        keep.push(d);
        args.push(ptr).push(x.size() as i64);
    }
    let mems = outs
        .iter()
        .map(|(s, d)| g.alloc(size_of(s) * d.size()))
        .collect::<Result<Vec<_>>>()?;
    for m in &mems {
        args.push(m.ptr());
    }
    for p in params {
        args.push(p.to_f64());
    }
    let n = size_of(&outs[0].0);
    args.push(n as i64);
    if n > 0 {
        let f = g.kernel(&entry, || src)?;
        g.launch_1d(&f, n, &args)?;
    }
    drop(keep);
    Ok(Some(
        mems.into_iter()
            .zip(outs)
            .map(|(m, (s, _))| out_data(Buffer::on_device(m), s))
            .collect(),
    ))
}

/// Builds a user kernel's CUDA source with NVRTC for `arch` (no GPU needed).
pub(crate) fn compile_user_kernel(
    def: &crate::custom::KernelDef,
    in_dtypes: &[DType],
    out_dtypes: &[DType],
    arch: &str,
) -> Result<()> {
    let Some((entry, src)) = crate::custom::cuda_source(def, in_dtypes, out_dtypes, COMMON, ctype)
    else {
        return Err(crate::Error::invalid(
            format!("kernel {}", def.name()),
            format!("no CUDA source for inputs of {in_dtypes:?}"),
        ));
    };
    super::nvrtc::build(&entry, &src, &super::nvrtc::options(arch)).map(|_| ())
}
