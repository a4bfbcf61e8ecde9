//! Fused scaled dot-product attention (`ingot::fast`) against its reference decomposition
//! and against plain f64 loops: masks, grouped-query heads, dtypes, strided, empty and
//! non-finite inputs, gradients, vmap, compile and export.

mod common;
use common::*;
use ingot::fast::{
    scaled_dot_product_attention as sdpa, scaled_dot_product_attention_reference as sdpa_ref,
    SdpaMask,
};
use ingot::{Array, DType};

/// Plain loops in f64: q (B, Hq, L, E), k (B, Hkv, S, E), v (B, Hkv, S, Ev), with an
/// optional per-(l, s) allow pattern and additive term, causal aligned to the last key.
#[allow(clippy::too_many_arguments)]
fn naive(
    q: &[f64],
    k: &[f64],
    v: &[f64],
    dims: (usize, usize, usize, usize, usize, usize, usize),
    scale: f64,
    causal: bool,
    allow: Option<&[bool]>,
    add: Option<&[f64]>,
) -> Vec<f64> {
    let (b, hq, hkv, l, s, e, ev) = dims;
    let g = hq / hkv;
    let mut out = vec![0.0; b * hq * l * ev];
    for bi in 0..b {
        for h in 0..hq {
            let kh = bi * hkv + h / g;
            for i in 0..l {
                let mut sc = vec![f64::NEG_INFINITY; s];
                for j in 0..s {
                    if causal && j + l > i + s {
                        continue;
                    }
                    if allow.is_some_and(|a| !a[i * s + j]) {
                        continue;
                    }
                    let qi = &q[((bi * hq + h) * l + i) * e..][..e];
                    let kj = &k[(kh * s + j) * e..][..e];
                    sc[j] = qi.iter().zip(kj).map(|(x, y)| x * y).sum::<f64>() * scale
                        + add.map_or(0.0, |a| a[i * s + j]);
                }
                let m = sc.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let p: Vec<f64> = sc.iter().map(|x| (x - m).exp()).collect();
                let z: f64 = p.iter().sum();
                for c in 0..ev {
                    let acc: f64 = (0..s).map(|j| p[j] * v[(kh * s + j) * ev + c]).sum();
                    out[((bi * hq + h) * l + i) * ev + c] = if s == 0 { 0.0 } else { acc / z };
                }
            }
        }
    }
    out
}

/// Two arrays' values within `rtol · |want| + atol` (NaN equal to NaN).
fn close(got: &Array, want: &Array, rtol: f64, atol: f64, what: &str) {
    let (g, w) = (got.to_f64_vec().unwrap(), want.to_f64_vec().unwrap());
    assert_close(&g, &w, rtol, atol, what);
}

#[test]
fn matches_plain_loops_for_every_mask_and_head_grouping() {
    let mut rng = Rng::new(11);
    // (B, Hq, Hkv, L, S, E, Ev): multi-head, grouped, multi-query, decode (L=1), L > S.
    let cases = [
        (2, 4, 4, 7, 7, 8, 8),
        (1, 6, 2, 5, 9, 16, 12),
        (2, 4, 1, 3, 11, 5, 7),
        (1, 2, 2, 1, 13, 32, 32),
        (1, 2, 1, 6, 4, 8, 8),
        // Few rows over many keys: the CUDA decoding kernels split the keys across blocks.
        (1, 8, 2, 1, 300, 64, 64),
        (2, 4, 2, 3, 200, 32, 48),
    ];
    for &(b, hq, hkv, l, s, e, ev) in &cases {
        let (q, qv) = rand_array(&mut rng, &[b, hq, l, e], DType::F64);
        let (k, kv) = rand_array(&mut rng, &[b, hkv, s, e], DType::F64);
        let (v, vv) = rand_array(&mut rng, &[b, hkv, s, ev], DType::F64);
        let allow: Vec<bool> = (0..l * s).map(|_| rng.uniform() < 0.7).collect();
        let addv: Vec<f64> = (0..l * s)
            .map(|_| {
                if rng.uniform() < 0.2 {
                    f64::NEG_INFINITY
                } else {
                    rng.normal()
                }
            })
            .collect();
        let allow_a = Array::from_slice(&allow, &[l, s]).unwrap();
        let add_a = Array::from_vec(addv.clone(), &[1, 1, l, s]).unwrap();
        let scale = 0.37;
        let dims = (b, hq, hkv, l, s, e, ev);
        let masks: [(Option<SdpaMask>, bool, Option<&[bool]>, Option<&[f64]>); 4] = [
            (None, false, None, None),
            (Some(SdpaMask::Causal), true, None, None),
            (Some(SdpaMask::Allow(&allow_a)), false, Some(&allow), None),
            (Some(SdpaMask::Additive(&add_a)), false, None, Some(&addv)),
        ];
        for (mask, causal, al, ad) in masks {
            let want = naive(&qv, &kv, &vv, dims, scale, causal, al, ad);
            let got = sdpa(&q, &k, &v, mask, Some(scale)).unwrap();
            assert_eq!(got.shape(), &[b, hq, l, ev]);
            let what = format!("{dims:?} {mask:?}");
            assert_close(&got.to_f64_vec().unwrap(), &want, 1e-12, 1e-12, &what);
            let r = sdpa_ref(&q, &k, &v, mask, Some(scale)).unwrap();
            assert_close(
                &r.to_f64_vec().unwrap(),
                &want,
                1e-12,
                1e-12,
                &format!("reference {what}"),
            );
        }
    }
}

#[test]
fn every_float_dtype_agrees_with_the_reference() {
    let mut rng = Rng::new(12);
    for dt in FLOATS {
        let (q, _) = rand_array(&mut rng, &[2, 4, 9, 16], dt);
        let (k, _) = rand_array(&mut rng, &[2, 2, 12, 16], dt);
        let (v, _) = rand_array(&mut rng, &[2, 2, 12, 16], dt);
        for mask in [None, Some(SdpaMask::Causal)] {
            let got = sdpa(&q, &k, &v, mask, None).unwrap();
            assert_eq!(got.dtype(), dt);
            let want = sdpa_ref(&q, &k, &v, mask, None).unwrap();
            // The reference rounds q·kᵀ to the dtype before the softmax; the kernel does not.
            let t = 4.0 * tol(dt);
            assert_close(
                &got.to_f64_vec().unwrap(),
                &want.to_f64_vec().unwrap(),
                t,
                t,
                &format!("{dt} {mask:?}"),
            );
        }
    }
}

#[test]
fn strided_broadcast_and_two_dimensional_operands() {
    let mut rng = Rng::new(13);
    // GPT-2's layout: (B, L, H, E) transposed to (B, H, L, E), a view.
    let (b, l, h, e) = (2, 6, 3, 8);
    let (qkv, _) = rand_array(&mut rng, &[b, l, 3, h, e], DType::F32);
    let part = |i: isize| {
        let x = ingot::take(&qkv, &Array::scalar(i as i32), Some(2)).unwrap();
        ingot::transpose(&x, Some(&[0, 2, 1, 3])).unwrap()
    };
    let (q, k, v) = (part(0), part(1), part(2));
    let got = sdpa(&q, &k, &v, Some(SdpaMask::Causal), None).unwrap();
    let want = sdpa_ref(
        &ingot::copy(&q).unwrap(),
        &ingot::copy(&k).unwrap(),
        &ingot::copy(&v).unwrap(),
        Some(SdpaMask::Causal),
        None,
    )
    .unwrap();
    close(&got, &want, 1e-5, 1e-6, "strided");

    // The first 6 positions of a preallocated cache of 10 (what a KV cache passes): each
    // head's rows are contiguous but heads are 10 rows apart.
    let (kbuf, _) = rand_array(&mut rng, &[2, 2, 10, e], DType::F32);
    let (vbuf, _) = rand_array(&mut rng, &[2, 2, 10, e], DType::F32);
    let upto =
        |a: &Array| ingot::slice_axis(a, 2, ingot::SliceArg::new(Some(0), Some(6), 1)).unwrap();
    let (q4, _) = rand_array(&mut rng, &[2, 4, 3, e], DType::F32);
    let (kc, vc) = (upto(&kbuf), upto(&vbuf));
    let got = sdpa(&q4, &kc, &vc, Some(SdpaMask::Causal), None).unwrap();
    let want = sdpa_ref(
        &q4,
        &ingot::copy(&kc).unwrap(),
        &ingot::copy(&vc).unwrap(),
        Some(SdpaMask::Causal),
        None,
    )
    .unwrap();
    close(&got, &want, 1e-5, 1e-6, "cache view");

    // K and V shared by the batch (broadcast leading dim) and 2-d operands.
    let (k1, _) = rand_array(&mut rng, &[1, 3, 5, e], DType::F32);
    let (v1, _) = rand_array(&mut rng, &[1, 3, 5, e], DType::F32);
    let (q2, _) = rand_array(&mut rng, &[4, 3, 2, e], DType::F32);
    let got = sdpa(&q2, &k1, &v1, None, None).unwrap();
    assert_eq!(got.shape(), &[4, 3, 2, e]);
    let kb = ingot::broadcast_to(&k1, &[4, 3, 5, e]).unwrap();
    let vb = ingot::broadcast_to(&v1, &[4, 3, 5, e]).unwrap();
    let want = sdpa_ref(
        &q2,
        &ingot::copy(&kb).unwrap(),
        &ingot::copy(&vb).unwrap(),
        None,
        None,
    )
    .unwrap();
    close(&got, &want, 1e-5, 1e-6, "broadcast");

    let (q, qv) = rand_array(&mut rng, &[3, 4], DType::F64);
    let (k, kv) = rand_array(&mut rng, &[5, 4], DType::F64);
    let (v, vv) = rand_array(&mut rng, &[5, 2], DType::F64);
    let got = sdpa(&q, &k, &v, None, Some(0.5)).unwrap();
    assert_eq!(got.shape(), &[3, 2]);
    let want = naive(&qv, &kv, &vv, (1, 1, 1, 3, 5, 4, 2), 0.5, false, None, None);
    assert_close(&got.to_f64_vec().unwrap(), &want, 1e-12, 1e-12, "2-d");
}

#[test]
fn empty_and_non_finite_inputs() {
    let mut rng = Rng::new(14);
    // No queries, no batch, no keys (an empty sum: zeros, as the decomposition gives).
    for (qs, ks) in [
        ([1, 2, 0, 4], [1, 2, 3, 4]),
        ([0, 2, 3, 4], [0, 2, 3, 4]),
        ([1, 2, 3, 4], [1, 2, 0, 4]),
    ] {
        let (q, _) = rand_array(&mut rng, &qs, DType::F32);
        let (k, _) = rand_array(&mut rng, &ks, DType::F32);
        let (v, _) = rand_array(&mut rng, &ks, DType::F32);
        let got = sdpa(&q, &k, &v, None, None).unwrap();
        let want = sdpa_ref(&q, &k, &v, None, None).unwrap();
        assert_eq!(got.shape(), want.shape());
        close(&got, &want, 0.0, 0.0, "empty");
    }
    // A NaN in one query row makes that row NaN only; a row with every key masked is NaN
    // (causal with more queries than keys: the first rows see no key), as in PyTorch.
    let mut qv = rng.values(2 * 5 * 4, DType::F32);
    qv[4] = f64::NAN;
    let q = array_from_f64(&qv, &[2, 5, 4], DType::F32);
    let (k, _) = rand_array(&mut rng, &[2, 3, 4], DType::F32);
    let (v, _) = rand_array(&mut rng, &[2, 3, 4], DType::F32);
    for mask in [None, Some(SdpaMask::Causal)] {
        let got = sdpa(&q, &k, &v, mask, None).unwrap().to_f64_vec().unwrap();
        let want = sdpa_ref(&q, &k, &v, mask, None)
            .unwrap()
            .to_f64_vec()
            .unwrap();
        assert_close(&got, &want, 1e-5, 1e-6, &format!("non-finite {mask:?}"));
        assert!(got[4..8].iter().all(|x| x.is_nan()));
        assert!(got[8..12].iter().all(|x| !x.is_nan()));
    }
    // Row 0 may attend to no key: NaN there, finite values in row 1.
    let all_off = Array::from_slice(&[false, false, false, true, true, false], &[2, 3]).unwrap();
    let (q, _) = rand_array(&mut rng, &[2, 2, 4], DType::F32);
    let got = sdpa(&q, &k, &v, Some(SdpaMask::Allow(&all_off)), None).unwrap();
    let want = sdpa_ref(&q, &k, &v, Some(SdpaMask::Allow(&all_off)), None).unwrap();
    let got = got.to_f64_vec().unwrap();
    assert_close(&got, &want.to_f64_vec().unwrap(), 1e-5, 1e-6, "all masked");
    assert!(got[0..4].iter().all(|x| x.is_nan()) && got[4..8].iter().all(|x| x.is_finite()));
    // One query head and two key heads: an error naming the op.
    let (q1, _) = rand_array(&mut rng, &[1, 2, 4], DType::F32);
    let e = sdpa(&q1, &k, &v, None, None).unwrap_err().to_string();
    assert!(e.contains("scaled_dot_product_attention"), "{e}");
}

#[test]
fn gradients_match_finite_differences_and_the_reference() {
    for (i, mask) in [None, Some("causal"), Some("additive")]
        .into_iter()
        .enumerate()
    {
        let f: F = Box::new(move |xs: &[Array]| {
            let m = match mask {
                Some("causal") => Some(SdpaMask::Causal),
                Some(_) => Some(SdpaMask::Additive(&xs[3])),
                None => None,
            };
            sdpa(&xs[0], &xs[1], &xs[2], m, None)
        });
        check_grad(
            &format!("sdpa {mask:?}"),
            &f,
            &[&[2, 4, 3, 5], &[2, 2, 6, 5], &[2, 2, 6, 3], &[3, 6]],
            (-1.5, 1.5),
            20 + i as u64,
        );
    }
}

#[test]
fn runs_under_vmap_compile_and_export() {
    let mut rng = Rng::new(15);
    let (q, _) = rand_array(&mut rng, &[3, 2, 4, 8], DType::F32);
    let (k, _) = rand_array(&mut rng, &[3, 1, 6, 8], DType::F32);
    let (v, _) = rand_array(&mut rng, &[3, 1, 6, 8], DType::F32);
    let f = |a: &[Array]| {
        Ok(vec![sdpa(
            &a[0],
            &a[1],
            &a[2],
            Some(SdpaMask::Causal),
            None,
        )?])
    };
    let want = f(&[q.clone(), k.clone(), v.clone()])
        .unwrap()
        .remove(0)
        .to_f64_vec()
        .unwrap();
    // vmap over the batch axis moved last.
    let qm = ingot::moveaxis(&q, 0, -1).unwrap();
    let vm = ingot::vmap(f, &[Some(3), Some(0), Some(0)], &[Some(0)])(&[qm, k.clone(), v.clone()])
        .unwrap()
        .remove(0);
    assert_close(&vm.to_f64_vec().unwrap(), &want, 1e-6, 1e-6, "vmap");
    let c = ingot::compile(f);
    let y = c
        .call(&[q.clone(), k.clone(), v.clone()])
        .unwrap()
        .remove(0);
    assert_close(&y.to_f64_vec().unwrap(), &want, 1e-6, 1e-6, "compile");
    let dir = std::env::temp_dir().join(format!("ingot-sdpa-{}.ingot", std::process::id()));
    ingot::export(&dir, f, &[q.clone(), k.clone(), v.clone()]).unwrap();
    let p = ingot::import(&dir).unwrap();
    let _ = std::fs::remove_file(&dir);
    let y = p.call("main", &[q, k, v]).unwrap().remove(0);
    assert_close(&y.to_f64_vec().unwrap(), &want, 1e-6, 1e-6, "export");
}

#[test]
fn bad_calls_name_the_op_shapes_and_dtypes() {
    let a = |s: &[usize], d: DType| ingot::zeros(s, d).unwrap();
    let cases = [
        (
            a(&[1, 3, 4, 8], DType::F32),
            a(&[1, 2, 4, 8], DType::F32),
            a(&[1, 2, 4, 8], DType::F32),
            "multiple",
        ),
        (
            a(&[1, 2, 4, 8], DType::F32),
            a(&[1, 2, 4, 7], DType::F32),
            a(&[1, 2, 4, 8], DType::F32),
            "(..., Hkv, S, E)",
        ),
        (
            a(&[1, 2, 4, 8], DType::F32),
            a(&[1, 2, 4, 8], DType::F16),
            a(&[1, 2, 4, 8], DType::F32),
            "one floating dtype",
        ),
        (
            a(&[4, 8], DType::I32),
            a(&[4, 8], DType::I32),
            a(&[4, 8], DType::I32),
            "one floating dtype",
        ),
        (
            a(&[8], DType::F32),
            a(&[4, 8], DType::F32),
            a(&[4, 8], DType::F32),
            "at least",
        ),
    ];
    for (q, k, v, want) in cases {
        let e = sdpa(&q, &k, &v, None, None).unwrap_err().to_string();
        assert!(
            e.contains("scaled_dot_product_attention") && e.contains(want),
            "{e}"
        );
    }
    let (q, k, v) = (
        a(&[2, 4, 8], DType::F32),
        a(&[2, 5, 8], DType::F32),
        a(&[2, 5, 8], DType::F32),
    );
    let bad_allow = a(&[4, 5], DType::F32);
    let e = sdpa(&q, &k, &v, Some(SdpaMask::Allow(&bad_allow)), None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("bool"), "{e}");
    let bad_shape = a(&[3, 5], DType::F32);
    let e = sdpa(&q, &k, &v, Some(SdpaMask::Additive(&bad_shape)), None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("does not broadcast"), "{e}");
}

#[test]
fn decoding_reads_a_cache_view_in_place() {
    // A KV cache: (B, Hkv, capacity, E) buffers whose first `len` positions are live; the
    // kernels read the `[:len]` view without a copy, the result equals contiguous operands.
    let mut rng = Rng::new(17);
    for dt in [DType::F32, DType::BF16] {
        for (b, len) in [(1, 333), (2, 150), (1, 7)] {
            let (kbuf, _) = rand_array(&mut rng, &[b, 2, 512, 64], dt);
            let (vbuf, _) = rand_array(&mut rng, &[b, 2, 512, 64], dt);
            let (q, _) = rand_array(&mut rng, &[b, 8, 1, 64], dt);
            let live = |x: &Array| {
                ingot::slice(
                    x,
                    &[
                        ingot::SliceArg::ALL,
                        ingot::SliceArg::ALL,
                        ingot::SliceArg::range(0, len as isize),
                    ],
                )
                .unwrap()
            };
            let (k, v) = (live(&kbuf), live(&vbuf));
            let got = sdpa(&q, &k, &v, Some(SdpaMask::Causal), None).unwrap();
            let kc = ingot::copy(&k).unwrap();
            let vc = ingot::copy(&v).unwrap();
            let f64s = |x: &Array| ingot::astype(x, DType::F64).unwrap();
            let want = sdpa_ref(
                &f64s(&q),
                &f64s(&kc),
                &f64s(&vc),
                Some(SdpaMask::Causal),
                None,
            )
            .unwrap();
            // Against f64: the bf16 decomposition rounds its scores and weights and is
            // itself further off than the fused kernel, which rounds once.
            let tol = if dt == DType::BF16 { 1e-2 } else { 1e-5 };
            close(&got, &want, tol, tol, &format!("{dt} B {b} len {len}"));
        }
    }
}
