//! softmax/log_softmax, grid_sample, hadamard_transform and histogram against f64
//! references written here: every float dtype, strided layouts, empty shapes, special
//! values, and the error messages of bad calls.

mod common;
use common::*;
use ingot::op::{GridPadding, InterpMode};
use ingot::{Array, DType};

/// Reference softmax along `axis` of a row-major f64 array.
fn ref_softmax(x: &[f64], shape: &[usize], axis: usize, log: bool) -> Vec<f64> {
    let len = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let outer: usize = shape[..axis].iter().product();
    let mut out = vec![0.0; x.len()];
    for o in 0..outer {
        for i in 0..inner {
            let idx = |k: usize| o * len * inner + k * inner + i;
            let m = (0..len).map(|k| x[idx(k)]).fold(f64::NEG_INFINITY, |m, v| {
                if v.is_nan() || m.is_nan() {
                    f64::NAN
                } else {
                    m.max(v)
                }
            });
            let s: f64 = (0..len).map(|k| (x[idx(k)] - m).exp()).sum();
            for k in 0..len {
                out[idx(k)] = if log {
                    x[idx(k)] - m - s.ln()
                } else {
                    (x[idx(k)] - m).exp() / s
                };
            }
        }
    }
    out
}

fn softmax_tol(dt: DType) -> (f64, f64) {
    match dt {
        DType::F16 => (4e-3, 1e-3),
        DType::BF16 => (2e-2, 8e-3),
        DType::F64 => (1e-12, 1e-14),
        // log_softmax near 0 carries log(s)'s absolute error: a few f32 epsilons (1.2e-7).
        _ => (2e-6, 5e-7),
    }
}

#[test]
fn softmax_matches_reference() {
    let mut rng = Rng::new(1);
    let shapes: Vec<Vec<usize>> = vec![
        vec![1],
        vec![7],
        vec![3, 4],
        vec![2, 0, 3],
        vec![2, 3, 5],
        vec![65, 33],
        vec![300, 130],
    ];
    let dtypes = [
        DType::F16,
        DType::BF16,
        DType::F32,
        DType::F64,
        DType::I32,
        DType::U8,
        DType::Bool,
    ];
    for shape in &shapes {
        for &dt in &dtypes {
            let (a, vals) = rand_array(&mut rng, shape, dt);
            let out_dt = if dt.is_float() { dt } else { DType::F32 };
            for axis in 0..shape.len() {
                for log in [false, true] {
                    let f = if log {
                        ingot::log_softmax
                    } else {
                        ingot::softmax
                    };
                    let layouts = [
                        ("contiguous", a.clone()),
                        ("stepped", noncontiguous(&vals, shape, dt)),
                        ("transposed", transposed(&vals, shape, dt)),
                    ];
                    let want = ref_softmax(&vals, shape, axis, log);
                    let want: Vec<f64> = want.iter().map(|&v| round_to(v, out_dt)).collect();
                    let (rtol, atol) = softmax_tol(out_dt);
                    for (name, x) in layouts {
                        let y = f(&x, axis as isize - shape.len() as isize).unwrap();
                        assert_eq!(y.dtype(), out_dt);
                        assert_eq!(y.shape(), &shape[..]);
                        assert_close(
                            &y.to_f64_vec().unwrap(),
                            &want,
                            rtol,
                            atol,
                            &format!("softmax log={log} {shape:?} axis {axis} {dt} {name}"),
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn softmax_kernel_matches_reference_decomposition() {
    let mut rng = Rng::new(11);
    for shape in [
        vec![7],
        vec![3, 4],
        vec![2, 3, 5],
        vec![40, 70],
        vec![2, 0, 3],
    ] {
        for dt in [DType::F32, DType::F64, DType::F16, DType::BF16] {
            let (a, vals) = rand_array(&mut rng, &shape, dt);
            let (rtol, atol) = softmax_tol(dt);
            for axis in 0..shape.len() as isize {
                for log in [false, true] {
                    let f = if log {
                        ingot::log_softmax
                    } else {
                        ingot::softmax
                    };
                    for x in [a.clone(), transposed(&vals, &shape, dt)] {
                        let got = f(&x, axis).unwrap();
                        let want = ingot::softmax_reference(&x, axis, log).unwrap();
                        assert_eq!(got.dtype(), want.dtype());
                        assert_eq!(got.shape(), want.shape());
                        // the decomposition rounds after every op: allow a few roundings
                        assert_close(
                            &got.to_f64_vec().unwrap(),
                            &want.to_f64_vec().unwrap(),
                            4.0 * rtol,
                            4.0 * atol,
                            &format!("kernel vs reference {shape:?} {dt} axis {axis} log={log}"),
                        );
                    }
                }
            }
        }
    }
    let r = array_from_f64(&[f64::NEG_INFINITY; 3], &[3], DType::F32);
    assert!(ingot::softmax_reference(&r, 0, false)
        .unwrap()
        .to_f64_vec()
        .unwrap()
        .iter()
        .all(|v| v.is_nan()));
}

#[test]
fn softmax_special_values() {
    let inf = f64::INFINITY;
    let nan = f64::NAN;
    let rows: Vec<Vec<f64>> = vec![
        vec![-inf, -inf, -inf],
        vec![1.0, -inf, 2.0],
        vec![1.0, nan, 2.0],
        vec![0.0, inf, 1.0],
        vec![1000.0, 1000.0, -1000.0],
        vec![-0.0, 0.0, -0.0],
    ];
    for r in rows {
        for dt in [DType::F32, DType::F64, DType::F16] {
            let a = array_from_f64(&r, &[1, 3], dt);
            let ac = array_from_f64(&r, &[3, 1], dt);
            for log in [false, true] {
                let want = ref_softmax(&r, &[3], 0, log);
                let f = if log {
                    ingot::log_softmax
                } else {
                    ingot::softmax
                };
                let (rtol, atol) = softmax_tol(dt);
                let got = f(&a, -1).unwrap().to_f64_vec().unwrap();
                assert_close(&got, &want, rtol, atol, &format!("{r:?} {dt} log={log}"));
                // the same along a non-last axis (the column kernel)
                let got = f(&ac, 0).unwrap().to_f64_vec().unwrap();
                assert_close(
                    &got,
                    &want,
                    rtol,
                    atol,
                    &format!("column {r:?} {dt} log={log}"),
                );
            }
        }
    }
    // all -inf gives NaN
    let a = array_from_f64(&[f64::NEG_INFINITY; 4], &[4], DType::F32);
    assert!(ingot::softmax(&a, 0)
        .unwrap()
        .to_f64_vec()
        .unwrap()
        .iter()
        .all(|v| v.is_nan()));
}

#[test]
fn softmax_errors() {
    let e = |r: ingot::Result<Array>| r.unwrap_err().to_string();
    let a = ingot::zeros(&[2, 3], DType::F32).unwrap();
    assert_eq!(
        e(ingot::softmax(&a, 2)),
        "[softmax] axis 2 is out of bounds for an array of dimension 2"
    );
    assert_eq!(
        e(ingot::log_softmax(&Array::scalar(1.0f32), -1)),
        "[log_softmax] axis -1 is out of bounds for an array of dimension 0"
    );
    assert_eq!(
        e(ingot::softmax(&ingot::zeros(&[3], DType::C64).unwrap(), 0)),
        "[softmax] not supported for dtype complex64 (shape (3,))"
    );
}

/// Sylvester's Hadamard matrix entry: (-1)^popcount(i & j).
fn had(i: usize, j: usize) -> f64 {
    if (i & j).count_ones() % 2 == 0 {
        1.0
    } else {
        -1.0
    }
}

#[test]
fn hadamard_matches_matrix() {
    let mut rng = Rng::new(2);
    for n in [1usize, 2, 4, 8, 64, 1024] {
        for dt in [DType::F32, DType::F64, DType::F16, DType::BF16, DType::I16] {
            let rows = if n >= 1024 { 3 } else { 5 };
            let shape = [rows, n];
            let (a, vals) = rand_array(&mut rng, &shape, dt);
            let out_dt = if dt.is_float() { dt } else { DType::F32 };
            for scale in [None, Some(0.5)] {
                let s = scale.unwrap_or(1.0 / (n as f64).sqrt());
                let want: Vec<f64> = (0..rows * n)
                    .map(|idx| {
                        let (r, i) = (idx / n, idx % n);
                        let v: f64 = (0..n).map(|j| had(i, j) * vals[r * n + j]).sum();
                        round_to(v * s, out_dt)
                    })
                    .collect();
                let rtol = match out_dt {
                    DType::F16 => 4e-3,
                    DType::BF16 => 2e-2,
                    DType::F64 => 1e-12,
                    _ => 1e-5,
                };
                let atol = rtol * 2.0 * (n as f64).sqrt() * s;
                for (name, x) in [
                    ("contiguous", a.clone()),
                    ("stepped", noncontiguous(&vals, &shape, dt)),
                    ("transposed", transposed(&vals, &shape, dt)),
                ] {
                    let y = ingot::hadamard_transform(&x, scale).unwrap();
                    assert_eq!(y.dtype(), out_dt);
                    assert_close(
                        &y.to_f64_vec().unwrap(),
                        &want,
                        rtol,
                        atol,
                        &format!("hadamard n={n} {dt} {name} {scale:?}"),
                    );
                }
            }
        }
    }
    // orthonormal by default: applying it twice gives the input back
    let (a, vals) = rand_array(&mut rng, &[4, 2, 32], DType::F32);
    let y = ingot::hadamard_transform(&ingot::hadamard_transform(&a, None).unwrap(), None).unwrap();
    assert_close(&y.to_f64_vec().unwrap(), &vals, 1e-5, 1e-5, "H H x = x");
    // empty batch
    let y = ingot::hadamard_transform(&ingot::zeros(&[0, 8], DType::F32).unwrap(), None).unwrap();
    assert_eq!(y.shape(), &[0, 8]);
    // many rows: the threaded path
    let (a, vals) = rand_array(&mut rng, &[4096, 16], DType::F32);
    let y = ingot::hadamard_transform(&a, Some(1.0))
        .unwrap()
        .to_f64_vec()
        .unwrap();
    for r in [0usize, 1234, 4095] {
        for i in 0..16 {
            let v: f64 = (0..16).map(|j| had(i, j) * vals[r * 16 + j]).sum();
            assert!((y[r * 16 + i] - v).abs() < 1e-4, "row {r} col {i}");
        }
    }
}

#[test]
fn hadamard_errors() {
    let e = |r: ingot::Result<Array>| r.unwrap_err().to_string();
    assert_eq!(
        e(ingot::hadamard_transform(
            &ingot::zeros(&[2, 3], DType::F32).unwrap(),
            None
        )),
        "[hadamard_transform] the last axis must have a power-of-two length, got shape (2, 3)"
    );
    assert_eq!(
        e(ingot::hadamard_transform(
            &ingot::zeros(&[2, 0], DType::F32).unwrap(),
            None
        )),
        "[hadamard_transform] the last axis must have a power-of-two length, got shape (2, 0)"
    );
    assert_eq!(
        e(ingot::hadamard_transform(&Array::scalar(1.0f32), None)),
        "[hadamard_transform] the last axis must have a power-of-two length, got shape ()"
    );
    assert_eq!(
        e(ingot::hadamard_transform(
            &ingot::zeros(&[4], DType::C64).unwrap(),
            None
        )),
        "[hadamard_transform] not supported for dtype complex64 (shape (4,))"
    );
}

// ---- grid_sample ----------------------------------------------------------------------

/// PyTorch's source-index formulas, written out again in f64.
fn ref_index(c: f64, size: usize, pad: GridPadding, align: bool) -> f64 {
    let s = size as f64;
    let mut x = if align {
        (c + 1.0) / 2.0 * (s - 1.0)
    } else {
        ((c + 1.0) * s - 1.0) / 2.0
    };
    let reflect = |x: f64, lo2: f64, hi2: f64| -> f64 {
        if lo2 == hi2 {
            return 0.0;
        }
        let mn = lo2 / 2.0;
        let span = (hi2 - lo2) / 2.0;
        let x = (x - mn).abs();
        let extra = x.rem_euclid(span);
        let flips = (x / span).floor() as i64;
        if flips % 2 == 0 {
            extra + mn
        } else {
            span - extra + mn
        }
    };
    match pad {
        GridPadding::Zeros => {}
        GridPadding::Border => x = x.clamp(0.0, s - 1.0),
        GridPadding::Reflection => {
            x = if align {
                reflect(x, 0.0, 2.0 * (s - 1.0))
            } else {
                reflect(x, -1.0, 2.0 * s - 1.0)
            };
            x = x.clamp(0.0, s - 1.0);
        }
    }
    if x.is_finite() {
        x
    } else {
        -100.0
    }
}

#[allow(clippy::too_many_arguments)]
fn ref_grid_sample(
    x: &[f64],
    xs: &[usize],
    g: &[f64],
    gs: &[usize],
    mode: InterpMode,
    pad: GridPadding,
    align: bool,
) -> Vec<f64> {
    let (n, h, w, c) = (xs[0], xs[1], xs[2], xs[3]);
    let (ho, wo) = (gs[1], gs[2]);
    let mut out = vec![0.0; n * ho * wo * c];
    let at = |b: usize, yy: i64, xx: i64, ch: usize| -> f64 {
        if yy < 0 || xx < 0 || yy >= h as i64 || xx >= w as i64 {
            0.0
        } else {
            x[((b * h + yy as usize) * w + xx as usize) * c + ch]
        }
    };
    for b in 0..n {
        for i in 0..ho {
            for j in 0..wo {
                let gi = ((b * ho + i) * wo + j) * 2;
                let ix = ref_index(g[gi], w, pad, align);
                let iy = ref_index(g[gi + 1], h, pad, align);
                for ch in 0..c {
                    let o = ((b * ho + i) * wo + j) * c + ch;
                    out[o] = match mode {
                        InterpMode::Nearest => at(
                            b,
                            iy.round_ties_even() as i64,
                            ix.round_ties_even() as i64,
                            ch,
                        ),
                        InterpMode::Bilinear => {
                            let (x0, y0) = (ix.floor(), iy.floor());
                            let (fx, fy) = (ix - x0, iy - y0);
                            let (x0, y0) = (x0 as i64, y0 as i64);
                            at(b, y0, x0, ch) * (1.0 - fx) * (1.0 - fy)
                                + at(b, y0, x0 + 1, ch) * fx * (1.0 - fy)
                                + at(b, y0 + 1, x0, ch) * (1.0 - fx) * fy
                                + at(b, y0 + 1, x0 + 1, ch) * fx * fy
                        }
                    };
                }
            }
        }
    }
    out
}

#[test]
fn grid_sample_matches_pytorch_formulas() {
    let mut rng = Rng::new(3);
    let modes = [InterpMode::Nearest, InterpMode::Bilinear];
    let pads = [
        GridPadding::Zeros,
        GridPadding::Border,
        GridPadding::Reflection,
    ];
    let cases: Vec<(Vec<usize>, Vec<usize>)> = vec![
        (vec![2, 5, 7, 3], vec![2, 4, 6, 2]),
        (vec![1, 1, 1, 2], vec![1, 3, 3, 2]),
        (vec![1, 4, 3, 1], vec![1, 2, 5, 2]),
        (vec![3, 16, 16, 8], vec![3, 20, 20, 2]),
        (vec![0, 4, 4, 2], vec![0, 3, 3, 2]),
        (vec![1, 4, 4, 0], vec![1, 3, 3, 2]),
    ];
    for (xs, gs) in &cases {
        for dt in [DType::F32, DType::F64, DType::F16] {
            let (x, xv) = rand_array(&mut rng, xs, dt);
            let gn: usize = gs.iter().product();
            let mut gv: Vec<f64> = (0..gn).map(|_| rng.range(-1.4, 1.4)).collect();
            // exact grid points, pixel centres and half-way points, where rounding matters
            let specials = [-1.0, 1.0, 0.0, -0.5, 0.5, 0.25, -1.25, 3.0];
            for (k, v) in gv.iter_mut().enumerate().take(specials.len().min(gn)) {
                *v = specials[k];
            }
            let gv: Vec<f64> = gv.iter().map(|&v| round_to(v, dt)).collect();
            let g = array_from_f64(&gv, gs, dt);
            for mode in modes {
                for pad in pads {
                    for align in [false, true] {
                        let want = ref_grid_sample(&xv, xs, &gv, gs, mode, pad, align);
                        let want: Vec<f64> = want.iter().map(|&v| round_to(v, dt)).collect();
                        let (rtol, atol) = match dt {
                            DType::F16 => (4e-3, 8e-3),
                            DType::F64 => (1e-12, 1e-12),
                            _ => (1e-5, 1e-5),
                        };
                        for (name, xin) in [
                            ("contiguous", x.clone()),
                            ("stepped", noncontiguous(&xv, xs, dt)),
                        ] {
                            let y = ingot::grid_sample(&xin, &g, mode, pad, align).unwrap();
                            assert_eq!(y.shape(), &[xs[0], gs[1], gs[2], xs[3]]);
                            assert_eq!(y.dtype(), dt);
                            assert_close(
                                &y.to_f64_vec().unwrap(),
                                &want,
                                rtol,
                                atol,
                                &format!("grid_sample {xs:?} {gs:?} {dt} {mode:?} {pad:?} align={align} {name}"),
                            );
                        }
                    }
                }
            }
        }
    }
    // a transposed grid, and a NaN coordinate (out of bounds: zero)
    let (x, xv) = rand_array(&mut rng, &[1, 3, 3, 2], DType::F32);
    let gv = vec![0.1, -0.3, f64::NAN, 0.2, 0.7, 0.9, -0.8, 0.0];
    let gt = transposed(&gv, &[1, 2, 2, 2], DType::F32);
    let want = ref_grid_sample(
        &xv,
        &[1, 3, 3, 2],
        &gv,
        &[1, 2, 2, 2],
        InterpMode::Bilinear,
        GridPadding::Zeros,
        false,
    );
    let y = ingot::grid_sample(&x, &gt, InterpMode::Bilinear, GridPadding::Zeros, false).unwrap();
    assert_close(
        &y.to_f64_vec().unwrap(),
        &want,
        1e-5,
        1e-6,
        "transposed grid with NaN",
    );
    // integer input promotes to float32 with the grid
    let xi = array_from_f64(&[1.0, 2.0, 3.0, 4.0], &[1, 2, 2, 1], DType::I32);
    let g = array_from_f64(&[0.0, 0.0], &[1, 1, 1, 2], DType::F32);
    let y = ingot::grid_sample(&xi, &g, InterpMode::Bilinear, GridPadding::Zeros, true).unwrap();
    assert_eq!(y.dtype(), DType::F32);
    assert_eq!(y.to_f64_vec().unwrap(), vec![2.5]);
}

#[test]
fn grid_sample_errors() {
    let e = |r: ingot::Result<Array>| r.unwrap_err().to_string();
    let x = ingot::zeros(&[2, 4, 4, 3], DType::F32).unwrap();
    let g = ingot::zeros(&[2, 3, 3, 3], DType::F32).unwrap();
    assert_eq!(
        e(ingot::grid_sample(&x, &g, InterpMode::Bilinear, GridPadding::Zeros, false)),
        "[grid_sample] expected input (N, H, W, C) and grid (N, Ho, Wo, 2), got (2, 4, 4, 3) and (2, 3, 3, 3)"
    );
    let g = ingot::zeros(&[1, 3, 3, 2], DType::F32).unwrap();
    assert_eq!(
        e(ingot::grid_sample(&x, &g, InterpMode::Nearest, GridPadding::Border, true)),
        "[grid_sample] expected input (N, H, W, C) and grid (N, Ho, Wo, 2), got (2, 4, 4, 3) and (1, 3, 3, 2)"
    );
    assert_eq!(
        ingot::parse_interp_mode("grid_sample", "bicubic")
            .unwrap_err()
            .to_string(),
        "[grid_sample] invalid mode 'bicubic' (use \"nearest\" or \"bilinear\")"
    );
    assert_eq!(
        ingot::parse_grid_padding("grid_sample", "wrap")
            .unwrap_err()
            .to_string(),
        "[grid_sample] invalid padding_mode 'wrap' (use \"zeros\", \"border\" or \"reflection\")"
    );
}

// ---- histogram ----------------------------------------------------------------------

/// Reference: edges by linspace, bin by linear scan (last bin closed).
fn ref_hist(
    v: &[f64],
    w: Option<&[f64]>,
    bins: usize,
    range: Option<(f64, f64)>,
) -> (Vec<f64>, Vec<f64>) {
    let (mut lo, mut hi) = range.unwrap_or_else(|| {
        if v.is_empty() {
            (0.0, 1.0)
        } else {
            (
                v.iter().cloned().fold(f64::INFINITY, f64::min),
                v.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
            )
        }
    });
    if lo == hi {
        lo -= 0.5;
        hi += 0.5;
    }
    let mut edges: Vec<f64> = (0..=bins)
        .map(|i| lo + i as f64 * (hi - lo) / bins as f64)
        .collect();
    edges[bins] = hi;
    let mut counts = vec![0.0; bins];
    for (i, &x) in v.iter().enumerate() {
        if !(lo..=hi).contains(&x) {
            continue;
        }
        let mut k = bins - 1;
        for b in 0..bins {
            if x >= edges[b] && x < edges[b + 1] {
                k = b;
                break;
            }
        }
        counts[k] += w.map_or(1.0, |w| w[i]);
    }
    (counts, edges)
}

#[test]
fn histogram_matches_reference() {
    let mut rng = Rng::new(4);
    for shape in [vec![0], vec![1], vec![50], vec![7, 9], vec![300, 400]] {
        for dt in [DType::F32, DType::F64, DType::I32, DType::F16] {
            let (a, vals) = rand_array(&mut rng, &shape, dt);
            for bins in [1usize, 3, 10, 64] {
                for range in [None, Some((-1.0, 2.5)), Some((0.0, 0.0))] {
                    let (c, e) = ingot::histogram(&a, bins, range, None).unwrap();
                    let (wc, we) = ref_hist(&vals, None, bins, range);
                    assert_eq!(c.dtype(), DType::I64);
                    assert_eq!(e.dtype(), DType::F64);
                    assert_eq!(
                        c.to_f64_vec().unwrap(),
                        wc,
                        "counts {shape:?} {dt} {bins} {range:?}"
                    );
                    // Edges are start + i * step: a few ulps from NumPy's linspace.
                    assert_close(&e.to_f64_vec().unwrap(), &we, 1e-14, 1e-14, "edges");
                    // weights: float keeps its dtype, integers count as int64
                    let (w, wv) = rand_array(&mut rng, &shape, DType::F32);
                    let (c, _) = ingot::histogram(&a, bins, range, Some(&w)).unwrap();
                    let (wc, _) = ref_hist(&vals, Some(&wv), bins, range);
                    assert_eq!(c.dtype(), DType::F32);
                    let wc: Vec<f64> = wc.iter().map(|&v| round_to(v, DType::F32)).collect();
                    assert_close(&c.to_f64_vec().unwrap(), &wc, 1e-6, 1e-4, "weighted counts");
                    let (wi, wiv) = rand_array(&mut rng, &shape, DType::U8);
                    let (c, _) = ingot::histogram(&a, bins, range, Some(&wi)).unwrap();
                    assert_eq!(c.dtype(), DType::I64);
                    assert_eq!(
                        c.to_f64_vec().unwrap(),
                        ref_hist(&vals, Some(&wiv), bins, range).0
                    );
                }
            }
        }
    }
    // the last edge belongs to the last bin; values on inner edges go right; NaN and
    // out-of-range values are skipped when a range is given
    let v = [
        0.0,
        0.1,
        0.2,
        0.30000000000000004,
        1.0,
        1.5,
        -0.1,
        f64::NAN,
        0.7,
    ];
    let a = array_from_f64(&v, &[9], DType::F64);
    let (c, _) = ingot::histogram(&a, 10, Some((0.0, 1.0)), None).unwrap();
    assert_eq!(
        c.to_vec::<i64>().unwrap(),
        vec![1, 1, 1, 1, 0, 0, 1, 0, 0, 1]
    );
    // strided input
    let vals: Vec<f64> = (0..40).map(|i| i as f64 * 0.37).collect();
    let a = transposed(&vals, &[5, 8], DType::F32);
    let (c, _) = ingot::histogram(&a, 6, None, None).unwrap();
    let vr: Vec<f64> = vals.iter().map(|&v| round_to(v, DType::F32)).collect();
    assert_eq!(c.to_f64_vec().unwrap(), ref_hist(&vr, None, 6, None).0);
}

#[test]
fn histogram_errors() {
    let a = array_from_f64(&[1.0, f64::NAN], &[2], DType::F32);
    let e = |r: ingot::Result<(Array, Array)>| r.unwrap_err().to_string();
    assert_eq!(
        e(ingot::histogram(&a, 0, None, None)),
        "[histogram] bins must be at least 1"
    );
    assert_eq!(
        e(ingot::histogram(&a, 4, None, None)),
        "[histogram] autodetected range of [nan, nan] is not finite"
    );
    assert_eq!(
        e(ingot::histogram(&a, 4, Some((2.0, 1.0)), None)),
        "[histogram] max must be larger than min in range parameter, got (2, 1)"
    );
    assert_eq!(
        e(ingot::histogram(&a, 4, Some((0.0, f64::INFINITY)), None)),
        "[histogram] supplied range of [0, inf] is not finite"
    );
    let w = ingot::zeros(&[3], DType::F32).unwrap();
    assert_eq!(
        e(ingot::histogram(&a, 4, None, Some(&w))),
        "[histogram] weights of shape (3,) should have the shape of a, (2,)"
    );
    let b = array_from_f64(&[1.0, f64::INFINITY], &[2], DType::F32);
    assert_eq!(
        e(ingot::histogram(&b, 4, None, None)),
        "[histogram] autodetected range of [1, inf] is not finite"
    );
    assert_eq!(
        e(ingot::histogram(
            &ingot::zeros(&[2], DType::C64).unwrap(),
            4,
            None,
            None
        )),
        "[histogram] not supported for dtype complex64"
    );
}

/// `with_device` scopes the default device to the calling thread (nested scopes restore
/// the outer one, a panic restores it too); another thread keeps its own meanwhile.
#[test]
fn with_device_scopes_this_thread_only() {
    use ingot::Device;
    let base = ingot::default_device();
    let inside = std::sync::Barrier::new(2);
    let done = std::sync::Barrier::new(2);
    std::thread::scope(|s| {
        s.spawn(|| {
            ingot::with_device(Device::Cuda(7), || {
                assert_eq!(ingot::default_device(), Device::Cuda(7));
                ingot::with_device(Device::Cpu, || {
                    assert_eq!(ingot::default_device(), Device::Cpu)
                });
                assert_eq!(ingot::default_device(), Device::Cuda(7));
                inside.wait();
                done.wait();
            });
            assert_eq!(ingot::default_device(), base);
        });
        inside.wait();
        // The other thread is inside its scope now.
        assert_eq!(ingot::default_device(), base);
        done.wait();
    });
    let r = std::panic::catch_unwind(|| ingot::with_device(Device::Cuda(7), || panic!("inside")));
    assert!(r.is_err());
    assert_eq!(ingot::default_device(), base);
}
