//! Tracing and `compile`: replayed programs equal the function on random op chains, the
//! cache answers repeated signatures, simplification removes what it should, and compiled
//! functions still differentiate.

mod common;
use common::*;
use ingot::{Array, DType, Result};

/// A random chain of ops over two inputs of the same shape, chosen by `rng`.
fn random_chain(seed: u64, steps: usize) -> impl Fn(&[Array]) -> Result<Vec<Array>> {
    move |a: &[Array]| {
        let mut rng = Rng::new(seed);
        let mut vals = vec![a[0].clone(), a[1].clone()];
        for _ in 0..steps {
            let x = vals[rng.below(vals.len() as u64) as usize].clone();
            let y = vals[rng.below(vals.len() as u64) as usize].clone();
            let z = match rng.below(12) {
                0 => ingot::add(&x, &y)?,
                1 => ingot::multiply(&x, &y)?,
                2 => ingot::subtract(&x, 0.5)?,
                3 => ingot::tanh(&x)?,
                4 => ingot::maximum(&x, &y)?,
                5 => ingot::exp(&ingot::negative(&ingot::abs(&x)?)?)?,
                6 => ingot::transpose(&ingot::transpose(&x, None)?, None)?,
                7 => ingot::broadcast_to(&ingot::sum(&x, Some(&[0]), true)?, x.shape())?,
                8 => ingot::where_(&ingot::greater(&x, &y)?, &x, 1.0)?,
                9 => ingot::softmax(&x, -1)?,
                10 => ingot::reshape(&ingot::reshape(&x, &[-1])?, &[x.shape()[0] as isize, -1])?,
                _ => ingot::astype(&ingot::astype(&x, DType::F32)?, DType::F64)?,
            };
            vals.push(z);
        }
        let n = vals.len();
        Ok(vec![vals[n - 1].clone(), vals[n - 2].clone()])
    }
}

#[test]
fn compiled_equals_uncompiled_on_random_chains() {
    for seed in 0..20u64 {
        let mut rng = Rng::new(1000 + seed);
        let shape = [1 + rng.below(4) as usize, 1 + rng.below(5) as usize];
        let (a, _) = rand_array(&mut rng, &shape, DType::F64);
        let (b, _) = rand_array(&mut rng, &shape, DType::F64);
        let f = random_chain(seed, 25);
        let want = f(&[a.clone(), b.clone()]).unwrap();
        let c = ingot::compile(random_chain(seed, 25));
        for _ in 0..2 {
            let got = c.call(&[a.clone(), b.clone()]).unwrap();
            for (g, w) in got.iter().zip(&want) {
                assert_eq!(g.shape(), w.shape());
                assert_close(
                    &g.to_f64_vec().unwrap(),
                    &w.to_f64_vec().unwrap(),
                    0.0,
                    0.0,
                    "compiled chain",
                );
            }
        }
        // New values, same signature: a cache hit with the new values' result.
        let (a2, _) = rand_array(&mut rng, &shape, DType::F64);
        let got = c.call(&[a2.clone(), b.clone()]).unwrap();
        let want = f(&[a2, b.clone()]).unwrap();
        assert_close(
            &got[0].to_f64_vec().unwrap(),
            &want[0].to_f64_vec().unwrap(),
            0.0,
            0.0,
            "new values",
        );
        assert_eq!(
            c.stats(),
            ingot::transforms::CompileStats { traces: 1, hits: 2 }
        );
    }
}

#[test]
fn cache_is_keyed_by_shapes_and_dtypes() {
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let c = ingot::compile(|a: &[Array]| {
        calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(vec![ingot::multiply(&a[0], 2.0)?])
    });
    let x = Array::from_slice(&[1.0f32, 2.0], &[2]).unwrap();
    let y = Array::from_slice(&[1.0f32, 2.0, 3.0], &[3]).unwrap();
    let z = Array::from_slice(&[1.0f64, 2.0], &[2]).unwrap();
    assert_eq!(
        c.call(std::slice::from_ref(&x)).unwrap()[0]
            .to_vec::<f32>()
            .unwrap(),
        [2.0, 4.0]
    );
    assert_eq!(
        c.call(std::slice::from_ref(&x)).unwrap()[0]
            .to_vec::<f32>()
            .unwrap(),
        [2.0, 4.0]
    );
    assert_eq!(
        c.call(std::slice::from_ref(&y)).unwrap()[0]
            .to_vec::<f32>()
            .unwrap(),
        [2.0, 4.0, 6.0]
    );
    assert_eq!(
        c.call(std::slice::from_ref(&z)).unwrap()[0]
            .to_vec::<f64>()
            .unwrap(),
        [2.0, 4.0]
    );
    assert_eq!(
        c.call(std::slice::from_ref(&y)).unwrap()[0].dtype(),
        DType::F32
    );
    assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), 3);
    assert_eq!(
        c.stats(),
        ingot::transforms::CompileStats { traces: 3, hits: 2 }
    );
}

#[test]
fn simplify_removes_noops_merges_and_folds() {
    let w = Array::from_slice(&[1.0f64, 2.0, 3.0], &[3]).unwrap();
    let w2 = w.clone();
    let f = move |a: &[Array]| -> Result<Vec<Array>> {
        let x = ingot::reshape(&a[0], &[3])?; // same shape: a no-op
        let x = ingot::transpose(&x, None)?; // 1-d transpose: identity
        let s1 = ingot::sin(&x)?;
        let s2 = ingot::sin(&x)?; // common subexpression
        let c = ingot::exp(&ingot::multiply(&w2, 2.0)?)?; // constant: folded
        Ok(vec![ingot::add(&ingot::add(&s1, &s2)?, &c)?])
    };
    let x = Array::from_slice(&[0.1f64, 0.2, 0.3], &[3]).unwrap();
    let raw = ingot::transforms::trace(&f, std::slice::from_ref(&x)).unwrap();
    let simple = ingot::transforms::simplify(&raw).unwrap();
    // Left: one sin and two adds.
    assert!(
        raw.num_ops() > simple.num_ops(),
        "{} vs {}",
        raw.num_ops(),
        simple.num_ops()
    );
    assert_eq!(simple.num_ops(), 3);
    let got = simple.call(std::slice::from_ref(&x)).unwrap()[0]
        .to_vec::<f64>()
        .unwrap();
    let want = f(std::slice::from_ref(&x)).unwrap()[0]
        .to_vec::<f64>()
        .unwrap();
    assert_eq!(got, want);
    // Without simplification the replay still matches.
    let c = ingot::compile_with(f, ingot::transforms::CompileOptions { simplify: false });
    assert_eq!(
        c.graph(std::slice::from_ref(&x)).unwrap().num_ops(),
        raw.num_ops()
    );
    // A program refuses inputs that don't match its trace.
    let e = raw.call(&[w.clone(), w.clone()]).unwrap_err().to_string();
    assert!(e.contains("takes 1 inputs"), "{e}");
    let e = raw
        .call(&[ingot::astype(&w, DType::F32).unwrap()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("traced with (3,) float64"), "{e}");
}

#[test]
fn compiled_functions_differentiate() {
    let c = std::sync::Arc::new(ingot::compile(|a: &[Array]| {
        Ok(vec![ingot::sum(
            &ingot::multiply(&ingot::sin(&a[0])?, &a[1])?,
            None,
            false,
        )?])
    }));
    let x = Array::from_slice(&[0.5f64, -1.0], &[2]).unwrap();
    let y = Array::from_slice(&[2.0f64, 3.0], &[2]).unwrap();
    let c2 = c.clone();
    let g =
        ingot::grad(move |a: &[Array]| Ok(c2.call(a)?.remove(0)), &[0, 1])(&[x.clone(), y.clone()])
            .unwrap();
    assert_close(
        &g[0].to_f64_vec().unwrap(),
        &[2.0 * 0.5f64.cos(), 3.0 * 1f64.cos()],
        1e-15,
        0.0,
        "d/dx",
    );
    assert_close(
        &g[1].to_f64_vec().unwrap(),
        &[0.5f64.sin(), -(1f64.sin())],
        1e-15,
        0.0,
        "d/dy",
    );
}

#[test]
fn trace_keeps_unused_inputs_constants_and_multi_output_ops() {
    let k = Array::from_slice(&[3.0f64], &[1]).unwrap();
    let f = move |a: &[Array]| -> Result<Vec<Array>> {
        let (vals, idx) = ingot::topk(&a[0], 2, 0, true, true)?;
        Ok(vec![ingot::multiply(&vals, &k)?, idx])
    };
    let x = Array::from_slice(&[1.0f64, 5.0, 3.0], &[3]).unwrap();
    let unused = Array::from_slice(&[7i32], &[1]).unwrap();
    let g = ingot::transforms::trace(|a| f(&a[..1]), &[x.clone(), unused.clone()]).unwrap();
    assert_eq!(g.inputs.len(), 2);
    let out = g.call(&[x, unused]).unwrap();
    assert_eq!(out[0].to_vec::<f64>().unwrap(), [15.0, 9.0]);
    assert_eq!(out[1].to_f64_vec().unwrap(), [1.0, 2.0]);
}
