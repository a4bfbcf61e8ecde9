//! Learning-rate schedules: the learning rate as a function of the step, with the names and
//! semantics of `mlx.optimizers` schedules.
//!
//! A [`Schedule`] is evaluated on the host, in f64, at the optimizer's step count *before*
//! the update: the first update uses `schedule(0)`, the second `schedule(1)`, and so on (as
//! MLX's `Optimizer.apply_gradients` and PyTorch's schedulers do). A plain `f64` converts
//! into a constant schedule, so `Adam::new(1e-3)` and `Adam::new(cosine_decay(1e-3, 1000,
//! 0.0))` both work.
//!
//! ```
//! use ingot_nn::schedule::{cosine_decay, join_schedules, linear_schedule};
//! let warmup = linear_schedule(0.0, 1e-3, 100).unwrap();
//! let decay = cosine_decay(1e-3, 1000, 1e-5);
//! let lr = join_schedules(vec![warmup, decay], &[100]).unwrap();
//! assert_eq!(lr.at(0), 0.0);
//! assert!((lr.at(50) - 5e-4).abs() < 1e-15);
//! assert_eq!(lr.at(100), 1e-3);
//! ```

use ingot::{Error, Result};
use std::fmt;
use std::sync::Arc;

/// A learning rate as a function of the step (0 for the first update). Cheap to clone.
#[derive(Clone)]
pub struct Schedule {
    f: Arc<dyn Fn(u64) -> f64 + Send + Sync>,
    desc: String,
}

impl Schedule {
    /// A schedule from any function of the step; `desc` is what `Debug` shows.
    pub fn from_fn(
        desc: impl Into<String>,
        f: impl Fn(u64) -> f64 + Send + Sync + 'static,
    ) -> Self {
        Schedule {
            f: Arc::new(f),
            desc: desc.into(),
        }
    }

    /// The learning rate at `step`.
    pub fn at(&self, step: u64) -> f64 {
        (self.f)(step)
    }
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Schedule({})", self.desc)
    }
}

impl From<f64> for Schedule {
    fn from(lr: f64) -> Self {
        constant(lr)
    }
}

impl From<f32> for Schedule {
    fn from(lr: f32) -> Self {
        constant(lr as f64)
    }
}

/// The same learning rate at every step.
pub fn constant(lr: f64) -> Schedule {
    Schedule::from_fn(format!("constant({lr})"), move |_| lr)
}

/// `init * gamma^step` (MLX's `exponential_decay(init, decay_rate)`).
pub fn exponential_decay(init: f64, gamma: f64) -> Schedule {
    Schedule::from_fn(format!("exponential_decay({init}, {gamma})"), move |t| {
        init * gamma.powf(t as f64)
    })
}

/// `init * gamma^(step / step_size)` with integer division (MLX's `step_decay(init,
/// decay_rate, step_size)`, PyTorch's `StepLR`). `step_size` 0 is treated as 1.
pub fn step_decay(init: f64, gamma: f64, step_size: u64) -> Schedule {
    let size = step_size.max(1);
    Schedule::from_fn(
        format!("step_decay({init}, {gamma}, {step_size})"),
        move |t| init * gamma.powf((t / size) as f64),
    )
}

/// Cosine decay from `init` to `end` over `decay_steps`, then `end` (MLX's
/// `cosine_decay(init, decay_steps, end=0.0)`):
/// `s = min(step, decay_steps)`, `end + (init - end) * 0.5 * (1 + cos(pi * s / decay_steps))`.
/// `decay_steps` 0 gives `end` at every step.
pub fn cosine_decay(init: f64, decay_steps: u64, end: f64) -> Schedule {
    Schedule::from_fn(
        format!("cosine_decay({init}, {decay_steps}, {end})"),
        move |t| {
            if decay_steps == 0 {
                return end;
            }
            let s = t.min(decay_steps) as f64;
            let decay = 0.5 * (1.0 + (std::f64::consts::PI * s / decay_steps as f64).cos());
            end + decay * (init - end)
        },
    )
}

/// A straight line from `init` at step 0 to `end` at `steps`, then `end` (MLX's
/// `linear_schedule(init, end, steps)`, used for warmup):
/// `min(step, steps) * (end - init) / steps + init`. `steps` must be at least 1.
pub fn linear_schedule(init: f64, end: f64, steps: u64) -> Result<Schedule> {
    if steps < 1 {
        return Err(Error::invalid(
            "linear_schedule",
            format!("steps must be at least 1, got {steps}"),
        ));
    }
    Ok(Schedule::from_fn(
        format!("linear_schedule({init}, {end}, {steps})"),
        move |t| t.min(steps) as f64 * ((end - init) / steps as f64) + init,
    ))
}

/// Runs `schedules[0]` until `boundaries[0]`, then `schedules[1]` with its step counted from
/// that boundary, and so on (MLX's `join_schedules`): at step `t`, the schedule `i` of the
/// last boundary `b_i <= t` gives `schedules[i+1](t - b_i)`. There must be one boundary
/// fewer than schedules, and the boundaries must not decrease.
pub fn join_schedules(schedules: Vec<Schedule>, boundaries: &[u64]) -> Result<Schedule> {
    if schedules.is_empty() || schedules.len() != boundaries.len() + 1 {
        return Err(Error::invalid(
            "join_schedules",
            format!(
                "need one boundary fewer than schedules, got {} schedules and {} boundaries",
                schedules.len(),
                boundaries.len()
            ),
        ));
    }
    if boundaries.windows(2).any(|w| w[1] < w[0]) {
        return Err(Error::invalid(
            "join_schedules",
            format!("boundaries must not decrease, got {boundaries:?}"),
        ));
    }
    let desc = format!(
        "join_schedules([{}], {boundaries:?})",
        schedules
            .iter()
            .map(|s| s.desc.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let boundaries = boundaries.to_vec();
    Ok(Schedule::from_fn(desc, move |t| {
        // MLX applies `where(step < b, output, next(step - b))` for each boundary in turn:
        // the last boundary passed wins.
        let mut out = schedules[0].at(t);
        for (b, s) in boundaries.iter().zip(&schedules[1..]) {
            if t >= *b {
                out = s.at(t - b);
            }
        }
        out
    }))
}
