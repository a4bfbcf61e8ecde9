//! `ingot::fast::{rms_norm, layer_norm, rope}` against plain f64 loops and against their
//! reference decompositions: dtypes, strided, empty and non-finite inputs, gradients, vmap,
//! compile, export and import, per-batch rope offsets, and bad calls.

mod common;
use common::*;
use ingot::fast::{
    layer_norm, layer_norm_reference, rms_norm, rms_norm_reference, rope, rope_reference,
    RopeOffset,
};
use ingot::{Array, DType, Result};

// ---- plain loops in f64 -----------------------------------------------------------------------

fn rms_naive(x: &[f64], d: usize, w: Option<&[f64]>, eps: f64) -> Vec<f64> {
    let mut out = vec![0.0; x.len()];
    for (row, o) in x.chunks(d).zip(out.chunks_mut(d)) {
        let ms = row.iter().map(|v| v * v).sum::<f64>() / d as f64;
        let inv = 1.0 / (ms + eps).sqrt();
        for j in 0..d {
            o[j] = row[j] * inv * w.map_or(1.0, |w| w[j]);
        }
    }
    out
}

fn ln_naive(x: &[f64], d: usize, w: Option<&[f64]>, b: Option<&[f64]>, eps: f64) -> Vec<f64> {
    let mut out = vec![0.0; x.len()];
    for (row, o) in x.chunks(d).zip(out.chunks_mut(d)) {
        let m = row.iter().sum::<f64>() / d as f64;
        let var = row.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / d as f64;
        let inv = 1.0 / (var + eps).sqrt();
        for j in 0..d {
            o[j] = (row[j] - m) * inv * w.map_or(1.0, |w| w[j]) + b.map_or(0.0, |b| b[j]);
        }
    }
    out
}

/// x row-major of `shape` (..., L, D); `offs` one offset, or one per x's first axis.
fn rope_naive(
    x: &[f64],
    shape: &[usize],
    dims: usize,
    traditional: bool,
    inv: &[f64],
    scale: f64,
    offs: &[i64],
) -> Vec<f64> {
    let n = shape.len();
    let (l, d) = (shape[n - 2], shape[n - 1]);
    let rows = x.len() / d;
    let per_b = rows / shape[0].max(1);
    let half = dims / 2;
    let mut out = x.to_vec();
    for r in 0..rows {
        let o = if offs.len() == 1 {
            offs[0]
        } else {
            offs[r / per_b]
        };
        let pos = (o + (r % l) as i64) as f64 * scale;
        for j in 0..half {
            let (i1, i2) = if traditional {
                (2 * j, 2 * j + 1)
            } else {
                (j, j + half)
            };
            let (c, s) = ((pos * inv[j]).cos(), (pos * inv[j]).sin());
            let (a, b) = (x[r * d + i1], x[r * d + i2]);
            out[r * d + i1] = a * c - b * s;
            out[r * d + i2] = a * s + b * c;
        }
    }
    out
}

fn inv_freqs(base: f64, dims: usize) -> Vec<f64> {
    (0..dims / 2)
        .map(|j| base.powf(-2.0 * j as f64 / dims as f64))
        .collect()
}

fn vals(a: &Array) -> Vec<f64> {
    a.to_f64_vec().unwrap()
}

fn close(got: &Array, want: &Array, rtol: f64, atol: f64, what: &str) {
    assert_eq!(got.shape(), want.shape(), "{what}: shapes");
    assert_close(&vals(got), &vals(want), rtol, atol, what);
}

fn i64_array(v: &[i64], shape: &[usize]) -> Array {
    Array::from_slice(v, shape).unwrap()
}

// ---- values ---------------------------------------------------------------------------------

#[test]
fn norms_match_plain_loops() {
    let mut rng = Rng::new(1);
    for shape in [
        vec![7],
        vec![3, 5],
        vec![2, 3, 16],
        vec![4, 1, 33],
        vec![2, 130],
    ] {
        let d = *shape.last().unwrap();
        let (x, xv) = rand_array(&mut rng, &shape, DType::F64);
        let (w, wv) = rand_array(&mut rng, &[d], DType::F64);
        let (b, bv) = rand_array(&mut rng, &[d], DType::F64);
        let what = format!("{shape:?}");
        for eps in [1e-6, 0.5] {
            for (wa, wn) in [(None, None), (Some(&w), Some(&wv[..]))] {
                let got = rms_norm(&x, wa, eps).unwrap();
                assert_eq!(got.dtype(), DType::F64);
                let want = rms_naive(&xv, d, wn, eps);
                assert_close(&vals(&got), &want, 1e-12, 1e-12, &format!("rms {what}"));
                let r = rms_norm_reference(&x, wa, eps).unwrap();
                assert_close(&vals(&r), &want, 1e-12, 1e-12, &format!("rms ref {what}"));
                for (ba, bn) in [(None, None), (Some(&b), Some(&bv[..]))] {
                    let got = layer_norm(&x, wa, ba, eps).unwrap();
                    let want = ln_naive(&xv, d, wn, bn, eps);
                    let what = format!("ln {what} w {} b {}", wa.is_some(), ba.is_some());
                    assert_close(&vals(&got), &want, 1e-12, 1e-12, &what);
                    let r = layer_norm_reference(&x, wa, ba, eps).unwrap();
                    assert_close(&vals(&r), &want, 1e-12, 1e-12, &format!("ref {what}"));
                }
            }
        }
    }
}

#[test]
fn rope_matches_plain_loops() {
    let mut rng = Rng::new(2);
    // (shape, dims): whole and partial rotation, 2-d, 4-d, one position.
    let cases: [(&[usize], usize); 6] = [
        (&[5, 8], 8),
        (&[2, 3, 6, 16], 16),
        (&[2, 3, 6, 16], 8),
        (&[1, 2, 1, 10], 4),
        (&[3, 7, 12], 6),
        (&[2, 4, 64], 64),
    ];
    for (shape, dims) in cases {
        let (x, xv) = rand_array(&mut rng, shape, DType::F64);
        let (fr, frv) = rand_array(&mut rng, &[dims / 2], DType::F64);
        for traditional in [false, true] {
            for (base, scale, off) in [(10000.0, 1.0, 0usize), (500000.0, 0.25, 37)] {
                let what = format!("{shape:?} dims {dims} trad {traditional} off {off}");
                let inv = inv_freqs(base, dims);
                let want = rope_naive(&xv, shape, dims, traditional, &inv, scale, &[off as i64]);
                let off_a = Array::scalar(off as i32);
                for offset in [RopeOffset::Int(off), RopeOffset::Array(&off_a)] {
                    let got = rope(&x, dims, traditional, Some(base), scale, offset, None).unwrap();
                    assert_eq!(got.dtype(), DType::F64);
                    assert_close(&vals(&got), &want, 1e-12, 1e-12, &what);
                    let r = rope_reference(&x, dims, traditional, Some(base), scale, offset, None)
                        .unwrap();
                    assert_close(&vals(&r), &want, 1e-12, 1e-12, &format!("ref {what}"));
                }
                // Custom inverse frequencies.
                let want = rope_naive(&xv, shape, dims, traditional, &frv, scale, &[off as i64]);
                let got = rope(&x, dims, traditional, None, scale, off.into(), Some(&fr)).unwrap();
                assert_close(&vals(&got), &want, 1e-12, 1e-12, &format!("freqs {what}"));
                let r = rope_reference(&x, dims, traditional, None, scale, off.into(), Some(&fr))
                    .unwrap();
                assert_close(&vals(&r), &want, 1e-12, 1e-12, &format!("freqs ref {what}"));
            }
        }
    }
}

#[test]
fn rope_offsets_per_batch_row() {
    let mut rng = Rng::new(3);
    let shape = [3, 2, 5, 12];
    let (x, xv) = rand_array(&mut rng, &shape, DType::F64);
    let offs = [0i64, 7, 1000];
    for traditional in [false, true] {
        for dt in [DType::I32, DType::I64, DType::U16] {
            let o = ingot::astype(&i64_array(&offs, &[3]), dt).unwrap();
            let inv = inv_freqs(10000.0, 8);
            let want = rope_naive(&xv, &shape, 8, traditional, &inv, 0.5, &offs);
            let got = rope(&x, 8, traditional, Some(10000.0), 0.5, (&o).into(), None).unwrap();
            assert_close(&vals(&got), &want, 1e-12, 1e-12, &format!("per batch {dt}"));
            let r =
                rope_reference(&x, 8, traditional, Some(10000.0), 0.5, (&o).into(), None).unwrap();
            assert_close(&vals(&r), &want, 1e-12, 1e-12, "per batch reference");
            // Each batch row alone, with its offset as an Int.
            for (bi, &ob) in offs.iter().enumerate() {
                let xb =
                    ingot::slice_axis(&x, 0, ingot::SliceArg::range(bi as isize, bi as isize + 1))
                        .unwrap();
                let one = rope(
                    &xb,
                    8,
                    traditional,
                    Some(10000.0),
                    0.5,
                    (ob as usize).into(),
                    None,
                )
                .unwrap();
                let n = one.size();
                assert_close(
                    &vals(&one),
                    &want[bi * n..(bi + 1) * n],
                    1e-12,
                    1e-12,
                    "row",
                );
            }
        }
    }
    // A one-element offset array is shared by every row; so is a 0-d one.
    let one = i64_array(&[9], &[1]);
    let got = rope(&x, 8, false, Some(10000.0), 1.0, (&one).into(), None).unwrap();
    let want = rope(&x, 8, false, Some(10000.0), 1.0, RopeOffset::Int(9), None).unwrap();
    close(&got, &want, 0.0, 0.0, "one-element offset");
}

#[test]
fn every_float_dtype_agrees_with_the_reference() {
    let mut rng = Rng::new(4);
    for dt in FLOATS {
        let (x, _) = rand_array(&mut rng, &[3, 4, 6, 32], dt);
        let (w, _) = rand_array(&mut rng, &[32], dt);
        let (b, _) = rand_array(&mut rng, &[32], dt);
        // Kernel and decomposition round once from f32 (f64); only summation order differs.
        let t = 2.0 * tol(dt);
        let got = rms_norm(&x, Some(&w), 1e-5).unwrap();
        assert_eq!(got.dtype(), dt);
        close(
            &got,
            &rms_norm_reference(&x, Some(&w), 1e-5).unwrap(),
            t,
            t,
            &format!("rms {dt}"),
        );
        let got = layer_norm(&x, Some(&w), Some(&b), 1e-5).unwrap();
        assert_eq!(got.dtype(), dt);
        let want = layer_norm_reference(&x, Some(&w), Some(&b), 1e-5).unwrap();
        close(&got, &want, t, t, &format!("ln {dt}"));
        let off = Array::scalar(5i64);
        for traditional in [false, true] {
            let got = rope(&x, 24, traditional, Some(10000.0), 1.0, (&off).into(), None).unwrap();
            assert_eq!(got.dtype(), dt);
            let want = rope_reference(&x, 24, traditional, Some(10000.0), 1.0, (&off).into(), None)
                .unwrap();
            close(&got, &want, t, t, &format!("rope {dt} {traditional}"));
        }
        // Half inputs against f64 loops on the same (rounded) values.
        let xv = vals(&x);
        let want = rope_naive(
            &xv,
            &[3, 4, 6, 32],
            32,
            false,
            &inv_freqs(1e4, 32),
            1.0,
            &[3],
        );
        let got = rope(&x, 32, false, Some(1e4), 1.0, RopeOffset::Int(3), None).unwrap();
        assert_close(
            &vals(&got),
            &want,
            2.0 * tol(dt),
            2.0 * tol(dt),
            &format!("naive {dt}"),
        );
    }
    // The weight's dtype promotes with x's, as MLX and PyTorch do.
    let (x, _) = rand_array(&mut rng, &[2, 8], DType::F16);
    let (w, _) = rand_array(&mut rng, &[8], DType::F32);
    assert_eq!(rms_norm(&x, Some(&w), 1e-5).unwrap().dtype(), DType::F32);
    assert_eq!(
        layer_norm(&x, None, Some(&w), 1e-5).unwrap().dtype(),
        DType::F32
    );
    let (xb, _) = rand_array(&mut rng, &[2, 8], DType::BF16);
    let (wh, _) = rand_array(&mut rng, &[8], DType::F16);
    assert_eq!(rms_norm(&xb, Some(&wh), 1e-5).unwrap().dtype(), DType::F32);
    // Under autocast the norms run in f32, as PyTorch's do.
    let y = ingot::autocast(DType::BF16, || rms_norm(&xb, None, 1e-5).unwrap()).unwrap();
    assert_eq!(y.dtype(), DType::F32);
}

#[test]
fn strided_inputs_give_the_contiguous_results() {
    let mut rng = Rng::new(5);
    let shape = [3, 5, 16];
    let (_, xv) = rand_array(&mut rng, &shape, DType::F32);
    let dense = array_from_f64(&xv, &shape, DType::F32);
    let (w, _) = rand_array(&mut rng, &[16], DType::F32);
    let (b, _) = rand_array(&mut rng, &[16], DType::F32);
    let off = i64_array(&[2, 4, 6], &[3]);
    for (name, x) in [
        ("stepped", noncontiguous(&xv, &shape, DType::F32)),
        ("transposed", transposed(&xv, &shape, DType::F32)),
    ] {
        assert_eq!(x.shape(), &shape);
        let what = |op: &str| format!("{op} {name}");
        close(
            &rms_norm(&x, Some(&w), 1e-6).unwrap(),
            &rms_norm(&dense, Some(&w), 1e-6).unwrap(),
            1e-6,
            1e-6,
            &what("rms"),
        );
        close(
            &layer_norm(&x, Some(&w), Some(&b), 1e-6).unwrap(),
            &layer_norm(&dense, Some(&w), Some(&b), 1e-6).unwrap(),
            1e-6,
            1e-6,
            &what("ln"),
        );
        for traditional in [false, true] {
            close(
                &rope(&x, 12, traditional, Some(1e4), 1.0, (&off).into(), None).unwrap(),
                &rope(&dense, 12, traditional, Some(1e4), 1.0, (&off).into(), None).unwrap(),
                1e-6,
                1e-6,
                &what("rope"),
            );
        }
    }
    // (B, L, H, D) transposed to (B, H, L, D), as attention layers hold q and k.
    let (qv, _) = rand_array(&mut rng, &[2, 6, 3, 8], DType::F32);
    let q = ingot::transpose(&qv, Some(&[0, 2, 1, 3])).unwrap();
    let got = rope(&q, 8, false, Some(1e4), 1.0, RopeOffset::Int(4), None).unwrap();
    let want = rope(
        &ingot::copy(&q).unwrap(),
        8,
        false,
        Some(1e4),
        1.0,
        RopeOffset::Int(4),
        None,
    )
    .unwrap();
    close(&got, &want, 0.0, 0.0, "bhld view");
    // A weight that is itself a strided view.
    let (w2, _) = rand_array(&mut rng, &[32], DType::F32);
    let ws = ingot::slice_axis(&w2, 0, ingot::SliceArg::new(None, None, 2)).unwrap();
    close(
        &rms_norm(&dense, Some(&ws), 1e-6).unwrap(),
        &rms_norm(&dense, Some(&ingot::copy(&ws).unwrap()), 1e-6).unwrap(),
        0.0,
        0.0,
        "strided weight",
    );
}

#[test]
fn empty_and_non_finite_inputs() {
    let mut rng = Rng::new(6);
    for shape in [vec![0, 4], vec![3, 0], vec![2, 0, 5], vec![0]] {
        let d = *shape.last().unwrap();
        let (x, _) = rand_array(&mut rng, &shape, DType::F32);
        let w = ingot::ones(&[d], DType::F32).unwrap();
        let y = rms_norm(&x, Some(&w), 1e-5).unwrap();
        assert_eq!(y.shape(), &shape[..]);
        assert_eq!(vals(&y).len(), 0);
        let y = layer_norm(&x, Some(&w), Some(&w), 1e-5).unwrap();
        assert_eq!(vals(&y).len(), 0);
        let y = rms_norm_reference(&x, Some(&w), 1e-5).unwrap();
        assert_eq!((y.shape(), vals(&y).len()), (&shape[..], 0));
        let y = layer_norm_reference(&x, Some(&w), Some(&w), 1e-5).unwrap();
        assert_eq!((y.shape(), vals(&y).len()), (&shape[..], 0));
    }
    // No positions, no batch (with per-batch offsets of length 0), no heads.
    for shape in [[2, 3, 0, 8], [0, 3, 4, 8], [2, 0, 4, 8]] {
        let (x, _) = rand_array(&mut rng, &shape, DType::F32);
        let offs = i64_array(&vec![1; shape[0]], &[shape[0]]);
        for offset in [RopeOffset::Int(3), RopeOffset::Array(&offs)] {
            for traditional in [false, true] {
                let y = rope(&x, 8, traditional, Some(1e4), 1.0, offset, None).unwrap();
                assert_eq!(y.shape(), &shape[..]);
                assert_eq!(vals(&y).len(), 0);
                let y = rope_reference(&x, 8, traditional, Some(1e4), 1.0, offset, None).unwrap();
                assert_eq!((y.shape(), vals(&y).len()), (&shape[..], 0));
            }
        }
    }
    // dims 0 rotates nothing.
    let (x, xv) = rand_array(&mut rng, &[2, 3, 4], DType::F32);
    for traditional in [false, true] {
        let y = rope(&x, 0, traditional, Some(1e4), 1.0, RopeOffset::Int(1), None).unwrap();
        assert_close(&vals(&y), &xv, 0.0, 0.0, "dims 0");
        let y =
            rope_reference(&x, 0, traditional, Some(1e4), 1.0, RopeOffset::Int(1), None).unwrap();
        assert_close(&vals(&y), &xv, 0.0, 0.0, "dims 0 reference");
    }

    // A NaN makes its row NaN (norms) or its pair NaN (rope); an inf row follows the formula.
    let mut xv = rng.values(3 * 8, DType::F32);
    xv[3] = f64::NAN;
    xv[8 + 5] = f64::INFINITY;
    let x = array_from_f64(&xv, &[3, 8], DType::F32);
    let (w, _) = rand_array(&mut rng, &[8], DType::F32);
    let got = vals(&rms_norm(&x, Some(&w), 1e-5).unwrap());
    let want = vals(&rms_norm_reference(&x, Some(&w), 1e-5).unwrap());
    assert_close(&got, &want, 1e-6, 1e-6, "rms non-finite");
    assert!(got[..8].iter().all(|v| v.is_nan()));
    assert!(got[16..].iter().all(|v| v.is_finite()));
    let got = vals(&layer_norm(&x, Some(&w), Some(&w), 1e-5).unwrap());
    let want = vals(&layer_norm_reference(&x, Some(&w), Some(&w), 1e-5).unwrap());
    assert_close(&got, &want, 1e-6, 1e-6, "ln non-finite");
    assert!(got[..16].iter().all(|v| v.is_nan()));
    assert!(got[16..].iter().all(|v| v.is_finite()));
    let x3 = ingot::reshape_to(&x, &[3, 1, 8]).unwrap();
    for traditional in [false, true] {
        let got = vals(
            &rope(
                &x3,
                8,
                traditional,
                Some(1e4),
                1.0,
                RopeOffset::Int(2),
                None,
            )
            .unwrap(),
        );
        let want = vals(
            &rope_reference(
                &x3,
                8,
                traditional,
                Some(1e4),
                1.0,
                RopeOffset::Int(2),
                None,
            )
            .unwrap(),
        );
        assert_close(&got, &want, 1e-6, 1e-6, "rope non-finite");
        // Element 3 pairs with 7 (halves) or 2 (adjacent).
        let partner = if traditional { 2 } else { 7 };
        assert!(got[3].is_nan() && got[partner].is_nan());
        assert_eq!(got[..8].iter().filter(|v| v.is_nan()).count(), 2);
        assert!(got[16..].iter().all(|v| v.is_finite()));
    }
}

// ---- transforms -----------------------------------------------------------------------------

#[test]
fn gradients_match_finite_differences() {
    let f: F = Box::new(|xs: &[Array]| rms_norm(&xs[0], Some(&xs[1]), 1e-3));
    check_grad("rms_norm", &f, &[&[3, 2, 6], &[6]], (-1.5, 1.5), 31);
    let f: F = Box::new(|xs: &[Array]| rms_norm(&xs[0], None, 0.1));
    check_grad("rms_norm no weight", &f, &[&[4, 5]], (-1.5, 1.5), 32);
    let f: F = Box::new(|xs: &[Array]| layer_norm(&xs[0], Some(&xs[1]), Some(&xs[2]), 1e-3));
    check_grad("layer_norm", &f, &[&[3, 2, 6], &[6], &[6]], (-1.5, 1.5), 33);
    let f: F = Box::new(|xs: &[Array]| layer_norm(&xs[0], None, Some(&xs[1]), 1e-3));
    check_grad(
        "layer_norm bias only",
        &f,
        &[&[4, 7], &[7]],
        (-1.5, 1.5),
        34,
    );
    for traditional in [false, true] {
        let f: F = Box::new(move |xs: &[Array]| {
            rope(
                &xs[0],
                6,
                traditional,
                Some(100.0),
                0.5,
                RopeOffset::Int(3),
                None,
            )
        });
        check_grad("rope", &f, &[&[2, 3, 4, 8]], (-1.5, 1.5), 35);
        let f: F = Box::new(move |xs: &[Array]| {
            let off = i64_array(&[1, 5], &[2]);
            rope(
                &xs[0],
                8,
                traditional,
                None,
                1.0,
                (&off).into(),
                Some(&xs[1]),
            )
        });
        check_grad("rope freqs", &f, &[&[2, 3, 4, 8], &[4]], (-1.5, 1.5), 36);
    }
}

/// The gradients of `sum(u · f(xs))` for every input.
fn grads(f: &dyn Fn(&[Array]) -> Result<Array>, xs: &[Array], u: &Array) -> Vec<Array> {
    let (_, gs) = ingot::vjp(|a| Ok(vec![f(a)?]), xs, std::slice::from_ref(u)).unwrap();
    gs
}

#[test]
fn gradients_are_the_references() {
    let mut rng = Rng::new(7);
    for dt in [DType::F32, DType::BF16] {
        let (x, _) = rand_array(&mut rng, &[2, 3, 4, 16], dt);
        let (w, _) = rand_array(&mut rng, &[16], dt);
        let (b, _) = rand_array(&mut rng, &[16], dt);
        let (fr, _) = rand_array(&mut rng, &[5], DType::F32);
        let (u, _) = rand_array(&mut rng, &[2, 3, 4, 16], dt);
        let off = i64_array(&[3, 11], &[2]);
        type Op = Box<dyn Fn(&[Array]) -> Result<Array>>;
        let pairs: Vec<(&str, Op, Op, Vec<Array>)> = vec![
            (
                "rms",
                Box::new(|a: &[Array]| rms_norm(&a[0], Some(&a[1]), 1e-5)),
                Box::new(|a: &[Array]| rms_norm_reference(&a[0], Some(&a[1]), 1e-5)),
                vec![x.clone(), w.clone()],
            ),
            (
                "ln",
                Box::new(|a: &[Array]| layer_norm(&a[0], Some(&a[1]), Some(&a[2]), 1e-5)),
                Box::new(|a: &[Array]| layer_norm_reference(&a[0], Some(&a[1]), Some(&a[2]), 1e-5)),
                vec![x.clone(), w.clone(), b.clone()],
            ),
            (
                "rope",
                Box::new({
                    let off = off.clone();
                    move |a: &[Array]| rope(&a[0], 10, false, None, 1.0, (&off).into(), Some(&a[1]))
                }),
                Box::new({
                    let off = off.clone();
                    move |a: &[Array]| {
                        rope_reference(&a[0], 10, false, None, 1.0, (&off).into(), Some(&a[1]))
                    }
                }),
                vec![x.clone(), fr.clone()],
            ),
        ];
        for (name, fast, reference, xs) in pairs {
            let gf = grads(&*fast, &xs, &u);
            let gr = grads(&*reference, &xs, &u);
            for (i, (a, r)) in gf.iter().zip(&gr).enumerate() {
                assert_eq!(a.dtype(), xs[i].dtype(), "{name} {dt} grad {i} dtype");
                close(a, r, 1e-6, 1e-6, &format!("{name} {dt} grad {i}"));
            }
        }
    }
}

fn check_vmap(
    what: &str,
    f: impl Fn(&[Array]) -> Result<Vec<Array>> + Clone + 'static,
    xs: &[Array],
    mapped: &[bool],
) {
    let n = xs
        .iter()
        .zip(mapped)
        .find(|(_, &m)| m)
        .map(|(x, _)| x.shape()[0])
        .unwrap();
    let want = vmap_looped(&f, xs, mapped, n);
    let axes: Vec<Option<isize>> = mapped.iter().map(|&m| m.then_some(0)).collect();
    let got = ingot::vmap(f, &axes, &[Some(0)])(xs).unwrap().remove(0);
    close(&got, &want, 1e-6, 1e-6, what);
}

#[test]
fn runs_under_vmap() {
    let mut rng = Rng::new(8);
    let (x, _) = rand_array(&mut rng, &[4, 3, 8], DType::F32);
    let (w, _) = rand_array(&mut rng, &[8], DType::F32);
    let (ws, _) = rand_array(&mut rng, &[4, 8], DType::F32);
    let (b, _) = rand_array(&mut rng, &[8], DType::F32);
    let rms = |a: &[Array]| Ok(vec![rms_norm(&a[0], Some(&a[1]), 1e-5)?]);
    check_vmap(
        "rms shared weight",
        rms,
        &[x.clone(), w.clone()],
        &[true, false],
    );
    check_vmap(
        "rms weight per example",
        rms,
        &[x.clone(), ws.clone()],
        &[true, true],
    );
    check_vmap(
        "rms only the weight",
        rms,
        &[ingot::copy(&ws).unwrap(), ws.clone()],
        &[false, true],
    );
    let ln = |a: &[Array]| Ok(vec![layer_norm(&a[0], Some(&a[1]), Some(&a[2]), 1e-5)?]);
    check_vmap(
        "ln",
        ln,
        &[x.clone(), w.clone(), b.clone()],
        &[true, false, false],
    );
    check_vmap(
        "ln bias per example",
        ln,
        &[x.clone(), w.clone(), ws.clone()],
        &[true, false, true],
    );

    // rope: x (V, B, H, L, D) with every kind of offset, batched or not.
    let (xr, _) = rand_array(&mut rng, &[3, 2, 2, 5, 8], DType::F32);
    let (x1, _) = rand_array(&mut rng, &[2, 2, 5, 8], DType::F32);
    let fixed = |a: &[Array]| {
        Ok(vec![rope(
            &a[0],
            8,
            false,
            Some(1e4),
            1.0,
            RopeOffset::Int(4),
            None,
        )?])
    };
    check_vmap("rope fixed", fixed, std::slice::from_ref(&xr), &[true]);
    let by_arr = |a: &[Array]| {
        Ok(vec![rope(
            &a[0],
            6,
            true,
            Some(1e4),
            0.5,
            (&a[1]).into(),
            None,
        )?])
    };
    let scalars = i64_array(&[0, 3, 9], &[3]);
    check_vmap(
        "rope scalar offset per example",
        by_arr,
        &[xr.clone(), scalars.clone()],
        &[true, true],
    );
    check_vmap(
        "rope shared x",
        by_arr,
        &[x1.clone(), scalars.clone()],
        &[false, true],
    );
    check_vmap(
        "rope shared scalar offset",
        by_arr,
        &[xr.clone(), Array::scalar(6i64)],
        &[true, false],
    );
    let per_batch = i64_array(&[1, 2, 3, 4, 5, 6], &[3, 2]);
    check_vmap(
        "rope per-batch offsets per example",
        by_arr,
        &[xr.clone(), per_batch.clone()],
        &[true, true],
    );
    check_vmap(
        "rope shared per-batch offsets",
        by_arr,
        &[xr.clone(), i64_array(&[5, 50], &[2])],
        &[true, false],
    );
    check_vmap(
        "rope x shared, per-batch offsets mapped",
        by_arr,
        &[x1.clone(), per_batch],
        &[false, true],
    );
    let (frs, _) = rand_array(&mut rng, &[3, 4], DType::F32);
    let by_freqs = |a: &[Array]| {
        Ok(vec![rope(
            &a[0],
            8,
            false,
            None,
            1.0,
            RopeOffset::Int(2),
            Some(&a[1]),
        )?])
    };
    check_vmap(
        "rope freqs per example",
        by_freqs,
        &[xr.clone(), frs.clone()],
        &[true, true],
    );
    check_vmap(
        "rope shared freqs",
        by_freqs,
        &[
            xr,
            ingot::take(&frs, &Array::scalar(0i64), Some(0)).unwrap(),
        ],
        &[true, false],
    );
}

#[test]
fn runs_under_compile_and_export() {
    let mut rng = Rng::new(9);
    let (x, _) = rand_array(&mut rng, &[2, 3, 4, 16], DType::F32);
    let (w, _) = rand_array(&mut rng, &[16], DType::F32);
    let (b, _) = rand_array(&mut rng, &[16], DType::F32);
    let (fr, _) = rand_array(&mut rng, &[6], DType::F32);
    let f = |a: &[Array]| {
        let h = layer_norm(&a[0], Some(&a[1]), Some(&a[2]), 1e-5)?;
        let h = rope(&h, 16, false, Some(1e4), 1.0, (&a[3]).into(), None)?;
        let h = rms_norm(&h, Some(&a[1]), 1e-6)?;
        let h = rope(&h, 12, true, None, 0.5, RopeOffset::Int(3), Some(&a[4]))?;
        Ok(vec![h])
    };
    let c = ingot::compile(f);
    for offs in [[0i64, 4], [7, 100]] {
        let o = i64_array(&offs, &[2]);
        let args = [x.clone(), w.clone(), b.clone(), o, fr.clone()];
        let want = vals(&f(&args).unwrap()[0]);
        let y = c.call(&args).unwrap().remove(0);
        assert_close(&vals(&y), &want, 1e-6, 1e-6, &format!("compile {offs:?}"));
    }
    let o = i64_array(&[2, 9], &[2]);
    let args = [x.clone(), w.clone(), b.clone(), o, fr.clone()];
    let want = vals(&f(&args).unwrap()[0]);
    let path = std::env::temp_dir().join(format!("ingot-norm-rope-{}.ingot", std::process::id()));
    ingot::export(&path, f, &args).unwrap();
    let p = ingot::import(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    let y = p.call("main", &args).unwrap().remove(0);
    assert_close(&vals(&y), &want, 1e-6, 1e-6, "export");
}

#[test]
fn the_import_check_takes_well_formed_nodes_only() {
    use ingot::op::{Op, RopeOffsetKind};
    use ingot::transforms::check_op;
    use ingot::Scalar;
    let s = |shape: &[usize], d: DType| (shape.to_vec(), d);
    let f32s = DType::F32;
    let rms = Op::RmsNorm {
        eps: Scalar::Float(1e-5),
        has_weight: true,
    };
    let out = [s(&[2, 4], f32s)];
    assert!(check_op(&rms, &[s(&[2, 4], f32s), s(&[4], f32s)], &out).is_ok());
    for bad in [
        vec![s(&[2, 4], f32s)],
        vec![s(&[2, 4], f32s), s(&[3], f32s)],
        vec![s(&[2, 4], f32s), s(&[4], DType::F16)],
        vec![s(&[2, 4], DType::I32), s(&[4], DType::I32)],
    ] {
        let e = check_op(&rms, &bad, &out).unwrap_err().to_string();
        assert!(e.contains("rms_norm"), "{e}");
    }
    let ln = Op::LayerNorm {
        eps: Scalar::Float(1e-5),
        has_weight: false,
        has_bias: true,
    };
    assert!(check_op(&ln, &[s(&[2, 4], f32s), s(&[4], f32s)], &out).is_ok());
    assert!(check_op(&ln, &[s(&[2, 4], f32s)], &out).is_err());
    let rope_op = |offset, base: Option<f64>, dims| Op::Rope {
        dims,
        traditional: false,
        base: base.map(Scalar::Float),
        scale: Scalar::Float(1.0),
        offset,
    };
    let x = s(&[3, 2, 5, 8], DType::F16);
    let out = [x.clone()];
    let ok: [(Op, Vec<(Vec<usize>, DType)>); 3] = [
        (
            rope_op(RopeOffsetKind::Fixed(2), Some(1e4), 8),
            vec![x.clone()],
        ),
        (
            rope_op(RopeOffsetKind::PerBatch, None, 6),
            vec![x.clone(), s(&[3], DType::I64), s(&[3], f32s)],
        ),
        (
            rope_op(RopeOffsetKind::Scalar, Some(1e4), 4),
            vec![x.clone(), s(&[], DType::I64)],
        ),
    ];
    for (op, ins) in ok {
        assert!(check_op(&op, &ins, &out).is_ok(), "{op:?}");
    }
    let bad: [(Op, Vec<(Vec<usize>, DType)>); 6] = [
        (
            rope_op(RopeOffsetKind::Fixed(2), Some(1e4), 7),
            vec![x.clone()],
        ),
        (
            rope_op(RopeOffsetKind::Fixed(2), Some(1e4), 10),
            vec![x.clone()],
        ),
        (
            rope_op(RopeOffsetKind::PerBatch, Some(1e4), 8),
            vec![x.clone(), s(&[2], DType::I64)],
        ),
        (
            rope_op(RopeOffsetKind::Scalar, Some(1e4), 8),
            vec![x.clone(), s(&[], DType::I32)],
        ),
        (
            rope_op(RopeOffsetKind::Fixed(0), None, 8),
            vec![x.clone(), s(&[4], DType::F16)],
        ),
        (
            rope_op(RopeOffsetKind::Fixed(0), Some(1e4), 8),
            vec![x.clone(), s(&[4], f32s)],
        ),
    ];
    for (op, ins) in bad {
        let e = check_op(&op, &ins, &out).unwrap_err().to_string();
        assert!(e.contains("rope"), "{e}");
    }
}

#[test]
fn bad_calls_name_the_op_shapes_and_dtypes() {
    let z = |s: &[usize], d: DType| ingot::zeros(s, d).unwrap();
    let x = z(&[2, 4], DType::F32);
    let expect = |e: ingot::Error, op: &str, parts: &[&str]| {
        let e = e.to_string();
        assert!(e.contains(op), "{e}");
        for p in parts {
            assert!(e.contains(p), "{e} (want {p})");
        }
    };
    expect(
        rms_norm(&z(&[2, 4], DType::I32), None, 1e-5).unwrap_err(),
        "rms_norm",
        &["floating", "(2, 4)", "int32"],
    );
    expect(
        rms_norm(&z(&[], DType::F32), None, 1e-5).unwrap_err(),
        "rms_norm",
        &["axis"],
    );
    expect(
        rms_norm(&x, Some(&z(&[5], DType::F32)), 1e-5).unwrap_err(),
        "rms_norm",
        &["(D,) = (4,)", "weight (5,) float32"],
    );
    expect(
        rms_norm(&x, Some(&z(&[1, 4], DType::F32)), 1e-5).unwrap_err(),
        "rms_norm",
        &["(1, 4)"],
    );
    expect(
        layer_norm(&x, None, Some(&z(&[3], DType::F16)), 1e-5).unwrap_err(),
        "layer_norm",
        &["bias (3,) float16"],
    );
    expect(
        layer_norm(&x, Some(&z(&[4], DType::C64)), None, 1e-5).unwrap_err(),
        "layer_norm",
        &["real"],
    );
    let x4 = z(&[2, 3, 5, 8], DType::F32);
    let r = |x: &Array, dims, base, off: RopeOffset, fr: Option<&Array>| {
        rope(x, dims, false, base, 1.0, off, fr).unwrap_err()
    };
    let none = RopeOffset::Int(0);
    expect(
        r(&x4, 7, Some(1e4), none, None),
        "rope",
        &["dims (7)", "even", "(2, 3, 5, 8)"],
    );
    expect(
        r(&x4, 10, Some(1e4), none, None),
        "rope",
        &["at most D (8)"],
    );
    expect(
        r(&z(&[5, 8], DType::I32), 8, Some(1e4), none, None),
        "rope",
        &["floating", "int32"],
    );
    expect(
        r(&z(&[8], DType::F32), 8, Some(1e4), none, None),
        "rope",
        &["(L, D)"],
    );
    let fr = z(&[4], DType::F32);
    expect(
        r(&x4, 8, Some(1e4), none, Some(&fr)),
        "rope",
        &["exactly one"],
    );
    expect(r(&x4, 8, None, none, None), "rope", &["exactly one"]);
    expect(
        r(&x4, 8, None, none, Some(&z(&[8], DType::F32))),
        "rope",
        &["freqs (8,)", "(4,)"],
    );
    let fo = z(&[], DType::F32);
    expect(
        r(&x4, 8, Some(1e4), (&fo).into(), None),
        "rope",
        &["integer", "offset () float32"],
    );
    let o3 = z(&[3], DType::I32);
    expect(
        r(&x4, 8, Some(1e4), (&o3).into(), None),
        "rope",
        &["(B,)", "offset (3,) int32"],
    );
    let o5 = z(&[5], DType::I64);
    expect(
        r(&z(&[5, 8], DType::F32), 8, Some(1e4), (&o5).into(), None),
        "rope",
        &["(B,)"],
    );
    let o22 = z(&[2, 2], DType::I64);
    expect(
        r(&x4, 8, Some(1e4), (&o22).into(), None),
        "rope",
        &["(2, 2)"],
    );
}

/// Run with a CUDA default device (unless `INGOT_CUDA_FAST=0`; the other tests then check the
/// CUDA kernels' values): every node ran on the GPU, none fell back to the CPU.
#[test]
fn cuda_runs_its_own_kernels_when_enabled() {
    let on_gpu = matches!(ingot::default_device(), ingot::Device::Cuda(_));
    if !on_gpu || std::env::var("INGOT_CUDA_FAST").as_deref() == Ok("0") {
        eprintln!("skipped: needs a CUDA default device without INGOT_CUDA_FAST=0");
        return;
    }
    let mut rng = Rng::new(10);
    for dt in FLOATS {
        let (x, _) = rand_array(&mut rng, &[2, 3, 5, 64], dt);
        let (w, _) = rand_array(&mut rng, &[64], dt);
        let (fr, _) = rand_array(&mut rng, &[16], dt);
        let offs = i64_array(&[3, 8], &[2]);
        let ys = [
            rms_norm(&x, Some(&w), 1e-5).unwrap(),
            layer_norm(&x, Some(&w), Some(&w), 1e-5).unwrap(),
            rope(&x, 64, false, Some(1e4), 1.0, RopeOffset::Int(2), None).unwrap(),
            rope(&x, 32, true, None, 1.0, (&offs).into(), Some(&fr)).unwrap(),
        ];
        ingot::eval(&ys).unwrap();
    }
    let fb = ingot::cuda::fallbacks();
    assert!(
        !fb.iter()
            .any(|(n, _)| matches!(*n, "rms_norm" | "layer_norm" | "rope")),
        "{fb:?}"
    );
}
