//! A checkpoint resumes a run exactly: model, optimizer state and step, and the random
//! state behind dropout, bit for bit on the CPU.

use ingot::{Array, DType};
use ingot_nn::activations::Activation;
use ingot_nn::losses::{cross_entropy, CrossEntropy};
use ingot_nn::optim::{AdamW, Optimizer};
use ingot_nn::{
    load_checkpoint, rng, save_checkpoint, value_and_grad, Dropout, Linear, ModuleExt, Sequential,
    Unary,
};
use std::collections::BTreeMap;

fn model(seed: u64) -> Sequential {
    Sequential::new()
        .push(Linear::with(6, 32, true, &rng::key(seed), DType::F32).unwrap())
        .push(Activation::Relu)
        .push(Dropout::new(0.25).unwrap())
        .push(Linear::with(32, 4, true, &rng::key(seed + 1), DType::F32).unwrap())
}

fn data() -> (Array, Array) {
    let x = ingot::random::normal(&rng::key(100), &[40, 6], 0.0, 1.0, DType::F32).unwrap();
    let y = ingot::random::randint(&rng::key(101), 0, 4, &[40], DType::I64).unwrap();
    (x, y)
}

/// `n` training steps; the losses, bit patterns.
fn train(m: &mut Sequential, opt: &mut AdamW, n: usize) -> Vec<u32> {
    let (x, y) = data();
    (0..n)
        .map(|_| {
            let (loss, g) = value_and_grad(m, |m| {
                cross_entropy(&m.forward(&x)?, &y, &CrossEntropy::default())
            })
            .unwrap();
            opt.update(m, &g).unwrap();
            loss.item::<f32>().unwrap().to_bits()
        })
        .collect()
}

#[test]
fn a_resumed_run_reproduces_the_losses_bit_for_bit() {
    let dir = std::env::temp_dir().join(format!("ingot-nn-ckpt-{}", std::process::id()));
    // one run of six steps
    rng::seed(7);
    let mut m = model(1);
    let mut opt = AdamW::new(1e-2);
    let all = train(&mut m, &mut opt, 6);
    // the same run stopped after three, saved, and resumed in fresh objects
    rng::seed(7);
    let mut m = model(1);
    let mut opt = AdamW::new(1e-2);
    let first = train(&mut m, &mut opt, 3);
    assert_eq!(first, all[..3]);
    let extra = BTreeMap::from([("epoch".to_string(), 3.0)]);
    save_checkpoint(&dir, &m, &opt, &extra).unwrap();
    rng::seed(12345);
    let mut m2 = model(50);
    let mut opt2 = AdamW::new(1e-2);
    assert_eq!(load_checkpoint(&dir, &mut m2, &mut opt2).unwrap(), extra);
    assert_eq!(opt2.step_count(), 3);
    let rest = train(&mut m2, &mut opt2, 3);
    assert_eq!(rest, all[3..], "resumed losses differ");
    // the dropout masks really came from the restored state: a different one changes them
    rng::seed(7);
    let mut m3 = model(1);
    let mut opt3 = AdamW::new(1e-2);
    train(&mut m3, &mut opt3, 3);
    load_checkpoint(&dir, &mut m3, &mut opt3).unwrap();
    rng::seed(99);
    assert_ne!(train(&mut m3, &mut opt3, 3), all[3..]);

    // a checkpoint of a different model is refused and changes nothing
    let mut small =
        Sequential::new().push(Linear::with(6, 4, true, &rng::key(3), DType::F32).unwrap());
    let mut opt4 = AdamW::new(1e-2);
    let before = small.parameters()["0.weight"].to_vec::<f32>().unwrap();
    let e = load_checkpoint(&dir, &mut small, &mut opt4)
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing") || e.contains("unexpected"), "{e}");
    assert_eq!(
        small.parameters()["0.weight"].to_vec::<f32>().unwrap(),
        before
    );
    assert_eq!(opt4.step_count(), 0);
    assert!(load_checkpoint(dir.join("nowhere"), &mut small, &mut opt4).is_err());
    std::fs::remove_dir_all(&dir).ok();
}
