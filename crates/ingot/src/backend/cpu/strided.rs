//! Walking strided layouts: the general path every CPU kernel falls back to, and the helpers
//! that split elementwise work across threads with a contiguous fast path.

use crate::array::{Array, Data};
use crate::buffer::Buffer;
use crate::dtype::Element;
use crate::shape::{
    broadcast_strides, collapse_dims, contiguous_strides, is_row_contiguous, size_of,
};
use crate::Result;
use rayon::prelude::*;
use std::sync::Arc;

/// Below this many elements a kernel runs on the calling thread: a rayon hand-off costs
/// more than the work.
pub const PAR_MIN: usize = 1 << 15;

/// Calls `f` with the element offset of every index of `shape`, in row-major order.
pub fn for_each_offset(
    shape: &[usize],
    strides: &[isize],
    offset: isize,
    mut f: impl FnMut(isize),
) {
    let n = size_of(shape);
    if n == 0 {
        return;
    }
    let (cshape, cstrides) = collapse_dims(shape, &[strides]);
    rows::<1>(&cshape, [&cstrides[0]], [offset], 0, n, |_, [o], len| {
        let s = cstrides[0][cstrides[0].len() - 1];
        for i in 0..len as isize {
            f(o + i * s);
        }
    });
}

/// Walks `len` elements starting at row-major position `start` of `shape`, one row (a run
/// along the last dim) at a time: `f(out_pos, offsets, run_len)`; offsets are the row's first
/// element in each operand, whose last-dim stride the caller knows.
pub fn rows<const K: usize>(
    shape: &[usize],
    strides: [&[isize]; K],
    bases: [isize; K],
    start: usize,
    len: usize,
    mut f: impl FnMut(usize, [isize; K], usize),
) {
    let nd = shape.len();
    if len == 0 {
        return;
    }
    if nd == 0 {
        f(start, bases, 1);
        return;
    }
    let mut idx = vec![0usize; nd];
    let mut rem = start;
    for d in (0..nd).rev() {
        idx[d] = rem % shape[d];
        rem /= shape[d];
    }
    let mut offs = bases;
    for k in 0..K {
        for d in 0..nd {
            offs[k] += idx[d] as isize * strides[k][d];
        }
    }
    let last = nd - 1;
    let mut pos = start;
    let end = start + len;
    while pos < end {
        let run = (shape[last] - idx[last]).min(end - pos);
        f(pos, offs, run);
        pos += run;
        if pos >= end {
            break;
        }
        // advance to the next row
        for k in 0..K {
            offs[k] += (run as isize) * strides[k][last];
        }
        idx[last] += run;
        let mut d = last;
        while idx[d] == shape[d] && d > 0 {
            for k in 0..K {
                offs[k] -= (shape[d] as isize) * strides[k][d];
            }
            idx[d] = 0;
            d -= 1;
            idx[d] += 1;
            for k in 0..K {
                offs[k] += strides[k][d];
            }
        }
    }
}

/// A view of an evaluated input as the kernel sees it: typed elements plus a layout
/// broadcast to the output shape.
pub struct View<'a, T> {
    pub data: &'a [T],
    pub strides: Vec<isize>,
    pub offset: isize,
}

impl<'a, T: Element> View<'a, T> {
    pub fn new(d: &'a Data, shape: &[usize], out_shape: &[usize]) -> Self {
        View {
            data: d.buffer.as_slice::<T>(),
            strides: broadcast_strides(shape, &d.strides, out_shape),
            offset: d.offset as isize,
        }
    }
    /// The elements as one row-major slice, when the layout allows.
    pub fn contiguous(&self, out_shape: &[usize]) -> Option<&'a [T]> {
        let n = size_of(out_shape);
        if is_row_contiguous(out_shape, &self.strides) {
            let o = self.offset as usize;
            Some(&self.data[o..o + n])
        } else {
            None
        }
    }
}

/// Chunk length for splitting `n` elements across threads.
fn chunk_len(n: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    (n / (threads * 4)).max(PAR_MIN / 2).max(1)
}

/// A fresh row-major output of `n` elements of `O`, filled by `fill(chunk_start, chunk)`,
/// split across threads when large. `fill` must write every element of its chunk: the
/// buffer starts with unspecified contents (poisoned in debug builds).
pub fn fill_output<O: Element>(n: usize, fill: impl Fn(usize, &mut [O]) + Sync) -> Result<Buffer> {
    let mut buf = Buffer::uninit(n * std::mem::size_of::<O>())?;
    let out = buf.as_slice_mut::<O>();
    if n < PAR_MIN {
        fill(0, out);
    } else {
        let c = chunk_len(n);
        out.par_chunks_mut(c)
            .enumerate()
            .for_each(|(i, ch)| fill(i * c, ch));
    }
    Ok(buf)
}

/// Runs `update(chunk_start, chunk)` over a buffer the kernel owns, split across threads
/// when large.
fn update_in_place<T: Element>(buf: &mut Buffer, update: impl Fn(usize, &mut [T]) + Sync) {
    let out = buf.as_slice_mut::<T>();
    let n = out.len();
    if n < PAR_MIN {
        update(0, out);
    } else {
        let c = chunk_len(n);
        out.par_chunks_mut(c)
            .enumerate()
            .for_each(|(i, ch)| update(i * c, ch));
    }
}

/// The buffer of input `a` for the kernel to write its output into, when `a` has the
/// output's dtype `O` and shape, fills its whole buffer row-major, and nobody else holds it.
/// Saves an allocation (and its page faults) per op in chains like `(x * 2 + 1).max(0)`.
fn donated<O: Element>(a: &Array, out_shape: &[usize]) -> Option<Buffer> {
    if a.dtype() != O::DTYPE || a.shape() != out_shape {
        return None;
    }
    let n = size_of(out_shape);
    let d = a.try_donate_if(|d| {
        d.offset == 0
            && d.buffer.len() == n * std::mem::size_of::<O>()
            && is_row_contiguous(out_shape, &d.strides)
    })?;
    // try_donate_if checked that this is the buffer's only holder.
    Arc::try_unwrap(d.buffer).ok()
}

/// `x` as type `O`, which the caller has checked is the same type as `A`.
#[inline(always)]
fn same<A: Element, O: Element>(x: A) -> O {
    debug_assert_eq!(A::DTYPE, O::DTYPE);
    // Safety: one dtype is one Rust type, so A and O are the same type here.
    unsafe { std::mem::transmute_copy::<A, O>(&x) }
}

/// Wraps a fresh row-major buffer as kernel output data.
pub fn out_data(buf: Buffer, shape: &[usize]) -> Data {
    Data {
        buffer: Arc::new(buf),
        strides: contiguous_strides(shape),
        offset: 0,
    }
}

/// Elementwise map of one input to a fresh output of the same shape.
pub fn map1<A: Element, O: Element>(a: &Array, f: impl Fn(A) -> O + Sync + Send) -> Result<Data> {
    let shape = a.shape().to_vec();
    if A::DTYPE == O::DTYPE {
        if let Some(mut buf) = donated::<O>(a, &shape) {
            update_in_place::<O>(&mut buf, |_, xs| {
                for x in xs {
                    *x = f(same::<O, A>(*x));
                }
            });
            return Ok(out_data(buf, &shape));
        }
    }
    let da = a.ready_data();
    let va = View::<A>::new(&da, &shape, &shape);
    let n = size_of(&shape);
    let buf = if let Some(sa) = va.contiguous(&shape) {
        fill_output::<O>(n, |s, out| {
            let n = out.len();
            for (o, &x) in out.iter_mut().zip(&sa[s..s + n]) {
                *o = f(x);
            }
        })?
    } else {
        let (cs, st) = collapse_dims(&shape, &[&va.strides]);
        fill_output::<O>(n, |s, out| {
            let sl = st[0][st[0].len() - 1];
            rows::<1>(
                &cs,
                [&st[0]],
                [va.offset],
                s,
                out.len(),
                |pos, [oa], run| {
                    let o = &mut out[pos - s..pos - s + run];
                    for (i, slot) in o.iter_mut().enumerate() {
                        *slot = f(va.data[(oa + i as isize * sl) as usize]);
                    }
                },
            );
        })?
    };
    Ok(out_data(buf, &shape))
}

/// [`map1`] for a kernel that works on whole runs (`f(src, out)`, equal lengths), so it can
/// pick its own SIMD width; strided inputs are gathered run by run.
pub fn map1_slices<A: Element, O: Element>(
    a: &Array,
    f: impl Fn(&[A], &mut [O]) + Sync + Send,
) -> Result<Data> {
    let shape = a.shape().to_vec();
    let n = size_of(&shape);
    let da = a.ready_data();
    let va = View::<A>::new(&da, &shape, &shape);
    let buf = if let Some(sa) = va.contiguous(&shape) {
        fill_output::<O>(n, |s, out| f(&sa[s..s + out.len()], out))?
    } else {
        let (cs, st) = collapse_dims(&shape, &[&va.strides]);
        fill_output::<O>(n, |s, out| {
            let sl = st[0][st[0].len() - 1];
            let mut tmp: Vec<A> = Vec::new();
            rows::<1>(
                &cs,
                [&st[0]],
                [va.offset],
                s,
                out.len(),
                |pos, [oa], run| {
                    tmp.clear();
                    tmp.extend((0..run as isize).map(|i| va.data[(oa + i * sl) as usize]));
                    f(&tmp, &mut out[pos - s..pos - s + run]);
                },
            );
        })?
    };
    Ok(out_data(buf, &shape))
}

/// Elementwise map of two inputs of the output's shape (broadcast views allowed).
pub fn map2<A: Element, B: Element, O: Element>(
    a: &Array,
    b: &Array,
    out_shape: &[usize],
    f: impl Fn(A, B) -> O + Sync + Send,
) -> Result<Data> {
    if A::DTYPE == O::DTYPE {
        if let Some(buf) = donated::<O>(a, out_shape) {
            return map_into::<O, B>(buf, b, out_shape, |x, y| f(same::<O, A>(x), y));
        }
    }
    if B::DTYPE == O::DTYPE {
        if let Some(buf) = donated::<O>(b, out_shape) {
            return map_into::<O, A>(buf, a, out_shape, |y, x| f(x, same::<O, B>(y)));
        }
    }
    let (da, db) = (a.ready_data(), b.ready_data());
    let va = View::<A>::new(&da, a.shape(), out_shape);
    let vb = View::<B>::new(&db, b.shape(), out_shape);
    let n = size_of(out_shape);
    let buf = match (va.contiguous(out_shape), vb.contiguous(out_shape)) {
        (Some(sa), Some(sb)) => fill_output::<O>(n, |s, out| {
            let e = s + out.len();
            for ((o, &x), &y) in out.iter_mut().zip(&sa[s..e]).zip(&sb[s..e]) {
                *o = f(x, y);
            }
        })?,
        _ => {
            let (cs, st) = collapse_dims(out_shape, &[&va.strides, &vb.strides]);
            fill_output::<O>(n, |s, out| {
                let (la, lb) = (st[0][st[0].len() - 1], st[1][st[1].len() - 1]);
                rows::<2>(
                    &cs,
                    [&st[0], &st[1]],
                    [va.offset, vb.offset],
                    s,
                    out.len(),
                    |pos, [oa, ob], run| {
                        let o = &mut out[pos - s..pos - s + run];
                        if la == 1 && lb == 0 {
                            let y = vb.data[ob as usize];
                            let xs = &va.data[oa as usize..oa as usize + run];
                            for (slot, &x) in o.iter_mut().zip(xs) {
                                *slot = f(x, y);
                            }
                        } else if la == 0 && lb == 1 {
                            let x = va.data[oa as usize];
                            let ys = &vb.data[ob as usize..ob as usize + run];
                            for (slot, &y) in o.iter_mut().zip(ys) {
                                *slot = f(x, y);
                            }
                        } else {
                            for (i, slot) in o.iter_mut().enumerate() {
                                let i = i as isize;
                                *slot = f(
                                    va.data[(oa + i * la) as usize],
                                    vb.data[(ob + i * lb) as usize],
                                );
                            }
                        }
                    },
                );
            })?
        }
    };
    Ok(out_data(buf, out_shape))
}

/// `out[i] = f(out[i], other[i])` over a donated row-major buffer of the output's shape;
/// `other` may be any view broadcast to it.
fn map_into<O: Element, B: Element>(
    mut buf: Buffer,
    other: &Array,
    out_shape: &[usize],
    f: impl Fn(O, B) -> O + Sync + Send,
) -> Result<Data> {
    let db = other.ready_data();
    let vb = View::<B>::new(&db, other.shape(), out_shape);
    let (cs, st) = collapse_dims(out_shape, &[&vb.strides]);
    let lb = st[0][st[0].len() - 1];
    update_in_place::<O>(&mut buf, |s, out| {
        rows::<1>(
            &cs,
            [&st[0]],
            [vb.offset],
            s,
            out.len(),
            |pos, [ob], run| {
                let o = &mut out[pos - s..pos - s + run];
                if lb == 1 {
                    let ys = &vb.data[ob as usize..ob as usize + run];
                    for (slot, &y) in o.iter_mut().zip(ys) {
                        *slot = f(*slot, y);
                    }
                } else if lb == 0 {
                    let y = vb.data[ob as usize];
                    for slot in o.iter_mut() {
                        *slot = f(*slot, y);
                    }
                } else {
                    for (i, slot) in o.iter_mut().enumerate() {
                        *slot = f(*slot, vb.data[(ob + i as isize * lb) as usize]);
                    }
                }
            },
        );
    });
    Ok(out_data(buf, out_shape))
}

/// Elementwise map of three inputs of the output's shape.
pub fn map3<A: Element, B: Element, C: Element, O: Element>(
    a: &Array,
    b: &Array,
    c: &Array,
    out_shape: &[usize],
    f: impl Fn(A, B, C) -> O + Sync + Send,
) -> Result<Data> {
    let (da, db, dc) = (a.ready_data(), b.ready_data(), c.ready_data());
    let va = View::<A>::new(&da, a.shape(), out_shape);
    let vb = View::<B>::new(&db, b.shape(), out_shape);
    let vc = View::<C>::new(&dc, c.shape(), out_shape);
    let n = size_of(out_shape);
    let (cs, st) = collapse_dims(out_shape, &[&va.strides, &vb.strides, &vc.strides]);
    let buf = fill_output::<O>(n, |s, out| {
        let l = [
            st[0][st[0].len() - 1],
            st[1][st[1].len() - 1],
            st[2][st[2].len() - 1],
        ];
        rows::<3>(
            &cs,
            [&st[0], &st[1], &st[2]],
            [va.offset, vb.offset, vc.offset],
            s,
            out.len(),
            |pos, o3, run| {
                let o = &mut out[pos - s..pos - s + run];
                for (i, slot) in o.iter_mut().enumerate() {
                    let i = i as isize;
                    *slot = f(
                        va.data[(o3[0] + i * l[0]) as usize],
                        vb.data[(o3[1] + i * l[1]) as usize],
                        vc.data[(o3[2] + i * l[2]) as usize],
                    );
                }
            },
        );
    })?;
    Ok(out_data(buf, out_shape))
}

/// An evaluated host array's data as one row-major run of elements starting on the
/// element's alignment, for code that reads its bytes: the array's own data when it is so
/// laid out, else a copy. (A window of a mapped file may start off the alignment.)
pub fn row_major_data(a: &Array) -> Result<Data> {
    let d = a.ready_data();
    let addr = d.buffer.as_bytes().as_ptr() as usize + d.offset * a.dtype().size();
    let aligned = addr % a.dtype().size().clamp(1, 8) == 0;
    if aligned && is_row_contiguous(a.shape(), &d.strides) {
        return Ok(d);
    }
    let spec = [(a.shape().to_vec(), a.dtype())];
    // The caller reads `a` again: its buffer must not become the copy.
    let copy = crate::array::with_donation(false, || {
        crate::backend::cpu::eval(&crate::op::Op::Copy, std::slice::from_ref(a), &spec)
    });
    Ok(copy?.remove(0))
}

/// The bytes of the elements of `d`, row-major data (from [`row_major_data`]) of `a`.
pub fn row_major_bytes<'a>(d: &'a Data, a: &Array) -> &'a [u8] {
    let sz = a.dtype().size();
    &d.buffer.as_bytes()[d.offset * sz..(d.offset + a.size()) * sz]
}

/// A row-major contiguous copy of an evaluated array's elements as `T` (no conversion).
pub fn contiguous_vec<T: Element>(a: &Array) -> Vec<T> {
    crate::array::gather_elems::<T>(&a.ready_data(), a.shape())
}

/// The input as one row-major slice: borrowed when already contiguous, else copied.
pub fn contiguous_cow<'a, T: Element>(d: &'a Data, shape: &[usize]) -> std::borrow::Cow<'a, [T]> {
    let n = size_of(shape);
    if is_row_contiguous(shape, &d.strides) {
        std::borrow::Cow::Borrowed(&d.buffer.as_slice::<T>()[d.offset..d.offset + n])
    } else {
        std::borrow::Cow::Owned(crate::array::gather_elems::<T>(d, shape))
    }
}
