//! The launch thread. The driver's `cuLaunchKernel` costs 3-4 us of host time on the
//! H100 machines here (run G16), as much as building and preparing an op. Each GPU
//! therefore has a thread that makes the launches: an op's thread prepares the kernel's
//! arguments, queues them and goes on to the next op while the launch thread calls the
//! driver, so the two costs overlap instead of adding up.
//!
//! Order: launches reach the stream in the order they were queued. Everything else that
//! puts work on the stream or depends on it (copies, library calls, events, frees,
//! synchronizing) first waits until the queue is empty (`Launcher::drain`, called by
//! `Gpu::stream`), so the stream sees all work in program order. A failed launch is
//! reported by the next drain, whoever makes it: a drain on a path that cannot report
//! (a buffer's destructor returning memory to the driver) loses it.
//!
//! On by default since run G17 (the GPU suites passed with it; the tiny op went from 5.87 to
//! 4.66-4.79 us); `INGOT_CUDA_LAUNCH_THREAD=0` turns it off. Its first GPU suite run (G16)
//! had found ops that copy an operand with a kernel and then call cuBLAS, cuDNN or cuFFT in
//! the same op, which read the copy before it was launched: those calls drain the queue
//! first. Profiling and `INGOT_CUDA_SLOW_MS` keep launches on the op's thread.

use super::{cuda_err, Args};
use crate::Result;
use cudarc::driver::{CudaContext, CudaFunction, CudaStream};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError};
use std::sync::Arc;

/// One queued launch.
struct Job {
    /// Holds the kernel's module alive until the launch is made.
    f: CudaFunction,
    grid: (u32, u32, u32),
    block: (u32, u32, u32),
    shared: u32,
    args: Args,
}

/// How many launches may wait in the queue before queuing blocks (about 300 KB of
/// arguments): enough to keep the launch thread busy, bounded so a runaway loop of ops
/// cannot grow host memory.
const DEPTH: usize = 1024;

/// How long an idle launch thread spins before it sleeps: ops that come in a stream, with
/// short host work between them (sampling a token), never pay a wake-up (a futex call of
/// microseconds, on the op's thread), and an idle process does not hold a core.
const IDLE_SPIN: std::time::Duration = std::time::Duration::from_micros(200);

pub(crate) struct Launcher {
    tx: SyncSender<Job>,
    queued: AtomicU64,
    state: Arc<State>,
}

struct State {
    launched: AtomicU64,
    /// Set when the launch thread ends, so a drain cannot wait for it forever.
    stopped: std::sync::atomic::AtomicBool,
    /// The first failed launch since the last drain.
    error: Mutex<Option<String>>,
}

impl Launcher {
    /// A launcher for `stream`, or `None` where launches stay on the op's thread.
    pub(crate) fn new(ctx: &Arc<CudaContext>, stream: &Arc<CudaStream>) -> Option<Launcher> {
        if !enabled() {
            return None;
        }
        let (tx, rx) = sync_channel::<Job>(DEPTH);
        let state = Arc::new(State {
            launched: AtomicU64::new(0),
            stopped: std::sync::atomic::AtomicBool::new(false),
            error: Mutex::new(None),
        });
        let (ctx, stream, st) = (ctx.clone(), stream.clone(), state.clone());
        std::thread::Builder::new()
            .name(format!("ingot-cuda{}-launch", ctx.ordinal()))
            .spawn(move || run(ctx, stream, rx, st))
            .ok()?;
        Some(Launcher {
            tx,
            queued: AtomicU64::new(0),
            state,
        })
    }

    /// Queues a launch of `f` with a copy of `args`.
    pub(crate) fn queue(
        &self,
        f: &CudaFunction,
        grid: (u32, u32, u32),
        block: (u32, u32, u32),
        shared: u32,
        args: &Args,
    ) -> Result<()> {
        self.queued.fetch_add(1, Ordering::AcqRel);
        let job = Job {
            f: f.clone(),
            grid,
            block,
            shared,
            args: args.clone(),
        };
        self.tx.send(job).map_err(|_| {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            cuda_err("launch", "the launch thread has stopped")
        })
    }

    /// Waits until every launch queued so far is on the stream; returns the first failed
    /// launch since the last drain.
    pub(crate) fn drain(&self) -> Result<()> {
        let want = self.queued.load(Ordering::Acquire);
        let mut spins = 0u32;
        while self.state.launched.load(Ordering::Acquire) < want {
            if self.state.stopped.load(Ordering::Acquire) {
                return Err(cuda_err("launch", "the launch thread has stopped"));
            }
            spins += 1;
            if spins < 256 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        match self.state.error.lock().take() {
            Some(msg) => Err(cuda_err("launch", msg)),
            None => Ok(()),
        }
    }
}

fn run(ctx: Arc<CudaContext>, stream: Arc<CudaStream>, rx: Receiver<Job>, st: Arc<State>) {
    /// Marks the thread stopped however it ends (a panic included).
    struct Stopped(Arc<State>);
    impl Drop for Stopped {
        fn drop(&mut self) {
            self.0.stopped.store(true, Ordering::Release);
        }
    }
    let _stopped = Stopped(st.clone());
    if let Err(e) = ctx.bind_to_thread() {
        *st.error.lock() = Some(format!("the launch thread could not use the GPU: {e}"));
    }
    loop {
        let job = match rx.try_recv() {
            Ok(j) => j,
            Err(TryRecvError::Empty) => {
                let since = std::time::Instant::now();
                let mut job = None;
                while since.elapsed() < IDLE_SPIN {
                    for _ in 0..64 {
                        std::hint::spin_loop();
                    }
                    match rx.try_recv() {
                        Ok(j) => {
                            job = Some(j);
                            break;
                        }
                        Err(TryRecvError::Empty) => {}
                        Err(TryRecvError::Disconnected) => return,
                    }
                }
                match job.map_or_else(|| rx.recv(), Ok) {
                    Ok(j) => j,
                    Err(_) => return,
                }
            }
            Err(TryRecvError::Disconnected) => return,
        };
        if let Err(e) = launch_now(&stream, &job.f, job.grid, job.block, job.shared, &job.args) {
            let mut err = st.error.lock();
            if err.is_none() {
                *err = Some(e.to_string());
            }
        }
        drop(job);
        st.launched.fetch_add(1, Ordering::AcqRel);
    }
}

/// Launches `f` on `stream` from this thread.
pub(crate) fn launch_now(
    stream: &CudaStream,
    f: &CudaFunction,
    grid: (u32, u32, u32),
    block: (u32, u32, u32),
    shared: u32,
    args: &Args,
) -> Result<()> {
    let base = args.vals.as_ptr();
    // The parameters' addresses: on the stack for the usual few dozen, not in a Vec.
    let n = args.starts.len();
    let mut stack = [std::ptr::null_mut::<std::ffi::c_void>(); 64];
    let mut heap = Vec::new();
    let ptrs: &mut [*mut std::ffi::c_void] = if n <= stack.len() {
        &mut stack[..n]
    } else {
        heap.resize(n, std::ptr::null_mut());
        &mut heap
    };
    for (p, &s) in ptrs.iter_mut().zip(&args.starts) {
        // Safety: every start is inside `vals`, which outlives the launch.
        *p = unsafe { base.add(s) } as *mut std::ffi::c_void;
    }
    // Safety: `args` holds each parameter by value in the order and layout of the kernel's
    // signature (checked by the kernel's author); the driver copies the values during the
    // call. Buffers outlive the kernel because freed memory is only reused by later work on
    // the same stream.
    unsafe {
        cudarc::driver::result::launch_kernel(
            f.cu_function(),
            grid,
            block,
            shared,
            stream.cu_stream(),
            ptrs,
        )
    }
    .map_err(|e| cuda_err("launch", e))
}

/// Whether GPUs get a launch thread: unless `INGOT_CUDA_LAUNCH_THREAD=0`, or a diagnostic
/// mode times each op on its own thread.
fn enabled() -> bool {
    std::env::var_os("INGOT_CUDA_LAUNCH_THREAD").is_none_or(|v| v != "0")
        && !super::stats::profiling()
        && std::env::var_os("INGOT_CUDA_SLOW_MS").is_none()
}
