//! CPU kernels of the shape family: concatenate and pad. Both only move elements, so they run
//! on unsigned integers of the element's width: one instantiation per width, not per dtype.
//! Work is split over the flat output (`fill_output`), each chunk copying whole runs with
//! `copy_from_slice` where the source is contiguous.

use super::strided::{fill_output, out_data, rows};
use super::Outs;
use crate::array::{Array, Data};
use crate::dtype::{DType, Element, Scalar};
use crate::op::{Op, PadMode};
use crate::shape::{collapse_dims, size_of};
use crate::Result;

/// Runs `$body` with `$T` an element type of `$dtype`'s width. complex64 keeps its own type:
/// its buffers may be only 4-byte aligned (mapped files), too little for u64.
macro_rules! by_width {
    ($dtype:expr, $T:ident => $body:expr) => {
        match ($dtype, $dtype.size()) {
            (DType::C64, _) => {
                type $T = num_complex::Complex32;
                $body
            }
            (_, 1) => {
                type $T = u8;
                $body
            }
            (_, 2) => {
                type $T = u16;
                $body
            }
            (_, 4) => {
                type $T = u32;
                $body
            }
            _ => {
                type $T = u64;
                $body
            }
        }
    };
}

pub fn eval(op: &Op, inputs: &[Array], outs: Outs) -> Result<Vec<Data>> {
    let (out_shape, dtype) = (&outs[0].0, outs[0].1);
    let d = match op {
        Op::Concatenate { axis } => {
            by_width!(dtype, T => concatenate::<T>(inputs, *axis, out_shape)?)
        }
        Op::Pad {
            low,
            high,
            mode,
            value,
        } => {
            let v = scalar_bytes(*value, dtype);
            by_width!(dtype, T => pad::<T>(&inputs[0], low, high, *mode, from_bytes::<T>(v), out_shape)?)
        }
        _ => return Err(super::not_here(op)),
    };
    Ok(vec![d])
}

/// The bytes of `value` converted to `dtype` (little-endian, padded to 8).
fn scalar_bytes(value: Scalar, dtype: DType) -> [u8; 8] {
    crate::dispatch_dtype!(dtype, E => {
        let e: E = value.to_elem::<E>();
        let mut b = [0u8; 8];
        // Safety: E is plain data of at most 8 bytes.
        unsafe {
            std::ptr::copy_nonoverlapping((&e as *const E).cast::<u8>(), b.as_mut_ptr(), std::mem::size_of::<E>())
        };
        b
    })
}

fn from_bytes<W: Element>(b: [u8; 8]) -> W {
    debug_assert!(std::mem::size_of::<W>() <= 8);
    // Safety: W is plain data of at most 8 bytes, read unaligned from the array.
    unsafe { std::ptr::read_unaligned(b.as_ptr() as *const W) }
}

/// Copies `dst.len()` elements starting at `start` with `stride` (1: a memcpy, 0: a fill).
#[inline]
fn copy_run<T: Copy>(dst: &mut [T], src: &[T], start: isize, stride: isize) {
    match stride {
        1 => {
            let s = start as usize;
            dst.copy_from_slice(&src[s..s + dst.len()]);
        }
        0 => dst.fill(src[start as usize]),
        _ => {
            for (i, o) in dst.iter_mut().enumerate() {
                *o = src[(start + i as isize * stride) as usize];
            }
        }
    }
}

/// One input of a concatenate, as its kernel walks it.
struct Part<'a, T> {
    data: &'a [T],
    /// Collapsed layout: row-major order of these dims is the input's row-major order.
    shape: Vec<usize>,
    strides: Vec<isize>,
    offset: isize,
    /// Elements per outer index (the axis and everything after it) ...
    inner: usize,
    /// ... and where they start inside an output row of `total` elements.
    start: usize,
}

/// The output is `outer` rows of `total` elements; input i fills columns
/// `[start_i, start_i + inner_i)` of every row. A chunk of the output covers a contiguous
/// range of each input's row-major order, walked once with `rows`; each run is cut at the
/// output-row boundaries and copied.
fn concatenate<T: Element>(inputs: &[Array], axis: usize, out_shape: &[usize]) -> Result<Data> {
    let n = size_of(out_shape);
    let total: usize = out_shape[axis..].iter().product();
    if n == 0 {
        return Ok(out_data(crate::buffer::Buffer::zeroed(0)?, out_shape));
    }
    let datas: Vec<Data> = inputs.iter().map(|x| x.ready_data()).collect();
    let mut parts = Vec::with_capacity(inputs.len());
    let mut start = 0usize;
    for (x, d) in inputs.iter().zip(&datas) {
        let inner: usize = x.shape()[axis..].iter().product();
        if x.size() > 0 {
            let (shape, st) = collapse_dims(x.shape(), &[&d.strides]);
            parts.push(Part {
                data: d.buffer.as_slice::<T>(),
                shape,
                strides: st.into_iter().next().unwrap(),
                offset: d.offset as isize,
                inner,
                start,
            });
        }
        start += inner;
    }
    let buf = fill_output::<T>(n, |p0, out| {
        let p1 = p0 + out.len();
        for p in &parts {
            // Elements of this input that precede output position q.
            let before =
                |q: usize| (q / total) * p.inner + (q % total).saturating_sub(p.start).min(p.inner);
            let (a, b) = (before(p0), before(p1));
            if a >= b {
                continue;
            }
            let ls = *p.strides.last().unwrap();
            rows::<1>(
                &p.shape,
                [&p.strides],
                [p.offset],
                a,
                b - a,
                |pos, [o], run| {
                    let (mut pos, mut src, mut left) = (pos, o, run);
                    while left > 0 {
                        let (row, w) = (pos / p.inner, pos % p.inner);
                        let take = left.min(p.inner - w);
                        let d0 = row * total + p.start + w - p0;
                        copy_run(&mut out[d0..d0 + take], p.data, src, ls);
                        pos += take;
                        src += take as isize * ls;
                        left -= take;
                    }
                },
            );
        }
    })?;
    Ok(out_data(buf, out_shape))
}

/// For each output index along an axis of length `n` padded by (`low`, `high`): the input
/// index it copies, or -1 for the constant.
fn axis_map(mode: PadMode, n: usize, low: usize, high: usize) -> Vec<isize> {
    let n = n as isize;
    (0..low + n as usize + high)
        .map(|j| {
            let i = j as isize - low as isize;
            if (0..n).contains(&i) {
                return i;
            }
            if n == 0 {
                return -1;
            }
            match mode {
                PadMode::Constant => -1,
                PadMode::Edge => i.clamp(0, n - 1),
                // Reflection is periodic: period 2(n-1) without the edge, 2n with it. A
                // length-1 axis reflects to itself (NumPy's legacy behavior).
                PadMode::Reflect => {
                    if n == 1 {
                        0
                    } else {
                        let p = 2 * (n - 1);
                        let m = i.rem_euclid(p);
                        if m >= n {
                            p - m
                        } else {
                            m
                        }
                    }
                }
                PadMode::Symmetric => {
                    let p = 2 * n;
                    let m = i.rem_euclid(p);
                    if m >= n {
                        p - 1 - m
                    } else {
                        m
                    }
                }
            }
        })
        .collect()
}

/// Pad, one output row at a time. Trailing axes without padding whose layout is uniform are
/// merged into blocks of the last padded axis (the "row axis"), so a row is long even when
/// the padded axis is not the last: padding H and W of (N, H, W, C) copies runs of W*C.
fn pad<T: Element>(
    x: &Array,
    low: &[usize],
    high: &[usize],
    mode: PadMode,
    value: T,
    out_shape: &[usize],
) -> Result<Data> {
    let n = size_of(out_shape);
    let shape = x.shape();
    let nd = shape.len();
    if n == 0 {
        return Ok(out_data(crate::buffer::Buffer::zeroed(0)?, out_shape));
    }
    let d = x.ready_data();
    let src = d.buffer.as_slice::<T>();
    if nd == 0 {
        let v = src[d.offset];
        return Ok(out_data(fill_output::<T>(1, |_, o| o[0] = v)?, out_shape));
    }
    // Row axis r; block of `block` elements spaced `bs` apart (the merged trailing axes).
    let mut r = nd - 1;
    let mut block = 1usize;
    let mut bs = 1isize;
    while r > 0 && low[r] == 0 && high[r] == 0 {
        if shape[r] != 1 {
            if block == 1 {
                bs = d.strides[r];
            } else if d.strides[r] != bs * block as isize {
                break;
            }
        }
        block *= shape[r];
        r -= 1;
    }
    let rs = d.strides[r];
    let nr = shape[r];
    let maps: Vec<Vec<isize>> = (0..=r)
        .map(|a| axis_map(mode, shape[a], low[a], high[a]))
        .collect();
    let row_len = out_shape[r] * block;
    let (lo_e, hi_e) = (low[r] * block, (low[r] + nr) * block);
    // Interior elements are evenly spaced: one strided run covers any range of them.
    let uniform = block == 1 || nr <= 1 || rs == bs * block as isize;
    let run_stride = if block == 1 { rs } else { bs };
    let row_map = &maps[r];

    let buf = fill_output::<T>(n, |p0, out| {
        let p1 = p0 + out.len();
        let mut p = p0;
        while p < p1 {
            let (row, u0) = (p / row_len, p % row_len);
            let u1 = row_len.min(u0 + (p1 - p));
            let dst = &mut out[p - p0..p - p0 + (u1 - u0)];
            p += u1 - u0;
            // The row's source offset from the outer axes (None: a constant row).
            let mut base = Some(d.offset as isize);
            let mut rem = row;
            for a in (0..r).rev() {
                let i = rem % out_shape[a];
                rem /= out_shape[a];
                let m = maps[a][i];
                match (m, base) {
                    (-1, _) => base = None,
                    (_, Some(b)) => base = Some(b + m * d.strides[a]),
                    _ => {}
                }
            }
            let Some(base) = base else {
                dst.fill(value);
                continue;
            };
            // Interior range of this piece, copied as one strided run when uniform.
            let (i0, i1) = (u0.max(lo_e), u1.min(hi_e));
            let mut u = u0;
            while u < u1 {
                if uniform && u == i0 && i0 < i1 {
                    let q = (u - lo_e) as isize;
                    let start = base + (q / block as isize) * rs + (q % block as isize) * bs;
                    copy_run(&mut dst[u - u0..i1 - u0], src, start, run_stride);
                    u = i1;
                    continue;
                }
                if mode == PadMode::Constant && (u < lo_e || u >= hi_e) {
                    let end = if u < lo_e { lo_e.min(u1) } else { u1 };
                    dst[u - u0..end - u0].fill(value);
                    u = end;
                    continue;
                }
                let (j, k) = (u / block, u % block);
                let take = (block - k).min(u1 - u);
                let piece = &mut dst[u - u0..u - u0 + take];
                match row_map[j] {
                    -1 => piece.fill(value),
                    m => copy_run(piece, src, base + m * rs + k as isize * bs, bs),
                }
                u += take;
            }
        }
    })?;
    Ok(out_data(buf, out_shape))
}
