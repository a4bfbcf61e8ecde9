//! CPU kernels: indexing. Every index array (any integer dtype) is checked and resolved
//! (negative indices wrap) in one pass before anything is written, so an index out of bounds
//! is an error and never a partial write. Gathers copy whole rows with `copy_from_slice`;
//! updates (put_along_axis, scatter, slice_update) write into the destination's own buffer
//! when it is donated, else into a fresh copy, and run in parallel only over parts of the
//! output that no two threads can both touch, so repeated indices stay correct.

use super::strided::{contiguous_cow, fill_output, out_data, rows, PAR_MIN};
use super::Outs;
use crate::array::{gather_elems, Array, Data};
use crate::buffer::Buffer;
use crate::dtype::{DType, Element};
use crate::op::{Op, ScatterKind};
use crate::ops::index::kind_name;
use crate::shape::{collapse_dims, contiguous_strides, is_row_contiguous, size_of};
use crate::{Error, Result};
use half::{bf16, f16};
use num_complex::Complex32;
use rayon::prelude::*;
use std::sync::Arc;

pub fn eval(op: &Op, inputs: &[Array], outs: Outs) -> Result<Vec<Data>> {
    let out_shape = &outs[0].0;
    let d = match op {
        Op::Take { axis } => take(inputs, *axis, out_shape)?,
        Op::TakeAlongAxis { axis } => take_along_axis(inputs, *axis)?,
        Op::PutAlongAxis { axis, kind } => put_along_axis(inputs, *axis, *kind)?,
        Op::Gather { axes, slice_sizes } => gather(inputs, axes, slice_sizes)?,
        Op::Scatter { axes, kind } => scatter(inputs, axes, *kind)?,
        Op::SliceUpdate { start, step, kind } => slice_update(inputs, start, step, *kind)?,
        _ => return Err(super::not_here(op)),
    };
    Ok(vec![d])
}

// ---- indices ------------------------------------------------------------------------------

/// Calls `f` with an index array's values in row-major order as i64 (borrowed when it is
/// already a contiguous int64 array). u64 values past i64::MAX saturate, staying out of bounds.
fn with_indices<R>(idx: &Array, f: impl FnOnce(&[i64]) -> R) -> R {
    let d = idx.ready_data();
    let shape = idx.shape();
    match idx.dtype() {
        DType::I64 => f(&contiguous_cow::<i64>(&d, shape)),
        DType::U64 => {
            let v: Vec<i64> = gather_elems::<u64>(&d, shape)
                .into_iter()
                .map(|x| i64::try_from(x).unwrap_or(i64::MAX))
                .collect();
            f(&v)
        }
        // The narrower integers convert exactly through f64.
        dt => crate::dispatch_dtype!(dt, T => {
            let v: Vec<i64> = contiguous_cow::<T>(&d, shape).iter().map(|x| x.to_f64() as i64).collect();
            f(&v)
        }),
    }
}

fn out_of_bounds(op: &str, v: i64, axis: usize, n: usize) -> Error {
    Error::invalid(
        op,
        format!("index {v} is out of bounds for axis {axis} with size {n}"),
    )
}

/// Index `v` on an axis of size `n` where a slice of `size` must fit after it.
#[inline]
pub(crate) fn resolve(op: &str, v: i64, axis: usize, n: usize, size: usize) -> Result<usize> {
    let r = if v < 0 { v.wrapping_add(n as i64) } else { v };
    if r < 0 || r >= n as i64 {
        return Err(out_of_bounds(op, v, axis, n));
    }
    let r = r as usize;
    if r + size > n {
        return Err(Error::invalid(
            op,
            format!(
                "index {v} with slice size {size} runs past the end of axis {axis} with size {n}"
            ),
        ));
    }
    Ok(r)
}

/// Resolves every index of `idx` on an axis of size `n` (in parallel when there are many).
fn resolve_all(op: &str, idx: &Array, axis: usize, n: usize) -> Result<Vec<usize>> {
    resolve_sized(op, idx, axis, n, 1)
}

/// [`resolve_all`] where a slice of `size` must fit after each index.
pub(crate) fn resolve_sized(
    op: &str,
    idx: &Array,
    axis: usize,
    n: usize,
    size: usize,
) -> Result<Vec<usize>> {
    with_indices(idx, |v| {
        if v.len() >= PAR_MIN {
            v.par_iter()
                .map(|&x| resolve(op, x, axis, n, size))
                .collect()
        } else {
            v.iter().map(|&x| resolve(op, x, axis, n, size)).collect()
        }
    })
}

/// Element offsets (row-major, contiguous `a`) where each index tuple's slice starts:
/// `sum(start[axes[i]] * stride[axes[i]])`, checking that a slice of `sizes` fits.
fn slice_bases(
    op: &str,
    idx: &[Array],
    axes: &[usize],
    a_shape: &[usize],
    sizes: &[usize],
    nb: usize,
) -> Result<Vec<usize>> {
    let strides = contiguous_strides(a_shape);
    let mut bases = vec![0usize; nb];
    for (i, &ax) in idx.iter().zip(axes) {
        let (n, size, st) = (a_shape[ax], sizes[ax], strides[ax] as usize);
        with_indices(i, |v| -> Result<()> {
            for (b, &x) in bases.iter_mut().zip(v) {
                *b += resolve(op, x, ax, n, size)? * st;
            }
            Ok(())
        })?;
    }
    Ok(bases)
}

/// A slice of `sizes` inside a row-major array of `shape`, as rows: the offset of each row's
/// first element and the row length (runs of consecutive elements, merged across axes where
/// the slice spans the whole axis).
fn slice_rows(shape: &[usize], sizes: &[usize]) -> (Vec<usize>, usize) {
    let strides = contiguous_strides(shape);
    let (mut cs, mut cst) = collapse_dims(sizes, &[&strides]);
    let mut st = cst.pop().unwrap_or_default();
    let row_len = if st.last() == Some(&1) {
        st.pop();
        cs.pop().unwrap_or(1)
    } else {
        1
    };
    let mut offs = Vec::with_capacity(size_of(&cs));
    super::strided::for_each_offset(&cs, &st, 0, |o| offs.push(o as usize));
    (offs, row_len)
}

// ---- gathers ------------------------------------------------------------------------------

/// Fills `out` (the elements from `s` on of a row-major output made of rows of `row_len`) by
/// copying row `r` from `src[src_row(r)..]`.
#[inline]
fn copy_rows<T: Copy>(
    src: &[T],
    row_len: usize,
    s: usize,
    out: &mut [T],
    src_row: impl Fn(usize) -> usize,
) {
    if row_len == 1 {
        for (k, o) in out.iter_mut().enumerate() {
            *o = src[src_row(s + k)];
        }
        return;
    }
    let end = s + out.len();
    let mut pos = s;
    while pos < end {
        let (r, c) = (pos / row_len, pos % row_len);
        let run = (row_len - c).min(end - pos);
        let so = src_row(r) + c;
        out[pos - s..pos - s + run].copy_from_slice(&src[so..so + run]);
        pos += run;
    }
}

/// `take`: a seen as (outer, n, inner); output (outer, m, inner), one row of `inner` per index.
fn take(inputs: &[Array], axis: usize, out_shape: &[usize]) -> Result<Data> {
    let (a, idx) = (&inputs[0], &inputs[1]);
    let n = a.shape()[axis];
    let inner: usize = a.shape()[axis + 1..].iter().product();
    let pos = resolve_all("take", idx, axis, n)?;
    let m = pos.len();
    let total = size_of(out_shape);
    let d = a.ready_data();
    crate::dispatch_dtype!(a.dtype(), T => {
        let src = contiguous_cow::<T>(&d, a.shape());
        let buf = fill_output::<T>(total, |s, out| {
            copy_rows(&src, inner, s, out, |r| ((r / m) * n + pos[r % m]) * inner)
        })?;
        Ok(out_data(buf, out_shape))
    })
}

/// `take_along_axis`: a (outer, n, inner) and indices (outer, m, inner) of the output's shape.
fn take_along_axis(inputs: &[Array], axis: usize) -> Result<Data> {
    let (a, idx) = (&inputs[0], &inputs[1]);
    let shape = idx.shape();
    let n = a.shape()[axis];
    let m = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let pos = resolve_all("take_along_axis", idx, axis, n)?;
    let d = a.ready_data();
    crate::dispatch_dtype!(a.dtype(), T => {
        if pos.is_empty() {
            return Ok(out_data(Buffer::zeroed(0)?, shape));
        }
        let src = contiguous_cow::<T>(&d, a.shape());
        let buf = fill_output::<T>(pos.len(), |s, out| {
            // Counters instead of a division per element.
            let mut c = s % inner;
            let mut j = (s / inner) % m;
            let mut base = (s / (inner * m)) * n * inner;
            for (o, &p) in out.iter_mut().zip(&pos[s..]) {
                *o = src[base + p * inner + c];
                c += 1;
                if c == inner {
                    c = 0;
                    j += 1;
                    if j == m {
                        j = 0;
                        base += n * inner;
                    }
                }
            }
        })?;
        Ok(out_data(buf, shape))
    })
}

/// MLX-style gather: for each index tuple, a slice of `slice_sizes` of `a`.
fn gather(inputs: &[Array], axes: &[usize], slice_sizes: &[usize]) -> Result<Data> {
    let a = &inputs[0];
    let idx = &inputs[1..];
    let bshape: Vec<usize> = idx.first().map(|i| i.shape().to_vec()).unwrap_or_default();
    let nb = size_of(&bshape);
    let bases = slice_bases("gather", idx, axes, a.shape(), slice_sizes, nb)?;
    let (row_offs, row_len) = slice_rows(a.shape(), slice_sizes);
    let nr = row_offs.len();
    let total = nb * nr * row_len;
    let mut out_shape = bshape;
    out_shape.extend_from_slice(slice_sizes);
    let d = a.ready_data();
    crate::dispatch_dtype!(a.dtype(), T => {
        let src = contiguous_cow::<T>(&d, a.shape());
        let buf = fill_output::<T>(total, |s, out| {
            copy_rows(&src, row_len, s, out, |r| bases[r / nr] + row_offs[r % nr])
        })?;
        Ok(out_data(buf, &out_shape))
    })
}

// ---- updates ------------------------------------------------------------------------------

/// How an update combines with the value already there. Integers wrap, f16/bf16 compute in
/// f32, max/min let NaN through (as `maximum`/`minimum`), bool adds as OR and multiplies as AND.
pub trait Combine: Element {
    fn add(self, o: Self) -> Self;
    fn mul(self, o: Self) -> Self;
    fn max_of(self, o: Self) -> Self;
    fn min_of(self, o: Self) -> Self;
}
macro_rules! combine_int {
    ($($t:ty),*) => {$(
        impl Combine for $t {
            #[inline] fn add(self, o: Self) -> Self { self.wrapping_add(o) }
            #[inline] fn mul(self, o: Self) -> Self { self.wrapping_mul(o) }
            #[inline] fn max_of(self, o: Self) -> Self { self.max(o) }
            #[inline] fn min_of(self, o: Self) -> Self { self.min(o) }
        }
    )*};
}
combine_int!(u8, u16, u32, u64, i8, i16, i32, i64);
macro_rules! combine_float {
    ($($t:ty),*) => {$(
        impl Combine for $t {
            #[inline] fn add(self, o: Self) -> Self { self + o }
            #[inline] fn mul(self, o: Self) -> Self { self * o }
            #[inline] fn max_of(self, o: Self) -> Self {
                if self.is_nan() || o.is_nan() { self + o } else if o > self { o } else { self }
            }
            #[inline] fn min_of(self, o: Self) -> Self {
                if self.is_nan() || o.is_nan() { self + o } else if o < self { o } else { self }
            }
        }
    )*};
}
combine_float!(f32, f64);
macro_rules! combine_half {
    ($($t:ty),*) => {$(
        impl Combine for $t {
            #[inline] fn add(self, o: Self) -> Self { <$t>::from_f32(self.to_f32() + o.to_f32()) }
            #[inline] fn mul(self, o: Self) -> Self { <$t>::from_f32(self.to_f32() * o.to_f32()) }
            #[inline] fn max_of(self, o: Self) -> Self {
                <$t>::from_f32(self.to_f32().max_of(o.to_f32()))
            }
            #[inline] fn min_of(self, o: Self) -> Self {
                <$t>::from_f32(self.to_f32().min_of(o.to_f32()))
            }
        }
    )*};
}
combine_half!(f16, bf16);
impl Combine for bool {
    #[inline]
    fn add(self, o: Self) -> Self {
        self | o
    }
    #[inline]
    fn mul(self, o: Self) -> Self {
        self & o
    }
    #[inline]
    fn max_of(self, o: Self) -> Self {
        self | o
    }
    #[inline]
    fn min_of(self, o: Self) -> Self {
        self & o
    }
}
impl Combine for Complex32 {
    #[inline]
    fn add(self, o: Self) -> Self {
        self + o
    }
    #[inline]
    fn mul(self, o: Self) -> Self {
        self * o
    }
    // The public ops refuse max/min for complex; lexicographic order keeps this total.
    #[inline]
    fn max_of(self, o: Self) -> Self {
        if (o.re, o.im) > (self.re, self.im) {
            o
        } else {
            self
        }
    }
    #[inline]
    fn min_of(self, o: Self) -> Self {
        if (o.re, o.im) < (self.re, self.im) {
            o
        } else {
            self
        }
    }
}

/// Runs `$body` with `$f` bound to the combining closure of `$kind` for element type `$T`,
/// so each (kind, dtype) pair is its own monomorphized loop.
macro_rules! with_kind {
    ($kind:expr, $T:ty, $f:ident => $body:expr) => {
        match $kind {
            ScatterKind::Set => {
                let $f = |_: $T, u: $T| u;
                $body
            }
            ScatterKind::Add => {
                let $f = |o: $T, u: $T| o.add(u);
                $body
            }
            ScatterKind::Prod => {
                let $f = |o: $T, u: $T| o.mul(u);
                $body
            }
            ScatterKind::Max => {
                let $f = |o: $T, u: $T| o.max_of(u);
                $body
            }
            ScatterKind::Min => {
                let $f = |o: $T, u: $T| o.min_of(u);
                $body
            }
        }
    };
}

/// The destination of an update: `a`'s own buffer when it is donated (held by nothing else)
/// and row-major, so the update costs only its own size; else a fresh row-major copy.
/// Call only after every check that can fail: donation empties the input node.
struct Dest {
    buf: Buffer,
    offset: usize,
    n: usize,
}

impl Dest {
    fn new<T: Element>(a: &Array) -> Result<Dest> {
        let shape = a.shape();
        let n = size_of(shape);
        let d = match a.try_donate() {
            Some(d) if is_row_contiguous(shape, &d.strides) => match Arc::try_unwrap(d.buffer) {
                Ok(buf) => {
                    return Ok(Dest {
                        buf,
                        offset: d.offset,
                        n,
                    })
                }
                Err(buffer) => Data { buffer, ..d },
            },
            Some(d) => d,
            None => a.ready_data(),
        };
        let src = contiguous_cow::<T>(&d, shape);
        let buf = fill_output::<T>(n, |s, out| out.copy_from_slice(&src[s..s + out.len()]))?;
        Ok(Dest { buf, offset: 0, n })
    }
    fn slice<T: Element>(&mut self) -> &mut [T] {
        &mut self.buf.as_slice_mut::<T>()[self.offset..self.offset + self.n]
    }
    fn into_data(self, shape: &[usize]) -> Data {
        Data {
            buffer: Arc::new(self.buf),
            strides: contiguous_strides(shape),
            offset: self.offset,
        }
    }
}

/// A raw pointer that threads may share because each writes a disjoint set of elements.
#[derive(Clone, Copy)]
struct SyncPtr<T>(*mut T);
unsafe impl<T> Send for SyncPtr<T> {}
unsafe impl<T> Sync for SyncPtr<T> {}
impl<T> SyncPtr<T> {
    // A method, so closures capture the whole (Sync) wrapper, not the raw pointer field.
    #[inline]
    fn get(self) -> *mut T {
        self.0
    }
}

/// Number of parallel tasks worth making for `work` elements.
fn tasks_for(work: usize) -> usize {
    if work < PAR_MIN {
        1
    } else {
        (rayon::current_num_threads() * 4)
            .min(work / (PAR_MIN / 2))
            .max(1)
    }
}

/// `put_along_axis`: output (outer, n, inner); indices and values (outer, m, inner).
fn put_along_axis(inputs: &[Array], axis: usize, kind: ScatterKind) -> Result<Data> {
    let (a, idx, vals) = (&inputs[0], &inputs[1], &inputs[2]);
    let op = kind_name("put_along_axis", kind);
    let n = a.shape()[axis];
    let m = idx.shape()[axis];
    let inner: usize = a.shape()[axis + 1..].iter().product();
    let pos = resolve_all(&op, idx, axis, n)?;
    let dv = vals.ready_data();
    crate::dispatch_dtype!(a.dtype(), T => {
        let v = contiguous_cow::<T>(&dv, vals.shape());
        let mut dest = Dest::new::<T>(a)?;
        let out = dest.slice::<T>();
        let (bo, bi) = (n * inner, m * inner);
        if pos.is_empty() || bo == 0 {
            return Ok(dest.into_data(a.shape()));
        }
        // Each outer block of the output is written only by its own block of indices, so
        // blocks run in parallel; within a block indices apply in row-major order.
        with_kind!(kind, T, f => {
            let block = |(ob, blk): (usize, &mut [T])| {
                let (p, vv) = (&pos[ob * bi..(ob + 1) * bi], &v[ob * bi..(ob + 1) * bi]);
                for j in 0..m {
                    for c in 0..inner {
                        let q = p[j * inner + c] * inner + c;
                        blk[q] = f(blk[q], vv[j * inner + c]);
                    }
                }
            };
            if pos.len() >= PAR_MIN && out.len() > bo {
                out.par_chunks_mut(bo).enumerate().for_each(block);
            } else {
                out.chunks_mut(bo).enumerate().for_each(block);
            }
        });
        Ok(dest.into_data(a.shape()))
    })
}

/// MLX-style scatter: inputs (a, idx_0..idx_k, updates of shape B + S).
fn scatter(inputs: &[Array], axes: &[usize], kind: ScatterKind) -> Result<Data> {
    let op = kind_name("scatter", kind);
    let a = &inputs[0];
    let k = axes.len();
    let idx = &inputs[1..=k];
    let upd = &inputs[k + 1];
    let nbd = upd.ndim() - a.ndim();
    let nb = size_of(&upd.shape()[..nbd]);
    let sizes = &upd.shape()[nbd..];
    let bases = slice_bases(&op, idx, axes, a.shape(), sizes, nb)?;
    let (row_offs, row_len) = slice_rows(a.shape(), sizes);
    let nr = row_offs.len();
    let ns = nr * row_len;
    // With slices one element thick on every indexed axis, distinct slice elements land on
    // distinct output elements whatever the indices: threads may split the slice.
    let disjoint = axes.iter().all(|&ax| sizes[ax] == 1);
    let du = upd.ready_data();
    crate::dispatch_dtype!(a.dtype(), T => {
        let u = contiguous_cow::<T>(&du, upd.shape());
        let mut dest = Dest::new::<T>(a)?;
        let out = SyncPtr(dest.slice::<T>().as_mut_ptr());
        let tasks = if disjoint { tasks_for(nb * ns) } else { 1 };
        // A task is a range of slice elements [e0, e1) applied for every index tuple in order.
        let per = ns.div_ceil(tasks).max(1);
        with_kind!(kind, T, f => {
            let run = |t: usize| {
                let (e0, e1) = (t * per, ((t + 1) * per).min(ns));
                for b in 0..nb {
                    let ub = &u[b * ns..(b + 1) * ns];
                    let mut e = e0;
                    while e < e1 {
                        let (r, c) = (e / row_len, e % row_len);
                        let len = (row_len - c).min(e1 - e);
                        let q = bases[b] + row_offs[r] + c;
                        // Safety: q..q+len is inside the destination (indices were checked),
                        // and no other task writes these elements (see `disjoint`).
                        let o = unsafe { std::slice::from_raw_parts_mut(out.get().add(q), len) };
                        for (x, &y) in o.iter_mut().zip(&ub[e..e + len]) {
                            *x = f(*x, y);
                        }
                        e += len;
                    }
                }
            };
            if tasks > 1 {
                (0..tasks).into_par_iter().for_each(run);
            } else {
                run(0);
            }
        });
        Ok(dest.into_data(a.shape()))
    })
}

/// `slice_update`: the update (window shape, any layout) combined into the strided window.
fn slice_update(
    inputs: &[Array],
    start: &[usize],
    step: &[isize],
    kind: ScatterKind,
) -> Result<Data> {
    let (a, upd) = (&inputs[0], &inputs[1]);
    let window = upd.shape();
    let n = size_of(window);
    let ostr = contiguous_strides(a.shape());
    let base: isize = start.iter().zip(&ostr).map(|(&s, &t)| s as isize * t).sum();
    let wstr: Vec<isize> = ostr.iter().zip(step).map(|(&t, &k)| t * k).collect();
    let du = upd.ready_data();
    let (cs, st) = collapse_dims(window, &[&wstr, &du.strides]);
    crate::dispatch_dtype!(a.dtype(), T => {
        let src = du.buffer.as_slice::<T>();
        let mut dest = Dest::new::<T>(a)?;
        if n == 0 {
            return Ok(dest.into_data(a.shape()));
        }
        let out = SyncPtr(dest.slice::<T>().as_mut_ptr());
        let tasks = tasks_for(n);
        let per = n.div_ceil(tasks).max(1);
        let (lo, lu) = (st[0][st[0].len() - 1], st[1][st[1].len() - 1]);
        with_kind!(kind, T, f => {
            // Window elements are distinct output elements, so position ranges are disjoint.
            let run = |t: usize| {
                let s = t * per;
                let len = per.min(n.saturating_sub(s));
                rows::<2>(&cs, [&st[0], &st[1]], [base, du.offset as isize], s, len, |_, [oo, ou], cnt| {
                    let p = out.get();
                    if lo == 1 && lu == 1 {
                        // Safety: the window lies inside the destination and tasks are disjoint.
                        let o = unsafe { std::slice::from_raw_parts_mut(p.add(oo as usize), cnt) };
                        for (x, &y) in o.iter_mut().zip(&src[ou as usize..ou as usize + cnt]) {
                            *x = f(*x, y);
                        }
                    } else {
                        for i in 0..cnt as isize {
                            let y = src[(ou + i * lu) as usize];
                            // Safety: as above.
                            unsafe {
                                let x = p.offset(oo + i * lo);
                                *x = f(*x, y);
                            }
                        }
                    }
                });
            };
            if tasks > 1 {
                (0..tasks).into_par_iter().for_each(run);
            } else {
                run(0);
            }
        });
        Ok(dest.into_data(a.shape()))
    })
}

// ---- nonzero ------------------------------------------------------------------------------

/// Row-major flat positions of the nonzero elements of `a` (evaluating it first): NaN is
/// nonzero, -0.0 is zero. Large arrays count per chunk in parallel, then fill in parallel.
pub fn nonzero_flat(a: &Array) -> Result<Vec<i64>> {
    let d = a.data()?;
    crate::dispatch_dtype!(a.dtype(), T => {
        let v = contiguous_cow::<T>(&d, a.shape());
        let zero = T::default();
        Ok(flat_true(&v, |x| x != zero))
    })
}

fn flat_true<T: Copy + Sync>(v: &[T], pred: impl Fn(T) -> bool + Sync) -> Vec<i64> {
    if v.len() < PAR_MIN {
        return (0..v.len() as i64)
            .filter(|&i| pred(v[i as usize]))
            .collect();
    }
    let c = v
        .len()
        .div_ceil(rayon::current_num_threads() * 4)
        .max(PAR_MIN / 2);
    let counts: Vec<usize> = v
        .par_chunks(c)
        .map(|ch| ch.iter().filter(|&&x| pred(x)).count())
        .collect();
    let mut out = vec![0i64; counts.iter().sum()];
    let mut parts: Vec<&mut [i64]> = Vec::with_capacity(counts.len());
    let mut rest = out.as_mut_slice();
    for &k in &counts {
        let (h, t) = rest.split_at_mut(k);
        parts.push(h);
        rest = t;
    }
    parts
        .into_par_iter()
        .zip(v.par_chunks(c))
        .enumerate()
        .for_each(|(i, (part, ch))| {
            let mut w = 0;
            for (j, &x) in ch.iter().enumerate() {
                if pred(x) {
                    part[w] = (i * c + j) as i64;
                    w += 1;
                }
            }
        });
    out
}
