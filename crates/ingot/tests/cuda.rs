//! The CUDA backend's own checks. The kernel compile check runs wherever NVRTC loads (no GPU
//! needed); the rest run on a GPU and skip cleanly without one. The op suites themselves run
//! on the GPU with `INGOT_TEST_DEVICE=cuda` (see scripts/gpu-tests.sh).

use ingot::{Array, DType, Device, FftNorm};

fn gpu() -> bool {
    if ingot::cuda::is_available() {
        return true;
    }
    eprintln!("skipped: no CUDA GPU here");
    false
}

#[test]
fn kernels_compile_with_nvrtc() {
    if !ingot::backend::cuda::nvrtc_available() {
        eprintln!("skipped: NVRTC not found (set LD_LIBRARY_PATH to a libnvrtc.so to run it)");
        return;
    }
    let n = ingot::backend::cuda::check_kernels_compile("sm_90a").unwrap();
    assert!(n > 10, "{n} modules");
}

/// Several host threads computing on the one GPU at once get what one thread gets alone.
/// Run G25: `grad_nn`'s f64 gradients (pooling, convolution, grid_sample, rfftn) came out
/// wrong in 7 of 9 runs on the test harness's threads and right with one thread (docs/cuda.md,
/// "Known problem"). Each piece runs on its own as well as together, and one thread repeats
/// its own work first, so a failure says which op and whether it is a race at all or only
/// a result that differs from run to run.
#[test]
fn threads_sharing_the_gpu_get_single_thread_results() {
    if !gpu() {
        return;
    }
    type Piece = fn(&Array, &Array) -> ingot::Result<Array>;
    fn pool(x: &Array, _: &Array) -> ingot::Result<Array> {
        let p = ingot::max_pool1d(x, 3, Some(2), 1)?;
        ingot::sum(&ingot::square(&p)?, None, false)
    }
    fn conv(x: &Array, w: &Array) -> ingot::Result<Array> {
        let c = ingot::conv1d(x, w, 1, 0, 1, 1)?;
        ingot::sum(&ingot::sin(&c)?, None, false)
    }
    fn both(x: &Array, w: &Array) -> ingot::Result<Array> {
        ingot::add(pool(x, w)?, conv(x, w)?)
    }
    // The shapes grad_nn uses, in f64.
    let work = |piece: Piece, seed: u64| -> Vec<f64> {
        let f64s = |n: usize, s: u64| f32s(n, s).into_iter().map(f64::from).collect();
        let x = Array::from_vec(f64s(2 * 9 * 3, seed), &[2, 9, 3]).unwrap();
        let w = Array::from_vec(f64s(4 * 3 * 3, seed + 100), &[4, 3, 3]).unwrap();
        let f = move |a: &[Array]| -> ingot::Result<Vec<Array>> { Ok(vec![piece(&a[0], &a[1])?]) };
        let one = Array::from_vec(vec![1.0f64], &[]).unwrap();
        let (_, g) = ingot::vjp(f, &[x, w], &[one]).unwrap();
        g.iter().flat_map(|g| g.to_f64_vec().unwrap()).collect()
    };
    let worst = |a: &[f64], b: &[f64]| -> f64 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs() / x.abs().max(1.0))
            // NaN (one side NaN) counts as the worst difference.
            .map(|d| if d.is_nan() { f64::INFINITY } else { d })
            .fold(0.0, f64::max)
    };
    // The default device is process-wide, so every thread below computes on the GPU (as
    // cuda_backend, which may run beside this test, also sets).
    ingot::set_default_device(Device::Cuda(0));
    let threads = 8u64;
    let mut failures = Vec::new();
    for (name, piece) in [
        ("max_pool1d", pool as Piece),
        ("conv1d", conv),
        ("both", both),
    ] {
        let alone: Vec<Vec<f64>> = (0..threads).map(|t| work(piece, t)).collect();
        let again = work(piece, 0);
        let d = worst(&alone[0], &again);
        if d > 1e-12 {
            failures.push(format!("{name}: one thread, twice: off by {d:e}"));
        }
        for round in 0..5 {
            let together: Vec<Vec<f64>> = std::thread::scope(|s| {
                let hs: Vec<_> = (0..threads)
                    .map(|t| s.spawn(move || work(piece, t)))
                    .collect();
                hs.into_iter().map(|h| h.join().unwrap()).collect()
            });
            for (t, (a, b)) in alone.iter().zip(&together).enumerate() {
                let d = worst(a, b);
                if d > 1e-12 {
                    failures.push(format!("{name}: round {round}, thread {t}: off by {d:e}"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "gradients computed beside other threads differ from one thread's:\n{}",
        failures.join("\n")
    );
}

fn f32s(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 8.0 - 4.0
        })
        .collect()
}

/// Everything that depends on the process-wide default device or on the GPU's memory
/// figures, in one test function so no other test of this binary runs between its steps.
#[test]
fn cuda_backend() {
    if !gpu() {
        return;
    }
    let gpu0 = Device::Cuda(0);
    ingot::set_default_device(gpu0);
    transfers_are_lazy_and_counted();
    results_match_the_cpu_bit_for_bit();
    running_out_of_memory_is_an_error();
    memory_figures_and_cache();
    elementwise_outputs_reuse_inputs_nobody_holds();
    layout_and_gather_kernels_match_the_cpu();
    ops_without_kernels_fall_back_to_the_cpu();
    decoding_matmuls_match_an_f64_reference();
    ordered_scatter_adds_match_the_cpu_bit_for_bit();
    unaligned_large_products_match_the_cpu();
    tuned_products_match_the_cpu();
    queued_launches_keep_program_order();
    compiled_functions_replay_as_cuda_graphs();
}

fn transfers_are_lazy_and_counted() {
    let t0 = ingot::memory::thread_transfers();
    let x = Array::from_slice(&f32s(1000, 1), &[10, 100]).unwrap();
    let y = ingot::multiply(ingot::exp(&x).unwrap(), 2.0).unwrap();
    let z = ingot::sum(&y, Some(&[1]), false).unwrap();
    z.eval().unwrap();
    let t1 = ingot::memory::thread_transfers();
    // x went up once (the scalar 2.0 rides in the kernel's parameters); the GPU-only chain
    // moved nothing else, and nothing came back.
    assert_eq!(t1.to_device - t0.to_device, 1, "{t0:?} -> {t1:?}");
    assert_eq!(t1.to_device_bytes - t0.to_device_bytes, 4000);
    assert_eq!(t1.to_host, t0.to_host);
    let v = z.to_vec::<f32>().unwrap();
    let t2 = ingot::memory::thread_transfers();
    assert_eq!(t2.to_host - t1.to_host, 1);
    assert_eq!(t2.to_host_bytes - t1.to_host_bytes, 40);
    // Read again: the host copy is kept.
    assert_eq!(z.to_vec::<f32>().unwrap(), v);
    // A second GPU op on x reuses its device copy.
    ingot::negative(&x).unwrap().eval().unwrap();
    let t3 = ingot::memory::thread_transfers();
    assert_eq!(t3.to_host, t2.to_host);
    assert_eq!(t3.to_device, t2.to_device);
    // A CPU op on y (only on the GPU so far) brings it down once; then y is on both sides.
    let w = ingot::with_device(Device::Cpu, || ingot::add(&y, 1.0).unwrap());
    w.eval().unwrap();
    let t4 = ingot::memory::thread_transfers();
    assert_eq!(t4.to_host - t3.to_host, 1);
    assert_eq!(t4.to_device, t3.to_device);
    ingot::synchronize(Device::Cuda(0)).unwrap();
}

fn results_match_the_cpu_bit_for_bit() {
    // exp and tanh of f32 use the CPU's own formulas on the GPU, so the bits agree.
    let vals = f32s(1 << 16, 7);
    let x = Array::from_slice(&vals, &[1 << 16]).unwrap();
    for (name, f) in [
        ("exp", ingot::exp as fn(&Array) -> ingot::Result<Array>),
        ("tanh", ingot::tanh),
    ] {
        let g = f(&x).unwrap().to_vec::<f32>().unwrap();
        let c = ingot::with_device(Device::Cpu, || f(&x).unwrap().to_vec::<f32>().unwrap());
        let diff = g
            .iter()
            .zip(&c)
            .filter(|(a, b)| a.to_bits() != b.to_bits())
            .count();
        assert_eq!(diff, 0, "{name}: {diff} of {} differ", g.len());
    }
    // A strided, broadcast binary op and a transposed matmul against the CPU.
    let a = Array::from_slice(&f32s(64 * 48, 3), &[64, 48]).unwrap();
    let b = Array::from_slice(&f32s(48, 4), &[48]).unwrap();
    let at = ingot::transpose(&a, None).unwrap();
    let run = || {
        let s = ingot::add(ingot::transpose(&at, None).unwrap(), &b).unwrap();
        let m = ingot::matmul(&at, &s).unwrap();
        (s.to_vec::<f32>().unwrap(), m.to_vec::<f32>().unwrap())
    };
    let (sg, mg) = run();
    let (sc, mc) = ingot::with_device(Device::Cpu, run);
    assert_eq!(sg, sc);
    let err = max_rel_err(&mg, &mc);
    assert!(err < 1e-4, "matmul differs by {err}");
}

/// The bits of `f()` evaluated on the default device (the GPU) and on the CPU.
/// The largest |a - b| / (1 + |b|) over the two results' elements.
fn max_rel_err(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
        .fold(0f32, f32::max)
}

fn both(f: impl Fn() -> ingot::Result<Array>) -> (Vec<u8>, Vec<u8>) {
    let bytes = |a: Array| {
        let a = ingot::view(&a, DType::U8).unwrap_or(a);
        a.to_vec::<u8>().unwrap()
    };
    let g = bytes(f().unwrap());
    let c = ingot::with_device(Device::Cpu, || bytes(f().unwrap()));
    (g, c)
}

fn layout_and_gather_kernels_match_the_cpu() {
    use ingot::{PadMode, SliceArg};
    let a = Array::from_slice(&f32s(6 * 5 * 4, 11), &[6, 5, 4]).unwrap();
    let at = ingot::transpose(&a, Some(&[2, 0, 1])).unwrap(); // strided
    let b = Array::from_slice(&f32s(6 * 2 * 4, 12), &[6, 2, 4]).unwrap();
    let (g, c) = both(|| ingot::concatenate(&[a.clone(), b.clone(), a.clone()], Some(1)));
    assert_eq!(g, c, "concatenate");
    for mode in [
        PadMode::Constant,
        PadMode::Edge,
        PadMode::Reflect,
        PadMode::Symmetric,
    ] {
        let (g, c) = both(|| ingot::pad(&at, &[(1, 7), (0, 2), (3, 0)], mode, 2.5));
        assert_eq!(g, c, "pad {mode:?}");
    }
    let (g, c) = both(|| {
        ingot::slice_update(
            &a,
            ingot::negative(&b)?,
            &[
                SliceArg::new(None, None, 1),
                SliceArg::new(Some(1), None, 2),
            ],
        )
    });
    assert_eq!(g, c, "slice_update");
    // Copies and plain updates move bits as wider words where the layout allows (a head
    // transpose of bf16 as u64s, an offset of 2 as u32s, u8 rows as u64s) and element by
    // element where it does not (odd offsets): all the CPU's bytes. Sources made on the GPU.
    let x = ingot::astype(
        &ingot::negative(&Array::from_slice(&f32s(2 * 6 * 3 * 8, 13), &[2, 6, 3, 8]).unwrap())
            .unwrap(),
        DType::BF16,
    )
    .unwrap();
    let bytes8 = ingot::astype(&ingot::multiply(&x, 7.0).unwrap(), DType::U8).unwrap();
    let heads = |t: &Array| ingot::transpose(t, Some(&[0, 2, 1, 3]));
    for (name, lo, hi) in [("whole rows", 0, 8), ("offset 2", 2, 8), ("offset 1", 1, 7)] {
        let cut = |t: &Array| {
            ingot::slice(
                t,
                &[
                    SliceArg::new(None, None, 1),
                    SliceArg::new(None, None, 1),
                    SliceArg::new(None, None, 1),
                    SliceArg::new(Some(lo), Some(hi), 1),
                ],
            )
        };
        for src in [&x, &bytes8] {
            let (g, c) = both(|| ingot::copy(&heads(&cut(src)?)?));
            assert_eq!(g, c, "copy of transposed heads, {name}, {}", src.dtype());
        }
        let dst = ingot::zeros(&[2, 3, 6, 8], DType::BF16).unwrap();
        let (g, c) = both(|| {
            ingot::slice_update(
                &dst,
                heads(&cut(&x)?)?,
                &[
                    SliceArg::new(None, None, 1),
                    SliceArg::new(None, None, 1),
                    SliceArg::new(None, None, 1),
                    SliceArg::new(Some(lo), Some(hi), 1),
                ],
            )
        });
        assert_eq!(g, c, "slice_update from transposed heads, {name}");
    }
    let key = ingot::random::key(42);
    for n in [0usize, 1, 7, 1000, 4097] {
        let (g, c) = both(|| ingot::random::random_bits(&key, &[n]));
        assert_eq!(g, c, "random bits of {n}");
    }
    // Indices on the host and indices computed on the GPU (resolved there, with negatives).
    let host_idx = Array::from_slice(&[3i64, -1, 0, 5, -6, 2], &[6]).unwrap();
    let dev_idx = || {
        // [5, 3, 1, -1, -3, -5] as int32, made by GPU kernels.
        let r = ingot::arange(5.0, -6.0, -2.0, DType::I32)?;
        Ok::<_, ingot::Error>(r)
    };
    for (name, idx) in [("host", host_idx.clone()), ("gpu", dev_idx().unwrap())] {
        let (g, c) = both(|| ingot::take(&at, &idx, Some(1)));
        assert_eq!(g, c, "take with {name} indices");
        let (g, c) = both(|| ingot::gather(&a, std::slice::from_ref(&idx), &[0], &[1, 3, 4]));
        assert_eq!(g, c, "gather with {name} indices");
    }
    let along = ingot::argsort(&a, Some(1)).unwrap();
    let (g, c) = both(|| ingot::take_along_axis(&a, &along, Some(1)));
    assert_eq!(g, c, "take_along_axis");
    // An index out of bounds that only the GPU holds is an error naming it.
    let bad = ingot::add(dev_idx().unwrap(), 100i32).unwrap();
    bad.eval().unwrap();
    let e = ingot::take(&a, &bad, Some(0))
        .and_then(|t| t.eval())
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("index 105 is out of bounds for axis 0 with size 6"),
        "{e}"
    );
    // An update of a GPU array (in place when donated) moves nothing to the host.
    let big = ingot::zeros(&[1024, 64], DType::F32).unwrap();
    big.eval().unwrap();
    let t0 = ingot::memory::thread_transfers();
    let upd = ingot::slice_update(&big, 1.0f32, &[SliceArg::new(Some(3), Some(4), 1)]).unwrap();
    drop(big);
    let s = ingot::sum(&upd, None, false).unwrap();
    s.eval().unwrap();
    assert_eq!(ingot::memory::thread_transfers().to_host, t0.to_host);
    assert_eq!(s.item::<f32>().unwrap(), 64.0);
}

fn running_out_of_memory_is_an_error() {
    let stats = ingot::memory::cuda::memory_stats(0);
    // Four times the card: the allocation fails and says so.
    let n = stats.total; // f32 elements: 4x the bytes
    let big = ingot::arange(0.0, n as f64, 1.0, DType::F32).unwrap();
    match big.eval() {
        Err(ingot::Error::OutOfMemory { msg, .. }) => assert!(msg.contains("cuda:0"), "{msg}"),
        other => panic!("expected OutOfMemory, got {:?}", other.err()),
    }
    drop(big);
    // The process goes on and the GPU still works.
    let x = ingot::arange(0.0, 1000.0, 1.0, DType::F32).unwrap();
    assert_eq!(
        ingot::sum(&x, None, false).unwrap().item::<f32>().unwrap(),
        499500.0
    );
    // A memory limit is enforced the same way.
    let active = ingot::memory::cuda::active_memory(0);
    let old = ingot::memory::cuda::set_memory_limit(0, active + (8 << 20)).unwrap();
    let y = ingot::arange(0.0, (16 << 20) as f64, 1.0, DType::F32).unwrap();
    assert!(matches!(y.eval(), Err(ingot::Error::OutOfMemory { .. })));
    ingot::memory::cuda::set_memory_limit(0, old).unwrap();
    y.eval().unwrap();
}

fn memory_figures_and_cache() {
    ingot::memory::cuda::clear_cache(0).unwrap();
    assert_eq!(ingot::memory::cuda::cache_memory(0), 0);
    let base = ingot::memory::cuda::active_memory(0);
    let x = ingot::arange(0.0, (4 << 20) as f64, 1.0, DType::F32).unwrap();
    x.eval().unwrap();
    let bytes = 16 << 20;
    assert_eq!(ingot::memory::cuda::active_memory(0), base + bytes);
    assert!(ingot::memory::cuda::peak_memory(0) >= base + bytes);
    drop(x);
    assert_eq!(ingot::memory::cuda::active_memory(0), base);
    assert_eq!(ingot::memory::cuda::cache_memory(0), bytes);
    // The next buffer of that size class is the cached block.
    let y = ingot::arange(1.0, (4 << 20) as f64 + 1.0, 1.0, DType::F32).unwrap();
    y.eval().unwrap();
    assert_eq!(ingot::memory::cuda::cache_memory(0), 0);
    assert_eq!(y.to_vec::<f32>().unwrap()[5], 6.0);
    drop(y);
    ingot::memory::cuda::clear_cache(0).unwrap();
    assert_eq!(ingot::memory::cuda::cache_memory(0), 0);
}

/// The GPU address of an evaluated array's bytes.
fn device_addr(a: &Array) -> u64 {
    a.data()
        .unwrap()
        .buffer
        .device_address()
        .expect("on the GPU")
}

/// Unless `INGOT_CUDA_DONATE=0`, elementwise kernels write their output over an input that
/// nobody else holds (as the CPU does), so a chain of n ops over a dropped array needs no new memory; inputs still
/// held are never written; a fused kernel with two outputs written over the input both
/// read gives the CPU's values.
fn elementwise_outputs_reuse_inputs_nobody_holds() {
    if std::env::var("INGOT_CUDA_DONATE").is_ok_and(|v| v == "0") {
        eprintln!("skipped: GPU elementwise donation is off (INGOT_CUDA_DONATE=0)");
        return;
    }
    let n = 1 << 22;
    let vals = f32s(n, 41);
    let on_cpu = |f: &dyn Fn(&Array) -> ingot::Result<Array>| {
        ingot::with_device(Device::Cpu, || {
            let x = Array::from_slice(&vals, &[n]).unwrap();
            f(&x).unwrap().to_vec::<f32>().unwrap()
        })
    };
    let chain = |x: &Array| -> ingot::Result<Array> {
        let y = ingot::multiply(ingot::sin(x)?, 0.5)?;
        ingot::tanh(&ingot::add(&y, x)?)
    };
    // Kept: the input is read, not written. (x + 0 is x, made on the GPU, so reading it
    // back reads the GPU's bytes.)
    let x = ingot::add(Array::from_slice(&vals, &[n]).unwrap(), 0.0).unwrap();
    x.eval().unwrap();
    let kept = chain(&x).unwrap();
    kept.eval().unwrap();
    assert_ne!(device_addr(&kept), device_addr(&x));
    assert_eq!(x.to_vec::<f32>().unwrap(), vals, "a held input was written");
    // Dropped: x is read by sin and by the add, so sin needs a new buffer, the multiply
    // and the add (x's last reader) write over sin's output, and tanh over the add's.
    let lazy = chain(&x).unwrap();
    drop(x);
    ingot::memory::cuda::reset_peak_memory(0);
    let base = ingot::memory::cuda::active_memory(0);
    lazy.eval().unwrap();
    let bytes = n * 4;
    assert!(
        ingot::memory::cuda::peak_memory(0) <= base + bytes,
        "peak {} over a start of {base}: more than sin's output",
        ingot::memory::cuda::peak_memory(0)
    );
    let want = on_cpu(&chain);
    assert!(max_rel_err(&lazy.to_vec::<f32>().unwrap(), &want) < 1e-5);
    assert!(max_rel_err(&kept.to_vec::<f32>().unwrap(), &want) < 1e-5);
    // Read once: the whole chain runs in the input's own buffer.
    let one_reader = |x: &Array| -> ingot::Result<Array> {
        ingot::tanh(&ingot::add(ingot::multiply(ingot::sin(x)?, 0.5)?, 1.0)?)
    };
    let x = ingot::add(Array::from_slice(&vals, &[n]).unwrap(), 0.0).unwrap();
    x.eval().unwrap();
    let addr = device_addr(&x);
    let y = one_reader(&x).unwrap();
    drop(x);
    y.eval().unwrap();
    assert_eq!(
        device_addr(&y),
        addr,
        "the chain's output is not in its input's buffer"
    );
    let want = on_cpu(&|x: &Array| one_reader(&ingot::add(x, 0.0)?));
    assert!(max_rel_err(&y.to_vec::<f32>().unwrap(), &want) < 1e-5);
    // Two outputs of one fused kernel over a product both read.
    let (r, c) = (256, 512);
    let a = Array::from_slice(&vals[..r * 64], &[r, 64]).unwrap();
    let b = Array::from_slice(&vals[r * 64..r * 64 + 64 * c], &[64, c]).unwrap();
    let f = ingot::compile(|xs: &[Array]| -> ingot::Result<Vec<Array>> {
        let h = ingot::matmul(&xs[0], &xs[1])?;
        let one = ingot::multiply(ingot::tanh(&h)?, 2.0)?;
        let two = ingot::add(ingot::multiply(&h, &h)?, 1.0)?;
        Ok(vec![one, two])
    });
    let outs = f.call(&[a.clone(), b.clone()]).unwrap();
    ingot::eval(&outs).unwrap();
    let wants = ingot::with_device(Device::Cpu, || {
        let h = ingot::matmul(&a, &b).unwrap();
        let one = ingot::multiply(ingot::tanh(&h).unwrap(), 2.0).unwrap();
        let two = ingot::add(ingot::multiply(&h, &h).unwrap(), 1.0).unwrap();
        [one, two].map(|w| w.to_vec::<f32>().unwrap())
    });
    for (got, want) in outs.iter().zip(wants) {
        let err = max_rel_err(&got.to_vec::<f32>().unwrap(), &want);
        assert!(err < 1e-4, "fused two-output kernel: relative error {err}");
    }
}

fn ops_without_kernels_fall_back_to_the_cpu() {
    // A decomposition has no GPU kernel yet: the inverse of a GPU result runs on the CPU.
    let d = Array::from_slice(&[2.0f32, 4.0], &[2]).unwrap();
    let a = ingot::diag(&ingot::exp(&d).unwrap(), 0).unwrap();
    let inv = ingot::inv(&a).unwrap().to_vec::<f32>().unwrap();
    let want = [(-2.0f32).exp(), 0.0, 0.0, (-4.0f32).exp()];
    for (g, w) in inv.iter().zip(want) {
        assert!(
            (g - w).abs() <= 1e-6 * w.abs().max(1e-30),
            "{inv:?} vs {want:?}"
        );
    }
    let fb = ingot::cuda::fallbacks();
    assert!(fb.iter().any(|(n, c)| *n == "inv" && *c > 0), "{fb:?}");
}

/// Products of a few rows with a weight stored (n, k) — `x @ W^T` while decoding, which the
/// GPU's matrix-vector kernel computes instead of cuBLAS — against an f64 reference of the
/// same (rounded) inputs: both kernel paths (16-byte loads when k and the rows align,
/// element loads otherwise), one to eight rows (activations through L1 or staged in shared
/// memory, two outputs per warp with an odd n), groups of warps per output for short n,
/// a weight broadcast over a batch, NaN propagating, and nine rows (cuBLAS again).
/// A step of `cuda_backend`: `with_device` changes the process-wide default, which would
/// put a concurrent test's arrays (the out-of-memory check's included) on the CPU.
fn decoding_matmuls_match_an_f64_reference() {
    let gpu0 = Device::Cuda(0);
    for dt in [DType::BF16, DType::F16, DType::F32] {
        let tol = match dt {
            DType::BF16 => 1e-2,
            DType::F16 => 2e-3,
            _ => 1e-5,
        };
        // (batch, m, n, k, offset of x's first element)
        for (case, &(batch, m, n, k, shift)) in [
            (1, 1, 1024, 4096, 0),
            (1, 1, 4099, 512, 0),
            (1, 3, 33, 4096, 0),
            (1, 8, 257, 1000, 0),
            (1, 2, 300, 100, 0),
            (1, 1, 64, 520, 1),
            (2, 4, 130, 64, 0),
            (1, 9, 70, 256, 0),
            (1, 1, 5, 8, 0),
            // Activation rows in shared memory beyond the default 48 KiB, and too long for
            // it (read through L1 instead).
            (1, 4, 50, 8192, 0),
            (1, 6, 40, 20480, 0),
        ]
        .iter()
        .enumerate()
        {
            let xs = f32s(batch * m * (k + shift), 11 + case as u64);
            let ws = f32s(n * k, 97 + case as u64);
            let run = || -> Vec<f64> {
                let x = Array::from_slice(&xs, &[batch, m, k + shift]).unwrap();
                let x = ingot::astype(&x, dt).unwrap();
                // A view that starts `shift` elements in: rows no longer 16-byte aligned.
                let x = ingot::slice(
                    &x,
                    &[
                        ingot::SliceArg::ALL,
                        ingot::SliceArg::ALL,
                        ingot::SliceArg::range(shift as isize, (k + shift) as isize),
                    ],
                )
                .unwrap();
                let w = ingot::astype(&Array::from_slice(&ws, &[n, k]).unwrap(), dt).unwrap();
                let y = ingot::matmul(&x, &ingot::transpose(&w, None).unwrap()).unwrap();
                assert_eq!(y.shape(), [batch, m, n]);
                assert_eq!(y.dtype(), dt);
                ingot::astype(&y, DType::F64)
                    .unwrap()
                    .to_vec::<f64>()
                    .unwrap()
            };
            let got = ingot::with_device(gpu0, run);
            // The reference: the inputs rounded to dt, multiplied in f64 on the CPU.
            let round = |v: &[f32]| -> Vec<f64> {
                let a = Array::from_slice(v, &[v.len()]).unwrap();
                let a = ingot::astype(&ingot::astype(&a, dt).unwrap(), DType::F64).unwrap();
                a.to_vec::<f64>().unwrap()
            };
            let (xr, wr) = ingot::with_device(Device::Cpu, || (round(&xs), round(&ws)));
            for b in 0..batch {
                for i in 0..m {
                    for j in 0..n {
                        let row = &xr[(b * m + i) * (k + shift) + shift..][..k];
                        let col = &wr[j * k..][..k];
                        let exact: f64 = row.iter().zip(col).map(|(a, w)| a * w).sum();
                        let mag: f64 = row.iter().zip(col).map(|(a, w)| (a * w).abs()).sum();
                        let g = got[(b * m + i) * n + j];
                        assert!(
                            (g - exact).abs() <= tol * (mag + exact.abs()) + 1e-6,
                            "{dt:?} case {case} ({batch}, {m}, {n}, {k}) at ({b}, {i}, {j}): \
                             {g} vs {exact}"
                        );
                    }
                }
            }
        }
        // NaN in one row of x reaches every output of that row and no other.
        let mut xs = f32s(2 * 64, 5);
        xs[70] = f32::NAN;
        let ws = f32s(16 * 64, 6);
        let y = ingot::with_device(gpu0, || {
            let x = ingot::astype(&Array::from_slice(&xs, &[2, 64]).unwrap(), dt).unwrap();
            let w = ingot::astype(&Array::from_slice(&ws, &[16, 64]).unwrap(), dt).unwrap();
            let y = ingot::matmul(&x, &ingot::transpose(&w, None).unwrap()).unwrap();
            ingot::astype(&y, DType::F64)
                .unwrap()
                .to_vec::<f64>()
                .unwrap()
        });
        assert!(y[..16].iter().all(|v| v.is_finite()), "{dt:?}: {y:?}");
        assert!(y[16..].iter().all(|v| v.is_nan()), "{dt:?}: {y:?}");
    }
}

/// Float scatter-adds whose updates meet run on the GPU in the CPU's order, so the bits
/// agree: an embedding's gradient (rows hit many times, a few rows most), the same in bf16
/// and complex64, rows of a 3-d table, put_along_axis with several updates per column, and
/// a 1-d scatter of single elements; none of them falls back to the CPU. Slices that
/// overlap in part still run on the CPU, with the same bits.
fn ordered_scatter_adds_match_the_cpu_bit_for_bit() {
    let scatter_fallbacks = || -> usize {
        ingot::cuda::fallbacks()
            .iter()
            .filter(|(n, _)| n.contains("scatter") || n.contains("put_along"))
            .map(|(_, c)| c)
            .sum()
    };
    let before = scatter_fallbacks();
    let (vocab, dim, tokens) = (300usize, 96usize, 4000usize);
    // Zipf-like ids: a handful of rows take most updates.
    let ids: Vec<i32> = f32s(tokens, 21)
        .iter()
        .map(|v| (((v + 4.0) / 8.0).powi(4) * vocab as f32) as i32 % vocab as i32)
        .collect();
    let idx = Array::from_slice(&ids, &[tokens]).unwrap();
    let table = Array::from_slice(&f32s(vocab * dim, 22), &[vocab, dim]).unwrap();
    let g = Array::from_slice(&f32s(tokens * dim, 23), &[tokens, 1, dim]).unwrap();
    // The bf16 result of a plain loop, element by element in update order.
    let tb: Vec<ingot::bf16> = ingot::astype(&table, DType::BF16)
        .unwrap()
        .to_vec()
        .unwrap();
    let gb: Vec<ingot::bf16> = ingot::astype(&g, DType::BF16).unwrap().to_vec().unwrap();
    let mut want = tb.clone();
    for (t, &row) in ids.iter().enumerate() {
        for j in 0..dim {
            let o = row as usize * dim + j;
            want[o] = ingot::bf16::from_f32(want[o].to_f32() + gb[t * dim + j].to_f32());
        }
    }
    for dt in [DType::F32, DType::BF16, DType::F64, DType::C64] {
        for donated in [true, false] {
            let t = ingot::astype(&table, dt).unwrap();
            let (gpu, cpu) = both(|| {
                // A fresh cast is the scatter's to update in place (f32's "cast" is the
                // table itself, kept); a kept one is copied.
                let t = if donated {
                    ingot::astype(&table, dt)?
                } else {
                    t.clone()
                };
                ingot::scatter_add(
                    &t,
                    std::slice::from_ref(&idx),
                    &ingot::astype(&g, dt)?,
                    &[0],
                )
            });
            if gpu != cpu {
                let w = dt.size();
                let e = (0..gpu.len() / w)
                    .find(|&e| gpu[e * w..(e + 1) * w] != cpu[e * w..(e + 1) * w])
                    .unwrap();
                let plain = (dt == DType::BF16).then(|| want[e].to_bits().to_le_bytes());
                panic!(
                    "embedding-gradient scatter_add {dt} (donated {donated}): element {e} (row {}, column {}) GPU {:?} CPU {:?} plain loop {plain:?}",
                    e / dim,
                    e % dim,
                    &gpu[e * w..(e + 1) * w],
                    &cpu[e * w..(e + 1) * w]
                );
            }
        }
    }
    // The vjp of take: the same scatter, built by autodiff.
    let (gpu, cpu) = both(|| {
        let f = |xs: &[Array]| {
            let e = ingot::take(&xs[0], &idx, Some(0))?;
            ingot::sum(&ingot::multiply(&e, &e)?, None, false)
        };
        Ok(ingot::grad(f, &[0])(std::slice::from_ref(&table))?.remove(0))
    });
    assert_eq!(gpu, cpu, "take's gradient");
    // Rows of (4, 50, 8) tables picked along axis 1.
    let t3 = Array::from_slice(&f32s(4 * 50 * 8, 24), &[4, 50, 8]).unwrap();
    let i3 = Array::from_slice(
        &ids[..700].iter().map(|v| v % 50).collect::<Vec<_>>(),
        &[700],
    )
    .unwrap();
    let u3 = Array::from_slice(&f32s(700 * 4 * 8, 25), &[700, 4, 1, 8]).unwrap();
    let (gpu, cpu) = both(|| ingot::scatter_add(&t3, std::slice::from_ref(&i3), &u3, &[1]));
    assert_eq!(gpu, cpu, "scatter_add along a middle axis");
    // put_along_axis: 40 updates per column of a (6, 30, 5) array.
    let a = Array::from_slice(&f32s(6 * 30 * 5, 26), &[6, 30, 5]).unwrap();
    let pi: Vec<i64> = f32s(6 * 40 * 5, 27)
        .iter()
        .map(|v| ((v + 4.0) * 3.0) as i64 % 30)
        .collect();
    let pidx = Array::from_slice(&pi, &[6, 40, 5]).unwrap();
    let pv = Array::from_slice(&f32s(6 * 40 * 5, 28), &[6, 40, 5]).unwrap();
    let (gpu, cpu) = both(|| ingot::put_along_axis_add(&a, &pidx, &pv, Some(1)));
    assert_eq!(gpu, cpu, "put_along_axis_add with repeats");
    // 1-d: 100,000 single elements into 1,000 (np.add.at).
    let flat = Array::from_slice(&f32s(1000, 29), &[1000]).unwrap();
    let fi: Vec<i64> = f32s(100_000, 30)
        .iter()
        .map(|v| ((v + 4.0) * 125.0) as i64 % 1000)
        .collect();
    let fidx = Array::from_slice(&fi, &[100_000]).unwrap();
    let fu = Array::from_slice(&f32s(100_000, 31), &[100_000, 1]).unwrap();
    let (gpu, cpu) = both(|| ingot::scatter_add(&flat, std::slice::from_ref(&fidx), &fu, &[0]));
    assert_eq!(gpu, cpu, "1-d scatter_add of 100,000");
    assert_eq!(
        scatter_fallbacks(),
        before,
        "{:?}",
        ingot::cuda::fallbacks()
    );
    // Slices two wide along the indexed axis overlap in part: the CPU's, same bits.
    let o = Array::from_slice(&[0i64, 1, 1, 2], &[4]).unwrap();
    let ou = Array::from_slice(&f32s(4 * 2 * dim, 32), &[4, 2, dim]).unwrap();
    let (gpu, cpu) = both(|| ingot::scatter_add(&table, std::slice::from_ref(&o), &ou, &[0]));
    assert_eq!(gpu, cpu, "overlapping slices");
}

/// Large products whose rows are not whole 16 bytes (n = 1001 bf16 and f32, like an odd
/// vocabulary) take padded copies and a padded result on the GPU: the same values as the
/// CPU's product within the accumulation order's rounding, with plain, transposed and
/// batched operands, and the strided result feeds later ops like any view. In bf16 each of
/// m, n and k odd in turn (GPT-2's three vocabulary products: logits, their gradient
/// against the embedding and against the hidden states) runs on zero-padded copies.
fn unaligned_large_products_match_the_cpu() {
    let (m, k, n) = (1100usize, 1000usize, 1001usize);
    // k = 1001 (the gradient against the hidden states) and, transposed, m = 1001 (the
    // gradient against the embedding).
    let g2 = Array::from_slice(&f32s(m * n, 46), &[m, n]).unwrap();
    let w2 = Array::from_slice(&f32s(n * k, 47), &[n, k]).unwrap();
    let h2 = Array::from_slice(&f32s(m * k, 48), &[m, k]).unwrap();
    let a = Array::from_slice(&f32s(2 * m * k, 41), &[2, m, k]).unwrap();
    let b = Array::from_slice(&f32s(k * n, 42), &[k, n]).unwrap();
    let bt = Array::from_slice(&f32s(n * k, 43), &[n, k]).unwrap();
    // Stored (k, 1099): its transpose's columns are 1099 apart, not whole 16 bytes.
    let at = Array::from_slice(&f32s(k * 1099, 44), &[k, 1099]).unwrap();
    let b3 = Array::from_slice(&f32s(2 * k * n, 45), &[2, k, n]).unwrap();
    for dt in [DType::BF16, DType::F32] {
        let cases: [(&str, Box<dyn Fn() -> ingot::Result<Array>>); 7] = [
            (
                "g2 @ w2 (k odd)",
                Box::new(|| ingot::matmul(&ingot::astype(&g2, dt)?, &ingot::astype(&w2, dt)?)),
            ),
            (
                "g2^T @ h2 (m odd, a transposed operand)",
                Box::new(|| {
                    let t = ingot::transpose(&ingot::astype(&g2, dt)?, None)?;
                    ingot::matmul(&t, &ingot::astype(&h2, dt)?)
                }),
            ),
            (
                "at^T @ b (a transposed operand padded in its storage order)",
                Box::new(|| {
                    let w = ingot::astype(&at, dt)?;
                    ingot::matmul(&ingot::transpose(&w, None)?, &ingot::astype(&b, dt)?)
                }),
            ),
            (
                "a @ b3 (a batch of padded results)",
                Box::new(|| ingot::matmul(&ingot::astype(&a, dt)?, &ingot::astype(&b3, dt)?)),
            ),
            (
                "a @ b",
                Box::new(|| ingot::matmul(&ingot::astype(&a, dt)?, &ingot::astype(&b, dt)?)),
            ),
            (
                "a @ bt^T",
                Box::new(|| {
                    let w = ingot::astype(&bt, dt)?;
                    ingot::matmul(&ingot::astype(&a, dt)?, &ingot::transpose(&w, None)?)
                }),
            ),
            (
                "(a @ b)^T @ a, then + 1",
                Box::new(|| {
                    let x = ingot::astype(&a, dt)?;
                    let y = ingot::matmul(&x, &ingot::astype(&b, dt)?)?;
                    let z = ingot::matmul(&ingot::swapaxes(&y, -1, -2)?, &x)?;
                    ingot::add(&z, 1.0)
                }),
            ),
        ];
        for (name, f) in &cases {
            let rel = if dt == DType::BF16 { 1e-2 } else { 1e-4 };
            product_matches_the_cpu(&format!("{name} {dt}"), f, rel, false);
        }
    }
}

/// Products of at least 2^33 multiply-adds time cuBLASLt's candidates once and keep the
/// fastest (`backend/cuda/blaslt.rs`, the default `INGOT_CUDA_GEMM=tune`; with `lt` the
/// heuristic's first, with `ex` cuBLAS's GEMM): whichever runs, the values are the CPU's
/// within the accumulation order's rounding, for plain, transposed and batch-broadcast
/// operands in each floating dtype, and the same product again gives the same bits (the
/// kept plan).
fn tuned_products_match_the_cpu() {
    let n = 2048usize;
    let a = Array::from_slice(&f32s(2 * n * n, 51), &[2, n, n]).unwrap();
    let b = Array::from_slice(&f32s(n * n, 52), &[n, n]).unwrap();
    let c = Array::from_slice(&f32s(n * n, 53), &[n, n]).unwrap();
    for dt in [DType::F16, DType::BF16, DType::F32] {
        let cases: [(&str, Box<dyn Fn() -> ingot::Result<Array>>); 3] = [
            (
                "b @ c",
                Box::new(|| ingot::matmul(&ingot::astype(&b, dt)?, &ingot::astype(&c, dt)?)),
            ),
            (
                "b^T @ c^T",
                Box::new(|| {
                    let bt = ingot::transpose(&ingot::astype(&b, dt)?, None)?;
                    let ct = ingot::transpose(&ingot::astype(&c, dt)?, None)?;
                    ingot::matmul(&bt, &ct)
                }),
            ),
            (
                "a @ b (b broadcast over the batch)",
                Box::new(|| ingot::matmul(&ingot::astype(&a, dt)?, &ingot::astype(&b, dt)?)),
            ),
        ];
        for (name, f) in &cases {
            let rel = if dt == DType::F32 { 1e-4 } else { 1e-2 };
            product_matches_the_cpu(&format!("{name} {dt}"), f, rel, true);
        }
    }
}

/// `f()` on the GPU (twice with `repeat`, the same bits both times) against the CPU, within
/// `rel` of the largest value.
fn product_matches_the_cpu(
    what: &str,
    f: &dyn Fn() -> ingot::Result<Array>,
    rel: f32,
    repeat: bool,
) {
    let run = || {
        ingot::astype(&f().unwrap(), DType::F32)
            .unwrap()
            .to_vec::<f32>()
            .unwrap()
    };
    let g = run();
    if repeat {
        assert_eq!(run(), g, "{what}: a second run differs");
    }
    let c = ingot::with_device(Device::Cpu, run);
    assert_eq!(g.len(), c.len());
    let scale = c.iter().fold(0f32, |s, v| s.max(v.abs()));
    let err = g
        .iter()
        .zip(&c)
        .fold(0f32, |e, (x, y)| e.max((x - y).abs()));
    assert!(
        err <= rel * scale,
        "{what}: differs by {err} (scale {scale})"
    );
}

/// Kernel launches go through the GPU's launch thread while copies, cuBLAS calls, reads and
/// frees go on the stream from the op's thread: a chain mixing them, with memory freed and
/// reused all along, must still see every step in program order.
fn queued_launches_keep_program_order() {
    let n = 96;
    let w = Array::from_slice(&f32s(n * n, 21), &[n, n]).unwrap();
    let run = || {
        let mut x = Array::from_slice(&f32s(n * n, 22), &[n, n]).unwrap();
        let mut reads = Vec::new();
        for step in 0..40u64 {
            // Elementwise steps (queued launches), each freeing the last one's buffer.
            let mut y = ingot::multiply(&x, 0.05).unwrap();
            for _ in 0..20 {
                y = ingot::add(ingot::tanh(&y).unwrap(), 0.01).unwrap();
            }
            // A fresh upload into memory the steps above just freed, then cuBLAS.
            let b = Array::from_slice(&f32s(n, 100 + step), &[n]).unwrap();
            x = ingot::add(ingot::matmul(&y, &w).unwrap(), &b).unwrap();
            // Ops that copy an operand with a kernel and then call a library in one op:
            // cuBLAS on every other column of y, cuFFT along y's columns.
            let every_other = ingot::SliceArg::new(Some(0), None, 2);
            let s = ingot::slice_axis(&y, 1, every_other).unwrap();
            let ws = ingot::slice_axis(&w, 0, every_other).unwrap();
            let f = ingot::fft(
                &ingot::transpose(&y, None).unwrap(),
                None,
                -1,
                FftNorm::Backward,
            )
            .unwrap();
            let f = ingot::transpose(&ingot::real(&f).unwrap(), None).unwrap();
            let m = ingot::multiply(ingot::matmul(&s, &ws).unwrap(), 0.1).unwrap();
            x = ingot::add(
                &x,
                ingot::add(m, ingot::multiply(f, 0.01).unwrap()).unwrap(),
            )
            .unwrap();
            if step % 10 == 9 {
                reads.push(ingot::sum(&x, None, false).unwrap().item::<f32>().unwrap());
                if ingot::default_device() == Device::Cuda(0) {
                    ingot::memory::cuda::clear_cache(0).unwrap();
                }
            }
        }
        (x.to_vec::<f32>().unwrap(), reads)
    };
    let (g, gr) = run();
    let (c, cr) = ingot::with_device(Device::Cpu, run);
    let err = max_rel_err(&g, &c);
    assert!(err < 1e-3, "the chain differs from the CPU's by {err}");
    for (a, b) in gr.iter().zip(&cr) {
        assert!((a - b).abs() <= 1e-3 * (1.0 + b.abs()), "read {a} vs {b}");
    }
}

/// A step of many small ops: cuBLAS, cuFFT, fused elementwise chains, reductions, softmax,
/// a view of an input and the input itself among the outputs.
fn graph_step(xs: &[Array]) -> ingot::Result<Vec<Array>> {
    let (x, w) = (&xs[0], &xs[1]);
    let mut h = ingot::matmul(x, w)?;
    for k in 0..12 {
        h = ingot::add(ingot::multiply(ingot::sin(&h)?, 0.9)?, 0.01 * k as f64)?;
        let m = ingot::mean(&h, Some(&[1]), true)?;
        h = ingot::subtract(&h, &m)?;
    }
    let f = ingot::fft(&h, None, -1, FftNorm::Backward)?;
    let p = ingot::softmax(&ingot::add(&h, ingot::real(&f)?)?, -1)?;
    let total = ingot::sum(&p, None, false)?;
    let xt = ingot::transpose(x, None)?;
    Ok(vec![p, total, xt, w.clone()])
}

fn graph_options(on: bool) -> ingot::transforms::CompileOptions {
    ingot::transforms::CompileOptions {
        cuda_graph: on,
        ..Default::default()
    }
}

fn bytes_of(a: &Array) -> Vec<u8> {
    a.to_vec::<f32>()
        .unwrap()
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect()
}

fn compiled_functions_replay_as_cuda_graphs() {
    let (n, k, m) = (48, 40, 64);
    let inputs = |seed: u64| {
        vec![
            Array::from_slice(&f32s(n * k, seed), &[n, k]).unwrap(),
            Array::from_slice(&f32s(k * m, seed + 1), &[k, m]).unwrap(),
        ]
    };
    // The same program replayed from a graph gives the bits the same kernels give without
    // one, call after call, with fresh inputs each time.
    let graphed = ingot::compile_with(graph_step, graph_options(true));
    let plain = ingot::compile_with(graph_step, graph_options(false));
    for call in 0..6u64 {
        let xs = inputs(10 * call + 1);
        let got = graphed.call(&xs).unwrap();
        let want = plain.call(&xs).unwrap();
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            assert_eq!(a.shape(), b.shape(), "call {call} output {i}");
            assert!(bytes_of(a) == bytes_of(b), "call {call} output {i} differs");
        }
        assert!(
            bytes_of(&got[3]) == bytes_of(&xs[1]),
            "the input passed through"
        );
    }
    let s = graphed.graph_stats();
    assert_eq!(graphed.graph_failures(), Vec::<String>::new());
    assert_eq!((s.captures, s.replays, s.uncaptured), (1, 5, 0), "{s:?}");
    assert!(s.bytes > 0);
    // And agree with the CPU.
    let xs = inputs(99);
    let g = graphed.call(&xs).unwrap();
    let c = ingot::with_device(Device::Cpu, || graph_step(&xs).unwrap());
    let err = max_rel_err(
        &g[0].to_vec::<f32>().unwrap(),
        &c[0].to_vec::<f32>().unwrap(),
    );
    assert!(err < 1e-3, "graph replay differs from the CPU by {err}");

    // Outputs still held are never overwritten: a second instance, then uncaptured calls.
    let held_fn = ingot::compile_with(graph_step, graph_options(true));
    let mut kept = Vec::new();
    for call in 0..5u64 {
        let xs = inputs(200 + call);
        kept.push((held_fn.call(&xs).unwrap(), plain.call(&xs).unwrap()));
    }
    for (call, (got, want)) in kept.iter().enumerate() {
        for (a, b) in got.iter().zip(want) {
            assert!(
                bytes_of(a) == bytes_of(b),
                "held call {call} was overwritten"
            );
        }
    }
    let s = held_fn.graph_stats();
    assert_eq!((s.captures, s.uncaptured), (2, 2), "{s:?}");
    drop(kept);

    // A loop that feeds each call's outputs to the next replays every call after the
    // first (two instances take turns), and matches the loop without graphs.
    let step = |xs: &[Array]| -> ingot::Result<Vec<Array>> {
        let g = ingot::tanh(&ingot::matmul(&xs[0], &xs[1])?)?;
        let p = ingot::subtract(&xs[0], ingot::multiply(&g, 0.1)?)?;
        Ok(vec![p, ingot::sum(&g, None, false)?])
    };
    let looped = ingot::compile_with(step, graph_options(true));
    let looped_plain = ingot::compile_with(step, graph_options(false));
    let w = Array::from_slice(&f32s(k * k, 7), &[k, k]).unwrap();
    let (mut p, mut q) = (inputs(300).remove(0), inputs(300).remove(0));
    for it in 0..10 {
        let a = looped.call(&[p, w.clone()]).unwrap();
        let b = looped_plain.call(&[q, w.clone()]).unwrap();
        assert!(bytes_of(&a[1]) == bytes_of(&b[1]), "loop step {it}");
        p = a[0].clone();
        q = b[0].clone();
    }
    assert!(bytes_of(&p) == bytes_of(&q));
    let s = looped.graph_stats();
    assert_eq!((s.replays, s.uncaptured), (9, 0), "{s:?}");

    // Indices computed on the GPU are bounds-checked by the graph itself: the gather is
    // recorded and replayed, with the CPU's results.
    let gather = |xs: &[Array]| -> ingot::Result<Vec<Array>> {
        let idx = ingot::argmax(&xs[0], Some(1), false)?;
        Ok(vec![ingot::take(&xs[1], &idx, Some(0))?])
    };
    let gathered = ingot::compile_with(gather, graph_options(true));
    for call in 0..3u64 {
        let xs = inputs(400 + call);
        let xs = [xs[0].clone(), ingot::transpose(&xs[0], None).unwrap()];
        let got = gathered.call(&xs).unwrap();
        let want = ingot::with_device(Device::Cpu, || gather(&xs).unwrap());
        assert!(
            bytes_of(&got[0]) == bytes_of(&want[0]),
            "gather call {call}"
        );
    }
    assert_eq!(gathered.graph_failures(), Vec::<String>::new());
    assert_eq!(gathered.graph_stats().replays, 2);

    // A bad index met by a replay is the error of the next read of the GPU, once; the
    // replay read position 0 instead (no fault), and later replays are right again.
    let lookup = |xs: &[Array]| -> ingot::Result<Vec<Array>> {
        Ok(vec![ingot::take(&xs[0], &xs[1], Some(0))?])
    };
    let looked = ingot::compile_with(lookup, graph_options(true));
    let table = inputs(600).remove(0);
    // Host ids: the graph's copy of an input lives on the GPU only.
    let ids = |v: [i32; 3]| Array::from_slice(&v, &[3]).unwrap();
    let want = |v: [i32; 3]| {
        ingot::with_device(Device::Cpu, || {
            lookup(&[table.clone(), Array::from_slice(&v, &[3]).unwrap()]).unwrap()
        })
    };
    for (call, v) in [[1, 5, 47], [0, -1, 3], [46, 2, 2]].into_iter().enumerate() {
        let got = looked.call(&[table.clone(), ids(v)]).unwrap();
        assert!(
            bytes_of(&got[0]) == bytes_of(&want(v)[0]),
            "lookup call {call}"
        );
    }
    let bad = looked.call(&[table.clone(), ids([2, 48, 1])]).unwrap();
    let e = bad[0].to_vec::<f32>().unwrap_err().to_string();
    assert!(
        e.contains("take") && e.contains("position 1") && e.contains("out of bounds"),
        "{e}"
    );
    assert!(bad[0].to_vec::<f32>().is_ok(), "reported once");
    drop(bad);
    let got = looked.call(&[table.clone(), ids([3, 4, 5])]).unwrap();
    assert!(bytes_of(&got[0]) == bytes_of(&want([3, 4, 5])[0]));
    let s = looked.graph_stats();
    assert_eq!((s.captures, s.uncaptured), (1, 0), "{s:?}");
    // Run without a graph, the same bad index is the error of the call itself.
    let e = ingot::take(&table, &ids([2, 48, 1]), Some(0))
        .and_then(|y| y.to_vec::<f32>())
        .unwrap_err()
        .to_string();
    assert!(e.contains("out of bounds"), "{e}");

    // Under a transform the compiled function stays lazy, so gradients flow through it.
    let sq = ingot::compile_with(
        |xs: &[Array]| Ok(vec![ingot::sum(&ingot::square(&xs[0])?, None, false)?]),
        graph_options(true),
    );
    let x = inputs(500).remove(0);
    let gx = ingot::grad(|xs: &[Array]| Ok(sq.call(xs)?.remove(0)), &[0])(std::slice::from_ref(&x))
        .unwrap();
    let two_x = ingot::multiply(&x, 2.0).unwrap();
    assert!(
        max_rel_err(
            &gx[0].to_vec::<f32>().unwrap(),
            &two_x.to_vec::<f32>().unwrap()
        ) < 1e-6
    );
}
