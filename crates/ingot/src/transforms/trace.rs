//! Tracing: a function's lazy graph captured as a flat, replayable program.
//!
//! `trace` runs the function on handles of its inputs and records every op between them and
//! the outputs, in topological order; arrays the function closed over become constants.
//! `Graph::call` rebuilds the lazy graph on new inputs without running the function.

use crate::array::{Array, RetainGraph};
use crate::op::Op;
use crate::shape::fmt_shape;
use crate::{DType, Error, Result};
use std::collections::HashMap;

/// Where a value of the program comes from.
#[derive(Clone, Debug)]
pub enum Source {
    /// The i-th input of the function.
    Input(usize),
    /// The i-th constant.
    Const(usize),
    /// Output `index` of op application `app`.
    Op { app: usize, index: usize },
}

/// One value of the program.
#[derive(Clone, Debug)]
pub struct Value {
    pub source: Source,
    pub shape: Vec<usize>,
    pub dtype: DType,
}

/// One op applied to earlier values; `outs` are the values it defines.
#[derive(Clone, Debug)]
pub struct App {
    pub op: Op,
    pub inputs: Vec<usize>,
    pub outs: Vec<usize>,
}

/// A traced function: values in topological order, the op applications that define them,
/// the constants it closed over, and which values are its inputs and outputs.
#[derive(Clone)]
pub struct Graph {
    pub values: Vec<Value>,
    pub apps: Vec<App>,
    pub consts: Vec<Array>,
    pub inputs: Vec<usize>,
    pub outputs: Vec<usize>,
    /// Custom backward rules, by application (kept so a replay still differentiates).
    pub(crate) rules: HashMap<usize, crate::transforms::VjpRule>,
}

impl Graph {
    /// The number of op applications.
    pub fn num_ops(&self) -> usize {
        self.apps.len()
    }

    /// Rebuilds the lazy outputs on `inputs`, which must match the traced shapes and dtypes.
    pub fn call(&self, inputs: &[Array]) -> Result<Vec<Array>> {
        if inputs.len() != self.inputs.len() {
            return Err(Error::invalid(
                "call",
                format!(
                    "the traced function takes {} inputs, got {}",
                    self.inputs.len(),
                    inputs.len()
                ),
            ));
        }
        for (i, (x, &v)) in inputs.iter().zip(&self.inputs).enumerate() {
            let want = &self.values[v];
            if x.shape() != want.shape || x.dtype() != want.dtype {
                return Err(Error::invalid(
                    "call",
                    format!(
                        "input {i} is {} {} but the function was traced with {} {}",
                        fmt_shape(x.shape()),
                        x.dtype(),
                        fmt_shape(&want.shape),
                        want.dtype
                    ),
                ));
            }
        }
        let mut vals: Vec<Option<Array>> = vec![None; self.values.len()];
        for (x, &v) in inputs.iter().zip(&self.inputs) {
            vals[v] = Some(x.clone());
        }
        for (v, val) in self.values.iter().enumerate() {
            if let Source::Const(c) = val.source {
                vals[v] = Some(self.consts[c].clone());
            }
        }
        for (k, app) in self.apps.iter().enumerate() {
            let ins: Vec<Array> = app
                .inputs
                .iter()
                .map(|&i| {
                    vals[i].clone().ok_or_else(|| {
                        Error::invalid("call", "internal: value used before it is defined")
                    })
                })
                .collect::<Result<_>>()?;
            let shapes: Vec<(Vec<usize>, DType)> = app
                .outs
                .iter()
                .map(|&o| (self.values[o].shape.clone(), self.values[o].dtype))
                .collect();
            let outs = apply(&app.op, ins, &shapes, self.rules.get(&k).cloned());
            for (&o, a) in app.outs.iter().zip(outs) {
                vals[o] = Some(a);
            }
        }
        self.outputs
            .iter()
            .map(|&o| {
                vals[o]
                    .clone()
                    .ok_or_else(|| Error::invalid("call", "internal: output never defined"))
            })
            .collect()
    }
}

/// A node (or sibling nodes, for several outputs or a custom rule) applying `op`.
pub(crate) fn apply(
    op: &Op,
    inputs: Vec<Array>,
    shapes: &[(Vec<usize>, DType)],
    rule: Option<crate::transforms::VjpRule>,
) -> Vec<Array> {
    match (shapes, rule) {
        ([(s, d)], None) => vec![Array::from_op(op.clone(), inputs, s.clone(), *d)],
        (_, rule) => Array::from_op_with_rule(op.clone(), inputs, shapes.to_vec(), rule),
    }
}

/// Traces `f` on `inputs`: the function runs once, on view handles of the inputs.
pub fn trace(f: impl FnOnce(&[Array]) -> Result<Vec<Array>>, inputs: &[Array]) -> Result<Graph> {
    let _keep = RetainGraph::new();
    let xs: Vec<Array> = inputs
        .iter()
        .map(|p| Array::from_op(Op::Reshape, vec![p.clone()], p.shape().to_vec(), p.dtype()))
        .collect();
    let ys = f(&xs)?;
    Ok(capture(&xs, &ys))
}

/// The program from `xs` to `ys`.
pub(crate) fn capture(xs: &[Array], ys: &[Array]) -> Graph {
    let mut g = Graph {
        values: Vec::new(),
        apps: Vec::new(),
        consts: Vec::new(),
        inputs: Vec::new(),
        outputs: Vec::new(),
        rules: HashMap::new(),
    };
    let mut index: HashMap<usize, usize> = HashMap::new();
    let input_pos: HashMap<usize, usize> =
        xs.iter().enumerate().map(|(i, x)| (x.id(), i)).collect();
    let mut input_vals = vec![usize::MAX; xs.len()];
    // Post-order with an explicit stack: graphs are deep.
    let mut stack: Vec<(Array, bool)> = ys.iter().rev().map(|y| (y.clone(), false)).collect();
    while let Some((a, expanded)) = stack.pop() {
        if index.contains_key(&a.id()) {
            continue;
        }
        let value = |source| Value {
            source,
            shape: a.shape().to_vec(),
            dtype: a.dtype(),
        };
        if let Some(&i) = input_pos.get(&a.id()) {
            index.insert(a.id(), g.values.len());
            input_vals[i] = g.values.len();
            g.values.push(value(Source::Input(i)));
            continue;
        }
        let Some(recipe) = a.recipe() else {
            index.insert(a.id(), g.values.len());
            g.values.push(value(Source::Const(g.consts.len())));
            g.consts.push(a.clone());
            continue;
        };
        if !expanded {
            stack.push((a, true));
            for i in recipe.inputs.iter().rev() {
                if !index.contains_key(&i.id()) {
                    stack.push((i.clone(), false));
                }
            }
            continue;
        }
        let outs: Vec<Option<Array>> = match &recipe.siblings {
            None => vec![Some(a.clone())],
            Some(sib) => sib.iter().map(|w| w.upgrade().map(Array)).collect(),
        };
        let app = g.apps.len();
        let mut out_vals = Vec::with_capacity(outs.len());
        for (k, o) in outs.iter().enumerate() {
            let v = g.values.len();
            // A dropped sibling still gets a value (the op makes it), with this node's
            // shape as a placeholder: nothing reads it.
            let (shape, dtype) = match o {
                Some(o) => (o.shape().to_vec(), o.dtype()),
                None => (Vec::new(), a.dtype()),
            };
            g.values.push(Value {
                source: Source::Op { app, index: k },
                shape,
                dtype,
            });
            if let Some(o) = o {
                index.insert(o.id(), v);
            }
            out_vals.push(v);
        }
        g.apps.push(App {
            op: recipe.op.clone(),
            inputs: recipe.inputs.iter().map(|i| index[&i.id()]).collect(),
            outs: out_vals,
        });
        if let Some(rule) = recipe.rule {
            g.rules.insert(app, rule);
        }
    }
    // An input no output uses still needs its value slot.
    for (i, v) in input_vals.iter_mut().enumerate() {
        if *v == usize::MAX {
            *v = g.values.len();
            g.values.push(Value {
                source: Source::Input(i),
                shape: xs[i].shape().to_vec(),
                dtype: xs[i].dtype(),
            });
        }
    }
    g.inputs = input_vals;
    g.outputs = ys.iter().map(|y| index[&y.id()]).collect();
    g
}
