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
    let Some(comm) = crate::distributed::nccl_comm(ranks, *tag, g.ordinal)? else {
        return Ok(None);
    };
    let stream = g.stream.cu_stream() as *mut std::ffi::c_void;
    let n = comm.size;
    let esize = dtype.size();
    let total = size_of(oshape);
    let alloc = |elems: usize| g.alloc(elems * esize);
    // Moving data: any dtype travels as bytes.
    let bytes = |elems: usize| elems * esize;
    let out = match *kind {
        CollectiveKind::Sum | CollectiveKind::Max | CollectiveKind::Min => {
            let (ty, per) = rtype.expect("checked above");
            let red = match kind {
                CollectiveKind::Sum => RedOp::Sum,
                CollectiveKind::Max => RedOp::Max,
                _ => RedOp::Min,
            };
            let (_x, src) = dense(g, &inputs[0], name)?;
            let mem = alloc(total)?;
            if total > 0 {
                // Safety: both buffers hold `total` elements on this GPU, and the caching
                // allocator reuses `_x`'s memory only for work queued after this.
                unsafe { comm.all_reduce(src, mem.ptr(), total * per, ty, red, stream)? };
            }
            out_data(Buffer::on_device(mem), oshape)
        }
        CollectiveKind::Gather { axis } => {
            let x = &inputs[0];
            let count = x.shape().iter().product::<usize>();
            let (_x, src) = dense(g, x, name)?;
            let mem = alloc(total)?;
            if count > 0 {
                // Safety: `mem` holds n × count elements.
                unsafe { comm.all_gather(src, mem.ptr(), bytes(count), NcclType::U8, stream)? };
            }
            let outer: usize = x.shape()[..axis].iter().product();
            let gathered = out_data(Buffer::on_device(mem), &[total]);
            if outer <= 1 || count == 0 {
                with_shape(gathered, oshape)
            } else {
                // NCCL leaves rank k's part at [k, outer, part]; the output wants
                // [outer, k, part].
                let part = count / outer;
                with_shape(swap_outer(g, gathered, n, outer, part, dtype)?, oshape)
            }
        }
        CollectiveKind::ScatterSum { axis } => {
            let (ty, per) = rtype.expect("checked above");
            let x = &inputs[0];
            let (xd, src) = dense(g, x, name)?;
            let outer: usize = x.shape()[..axis].iter().product();
            let mem = alloc(total)?;
            if total > 0 {
                // NCCL gives rank k the k-th contiguous part: [outer, n, part] is reordered
                // to [n, outer, part] first.
                let (_moved, src) = if outer <= 1 {
                    (None, src)
                } else {
                    let m = swap_outer(g, xd, outer, n, total / outer, dtype)?;
                    let p = m.buffer.device_ptr(g.ordinal)? + (m.offset * esize) as u64;
                    (Some(m), p)
                };
                // Safety: `src` holds n × total elements, `mem` total.
                unsafe { comm.reduce_scatter(src, mem.ptr(), total * per, ty, stream)? };
            }
            out_data(Buffer::on_device(mem), oshape)
        }
        CollectiveKind::Broadcast { root } => {
            let (_x, src) = dense(g, &inputs[0], name)?;
            let mem = alloc(total)?;
            if total > 0 {
                // Safety: both hold `total` elements (src is read on the root only).
                unsafe {
                    comm.broadcast(src, mem.ptr(), bytes(total), NcclType::U8, root, stream)?
                };
            }
            out_data(Buffer::on_device(mem), oshape)
        }
        CollectiveKind::Send { peer } => {
            let (x, src) = dense(g, &inputs[0], name)?;
            if total > 0 {
                // Safety: `src` holds `total` elements.
                unsafe { comm.send(src, bytes(total), NcclType::U8, peer, stream)? };
            }
            x
        }
        CollectiveKind::Recv { peer } => {
            let mem = alloc(total)?;
            if total > 0 {
                // Safety: `mem` holds `total` elements.
                unsafe { comm.recv(mem.ptr(), bytes(total), NcclType::U8, peer, stream)? };
            }
            out_data(Buffer::on_device(mem), oshape)
        }
    };
    Ok(Some(vec![out]))
}
