//! Elementwise ops against f64 references: every dtype, contiguous and strided layouts,
//! broadcasting, weak scalars, NaN/inf/-0.0, and error messages.

mod common;
use common::*;
use ingot::{Array, DType};

type UFn = fn(&Array) -> ingot::Result<Array>;

#[test]
fn unary_float_ops_match_reference() {
    let cases: Vec<(&str, UFn, fn(f64) -> f64, f64)> = vec![
        ("exp", ingot::exp, f64::exp, 0.0),
        ("expm1", ingot::expm1, f64::exp_m1, 0.0),
        ("log", ingot::log, f64::ln, 0.0),
        ("log1p", ingot::log1p, f64::ln_1p, 0.0),
        ("log2", ingot::log2, f64::log2, 0.0),
        ("log10", ingot::log10, f64::log10, 0.0),
        ("sqrt", ingot::sqrt, f64::sqrt, 0.0),
        ("rsqrt", ingot::rsqrt, |x| 1.0 / x.sqrt(), 0.0),
        ("reciprocal", ingot::reciprocal, |x| 1.0 / x, 0.0),
        ("sin", ingot::sin, f64::sin, 1e-6),
        ("cos", ingot::cos, f64::cos, 1e-6),
        ("tan", ingot::tan, f64::tan, 1e-6),
        ("arcsin", ingot::arcsin, f64::asin, 0.0),
        ("arccos", ingot::arccos, f64::acos, 0.0),
        ("arctan", ingot::arctan, f64::atan, 0.0),
        ("sinh", ingot::sinh, f64::sinh, 0.0),
        ("cosh", ingot::cosh, f64::cosh, 0.0),
        ("tanh", ingot::tanh, f64::tanh, 1e-7),
        ("arcsinh", ingot::arcsinh, f64::asinh, 0.0),
        ("arccosh", ingot::arccosh, f64::acosh, 0.0),
        ("arctanh", ingot::arctanh, f64::atanh, 0.0),
        ("erf", ingot::erf, libm_erf, 1e-7),
        (
            "sigmoid",
            ingot::sigmoid,
            |x| 1.0 / (1.0 + (-x).exp()),
            1e-7,
        ),
        (
            "gelu",
            ingot::gelu,
            |x| 0.5 * x * (1.0 + libm_erf(x * std::f64::consts::FRAC_1_SQRT_2)),
            1e-7,
        ),
        // f32 computes 1 + tanh(..) in f32, which cancels for x well below 0 (as PyTorch's).
        ("gelu_tanh", ingot::gelu_tanh, gelu_tanh_ref, 1e-6),
        ("abs", ingot::abs, f64::abs, 0.0),
        ("negative", ingot::negative, |x| -x, 0.0),
        ("square", ingot::square, |x| x * x, 0.0),
        ("floor", ingot::floor, f64::floor, 0.0),
        ("ceil", ingot::ceil, f64::ceil, 0.0),
        (
            "sign",
            ingot::sign,
            |x| {
                if x > 0.0 {
                    1.0
                } else if x < 0.0 {
                    -1.0
                } else {
                    x
                }
            },
            0.0,
        ),
    ];
    let mut rng = Rng::new(1);
    for dtype in FLOATS {
        for shape in shapes() {
            let (a, vals) = rand_array(&mut rng, &shape, dtype);
            // special values where the shape has room
            let mut vals = vals;
            for (i, s) in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, 0.5]
                .iter()
                .enumerate()
            {
                if i < vals.len() {
                    vals[i] = *s;
                }
            }
            let a = if vals.is_empty() {
                a
            } else {
                array_from_f64(&vals, &shape, dtype)
            };
            let strided = noncontiguous(&vals, &shape, dtype);
            for (name, f, r, atol) in &cases {
                for (layout, x) in [("contiguous", &a), ("strided", &strided)] {
                    let out = f(x).unwrap();
                    assert_eq!(out.shape(), shape.as_slice());
                    assert_eq!(out.dtype(), dtype, "{name}");
                    let got = out.to_f64_vec().unwrap();
                    let want: Vec<f64> = vals.iter().map(|&v| round_to(r(v), dtype)).collect();
                    let t = tol(dtype).max(if dtype == DType::F32 { 2e-6 } else { 0.0 });
                    assert_close(
                        &got,
                        &want,
                        t * 4.0,
                        *atol + t,
                        &format!("{name} {dtype} {shape:?} {layout}"),
                    );
                }
            }
        }
    }
}

/// Both GELU gradient ops (`g * gelu'(x)`, what the GELUs' vjps run) against the
/// derivative in f64: every float dtype, contiguous and strided, NaN/inf/-0.0.
#[test]
fn gelu_grads_match_reference() {
    type BFn = fn(&Array, &Array) -> ingot::Result<Array>;
    let sqrt_2_pi = (2.0 / std::f64::consts::PI).sqrt();
    let exact = |x: f64| {
        0.5 * (1.0 + libm_erf(x * std::f64::consts::FRAC_1_SQRT_2))
            + x * (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
    };
    let tanh_form = move |x: f64| {
        let t = (sqrt_2_pi * (x + 0.044715 * x * x * x)).tanh();
        0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * sqrt_2_pi * (1.0 + 3.0 * 0.044715 * x * x)
    };
    let cases: [(&str, BFn, &dyn Fn(f64) -> f64); 2] = [
        ("gelu_grad", |x, g| ingot::gelu_grad(x, g), &exact),
        (
            "gelu_tanh_grad",
            |x, g| ingot::gelu_tanh_grad(x, g),
            &tanh_form,
        ),
    ];
    let mut rng = Rng::new(7);
    for dtype in FLOATS {
        for shape in shapes() {
            let (_, mut xs) = rand_array(&mut rng, &shape, dtype);
            let (_, gs) = rand_array(&mut rng, &shape, dtype);
            for (i, s) in [f64::NAN, f64::INFINITY, -0.0, 0.5, -3.0]
                .iter()
                .enumerate()
            {
                if i < xs.len() {
                    xs[i] = *s;
                }
            }
            let (x, g) = (
                array_from_f64(&xs, &shape, dtype),
                array_from_f64(&gs, &shape, dtype),
            );
            let (xt, gt) = (
                noncontiguous(&xs, &shape, dtype),
                noncontiguous(&gs, &shape, dtype),
            );
            for (name, f, d) in &cases {
                let want: Vec<f64> = xs
                    .iter()
                    .zip(&gs)
                    .map(|(&x, &g)| round_to(g * d(x), dtype))
                    .collect();
                for (layout, a, b) in [("contiguous", &x, &g), ("strided", &xt, &gt)] {
                    let out = f(a, b).unwrap();
                    assert_eq!(out.shape(), shape.as_slice(), "{name}");
                    assert_eq!(out.dtype(), dtype, "{name}");
                    // f32 and the halves compute the tanh form in f32 (as PyTorch).
                    let t = tol(dtype).max(if dtype == DType::F64 { 0.0 } else { 2e-6 });
                    assert_close(
                        &out.to_f64_vec().unwrap(),
                        &want,
                        t * 4.0,
                        t * 4.0,
                        &format!("{name} {dtype} {shape:?} {layout}"),
                    );
                }
            }
        }
    }
    // An integer x is promoted, a complex one refused with the op's name.
    let i = Array::from_slice(&[1i32, -2], &[2]).unwrap();
    assert_eq!(ingot::gelu_grad(&i, 1.0).unwrap().dtype(), DType::F32);
    let c = ingot::astype(&i, DType::C64).unwrap();
    let e = ingot::gelu_tanh_grad(&c, &c).unwrap_err().to_string();
    assert!(e.contains("gelu_tanh_grad"), "{e}");
}

/// How many f32 steps separate `a` and `b` (-0 and +0 count as the same point).
fn ulp_distance(a: f32, b: f32) -> i64 {
    let order = |v: f32| {
        let b = v.to_bits() as i64;
        if b < 0x8000_0000 {
            b
        } else {
            0x8000_0000 - b
        }
    };
    (order(a) - order(b)).abs()
}

fn gelu_tanh_ref(x: f64) -> f64 {
    let inner = (2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x);
    0.5 * x * (1.0 + inner.tanh())
}

fn libm_erf(x: f64) -> f64 {
    // reference erf by series/continued fraction is overkill: use the identity with erfc
    // from a high-precision approximation (Abramowitz-Stegun 7.1.26 is too coarse), so
    // integrate numerically instead.
    if x.is_nan() {
        return x;
    }
    if x.is_infinite() {
        return x.signum();
    }
    let n = 2000;
    let h = x / n as f64;
    let f = |t: f64| (-t * t).exp();
    let mut s = f(0.0) + f(x);
    for i in 1..n {
        s += if i % 2 == 1 { 4.0 } else { 2.0 } * f(i as f64 * h);
    }
    s * h / 3.0 * 2.0 / std::f64::consts::PI.sqrt()
}

#[test]
fn erfinv_inverts_erf() {
    let x = Array::from_slice(
        &[-0.999f64, -0.5, 0.0, 0.1, 0.9, 0.999999, 1.0, -1.0, 1.5],
        &[9],
    )
    .unwrap();
    let y = ingot::erfinv(&x).unwrap().to_vec::<f64>().unwrap();
    for (i, &v) in [-0.999f64, -0.5, 0.0, 0.1, 0.9, 0.999999]
        .iter()
        .enumerate()
    {
        assert!((libm_erf(y[i]) - v).abs() < 1e-9, "{v} -> {}", y[i]);
    }
    assert_eq!(y[6], f64::INFINITY);
    assert_eq!(y[7], f64::NEG_INFINITY);
    assert!(y[8].is_nan());
}

#[test]
fn ints_go_to_float32_for_float_math() {
    let a = Array::from_slice(&[1i32, 4, 9], &[3]).unwrap();
    let r = ingot::sqrt(&a).unwrap();
    assert_eq!(r.dtype(), DType::F32);
    assert_eq!(r.to_vec::<f32>().unwrap(), vec![1.0, 2.0, 3.0]);
}

#[test]
fn binary_arithmetic_all_dtypes_with_broadcast() {
    let mut rng = Rng::new(2);
    let ops: Vec<(
        &str,
        fn(&Array, &Array) -> ingot::Result<Array>,
        fn(f64, f64) -> f64,
    )> = vec![
        ("add", |a, b| ingot::add(a, b), |x, y| x + y),
        ("subtract", |a, b| ingot::subtract(a, b), |x, y| x - y),
        ("multiply", |a, b| ingot::multiply(a, b), |x, y| x * y),
        ("maximum", |a, b| ingot::maximum(a, b), f64::max),
        ("minimum", |a, b| ingot::minimum(a, b), f64::min),
    ];
    let shape_pairs = [
        (vec![3, 4], vec![3, 4]),
        (vec![3, 1], vec![1, 4]),
        (vec![], vec![2, 3]),
        (vec![0, 3], vec![3]),
        (vec![5, 2, 3], vec![2, 1]),
    ];
    for dtype in FLOATS.iter().chain(INTS.iter()) {
        for (sa, sb) in &shape_pairs {
            let (a, va) = rand_array(&mut rng, sa, *dtype);
            let (b, vb) = rand_array(&mut rng, sb, *dtype);
            let out_shape = ingot::shape::broadcast_shapes("t", sa, sb).unwrap();
            let bi = |v: &[f64], s: &[usize], idx: &[usize]| -> f64 {
                let off = out_shape.len() - s.len();
                let mut flat = 0;
                for d in 0..s.len() {
                    let i = if s[d] == 1 { 0 } else { idx[off + d] };
                    flat = flat * s[d] + i;
                }
                v[flat]
            };
            for (name, f, r) in &ops {
                let got = f(&a, &b).unwrap();
                assert_eq!(got.shape(), out_shape.as_slice());
                assert_eq!(got.dtype(), *dtype);
                let n: usize = out_shape.iter().product();
                let strides = ingot::shape::contiguous_strides(&out_shape);
                let want: Vec<f64> = (0..n)
                    .map(|i| {
                        let idx: Vec<usize> = (0..out_shape.len())
                            .map(|d| (i / strides[d] as usize) % out_shape[d])
                            .collect();
                        let v = r(bi(&va, sa, &idx), bi(&vb, sb, &idx));
                        // integers wrap as NumPy does
                        if dtype.is_integer() {
                            wrap(v, *dtype)
                        } else {
                            round_to(v, *dtype)
                        }
                    })
                    .collect();
                assert_close(
                    &got.to_f64_vec().unwrap(),
                    &want,
                    tol(*dtype) * 2.0,
                    0.0,
                    &format!("{name} {dtype} {sa:?} {sb:?}"),
                );
            }
        }
    }
}

fn wrap(v: f64, dtype: DType) -> f64 {
    let v = v as i128;
    match dtype {
        DType::U8 => v as u8 as f64,
        DType::U16 => v as u16 as f64,
        DType::U32 => v as u32 as f64,
        DType::U64 => v as u64 as f64,
        DType::I8 => v as i8 as f64,
        DType::I16 => v as i16 as f64,
        DType::I32 => v as i32 as f64,
        _ => v as i64 as f64,
    }
}

#[test]
fn python_division_semantics() {
    let a = Array::from_slice(&[7i32, -7, 7, -7, 5, 0], &[6]).unwrap();
    let b = Array::from_slice(&[2i32, 2, -2, -2, 0, 3], &[6]).unwrap();
    assert_eq!(
        ingot::floor_divide(&a, &b)
            .unwrap()
            .to_vec::<i32>()
            .unwrap(),
        vec![3, -4, -4, 3, 0, 0]
    );
    assert_eq!(
        ingot::remainder(&a, &b).unwrap().to_vec::<i32>().unwrap(),
        vec![1, 1, -1, -1, 0, 0]
    );
    let af = Array::from_slice(&[7.5f64, -7.5, 1.0], &[3]).unwrap();
    let bf = Array::from_slice(&[2.0f64, 2.0, 0.0], &[3]).unwrap();
    let r = ingot::remainder(&af, &bf).unwrap().to_vec::<f64>().unwrap();
    assert_eq!(&r[..2], &[1.5, 0.5]);
    assert!(r[2].is_nan());
    assert_eq!(
        ingot::floor_divide(&af, &bf)
            .unwrap()
            .to_vec::<f64>()
            .unwrap()[..2],
        [3.0, -4.0]
    );
    // true division of ints gives float32
    let d = ingot::divide(&a, &b).unwrap();
    assert_eq!(d.dtype(), DType::F32);
    assert_eq!(d.to_vec::<f32>().unwrap()[0], 3.5);
}

#[test]
fn weak_scalars_keep_array_dtype() {
    let a = Array::from_slice(&[1.0f32, 2.0], &[2]).unwrap();
    assert_eq!(ingot::add(&a, 2.0).unwrap().dtype(), DType::F32);
    assert_eq!((&a * 2.0f64).unwrap().dtype(), DType::F32);
    assert_eq!(
        (2.0f64 - &a).unwrap().to_vec::<f32>().unwrap(),
        vec![1.0, 0.0]
    );
    let h = ingot::astype(&a, DType::F16).unwrap();
    assert_eq!(ingot::add(&h, 1).unwrap().dtype(), DType::F16);
    let i = Array::from_slice(&[1i8, 2], &[2]).unwrap();
    assert_eq!(ingot::add(&i, 3).unwrap().dtype(), DType::I8);
    assert_eq!(ingot::add(&i, 0.5).unwrap().dtype(), DType::F32);
    let b = Array::from_slice(&[true, false], &[2]).unwrap();
    assert_eq!(ingot::add(&b, 1).unwrap().dtype(), DType::I32);
    // strong arrays promote
    let d = Array::from_slice(&[1.0f64], &[1]).unwrap();
    assert_eq!(ingot::add(&a, &d).unwrap().dtype(), DType::F64);
}

#[test]
fn comparisons_and_nan() {
    let a = Array::from_slice(&[1.0f32, f32::NAN, 3.0, -0.0], &[4]).unwrap();
    let b = Array::from_slice(&[1.0f32, f32::NAN, 2.0, 0.0], &[4]).unwrap();
    assert_eq!(
        ingot::equal(&a, &b).unwrap().to_vec::<bool>().unwrap(),
        vec![true, false, false, true]
    );
    assert_eq!(
        ingot::greater(&a, &b).unwrap().to_vec::<bool>().unwrap(),
        vec![false, false, true, false]
    );
    let m = ingot::maximum(&a, &b).unwrap().to_vec::<f32>().unwrap();
    assert!(m[1].is_nan());
    assert_eq!(
        ingot::signbit(&a).unwrap().to_vec::<bool>().unwrap(),
        vec![false, false, false, true]
    );
    assert_eq!(
        ingot::isnan(&a).unwrap().to_vec::<bool>().unwrap(),
        vec![false, true, false, false]
    );
}

#[test]
fn bitwise_and_shifts() {
    let a = Array::from_slice(&[0b1100u8, 255, 1], &[3]).unwrap();
    let b = Array::from_slice(&[0b1010u8, 1, 9], &[3]).unwrap();
    assert_eq!(
        ingot::bitwise_and(&a, &b).unwrap().to_vec::<u8>().unwrap(),
        vec![0b1000, 1, 1]
    );
    assert_eq!(
        ingot::bitwise_xor(&a, &b).unwrap().to_vec::<u8>().unwrap(),
        vec![0b0110, 254, 8]
    );
    assert_eq!(
        ingot::left_shift(&a, &b).unwrap().to_vec::<u8>().unwrap(),
        vec![0, 254, 0]
    );
    assert_eq!(
        ingot::right_shift(&a, &b).unwrap().to_vec::<u8>().unwrap(),
        vec![0, 127, 0]
    );
    assert_eq!(
        ingot::bitwise_invert(&a).unwrap().to_vec::<u8>().unwrap(),
        vec![0b11110011, 0, 254]
    );
    let err = ingot::left_shift(Array::from_slice(&[1.0f32], &[1]).unwrap(), 1).unwrap_err();
    assert!(err.to_string().contains("[left_shift]"), "{err}");
}

#[test]
fn where_clip_isclose() {
    let c = Array::from_slice(&[true, false, true], &[3]).unwrap();
    let x = Array::from_slice(&[1.0f32, 2.0, 3.0], &[3]).unwrap();
    let r = ingot::where_(&c, &x, 0.0).unwrap();
    assert_eq!(r.to_vec::<f32>().unwrap(), vec![1.0, 0.0, 3.0]);
    let lo = Array::scalar(1.5f32);
    let hi = Array::scalar(2.5f32);
    assert_eq!(
        ingot::clip(&x, Some(&lo), Some(&hi))
            .unwrap()
            .to_vec::<f32>()
            .unwrap(),
        vec![1.5, 2.0, 2.5]
    );
    let a = Array::from_slice(&[1.0f64, f64::INFINITY, f64::NAN, 1.0], &[4]).unwrap();
    let b = Array::from_slice(&[1.0 + 1e-9, f64::INFINITY, f64::NAN, 1.1], &[4]).unwrap();
    assert_eq!(
        ingot::isclose(&a, &b, 1e-5, 1e-8, false)
            .unwrap()
            .to_vec::<bool>()
            .unwrap(),
        vec![true, true, false, false]
    );
    assert_eq!(
        ingot::isclose(&a, &b, 1e-5, 1e-8, true)
            .unwrap()
            .to_vec::<bool>()
            .unwrap(),
        vec![true, true, true, false]
    );
}

#[test]
fn casts_wrap_and_saturate() {
    let a = Array::from_slice(&[300i32, -1, 70000], &[3]).unwrap();
    assert_eq!(
        ingot::astype(&a, DType::U8)
            .unwrap()
            .to_vec::<u8>()
            .unwrap(),
        vec![44, 255, 112]
    );
    let f = Array::from_slice(&[1.7f32, -2.5, f32::NAN, 1e20], &[4]).unwrap();
    assert_eq!(
        ingot::astype(&f, DType::I32)
            .unwrap()
            .to_vec::<i32>()
            .unwrap(),
        vec![1, -2, 0, i32::MAX]
    );
    assert_eq!(
        ingot::astype(&f, DType::Bool)
            .unwrap()
            .to_vec::<bool>()
            .unwrap(),
        vec![true, true, true, true]
    );
    let big = Array::from_slice(&[i64::MAX - 1], &[1]).unwrap();
    assert_eq!(
        ingot::astype(&big, DType::U64)
            .unwrap()
            .to_vec::<u64>()
            .unwrap(),
        vec![(i64::MAX - 1) as u64]
    );
}

#[test]
fn errors_name_the_op_and_shapes() {
    let a = ingot::zeros(&[2, 3], DType::F32).unwrap();
    let b = ingot::zeros(&[4, 3], DType::F32).unwrap();
    let e = ingot::add(&a, &b).unwrap_err().to_string();
    assert_eq!(
        e,
        "[add] shapes (2, 3) and (4, 3) cannot be broadcast together"
    );
    let e = ingot::reshape(&a, &[4, 2]).unwrap_err().to_string();
    assert!(e.starts_with("[reshape]") && e.contains("(2, 3)"), "{e}");
    let e = ingot::negative(&ingot::zeros(&[1], DType::Bool).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("[negative]"), "{e}");
}

#[test]
fn round_half_even_with_decimals() {
    let a = Array::from_slice(&[0.5f64, 1.5, 2.5, -0.5, 1.234567, 1250.0], &[6]).unwrap();
    assert_eq!(
        ingot::round(&a, 0).unwrap().to_vec::<f64>().unwrap()[..4],
        [0.0, 2.0, 2.0, -0.0]
    );
    assert_eq!(
        ingot::round(&a, 2).unwrap().to_vec::<f64>().unwrap()[4],
        1.23
    );
    assert_eq!(
        ingot::round(&a, -2).unwrap().to_vec::<f64>().unwrap()[5],
        1200.0
    );
}

#[test]
fn complex_basics() {
    use ingot::c64;
    let z = Array::from_slice(&[c64::new(3.0, 4.0), c64::new(-1.0, 0.0)], &[2]).unwrap();
    assert_eq!(
        ingot::abs(&z).unwrap().to_vec::<f32>().unwrap(),
        vec![5.0, 1.0]
    );
    assert_eq!(
        ingot::real(&z).unwrap().to_vec::<f32>().unwrap(),
        vec![3.0, -1.0]
    );
    assert_eq!(
        ingot::imag(&z).unwrap().to_vec::<f32>().unwrap(),
        vec![4.0, 0.0]
    );
    let c = ingot::conj(&z).unwrap().to_vec::<c64>().unwrap();
    assert_eq!(c[0], c64::new(3.0, -4.0));
    let p = ingot::multiply(&z, &z).unwrap().to_vec::<c64>().unwrap();
    assert_eq!(p[0], c64::new(-7.0, 24.0));
    assert!(
        (ingot::angle(&z).unwrap().to_vec::<f32>().unwrap()[1] - std::f32::consts::PI).abs() < 1e-6
    );
}

#[test]
fn views_share_and_transpose_reads_right() {
    let a = Array::from_slice(&(0..24).map(|x| x as f32).collect::<Vec<_>>(), &[2, 3, 4]).unwrap();
    let t = ingot::transpose(&a, Some(&[2, 0, 1])).unwrap();
    assert_eq!(t.shape(), &[4, 2, 3]);
    let v = t.to_vec::<f32>().unwrap();
    assert_eq!(v[..6], [0.0, 4.0, 8.0, 12.0, 16.0, 20.0]);
    let s = ingot::slice(
        &a,
        &[
            ingot::SliceArg::ALL,
            ingot::SliceArg::new(None, None, -2),
            ingot::SliceArg::new(Some(-1), Some(0), -2),
        ],
    )
    .unwrap();
    assert_eq!(s.shape(), &[2, 2, 2]);
    assert_eq!(
        s.to_vec::<f32>().unwrap(),
        vec![11.0, 9.0, 3.0, 1.0, 23.0, 21.0, 15.0, 13.0]
    );
    let f = ingot::flatten(&t, 0, -1).unwrap();
    assert_eq!(f.shape(), &[24]);
    assert_eq!(f.to_vec::<f32>().unwrap()[1], 4.0);
    let d = ingot::diagonal(&ingot::reshape(&a, &[4, 6]).unwrap(), 1, 0, 1).unwrap();
    assert_eq!(d.to_vec::<f32>().unwrap(), vec![1.0, 8.0, 15.0, 22.0]);
    let e = ingot::eye(3, Some(4), -1, DType::I32).unwrap();
    assert_eq!(
        e.to_vec::<i32>().unwrap(),
        vec![0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0]
    );
    let l = ingot::linspace(0.0, 1.0, 5, true, DType::F32).unwrap();
    assert_eq!(l.to_vec::<f32>().unwrap(), vec![0.0, 0.25, 0.5, 0.75, 1.0]);
    let vw = ingot::view(&Array::from_slice(&[1.0f32], &[1]).unwrap(), DType::U8).unwrap();
    assert_eq!(vw.to_vec::<u8>().unwrap(), 1.0f32.to_le_bytes().to_vec());
}

#[test]
fn deep_graph_does_not_overflow() {
    let mut x = ingot::ones(&[4], DType::F32).unwrap();
    for _ in 0..200_000 {
        x = ingot::add(&x, 1.0).unwrap();
    }
    assert_eq!(x.to_vec::<f32>().unwrap()[0], 200_001.0);
    let mut y = ingot::ones(&[4], DType::F32).unwrap();
    for _ in 0..200_000 {
        y = ingot::add(&y, 1.0).unwrap();
    }
    drop(y); // dropping an unevaluated deep graph must not overflow either
}

#[test]
fn display_like_numpy() {
    let a = Array::from_slice(&[1.0f32, 2.5, -3.0, 4.0], &[2, 2]).unwrap();
    assert_eq!(a.to_string(), "array([[  1, 2.5],\n       [ -3,   4]])");
    let big = ingot::arange(0.0, 2000.0, 1.0, DType::I64).unwrap();
    let s = big.to_string();
    assert!(s.contains("..."), "{s}");
    assert!(s.ends_with("dtype=int64)"));
}

/// The vectorized f32 exp: within 2 ulp of the correctly rounded result over its whole
/// range, including subnormal results, overflow, infinities and NaN.
#[test]
fn exp_f32_ulp() {
    let mut xs: Vec<f32> = (0..200_001)
        .map(|i| -110.0 + 200.0 * i as f32 / 200_000.0)
        .collect();
    xs.extend([
        0.0,
        -0.0,
        1e-30,
        -1e-30,
        88.72283,
        88.72284,
        -87.33654,
        -103.97,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MAX,
        f32::MIN,
    ]);
    let got = ingot::exp(&Array::from_slice(&xs, &[xs.len()]).unwrap())
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    for (&x, &g) in xs.iter().zip(&got) {
        let want = (x as f64).exp() as f32;
        let ulps = ulp_distance(g, want);
        assert!(ulps <= 2, "exp({x}) = {g}, want {want} ({ulps} ulp)");
    }
    let nan = ingot::exp(&Array::from_slice(&[f32::NAN], &[1]).unwrap())
        .unwrap()
        .item::<f32>()
        .unwrap();
    assert!(nan.is_nan());
}

/// A direct call of a backend's `eval` (a benchmark timing one op, a helper that copies an
/// operand) may read its inputs again, so only node evaluation gives an input's buffer to
/// the output: the same call repeated on inputs held by nothing else keeps working and
/// leaves them as they were. (Run G24's `ingot-gpu-bench` stopped on this: its host-cost
/// row called the CUDA backend 10,000 times on the same two arrays.)
#[test]
fn backend_calls_outside_node_evaluation_leave_inputs_alone() {
    use ingot::op::{BinaryOp, Op};
    let n = 100_003;
    let mut rng = Rng::new(12);
    let (a, av) = rand_array(&mut rng, &[n], DType::F32);
    let (b, bv) = rand_array(&mut rng, &[n], DType::F32);
    // Fresh buffers from a node each, held below by nothing but `inputs`.
    let x = ingot::multiply(&a, 1.0).unwrap();
    let y = ingot::multiply(&b, 1.0).unwrap();
    ingot::eval(&[x.clone(), y.clone()]).unwrap();
    drop((a, b));
    let inputs = [x, y];
    let outs = [(vec![n], DType::F32)];
    let op = Op::Binary(BinaryOp::Add);
    for _ in 0..3 {
        let out = match ingot::default_device() {
            ingot::Device::Cpu => ingot::backend::cpu::eval(&op, &inputs, &outs),
            ingot::Device::Cuda(i) => ingot::backend::cuda::eval(i, &op, &inputs, &outs),
        };
        assert_eq!(out.unwrap().len(), 1);
    }
    assert_close(
        &inputs[0].to_f64_vec().unwrap(),
        &av,
        0.0,
        0.0,
        "x after direct calls",
    );
    assert_close(
        &inputs[1].to_f64_vec().unwrap(),
        &bv,
        0.0,
        0.0,
        "y after direct calls",
    );
}

/// Kernels write into an input's buffer only when nothing else can see it: results match a
/// plain reference whether or not the buffer was reused, and arrays the user holds are never
/// changed.
#[test]
fn donated_buffers_give_same_results() {
    let n = 100_003; // above the parallel threshold, not a multiple of the chunk size
    let mut rng = Rng::new(11);
    let (x, xv) = rand_array(&mut rng, &[n], DType::F32);
    let (r, rv) = rand_array(&mut rng, &[1, n], DType::F32);
    // Chain of temporaries: each may take over the previous one's buffer.
    let y = ingot::add(ingot::multiply(&x, 2.0).unwrap(), 1.0).unwrap();
    let y = ingot::square(&ingot::maximum(&y, 0.0).unwrap()).unwrap();
    let want: Vec<f64> = xv
        .iter()
        .map(|&v| {
            let t = ((v as f32) * 2.0 + 1.0).max(0.0);
            (t * t) as f64
        })
        .collect();
    assert_close(&y.to_f64_vec().unwrap(), &want, 1e-6, 0.0, "chain");
    // The user's x is untouched.
    assert_close(&x.to_f64_vec().unwrap(), &xv, 0.0, 0.0, "x after chain");

    // A held intermediate is not overwritten by its consumer.
    let held = ingot::multiply(&x, 3.0).unwrap();
    let next = ingot::add(&held, 1.0).unwrap();
    next.eval().unwrap();
    let h = held.to_f64_vec().unwrap();
    for (i, (&hv, &v)) in h.iter().zip(&xv).enumerate() {
        assert_eq!(hv as f32, (v as f32) * 3.0, "held[{i}]");
    }

    // Donated right operand with a broadcast left one; broadcast output that cannot reuse.
    let b = ingot::subtract(&r, ingot::negative(&x).unwrap()).unwrap(); // [1,n] - [n]
    let want: Vec<f64> = rv
        .iter()
        .zip(&xv)
        .map(|(&a, &c)| (a as f32 + c as f32) as f64)
        .collect();
    assert_close(
        &b.to_f64_vec().unwrap(),
        &want,
        1e-6,
        0.0,
        "broadcast donation",
    );
    // A temporary smaller than the output (broadcast) cannot hold it.
    let small = ingot::add(
        ingot::reshape(&ingot::arange(0.0, 3.0, 1.0, DType::F32).unwrap(), &[3, 1]).unwrap(),
        ingot::multiply(Array::from_slice(&[1f32, 2.0], &[1, 2]).unwrap(), 1.0).unwrap(),
    )
    .unwrap();
    assert_eq!(small.to_vec::<f32>().unwrap(), [1., 2., 2., 3., 3., 4.]);
    // The same temporary on both sides must not be donated into itself and read back.
    let t = ingot::multiply(&x, 2.0).unwrap();
    let s = ingot::add(&t, &t).unwrap();
    drop(t);
    let sv = s.to_f64_vec().unwrap();
    for (i, (&g, &v)) in sv.iter().zip(&xv).enumerate() {
        assert_eq!(g as f32, (v as f32) * 4.0, "t+t [{i}]");
    }
}

/// The vectorized f32 tanh: within 1 ulp of the correctly rounded result (`tanh_f32_every_f32`
/// checks every f32), around the switch of forms at 0.625 and where it rounds to 1, and
/// exact at the limits.
#[test]
fn tanh_f32_ulp() {
    let mut xs: Vec<f32> = (0..200_001)
        .map(|i| -12.0 + 24.0 * i as f32 / 200_000.0)
        .collect();
    xs.extend([
        0.0,
        -0.0,
        1e-30,
        -1e-30,
        1e-5,
        9.0,
        -9.0,
        0.625,
        -0.625,
        0.624_999_94,
        0.625_000_06,
        8.999_999,
        9.000_001,
        50.0,
        -50.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MAX,
        f32::MIN,
    ]);
    let got = ingot::tanh(&Array::from_slice(&xs, &[xs.len()]).unwrap())
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    for (&x, &g) in xs.iter().zip(&got) {
        let want = (x as f64).tanh() as f32;
        let ulps = ulp_distance(g, want);
        assert!(ulps <= 1, "tanh({x}) = {g}, want {want} ({ulps} ulp)");
        assert_eq!(
            g.is_sign_negative(),
            want.is_sign_negative(),
            "sign of tanh({x})"
        );
    }
    let nan = ingot::tanh(&Array::from_slice(&[f32::NAN], &[1]).unwrap())
        .unwrap()
        .item::<f32>()
        .unwrap();
    assert!(nan.is_nan());
}

/// Every non-negative f32 through the f32 tanh (odd by construction, so this covers the
/// negatives too): at most 1 ulp from tanh computed in f64. About a minute in release:
/// `cargo test --release -p ingot --test elementwise -- --ignored tanh_f32_every_f32`.
#[test]
#[ignore]
fn tanh_f32_every_f32() {
    const CHUNK: u32 = 1 << 24;
    let mut worst = (0i64, 0f32);
    let mut start = 0u32;
    while start <= f32::INFINITY.to_bits() {
        let end = start.saturating_add(CHUNK).min(f32::INFINITY.to_bits() + 1);
        let xs: Vec<f32> = (start..end).map(f32::from_bits).collect();
        let got = ingot::tanh(&Array::from_slice(&xs, &[xs.len()]).unwrap())
            .unwrap()
            .to_vec::<f32>()
            .unwrap();
        for (&x, &g) in xs.iter().zip(&got) {
            let d = ulp_distance(g, (x as f64).tanh() as f32);
            if d > worst.0 {
                worst = (d, x);
            }
        }
        start = end;
    }
    assert!(worst.0 <= 1, "tanh({}) is {} ulp off", worst.1, worst.0);
}

/// complex64 arithmetic, comparisons, the unary ops and sums against num_complex on random
/// values with zeros, infinities and NaNs mixed in; contiguous, transposed and broadcast.
/// Arithmetic and comparisons agree bit for bit (every device uses the same formulas); the
/// ops built on libm functions (abs, angle, exp, sign) to a few f32 ulps.
#[test]
fn complex_ops_match_num_complex() {
    use ingot::c64;
    let mut rng = Rng::new(31);
    let specials = [
        0.0f32,
        -0.0,
        1.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
    ];
    let (r, c) = (37usize, 29usize);
    let mut draw = |n: usize| -> Vec<c64> {
        rng.values(2 * n, DType::F32)
            .chunks(2)
            .enumerate()
            .map(|(i, v)| {
                let (mut re, mut im) = (v[0] as f32, v[1] as f32);
                if i % 7 == 3 {
                    re = specials[i % specials.len()];
                }
                if i % 11 == 5 {
                    im = specials[(i / 11) % specials.len()];
                }
                c64::new(re, im)
            })
            .collect()
    };
    let xv = draw(r * c);
    let yv = draw(r * c);
    let x = Array::from_slice(&xv, &[r, c]).unwrap();
    let y = Array::from_slice(&yv, &[r, c]).unwrap();
    // y read through a transpose of its transpose: a non-contiguous operand.
    let yt = ingot::transpose(
        &Array::from_slice(&transpose_vec(&yv, r, c), &[c, r]).unwrap(),
        None,
    )
    .unwrap();
    let same = |a: c64, b: c64| {
        let eq = |p: f32, q: f32| p.to_bits() == q.to_bits() || (p.is_nan() && q.is_nan());
        eq(a.re, b.re) && eq(a.im, b.im)
    };
    let near = |a: f32, b: f32| {
        a.to_bits() == b.to_bits()
            || (a.is_nan() && b.is_nan())
            || (a - b).abs() <= 4.0 * f32::EPSILON * a.abs().max(b.abs())
    };
    type Bin = fn(c64, c64) -> c64;
    let bins: [(&str, fn(&Array, &Array) -> ingot::Result<Array>, Bin); 4] = [
        ("add", |a, b| ingot::add(a, b), |p, q| p + q),
        ("subtract", |a, b| ingot::subtract(a, b), |p, q| p - q),
        ("multiply", |a, b| ingot::multiply(a, b), |p, q| p * q),
        ("divide", |a, b| ingot::divide(a, b), |p, q| p / q),
    ];
    for (name, f, want) in bins {
        for (layout, yy) in [("contiguous", &y), ("transposed", &yt)] {
            let got = f(&x, yy).unwrap().to_vec::<c64>().unwrap();
            for i in 0..xv.len() {
                let w = want(xv[i], yv[i]);
                assert!(
                    same(got[i], w),
                    "{name} {layout} [{i}]: {} vs {w} ({} , {})",
                    got[i],
                    xv[i],
                    yv[i]
                );
            }
        }
    }
    // A broadcast scalar.
    let s = c64::new(0.5, -2.0);
    let got = ingot::multiply(&x, Array::from_slice(&[s], &[]).unwrap())
        .unwrap()
        .to_vec::<c64>()
        .unwrap();
    for i in 0..xv.len() {
        assert!(same(got[i], xv[i] * s), "multiply by a scalar [{i}]");
    }
    type Cmp = fn(c64, c64) -> bool;
    let cmps: [(&str, fn(&Array, &Array) -> ingot::Result<Array>, Cmp); 6] = [
        ("equal", |a, b| ingot::equal(a, b), |p, q| p == q),
        ("not_equal", |a, b| ingot::not_equal(a, b), |p, q| p != q),
        (
            "less",
            |a, b| ingot::less(a, b),
            |p, q| (p.re, p.im) < (q.re, q.im),
        ),
        (
            "less_equal",
            |a, b| ingot::less_equal(a, b),
            |p, q| (p.re, p.im) <= (q.re, q.im),
        ),
        (
            "greater",
            |a, b| ingot::greater(a, b),
            |p, q| (p.re, p.im) > (q.re, q.im),
        ),
        (
            "greater_equal",
            |a, b| ingot::greater_equal(a, b),
            |p, q| (p.re, p.im) >= (q.re, q.im),
        ),
    ];
    // Equal values too, so the imaginary parts decide some comparisons.
    let xe: Vec<c64> = xv
        .iter()
        .zip(&yv)
        .enumerate()
        .map(|(i, (a, b))| if i % 3 == 0 { c64::new(b.re, a.im) } else { *a })
        .collect();
    let xa = Array::from_slice(&xe, &[r, c]).unwrap();
    for (name, f, want) in cmps {
        let got = f(&xa, &y).unwrap().to_vec::<bool>().unwrap();
        for i in 0..xe.len() {
            assert_eq!(
                got[i],
                want(xe[i], yv[i]),
                "{name} [{i}]: {} vs {}",
                xe[i],
                yv[i]
            );
        }
    }
    type Un = fn(&Array) -> ingot::Result<Array>;
    let exact: [(&str, Un, fn(c64) -> c64); 4] = [
        ("negative", |a| ingot::negative(a), |z| -z),
        ("conj", |a| ingot::conj(a), |z| z.conj()),
        ("square", |a| ingot::square(a), |z| z * z),
        ("reciprocal", |a| ingot::reciprocal(a), |z| z.inv()),
    ];
    for (name, f, want) in exact {
        let got = f(&x).unwrap().to_vec::<c64>().unwrap();
        for i in 0..xv.len() {
            assert!(
                same(got[i], want(xv[i])),
                "{name} [{i}]: {} vs {}",
                got[i],
                want(xv[i])
            );
        }
    }
    let close: [(&str, Un, fn(c64) -> c64); 2] = [
        ("exp", |a| ingot::exp(a), |z| z.exp()),
        (
            "sign",
            |a| ingot::sign(a),
            |z| {
                let n = z.norm();
                if n == 0.0 {
                    c64::new(0.0, 0.0)
                } else {
                    z / n
                }
            },
        ),
    ];
    for (name, f, want) in close {
        let got = f(&x).unwrap().to_vec::<c64>().unwrap();
        for i in 0..xv.len() {
            let w = want(xv[i]);
            assert!(
                near(got[i].re, w.re) && near(got[i].im, w.im),
                "{name} of {} [{i}]: {} vs {w}",
                xv[i],
                got[i]
            );
        }
    }
    let reals: [(&str, Un, fn(c64) -> f32); 4] = [
        ("abs", |a| ingot::abs(a), |z| z.norm()),
        ("angle", |a| ingot::angle(a), |z| z.arg()),
        ("real", |a| ingot::real(a), |z| z.re),
        ("imag", |a| ingot::imag(a), |z| z.im),
    ];
    for (name, f, want) in reals {
        let got = f(&x).unwrap().to_vec::<f32>().unwrap();
        for i in 0..xv.len() {
            assert!(
                near(got[i], want(xv[i])),
                "{name} of {} [{i}]: {} vs {}",
                xv[i],
                got[i],
                want(xv[i])
            );
        }
    }
    let nan = ingot::isnan(&x).unwrap().to_vec::<bool>().unwrap();
    let fin = ingot::isfinite(&x).unwrap().to_vec::<bool>().unwrap();
    for i in 0..xv.len() {
        assert_eq!(
            nan[i],
            xv[i].re.is_nan() || xv[i].im.is_nan(),
            "isnan [{i}]"
        );
        assert_eq!(
            fin[i],
            xv[i].re.is_finite() && xv[i].im.is_finite(),
            "isfinite [{i}]"
        );
    }
    // Sums of finite values along each axis, against an f64 sum.
    let fv: Vec<c64> = xv
        .iter()
        .map(|z| {
            if z.re.is_finite() && z.im.is_finite() {
                *z
            } else {
                c64::new(0.25, -1.0)
            }
        })
        .collect();
    let fa = Array::from_slice(&fv, &[r, c]).unwrap();
    for axis in [0isize, 1] {
        let got = ingot::sum(&fa, Some(&[axis]), false)
            .unwrap()
            .to_vec::<c64>()
            .unwrap();
        let (outer, inner) = if axis == 0 { (c, r) } else { (r, c) };
        for o in 0..outer {
            let (mut re, mut im) = (0f64, 0f64);
            for k in 0..inner {
                let z = if axis == 0 {
                    fv[k * c + o]
                } else {
                    fv[o * c + k]
                };
                re += z.re as f64;
                im += z.im as f64;
            }
            assert!(
                (got[o].re as f64 - re).abs() < 1e-4 * (1.0 + re.abs())
                    && (got[o].im as f64 - im).abs() < 1e-4 * (1.0 + im.abs()),
                "sum axis {axis} [{o}]: {} vs ({re}, {im})",
                got[o]
            );
        }
    }
}

/// A complex cumsum keeps -0.0 parts, as a float one does (both start from -0.0).
#[test]
fn complex_cumsum_keeps_negative_zeros() {
    use ingot::c64;
    let z = Array::from_slice(&[c64::new(-0.0, -0.0); 3], &[3]).unwrap();
    for inclusive in [true, false] {
        let c = ingot::cumsum(&z, None, false, inclusive)
            .unwrap()
            .to_vec::<c64>()
            .unwrap();
        let first = if inclusive { 0 } else { 1 };
        for v in &c[first..] {
            assert!(
                v.re == 0.0 && v.re.is_sign_negative() && v.im.is_sign_negative(),
                "inclusive {inclusive}: {c:?}"
            );
        }
    }
}

fn transpose_vec<T: Copy>(v: &[T], r: usize, c: usize) -> Vec<T> {
    (0..c * r).map(|k| v[(k % r) * c + k / r]).collect()
}

/// Casts to f16 and bf16 round once, to nearest with ties to even, from f32 and from f64:
/// values just above a tie round up (f32 bits 0xbfe2_8004 once became bf16 0xbfe2 through
/// an f64 step), exact ties go to the even neighbour, values past the range become
/// infinity, NaN stays NaN.
#[test]
fn casts_to_half_precision_round_once() {
    use ingot::{bf16, f16};
    let f32_bits: [u32; 8] = [
        0xbfe2_8004, // just above a bf16 tie: up
        0xc034_8002,
        0x3f80_8000, // a tie, even below: down
        0x3f81_8000, // a tie, odd below: up
        0x3f80_7fff, // just below a tie: down
        0x3f80_1001, // just above an f16 tie: up
        0x7f7f_ffff, // f32::MAX: bf16 infinity
        0x7fc0_0001, // NaN
    ];
    let xs: Vec<f32> = f32_bits.iter().map(|&b| f32::from_bits(b)).collect();
    let a = Array::from_slice(&xs, &[xs.len()]).unwrap();
    let got_b: Vec<bf16> = ingot::astype(&a, DType::BF16).unwrap().to_vec().unwrap();
    let got_h: Vec<f16> = ingot::astype(&a, DType::F16).unwrap().to_vec().unwrap();
    for (i, &x) in xs.iter().enumerate() {
        let (wb, wh) = (bf16::from_f32(x), f16::from_f32(x));
        if x.is_nan() {
            assert!(got_b[i].is_nan() && got_h[i].is_nan(), "NaN {i}");
            continue;
        }
        assert_eq!(
            got_b[i].to_bits(),
            wb.to_bits(),
            "bf16 of f32 {:#010x}",
            f32_bits[i]
        );
        assert_eq!(
            got_h[i].to_bits(),
            wh.to_bits(),
            "f16 of f32 {:#010x}",
            f32_bits[i]
        );
    }
    // From f64: one part in 2^40 above a tie decides it, though an f32 step would make it
    // an exact tie.
    let tiny = 2f64.powi(-40);
    let d = Array::from_slice(
        &[
            1.0 + 2f64.powi(-8) + tiny,
            1.0 + 2f64.powi(-8) - tiny,
            -(1.0 + 2f64.powi(-11) + tiny),
            1e300,
            3.0 * 2f64.powi(-140),
        ],
        &[5],
    )
    .unwrap();
    // The casts' bits, read through a u16 view.
    let bits = |dt: DType| -> Vec<u16> {
        let y = ingot::astype(&d, dt).unwrap();
        ingot::view(&y, DType::U16).unwrap().to_vec().unwrap()
    };
    let (b, h) = (bits(DType::BF16), bits(DType::F16));
    assert_eq!(b[0], 0x3f81, "bf16 of 1 + 2^-8 + 2^-40");
    assert_eq!(b[1], 0x3f80, "bf16 of 1 + 2^-8 - 2^-40");
    assert_eq!(h[2], 0xbc01, "f16 of -(1 + 2^-11 + 2^-40)");
    assert_eq!((b[3], h[3]), (0x7f80, 0x7c00), "1e300 is infinity");
    // 3 * 2^-140: bf16's subnormal spacing is 2^-133, so it rounds to zero.
    assert_eq!(b[4], 0x0000, "bf16 of 3 * 2^-140");
}
