//! `ingot::fast::softmax_cross_entropy` against a plain f64 loop and its reference
//! decomposition: dtypes, strided and empty logits, NaN and large values, ignored and
//! out-of-bounds targets, the gradient node, finite differences (first and second order),
//! vmap, compile, and bad calls.

mod common;
use common::*;
use ingot::fast::{softmax_cross_entropy, softmax_cross_entropy_reference};
use ingot::{Array, DType, Result};

/// Loss and gradient rows in f64: `lse - x[t]` and `(softmax - onehot) * g`; 0 for a
/// negative target.
fn naive(x: &[f64], v: usize, t: &[i64], g: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let (mut loss, mut grad) = (Vec::new(), Vec::new());
    for (r, row) in x.chunks(v).enumerate() {
        if t[r] < 0 {
            loss.push(0.0);
            grad.extend(std::iter::repeat_n(0.0, v));
            continue;
        }
        let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let m = if row.iter().any(|a| a.is_nan()) {
            f64::NAN
        } else {
            m
        };
        let s: f64 = row.iter().map(|a| (a - m).exp()).sum();
        loss.push((m - row[t[r] as usize]) + s.ln());
        for (j, a) in row.iter().enumerate() {
            let p = (a - m).exp() / s;
            grad.push((p - (j as i64 == t[r]) as i32 as f64) * g[r]);
        }
    }
    (loss, grad)
}

/// Targets in [0, v) with, where there is room, two ignored rows (-1 and -100).
fn targets(rng: &mut Rng, rows: usize, v: usize) -> Vec<i64> {
    let mut t: Vec<i64> = (0..rows).map(|_| rng.below(v as u64) as i64).collect();
    if rows >= 4 {
        t[1] = -1;
        t[3] = -100;
    }
    t
}

fn loss_and_grad(x: &Array, t: &Array, g: &Array) -> (Array, Array) {
    let (ys, gs) = ingot::vjp(
        |a| Ok(vec![softmax_cross_entropy(&a[0], t)?]),
        std::slice::from_ref(x),
        std::slice::from_ref(g),
    )
    .unwrap();
    (ys[0].clone(), gs[0].clone())
}

#[test]
fn matches_plain_loop_and_reference() {
    let mut rng = Rng::new(7);
    for dtype in [DType::F32, DType::F64, DType::F16, DType::BF16] {
        for shape in [
            vec![6, 9],
            vec![2, 3, 5],
            vec![0, 4],
            vec![5, 1],
            vec![4, 300],
        ] {
            let v = *shape.last().unwrap();
            let rows: usize = shape[..shape.len() - 1].iter().product();
            let (_, mut vals) = rand_array(&mut rng, &shape, dtype);
            if rows >= 6 {
                vals[0] = f64::NAN; // row 0 is NaN
                for a in &mut vals[2 * v..3 * v] {
                    *a += 60.0; // row 2: large logits, shifted by their max
                }
                vals[4 * v] = f64::NEG_INFINITY; // row 4: one class impossible
            }
            let vals = array_from_f64(&vals, &shape, dtype).to_f64_vec().unwrap();
            let tv = targets(&mut rng, rows, v);
            let t = Array::from_vec(tv.clone(), &shape[..shape.len() - 1]).unwrap();
            let gv: Vec<f64> = (0..rows).map(|_| rng.normal()).collect();
            let cdt = if dtype == DType::F64 {
                DType::F64
            } else {
                DType::F32
            };
            let g = ingot::astype(&Array::from_vec(gv.clone(), t.shape()).unwrap(), cdt).unwrap();
            let (want_l, want_g) = naive(&vals, v, &tv, &gv);
            let want_g: Vec<f64> = want_g.iter().map(|&a| round_to(a, dtype)).collect();
            let layouts = [
                ("contiguous", array_from_f64(&vals, &shape, dtype)),
                ("strided", noncontiguous(&vals, &shape, dtype)),
                ("transposed", transposed(&vals, &shape, dtype)),
            ];
            for (layout, x) in layouts {
                let what = format!("{dtype} {shape:?} {layout}");
                let (l, gx) = loss_and_grad(&x, &t, &g);
                assert_eq!(l.dtype(), cdt, "{what}");
                assert_eq!(l.shape(), t.shape(), "{what}");
                assert_eq!((gx.dtype(), gx.shape()), (dtype, &shape[..]), "{what}");
                let lt = if dtype == DType::F64 { 1e-12 } else { 2e-6 };
                assert_close(&l.to_f64_vec().unwrap(), &want_l, lt, lt, &what);
                let t_g = tol(dtype).max(1e-6);
                assert_close(&gx.to_f64_vec().unwrap(), &want_g, t_g, t_g, &what);
                let r = softmax_cross_entropy_reference(&x, &t).unwrap();
                assert_close(&r.to_f64_vec().unwrap(), &want_l, lt, lt, &what);
            }
        }
    }
}

#[test]
fn gradients_match_finite_differences() {
    let t = Array::from_vec(vec![2i64, 0, -1, 4], &[4]).unwrap();
    let t2 = t.clone();
    let f: F = Box::new(move |a: &[Array]| softmax_cross_entropy(&a[0], &t2));
    check_grad("softmax_cross_entropy", &f, &[&[4, 5]], (-3.0, 3.0), 11);
    // The gradient node's own gradient (through its reference): second derivatives.
    let w = Array::from_vec(vec![0.5f64, -1.5, 2.0, 1.0], &[4]).unwrap();
    let gfun: F = Box::new(move |a: &[Array]| {
        let (t, w) = (t.clone(), w.clone());
        let g = ingot::grad(
            move |b: &[Array]| {
                ingot::sum(
                    &ingot::multiply(&softmax_cross_entropy(&b[0], &t)?, &w)?,
                    None,
                    false,
                )
            },
            &[0],
        )(a)?;
        ingot::multiply(&g[0], &g[0])
    });
    check_grad("softmax_cross_entropy'", &gfun, &[&[4, 5]], (-3.0, 3.0), 12);
}

#[test]
fn vmap_and_compile_agree_with_eager() {
    let mut rng = Rng::new(3);
    let (x, _) = rand_array(&mut rng, &[3, 4, 6], DType::F32);
    let t = Array::from_vec(vec![1i64, 5, 0, -1], &[4]).unwrap();
    let t2 = t.clone();
    let loss_sum = move |a: &[Array]| -> Result<Vec<Array>> {
        let l = softmax_cross_entropy(&a[0], &t2)?;
        Ok(vec![ingot::sum(&l, None, false)?])
    };
    // vmap over the leading axis against a loop over it.
    let vm = ingot::vmap(loss_sum.clone(), &[Some(0)], &[Some(0)]);
    let got = vm(std::slice::from_ref(&x)).unwrap()[0]
        .to_f64_vec()
        .unwrap();
    for (i, &gi) in got.iter().enumerate() {
        let xi = ingot::take(&x, &Array::from_vec(vec![i as i64], &[]).unwrap(), Some(0)).unwrap();
        let want = loss_sum(&[xi]).unwrap()[0].to_f64_vec().unwrap()[0];
        assert_close(&[gi], &[want], 1e-6, 1e-6, "vmap");
    }
    // Compiled value and gradient equal eager ones.
    let x0 = ingot::take(&x, &Array::from_vec(vec![0i64], &[]).unwrap(), Some(0)).unwrap();
    let vg = move |a: &[Array]| -> Result<Vec<Array>> {
        let f = loss_sum.clone();
        let (v, g) = ingot::value_and_grad(move |b: &[Array]| Ok(f(b)?.remove(0)), &[0])(a)?;
        Ok(vec![v, g[0].clone()])
    };
    let eager = vg(std::slice::from_ref(&x0)).unwrap();
    let compiled = ingot::compile(vg).call(std::slice::from_ref(&x0)).unwrap();
    for (a, b) in eager.iter().zip(&compiled) {
        assert_eq!(a.to_f64_vec().unwrap(), b.to_f64_vec().unwrap(), "compile");
    }
}

#[test]
fn targets_past_the_classes_fail_on_evaluation() {
    let x = Array::from_vec(vec![0.5f32, -1.0, 2.0, 0.0, 1.0, 3.0], &[2, 3]).unwrap();
    let t = Array::from_vec(vec![1i64, 3], &[2]).unwrap();
    let e = softmax_cross_entropy(&x, &t)
        .and_then(|l| l.to_f64_vec())
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("softmax_cross_entropy") && e.contains("row 1") && e.contains("3 classes"),
        "{e}"
    );
    // The gradient alone (the loss node never evaluated) fails the same way.
    let g = ingot::grad(
        |a: &[Array]| ingot::sum(&softmax_cross_entropy(&a[0], &t)?, None, false),
        &[0],
    )(std::slice::from_ref(&x))
    .and_then(|g| g[0].to_f64_vec());
    let e = g.err().unwrap().to_string();
    assert!(
        e.contains("softmax_cross_entropy_grad") && e.contains("out of bounds"),
        "{e}"
    );
    let r = softmax_cross_entropy_reference(&x, &t).and_then(|l| l.to_f64_vec());
    assert!(r.is_err());
}

#[test]
fn bad_calls_name_the_op_and_operands() {
    let x = Array::from_vec(vec![0.5f32; 6], &[2, 3]).unwrap();
    let cases = [
        (
            x.clone(),
            Array::from_vec(vec![0.0f32, 1.0], &[2]).unwrap(),
            "integer",
        ),
        (
            x.clone(),
            Array::from_vec(vec![0i64, 1, 2], &[3]).unwrap(),
            "shape",
        ),
        (
            Array::from_vec(vec![1i32; 6], &[2, 3]).unwrap(),
            Array::from_vec(vec![0i64, 1], &[2]).unwrap(),
            "floating",
        ),
        (
            Array::from_vec(vec![1.0f32], &[]).unwrap(),
            Array::from_vec(vec![0i64], &[]).unwrap(),
            "class axis",
        ),
    ];
    for (x, t, want) in cases {
        let e = softmax_cross_entropy(&x, &t).err().unwrap().to_string();
        assert!(
            e.contains("softmax_cross_entropy") && e.contains(want) && e.contains("targets"),
            "{e}"
        );
    }
}
