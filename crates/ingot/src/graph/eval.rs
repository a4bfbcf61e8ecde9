//! Evaluation: iterative topological order (graphs are deep, so no recursion), each kernel
//! run once, inputs released as soon as their last consumer ran.

use crate::array::{retaining_graph, Array, Data, Node, Pending, State};
use crate::device::Device;
#[allow(unused_imports)]
use crate::Error;
use crate::Result;
use std::collections::HashSet;
use std::sync::{Arc, Weak};

/// Evaluates several arrays together, sharing the work of their common inputs.
pub fn eval(outputs: &[Array]) -> Result<()> {
    // Fast path: nothing to do.
    if outputs
        .iter()
        .all(|a| !matches!(*a.0.state.lock(), State::Pending(_)))
    {
        return Ok(());
    }
    // One output whose inputs are all computed (eager code, an op at a time): run it without
    // the walk. Locks go parent to child, as everywhere.
    if let [a] = outputs {
        let inputs_ready = match &*a.0.state.lock() {
            State::Pending(p) => p
                .inputs
                .iter()
                .all(|i| !matches!(*i.0.state.lock(), State::Pending(_))),
            _ => false,
        };
        if inputs_ready {
            return run_node(&a.0);
        }
    }
    let order = topo_order(outputs);
    // `order` holds weak handles, so an intermediate is freed once its consumers have run.
    for weak in order {
        let Some(node) = weak.upgrade() else { continue };
        run_node(&node)?;
    }
    Ok(())
}

fn topo_order(outputs: &[Array]) -> Vec<Weak<Node>> {
    let mut order = Vec::new();
    let mut seen: HashSet<usize> = HashSet::new();
    // (node, inputs pushed?)
    let mut stack: Vec<(Array, bool)> = outputs.iter().rev().map(|a| (a.clone(), false)).collect();
    while let Some((a, expanded)) = stack.pop() {
        if expanded {
            order.push(Arc::downgrade(&a.0));
            continue;
        }
        if !seen.insert(a.id()) {
            continue;
        }
        let inputs = match &*a.0.state.lock() {
            State::Pending(p) => p.inputs.clone(),
            _ => continue,
        };
        stack.push((a, true));
        for i in inputs.into_iter().rev() {
            if !seen.contains(&i.id()) {
                stack.push((i, false));
            }
        }
    }
    order
}

fn run_node(node: &Arc<Node>) -> Result<()> {
    let pending = {
        let mut st = node.state.lock();
        if !matches!(*st, State::Pending(_)) {
            return Ok(()); // computed already, as a sibling of another output
        }
        match std::mem::replace(&mut *st, State::Running) {
            State::Pending(p) => p,
            _ => unreachable!(),
        }
    };
    let outs: Vec<(Vec<usize>, crate::DType)> = match &pending.siblings {
        None => vec![(node.shape.clone(), node.dtype)],
        Some(sib) => sib
            .iter()
            .map(|w| match w.upgrade() {
                Some(n) => (n.shape.clone(), n.dtype),
                // A dropped sibling's output is still computed (kernels make all outputs).
                // Its own shape is gone: this node's stands in, which is exact for the fused
                // kernel (one shape for all outputs); the others derive shapes from inputs.
                None => (node.shape.clone(), node.dtype),
            })
            .collect(),
    };
    let result = run_kernel(&pending, &outs);
    match result {
        Ok(datas) => {
            match &pending.siblings {
                None => {
                    let d = datas.into_iter().next().ok_or_else(|| {
                        Error::invalid(pending.op.name(), "kernel produced no output")
                    })?;
                    *node.state.lock() = State::Ready(d);
                }
                Some(sib) => {
                    for (w, d) in sib.iter().zip(datas) {
                        if let Some(n) = w.upgrade() {
                            let mut st = n.state.lock();
                            if Arc::ptr_eq(&n, node) || matches!(*st, State::Pending(_)) {
                                *st = State::Ready(d);
                            }
                        }
                    }
                }
            }
            if retaining_graph() {
                keep_recipe(node, &pending);
            }
            // Otherwise `pending` (and with it the inputs) is dropped here.
            Ok(())
        }
        Err(e) => {
            *node.state.lock() = State::Pending(pending);
            Err(e)
        }
    }
}

/// Keeps the recipe on the node and its siblings, for a transform tracing through eval.
fn keep_recipe(node: &Arc<Node>, pending: &Pending) {
    match &pending.siblings {
        None => *node.kept.lock() = Some(Box::new(pending.clone())),
        Some(sib) => {
            for n in sib.iter().filter_map(|w| w.upgrade()) {
                *n.kept.lock() = Some(Box::new(pending.clone()));
            }
        }
    }
}

fn run_kernel(p: &Pending, outs: &[(Vec<usize>, crate::DType)]) -> Result<Vec<Data>> {
    // The node's inputs are read by nothing after it: the kernel may write over those
    // that nobody else holds.
    crate::array::with_donation(true, || run_on_device(p, outs))
}

fn run_on_device(p: &Pending, outs: &[(Vec<usize>, crate::DType)]) -> Result<Vec<Data>> {
    match p.device {
        Device::Cpu => {
            // Inputs a GPU computed come to the host here, where a failure can be reported.
            for a in &p.inputs {
                if let State::Ready(d) = &*a.0.state.lock() {
                    d.buffer.ensure_host()?;
                }
            }
            crate::backend::cpu::eval(&p.op, &p.inputs, outs)
        }
        Device::Cuda(n) => crate::backend::cuda::eval(n, &p.op, &p.inputs, outs),
    }
}
