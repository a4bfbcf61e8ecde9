//! Fusion: chains of elementwise ops in a traced program become single `Op::Fused` nodes,
//! which the CPU runs as one pass over cache-sized tiles with no intermediate arrays.
//!
//! A fused node's meaning is the chain of ordinary ops it replaced (`expand`), which also
//! gives it a gradient and a batching rule.

use super::trace::{App, Graph, Source, Value};
use crate::op::{FusedInstr, FusedOp, FusedProgram, Op};
use crate::{Array, Result};
use std::collections::HashMap;

/// The outputs of `program` on `inputs`, built from ordinary ops (broadcasting inputs to
/// the common shape first).
pub(crate) fn expand(program: &FusedProgram, inputs: &[Array]) -> Result<Vec<Array>> {
    program.validate(inputs.len())?;
    let mut shape: Vec<usize> = Vec::new();
    for x in inputs {
        shape = crate::shape::broadcast_shapes("fused", &shape, x.shape())?;
    }
    let mut vals: Vec<Array> = inputs
        .iter()
        .map(|x| crate::broadcast_to(x, &shape))
        .collect::<Result<_>>()?;
    for ins in &program.instrs {
        let (op, args) = match ins.op {
            FusedOp::Unary(u) => (Op::Unary(u), vec![vals[ins.args[0]].clone()]),
            FusedOp::Binary(b) => (
                Op::Binary(b),
                vec![vals[ins.args[0]].clone(), vals[ins.args[1]].clone()],
            ),
        };
        let dtype = args[0].dtype();
        vals.push(Array::from_op(op, args, shape.clone(), dtype));
    }
    Ok(program.outputs.iter().map(|&o| vals[o].clone()).collect())
}

/// The reverse rule of a fused node: the vjp of its expansion.
pub(crate) fn vjp(
    program: &FusedProgram,
    inputs: &[Array],
    outs: &[Option<Array>],
    cts: &[Option<Array>],
) -> Result<Vec<Option<Array>>> {
    let cts: Vec<Array> = cts
        .iter()
        .zip(outs)
        .map(|(c, o)| match (c, o) {
            (Some(c), _) => Ok(c.clone()),
            (None, Some(o)) => crate::zeros_like(o),
            (None, None) => Err(crate::Error::invalid(
                "fused",
                "internal: an output with no cotangent and no value",
            )),
        })
        .collect::<Result<_>>()?;
    let (_, grads) = super::autodiff::vjp(|xs| expand(program, xs), inputs, &cts)?;
    Ok(grads.into_iter().map(Some).collect())
}

/// Can this application be an instruction of a fused program?
fn fusable(app: &App, g: &Graph) -> Option<FusedOp> {
    if app.outs.len() != 1 || g.rules.contains_key(&app_index(app, g)) {
        return None;
    }
    let out = &g.values[app.outs[0]];
    if !out.dtype.is_float() {
        return None;
    }
    let same = app
        .inputs
        .iter()
        .all(|&i| g.values[i].dtype == out.dtype && g.values[i].shape == out.shape);
    if !same {
        return None;
    }
    match app.op {
        Op::Unary(u) if u.fusable() => Some(FusedOp::Unary(u)),
        Op::Binary(b) if b.fusable() => Some(FusedOp::Binary(b)),
        _ => None,
    }
}

fn app_index(app: &App, g: &Graph) -> usize {
    match g.values[app.outs[0]].source {
        Source::Op { app, .. } => app,
        _ => usize::MAX,
    }
}

/// The program with its elementwise chains fused: each group of two or more connected
/// elementwise ops of one shape and float dtype becomes one `Op::Fused` node, reading
/// broadcast inputs in place. Groups never form a cycle: an op joins a group only when none
/// of its other inputs depends on the group through an op outside it.
pub(crate) fn fuse(g: &Graph) -> Result<Graph> {
    let nv = g.values.len();
    // The application defining each value.
    let producer = producers(nv, &g.apps);
    let mut group = vec![usize::MAX; g.apps.len()];
    let mut members: Vec<Vec<usize>> = Vec::new();
    // Groups merge when an op reads from several: a union-find over group ids.
    let mut parent: Vec<usize> = Vec::new();
    fn find(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    // taint[v]: the groups v depends on through an op outside them.
    let mut taint: Vec<Vec<usize>> = vec![Vec::new(); nv];
    for (k, a) in g.apps.iter().enumerate() {
        let group_of = |v: usize, group: &[usize], parent: &mut [usize]| -> Option<usize> {
            let p = producer[v];
            (p != usize::MAX && group[p] != usize::MAX).then(|| find(parent, group[p]))
        };
        if fusable(a, g).is_some() {
            let mut cand: Vec<usize> = a
                .inputs
                .iter()
                .filter_map(|&i| group_of(i, &group, &mut parent))
                .collect();
            cand.sort_unstable();
            cand.dedup();
            // Joining the groups in `s` is safe when no input reaches one of them through
            // an op outside it (that op would have to run both before and after the group).
            let safe = |s: &[usize], parent: &mut [usize]| {
                a.inputs
                    .iter()
                    .all(|&j| taint[j].iter().all(|&t| !s.contains(&find(parent, t))))
            };
            let joined = if !cand.is_empty() && safe(&cand, &mut parent) {
                let root = cand[0];
                for &c in &cand[1..] {
                    parent[c] = root;
                    let moved = std::mem::take(&mut members[c]);
                    members[root].extend(moved);
                }
                Some(root)
            } else {
                cand.iter().copied().find(|&c| safe(&[c], &mut parent))
            };
            let gi = joined.unwrap_or_else(|| {
                members.push(Vec::new());
                parent.push(members.len() - 1);
                members.len() - 1
            });
            group[k] = gi;
            members[gi].push(k);
        }
        let mine = (group[k] != usize::MAX).then(|| find(&mut parent, group[k]));
        let mut t: Vec<usize> = Vec::new();
        for &i in &a.inputs {
            t.extend(taint[i].iter().copied());
            if let Some(gi) = group_of(i, &group, &mut parent) {
                if Some(gi) != mine {
                    t.push(gi);
                }
            }
        }
        t.sort_unstable();
        t.dedup();
        for &o in &a.outs {
            taint[o] = t.clone();
        }
    }
    for k in 0..group.len() {
        if group[k] != usize::MAX {
            group[k] = find(&mut parent, group[k]);
        }
    }
    for m in members.iter_mut() {
        m.sort_unstable(); // apps are in dependency order, so members are too
    }
    // Only groups of two or more pay for themselves.
    for m in &members {
        if m.len() < 2 {
            for &k in m {
                group[k] = usize::MAX;
            }
        }
    }
    let mut used_outside = vec![false; nv];
    for &o in &g.outputs {
        used_outside[o] = true;
    }
    for (k, a) in g.apps.iter().enumerate() {
        for &i in &a.inputs {
            let p = producer[i];
            if group[k] == usize::MAX || p == usize::MAX || group[p] != group[k] {
                used_outside[i] = true;
            }
        }
    }

    // New applications over the old value numbering (plus new values for reshapes).
    let mut values = g.values.clone();
    let mut apps: Vec<App> = Vec::new();
    let mut rules: HashMap<usize, crate::transforms::VjpRule> = HashMap::new();
    for (k, a) in g.apps.iter().enumerate() {
        if group[k] == usize::MAX {
            if let Some(r) = g.rules.get(&k) {
                rules.insert(apps.len(), r.clone());
            }
            apps.push(a.clone());
            continue;
        }
        let m = &members[group[k]];
        if m.last() != Some(&k) {
            continue; // the group is emitted at its last member
        }
        let out = &g.values[a.outs[0]];
        let (shape, dtype) = (out.shape.clone(), out.dtype);
        let mut slot: HashMap<usize, usize> = HashMap::new();
        let mut fused_inputs: Vec<usize> = Vec::new();
        let mut pre: Vec<App> = Vec::new();
        let mut instrs_src: Vec<(FusedOp, Vec<usize>, usize)> = Vec::new();
        for &mk in m {
            let ma = &g.apps[mk];
            for &i in &ma.inputs {
                let p = producer[i];
                if p != usize::MAX && group[p] == group[k] || slot.contains_key(&i) {
                    continue;
                }
                // Read a broadcast's source in place: left-pad it with 1s to the rank.
                let mut src = i;
                if p != usize::MAX && g.apps[p].op == Op::Broadcast {
                    let b = g.apps[p].inputs[0];
                    let bs = &g.values[b].shape;
                    if bs.len() < shape.len() {
                        let mut padded = vec![1; shape.len() - bs.len()];
                        padded.extend_from_slice(bs);
                        values.push(Value {
                            source: Source::Input(usize::MAX),
                            shape: padded,
                            dtype,
                        });
                        pre.push(App {
                            op: Op::Reshape,
                            inputs: vec![b],
                            outs: vec![values.len() - 1],
                        });
                        src = values.len() - 1;
                    } else {
                        src = b;
                    }
                }
                slot.insert(i, fused_inputs.len());
                fused_inputs.push(src);
            }
        }
        let n_in = fused_inputs.len();
        for (j, &mk) in m.iter().enumerate() {
            let ma = &g.apps[mk];
            let op = fusable(ma, g).ok_or_else(|| {
                crate::Error::invalid("compile", "internal: a fused member is not fusable")
            })?;
            instrs_src.push((op, ma.inputs.clone(), ma.outs[0]));
            slot.insert(ma.outs[0], n_in + j);
        }
        let instrs = instrs_src
            .iter()
            .map(|(op, args, _)| FusedInstr {
                op: *op,
                args: args.iter().map(|i| slot[i]).collect(),
            })
            .collect();
        let outs: Vec<usize> = instrs_src
            .iter()
            .map(|(_, _, o)| *o)
            .filter(|&o| used_outside[o])
            .collect();
        let program = FusedProgram {
            instrs,
            outputs: outs.iter().map(|o| slot[o]).collect(),
        };
        apps.extend(pre);
        apps.push(App {
            op: Op::Fused { program },
            inputs: fused_inputs,
            outs,
        });
        let _ = (shape, dtype);
    }
    // The grouping rules keep each group from reading itself through an op outside it, but
    // two groups can still end up reading each other (a member of one reads the other
    // directly while a member of the other reads the first): such a program has no order.
    // Fusion is only an optimization, so that program runs unfused.
    if has_cycle(&values, &apps) {
        return Ok(g.clone());
    }
    Ok(renumber(g, values, apps, rules))
}

/// The application defining each of `nv` values (`usize::MAX`: an input or a constant).
fn producers(nv: usize, apps: &[App]) -> Vec<usize> {
    let mut producer = vec![usize::MAX; nv];
    for (k, a) in apps.iter().enumerate() {
        for &o in &a.outs {
            producer[o] = k;
        }
    }
    producer
}

/// Whether the applications' dependencies form a cycle.
fn has_cycle(values: &[Value], apps: &[App]) -> bool {
    let producer = producers(values.len(), apps);
    // Kahn's algorithm: every application is ordered unless some wait on each other.
    let mut waiting: Vec<usize> = vec![0; apps.len()];
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); apps.len()];
    for (k, a) in apps.iter().enumerate() {
        for &i in &a.inputs {
            let p = producer[i];
            if p != usize::MAX {
                waiting[k] += 1;
                users[p].push(k);
            }
        }
    }
    let mut ready: Vec<usize> = (0..apps.len()).filter(|&k| waiting[k] == 0).collect();
    let mut done = 0;
    while let Some(k) = ready.pop() {
        done += 1;
        for &u in &users[k] {
            waiting[u] -= 1;
            if waiting[u] == 0 {
                ready.push(u);
            }
        }
    }
    done < apps.len()
}

/// A graph from applications over `values`: sorted so every value is defined before use,
/// unused applications dropped, values renumbered (inputs and constants first).
pub(super) fn renumber(
    g: &Graph,
    values: Vec<Value>,
    apps: Vec<App>,
    rules: HashMap<usize, crate::transforms::VjpRule>,
) -> Graph {
    let producer = producers(values.len(), &apps);
    // Live applications in dependency order: post-order from the outputs, iterative.
    let mut order: Vec<usize> = Vec::new();
    let mut state = vec![0u8; apps.len()]; // 0 new, 1 open, 2 done
    for &o in &g.outputs {
        if producer[o] == usize::MAX {
            continue;
        }
        let mut stack = vec![producer[o]];
        while let Some(&k) = stack.last() {
            match state[k] {
                0 => {
                    state[k] = 1;
                    for &i in &apps[k].inputs {
                        let p = producer[i];
                        if p != usize::MAX && state[p] == 0 {
                            stack.push(p);
                        }
                    }
                }
                1 => {
                    state[k] = 2;
                    order.push(k);
                    stack.pop();
                }
                _ => {
                    stack.pop();
                }
            }
        }
    }
    let mut out = Graph {
        values: Vec::new(),
        apps: Vec::new(),
        consts: g.consts.clone(),
        inputs: vec![0; g.inputs.len()],
        outputs: Vec::new(),
        rules: HashMap::new(),
    };
    let mut map = vec![usize::MAX; values.len()];
    for (v, val) in g.values.iter().enumerate() {
        match val.source {
            Source::Input(i) => {
                map[v] = out.values.len();
                out.inputs[i] = out.values.len();
                out.values.push(val.clone());
            }
            Source::Const(_) => {
                map[v] = out.values.len();
                out.values.push(val.clone());
            }
            Source::Op { .. } => {}
        }
    }
    for k in order {
        let a = &apps[k];
        let na = out.apps.len();
        let outs: Vec<usize> = a
            .outs
            .iter()
            .enumerate()
            .map(|(idx, &o)| {
                map[o] = out.values.len();
                out.values.push(Value {
                    source: Source::Op {
                        app: na,
                        index: idx,
                    },
                    shape: values[o].shape.clone(),
                    dtype: values[o].dtype,
                });
                map[o]
            })
            .collect();
        if let Some(r) = rules.get(&k) {
            out.rules.insert(na, r.clone());
        }
        out.apps.push(App {
            op: a.op.clone(),
            inputs: a.inputs.iter().map(|&i| map[i]).collect(),
            outs,
        });
    }
    out.outputs = g.outputs.iter().map(|&o| map[o]).collect();
    out
}
