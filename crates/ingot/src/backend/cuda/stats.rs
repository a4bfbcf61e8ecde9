//! `INGOT_CUDA_STATS=1`: host time spent in the CUDA backend, by op and by driver call
//! (uploads, reads, compiles, module loads, allocations), printed to stderr every 10 s of a
//! run and when `print` is called. A diagnostic for programs that run slower on the GPU
//! than the kernel times explain; the time outside every row is the graph and the caller.

use cudarc::driver::{CudaEvent, CudaStream};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
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
/// Also prints the GPU time table of `INGOT_CUDA_PROFILE=1`.
pub fn print() {
    if let Some(t) = TABLE.lock().as_ref() {
        eprint!("{}", render(t));
    }
    if let Some(s) = render_profile() {
        eprint!("{s}");
    }
}

/// `INGOT_CUDA_PROFILE=1`: GPU time by op, measured with a pair of CUDA events around each
/// op's work and printed (grouped by op name, and by op, dtypes and shapes) by `print`.
/// Events cost a few microseconds of host time per op; a diagnostic, not for timing runs.
pub(crate) fn profiling() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("INGOT_CUDA_PROFILE").is_some_and(|v| v == "1"))
}

type Pending = (String, &'static str, CudaEvent, CudaEvent);

#[derive(Default)]
struct Profile {
    pending: Vec<Pending>,
    /// (key, op name) -> (calls, GPU ms)
    totals: HashMap<(String, &'static str), (u64, f64)>,
}

static PROFILE: Mutex<Option<Profile>> = Mutex::new(None);

/// Runs `f` (which enqueues an op's work on `stream`) between two timing events.
pub(crate) fn profiled<R>(
    stream: &Arc<CudaStream>,
    name: &'static str,
    key: impl FnOnce() -> String,
    f: impl FnOnce() -> R,
) -> R {
    let flags = Some(cudarc::driver::sys::CUevent_flags::CU_EVENT_DEFAULT);
    let start = stream.record_event(flags).ok();
    let r = f();
    let end = stream.record_event(flags).ok();
    if let (Some(s), Some(e)) = (start, end) {
        let mut p = PROFILE.lock();
        let p = p.get_or_insert_with(Profile::default);
        p.pending.push((key(), name, s, e));
        // Bounded: resolving waits for the oldest events, long done by then.
        if p.pending.len() >= 4096 {
            resolve(p);
        }
    }
    r
}

fn resolve(p: &mut Profile) {
    for (key, name, s, e) in p.pending.drain(..) {
        let ms = s.elapsed_ms(&e).unwrap_or(0.0) as f64;
        let t = p.totals.entry((key, name)).or_default();
        t.0 += 1;
        t.1 += ms;
    }
}

fn render_profile() -> Option<String> {
    let mut guard = PROFILE.lock();
    let p = guard.as_mut()?;
    resolve(p);
    let total: f64 = p.totals.values().map(|t| t.1).sum();
    let mut by_name: HashMap<&'static str, (u64, f64)> = HashMap::new();
    for ((_, name), (n, ms)) in &p.totals {
        let t = by_name.entry(name).or_default();
        t.0 += n;
        t.1 += ms;
    }
    let mut names: Vec<_> = by_name.into_iter().collect();
    names.sort_by(|a, b| b.1 .1.total_cmp(&a.1 .1));
    let mut s = format!("ingot-cuda GPU time by op ({total:.1} ms in all):\n");
    for (name, (n, ms)) in names.iter().take(30) {
        s.push_str(&format!(
            "  {name:<24} {n:>9} calls {ms:>10.2} ms {:>5.1}%\n",
            100.0 * ms / total.max(1e-12)
        ));
    }
    let mut keys: Vec<_> = p.totals.iter().collect();
    keys.sort_by(|a, b| b.1 .1.total_cmp(&a.1 .1));
    s.push_str("ingot-cuda GPU time by op, dtypes and shapes:\n");
    for ((key, _), (n, ms)) in keys.iter().take(40) {
        s.push_str(&format!(
            "  {ms:>10.2} ms {n:>7} calls {:>9.1} us/call  {key}\n",
            ms * 1e3 / *n as f64
        ));
    }
    Some(s)
}
