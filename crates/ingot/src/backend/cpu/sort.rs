//! CPU kernels for the sort family: sort, argsort, partition, argpartition, searchsorted.
//!
//! Every dtype gets a total order (`SortElem::cmp_total`): NaN last as NumPy, complex
//! lexicographic with NumPy's NaN classes. Rows along the axis are independent, so they are
//! spread across rayon threads; a single long row uses rayon's parallel sorts instead. The
//! output is written with the sorted axis innermost (each row one contiguous chunk, no
//! scattered writes) and returned with strides that present it in the input's axis order.

use super::strided::{contiguous_cow, for_each_offset, map1, PAR_MIN};
use super::Outs;
use crate::array::{Array, Data};
use crate::buffer::Buffer;
use crate::dtype::{DType, Element};
use crate::op::Op;
use crate::shape::{contiguous_strides, size_of};
use crate::{Error, Result};
use half::{bf16, f16};
use num_complex::Complex32;
use rayon::prelude::*;
use std::cmp::Ordering;
use std::sync::Arc;

/// An element with NumPy's sort order.
pub trait SortElem: Element {
    /// Equal elements are indistinguishable, so an unstable value sort is exact.
    const IDENTICAL_WHEN_EQUAL: bool;
    fn cmp_total(&self, other: &Self) -> Ordering;
    /// Is this a NaN (any NaN part for complex)? `unique` collapses these into one value.
    fn has_nan(&self) -> bool {
        false
    }
}

macro_rules! ord_elem {
    ($($t:ty),*) => {$(
        impl SortElem for $t {
            const IDENTICAL_WHEN_EQUAL: bool = true;
            #[inline]
            fn cmp_total(&self, other: &Self) -> Ordering {
                self.cmp(other)
            }
        }
    )*};
}
ord_elem!(bool, u8, u16, u32, u64, i8, i16, i32, i64);

/// Float order with NaN after everything (all NaNs equal); -0.0 == 0.0 as NumPy compares.
#[inline]
fn fcmp<F: PartialOrd + Copy>(a: F, b: F) -> Ordering {
    if a < b {
        Ordering::Less
    } else if a > b {
        Ordering::Greater
    } else if a == b {
        Ordering::Equal
    } else {
        #[allow(clippy::eq_op)]
        let (an, bn) = (a != a, b != b);
        match (an, bn) {
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            _ => Ordering::Equal,
        }
    }
}

macro_rules! float_elem {
    ($($t:ty => $conv:expr),*) => {$(
        impl SortElem for $t {
            // -0.0 and 0.0 compare equal but differ: keep a stable order for them.
            const IDENTICAL_WHEN_EQUAL: bool = false;
            #[inline]
            fn cmp_total(&self, other: &Self) -> Ordering {
                let f = $conv;
                fcmp(f(*self), f(*other))
            }
            #[inline]
            fn has_nan(&self) -> bool {
                let f = $conv;
                f(*self).is_nan()
            }
        }
    )*};
}
float_elem!(f32 => |x: f32| x, f64 => |x: f64| x, f16 => |x: f16| x.to_f32(), bf16 => |x: bf16| x.to_f32());

impl SortElem for Complex32 {
    const IDENTICAL_WHEN_EQUAL: bool = false;
    /// NumPy's complex order: [R + Rj, R + nanj, nan + Rj, nan + nanj], each class sorted
    /// by its non-NaN parts.
    #[inline]
    fn cmp_total(&self, other: &Self) -> Ordering {
        let class = |z: &Complex32| (z.re.is_nan() as u8) * 2 + z.im.is_nan() as u8;
        let (ca, cb) = (class(self), class(other));
        if ca != cb {
            return ca.cmp(&cb);
        }
        match ca {
            0 => fcmp(self.re, other.re).then_with(|| fcmp(self.im, other.im)),
            1 => fcmp(self.re, other.re),
            2 => fcmp(self.im, other.im),
            _ => Ordering::Equal,
        }
    }
    fn has_nan(&self) -> bool {
        self.re.is_nan() || self.im.is_nan()
    }
}

pub fn eval(op: &Op, inputs: &[Array], outs: Outs) -> Result<Vec<Data>> {
    let x = &inputs[0];
    let d = match op {
        Op::Sort { axis } => {
            crate::dispatch_dtype!(x.dtype(), T => along_axis::<T, T>(x, *axis, Mode::Sort)?)
        }
        Op::ArgSort { axis } => {
            crate::dispatch_dtype!(x.dtype(), T => along_axis::<T, i64>(x, *axis, Mode::ArgSort)?)
        }
        Op::Partition { kth, axis } => crate::dispatch_dtype!(x.dtype(), T =>
            along_axis::<T, T>(x, *axis, Mode::Partition(*kth))?),
        Op::ArgPartition { kth, axis } => crate::dispatch_dtype!(x.dtype(), T =>
            along_axis::<T, i64>(x, *axis, Mode::ArgPartition(*kth))?),
        Op::SearchSorted { right } => {
            let v = &inputs[1];
            if outs[0].1 != DType::I64 || v.dtype() != x.dtype() {
                return Err(Error::invalid(
                    "searchsorted",
                    format!("internal: dtypes {} and {}", x.dtype(), v.dtype()),
                ));
            }
            crate::dispatch_dtype!(x.dtype(), T => searchsorted::<T>(x, v, *right)?)
        }
        _ => return Err(super::not_here(op)),
    };
    Ok(vec![d])
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Sort,
    ArgSort,
    Partition(usize),
    ArgPartition(usize),
}

/// The rows of `x` along `axis`: the element offset of each row's first element (rows in
/// row-major order of the other dims) and the stride along the axis.
struct Rows<'a, T> {
    src: &'a [T],
    bases: Vec<isize>,
    stride: isize,
    n: usize,
}

impl<T: Element> Rows<'_, T> {
    #[inline]
    fn copy_row(&self, r: usize, out: &mut [T]) {
        let b = self.bases[r];
        if self.stride == 1 {
            out.copy_from_slice(&self.src[b as usize..b as usize + self.n]);
        } else {
            for (k, o) in out.iter_mut().enumerate() {
                *o = self.src[(b + k as isize * self.stride) as usize];
            }
        }
    }
    /// The row as (value, index) pairs in `pairs`.
    #[inline]
    fn pairs_row(&self, r: usize, pairs: &mut Vec<(T, u32)>) {
        pairs.clear();
        let b = self.bases[r];
        pairs.extend((0..self.n).map(|k| (self.src[(b + k as isize * self.stride) as usize], k as u32)));
    }
}

/// Value order, then index: a strict total order on pairs, so an unstable sort of pairs
/// gives exactly the stable argsort, and selections are deterministic.
#[inline]
fn pair_cmp<T: SortElem>(a: &(T, u32), b: &(T, u32)) -> Ordering {
    a.0.cmp_total(&b.0).then(a.1.cmp(&b.1))
}

fn along_axis<T: SortElem, O: Element>(x: &Array, axis: usize, mode: Mode) -> Result<Data> {
    let shape = x.shape();
    let name = match mode {
        Mode::Sort => "sort",
        Mode::ArgSort => "argsort",
        Mode::Partition(_) => "partition",
        Mode::ArgPartition(_) => "argpartition",
    };
    if axis >= shape.len() {
        return Err(Error::invalid(
            name,
            format!("internal: axis {axis} for {} dims", shape.len()),
        ));
    }
    let n = shape[axis];
    if n > u32::MAX as usize {
        return Err(Error::unsupported(
            name,
            format!("axis of length {n} is longer than 2^32 - 1"),
        ));
    }
    if let Mode::Partition(k) | Mode::ArgPartition(k) = mode {
        if k >= n {
            return Err(Error::invalid(name, format!("kth(={k}) out of bounds ({n})")));
        }
    }
    let d = x.ready_data();
    let rest_shape: Vec<usize> = (0..shape.len()).filter(|&i| i != axis).map(|i| shape[i]).collect();
    let rest_strides: Vec<isize> = (0..shape.len())
        .filter(|&i| i != axis)
        .map(|i| d.strides[i])
        .collect();
    let nrows = size_of(&rest_shape);
    // Output layout: the other dims row-major, the axis innermost.
    let rest_out = contiguous_strides(&rest_shape);
    let mut out_strides = Vec::with_capacity(shape.len());
    let mut it = rest_out.iter();
    for i in 0..shape.len() {
        out_strides.push(if i == axis {
            1
        } else {
            *it.next().unwrap() * n.max(1) as isize
        });
    }
    let total = nrows * n;
    let mut buf = Buffer::zeroed(total * std::mem::size_of::<O>())?;
    if total > 0 {
        let mut bases = Vec::with_capacity(nrows);
        for_each_offset(&rest_shape, &rest_strides, d.offset as isize, |o| bases.push(o));
        let rows = Rows {
            src: d.buffer.as_slice::<T>(),
            bases,
            stride: d.strides[axis],
            n,
        };
        let out = buf.as_slice_mut::<O>();
        // Few long rows: parallelize inside each row instead of across rows.
        let inner_par = n >= PAR_MIN && nrows < rayon::current_num_threads();
        let run = |r: usize, ch: &mut [O], pairs: &mut Vec<(T, u32)>| {
            row_kernel::<T, O>(&rows, r, ch, pairs, mode, inner_par)
        };
        if total < PAR_MIN || inner_par {
            let mut pairs = Vec::new();
            for (r, ch) in out.chunks_mut(n).enumerate() {
                run(r, ch, &mut pairs);
            }
        } else {
            out.par_chunks_mut(n)
                .enumerate()
                .with_min_len((PAR_MIN / n).max(1))
                .for_each_init(Vec::new, |pairs, (r, ch)| run(r, ch, pairs));
        }
    }
    Ok(Data {
        buffer: Arc::new(buf),
        strides: out_strides,
        offset: 0,
    })
}

/// Sorts or selects one row into `out` (T for values, i64 for indices).
fn row_kernel<T: SortElem, O: Element>(
    rows: &Rows<T>,
    r: usize,
    out: &mut [O],
    pairs: &mut Vec<(T, u32)>,
    mode: Mode,
    par: bool,
) {
    match mode {
        Mode::Sort | Mode::Partition(_) => {
            // O == T here (dispatch guarantees it).
            let out: &mut [T] = cast_slice_mut::<O, T>(out);
            rows.copy_row(r, out);
            let cmp = |a: &T, b: &T| a.cmp_total(b);
            match mode {
                Mode::Partition(k) => {
                    out.select_nth_unstable_by(k, cmp);
                }
                _ if T::IDENTICAL_WHEN_EQUAL => {
                    if par {
                        out.par_sort_unstable_by(cmp)
                    } else {
                        out.sort_unstable_by(cmp)
                    }
                }
                _ => {
                    if par {
                        out.par_sort_by(cmp)
                    } else {
                        out.sort_by(cmp)
                    }
                }
            }
        }
        Mode::ArgSort | Mode::ArgPartition(_) => {
            let out: &mut [i64] = cast_slice_mut::<O, i64>(out);
            rows.pairs_row(r, pairs);
            match mode {
                Mode::ArgPartition(k) => {
                    pairs.select_nth_unstable_by(k, pair_cmp);
                }
                _ => {
                    if par {
                        pairs.par_sort_unstable_by(pair_cmp)
                    } else {
                        pairs.sort_unstable_by(pair_cmp)
                    }
                }
            }
            for (o, p) in out.iter_mut().zip(pairs.iter()) {
                *o = p.1 as i64;
            }
        }
    }
}

/// Reinterprets a slice of `A` as `B` where the caller knows they are the same type.
fn cast_slice_mut<A: Element, B: Element>(s: &mut [A]) -> &mut [B] {
    assert_eq!(A::DTYPE, B::DTYPE, "internal: element type mismatch");
    // SAFETY: A and B are the same type (their DTYPEs match and each dtype has one Rust type).
    unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr() as *mut B, s.len()) }
}

/// Indices where `v`'s elements would be inserted into the sorted 1-D `a` (binary search in
/// the same total order the sorts use).
fn searchsorted<T: SortElem>(a: &Array, v: &Array, right: bool) -> Result<Data> {
    let da = a.ready_data();
    let sorted = contiguous_cow::<T>(&da, a.shape());
    let s: &[T] = &sorted;
    if right {
        map1::<T, i64>(v, |x| {
            s.partition_point(|e| e.cmp_total(&x) != Ordering::Greater) as i64
        })
    } else {
        map1::<T, i64>(v, |x| s.partition_point(|e| e.cmp_total(&x) == Ordering::Less) as i64)
    }
}
