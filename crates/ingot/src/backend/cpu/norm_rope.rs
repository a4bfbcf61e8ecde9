//! CPU kernels: rms_norm, layer_norm and rope (`ops::fast`). Rows of the last axis run in
//! parallel; x is read in its storage dtype through its strides (a transposed or sliced
//! view is not copied); statistics and angles are f32, or f64 for f64, rounded once.

use super::misc::{dispatch_float, Fl};
use super::strided::{contiguous_vec, out_data, PAR_MIN};
use super::{not_here, Outs};
use crate::array::{Array, Data};
use crate::buffer::Buffer;
use crate::dtype::{DType, Element};
use crate::op::{Op, RopeOffsetKind};
use crate::shape::size_of;
use crate::{Error, Result};
use half::{bf16, f16};
use num_traits::{Float, Zero};
use rayon::prelude::*;

pub fn eval(op: &Op, inputs: &[Array], outs: Outs) -> Result<Vec<Data>> {
    let dt = inputs[0].dtype();
    let d = match op {
        Op::RmsNorm { eps, has_weight } => dispatch_float!("rms_norm", dt, T => {
            norm::<T>(inputs, eps.to_f64(), false, *has_weight, false)
        }),
        Op::LayerNorm {
            eps,
            has_weight,
            has_bias,
        } => dispatch_float!("layer_norm", dt, T => {
            norm::<T>(inputs, eps.to_f64(), true, *has_weight, *has_bias)
        }),
        Op::Rope {
            dims,
            traditional,
            base,
            scale,
            offset,
        } => dispatch_float!("rope", dt, T => {
            let p = RopeParams {
                dims: *dims,
                traditional: *traditional,
                base: base.map(|b| b.to_f64()),
                scale: scale.to_f64(),
                offset: *offset,
            };
            rope::<T>(inputs, &p)
        }),
        _ => Err(not_here(op)),
    }?;
    debug_assert_eq!(outs[0].0, inputs[0].shape());
    Ok(vec![d])
}

/// An evaluated array read row by row along its last axis, through its strides.
struct Rows<'a, T> {
    buf: &'a [T],
    lead: Vec<usize>,
    lead_st: Vec<isize>,
    off: isize,
    st: isize,
    len: usize,
}

impl<'a, T: Element> Rows<'a, T> {
    fn new(d: &'a Data, shape: &[usize]) -> Self {
        let n = shape.len();
        Rows {
            buf: d.buffer.as_slice::<T>(),
            lead: shape[..n - 1].to_vec(),
            lead_st: d.strides[..n - 1].to_vec(),
            off: d.offset as isize,
            st: d.strides[n - 1],
            len: shape[n - 1],
        }
    }

    /// Where row `r` (row-major over the leading dims) starts.
    #[inline]
    fn start(&self, r: usize) -> isize {
        let (mut rest, mut o) = (r, self.off);
        for ax in (0..self.lead.len()).rev() {
            o += (rest % self.lead[ax]) as isize * self.lead_st[ax];
            rest /= self.lead[ax];
        }
        o
    }

    #[inline(always)]
    fn at(&self, start: isize, j: usize) -> T {
        self.buf[(start + j as isize * self.st) as usize]
    }

    /// Row `r` converted into `dst`.
    #[inline]
    fn load(&self, r: usize, dst: &mut [T::C])
    where
        T: Fl,
    {
        let s = self.start(r);
        if self.st == 1 {
            let src = &self.buf[s as usize..s as usize + self.len];
            for (o, v) in dst.iter_mut().zip(src) {
                *o = v.load();
            }
        } else {
            for (j, o) in dst.iter_mut().enumerate() {
                *o = self.at(s, j).load();
            }
        }
    }
}

/// `Σ f(v)` with eight partial sums, so that the loop vectorizes.
#[inline(always)]
fn sum8<C: Float>(v: &[C], f: impl Fn(C) -> C) -> C {
    let mut acc = [C::zero(); 8];
    let chunks = v.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for t in 0..8 {
            acc[t] = acc[t] + f(c[t]);
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for &x in rest {
        s = s + f(x);
    }
    s
}

/// A (D,) operand in the compute type.
fn load_vec<T: Fl>(a: &Array) -> Vec<T::C> {
    contiguous_vec::<T>(a).into_iter().map(T::load).collect()
}

/// rms_norm (`center` false: the mean is taken as 0) and layer_norm, one row per task.
fn norm<T: Fl>(inputs: &[Array], eps: f64, center: bool, has_w: bool, has_b: bool) -> Result<Data> {
    let shape = inputs[0].shape().to_vec();
    let n = size_of(&shape);
    let mut buf = Buffer::zeroed(n * std::mem::size_of::<T>())?;
    if n == 0 {
        return Ok(out_data(buf, &shape));
    }
    let d = shape[shape.len() - 1];
    let xd = inputs[0].ready_data();
    let rows = Rows::<T>::new(&xd, &shape);
    let w = has_w.then(|| load_vec::<T>(&inputs[1]));
    let b = has_b.then(|| load_vec::<T>(&inputs[1 + has_w as usize]));
    let (eps, nd) = (T::cf(eps), T::cf(d as f64));
    buf.as_slice_mut::<T>()
        .par_chunks_mut(d)
        .enumerate()
        .with_min_len((PAR_MIN / d).max(1))
        .for_each_init(
            || vec![T::C::zero(); d],
            |row, (r, out)| {
                rows.load(r, row);
                // The decomposition's order: mean, deviations, mean of their squares.
                let mean = if center {
                    sum8(row, |v| v) / nd
                } else {
                    T::C::zero()
                };
                let var = sum8(row, |v| (v - mean) * (v - mean)) / nd;
                let inv = (var + eps).sqrt().recip();
                for (j, (o, &v)) in out.iter_mut().zip(row.iter()).enumerate() {
                    let mut y = (v - mean) * inv;
                    if let Some(w) = &w {
                        y = y * w[j];
                    }
                    if let Some(b) = &b {
                        y = y + b[j];
                    }
                    *o = T::store(y);
                }
            },
        );
    Ok(out_data(buf, &shape))
}

struct RopeParams {
    dims: usize,
    traditional: bool,
    base: Option<f64>,
    scale: f64,
    offset: RopeOffsetKind,
}

/// rope: the cosines and sines of every (offset row, position, frequency) once, then one
/// row of x per task.
fn rope<T: Fl>(inputs: &[Array], p: &RopeParams) -> Result<Data>
where
    T::C: Element,
{
    let shape = inputs[0].shape().to_vec();
    let n = size_of(&shape);
    let mut buf = Buffer::zeroed(n * std::mem::size_of::<T>())?;
    if n == 0 {
        return Ok(out_data(buf, &shape));
    }
    let nd = shape.len();
    let (l, d) = (shape[nd - 2], shape[nd - 1]);
    let (dims, half) = (p.dims, p.dims / 2);
    let (offs, k) = match p.offset {
        RopeOffsetKind::Fixed(o) => (vec![o as i64], 1),
        RopeOffsetKind::Scalar | RopeOffsetKind::PerBatch => (contiguous_vec::<i64>(&inputs[1]), 2),
    };
    let inv: Vec<T::C> = match p.base {
        Some(b) => crate::ops::fast::rope_inv_freqs(b, dims)
            .into_iter()
            .map(T::cf)
            .collect(),
        None => contiguous_vec::<T::C>(&inputs[k]),
    };
    let sc = T::cf(p.scale);
    let mut table = vec![(T::C::zero(), T::C::zero()); offs.len() * l * half];
    if half > 0 {
        table
            .par_chunks_mut(half)
            .enumerate()
            .with_min_len((PAR_MIN / (8 * half)).max(1))
            .for_each(|(q, t)| {
                let pos = T::cf(offs[q / l].wrapping_add((q % l) as i64) as f64) * sc;
                for (c, &f) in t.iter_mut().zip(&inv) {
                    let th = pos * f;
                    *c = (th.cos(), th.sin());
                }
            });
    }
    let per_batch = p.offset == RopeOffsetKind::PerBatch;
    let rows_per_batch = n / d / shape[0].max(1);
    let xd = inputs[0].ready_data();
    let rows = Rows::<T>::new(&xd, &shape);
    let trad = p.traditional;
    buf.as_slice_mut::<T>()
        .par_chunks_mut(d)
        .enumerate()
        .with_min_len((PAR_MIN / d).max(1))
        .for_each(|(r, out)| {
            let s = rows.start(r);
            let ob = if per_batch { r / rows_per_batch } else { 0 };
            let t = &table[(ob * l + r % l) * half..][..half];
            let x = |j: usize| rows.at(s, j).load();
            for (j, &(c, sn)) in t.iter().enumerate() {
                let (i1, i2) = if trad {
                    (2 * j, 2 * j + 1)
                } else {
                    (j, j + half)
                };
                let (a, b) = (x(i1), x(i2));
                out[i1] = T::store(a * c - b * sn);
                out[i2] = T::store(a * sn + b * c);
            }
            for (j, o) in out.iter_mut().enumerate().skip(dims) {
                *o = rows.at(s, j);
            }
        });
    Ok(out_data(buf, &shape))
}
