//! Adam, AdamW and Adamax, as `torch.optim.Adam`, `AdamW` and `Adamax`.

use super::{
    add_scaled_by, check_min, check_unit, decoupled_decay, ema, slot, with_l2, RuleOptimizer, Slot,
    SlotMap, StepCtx, UpdateRule,
};
use crate::schedule::Schedule;
use ingot::{Array, Result};

fn check_betas(op: &str, betas: (f64, f64), eps: f64, weight_decay: f64) -> Result<()> {
    check_unit(op, "beta1", betas.0)?;
    check_unit(op, "beta2", betas.1)?;
    check_min(op, "eps", eps, 0.0)?;
    check_min(op, "weight_decay", weight_decay, 0.0)
}

fn adam_slots(shape: &[usize], amsgrad: bool) -> Vec<Slot> {
    let mut s = vec![
        Slot::like("exp_avg", shape, 0.0),
        Slot::like("exp_avg_sq", shape, 0.0),
    ];
    if amsgrad {
        s.push(Slot::like("max_exp_avg_sq", shape, 0.0));
    }
    s
}

/// The Adam step shared by Adam (after its L2 term) and AdamW (after its decay).
fn adam_step(
    ctx: &StepCtx,
    p: &Array,
    g: &Array,
    state: &mut SlotMap,
    betas: (f64, f64),
    eps: f64,
    amsgrad: bool,
) -> Result<Array> {
    let (b1, b2) = betas;
    let m = ema(state, "exp_avg", b1, g)?;
    let v = ema(state, "exp_avg_sq", b2, &ingot::square(g)?)?;
    // Bias corrections from the step's arrays (float64, as host numbers were).
    // Shared by every parameter of the update (StepCtx::shared).
    let bc2_sqrt = ctx.shared(&format!("adam bc2_sqrt {b2:e}"), || {
        ingot::sqrt(&ctx.bias_correction(b2)?)
    })?;
    let second = if amsgrad {
        let vmax = ingot::maximum(&slot(state, "max_exp_avg_sq")?, &v)?;
        state.insert("max_exp_avg_sq", vmax.clone());
        vmax
    } else {
        v.clone()
    };
    // PyTorch's order of operations: denom = sqrt(v) / sqrt(bc2) + eps, step = lr / bc1.
    let sq = ingot::sqrt(&second)?;
    let bc2_key = format!("adam bc2_sqrt {b2:e}");
    let denom = ingot::add(
        ingot::divide(&sq, ctx.shared_as(&bc2_key, &bc2_sqrt, sq.dtype())?)?,
        eps,
    )?;
    let step_key = format!("adam step_size {b1:e}");
    let step_size = ctx.shared(&step_key, || {
        ingot::divide(ingot::negative(&ctx.lr)?, ctx.bias_correction(b1)?)
    })?;
    let upd = ingot::divide(&m, &denom)?;
    let out = ingot::add(
        p,
        ingot::multiply(&upd, ctx.shared_as(&step_key, &step_size, upd.dtype())?)?,
    )?;
    state.insert("exp_avg", m);
    state.insert("exp_avg_sq", v);
    Ok(out)
}

/// Adam's hyperparameters (PyTorch's defaults: betas (0.9, 0.999), eps 1e-8, no weight
/// decay, no amsgrad).
///
/// ```text
/// g = g + weight_decay * p                       (L2, coupled)
/// m = b1 * m + (1 - b1) * g
/// v = b2 * v + (1 - b2) * g^2
/// vmax = max(vmax, v); use vmax for v            (amsgrad)
/// p = p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
/// ```
/// State: "exp_avg", "exp_avg_sq", and "max_exp_avg_sq" with amsgrad.
#[derive(Clone, Debug)]
pub struct AdamConfig {
    pub betas: (f64, f64),
    pub eps: f64,
    pub weight_decay: f64,
    pub amsgrad: bool,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
        }
    }
}

/// Adam (see [`AdamConfig`]).
pub type Adam = RuleOptimizer<AdamConfig>;

impl Adam {
    pub fn new(lr: impl Into<Schedule>) -> Adam {
        RuleOptimizer::with_config(AdamConfig::default(), lr)
    }
    pub fn betas(mut self, b1: f64, b2: f64) -> Self {
        self.config.betas = (b1, b2);
        self
    }
}

config_setters!(Adam {
    eps: f64,
    weight_decay: f64,
    amsgrad: bool
});

impl Default for Adam {
    /// PyTorch's default learning rate, 1e-3.
    fn default() -> Self {
        Adam::new(1e-3)
    }
}

impl UpdateRule for AdamConfig {
    const NAME: &'static str = "Adam";

    fn validate(&self) -> Result<()> {
        check_betas(Self::NAME, self.betas, self.eps, self.weight_decay)
    }

    fn slots(&self, shape: &[usize]) -> Vec<Slot> {
        adam_slots(shape, self.amsgrad)
    }

    fn apply(&self, ctx: &StepCtx, p: &Array, g: &Array, state: &mut SlotMap) -> Result<Array> {
        let g = with_l2(g, p, self.weight_decay)?;
        adam_step(ctx, p, &g, state, self.betas, self.eps, self.amsgrad)
    }
}

/// AdamW's hyperparameters (PyTorch's defaults: betas (0.9, 0.999), eps 1e-8, weight
/// decay 0.01, no amsgrad). Adam with decoupled weight decay:
///
/// ```text
/// p = p * (1 - lr * weight_decay)
/// then Adam's step without the L2 term (see [`AdamConfig`])
/// ```
/// State: as Adam's.
#[derive(Clone, Debug)]
pub struct AdamWConfig {
    pub betas: (f64, f64),
    pub eps: f64,
    pub weight_decay: f64,
    pub amsgrad: bool,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.01,
            amsgrad: false,
        }
    }
}

/// AdamW (see [`AdamWConfig`]).
pub type AdamW = RuleOptimizer<AdamWConfig>;

impl AdamW {
    pub fn new(lr: impl Into<Schedule>) -> AdamW {
        RuleOptimizer::with_config(AdamWConfig::default(), lr)
    }
    pub fn betas(mut self, b1: f64, b2: f64) -> Self {
        self.config.betas = (b1, b2);
        self
    }
}

config_setters!(AdamW {
    eps: f64,
    weight_decay: f64,
    amsgrad: bool
});

impl Default for AdamW {
    /// PyTorch's default learning rate, 1e-3.
    fn default() -> Self {
        AdamW::new(1e-3)
    }
}

impl UpdateRule for AdamWConfig {
    const NAME: &'static str = "AdamW";

    fn validate(&self) -> Result<()> {
        check_betas(Self::NAME, self.betas, self.eps, self.weight_decay)
    }

    fn slots(&self, shape: &[usize]) -> Vec<Slot> {
        adam_slots(shape, self.amsgrad)
    }

    fn apply(&self, ctx: &StepCtx, p: &Array, g: &Array, state: &mut SlotMap) -> Result<Array> {
        let p = decoupled_decay(ctx, p, self.weight_decay)?;
        adam_step(ctx, &p, g, state, self.betas, self.eps, self.amsgrad)
    }
}

/// Adamax's hyperparameters (PyTorch's defaults: betas (0.9, 0.999), eps 1e-8, no weight
/// decay). Adam with the infinity norm:
///
/// ```text
/// g = g + weight_decay * p
/// m = b1 * m + (1 - b1) * g
/// u = max(b2 * u, |g| + eps)
/// p = p - lr / (1 - b1^t) * m / u
/// ```
/// State: "exp_avg", "exp_inf".
#[derive(Clone, Debug)]
pub struct AdamaxConfig {
    pub betas: (f64, f64),
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamaxConfig {
    fn default() -> Self {
        AdamaxConfig {
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

/// Adamax (see [`AdamaxConfig`]).
pub type Adamax = RuleOptimizer<AdamaxConfig>;

impl Adamax {
    pub fn new(lr: impl Into<Schedule>) -> Adamax {
        RuleOptimizer::with_config(AdamaxConfig::default(), lr)
    }
    pub fn betas(mut self, b1: f64, b2: f64) -> Self {
        self.config.betas = (b1, b2);
        self
    }
}

config_setters!(Adamax {
    eps: f64,
    weight_decay: f64
});

impl Default for Adamax {
    /// PyTorch's default learning rate, 2e-3.
    fn default() -> Self {
        Adamax::new(2e-3)
    }
}

impl UpdateRule for AdamaxConfig {
    const NAME: &'static str = "Adamax";

    fn validate(&self) -> Result<()> {
        check_betas(Self::NAME, self.betas, self.eps, self.weight_decay)
    }

    fn slots(&self, shape: &[usize]) -> Vec<Slot> {
        vec![
            Slot::like("exp_avg", shape, 0.0),
            Slot::like("exp_inf", shape, 0.0),
        ]
    }

    fn apply(&self, ctx: &StepCtx, p: &Array, g: &Array, state: &mut SlotMap) -> Result<Array> {
        let (b1, b2) = self.betas;
        let g = with_l2(g, p, self.weight_decay)?;
        let m = ema(state, "exp_avg", b1, &g)?;
        let u = ingot::maximum(
            ingot::multiply(&slot(state, "exp_inf")?, b2)?,
            ingot::add(ingot::abs(&g)?, self.eps)?,
        )?;
        let clr = ingot::divide(ingot::negative(&ctx.lr)?, ctx.bias_correction(b1)?)?;
        let out = add_scaled_by(p, &clr, &ingot::divide(&m, &u)?)?;
        state.insert("exp_avg", m);
        state.insert("exp_inf", u);
        Ok(out)
    }
}
