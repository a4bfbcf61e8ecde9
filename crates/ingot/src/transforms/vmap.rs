//! `vmap`: run a per-example function over a batch.
//!
//! The function is traced once on one example of each mapped input, then its program is
//! replayed with batched values: every value is either batched (batch axis first) or not,
//! and each op applied to a batched value uses its batching rule below. An op without a
//! rule of its own runs once per example and the results are stacked: slower, but exact for
//! any op.

use super::trace::{apply, trace, Graph, Source};
use crate::op::Op;
use crate::shape::fmt_shape;
use crate::{Array, DType, Error, Result};

/// Maps `f` over axis `in_axes[i]` of input `i` (`None`: the input is shared by every
/// example) and puts the batch on axis `out_axes[j]` of output `j` (`None`: the output must
/// not depend on the batch). One entry in `out_axes` applies to every output.
pub fn vmap<F>(
    f: F,
    in_axes: &[Option<isize>],
    out_axes: &[Option<isize>],
) -> impl Fn(&[Array]) -> Result<Vec<Array>>
where
    F: Fn(&[Array]) -> Result<Vec<Array>>,
{
    let in_axes = in_axes.to_vec();
    let out_axes = out_axes.to_vec();
    move |xs: &[Array]| {
        if xs.len() != in_axes.len() {
            return Err(Error::invalid(
                "vmap",
                format!("{} in_axes for {} inputs", in_axes.len(), xs.len()),
            ));
        }
        let mut b: Option<usize> = None;
        let mut examples = Vec::with_capacity(xs.len());
        let mut batched = Vec::with_capacity(xs.len());
        for (i, (x, ax)) in xs.iter().zip(&in_axes).enumerate() {
            match ax {
                None => {
                    examples.push(x.clone());
                    batched.push(None);
                }
                Some(ax) => {
                    let a = crate::shape::normalize_axis("vmap", *ax, x.ndim())?;
                    let n = x.shape()[a];
                    if let Some(prev) = b {
                        if prev != n {
                            return Err(Error::invalid(
                                "vmap",
                                format!(
                                    "input {i} has {n} examples on axis {a} (shape {}), another input has {prev}",
                                    fmt_shape(x.shape())
                                ),
                            ));
                        }
                    }
                    b = Some(n);
                    let moved = crate::moveaxis(x, a as isize, 0)?;
                    // One example to trace on (zeros when the batch is empty).
                    let ex = if n > 0 {
                        crate::squeeze(
                            &crate::slice_axis(&moved, 0, crate::SliceArg::range(0, 1))?,
                            Some(&[0]),
                        )?
                    } else {
                        crate::zeros(&moved.shape()[1..], x.dtype())?
                    };
                    examples.push(ex);
                    batched.push(Some(moved));
                }
            }
        }
        let b =
            b.ok_or_else(|| Error::invalid("vmap", "no input is mapped (every in_axis is None)"))?;
        let g = trace(|a| f(a), &examples)?;
        let outs = run_batched(&g, &examples, &batched, b)?;
        if out_axes.len() != 1 && out_axes.len() != outs.len() {
            return Err(Error::invalid(
                "vmap",
                format!("{} out_axes for {} outputs", out_axes.len(), outs.len()),
            ));
        }
        outs.into_iter()
            .enumerate()
            .map(|(j, (y, is_b))| {
                let ax = out_axes[if out_axes.len() == 1 { 0 } else { j }];
                match (ax, is_b) {
                    (None, false) => Ok(y),
                    (None, true) => Err(Error::invalid(
                        "vmap",
                        format!("output {j} depends on the mapped inputs but its out_axis is None"),
                    )),
                    (Some(ax), _) => {
                        let y = if is_b { y } else { batch_of(&y, b)? };
                        let a = crate::shape::normalize_axis("vmap", ax, y.ndim())?;
                        crate::moveaxis(&y, 0, a as isize)
                    }
                }
            })
            .collect()
    }
}

/// `x` repeated `b` times along a new first axis.
fn batch_of(x: &Array, b: usize) -> Result<Array> {
    let mut s = vec![b];
    s.extend_from_slice(x.shape());
    crate::broadcast_to(&crate::expand_dims(x, &[0])?, &s)
}

/// Replays `g` with batched inputs; each output comes with whether it is batched.
fn run_batched(
    g: &Graph,
    examples: &[Array],
    batched: &[Option<Array>],
    b: usize,
) -> Result<Vec<(Array, bool)>> {
    let mut vals: Vec<Option<(Array, bool)>> = vec![None; g.values.len()];
    for (i, &v) in g.inputs.iter().enumerate() {
        vals[v] = Some(match &batched[i] {
            Some(x) => (x.clone(), true),
            None => (examples[i].clone(), false),
        });
    }
    for (v, val) in g.values.iter().enumerate() {
        if let Source::Const(c) = val.source {
            vals[v] = Some((g.consts[c].clone(), false));
        }
    }
    for (k, app) in g.apps.iter().enumerate() {
        let ins: Vec<(Array, bool)> = app
            .inputs
            .iter()
            .map(|&i| {
                vals[i]
                    .clone()
                    .ok_or_else(|| Error::invalid("vmap", "internal: undefined value"))
            })
            .collect::<Result<_>>()?;
        let shapes: Vec<(Vec<usize>, DType)> = app
            .outs
            .iter()
            .map(|&o| (g.values[o].shape.clone(), g.values[o].dtype))
            .collect();
        let rule = g.rules.get(&k).cloned();
        let outs: Vec<(Array, bool)> = if ins.iter().all(|(_, bt)| !bt) {
            let arrays: Vec<Array> = ins.into_iter().map(|(a, _)| a).collect();
            apply(&app.op, arrays, &shapes, rule)
                .into_iter()
                .map(|a| (a, false))
                .collect()
        } else {
            let r = if rule.is_some() {
                None
            } else {
                batch_rule(&app.op, &ins, &shapes, b)?
            };
            let r = match r {
                Some(r) => r,
                None => per_example(&app.op, &ins, &shapes, b, rule)?,
            };
            r.into_iter().map(|a| (a, true)).collect()
        };
        for (&o, a) in app.outs.iter().zip(outs) {
            vals[o] = Some(a);
        }
    }
    g.outputs
        .iter()
        .map(|&o| {
            vals[o]
                .clone()
                .ok_or_else(|| Error::invalid("vmap", "internal: undefined output"))
        })
        .collect()
}

/// The op once per example, outputs stacked on a new first axis.
fn per_example(
    op: &Op,
    ins: &[(Array, bool)],
    shapes: &[(Vec<usize>, DType)],
    b: usize,
    rule: Option<crate::transforms::VjpRule>,
) -> Result<Vec<Array>> {
    if b == 0 {
        return shapes
            .iter()
            .map(|(s, d)| {
                let mut full = vec![0];
                full.extend_from_slice(s);
                crate::zeros(&full, *d)
            })
            .collect();
    }
    let mut per_out: Vec<Vec<Array>> = vec![Vec::with_capacity(b); shapes.len()];
    for e in 0..b {
        let inputs: Vec<Array> = ins
            .iter()
            .map(|(a, bt)| {
                if *bt {
                    crate::squeeze(
                        &crate::slice_axis(
                            a,
                            0,
                            crate::SliceArg::range(e as isize, e as isize + 1),
                        )?,
                        Some(&[0]),
                    )
                } else {
                    Ok(a.clone())
                }
            })
            .collect::<Result<_>>()?;
        for (j, y) in apply(op, inputs, shapes, rule.clone())
            .into_iter()
            .enumerate()
        {
            per_out[j].push(y);
        }
    }
    per_out.iter().map(|ys| crate::stack(ys, 0)).collect()
}

/// Makes every input batched (broadcasting shared ones over the batch).
fn all_batched(ins: &[(Array, bool)], b: usize) -> Result<Vec<Array>> {
    ins.iter()
        .map(|(a, bt)| if *bt { Ok(a.clone()) } else { batch_of(a, b) })
        .collect()
}

fn prefixed(shapes: &[(Vec<usize>, DType)], b: usize) -> Vec<(Vec<usize>, DType)> {
    shapes
        .iter()
        .map(|(s, d)| {
            let mut full = vec![b];
            full.extend_from_slice(s);
            (full, *d)
        })
        .collect()
}

/// The batched form of one op, or `None` to run it per example.
fn batch_rule(
    op: &Op,
    ins: &[(Array, bool)],
    shapes: &[(Vec<usize>, DType)],
    b: usize,
) -> Result<Option<Vec<Array>>> {
    let out = prefixed(shapes, b);
    let shift = |axes: &[usize]| -> Vec<usize> { axes.iter().map(|&a| a + 1).collect() };
    // Ops whose batch dims are their leading dims, or whose parameters only need shifting:
    // the same op on batched inputs with the batch axis first.
    let same = |new_op: Op| -> Result<Option<Vec<Array>>> {
        let inputs = all_batched(ins, b)?;
        Ok(Some(apply(&new_op, inputs, &out, None)))
    };
    match op {
        Op::Unary(_)
        | Op::Binary(_)
        | Op::Select
        | Op::AsType(_)
        | Op::Reshape
        | Op::Copy
        | Op::Matmul
        | Op::Cholesky { .. }
        | Op::Inv
        | Op::LuFactor
        | Op::Qr
        | Op::Svd { .. }
        | Op::Eigh { .. }
        | Op::SolveTriangular { .. }
        | Op::Solve
        | Op::Hadamard { .. }
        | Op::Fused { .. } => same(op.clone()),
        Op::Transpose { perm } => {
            let mut p = vec![0];
            p.extend(perm.iter().map(|&a| a + 1));
            same(Op::Transpose { perm: p })
        }
        Op::Slice { start, step } => {
            let mut s = vec![0];
            s.extend_from_slice(start);
            let mut st = vec![1];
            st.extend_from_slice(step);
            same(Op::Slice { start: s, step: st })
        }
        Op::Broadcast => {
            // Line the example dims up with the output's trailing dims, batch first.
            let (x, _) = &ins[0];
            let target = &out[0].0;
            let mut s = vec![b];
            s.extend(std::iter::repeat_n(1, target.len() - x.ndim()));
            s.extend_from_slice(&x.shape()[1..]);
            let x = crate::reshape_to(x, &s)?;
            Ok(Some(vec![crate::broadcast_to(&x, target)?]))
        }
        Op::Diagonal {
            offset,
            axis1,
            axis2,
        } => same(Op::Diagonal {
            offset: *offset,
            axis1: axis1 + 1,
            axis2: axis2 + 1,
        }),
        Op::Reduce { kind, axes } => same(Op::Reduce {
            kind: *kind,
            axes: shift(axes),
        }),
        Op::ArgReduce { kind, axis } => same(Op::ArgReduce {
            kind: *kind,
            axis: axis + 1,
        }),
        Op::Scan {
            kind,
            axis,
            reverse,
            inclusive,
        } => same(Op::Scan {
            kind: *kind,
            axis: axis + 1,
            reverse: *reverse,
            inclusive: *inclusive,
        }),
        Op::Concatenate { axis } => same(Op::Concatenate { axis: axis + 1 }),
        Op::Pad {
            low,
            high,
            mode,
            value,
        } => {
            let mut l = vec![0];
            l.extend_from_slice(low);
            let mut h = vec![0];
            h.extend_from_slice(high);
            same(Op::Pad {
                low: l,
                high: h,
                mode: *mode,
                value: *value,
            })
        }
        Op::Sort { axis } => same(Op::Sort { axis: axis + 1 }),
        Op::ArgSort { axis } => same(Op::ArgSort { axis: axis + 1 }),
        Op::Partition { kth, axis } => same(Op::Partition {
            kth: *kth,
            axis: axis + 1,
        }),
        Op::ArgPartition { kth, axis } => same(Op::ArgPartition {
            kth: *kth,
            axis: axis + 1,
        }),
        Op::TakeAlongAxis { axis } => same(Op::TakeAlongAxis { axis: axis + 1 }),
        Op::PutAlongAxis { axis, kind } => same(Op::PutAlongAxis {
            axis: axis + 1,
            kind: *kind,
        }),
        Op::SliceUpdate { start, step, kind } => {
            let mut s = vec![0];
            s.extend_from_slice(start);
            let mut st = vec![1];
            st.extend_from_slice(step);
            same(Op::SliceUpdate {
                start: s,
                step: st,
                kind: *kind,
            })
        }
        Op::Fft { axes, kind } => same(Op::Fft {
            axes: shift(axes),
            kind: *kind,
        }),
        Op::Softmax { axis, log } => same(Op::Softmax {
            axis: axis + 1,
            log: *log,
        }),
        Op::Conv { .. } | Op::Pool { .. } if !ins.get(1).is_some_and(|(_, bt)| *bt) => {
            // The batch folds into the images' own batch dim N: (b, N, ..) -> (b*N, ..).
            let (x, xb) = &ins[0];
            let x = if *xb { x.clone() } else { batch_of(x, b)? };
            let mut folded = vec![b * x.shape()[1]];
            folded.extend_from_slice(&x.shape()[2..]);
            let xf = crate::reshape_to(&x, &folded)?;
            let o = &shapes[0].0;
            let mut of = vec![b * o[0]];
            of.extend_from_slice(&o[1..]);
            let mut inputs = vec![xf];
            inputs.extend(ins[1..].iter().map(|(a, _)| a.clone()));
            let y = Array::from_op(op.clone(), inputs, of, shapes[0].1);
            Ok(Some(vec![crate::reshape_to(&y, &out[0].0)?]))
        }
        // Index arrays, random keys, grid sampling and batched kernels: once per example.
        _ => Ok(None),
    }
}
