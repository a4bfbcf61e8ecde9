//! Compiled training steps: the forward pass, the backward pass and the optimizer update
//! traced once into one program (ingot's [`ingot::compile`]) and replayed at every later
//! step of the same shapes, with the model's arrays and the optimizer's state replaced by
//! the program's outputs after each step.
//!
//! The program's inputs are everything that changes from step to step: every array of the
//! model (trainable parameters, frozen parameters and buffers), the optimizer's state
//! entries and per-parameter "fresh" flags (initial state is created before the step, so
//! the first step and later ones share one program), the learning rate and the update
//! number as 0-d float64 arrays (so schedules and bias corrections follow the step), the
//! shared random state ([`crate::rng`]), and the batch. Its outputs are the loss, the new
//! trainable parameters, the new buffers (batch norm's running statistics), the new
//! optimizer state and the new random state. What the trace reads from anywhere else is
//! fixed at the step it was traced at: the model's structure and mode (train or eval), the
//! optimizer's hyperparameters, and arrays the loss closure captured. Mutable access
//! through [`TrainStep::model_mut`] and [`TrainStep::optimizer_mut`] therefore drops the
//! compiled program (the next step traces again); [`TrainStep::set_learning_rate`] does
//! not need to.
//!
//! The shared random state is process-wide: while a step traces, it holds the trace's
//! placeholder, so other threads must not draw from it then. A step whose model draws
//! nothing leaves it as it was. With `INGOT_DISABLE_COMPILE=1`
//! ([`ingot::transforms::DISABLE_ENV`]) the step runs uncompiled, through the same
//! function.
//!
//! A compiled step computes what [`crate::value_and_grad`] followed by
//! [`crate::Optimizer::update`] computes, op for op: on the CPU the losses, parameters and
//! state agree bit for bit with the eager loop (tests/train.rs checks SGD, Adam, AdamW,
//! Lion and RMSprop, with a schedule, dropout and batch norm).
//!
//! ```
//! use ingot::DType;
//! use ingot_nn::optim::Adam;
//! use ingot_nn::{Linear, TrainStep, Unary};
//! let model = Linear::with(3, 1, true, &ingot_nn::rng::key(0), DType::F32)?;
//! let mut step = TrainStep::new(model, Adam::new(1e-2), |m: &Linear, batch: &[ingot::Array]| {
//!     let err = ingot::subtract(m.forward(&batch[0])?, &batch[1])?;
//!     ingot::mean(&ingot::square(&err)?, None, false)
//! });
//! let x = ingot::ones(&[4, 3], DType::F32)?;
//! let y = ingot::zeros(&[4, 1], DType::F32)?;
//! for _ in 0..3 {
//!     let loss = step.step(&[x.clone(), y.clone()])?;
//!     let _ = loss.item::<f32>()?;
//! }
//! assert_eq!(step.stats().traces, 1);
//! assert_eq!(step.stats().hits, 2);
//! # Ok::<(), ingot::Error>(())
//! ```

use crate::module::{value_and_grad, Module, ModuleExt, Role};
use crate::optim::FunctionalOptimizer;
use crate::rng;
use crate::schedule::Schedule;
use ingot::transforms::{compile_with, CompileOptions, CompileStats, Compiled};
use ingot::{Array, Error, Result};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

type StepFn<'a> = Box<dyn Fn(&[Array]) -> Result<Vec<Array>> + 'a>;
type LossFn<'a, M> = Rc<dyn Fn(&M, &[Array]) -> Result<Array> + 'a>;

/// What a program was traced for, beyond the shapes and dtypes its cache is keyed by: the
/// model's array names and roles, the optimizer's state entry names, the batch's length.
#[derive(Clone, Debug, PartialEq)]
struct Layout {
    arrays: Vec<(String, Role)>,
    state: Vec<String>,
    batch: usize,
}

impl Layout {
    fn names(&self, role: Role) -> impl Iterator<Item = &String> {
        self.arrays
            .iter()
            .filter(move |(_, r)| *r == role)
            .map(|(n, _)| n)
    }
    fn count(&self, role: Role) -> usize {
        self.names(role).count()
    }
}

struct Program<'a> {
    layout: Layout,
    compiled: Compiled<StepFn<'a>>,
    /// Whether the traced step drew from the shared random state (set while tracing).
    uses_rng: Rc<Cell<bool>>,
}

/// A compiled training step over a model `M`, an optimizer `O` and a loss closure, which
/// it owns (see the module docs for what is an input of the compiled program and what is
/// fixed at tracing).
///
/// The loss closure gets the model and the batch (the arrays passed to
/// [`TrainStep::step`]) and returns a real scalar. Batches of a new shape trace a new
/// program (a smaller last batch costs one trace); [`TrainStep::stats`] counts traces and
/// replays.
pub struct TrainStep<'a, M, O> {
    parts: Option<(M, O)>,
    /// The model and optimizer while a step runs, where the traced function finds them.
    slot: Rc<RefCell<Option<(M, O)>>>,
    loss: LossFn<'a, M>,
    options: CompileOptions,
    program: Option<Program<'a>>,
    /// Counters of programs dropped since (layout changes, mutable access).
    past: CompileStats,
}

impl<'a, M, O> TrainStep<'a, M, O>
where
    M: Module + 'a,
    O: FunctionalOptimizer + 'a,
{
    /// A compiled step with ingot's default compile options (simplification and fusion).
    pub fn new<L>(model: M, optimizer: O, loss: L) -> Self
    where
        L: Fn(&M, &[Array]) -> Result<Array> + 'a,
    {
        Self::with_options(model, optimizer, loss, CompileOptions::default())
    }

    /// A compiled step with these compile options. `shapeless` is allowed but keeps values
    /// the loss computed from shapes (a mean's 1 / n) as traced, so it suits only losses
    /// that compute none.
    pub fn with_options<L>(model: M, optimizer: O, loss: L, options: CompileOptions) -> Self
    where
        L: Fn(&M, &[Array]) -> Result<Array> + 'a,
    {
        TrainStep {
            parts: Some((model, optimizer)),
            slot: Rc::new(RefCell::new(None)),
            loss: Rc::new(loss),
            options,
            program: None,
            past: CompileStats::default(),
        }
    }

    fn parts(&self) -> &(M, O) {
        self.parts
            .as_ref()
            .expect("TrainStep: the model and optimizer are lost (a step panicked)")
    }

    fn parts_mut(&mut self) -> &mut (M, O) {
        self.parts
            .as_mut()
            .expect("TrainStep: the model and optimizer are lost (a step panicked)")
    }

    /// The model.
    pub fn model(&self) -> &M {
        &self.parts().0
    }

    /// The optimizer.
    pub fn optimizer(&self) -> &O {
        &self.parts().1
    }

    /// The model, open to change; drops the compiled program (the next step traces again,
    /// as a change of structure or mode would make the trace stale).
    pub fn model_mut(&mut self) -> &mut M {
        self.invalidate();
        &mut self.parts_mut().0
    }

    /// The optimizer, open to change; drops the compiled program (hyperparameters are
    /// constants of the trace).
    pub fn optimizer_mut(&mut self) -> &mut O {
        self.invalidate();
        &mut self.parts_mut().1
    }

    /// Replaces the optimizer's learning-rate schedule. The learning rate is an input of
    /// the compiled program, so this keeps it.
    pub fn set_learning_rate(&mut self, lr: impl Into<Schedule>) {
        self.parts_mut().1.set_learning_rate(lr.into());
    }

    /// The model and optimizer back.
    pub fn into_parts(mut self) -> (M, O) {
        self.parts
            .take()
            .expect("TrainStep: the model and optimizer are lost (a step panicked)")
    }

    /// Drops the compiled program: the next step traces again.
    pub fn invalidate(&mut self) {
        if let Some(p) = self.program.take() {
            let s = p.compiled.stats();
            self.past.traces += s.traces;
            self.past.hits += s.hits;
        }
    }

    /// Traces (calls that ran the model, loss and optimizer to trace them) and hits (calls
    /// replayed from a trace), over every program this step has had.
    pub fn stats(&self) -> CompileStats {
        let mut s = self.past;
        if let Some(p) = &self.program {
            let c = p.compiled.stats();
            s.traces += c.traces;
            s.hits += c.hits;
        }
        s
    }

    /// One training step on `batch`: the loss (evaluated) of the model before the update.
    /// Afterwards the model holds the new parameters and buffers, the optimizer the new
    /// state and a step count one higher, and the shared random state has moved on as the
    /// eager step would have moved it. On an error nothing changes.
    pub fn step(&mut self, batch: &[Array]) -> Result<Array> {
        let (model, opt) = self.parts();
        let arrays = model.parameters();
        let roles = model.roles();
        let trainable: BTreeMap<String, Array> = arrays
            .iter()
            .filter(|(n, _)| roles[*n] == Role::Trainable)
            .map(|(n, a)| (n.clone(), a.clone()))
            .collect();
        let (state, fresh) = opt.update_inputs(&trainable)?;
        let lr = opt.learning_rate();
        let t = opt.step_count() + 1;
        let layout = Layout {
            arrays: arrays.keys().map(|n| (n.clone(), roles[n])).collect(),
            state: state.keys().cloned().collect(),
            batch: batch.len(),
        };
        if self.program.as_ref().is_some_and(|p| p.layout != layout) {
            self.invalidate();
        }
        if self.program.is_none() {
            self.program = Some(self.build(layout));
        }
        let key = rng::state();
        let mut inputs: Vec<Array> = arrays.values().cloned().collect();
        inputs.extend(state.values().cloned());
        inputs.extend(trainable.keys().map(|n| Array::scalar(fresh[n])));
        inputs.push(Array::scalar(lr));
        inputs.push(Array::scalar(t as f64));
        inputs.push(key);
        inputs.extend(batch.iter().cloned());

        let program = self.program.as_ref().expect("built above");
        // The traced function finds the model and optimizer in the slot while it runs.
        *self.slot.borrow_mut() = self.parts.take();
        let result = program.compiled.call(&inputs);
        self.parts = self.slot.borrow_mut().take();
        let outs = result?;
        ingot::eval(&outs)?;

        let layout = &program.layout;
        let n_train = layout.count(Role::Trainable);
        let n_buf = layout.count(Role::Buffer);
        let n_state = layout.state.len();
        if outs.len() != 2 + n_train + n_buf + n_state {
            return Err(Error::invalid(
                "TrainStep",
                format!("internal: the program returned {} outputs", outs.len()),
            ));
        }
        let loss = outs[0].clone();
        let mut at = 1;
        let mut new_arrays = BTreeMap::new();
        for name in layout
            .names(Role::Trainable)
            .chain(layout.names(Role::Buffer))
        {
            new_arrays.insert(name.clone(), outs[at].clone());
            at += 1;
        }
        let new_state: BTreeMap<String, Array> = layout
            .state
            .iter()
            .cloned()
            .zip(outs[at..at + n_state].iter().cloned())
            .collect();
        let new_key = outs[at + n_state].clone();
        let uses_rng = program.uses_rng.get();
        let (model, opt) = self.parts_mut();
        model.update(&new_arrays)?;
        opt.commit_update(&new_state, t)?;
        if uses_rng {
            rng::set_state(new_key)?;
        }
        Ok(loss)
    }

    /// The compiled program for `layout`.
    fn build(&self, layout: Layout) -> Program<'a> {
        let slot = self.slot.clone();
        let loss = self.loss.clone();
        let uses_rng = Rc::new(Cell::new(false));
        let (lay, used) = (layout.clone(), uses_rng.clone());
        let f: StepFn<'a> = Box::new(move |xs: &[Array]| {
            let mut guard = slot.borrow_mut();
            let (model, opt) = guard.as_mut().ok_or_else(|| {
                Error::invalid("TrainStep", "internal: the program traced outside a step")
            })?;
            traced_step(model, opt, &*loss, &lay, xs, &used)
        });
        Program {
            layout,
            compiled: compile_with(f, self.options),
            uses_rng,
        }
    }
}

/// The step as a function of the program's inputs (see the module docs for their order),
/// run on the placeholders of a trace. The model and the shared random state are put back
/// as they were, whatever happens.
fn traced_step<M: Module, O: FunctionalOptimizer>(
    model: &mut M,
    opt: &O,
    loss: &dyn Fn(&M, &[Array]) -> Result<Array>,
    layout: &Layout,
    xs: &[Array],
    uses_rng: &Cell<bool>,
) -> Result<Vec<Array>> {
    let n_arr = layout.arrays.len();
    let n_state = layout.state.len();
    let n_train = layout.count(Role::Trainable);
    let fixed = n_arr + n_state + n_train + 3;
    if xs.len() != fixed + layout.batch {
        return Err(Error::invalid(
            "TrainStep",
            format!("internal: the program got {} inputs", xs.len()),
        ));
    }
    let stand: BTreeMap<String, Array> = layout
        .arrays
        .iter()
        .map(|(n, _)| n.clone())
        .zip(xs[..n_arr].iter().cloned())
        .collect();
    let state: BTreeMap<String, Array> = layout
        .state
        .iter()
        .cloned()
        .zip(xs[n_arr..n_arr + n_state].iter().cloned())
        .collect();
    let fresh: BTreeMap<String, Array> = layout
        .names(Role::Trainable)
        .cloned()
        .zip(
            xs[n_arr + n_state..n_arr + n_state + n_train]
                .iter()
                .cloned(),
        )
        .collect();
    let at = n_arr + n_state + n_train;
    let (lr, t, key) = (&xs[at], &xs[at + 1], &xs[at + 2]);
    let batch = &xs[fixed..];

    let originals = model.parameters();
    let key_before = rng::state();
    model.update(&stand)?;
    let run = (|| -> Result<Vec<Array>> {
        rng::set_state(key.clone())?;
        let (value, grads) = value_and_grad(&mut *model, |m: &M| loss(m, batch))?;
        let key_after = rng::state();
        uses_rng.set(!key_after.same_node(key));
        let after = model.parameters();
        let params: BTreeMap<String, Array> = layout
            .names(Role::Trainable)
            .map(|n| (n.clone(), stand[n].clone()))
            .collect();
        let (new_params, new_state) = opt.update_pure(&params, &grads, &state, &fresh, lr, t)?;
        if new_state.keys().ne(layout.state.iter()) {
            return Err(Error::invalid(
                "TrainStep",
                format!(
                    "the optimizer returned state entries {:?}, expected {:?}",
                    new_state.keys().collect::<Vec<_>>(),
                    layout.state
                ),
            ));
        }
        let mut outs = vec![value];
        for n in layout.names(Role::Trainable) {
            outs.push(new_params[n].clone());
        }
        for n in layout.names(Role::Buffer) {
            outs.push(after[n].clone());
        }
        outs.extend(new_state.into_values());
        outs.push(key_after);
        Ok(outs)
    })();
    let restored = model.update(&originals);
    rng::set_state(key_before)?;
    let outs = run?;
    restored?;
    Ok(outs)
}
