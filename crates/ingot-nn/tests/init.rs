//! Initializers: shapes, dtypes, sample moments and bounds on large samples, fans in both
//! layouts, gains, orthogonality (and the sign correction), and argument errors.

mod common;

use common::*;
use ingot::{Array, DType};
use ingot_nn::init::{self, FanMode, Layout, Nonlinearity};

fn key(seed: u64) -> Array {
    ingot_nn::rng::key(seed)
}

/// Sample mean and (population) standard deviation.
fn moments(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n;
    (m, var.sqrt())
}

/// Checks mean and std within statistical tolerance: 5 standard errors for the mean, and
/// 3% for the std (its standard error is ~std / sqrt(2n), 0.4% here).
fn check_moments(what: &str, v: &[f64], mean: f64, std: f64) {
    let (m, s) = moments(v);
    let se = std / (v.len() as f64).sqrt();
    assert!(
        (m - mean).abs() <= 5.0 * se + 1e-12,
        "{what}: mean {m}, want {mean} (se {se})"
    );
    assert!((s - std).abs() <= 0.03 * std, "{what}: std {s}, want {std}");
}

fn erf(x: f64) -> f64 {
    if x.abs() > 6.0 {
        return x.signum();
    }
    let (mut term, mut sum) = (x, x);
    for n in 1..400 {
        term *= 2.0 * x * x / (2 * n + 1) as f64;
        sum += term;
        if term.abs() < 1e-17 * sum.abs() {
            break;
        }
    }
    2.0 / std::f64::consts::PI.sqrt() * (-x * x).exp() * sum
}

#[test]
fn fans_in_both_layouts() {
    // PyTorch conv weight (out 8, in 3, 5x5) and ingot's channels-last (8, 5, 5, 3).
    assert_eq!(init::fans(&[8, 3, 5, 5], Layout::Torch).unwrap(), (75, 200));
    assert_eq!(
        init::fans(&[8, 5, 5, 3], Layout::ChannelsLast).unwrap(),
        (75, 200)
    );
    // A linear weight (out, in) is the same in both.
    for l in [Layout::Torch, Layout::ChannelsLast] {
        assert_eq!(init::fans(&[4, 7], l).unwrap(), (7, 4));
    }
    // 1-D conv weights (out, k, in) vs (out, in, k).
    assert_eq!(
        init::fans(&[6, 3, 2], Layout::ChannelsLast).unwrap(),
        (6, 18)
    );
    assert_eq!(init::fans(&[6, 3, 2], Layout::Torch).unwrap(), (6, 12));
    for shape in [&[5usize][..], &[]] {
        let e = init::fans(shape, Layout::Torch).unwrap_err().to_string();
        assert!(
            e.contains("fans") && e.contains(&format!("{shape:?}")),
            "{e}"
        );
    }
}

#[test]
fn gains_match_pytorch() {
    let g = init::calculate_gain;
    assert_eq!(g(Nonlinearity::Linear), 1.0);
    assert_eq!(g(Nonlinearity::Sigmoid), 1.0);
    assert_eq!(g(Nonlinearity::Tanh), 5.0 / 3.0);
    assert_eq!(g(Nonlinearity::Relu), 2f64.sqrt());
    assert_eq!(g(Nonlinearity::Selu), 0.75);
    assert!((g(Nonlinearity::LeakyRelu(0.01)) - (2.0 / 1.0001f64).sqrt()).abs() < 1e-15);
    assert_eq!(g(Nonlinearity::LeakyRelu(0.0)), 2f64.sqrt());
}

#[test]
fn constant_normal_uniform() {
    let c = init::constant(&[2, 3], 0.5, DType::BF16).unwrap();
    assert_eq!((c.shape(), c.dtype()), (&[2, 3][..], DType::BF16));
    assert!(to_f64(&c).iter().all(|&v| v == 0.5));
    let e = init::constant(&[2], 1.0, DType::I32)
        .unwrap_err()
        .to_string();
    assert!(e.contains("init::constant") && e.contains("int32"), "{e}");

    let shape = [200, 200];
    let x = init::normal(&key(1), &shape, 1.5, 0.7, DType::F32).unwrap();
    assert_eq!((x.shape(), x.dtype()), (&shape[..], DType::F32));
    check_moments("normal", &to_f64(&x), 1.5, 0.7);
    let h = init::normal(&key(2), &shape, -2.0, 3.0, DType::F16).unwrap();
    assert_eq!(h.dtype(), DType::F16);
    check_moments("normal f16", &to_f64(&h), -2.0, 3.0);
    // Same key, same draw; another key, another draw.
    let x2 = init::normal(&key(1), &shape, 1.5, 0.7, DType::F32).unwrap();
    assert_eq!(to_f64(&x), to_f64(&x2));
    let x3 = init::normal(&key(3), &shape, 1.5, 0.7, DType::F32).unwrap();
    assert_ne!(to_f64(&x), to_f64(&x3));
    // std 0 is the constant mean; negative or NaN std is an error.
    assert!(
        to_f64(&init::normal(&key(1), &[3], 2.0, 0.0, DType::F64).unwrap())
            .iter()
            .all(|&v| v == 2.0)
    );
    let e = init::normal(&key(1), &[3], 0.0, -1.0, DType::F32)
        .unwrap_err()
        .to_string();
    assert!(e.contains("init::normal") && e.contains("std"), "{e}");
    assert!(init::normal(&key(1), &[3], 0.0, f64::NAN, DType::F32).is_err());
    assert!(init::normal(&key(1), &[3], 0.0, 1.0, DType::U8).is_err());

    let (lo, hi) = (-0.5, 2.5);
    let u = to_f64(&init::uniform(&key(4), &shape, lo, hi, DType::F64).unwrap());
    assert!(u.iter().all(|&v| (lo..hi).contains(&v)));
    check_moments("uniform", &u, 1.0, (hi - lo) / 12f64.sqrt());
    let ub = init::uniform(&key(5), &shape, lo, hi, DType::BF16).unwrap();
    assert_eq!(ub.dtype(), DType::BF16);
    assert!(to_f64(&ub).iter().all(|&v| (lo..hi).contains(&v)));
    assert!(init::uniform(&key(4), &[3], 1.0, 0.0, DType::F32).is_err());
    assert!(init::uniform(&key(4), &[3], 0.0, f64::INFINITY, DType::F32).is_err());
}

#[test]
fn truncated_normal_bounds_and_moments() {
    let (mean, std, a, b) = (1.0, 2.0, -1.0, 2.0);
    let x = init::truncated_normal(&key(6), &[200, 200], mean, std, a, b, DType::F32).unwrap();
    assert_eq!((x.shape(), x.dtype()), (&[200, 200][..], DType::F32));
    let v = to_f64(&x);
    assert!(v.iter().all(|&s| (a..=b).contains(&s)));
    // Moments of the truncated normal.
    let phi = |z: f64| (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt();
    let cdf = |z: f64| 0.5 * (1.0 + erf(z / 2f64.sqrt()));
    let (al, be) = ((a - mean) / std, (b - mean) / std);
    let z = cdf(be) - cdf(al);
    let r = (phi(al) - phi(be)) / z;
    let tm = mean + std * r;
    let tv = std * std * (1.0 + (al * phi(al) - be * phi(be)) / z - r * r);
    check_moments("truncated_normal", &v, tm, tv.sqrt());
    // bf16 keeps its dtype and the bounds.
    let h = init::truncated_normal(&key(7), &[1000], 0.0, 1.0, -2.0, 2.0, DType::BF16).unwrap();
    assert_eq!(h.dtype(), DType::BF16);
    assert!(to_f64(&h).iter().all(|&s| (-2.0..=2.0).contains(&s)));
    for (s, lo, hi) in [
        (0.0, -1.0, 1.0),
        (-1.0, -1.0, 1.0),
        (1.0, 1.0, 1.0),
        (1.0, 2.0, -2.0),
    ] {
        let e = init::truncated_normal(&key(1), &[3], 0.0, s, lo, hi, DType::F32)
            .unwrap_err()
            .to_string();
        assert!(e.contains("init::truncated_normal"), "{e}");
    }
}

#[test]
fn glorot_and_he() {
    // Torch layout (out 64, in 32, 3x3) and the same weight channels-last (64, 3, 3, 32):
    // fan_in 288, fan_out 576.
    let cases = [
        (vec![64usize, 32, 3, 3], Layout::Torch),
        (vec![64, 3, 3, 32], Layout::ChannelsLast),
    ];
    for (shape, layout) in &cases {
        let (fi, fo) = (288.0f64, 576.0f64);
        let gain = 1.7;
        let bound = gain * (6.0 / (fi + fo)).sqrt();
        let w = init::glorot_uniform(&key(8), shape, gain, *layout, DType::F32).unwrap();
        assert_eq!(w.shape(), &shape[..]);
        let v = to_f64(&w);
        assert!(v.iter().all(|x| x.abs() <= bound));
        assert!(v.iter().any(|x| x.abs() > 0.99 * bound));
        check_moments("glorot_uniform", &v, 0.0, bound / 3f64.sqrt());
        let w = init::xavier_normal(&key(9), shape, gain, *layout, DType::F64).unwrap();
        check_moments(
            "glorot_normal",
            &to_f64(&w),
            0.0,
            gain * (2.0 / (fi + fo)).sqrt(),
        );
        for (mode, fan) in [(FanMode::FanIn, fi), (FanMode::FanOut, fo)] {
            let std = 2f64.sqrt() / fan.sqrt();
            let w = init::he_uniform(
                &key(10),
                shape,
                mode,
                Nonlinearity::Relu,
                *layout,
                DType::F32,
            )
            .unwrap();
            let v = to_f64(&w);
            assert!(v.iter().all(|x| x.abs() <= 3f64.sqrt() * std));
            check_moments(&format!("he_uniform {mode:?}"), &v, 0.0, std);
            let g = init::calculate_gain(Nonlinearity::LeakyRelu(0.2));
            let w = init::kaiming_normal(
                &key(11),
                shape,
                mode,
                Nonlinearity::LeakyRelu(0.2),
                *layout,
                DType::BF16,
            )
            .unwrap();
            assert_eq!(w.dtype(), DType::BF16);
            check_moments(
                &format!("he_normal {mode:?}"),
                &to_f64(&w),
                0.0,
                g / fan.sqrt(),
            );
        }
    }
    // The layout matters: the channels-last shape read as Torch has other fans.
    let a = init::glorot_uniform(&key(8), &[64, 3, 3, 32], 1.0, Layout::Torch, DType::F32).unwrap();
    let (_, s) = moments(&to_f64(&a));
    let torch_fans = init::fans(&[64, 3, 3, 32], Layout::Torch).unwrap();
    assert_eq!(torch_fans, (3 * 96, 64 * 96));
    let want = (6.0 / (torch_fans.0 + torch_fans.1) as f64).sqrt() / 3f64.sqrt();
    assert!((s - want).abs() < 0.03 * want);
    // Errors: 1-D shapes (as PyTorch), negative gain, integer dtype.
    let e = init::he_normal(
        &key(1),
        &[10],
        FanMode::FanIn,
        Nonlinearity::Relu,
        Layout::Torch,
        DType::F32,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("init::he_normal") && e.contains("[10]"), "{e}");
    assert!(init::glorot_uniform(&key(1), &[3], 1.0, Layout::Torch, DType::F32).is_err());
    assert!(init::glorot_normal(&key(1), &[3, 3], -1.0, Layout::Torch, DType::F32).is_err());
    assert!(init::he_uniform(
        &key(1),
        &[3, 3],
        FanMode::FanIn,
        Nonlinearity::Relu,
        Layout::Torch,
        DType::I64
    )
    .is_err());
    // A zero-element weight is empty, not an error (fan 0).
    let z = init::he_uniform(
        &key(1),
        &[0, 4],
        FanMode::FanIn,
        Nonlinearity::Relu,
        Layout::Torch,
        DType::F32,
    )
    .unwrap();
    assert_eq!(z.shape(), &[0, 4]);
    assert!(to_f64(&z).is_empty());
}

fn gram(w: &[f64], r: usize, c: usize, rows: bool) -> Vec<f64> {
    // rows: W W^T (r x r); else W^T W (c x c).
    let (n, k) = if rows { (r, c) } else { (c, r) };
    let at = |i: usize, j: usize| if rows { w[i * c + j] } else { w[j * c + i] };
    let mut g = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            g[i * n + j] = (0..k).map(|l| at(i, l) * at(j, l)).sum();
        }
    }
    g
}

fn eye_scaled(n: usize, s: f64) -> Vec<f64> {
    (0..n * n)
        .map(|i| if i / n == i % n { s } else { 0.0 })
        .collect()
}

#[test]
fn orthogonal_is_orthogonal() {
    let gain = 1.5;
    // Tall: W^T W = gain^2 I.
    let w = init::orthogonal(&key(12), &[30, 12], gain, DType::F64).unwrap();
    assert_eq!((w.shape(), w.dtype()), (&[30, 12][..], DType::F64));
    let v = to_f64(&w);
    assert_close(
        &gram(&v, 30, 12, false),
        &eye_scaled(12, gain * gain),
        0.0,
        1e-12,
        "tall",
    );
    // Wide: W W^T = gain^2 I.
    let w = to_f64(&init::orthogonal(&key(13), &[12, 30], gain, DType::F64).unwrap());
    assert_close(
        &gram(&w, 12, 30, true),
        &eye_scaled(12, gain * gain),
        0.0,
        1e-12,
        "wide",
    );
    // A conv weight (8, 3, 2, 2) flattens to (8, 12); f32 and f16 keep their dtype.
    let w = init::orthogonal(&key(14), &[8, 3, 2, 2], 1.0, DType::F32).unwrap();
    assert_eq!((w.shape(), w.dtype()), (&[8, 3, 2, 2][..], DType::F32));
    assert_close(
        &gram(&to_f64(&w), 8, 12, true),
        &eye_scaled(8, 1.0),
        0.0,
        1e-5,
        "conv f32",
    );
    let w = init::orthogonal(&key(15), &[16, 16], 1.0, DType::F16).unwrap();
    assert_eq!(w.dtype(), DType::F16);
    assert_close(
        &gram(&to_f64(&w), 16, 16, true),
        &eye_scaled(16, 1.0),
        0.0,
        3e-3,
        "f16",
    );

    // Sign correction: with A the Gaussian matrix the initializer factors (drawn from the
    // same key), W^T A / gain = R must be upper triangular with a positive diagonal, which
    // makes Q unique and Haar distributed whatever the QR's sign convention.
    let (m, n) = (10, 6);
    let w = to_f64(&init::orthogonal(&key(16), &[m, n], gain, DType::F64).unwrap());
    let a = to_f64(&ingot::random::normal(&key(16), &[m, n], 0.0, 1.0, DType::F64).unwrap());
    for i in 0..n {
        for j in 0..n {
            let rij: f64 = (0..m).map(|l| w[l * n + i] * a[l * n + j]).sum::<f64>() / gain;
            if i > j {
                assert!(rij.abs() < 1e-10, "R[{i},{j}] = {rij}");
            } else if i == j {
                assert!(rij > 0.0, "R[{i},{i}] = {rij}");
            }
        }
    }
    // The raw QR of A has negative diagonal entries, so the correction is exercised.
    let (_, r) = ingot::qr(&Array::from_slice(&a, &[m, n]).unwrap()).unwrap();
    let rv = to_f64(&r);
    assert!((0..n).any(|i| rv[i * n + i] < 0.0), "R diagonal {rv:?}");
    // Over many draws the entries of a 2x2 orthogonal matrix average to 0 and each diagonal
    // entry is positive half of the time (no sign bias).
    let mut pos = 0;
    let draws = 400;
    for s in 0..draws {
        let w = to_f64(&init::orthogonal(&key(1000 + s), &[2, 2], 1.0, DType::F32).unwrap());
        pos += (w[0] > 0.0) as i32 + (w[3] > 0.0) as i32;
    }
    let frac = pos as f64 / (2 * draws) as f64;
    assert!(
        (frac - 0.5).abs() < 0.08,
        "fraction of positive diagonal entries {frac}"
    );

    let e = init::orthogonal(&key(1), &[5], 1.0, DType::F32)
        .unwrap_err()
        .to_string();
    assert!(e.contains("init::orthogonal") && e.contains("[5]"), "{e}");
    assert!(init::orthogonal(&key(1), &[3, 3], -1.0, DType::F32).is_err());
    assert!(init::orthogonal(&key(1), &[3, 3], 1.0, DType::I32).is_err());
}
