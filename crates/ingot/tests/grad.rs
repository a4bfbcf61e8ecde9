//! Differentiation: every differentiable op's vjp against central finite differences in
//! f64 on random inputs, jvp against the same directional derivative (so ⟨u, J v⟩ agrees
//! between forward and reverse mode), second derivatives, trees, checkpoint, custom_vjp.

mod common;
use common::*;
use ingot::{Array, DType, Result, SliceArg, Tree};

macro_rules! cases {
    ($($name:expr, $shapes:expr, $dom:expr, |$a:ident| $body:expr;)*) => {
        vec![$(($name, Box::new(|$a: &[Array]| -> Result<Array> { $body }) as F, $shapes, $dom)),*]
    };
}

const ANY: (f64, f64) = (-2.0, 2.0);
const POS: (f64, f64) = (0.5, 2.0);
const UNIT: (f64, f64) = (-0.9, 0.9);

#[test]
fn unary_ops_match_finite_differences() {
    let s: &[&[usize]] = &[&[3, 4]];
    let cases: Vec<(&str, F, &[&[usize]], (f64, f64))> = cases! {
        "negative", s, ANY, |a| ingot::negative(&a[0]);
        "abs", s, POS, |a| ingot::abs(&ingot::negative(&a[0])?);
        "exp", s, ANY, |a| ingot::exp(&a[0]);
        "expm1", s, ANY, |a| ingot::expm1(&a[0]);
        "log", s, POS, |a| ingot::log(&a[0]);
        "log1p", s, POS, |a| ingot::log1p(&a[0]);
        "log2", s, POS, |a| ingot::log2(&a[0]);
        "log10", s, POS, |a| ingot::log10(&a[0]);
        "sqrt", s, POS, |a| ingot::sqrt(&a[0]);
        "rsqrt", s, POS, |a| ingot::rsqrt(&a[0]);
        "square", s, ANY, |a| ingot::square(&a[0]);
        "reciprocal", s, POS, |a| ingot::reciprocal(&a[0]);
        "sin", s, ANY, |a| ingot::sin(&a[0]);
        "cos", s, ANY, |a| ingot::cos(&a[0]);
        "tan", s, UNIT, |a| ingot::tan(&a[0]);
        "arcsin", s, UNIT, |a| ingot::arcsin(&a[0]);
        "arccos", s, UNIT, |a| ingot::arccos(&a[0]);
        "arctan", s, ANY, |a| ingot::arctan(&a[0]);
        "sinh", s, ANY, |a| ingot::sinh(&a[0]);
        "cosh", s, ANY, |a| ingot::cosh(&a[0]);
        "tanh", s, ANY, |a| ingot::tanh(&a[0]);
        "arcsinh", s, ANY, |a| ingot::arcsinh(&a[0]);
        "arccosh", s, (1.5, 3.0), |a| ingot::arccosh(&a[0]);
        "arctanh", s, UNIT, |a| ingot::arctanh(&a[0]);
        "erf", s, ANY, |a| ingot::erf(&a[0]);
        "erfinv", s, UNIT, |a| ingot::erfinv(&a[0]);
        "sigmoid", s, ANY, |a| ingot::sigmoid(&a[0]);
        "gelu", s, ANY, |a| ingot::gelu(&a[0]);
        "gelu_tanh", s, ANY, |a| ingot::gelu_tanh(&a[0]);
        "floor is flat", s, ANY, |a| ingot::add(&ingot::floor(&a[0])?, &a[0]);
    };
    for (i, (name, f, shapes, dom)) in cases.iter().enumerate() {
        check_grad(name, f, shapes, *dom, 100 + i as u64);
    }
}

#[test]
fn binary_ops_match_finite_differences() {
    let s: &[&[usize]] = &[&[2, 3], &[2, 3]];
    let bc: &[&[usize]] = &[&[4, 1, 3], &[2, 1]];
    let cases: Vec<(&str, F, &[&[usize]], (f64, f64))> = cases! {
        "add", s, ANY, |a| ingot::add(&a[0], &a[1]);
        "add broadcast", bc, ANY, |a| ingot::add(&a[0], &a[1]);
        "subtract broadcast", bc, ANY, |a| ingot::subtract(&a[0], &a[1]);
        "multiply broadcast", bc, ANY, |a| ingot::multiply(&a[0], &a[1]);
        "divide", s, POS, |a| ingot::divide(&a[0], &a[1]);
        "power", s, POS, |a| ingot::power(&a[0], &a[1]);
        "maximum", s, ANY, |a| ingot::maximum(&a[0], &a[1]);
        "minimum", s, ANY, |a| ingot::minimum(&a[0], &a[1]);
        "arctan2", s, POS, |a| ingot::arctan2(&a[0], &a[1]);
        "logaddexp", s, ANY, |a| ingot::logaddexp(&a[0], &a[1]);
        "gelu_grad", s, ANY, |a| ingot::gelu_grad(&a[0], &a[1]);
        "gelu_tanh_grad", s, ANY, |a| ingot::gelu_tanh_grad(&a[0], &a[1]);
        "remainder", s, (1.1, 1.9), |a| ingot::remainder(&ingot::multiply(&a[0], 3.0)?, &a[1]);
        "scalar ops", s, POS, |a| ingot::divide(2.0, &ingot::add(&ingot::multiply(&a[0], 3.0)?, 1.0)?);
        "where", s, ANY, |a| ingot::where_(&ingot::greater(&a[0], 0.0)?, &ingot::exp(&a[0])?, &ingot::sin(&a[1])?);
        "clip", s, ANY, |a| ingot::clip(&a[0], Some(&Array::scalar(-0.5f64)), Some(&a[1]));
        "same input twice", s, ANY, |a| ingot::multiply(&a[0], &ingot::sin(&a[0])?);
    };
    for (i, (name, f, shapes, dom)) in cases.iter().enumerate() {
        check_grad(name, f, shapes, *dom, 200 + i as u64);
    }
}

#[test]
fn reductions_and_scans_match_finite_differences() {
    let s: &[&[usize]] = &[&[3, 4, 2]];
    let ax: &[isize] = &[0, 2];
    let cases: Vec<(&str, F, &[&[usize]], (f64, f64))> = cases! {
        "sum all", s, ANY, |a| ingot::sum(&a[0], None, false);
        "sum axes", s, ANY, |a| ingot::sum(&a[0], Some(ax), false);
        "mean", s, ANY, |a| ingot::mean(&a[0], Some(&[1]), true);
        "var", s, ANY, |a| ingot::var(&a[0], Some(&[1]), false, 1);
        "std", s, ANY, |a| ingot::std(&a[0], None, false, 0);
        "prod", s, POS, |a| ingot::prod(&a[0], Some(ax), false);
        "max", s, ANY, |a| ingot::max(&a[0], Some(&[1]), false);
        "min", s, ANY, |a| ingot::min(&a[0], None, false);
        "logsumexp", s, ANY, |a| ingot::logsumexp(&a[0], Some(&[2]), false);
        "cumsum", s, ANY, |a| ingot::cumsum(&a[0], Some(1), false, true);
        "cumsum reverse exclusive", s, ANY, |a| ingot::cumsum(&a[0], Some(1), true, false);
        "cumprod", s, POS, |a| ingot::cumprod(&a[0], Some(0), false, true);
        "cumprod reverse exclusive", s, POS, |a| ingot::cumprod(&a[0], Some(1), true, false);
        "cummax", s, ANY, |a| ingot::cummax(&a[0], Some(1), false, true);
        "cummin reverse", s, ANY, |a| ingot::cummin(&a[0], Some(1), true, true);
        "logcumsumexp", s, ANY, |a| ingot::logcumsumexp(&a[0], Some(1), false, true);
        "logcumsumexp reverse", s, ANY, |a| ingot::logcumsumexp(&a[0], Some(2), true, true);
        "softmax", s, ANY, |a| ingot::softmax(&a[0], 1);
        "log_softmax", s, ANY, |a| ingot::log_softmax(&a[0], -1);
        "norm", s, ANY, |a| ingot::norm(&a[0], ingot::NormOrd::Fro, Some(&[0, 1]), false);
    };
    for (i, (name, f, shapes, dom)) in cases.iter().enumerate() {
        check_grad(name, f, shapes, *dom, 300 + i as u64);
    }
}

#[test]
fn shape_and_view_ops_match_finite_differences() {
    let s: &[&[usize]] = &[&[3, 4]];
    let two: &[&[usize]] = &[&[3, 4], &[2, 4]];
    let cases: Vec<(&str, F, &[&[usize]], (f64, f64))> = cases! {
        "reshape", s, ANY, |a| ingot::sin(&ingot::reshape(&a[0], &[2, 6])?);
        "transpose", s, ANY, |a| ingot::sin(&ingot::transpose(&a[0], None)?);
        "stepped slice", s, ANY, |a| ingot::slice(&a[0], &[SliceArg::new(Some(2), None, -2), SliceArg::new(Some(1), Some(4), 2)]);
        "broadcast_to", &[&[3, 1]], ANY, |a| ingot::sin(&ingot::broadcast_to(&a[0], &[2, 3, 4])?);
        "diagonal", s, ANY, |a| ingot::diagonal(&a[0], 1, 0, 1);
        "diagonal negative", &[&[2, 4, 3]], ANY, |a| ingot::diagonal(&a[0], -1, 2, 0);
        "trace", &[&[4, 4]], ANY, |a| ingot::trace(&a[0], 0, 0, 1);
        "concatenate", two, ANY, |a| ingot::concatenate(&[a[0].clone(), ingot::exp(&a[1])?], Some(0));
        "stack", &[&[3], &[3]], ANY, |a| ingot::stack(&[a[0].clone(), a[1].clone()], 1);
        "pad constant", s, ANY, |a| ingot::pad(&a[0], &[(1, 2), (0, 1)], ingot::PadMode::Constant, 3.0);
        "pad edge", s, ANY, |a| ingot::pad(&a[0], &[(2, 1)], ingot::PadMode::Edge, 0);
        "pad reflect", s, ANY, |a| ingot::pad(&a[0], &[(2, 3)], ingot::PadMode::Reflect, 0);
        "pad symmetric", s, ANY, |a| ingot::pad(&a[0], &[(1, 5)], ingot::PadMode::Symmetric, 0);
        "tile", s, ANY, |a| ingot::tile(&a[0], &[2, 1]);
        "repeat", s, ANY, |a| ingot::repeat(&a[0], &[2], Some(1));
        "roll", s, ANY, |a| ingot::roll(&a[0], &[1, -2], Some(&[0, 1]));
        "flip", s, ANY, |a| ingot::flip(&a[0], None);
        "tril", s, ANY, |a| ingot::tril(&a[0], 0);
        "squeeze expand", &[&[3, 1, 4]], ANY, |a| ingot::expand_dims(&ingot::squeeze(&a[0], None)?, &[0]);
        "copy", s, ANY, |a| ingot::copy(&a[0]);
        // Slices whose cotangents meet in one input (added into its slice, autodiff.rs):
        // every part of a split used, a part used twice, overlapping strided slices.
        "split into three", &[&[2, 6]], ANY, |a| {
            let p = ingot::split(&a[0], ingot::SplitSpec::Sections(3), -1)?;
            ingot::concatenate(&[ingot::sin(&p[2])?, ingot::multiply(&p[0], &p[1])?, ingot::square(&p[0])?], Some(0))
        };
        "overlapping slices", &[&[4, 5]], ANY, |a| {
            let x = &a[0];
            let u = ingot::slice(x, &[SliceArg::new(Some(0), Some(3), 1), SliceArg::new(Some(1), None, 2)])?;
            let v = ingot::slice(x, &[SliceArg::new(Some(1), None, 1), SliceArg::new(Some(0), Some(4), 2)])?;
            ingot::add(&ingot::exp(&u)?, &ingot::multiply(&v, &u)?)
        };
    };
    for (i, (name, f, shapes, dom)) in cases.iter().enumerate() {
        check_grad(name, f, shapes, *dom, 400 + i as u64);
    }
}

#[test]
fn indexing_and_sorting_match_finite_differences() {
    let s: &[&[usize]] = &[&[4, 3]];
    fn idx() -> Array {
        Array::from_slice(&[2i64, 0, 2, -1], &[2, 2]).unwrap()
    }
    let cases: Vec<(&str, F, &[&[usize]], (f64, f64))> = cases! {
        "take axis 0 repeated", s, ANY, |a| ingot::take(&a[0], &idx(), Some(0));
        "take axis 1", s, ANY, |a| ingot::take(&a[0], &Array::from_slice(&[1i64, 1, 0], &[3]).unwrap(), Some(1));
        "take flat", s, ANY, |a| ingot::take(&a[0], &idx(), None);
        "take_along_axis", s, ANY, |a| ingot::take_along_axis(&a[0], &Array::from_slice(&[0i64, 2, 2, 1, 0, 0], &[2, 3]).unwrap(), Some(0));
        "put_along_axis", &[&[4, 3], &[1, 3]], ANY, |a| ingot::put_along_axis(&a[0], &Array::from_slice(&[1i64, 3, 0], &[1, 3]).unwrap(), &a[1], Some(0));
        "put_along_axis_add", &[&[4, 3], &[1, 3]], ANY, |a| ingot::put_along_axis_add(&a[0], &Array::from_slice(&[1i64, 3, 0], &[1, 3]).unwrap(), &a[1], Some(0));
        "gather", s, ANY, |a| ingot::gather(&a[0], &[Array::from_slice(&[0i64, 2, 2], &[3]).unwrap()], &[0], &[2, 3]);
        "scatter", &[&[4, 3], &[2, 1, 3]], ANY, |a| ingot::scatter(&a[0], &[Array::from_slice(&[1i64, 3], &[2]).unwrap()], &a[1], &[0]);
        "scatter_add repeated", &[&[4, 3], &[2, 1, 3]], ANY, |a| ingot::scatter_add(&a[0], &[Array::from_slice(&[2i64, 2], &[2]).unwrap()], &a[1], &[0]);
        "slice_update", &[&[4, 3], &[2, 3]], ANY, |a| ingot::slice_update(&a[0], &a[1], &[SliceArg::new(Some(0), None, 2)]);
        "slice_update_add", &[&[4, 3], &[2, 3]], ANY, |a| ingot::slice_update_add(&a[0], &a[1], &[SliceArg::new(Some(1), Some(3), 1)]);
        "sort", s, ANY, |a| ingot::sort(&a[0], Some(0));
        "partition", s, ANY, |a| ingot::partition(&a[0], 1, Some(0));
        "topk", s, ANY, |a| Ok(ingot::topk(&a[0], 2, 0, true, true)?.0);
        "median", s, ANY, |a| ingot::median(&a[0], Some(&[0]), false);
    };
    for (i, (name, f, shapes, dom)) in cases.iter().enumerate() {
        check_grad(name, f, shapes, *dom, 500 + i as u64);
    }
}

#[test]
fn linalg_ops_match_finite_differences() {
    // Well-conditioned matrices: identity plus a small random part.
    fn wc(a: &Array) -> Result<Array> {
        ingot::add(
            &ingot::multiply(a, 0.3)?,
            &ingot::eye(a.shape()[0], None, 0, DType::F64)?,
        )
    }
    let cases: Vec<(&str, F, &[&[usize]], (f64, f64))> = cases! {
        "matmul", &[&[3, 4], &[4, 2]], ANY, |a| ingot::matmul(&a[0], &a[1]);
        "matmul batched broadcast", &[&[2, 1, 3, 4], &[3, 4, 2]], ANY, |a| ingot::matmul(&a[0], &a[1]);
        "matmul vector", &[&[4], &[4, 2]], ANY, |a| ingot::matmul(&a[0], &a[1]);
        "einsum", &[&[2, 3], &[3, 4]], ANY, |a| ingot::einsum("ij,jk->ik", &[a[0].clone(), a[1].clone()]);
        "inv", &[&[3, 3]], ANY, |a| ingot::inv(&wc(&a[0])?);
        "solve", &[&[3, 3], &[3, 2]], ANY, |a| ingot::solve(&wc(&a[0])?, &a[1]);
        "solve vector", &[&[3, 3], &[3]], ANY, |a| ingot::solve(&wc(&a[0])?, &a[1]);
        "solve_triangular lower", &[&[3, 3], &[3, 2]], ANY, |a| ingot::solve_triangular(&wc(&a[0])?, &a[1], false, false, true);
        "solve_triangular upper unit", &[&[3, 3], &[3, 2]], ANY, |a| ingot::solve_triangular(&wc(&a[0])?, &a[1], true, true, true);
        "solve_triangular right", &[&[3, 3], &[2, 3]], ANY, |a| ingot::solve_triangular(&wc(&a[0])?, &a[1], true, false, false);
    };
    for (i, (name, f, shapes, dom)) in cases.iter().enumerate() {
        check_grad(name, f, shapes, *dom, 600 + i as u64);
    }
}

#[test]
fn second_derivatives() {
    // d²/dx² sin(x) = -sin(x); d²/dx² x³ = 6x; mixed partial of x*y is 1.
    let x = Array::from_slice(&[0.3f64, -1.2, 2.0], &[3]).unwrap();
    let dsin = |a: &[Array]| -> Result<Array> {
        let g = ingot::grad(
            |b: &[Array]| ingot::sum(&ingot::sin(&b[0])?, None, false),
            &[0],
        )(a)?;
        ingot::sum(&g[0], None, false)
    };
    let h = ingot::grad(dsin, &[0])(std::slice::from_ref(&x)).unwrap();
    let want: Vec<f64> = [0.3f64, -1.2, 2.0].iter().map(|v| -v.sin()).collect();
    assert_close(&h[0].to_f64_vec().unwrap(), &want, 1e-12, 1e-12, "sin''");

    // Both GELUs' second derivatives (their gradients are built from differentiable ops)
    // against central differences of the first.
    type G = fn(&Array) -> Result<Array>;
    for (name, f) in [
        ("gelu", ingot::gelu as G),
        ("gelu_tanh", ingot::gelu_tanh as G),
    ] {
        let d1 = move |a: &[Array]| {
            let g = ingot::grad(move |b: &[Array]| ingot::sum(&f(&b[0])?, None, false), &[0]);
            Ok::<_, ingot::Error>(g(a)?.remove(0))
        };
        let h = ingot::grad(move |a: &[Array]| ingot::sum(&d1(a)?, None, false), &[0])(
            std::slice::from_ref(&x),
        )
        .unwrap();
        let at = |v: f64| {
            let a = Array::from_slice(&[v], &[1]).unwrap();
            d1(&[a]).unwrap().to_f64_vec().unwrap()[0]
        };
        let e = 1e-5;
        let want: Vec<f64> = [0.3f64, -1.2, 2.0]
            .iter()
            .map(|&v| (at(v + e) - at(v - e)) / (2.0 * e))
            .collect();
        assert_close(&h[0].to_f64_vec().unwrap(), &want, 1e-6, 1e-6, name);
    }

    let cube = |b: &[Array]| ingot::sum(&ingot::power(&b[0], 3.0)?, None, false);
    let d2 = ingot::grad(
        move |a: &[Array]| ingot::sum(&ingot::grad(cube, &[0])(a)?[0], None, false),
        &[0],
    )(std::slice::from_ref(&x))
    .unwrap();
    let want: Vec<f64> = [0.3f64, -1.2, 2.0].iter().map(|v| 6.0 * v).collect();
    assert_close(&d2[0].to_f64_vec().unwrap(), &want, 1e-12, 1e-12, "(x^3)''");

    // Mixed: d/dy (d/dx sum(x*y*y)) = 2y per element.
    let y = Array::from_slice(&[1.5f64, 0.5, -2.0], &[3]).unwrap();
    let inner = |b: &[Array]| {
        ingot::sum(
            &ingot::multiply(&b[0], &ingot::square(&b[1])?)?,
            None,
            false,
        )
    };
    let mixed = ingot::grad(
        move |a: &[Array]| ingot::sum(&ingot::grad(inner, &[0])(a)?[0], None, false),
        &[1],
    )(&[x.clone(), y.clone()])
    .unwrap();
    assert_close(
        &mixed[0].to_f64_vec().unwrap(),
        &[3.0, 1.0, -4.0],
        1e-12,
        0.0,
        "mixed",
    );

    // jvp of a vjp: the Hessian-vector product of sum(exp(x)) is exp(x) * v.
    let v = Array::from_slice(&[1.0f64, 2.0, -1.0], &[3]).unwrap();
    let gradf = |a: &[Array]| -> Result<Vec<Array>> {
        ingot::grad(
            |b: &[Array]| ingot::sum(&ingot::exp(&b[0])?, None, false),
            &[0],
        )(a)
    };
    let (_, hv) = ingot::jvp(gradf, std::slice::from_ref(&x), std::slice::from_ref(&v)).unwrap();
    let want: Vec<f64> = [0.3f64, -1.2, 2.0]
        .iter()
        .zip([1.0, 2.0, -1.0])
        .map(|(a, b)| a.exp() * b)
        .collect();
    assert_close(&hv[0].to_f64_vec().unwrap(), &want, 1e-12, 0.0, "hvp");
}

#[test]
fn grad_api_trees_and_errors() {
    let w = Array::from_slice(&[1.0f64, 2.0], &[2]).unwrap();
    let b = Array::scalar(0.5f64);
    let x = Array::from_slice(&[3.0f64, -1.0], &[2]).unwrap();
    // loss = (w·x + b)^2 over a named map and a list.
    let mut m = std::collections::BTreeMap::new();
    m.insert("w".to_string(), w.clone());
    m.insert("b".to_string(), b.clone());
    let params = Tree::from(m);
    let loss = |t: &[Tree]| -> Result<Array> {
        let p = &t[0];
        let x = t[1].array()?;
        let z = ingot::add(
            &ingot::sum(&ingot::multiply(p.get("w")?.array()?, x)?, None, false)?,
            p.get("b")?.array()?,
        )?;
        ingot::square(&z)
    };
    let (v, g) = ingot::value_and_grad_tree(loss, &[0])(&[params, Tree::from(&x)]).unwrap();
    // z = 3 - 2 + 0.5 = 1.5; loss 2.25; dL/dw = 2 z x; dL/db = 2 z.
    assert_eq!(v.item::<f64>().unwrap(), 2.25);
    let gw = g[0]
        .get("w")
        .unwrap()
        .array()
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    assert_eq!(gw, vec![9.0, -3.0]);
    assert_eq!(
        g[0].get("b")
            .unwrap()
            .array()
            .unwrap()
            .item::<f64>()
            .unwrap(),
        3.0
    );

    // Unused arguments get zeros; integer paths get no gradient.
    let g =
        ingot::grad(|a: &[Array]| ingot::sum(&a[0], None, false), &[0, 1])(&[x.clone(), w.clone()])
            .unwrap();
    assert_eq!(g[1].to_vec::<f64>().unwrap(), vec![0.0, 0.0]);
    let g = ingot::grad(
        |a: &[Array]| {
            let i = ingot::argmax(&a[0], None, false)?;
            ingot::sum(
                &ingot::multiply(&a[0], &ingot::astype(&i, DType::F64)?)?,
                None,
                false,
            )
        },
        &[0],
    )(std::slice::from_ref(&x))
    .unwrap();
    assert_eq!(g[0].to_vec::<f64>().unwrap(), vec![0.0, 0.0]);

    // stop_gradient blocks its branch: d/dx [sg(exp x) + sin x] = cos x.
    let g = ingot::grad(
        |a: &[Array]| {
            let y = ingot::add(
                &ingot::stop_gradient(&ingot::exp(&a[0])?)?,
                &ingot::sin(&a[0])?,
            )?;
            ingot::sum(&y, None, false)
        },
        &[0],
    )(std::slice::from_ref(&x))
    .unwrap();
    assert_close(
        &g[0].to_f64_vec().unwrap(),
        &[3f64.cos(), 1f64.cos()],
        1e-15,
        0.0,
        "stop_gradient",
    );

    // Casts pass the cotangent back in the input's dtype.
    let g = ingot::grad(
        |a: &[Array]| {
            ingot::sum(
                &ingot::multiply(&ingot::astype(&a[0], DType::F32)?, 2.0)?,
                None,
                false,
            )
        },
        &[0],
    )(std::slice::from_ref(&x))
    .unwrap();
    assert_eq!(g[0].dtype(), DType::F64);
    assert_eq!(g[0].to_vec::<f64>().unwrap(), vec![2.0, 2.0]);

    // A function evaluated inside the trace still differentiates.
    let g = ingot::grad(
        |a: &[Array]| {
            let y = ingot::exp(&a[0])?;
            y.eval()?;
            ingot::sum(&y, None, false)
        },
        &[0],
    )(std::slice::from_ref(&x))
    .unwrap();
    assert_close(
        &g[0].to_f64_vec().unwrap(),
        &[3f64.exp(), (-1f64).exp()],
        1e-15,
        0.0,
        "eval inside",
    );

    // Errors name the transform and the problem.
    let e = ingot::grad(|a: &[Array]| ingot::exp(&a[0]), &[0])(std::slice::from_ref(&x))
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("[value_and_grad]") && e.contains("scalar"),
        "{e}"
    );
    let e =
        ingot::grad(|a: &[Array]| ingot::sum(&a[0], None, false), &[3])(std::slice::from_ref(&x))
            .err()
            .unwrap()
            .to_string();
    assert!(e.contains("argnum 3"), "{e}");
    let e = ingot::grad(
        |a: &[Array]| ingot::sum(&ingot::view(&a[0], DType::I64)?, None, false),
        &[0],
    )(std::slice::from_ref(&x));
    assert!(e.is_err() || e.unwrap()[0].to_vec::<f64>().unwrap() == vec![0.0, 0.0]);
    let e = ingot::vjp(
        |a| Ok(vec![ingot::exp(&a[0])?]),
        std::slice::from_ref(&x),
        &[w.clone(), w.clone()],
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("[vjp]") && e.contains("2 cotangents"), "{e}");
}

#[test]
fn custom_vjp_and_checkpoint() {
    let x = Array::from_slice(&[0.5f64, -1.0, 2.0], &[3]).unwrap();
    // A custom rule that scales the true gradient by 10 shows the rule is used.
    let f = ingot::custom_vjp(
        |a: &[Array]| Ok(vec![ingot::sin(&a[0])?]),
        |inp: &[Array], _out: &[Array], ct: &[Array]| {
            Ok(vec![Some(ingot::multiply(
                &ingot::multiply(&ct[0], &ingot::cos(&inp[0])?)?,
                10.0,
            )?)])
        },
    );
    let g = ingot::grad(move |a: &[Array]| ingot::sum(&f(a)?[0], None, false), &[0])(
        std::slice::from_ref(&x),
    )
    .unwrap();
    let want: Vec<f64> = [0.5f64, -1.0, 2.0].iter().map(|v| 10.0 * v.cos()).collect();
    assert_close(&g[0].to_f64_vec().unwrap(), &want, 1e-14, 0.0, "custom_vjp");

    // checkpoint gives the same gradient as the plain function.
    let body = |a: &[Array]| -> Result<Vec<Array>> {
        let h = ingot::tanh(&ingot::multiply(&a[0], &a[1])?)?;
        Ok(vec![ingot::exp(&h)?])
    };
    let w = Array::from_slice(&[1.5f64, 0.2, -0.7], &[3]).unwrap();
    let ck = ingot::checkpoint(body);
    let loss_ck = move |a: &[Array]| ingot::sum(&ck(a)?[0], None, false);
    let loss = move |a: &[Array]| ingot::sum(&body(a)?[0], None, false);
    let g1 = ingot::grad(loss_ck, &[0, 1])(&[x.clone(), w.clone()]).unwrap();
    let g2 = ingot::grad(loss, &[0, 1])(&[x.clone(), w.clone()]).unwrap();
    for (a, b) in g1.iter().zip(&g2) {
        assert_close(
            &a.to_f64_vec().unwrap(),
            &b.to_f64_vec().unwrap(),
            1e-14,
            0.0,
            "checkpoint",
        );
    }

    // Traced and simplified as compile does, the checkpointed gradient computes tanh twice
    // (forward, then again in the backward pass): the recomputation must not merge with the
    // forward op, or the activation it was meant to drop stays alive.
    let tanh_count = |f: &dyn Fn(&[Array]) -> Result<Vec<Array>>| {
        let g = ingot::transforms::trace(f, &[x.clone(), w.clone()]).unwrap();
        let g = ingot::transforms::simplify(&g).unwrap();
        let tanh = ingot::op::Op::Unary(ingot::op::UnaryOp::Tanh);
        g.apps.iter().filter(|a| a.op == tanh).count()
    };
    // The loss is an output too, so the forward ops stay in the program.
    let with_value = |vg: &dyn Fn(&[Array]) -> Result<(Array, Vec<Array>)>, a: &[Array]| {
        let (v, mut g) = vg(a)?;
        g.insert(0, v);
        Ok(g)
    };
    let vg_ck = ingot::value_and_grad(
        move |a: &[Array]| ingot::sum(&ingot::checkpoint(body)(a)?[0], None, false),
        &[0, 1],
    );
    let vg_plain = ingot::value_and_grad(
        move |a: &[Array]| ingot::sum(&body(a)?[0], None, false),
        &[0, 1],
    );
    let grad_ck = move |a: &[Array]| with_value(&vg_ck, a);
    let grad_plain = move |a: &[Array]| with_value(&vg_plain, a);
    assert_eq!(
        tanh_count(&grad_ck),
        2,
        "checkpoint recomputes under compile"
    );
    assert_eq!(tanh_count(&grad_plain), 1);
    let c = ingot::compile(grad_ck);
    let g3 = c.call(&[x.clone(), w.clone()]).unwrap();
    for (a, b) in g3[1..].iter().zip(&g2) {
        assert_close(
            &a.to_f64_vec().unwrap(),
            &b.to_f64_vec().unwrap(),
            1e-14,
            0.0,
            "compiled checkpoint",
        );
    }

    // Second derivatives pass through the checkpoint (and its barrier) too.
    let d2 = |ck: bool| {
        let inner = move |a: &[Array]| {
            let y = if ck {
                ingot::checkpoint(body)(a)?
            } else {
                body(a)?
            };
            ingot::sum(&y[0], None, false)
        };
        let outer = move |a: &[Array]| {
            let g = ingot::grad(inner, &[0])(a)?;
            ingot::sum(&g[0], None, false)
        };
        ingot::grad(outer, &[0, 1])(&[x.clone(), w.clone()]).unwrap()
    };
    for (a, b) in d2(true).iter().zip(&d2(false)) {
        assert_close(
            &a.to_f64_vec().unwrap(),
            &b.to_f64_vec().unwrap(),
            1e-12,
            1e-14,
            "checkpoint second derivative",
        );
    }
}

#[test]
fn ops_without_rules_are_named() {
    let a = Array::from_slice(&[1.0f64, 3.0, 2.0], &[3]).unwrap();
    let e = ingot::grad(
        |x: &[Array]| ingot::sum(&ingot::cummax(&x[0], Some(0), false, false)?, None, false),
        &[0],
    )(std::slice::from_ref(&a))
    .err()
    .unwrap()
    .to_string();
    assert!(
        e.contains("[vjp]") && e.contains("`scan`") && e.contains("exclusive"),
        "{e}"
    );
    let e = ingot::grad(
        |x: &[Array]| {
            ingot::sum(
                &ingot::abs(&ingot::astype(&x[0], DType::C64)?)?,
                None,
                false,
            )
        },
        &[0],
    )(std::slice::from_ref(&a))
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("complex"), "{e}");
}

#[test]
fn to_dot_draws_ops_shapes_and_edges() {
    let x = Array::from_slice(&[1.0f32, 2.0], &[2]).unwrap();
    let y = ingot::sum(
        &ingot::exp(&ingot::multiply(&x, 2.0).unwrap()).unwrap(),
        None,
        false,
    )
    .unwrap();
    let d = ingot::to_dot(std::slice::from_ref(&y));
    assert!(
        d.starts_with("digraph ingot {") && d.trim_end().ends_with('}'),
        "{d}"
    );
    assert!(
        d.contains("exp") && d.contains("multiply") && d.contains("reduce"),
        "{d}"
    );
    assert!(
        d.contains("(2,) float32") && d.contains("() float32"),
        "{d}"
    );
    // x and 2.0 into multiply, then exp, the reduction and its reshape: at least 4 edges.
    assert!(d.matches("->").count() >= 4, "{d}");
    let d = ingot::to_dot_fn(
        |a| Ok(vec![ingot::matmul(&a[0], &a[1])?]),
        &[
            ingot::ones(&[2, 3], DType::F32).unwrap(),
            ingot::ones(&[3, 4], DType::F32).unwrap(),
        ],
    )
    .unwrap();
    assert!(d.contains("matmul\\n(2, 4) float32"), "{d}");
}

/// The README's example, kept compiling and correct.
#[test]
fn readme_example() -> Result<()> {
    let x = Array::from_slice(&[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])?;
    let w = ingot::ones(&[3, 4], DType::F32)?;
    let y = ingot::matmul(&x, &w)?;
    let y = ingot::softmax(&(&y * 0.5)?, -1)?;
    let total = ingot::sum(&y, Some(&[1]), false)?;
    assert_close(&total.to_f64_vec()?, &[1.0, 1.0], 1e-6, 0.0, "softmax rows");
    let loss = |a: &[Array]| ingot::sum(&ingot::square(&ingot::tanh(&a[0])?)?, None, false);
    let g = ingot::grad(loss, &[0])(&[x])?;
    let want: Vec<f64> = (1..=6)
        .map(|v| {
            let t = (v as f64).tanh();
            2.0 * t * (1.0 - t * t)
        })
        .collect();
    // float32: 1 - tanh² cancels near saturation, so compare with an absolute floor.
    assert_close(&g[0].to_f64_vec()?, &want, 1e-5, 1e-6, "grad");
    Ok(())
}
