//! The CUDA backend. Everything is loaded at run time (cudarc's dynamic loading): a machine
//! without a GPU builds and runs the same binary, and `Device::Cuda(n)` then reports that
//! no GPU is there. Kernels are CUDA C++ under `kernels/`, compiled by NVRTC for the running
//! GPU and cached on disk (`nvrtc.rs`); matmul goes to cuBLAS. Work is queued on one stream
//! per GPU and the host waits only when it reads a result.
//!
//! An op without a GPU kernel yet runs on the CPU: its inputs move to the host and its output
//! moves back when a GPU kernel reads it. `fallbacks()` counts those runs by op name.

mod alloc;
mod argreduce;
mod attention;
pub(crate) mod blaslt;
mod collective;
mod conv;
mod conv_graph;
mod custom;
mod elementwise;
mod fft;
pub(crate) mod graph;
mod index;
mod launch;
mod layout;
mod matmul;
mod misc;
mod norm_rope;
mod nvrtc;
mod pool;
mod reduce;
mod scan;
mod scatter;
mod softmax;
mod sort;
mod stats;
pub use conv::conv_paths;
pub use stats::print as print_stats;

pub use alloc::api as alloc_api;
pub use alloc::{DeviceMem, DeviceMemoryStats};
pub mod matmul_api {
    pub use super::conv::set_cudnn_graph;
    pub use super::matmul::set_allow_tf32;
}

use crate::array::{Array, Data};
use crate::backend::cpu::Outs;
use crate::op::Op;
use crate::{Error, Result};
use cudarc::driver::{CudaContext, CudaFunction, CudaStream};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

type ModuleSlot = Arc<OnceLock<std::result::Result<Arc<cudarc::driver::CudaModule>, String>>>;
type KernelSlot = Arc<OnceLock<std::result::Result<Arc<CudaFunction>, String>>>;

/// One GPU: its context, the stream all work goes to, compiled kernels and memory pool.
pub(crate) struct Gpu {
    pub ordinal: usize,
    pub ctx: Arc<CudaContext>,
    /// Reached through `stream()`, which first puts queued launches on it.
    stream: Arc<CudaStream>,
    /// The launch thread's queue (`launch.rs`); `None` launches on the op's thread.
    launcher: Option<launch::Launcher>,
    /// NVRTC's target, e.g. "sm_90a".
    pub arch: String,
    pub sm_count: u32,
    /// Shared memory one block may have after opting in (227 KiB on Hopper).
    pub max_shared: usize,
    kernels: Mutex<HashMap<String, KernelSlot>>,
    modules: Mutex<HashMap<String, ModuleSlot>>,
    /// Elementwise kernels by what they compute (`elementwise::MapCache`).
    map_kernels: elementwise::MapCache,
    blas: OnceLock<std::result::Result<matmul::Blas, String>>,
    pub(crate) pool: Mutex<alloc::Pool>,
    /// The stream collectives run on (made by the first), so they overlap the kernels of
    /// the compute stream.
    comm: OnceLock<Arc<CudaStream>>,
    /// Buffers the collectives' stream still reads, each kept until its event has passed
    /// (so the allocator cannot hand the memory to the compute stream meanwhile).
    in_flight: Mutex<Vec<(Arc<cudarc::driver::CudaEvent>, Vec<Data>)>>,
    /// The stream CUDA graphs are recorded on (`graph.rs`), made by the first capture; one
    /// capture at a time holds `capture_lock`.
    capture: OnceLock<Arc<CudaStream>>,
    pub(crate) capture_lock: Mutex<()>,
    /// The cuBLAS handle of captures, bound to `capture`.
    capture_blas: OnceLock<std::result::Result<matmul::Blas, String>>,
}

/// Dynamic shared memory a kernel may launch with before it opts in to more.
pub(crate) const DEFAULT_SHARED: usize = 48 << 10;

/// Lets kernel `f` launch with `bytes` of dynamic shared memory: above the default 48 KiB
/// the kernel's own limit must be raised first. The limit belongs to the kernel, not the
/// launch, so it is raised to the GPU's whole opt-in maximum and never lowered: a launch
/// with more, queued by another thread, must not meet a limit this call set lower (a
/// drain before the change is not enough with several threads).
pub(crate) fn allow_shared(g: &Gpu, f: &CudaFunction, bytes: usize, op: &str) -> Result<()> {
    if bytes > DEFAULT_SHARED {
        if bytes > g.max_shared {
            return Err(cuda_err(
                op,
                format!(
                    "{bytes} bytes of shared memory asked, the GPU allows {}",
                    g.max_shared
                ),
            ));
        }
        f.set_attribute(
            cudarc::driver::sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
            g.max_shared as i32,
        )
        .map_err(|e| cuda_err(op, e))?;
    }
    Ok(())
}

pub(crate) fn cuda_err(op: &str, e: impl std::fmt::Display) -> Error {
    Error::Backend {
        op: op.into(),
        msg: format!("CUDA: {e}"),
    }
}

static GPUS: OnceLock<
    std::result::Result<Vec<OnceLock<std::result::Result<Arc<Gpu>, String>>>, String>,
> = OnceLock::new();

fn driver(
) -> &'static std::result::Result<Vec<OnceLock<std::result::Result<Arc<Gpu>, String>>>, String> {
    GPUS.get_or_init(|| {
        // Safety: only probes whether the shared library can be opened.
        if !unsafe { cudarc::driver::sys::is_culib_present() } {
            return Err("the CUDA driver (libcuda.so) was not found: no NVIDIA GPU here".into());
        }
        cudarc::driver::result::init().map_err(|e| format!("cuInit failed: {e}"))?;
        let n = CudaContext::device_count().map_err(|e| format!("counting GPUs: {e}"))?;
        Ok((0..n.max(0)).map(|_| OnceLock::new()).collect())
    })
}

/// Whether at least one CUDA GPU can be used.
pub fn is_available() -> bool {
    device_count() > 0
}

/// The number of CUDA GPUs (0 without a driver).
pub fn device_count() -> usize {
    driver().as_ref().map(|v| v.len()).unwrap_or(0)
}

/// GPU `ordinal`, set up on first use.
pub(crate) fn gpu(ordinal: usize) -> Result<Arc<Gpu>> {
    let unavailable = |msg: String| Error::Unsupported {
        op: "cuda".into(),
        msg: format!("device cuda:{ordinal} is not available: {msg}"),
    };
    let gpus = driver().as_ref().map_err(|e| unavailable(e.clone()))?;
    let slot = gpus
        .get(ordinal)
        .ok_or_else(|| unavailable(format!("this machine has {} GPU(s)", gpus.len())))?;
    let g = slot
        .get_or_init(|| Gpu::new(ordinal).map(Arc::new).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| unavailable(e.clone()))?;
    g.ctx.bind_to_thread().map_err(|e| cuda_err("cuda", e))?;
    Ok(g.clone())
}

/// GPU `ordinal` if it was set up already (memory figures must not start a GPU).
pub(crate) fn gpu_if_started(ordinal: usize) -> Option<Arc<Gpu>> {
    let g = driver()
        .as_ref()
        .ok()?
        .get(ordinal)?
        .get()?
        .as_ref()
        .ok()?
        .clone();
    g.ctx.bind_to_thread().ok()?;
    Some(g)
}

impl Gpu {
    fn new(ordinal: usize) -> Result<Gpu> {
        let ctx = CudaContext::new(ordinal).map_err(|e| cuda_err("cuda", e))?;
        // cudarc would record an event per buffer use; ingot orders work itself (one stream).
        // Safety: no cudarc-managed buffers are shared between streams.
        unsafe { ctx.disable_event_tracking() };
        let stream = ctx.new_stream().map_err(|e| cuda_err("cuda", e))?;
        let launcher = launch::Launcher::new(&ctx, &stream);
        let (major, minor) = ctx.compute_capability().map_err(|e| cuda_err("cuda", e))?;
        // Hopper's arch-specific target enables wgmma and setmaxnreg for kernels that use them.
        let arch = if (major, minor) == (9, 0) {
            "sm_90a".to_string()
        } else {
            format!("sm_{major}{minor}")
        };
        let sm_count = ctx
            .attribute(
                cudarc::driver::sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT,
            )
            .map_err(|e| cuda_err("cuda", e))? as u32;
        let max_shared = ctx
            .attribute(
                cudarc::driver::sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN,
            )
            .map_err(|e| cuda_err("cuda", e))? as usize;
        let total = ctx.total_mem().map_err(|e| cuda_err("cuda", e))?;
        Ok(Gpu {
            ordinal,
            ctx,
            stream,
            launcher,
            arch,
            sm_count,
            max_shared,
            kernels: Mutex::new(HashMap::new()),
            modules: Mutex::new(HashMap::new()),
            map_kernels: elementwise::MapCache::default(),
            blas: OnceLock::new(),
            pool: Mutex::new(alloc::Pool::new(total)),
            comm: OnceLock::new(),
            in_flight: Mutex::new(Vec::new()),
            capture: OnceLock::new(),
            capture_lock: Mutex::new(()),
            capture_blas: OnceLock::new(),
        })
    }

    /// The kernel `name` from the source `make_src` builds (called only on a cache miss).
    pub(crate) fn kernel(
        &self,
        name: &str,
        make_src: impl FnOnce() -> String,
    ) -> Result<Arc<CudaFunction>> {
        self.kernel_in(name, name, make_src)
    }

    /// Kernel `name` of module `module` (built from `make_src` on its first use): a module
    /// holding several kernels is compiled and loaded once.
    pub(crate) fn kernel_in(
        &self,
        module: &str,
        name: &str,
        make_src: impl FnOnce() -> String,
    ) -> Result<Arc<CudaFunction>> {
        // One slot per name, filled once: threads that want a kernel being compiled wait for
        // that compile instead of starting their own.
        // Every launch comes through here: look up by &str, allocate a key only on a miss.
        let slot = {
            let mut map = self.kernels.lock();
            match map.get(name) {
                Some(s) => s.clone(),
                None => map.entry(name.to_string()).or_default().clone(),
            }
        };
        let built = slot.get_or_init(|| {
            let mslot = self
                .modules
                .lock()
                .entry(module.to_string())
                .or_default()
                .clone();
            let m = mslot.get_or_init(|| {
                let src = make_src();
                let cubin = nvrtc::compile(&self.arch, module, &src).map_err(|e| e.to_string())?;
                stats::timed("[module load]", || {
                    self.ctx
                        .load_module(cudarc::nvrtc::Ptx::from_binary(cubin))
                        .map_err(|e| cuda_err(module, e).to_string())
                })
            });
            let f = m
                .clone()?
                .load_function(name)
                .map_err(|e| cuda_err(name, e).to_string())?;
            Ok(Arc::new(f))
        });
        built.clone().map_err(|msg| Error::Backend {
            op: name.into(),
            msg,
        })
    }

    /// Launches `f` on the GPU's stream with the kernel arguments in `args`: queued for the
    /// launch thread where there is one, so the launch overlaps the caller's next op.
    pub(crate) fn launch(
        &self,
        f: &CudaFunction,
        grid: (u32, u32, u32),
        block: (u32, u32, u32),
        shared: u32,
        args: &Args,
    ) -> Result<()> {
        if let Some(s) = self.capturing_stream() {
            return launch::launch_now(s, f, grid, block, shared, args);
        }
        match &self.launcher {
            Some(l) => l.queue(f, grid, block, shared, args),
            None => launch::launch_now(&self.stream, f, grid, block, shared, args),
        }
    }

    /// The capture stream, if this thread is recording a CUDA graph for this GPU.
    pub(crate) fn capturing_stream(&self) -> Option<&Arc<CudaStream>> {
        if graph::capturing(self.ordinal) {
            self.capture.get()
        } else {
            None
        }
    }

    /// The stream CUDA graphs are recorded on.
    pub(crate) fn capture_stream(&self) -> Result<&Arc<CudaStream>> {
        if let Some(s) = self.capture.get() {
            return Ok(s);
        }
        let s = self
            .ctx
            .new_stream()
            .map_err(|e| cuda_err("cuda graph stream", e))?;
        Ok(self.capture.get_or_init(|| s))
    }

    /// The GPU's own stream, without waiting for queued launches: for binding a library
    /// handle back to it after a capture (no work is put on it).
    pub(crate) fn main_stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// The GPU's stream, for work other than kernel launches (copies, library calls,
    /// events): every launch queued so far is on it first, so it sees work in program
    /// order. Returns a launch's failure if one failed since the last call.
    pub(crate) fn stream(&self) -> Result<&Arc<CudaStream>> {
        // While this thread records a graph, its work goes to the capture stream.
        if let Some(s) = self.capturing_stream() {
            return Ok(s);
        }
        if let Some(l) = &self.launcher {
            l.drain()?;
        }
        Ok(&self.stream)
    }

    /// Compute capability as major·10 + minor (90 for "sm_90a").
    pub(crate) fn sm(&self) -> u32 {
        let digits: String = self.arch.chars().filter(|c| c.is_ascii_digit()).collect();
        digits.parse().unwrap_or(0)
    }

    /// Launches `f` with one thread per item of `n`, in blocks of 256.
    pub(crate) fn launch_1d(&self, f: &CudaFunction, n: usize, args: &Args) -> Result<()> {
        self.launch(f, (n.div_ceil(256) as u32, 1, 1), (256, 1, 1), 0, args)
    }

    pub(crate) fn synchronize(&self) -> Result<()> {
        graph::forbid(self.ordinal, "waiting for the GPU")?;
        stats::timed("[synchronize]", || {
            self.stream()?
                .synchronize()
                .map_err(|e| cuda_err("synchronize", e))?;
            if let Some(c) = self.comm.get() {
                c.synchronize().map_err(|e| cuda_err("synchronize", e))?;
                // Dropped outside the lock: a dropped block may free memory, which
                // synchronizes again.
                let done = std::mem::take(&mut *self.in_flight.lock());
                drop(done);
            }
            // A bad index met by a graph replay is reported once the host has waited.
            graph::check_indices(self.ordinal)
        })
    }

    /// The collectives' stream.
    pub(crate) fn comm_stream(&self) -> Result<&Arc<CudaStream>> {
        if let Some(s) = self.comm.get() {
            return Ok(s);
        }
        let s = self.ctx.new_stream().map_err(|e| cuda_err("stream", e))?;
        Ok(self.comm.get_or_init(|| s))
    }

    /// Keeps `data` alive until `done` has passed; drops what earlier calls kept whose
    /// events have.
    pub(crate) fn keep_until(&self, done: Arc<cudarc::driver::CudaEvent>, data: Vec<Data>) {
        let passed = {
            let mut f = self.in_flight.lock();
            // Safety: querying events this GPU recorded.
            let (passed, running): (Vec<_>, Vec<_>) = std::mem::take(&mut *f)
                .into_iter()
                .partition(|(ev, _)| unsafe {
                    cudarc::driver::result::event::query(ev.cu_event()).is_ok()
                });
            *f = running;
            f.push((done, data));
            passed
        };
        // Dropped outside the lock (freeing memory may synchronize, which takes it).
        drop(passed);
    }

    /// A fresh device buffer of `nbytes` (contents unspecified).
    pub(crate) fn alloc(&self, nbytes: usize) -> Result<DeviceMem> {
        DeviceMem::alloc(self, nbytes)
    }
}

/// Kernel parameters, each kept by value in 8-byte-aligned storage until the launch: one
/// buffer for all of them (a launch is on every op's path; one allocation per parameter
/// was a dozen per launch).
#[derive(Clone)]
pub(crate) struct Args {
    vals: Vec<u64>,
    /// Where each parameter starts in `vals`, in u64 units.
    starts: Vec<usize>,
}

impl Args {
    pub(crate) fn new() -> Args {
        Args {
            vals: Vec::with_capacity(64),
            starts: Vec::with_capacity(16),
        }
    }
    /// Appends a parameter; `T` must match the kernel's parameter type (plain data,
    /// `#[repr(C)]` for structs).
    pub(crate) fn push<T: Copy>(&mut self, v: T) -> &mut Args {
        let n = std::mem::size_of::<T>().div_ceil(8).max(1);
        let start = self.vals.len();
        self.vals.resize(start + n, 0);
        // Safety: `vals[start..]` has room for a T, and u64 storage is aligned for any
        // parameter type.
        unsafe { std::ptr::write_unaligned(self.vals.as_mut_ptr().add(start) as *mut T, v) };
        self.starts.push(start);
        self
    }
}

static FALLBACKS: Mutex<Vec<(&'static str, usize)>> = Mutex::new(Vec::new());

/// Ops that ran on the CPU for a GPU device because no GPU kernel handles them yet, with
/// how many times, since the start of the process.
pub fn fallbacks() -> Vec<(&'static str, usize)> {
    FALLBACKS.lock().clone()
}

fn note_fallback(name: &'static str) {
    let mut f = FALLBACKS.lock();
    match f.iter_mut().find(|(n, _)| *n == name) {
        Some((_, c)) => *c += 1,
        None => f.push((name, 1)),
    }
}

/// Attention on a CUDA device builds the fused node (its CUDA kernels: split-KV decoding,
/// a warp per query row otherwise) where ops/fast.rs picks it; `INGOT_CUDA_ATTENTION=0`
/// builds the decomposition everywhere (for comparison and bisecting).
pub(crate) fn attention_enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("INGOT_CUDA_ATTENTION").is_none_or(|v| v != "0"))
}

/// Prefill attention in f16 and bf16, and its gradient, run the tensor-core flash kernels
/// (kernels/flash.cuh) where they take it; `INGOT_CUDA_FLASH=0` builds what was built before
/// them (the decomposition for prompts and for gradients).
pub(crate) fn flash_enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("INGOT_CUDA_FLASH").is_none_or(|v| v != "0"))
}

/// Split-KV decoding reads keys and values with 16-byte loads (`decv` in
/// kernels/attention.cuh) where their layout allows; `INGOT_CUDA_DECV=0` keeps the
/// key-a-warp kernel (`dec`) for comparison.
pub(crate) fn decv_enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("INGOT_CUDA_DECV").is_none_or(|v| v != "0"))
}

static DECV_LAUNCHES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// How many times the vector-load decoding kernel has been launched in this process (for
/// tests that must know it ran).
#[doc(hidden)]
pub fn decv_launches() -> usize {
    DECV_LAUNCHES.load(std::sync::atomic::Ordering::Relaxed)
}

pub(crate) fn note_decv_launch() {
    DECV_LAUNCHES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

static FLASH_LAUNCHES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// How many times the flash attention kernel has been launched in this process (for tests
/// that must know it ran).
#[doc(hidden)]
pub fn flash_launches() -> usize {
    FLASH_LAUNCHES.load(std::sync::atomic::Ordering::Relaxed)
}

pub(crate) fn note_flash_launch() {
    FLASH_LAUNCHES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// Whether GPU `ordinal`'s flash kernels take this attention's forward pass (`grad` false)
/// or its gradient (see attention::flash_takes): what ops/fast.rs and the vjp ask before
/// building the fused nodes. False where the GPU cannot be used.
pub(crate) fn flash_takes(
    ordinal: usize,
    dt: crate::DType,
    kind: crate::op::AttentionMask,
    dims: (usize, usize, usize, usize),
    grad: bool,
) -> bool {
    flash_enabled()
        && gpu(ordinal).is_ok_and(|g| attention::flash_takes(dt, kind, dims, g.sm(), grad))
}

/// rms_norm, layer_norm and rope on a CUDA device build their fused nodes and run their
/// CUDA kernels (kernels/norm_rope.cuh); `INGOT_CUDA_FAST=0` builds the decompositions.
pub(crate) fn fast_enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("INGOT_CUDA_FAST").is_none_or(|v| v != "0"))
}

/// `INGOT_CUDA_SLOW_MS=N`: every GPU op waits for its own work and, when it took N ms or
/// more (compiles, transfers and the kernels together), prints its name, inputs and time.
/// A diagnostic mode (it makes eval synchronous), to find what a slow program waits on;
/// `INGOT_CUDA_SLOW_MS=0` also prints each op as it starts.
fn slow_ms() -> Option<f64> {
    static MS: OnceLock<Option<f64>> = OnceLock::new();
    *MS.get_or_init(|| std::env::var("INGOT_CUDA_SLOW_MS").ok()?.parse().ok())
}

/// Runs `op` for GPU `ordinal`: on a GPU kernel when one handles it, else on the CPU.
pub fn eval(ordinal: usize, op: &Op, inputs: &[Array], outs: Outs) -> Result<Vec<Data>> {
    let Some(limit) = slow_ms() else {
        if stats::profiling() {
            let g = gpu(ordinal)?;
            let key = || {
                let ins: Vec<String> = inputs
                    .iter()
                    .map(|a| format!("{:?}{:?}", a.dtype(), a.shape()))
                    .collect();
                format!("{} {}", op.name(), ins.join(" "))
            };
            return stats::profiled(&g.stream, op.name(), key, || {
                eval_op(ordinal, op, inputs, outs)
            });
        }
        return stats::timed(op.name(), || eval_op(ordinal, op, inputs, outs));
    };
    let describe = || {
        let ins: Vec<String> = inputs
            .iter()
            .map(|a| format!("{:?}{:?}", a.dtype(), a.shape()))
            .collect();
        format!(
            "{} ({}) on {:?}",
            op.name(),
            ins.join(", "),
            std::thread::current().name().unwrap_or("?")
        )
    };
    // 0 also prints each op as it starts, so a hang shows the op it is in.
    if limit == 0.0 {
        eprintln!("ingot-cuda: start {}", describe());
    }
    let t0 = std::time::Instant::now();
    let r = eval_op(ordinal, op, inputs, outs);
    synchronize(ordinal)?;
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    if ms >= limit {
        eprintln!("ingot-cuda: {} took {ms:.1} ms", describe());
    }
    r
}

fn eval_op(ordinal: usize, op: &Op, inputs: &[Array], outs: Outs) -> Result<Vec<Data>> {
    let g = gpu(ordinal)?;
    let done = match op {
        Op::Unary(_)
        | Op::Binary(_)
        | Op::Select
        | Op::AsType(_)
        | Op::Arange { .. }
        | Op::Fused { .. } => elementwise::eval(&g, op, inputs, outs)?,
        Op::Copy => elementwise::copy(&g, &inputs[0])?.map(|d| vec![d]),
        Op::Reduce { .. } => reduce::eval(&g, op, inputs, outs)?,
        Op::Matmul => matmul::eval(&g, inputs, outs)?,
        Op::Linear { act, has_bias } => matmul::linear(&g, inputs, outs, *act, *has_bias)?,
        Op::ArgReduce { kind, axis } => argreduce::eval(&g, &inputs[0], *kind, *axis, &outs[0].0)?,
        Op::Scan {
            kind,
            axis,
            reverse,
            inclusive,
        } => scan::eval(
            &g,
            &inputs[0],
            (*kind, *axis, *reverse, *inclusive),
            outs[0].1,
        )?,
        Op::Softmax { axis, log } => softmax::eval(&g, &inputs[0], *axis, *log)?,
        Op::CrossEntropy | Op::CrossEntropyGrad if fast_enabled() => {
            softmax::ce_eval(&g, op, inputs)?
        }
        Op::Sort { .. }
        | Op::ArgSort { .. }
        | Op::Partition { .. }
        | Op::ArgPartition { .. }
        | Op::SearchSorted { .. } => sort::eval(&g, op, inputs, outs)?,
        // Views only change the layout over the same buffer, wherever it lives; a reshape
        // that needs a copy makes it on the GPU first.
        Op::Reshape => {
            let x = &inputs[0];
            let d = x.ready_data();
            match crate::shape::reshape_strides(x.shape(), &d.strides, &outs[0].0) {
                Some(_) => Some(crate::backend::cpu::eval(op, inputs, outs)?),
                None => match elementwise::copy(&g, x)? {
                    Some(c) => {
                        let y = Array::from_data(c, x.shape().to_vec(), x.dtype());
                        Some(crate::backend::cpu::eval(op, &[y], outs)?)
                    }
                    None => None,
                },
            }
        }
        Op::Concatenate { axis } => layout::concatenate(&g, inputs, *axis, &outs[0].0, outs[0].1)?,
        Op::Pad {
            low, mode, value, ..
        } => layout::pad(&g, &inputs[0], (low, *mode, *value), &outs[0].0)?,
        Op::SliceUpdate { start, step, kind } => {
            layout::slice_update(&g, inputs, (start, step, *kind))?
        }
        Op::Take { axis } => index::take(&g, inputs, *axis, false, &outs[0].0)?,
        Op::TakeAlongAxis { axis } => index::take(&g, inputs, *axis, true, &outs[0].0)?,
        Op::Gather { axes, slice_sizes } => {
            index::gather(&g, inputs, axes, slice_sizes, &outs[0].0)?
        }
        Op::PutAlongAxis { axis, kind } => scatter::put_along_axis(&g, inputs, *axis, *kind)?,
        Op::Scatter { axes, kind } => scatter::scatter(&g, inputs, axes, *kind)?,
        Op::Conv {
            stride,
            padding_lo,
            padding_hi,
            kernel_dilation,
            input_dilation,
            groups,
            flip,
        } => {
            let p = conv::ConvParams {
                stride,
                padding_lo,
                padding_hi,
                kernel_dilation,
                input_dilation,
                groups: *groups,
                flip: *flip,
            };
            conv::eval(&g, inputs, &p, &outs[0].0)?
        }
        Op::Pool {
            kind,
            window,
            stride,
            padding,
            count_pad,
        } => {
            let p = pool::PoolParams {
                kind: *kind,
                window,
                stride,
                padding,
                count_pad: *count_pad,
            };
            pool::eval(&g, &inputs[0], &p, (&outs[0].0, outs[0].1))?
        }
        Op::Hadamard { scale } => misc::hadamard(&g, &inputs[0], scale.to_f64())?,
        Op::GridSample {
            mode,
            padding,
            align_corners,
        } => misc::grid_sample(&g, inputs, (*mode, *padding, *align_corners), &outs[0].0)?,
        Op::Fft { axes, kind } => fft::eval(&g, &inputs[0], axes, *kind, &outs[0].0)?,
        Op::RandomBits => layout::random_bits(&g, &inputs[0], &outs[0].0)?,
        Op::ViewDtype(_) => layout::view_dtype(&g, op, &inputs[0], outs)?,
        Op::Transpose { .. } | Op::Slice { .. } | Op::Broadcast | Op::Diagonal { .. } => {
            Some(crate::backend::cpu::eval(op, inputs, outs)?)
        }
        Op::Custom { n_in, .. } => Some(inputs[*n_in..].iter().map(|a| a.ready_data()).collect()),
        Op::Kernel { name, params } => custom::eval(&g, name, params, inputs, outs)?,
        Op::Collective { .. } => collective::eval(&g, op, inputs, outs)?,
        Op::Attention { scale, mask } => {
            attention::eval(&g, inputs, scale.to_f64(), *mask, &outs[0].0)?
        }
        Op::AttentionGrad { scale, mask } => {
            attention::grad_eval(&g, inputs, scale.to_f64(), *mask, outs)?
        }
        Op::RmsNorm { .. } | Op::LayerNorm { .. } | Op::Rope { .. } if fast_enabled() => {
            norm_rope::eval(&g, op, inputs, &outs[0].0)?
        }
        _ => None,
    };
    match done {
        Some(d) => Ok(d),
        None => {
            graph::forbid(
                ordinal,
                &format!("{} on the CPU (no GPU kernel)", op.name()),
            )?;
            note_fallback(op.name());
            for a in inputs {
                a.ready_data().buffer.ensure_host()?;
            }
            crate::backend::cpu::eval(op, inputs, outs)
        }
    }
}

/// Compiles every elementwise kernel (all ops and dtypes, in modules of 64) and a sample of
/// the reduction, scan, softmax and arg-reduction modules with NVRTC for `arch`, without a GPU; returns the number of modules.
/// The test suite runs it wherever NVRTC can be loaded, so a kernel that does not compile
/// fails on the CPU machine, not on the GPU one.
#[doc(hidden)]
pub fn check_kernels_compile(arch: &str) -> Result<usize> {
    use rayon::prelude::*;
    let prelude = format!("{}\n{}\n", elementwise::COMMON, elementwise::FUNCS);
    // The elementwise kernels go in modules of 64 (one module of all of them takes NVRTC
    // minutes), compiled in parallel like the rest.
    let maps = elementwise::all_sources();
    let mut modules: Vec<(String, String)> = maps
        .chunks(64)
        .enumerate()
        .map(|(i, chunk)| {
            let mut one = prelude.clone();
            for (_, src) in chunk {
                one.push_str(
                    src.strip_prefix(&prelude)
                        .expect("map kernels start with the prelude"),
                );
            }
            (format!("check_elementwise_{i}"), one)
        })
        .collect();
    modules.extend(reduce::sample_sources());
    modules.extend(softmax::sample_sources());
    modules.extend(attention::sample_sources());
    modules.extend(norm_rope::sample_sources());
    modules.extend(scan::sample_sources());
    modules.extend(argreduce::sample_sources());
    modules.extend(layout::sample_sources());
    modules.extend(index::sample_sources());
    modules.extend(sort::sample_sources());
    modules.extend(scatter::sample_sources());
    modules.extend(pool::sample_sources());
    modules.extend(misc::sample_sources());
    modules.extend(matmul::sample_sources());
    if let Some(d) = std::env::var_os("INGOT_DUMP_KERNELS").map(std::path::PathBuf::from) {
        for (name, src) in &modules {
            let _ = std::fs::write(d.join(format!("{name}.cu")), src);
        }
    }
    modules
        .par_iter()
        .try_for_each(|(name, src)| nvrtc::build(name, src, &nvrtc::options(arch)).map(|_| ()))?;
    Ok(modules.len())
}

/// Host seconds per launch of an empty kernel on GPU `ordinal`, over `n` launches: the
/// driver's own cost per op, which no framework goes below (for the benchmark).
#[doc(hidden)]
pub fn empty_launch_time(ordinal: usize, n: usize) -> Result<f64> {
    let g = gpu(ordinal)?;
    let f = g.kernel("ingot_empty", || {
        "extern \"C\" __global__ void ingot_empty() {}\n".to_string()
    })?;
    g.synchronize()?;
    let args = Args::new();
    let t = std::time::Instant::now();
    for _ in 0..n {
        // On this thread, not the launch thread: the driver's own cost.
        launch::launch_now(&g.stream, &f, (1, 1, 1), (32, 1, 1), 0, &args)?;
    }
    let s = t.elapsed().as_secs_f64() / n.max(1) as f64;
    g.synchronize()?;
    Ok(s)
}

/// Host seconds per call, over `n` calls each, of the steps of one small op on GPU
/// `ordinal`, for the benchmark's breakdown of the tiny op: taking the GPU's handle, an
/// allocation and its release from the cache, and the backend's whole elementwise add of
/// 4 f32 and a host scalar (kernel lookup, arguments and launch; no graph).
#[doc(hidden)]
pub fn host_costs(ordinal: usize, n: usize) -> Result<Vec<(&'static str, f64)>> {
    let n = n.max(1);
    let per = |t: std::time::Instant| t.elapsed().as_secs_f64() / n as f64;
    let g = gpu(ordinal)?;
    let mut out = Vec::new();
    let t = std::time::Instant::now();
    for _ in 0..n {
        drop(gpu(ordinal)?);
    }
    out.push(("GPU handle", per(t)));
    let t = std::time::Instant::now();
    for _ in 0..n {
        drop(g.alloc(16)?);
    }
    out.push(("allocation and release", per(t)));
    let x = crate::device::with_device(crate::Device::Cuda(ordinal), || {
        crate::add(crate::ones(&[4], crate::DType::F32)?, 1.0)
    })?;
    x.eval()?;
    let c = crate::ops::broadcast_to(&crate::Array::scalar(1.0f32), &[4])?;
    c.eval()?;
    let inputs = [x, c];
    let outs = [(vec![4], crate::DType::F32)];
    let op = Op::Binary(crate::op::BinaryOp::Add);
    drop(eval(ordinal, &op, &inputs, &outs)?);
    g.synchronize()?;
    let t = std::time::Instant::now();
    for _ in 0..n {
        drop(eval(ordinal, &op, &inputs, &outs)?);
    }
    out.push((
        if g.launcher.is_some() {
            "backend add, launch queued"
        } else {
            "backend add, launch included"
        },
        per(t),
    ));
    g.synchronize()?;
    Ok(out)
}

pub(crate) use custom::compile_user_kernel;

/// Whether NVRTC can be loaded here (it needs no GPU).
pub fn nvrtc_available() -> bool {
    // Safety: only probes whether the shared library can be opened.
    unsafe { cudarc::nvrtc::sys::is_culib_present() }
}

/// Waits until the work queued on GPU `ordinal` has finished.
pub fn synchronize(ordinal: usize) -> Result<()> {
    match gpu_if_started(ordinal) {
        Some(g) => g.synchronize(),
        None => Ok(()),
    }
}

// ---- transfers -----------------------------------------------------------------------------

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// Copies between host and GPU memory, counted for tests and the profiler.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Transfers {
    pub to_device: usize,
    pub to_device_bytes: usize,
    pub to_host: usize,
    pub to_host_bytes: usize,
}

static TO_DEV: AtomicUsize = AtomicUsize::new(0);
static TO_DEV_BYTES: AtomicUsize = AtomicUsize::new(0);
static TO_HOST: AtomicUsize = AtomicUsize::new(0);
static TO_HOST_BYTES: AtomicUsize = AtomicUsize::new(0);
thread_local! {
    static LOCAL: std::cell::Cell<Transfers> = const { std::cell::Cell::new(Transfers {
        to_device: 0, to_device_bytes: 0, to_host: 0, to_host_bytes: 0 }) };
}

pub(crate) fn count_transfer(to_device: bool, bytes: usize) {
    let (n, b) = if to_device {
        (&TO_DEV, &TO_DEV_BYTES)
    } else {
        (&TO_HOST, &TO_HOST_BYTES)
    };
    n.fetch_add(1, Relaxed);
    b.fetch_add(bytes, Relaxed);
    LOCAL.with(|l| {
        let mut t = l.get();
        if to_device {
            t.to_device += 1;
            t.to_device_bytes += bytes;
        } else {
            t.to_host += 1;
            t.to_host_bytes += bytes;
        }
        l.set(t);
    });
}

/// Host↔GPU copies made by the whole process since it started.
pub fn transfers() -> Transfers {
    Transfers {
        to_device: TO_DEV.load(Relaxed),
        to_device_bytes: TO_DEV_BYTES.load(Relaxed),
        to_host: TO_HOST.load(Relaxed),
        to_host_bytes: TO_HOST_BYTES.load(Relaxed),
    }
}

/// Host↔GPU copies made by this thread (evaluation and reads run on the calling thread, so
/// a test counts its own copies even while other tests run).
pub fn thread_transfers() -> Transfers {
    LOCAL.with(|l| l.get())
}
