//! Adagrad, AdaDelta and RMSprop, as `torch.optim.Adagrad`, `Adadelta` and `RMSprop`.

use super::{
    add_scaled_by, axpby, check_min, check_unit, ema, slot, with_l2, RuleOptimizer, Slot, SlotMap,
    StepCtx, UpdateRule,
};
use crate::schedule::Schedule;
use ingot::{Array, Result};

/// Adagrad's hyperparameters (PyTorch's defaults: no lr decay or weight decay, initial
/// accumulator 0, eps 1e-10).
///
/// ```text
/// g = g + weight_decay * p
/// clr = lr / (1 + (t - 1) * lr_decay)
/// s = s + g^2
/// p = p - clr * g / (sqrt(s) + eps)
/// ```
/// State: "sum" (starting at `initial_accumulator_value`).
#[derive(Clone, Debug)]
pub struct AdagradConfig {
    pub lr_decay: f64,
    pub weight_decay: f64,
    pub initial_accumulator_value: f64,
    pub eps: f64,
}

impl Default for AdagradConfig {
    fn default() -> Self {
        AdagradConfig {
            lr_decay: 0.0,
            weight_decay: 0.0,
            initial_accumulator_value: 0.0,
            eps: 1e-10,
        }
    }
}

/// Adagrad (see [`AdagradConfig`]).
pub type Adagrad = RuleOptimizer<AdagradConfig>;

impl Adagrad {
    pub fn new(lr: impl Into<Schedule>) -> Adagrad {
        RuleOptimizer::with_config(AdagradConfig::default(), lr)
    }
}

config_setters!(Adagrad {
    lr_decay: f64,
    weight_decay: f64,
    initial_accumulator_value: f64,
    eps: f64,
});

impl Default for Adagrad {
    /// PyTorch's default learning rate, 1e-2.
    fn default() -> Self {
        Adagrad::new(1e-2)
    }
}

impl UpdateRule for AdagradConfig {
    const NAME: &'static str = "Adagrad";

    fn validate(&self) -> Result<()> {
        check_min(Self::NAME, "lr_decay", self.lr_decay, 0.0)?;
        check_min(Self::NAME, "weight_decay", self.weight_decay, 0.0)?;
        check_min(
            Self::NAME,
            "initial_accumulator_value",
            self.initial_accumulator_value,
            0.0,
        )?;
        check_min(Self::NAME, "eps", self.eps, 0.0)
    }

    fn slots(&self, shape: &[usize]) -> Vec<Slot> {
        vec![Slot::like("sum", shape, self.initial_accumulator_value)]
    }

    fn apply(&self, ctx: &StepCtx, p: &Array, g: &Array, state: &mut SlotMap) -> Result<Array> {
        let g = with_l2(g, p, self.weight_decay)?;
        // clr = lr / (1 + (t - 1) * lr_decay), from the step's arrays.
        let decay = ingot::add(
            ingot::multiply(ingot::subtract(&ctx.t, 1.0)?, self.lr_decay)?,
            1.0,
        )?;
        let neg_clr = ingot::negative(&ingot::divide(&ctx.lr, &decay)?)?;
        let s = ingot::add(&slot(state, "sum")?, ingot::square(&g)?)?;
        let std = ingot::add(ingot::sqrt(&s)?, self.eps)?;
        let out = add_scaled_by(p, &neg_clr, &ingot::divide(&g, &std)?)?;
        state.insert("sum", s);
        Ok(out)
    }
}

/// AdaDelta's hyperparameters (PyTorch's defaults: rho 0.9, eps 1e-6, no weight decay;
/// the default learning rate is 1.0).
///
/// ```text
/// g = g + weight_decay * p
/// v = rho * v + (1 - rho) * g^2
/// d = sqrt(u + eps) / sqrt(v + eps) * g
/// u = rho * u + (1 - rho) * d^2
/// p = p - lr * d
/// ```
/// State: "square_avg" (v), "acc_delta" (u).
#[derive(Clone, Debug)]
pub struct AdaDeltaConfig {
    pub rho: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdaDeltaConfig {
    fn default() -> Self {
        AdaDeltaConfig {
            rho: 0.9,
            eps: 1e-6,
            weight_decay: 0.0,
        }
    }
}

/// AdaDelta (see [`AdaDeltaConfig`]).
pub type AdaDelta = RuleOptimizer<AdaDeltaConfig>;

impl AdaDelta {
    pub fn new(lr: impl Into<Schedule>) -> AdaDelta {
        RuleOptimizer::with_config(AdaDeltaConfig::default(), lr)
    }
}

config_setters!(AdaDelta {
    rho: f64,
    eps: f64,
    weight_decay: f64
});

impl Default for AdaDelta {
    /// PyTorch's default learning rate, 1.0.
    fn default() -> Self {
        AdaDelta::new(1.0)
    }
}

impl UpdateRule for AdaDeltaConfig {
    const NAME: &'static str = "AdaDelta";

    fn validate(&self) -> Result<()> {
        if self.rho != 1.0 {
            check_unit(Self::NAME, "rho", self.rho)?;
        }
        check_min(Self::NAME, "eps", self.eps, 0.0)?;
        check_min(Self::NAME, "weight_decay", self.weight_decay, 0.0)
    }

    fn slots(&self, shape: &[usize]) -> Vec<Slot> {
        vec![
            Slot::like("square_avg", shape, 0.0),
            Slot::like("acc_delta", shape, 0.0),
        ]
    }

    fn apply(&self, ctx: &StepCtx, p: &Array, g: &Array, state: &mut SlotMap) -> Result<Array> {
        let rho = self.rho;
        let g = with_l2(g, p, self.weight_decay)?;
        let v = ema(state, "square_avg", rho, &ingot::square(&g)?)?;
        let std = ingot::sqrt(&ingot::add(&v, self.eps)?)?;
        let u = slot(state, "acc_delta")?;
        let d = ingot::multiply(
            ingot::divide(ingot::sqrt(&ingot::add(&u, self.eps)?)?, &std)?,
            &g,
        )?;
        let u = axpby(rho, &u, 1.0 - rho, &ingot::square(&d)?)?;
        let out = add_scaled_by(p, &ingot::negative(&ctx.lr)?, &d)?;
        state.insert("square_avg", v);
        state.insert("acc_delta", u);
        Ok(out)
    }
}

/// RMSprop's hyperparameters (PyTorch's defaults: alpha 0.99, eps 1e-8, no weight decay,
/// no momentum, not centered).
///
/// ```text
/// g = g + weight_decay * p
/// v = alpha * v + (1 - alpha) * g^2
/// centered:  ga = alpha * ga + (1 - alpha) * g;  avg = sqrt(v - ga^2) + eps
/// else:      avg = sqrt(v) + eps
/// momentum > 0:  b = momentum * b + g / avg;  p = p - lr * b
/// else:          p = p - lr * g / avg
/// ```
/// State: "square_avg", "momentum_buffer" (momentum > 0), "grad_avg" (centered).
#[derive(Clone, Debug)]
pub struct RmsPropConfig {
    pub alpha: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub momentum: f64,
    pub centered: bool,
}

impl Default for RmsPropConfig {
    fn default() -> Self {
        RmsPropConfig {
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
        }
    }
}

/// RMSprop (see [`RmsPropConfig`]).
pub type RmsProp = RuleOptimizer<RmsPropConfig>;

impl RmsProp {
    pub fn new(lr: impl Into<Schedule>) -> RmsProp {
        RuleOptimizer::with_config(RmsPropConfig::default(), lr)
    }
}

config_setters!(RmsProp {
    alpha: f64,
    eps: f64,
    weight_decay: f64,
    momentum: f64,
    centered: bool,
});

impl Default for RmsProp {
    /// PyTorch's default learning rate, 1e-2.
    fn default() -> Self {
        RmsProp::new(1e-2)
    }
}

impl UpdateRule for RmsPropConfig {
    const NAME: &'static str = "RMSprop";

    fn validate(&self) -> Result<()> {
        check_min(Self::NAME, "alpha", self.alpha, 0.0)?;
        check_min(Self::NAME, "eps", self.eps, 0.0)?;
        check_min(Self::NAME, "weight_decay", self.weight_decay, 0.0)?;
        check_min(Self::NAME, "momentum", self.momentum, 0.0)
    }

    fn slots(&self, shape: &[usize]) -> Vec<Slot> {
        let mut s = vec![Slot::like("square_avg", shape, 0.0)];
        if self.momentum > 0.0 {
            s.push(Slot::like("momentum_buffer", shape, 0.0));
        }
        if self.centered {
            s.push(Slot::like("grad_avg", shape, 0.0));
        }
        s
    }

    fn apply(&self, ctx: &StepCtx, p: &Array, g: &Array, state: &mut SlotMap) -> Result<Array> {
        let a = self.alpha;
        let g = with_l2(g, p, self.weight_decay)?;
        let v = ema(state, "square_avg", a, &ingot::square(&g)?)?;
        let avg = if self.centered {
            let ga = ema(state, "grad_avg", a, &g)?;
            let avg = ingot::sqrt(&ingot::subtract(&v, ingot::square(&ga)?)?)?;
            state.insert("grad_avg", ga);
            avg
        } else {
            ingot::sqrt(&v)?
        };
        let avg = ingot::add(&avg, self.eps)?;
        let out = if self.momentum > 0.0 {
            let b = ingot::add(
                ingot::multiply(&slot(state, "momentum_buffer")?, self.momentum)?,
                ingot::divide(&g, &avg)?,
            )?;
            let out = add_scaled_by(p, &ingot::negative(&ctx.lr)?, &b)?;
            state.insert("momentum_buffer", b);
            out
        } else {
            add_scaled_by(p, &ingot::negative(&ctx.lr)?, &ingot::divide(&g, &avg)?)?
        };
        state.insert("square_avg", v);
        Ok(out)
    }
}
