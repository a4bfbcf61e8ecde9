//! Collectives over GPU arrays through NCCL, queued on the GPU's stream like any kernel:
//! nothing goes through host memory and eval does not wait for the other ranks.
//!
//! Every rank must take the same path for a node, so the choice between NCCL and the
//! host transport depends only on what all ranks share (the group's decision made when its
//! communicator is set up, the dtype, the shape); a layout this file cannot handle is an
//! error, not a quiet fallback.

use super::elementwise::{copy, row_major};
use super::Gpu;
use crate::array::{Array, Data};
use crate::backend::cpu::strided::out_data;
use crate::buffer::Buffer;
use crate::distributed::nccl::{NcclType, RedOp};
use crate::dtype::DType;
use crate::op::{CollectiveKind, Op};
use crate::shape::{contiguous_strides, size_of};
use crate::{Error, Result};
use std::sync::Arc;

/// The NCCL element type and how many NCCL elements one element is, for a reduction;
/// `None` where NCCL has no such type (16-bit integers, complex max/min): those take the
/// host path on every rank.
fn reduce_type(dtype: DType, sum: bool) -> Option<(NcclType, usize)> {
    Some(match dtype {
        DType::I8 => (NcclType::I8, 1),
        DType::U8 => (NcclType::U8, 1),
        DType::I32 => (NcclType::I32, 1),
        DType::U32 => (NcclType::U32, 1),
        DType::I64 => (NcclType::I64, 1),
        DType::U64 => (NcclType::U64, 1),
        DType::F16 => (NcclType::F16, 1),
        DType::BF16 => (NcclType::BF16, 1),
        DType::F32 => (NcclType::F32, 1),
        DType::F64 => (NcclType::F64, 1),
        // A complex sum is the sum of its parts.
        DType::C64 if sum => (NcclType::F32, 2),
        _ => return None,
    })
}

/// A row-major device copy of `x` (its own buffer when it already is).
fn dense(g: &Gpu, x: &Array, name: &str) -> Result<(Data, u64)> {
    row_major(g, x)?.ok_or_else(|| {
        Error::invalid(
            name,
            format!(
                "no GPU copy for a {} array of shape {:?}",
                x.dtype(),
                x.shape()
            ),
        )
    })
}

/// `src` holds `[a, b, inner]` in row-major order from its offset; returns `[b, a, inner]`
/// row-major, copied on the GPU (NCCL's buffers hold each rank's part contiguously, the
/// arrays along an inner axis).
fn swap_outer(g: &Gpu, src: Data, a: usize, b: usize, inner: usize, dtype: DType) -> Result<Data> {
    let view = Data {
        strides: vec![inner as isize, (b * inner) as isize, 1],
        ..src
    };
    let x = Array::from_data(view, vec![b, a, inner], dtype);
    copy(g, &x)?.ok_or_else(|| {
        Error::invalid(
            "distributed",
            format!("no GPU copy to reorder a {dtype} array of {a}x{b}x{inner}"),
        )
    })
}

/// The axis a gather or scatter joins or cuts along (0 for the others: nothing before it).
fn axis_of(kind: &CollectiveKind) -> usize {
    match kind {
        CollectiveKind::Gather { axis } | CollectiveKind::ScatterSum { axis } => *axis,
        _ => 0,
    }
}

fn with_shape(d: Data, shape: &[usize]) -> Data {
    Data {
        strides: contiguous_strides(shape),
        ..d
    }
}

/// Runs a collective node over NCCL; `None` sends it through host memory (NCCL turned off
/// or missing for the group, or a dtype it has no reduction for).
pub(super) fn eval(
    g: &Gpu,
    op: &Op,
    inputs: &[Array],
    outs: &[(Vec<usize>, DType)],
) -> Result<Option<Vec<Data>>> {
    let Op::Collective { kind, ranks, tag } = op else {
        return Ok(None);
    };
    let name = op.name();
    let (oshape, dtype) = (&outs[0].0, outs[0].1);
    let reduction = matches!(
        kind,
        CollectiveKind::Sum | CollectiveKind::Max | CollectiveKind::Min
    );
    let rtype = reduce_type(
        dtype,
        matches!(
            kind,
            CollectiveKind::Sum | CollectiveKind::ScatterSum { .. }
        ),
    );
    if (reduction || matches!(kind, CollectiveKind::ScatterSum { .. })) && rtype.is_none() {
        return Ok(None);
    }
    // Point-to-point messages take the host transport: NCCL's send waits for the peer's
    // receive, so a ring of sends and receives built as separate lazy nodes (each rank
    // sending first) would deadlock unless both were in one NCCL group call.
    if matches!(
        kind,
        CollectiveKind::Send { .. } | CollectiveKind::Recv { .. }
    ) {
        return Ok(None);
    }
    let Some(comm) = crate::distributed::nccl_comm(ranks, *tag, g.ordinal)? else {
        return Ok(None);
    };
    let n = comm.size;
    let esize = dtype.size();
    let total = size_of(oshape);
    let x = &inputs[0];
    // What the collective reads, row-major on the GPU, made on the compute stream first:
    // a scatter along an inner axis reorders it so NCCL's parts are contiguous.
    let (xd, mut src) = dense(g, x, name)?;
    let outer: usize = x.shape()[..axis_of(kind)].iter().product();
    let read = match kind {
        CollectiveKind::ScatterSum { .. } if outer > 1 && total > 0 => {
            // [outer, n, part] -> [n, outer, part].
            let m = swap_outer(g, xd, outer, n, total / outer, dtype)?;
            src = m.buffer.device_ptr(g.ordinal)? + (m.offset * esize) as u64;
            m
        }
        _ => xd,
    };
    // The collective runs on its own stream after what the compute stream has queued, so
    // the kernels queued next (the rest of a backward pass) overlap it; its output makes
    // the compute stream wait when first read (DeviceMem::wait_pending).
    super::graph::forbid(g.ordinal, "a collective")?;
    let side = g.comm_stream()?;
    let cuda = |e| super::cuda_err(name, e);
    let no_timing = Some(cudarc::driver::sys::CUevent_flags::CU_EVENT_DISABLE_TIMING);
    side.wait(&g.stream()?.record_event(no_timing).map_err(cuda)?)
        .map_err(cuda)?;
    let stream = side.cu_stream() as *mut std::ffi::c_void;
    // Moving data: any dtype travels as bytes.
    let bytes = |elems: usize| elems * esize;
    let mem = g.alloc(total * esize)?;
    let dst = mem.ptr();
    if total > 0 {
        // Safety (every call): `src` and `dst` hold what each collective reads and writes
        // (n × total elements for a scatter's input, total for its output), on this GPU,
        // kept alive until the collective's stream has passed it (keep_until; `dst` is the
        // output's).
        match *kind {
            CollectiveKind::Sum | CollectiveKind::Max | CollectiveKind::Min => {
                let (ty, per) = rtype.expect("checked above");
                let red = match kind {
                    CollectiveKind::Sum => RedOp::Sum,
                    CollectiveKind::Max => RedOp::Max,
                    _ => RedOp::Min,
                };
                unsafe { comm.all_reduce((src, dst, total * per), ty, red, stream)? }
            }
            CollectiveKind::Gather { .. } => {
                let count = total / n;
                unsafe { comm.all_gather((src, dst, bytes(count)), NcclType::U8, stream)? }
            }
            CollectiveKind::ScatterSum { .. } => {
                let (ty, per) = rtype.expect("checked above");
                unsafe { comm.reduce_scatter((src, dst, total * per), ty, stream)? }
            }
            CollectiveKind::Broadcast { root } => unsafe {
                comm.broadcast((src, dst, bytes(total)), NcclType::U8, root, stream)?
            },
            // Taken by the host transport above.
            CollectiveKind::Send { .. } | CollectiveKind::Recv { .. } => {}
        }
    }
    let done = Arc::new(side.record_event(no_timing).map_err(cuda)?);
    g.keep_until(done.clone(), vec![read]);
    mem.set_pending(done);
    let out = out_data(Buffer::on_device(mem), &[total]);
    let out = match kind {
        CollectiveKind::Gather { .. } if outer > 1 && total > 0 => {
            // NCCL leaves rank k's part at [k, outer, part]; the output wants
            // [outer, k, part] (the copy waits for the gather).
            let part = total / n / outer;
            swap_outer(g, out, n, outer, part, dtype)?
        }
        _ => out,
    };
    Ok(Some(vec![with_shape(out, oshape)]))
}
