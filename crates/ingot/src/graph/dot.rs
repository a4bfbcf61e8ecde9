//! Graphviz dumps of the graph behind arrays: one box per op (its name, parameters, shape
//! and dtype), one ellipse per input that is already data.

use crate::array::Array;
use crate::op::Op;
use crate::shape::fmt_shape;
use crate::Result;
use std::collections::HashMap;
use std::fmt::Write;

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// A short label for an op: its name, and its parameters where they say something.
fn op_label(op: &Op) -> String {
    match op {
        Op::Unary(u) => format!("{u:?}").to_lowercase(),
        Op::Binary(b) => format!("{b:?}").to_lowercase(),
        Op::AsType(d) => format!("astype {d}"),
        Op::Custom { name, .. } => name.clone(),
        Op::Kernel { name, .. } => format!("kernel {name}"),
        Op::Reshape | Op::Broadcast | Op::Copy | Op::Select | Op::Matmul => op.name().to_string(),
        other => {
            // The parameters as Debug prints them, shortened for the picture.
            let d = format!("{other:?}");
            let d = if d.len() > 60 {
                format!(
                    "{}…",
                    &d[..d.char_indices().nth(57).map_or(d.len(), |c| c.0)]
                )
            } else {
                d
            };
            format!("{}\\n{}", other.name(), escape(&d))
        }
    }
}

/// The graph behind `outputs` in Graphviz dot syntax (render with `dot -Tsvg`). Outputs are
/// drawn bold; arrays that are already computed appear as leaves.
pub fn to_dot(outputs: &[Array]) -> String {
    let mut ids: HashMap<usize, usize> = HashMap::new();
    let mut out = String::from(
        "digraph ingot {\n  rankdir=TB;\n  node [fontname=\"Helvetica\", fontsize=10];\n",
    );
    let mut stack: Vec<Array> = outputs.iter().rev().cloned().collect();
    // (input node, consumer number, argument position), drawn once every node has a number.
    let mut edges: Vec<(usize, usize, usize)> = Vec::new();
    let out_ids: std::collections::HashSet<usize> = outputs.iter().map(|a| a.id()).collect();
    while let Some(a) = stack.pop() {
        if ids.contains_key(&a.id()) {
            continue;
        }
        let n = ids.len();
        ids.insert(a.id(), n);
        let meta = format!("{} {}", fmt_shape(a.shape()), a.dtype());
        let bold = if out_ids.contains(&a.id()) {
            ", penwidth=2"
        } else {
            ""
        };
        match a.recipe() {
            Some(r) => {
                let _ = writeln!(
                    out,
                    "  n{n} [shape=box, label=\"{}\\n{}\"{bold}];",
                    op_label(&r.op),
                    escape(&meta)
                );
                for (k, i) in r.inputs.iter().enumerate() {
                    edges.push((i.id(), n, k));
                    stack.push(i.clone());
                }
            }
            None => {
                let kind = if a.is_weak() { "scalar" } else { "data" };
                let _ = writeln!(
                    out,
                    "  n{n} [shape=ellipse, label=\"{kind}\\n{}\"{bold}];",
                    escape(&meta)
                );
            }
        }
    }
    for (src, dst, k) in edges {
        let _ = writeln!(out, "  n{} -> n{dst} [label=\"{k}\"];", ids[&src]);
    }
    out.push_str("}\n");
    out
}

/// The graph of `f` traced on placeholders shaped like `example_inputs`.
pub fn to_dot_fn(
    f: impl FnOnce(&[Array]) -> Result<Vec<Array>>,
    example_inputs: &[Array],
) -> Result<String> {
    // Placeholders are zero arrays of the inputs' shapes and dtypes: the picture shows f's
    // own ops, not how the examples were made.
    let xs: Vec<Array> = example_inputs
        .iter()
        .map(|x| crate::zeros(x.shape(), x.dtype()))
        .collect::<Result<_>>()?;
    for x in &xs {
        x.eval()?;
    }
    let ys = f(&xs)?;
    Ok(to_dot(&ys))
}
