//! Mixed-precision training: [`ingot::autocast`] runs matmuls and convolutions in float16
//! or bfloat16 while the parameters stay float32 (the master weights: their gradients come
//! back in float32), and a [`LossScaler`] keeps float16 gradients from underflowing.
//!
//! ```
//! # use ingot::{Array, DType};
//! # use ingot_nn::{amp::LossScaler, value_and_grad, Linear, Unary};
//! let mut model = Linear::with(4, 2, true, &ingot_nn::rng::key(0), DType::F32).unwrap();
//! let x = ingot::ones(&[3, 4], DType::F32).unwrap();
//! let mut scaler = LossScaler::new();
//! let (scaled_loss, grads) = ingot::autocast(DType::F16, || {
//!     value_and_grad(&mut model, |m| {
//!         let loss = ingot::mean(&ingot::square(&m.forward(&x)?)?, None, false)?;
//!         scaler.scale(&loss)
//!     })
//! })
//! .unwrap()
//! .unwrap();
//! if let Some(grads) = scaler.unscale_and_update(&grads).unwrap() {
//!     // all finite: an optimizer steps with `grads`
//!     assert_eq!(grads["weight"].dtype(), DType::F32);
//! }
//! ```

use ingot::{Array, DType, Error, Result};
use std::collections::BTreeMap;

/// Dynamic loss scaling with PyTorch's GradScaler rules: the loss is multiplied by the
/// scale before differentiation; gradients are divided by it; a step whose gradients hold
/// an inf or NaN is skipped and the scale multiplied by `backoff`; after `interval`
/// finite steps in a row the scale is multiplied by `growth`.
#[derive(Clone, Debug)]
pub struct LossScaler {
    scale: f64,
    pub growth: f64,
    pub backoff: f64,
    pub interval: usize,
    good_steps: usize,
    skipped: usize,
}

impl Default for LossScaler {
    fn default() -> Self {
        LossScaler::new()
    }
}

impl LossScaler {
    /// PyTorch's defaults: scale 2^16, growth 2, backoff 0.5, interval 2000.
    pub fn new() -> LossScaler {
        LossScaler {
            scale: 65536.0,
            growth: 2.0,
            backoff: 0.5,
            interval: 2000,
            good_steps: 0,
            skipped: 0,
        }
    }

    pub fn with(scale: f64, growth: f64, backoff: f64, interval: usize) -> Result<LossScaler> {
        let valid = scale.is_finite()
            && scale > 0.0
            && growth.is_finite()
            && growth > 1.0
            && backoff > 0.0
            && backoff < 1.0
            && interval > 0;
        if !valid {
            return Err(Error::invalid(
                "LossScaler",
                format!(
                    "need scale > 0, growth > 1, 0 < backoff < 1, interval > 0; got {scale}, {growth}, {backoff}, {interval}"
                ),
            ));
        }
        Ok(LossScaler {
            scale,
            growth,
            backoff,
            interval,
            good_steps: 0,
            skipped: 0,
        })
    }

    /// The current scale.
    pub fn scale_value(&self) -> f64 {
        self.scale
    }

    /// Steps skipped so far for non-finite gradients.
    pub fn skipped_steps(&self) -> usize {
        self.skipped
    }

    /// `loss * scale`, computed in float32 (a float16 loss times 2^16 would overflow).
    pub fn scale(&self, loss: &Array) -> Result<Array> {
        let l = if loss.dtype() == DType::F64 {
            loss.clone()
        } else {
            ingot::astype(loss, DType::F32)?
        };
        ingot::multiply(&l, self.scale)
    }

    /// Divides the gradients by the scale and moves the scale on. `None` when any gradient
    /// holds an inf or NaN: the step must be skipped (the scale has been lowered).
    pub fn unscale_and_update(
        &mut self,
        grads: &BTreeMap<String, Array>,
    ) -> Result<Option<BTreeMap<String, Array>>> {
        let inv = 1.0 / self.scale;
        let mut out = BTreeMap::new();
        let mut finite = Vec::with_capacity(grads.len());
        for (n, g) in grads {
            if !g.dtype().is_float() {
                return Err(Error::invalid(
                    "LossScaler",
                    format!(
                        "gradient {n} is {:?} {}, not floating",
                        g.shape(),
                        g.dtype()
                    ),
                ));
            }
            // In float32 at least: 1/scale underflows float16 past a scale of 2^24.
            let wide = if g.dtype() == DType::F64 {
                DType::F64
            } else {
                DType::F32
            };
            let u = ingot::astype(&ingot::multiply(&ingot::astype(g, wide)?, inv)?, g.dtype())?;
            finite.push(ingot::all(&ingot::isfinite(&u)?, None, false)?);
            out.insert(n.clone(), u);
        }
        // One read for all gradients.
        let ok = if finite.is_empty() {
            true
        } else {
            ingot::all(&ingot::stack(&finite, 0)?, None, false)?.item::<bool>()?
        };
        if ok {
            self.good_steps += 1;
            if self.good_steps >= self.interval {
                self.scale *= self.growth;
                self.good_steps = 0;
            }
            Ok(Some(out))
        } else {
            self.scale *= self.backoff;
            self.good_steps = 0;
            self.skipped += 1;
            Ok(None)
        }
    }

    /// The state a checkpoint keeps: scale, finite steps in a row, steps skipped.
    pub fn state(&self) -> BTreeMap<String, f64> {
        BTreeMap::from([
            ("scale".to_string(), self.scale),
            ("good_steps".to_string(), self.good_steps as f64),
            ("skipped".to_string(), self.skipped as f64),
        ])
    }

    /// Restores a state from [`LossScaler::state`].
    pub fn load_state(&mut self, s: &BTreeMap<String, f64>) -> Result<()> {
        let get = |k: &str| {
            s.get(k)
                .copied()
                .ok_or_else(|| Error::invalid("LossScaler::load_state", format!("no entry {k:?}")))
        };
        let scale = get("scale")?;
        if !(scale.is_finite() && scale > 0.0) {
            return Err(Error::invalid(
                "LossScaler::load_state",
                format!("scale {scale} is not positive and finite"),
            ));
        }
        self.scale = scale;
        self.good_steps = get("good_steps")? as usize;
        self.skipped = get("skipped")? as usize;
        Ok(())
    }
}
