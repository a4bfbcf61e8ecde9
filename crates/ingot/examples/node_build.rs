//! Host time of building one tiny lazy op node (no evaluation), per op: the part of a tiny
//! op's cost that comes before any backend. Run with
//! `cargo run --release -p ingot --example node_build [case]`.

use ingot::{Array, DType};
use std::time::Instant;

const OPS: usize = 10_000;
const RUNS: usize = 15;

/// Median over `RUNS` of the time per op of building `OPS` nodes with `f` (kept alive until
/// the run ends, as a graph being built would be).
fn per_op(f: &dyn Fn() -> Array) -> f64 {
    let mut times: Vec<f64> = (0..RUNS)
        .map(|_| {
            let mut keep = Vec::with_capacity(OPS);
            let t = Instant::now();
            for _ in 0..OPS {
                keep.push(f());
            }
            let secs = t.elapsed().as_secs_f64();
            drop(keep);
            secs / OPS as f64
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[RUNS / 2]
}

fn main() {
    let s = ingot::ones(&[4], DType::F32).unwrap();
    let b = ingot::ones(&[4], DType::F32).unwrap();
    s.eval().unwrap();
    b.eval().unwrap();
    let cases: [(&str, &dyn Fn() -> Array); 3] = [
        ("add(&s, 1.0)", &|| ingot::add(&s, 1.0).unwrap()),
        ("add(&a, &b)", &|| ingot::add(&s, &b).unwrap()),
        ("exp(&a)", &|| ingot::exp(&s).unwrap()),
    ];
    // An argument picks the cases whose names contain it (to profile one alone).
    let only = std::env::args().nth(1).unwrap_or_default();
    for (name, f) in cases.into_iter().filter(|(n, _)| n.contains(only.as_str())) {
        per_op(f); // warm up
        println!("{name:<14} {:>8.1} ns/op", per_op(f) * 1e9);
    }
}
