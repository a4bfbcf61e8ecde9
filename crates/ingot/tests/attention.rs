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

/// A random (l, s) allow pattern (70% allowed) and additive term (20% -inf, else normal)
/// in `dtype`, with the values the arrays hold.
fn random_masks(
    rng: &mut Rng,
    l: usize,
    s: usize,
    dtype: DType,
) -> (Vec<bool>, Array, Vec<f64>, Array) {
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
    let add_a = array_from_f64(&addv, &[1, 1, l, s], dtype);
    let addv = add_a.to_f64_vec().unwrap();
    (
        allow.clone(),
        Array::from_slice(&allow, &[l, s]).unwrap(),
        addv,
        add_a,
    )
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
        let (allow, allow_a, addv, add_a) = random_masks(&mut rng, l, s, DType::F64);
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

/// Whether the flash kernels run here (a CUDA default device, INGOT_CUDA_FLASH not 0);
/// says why not when they do not.
fn flash_on() -> bool {
    let on = matches!(ingot::default_device(), ingot::Device::Cuda(_))
        && std::env::var("INGOT_CUDA_FLASH").map_or(true, |v| v != "0");
    if !on {
        eprintln!("skipped: needs a CUDA default device and INGOT_CUDA_FLASH not 0");
    }
    on
}

#[test]
fn flash_prefill_on_the_gpu_agrees_with_plain_loops() {
    // The tensor-core flash kernel (a CUDA default device, INGOT_CUDA_FLASH not 0) for prompts:
    // every head dim it takes, grouped heads, causal with the query block offset into the
    // keys (more keys than queries, and fewer: rows that see no key are NaN), key counts off
    // the 64-key tile, a KV cache's view read in place, a NaN in a query row.
    if !flash_on() {
        return;
    }
    let mut rng = Rng::new(23);
    let cases = [
        // (b, hq, hkv, l, s, e, causal)
        (1, 4, 4, 100, 100, 64, true),
        (2, 8, 2, 70, 200, 128, true),
        (1, 2, 1, 130, 77, 80, true),
        (1, 3, 3, 65, 300, 96, false),
        (1, 2, 2, 40, 1000, 16, false),
        (1, 4, 1, 257, 257, 128, true),
        (2, 2, 2, 17, 64, 112, true),
    ];
    for dt in [DType::BF16, DType::F16] {
        for &(b, hq, hkv, l, s, e, causal) in &cases {
            let (_, mut qv) = rand_array(&mut rng, &[b, hq, l, e], dt);
            // A NaN in one query row makes that row NaN and leaves the others alone.
            qv[5 * e + 3] = f64::NAN;
            let q = array_from_f64(&qv, &[b, hq, l, e], dt);
            let (k, kv) = rand_array(&mut rng, &[b, hkv, s, e], dt);
            let (v, vv) = rand_array(&mut rng, &[b, hkv, s, e], dt);
            let before = ingot::backend::cuda::flash_launches();
            let mask = causal.then_some(SdpaMask::Causal);
            let got = sdpa(&q, &k, &v, mask, Some(0.3)).unwrap();
            got.eval().unwrap();
            let what = format!("{dt} b {b} hq {hq} hkv {hkv} l {l} s {s} e {e} causal {causal}");
            assert!(
                ingot::backend::cuda::flash_launches() > before,
                "{what}: the flash kernel did not run"
            );
            let want = naive(
                &qv,
                &kv,
                &vv,
                (b, hq, hkv, l, s, e, e),
                0.3,
                causal,
                None,
                None,
            );
            // Scores in f32 from exact products; the weights rounded to the dtype once.
            let tol = if dt == DType::BF16 { 2e-2 } else { 4e-3 };
            assert_close(&got.to_f64_vec().unwrap(), &want, tol, tol, &what);
        }
    }
    // A cache's `[:len]` view: heads a capacity apart, read in place.
    for dt in [DType::BF16, DType::F16] {
        let (kbuf, _) = rand_array(&mut rng, &[1, 2, 512, 64], dt);
        let (vbuf, _) = rand_array(&mut rng, &[1, 2, 512, 64], dt);
        let (q, _) = rand_array(&mut rng, &[1, 4, 150, 64], dt);
        let live = |x: &Array| {
            ingot::slice(
                x,
                &[
                    ingot::SliceArg::ALL,
                    ingot::SliceArg::ALL,
                    ingot::SliceArg::range(0, 300),
                ],
            )
            .unwrap()
        };
        let (k, v) = (live(&kbuf), live(&vbuf));
        let before = ingot::backend::cuda::flash_launches();
        let got = sdpa(&q, &k, &v, Some(SdpaMask::Causal), None).unwrap();
        got.eval().unwrap();
        assert!(
            ingot::backend::cuda::flash_launches() > before,
            "{dt}: cache view"
        );
        let f64s = |x: &Array| ingot::astype(&ingot::copy(x).unwrap(), DType::F64).unwrap();
        let want = sdpa_ref(
            &f64s(&q),
            &f64s(&k),
            &f64s(&v),
            Some(SdpaMask::Causal),
            None,
        )
        .unwrap();
        close(&got, &want, 2e-2, 2e-2, &format!("{dt} cache view"));
    }
}

#[test]
fn vector_decoding_on_the_gpu_agrees_with_plain_loops() {
    // Split-KV decoding with 16-byte loads (`decv`, a CUDA default device): f16, bf16 and
    // f32; head dims from one to 32 lanes a key; one and a few query rows; every mask;
    // grouped heads; key counts off the block's steps, a single key, a NaN in a key row.
    if !matches!(ingot::default_device(), ingot::Device::Cuda(_))
        || std::env::var("INGOT_CUDA_DECV").is_ok_and(|v| v == "0")
    {
        eprintln!("skipped: needs a CUDA default device and INGOT_CUDA_DECV not 0");
        return;
    }
    let mut rng = Rng::new(29);
    let cases = [
        // (b, hq, hkv, l, s, e)
        (1, 8, 2, 1, 1000, 128),
        (2, 4, 4, 3, 333, 64),
        (1, 4, 1, 1, 77, 256),
        (1, 2, 2, 2, 4097, 16),
        (1, 2, 1, 1, 1, 128),
        (1, 32, 8, 1, 2048, 128),
    ];
    for dt in [DType::BF16, DType::F16, DType::F32] {
        for &(b, hq, hkv, l, s, e) in &cases {
            if e * dt.size() > 32 * 16 {
                continue; // a key row wider than a warp's 16-byte loads: `dec` takes it
            }
            let (q, qv) = rand_array(&mut rng, &[b, hq, l, e], dt);
            let (_, mut kv) = rand_array(&mut rng, &[b, hkv, s, e], dt);
            if s > 10 {
                kv[7 * e + 1] = f64::NAN; // key 7 of the first head: its rows are NaN
            }
            let k = array_from_f64(&kv, &[b, hkv, s, e], dt);
            let (v, vv) = rand_array(&mut rng, &[b, hkv, s, e], dt);
            let (allow, allow_a, addv, add_a) = random_masks(&mut rng, l, s, dt);
            let dims = (b, hq, hkv, l, s, e, e);
            let masks: [(Option<SdpaMask>, bool, Option<&[bool]>, Option<&[f64]>); 4] = [
                (None, false, None, None),
                (Some(SdpaMask::Causal), true, None, None),
                (Some(SdpaMask::Allow(&allow_a)), false, Some(&allow), None),
                (Some(SdpaMask::Additive(&add_a)), false, None, Some(&addv)),
            ];
            for (mask, causal, al, ad) in masks {
                let what = format!("{dt} {dims:?} {mask:?}");
                let before = ingot::backend::cuda::decv_launches();
                let got = sdpa(&q, &k, &v, mask, Some(0.2)).unwrap();
                got.eval().unwrap();
                assert!(
                    ingot::backend::cuda::decv_launches() > before,
                    "{what}: the vector decoding kernel did not run"
                );
                let want = naive(&qv, &kv, &vv, dims, 0.2, causal, al, ad);
                let tol = match dt {
                    DType::BF16 => 2e-2,
                    DType::F16 => 4e-3,
                    _ => 1e-4,
                };
                assert_close(&got.to_f64_vec().unwrap(), &want, tol, tol, &what);
            }
        }
    }
}

/// vjp of `f` at q, k, v with cotangent g: the three gradients (not yet computed).
fn grads_of(
    f: impl Fn(&Array, &Array, &Array) -> ingot::Result<Array>,
    qkv: &[Array],
    g: &Array,
) -> Vec<Array> {
    ingot::vjp(
        |xs: &[Array]| Ok(vec![f(&xs[0], &xs[1], &xs[2])?]),
        qkv,
        std::slice::from_ref(g),
    )
    .unwrap()
    .1
}

#[test]
fn the_fused_gradient_matches_the_decompositions() {
    // Without a mask input, attention's vjp on the CPU is one AttentionGrad node that
    // recomputes each row's scores: against the reference decomposition's vjp in f64, for
    // grouped heads, causal offsets both ways (more queries than keys leaves rows that see
    // no key: NaN in dv, as the decomposition gives), head dims apart, transposed operands.
    let mut rng = Rng::new(29);
    let cases = [
        // (b, hq, hkv, l, s, e, ev, causal)
        (1, 2, 2, 5, 5, 4, 4, false),
        (2, 4, 2, 3, 7, 5, 3, true),
        (1, 3, 1, 6, 4, 8, 8, true),
        (1, 1, 1, 1, 9, 3, 2, true),
        (2, 2, 1, 4, 4, 16, 6, false),
        (1, 2, 1, 33, 40, 12, 12, true),
    ];
    // bf16 on the CPU only: elsewhere these head dims take the bf16 decomposition, which
    // rounds its scores and weights and is further off f64 than the tolerance.
    let cpu = ingot::default_device() == ingot::Device::Cpu;
    let dtypes: &[DType] = if cpu {
        &[DType::F64, DType::F32, DType::BF16]
    } else {
        &[DType::F64, DType::F32]
    };
    for &dt in dtypes {
        for &(b, hq, hkv, l, s, e, ev, causal) in &cases {
            let what =
                format!("{dt} b {b} hq {hq} hkv {hkv} l {l} s {s} e {e} ev {ev} causal {causal}");
            let (q, _) = rand_array(&mut rng, &[b, hq, e, l], dt);
            // q transposed in memory: a view whose rows are not contiguous.
            let q = ingot::swapaxes(&q, -1, -2).unwrap();
            let (k, _) = rand_array(&mut rng, &[b, hkv, s, e], dt);
            let (v, _) = rand_array(&mut rng, &[b, hkv, s, ev], dt);
            let (g, _) = rand_array(&mut rng, &[b, hq, l, ev], dt);
            let mask = move || causal.then_some(SdpaMask::Causal);
            let got = grads_of(
                |q, k, v| sdpa(q, k, v, mask(), None),
                &[q.clone(), k.clone(), v.clone()],
                &g,
            );
            // (On a CUDA default device the vjp stays the decomposition's for now.)
            if cpu {
                let dot = ingot::to_dot(&got);
                assert!(
                    dot.contains("scaled_dot_product_attention_grad"),
                    "{what}: not fused"
                );
            }
            let f64s = |x: &Array| ingot::astype(x, DType::F64).unwrap();
            let want = grads_of(
                |q, k, v| sdpa_ref(q, k, v, mask(), None),
                &[f64s(&q), f64s(&k), f64s(&v)],
                &f64s(&g),
            );
            let tol = match dt {
                DType::F64 => 1e-10,
                DType::F32 => 2e-4,
                _ => 4e-2,
            };
            for (name, (a, w)) in ["dq", "dk", "dv"].iter().zip(got.iter().zip(&want)) {
                assert_eq!(a.dtype(), dt, "{what} {name}");
                assert_eq!(a.shape(), w.shape(), "{what} {name}");
                close(a, w, tol, tol, &format!("{what} {name}"));
            }
        }
    }
}

#[test]
fn the_fused_gradient_has_gradients_and_maps() {
    // Second order through AttentionGrad (its rule differentiates the decomposition's
    // gradient) and vmap of the fused gradient, both against the decomposition.
    let mut rng = Rng::new(31);
    let (q, _) = rand_array(&mut rng, &[1, 2, 3, 4], DType::F64);
    let (k, _) = rand_array(&mut rng, &[1, 1, 5, 4], DType::F64);
    let (v, _) = rand_array(&mut rng, &[1, 1, 5, 3], DType::F64);
    let (g, _) = rand_array(&mut rng, &[1, 2, 3, 3], DType::F64);
    let (w, _) = rand_array(&mut rng, &[1, 2, 3, 4], DType::F64);
    type Sdpa = fn(&Array, &Array, &Array) -> ingot::Result<Array>;
    let fused: Sdpa = |q, k, v| sdpa(q, k, v, Some(SdpaMask::Causal), None);
    let reference: Sdpa = |q, k, v| sdpa_ref(q, k, v, Some(SdpaMask::Causal), None);
    let second = |f: Sdpa| {
        let (g, w) = (g.clone(), w.clone());
        ingot::grad(
            move |xs: &[Array]| {
                let dq = grads_of(f, xs, &g).remove(0);
                ingot::sum(&ingot::multiply(&dq, &w)?, None, false)
            },
            &[0, 1, 2],
        )(&[q.clone(), k.clone(), v.clone()])
        .unwrap()
    };
    for (a, b) in second(fused).iter().zip(&second(reference)) {
        close(a, b, 1e-9, 1e-9, "second order");
    }
    // vmap over a leading batch of 3 problems.
    let (qb, _) = rand_array(&mut rng, &[3, 2, 4, 5], DType::F64);
    let (kb, _) = rand_array(&mut rng, &[3, 1, 6, 5], DType::F64);
    let (vb, _) = rand_array(&mut rng, &[3, 1, 6, 2], DType::F64);
    let (gb, _) = rand_array(&mut rng, &[3, 2, 4, 2], DType::F64);
    let per = |xs: &[Array]| Ok(grads_of(fused, &xs[..3], &xs[3]));
    let mapped = ingot::vmap(per, &[Some(0); 4], &[Some(0); 3])(&[
        qb.clone(),
        kb.clone(),
        vb.clone(),
        gb.clone(),
    ])
    .unwrap();
    let want = grads_of(reference, &[qb.clone(), kb.clone(), vb.clone()], &gb);
    for (a, b) in mapped.iter().zip(&want) {
        close(a, b, 1e-9, 1e-9, "vmap");
    }
    // Compiled, and exported then imported (the package holds the AttentionGrad node and
    // the import check re-derives its three outputs).
    let args = [qb, kb, vb, gb];
    let c = ingot::compile(per);
    for (a, b) in c.call(&args).unwrap().iter().zip(&want) {
        close(a, b, 1e-9, 1e-9, "compile");
    }
    let dir = std::env::temp_dir().join(format!("ingot-sdpa-grad-{}.ingot", std::process::id()));
    ingot::export(&dir, per, &args).unwrap();
    let p = ingot::import(&dir).unwrap();
    let _ = std::fs::remove_file(&dir);
    for (a, b) in p.call("main", &args).unwrap().iter().zip(&want) {
        close(a, b, 1e-9, 1e-9, "export");
    }
}

#[test]
fn flash_gradient_on_the_gpu_agrees_with_the_decomposition() {
    // AttentionGrad on the flash kernels (a CUDA default device, INGOT_CUDA_FLASH not 0):
    // dq, dk, dv against the decomposition's vjp in f64, for grouped heads, causal offsets
    // both ways (rows that see no key: NaN in dv), few query rows, key counts off the tiles.
    if !flash_on() {
        return;
    }
    let mut rng = Rng::new(37);
    let cases = [
        // (b, hq, hkv, l, s, e, causal)
        (1, 2, 2, 100, 100, 64, true),
        (2, 4, 2, 70, 150, 128, true),
        (1, 2, 1, 90, 40, 80, true),
        (1, 3, 3, 5, 77, 96, false),
        (2, 2, 1, 65, 65, 16, false),
    ];
    for dt in [DType::BF16, DType::F16] {
        for &(b, hq, hkv, l, s, e, causal) in &cases {
            let what = format!("{dt} b {b} hq {hq} hkv {hkv} l {l} s {s} e {e} causal {causal}");
            let (q, _) = rand_array(&mut rng, &[b, hq, l, e], dt);
            let (k, _) = rand_array(&mut rng, &[b, hkv, s, e], dt);
            let (v, _) = rand_array(&mut rng, &[b, hkv, s, e], dt);
            let (g, _) = rand_array(&mut rng, &[b, hq, l, e], dt);
            let mask = move || causal.then_some(SdpaMask::Causal);
            let before = ingot::backend::cuda::flash_launches();
            let got = grads_of(
                |q, k, v| sdpa(q, k, v, mask(), None),
                &[q.clone(), k.clone(), v.clone()],
                &g,
            );
            ingot::eval(&got).unwrap();
            assert!(
                ingot::backend::cuda::flash_launches() > before,
                "{what}: the flash kernels did not run"
            );
            let f64s = |x: &Array| ingot::astype(x, DType::F64).unwrap();
            let want = grads_of(
                |q, k, v| sdpa_ref(q, k, v, mask(), None),
                &[f64s(&q), f64s(&k), f64s(&v)],
                &f64s(&g),
            );
            for (name, (a, w)) in ["dq", "dk", "dv"].iter().zip(got.iter().zip(&want)) {
                let wv = w.to_f64_vec().unwrap();
                let big = wv
                    .iter()
                    .filter(|x| x.is_finite())
                    .fold(0.0f64, |m, x| m.max(x.abs()));
                // Weights and dS rounded to the dtype before their products: errors scale
                // with the largest gradient.
                let tol = if dt == DType::BF16 { 3e-2 } else { 5e-3 };
                assert_close(
                    &a.to_f64_vec().unwrap(),
                    &wv,
                    tol,
                    tol * big,
                    &format!("{what} {name}"),
                );
            }
        }
    }
}
