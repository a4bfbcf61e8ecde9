//! GPT-2: Hugging Face's parameter names and Conv1D shapes, causality (a later token never
//! changes an earlier position's logits), the initial loss of a uniform guess, and a few
//! AdamW steps lowering the loss on a repeated batch.

use ingot::{Array, DType};
use ingot_nn::losses::{cross_entropy, CrossEntropy};
use ingot_nn::models::{Gpt2, Gpt2Config};
use ingot_nn::optim::{AdamW, Optimizer};
use ingot_nn::{value_and_grad, ModuleExt};

fn tiny() -> Gpt2Config {
    Gpt2Config {
        vocab_size: 97,
        n_positions: 16,
        n_embd: 32,
        n_layer: 2,
        n_head: 4,
        layer_norm_epsilon: 1e-5,
    }
}

#[test]
fn names_and_shapes_are_hugging_faces() {
    let m = Gpt2::new(&tiny(), &ingot::random::key(0), DType::F32).unwrap();
    let p = m.parameters();
    let shape = |n: &str| {
        p.get(n)
            .unwrap_or_else(|| panic!("no {n}"))
            .shape()
            .to_vec()
    };
    assert_eq!(shape("transformer.wte.weight"), vec![97, 32]);
    assert_eq!(shape("transformer.wpe.weight"), vec![16, 32]);
    assert_eq!(shape("transformer.h.1.attn.c_attn.weight"), vec![32, 96]);
    assert_eq!(shape("transformer.h.1.attn.c_attn.bias"), vec![96]);
    assert_eq!(shape("transformer.h.0.attn.c_proj.weight"), vec![32, 32]);
    assert_eq!(shape("transformer.h.0.mlp.c_fc.weight"), vec![32, 128]);
    assert_eq!(shape("transformer.h.0.mlp.c_proj.weight"), vec![128, 32]);
    assert_eq!(shape("transformer.h.0.ln_1.weight"), vec![32]);
    assert_eq!(shape("transformer.ln_f.bias"), vec![32]);
    // 2 tables, 2 blocks of 12 tensors, the final norm's 2; the output layer is tied.
    assert_eq!(p.len(), 2 + 2 * 12 + 2);
    let (e, v, t) = (32usize, 97usize, 16usize);
    let per_block =
        2 * e + (e * 3 * e + 3 * e) + (e * e + e) + 2 * e + (e * 4 * e + 4 * e) + (4 * e * e + e);
    assert_eq!(m.num_parameters(), v * e + t * e + 2 * per_block + 2 * e);
}

#[test]
fn later_tokens_do_not_change_earlier_logits() {
    let m = Gpt2::new(&tiny(), &ingot::random::key(1), DType::F32).unwrap();
    let a: Vec<i32> = (0..12).map(|i| (i * 7 + 3) % 97).collect();
    let mut b = a.clone();
    b[8] = 50;
    b[11] = 1;
    let la = m.forward(&Array::from_vec(a, &[1, 12]).unwrap()).unwrap();
    let lb = m.forward(&Array::from_vec(b, &[1, 12]).unwrap()).unwrap();
    assert_eq!(la.shape(), &[1, 12, 97]);
    let (va, vb) = (la.to_vec::<f32>().unwrap(), lb.to_vec::<f32>().unwrap());
    assert_eq!(
        va[..8 * 97],
        vb[..8 * 97],
        "positions before the change moved"
    );
    assert_ne!(va[8 * 97..9 * 97], vb[8 * 97..9 * 97]);
    // Too long a sequence is an error naming the limit.
    let long = Array::from_vec(vec![0i32; 17], &[1, 17]).unwrap();
    let e = m.forward(&long).err().unwrap().to_string();
    assert!(e.contains("16"), "{e}");
}

#[test]
fn training_steps_lower_the_loss() {
    let mut m = Gpt2::new(&tiny(), &ingot::random::key(2), DType::F32).unwrap();
    let ids: Vec<i32> = (0..2 * 13).map(|i| (i * 31 + 5) % 97).collect();
    let ids = Array::from_vec(ids, &[2, 13]).unwrap();
    let x =
        ingot::copy(&ingot::slice_axis(&ids, 1, ingot::SliceArg::range(0, 12)).unwrap()).unwrap();
    let y =
        ingot::copy(&ingot::slice_axis(&ids, 1, ingot::SliceArg::range(1, 13)).unwrap()).unwrap();
    let loss_fn = |g: &Gpt2| cross_entropy(&g.forward(&x)?, &y, &CrossEntropy::default());
    let first = loss_fn(&m).unwrap().item::<f32>().unwrap();
    // Weights N(0, 0.02) make the logits near zero: about a uniform guess, ln 97.
    assert!((first - 97f32.ln()).abs() < 0.1, "initial loss {first}");
    let mut opt = AdamW::new(3e-3).betas(0.9, 0.95).weight_decay(0.1);
    for _ in 0..30 {
        let (_, g) = value_and_grad(&mut m, loss_fn).unwrap();
        opt.update(&mut m, &g).unwrap();
    }
    let last = loss_fn(&m).unwrap().item::<f32>().unwrap();
    assert!(
        last < first - 1.0,
        "30 steps took the loss from {first} to {last}"
    );
}
