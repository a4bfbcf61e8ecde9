//! Loss functions with PyTorch's semantics (unless a function says otherwise).
//!
//! The class axis is the **last** axis (channels-last, as ingot's layers): logits are
//! `(..., C)` and class-index targets `(...)`, where PyTorch puts classes on axis 1.
//! Element-wise losses want inputs of the same shape (no silent broadcasting of a
//! mis-shaped target). Half-precision inputs are computed in f32 and the loss is returned in
//! the input's dtype.
//!
//! Values are not inspected (that would force evaluation): probabilities outside [0, 1],
//! negative variances and the like give NaN or meaningless numbers rather than errors;
//! class indices out of range fail when the loss is evaluated.

use ingot::{Array, DType, Error, Result};

/// How per-element losses are combined.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reduction {
    /// The per-element losses.
    None,
    /// Their mean (for weighted or ignoring losses, the mean PyTorch defines there).
    #[default]
    Mean,
    /// Their sum.
    Sum,
}

/// Applies `reduction` to per-element losses.
pub fn reduce(loss: &Array, reduction: Reduction) -> Result<Array> {
    match reduction {
        Reduction::None => Ok(loss.clone()),
        Reduction::Mean => ingot::mean(loss, None, false),
        Reduction::Sum => ingot::sum(loss, None, false),
    }
}

// ---- helpers ------------------------------------------------------------------------------

/// The dtype to compute in for a floating input (f32 for halves) and the dtype to return.
fn float_dtypes(name: &str, what: &str, x: &Array) -> Result<(DType, DType)> {
    let dt = x.dtype();
    if !dt.is_float() {
        return Err(Error::invalid(
            name,
            format!("{what} must be a floating array, got {:?} {dt}", x.shape()),
        ));
    }
    let compute = if matches!(dt, DType::F16 | DType::BF16) {
        DType::F32
    } else {
        dt
    };
    // Inside autocast a loss stays in its f32 compute dtype (as PyTorch's autocast keeps
    // losses in float32); outside, it comes back in the input's dtype.
    let out = if ingot::autocast_dtype().is_some() {
        compute
    } else {
        dt
    };
    Ok((compute, out))
}

fn cast(x: &Array, dt: DType) -> Result<Array> {
    if x.dtype() == dt {
        Ok(x.clone())
    } else {
        ingot::astype(x, dt)
    }
}

/// Casts `x` (any real dtype) to `dt`, refusing complex arrays.
fn cast_real(name: &str, what: &str, x: &Array, dt: DType) -> Result<Array> {
    if x.dtype().is_complex() {
        return Err(Error::invalid(
            name,
            format!("{what} must be real, got {:?} {}", x.shape(), x.dtype()),
        ));
    }
    cast(x, dt)
}

/// `w` (a real weight) broadcast to `like`'s shape, cast to its dtype.
fn weight_like(name: &str, what: &str, w: &Array, like: &Array) -> Result<Array> {
    let w = cast_real(name, what, w, like.dtype())?;
    ingot::broadcast_to(&w, like.shape()).map_err(|_| {
        Error::invalid(
            name,
            format!(
                "{what} {:?} does not broadcast to the input's shape {:?}",
                w.shape(),
                like.shape()
            ),
        )
    })
}

fn same_shape(name: &str, a: (&str, &Array), b: (&str, &Array)) -> Result<()> {
    if a.1.shape() == b.1.shape() {
        Ok(())
    } else {
        Err(Error::invalid(
            name,
            format!(
                "{} {:?} {} and {} {:?} {} must have the same shape",
                a.0,
                a.1.shape(),
                a.1.dtype(),
                b.0,
                b.1.shape(),
                b.1.dtype()
            ),
        ))
    }
}

/// Reduces in the compute dtype, then returns the output dtype.
fn finish(loss: &Array, reduction: Reduction, out: DType) -> Result<Array> {
    cast(&reduce(loss, reduction)?, out)
}

/// An element-wise loss of `input` against a `target` of the same shape.
fn pointwise(
    name: &str,
    input: &Array,
    target: &Array,
    reduction: Reduction,
    f: impl FnOnce(&Array, &Array) -> Result<Array>,
) -> Result<Array> {
    let (c, out) = float_dtypes(name, "input", input)?;
    same_shape(name, ("input", input), ("target", target))?;
    let x = cast(input, c)?;
    let t = cast_real(name, "target", target, c)?;
    finish(&f(&x, &t)?, reduction, out)
}

fn check_nonneg(name: &str, what: &str, v: f64) -> Result<()> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(Error::invalid(
            name,
            format!("{what} must be finite and >= 0, got {v}"),
        ))
    }
}

/// A per-class weight `(C,)` as a float array of `dt`.
fn class_weight(name: &str, w: Option<&Array>, classes: usize, dt: DType) -> Result<Option<Array>> {
    let Some(w) = w else { return Ok(None) };
    if w.shape() != [classes] || w.dtype().is_complex() || w.dtype() == DType::Bool {
        return Err(Error::invalid(
            name,
            format!(
                "weight must be a real ({classes},) array for {classes} classes, got {:?} {}",
                w.shape(),
                w.dtype()
            ),
        ));
    }
    Ok(Some(cast(w, dt)?))
}

/// `log(x)` clamped below at -100 as PyTorch's BCE, NaN kept, with a finite gradient at 0.
fn clamped_log(x: &Array) -> Result<Array> {
    let nonpos = ingot::less_equal(x, 0.0)?;
    let safe = ingot::where_(&nonpos, 1.0, x)?;
    let l = ingot::maximum(&ingot::log(&safe)?, -100.0)?;
    ingot::where_(&nonpos, -100.0, &l)
}

/// `x * log(y)`, 0 where `x == 0` (as `torch.xlogy`).
fn xlogy(x: &Array, y: &Array) -> Result<Array> {
    let zero = ingot::equal(x, 0.0)?;
    let safe = ingot::where_(&zero, 1.0, y)?;
    ingot::where_(&zero, 0.0, &ingot::multiply(x, &ingot::log(&safe)?)?)
}

// ---- classification -----------------------------------------------------------------------

/// Options of [`cross_entropy`], as PyTorch's `CrossEntropyLoss` arguments.
#[derive(Clone, Debug, Default)]
pub struct CrossEntropy {
    /// In [0, 1]: the target becomes `(1 - s) * target + s / C`.
    pub label_smoothing: f64,
    /// Class-index targets equal to this contribute nothing and are left out of the mean.
    /// Only for index targets.
    pub ignore_index: Option<i64>,
    /// A weight per class, `(C,)`.
    pub weight: Option<Array>,
    pub reduction: Reduction,
}

/// The log-probabilities, targets and per-class weights of an index-target loss, checked.
struct IndexTargets {
    /// `(...)`, int64, ignored entries replaced by 0 and negative ones by `C` (out of
    /// bounds, so they fail at evaluation rather than wrap around).
    safe: Array,
    /// `(...)` bool: true where the target counts.
    keep: Array,
}

fn index_targets(
    name: &str,
    logits: &Array,
    targets: &Array,
    ignore_index: Option<i64>,
) -> Result<IndexTargets> {
    let nd = logits.ndim();
    if nd == 0 || targets.shape() != &logits.shape()[..nd - 1] {
        return Err(Error::invalid(
            name,
            format!(
                "class-index targets must have the input's shape without its last (class) axis: input {:?} {}, targets {:?} {}",
                logits.shape(),
                logits.dtype(),
                targets.shape(),
                targets.dtype()
            ),
        ));
    }
    let classes = logits.shape()[nd - 1] as i64;
    let t = ingot::astype(targets, DType::I64)?;
    let keep = match ignore_index {
        Some(i) => ingot::not_equal(&t, i)?,
        None => ingot::full(t.shape(), true, DType::Bool)?,
    };
    let t = ingot::where_(&ingot::less(&t, 0i64)?, classes, &t)?;
    let safe = ingot::where_(&keep, &t, 0i64)?;
    Ok(IndexTargets { safe, keep })
}

fn check_integer_targets(name: &str, logits: &Array, targets: &Array) -> Result<()> {
    let k = targets.dtype().kind();
    if matches!(k, ingot::Kind::Int | ingot::Kind::UInt) {
        Ok(())
    } else {
        Err(Error::invalid(
            name,
            format!(
                "class-index targets must be integers, got {:?} {} (input {:?} {})",
                targets.shape(),
                targets.dtype(),
                logits.shape(),
                logits.dtype()
            ),
        ))
    }
}

/// The weighted negative log-likelihood per element and the mean's denominator terms
/// (`w[y]`, 0 where ignored), from log-probabilities `(..., C)`.
fn nll_parts(logp: &Array, it: &IndexTargets, weight: Option<&Array>) -> Result<(Array, Array)> {
    let idx = ingot::expand_dims(&it.safe, &[-1])?;
    let picked = ingot::squeeze(&ingot::take_along_axis(logp, &idx, Some(-1))?, Some(&[-1]))?;
    let keep = ingot::astype(&it.keep, logp.dtype())?;
    let w = match weight {
        Some(w) => ingot::multiply(&ingot::take(w, &it.safe, Some(0))?, &keep)?,
        None => keep,
    };
    Ok((ingot::negative(&ingot::multiply(&picked, &w)?)?, w))
}

/// Mean as PyTorch's weighted losses: `sum(loss) / sum(weights)`.
fn weighted_reduce(loss: &Array, w: &Array, reduction: Reduction) -> Result<Array> {
    match reduction {
        Reduction::Mean => ingot::divide(
            &ingot::sum(loss, None, false)?,
            &ingot::sum(w, None, false)?,
        ),
        r => reduce(loss, r),
    }
}

/// Cross entropy of `logits (..., C)` (classes on the **last** axis) against `targets`:
/// either class indices `(...)` of an integer dtype, or probabilities `(..., C)` of a float
/// dtype. As PyTorch's `cross_entropy`:
///
/// - index targets: `loss_i = (1 - s) (-w[y_i] log p[i, y_i]) + s/C sum_c (-w_c log p[i, c])`,
///   0 where `y_i == ignore_index`;
///   `Mean` divides the sum by `sum_i w[y_i]` over the kept targets (their count without
///   weights).
/// - probability targets: `loss_i = -sum_c w_c t'_ic log p_ic` with `t' = (1-s) t + s/C`;
///   `Mean` divides by the number of rows. `ignore_index` is refused here.
pub fn cross_entropy(logits: &Array, targets: &Array, options: &CrossEntropy) -> Result<Array> {
    let name = "cross_entropy";
    let (c, out) = float_dtypes(name, "logits", logits)?;
    let s = options.label_smoothing;
    if !(0.0..=1.0).contains(&s) {
        return Err(Error::invalid(
            name,
            format!("label_smoothing must be in [0, 1], got {s}"),
        ));
    }
    if logits.ndim() == 0 {
        return Err(Error::invalid(
            name,
            format!(
                "logits must have a class axis, got shape {:?}",
                logits.shape()
            ),
        ));
    }
    let classes = logits.shape()[logits.ndim() - 1];
    let weight = class_weight(name, options.weight.as_ref(), classes, c)?;
    if !targets.dtype().is_float() && weight.is_none() && s == 0.0 {
        return fused_index_cross_entropy(logits, targets, options, out);
    }
    let logp = ingot::log_softmax(&cast(logits, c)?, -1)?;

    if targets.dtype().is_float() {
        if targets.shape() != logits.shape() {
            return Err(Error::invalid(
                name,
                format!(
                    "probability targets must have the logits' shape: logits {:?} {}, targets {:?} {} (class-index targets must be integers)",
                    logits.shape(),
                    logits.dtype(),
                    targets.shape(),
                    targets.dtype()
                ),
            ));
        }
        if let Some(i) = options.ignore_index {
            return Err(Error::invalid(
                name,
                format!("ignore_index ({i}) applies to class-index targets only, got probability targets {:?} {}", targets.shape(), targets.dtype()),
            ));
        }
        let mut t = cast(targets, c)?;
        if s > 0.0 {
            t = ingot::add(&ingot::multiply(&t, 1.0 - s)?, s / classes as f64)?;
        }
        let mut tl = ingot::multiply(&t, &logp)?;
        if let Some(w) = &weight {
            tl = ingot::multiply(&tl, w)?;
        }
        let loss = ingot::negative(&ingot::sum(&tl, Some(&[-1]), false)?)?;
        return finish(&loss, options.reduction, out);
    }

    check_integer_targets(name, logits, targets)?;
    let it = index_targets(name, logits, targets, options.ignore_index)?;
    let (nll, w) = nll_parts(&logp, &it, weight.as_ref())?;
    let loss = if s > 0.0 {
        let wl = match &weight {
            Some(wc) => ingot::multiply(&logp, wc)?,
            None => logp.clone(),
        };
        let smooth = ingot::negative(&ingot::sum(&wl, Some(&[-1]), false)?)?;
        let smooth = ingot::where_(&it.keep, &smooth, 0.0)?;
        ingot::add(
            &ingot::multiply(&nll, 1.0 - s)?,
            &ingot::multiply(&smooth, s / classes as f64)?,
        )?
    } else {
        nll
    };
    cast(&weighted_reduce(&loss, &w, options.reduction)?, out)
}

/// Class-index cross entropy without weights or smoothing through the fused op
/// (`ingot::fast::softmax_cross_entropy`): the logits stay in their dtype, and the backward
/// pass reads them again rather than keeping an f32 log-softmax and dense one-hot products
/// (4.6 to 6.1 GiB of GPT-2's training step at batch 8 x 1024). Ignored targets become -1,
/// which the op skips; other negative targets become C, past the classes, which it reports
/// as out of bounds on evaluation (as the general path's gather).
fn fused_index_cross_entropy(
    logits: &Array,
    targets: &Array,
    options: &CrossEntropy,
    out: DType,
) -> Result<Array> {
    let name = "cross_entropy";
    check_integer_targets(name, logits, targets)?;
    let nd = logits.ndim();
    if targets.shape() != &logits.shape()[..nd - 1] {
        // The general path's message.
        index_targets(name, logits, targets, options.ignore_index)?;
    }
    let classes = logits.shape()[nd - 1] as i64;
    let t = ingot::astype(targets, DType::I64)?;
    let t_in = ingot::where_(&ingot::less(&t, 0i64)?, classes, &t)?;
    let (t_op, keep) = match options.ignore_index {
        Some(i) => {
            let keep = ingot::not_equal(&t, i)?;
            (ingot::where_(&keep, &t_in, -1i64)?, keep)
        }
        None => (t_in, ingot::full(t.shape(), true, DType::Bool)?),
    };
    let loss = ingot::fast::softmax_cross_entropy(logits, &t_op)?;
    let w = ingot::astype(&keep, loss.dtype())?;
    cast(&weighted_reduce(&loss, &w, options.reduction)?, out)
}

/// Negative log-likelihood of log-probabilities `(..., C)` (classes on the last axis) at
/// integer class indices `(...)`: `-w[y_i] log_probs[i, y_i]`, with PyTorch's weighted mean
/// (`sum / sum_i w[y_i]` over the targets not equal to `ignore_index`).
pub fn nll_loss(
    log_probs: &Array,
    targets: &Array,
    weight: Option<&Array>,
    ignore_index: Option<i64>,
    reduction: Reduction,
) -> Result<Array> {
    let name = "nll_loss";
    let (c, out) = float_dtypes(name, "log_probs", log_probs)?;
    check_integer_targets(name, log_probs, targets)?;
    let it = index_targets(name, log_probs, targets, ignore_index)?;
    let classes = log_probs.shape()[log_probs.ndim() - 1];
    let weight = class_weight(name, weight, classes, c)?;
    let (nll, w) = nll_parts(&cast(log_probs, c)?, &it, weight.as_ref())?;
    cast(&weighted_reduce(&nll, &w, reduction)?, out)
}

/// Binary cross entropy of probabilities: `-w (t log p + (1 - t) log(1 - p))`, each log
/// clamped at -100 as PyTorch. `weight` broadcasts against the input.
pub fn binary_cross_entropy(
    probs: &Array,
    targets: &Array,
    weight: Option<&Array>,
    reduction: Reduction,
) -> Result<Array> {
    let name = "binary_cross_entropy";
    pointwise(name, probs, targets, reduction, |p, t| {
        let lp = clamped_log(p)?;
        let lq = clamped_log(&ingot::subtract(1.0, p)?)?;
        let pos = ingot::multiply(t, &lp)?;
        let neg = ingot::multiply(&ingot::subtract(1.0, t)?, &lq)?;
        let l = ingot::negative(&ingot::add(&pos, &neg)?)?;
        match weight {
            Some(w) => ingot::multiply(&l, &weight_like(name, "weight", w, &l)?),
            None => Ok(l),
        }
    })
}

/// Binary cross entropy on logits, stable for any `x`:
/// `(1 - t) x + (1 + (pw - 1) t) log(1 + exp(-x))`, times `weight`. `pos_weight`
/// (the weight of positive examples, per class) broadcasts over the last axis, as PyTorch.
pub fn binary_cross_entropy_with_logits(
    logits: &Array,
    targets: &Array,
    weight: Option<&Array>,
    pos_weight: Option<&Array>,
    reduction: Reduction,
) -> Result<Array> {
    let name = "binary_cross_entropy_with_logits";
    pointwise(name, logits, targets, reduction, |x, t| {
        let sp = ingot::logaddexp(&ingot::negative(x)?, 0.0)?;
        let coef = match pos_weight {
            Some(pw) => {
                let pw = weight_like(name, "pos_weight", pw, x)?;
                ingot::add(&ingot::multiply(&ingot::subtract(&pw, 1.0)?, t)?, 1.0)?
            }
            None => ingot::full(&[], 1.0, x.dtype())?,
        };
        let l = ingot::add(
            &ingot::multiply(&ingot::subtract(1.0, t)?, x)?,
            &ingot::multiply(&coef, &sp)?,
        )?;
        match weight {
            Some(w) => ingot::multiply(&l, &weight_like(name, "weight", w, &l)?),
            None => Ok(l),
        }
    })
}

// ---- regression ---------------------------------------------------------------------------

/// `(input - target)^2`.
pub fn mse_loss(input: &Array, target: &Array, reduction: Reduction) -> Result<Array> {
    pointwise("mse_loss", input, target, reduction, |x, t| {
        ingot::square(&ingot::subtract(x, t)?)
    })
}

/// `|input - target|`.
pub fn l1_loss(input: &Array, target: &Array, reduction: Reduction) -> Result<Array> {
    pointwise("l1_loss", input, target, reduction, |x, t| {
        ingot::abs(&ingot::subtract(x, t)?)
    })
}

/// `0.5 d^2 / beta` where `|d| < beta`, else `|d| - 0.5 beta` (`beta >= 0`; 0 is L1).
pub fn smooth_l1_loss(
    input: &Array,
    target: &Array,
    beta: f64,
    reduction: Reduction,
) -> Result<Array> {
    check_nonneg("smooth_l1_loss", "beta", beta)?;
    pointwise("smooth_l1_loss", input, target, reduction, |x, t| {
        let d = ingot::abs(&ingot::subtract(x, t)?)?;
        let lin = ingot::subtract(&d, 0.5 * beta)?;
        if beta == 0.0 {
            return Ok(d);
        }
        let quad = ingot::divide(&ingot::multiply(&ingot::square(&d)?, 0.5)?, beta)?;
        ingot::where_(&ingot::less(&d, beta)?, &quad, &lin)
    })
}

/// `0.5 d^2` where `|d| <= delta`, else `delta (|d| - 0.5 delta)` (`delta > 0`).
pub fn huber_loss(
    input: &Array,
    target: &Array,
    delta: f64,
    reduction: Reduction,
) -> Result<Array> {
    if !(delta.is_finite() && delta > 0.0) {
        return Err(Error::invalid(
            "huber_loss",
            format!("delta must be finite and > 0, got {delta}"),
        ));
    }
    pointwise("huber_loss", input, target, reduction, |x, t| {
        let d = ingot::abs(&ingot::subtract(x, t)?)?;
        let quad = ingot::multiply(&ingot::square(&d)?, 0.5)?;
        let lin = ingot::multiply(&ingot::subtract(&d, 0.5 * delta)?, delta)?;
        ingot::where_(&ingot::less_equal(&d, delta)?, &quad, &lin)
    })
}

/// `log(cosh(input - target))`, computed as `logaddexp(d, -d) - log 2` so large
/// differences do not overflow.
pub fn log_cosh_loss(input: &Array, target: &Array, reduction: Reduction) -> Result<Array> {
    pointwise("log_cosh_loss", input, target, reduction, |x, t| {
        let d = ingot::subtract(x, t)?;
        ingot::subtract(
            &ingot::logaddexp(&d, &ingot::negative(&d)?)?,
            std::f64::consts::LN_2,
        )
    })
}

/// Gaussian negative log-likelihood, as PyTorch's `gaussian_nll_loss`:
/// `0.5 (log v + (input - target)^2 / v)` (plus `0.5 log 2pi` when `full`), with
/// `v = max(var, eps)` where the clamp passes gradients through unchanged. `var` has the
/// input's shape, or that shape with the last axis 1 or dropped (one variance per row).
pub fn gaussian_nll_loss(
    input: &Array,
    target: &Array,
    var: &Array,
    full: bool,
    eps: f64,
    reduction: Reduction,
) -> Result<Array> {
    let name = "gaussian_nll_loss";
    check_nonneg(name, "eps", eps)?;
    let is = input.shape();
    let vs = var.shape();
    let var = if vs == is {
        var.clone()
    } else if !is.is_empty() && vs == &is[..is.len() - 1] {
        ingot::expand_dims(var, &[-1])?
    } else if !is.is_empty()
        && vs.len() == is.len()
        && vs[vs.len() - 1] == 1
        && vs[..vs.len() - 1] == is[..is.len() - 1]
    {
        var.clone()
    } else {
        return Err(Error::invalid(
            name,
            format!(
                "var {:?} {} must have the input's shape {:?} or it with the last axis 1 or dropped",
                var.shape(),
                var.dtype(),
                input.shape()
            ),
        ));
    };
    pointwise(name, input, target, reduction, |x, t| {
        let v = cast_real(name, "var", &var, x.dtype())?;
        // Clamped in value only: PyTorch clamps under no_grad.
        let bump = ingot::stop_gradient(&ingot::subtract(&ingot::maximum(&v, eps)?, &v)?)?;
        let v = ingot::add(&v, &bump)?;
        let sq = ingot::divide(&ingot::square(&ingot::subtract(x, t)?)?, &v)?;
        let mut l = ingot::multiply(&ingot::add(&ingot::log(&v)?, &sq)?, 0.5)?;
        if full {
            l = ingot::add(&l, 0.5 * (2.0 * std::f64::consts::PI).ln())?;
        }
        Ok(l)
    })
}

/// Kullback-Leibler divergence with PyTorch's argument order: `input` holds
/// log-probabilities, `target` probabilities (log-probabilities when `log_target`):
/// `target (log target - input)`, 0 where `target == 0`. PyTorch's "batchmean" is `Sum`
/// divided by the batch size.
pub fn kl_div(
    input: &Array,
    target: &Array,
    log_target: bool,
    reduction: Reduction,
) -> Result<Array> {
    pointwise("kl_div", input, target, reduction, |x, t| {
        if log_target {
            ingot::multiply(&ingot::exp(t)?, &ingot::subtract(t, x)?)
        } else {
            ingot::subtract(&xlogy(t, t)?, &ingot::multiply(t, x)?)
        }
    })
}

// ---- similarity and margins ---------------------------------------------------------------

fn broadcast_pair(name: &str, a: &Array, b: &Array) -> Result<(DType, DType)> {
    let (c, out) = float_dtypes(name, "x1", a)?;
    if ingot::broadcast_arrays(&[a.clone(), b.clone()]).is_err() {
        return Err(Error::invalid(
            name,
            format!(
                "x1 {:?} {} and x2 {:?} {} do not broadcast",
                a.shape(),
                a.dtype(),
                b.shape(),
                b.dtype()
            ),
        ));
    }
    Ok((c, out))
}

fn cosine_impl(x1: &Array, x2: &Array, axis: isize, eps: f64) -> Result<Array> {
    let ax = [axis];
    let dot = ingot::sum(&ingot::multiply(x1, x2)?, Some(&ax), false)?;
    // sqrt(max(|x|^2, eps^2)) = max(|x|, eps), with a finite gradient at zero vectors.
    let norm = |x: &Array| -> Result<Array> {
        let ss = ingot::sum(&ingot::square(x)?, Some(&ax), false)?;
        ingot::sqrt(&ingot::maximum(&ss, eps * eps)?)
    };
    ingot::divide(&dot, &ingot::multiply(&norm(x1)?, &norm(x2)?)?)
}

/// The similarity in the compute dtype, and the output dtype.
fn cosine_checked(
    name: &str,
    x1: &Array,
    x2: &Array,
    axis: isize,
    eps: f64,
) -> Result<(Array, DType)> {
    check_nonneg(name, "eps", eps)?;
    let (c, out) = broadcast_pair(name, x1, x2)?;
    let (a, b) = (cast(x1, c)?, cast_real(name, "x2", x2, c)?);
    let nd = x1.ndim().max(x2.ndim()) as isize;
    if axis >= nd || axis < -nd {
        return Err(Error::invalid(
            name,
            format!(
                "axis {axis} is out of range for x1 {:?} and x2 {:?}",
                x1.shape(),
                x2.shape()
            ),
        ));
    }
    Ok((cosine_impl(&a, &b, axis, eps)?, out))
}

/// `x1 . x2 / (max(|x1|, eps) max(|x2|, eps))` along `axis` (inputs broadcast), as
/// PyTorch's `cosine_similarity` (eps 1e-8 there).
pub fn cosine_similarity(x1: &Array, x2: &Array, axis: isize, eps: f64) -> Result<Array> {
    let (cos, out) = cosine_checked("cosine_similarity", x1, x2, axis, eps)?;
    cast(&cos, out)
}

/// `1 - cosine_similarity(x1, x2, axis, eps)`, reduced. (MLX's `cosine_similarity_loss`
/// returns the similarity itself; this is the quantity to minimize.)
pub fn cosine_similarity_loss(
    x1: &Array,
    x2: &Array,
    axis: isize,
    eps: f64,
    reduction: Reduction,
) -> Result<Array> {
    let (cos, out) = cosine_checked("cosine_similarity_loss", x1, x2, axis, eps)?;
    finish(&ingot::subtract(1.0, &cos)?, reduction, out)
}

/// PyTorch's `CosineEmbeddingLoss`: with `cos` along the last axis, `1 - cos` where
/// `y == 1` and `max(0, cos - margin)` where `y == -1`; `y` has the inputs' shape without
/// the last axis.
pub fn cosine_embedding_loss(
    x1: &Array,
    x2: &Array,
    y: &Array,
    margin: f64,
    reduction: Reduction,
) -> Result<Array> {
    let name = "cosine_embedding_loss";
    let (cos, out) = cosine_checked(name, x1, x2, -1, 1e-8)?;
    if y.shape() != cos.shape() {
        return Err(Error::invalid(
            name,
            format!(
                "y {:?} must have the inputs' shape without the last axis: x1 {:?}, x2 {:?}",
                y.shape(),
                x1.shape(),
                x2.shape()
            ),
        ));
    }
    let y = cast_real(name, "y", y, cos.dtype())?;
    let pos = ingot::where_(&ingot::equal(&y, 1.0)?, &ingot::subtract(1.0, &cos)?, 0.0)?;
    let neg = ingot::where_(
        &ingot::equal(&y, -1.0)?,
        &ingot::maximum(&ingot::subtract(&cos, margin)?, 0.0)?,
        0.0,
    )?;
    finish(&ingot::add(&pos, &neg)?, reduction, out)
}

/// `||a - b + eps||_p` along the last axis, as PyTorch's `pairwise_distance` (eps 1e-6).
fn pairwise_distance(a: &Array, b: &Array, p: f64) -> Result<Array> {
    let d = ingot::abs(&ingot::add(&ingot::subtract(a, b)?, 1e-6)?)?;
    let s = ingot::sum(&ingot::power(&d, p)?, Some(&[-1]), false)?;
    ingot::power(&s, 1.0 / p)
}

/// PyTorch's `triplet_margin_loss`: `max(d(a, p) - d(a, n) + margin, 0)` with `d` the p-norm
/// distance along the last axis (plus PyTorch's eps 1e-6 inside the norm). `p > 0`.
pub fn triplet_margin_loss(
    anchor: &Array,
    positive: &Array,
    negative: &Array,
    margin: f64,
    p: f64,
    reduction: Reduction,
) -> Result<Array> {
    let name = "triplet_margin_loss";
    let (c, out) = float_dtypes(name, "anchor", anchor)?;
    if !(p.is_finite() && p > 0.0 && margin.is_finite()) {
        return Err(Error::invalid(
            name,
            format!("p must be finite and > 0 and margin finite, got p {p}, margin {margin}"),
        ));
    }
    if anchor.ndim() == 0
        || anchor.shape() != positive.shape()
        || anchor.shape() != negative.shape()
    {
        return Err(Error::invalid(
            name,
            format!(
                "anchor {:?} {}, positive {:?} {} and negative {:?} {} must have one shape with a feature axis",
                anchor.shape(),
                anchor.dtype(),
                positive.shape(),
                positive.dtype(),
                negative.shape(),
                negative.dtype()
            ),
        ));
    }
    let a = cast(anchor, c)?;
    let pp = cast_real(name, "positive", positive, c)?;
    let nn = cast_real(name, "negative", negative, c)?;
    let dp = pairwise_distance(&a, &pp, p)?;
    let dn = pairwise_distance(&a, &nn, p)?;
    let l = ingot::maximum(&ingot::add(&ingot::subtract(&dp, &dn)?, margin)?, 0.0)?;
    finish(&l, reduction, out)
}

/// PyTorch's `HingeEmbeddingLoss`: `x` where `y == 1`, `max(0, margin - x)` where
/// `y == -1` (`y` of ±1, same shape as `x`).
pub fn hinge_embedding_loss(
    input: &Array,
    y: &Array,
    margin: f64,
    reduction: Reduction,
) -> Result<Array> {
    pointwise("hinge_embedding_loss", input, y, reduction, |x, y| {
        let clamp = ingot::maximum(&ingot::subtract(margin, x)?, 0.0)?;
        let m = ingot::where_(&ingot::not_equal(y, 1.0)?, &clamp, 0.0)?;
        let s = ingot::where_(&ingot::not_equal(y, -1.0)?, x, 0.0)?;
        ingot::add(&m, &s)
    })
}

/// The classic hinge loss (MLX's `hinge_loss`): `max(0, 1 - x y)` for `y` in {-1, 1}.
pub fn hinge_loss(input: &Array, y: &Array, reduction: Reduction) -> Result<Array> {
    pointwise("hinge_loss", input, y, reduction, |x, y| {
        ingot::maximum(&ingot::subtract(1.0, &ingot::multiply(x, y)?)?, 0.0)
    })
}

/// PyTorch's `margin_ranking_loss`: `max(0, -y (x1 - x2) + margin)`; all three of one shape.
pub fn margin_ranking_loss(
    x1: &Array,
    x2: &Array,
    y: &Array,
    margin: f64,
    reduction: Reduction,
) -> Result<Array> {
    let name = "margin_ranking_loss";
    same_shape(name, ("x1", x1), ("y", y))?;
    pointwise(name, x1, x2, reduction, |a, b| {
        let y = cast_real(name, "y", y, a.dtype())?;
        let v = ingot::add(
            &ingot::negative(&ingot::multiply(&y, &ingot::subtract(a, b)?)?)?,
            margin,
        )?;
        ingot::maximum(&v, 0.0)
    })
}
