//! Stochastic gradient descent with momentum, as `torch.optim.SGD`.

use super::{
    add_scaled, add_scaled_by, axpby, check_min, slot, RuleOptimizer, Slot, SlotMap, StepCtx,
    UpdateRule,
};
use crate::schedule::Schedule;
use ingot::{Array, Error, Result};

/// SGD's hyperparameters (PyTorch's defaults: no momentum, dampening or weight decay).
///
/// With gradient `g`, parameter `p`, learning rate `lr`:
/// ```text
/// g = g + weight_decay * p
/// if momentum != 0:
///     b = g                                   (the parameter's first step)
///     b = momentum * b + (1 - dampening) * g  (later steps)
///     g = g + momentum * b   if nesterov, else   g = b
/// p = p - lr * g
/// ```
/// State: "momentum_buffer" (only when momentum != 0).
#[derive(Clone, Debug, Default)]
pub struct SgdConfig {
    pub momentum: f64,
    pub dampening: f64,
    pub weight_decay: f64,
    pub nesterov: bool,
}

/// Stochastic gradient descent (see [`SgdConfig`]).
pub type Sgd = RuleOptimizer<SgdConfig>;

impl Sgd {
    /// Plain SGD with learning rate `lr`.
    pub fn new(lr: impl Into<Schedule>) -> Sgd {
        RuleOptimizer::with_config(SgdConfig::default(), lr)
    }
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.config.momentum = momentum;
        self
    }
    pub fn dampening(mut self, dampening: f64) -> Self {
        self.config.dampening = dampening;
        self
    }
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.config.weight_decay = weight_decay;
        self
    }
    pub fn nesterov(mut self, nesterov: bool) -> Self {
        self.config.nesterov = nesterov;
        self
    }
}

impl Default for Sgd {
    /// PyTorch's default learning rate, 1e-3.
    fn default() -> Self {
        Sgd::new(1e-3)
    }
}

impl UpdateRule for SgdConfig {
    const NAME: &'static str = "SGD";

    fn validate(&self) -> Result<()> {
        check_min(Self::NAME, "momentum", self.momentum, 0.0)?;
        check_min(Self::NAME, "weight_decay", self.weight_decay, 0.0)?;
        if !self.dampening.is_finite() {
            return Err(Error::invalid(
                Self::NAME,
                format!("dampening must be finite, got {}", self.dampening),
            ));
        }
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(Error::invalid(
                Self::NAME,
                format!(
                    "nesterov needs momentum > 0 and dampening 0, got momentum {} and dampening {}",
                    self.momentum, self.dampening
                ),
            ));
        }
        Ok(())
    }

    fn slots(&self, shape: &[usize]) -> Vec<Slot> {
        if self.momentum != 0.0 {
            vec![Slot::like("momentum_buffer", shape, 0.0)]
        } else {
            Vec::new()
        }
    }

    fn apply(&self, ctx: &StepCtx, p: &Array, g: &Array, state: &mut SlotMap) -> Result<Array> {
        let mut g = g.clone();
        if self.weight_decay != 0.0 {
            g = add_scaled(&g, self.weight_decay, p)?;
        }
        if self.momentum != 0.0 {
            // PyTorch starts the buffer at the first gradient, not at zero: selected by the
            // fresh flag, so one program serves the first step and later ones.
            let later = axpby(
                self.momentum,
                &slot(state, "momentum_buffer")?,
                1.0 - self.dampening,
                &g,
            )?;
            let b = ingot::where_(&ctx.fresh, &g, &later)?;
            g = if self.nesterov {
                add_scaled(&g, self.momentum, &b)?
            } else {
                b.clone()
            };
            state.insert("momentum_buffer", b);
        }
        add_scaled_by(p, &ingot::negative(&ctx.lr)?, &g)
    }
}
