//! `ingot::fast::linear`, `act(x @ w + bias)` as one node: against a plain f64 loop in
//! every float dtype and activation, strided operands, empty and non-finite inputs,
//! gradients (the node's against its decomposition's, and the decomposition's against
//! finite differences), vmap, compile, export and import, and bad calls. With
//! `INGOT_TEST_DEVICE=cuda` the same checks run the cuBLASLt epilogues.

mod common;
use common::*;
use ingot::fast::{linear, linear_reference, LinearAct};
use ingot::{Array, DType, Result};

const ACTS: [LinearAct; 3] = [LinearAct::None, LinearAct::Relu, LinearAct::GeluTanh];

fn act_f64(z: f64, act: LinearAct) -> f64 {
    match act {
        LinearAct::None => z,
        LinearAct::Relu => z.max(0.0),
        LinearAct::GeluTanh => {
            let c = (2.0 / std::f64::consts::PI).sqrt();
            0.5 * z * (1.0 + (c * (z + 0.044715 * z * z * z)).tanh())
        }
    }
}

/// x `(m, k)`, w `(k, n)` row-major.
fn naive(x: &[f64], w: &[f64], b: Option<&[f64]>, k: usize, n: usize, act: LinearAct) -> Vec<f64> {
    let m = x.len().checked_div(k).unwrap_or(0);
    let mut out = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            let z: f64 = (0..k).map(|l| x[i * k + l] * w[l * n + j]).sum();
            out[i * n + j] = act_f64(z + b.map_or(0.0, |b| b[j]), act);
        }
    }
    out
}

fn vals(a: &Array) -> Vec<f64> {
    a.to_f64_vec().unwrap()
}

/// Tolerance of a k-term sum rounded to `dt` (half dtypes round the sum once or twice).
fn tols(dt: DType) -> (f64, f64) {
    match dt {
        DType::F16 => (4e-3, 4e-3),
        DType::BF16 => (2e-2, 2e-2),
        DType::F32 => (1e-5, 1e-5),
        _ => (1e-12, 1e-12),
    }
}

#[test]
fn matches_a_plain_loop_in_every_float_dtype() {
    let mut rng = Rng::new(1);
    let (k, n) = (24, 40);
    for dt in [DType::F32, DType::F16, DType::BF16, DType::F64] {
        let (x, xv) = rand_array(&mut rng, &[2, 3, k], dt);
        let (w, wv) = rand_array(&mut rng, &[k, n], dt);
        let (b, bv) = rand_array(&mut rng, &[n], dt);
        for act in ACTS {
            for bias in [false, true] {
                let y = linear(&x, &w, bias.then_some(&b), act).unwrap();
                assert_eq!(y.shape(), &[2, 3, n]);
                assert_eq!(y.dtype(), dt);
                let want = naive(&xv, &wv, bias.then_some(&bv[..]), k, n, act);
                let (rtol, atol) = tols(dt);
                // The activations see sums of ~k terms of size ~4: scale atol with them.
                assert_close(
                    &vals(&y),
                    &want,
                    rtol,
                    atol * 8.0,
                    &format!("{dt} {act:?} bias {bias}"),
                );
                let r = linear_reference(&x, &w, bias.then_some(&b), act).unwrap();
                assert_close(
                    &vals(&y),
                    &vals(&r),
                    rtol * 2.0,
                    atol * 16.0,
                    &format!("{dt} {act:?} reference"),
                );
            }
        }
    }
}

#[test]
fn strided_operands_give_the_contiguous_results() {
    let mut rng = Rng::new(2);
    let (m, k, n) = (5, 12, 9);
    for dt in [DType::F32, DType::BF16] {
        let (_, xv) = rand_array(&mut rng, &[m, k], dt);
        let (_, wv) = rand_array(&mut rng, &[k, n], dt);
        let (_, bv) = rand_array(&mut rng, &[n], dt);
        let x = array_from_f64(&xv, &[m, k], dt);
        let w = array_from_f64(&wv, &[k, n], dt);
        let b = array_from_f64(&bv, &[n], dt);
        // x every other element, w a transposed (n, k) weight (a layer's), the bias stepped.
        let xs = noncontiguous(&xv, &[m, k], dt);
        let wt = transposed(&wv, &[k, n], dt);
        let bs = noncontiguous(&bv, &[n], dt);
        // The CPU reads any layout with the same kernel, so the bits agree; on a GPU the
        // layout picks the kernel (a transposed weight of few rows goes to the
        // matrix-vector kernel, cuBLASLt plans differ by layout), so they agree to rounding.
        let cuda = matches!(ingot::default_device(), ingot::Device::Cuda(_));
        let t = if cuda { tol(dt) } else { 0.0 };
        for act in ACTS {
            let want = vals(&linear(&x, &w, Some(&b), act).unwrap());
            let got = vals(&linear(&xs, &wt, Some(&bs), act).unwrap());
            assert_close(&got, &want, t, t, &format!("{dt} {act:?} strided"));
        }
    }
}

#[test]
fn empty_and_non_finite_inputs() {
    let mut rng = Rng::new(3);
    let (w, _) = rand_array(&mut rng, &[6, 4], DType::F32);
    let (b, _) = rand_array(&mut rng, &[4], DType::F32);
    let x0 = ingot::zeros(&[0, 6], DType::F32).unwrap();
    let y = linear(&x0, &w, Some(&b), LinearAct::GeluTanh).unwrap();
    assert_eq!(y.shape(), &[0, 4]);
    assert!(vals(&y).is_empty());
    // k = 0: the product sums nothing, so the result is act(bias) on every row.
    let xe = ingot::zeros(&[3, 0], DType::F32).unwrap();
    let we = ingot::zeros(&[0, 4], DType::F32).unwrap();
    let y = linear(&xe, &we, Some(&b), LinearAct::Relu).unwrap();
    let bv = vals(&b);
    let want: Vec<f64> = (0..3).flat_map(|_| bv.iter().map(|v| v.max(0.0))).collect();
    assert_close(&vals(&y), &want, 1e-6, 1e-6, "k = 0");
    // A NaN in a row of x makes that row NaN; an infinite bias makes its column infinite.
    let (mut xv, _) = (Rng::new(4).values(3 * 6, DType::F32), ());
    xv[6] = f64::NAN;
    let x = array_from_f64(&xv, &[3, 6], DType::F32);
    let mut bv = vals(&b);
    bv[2] = f64::INFINITY;
    let binf = array_from_f64(&bv, &[4], DType::F32);
    for act in [LinearAct::None, LinearAct::GeluTanh] {
        let y = vals(&linear(&x, &w, Some(&binf), act).unwrap());
        assert!(y[4..8].iter().all(|v| v.is_nan()), "{act:?}: {y:?}");
        for r in [0, 2] {
            assert_eq!(y[r * 4 + 2], f64::INFINITY, "{act:?} row {r}: {y:?}");
            assert!(
                y[r * 4..r * 4 + 4].iter().all(|v| !v.is_nan()),
                "{act:?}: {y:?}"
            );
        }
    }
}

#[test]
fn the_decomposition_matches_finite_differences() {
    // f64 builds the decomposition: its gradient is what the node's is checked against.
    for (i, act) in ACTS.into_iter().enumerate() {
        let f: F = Box::new(move |xs: &[Array]| linear(&xs[0], &xs[1], Some(&xs[2]), act));
        check_grad(
            &format!("linear {act:?}"),
            &f,
            &[&[2, 3, 5], &[5, 4], &[4]],
            (-1.5, 1.5),
            10 + i as u64,
        );
        let f: F = Box::new(move |xs: &[Array]| linear(&xs[0], &xs[1], None, act));
        check_grad(
            &format!("linear {act:?} no bias"),
            &f,
            &[&[3, 5], &[5, 2]],
            (-1.5, 1.5),
            20 + i as u64,
        );
    }
}

#[test]
fn node_gradients_are_the_references() {
    let mut rng = Rng::new(5);
    for dt in [DType::F32, DType::BF16] {
        let (x, _) = rand_array(&mut rng, &[2, 7, 16], dt);
        let (w, _) = rand_array(&mut rng, &[16, 12], dt);
        let (b, _) = rand_array(&mut rng, &[12], dt);
        let (u, _) = rand_array(&mut rng, &[2, 7, 12], dt);
        for act in ACTS {
            for bias in [false, true] {
                let args: Vec<Array> = if bias {
                    vec![x.clone(), w.clone(), b.clone()]
                } else {
                    vec![x.clone(), w.clone()]
                };
                let run = |reference: bool| {
                    let f = move |a: &[Array]| {
                        let bb = a.get(2);
                        let y = if reference {
                            linear_reference(&a[0], &a[1], bb, act)?
                        } else {
                            linear(&a[0], &a[1], bb, act)?
                        };
                        Ok(vec![y])
                    };
                    let (_, gs) = ingot::vjp(f, &args, std::slice::from_ref(&u)).unwrap();
                    gs
                };
                let (got, want) = (run(false), run(true));
                let (rtol, atol) = tols(dt);
                for (i, (g, r)) in got.iter().zip(&want).enumerate() {
                    assert_eq!(g.shape(), r.shape());
                    assert_eq!(g.dtype(), r.dtype());
                    assert_close(
                        &vals(g),
                        &vals(r),
                        rtol * 4.0,
                        atol * 64.0,
                        &format!("{dt} {act:?} bias {bias} input {i}"),
                    );
                }
            }
        }
    }
}

#[test]
fn runs_under_vmap() {
    let mut rng = Rng::new(6);
    let (x, _) = rand_array(&mut rng, &[3, 4, 8], DType::F32);
    let (w, _) = rand_array(&mut rng, &[8, 5], DType::F32);
    let (wb, _) = rand_array(&mut rng, &[3, 8, 5], DType::F32);
    let (b, _) = rand_array(&mut rng, &[5], DType::F32);
    let f = |a: &[Array]| {
        Ok(vec![linear(
            &a[0],
            &a[1],
            Some(&a[2]),
            LinearAct::GeluTanh,
        )?])
    };
    let cases: [(&str, Vec<Array>, [bool; 3]); 3] = [
        (
            "x batched",
            vec![x.clone(), w.clone(), b.clone()],
            [true, false, false],
        ),
        (
            "w batched",
            vec![x.clone(), wb.clone(), b.clone()],
            [false, true, false],
        ),
        (
            "both",
            vec![x.clone(), wb.clone(), b.clone()],
            [true, true, false],
        ),
    ];
    for (what, xs, mapped) in cases {
        let n = 3;
        let want = vmap_looped(&f, &xs, &mapped, n);
        let axes: Vec<Option<isize>> = mapped.iter().map(|&m| m.then_some(0)).collect();
        let got = ingot::vmap(f, &axes, &[Some(0)])(&xs).unwrap().remove(0);
        assert_eq!(got.shape(), want.shape(), "{what}");
        assert_close(&vals(&got), &vals(&want), 1e-5, 1e-5, what);
    }
}

#[test]
fn runs_under_compile_and_export() {
    let mut rng = Rng::new(7);
    let (x, _) = rand_array(&mut rng, &[2, 5, 16], DType::F32);
    let (w1, _) = rand_array(&mut rng, &[16, 32], DType::F32);
    let (b1, _) = rand_array(&mut rng, &[32], DType::F32);
    let (w2, _) = rand_array(&mut rng, &[32, 16], DType::F32);
    let f = |a: &[Array]| {
        let h = linear(&a[0], &a[1], Some(&a[2]), LinearAct::GeluTanh)?;
        let y = linear(&h, &a[3], None, LinearAct::Relu)?;
        Ok(vec![y])
    };
    let args = [x, w1, b1, w2];
    let want = vals(&f(&args).unwrap()[0]);
    let c = ingot::compile(f);
    let y = c.call(&args).unwrap().remove(0);
    assert_close(&vals(&y), &want, 1e-6, 1e-6, "compile");
    let path = std::env::temp_dir().join(format!("ingot-linear-{}.ingot", std::process::id()));
    ingot::export(&path, f, &args).unwrap();
    let p = ingot::import(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    let y = p.call("main", &args).unwrap().remove(0);
    assert_close(&vals(&y), &want, 1e-6, 1e-6, "export");
}

#[test]
fn bad_calls_name_the_op_shapes_and_dtypes() {
    let f = |s: &[usize], dt| ingot::zeros(s, dt).unwrap();
    let cases: Vec<(Result<Array>, &str)> = vec![
        (
            linear(
                &f(&[3, 4], DType::F32),
                &f(&[5, 2], DType::F32),
                None,
                LinearAct::None,
            ),
            "w (5, 2)",
        ),
        (
            linear(
                &f(&[3, 4], DType::F32),
                &f(&[4], DType::F32),
                None,
                LinearAct::None,
            ),
            "w (4,) float32",
        ),
        (
            linear(
                &f(&[3, 4], DType::F32),
                &f(&[4, 2], DType::F32),
                Some(&f(&[3], DType::F32)),
                LinearAct::None,
            ),
            "bias (3,)",
        ),
        (
            linear(
                &f(&[3, 4], DType::I32),
                &f(&[4, 2], DType::I32),
                None,
                LinearAct::None,
            ),
            "int32",
        ),
        (
            linear(
                &f(&[], DType::F32),
                &f(&[4, 2], DType::F32),
                None,
                LinearAct::None,
            ),
            "x ()",
        ),
    ];
    for (r, needle) in cases {
        let e = r.expect_err(needle).to_string();
        assert!(e.contains("linear") && e.contains(needle), "{e}");
    }
}

#[test]
fn cuda_runs_the_cublaslt_epilogue() {
    if !matches!(ingot::default_device(), ingot::Device::Cuda(_))
        || !ingot::cuda::cublaslt_enabled()
    {
        eprintln!("skipped: needs a CUDA default device with cuBLASLt on (INGOT_CUDA_GEMM not ex)");
        return;
    }
    let mut rng = Rng::new(8);
    for dt in [DType::F16, DType::BF16, DType::F32] {
        let (x, _) = rand_array(&mut rng, &[64, 96], dt);
        let (w, _) = rand_array(&mut rng, &[96, 80], dt);
        let (b, _) = rand_array(&mut rng, &[80], dt);
        let ys: Vec<Array> = ACTS
            .iter()
            .flat_map(|&act| {
                [
                    linear(&x, &w, Some(&b), act).unwrap(),
                    linear(&x, &w, None, act).unwrap(),
                ]
            })
            .collect();
        ingot::eval(&ys).unwrap();
    }
    let fb = ingot::cuda::fallbacks();
    assert!(!fb.iter().any(|(n, _)| *n == "linear"), "{fb:?}");
}
