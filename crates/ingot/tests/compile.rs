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
            let z = match rng.below(13) {
                12 => ingot::subtract(2.0, &ingot::multiply(0.25, &x)?)?,
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
    let c = ingot::compile_with(
        f,
        ingot::transforms::CompileOptions {
            simplify: false,
            fuse: false,
            ..Default::default()
        },
    );
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

/// gelu (tanh form) as a user writes it: nine elementwise ops and four scalar constants.
fn gelu(a: &[Array]) -> Result<Vec<Array>> {
    let x = &a[0];
    let inner = ingot::multiply(
        ingot::add(
            x,
            ingot::multiply(ingot::multiply(ingot::multiply(x, x)?, x)?, 0.044715)?,
        )?,
        0.797_884_560_8,
    )?;
    let y = ingot::multiply(
        ingot::multiply(x, 0.5)?,
        ingot::add(ingot::tanh(&inner)?, 1.0)?,
    )?;
    Ok(vec![y])
}

fn fused_count(g: &ingot::transforms::Graph) -> usize {
    g.apps
        .iter()
        .filter(|a| matches!(a.op, ingot::op::Op::Fused { .. }))
        .count()
}

/// Bits of every element, NaN payloads aside: fused and unfused kernels run the same
/// element functions, so results are identical, not merely close.
fn bits(a: &Array) -> Vec<u64> {
    a.to_f64_vec()
        .unwrap()
        .iter()
        .map(|v| if v.is_nan() { u64::MAX } else { v.to_bits() })
        .collect()
}

#[test]
fn fusion_makes_one_kernel_with_identical_results() {
    let mut rng = Rng::new(7);
    // Empty, 0-d, below and above the parallel threshold, not a multiple of the tile.
    for shape in [
        vec![0usize],
        vec![],
        vec![3, 5],
        vec![70_001],
        vec![2, 0, 3],
    ] {
        for dtype in [DType::F32, DType::F64, DType::BF16, DType::F16] {
            let (x, xv) = rand_array(&mut rng, &shape, dtype);
            let c = ingot::compile(gelu);
            let g = c.graph(std::slice::from_ref(&x)).unwrap();
            assert_eq!(fused_count(&g), 1, "{shape:?} {dtype}");
            // The scalar constants are read in place, not broadcast to full arrays.
            assert!(
                !g.apps
                    .iter()
                    .any(|a| matches!(a.op, ingot::op::Op::Broadcast)),
                "{shape:?}"
            );
            let want = gelu(std::slice::from_ref(&x)).unwrap().remove(0);
            let got = c.call(std::slice::from_ref(&x)).unwrap().remove(0);
            assert_eq!(bits(&got), bits(&want), "{shape:?} {dtype}");
            // And both are gelu.
            let reference: Vec<f64> = xv
                .iter()
                .map(|&v| 0.5 * v * (1.0 + (0.797_884_560_8 * (v + 0.044715 * v * v * v)).tanh()))
                .collect();
            // Half types round after each of the nine ops, as the unfused chain does.
            let tol = match dtype {
                DType::F32 => 1e-5,
                DType::F64 => 1e-14,
                DType::F16 => 1e-2,
                _ => 5e-2,
            };
            assert_close(&got.to_f64_vec().unwrap(), &reference, tol, tol, "gelu");
            // Non-contiguous inputs take the gather path.
            if shape.len() == 2 {
                let xt = transposed(&xv, &shape, dtype);
                let got = c.call(std::slice::from_ref(&xt)).unwrap().remove(0);
                assert_eq!(bits(&got), bits(&want), "transposed {shape:?} {dtype}");
                let xn = noncontiguous(&xv, &shape, dtype);
                let got = c.call(std::slice::from_ref(&xn)).unwrap().remove(0);
                assert_eq!(bits(&got), bits(&want), "stepped {shape:?} {dtype}");
            }
        }
    }
}

/// Broadcast operands (a row, a column, a scalar), an intermediate that is also an output,
/// and an op outside the chain that reads the chain's middle.
fn broadcast_chain(a: &[Array]) -> Result<Vec<Array>> {
    let (x, row, col) = (&a[0], &a[1], &a[2]);
    let t = ingot::exp(&ingot::negative(&ingot::abs(&ingot::subtract(x, row)?)?)?)?;
    let u = ingot::maximum(ingot::multiply(&t, col)?, 0.25)?;
    let s = ingot::sum(&t, Some(&[1]), true)?; // reads the chain's middle
    let v = ingot::divide(ingot::sqrt(&ingot::add(&u, 1.0)?)?, &s)?;
    Ok(vec![v, t])
}

#[test]
fn fusion_with_broadcasts_and_side_outputs() {
    let mut rng = Rng::new(8);
    for dtype in [DType::F32, DType::F64, DType::BF16] {
        for (m, n) in [(4usize, 7usize), (300, 301)] {
            let (x, _) = rand_array(&mut rng, &[m, n], dtype);
            let (row, _) = rand_array(&mut rng, &[n], dtype);
            let (col, _) = rand_array(&mut rng, &[m, 1], dtype);
            let args = [x, row, col];
            let c = ingot::compile(broadcast_chain);
            let g = c.graph(&args).unwrap();
            // One chain; the divide reads the sum of the chain's middle, so it stays out.
            assert_eq!(fused_count(&g), 1);
            let want = broadcast_chain(&args).unwrap();
            let got = c.call(&args).unwrap();
            for (gv, wv) in got.iter().zip(&want) {
                assert_eq!(gv.shape(), wv.shape());
                assert_eq!(bits(gv), bits(wv), "{m}x{n} {dtype}");
            }
        }
    }
}

/// Random f32 and bf16 chains, fused and not, agree exactly; without fusion there are no
/// fused nodes.
#[test]
fn fused_and_unfused_chains_agree_in_f32_and_bf16() {
    for seed in 0..16u64 {
        let dtype = if seed % 4 == 3 {
            DType::BF16
        } else {
            DType::F32
        };
        let mut rng = Rng::new(2000 + seed);
        // The last seeds span many tiles and run in parallel.
        let shape = if seed >= 12 {
            [200 + rng.below(40) as usize, 300 + rng.below(70) as usize]
        } else {
            [1 + rng.below(40) as usize, 1 + rng.below(70) as usize]
        };
        let (a, _) = rand_array(&mut rng, &shape, dtype);
        let (b, _) = rand_array(&mut rng, &shape, dtype);
        let args = [a, b];
        let fused = ingot::compile(random_chain(seed, 30));
        let plain = ingot::compile_with(
            random_chain(seed, 30),
            ingot::transforms::CompileOptions {
                fuse: false,
                ..Default::default()
            },
        );
        assert_eq!(fused_count(&plain.graph(&args).unwrap()), 0);
        let got = fused.call(&args).unwrap();
        let want = plain.call(&args).unwrap();
        let direct = random_chain(seed, 30)(&args).unwrap();
        for ((g, w), d) in got.iter().zip(&want).zip(&direct) {
            assert_eq!(bits(g), bits(w), "seed {seed} {dtype}");
            assert_eq!(bits(g), bits(d), "seed {seed} {dtype}");
        }
    }
}

/// Fused nodes differentiate (through their expansion) and batch under vmap.
#[test]
fn fused_nodes_differentiate_and_vectorize() {
    let c = std::sync::Arc::new(ingot::compile(gelu));
    let mut rng = Rng::new(9);
    let (x, _) = rand_array(&mut rng, &[5, 3], DType::F64);
    assert_eq!(fused_count(&c.graph(std::slice::from_ref(&x)).unwrap()), 1);
    let c2 = c.clone();
    let compiled_loss = move |a: &[Array]| ingot::sum(&c2.call(a)?.remove(0), None, false);
    let plain_loss = |a: &[Array]| ingot::sum(&gelu(a)?.remove(0), None, false);
    let g1 = ingot::grad(compiled_loss, &[0])(std::slice::from_ref(&x)).unwrap();
    let g2 = ingot::grad(plain_loss, &[0])(std::slice::from_ref(&x)).unwrap();
    assert_close(
        &g1[0].to_f64_vec().unwrap(),
        &g2[0].to_f64_vec().unwrap(),
        1e-14,
        1e-15,
        "grad through a fused node",
    );
    let c3 = c.clone();
    let batched = ingot::vmap(move |a: &[Array]| c3.call(a), &[Some(1)], &[Some(0)]);
    let got = batched(std::slice::from_ref(&x)).unwrap().remove(0);
    let xt = ingot::transpose(&x, None).unwrap();
    let want = gelu(&[xt]).unwrap().remove(0);
    assert_eq!(got.shape(), want.shape());
    assert_close(
        &got.to_f64_vec().unwrap(),
        &want.to_f64_vec().unwrap(),
        1e-15,
        0.0,
        "vmap of a fused node",
    );
}

/// A malformed fused node (as a tampered package could hold) is an error, not a crash.
#[test]
fn malformed_fused_programs_are_refused() {
    use ingot::op::{BinaryOp, FusedInstr, FusedOp, FusedProgram, Op, UnaryOp};
    let x = Array::from_slice(&[1.0f32, 2.0], &[2]).unwrap();
    let node = |program: FusedProgram, dtype: DType| {
        Array::from_op(Op::Fused { program }, vec![x.clone()], vec![2], dtype)
    };
    let reads_ahead = FusedProgram {
        instrs: vec![FusedInstr {
            op: FusedOp::Binary(BinaryOp::Add),
            args: vec![0, 1],
        }],
        outputs: vec![1],
    };
    let e = node(reads_ahead, DType::F32)
        .eval()
        .unwrap_err()
        .to_string();
    assert!(e.contains("instruction 0 reads value 1"), "{e}");
    let not_float = FusedProgram {
        instrs: vec![FusedInstr {
            op: FusedOp::Unary(UnaryOp::IsNan),
            args: vec![0],
        }],
        outputs: vec![1],
    };
    let e = node(not_float, DType::F32).eval().unwrap_err().to_string();
    assert!(e.contains("cannot be fused"), "{e}");
    let ok = FusedProgram {
        instrs: vec![FusedInstr {
            op: FusedOp::Unary(UnaryOp::Exp),
            args: vec![0],
        }],
        outputs: vec![1],
    };
    let e = node(ok.clone(), DType::F64).eval().unwrap_err().to_string();
    assert!(e.contains("input 0 is (2,) float32"), "{e}");
    let bad_out = FusedProgram {
        outputs: vec![5],
        ..ok
    };
    let e = node(bad_out, DType::F32).eval().unwrap_err().to_string();
    assert!(e.contains("output value 5 is out of range"), "{e}");
}

/// Hand-written programs the fusion pass does not make: an input returned as is, a value
/// returned twice, an output read again by later instructions, a scalar on the left, and a
/// long chain whose results share scratch tiles; over several tiles, strided and broadcast
/// inputs. Checked against the same ops run unfused.
#[test]
fn fused_programs_place_outputs_and_reuse_tiles() {
    use ingot::op::{BinaryOp, FusedInstr, FusedOp, FusedProgram, Op, UnaryOp};
    let mut rng = Rng::new(77);
    let (a, _) = rand_array(&mut rng, &[300, 257], DType::F32);
    let (bt, _) = rand_array(&mut rng, &[257, 300], DType::F32);
    let b = ingot::transpose(&bt, None).unwrap(); // strided
    let (c, _) = rand_array(&mut rng, &[1, 257], DType::F32); // broadcast rows
    let s = Array::from_slice(&[0.75f32], &[1, 1]).unwrap(); // a scalar
    let u = |op, x| FusedInstr {
        op: FusedOp::Unary(op),
        args: vec![x],
    };
    let bin = |op, x, y| FusedInstr {
        op: FusedOp::Binary(op),
        args: vec![x, y],
    };
    // values: 0 a, 1 b, 2 c, 3 s, then results from 4.
    let mut instrs = vec![
        bin(BinaryOp::Multiply, 0, 1), // 4 = a * b
        bin(BinaryOp::Subtract, 3, 4), // 5 = s - 4 (scalar on the left)
        u(UnaryOp::Tanh, 5),           // 6
        bin(BinaryOp::Add, 6, 2),      // 7 = 6 + c
        bin(BinaryOp::Maximum, 7, 4),  // 8 reads 4 again
    ];
    for k in 0..12 {
        let v = 4 + instrs.len();
        instrs.push(if k % 2 == 0 {
            bin(BinaryOp::Multiply, v - 1, v - 2)
        } else {
            u(UnaryOp::Sin, v - 1)
        });
    }
    let last = 4 + instrs.len() - 1;
    let program = FusedProgram {
        instrs: instrs.clone(),
        outputs: vec![6, 0, last, 6, 8],
    };
    let shape = vec![300, 257];
    let got = Array::from_op_multi(
        Op::Fused { program },
        vec![a.clone(), b.clone(), c.clone(), s.clone()],
        vec![(shape.clone(), DType::F32); 5],
    );
    // The same instructions as ordinary ops.
    let mut vals = vec![a.clone(), b, c, s];
    for ins in &instrs {
        let y = match ins.op {
            FusedOp::Unary(op) => Array::from_op(
                Op::Unary(op),
                vec![ingot::broadcast_to(&vals[ins.args[0]], &shape).unwrap()],
                shape.clone(),
                DType::F32,
            ),
            FusedOp::Binary(op) => Array::from_op(
                Op::Binary(op),
                vec![
                    ingot::broadcast_to(&vals[ins.args[0]], &shape).unwrap(),
                    ingot::broadcast_to(&vals[ins.args[1]], &shape).unwrap(),
                ],
                shape.clone(),
                DType::F32,
            ),
        };
        vals.push(y);
    }
    for (k, &v) in [6, 0, last, 6, 8].iter().enumerate() {
        assert_eq!(bits(&got[k]), bits(&vals[v]), "output {k} (value {v})");
    }
}

fn shapeless() -> ingot::transforms::CompileOptions {
    ingot::transforms::CompileOptions {
        shapeless: true,
        ..Default::default()
    }
}

/// A layer as models write it: matmul, a broadcast bias, an activation chain, a softmax and
/// a reduction that drops its axis.
fn layer(a: &[Array]) -> Result<Vec<Array>> {
    let (x, w, b) = (&a[0], &a[1], &a[2]);
    let h = ingot::add(&ingot::matmul(x, w)?, b)?;
    let h = ingot::multiply(&h, &ingot::sigmoid(&ingot::multiply(&h, 1.702)?)?)?;
    let p = ingot::softmax(&h, -1)?;
    let s = ingot::max(&h, Some(&[-1]), false)?;
    Ok(vec![p, s, ingot::transpose(&h, None)?])
}

#[test]
fn shapeless_compile_replays_new_sizes_without_tracing() {
    let mut rng = Rng::new(21);
    let c = ingot::compile_with(layer, shapeless());
    for (i, (batch, d_in, d_out)) in [(3usize, 4usize, 5usize), (7, 4, 5), (1, 6, 2), (0, 4, 5)]
        .into_iter()
        .enumerate()
    {
        let (x, _) = rand_array(&mut rng, &[batch, d_in], DType::F32);
        let (w, _) = rand_array(&mut rng, &[d_in, d_out], DType::F32);
        let (b, _) = rand_array(&mut rng, &[d_out], DType::F32);
        let args = [x, w, b];
        let got = c.call(&args).unwrap();
        let want = layer(&args).unwrap();
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.shape(), w.shape(), "call {i}");
            assert_eq!(bits(g), bits(w), "call {i}");
        }
        assert_eq!(c.stats().traces, 1, "call {i} traced again");
        assert_eq!(c.stats().hits, i);
    }
    // A new rank is a new signature.
    let (x, _) = rand_array(&mut rng, &[2, 3, 4], DType::F32);
    let (w, _) = rand_array(&mut rng, &[2, 4, 5], DType::F32);
    let (b, _) = rand_array(&mut rng, &[5], DType::F32);
    let args = [x, w, b];
    let got = c.call(&args).unwrap();
    assert_eq!(bits(&got[0]), bits(&layer(&args).unwrap()[0]));
    assert_eq!(c.stats().traces, 2);
}

/// A program holding an op whose output shape is a traced parameter (here a slice) is
/// traced again for new sizes, and still gives the right answer.
#[test]
fn shapeless_compile_traces_again_when_it_must() {
    let f = |a: &[Array]| -> Result<Vec<Array>> {
        let x = ingot::slice(&a[0], &[ingot::SliceArg::range(1, -1)])?;
        Ok(vec![ingot::exp(&ingot::multiply(&x, 2.0)?)?])
    };
    let c = ingot::compile_with(f, shapeless());
    let mut rng = Rng::new(22);
    for (n, traces) in [(6usize, 1usize), (9, 2), (9, 2)] {
        let (x, _) = rand_array(&mut rng, &[n], DType::F64);
        let got = c.call(std::slice::from_ref(&x)).unwrap().remove(0);
        let want = f(std::slice::from_ref(&x)).unwrap().remove(0);
        assert_eq!(got.shape(), &[n - 2]);
        assert_eq!(bits(&got), bits(&want));
        assert_eq!(c.stats().traces, traces, "n = {n}");
    }
    // Sizes that don't fit together are the function's own error, not a bad replay.
    let c = ingot::compile_with(layer, shapeless());
    let ok = [
        rand_array(&mut rng, &[2, 3], DType::F32).0,
        rand_array(&mut rng, &[3, 4], DType::F32).0,
        rand_array(&mut rng, &[4], DType::F32).0,
    ];
    c.call(&ok).unwrap();
    let bad = [
        rand_array(&mut rng, &[2, 3], DType::F32).0,
        rand_array(&mut rng, &[5, 4], DType::F32).0,
        rand_array(&mut rng, &[4], DType::F32).0,
    ];
    let e = c.call(&bad).unwrap_err().to_string();
    assert!(e.contains("matmul"), "{e}");
}

/// Two nodes with the same op and inputs but different output shapes or dtypes (broadcast,
/// arange) are different values: simplification must not merge them.
#[test]
fn simplify_keeps_same_op_with_different_outputs() {
    let f = |a: &[Array]| -> Result<Vec<Array>> {
        let x = &a[0];
        let r1 = ingot::broadcast_to(x, &[2, 3])?;
        let r2 = ingot::broadcast_to(x, &[4, 3])?;
        let i32s = ingot::arange(0.0, 3.0, 1.0, DType::I32)?;
        let f32s = ingot::arange(0.0, 3.0, 1.0, DType::F32)?;
        Ok(vec![
            ingot::sum(&r1, None, false)?,
            ingot::sum(&r2, None, false)?,
            ingot::astype(&i32s, DType::F64)?,
            ingot::astype(&f32s, DType::F64)?,
        ])
    };
    let x = Array::from_slice(&[1.0f64, 2.0, 3.0], &[3]).unwrap();
    let got = ingot::compile(f).call(std::slice::from_ref(&x)).unwrap();
    assert_eq!(got[0].item::<f64>().unwrap(), 12.0);
    assert_eq!(got[1].item::<f64>().unwrap(), 24.0);
    assert_eq!(got[2].to_vec::<f64>().unwrap(), [0.0, 1.0, 2.0]);
    assert_eq!(got[3].to_vec::<f64>().unwrap(), [0.0, 1.0, 2.0]);
}

/// With `cuda_graph` on, calls replay a recorded CUDA graph on a GPU (from the second call)
/// and give the bits the same program gives without one; on the CPU the option does nothing.
#[test]
fn cuda_graph_replays_equal_plain_calls() {
    let on_gpu = matches!(ingot::default_device(), ingot::Device::Cuda(_));
    for seed in 0..6u64 {
        let options = |on: bool| ingot::transforms::CompileOptions {
            cuda_graph: on,
            ..Default::default()
        };
        let graphed = ingot::compile_with(random_chain(seed, 25), options(true));
        let plain = ingot::compile_with(random_chain(seed, 25), options(false));
        let mut rng = Rng::new(1000 + seed);
        let shape = [5, 7];
        for call in 0..5 {
            let (a, _) = rand_array(&mut rng, &shape, DType::F32);
            let (b, _) = rand_array(&mut rng, &shape, DType::F32);
            let got = graphed.call(&[a.clone(), b.clone()]).unwrap();
            let want = plain.call(&[a, b]).unwrap();
            for (g, w) in got.iter().zip(&want) {
                assert_close(
                    &g.to_f64_vec().unwrap(),
                    &w.to_f64_vec().unwrap(),
                    0.0,
                    0.0,
                    &format!("chain {seed} call {call}"),
                );
            }
        }
        let s = graphed.graph_stats();
        if on_gpu {
            assert_eq!(
                graphed.graph_failures(),
                Vec::<String>::new(),
                "chain {seed}"
            );
            assert_eq!(
                (s.captures, s.replays, s.uncaptured),
                (1, 4, 0),
                "chain {seed}"
            );
        } else {
            assert_eq!(s, ingot::transforms::GraphStats::default());
        }
    }
}
