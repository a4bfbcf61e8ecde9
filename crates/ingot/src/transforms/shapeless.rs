//! Replaying a traced program on inputs of new sizes (same ranks and dtypes): each op's
//! output shape is inferred from its inputs instead of read from the trace.
//!
//! Elementwise ops broadcast their inputs at replay, so a broadcast that only feeds
//! elementwise ops passes its source through (a bias of (n,) added to (batch, n) follows
//! both sizes). Ops whose output shape is a parameter of the trace (slice, pad, a general
//! reshape, conv, ...) stop the replay: the caller traces the function again.

use super::trace::{apply, Graph, Source};
use crate::op::Op;
use crate::shape::broadcast_shapes;
use crate::{Array, DType, Result};

fn elementwise(op: &Op) -> bool {
    matches!(
        op,
        Op::Unary(_) | Op::Binary(_) | Op::Select | Op::AsType(_) | Op::Fused { .. }
    )
}

/// The outputs of `g` on `inputs`, or `None` when some op's output shape can't be
/// inferred for these sizes.
pub(crate) fn replay(g: &Graph, inputs: &[Array]) -> Result<Option<Vec<Array>>> {
    if inputs.len() != g.inputs.len() {
        return Ok(None);
    }
    for (x, &v) in inputs.iter().zip(&g.inputs) {
        let want = &g.values[v];
        if x.ndim() != want.shape.len() || x.dtype() != want.dtype {
            return Ok(None);
        }
    }
    // Values read by something other than an elementwise op (or returned) must have their
    // full shape; the rest may stay un-broadcast.
    let mut needs_full = vec![false; g.values.len()];
    for &o in &g.outputs {
        needs_full[o] = true;
    }
    for a in &g.apps {
        if !elementwise(&a.op) {
            for &i in &a.inputs {
                needs_full[i] = true;
            }
        }
    }
    let mut vals: Vec<Option<Array>> = vec![None; g.values.len()];
    for (x, &v) in inputs.iter().zip(&g.inputs) {
        vals[v] = Some(x.clone());
    }
    for (v, val) in g.values.iter().enumerate() {
        if let Source::Const(c) = val.source {
            vals[v] = Some(g.consts[c].clone());
        }
    }
    for (k, app) in g.apps.iter().enumerate() {
        let Some(ins) = app
            .inputs
            .iter()
            .map(|&i| vals[i].clone())
            .collect::<Option<Vec<Array>>>()
        else {
            return Ok(None);
        };
        let dtypes: Vec<DType> = app.outs.iter().map(|&o| g.values[o].dtype).collect();
        let traced_in = |i: usize| &g.values[app.inputs[i]].shape;
        let traced_out = &g.values[app.outs[0]].shape;
        let outs: Vec<Array> = match &app.op {
            op if elementwise(op) => {
                let mut shape: Vec<usize> = Vec::new();
                for x in &ins {
                    match broadcast_shapes("compile", &shape, x.shape()) {
                        Ok(s) => shape = s,
                        Err(_) => return Ok(None),
                    }
                }
                if shape.len() != traced_out.len() {
                    return Ok(None);
                }
                let ins = ins
                    .iter()
                    .map(|x| {
                        if matches!(op, Op::Fused { .. }) {
                            // Fused nodes read broadcast inputs in place, at full rank.
                            let mut s = vec![1; shape.len() - x.ndim()];
                            s.extend_from_slice(x.shape());
                            crate::reshape_to(x, &s)
                        } else {
                            crate::broadcast_to(x, &shape)
                        }
                    })
                    .collect::<Result<Vec<_>>>()?;
                let shapes: Vec<_> = dtypes.iter().map(|&d| (shape.clone(), d)).collect();
                apply(op, ins, &shapes, g.rules.get(&k).cloned())
            }
            Op::Broadcast => {
                let x = &ins[0];
                if needs_full[app.outs[0]] {
                    // Dims that came from the source follow it; the others keep their size.
                    let off = traced_out.len() - x.ndim();
                    let mut shape = traced_out.clone();
                    for (i, &n) in x.shape().iter().enumerate() {
                        if traced_in(0)[i] == traced_out[off + i] {
                            shape[off + i] = n;
                        } else if n != 1 {
                            return Ok(None);
                        }
                    }
                    vec![crate::broadcast_to(x, &shape)?]
                } else {
                    vec![x.clone()]
                }
            }
            Op::Reshape => match squeeze_like(traced_in(0), traced_out, ins[0].shape()) {
                Some(s) => vec![crate::reshape_to(&ins[0], &s)?],
                None => return Ok(None),
            },
            Op::Unary(_)
            | Op::Copy
            | Op::Scan { .. }
            | Op::Softmax { .. }
            | Op::Sort { .. }
            | Op::ArgSort { .. } => one(app, &ins, ins[0].shape().to_vec(), &dtypes),
            Op::Reduce { axes, .. } => {
                let mut s = ins[0].shape().to_vec();
                for &a in axes {
                    match s.get_mut(a) {
                        Some(d) => *d = 1,
                        None => return Ok(None),
                    }
                }
                one(app, &ins, s, &dtypes)
            }
            Op::ArgReduce { axis, .. } => {
                let mut s = ins[0].shape().to_vec();
                match s.get_mut(*axis) {
                    Some(d) => *d = 1,
                    None => return Ok(None),
                }
                one(app, &ins, s, &dtypes)
            }
            Op::Transpose { perm } => {
                let s = ins[0].shape();
                if perm.len() != s.len() || perm.iter().any(|&p| p >= s.len()) {
                    return Ok(None);
                }
                one(app, &ins, perm.iter().map(|&p| s[p]).collect(), &dtypes)
            }
            Op::Matmul => {
                let (a, b) = (ins[0].shape(), ins[1].shape());
                let (na, nb) = (a.len(), b.len());
                if na < 2 || na != nb || a[..na - 2] != b[..nb - 2] || a[na - 1] != b[nb - 2] {
                    return Ok(None);
                }
                let mut s = a[..na - 1].to_vec();
                s.push(b[nb - 1]);
                one(app, &ins, s, &dtypes)
            }
            _ => return Ok(None),
        };
        for (&o, a) in app.outs.iter().zip(outs) {
            vals[o] = Some(a);
        }
    }
    Ok(g.outputs.iter().map(|&o| vals[o].clone()).collect())
}

fn one(app: &super::trace::App, ins: &[Array], shape: Vec<usize>, dtypes: &[DType]) -> Vec<Array> {
    apply(&app.op, ins.to_vec(), &[(shape, dtypes[0])], None)
}

/// The new output of a reshape that only inserted or removed size-1 dims when traced
/// (`traced_in` -> `traced_out`), applied to an input of shape `now`; `None` for any other
/// reshape, or when a dim the trace dropped is no longer 1.
fn squeeze_like(traced_in: &[usize], traced_out: &[usize], now: &[usize]) -> Option<Vec<usize>> {
    let kept_in: Vec<usize> = (0..traced_in.len())
        .filter(|&i| traced_in[i] != 1)
        .collect();
    let kept_out: Vec<usize> = (0..traced_out.len())
        .filter(|&i| traced_out[i] != 1)
        .collect();
    if kept_in.len() != kept_out.len()
        || kept_in
            .iter()
            .zip(&kept_out)
            .any(|(&i, &o)| traced_in[i] != traced_out[o])
        || now.len() != traced_in.len()
    {
        return None;
    }
    if (0..now.len()).any(|i| traced_in[i] == 1 && now[i] != 1) {
        return None;
    }
    let mut out = traced_out.to_vec();
    for (&i, &o) in kept_in.iter().zip(&kept_out) {
        out[o] = now[i];
    }
    Some(out)
}
