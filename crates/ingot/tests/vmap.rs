//! `vmap` against a plain loop over the batch, for ops of every family, with the batch on
//! different axes of the inputs and outputs, shared (unmapped) inputs, nesting, and
//! composition with `grad`.

mod common;
use common::*;
use ingot::{Array, DType, Result, SliceArg};

type G = Box<dyn Fn(&[Array]) -> Result<Array>>;

fn example(x: &Array, axis: usize, e: usize) -> Array {
    ingot::squeeze(
        &ingot::slice_axis(
            x,
            axis as isize,
            SliceArg::range(e as isize, e as isize + 1),
        )
        .unwrap(),
        Some(&[axis as isize]),
    )
    .unwrap()
}

/// vmap(f) with `in_axes` equals stacking f over the examples, batch on `out_axis`.
fn check_vmap(
    name: &str,
    f: &G,
    shapes: &[&[usize]],
    in_axes: &[Option<usize>],
    out_axis: usize,
    seed: u64,
) {
    let mut rng = Rng::new(seed);
    let xs: Vec<Array> = shapes
        .iter()
        .map(|s| rand_array(&mut rng, s, DType::F64).0)
        .collect();
    let b = xs
        .iter()
        .zip(in_axes)
        .find_map(|(x, a)| a.map(|a| x.shape()[a]))
        .unwrap();
    let ia: Vec<Option<isize>> = in_axes.iter().map(|a| a.map(|a| a as isize)).collect();
    let got = ingot::vmap(
        |a: &[Array]| Ok(vec![f(a)?]),
        &ia,
        &[Some(out_axis as isize)],
    )(&xs)
    .unwrap_or_else(|e| panic!("{name}: {e}"))
    .remove(0);
    let per: Vec<Array> = (0..b)
        .map(|e| {
            let ex: Vec<Array> = xs
                .iter()
                .zip(in_axes)
                .map(|(x, a)| match a {
                    Some(a) => example(x, *a, e),
                    None => x.clone(),
                })
                .collect();
            f(&ex).unwrap()
        })
        .collect();
    let want = ingot::stack(&per, out_axis as isize).unwrap();
    assert_eq!(got.shape(), want.shape(), "{name}: shape");
    assert_eq!(got.dtype(), want.dtype(), "{name}: dtype");
    assert_close(
        &got.to_f64_vec().unwrap(),
        &want.to_f64_vec().unwrap(),
        1e-12,
        1e-12,
        name,
    );
}

macro_rules! cases {
    ($($name:expr, $shapes:expr, $axes:expr, $out:expr, |$a:ident| $body:expr;)*) => {
        vec![$(($name, Box::new(|$a: &[Array]| -> Result<Array> { $body }) as G, $shapes, $axes, $out)),*]
    };
}

#[test]
fn vmap_equals_a_loop_for_every_family() {
    let m: &[Option<usize>] = &[Some(0)];
    let m1: &[Option<usize>] = &[Some(1)];
    let ms: &[Option<usize>] = &[Some(0), None];
    let mm: &[Option<usize>] = &[Some(2), Some(0)];
    fn idx() -> Array {
        Array::from_slice(&[2i64, 0, 1, 2], &[4]).unwrap()
    }
    #[allow(clippy::type_complexity)]
    let cases: Vec<(&str, G, &[&[usize]], &[Option<usize>], usize)> = cases! {
        "exp", &[&[3, 4]], m, 0, |a| ingot::exp(&a[0]);
        "add shared", &[&[3, 4], &[4]], ms, 0, |a| ingot::add(&a[0], &a[1]);
        "multiply both mapped, axes 2 and 0", &[&[4, 5, 3], &[3, 4, 5]], mm, 1, |a| ingot::multiply(&a[0], &a[1]);
        "where", &[&[2, 5], &[5]], ms, 0, |a| ingot::where_(&ingot::greater(&a[0], &a[1])?, &a[0], 0.0);
        "astype", &[&[3, 4]], m1, 0, |a| ingot::astype(&a[0], DType::F32);
        "reshape", &[&[3, 2, 6]], m, 0, |a| ingot::reshape(&a[0], &[3, 4]);
        "transpose", &[&[3, 2, 5]], m1, 2, |a| ingot::transpose(&a[0], None);
        "slice", &[&[3, 6]], m, 0, |a| ingot::slice(&a[0], &[SliceArg::new(Some(5), None, -2)]);
        "broadcast", &[&[3, 4]], m, 0, |a| ingot::broadcast_to(&a[0], &[2, 4]);
        "diagonal", &[&[2, 3, 3]], m, 0, |a| ingot::diagonal(&a[0], 0, 0, 1);
        "sum", &[&[3, 4, 5]], m1, 0, |a| ingot::sum(&a[0], Some(&[1]), false);
        "max keepdims", &[&[3, 4, 5]], m, 1, |a| ingot::max(&a[0], Some(&[0]), true);
        "argmax", &[&[3, 4]], m, 0, |a| ingot::argmax(&a[0], Some(0), false);
        "cumsum", &[&[3, 4]], m, 0, |a| ingot::cumsum(&a[0], Some(0), true, true);
        "concatenate", &[&[3, 2], &[2]], ms, 0, |a| ingot::concatenate(&[a[0].clone(), a[1].clone()], Some(0));
        "pad reflect", &[&[3, 4]], m, 0, |a| ingot::pad(&a[0], &[(2, 1)], ingot::PadMode::Reflect, 0);
        "sort", &[&[3, 5]], m, 0, |a| ingot::sort(&a[0], Some(0));
        "argsort", &[&[3, 5]], m1, 0, |a| ingot::argsort(&a[0], Some(0));
        "take", &[&[3, 4]], m, 0, |a| ingot::take(&a[0], &idx(), Some(0));
        "take_along_axis", &[&[3, 4, 2]], m, 0, |a| ingot::take_along_axis(&a[0], &ingot::argsort(&a[0], Some(0))?, Some(0));
        "gather", &[&[3, 4, 2]], m, 0, |a| ingot::gather(&a[0], &[Array::from_slice(&[1i64, 3], &[2]).unwrap()], &[0], &[1, 2]);
        "scatter_add", &[&[3, 4, 2], &[3, 2, 1, 2]], &[Some(0), Some(0)], 0, |a| ingot::scatter_add(&a[0], &[Array::from_slice(&[1i64, 1], &[2]).unwrap()], &a[1], &[0]);
        "slice_update", &[&[3, 4], &[3, 2]], &[Some(0), Some(0)], 0, |a| ingot::slice_update(&a[0], &a[1], &[SliceArg::new(Some(0), None, 2)]);
        "matmul shared weight", &[&[3, 2, 4], &[4, 5]], ms, 0, |a| ingot::matmul(&a[0], &a[1]);
        "matmul vector both mapped", &[&[3, 4], &[4, 3, 2]], &[Some(0), Some(1)], 0, |a| ingot::matmul(&a[0], &a[1]);
        "inv", &[&[3, 3, 3]], m, 0, |a| ingot::inv(&ingot::add(&a[0], &ingot::multiply(&ingot::eye(3, None, 0, DType::F64)?, 5.0)?)?);
        "solve", &[&[3, 3, 3], &[3, 3]], &[Some(0), Some(1)], 0, |a| ingot::solve(&ingot::add(&a[0], &ingot::multiply(&ingot::eye(3, None, 0, DType::F64)?, 5.0)?)?, &a[1]);
        "eigvalsh", &[&[2, 3, 3]], m, 0, |a| ingot::eigvalsh(&ingot::add(&a[0], &ingot::transpose(&a[0], None)?)?, false);
        "softmax", &[&[3, 4]], m1, 1, |a| ingot::softmax(&a[0], 0);
        "fft real part", &[&[3, 8]], m, 0, |a| ingot::real(&ingot::fft(&ingot::astype(&a[0], DType::C64)?, None, -1, ingot::FftNorm::Backward)?);
        "conv1d shared kernel", &[&[3, 2, 6, 2], &[4, 3, 2]], ms, 0, |a| ingot::conv1d(&a[0], &a[1], 1, 0, 1, 1);
        "conv1d mapped kernel", &[&[3, 2, 6, 2], &[3, 4, 3, 2]], &[Some(0), Some(0)], 0, |a| ingot::conv1d(&a[0], &a[1], 1, 1, 1, 1);
        "max_pool1d", &[&[3, 1, 6, 2]], m, 0, |a| ingot::max_pool1d(&a[0], 2, Some(2), 0);
        "mean/var composite", &[&[3, 4]], m, 0, |a| ingot::var(&a[0], None, false, 0);
    };
    for (i, (name, f, shapes, axes, out)) in cases.iter().enumerate() {
        check_vmap(name, f, shapes, axes, *out, 700 + i as u64);
    }
}

#[test]
fn nested_vmap_and_composition_with_grad() {
    let mut rng = Rng::new(9);
    let (x, _) = rand_array(&mut rng, &[3, 4, 5], DType::F64);
    // Nested: an outer map over axis 0 of an inner map over axis 0 equals a double loop.
    let inner = |a: &[Array]| -> Result<Vec<Array>> {
        Ok(vec![ingot::sum(&ingot::sin(&a[0])?, None, false)?])
    };
    let nested = ingot::vmap(
        move |a: &[Array]| ingot::vmap(inner, &[Some(0)], &[Some(0)])(a),
        &[Some(0)],
        &[Some(0)],
    )(std::slice::from_ref(&x))
    .unwrap()
    .remove(0);
    let want = ingot::sum(&ingot::sin(&x).unwrap(), Some(&[2]), false).unwrap();
    assert_close(
        &nested.to_f64_vec().unwrap(),
        &want.to_f64_vec().unwrap(),
        1e-14,
        0.0,
        "nested",
    );

    // vmap of grad: per-example gradients of sum(x^3) are 3x^2.
    let g = |a: &[Array]| {
        ingot::grad(
            |b: &[Array]| ingot::sum(&ingot::power(&b[0], 3.0)?, None, false),
            &[0],
        )(a)
    };
    let per = ingot::vmap(g, &[Some(1)], &[Some(1)])(std::slice::from_ref(&x))
        .unwrap()
        .remove(0);
    let want = ingot::multiply(ingot::square(&x).unwrap(), 3.0).unwrap();
    assert_close(
        &per.to_f64_vec().unwrap(),
        &want.to_f64_vec().unwrap(),
        1e-13,
        0.0,
        "vmap of grad",
    );

    // grad of vmap: d/dx sum(vmap(tanh)(x)) = 1 - tanh^2.
    let gv = ingot::grad(
        |a: &[Array]| {
            let y = ingot::vmap(
                |b: &[Array]| Ok(vec![ingot::tanh(&b[0])?]),
                &[Some(2)],
                &[Some(0)],
            )(a)?;
            ingot::sum(&y[0], None, false)
        },
        &[0],
    )(std::slice::from_ref(&x))
    .unwrap();
    let t = ingot::tanh(&x).unwrap();
    let want = ingot::subtract(1.0, ingot::square(&t).unwrap()).unwrap();
    assert_close(
        &gv[0].to_f64_vec().unwrap(),
        &want.to_f64_vec().unwrap(),
        1e-14,
        0.0,
        "grad of vmap",
    );
}

#[test]
fn vmap_errors_and_unmapped_outputs() {
    let x = ingot::ones(&[3, 2], DType::F32).unwrap();
    let y = ingot::ones(&[4, 2], DType::F32).unwrap();
    let f = |a: &[Array]| -> Result<Vec<Array>> { Ok(vec![ingot::add(&a[0], &a[1])?]) };
    let e = ingot::vmap(f, &[Some(0), Some(0)], &[Some(0)])(&[x.clone(), y])
        .unwrap_err()
        .to_string();
    assert!(e.contains("[vmap]") && e.contains("examples"), "{e}");
    let e = ingot::vmap(f, &[None, None], &[Some(0)])(&[x.clone(), x.clone()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("no input is mapped"), "{e}");
    let e = ingot::vmap(
        |a: &[Array]| Ok(vec![ingot::exp(&a[0])?]),
        &[Some(0)],
        &[None],
    )(std::slice::from_ref(&x))
    .unwrap_err()
    .to_string();
    assert!(e.contains("out_axis is None"), "{e}");
    // An output that ignores the batch is broadcast when asked for a batch axis, kept as is
    // with None; an empty batch gives empty outputs.
    let g = |a: &[Array]| -> Result<Vec<Array>> {
        Ok(vec![ingot::exp(&a[0])?, ingot::ones(&[2], DType::F32)?])
    };
    let out = ingot::vmap(g, &[Some(0)], &[Some(0), None])(std::slice::from_ref(&x)).unwrap();
    assert_eq!(out[1].shape(), &[2][..]);
    let out = ingot::vmap(g, &[Some(0)], &[Some(1)])(std::slice::from_ref(&x)).unwrap();
    assert_eq!(out[1].shape(), &[2, 3][..]);
    let empty = ingot::zeros(&[0, 2], DType::F32).unwrap();
    let out = ingot::vmap(g, &[Some(0)], &[Some(0)])(std::slice::from_ref(&empty)).unwrap();
    assert_eq!(out[0].shape(), &[0, 2][..]);
    assert_eq!(out[0].to_vec::<f32>().unwrap(), Vec::<f32>::new());
}

// ---- batching rules of the indexing, sorting, random, sampling and conv ops --------------

/// One example of an input, freshly drawn.
type Gen = fn(&mut Rng) -> Array;
/// The per-example function under test.
type Fun = fn(&[Array]) -> Result<Array>;

/// `shape` of integers in `[lo, hi)` as `dtype`: index arrays, negative ones included.
fn ints(rng: &mut Rng, shape: &[usize], lo: i64, hi: i64, dtype: DType) -> Array {
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n)
        .map(|_| (lo + rng.below((hi - lo) as u64) as i64) as f64)
        .collect();
    array_from_f64(&v, shape, dtype)
}

fn floats(rng: &mut Rng, shape: &[usize]) -> Array {
    rand_array(rng, shape, DType::F64).0
}

/// The batched input: `b` fresh examples stacked on `axis` (zeros when `b` is 0).
fn batched(gen: Gen, rng: &mut Rng, b: usize, axis: usize) -> Array {
    if b == 0 {
        let ex = gen(rng);
        let mut s = ex.shape().to_vec();
        s.insert(axis, 0);
        return ingot::zeros(&s, ex.dtype()).unwrap();
    }
    let exs: Vec<Array> = (0..b).map(|_| gen(rng)).collect();
    ingot::stack(&exs, axis as isize).unwrap()
}

/// How many nodes of `op` the vmapped function builds (the per-example loop builds one per
/// example, a batching rule at most one).
fn count_ops(f: Fun, xs: &[Array], in_axes: &[Option<isize>], op: &str) -> usize {
    let g = ingot::transforms::trace(
        |a: &[Array]| ingot::vmap(|e: &[Array]| Ok(vec![f(e)?]), in_axes, &[Some(0)])(a),
        xs,
    )
    .unwrap();
    g.apps.iter().filter(|a| a.op.name() == op).count()
}

/// vmap(f) equals the loop over the batch for every choice of mapped inputs (at least one),
/// with the batch first, last or second on the inputs and first, last or second on the
/// output, for batches of 3, 2, 1 and 0. `rtol` 0 asks for equality bit for bit. With
/// several examples, at most one `op` node may be built: the rule ran, not the loop (an
/// empty `op` skips that check, for ops that may take the loop on purpose).
fn check_rule(name: &str, f: Fun, gens: &[Gen], op: &str, rtol: f64, seed: u64) {
    let mut rng = Rng::new(seed);
    let k = gens.len();
    for mask in 1u32..(1 << k) {
        for (variant, b) in [(0usize, 3usize), (1, 3), (2, 2), (0, 1), (1, 0), (2, 0)] {
            let what = format!("{name}: mapped inputs {mask:b}, variant {variant}, batch {b}");
            let mut xs = Vec::new();
            let mut axes = Vec::new();
            for (i, &gen) in gens.iter().enumerate() {
                if mask & (1 << i) == 0 {
                    xs.push(gen(&mut rng));
                    axes.push(None);
                    continue;
                }
                let nd = gen(&mut rng).ndim();
                let ax = match variant {
                    0 => 0,
                    1 => nd,
                    _ => nd.min(1),
                };
                xs.push(batched(gen, &mut rng, b, ax));
                axes.push(Some(ax));
            }
            let ia: Vec<Option<isize>> = axes.iter().map(|a| a.map(|a| a as isize)).collect();
            let examples = |e: usize| -> Vec<Array> {
                xs.iter()
                    .zip(&axes)
                    .map(|(x, a)| match a {
                        Some(a) => example(x, *a, e),
                        None => x.clone(),
                    })
                    .collect()
            };
            // One example's output (a fresh draw when the batch is empty) fixes the out axis.
            let one = if b > 0 {
                f(&examples(0)).unwrap()
            } else {
                let ex: Vec<Array> = gens.iter().map(|g| g(&mut rng)).collect();
                f(&ex).unwrap()
            };
            let out_axis: isize = match variant {
                0 => 0,
                1 => -1,
                _ => one.ndim().min(1) as isize,
            };
            let got = ingot::vmap(|a: &[Array]| Ok(vec![f(a)?]), &ia, &[Some(out_axis)])(&xs)
                .unwrap_or_else(|e| panic!("{what}: {e}"))
                .remove(0);
            let oa = if out_axis < 0 {
                one.ndim()
            } else {
                out_axis as usize
            };
            let want = if b > 0 {
                let per: Vec<Array> = (0..b).map(|e| f(&examples(e)).unwrap()).collect();
                ingot::stack(&per, oa as isize).unwrap()
            } else {
                let mut s = one.shape().to_vec();
                s.insert(oa, 0);
                ingot::zeros(&s, one.dtype()).unwrap()
            };
            assert_eq!(got.shape(), want.shape(), "{what}: shape");
            assert_eq!(got.dtype(), want.dtype(), "{what}: dtype");
            let (g, w) = (got.to_f64_vec().unwrap(), want.to_f64_vec().unwrap());
            if rtol == 0.0 {
                let same = g
                    .iter()
                    .zip(&w)
                    .all(|(x, y)| x == y || (x.is_nan() && y.is_nan()));
                assert!(same, "{what}: got {g:?}, want {w:?}");
            } else {
                assert_close(&g, &w, rtol, rtol, &what);
            }
            if b >= 2 && !op.is_empty() {
                let n = count_ops(f, &xs, &ia, op);
                assert!(n <= 1, "{what}: {n} {op} nodes, the op ran per example");
            }
        }
    }
}

/// Sorted rows with repeats, sometimes ending in NaN (the kernel's order puts NaN last).
fn sorted_row(rng: &mut Rng) -> Array {
    let mut v: Vec<f64> = (0..6).map(|_| rng.below(5) as f64 - 2.0).collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if rng.below(2) == 0 {
        v[5] = f64::NAN;
    }
    Array::from_slice(&v, &[6]).unwrap()
}

/// Probe values hitting every gap, every repeat, the ends and NaN.
fn probes(rng: &mut Rng) -> Array {
    let v: Vec<f64> = (0..6)
        .map(|_| match rng.below(7) {
            6 => f64::NAN,
            k => k as f64 - 3.5 + 0.5 * rng.below(2) as f64,
        })
        .collect();
    Array::from_slice(&v, &[2, 3]).unwrap()
}

fn key_gen(rng: &mut Rng) -> Array {
    ingot::random::key(rng.next_u64())
}

#[test]
fn take_rule_matches_the_loop() {
    fn a342(r: &mut Rng) -> Array {
        floats(r, &[3, 4, 2])
    }
    fn idx23(r: &mut Rng) -> Array {
        ints(r, &[2, 3], -4, 4, DType::I32)
    }
    fn take1(a: &[Array]) -> Result<Array> {
        ingot::take(&a[0], &a[1], Some(1))
    }
    check_rule("take axis 1", take1, &[a342, idx23], "take", 0.0, 1);

    // Flattened take with a 0-d index, from a non-contiguous example.
    fn a23t(r: &mut Rng) -> Array {
        let v: Vec<f64> = (0..6).map(|_| r.normal()).collect();
        transposed(&v, &[2, 3], DType::F64)
    }
    fn idx0(r: &mut Rng) -> Array {
        ints(r, &[], -6, 6, DType::I64)
    }
    fn take_flat(a: &[Array]) -> Result<Array> {
        ingot::take(&a[0], &a[1], None)
    }
    check_rule(
        "take flat, 0-d index",
        take_flat,
        &[a23t, idx0],
        "take",
        0.0,
        2,
    );

    // No indices at all: empty examples.
    fn a42(r: &mut Rng) -> Array {
        floats(r, &[4, 2])
    }
    fn idx_empty(r: &mut Rng) -> Array {
        ints(r, &[0], 0, 4, DType::I64)
    }
    fn take0(a: &[Array]) -> Result<Array> {
        ingot::take(&a[0], &a[1], Some(0))
    }
    check_rule("take, no indices", take0, &[a42, idx_empty], "take", 0.0, 3);
}

#[test]
fn gather_and_scatter_rules_match_the_loop() {
    fn a432(r: &mut Rng) -> Array {
        floats(r, &[4, 3, 2])
    }
    fn i0(r: &mut Rng) -> Array {
        ints(r, &[2, 1], -4, 4, DType::I64)
    }
    fn i1(r: &mut Rng) -> Array {
        // Slices of 2 along an axis of 3 start at 0 or 1.
        ints(r, &[3], 0, 2, DType::U8)
    }
    fn gather2(a: &[Array]) -> Result<Array> {
        ingot::gather(&a[0], &[a[1].clone(), a[2].clone()], &[0, 1], &[1, 2, 2])
    }
    check_rule(
        "gather two axes",
        gather2,
        &[a432, i0, i1],
        "gather",
        0.0,
        10,
    );

    fn gather_no_index(a: &[Array]) -> Result<Array> {
        ingot::gather(&a[0], &[], &[], &[2, 3, 1])
    }
    check_rule(
        "gather, no index",
        gather_no_index,
        &[a432],
        "gather",
        0.0,
        11,
    );

    fn a43(r: &mut Rng) -> Array {
        floats(r, &[4, 3])
    }
    fn rep(r: &mut Rng) -> Array {
        // Five indices into four rows: repeats in almost every draw.
        ints(r, &[5], -4, 4, DType::I32)
    }
    fn upd(r: &mut Rng) -> Array {
        floats(r, &[5, 1, 3])
    }
    fn scatter_set(a: &[Array]) -> Result<Array> {
        ingot::scatter(&a[0], std::slice::from_ref(&a[1]), &a[2], &[0])
    }
    fn scatter_add(a: &[Array]) -> Result<Array> {
        ingot::scatter_add(&a[0], std::slice::from_ref(&a[1]), &a[2], &[0])
    }
    fn scatter_max(a: &[Array]) -> Result<Array> {
        ingot::scatter_max(&a[0], std::slice::from_ref(&a[1]), &a[2], &[0])
    }
    check_rule(
        "scatter (last write wins)",
        scatter_set,
        &[a43, rep, upd],
        "scatter",
        0.0,
        12,
    );
    check_rule(
        "scatter_max",
        scatter_max,
        &[a43, rep, upd],
        "scatter",
        0.0,
        13,
    );
    // Adds in another order could round differently: the rule keeps each example's order.
    check_rule(
        "scatter_add",
        scatter_add,
        &[a43, rep, upd],
        "scatter",
        0.0,
        14,
    );

    // Two index arrays and a 2x2 window.
    fn a45(r: &mut Rng) -> Array {
        floats(r, &[4, 5])
    }
    fn j0(r: &mut Rng) -> Array {
        ints(r, &[2, 2], 0, 3, DType::I64)
    }
    fn j1(r: &mut Rng) -> Array {
        ints(r, &[2, 2], -5, -1, DType::I64)
    }
    fn upd2(r: &mut Rng) -> Array {
        floats(r, &[2, 2, 2, 2])
    }
    fn scatter_win(a: &[Array]) -> Result<Array> {
        ingot::scatter_add(&a[0], &[a[1].clone(), a[2].clone()], &a[3], &[0, 1])
    }
    check_rule(
        "scatter_add window",
        scatter_win,
        &[a45, j0, j1, upd2],
        "scatter",
        0.0,
        15,
    );
}

#[test]
fn searchsorted_rule_matches_the_loop() {
    fn left(a: &[Array]) -> Result<Array> {
        ingot::searchsorted(&a[0], &a[1], false)
    }
    fn right(a: &[Array]) -> Result<Array> {
        ingot::searchsorted(&a[0], &a[1], true)
    }
    check_rule(
        "searchsorted left",
        left,
        &[sorted_row, probes],
        "searchsorted",
        0.0,
        20,
    );
    check_rule(
        "searchsorted right",
        right,
        &[sorted_row, probes],
        "searchsorted",
        0.0,
        21,
    );

    fn sorted_ints(r: &mut Rng) -> Array {
        let mut v: Vec<i32> = (0..9).map(|_| r.below(6) as i32 - 3).collect();
        v.sort();
        Array::from_slice(&v, &[9]).unwrap()
    }
    fn int_probes(r: &mut Rng) -> Array {
        ints(r, &[4], -5, 5, DType::I32)
    }
    check_rule(
        "searchsorted int right",
        right,
        &[sorted_ints, int_probes],
        "searchsorted",
        0.0,
        22,
    );
    check_rule(
        "searchsorted int left",
        left,
        &[sorted_ints, int_probes],
        "searchsorted",
        0.0,
        23,
    );

    fn one_elem(r: &mut Rng) -> Array {
        floats(r, &[1])
    }
    fn nothing(r: &mut Rng) -> Array {
        floats(r, &[0])
    }
    check_rule(
        "searchsorted, one element",
        left,
        &[one_elem, probes],
        "searchsorted",
        0.0,
        24,
    );
    check_rule(
        "searchsorted, empty sorted",
        right,
        &[nothing, probes],
        "searchsorted",
        0.0,
        25,
    );
}

#[test]
fn random_rules_match_the_loop() {
    fn bits_odd(a: &[Array]) -> Result<Array> {
        ingot::random::random_bits(&a[0], &[3, 5])
    }
    fn bits_even(a: &[Array]) -> Result<Array> {
        ingot::random::random_bits(&a[0], &[4])
    }
    fn bits_one(a: &[Array]) -> Result<Array> {
        ingot::random::random_bits(&a[0], &[])
    }
    fn normal(a: &[Array]) -> Result<Array> {
        ingot::random::normal(&a[0], &[2, 3], 0.5, 2.0, DType::F32)
    }
    fn split(a: &[Array]) -> Result<Array> {
        ingot::random::split(&a[0], 3)
    }
    check_rule(
        "random_bits (3, 5)",
        bits_odd,
        &[key_gen],
        "random_bits",
        0.0,
        30,
    );
    check_rule(
        "random_bits (4,)",
        bits_even,
        &[key_gen],
        "random_bits",
        0.0,
        31,
    );
    check_rule(
        "random_bits ()",
        bits_one,
        &[key_gen],
        "random_bits",
        0.0,
        32,
    );
    check_rule("normal", normal, &[key_gen], "random_bits", 0.0, 33);
    check_rule("split", split, &[key_gen], "random_bits", 0.0, 34);
    // Many words per key run the kernel once per key (faster than the batched form).
    fn bits_many(a: &[Array]) -> Result<Array> {
        ingot::random::random_bits(&a[0], &[7, 101])
    }
    check_rule("random_bits (7, 101)", bits_many, &[key_gen], "", 0.0, 36);

    // Keys and data both mapped: dropout-like masking.
    fn data(r: &mut Rng) -> Array {
        floats(r, &[2, 3])
    }
    fn dropout(a: &[Array]) -> Result<Array> {
        let keep = ingot::random::bernoulli(&a[0], 0.7, Some(&[2, 3]))?;
        ingot::where_(&keep, &a[1], 0.0)
    }
    check_rule("dropout", dropout, &[key_gen, data], "random_bits", 0.0, 35);
}

#[test]
fn grid_sample_and_conv_rules_match_the_loop() {
    fn img(r: &mut Rng) -> Array {
        floats(r, &[2, 4, 5, 3])
    }
    fn grid(r: &mut Rng) -> Array {
        let v: Vec<f64> = (0..2 * 3 * 2 * 2).map(|_| r.range(-1.2, 1.2)).collect();
        Array::from_slice(&v, &[2, 3, 2, 2]).unwrap()
    }
    fn bilinear(a: &[Array]) -> Result<Array> {
        use ingot::op::{GridPadding, InterpMode};
        ingot::grid_sample(
            &a[0],
            &a[1],
            InterpMode::Bilinear,
            GridPadding::Zeros,
            false,
        )
    }
    fn nearest(a: &[Array]) -> Result<Array> {
        use ingot::op::{GridPadding, InterpMode};
        ingot::grid_sample(
            &a[0],
            &a[1],
            InterpMode::Nearest,
            GridPadding::Reflection,
            true,
        )
    }
    check_rule(
        "grid_sample bilinear",
        bilinear,
        &[img, grid],
        "grid_sample",
        1e-14,
        40,
    );
    check_rule(
        "grid_sample nearest",
        nearest,
        &[img, grid],
        "grid_sample",
        0.0,
        41,
    );

    fn x1(r: &mut Rng) -> Array {
        floats(r, &[2, 7, 4])
    }
    fn w1(r: &mut Rng) -> Array {
        floats(r, &[6, 3, 2])
    }
    fn conv_groups(a: &[Array]) -> Result<Array> {
        ingot::conv1d(&a[0], &a[1], 2, 1, 1, 2)
    }
    check_rule("conv1d groups 2", conv_groups, &[x1, w1], "conv", 1e-12, 42);
    fn x2(r: &mut Rng) -> Array {
        floats(r, &[1, 5, 6, 2])
    }
    fn w2(r: &mut Rng) -> Array {
        floats(r, &[3, 2, 2, 2])
    }
    fn conv2(a: &[Array]) -> Result<Array> {
        ingot::conv2d(&a[0], &a[1], &[1], 1, &[2], 1)
    }
    check_rule("conv2d dilated", conv2, &[x2, w2], "conv", 1e-12, 43);
    fn wt(r: &mut Rng) -> Array {
        floats(r, &[4, 3, 2])
    }
    fn conv_t(a: &[Array]) -> Result<Array> {
        ingot::conv_transpose1d(&a[0], &a[1], 2, 1, 1, 1, 2)
    }
    check_rule(
        "conv_transpose1d groups 2",
        conv_t,
        &[x1, wt],
        "conv",
        1e-12,
        44,
    );
}

#[test]
fn view_dtype_rule_matches_the_loop() {
    fn x(r: &mut Rng) -> Array {
        rand_array(r, &[3, 4], DType::F32).0
    }
    fn as_u16(a: &[Array]) -> Result<Array> {
        ingot::view(&a[0], DType::U16)
    }
    check_rule("view f32 as u16", as_u16, &[x], "view", 0.0, 50);
}

#[test]
fn nested_vmap_of_indexing_and_random() {
    let mut rng = Rng::new(60);
    // a (2, 3, 5, 4): mapped on axes 0 (outer) and 1 (inner); indices mapped by the outer
    // map only.
    let a = floats(&mut rng, &[2, 3, 5, 4]);
    let idx = ints(&mut rng, &[2, 6], -5, 5, DType::I64);
    let inner =
        |x: &[Array]| -> Result<Vec<Array>> { Ok(vec![ingot::take(&x[0], &x[1], Some(0))?]) };
    let got = ingot::vmap(
        move |x: &[Array]| ingot::vmap(inner, &[Some(0), None], &[Some(1)])(x),
        &[Some(0), Some(0)],
        &[Some(0)],
    )(&[a.clone(), idx.clone()])
    .unwrap()
    .remove(0);
    let mut outer = Vec::new();
    for i in 0..2 {
        let ai = example(&a, 0, i);
        let ii = example(&idx, 0, i);
        let per: Vec<Array> = (0..3)
            .map(|j| ingot::take(&example(&ai, 0, j), &ii, Some(0)).unwrap())
            .collect();
        outer.push(ingot::stack(&per, 1).unwrap());
    }
    let want = ingot::stack(&outer, 0).unwrap();
    assert_eq!(got.shape(), want.shape());
    assert_eq!(got.to_f64_vec().unwrap(), want.to_f64_vec().unwrap());

    // Keys (3, 2, 2): a map over a map of random_bits equals the double loop bit for bit.
    let keys = ingot::random::split(&ingot::random::key(7), 6).unwrap();
    let keys = ingot::reshape(&keys, &[3, 2, 2]).unwrap();
    let bits =
        |k: &[Array]| -> Result<Vec<Array>> { Ok(vec![ingot::random::random_bits(&k[0], &[5])?]) };
    let got = ingot::vmap(
        move |k: &[Array]| ingot::vmap(bits, &[Some(0)], &[Some(0)])(k),
        &[Some(0)],
        &[Some(0)],
    )(std::slice::from_ref(&keys))
    .unwrap()
    .remove(0);
    let mut want = Vec::new();
    for i in 0..3 {
        for j in 0..2 {
            let k = example(&example(&keys, 0, i), 0, j);
            want.extend(
                ingot::random::random_bits(&k, &[5])
                    .unwrap()
                    .to_vec::<u32>()
                    .unwrap(),
            );
        }
    }
    assert_eq!(got.shape(), &[3, 2, 5][..]);
    assert_eq!(got.to_vec::<u32>().unwrap(), want);
}

#[test]
fn grad_through_vmapped_indexing() {
    let mut rng = Rng::new(70);
    let a = floats(&mut rng, &[3, 5, 2]);
    let idx = ints(&mut rng, &[3, 7], -5, 5, DType::I64); // repeats: gradients accumulate
    let w = floats(&mut rng, &[3, 7, 2]);
    // grad of vmap: d/da sum(w * vmap(take)(a, idx)) against the same through a loop.
    let loss_vmap = |x: &[Array]| -> Result<Array> {
        let y = ingot::vmap(
            |e: &[Array]| Ok(vec![ingot::take(&e[0], &e[1], Some(0))?]),
            &[Some(0), Some(0)],
            &[Some(0)],
        )(&[x[0].clone(), idx.clone()])?;
        ingot::sum(&ingot::multiply(&y[0], &w)?, None, false)
    };
    let loss_loop = |x: &[Array]| -> Result<Array> {
        let per: Vec<Array> = (0..3)
            .map(|e| ingot::take(&example(&x[0], 0, e), &example(&idx, 0, e), Some(0)))
            .collect::<Result<_>>()?;
        ingot::sum(&ingot::multiply(&ingot::stack(&per, 0)?, &w)?, None, false)
    };
    let g1 = ingot::grad(loss_vmap, &[0])(std::slice::from_ref(&a)).unwrap();
    let g2 = ingot::grad(loss_loop, &[0])(std::slice::from_ref(&a)).unwrap();
    assert_close(
        &g1[0].to_f64_vec().unwrap(),
        &g2[0].to_f64_vec().unwrap(),
        1e-14,
        1e-14,
        "grad of vmap(take)",
    );
    // And against central differences on a few coordinates.
    let f0 = |x: &Array| {
        loss_vmap(std::slice::from_ref(x))
            .unwrap()
            .to_f64_vec()
            .unwrap()[0]
    };
    let av = a.to_f64_vec().unwrap();
    let gv = g1[0].to_f64_vec().unwrap();
    for k in [0usize, 7, 13, 29] {
        let h = 1e-6;
        let mut p = av.clone();
        p[k] += h;
        let mut m = av.clone();
        m[k] -= h;
        let fd = (f0(&Array::from_slice(&p, &[3, 5, 2]).unwrap())
            - f0(&Array::from_slice(&m, &[3, 5, 2]).unwrap()))
            / (2.0 * h);
        assert!(
            (fd - gv[k]).abs() < 1e-6,
            "coordinate {k}: fd {fd}, grad {}",
            gv[k]
        );
    }

    // vmap of grad: per-example gradients of a gather, whose backward is a scatter_add that
    // itself gets batched (indices mapped, array mapped).
    let per_grad = |x: &[Array]| {
        ingot::grad(
            |y: &[Array]| {
                let g = ingot::gather(&y[0], std::slice::from_ref(&y[1]), &[0], &[1, 2])?;
                ingot::sum(&ingot::square(&g)?, None, false)
            },
            &[0],
        )(x)
    };
    let got = ingot::vmap(per_grad, &[Some(0), Some(0)], &[Some(0)])(&[a.clone(), idx.clone()])
        .unwrap()
        .remove(0);
    let want: Vec<Array> = (0..3)
        .map(|e| {
            per_grad(&[example(&a, 0, e), example(&idx, 0, e)])
                .unwrap()
                .remove(0)
        })
        .collect();
    let want = ingot::stack(&want, 0).unwrap();
    assert_eq!(got.shape(), want.shape());
    assert_close(
        &got.to_f64_vec().unwrap(),
        &want.to_f64_vec().unwrap(),
        1e-14,
        1e-14,
        "vmap of grad(gather)",
    );
}
