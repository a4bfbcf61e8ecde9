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
        "take (per example)", &[&[3, 4]], m, 0, |a| ingot::take(&a[0], &idx(), Some(0));
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
