//! `INGOT_CUDA_STATS=1`: host time spent in the CUDA backend, by op and by driver call
//! (uploads, reads, compiles, module loads, allocations), printed to stderr every 10 s of a
//! run and when `print` is called. A diagnostic for programs that run slower on the GPU
//! than the kernel times explain; the time outside every row is the graph and the caller.

use parking_lot::Mutex;
use std::sync::OnceLock;
use std::time::Instant;

struct Table {
    start: Instant,
    last_print: Instant,
    rows: Vec<(&'static str, u64, f64)>,
}

static TABLE: Mutex<Option<Table>> = Mutex::new(None);

pub(crate) fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("INGOT_CUDA_STATS").is_some_and(|v| v == "1"))
}

/// Runs `f`, adding its host time to row `key` when stats are on.
pub(crate) fn timed<R>(key: &'static str, f: impl FnOnce() -> R) -> R {
    if !enabled() {
        return f();
    }
    let t0 = Instant::now();
    let r = f();
    record(key, t0.elapsed().as_secs_f64());
    r
}

fn record(key: &'static str, secs: f64) {
    let now = Instant::now();
    let mut t = TABLE.lock();
    let t = t.get_or_insert_with(|| Table {
        start: now,
        last_print: now,
        rows: Vec::new(),
    });
    match t.rows.iter_mut().find(|r| r.0 == key) {
        Some(r) => {
            r.1 += 1;
            r.2 += secs;
        }
        None => t.rows.push((key, 1, secs)),
    }
    if now.duration_since(t.last_print).as_secs_f64() >= 10.0 {
        t.last_print = now;
        eprint!("{}", render(t));
    }
}

fn render(t: &Table) -> String {
    let mut rows = t.rows.clone();
    rows.sort_by(|a, b| b.2.total_cmp(&a.2));
    let mut s = format!(
        "ingot-cuda stats after {:.1} s (pid {}):\n",
        t.start.elapsed().as_secs_f64(),
        std::process::id()
    );
    for (k, n, secs) in rows.iter().take(24) {
        s.push_str(&format!(
            "  {k:<24} {n:>9} calls {:>10.1} ms {:>9.1} us/call\n",
            secs * 1e3,
            secs * 1e6 / *n as f64
        ));
    }
    s
}

/// Prints the table now (nothing when stats are off or nothing was recorded).
pub fn print() {
    if let Some(t) = TABLE.lock().as_ref() {
        eprint!("{}", render(t));
    }
}
