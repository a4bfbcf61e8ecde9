//! `vmap`: run a per-example function over a batch.
//!
//! The function is traced once on one example of each mapped input, then its program is
//! replayed with batched values: every value is either batched (batch axis first) or not,
//! and each op applied to a batched value uses its batching rule below: the same op with
//! shifted parameters, or a batched form built from a few ops (indexing gets a batch index,
//! a batched conv kernel becomes a grouped conv, batched random keys run Threefry as uint32
//! ops). What has no rule (custom_vjp nodes, searchsorted on complex) runs once per example
//! and the results are stacked: slower, but exact for any op. So does `random_bits` with many
//! words per key, where the per-key kernel is the faster form.

use super::trace::{apply, trace, Graph, Source};
use crate::op::{CollectiveKind, Op, RopeOffsetKind};
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
    if b == 0 {
        // An empty batch has empty outputs; no kernel needs to see zero-size operands.
        return out
            .iter()
            .map(|(s, d)| crate::zeros(s, *d))
            .collect::<Result<_>>()
            .map(Some);
    }
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
        | Op::Attention { .. }
        | Op::AttentionGrad { .. }
        | Op::Fused { .. } => same(op.clone()),
        // Elementwise across processes, or along an axis that moves past the batch axis.
        // A send or receive runs once per example (the peer sees the same sequence).
        Op::Collective { kind, ranks, tag } => match kind {
            CollectiveKind::Gather { axis } | CollectiveKind::ScatterSum { axis } => {
                let kind = match kind {
                    CollectiveKind::Gather { .. } => CollectiveKind::Gather { axis: axis + 1 },
                    _ => CollectiveKind::ScatterSum { axis: axis + 1 },
                };
                same(Op::Collective {
                    kind,
                    ranks: ranks.clone(),
                    tag: *tag,
                })
            }
            CollectiveKind::Send { .. } | CollectiveKind::Recv { .. } => Ok(None),
            _ => same(op.clone()),
        },
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
        Op::Conv {
            stride,
            padding_lo,
            padding_hi,
            kernel_dilation,
            input_dilation,
            groups,
            flip,
        } => {
            let with_groups = |g: usize| Op::Conv {
                stride: stride.clone(),
                padding_lo: padding_lo.clone(),
                padding_hi: padding_hi.clone(),
                kernel_dilation: kernel_dilation.clone(),
                input_dilation: input_dilation.clone(),
                groups: g,
                flip: *flip,
            };
            conv_rule(with_groups, *groups, ins, shapes, b).map(Some)
        }
        Op::ViewDtype(_) => same(op.clone()),
        Op::Take { axis } => take_rule(*axis, ins, &out, b).map(Some),
        Op::Gather { axes, slice_sizes } => gather_rule(axes, slice_sizes, ins, &out, b).map(Some),
        Op::Scatter { axes, kind } => scatter_rule(axes, *kind, ins, &out, b).map(Some),
        Op::SearchSorted { right } => searchsorted_rule(*right, ins, &out, b),
        Op::GridSample { .. } => grid_sample_rule(op, ins, shapes, b).map(Some),
        // The norms work over leading dims; a weight or bias per example is not theirs.
        Op::RmsNorm { .. } | Op::LayerNorm { .. } => {
            if ins[0].1 && ins[1..].iter().all(|(_, bt)| !bt) {
                let inputs = ins.iter().map(|(a, _)| a.clone()).collect();
                Ok(Some(apply(op, inputs, &out, None)))
            } else {
                fast_reference_rule(op, ins).map(Some)
            }
        }
        Op::Rope { offset, .. } => rope_rule(op, *offset, ins, &out, b).map(Some),
        // A batch of x alone is more rows of one node; a batched weight or bias is not one
        // product, so it goes to the decomposition (a batched matmul).
        Op::Linear { .. } => {
            if ins[0].1 && ins[1..].iter().all(|(_, bt)| !bt) {
                let x = &ins[0].0;
                let (m, k) = (x.shape()[1], x.shape()[2]);
                let rows = crate::reshape_to(x, &[b * m, k])?;
                let mut inputs = vec![rows];
                inputs.extend(ins[1..].iter().map(|(a, _)| a.clone()));
                let n = ins[1].0.shape()[1];
                let y = apply(op, inputs, &[(vec![b * m, n], out[0].1)], None);
                Ok(Some(vec![crate::reshape_to(&y[0], &[b, m, n])?]))
            } else {
                let axes: Vec<Option<isize>> = ins.iter().map(|(_, bt)| bt.then_some(0)).collect();
                let xs: Vec<Array> = ins.iter().map(|(a, _)| a.clone()).collect();
                let f = |a: &[Array]| Ok(vec![crate::ops::fast::linear_reference_of(op, a)?]);
                vmap(f, &axes, &[Some(0)])(&xs).map(Some)
            }
        }
        // Cross entropy works over leading dims: batch every operand along the same new one.
        Op::CrossEntropy | Op::CrossEntropyGrad => {
            let inputs = ins
                .iter()
                .map(|(a, bt)| if *bt { Ok(a.clone()) } else { batch_of(a, b) })
                .collect::<Result<Vec<_>>>()?;
            Ok(Some(apply(op, inputs, &out, None)))
        }
        // With many words per key, one kernel call per key beats ~120 elementwise passes
        // over the whole batch (measured: 64 keys of 4096 words, loop 3x faster).
        Op::RandomBits if crate::shape::size_of(&shapes[0].0) >= RANDOM_BITS_LOOP_MIN => Ok(None),
        Op::RandomBits => random_bits_rule(&ins[0].0, &shapes[0].0).map(Some),
        // Arange has no inputs; Custom nodes carry a user's rule and never get here.
        _ => Ok(None),
    }
}

/// A fast op's reference decomposition, vmapped: for the batchings its node cannot take.
fn fast_reference_rule(op: &Op, ins: &[(Array, bool)]) -> Result<Vec<Array>> {
    let axes: Vec<Option<isize>> = ins.iter().map(|(_, bt)| bt.then_some(0)).collect();
    let xs: Vec<Array> = ins.iter().map(|(a, _)| a.clone()).collect();
    let f = |a: &[Array]| Ok(vec![crate::ops::fast::reference_of(op, a)?]);
    vmap(f, &axes, &[Some(0)])(&xs)
}

/// rope works over leading dims, and its per-batch offset names x's first axis: a batch
/// of offsets becomes per-batch offsets, and per-batch offsets under a batch fold the two
/// batch axes into one. Batched frequencies go to the decomposition.
fn rope_rule(
    op: &Op,
    offset: RopeOffsetKind,
    ins: &[(Array, bool)],
    out: &[(Vec<usize>, DType)],
    b: usize,
) -> Result<Vec<Array>> {
    let fixed = matches!(offset, RopeOffsetKind::Fixed(_));
    let k = if fixed { 1 } else { 2 };
    if ins.get(k).is_some_and(|(_, bt)| *bt) {
        return fast_reference_rule(op, ins);
    }
    let (x, xb) = &ins[0];
    let x = if *xb { x.clone() } else { batch_of(x, b)? };
    let freqs: Vec<Array> = ins[k..].iter().map(|(a, _)| a.clone()).collect();
    let node = |op: &Op, x: Array, o: Option<Array>, shape: &[usize]| {
        let mut inputs = vec![x];
        inputs.extend(o);
        inputs.extend(freqs.iter().cloned());
        Array::from_op(op.clone(), inputs, shape.to_vec(), out[0].1)
    };
    let y = match offset {
        RopeOffsetKind::Fixed(_) => node(op, x, None, &out[0].0),
        RopeOffsetKind::Scalar if !ins[1].1 => node(op, x, Some(ins[1].0.clone()), &out[0].0),
        RopeOffsetKind::Scalar => {
            let mut per_batch = op.clone();
            if let Op::Rope { offset, .. } = &mut per_batch {
                *offset = RopeOffsetKind::PerBatch;
            }
            node(&per_batch, x, Some(ins[1].0.clone()), &out[0].0)
        }
        RopeOffsetKind::PerBatch => {
            let (o, ob) = &ins[1];
            let o = if *ob { o.clone() } else { batch_of(o, b)? };
            let mut folded = vec![b * x.shape()[1]];
            folded.extend_from_slice(&x.shape()[2..]);
            let xf = crate::reshape_to(&x, &folded)?;
            let of = crate::reshape_to(&o, &[folded[0]])?;
            let y = node(op, xf, Some(of), &folded);
            crate::reshape_to(&y, &out[0].0)?
        }
    };
    Ok(vec![y])
}

/// Words per key from which batched `random_bits` runs the kernel once per key.
const RANDOM_BITS_LOOP_MIN: usize = 512;

/// `0, 1, .., b-1` (int64) shaped `(b, 1, .., 1)` with `ndim` dims: the index that keeps
/// every example of a batched gather or scatter inside its own slice of the batch axis.
fn batch_iota(b: usize, ndim: usize) -> Result<Array> {
    let mut s = vec![1; ndim.max(1)];
    s[0] = b;
    crate::reshape_to(&crate::arange(0.0, b as f64, 1.0, DType::I64)?, &s)
}

fn isize_axes(axes: &[usize], shift: usize) -> Vec<isize> {
    axes.iter().map(|&a| (a + shift) as isize).collect()
}

/// `take(a, idx, axis)`. A batched `a` alone: take along the shifted axis. Batched indices
/// alone: the batch comes out where the indices go, and moves to the front. Both: one
/// gather with an index `0..b` on the batch axis, so each example reads only its own array
/// (whole rows are copied, and bounds stay checked per example).
fn take_rule(
    axis: usize,
    ins: &[(Array, bool)],
    out: &[(Vec<usize>, DType)],
    b: usize,
) -> Result<Vec<Array>> {
    let ((a, ab), (idx, ib)) = (&ins[0], &ins[1]);
    let y = match (ab, ib) {
        (true, false) => crate::take(a, idx, Some(axis as isize + 1))?,
        (false, _) => {
            crate::moveaxis(&crate::take(a, idx, Some(axis as isize))?, axis as isize, 0)?
        }
        (true, true) => {
            let mut ss = a.shape().to_vec();
            ss[0] = 1;
            ss[axis + 1] = 1;
            let ix = [batch_iota(b, idx.ndim())?, idx.clone()];
            let g = crate::gather(a, &ix, &[0, axis as isize + 1], &ss)?;
            // (b, I, 1, A[..axis], 1, A[axis+1..]) -> (b, I, A[..axis], A[axis+1..]), then
            // the index dims move after A[..axis].
            let ni = idx.ndim() - 1;
            let mut s = idx.shape().to_vec();
            s.extend_from_slice(&a.shape()[1..axis + 1]);
            s.extend_from_slice(&a.shape()[axis + 2..]);
            let g = crate::reshape_to(&g, &s)?;
            let mut perm: Vec<isize> = vec![0];
            perm.extend((1 + ni..1 + ni + axis).map(|d| d as isize));
            perm.extend((1..1 + ni).map(|d| d as isize));
            perm.extend((1 + ni + axis..s.len()).map(|d| d as isize));
            let y = crate::transpose(&g, Some(&perm))?;
            debug_assert_eq!(y.shape(), &out[0].0[..]);
            y
        }
    };
    Ok(vec![y])
}

/// MLX-style gather. A batched array with shared indices: every index picks a slice that
/// spans the whole batch, and the batch moves to the front. Batched indices on a shared
/// array: the batch is one more index dim. Both: a batch index on the batch axis (slice
/// size 1) keeps each example inside its own array.
fn gather_rule(
    axes: &[usize],
    slice_sizes: &[usize],
    ins: &[(Array, bool)],
    out: &[(Vec<usize>, DType)],
    b: usize,
) -> Result<Vec<Array>> {
    let (a, ab) = &ins[0];
    let idx = &ins[1..];
    if !idx.iter().any(|(_, bt)| *bt) {
        let ix: Vec<Array> = idx.iter().map(|(i, _)| i.clone()).collect();
        let mut ss = vec![b];
        ss.extend_from_slice(slice_sizes);
        let y = crate::gather(a, &ix, &isize_axes(axes, 1), &ss)?;
        let nb = y.ndim() - ss.len();
        return Ok(vec![crate::moveaxis(&y, nb as isize, 0)?]);
    }
    let ix = all_batched(idx, b)?;
    if !ab {
        return Ok(vec![crate::gather(
            a,
            &ix,
            &isize_axes(axes, 0),
            slice_sizes,
        )?]);
    }
    let mut all = vec![batch_iota(b, ix[0].ndim())?];
    all.extend(ix);
    let mut ax = vec![0];
    ax.extend(isize_axes(axes, 1));
    let mut ss = vec![1];
    ss.extend_from_slice(slice_sizes);
    let y = crate::gather(a, &all, &ax, &ss)?;
    Ok(vec![crate::reshape_to(&y, &out[0].0)?])
}

/// MLX-style scatter, the destination always batched. Shared indices: each index tuple
/// writes a slice spanning the whole batch (updates get the batch just before their slice
/// dims). Batched indices: a batch index on the batch axis, slice size 1. Either way every
/// example sees its own updates in its own order, so repeated indices resolve as in the loop.
fn scatter_rule(
    axes: &[usize],
    kind: crate::op::ScatterKind,
    ins: &[(Array, bool)],
    out: &[(Vec<usize>, DType)],
    b: usize,
) -> Result<Vec<Array>> {
    let k = ins.len() - 2;
    let (a, ab) = &ins[0];
    let (u, ub) = &ins[k + 1];
    let idx = &ins[1..k + 1];
    let a = if *ab { a.clone() } else { batch_of(a, b)? };
    let slice_dims = out[0].0.len() - 1;
    if !idx.iter().any(|(_, bt)| *bt) {
        let ix: Vec<Array> = idx.iter().map(|(i, _)| i.clone()).collect();
        let nb = u.ndim() - usize::from(*ub) - slice_dims;
        let u = if *ub {
            crate::moveaxis(u, 0, nb as isize)?
        } else {
            let mut s = u.shape().to_vec();
            s.insert(nb, b);
            crate::broadcast_to(&crate::expand_dims(u, &[nb as isize])?, &s)?
        };
        let y = crate::scatter_kind(&a, &ix, &u, &isize_axes(axes, 1), kind)?;
        return Ok(vec![y]);
    }
    let ix = all_batched(idx, b)?;
    let nb = ix[0].ndim() - 1;
    let mut all = vec![batch_iota(b, ix[0].ndim())?];
    all.extend(ix);
    let mut ax = vec![0];
    ax.extend(isize_axes(axes, 1));
    let u = if *ub { u.clone() } else { batch_of(u, b)? };
    let u = crate::expand_dims(&u, &[1 + nb as isize])?;
    Ok(vec![crate::scatter_kind(&a, &all, &u, &ax, kind)?])
}

/// `searchsorted(sorted, values)`. Shared sorted array: the same op on the batched values.
/// A batched sorted array: a binary search run by every (example, value) pair at once, one
/// `take_along_axis` per step. On a sorted row it finds the same partition point as the
/// kernel, under the kernel's order (NaN last). Complex values keep the per-example loop
/// (their NumPy order is not a composite of comparisons here).
fn searchsorted_rule(
    right: bool,
    ins: &[(Array, bool)],
    out: &[(Vec<usize>, DType)],
    b: usize,
) -> Result<Option<Vec<Array>>> {
    let ((s, sb), (v, vb)) = (&ins[0], &ins[1]);
    if !sb {
        let y = Array::from_op(
            Op::SearchSorted { right },
            vec![s.clone(), v.clone()],
            out[0].0.clone(),
            DType::I64,
        );
        return Ok(Some(vec![y]));
    }
    if s.dtype().is_complex() {
        return Ok(None);
    }
    let n = s.shape()[1];
    let v = if *vb { v.clone() } else { batch_of(v, b)? };
    let m = v.size() / b;
    if n == 0 || m == 0 {
        return Ok(Some(vec![crate::zeros(&out[0].0, DType::I64)?]));
    }
    // bool orders as 0 < 1: compare as uint8.
    let (s, v) = if s.dtype() == DType::Bool {
        (crate::astype(s, DType::U8)?, crate::astype(&v, DType::U8)?)
    } else {
        (s.clone(), v)
    };
    let v = crate::reshape_to(&v, &[b, m])?;
    // The kernel's predicate on element e is "e before v" (left) or "e not after v" (right)
    // in its total order, NaN last. For a non-NaN v that is plain `<` / `<=` (a NaN e fails
    // both); a NaN v is placed after the row's non-NaN elements (left) or at its end (right),
    // fixed up below.
    let pred = |e: &Array| {
        if right {
            crate::less_equal(e, &v)
        } else {
            crate::less(e, &v)
        }
    };
    // Binary search by descending powers of two: pos only moves past elements that satisfy
    // the predicate, and the steps add up to any count in 0..=n.
    let mut pos = crate::zeros(&[b, m], DType::I64)?;
    let last = Array::scalar::<i64>(n as i64 - 1);
    let mut step = 1usize << (usize::BITS - 1 - n.leading_zeros());
    while step > 0 {
        let probe = crate::minimum(
            crate::add(&pos, Array::scalar::<i64>(step as i64 - 1))?,
            &last,
        )?;
        let e = crate::take_along_axis(&s, &probe, Some(1))?;
        let fits = crate::less_equal(&pos, Array::scalar::<i64>((n - step) as i64))?;
        let go = crate::logical_and(&fits, pred(&e)?)?;
        pos = crate::where_(
            &go,
            crate::add(&pos, Array::scalar::<i64>(step as i64))?,
            &pos,
        )?;
        step /= 2;
    }
    if s.dtype().is_inexact() {
        let at_nan = if right {
            Array::scalar::<i64>(n as i64)
        } else {
            let real = crate::logical_not(&crate::isnan(&s)?)?;
            crate::sum(&crate::astype(&real, DType::I64)?, Some(&[1]), true)?
        };
        pos = crate::where_(&crate::isnan(&v)?, &at_nan, &pos)?;
    }
    Ok(Some(vec![crate::reshape_to(&pos, &out[0].0)?]))
}

/// `grid_sample` of x (N, H, W, C) at grid (N, Ho, Wo, 2). Every output pixel reads only its
/// own grid point, and every channel is sampled alike, so a batched image alone folds the
/// batch into channels, a batched grid alone into the output rows, and both into N.
fn grid_sample_rule(
    op: &Op,
    ins: &[(Array, bool)],
    shapes: &[(Vec<usize>, DType)],
    b: usize,
) -> Result<Vec<Array>> {
    let ((x, xb), (g, gb)) = (&ins[0], &ins[1]);
    let [n, ho, wo, c] = shapes[0].0[..] else {
        return Err(Error::invalid(
            "vmap",
            "internal: grid_sample output is not 4-D",
        ));
    };
    let dt = shapes[0].1;
    let node = |x: Array, g: Array, s: Vec<usize>| Array::from_op(op.clone(), vec![x, g], s, dt);
    let y = match (xb, gb) {
        (true, false) => {
            let (h, w) = (x.shape()[2], x.shape()[3]);
            let xf = crate::reshape_to(&crate::moveaxis(x, 0, 3)?, &[n, h, w, b * c])?;
            let y = node(xf, g.clone(), vec![n, ho, wo, b * c]);
            crate::moveaxis(&crate::reshape_to(&y, &[n, ho, wo, b, c])?, 3, 0)?
        }
        (false, true) => {
            let gf = crate::reshape_to(&crate::moveaxis(g, 0, 1)?, &[n, b * ho, wo, 2])?;
            let y = node(x.clone(), gf, vec![n, b * ho, wo, c]);
            crate::moveaxis(&crate::reshape_to(&y, &[n, b, ho, wo, c])?, 1, 0)?
        }
        _ => {
            let mut xs = x.shape()[1..].to_vec();
            xs[0] *= b;
            let mut gs = g.shape()[1..].to_vec();
            gs[0] *= b;
            let y = node(
                crate::reshape_to(x, &xs)?,
                crate::reshape_to(g, &gs)?,
                vec![b * n, ho, wo, c],
            );
            crate::reshape_to(&y, &[b, n, ho, wo, c])?
        }
    };
    Ok(vec![y])
}

/// `conv` with a batched kernel, as JAX does it: the batch joins the channels and each
/// example becomes its own group(s). A shared input keeps its channels and groups: only
/// the kernels' output channels are regrouped (group-major), so no input is copied.
fn conv_rule(
    with_groups: impl Fn(usize) -> Op,
    groups: usize,
    ins: &[(Array, bool)],
    shapes: &[(Vec<usize>, DType)],
    b: usize,
) -> Result<Vec<Array>> {
    let ((x, xb), (w, _)) = (&ins[0], &ins[1]);
    let (o, dt) = (&shapes[0].0, shapes[0].1);
    let nd = o.len() - 2;
    let cout = o[nd + 1];
    let k_rest = &w.shape()[2..]; // (*kernel, C_in / groups)
    let mut lead = o[..nd + 1].to_vec(); // (N, *spatial_out)
    let y = if *xb {
        // x (b, N, *sp, C) -> (N, *sp, b*C); kernel (b*C_out, *k, C_in/g); groups b*g.
        let c = x.shape()[nd + 2];
        let mut xs = x.shape()[1..nd + 2].to_vec();
        xs.push(b * c);
        let xf = crate::reshape_to(&crate::moveaxis(x, 0, nd as isize + 1)?, &xs)?;
        let mut ws = vec![b * cout];
        ws.extend_from_slice(k_rest);
        let wf = crate::reshape_to(w, &ws)?;
        let mut os = lead.clone();
        os.push(b * cout);
        let y = Array::from_op(with_groups(b * groups), vec![xf, wf], os, dt);
        lead.extend([b, cout]);
        crate::moveaxis(&crate::reshape_to(&y, &lead)?, nd as isize + 1, 0)?
    } else {
        // Kernel (b, g, C_out/g, ..) -> (g, b, C_out/g, ..): group j's outputs stay together.
        let per = cout / groups;
        let mut s5 = vec![b, groups, per];
        s5.extend_from_slice(k_rest);
        let w5 = crate::moveaxis(&crate::reshape_to(w, &s5)?, 0, 1)?;
        let mut ws = vec![groups * b * per];
        ws.extend_from_slice(k_rest);
        let wf = crate::reshape_to(&w5, &ws)?;
        let mut os = lead.clone();
        os.push(b * cout);
        let y = Array::from_op(with_groups(groups), vec![x.clone(), wf], os, dt);
        let mut s = lead.clone();
        s.extend([groups, b, per]);
        let y = crate::moveaxis(&crate::reshape_to(&y, &s)?, nd as isize + 2, 0)?;
        let mut s = vec![b];
        s.extend_from_slice(&lead);
        s.push(cout);
        crate::reshape_to(&y, &s)?
    };
    Ok(vec![y])
}

/// Threefry-2x32 on a batch of keys `(b, 2)`, built from uint32 ops with the kernel's
/// counter layout (`random_bits` in backend/cpu/random.rs): counters 0..n padded with a 0
/// to even length, pair i = (i, i + half), first words then second words. Equal bit for
/// bit to one `RandomBits` per key.
fn random_bits_rule(keys: &Array, shape: &[usize]) -> Result<Vec<Array>> {
    let b = keys.shape()[0];
    let n = crate::shape::size_of(shape);
    let mut full = vec![b];
    full.extend_from_slice(shape);
    if n == 0 {
        return Ok(vec![crate::zeros(&full, DType::U32)?]);
    }
    let half = n.div_ceil(2);
    let u = DType::U32;
    let c0 = crate::arange(0.0, half as f64, 1.0, u)?;
    let c1 = crate::arange(half as f64, n as f64, 1.0, u)?;
    let c1 = if n % 2 == 1 {
        crate::concatenate(&[c1, crate::zeros(&[1], u)?], Some(0))?
    } else {
        c1
    };
    let (c0, c1) = (
        crate::reshape_to(&c0, &[1, half])?,
        crate::reshape_to(&c1, &[1, half])?,
    );
    let col = |j: isize| crate::slice_axis(keys, 1, crate::SliceArg::range(j, j + 1));
    let (k0, k1) = (col(0)?, col(1)?);
    let k2 = crate::bitwise_xor(
        crate::bitwise_xor(&k0, &k1)?,
        Array::scalar::<u32>(0x1BD1_1BDA),
    )?;
    let ks = [k0, k1, k2];
    let rotl = |x: &Array, r: u32| -> Result<Array> {
        crate::bitwise_or(
            crate::left_shift(x, Array::scalar::<u32>(r))?,
            crate::right_shift(x, Array::scalar::<u32>(32 - r))?,
        )
    };
    const ROT: [[u32; 4]; 2] = [[13, 15, 26, 6], [17, 29, 16, 24]];
    let mut x0 = crate::add(&c0, &ks[0])?;
    let mut x1 = crate::add(&c1, &ks[1])?;
    for i in 0..5usize {
        for &r in &ROT[i % 2] {
            x0 = crate::add(&x0, &x1)?;
            x1 = crate::bitwise_xor(rotl(&x1, r)?, &x0)?;
        }
        x0 = crate::add(&x0, &ks[(i + 1) % 3])?;
        x1 = crate::add(
            crate::add(&x1, &ks[(i + 2) % 3])?,
            Array::scalar::<u32>(i as u32 + 1),
        )?;
    }
    let words = crate::concatenate(&[x0, x1], Some(1))?;
    let words = crate::slice_axis(&words, 1, crate::SliceArg::range(0, n as isize))?;
    Ok(vec![crate::reshape_to(&words, &full)?])
}
