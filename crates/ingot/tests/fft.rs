//! FFT ops against a direct O(n^2) DFT computed in f64: sizes that are primes, powers of
//! two and odd composites; cropping and padding; every axis and layout; norms; round trips;
//! the real transforms; shifts and frequencies; and the error messages of bad calls.

mod common;
use common::*;
use ingot::{c64, Array, DType, FftNorm};

type Cx = (f64, f64);

fn dft(x: &[Cx], inverse: bool) -> Vec<Cx> {
    let n = x.len();
    let sign = if inverse { 1.0 } else { -1.0 };
    (0..n)
        .map(|k| {
            let mut acc = (0.0, 0.0);
            for (j, &(re, im)) in x.iter().enumerate() {
                let t = sign * 2.0 * std::f64::consts::PI * ((j * k) % n) as f64 / n as f64;
                let (s, c) = t.sin_cos();
                acc.0 += re * c - im * s;
                acc.1 += re * s + im * c;
            }
            acc
        })
        .collect()
}

/// Applies `f` to every line along `axis` of a row-major complex array, the line first
/// cropped or zero-padded to `n_in`; `f` returns lines of length `n_out`.
fn along(
    x: &[Cx],
    shape: &[usize],
    axis: usize,
    n_in: usize,
    n_out: usize,
    f: impl Fn(&[Cx]) -> Vec<Cx>,
) -> (Vec<Cx>, Vec<usize>) {
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let len = shape[axis];
    let mut oshape = shape.to_vec();
    oshape[axis] = n_out;
    let mut out = vec![(0.0, 0.0); outer * n_out * inner];
    for o in 0..outer {
        for i in 0..inner {
            let line: Vec<Cx> = (0..n_in)
                .map(|k| {
                    if k < len {
                        x[o * len * inner + k * inner + i]
                    } else {
                        (0.0, 0.0)
                    }
                })
                .collect();
            let y = f(&line);
            assert_eq!(y.len(), n_out);
            for (k, v) in y.into_iter().enumerate() {
                out[o * n_out * inner + k * inner + i] = v;
            }
        }
    }
    (out, oshape)
}

/// Reference c2c over `axes` with sizes `s` (cropped/padded), scaled by `scale`.
fn ref_c2c(
    x: &[Cx],
    shape: &[usize],
    axes: &[usize],
    s: &[usize],
    inverse: bool,
) -> (Vec<Cx>, Vec<usize>) {
    let (mut cur, mut sh) = (x.to_vec(), shape.to_vec());
    for (&ax, &n) in axes.iter().zip(s) {
        let r = along(&cur, &sh, ax, n, n, |l| dft(l, inverse));
        cur = r.0;
        sh = r.1;
    }
    (cur, sh)
}

fn rand_cx(rng: &mut Rng, n: usize) -> Vec<Cx> {
    (0..n).map(|_| (rng.normal(), rng.normal())).collect()
}

fn cx_array(v: &[Cx], shape: &[usize]) -> Array {
    let d: Vec<c64> = v
        .iter()
        .map(|&(r, i)| c64::new(r as f32, i as f32))
        .collect();
    Array::from_slice(&d, shape).unwrap()
}

/// The complex values as f32 would hold them (what the transform actually sees).
fn rounded(v: &[Cx]) -> Vec<Cx> {
    v.iter()
        .map(|&(r, i)| (r as f32 as f64, i as f32 as f64))
        .collect()
}

fn get_cx(a: &Array) -> Vec<Cx> {
    assert_eq!(a.dtype(), DType::C64);
    a.to_vec::<c64>()
        .unwrap()
        .iter()
        .map(|z| (z.re as f64, z.im as f64))
        .collect()
}

/// Compares complex results; the tolerance scales with the largest magnitude of the
/// reference (single-precision FFT error grows like log n relative to the norm).
fn assert_cx(got: &[Cx], want: &[Cx], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let m = want.iter().map(|&(r, i)| r.hypot(i)).fold(1.0, f64::max);
    let atol = 2e-6 * m * (want.len().max(2) as f64).log2().max(1.0);
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g.0 - w.0).abs() <= atol && (g.1 - w.1).abs() <= atol,
            "{what}: element {k}: got {g:?}, want {w:?} (atol {atol})"
        );
    }
}

fn assert_re(got: &[f64], want: &[f64], what: &str) {
    let m = want.iter().map(|v| v.abs()).fold(1.0, f64::max);
    let atol = 2e-6 * m * (want.len().max(2) as f64).log2().max(1.0);
    assert_close(got, want, 0.0, atol, what);
}

const SIZES: [usize; 16] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 16, 17, 31, 60, 97, 128];

#[test]
fn fft_1d_matches_dft_all_sizes() {
    let mut rng = Rng::new(1);
    for &n in &SIZES {
        let x = rounded(&rand_cx(&mut rng, n));
        let a = cx_array(&x, &[n]);
        let y = ingot::fft(&a, None, -1, FftNorm::Backward).unwrap();
        assert_eq!(y.shape(), &[n]);
        assert_cx(&get_cx(&y), &dft(&x, false), &format!("fft n={n}"));
        let y = ingot::ifft(&a, None, 0, FftNorm::Backward).unwrap();
        let want: Vec<Cx> = dft(&x, true)
            .iter()
            .map(|&(r, i)| (r / n as f64, i / n as f64))
            .collect();
        assert_cx(&get_cx(&y), &want, &format!("ifft n={n}"));
    }
}

#[test]
fn fft_norms() {
    let mut rng = Rng::new(2);
    let n = 12;
    let x = rounded(&rand_cx(&mut rng, n));
    let a = cx_array(&x, &[n]);
    let f = dft(&x, false);
    let b = dft(&x, true);
    let sc = |v: &[Cx], s: f64| -> Vec<Cx> { v.iter().map(|&(r, i)| (r * s, i * s)).collect() };
    let nf = n as f64;
    let cases = [
        (FftNorm::Backward, 1.0, 1.0 / nf),
        (FftNorm::Ortho, 1.0 / nf.sqrt(), 1.0 / nf.sqrt()),
        (FftNorm::Forward, 1.0 / nf, 1.0),
    ];
    for (norm, fs, is) in cases {
        let y = ingot::fft(&a, None, 0, norm).unwrap();
        assert_cx(&get_cx(&y), &sc(&f, fs), &format!("fft {norm:?}"));
        let y = ingot::ifft(&a, None, 0, norm).unwrap();
        assert_cx(&get_cx(&y), &sc(&b, is), &format!("ifft {norm:?}"));
        // round trip with matching norms is the identity
        let r = ingot::ifft(&ingot::fft(&a, None, 0, norm).unwrap(), None, 0, norm).unwrap();
        assert_cx(&get_cx(&r), &x, &format!("round trip {norm:?}"));
    }
    assert_eq!(FftNorm::parse("fft", "ortho").unwrap(), FftNorm::Ortho);
    assert_eq!(
        FftNorm::parse("fft", "bogus").unwrap_err().to_string(),
        "[fft] invalid norm 'bogus' (use \"backward\", \"ortho\" or \"forward\")"
    );
}

#[test]
fn fft_crop_and_pad_on_any_axis() {
    let mut rng = Rng::new(3);
    let shape = [4, 6, 5];
    let x = rounded(&rand_cx(&mut rng, 120));
    let a = cx_array(&x, &shape);
    for axis in 0..3 {
        for n in [1, 3, 6, 9, 16] {
            let y = ingot::fft(&a, Some(n), axis as isize - 3, FftNorm::Backward).unwrap();
            let (want, wshape) = ref_c2c(&x, &shape, &[axis], &[n], false);
            assert_eq!(y.shape(), &wshape[..]);
            assert_cx(&get_cx(&y), &want, &format!("fft axis {axis} n {n}"));
        }
    }
}

#[test]
fn fft_noncontiguous_inputs() {
    let mut rng = Rng::new(4);
    let shape = [6, 10];
    let re: Vec<f64> = (0..60).map(|_| rng.normal()).collect();
    let xr: Vec<Cx> = re.iter().map(|&r| (round_to(r, DType::F32), 0.0)).collect();
    // stepped and transposed real views, cast to complex by the op
    for (name, a) in [
        ("stepped", noncontiguous(&re, &shape, DType::F32)),
        ("transposed", transposed(&re, &shape, DType::F32)),
        (
            "reversed",
            ingot::flip(&array_from_f64(&re, &shape, DType::F32), Some(&[1])).unwrap(),
        ),
    ] {
        let src: Vec<Cx> = if name == "reversed" {
            (0..60).map(|i| xr[(i / 10) * 10 + 9 - i % 10]).collect()
        } else {
            xr.clone()
        };
        for axis in 0..2 {
            let y = ingot::fft(&a, None, axis, FftNorm::Backward).unwrap();
            let (want, _) = ref_c2c(
                &src,
                &shape,
                &[axis as usize],
                &[shape[axis as usize]],
                false,
            );
            assert_cx(&get_cx(&y), &want, &format!("{name} axis {axis}"));
        }
        let y = ingot::fft2(&a, None, None, FftNorm::Backward).unwrap();
        let (want, _) = ref_c2c(&src, &shape, &[0, 1], &[6, 10], false);
        assert_cx(&get_cx(&y), &want, &format!("{name} fft2"));
    }
    // a complex transposed view
    let x = rounded(&rand_cx(&mut rng, 35));
    let a = cx_array(&x, &[5, 7]);
    let t = ingot::transpose(&a, None).unwrap();
    let xt: Vec<Cx> = (0..35).map(|i| x[(i % 5) * 7 + i / 5]).collect();
    let y = ingot::fft(&t, None, -1, FftNorm::Backward).unwrap();
    let (want, _) = ref_c2c(&xt, &[7, 5], &[1], &[5], false);
    assert_cx(&get_cx(&y), &want, "complex transposed");
}

#[test]
fn fft_input_dtypes() {
    let mut rng = Rng::new(5);
    for dt in [
        DType::F16,
        DType::BF16,
        DType::F32,
        DType::F64,
        DType::I32,
        DType::U8,
        DType::Bool,
    ] {
        let (a, vals) = rand_array(&mut rng, &[3, 9], dt);
        let x: Vec<Cx> = vals.iter().map(|&v| (v as f32 as f64, 0.0)).collect();
        let y = ingot::fft(&a, None, -1, FftNorm::Backward).unwrap();
        assert_eq!(y.dtype(), DType::C64);
        let (want, _) = ref_c2c(&x, &[3, 9], &[1], &[9], false);
        assert_cx(&get_cx(&y), &want, &format!("fft of {dt}"));
        let y = ingot::rfft(&a, None, -1, FftNorm::Backward).unwrap();
        let want: Vec<Cx> = (0..3)
            .flat_map(|r| dft(&x[r * 9..r * 9 + 9], false)[..5].to_vec())
            .collect();
        assert_cx(&get_cx(&y), &want, &format!("rfft of {dt}"));
    }
}

#[test]
fn fftn_and_fft2_with_s_and_axes() {
    let mut rng = Rng::new(6);
    let shape = [3, 4, 5];
    let x = rounded(&rand_cx(&mut rng, 60));
    let a = cx_array(&x, &shape);
    // (s, axes, resolved axes, resolved s)
    let cases: Vec<(
        Option<Vec<usize>>,
        Option<Vec<isize>>,
        Vec<usize>,
        Vec<usize>,
    )> = vec![
        (None, None, vec![0, 1, 2], vec![3, 4, 5]),
        (Some(vec![6, 2]), None, vec![1, 2], vec![6, 2]),
        (None, Some(vec![0, 2]), vec![0, 2], vec![3, 5]),
        (Some(vec![7, 1]), Some(vec![2, 0]), vec![2, 0], vec![7, 1]),
        (None, Some(vec![]), vec![], vec![]),
    ];
    for (s, axes, rax, rs) in cases {
        for inverse in [false, true] {
            let f = if inverse { ingot::ifftn } else { ingot::fftn };
            let y = f(&a, s.as_deref(), axes.as_deref(), FftNorm::Forward).unwrap();
            let (mut want, wshape) = ref_c2c(&x, &shape, &rax, &rs, inverse);
            if !inverse {
                let t: f64 = rs.iter().product::<usize>() as f64;
                want.iter_mut().for_each(|v| *v = (v.0 / t, v.1 / t));
            }
            assert_eq!(y.shape(), &wshape[..]);
            assert_cx(
                &get_cx(&y),
                &want,
                &format!("fftn s {s:?} axes {axes:?} inverse {inverse}"),
            );
        }
    }
    let y = ingot::fft2(&a, Some(&[2, 8]), None, FftNorm::Backward).unwrap();
    let (want, _) = ref_c2c(&x, &shape, &[1, 2], &[2, 8], false);
    assert_cx(&get_cx(&y), &want, "fft2 s");
    let y = ingot::ifft2(&a, None, Some(&[0, 2]), FftNorm::Ortho).unwrap();
    let (want, _) = ref_c2c(&x, &shape, &[0, 2], &[3, 5], true);
    let want: Vec<Cx> = want
        .iter()
        .map(|v| (v.0 / 15f64.sqrt(), v.1 / 15f64.sqrt()))
        .collect();
    assert_cx(&get_cx(&y), &want, "ifft2 axes ortho");
}

/// Reference rfftn: full complex fftn of the (cropped/padded) real input, last axis halved.
fn ref_rfftn(x: &[f64], shape: &[usize], axes: &[usize], s: &[usize]) -> (Vec<Cx>, Vec<usize>) {
    let xc: Vec<Cx> = x.iter().map(|&v| (v, 0.0)).collect();
    let (full, fshape) = ref_c2c(&xc, shape, axes, s, false);
    let last = *axes.last().unwrap();
    let n = s[s.len() - 1];
    along(&full, &fshape, last, n, n / 2 + 1, |l| {
        l[..n / 2 + 1].to_vec()
    })
}

/// Reference irfft of one line: Hermitian extension of the first n/2+1 bins, inverse DFT,
/// real part (the DC and Nyquist imaginary parts do not contribute).
fn irfft_line(bins: &[Cx], n: usize) -> Vec<Cx> {
    let h = n / 2 + 1;
    let get = |k: usize| if k < bins.len() { bins[k] } else { (0.0, 0.0) };
    let mut full = vec![(0.0, 0.0); n];
    for (k, slot) in full.iter_mut().enumerate() {
        *slot = if k < h {
            get(k)
        } else {
            let (r, i) = get(n - k);
            (r, -i)
        };
    }
    full[0].1 = 0.0;
    if n % 2 == 0 {
        full[n / 2].1 = 0.0;
    }
    dft(&full, true)
        .into_iter()
        .map(|(r, _)| (r, 0.0))
        .collect()
}

#[test]
fn rfft_and_irfft_1d() {
    let mut rng = Rng::new(7);
    for &n in &SIZES {
        let x: Vec<f64> = (0..n).map(|_| round_to(rng.normal(), DType::F32)).collect();
        let a = array_from_f64(&x, &[n], DType::F32);
        let y = ingot::rfft(&a, None, 0, FftNorm::Backward).unwrap();
        let (want, _) = ref_rfftn(&x, &[n], &[0], &[n]);
        assert_eq!(y.shape(), &[n / 2 + 1]);
        assert_cx(&get_cx(&y), &want, &format!("rfft n={n}"));
        // crop and pad
        for m in [1, n.div_ceil(2), n + 3] {
            let y = ingot::rfft(&a, Some(m), 0, FftNorm::Ortho).unwrap();
            let (want, _) = ref_rfftn(&x, &[n], &[0], &[m]);
            let s = 1.0 / (m as f64).sqrt();
            let want: Vec<Cx> = want.iter().map(|v| (v.0 * s, v.1 * s)).collect();
            assert_cx(&get_cx(&y), &want, &format!("rfft n={n} m={m}"));
        }
        // round trip
        let r = ingot::irfft(&y_of(&a, n), Some(n), 0, FftNorm::Backward).unwrap();
        assert_eq!(r.dtype(), DType::F32);
        assert_re(&r.to_f64_vec().unwrap(), &x, &format!("irfft(rfft) n={n}"));
        // irfft of arbitrary bins (non-Hermitian DC/Nyquist imaginary parts are ignored)
        let h = n / 2 + 1;
        let bins = rounded(&rand_cx(&mut rng, h));
        let b = cx_array(&bins, &[h]);
        for m in [n, 2 * h.saturating_sub(1).max(1), n + 2] {
            let r = ingot::irfft(&b, Some(m), 0, FftNorm::Forward).unwrap();
            let want: Vec<f64> = irfft_line(&bins, m).iter().map(|v| v.0).collect();
            assert_eq!(r.shape(), &[m]);
            assert_re(
                &r.to_f64_vec().unwrap(),
                &want,
                &format!("irfft h={h} m={m}"),
            );
        }
    }
    // default n = 2 (m - 1)
    let bins = rounded(&rand_cx(&mut rng, 5));
    let r = ingot::irfft(&cx_array(&bins, &[5]), None, -1, FftNorm::Backward).unwrap();
    assert_eq!(r.shape(), &[8]);
    let want: Vec<f64> = irfft_line(&bins, 8).iter().map(|v| v.0 / 8.0).collect();
    assert_re(&r.to_f64_vec().unwrap(), &want, "irfft default n");
}

fn y_of(a: &Array, n: usize) -> Array {
    ingot::rfft(a, Some(n), 0, FftNorm::Backward).unwrap()
}

#[test]
fn rfftn_and_irfftn() {
    let mut rng = Rng::new(8);
    let shape = [4, 3, 6];
    let x: Vec<f64> = (0..72)
        .map(|_| round_to(rng.normal(), DType::F32))
        .collect();
    for layout in ["contiguous", "stepped", "transposed"] {
        let a = match layout {
            "contiguous" => array_from_f64(&x, &shape, DType::F32),
            "stepped" => noncontiguous(&x, &shape, DType::F32),
            _ => transposed(&x, &shape, DType::F32),
        };
        let cases: Vec<(
            Option<Vec<usize>>,
            Option<Vec<isize>>,
            Vec<usize>,
            Vec<usize>,
        )> = vec![
            (None, None, vec![0, 1, 2], vec![4, 3, 6]),
            (None, Some(vec![2, 0]), vec![2, 0], vec![6, 4]),
            (Some(vec![5, 4]), Some(vec![0, 1]), vec![0, 1], vec![5, 4]),
            (Some(vec![2, 9]), None, vec![1, 2], vec![2, 9]),
            (Some(vec![3, 5]), None, vec![1, 2], vec![3, 5]),
        ];
        for (s, axes, rax, rs) in cases {
            let y = ingot::rfftn(&a, s.as_deref(), axes.as_deref(), FftNorm::Backward).unwrap();
            let (want, wshape) = ref_rfftn(&x, &shape, &rax, &rs);
            assert_eq!(y.shape(), &wshape[..], "{layout} {s:?} {axes:?}");
            assert_cx(
                &get_cx(&y),
                &want,
                &format!("rfftn {layout} s {s:?} axes {axes:?}"),
            );
            // round trip back to the (cropped/padded) input
            let r = ingot::irfftn(
                &y,
                Some(&rs),
                Some(&rax.iter().map(|&v| v as isize).collect::<Vec<_>>()),
                FftNorm::Backward,
            )
            .unwrap();
            let xc: Vec<Cx> = x.iter().map(|&v| (v, 0.0)).collect();
            let mut cur = (xc, shape.to_vec());
            for (&ax, &n) in rax.iter().zip(&rs) {
                cur = along(&cur.0, &cur.1, ax, n, n, |l| l.to_vec());
            }
            let want: Vec<f64> = cur.0.iter().map(|v| v.0).collect();
            assert_eq!(r.shape(), &cur.1[..]);
            assert_re(
                &r.to_f64_vec().unwrap(),
                &want,
                &format!("irfftn(rfftn) {layout} {s:?} {axes:?}"),
            );
        }
    }
    // rfft2/irfft2 default axes, and irfftn with cropped/padded non-last axes
    let a = array_from_f64(&x, &shape, DType::F32);
    let y = ingot::rfft2(&a, None, None, FftNorm::Ortho).unwrap();
    let (want, _) = ref_rfftn(&x, &shape, &[1, 2], &[3, 6]);
    let s = 1.0 / 18f64.sqrt();
    assert_cx(
        &get_cx(&y),
        &want.iter().map(|v| (v.0 * s, v.1 * s)).collect::<Vec<_>>(),
        "rfft2",
    );
    let r = ingot::irfft2(&y, None, None, FftNorm::Ortho).unwrap();
    assert_eq!(r.shape(), &[4, 3, 6]);
    assert_re(&r.to_f64_vec().unwrap(), &x, "irfft2(rfft2) ortho");
    let bins = rounded(&rand_cx(&mut rng, 4 * 3 * 4));
    let b = cx_array(&bins, &[4, 3, 4]);
    let r = ingot::irfftn(&b, Some(&[5, 2, 7]), None, FftNorm::Backward).unwrap();
    let (c, cs) = ref_c2c(&bins, &[4, 3, 4], &[0, 1], &[5, 2], true);
    let (want, _) = along(&c, &cs, 2, 4, 7, |l| irfft_line(l, 7));
    let want: Vec<f64> = want.iter().map(|v| v.0 / 70.0).collect();
    assert_eq!(r.shape(), &[5, 2, 7]);
    assert_re(&r.to_f64_vec().unwrap(), &want, "irfftn s");
}

#[test]
fn batched_and_large_transforms() {
    let mut rng = Rng::new(9);
    // many lines on both axes: exercises the threaded line blocks and the strided write-back
    let shape = [300, 40];
    let x = rounded(&rand_cx(&mut rng, 12000));
    let a = cx_array(&x, &shape);
    for axis in 0..2 {
        let y = ingot::fft(&a, None, axis, FftNorm::Backward).unwrap();
        let (want, _) = ref_c2c(&x, &shape, &[axis as usize], &[shape[axis as usize]], false);
        assert_cx(&get_cx(&y), &want, &format!("batched axis {axis}"));
    }
    // a long line of a size with a large prime factor, round trip, and a few bins vs the DFT
    let n = 3 * 4099;
    let x = rounded(&rand_cx(&mut rng, n));
    let a = cx_array(&x, &[n]);
    let y = ingot::fft(&a, None, 0, FftNorm::Backward).unwrap();
    let got = get_cx(&y);
    for k in [0usize, 1, 777, n - 1] {
        let mut acc = (0.0, 0.0);
        for (j, &(re, im)) in x.iter().enumerate() {
            let t = -2.0 * std::f64::consts::PI * ((j * k) % n) as f64 / n as f64;
            let (s, c) = t.sin_cos();
            acc.0 += re * c - im * s;
            acc.1 += re * s + im * c;
        }
        assert!(
            (got[k].0 - acc.0).abs() < 2e-3 && (got[k].1 - acc.1).abs() < 2e-3,
            "bin {k}"
        );
    }
    let r = ingot::ifft(&y, None, 0, FftNorm::Backward).unwrap();
    assert_cx(&get_cx(&r), &x, "long round trip");
}

#[test]
fn empty_and_degenerate_shapes() {
    let a = ingot::zeros(&[0, 8], DType::F32).unwrap();
    let y = ingot::fft(&a, None, -1, FftNorm::Backward).unwrap();
    assert_eq!(y.shape(), &[0, 8]);
    assert!(get_cx(&y).is_empty());
    let y = ingot::rfft(&a, None, -1, FftNorm::Backward).unwrap();
    assert_eq!(y.shape(), &[0, 5]);
    let y = ingot::irfft(&y, None, -1, FftNorm::Backward).unwrap();
    assert_eq!(y.shape(), &[0, 8]);
    // zero-length lines padded to n
    let a = ingot::zeros(&[3, 0], DType::C64).unwrap();
    let y = ingot::fft(&a, Some(4), 1, FftNorm::Backward).unwrap();
    assert_eq!(y.shape(), &[3, 4]);
    assert!(get_cx(&y).iter().all(|&v| v == (0.0, 0.0)));
    // n = 1 everywhere
    let a = cx_array(&[(2.0, -1.0)], &[1, 1]);
    let y = ingot::fftn(&a, None, None, FftNorm::Backward).unwrap();
    assert_eq!(get_cx(&y), vec![(2.0, -1.0)]);
    // NaN reaches every bin (in the real or the imaginary part: a rotation by i moves it)
    for n in [4, 5, 16] {
        let mut v = vec![1.0; n];
        v[1] = f64::NAN;
        let a = array_from_f64(&v, &[n], DType::F32);
        let y = get_cx(&ingot::fft(&a, None, 0, FftNorm::Backward).unwrap());
        assert!(y.iter().all(|v| v.0.is_nan() || v.1.is_nan()), "{y:?}");
    }
}

#[test]
fn fft_errors() {
    let a = ingot::zeros(&[3, 4], DType::F32).unwrap();
    let s = Array::scalar(1.0f32);
    let e = |r: ingot::Result<Array>| r.unwrap_err().to_string();
    assert_eq!(
        e(ingot::fft(&a, None, 2, FftNorm::Backward)),
        "[fft] axis 2 is out of bounds for an array of dimension 2"
    );
    assert_eq!(
        e(ingot::fft(&s, None, -1, FftNorm::Backward)),
        "[fft] axis -1 is out of bounds for an array of dimension 0"
    );
    assert_eq!(
        e(ingot::ifft(&a, Some(0), 0, FftNorm::Backward)),
        "[ifft] invalid number of data points (0) on axis 0 of shape (3, 4)"
    );
    assert_eq!(
        e(ingot::fft(
            &ingot::zeros(&[2, 0], DType::F32).unwrap(),
            None,
            1,
            FftNorm::Backward
        )),
        "[fft] invalid number of data points (0) on axis 1 of shape (2, 0)"
    );
    let c = ingot::zeros(&[4], DType::C64).unwrap();
    assert_eq!(
        e(ingot::rfft(&c, None, 0, FftNorm::Backward)),
        "[rfft] input must be real, got complex64 of shape (4,)"
    );
    assert_eq!(
        e(ingot::fftn(
            &a,
            Some(&[2, 2]),
            Some(&[0]),
            FftNorm::Backward
        )),
        "[fftn] s [2, 2] and axes [0] have different lengths"
    );
    assert_eq!(
        e(ingot::fftn(&a, Some(&[2, 2, 2]), None, FftNorm::Backward)),
        "[fftn] s has 3 entries for an array of shape (3, 4)"
    );
    assert_eq!(
        e(ingot::fft2(&a, None, Some(&[0, 0]), FftNorm::Backward)),
        "[fft2] repeated axis 0 in [0, 0]"
    );
    assert_eq!(
        e(ingot::irfft(
            &ingot::zeros(&[0], DType::C64).unwrap(),
            None,
            0,
            FftNorm::Backward
        )),
        "[irfft] invalid number of data points (0) on axis 0 of shape (0,)"
    );
    assert_eq!(
        e(ingot::rfftn(&a, None, Some(&[]), FftNorm::Backward)),
        "[rfftn] needs at least one axis"
    );
    assert_eq!(e(ingot::fftfreq(0, 1.0)), "[fftfreq] n must be at least 1");
    assert_eq!(
        e(ingot::rfftfreq(4, 0.0)),
        "[rfftfreq] sample spacing d must be finite and non-zero, got 0"
    );
    assert_eq!(
        e(ingot::fftshift(&a, Some(&[3]))),
        "[fftshift] axis 3 is out of bounds for an array of dimension 2"
    );
}

#[test]
fn shifts_and_frequencies() {
    let mut rng = Rng::new(10);
    for shape in [vec![7], vec![8], vec![3, 4], vec![5, 2, 3], vec![0, 3]] {
        let n: usize = shape.iter().product();
        for dt in [DType::F32, DType::I64, DType::C64] {
            let (a, vals) = rand_array(&mut rng, &shape, dt);
            let nd = shape.len();
            for axes in [None, Some(vec![-1isize]), Some(vec![0])] {
                let ax: Vec<usize> = match &axes {
                    None => (0..nd).collect(),
                    Some(v) => v.iter().map(|&i| (i + nd as isize) as usize % nd).collect(),
                };
                for inverse in [false, true] {
                    let y = if inverse {
                        ingot::ifftshift(&a, axes.as_deref()).unwrap()
                    } else {
                        ingot::fftshift(&a, axes.as_deref()).unwrap()
                    };
                    assert_eq!(y.dtype(), dt);
                    // out[i] = in[(i - shift) mod len] on each shifted axis
                    let strides = ingot::shape::contiguous_strides(&shape);
                    let want: Vec<f64> = (0..n)
                        .map(|i| {
                            let mut src = 0usize;
                            for d in 0..nd {
                                let mut k = (i / strides[d] as usize) % shape[d];
                                if ax.contains(&d) {
                                    let len = shape[d];
                                    let sh = if inverse { len - len / 2 } else { len / 2 };
                                    k = (k + len - sh) % len;
                                }
                                src += k * strides[d] as usize;
                            }
                            vals[src]
                        })
                        .collect();
                    assert_close(
                        &y.to_f64_vec().unwrap(),
                        &want,
                        0.0,
                        0.0,
                        &format!("shift {shape:?} {axes:?} {inverse}"),
                    );
                }
            }
            // ifftshift undoes fftshift
            let r = ingot::ifftshift(&ingot::fftshift(&a, None).unwrap(), None).unwrap();
            assert_close(
                &r.to_f64_vec().unwrap(),
                &vals,
                0.0,
                0.0,
                "shift round trip",
            );
        }
    }
    for n in [1usize, 2, 5, 8] {
        for d in [1.0, 0.25] {
            let f = ingot::fftfreq(n, d).unwrap();
            assert_eq!(f.dtype(), DType::F32);
            let want: Vec<f64> = (0..n)
                .map(|i| {
                    let k = if i < n.div_ceil(2) {
                        i as f64
                    } else {
                        i as f64 - n as f64
                    };
                    round_to(k / (n as f64 * d), DType::F32)
                })
                .collect();
            assert_close(&f.to_f64_vec().unwrap(), &want, 0.0, 0.0, "fftfreq");
            let f = ingot::rfftfreq(n, d).unwrap();
            let want: Vec<f64> = (0..n / 2 + 1)
                .map(|i| round_to(i as f64 / (n as f64 * d), DType::F32))
                .collect();
            assert_close(&f.to_f64_vec().unwrap(), &want, 0.0, 0.0, "rfftfreq");
        }
    }
}
