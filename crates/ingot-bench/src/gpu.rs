//! GPU benchmarks: each row times ingot on a CUDA GPU beside PyTorch on the same GPU in the
//! same run (scripts/gpu/torch_bench.py, started from here; the matmul rows in turns with
//! scripts/gpu/torch_matmul.py, whose clock varies most), with the physical limit: the
//! copy bandwidth measured here, or the tensor-core peak. Prints a table and, with
//! --json FILE, the same figures as JSON.
//!
//! usage: ingot-gpu-bench [--quick] [--json FILE] [--python python3] [--only WORD]

mod cli;

use ingot::{Array, DType, Device};
use std::time::Instant;

/// Median of 5 batches of `reps` runs after a warm-up, each batch ended by a synchronize,
/// per run. The host clock with a synchronize times the same span as CUDA events around
/// the batch, plus one synchronize's latency spread over the batch.
fn time_gpu(reps: usize, f: impl FnMut() -> Array) -> f64 {
    time_batches(reps, 1, 2, f)
}

/// Like `time_gpu`, but each call's result is dropped before the next call, so a compiled
/// function's CUDA graph (whose outputs a replay overwrites) can replay every call; three
/// warm-up calls (the first runs as usual, the second records the graph).
fn time_calls(reps: usize, f: impl FnMut() -> Array) -> f64 {
    time_batches(reps, 3, 0, f)
}

/// The timing loop of both: `warm` calls first, then 5 batches keeping the last `keep`
/// results alive (dropping results as we go, as PyTorch does, so memory is reused).
fn time_batches(reps: usize, warm: usize, keep: usize, mut f: impl FnMut() -> Array) -> f64 {
    let dev = Device::Cuda(0);
    for _ in 0..warm {
        f().eval().unwrap();
    }
    ingot::synchronize(dev).unwrap();
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let mut kept = std::collections::VecDeque::with_capacity(keep + 1);
        for _ in 0..reps {
            let y = f();
            ingot::async_eval(std::slice::from_ref(&y)).unwrap();
            kept.push_back(y);
            if kept.len() > keep {
                kept.pop_front();
            }
        }
        ingot::synchronize(dev).unwrap();
        times.push(t.elapsed().as_secs_f64() / reps as f64);
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    times[2]
}

fn rand(shape: &[usize], dtype: DType, seed: u64) -> Array {
    sampled(dtype, seed, |key| {
        ingot::random::uniform(key, shape, -1.0, 1.0, DType::F32)
    })
}

/// Standard normal samples, as torch.randn: the matmul rows draw their operands from the same
/// distribution as PyTorch's side, since a large product's power draw, and so the clock a
/// power-limited GPU holds, depends on the values multiplied.
fn randn(shape: &[usize], dtype: DType, seed: u64) -> Array {
    sampled(dtype, seed, |key| {
        ingot::random::normal(key, shape, 0.0, 1.0, DType::F32)
    })
}

/// f32 samples drawn by `draw` from `seed`'s key, as `dtype`, evaluated.
fn sampled(dtype: DType, seed: u64, draw: impl FnOnce(&Array) -> ingot::Result<Array>) -> Array {
    let x = draw(&ingot::random::key(seed)).unwrap();
    let x = ingot::astype(&x, dtype).unwrap();
    x.eval().unwrap();
    x
}

/// ResNet-50's convolutions as (input size, C_in, C_out, kernel, stride, padding): the
/// stem, then each bottleneck's 1x1, 3x3 (strided in a stage's first block) and 1x1, and
/// the strided 1x1 projection of each stage's first block (torchvision's v1.5).
fn resnet50_convs() -> Vec<(usize, usize, usize, usize, usize, usize)> {
    let mut v = vec![(224, 3, 64, 7, 2, 3)];
    let (mut h, mut cin) = (56, 64);
    for (i, (w, blocks)) in [(64, 3), (128, 4), (256, 6), (512, 3)]
        .into_iter()
        .enumerate()
    {
        for b in 0..blocks {
            let s = if b == 0 && i > 0 { 2 } else { 1 };
            let ho = h / s;
            v.push((h, cin, w, 1, 1, 0));
            v.push((h, w, w, 3, s, 1));
            v.push((ho, w, 4 * w, 1, 1, 0));
            if b == 0 {
                v.push((h, cin, 4 * w, 1, s, 0));
            }
            h = ho;
            cin = 4 * w;
        }
    }
    v
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// PyTorch's matmul rows timed in turn with ingot's (scripts/gpu/torch_matmul.py, a process
/// that waits between requests), so both sides meet the same GPU clock; None where PyTorch
/// is not there.
struct TorchTurns {
    child: std::process::Child,
    out: std::io::BufReader<std::process::ChildStdout>,
}

impl TorchTurns {
    fn start(python: &str) -> Option<Self> {
        use std::io::BufRead;
        use std::process::{Command, Stdio};
        let mut child = Command::new(python)
            .arg("scripts/gpu/torch_matmul.py")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let mut out = std::io::BufReader::new(child.stdout.take()?);
        let mut line = String::new();
        out.read_line(&mut line).ok()?;
        if line.trim() != "ready" {
            let _ = child.kill();
            return None;
        }
        Some(Self { child, out })
    }

    fn time(&mut self, tag: &str, n: usize) -> Option<f64> {
        use std::io::{BufRead, Write};
        let stdin = self.child.stdin.as_mut()?;
        writeln!(stdin, "{tag} {n}").ok()?;
        stdin.flush().ok()?;
        let mut line = String::new();
        self.out.read_line(&mut line).ok()?;
        line.trim().parse().ok()
    }
}

impl Drop for TorchTurns {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

struct Row {
    name: String,
    ingot: f64,
    torch: Option<f64>,
    work: f64,
    unit: &'static str,
    limit: f64,
    goal: String,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let json_out = cli::value(&args, "--json");
    let python = cli::value(&args, "--python").unwrap_or_else(|| "python3".into());
    // --only WORD: just the rows whose section name holds WORD (copy always runs: the
    // bandwidth limit comes from it), for a diagnostic run of one case.
    let only = cli::value(&args, "--only");
    let want = |section: &str| only.as_deref().is_none_or(|w| section.contains(w));
    if !ingot::cuda::is_available() {
        eprintln!("ingot-gpu-bench: no CUDA GPU here");
        std::process::exit(2);
    }
    ingot::set_default_device(Device::Cuda(0));

    // PyTorch first, so the two never share the GPU.
    let torch: serde_json::Value = std::process::Command::new(&python)
        .arg("scripts/gpu/torch_bench.py")
        .args(if quick { vec!["--quick"] } else { vec![] })
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| serde_json::from_slice(&o.stdout).ok())
        .unwrap_or_else(|| {
            eprintln!("ingot-gpu-bench: PyTorch comparison unavailable");
            serde_json::json!({})
        });
    let peer = |k: &str| torch.get(k).and_then(|v| v.as_f64());

    let mut rows = Vec::new();
    let big: usize = if quick { 1 << 24 } else { 1 << 28 };
    let x = rand(&[big], DType::F32, 1);
    let y = rand(&[big], DType::F32, 2);
    let bytes1 = (big * 4 * 2) as f64; // one read, one write
    let bytes2 = (big * 4 * 3) as f64;
    let copy = time_gpu(20, || ingot::copy(&x).unwrap());
    let bw = bytes1 / copy;
    rows.push(Row {
        name: format!("copy {big} f32"),
        ingot: copy,
        torch: peer("copy"),
        work: bytes1,
        unit: "B",
        limit: bw,
        goal: "the limit".into(),
    });
    if want("exp add") {
        let exp = time_gpu(20, || ingot::exp(&x).unwrap());
        rows.push(Row {
            name: format!("exp {big} f32"),
            ingot: exp,
            torch: peer("exp"),
            work: bytes1,
            unit: "B",
            limit: bw,
            goal: "90% of copy bandwidth".into(),
        });
        let add = time_gpu(20, || ingot::add(&x, &y).unwrap());
        rows.push(Row {
            name: format!("add {big} f32"),
            ingot: add,
            torch: peer("add"),
            work: bytes2,
            unit: "B",
            limit: bw,
            goal: "90% of copy bandwidth".into(),
        });
    }
    let m = rand(&[4096, 4096], DType::F32, 3);
    let mb = (4096 * 4096 * 4) as f64;
    for (name, key, axes) in if want("sum") {
        vec![
            (
                "sum over last axis 4096x4096 f32",
                "sum_last",
                Some(&[1isize][..]),
            ),
            (
                "sum over first axis 4096x4096 f32",
                "sum_first",
                Some(&[0isize][..]),
            ),
            ("sum of all 4096x4096 f32", "sum_all", None),
        ]
    } else {
        vec![]
    } {
        let t = time_gpu(20, || ingot::sum(&m, axes, false).unwrap());
        rows.push(Row {
            name: name.into(),
            ingot: t,
            torch: peer(key),
            work: mb,
            unit: "B",
            limit: bw,
            goal: "0.9x PyTorch".into(),
        });
    }
    if want("gelu") {
        // 0.5 x (1 + tanh(0.798 (x + 0.0447 x^3))), one op at a time.
        let gelu = |v: &Array| -> Array {
            let mul = |a: &Array, b: &Array| ingot::multiply(a, b).unwrap();
            let cube = mul(&mul(v, v), v);
            let inner = ingot::add(v, ingot::multiply(&cube, 0.044715).unwrap()).unwrap();
            let t = ingot::tanh(&ingot::multiply(&inner, 0.7978845608).unwrap()).unwrap();
            let half = ingot::multiply(v, 0.5).unwrap();
            ingot::multiply(half, ingot::add(&t, 1.0).unwrap()).unwrap()
        };
        let g = time_gpu(5, || gelu(&x));
        rows.push(Row {
            name: format!("gelu chain {big} f32, uncompiled"),
            ingot: g,
            torch: peer("gelu_uncompiled"),
            work: bytes1,
            unit: "B",
            limit: bw,
            goal: "(compiled: torch.compile)".into(),
        });
        // The same chain compiled: compile fuses it into one kernel.
        let gelu_fn = |xs: &[Array]| -> ingot::Result<Vec<Array>> { Ok(vec![gelu(&xs[0])]) };
        let compiled = ingot::compile(gelu_fn);
        let gc = time_gpu(5, || {
            compiled.call(std::slice::from_ref(&x)).unwrap().remove(0)
        });
        rows.push(Row {
            name: format!("gelu chain {big} f32, compiled"),
            ingot: gc,
            torch: peer("gelu_compiled"),
            work: bytes1,
            unit: "B",
            limit: bw,
            goal: "1x torch.compile".into(),
        });
    }
    if want("softmax") {
        let t = time_gpu(20, || ingot::softmax(&m, -1).unwrap());
        rows.push(Row {
            name: "softmax over last axis 4096x4096 f32".into(),
            ingot: t,
            torch: peer("softmax"),
            work: 2.0 * mb,
            unit: "B",
            limit: bw,
            goal: "0.9x PyTorch".into(),
        });
    }
    let v = rand(&[1 << 24], DType::F32, 6);
    if want("cumsum") {
        let t = time_gpu(20, || ingot::cumsum(&v, Some(0), false, true).unwrap());
        rows.push(Row {
            name: "cumsum of 16M f32".into(),
            ingot: t,
            torch: peer("cumsum"),
            work: 2.0 * mb,
            unit: "B",
            limit: bw,
            goal: "0.9x PyTorch".into(),
        });
    }
    // A 2^24-point complex FFT (one batch); memory traffic counted as one read and one
    // write of the array, as a bandwidth-bound transform of this size is.
    let z = ingot::astype(&rand(&[1 << 24], DType::F32, 7), DType::C64).unwrap();
    z.eval().unwrap();
    if want("fft") {
        let t = time_gpu(20, || {
            ingot::fft::fft(&z, None, -1, ingot::fft::FftNorm::Backward).unwrap()
        });
        rows.push(Row {
            name: "fft of 2^24 c64".into(),
            ingot: t,
            torch: peer("fft_c64_2p24"),
            work: 2.0 * 8.0 * (1u64 << 24) as f64,
            unit: "B",
            limit: bw,
            goal: "0.9x PyTorch".into(),
        });
    }
    // sort and argsort of 16M f32.
    let sv = rand(&[1 << 24], DType::F32, 8);
    for (name, key, f) in if want("sort") {
        vec![
            (
                "sort 16M f32",
                "sort_16m",
                ingot::sort as fn(&Array, Option<isize>) -> ingot::Result<Array>,
            ),
            ("argsort 16M f32", "argsort_16m", ingot::argsort),
        ]
    } else {
        vec![]
    } {
        let t = time_gpu(10, || f(&sv, Some(0)).unwrap());
        rows.push(Row {
            name: name.into(),
            ingot: t,
            torch: peer(key),
            work: 2.0 * 4.0 * (1u64 << 24) as f64,
            unit: "B",
            limit: bw,
            goal: "0.9x PyTorch".into(),
        });
    }
    drop((x, y, m, v, z, sv));
    if want("resnet conv") {
        // ResNet-50's 53 convolutions (stem on 224x224x3, then the four stages from 56x56x64),
        // bf16, channels last, batch 64, forward, each on its own input; images/s.
        let batch = if quick { 8 } else { 64 };
        let convs = resnet50_convs();
        let stack: Vec<(Array, Array, usize, usize)> = convs
            .iter()
            .enumerate()
            .map(|(i, &(h, cin, cout, k, s, p))| {
                let x = rand(&[batch, h, h, cin], DType::BF16, 100 + i as u64);
                let w = rand(&[cout, k, k, cin], DType::BF16, 200 + i as u64);
                (x, w, s, p)
            })
            .collect();
        let flops: f64 = convs
            .iter()
            .map(|&(h, cin, cout, k, s, p)| {
                let ho = (h + 2 * p - k) / s + 1;
                2.0 * (batch * ho * ho * cout * cin * k * k) as f64
            })
            .sum();
        let mut outs = Vec::new();
        let t = time_gpu(5, || {
            outs.clear();
            for (x, w, s, p) in &stack {
                let y = ingot::conv2d(x, w, &[*s, *s], *p, &[1, 1], 1).unwrap();
                ingot::async_eval(std::slice::from_ref(&y)).unwrap();
                outs.push(y);
            }
            outs.pop().unwrap()
        });
        rows.push(Row {
            name: format!("resnet-50 convs bf16 batch {batch} (img/s)"),
            ingot: t,
            torch: peer("resnet50_convs"),
            work: flops,
            unit: "FLOP",
            limit: 989e12,
            goal: "0.8x PyTorch".into(),
        });
        println!(
            "resnet-50 convs: ingot {:.0} images/s{}",
            batch as f64 / t,
            peer("resnet50_convs")
                .map(|p| format!(", PyTorch {:.0} images/s", batch as f64 / p))
                .unwrap_or_default()
        );
        drop((stack, outs));
    }
    let mut turns = if want("matmul") {
        TorchTurns::start(&python)
    } else {
        None
    };
    for n in if !want("matmul") {
        vec![]
    } else if quick {
        vec![4096]
    } else {
        vec![4096, 8192]
    } {
        for (dt, tag) in [(DType::BF16, "bf16"), (DType::F16, "f16")] {
            let a = randn(&[n, n], dt, 4);
            let b = randn(&[n, n], dt, 5);
            // Three turns each, PyTorch then ingot, medians of each side.
            let (mut ti, mut tt) = (Vec::new(), Vec::new());
            for _ in 0..3 {
                if let Some(t) = turns.as_mut().and_then(|s| s.time(tag, n)) {
                    tt.push(t);
                }
                ti.push(time_gpu(10, || ingot::matmul(&a, &b).unwrap()));
            }
            let torch_t = if tt.len() == 3 {
                Some(median(tt))
            } else {
                peer(&format!("matmul_{tag}_{n}"))
            };
            rows.push(Row {
                name: format!("matmul {tag} {n}"),
                ingot: median(ti),
                torch: torch_t,
                work: 2.0 * (n as f64).powi(3),
                unit: "FLOP",
                limit: 989e12,
                goal: "0.97x PyTorch".into(),
            });
        }
    }
    drop(turns);
    if want("attention prefill") {
        // Prefill: causal, bf16, 32 heads of 128, 4,096 tokens, batch 2. FLOPs count the
        // two products over the causal half (FlashAttention's convention, as PyTorch's row).
        let (b, h, n, d) = (2, 32, 4096, 128);
        let q = rand(&[b, h, n, d], DType::BF16, 7);
        let k = rand(&[b, h, n, d], DType::BF16, 8);
        let v = rand(&[b, h, n, d], DType::BF16, 9);
        let mask = || Some(ingot::fast::SdpaMask::Causal);
        let t = time_gpu(5, || {
            ingot::fast::scaled_dot_product_attention(&q, &k, &v, mask(), None).unwrap()
        });
        rows.push(Row {
            name: format!("attention prefill bf16 causal {b}x{h}x{n}x{d}"),
            ingot: t,
            torch: peer("attention_prefill"),
            work: 2.0 * (b * h * n * n * d) as f64,
            unit: "FLOP",
            limit: 989e12,
            goal: "400 TFLOP/s".into(),
        });
        drop((q, k, v));
    }
    if want("linear") {
        // A GPT-2 MLP projection: 8 x 1024 tokens, 768 -> 3072, the weight stored (out, in)
        // as a layer's; the bias (and the tanh GELU) in cuBLASLt's epilogue.
        let (m, k, n) = (8192, 768, 3072);
        let x = rand(&[m, k], DType::BF16, 10);
        let w = ingot::transpose(&rand(&[n, k], DType::BF16, 11), None).unwrap();
        let b = rand(&[n], DType::BF16, 12);
        use ingot::fast::LinearAct;
        for (act, label, key) in [
            (LinearAct::None, "bias", "linear_bias"),
            (LinearAct::GeluTanh, "bias + tanh gelu", "linear_bias_gelu"),
        ] {
            let t = time_gpu(20, || ingot::fast::linear(&x, &w, Some(&b), act).unwrap());
            rows.push(Row {
                name: format!("linear + {label} bf16 {m}x{k}x{n}"),
                ingot: t,
                torch: peer(key),
                work: 2.0 * (m * k * n) as f64,
                unit: "FLOP",
                limit: 989e12,
                goal: "1x PyTorch".into(),
            });
        }
    }
    if want("attention decode") {
        let (h, d) = (32, 128);
        // Decoding: one query over 8,192 cached tokens, 32 heads of 128; the bytes are the
        // cache's keys and values read once.
        let s = 8192;
        let q = rand(&[1, h, 1, d], DType::BF16, 10);
        let k = rand(&[1, h, s, d], DType::BF16, 11);
        let v = rand(&[1, h, s, d], DType::BF16, 12);
        let t = time_gpu(20, || {
            ingot::fast::scaled_dot_product_attention(&q, &k, &v, None, None).unwrap()
        });
        rows.push(Row {
            name: format!("attention decode bf16 1 query, {s} keys, {h}x{d}"),
            ingot: t,
            torch: peer("attention_decode"),
            work: (2 * h * s * d * 2) as f64,
            unit: "B",
            limit: bw,
            goal: "2.4 TB/s".into(),
        });
    }
    if want("tiny op") {
        // Building and enqueueing one tiny op, host time, no synchronize.
        let mut s = ingot::ones(&[4], DType::F32).unwrap();
        for _ in 0..100 {
            s = ingot::add(&s, 1.0).unwrap();
            s.eval().unwrap();
        }
        ingot::synchronize(Device::Cuda(0)).unwrap();
        // Timed through the final synchronize: every launch made, not only queued for the
        // launch thread (the calling thread's own time is the row below).
        let t = Instant::now();
        for _ in 0..10000 {
            s = ingot::add(&s, 1.0).unwrap();
            ingot::async_eval(std::slice::from_ref(&s)).unwrap();
        }
        let caller = t.elapsed().as_secs_f64() / 10000.0;
        ingot::synchronize(Device::Cuda(0)).unwrap();
        let tiny = t.elapsed().as_secs_f64() / 10000.0;
        assert_eq!(s.to_vec::<f32>().unwrap()[0], 10101.0);
        rows.push(Row {
            name: "one tiny op, build + enqueue".into(),
            ingot: tiny,
            torch: peer("tiny_op"),
            work: 0.0,
            unit: "",
            limit: 0.0,
            goal: "at most 5 us".into(),
        });
        // Where the tiny op's time goes: building the node alone, and the driver's own cost of
        // launching an empty kernel (the floor any framework pays per op).
        let t = Instant::now();
        let mut keep = Vec::with_capacity(10000);
        for _ in 0..10000 {
            keep.push(ingot::add(&s, 1.0).unwrap());
        }
        let build = t.elapsed().as_secs_f64() / 10000.0;
        drop(keep);
        // Evaluating nodes built beforehand, one by one: the graph and the backend. In
        // batches of 100, so their outputs' memory comes back to the cache between batches
        // (10,000 live outputs would each be a fresh driver allocation).
        let mut evals = 0.0;
        for _ in 0..100 {
            let batch: Vec<_> = (0..100).map(|_| ingot::add(&s, 1.0).unwrap()).collect();
            let t = Instant::now();
            for k in &batch {
                ingot::async_eval(std::slice::from_ref(k)).unwrap();
            }
            evals += t.elapsed().as_secs_f64() / 10000.0;
        }
        ingot::synchronize(Device::Cuda(0)).unwrap();
        let sub = |name: &str, secs: f64| Row {
            name: format!("  {name}"),
            ingot: secs,
            torch: None,
            work: 0.0,
            unit: "",
            limit: 0.0,
            goal: String::new(),
        };
        rows.push(sub("the calling thread's time", caller));
        rows.push(sub("of which: building the node", build));
        rows.push(sub("evaluating a built node", evals));
        for (name, secs) in ingot::backend::cuda::host_costs(0, 10000).unwrap() {
            rows.push(sub(&format!("  in it: {name}"), secs));
        }
        let floor = ingot::backend::cuda::empty_launch_time(0, 10000).unwrap();
        rows.push(sub("floor: empty kernel launch (driver)", floor));
    }

    if want("small step") {
        // A compiled step of ~100 small kernels (32 layers of a 64x256 matmul, a row mean
        // and a fused subtract-tanh), weights closed over as constants: host-bound, so it
        // shows what replaying a CUDA graph saves. Each call's output is dropped before the
        // next, as PyTorch's graph overwrites its static output.
        let layers = 32;
        let ws: Vec<Array> = (0..layers)
            .map(|k| ingot::multiply(rand(&[256, 256], DType::F32, 100 + k), 0.1).unwrap())
            .collect();
        ingot::eval(&ws).unwrap();
        let h0 = rand(&[64, 256], DType::F32, 99);
        let step = move |xs: &[Array]| -> ingot::Result<Vec<Array>> {
            let mut h = xs[0].clone();
            for w in &ws {
                h = ingot::matmul(&h, w)?;
                h = ingot::subtract(&h, ingot::mean(&h, Some(&[1]), true)?)?;
                h = ingot::tanh(&h)?;
            }
            Ok(vec![h])
        };
        let options = |on: bool| ingot::transforms::CompileOptions {
            cuda_graph: on,
            ..Default::default()
        };
        let mut results = Vec::new();
        for (on, key, label) in [
            (false, "step_eager", "no graph"),
            (true, "step_graph", "CUDA graph"),
        ] {
            let f = ingot::compile_with(step.clone(), options(on));
            let secs = time_calls(200, || f.call(std::slice::from_ref(&h0)).unwrap().remove(0));
            results.push(
                f.call(std::slice::from_ref(&h0))
                    .unwrap()
                    .remove(0)
                    .to_vec::<f32>()
                    .unwrap(),
            );
            if on {
                let st = f.graph_stats();
                eprintln!("small step graphs: {st:?} {:?}", f.graph_failures());
            }
            rows.push(Row {
                name: format!("{layers}-layer small step, compiled, {label}"),
                ingot: secs,
                torch: peer(key),
                work: 0.0,
                unit: "",
                limit: 0.0,
                goal: if on {
                    "at most PyTorch's CUDA graph".into()
                } else {
                    String::new()
                },
            });
        }
        assert!(
            results[0] == results[1],
            "the graph's result differs from the plain call's"
        );
    }

    println!(
        "{:<40} {:>12} {:>12} {:>9} {:>16} {:>9}  goal",
        "benchmark", "ingot", "PyTorch", "vs torch", "ingot rate", "of limit"
    );
    let mut json = Vec::new();
    for r in &rows {
        let rate = if r.work > 0.0 { r.work / r.ingot } else { 0.0 };
        let (rate_s, lim_s) = match r.unit {
            "B" => (
                format!("{:.0} GB/s", rate / 1e9),
                format!("{:.0}%", 100.0 * rate / r.limit),
            ),
            "FLOP" => (
                format!("{:.0} TFLOP/s", rate / 1e12),
                format!("{:.0}%", 100.0 * rate / r.limit),
            ),
            _ => (String::new(), String::new()),
        };
        let vs = r
            .torch
            .map(|p| format!("{:.2}x", p / r.ingot))
            .unwrap_or_else(|| "-".into());
        let fmt_t = |s: f64| {
            if s < 1e-3 {
                format!("{:.2} us", s * 1e6)
            } else {
                format!("{:.3} ms", s * 1e3)
            }
        };
        println!(
            "{:<40} {:>12} {:>12} {:>9} {:>16} {:>9}  {}",
            r.name,
            fmt_t(r.ingot),
            r.torch.map(fmt_t).unwrap_or_else(|| "-".into()),
            vs,
            rate_s,
            lim_s,
            r.goal
        );
        json.push(serde_json::json!({
            "name": r.name, "ingot_s": r.ingot, "torch_s": r.torch, "work": r.work,
            "unit": r.unit, "limit": r.limit, "goal": r.goal,
        }));
    }
    let fb = ingot::cuda::fallbacks();
    if !fb.is_empty() {
        println!("ops that ran on the CPU for want of a GPU kernel: {fb:?}");
    }
    let doc =
        serde_json::json!({ "device": "cuda:0", "rows": json, "fallbacks": format!("{fb:?}") });
    println!("{doc}");
    if let Some(p) = json_out {
        std::fs::write(p, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    }
}
