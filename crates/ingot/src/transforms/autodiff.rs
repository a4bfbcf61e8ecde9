//! Reverse mode (`vjp`, `grad`, `value_and_grad`), forward mode (`jvp`), `checkpoint` and
//! `custom_vjp`.
//!
//! `vjp` runs the function on fresh handles of the primals (view nodes, so no copy), then
//! walks the graph it built from the outputs back to those handles, applying the rule of
//! each op (`vjp.rs`) in reverse topological order. Only ops on a path from a primal to an
//! output are visited. The rules build ordinary lazy ops, so the gradient graph can itself
//! be differentiated.

use super::tree::Tree;
use super::vjp::vjp_rule;
use crate::array::{Array, Pending, RetainGraph};
use crate::op::Op;
use crate::shape::fmt_shape;
use crate::{Error, Result};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A user backward rule: `(inputs, outputs, cotangents of the outputs)` to one cotangent
/// per input (`None`: no gradient flows to it).
pub type VjpRule =
    Arc<dyn Fn(&[Array], &[Array], &[Array]) -> Result<Vec<Option<Array>>> + Send + Sync>;

/// A fresh handle of `p` that the backward walk stops at: a same-shape reshape (a view).
fn marker(p: &Array) -> Array {
    Array::from_op(Op::Reshape, vec![p.clone()], p.shape().to_vec(), p.dtype())
}

/// One op application in the walk: a node, its recipe, and all its output nodes.
struct Step {
    recipe: Pending,
    outs: Vec<Option<Array>>,
}

fn outputs_of(node: &Array, recipe: &Pending) -> Vec<Option<Array>> {
    match &recipe.siblings {
        None => vec![Some(node.clone())],
        Some(sib) => sib.iter().map(|w| w.upgrade().map(Array)).collect(),
    }
}

/// Cotangents of `targets` given cotangents `cts` of `ys` (zeros where no path exists).
pub(crate) fn backward(ys: &[Array], cts: &[Array], targets: &[Array]) -> Result<Vec<Array>> {
    // Gradient ops run in the dtypes the forward ops chose, not autocast's (crate::amp).
    crate::amp::with(None, || backward_inner(ys, cts, targets))
}

fn backward_inner(ys: &[Array], cts: &[Array], targets: &[Array]) -> Result<Vec<Array>> {
    let target_ids: HashSet<usize> = targets.iter().map(|t| t.id()).collect();
    // Post-order over the graph (inputs before consumers), iterative: graphs are deep.
    let mut active: HashMap<usize, bool> = HashMap::new();
    let mut visited: HashSet<usize> = HashSet::new();
    let mut order: Vec<Step> = Vec::new();
    let mut stack: Vec<(Array, Option<Pending>)> =
        ys.iter().rev().map(|y| (y.clone(), None)).collect();
    while let Some((a, expanded)) = stack.pop() {
        if let Some(recipe) = expanded {
            let act = recipe
                .inputs
                .iter()
                .any(|i| active.get(&i.id()).copied().unwrap_or(false));
            let outs = outputs_of(&a, &recipe);
            for o in outs.iter().flatten() {
                active.insert(o.id(), act);
            }
            if act {
                order.push(Step { recipe, outs });
            }
            continue;
        }
        if !visited.insert(a.id()) {
            continue;
        }
        if target_ids.contains(&a.id()) {
            active.insert(a.id(), true);
            continue;
        }
        let Some(recipe) = a.recipe() else {
            active.insert(a.id(), false);
            continue;
        };
        if matches!(recipe.op, Op::Unary(crate::op::UnaryOp::StopGradient)) {
            active.insert(a.id(), false);
            continue;
        }
        if let Some(sib) = &recipe.siblings {
            for n in sib.iter().filter_map(|w| w.upgrade()) {
                visited.insert(Arc::as_ptr(&n) as usize);
            }
        }
        let inputs = recipe.inputs.clone();
        stack.push((a, Some(recipe)));
        for i in inputs.into_iter().rev() {
            if !visited.contains(&i.id()) {
                stack.push((i, None));
            }
        }
    }

    let mut cot: HashMap<usize, Array> = HashMap::new();
    for (y, c) in ys.iter().zip(cts) {
        if y.dtype().is_inexact() {
            accumulate(&mut cot, y, c.clone())?;
        }
    }
    for step in order.iter().rev() {
        let cts: Vec<Option<Array>> = step
            .outs
            .iter()
            .map(|o| o.as_ref().and_then(|o| cot.remove(&o.id())))
            .collect();
        if cts.iter().all(|c| c.is_none()) {
            continue;
        }
        let inputs = &step.recipe.inputs;
        let mut needs: Vec<bool> = inputs
            .iter()
            .map(|i| i.dtype().is_inexact() && active.get(&i.id()).copied().unwrap_or(false))
            .collect();
        // A slice whose input already has a cotangent (the second and third of a split,
        // as GPT-2's qkv) adds its own into that cotangent's slice: no full-size zeros
        // and no full-size add for each (8 MB-per-layer passes in run G25's trace).
        if let (Op::Slice { start, step: st }, [Some(g)], [true]) =
            (&step.recipe.op, cts.as_slice(), needs.as_slice())
        {
            let x = &inputs[0];
            if let Some(prev) = cot.remove(&x.id()) {
                let g = as_cotangent_of(x, g.clone())?;
                let sum = Array::from_op(
                    Op::SliceUpdate {
                        start: start.clone(),
                        step: st.clone(),
                        kind: crate::op::ScatterKind::Add,
                    },
                    vec![prev, g],
                    x.shape().to_vec(),
                    x.dtype(),
                );
                cot.insert(x.id(), sum);
                continue;
            }
        }
        let grads = match (&step.recipe.op, &step.recipe.rule) {
            (Op::Custom { n_in, name, .. }, Some(rule)) => {
                // Gradients reach the function's arguments only, never its output graph.
                needs[*n_in..].iter_mut().for_each(|n| *n = false);
                custom_grads(name, rule, &inputs[..*n_in], &step.outs, &cts)?
            }
            (op, _) => vjp_rule(op, inputs, &step.outs, &cts, &needs)?,
        };
        for ((inp, g), &need) in inputs.iter().zip(grads).zip(&needs) {
            if let (true, Some(g)) = (need, g) {
                accumulate(&mut cot, inp, g)?;
            }
        }
    }
    targets
        .iter()
        .map(|t| match cot.remove(&t.id()) {
            Some(g) => Ok(g),
            None => crate::zeros_like(t),
        })
        .collect()
}

fn custom_grads(
    name: &str,
    rule: &crate::transforms::VjpRule,
    inputs: &[Array],
    outs: &[Option<Array>],
    cts: &[Option<Array>],
) -> Result<Vec<Option<Array>>> {
    let outs: Vec<Array> = outs
        .iter()
        .map(|o| {
            o.clone()
                .ok_or_else(|| Error::invalid(name, "an output was dropped"))
        })
        .collect::<Result<_>>()?;
    let cts = zero_filled(cts, &outs)?;
    let g = rule(inputs, &outs, &cts)?;
    if g.len() != inputs.len() {
        return Err(Error::invalid(
            name,
            format!(
                "custom vjp rule returned {} cotangents for {} inputs",
                g.len(),
                inputs.len()
            ),
        ));
    }
    Ok(g)
}

/// `g` in `x`'s dtype (the real part for a real `x`).
fn as_cotangent_of(x: &Array, g: Array) -> Result<Array> {
    Ok(if g.dtype() != x.dtype() {
        if g.dtype().is_complex() && !x.dtype().is_complex() {
            crate::real(&g)?
        } else {
            crate::astype(&g, x.dtype())?
        }
    } else {
        g
    })
}

/// Adds `g` into the cotangent of `x`, checking the rule gave the input's shape.
fn accumulate(cot: &mut HashMap<usize, Array>, x: &Array, g: Array) -> Result<()> {
    if g.shape() != x.shape() {
        return Err(Error::invalid(
            "vjp",
            format!(
                "cotangent of shape {} for a value of shape {}",
                fmt_shape(g.shape()),
                fmt_shape(x.shape())
            ),
        ));
    }
    let g = as_cotangent_of(x, g)?;
    let v = match cot.remove(&x.id()) {
        Some(prev) => crate::add(&prev, &g)?,
        None => g,
    };
    cot.insert(x.id(), v);
    Ok(())
}

fn check_cotangents(op: &str, ys: &[Array], cts: &[Array]) -> Result<Vec<Array>> {
    if ys.len() != cts.len() {
        return Err(Error::invalid(
            op,
            format!(
                "{} cotangents for a function with {} outputs",
                cts.len(),
                ys.len()
            ),
        ));
    }
    ys.iter()
        .zip(cts)
        .enumerate()
        .map(|(i, (y, c))| {
            if y.shape() != c.shape() {
                return Err(Error::invalid(
                    op,
                    format!(
                        "cotangent {i} has shape {} but output {i} has shape {}",
                        fmt_shape(c.shape()),
                        fmt_shape(y.shape())
                    ),
                ));
            }
            if c.dtype() == y.dtype() || !y.dtype().is_inexact() {
                Ok(c.clone())
            } else {
                crate::astype(c, y.dtype())
            }
        })
        .collect()
}

/// Reverse mode: the outputs of `f(primals)` and the cotangents of the primals given
/// `cotangents` of the outputs (`cotangentsᵀ · J`).
pub fn vjp(
    f: impl FnOnce(&[Array]) -> Result<Vec<Array>>,
    primals: &[Array],
    cotangents: &[Array],
) -> Result<(Vec<Array>, Vec<Array>)> {
    let _keep = RetainGraph::new();
    let xs: Vec<Array> = primals.iter().map(marker).collect();
    let ys = f(&xs)?;
    let cts = check_cotangents("vjp", &ys, cotangents)?;
    let gs = backward(&ys, &cts, &xs)?;
    Ok((ys, gs))
}

/// Forward mode: the outputs of `f(primals)` and their tangents along `tangents` (`J · v`).
///
/// Computed as the transpose of the (linear) backward pass: the vjp with respect to a
/// cotangent placeholder `u` is `uᵀ J`, and its own vjp with cotangent `v` is `J v`. Every
/// vjp rule is linear in its cotangent and built from differentiable ops, so this needs no
/// second set of rules; it costs about two backward passes.
pub fn jvp(
    f: impl FnOnce(&[Array]) -> Result<Vec<Array>>,
    primals: &[Array],
    tangents: &[Array],
) -> Result<(Vec<Array>, Vec<Array>)> {
    let _keep = RetainGraph::new();
    if primals.len() != tangents.len() {
        return Err(Error::invalid(
            "jvp",
            format!("{} tangents for {} primals", tangents.len(), primals.len()),
        ));
    }
    let tangents = check_cotangents("jvp", primals, tangents)?;
    let xs: Vec<Array> = primals.iter().map(marker).collect();
    let ys = f(&xs)?;
    let us: Vec<Array> = ys
        .iter()
        .map(|y| Ok(marker(&crate::zeros_like(y)?)))
        .collect::<Result<_>>()?;
    let gx = backward(&ys, &us, &xs)?;
    let jv = backward(&gx, &tangents, &us)?;
    Ok((ys, jv))
}

fn scalar_output(op: &str, y: &Array) -> Result<()> {
    if y.size() != 1 || !y.dtype().is_float() {
        return Err(Error::invalid(
            op,
            format!(
                "the function must return a real scalar to differentiate, got shape {} dtype {}",
                fmt_shape(y.shape()),
                y.dtype()
            ),
        ));
    }
    Ok(())
}

fn check_argnums(op: &str, argnums: &[usize], n: usize) -> Result<()> {
    if let Some(&bad) = argnums.iter().find(|&&i| i >= n) {
        return Err(Error::invalid(
            op,
            format!("argnum {bad} out of range for {n} arguments"),
        ));
    }
    Ok(())
}

/// `f(args)` and its gradients with respect to `args[i]` for each `i` in `argnums`. `f`
/// must return a real scalar.
pub fn value_and_grad<F>(
    f: F,
    argnums: &[usize],
) -> impl Fn(&[Array]) -> Result<(Array, Vec<Array>)>
where
    F: Fn(&[Array]) -> Result<Array>,
{
    // Arrays are trees of one leaf each: one implementation serves both.
    let vg = value_and_grad_tree(
        move |t: &[Tree]| {
            let args: Vec<Array> = t
                .iter()
                .map(|t| t.array().cloned())
                .collect::<Result<_>>()?;
            f(&args)
        },
        argnums,
    );
    move |args: &[Array]| {
        let trees: Vec<Tree> = args.iter().map(Tree::from).collect();
        let (y, gs) = vg(&trees)?;
        let gs = gs
            .iter()
            .map(|t| t.array().cloned())
            .collect::<Result<_>>()?;
        Ok((y, gs))
    }
}

/// The gradients of a real scalar function with respect to `args[i]`, `i` in `argnums`.
pub fn grad<F>(f: F, argnums: &[usize]) -> impl Fn(&[Array]) -> Result<Vec<Array>>
where
    F: Fn(&[Array]) -> Result<Array>,
{
    let vg = value_and_grad(f, argnums);
    move |args: &[Array]| Ok(vg(args)?.1)
}

/// [`value_and_grad`] over parameter trees: gradients come back with the structure of the
/// differentiated arguments.
pub fn value_and_grad_tree<F>(
    f: F,
    argnums: &[usize],
) -> impl Fn(&[Tree]) -> Result<(Array, Vec<Tree>)>
where
    F: Fn(&[Tree]) -> Result<Array>,
{
    let argnums = argnums.to_vec();
    move |args: &[Tree]| {
        check_argnums("value_and_grad", &argnums, args.len())?;
        let _keep = RetainGraph::new();
        let mut call: Vec<Tree> = args.to_vec();
        let mut xs: Vec<Array> = Vec::new();
        for &i in &argnums {
            let leaves: Vec<Array> = args[i].leaves().iter().map(marker).collect();
            call[i] = args[i].with_leaves(&leaves)?;
            xs.extend(leaves);
        }
        let y = f(&call)?;
        scalar_output("value_and_grad", &y)?;
        let seed = crate::ones_like(&y)?;
        let gs = backward(std::slice::from_ref(&y), &[seed], &xs)?;
        let mut out = Vec::with_capacity(argnums.len());
        let mut at = 0;
        for &i in &argnums {
            let n = args[i].leaves().len();
            out.push(args[i].with_leaves(&gs[at..at + n])?);
            at += n;
        }
        Ok((y, out))
    }
}

/// [`grad`] over parameter trees.
pub fn grad_tree<F>(f: F, argnums: &[usize]) -> impl Fn(&[Tree]) -> Result<Vec<Tree>>
where
    F: Fn(&[Tree]) -> Result<Array>,
{
    let vg = value_and_grad_tree(f, argnums);
    move |args: &[Tree]| Ok(vg(args)?.1)
}

/// The cotangent of each output, zeros where none reached it (for rules that take all).
pub(crate) fn zero_filled(cts: &[Option<Array>], outs: &[Array]) -> Result<Vec<Array>> {
    cts.iter()
        .zip(outs)
        .map(|(c, o)| match c {
            Some(c) => Ok(c.clone()),
            None => crate::zeros_like(o),
        })
        .collect()
}

static CUSTOM_ID: AtomicU64 = AtomicU64::new(0);

/// Wraps the outputs `ys` of a function of `xs` in a node that carries `rule`.
fn wrap_custom(name: &str, xs: &[Array], ys: Vec<Array>, rule: VjpRule) -> Vec<Array> {
    let mut inputs = xs.to_vec();
    let outs = ys.iter().map(|y| (y.shape().to_vec(), y.dtype())).collect();
    inputs.extend(ys);
    Array::from_op_with_rule(
        Op::Custom {
            name: name.to_string(),
            id: CUSTOM_ID.fetch_add(1, Ordering::Relaxed),
            n_in: xs.len(),
        },
        inputs,
        outs,
        Some(rule),
    )
}

/// `f` with a user-provided backward rule: `rule(inputs, outputs, cotangents)` returns one
/// cotangent per input (`None` for no gradient). Differentiating the result uses the rule,
/// not the ops inside `f`.
pub fn custom_vjp<F, R>(f: F, rule: R) -> impl Fn(&[Array]) -> Result<Vec<Array>>
where
    F: Fn(&[Array]) -> Result<Vec<Array>>,
    R: Fn(&[Array], &[Array], &[Array]) -> Result<Vec<Option<Array>>> + Send + Sync + 'static,
{
    let rule: VjpRule = Arc::new(rule);
    move |xs: &[Array]| {
        let ys = f(xs)?;
        Ok(wrap_custom("custom_vjp", xs, ys, rule.clone()))
    }
}

/// `inputs` again, through a node that also takes `cts` (JAX's optimization barrier): the
/// recomputation built on them is new to compile's common-subexpression pass, which would
/// otherwise merge it with the forward ops and keep their activations alive after all, and it
/// cannot run before the backward pass reaches it. Gradients pass through to `inputs`.
fn remat_barrier(inputs: &[Array], cts: &[Array]) -> Vec<Array> {
    let n_cts = cts.len();
    let rule: VjpRule = Arc::new(move |_ins: &[Array], _outs: &[Array], out_cts: &[Array]| {
        let mut g: Vec<Option<Array>> = vec![None; n_cts];
        g.extend(out_cts.iter().cloned().map(Some));
        Ok(g)
    });
    let mut args = cts.to_vec();
    args.extend_from_slice(inputs);
    wrap_custom("remat_barrier", &args, inputs.to_vec(), rule)
}

/// `f` whose activations are not kept for the backward pass: differentiating it runs `f`
/// again from its inputs (trading compute for memory, as in JAX's `checkpoint`).
pub fn checkpoint<F>(f: F) -> impl Fn(&[Array]) -> Result<Vec<Array>>
where
    F: Fn(&[Array]) -> Result<Vec<Array>> + Send + Sync + 'static,
{
    let f = Arc::new(f);
    move |xs: &[Array]| {
        let ys = {
            let g = f.clone();
            g(xs)?
        };
        let g = f.clone();
        let rule: VjpRule = Arc::new(move |inputs: &[Array], _outs: &[Array], cts: &[Array]| {
            let g = g.clone();
            let (_, grads) = vjp(|x| g(x), &remat_barrier(inputs, cts), cts)?;
            Ok(grads.into_iter().map(Some).collect())
        });
        Ok(wrap_custom("checkpoint", xs, ys, rule))
    }
}
