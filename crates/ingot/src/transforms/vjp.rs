//! The reverse-mode rule of every differentiable primitive, written with ordinary ops so
//! that gradients can be differentiated again.
//!
//! A rule gets the op's inputs, its outputs (several for multi-output ops; a dropped
//! sibling is `None`), the cotangent of each output (`None`: no gradient reached it) and
//! which inputs need a cotangent; it returns one cotangent per input. Complex rules follow
//! JAX: the vjp is the transpose of the linear map, without conjugation.

use crate::op::{AttentionMask, BinaryOp, Op, ReduceKind, ScanKind, ScatterKind, UnaryOp};
use crate::{Array, DType, Error, Result, Scalar};

type Grads = Vec<Option<Array>>;

pub(crate) fn no_rule(op: &Op, why: &str) -> Error {
    Error::invalid("vjp", format!("no gradient rule for `{}`{why}", op.name()))
}

pub(crate) fn vjp_rule(
    op: &Op,
    inputs: &[Array],
    outs: &[Option<Array>],
    cts: &[Option<Array>],
    needs: &[bool],
) -> Result<Grads> {
    let none = || vec![None; inputs.len()];
    // Single-output ops: the node itself and its cotangent.
    let single = || -> Result<(Array, Array)> {
        match (outs.first(), cts.first()) {
            (Some(Some(o)), Some(Some(c))) => Ok((o.clone(), c.clone())),
            _ => Err(Error::invalid(
                op.name(),
                "internal: missing output or cotangent",
            )),
        }
    };
    match op {
        Op::Arange { .. }
        | Op::RandomBits
        | Op::ArgReduce { .. }
        | Op::ArgSort { .. }
        | Op::ArgPartition { .. }
        | Op::SearchSorted { .. } => Ok(none()),
        Op::Unary(u) => {
            let (y, g) = single()?;
            Ok(vec![unary(op, *u, &inputs[0], &y, &g)?])
        }
        Op::Binary(b) => {
            let (y, g) = single()?;
            binary(*b, &inputs[0], &inputs[1], &y, &g)
        }
        Op::Select => {
            let (_, g) = single()?;
            let z = crate::zeros_like(&g)?;
            Ok(vec![
                None,
                Some(crate::where_(&inputs[0], &g, &z)?),
                Some(crate::where_(&inputs[0], &z, &g)?),
            ])
        }
        Op::AsType(_) | Op::Copy => Ok(vec![Some(single()?.1)]),
        Op::Reshape => Ok(vec![Some(crate::reshape_to(
            &single()?.1,
            inputs[0].shape(),
        )?)]),
        Op::Transpose { perm } => Ok(vec![Some(crate::transpose(
            &single()?.1,
            Some(&inverse_perm(perm)),
        )?)]),
        Op::Slice { start, step } => {
            let g = single()?.1;
            let x = &inputs[0];
            Ok(vec![Some(Array::from_op(
                Op::SliceUpdate {
                    start: start.clone(),
                    step: step.clone(),
                    kind: ScatterKind::Set,
                },
                vec![crate::zeros(x.shape(), g.dtype())?, g],
                x.shape().to_vec(),
                x.dtype(),
            ))])
        }
        Op::Broadcast => Ok(vec![Some(sum_to_shape(&single()?.1, inputs[0].shape())?)]),
        Op::Diagonal {
            offset,
            axis1,
            axis2,
        } => Ok(vec![Some(diagonal_vjp(
            &single()?.1,
            &inputs[0],
            *offset,
            *axis1,
            *axis2,
        )?)]),
        Op::ViewDtype(_) => Err(no_rule(op, ": reinterpreting bytes is not differentiable")),
        Op::Reduce { kind, axes } => {
            let (y, g) = single()?;
            Ok(vec![reduce(op, *kind, axes, &inputs[0], &y, &g)?])
        }
        Op::Scan {
            kind,
            axis,
            reverse,
            inclusive,
        } => {
            let (y, g) = single()?;
            Ok(vec![Some(scan(
                op, *kind, *axis, *reverse, *inclusive, &inputs[0], &y, &g,
            )?)])
        }
        Op::Concatenate { axis } => {
            let g = single()?.1;
            let mut off = 0usize;
            let mut out = Vec::with_capacity(inputs.len());
            for (x, &need) in inputs.iter().zip(needs) {
                let n = x.shape()[*axis];
                out.push(if need {
                    Some(crate::slice_axis(
                        &g,
                        *axis as isize,
                        crate::SliceArg::range(off as isize, (off + n) as isize),
                    )?)
                } else {
                    None
                });
                off += n;
            }
            Ok(out)
        }
        Op::Pad { low, mode, .. } => {
            let g = single()?.1;
            let x = &inputs[0];
            if *mode == crate::op::PadMode::Constant {
                let args: Vec<crate::SliceArg> = low
                    .iter()
                    .zip(x.shape())
                    .map(|(&l, &n)| crate::SliceArg::range(l as isize, (l + n) as isize))
                    .collect();
                return Ok(vec![Some(crate::slice(&g, &args)?)]);
            }
            // Every output element copies one input element: pad the input's flat positions
            // the same way and add each cotangent back at its source.
            let n = x.size();
            let iota =
                crate::reshape_to(&crate::arange(0.0, n as f64, 1.0, DType::I64)?, x.shape())?;
            let src = Array::from_op(op.clone(), vec![iota], g.shape().to_vec(), DType::I64);
            Ok(vec![Some(scatter_flat(&g, &src, x)?)])
        }
        Op::Take { axis } => {
            let g = single()?.1;
            Ok(vec![
                Some(take_vjp(&g, &inputs[0], &inputs[1], *axis)?),
                None,
            ])
        }
        Op::TakeAlongAxis { axis } => {
            let g = single()?.1;
            let z = crate::zeros_like(&inputs[0])?;
            Ok(vec![
                Some(crate::put_along_axis_add(
                    &z,
                    &inputs[1],
                    &g,
                    Some(*axis as isize),
                )?),
                None,
            ])
        }
        Op::PutAlongAxis { axis, kind } => {
            let g = single()?.1;
            let (idx, vals) = (&inputs[1], &inputs[2]);
            let ax = Some(*axis as isize);
            let gv = sum_to_shape(&crate::take_along_axis(&g, idx, ax)?, vals.shape())?;
            let ga = match kind {
                ScatterKind::Add => g,
                ScatterKind::Set => crate::put_along_axis(&g, idx, Array::weak_scalar(0.0), ax)?,
                _ => return Err(no_rule(op, " with a product, max or min combine")),
            };
            Ok(vec![Some(ga), None, Some(gv)])
        }
        Op::Gather { axes, .. } => {
            let g = single()?.1;
            let x = &inputs[0];
            let ax: Vec<isize> = axes.iter().map(|&a| a as isize).collect();
            let mut out = vec![Some(crate::scatter_add(
                &crate::zeros_like(x)?,
                &inputs[1..],
                &g,
                &ax,
            )?)];
            out.extend(std::iter::repeat_n(None, inputs.len() - 1));
            Ok(out)
        }
        Op::Scatter { axes, kind } => {
            let g = single()?.1;
            let x = &inputs[0];
            let u = &inputs[inputs.len() - 1];
            let idx = &inputs[1..inputs.len() - 1];
            let ax: Vec<isize> = axes.iter().map(|&a| a as isize).collect();
            let sizes = u.shape()[u.ndim() - x.ndim()..].to_vec();
            let gu = crate::gather(&g, idx, &ax, &sizes)?;
            let gu = sum_to_shape(&gu, u.shape())?;
            let ga = match kind {
                ScatterKind::Add => g,
                ScatterKind::Set => crate::scatter(&g, idx, &crate::zeros_like(u)?, &ax)?,
                _ => return Err(no_rule(op, " with a product, max or min combine")),
            };
            let mut out = vec![Some(ga)];
            out.extend(std::iter::repeat_n(None, idx.len()));
            out.push(Some(gu));
            Ok(out)
        }
        Op::SliceUpdate { start, step, kind } => {
            let g = single()?.1;
            let u = &inputs[1];
            let gu = Array::from_op(
                Op::Slice {
                    start: start.clone(),
                    step: step.clone(),
                },
                vec![g.clone()],
                u.shape().to_vec(),
                g.dtype(),
            );
            let ga = match kind {
                ScatterKind::Add => g,
                ScatterKind::Set => Array::from_op(
                    op.clone(),
                    vec![g.clone(), crate::zeros_like(u)?],
                    g.shape().to_vec(),
                    g.dtype(),
                ),
                _ => return Err(no_rule(op, " with a product, max or min combine")),
            };
            Ok(vec![Some(ga), Some(gu)])
        }
        Op::Sort { axis } | Op::Partition { axis, .. } => {
            let g = single()?.1;
            let x = &inputs[0];
            let ax = Some(*axis as isize);
            // The permutation the sort applied, recomputed.
            let perm = match op {
                Op::Sort { .. } => crate::argsort(x, ax)?,
                Op::Partition { kth, .. } => crate::argpartition(x, *kth as isize, ax)?,
                _ => unreachable!(),
            };
            Ok(vec![Some(crate::put_along_axis(
                &crate::zeros_like(x)?,
                &perm,
                &g,
                ax,
            )?)])
        }
        Op::Matmul => {
            let g = single()?.1;
            let (a, b) = (&inputs[0], &inputs[1]);
            Ok(vec![
                needs[0].then(|| crate::matmul(&g, &mt(b)?)).transpose()?,
                needs[1].then(|| crate::matmul(&mt(a)?, &g)).transpose()?,
            ])
        }
        Op::Inv => {
            let (y, g) = single()?;
            let yt = mt(&y)?;
            Ok(vec![Some(crate::negative(&crate::matmul(
                &crate::matmul(&yt, &g)?,
                &yt,
            )?)?)])
        }
        Op::Solve => {
            let (x, g) = single()?;
            let a = &inputs[0];
            let gb = Array::from_op(Op::Solve, vec![mt(a)?, g], x.shape().to_vec(), x.dtype());
            let ga = crate::negative(&crate::matmul(&gb, &mt(&x)?)?)?;
            Ok(vec![Some(ga), Some(gb)])
        }
        Op::SolveTriangular {
            upper,
            unit_diagonal,
            left,
        } => {
            let (x, g) = single()?;
            let a = &inputs[0];
            let gb = Array::from_op(
                Op::SolveTriangular {
                    upper: !upper,
                    unit_diagonal: *unit_diagonal,
                    left: *left,
                },
                vec![mt(a)?, g],
                x.shape().to_vec(),
                x.dtype(),
            );
            let full = if *left {
                crate::matmul(&gb, &mt(&x)?)?
            } else {
                crate::matmul(&mt(&x)?, &gb)?
            };
            // Only the triangle the solve read gets a gradient.
            let k = if *unit_diagonal { 1 } else { 0 };
            let tri = if *upper {
                crate::triu(&full, k)?
            } else {
                crate::tril(&full, -k)?
            };
            Ok(vec![Some(crate::negative(&tri)?), Some(gb)])
        }
        Op::Softmax { axis, log } => {
            let (y, g) = single()?;
            let ax = [*axis as isize];
            let gx = if *log {
                let s = crate::sum(&g, Some(&ax), true)?;
                crate::subtract(&g, &crate::multiply(&crate::exp(&y)?, &s)?)?
            } else {
                let s = crate::sum(&crate::multiply(&g, &y)?, Some(&ax), true)?;
                crate::multiply(&y, &crate::subtract(&g, &s)?)?
            };
            Ok(vec![Some(gx)])
        }
        Op::Attention { scale, mask } => {
            let g = single()?.1;
            attention(inputs, scale.to_f64(), *mask, &g)
        }
        Op::AttentionGrad { scale, mask } => attention_grad(inputs, scale.to_f64(), *mask, cts),
        Op::RmsNorm { .. } | Op::LayerNorm { .. } | Op::Rope { .. } | Op::CrossEntropyGrad => {
            let g = single()?.1;
            fast_reference(op, inputs, &g)
        }
        // Integer targets take no gradient; the logits' is one node reading them again.
        Op::CrossEntropy => {
            let g = single()?.1;
            let gx = crate::ops::fast::cross_entropy_grad(&inputs[0], &inputs[1], &g)?;
            Ok(vec![Some(gx), None])
        }
        Op::Linear { act, .. } => {
            let (y, g) = single()?;
            crate::ops::fast::linear_grads(*act, inputs, &y, &g, needs)
        }
        Op::Hadamard { .. } => {
            // The (scaled) Walsh-Hadamard matrix is symmetric.
            let g = single()?.1;
            Ok(vec![Some(Array::from_op(
                op.clone(),
                vec![g.clone()],
                g.shape().to_vec(),
                g.dtype(),
            ))])
        }
        Op::Custom { .. } => Err(no_rule(op, ": its rule was lost")),
        Op::Collective { .. } => {
            let (y, g) = single()?;
            crate::distributed::vjp(op, inputs.first(), &y, &g)
        }
        Op::Kernel { name, params } => crate::custom::vjp(name, params, inputs, outs, cts),
        Op::Fused { program } => super::fuse::vjp(program, inputs, outs, cts),
        Op::Cholesky { .. } | Op::LuFactor | Op::Qr | Op::Svd { .. } | Op::Eigh { .. } => {
            super::vjp_linalg::rule(op, inputs, outs, cts, needs)
        }
        Op::Conv { .. } | Op::Pool { .. } | Op::Fft { .. } | Op::GridSample { .. } => {
            super::vjp_nn::rule(op, inputs, outs, cts, needs)
        }
    }
}

/// The permutation that undoes `perm`, as `transpose` takes it.
fn inverse_perm(perm: &[usize]) -> Vec<isize> {
    let mut inv = vec![0isize; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        inv[p] = i as isize;
    }
    inv
}

/// Swaps the last two axes.
fn mt(a: &Array) -> Result<Array> {
    crate::swapaxes(a, -1, -2)
}

/// Fused attention's rule. Without a mask input (and with every dim nonzero) it is one
/// `AttentionGrad` node, whose kernels recompute the scores and never hold them all: on
/// the CPU always, on a CUDA device where the flash kernels take it (unless `INGOT_CUDA_FLASH=0`);
/// otherwise it is the vjp of the reference decomposition (which recomputes the scores in
/// the backward pass instead of keeping them from the forward one).
fn attention(inputs: &[Array], scale: f64, kind: AttentionMask, g: &Array) -> Result<Grads> {
    let (q, k, v) = (&inputs[0], &inputs[1], &inputs[2]);
    let n = q.ndim();
    let dims = (
        q.shape()[n - 2],
        k.shape()[n - 2],
        k.shape()[n - 1],
        v.shape()[n - 1],
    );
    let fused = matches!(kind, AttentionMask::None | AttentionMask::Causal)
        && [q.shape(), k.shape(), v.shape()]
            .iter()
            .all(|s| s.iter().all(|&d| d > 0))
        && match crate::default_device() {
            crate::Device::Cuda(i) => {
                crate::backend::cuda::flash_takes(i, q.dtype(), kind, dims, true)
            }
            _ => true,
        };
    if fused {
        let g = crate::astype(g, q.dtype())?;
        let outs = [q, k, v].map(|x| (x.shape().to_vec(), x.dtype())).to_vec();
        let op = Op::AttentionGrad {
            scale: crate::Scalar::Float(scale),
            mask: kind,
        };
        let nodes = Array::from_op_multi(op, vec![q.clone(), k.clone(), v.clone(), g], outs);
        return Ok(nodes.into_iter().map(Some).collect());
    }
    reference_attention_grads(inputs, scale, kind, g)
}

/// The second-order rule of `AttentionGrad`: the vjp of the reference decomposition's
/// gradient, as a function of q, k, v and the cotangent.
fn attention_grad(
    inputs: &[Array],
    scale: f64,
    kind: AttentionMask,
    cts: &[Option<Array>],
) -> Result<Grads> {
    let cts = cts
        .iter()
        .zip(&inputs[..3])
        .map(|(c, x)| c.clone().map_or_else(|| crate::zeros_like(x), Ok))
        .collect::<Result<Vec<_>>>()?;
    let f = |xs: &[Array]| -> Result<Vec<Array>> {
        let grads = reference_attention_grads(&xs[..3], scale, kind, &xs[3])?;
        grads
            .into_iter()
            .zip(&xs[..3])
            .map(|(g, x)| g.map_or_else(|| crate::zeros_like(x), Ok))
            .collect()
    };
    let (_, grads) = super::autodiff::vjp(f, inputs, &cts)?;
    Ok(grads.into_iter().map(Some).collect())
}

/// The vjp of attention's reference decomposition (inputs q, k, v and any mask).
fn reference_attention_grads(
    inputs: &[Array],
    scale: f64,
    kind: AttentionMask,
    g: &Array,
) -> Result<Grads> {
    let allow = (kind == AttentionMask::Allow).then(|| inputs[3].clone());
    let n_diff = if kind == AttentionMask::Additive {
        4
    } else {
        3
    };
    let f = |xs: &[Array]| -> Result<Vec<Array>> {
        let m = if kind == AttentionMask::Additive {
            Some(xs[3].clone())
        } else {
            allow.clone()
        };
        // The node's dtypes are final: autocast must not re-decide them.
        crate::amp::with(None, || {
            crate::ops::fast::reference_node(&xs[0], &xs[1], &xs[2], m.as_ref(), kind, scale)
        })
        .map(|y| vec![y])
    };
    let (_, grads) = super::autodiff::vjp(f, &inputs[..n_diff], std::slice::from_ref(g))?;
    let mut out: Grads = grads.into_iter().map(Some).collect();
    if kind == AttentionMask::Allow {
        out.push(None);
    }
    Ok(out)
}

/// The rule of rms_norm, layer_norm and rope: the vjp of their reference decomposition,
/// for every float input (x, weight, bias, rope's inverse frequencies; not rope's offset).
fn fast_reference(op: &Op, inputs: &[Array], g: &Array) -> Result<Grads> {
    let diff: Vec<usize> = (0..inputs.len())
        .filter(|&i| inputs[i].dtype().is_float())
        .collect();
    let primals: Vec<Array> = diff.iter().map(|&i| inputs[i].clone()).collect();
    let f = |xs: &[Array]| -> Result<Vec<Array>> {
        let mut all = inputs.to_vec();
        for (&i, x) in diff.iter().zip(xs) {
            all[i] = x.clone();
        }
        match op {
            Op::CrossEntropy | Op::CrossEntropyGrad => crate::ops::fast::ce_reference_of(op, &all),
            _ => crate::ops::fast::reference_of(op, &all),
        }
        .map(|y| vec![y])
    };
    let (_, grads) = super::autodiff::vjp(f, &primals, std::slice::from_ref(g))?;
    let mut out: Grads = vec![None; inputs.len()];
    for (i, gi) in diff.into_iter().zip(grads) {
        out[i] = Some(gi);
    }
    Ok(out)
}

/// Sums `g` over the dims that broadcasting added or stretched to reach it from `shape`.
pub(crate) fn sum_to_shape(g: &Array, shape: &[usize]) -> Result<Array> {
    if g.shape() == shape {
        return Ok(g.clone());
    }
    let lead = g.ndim() - shape.len();
    let axes: Vec<isize> = (0..g.ndim())
        .filter(|&i| i < lead || (shape[i - lead] == 1 && g.shape()[i] != 1))
        .map(|i| i as isize)
        .collect();
    let s = crate::sum(g, Some(&axes), true)?;
    crate::reshape_to(&s, shape)
}

/// Adds each element of `g` into a zero array shaped like `x` at the flat position `src`
/// holds for it.
fn scatter_flat(g: &Array, src: &Array, x: &Array) -> Result<Array> {
    let n = x.size();
    let z = crate::zeros(&[n], g.dtype())?;
    let flat = crate::put_along_axis_add(
        &z,
        &crate::reshape_to(src, &[src.size()])?,
        &crate::reshape_to(g, &[g.size()])?,
        Some(0),
    )?;
    crate::reshape_to(&flat, x.shape())
}

fn take_vjp(g: &Array, x: &Array, idx: &Array, axis: usize) -> Result<Array> {
    // Output dims: x[..axis] + idx dims + x[axis+1..]; scatter wants idx dims first, then
    // the slice x's shape with a 1 at `axis`.
    let ki = idx.ndim();
    let mut perm: Vec<isize> = (axis..axis + ki).map(|i| i as isize).collect();
    perm.extend((0..axis).map(|i| i as isize));
    perm.extend((axis + ki..g.ndim()).map(|i| i as isize));
    let gt = crate::transpose(g, Some(&perm))?;
    let mut to: Vec<usize> = idx.shape().to_vec();
    let mut slice = x.shape().to_vec();
    slice[axis] = 1;
    to.extend_from_slice(&slice);
    let upd = crate::reshape_to(&gt, &to)?;
    crate::scatter_add(
        &crate::zeros(x.shape(), g.dtype())?,
        std::slice::from_ref(idx),
        &upd,
        &[axis as isize],
    )
}

fn diagonal_vjp(g: &Array, x: &Array, offset: isize, a1: usize, a2: usize) -> Result<Array> {
    let (m, n) = (x.shape()[a1], x.shape()[a2]);
    let k = g.shape()[g.ndim() - 1];
    let rest: Vec<usize> = (0..x.ndim()).filter(|&i| i != a1 && i != a2).collect();
    let rest_shape: Vec<usize> = rest.iter().map(|&i| x.shape()[i]).collect();
    let mut mn = rest_shape.clone();
    mn.extend([m, n]);
    let full = if k == 0 || m * n == 0 {
        crate::zeros(&mn, g.dtype())?
    } else {
        // Diagonal element j sits at flat position start + j * (n + 1) of the (m, n) matrix.
        let start = if offset >= 0 {
            offset as usize
        } else {
            (-offset) as usize * n
        };
        let nd = g.ndim();
        let col = crate::expand_dims(g, &[nd as isize])?;
        let mut pads = vec![(0usize, 0usize); nd + 1];
        pads[nd] = (0, n);
        let rows = crate::pad(&col, &pads, crate::op::PadMode::Constant, 0.0)?;
        let mut flat_shape = rest_shape.clone();
        flat_shape.push(k * (n + 1));
        let flat = crate::reshape_to(&rows, &flat_shape)?;
        let len = start + k * (n + 1);
        let mut pads = vec![(0usize, 0usize); rest_shape.len() + 1];
        pads[rest_shape.len()] = (start, (m * n).saturating_sub(len));
        let flat = crate::pad(&flat, &pads, crate::op::PadMode::Constant, 0.0)?;
        let flat = crate::slice_axis(
            &flat,
            rest_shape.len() as isize,
            crate::SliceArg::range(0, (m * n) as isize),
        )?;
        crate::reshape_to(&flat, &mn)?
    };
    // Dims are (rest.., a1, a2); put them back in x's order.
    let mut order: Vec<usize> = rest.clone();
    order.extend([a1, a2]);
    crate::transpose(&full, Some(&inverse_perm(&order)))
}

fn unary(op: &Op, u: UnaryOp, x: &Array, y: &Array, g: &Array) -> Result<Option<Array>> {
    use crate::{
        add, divide as div, exp, multiply as mul, negative as neg, sqrt, square, subtract as sub,
    };
    use UnaryOp::*;
    let complex = x.dtype().is_complex();
    Ok(Some(match u {
        Negative => neg(g)?,
        Abs if !complex => mul(g, &crate::sign(x)?)?,
        Sign | Floor | Ceil | Round { .. } => crate::zeros_like(x)?,
        Exp => mul(g, y)?,
        Expm1 => mul(g, &add(y, 1.0)?)?,
        Log => div(g, x)?,
        Log1p => div(g, &add(x, 1.0)?)?,
        Log2 => div(g, &mul(x, std::f64::consts::LN_2)?)?,
        Log10 => div(g, &mul(x, std::f64::consts::LN_10)?)?,
        Sqrt => div(&mul(g, 0.5)?, y)?,
        Rsqrt => mul(g, &div(&mul(y, -0.5)?, x)?)?,
        Square => mul(g, &mul(x, 2.0)?)?,
        Reciprocal => neg(&mul(g, &square(y)?)?)?,
        Sin => mul(g, &crate::cos(x)?)?,
        Cos => neg(&mul(g, &crate::sin(x)?)?)?,
        Tan => mul(g, &add(&square(y)?, 1.0)?)?,
        Arcsin => div(g, &sqrt(&sub(1.0, &square(x)?)?)?)?,
        Arccos => neg(&div(g, &sqrt(&sub(1.0, &square(x)?)?)?)?)?,
        Arctan => div(g, &add(&square(x)?, 1.0)?)?,
        Sinh => mul(g, &crate::cosh(x)?)?,
        Cosh => mul(g, &crate::sinh(x)?)?,
        Tanh => mul(g, &sub(1.0, &square(y)?)?)?,
        Arcsinh => div(g, &sqrt(&add(&square(x)?, 1.0)?)?)?,
        Arccosh => div(g, &sqrt(&sub(&square(x)?, 1.0)?)?)?,
        Arctanh => div(g, &sub(1.0, &square(x)?)?)?,
        Erf => mul(
            g,
            &mul(&exp(&neg(&square(x)?)?)?, std::f64::consts::FRAC_2_SQRT_PI)?,
        )?,
        Erfinv => mul(
            g,
            &mul(&exp(&square(y)?)?, std::f64::consts::PI.sqrt() / 2.0)?,
        )?,
        Sigmoid => mul(g, &mul(y, &sub(1.0, y)?)?)?,
        Gelu | GeluTanh => gelu_grad(u, x, g)?,
        Real => crate::astype(g, x.dtype())?,
        // imag(z) = (z - conj z) / 2i: its transpose maps t to -i t.
        Imag => mul(
            &crate::astype(g, x.dtype())?,
            Array::weak_scalar(Scalar::Complex(0.0, -1.0)),
        )?,
        Conj => crate::conj(g)?,
        Angle if !complex => crate::zeros_like(x)?,
        StopGradient | LogicalNot | BitwiseInvert | IsNan | IsInf | IsFinite | SignBit => {
            return Ok(None)
        }
        Abs | Angle => return Err(no_rule(op, " of complex inputs (not holomorphic)")),
    }))
}

/// The cotangent of x for either GELU, from x alone (the forward keeps nothing else): one
/// fused op, `g * gelu'(x)`, in g's dtype; halves compute in f32, as the forward does.
fn gelu_grad(u: UnaryOp, x: &Array, g: &Array) -> Result<Array> {
    crate::astype(&gelu_grad_op(u == UnaryOp::GeluTanh, x, g)?, g.dtype())
}

/// `g * gelu'(x)` for either GELU (`tanh` picks the tanh form): one elementwise op.
fn gelu_grad_op(tanh: bool, x: &Array, g: &Array) -> Result<Array> {
    if tanh {
        crate::gelu_tanh_grad(x, g)
    } else {
        crate::gelu_grad(x, g)
    }
}

/// `gelu''(x)` for either GELU (`tanh` picks the tanh form), for the gradient of the
/// gradient ops; halves compute in f32.
fn gelu_second(tanh: bool, x: &Array) -> Result<Array> {
    use crate::{add, astype, multiply as mul, square, subtract as sub};
    let xw = match x.dtype() {
        DType::F16 | DType::BF16 => astype(x, DType::F32)?,
        _ => x.clone(),
    };
    let x2 = square(&xw)?;
    let d2 = if !tanh {
        // phi(x) (2 - x^2)
        let pdf = mul(
            &crate::exp(&mul(&x2, -0.5)?)?,
            0.5 * std::f64::consts::FRAC_2_SQRT_PI * std::f64::consts::FRAC_1_SQRT_2,
        )?;
        mul(&pdf, &sub(2.0, &x2)?)?
    } else {
        // With u = c (x + k x^3), t = tanh u: (1 - t^2) (u' - x t u'^2 + x u'' / 2),
        // u' = c (1 + 3 k x^2), u'' = 6 c k x (so x u'' / 2 = 3 c k x^2).
        let (c, k) = (0.797_884_560_802_865_4, 0.044715);
        let t = crate::tanh(&mul(&mul(&xw, &add(&mul(&x2, k)?, 1.0)?)?, c)?)?;
        let du = mul(&add(&mul(&x2, 3.0 * k)?, 1.0)?, c)?;
        let inner = add(
            &sub(&du, &mul(&mul(&xw, &t)?, &square(&du)?)?)?,
            &mul(&x2, 3.0 * c * k)?,
        )?;
        mul(&sub(1.0, &square(&t)?)?, &inner)?
    };
    astype(&d2, x.dtype())
}

fn binary(b: BinaryOp, x: &Array, z: &Array, y: &Array, g: &Array) -> Result<Grads> {
    use crate::{
        add, divide as div, equal, exp, multiply as mul, negative as neg, square, subtract as sub,
        where_,
    };
    use BinaryOp::*;
    let zero = || crate::zeros_like(g);
    Ok(match b {
        Add => vec![Some(g.clone()), Some(g.clone())],
        Subtract => vec![Some(g.clone()), Some(neg(g)?)],
        Multiply => vec![Some(mul(g, z)?), Some(mul(g, x)?)],
        Divide => vec![Some(div(g, z)?), Some(neg(&div(&mul(g, y)?, z)?)?)],
        FloorDivide => vec![Some(zero()?), Some(zero()?)],
        Remainder => vec![
            Some(g.clone()),
            Some(neg(&mul(g, &crate::floor_divide(x, z)?)?)?),
        ],
        Power => {
            // d/dx x^z = z x^(z-1), taken as 0 where z == 0; d/dz = x^z log x, 0 at x == 0.
            let dx = where_(
                &equal(z, 0.0)?,
                0.0,
                &mul(z, &crate::power(x, &sub(z, 1.0)?)?)?,
            )?;
            let safe_x = where_(&equal(x, 0.0)?, 1.0, x)?;
            let dz = mul(y, &crate::log(&safe_x)?)?;
            vec![Some(mul(g, &dx)?), Some(mul(g, &dz)?)]
        }
        Maximum | Minimum => {
            // Ties split the gradient evenly, as in JAX.
            let xe = equal(x, y)?;
            let ze = equal(z, y)?;
            let both = crate::logical_and(&xe, &ze)?;
            let wx = where_(&xe, &where_(&both, 0.5, 1.0)?, 0.0)?;
            let wz = where_(&ze, &where_(&both, 0.5, 1.0)?, 0.0)?;
            vec![
                Some(mul(g, &crate::astype(&wx, g.dtype())?)?),
                Some(mul(g, &crate::astype(&wz, g.dtype())?)?),
            ]
        }
        Arctan2 => {
            let d = add(&square(x)?, &square(z)?)?;
            vec![
                Some(mul(g, &div(z, &d)?)?),
                Some(neg(&mul(g, &div(x, &d)?)?)?),
            ]
        }
        LogAddExp => vec![
            Some(mul(g, &exp(&sub(x, y)?)?)?),
            Some(mul(g, &exp(&sub(z, y)?)?)?),
        ],
        // y = z gelu'(x): x's cotangent g z gelu''(x), z's the same op on g.
        GeluGrad | GeluTanhGrad => {
            let tanh = b == GeluTanhGrad;
            vec![
                Some(mul(&mul(g, z)?, &gelu_second(tanh, x)?)?),
                Some(gelu_grad_op(tanh, x, g)?),
            ]
        }
        Equal | NotEqual | Less | LessEqual | Greater | GreaterEqual | LogicalAnd | LogicalOr
        | LogicalXor | BitwiseAnd | BitwiseOr | BitwiseXor | LeftShift | RightShift => {
            vec![None, None]
        }
    })
}

fn reduce(
    op: &Op,
    kind: ReduceKind,
    axes: &[usize],
    x: &Array,
    y: &Array,
    g: &Array,
) -> Result<Option<Array>> {
    Ok(Some(match kind {
        ReduceKind::Sum => crate::broadcast_to(g, x.shape())?,
        ReduceKind::Max | ReduceKind::Min => {
            // Ties share the gradient evenly.
            let mask = crate::equal(x, &crate::broadcast_to(y, x.shape())?)?;
            let m = crate::astype(&mask, g.dtype())?;
            let ax: Vec<isize> = axes.iter().map(|&a| a as isize).collect();
            let cnt = crate::sum(&m, Some(&ax), true)?;
            crate::multiply(&m, &crate::divide(g, &cnt)?)?
        }
        ReduceKind::Prod => prod_vjp(axes, x, g)?,
        ReduceKind::All | ReduceKind::Any => return Err(no_rule(op, " of a boolean reduction")),
    }))
}

/// d prod / d x_j is the product of every other element: exclusive products from the left
/// times exclusive products from the right, exact where elements are zero.
fn prod_vjp(axes: &[usize], x: &Array, g: &Array) -> Result<Array> {
    let nd = x.ndim();
    let kept: Vec<usize> = (0..nd).filter(|i| !axes.contains(i)).collect();
    let mut perm: Vec<isize> = kept.iter().map(|&i| i as isize).collect();
    perm.extend(axes.iter().map(|&i| i as isize));
    let perm_u: Vec<usize> = perm.iter().map(|&p| p as usize).collect();
    let xt = crate::transpose(x, Some(&perm))?;
    let mut flat: Vec<usize> = kept.iter().map(|&i| x.shape()[i]).collect();
    let r: usize = axes.iter().map(|&i| x.shape()[i]).product();
    flat.push(r);
    let xf = crate::reshape_to(&xt, &flat)?;
    let last = Some(-1);
    let left = crate::cumprod(&xf, last, false, false)?;
    let right = crate::cumprod(&xf, last, true, false)?;
    let mut gshape: Vec<usize> = kept.iter().map(|&i| x.shape()[i]).collect();
    gshape.push(1);
    let gf = crate::reshape_to(g, &gshape)?;
    let d = crate::multiply(&gf, &crate::multiply(&left, &right)?)?;
    let tshape: Vec<usize> = perm.iter().map(|&i| x.shape()[i as usize]).collect();
    let d = crate::reshape_to(&d, &tshape)?;
    crate::transpose(&d, Some(&inverse_perm(&perm_u)))
}

#[allow(clippy::too_many_arguments)]
fn scan(
    op: &Op,
    kind: ScanKind,
    axis: usize,
    reverse: bool,
    inclusive: bool,
    x: &Array,
    y: &Array,
    g: &Array,
) -> Result<Array> {
    let ax = Some(axis as isize);
    match kind {
        ScanKind::Sum => crate::cumsum(g, ax, !reverse, inclusive),
        // Each y_i is a product of the x_j it covers: d/dx_j sums g_i y_i / x_j over them.
        // Exact away from zeros in x.
        ScanKind::Prod => crate::divide(
            &crate::cumsum(&crate::multiply(g, y)?, ax, !reverse, inclusive)?,
            x,
        ),
        ScanKind::Max | ScanKind::Min if inclusive => {
            // y_i came from the nearest j on the scanned side where x_j == y_j.
            let n = x.shape()[axis];
            let mut ishape = vec![1usize; x.ndim()];
            ishape[axis] = n;
            let iota = crate::broadcast_to(
                &crate::reshape_to(&crate::arange(0.0, n as f64, 1.0, DType::I64)?, &ishape)?,
                x.shape(),
            )?;
            let hit = crate::equal(x, y)?;
            let src = if reverse {
                crate::cummin(&crate::where_(&hit, &iota, n as i64)?, ax, true, true)?
            } else {
                crate::cummax(&crate::where_(&hit, &iota, 0i64)?, ax, false, true)?
            };
            crate::put_along_axis_add(&crate::zeros_like(x)?, &src, g, ax)
        }
        ScanKind::LogAddExp if inclusive => {
            // d y_i / d x_j = exp(x_j - y_i) for the j that y_i covers; shifted by the
            // largest y along the axis to keep the exponentials in range.
            let c = crate::stop_gradient(&crate::max(y, Some(&[axis as isize]), true)?)?;
            let w = crate::multiply(g, &crate::exp(&crate::subtract(&c, y)?)?)?;
            let s = crate::cumsum(&w, ax, !reverse, true)?;
            crate::multiply(&s, &crate::exp(&crate::subtract(x, &c)?)?)
        }
        _ => Err(no_rule(op, " for an exclusive max, min or logaddexp scan")),
    }
}
