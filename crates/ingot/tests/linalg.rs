//! Linear algebra against f64 references (matmul family, einsum) and reconstructions
//! (decompositions): every dtype, batched, transposed and strided inputs, empty shapes, and
//! the error messages of bad calls.

mod common;
use common::*;
use ingot::{Array, DType, NormOrd, TensorAxes};

// ---- reference helpers ------------------------------------------------------------------------

fn layouts(vals: &[f64], shape: &[usize], dtype: DType) -> Vec<(&'static str, Array)> {
    let mut v = vec![
        ("contiguous", array_from_f64(vals, shape, dtype)),
        ("strided", noncontiguous(vals, shape, dtype)),
    ];
    if shape.len() >= 2 {
        v.push(("transposed", transposed(vals, shape, dtype)));
    }
    v
}

/// Row-major index -> multi-index.
fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        idx[d] = i % shape[d].max(1);
        i /= shape[d].max(1);
    }
    idx
}

/// Element of `vals`/`shape` at a broadcast multi-index (trailing alignment).
fn at_bcast(vals: &[f64], shape: &[usize], idx: &[usize]) -> f64 {
    let off = idx.len() - shape.len();
    let mut flat = 0;
    for d in 0..shape.len() {
        let i = if shape[d] == 1 { 0 } else { idx[off + d] };
        flat = flat * shape[d] + i;
    }
    vals[flat]
}

fn bcast_shape(a: &[usize], b: &[usize]) -> Vec<usize> {
    let n = a.len().max(b.len());
    (0..n)
        .map(|i| {
            let x = if i + a.len() >= n {
                a[i + a.len() - n]
            } else {
                1
            };
            let y = if i + b.len() >= n {
                b[i + b.len() - n]
            } else {
                1
            };
            if x == 1 {
                y
            } else {
                x
            }
        })
        .collect()
}

/// NumPy matmul in f64 (or any accumulation `f`), 1-D rules and batch broadcasting.
fn ref_matmul_with(
    a: &[f64],
    sa: &[usize],
    b: &[f64],
    sb: &[usize],
    zero: f64,
    mac: impl Fn(f64, f64, f64) -> f64,
) -> (Vec<f64>, Vec<usize>) {
    let sa2: Vec<usize> = if sa.len() == 1 {
        vec![1, sa[0]]
    } else {
        sa.to_vec()
    };
    let sb2: Vec<usize> = if sb.len() == 1 {
        vec![sb[0], 1]
    } else {
        sb.to_vec()
    };
    let (m, k) = (sa2[sa2.len() - 2], sa2[sa2.len() - 1]);
    let n = sb2[sb2.len() - 1];
    let batch = bcast_shape(&sa2[..sa2.len() - 2], &sb2[..sb2.len() - 2]);
    let nb: usize = batch.iter().product();
    let mut out = Vec::with_capacity(nb * m * n);
    for bi in 0..nb {
        let bidx = unravel(bi, &batch);
        for i in 0..m {
            for j in 0..n {
                let mut acc = zero;
                for p in 0..k {
                    let mut ia = bidx.clone();
                    ia.extend([i, p]);
                    let mut ib = bidx.clone();
                    ib.extend([p, j]);
                    acc = mac(acc, at_bcast(a, &sa2, &ia), at_bcast(b, &sb2, &ib));
                }
                out.push(acc);
            }
        }
    }
    let mut shape = batch;
    if sa.len() > 1 {
        shape.push(m);
    }
    if sb.len() > 1 {
        shape.push(n);
    }
    (out, shape)
}

fn ref_matmul(a: &[f64], sa: &[usize], b: &[f64], sb: &[usize]) -> (Vec<f64>, Vec<usize>) {
    ref_matmul_with(a, sa, b, sb, 0.0, |acc, x, y| acc + x * y)
}

/// An integer wrapped to a dtype's range, as NumPy's integer arithmetic does.
fn wrap(v: i128, dtype: DType) -> f64 {
    match dtype {
        DType::U8 => v as u8 as f64,
        DType::U16 => v as u16 as f64,
        DType::U32 => v as u32 as f64,
        DType::U64 => v as u64 as f64,
        DType::I8 => v as i8 as f64,
        DType::I16 => v as i16 as f64,
        DType::I32 => v as i32 as f64,
        DType::I64 => v as i64 as f64,
        _ => v as f64,
    }
}

/// Square matrices of a batched row-major array.
fn split(vals: &[f64], r: usize, c: usize) -> Vec<Vec<f64>> {
    if r * c == 0 {
        return vec![];
    }
    vals.chunks(r * c).map(|x| x.to_vec()).collect()
}

fn mm(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        for p in 0..k {
            for j in 0..n {
                c[i * n + j] += a[i * k + p] * b[p * n + j];
            }
        }
    }
    c
}

fn tr(a: &[f64], r: usize, c: usize) -> Vec<f64> {
    let mut t = vec![0.0; r * c];
    for i in 0..r {
        for j in 0..c {
            t[j * r + i] = a[i * c + j];
        }
    }
    t
}

fn eye_v(n: usize) -> Vec<f64> {
    let mut e = vec![0.0; n * n];
    for i in 0..n {
        e[i * n + i] = 1.0;
    }
    e
}

/// A random symmetric positive-definite matrix batch: x x^T + n I.
fn spd(rng: &mut Rng, batch: usize, n: usize) -> Vec<f64> {
    let mut out = Vec::new();
    for _ in 0..batch {
        let x: Vec<f64> = (0..n * n).map(|_| rng.normal()).collect();
        let mut a = mm(&x, &tr(&x, n, n), n, n, n);
        for i in 0..n {
            a[i * n + i] += n as f64;
        }
        out.extend(a);
    }
    out
}

/// Determinant by Gaussian elimination with partial pivoting in f64.
fn ref_det(a: &[f64], n: usize) -> f64 {
    let mut m = a.to_vec();
    let mut det = 1.0;
    for c in 0..n {
        let p = (c..n)
            .max_by(|&i, &j| m[i * n + c].abs().partial_cmp(&m[j * n + c].abs()).unwrap())
            .unwrap();
        if m[p * n + c] == 0.0 {
            return 0.0;
        }
        if p != c {
            for j in 0..n {
                m.swap(p * n + j, c * n + j);
            }
            det = -det;
        }
        det *= m[c * n + c];
        for i in c + 1..n {
            let f = m[i * n + c] / m[c * n + c];
            for j in c..n {
                m[i * n + j] -= f * m[c * n + j];
            }
        }
    }
    det
}

fn vals(a: &Array) -> Vec<f64> {
    a.to_f64_vec().unwrap()
}

fn err(r: ingot::Result<impl std::fmt::Debug>) -> String {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.to_string(),
    }
}

/// Evaluation-time error (the op itself is fine, the values are not).
fn eval_err(a: &Array) -> String {
    a.eval().unwrap_err().to_string()
}

// ---- matmul -----------------------------------------------------------------------------------

fn matmul_shapes() -> Vec<(Vec<usize>, Vec<usize>)> {
    vec![
        (vec![3, 4], vec![4, 5]),
        (vec![4], vec![4, 5]),
        (vec![3, 4], vec![4]),
        (vec![4], vec![4]),
        (vec![2, 3, 4], vec![4, 5]),
        (vec![2, 1, 3, 4], vec![3, 4, 2]),
        (vec![0, 4], vec![4, 5]),
        (vec![3, 0], vec![0, 5]),
        (vec![2, 0, 3], vec![3, 2]),
        (vec![17, 33], vec![33, 9]),
        (vec![1, 1], vec![1, 1]),
    ]
}

#[test]
fn matmul_floats_match_reference() {
    let mut rng = Rng::new(1);
    for dt in [DType::F32, DType::F64, DType::F16, DType::BF16, DType::C64] {
        for (sa, sb) in matmul_shapes() {
            let (_, va) = rand_array(&mut rng, &sa, dt);
            let (_, vb) = rand_array(&mut rng, &sb, dt);
            let (want, wshape) = ref_matmul(&va, &sa, &vb, &sb);
            let k = sa[sa.len() - 1] as f64;
            let atol = tol(dt).max(1e-6) * 8.0 * (k + 1.0);
            for (la, a) in layouts(&va, &sa, dt) {
                for (lb, b) in layouts(&vb, &sb, dt) {
                    let c = ingot::matmul(&a, &b).unwrap();
                    assert_eq!(c.shape(), &wshape[..], "{dt} {sa:?}@{sb:?}");
                    assert_eq!(c.dtype(), dt);
                    let what = format!("matmul {dt} {sa:?}({la}) @ {sb:?}({lb})");
                    assert_close(&vals(&c), &want, tol(dt), atol, &what);
                }
            }
        }
    }
}

#[test]
fn matmul_complex_uses_imaginary_parts() {
    let a: Vec<ingot::c64> = (0..6)
        .map(|i| ingot::c64::new(i as f32, 1.0 - i as f32))
        .collect();
    let b: Vec<ingot::c64> = (0..6)
        .map(|i| ingot::c64::new(0.5 * i as f32, 2.0))
        .collect();
    let x = Array::from_slice(&a, &[2, 3]).unwrap();
    let y = Array::from_slice(&b, &[3, 2]).unwrap();
    let got = ingot::matmul(&x, &y)
        .unwrap()
        .to_vec::<ingot::c64>()
        .unwrap();
    for i in 0..2 {
        for j in 0..2 {
            let mut want = ingot::c64::new(0.0, 0.0);
            for p in 0..3 {
                want += a[i * 3 + p] * b[p * 2 + j];
            }
            let g = got[i * 2 + j];
            assert!((g - want).norm() < 1e-4, "({i},{j}): {g} vs {want}");
        }
    }
}

#[test]
fn matmul_integers_wrap_and_bool_is_or_of_ands() {
    let mut rng = Rng::new(2);
    for dt in INTS.iter().copied().chain([DType::Bool]) {
        for (sa, sb) in matmul_shapes()
            .into_iter()
            .chain([(vec![3, 40, 600], vec![600, 530])])
        {
            let (_, va) = rand_array(&mut rng, &sa, dt);
            let (_, vb) = rand_array(&mut rng, &sb, dt);
            let (want, _) = if dt == DType::Bool {
                ref_matmul_with(&va, &sa, &vb, &sb, 0.0, |acc, x, y| {
                    if acc != 0.0 || (x != 0.0 && y != 0.0) {
                        1.0
                    } else {
                        0.0
                    }
                })
            } else {
                let (w, s) = ref_matmul(&va, &sa, &vb, &sb);
                (w.iter().map(|&v| wrap(v as i128, dt)).collect(), s)
            };
            for (la, a) in layouts(&va, &sa, dt) {
                for (lb, b) in layouts(&vb, &sb, dt).into_iter().take(2) {
                    let c = ingot::matmul(&a, &b).unwrap();
                    assert_eq!(c.dtype(), dt);
                    let what = format!("matmul {dt} {sa:?}({la}) @ {sb:?}({lb})");
                    assert_close(&vals(&c), &want, 0.0, 0.0, &what);
                }
            }
        }
    }
}

#[test]
fn matmul_large_and_batched_paths() {
    let mut rng = Rng::new(3);
    // One big matrix (threaded gemm), a transposed operand, and a batch of small ones
    // (threaded over the batch).
    for (sa, sb) in [
        (vec![300, 257], vec![257, 190]),
        (vec![64, 8, 8], vec![64, 8, 8]),
        (vec![5, 130, 140], vec![140, 120]),
    ] {
        for dt in [DType::F32, DType::F64] {
            let (_, va) = rand_array(&mut rng, &sa, dt);
            let (_, vb) = rand_array(&mut rng, &sb, dt);
            let (want, _) = ref_matmul(&va, &sa, &vb, &sb);
            let k = sa[sa.len() - 1] as f64;
            for (la, a) in layouts(&va, &sa, dt) {
                let b = transposed(&vb, &sb, dt);
                let c = ingot::matmul(&a, &b).unwrap();
                let what = format!("matmul {dt} {sa:?}({la}) @ {sb:?}(transposed)");
                assert_close(&vals(&c), &want, 1e-4, 1e-5 * k * 8.0, &what);
            }
        }
    }
}

#[test]
fn matmul_promotes_and_handles_special_values() {
    let a = Array::from_slice(&[1i32, 2, 3, 4], &[2, 2]).unwrap();
    let b = Array::from_slice(&[0.5f32, 1.0, 1.5, 2.0], &[2, 2]).unwrap();
    let c = ingot::matmul(&a, &b).unwrap();
    assert_eq!(c.dtype(), DType::F32);
    assert_eq!(vals(&c), vec![3.5, 5.0, 7.5, 11.0]);
    // inf and NaN propagate as in a plain sum of products.
    let x = Array::from_slice(&[f32::INFINITY, 1.0, f32::NAN, 1.0], &[2, 2]).unwrap();
    let y = Array::from_slice(&[1.0f32, 0.0, 1.0, 1.0], &[2, 2]).unwrap();
    let got = vals(&ingot::matmul(&x, &y).unwrap());
    assert_eq!(got[0], f64::INFINITY);
    assert!(got[1].is_nan(), "inf * 0 is NaN: {got:?}");
    assert!(got[2].is_nan() && got[3].is_nan());
}

#[test]
fn matmul_errors() {
    let a = ingot::zeros(&[2, 3], DType::F32).unwrap();
    let b = ingot::zeros(&[4, 5], DType::F32).unwrap();
    assert_eq!(
        err(ingot::matmul(&a, &b)),
        "[matmul] inner dimensions differ: (2, 3) @ (4, 5)"
    );
    let s = Array::scalar(1.0f32);
    assert_eq!(
        err(ingot::matmul(&s, &a)),
        "[matmul] operands must be at least 1-d, got () @ (2, 3)"
    );
    let x = ingot::zeros(&[2, 2, 3], DType::F32).unwrap();
    let y = ingot::zeros(&[3, 3, 4], DType::F32).unwrap();
    assert!(err(ingot::matmul(&x, &y)).starts_with("[matmul]"));
}

#[test]
fn addmm_outer_inner_kron() {
    let mut rng = Rng::new(4);
    let (a, va) = rand_array(&mut rng, &[3, 4], DType::F64);
    let (b, vb) = rand_array(&mut rng, &[4, 2], DType::F64);
    let (c, vc) = rand_array(&mut rng, &[2], DType::F64);
    let got = ingot::addmm(&c, &a, &b, 0.5, -2.0).unwrap();
    let (ab, _) = ref_matmul(&va, &[3, 4], &vb, &[4, 2]);
    let want: Vec<f64> = (0..6).map(|i| 0.5 * ab[i] - 2.0 * vc[i % 2]).collect();
    assert_close(&vals(&got), &want, 1e-12, 1e-12, "addmm");

    // outer flattens both operands
    let (x, vx) = rand_array(&mut rng, &[2, 3], DType::F32);
    let (y, vy) = rand_array(&mut rng, &[4], DType::I32);
    let o = ingot::outer(&x, &y).unwrap();
    assert_eq!(o.shape(), &[6, 4]);
    let want: Vec<f64> = (0..24).map(|i| vx[i / 4] * vy[i % 4]).collect();
    assert_close(&vals(&o), &want, 1e-6, 1e-5, "outer");

    // inner: sum over the last axes
    let (p, vp) = rand_array(&mut rng, &[2, 3, 5], DType::F64);
    let (q, vq) = rand_array(&mut rng, &[4, 5], DType::F64);
    let got = ingot::inner(&p, &q).unwrap();
    assert_eq!(got.shape(), &[2, 3, 4]);
    let want: Vec<f64> = (0..24)
        .map(|i| {
            (0..5)
                .map(|t| vp[(i / 4) * 5 + t] * vq[(i % 4) * 5 + t])
                .sum()
        })
        .collect();
    assert_close(&vals(&got), &want, 1e-12, 1e-12, "inner");
    assert_eq!(
        vals(&ingot::inner(&Array::scalar(2.0f64), &q).unwrap()),
        vq.iter().map(|v| 2.0 * v).collect::<Vec<_>>()
    );
    assert_eq!(
        err(ingot::inner(&p, &x)),
        "[inner] last dimensions differ: (2, 3, 5) and (2, 3)"
    );

    // kron of different ranks
    let (k1, v1) = rand_array(&mut rng, &[2, 3], DType::I64);
    let (k2, v2) = rand_array(&mut rng, &[3], DType::I64);
    let kr = ingot::kron(&k1, &k2).unwrap();
    assert_eq!(kr.shape(), &[2, 9]);
    let want: Vec<f64> = (0..18)
        .map(|i| {
            let (r, c) = (i / 9, i % 9);
            v1[r * 3 + c / 3] * v2[c % 3]
        })
        .collect();
    assert_eq!(vals(&kr), want);
}

#[test]
fn tensordot_matches_reference() {
    let mut rng = Rng::new(5);
    let (a, va) = rand_array(&mut rng, &[2, 3, 4], DType::F64);
    let (b, vb) = rand_array(&mut rng, &[3, 4, 5], DType::F64);
    let got = ingot::tensordot(&a, &b, TensorAxes::Count(2)).unwrap();
    assert_eq!(got.shape(), &[2, 5]);
    let mut want = vec![0.0; 10];
    for i in 0..2 {
        for l in 0..5 {
            for j in 0..3 {
                for k in 0..4 {
                    want[i * 5 + l] += va[(i * 3 + j) * 4 + k] * vb[(j * 4 + k) * 5 + l];
                }
            }
        }
    }
    assert_close(&vals(&got), &want, 1e-12, 1e-12, "tensordot 2");
    // Pairs in a different order: a axis 0 with c axis 1.
    let (c, vc) = rand_array(&mut rng, &[4, 2], DType::F64);
    let at = transposed(&va, &[2, 3, 4], DType::F64);
    let got = ingot::tensordot(&at, &c, TensorAxes::Pairs(vec![0, 2], vec![1, 0])).unwrap();
    assert_eq!(got.shape(), &[3]);
    let want: Vec<f64> = (0..3)
        .map(|j| {
            let mut s = 0.0;
            for i in 0..2 {
                for k in 0..4 {
                    s += va[(i * 3 + j) * 4 + k] * vc[k * 2 + i];
                }
            }
            s
        })
        .collect();
    assert_close(&vals(&got), &want, 1e-12, 1e-12, "tensordot pairs");
    let got0 = ingot::tensordot(&a, &c, TensorAxes::Count(0)).unwrap();
    assert_eq!(got0.shape(), &[2, 3, 4, 4, 2]);
    assert_eq!(
        err(ingot::tensordot(
            &a,
            &b,
            TensorAxes::Pairs(vec![0], vec![0])
        )),
        "[tensordot] shape mismatch for sum: axis 0 of (2, 3, 4) and axis 0 of (3, 4, 5)"
    );
    assert!(err(ingot::tensordot(&a, &b, TensorAxes::Count(4))).starts_with("[tensordot]"));
}

#[test]
fn cross_matches_reference() {
    let mut rng = Rng::new(6);
    for dt in [DType::F32, DType::F64, DType::I32] {
        let (_, va) = rand_array(&mut rng, &[4, 3], dt);
        let (_, vb) = rand_array(&mut rng, &[3], dt);
        let mut want = Vec::new();
        for r in 0..4 {
            let x = &va[r * 3..r * 3 + 3];
            want.extend([
                x[1] * vb[2] - x[2] * vb[1],
                x[2] * vb[0] - x[0] * vb[2],
                x[0] * vb[1] - x[1] * vb[0],
            ]);
        }
        for (l, a) in layouts(&va, &[4, 3], dt) {
            let b = array_from_f64(&vb, &[3], dt);
            let c = ingot::cross(&a, &b, -1).unwrap();
            assert_eq!(c.shape(), &[4, 3]);
            assert_eq!(c.dtype(), dt);
            assert_close(&vals(&c), &want, tol(dt), 1e-4, &format!("cross {dt} {l}"));
            // along axis 0 of the transposed operands
            let at = transposed(&tr(&va, 4, 3), &[3, 4], dt);
            let ct = ingot::cross(&at, &ingot::reshape(&b, &[3, 1]).unwrap(), 0).unwrap();
            assert_eq!(ct.shape(), &[3, 4]);
            let wt = tr(&want, 4, 3);
            assert_close(&vals(&ct), &wt, tol(dt), 1e-4, "cross axis 0");
        }
        // 2-vectors give the z component; 2 x 3 mixes.
        let (p, vp) = rand_array(&mut rng, &[5, 2], dt);
        let (q, vq) = rand_array(&mut rng, &[5, 2], dt);
        let z = ingot::cross(&p, &q, -1).unwrap();
        assert_eq!(z.shape(), &[5]);
        let want: Vec<f64> = (0..5)
            .map(|i| vp[2 * i] * vq[2 * i + 1] - vp[2 * i + 1] * vq[2 * i])
            .collect();
        assert_close(&vals(&z), &want, tol(dt), 1e-4, "cross 2d");
        let (r, vr) = rand_array(&mut rng, &[5, 3], dt);
        let m = ingot::cross(&p, &r, -1).unwrap();
        let want: Vec<f64> = (0..5)
            .flat_map(|i| {
                let (a0, a1) = (vp[2 * i], vp[2 * i + 1]);
                let b = &vr[3 * i..3 * i + 3];
                [a1 * b[2], -a0 * b[2], a0 * b[1] - a1 * b[0]]
            })
            .collect();
        assert_close(&vals(&m), &want, tol(dt), 1e-4, "cross 2x3");
    }
    // inf stays inf (no one-hot multiply)
    let a = Array::from_slice(&[f64::INFINITY, 0.0, 0.0], &[3]).unwrap();
    let b = Array::from_slice(&[0.0, 1.0, 0.0], &[3]).unwrap();
    let c = vals(&ingot::cross(&a, &b, -1).unwrap());
    assert_eq!(c[2], f64::INFINITY);
    let bad = ingot::zeros(&[4], DType::F32).unwrap();
    assert_eq!(
        err(ingot::cross(&bad, &bad, -1)),
        "[cross] dimension must be 2 or 3 along axis -1: (4,) and (4,)"
    );
}

// ---- einsum -----------------------------------------------------------------------------------

/// Brute-force einsum reference over all label assignments (letters only, explicit output).
fn ref_einsum(spec: &str, ops: &[(Vec<f64>, Vec<usize>)]) -> (Vec<f64>, Vec<usize>) {
    let (lhs, rhs) = spec.split_once("->").unwrap();
    let terms: Vec<Vec<char>> = lhs.split(',').map(|t| t.chars().collect()).collect();
    let out: Vec<char> = rhs.chars().collect();
    let mut labels: Vec<char> = Vec::new();
    let mut size = std::collections::HashMap::new();
    for (t, (_, s)) in terms.iter().zip(ops) {
        for (c, &d) in t.iter().zip(s) {
            if !labels.contains(c) {
                labels.push(*c);
            }
            let e = size.entry(*c).or_insert(d);
            *e = (*e).max(d);
        }
    }
    let dims: Vec<usize> = labels.iter().map(|c| size[c]).collect();
    let oshape: Vec<usize> = out.iter().map(|c| size[c]).collect();
    let osize: usize = oshape.iter().product();
    let mut res = vec![0.0; osize];
    let total: usize = dims.iter().product();
    for flat in 0..total {
        let idx = unravel(flat, &dims);
        let val = |c: &char| idx[labels.iter().position(|x| x == c).unwrap()];
        let mut p = 1.0;
        for (t, (v, s)) in terms.iter().zip(ops) {
            let mut o = 0;
            for (c, &d) in t.iter().zip(s) {
                o = o * d + if d == 1 { 0 } else { val(c) };
            }
            p *= v[o];
        }
        let mut o = 0;
        for (c, &d) in out.iter().zip(&oshape) {
            o = o * d + val(c);
        }
        res[o] += p;
    }
    (res, oshape)
}

#[test]
fn einsum_matches_reference() {
    let mut rng = Rng::new(7);
    let cases: Vec<(&str, Vec<Vec<usize>>)> = vec![
        ("ij,jk->ik", vec![vec![3, 4], vec![4, 5]]),
        ("ij->ji", vec![vec![3, 4]]),
        ("ii->i", vec![vec![4, 4]]),
        ("ii->", vec![vec![4, 4]]),
        ("ij->", vec![vec![3, 4]]),
        ("i,i->", vec![vec![5], vec![5]]),
        ("i,j->ij", vec![vec![3], vec![4]]),
        ("bij,bjk->bik", vec![vec![2, 3, 4], vec![2, 4, 5]]),
        ("ijk,ikl->ijl", vec![vec![2, 3, 4], vec![2, 4, 3]]),
        ("ij,jk,kl->il", vec![vec![2, 3], vec![3, 4], vec![4, 5]]),
        ("ij,ij->i", vec![vec![3, 4], vec![3, 4]]),
        ("iij,jk->ik", vec![vec![3, 3, 2], vec![2, 4]]),
        ("ij,kj->ikj", vec![vec![3, 1], vec![2, 4]]),
        (
            "abc,cd,de->bae",
            vec![vec![2, 3, 4], vec![4, 2], vec![2, 3]],
        ),
        ("ij,jk->ik", vec![vec![0, 4], vec![4, 5]]),
        ("ij,jk->ik", vec![vec![3, 0], vec![0, 5]]),
    ];
    for (spec, shapes) in cases {
        for dt in [DType::F64, DType::F32, DType::I32] {
            let ops: Vec<(Array, Vec<f64>)> =
                shapes.iter().map(|s| rand_array(&mut rng, s, dt)).collect();
            let refs: Vec<(Vec<f64>, Vec<usize>)> = ops
                .iter()
                .zip(&shapes)
                .map(|((_, v), s)| (v.clone(), s.clone()))
                .collect();
            let (want, wshape) = ref_einsum(spec, &refs);
            // Strided views of the same operands.
            let strided: Vec<Array> = refs.iter().map(|(v, s)| noncontiguous(v, s, dt)).collect();
            let plain: Vec<Array> = ops.iter().map(|(a, _)| a.clone()).collect();
            for (l, arrs) in [("contiguous", plain), ("strided", strided)] {
                let got = ingot::einsum(spec, &arrs).unwrap();
                assert_eq!(got.shape(), &wshape[..], "einsum {spec}");
                assert_eq!(got.dtype(), dt);
                assert_close(
                    &vals(&got),
                    &want,
                    tol(dt).max(1e-6),
                    1e-4,
                    &format!("einsum {spec} {dt} {l}"),
                );
            }
        }
    }
}

#[test]
fn einsum_implicit_ellipsis_and_errors() {
    let mut rng = Rng::new(8);
    let (a, va) = rand_array(&mut rng, &[2, 3, 4], DType::F64);
    let (b, vb) = rand_array(&mut rng, &[4, 5], DType::F64);
    // implicit output: letters appearing once, in alphabetical order
    let got = ingot::einsum("ij,jk", &[ingot::reshape(&a, &[6, 4]).unwrap(), b.clone()]).unwrap();
    let (want, _) = ref_matmul(&va, &[6, 4], &vb, &[4, 5]);
    assert_close(&vals(&got), &want, 1e-12, 1e-12, "implicit ij,jk");
    let t = ingot::einsum("ba", std::slice::from_ref(&b)).unwrap();
    assert_eq!(t.shape(), &[5, 4], "implicit output sorts labels");
    // ellipsis batch dims, broadcasting against a size-1 batch
    let got = ingot::einsum("...ij,...jk->...ik", &[a.clone(), b.clone()]).unwrap();
    let (want, _) = ref_matmul(&va, &[2, 3, 4], &vb, &[4, 5]);
    assert_eq!(got.shape(), &[2, 3, 5]);
    assert_close(&vals(&got), &want, 1e-12, 1e-12, "ellipsis");
    let got = ingot::einsum("...j,jk", &[a.clone(), b.clone()]).unwrap();
    assert_eq!(got.shape(), &[2, 3, 5]);
    assert_close(&vals(&got), &want, 1e-12, 1e-12, "implicit ellipsis");
    let (c, vc) = rand_array(&mut rng, &[1, 4, 2], DType::F64);
    let got = ingot::einsum("bij,bjk->bik", &[a.clone(), c.clone()]).unwrap();
    let (want, _) = ref_matmul(&va, &[2, 3, 4], &vc, &[1, 4, 2]);
    assert_close(&vals(&got), &want, 1e-12, 1e-12, "size-1 broadcast");

    assert_eq!(
        err(ingot::einsum("ij,jk->ik", &[a.clone(), b.clone()])),
        "[einsum] operand of shape (2, 3, 4) does not match subscripts 'ij'"
    );
    assert_eq!(
        err(ingot::einsum("ij,jk->ik", std::slice::from_ref(&b))),
        "[einsum] subscripts 'ij,jk->ik' name 2 operand(s), 1 given"
    );
    assert_eq!(
        err(ingot::einsum("ij,jk->iz", &[b.clone(), b.clone()])),
        "[einsum] size of subscript 'j' differs: 5 vs 4 in 'ij,jk->iz'"
    );
    let sq = ingot::zeros(&[4, 4], DType::F32).unwrap();
    assert_eq!(
        err(ingot::einsum("ij->iz", std::slice::from_ref(&sq))),
        "[einsum] output subscript 'z' does not appear in the inputs of 'ij->iz'"
    );
    assert_eq!(
        err(ingot::einsum("ij->ii", std::slice::from_ref(&sq))),
        "[einsum] output subscript 'i' appears more than once in 'ij->ii'"
    );
    assert_eq!(
        err(ingot::einsum("i$->i", std::slice::from_ref(&sq))),
        "[einsum] invalid character '$' in subscripts 'i$->i'"
    );
    assert_eq!(
        err(ingot::einsum("ii->i", std::slice::from_ref(&b))),
        "[einsum] size of subscript 'i' differs: 4 vs 5 in 'ii->i'"
    );
    let row = ingot::zeros(&[1, 5], DType::F32).unwrap();
    assert_eq!(
        err(ingot::einsum("ii->i", std::slice::from_ref(&row))),
        "[einsum] repeated subscript 'i' has sizes 1 and 5 in 'ii->i'"
    );
}

// ---- decompositions -------------------------------------------------------------------------

const DECOMP_DTYPES: [DType; 4] = [DType::F64, DType::F32, DType::F16, DType::I32];

fn decomp_tol(dt: DType) -> f64 {
    match dt {
        DType::F64 => 1e-9,
        DType::F16 => 2e-2,
        _ => 1e-3,
    }
}

fn out_dtype(dt: DType) -> DType {
    if dt.is_float() {
        dt
    } else {
        DType::F32
    }
}

/// A random batch for decompositions: integers get small values so the matrix is exact.
fn rand_mats(rng: &mut Rng, shape: &[usize], dt: DType) -> Vec<f64> {
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n)
        .map(|_| {
            if dt.is_integer() {
                rng.below(11) as f64 - 5.0
            } else {
                rng.normal()
            }
        })
        .collect();
    v.iter().map(|&x| round_to(x, dt)).collect()
}

#[test]
fn cholesky_reconstructs() {
    let mut rng = Rng::new(10);
    for dt in [DType::F64, DType::F32, DType::F16] {
        for (batch, n) in [(1, 1), (1, 5), (3, 4), (2, 17), (1, 0)] {
            let v: Vec<f64> = spd(&mut rng, batch, n)
                .iter()
                .map(|&x| round_to(x, dt))
                .collect();
            let shape = if batch == 1 {
                vec![n, n]
            } else {
                vec![batch, n, n]
            };
            for (l, a) in layouts(&v, &shape, dt) {
                for upper in [false, true] {
                    let c = ingot::cholesky(&a, upper).unwrap();
                    assert_eq!(c.dtype(), dt);
                    assert_eq!(c.shape(), &shape[..]);
                    let cv = vals(&c);
                    for (bi, m) in split(&cv, n, n).iter().enumerate() {
                        for i in 0..n {
                            for j in 0..n {
                                let zero = if upper { j < i } else { j > i };
                                if zero {
                                    assert_eq!(m[i * n + j], 0.0, "cholesky triangle");
                                }
                            }
                        }
                        let rec = if upper {
                            mm(&tr(m, n, n), m, n, n, n)
                        } else {
                            mm(m, &tr(m, n, n), n, n, n)
                        };
                        let want = &v[bi * n * n..(bi + 1) * n * n];
                        let what = format!("cholesky {dt} {shape:?} {l} upper={upper}");
                        assert_close(&rec, want, decomp_tol(dt), decomp_tol(dt) * n as f64, &what);
                    }
                }
            }
        }
    }
    let not_pd = Array::from_slice(&[1.0f64, 2.0, 2.0, 1.0], &[2, 2]).unwrap();
    let c = ingot::cholesky(&not_pd, false).unwrap();
    assert_eq!(eval_err(&c), "[cholesky] matrix is not positive definite");
    let rect = ingot::zeros(&[2, 3], DType::F32).unwrap();
    assert_eq!(
        err(ingot::cholesky(&rect, false)),
        "[cholesky] last 2 dimensions must be square, got (2, 3)"
    );
    let v = ingot::zeros(&[3], DType::F32).unwrap();
    assert_eq!(
        err(ingot::cholesky(&v, false)),
        "[cholesky] expected an array of at least 2 dimensions, got (3,)"
    );
    let z = ingot::zeros(&[2, 2], DType::C64).unwrap();
    assert_eq!(
        err(ingot::inv(&z)),
        "[inv] not supported for dtype complex64 (shape (2, 2))"
    );
}

#[test]
fn inv_solve_det_slogdet() {
    let mut rng = Rng::new(11);
    for dt in DECOMP_DTYPES {
        for shape in [
            vec![1, 1],
            vec![4, 4],
            vec![3, 5, 5],
            vec![2, 1, 3, 3],
            vec![20, 20],
        ] {
            let nd = shape.len();
            let n = shape[nd - 1];
            let v = rand_mats(&mut rng, &shape, dt);
            let ms = split(&v, n, n);
            let dets: Vec<f64> = ms.iter().map(|m| ref_det(m, n)).collect();
            if dets.iter().any(|d| d.abs() < 1e-3) {
                continue; // too close to singular for a meaningful comparison
            }
            let t = decomp_tol(dt);
            let od = out_dtype(dt);
            for (l, a) in layouts(&v, &shape, dt) {
                let what = format!("{dt} {shape:?} {l}");
                let ai = ingot::inv(&a).unwrap();
                assert_eq!(ai.dtype(), od);
                let iv = vals(&ai);
                for (m, x) in ms.iter().zip(split(&iv, n, n)) {
                    let cond = x.iter().map(|v| v.abs()).fold(1.0, f64::max);
                    assert_close(
                        &mm(m, &x, n, n, n),
                        &eye_v(n),
                        0.0,
                        t * 50.0 * cond,
                        &format!("inv {what}"),
                    );
                }
                let d = ingot::det(&a).unwrap();
                assert_eq!(d.shape(), &shape[..nd - 2]);
                assert_eq!(d.dtype(), od);
                // float16 determinants overflow to inf like any float16 value would
                let dets_in: Vec<f64> = dets.iter().map(|&x| round_to(x, od)).collect();
                assert_close(&vals(&d), &dets_in, t * 10.0, t, &format!("det {what}"));
                let (s, la) = ingot::slogdet(&a).unwrap();
                let sv = vals(&s);
                let lv = vals(&la);
                for i in 0..dets.len() {
                    assert_eq!(sv[i], dets[i].signum(), "slogdet sign {what}");
                    assert!(
                        (lv[i] - dets[i].abs().ln()).abs() < t * 10.0,
                        "slogdet {what}"
                    );
                }
                // solve with a batch of matrices and with a vector
                let bshape: Vec<usize> = shape[..nd - 1].iter().copied().chain([2]).collect();
                let bv = rand_mats(&mut rng, &bshape, dt);
                let b = array_from_f64(&bv, &bshape, dt);
                let x = ingot::solve(&a, &b).unwrap();
                assert_eq!(x.shape(), &bshape[..]);
                let xv = vals(&x);
                for (bi, m) in ms.iter().enumerate() {
                    let xb = &xv[bi * n * 2..(bi + 1) * n * 2];
                    let rhs = &bv[bi * n * 2..(bi + 1) * n * 2];
                    let scale = xb.iter().map(|v| v.abs()).fold(1.0, f64::max);
                    assert_close(
                        &mm(m, xb, n, n, 2),
                        rhs,
                        0.0,
                        t * 50.0 * scale,
                        &format!("solve {what}"),
                    );
                }
                let vecb = array_from_f64(&bv[..n], &[n], dt);
                let xv = ingot::solve(&a, &vecb).unwrap();
                assert_eq!(xv.shape(), &shape[..nd - 1]);
                let xs = vals(&xv);
                for (bi, m) in ms.iter().enumerate() {
                    let xb = &xs[bi * n..(bi + 1) * n];
                    let scale = xb.iter().map(|v| v.abs()).fold(1.0, f64::max);
                    assert_close(
                        &mm(m, xb, n, n, 1),
                        &bv[..n],
                        0.0,
                        t * 50.0 * scale,
                        &format!("solve vec {what}"),
                    );
                }
            }
        }
    }
    // singular matrices: det 0, slogdet (0, -inf), inv/solve errors at eval time
    let sing = Array::from_slice(&[1.0f64, 2.0, 2.0, 4.0, 0.0, 0.0, 0.0, 0.0], &[2, 2, 2]).unwrap();
    let d = vals(&ingot::det(&sing).unwrap());
    assert!(d.iter().all(|v| v.abs() < 1e-12), "{d:?}");
    let z = Array::from_slice(&[0.0f64, 0.0, 0.0, 0.0], &[2, 2]).unwrap();
    let (s, l) = ingot::slogdet(&z).unwrap();
    assert_eq!((vals(&s), vals(&l)), (vec![0.0], vec![f64::NEG_INFINITY]));
    assert_eq!(
        eval_err(&ingot::inv(&z).unwrap()),
        "[inv] matrix is singular"
    );
    let b = ingot::ones(&[2], DType::F64).unwrap();
    assert_eq!(
        eval_err(&ingot::solve(&z, &b).unwrap()),
        "[solve] matrix is singular"
    );
    // 0 x 0: det 1 as NumPy
    let e = ingot::zeros(&[3, 0, 0], DType::F64).unwrap();
    assert_eq!(vals(&ingot::det(&e).unwrap()), vec![1.0; 3]);
    let a = ingot::zeros(&[3, 3], DType::F64).unwrap();
    let bad = ingot::zeros(&[4], DType::F64).unwrap();
    assert_eq!(
        err(ingot::solve(&a, &bad)),
        "[solve] incompatible shapes: a (3, 3) and b (4,)"
    );
}

#[test]
fn lu_factor_and_lu_reconstruct() {
    let mut rng = Rng::new(12);
    for dt in DECOMP_DTYPES {
        for shape in [
            vec![4, 4],
            vec![2, 3, 5],
            vec![5, 3],
            vec![1, 1],
            vec![2, 0, 3],
            vec![33, 33],
        ] {
            let nd = shape.len();
            let (m, n) = (shape[nd - 2], shape[nd - 1]);
            let k = m.min(n);
            let v = rand_mats(&mut rng, &shape, dt);
            let t = decomp_tol(dt);
            for (l, a) in layouts(&v, &shape, dt) {
                let what = format!("{dt} {shape:?} {l}");
                let (lu, piv) = ingot::lu_factor(&a).unwrap();
                assert_eq!(piv.dtype(), DType::I32);
                assert_eq!(lu.shape(), &shape[..]);
                let luv = vals(&lu);
                let pv = vals(&piv);
                let (p, lo, up) = ingot::lu(&a).unwrap();
                assert_eq!(p.shape()[nd - 2..], [m, m]);
                assert_eq!(lo.shape()[nd - 2..], [m, k]);
                assert_eq!(up.shape()[nd - 2..], [k, n]);
                let (pv2, lv, uv) = (vals(&p), vals(&lo), vals(&up));
                let nb = v.len().checked_div(m * n).unwrap_or(0);
                for bi in 0..nb {
                    let am = &v[bi * m * n..(bi + 1) * m * n];
                    let f = &luv[bi * m * n..(bi + 1) * m * n];
                    // L (unit lower) and U from the packed factor; apply the swaps to a.
                    let mut lm = vec![0.0; m * k];
                    let mut um = vec![0.0; k * n];
                    for i in 0..m {
                        for j in 0..n {
                            if i > j && j < k {
                                lm[i * k + j] = f[i * n + j];
                            } else if i < k && i <= j {
                                um[i * n + j] = f[i * n + j];
                            }
                        }
                        if i < k {
                            lm[i * k + i] = 1.0;
                        }
                    }
                    let mut pa = am.to_vec();
                    for i in 0..k {
                        let j = pv[bi * k + i] as usize;
                        assert!(j >= i && j < m, "pivot {j} at {i}: {what}");
                        for c in 0..n {
                            pa.swap(i * n + c, j * n + c);
                        }
                    }
                    // partial pivoting keeps |L| <= 1
                    assert!(
                        lm.iter().all(|x| x.abs() <= 1.0 + 1e-6),
                        "lu_factor |L| {what}"
                    );
                    assert_close(
                        &mm(&lm, &um, m, k, n),
                        &pa,
                        t,
                        t * 10.0,
                        &format!("lu_factor {what}"),
                    );
                    // scipy lu: a = p l u
                    let pm = &pv2[bi * m * m..(bi + 1) * m * m];
                    let lb = &lv[bi * m * k..(bi + 1) * m * k];
                    let ub = &uv[bi * k * n..(bi + 1) * k * n];
                    assert_close(
                        &mm(pm, &mm(lb, ub, m, k, n), m, m, n),
                        am,
                        t,
                        t * 10.0,
                        &format!("lu {what}"),
                    );
                    assert_close(lb, &lm, 0.0, 0.0, &format!("lu l {what}"));
                }
            }
        }
    }
}

#[test]
fn qr_reconstructs() {
    let mut rng = Rng::new(13);
    for dt in DECOMP_DTYPES {
        for shape in [
            vec![4, 4],
            vec![2, 6, 3],
            vec![3, 6],
            vec![1, 1],
            vec![0, 3],
            vec![40, 25],
        ] {
            let nd = shape.len();
            let (m, n) = (shape[nd - 2], shape[nd - 1]);
            let k = m.min(n);
            let v = rand_mats(&mut rng, &shape, dt);
            let t = decomp_tol(dt);
            for (l, a) in layouts(&v, &shape, dt) {
                let what = format!("qr {dt} {shape:?} {l}");
                let (q, r) = ingot::qr(&a).unwrap();
                assert_eq!(q.shape()[nd - 2..], [m, k]);
                assert_eq!(r.shape()[nd - 2..], [k, n]);
                assert_eq!(q.dtype(), out_dtype(dt));
                let (qv, rv) = (vals(&q), vals(&r));
                let nb = v.len().checked_div(m * n).unwrap_or(0);
                for bi in 0..nb {
                    let qb = &qv[bi * m * k..(bi + 1) * m * k];
                    let rb = &rv[bi * k * n..(bi + 1) * k * n];
                    for i in 0..k {
                        for j in 0..i.min(n) {
                            assert_eq!(rb[i * n + j], 0.0, "r is upper triangular: {what}");
                        }
                    }
                    let am = &v[bi * m * n..(bi + 1) * m * n];
                    assert_close(&mm(qb, rb, m, k, n), am, t, t * 10.0, &what);
                    assert_close(
                        &mm(&tr(qb, m, k), qb, k, m, k),
                        &eye_v(k),
                        0.0,
                        t * 10.0,
                        &what,
                    );
                }
            }
        }
    }
}

#[test]
fn svd_reconstructs() {
    let mut rng = Rng::new(14);
    for dt in DECOMP_DTYPES {
        for shape in [
            vec![4, 4],
            vec![2, 5, 3],
            vec![3, 5],
            vec![1, 1],
            vec![30, 20],
        ] {
            let nd = shape.len();
            let (m, n) = (shape[nd - 2], shape[nd - 1]);
            let k = m.min(n);
            let v = rand_mats(&mut rng, &shape, dt);
            let t = decomp_tol(dt);
            for (l, a) in layouts(&v, &shape, dt) {
                let what = format!("svd {dt} {shape:?} {l}");
                let s_only = ingot::svd(&a, true, false).unwrap();
                assert_eq!(s_only.len(), 1);
                let s0 = vals(&s_only[0]);
                for full in [false, true] {
                    let r = ingot::svd(&a, full, true).unwrap();
                    let (ur, uc) = if full { (m, m) } else { (m, k) };
                    let (vr, vc) = if full { (n, n) } else { (k, n) };
                    assert_eq!(r[0].shape()[nd - 2..], [ur, uc]);
                    assert_eq!(r[1].shape()[nd - 2..], [k]);
                    assert_eq!(r[2].shape()[nd - 2..], [vr, vc]);
                    let (uv, sv, vtv) = (vals(&r[0]), vals(&r[1]), vals(&r[2]));
                    assert_close(&sv, &s0, t, t, &format!("{what} s vs compute_uv=false"));
                    for bi in 0..v.len() / (m * n) {
                        let ub = &uv[bi * ur * uc..(bi + 1) * ur * uc];
                        let sb = &sv[bi * k..(bi + 1) * k];
                        let vb = &vtv[bi * vr * vc..(bi + 1) * vr * vc];
                        assert!(sb.windows(2).all(|w| w[0] >= w[1]), "descending {what}");
                        assert!(sb.iter().all(|&x| x >= 0.0));
                        // u[:, :k] diag(s) vt[:k, :]
                        let mut us = vec![0.0; m * k];
                        for i in 0..m {
                            for j in 0..k {
                                us[i * k + j] = ub[i * uc + j] * sb[j];
                            }
                        }
                        let rec = mm(&us, &vb[..k * n], m, k, n);
                        let am = &v[bi * m * n..(bi + 1) * m * n];
                        assert_close(&rec, am, t, t * 10.0, &format!("{what} full={full}"));
                        assert_close(
                            &mm(&tr(ub, ur, uc), ub, uc, ur, uc),
                            &eye_v(uc),
                            0.0,
                            t * 10.0,
                            &what,
                        );
                        assert_close(
                            &mm(vb, &tr(vb, vr, vc), vr, vc, vr),
                            &eye_v(vr),
                            0.0,
                            t * 10.0,
                            &what,
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn eigh_reconstructs() {
    let mut rng = Rng::new(15);
    for dt in DECOMP_DTYPES {
        for shape in [vec![4, 4], vec![3, 5, 5], vec![1, 1], vec![24, 24]] {
            let nd = shape.len();
            let n = shape[nd - 1];
            let raw = rand_mats(&mut rng, &shape, dt);
            // symmetrize; the unread triangle gets garbage to show which one is read
            let t = decomp_tol(dt);
            for upper in [false, true] {
                let mut sym = raw.clone();
                let mut given = raw.clone();
                for b in 0..raw.len() / (n * n) {
                    for i in 0..n {
                        for j in 0..n {
                            let (r, c) = if (j > i) == upper || i == j {
                                (i, j)
                            } else {
                                (j, i)
                            };
                            sym[b * n * n + i * n + j] = raw[b * n * n + r * n + c];
                            let read = if upper { j >= i } else { j <= i };
                            given[b * n * n + i * n + j] = if read {
                                sym[b * n * n + i * n + j]
                            } else {
                                99.0
                            };
                        }
                    }
                }
                for (l, a) in layouts(&given, &shape, dt) {
                    let what = format!("eigh {dt} {shape:?} {l} upper={upper}");
                    let (w, vv) = ingot::eigh(&a, upper).unwrap();
                    assert_eq!(w.shape(), &shape[..nd - 1]);
                    assert_eq!(w.dtype(), out_dtype(dt));
                    let (wv, vecs) = (vals(&w), vals(&vv));
                    let w2 = vals(&ingot::eigvalsh(&a, upper).unwrap());
                    assert_close(&w2, &wv, t, t, &what);
                    for bi in 0..raw.len() / (n * n) {
                        let wb = &wv[bi * n..(bi + 1) * n];
                        assert!(wb.windows(2).all(|x| x[0] <= x[1]), "ascending {what}");
                        let vb = &vecs[bi * n * n..(bi + 1) * n * n];
                        let am = &sym[bi * n * n..(bi + 1) * n * n];
                        let av = mm(am, vb, n, n, n);
                        let mut vw = vb.to_vec();
                        for i in 0..n {
                            for j in 0..n {
                                vw[i * n + j] *= wb[j];
                            }
                        }
                        let scale = wb.iter().map(|x| x.abs()).fold(1.0, f64::max);
                        assert_close(&av, &vw, 0.0, t * 10.0 * scale, &what);
                        assert_close(
                            &mm(&tr(vb, n, n), vb, n, n, n),
                            &eye_v(n),
                            0.0,
                            t * 10.0,
                            &what,
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn solve_triangular_all_variants() {
    let mut rng = Rng::new(16);
    for dt in [DType::F64, DType::F32] {
        for (ashape, bshape) in [
            (vec![4, 4], vec![4, 3]),
            (vec![2, 5, 5], vec![5, 2]),
            (vec![3, 3], vec![3]),
            (vec![1, 1], vec![1, 1]),
        ] {
            let nd = ashape.len();
            let n = ashape[nd - 1];
            let mut av = rand_mats(&mut rng, &ashape, dt);
            for (i, x) in av.iter_mut().enumerate() {
                if (i / n) % n == i % n {
                    *x = round_to(3.0 + x.abs(), dt); // well-conditioned diagonal
                }
            }
            let bv = rand_mats(&mut rng, &bshape, dt);
            let nb = av.len() / (n * n);
            let vector = bshape.len() == 1;
            let cols = if vector { 1 } else { bshape[1] };
            for upper in [false, true] {
                for unit in [false, true] {
                    for left in [true, false] {
                        // for left=false, use b^T so shapes fit (x a = b with b (cols, n))
                        let (bvals, bsh) = if left || vector {
                            (bv.clone(), bshape.clone())
                        } else {
                            (tr(&bv, n, cols), vec![cols, n])
                        };
                        for (l, a) in layouts(&av, &ashape, dt) {
                            let b = array_from_f64(&bvals, &bsh, dt);
                            let x = ingot::solve_triangular(&a, &b, upper, unit, left).unwrap();
                            let what = format!("solve_triangular {dt} {ashape:?} {bsh:?} {l} upper={upper} unit={unit} left={left}");
                            let xv = vals(&x);
                            let per = xv.len() / nb;
                            for bi in 0..nb {
                                let mut t = av[bi * n * n..(bi + 1) * n * n].to_vec();
                                for i in 0..n {
                                    for j in 0..n {
                                        if (upper && j < i) || (!upper && j > i) {
                                            t[i * n + j] = 0.0;
                                        }
                                        if unit && i == j {
                                            t[i * n + j] = 1.0;
                                        }
                                    }
                                }
                                let xb = &xv[bi * per..(bi + 1) * per];
                                let got = if left {
                                    mm(&t, xb, n, n, cols)
                                } else if vector {
                                    mm(xb, &t, 1, n, n)
                                } else {
                                    mm(xb, &t, cols, n, n)
                                };
                                let scale = xb.iter().map(|v| v.abs()).fold(1.0, f64::max);
                                assert_close(&got, &bvals, 0.0, tol(dt) * 100.0 * scale, &what);
                            }
                        }
                    }
                }
            }
        }
    }
    let z = Array::from_slice(&[1.0f64, 0.0, 1.0, 0.0], &[2, 2]).unwrap();
    let b = ingot::ones(&[2], DType::F64).unwrap();
    let x = ingot::solve_triangular(&z, &b, false, false, true).unwrap();
    assert_eq!(eval_err(&x), "[solve_triangular] matrix is singular");
    // with a unit diagonal the zero is never read
    let x = ingot::solve_triangular(&z, &b, false, true, true).unwrap();
    assert_eq!(vals(&x), vec![1.0, 0.0]);
}

#[test]
fn pinv_and_norms() {
    let mut rng = Rng::new(17);
    for shape in [vec![4, 3], vec![2, 3, 5], vec![4, 4]] {
        let nd = shape.len();
        let (m, n) = (shape[nd - 2], shape[nd - 1]);
        let v = rand_mats(&mut rng, &shape, DType::F64);
        let a = array_from_f64(&v, &shape, DType::F64);
        let p = ingot::pinv(&a, 1e-15).unwrap();
        assert_eq!(p.shape()[nd - 2..], [n, m]);
        let pv = vals(&p);
        for bi in 0..v.len() / (m * n) {
            let am = &v[bi * m * n..(bi + 1) * m * n];
            let pm = &pv[bi * m * n..(bi + 1) * m * n];
            let apa = mm(&mm(am, pm, m, n, m), am, m, m, n);
            assert_close(&apa, am, 1e-9, 1e-9, "a pinv(a) a == a");
        }
    }

    // vector norms
    let (x, xv) = rand_array(&mut rng, &[3, 5], DType::F64);
    let xs = noncontiguous(&xv, &[3, 5], DType::F64);
    let rows = |f: &dyn Fn(&[f64]) -> f64| -> Vec<f64> { xv.chunks(5).map(f).collect() };
    let pnorm =
        |p: f64| move |r: &[f64]| r.iter().map(|v| v.abs().powf(p)).sum::<f64>().powf(1.0 / p);
    let cases: Vec<(NormOrd, Vec<f64>)> = vec![
        (NormOrd::Default, rows(&pnorm(2.0))),
        (NormOrd::P(2.0), rows(&pnorm(2.0))),
        (NormOrd::P(1.0), rows(&pnorm(1.0))),
        (NormOrd::P(3.0), rows(&pnorm(3.0))),
        (NormOrd::P(0.5), rows(&pnorm(0.5))),
        (
            NormOrd::P(0.0),
            rows(&|r: &[f64]| r.iter().filter(|v| **v != 0.0).count() as f64),
        ),
    ];
    for (ord, want) in cases {
        for a in [&x, &xs] {
            let got = ingot::norm(a, ord, Some(&[-1]), false).unwrap();
            assert_close(&vals(&got), &want, 1e-12, 1e-12, &format!("norm {ord:?}"));
            let kd = ingot::norm(a, ord, Some(&[1]), true).unwrap();
            assert_eq!(kd.shape(), &[3, 1]);
        }
    }
    // default over everything = Frobenius; matrix norms through the SVD
    let fro = xv.iter().map(|v| v * v).sum::<f64>().sqrt();
    assert_close(
        &vals(&ingot::norm(&x, NormOrd::Default, None, false).unwrap()),
        &[fro],
        1e-12,
        0.0,
        "fro",
    );
    assert_close(
        &vals(&ingot::norm(&x, NormOrd::Fro, None, false).unwrap()),
        &[fro],
        1e-12,
        0.0,
        "fro",
    );
    let s = vals(&ingot::svd(&x, false, false).unwrap()[0]);
    let nuc: f64 = s.iter().sum();
    assert_close(
        &vals(&ingot::norm(&x, NormOrd::Nuc, None, false).unwrap()),
        &[nuc],
        1e-12,
        0.0,
        "nuc",
    );
    assert_close(
        &vals(&ingot::norm(&xs, NormOrd::P(2.0), None, false).unwrap()),
        &[s[0]],
        1e-12,
        0.0,
        "2",
    );
    assert_close(
        &vals(&ingot::norm(&x, NormOrd::P(-2.0), None, false).unwrap()),
        &[s[2]],
        1e-12,
        0.0,
        "-2",
    );
    // int input computes in float32; a 3-d array with ord needs axes
    let i = Array::from_slice(&[3i32, 4], &[2]).unwrap();
    let ni = ingot::norm(&i, NormOrd::Default, None, false).unwrap();
    assert_eq!((ni.dtype(), vals(&ni)), (DType::F32, vec![5.0]));
    let t = ingot::zeros(&[2, 2, 2], DType::F32).unwrap();
    assert!(err(ingot::norm(&t, NormOrd::P(1.0), None, false)).starts_with("[norm]"));
    assert_eq!(
        err(ingot::norm(&x, NormOrd::P(3.0), Some(&[0, 1]), false)),
        "[norm] invalid norm order 3 for matrices"
    );
    assert_eq!(
        err(ingot::norm(&x, NormOrd::Nuc, Some(&[0]), false)),
        "[norm] ord Nuc is not a vector norm"
    );
}

#[test]
fn norm_orders_with_max_min() {
    // inf/-inf vector norms and 1/-1/inf/-inf matrix norms take a max/min reduction.
    let v = Array::from_slice(&[3.0f64, -7.0, 2.0, 0.5, -1.0, 4.0], &[2, 3]).unwrap();
    let n =
        |o: f64, ax: Option<&[isize]>| vals(&ingot::norm(&v, NormOrd::P(o), ax, false).unwrap());
    assert_eq!(n(f64::INFINITY, Some(&[1])), vec![7.0, 4.0]);
    assert_eq!(n(f64::NEG_INFINITY, Some(&[1])), vec![2.0, 0.5]);
    // column sums 3.5, 8, 6; row sums 12, 5.5
    assert_eq!(n(1.0, None), vec![8.0]);
    assert_eq!(n(-1.0, None), vec![3.5]);
    assert_eq!(n(f64::INFINITY, None), vec![12.0]);
    assert_eq!(n(f64::NEG_INFINITY, None), vec![5.5]);
}

#[test]
fn runner_entries() {
    use ingot::runner::{run_op, Attrs};
    let a = Array::from_slice(&[4.0f64, 2.0, 2.0, 3.0], &[2, 2]).unwrap();
    let b = Array::from_slice(&[1.0f64, 2.0], &[2]).unwrap();
    let attrs = |op: &str, j: serde_json::Value| Attrs::new(op, Some(&j)).unwrap();
    let r = run_op(
        "matmul",
        &[a.clone(), b.clone()],
        &attrs("matmul", serde_json::json!({})),
    )
    .unwrap();
    assert_eq!(vals(&r[0]), vec![8.0, 8.0]);
    let r = run_op(
        "einsum",
        &[a.clone(), b.clone()],
        &attrs("einsum", serde_json::json!({"subscripts": "ij,j->i"})),
    )
    .unwrap();
    assert_eq!(vals(&r[0]), vec![8.0, 8.0]);
    let r = run_op(
        "svd",
        std::slice::from_ref(&a),
        &attrs("svd", serde_json::json!({"compute_uv": false})),
    )
    .unwrap();
    assert_eq!(r.len(), 1);
    let r = run_op(
        "lu",
        std::slice::from_ref(&a),
        &attrs("lu", serde_json::json!({})),
    )
    .unwrap();
    assert_eq!(r.len(), 3);
    let r = run_op(
        "norm",
        std::slice::from_ref(&a),
        &attrs("norm", serde_json::json!({"ord": "fro"})),
    )
    .unwrap();
    assert_close(&vals(&r[0]), &[33f64.sqrt()], 1e-12, 0.0, "runner norm");
    let r = run_op(
        "tensordot",
        &[a.clone(), a.clone()],
        &attrs("tensordot", serde_json::json!({"axes": [[1], [0]]})),
    )
    .unwrap();
    assert_eq!(vals(&r[0]), vec![20.0, 14.0, 14.0, 13.0]);
    let r = run_op(
        "solve_triangular",
        &[a.clone(), b.clone()],
        &attrs("solve_triangular", serde_json::json!({"lower": true})),
    )
    .unwrap();
    assert_close(
        &vals(&r[0]),
        &[0.25, 0.5],
        1e-12,
        0.0,
        "runner solve_triangular",
    );
    let e = run_op(
        "eigh",
        std::slice::from_ref(&a),
        &attrs("eigh", serde_json::json!({"UPLO": "X"})),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "[eigh] attribute 'UPLO' must be \"L\" or \"U\", got \"X\""
    );
}
