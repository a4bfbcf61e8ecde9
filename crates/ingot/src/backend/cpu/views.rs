//! View ops: a new layout over the same buffer wherever the strides allow, a copy otherwise.

use super::strided::out_data;
use super::Outs;
use crate::array::{gather_elems, Array, Data};
use crate::buffer::Buffer;
use crate::dtype::DType;
use crate::op::Op;
use crate::shape::{broadcast_strides, is_row_contiguous, reshape_strides, size_of};
use crate::Result;
use std::sync::Arc;

/// `d`, a layout of `shape`, viewed as the shape `to` that `shape` broadcasts to: stride 0
/// along the broadcast dims, over the same buffer.
pub(crate) fn broadcast_view(d: Data, shape: &[usize], to: &[usize]) -> Data {
    Data {
        strides: broadcast_strides(shape, &d.strides, to),
        buffer: d.buffer,
        offset: d.offset,
    }
}

pub fn eval(op: &Op, inputs: &[Array], outs: Outs) -> Result<Vec<Data>> {
    let x = &inputs[0];
    let d = x.ready_data();
    let out_shape = &outs[0].0;
    let v = match op {
        Op::Reshape => match reshape_strides(x.shape(), &d.strides, out_shape) {
            Some(strides) => Data {
                buffer: d.buffer,
                strides,
                offset: d.offset,
            },
            None => contiguous_copy(x, &d)?.pipe_reshape(out_shape),
        },
        Op::Transpose { perm } => Data {
            strides: perm.iter().map(|&p| d.strides[p]).collect(),
            buffer: d.buffer,
            offset: d.offset,
        },
        Op::Slice { start, step } => {
            let mut offset = d.offset as isize;
            for (i, &s) in start.iter().enumerate() {
                if out_shape[i] > 0 {
                    offset += s as isize * d.strides[i];
                }
            }
            let strides = d.strides.iter().zip(step).map(|(&s, &k)| s * k).collect();
            // An empty slice may point past the end; keep its offset in range.
            let offset = if size_of(out_shape) == 0 {
                0
            } else {
                offset as usize
            };
            Data {
                buffer: d.buffer,
                strides,
                offset,
            }
        }
        Op::Broadcast => broadcast_view(d, x.shape(), out_shape),
        Op::Diagonal {
            offset: k,
            axis1,
            axis2,
        } => {
            let (s1, s2) = (d.strides[*axis1], d.strides[*axis2]);
            let mut strides: Vec<isize> = (0..x.ndim())
                .filter(|&i| i != *axis1 && i != *axis2)
                .map(|i| d.strides[i])
                .collect();
            strides.push(s1 + s2);
            let mut offset = d.offset as isize;
            if size_of(out_shape) > 0 {
                offset += if *k >= 0 { k * s2 } else { -k * s1 };
            }
            let offset = if size_of(out_shape) == 0 {
                0
            } else {
                offset as usize
            };
            Data {
                buffer: d.buffer,
                strides,
                offset,
            }
        }
        Op::ViewDtype(to) => view_dtype(x, &d, *to, out_shape)?,
        Op::Copy => contiguous_copy(x, &d)?,
        _ => return Err(super::not_here(op)),
    };
    Ok(vec![v])
}

trait ReshapeData {
    fn pipe_reshape(self, shape: &[usize]) -> Data;
}
impl ReshapeData for Data {
    fn pipe_reshape(self, shape: &[usize]) -> Data {
        Data {
            strides: crate::shape::contiguous_strides(shape),
            ..self
        }
    }
}

/// A row-major copy of `x`'s elements.
pub fn contiguous_copy(x: &Array, d: &Data) -> Result<Data> {
    let shape = x.shape();
    let buf = crate::dispatch_dtype!(x.dtype(), T => {
        let v = gather_elems::<T>(d, shape);
        Buffer::from_slice(&v)?
    });
    Ok(out_data(buf, shape))
}

fn view_dtype(x: &Array, d: &Data, to: DType, out_shape: &[usize]) -> Result<Data> {
    let from = x.dtype();
    let aligned = (d.offset * from.size()) % to.size() == 0;
    let base = if is_row_contiguous(x.shape(), &d.strides) && aligned && to != DType::Bool {
        d.clone()
    } else {
        contiguous_copy(x, d)?
    };
    let byte_off = base.offset * from.size();
    let data = if to == DType::Bool {
        // bool bytes must be 0 or 1: normalize in a copy.
        let n = size_of(out_shape);
        let mut buf = Buffer::zeroed(n)?;
        let src = &base.buffer.as_bytes()[byte_off..byte_off + n];
        for (o, &b) in buf.as_bytes_mut().iter_mut().zip(src) {
            *o = (b != 0) as u8;
        }
        return Ok(out_data(buf, out_shape));
    } else {
        base.buffer
    };
    Ok(Data {
        buffer: Arc::clone(&data),
        strides: crate::shape::contiguous_strides(out_shape),
        offset: byte_off / to.size(),
    })
}
