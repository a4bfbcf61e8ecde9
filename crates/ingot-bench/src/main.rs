//! CPU benchmarks: each row times ingot and its peer (NumPy, run by python3 in the same
//! process tree, same machine, same moment) and shows the physical limit that bounds the
//! operation (memory bandwidth measured here, or peak FLOP/s from the CPU's vector width).
//! Prints a table and, with --json FILE, the same figures as JSON.
//!
//! usage: ingot-bench [--quick] [--json FILE] [--python python3]

mod cli;

use ingot::{Array, DType};
use std::time::Instant;

struct Row {
    name: String,
    ingot_s: f64,
    numpy_s: f64,
    /// work per run in the unit of `unit` (FLOP or bytes moved)
    work: f64,
    unit: &'static str,
    limit: f64,
    goal: String,
}

/// Best of `reps` runs after one warm-up: the least disturbed measurement on a shared box.
fn best_of(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut best = f64::INFINITY;
    for _ in 0..reps {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    best
}

fn rand_f32(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// Peak f32 FLOP/s: cores x clock x FMA lanes x 2 FMA units x 2 (multiply and add).
fn peak_flops() -> f64 {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let mhz = info
        .lines()
        .find(|l| l.starts_with("cpu MHz"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(2500.0);
    let lanes = if info.contains("avx512f") {
        16.0
    } else if info.contains("avx2") {
        8.0
    } else {
        4.0
    };
    rayon::current_num_threads() as f64 * mhz * 1e6 * lanes * 2.0 * 2.0
}

/// Memory bandwidth, bytes/s: a parallel copy of 256 MiB (read + write counted).
fn bandwidth() -> f64 {
    use rayon::prelude::*;
    let n = 32 << 20;
    let src = vec![1.0f64; n];
    let mut dst = vec![0.0f64; n];
    let t = best_of(5, || {
        dst.par_chunks_mut(1 << 16)
            .zip(src.par_chunks(1 << 16))
            .for_each(|(d, s)| d.copy_from_slice(s));
    });
    std::hint::black_box(&dst);
    (2 * n * 8) as f64 / t
}

const NUMPY: &str = r#"
import json, sys, time
import numpy as np
quick = sys.argv[1] == "1"
def best(f, reps):
    f()
    b = float("inf")
    for _ in range(reps):
        t = time.perf_counter(); f(); b = min(b, time.perf_counter() - t)
    return b
out = {}
rng = np.random.default_rng(0)
for n in ([256, 512] if quick else [256, 512, 1024, 2048]):
    a = rng.standard_normal((n, n), dtype=np.float32); b = rng.standard_normal((n, n), dtype=np.float32)
    out[f"matmul_f32_{n}"] = best(lambda: a @ b, 3 if n >= 1024 else 10)
N = (1 << 22) if quick else (32 << 20)
x = rng.uniform(-1, 1, N).astype(np.float32)
out["chain"] = best(lambda: np.square(np.maximum(x * np.float32(2) + np.float32(1), np.float32(0))), 5)
out["exp"] = best(lambda: np.exp(x), 5)
out["sum"] = best(lambda: x.sum(), 5)
out["argmax"] = best(lambda: x.argmax(), 5)
out["gelu"] = best(lambda: 0.5 * x * (1 + np.tanh(np.float32(0.7978845608) * (x + np.float32(0.044715) * x * x * x))), 3)
z = (rng.standard_normal(1 << 20) + 1j * rng.standard_normal(1 << 20)).astype(np.complex64)
out["fft"] = best(lambda: np.fft.fft(z), 10)
# Causal attention composed as a NumPy user writes it: (B, H, L, E) = (1, 8, L, 64).
L = 256 if quick else 1024
q, k, v = (rng.standard_normal((1, 8, L, 64), dtype=np.float32) for _ in range(3))
causal = np.tril(np.ones((L, L), bool))
def attn():
    s = (q @ k.transpose(0, 1, 3, 2)) * np.float32(0.125)
    s = np.where(causal, s, np.float32(-np.inf))
    s = np.exp(s - s.max(-1, keepdims=True))
    return (s / s.sum(-1, keepdims=True)) @ v
out["attention"] = best(attn, 3)
g = rng.standard_normal((1, 8, L, 64), dtype=np.float32)
def attn_grad():
    # The backward pass as a NumPy user writes it: weights recomputed, then the products.
    s = (q @ k.transpose(0, 1, 3, 2)) * np.float32(0.125)
    s = np.where(causal, s, np.float32(-np.inf))
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    dv = p.transpose(0, 1, 3, 2) @ g
    dp = g @ v.transpose(0, 1, 3, 2)
    ds = p * (dp - (dp * p).sum(-1, keepdims=True)) * np.float32(0.125)
    return ds @ k, ds.transpose(0, 1, 3, 2) @ q, dv
out["attention_grad"] = best(attn_grad, 3)
s1 = np.ones(1, np.float32); s2 = np.ones(1, np.float32)
k = 20000
t = time.perf_counter()
for _ in range(k): np.add(s1, s2)
out["tiny"] = (time.perf_counter() - t) / k
out["numpy_version"] = np.__version__
print(json.dumps(out))
"#;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let json_path = cli::value(&args, "--json");
    let python = cli::value(&args, "--python").unwrap_or_else(|| "python3".into());

    eprintln!("running NumPy peer...");
    let np_out = std::process::Command::new(&python)
        .args(["-c", NUMPY, if quick { "1" } else { "0" }])
        .output()
        .expect("python3 with numpy is needed for the peer column");
    if !np_out.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&np_out.stderr));
        std::process::exit(1);
    }
    let np: serde_json::Value = serde_json::from_slice(&np_out.stdout).expect("numpy peer output");
    let npv = |k: &str| np[k].as_f64().unwrap_or(f64::NAN);

    eprintln!("measuring machine limits...");
    let peak = peak_flops();
    let bw = bandwidth();
    let mut rows = Vec::new();

    eprintln!("running ingot...");
    for n in if quick {
        vec![256, 512]
    } else {
        vec![256, 512, 1024, 2048]
    } {
        let a = Array::from_vec(rand_f32(n * n, 1), &[n, n]).unwrap();
        let b = Array::from_vec(rand_f32(n * n, 2), &[n, n]).unwrap();
        let t = best_of(if n >= 1024 { 3 } else { 10 }, || {
            ingot::matmul(&a, &b).unwrap().eval().unwrap()
        });
        rows.push(Row {
            name: format!("matmul f32 {n}x{n}"),
            ingot_s: t,
            numpy_s: npv(&format!("matmul_f32_{n}")),
            work: 2.0 * (n as f64).powi(3),
            unit: "GFLOP/s",
            limit: peak,
            goal: ">= 0.9x".into(),
        });
    }
    let big = if quick { 1 << 22 } else { 32 << 20 };
    let x = Array::from_vec(rand_f32(big, 3), &[big]).unwrap();
    let bytes = (big * 4) as f64;
    let t = best_of(5, || {
        let y = ingot::add(ingot::multiply(&x, 2.0).unwrap(), 1.0).unwrap();
        let y = ingot::square(&ingot::maximum(&y, 0.0).unwrap()).unwrap();
        y.eval().unwrap()
    });
    // four passes, each reading one array and writing one
    rows.push(Row {
        name: format!("chain (x*2+1).max(0)^2, {}M f32", big >> 20),
        ingot_s: t,
        numpy_s: npv("chain"),
        work: 8.0 * bytes,
        unit: "GB/s",
        limit: bw,
        goal: ">= 1x".into(),
    });
    let t = best_of(5, || ingot::exp(&x).unwrap().eval().unwrap());
    rows.push(Row {
        name: format!("exp, {}M f32", big >> 20),
        ingot_s: t,
        numpy_s: npv("exp"),
        work: 2.0 * bytes,
        unit: "GB/s",
        limit: bw,
        goal: "-".into(),
    });
    let t = best_of(5, || ingot::sum(&x, None, false).unwrap().eval().unwrap());
    rows.push(Row {
        name: format!("sum, {}M f32", big >> 20),
        ingot_s: t,
        numpy_s: npv("sum"),
        work: bytes,
        unit: "GB/s",
        limit: bw / 2.0,
        goal: ">= 1x".into(),
    });
    let t = best_of(5, || {
        ingot::argmax(&x, None, false).unwrap().eval().unwrap()
    });
    rows.push(Row {
        name: format!("argmax, {}M f32", big >> 20),
        ingot_s: t,
        numpy_s: npv("argmax"),
        work: bytes,
        unit: "GB/s",
        limit: bw / 2.0,
        goal: ">= 1x".into(),
    });

    // Causal attention, (1, 8, L, 64) f32: the fused op and its decomposition (the scores
    // materialized), beside NumPy composing it. FLOPs: the causal half of 4·H·L²·E.
    let l = if quick { 256 } else { 1024 };
    let qkv: Vec<Array> = (0..3)
        .map(|i| Array::from_vec(rand_f32(8 * l * 64, 10 + i), &[1, 8, l, 64]).unwrap())
        .collect();
    let (q, k, v) = (&qkv[0], &qkv[1], &qkv[2]);
    // And its gradient (dq, dk, dv for a random cotangent): the fused AttentionGrad node and
    // the decomposition's vjp. FLOPs: five products (scores again, dP, dV, dQ, dK) over the
    // causal half.
    let g = Array::from_vec(rand_f32(8 * l * 64, 13), &[1, 8, l, 64]).unwrap();
    let causal = || Some(ingot::fast::SdpaMask::Causal);
    for (name, reference) in [("fused", false), ("decomposition", true)] {
        let f = if reference {
            ingot::fast::scaled_dot_product_attention_reference
        } else {
            ingot::fast::scaled_dot_product_attention
        };
        let t = best_of(3, || f(q, k, v, causal(), None).unwrap().eval().unwrap());
        let tg = best_of(3, || {
            let (_, grads) = ingot::vjp(
                |xs: &[Array]| Ok(vec![f(&xs[0], &xs[1], &xs[2], causal(), None)?]),
                &qkv,
                std::slice::from_ref(&g),
            )
            .unwrap();
            ingot::eval(&grads).unwrap();
        });
        for (what, secs, peer, products) in [
            ("", t, "attention", 2.0),
            (" gradient", tg, "attention_grad", 5.0),
        ] {
            rows.push(Row {
                name: format!("causal attention{what} {name}, 8 heads x {l} x 64 f32"),
                ingot_s: secs,
                numpy_s: npv(peer),
                work: products * 8.0 * (l * l * 64) as f64,
                unit: "GFLOP/s",
                limit: peak,
                goal: "-".into(),
            });
        }
    }
    // gelu (tanh form), as a user writes it: nine elementwise ops.
    let gelu = |a: &[Array]| -> ingot::Result<Vec<Array>> {
        let x = &a[0];
        let x3 = ingot::multiply(ingot::multiply(x, x)?, x)?;
        let inner = ingot::multiply(ingot::add(x, ingot::multiply(x3, 0.044715)?)?, 0.797_884_6)?;
        let y = ingot::multiply(
            ingot::multiply(x, 0.5)?,
            ingot::add(ingot::tanh(&inner)?, 1.0)?,
        )?;
        Ok(vec![y])
    };
    // Best of 5: on this shared VM single runs of either swing by 30%.
    let t_plain = best_of(5, || {
        gelu(std::slice::from_ref(&x)).unwrap()[0].eval().unwrap()
    });
    let compiled = ingot::compile(gelu);
    let t_comp = best_of(5, || {
        compiled.call(std::slice::from_ref(&x)).unwrap()[0]
            .eval()
            .unwrap()
    });
    for (name, t) in [("uncompiled", t_plain), ("compiled", t_comp)] {
        rows.push(Row {
            name: format!("gelu chain {name}, {}M f32", big >> 20),
            ingot_s: t,
            numpy_s: npv("gelu"),
            work: 2.0 * bytes,
            unit: "GB/s",
            limit: bw,
            goal: if name == "compiled" {
                ">= 3x uncompiled, >= 1x".into()
            } else {
                "-".into()
            },
        });
    }

    // Tracing and simplifying a 1,000-op program (the first call of a compiled function),
    // without evaluating it.
    let small = Array::from_vec(rand_f32(1024, 6), &[1024]).unwrap();
    let chain = |a: &[Array]| -> ingot::Result<Vec<Array>> {
        let mut y = a[0].clone();
        for i in 0..1000 {
            y = match i % 4 {
                0 => ingot::multiply(&y, 1.0001)?,
                1 => ingot::add(&y, 0.5)?,
                2 => ingot::tanh(&y)?,
                _ => ingot::maximum(&y, &a[0])?,
            };
        }
        Ok(vec![y])
    };
    let t_trace = best_of(5, || {
        let c = ingot::compile(chain);
        c.call(std::slice::from_ref(&small)).unwrap();
    });
    rows.push(Row {
        name: "trace + compile a 1,000-op program".into(),
        ingot_s: t_trace,
        numpy_s: f64::NAN,
        work: 0.0,
        unit: "ms",
        limit: 0.0,
        goal: "<= 50 ms".into(),
    });

    // Exported package vs building the same function from code: an MLP of six 2048x2048
    // f32 layers (100.7 MB of weights). "Build" draws the weights with ingot::random (normal
    // init), traces and compiles the forward pass and computes its first output; "import"
    // opens the package (file in the page cache) and computes the same output.
    {
        let (width, layers, batch) = (2048usize, 6usize, 8usize);
        fn mlp(ws: &[Array], xs: &[Array]) -> ingot::Result<Vec<Array>> {
            let mut h = xs[0].clone();
            for w in ws {
                h = ingot::maximum(&ingot::matmul(&h, w)?, 0.0)?;
            }
            Ok(vec![h])
        }
        let x = Array::from_vec(rand_f32(batch * width, 6), &[batch, width]).unwrap();
        let init = || -> Vec<Array> {
            let keys = ingot::random::split(&ingot::random::key(0), layers).unwrap();
            let ws: Vec<Array> = (0..layers)
                .map(|i| {
                    let k = ingot::random::key_at(&keys, i).unwrap();
                    ingot::random::normal(&k, &[width, width], 0.0, 0.02, DType::F32).unwrap()
                })
                .collect();
            ingot::eval(&ws).unwrap();
            ws
        };
        let build = || {
            let ws = init();
            let c = ingot::compile(move |xs: &[Array]| mlp(&ws, xs));
            c.call(std::slice::from_ref(&x)).unwrap()[0].eval().unwrap();
        };
        let path =
            std::env::temp_dir().join(format!("ingot-bench-mlp-{}.ingot", std::process::id()));
        let ws = init();
        let bytes = ingot::Exporter::new()
            .function("mlp", |xs| mlp(&ws, xs), &[vec![x.clone()]])
            .unwrap()
            .write(&path)
            .unwrap();
        drop(ws);
        let import = || {
            let pkg = ingot::import(&path).unwrap();
            pkg.call("mlp", std::slice::from_ref(&x)).unwrap()[0]
                .eval()
                .unwrap();
        };
        let reps = if quick { 2 } else { 3 };
        let t_build = best_of(reps, build);
        let t_import = best_of(reps, import);
        let _ = std::fs::remove_file(&path);
        rows.push(Row {
            name: format!(
                "import {:.0} MB MLP package (peer column: build it from code)",
                bytes as f64 / 1e6
            ),
            ingot_s: t_import,
            numpy_s: t_build,
            work: 0.0,
            unit: "ms",
            limit: 0.0,
            goal: ">= 10x (build / import)".into(),
        });
    }

    let nf = 1 << 20;
    let re = rand_f32(nf, 4);
    let im = rand_f32(nf, 5);
    let zc: Vec<ingot::c64> = re
        .iter()
        .zip(&im)
        .map(|(&r, &i)| ingot::c64::new(r, i))
        .collect();
    let z = Array::from_vec(zc, &[nf]).unwrap();
    let t = best_of(10, || {
        ingot::fft(&z, None, -1, ingot::FftNorm::Backward)
            .unwrap()
            .eval()
            .unwrap()
    });
    // 5 n log2 n: the conventional FLOP count of a complex FFT
    rows.push(Row {
        name: "fft 2^20 complex64".into(),
        ingot_s: t,
        numpy_s: npv("fft"),
        work: 5.0 * nf as f64 * 20.0,
        unit: "GFLOP/s",
        limit: peak,
        goal: ">= 1x".into(),
    });

    let s1 = Array::from_slice(&[1.0f32], &[1]).unwrap();
    let s2 = Array::from_slice(&[1.0f32], &[1]).unwrap();
    let k = 20000;
    let t0 = Instant::now();
    for _ in 0..k {
        ingot::add(&s1, &s2).unwrap().eval().unwrap();
    }
    let tiny = t0.elapsed().as_secs_f64() / k as f64;
    rows.push(Row {
        name: "tiny op: build + eval add of 1 element".into(),
        ingot_s: tiny,
        numpy_s: npv("tiny"),
        work: 0.0,
        unit: "us",
        limit: 0.0,
        goal: "<= 3 us".into(),
    });

    println!("machine: {} threads, peak f32 {:.0} GFLOP/s (from CPU flags and clock), copy bandwidth {:.1} GB/s (measured), NumPy {}",
        rayon::current_num_threads(), peak / 1e9, bw / 1e9, np["numpy_version"].as_str().unwrap_or("?"));
    println!("| benchmark | ingot | NumPy | ingot / NumPy speed | ingot rate | limit | goal |");
    println!("|---|---|---|---|---|---|---|");
    let mut json_rows = Vec::new();
    for r in &rows {
        let speedup = r.numpy_s / r.ingot_s;
        let (rate, lim) = if r.unit == "us" {
            (format!("{:.2} us", r.ingot_s * 1e6), "-".to_string())
        } else if r.unit == "ms" {
            (format!("{:.2} ms", r.ingot_s * 1e3), "-".to_string())
        } else {
            (
                format!("{:.1} {}", r.work / r.ingot_s / 1e9, r.unit),
                format!("{:.0} {}", r.limit / 1e9, r.unit),
            )
        };
        let (peer, ratio) = if r.numpy_s.is_nan() {
            ("-".to_string(), "-".to_string())
        } else {
            (
                format!("{:.3} ms", r.numpy_s * 1e3),
                format!("{speedup:.2}x"),
            )
        };
        println!(
            "| {} | {:.3} ms | {} | {} | {} | {} | {} |",
            r.name,
            r.ingot_s * 1e3,
            peer,
            ratio,
            rate,
            lim,
            r.goal
        );
        json_rows.push(serde_json::json!({"name": r.name, "ingot_s": r.ingot_s, "numpy_s": r.numpy_s,
            "speedup_vs_numpy": speedup, "work": r.work, "unit": r.unit, "limit": r.limit, "goal": r.goal}));
    }
    let doc = serde_json::json!({"threads": rayon::current_num_threads(), "peak_flops": peak, "bandwidth": bw,
        "numpy": np["numpy_version"], "rows": json_rows});
    println!("{}", serde_json::to_string(&doc).unwrap());
    if let Some(p) = json_path {
        std::fs::write(p, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    }
    let _ = DType::F32;
}
