//! CPU kernels: misc family (softmax, grid_sample, Walsh-Hadamard transform, fused
//! attention). Half types
//! compute in f32 and round once; f64 computes in f64.

use super::strided::{contiguous_cow, out_data, PAR_MIN};
use super::{not_here, Outs};
use crate::array::{Array, Data};
use crate::buffer::Buffer;
use crate::dtype::{DType, Element};
use crate::op::{AttentionMask, GridPadding, InterpMode, Op};
use crate::shape::size_of;
use crate::{Error, Result};
use half::{bf16, f16};
use num_traits::{Float, One, Zero};
use rayon::prelude::*;
use std::borrow::Cow;

/// A float element and the type it computes in.
pub(super) trait Fl: Element {
    type C: Float + Send + Sync + Default + std::iter::Sum + std::fmt::Debug;
    fn load(self) -> Self::C;
    fn store(c: Self::C) -> Self;
    fn cf(v: f64) -> Self::C;
    /// e^c, vectorizable for f32.
    fn exp(c: Self::C) -> Self::C;
}
macro_rules! fl {
    ($t:ty, $c:ty, $load:expr, $store:expr, $exp:expr) => {
        impl Fl for $t {
            type C = $c;
            #[inline(always)]
            fn load(self) -> $c {
                $load(self)
            }
            #[inline(always)]
            fn store(c: $c) -> $t {
                $store(c)
            }
            #[inline(always)]
            fn cf(v: f64) -> $c {
                v as $c
            }
            #[inline(always)]
            fn exp(c: $c) -> $c {
                $exp(c)
            }
        }
    };
}
use super::elementwise::exp_f32;
fl!(f32, f32, |x| x, |c| c, exp_f32);
fl!(f64, f64, |x| x, |c| c, f64::exp);
fl!(f16, f32, f16::to_f32, f16::from_f32, exp_f32);
fl!(bf16, f32, bf16::to_f32, bf16::from_f32, exp_f32);

macro_rules! dispatch_float {
    ($op:expr, $dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            DType::F32 => {
                type $T = f32;
                $body
            }
            DType::F64 => {
                type $T = f64;
                $body
            }
            DType::F16 => {
                type $T = f16;
                $body
            }
            DType::BF16 => {
                type $T = bf16;
                $body
            }
            d => Err(Error::invalid($op, format!("kernel got dtype {d}"))),
        }
    };
}
pub(super) use dispatch_float;

pub fn eval(op: &Op, inputs: &[Array], outs: Outs) -> Result<Vec<Data>> {
    let shape = &outs[0].0;
    match op {
        Op::Softmax { axis, log } => dispatch_float!("softmax", inputs[0].dtype(), T => {
            softmax::<T>(&inputs[0], *axis, *log).map(|d| vec![d])
        }),
        Op::CrossEntropy => dispatch_float!("softmax_cross_entropy", inputs[0].dtype(), T => {
            cross_entropy::<T>(&inputs[0], &inputs[1], None).map(|d| vec![d])
        }),
        Op::CrossEntropyGrad => {
            dispatch_float!("softmax_cross_entropy_grad", inputs[0].dtype(), T => {
                cross_entropy::<T>(&inputs[0], &inputs[1], Some(&inputs[2])).map(|d| vec![d])
            })
        }
        Op::Hadamard { scale } => dispatch_float!("hadamard_transform", inputs[0].dtype(), T => {
            hadamard::<T>(&inputs[0], scale.to_f64()).map(|d| vec![d])
        }),
        Op::GridSample {
            mode,
            padding,
            align_corners,
        } => dispatch_float!("grid_sample", inputs[0].dtype(), T => {
            grid_sample::<T>(&inputs[0], &inputs[1], shape, *mode, *padding, *align_corners)
                .map(|d| vec![d])
        }),
        _ => Err(not_here(op)),
    }
}

// ---- softmax cross entropy ---------------------------------------------------------------

/// The row's max (NaN if it holds one) and its sum of exp(x - max), as softmax_row.
#[inline]
fn row_stats<T: Fl>(x: &[T]) -> (T::C, T::C) {
    let m = x.iter().fold(T::C::neg_infinity(), |m, &v| m.max(v.load()));
    let m = if x.iter().any(|v| v.load().is_nan()) {
        T::C::nan()
    } else {
        m
    };
    (m, x.iter().map(|&v| T::exp(v.load() - m)).sum())
}

/// The error for a cross-entropy target past the classes (the CUDA kernel's too).
pub(crate) fn ce_target_error(op: &str, row: usize, classes: usize) -> Error {
    Error::invalid(
        op,
        format!("the target of row {row} is out of bounds for {classes} classes"),
    )
}

/// The loss a row, `(max - x[t]) + log(sum)` (no cancellation against a large max), or
/// with `g` the gradient `(softmax - onehot(t)) * g` in T; rows with a negative target give
/// 0 (ignored), a target past the classes is an error.
fn cross_entropy<T: Fl>(x: &Array, t: &Array, g: Option<&Array>) -> Result<Data>
where
    T::C: Element,
{
    let shape = x.shape().to_vec();
    let v = shape[shape.len() - 1];
    let rows = size_of(&shape) / v;
    let xd = x.ready_data();
    let x = contiguous_cow::<T>(&xd, &shape);
    let td = t.ready_data();
    let t = contiguous_cow::<i64>(&td, t.shape());
    if let Some(r) = t.iter().position(|&c| c >= v as i64) {
        let op = if g.is_some() {
            "softmax_cross_entropy_grad"
        } else {
            "softmax_cross_entropy"
        };
        return Err(ce_target_error(op, r, v));
    }
    // Ok(class), or Err(the value of an ignored or invalid row).
    let target = |r: usize| match usize::try_from(t[r]) {
        Ok(c) if c < v => Ok(c),
        Ok(_) => Err(T::C::nan()),
        Err(_) => Err(T::C::zero()),
    };
    let rows_per = (PAR_MIN / v).max(1);
    let Some(g) = g else {
        let mut buf = Buffer::zeroed(rows * std::mem::size_of::<T::C>())?;
        let out = buf.as_slice_mut::<T::C>();
        out.par_chunks_mut(rows_per).enumerate().for_each(|(k, o)| {
            for (j, l) in o.iter_mut().enumerate() {
                let r = k * rows_per + j;
                *l = match target(r) {
                    Ok(c) => {
                        let row = &x[r * v..(r + 1) * v];
                        let (m, s) = row_stats(row);
                        (m - row[c].load()) + s.ln()
                    }
                    Err(z) => z,
                };
            }
        });
        return Ok(out_data(buf, &shape[..shape.len() - 1]));
    };
    let gd = g.ready_data();
    let g = contiguous_cow::<T::C>(&gd, g.shape());
    let mut buf = Buffer::zeroed(rows * v * std::mem::size_of::<T>())?;
    let out = buf.as_slice_mut::<T>();
    out.par_chunks_mut(rows_per * v)
        .zip(x.par_chunks(rows_per * v))
        .enumerate()
        .for_each(|(k, (o, i))| {
            for (j, (orow, irow)) in o.chunks_mut(v).zip(i.chunks(v)).enumerate() {
                let r = k * rows_per + j;
                let c = match target(r) {
                    Ok(c) => c,
                    Err(z) => {
                        orow.fill(T::store(z));
                        continue;
                    }
                };
                let (m, s) = row_stats(irow);
                let (rs, gr) = (T::C::one() / s, g[r]);
                for (oe, &xe) in orow.iter_mut().zip(irow) {
                    *oe = T::store(T::exp(xe.load() - m) * rs * gr);
                }
                let pc = T::exp(irow[c].load() - m) * rs;
                orow[c] = T::store((pc - T::C::one()) * gr);
            }
        });
    Ok(out_data(buf, &shape))
}

// ---- softmax ---------------------------------------------------------------------------

/// Softmax of one contiguous row: a pass for the max, one for the sum, one write.
#[inline]
fn softmax_row<T: Fl>(x: &[T], out: &mut [T], log: bool) {
    let m = x.iter().fold(T::C::neg_infinity(), |m, &v| m.max(v.load()));
    // A NaN anywhere makes the row NaN, as the formula does (`max` above skips NaNs).
    let m = if x.iter().any(|v| v.load().is_nan()) {
        T::C::nan()
    } else {
        m
    };
    let s: T::C = x.iter().map(|&v| T::exp(v.load() - m)).sum();
    if log {
        // (x - m) - log(s), not x - (m + log(s)): the latter cancels badly for large m.
        let ls = s.ln();
        for (o, &v) in out.iter_mut().zip(x) {
            *o = T::store((v.load() - m) - ls);
        }
    } else {
        let r = T::C::one() / s;
        for (o, &v) in out.iter_mut().zip(x) {
            *o = T::store(T::exp(v.load() - m) * r);
        }
    }
}

fn softmax<T: Fl>(a: &Array, axis: usize, log: bool) -> Result<Data> {
    let shape = a.shape().to_vec();
    let n = size_of(&shape);
    let d = a.ready_data();
    let x = contiguous_cow::<T>(&d, &shape);
    let mut buf = Buffer::zeroed(n * std::mem::size_of::<T>())?;
    let len = shape[axis];
    if n == 0 {
        return Ok(out_data(buf, &shape));
    }
    let inner: usize = shape[axis + 1..].iter().product();
    let out = buf.as_slice_mut::<T>();
    if inner == 1 {
        let rows_per = (PAR_MIN / len).max(1);
        out.par_chunks_mut(rows_per * len)
            .zip(x.par_chunks(rows_per * len))
            .for_each(|(o, i)| {
                for (orow, irow) in o.chunks_mut(len).zip(i.chunks(len)) {
                    softmax_row(irow, orow, log);
                }
            });
    } else {
        // Lines are strided by `inner`: reduce whole rows of the slab at once so the inner
        // loops run over contiguous columns.
        let slab = len * inner;
        let slabs_per = (PAR_MIN / slab).max(1);
        out.par_chunks_mut(slabs_per * slab)
            .zip(x.par_chunks(slabs_per * slab))
            .for_each(|(o, i)| {
                let mut m = vec![T::C::neg_infinity(); inner];
                let mut s = vec![T::C::zero(); inner];
                let mut nan = vec![false; inner];
                for (os, is) in o.chunks_mut(slab).zip(i.chunks(slab)) {
                    m.fill(T::C::neg_infinity());
                    s.fill(T::C::zero());
                    nan.fill(false);
                    for row in is.chunks(inner) {
                        for ((mj, nj), &v) in m.iter_mut().zip(nan.iter_mut()).zip(row) {
                            let v = v.load();
                            *mj = mj.max(v);
                            *nj |= v.is_nan();
                        }
                    }
                    for (mj, &nj) in m.iter_mut().zip(&nan) {
                        if nj {
                            *mj = T::C::nan();
                        }
                    }
                    for row in is.chunks(inner) {
                        for ((sj, &mj), &v) in s.iter_mut().zip(&m).zip(row) {
                            *sj = *sj + T::exp(v.load() - mj);
                        }
                    }
                    if log {
                        for sj in s.iter_mut() {
                            *sj = sj.ln();
                        }
                        for (orow, irow) in os.chunks_mut(inner).zip(is.chunks(inner)) {
                            for (((o, &v), &ls), &mj) in orow.iter_mut().zip(irow).zip(&s).zip(&m) {
                                *o = T::store((v.load() - mj) - ls);
                            }
                        }
                    } else {
                        for sj in s.iter_mut() {
                            *sj = T::C::one() / *sj;
                        }
                        for (orow, irow) in os.chunks_mut(inner).zip(is.chunks(inner)) {
                            for (((o, &v), &r), &mj) in orow.iter_mut().zip(irow).zip(&s).zip(&m) {
                                *o = T::store(T::exp(v.load() - mj) * r);
                            }
                        }
                    }
                }
            });
    }
    Ok(out_data(buf, &shape))
}

// ---- Walsh-Hadamard transform --------------------------------------------------------------

/// In-place fast Walsh-Hadamard transform of one row (length a power of two).
#[inline]
fn fwht<F: Float>(x: &mut [F]) {
    let n = x.len();
    let mut h = 1;
    while h < n {
        for blk in x.chunks_exact_mut(2 * h) {
            let (lo, hi) = blk.split_at_mut(h);
            for (a, b) in lo.iter_mut().zip(hi.iter_mut()) {
                let (u, v) = (*a, *b);
                *a = u + v;
                *b = u - v;
            }
        }
        h *= 2;
    }
}

fn hadamard<T: Fl>(a: &Array, scale: f64) -> Result<Data> {
    let shape = a.shape().to_vec();
    let total = size_of(&shape);
    let d = a.ready_data();
    let x = contiguous_cow::<T>(&d, &shape);
    let mut buf = Buffer::zeroed(total * std::mem::size_of::<T>())?;
    if total == 0 {
        return Ok(out_data(buf, &shape));
    }
    let n = *shape.last().expect("validated: at least 1-d");
    let sc = T::cf(scale);
    let rows_per = (PAR_MIN / n).max(1);
    buf.as_slice_mut::<T>()
        .par_chunks_mut(rows_per * n)
        .zip(x.par_chunks(rows_per * n))
        .for_each_init(
            || vec![T::C::zero(); n],
            |w, (o, i)| {
                for (orow, irow) in o.chunks_mut(n).zip(i.chunks(n)) {
                    for (wj, &v) in w.iter_mut().zip(irow) {
                        *wj = v.load();
                    }
                    fwht(w);
                    for (oj, &v) in orow.iter_mut().zip(w.iter()) {
                        *oj = T::store(v * sc);
                    }
                }
            },
        );
    Ok(out_data(buf, &shape))
}

// ---- grid_sample -------------------------------------------------------------------------

/// PyTorch's reflect_coordinates: reflects `x` into [low/2, high/2] (given doubled).
fn reflect(x: f64, twice_low: i64, twice_high: i64) -> f64 {
    if twice_low == twice_high {
        return 0.0;
    }
    let min = twice_low as f64 / 2.0;
    let span = (twice_high - twice_low) as f64 / 2.0;
    let x = (x - min).abs();
    let extra = x % span;
    let flips = (x / span).floor();
    if flips % 2.0 == 0.0 {
        extra + min
    } else {
        span - extra + min
    }
}

/// PyTorch's grid_sampler_compute_source_index: grid coordinate in [-1, 1] to pixel space,
/// with border clamping or reflection. Non-finite results become -100 (out of bounds), as
/// PyTorch's `safe_downgrade_to_int_range` does.
pub(crate) fn source_index(c: f64, size: usize, padding: GridPadding, align: bool) -> f64 {
    let s = size as f64;
    let mut x = if align {
        (c + 1.0) / 2.0 * (s - 1.0)
    } else {
        ((c + 1.0) * s - 1.0) / 2.0
    };
    let clip = |x: f64| x.max(0.0).min(s - 1.0);
    match padding {
        GridPadding::Zeros => {}
        GridPadding::Border => x = clip(x),
        GridPadding::Reflection => {
            x = if align {
                reflect(x, 0, 2 * (size as i64 - 1))
            } else {
                reflect(x, -1, 2 * size as i64 - 1)
            };
            x = clip(x);
        }
    }
    if x.is_finite() {
        x
    } else {
        -100.0
    }
}

fn grid_sample<T: Fl>(
    input: &Array,
    grid: &Array,
    out_shape: &[usize],
    mode: InterpMode,
    padding: GridPadding,
    align: bool,
) -> Result<Data> {
    let (h, w, c) = (input.shape()[1], input.shape()[2], input.shape()[3]);
    let (ho, wo) = (out_shape[1], out_shape[2]);
    let total = size_of(out_shape);
    let di = input.ready_data();
    let dg = grid.ready_data();
    let x = contiguous_cow::<T>(&di, input.shape());
    let g = contiguous_cow::<T>(&dg, grid.shape());
    let mut buf = Buffer::zeroed(total * std::mem::size_of::<T>())?;
    if total == 0 {
        return Ok(out_data(buf, out_shape));
    }
    let row = wo * c;
    let rows_per = (PAR_MIN / (row * 4).max(1)).max(1);
    buf.as_slice_mut::<T>()
        .par_chunks_mut(rows_per * row)
        .enumerate()
        .for_each_init(
            || vec![T::C::zero(); c],
            |acc, (t, chunk)| {
                for (r, orow) in chunk.chunks_mut(row).enumerate() {
                    let nh = t * rows_per + r; // n * ho + y
                    let n = nh / ho;
                    let img = &x[n * h * w * c..(n + 1) * h * w * c];
                    for (j, opix) in orow.chunks_mut(c).enumerate() {
                        let gi = (nh * wo + j) * 2;
                        let gx = Element::to_f64(g[gi]);
                        let gy = Element::to_f64(g[gi + 1]);
                        let ix = source_index(gx, w, padding, align);
                        let iy = source_index(gy, h, padding, align);
                        let inb = |yy: f64, xx: f64| {
                            yy >= 0.0 && xx >= 0.0 && yy < h as f64 && xx < w as f64
                        };
                        let px = |yy: f64, xx: f64| {
                            let o = (yy as usize * w + xx as usize) * c;
                            &img[o..o + c]
                        };
                        match mode {
                            InterpMode::Nearest => {
                                // Round half to even, as PyTorch's nearbyint.
                                let (xr, yr) = (ix.round_ties_even(), iy.round_ties_even());
                                if inb(yr, xr) {
                                    opix.copy_from_slice(px(yr, xr));
                                }
                            }
                            InterpMode::Bilinear => {
                                let (x0, y0) = (ix.floor(), iy.floor());
                                let (x1, y1) = (x0 + 1.0, y0 + 1.0);
                                let corners = [
                                    (y0, x0, (x1 - ix) * (y1 - iy)),
                                    (y0, x1, (ix - x0) * (y1 - iy)),
                                    (y1, x0, (x1 - ix) * (iy - y0)),
                                    (y1, x1, (ix - x0) * (iy - y0)),
                                ];
                                acc.fill(T::C::zero());
                                for (yy, xx, wt) in corners {
                                    if inb(yy, xx) {
                                        let wt = T::cf(wt);
                                        for (a, &v) in acc.iter_mut().zip(px(yy, xx)) {
                                            *a = *a + v.load() * wt;
                                        }
                                    }
                                }
                                for (o, &a) in opix.iter_mut().zip(acc.iter()) {
                                    *o = T::store(a);
                                }
                            }
                        }
                    }
                }
            },
        );
    Ok(out_data(buf, out_shape))
}

// ---- scaled dot-product attention ---------------------------------------------------------

/// Fused attention (`ops::fast`): each query row's scores live in one per-thread row of S,
/// never an (L, S) matrix. q, k and v are read once in the compute dtype; the mask is read
/// through its strides (a broadcast mask is not expanded).
pub(crate) fn attention_eval(op: &Op, inputs: &[Array], outs: Outs) -> Result<Vec<Data>> {
    let Op::Attention { scale, mask } = op else {
        return Err(not_here(op));
    };
    dispatch_float!("scaled_dot_product_attention", inputs[0].dtype(), T => {
        attention::<T>(inputs, scale.to_f64(), *mask, &outs[0].0).map(|d| vec![d])
    })
}

/// Where row `(bh, i)`'s mask starts, for a mask of shape `(lead..., Hq, L, S)`.
fn mask_row_offset(d: &Data, shape: &[usize], bh: usize, i: usize) -> isize {
    let n = shape.len();
    let mut off = d.offset as isize + i as isize * d.strides[n - 2];
    // bh runs over (lead..., Hq) in row-major order.
    let mut rest = bh;
    for ax in (0..n - 2).rev() {
        let idx = rest % shape[ax];
        rest /= shape[ax];
        off += idx as isize * d.strides[ax];
    }
    off
}

/// The elements of k or v `(lead..., H, S, E)` and where each `(lead, head)` block of
/// `S x E` starts in them. A block whose rows are contiguous is read in place, so the
/// `[.., :len, :]` view of a preallocated KV cache costs no copy; other layouts are copied.
fn head_blocks<'a, T: Element>(d: &'a Data, shape: &[usize]) -> (Cow<'a, [T]>, Vec<usize>) {
    let n = shape.len();
    let (s, e) = (shape[n - 2], shape[n - 1]);
    let blocks = size_of(&shape[..n - 2]);
    if s * e == 0 {
        return (Cow::Borrowed(&[]), vec![0; blocks]);
    }
    let rows_packed =
        (e <= 1 || d.strides[n - 1] == 1) && (s <= 1 || d.strides[n - 2] == e as isize);
    if rows_packed && d.strides[..n - 2].iter().all(|&st| st >= 0) {
        let mut starts = Vec::with_capacity(blocks);
        for b in 0..blocks {
            let (mut rest, mut off) = (b, d.offset as isize);
            for ax in (0..n - 2).rev() {
                off += (rest % shape[ax]) as isize * d.strides[ax];
                rest /= shape[ax];
            }
            starts.push(off as usize);
        }
        return (Cow::Borrowed(d.buffer.as_slice::<T>()), starts);
    }
    let c = contiguous_cow::<T>(d, shape);
    (c, (0..blocks).map(|b| b * s * e).collect())
}

/// `q · k` with eight partial sums, so that the loop vectorizes; k is read in its storage
/// dtype (no converted copy of the keys).
#[inline(always)]
fn dot8<T: Fl>(q: &[T::C], k: &[T]) -> T::C {
    let mut acc = [T::C::zero(); 8];
    let (qc, kc) = (q.chunks_exact(8), k.chunks_exact(8));
    let (qr, kr) = (qc.remainder(), kc.remainder());
    for (x, y) in qc.zip(kc) {
        for t in 0..8 {
            acc[t] = acc[t] + x[t] * y[t].load();
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in qr.iter().zip(kr) {
        s = s + *x * y.load();
    }
    s
}

fn attention<T: Fl>(
    inputs: &[Array],
    scale: f64,
    kind: AttentionMask,
    out_shape: &[usize],
) -> Result<Data>
where
    T::C: Element,
{
    let n = out_shape.len();
    let (qs, ks) = (inputs[0].shape(), inputs[1].shape());
    let (hq, l, e) = (qs[n - 3], qs[n - 2], qs[n - 1]);
    let (hkv, s) = (ks[n - 3], ks[n - 2]);
    let ev = out_shape[n - 1];
    let total = size_of(out_shape);
    let mut buf = Buffer::zeroed(total * std::mem::size_of::<T>())?;
    if total == 0 {
        return Ok(out_data(buf, out_shape));
    }
    let group = hq / hkv.max(1);
    // Operands in their storage dtype (borrowed when row-major), converted as they are read.
    let (qd, kd, vd) = (
        inputs[0].ready_data(),
        inputs[1].ready_data(),
        inputs[2].ready_data(),
    );
    let qc = contiguous_cow::<T>(&qd, inputs[0].shape());
    let (kc, kstart) = head_blocks::<T>(&kd, inputs[1].shape());
    let (vc, vstart) = head_blocks::<T>(&vd, inputs[2].shape());
    let mdata = inputs.get(3).map(|m| m.ready_data());
    let mshape = inputs.get(3).map(|m| m.shape().to_vec());
    // The mask's whole buffer, read through its strides.
    let allow_buf = match (kind, &mdata) {
        (AttentionMask::Allow, Some(d)) => Some(d.buffer.as_slice::<bool>()),
        _ => None,
    };
    let add_buf = match (kind, &mdata) {
        (AttentionMask::Additive, Some(d)) => Some(d.buffer.as_slice::<T::C>()),
        _ => None,
    };
    let sc = T::cf(scale);
    let ninf = T::C::neg_infinity();
    // Rows per task: enough work per task (each row is about 2·S·(E+Ev) flops).
    let min_rows = (PAR_MIN / (s * (e + ev)).max(1)).max(1);
    buf.as_slice_mut::<T>()
        .par_chunks_mut(ev)
        .enumerate()
        .with_min_len(min_rows)
        .for_each_init(
            || {
                (
                    vec![T::C::zero(); s],
                    vec![T::C::zero(); ev],
                    vec![T::C::zero(); e],
                )
            },
            |(row, acc, qrow), (r, out)| {
                let (bh, i) = (r / l, r % l);
                let (b, h) = (bh / hq, bh % hq);
                let kvh = b * hkv + h / group;
                for (x, y) in qrow.iter_mut().zip(&qc[r * e..(r + 1) * e]) {
                    *x = y.load();
                }
                let kblk = &kc[kstart[kvh]..kstart[kvh] + s * e];
                let vblk = &vc[vstart[kvh]..vstart[kvh] + s * ev];
                // Keys past `end` are causally masked (query i sees keys j <= i + S - L).
                let end = match kind {
                    AttentionMask::Causal => (i + s + 1).saturating_sub(l).min(s),
                    _ => s,
                };
                let (moff, mst) = match (&mdata, &mshape) {
                    (Some(d), Some(sh)) => (mask_row_offset(d, sh, bh, i), d.strides[n - 1]),
                    _ => (0, 0),
                };
                let at = |j: usize| (moff + j as isize * mst) as usize;
                let mut m = ninf;
                let mut nan = false;
                let mut any = false;
                for j in 0..end {
                    if allow_buf.is_some_and(|a| !a[at(j)]) {
                        row[j] = ninf;
                        continue;
                    }
                    let mut v = dot8::<T>(qrow, &kblk[j * e..(j + 1) * e]) * sc;
                    if let Some(a) = add_buf {
                        v = v + a[at(j)];
                    }
                    any = true;
                    nan |= v.is_nan();
                    m = m.max(v);
                    row[j] = v;
                }
                if s == 0 {
                    // No keys: an empty weighted sum, as the decomposition gives.
                    out.fill(T::store(T::C::zero()));
                    return;
                }
                // Every key masked, or a NaN among the scores: the softmax is NaN.
                if !any || nan || m == ninf {
                    out.fill(T::store(T::C::nan()));
                    return;
                }
                acc.fill(T::C::zero());
                let mut sum = T::C::zero();
                for j in 0..end {
                    if row[j] == ninf {
                        continue;
                    }
                    let p = T::exp(row[j] - m);
                    sum = sum + p;
                    for (a, x) in acc.iter_mut().zip(&vblk[j * ev..(j + 1) * ev]) {
                        *a = *a + p * x.load();
                    }
                }
                let inv = T::C::one() / sum;
                for (o, &a) in out.iter_mut().zip(acc.iter()) {
                    *o = T::store(a * inv);
                }
            },
        );
    Ok(out_data(buf, out_shape))
}

/// The gradient of fused attention without a mask input (`Op::AttentionGrad`): dq, dk and dv
/// from q, k, v and the output's cotangent g, each row's scores recomputed and never more
/// than one row of them held a thread. A task per key/value head: its query heads' rows all
/// add into its dk and dv, and their dq rows are its own. A row whose softmax is NaN (no key
/// to see, or a NaN or infinite score) makes every dv row NaN and, when it sees keys, its dq
/// row and those keys' dk rows, as the decomposition's gradient does.
pub(crate) fn attention_grad_eval(op: &Op, inputs: &[Array], outs: Outs) -> Result<Vec<Data>> {
    let Op::AttentionGrad { scale, mask } = op else {
        return Err(not_here(op));
    };
    let causal = *mask == AttentionMask::Causal;
    dispatch_float!("scaled_dot_product_attention_grad", inputs[0].dtype(), T => {
        attention_grad::<T>(inputs, scale.to_f64(), causal, outs)
    })
}

fn attention_grad<T: Fl>(
    inputs: &[Array],
    scale: f64,
    causal: bool,
    outs: Outs,
) -> Result<Vec<Data>>
where
    T::C: Element,
{
    let (qs, ks, vs) = (inputs[0].shape(), inputs[1].shape(), inputs[2].shape());
    let n = qs.len();
    let (hq, l, e) = (qs[n - 3], qs[n - 2], qs[n - 1]);
    let (hkv, s, ev) = (ks[n - 3], ks[n - 2], vs[n - 1]);
    let heads = size_of(&ks[..n - 2]);
    let group = hq / hkv.max(1);
    let zero = T::C::zero();
    let mut dq = vec![zero; size_of(qs)];
    let mut dk = vec![zero; size_of(ks)];
    let mut dv = vec![zero; size_of(vs)];
    if heads > 0 && group > 0 && l > 0 && s > 0 && e > 0 && ev > 0 {
        let (qd, kd, vd, gd) = (
            inputs[0].ready_data(),
            inputs[1].ready_data(),
            inputs[2].ready_data(),
            inputs[3].ready_data(),
        );
        let qc = contiguous_cow::<T>(&qd, qs);
        let kc = contiguous_cow::<T>(&kd, ks);
        let vc = contiguous_cow::<T>(&vd, vs);
        let gc = contiguous_cow::<T>(&gd, inputs[3].shape());
        let sc = T::cf(scale);
        let (ninf, nan) = (T::C::neg_infinity(), T::C::nan());
        dq.par_chunks_mut(group * l * e)
            .zip(dk.par_chunks_mut(s * e))
            .zip(dv.par_chunks_mut(s * ev))
            .enumerate()
            .for_each(|(kvh, ((dqb, dkb), dvb))| {
                let kb = &kc[kvh * s * e..(kvh + 1) * s * e];
                let vb = &vc[kvh * s * ev..(kvh + 1) * s * ev];
                let (mut p, mut dp) = (vec![zero; s], vec![zero; s]);
                let (mut qrow, mut grow) = (vec![zero; e], vec![zero; ev]);
                for (hr, dqr) in dqb.chunks_exact_mut(e).enumerate() {
                    // Row i of query head kvh·group + hr / l: its place in q and g.
                    let r = kvh * group * l + hr;
                    let i = hr % l;
                    for (x, y) in qrow.iter_mut().zip(&qc[r * e..(r + 1) * e]) {
                        *x = y.load();
                    }
                    for (x, y) in grow.iter_mut().zip(&gc[r * ev..(r + 1) * ev]) {
                        *x = y.load();
                    }
                    // Query i sees keys j <= i + S - L under the causal mask.
                    let end = if causal {
                        (i + s + 1).saturating_sub(l).min(s)
                    } else {
                        s
                    };
                    let mut m = ninf;
                    let mut bad = false;
                    for j in 0..end {
                        let x = dot8::<T>(&qrow, &kb[j * e..(j + 1) * e]) * sc;
                        bad |= x.is_nan();
                        m = m.max(x);
                        p[j] = x;
                    }
                    let mut z = zero;
                    for pj in &mut p[..end] {
                        *pj = T::exp(*pj - m);
                        z = z + *pj;
                    }
                    if end == 0 || bad || z.is_nan() {
                        dvb.fill(nan);
                        if end > 0 {
                            dqr.fill(nan);
                            dkb[..end * e].fill(nan);
                        }
                        continue;
                    }
                    let inv = T::C::one() / z;
                    // dp_j = g · v_j and D = Σ p_j dp_j; dv_j += p_j g.
                    let mut d = zero;
                    for j in 0..end {
                        p[j] = p[j] * inv;
                        dp[j] = dot8::<T>(&grow, &vb[j * ev..(j + 1) * ev]);
                        d = d + p[j] * dp[j];
                        for (a, &x) in dvb[j * ev..(j + 1) * ev].iter_mut().zip(&grow) {
                            *a = *a + p[j] * x;
                        }
                    }
                    // ds_j = p_j (dp_j - D) · scale; dq += ds_j k_j, dk_j += ds_j q.
                    for j in 0..end {
                        let ds = p[j] * (dp[j] - d) * sc;
                        for (a, x) in dqr.iter_mut().zip(&kb[j * e..(j + 1) * e]) {
                            *a = *a + ds * x.load();
                        }
                        for (a, &x) in dkb[j * e..(j + 1) * e].iter_mut().zip(&qrow) {
                            *a = *a + ds * x;
                        }
                    }
                }
            });
    }
    let store = |c: Vec<T::C>, shape: &[usize]| -> Result<Data> {
        let mut buf = Buffer::zeroed(c.len() * std::mem::size_of::<T>())?;
        for (o, x) in buf.as_slice_mut::<T>().iter_mut().zip(c) {
            *o = T::store(x);
        }
        Ok(out_data(buf, shape))
    };
    Ok(vec![
        store(dq, &outs[0].0)?,
        store(dk, &outs[1].0)?,
        store(dv, &outs[2].0)?,
    ])
}
