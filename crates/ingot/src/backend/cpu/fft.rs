//! CPU kernels: fft family. One axis at a time: every line along the axis is gathered (or
//! borrowed when contiguous), transformed with a cached rustfft/realfft plan and written to
//! a fresh row-major buffer; lines are split across rayon threads.
//!
//! Kernel contract (`Op::Fft`, unnormalized): on the complex steps (every axis of
//! Forward/Inverse, the non-last axes of RealForward/RealInverse) the input line is cropped
//! or zero-padded to the node's length on that axis, so the public ops need no pad op.
//! RealForward transforms the last of `axes` with the input's length N (output N/2+1);
//! RealInverse reads the first N/2+1 bins of the last axis (zero-padded when fewer), N being
//! the node's length, and ignores the imaginary parts of the DC and Nyquist bins.

use super::strided::PAR_MIN;
use super::{not_here, Outs};
use crate::array::{Array, Data};
use crate::buffer::Buffer;
use crate::dtype::{DType, Element};
use crate::op::{FftKind, Op};
use crate::shape::{contiguous_strides, size_of};
use crate::{Error, Result};
use num_complex::Complex32 as C;
use parking_lot::Mutex;
use rayon::prelude::*;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use rustfft::{Fft, FftPlanner};
use std::sync::{Arc, LazyLock};

/// Process-wide plan cache: the planners keep every plan they made, keyed by length, so a
/// size is planned once per process.
struct Planners {
    complex: FftPlanner<f32>,
    real: RealFftPlanner<f32>,
}

static PLANNERS: LazyLock<Mutex<Planners>> = LazyLock::new(|| {
    Mutex::new(Planners {
        complex: FftPlanner::new(),
        real: RealFftPlanner::new(),
    })
});

fn plan_c2c(n: usize, inverse: bool) -> Arc<dyn Fft<f32>> {
    let mut p = PLANNERS.lock();
    if inverse {
        p.complex.plan_fft_inverse(n)
    } else {
        p.complex.plan_fft_forward(n)
    }
}
fn plan_r2c(n: usize) -> Arc<dyn RealToComplex<f32>> {
    PLANNERS.lock().real.plan_fft_forward(n)
}
fn plan_c2r(n: usize) -> Arc<dyn ComplexToReal<f32>> {
    PLANNERS.lock().real.plan_fft_inverse(n)
}

/// A strided source of elements (the kernel input, or the previous axis' buffer).
struct Src<'a, T> {
    data: &'a [T],
    shape: Vec<usize>,
    strides: Vec<isize>,
    offset: isize,
}

/// Raw output pointer shared by tasks that write disjoint elements.
#[derive(Clone, Copy)]
struct SendPtr<T>(*mut T);
unsafe impl<T> Send for SendPtr<T> {}
unsafe impl<T> Sync for SendPtr<T> {}
impl<T> SendPtr<T> {
    /// Through a method, so closures capture the whole (Send) wrapper, not its raw field.
    fn get(&self) -> *mut T {
        self.0
    }
}

/// Line `l` (row-major over the dims other than `axis`) as a slice: borrowed when the axis
/// stride is 1, else gathered into `g`.
fn read_line<'a, T: Copy>(
    src: &'a Src<'a, T>,
    axis: usize,
    l: usize,
    g: &'a mut Vec<T>,
) -> &'a [T] {
    let n = src.shape[axis];
    if n == 0 {
        return &[];
    }
    let mut rem = l;
    let mut off = src.offset;
    for d in (0..src.shape.len()).rev() {
        if d == axis {
            continue;
        }
        let k = rem % src.shape[d];
        rem /= src.shape[d];
        off += k as isize * src.strides[d];
    }
    let s = src.strides[axis];
    if s == 1 {
        return &src.data[off as usize..off as usize + n];
    }
    g.clear();
    g.extend((0..n).map(|k| src.data[(off + k as isize * s) as usize]));
    g
}

/// Applies `line(input_line, output_line, work)` to every line along `axis`, producing a
/// row-major buffer of `src.shape` with `axis` resized to `out_len`.
fn axis_pass<I, O, W>(
    src: &Src<I>,
    axis: usize,
    out_len: usize,
    init: impl Fn() -> W + Sync + Send,
    line: impl Fn(&[I], &mut [O], &mut W) + Sync + Send,
) -> Result<(Buffer, Vec<usize>)>
where
    I: Copy + Send + Sync,
    O: Element,
{
    let mut out_shape = src.shape.clone();
    out_shape[axis] = out_len;
    let total = size_of(&out_shape);
    let mut buf = Buffer::zeroed(total * std::mem::size_of::<O>())?;
    if total == 0 {
        return Ok((buf, out_shape));
    }
    let inner: usize = out_shape[axis + 1..].iter().product();
    let outer: usize = out_shape[..axis].iter().product();
    // Work per task: about PAR_MIN output elements, so small transforms stay on one thread.
    let cost = out_len.max(1) * (usize::BITS - out_len.leading_zeros()).max(1) as usize;
    let out = buf.as_slice_mut::<O>();
    if inner == 1 {
        // Output lines are contiguous: transform straight into them.
        let per_task = (PAR_MIN / cost).max(1);
        out.par_chunks_mut(per_task * out_len)
            .enumerate()
            .for_each_init(
                || (init(), Vec::new()),
                |(w, g), (t, chunk)| {
                    for (j, ol) in chunk.chunks_mut(out_len).enumerate() {
                        let inl = read_line(src, axis, t * per_task + j, g);
                        line(inl, ol, w);
                    }
                },
            );
    } else {
        // Output lines are strided: transform a block of neighbouring lines into a scratch
        // block, then write it back row by row so the stores stay contiguous.
        const B: usize = 16;
        let blocks = inner.div_ceil(B);
        let ptr = SendPtr(out.as_mut_ptr());
        let min_len = (PAR_MIN / (cost * B)).max(1);
        (0..outer * blocks)
            .into_par_iter()
            .with_min_len(min_len)
            .for_each_init(
                || (init(), Vec::new(), vec![O::default(); B * out_len]),
                |(w, g, blk), task| {
                    let (o, b) = (task / blocks, task % blocks);
                    let j0 = b * B;
                    let bw = B.min(inner - j0);
                    for c in 0..bw {
                        let inl = read_line(src, axis, o * inner + j0 + c, g);
                        line(inl, &mut blk[c * out_len..(c + 1) * out_len], w);
                    }
                    let base = o * out_len * inner + j0;
                    for k in 0..out_len {
                        for c in 0..bw {
                            // Tasks own disjoint (outer, column-block) cells of the output.
                            unsafe { *ptr.get().add(base + k * inner + c) = blk[c * out_len + k] };
                        }
                    }
                },
            );
    }
    Ok((buf, out_shape))
}

/// One complex pass along `axis` with the line cropped or zero-padded to `n`.
fn c2c_pass(src: &Src<C>, axis: usize, n: usize, inverse: bool) -> Result<(Buffer, Vec<usize>)> {
    let plan = (n > 0).then(|| plan_c2c(n, inverse));
    let scratch = plan.as_ref().map_or(0, |p| p.get_inplace_scratch_len());
    axis_pass(
        src,
        axis,
        n,
        || vec![C::default(); scratch],
        |inl: &[C], ol: &mut [C], w: &mut Vec<C>| {
            let m = inl.len().min(ol.len());
            ol[..m].copy_from_slice(&inl[..m]);
            ol[m..].fill(C::default());
            if let Some(p) = &plan {
                p.process_with_scratch(ol, w);
            }
        },
    )
}

fn src_of<'a, T: Element>(buf: &'a Buffer, shape: &[usize]) -> Src<'a, T> {
    Src {
        data: buf.as_slice::<T>(),
        shape: shape.to_vec(),
        strides: contiguous_strides(shape),
        offset: 0,
    }
}

/// Complex passes over `axes` (last first), starting from `first` and resizing each axis
/// to `out_shape`. Returns `None` when `axes` is empty.
fn c2c_axes(
    first: &Src<C>,
    axes: &[usize],
    out_shape: &[usize],
    inverse: bool,
) -> Result<Option<(Buffer, Vec<usize>)>> {
    let mut cur: Option<(Buffer, Vec<usize>)> = None;
    for &ax in axes.iter().rev() {
        let next = match &cur {
            None => c2c_pass(first, ax, out_shape[ax], inverse)?,
            Some((b, s)) => c2c_pass(&src_of::<C>(b, s), ax, out_shape[ax], inverse)?,
        };
        cur = Some(next);
    }
    Ok(cur)
}

fn data_of(buf: Buffer, shape: &[usize]) -> Data {
    super::strided::out_data(buf, shape)
}

pub fn eval(op: &Op, inputs: &[Array], outs: Outs) -> Result<Vec<Data>> {
    let Op::Fft { axes, kind } = op else {
        return Err(not_here(op));
    };
    let x = &inputs[0];
    let (oshape, odt) = (&outs[0].0, outs[0].1);
    let d = x.ready_data();
    let check = |want_in: DType, want_out: DType| {
        if x.dtype() != want_in || odt != want_out {
            return Err(Error::invalid(
                "fft",
                format!("kernel got {} -> {odt} for {kind:?}", x.dtype()),
            ));
        }
        Ok(())
    };
    match kind {
        FftKind::Forward | FftKind::Inverse => {
            check(DType::C64, DType::C64)?;
            let src = Src::<C> {
                data: d.buffer.as_slice(),
                shape: x.shape().to_vec(),
                strides: d.strides.clone(),
                offset: d.offset as isize,
            };
            match c2c_axes(&src, axes, oshape, *kind == FftKind::Inverse)? {
                Some((b, s)) => Ok(vec![data_of(b, &s)]),
                None => {
                    let v = super::strided::contiguous_vec::<C>(x);
                    Ok(vec![data_of(Buffer::from_slice(&v)?, oshape)])
                }
            }
        }
        FftKind::RealForward => {
            check(DType::F32, DType::C64)?;
            let (&last, rest) = axes
                .split_last()
                .ok_or_else(|| Error::invalid("rfftn", "no axes to transform"))?;
            let src = Src::<f32> {
                data: d.buffer.as_slice(),
                shape: x.shape().to_vec(),
                strides: d.strides.clone(),
                offset: d.offset as isize,
            };
            let n = x.shape()[last];
            let plan = plan_r2c(n);
            let (b, s) = axis_pass(
                &src,
                last,
                n / 2 + 1,
                || (plan.make_input_vec(), plan.make_scratch_vec()),
                |inl: &[f32], ol: &mut [C], (ib, sc): &mut (Vec<f32>, Vec<C>)| {
                    ib.copy_from_slice(inl);
                    // Lengths are fixed by the plan; the only error is a length mismatch.
                    let r = plan.process_with_scratch(ib, ol, sc);
                    debug_assert!(r.is_ok());
                },
            )?;
            let more = c2c_axes(&src_of::<C>(&b, &s), rest, oshape, false)?;
            match more {
                Some((b2, s2)) => Ok(vec![data_of(b2, &s2)]),
                None => Ok(vec![data_of(b, &s)]),
            }
        }
        FftKind::RealInverse => {
            check(DType::C64, DType::F32)?;
            let (&last, rest) = axes
                .split_last()
                .ok_or_else(|| Error::invalid("irfftn", "no axes to transform"))?;
            let src = Src::<C> {
                data: d.buffer.as_slice(),
                shape: x.shape().to_vec(),
                strides: d.strides.clone(),
                offset: d.offset as isize,
            };
            let n = oshape[last];
            let plan = (n > 0).then(|| plan_c2r(n));
            let bins = n / 2 + 1;
            let run = |s: &Src<C>| {
                axis_pass(
                    s,
                    last,
                    n,
                    || match &plan {
                        Some(p) => (p.make_input_vec(), p.make_scratch_vec()),
                        None => (Vec::new(), Vec::new()),
                    },
                    |inl: &[C], ol: &mut [f32], (cb, sc): &mut (Vec<C>, Vec<C>)| {
                        let Some(p) = &plan else { return };
                        let m = inl.len().min(bins);
                        cb[..m].copy_from_slice(&inl[..m]);
                        cb[m..].fill(C::default());
                        // A real signal's DC (and, for even n, Nyquist) bin is real: drop
                        // the imaginary part as pocketfft does.
                        cb[0].im = 0.0;
                        if n % 2 == 0 {
                            cb[n / 2].im = 0.0;
                        }
                        let r = p.process_with_scratch(cb, ol, sc);
                        debug_assert!(r.is_ok());
                    },
                )
            };
            let (b, s) = match c2c_axes(&src, rest, oshape, true)? {
                Some((b, s)) => run(&src_of::<C>(&b, &s))?,
                None => run(&src)?,
            };
            Ok(vec![data_of(b, &s)])
        }
    }
}
