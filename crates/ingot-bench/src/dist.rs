//! All-reduce bandwidth across the ranks of `ingot launch`: ingot's `all_sum` (NCCL between
//! GPUs) at sizes from 1 MiB up, reported as nccl-tests does: algorithm bandwidth (bytes /
//! time) and bus bandwidth (algorithm bandwidth × 2(n−1)/n, what each link carries, so
//! figures compare across world sizes and with the link's speed). Every rank's result is
//! checked against the exact sum before timing. scripts/gpu/dist_bench.sh runs it beside
//! torch.distributed under the same launcher.
//!
//! usage: ingot launch -n N -- ingot-dist-bench [--dtype bf16|f32] [--max-mib M] [--json FILE]

use ingot::distributed as dist;
use ingot::{Array, DType, Device};
use std::time::Instant;

fn main() {
    if let Err(e) = run() {
        eprintln!("ingot-dist-bench: {e}");
        std::process::exit(1);
    }
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn run() -> ingot::Result<()> {
    let world = dist::init()?;
    let (rank, n) = (world.rank(), world.size());
    let dtype: DType = match arg("--dtype").as_deref().unwrap_or("bf16") {
        "f32" => DType::F32,
        "f16" => DType::F16,
        _ => DType::BF16,
    };
    let max_mib: usize = arg("--max-mib")
        .and_then(|s| s.parse().ok())
        .unwrap_or(1024);
    let dev = ingot::default_gpu().unwrap_or(Device::Cpu);
    ingot::set_default_device(dev);
    let sync = || ingot::synchronize(dev);
    if rank == 0 {
        let nccl = match dist::nccl_version() {
            Ok(v) => format!("NCCL {}.{}.{}", v.0, v.1, v.2),
            Err(e) => format!("no NCCL ({e})"),
        };
        println!("all_sum of {dtype} over {n} process(es) on {dev}, {nccl}");
        println!(
            "{:>10} {:>10} {:>12} {:>12}",
            "MiB", "µs", "algbw GB/s", "busbw GB/s"
        );
    }
    // Exactness first: each rank holds rank + 1 everywhere, so every element of the sum is
    // n(n+1)/2 (exact in bf16 for the world sizes here).
    let x = ingot::full(&[1 << 20], (rank + 1) as f64, dtype)?;
    let y = ingot::astype(&dist::all_sum(&x, None)?, DType::F32)?.to_vec::<f32>()?;
    let want = (n * (n + 1) / 2) as f32;
    if let Some((i, v)) = y.iter().enumerate().find(|(_, v)| **v != want) {
        return Err(ingot::Error::invalid(
            "ingot-dist-bench",
            format!("all_sum element {i} is {v}, not {want}"),
        ));
    }
    let mut rows = Vec::new();
    let mut mib = 1usize;
    while mib <= max_mib {
        let bytes = mib << 20;
        let x: Array = ingot::full(&[bytes / dtype.size()], (rank + 1) as f64, dtype)?;
        x.eval()?;
        dist::all_sum(&x, None)?.eval()?;
        sync()?;
        let reps = (4096 / mib).clamp(5, 100);
        let mut times = Vec::new();
        for _ in 0..3 {
            let t = Instant::now();
            for _ in 0..reps {
                ingot::async_eval(&[dist::all_sum(&x, None)?])?;
            }
            sync()?;
            times.push(t.elapsed().as_secs_f64() / reps as f64);
        }
        times.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let t = times[1];
        let alg = bytes as f64 / t / 1e9;
        let bus = alg * 2.0 * (n as f64 - 1.0) / n as f64;
        if rank == 0 {
            println!("{mib:>10} {:>10.1} {alg:>12.1} {bus:>12.1}", t * 1e6);
        }
        rows.push(format!(
            "{{\"bytes\":{bytes},\"seconds\":{t:e},\"algbw\":{alg:.3},\"busbw\":{bus:.3}}}"
        ));
        mib *= 4;
    }
    if let (0, Some(path)) = (rank, arg("--json")) {
        let json = format!(
            "{{\"impl\":\"ingot\",\"world\":{n},\"dtype\":\"{dtype}\",\"rows\":[{}]}}\n",
            rows.join(",")
        );
        std::fs::write(&path, json)
            .map_err(|e| ingot::Error::invalid("ingot-dist-bench", format!("{path}: {e}")))?;
    }
    Ok(())
}
