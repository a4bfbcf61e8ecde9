//! Adafactor (Shazeer & Stern 2018), as MLX's `optimizers.Adafactor` and Hugging Face's
//! `transformers.Adafactor` (which agree; `torch.optim.Adafactor` is a different variant).

use super::{axpby, check_min, scale_by, slot, RuleOptimizer, Slot, SlotMap, StepCtx, UpdateRule};
use crate::schedule::Schedule;
use ingot::{Array, Error, Result};

/// Adafactor's hyperparameters. Defaults as MLX's and Hugging Face's: eps (1e-30, 1e-3),
/// clip_threshold 1.0, decay_rate -0.8, no first moment (beta1 None), no weight decay,
/// scale_parameter, relative_step, no warmup_init.
///
/// With `t` the update's number (1 for the first) and `rms(x) = sqrt(mean(x^2))`:
/// ```text
/// rho   = min(warmup_init ? 1e-6 * t : 1e-2, 1 / sqrt(t))   if relative_step, else lr
/// alpha = max(eps2, rms(p)) * rho                          if scale_parameter, else rho
/// beta2 = 1 - t^decay_rate
/// u = g^2 + eps1
/// p of 2 or more dims (factored; means over the last and second-to-last axes):
///     R = beta2 * R + (1 - beta2) * mean(u, -1)           ("exp_avg_sq_row", shape[..-1])
///     C = beta2 * C + (1 - beta2) * mean(u, -2)           ("exp_avg_sq_col", shape[..-2] + shape[-1])
///     U = rsqrt(R / mean(R, -1))[..., :, None] * rsqrt(C)[..., None, :] * g
/// p of 0 or 1 dims:
///     V = beta2 * V + (1 - beta2) * u                     ("exp_avg_sq")
///     U = rsqrt(V) * g
/// U = U / max(1, rms(U) / clip_threshold)
/// U = alpha * U
/// if beta1: m = beta1 * m + (1 - beta1) * U; U = m     ("exp_avg")
/// p = p - weight_decay * alpha * p - U
/// ```
/// The factored update broadcasts as Hugging Face's does, so parameters of more than two
/// dims are factored over their last two axes (MLX's matmul form only fits 2-D).
#[derive(Clone, Debug)]
pub struct AdafactorConfig {
    pub eps: (f64, f64),
    pub clip_threshold: f64,
    pub decay_rate: f64,
    pub beta1: Option<f64>,
    pub weight_decay: f64,
    pub scale_parameter: bool,
    /// Use the time-dependent step size `rho` above instead of the learning rate schedule.
    pub relative_step: bool,
    pub warmup_init: bool,
}

impl Default for AdafactorConfig {
    fn default() -> Self {
        AdafactorConfig {
            eps: (1e-30, 1e-3),
            clip_threshold: 1.0,
            decay_rate: -0.8,
            beta1: None,
            weight_decay: 0.0,
            scale_parameter: true,
            relative_step: true,
            warmup_init: false,
        }
    }
}

/// Adafactor (see [`AdafactorConfig`]).
pub type Adafactor = RuleOptimizer<AdafactorConfig>;

impl Adafactor {
    /// Adafactor with its relative step size (no learning rate; the optimizer's schedule is
    /// unused while `relative_step` is on).
    pub fn new() -> Adafactor {
        RuleOptimizer::with_config(AdafactorConfig::default(), 0.0)
    }
    /// Adafactor with an external learning rate (`relative_step` off).
    pub fn with_lr(lr: impl Into<Schedule>) -> Adafactor {
        let config = AdafactorConfig {
            relative_step: false,
            ..AdafactorConfig::default()
        };
        RuleOptimizer::with_config(config, lr)
    }
    pub fn eps(mut self, eps1: f64, eps2: f64) -> Self {
        self.config.eps = (eps1, eps2);
        self
    }
    pub fn clip_threshold(mut self, v: f64) -> Self {
        self.config.clip_threshold = v;
        self
    }
    pub fn decay_rate(mut self, v: f64) -> Self {
        self.config.decay_rate = v;
        self
    }
    pub fn beta1(mut self, beta1: Option<f64>) -> Self {
        self.config.beta1 = beta1;
        self
    }
    pub fn weight_decay(mut self, v: f64) -> Self {
        self.config.weight_decay = v;
        self
    }
    pub fn scale_parameter(mut self, on: bool) -> Self {
        self.config.scale_parameter = on;
        self
    }
    pub fn relative_step(mut self, on: bool) -> Self {
        self.config.relative_step = on;
        self
    }
    pub fn warmup_init(mut self, on: bool) -> Self {
        self.config.warmup_init = on;
        self
    }
}

impl Default for Adafactor {
    fn default() -> Self {
        Adafactor::new()
    }
}

fn rms(x: &Array) -> Result<Array> {
    ingot::sqrt(&ingot::mean(&ingot::square(x)?, None, false)?)
}

impl UpdateRule for AdafactorConfig {
    const NAME: &'static str = "Adafactor";

    fn validate(&self) -> Result<()> {
        check_min(Self::NAME, "eps1", self.eps.0, 0.0)?;
        check_min(Self::NAME, "eps2", self.eps.1, 0.0)?;
        check_min(Self::NAME, "weight_decay", self.weight_decay, 0.0)?;
        if self.clip_threshold.is_nan() || self.clip_threshold <= 0.0 {
            return Err(Error::invalid(
                Self::NAME,
                format!("clip_threshold must be > 0, got {}", self.clip_threshold),
            ));
        }
        if self.decay_rate.is_nan() || self.decay_rate > 0.0 {
            return Err(Error::invalid(
                Self::NAME,
                format!("decay_rate must be <= 0, got {}", self.decay_rate),
            ));
        }
        if let Some(b1) = self.beta1 {
            if !(0.0..1.0).contains(&b1) {
                return Err(Error::invalid(
                    Self::NAME,
                    format!("beta1 must be in [0, 1), got {b1}"),
                ));
            }
        }
        if self.warmup_init && !self.relative_step {
            return Err(Error::invalid(
                Self::NAME,
                "warmup_init needs relative_step",
            ));
        }
        Ok(())
    }

    fn slots(&self, shape: &[usize]) -> Vec<Slot> {
        let nd = shape.len();
        let mut s = if nd >= 2 {
            let mut col = shape[..nd - 2].to_vec();
            col.push(shape[nd - 1]);
            vec![
                Slot::like("exp_avg_sq_row", &shape[..nd - 1], 0.0),
                Slot::like("exp_avg_sq_col", &col, 0.0),
            ]
        } else {
            vec![Slot::like("exp_avg_sq", shape, 0.0)]
        };
        if self.beta1.is_some() {
            s.push(Slot::like("exp_avg", shape, 0.0));
        }
        s
    }

    fn apply(&self, ctx: &StepCtx, p: &Array, g: &Array, state: &mut SlotMap) -> Result<Array> {
        // rho and beta2 depend on t: 0-d float64 arrays from the step's arrays.
        let t = &ctx.t;
        let rho = if self.relative_step {
            let min_step = if self.warmup_init {
                ingot::multiply(t, 1e-6)?
            } else {
                Array::scalar(1e-2)
            };
            ingot::minimum(&min_step, ingot::divide(1.0, ingot::sqrt(t)?)?)?
        } else {
            ctx.lr.clone()
        };
        // alpha depends on the parameter's RMS, so it stays an array (a 0-d one).
        let alpha = if self.scale_parameter {
            scale_by(&ingot::maximum(rms(p)?, self.eps.1)?, &rho)?
        } else {
            ingot::astype(&rho, p.dtype())?
        };
        let beta2 = ingot::subtract(1.0, ingot::power(t, self.decay_rate)?)?;
        let one_minus = ingot::subtract(1.0, &beta2)?;
        // beta2 * x + (1 - beta2) * y with both coefficients rounded to the dtype once.
        let ema = |x: &Array, y: &Array| -> Result<Array> {
            ingot::add(scale_by(x, &beta2)?, scale_by(y, &one_minus)?)
        };
        let u = ingot::add(ingot::square(g)?, self.eps.0)?;
        let upd = if p.ndim() >= 2 {
            let row = ema(
                &slot(state, "exp_avg_sq_row")?,
                &ingot::mean(&u, Some(&[-1]), false)?,
            )?;
            let col = ema(
                &slot(state, "exp_avg_sq_col")?,
                &ingot::mean(&u, Some(&[-2]), false)?,
            )?;
            let r = ingot::rsqrt(&ingot::divide(&row, ingot::mean(&row, Some(&[-1]), true)?)?)?;
            let c = ingot::rsqrt(&col)?;
            let approx = ingot::multiply(
                ingot::expand_dims(&r, &[-1])?,
                ingot::expand_dims(&c, &[-2])?,
            )?;
            state.insert("exp_avg_sq_row", row);
            state.insert("exp_avg_sq_col", col);
            ingot::multiply(&approx, g)?
        } else {
            let v = ema(&slot(state, "exp_avg_sq")?, &u)?;
            let upd = ingot::multiply(ingot::rsqrt(&v)?, g)?;
            state.insert("exp_avg_sq", v);
            upd
        };
        let clip = ingot::maximum(ingot::divide(rms(&upd)?, self.clip_threshold)?, 1.0)?;
        let mut upd = ingot::multiply(ingot::divide(&upd, &clip)?, &alpha)?;
        if let Some(b1) = self.beta1 {
            let m = axpby(b1, &slot(state, "exp_avg")?, 1.0 - b1, &upd)?;
            state.insert("exp_avg", m.clone());
            upd = m;
        }
        let p = if self.weight_decay != 0.0 {
            ingot::add(
                p,
                ingot::multiply(p, ingot::multiply(&alpha, -self.weight_decay)?)?,
            )?
        } else {
            p.clone()
        };
        ingot::subtract(&p, &upd)
    }
}
