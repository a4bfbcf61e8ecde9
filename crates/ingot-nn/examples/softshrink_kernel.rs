//! A user-written operation: Softshrink as a kernel of its own (docs/custom-kernels.md).
//!
//! `softshrink(x) = x - λ` above λ, `x + λ` below -λ, else 0. Defined first with CPU code
//! only, it runs for GPU arrays on the CPU (a fallback the profiler counts, with a copy
//! each way); with a CUDA body it runs on the GPU. Both are checked against the built-in
//! `ingot_nn::activations::softshrink` and against each other, the gradient through the
//! kernel's rule against the built-in's, and each is timed.
//!
//!   cargo run --release -p ingot-nn --example softshrink_kernel [-- --device cuda]

use ingot::custom::{HostIn, HostOut, Kernel};
use ingot::{Array, DType, Device, Element, Result};
use std::time::Instant;

/// The CPU code: every float dtype, halves computed in f32 like the CUDA body.
fn cpu(ins: &[HostIn], outs: &mut [HostOut], p: &[f64]) -> Result<()> {
    ingot::dispatch_dtype!(ins[0].dtype, T => {
        let x = ins[0].as_slice::<T>()?;
        let l = p[0];
        let wide = ins[0].dtype == DType::F64;
        for (o, &v) in outs[0].as_mut_slice::<T>()?.iter_mut().zip(x) {
            let v = v.to_f64();
            let r = if v > l { v - l } else if v < -l { v + l } else if v.is_nan() { v } else { 0.0 };
            *o = T::from_f64(if wide { r } else { r as f32 as f64 });
        }
        Ok(())
    })
}

/// The gradient: the cotangent where |x| > λ, else 0.
fn vjp(xs: &[Array], _outs: &[Array], cts: &[Array], p: &[f64]) -> Result<Vec<Option<Array>>> {
    let pass = ingot::greater(&ingot::abs(&xs[0])?, p[0])?;
    Ok(vec![Some(ingot::where_(
        &pass,
        &cts[0],
        &ingot::zeros_like(&cts[0])?,
    )?)])
}

const BODY: &str = "
    if (idx < n) {
        C v = ld(x[idx]);
        C l = (C)lambd;
        out[idx] = st<T>(v > l ? v - l : (v < -l ? v + l : v * (C)0));  // v * 0 keeps NaN
    }";

fn time(label: &str, n: usize, f: impl Fn() -> Result<Array>) -> Result<Array> {
    let y = f()?;
    y.eval()?;
    ingot::synchronize(ingot::default_device())?;
    let reps = 20;
    let t = Instant::now();
    let mut last = y;
    for _ in 0..reps {
        last = f()?;
        last.eval()?;
    }
    ingot::synchronize(ingot::default_device())?;
    let s = t.elapsed().as_secs_f64() / reps as f64;
    println!(
        "{label:<34} {:>9.3} ms  {:>7.1} GB/s",
        s * 1e3,
        2.0 * (n * 4) as f64 / s / 1e9
    );
    Ok(last)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let device = match args.iter().position(|a| a == "--device") {
        Some(i) => args
            .get(i + 1)
            .map(|s| s.as_str())
            .unwrap_or("cpu")
            .parse::<Device>()?,
        None if ingot::cuda::is_available() => Device::Cuda(0),
        None => Device::Cpu,
    };
    ingot::set_default_device(device);
    println!("device: {device}");

    let cpu_only = Kernel::new("softshrink_cpu_only")
        .params(&["lambd"])
        .cpu(cpu)
        .vjp(vjp)
        .build()?;
    let with_cuda = Kernel::new("softshrink")
        .params(&["lambd"])
        .cuda(BODY)
        .cuda_dtypes(&[DType::F16, DType::BF16, DType::F32, DType::F64])
        .cpu(cpu)
        .vjp(vjp)
        .build()?;

    let n = 1 << 24;
    let key = ingot::random::key(0);
    let x = ingot::random::normal(&key, &[n], 0.0, 2.0, DType::F32)?;
    x.eval()?;
    let lambd = 0.5;
    let reference = time("built-in (composed ops)", n, || {
        ingot_nn::activations::softshrink(&x, lambd)
    })?;
    let a = time("kernel, CPU code only", n, || {
        Ok(cpu_only.call(&[&x], &[lambd])?.remove(0))
    })?;
    let b = time("kernel with its CUDA body", n, || {
        Ok(with_cuda.call(&[&x], &[lambd])?.remove(0))
    })?;
    for (name, y) in [("CPU code", &a), ("CUDA body", &b)] {
        let diff = ingot::max(&ingot::abs(&ingot::subtract(y, &reference)?)?, None, false)?
            .item::<f32>()?;
        println!("{name}: largest difference from the built-in {diff:e}");
        assert!(diff == 0.0, "{name} differs from the built-in softshrink");
    }
    if device != Device::Cpu {
        let fb = ingot::cuda::fallbacks();
        println!("ops run on the CPU for the GPU: {fb:?}");
    }
    // The gradient through the kernel's rule equals the built-in's.
    let small = ingot::random::normal(&ingot::random::key(1), &[4096], 0.0, 2.0, DType::F32)?;
    let g_kernel = ingot::grad(
        |v: &[Array]| ingot::sum(&with_cuda.call(&[&v[0]], &[lambd])?[0], None, false),
        &[0],
    )(std::slice::from_ref(&small))?;
    let g_builtin = ingot::grad(
        |v: &[Array]| {
            ingot::sum(
                &ingot_nn::activations::softshrink(&v[0], lambd)?,
                None,
                false,
            )
        },
        &[0],
    )(std::slice::from_ref(&small))?;
    assert_eq!(g_kernel[0].to_vec::<f32>()?, g_builtin[0].to_vec::<f32>()?);
    println!(
        "gradient: equal to the built-in's on {} elements",
        small.size()
    );
    Ok(())
}
