//! Compiled training steps against the eager loop (`value_and_grad` then
//! `Optimizer::update`) from identical starts: losses, parameters, buffers, optimizer state
//! and the shared random state bit for bit, one trace for every run of one shape, schedules
//! followed, dropout masks that change every step, and errors that change nothing.

mod common;

use common::Rng;
use ingot::{Array, DType, Result};
use ingot_nn::activations::Activation;
use ingot_nn::losses::{cross_entropy, CrossEntropy};
use ingot_nn::optim::*;
use ingot_nn::schedule::{self, Schedule};
use ingot_nn::{
    rng, value_and_grad, BatchNorm, Dropout, Linear, Module, ModuleExt, Sequential, TrainStep,
    Unary,
};
use parking_lot::Mutex;
use std::collections::BTreeMap;

/// A trace swaps the process-wide random state for its placeholder while it runs, and the
/// dropout test draws from that state: tests of this file run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const STEPS: usize = 8;

fn mlp(seed: u64) -> Sequential {
    let k = ingot::random::split(&rng::key(seed), 2).unwrap();
    Sequential::new()
        .push(
            Linear::with(
                4,
                16,
                true,
                &ingot::random::key_at(&k, 0).unwrap(),
                DType::F32,
            )
            .unwrap(),
        )
        .push(Activation::Tanh)
        .push(
            Linear::with(
                16,
                3,
                true,
                &ingot::random::key_at(&k, 1).unwrap(),
                DType::F32,
            )
            .unwrap(),
        )
}

/// Batches of a learnable 3-class problem: the class is which of three fixed directions
/// the input points along most. `(x (n, 4) f32, labels (n,) i64)`.
fn batches(seed: u64, count: usize, n: usize) -> Vec<Vec<Array>> {
    let mut rng = Rng::new(seed);
    let dirs = [
        [1.0, 0.5, 0.0, -0.5],
        [-0.5, 1.0, 0.5, 0.0],
        [0.0, -0.5, -1.0, 1.0],
    ];
    (0..count)
        .map(|_| {
            let x = rng.normals(n * 4, 1.0);
            let labels: Vec<i64> = x
                .chunks(4)
                .map(|v| {
                    let score = |d: &[f64; 4]| v.iter().zip(d).map(|(a, b)| a * b).sum::<f64>();
                    (0..3)
                        .max_by(|&a, &b| score(&dirs[a]).total_cmp(&score(&dirs[b])))
                        .unwrap() as i64
                })
                .collect();
            let xs: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            vec![
                Array::from_slice(&xs, &[n, 4]).unwrap(),
                Array::from_slice(&labels, &[n]).unwrap(),
            ]
        })
        .collect()
}

fn ce_loss<M: Unary>(m: &M, batch: &[Array]) -> Result<Array> {
    cross_entropy(&m.forward(&batch[0])?, &batch[1], &CrossEntropy::default())
}

fn bits(a: &Array) -> Vec<u64> {
    match a.dtype() {
        DType::F32 => a
            .to_vec::<f32>()
            .unwrap()
            .iter()
            .map(|v| v.to_bits() as u64)
            .collect(),
        DType::F64 => a
            .to_vec::<f64>()
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect(),
        _ => ingot::astype(a, DType::I64)
            .unwrap()
            .to_vec::<i64>()
            .unwrap()
            .iter()
            .map(|&v| v as u64)
            .collect(),
    }
}

fn all_bits(m: &BTreeMap<String, Array>) -> BTreeMap<String, Vec<u64>> {
    m.iter().map(|(n, a)| (n.clone(), bits(a))).collect()
}

/// Warmup over 3 steps, then cosine decay: a different learning rate at every step.
fn warmup_cosine(peak: f64) -> Schedule {
    let warm = schedule::linear_schedule(peak / 4.0, peak, 3).unwrap();
    let decay = schedule::cosine_decay(peak, 10, peak / 10.0);
    schedule::join_schedules(vec![warm, decay], &[3]).unwrap()
}

/// The eager loop: losses and the final model and optimizer.
fn run_eager<M, O>(
    mut model: M,
    mut opt: O,
    data: &[Vec<Array>],
    loss: impl Fn(&M, &[Array]) -> Result<Array>,
) -> (Vec<u64>, M, O)
where
    M: Module,
    O: Optimizer,
{
    let mut losses = Vec::new();
    for batch in data {
        let (l, grads) = value_and_grad(&mut model, |m: &M| loss(m, batch)).unwrap();
        opt.update(&mut model, &grads).unwrap();
        losses.extend(bits(&l));
    }
    (losses, model, opt)
}

/// The compiled loop: losses, the learning rate of each step, and the step itself.
fn run_compiled<'a, M, O>(
    model: M,
    opt: O,
    data: &[Vec<Array>],
    loss: impl Fn(&M, &[Array]) -> Result<Array> + 'a,
) -> (Vec<u64>, Vec<f64>, TrainStep<'a, M, O>)
where
    M: Module + 'a,
    O: FunctionalOptimizer + 'a,
{
    let start = opt.step_count();
    let mut ts = TrainStep::new(model, opt, loss);
    let mut losses = Vec::new();
    let mut lrs = Vec::new();
    for (i, batch) in data.iter().enumerate() {
        lrs.push(ts.optimizer().learning_rate());
        let l = ts.step(batch).unwrap();
        assert!(l.is_evaluated());
        assert_eq!(ts.optimizer().step_count(), start + i as u64 + 1);
        losses.extend(bits(&l));
    }
    (losses, lrs, ts)
}

/// Compiled and eager runs of `make()` from the same model agree bit for bit, with one
/// trace for all steps.
fn check_optimizer<O>(what: &str, make: impl Fn() -> O)
where
    O: FunctionalOptimizer + Clone,
{
    let data = batches(3, STEPS, 32);
    let (want_losses, want_model, want_opt) = run_eager(mlp(1), make(), &data, ce_loss);
    let (got_losses, lrs, ts) = run_compiled(mlp(1), make(), &data, ce_loss);
    assert_eq!(got_losses, want_losses, "{what}: losses");
    assert_eq!(
        all_bits(&ts.model().parameters()),
        all_bits(&want_model.parameters()),
        "{what}: parameters"
    );
    assert_eq!(
        all_bits(&ts.optimizer().state()),
        all_bits(&want_opt.state()),
        "{what}: optimizer state"
    );
    assert_eq!(ts.optimizer().step_count(), STEPS as u64);
    let stats = ts.stats();
    assert_eq!(
        (stats.traces, stats.hits),
        (1, STEPS - 1),
        "{what}: {stats:?}"
    );
    // The parameters moved, and the state is what the eager optimizer holds.
    assert_ne!(
        all_bits(&ts.model().parameters()),
        all_bits(&mlp(1).parameters()),
        "{what}: nothing trained"
    );
    assert_eq!(lrs.len(), STEPS, "{what}");
}

#[test]
fn compiled_steps_match_eager_for_each_optimizer() {
    let _serial = SERIAL.lock();
    check_optimizer("SGD momentum, dampening", || {
        Sgd::new(warmup_cosine(0.2)).momentum(0.9).dampening(0.3)
    });
    check_optimizer("SGD nesterov, weight decay", || {
        Sgd::new(0.1)
            .momentum(0.9)
            .nesterov(true)
            .weight_decay(0.01)
    });
    check_optimizer("Adam", || Adam::new(warmup_cosine(0.02)));
    check_optimizer("Adam amsgrad, L2", || {
        Adam::new(0.01).amsgrad(true).weight_decay(0.01)
    });
    check_optimizer("AdamW", || {
        AdamW::new(warmup_cosine(0.02)).weight_decay(0.05)
    });
    check_optimizer("Lion", || Lion::new(warmup_cosine(0.003)).weight_decay(0.1));
    check_optimizer("RMSprop", || {
        RmsProp::new(warmup_cosine(0.01))
            .momentum(0.5)
            .centered(true)
    });
    check_optimizer("Adamax", || Adamax::new(0.01));
    check_optimizer("Adagrad", || Adagrad::new(0.1).lr_decay(0.1));
    check_optimizer("AdaDelta", || AdaDelta::default().weight_decay(0.01));
    check_optimizer("Adafactor relative step", || {
        Adafactor::new().beta1(Some(0.9)).weight_decay(0.01)
    });
    check_optimizer("Adafactor warmup_init", || {
        Adafactor::new().warmup_init(true).scale_parameter(false)
    });
    check_optimizer("Muon", || Muon::new(warmup_cosine(0.02)));
}

#[test]
fn compiled_run_follows_the_schedule() {
    let _serial = SERIAL.lock();
    let data = batches(4, STEPS, 32);
    let sched = warmup_cosine(0.02);
    let (_, lrs, ts) = run_compiled(mlp(2), Adam::new(sched.clone()), &data, ce_loss);
    let want: Vec<f64> = (0..STEPS as u64).map(|t| sched.at(t)).collect();
    assert_eq!(lrs, want);
    assert!(
        lrs.windows(2).all(|w| w[0] != w[1]),
        "the schedule must change every step: {lrs:?}"
    );
    assert_eq!(ts.stats().traces, 1);
    // The replayed program used each step's rate: a run at a constant rate (the first
    // step's) ends elsewhere, while the scheduled run equals the eager one bit for bit.
    let (_, _, constant) = run_compiled(mlp(2), Adam::new(sched.at(0)), &data, ce_loss);
    let (_, eager_model, _) = run_eager(mlp(2), Adam::new(sched.clone()), &data, ce_loss);
    let got = all_bits(&ts.model().parameters());
    assert_eq!(got, all_bits(&eager_model.parameters()));
    assert_ne!(got, all_bits(&constant.model().parameters()));
    // Changing the schedule keeps the program (the rate is an input).
    let mut ts = ts;
    ts.set_learning_rate(0.5);
    assert_eq!(ts.optimizer().learning_rate(), 0.5);
    ts.step(&data[0]).unwrap();
    assert_eq!(ts.stats().traces, 1);
    assert_eq!(ts.stats().hits, STEPS);
}

#[test]
fn loss_falls_on_a_learnable_problem() {
    let _serial = SERIAL.lock();
    let data = batches(5, 4, 64);
    let mut ts = TrainStep::new(mlp(3), AdamW::new(0.05).weight_decay(0.0), ce_loss);
    let mut losses = Vec::new();
    for i in 0..80 {
        let l = ts.step(&data[i % data.len()]).unwrap();
        losses.push(l.item::<f32>().unwrap());
    }
    let first = losses[..4].iter().sum::<f32>() / 4.0;
    let last = losses[losses.len() - 4..].iter().sum::<f32>() / 4.0;
    assert!(last < first / 4.0, "loss {first} -> {last} ({losses:?})");
    assert_eq!(ts.stats().traces, 1);
    assert_eq!(ts.stats().hits, 79);
    // Accuracy on the training batches.
    let model = ts.model();
    let x = &data[0][0];
    let pred = ingot::argmax(&model.forward(x).unwrap(), Some(-1), false).unwrap();
    let right = ingot::equal(ingot::astype(&pred, DType::I64).unwrap(), &data[0][1]).unwrap();
    let acc = ingot::mean(&ingot::astype(&right, DType::F32).unwrap(), None, false)
        .unwrap()
        .item::<f32>()
        .unwrap();
    assert!(acc > 0.9, "accuracy {acc}");
}

fn noisy_net(seed: u64) -> Sequential {
    let k = ingot::random::split(&rng::key(seed), 2).unwrap();
    Sequential::new()
        .push(
            Linear::with(
                4,
                16,
                true,
                &ingot::random::key_at(&k, 0).unwrap(),
                DType::F32,
            )
            .unwrap(),
        )
        .push(BatchNorm::new(16).unwrap())
        .push(Activation::Relu)
        .push(Dropout::new(0.3).unwrap())
        .push(
            Linear::with(
                16,
                3,
                true,
                &ingot::random::key_at(&k, 1).unwrap(),
                DType::F32,
            )
            .unwrap(),
        )
}

#[test]
fn dropout_and_batch_norm_follow_the_eager_loop() {
    let _serial = SERIAL.lock();
    let data = batches(6, STEPS, 32);
    rng::seed(77);
    let (want_losses, want_model, want_opt) =
        run_eager(noisy_net(4), Sgd::new(0.1).momentum(0.9), &data, ce_loss);
    let want_key = bits(&rng::state());
    rng::seed(77);
    let (got_losses, _, ts) =
        run_compiled(noisy_net(4), Sgd::new(0.1).momentum(0.9), &data, ce_loss);
    assert_eq!(ts.stats().traces, 1);
    // Each step drew its own mask (the eager loop's), and the random state moved on as the
    // eager loop moved it.
    assert_eq!(got_losses, want_losses, "losses");
    assert_eq!(bits(&rng::state()), want_key, "random state");
    let got = ts.model().parameters();
    assert_eq!(all_bits(&got), all_bits(&want_model.parameters()));
    assert_eq!(
        all_bits(&ts.optimizer().state()),
        all_bits(&want_opt.state())
    );
    // The running statistics are updated every step.
    assert_eq!(
        ingot::astype(&got["1.num_batches_tracked"], DType::I64)
            .unwrap()
            .item::<i64>()
            .unwrap(),
        STEPS as i64
    );
    // Replaying one batch twice from one state with dropout: different masks, different
    // losses; without dropout (eval mode keeps batch norm's running statistics) the same.
    let (mut model, opt) = ts.into_parts();
    let params = model.parameters();
    let mut ts = TrainStep::new(model.clone(), opt.clone(), ce_loss);
    let a = ts.step(&data[0]).unwrap().item::<f32>().unwrap();
    ts.model_mut().update(&params).unwrap();
    let b = ts.step(&data[0]).unwrap().item::<f32>().unwrap();
    assert_ne!(a, b, "the same dropout mask twice");
    model.eval_mode();
    let mut ts = TrainStep::new(model, opt, ce_loss);
    let key = bits(&rng::state());
    let a = ts.step(&data[0]).unwrap().item::<f32>().unwrap();
    assert_eq!(bits(&rng::state()), key, "eval mode draws nothing");
    ts.model_mut().update(&params).unwrap();
    let b = ts.step(&data[0]).unwrap().item::<f32>().unwrap();
    assert_eq!(a, b);
}

#[test]
fn retracing_frozen_parameters_and_errors() {
    let _serial = SERIAL.lock();
    let data = batches(7, 3, 16);
    let mut ts = TrainStep::new(mlp(5), Adam::new(0.01), ce_loss);
    ts.step(&data[0]).unwrap();
    ts.step(&data[1]).unwrap();
    assert_eq!((ts.stats().traces, ts.stats().hits), (1, 1));
    // A batch of another size traces a second program; the first one still answers.
    let small = batches(8, 1, 5);
    ts.step(&small[0]).unwrap();
    ts.step(&data[2]).unwrap();
    assert_eq!((ts.stats().traces, ts.stats().hits), (2, 2));
    assert_eq!(ts.optimizer().step_count(), 4);

    // Freezing through model_mut retraces; frozen parameters are inputs, not outputs, and
    // stay as they are; the rest matches the eager loop.
    let (mut model, opt) = ts.into_parts();
    model.freeze_where(&|n| n.starts_with("0."));
    let frozen_before = all_bits(&model.parameters());
    let frozen_state = bits(&opt.state()["0.weight.exp_avg"]);
    let (want_losses, want_model, want_opt) = run_eager(model.clone(), opt.clone(), &data, ce_loss);
    let (got_losses, _, ts) = run_compiled(model, opt, &data, ce_loss);
    assert_eq!(got_losses, want_losses);
    let got = all_bits(&ts.model().parameters());
    assert_eq!(got, all_bits(&want_model.parameters()));
    assert_eq!(got["0.weight"], frozen_before["0.weight"]);
    assert_ne!(got["2.weight"], frozen_before["2.weight"]);
    assert_eq!(
        all_bits(&ts.optimizer().state()),
        all_bits(&want_opt.state())
    );
    // The frozen parameter's state (from before freezing) is kept as it was.
    assert_eq!(
        bits(&ts.optimizer().state()["0.weight.exp_avg"]),
        frozen_state
    );

    // A step that fails changes nothing: a batch the loss rejects, a non-finite rate.
    let mut ts = ts;
    let before = all_bits(&ts.model().parameters());
    let state = all_bits(&ts.optimizer().state());
    let count = ts.optimizer().step_count();
    assert_eq!(count, 7);
    let bad = vec![
        ingot::zeros(&[16, 5], DType::F32).unwrap(),
        data[0][1].clone(),
    ];
    assert!(ts.step(&bad).is_err());
    ts.set_learning_rate(f64::NAN);
    let e = ts.step(&data[0]).unwrap_err().to_string();
    assert!(e.contains("not finite"), "{e}");
    assert_eq!(all_bits(&ts.model().parameters()), before);
    assert_eq!(all_bits(&ts.optimizer().state()), state);
    assert_eq!(ts.optimizer().step_count(), count);
    // And the step works again afterwards, from the same program.
    ts.set_learning_rate(0.01);
    ts.step(&data[0]).unwrap();
    assert_eq!(ts.optimizer().step_count(), count + 1);
    assert_eq!(ts.stats().traces, 1);
}

/// A compiled step through the decoder follows the eager loop: the same losses within f32
/// rounding, one trace. (Its program once made the fusion pass order two fused groups that
/// read each other, and the step panicked.)
#[test]
fn a_compiled_step_through_the_decoder_follows_the_eager_loop() {
    use ingot_nn::models::{Decoder, DecoderConfig};
    let _serial = SERIAL.lock();
    let config = DecoderConfig {
        vocab_size: 11,
        hidden_size: 8,
        intermediate_size: 12,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        head_dim: 2,
        max_position_embeddings: 64,
        ..DecoderConfig::default()
    };
    let make = || Decoder::new(&config, &rng::key(5), DType::F32).unwrap();
    let seq: Vec<i32> = (0..17).map(|i| [2, 5, 3, 9, 4, 7][i % 6]).collect();
    let x = Array::from_slice(&seq[..16], &[1, 16]).unwrap();
    let y = Array::from_slice(&seq[1..], &[1, 16]).unwrap();
    let data = vec![vec![x, y]; 4];
    let loss = |m: &Decoder, b: &[Array]| {
        cross_entropy(&m.forward(&b[0])?, &b[1], &CrossEntropy::default())
    };
    let (want, _, _) = run_eager(make(), AdamW::new(1e-2), &data, loss);
    let (got, _, ts) = run_compiled(make(), AdamW::new(1e-2), &data, loss);
    assert_eq!(ts.stats().traces, 1);
    let f = |v: &[u64]| -> Vec<f32> { v.iter().map(|&b| f32::from_bits(b as u32)).collect() };
    let (want, got) = (f(&want), f(&got));
    assert!(want[3] < want[0], "eager losses {want:?}");
    for (g, w) in got.iter().zip(&want) {
        assert!(
            (g - w).abs() <= 1e-5 * w.abs().max(1.0),
            "{got:?} vs {want:?}"
        );
    }
}
