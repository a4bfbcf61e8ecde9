//! Recurrent layers with PyTorch's parameter names, shapes, gate order and initialization:
//! [`RNN`] (tanh or relu), [`GRU`] (gates r, z, n with `n = tanh(W_in x + b_in + r * (W_hn h
//! + b_hn))`), [`LSTM`] (gates i, f, g, o), stacked (`num_layers`, names `weight_ih_l0`,
//! `weight_ih_l1`, ...) and optionally bidirectional (`weight_ih_l0_reverse`), and the
//! single-step [`RNNCell`], [`GRUCell`] and [`LSTMCell`] (`weight_ih`, `weight_hh`,
//! `bias_ih`, `bias_hh`). Every parameter starts `U(-1/sqrt(hidden), 1/sqrt(hidden))`.
//!
//! Sequences are time-major `(L, N, input)` by default, as PyTorch (`batch_first: false`);
//! `batch_first` takes `(N, L, input)`. An unbatched `(L, input)` sequence is accepted too.
//! The inherent `forward(x, state)` returns `(output sequence, final state)`; the [`Unary`]
//! `forward(x)` (call it as `Unary::forward(&layer, &x)`) starts from zeros and returns the
//! output sequence only, so a recurrent layer can sit in a `Sequential`.

use super::params::{affine, check_float, default_bound, unbatch, uniform_init};
use crate::module::{Module, Param, Unary};
use crate::rng;
use ingot::{Array, DType, Error, Result, SplitSpec};

/// The activation of a plain [`RNN`] / [`RNNCell`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nonlinearity {
    Tanh,
    Relu,
}

/// Which recurrence: decides the number of gates and the step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Rnn(Nonlinearity),
    Gru,
    Lstm,
}

impl Kind {
    fn gates(self) -> usize {
        match self {
            Kind::Rnn(_) => 1,
            Kind::Gru => 3,
            Kind::Lstm => 4,
        }
    }
}

/// The weights of one cell (one layer and direction of a stack): `weight_ih (gates *
/// hidden, input)`, `weight_hh (gates * hidden, hidden)`, `bias_ih` and `bias_hh (gates *
/// hidden,)`, the gates stacked in PyTorch's order.
#[derive(Clone, Debug)]
pub struct RecurrentWeights {
    pub weight_ih: Param,
    pub weight_hh: Param,
    pub bias_ih: Option<Param>,
    pub bias_hh: Option<Param>,
}

impl RecurrentWeights {
    fn init(
        gates: usize,
        input: usize,
        hidden: usize,
        bias: bool,
        key: &Array,
        dtype: DType,
    ) -> Result<RecurrentWeights> {
        let bound = default_bound(hidden);
        let keys = ingot::random::split(key, 4)?;
        let u = |i: usize, shape: &[usize]| -> Result<Param> {
            let k = ingot::random::key_at(&keys, i)?;
            Ok(Param::new(uniform_init(&k, shape, bound, dtype)?))
        };
        let g = gates * hidden;
        Ok(RecurrentWeights {
            weight_ih: u(0, &[g, input])?,
            weight_hh: u(1, &[g, hidden])?,
            bias_ih: if bias { Some(u(2, &[g])?) } else { None },
            bias_hh: if bias { Some(u(3, &[g])?) } else { None },
        })
    }

    fn visit(&self, suffix: &str, f: &mut dyn FnMut(&str, &Param)) {
        f(&format!("weight_ih{suffix}"), &self.weight_ih);
        f(&format!("weight_hh{suffix}"), &self.weight_hh);
        if let Some(b) = &self.bias_ih {
            f(&format!("bias_ih{suffix}"), b);
        }
        if let Some(b) = &self.bias_hh {
            f(&format!("bias_hh{suffix}"), b);
        }
    }

    fn visit_mut(&mut self, suffix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        f(&format!("weight_ih{suffix}"), &mut self.weight_ih);
        f(&format!("weight_hh{suffix}"), &mut self.weight_hh);
        if let Some(b) = &mut self.bias_ih {
            f(&format!("bias_ih{suffix}"), b);
        }
        if let Some(b) = &mut self.bias_hh {
            f(&format!("bias_hh{suffix}"), b);
        }
    }

    fn hidden(&self) -> usize {
        self.weight_hh.value.shape()[1]
    }

    fn input(&self) -> usize {
        self.weight_ih.value.shape()[1]
    }

    /// `x W_ih^T + b_ih` for `x (..., input)`: the input half of every gate.
    fn input_part(&self, x: &Array) -> Result<Array> {
        affine(x, &self.weight_ih, self.bias_ih.as_ref())
    }

    /// `h W_hh^T + b_hh`: the hidden half of every gate.
    fn hidden_part(&self, h: &Array) -> Result<Array> {
        affine(h, &self.weight_hh, self.bias_hh.as_ref())
    }

    /// One step from the input part `xp (B, gates * hidden)`, state `h` (and `c` for an
    /// LSTM): the new `h` (and `c`).
    fn step(
        &self,
        kind: Kind,
        xp: &Array,
        h: &Array,
        c: Option<&Array>,
    ) -> Result<(Array, Option<Array>)> {
        let hp = self.hidden_part(h)?;
        match kind {
            Kind::Rnn(act) => {
                let pre = ingot::add(xp, &hp)?;
                let h = match act {
                    Nonlinearity::Tanh => ingot::tanh(&pre)?,
                    Nonlinearity::Relu => ingot::maximum(&pre, 0.0)?,
                };
                Ok((h, None))
            }
            Kind::Gru => {
                let xs = ingot::split(xp, SplitSpec::Sections(3), -1)?;
                let hs = ingot::split(&hp, SplitSpec::Sections(3), -1)?;
                let r = ingot::sigmoid(&ingot::add(&xs[0], &hs[0])?)?;
                let z = ingot::sigmoid(&ingot::add(&xs[1], &hs[1])?)?;
                let n = ingot::tanh(&ingot::add(&xs[2], &ingot::multiply(&r, &hs[2])?)?)?;
                // h' = (1 - z) * n + z * h = n + z * (h - n)
                let h = ingot::add(&n, &ingot::multiply(&z, &ingot::subtract(h, &n)?)?)?;
                Ok((h, None))
            }
            Kind::Lstm => {
                let pre = ingot::add(xp, &hp)?;
                let gs = ingot::split(&pre, SplitSpec::Sections(4), -1)?;
                let i = ingot::sigmoid(&gs[0])?;
                let f = ingot::sigmoid(&gs[1])?;
                let g = ingot::tanh(&gs[2])?;
                let o = ingot::sigmoid(&gs[3])?;
                let c =
                    c.ok_or_else(|| Error::invalid("LSTM", "an LSTM step needs a cell state"))?;
                let c = ingot::add(&ingot::multiply(&f, c)?, &ingot::multiply(&i, &g)?)?;
                let h = ingot::multiply(&o, &ingot::tanh(&c)?)?;
                Ok((h, Some(c)))
            }
        }
    }
}

// ---- cells ----------------------------------------------------------------------------------

/// Checks a cell's input `(B, input)` or `(input,)` and state; returns them batched and
/// whether the input was.
fn cell_inputs(
    name: &str,
    w: &RecurrentWeights,
    x: &Array,
    states: &[Option<&Array>],
) -> Result<(Array, Vec<Array>, bool)> {
    let (inp, hid) = (w.input(), w.hidden());
    let batched = match x.ndim() {
        2 => true,
        1 => false,
        _ => {
            return Err(Error::invalid(
                name,
                format!(
                    "input must be (batch, {inp}) or ({inp},), got {:?} {}",
                    x.shape(),
                    x.dtype()
                ),
            ))
        }
    };
    if x.shape()[x.ndim() - 1] != inp || !x.dtype().is_float() {
        return Err(Error::invalid(
            name,
            format!(
                "input {:?} {} must be floating and end in {inp} features (weight_ih {:?})",
                x.shape(),
                x.dtype(),
                w.weight_ih.value.shape()
            ),
        ));
    }
    let xb = if batched {
        x.clone()
    } else {
        ingot::expand_dims(x, &[0])?
    };
    let b = xb.shape()[0];
    let mut out = Vec::with_capacity(states.len());
    for s in states {
        match s {
            None => out.push(ingot::zeros(&[b, hid], w.weight_hh.value.dtype())?),
            Some(s) => {
                let want: Vec<usize> = if batched { vec![b, hid] } else { vec![hid] };
                if s.shape() != want {
                    return Err(Error::invalid(
                        name,
                        format!(
                            "state {:?} does not fit input {:?}: want {want:?}",
                            s.shape(),
                            x.shape()
                        ),
                    ));
                }
                out.push(if batched {
                    (*s).clone()
                } else {
                    ingot::expand_dims(s, &[0])?
                });
            }
        }
    }
    Ok((xb, out, batched))
}

/// One cell step of `kind` (named `name` in errors) on `x (B, input)` or `(input,)` from
/// `states` (`[h]`, or `[h, c]` for an LSTM; None: zeros): the next `h` (and `c`), shaped
/// as the input is batched.
fn cell_step(
    name: &str,
    kind: Kind,
    w: &RecurrentWeights,
    x: &Array,
    states: &[Option<&Array>],
) -> Result<(Array, Option<Array>)> {
    let (xb, s, batched) = cell_inputs(name, w, x, states)?;
    let xp = w.input_part(&xb)?;
    let (h, c) = w.step(kind, &xp, &s[0], s.get(1))?;
    Ok((
        unbatch(h, batched)?,
        c.map(|c| unbatch(c, batched)).transpose()?,
    ))
}

macro_rules! cell_module {
    ($t:ident) => {
        impl Module for $t {
            fn visit(&self, f: &mut dyn FnMut(&str, &Param)) {
                self.weights.visit("", f);
            }
            fn visit_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
                self.weights.visit_mut("", f);
            }
        }
    };
}

/// `h' = act(W_ih x + b_ih + W_hh h + b_hh)` (PyTorch's `RNNCell`).
#[derive(Clone, Debug)]
pub struct RNNCell {
    pub weights: RecurrentWeights,
    pub nonlinearity: Nonlinearity,
}

impl RNNCell {
    /// An f32 tanh cell with biases, from the shared random state.
    pub fn new(input_size: usize, hidden_size: usize) -> Result<RNNCell> {
        RNNCell::with(
            input_size,
            hidden_size,
            true,
            Nonlinearity::Tanh,
            &rng::next_key()?,
            DType::F32,
        )
    }

    pub fn with(
        input_size: usize,
        hidden_size: usize,
        bias: bool,
        nonlinearity: Nonlinearity,
        key: &Array,
        dtype: DType,
    ) -> Result<RNNCell> {
        check_float("RNNCell", dtype)?;
        Ok(RNNCell {
            weights: RecurrentWeights::init(1, input_size, hidden_size, bias, key, dtype)?,
            nonlinearity,
        })
    }

    /// `x (B, input)` or `(input,)`, `h` of the matching `(B, hidden)` / `(hidden,)` (None:
    /// zeros) to the next `h`.
    pub fn forward(&self, x: &Array, h: Option<&Array>) -> Result<Array> {
        let kind = Kind::Rnn(self.nonlinearity);
        Ok(cell_step("RNNCell", kind, &self.weights, x, &[h])?.0)
    }
}

cell_module!(RNNCell);

impl Unary for RNNCell {
    fn forward(&self, x: &Array) -> Result<Array> {
        RNNCell::forward(self, x, None)
    }
}

/// PyTorch's `GRUCell`: gates r, z, n stacked in that order.
#[derive(Clone, Debug)]
pub struct GRUCell {
    pub weights: RecurrentWeights,
}

impl GRUCell {
    pub fn new(input_size: usize, hidden_size: usize) -> Result<GRUCell> {
        GRUCell::with(input_size, hidden_size, true, &rng::next_key()?, DType::F32)
    }

    pub fn with(
        input_size: usize,
        hidden_size: usize,
        bias: bool,
        key: &Array,
        dtype: DType,
    ) -> Result<GRUCell> {
        check_float("GRUCell", dtype)?;
        Ok(GRUCell {
            weights: RecurrentWeights::init(3, input_size, hidden_size, bias, key, dtype)?,
        })
    }

    /// One step; `h` None: zeros.
    pub fn forward(&self, x: &Array, h: Option<&Array>) -> Result<Array> {
        Ok(cell_step("GRUCell", Kind::Gru, &self.weights, x, &[h])?.0)
    }
}

cell_module!(GRUCell);

impl Unary for GRUCell {
    fn forward(&self, x: &Array) -> Result<Array> {
        GRUCell::forward(self, x, None)
    }
}

/// PyTorch's `LSTMCell`: gates i, f, g, o stacked in that order.
#[derive(Clone, Debug)]
pub struct LSTMCell {
    pub weights: RecurrentWeights,
}

impl LSTMCell {
    pub fn new(input_size: usize, hidden_size: usize) -> Result<LSTMCell> {
        LSTMCell::with(input_size, hidden_size, true, &rng::next_key()?, DType::F32)
    }

    pub fn with(
        input_size: usize,
        hidden_size: usize,
        bias: bool,
        key: &Array,
        dtype: DType,
    ) -> Result<LSTMCell> {
        check_float("LSTMCell", dtype)?;
        Ok(LSTMCell {
            weights: RecurrentWeights::init(4, input_size, hidden_size, bias, key, dtype)?,
        })
    }

    /// One step from `(h, c)` (None: zeros) to the next `(h, c)`.
    pub fn forward(&self, x: &Array, state: Option<(&Array, &Array)>) -> Result<(Array, Array)> {
        let (h, c) = match state {
            Some((h, c)) => (Some(h), Some(c)),
            None => (None, None),
        };
        let (h, c) = cell_step("LSTMCell", Kind::Lstm, &self.weights, x, &[h, c])?;
        let c = c.ok_or_else(|| Error::invalid("LSTMCell", "no cell state came back"))?;
        Ok((h, c))
    }
}

cell_module!(LSTMCell);

impl Unary for LSTMCell {
    /// The next `h` from zeros.
    fn forward(&self, x: &Array) -> Result<Array> {
        Ok(LSTMCell::forward(self, x, None)?.0)
    }
}

// ---- stacks -----------------------------------------------------------------------------

/// Options of [`RNN`], [`GRU`] and [`LSTM`], PyTorch's defaults: one layer, biases,
/// time-major (`batch_first: false`), no dropout, one direction.
#[derive(Clone, Debug, PartialEq)]
pub struct RecurrentOptions {
    pub num_layers: usize,
    pub bias: bool,
    pub batch_first: bool,
    /// Dropout on the outputs of every layer but the last, in training mode.
    pub dropout: f64,
    pub bidirectional: bool,
}

impl Default for RecurrentOptions {
    fn default() -> Self {
        RecurrentOptions {
            num_layers: 1,
            bias: true,
            batch_first: false,
            dropout: 0.0,
            bidirectional: false,
        }
    }
}

impl RecurrentOptions {
    pub fn num_layers(mut self, n: usize) -> Self {
        self.num_layers = n;
        self
    }
    pub fn bias(mut self, b: bool) -> Self {
        self.bias = b;
        self
    }
    pub fn batch_first(mut self, b: bool) -> Self {
        self.batch_first = b;
        self
    }
    pub fn dropout(mut self, p: f64) -> Self {
        self.dropout = p;
        self
    }
    pub fn bidirectional(mut self, b: bool) -> Self {
        self.bidirectional = b;
        self
    }
}

/// The weights of a stack, `layers[l * dirs + d]`, and what it needs to run.
#[derive(Clone, Debug)]
struct Stack {
    kind: Kind,
    weights: Vec<RecurrentWeights>,
    options: RecurrentOptions,
    hidden: usize,
    training: bool,
}

fn stack_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Rnn(_) => "RNN",
        Kind::Gru => "GRU",
        Kind::Lstm => "LSTM",
    }
}

impl Stack {
    fn new(
        kind: Kind,
        input: usize,
        hidden: usize,
        options: &RecurrentOptions,
        key: &Array,
        dtype: DType,
    ) -> Result<Stack> {
        let name = stack_name(kind);
        check_float(name, dtype)?;
        if options.num_layers == 0 {
            return Err(Error::invalid(name, "num_layers must be at least 1"));
        }
        if !(0.0..1.0).contains(&options.dropout) {
            return Err(Error::invalid(
                name,
                format!("dropout must be in [0, 1), got {}", options.dropout),
            ));
        }
        let dirs = if options.bidirectional { 2 } else { 1 };
        let n = options.num_layers * dirs;
        let keys = ingot::random::split(key, n)?;
        let mut weights = Vec::with_capacity(n);
        for l in 0..options.num_layers {
            let inp = if l == 0 { input } else { hidden * dirs };
            for d in 0..dirs {
                let k = ingot::random::key_at(&keys, l * dirs + d)?;
                weights.push(RecurrentWeights::init(
                    kind.gates(),
                    inp,
                    hidden,
                    options.bias,
                    &k,
                    dtype,
                )?);
            }
        }
        Ok(Stack {
            kind,
            weights,
            options: options.clone(),
            hidden,
            training: true,
        })
    }

    fn dirs(&self) -> usize {
        if self.options.bidirectional {
            2
        } else {
            1
        }
    }

    fn suffix(&self, i: usize) -> String {
        let d = self.dirs();
        let rev = if i % d == 1 { "_reverse" } else { "" };
        format!("_l{}{rev}", i / d)
    }

    fn visit(&self, f: &mut dyn FnMut(&str, &Param)) {
        for (i, w) in self.weights.iter().enumerate() {
            w.visit(&self.suffix(i), f);
        }
    }

    fn visit_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
        for i in 0..self.weights.len() {
            let s = self.suffix(i);
            self.weights[i].visit_mut(&s, f);
        }
    }

    /// A state `(layers * dirs, B, H)` (or `(layers * dirs, H)` unbatched) as per-cell
    /// `(B, H)` arrays; None: zeros.
    fn initial(
        &self,
        what: &str,
        s: Option<&Array>,
        x: &Array,
        b: usize,
        batched: bool,
    ) -> Result<Vec<Array>> {
        let n = self.weights.len();
        let h = self.hidden;
        match s {
            None => {
                let z = ingot::zeros(&[b, h], self.weights[0].weight_hh.value.dtype())?;
                Ok(vec![z; n])
            }
            Some(s) => {
                let want: Vec<usize> = if batched { vec![n, b, h] } else { vec![n, h] };
                if s.shape() != want {
                    return Err(Error::invalid(
                        stack_name(self.kind),
                        format!(
                            "{what} {:?} does not fit input {:?}: want {want:?} (num_layers * directions, batch, hidden)",
                            s.shape(),
                            x.shape()
                        ),
                    ));
                }
                let s = if batched {
                    s.clone()
                } else {
                    ingot::expand_dims(s, &[1])?
                };
                ingot::split(&s, SplitSpec::Sections(n), 0)?
                    .into_iter()
                    .map(|a| ingot::squeeze(&a, Some(&[0])))
                    .collect()
            }
        }
    }

    /// The whole stack over `x`; returns the output sequence, `h_n` and (LSTM) `c_n`.
    fn run(
        &self,
        x: &Array,
        h0: Option<&Array>,
        c0: Option<&Array>,
    ) -> Result<(Array, Array, Option<Array>)> {
        let name = stack_name(self.kind);
        let input = self.weights[0].input();
        let bf = self.options.batch_first;
        let batched = match x.ndim() {
            3 => true,
            2 => false,
            _ => {
                let layout = if bf {
                    "(batch, seq, input)"
                } else {
                    "(seq, batch, input)"
                };
                return Err(Error::invalid(
                    name,
                    format!(
                        "input must be {layout} or (seq, input), got {:?} {}",
                        x.shape(),
                        x.dtype()
                    ),
                ));
            }
        };
        if x.shape()[x.ndim() - 1] != input || !x.dtype().is_float() {
            return Err(Error::invalid(
                name,
                format!(
                    "input {:?} {} must be floating and end in input_size={input} features",
                    x.shape(),
                    x.dtype()
                ),
            ));
        }
        // Time-major (L, B, I) inside.
        let xt = if !batched {
            ingot::expand_dims(x, &[1])?
        } else if bf {
            ingot::swapaxes(x, 0, 1)?
        } else {
            x.clone()
        };
        let (len, b) = (xt.shape()[0], xt.shape()[1]);
        if len == 0 {
            return Err(Error::invalid(
                name,
                format!("the sequence is empty: input {:?}", x.shape()),
            ));
        }
        let lstm = self.kind == Kind::Lstm;
        let hs = self.initial("h0", h0, x, b, batched)?;
        let cs = if lstm {
            Some(self.initial("c0", c0, x, b, batched)?)
        } else {
            None
        };
        let dirs = self.dirs();
        let mut layer_in = xt;
        let mut h_n = Vec::with_capacity(self.weights.len());
        let mut c_n = Vec::with_capacity(self.weights.len());
        for l in 0..self.options.num_layers {
            let mut outs = Vec::with_capacity(dirs);
            for d in 0..dirs {
                let i = l * dirs + d;
                let w = &self.weights[i];
                // The input half of every step in one matmul, then one step per time.
                let xp = w.input_part(&layer_in)?;
                let steps = ingot::split(&xp, SplitSpec::Sections(len), 0)?;
                let mut h = hs[i].clone();
                let mut c = cs.as_ref().map(|c| c[i].clone());
                let mut seq = vec![None; len];
                for k in 0..len {
                    let t = if d == 0 { k } else { len - 1 - k };
                    let xs = ingot::squeeze(&steps[t], Some(&[0]))?;
                    let (nh, nc) = w.step(self.kind, &xs, &h, c.as_ref())?;
                    seq[t] = Some(nh.clone());
                    h = nh;
                    c = nc;
                }
                let seq: Vec<Array> = seq.into_iter().flatten().collect();
                outs.push(ingot::stack(&seq, 0)?);
                h_n.push(h);
                if let Some(c) = c {
                    c_n.push(c);
                }
            }
            layer_in = if dirs == 1 {
                outs.remove(0)
            } else {
                ingot::concatenate(&outs, Some(-1))?
            };
            let p = self.options.dropout;
            if self.training && p > 0.0 && l + 1 < self.options.num_layers {
                let keep =
                    ingot::random::bernoulli(&rng::next_key()?, 1.0 - p, Some(layer_in.shape()))?;
                let keep = ingot::astype(&keep, layer_in.dtype())?;
                layer_in = ingot::multiply(&ingot::multiply(&layer_in, &keep)?, 1.0 / (1.0 - p))?;
            }
        }
        let out = if !batched {
            ingot::squeeze(&layer_in, Some(&[1]))?
        } else if bf {
            ingot::swapaxes(&layer_in, 0, 1)?
        } else {
            layer_in
        };
        let fin = |v: Vec<Array>| -> Result<Array> {
            let s = ingot::stack(&v, 0)?;
            if batched {
                Ok(s)
            } else {
                ingot::squeeze(&s, Some(&[1]))
            }
        };
        let hn = fin(h_n)?;
        let cn = if lstm { Some(fin(c_n)?) } else { None };
        Ok((out, hn, cn))
    }
}

macro_rules! stack_module {
    ($t:ident) => {
        impl Module for $t {
            fn visit(&self, f: &mut dyn FnMut(&str, &Param)) {
                self.stack.visit(f);
            }
            fn visit_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
                self.stack.visit_mut(f);
            }
            fn set_training(&mut self, on: bool) {
                self.stack.training = on;
            }
        }

        impl $t {
            /// The cells' weights, `[l0, l0_reverse, l1, ...]` (the reverse ones only when
            /// bidirectional).
            pub fn weights(&self) -> &[RecurrentWeights] {
                &self.stack.weights
            }
            /// The same, open to change (shapes are checked at the next forward only by the
            /// ops: prefer `ModuleExt::update`).
            pub fn weights_mut(&mut self) -> &mut [RecurrentWeights] {
                &mut self.stack.weights
            }
            pub fn options(&self) -> &RecurrentOptions {
                &self.stack.options
            }
            pub fn hidden_size(&self) -> usize {
                self.stack.hidden
            }
            pub fn input_size(&self) -> usize {
                self.stack.weights[0].input()
            }
        }
    };
}

/// PyTorch's `nn.RNN`: `h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)` per layer.
#[allow(clippy::upper_case_acronyms)]
#[derive(Clone, Debug)]
pub struct RNN {
    stack: Stack,
}

impl RNN {
    /// An f32 one-layer tanh RNN with PyTorch's defaults, from the shared random state.
    pub fn new(input_size: usize, hidden_size: usize) -> Result<RNN> {
        RNN::with(
            input_size,
            hidden_size,
            Nonlinearity::Tanh,
            &RecurrentOptions::default(),
            &rng::next_key()?,
            DType::F32,
        )
    }

    pub fn with(
        input_size: usize,
        hidden_size: usize,
        nonlinearity: Nonlinearity,
        options: &RecurrentOptions,
        key: &Array,
        dtype: DType,
    ) -> Result<RNN> {
        Ok(RNN {
            stack: Stack::new(
                Kind::Rnn(nonlinearity),
                input_size,
                hidden_size,
                options,
                key,
                dtype,
            )?,
        })
    }

    /// `x (L, N, input)` (`(N, L, input)` with batch_first, or `(L, input)`) and `h0
    /// (layers * dirs, N, hidden)` (None: zeros) to `(output (L, N, dirs * hidden), h_n)`.
    pub fn forward(&self, x: &Array, h0: Option<&Array>) -> Result<(Array, Array)> {
        let (out, h, _) = self.stack.run(x, h0, None)?;
        Ok((out, h))
    }
}

stack_module!(RNN);

impl Unary for RNN {
    fn forward(&self, x: &Array) -> Result<Array> {
        Ok(RNN::forward(self, x, None)?.0)
    }
}

/// PyTorch's `nn.GRU`.
#[allow(clippy::upper_case_acronyms)]
#[derive(Clone, Debug)]
pub struct GRU {
    stack: Stack,
}

impl GRU {
    pub fn new(input_size: usize, hidden_size: usize) -> Result<GRU> {
        GRU::with(
            input_size,
            hidden_size,
            &RecurrentOptions::default(),
            &rng::next_key()?,
            DType::F32,
        )
    }

    pub fn with(
        input_size: usize,
        hidden_size: usize,
        options: &RecurrentOptions,
        key: &Array,
        dtype: DType,
    ) -> Result<GRU> {
        Ok(GRU {
            stack: Stack::new(Kind::Gru, input_size, hidden_size, options, key, dtype)?,
        })
    }

    /// As [`RNN::forward`].
    pub fn forward(&self, x: &Array, h0: Option<&Array>) -> Result<(Array, Array)> {
        let (out, h, _) = self.stack.run(x, h0, None)?;
        Ok((out, h))
    }
}

stack_module!(GRU);

impl Unary for GRU {
    fn forward(&self, x: &Array) -> Result<Array> {
        Ok(GRU::forward(self, x, None)?.0)
    }
}

/// PyTorch's `nn.LSTM` (no `proj_size`).
#[allow(clippy::upper_case_acronyms)]
#[derive(Clone, Debug)]
pub struct LSTM {
    stack: Stack,
}

impl LSTM {
    pub fn new(input_size: usize, hidden_size: usize) -> Result<LSTM> {
        LSTM::with(
            input_size,
            hidden_size,
            &RecurrentOptions::default(),
            &rng::next_key()?,
            DType::F32,
        )
    }

    pub fn with(
        input_size: usize,
        hidden_size: usize,
        options: &RecurrentOptions,
        key: &Array,
        dtype: DType,
    ) -> Result<LSTM> {
        Ok(LSTM {
            stack: Stack::new(Kind::Lstm, input_size, hidden_size, options, key, dtype)?,
        })
    }

    /// As [`RNN::forward`], with state `(h, c)`: returns `(output, (h_n, c_n))`.
    pub fn forward(
        &self,
        x: &Array,
        state: Option<(&Array, &Array)>,
    ) -> Result<(Array, (Array, Array))> {
        let (h0, c0) = match state {
            Some((h, c)) => (Some(h), Some(c)),
            None => (None, None),
        };
        let (out, h, c) = self.stack.run(x, h0, c0)?;
        let c = c.ok_or_else(|| Error::invalid("LSTM", "no cell state came back"))?;
        Ok((out, (h, c)))
    }
}

stack_module!(LSTM);

impl Unary for LSTM {
    fn forward(&self, x: &Array) -> Result<Array> {
        Ok(LSTM::forward(self, x, None)?.0)
    }
}
