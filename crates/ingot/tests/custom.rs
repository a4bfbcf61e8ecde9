//! User-written kernels (`ingot::custom::Kernel`): Softshrink with CPU code, a CUDA body and
//! a gradient, checked against the formula on random inputs of every float dtype, strided,
//! empty and non-finite inputs, its gradient against finite differences, compile and vmap,
//! a kernel with several inputs and outputs, and the errors of bad definitions and calls.
//! With INGOT_TEST_DEVICE=cuda the same tests run the CUDA body on the GPU.

mod common;

use common::*;
use ingot::custom::Kernel;
use ingot::{Array, DType, Element};
use std::sync::OnceLock;

const FLOATS: [DType; 4] = [DType::F32, DType::F64, DType::F16, DType::BF16];

/// The seed's example: softshrink(x) = x - λ above λ, x + λ below -λ, else 0.
fn softshrink() -> &'static Kernel {
    static K: OnceLock<Kernel> = OnceLock::new();
    K.get_or_init(|| {
        Kernel::new("test_softshrink")
            .params(&["lambd"])
            .cuda(
                "if (idx < n) {
                   C v = ld(x[idx]); C l = (C)lambd;
                   out[idx] = st<T>(v > l ? v - l : (v < -l ? v + l : v * (C)0));
                 }",
            )
            .cuda_dtypes(&FLOATS)
            .cpu(|ins, outs, p| {
                ingot::dispatch_dtype!(ins[0].dtype, T => {
                    let x = ins[0].as_slice::<T>()?;
                    let out = outs[0].as_mut_slice::<T>()?;
                    // Halves compute in f32 as the CUDA body does.
                    let f32_compute = matches!(ins[0].dtype, DType::F16 | DType::BF16 | DType::F32);
                    for (o, &v) in out.iter_mut().zip(x) {
                        let r = if f32_compute {
                            shrink(v.to_f64() as f32 as f64, p[0] as f32 as f64) as f32 as f64
                        } else {
                            shrink(v.to_f64(), p[0])
                        };
                        *o = T::from_f64(r);
                    }
                    Ok(())
                })
            })
            .vjp(|xs, _outs, cts, p| {
                // The gradient passes where |x| > λ.
                let mask = ingot::greater(&ingot::abs(&xs[0])?, p[0])?;
                let z = ingot::zeros_like(&cts[0])?;
                Ok(vec![Some(ingot::where_(&mask, &cts[0], &z)?)])
            })
            .build()
            .unwrap()
    })
}

fn shrink(v: f64, l: f64) -> f64 {
    if v > l {
        v - l
    } else if v < -l {
        v + l
    } else if v.is_nan() {
        v
    } else {
        0.0
    }
}

fn on_gpu() -> bool {
    std::env::var("INGOT_TEST_DEVICE").is_ok_and(|d| d.starts_with("cuda"))
}

#[test]
fn softshrink_matches_the_formula_in_every_float_dtype() {
    let k = softshrink();
    let mut rng = Rng::new(1);
    for dt in FLOATS {
        for shape in [vec![1000], vec![7, 33], vec![0, 4], vec![]] {
            let (x, vals) = rand_array(&mut rng, &shape, dt);
            let y = k.call(&[&x], &[0.5]).unwrap().remove(0);
            assert_eq!(y.shape(), &shape[..]);
            assert_eq!(y.dtype(), dt);
            let want: Vec<f64> = vals.iter().map(|&v| round_to(shrink(v, 0.5), dt)).collect();
            assert_close(
                &y.to_f64_vec().unwrap(),
                &want,
                tol(dt),
                tol(dt),
                "softshrink",
            );
            if on_gpu() && !shape.contains(&0) {
                // The CUDA body ran: the result was made on the GPU (a CPU run's result has
                // no device copy until a GPU op reads it).
                assert!(
                    y.data().unwrap().buffer.device_ordinal().is_some(),
                    "softshrink {dt} fell back to the CPU"
                );
            }
        }
    }
}

#[test]
fn softshrink_reads_strided_and_non_finite_inputs() {
    let k = softshrink();
    let mut rng = Rng::new(2);
    for dt in FLOATS {
        let shape = [6, 10];
        let mut vals = rng.values(60, dt);
        vals[3] = f64::NAN;
        vals[17] = f64::INFINITY;
        vals[40] = f64::NEG_INFINITY;
        let x = noncontiguous(&vals, &shape, dt);
        let exact = array_from_f64(&vals, &shape, dt).to_f64_vec().unwrap();
        let y = k.call(&[&x], &[1.25]).unwrap().remove(0);
        let want: Vec<f64> = exact
            .iter()
            .map(|&v| round_to(shrink(v, 1.25), dt))
            .collect();
        assert_close(&y.to_f64_vec().unwrap(), &want, tol(dt), tol(dt), "strided");
        // A transposed view too.
        let t = ingot::transpose(&array_from_f64(&vals, &shape, dt), None).unwrap();
        let yt = k.call(&[&t], &[1.25]).unwrap().remove(0);
        let back = ingot::transpose(&yt, None).unwrap();
        assert_close(
            &back.to_f64_vec().unwrap(),
            &want,
            tol(dt),
            tol(dt),
            "transposed",
        );
    }
}

#[test]
fn softshrink_gradient_matches_finite_differences() {
    let k = softshrink();
    // Points within 1e-6 of ±λ would straddle the kink; random points miss it.
    let f: F = Box::new(move |xs: &[Array]| Ok(k.call(&[&xs[0]], &[0.5])?.remove(0)));
    check_grad("softshrink kernel", &f, &[&[5, 8]], (-2.0, 2.0), 3);
    let x = Array::from_vec(vec![-2.0f32, -0.25, 0.0, 0.4, 0.75], &[5]).unwrap();
    let g = ingot::grad(
        |a: &[Array]| ingot::sum(&k.call(&[&a[0]], &[0.5])?[0], None, false),
        &[0],
    )(&[x])
    .unwrap();
    assert_eq!(g[0].to_vec::<f32>().unwrap(), vec![1.0, 0.0, 0.0, 0.0, 1.0]);
}

#[test]
fn kernels_run_inside_compile_and_vmap() {
    let k = softshrink();
    let mut rng = Rng::new(4);
    let (x, vals) = rand_array(&mut rng, &[4, 16], DType::F32);
    let want: Vec<f64> = vals.iter().map(|&v| shrink(v as f32 as f64, 0.5)).collect();
    let kc = k.clone();
    let compiled = ingot::compile(move |a: &[Array]| {
        let y = kc.call(&[&a[0]], &[0.5])?.remove(0);
        Ok(vec![ingot::multiply(&y, 2.0)?])
    });
    let y = compiled.call(std::slice::from_ref(&x)).unwrap().remove(0);
    let twice: Vec<f64> = want.iter().map(|v| v * 2.0).collect();
    assert_close(&y.to_f64_vec().unwrap(), &twice, 1e-6, 1e-6, "compiled");
    let kv = k.clone();
    let v = ingot::vmap(
        move |a: &[Array]| Ok(vec![kv.call(&[&a[0]], &[0.5])?.remove(0)]),
        &[Some(1)],
        &[Some(0)],
    )(std::slice::from_ref(&x))
    .unwrap()
    .remove(0);
    assert_eq!(v.shape(), &[16, 4]);
    let back = ingot::transpose(&v, None).unwrap();
    assert_close(&back.to_f64_vec().unwrap(), &want, 1e-6, 1e-6, "vmap");
}

/// Two inputs, two outputs, a parameter: (a·x + y, x·y) with a gradient for both inputs.
fn axpy_and_product() -> &'static Kernel {
    static K: OnceLock<Kernel> = OnceLock::new();
    K.get_or_init(|| {
        Kernel::new("test_axpy_prod")
            .inputs(&["x", "y"])
            .outputs(&["s", "p"])
            .params(&["a"])
            .cuda(
                "if (idx < n) {
                   double xv = (double)x[idx], yv = (double)y[idx];
                   s[idx] = a * xv + yv; p[idx] = xv * yv;
                 }",
            )
            .cuda_dtypes(&[DType::F64])
            .cpu(|ins, outs, p| {
                let x = ins[0].as_slice::<f64>()?;
                let y = ins[1].as_slice::<f64>()?;
                let (s, rest) = outs.split_at_mut(1);
                let s = s[0].as_mut_slice::<f64>()?;
                let q = rest[0].as_mut_slice::<f64>()?;
                for i in 0..x.len() {
                    s[i] = p[0] * x[i] + y[i];
                    q[i] = x[i] * y[i];
                }
                Ok(())
            })
            .vjp(|xs, _outs, cts, p| {
                let gx = ingot::add(
                    ingot::multiply(&cts[0], p[0])?,
                    ingot::multiply(&cts[1], &xs[1])?,
                )?;
                let gy = ingot::add(&cts[0], ingot::multiply(&cts[1], &xs[0])?)?;
                Ok(vec![Some(gx), Some(gy)])
            })
            .build()
            .unwrap()
    })
}

#[test]
fn a_kernel_with_two_inputs_and_two_outputs() {
    let k = axpy_and_product();
    let mut rng = Rng::new(5);
    let (x, xv) = rand_array(&mut rng, &[3, 5], DType::F64);
    let (y, yv) = rand_array(&mut rng, &[3, 5], DType::F64);
    let outs = k.call(&[&x, &y], &[1.5]).unwrap();
    let s: Vec<f64> = xv.iter().zip(&yv).map(|(a, b)| 1.5 * a + b).collect();
    let p: Vec<f64> = xv.iter().zip(&yv).map(|(a, b)| a * b).collect();
    assert_close(&outs[0].to_f64_vec().unwrap(), &s, 1e-12, 1e-12, "s");
    assert_close(&outs[1].to_f64_vec().unwrap(), &p, 1e-12, 1e-12, "p");
    // Both outputs feed the loss; then only the second (its sibling is dropped).
    let f: F = Box::new(move |xs: &[Array]| {
        let o = k.call(&[&xs[0], &xs[1]], &[1.5])?;
        ingot::add(ingot::sin(&o[0])?, &o[1])
    });
    check_grad("axpy_prod", &f, &[&[4], &[4]], (-1.0, 1.0), 6);
    let g: F = Box::new(move |xs: &[Array]| Ok(k.call(&[&xs[0], &xs[1]], &[1.5])?.remove(1)));
    check_grad("axpy_prod second output", &g, &[&[4], &[4]], (-1.0, 1.0), 7);
}

#[test]
fn a_kernel_without_gpu_source_still_runs() {
    // No .cuda: on a GPU device the CPU code runs and counts as a fallback.
    let k = Kernel::new("test_cpu_only_double")
        .cpu(|ins, outs, _| {
            let x = ins[0].as_slice::<f32>()?;
            for (o, v) in outs[0].as_mut_slice::<f32>()?.iter_mut().zip(x) {
                *o = 2.0 * v;
            }
            Ok(())
        })
        .build()
        .unwrap();
    assert!(!k.has_cuda());
    let before = ingot::cuda::fallbacks()
        .iter()
        .find(|(n, _)| *n == "kernel")
        .map_or(0, |f| f.1);
    let x = Array::from_vec(vec![1.0f32, -2.5, 4.0], &[3]).unwrap();
    let y = k.call(&[&x], &[]).unwrap().remove(0);
    assert_eq!(y.to_vec::<f32>().unwrap(), vec![2.0, -5.0, 8.0]);
    if on_gpu() {
        let after = ingot::cuda::fallbacks()
            .iter()
            .find(|(n, _)| *n == "kernel")
            .map_or(0, |f| f.1);
        assert!(after > before, "the CPU run of a GPU array was not counted");
    }
    // Differentiating a kernel without a rule names it.
    let err = ingot::grad(
        |a: &[Array]| ingot::sum(&k.call(&[&a[0]], &[])?[0], None, false),
        &[0],
    )(&[x])
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("test_cpu_only_double") && err.contains("no gradient"),
        "{err}"
    );
}

#[test]
fn bad_definitions_and_calls_are_clear_errors() {
    let cpu = |_: &[ingot::custom::HostIn], _: &mut [ingot::custom::HostOut], _: &[f64]| Ok(());
    let e = Kernel::new("bad name")
        .cpu(cpu)
        .build()
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("not a C identifier"), "{e}");
    let e = Kernel::new("dup")
        .inputs(&["x", "x"])
        .cpu(cpu)
        .build()
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("used twice"), "{e}");
    let e = Kernel::new("no_cpu").build().err().unwrap().to_string();
    assert!(e.contains("CPU code"), "{e}");
    let k = softshrink();
    let x = Array::from_vec(vec![1.0f32], &[1]).unwrap();
    let e = k.call(&[&x, &x], &[0.5]).unwrap_err().to_string();
    assert!(
        e.contains("test_softshrink") && e.contains("1 input"),
        "{e}"
    );
    let e = k.call(&[&x], &[]).unwrap_err().to_string();
    assert!(e.contains("lambd"), "{e}");
    // CPU code that reads a buffer as the wrong type gets an error, not garbage.
    let wrong = Kernel::new("test_wrong_type")
        .cpu(|ins, _, _| ins[0].as_slice::<f64>().map(|_| ()))
        .build()
        .unwrap();
    let e = wrong.call(&[&x], &[]).unwrap()[0]
        .eval()
        .unwrap_err()
        .to_string();
    assert!(e.contains("float32") && e.contains("float64"), "{e}");
    // A CUDA body that does not compile reports NVRTC's log (checked wherever NVRTC loads).
    if ingot::cuda::nvrtc_available() {
        let broken = Kernel::new("test_broken_cuda")
            .cuda("out[idx] = undefined_thing;")
            .cpu(cpu)
            .build()
            .unwrap();
        let e = broken
            .compile_cuda(&[DType::F32], "sm_90")
            .unwrap_err()
            .to_string();
        assert!(e.contains("undefined_thing"), "{e}");
        softshrink().compile_cuda(&[DType::BF16], "sm_90").unwrap();
    } else {
        eprintln!("NVRTC not found: the CUDA compile checks were skipped");
    }
}
