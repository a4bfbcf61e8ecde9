//! Linear algebra: matmul and its relatives (addmm, outer, inner, tensordot, einsum, kron,
//! cross), decompositions (cholesky, lu, qr, svd, eigh), solvers (solve, solve_triangular,
//! inv, pinv) and the composites built on them (norm, det, slogdet).
//!
//! Decompositions compute in float32 or float64: float16/bfloat16 compute in float32 and round
//! the results once; integer and bool inputs compute in float32 (NumPy would use float64;
//! float32 is the project's default float). Complex decompositions are not supported.

use crate::array::Array;
use crate::dtype::{result_type, DType};
use crate::op::Op;
use crate::ops::{
    add, arange, astype, broadcast_to, diagonal, equal, expand_dims, eye, logical_not, moveaxis,
    multiply, ones, reshape_to, slice, slice_axis, squeeze, subtract, transpose, tri, where_,
    SliceArg,
};
use crate::shape::{broadcast_shapes, fmt_shape, normalize_axes, normalize_axis};
use crate::{Error, Result};

fn promote2(a: &Array, b: &Array) -> Result<(Array, Array, DType)> {
    let dt = result_type(&[a.type_info(), b.type_info()]);
    Ok((astype(a, dt)?, astype(b, dt)?, dt))
}

/// Permutes axes by a list of non-negative axes.
fn permute(a: &Array, perm: &[usize]) -> Result<Array> {
    if perm.iter().enumerate().all(|(i, &p)| i == p) {
        return Ok(a.clone());
    }
    let p: Vec<isize> = perm.iter().map(|&x| x as isize).collect();
    transpose(a, Some(&p))
}

/// Swaps the last two axes.
fn mat_t(a: &Array) -> Result<Array> {
    let nd = a.ndim();
    let mut perm: Vec<usize> = (0..nd).collect();
    perm.swap(nd - 2, nd - 1);
    permute(a, &perm)
}

fn broadcast_if(a: &Array, shape: &[usize]) -> Result<Array> {
    if a.shape() == shape {
        Ok(a.clone())
    } else {
        broadcast_to(a, shape)
    }
}

// ---- matmul family --------------------------------------------------------------------------

/// Matrix product with NumPy's rules: 1-D operands get a dimension prepended (left) or
/// appended (right) that is removed afterwards; leading (batch) dimensions broadcast.
pub fn matmul(a: &Array, b: &Array) -> Result<Array> {
    if a.ndim() == 0 || b.ndim() == 0 {
        return Err(Error::invalid(
            "matmul",
            format!(
                "operands must be at least 1-d, got {} @ {}",
                fmt_shape(a.shape()),
                fmt_shape(b.shape())
            ),
        ));
    }
    let (x, y, dt) = promote2(&crate::amp::low(a)?, &crate::amp::low(b)?)?;
    let x = if a.ndim() == 1 {
        expand_dims(&x, &[0])?
    } else {
        x
    };
    let y = if b.ndim() == 1 {
        expand_dims(&y, &[-1])?
    } else {
        y
    };
    let (xs, ys) = (x.shape(), y.shape());
    let (m, k) = (xs[xs.len() - 2], xs[xs.len() - 1]);
    let (k2, n) = (ys[ys.len() - 2], ys[ys.len() - 1]);
    if k != k2 {
        return Err(Error::invalid(
            "matmul",
            format!(
                "inner dimensions differ: {} @ {}",
                fmt_shape(a.shape()),
                fmt_shape(b.shape())
            ),
        ));
    }
    let batch = broadcast_shapes("matmul", &xs[..xs.len() - 2], &ys[..ys.len() - 2])?;
    let with = |r: usize, c: usize| -> Vec<usize> {
        let mut s = batch.clone();
        s.extend([r, c]);
        s
    };
    crate::shape::checked_size("matmul", &with(m, n))?;
    let mut out = if y.ndim() == 2 && x.ndim() > 2 {
        // A stack against one matrix (a layer's weight) is one product of taller rows, as
        // PyTorch does it: one GEMM instead of a batch against a broadcast, and the
        // weight's gradient one product over every row instead of a stack and its sum.
        let bm = batch.iter().product::<usize>() * m;
        let rows = reshape_to(&x, &[bm, k])?;
        let out = Array::from_op(Op::Matmul, vec![rows, y], vec![bm, n], dt);
        reshape_to(&out, &with(m, n))?
    } else {
        let x = broadcast_if(&x, &with(m, k))?;
        let y = broadcast_if(&y, &with(k, n))?;
        Array::from_op(Op::Matmul, vec![x, y], with(m, n), dt)
    };
    if a.ndim() == 1 {
        out = squeeze(&out, Some(&[-2]))?;
    }
    if b.ndim() == 1 {
        out = squeeze(&out, Some(&[-1]))?;
    }
    Ok(out)
}

/// `alpha * (a @ b) + beta * c`, as MLX's addmm (c broadcasts against the product).
pub fn addmm(c: &Array, a: &Array, b: &Array, alpha: f64, beta: f64) -> Result<Array> {
    let mut ab = matmul(a, b)?;
    if alpha != 1.0 {
        ab = multiply(&ab, coef(alpha, ab.dtype()))?;
    }
    let c = if beta != 1.0 {
        multiply(c, coef(beta, c.dtype()))?
    } else {
        c.clone()
    };
    broadcast_shapes("addmm", c.shape(), ab.shape())?;
    add(&ab, &c)
}

/// A float coefficient for arrays of `dtype`: exact in float64 arrays (a weak scalar would
/// round it to float32 first), promoting integer arrays to float.
fn coef(v: f64, dtype: DType) -> Array {
    if dtype.is_inexact() {
        Array::scalar_as(v, dtype)
    } else {
        Array::weak_scalar(v)
    }
}

/// Outer product of the flattened operands: `out[i, j] = a[i] * b[j]`.
pub fn outer(a: &Array, b: &Array) -> Result<Array> {
    let x = reshape_to(a, &[a.size(), 1])?;
    let y = reshape_to(b, &[1, b.size()])?;
    multiply(&x, &y)
}

/// Sum product over the last axes: shape `a.shape[:-1] + b.shape[:-1]` (0-d operands
/// multiply).
pub fn inner(a: &Array, b: &Array) -> Result<Array> {
    if a.ndim() == 0 || b.ndim() == 0 {
        return multiply(a, b);
    }
    let (ka, kb) = (a.shape()[a.ndim() - 1], b.shape()[b.ndim() - 1]);
    if ka != kb {
        return Err(Error::invalid(
            "inner",
            format!(
                "last dimensions differ: {} and {}",
                fmt_shape(a.shape()),
                fmt_shape(b.shape())
            ),
        ));
    }
    tensordot(a, b, TensorAxes::Pairs(vec![-1], vec![-1]))
}

/// Which axes `tensordot` sums over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TensorAxes {
    /// The last `n` axes of `a` with the first `n` of `b`.
    Count(usize),
    /// Explicit axis lists of equal length.
    Pairs(Vec<isize>, Vec<isize>),
}

/// Sum of products over the given axes; the result has a's free axes then b's.
pub fn tensordot(a: &Array, b: &Array, axes: TensorAxes) -> Result<Array> {
    let (na, nb) = (a.ndim(), b.ndim());
    let (sa, sb): (Vec<usize>, Vec<usize>) = match &axes {
        TensorAxes::Count(n) => {
            if *n > na || *n > nb {
                return Err(Error::invalid(
                    "tensordot",
                    format!(
                        "cannot sum over {n} axes of {} and {}",
                        fmt_shape(a.shape()),
                        fmt_shape(b.shape())
                    ),
                ));
            }
            ((na - n..na).collect(), (0..*n).collect())
        }
        TensorAxes::Pairs(x, y) => {
            if x.len() != y.len() {
                return Err(Error::invalid(
                    "tensordot",
                    format!("axis lists differ in length: {x:?} and {y:?}"),
                ));
            }
            (
                normalize_axes("tensordot", x, na)?,
                normalize_axes("tensordot", y, nb)?,
            )
        }
    };
    for (&i, &j) in sa.iter().zip(&sb) {
        if a.shape()[i] != b.shape()[j] {
            return Err(Error::invalid(
                "tensordot",
                format!(
                    "shape mismatch for sum: axis {i} of {} and axis {j} of {}",
                    fmt_shape(a.shape()),
                    fmt_shape(b.shape())
                ),
            ));
        }
    }
    let free_a: Vec<usize> = (0..na).filter(|i| !sa.contains(i)).collect();
    let free_b: Vec<usize> = (0..nb).filter(|i| !sb.contains(i)).collect();
    let size = |s: &[usize], ax: &[usize]| -> usize { ax.iter().map(|&i| s[i]).product() };
    let (m, k, n) = (
        size(a.shape(), &free_a),
        size(a.shape(), &sa),
        size(b.shape(), &free_b),
    );
    let pa: Vec<usize> = free_a.iter().chain(&sa).copied().collect();
    let pb: Vec<usize> = sb.iter().chain(&free_b).copied().collect();
    let x = reshape_to(&permute(a, &pa)?, &[m, k])?;
    let y = reshape_to(&permute(b, &pb)?, &[k, n])?;
    let out_shape: Vec<usize> = free_a
        .iter()
        .map(|&i| a.shape()[i])
        .chain(free_b.iter().map(|&i| b.shape()[i]))
        .collect();
    reshape_to(&matmul(&x, &y)?, &out_shape)
}

/// Kronecker product: blocks `a[i] * b`, operands padded with leading 1s to equal rank.
pub fn kron(a: &Array, b: &Array) -> Result<Array> {
    let nd = a.ndim().max(b.ndim());
    let pad = |x: &Array| -> Vec<usize> {
        let mut s = vec![1; nd - x.ndim()];
        s.extend_from_slice(x.shape());
        s
    };
    let (sa, sb) = (pad(a), pad(b));
    let mut ia = Vec::with_capacity(2 * nd);
    let mut ib = Vec::with_capacity(2 * nd);
    for d in 0..nd {
        ia.extend([sa[d], 1]);
        ib.extend([1, sb[d]]);
    }
    let prod = multiply(&reshape_to(a, &ia)?, &reshape_to(b, &ib)?)?;
    let out: Vec<usize> = (0..nd).map(|d| sa[d] * sb[d]).collect();
    reshape_to(&prod, &out)
}

/// Cross product of 2- or 3-vectors along `axis` of each operand (NumPy's `cross` with
/// `axis`); 2-vectors give the z component only, as NumPy.
pub fn cross(a: &Array, b: &Array, axis: isize) -> Result<Array> {
    if a.ndim() == 0 || b.ndim() == 0 {
        return Err(Error::invalid(
            "cross",
            format!(
                "operands must be at least 1-d, got {} and {}",
                fmt_shape(a.shape()),
                fmt_shape(b.shape())
            ),
        ));
    }
    let ax_a = normalize_axis("cross", axis, a.ndim())?;
    let ax_b = normalize_axis("cross", axis, b.ndim())?;
    let (da, db) = (a.shape()[ax_a], b.shape()[ax_b]);
    if !matches!(da, 2 | 3) || !matches!(db, 2 | 3) {
        return Err(Error::invalid(
            "cross",
            format!(
                "dimension must be 2 or 3 along axis {axis}: {} and {}",
                fmt_shape(a.shape()),
                fmt_shape(b.shape())
            ),
        ));
    }
    let (x, y, dt) = promote2(a, b)?;
    if dt == DType::Bool {
        return Err(Error::invalid("cross", "not supported for dtype bool"));
    }
    let x = moveaxis(&x, ax_a as isize, -1)?;
    let y = moveaxis(&y, ax_b as isize, -1)?;
    let comp = |v: &Array, i: usize, dim: usize| -> Result<Option<Array>> {
        if i >= dim {
            return Ok(None);
        }
        let s = slice_axis(v, -1, SliceArg::range(i as isize, i as isize + 1))?;
        Ok(Some(squeeze(&s, Some(&[-1]))?))
    };
    let xa: Vec<Option<Array>> = (0..3).map(|i| comp(&x, i, da)).collect::<Result<_>>()?;
    let yb: Vec<Option<Array>> = (0..3).map(|i| comp(&y, i, db)).collect::<Result<_>>()?;
    // p*q - r*s where a missing (third) component is zero.
    let term = |p: &Option<Array>, q: &Option<Array>| -> Result<Option<Array>> {
        match (p, q) {
            (Some(p), Some(q)) => Ok(Some(multiply(p, q)?)),
            _ => Ok(None),
        }
    };
    let diff = |l: Option<Array>, r: Option<Array>, shape: &[usize]| -> Result<Array> {
        match (l, r) {
            (Some(l), Some(r)) => subtract(&l, &r),
            (Some(l), None) => broadcast_if(&l, shape),
            (None, Some(r)) => broadcast_if(&crate::ops::negative(&r)?, shape),
            (None, None) => broadcast_to(&Array::scalar_as(0, dt), shape),
        }
    };
    let shape = broadcast_shapes(
        "cross",
        &x.shape()[..x.ndim() - 1],
        &y.shape()[..y.ndim() - 1],
    )?;
    let z = diff(term(&xa[0], &yb[1])?, term(&xa[1], &yb[0])?, &shape)?;
    if da == 2 && db == 2 {
        return Ok(z);
    }
    let cx = diff(term(&xa[1], &yb[2])?, term(&xa[2], &yb[1])?, &shape)?;
    let cy = diff(term(&xa[2], &yb[0])?, term(&xa[0], &yb[2])?, &shape)?;
    // Stack the components on a new last axis by selection (a one-hot multiply would turn
    // inf * 0 into NaN).
    let idx = arange(0.0, 3.0, 1.0, DType::I64)?;
    let e = |v: &Array| expand_dims(v, &[-1]);
    let out = where_(
        &equal(&idx, 0i64)?,
        &e(&cx)?,
        &where_(&equal(&idx, 1i64)?, &e(&cy)?, &e(&z)?)?,
    )?;
    let out = astype(&out, dt)?;
    let out_axis = normalize_axis("cross", axis, out.ndim())?;
    moveaxis(&out, -1, out_axis as isize)
}

// ---- einsum ---------------------------------------------------------------------------------

/// Labels: letters are 0..52 in ASCII order (upper case first), ellipsis dims 100 + i.
type Label = u32;
const ELLIPSIS_BASE: Label = 100;

fn parse_term(term: &str, full: &str) -> Result<(Vec<Label>, Option<usize>)> {
    let mut labels = Vec::new();
    let mut ell = None;
    let chars: Vec<char> = term.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '.' {
            if ell.is_some() || chars.get(i + 1) != Some(&'.') || chars.get(i + 2) != Some(&'.') {
                return Err(Error::invalid(
                    "einsum",
                    format!("invalid ellipsis in subscripts '{full}'"),
                ));
            }
            ell = Some(labels.len());
            i += 3;
            continue;
        }
        let l = match c {
            'A'..='Z' => c as u32 - 'A' as u32,
            'a'..='z' => 26 + c as u32 - 'a' as u32,
            _ => {
                return Err(Error::invalid(
                    "einsum",
                    format!("invalid character '{c}' in subscripts '{full}'"),
                ))
            }
        };
        labels.push(l);
        i += 1;
    }
    Ok((labels, ell))
}

fn label_char(l: Label) -> String {
    match l {
        0..=25 => ((b'A' + l as u8) as char).to_string(),
        26..=51 => ((b'a' + (l - 26) as u8) as char).to_string(),
        _ => "...".to_string(),
    }
}

/// Sums `x` over the axes labelled `which`, as a matmul with a vector of ones (bool sums as
/// logical or, as NumPy's einsum does).
fn sum_labels(x: &Array, labels: &[Label], which: &[Label]) -> Result<(Array, Vec<Label>)> {
    if which.is_empty() {
        return Ok((x.clone(), labels.to_vec()));
    }
    let keep: Vec<usize> = (0..labels.len())
        .filter(|&i| !which.contains(&labels[i]))
        .collect();
    let gone: Vec<usize> = (0..labels.len())
        .filter(|&i| which.contains(&labels[i]))
        .collect();
    let perm: Vec<usize> = keep.iter().chain(&gone).copied().collect();
    let s: usize = gone.iter().map(|&i| x.shape()[i]).product();
    let mut shape: Vec<usize> = keep.iter().map(|&i| x.shape()[i]).collect();
    let rest: usize = shape.iter().product();
    let t = reshape_to(&permute(x, &perm)?, &[rest, s])?;
    let summed = matmul(&t, &ones(&[s], x.dtype())?)?;
    let out = reshape_to(&summed, &shape)?;
    shape.clear();
    Ok((out, keep.iter().map(|&i| labels[i]).collect()))
}

/// Contracts two labelled operands through one batched matmul; `keep` are the labels still
/// needed afterwards (output or other operands).
fn contract(
    a: &Array,
    la: &[Label],
    b: &Array,
    lb: &[Label],
    keep: &[Label],
) -> Result<(Array, Vec<Label>)> {
    // Labels of one side only that nothing needs are summed first.
    let only_a: Vec<Label> = la
        .iter()
        .filter(|l| !lb.contains(l) && !keep.contains(l))
        .copied()
        .collect();
    let only_b: Vec<Label> = lb
        .iter()
        .filter(|l| !la.contains(l) && !keep.contains(l))
        .copied()
        .collect();
    let (a, la) = sum_labels(a, la, &only_a)?;
    let (b, lb) = sum_labels(b, lb, &only_b)?;
    let pos = |ls: &[Label], l: Label| ls.iter().position(|&x| x == l).unwrap();
    let batch: Vec<Label> = la
        .iter()
        .filter(|l| lb.contains(l) && keep.contains(l))
        .copied()
        .collect();
    let summed: Vec<Label> = la
        .iter()
        .filter(|l| lb.contains(l) && !keep.contains(l))
        .copied()
        .collect();
    let ma: Vec<Label> = la.iter().filter(|l| !lb.contains(l)).copied().collect();
    let nb: Vec<Label> = lb.iter().filter(|l| !la.contains(l)).copied().collect();
    let dim_a = |l: Label| a.shape()[pos(&la, l)];
    let dim_b = |l: Label| b.shape()[pos(&lb, l)];
    let bs: Vec<usize> = batch.iter().map(|&l| dim_a(l)).collect();
    let (m, k, n) = (
        ma.iter().map(|&l| dim_a(l)).product::<usize>(),
        summed.iter().map(|&l| dim_a(l)).product::<usize>(),
        nb.iter().map(|&l| dim_b(l)).product::<usize>(),
    );
    let bsz: usize = bs.iter().product();
    let pa: Vec<usize> = batch
        .iter()
        .chain(&ma)
        .chain(&summed)
        .map(|&l| pos(&la, l))
        .collect();
    let pb: Vec<usize> = batch
        .iter()
        .chain(&summed)
        .chain(&nb)
        .map(|&l| pos(&lb, l))
        .collect();
    let x = reshape_to(&permute(&a, &pa)?, &[bsz, m, k])?;
    let y = reshape_to(&permute(&b, &pb)?, &[bsz, k, n])?;
    let shape: Vec<usize> = bs
        .iter()
        .copied()
        .chain(ma.iter().map(|&l| dim_a(l)))
        .chain(nb.iter().map(|&l| dim_b(l)))
        .collect();
    let out = reshape_to(&matmul(&x, &y)?, &shape)?;
    let labels = batch.iter().chain(&ma).chain(&nb).copied().collect();
    Ok((out, labels))
}

/// Einstein summation (NumPy's `einsum`): explicit (`ij,jk->ik`) or implicit output,
/// `...` broadcasting, repeated indices within an operand take diagonals, indices missing
/// from the output are summed. Operands are contracted pairwise through matmul, each time
/// choosing the pair with the smallest result.
pub fn einsum(subscripts: &str, operands: &[Array]) -> Result<Array> {
    let spec: String = subscripts.chars().filter(|c| !c.is_whitespace()).collect();
    let (lhs, rhs) = match spec.split_once("->") {
        Some((l, r)) => {
            if r.contains("->") {
                return Err(Error::invalid(
                    "einsum",
                    format!("subscripts '{subscripts}' have more than one '->'"),
                ));
            }
            (l, Some(r))
        }
        None => (spec.as_str(), None),
    };
    let terms: Vec<&str> = lhs.split(',').collect();
    if terms.len() != operands.len() {
        return Err(Error::invalid(
            "einsum",
            format!(
                "subscripts '{subscripts}' name {} operand(s), {} given",
                terms.len(),
                operands.len()
            ),
        ));
    }
    // Expand ellipses: each operand's extra dims take the rightmost broadcast labels.
    let mut parsed = Vec::with_capacity(terms.len());
    let mut nell = 0usize;
    for (t, x) in terms.iter().zip(operands) {
        let (labels, ell) = parse_term(t, subscripts)?;
        let extra = match ell {
            Some(_) if x.ndim() >= labels.len() => x.ndim() - labels.len(),
            None if x.ndim() == labels.len() => 0,
            _ => {
                return Err(Error::invalid(
                    "einsum",
                    format!(
                        "operand of shape {} does not match subscripts '{t}'",
                        fmt_shape(x.shape())
                    ),
                ))
            }
        };
        nell = nell.max(extra);
        parsed.push((labels, ell, extra));
    }
    let mut ops: Vec<(Array, Vec<Label>)> = Vec::with_capacity(operands.len());
    for ((labels, ell, extra), x) in parsed.into_iter().zip(operands) {
        let full = match ell {
            Some(p) => {
                let mut v = labels[..p].to_vec();
                v.extend((nell - extra..nell).map(|i| ELLIPSIS_BASE + i as Label));
                v.extend_from_slice(&labels[p..]);
                v
            }
            None => labels,
        };
        ops.push((x.clone(), full));
    }
    // Sizes, with size-1 dims broadcasting.
    let mut sizes = std::collections::BTreeMap::<Label, usize>::new();
    for (x, ls) in &ops {
        for (d, &l) in ls.iter().enumerate() {
            let s = x.shape()[d];
            let e = sizes.entry(l).or_insert(s);
            if *e != s && s != 1 {
                if *e == 1 {
                    *e = s;
                } else {
                    return Err(Error::invalid(
                        "einsum",
                        format!(
                            "size of subscript '{}' differs: {} vs {s} in '{subscripts}'",
                            label_char(l),
                            *e
                        ),
                    ));
                }
            }
        }
    }
    let out_labels: Vec<Label> = match rhs {
        Some(r) => {
            let (labels, ell) = parse_term(r, subscripts)?;
            let mut v = labels.clone();
            if let Some(p) = ell {
                v = labels[..p].to_vec();
                v.extend((0..nell).map(|i| ELLIPSIS_BASE + i as Label));
                v.extend_from_slice(&labels[p..]);
            }
            for (i, &l) in v.iter().enumerate() {
                if v[..i].contains(&l) {
                    return Err(Error::invalid(
                        "einsum",
                        format!(
                            "output subscript '{}' appears more than once in '{subscripts}'",
                            label_char(l)
                        ),
                    ));
                }
                if !sizes.contains_key(&l) {
                    return Err(Error::invalid(
                        "einsum",
                        format!(
                            "output subscript '{}' does not appear in the inputs of '{subscripts}'",
                            label_char(l)
                        ),
                    ));
                }
            }
            v
        }
        None => {
            let mut v: Vec<Label> = (0..nell).map(|i| ELLIPSIS_BASE + i as Label).collect();
            let count = |l: Label| {
                ops.iter()
                    .flat_map(|(_, ls)| ls)
                    .filter(|&&x| x == l)
                    .count()
            };
            v.extend(
                sizes
                    .keys()
                    .filter(|&&l| l < ELLIPSIS_BASE && count(l) == 1),
            );
            v
        }
    };
    let dt = result_type(&operands.iter().map(|x| x.type_info()).collect::<Vec<_>>());
    // Per operand: promote, take diagonals of repeated labels, broadcast size-1 dims.
    for (x, ls) in ops.iter_mut() {
        *x = astype(x, dt)?;
        while let Some((p, q)) = (0..ls.len())
            .flat_map(|p| (p + 1..ls.len()).map(move |q| (p, q)))
            .find(|&(p, q)| ls[p] == ls[q])
        {
            if x.shape()[p] != x.shape()[q] {
                return Err(Error::invalid(
                    "einsum",
                    format!(
                        "repeated subscript '{}' has sizes {} and {} in '{subscripts}'",
                        label_char(ls[p]),
                        x.shape()[p],
                        x.shape()[q]
                    ),
                ));
            }
            *x = diagonal(x, 0, p as isize, q as isize)?;
            let l = ls[p];
            ls.remove(q);
            ls.remove(p);
            ls.push(l);
        }
        let target: Vec<usize> = ls.iter().map(|l| sizes[l]).collect();
        *x = broadcast_if(x, &target)?;
    }
    while ops.len() > 1 {
        // The pair whose contraction result is smallest goes first.
        let mut best: Option<(usize, usize, usize)> = None;
        for i in 0..ops.len() {
            for j in i + 1..ops.len() {
                let keep = keep_labels(&ops, &out_labels, i, j);
                let size: usize = ops[i]
                    .1
                    .iter()
                    .chain(ops[j].1.iter().filter(|l| !ops[i].1.contains(l)))
                    .filter(|l| keep.contains(l))
                    .map(|l| sizes[l])
                    .product();
                if best.is_none_or(|b| size < b.2) {
                    best = Some((i, j, size));
                }
            }
        }
        let (i, j, _) = best.expect("at least two operands");
        let keep = keep_labels(&ops, &out_labels, i, j);
        let (b, lb) = ops.remove(j);
        let (a, la) = ops.remove(i);
        ops.push(contract(&a, &la, &b, &lb, &keep)?);
    }
    let (x, ls) = ops.pop().expect("one operand");
    let gone: Vec<Label> = ls
        .iter()
        .filter(|l| !out_labels.contains(l))
        .copied()
        .collect();
    let (x, ls) = sum_labels(&x, &ls, &gone)?;
    let perm: Vec<usize> = out_labels
        .iter()
        .map(|l| ls.iter().position(|x| x == l).unwrap())
        .collect();
    permute(&x, &perm)
}

/// Labels needed after contracting operands i and j: the output's and the other operands'.
fn keep_labels(ops: &[(Array, Vec<Label>)], out: &[Label], i: usize, j: usize) -> Vec<Label> {
    let mut keep = out.to_vec();
    for (k, (_, ls)) in ops.iter().enumerate() {
        if k != i && k != j {
            keep.extend(ls);
        }
    }
    keep
}

// ---- decompositions and solvers -------------------------------------------------------------

/// The array to hand a decomposition kernel (float32/float64) and the dtype to give back.
fn float_input(name: &str, a: &Array) -> Result<(Array, DType)> {
    if a.ndim() < 2 {
        return Err(Error::invalid(
            name,
            format!(
                "expected an array of at least 2 dimensions, got {}",
                fmt_shape(a.shape())
            ),
        ));
    }
    match a.dtype() {
        DType::F32 | DType::F64 => Ok((astype(a, a.dtype())?, a.dtype())),
        DType::F16 | DType::BF16 => Ok((astype(a, DType::F32)?, a.dtype())),
        DType::C64 => Err(Error::invalid(
            name,
            format!(
                "not supported for dtype complex64 (shape {})",
                fmt_shape(a.shape())
            ),
        )),
        _ => Ok((astype(a, DType::F32)?, DType::F32)),
    }
}

fn square_dim(name: &str, a: &Array) -> Result<usize> {
    let s = a.shape();
    if s.len() < 2 || s[s.len() - 1] != s[s.len() - 2] {
        return Err(Error::invalid(
            name,
            format!(
                "last 2 dimensions must be square, got {}",
                fmt_shape(a.shape())
            ),
        ));
    }
    Ok(s[s.len() - 1])
}

fn back(x: Array, dt: DType) -> Result<Array> {
    astype(&x, dt)
}

fn with_last(a: &Array, tail: &[usize]) -> Vec<usize> {
    let mut s = a.shape()[..a.ndim() - 2].to_vec();
    s.extend_from_slice(tail);
    s
}

/// Cholesky factor of a symmetric positive-definite matrix: lower `l` with `a = l l^T`, or
/// upper `u` with `a = u^T u`. Reads the triangle it returns. A matrix that is not positive
/// definite is an error at eval time.
pub fn cholesky(a: &Array, upper: bool) -> Result<Array> {
    let (x, dt) = float_input("cholesky", a)?;
    square_dim("cholesky", &x)?;
    let out = Array::from_op(
        Op::Cholesky { upper },
        vec![x.clone()],
        x.shape().to_vec(),
        x.dtype(),
    );
    back(out, dt)
}

/// Inverse of square matrices; a singular matrix is an error at eval time.
pub fn inv(a: &Array) -> Result<Array> {
    let (x, dt) = float_input("inv", a)?;
    square_dim("inv", &x)?;
    let out = Array::from_op(Op::Inv, vec![x.clone()], x.shape().to_vec(), x.dtype());
    back(out, dt)
}

fn lu_nodes(name: &str, a: &Array, with_perm: bool) -> Result<(Vec<Array>, DType)> {
    let (x, dt) = float_input(name, a)?;
    let s = x.shape();
    let (m, n) = (s[s.len() - 2], s[s.len() - 1]);
    let mut outs = vec![
        (s.to_vec(), x.dtype()),
        (with_last(&x, &[m.min(n)])[..].to_vec(), DType::I32),
    ];
    if with_perm {
        outs.push((with_last(&x, &[m]), DType::I32));
    }
    let nodes = Array::from_op_multi(Op::LuFactor, vec![x], outs);
    Ok((nodes, dt))
}

/// LU factorization with partial pivoting as LAPACK's getrf / scipy's `lu_factor`: `lu`
/// holds L (unit diagonal, below) and U (on and above); `pivots` (int32, 0-based): row i was
/// swapped with row pivots[i], in order.
pub fn lu_factor(a: &Array) -> Result<(Array, Array)> {
    let (mut nodes, dt) = lu_nodes("lu_factor", a, false)?;
    let piv = nodes.pop().unwrap();
    let lu = nodes.pop().unwrap();
    Ok((back(lu, dt)?, piv))
}

/// `a = p @ l @ u` as scipy's `lu`: p (m, m) a permutation matrix, l (m, k) unit lower
/// triangular, u (k, n) upper triangular, k = min(m, n).
pub fn lu(a: &Array) -> Result<(Array, Array, Array)> {
    let (nodes, dt) = lu_nodes("lu", a, true)?;
    let (lu, perm) = (nodes[0].clone(), nodes[2].clone());
    let nd = lu.ndim();
    let (m, n) = (lu.shape()[nd - 2], lu.shape()[nd - 1]);
    let k = m.min(n);
    let fdt = lu.dtype();
    // Row i of l @ u is row perm[i] of a, so p[r, c] = (perm[c] == r).
    let rows = reshape_to(&arange(0.0, m as f64, 1.0, DType::I32)?, &[m, 1])?;
    let p = astype(&equal(&expand_dims(&perm, &[-2])?, &rows)?, fdt)?;
    let mut cols = vec![SliceArg::ALL; nd];
    cols[nd - 1] = SliceArg::range(0, k as isize);
    let mut rws = vec![SliceArg::ALL; nd];
    rws[nd - 2] = SliceArg::range(0, k as isize);
    let below = astype(&tri(m, Some(k), -1, DType::F32)?, DType::Bool)?;
    let l = where_(&below, &slice(&lu, &cols)?, &eye(m, Some(k), 0, fdt)?)?;
    let upper = logical_not(&astype(&tri(k, Some(n), -1, DType::F32)?, DType::Bool)?)?;
    let u = where_(&upper, &slice(&lu, &rws)?, 0.0)?;
    Ok((back(p, dt)?, back(l, dt)?, back(u, dt)?))
}

/// Reduced QR: q (m, k) with orthonormal columns, r (k, n) upper triangular.
pub fn qr(a: &Array) -> Result<(Array, Array)> {
    let (x, dt) = float_input("qr", a)?;
    let s = x.shape();
    let (m, n) = (s[s.len() - 2], s[s.len() - 1]);
    let k = m.min(n);
    let outs = vec![
        (with_last(&x, &[m, k]), x.dtype()),
        (with_last(&x, &[k, n]), x.dtype()),
    ];
    let mut nodes = Array::from_op_multi(Op::Qr, vec![x], outs);
    let r = nodes.pop().unwrap();
    let q = nodes.pop().unwrap();
    Ok((back(q, dt)?, back(r, dt)?))
}

/// Singular value decomposition `a = u @ diag(s) @ vt`, singular values descending. Returns
/// `[u, s, vt]`, or `[s]` when `compute_uv` is false.
pub fn svd(a: &Array, full_matrices: bool, compute_uv: bool) -> Result<Vec<Array>> {
    let (x, dt) = float_input("svd", a)?;
    let s = x.shape();
    let (m, n) = (s[s.len() - 2], s[s.len() - 1]);
    let k = m.min(n);
    let fdt = x.dtype();
    let outs = if !compute_uv {
        vec![(with_last(&x, &[k]), fdt)]
    } else if full_matrices {
        vec![
            (with_last(&x, &[m, m]), fdt),
            (with_last(&x, &[k]), fdt),
            (with_last(&x, &[n, n]), fdt),
        ]
    } else {
        vec![
            (with_last(&x, &[m, k]), fdt),
            (with_last(&x, &[k]), fdt),
            (with_last(&x, &[k, n]), fdt),
        ]
    };
    let nodes = Array::from_op_multi(
        Op::Svd {
            compute_uv,
            full_matrices,
        },
        vec![x],
        outs,
    );
    nodes.into_iter().map(|y| back(y, dt)).collect()
}

/// Eigen-decomposition of symmetric matrices: eigenvalues ascending and eigenvectors in
/// columns. Only the lower triangle is read (the upper with `upper`), as NumPy's `UPLO`.
pub fn eigh(a: &Array, upper: bool) -> Result<(Array, Array)> {
    let (x, dt) = float_input("eigh", a)?;
    let n = square_dim("eigh", &x)?;
    let fdt = x.dtype();
    let outs = vec![(with_last(&x, &[n]), fdt), (x.shape().to_vec(), fdt)];
    let mut nodes = Array::from_op_multi(Op::Eigh { upper }, vec![x], outs);
    let v = nodes.pop().unwrap();
    let w = nodes.pop().unwrap();
    Ok((back(w, dt)?, back(v, dt)?))
}

/// Eigenvalues of symmetric matrices, ascending.
pub fn eigvalsh(a: &Array, upper: bool) -> Result<Array> {
    Ok(eigh(a, upper)?.0)
}

/// Promotes (a, b) together for a solver and broadcasts their batch dims; `b` may be a
/// vector (1-D, NumPy 2 rule) and is then made a one-column (or one-row) matrix.
fn solver_inputs(
    name: &str,
    a: &Array,
    b: &Array,
    left: bool,
) -> Result<(Array, Array, DType, bool)> {
    let n = square_dim(name, a)?;
    let vector = b.ndim() == 1;
    let bad = || {
        Error::invalid(
            name,
            format!(
                "incompatible shapes: a {} and b {}",
                fmt_shape(a.shape()),
                fmt_shape(b.shape())
            ),
        )
    };
    if b.ndim() == 0 {
        return Err(bad());
    }
    let bm = if vector {
        expand_dims(b, &[if left { -1 } else { 0 }])?
    } else {
        b.clone()
    };
    let bs = bm.shape();
    let along = if left {
        bs[bs.len() - 2]
    } else {
        bs[bs.len() - 1]
    };
    if along != n {
        return Err(bad());
    }
    let dt0 = result_type(&[a.type_info(), b.type_info()]);
    let (x, dt) = float_input(name, &astype(a, dt0)?)?;
    let y = astype(&astype(&bm, dt0)?, x.dtype())?;
    let batch = broadcast_shapes(name, &x.shape()[..x.ndim() - 2], &bs[..bs.len() - 2])?;
    let full = |v: &Array| -> Result<Array> {
        let mut s = batch.clone();
        s.extend_from_slice(&v.shape()[v.ndim() - 2..]);
        broadcast_if(v, &s)
    };
    Ok((full(&x)?, full(&y)?, dt, vector))
}

/// Solves `a @ x = b` (or `x @ a = b` when `left` is false) for triangular `a` (only its
/// `upper` or lower triangle is read; `unit_diagonal` assumes ones on the diagonal), as
/// scipy's `solve_triangular`, batched. A zero on the diagonal is an error at eval time.
pub fn solve_triangular(
    a: &Array,
    b: &Array,
    upper: bool,
    unit_diagonal: bool,
    left: bool,
) -> Result<Array> {
    let (x, y, dt, vector) = solver_inputs("solve_triangular", a, b, left)?;
    let shape = y.shape().to_vec();
    let fdt = y.dtype();
    let out = Array::from_op(
        Op::SolveTriangular {
            upper,
            unit_diagonal,
            left,
        },
        vec![x, y],
        shape,
        fdt,
    );
    let out = if vector {
        squeeze(&out, Some(&[if left { -1 } else { -2 }]))?
    } else {
        out
    };
    back(out, dt)
}

/// Solves `a @ x = b` for square `a` (b a vector when 1-D, else a batch of matrices), as
/// NumPy's `solve`. A singular matrix is an error at eval time.
pub fn solve(a: &Array, b: &Array) -> Result<Array> {
    let (x, y, dt, vector) = solver_inputs("solve", a, b, true)?;
    let shape = y.shape().to_vec();
    let fdt = y.dtype();
    let out = Array::from_op(Op::Solve, vec![x, y], shape, fdt);
    let out = if vector {
        squeeze(&out, Some(&[-1]))?
    } else {
        out
    };
    back(out, dt)
}

/// Moore-Penrose pseudo-inverse through the SVD; singular values at or below
/// `rcond * largest` count as zero (NumPy's `pinv(a, rcond)`).
pub fn pinv(a: &Array, rcond: f64) -> Result<Array> {
    // A decomposition's products keep its precision under autocast (crate::amp).
    crate::amp::with(None, || pinv_inner(a, rcond))
}

fn pinv_inner(a: &Array, rcond: f64) -> Result<Array> {
    let (x, dt) = float_input("pinv", a)?;
    let r = svd(&x, false, true)?;
    let (u, s, vt) = (&r[0], &r[1], &r[2]);
    let nd = s.ndim();
    let k = s.shape()[nd - 1];
    let inv_s = if k == 0 {
        s.clone()
    } else {
        let largest = slice_axis(s, -1, SliceArg::range(0, 1))?;
        let cutoff = multiply(&largest, rcond)?;
        let big = crate::ops::greater(s, &cutoff)?;
        let safe = where_(&big, s, 1.0)?;
        where_(&big, &crate::ops::reciprocal(&safe)?, 0.0)?
    };
    // pinv = v diag(1/s) u^T
    let v_scaled = multiply(&mat_t(vt)?, &expand_dims(&inv_s, &[-2])?)?;
    back(matmul(&v_scaled, &mat_t(u)?)?, dt)
}

// ---- determinants and norms -----------------------------------------------------------------

/// Sum over the last axis as a matmul with a vector of ones (fast, and needs no reduction
/// kernel).
fn sum_last(x: &Array) -> Result<Array> {
    let n = x.shape()[x.ndim() - 1];
    // A sum, not a product: autocast must not narrow it (crate::amp).
    crate::amp::with(None, || matmul(x, &ones(&[n], x.dtype())?))
}

/// Sign and natural log of the absolute determinant (NumPy's `slogdet`), from the LU
/// factorization: computed in float64, returned in the input's float dtype. A singular matrix
/// gives sign 0 and logabsdet -inf.
pub fn slogdet(a: &Array) -> Result<(Array, Array)> {
    let (x, dt) = float_input("slogdet", a)?;
    let n = square_dim("slogdet", &x)?;
    let (nodes, _) = lu_nodes("slogdet", &x, false)?;
    let (lu, piv) = (&nodes[0], &nodes[1]);
    let d = astype(&diagonal(lu, 0, -2, -1)?, DType::F64)?;
    let count = |mask: Array| sum_last(&astype(&mask, DType::F64)?);
    let swaps = count(crate::ops::not_equal(
        piv,
        &arange(0.0, n as f64, 1.0, DType::I32)?,
    )?)?;
    let negatives = count(crate::ops::less(&d, 0.0)?)?;
    let zero_d = equal(&d, 0.0)?;
    let singular = crate::ops::greater(&count(zero_d.clone())?, 0.0)?;
    let parity = crate::ops::remainder(&add(&swaps, &negatives)?, 2.0)?;
    let sign = where_(&singular, 0.0, &subtract(1.0, &multiply(&parity, 2.0)?)?)?;
    let logabs = where_(&singular, f64::NEG_INFINITY, &log_abs_sum(&d, &zero_d)?)?;
    Ok((astype(&sign, dt)?, astype(&logabs, dt)?))
}

/// Sum of log|d| over the last axis with zeros masked out: an infinity must not reach the
/// matmul that sums (callers handle the singular case).
fn log_abs_sum(d: &Array, zero_d: &Array) -> Result<Array> {
    let safe = where_(zero_d, 1.0, &crate::ops::abs(d)?)?;
    sum_last(&crate::ops::log(&safe)?)
}

/// Determinant of square matrices (`sign * exp(logabsdet)` in float64, so large products do
/// not overflow early), in the input's float dtype.
pub fn det(a: &Array) -> Result<Array> {
    let (x, dt) = float_input("det", a)?;
    square_dim("det", &x)?;
    let (nodes, _) = lu_nodes("det", &x, false)?;
    let (lu, piv) = (&nodes[0], &nodes[1]);
    let n = lu.shape()[lu.ndim() - 1];
    let d = astype(&diagonal(lu, 0, -2, -1)?, DType::F64)?;
    let count = |mask: Array| sum_last(&astype(&mask, DType::F64)?);
    let swaps = count(crate::ops::not_equal(
        piv,
        &arange(0.0, n as f64, 1.0, DType::I32)?,
    )?)?;
    let negatives = count(crate::ops::less(&d, 0.0)?)?;
    let parity = crate::ops::remainder(&add(&swaps, &negatives)?, 2.0)?;
    let sign = subtract(1.0, &multiply(&parity, 2.0)?)?;
    let zero_d = equal(&d, 0.0)?;
    let singular = crate::ops::greater(&count(zero_d.clone())?, 0.0)?;
    let logabs = log_abs_sum(&d, &zero_d)?;
    let value = multiply(&sign, &crate::ops::exp(&logabs)?)?;
    astype(&where_(&singular, 0.0, &value)?, dt)
}

/// The `ord` of [`norm`]: NumPy's `None`, `'fro'`, `'nuc'`, or a number (`inf`, `-inf`, 0, 1,
/// 2, any p for vectors; 1, -1, 2, -2, inf, -inf for matrices).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum NormOrd {
    /// NumPy's `ord=None`: 2-norm of vectors, Frobenius norm of matrices.
    Default,
    Fro,
    Nuc,
    P(f64),
}

impl NormOrd {
    /// Parses `"fro"`, `"nuc"`, `"inf"`, `"-inf"` or a number.
    pub fn parse(s: &str) -> Result<NormOrd> {
        match s {
            "fro" => Ok(NormOrd::Fro),
            "nuc" => Ok(NormOrd::Nuc),
            "inf" => Ok(NormOrd::P(f64::INFINITY)),
            "-inf" => Ok(NormOrd::P(f64::NEG_INFINITY)),
            _ => s
                .parse::<f64>()
                .map(NormOrd::P)
                .map_err(|_| Error::invalid("norm", format!("invalid norm order '{s}'"))),
        }
    }
}

/// Max (or min) over the last axis; an empty axis has none (an error, as NumPy).
fn extreme_last(x: &Array, max: bool) -> Result<Array> {
    let nd = x.ndim();
    if x.shape()[nd - 1] == 0 {
        return Err(Error::invalid(
            "norm",
            format!(
                "this order needs a {} over an empty axis of {}",
                if max { "maximum" } else { "minimum" },
                fmt_shape(x.shape())
            ),
        ));
    }
    if max {
        crate::ops::max(x, Some(&[-1]), false)
    } else {
        crate::ops::min(x, Some(&[-1]), false)
    }
}

/// Vector or matrix norm, as NumPy's `linalg.norm(a, ord, axis, keepdims)`. `axes` None:
/// with `ord` Default the 2-norm of all elements, else `a` must be 1-D or 2-D. One axis gives
/// vector norms, two axes matrix norms. Integer inputs compute in float32; complex inputs
/// give float32 magnitudes.
pub fn norm(a: &Array, ord: NormOrd, axes: Option<&[isize]>, keepdims: bool) -> Result<Array> {
    // On autocast's float32 list, as in PyTorch.
    let a = &crate::amp::high(a)?;
    let x = match a.dtype() {
        DType::F16 | DType::BF16 | DType::F32 | DType::F64 => a.clone(),
        DType::C64 => crate::ops::abs(a)?,
        _ => astype(a, DType::F32)?,
    };
    let nd = x.ndim();
    let ax: Vec<usize> = match axes {
        Some(ax) => normalize_axes("norm", ax, nd)?,
        None if ord == NormOrd::Default => (0..nd).collect(),
        None if nd == 1 || nd == 2 => (0..nd).collect(),
        None => {
            return Err(Error::invalid(
                "norm",
                format!(
                    "ord {ord:?} without axes needs a 1-D or 2-D array, got {}",
                    fmt_shape(a.shape())
                ),
            ))
        }
    };
    for (i, &p) in ax.iter().enumerate() {
        if ax[..i].contains(&p) {
            return Err(Error::invalid("norm", format!("duplicate axes {ax:?}")));
        }
    }
    let out_shape: Vec<usize> = (0..nd)
        .map(|d| if ax.contains(&d) { 1 } else { x.shape()[d] })
        .collect();
    let rest: Vec<usize> = (0..nd).filter(|d| !ax.contains(d)).collect();
    let finish = |r: Array| -> Result<Array> {
        if keepdims {
            reshape_to(&r, &out_shape)
        } else {
            Ok(r)
        }
    };
    let abs = crate::ops::abs(&x)?;
    // Vector norms over all of `ax` flattened (NumPy's default norm flattens everything).
    let flat = |v: &Array| -> Result<Array> {
        let perm: Vec<usize> = rest.iter().chain(&ax).copied().collect();
        let mut s: Vec<usize> = rest.iter().map(|&d| x.shape()[d]).collect();
        s.push(ax.iter().map(|&d| x.shape()[d]).product());
        reshape_to(&permute(v, &perm)?, &s)
    };
    let vector = |ord: f64| -> Result<Array> {
        let v = flat(&abs)?;
        if ord == f64::INFINITY {
            extreme_last(&v, true)
        } else if ord == f64::NEG_INFINITY {
            extreme_last(&v, false)
        } else if ord == 0.0 {
            sum_last(&astype(&crate::ops::not_equal(&v, 0.0)?, v.dtype())?)
        } else if ord == 1.0 {
            sum_last(&v)
        } else if ord == 2.0 {
            crate::ops::sqrt(&sum_last(&multiply(&v, &v)?)?)
        } else {
            let s = sum_last(&crate::ops::power(&v, coef(ord, v.dtype()))?)?;
            crate::ops::power(&s, coef(1.0 / ord, v.dtype()))
        }
    };
    if ax.len() == 1 || (ord == NormOrd::Default && axes.is_none()) {
        let p = match ord {
            NormOrd::Default => 2.0,
            NormOrd::P(p) => p,
            _ => {
                return Err(Error::invalid(
                    "norm",
                    format!("ord {ord:?} is not a vector norm"),
                ))
            }
        };
        return finish(vector(p)?);
    }
    if ax.len() != 2 {
        return Err(Error::invalid(
            "norm",
            format!("takes 1 or 2 axes, got {ax:?}"),
        ));
    }
    let (r, c) = (ax[0], ax[1]);
    // The matrix with its two axes last, rows then columns.
    let perm: Vec<usize> = rest.iter().chain(&[r, c]).copied().collect();
    let m = permute(&abs, &perm)?;
    let r = match ord {
        NormOrd::Default | NormOrd::Fro => vector(2.0)?,
        NormOrd::Nuc => sum_last(&svd(&permute(&x, &perm)?, false, false)?[0])?,
        NormOrd::P(p) if p == 2.0 || p == -2.0 => {
            // Singular values come sorted descending: the extreme one is at an end.
            let s = svd(&permute(&x, &perm)?, false, false)?.remove(0);
            let k = s.shape()[s.ndim() - 1] as isize;
            if k == 0 {
                return Err(Error::invalid(
                    "norm",
                    format!("ord {p} of an empty matrix {}", fmt_shape(a.shape())),
                ));
            }
            let i = if p > 0.0 { 0 } else { k - 1 };
            squeeze(&slice_axis(&s, -1, SliceArg::range(i, i + 1))?, Some(&[-1]))?
        }
        NormOrd::P(p) if p == 1.0 || p == -1.0 => {
            // max/min over columns of the column sums
            extreme_last(&sum_last(&mat_t(&m)?)?, p > 0.0)?
        }
        NormOrd::P(p) if p.is_infinite() => extreme_last(&sum_last(&m)?, p > 0.0)?,
        NormOrd::P(p) => {
            return Err(Error::invalid(
                "norm",
                format!("invalid norm order {p} for matrices"),
            ))
        }
    };
    finish(r)
}
