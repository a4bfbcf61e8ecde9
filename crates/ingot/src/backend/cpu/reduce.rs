//! CPU kernels for reductions, arg-reductions and scans.
//!
//! A reduction is described by a `Red` (accumulator type, identity, fold, combine, finish)
//! and run by one engine that handles every layout:
//! - row mode: the reduced dims end with a stride-1 run; each output folds its runs with
//!   several independent accumulators (so the compiler vectorizes) and combines blocks
//!   pairwise (accuracy), split across threads when the reduction is long;
//! - column mode: the innermost kept dim has stride 1 (reducing a leading axis of a
//!   contiguous array); whole input rows are folded into a row of accumulators;
//! - otherwise strided runs, still walked one row at a time.

use super::strided::{out_data, rows, PAR_MIN};
use super::Outs;
use crate::array::{Array, Data};
use crate::buffer::Buffer;
use crate::dtype::{DType, Element};
use crate::op::{ArgReduceKind, Op, ReduceKind, ScanKind};
use crate::shape::size_of;
use crate::{Error, Result};
use half::{bf16, f16};
use num_complex::Complex32;
use num_traits::Float;
use rayon::prelude::*;
use std::marker::PhantomData;

pub fn eval(op: &Op, inputs: &[Array], outs: Outs) -> Result<Vec<Data>> {
    let x = &inputs[0];
    let (out_shape, out_dtype) = (&outs[0].0, outs[0].1);
    let d = match op {
        Op::Reduce { kind, axes } => reduce(*kind, axes, x, out_shape, out_dtype)?,
        Op::ArgReduce { kind, axis } => arg_reduce(*kind, *axis, x, out_shape)?,
        Op::Scan {
            kind,
            axis,
            reverse,
            inclusive,
        } => scan(*kind, *axis, *reverse, *inclusive, x, out_dtype)?,
        _ => return Err(super::not_here(op)),
    };
    Ok(vec![d])
}

// ---- accumulator types -----------------------------------------------------------------------

/// Sum/product accumulators; integers wrap like NumPy.
pub trait Num: Copy + Send + Sync + 'static {
    const ZERO: Self;
    /// The additive identity that keeps a -0.0 first element: scans start from it, as
    /// NumPy's cumsum keeps -0.0 (its sums start from +0.0).
    const NEG_ZERO: Self;
    const ONE: Self;
    fn add(self, o: Self) -> Self;
    fn mul(self, o: Self) -> Self;
}
macro_rules! num_int {
    ($($t:ty),*) => {$(
        impl Num for $t {
            const ZERO: Self = 0;
            const NEG_ZERO: Self = 0;
            const ONE: Self = 1;
            #[inline(always)] fn add(self, o: Self) -> Self { self.wrapping_add(o) }
            #[inline(always)] fn mul(self, o: Self) -> Self { self.wrapping_mul(o) }
        }
    )*};
}
num_int!(i64, u64);
macro_rules! num_float {
    ($($t:ty),*) => {$(
        impl Num for $t {
            const ZERO: Self = 0.0;
            const NEG_ZERO: Self = -0.0;
            const ONE: Self = 1.0;
            #[inline(always)] fn add(self, o: Self) -> Self { self + o }
            #[inline(always)] fn mul(self, o: Self) -> Self { self * o }
        }
    )*};
}
num_float!(f32, f64);
impl Num for Complex32 {
    const ZERO: Self = Complex32::new(0.0, 0.0);
    const NEG_ZERO: Self = Complex32::new(-0.0, -0.0);
    const ONE: Self = Complex32::new(1.0, 0.0);
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        self + o
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        self * o
    }
}

/// Conversion of an element into the accumulator type `A` of its sums and products.
pub trait Widen<A>: Element {
    fn widen(self) -> A;
}
/// Conversion of an accumulator to the output element.
pub trait Narrow<O> {
    fn narrow(self) -> O;
}
macro_rules! widen {
    ($a:ty: $($t:ty),*) => {$(
        impl Widen<$a> for $t { #[inline(always)] fn widen(self) -> $a { self as $a } }
    )*};
}
widen!(i64: bool, i8, i16, i32, i64);
widen!(u64: u8, u16, u32, u64);
widen!(f32: f32);
widen!(f64: f64);
impl Widen<f32> for f16 {
    #[inline(always)]
    fn widen(self) -> f32 {
        self.to_f32()
    }
}
impl Widen<f32> for bf16 {
    #[inline(always)]
    fn widen(self) -> f32 {
        self.to_f32()
    }
}
impl Widen<Complex32> for Complex32 {
    #[inline(always)]
    fn widen(self) -> Complex32 {
        self
    }
}
macro_rules! narrow_id {
    ($($t:ty),*) => {$(
        impl Narrow<$t> for $t { #[inline(always)] fn narrow(self) -> $t { self } }
    )*};
}
narrow_id!(i64, u64, f32, f64, Complex32);
impl Narrow<f16> for f32 {
    #[inline(always)]
    fn narrow(self) -> f16 {
        f16::from_f32(self)
    }
}
impl Narrow<bf16> for f32 {
    #[inline(always)]
    fn narrow(self) -> bf16 {
        bf16::from_f32(self)
    }
}

/// Real elements compared for max/min/argmax: f16/bf16 compare as f32, bool as u8.
pub trait Ordered: Element {
    type C: Copy + PartialOrd + Send + Sync + 'static;
    const LOWEST: Self::C;
    const HIGHEST: Self::C;
    fn c(self) -> Self::C;
    fn back(c: Self::C) -> Self;
}
macro_rules! ordered_id {
    ($($t:ty: $lo:expr, $hi:expr);*) => {$(
        impl Ordered for $t {
            type C = $t;
            const LOWEST: $t = $lo;
            const HIGHEST: $t = $hi;
            #[inline(always)] fn c(self) -> $t { self }
            #[inline(always)] fn back(c: $t) -> $t { c }
        }
    )*};
}
ordered_id!(u8: 0, u8::MAX; u16: 0, u16::MAX; u32: 0, u32::MAX; u64: 0, u64::MAX;
    i8: i8::MIN, i8::MAX; i16: i16::MIN, i16::MAX; i32: i32::MIN, i32::MAX;
    i64: i64::MIN, i64::MAX; f32: f32::NEG_INFINITY, f32::INFINITY;
    f64: f64::NEG_INFINITY, f64::INFINITY);
impl Ordered for bool {
    type C = u8;
    const LOWEST: u8 = 0;
    const HIGHEST: u8 = 1;
    #[inline(always)]
    fn c(self) -> u8 {
        self as u8
    }
    #[inline(always)]
    fn back(c: u8) -> bool {
        c != 0
    }
}
macro_rules! ordered_half {
    ($($t:ty),*) => {$(
        impl Ordered for $t {
            type C = f32;
            const LOWEST: f32 = f32::NEG_INFINITY;
            const HIGHEST: f32 = f32::INFINITY;
            #[inline(always)] fn c(self) -> f32 { self.to_f32() }
            #[inline(always)] fn back(c: f32) -> $t { <$t>::from_f32(c) }
        }
    )*};
}
ordered_half!(f16, bf16);

/// NaN-propagating maximum (`x != x` is false for integers and folds away).
#[inline(always)]
#[allow(clippy::eq_op)]
fn max_c<C: PartialOrd>(a: C, x: C) -> C {
    if x > a || x != x {
        x
    } else {
        a
    }
}
#[inline(always)]
#[allow(clippy::eq_op)]
fn min_c<C: PartialOrd>(a: C, x: C) -> C {
    if x < a || x != x {
        x
    } else {
        a
    }
}

// ---- reducers ----------------------------------------------------------------------------------

/// One reduction: fold elements into an accumulator, combine accumulators, finish.
pub trait Red: Copy + Send + Sync {
    type In: Element;
    type Acc: Copy + Send + Sync;
    type Out: Element;
    fn init(self) -> Self::Acc;
    fn fold(self, a: Self::Acc, x: Self::In) -> Self::Acc;
    fn comb(self, a: Self::Acc, b: Self::Acc) -> Self::Acc;
    fn fin(self, a: Self::Acc) -> Self::Out;
    /// The result of reducing nothing (and the first output of an exclusive scan).
    fn empty(self) -> Self::Out;
    /// The accumulator a scan starts from.
    fn scan_init(self) -> Self::Acc {
        self.init()
    }
}

struct SumR<I, A, O>(PhantomData<fn() -> (I, A, O)>);
struct ProdR<I, A, O>(PhantomData<fn() -> (I, A, O)>);
struct MaxR<T>(PhantomData<fn() -> T>);
struct MinR<T>(PhantomData<fn() -> T>);
struct AllR<T>(PhantomData<fn() -> T>);
struct AnyR<T>(PhantomData<fn() -> T>);
struct LaeR<T, A>(PhantomData<fn() -> (T, A)>);
macro_rules! copy_marker {
    ($($n:ident<$($p:ident),*>),*) => {$(
        impl<$($p),*> Clone for $n<$($p),*> { fn clone(&self) -> Self { *self } }
        impl<$($p),*> Copy for $n<$($p),*> {}
        impl<$($p),*> $n<$($p),*> { const NEW: Self = $n(PhantomData); }
    )*};
}
copy_marker!(SumR<I, A, O>, ProdR<I, A, O>, MaxR<T>, MinR<T>, AllR<T>, AnyR<T>, LaeR<T, A>);

impl<I: Widen<A>, A: Num + Narrow<O>, O: Element> Red for SumR<I, A, O> {
    type In = I;
    type Acc = A;
    type Out = O;
    #[inline(always)]
    fn init(self) -> A {
        A::ZERO
    }
    #[inline(always)]
    fn fold(self, a: A, x: I) -> A {
        a.add(x.widen())
    }
    #[inline(always)]
    fn comb(self, a: A, b: A) -> A {
        a.add(b)
    }
    #[inline(always)]
    fn fin(self, a: A) -> O {
        a.narrow()
    }
    fn empty(self) -> O {
        O::default()
    }
    fn scan_init(self) -> A {
        A::NEG_ZERO
    }
}
impl<I: Widen<A>, A: Num + Narrow<O>, O: Element> Red for ProdR<I, A, O> {
    type In = I;
    type Acc = A;
    type Out = O;
    #[inline(always)]
    fn init(self) -> A {
        A::ONE
    }
    #[inline(always)]
    fn fold(self, a: A, x: I) -> A {
        a.mul(x.widen())
    }
    #[inline(always)]
    fn comb(self, a: A, b: A) -> A {
        a.mul(b)
    }
    #[inline(always)]
    fn fin(self, a: A) -> O {
        a.narrow()
    }
    fn empty(self) -> O {
        A::ONE.narrow()
    }
}
impl<T: Ordered> Red for MaxR<T> {
    type In = T;
    type Acc = T::C;
    type Out = T;
    #[inline(always)]
    fn init(self) -> T::C {
        T::LOWEST
    }
    #[inline(always)]
    fn fold(self, a: T::C, x: T) -> T::C {
        max_c(a, x.c())
    }
    #[inline(always)]
    fn comb(self, a: T::C, b: T::C) -> T::C {
        max_c(a, b)
    }
    #[inline(always)]
    fn fin(self, a: T::C) -> T {
        T::back(a)
    }
    fn empty(self) -> T {
        T::back(T::LOWEST)
    }
}
impl<T: Ordered> Red for MinR<T> {
    type In = T;
    type Acc = T::C;
    type Out = T;
    #[inline(always)]
    fn init(self) -> T::C {
        T::HIGHEST
    }
    #[inline(always)]
    fn fold(self, a: T::C, x: T) -> T::C {
        min_c(a, x.c())
    }
    #[inline(always)]
    fn comb(self, a: T::C, b: T::C) -> T::C {
        min_c(a, b)
    }
    #[inline(always)]
    fn fin(self, a: T::C) -> T {
        T::back(a)
    }
    fn empty(self) -> T {
        T::back(T::HIGHEST)
    }
}
impl<T: Element> Red for AllR<T> {
    type In = T;
    type Acc = bool;
    type Out = bool;
    #[inline(always)]
    fn init(self) -> bool {
        true
    }
    #[inline(always)]
    fn fold(self, a: bool, x: T) -> bool {
        a & (x != T::default())
    }
    #[inline(always)]
    fn comb(self, a: bool, b: bool) -> bool {
        a & b
    }
    #[inline(always)]
    fn fin(self, a: bool) -> bool {
        a
    }
    fn empty(self) -> bool {
        true
    }
}
impl<T: Element> Red for AnyR<T> {
    type In = T;
    type Acc = bool;
    type Out = bool;
    #[inline(always)]
    fn init(self) -> bool {
        false
    }
    #[inline(always)]
    fn fold(self, a: bool, x: T) -> bool {
        a | (x != T::default())
    }
    #[inline(always)]
    fn comb(self, a: bool, b: bool) -> bool {
        a | b
    }
    #[inline(always)]
    fn fin(self, a: bool) -> bool {
        a
    }
    fn empty(self) -> bool {
        false
    }
}

/// `log(exp(a) + exp(x))` without overflow; NaN propagates, equal infinities stay.
#[inline(always)]
fn logaddexp<A: Float>(a: A, x: A) -> A {
    if a.is_nan() || x.is_nan() {
        return A::nan();
    }
    if a == x {
        return a + A::from(std::f64::consts::LN_2).unwrap();
    }
    let m = a.max(x);
    m + (-(a - x).abs()).exp().ln_1p()
}
impl<T: Widen<A>, A: Float + Send + Sync + Narrow<T> + 'static> Red for LaeR<T, A> {
    type In = T;
    type Acc = A;
    type Out = T;
    #[inline(always)]
    fn init(self) -> A {
        A::neg_infinity()
    }
    #[inline(always)]
    fn fold(self, a: A, x: T) -> A {
        logaddexp(a, x.widen())
    }
    #[inline(always)]
    fn comb(self, a: A, b: A) -> A {
        logaddexp(a, b)
    }
    #[inline(always)]
    fn fin(self, a: A) -> T {
        a.narrow()
    }
    fn empty(self) -> T {
        A::neg_infinity().narrow()
    }
}

// ---- dispatch ----------------------------------------------------------------------------------

fn bad_dtype(what: &str, x: &Array, out: DType) -> Error {
    Error::unsupported(
        what,
        format!(
            "no CPU kernel for input dtype {} with output dtype {out}",
            x.dtype()
        ),
    )
}

/// Calls `$f::<$R<...>>($($arg),*)` for the sum/product accumulator of the input dtype
/// (ints widen to 64 bits, f16/bf16 accumulate in f32).
macro_rules! num_dispatch {
    ($R:ident, $dt:expr, $run:ident($($arg:expr),*)) => {{
        use DType::*;
        match $dt {
            Bool => Some($run($R::<bool, i64, i64>::NEW, $($arg),*)),
            I8 => Some($run($R::<i8, i64, i64>::NEW, $($arg),*)),
            I16 => Some($run($R::<i16, i64, i64>::NEW, $($arg),*)),
            I32 => Some($run($R::<i32, i64, i64>::NEW, $($arg),*)),
            I64 => Some($run($R::<i64, i64, i64>::NEW, $($arg),*)),
            U8 => Some($run($R::<u8, u64, u64>::NEW, $($arg),*)),
            U16 => Some($run($R::<u16, u64, u64>::NEW, $($arg),*)),
            U32 => Some($run($R::<u32, u64, u64>::NEW, $($arg),*)),
            U64 => Some($run($R::<u64, u64, u64>::NEW, $($arg),*)),
            F16 => Some($run($R::<f16, f32, f16>::NEW, $($arg),*)),
            BF16 => Some($run($R::<bf16, f32, bf16>::NEW, $($arg),*)),
            F32 => Some($run($R::<f32, f32, f32>::NEW, $($arg),*)),
            F64 => Some($run($R::<f64, f64, f64>::NEW, $($arg),*)),
            C64 => Some($run($R::<Complex32, Complex32, Complex32>::NEW, $($arg),*)),
        }
    }};
}
/// Same for the ordered (real) dtypes; complex gives `None`.
macro_rules! ord_dispatch {
    ($R:ident, $dt:expr, $run:ident($($arg:expr),*)) => {{
        use DType::*;
        match $dt {
            Bool => Some($run($R::<bool>::NEW, $($arg),*)),
            I8 => Some($run($R::<i8>::NEW, $($arg),*)),
            I16 => Some($run($R::<i16>::NEW, $($arg),*)),
            I32 => Some($run($R::<i32>::NEW, $($arg),*)),
            I64 => Some($run($R::<i64>::NEW, $($arg),*)),
            U8 => Some($run($R::<u8>::NEW, $($arg),*)),
            U16 => Some($run($R::<u16>::NEW, $($arg),*)),
            U32 => Some($run($R::<u32>::NEW, $($arg),*)),
            U64 => Some($run($R::<u64>::NEW, $($arg),*)),
            F16 => Some($run($R::<f16>::NEW, $($arg),*)),
            BF16 => Some($run($R::<bf16>::NEW, $($arg),*)),
            F32 => Some($run($R::<f32>::NEW, $($arg),*)),
            F64 => Some($run($R::<f64>::NEW, $($arg),*)),
            C64 => None,
        }
    }};
}
macro_rules! float_dispatch {
    ($R:ident, $dt:expr, $run:ident($($arg:expr),*)) => {{
        use DType::*;
        match $dt {
            F16 => Some($run($R::<f16, f32>::NEW, $($arg),*)),
            BF16 => Some($run($R::<bf16, f32>::NEW, $($arg),*)),
            F32 => Some($run($R::<f32, f32>::NEW, $($arg),*)),
            F64 => Some($run($R::<f64, f64>::NEW, $($arg),*)),
            _ => None,
        }
    }};
}

/// The dtype of sums and products (and their scans) of `d`, as NumPy.
pub fn sum_dtype(d: DType) -> DType {
    match d {
        DType::Bool | DType::I8 | DType::I16 | DType::I32 => DType::I64,
        DType::U8 | DType::U16 | DType::U32 => DType::U64,
        d => d,
    }
}

fn reduce(
    kind: ReduceKind,
    axes: &[usize],
    x: &Array,
    out_shape: &[usize],
    out: DType,
) -> Result<Data> {
    let dt = x.dtype();
    let expect = match kind {
        ReduceKind::Sum | ReduceKind::Prod => sum_dtype(dt),
        ReduceKind::Max | ReduceKind::Min => dt,
        ReduceKind::All | ReduceKind::Any => DType::Bool,
    };
    if out != expect {
        return Err(bad_dtype("reduce", x, out));
    }
    let r = match kind {
        ReduceKind::Sum => num_dispatch!(SumR, dt, reduce_with(x, axes, out_shape)),
        ReduceKind::Prod => num_dispatch!(ProdR, dt, reduce_with(x, axes, out_shape)),
        ReduceKind::Max => ord_dispatch!(MaxR, dt, reduce_with(x, axes, out_shape)),
        ReduceKind::Min => ord_dispatch!(MinR, dt, reduce_with(x, axes, out_shape)),
        ReduceKind::All => {
            crate::dispatch_dtype!(dt, T => Some(reduce_with(AllR::<T>::NEW, x, axes, out_shape)))
        }
        ReduceKind::Any => {
            crate::dispatch_dtype!(dt, T => Some(reduce_with(AnyR::<T>::NEW, x, axes, out_shape)))
        }
    };
    r.ok_or_else(|| bad_dtype("reduce", x, out))?
}

// ---- the reduction engine ----------------------------------------------------------------------

/// Elements per leaf of the pairwise combination tree.
const BLOCK: usize = 4096;
/// Independent accumulators in a contiguous fold.
const LANES: usize = 16;
/// Columns per block in column mode: a block of accumulators stays in L1.
const COLS: usize = 1024;

/// Folds a contiguous run with `LANES` independent accumulators, combined pairwise.
#[inline(always)]
fn fold_slice<R: Red>(r: R, xs: &[R::In]) -> R::Acc {
    let mut acc = [r.init(); LANES];
    let mut it = xs.chunks_exact(LANES);
    for c in &mut it {
        for j in 0..LANES {
            acc[j] = r.fold(acc[j], c[j]);
        }
    }
    let mut tail = r.init();
    for &x in it.remainder() {
        tail = r.fold(tail, x);
    }
    let mut w = LANES;
    while w > 1 {
        w /= 2;
        for j in 0..w {
            acc[j] = r.comb(acc[j], acc[j + w]);
        }
    }
    r.comb(acc[0], tail)
}

#[inline(always)]
fn fold_run<R: Red>(r: R, data: &[R::In], o: isize, s: isize, n: usize) -> R::Acc {
    if s == 1 {
        fold_slice(r, &data[o as usize..o as usize + n])
    } else {
        let mut a = r.init();
        for i in 0..n as isize {
            a = r.fold(a, data[(o + i * s) as usize]);
        }
        a
    }
}

/// Kept dims (in output order) and reduced dims of an input layout, with size-1 dims dropped
/// and mergeable neighbours merged.
struct Plan {
    kshape: Vec<usize>,
    kst: Vec<isize>,
    rshape: Vec<usize>,
    rst: Vec<isize>,
    offset: isize,
}

fn plan(shape: &[usize], strides: &[isize], offset: isize, axes: &[usize]) -> Plan {
    let mut offset = offset;
    let (mut kshape, mut kst) = (Vec::new(), Vec::new());
    let mut red: Vec<(usize, isize)> = Vec::new();
    for (d, (&n, &s)) in shape.iter().zip(strides).enumerate() {
        if n == 1 {
            continue;
        }
        if axes.contains(&d) {
            // Order within a reduction does not matter: walk reduced dims forward.
            if s < 0 {
                offset += (n as isize - 1) * s;
                red.push((n, -s));
            } else {
                red.push((n, s));
            }
        } else if kshape
            .last()
            .is_some_and(|_| *kst.last().unwrap() == s * n as isize)
        {
            *kshape.last_mut().unwrap() *= n;
            *kst.last_mut().unwrap() = s;
        } else {
            kshape.push(n);
            kst.push(s);
        }
    }
    // Largest stride first, so runs along the last reduced dim are as short-strided as can be.
    red.sort_by_key(|a| std::cmp::Reverse(a.1));
    let (mut rshape, mut rst): (Vec<usize>, Vec<isize>) = (Vec::new(), Vec::new());
    for (n, s) in red {
        if rshape
            .last()
            .is_some_and(|_| *rst.last().unwrap() == s * n as isize)
        {
            *rshape.last_mut().unwrap() *= n;
            *rst.last_mut().unwrap() = s;
        } else {
            rshape.push(n);
            rst.push(s);
        }
    }
    Plan {
        kshape,
        kst,
        rshape,
        rst,
        offset,
    }
}

/// Input offset of row-major position `i` of (shape, strides).
fn offset_of(mut i: usize, shape: &[usize], strides: &[isize], base: isize) -> isize {
    let mut o = base;
    for d in (0..shape.len()).rev() {
        o += (i % shape[d]) as isize * strides[d];
        i /= shape[d];
    }
    o
}

/// Output writes from parallel tasks into disjoint parts of one buffer.
#[derive(Clone, Copy)]
struct SyncPtr<T>(*mut T);
unsafe impl<T> Send for SyncPtr<T> {}
unsafe impl<T> Sync for SyncPtr<T> {}
impl<T> SyncPtr<T> {
    /// Element `i`; a method, so that closures capture the whole (Sync) wrapper.
    fn at(self, i: usize) -> *mut T {
        // SAFETY: callers stay inside the buffer the pointer came from.
        unsafe { self.0.add(i) }
    }
}

fn threads() -> usize {
    rayon::current_num_threads().max(1)
}

/// A fresh output of `n` elements filled by `fill(start, chunk)`; split across threads when
/// `n * cost` (elements read) is large, in chunks that each read at least `PAR_MIN`.
fn par_fill<O: Element>(
    n: usize,
    cost: usize,
    fill: impl Fn(usize, &mut [O]) + Sync,
) -> Result<Buffer> {
    let mut buf = Buffer::zeroed(n * std::mem::size_of::<O>())?;
    let out = buf.as_slice_mut::<O>();
    let cost = cost.max(1);
    if n.saturating_mul(cost) < PAR_MIN || n <= 1 {
        fill(0, out);
    } else {
        let c = n.div_ceil(threads() * 4).max(PAR_MIN / cost).max(1);
        out.par_chunks_mut(c)
            .enumerate()
            .for_each(|(i, ch)| fill(i * c, ch));
    }
    Ok(buf)
}

fn reduce_with<R: Red>(r: R, x: &Array, axes: &[usize], out_shape: &[usize]) -> Result<Data> {
    let d = x.ready_data();
    let nout = size_of(out_shape);
    let p = plan(x.shape(), &d.strides, d.offset as isize, axes);
    let nred = size_of(&p.rshape);
    let buf = if nout == 0 {
        Buffer::zeroed(0)?
    } else if nred == 0 {
        let e = r.empty();
        par_fill::<R::Out>(nout, 1, |_, ch| ch.fill(e))?
    } else {
        let data = d.buffer.as_slice::<R::In>();
        let col = p.rst.last() != Some(&1) && p.kst.last() == Some(&1);
        if col {
            reduce_cols(r, data, &p, nout)?
        } else {
            reduce_rows(r, data, &p, nout)?
        }
    };
    Ok(out_data(buf, out_shape))
}

/// Folds reduced positions `start..start + len` (row-major over the reduced dims) of the
/// output whose first input element is at `base`.
fn red_range<R: Red>(
    r: R,
    data: &[R::In],
    p: &Plan,
    base: isize,
    start: usize,
    len: usize,
) -> R::Acc {
    match p.rshape.len() {
        0 => r.fold(r.init(), data[base as usize]),
        1 => fold_run(r, data, base + start as isize * p.rst[0], p.rst[0], len),
        _ => {
            let ls = *p.rst.last().unwrap();
            let mut acc = r.init();
            rows::<1>(&p.rshape, [&p.rst], [base], start, len, |_, [o], run| {
                acc = r.comb(acc, fold_run(r, data, o, ls, run));
            });
            acc
        }
    }
}

/// Pairwise tree over blocks of the reduced positions; halves run in parallel when `par`.
fn red_tree<R: Red>(
    r: R,
    data: &[R::In],
    p: &Plan,
    base: isize,
    start: usize,
    len: usize,
    par: bool,
) -> R::Acc {
    if len <= BLOCK {
        return red_range(r, data, p, base, start, len);
    }
    let h = (len / 2).next_multiple_of(LANES);
    let (a, b) = if par && len >= PAR_MIN {
        rayon::join(
            || red_tree(r, data, p, base, start, h, true),
            || red_tree(r, data, p, base, start + h, len - h, true),
        )
    } else {
        (
            red_tree(r, data, p, base, start, h, false),
            red_tree(r, data, p, base, start + h, len - h, false),
        )
    };
    r.comb(a, b)
}

fn reduce_rows<R: Red>(r: R, data: &[R::In], p: &Plan, nout: usize) -> Result<Buffer> {
    let nred = size_of(&p.rshape);
    let ks = p.kst.last().copied().unwrap_or(0);
    // Few outputs with long reductions: parallelize inside each reduction instead.
    let inner_par = nout < threads() * 2 && nred >= PAR_MIN;
    let fill = |s: usize, ch: &mut [R::Out]| {
        rows::<1>(
            &p.kshape,
            [&p.kst],
            [p.offset],
            s,
            ch.len(),
            |pos, [o], run| {
                for t in 0..run {
                    let base = o + t as isize * ks;
                    ch[pos - s + t] = r.fin(red_tree(r, data, p, base, 0, nred, inner_par));
                }
            },
        );
    };
    if inner_par {
        let mut buf = Buffer::zeroed(nout * std::mem::size_of::<R::Out>())?;
        fill(0, buf.as_slice_mut::<R::Out>());
        Ok(buf)
    } else {
        par_fill::<R::Out>(nout, nred, fill)
    }
}

/// Column mode: the innermost kept dim (length `m`) has stride 1; every reduced position
/// contributes a contiguous row that is folded into a row of accumulators.
fn reduce_cols<R: Red>(r: R, data: &[R::In], p: &Plan, nout: usize) -> Result<Buffer> {
    let nk = p.kshape.len();
    let m = p.kshape[nk - 1];
    let (oshape, ost) = (&p.kshape[..nk - 1], &p.kst[..nk - 1]);
    let nouter = nout / m;
    let nred = size_of(&p.rshape);
    let ls = p.rst.last().copied().unwrap_or(0);
    // Folds reduced positions r0..r0+rl into acc (columns c0..c0+acc.len() of outer row `base`).
    let acc_rows = |base: isize, c0: usize, acc: &mut [R::Acc], r0: usize, rl: usize| {
        let cb = acc.len();
        let mut add = |o: isize| {
            let row = &data[(o + c0 as isize) as usize..][..cb];
            for (a, &x) in acc.iter_mut().zip(row) {
                *a = r.fold(*a, x);
            }
        };
        if p.rshape.is_empty() {
            add(base);
        } else {
            rows::<1>(&p.rshape, [&p.rst], [base], r0, rl, |_, [o], run| {
                for t in 0..run as isize {
                    add(o + t * ls);
                }
            });
        }
    };
    let mut buf = Buffer::zeroed(nout * std::mem::size_of::<R::Out>())?;
    let out = buf.as_slice_mut::<R::Out>();
    let ncb = m.div_ceil(COLS);
    let tasks = nouter * ncb;
    let total = nout.saturating_mul(nred);
    if total < PAR_MIN || tasks >= threads() * 2 || nred < 64 {
        let block = |i: usize, b: usize, ob: &mut [R::Out]| {
            let base = offset_of(i, oshape, ost, p.offset);
            let mut acc = vec![r.init(); ob.len()];
            acc_rows(base, b * COLS, &mut acc, 0, nred);
            for (o, a) in ob.iter_mut().zip(acc) {
                *o = r.fin(a);
            }
        };
        if total < PAR_MIN {
            for (i, orow) in out.chunks_mut(m).enumerate() {
                for (b, ob) in orow.chunks_mut(COLS).enumerate() {
                    block(i, b, ob);
                }
            }
        } else {
            out.par_chunks_mut(m).enumerate().for_each(|(i, orow)| {
                orow.par_chunks_mut(COLS)
                    .enumerate()
                    .for_each(|(b, ob)| block(i, b, ob))
            });
        }
    } else {
        // Few output rows, long reductions: split the reduced positions, combine partials.
        let nchunks = (threads() * 4).div_ceil(tasks).min(nred / 16).max(1);
        let rc = nred.div_ceil(nchunks);
        let partials: Vec<Vec<R::Acc>> = (0..nchunks)
            .into_par_iter()
            .map(|k| {
                let r0 = (k * rc).min(nred);
                let rl = rc.min(nred - r0);
                let mut acc = vec![r.init(); nout];
                for (i, arow) in acc.chunks_mut(m).enumerate() {
                    let base = offset_of(i, oshape, ost, p.offset);
                    for (b, ab) in arow.chunks_mut(COLS).enumerate() {
                        acc_rows(base, b * COLS, ab, r0, rl);
                    }
                }
                acc
            })
            .collect();
        let mut it = partials.into_iter();
        let mut acc = it.next().unwrap();
        for part in it {
            for (a, b) in acc.iter_mut().zip(part) {
                *a = r.comb(*a, b);
            }
        }
        for (o, a) in out.iter_mut().zip(acc) {
            *o = r.fin(a);
        }
    }
    Ok(buf)
}

// ---- arg reductions ----------------------------------------------------------------------------

/// Is `x` a better candidate than `b`? Strictly greater (or less), or the first NaN.
#[inline(always)]
#[allow(clippy::eq_op)]
fn better<C: PartialOrd>(max: bool, x: C, b: C) -> bool {
    (if max { x > b } else { x < b }) || (x != x && b == b)
}

fn arg_reduce(kind: ArgReduceKind, axis: usize, x: &Array, out_shape: &[usize]) -> Result<Data> {
    let max = kind == ArgReduceKind::ArgMax;
    let r = match x.dtype() {
        DType::Bool => Some(arg_with::<bool>(max, axis, x, out_shape)),
        DType::U8 => Some(arg_with::<u8>(max, axis, x, out_shape)),
        DType::U16 => Some(arg_with::<u16>(max, axis, x, out_shape)),
        DType::U32 => Some(arg_with::<u32>(max, axis, x, out_shape)),
        DType::U64 => Some(arg_with::<u64>(max, axis, x, out_shape)),
        DType::I8 => Some(arg_with::<i8>(max, axis, x, out_shape)),
        DType::I16 => Some(arg_with::<i16>(max, axis, x, out_shape)),
        DType::I32 => Some(arg_with::<i32>(max, axis, x, out_shape)),
        DType::I64 => Some(arg_with::<i64>(max, axis, x, out_shape)),
        DType::F16 => Some(arg_with::<f16>(max, axis, x, out_shape)),
        DType::BF16 => Some(arg_with::<bf16>(max, axis, x, out_shape)),
        DType::F32 => Some(arg_with::<f32>(max, axis, x, out_shape)),
        DType::F64 => Some(arg_with::<f64>(max, axis, x, out_shape)),
        DType::C64 => None,
    };
    r.ok_or_else(|| bad_dtype("arg_reduce", x, DType::I64))?
}

/// Index of the first best element of a contiguous slice (non-empty): a vectorized max (or
/// min) per block finds the block where the best value first appears, then one scan of that
/// block finds its index.
fn arg_slice<T: Ordered>(max: bool, xs: &[T]) -> (T::C, usize) {
    // The block maxima vectorize 8 wide with AVX2, 4 wide without; the binary stays portable.
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // Safety: the CPU has AVX2, checked just above.
        return unsafe { arg_slice_avx2(max, xs) };
    }
    arg_slice_body(max, xs)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn arg_slice_avx2<T: Ordered>(max: bool, xs: &[T]) -> (T::C, usize) {
    arg_slice_body(max, xs)
}

#[inline(always)]
fn arg_slice_body<T: Ordered>(max: bool, xs: &[T]) -> (T::C, usize) {
    const B: usize = 4096;
    let mut best = xs[0].c();
    let mut best_block = 0;
    for (bi, blk) in xs.chunks(B).enumerate() {
        let m = if max {
            fold_slice(MaxR::<T>::NEW, blk)
        } else {
            fold_slice(MinR::<T>::NEW, blk)
        };
        if better(max, m, best) || bi == 0 {
            best = m;
            best_block = bi;
        }
        #[allow(clippy::eq_op)]
        if m != m {
            break; // the first NaN wins
        }
    }
    let start = best_block * B;
    let blk = &xs[start..(start + B).min(xs.len())];
    #[allow(clippy::eq_op)]
    let i = blk
        .iter()
        .position(|&x| {
            let c = x.c();
            c == best || (best != best && c != c)
        })
        .unwrap_or(0);
    (best, start + i)
}

/// Like `arg_slice`, split across threads for long slices.
fn arg_slice_par<T: Ordered>(max: bool, xs: &[T]) -> (T::C, usize) {
    if xs.len() < PAR_MIN * 4 {
        return arg_slice(max, xs);
    }
    let c = xs.len().div_ceil(threads() * 4).max(PAR_MIN);
    let parts: Vec<(T::C, usize)> = xs
        .par_chunks(c)
        .enumerate()
        .map(|(k, ch)| {
            let (v, i) = arg_slice(max, ch);
            (v, i + k * c)
        })
        .collect();
    let mut best = parts[0];
    for &(v, i) in &parts[1..] {
        if better(max, v, best.0) {
            best = (v, i);
        }
    }
    best
}

fn arg_with<T: Ordered>(max: bool, axis: usize, x: &Array, out_shape: &[usize]) -> Result<Data> {
    let d = x.ready_data();
    let data = d.buffer.as_slice::<T>();
    let n = x.shape()[axis];
    let nout = size_of(out_shape);
    if nout == 0 {
        return Ok(out_data(Buffer::zeroed(0)?, out_shape));
    }
    if n == 0 {
        return Err(Error::invalid(
            if max { "argmax" } else { "argmin" },
            "attempt to get an arg-reduction of an empty sequence",
        ));
    }
    let s = d.strides[axis];
    // The kept dims, collapsed.
    let mut kshape = Vec::new();
    let mut kst = Vec::new();
    for (i, (&dim, &st)) in x.shape().iter().zip(&d.strides).enumerate() {
        if i == axis || dim == 1 {
            continue;
        }
        if kshape
            .last()
            .is_some_and(|_| *kst.last().unwrap() == st * dim as isize)
        {
            *kshape.last_mut().unwrap() *= dim;
            *kst.last_mut().unwrap() = st;
        } else {
            kshape.push(dim);
            kst.push(st);
        }
    }
    let offset = d.offset as isize;
    let one = |base: isize, par: bool| -> i64 {
        if s == 1 {
            let xs = &data[base as usize..base as usize + n];
            (if par {
                arg_slice_par(max, xs)
            } else {
                arg_slice(max, xs)
            })
            .1 as i64
        } else {
            let mut best = data[base as usize].c();
            let mut bi = 0;
            for k in 1..n {
                let v = data[(base + k as isize * s) as usize].c();
                if better(max, v, best) {
                    best = v;
                    bi = k;
                }
            }
            bi as i64
        }
    };
    let col = s != 1 && kst.last() == Some(&1) && n > 1;
    let buf = if col {
        let nk = kshape.len();
        let m = kshape[nk - 1];
        let (oshape, ost) = (&kshape[..nk - 1], &kst[..nk - 1]);
        let mut buf = Buffer::zeroed(nout * 8)?;
        let out = buf.as_slice_mut::<i64>();
        let block = |i: usize, b: usize, ob: &mut [i64]| {
            let base = offset_of(i, oshape, ost, offset) + (b * COLS) as isize;
            let cb = ob.len();
            let mut best: Vec<T::C> = data[base as usize..][..cb].iter().map(|v| v.c()).collect();
            for k in 1..n {
                let row = &data[(base + k as isize * s) as usize..][..cb];
                for ((bv, bi), &v) in best.iter_mut().zip(ob.iter_mut()).zip(row) {
                    let v = v.c();
                    if better(max, v, *bv) {
                        *bv = v;
                        *bi = k as i64;
                    }
                }
            }
        };
        if nout.saturating_mul(n) < PAR_MIN {
            for (i, orow) in out.chunks_mut(m).enumerate() {
                for (b, ob) in orow.chunks_mut(COLS).enumerate() {
                    block(i, b, ob);
                }
            }
        } else {
            out.par_chunks_mut(m).enumerate().for_each(|(i, orow)| {
                orow.par_chunks_mut(COLS)
                    .enumerate()
                    .for_each(|(b, ob)| block(i, b, ob))
            });
        }
        buf
    } else {
        let inner_par = nout < threads() * 2 && n >= PAR_MIN;
        let ks = kst.last().copied().unwrap_or(0);
        let fill = |st: usize, ch: &mut [i64]| {
            rows::<1>(&kshape, [&kst], [offset], st, ch.len(), |pos, [o], run| {
                for t in 0..run {
                    ch[pos - st + t] = one(o + t as isize * ks, inner_par);
                }
            });
        };
        if inner_par {
            let mut buf = Buffer::zeroed(nout * 8)?;
            fill(0, buf.as_slice_mut::<i64>());
            buf
        } else {
            par_fill::<i64>(nout, n, fill)?
        }
    };
    Ok(out_data(buf, out_shape))
}

// ---- scans -------------------------------------------------------------------------------------

fn scan(
    kind: ScanKind,
    axis: usize,
    reverse: bool,
    inclusive: bool,
    x: &Array,
    out: DType,
) -> Result<Data> {
    let dt = x.dtype();
    let expect = match kind {
        ScanKind::Sum | ScanKind::Prod => sum_dtype(dt),
        _ => dt,
    };
    if out != expect {
        return Err(bad_dtype("scan", x, out));
    }
    let a = (axis, reverse, inclusive);
    let r = match kind {
        ScanKind::Sum => num_dispatch!(SumR, dt, scan_with(x, a)),
        ScanKind::Prod => num_dispatch!(ProdR, dt, scan_with(x, a)),
        ScanKind::Max => ord_dispatch!(MaxR, dt, scan_with(x, a)),
        ScanKind::Min => ord_dispatch!(MinR, dt, scan_with(x, a)),
        ScanKind::LogAddExp => float_dispatch!(LaeR, dt, scan_with(x, a)),
    };
    r.ok_or_else(|| bad_dtype("scan", x, out))?
}

/// Scans the (contiguous) input viewed as (outer, n, m) along the middle axis. With m > 1
/// whole rows of `m` are combined at once (vectorized); blocks of columns are independent
/// tasks.
fn scan_with<R: Red>(
    r: R,
    x: &Array,
    (axis, reverse, inclusive): (usize, bool, bool),
) -> Result<Data> {
    let shape = x.shape();
    let d = x.ready_data();
    let src = super::strided::contiguous_cow::<R::In>(&d, shape);
    let total = size_of(shape);
    let n = shape[axis];
    let m: usize = shape[axis + 1..].iter().product();
    let mut buf = Buffer::zeroed(total * std::mem::size_of::<R::Out>())?;
    if total == 0 {
        return Ok(out_data(buf, shape));
    }
    let outer = total / (n * m);
    let out = SyncPtr(buf.as_slice_mut::<R::Out>().as_mut_ptr());
    let src: &[R::In] = &src;
    // Scans columns c0..c0+cb of outer slab `o`.
    let task = |o: usize, c0: usize, cb: usize| {
        if cb == 1 {
            // One column (m == 1): a scalar accumulator.
            let mut a = r.scan_init();
            for step in 0..n {
                let k = if reverse { n - 1 - step } else { step };
                let at = o * n * m + k * m + c0;
                let y = if inclusive {
                    a = r.fold(a, src[at]);
                    r.fin(a)
                } else {
                    let y = if step == 0 { r.empty() } else { r.fin(a) };
                    a = r.fold(a, src[at]);
                    y
                };
                // SAFETY: each task writes only its own (slab, column block) cells.
                unsafe { *out.at(at) = y };
            }
            return;
        }
        let mut acc = vec![r.scan_init(); cb];
        for step in 0..n {
            let k = if reverse { n - 1 - step } else { step };
            let at = o * n * m + k * m + c0;
            let xs = &src[at..at + cb];
            // SAFETY: each task writes only its own (slab, column block) cells.
            let ys = unsafe { std::slice::from_raw_parts_mut(out.at(at), cb) };
            if inclusive {
                for ((a, &x), y) in acc.iter_mut().zip(xs).zip(ys.iter_mut()) {
                    *a = r.fold(*a, x);
                    *y = r.fin(*a);
                }
            } else if step == 0 {
                for ((a, &x), y) in acc.iter_mut().zip(xs).zip(ys.iter_mut()) {
                    *y = r.empty();
                    *a = r.fold(*a, x);
                }
            } else {
                for ((a, &x), y) in acc.iter_mut().zip(xs).zip(ys.iter_mut()) {
                    *y = r.fin(*a);
                    *a = r.fold(*a, x);
                }
            }
        }
    };
    let cols = if m == 1 { 1 } else { COLS };
    let ncb = m.div_ceil(cols);
    let ntasks = outer * ncb;
    let run = |t: usize| {
        let (o, b) = (t / ncb, t % ncb);
        let c0 = b * cols;
        task(o, c0, cols.min(m - c0));
    };
    if total < PAR_MIN || ntasks == 1 {
        (0..ntasks).for_each(run);
    } else {
        let per = (PAR_MIN / (n * cols.min(m)).max(1)).max(1);
        (0..ntasks.div_ceil(per)).into_par_iter().for_each(|c| {
            (c * per..((c + 1) * per).min(ntasks)).for_each(run);
        });
    }
    Ok(out_data(buf, shape))
}
