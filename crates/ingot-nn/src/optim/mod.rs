//! Optimizers (the role `mlx.optimizers` and `torch.optim` play), gradient clipping, and
//! optimizer state that saves to and resumes from safetensors.
//!
//! Every optimizer here is a [`RuleOptimizer`] over an [`UpdateRule`] (the per-parameter
//! math and its hyperparameters); the driver does the rest:
//!
//! - gradients are matched to parameters **by name** (the names of
//!   [`ModuleExt::trainable_parameters`], which is what [`crate::value_and_grad`] returns);
//!   an unknown name, or a gradient whose shape or dtype differs from its parameter's, is an
//!   error naming the parameter, and nothing changes;
//! - per-parameter state ("exp_avg", "momentum_buffer", ...) is created on a parameter's
//!   first step and kept by name; a parameter without a gradient in a step is left alone;
//! - the step counter `t` counts updates. The learning rate of an update is the
//!   [`Schedule`] at the count *before* it (`schedule(0)` for the first update, as in MLX),
//!   and bias corrections use the count after it (`t = 1` for the first update). The count
//!   is global, not per parameter (MLX's choice; PyTorch counts per parameter, which only
//!   differs for parameters that join training late);
//! - dtypes: parameters must be real floating point. For f32 and f64 parameters the math
//!   and state are in the parameter's dtype. For f16 and bf16 parameters the state is kept
//!   in f32 and the update is computed in f32 from f32 copies of the parameter and
//!   gradient, then rounded once to the parameter's dtype (so small steps are not lost to
//!   half-precision state);
//! - after a step the new parameters and state are evaluated (`ingot::eval`), so graphs do
//!   not grow from step to step;
//! - the math of an update is a pure function of arrays: a rule gets the learning rate,
//!   the step number and the parameter's "fresh" flag as 0-d arrays ([`StepCtx`]) and
//!   computes everything that changes between steps from them with ingot ops, so one
//!   traced program serves every step. An eager [`Optimizer::step`] of a
//!   [`RuleOptimizer`] runs that function compiled (`ingot::compile`: each parameter's
//!   update a few fused kernels), traced again when the hyperparameters or the stepped
//!   parameters change; [`FunctionalOptimizer`] exposes that function (the
//!   state in, the state out, no evaluation) for compiled training steps
//!   ([`crate::train::TrainStep`]); [`Optimizer::step`] is it followed by `eval`.
//!
//! ```
//! use ingot::DType;
//! use ingot_nn::optim::{AdamW, Optimizer};
//! use ingot_nn::{value_and_grad, Linear, Unary};
//! let mut model = Linear::with(3, 1, true, &ingot_nn::rng::key(0), DType::F32)?;
//! let x = ingot::ones(&[4, 3], DType::F32)?;
//! let mut opt = AdamW::new(1e-2);
//! let (loss, grads) = value_and_grad(&mut model, |m: &Linear| {
//!     ingot::mean(&ingot::square(&m.forward(&x)?)?, None, false)
//! })?;
//! opt.update(&mut model, &grads)?;
//! assert_eq!(opt.step_count(), 1);
//! # let _ = loss;
//! # Ok::<(), ingot::Error>(())
//! ```

/// Builder setters `pub fn field(self, value) -> Self` on an optimizer, one per listed
/// field of its config (`config_setters!(Adam { eps: f64, amsgrad: bool })`).
macro_rules! config_setters {
    ($opt:ty { $($field:ident: $ty:ty),* $(,)? }) => {
        impl $opt {
            $(
                pub fn $field(mut self, $field: $ty) -> Self {
                    self.config.$field = $field;
                    self
                }
            )*
        }
    };
}

mod adafactor;
mod adam;
mod adaptive;
mod clip;
mod lion;
mod muon;
mod sgd;

pub use adafactor::{Adafactor, AdafactorConfig};
pub use adam::{Adam, AdamConfig, AdamW, AdamWConfig, Adamax, AdamaxConfig};
pub use adaptive::{AdaDelta, AdaDeltaConfig, Adagrad, AdagradConfig, RmsProp, RmsPropConfig};
pub use clip::clip_grad_norm;
pub use lion::{Lion, LionConfig};
pub use muon::{newton_schulz5, Muon, MuonConfig, MuonFallback};
pub use sgd::{Sgd, SgdConfig};

use crate::module::{Module, ModuleExt};
use crate::schedule::Schedule;
use ingot::transforms::Compiled;
use ingot::{Array, DType, Error, Result};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

/// An optimizer: applies one update to named parameters from their named gradients.
pub trait Optimizer {
    /// The optimizer's name ("Adam"), used in errors and saved state.
    fn name(&self) -> &str;

    /// How many updates have been applied.
    fn step_count(&self) -> u64;

    /// The learning rate the next update will use.
    fn learning_rate(&self) -> f64;

    /// Replaces the learning-rate schedule (a constant `f64` converts into one).
    fn set_learning_rate(&mut self, lr: Schedule);

    /// One update without a module: the new value of every parameter named in `grads`
    /// (parameters without a gradient are not in the result). `grads` names must be keys
    /// of `params`, with the same shape and dtype. On an error nothing changes.
    fn step(
        &mut self,
        params: &BTreeMap<String, Array>,
        grads: &BTreeMap<String, Array>,
    ) -> Result<BTreeMap<String, Array>>;

    /// The state by name: "`param`.`entry`" (e.g. "layers.0.weight.exp_avg") for each
    /// parameter stepped so far, and "step" (a u64 scalar).
    fn state(&self) -> BTreeMap<String, Array>;

    /// Replaces the state with one from [`Optimizer::state`]. Errors: "step" missing or not
    /// a non-negative integer scalar, an entry name this optimizer does not use, a
    /// parameter whose entries are incomplete or not floating point. Shapes and dtypes are
    /// checked against each parameter at its next step (before anything changes).
    fn load_state(&mut self, state: &BTreeMap<String, Array>) -> Result<()>;

    /// Forgets all state and sets the step count to 0.
    fn reset(&mut self);

    /// One update of `model`'s trainable parameters: `grads` is what
    /// [`crate::value_and_grad`] returns for it.
    fn update<M: Module + ?Sized>(
        &mut self,
        model: &mut M,
        grads: &BTreeMap<String, Array>,
    ) -> Result<()>
    where
        Self: Sized,
    {
        let params = model.trainable_parameters();
        let new = self.step(&params, grads)?;
        ModuleExt::update(model, &new)
    }

    /// Writes [`Optimizer::state`] as a safetensors file, with the optimizer's name in the
    /// metadata under "optimizer".
    fn save_state_safetensors(&self, path: impl AsRef<Path>) -> Result<()>
    where
        Self: Sized,
    {
        let state = self.state();
        let meta = HashMap::from([("optimizer".to_string(), self.name().to_string())]);
        ingot::io::save_safetensors(path, state.iter().map(|(n, a)| (n.as_str(), a)), &meta)
    }

    /// Loads state written by [`Optimizer::save_state_safetensors`]; a file saved by a
    /// different optimizer is an error.
    fn load_state_safetensors(&mut self, path: impl AsRef<Path>) -> Result<()>
    where
        Self: Sized,
    {
        let (tensors, meta) = ingot::io::load_safetensors(path)?;
        if let Some(saved) = meta.get("optimizer") {
            if saved != self.name() {
                return Err(Error::invalid(
                    self.name(),
                    format!("the state file was saved by {saved}, not {}", self.name()),
                ));
            }
        }
        self.load_state(&tensors.into_iter().collect())
    }
}

/// A boxed optimizer is one too, so `Box<dyn Optimizer>` can update modules.
impl Optimizer for Box<dyn Optimizer> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn step_count(&self) -> u64 {
        (**self).step_count()
    }
    fn learning_rate(&self) -> f64 {
        (**self).learning_rate()
    }
    fn set_learning_rate(&mut self, lr: Schedule) {
        (**self).set_learning_rate(lr)
    }
    fn step(
        &mut self,
        params: &BTreeMap<String, Array>,
        grads: &BTreeMap<String, Array>,
    ) -> Result<BTreeMap<String, Array>> {
        (**self).step(params, grads)
    }
    fn state(&self) -> BTreeMap<String, Array> {
        (**self).state()
    }
    fn load_state(&mut self, state: &BTreeMap<String, Array>) -> Result<()> {
        (**self).load_state(state)
    }
    fn reset(&mut self) {
        (**self).reset()
    }
}

/// One entry of a parameter's state: its name, shape and initial value.
#[derive(Clone, Debug, PartialEq)]
pub struct Slot {
    pub name: &'static str,
    pub shape: Vec<usize>,
    pub init: f64,
}

impl Slot {
    /// An entry shaped like the parameter.
    pub fn like(name: &'static str, shape: &[usize], init: f64) -> Slot {
        Slot {
            name,
            shape: shape.to_vec(),
            init,
        }
    }
}

/// A parameter's state entries by name.
pub type SlotMap = BTreeMap<&'static str, Array>;

/// What an update rule knows about the current update, as 0-d arrays, so that the same
/// rule runs eagerly and inside a compiled training step ([`crate::train::TrainStep`]),
/// where these are inputs of the traced program: a rule must compute everything that
/// changes from step to step (the learning rate, bias corrections, anything depending on
/// `t`) from these arrays with ingot ops, never from host numbers, or a replayed trace
/// would use the numbers of the step it was traced at.
#[derive(Clone, Debug)]
pub struct StepCtx {
    /// The learning rate of this update (the schedule at `t - 1`): 0-d float64.
    pub lr: Array,
    /// The update's number, 1 for the first: 0-d float64 (exact up to 2^53).
    pub t: Array,
    /// True when this parameter's state was just created (its first update): 0-d bool.
    /// Select with it (`ingot::where_`) rather than branching on its value.
    pub fresh: Array,
    /// Scalars of this update shared by every parameter's rule ([`StepCtx::shared`]).
    memo: Memo,
}

/// Values computed once per update: a model of 150 parameters otherwise builds the same
/// bias corrections 150 times, each a tiny op of its own on the device.
#[derive(Clone, Debug, Default)]
struct Memo(std::sync::Arc<std::sync::Mutex<BTreeMap<String, Array>>>);

impl StepCtx {
    /// The context of an update with these host values.
    pub fn new(lr: f64, t: u64, fresh: bool) -> StepCtx {
        StepCtx {
            lr: Array::scalar(lr),
            t: Array::scalar(t as f64),
            fresh: Array::scalar(fresh),
            memo: Memo::default(),
        }
    }

    /// The value `f` computes, computed once per update under `key` and shared by every
    /// parameter's rule (so the key must name everything the value depends on besides
    /// `lr` and `t`: hyperparameters, dtypes). Shared values belong to this context's `lr`
    /// and `t` (clones share them): for other values make a new context
    /// ([`StepCtx::new`]) rather than changing those fields.
    pub fn shared(&self, key: &str, f: impl FnOnce() -> Result<Array>) -> Result<Array> {
        if let Some(v) = self.memo.0.lock().ok().and_then(|m| m.get(key).cloned()) {
            return Ok(v);
        }
        let v = f()?;
        if let Ok(mut m) = self.memo.0.lock() {
            m.insert(key.to_string(), v.clone());
        }
        Ok(v)
    }

    /// `b^t` (0-d float64).
    pub fn pow_t(&self, b: f64) -> Result<Array> {
        self.shared(&format!("pow_t {b:e}"), || ingot::power(b, &self.t))
    }

    /// The bias correction `1 - b^t` (0-d float64).
    pub fn bias_correction(&self, b: f64) -> Result<Array> {
        self.shared(&format!("bias_correction {b:e}"), || {
            ingot::subtract(1.0, self.pow_t(b)?)
        })
    }

    /// The decoupled weight-decay factor `1 - lr * weight_decay` (0-d float64).
    pub fn decay_factor(&self, weight_decay: f64) -> Result<Array> {
        self.shared(&format!("decay_factor {weight_decay:e}"), || {
            ingot::subtract(1.0, ingot::multiply(&self.lr, weight_decay)?)
        })
    }

    /// The shared 0-d float64 `s` (named `key`) rounded once to `dtype`.
    pub fn shared_as(&self, key: &str, s: &Array, dtype: DType) -> Result<Array> {
        self.shared(&format!("{key} as {dtype}"), || ingot::astype(s, dtype))
    }
}

/// The per-parameter math of an optimizer and its hyperparameters; [`RuleOptimizer`]
/// drives it. Implement this for a custom optimizer.
pub trait UpdateRule: Clone + std::fmt::Debug + Send + Sync + 'static {
    /// The optimizer's name in errors and saved state.
    const NAME: &'static str;

    /// Checks the hyperparameters (called at every step, so builder methods need not fail).
    fn validate(&self) -> Result<()>;

    /// The state entries of a parameter of `shape`. Entry names must not contain '.'.
    fn slots(&self, shape: &[usize]) -> Vec<Slot>;

    /// The new parameter from the parameter `p` and gradient `g` (both in the compute
    /// dtype: f32 for f16/bf16 parameters, else the parameter's), updating `state` in place.
    /// Everything that varies between steps must come from `ctx`'s arrays (see
    /// [`StepCtx`]); branching on shapes and hyperparameters is fine. Evaluate nothing:
    /// the arrays may be placeholders of a trace.
    fn apply(&self, ctx: &StepCtx, p: &Array, g: &Array, state: &mut SlotMap) -> Result<Array>;
}

/// An optimizer from an [`UpdateRule`]: the learning-rate schedule, the step count and
/// every parameter's state. [`Sgd`], [`Adam`] and the others are aliases of this type with
/// their own constructors and builder methods.
#[derive(Clone, Debug)]
pub struct RuleOptimizer<R: UpdateRule> {
    /// The hyperparameters (public: they may be changed between steps). A change that adds
    /// or removes state entries (SGD's momentum from 0, Adam's amsgrad) makes the next step
    /// fail on parameters that already have state; call [`Optimizer::reset`] first.
    pub config: R,
    lr: Schedule,
    step: u64,
    state: BTreeMap<String, SlotMap>,
    /// The eager update, compiled (see `compiled_update`).
    compiled: UpdateCache,
}

/// The traced update function of an eager step: the inputs are each parameter's value,
/// gradient, state entries and fresh flag (in name order), then `lr` and `t`.
type UpdateFn = Box<dyn Fn(&[Array]) -> Result<Vec<Array>> + Send + Sync>;

/// One compiled eager update and what it was traced for: the hyperparameters (their
/// `Debug` text, exact for floats) and each stepped parameter's name and state entries.
/// Shapes and dtypes are the compiled function's own cache key. A clone starts empty.
#[derive(Default)]
struct UpdateCache(std::sync::Mutex<Option<(String, Arc<Compiled<UpdateFn>>)>>);

impl Clone for UpdateCache {
    fn clone(&self) -> Self {
        UpdateCache::default()
    }
}

impl std::fmt::Debug for UpdateCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UpdateCache")
    }
}

/// The dtype state and math use for a parameter of `dtype`.
pub fn compute_dtype(dtype: DType) -> DType {
    match dtype {
        DType::F16 | DType::BF16 => DType::F32,
        d => d,
    }
}

impl<R: UpdateRule> RuleOptimizer<R> {
    /// An optimizer with these hyperparameters and learning rate.
    pub fn with_config(config: R, lr: impl Into<Schedule>) -> Self {
        RuleOptimizer {
            config,
            lr: lr.into(),
            step: 0,
            state: BTreeMap::new(),
            compiled: UpdateCache::default(),
        }
    }

    /// The learning-rate schedule.
    pub fn schedule(&self) -> &Schedule {
        &self.lr
    }

    /// One parameter's state entries, if it has been stepped.
    pub fn param_state(&self, name: &str) -> Option<&SlotMap> {
        self.state.get(name)
    }

    /// How often the compiled eager update (see [`Optimizer::step`]) was traced and
    /// replayed since it was last traced for new hyperparameters or parameters; zero
    /// before the first step.
    pub fn update_compile_stats(&self) -> ingot::transforms::CompileStats {
        let slot = self.compiled.0.lock().unwrap_or_else(|e| e.into_inner());
        slot.as_ref().map(|(_, c)| c.stats()).unwrap_or_default()
    }

    /// The entry names a parameter of some rank may have (ranks 0 to 4 cover every rule
    /// here, whose entries depend on the rank at most).
    fn entry_sets(&self) -> Vec<Vec<&'static str>> {
        let mut sets: Vec<Vec<&'static str>> = Vec::new();
        for nd in 0..=4 {
            let mut set: Vec<&'static str> = self
                .config
                .slots(&vec![2; nd])
                .iter()
                .map(|s| s.name)
                .collect();
            // Sorted, as a loaded parameter's entries (BTreeMap keys) are.
            set.sort_unstable();
            if !sets.contains(&set) {
                sets.push(set);
            }
        }
        sets
    }

    /// Checks stored state against the parameter it belongs to.
    fn check_state(&self, name: &str, p: &Array, st: &SlotMap) -> Result<()> {
        let cd = compute_dtype(p.dtype());
        let want = self.config.slots(p.shape());
        let have: Vec<&str> = st.keys().copied().collect();
        let mut want_names: Vec<&str> = want.iter().map(|s| s.name).collect();
        want_names.sort_unstable();
        if have != want_names {
            return Err(Error::invalid(
                R::NAME,
                format!(
                    "state of {name:?} has entries {have:?}, a parameter {:?} {} needs {want_names:?}",
                    p.shape(),
                    p.dtype()
                ),
            ));
        }
        for s in &want {
            let a = &st[s.name];
            if a.shape() != s.shape.as_slice() || a.dtype() != cd {
                return Err(Error::invalid(
                    R::NAME,
                    format!(
                        "state {name}.{}: {:?} {} does not fit parameter {:?} {} (needs {:?} {cd})",
                        s.name,
                        a.shape(),
                        a.dtype(),
                        p.shape(),
                        p.dtype(),
                        s.shape
                    ),
                ));
            }
        }
        Ok(())
    }

    fn check_pair(
        &self,
        name: &str,
        p: Option<&Array>,
        g: &Array,
        params: &BTreeMap<String, Array>,
    ) -> Result<()> {
        let Some(p) = p else {
            let known: Vec<&str> = params.keys().map(|s| s.as_str()).take(8).collect();
            return Err(Error::invalid(
                R::NAME,
                format!(
                    "gradient for unknown parameter {name:?} (parameters: {known:?}{})",
                    if params.len() > 8 { " ..." } else { "" }
                ),
            ));
        };
        if !p.dtype().is_float() {
            return Err(Error::invalid(
                R::NAME,
                format!(
                    "parameter {name:?} is {:?} {}, not real floating point",
                    p.shape(),
                    p.dtype()
                ),
            ));
        }
        if g.shape() != p.shape() || g.dtype() != p.dtype() {
            return Err(Error::invalid(
                R::NAME,
                format!(
                    "gradient of {name:?} is {:?} {}, the parameter is {:?} {}",
                    g.shape(),
                    g.dtype(),
                    p.shape(),
                    p.dtype()
                ),
            ));
        }
        if let Some(st) = self.state.get(name) {
            self.check_state(name, p, st)?;
        }
        Ok(())
    }
}

impl<R: UpdateRule> RuleOptimizer<R> {
    /// Checks an update with gradients `grads` of `params` (the hyperparameters, each
    /// gradient, its parameter and the parameter's stored state) and returns the learning
    /// rate it uses.
    fn check_step(
        &self,
        params: &BTreeMap<String, Array>,
        grads: &BTreeMap<String, Array>,
    ) -> Result<f64> {
        self.config.validate()?;
        for (name, g) in grads {
            self.check_pair(name, params.get(name), g, params)?;
        }
        let lr = self.lr.at(self.step);
        if !lr.is_finite() {
            return Err(Error::invalid(
                R::NAME,
                format!("learning rate {lr} at step {} is not finite", self.step),
            ));
        }
        Ok(lr)
    }

    /// The initial state entries of parameter `p`.
    fn initial_slots(&self, p: &Array) -> Result<SlotMap> {
        let cd = compute_dtype(p.dtype());
        let mut s = SlotMap::new();
        for slot in self.config.slots(p.shape()) {
            s.insert(slot.name, ingot::full(&slot.shape, slot.init, cd)?);
        }
        Ok(s)
    }

    /// `update_arrays` through a compiled function, as an eager step runs it: traced once
    /// per hyperparameters, parameter names, state entries, shapes and dtypes, then
    /// replayed, so each parameter's update is a few fused kernels rather than a dozen
    /// separate ops (a GPT-2 step's AdamW was about 1,800 of them, each launched on its
    /// own). `INGOT_DISABLE_COMPILE=1` runs it uncompiled.
    fn compiled_update(
        &self,
        params: &BTreeMap<String, Array>,
        grads: &BTreeMap<String, Array>,
        states: BTreeMap<String, (SlotMap, Array)>,
        lr: &Array,
        t: &Array,
    ) -> Result<UpdateOut> {
        // Each stepped parameter's name and entries: the layout of the flat inputs.
        let layout: Vec<(String, Vec<&'static str>)> = grads
            .keys()
            .map(|n| {
                let entries = states.get(n).map(|(st, _)| st.keys().copied().collect());
                (n.clone(), entries.unwrap_or_default())
            })
            .collect();
        let key = format!("{:?} {layout:?}", self.config);
        let mut inputs = Vec::new();
        for (name, entries) in &layout {
            let (st, fresh) = &states[name];
            inputs.push(params[name].clone());
            inputs.push(grads[name].clone());
            inputs.extend(entries.iter().map(|e| st[e].clone()));
            inputs.push(fresh.clone());
        }
        inputs.push(lr.clone());
        inputs.push(t.clone());
        drop(states);
        let compiled = {
            let mut slot = self.compiled.0.lock().unwrap_or_else(|e| e.into_inner());
            match &*slot {
                Some((k, c)) if *k == key => c.clone(),
                _ => {
                    let config = self.config.clone();
                    let lay = layout.clone();
                    let f: UpdateFn = Box::new(move |xs: &[Array]| {
                        let (params, grads, states, lr, t) = unflatten(&lay, xs);
                        let (new_p, new_s) =
                            update_arrays(&config, &params, &grads, states, &lr, &t)?;
                        let mut out = Vec::new();
                        for (name, entries) in &lay {
                            out.push(new_p[name].clone());
                            let st = &new_s[name];
                            if st.len() != entries.len() {
                                return Err(Error::invalid(
                                    R::NAME,
                                    format!("internal: the update of {name:?} changed its state entries"),
                                ));
                            }
                            out.extend(entries.iter().map(|e| st[e].clone()));
                        }
                        Ok(out)
                    });
                    let c = Arc::new(ingot::compile(f));
                    *slot = Some((key, c.clone()));
                    c
                }
            }
        };
        let outs = compiled.call(&inputs)?;
        drop(inputs);
        let mut outs = outs.into_iter();
        let mut new_params = BTreeMap::new();
        let mut new_state = BTreeMap::new();
        for (name, entries) in layout {
            let p = outs.next().expect("one output a parameter");
            let st: SlotMap = entries
                .iter()
                .map(|&e| (e, outs.next().expect("one output an entry")))
                .collect();
            new_params.insert(name.clone(), p);
            new_state.insert(name, st);
        }
        Ok((new_params, new_state))
    }

    /// "param.entry" split at the last '.', with the entry one this optimizer uses.
    fn split_entry<'k>(&self, key: &'k str) -> Option<(&'k str, &'static str)> {
        let sets = self.entry_sets();
        let (param, entry) = key.rsplit_once('.')?;
        sets.iter()
            .flatten()
            .find(|k| **k == entry)
            .map(|k| (param, *k))
    }
}

/// The update of every parameter of `grads` as a pure function of arrays: `states`
/// holds each one's state entries and fresh flag, `lr` and `t` are 0-d float64. Returns
/// the new parameters and state, unevaluated; nothing is checked or stored.
fn update_arrays<R: UpdateRule>(
    config: &R,
    params: &BTreeMap<String, Array>,
    grads: &BTreeMap<String, Array>,
    mut states: BTreeMap<String, (SlotMap, Array)>,
    lr: &Array,
    t: &Array,
) -> Result<UpdateOut> {
    let mut new_params = BTreeMap::new();
    let mut new_state = BTreeMap::new();
    let memo = Memo::default();
    for (name, g) in grads {
        let p = params.get(name).ok_or_else(|| {
            Error::invalid(R::NAME, format!("gradient for unknown parameter {name:?}"))
        })?;
        let (mut st, fresh) = states.remove(name).ok_or_else(|| {
            Error::invalid(R::NAME, format!("no state given for parameter {name:?}"))
        })?;
        let cd = compute_dtype(p.dtype());
        // An empty parameter has nothing to update (and means of it would be NaN).
        let out = if p.size() == 0 {
            p.clone()
        } else {
            let ctx = StepCtx {
                lr: lr.clone(),
                t: t.clone(),
                fresh,
                memo: memo.clone(),
            };
            let pc = ingot::astype(p, cd)?;
            let gc = ingot::astype(g, cd)?;
            let out = config
                .apply(&ctx, &pc, &gc, &mut st)
                .map_err(|e| Error::invalid(R::NAME, format!("parameter {name:?}: {e}")))?;
            ingot::astype(&out, p.dtype())?
        };
        new_params.insert(name.clone(), out);
        new_state.insert(name.clone(), st);
    }
    Ok((new_params, new_state))
}

/// New parameters and state by parameter name.
type UpdateOut = (BTreeMap<String, Array>, BTreeMap<String, SlotMap>);

/// The flat inputs of a compiled update (see `compiled_update`) as maps again.
#[allow(clippy::type_complexity)]
fn unflatten(
    layout: &[(String, Vec<&'static str>)],
    xs: &[Array],
) -> (
    BTreeMap<String, Array>,
    BTreeMap<String, Array>,
    BTreeMap<String, (SlotMap, Array)>,
    Array,
    Array,
) {
    let (mut params, mut grads, mut states) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    let mut at = 0;
    for (name, entries) in layout {
        params.insert(name.clone(), xs[at].clone());
        grads.insert(name.clone(), xs[at + 1].clone());
        at += 2;
        let st: SlotMap = entries
            .iter()
            .zip(&xs[at..])
            .map(|(&e, a)| (e, a.clone()))
            .collect();
        at += entries.len();
        states.insert(name.clone(), (st, xs[at].clone()));
        at += 1;
    }
    (params, grads, states, xs[at].clone(), xs[at + 1].clone())
}

/// An optimizer whose update is a pure function of arrays, so that it can run inside a
/// compiled training step ([`crate::train::TrainStep`]): the state it reads and writes, the
/// per-parameter "fresh" flags, the learning rate and the step number are all arrays (the
/// compiled program's inputs and outputs). Every [`RuleOptimizer`] is one; a boxed
/// `dyn Optimizer` is not.
pub trait FunctionalOptimizer: Optimizer {
    /// Checks that an update of every parameter of `params` can run (the hyperparameters, a
    /// finite learning rate, real floating parameters, stored state that fits them) and
    /// returns what it reads: the state entries by "param.entry" name (as
    /// [`Optimizer::state`], without "step") for every parameter of `params`, the stored
    /// arrays or, for a parameter without state, its initial ones; and each parameter's
    /// fresh flag (true when its state is initial: the update is its first). Nothing
    /// changes.
    fn update_inputs(
        &self,
        params: &BTreeMap<String, Array>,
    ) -> Result<(BTreeMap<String, Array>, BTreeMap<String, bool>)>;

    /// The update of every parameter of `grads` as a pure function: the new parameters and
    /// the new state entries (by "param.entry" name). `state` and `fresh` (0-d bool arrays)
    /// are as [`FunctionalOptimizer::update_inputs`] returns them, `lr` and `t` are 0-d
    /// float64 arrays (the learning rate and the update's number, 1 for the first); any of
    /// them may be placeholders of a trace. Nothing is checked (call `update_inputs` first),
    /// evaluated or stored.
    fn update_pure(
        &self,
        params: &BTreeMap<String, Array>,
        grads: &BTreeMap<String, Array>,
        state: &BTreeMap<String, Array>,
        fresh: &BTreeMap<String, Array>,
        lr: &Array,
        t: &Array,
    ) -> Result<(BTreeMap<String, Array>, BTreeMap<String, Array>)>;

    /// Ends an update made with [`FunctionalOptimizer::update_pure`]: stores its new state
    /// entries (each parameter's replace that parameter's) and sets the step count. An
    /// entry name this optimizer does not use is an error, and nothing changes.
    fn commit_update(&mut self, state: &BTreeMap<String, Array>, step: u64) -> Result<()>;
}

impl<R: UpdateRule> FunctionalOptimizer for RuleOptimizer<R> {
    fn update_inputs(
        &self,
        params: &BTreeMap<String, Array>,
    ) -> Result<(BTreeMap<String, Array>, BTreeMap<String, bool>)> {
        // Each parameter stands in for its own gradient: that checks the parameter alone.
        self.check_step(params, params)?;
        let mut state = BTreeMap::new();
        let mut fresh = BTreeMap::new();
        for (name, p) in params {
            let (st, is_new) = match self.state.get(name) {
                Some(s) => (s.clone(), false),
                None => (self.initial_slots(p)?, true),
            };
            for (entry, a) in st {
                state.insert(format!("{name}.{entry}"), a);
            }
            fresh.insert(name.clone(), is_new);
        }
        Ok((state, fresh))
    }

    fn update_pure(
        &self,
        params: &BTreeMap<String, Array>,
        grads: &BTreeMap<String, Array>,
        state: &BTreeMap<String, Array>,
        fresh: &BTreeMap<String, Array>,
        lr: &Array,
        t: &Array,
    ) -> Result<(BTreeMap<String, Array>, BTreeMap<String, Array>)> {
        let mut states: BTreeMap<String, (SlotMap, Array)> = BTreeMap::new();
        for name in grads.keys() {
            let f = fresh.get(name).cloned().ok_or_else(|| {
                Error::invalid(R::NAME, format!("no fresh flag for parameter {name:?}"))
            })?;
            states.insert(name.clone(), (SlotMap::new(), f));
        }
        for (key, a) in state {
            let Some((param, entry)) = self.split_entry(key) else {
                return Err(Error::invalid(
                    R::NAME,
                    format!("unexpected state entry {key:?}"),
                ));
            };
            if let Some((st, _)) = states.get_mut(param) {
                st.insert(entry, a.clone());
            }
        }
        let (new_params, new_state) = update_arrays(&self.config, params, grads, states, lr, t)?;
        let mut flat = BTreeMap::new();
        for (name, st) in new_state {
            for (entry, a) in st {
                flat.insert(format!("{name}.{entry}"), a);
            }
        }
        Ok((new_params, flat))
    }

    fn commit_update(&mut self, state: &BTreeMap<String, Array>, step: u64) -> Result<()> {
        let mut new: BTreeMap<String, SlotMap> = BTreeMap::new();
        for (key, a) in state {
            let Some((param, entry)) = self.split_entry(key) else {
                return Err(Error::invalid(
                    R::NAME,
                    format!("commit_update: unexpected state entry {key:?}"),
                ));
            };
            new.entry(param.to_string())
                .or_default()
                .insert(entry, a.clone());
        }
        self.state.extend(new);
        self.step = step;
        Ok(())
    }
}

impl<R: UpdateRule> Optimizer for RuleOptimizer<R> {
    fn name(&self) -> &str {
        R::NAME
    }

    fn step_count(&self) -> u64 {
        self.step
    }

    fn learning_rate(&self) -> f64 {
        self.lr.at(self.step)
    }

    fn set_learning_rate(&mut self, lr: Schedule) {
        self.lr = lr;
    }

    fn step(
        &mut self,
        params: &BTreeMap<String, Array>,
        grads: &BTreeMap<String, Array>,
    ) -> Result<BTreeMap<String, Array>> {
        let lr = self.check_step(params, grads)?;
        let t = self.step + 1;
        let mut states = BTreeMap::new();
        for name in grads.keys() {
            let st = match self.state.get(name) {
                Some(s) => (s.clone(), Array::scalar(false)),
                None => (self.initial_slots(&params[name])?, Array::scalar(true)),
            };
            states.insert(name.clone(), st);
        }
        let ctx_lr = Array::scalar(lr);
        let ctx_t = Array::scalar(t as f64);
        let (new_params, new_state) =
            self.compiled_update(params, grads, states, &ctx_lr, &ctx_t)?;
        let mut all: Vec<Array> = new_params.values().cloned().collect();
        for st in new_state.values() {
            all.extend(st.values().cloned());
        }
        ingot::eval(&all)?;
        self.state.extend(new_state);
        self.step = t;
        Ok(new_params)
    }

    fn state(&self) -> BTreeMap<String, Array> {
        let mut out = BTreeMap::new();
        for (name, st) in &self.state {
            for (entry, a) in st {
                out.insert(format!("{name}.{entry}"), a.clone());
            }
        }
        out.insert("step".to_string(), Array::scalar(self.step));
        out
    }

    fn load_state(&mut self, state: &BTreeMap<String, Array>) -> Result<()> {
        let Some(step) = state.get("step") else {
            return Err(Error::invalid(
                R::NAME,
                "load_state: the state has no \"step\" entry",
            ));
        };
        let kind = step.dtype().kind();
        if step.ndim() != 0 || !matches!(kind, ingot::Kind::Int | ingot::Kind::UInt) {
            return Err(Error::invalid(
                R::NAME,
                format!(
                    "load_state: \"step\" must be an integer scalar, got {:?} {}",
                    step.shape(),
                    step.dtype()
                ),
            ));
        }
        let step_val = if kind == ingot::Kind::UInt {
            ingot::astype(step, DType::U64)?.item::<u64>()?
        } else {
            let v = ingot::astype(step, DType::I64)?.item::<i64>()?;
            u64::try_from(v).map_err(|_| {
                Error::invalid(R::NAME, format!("load_state: \"step\" is negative ({v})"))
            })?
        };
        let sets = self.entry_sets();
        let mut known: Vec<&'static str> = sets.iter().flatten().copied().collect();
        known.sort_unstable();
        known.dedup();
        let mut new: BTreeMap<String, SlotMap> = BTreeMap::new();
        for (key, a) in state {
            if key == "step" {
                continue;
            }
            let entry = key
                .rsplit_once('.')
                .and_then(|(p, e)| known.iter().find(|k| **k == e).map(|k| (p, *k)));
            let Some((param, entry)) = entry else {
                return Err(Error::invalid(
                    R::NAME,
                    format!("load_state: unexpected entry {key:?} (entries are \"param.X\" with X one of {known:?})"),
                ));
            };
            if !a.dtype().is_float() {
                return Err(Error::invalid(
                    R::NAME,
                    format!(
                        "load_state: {key} is {:?} {}, not floating point",
                        a.shape(),
                        a.dtype()
                    ),
                ));
            }
            new.entry(param.to_string())
                .or_default()
                .insert(entry, a.clone());
        }
        for (param, st) in &new {
            let have: Vec<&'static str> = st.keys().copied().collect();
            if !sets.contains(&have) {
                return Err(Error::invalid(
                    R::NAME,
                    format!("load_state: {param:?} has entries {have:?}, expected one of {sets:?}"),
                ));
            }
        }
        self.state = new;
        self.step = step_val;
        Ok(())
    }

    fn reset(&mut self) {
        self.state.clear();
        self.step = 0;
    }
}

// ---- helpers for update rules --------------------------------------------------------------

/// `a * x + b * y`.
pub(crate) fn axpby(a: f64, x: &Array, b: f64, y: &Array) -> Result<Array> {
    ingot::add(ingot::multiply(x, a)?, ingot::multiply(y, b)?)
}

/// `x + a * y` (`torch.add(x, y, alpha=a)`).
pub(crate) fn add_scaled(x: &Array, a: f64, y: &Array) -> Result<Array> {
    ingot::add(x, ingot::multiply(y, a)?)
}

/// `x * s` for a 0-d float64 `s` computed from the step's arrays, rounded once to `x`'s
/// dtype first (as a host number would be).
pub(crate) fn scale_by(x: &Array, s: &Array) -> Result<Array> {
    ingot::multiply(x, ingot::astype(s, x.dtype())?)
}

/// `x + s * y` for a 0-d float64 `s` (see [`scale_by`]).
pub(crate) fn add_scaled_by(x: &Array, s: &Array, y: &Array) -> Result<Array> {
    ingot::add(x, scale_by(y, s)?)
}

/// `g + weight_decay * p`: the coupled (L2) weight decay of a gradient; `g` when
/// `weight_decay` is 0.
pub(crate) fn with_l2(g: &Array, p: &Array, weight_decay: f64) -> Result<Array> {
    if weight_decay != 0.0 {
        add_scaled(g, weight_decay, p)
    } else {
        Ok(g.clone())
    }
}

/// `p * (1 - lr * weight_decay)`: decoupled weight decay (AdamW's); `p` when
/// `weight_decay` is 0.
pub(crate) fn decoupled_decay(ctx: &StepCtx, p: &Array, weight_decay: f64) -> Result<Array> {
    if weight_decay != 0.0 {
        let f = ctx.decay_factor(weight_decay)?;
        let key = format!("decay_factor {weight_decay:e}");
        ingot::multiply(p, ctx.shared_as(&key, &f, p.dtype())?)
    } else {
        Ok(p.clone())
    }
}

/// `beta * state[name] + (1 - beta) * x`: the next value of a moving average kept in the
/// state entry `name` (not stored).
pub(crate) fn ema(state: &SlotMap, name: &'static str, beta: f64, x: &Array) -> Result<Array> {
    axpby(beta, &slot(state, name)?, 1.0 - beta, x)
}

/// The entry `name` of `state` (present by construction; an error rather than a panic if a
/// loaded state lacks it).
pub(crate) fn slot(state: &SlotMap, name: &'static str) -> Result<Array> {
    state
        .get(name)
        .cloned()
        .ok_or_else(|| Error::invalid("optimizer state", format!("no entry {name:?}")))
}

/// Checks that a hyperparameter is finite and at least `min`.
pub(crate) fn check_min(op: &str, what: &str, v: f64, min: f64) -> Result<()> {
    if v.is_finite() && v >= min {
        Ok(())
    } else {
        Err(Error::invalid(
            op,
            format!("{what} must be >= {min}, got {v}"),
        ))
    }
}

/// Checks that a hyperparameter lies in `[0, 1)`.
pub(crate) fn check_unit(op: &str, what: &str, v: f64) -> Result<()> {
    if (0.0..1.0).contains(&v) {
        Ok(())
    } else {
        Err(Error::invalid(
            op,
            format!("{what} must be in [0, 1), got {v}"),
        ))
    }
}

// Optimizers move between threads (data-parallel training): keep them Send and Sync.
const _: fn() = || {
    fn check<T: Send + Sync>() {}
    check::<RuleOptimizer<AdamWConfig>>();
};
