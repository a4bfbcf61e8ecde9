//! Losses against plain f64 references, under every reduction; cross entropy's options
//! (probability targets, label smoothing, ignore_index, class weights); dtypes, strided
//! inputs, errors, and gradients against central differences.

mod common;

use common::*;
use ingot::{Array, DType, Result};
use ingot_nn::losses::{self as L, CrossEntropy, Reduction};

const REDS: [Reduction; 3] = [Reduction::None, Reduction::Mean, Reduction::Sum];

fn arr(v: &[f64], shape: &[usize]) -> Array {
    Array::from_slice(v, shape).unwrap()
}

/// Checks `f(reduction)` against per-element references `per` of `shape` for every
/// reduction (plain mean and sum of the elements).
fn check_reductions(
    what: &str,
    f: &dyn Fn(Reduction) -> Result<Array>,
    per: &[f64],
    shape: &[usize],
    rtol: f64,
    atol: f64,
) {
    for red in REDS {
        let y = f(red).unwrap_or_else(|e| panic!("{what} {red:?}: {e}"));
        match red {
            Reduction::None => {
                assert_eq!(y.shape(), shape, "{what}: shape");
                assert_close(&to_f64(&y), per, rtol, atol, &format!("{what} None"));
            }
            Reduction::Mean => {
                assert_eq!(y.shape(), &[] as &[usize]);
                let m = per.iter().sum::<f64>() / per.len() as f64;
                assert_close(&to_f64(&y), &[m], rtol, atol, &format!("{what} Mean"));
            }
            Reduction::Sum => {
                let s = per.iter().sum::<f64>();
                assert_close(&to_f64(&y), &[s], rtol, atol, &format!("{what} Sum"));
            }
        }
    }
}

fn log_softmax(row: &[f64]) -> Vec<f64> {
    let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let lse = m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
    row.iter().map(|v| v - lse).collect()
}

fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// PyTorch's cross entropy with index targets, in f64: per-element losses and the mean's
/// denominator.
fn ce_index_ref(
    logits: &[f64],
    c: usize,
    targets: &[i64],
    weight: Option<&[f64]>,
    s: f64,
    ignore: Option<i64>,
) -> (Vec<f64>, f64) {
    let mut per = vec![];
    let mut den = 0.0;
    for (i, &t) in targets.iter().enumerate() {
        if Some(t) == ignore {
            per.push(0.0);
            continue;
        }
        let lp = log_softmax(&logits[i * c..(i + 1) * c]);
        let w = |k: usize| weight.map_or(1.0, |w| w[k]);
        let nll = -w(t as usize) * lp[t as usize];
        let smooth: f64 = (0..c).map(|k| -w(k) * lp[k]).sum();
        per.push((1.0 - s) * nll + s / c as f64 * smooth);
        den += w(t as usize);
    }
    (per, den)
}

#[test]
fn cross_entropy_hand_computed() {
    // Two equal logits: loss ln 2; logits (ln 1, ln 3) with target 1: -ln(3/4).
    let x = arr(&[0.0, 0.0, 0.0, 3f64.ln()], &[2, 2]);
    let t = Array::from_slice(&[0i64, 1], &[2]).unwrap();
    let opts = CrossEntropy {
        reduction: Reduction::None,
        ..Default::default()
    };
    let y = L::cross_entropy(&x, &t, &opts).unwrap();
    assert_close(&to_f64(&y), &[2f64.ln(), -(0.75f64).ln()], 1e-12, 0.0, "ce");
    // Weights (1, 3), mean = (1 ln2 + 3 (-ln .75)) / (1 + 3).
    let opts = CrossEntropy {
        weight: Some(arr(&[1.0, 3.0], &[2])),
        ..Default::default()
    };
    let y = L::cross_entropy(&x, &t, &opts).unwrap();
    let want = (2f64.ln() - 3.0 * 0.75f64.ln()) / 4.0;
    assert_close(&to_f64(&y), &[want], 1e-12, 0.0, "weighted mean");
}

#[test]
fn cross_entropy_index_targets_all_options() {
    let mut rng = Rng::new(1);
    let (b0, b1, c) = (3, 4, 5);
    let n = b0 * b1;
    let logits = rng.normals(n * c, 3.0);
    let mut targets: Vec<i64> = (0..n).map(|_| rng.below(c as u64) as i64).collect();
    targets[1] = 2;
    targets[5] = 2;
    let weight = [0.5, 2.0, 1.5, 0.25, 1.0];
    let configs: Vec<(f64, Option<i64>, bool)> = vec![
        (0.0, None, false),
        (0.1, None, false),
        (0.0, Some(2), false),
        (0.0, None, true),
        (0.2, Some(2), true),
    ];
    for (s, ignore, weighted) in configs {
        let w = weighted.then_some(&weight[..]);
        let (per, den) = ce_index_ref(&logits, c, &targets, w, s, ignore);
        for red in REDS {
            for dtype in [DType::F64, DType::F32, DType::BF16] {
                let x = array_from_f64(&logits, &[b0, b1, c], dtype);
                let held = to_f64(&x);
                let (per_h, den_h) = ce_index_ref(&held, c, &targets, w, s, ignore);
                let _ = (&per, den);
                let t = Array::from_slice(&targets, &[b0, b1]).unwrap();
                let opts = CrossEntropy {
                    label_smoothing: s,
                    ignore_index: ignore,
                    weight: w.map(|w| arr(w, &[c])),
                    reduction: red,
                };
                let y = L::cross_entropy(&x, &t, &opts).unwrap();
                assert_eq!(y.dtype(), dtype);
                let want = match red {
                    Reduction::None => per_h.clone(),
                    Reduction::Mean => vec![per_h.iter().sum::<f64>() / den_h],
                    Reduction::Sum => vec![per_h.iter().sum::<f64>()],
                };
                let rt = match dtype {
                    DType::F64 => 1e-12,
                    DType::F32 => 1e-5,
                    _ => 1e-2,
                };
                assert_close(
                    &to_f64(&y),
                    &want,
                    rt,
                    rt,
                    &format!("ce s={s} ignore={ignore:?} w={weighted} {red:?} {dtype}"),
                );
            }
        }
    }
    // int32 targets and an out-of-range ignore value (PyTorch's -100) work too.
    let mut t2: Vec<i32> = targets.iter().map(|&t| t as i32).collect();
    t2[0] = -100;
    let x = arr(&logits, &[n, c]);
    let opts = CrossEntropy {
        ignore_index: Some(-100),
        ..Default::default()
    };
    let y = L::cross_entropy(&x, &Array::from_slice(&t2, &[n]).unwrap(), &opts).unwrap();
    let t64: Vec<i64> = t2.iter().map(|&t| t as i64).collect();
    let (per, den) = ce_index_ref(&logits, c, &t64, None, 0.0, Some(-100));
    assert_close(
        &to_f64(&y),
        &[per.iter().sum::<f64>() / den],
        1e-12,
        0.0,
        "ignore -100",
    );
}

#[test]
fn cross_entropy_probability_targets() {
    let mut rng = Rng::new(2);
    let (n, c) = (6, 4);
    let logits = rng.normals(n * c, 2.0);
    let mut probs = vec![];
    for _ in 0..n {
        let r: Vec<f64> = (0..c).map(|_| rng.uniform()).collect();
        let s: f64 = r.iter().sum();
        probs.extend(r.iter().map(|v| v / s));
    }
    let weight = [1.0, 0.5, 2.0, 3.0];
    for (s, weighted) in [(0.0, false), (0.15, false), (0.0, true), (0.3, true)] {
        let per: Vec<f64> = (0..n)
            .map(|i| {
                let lp = log_softmax(&logits[i * c..(i + 1) * c]);
                (0..c)
                    .map(|k| {
                        let t = (1.0 - s) * probs[i * c + k] + s / c as f64;
                        -t * lp[k] * if weighted { weight[k] } else { 1.0 }
                    })
                    .sum()
            })
            .collect();
        let x = transposed_2d(&logits, &[n, c], DType::F64);
        let t = arr(&probs, &[n, c]);
        check_reductions(
            &format!("ce probs s={s} w={weighted}"),
            &|red| {
                L::cross_entropy(
                    &x,
                    &t,
                    &CrossEntropy {
                        label_smoothing: s,
                        weight: weighted.then(|| arr(&weight, &[c])),
                        reduction: red,
                        ..Default::default()
                    },
                )
            },
            &per,
            &[n],
            1e-12,
            1e-12,
        );
    }
    // One-hot probabilities equal index targets.
    let idx: Vec<i64> = (0..n).map(|i| (i % c) as i64).collect();
    let onehot: Vec<f64> = (0..n * c)
        .map(|j| {
            if (j % c) as i64 == idx[j / c] {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    let x = arr(&logits, &[n, c]);
    let opts = CrossEntropy {
        label_smoothing: 0.1,
        ..Default::default()
    };
    let a = L::cross_entropy(&x, &arr(&onehot, &[n, c]), &opts).unwrap();
    let b = L::cross_entropy(&x, &Array::from_slice(&idx, &[n]).unwrap(), &opts).unwrap();
    assert_close(&to_f64(&a), &to_f64(&b), 1e-12, 0.0, "one-hot vs index");
}

#[test]
fn cross_entropy_errors() {
    let x = arr(&[0.0; 12], &[3, 4]);
    let err = |t: &Array, o: &CrossEntropy| L::cross_entropy(&x, t, o).unwrap_err().to_string();
    let d = CrossEntropy::default();
    // Float targets of the index shape: probabilities of the wrong shape.
    let e = err(&arr(&[0.0, 1.0, 2.0], &[3]), &d);
    assert!(
        e.contains("cross_entropy") && e.contains("[3, 4]") && e.contains("[3]"),
        "{e}"
    );
    assert!(e.contains("integers"), "{e}");
    // Index targets of the wrong batch shape.
    let e = err(&Array::from_slice(&[0i64, 1], &[2]).unwrap(), &d);
    assert!(e.contains("[2]") && e.contains("[3, 4]"), "{e}");
    // Bool targets are neither.
    let b = ingot::astype(&arr(&[1.0, 0.0, 1.0], &[3]), DType::Bool).unwrap();
    assert!(err(&b, &d).contains("bool"));
    // ignore_index with probabilities, bad smoothing, bad weights, integer logits.
    let p = arr(&[0.25; 12], &[3, 4]);
    let o = CrossEntropy {
        ignore_index: Some(0),
        ..Default::default()
    };
    assert!(err(&p, &o).contains("ignore_index"));
    let t = Array::from_slice(&[0i64, 1, 2], &[3]).unwrap();
    let o = CrossEntropy {
        label_smoothing: 1.5,
        ..Default::default()
    };
    assert!(err(&t, &o).contains("label_smoothing"));
    let o = CrossEntropy {
        weight: Some(arr(&[1.0; 3], &[3])),
        ..Default::default()
    };
    assert!(err(&t, &o).contains("weight"));
    let xi = Array::from_slice(&[0i32; 12], &[3, 4]).unwrap();
    assert!(L::cross_entropy(&xi, &t, &d).is_err());
    // A class index out of range fails when evaluated, not with a panic.
    let bad = Array::from_slice(&[0i64, 9, 1], &[3]).unwrap();
    let r = L::cross_entropy(&x, &bad, &d).and_then(|y| y.to_f64_vec());
    assert!(r.is_err());
    let neg = Array::from_slice(&[0i64, -1, 1], &[3]).unwrap();
    let r = L::cross_entropy(&x, &neg, &d).and_then(|y| y.to_f64_vec());
    assert!(r.is_err(), "negative targets do not wrap around");
}

#[test]
fn nll_loss_matches_reference() {
    let mut rng = Rng::new(3);
    let (n, c) = (7, 3);
    let logits = rng.normals(n * c, 2.0);
    let lp: Vec<f64> = (0..n)
        .flat_map(|i| log_softmax(&logits[i * c..(i + 1) * c]))
        .collect();
    let t: Vec<i64> = (0..n).map(|i| (i % c) as i64).collect();
    let w = [0.2, 1.0, 3.0];
    let x = arr(&lp, &[n, c]);
    let ta = Array::from_slice(&t, &[n]).unwrap();
    let (per, den) = ce_index_ref(&logits, c, &t, Some(&w), 0.0, Some(1));
    let wa = arr(&w, &[c]);
    for red in REDS {
        let y = L::nll_loss(&x, &ta, Some(&wa), Some(1), red).unwrap();
        let want = match red {
            Reduction::None => per.clone(),
            Reduction::Mean => vec![per.iter().sum::<f64>() / den],
            Reduction::Sum => vec![per.iter().sum()],
        };
        assert_close(&to_f64(&y), &want, 1e-12, 1e-12, &format!("nll {red:?}"));
    }
    let e = L::nll_loss(&x, &arr(&[0.0; 7], &[7]), None, None, Reduction::Mean)
        .unwrap_err()
        .to_string();
    assert!(e.contains("nll_loss") && e.contains("float64"), "{e}");
}

#[test]
fn binary_cross_entropy_values() {
    let mut rng = Rng::new(4);
    let n = 12;
    let mut p: Vec<f64> = (0..n).map(|_| rng.range(0.01, 0.99)).collect();
    let mut t: Vec<f64> = (0..n).map(|_| rng.uniform()).collect();
    // Exact 0 and 1 probabilities: each log clamps at -100.
    p[0] = 0.0;
    t[0] = 1.0;
    p[1] = 1.0;
    t[1] = 0.0;
    p[2] = 0.0;
    t[2] = 0.0;
    let w: Vec<f64> = (0..n).map(|_| rng.range(0.5, 2.0)).collect();
    let per: Vec<f64> = (0..n)
        .map(|i| {
            let lp = p[i].ln().max(-100.0);
            let lq = (1.0 - p[i]).ln().max(-100.0);
            -w[i] * (t[i] * lp + (1.0 - t[i]) * lq)
        })
        .collect();
    assert_eq!(per[0], 100.0 * w[0]);
    assert_eq!(per[2], 0.0);
    let (pa, ta, wa) = (arr(&p, &[3, 4]), arr(&t, &[3, 4]), arr(&w, &[3, 4]));
    check_reductions(
        "bce",
        &|r| L::binary_cross_entropy(&pa, &ta, Some(&wa), r),
        &per,
        &[3, 4],
        1e-12,
        1e-12,
    );
    // f32, NaN kept.
    let mut pn = p.clone();
    pn[5] = f64::NAN;
    let y = L::binary_cross_entropy(
        &array_from_f64(&pn, &[12], DType::F32),
        &array_from_f64(&t, &[12], DType::F32),
        None,
        Reduction::None,
    )
    .unwrap();
    assert_eq!(y.dtype(), DType::F32);
    let yv = to_f64(&y);
    assert!(
        yv[5].is_nan()
            && yv[0] == 100.0
            && yv.iter().enumerate().all(|(i, v)| i == 5 || v.is_finite())
    );
    // Gradient: finite differences inside (0, 1); finite at exact 0 and 1.
    let tt = arr(&t, &[3, 4]);
    let inner: Vec<f64> = p.iter().map(|v| v.clamp(0.05, 0.95)).collect();
    let t2 = tt.clone();
    check_grad(
        "bce dp",
        move |x| L::binary_cross_entropy(x, &t2, None, Reduction::Sum),
        &inner,
        &[3, 4],
    );
    let g = ingot::grad(
        move |a: &[Array]| L::binary_cross_entropy(&a[0], &tt, None, Reduction::Sum),
        &[0],
    );
    let gv = to_f64(&g(&[pa]).unwrap()[0]);
    assert!(gv.iter().all(|v| v.is_finite()), "{gv:?}");
}

#[test]
fn binary_cross_entropy_with_logits_values() {
    let mut rng = Rng::new(5);
    let (n, c) = (4, 3);
    let mut x = rng.normals(n * c, 4.0);
    x[0] = 100.0;
    x[1] = -100.0;
    x[2] = 800.0;
    let t: Vec<f64> = (0..n * c).map(|_| rng.uniform()).collect();
    let pw = [0.5, 2.0, 3.0];
    let w: Vec<f64> = (0..n * c).map(|_| rng.range(0.5, 2.0)).collect();
    let per: Vec<f64> = (0..n * c)
        .map(|i| {
            let coef = 1.0 + (pw[i % c] - 1.0) * t[i];
            w[i] * ((1.0 - t[i]) * x[i] + coef * softplus(-x[i]))
        })
        .collect();
    assert!(per.iter().all(|v| v.is_finite()));
    let (xa, ta, wa, pwa) = (
        arr(&x, &[n, c]),
        arr(&t, &[n, c]),
        arr(&w, &[n, c]),
        arr(&pw, &[c]),
    );
    check_reductions(
        "bce_with_logits",
        &|r| L::binary_cross_entropy_with_logits(&xa, &ta, Some(&wa), Some(&pwa), r),
        &per,
        &[n, c],
        1e-12,
        1e-12,
    );
    // A weight that does not broadcast is named in the error.
    let e = L::binary_cross_entropy_with_logits(
        &xa,
        &ta,
        None,
        Some(&arr(&[1.0, 2.0], &[2])),
        Reduction::Mean,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("binary_cross_entropy_with_logits")
            && e.contains("pos_weight")
            && e.contains("[2]"),
        "{e}"
    );
    // Without weights, in f16: dtype kept, values close.
    let x16 = array_from_f64(&x[3..], &[9], DType::F16);
    let t16 = array_from_f64(&t[3..], &[9], DType::F16);
    let (xh, th) = (to_f64(&x16), to_f64(&t16));
    let y = L::binary_cross_entropy_with_logits(&x16, &t16, None, None, Reduction::None).unwrap();
    assert_eq!(y.dtype(), DType::F16);
    let want: Vec<f64> = (0..9)
        .map(|i| (1.0 - th[i]) * xh[i] + softplus(-xh[i]))
        .collect();
    assert_close(&to_f64(&y), &want, 2e-3, 1e-3, "bce_with_logits f16");
    // Gradient: sigmoid(x) (1 + (pw-1) t) - pw t style, by finite differences.
    let xs: Vec<f64> = x.iter().map(|v| v.clamp(-6.0, 6.0)).collect();
    check_grad(
        "bce_with_logits dx",
        move |x| {
            L::binary_cross_entropy_with_logits(x, &ta, Some(&wa), Some(&pwa), Reduction::Mean)
        },
        &xs,
        &[n, c],
    );
}

#[test]
fn regression_losses() {
    let mut rng = Rng::new(6);
    let shape = [3, 5];
    let n = 15;
    let a = rng.normals(n, 3.0);
    let mut b = rng.normals(n, 3.0);
    b[0] = a[0] + 0.3; // inside beta / delta
    b[1] = a[1] - 1000.0; // far outside; log cosh must not overflow
    let d: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x - y).collect();
    let xa = arr(&a, &shape);
    let ya = arr(&b, &shape);
    // Strided input of the same values.
    let xt = transposed_2d(&a, &shape, DType::F64);

    let per: Vec<f64> = d.iter().map(|v| v * v).collect();
    check_reductions(
        "mse",
        &|r| L::mse_loss(&xt, &ya, r),
        &per,
        &shape,
        1e-12,
        1e-12,
    );
    let per: Vec<f64> = d.iter().map(|v| v.abs()).collect();
    check_reductions(
        "l1",
        &|r| L::l1_loss(&xa, &ya, r),
        &per,
        &shape,
        1e-12,
        1e-12,
    );
    let beta = 0.7;
    let per: Vec<f64> = d
        .iter()
        .map(|v| {
            if v.abs() < beta {
                0.5 * v * v / beta
            } else {
                v.abs() - 0.5 * beta
            }
        })
        .collect();
    check_reductions(
        "smooth_l1",
        &|r| L::smooth_l1_loss(&xa, &ya, beta, r),
        &per,
        &shape,
        1e-12,
        1e-12,
    );
    let per: Vec<f64> = d.iter().map(|v| v.abs()).collect();
    check_reductions(
        "smooth_l1 beta 0",
        &|r| L::smooth_l1_loss(&xa, &ya, 0.0, r),
        &per,
        &shape,
        1e-12,
        1e-12,
    );
    let delta = 1.3;
    let per: Vec<f64> = d
        .iter()
        .map(|v| {
            if v.abs() <= delta {
                0.5 * v * v
            } else {
                delta * (v.abs() - 0.5 * delta)
            }
        })
        .collect();
    check_reductions(
        "huber",
        &|r| L::huber_loss(&xa, &ya, delta, r),
        &per,
        &shape,
        1e-12,
        1e-12,
    );
    // log cosh in f64 by the identity |d| + log1p(e^{-2|d|}) - ln 2.
    let per: Vec<f64> = d
        .iter()
        .map(|v| v.abs() + (-2.0 * v.abs()).exp().ln_1p() - 2f64.ln())
        .collect();
    assert!((per[1] - (1000.0 - 2f64.ln())).abs() < 1e-9);
    check_reductions(
        "log_cosh",
        &|r| L::log_cosh_loss(&xa, &ya, r),
        &per,
        &shape,
        1e-12,
        1e-12,
    );
    // f16 and bf16 keep their dtype.
    for dt in [DType::F16, DType::BF16] {
        // Without the outlier, whose square is past f16's range.
        let x = array_from_f64(&a[2..], &[13], dt);
        let y = array_from_f64(&b[2..], &[13], dt);
        let l = L::mse_loss(&x, &y, Reduction::Mean).unwrap();
        assert_eq!(l.dtype(), dt);
        let (xh, yh) = (to_f64(&x), to_f64(&y));
        let m: f64 = xh
            .iter()
            .zip(&yh)
            .map(|(p, q)| (p - q) * (p - q))
            .sum::<f64>()
            / 13.0;
        assert_close(&to_f64(&l), &[m], 1e-2, 0.0, &format!("mse {dt}"));
    }
    // Errors: shapes, dtypes, parameters.
    let e = L::mse_loss(&xa, &arr(&b[..5], &[5]), Reduction::Mean)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("mse_loss") && e.contains("[3, 5]") && e.contains("[5]"),
        "{e}"
    );
    let xi = Array::from_slice(&[1i32, 2], &[2]).unwrap();
    let e = L::l1_loss(&xi, &xi, Reduction::Mean)
        .unwrap_err()
        .to_string();
    assert!(e.contains("l1_loss") && e.contains("int32"), "{e}");
    assert!(L::huber_loss(&xa, &ya, 0.0, Reduction::Mean).is_err());
    assert!(L::smooth_l1_loss(&xa, &ya, -1.0, Reduction::Mean).is_err());

    // Gradients by central differences (away from the kinks).
    let dsafe: Vec<f64> = a.iter().map(|v| v.clamp(-4.0, 4.0)).collect();
    for (name, f) in [
        (
            "mse",
            (|x: &Array, y: &Array| L::mse_loss(x, y, Reduction::Mean))
                as fn(&Array, &Array) -> Result<Array>,
        ),
        ("huber", |x, y| L::huber_loss(x, y, 1.3, Reduction::Sum)),
        ("smooth_l1", |x, y| {
            L::smooth_l1_loss(x, y, 0.7, Reduction::Sum)
        }),
        ("log_cosh", |x, y| L::log_cosh_loss(x, y, Reduction::Mean)),
    ] {
        let y = arr(
            &b.iter()
                .map(|v| v.clamp(-4.0, 4.0) + 0.013)
                .collect::<Vec<_>>(),
            &shape,
        );
        check_grad(name, move |x| f(x, &y), &dsafe, &shape);
    }
}

#[test]
fn gaussian_nll_and_kl_div() {
    let mut rng = Rng::new(7);
    let (n, c) = (4, 3);
    let x = rng.normals(n * c, 2.0);
    let t = rng.normals(n * c, 2.0);
    let mut var: Vec<f64> = (0..n * c).map(|_| rng.range(0.1, 3.0)).collect();
    var[0] = 1e-9; // clamped to eps
    let eps = 1e-6;
    let half_log_2pi = 0.5 * (2.0 * std::f64::consts::PI).ln();
    let per_full = |var: &dyn Fn(usize) -> f64, full: bool| -> Vec<f64> {
        (0..n * c)
            .map(|i| {
                let v = var(i).max(eps);
                0.5 * (v.ln() + (x[i] - t[i]).powi(2) / v) + if full { half_log_2pi } else { 0.0 }
            })
            .collect()
    };
    let (xa, ta) = (arr(&x, &[n, c]), arr(&t, &[n, c]));
    let va = arr(&var, &[n, c]);
    for full in [false, true] {
        check_reductions(
            &format!("gaussian_nll full={full}"),
            &|r| L::gaussian_nll_loss(&xa, &ta, &va, full, eps, r),
            &per_full(&|i| var[i], full),
            &[n, c],
            1e-12,
            1e-12,
        );
    }
    // One variance per row: (n,) or (n, 1).
    let rowv: Vec<f64> = (0..n).map(|i| 0.5 + i as f64).collect();
    let want = per_full(&|i| rowv[i / c], false);
    for vshape in [vec![n], vec![n, 1]] {
        let v = arr(&rowv, &vshape);
        let y = L::gaussian_nll_loss(&xa, &ta, &v, false, eps, Reduction::None).unwrap();
        assert_close(&to_f64(&y), &want, 1e-12, 1e-12, &format!("var {vshape:?}"));
    }
    let e = L::gaussian_nll_loss(
        &xa,
        &ta,
        &arr(&rowv[..2], &[2]),
        false,
        eps,
        Reduction::Mean,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("gaussian_nll_loss") && e.contains("[2]") && e.contains("[4, 3]"),
        "{e}"
    );
    // The gradient with respect to var passes through the clamp: d/dv at v = 1e-9 uses eps.
    let g = ingot::grad(
        move |a: &[Array]| L::gaussian_nll_loss(&a[0], &ta, &a[1], false, eps, Reduction::Sum),
        &[0, 1],
    );
    let gs = g(&[xa.clone(), va.clone()]).unwrap();
    let gv = to_f64(&gs[1]);
    let gx = to_f64(&gs[0]);
    for i in 0..n * c {
        let v = var[i].max(eps);
        let d = x[i] - t[i];
        let want_v = 0.5 * (1.0 / v - d * d / (v * v));
        assert!(
            (gv[i] - want_v).abs() <= 1e-9 * want_v.abs().max(1.0),
            "dvar {i}"
        );
        assert!(
            (gx[i] - d / v).abs() <= 1e-9 * (d / v).abs().max(1.0),
            "dx {i}"
        );
    }

    // KL divergence: target probabilities with a zero, input log-probabilities.
    let lp: Vec<f64> = (0..n)
        .flat_map(|i| log_softmax(&x[i * c..(i + 1) * c]))
        .collect();
    let mut tp: Vec<f64> = (0..n * c).map(|_| rng.uniform()).collect();
    tp[4] = 0.0;
    let per: Vec<f64> = (0..n * c)
        .map(|i| {
            if tp[i] == 0.0 {
                0.0
            } else {
                tp[i] * (tp[i].ln() - lp[i])
            }
        })
        .collect();
    let (la, tpa) = (arr(&lp, &[n, c]), arr(&tp, &[n, c]));
    check_reductions(
        "kl_div",
        &|r| L::kl_div(&la, &tpa, false, r),
        &per,
        &[n, c],
        1e-12,
        1e-12,
    );
    let tlog: Vec<f64> = tp.iter().map(|v| (v + 0.1).ln()).collect();
    let per: Vec<f64> = (0..n * c)
        .map(|i| tlog[i].exp() * (tlog[i] - lp[i]))
        .collect();
    let tla = arr(&tlog, &[n, c]);
    check_reductions(
        "kl_div log_target",
        &|r| L::kl_div(&la, &tla, true, r),
        &per,
        &[n, c],
        1e-12,
        1e-12,
    );
    check_grad(
        "kl_div d input",
        move |x| L::kl_div(x, &tpa, false, Reduction::Sum),
        &lp,
        &[n, c],
    );
}

fn cos_ref(a: &[f64], b: &[f64], eps: f64) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(p, q)| p * q).sum();
    let na = a.iter().map(|v| v * v).sum::<f64>().sqrt().max(eps);
    let nb = b.iter().map(|v| v * v).sum::<f64>().sqrt().max(eps);
    dot / (na * nb)
}

#[test]
fn similarity_and_margin_losses() {
    let mut rng = Rng::new(8);
    let (n, d) = (5, 4);
    let x1 = rng.normals(n * d, 2.0);
    let mut x2 = rng.normals(n * d, 2.0);
    for v in &mut x2[..d] {
        *v = 0.0; // a zero vector: the norm clamps at eps
    }
    let (a1, a2) = (arr(&x1, &[n, d]), arr(&x2, &[n, d]));
    let cos: Vec<f64> = (0..n)
        .map(|i| cos_ref(&x1[i * d..(i + 1) * d], &x2[i * d..(i + 1) * d], 1e-8))
        .collect();
    let y = L::cosine_similarity(&a1, &a2, -1, 1e-8).unwrap();
    assert_close(&to_f64(&y), &cos, 1e-12, 1e-12, "cosine_similarity");
    // Along axis 0 with broadcasting (x2 a single column).
    let col: Vec<f64> = (0..n).map(|i| x2[d + i]).collect();
    let y0 = L::cosine_similarity(&a1, &arr(&col, &[n, 1]), 0, 1e-8).unwrap();
    let want0: Vec<f64> = (0..d)
        .map(|j| {
            let c1: Vec<f64> = (0..n).map(|i| x1[i * d + j]).collect();
            cos_ref(&c1, &col, 1e-8)
        })
        .collect();
    assert_close(&to_f64(&y0), &want0, 1e-12, 1e-12, "cosine axis 0");
    let per: Vec<f64> = cos.iter().map(|c| 1.0 - c).collect();
    check_reductions(
        "cosine_similarity_loss",
        &|r| L::cosine_similarity_loss(&a1, &a2, -1, 1e-8, r),
        &per,
        &[n],
        1e-12,
        1e-12,
    );
    let lab = [1.0, -1.0, 1.0, -1.0, -1.0];
    let margin = 0.1;
    let per: Vec<f64> = (0..n)
        .map(|i| {
            if lab[i] == 1.0 {
                1.0 - cos[i]
            } else {
                (cos[i] - margin).max(0.0)
            }
        })
        .collect();
    let la = arr(&lab, &[n]);
    check_reductions(
        "cosine_embedding_loss",
        &|r| L::cosine_embedding_loss(&a1, &a2, &la, margin, r),
        &per,
        &[n],
        1e-12,
        1e-12,
    );
    assert!(L::cosine_similarity(&a1, &a2, 2, 1e-8).is_err());
    assert!(L::cosine_similarity(&a1, &arr(&x2[..3], &[3]), -1, 1e-8).is_err());
    // The gradient is finite at the zero vector and matches finite differences elsewhere.
    let b2 = a2.clone();
    let g = ingot::grad(
        move |a: &[Array]| ingot::sum(&L::cosine_similarity(&a[0], &a[1], -1, 1e-8)?, None, false),
        &[0, 1],
    );
    assert!(to_f64(&g(&[a1.clone(), b2]).unwrap()[1])
        .iter()
        .all(|v| v.is_finite()));
    let a1c = a1.clone();
    check_grad(
        "cosine d x2",
        move |x| ingot::sum(&L::cosine_similarity(&a1c, x, -1, 1e-8)?, None, false),
        &rng.normals(n * d, 1.0),
        &[n, d],
    );

    // Triplet margin loss, p = 2 and p = 1, with PyTorch's eps inside the norm.
    let neg = rng.normals(n * d, 2.0);
    let an = arr(&neg, &[n, d]);
    for p in [2.0, 1.0] {
        let dist = |u: &[f64], v: &[f64]| -> f64 {
            u.iter()
                .zip(v)
                .map(|(a, b)| (a - b + 1e-6).abs().powf(p))
                .sum::<f64>()
                .powf(1.0 / p)
        };
        let per: Vec<f64> = (0..n)
            .map(|i| {
                let r = i * d..(i + 1) * d;
                (dist(&x1[r.clone()], &x2[r.clone()]) - dist(&x1[r.clone()], &neg[r]) + 1.0)
                    .max(0.0)
            })
            .collect();
        assert!(per.iter().any(|&v| v > 0.0));
        check_reductions(
            &format!("triplet p={p}"),
            &|r| L::triplet_margin_loss(&a1, &a2, &an, 1.0, p, r),
            &per,
            &[n],
            1e-12,
            1e-12,
        );
    }
    assert!(L::triplet_margin_loss(&a1, &a2, &an, 1.0, 0.0, Reduction::Mean).is_err());
    assert!(
        L::triplet_margin_loss(&a1, &arr(&x2[..4], &[1, 4]), &an, 1.0, 2.0, Reduction::Mean)
            .is_err()
    );
    let (b2, bn) = (a2.clone(), an.clone());
    check_grad(
        "triplet d anchor",
        move |x| L::triplet_margin_loss(x, &b2, &bn, 1.0, 2.0, Reduction::Sum),
        &x1,
        &[n, d],
    );

    // Hinge embedding (PyTorch), hinge (MLX) and margin ranking.
    let m = 1.5;
    let xs = rng.normals(n * d, 2.0);
    let ys: Vec<f64> = (0..n * d)
        .map(|i| if i % 3 == 0 { 1.0 } else { -1.0 })
        .collect();
    let (xa, ya) = (arr(&xs, &[n, d]), arr(&ys, &[n, d]));
    let per: Vec<f64> = (0..n * d)
        .map(|i| {
            if ys[i] == 1.0 {
                xs[i]
            } else {
                (m - xs[i]).max(0.0)
            }
        })
        .collect();
    check_reductions(
        "hinge_embedding",
        &|r| L::hinge_embedding_loss(&xa, &ya, m, r),
        &per,
        &[n, d],
        1e-12,
        1e-12,
    );
    let per: Vec<f64> = (0..n * d).map(|i| (1.0 - xs[i] * ys[i]).max(0.0)).collect();
    check_reductions(
        "hinge",
        &|r| L::hinge_loss(&xa, &ya, r),
        &per,
        &[n, d],
        1e-12,
        1e-12,
    );
    let per: Vec<f64> = (0..n * d)
        .map(|i| (-ys[i] * (xs[i] - x1[i]) + 0.2).max(0.0))
        .collect();
    check_reductions(
        "margin_ranking",
        &|r| L::margin_ranking_loss(&xa, &a1, &ya, 0.2, r),
        &per,
        &[n, d],
        1e-12,
        1e-12,
    );
    assert!(L::margin_ranking_loss(&xa, &a1, &arr(&[1.0], &[1]), 0.2, Reduction::Mean).is_err());
}

#[test]
fn cross_entropy_gradient() {
    let mut rng = Rng::new(9);
    let (n, c) = (4, 5);
    let logits = rng.normals(n * c, 2.0);
    let t = Array::from_slice(&[0i64, 3, 4, 3], &[n]).unwrap();
    let opts = CrossEntropy {
        label_smoothing: 0.1,
        ignore_index: Some(4),
        weight: Some(arr(&[1.0, 0.5, 2.0, 1.5, 3.0], &[c])),
        reduction: Reduction::Mean,
    };
    let o = opts.clone();
    check_grad(
        "cross_entropy d logits",
        move |x| L::cross_entropy(x, &t, &o),
        &logits,
        &[n, c],
    );
    // The ignored row gets no gradient.
    let t = Array::from_slice(&[0i64, 3, 4, 3], &[n]).unwrap();
    let g = ingot::grad(move |a: &[Array]| L::cross_entropy(&a[0], &t, &opts), &[0]);
    let gv = to_f64(&g(&[arr(&logits, &[n, c])]).unwrap()[0]);
    assert!(gv[2 * c..3 * c].iter().all(|&v| v == 0.0), "{gv:?}");
    assert!(gv[..c].iter().any(|&v| v != 0.0));
    // Probability targets.
    let p: Vec<f64> = (0..n * c).map(|_| rng.uniform() / c as f64).collect();
    let pa = arr(&p, &[n, c]);
    check_grad(
        "cross_entropy probs d logits",
        move |x| {
            L::cross_entropy(
                x,
                &pa,
                &CrossEntropy {
                    label_smoothing: 0.2,
                    ..Default::default()
                },
            )
        },
        &logits,
        &[n, c],
    );
}
