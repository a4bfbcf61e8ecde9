//! Counter-based random numbers: Threefry known answers (Random123 and JAX), determinism
//! and independence from threads, moments of every sampler over 1e5 samples, range limits,
//! bernoulli frequencies, permutations, split keys, and exact error messages.

mod common;
use ingot::backend::cpu::random::threefry2x32;
use ingot::{Array, DType};

const N: usize = 100_000;

fn moments(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    (mean, var)
}

/// Mean within 5 standard errors, variance within 5 standard errors (normal-theory
/// estimate with the distribution's kurtosis `kurt`).
fn check_moments(v: &[f64], mean: f64, var: f64, kurt: f64, what: &str) {
    let (m, s2) = moments(v);
    let n = v.len() as f64;
    let se_m = (var / n).sqrt();
    let se_v = var * ((kurt - 1.0) / n).sqrt();
    assert!(
        (m - mean).abs() < 5.0 * se_m,
        "{what}: mean {m}, want {mean} (se {se_m})"
    );
    assert!(
        (s2 - var).abs() < 5.0 * se_v,
        "{what}: var {s2}, want {var} (se {se_v})"
    );
}

#[test]
fn threefry_known_answers() {
    // Random123's kat_vectors for threefry2x32_20.
    assert_eq!(threefry2x32([0, 0], [0, 0]), [0x6b200159, 0x99ba4efe]);
    assert_eq!(
        threefry2x32([0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff]),
        [0x1cb996fc, 0xbb002be7]
    );
    assert_eq!(
        threefry2x32([0x13198a2e, 0x03707344], [0x243f6a88, 0x85a308d3]),
        [0xc4923a9c, 0x483df7a0]
    );
}

#[test]
fn split_matches_jax() {
    // jax.random.split(jax.random.PRNGKey(0)) (threefry, jax_threefry_partitionable off).
    let k = ingot::random::key(0);
    assert_eq!(k.to_vec::<u32>().unwrap(), vec![0, 0]);
    let s = ingot::random::split(&k, 2).unwrap();
    assert_eq!(s.shape(), &[2, 2]);
    assert_eq!(
        s.to_vec::<u32>().unwrap(),
        vec![4146024105, 967050713, 2718843009, 1272950319]
    );
    assert_eq!(ingot::random::key(42).to_vec::<u32>().unwrap(), vec![0, 42]);
    assert_eq!(
        ingot::random::key(0x1_0000_0007).to_vec::<u32>().unwrap(),
        vec![1, 7]
    );
}

/// The documented layout: counters 0..n padded with a 0 when n is odd, pair i = (i, i + h).
fn reference_bits(key: [u32; 2], n: usize) -> Vec<u32> {
    let h = n.div_ceil(2);
    let mut ctr: Vec<u32> = (0..n as u32).collect();
    if n % 2 == 1 {
        ctr.push(0);
    }
    let mut out = vec![0u32; 2 * h];
    for i in 0..h {
        let [a, b] = threefry2x32(key, [ctr[i], ctr[i + h]]);
        out[i] = a;
        out[i + h] = b;
    }
    out.truncate(n);
    out
}

#[test]
fn random_bits_layout_and_determinism() {
    let key = ingot::random::key(0xdead_beef_1234);
    let kv = [0xdead, 0xbeef_1234];
    // small (one thread), odd, even, and large enough for the parallel path
    for shape in [
        vec![],
        vec![0],
        vec![1],
        vec![7],
        vec![3, 4],
        vec![2, 3, 5],
        vec![300_001],
    ] {
        let n: usize = shape.iter().product();
        let b = ingot::random::random_bits(&key, &shape).unwrap();
        assert_eq!(b.shape(), shape.as_slice());
        assert_eq!(b.dtype(), DType::U32);
        let got = b.to_vec::<u32>().unwrap();
        assert_eq!(got, reference_bits(kv, n), "{shape:?}");
        // the same key and shape give the same bits again
        let again = ingot::random::random_bits(&key, &shape)
            .unwrap()
            .to_vec::<u32>()
            .unwrap();
        assert_eq!(got, again);
    }
    // a different key gives different bits
    let a = ingot::random::random_bits(&ingot::random::key(1), &[64])
        .unwrap()
        .to_vec::<u32>()
        .unwrap();
    let b = ingot::random::random_bits(&ingot::random::key(2), &[64])
        .unwrap()
        .to_vec::<u32>()
        .unwrap();
    assert_ne!(a, b);
    // the bits look uniform: each of the 32 bit positions is set about half the time
    let big = ingot::random::random_bits(&ingot::random::key(3), &[N])
        .unwrap()
        .to_vec::<u32>()
        .unwrap();
    for bit in 0..32 {
        let ones = big.iter().filter(|&&x| (x >> bit) & 1 == 1).count() as f64;
        assert!(
            (ones / N as f64 - 0.5).abs() < 5.0 * 0.5 / (N as f64).sqrt(),
            "bit {bit}"
        );
    }
}

#[test]
fn split_keys_are_distinct_and_usable() {
    let keys = ingot::random::split(&ingot::random::key(7), 100).unwrap();
    let kv = keys.to_vec::<u32>().unwrap();
    let mut pairs: Vec<(u32, u32)> = kv.chunks(2).map(|c| (c[0], c[1])).collect();
    pairs.sort();
    pairs.dedup();
    assert_eq!(pairs.len(), 100);
    // a row of a split (a strided view) works as a key
    let k3 = ingot::random::key_at(&keys, 3).unwrap();
    assert_eq!(k3.to_vec::<u32>().unwrap(), vec![kv[6], kv[7]]);
    let x = ingot::random::uniform(&k3, &[5], 0.0, 1.0, DType::F32)
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    let y = ingot::random::uniform(
        &ingot::random::key_at(&keys, 4).unwrap(),
        &[5],
        0.0,
        1.0,
        DType::F32,
    )
    .unwrap()
    .to_vec::<f32>()
    .unwrap();
    assert_ne!(x, y);
    let kt = ingot::transpose(&keys, None).unwrap();
    assert_eq!(
        ingot::random::key_at(&kt, 0).unwrap_err().to_string(),
        "[key_at] keys must be a uint32 array of shape (num, 2), got shape (2, 100) uint32"
    );
}

#[test]
fn uniform_moments_and_range() {
    let key = ingot::random::key(10);
    for dtype in [DType::F16, DType::BF16, DType::F32, DType::F64] {
        for (lo, hi) in [(0.0, 1.0), (-3.0, 5.0), (0.999, 1.0)] {
            if dtype == DType::BF16 && lo == 0.999 {
                continue; // no bfloat16 value lies in that interval
            }
            let what = format!("uniform {dtype} [{lo}, {hi})");
            let u = ingot::random::uniform(&key, &[N], lo, hi, dtype).unwrap();
            assert_eq!(u.dtype(), dtype);
            let v = u.to_f64_vec().unwrap();
            assert!(v.iter().all(|&x| (lo..hi).contains(&x)), "{what}");
            if hi - lo > 0.5 {
                let w = hi - lo;
                // 16-bit floats round the samples: allow the quantization in the variance
                let q = if dtype.size() == 2 { 0.02 * w * w } else { 0.0 };
                let (m, s2) = moments(&v);
                assert!(
                    (m - (lo + hi) / 2.0).abs() < 5.0 * w / (12.0 * N as f64).sqrt() + 0.01 * w,
                    "{what}: mean {m}"
                );
                assert!(
                    (s2 - w * w / 12.0).abs() < 5.0 * w * w / 12.0 * (0.8 / N as f64).sqrt() + q,
                    "{what}: var {s2}"
                );
            }
        }
    }
    // the f32 path is exactly low + (high - low) * (bits >> 8) / 2^24
    let bits = ingot::random::random_bits(&key, &[1000])
        .unwrap()
        .to_vec::<u32>()
        .unwrap();
    let u = ingot::random::uniform(&key, &[1000], 0.0, 1.0, DType::F32)
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    for (b, x) in bits.iter().zip(&u) {
        assert_eq!(*x, (b >> 8) as f32 / 16_777_216.0);
    }
    // shapes: 0-d and empty
    assert_eq!(
        ingot::random::uniform(&key, &[], 0.0, 1.0, DType::F32)
            .unwrap()
            .shape(),
        &[] as &[usize]
    );
    assert_eq!(
        ingot::random::uniform(&key, &[0, 3], 0.0, 1.0, DType::F32)
            .unwrap()
            .size(),
        0
    );
}

#[test]
fn uniform_f16_never_reaches_high() {
    // Rounding to f16 pushes values near the top up to `high`: they must stay below.
    let v = ingot::random::uniform(&ingot::random::key(5), &[N], 0.0, 1000.0, DType::F16)
        .unwrap()
        .to_f64_vec()
        .unwrap();
    assert!(v.iter().all(|&x| (0.0..1000.0).contains(&x)));
    assert!(v.iter().cloned().fold(0.0, f64::max) > 999.0);
}

#[test]
fn normal_moments() {
    for dtype in [DType::F16, DType::BF16, DType::F32, DType::F64] {
        for (loc, scale) in [(0.0, 1.0), (3.0, 0.5)] {
            let v = ingot::random::normal(&ingot::random::key(20), &[N], loc, scale, dtype)
                .unwrap()
                .to_f64_vec()
                .unwrap();
            assert!(v.iter().all(|x| x.is_finite()));
            let var = scale * scale;
            // bf16 keeps 8 significant bits: its rounding adds variance and shifts the mean
            let (m, s2) = moments(&v);
            let slack = if dtype == DType::BF16 {
                0.01 * (loc.abs() + scale)
            } else {
                0.0
            };
            assert!(
                (m - loc).abs() < 5.0 * (var / N as f64).sqrt() + slack,
                "normal {dtype}: mean {m}"
            );
            assert!(
                (s2 - var).abs() < 5.0 * var * (2.0 / N as f64).sqrt() + slack,
                "normal {dtype}: var {s2}"
            );
        }
    }
    // the tails reach past 4 sigma and the share within 1 sigma is about 68.27%
    let v = ingot::random::normal(&ingot::random::key(21), &[N], 0.0, 1.0, DType::F32)
        .unwrap()
        .to_f64_vec()
        .unwrap();
    assert!(v.iter().any(|&x| x.abs() > 4.0));
    let within = v.iter().filter(|x| x.abs() < 1.0).count() as f64 / N as f64;
    assert!((within - 0.682_689).abs() < 0.008, "{within}");
    check_moments(&v, 0.0, 1.0, 3.0, "normal f32 key 21");
}

#[test]
fn truncated_normal_bounds_and_moments() {
    for dtype in [DType::F32, DType::F64, DType::F16] {
        let v = ingot::random::truncated_normal(&ingot::random::key(30), -1.0, 2.0, &[N], dtype)
            .unwrap()
            .to_f64_vec()
            .unwrap();
        assert!(v.iter().all(|&x| x > -1.0 && x < 2.0), "{dtype}");
        // mean of N(0,1) truncated to (a, b): (phi(a) - phi(b)) / (Phi(b) - Phi(a))
        let phi = |x: f64| (-x * x / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt();
        let cdf = |x: f64| 0.5 * (1.0 + libm_erf(x / std::f64::consts::SQRT_2));
        let z = cdf(2.0) - cdf(-1.0);
        let mean = (phi(-1.0) - phi(2.0)) / z;
        let var = 1.0 + (-phi(-1.0) + (-2.0) * phi(2.0)) / z - mean * mean;
        let (m, s2) = moments(&v);
        assert!((m - mean).abs() < 0.01, "{dtype}: mean {m} want {mean}");
        assert!((s2 - var).abs() < 0.01, "{dtype}: var {s2} want {var}");
    }
    // half-infinite: mean sqrt(2/pi)
    let v = ingot::random::truncated_normal(
        &ingot::random::key(31),
        0.0,
        f64::INFINITY,
        &[N],
        DType::F32,
    )
    .unwrap()
    .to_f64_vec()
    .unwrap();
    assert!(v.iter().all(|&x| x > 0.0 && x.is_finite()));
    let (m, _) = moments(&v);
    assert!(
        (m - (2.0 / std::f64::consts::PI).sqrt()).abs() < 0.01,
        "{m}"
    );
}

fn libm_erf(x: f64) -> f64 {
    // Simpson integration of 2/sqrt(pi) exp(-t^2): accurate to ~1e-12 here.
    let n = 2000;
    let h = x / n as f64;
    let f = |t: f64| (-t * t).exp();
    let mut s = f(0.0) + f(x);
    for i in 1..n {
        s += if i % 2 == 1 { 4.0 } else { 2.0 } * f(i as f64 * h);
    }
    s * h / 3.0 * 2.0 / std::f64::consts::PI.sqrt()
}

#[test]
fn bernoulli_frequencies() {
    let key = ingot::random::key(40);
    for p in [0.0, 0.3, 0.5, 0.97, 1.0] {
        let b = ingot::random::bernoulli(&key, p, Some(&[N])).unwrap();
        assert_eq!(b.dtype(), DType::Bool);
        let ones = b.to_vec::<bool>().unwrap().iter().filter(|&&x| x).count() as f64 / N as f64;
        let se = (p * (1.0 - p) / N as f64).sqrt();
        assert!((ones - p).abs() <= 5.0 * se, "p {p}: frequency {ones}");
    }
    // p as an array, broadcast along rows: each column has its own frequency
    let p = Array::from_slice(&[0.1f32, 0.5, 0.9], &[3]).unwrap();
    let b = ingot::random::bernoulli(&key, &p, Some(&[N / 3, 3]))
        .unwrap()
        .to_vec::<bool>()
        .unwrap();
    for (j, &pj) in [0.1, 0.5, 0.9].iter().enumerate() {
        let f = b.iter().skip(j).step_by(3).filter(|&&x| x).count() as f64 / (N / 3) as f64;
        assert!(
            (f - pj).abs() < 5.0 * (pj * (1.0 - pj) / (N / 3) as f64).sqrt(),
            "col {j}: {f}"
        );
    }
    // shape defaults to p's
    assert_eq!(
        ingot::random::bernoulli(&key, &p, None).unwrap().shape(),
        &[3]
    );
    assert_eq!(
        ingot::random::bernoulli(&key, &p, Some(&[2]))
            .unwrap_err()
            .to_string(),
        "[bernoulli] shapes (3,) and (2,) cannot be broadcast together"
    );
    assert_eq!(
        ingot::random::bernoulli(&key, &p, Some(&[3, 1]))
            .unwrap_err()
            .to_string(),
        "[bernoulli] p of shape (3,) cannot be broadcast to shape (3, 1)"
    );
}

#[test]
fn randint_range_and_uniformity() {
    let key = ingot::random::key(50);
    let cases: Vec<(i64, i64, DType)> = vec![
        (0, 10, DType::I32),
        (-5, 3, DType::I8),
        (-128, 128, DType::I8),
        (0, 256, DType::U8),
        (1000, 1001, DType::U16),
        (-(1 << 40), 1 << 40, DType::I64),
        (0, i64::MAX, DType::U64),
        (i64::MIN, i64::MAX, DType::I64),
    ];
    for (lo, hi, dtype) in cases {
        let r = ingot::random::randint(&key, lo, hi, &[N], dtype).unwrap();
        assert_eq!(r.dtype(), dtype);
        let v: Vec<i128> = ingot::dispatch_dtype!(dtype, T => r
            .to_vec::<T>()
            .unwrap()
            .iter()
            .map(|&x| <T as ingot::Element>::to_f64(x) as i128)
            .collect());
        let v: Vec<i128> = if dtype.size() == 8 {
            // exact for 64-bit types
            ingot::astype(&r, DType::I64)
                .unwrap()
                .to_vec::<i64>()
                .unwrap()
                .iter()
                .map(|&x| {
                    if dtype == DType::U64 {
                        x as u64 as i128
                    } else {
                        x as i128
                    }
                })
                .collect()
        } else {
            v
        };
        assert!(
            v.iter().all(|&x| (lo as i128..hi as i128).contains(&x)),
            "{dtype} [{lo}, {hi})"
        );
        let span = (hi as i128 - lo as i128) as f64;
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / N as f64;
        let want = lo as f64 + (span - 1.0) / 2.0;
        let sd = ((span * span - 1.0) / 12.0).sqrt();
        assert!(
            (mean - want).abs() <= 5.0 * sd / (N as f64).sqrt() + 1e-9 * span,
            "{dtype}: mean {mean} want {want}"
        );
        if span <= 256.0 {
            // every value shows up
            let mut seen = vec![false; span as usize];
            for &x in &v {
                seen[(x - lo as i128) as usize] = true;
            }
            assert!(seen.iter().all(|&s| s), "{dtype} [{lo}, {hi})");
        }
    }
    let err = |r: ingot::Result<Array>| r.unwrap_err().to_string();
    assert_eq!(
        err(ingot::random::randint(&key, 3, 3, &[2], DType::I32)),
        "[randint] low (3) must be less than high (3)"
    );
    assert_eq!(
        err(ingot::random::randint(&key, -1, 3, &[2], DType::U8)),
        "[randint] [-1, 3) does not fit in uint8"
    );
    assert_eq!(
        err(ingot::random::randint(&key, 0, 300, &[2], DType::I8)),
        "[randint] [0, 300) does not fit in int8"
    );
    assert_eq!(
        err(ingot::random::randint(&key, 0, 3, &[2], DType::F32)),
        "[randint] dtype must be an integer type, got float32"
    );
}

#[test]
fn gumbel_moments() {
    for dtype in [DType::F32, DType::F64, DType::BF16] {
        let v = ingot::random::gumbel(&ingot::random::key(60), &[N], dtype).unwrap();
        assert_eq!(v.dtype(), dtype);
        let v = v.to_f64_vec().unwrap();
        assert!(v.iter().all(|x| x.is_finite()));
        let (m, s2) = moments(&v);
        let euler = 0.577_215_664_9;
        let var = std::f64::consts::PI.powi(2) / 6.0;
        let slack = if dtype == DType::BF16 { 0.02 } else { 0.0 };
        assert!(
            (m - euler).abs() < 5.0 * (var / N as f64).sqrt() + slack,
            "{dtype}: mean {m}"
        );
        // excess kurtosis of the Gumbel is 12/5: kurtosis 5.4
        assert!(
            (s2 - var).abs() < 5.0 * var * (4.4 / N as f64).sqrt() + slack * 3.0,
            "{dtype}: var {s2}"
        );
    }
}

#[test]
fn permutation_is_a_permutation() {
    for n in [0usize, 1, 2, 10, 1000, 70_000] {
        let p = ingot::random::permutation(&ingot::random::key(70), n).unwrap();
        assert_eq!(p.shape(), &[n]);
        assert_eq!(p.dtype(), DType::I64);
        let mut v = p.to_vec::<i64>().unwrap();
        let moved = v
            .iter()
            .enumerate()
            .filter(|(i, &x)| *i as i64 != x)
            .count();
        if n >= 10 {
            assert!(moved > 0, "n {n}: identity");
        }
        v.sort();
        assert_eq!(v, (0..n as i64).collect::<Vec<_>>());
    }
    let a = ingot::random::permutation(&ingot::random::key(71), 50)
        .unwrap()
        .to_vec::<i64>()
        .unwrap();
    let b = ingot::random::permutation(&ingot::random::key(72), 50)
        .unwrap()
        .to_vec::<i64>()
        .unwrap();
    assert_ne!(a, b);
    // position of element 0 is uniform over 4 places
    let mut counts = [0usize; 4];
    for s in 0..4000u64 {
        let p = ingot::random::permutation(&ingot::random::key(s), 4)
            .unwrap()
            .to_vec::<i64>()
            .unwrap();
        counts[p.iter().position(|&x| x == 0).unwrap()] += 1;
    }
    for c in counts {
        assert!(
            (c as f64 - 1000.0).abs() < 5.0 * (4000.0f64 * 0.25 * 0.75).sqrt(),
            "{counts:?}"
        );
    }
}

#[test]
fn bad_calls_give_exact_errors() {
    let err = |r: ingot::Result<Array>| r.unwrap_err().to_string();
    let bad = Array::from_slice(&[1.0f32, 2.0], &[2]).unwrap();
    assert_eq!(
        err(ingot::random::random_bits(&bad, &[3])),
        "[random_bits] key must be a uint32 array of shape (2,), got shape (2,) float32"
    );
    let bad = Array::from_slice(&[1u32, 2, 3], &[3]).unwrap();
    assert_eq!(
        err(ingot::random::uniform(&bad, &[3], 0.0, 1.0, DType::F32)),
        "[uniform] key must be a uint32 array of shape (2,), got shape (3,) uint32"
    );
    let k = ingot::random::key(0);
    assert_eq!(
        err(ingot::random::random_bits(&k, &[1 << 16, 1 << 16])),
        "[random_bits] shape (65536, 65536) has 4294967296 elements; one key gives at most 2^32 - 1"
    );
    assert_eq!(
        err(ingot::random::random_bits(&k, &[usize::MAX, 2])),
        format!(
            "[random_bits] shape ({}, 2) has too many elements",
            usize::MAX
        )
    );
    assert_eq!(
        err(ingot::random::uniform(&k, &[3], 1.0, 1.0, DType::F32)),
        "[uniform] low (1) and high (1) must be finite with low < high"
    );
    assert_eq!(
        err(ingot::random::uniform(
            &k,
            &[3],
            0.0,
            f64::INFINITY,
            DType::F32
        )),
        "[uniform] low (0) and high (inf) must be finite with low < high"
    );
    assert_eq!(
        err(ingot::random::uniform(&k, &[3], 0.0, 1.0, DType::I32)),
        "[uniform] dtype must be a float type, got int32"
    );
    assert_eq!(
        err(ingot::random::uniform(&k, &[3], 1.0001, 1.0002, DType::F16)),
        "[uniform] no float16 value lies in [1.0001, 1.0002)"
    );
    assert_eq!(
        err(ingot::random::normal(&k, &[3], 0.0, 1.0, DType::C64)),
        "[normal] dtype must be a float type, got complex64"
    );
    assert_eq!(
        err(ingot::random::normal(&k, &[3], f64::NAN, 1.0, DType::F32)),
        "[normal] loc (NaN) and scale (1) must be finite"
    );
    assert_eq!(
        err(ingot::random::truncated_normal(
            &k,
            2.0,
            1.0,
            &[3],
            DType::F32
        )),
        "[truncated_normal] lower (2) must be less than upper (1)"
    );
    assert_eq!(
        err(ingot::random::gumbel(&k, &[3], DType::U8)),
        "[gumbel] dtype must be a float type, got uint8"
    );
    let c = Array::from_slice(&[ingot::c64::new(0.5, 0.0)], &[1]).unwrap();
    assert_eq!(
        err(ingot::random::bernoulli(&k, &c, None)),
        "[bernoulli] p must be real, got complex64"
    );
}

#[test]
fn categorical_follows_the_probabilities() {
    let key = ingot::random::key(11);
    let p = [0.1f64, 0.2, 0.7];
    let logits = Array::from_slice(&p.map(f64::ln).map(|v| v as f32), &[3]).unwrap();
    let n = 100_000;
    let s = ingot::random::categorical(&key, &logits, -1, Some(n)).unwrap();
    assert_eq!(s.shape(), &[n]);
    assert_eq!(s.dtype(), DType::I64);
    let v = s.to_vec::<i64>().unwrap();
    for (c, &pc) in p.iter().enumerate() {
        let f = v.iter().filter(|&&x| x == c as i64).count() as f64 / n as f64;
        // 5 standard deviations of a binomial frequency
        assert!(
            (f - pc).abs() < 5.0 * (pc * (1.0 - pc) / n as f64).sqrt(),
            "class {c}: {f} vs {pc}"
        );
    }
    // batched logits along axis 0, one sample each
    let l2 = ingot::log(&Array::from_slice(&[0.5f32, 0.5, 1e-30, 1.0], &[2, 2]).unwrap()).unwrap();
    let s2 = ingot::random::categorical(&key, &l2, 0, None).unwrap();
    assert_eq!(s2.shape(), &[2]);
    assert_eq!(s2.to_vec::<i64>().unwrap()[1], 1);
    let e = ingot::random::categorical(&key, &Array::from_slice(&[1i32], &[1]).unwrap(), 0, None)
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("[categorical] logits must be a float array"),
        "{e}"
    );
}

#[test]
fn permutation_of_an_array_permutes_rows() {
    let key = ingot::random::key(5);
    let a = Array::from_slice(&(0..12).map(|x| x as f32).collect::<Vec<_>>(), &[4, 3]).unwrap();
    let p = ingot::random::permutation(&key, &a).unwrap();
    assert_eq!(p.shape(), &[4, 3]);
    let v = p.to_vec::<f32>().unwrap();
    let mut firsts: Vec<i32> = v
        .chunks(3)
        .map(|r| {
            assert_eq!([r[1] - r[0], r[2] - r[0]], [1.0, 2.0], "rows stay whole");
            r[0] as i32
        })
        .collect();
    firsts.sort();
    assert_eq!(firsts, vec![0, 3, 6, 9]);
    assert!(ingot::random::permutation(&key, &Array::scalar(1.0f32)).is_err());
}
