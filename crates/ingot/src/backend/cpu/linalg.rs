//! CPU kernels: linear algebra. Matmul goes through the `gemm` crate with the inputs' own
//! strides (a transposed operand needs no copy); integer and bool matmul through a
//! cache-blocked loop. Decompositions go through `faer`, one matrix at a time, the batch split
//! across threads. Public ops hand these kernels f32/f64 for everything but matmul.

use super::misc::{dispatch_float, Fl};
use super::strided::contiguous_vec;
use super::strided::{for_each_offset, out_data};
use super::Outs;
use crate::array::{Array, Data};
use crate::buffer::Buffer;
use crate::dtype::{DType, Element};
use crate::op::{LinearAct, Op};
use crate::shape::size_of;
use crate::{Error, Result};
use faer::linalg::solvers::{DenseSolveCore, Solve};
use faer::{Mat, Par, Side};
use gemm::Parallelism;
use half::bf16;
use half::f16;
use rayon::prelude::*;

pub fn eval(op: &Op, inputs: &[Array], outs: Outs) -> Result<Vec<Data>> {
    match op {
        Op::Matmul => Ok(vec![matmul(&inputs[0], &inputs[1], &outs[0].0)?]),
        Op::Linear { act, has_bias } => Ok(vec![linear(inputs, *act, *has_bias, &outs[0].0)?]),
        _ => match inputs[0].dtype() {
            DType::F32 => decomp::<f32>(op, inputs, outs),
            DType::F64 => decomp::<f64>(op, inputs, outs),
            d => Err(Error::unsupported(
                op.name(),
                format!("CPU kernel takes float32 or float64, got {d}"),
            )),
        },
    }
}

// ---- layouts ----------------------------------------------------------------------------------

/// Where each matrix of a batched (..., r, c) layout starts, and its row/column strides.
struct MatLayout {
    offs: Vec<isize>,
    rs: isize,
    cs: isize,
}

fn layout(d: &Data, shape: &[usize]) -> MatLayout {
    let nd = shape.len();
    let nb = nd - 2;
    let mut offs = Vec::with_capacity(size_of(&shape[..nb]));
    if nb == 0 {
        offs.push(d.offset as isize);
    } else {
        for_each_offset(&shape[..nb], &d.strides[..nb], d.offset as isize, |o| {
            offs.push(o)
        });
    }
    MatLayout {
        offs,
        rs: d.strides[nd - 2],
        cs: d.strides[nd - 1],
    }
}

/// One matrix of a layout as a row-major Vec, converted elementwise.
fn gather<S: Copy, D>(
    src: &[S],
    l: &MatLayout,
    b: usize,
    r: usize,
    c: usize,
    f: impl Fn(S) -> D,
) -> Vec<D> {
    let o = l.offs[b];
    let mut v = Vec::with_capacity(r * c);
    for i in 0..r as isize {
        let row = o + i * l.rs;
        for j in 0..c as isize {
            v.push(f(src[(row + j * l.cs) as usize]));
        }
    }
    v
}

// ---- matmul -------------------------------------------------------------------------------------

/// Per-matrix work (m*n*k) below which a batch is split across threads matrix by matrix
/// rather than each matrix across threads.
const SMALL_GEMM: usize = 1 << 21;

/// `act(x @ w + bias)`: the product, then the bias and the activation in one pass over it
/// in the compute type (`ops::fast::linear`).
fn linear(inputs: &[Array], act: LinearAct, has_bias: bool, out_shape: &[usize]) -> Result<Data> {
    let mut d = matmul(&inputs[0], &inputs[1], out_shape)?;
    let n = out_shape[1];
    let dt = inputs[0].dtype();
    let buf = std::sync::Arc::get_mut(&mut d.buffer)
        .ok_or_else(|| Error::invalid("linear", "internal: the product's buffer is shared"))?;
    dispatch_float!("linear", dt, T => {
        let bias: Option<Vec<T>> = has_bias.then(|| contiguous_vec::<T>(&inputs[2]));
        epilogue::<T>(buf.as_slice_mut::<T>(), bias.as_deref(), n, act);
        Ok::<(), Error>(())
    })?;
    Ok(d)
}

fn epilogue<T: Fl + Element>(out: &mut [T], bias: Option<&[T]>, n: usize, act: LinearAct) {
    use crate::ops::fast::linear_consts::{GELU_A, GELU_C};
    let (a, c, half, one) = (T::cf(GELU_A), T::cf(GELU_C), T::cf(0.5), T::cf(1.0));
    let zero = T::cf(0.0);
    let f = |z: T::C| match act {
        LinearAct::None => z,
        // NaN stays NaN, as `maximum` gives it.
        LinearAct::Relu => {
            if z < zero {
                zero
            } else {
                z
            }
        }
        LinearAct::GeluTanh => half * z * (one + num_traits::Float::tanh(c * (z + a * z * z * z))),
    };
    if n == 0 {
        return;
    }
    out.par_chunks_mut(n).for_each(|row| {
        for (j, v) in row.iter_mut().enumerate() {
            let z = v.load() + bias.map_or(zero, |b| b[j].load());
            *v = T::store(f(z));
        }
    });
}

fn matmul(a: &Array, b: &Array, out_shape: &[usize]) -> Result<Data> {
    let nd = out_shape.len();
    let (m, n) = (out_shape[nd - 2], out_shape[nd - 1]);
    let k = a.shape()[nd - 1];
    let (da, db) = (a.ready_data(), b.ready_data());
    let (la, lb) = (layout(&da, a.shape()), layout(&db, b.shape()));
    let total = size_of(out_shape);
    let dtype = a.dtype();
    let mut buf = Buffer::zeroed(total * dtype.size())?;
    if total == 0 || k == 0 {
        // An empty inner dimension sums nothing: the zeroed buffer is the answer.
        return Ok(out_data(buf, out_shape));
    }
    let dims = (m, n, k);
    match dtype {
        DType::F32 => run_gemm::<f32>(&da, &la, &db, &lb, buf.as_slice_mut(), dims, 1.0, 0.0),
        DType::F64 => run_gemm::<f64>(&da, &la, &db, &lb, buf.as_slice_mut(), dims, 1.0, 0.0),
        DType::F16 => run_gemm::<half::f16>(
            &da,
            &la,
            &db,
            &lb,
            buf.as_slice_mut(),
            dims,
            half::f16::ONE,
            half::f16::ZERO,
        ),
        DType::C64 => run_gemm::<crate::c64>(
            &da,
            &la,
            &db,
            &lb,
            buf.as_slice_mut(),
            dims,
            crate::c64::new(1.0, 0.0),
            crate::c64::new(0.0, 0.0),
        ),
        DType::BF16 => matmul_bf16(&da, &la, &db, &lb, buf.as_slice_mut(), dims),
        DType::Bool => matmul_blocked::<bool>(&da, &la, &db, &lb, buf.as_slice_mut(), dims),
        DType::U8 => matmul_blocked::<u8>(&da, &la, &db, &lb, buf.as_slice_mut(), dims),
        DType::U16 => matmul_blocked::<u16>(&da, &la, &db, &lb, buf.as_slice_mut(), dims),
        DType::U32 => matmul_blocked::<u32>(&da, &la, &db, &lb, buf.as_slice_mut(), dims),
        DType::U64 => matmul_blocked::<u64>(&da, &la, &db, &lb, buf.as_slice_mut(), dims),
        DType::I8 => matmul_blocked::<i8>(&da, &la, &db, &lb, buf.as_slice_mut(), dims),
        DType::I16 => matmul_blocked::<i16>(&da, &la, &db, &lb, buf.as_slice_mut(), dims),
        DType::I32 => matmul_blocked::<i32>(&da, &la, &db, &lb, buf.as_slice_mut(), dims),
        DType::I64 => matmul_blocked::<i64>(&da, &la, &db, &lb, buf.as_slice_mut(), dims),
    }
    Ok(out_data(buf, out_shape))
}

/// `out[b] = a[b] @ b[b]` for every matrix of the batch through `gemm` (f32, f64, f16, c64).
#[allow(clippy::too_many_arguments)]
fn run_gemm<T: Element>(
    da: &Data,
    la: &MatLayout,
    db: &Data,
    lb: &MatLayout,
    out: &mut [T],
    (m, n, k): (usize, usize, usize),
    one: T,
    zero: T,
) {
    let (sa, sb) = (da.buffer.as_slice::<T>(), db.buffer.as_slice::<T>());
    gemm_slices(sa, la, sb, lb, out, (m, n, k), one, zero);
}

#[allow(clippy::too_many_arguments)]
fn gemm_slices<T: Element>(
    sa: &[T],
    la: &MatLayout,
    sb: &[T],
    lb: &MatLayout,
    out: &mut [T],
    (m, n, k): (usize, usize, usize),
    one: T,
    zero: T,
) {
    let batch = la.offs.len();
    let threads = rayon::current_num_threads().max(1);
    let one_matrix = |bi: usize, dst: &mut [T], par: Parallelism| {
        // SAFETY: the offsets and strides come from the inputs' layouts, so every element
        // gemm reads lies inside the buffers; dst is a fresh row-major m x n block.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                dst.as_mut_ptr(),
                1,
                n as isize,
                false,
                sa.as_ptr().offset(la.offs[bi]),
                la.cs,
                la.rs,
                sb.as_ptr().offset(lb.offs[bi]),
                lb.cs,
                lb.rs,
                zero,
                one,
                false,
                false,
                false,
                par,
            )
        }
    };
    let work = m * n * k;
    if batch > 1 && work < SMALL_GEMM {
        out.par_chunks_mut(m * n)
            .enumerate()
            .for_each(|(bi, dst)| one_matrix(bi, dst, Parallelism::None));
    } else {
        let par = if work >= 1 << 15 && threads > 1 {
            Parallelism::Rayon(threads)
        } else {
            Parallelism::None
        };
        for (bi, dst) in out.chunks_mut(m * n).enumerate() {
            one_matrix(bi, dst, par);
        }
    }
}

/// bf16 has no gemm kernel: multiply in f32 and round once.
fn matmul_bf16(
    da: &Data,
    la: &MatLayout,
    db: &Data,
    lb: &MatLayout,
    out: &mut [bf16],
    (m, n, k): (usize, usize, usize),
) {
    let (sa, sb) = (da.buffer.as_slice::<bf16>(), db.buffer.as_slice::<bf16>());
    let batch = la.offs.len();
    let af: Vec<f32> = (0..batch)
        .flat_map(|bi| gather(sa, la, bi, m, k, f32::from))
        .collect();
    let bf: Vec<f32> = (0..batch)
        .flat_map(|bi| gather(sb, lb, bi, k, n, f32::from))
        .collect();
    let contiguous = |r: usize, c: usize| MatLayout {
        offs: (0..batch).map(|bi| (bi * r * c) as isize).collect(),
        rs: c as isize,
        cs: 1,
    };
    let mut of = vec![0f32; out.len()];
    gemm_slices(
        &af,
        &contiguous(m, k),
        &bf,
        &contiguous(k, n),
        &mut of,
        (m, n, k),
        1.0,
        0.0,
    );
    out.par_iter_mut()
        .with_min_len(1 << 14)
        .zip(of.par_iter().with_min_len(1 << 14))
        .for_each(|(o, &x)| *o = bf16::from_f32(x));
}

/// Multiply-accumulate for the blocked integer/bool matmul: wrapping for integers (as NumPy),
/// logical or of ands for bool.
trait Mac: Element {
    fn mac(acc: Self, a: Self, b: Self) -> Self;
}
macro_rules! int_mac {
    ($($t:ty),*) => {$(
        impl Mac for $t {
            #[inline(always)]
            fn mac(acc: Self, a: Self, b: Self) -> Self {
                acc.wrapping_add(a.wrapping_mul(b))
            }
        }
    )*};
}
int_mac!(u8, u16, u32, u64, i8, i16, i32, i64);
impl Mac for bool {
    #[inline(always)]
    fn mac(acc: Self, a: Self, b: Self) -> Self {
        acc | (a & b)
    }
}

/// Rows of C per task, inner-dimension and column block sizes: a KB x NB panel of B stays in
/// cache while a block of rows of C is updated along contiguous rows (vectorizable).
const ROWS: usize = 16;
const KB: usize = 128;
const NB: usize = 512;

fn matmul_blocked<T: Mac>(
    da: &Data,
    la: &MatLayout,
    db: &Data,
    lb: &MatLayout,
    out: &mut [T],
    (m, n, k): (usize, usize, usize),
) {
    let (sa, sb) = (da.buffer.as_slice::<T>(), db.buffer.as_slice::<T>());
    out.par_chunks_mut(m * n).enumerate().for_each(|(bi, c)| {
        let ap = gather(sa, la, bi, m, k, |x| x);
        let bp = gather(sb, lb, bi, k, n, |x| x);
        c.par_chunks_mut(ROWS * n)
            .enumerate()
            .for_each(|(blk, cblk)| {
                let i0 = blk * ROWS;
                let rows = cblk.len() / n;
                for p0 in (0..k).step_by(KB) {
                    let p1 = (p0 + KB).min(k);
                    for j0 in (0..n).step_by(NB) {
                        let j1 = (j0 + NB).min(n);
                        for r in 0..rows {
                            let arow = &ap[(i0 + r) * k..(i0 + r + 1) * k];
                            let crow = &mut cblk[r * n + j0..r * n + j1];
                            for p in p0..p1 {
                                let av = arow[p];
                                let brow = &bp[p * n + j0..p * n + j1];
                                for (cv, &bv) in crow.iter_mut().zip(brow) {
                                    *cv = T::mac(*cv, av, bv);
                                }
                            }
                        }
                    }
                }
            });
    });
}

// ---- decompositions ---------------------------------------------------------------------------

/// One output block of one matrix: float values or int32 indices.
enum Piece<F> {
    F(Vec<F>),
    I(Vec<i32>),
}

fn load<F>(src: &[F], l: &MatLayout, b: usize, r: usize, c: usize) -> Mat<F>
where
    F: Element + faer::traits::RealField,
{
    let o = l.offs[b];
    Mat::from_fn(r, c, |i, j| {
        src[(o + i as isize * l.rs + j as isize * l.cs) as usize]
    })
}

/// A faer matrix as a row-major Vec (optionally transposed).
fn store<F: faer::traits::RealField + Copy>(m: faer::MatRef<'_, F>, transpose: bool) -> Vec<F> {
    let (r, c) = (m.nrows(), m.ncols());
    let mut v = Vec::with_capacity(r * c);
    if transpose {
        for j in 0..c {
            for i in 0..r {
                v.push(m[(i, j)]);
            }
        }
    } else {
        for i in 0..r {
            for j in 0..c {
                v.push(m[(i, j)]);
            }
        }
    }
    v
}

fn mat_dims(a: &Array) -> (usize, usize) {
    let s = a.shape();
    (s[s.len() - 2], s[s.len() - 1])
}

fn singular(op: &Op) -> Error {
    Error::invalid(op.name(), "matrix is singular")
}

/// Any exactly zero pivot makes the matrix singular (as LAPACK's getrf reports it).
fn has_zero_diag<F: faer::traits::RealField + Copy + PartialEq + Default>(
    u: faer::MatRef<'_, F>,
) -> bool {
    (0..u.nrows().min(u.ncols())).any(|i| u[(i, i)] == F::default())
}

fn decomp<F>(op: &Op, inputs: &[Array], outs: Outs) -> Result<Vec<Data>>
where
    F: Element + faer::traits::RealField,
{
    let datas: Vec<Data> = inputs.iter().map(|x| x.ready_data()).collect();
    let layouts: Vec<MatLayout> = datas
        .iter()
        .zip(inputs)
        .map(|(d, x)| layout(d, x.shape()))
        .collect();
    let srcs: Vec<&[F]> = datas.iter().map(|d| d.buffer.as_slice::<F>()).collect();
    let dims: Vec<(usize, usize)> = inputs.iter().map(mat_dims).collect();
    let batch = layouts[0].offs.len();
    let mats = |b: usize| -> Vec<Mat<F>> {
        (0..inputs.len())
            .map(|i| load(srcs[i], &layouts[i], b, dims[i].0, dims[i].1))
            .collect()
    };
    let nouts = outs.len();
    let one = |b: usize| -> Result<Vec<Piece<F>>> {
        let ms = mats(b);
        let a = &ms[0];
        Ok(match *op {
            Op::Cholesky { upper } => {
                let side = if upper { Side::Upper } else { Side::Lower };
                let llt = a
                    .llt(side)
                    .map_err(|_| Error::invalid(op.name(), "matrix is not positive definite"))?;
                let l = llt.L();
                let n = l.nrows();
                let mut v = store(l, upper);
                // faer leaves the other triangle as it likes; NumPy returns zeros there.
                for i in 0..n {
                    for j in 0..n {
                        if (upper && j < i) || (!upper && j > i) {
                            v[i * n + j] = F::default();
                        }
                    }
                }
                vec![Piece::F(v)]
            }
            Op::Inv => {
                let lu = a.partial_piv_lu();
                if has_zero_diag(lu.U()) {
                    return Err(singular(op));
                }
                vec![Piece::F(store(lu.inverse().as_ref(), false))]
            }
            Op::LuFactor => {
                let (m, n) = (a.nrows(), a.ncols());
                let lu = a.partial_piv_lu();
                let (l, u) = (lu.L(), lu.U());
                let mut v = vec![F::default(); m * n];
                for i in 0..m {
                    for j in 0..n {
                        v[i * n + j] = if i > j { l[(i, j)] } else { u[(i, j)] };
                    }
                }
                // faer gives the row permutation (row i of L U is row fwd[i] of a); LAPACK's
                // pivots are the sequence of swaps that produces it.
                let fwd: Vec<usize> = lu.P().arrays().0.to_vec();
                let k = m.min(n);
                let mut cur: Vec<usize> = (0..m).collect();
                let mut pos: Vec<usize> = (0..m).collect();
                let mut piv = Vec::with_capacity(k);
                for (i, &want) in fwd.iter().enumerate().take(k) {
                    let j = pos[want];
                    piv.push(j as i32);
                    let displaced = cur[i];
                    cur.swap(i, j);
                    pos[want] = i;
                    pos[displaced] = j;
                }
                let mut p = vec![Piece::F(v), Piece::I(piv)];
                if nouts == 3 {
                    p.push(Piece::I(fwd.iter().map(|&x| x as i32).collect()));
                }
                p
            }
            Op::Qr => {
                let qr = a.qr();
                let q = qr.compute_thin_Q();
                let r = qr.thin_R();
                let mut rv = store(r, false);
                let c = r.ncols();
                for i in 0..r.nrows() {
                    for j in 0..i.min(c) {
                        rv[i * c + j] = F::default();
                    }
                }
                vec![Piece::F(store(q.as_ref(), false)), Piece::F(rv)]
            }
            Op::Svd {
                compute_uv,
                full_matrices,
            } => {
                let err = |_| Error::invalid(op.name(), "SVD did not converge");
                if !compute_uv {
                    let mut s = a.singular_values().map_err(err)?;
                    s.sort_by(|x, y| y.partial_cmp(x).unwrap_or(std::cmp::Ordering::Equal));
                    vec![Piece::F(s)]
                } else {
                    let svd = if full_matrices { a.svd() } else { a.thin_svd() }.map_err(err)?;
                    let s = svd.S().column_vector();
                    let s: Vec<F> = (0..s.nrows()).map(|i| s[i]).collect();
                    vec![
                        Piece::F(store(svd.U(), false)),
                        Piece::F(s),
                        Piece::F(store(svd.V(), true)),
                    ]
                }
            }
            Op::Eigh { upper } => {
                let side = if upper { Side::Upper } else { Side::Lower };
                let e = a
                    .self_adjoint_eigen(side)
                    .map_err(|_| Error::invalid(op.name(), "eigh did not converge"))?;
                let s = e.S().column_vector();
                let n = s.nrows();
                let mut order: Vec<usize> = (0..n).collect();
                order
                    .sort_by(|&x, &y| s[x].partial_cmp(&s[y]).unwrap_or(std::cmp::Ordering::Equal));
                let w: Vec<F> = order.iter().map(|&i| s[i]).collect();
                let u = e.U();
                let mut v = vec![F::default(); n * n];
                for i in 0..n {
                    for (jj, &j) in order.iter().enumerate() {
                        v[i * n + jj] = u[(i, j)];
                    }
                }
                vec![Piece::F(w), Piece::F(v)]
            }
            Op::SolveTriangular {
                upper,
                unit_diagonal,
                left,
            } => {
                let b = &ms[1];
                if !unit_diagonal && has_zero_diag(a.as_ref()) {
                    return Err(singular(op));
                }
                // x a = b is a^T x^T = b^T, with the other triangle.
                let (tri, mut rhs, up) = if left {
                    (a.as_ref(), b.clone(), upper)
                } else {
                    (a.transpose(), b.transpose().to_owned(), !upper)
                };
                use faer::linalg::triangular_solve as ts;
                let par = Par::Seq;
                match (up, unit_diagonal) {
                    (true, false) => ts::solve_upper_triangular_in_place(tri, rhs.as_mut(), par),
                    (true, true) => {
                        ts::solve_unit_upper_triangular_in_place(tri, rhs.as_mut(), par)
                    }
                    (false, false) => ts::solve_lower_triangular_in_place(tri, rhs.as_mut(), par),
                    (false, true) => {
                        ts::solve_unit_lower_triangular_in_place(tri, rhs.as_mut(), par)
                    }
                }
                vec![Piece::F(store(rhs.as_ref(), !left))]
            }
            Op::Solve => {
                let lu = a.partial_piv_lu();
                if has_zero_diag(lu.U()) {
                    return Err(singular(op));
                }
                let x = lu.solve(ms[1].as_ref());
                vec![Piece::F(store(x.as_ref(), false))]
            }
            _ => return Err(super::not_here(op)),
        })
    };
    let results: Vec<Vec<Piece<F>>> = if batch > 1 {
        (0..batch).into_par_iter().map(one).collect::<Result<_>>()?
    } else {
        (0..batch).map(one).collect::<Result<_>>()?
    };
    assemble(results, outs)
}

/// Concatenates each output's per-matrix pieces into its row-major buffer. Shapes come from
/// `outs` when they fit: a dropped sibling output is listed with a placeholder shape.
fn assemble<F: Element>(results: Vec<Vec<Piece<F>>>, outs: Outs) -> Result<Vec<Data>> {
    let mut datas = Vec::with_capacity(outs.len());
    for (o, (shape, _)) in outs.iter().enumerate() {
        let ints = matches!(results.first().map(|r| &r[o]), Some(Piece::I(_)));
        let total: usize = results
            .iter()
            .map(|r| match &r[o] {
                Piece::F(v) => v.len(),
                Piece::I(v) => v.len(),
            })
            .sum();
        let size = if ints { 4 } else { F::DTYPE.size() };
        let mut buf = Buffer::zeroed(total * size)?;
        let mut at = 0;
        for r in &results {
            match &r[o] {
                Piece::F(v) => buf.as_slice_mut::<F>()[at..at + v.len()].copy_from_slice(v),
                Piece::I(v) => buf.as_slice_mut::<i32>()[at..at + v.len()].copy_from_slice(v),
            }
            at += match &r[o] {
                Piece::F(v) => v.len(),
                Piece::I(v) => v.len(),
            };
        }
        let shape = if size_of(shape) == total {
            shape.clone()
        } else {
            vec![total]
        };
        datas.push(out_data(buf, &shape));
    }
    Ok(datas)
}
