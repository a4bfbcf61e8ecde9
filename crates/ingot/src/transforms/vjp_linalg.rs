//! Reverse-mode rules of the matrix decompositions: cholesky, lu_factor, qr, svd, eigh.
//! Same contract as the rules in `vjp.rs`.
//!
//! All rules are linear in the cotangents and built from public ops (matmul,
//! solve_triangular, tril/triu, where), so they can be differentiated again. They assume
//! the generic case each formula needs: a positive-definite matrix (cholesky), distinct
//! eigenvalues (eigh, when eigenvectors get a cotangent), distinct non-zero singular values
//! (svd, when u or vt get a cotangent), a full-rank input (qr, lu_factor). Where that fails
//! the gradient holds infinities or NaN, as in JAX and PyTorch.

use super::vjp::no_rule;
use crate::op::Op;
use crate::{Array, DType, Result, SliceArg};

type Grads = Vec<Option<Array>>;

pub(crate) fn rule(
    op: &Op,
    inputs: &[Array],
    outs: &[Option<Array>],
    cts: &[Option<Array>],
    needs: &[bool],
) -> Result<Grads> {
    if !needs.first().copied().unwrap_or(false) || cts.iter().all(|c| c.is_none()) {
        return Ok(vec![None; inputs.len()]);
    }
    let a = &inputs[0];
    if a.dtype().is_complex() {
        return Err(no_rule(op, " of complex matrices"));
    }
    let g = match op {
        Op::Cholesky { upper } => cholesky(a, *upper, outs, cts)?,
        Op::Eigh { upper } => eigh(a, *upper, outs, cts)?,
        Op::Qr => qr(a, outs, cts)?,
        Op::Svd {
            compute_uv,
            full_matrices,
        } => svd(a, *compute_uv, *full_matrices, outs, cts)?,
        Op::LuFactor => lu_factor(a, outs, cts)?,
        _ => return Err(no_rule(op, ": not a decomposition")),
    };
    Ok(vec![g])
}

// ---- helpers --------------------------------------------------------------------------------

/// Swaps the last two axes.
fn mt(a: &Array) -> Result<Array> {
    crate::swapaxes(a, -1, -2)
}

fn mm(a: &Array, b: &Array) -> Result<Array> {
    crate::matmul(a, b)
}

fn last2(a: &Array) -> (usize, usize) {
    let s = a.shape();
    (s[s.len() - 2], s[s.len() - 1])
}

/// `a[..., rows, cols]` with half-open ranges on the last two axes.
fn block(a: &Array, rows: (usize, usize), cols: (usize, usize)) -> Result<Array> {
    let r = crate::slice_axis(a, -2, SliceArg::range(rows.0 as isize, rows.1 as isize))?;
    crate::slice_axis(&r, -1, SliceArg::range(cols.0 as isize, cols.1 as isize))
}

fn eye(n: usize, dtype: DType) -> Result<Array> {
    crate::eye(n, None, 0, dtype)
}

/// Diagonal matrices from the vectors on the last axis.
fn diag_embed(v: &Array) -> Result<Array> {
    let n = v.shape()[v.ndim() - 1];
    crate::multiply(&crate::expand_dims(v, &[-1])?, &eye(n, v.dtype())?)
}

/// Keeps only the diagonal of the last two axes (as a matrix).
fn diag_part(m: &Array) -> Result<Array> {
    let n = m.shape()[m.ndim() - 1];
    crate::multiply(m, &eye(n, m.dtype())?)
}

/// The gradient with respect to the one triangle a symmetric-input kernel reads, from `s`
/// with `df = <s, dA>` for symmetric `dA`: an off-diagonal element of the read triangle
/// stands for both `A_ij` and `A_ji`, so it collects `s_ij + s_ji`.
fn read_triangle(s: &Array, upper: bool) -> Result<Array> {
    let both = crate::add(s, &mt(s)?)?;
    let off = if upper {
        crate::triu(&both, 1)?
    } else {
        crate::tril(&both, -1)?
    };
    crate::add(&off, &diag_part(s)?)
}

/// `1 / (d_j - d_i)` off the diagonal and 0 on it, for `d` on the last axis.
fn inv_gaps(d: &Array) -> Result<Array> {
    let n = d.shape()[d.ndim() - 1];
    let diff = crate::subtract(
        &crate::expand_dims(d, &[-2])?,
        &crate::expand_dims(d, &[-1])?,
    )?;
    let on_diag = crate::eye(n, None, 0, DType::Bool)?;
    let safe = crate::where_(&on_diag, 1.0, &diff)?;
    crate::where_(&on_diag, 0.0, &crate::reciprocal(&safe)?)
}

/// `x` solving `x @ t = b` for triangular `t` (only its `upper` or lower triangle is read).
fn solve_right(t: &Array, b: &Array, upper: bool, unit: bool) -> Result<Array> {
    crate::solve_triangular(t, b, upper, unit, false)
}

/// `x` solving `t @ x = b` for triangular `t`.
fn solve_left(t: &Array, b: &Array, upper: bool, unit: bool) -> Result<Array> {
    crate::solve_triangular(t, b, upper, unit, true)
}

fn out(outs: &[Option<Array>], i: usize) -> Option<Array> {
    outs.get(i).cloned().flatten()
}

fn ct(cts: &[Option<Array>], i: usize) -> Option<Array> {
    cts.get(i).cloned().flatten()
}

fn sum_opt(terms: Vec<Option<Array>>) -> Result<Option<Array>> {
    let mut acc: Option<Array> = None;
    for t in terms.into_iter().flatten() {
        acc = Some(match acc {
            None => t,
            Some(a) => crate::add(&a, &t)?,
        });
    }
    Ok(acc)
}

// ---- cholesky -------------------------------------------------------------------------------

/// Murray (2016), "Differentiation of the Cholesky decomposition": with `A = L L^T`,
/// `P = Phi(L^T Lbar)` (lower triangle, diagonal halved) and `S = L^-T P L^-1`,
/// `df = <S, dA>` for symmetric `dA`. The kernel reads only the triangle it returns.
fn cholesky(
    a: &Array,
    upper: bool,
    outs: &[Option<Array>],
    cts: &[Option<Array>],
) -> Result<Option<Array>> {
    let Some(gbar) = ct(cts, 0) else {
        return Ok(None);
    };
    let f = match out(outs, 0) {
        Some(f) => f,
        None => crate::cholesky(a, upper)?,
    };
    // Work with the lower factor: the upper one is its transpose.
    let (l, lbar) = if upper {
        (mt(&f)?, mt(&gbar)?)
    } else {
        (f, gbar)
    };
    let m = mm(&mt(&l)?, &lbar)?;
    let p = crate::add(
        &crate::tril(&m, -1)?,
        &crate::multiply(&diag_part(&m)?, 0.5)?,
    )?;
    // L^-T P: solve L^T x = P (L^T is upper); then (L^-T P) L^-1: solve x L = y.
    let y = solve_left(&mt(&l)?, &p, true, false)?;
    let s = solve_right(&l, &y, false, false)?;
    Ok(Some(read_triangle(&s, upper)?))
}

// ---- eigh -----------------------------------------------------------------------------------

/// `df = <V (diag(wbar) + F o (V^T Vbar)) V^T, dA>` for symmetric `dA`, with
/// `F_ij = 1 / (w_j - w_i)` off the diagonal and 0 on it. The kernel reads one triangle.
fn eigh(
    a: &Array,
    upper: bool,
    outs: &[Option<Array>],
    cts: &[Option<Array>],
) -> Result<Option<Array>> {
    let (wbar, vbar) = (ct(cts, 0), ct(cts, 1));
    let (w, v) = match (out(outs, 0), out(outs, 1)) {
        (Some(w), Some(v)) => (w, v),
        _ => crate::eigh(a, upper)?,
    };
    let vt_vbar = match &vbar {
        Some(vb) => Some(crate::multiply(&inv_gaps(&w)?, &mm(&mt(&v)?, vb)?)?),
        None => None,
    };
    let wdiag = match &wbar {
        Some(wb) => Some(diag_embed(wb)?),
        None => None,
    };
    let Some(inner) = sum_opt(vec![wdiag, vt_vbar])? else {
        return Ok(None);
    };
    let s = mm(&mm(&v, &inner)?, &mt(&v)?)?;
    Ok(Some(read_triangle(&s, upper)?))
}

// ---- svd ------------------------------------------------------------------------------------

/// Townsend (2016), "Differentiating the singular value decomposition", real case, reduced
/// factors `A = U S V^T` (U m x k, V n x k, k = min(m, n)):
/// `Abar = U [(F o (U^T Ubar - Ubar^T U)) S + diag(sbar) + S (F o (V^T Vbar - Vbar^T V))] V^T
///        + (I - U U^T) Ubar S^-1 V^T + U S^-1 Vbar^T (I - V V^T)`,
/// `F_ij = 1 / (s_j^2 - s_i^2)` off the diagonal. With `full_matrices` the columns of U
/// and V beyond k are an arbitrary basis of a complement; their cotangents are ignored
/// (as PyTorch does).
fn svd(
    a: &Array,
    compute_uv: bool,
    full_matrices: bool,
    outs: &[Option<Array>],
    cts: &[Option<Array>],
) -> Result<Option<Array>> {
    let (m, n) = last2(a);
    let k = m.min(n);
    let (sbar, ubar, vtbar) = if compute_uv {
        (ct(cts, 1), ct(cts, 0), ct(cts, 2))
    } else {
        (ct(cts, 0), None, None)
    };
    // The factors: the node's own when all are there, else one recomputation with the same
    // parameters (the kernel is deterministic, so they match the node's cotangents).
    let (u, s, vt) = match (out(outs, 0), out(outs, 1), out(outs, 2)) {
        (Some(u), Some(s), Some(vt)) if compute_uv => (u, s, vt),
        _ => {
            let mut r = crate::svd(a, compute_uv && full_matrices, true)?;
            let vt = r.pop().unwrap();
            let s = r.pop().unwrap();
            (r.pop().unwrap(), s, vt)
        }
    };
    let reduce_u = |x: &Array| block(x, (0, m), (0, k));
    let reduce_vt = |x: &Array| block(x, (0, k), (0, n));
    let (u, vt) = if u.shape()[u.ndim() - 1] != k || vt.shape()[vt.ndim() - 2] != k {
        (reduce_u(&u)?, reduce_vt(&vt)?)
    } else {
        (u, vt)
    };
    let ubar = match ubar {
        Some(x) if x.shape()[x.ndim() - 1] != k => Some(reduce_u(&x)?),
        x => x,
    };
    let vbar = match vtbar {
        Some(x) if x.shape()[x.ndim() - 2] != k => Some(mt(&reduce_vt(&x)?)?),
        Some(x) => Some(mt(&x)?),
        None => None,
    };
    let v = mt(&vt)?;
    let s_row = crate::expand_dims(&s, &[-2])?; // scales columns
    let s_col = crate::expand_dims(&s, &[-1])?; // scales rows
    let f = if ubar.is_some() || vbar.is_some() {
        Some(inv_gaps(&crate::multiply(&s, &s)?)?)
    } else {
        None
    };
    let skew = |x: &Array, xbar: &Array| -> Result<Array> {
        let j = mm(&mt(x)?, xbar)?;
        crate::multiply(f.as_ref().unwrap(), &crate::subtract(&j, &mt(&j)?)?)
    };
    let u_term = match &ubar {
        Some(ub) => Some(crate::multiply(&skew(&u, ub)?, &s_row)?),
        None => None,
    };
    let v_term = match &vbar {
        Some(vb) => Some(crate::multiply(&s_col, &skew(&v, vb)?)?),
        None => None,
    };
    let s_term = match &sbar {
        Some(sb) => Some(diag_embed(sb)?),
        None => None,
    };
    let core = match sum_opt(vec![u_term, s_term, v_term])? {
        Some(c) => Some(mm(&mm(&u, &c)?, &vt)?),
        None => None,
    };
    // Parts of the cotangents outside the spans of U and V (only when U or V is not square).
    let u_out = match &ubar {
        Some(ub) if m > k => {
            let proj = crate::subtract(ub, &mm(&u, &mm(&mt(&u)?, ub)?)?)?;
            Some(mm(&crate::divide(&proj, &s_row)?, &vt)?)
        }
        _ => None,
    };
    let v_out = match &vbar {
        Some(vb) if n > k => {
            let proj = crate::subtract(vb, &mm(&v, &mm(&mt(&v)?, vb)?)?)?;
            Some(mm(&crate::divide(&u, &s_row)?, &mt(&proj)?)?)
        }
        _ => None,
    };
    sum_opt(vec![core, u_out, v_out])
}

// ---- qr -------------------------------------------------------------------------------------

/// Reduced QR. For m >= n (R square, invertible): with `M = R Rbar^T - Qbar^T Q`,
/// `Abar = (Qbar + Q copyltu(M)) R^-T` (the formula PyTorch documents; derived from
/// `Q^T dQ` antisymmetric and `dR R^-1` upper triangular). For m < n, `A = [X Y]`,
/// `R = [U V]`: X = Q U is a square QR and `V = Q^T Y`, so the cotangent of V adds
/// `Y Vbar^T` to Qbar and gives `Ybar = Q Vbar`.
fn qr(a: &Array, outs: &[Option<Array>], cts: &[Option<Array>]) -> Result<Option<Array>> {
    let (m, n) = last2(a);
    let (q, r) = match (out(outs, 0), out(outs, 1)) {
        (Some(q), Some(r)) => (q, r),
        _ => crate::qr(a)?,
    };
    let qbar = match ct(cts, 0) {
        Some(x) => x,
        None => crate::zeros_like(&q)?,
    };
    let rbar = match ct(cts, 1) {
        Some(x) => x,
        None => crate::zeros_like(&r)?,
    };
    if m >= n {
        return Ok(Some(qr_tall(&q, &r, &qbar, &rbar)?));
    }
    let y = block(a, (0, m), (m, n))?;
    let u = block(&r, (0, m), (0, m))?;
    let ubar = block(&rbar, (0, m), (0, m))?;
    let vbar = block(&rbar, (0, m), (m, n))?;
    let qbar = crate::add(&qbar, &mm(&y, &mt(&vbar)?)?)?;
    let xbar = qr_tall(&q, &u, &qbar, &ubar)?;
    let ybar = mm(&q, &vbar)?;
    Ok(Some(crate::concatenate(&[xbar, ybar], Some(-1))?))
}

fn qr_tall(q: &Array, r: &Array, qbar: &Array, rbar: &Array) -> Result<Array> {
    let m = crate::subtract(&mm(r, &mt(rbar)?)?, &mm(&mt(qbar)?, q)?)?;
    let copyltu = crate::add(&crate::tril(&m, 0)?, &mt(&crate::tril(&m, -1)?)?)?;
    let b = crate::add(qbar, &mm(q, &copyltu)?)?;
    // b R^-T: solve x R^T = b, R^T lower.
    solve_right(&mt(r)?, &b, false, false)
}

// ---- lu_factor ------------------------------------------------------------------------------

/// `P^T A = L U` (L m x k unit lower, U k x n upper, k = min(m, n)). Square part: with
/// `X = L^-1 d(P^T A) U^-1`, `dL = L tril(X, -1)` and `dU = triu(X) U`, so
/// `d(P^T A)bar = L^-T (tril(L^T Lbar, -1) + triu(Ubar U^T)) U^-T`. Rows of L below k
/// (m > n) are `A2 U^-1`; columns of U beyond k (m < n) are `L^-1 A2`: their cotangents
/// are pulled back through those solves first.
fn lu_factor(a: &Array, outs: &[Option<Array>], cts: &[Option<Array>]) -> Result<Option<Array>> {
    let Some(lubar) = ct(cts, 0) else {
        return Ok(None);
    };
    let (m, n) = last2(a);
    let k = m.min(n);
    let dt = lubar.dtype();
    let lu = match out(outs, 0) {
        Some(lu) => lu,
        None => crate::lu_factor(a)?.0,
    };
    // The permutation matrix with A = P L U: from the node's permutation output when it has
    // one (p[r, c] = perm[c] == r, as `lu` builds it), else from a recomputation.
    let p = match out(outs, 2) {
        Some(perm) => {
            let rows = crate::reshape_to(&crate::arange(0.0, m as f64, 1.0, DType::I32)?, &[m, 1])?;
            crate::astype(
                &crate::equal(&crate::expand_dims(&perm, &[-2])?, &rows)?,
                dt,
            )?
        }
        None => crate::astype(&crate::lu(a)?.0, dt)?,
    };
    let l1 = crate::add(
        &crate::tril(&block(&lu, (0, k), (0, k))?, -1)?,
        &eye(k, lu.dtype())?,
    )?;
    let u1 = crate::triu(&block(&lu, (0, k), (0, k))?, 0)?;
    let mut l1bar = crate::tril(&block(&lubar, (0, k), (0, k))?, -1)?;
    let mut u1bar = crate::triu(&block(&lubar, (0, k), (0, k))?, 0)?;
    let mut extra: Option<(Array, isize)> = None;
    if m > n {
        // L2 = A2 U^-1: A2bar = L2bar U^-T, and Ubar gets -L2^T A2bar.
        let l2 = block(&lu, (k, m), (0, k))?;
        let l2bar = block(&lubar, (k, m), (0, k))?;
        let a2bar = solve_right(&mt(&u1)?, &l2bar, false, false)?;
        u1bar = crate::subtract(&u1bar, &crate::triu(&mm(&mt(&l2)?, &a2bar)?, 0)?)?;
        extra = Some((a2bar, -2));
    } else if m < n {
        // U2 = L^-1 A2: A2bar = L^-T U2bar, and Lbar gets -A2bar U2^T.
        let u2 = block(&lu, (0, k), (k, n))?;
        let u2bar = block(&lubar, (0, k), (k, n))?;
        let a2bar = solve_left(&mt(&l1)?, &u2bar, true, true)?;
        l1bar = crate::subtract(&l1bar, &crate::tril(&mm(&a2bar, &mt(&u2)?)?, -1)?)?;
        extra = Some((a2bar, -1));
    }
    let phi = crate::add(
        &crate::tril(&mm(&mt(&l1)?, &l1bar)?, -1)?,
        &crate::triu(&mm(&u1bar, &mt(&u1)?)?, 0)?,
    )?;
    let y = solve_left(&mt(&l1)?, &phi, true, true)?;
    let g1 = solve_right(&mt(&u1)?, &y, false, false)?;
    let g = match extra {
        Some((a2bar, axis)) => crate::concatenate(&[g1, a2bar], Some(axis))?,
        None => g1,
    };
    Ok(Some(mm(&p, &g)?))
}
