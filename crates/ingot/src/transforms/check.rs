//! Checking one op application read from an untrusted program (an imported package).
//!
//! A kernel trusts its node: the public op that built it already checked axes, shapes and
//! dtypes. So an application is accepted only when the public op, called with the same
//! parameters on inputs of the same shapes and dtypes, builds exactly this node: the same
//! `Op` on exactly those inputs. The outputs it declares are then the ones the kernel
//! expects. Placeholders stand for the inputs and nothing is evaluated. Three ops have no
//! public op that builds them as they are and are checked directly: `Arange` (its length
//! comes from the node), `Concatenate` (also made by other ops as a copy) and `Fused` (made
//! by `compile`). `Custom` is refused: its rule is Rust code that no package holds.

use crate::array::Array;
use crate::op::{ArgReduceKind, BinaryOp, FftKind, Op, PoolKind, ReduceKind, ScanKind, UnaryOp};
use crate::ops::view::SliceArg;
use crate::shape::{checked_size, fmt_shape};
use crate::{DType, Error, Result};

/// A shape and dtype.
pub type Sig = (Vec<usize>, DType);

fn fmt_sigs(s: &[Sig]) -> String {
    let parts: Vec<String> = s
        .iter()
        .map(|(sh, d)| format!("{} {d}", fmt_shape(sh)))
        .collect();
    format!("[{}]", parts.join(", "))
}

/// The outputs (shape and dtype) that `op` makes from inputs of `inputs`' shapes and dtypes,
/// as the public op that builds it says, or an error when the op is malformed for them (wrong
/// arity, axis out of range, a perm that is no permutation, a window outside the input,
/// a dtype the kernel does not take...). `declared` is what the program says the outputs
/// are; it is read only for the parameters an op takes from its node (reshape and broadcast
/// targets, slice lengths, arange length, random_bits shape, FFT sizes). An entry is `None`
/// for an output of a multi-output op whose shape the public op does not expose (an unused
/// sibling): such a value must not be read.
pub fn infer(op: &Op, inputs: &[Sig], declared: &[Sig]) -> Result<Vec<Option<Sig>>> {
    // The program's dtypes are its own: an import under autocast must not re-decide them.
    crate::amp::with(None, || infer_inner(op, inputs, declared))
}

fn infer_inner(op: &Op, inputs: &[Sig], declared: &[Sig]) -> Result<Vec<Option<Sig>>> {
    let fail = |why: String| {
        Error::invalid(
            "import",
            format!(
                "{} on inputs {} declaring outputs {}: {why}",
                op.name(),
                fmt_sigs(inputs),
                fmt_sigs(declared)
            ),
        )
    };
    for (s, d) in inputs.iter().chain(declared) {
        let n = checked_size("import", s).map_err(|e| fail(e.to_string()))?;
        if n.checked_mul(d.size())
            .is_none_or(|b| b > isize::MAX as usize)
        {
            return Err(fail(format!(
                "{} of {d} does not fit in memory",
                fmt_shape(s)
            )));
        }
    }
    match op {
        Op::Arange { .. } => {
            if !inputs.is_empty() || declared.len() != 1 || declared[0].0.len() != 1 {
                return Err(fail(
                    "arange takes no inputs and makes one 1-d output".into(),
                ));
            }
            Ok(vec![Some(declared[0].clone())])
        }
        Op::Fused { program } => {
            program
                .validate(inputs.len())
                .map_err(|e| fail(e.to_string()))?;
            let Some((shape, dtype)) = declared.first() else {
                return Err(fail("no outputs".into()));
            };
            if declared.len() != program.outputs.len() {
                return Err(fail(format!(
                    "the program has {} outputs",
                    program.outputs.len()
                )));
            }
            if !matches!(dtype, DType::F32 | DType::F64) {
                return Err(fail("fused programs run in float32 or float64".into()));
            }
            if declared.iter().any(|o| o != &declared[0]) {
                return Err(fail("all outputs must share one shape and dtype".into()));
            }
            for (s, d) in inputs {
                let fits =
                    s.len() == shape.len() && s.iter().zip(shape).all(|(&a, &b)| a == b || a == 1);
                if d != dtype || !fits {
                    return Err(fail(format!(
                        "input {} {d} does not broadcast to the output",
                        fmt_shape(s)
                    )));
                }
            }
            Ok(declared.iter().cloned().map(Some).collect())
        }
        // The public op leaves empty inputs out of the node and returns a lone input as it
        // is, while other ops build one-input concatenates as fast copies: checked here.
        Op::Concatenate { axis } => {
            let ([(shape, dtype)], Some((first, _))) = (declared, inputs.first()) else {
                return Err(fail("takes at least one input and makes one output".into()));
            };
            let (ax, nd) = (*axis, shape.len());
            if ax >= nd || first.len() != nd {
                return Err(fail(format!("axis {ax} is out of range for rank {nd}")));
            }
            let mut total = 0usize;
            for (s, d) in inputs {
                let same = s.len() == nd && (0..nd).all(|i| i == ax || s[i] == shape[i]);
                if d != dtype || !same {
                    return Err(fail(format!(
                        "input {} {d} does not match the output but on axis {ax}",
                        fmt_shape(s)
                    )));
                }
                total = total.saturating_add(s[ax]);
            }
            let empty = |s: &[usize]| s.contains(&0);
            let ok = if empty(shape) {
                inputs.iter().all(|(s, _)| empty(s))
            } else {
                total == shape[ax]
            };
            if !ok {
                return Err(fail(format!(
                    "the inputs' lengths on axis {ax} do not add up to the output's"
                )));
            }
            Ok(vec![Some(declared[0].clone())])
        }
        Op::Attention { mask, .. } => crate::ops::fast::attention_out(inputs, *mask)
            .map(|o| vec![Some(o)])
            .map_err(|e| fail(e.to_string())),
        Op::AttentionGrad { mask, .. } => crate::ops::fast::attention_grad_out(inputs, *mask)
            .map(|o| o.into_iter().map(Some).collect())
            .map_err(|e| fail(e.to_string())),
        Op::RmsNorm { .. } | Op::LayerNorm { .. } | Op::Rope { .. } => {
            crate::ops::fast::fast_out(op, inputs)
                .map(|o| vec![Some(o)])
                .map_err(|e| fail(e.to_string()))
        }
        Op::CrossEntropy | Op::CrossEntropyGrad => crate::ops::fast::ce_out(op, inputs)
            .map(|o| vec![Some(o)])
            .map_err(|e| fail(e.to_string())),
        Op::Linear { .. } => crate::ops::fast::linear_out(op, inputs)
            .map(|o| vec![Some(o)])
            .map_err(|e| fail(e.to_string())),
        Op::Custom { name, .. } => Err(fail(format!(
            "custom op '{name}' carries Rust code and cannot be imported"
        ))),
        // A collective names a group of this run's processes, which a package cannot hold.
        Op::Collective { .. } => Err(fail(format!(
            "`{}` is a collective across processes and cannot be imported",
            op.name()
        ))),
        // A user kernel imports when this process defines one of its name; its outputs
        // come from the definition.
        Op::Kernel { name, params } => {
            let params: Vec<f64> = params.iter().map(|p| p.to_f64()).collect();
            let outs =
                crate::custom::specs_for(name, &params, inputs).map_err(|e| fail(e.to_string()))?;
            Ok(outs.into_iter().map(Some).collect())
        }
        _ => {
            let xs: Vec<Array> = inputs
                .iter()
                .map(|(s, d)| crate::zeros(s, *d))
                .collect::<Result<_>>()
                .map_err(|e| fail(e.to_string()))?;
            let ys = build(op, &xs, declared).map_err(|e| fail(e.to_string()))?;
            find(&ys, op, &xs)
                .ok_or_else(|| fail("no public op builds this node from these inputs".into()))
        }
    }
}

fn need(op: &Op, xs: &[Array], n: usize) -> Result<()> {
    if xs.len() != n {
        return Err(Error::invalid(
            op.name(),
            format!("takes {n} inputs, got {}", xs.len()),
        ));
    }
    Ok(())
}

fn isz(v: &[usize]) -> Result<Vec<isize>> {
    v.iter()
        .map(|&a| isize::try_from(a).map_err(|_| Error::invalid("import", "axis out of range")))
        .collect()
}

fn one(v: usize) -> Result<isize> {
    Ok(isz(&[v])?[0])
}

/// The declared output shape for ops whose node carries it.
fn target<'a>(op: &Op, declared: &'a [Sig]) -> Result<&'a [usize]> {
    match declared {
        [(s, _)] => Ok(s),
        _ => Err(Error::invalid(
            op.name(),
            format!("makes one output, {} declared", declared.len()),
        )),
    }
}

/// Python-style slice arguments for a window of `len` elements from `start` by `step`.
fn window(op: &Op, start: &[usize], step: &[isize], lens: &[usize]) -> Result<Vec<SliceArg>> {
    if start.len() != lens.len() || step.len() != lens.len() {
        return Err(Error::invalid(
            op.name(),
            format!("start and step need {} entries", lens.len()),
        ));
    }
    let mut args = Vec::with_capacity(lens.len());
    for ((&s, &st), &n) in start.iter().zip(step).zip(lens) {
        let s = one(s)?;
        let n = one(n)?;
        let stop = n
            .checked_mul(st)
            .and_then(|d| s.checked_add(d))
            .ok_or_else(|| Error::invalid(op.name(), "window overflows"))?;
        // A negative stop would count from the end: "no stop" reaches index 0 exactly.
        let stop = if stop < 0 { None } else { Some(stop) };
        args.push(SliceArg::new(Some(s), stop, st));
    }
    Ok(args)
}

/// The public call that builds `op` on `xs`.
fn build(op: &Op, xs: &[Array], declared: &[Sig]) -> Result<Vec<Array>> {
    use crate::ops::*;
    let a = xs.first();
    let x0 = || a.ok_or_else(|| Error::invalid(op.name(), "takes at least one input"));
    let y = match op {
        Op::Unary(u) => {
            need(op, xs, 1)?;
            let a = x0()?;
            use UnaryOp::*;
            match u {
                Abs => abs(a),
                Negative => negative(a),
                Sign => sign(a),
                Exp => exp(a),
                Expm1 => expm1(a),
                Log => log(a),
                Log1p => log1p(a),
                Log2 => log2(a),
                Log10 => log10(a),
                Sqrt => sqrt(a),
                Rsqrt => rsqrt(a),
                Square => square(a),
                Reciprocal => reciprocal(a),
                Sin => sin(a),
                Cos => cos(a),
                Tan => tan(a),
                Arcsin => arcsin(a),
                Arccos => arccos(a),
                Arctan => arctan(a),
                Sinh => sinh(a),
                Cosh => cosh(a),
                Tanh => tanh(a),
                Arcsinh => arcsinh(a),
                Arccosh => arccosh(a),
                Arctanh => arctanh(a),
                Erf => erf(a),
                Erfinv => erfinv(a),
                Floor => floor(a),
                Ceil => ceil(a),
                Round { decimals } => round(a, *decimals),
                Sigmoid => sigmoid(a),
                Gelu => gelu(a),
                GeluTanh => gelu_tanh(a),
                LogicalNot => logical_not(a),
                BitwiseInvert => bitwise_invert(a),
                IsNan => isnan(a),
                IsInf => isinf(a),
                IsFinite => isfinite(a),
                SignBit => signbit(a),
                Real => real(a),
                Imag => imag(a),
                Conj => conj(a),
                Angle => angle(a),
                StopGradient => stop_gradient(a),
            }?
        }
        Op::Binary(b) => {
            need(op, xs, 2)?;
            let (x, y) = (xs[0].clone(), xs[1].clone());
            use BinaryOp::*;
            match b {
                Add => add(x, y),
                Subtract => subtract(x, y),
                Multiply => multiply(x, y),
                Divide => divide(x, y),
                FloorDivide => floor_divide(x, y),
                Remainder => remainder(x, y),
                Power => power(x, y),
                Maximum => maximum(x, y),
                Minimum => minimum(x, y),
                Arctan2 => arctan2(x, y),
                LogAddExp => logaddexp(x, y),
                GeluGrad => gelu_grad(x, y),
                GeluTanhGrad => gelu_tanh_grad(x, y),
                Equal => equal(x, y),
                NotEqual => not_equal(x, y),
                Less => less(x, y),
                LessEqual => less_equal(x, y),
                Greater => greater(x, y),
                GreaterEqual => greater_equal(x, y),
                LogicalAnd => logical_and(x, y),
                LogicalOr => logical_or(x, y),
                LogicalXor => logical_xor(x, y),
                BitwiseAnd => bitwise_and(x, y),
                BitwiseOr => bitwise_or(x, y),
                BitwiseXor => bitwise_xor(x, y),
                LeftShift => left_shift(x, y),
                RightShift => right_shift(x, y),
            }?
        }
        Op::Select => {
            need(op, xs, 3)?;
            where_(xs[0].clone(), xs[1].clone(), xs[2].clone())?
        }
        Op::AsType(d) => {
            need(op, xs, 1)?;
            astype(x0()?, *d)?
        }
        Op::Reshape => {
            need(op, xs, 1)?;
            reshape_to(x0()?, target(op, declared)?)?
        }
        Op::Transpose { perm } => {
            need(op, xs, 1)?;
            transpose(x0()?, Some(&isz(perm)?[..]))?
        }
        Op::Slice { start, step } => {
            need(op, xs, 1)?;
            slice(x0()?, &window(op, start, step, target(op, declared)?)?)?
        }
        Op::Broadcast => {
            need(op, xs, 1)?;
            broadcast_to(x0()?, target(op, declared)?)?
        }
        Op::Diagonal {
            offset,
            axis1,
            axis2,
        } => {
            need(op, xs, 1)?;
            diagonal(x0()?, *offset, one(*axis1)?, one(*axis2)?)?
        }
        Op::ViewDtype(d) => {
            need(op, xs, 1)?;
            view(x0()?, *d)?
        }
        Op::Copy => {
            need(op, xs, 1)?;
            copy(x0()?)?
        }
        Op::Reduce { kind, axes } => {
            need(op, xs, 1)?;
            let (a, ax) = (x0()?, isz(axes)?);
            let ax = Some(&ax[..]);
            match kind {
                ReduceKind::Sum => sum(a, ax, true),
                ReduceKind::Prod => prod(a, ax, true),
                ReduceKind::Min => min(a, ax, true),
                ReduceKind::Max => max(a, ax, true),
                ReduceKind::All => all(a, ax, true),
                ReduceKind::Any => any(a, ax, true),
            }?
        }
        Op::ArgReduce { kind, axis } => {
            need(op, xs, 1)?;
            let ax = Some(one(*axis)?);
            match kind {
                ArgReduceKind::ArgMin => argmin(x0()?, ax, true),
                ArgReduceKind::ArgMax => argmax(x0()?, ax, true),
            }?
        }
        Op::Scan {
            kind,
            axis,
            reverse,
            inclusive,
        } => {
            need(op, xs, 1)?;
            let (a, ax, r, i) = (x0()?, Some(one(*axis)?), *reverse, *inclusive);
            match kind {
                ScanKind::Sum => cumsum(a, ax, r, i),
                ScanKind::Prod => cumprod(a, ax, r, i),
                ScanKind::Max => cummax(a, ax, r, i),
                ScanKind::Min => cummin(a, ax, r, i),
                ScanKind::LogAddExp => logcumsumexp(a, ax, r, i),
            }?
        }
        Op::Pad {
            low,
            high,
            mode,
            value,
        } => {
            need(op, xs, 1)?;
            if low.len() != high.len() {
                return Err(Error::invalid("pad", "low and high differ in length"));
            }
            let pairs: Vec<(usize, usize)> =
                low.iter().copied().zip(high.iter().copied()).collect();
            pad(x0()?, &pairs, *mode, *value)?
        }
        Op::Take { axis } => {
            need(op, xs, 2)?;
            take(&xs[0], &xs[1], Some(one(*axis)?))?
        }
        Op::TakeAlongAxis { axis } => {
            need(op, xs, 2)?;
            take_along_axis(&xs[0], &xs[1], Some(one(*axis)?))?
        }
        Op::PutAlongAxis { axis, kind } => {
            need(op, xs, 3)?;
            put_along_axis_kind(&xs[0], &xs[1], xs[2].clone(), Some(one(*axis)?), *kind)?
        }
        Op::Gather { axes, slice_sizes } => {
            x0()?;
            gather(&xs[0], &xs[1..], &isz(axes)?, slice_sizes)?
        }
        Op::Scatter { axes, kind } => {
            if xs.len() < 2 {
                return Err(Error::invalid("scatter", "takes at least 2 inputs"));
            }
            let n = xs.len();
            scatter_kind(&xs[0], &xs[1..n - 1], &xs[n - 1], &isz(axes)?, *kind)?
        }
        Op::SliceUpdate { start, step, kind } => {
            need(op, xs, 2)?;
            let args = window(op, start, step, xs[1].shape())?;
            slice_update_kind(&xs[0], xs[1].clone(), &args, *kind)?
        }
        Op::Sort { axis } => {
            need(op, xs, 1)?;
            sort(x0()?, Some(one(*axis)?))?
        }
        Op::ArgSort { axis } => {
            need(op, xs, 1)?;
            argsort(x0()?, Some(one(*axis)?))?
        }
        Op::Partition { kth, axis } => {
            need(op, xs, 1)?;
            partition(x0()?, one(*kth)?, Some(one(*axis)?))?
        }
        Op::ArgPartition { kth, axis } => {
            need(op, xs, 1)?;
            argpartition(x0()?, one(*kth)?, Some(one(*axis)?))?
        }
        Op::SearchSorted { right } => {
            need(op, xs, 2)?;
            searchsorted(&xs[0], xs[1].clone(), *right)?
        }
        Op::Matmul => {
            need(op, xs, 2)?;
            matmul(&xs[0], &xs[1])?
        }
        Op::Cholesky { upper } => {
            need(op, xs, 1)?;
            cholesky(x0()?, *upper)?
        }
        Op::Inv => {
            need(op, xs, 1)?;
            inv(x0()?)?
        }
        Op::LuFactor => {
            need(op, xs, 1)?;
            return if declared.len() == 3 {
                let (p, l, u) = lu(x0()?)?;
                Ok(vec![p, l, u])
            } else {
                let (lu, piv) = lu_factor(x0()?)?;
                Ok(vec![lu, piv])
            };
        }
        Op::Qr => {
            need(op, xs, 1)?;
            let (q, r) = qr(x0()?)?;
            return Ok(vec![q, r]);
        }
        Op::Svd {
            compute_uv,
            full_matrices,
        } => {
            need(op, xs, 1)?;
            return svd(x0()?, *full_matrices, *compute_uv);
        }
        Op::Eigh { upper } => {
            need(op, xs, 1)?;
            let (w, v) = eigh(x0()?, *upper)?;
            return Ok(vec![w, v]);
        }
        Op::SolveTriangular {
            upper,
            unit_diagonal,
            left,
        } => {
            need(op, xs, 2)?;
            solve_triangular(&xs[0], &xs[1], *upper, *unit_diagonal, *left)?
        }
        Op::Solve => {
            need(op, xs, 2)?;
            solve(&xs[0], &xs[1])?
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
            need(op, xs, 2)?;
            if padding_lo.len() != padding_hi.len() {
                return Err(Error::invalid(
                    "conv",
                    "padding_lo and padding_hi differ in length",
                ));
            }
            let pairs: Vec<(usize, usize)> = padding_lo
                .iter()
                .copied()
                .zip(padding_hi.iter().copied())
                .collect();
            conv_general(
                &xs[0],
                &xs[1],
                stride,
                Padding::Pairs(pairs),
                kernel_dilation,
                input_dilation,
                *groups,
                *flip,
            )?
        }
        Op::Pool {
            kind,
            window,
            stride,
            padding,
            count_pad,
        } => {
            need(op, xs, 1)?;
            let nd = window.len();
            if stride.len() != nd || padding.len() != nd {
                return Err(Error::invalid(
                    "pool",
                    "window, stride and padding differ in length",
                ));
            }
            let (a, s) = (x0()?, Some(&stride[..]));
            match (kind, nd) {
                (PoolKind::Max, 1) => max_pool1d(a, window[0], Some(stride[0]), padding[0]),
                (PoolKind::Max, 2) => max_pool2d(a, window, s, padding),
                (PoolKind::Max, 3) => max_pool3d(a, window, s, padding),
                (PoolKind::Avg, 1) => {
                    avg_pool1d(a, window[0], Some(stride[0]), padding[0], *count_pad)
                }
                (PoolKind::Avg, 2) => avg_pool2d(a, window, s, padding, *count_pad),
                (PoolKind::Avg, 3) => avg_pool3d(a, window, s, padding, *count_pad),
                _ => Err(Error::invalid("pool", format!("{nd} spatial dims"))),
            }?
        }
        Op::Fft { axes, kind } => {
            need(op, xs, 1)?;
            let a = x0()?;
            let sizes = |shape: &[usize]| -> Result<Vec<usize>> {
                axes.iter()
                    .map(|&i| {
                        shape
                            .get(i)
                            .copied()
                            .ok_or_else(|| Error::invalid("fft", format!("axis {i} out of range")))
                    })
                    .collect()
            };
            let ax = isz(axes)?;
            let (ax, norm) = (Some(&ax[..]), FftNorm::Backward);
            match kind {
                FftKind::Forward => fftn(a, Some(&sizes(target(op, declared)?)?[..]), ax, norm),
                FftKind::Inverse => ifftn(a, Some(&sizes(target(op, declared)?)?[..]), ax, norm),
                FftKind::RealForward => rfftn(a, Some(&sizes(a.shape())?[..]), ax, norm),
                FftKind::RealInverse => {
                    irfftn(a, Some(&sizes(target(op, declared)?)?[..]), ax, norm)
                }
            }?
        }
        Op::Softmax { axis, log } => {
            need(op, xs, 1)?;
            if *log {
                log_softmax(x0()?, one(*axis)?)?
            } else {
                softmax(x0()?, one(*axis)?)?
            }
        }
        Op::GridSample {
            mode,
            padding,
            align_corners,
        } => {
            need(op, xs, 2)?;
            grid_sample(&xs[0], &xs[1], *mode, *padding, *align_corners)?
        }
        Op::Hadamard { scale } => {
            need(op, xs, 1)?;
            hadamard_transform(x0()?, Some(scale.to_f64()))?
        }
        Op::RandomBits => {
            need(op, xs, 1)?;
            crate::random::random_bits(x0()?, target(op, declared)?)?
        }
        Op::Arange { .. }
        | Op::Fused { .. }
        | Op::Concatenate { .. }
        | Op::Custom { .. }
        | Op::Collective { .. }
        | Op::Attention { .. }
        | Op::AttentionGrad { .. }
        | Op::RmsNorm { .. }
        | Op::LayerNorm { .. }
        | Op::Rope { .. }
        | Op::CrossEntropy
        | Op::CrossEntropyGrad
        | Op::Linear { .. }
        | Op::Kernel { .. } => return Err(Error::invalid(op.name(), "checked directly")),
    };
    Ok(vec![y])
}

/// The outputs of the node applying `op` to exactly `xs` among what the public op built
/// (it may wrap the node in a reshape or a scale).
fn find(ys: &[Array], op: &Op, xs: &[Array]) -> Option<Vec<Option<Sig>>> {
    let mut stack: Vec<Array> = ys.to_vec();
    let mut visited = 0;
    while let Some(y) = stack.pop() {
        visited += 1;
        if visited > 64 {
            break;
        }
        if xs.iter().any(|x| x.same_node(&y)) {
            continue;
        }
        let Some(r) = y.recipe() else { continue };
        let same_inputs =
            r.inputs.len() == xs.len() && r.inputs.iter().zip(xs).all(|(a, b)| a.same_node(b));
        if r.op == *op && same_inputs {
            return Some(match &r.siblings {
                None => vec![Some((y.shape().to_vec(), y.dtype()))],
                Some(sib) => sib
                    .iter()
                    .map(|w| {
                        w.upgrade().map(|n| {
                            let a = Array(n);
                            (a.shape().to_vec(), a.dtype())
                        })
                    })
                    .collect(),
            });
        }
        stack.extend(r.inputs);
    }
    None
}
