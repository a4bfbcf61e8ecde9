//! Muon (Jordan et al. 2024, "MomentUm Orthogonalized by Newton-Schulz"), as
//! `torch.optim.Muon` for matrices, with a fallback for parameters that are not.

use super::{
    axpby, check_min, check_unit, scale_by, slot, RuleOptimizer, Slot, SlotMap, StepCtx, UpdateRule,
};
use crate::schedule::Schedule;
use ingot::{Array, Error, Result};

/// What Muon does with parameters of fewer than 2 dims (biases, norm scales), which have
/// no orthogonalization.
#[derive(Clone, Debug, PartialEq)]
pub enum MuonFallback {
    /// An AdamW step (see [`super::AdamWConfig`]) with Muon's learning rate and weight
    /// decay and these betas and eps; state "exp_avg", "exp_avg_sq". The usual way to train
    /// such parameters alongside Muon (Keller Jordan's `MuonWithAuxAdam`).
    AdamW { betas: (f64, f64), eps: f64 },
    /// Muon's own momentum and decay without the orthogonalization (what MLX's `Muon` does);
    /// state "momentum_buffer".
    Momentum,
}

/// Muon's hyperparameters. Defaults as `torch.optim.Muon`: momentum 0.95, nesterov, weight
/// decay 0.1, 5 Newton-Schulz steps with coefficients (3.4445, -4.7750, 2.0315), eps 1e-7;
/// the fallback is AdamW with betas (0.9, 0.999) and eps 1e-8.
///
/// For a parameter of 2 or more dims (`(A, B, ...)` is flattened to `(A, B * ...)` for the
/// orthogonalization, as Keller Jordan's and MLX's versions do for convolution weights):
/// ```text
/// b = momentum * b + (1 - momentum) * g
/// U = (1 - momentum) * g + momentum * b   if nesterov, else   U = b
/// O = newton_schulz5(U)                   (approximately the orthogonal factor U V^T of U's SVD)
/// p = p * (1 - lr * weight_decay)
/// p = p - lr * sqrt(max(1, A / B)) * O
/// ```
/// Parameters of 0 or 1 dims follow [`MuonFallback`]. The orthogonalization runs in the
/// compute dtype (f32 for f16/bf16 parameters, else the parameter's; PyTorch uses bf16).
#[derive(Clone, Debug)]
pub struct MuonConfig {
    pub momentum: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
    pub ns_steps: usize,
    pub ns_coefficients: (f64, f64, f64),
    pub eps: f64,
    pub fallback: MuonFallback,
}

impl Default for MuonConfig {
    fn default() -> Self {
        MuonConfig {
            momentum: 0.95,
            nesterov: true,
            weight_decay: 0.1,
            ns_steps: 5,
            ns_coefficients: (3.4445, -4.7750, 2.0315),
            eps: 1e-7,
            fallback: MuonFallback::AdamW {
                betas: (0.9, 0.999),
                eps: 1e-8,
            },
        }
    }
}

/// Muon (see [`MuonConfig`]).
pub type Muon = RuleOptimizer<MuonConfig>;

impl Muon {
    pub fn new(lr: impl Into<Schedule>) -> Muon {
        RuleOptimizer::with_config(MuonConfig::default(), lr)
    }
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.config.momentum = momentum;
        self
    }
    pub fn nesterov(mut self, on: bool) -> Self {
        self.config.nesterov = on;
        self
    }
    pub fn weight_decay(mut self, v: f64) -> Self {
        self.config.weight_decay = v;
        self
    }
    pub fn ns_steps(mut self, steps: usize) -> Self {
        self.config.ns_steps = steps;
        self
    }
    pub fn fallback(mut self, fallback: MuonFallback) -> Self {
        self.config.fallback = fallback;
        self
    }
}

impl Default for Muon {
    /// PyTorch's default learning rate, 1e-3.
    fn default() -> Self {
        Muon::new(1e-3)
    }
}

/// The quintic Newton-Schulz iteration of Muon on a matrix `x` (2-D): scales `x` to
/// Frobenius norm 1 (dividing by `max(norm, eps)`), transposes it when it has more rows than
/// columns, then `steps` times `A = X X^T; X = a X + (b A + c A A) X`, and transposes back.
pub fn newton_schulz5(x: &Array, steps: usize, coeffs: (f64, f64, f64), eps: f64) -> Result<Array> {
    if x.ndim() != 2 {
        return Err(Error::invalid(
            "newton_schulz5",
            format!("needs a matrix, got {:?} {}", x.shape(), x.dtype()),
        ));
    }
    let (a, b, c) = coeffs;
    let tall = x.shape()[0] > x.shape()[1];
    let mut x = if tall {
        ingot::transpose(x, None)?
    } else {
        x.clone()
    };
    let norm = ingot::sqrt(&ingot::sum(&ingot::square(&x)?, None, false)?)?;
    x = ingot::divide(&x, ingot::maximum(&norm, eps)?)?;
    for _ in 0..steps {
        let gram = ingot::matmul(&x, &ingot::transpose(&x, None)?)?;
        let poly = axpby(b, &gram, c, &ingot::matmul(&gram, &gram)?)?;
        x = ingot::add(ingot::multiply(&x, a)?, ingot::matmul(&poly, &x)?)?;
    }
    if tall {
        x = ingot::transpose(&x, None)?;
    }
    Ok(x)
}

impl UpdateRule for MuonConfig {
    const NAME: &'static str = "Muon";

    fn validate(&self) -> Result<()> {
        check_unit(Self::NAME, "momentum", self.momentum)?;
        check_min(Self::NAME, "weight_decay", self.weight_decay, 0.0)?;
        check_min(Self::NAME, "eps", self.eps, 0.0)?;
        if let MuonFallback::AdamW { betas, eps } = self.fallback {
            check_unit(Self::NAME, "fallback beta1", betas.0)?;
            check_unit(Self::NAME, "fallback beta2", betas.1)?;
            check_min(Self::NAME, "fallback eps", eps, 0.0)?;
        }
        Ok(())
    }

    fn slots(&self, shape: &[usize]) -> Vec<Slot> {
        match (&self.fallback, shape.len()) {
            (MuonFallback::AdamW { .. }, 0 | 1) => vec![
                Slot::like("exp_avg", shape, 0.0),
                Slot::like("exp_avg_sq", shape, 0.0),
            ],
            _ => vec![Slot::like("momentum_buffer", shape, 0.0)],
        }
    }

    fn apply(&self, ctx: &StepCtx, p: &Array, g: &Array, state: &mut SlotMap) -> Result<Array> {
        let decayed = if self.weight_decay != 0.0 {
            scale_by(p, &ctx.decay_factor(self.weight_decay)?)?
        } else {
            p.clone()
        };
        if let (MuonFallback::AdamW { betas, eps }, 0 | 1) = (&self.fallback, p.ndim()) {
            let (b1, b2) = *betas;
            let m = axpby(b1, &slot(state, "exp_avg")?, 1.0 - b1, g)?;
            let v = axpby(
                b2,
                &slot(state, "exp_avg_sq")?,
                1.0 - b2,
                &ingot::square(g)?,
            )?;
            let sq = ingot::sqrt(&v)?;
            let bc2_sqrt = ingot::astype(&ingot::sqrt(&ctx.bias_correction(b2)?)?, sq.dtype())?;
            let denom = ingot::add(ingot::divide(&sq, &bc2_sqrt)?, *eps)?;
            let step = ingot::divide(&m, &denom)?;
            state.insert("exp_avg", m);
            state.insert("exp_avg_sq", v);
            let step_size = ingot::divide(&ctx.lr, ctx.bias_correction(b1)?)?;
            return ingot::subtract(&decayed, scale_by(&step, &step_size)?);
        }
        let mu = self.momentum;
        let b = axpby(mu, &slot(state, "momentum_buffer")?, 1.0 - mu, g)?;
        let u = if self.nesterov {
            axpby(1.0 - mu, g, mu, &b)?
        } else {
            b.clone()
        };
        state.insert("momentum_buffer", b);
        if p.ndim() < 2 {
            return ingot::subtract(&decayed, scale_by(&u, &ctx.lr)?);
        }
        let shape = p.shape().to_vec();
        let rows = shape[0];
        let cols: usize = shape[1..].iter().product();
        let flat = ingot::reshape_to(&u, &[rows, cols])?;
        let o = newton_schulz5(&flat, self.ns_steps, self.ns_coefficients, self.eps)?;
        let o = ingot::reshape_to(&o, &shape)?;
        let scale = (rows as f64 / cols as f64).max(1.0).sqrt();
        ingot::subtract(&decayed, scale_by(&o, &ingot::multiply(&ctx.lr, scale)?)?)
    }
}
