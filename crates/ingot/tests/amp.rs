//! Automatic mixed precision: the dtype every op takes inside `autocast`, the values it
//! gives, gradients in the parameters' dtype, nesting, and compiled functions keyed by it.

mod common;
use common::*;
use ingot::{autocast, autocast_dtype, value_and_grad, Array, DType};

fn rand(rng: &mut Rng, shape: &[usize]) -> (Array, Vec<f64>) {
    rand_array(rng, shape, DType::F32)
}

#[test]
fn autocast_picks_each_ops_dtype() {
    let mut r = Rng::new(1);
    let (x, _) = rand(&mut r, &[4, 8]);
    let (w, _) = rand(&mut r, &[8, 3]);
    let img = rand(&mut r, &[2, 5, 5, 3]).0;
    let filt = rand(&mut r, &[4, 3, 3, 3]).0;
    let x16 = ingot::astype(&x, DType::BF16).unwrap();
    let x64 = ingot::astype(&x, DType::F64).unwrap();
    let ints = ingot::astype(&x, DType::I32).unwrap();
    for low in [DType::BF16, DType::F16] {
        let low16 = ingot::astype(&x, low).unwrap();
        let cases: Vec<(&str, Array, DType)> = autocast(low, || {
            vec![
                ("matmul f32", ingot::matmul(&x, &w).unwrap(), low),
                (
                    "matmul f64",
                    ingot::matmul(&x64, &ingot::astype(&w, DType::F64).unwrap()).unwrap(),
                    DType::F64,
                ),
                (
                    "matmul int",
                    ingot::matmul(&ints, &ingot::transpose(&ints, None).unwrap()).unwrap(),
                    DType::I32,
                ),
                (
                    "conv2d f32",
                    ingot::conv2d(&img, &filt, &[1], 1usize, &[1], 1).unwrap(),
                    low,
                ),
                (
                    "einsum f32",
                    ingot::einsum("ij,jk->ik", &[x.clone(), w.clone()]).unwrap(),
                    low,
                ),
                (
                    "sum half",
                    ingot::sum(&low16, None, false).unwrap(),
                    DType::F32,
                ),
                (
                    "mean half",
                    ingot::mean(&low16, Some(&[1]), false).unwrap(),
                    DType::F32,
                ),
                (
                    "var half",
                    ingot::var(&low16, None, false, 0).unwrap(),
                    DType::F32,
                ),
                (
                    "logsumexp half",
                    ingot::logsumexp(&low16, Some(&[-1]), false).unwrap(),
                    DType::F32,
                ),
                (
                    "cumsum half",
                    ingot::cumsum(&low16, Some(1), false, true).unwrap(),
                    DType::F32,
                ),
                (
                    "softmax half",
                    ingot::softmax(&low16, -1).unwrap(),
                    DType::F32,
                ),
                (
                    "log_softmax half",
                    ingot::log_softmax(&low16, -1).unwrap(),
                    DType::F32,
                ),
                ("exp half", ingot::exp(&low16).unwrap(), DType::F32),
                ("log half", ingot::log(&low16).unwrap(), DType::F32),
                ("rsqrt half", ingot::rsqrt(&low16).unwrap(), DType::F32),
                ("tanh half", ingot::tanh(&low16).unwrap(), low),
                ("max half", ingot::max(&low16, None, false).unwrap(), low),
                ("sum f32", ingot::sum(&x, None, false).unwrap(), DType::F32),
                (
                    "norm f32",
                    ingot::norm(&x, ingot::NormOrd::Default, None, false).unwrap(),
                    DType::F32,
                ),
                (
                    "norm half",
                    ingot::norm(&low16, ingot::NormOrd::Default, None, false).unwrap(),
                    DType::F32,
                ),
                ("pinv f32", ingot::pinv(&x, 1e-15).unwrap(), DType::F32),
                ("add half+f32", ingot::add(&low16, &x).unwrap(), DType::F32),
            ]
        })
        .unwrap();
        for (what, a, want) in cases {
            assert_eq!(a.dtype(), want, "{what} under autocast {low}");
            a.eval().unwrap();
        }
    }
    // outside autocast nothing changes
    assert_eq!(autocast_dtype(), None);
    assert_eq!(ingot::matmul(&x, &w).unwrap().dtype(), DType::F32);
    assert_eq!(ingot::sum(&x16, None, false).unwrap().dtype(), DType::BF16);
    let e = autocast(DType::F32, || ()).unwrap_err().to_string();
    assert!(e.contains("autocast") && e.contains("float32"), "{e}");
}

#[test]
fn norms_under_autocast_do_not_overflow_half_precision() {
    // The squares sum past float16's 65504: a norm summed in float16 would be inf.
    let x = ingot::full(&[64], 300.0, DType::F32).unwrap();
    let n = autocast(DType::F16, || {
        ingot::norm(&x, ingot::NormOrd::Default, None, false).unwrap()
    })
    .unwrap();
    assert_eq!(n.dtype(), DType::F32);
    assert_eq!(n.item::<f32>().unwrap(), 2400.0);
}

#[test]
fn autocast_values_are_the_low_precision_ops() {
    let mut r = Rng::new(2);
    let (x, _) = rand(&mut r, &[6, 16]);
    let (w, _) = rand(&mut r, &[16, 5]);
    let bf = |a: &Array| ingot::astype(a, DType::BF16).unwrap();
    let got = autocast(DType::BF16, || ingot::matmul(&x, &w).unwrap()).unwrap();
    let want = ingot::matmul(&bf(&x), &bf(&w)).unwrap();
    assert_eq!(got.to_f64_vec().unwrap(), want.to_f64_vec().unwrap());
    // nesting: the inner scope's dtype, then the outer's again
    autocast(DType::BF16, || {
        assert_eq!(autocast_dtype(), Some(DType::BF16));
        autocast(DType::F16, || {
            assert_eq!(ingot::matmul(&x, &w).unwrap().dtype(), DType::F16);
        })
        .unwrap();
        assert_eq!(autocast_dtype(), Some(DType::BF16));
    })
    .unwrap();
    assert_eq!(autocast_dtype(), None);
}

#[test]
fn gradients_under_autocast_are_in_the_parameters_dtype() {
    let mut r = Rng::new(3);
    let (x, _) = rand(&mut r, &[8, 12]);
    let (w, _) = rand(&mut r, &[12, 4]);
    let loss = |a: &[Array]| -> ingot::Result<Array> {
        let y = ingot::matmul(&a[0], &a[1])?;
        ingot::mean(&ingot::square(&ingot::log_softmax(&y, -1)?)?, None, false)
    };
    let vg = value_and_grad(loss, &[1]);
    let (v, g) = autocast(DType::BF16, || vg(&[x.clone(), w.clone()]).unwrap()).unwrap();
    assert_eq!(v.dtype(), DType::F32);
    assert_eq!(g[0].dtype(), DType::F32);
    // the same computation written with explicit casts
    let explicit = |a: &[Array]| -> ingot::Result<Array> {
        let bf = |t: &Array| ingot::astype(t, DType::BF16);
        let y = ingot::matmul(&bf(&a[0])?, &bf(&a[1])?)?;
        let y = ingot::astype(&y, DType::F32)?;
        ingot::mean(&ingot::square(&ingot::log_softmax(&y, -1)?)?, None, false)
    };
    let (v2, g2) = value_and_grad(explicit, &[1])(&[x.clone(), w.clone()]).unwrap();
    assert_eq!(v.to_f64_vec().unwrap(), v2.to_f64_vec().unwrap());
    assert_eq!(g[0].to_f64_vec().unwrap(), g2[0].to_f64_vec().unwrap());
    // and close to the float32 gradient
    let (_, g3) = value_and_grad(loss, &[1])(&[x, w]).unwrap();
    assert_close(
        &g[0].to_f64_vec().unwrap(),
        &g3[0].to_f64_vec().unwrap(),
        5e-2,
        5e-3,
        "bf16 vs f32 gradient",
    );
}

#[test]
fn compiled_functions_are_traced_per_autocast_setting() {
    let mut r = Rng::new(4);
    let (x, _) = rand(&mut r, &[4, 4]);
    let f = ingot::compile(|a: &[Array]| Ok(vec![ingot::matmul(&a[0], &a[0])?]));
    let plain = f.call(std::slice::from_ref(&x)).unwrap();
    let low = autocast(DType::BF16, || f.call(std::slice::from_ref(&x)).unwrap()).unwrap();
    let plain2 = f.call(std::slice::from_ref(&x)).unwrap();
    assert_eq!(plain[0].dtype(), DType::F32);
    assert_eq!(low[0].dtype(), DType::BF16);
    assert_eq!(plain2[0].dtype(), DType::F32);
    assert_eq!(f.stats().traces, 2);
    assert_eq!(
        plain[0].to_f64_vec().unwrap(),
        plain2[0].to_f64_vec().unwrap()
    );
}
