//! Convolution and pooling against direct f64 loops written here: strides, padding
//! (symmetric, asymmetric, "same"), dilation, groups (incl. depthwise), 1-D/2-D/3-D,
//! transposed convolution with output_padding, batches, non-contiguous inputs, empty
//! batches, every float dtype, NaN in pooling, and the error messages of bad calls.

mod common;
use common::*;
use ingot::{Array, DType, Padding};

// ---- references ---------------------------------------------------------------------------

fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut out = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        out[d] = i % shape[d];
        i /= shape[d];
    }
    out
}

fn ravel(idx: &[usize], shape: &[usize]) -> usize {
    idx.iter().zip(shape).fold(0, |acc, (&i, &n)| acc * n + i)
}

/// Parameters of the general convolution, one entry per spatial dim.
#[derive(Clone, Debug)]
struct P {
    stride: Vec<usize>,
    lo: Vec<usize>,
    hi: Vec<usize>,
    kd: Vec<usize>,
    idil: Vec<usize>,
    groups: usize,
    flip: bool,
}

impl P {
    fn plain(nd: usize) -> P {
        P {
            stride: vec![1; nd],
            lo: vec![0; nd],
            hi: vec![0; nd],
            kd: vec![1; nd],
            idil: vec![1; nd],
            groups: 1,
            flip: false,
        }
    }
}

/// MLX's conv_general, straight from the definition: out[n, o, co] = sum over kernel taps
/// and the group's input channels of x_dilated_padded[n, o*s + k*kd, ci] * w[co, k, ci].
fn ref_conv(x: &[f64], xs: &[usize], w: &[f64], ws: &[usize], p: &P) -> (Vec<f64>, Vec<usize>) {
    let nd = xs.len() - 2;
    let (n, cin, cout) = (xs[0], xs[nd + 1], ws[0]);
    let cin_g = cin / p.groups;
    let cout_g = cout / p.groups;
    let ksp = &ws[1..nd + 1];
    let mut osp = vec![];
    for d in 0..nd {
        let ind = if xs[d + 1] == 0 {
            0
        } else {
            (xs[d + 1] - 1) * p.idil[d] + 1
        };
        let span = (ksp[d] - 1) * p.kd[d] + 1;
        osp.push((ind + p.lo[d] + p.hi[d] - span) / p.stride[d] + 1);
    }
    let mut oshape = vec![n];
    oshape.extend(&osp);
    oshape.push(cout);
    let mut out = vec![0.0; oshape.iter().product()];
    let kprod: usize = ksp.iter().product();
    let pprod: usize = osp.iter().product();
    for b in 0..n {
        for pi in 0..pprod {
            let o = unravel(pi, &osp);
            for co in 0..cout {
                let grp = co / cout_g;
                let mut acc = 0.0;
                for ki in 0..kprod {
                    let k = unravel(ki, ksp);
                    let mut xi = vec![b];
                    let mut ok = true;
                    for d in 0..nd {
                        let ke = if p.flip { ksp[d] - 1 - k[d] } else { k[d] };
                        let v = (o[d] * p.stride[d] + ke * p.kd[d]) as isize - p.lo[d] as isize;
                        if v < 0
                            || v as usize % p.idil[d] != 0
                            || v as usize / p.idil[d] >= xs[d + 1]
                        {
                            ok = false;
                            break;
                        }
                        xi.push(v as usize / p.idil[d]);
                    }
                    if !ok {
                        continue;
                    }
                    for c in 0..cin_g {
                        let mut xidx = xi.clone();
                        xidx.push(grp * cin_g + c);
                        let mut widx = vec![co];
                        widx.extend(&k);
                        widx.push(c);
                        acc += x[ravel(&xidx, xs)] * w[ravel(&widx, ws)];
                    }
                }
                let mut oidx = vec![b];
                oidx.extend(&o);
                oidx.push(co);
                out[ravel(&oidx, &oshape)] = acc;
            }
        }
    }
    (out, oshape)
}

/// Transposed convolution by its scatter definition (PyTorch's, with MLX's weight layout
/// w[co, k, ci]): every input cell i adds x[i, ci] * w[co, k, ci] to y[i*s + k*d - lo].
#[allow(clippy::too_many_arguments)]
fn ref_conv_transpose(
    x: &[f64],
    xs: &[usize],
    w: &[f64],
    ws: &[usize],
    stride: &[usize],
    pads: &[(isize, isize)],
    dil: &[usize],
    outpad: &[usize],
    groups: usize,
) -> (Vec<f64>, Vec<usize>) {
    let nd = xs.len() - 2;
    let (n, cin, cout) = (xs[0], xs[nd + 1], ws[0]);
    let (cin_g, cout_g) = (cin / groups, cout / groups);
    let ksp = &ws[1..nd + 1];
    let isp = &xs[1..nd + 1];
    let osp: Vec<usize> = (0..nd)
        .map(|d| {
            ((isp[d] as isize - 1) * stride[d] as isize - pads[d].0 - pads[d].1
                + (dil[d] * (ksp[d] - 1)) as isize
                + 1
                + outpad[d] as isize) as usize
        })
        .collect();
    let mut oshape = vec![n];
    oshape.extend(&osp);
    oshape.push(cout);
    let mut out = vec![0.0; oshape.iter().product()];
    let iprod: usize = isp.iter().product();
    let kprod: usize = ksp.iter().product();
    for b in 0..n {
        for ii in 0..iprod {
            let i = unravel(ii, isp);
            for ki in 0..kprod {
                let k = unravel(ki, ksp);
                let mut o = vec![b];
                let mut ok = true;
                for d in 0..nd {
                    let v = (i[d] * stride[d] + k[d] * dil[d]) as isize - pads[d].0;
                    if v < 0 || v >= osp[d] as isize {
                        ok = false;
                        break;
                    }
                    o.push(v as usize);
                }
                if !ok {
                    continue;
                }
                for ci in 0..cin {
                    let grp = ci / cin_g;
                    let mut xidx = vec![b];
                    xidx.extend(&i);
                    xidx.push(ci);
                    let xv = x[ravel(&xidx, xs)];
                    for co in grp * cout_g..(grp + 1) * cout_g {
                        let mut widx = vec![co];
                        widx.extend(&k);
                        widx.push(ci - grp * cin_g);
                        let mut oidx = o.clone();
                        oidx.push(co);
                        out[ravel(&oidx, &oshape)] += xv * w[ravel(&widx, ws)];
                    }
                }
            }
        }
    }
    (out, oshape)
}

/// Max or average pooling by direct loops over each window (padding is -inf for max and
/// 0 for avg; `count_pad` decides whether padded cells count in the divisor).
fn ref_pool(
    x: &[f64],
    xs: &[usize],
    k: &[usize],
    s: &[usize],
    p: &[usize],
    max: bool,
    count_pad: bool,
) -> (Vec<f64>, Vec<usize>) {
    let nd = xs.len() - 2;
    let (n, c) = (xs[0], xs[nd + 1]);
    let isp = &xs[1..nd + 1];
    let osp: Vec<usize> = (0..nd)
        .map(|d| (isp[d] + 2 * p[d] - k[d]) / s[d] + 1)
        .collect();
    let mut oshape = vec![n];
    oshape.extend(&osp);
    oshape.push(c);
    let mut out = vec![0.0; oshape.iter().product()];
    let kprod: usize = k.iter().product();
    let pprod: usize = osp.iter().product();
    for b in 0..n {
        for pi in 0..pprod {
            let o = unravel(pi, &osp);
            for ch in 0..c {
                let mut acc = if max { f64::NEG_INFINITY } else { 0.0 };
                let mut cnt = 0usize;
                let mut nan = false;
                for ki in 0..kprod {
                    let kk = unravel(ki, k);
                    let mut idx = vec![b];
                    let mut ok = true;
                    for d in 0..nd {
                        let v = (o[d] * s[d] + kk[d]) as isize - p[d] as isize;
                        if v < 0 || v >= isp[d] as isize {
                            ok = false;
                        }
                        idx.push(v.max(0) as usize);
                    }
                    if !ok {
                        continue;
                    }
                    idx.push(ch);
                    let v = x[ravel(&idx, xs)];
                    cnt += 1;
                    if v.is_nan() {
                        nan = true;
                    }
                    if max {
                        acc = acc.max(v);
                    } else {
                        acc += v;
                    }
                }
                let v = if max {
                    if nan {
                        f64::NAN
                    } else {
                        acc
                    }
                } else {
                    acc / if count_pad { kprod } else { cnt } as f64
                };
                let mut oidx = vec![b];
                oidx.extend(&o);
                oidx.push(ch);
                out[ravel(&oidx, &oshape)] = v;
            }
        }
    }
    (out, oshape)
}

// ---- helpers --------------------------------------------------------------------------------

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(
        0.0f64,
        |m, &x| if x.is_finite() { m.max(x.abs()) } else { m },
    )
}

/// Compares an ingot result with a reference: shape, dtype, then values with a tolerance
/// that scales with the dtype and the size of the result.
fn check(got: &Array, want: &[f64], want_shape: &[usize], dtype: DType, what: &str) {
    assert_eq!(got.shape(), want_shape, "{what}: shape");
    assert_eq!(got.dtype(), dtype, "{what}: dtype");
    let g = got.to_f64_vec().unwrap();
    let t = tol(dtype);
    assert_close(&g, want, t, 8.0 * t * (1.0 + max_abs(want)), what);
}

/// Layouts an input can be given in: contiguous, a stepped slice, a transposed view.
fn layouts(vals: &[f64], shape: &[usize], dtype: DType) -> Vec<(&'static str, Array)> {
    vec![
        ("contiguous", array_from_f64(vals, shape, dtype)),
        ("stepped", noncontiguous(vals, shape, dtype)),
        ("transposed", transposed(vals, shape, dtype)),
    ]
}

fn err(r: ingot::Result<Array>) -> String {
    match r {
        Ok(a) => panic!("expected an error, got {a:?}"),
        Err(e) => e.to_string(),
    }
}

// ---- convolution ---------------------------------------------------------------------------

/// (x shape, w shape, stride, padding pairs, dilation, groups)
type ConvCase = (
    Vec<usize>,
    Vec<usize>,
    Vec<usize>,
    Vec<(usize, usize)>,
    Vec<usize>,
    usize,
);

fn conv_cases() -> Vec<ConvCase> {
    vec![
        // 1-D: plain, stride, padding, dilation, groups, depthwise, multiplier depthwise
        (
            vec![2, 9, 3],
            vec![4, 3, 3],
            vec![1],
            vec![(0, 0)],
            vec![1],
            1,
        ),
        (
            vec![1, 10, 2],
            vec![3, 4, 2],
            vec![3],
            vec![(2, 2)],
            vec![1],
            1,
        ),
        (
            vec![2, 11, 4],
            vec![6, 3, 2],
            vec![2],
            vec![(1, 3)],
            vec![2],
            2,
        ),
        (
            vec![1, 7, 4],
            vec![4, 3, 1],
            vec![1],
            vec![(1, 1)],
            vec![1],
            4,
        ),
        (
            vec![2, 8, 3],
            vec![6, 2, 1],
            vec![2],
            vec![(0, 1)],
            vec![3],
            3,
        ),
        // 2-D
        (
            vec![2, 6, 7, 3],
            vec![5, 3, 3, 3],
            vec![1, 1],
            vec![(1, 1), (1, 1)],
            vec![1, 1],
            1,
        ),
        (
            vec![1, 9, 8, 4],
            vec![4, 3, 2, 2],
            vec![2, 3],
            vec![(0, 2), (1, 0)],
            vec![2, 1],
            2,
        ),
        (
            vec![3, 5, 5, 6],
            vec![6, 3, 3, 1],
            vec![1, 2],
            vec![(1, 1), (2, 2)],
            vec![1, 2],
            6,
        ),
        (
            vec![2, 4, 5, 3],
            vec![7, 1, 1, 3],
            vec![1, 1],
            vec![(0, 0), (0, 0)],
            vec![1, 1],
            1,
        ),
        (
            vec![1, 6, 6, 2],
            vec![3, 1, 1, 2],
            vec![2, 2],
            vec![(1, 0), (0, 1)],
            vec![1, 1],
            1,
        ),
        // 3-D
        (
            vec![2, 4, 5, 4, 2],
            vec![3, 2, 3, 2, 2],
            vec![1, 2, 1],
            vec![(1, 0), (1, 1), (0, 1)],
            vec![1, 1, 2],
            1,
        ),
        (
            vec![1, 5, 4, 4, 4],
            vec![4, 3, 2, 2, 2],
            vec![2, 1, 1],
            vec![(1, 1), (0, 0), (1, 1)],
            vec![1, 2, 1],
            2,
        ),
    ]
}

fn run_conv(
    x: &Array,
    w: &Array,
    stride: &[usize],
    pad: &[(usize, usize)],
    dil: &[usize],
    groups: usize,
) -> ingot::Result<Array> {
    let padding = Padding::Pairs(pad.to_vec());
    match x.ndim() {
        3 => ingot::conv1d(x, w, stride[0], padding, dil[0], groups),
        4 => ingot::conv2d(x, w, stride, padding, dil, groups),
        _ => ingot::conv3d(x, w, stride, padding, dil, groups),
    }
}

#[test]
fn conv_matches_reference_every_dtype_and_layout() {
    let mut rng = Rng::new(11);
    for (xs, ws, stride, pad, dil, groups) in conv_cases() {
        let nd = xs.len() - 2;
        for dtype in FLOATS {
            let (_, xv) = rand_array(&mut rng, &xs, dtype);
            let (_, wv) = rand_array(&mut rng, &ws, dtype);
            let p = P {
                stride: stride.clone(),
                lo: pad.iter().map(|p| p.0).collect(),
                hi: pad.iter().map(|p| p.1).collect(),
                kd: dil.clone(),
                idil: vec![1; nd],
                groups,
                flip: false,
            };
            let (want, wshape) = ref_conv(&xv, &xs, &wv, &ws, &p);
            for (lname, x) in layouts(&xv, &xs, dtype) {
                let w = if lname == "stepped" {
                    noncontiguous(&wv, &ws, dtype)
                } else {
                    array_from_f64(&wv, &ws, dtype)
                };
                let y = run_conv(&x, &w, &stride, &pad, &dil, groups).unwrap();
                check(
                    &y,
                    &want,
                    &wshape,
                    dtype,
                    &format!("conv {xs:?} {ws:?} {p:?} {dtype} {lname}"),
                );
            }
        }
    }
}

#[test]
fn conv_symmetric_same_and_valid_padding() {
    let mut rng = Rng::new(12);
    let xs = [2, 7, 8, 3];
    let ws = [4, 3, 2, 3];
    let (x, xv) = rand_array(&mut rng, &xs, DType::F64);
    let (w, wv) = rand_array(&mut rng, &ws, DType::F64);
    // A single number pads every dim on both sides.
    let y = ingot::conv2d(&x, &w, &[1], 2usize, &[1], 1).unwrap();
    let mut p = P::plain(2);
    p.lo = vec![2, 2];
    p.hi = vec![2, 2];
    let (want, sh) = ref_conv(&xv, &xs, &wv, &ws, &p);
    check(&y, &want, &sh, DType::F64, "padding 2");
    // One value per dim.
    let y = ingot::conv2d(&x, &w, &[1], [1, 0], &[1], 1).unwrap();
    p.lo = vec![1, 0];
    p.hi = vec![1, 0];
    let (want, sh) = ref_conv(&xv, &xs, &wv, &ws, &p);
    check(&y, &want, &sh, DType::F64, "padding [1, 0]");
    // valid = no padding
    let y = ingot::conv2d(&x, &w, &[2], Padding::Valid, &[1], 1).unwrap();
    let mut p = P::plain(2);
    p.stride = vec![2, 2];
    let (want, sh) = ref_conv(&xv, &xs, &wv, &ws, &p);
    check(&y, &want, &sh, DType::F64, "valid");
    // same: output ceil(in / stride), total padding split with the odd cell at the end.
    for (stride, dil) in [
        ([1, 1], [1, 1]),
        ([2, 3], [1, 1]),
        ([1, 2], [2, 1]),
        ([3, 2], [2, 3]),
    ] {
        let y = ingot::conv2d(&x, &w, &stride, Padding::Same, &dil, 1).unwrap();
        let mut p = P::plain(2);
        p.stride = stride.to_vec();
        p.kd = dil.to_vec();
        for d in 0..2 {
            let out = xs[d + 1].div_ceil(stride[d]);
            let span = (ws[d + 1] - 1) * dil[d] + 1;
            let total = ((out - 1) * stride[d] + span).saturating_sub(xs[d + 1]);
            p.lo[d] = total / 2;
            p.hi[d] = total - total / 2;
        }
        let (want, sh) = ref_conv(&xv, &xs, &wv, &ws, &p);
        assert_eq!(sh[1], xs[1].div_ceil(stride[0]));
        assert_eq!(sh[2], xs[2].div_ceil(stride[1]));
        check(
            &y,
            &want,
            &sh,
            DType::F64,
            &format!("same {stride:?} {dil:?}"),
        );
    }
    // "same" with a 1-D conv keeps the length at stride 1.
    let (x1, x1v) = rand_array(&mut rng, &[1, 10, 2], DType::F32);
    let (w1, w1v) = rand_array(&mut rng, &[3, 4, 2], DType::F32);
    let y = ingot::conv1d(&x1, &w1, 1, Padding::Same, 1, 1).unwrap();
    let mut p = P::plain(1);
    p.lo = vec![1];
    p.hi = vec![2];
    let (want, sh) = ref_conv(&x1v, &[1, 10, 2], &w1v, &[3, 4, 2], &p);
    assert_eq!(sh, vec![1, 10, 3]);
    check(&y, &want, &sh, DType::F32, "same 1-D even kernel");
}

#[test]
fn conv_general_input_dilation_and_flip() {
    let mut rng = Rng::new(13);
    let cases: Vec<(Vec<usize>, Vec<usize>, P)> = vec![
        (
            vec![2, 5, 3],
            vec![2, 3, 3],
            P {
                stride: vec![1],
                lo: vec![2],
                hi: vec![1],
                kd: vec![1],
                idil: vec![2],
                groups: 1,
                flip: true,
            },
        ),
        (
            vec![1, 4, 5, 4],
            vec![4, 2, 3, 2],
            P {
                stride: vec![2, 1],
                lo: vec![1, 0],
                hi: vec![0, 2],
                kd: vec![2, 1],
                idil: vec![3, 2],
                groups: 2,
                flip: false,
            },
        ),
        (
            vec![2, 3, 4, 3, 2],
            vec![2, 2, 2, 2, 2],
            P {
                stride: vec![1, 1, 2],
                lo: vec![1, 1, 1],
                hi: vec![1, 0, 1],
                kd: vec![1, 1, 1],
                idil: vec![2, 1, 2],
                groups: 1,
                flip: true,
            },
        ),
        (
            vec![1, 6, 4],
            vec![4, 3, 1],
            P {
                stride: vec![1],
                lo: vec![0],
                hi: vec![0],
                kd: vec![1],
                idil: vec![1],
                groups: 4,
                flip: true,
            },
        ),
    ];
    for (xs, ws, p) in cases {
        for dtype in [DType::F32, DType::F64, DType::BF16] {
            let (_, xv) = rand_array(&mut rng, &xs, dtype);
            let (w, wv) = rand_array(&mut rng, &ws, dtype);
            let (want, sh) = ref_conv(&xv, &xs, &wv, &ws, &p);
            for (lname, x) in layouts(&xv, &xs, dtype) {
                let pairs: Vec<(usize, usize)> =
                    p.lo.iter().copied().zip(p.hi.iter().copied()).collect();
                let y =
                    ingot::conv_general(&x, &w, &p.stride, pairs, &p.kd, &p.idil, p.groups, p.flip)
                        .unwrap();
                check(
                    &y,
                    &want,
                    &sh,
                    dtype,
                    &format!("conv_general {xs:?} {p:?} {dtype} {lname}"),
                );
            }
        }
    }
}

#[test]
fn conv_large_paths_match_reference() {
    // Big enough for the parallel im2col tiles, the 1x1 GEMM path, grouped GEMMs and the
    // parallel depthwise kernel.
    let mut rng = Rng::new(14);
    let xs = [2, 20, 21, 16];
    let (x, xv) = rand_array(&mut rng, &xs, DType::F32);
    let cases: Vec<(Vec<usize>, usize, Vec<usize>, usize)> = vec![
        (vec![24, 3, 3, 16], 1, vec![1, 1], 1),
        (vec![32, 1, 1, 16], 0, vec![1, 1], 1),
        (vec![24, 3, 2, 8], 1, vec![2, 1], 2),
        (vec![16, 5, 5, 1], 2, vec![1, 1], 16),
        (vec![32, 3, 3, 1], 1, vec![1, 2], 16),
    ];
    for (ws, pad, stride, groups) in cases {
        let (w, wv) = rand_array(&mut rng, &ws, DType::F32);
        let y = ingot::conv2d(&x, &w, &stride, pad, &[1], groups).unwrap();
        let mut p = P::plain(2);
        p.stride = stride.clone();
        p.lo = vec![pad; 2];
        p.hi = vec![pad; 2];
        p.groups = groups;
        let (want, sh) = ref_conv(&xv, &xs, &wv, &ws, &p);
        check(
            &y,
            &want,
            &sh,
            DType::F32,
            &format!("large {ws:?} groups {groups}"),
        );
        // The same in f64 through a transposed (non-contiguous) input.
        let xt = transposed(&xv, &xs, DType::F64);
        let wt = array_from_f64(&wv, &ws, DType::F64);
        let y = ingot::conv2d(&xt, &wt, &stride, pad, &[1], groups).unwrap();
        check(
            &y,
            &want,
            &sh,
            DType::F64,
            &format!("large f64 {ws:?} groups {groups}"),
        );
    }
}

#[test]
fn conv_empty_batch_and_channels() {
    let mut rng = Rng::new(15);
    let x = ingot::zeros(&[0, 5, 5, 3], DType::F32).unwrap();
    let (w, _) = rand_array(&mut rng, &[4, 3, 3, 3], DType::F32);
    let y = ingot::conv2d(&x, &w, &[1], 1usize, &[1], 1).unwrap();
    assert_eq!(y.shape(), &[0, 5, 5, 4]);
    assert!(y.to_f64_vec().unwrap().is_empty());
    // no output channels
    let (x, _) = rand_array(&mut rng, &[2, 6, 3], DType::F64);
    let w = ingot::zeros(&[0, 2, 3], DType::F64).unwrap();
    let y = ingot::conv1d(&x, &w, 1, 0usize, 1, 1).unwrap();
    assert_eq!(y.shape(), &[2, 5, 0]);
    assert!(y.to_f64_vec().unwrap().is_empty());
    // no input channels: an empty sum is zero
    let x = ingot::zeros(&[2, 6, 0], DType::F32).unwrap();
    let w = ingot::zeros(&[3, 2, 0], DType::F32).unwrap();
    let y = ingot::conv1d(&x, &w, 2, 0usize, 1, 1).unwrap();
    assert_eq!(y.shape(), &[2, 3, 3]);
    assert_eq!(y.to_f64_vec().unwrap(), vec![0.0; 18]);
    // transposed conv with an empty batch
    let x = ingot::zeros(&[0, 3, 4, 2], DType::F32).unwrap();
    let (w, _) = rand_array(&mut rng, &[5, 3, 3, 2], DType::F32);
    let y = ingot::conv_transpose2d(&x, &w, &[2], 1usize, &[1], &[1], 1).unwrap();
    assert_eq!(y.shape(), &[0, 6, 8, 5]);
}

#[test]
fn conv_promotes_dtypes_and_propagates_nan_inf() {
    let mut rng = Rng::new(16);
    let xs = [1, 6, 2];
    let ws = [2, 3, 2];
    let (_, mut xv) = rand_array(&mut rng, &xs, DType::F32);
    xv[0] = f64::NAN;
    xv[7] = f64::INFINITY;
    let x = array_from_f64(&xv, &xs, DType::F32);
    let (w, wv) = rand_array(&mut rng, &ws, DType::F16);
    let y = ingot::conv1d(&x, &w, 1, 0usize, 1, 1).unwrap();
    let (want, sh) = ref_conv(&xv, &xs, &wv, &ws, &P::plain(1));
    check(&y, &want, &sh, DType::F32, "f32 x f16 weights");
    let (w64, w64v) = rand_array(&mut rng, &ws, DType::F64);
    let y = ingot::conv1d(&x, &w64, 1, 0usize, 1, 1).unwrap();
    let (want, sh) = ref_conv(&xv, &xs, &w64v, &ws, &P::plain(1));
    check(&y, &want, &sh, DType::F64, "f32 x f64 weights");
    let xh = array_from_f64(&xv, &xs, DType::F16);
    let wb = array_from_f64(&wv, &ws, DType::BF16);
    let y = ingot::conv1d(&xh, &wb, 1, 0usize, 1, 1).unwrap();
    assert_eq!(y.dtype(), DType::F32);
}

// ---- transposed convolution ----------------------------------------------------------------

#[test]
fn conv_transpose_matches_scatter_definition() {
    let mut rng = Rng::new(21);
    // (x shape, w shape, stride, padding, dilation, output_padding, groups)
    type TCase = (
        Vec<usize>,
        Vec<usize>,
        Vec<usize>,
        Vec<usize>,
        Vec<usize>,
        Vec<usize>,
        usize,
    );
    let cases: Vec<TCase> = vec![
        (
            vec![2, 5, 3],
            vec![4, 3, 3],
            vec![1],
            vec![0],
            vec![1],
            vec![0],
            1,
        ),
        (
            vec![1, 6, 2],
            vec![3, 4, 2],
            vec![2],
            vec![1],
            vec![1],
            vec![1],
            1,
        ),
        (
            vec![2, 4, 4],
            vec![6, 3, 2],
            vec![3],
            vec![2],
            vec![2],
            vec![1],
            2,
        ),
        // padding beyond the kernel span: the equivalent convolution crops
        (
            vec![1, 7, 2],
            vec![2, 2, 2],
            vec![2],
            vec![3],
            vec![1],
            vec![0],
            1,
        ),
        (
            vec![2, 4, 5, 3],
            vec![4, 3, 3, 3],
            vec![2, 2],
            vec![1, 1],
            vec![1, 1],
            vec![1, 0],
            1,
        ),
        (
            vec![1, 3, 4, 4],
            vec![6, 2, 3, 2],
            vec![1, 3],
            vec![0, 2],
            vec![2, 1],
            vec![1, 2],
            2,
        ),
        (
            vec![2, 3, 3, 4],
            vec![4, 3, 3, 1],
            vec![2, 1],
            vec![1, 0],
            vec![1, 1],
            vec![0, 0],
            4,
        ),
        (
            vec![1, 3, 2, 3, 2],
            vec![3, 2, 3, 2, 2],
            vec![2, 1, 2],
            vec![0, 1, 1],
            vec![1, 1, 1],
            vec![1, 0, 1],
            1,
        ),
        (
            vec![2, 2, 3, 2, 2],
            vec![2, 2, 2, 2, 1],
            vec![1, 2, 1],
            vec![1, 0, 0],
            vec![2, 1, 1],
            vec![0, 1, 0],
            2,
        ),
    ];
    for (xs, ws, stride, pad, dil, op, groups) in cases {
        let nd = xs.len() - 2;
        for dtype in FLOATS {
            let (_, xv) = rand_array(&mut rng, &xs, dtype);
            let (_, wv) = rand_array(&mut rng, &ws, dtype);
            let pads: Vec<(isize, isize)> = pad.iter().map(|&p| (p as isize, p as isize)).collect();
            let (want, sh) =
                ref_conv_transpose(&xv, &xs, &wv, &ws, &stride, &pads, &dil, &op, groups);
            for (lname, x) in layouts(&xv, &xs, dtype) {
                let w = noncontiguous(&wv, &ws, dtype);
                let y = match nd {
                    1 => ingot::conv_transpose1d(&x, &w, stride[0], pad[0], dil[0], op[0], groups),
                    2 => ingot::conv_transpose2d(&x, &w, &stride, pad.clone(), &dil, &op, groups),
                    _ => ingot::conv_transpose3d(&x, &w, &stride, pad.clone(), &dil, &op, groups),
                }
                .unwrap();
                let what = format!("conv_transpose {xs:?} {ws:?} s{stride:?} p{pad:?} d{dil:?} op{op:?} g{groups} {dtype} {lname}");
                check(&y, &want, &sh, dtype, &what);
            }
        }
    }
}

#[test]
fn conv_transpose_large_matches_scatter_definition() {
    // Large enough for the phase-class tiles to run in parallel.
    let mut rng = Rng::new(24);
    let xs = [2, 12, 13, 16];
    let ws = [16, 4, 4, 16];
    let (x, xv) = rand_array(&mut rng, &xs, DType::F32);
    let (w, wv) = rand_array(&mut rng, &ws, DType::F32);
    let y = ingot::conv_transpose2d(&x, &w, &[2], 1usize, &[1], &[1], 1).unwrap();
    let (want, sh) = ref_conv_transpose(
        &xv,
        &xs,
        &wv,
        &ws,
        &[2, 2],
        &[(1, 1), (1, 1)],
        &[1, 1],
        &[1, 1],
        1,
    );
    check(&y, &want, &sh, DType::F32, "large transpose");
    // grouped, dilated, stride 3, f64 through a transposed input view
    let ws = [8, 3, 3, 8];
    let (w, wv) = rand_array(&mut rng, &ws, DType::F64);
    let xt = transposed(&xv, &xs, DType::F64);
    let y = ingot::conv_transpose2d(&xt, &w, &[3, 2], 2usize, &[2, 1], &[2, 1], 2).unwrap();
    let (want, sh) = ref_conv_transpose(
        &xv,
        &xs,
        &wv,
        &ws,
        &[3, 2],
        &[(2, 2), (2, 2)],
        &[2, 1],
        &[2, 1],
        2,
    );
    check(
        &y,
        &want,
        &sh,
        DType::F64,
        "large grouped dilated transpose",
    );
}

#[test]
fn conv_transpose_asymmetric_and_same_padding() {
    let mut rng = Rng::new(22);
    let xs = [2, 4, 5, 2];
    let ws = [3, 3, 2, 2];
    let (x, xv) = rand_array(&mut rng, &xs, DType::F64);
    let (w, wv) = rand_array(&mut rng, &ws, DType::F64);
    let y = ingot::conv_transpose2d(&x, &w, &[2, 1], [(0, 2), (1, 0)], &[1], &[0], 1).unwrap();
    let (want, sh) = ref_conv_transpose(
        &xv,
        &xs,
        &wv,
        &ws,
        &[2, 1],
        &[(0, 2), (1, 0)],
        &[1, 1],
        &[0, 0],
        1,
    );
    check(&y, &want, &sh, DType::F64, "transpose asymmetric");
    // "same": output in * stride, including strides wider than the kernel.
    for stride in [[1, 1], [2, 3], [4, 2]] {
        let y = ingot::conv_transpose2d(&x, &w, &stride, Padding::Same, &[1], &[0], 1).unwrap();
        let pads: Vec<(isize, isize)> = (0..2)
            .map(|d| {
                let total = ws[d + 1] as isize - stride[d] as isize;
                if total >= 0 {
                    (total / 2, total - total / 2)
                } else {
                    (0, total)
                }
            })
            .collect();
        let (want, sh) =
            ref_conv_transpose(&xv, &xs, &wv, &ws, &stride, &pads, &[1, 1], &[0, 0], 1);
        assert_eq!(sh, vec![2, 4 * stride[0], 5 * stride[1], 3]);
        check(
            &y,
            &want,
            &sh,
            DType::F64,
            &format!("transpose same {stride:?}"),
        );
    }
}

#[test]
fn conv_transpose_is_the_adjoint_of_conv() {
    // <conv(x, w), y> == <x, conv_transpose(y, w')> with w' the weight with C_in and C_out
    // swapped: an independent check of the layout convention.
    let mut rng = Rng::new(23);
    let (x, xv) = rand_array(&mut rng, &[1, 7, 6, 3], DType::F64);
    let (w, _) = rand_array(&mut rng, &[4, 3, 2, 3], DType::F64);
    let y = ingot::conv2d(&x, &w, &[2, 1], 1usize, &[1, 2], 1).unwrap();
    let (gy, gyv) = rand_array(&mut rng, y.shape(), DType::F64);
    let wt = ingot::transpose(&w, Some(&[3, 1, 2, 0])).unwrap();
    let xt = ingot::conv_transpose2d(&gy, &wt, &[2, 1], 1usize, &[1, 2], &[0, 0], 1).unwrap();
    assert_eq!(xt.shape(), x.shape());
    let lhs: f64 = y
        .to_f64_vec()
        .unwrap()
        .iter()
        .zip(&gyv)
        .map(|(a, b)| a * b)
        .sum();
    let rhs: f64 = xt
        .to_f64_vec()
        .unwrap()
        .iter()
        .zip(&xv)
        .map(|(a, b)| a * b)
        .sum();
    assert!(
        (lhs - rhs).abs() < 1e-9 * (1.0 + lhs.abs()),
        "{lhs} vs {rhs}"
    );
}

// ---- pooling --------------------------------------------------------------------------------

#[test]
fn pooling_matches_reference() {
    let mut rng = Rng::new(31);
    // (x shape, kernel, stride (None: kernel), padding)
    type PCase = (Vec<usize>, Vec<usize>, Option<Vec<usize>>, Vec<usize>);
    let cases: Vec<PCase> = vec![
        (vec![2, 9, 3], vec![3], None, vec![0]),
        (vec![1, 10, 2], vec![4], Some(vec![1]), vec![2]),
        (vec![2, 7, 1], vec![3], Some(vec![2]), vec![1]),
        (vec![2, 6, 7, 3], vec![2, 2], None, vec![0, 0]),
        (vec![1, 7, 8, 2], vec![3, 2], Some(vec![2, 1]), vec![1, 1]),
        (vec![3, 5, 5, 4], vec![3, 3], Some(vec![1, 2]), vec![1, 0]),
        (
            vec![2, 4, 5, 6, 2],
            vec![2, 3, 2],
            Some(vec![2, 1, 2]),
            vec![1, 1, 0],
        ),
        (vec![1, 3, 4, 3, 3], vec![3, 2, 3], None, vec![1, 0, 1]),
        (
            vec![2, 40, 41, 24],
            vec![3, 3],
            Some(vec![2, 2]),
            vec![1, 1],
        ),
    ];
    for (xs, k, s, p) in cases {
        let nd = xs.len() - 2;
        for dtype in FLOATS {
            let (_, mut xv) = rand_array(&mut rng, &xs, dtype);
            if xv.len() > 20 {
                xv[5] = f64::NAN;
                xv[11] = f64::INFINITY;
                xv[17] = f64::NEG_INFINITY;
                xv[3] = -0.0;
            }
            let stride = s.clone().unwrap_or(k.clone());
            for (lname, x) in layouts(&xv, &xs, dtype) {
                let what = format!("pool {xs:?} k{k:?} s{s:?} p{p:?} {dtype} {lname}");
                let (want, sh) = ref_pool(&xv, &xs, &k, &stride, &p, true, false);
                let y = match nd {
                    1 => ingot::max_pool1d(&x, k[0], s.as_ref().map(|s| s[0]), p[0]),
                    2 => ingot::max_pool2d(&x, &k, s.as_deref(), &p),
                    _ => ingot::max_pool3d(&x, &k, s.as_deref(), &p),
                }
                .unwrap();
                check(&y, &want, &sh, dtype, &format!("max {what}"));
                for cip in [true, false] {
                    let (want, sh) = ref_pool(&xv, &xs, &k, &stride, &p, false, cip);
                    let y = match nd {
                        1 => ingot::avg_pool1d(&x, k[0], s.as_ref().map(|s| s[0]), p[0], cip),
                        2 => ingot::avg_pool2d(&x, &k, s.as_deref(), &p, cip),
                        _ => ingot::avg_pool3d(&x, &k, s.as_deref(), &p, cip),
                    }
                    .unwrap();
                    check(&y, &want, &sh, dtype, &format!("avg cip={cip} {what}"));
                }
            }
        }
    }
}

#[test]
fn pooling_padding_never_wins_and_empty_batch() {
    // All-negative input: a max with zero padding would return 0 at the borders.
    let x = Array::from_slice(&[-3.0f32, -1.0, -2.0, -5.0], &[1, 4, 1]).unwrap();
    let y = ingot::max_pool1d(&x, 3, Some(1), 1).unwrap();
    assert_eq!(y.to_vec::<f32>().unwrap(), vec![-1.0, -1.0, -1.0, -2.0]);
    let y = ingot::avg_pool1d(&x, 3, Some(1), 1, true).unwrap();
    assert_close(
        &y.to_f64_vec().unwrap(),
        &[-4.0 / 3.0, -2.0, -8.0 / 3.0, -7.0 / 3.0],
        1e-6,
        0.0,
        "avg count pad",
    );
    let y = ingot::avg_pool1d(&x, 3, Some(1), 1, false).unwrap();
    assert_close(
        &y.to_f64_vec().unwrap(),
        &[-2.0, -2.0, -8.0 / 3.0, -3.5],
        1e-6,
        0.0,
        "avg no count pad",
    );
    let x = ingot::zeros(&[0, 6, 6, 3], DType::BF16).unwrap();
    let y = ingot::max_pool2d(&x, &[2], None, &[0]).unwrap();
    assert_eq!(y.shape(), &[0, 3, 3, 3]);
    assert_eq!(y.dtype(), DType::BF16);
    assert!(y.to_f64_vec().unwrap().is_empty());
    let x = ingot::zeros(&[2, 6, 6, 0], DType::F32).unwrap();
    let y = ingot::avg_pool2d(&x, &[3], Some(&[2]), &[1], true).unwrap();
    assert_eq!(y.shape(), &[2, 3, 3, 0]);
}

// ---- errors ---------------------------------------------------------------------------------

#[test]
fn conv_errors_name_op_shapes_and_dtypes() {
    let f32z = |s: &[usize]| ingot::zeros(s, DType::F32).unwrap();
    let x = f32z(&[1, 5, 5, 3]);
    let w = f32z(&[4, 3, 3, 3]);
    assert_eq!(
        err(ingot::conv2d(&ingot::zeros(&[1, 5, 5, 3], DType::I32).unwrap(), &w, &[1], 0usize, &[1], 1)),
        "[conv2d] input and weight must be float16, bfloat16, float32 or float64, got int32 and float32"
    );
    assert_eq!(
        err(ingot::conv2d(&f32z(&[5, 5, 3]), &w, &[1], 0usize, &[1], 1)),
        "[conv2d] input must be 4-D (N, *spatial, C_in) with 2 spatial dims, got shape (5, 5, 3)"
    );
    assert_eq!(
        err(ingot::conv2d(&x, &f32z(&[4, 3, 3]), &[1], 0usize, &[1], 1)),
        "[conv2d] weight must be 4-D (C_out, *kernel, C_in / groups) for input (1, 5, 5, 3), got shape (4, 3, 3)"
    );
    assert_eq!(
        err(ingot::conv2d(&x, &f32z(&[4, 3, 3, 2]), &[1], 0usize, &[1], 1)),
        "[conv2d] channel mismatch: input (1, 5, 5, 3) has 3 channels, so weight needs C_in / groups = 3 in its last dim (groups=1), got weight (4, 3, 3, 2)"
    );
    assert_eq!(
        err(ingot::conv2d(&x, &w, &[1], 0usize, &[1], 2)),
        "[conv2d] input channels 3 of input (1, 5, 5, 3) are not divisible by groups=2"
    );
    assert_eq!(
        err(ingot::conv2d(
            &f32z(&[1, 5, 5, 4]),
            &f32z(&[3, 3, 3, 2]),
            &[1],
            0usize,
            &[1],
            2
        )),
        "[conv2d] output channels 3 of weight (3, 3, 3, 2) are not divisible by groups=2"
    );
    assert_eq!(
        err(ingot::conv2d(&x, &w, &[1], 0usize, &[1], 0)),
        "[conv2d] groups must be positive, got 0"
    );
    assert_eq!(
        err(ingot::conv2d(&x, &w, &[1, 0], 0usize, &[1], 1)),
        "[conv2d] stride must be positive, got (1, 0)"
    );
    assert_eq!(
        err(ingot::conv2d(&x, &w, &[1, 1, 1], 0usize, &[1], 1)),
        "[conv2d] stride needs 1 or 2 values for 2 spatial dims, got 3: [1, 1, 1]"
    );
    assert_eq!(
        err(ingot::conv2d(&x, &w, &[1], 0usize, &[0], 1)),
        "[conv2d] dilation must be positive, got (0, 0)"
    );
    assert_eq!(
        err(ingot::conv2d(&x, &w, &[1], vec![1, 2, 3], &[1], 1)),
        "[conv2d] padding needs 1 or 2 values for 2 spatial dims, got 3: [1, 2, 3]"
    );
    assert_eq!(
        err(ingot::conv2d(&x, &f32z(&[4, 6, 3, 3]), &[1], 0usize, &[1], 1)),
        "[conv2d] kernel (6, 3) with dilation (1, 1) spans (6, 3), larger than the padded input (5, 5) (input (1, 5, 5, 3), padding [(0, 0), (0, 0)])"
    );
    assert_eq!(
        err(ingot::conv2d(&x, &w, &[1], 0usize, &[3], 1)),
        "[conv2d] kernel (3, 3) with dilation (3, 3) spans (7, 7), larger than the padded input (5, 5) (input (1, 5, 5, 3), padding [(0, 0), (0, 0)])"
    );
    assert_eq!(
        err(ingot::conv2d(
            &x,
            &f32z(&[4, 0, 3, 3]),
            &[1],
            0usize,
            &[1],
            1
        )),
        "[conv2d] kernel size must be positive, got weight (4, 0, 3, 3)"
    );
    assert_eq!(
        err(ingot::conv_general(&f32z(&[2, 3]), &f32z(&[2, 3]), &[1], 0usize, &[1], &[1], 1, false)),
        "[conv_general] input must be (N, *spatial, C_in) with at least one spatial dim, got shape (2, 3)"
    );
    assert_eq!(
        err(ingot::conv_general(
            &f32z(&[1, 4, 2]),
            &f32z(&[1, 2, 2]),
            &[1],
            0usize,
            &[1],
            &[0],
            1,
            false
        )),
        "[conv_general] input_dilation must be positive, got (0,)"
    );
    assert_eq!(
        err(ingot::conv1d(
            &f32z(&[1, 4, 2]),
            &f32z(&[1, 2, 2]),
            1,
            vec![(1, 2), (0, 0)],
            1,
            1
        )),
        "[conv1d] padding needs 1 or 1 (lo, hi) pairs for 1 spatial dims, got 2: [(1, 2), (0, 0)]"
    );
    assert_eq!(
        err(ingot::conv_transpose2d(&x, &w, &[2], 0usize, &[1], &[2], 1)),
        "[conv_transpose2d] output_padding (2, 2) must be smaller than stride (2, 2) or dilation (1, 1)"
    );
    assert_eq!(
        err(ingot::conv_transpose1d(&f32z(&[1, 2, 3]), &f32z(&[2, 3, 3]), 1, 3usize, 1, 0, 1)),
        "[conv_transpose1d] padding [(3, 3)] leaves no output for input (1, 2, 3) with kernel (3,) (stride (1,), dilation (1,))"
    );
    assert_eq!(
        err(ingot::conv_transpose2d(
            &f32z(&[1, 0, 5, 3]),
            &w,
            &[1],
            0usize,
            &[1],
            &[0],
            1
        )),
        "[conv_transpose2d] spatial dims must be non-empty, got input (1, 0, 5, 3)"
    );
}

#[test]
fn pool_errors_name_op_shapes_and_dtypes() {
    let x = ingot::zeros(&[1, 5, 5, 3], DType::F32).unwrap();
    assert_eq!(
        err(ingot::max_pool2d(
            &ingot::zeros(&[1, 5, 5, 3], DType::I64).unwrap(),
            &[2],
            None,
            &[0]
        )),
        "[max_pool2d] input must be float16, bfloat16, float32 or float64, got int64"
    );
    assert_eq!(
        err(ingot::avg_pool2d(
            &ingot::zeros(&[5, 5, 3], DType::F32).unwrap(),
            &[2],
            None,
            &[0],
            true
        )),
        "[avg_pool2d] input must be 4-D (N, *spatial, C) with 2 spatial dims, got shape (5, 5, 3)"
    );
    assert_eq!(
        err(ingot::max_pool2d(&x, &[0, 2], None, &[0])),
        "[max_pool2d] kernel_size must be positive, got (0, 2)"
    );
    assert_eq!(
        err(ingot::max_pool2d(&x, &[2], Some(&[0]), &[0])),
        "[max_pool2d] stride must be positive, got (0, 0)"
    );
    assert_eq!(
        err(ingot::max_pool2d(&x, &[3], None, &[2])),
        "[max_pool2d] padding (2, 2) must be at most half of kernel_size (3, 3)"
    );
    assert_eq!(
        err(ingot::avg_pool2d(&x, &[6, 2], None, &[0], false)),
        "[avg_pool2d] kernel_size (6, 2) is larger than the padded input (5, 5) (input (1, 5, 5, 3), padding (0, 0))"
    );
    assert_eq!(
        err(ingot::max_pool3d(
            &ingot::zeros(&[1, 3, 3, 3, 1], DType::F32).unwrap(),
            &[2, 2],
            None,
            &[0]
        )),
        "[max_pool3d] kernel_size needs 1 or 3 values for 3 spatial dims, got 2: [2, 2]"
    );
    assert_eq!(
        err(ingot::max_pool1d(
            &ingot::zeros(&[1, 0, 3], DType::F32).unwrap(),
            2,
            None,
            0
        )),
        "[max_pool1d] spatial dims must be non-empty, got input (1, 0, 3)"
    );
}

// ---- runner --------------------------------------------------------------------------------

fn run(name: &str, inputs: &[Array], attrs: serde_json::Value) -> ingot::Result<Array> {
    let at = ingot::runner::Attrs::new(name, Some(&attrs))?;
    Ok(ingot::runner::run_op(name, inputs, &at)?.remove(0))
}

#[test]
fn runner_calls_conv_and_pool_ops() {
    use serde_json::json;
    let mut rng = Rng::new(41);
    let (x, _) = rand_array(&mut rng, &[2, 7, 6, 4], DType::F32);
    let (w, _) = rand_array(&mut rng, &[6, 3, 2, 2], DType::F32);
    let same = |a: &Array, b: &Array| {
        assert_eq!(a.shape(), b.shape());
        assert_eq!(a.to_f64_vec().unwrap(), b.to_f64_vec().unwrap());
    };
    let got = run(
        "conv2d",
        &[x.clone(), w.clone()],
        json!({"stride": [2, 1], "padding": [[1, 0], [0, 1]], "dilation": 1, "groups": 2}),
    )
    .unwrap();
    same(
        &got,
        &ingot::conv2d(&x, &w, &[2, 1], [(1, 0), (0, 1)], &[1], 2).unwrap(),
    );
    let got = run(
        "conv2d",
        &[x.clone(), w.clone()],
        json!({"padding": "same", "groups": 2}),
    )
    .unwrap();
    same(
        &got,
        &ingot::conv2d(&x, &w, &[1], Padding::Same, &[1], 2).unwrap(),
    );
    let got = run(
        "conv2d",
        &[x.clone(), w.clone()],
        json!({"padding": 1, "dilation": [2, 1], "groups": 2}),
    )
    .unwrap();
    same(
        &got,
        &ingot::conv2d(&x, &w, &[1], 1usize, &[2, 1], 2).unwrap(),
    );
    let got = run(
        "conv_transpose2d",
        &[x.clone(), w.clone()],
        json!({"stride": 2, "padding": 1, "output_padding": [1, 0], "groups": 2}),
    )
    .unwrap();
    same(
        &got,
        &ingot::conv_transpose2d(&x, &w, &[2], 1usize, &[1], &[1, 0], 2).unwrap(),
    );
    let got = run(
        "conv_general",
        &[x.clone(), w.clone()],
        json!({"input_dilation": 2, "flip": true, "groups": 2, "padding": "valid"}),
    )
    .unwrap();
    same(
        &got,
        &ingot::conv_general(&x, &w, &[1], Padding::Valid, &[1], &[2], 2, true).unwrap(),
    );
    let (x1, _) = rand_array(&mut rng, &[2, 9, 3], DType::F64);
    let (w1, _) = rand_array(&mut rng, &[3, 3, 3], DType::F64);
    let got = run(
        "conv1d",
        &[x1.clone(), w1.clone()],
        json!({"stride": 2, "padding": 1}),
    )
    .unwrap();
    same(&got, &ingot::conv1d(&x1, &w1, 2, 1usize, 1, 1).unwrap());
    let got = run(
        "conv_transpose1d",
        &[x1.clone(), w1.clone()],
        json!({"stride": 3, "output_padding": 2}),
    )
    .unwrap();
    same(
        &got,
        &ingot::conv_transpose1d(&x1, &w1, 3, 0usize, 1, 2, 1).unwrap(),
    );
    let got = run(
        "max_pool1d",
        std::slice::from_ref(&x1),
        json!({"kernel_size": 3, "stride": 2, "padding": 1}),
    )
    .unwrap();
    same(&got, &ingot::max_pool1d(&x1, 3, Some(2), 1).unwrap());
    let got = run(
        "avg_pool2d",
        std::slice::from_ref(&x),
        json!({"kernel_size": [3, 2], "padding": [1, 1], "count_include_pad": false}),
    )
    .unwrap();
    same(
        &got,
        &ingot::avg_pool2d(&x, &[3, 2], None, &[1, 1], false).unwrap(),
    );
    let (x3, _) = rand_array(&mut rng, &[1, 4, 4, 4, 2], DType::F32);
    let (w3, _) = rand_array(&mut rng, &[2, 2, 2, 2, 2], DType::F32);
    let got = run(
        "conv3d",
        &[x3.clone(), w3.clone()],
        json!({"padding": "same"}),
    )
    .unwrap();
    same(
        &got,
        &ingot::conv3d(&x3, &w3, &[1], Padding::Same, &[1], 1).unwrap(),
    );
    let got = run(
        "max_pool3d",
        std::slice::from_ref(&x3),
        json!({"kernel_size": 2}),
    )
    .unwrap();
    same(&got, &ingot::max_pool3d(&x3, &[2], None, &[0]).unwrap());
    // attribute errors
    assert_eq!(
        err(run("conv2d", &[x.clone(), w.clone()], json!({"padding": "full"}))),
        "[conv2d] attribute 'padding' must be an int, a list of ints, a list of [lo, hi] pairs, \"same\" or \"valid\", got \"full\""
    );
    assert_eq!(
        err(run("max_pool2d", std::slice::from_ref(&x), json!({}))),
        "[max_pool2d] attribute 'kernel_size' is required"
    );
    assert_eq!(
        err(run(
            "conv1d",
            &[x1.clone(), w1.clone()],
            json!({"stride": [1, 2]})
        )),
        "[conv1d] stride needs 1 value for 1 spatial dim, got [1, 2]"
    );
}

/// On a GPU: ResNet-shaped bf16 and f32 convolutions go through cuDNN's graph API (its
/// legacy call reaches none of Hopper's fastest kernels) and agree with the CPU. f32 stays
/// within FMA rounding of it, which an engine computing in TF32 would not. The path is the
/// default (`INGOT_CUDNN_GRAPH=0` turns it off); the test sets it on regardless.
#[test]
fn gpu_convolutions_use_cudnn_graph_api() {
    if !ingot::backend::cuda::is_available() {
        eprintln!("skipped: no CUDA GPU");
        return;
    }
    ingot::cuda::set_cudnn_graph(true);
    let gpu = ingot::Device::Cuda(0);
    let mut rng = Rng::new(41);
    for (dtype, tol) in [(DType::BF16, 2e-2), (DType::F32, 1e-4)] {
        for (h, cin, cout, k, s, p) in [
            (28usize, 64usize, 64usize, 3usize, 1usize, 1usize),
            (14, 128, 256, 1, 2, 0),
        ] {
            let (x, _) = rand_array(&mut rng, &[4, h, h, cin], dtype);
            let (w, _) = rand_array(&mut rng, &[cout, k, k, cin], dtype);
            let run = || {
                ingot::conv2d(&x, &w, &[s, s], p, &[1, 1], 1)
                    .unwrap()
                    .to_f64_vec()
                    .unwrap()
            };
            let (before, _, _) = ingot::backend::cuda::conv_paths();
            let got = ingot::with_device(gpu, run);
            let (after, legacy, why) = ingot::backend::cuda::conv_paths();
            assert!(
                after > before,
                "{dtype} {h}x{h}x{cin} -> {cout}, {k}x{k}/{s}: not through the graph API \
                 ({legacy} legacy calls so far): {why:?}"
            );
            let want = ingot::with_device(ingot::Device::Cpu, run);
            let scale = want.iter().fold(1f64, |m, v| m.max(v.abs()));
            let err = got
                .iter()
                .zip(&want)
                .fold(0f64, |m, (a, b)| m.max((a - b).abs()));
            assert!(
                err <= tol * scale,
                "{dtype} {h}x{h}x{cin} -> {cout}: error {err} (scale {scale})"
            );
        }
    }
}
