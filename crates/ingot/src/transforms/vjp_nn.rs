//! Reverse-mode rules of convolution, pooling, FFT and grid_sample.
//! Same contract as the rules in `vjp.rs`.
//!
//! Every rule is built from ordinary ops (mostly `Op::Conv` and `Op::Fft` nodes again), so
//! gradients can be differentiated again and transposed for `jvp`.

use super::vjp::no_rule;
use crate::op::{FftKind, GridPadding, InterpMode, Op, PadMode, PoolKind};
use crate::{Array, DType, Error, Result, SliceArg};

type Grads = Vec<Option<Array>>;

pub(crate) fn rule(
    op: &Op,
    inputs: &[Array],
    outs: &[Option<Array>],
    cts: &[Option<Array>],
    needs: &[bool],
) -> Result<Grads> {
    let out0 = outs.first().cloned().flatten();
    // No cotangent reached the output: nothing flows back.
    let Some(g) = cts.first().cloned().flatten() else {
        return Ok(vec![None; inputs.len()]);
    };
    match op {
        Op::Conv {
            stride,
            padding_lo,
            kernel_dilation,
            input_dilation,
            groups,
            flip,
            ..
        } => {
            let p = ConvParams {
                stride,
                lo: padding_lo,
                kd: kernel_dilation,
                idil: input_dilation,
                groups: *groups,
                flip: *flip,
            };
            let (x, w) = (&inputs[0], &inputs[1]);
            let g = crate::astype(&g, x.dtype())?;
            let gx = if needs[0] {
                Some(conv_input_grad(&g, w, x.shape(), &p)?)
            } else {
                None
            };
            let gw = if needs[1] {
                Some(conv_weight_grad(x, &g, w.shape(), &p)?)
            } else {
                None
            };
            Ok(vec![gx, gw])
        }
        Op::Pool {
            kind,
            window,
            stride,
            padding,
            count_pad,
        } => {
            let x = &inputs[0];
            let g = crate::astype(&g, x.dtype())?;
            let gx = match kind {
                PoolKind::Avg => avg_pool_grad(x, &g, window, stride, padding, *count_pad)?,
                PoolKind::Max => {
                    let y = match out0 {
                        Some(y) => y,
                        None => Array::from_op(
                            op.clone(),
                            vec![x.clone()],
                            g.shape().to_vec(),
                            x.dtype(),
                        ),
                    };
                    max_pool_grad(x, &y, &g, window, stride, padding)?
                }
            };
            Ok(vec![Some(gx)])
        }
        Op::Fft { axes, kind } => Ok(vec![Some(fft_grad(op, &inputs[0], &g, axes, *kind)?)]),
        Op::GridSample {
            mode,
            padding,
            align_corners,
        } => grid_sample_grad(&inputs[0], &inputs[1], &g, *mode, *padding, *align_corners),
        _ => Err(no_rule(
            op,
            ": not a convolution, pooling, FFT or grid_sample op",
        )),
    }
}

fn internal(what: String) -> Error {
    Error::invalid("vjp", format!("internal: {what}"))
}

// ---- convolution ----------------------------------------------------------------------------

struct ConvParams<'a> {
    stride: &'a [usize],
    lo: &'a [usize],
    kd: &'a [usize],
    idil: &'a [usize],
    groups: usize,
    flip: bool,
}

/// Size of an axis of `n` cells after inserting `d - 1` holes between neighbours.
fn dilated(n: usize, d: usize) -> usize {
    if n == 0 {
        0
    } else {
        (n - 1) * d + 1
    }
}

fn iperm(v: impl IntoIterator<Item = usize>) -> Vec<isize> {
    v.into_iter().map(|i| i as isize).collect()
}

/// Cotangent of the input of a convolution.
///
/// Per spatial dim the forward reads, for output o and tap k, the padded dilated input at
/// `o*s + ke(k)*kd` (ke = k, or K-1-k with `flip`), i.e. input row i where
/// `i*idil = o*s + ke*kd - lo`. So the input cotangent at i sums `g_s[i*idil + j*kd - lo']`
/// times the kernel with the other flip, where g_s is g dilated by the stride and
/// `lo' = span - 1 - lo`: a convolution of g with input_dilation = stride, stride = idil,
/// in and out channels swapped per group. Output rows that read only padding are cropped
/// from g first, which keeps both paddings non-negative and the output exactly x's size.
fn conv_input_grad(g: &Array, w: &Array, x_shape: &[usize], p: &ConvParams) -> Result<Array> {
    let nd = x_shape.len() - 2;
    let dt = g.dtype();
    let zero = || crate::zeros(x_shape, dt);
    if g.size() == 0 || x_shape.iter().product::<usize>() == 0 {
        return zero();
    }
    let mut args = vec![SliceArg::ALL];
    let (mut lo2, mut hi2) = (Vec::with_capacity(nd), Vec::with_capacity(nd));
    for d in 0..nd {
        let (l, k, o) = (x_shape[d + 1], w.shape()[d + 1], g.shape()[d + 1]);
        let (s, lo) = (p.stride[d] as isize, p.lo[d] as isize);
        let span = dilated(k, p.kd[d]) as isize;
        // g_s positions read for some input row: [lo - span + 1, (l-1)*idil + lo].
        let first = lo - span + 1;
        let last = ((l - 1) * p.idil[d]) as isize + lo;
        let o_start = if first <= 0 { 0 } else { (first + s - 1) / s };
        let o_end = (o as isize - 1).min(last / s);
        if o_start > o_end {
            // No output ever read a real input cell on this dim.
            return zero();
        }
        args.push(SliceArg::range(o_start, o_end + 1));
        lo2.push((span - 1 - lo + o_start * s) as usize);
        hi2.push((last - o_end * s) as usize);
    }
    let gc = crate::slice(g, &args)?;
    let wt = swap_kernel_channels(w, p.groups)?;
    let pairs: Vec<(usize, usize)> = lo2.into_iter().zip(hi2).collect();
    let gx = crate::conv_general(
        &gc,
        &crate::astype(&wt, dt)?,
        p.idil,
        crate::Padding::Pairs(pairs),
        p.kd,
        p.stride,
        p.groups,
        !p.flip,
    )?;
    if gx.shape() != x_shape {
        return Err(internal(format!(
            "conv input gradient has shape {:?}, want {:?}",
            gx.shape(),
            x_shape
        )));
    }
    Ok(gx)
}

/// (C_out, *K, C_in/G) -> (C_in, *K, C_out/G), swapping in and out channels inside each group.
fn swap_kernel_channels(w: &Array, groups: usize) -> Result<Array> {
    let nd = w.ndim() - 2;
    let (cout, cin_g) = (w.shape()[0], w.shape()[nd + 1]);
    let k = &w.shape()[1..nd + 1];
    let mut s = vec![groups, cout / groups];
    s.extend_from_slice(k);
    s.push(cin_g);
    let wr = crate::reshape_to(w, &s)?;
    let mut perm = vec![0, nd + 2];
    perm.extend(2..nd + 2);
    perm.push(1);
    let wt = crate::transpose(&wr, Some(&iperm(perm)))?;
    let mut to = vec![groups * cin_g];
    to.extend_from_slice(k);
    to.push(cout / groups);
    crate::reshape_to(&wt, &to)
}

/// Cotangent of the kernel of a convolution: for kernel position ke the forward multiplies
/// it by the padded dilated input at `o*s + ke*kd` for every output o and batch item n, so
/// `gw[co, ke, ci] = sum_{n,o} g[n, o, co] xp[n, ke*kd + o*s, ci]`: a convolution of x (batch
/// and channels swapped, groups folded into the channels) with g as the kernel, stride kd and
/// kernel dilation s. Input rows beyond the last one the forward read are cropped.
fn conv_weight_grad(x: &Array, g: &Array, w_shape: &[usize], p: &ConvParams) -> Result<Array> {
    let nd = x.ndim() - 2;
    let dt = g.dtype();
    let zero = || crate::zeros(w_shape, dt);
    if g.size() == 0 || x.size() == 0 {
        return zero();
    }
    let (n, cin) = (x.shape()[0], x.shape()[nd + 1]);
    let groups = p.groups;
    let cin_g = cin / groups;
    let mut args = vec![SliceArg::ALL];
    let mut pairs = Vec::with_capacity(nd);
    let mut sp = Vec::with_capacity(nd);
    for d in 0..nd {
        let (l, k, o) = (x.shape()[d + 1], w_shape[d + 1], g.shape()[d + 1]);
        let u_max = (k - 1) * p.kd[d] + (o - 1) * p.stride[d];
        if u_max < p.lo[d] {
            // The kernel only ever met padding on this dim.
            return zero();
        }
        let l2 = l.min((u_max - p.lo[d]) / p.idil[d] + 1);
        args.push(SliceArg::range(0, l2 as isize));
        pairs.push((p.lo[d], u_max + 1 - dilated(l2, p.idil[d]) - p.lo[d]));
        sp.push(l2);
    }
    let xc = crate::slice(x, &args)?;
    // (N, *sp, G, C_in/G) -> (C_in/G, *sp, G, N) -> (C_in/G, *sp, G*N)
    let mut s = vec![n];
    s.extend_from_slice(&sp);
    s.extend([groups, cin_g]);
    let xr = crate::reshape_to(&xc, &s)?;
    let mut perm = vec![nd + 2];
    perm.extend(1..nd + 1);
    perm.extend([nd + 1, 0]);
    let xt = crate::transpose(&xr, Some(&iperm(perm)))?;
    let mut s = vec![cin_g];
    s.extend_from_slice(&sp);
    s.push(groups * n);
    let xt = crate::reshape_to(&xt, &s)?;
    // g (N, *O, C_out) -> (C_out, *O, N)
    let mut perm = vec![nd + 1];
    perm.extend(1..nd + 1);
    perm.push(0);
    let gt = crate::transpose(g, Some(&iperm(perm.clone())))?;
    let z = crate::conv_general(
        &crate::astype(&xt, dt)?,
        &gt,
        p.kd,
        crate::Padding::Pairs(pairs),
        p.stride,
        p.idil,
        groups,
        false,
    )?;
    // (C_in/G, *K, C_out) -> (C_out, *K, C_in/G)
    let mut gw = crate::transpose(&z, Some(&iperm(perm)))?;
    if p.flip {
        gw = crate::flip(&gw, Some(&iperm(1..nd + 1)))?;
    }
    if gw.shape() != w_shape {
        return Err(internal(format!(
            "conv weight gradient has shape {:?}, want {:?}",
            gw.shape(),
            w_shape
        )));
    }
    Ok(gw)
}

// ---- pooling --------------------------------------------------------------------------------

/// Average pooling is a depthwise convolution with a constant kernel; its input cotangent
/// is that convolution's, applied to g divided by each window's divisor.
fn avg_pool_grad(
    x: &Array,
    g: &Array,
    window: &[usize],
    stride: &[usize],
    padding: &[usize],
    count_pad: bool,
) -> Result<Array> {
    let nd = window.len();
    let c = x.shape()[nd + 1];
    let dt = g.dtype();
    if g.size() == 0 || x.size() == 0 {
        return crate::zeros(x.shape(), dt);
    }
    let kprod: usize = window.iter().product();
    let gs = if count_pad {
        crate::divide(g, kprod as f64)?
    } else {
        // Real cells per window: an average (counting padding) of ones, times the window.
        let mut s1 = vec![1];
        s1.extend_from_slice(&x.shape()[1..nd + 1]);
        s1.push(1);
        let mut so = vec![1];
        so.extend_from_slice(&g.shape()[1..nd + 1]);
        so.push(1);
        let frac = Array::from_op(
            Op::Pool {
                kind: PoolKind::Avg,
                window: window.to_vec(),
                stride: stride.to_vec(),
                padding: padding.to_vec(),
                count_pad: true,
            },
            vec![crate::ones(&s1, dt)?],
            so,
            dt,
        );
        crate::divide(g, &crate::multiply(&frac, kprod as f64)?)?
    };
    let mut ws = vec![c];
    ws.extend_from_slice(window);
    ws.push(1);
    let ones = vec![1; nd];
    let p = ConvParams {
        stride,
        lo: padding,
        kd: &ones,
        idil: &ones,
        groups: c,
        flip: false,
    };
    conv_input_grad(&gs, &crate::ones(&ws, dt)?, x.shape(), &p)
}

/// Max pooling sends each window's cotangent to the first cell (in row-major window order,
/// the order the kernel scans) that holds the maximum; a NaN maximum goes to the first NaN.
/// Padded cells never receive anything.
fn max_pool_grad(
    x: &Array,
    y: &Array,
    g: &Array,
    window: &[usize],
    stride: &[usize],
    padding: &[usize],
) -> Result<Array> {
    let nd = window.len();
    let dt = g.dtype();
    if g.size() == 0 || x.size() == 0 {
        return crate::zeros(x.shape(), dt);
    }
    let mut pads = vec![(0, 0)];
    pads.extend(padding.iter().map(|&p| (p, p)));
    pads.push((0, 0));
    let xp = crate::pad(x, &pads, PadMode::Constant, 0.0)?;
    let mut s1 = vec![1];
    s1.extend_from_slice(&x.shape()[1..nd + 1]);
    s1.push(1);
    let valid = crate::greater(
        &crate::pad(
            &crate::ones(&s1, DType::F32)?,
            &pads,
            PadMode::Constant,
            0.0,
        )?,
        0.5,
    )?;
    let mut acc = crate::zeros(xp.shape(), dt)?;
    let mut taken: Option<Array> = None;
    let kprod: usize = window.iter().product();
    let mut k = vec![0usize; nd];
    for _ in 0..kprod {
        let mut args = vec![SliceArg::ALL];
        for d in 0..nd {
            let o = g.shape()[d + 1];
            let start = k[d] as isize;
            let stop = start + ((o - 1) * stride[d]) as isize + 1;
            args.push(SliceArg::new(Some(start), Some(stop), stride[d] as isize));
        }
        let xs = crate::slice(&xp, &args)?;
        let vs = crate::slice(&valid, &args)?;
        let hit = crate::logical_and(
            &crate::logical_or(&crate::equal(&xs, y)?, &crate::isnan(&xs)?)?,
            &vs,
        )?;
        let sel = match &taken {
            None => hit.clone(),
            Some(t) => crate::logical_and(&hit, &crate::logical_not(t)?)?,
        };
        taken = Some(match taken {
            None => hit,
            Some(t) => crate::logical_or(&t, &hit)?,
        });
        let contrib = crate::where_(&sel, g, &crate::zeros_like(g)?)?;
        acc = crate::slice_update_add(&acc, &contrib, &args)?;
        // Next window position, row-major.
        for d in (0..nd).rev() {
            k[d] += 1;
            if k[d] < window[d] {
                break;
            }
            k[d] = 0;
        }
    }
    let mut args = vec![SliceArg::ALL];
    for d in 0..nd {
        let p = padding[d] as isize;
        args.push(SliceArg::range(p, p + x.shape()[d + 1] as isize));
    }
    crate::slice(&acc, &args)
}

// ---- FFT ------------------------------------------------------------------------------------

/// Crops or zero-pads `a` at the end of `axis` to length `n`.
fn resize_axis(a: &Array, axis: usize, n: usize) -> Result<Array> {
    let m = a.shape()[axis];
    if m > n {
        crate::slice_axis(a, axis as isize, SliceArg::range(0, n as isize))
    } else if m < n {
        let mut pads = vec![(0, 0); a.ndim()];
        pads[axis] = (0, n - m);
        crate::pad(a, &pads, PadMode::Constant, 0.0)
    } else {
        Ok(a.clone())
    }
}

fn resize_axes(a: &Array, axes: &[usize], shape: &[usize]) -> Result<Array> {
    let mut r = a.clone();
    for &ax in axes {
        r = resize_axis(&r, ax, shape[ax])?;
    }
    Ok(r)
}

fn fft_node(x: Array, axes: &[usize], kind: FftKind, shape: Vec<usize>, dt: DType) -> Array {
    Array::from_op(
        Op::Fft {
            axes: axes.to_vec(),
            kind,
        },
        vec![x],
        shape,
        dt,
    )
}

/// The node on each axis crops or zero-pads its input line to the output length, then
/// applies an unnormalized DFT matrix, which is symmetric: the transpose runs the same
/// transform on the cotangent and then crops or pads back to the input's length.
fn fft_grad(op: &Op, x: &Array, g: &Array, axes: &[usize], kind: FftKind) -> Result<Array> {
    let (&last, _) = axes
        .split_last()
        .ok_or_else(|| no_rule(op, " over no axes"))?;
    match kind {
        FftKind::Forward | FftKind::Inverse => {
            let g = crate::astype(g, DType::C64)?;
            let shape = g.shape().to_vec();
            let t = fft_node(g, axes, kind, shape, DType::C64);
            resize_axes(&t, axes, x.shape())
        }
        FftKind::RealForward => {
            // y = H F x with H keeping the first n/2+1 bins of the last axis: the transpose
            // zero-extends g to n bins (the kernel pads the line), runs the forward DFT, and
            // keeps the real part (x is real).
            let g = crate::astype(g, DType::C64)?;
            let mut shape = g.shape().to_vec();
            shape[last] = x.shape()[last];
            let t = fft_node(g, axes, FftKind::Forward, shape, DType::C64);
            crate::real(&resize_axes(&t, axes, x.shape())?)
        }
        FftKind::RealInverse => {
            // Over the last axis y_j = Re(sum_{k<=n/2} c_k z_k e^{2 pi i jk/n}) with c_k = 2
            // except c_0 = 1 and c_{n/2} = 1 for even n (the Hermitian half counted twice);
            // the other axes are unnormalized inverse DFTs. For real g the transpose is
            // c_k * conj(rfft(g))_k, over all axes.
            let n = g.shape()[last];
            let bins = n / 2 + 1;
            let g = crate::astype(g, DType::F32)?;
            let mut shape = g.shape().to_vec();
            shape[last] = bins;
            let t = crate::conj(&fft_node(g, axes, FftKind::RealForward, shape, DType::C64))?;
            let c: Vec<f32> = (0..bins)
                .map(|k| if k == 0 || 2 * k == n { 1.0 } else { 2.0 })
                .collect();
            let mut cs = vec![1; x.ndim()];
            cs[last] = bins;
            let c = Array::from_vec(c, &cs)?;
            let t = crate::multiply(&t, &c)?;
            resize_axes(&t, axes, x.shape())
        }
    }
}

// ---- grid_sample ----------------------------------------------------------------------------

/// Pixel coordinate of a grid coordinate along an axis of `size` cells, and its derivative,
/// following PyTorch's grid_sampler_compute_source_index_set_grad (computed in f64, as the
/// CPU kernel does).
fn source_index(
    c: &Array,
    size: usize,
    padding: GridPadding,
    align: bool,
) -> Result<(Array, Array)> {
    use crate::{
        abs, equal, floor, greater, less, logical_and, multiply as mul, remainder, subtract as sub,
        where_,
    };
    let s = size as f64;
    let (mut x, d0) = if align {
        (mul(&crate::add(c, 1.0)?, (s - 1.0) / 2.0)?, (s - 1.0) / 2.0)
    } else {
        let t = sub(&mul(&crate::add(c, 1.0)?, s)?, 1.0)?;
        (crate::divide(&t, 2.0)?, s / 2.0)
    };
    let mut d = crate::full_like(c, d0)?;
    // Clip to [0, s-1]: derivative 1 strictly inside, 0 elsewhere (as PyTorch).
    let clip = |x: &Array, d: &Array| -> Result<(Array, Array)> {
        let inside = logical_and(&greater(x, 0.0)?, &less(x, s - 1.0)?)?;
        let xc = where_(&greater(x, 0.0)?, x, 0.0)?;
        let xc = where_(&less(&xc, s - 1.0)?, &xc, s - 1.0)?;
        Ok((xc, where_(&inside, d, 0.0)?))
    };
    match padding {
        GridPadding::Zeros => {}
        GridPadding::Border => (x, d) = clip(&x, &d)?,
        GridPadding::Reflection => {
            let (tl, th) = if align {
                (0i64, 2 * (size as i64 - 1))
            } else {
                (-1i64, 2 * size as i64 - 1)
            };
            if tl == th {
                x = crate::zeros_like(&x)?;
                d = crate::zeros_like(&d)?;
            } else {
                let min = tl as f64 / 2.0;
                let span = (th - tl) as f64 / 2.0;
                let t = sub(&x, min)?;
                let neg = less(&t, 0.0)?;
                let a = abs(&t)?;
                let extra = remainder(&a, span)?;
                let flips = floor(&crate::divide(&a, span)?)?;
                let even = equal(&remainder(&flips, 2.0)?, 0.0)?;
                x = where_(
                    &even,
                    &crate::add(&extra, min)?,
                    &crate::add(&sub(span, &extra)?, min)?,
                )?;
                // d/dx of |x - min| is the sign; an odd number of flips mirrors it.
                let sg = where_(&neg, -1.0, 1.0)?;
                let sg = where_(&even, &sg, &crate::negative(&sg)?)?;
                d = mul(&d, &sg)?;
            }
            (x, d) = clip(&x, &d)?;
        }
    }
    // Non-finite coordinates sample nothing (the kernel maps them to -100).
    let fin = crate::isfinite(&x)?;
    let x = where_(&fin, &x, -100.0)?;
    let d = where_(&fin, &d, 0.0)?;
    Ok((x, d))
}

/// Bilinear: the input gets each output cotangent scattered onto the four corners with the
/// bilinear weights; the grid gets the derivative of the weights times the corner values,
/// chained through the coordinate map. Nearest: the input gets the cotangent at the rounded
/// cell; the grid gets zero (the output is piecewise constant in it).
fn grid_sample_grad(
    x: &Array,
    grid: &Array,
    g: &Array,
    mode: InterpMode,
    padding: GridPadding,
    align: bool,
) -> Result<Grads> {
    use crate::{add, astype, expand_dims, multiply as mul, subtract as sub, where_};
    let dt = x.dtype();
    let g = astype(g, dt)?;
    let (n, h, w, c) = (x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]);
    let (ho, wo) = (grid.shape()[1], grid.shape()[2]);
    if g.size() == 0 || x.size() == 0 {
        let gx = crate::zeros(x.shape(), dt)?;
        let gg = crate::zeros(grid.shape(), grid.dtype())?;
        return Ok(vec![Some(gx), Some(gg)]);
    }
    let gr = astype(grid, DType::F64)?;
    let coord = |i: isize| -> Result<Array> {
        crate::squeeze(
            &crate::slice_axis(&gr, 3, SliceArg::range(i, i + 1))?,
            Some(&[3]),
        )
    };
    let (ix, dix) = source_index(&coord(0)?, w, padding, align)?;
    let (iy, diy) = source_index(&coord(1)?, h, padding, align)?;
    // Batch offset of each output pixel, for flat indices into (N*H*W, C).
    let base = crate::broadcast_to(
        &crate::reshape_to(&crate::arange(0.0, n as f64, 1.0, DType::F64)?, &[n, 1, 1])?,
        &[n, ho, wo],
    )?;
    let base = mul(&base, (h * w) as f64)?;
    let xf = crate::reshape_to(x, &[n * h * w, c])?;
    // (flat index, in bounds) of cell (yy, xx); out-of-bounds cells point at 0.
    let cell = |yy: &Array, xx: &Array| -> Result<(Array, Array)> {
        let inb = crate::logical_and(
            &crate::logical_and(&crate::greater_equal(yy, 0.0)?, &crate::less(yy, h as f64)?)?,
            &crate::logical_and(&crate::greater_equal(xx, 0.0)?, &crate::less(xx, w as f64)?)?,
        )?;
        let flat = add(&base, &add(&mul(yy, w as f64)?, xx)?)?;
        let flat = where_(&inb, &flat, 0.0)?;
        Ok((astype(&flat, DType::I64)?, inb))
    };
    let scatter = |acc: Array, idx: &Array, upd: Array| -> Result<Array> {
        // updates (N, Ho, Wo, 1, C) for a slice of one row.
        let upd = expand_dims(&upd, &[3])?;
        crate::scatter_add(&acc, std::slice::from_ref(idx), &upd, &[0])
    };
    let mut acc = crate::zeros(&[n * h * w, c], dt)?;
    let to_dt = |a: &Array| -> Result<Array> { expand_dims(&astype(a, dt)?, &[3]) };
    match mode {
        InterpMode::Nearest => {
            let xr = crate::round(&ix, 0)?;
            let yr = crate::round(&iy, 0)?;
            let (idx, inb) = cell(&yr, &xr)?;
            let wt = to_dt(&where_(&inb, 1.0, 0.0)?)?;
            acc = scatter(acc, &idx, mul(&g, &wt)?)?;
            let gx = crate::reshape_to(&acc, x.shape())?;
            Ok(vec![
                Some(gx),
                Some(crate::zeros(grid.shape(), grid.dtype())?),
            ])
        }
        InterpMode::Bilinear => {
            let x0 = crate::floor(&ix)?;
            let y0 = crate::floor(&iy)?;
            let (x1, y1) = (add(&x0, 1.0)?, add(&y0, 1.0)?);
            let wx1 = sub(&ix, &x0)?;
            let wx0 = sub(&x1, &ix)?;
            let wy1 = sub(&iy, &y0)?;
            let wy0 = sub(&y1, &iy)?;
            let corners = [
                (&y0, &x0, &wy0, &wx0),
                (&y0, &x1, &wy0, &wx1),
                (&y1, &x0, &wy1, &wx0),
                (&y1, &x1, &wy1, &wx1),
            ];
            // d out / d ix = sum over corners of v * wy * (+-1), likewise for iy.
            let mut dx: Option<Array> = None;
            let mut dy: Option<Array> = None;
            let add_to = |slot: &mut Option<Array>, t: Array| -> Result<()> {
                *slot = Some(match slot.take() {
                    None => t,
                    Some(s) => add(&s, &t)?,
                });
                Ok(())
            };
            for (ci, (yy, xx, wy, wx)) in corners.into_iter().enumerate() {
                let (idx, inb) = cell(yy, xx)?;
                let m = where_(&inb, 1.0, 0.0)?;
                let wt = to_dt(&mul(&mul(wy, wx)?, &m)?)?;
                acc = scatter(acc, &idx, mul(&g, &wt)?)?;
                // <g, v> over channels at this corner (zero where out of bounds).
                let v = crate::reshape_to(&crate::take(&xf, &idx, Some(0))?, &[n, ho, wo, c])?;
                let gv = crate::sum(&mul(&g, &v)?, Some(&[3]), false)?;
                let gv = mul(&gv, &astype(&m, dt)?)?;
                let (sx, sy) = match ci {
                    0 => (-1.0, -1.0),
                    1 => (1.0, -1.0),
                    2 => (-1.0, 1.0),
                    _ => (1.0, 1.0),
                };
                add_to(&mut dx, mul(&gv, &astype(&mul(wy, sx)?, dt)?)?)?;
                add_to(&mut dy, mul(&gv, &astype(&mul(wx, sy)?, dt)?)?)?;
            }
            let gx = crate::reshape_to(&acc, x.shape())?;
            let (dx, dy) = match (dx, dy) {
                (Some(a), Some(b)) => (a, b),
                _ => return Err(internal("grid_sample: no corners".into())),
            };
            let ggx = mul(&dx, &astype(&dix, dt)?)?;
            let ggy = mul(&dy, &astype(&diy, dt)?)?;
            let gg = crate::stack(&[ggx, ggy], 3)?;
            Ok(vec![Some(gx), Some(gg)])
        }
    }
}
