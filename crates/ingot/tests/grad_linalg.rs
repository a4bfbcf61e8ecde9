//! Differentiation of the matrix decompositions (cholesky, eigh, svd, qr, lu_factor): vjp
//! and jvp against central finite differences in f64. Each tested function is invariant to
//! the decomposition's sign ambiguities, so the finite differences are well defined.

mod common;
use common::*;
use ingot::{Array, DType, Result};

macro_rules! cases {
    ($($name:expr, $shapes:expr, $dom:expr, |$a:ident| $body:expr;)*) => {
        vec![$(($name, Box::new(|$a: &[Array]| -> Result<Array> { $body }) as F, $shapes, $dom)),*]
    };
}

type Case = (&'static str, F, &'static [&'static [usize]], (f64, f64));

const ANY: (f64, f64) = (-2.0, 2.0);

fn run(cases: Vec<Case>, seed: u64) {
    for (i, (name, f, shapes, dom)) in cases.iter().enumerate() {
        check_grad(name, f, shapes, *dom, seed + i as u64);
    }
}

fn mt(a: &Array) -> Result<Array> {
    ingot::swapaxes(a, -1, -2)
}

fn last2(a: &Array) -> (usize, usize) {
    let s = a.shape();
    (s[s.len() - 2], s[s.len() - 1])
}

/// `b b^T + n I`: symmetric positive definite and well conditioned.
fn spd(b: &Array) -> Result<Array> {
    let n = last2(b).0;
    ingot::add(&ingot::matmul(b, &mt(b)?)?, &shifted_eye(n, n as f64)?)
}

fn shifted_eye(n: usize, shift: f64) -> Result<Array> {
    ingot::multiply(&ingot::eye(n, None, 0, DType::F64)?, shift)
}

/// `scale * x + shift * I` (x square): diagonally dominant for small `scale`.
fn shifted(x: &Array, scale: f64, shift: f64) -> Result<Array> {
    ingot::add(
        &ingot::multiply(x, scale)?,
        &shifted_eye(last2(x).0, shift)?,
    )
}

fn sym(x: &Array) -> Result<Array> {
    ingot::add(x, &mt(x)?)
}

/// `v diag(d) w` with d on the last axis.
fn vdw(v: &Array, d: &Array, w: &Array) -> Result<Array> {
    ingot::matmul(&ingot::multiply(v, &ingot::expand_dims(d, &[-2])?)?, w)
}

fn flat(x: &Array) -> Result<Array> {
    ingot::reshape_to(x, &[x.size()])
}

/// QR made unique: the diagonal of R made positive (q d, d r with d = sign(diag r)).
fn qr_fixed(a: &Array) -> Result<(Array, Array)> {
    let (q, r) = ingot::qr(a)?;
    let d = ingot::sign(&ingot::diagonal(&r, 0, -2, -1)?)?;
    let q = ingot::multiply(&q, &ingot::expand_dims(&d, &[-2])?)?;
    let r = ingot::multiply(&r, &ingot::expand_dims(&d, &[-1])?)?;
    Ok((q, r))
}

#[test]
fn cholesky_matches_finite_differences() {
    let cases: Vec<Case> = cases! {
        "cholesky spd", &[&[3, 3]], ANY, |a| ingot::cholesky(&spd(&a[0])?, false);
        "cholesky spd upper", &[&[3, 3]], ANY, |a| ingot::cholesky(&spd(&a[0])?, true);
        "cholesky spd batched", &[&[2, 4, 4]], ANY, |a| ingot::cholesky(&spd(&a[0])?, false);
        "cholesky spd batched upper", &[&[2, 3, 3]], ANY, |a| ingot::cholesky(&spd(&a[0])?, true);
        "cholesky 1x1", &[&[1, 1]], (0.5, 2.0), |a| ingot::cholesky(&a[0], false);
        // Non-symmetric inputs: only the returned triangle is read.
        "cholesky reads lower", &[&[4, 4]], ANY, |a| ingot::cholesky(&shifted(&a[0], 0.2, 2.0)?, false);
        "cholesky reads upper", &[&[4, 4]], ANY, |a| ingot::cholesky(&shifted(&a[0], 0.2, 2.0)?, true);
        "cholesky logdet", &[&[3, 3]], ANY, |a| {
            let l = ingot::cholesky(&spd(&a[0])?, false)?;
            ingot::sum(&ingot::log(&ingot::diagonal(&l, 0, -2, -1)?)?, None, false)
        };
        "cholesky solve", &[&[3, 3], &[3, 2]], ANY, |a| {
            let l = ingot::cholesky(&spd(&a[0])?, false)?;
            let y = ingot::solve_triangular(&l, &a[1], false, false, true)?;
            ingot::solve_triangular(&mt(&l)?, &y, true, false, true)
        };
    };
    run(cases, 1000);
}

#[test]
fn eigh_matches_finite_differences() {
    let cases: Vec<Case> = cases! {
        "eigvalsh sym", &[&[4, 4]], ANY, |a| ingot::eigvalsh(&sym(&a[0])?, false);
        "eigvalsh batched", &[&[2, 3, 3]], ANY, |a| ingot::eigvalsh(&sym(&a[0])?, true);
        // Non-symmetric inputs: only one triangle is read.
        "eigvalsh reads lower", &[&[4, 4]], ANY, |a| ingot::eigvalsh(&a[0], false);
        "eigvalsh reads upper", &[&[4, 4]], ANY, |a| ingot::eigvalsh(&a[0], true);
        "eigh v f(w) v^T", &[&[4, 4]], ANY, |a| {
            let (w, v) = ingot::eigh(&sym(&a[0])?, false)?;
            vdw(&v, &ingot::power(&w, 3.0)?, &mt(&v)?)
        };
        "eigh v f(w) v^T reads upper", &[&[3, 3]], ANY, |a| {
            let (w, v) = ingot::eigh(&a[0], true)?;
            vdw(&v, &ingot::exp(&ingot::multiply(&w, 0.5)?)?, &mt(&v)?)
        };
        "eigh v^2 reads lower", &[&[4, 4]], ANY, |a| ingot::square(&ingot::eigh(&a[0], false)?.1);
        "eigh v^2 and w batched", &[&[2, 3, 3]], ANY, |a| {
            let (w, v) = ingot::eigh(&sym(&a[0])?, false)?;
            ingot::add(&ingot::square(&v)?, &ingot::expand_dims(&w, &[-2])?)
        };
        "eigh 1x1", &[&[1, 1]], ANY, |a| {
            let (w, v) = ingot::eigh(&a[0], false)?;
            ingot::add(&ingot::square(&v)?, &ingot::expand_dims(&w, &[-1])?)
        };
    };
    run(cases, 2000);
}

#[test]
fn eigvalsh_gradient_is_finite_at_repeated_eigenvalues() {
    // d sum(w) / dA = I even at A = I, where the eigenvectors are not unique.
    let a = ingot::eye(3, None, 0, DType::F64).unwrap();
    let g = ingot::grad(
        |x: &[Array]| ingot::sum(&ingot::eigvalsh(&x[0], false)?, None, false),
        &[0],
    )(std::slice::from_ref(&a))
    .unwrap();
    let want = ingot::eye(3, None, 0, DType::F64).unwrap();
    assert_close(
        &g[0].to_f64_vec().unwrap(),
        &want.to_f64_vec().unwrap(),
        1e-12,
        1e-12,
        "grad trace(eigvalsh)",
    );
}

#[test]
fn svd_matches_finite_differences() {
    let cases: Vec<Case> = cases! {
        "svd s square", &[&[3, 3]], ANY, |a| Ok(ingot::svd(&a[0], false, false)?.remove(0));
        "svd s tall", &[&[5, 3]], ANY, |a| Ok(ingot::svd(&a[0], false, false)?.remove(0));
        "svd s wide", &[&[2, 4]], ANY, |a| Ok(ingot::svd(&a[0], false, false)?.remove(0));
        "svd s batched", &[&[2, 3, 4]], ANY, |a| Ok(ingot::svd(&a[0], false, false)?.remove(0));
        "svd s with uv", &[&[4, 3]], ANY, |a| Ok(ingot::svd(&a[0], false, true)?.remove(1));
        "svd u f(s) vt square", &[&[3, 3]], ANY, |a| {
            let r = ingot::svd(&a[0], false, true)?;
            vdw(&r[0], &ingot::power(&r[1], 3.0)?, &r[2])
        };
        "svd u f(s) vt tall", &[&[5, 3]], ANY, |a| {
            let r = ingot::svd(&a[0], false, true)?;
            vdw(&r[0], &ingot::power(&r[1], 3.0)?, &r[2])
        };
        "svd u f(s) vt wide", &[&[3, 5]], ANY, |a| {
            let r = ingot::svd(&a[0], false, true)?;
            vdw(&r[0], &ingot::sqrt(&r[1])?, &r[2])
        };
        "svd u^2 tall", &[&[5, 3]], ANY, |a| ingot::square(&ingot::svd(&a[0], false, true)?[0]);
        "svd vt^2 wide", &[&[3, 5]], ANY, |a| ingot::square(&ingot::svd(&a[0], false, true)?[2]);
        "svd u^2 vt^2 batched", &[&[2, 4, 3]], ANY, |a| {
            let r = ingot::svd(&a[0], false, true)?;
            ingot::concatenate(&[flat(&ingot::square(&r[0])?)?, flat(&ingot::square(&r[2])?)?], Some(0))
        };
        "svd v^2 only (u dropped)", &[&[4, 3]], ANY, |a| {
            let vt = ingot::svd(&a[0], false, true)?.remove(2);
            ingot::square(&vt)
        };
        "svd full square u^2", &[&[3, 3]], ANY, |a| {
            let r = ingot::svd(&a[0], true, true)?;
            ingot::add(&ingot::square(&r[0])?, &ingot::square(&r[2])?)
        };
        "svd full tall, first columns", &[&[4, 2]], ANY, |a| {
            let r = ingot::svd(&a[0], true, true)?;
            let u = ingot::slice_axis(&r[0], -1, ingot::SliceArg::range(0, 2))?;
            vdw(&u, &ingot::exp(&r[1])?, &r[2])
        };
        "svd full wide, first rows", &[&[2, 4]], ANY, |a| {
            let r = ingot::svd(&a[0], true, true)?;
            let vt = ingot::slice_axis(&r[2], -2, ingot::SliceArg::range(0, 2))?;
            ingot::square(&vt)
        };
        "nuclear norm", &[&[3, 4]], ANY, |a| ingot::norm(&a[0], ingot::NormOrd::Nuc, None, false);
        "pinv", &[&[4, 3]], ANY, |a| ingot::pinv(&a[0], 1e-10);
    };
    run(cases, 3000);
}

#[test]
fn qr_matches_finite_differences() {
    let cases: Vec<Case> = cases! {
        "qr q r square", &[&[3, 3]], ANY, |a| {
            let (q, r) = qr_fixed(&a[0])?;
            ingot::concatenate(&[flat(&q)?, flat(&r)?], Some(0))
        };
        "qr q r tall", &[&[5, 3]], ANY, |a| {
            let (q, r) = qr_fixed(&a[0])?;
            ingot::concatenate(&[flat(&q)?, flat(&r)?], Some(0))
        };
        "qr q r wide", &[&[3, 5]], ANY, |a| {
            let (q, r) = qr_fixed(&a[0])?;
            ingot::concatenate(&[flat(&q)?, flat(&r)?], Some(0))
        };
        "qr q r batched", &[&[2, 4, 3]], ANY, |a| {
            let (q, r) = qr_fixed(&a[0])?;
            ingot::concatenate(&[flat(&q)?, flat(&r)?], Some(0))
        };
        "qr r only", &[&[4, 2]], ANY, |a| Ok(qr_fixed(&a[0])?.1);
        "qr q only wide", &[&[2, 3]], ANY, |a| Ok(qr_fixed(&a[0])?.0);
        "qr q r product", &[&[4, 3]], ANY, |a| {
            let (q, r) = ingot::qr(&a[0])?;
            ingot::matmul(&q, &ingot::multiply(&r, &r)?)
        };
        "qr q q^T", &[&[4, 2]], ANY, |a| {
            let q = ingot::qr(&a[0])?.0;
            ingot::matmul(&q, &mt(&q)?)
        };
    };
    run(cases, 4000);
}

#[test]
fn lu_matches_finite_differences() {
    let cases: Vec<Case> = cases! {
        "lu_factor square", &[&[3, 3]], ANY, |a| Ok(ingot::lu_factor(&a[0])?.0);
        "lu_factor 4x4", &[&[4, 4]], ANY, |a| Ok(ingot::lu_factor(&a[0])?.0);
        "lu_factor tall", &[&[5, 3]], ANY, |a| Ok(ingot::lu_factor(&a[0])?.0);
        "lu_factor wide", &[&[3, 5]], ANY, |a| Ok(ingot::lu_factor(&a[0])?.0);
        "lu_factor batched", &[&[2, 3, 3]], ANY, |a| Ok(ingot::lu_factor(&a[0])?.0);
        "lu l u", &[&[4, 3]], ANY, |a| {
            let (_, l, u) = ingot::lu(&a[0])?;
            ingot::concatenate(&[flat(&l)?, flat(&u)?], Some(0))
        };
        "lu p l u wide", &[&[2, 4]], ANY, |a| {
            let (p, l, u) = ingot::lu(&a[0])?;
            ingot::matmul(&p, &ingot::matmul(&l, &ingot::square(&u)?)?)
        };
        "det", &[&[3, 3]], ANY, |a| ingot::det(&a[0]);
        "det batched", &[&[2, 4, 4]], ANY, |a| ingot::det(&a[0]);
        "slogdet", &[&[3, 3]], ANY, |a| Ok(ingot::slogdet(&a[0])?.1);
    };
    run(cases, 5000);
}

#[test]
fn decompositions_differentiate_twice() {
    // The rules are built from differentiable ops: grad of a grad against finite differences.
    let cases: Vec<Case> = cases! {
        "grad of cholesky logdet", &[&[3, 3]], ANY, |a| {
            let f = |b: &[Array]| {
                let l = ingot::cholesky(&spd(&b[0])?, false)?;
                ingot::sum(&ingot::log(&ingot::diagonal(&l, 0, -2, -1)?)?, None, false)
            };
            Ok(ingot::grad(f, &[0])(a)?.remove(0))
        };
        "grad of eigh", &[&[3, 3]], ANY, |a| {
            let f = |b: &[Array]| {
                let (w, v) = ingot::eigh(&sym(&b[0])?, false)?;
                let x = vdw(&v, &ingot::power(&w, 3.0)?, &mt(&v)?)?;
                ingot::sum(&ingot::multiply(&x, &b[0])?, None, false)
            };
            Ok(ingot::grad(f, &[0])(a)?.remove(0))
        };
        "grad of svd", &[&[3, 2]], ANY, |a| {
            let f = |b: &[Array]| {
                let r = ingot::svd(&b[0], false, true)?;
                ingot::sum(&ingot::square(&ingot::square(&r[0])?)?, None, false)
            };
            Ok(ingot::grad(f, &[0])(a)?.remove(0))
        };
        "grad of qr", &[&[3, 3]], ANY, |a| {
            let f = |b: &[Array]| {
                let (q, r) = qr_fixed(&b[0])?;
                ingot::sum(&ingot::multiply(&ingot::matmul(&q, &ingot::square(&r)?)?, &b[0])?, None, false)
            };
            Ok(ingot::grad(f, &[0])(a)?.remove(0))
        };
        "grad of det", &[&[3, 3]], ANY, |a| {
            Ok(ingot::grad(|b: &[Array]| ingot::det(&b[0]), &[0])(a)?.remove(0))
        };
    };
    run(cases, 6000);
}
