//! Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms"), as MLX's
//! `optimizers.Lion` (PyTorch has none).

use super::{
    axpby, check_min, check_unit, scale_by, slot, RuleOptimizer, Slot, SlotMap, StepCtx, UpdateRule,
};
use crate::schedule::Schedule;
use ingot::{Array, Result};

/// Lion's hyperparameters (defaults as MLX's and the paper's: betas (0.9, 0.99), no weight
/// decay).
///
/// ```text
/// c = b1 * m + (1 - b1) * g
/// m = b2 * m + (1 - b2) * g
/// p = p * (1 - lr * weight_decay)          (decoupled)
/// p = p - lr * sign(c)
/// ```
/// State: "exp_avg" (m).
#[derive(Clone, Debug)]
pub struct LionConfig {
    pub betas: (f64, f64),
    pub weight_decay: f64,
}

impl Default for LionConfig {
    fn default() -> Self {
        LionConfig {
            betas: (0.9, 0.99),
            weight_decay: 0.0,
        }
    }
}

/// Lion (see [`LionConfig`]). Its steps have size `lr` in every coordinate, so it wants a
/// learning rate 3-10x smaller than AdamW's.
pub type Lion = RuleOptimizer<LionConfig>;

impl Lion {
    pub fn new(lr: impl Into<Schedule>) -> Lion {
        RuleOptimizer::with_config(LionConfig::default(), lr)
    }
    pub fn betas(mut self, b1: f64, b2: f64) -> Self {
        self.config.betas = (b1, b2);
        self
    }
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.config.weight_decay = weight_decay;
        self
    }
}

impl Default for Lion {
    /// The paper's usual learning rate, 1e-4.
    fn default() -> Self {
        Lion::new(1e-4)
    }
}

impl UpdateRule for LionConfig {
    const NAME: &'static str = "Lion";

    fn validate(&self) -> Result<()> {
        check_unit(Self::NAME, "beta1", self.betas.0)?;
        check_unit(Self::NAME, "beta2", self.betas.1)?;
        check_min(Self::NAME, "weight_decay", self.weight_decay, 0.0)
    }

    fn slots(&self, shape: &[usize]) -> Vec<Slot> {
        vec![Slot::like("exp_avg", shape, 0.0)]
    }

    fn apply(&self, ctx: &StepCtx, p: &Array, g: &Array, state: &mut SlotMap) -> Result<Array> {
        let (b1, b2) = self.betas;
        let m = slot(state, "exp_avg")?;
        let c = axpby(b1, &m, 1.0 - b1, g)?;
        state.insert("exp_avg", axpby(b2, &m, 1.0 - b2, g)?);
        let p = if self.weight_decay != 0.0 {
            scale_by(p, &ctx.decay_factor(self.weight_decay)?)?
        } else {
            p.clone()
        };
        ingot::subtract(&p, scale_by(&ingot::sign(&c)?, &ctx.lr)?)
    }
}
