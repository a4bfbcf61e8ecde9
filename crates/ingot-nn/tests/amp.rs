//! Loss scaling: unscaled gradients equal the unscaled computation's, a step with an inf
//! gradient is skipped and the scale backs off, finite steps grow it; mixed-precision
//! training of float32 master weights under autocast.

use ingot::{Array, DType};
use ingot_nn::amp::LossScaler;
use ingot_nn::{rng, value_and_grad, Linear, ModuleExt, Unary};
use std::collections::BTreeMap;

fn f64s(a: &Array) -> Vec<f64> {
    ingot::astype(a, DType::F64)
        .unwrap()
        .to_vec::<f64>()
        .unwrap()
}

#[test]
fn losses_inside_autocast_are_float32() {
    // bf16 logits (a matmul's output under autocast) give an f32 loss, as in PyTorch;
    // outside autocast the loss keeps the input's dtype.
    let logits = ingot::random::normal(&rng::key(3), &[4, 7], 0.0, 1.0, DType::BF16).unwrap();
    let t = Array::from_vec(vec![0i32, 3, 6, 2], &[4]).unwrap();
    let ce = |l: &Array| {
        ingot_nn::losses::cross_entropy(l, &t, &ingot_nn::losses::CrossEntropy::default()).unwrap()
    };
    let inside = ingot::autocast(DType::BF16, || ce(&logits)).unwrap();
    assert_eq!(inside.dtype(), DType::F32);
    inside.item::<f32>().unwrap();
    assert_eq!(ce(&logits).dtype(), DType::BF16);
    let mse = ingot::autocast(DType::F16, || {
        ingot_nn::losses::mse_loss(&logits, &logits, ingot_nn::losses::Reduction::Mean)
    })
    .unwrap()
    .unwrap();
    assert_eq!(mse.dtype(), DType::F32);
}

#[test]
fn scaler_unscales_skips_and_grows() {
    let mut model = Linear::with(6, 3, true, &rng::key(1), DType::F32).unwrap();
    let x = ingot::random::normal(&rng::key(2), &[5, 6], 0.0, 1.0, DType::F32).unwrap();
    let loss = |m: &Linear| ingot::mean(&ingot::square(&m.forward(&x)?)?, None, false);
    let (_, plain) = value_and_grad(&mut model, loss).unwrap();
    let mut s = LossScaler::with(1024.0, 2.0, 0.5, 2).unwrap();
    let (scaled, g) = value_and_grad(&mut model, |m| s.scale(&loss(m)?)).unwrap();
    assert_eq!(
        scaled.item::<f32>().unwrap(),
        loss(&model).unwrap().item::<f32>().unwrap() * 1024.0
    );
    let u = s.unscale_and_update(&g).unwrap().expect("finite gradients");
    for (n, gp) in &plain {
        // a power-of-two scale is exact
        assert_eq!(f64s(&u[n]), f64s(gp), "{n}");
    }
    assert_eq!(s.scale_value(), 1024.0);
    // the second finite step in a row doubles the scale
    assert!(s.unscale_and_update(&g).unwrap().is_some());
    assert_eq!(s.scale_value(), 2048.0);
    // an inf anywhere: skipped, backed off, the run of good steps restarts
    let mut bad: BTreeMap<String, Array> = g.clone();
    let w = bad["weight"].clone();
    let idx =
        ingot::reshape_to(&ingot::arange(0.0, 18.0, 1.0, DType::I32).unwrap(), &[3, 6]).unwrap();
    let inf = ingot::where_(ingot::equal(&idx, 7).unwrap(), f32::INFINITY, &w).unwrap();
    bad.insert("weight".into(), inf);
    assert!(s.unscale_and_update(&bad).unwrap().is_none());
    assert_eq!(s.scale_value(), 1024.0);
    assert_eq!(s.skipped_steps(), 1);
    let mut nan = g.clone();
    nan.insert(
        "bias".into(),
        ingot::full(&[3], f64::NAN, DType::F32).unwrap(),
    );
    assert!(s.unscale_and_update(&nan).unwrap().is_none());
    assert_eq!(s.scale_value(), 512.0);
    assert!(s.unscale_and_update(&g).unwrap().is_some());
    assert_eq!(s.scale_value(), 512.0);
    // state round trip
    let mut t = LossScaler::new();
    t.load_state(&s.state()).unwrap();
    assert_eq!(t.scale_value(), 512.0);
    assert!(t.load_state(&BTreeMap::new()).is_err());
    // a float16 gradient under a scale whose inverse float16 cannot hold (2^-25 rounds
    // to 0 there): unscaled in float32, 2 * 2^-25 is float16's smallest step
    let mut big = LossScaler::with(33554432.0, 2.0, 0.5, 100).unwrap();
    let g16 = BTreeMap::from([("w".to_string(), ingot::full(&[2], 2.0, DType::F16).unwrap())]);
    let u = big.unscale_and_update(&g16).unwrap().unwrap();
    assert_eq!(u["w"].dtype(), DType::F16);
    assert_eq!(f64s(&u["w"]), [2f64.powi(-24); 2]);
    assert!(LossScaler::with(0.0, 2.0, 0.5, 1).is_err());
    assert!(LossScaler::with(8.0, 2.0, 1.5, 1).is_err());
}

#[test]
fn float16_autocast_trains_float32_master_weights() {
    let mut model = Linear::with(8, 1, true, &rng::key(3), DType::F32).unwrap();
    let x = ingot::random::normal(&rng::key(4), &[64, 8], 0.0, 1.0, DType::F32).unwrap();
    let true_w = ingot::random::normal(&rng::key(5), &[8, 1], 0.0, 1.0, DType::F32).unwrap();
    let y = ingot::add(ingot::matmul(&x, &true_w).unwrap(), 0.5).unwrap();
    let mut scaler = LossScaler::new();
    let loss = |m: &Linear| -> ingot::Result<Array> {
        let d = ingot::subtract(&m.forward(&x)?, &y)?;
        ingot::mean(&ingot::square(&d)?, None, false)
    };
    let first = loss(&model).unwrap().item::<f32>().unwrap();
    for _ in 0..200 {
        let (_, g) = ingot::autocast(DType::F16, || {
            value_and_grad(&mut model, |m| scaler.scale(&loss(m)?))
        })
        .unwrap()
        .unwrap();
        if let Some(g) = scaler.unscale_and_update(&g).unwrap() {
            assert!(g.values().all(|a| a.dtype() == DType::F32));
            let new: BTreeMap<String, Array> = model
                .trainable_parameters()
                .into_iter()
                .map(|(n, p)| {
                    let step = ingot::multiply(&g[&n], 0.1).unwrap();
                    (n, ingot::subtract(&p, &step).unwrap())
                })
                .collect();
            model.update(&new).unwrap();
            model.eval_parameters().unwrap();
        }
    }
    assert!(model.parameters().values().all(|a| a.dtype() == DType::F32));
    let last = loss(&model).unwrap().item::<f32>().unwrap();
    // float16 products limit how low it goes; it still falls by orders of magnitude
    assert!(last < first * 1e-3, "loss {first} -> {last}");
}
