//! Activations against plain f64 references (values, dtypes, strided inputs, NaN and
//! infinities), gradients against central differences, and the Activation / PRelu modules.

mod common;

use common::*;
use ingot::{Array, DType, Result};
use ingot_nn::activations::{self as act, Activation, PRelu};
use ingot_nn::{Linear, ModuleExt, Sequential, Unary};

const SA: f64 = act::SELU_ALPHA;
const SS: f64 = act::SELU_SCALE;

/// erf by the everywhere-positive series `2/sqrt(pi) e^{-x^2} sum 2^n x^{2n+1} / (2n+1)!!`
/// (no cancellation; |x| > 6 is ±1 to f64 precision).
fn erf(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    if x.abs() > 6.0 {
        return x.signum();
    }
    let mut term = x;
    let mut sum = x;
    for n in 1..400 {
        term *= 2.0 * x * x / (2 * n + 1) as f64;
        sum += term;
        if term.abs() < 1e-17 * sum.abs() {
            break;
        }
    }
    2.0 / std::f64::consts::PI.sqrt() * (-x * x).exp() * sum
}

fn sp(x: f64) -> f64 {
    // log(1 + e^x), stable
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

fn r_elu(x: f64, a: f64) -> f64 {
    if x > 0.0 {
        x
    } else {
        a * x.exp_m1()
    }
}

fn r_hsig(x: f64) -> f64 {
    (x + 3.0).clamp(0.0, 6.0) / 6.0
}

type ActFn = fn(&Array) -> Result<Array>;

struct Case {
    name: &'static str,
    f: ActFn,
    r: fn(f64) -> f64,
    /// Non-finite inputs whose result is defined (NaN is always tested).
    specials: &'static [f64],
}

const INF: f64 = f64::INFINITY;
const BOTH: &[f64] = &[INF, -INF];
const POS: &[f64] = &[INF];

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "relu",
            f: act::relu,
            r: |x| if x > 0.0 || x.is_nan() { x } else { 0.0 },
            specials: BOTH,
        },
        Case {
            name: "relu6",
            f: act::relu6,
            r: |x| x.clamp(0.0, 6.0),
            specials: BOTH,
        },
        Case {
            name: "leaky_relu",
            f: |x| act::leaky_relu(x, 0.1),
            r: |x| if x > 0.0 { x } else { 0.1 * x },
            specials: BOTH,
        },
        Case {
            name: "elu",
            f: |x| act::elu(x, 1.3),
            r: |x| r_elu(x, 1.3),
            specials: BOTH,
        },
        Case {
            name: "selu",
            f: act::selu,
            r: |x| SS * r_elu(x, SA),
            specials: BOTH,
        },
        Case {
            name: "celu",
            f: |x| act::celu(x, 0.7),
            r: |x| if x > 0.0 { x } else { 0.7 * (x / 0.7).exp_m1() },
            specials: BOTH,
        },
        Case {
            name: "gelu",
            f: act::gelu,
            r: |x| 0.5 * x * (1.0 + erf(x / 2f64.sqrt())),
            specials: POS,
        },
        Case {
            name: "gelu_tanh",
            f: act::gelu_tanh,
            r: |x| {
                let c = (2.0 / std::f64::consts::PI).sqrt();
                0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh())
            },
            specials: POS,
        },
        Case {
            name: "silu",
            f: act::silu,
            r: |x| x / (1.0 + (-x).exp()),
            specials: POS,
        },
        Case {
            name: "mish",
            f: act::mish,
            r: |x| x * sp(x).tanh(),
            specials: POS,
        },
        Case {
            name: "softplus",
            f: |x| act::softplus(x, 1.5, 10.0),
            r: |x| if 1.5 * x > 10.0 { x } else { sp(1.5 * x) / 1.5 },
            specials: BOTH,
        },
        Case {
            name: "softsign",
            f: act::softsign,
            r: |x| x / (1.0 + x.abs()),
            specials: &[],
        },
        Case {
            name: "softshrink",
            f: |x| act::softshrink(x, 0.5),
            r: |x| {
                if x > 0.5 {
                    x - 0.5
                } else if x < -0.5 {
                    x + 0.5
                } else if x.is_nan() {
                    x
                } else {
                    0.0
                }
            },
            specials: BOTH,
        },
        Case {
            name: "hardshrink",
            f: |x| act::hardshrink(x, 0.5),
            r: |x| if x.abs() <= 0.5 { 0.0 } else { x },
            specials: BOTH,
        },
        Case {
            name: "hardtanh",
            f: |x| act::hardtanh(x, -0.7, 1.2),
            r: |x| x.clamp(-0.7, 1.2),
            specials: BOTH,
        },
        Case {
            name: "hard_sigmoid",
            f: act::hard_sigmoid,
            r: r_hsig,
            specials: BOTH,
        },
        Case {
            name: "hard_swish",
            f: act::hard_swish,
            r: |x| x * r_hsig(x),
            specials: POS,
        },
        Case {
            name: "sigmoid",
            f: act::sigmoid,
            r: |x| 1.0 / (1.0 + (-x).exp()),
            specials: BOTH,
        },
        Case {
            name: "log_sigmoid",
            f: act::log_sigmoid,
            r: |x| -sp(-x),
            specials: BOTH,
        },
        Case {
            name: "tanh",
            f: act::tanh,
            r: f64::tanh,
            specials: BOTH,
        },
        Case {
            name: "step",
            f: act::step,
            r: |x| if x > 0.0 { 1.0 } else { 0.0 },
            specials: BOTH,
        },
    ]
}

/// 40 inputs: normals of scale 3, large values both ways, kinks, and the case's specials.
fn inputs(seed: u64, specials: &[f64]) -> Vec<f64> {
    let mut rng = Rng::new(seed);
    let mut v = rng.normals(40, 3.0);
    let fixed = [-30.0, -12.0, 25.0, 40.0, 0.0, 0.5, -3.0, 3.0];
    v[..fixed.len()].copy_from_slice(&fixed);
    v[fixed.len()] = f64::NAN;
    for (i, &s) in specials.iter().enumerate() {
        v[fixed.len() + 1 + i] = s;
    }
    v
}

fn tolerances(dtype: DType) -> (f64, f64) {
    match dtype {
        DType::F64 => (1e-12, 1e-13),
        DType::F32 => (1e-5, 1e-6),
        DType::F16 => (4e-3, 1e-4),
        _ => (3e-2, 1e-3),
    }
}

#[test]
fn values_against_f64_references() {
    for (k, case) in cases().iter().enumerate() {
        let vals = inputs(100 + k as u64, case.specials);
        for dtype in [DType::F64, DType::F32, DType::F16, DType::BF16] {
            let x = if dtype == DType::F32 {
                // A transposed (strided) view holding the same values.
                transposed_2d(&vals, &[5, 8], dtype)
            } else {
                array_from_f64(&vals, &[5, 8], dtype)
            };
            let held = to_f64(&x);
            let y = (case.f)(&x).unwrap_or_else(|e| panic!("{}: {e}", case.name));
            assert_eq!(y.dtype(), dtype, "{} keeps {dtype}", case.name);
            assert_eq!(y.shape(), &[5, 8]);
            let want: Vec<f64> = held.iter().map(|&v| round_to((case.r)(v), dtype)).collect();
            let (rtol, atol) = tolerances(dtype);
            assert_close(
                &to_f64(&y),
                &want,
                rtol,
                atol,
                &format!("{} {dtype}", case.name),
            );
        }
    }
}

#[test]
fn activation_enum_matches_functions() {
    let vals = inputs(7, &[]);
    let x = array_from_f64(&vals, &[5, 8], DType::F64);
    let pairs: Vec<(Activation, ActFn)> = vec![
        (Activation::Relu, act::relu),
        (Activation::Relu6, act::relu6),
        (Activation::LeakyRelu(0.1), |x| act::leaky_relu(x, 0.1)),
        (Activation::Elu(1.3), |x| act::elu(x, 1.3)),
        (Activation::Selu, act::selu),
        (Activation::Celu(0.7), |x| act::celu(x, 0.7)),
        (Activation::Gelu, act::gelu),
        (Activation::GeluTanh, act::gelu_tanh),
        (Activation::Silu, act::silu),
        (Activation::Mish, act::mish),
        (Activation::SOFTPLUS, |x| act::softplus(x, 1.0, 20.0)),
        (Activation::Softsign, act::softsign),
        (Activation::Softshrink(0.5), |x| act::softshrink(x, 0.5)),
        (Activation::Hardshrink(0.5), |x| act::hardshrink(x, 0.5)),
        (
            Activation::Hardtanh {
                min: -1.0,
                max: 1.0,
            },
            |x| act::hardtanh(x, -1.0, 1.0),
        ),
        (Activation::HardSwish, act::hard_swish),
        (Activation::HardSigmoid, act::hard_sigmoid),
        (Activation::Sigmoid, act::sigmoid),
        (Activation::LogSigmoid, act::log_sigmoid),
        (Activation::Tanh, act::tanh),
        (Activation::Glu(-1), |x| act::glu(x, -1)),
        (Activation::Step, act::step),
        (Activation::Softmax(-1), |x| ingot::softmax(x, -1)),
        (Activation::LogSoftmax(-1), |x| ingot::log_softmax(x, -1)),
        (Activation::Identity, |x| Ok(x.clone())),
    ];
    for (a, f) in pairs {
        let got = to_f64(&a.forward(&x).unwrap());
        let want = to_f64(&f(&x).unwrap());
        assert_close(&got, &want, 0.0, 0.0, &format!("{a:?}"));
        assert!(a.parameters().is_empty(), "{a:?} has no parameters");
    }
}

#[test]
fn sequential_with_activation_and_prelu() {
    let key = ingot_nn::rng::key(3);
    let lin = Linear::with(4, 3, true, &key, DType::F64).unwrap();
    let model = Sequential::new()
        .push(lin.clone())
        .push(Activation::Relu)
        .push(PRelu::new(1).unwrap())
        .push(Activation::LeakyRelu(0.2));
    let names: Vec<String> = model.parameters().into_keys().collect();
    assert_eq!(names, ["0.bias", "0.weight", "2.weight"]);
    let mut rng = Rng::new(5);
    let xv = rng.normals(8, 2.0);
    let x = Array::from_slice(&xv, &[2, 4]).unwrap();
    let got = to_f64(&model.forward(&x).unwrap());
    // relu output is >= 0, so prelu and leaky relu leave it unchanged.
    let want: Vec<f64> = to_f64(&lin.forward(&x).unwrap())
        .iter()
        .map(|v| v.max(0.0))
        .collect();
    assert_close(
        &got,
        &want,
        1e-12,
        1e-12,
        "Linear -> Relu -> PRelu -> LeakyRelu",
    );
    assert!(want.contains(&0.0) && want.iter().any(|&v| v > 0.0));
}

#[test]
fn prelu_layer_and_function() {
    let p = PRelu::new(3).unwrap();
    assert_eq!(p.weight.value.shape(), &[3]);
    assert_eq!(p.weight.value.dtype(), DType::F32);
    assert_eq!(to_f64(&p.weight.value), [0.25, 0.25, 0.25]);
    assert_eq!(p.trainable_parameters().len(), 1);

    let mut rng = Rng::new(11);
    let xv = rng.normals(12, 2.0);
    let wv = [0.1, -0.5, 2.0];
    let x = array_from_f64(&xv, &[4, 3], DType::F16);
    let w = Array::from_slice(&wv, &[3]).unwrap();
    let y = act::prelu(&x, &w).unwrap();
    assert_eq!(y.dtype(), DType::F16);
    let held = to_f64(&x);
    let want: Vec<f64> = held
        .iter()
        .enumerate()
        .map(|(i, &v)| round_to(if v > 0.0 { v } else { wv[i % 3] * v }, DType::F16))
        .collect();
    assert_close(&to_f64(&y), &want, 2e-3, 1e-4, "prelu f16");

    // Gradient with respect to the weight and the input (f64, through the layer).
    let mut layer = PRelu::with(3, 0.25, DType::F64).unwrap();
    layer
        .update(&[("weight".to_string(), Array::from_slice(&wv, &[3]).unwrap())].into())
        .unwrap();
    let xa = Array::from_slice(&xv, &[4, 3]).unwrap();
    let (_, g) = ingot_nn::value_and_grad(&mut layer, |m: &PRelu| {
        ingot::sum(&m.forward(&xa)?, None, false)
    })
    .unwrap();
    let mut want_g = [0.0; 3];
    for (i, &v) in xv.iter().enumerate() {
        if v <= 0.0 {
            want_g[i % 3] += v;
        }
    }
    assert_close(
        &to_f64(&g["weight"]),
        &want_g,
        1e-12,
        1e-12,
        "d prelu / d weight",
    );
    let wa = Array::from_slice(&wv, &[3]).unwrap();
    check_grad(
        "prelu dx",
        move |x| ingot::sum(&act::prelu(x, &wa)?, None, false),
        &xv,
        &[4, 3],
    );

    // Bad weights name the op and the shapes.
    let bad = Array::from_slice(&[1.0f64, 2.0], &[2]).unwrap();
    let e = act::prelu(&xa, &bad).unwrap_err().to_string();
    assert!(
        e.contains("prelu") && e.contains("[2]") && e.contains("[4, 3]"),
        "{e}"
    );
    assert!(PRelu::with(0, 0.25, DType::F32).is_err());
    assert!(PRelu::with(2, 0.25, DType::I32).is_err());
}

#[test]
fn glu_splits_halves() {
    let mut rng = Rng::new(21);
    let v = rng.normals(24, 2.0);
    let x = array_from_f64(&v, &[4, 6], DType::F32);
    let sig = |z: f64| 1.0 / (1.0 + (-z).exp());
    // Along the last axis: a = columns 0..3, b = 3..6.
    let y = act::glu(&x, -1).unwrap();
    assert_eq!(y.shape(), &[4, 3]);
    assert_eq!(y.dtype(), DType::F32);
    let held = to_f64(&x);
    let mut want = vec![];
    for r in 0..4 {
        for c in 0..3 {
            want.push(held[r * 6 + c] * sig(held[r * 6 + c + 3]));
        }
    }
    assert_close(&to_f64(&y), &want, 1e-5, 1e-6, "glu axis -1");
    // Along axis 0: rows 0..2 gate with rows 2..4.
    let y0 = act::glu(&x, 0).unwrap();
    assert_eq!(y0.shape(), &[2, 6]);
    let want0: Vec<f64> = (0..12).map(|i| held[i] * sig(held[i + 12])).collect();
    assert_close(&to_f64(&y0), &want0, 1e-5, 1e-6, "glu axis 0");
    // Odd axis and bad axis are errors naming the shape.
    let odd = array_from_f64(&v[..15], &[3, 5], DType::F32);
    let e = act::glu(&odd, 1).unwrap_err().to_string();
    assert!(
        e.contains("glu") && e.contains("[3, 5]") && e.contains("odd"),
        "{e}"
    );
    assert!(act::glu(&x, 2).is_err());
    assert!(act::glu(&x, -3).is_err());
}

#[test]
fn gradients_against_finite_differences() {
    let mut rng = Rng::new(31);
    // Away from kinks (|x| > 0.05) so central differences are exact enough.
    let xv: Vec<f64> = rng
        .normals(12, 2.5)
        .into_iter()
        .map(|v| if v.abs() < 0.05 { v + 0.2 } else { v })
        .collect();
    let coef = Array::from_vec(rng.normals(12, 1.0), &[3, 4]).unwrap();
    let fs: Vec<(&str, ActFn)> = vec![
        ("relu", act::relu),
        ("leaky_relu", |x| act::leaky_relu(x, 0.1)),
        ("elu", |x| act::elu(x, 1.3)),
        ("selu", act::selu),
        ("celu", |x| act::celu(x, 0.7)),
        ("gelu", act::gelu),
        ("gelu_tanh", act::gelu_tanh),
        ("silu", act::silu),
        ("mish", act::mish),
        ("softplus", |x| act::softplus(x, 1.5, 10.0)),
        ("softsign", act::softsign),
        ("softshrink", |x| act::softshrink(x, 0.5)),
        ("hard_swish", act::hard_swish),
        ("log_sigmoid", act::log_sigmoid),
        ("glu", |x| act::glu(x, -1)),
    ];
    for (name, f) in fs {
        let c = if name == "glu" {
            ingot::slice_axis(&coef, -1, ingot::SliceArg::range(0, 2)).unwrap()
        } else {
            coef.clone()
        };
        check_grad(
            name,
            move |x| ingot::sum(&ingot::multiply(&f(x)?, &c)?, None, false),
            &xv,
            &[3, 4],
        );
    }
}

#[test]
fn gradients_at_kinks_and_extremes() {
    let g = |f: ActFn, v: &[f64]| -> Vec<f64> {
        let x = Array::from_slice(v, &[v.len()]).unwrap();
        let gf = ingot::grad(move |a: &[Array]| ingot::sum(&f(&a[0])?, None, false), &[0]);
        to_f64(&gf(&[x]).unwrap()[0])
    };
    // PyTorch's derivatives at the kinks.
    assert_eq!(g(act::relu, &[0.0, -1.0, 2.0]), [0.0, 0.0, 1.0]);
    assert_eq!(g(|x| act::leaky_relu(x, 0.1), &[0.0]), [0.1]);
    assert_eq!(g(|x| act::elu(x, 2.0), &[0.0]), [2.0]);
    assert_eq!(g(act::relu6, &[6.0, 5.0, 0.0]), [0.0, 1.0, 0.0]);
    // No 0 * inf from discarded branches at large |x|.
    let big = [-800.0, -100.0, 100.0, 800.0];
    for (name, f) in [
        ("elu", (|x| act::elu(x, 1.0)) as ActFn),
        ("selu", act::selu),
        ("celu", |x| act::celu(x, 1.0)),
        ("softplus", |x| act::softplus(x, 1.0, 20.0)),
        ("softplus huge threshold", |x| act::softplus(x, 1.0, 1e30)),
        ("log_sigmoid", act::log_sigmoid),
        ("mish", act::mish),
        ("silu", act::silu),
    ] {
        let gv = g(f, &big);
        assert!(gv.iter().all(|v| v.is_finite()), "{name}: {gv:?}");
        let slope = match name {
            "selu" => SS,
            "log_sigmoid" => 0.0,
            _ => 1.0,
        };
        assert!(
            (gv[3] - slope).abs() < 1e-12,
            "{name} slope at +800: {gv:?}"
        );
    }
    assert_eq!(g(act::log_sigmoid, &[-800.0]), [1.0]);
    assert_eq!(g(|x| act::softplus(x, 1.0, 20.0), &[0.0]), [0.5]);
}

#[test]
fn dtypes_and_errors() {
    // Integers compute as f32; complex is refused with the op's name.
    let i = Array::from_slice(&[-2i32, 0, 3], &[3]).unwrap();
    let y = act::relu(&i).unwrap();
    assert_eq!(y.dtype(), DType::F32);
    assert_eq!(to_f64(&y), [0.0, 0.0, 3.0]);
    let z = ingot::astype(
        &Array::from_slice(&[1.0f32, -1.0], &[2]).unwrap(),
        DType::C64,
    )
    .unwrap();
    let e = act::gelu(&z).unwrap_err().to_string();
    assert!(e.contains("gelu") && e.contains("complex64"), "{e}");
    // Bad scalar parameters.
    let x = Array::from_slice(&[1.0f32], &[1]).unwrap();
    assert!(act::celu(&x, 0.0).is_err());
    assert!(act::softplus(&x, 0.0, 20.0).is_err());
    assert!(act::softshrink(&x, -0.1).is_err());
    assert!(act::hardshrink(&x, f64::NAN).is_err());
    let e = act::hardtanh(&x, 1.0, -1.0).unwrap_err().to_string();
    assert!(e.contains("hardtanh"), "{e}");
    assert!(act::leaky_relu(&x, f64::INFINITY).is_err());
    // A scalar and an empty array keep shape and dtype.
    let s = array_from_f64(&[-1.5], &[], DType::BF16);
    let ys = act::silu(&s).unwrap();
    assert_eq!((ys.shape(), ys.dtype()), (&[][..], DType::BF16));
    let e0 = array_from_f64(&[], &[0, 3], DType::F16);
    let ye = act::gelu(&e0).unwrap();
    assert_eq!((ye.shape(), ye.dtype()), (&[0, 3][..], DType::F16));
    assert!(to_f64(&ye).is_empty());
}
