//! CPU kernels: convolution and pooling over channels-last layouts.
//!
//! Convolution gathers tiles of output rows into an im2col matrix (bounded memory) and
//! multiplies it by the weights with `gemm`; a 1x1 stride-1 convolution multiplies the input
//! directly, and depthwise convolutions (one input channel per group) run a direct kernel
//! that is vectorized over channels. f16/bf16 compute in f32 and round once at the end.

use super::strided::{contiguous_cow, out_data, PAR_MIN};
use super::Outs;
use crate::array::{gather_elems, Array, Data};
use crate::buffer::Buffer;
use crate::dtype::{DType, Element};
use crate::op::{Op, PoolKind};
use crate::shape::{contiguous_strides, size_of};
use crate::Result;
use gemm::Parallelism;
use rayon::prelude::*;
use std::borrow::Cow;

/// The types kernels compute in.
trait Real: Element + num_traits::Float + std::ops::AddAssign {}
impl Real for f32 {}
impl Real for f64 {}

/// Elements of one im2col tile (per thread): large enough for GEMM to run at speed, small
/// enough to stay in cache.
const COL_ELEMS: usize = 1 << 18;

pub fn eval(op: &Op, inputs: &[Array], outs: Outs) -> Result<Vec<Data>> {
    let (shape, dtype) = (&outs[0].0, outs[0].1);
    let n_out = size_of(shape);
    let buf = match op {
        Op::Conv {
            stride,
            padding_lo,
            kernel_dilation,
            input_dilation,
            groups,
            flip,
            ..
        } => {
            let (x, w) = (&inputs[0], &inputs[1]);
            let nd = x.ndim() - 2;
            let in_sp = &x.shape()[1..nd + 1];
            let cin = x.shape()[nd + 1];
            let taps = Taps::new(
                in_sp,
                &shape[1..nd + 1],
                &w.shape()[1..nd + 1],
                stride,
                padding_lo,
                kernel_dilation,
                input_dilation,
                *flip,
                cin,
            );
            let trivial = taps.kprod == 1
                && in_sp == &shape[1..nd + 1]
                && stride.iter().all(|&s| s == 1)
                && padding_lo.iter().all(|&p| p == 0)
                && input_dilation.iter().all(|&d| d == 1);
            let g = ConvGeom {
                n: x.shape()[0],
                p: size_of(&shape[1..nd + 1]),
                in_item: size_of(in_sp) * cin,
                cin,
                cout: shape[nd + 1],
                groups: *groups,
                taps,
                trivial,
                k_sp: w.shape()[1..nd + 1].to_vec(),
                stride: stride.clone(),
                lo: padding_lo.clone(),
                kd: kernel_dilation.clone(),
                idil: input_dilation.clone(),
                flip: *flip,
            };
            let (dx, dw) = (x.ready_data(), w.ready_data());
            if dtype == DType::F64 {
                let (xs, ws) = (
                    as_compute::<f64>(&dx, x.shape(), x.dtype()),
                    as_compute::<f64>(&dw, w.shape(), w.dtype()),
                );
                run::<f64>(dtype, n_out, |out| conv(&xs, &ws, &g, out))?
            } else {
                let (xs, ws) = (
                    as_compute::<f32>(&dx, x.shape(), x.dtype()),
                    as_compute::<f32>(&dw, w.shape(), w.dtype()),
                );
                run::<f32>(dtype, n_out, |out| conv(&xs, &ws, &g, out))?
            }
        }
        Op::Pool {
            kind,
            window,
            stride,
            padding,
            count_pad,
        } => {
            let x = &inputs[0];
            let nd = x.ndim() - 2;
            let in_sp = &x.shape()[1..nd + 1];
            let c = x.shape()[nd + 1];
            let ones = vec![1; nd];
            let g = PoolGeom {
                p: size_of(&shape[1..nd + 1]),
                in_item: size_of(in_sp) * c,
                c,
                taps: Taps::new(
                    in_sp,
                    &shape[1..nd + 1],
                    window,
                    stride,
                    padding,
                    &ones,
                    &ones,
                    false,
                    c,
                ),
                kind: *kind,
                count_pad: *count_pad,
            };
            let dx = x.ready_data();
            if dtype == DType::F64 {
                let xs = as_compute::<f64>(&dx, x.shape(), x.dtype());
                run::<f64>(dtype, n_out, |out| pool(&xs, &g, out))?
            } else {
                let xs = as_compute::<f32>(&dx, x.shape(), x.dtype());
                run::<f32>(dtype, n_out, |out| pool(&xs, &g, out))?
            }
        }
        _ => return Err(super::not_here(op)),
    };
    Ok(vec![out_data(buf, shape)])
}

/// The input as a row-major slice of the compute type: borrowed when it already is one.
fn as_compute<'a, C: Real>(d: &'a Data, shape: &[usize], dtype: DType) -> Cow<'a, [C]> {
    if dtype == C::DTYPE {
        return contiguous_cow::<C>(d, shape);
    }
    crate::dispatch_dtype!(dtype, T => Cow::Owned(
        gather_elems::<T>(d, shape)
            .into_iter()
            .map(|v| C::from_f64(Element::to_f64(v)))
            .collect()
    ))
}

/// Runs `f` on a zeroed output of the compute type and returns it as a buffer of `dtype`
/// (written in place when the types agree, rounded once otherwise).
fn run<C: Real>(dtype: DType, n: usize, f: impl FnOnce(&mut [C])) -> Result<Buffer> {
    if dtype == C::DTYPE {
        let mut buf = Buffer::zeroed(n * std::mem::size_of::<C>())?;
        f(buf.as_slice_mut::<C>());
        return Ok(buf);
    }
    let mut v = vec![C::zero(); n];
    f(&mut v);
    crate::dispatch_dtype!(dtype, T => {
        let mut buf = Buffer::zeroed(n * std::mem::size_of::<T>())?;
        for (o, &x) in buf.as_slice_mut::<T>().iter_mut().zip(&v) {
            *o = T::from_f64(Element::to_f64(x));
        }
        Ok(buf)
    })
}

/// For each spatial dim and output coordinate, the kernel taps that land on a real input
/// cell (not padding, not an input-dilation hole), as (kernel position part, input element
/// offset part). A window's taps are the product of its dims' lists.
struct Taps {
    out_sp: Vec<usize>,
    lists: Vec<Vec<Vec<(usize, usize)>>>,
    kprod: usize,
    /// Per dim, kernel index -> its part of the row-major kernel position.
    kmult: Vec<Vec<usize>>,
}

impl Taps {
    #[allow(clippy::too_many_arguments)]
    fn new(
        in_sp: &[usize],
        out_sp: &[usize],
        k_sp: &[usize],
        stride: &[usize],
        lo: &[usize],
        kdil: &[usize],
        idil: &[usize],
        flip: bool,
        channels: usize,
    ) -> Taps {
        let nd = in_sp.len();
        let kstr = contiguous_strides(k_sp);
        let xstr = contiguous_strides(in_sp);
        let lists = (0..nd)
            .map(|d| {
                let in_d = if in_sp[d] == 0 {
                    0
                } else {
                    ((in_sp[d] - 1) * idil[d] + 1) as isize
                };
                (0..out_sp[d])
                    .map(|o| {
                        (0..k_sp[d])
                            .filter_map(|k| {
                                let ke = if flip { k_sp[d] - 1 - k } else { k };
                                let v = (o * stride[d] + ke * kdil[d]) as isize - lo[d] as isize;
                                if v < 0 || v >= in_d || v as usize % idil[d] != 0 {
                                    return None;
                                }
                                let i = v as usize / idil[d];
                                Some((k, i * xstr[d] as usize * channels))
                            })
                            .collect()
                    })
                    .collect()
            })
            .collect();
        Taps {
            out_sp: out_sp.to_vec(),
            lists,
            kprod: size_of(k_sp),
            kmult: (0..nd)
                .map(|d| (0..k_sp[d]).map(|k| k * kstr[d] as usize).collect())
                .collect(),
        }
    }

    /// Output coordinates of flat output position `p`.
    fn coords(&self, p: usize, oc: &mut [usize]) {
        let mut rem = p;
        for d in (0..oc.len()).rev() {
            oc[d] = rem % self.out_sp[d];
            rem /= self.out_sp[d];
        }
    }

    /// Number of real taps of the window at `oc`.
    fn count(&self, oc: &[usize]) -> usize {
        oc.iter()
            .enumerate()
            .map(|(d, &o)| self.lists[d][o].len())
            .product()
    }

    /// Calls `f(kernel_position, input_offset)` for every real tap of the window at `oc`;
    /// `mult[d][k]` gives dim d's part of the kernel position (see `kmult`).
    fn each(
        &self,
        oc: &[usize],
        idx: &mut [usize],
        mult: &[Vec<usize>],
        mut f: impl FnMut(usize, usize),
    ) {
        let nd = oc.len();
        for d in 0..nd {
            if self.lists[d][oc[d]].is_empty() {
                return;
            }
            idx[d] = 0;
        }
        loop {
            let (mut kp, mut off) = (0, 0);
            for d in 0..nd {
                let (k, b) = self.lists[d][oc[d]][idx[d]];
                kp += mult[d][k];
                off += b;
            }
            f(kp, off);
            let mut d = nd;
            loop {
                if d == 0 {
                    return;
                }
                d -= 1;
                idx[d] += 1;
                if idx[d] < self.lists[d][oc[d]].len() {
                    break;
                }
                idx[d] = 0;
            }
        }
    }
}

struct ConvGeom {
    n: usize,
    /// Output positions per batch item.
    p: usize,
    /// Input elements per batch item.
    in_item: usize,
    cin: usize,
    cout: usize,
    groups: usize,
    taps: Taps,
    /// 1x1 kernel, stride 1, no padding or dilation: the input is its own im2col matrix.
    trivial: bool,
    k_sp: Vec<usize>,
    stride: Vec<usize>,
    lo: Vec<usize>,
    kd: Vec<usize>,
    idil: Vec<usize>,
    flip: bool,
}

/// `out = im2col(x) @ w^T` per group: out (rows, C_out), w (C_out, K*C_in/G) row-major.
fn conv<C: Real>(x: &[C], w: &[C], g: &ConvGeom, out: &mut [C]) {
    let rows = g.n * g.p;
    let cin_g = g.cin / g.groups;
    let cout_g = g.cout / g.groups;
    let kc_g = g.taps.kprod * cin_g;
    if rows == 0 || g.cout == 0 || kc_g == 0 {
        // Empty output, or no input channels: the zeroed output is the answer.
        return;
    }
    if cin_g == 1 && g.groups > 1 {
        return depthwise(x, w, g, out);
    }
    if g.idil.iter().any(|&d| d > 1) {
        return conv_phased(x, w, g, out);
    }
    let threads = rayon::current_num_threads().max(1);
    let big = rows * kc_g * g.cout >= 1 << 18;
    if g.trivial && g.groups == 1 {
        let par = if big && threads > 1 {
            Parallelism::Rayon(0)
        } else {
            Parallelism::None
        };
        // SAFETY: x is (rows, cin), w (cout, cin), out (rows, cout), all row-major.
        unsafe {
            gemm_nt(
                rows,
                g.cout,
                g.cin,
                out.as_mut_ptr(),
                g.cout,
                x.as_ptr(),
                g.cin,
                w.as_ptr(),
                g.cin,
                par,
            )
        };
        return;
    }
    let kc = g.taps.kprod * g.cin;
    let tile_mem = (COL_ELEMS / kc).max(8);
    let tile_par = rows.div_ceil(threads * 4);
    let par_tiles = big && threads > 1 && tile_par >= 32;
    let tile = if par_tiles {
        tile_mem.min(tile_par)
    } else {
        tile_mem.min(rows)
    };
    let gemm_par = if !par_tiles && big && threads > 1 {
        Parallelism::Rayon(0)
    } else {
        Parallelism::None
    };
    let nd = g.taps.out_sp.len();
    let body = |scratch: &mut (Vec<C>, Vec<usize>), t: usize, chunk: &mut [C]| {
        let (col, sc) = scratch;
        let nr = chunk.len() / g.cout;
        im2col(x, g, t * tile, nr, &mut col[..nr * kc], sc);
        for grp in 0..g.groups {
            // SAFETY: the group's column block, weight rows and output columns lie inside
            // col (nr, kc), w (cout, kc_g) and chunk (nr, cout).
            unsafe {
                gemm_nt(
                    nr,
                    cout_g,
                    kc_g,
                    chunk.as_mut_ptr().add(grp * cout_g),
                    g.cout,
                    col.as_ptr().add(grp * kc_g),
                    kc,
                    w.as_ptr().add(grp * cout_g * kc_g),
                    kc_g,
                    gemm_par,
                )
            };
        }
    };
    let init = || (vec![C::zero(); tile * kc], vec![0usize; 2 * nd]);
    if par_tiles {
        out.par_chunks_mut(tile * g.cout)
            .enumerate()
            .for_each_init(init, |s, (t, ch)| body(s, t, ch));
    } else {
        let mut s = init();
        for (t, ch) in out.chunks_mut(tile * g.cout).enumerate() {
            body(&mut s, t, ch);
        }
    }
}

fn unravel(mut i: usize, shape: &[usize], out: &mut [usize]) {
    for d in (0..shape.len()).rev() {
        out[d] = i % shape[d];
        i /= shape[d];
    }
}

/// The output rows of one phase class of an input-dilated convolution and the kernel taps
/// that can land on real cells for them.
struct Phase<C> {
    /// Per dim, the output coordinates of the class.
    os: Vec<Vec<usize>>,
    /// Per dim, kernel index -> position among the class's taps (row-major).
    mult: Vec<Vec<usize>>,
    kprod: usize,
    /// The weights of those taps: (C_out, kprod, C_in / groups).
    w: Vec<C>,
    rows: usize,
}

/// Convolution with input dilation (transposed convolution): a tap lands on a real input
/// cell only when `o * stride + k * dilation - lo` is a multiple of the input dilation, a
/// pattern fixed by each output coordinate's phase. Rows are grouped by phase and each
/// group runs im2col + GEMM over its possible taps only, so no work is spent on the holes.
fn conv_phased<C: Real>(x: &[C], w: &[C], g: &ConvGeom, out: &mut [C]) {
    let nd = g.k_sp.len();
    let cin_g = g.cin / g.groups;
    let cout_g = g.cout / g.groups;
    let full_kstr = contiguous_strides(&g.k_sp);
    let mut phases: Vec<Phase<C>> = Vec::new();
    let mut c = vec![0; nd];
    let mut t = vec![0; nd];
    for ci in 0..size_of(&g.idil) {
        unravel(ci, &g.idil, &mut c);
        let phase = |d: usize, o: usize| {
            ((o * g.stride[d]) as isize - g.lo[d] as isize).rem_euclid(g.idil[d] as isize) as usize
        };
        let os: Vec<Vec<usize>> = (0..nd)
            .map(|d| {
                (0..g.taps.out_sp[d])
                    .filter(|&o| phase(d, o) == c[d])
                    .collect()
            })
            .collect();
        let ks: Vec<Vec<usize>> = (0..nd)
            .map(|d| {
                (0..g.k_sp[d])
                    .filter(|&k| {
                        let ke = if g.flip { g.k_sp[d] - 1 - k } else { k };
                        (c[d] + ke * g.kd[d]) % g.idil[d] == 0
                    })
                    .collect()
            })
            .collect();
        let kn: Vec<usize> = ks.iter().map(|v| v.len()).collect();
        let kprod = size_of(&kn);
        let rows = g.n * os.iter().map(|v| v.len()).product::<usize>();
        if kprod == 0 || rows == 0 {
            // No tap can be real: these outputs are zero, as the buffer already is.
            continue;
        }
        let kstr = contiguous_strides(&kn);
        let mult = (0..nd)
            .map(|d| {
                let mut m = vec![0; g.k_sp[d]];
                for (i, &k) in ks[d].iter().enumerate() {
                    m[k] = i * kstr[d] as usize;
                }
                m
            })
            .collect();
        let mut wc = vec![C::zero(); g.cout * kprod * cin_g];
        for co in 0..g.cout {
            for tp in 0..kprod {
                unravel(tp, &kn, &mut t);
                let kfull: usize = (0..nd).map(|d| ks[d][t[d]] * full_kstr[d] as usize).sum();
                let src = (co * g.taps.kprod + kfull) * cin_g;
                let dst = (co * kprod + tp) * cin_g;
                wc[dst..dst + cin_g].copy_from_slice(&w[src..src + cin_g]);
            }
        }
        phases.push(Phase {
            os,
            mult,
            kprod,
            w: wc,
            rows,
        });
    }
    let threads = rayon::current_num_threads().max(1);
    // Work items: (phase, first row, rows) tiles of bounded im2col size.
    let mut items = Vec::new();
    let mut max_tile = 0;
    let mut work = 0;
    for (pi, ph) in phases.iter().enumerate() {
        let kc = ph.kprod * g.cin;
        let tile = (COL_ELEMS / kc).max(8).min(ph.rows);
        max_tile = max_tile.max(tile * kc.max(g.cout));
        work += ph.rows * kc * cout_g;
        let mut r = 0;
        while r < ph.rows {
            items.push((pi, r, tile.min(ph.rows - r)));
            r += tile;
        }
    }
    let big = work >= 1 << 18 && threads > 1;
    let par_items = big && items.len() >= threads;
    let gemm_par = if big && !par_items {
        Parallelism::Rayon(0)
    } else {
        Parallelism::None
    };
    let outp = SendPtr(out.as_mut_ptr());
    let run_item = |scratch: &mut (Vec<C>, Vec<C>, Vec<usize>),
                    &(pi, r0, nr): &(usize, usize, usize)| {
        let (col, tmp, sc) = scratch;
        let ph = &phases[pi];
        let kc = ph.kprod * g.cin;
        let kc_g = ph.kprod * cin_g;
        let (oc, rest) = sc.split_at_mut(nd);
        let (idx, ri) = rest.split_at_mut(nd);
        let mut dims = vec![g.n];
        dims.extend(ph.os.iter().map(|v| v.len()));
        let mut grows = Vec::with_capacity(nr);
        for r in 0..nr {
            unravel(r0 + r, &dims, ri);
            let mut p = 0;
            for d in 0..nd {
                oc[d] = ph.os[d][ri[d + 1]];
                p = p * g.taps.out_sp[d] + oc[d];
            }
            grows.push(ri[0] * g.p + p);
            let base = ri[0] * g.in_item;
            col_row(
                x,
                g,
                base,
                oc,
                idx,
                &ph.mult,
                ph.kprod,
                &mut col[r * kc..(r + 1) * kc],
            );
        }
        for grp in 0..g.groups {
            // SAFETY: the group's blocks lie inside col (nr, kc), ph.w (cout, kc_g) and
            // tmp (nr, cout).
            unsafe {
                gemm_nt(
                    nr,
                    cout_g,
                    kc_g,
                    tmp.as_mut_ptr().add(grp * cout_g),
                    g.cout,
                    col.as_ptr().add(grp * kc_g),
                    kc,
                    ph.w.as_ptr().add(grp * cout_g * kc_g),
                    kc_g,
                    gemm_par,
                )
            };
        }
        for (r, &gr) in grows.iter().enumerate() {
            // SAFETY: phase classes partition the output rows and tiles partition a class,
            // so every row is written by exactly one item.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    tmp.as_ptr().add(r * g.cout),
                    outp.get().add(gr * g.cout),
                    g.cout,
                )
            };
        }
    };
    let init = || {
        (
            vec![C::zero(); max_tile],
            vec![C::zero(); max_tile],
            vec![0usize; 3 * nd + 1],
        )
    };
    if par_items {
        items.par_iter().for_each_init(init, run_item);
    } else {
        let mut s = init();
        for it in &items {
            run_item(&mut s, it);
        }
    }
}

/// A raw output pointer shared by tasks that write disjoint rows.
#[derive(Clone, Copy)]
struct SendPtr<C>(*mut C);
unsafe impl<C> Send for SendPtr<C> {}
unsafe impl<C> Sync for SendPtr<C> {}
impl<C> SendPtr<C> {
    fn get(self) -> *mut C {
        self.0
    }
}

/// `dst (m, n) = lhs (m, k) @ rhs^T` where rhs is (n, k); all row-major with row strides.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_nt<C: Real>(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut C,
    dst_rs: usize,
    lhs: *const C,
    lhs_rs: usize,
    rhs: *const C,
    rhs_rs: usize,
    par: Parallelism,
) {
    // SAFETY: the caller guarantees the three matrices are in bounds.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_rs as isize,
            false,
            lhs,
            1,
            lhs_rs as isize,
            rhs,
            rhs_rs as isize,
            1,
            C::zero(),
            C::one(),
            false,
            false,
            false,
            par,
        )
    }
}

/// Fills `col` (nr rows of (groups, kernel positions, C_in / groups)) for output rows
/// `r0..r0 + nr`; taps on padding or dilation holes stay zero.
fn im2col<C: Real>(x: &[C], g: &ConvGeom, r0: usize, nr: usize, col: &mut [C], sc: &mut [usize]) {
    let kc = g.taps.kprod * g.cin;
    let (oc, idx) = sc.split_at_mut(sc.len() / 2);
    for r in 0..nr {
        let row = r0 + r;
        g.taps.coords(row % g.p, oc);
        let base = (row / g.p) * g.in_item;
        let dst = &mut col[r * kc..(r + 1) * kc];
        col_row(x, g, base, oc, idx, &g.taps.kmult, g.taps.kprod, dst);
    }
}

/// One im2col row for the window at `oc`: kernel positions numbered by `mult` out of
/// `kprod`, laid out (groups, kprod, C_in / groups).
#[allow(clippy::too_many_arguments)]
fn col_row<C: Real>(
    x: &[C],
    g: &ConvGeom,
    base: usize,
    oc: &[usize],
    idx: &mut [usize],
    mult: &[Vec<usize>],
    kprod: usize,
    dst: &mut [C],
) {
    let cin_g = g.cin / g.groups;
    let gk = kprod * cin_g;
    if g.taps.count(oc) < kprod {
        dst.fill(C::zero());
    }
    g.taps.each(oc, idx, mult, |kp, off| {
        let src = &x[base + off..base + off + g.cin];
        if g.groups == 1 {
            dst[kp * g.cin..(kp + 1) * g.cin].copy_from_slice(src);
        } else {
            for grp in 0..g.groups {
                let d0 = grp * gk + kp * cin_g;
                dst[d0..d0 + cin_g].copy_from_slice(&src[grp * cin_g..(grp + 1) * cin_g]);
            }
        }
    });
}

/// Splits `out` (rows of `row_len`) into chunks of whole rows across threads when the work
/// is large: `f(scratch, first_row, chunk)`.
fn par_rows<C: Send, S>(
    out: &mut [C],
    row_len: usize,
    work_per_row: usize,
    init: impl Fn() -> S + Sync + Send,
    f: impl Fn(&mut S, usize, &mut [C]) + Sync + Send,
) {
    let rows = out.len() / row_len;
    let threads = rayon::current_num_threads().max(1);
    if threads == 1 || rows < 2 || rows * work_per_row < PAR_MIN * 4 {
        f(&mut init(), 0, out);
        return;
    }
    let chunk_rows = rows.div_ceil(threads * 4);
    out.par_chunks_mut(chunk_rows * row_len)
        .enumerate()
        .for_each_init(init, |s, (i, ch)| f(s, i * chunk_rows, ch));
}

/// Depthwise convolution (C_in / groups == 1): each tap is a multiply-add over all channels,
/// with the weights transposed to (kernel position, C_out) so that it runs contiguously.
fn depthwise<C: Real>(x: &[C], w: &[C], g: &ConvGeom, out: &mut [C]) {
    let (c, cout, kprod) = (g.cin, g.cout, g.taps.kprod);
    let m = cout / c;
    let mut wt = vec![C::zero(); kprod * cout];
    for co in 0..cout {
        for kp in 0..kprod {
            wt[kp * cout + co] = w[co * kprod + kp];
        }
    }
    let nd = g.taps.out_sp.len();
    par_rows(
        out,
        cout,
        kprod * cout,
        || vec![0usize; 2 * nd],
        |sc, r0, chunk| {
            let (oc, idx) = sc.split_at_mut(nd);
            for (r, o) in chunk.chunks_mut(cout).enumerate() {
                let row = r0 + r;
                let base = (row / g.p) * g.in_item;
                g.taps.coords(row % g.p, oc);
                o.fill(C::zero());
                g.taps.each(oc, idx, &g.taps.kmult, |kp, off| {
                    let xr = &x[base + off..base + off + c];
                    let wr = &wt[kp * cout..(kp + 1) * cout];
                    if m == 1 {
                        for ((o, &a), &b) in o.iter_mut().zip(xr).zip(wr) {
                            *o += a * b;
                        }
                    } else {
                        for (ci, &a) in xr.iter().enumerate() {
                            let (os, ws) =
                                (&mut o[ci * m..(ci + 1) * m], &wr[ci * m..(ci + 1) * m]);
                            for (o, &b) in os.iter_mut().zip(ws) {
                                *o += a * b;
                            }
                        }
                    }
                });
            }
        },
    );
}

struct PoolGeom {
    p: usize,
    in_item: usize,
    c: usize,
    taps: Taps,
    kind: PoolKind,
    count_pad: bool,
}

/// Max or average over each window, vectorized over channels; padding taps are skipped
/// (they never win a max, and count in an average's divisor only with `count_pad`).
fn pool<C: Real>(x: &[C], g: &PoolGeom, out: &mut [C]) {
    let c = g.c;
    if c == 0 || out.is_empty() {
        return;
    }
    let nd = g.taps.out_sp.len();
    let kprod = g.taps.kprod;
    par_rows(
        out,
        c,
        kprod * c,
        || vec![0usize; 2 * nd],
        |sc, r0, chunk| {
            let (oc, idx) = sc.split_at_mut(nd);
            for (r, o) in chunk.chunks_mut(c).enumerate() {
                let row = r0 + r;
                let base = (row / g.p) * g.in_item;
                g.taps.coords(row % g.p, oc);
                match g.kind {
                    PoolKind::Max => {
                        o.fill(C::neg_infinity());
                        g.taps.each(oc, idx, &g.taps.kmult, |_, off| {
                            for (m, &v) in o.iter_mut().zip(&x[base + off..base + off + c]) {
                                // NaN wins and then stays (PyTorch propagates NaN).
                                if v > *m || v.is_nan() {
                                    *m = v;
                                }
                            }
                        });
                    }
                    PoolKind::Avg => {
                        o.fill(C::zero());
                        g.taps.each(oc, idx, &g.taps.kmult, |_, off| {
                            for (s, &v) in o.iter_mut().zip(&x[base + off..base + off + c]) {
                                *s += v;
                            }
                        });
                        let div = if g.count_pad { kprod } else { g.taps.count(oc) };
                        let div = C::from_f64(div as f64);
                        for s in o.iter_mut() {
                            *s = *s / div;
                        }
                    }
                }
            }
        },
    );
}
