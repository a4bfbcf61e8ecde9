mod common;
use common::*;

// Gradients of convolution, pooling, FFT and grid_sample against finite differences.
// Convolution, pooling and grid_sample run in f64 through `check_grad`; the FFT computes
// in complex64, so its (linear) maps are checked with `check_linear` at f32 tolerance.

use ingot::op::{GridPadding, InterpMode};
use ingot::{Array, FftNorm, Padding, Result, Scalar};

macro_rules! cases {
    ($($name:expr, $shapes:expr, $dom:expr, |$a:ident| $body:expr;)*) => {
        vec![$(($name, Box::new(|$a: &[Array]| -> Result<Array> { $body }) as F, $shapes, $dom)),*]
    };
}

const ANY: (f64, f64) = (-2.0, 2.0);

fn run(cases: Vec<(&str, F, &[&[usize]], (f64, f64))>, seed: u64) {
    for (i, (name, f, shapes, dom)) in cases.iter().enumerate() {
        check_grad(name, f, shapes, *dom, seed + i as u64);
    }
}

#[test]
fn conv1d_matches_finite_differences() {
    let cases: Vec<(&str, F, &[&[usize]], (f64, f64))> = cases! {
        "conv1d plain", &[&[2, 7, 3], &[4, 3, 3]], ANY,
            |a| ingot::conv1d(&a[0], &a[1], 1, 0, 1, 1);
        "conv1d stride 2, padding (2, 1), dilation 2", &[&[2, 9, 2], &[3, 3, 2]], ANY,
            |a| ingot::conv1d(&a[0], &a[1], 2, (2, 1), 2, 1);
        "conv1d groups 3, uneven stride", &[&[2, 10, 6], &[6, 3, 2]], ANY,
            |a| ingot::conv1d(&a[0], &a[1], 3, (0, 1), 1, 3);
        "conv1d padding wider than the kernel", &[&[1, 4, 2], &[3, 2, 2]], ANY,
            |a| ingot::conv1d(&a[0], &a[1], 2, (4, 5), 1, 1);
        "conv1d stride skips rows", &[&[1, 11, 2], &[2, 2, 2]], ANY,
            |a| ingot::conv1d(&a[0], &a[1], 4, 0, 1, 1);
        "conv1d reads only padding", &[&[1, 2, 1], &[1, 1, 1]], ANY,
            |a| ingot::conv1d(&a[0], &a[1], 5, (3, 0), 1, 1);
        "conv1d same padding", &[&[2, 8, 3], &[2, 4, 3]], ANY,
            |a| ingot::conv1d(&a[0], &a[1], 3, Padding::Same, 1, 1);
        "conv_general input dilation and flip", &[&[2, 5, 2], &[3, 3, 2]], ANY,
            |a| ingot::conv_general(&a[0], &a[1], &[2], (1, 3), &[2], &[3], 1, true);
        "conv_general flip, groups 2", &[&[1, 8, 4], &[4, 3, 2]], ANY,
            |a| ingot::conv_general(&a[0], &a[1], &[1], (0, 2), &[1], &[1], 2, true);
        "conv_transpose1d", &[&[2, 5, 3], &[2, 3, 3]], ANY,
            |a| ingot::conv_transpose1d(&a[0], &a[1], 2, 1, 1, 1, 1);
        "conv_transpose1d crop, dilation, groups", &[&[1, 6, 4], &[4, 2, 2]], ANY,
            |a| ingot::conv_transpose1d(&a[0], &a[1], 3, 4, 2, 0, 2);
    };
    run(cases, 1000);
}

#[test]
fn conv2d_3d_match_finite_differences() {
    let cases: Vec<(&str, F, &[&[usize]], (f64, f64))> = cases! {
        "conv2d plain", &[&[2, 5, 4, 3], &[2, 3, 2, 3]], ANY,
            |a| ingot::conv2d(&a[0], &a[1], &[1], 0, &[1], 1);
        "conv2d stride, asymmetric padding, dilation, groups", &[&[2, 7, 8, 4], &[6, 2, 3, 2]], ANY,
            |a| ingot::conv2d(&a[0], &a[1], &[2, 3], [(1, 0), (0, 2)], &[1, 2], 2);
        "conv2d depthwise", &[&[1, 6, 5, 3], &[3, 3, 3, 1]], ANY,
            |a| ingot::conv2d(&a[0], &a[1], &[2, 1], 1, &[1], 3);
        "conv_general 2-D input dilation, flip", &[&[1, 4, 3, 2], &[3, 2, 3, 2]], ANY,
            |a| ingot::conv_general(&a[0], &a[1], &[2, 1], [(2, 1), (0, 3)], &[1, 2], &[2, 3], 1, true);
        "conv_transpose2d", &[&[1, 3, 4, 4], &[4, 3, 2, 2]], ANY,
            |a| ingot::conv_transpose2d(&a[0], &a[1], &[2, 1], 1, &[1, 2], &[1, 0], 2);
        "conv3d", &[&[1, 4, 3, 4, 2], &[2, 2, 2, 3, 2]], ANY,
            |a| ingot::conv3d(&a[0], &a[1], &[1, 2, 1], [(1, 0), (0, 0), (1, 1)], &[1], 1);
    };
    run(cases, 1100);
}

#[test]
fn conv_second_derivatives() {
    // The gradient of a conv is made of convs again: differentiate it once more.
    let cases: Vec<(&str, F, &[&[usize]], (f64, f64))> = cases! {
        "d/dx of sum(conv1d^2)", &[&[1, 7, 2], &[3, 3, 2]], ANY, |a| {
            let f = |b: &[Array]| -> Result<Array> {
                let y = ingot::conv1d(&b[0], &b[1], 2, (1, 2), 2, 1)?;
                ingot::sum(&ingot::square(&y)?, None, false)
            };
            Ok(ingot::grad(f, &[0])(a)?.remove(0))
        };
        "d/dw of sum(sin(conv_transpose2d))", &[&[1, 3, 3, 2], &[2, 2, 3, 2]], ANY, |a| {
            let f = |b: &[Array]| -> Result<Array> {
                let y = ingot::conv_transpose2d(&b[0], &b[1], &[2], 1, &[1], &[1], 1)?;
                ingot::sum(&ingot::sin(&y)?, None, false)
            };
            Ok(ingot::grad(f, &[1])(a)?.remove(0))
        };
    };
    run(cases, 1200);
}

#[test]
fn pooling_matches_finite_differences() {
    let cases: Vec<(&str, F, &[&[usize]], (f64, f64))> = cases! {
        "max_pool1d", &[&[2, 9, 3]], ANY, |a| ingot::max_pool1d(&a[0], 3, Some(2), 1);
        "max_pool1d default stride", &[&[2, 8, 2]], ANY, |a| ingot::max_pool1d(&a[0], 3, None, 0);
        "max_pool2d", &[&[2, 7, 6, 2]], ANY,
            |a| ingot::max_pool2d(&a[0], &[3, 2], Some(&[2, 1]), &[1, 0]);
        "max_pool2d overlapping", &[&[1, 5, 5, 3]], ANY,
            |a| ingot::max_pool2d(&a[0], &[3], Some(&[1]), &[1]);
        "max_pool3d", &[&[1, 4, 4, 5, 2]], ANY,
            |a| ingot::max_pool3d(&a[0], &[2], Some(&[2, 1, 2]), &[1, 0, 1]);
        "avg_pool1d count pad", &[&[2, 9, 3]], ANY,
            |a| ingot::avg_pool1d(&a[0], 3, Some(2), 1, true);
        "avg_pool1d no count pad", &[&[2, 9, 3]], ANY,
            |a| ingot::avg_pool1d(&a[0], 3, Some(2), 1, false);
        "avg_pool2d count pad", &[&[2, 7, 6, 2]], ANY,
            |a| ingot::avg_pool2d(&a[0], &[3, 2], Some(&[2, 1]), &[1, 1], true);
        "avg_pool2d no count pad, uneven", &[&[1, 8, 7, 3]], ANY,
            |a| ingot::avg_pool2d(&a[0], &[4, 3], Some(&[3, 2]), &[2, 1], false);
        "avg_pool3d", &[&[1, 4, 5, 4, 2]], ANY,
            |a| ingot::avg_pool3d(&a[0], &[2, 3, 2], None, &[1, 1, 0], false);
    };
    run(cases, 1300);
}

#[test]
fn pooling_and_grid_sample_second_derivatives() {
    let cases: Vec<(&str, F, &[&[usize]], (f64, f64))> = cases! {
        "d/dx of sum(max_pool2d^2)", &[&[1, 5, 4, 2]], ANY, |a| {
            let f = |b: &[Array]| -> Result<Array> {
                let y = ingot::max_pool2d(&b[0], &[3, 2], Some(&[2, 1]), &[1, 0])?;
                ingot::sum(&ingot::square(&y)?, None, false)
            };
            Ok(ingot::grad(f, &[0])(a)?.remove(0))
        };
        "d/dx of sum(sin(avg_pool1d))", &[&[2, 7, 2]], ANY, |a| {
            let f = |b: &[Array]| -> Result<Array> {
                let y = ingot::avg_pool1d(&b[0], 3, Some(2), 1, false)?;
                ingot::sum(&ingot::sin(&y)?, None, false)
            };
            Ok(ingot::grad(f, &[0])(a)?.remove(0))
        };
        "d/dgrid of sum(grid_sample^2)", &[&[1, 3, 4, 2], &[1, 2, 3, 2]], (-1.1, 1.1), |a| {
            let f = |b: &[Array]| -> Result<Array> {
                let y = ingot::grid_sample(
                    &b[0], &b[1], InterpMode::Bilinear, GridPadding::Reflection, false)?;
                ingot::sum(&ingot::square(&y)?, None, false)
            };
            Ok(ingot::grad(f, &[1])(a)?.remove(0))
        };
        "d/dx of sum(sin(grid_sample))", &[&[1, 3, 4, 2], &[1, 2, 3, 2]], (-1.1, 1.1), |a| {
            let f = |b: &[Array]| -> Result<Array> {
                let y = ingot::grid_sample(
                    &b[0], &b[1], InterpMode::Bilinear, GridPadding::Zeros, true)?;
                ingot::sum(&ingot::sin(&y)?, None, false)
            };
            Ok(ingot::grad(f, &[0])(a)?.remove(0))
        };
    };
    run(cases, 1350);
}

#[test]
fn max_pool_ties_go_to_the_first_cell() {
    let x = Array::from_vec(vec![0.0f64; 5], &[1, 5, 1]).unwrap();
    let f = |a: &[Array]| ingot::sum(&ingot::max_pool1d(&a[0], 2, Some(1), 0)?, None, false);
    let g = ingot::grad(f, &[0])(std::slice::from_ref(&x)).unwrap();
    assert_eq!(g[0].to_f64_vec().unwrap(), vec![1.0, 1.0, 1.0, 1.0, 0.0]);
    // Padding never takes the gradient, even when it equals the maximum.
    let x = Array::from_vec(vec![0.0f64; 3], &[1, 3, 1]).unwrap();
    let f = |a: &[Array]| ingot::sum(&ingot::max_pool1d(&a[0], 3, Some(1), 1)?, None, false);
    let g = ingot::grad(f, &[0])(std::slice::from_ref(&x)).unwrap();
    assert_eq!(g[0].to_f64_vec().unwrap(), vec![2.0, 1.0, 0.0]);
}

// ---- FFT ------------------------------------------------------------------------------------

/// Checks a linear map f (f32 precision inside) on random points: for linear f the
/// directional derivative along v is f(v) itself, which must match ⟨vjp(u), v⟩ and
/// ⟨u, jvp(v)⟩ to single-precision accuracy.
fn check_linear(name: &str, f: &F, shapes: &[&[usize]], seed: u64) {
    let mut rng = Rng::new(seed);
    let mut rand = |s: &[usize]| {
        let n: usize = s.iter().product();
        Array::from_vec((0..n).map(|_| rng.normal()).collect::<Vec<f64>>(), s).unwrap()
    };
    let xs: Vec<Array> = shapes.iter().map(|s| rand(s)).collect();
    let vs: Vec<Array> = shapes.iter().map(|s| rand(s)).collect();
    let y = f(&xs).unwrap_or_else(|e| panic!("{name}: {e}"));
    let u = rand(y.shape());
    let fv = f(&vs).unwrap();
    let want = dot(&u, &fv);
    let scale: f64 = u
        .to_f64_vec()
        .unwrap()
        .iter()
        .zip(fv.to_f64_vec().unwrap())
        .map(|(a, b)| (a * b).abs())
        .sum::<f64>()
        .max(1.0);
    let (_, gs) = ingot::vjp(|a| Ok(vec![f(a)?]), &xs, std::slice::from_ref(&u))
        .unwrap_or_else(|e| panic!("{name} vjp: {e}"));
    for (g, x) in gs.iter().zip(&xs) {
        assert_eq!(g.shape(), x.shape(), "{name}: gradient shape");
    }
    let rev: f64 = gs.iter().zip(&vs).map(|(g, v)| dot(g, v)).sum();
    let (_, jv) =
        ingot::jvp(|a| Ok(vec![f(a)?]), &xs, &vs).unwrap_or_else(|e| panic!("{name} jvp: {e}"));
    let fwd = dot(&u, &jv[0]);
    assert!(
        (rev - want).abs() <= 1e-5 * scale,
        "{name}: vjp gives {rev}, ⟨u, f(v)⟩ = {want} (scale {scale})"
    );
    assert!(
        (fwd - want).abs() <= 1e-5 * scale,
        "{name}: jvp gives {fwd}, ⟨u, f(v)⟩ = {want} (scale {scale})"
    );
}

/// a + i b
fn cplx(a: &Array, b: &Array) -> Result<Array> {
    let i = Array::weak_scalar(Scalar::Complex(0.0, 1.0));
    ingot::add(
        &ingot::astype(a, ingot::DType::C64)?,
        &ingot::multiply(&ingot::astype(b, ingot::DType::C64)?, i)?,
    )
}

/// Real and imaginary parts stacked on a new first axis.
fn parts(y: &Array) -> Result<Array> {
    ingot::stack(&[ingot::real(y)?, ingot::imag(y)?], 0)
}

type FftFn = fn(&Array, Option<usize>, isize, FftNorm) -> Result<Array>;
type FftNFn = fn(&Array, Option<&[usize]>, Option<&[isize]>, FftNorm) -> Result<Array>;

#[test]
fn complex_fft_is_its_own_transpose() {
    use FftNorm::*;
    let one: [(&str, FftFn); 2] = [("fft", ingot::fft), ("ifft", ingot::ifft)];
    let mut seed = 1400;
    for (name, op) in one {
        for (n, axis, norm) in [
            (None, -1, Backward),
            (Some(5), -1, Backward),
            (Some(11), -1, Ortho),
            (None, 0, Forward),
            (Some(2), 0, Ortho),
            (Some(7), 0, Backward),
        ] {
            let f: F = Box::new(move |a| parts(&op(&cplx(&a[0], &a[1])?, n, axis, norm)?));
            let label = format!("{name} n={n:?} axis={axis} {norm:?}");
            check_linear(&label, &f, &[&[4, 8], &[4, 8]], seed);
            seed += 1;
        }
    }
    let many: [(&str, FftNFn); 4] = [
        ("fft2", ingot::fft2),
        ("ifft2", ingot::ifft2),
        ("fftn", ingot::fftn),
        ("ifftn", ingot::ifftn),
    ];
    for (name, op) in many {
        for (s, axes, norm) in [
            (None, None, Backward),
            (Some(&[3usize, 10][..]), None, Ortho),
            (Some(&[6, 2][..]), Some(&[0isize, 2][..]), Forward),
        ] {
            let f: F = Box::new(move |a| parts(&op(&cplx(&a[0], &a[1])?, s, axes, norm)?));
            let label = format!("{name} s={s:?} axes={axes:?} {norm:?}");
            check_linear(&label, &f, &[&[4, 3, 8], &[4, 3, 8]], seed);
            seed += 1;
        }
    }
}

#[test]
fn real_fft_gradients() {
    use FftNorm::*;
    let mut seed = 1500;
    for (n, axis, norm) in [
        (None, -1, Backward),
        (Some(7), -1, Backward),
        (Some(5), -1, Ortho),
        (Some(12), -1, Forward),
        (None, 0, Ortho),
        (Some(4), 0, Backward),
    ] {
        let f: F = Box::new(move |a| parts(&ingot::rfft(&a[0], n, axis, norm)?));
        let label = format!("rfft n={n:?} axis={axis} {norm:?}");
        check_linear(&label, &f, &[&[5, 8]], seed);
        let f: F = Box::new(move |a| parts(&ingot::rfft(&a[0], n, axis, norm)?));
        check_linear(&(label + " odd"), &f, &[&[7, 9]], seed + 50);
        seed += 1;
    }
    let many: [(&str, FftNFn); 2] = [("rfft2", ingot::rfft2), ("rfftn", ingot::rfftn)];
    for (name, op) in many {
        for (s, axes, norm) in [
            (None, None, Backward),
            (Some(&[3usize, 10][..]), None, Ortho),
            (Some(&[5, 4][..]), Some(&[0isize, 2][..]), Forward),
            (Some(&[2, 7][..]), Some(&[2isize, 0][..]), Backward),
        ] {
            let f: F = Box::new(move |a| parts(&op(&a[0], s, axes, norm)?));
            let label = format!("{name} s={s:?} axes={axes:?} {norm:?}");
            check_linear(&label, &f, &[&[4, 3, 6]], seed);
            seed += 1;
        }
    }
}

#[test]
fn inverse_real_fft_gradients() {
    use FftNorm::*;
    let mut seed = 1600;
    // 5 bins: n defaults to 8; 9 uses all 5; 7 reads 4 (crop); 12 reads 7 (zero-padded).
    for (n, axis, norm) in [
        (None, -1, Backward),
        (Some(9), -1, Ortho),
        (Some(7), -1, Forward),
        (Some(12), -1, Backward),
        (Some(1), -1, Backward),
        (Some(2), -1, Ortho),
        (None, 0, Backward),
        (Some(5), 0, Ortho),
    ] {
        let f: F = Box::new(move |a| ingot::irfft(&cplx(&a[0], &a[1])?, n, axis, norm));
        let label = format!("irfft n={n:?} axis={axis} {norm:?}");
        check_linear(&label, &f, &[&[4, 5], &[4, 5]], seed);
        seed += 1;
    }
    let many: [(&str, FftNFn); 2] = [("irfft2", ingot::irfft2), ("irfftn", ingot::irfftn)];
    for (name, op) in many {
        for (s, axes, norm) in [
            (None, None, Backward),
            (Some(&[6usize, 7][..]), None, Ortho),
            (Some(&[3, 10][..]), None, Forward),
            (Some(&[5, 4][..]), Some(&[0isize, 2][..]), Backward),
            (Some(&[2, 3][..]), Some(&[2isize, 0][..]), Ortho),
        ] {
            let f: F = Box::new(move |a| op(&cplx(&a[0], &a[1])?, s, axes, norm));
            let label = format!("{name} s={s:?} axes={axes:?} {norm:?}");
            check_linear(&label, &f, &[&[4, 3, 5], &[4, 3, 5]], seed);
            seed += 1;
        }
    }
}

#[test]
fn fft_round_trip_gradient() {
    // irfft(rfft(x)) = x: the gradient of <u, irfft(rfft(x))> is u.
    let f: F = Box::new(|a| {
        let y = ingot::rfft(&a[0], None, -1, FftNorm::Ortho)?;
        ingot::irfft(&y, Some(9), -1, FftNorm::Ortho)
    });
    check_linear("irfft(rfft(x))", &f, &[&[3, 9]], 1700);
}

// ---- grid_sample ----------------------------------------------------------------------------

#[test]
fn grid_sample_matches_finite_differences() {
    let mut seed = 1800;
    for mode in [InterpMode::Bilinear, InterpMode::Nearest] {
        for padding in [
            GridPadding::Zeros,
            GridPadding::Border,
            GridPadding::Reflection,
        ] {
            for align in [false, true] {
                // Points a little outside [-1, 1] exercise each padding mode; random points
                // land on a cell edge or a rounding boundary with negligible probability.
                for scale in [1.0, 2.7] {
                    let f: F = Box::new(move |a| {
                        let g = ingot::multiply(&a[1], scale)?;
                        ingot::grid_sample(&a[0], &g, mode, padding, align)
                    });
                    let name =
                        format!("grid_sample {mode:?} {padding:?} align={align} scale={scale}");
                    check_grad(
                        &name,
                        &f,
                        &[&[2, 4, 5, 3], &[2, 3, 4, 2]],
                        (-1.15, 1.15),
                        seed,
                    );
                    seed += 1;
                }
            }
        }
    }
    // One-pixel axes (reflection over a zero span when aligned).
    for padding in [
        GridPadding::Zeros,
        GridPadding::Border,
        GridPadding::Reflection,
    ] {
        for align in [false, true] {
            let f: F = Box::new(move |a| {
                ingot::grid_sample(&a[0], &a[1], InterpMode::Bilinear, padding, align)
            });
            let name = format!("grid_sample 1-pixel {padding:?} align={align}");
            check_grad(
                &name,
                &f,
                &[&[1, 1, 3, 2], &[1, 2, 2, 2]],
                (-1.15, 1.15),
                seed,
            );
            seed += 1;
        }
    }
}

#[test]
fn grid_sample_nearest_has_no_grid_gradient() {
    let x = Array::from_vec((0..12).map(|v| v as f64).collect::<Vec<_>>(), &[1, 3, 4, 1]).unwrap();
    let g = Array::from_vec(vec![0.1f64, -0.3, 0.6, 0.2], &[1, 1, 2, 2]).unwrap();
    let f = |a: &[Array]| {
        let y = ingot::grid_sample(&a[0], &a[1], InterpMode::Nearest, GridPadding::Zeros, false)?;
        ingot::sum(&y, None, false)
    };
    let gs = ingot::grad(f, &[0, 1])(&[x, g]).unwrap();
    assert!(gs[1].to_f64_vec().unwrap().iter().all(|&v| v == 0.0));
    assert_eq!(gs[0].to_f64_vec().unwrap().iter().sum::<f64>(), 2.0);
}

#[test]
fn gradients_keep_low_precision_dtypes() {
    use ingot::DType;
    for dt in [DType::F32, DType::F16] {
        let x = ingot::astype(
            &Array::from_vec(vec![0.5f64; 2 * 6 * 5 * 4], &[2, 6, 5, 4]).unwrap(),
            dt,
        )
        .unwrap();
        let w = ingot::astype(
            &Array::from_vec(vec![0.25f64; 4 * 3 * 2 * 2], &[4, 3, 2, 2]).unwrap(),
            dt,
        )
        .unwrap();
        let grid = ingot::astype(
            &Array::from_vec(vec![0.3f64; 2 * 2 * 3 * 2], &[2, 2, 3, 2]).unwrap(),
            dt,
        )
        .unwrap();
        let f = |a: &[Array]| -> Result<Array> {
            let y = ingot::conv2d(&a[0], &a[1], &[2, 1], 1, &[1], 2)?;
            let p = ingot::max_pool2d(&y, &[2], Some(&[1]), &[1])?;
            let q = ingot::avg_pool2d(&a[0], &[2], None, &[1], false)?;
            let s = ingot::grid_sample(
                &a[0],
                &a[2],
                InterpMode::Bilinear,
                GridPadding::Border,
                true,
            )?;
            let r = ingot::sum(&p, None, false)?;
            let r = ingot::add(&r, &ingot::sum(&q, None, false)?)?;
            ingot::add(&r, &ingot::sum(&s, None, false)?)
        };
        let gs = ingot::grad(f, &[0, 1, 2])(&[x.clone(), w.clone(), grid.clone()]).unwrap();
        for (g, a) in gs.iter().zip([&x, &w, &grid]) {
            assert_eq!(g.dtype(), dt);
            assert_eq!(g.shape(), a.shape());
            assert!(g.to_f64_vec().unwrap().iter().all(|v| v.is_finite()));
        }
    }
}
