//! CUDA graphs for compiled functions: a compiled program's kernels are recorded once (stream
//! capture) and replayed with one `cuGraphLaunch`, so a step of hundreds of small ops costs
//! one launch instead of hundreds (about 3 us of host time each on the H100 machines here).
//!
//! A [`Replayer`] belongs to one compiled program (one input signature). Its first call runs
//! the program as usual and evaluates it, which builds every kernel; its second captures it:
//! - The program runs on copies of the inputs in buffers the graph owns (its *static
//!   inputs*): every replay first copies the caller's inputs there (one device-to-device copy
//!   each), since the recorded kernels read fixed addresses. Constants the function closed
//!   over are read in place; the program holds them.
//! - Every allocation made while capturing comes from a private pool ([`GraphPool`]), so the
//!   memory the recorded kernels write belongs to the graph and nothing else reuses it.
//!   Outputs are blocks of that pool: a replay writes them again, so it runs only once the
//!   previous call's outputs are gone. While they are still held (a training loop passing
//!   them back in), a second instance is captured with its own pool; when both are busy the
//!   call runs uncaptured.
//! - Capturing runs on a stream of its own (per GPU, one capture at a time), so other threads
//!   keep using the GPU's stream meanwhile; cuBLAS gets a handle bound to it, cuDNN and
//!   cuFFT are bound to it for the call. Anything that cannot be recorded (a copy from the
//!   host, a host read or synchronization, an op that falls back to the CPU, a collective)
//!   fails the capture, and the program then always runs uncaptured: correct, not faster.
//! - Indices on the GPU (take, gather, scatter) are bounds-checked by a kernel that records
//!   the first bad position; run as usual, the host waits for that word. A graph cannot
//!   wait, so a bad index resolves to position 0 (a safe read) and the graph copies the
//!   word to pinned host memory ([`IndexCheck`]): the next time the host waits for the GPU
//!   (reading any array of it, `synchronize`), a bad index of any replay since is the
//!   error, reported once.

use super::{cuda_err, Gpu};
use crate::array::{retaining_graph, Array, Data};
use crate::buffer::Buffer;
use crate::transforms::{Graph, Source};
use crate::{Error, Result};
use cudarc::driver::sys::CUstream;
use cudarc::driver::{CudaGraph, CudaStream};
use parking_lot::Mutex;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Weak};

use super::alloc::DeviceMem;

/// The memory one captured graph writes: blocks taken from the GPU's cache, handed out while
/// capturing and reused within the capture as its intermediates are freed. They go back to
/// the GPU's cache when the pool is dropped (after the graph and its last output).
pub(crate) struct GraphPool {
    owned: Mutex<Vec<DeviceMem>>,
    free: Mutex<BTreeMap<usize, Vec<u64>>>,
    /// Set after the capture: blocks freed later (replays' outputs) stay where they are.
    sealed: AtomicBool,
}

impl GraphPool {
    fn new() -> Arc<GraphPool> {
        Arc::new(GraphPool {
            owned: Mutex::new(Vec::new()),
            free: Mutex::new(BTreeMap::new()),
            sealed: AtomicBool::new(false),
        })
    }

    pub(crate) fn alloc(self: &Arc<Self>, g: &Gpu, nbytes: usize) -> Result<DeviceMem> {
        let class = DeviceMem::class_of(nbytes);
        if class == 0 {
            return DeviceMem::alloc_cached(g, 0);
        }
        let reused = self.free.lock().get_mut(&class).and_then(|v| v.pop());
        let ptr = match reused {
            Some(p) => p,
            None => {
                let m = DeviceMem::alloc_cached(g, class)?;
                let p = m.ptr();
                self.owned.lock().push(m);
                p
            }
        };
        Ok(DeviceMem::pooled(ptr, nbytes, g.ordinal, self.clone()))
    }

    /// A block freed while capturing: later allocations of the capture may reuse it (the
    /// graph runs them after its last use, in stream order).
    pub(crate) fn give_back(&self, ptr: u64, class: usize) {
        if !self.sealed.load(Relaxed) {
            self.free.lock().entry(class).or_default().push(ptr);
        }
    }

    fn owns(&self, ptr: u64) -> bool {
        self.owned.lock().iter().any(|m| m.ptr() == ptr)
    }

    fn bytes(&self) -> usize {
        self.owned.lock().iter().map(|m| m.len()).sum()
    }
}

struct Capture {
    ordinal: usize,
    pool: Arc<GraphPool>,
    /// The index checks recorded (`defer_index_check`).
    checks: Vec<Arc<IndexCheck>>,
    /// Taken when a cuFFT plan is recorded (under the plan cache's lock): its work area
    /// must outlive the graph.
    fft: Option<super::fft::PlanPin>,
}

thread_local! {
    static CAPTURE: RefCell<Option<Capture>> = const { RefCell::new(None) };
}

/// Captures in progress in the process: while none is, the per-launch check is one load.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

/// `f` of this thread's capture for GPU `ordinal`, if it is recording one.
fn with_capture<T>(ordinal: usize, f: impl FnOnce(&Capture) -> T) -> Option<T> {
    if ACTIVE.load(Relaxed) == 0 {
        return None;
    }
    CAPTURE.with(|c| c.borrow().as_ref().filter(|c| c.ordinal == ordinal).map(f))
}

/// Whether this thread is capturing work for GPU `ordinal`.
pub(crate) fn capturing(ordinal: usize) -> bool {
    with_capture(ordinal, |_| ()).is_some()
}

/// The pool this thread's allocations for GPU `ordinal` come from while capturing.
pub(crate) fn capture_pool(ordinal: usize) -> Option<Arc<GraphPool>> {
    with_capture(ordinal, |c| c.pool.clone())
}

/// Binds a library handle (cuDNN's, a cuFFT plan) to the capture stream while this thread
/// records a graph for its GPU, and back to the GPU's stream when dropped, also when the
/// call unwinds. Held only under the library's lock, so no other thread sees the binding.
pub(crate) struct Rebind<'a, F: Fn(CUstream) -> Result<()>> {
    g: &'a Gpu,
    set: F,
    bound: bool,
}

impl<'a, F: Fn(CUstream) -> Result<()>> Rebind<'a, F> {
    pub(crate) fn new(g: &'a Gpu, set: F) -> Result<Self> {
        let bound = match g.capturing_stream() {
            Some(s) => {
                set(s.cu_stream())?;
                true
            }
            None => false,
        };
        Ok(Rebind { g, set, bound })
    }

    /// Whether the handle is bound to the capture stream.
    pub(crate) fn is_bound(&self) -> bool {
        self.bound
    }
}

impl<F: Fn(CUstream) -> Result<()>> Drop for Rebind<'_, F> {
    fn drop(&mut self) {
        if self.bound {
            let _ = (self.set)(self.g.main_stream().cu_stream());
        }
    }
}

/// Notes that the capture on this thread recorded a cuFFT plan.
pub(crate) fn note_fft_plan() {
    with_own_capture(|c| {
        c.fft.get_or_insert_with(super::fft::PlanPin::new);
    });
}

/// `f` of the capture this thread is recording, if any.
fn with_own_capture<T>(f: impl FnOnce(&mut Capture) -> T) -> Option<T> {
    CAPTURE.with(|c| c.borrow_mut().as_mut().map(f))
}

/// The bounds check of one recorded index op: the graph copies the op's "first bad
/// position" word (u64::MAX when every index was in bounds) into `host`, pinned memory.
pub(crate) struct IndexCheck {
    ordinal: usize,
    op: String,
    host: *mut u64,
}

// Safety: `host` is pinned memory owned by the check; the GPU writes it only by the graph's
// copy, and the host reads and resets it under CHECKS' lock.
unsafe impl Send for IndexCheck {}
unsafe impl Sync for IndexCheck {}

impl Drop for IndexCheck {
    fn drop(&mut self) {
        // Safety: allocated by malloc_host in `defer_index_check`; the graph that writes it
        // (held by the same instance) is destroyed first or never ran.
        unsafe {
            let _ = cudarc::driver::result::free_host(self.host.cast());
        }
    }
}

/// Every live index check, looked through when the host waits for a GPU.
static CHECKS: Mutex<Vec<Weak<IndexCheck>>> = Mutex::new(Vec::new());
static NCHECKS: AtomicUsize = AtomicUsize::new(0);

/// Records, while this thread captures for `g`, a copy of the word `bad` (the first bad
/// index position of `op`, written by kernels just recorded) into pinned memory checked by
/// [`check_indices`]. `Ok(false)` when not capturing: the caller waits for the word itself.
pub(crate) fn defer_index_check(g: &Gpu, op: &str, bad: u64) -> Result<bool> {
    if !capturing(g.ordinal) {
        return Ok(false);
    }
    // Safety: 8 bytes of pinned host memory, freed by IndexCheck's drop.
    let host = unsafe { cudarc::driver::result::malloc_host(8, 0) }
        .map_err(|e| cuda_err("cuda graph index check", e))? as *mut u64;
    // Safety: `host` is 8 writable bytes, no GPU work writes it yet.
    unsafe { host.write_volatile(u64::MAX) };
    let check = Arc::new(IndexCheck {
        ordinal: g.ordinal,
        op: op.to_string(),
        host,
    });
    // Safety: a recorded copy of 8 bytes from a block of this GPU into pinned memory that
    // lives as long as the graph (its instance holds the check).
    unsafe {
        let dst = std::slice::from_raw_parts_mut(host, 1);
        cudarc::driver::result::memcpy_dtoh_async(dst, bad, g.stream()?.cu_stream())
    }
    .map_err(|e| cuda_err("cuda graph index check", e))?;
    with_own_capture(|c| c.checks.push(check.clone()));
    let mut all = CHECKS.lock();
    all.retain(|w| w.strong_count() > 0);
    all.push(Arc::downgrade(&check));
    NCHECKS.store(all.len(), Relaxed);
    Ok(true)
}

/// After the host waited for GPU `ordinal`: an error for the first bad index a graph
/// replay met since the last check (then forgotten, so it is reported once).
pub(crate) fn check_indices(ordinal: usize) -> Result<()> {
    if NCHECKS.load(Relaxed) == 0 {
        return Ok(());
    }
    let all = CHECKS.lock();
    for c in all.iter().filter_map(Weak::upgrade) {
        if c.ordinal != ordinal {
            continue;
        }
        // Safety: pinned memory of the check; the GPU is idle (the caller waited).
        let j = unsafe { c.host.read_volatile() };
        if j != u64::MAX {
            unsafe { c.host.write_volatile(u64::MAX) };
            return Err(Error::invalid(
                &c.op,
                format!(
                    "index at position {j} is out of bounds (found after a CUDA-graph replay of a compiled function; the outputs of that call are wrong)"
                ),
            ));
        }
    }
    Ok(())
}

/// An error if this thread is capturing for GPU `ordinal`: `what` cannot be recorded.
pub(crate) fn forbid(ordinal: usize, what: &str) -> Result<()> {
    if capturing(ordinal) {
        return Err(Error::unsupported(
            "cuda graph",
            format!("{what} cannot be recorded in a CUDA graph"),
        ));
    }
    Ok(())
}

/// Marks this thread as capturing until dropped (also on an error or a panic; a panic
/// also ends the stream's capture, so the stream is usable again).
struct CaptureScope {
    stream: Arc<CudaStream>,
}

impl CaptureScope {
    fn begin(c: Capture, stream: Arc<CudaStream>) -> CaptureScope {
        CAPTURE.with(|x| *x.borrow_mut() = Some(c));
        ACTIVE.fetch_add(1, Relaxed);
        CaptureScope { stream }
    }

    /// What the graph must keep that the capture took: the pin on the plan cache, if it
    /// recorded a cuFFT plan, and its index checks.
    fn take_kept(&self) -> (Option<super::fft::PlanPin>, Vec<Arc<IndexCheck>>) {
        with_own_capture(|c| (c.fft.take(), std::mem::take(&mut c.checks))).unwrap_or_default()
    }
}

impl Drop for CaptureScope {
    fn drop(&mut self) {
        CAPTURE.with(|x| x.borrow_mut().take());
        ACTIVE.fetch_sub(1, Relaxed);
        if std::thread::panicking() {
            // Safety: the stream is this GPU's capture stream; the graph, if any, is dropped.
            unsafe {
                if let Ok(graph) =
                    cudarc::driver::result::stream::end_capture(self.stream.cu_stream())
                {
                    if !graph.is_null() {
                        let _ = cudarc::driver::result::graph::destroy(graph);
                    }
                }
            }
        }
    }
}

/// How many instances (each with its own memory) one program may have: two lets a loop
/// that feeds a call's outputs to the next call replay every time.
const MAX_INSTANCES: usize = 2;

/// Counters of one compiled function's CUDA graphs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GraphStats {
    /// Graphs recorded.
    pub captures: usize,
    /// Calls answered by launching a recorded graph (captures included).
    pub replays: usize,
    /// Calls after the first that ran uncaptured (capture failed, or every instance's
    /// outputs were still held).
    pub uncaptured: usize,
    /// Bytes of GPU memory the recorded graphs own (static inputs, intermediates, outputs).
    pub bytes: usize,
}

/// The CUDA graphs of one compiled program.
#[derive(Default)]
pub struct Replayer {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Whether the first call (run as usual, building every kernel) has been made.
    warmed: bool,
    /// Why the program cannot be captured, once a capture failed.
    off: Option<String>,
    instances: Vec<Instance>,
    stats: GraphStats,
}

/// A static input: the graph's copy of one input, with the layout it was recorded with.
struct StaticInput {
    _array: Array,
    ptr: u64,
    len: usize,
    strides: Vec<isize>,
    offset: usize,
    /// The buffer last copied in, held so it can be neither freed nor written in place
    /// (donated): passing the same buffer again (weights given as inputs) needs no copy.
    last: Option<Arc<Buffer>>,
}

/// Where an output of the program comes from.
enum OutSpec {
    /// The caller's input or the program's constant itself.
    Input(usize),
    Const(usize),
    /// A view of an input's or a constant's memory (a reshape the graph did not copy).
    InputView(usize, Vec<isize>, usize),
    ConstView(usize, Vec<isize>, usize),
    /// A view of output block `.0` (an index into `Instance::blocks`).
    Block(usize, Vec<isize>, usize),
}

/// A recorded graph, instantiated.
struct Exec(CudaGraph);

// Safety: the driver's graph objects may be used from any thread as long as calls on one are
// serialized; an Exec is only reached under its Replayer's lock.
unsafe impl Send for Exec {}

struct Instance {
    /// The program recorded: its constants are read in place by the graph.
    program: Arc<Graph>,
    exec: Exec,
    pool: Arc<GraphPool>,
    inputs: Vec<StaticInput>,
    outputs: Vec<OutSpec>,
    /// The output blocks: address and length.
    blocks: Vec<(u64, usize)>,
    /// The buffers handed out by the last launch: the next replay waits until all are gone.
    handed: Vec<Weak<Buffer>>,
    /// Held when the graph ran cuFFT: its plans' work areas stay.
    _fft: Option<super::fft::PlanPin>,
    /// The index checks the graph writes (after `exec` in drop order: `exec` goes first).
    _checks: Vec<Arc<IndexCheck>>,
}

impl Replayer {
    pub fn stats(&self) -> GraphStats {
        let st = self.inner.lock();
        let mut s = st.stats;
        s.bytes = st.instances.iter().map(|i| i.pool.bytes()).sum();
        s
    }

    /// Why the program runs uncaptured, if a capture failed.
    pub fn uncapturable(&self) -> Option<String> {
        self.inner.lock().off.clone()
    }

    /// Runs `program` on `inputs` on GPU `ordinal` through its CUDA graph, or returns `None`
    /// where the caller should run it as usual (under a transform, or when it cannot be
    /// captured). The outputs are computed (queued) when this returns.
    pub fn call(
        &self,
        ordinal: usize,
        program: &Arc<Graph>,
        inputs: &[Array],
    ) -> Result<Option<Vec<Array>>> {
        // A transform tracing through the call needs the lazy graph, not computed outputs.
        if retaining_graph() {
            return Ok(None);
        }
        let mut st = self.inner.lock();
        if st.off.is_some() {
            return Ok(None);
        }
        let g = super::gpu(ordinal)?;
        crate::eval(inputs)?;
        if !std::mem::replace(&mut st.warmed, true) {
            // Run once as usual, so every kernel is built (and every library plan made)
            // before anything is recorded.
            let ys = program.call(inputs)?;
            crate::eval(&ys)?;
            return Ok(Some(ys));
        }
        if let Some(inst) = st
            .instances
            .iter_mut()
            .find(|i| i.is_free() && i.fits(inputs))
        {
            let ys = inst.launch(&g, inputs)?;
            st.stats.replays += 1;
            return Ok(Some(ys));
        }
        if st.instances.len() >= MAX_INSTANCES {
            st.stats.uncaptured += 1;
            return Ok(None);
        }
        match capture(&g, program, inputs) {
            Ok(mut inst) => {
                let ys = inst.launch(&g, inputs)?;
                st.instances.push(inst);
                st.stats.captures += 1;
                st.stats.replays += 1;
                Ok(Some(ys))
            }
            Err(e) => {
                st.off = Some(e.to_string());
                st.stats.uncaptured += 1;
                Ok(None)
            }
        }
    }
}

impl Instance {
    fn is_free(&self) -> bool {
        self.handed.iter().all(|w| w.strong_count() == 0)
    }

    /// Whether `inputs` have the layouts the graph was recorded with.
    fn fits(&self, inputs: &[Array]) -> bool {
        inputs.iter().zip(&self.inputs).all(|(x, s)| {
            let d = x.ready_data();
            d.buffer.len() == s.len && d.strides == s.strides && d.offset == s.offset
        })
    }

    /// Copies `inputs` into the static inputs, launches the graph on the GPU's stream and
    /// returns the outputs (fresh buffers over the pool's output blocks).
    fn launch(&mut self, g: &Gpu, inputs: &[Array]) -> Result<Vec<Array>> {
        let ord = g.ordinal;
        let program = self.program.clone();
        // Inputs whose buffer is the one copied in last time are there already (buffers
        // are immutable once shared, and the held reference rules out donation).
        let mut copies = Vec::new();
        let mut lasts = Vec::with_capacity(inputs.len());
        for (x, s) in inputs.iter().zip(&self.inputs) {
            let buf = x.ready_data().buffer;
            if s.len == 0 || s.last.as_ref().is_some_and(|b| Arc::ptr_eq(b, &buf)) {
                lasts.push(s.last.clone());
                continue;
            }
            // Uploads a host input first (on the GPU's stream, before the copies).
            copies.push((buf.device_ptr(ord)?, s.ptr, s.len));
            // A graph's output is not held: that would keep its graph from replaying (a
            // loop feeding outputs back in would stall both instances).
            lasts.push((!buf.in_graph_pool()).then_some(buf));
        }
        // Until the graph is launched, no static input is known to hold anything.
        for s in &mut self.inputs {
            s.last = None;
        }
        let stream = g.stream()?;
        for (src, dst, len) in copies {
            // Safety: both blocks hold `len` bytes on this GPU; the caller's buffer lives
            // until the copy has run (freed memory is reused only by later work).
            unsafe { cudarc::driver::result::memcpy_dtod_async(dst, src, len, stream.cu_stream()) }
                .map_err(|e| cuda_err("cuda graph input", e))?;
        }
        // Safety: the graph was recorded on this GPU; everything it reads and writes is
        // owned by this instance, the program's constants or the static inputs above.
        unsafe {
            cudarc::driver::result::graph::launch(self.exec.0.cu_graph_exec(), stream.cu_stream())
        }
        .map_err(|e| cuda_err("cuda graph launch", e))?;
        for (s, last) in self.inputs.iter_mut().zip(lasts) {
            s.last = last;
        }
        let bufs: Vec<Arc<Buffer>> = self
            .blocks
            .iter()
            .map(|&(ptr, len)| {
                Arc::new(Buffer::on_device(DeviceMem::pooled(
                    ptr,
                    len,
                    ord,
                    self.pool.clone(),
                )))
            })
            .collect();
        self.handed = bufs.iter().map(Arc::downgrade).collect();
        let view = |buffer: Arc<Buffer>, strides: &[isize], offset: usize| Data {
            buffer,
            strides: strides.to_vec(),
            offset,
        };
        let mut ys = Vec::with_capacity(self.outputs.len());
        for (spec, &v) in self.outputs.iter().zip(&program.outputs) {
            let (shape, dtype) = (program.values[v].shape.clone(), program.values[v].dtype);
            let data = match spec {
                OutSpec::Input(i) => {
                    ys.push(inputs[*i].clone());
                    continue;
                }
                OutSpec::Const(c) => {
                    ys.push(program.consts[*c].clone());
                    continue;
                }
                OutSpec::InputView(i, st, off) => view(inputs[*i].ready_data().buffer, st, *off),
                OutSpec::ConstView(c, st, off) => {
                    view(program.consts[*c].ready_data().buffer, st, *off)
                }
                OutSpec::Block(b, st, off) => view(bufs[*b].clone(), st, *off),
            };
            ys.push(Array::from_data(data, shape, dtype));
        }
        Ok(ys)
    }
}

/// Records `program` on GPU `g` for inputs laid out as `inputs` are.
fn capture(g: &Gpu, program: &Arc<Graph>, inputs: &[Array]) -> Result<Instance> {
    let ord = g.ordinal;
    if let Some(a) = program
        .apps
        .iter()
        .find(|a| matches!(a.op, crate::op::Op::Collective { .. }))
    {
        return Err(Error::unsupported(
            "cuda graph",
            format!("{} runs on the collectives' stream", a.op.name()),
        ));
    }
    // Constants must be on the GPU before recording (an upload cannot be recorded).
    crate::eval(&program.consts)?;
    let mut const_ptrs = Vec::with_capacity(program.consts.len());
    for c in &program.consts {
        const_ptrs.push(c.ready_data().buffer.device_ptr(ord)?);
    }
    let pool = GraphPool::new();
    let mut statics = Vec::with_capacity(inputs.len());
    let mut static_arrays = Vec::with_capacity(inputs.len());
    for x in inputs {
        let d = x.ready_data();
        let len = d.buffer.len();
        let mem = pool.alloc(g, len)?;
        let ptr = mem.ptr();
        let a = Array::from_data(
            Data {
                buffer: Arc::new(Buffer::on_device(mem)),
                strides: d.strides.clone(),
                offset: d.offset,
            },
            x.shape().to_vec(),
            x.dtype(),
        );
        static_arrays.push(a.clone());
        statics.push(StaticInput {
            _array: a,
            ptr,
            len,
            strides: d.strides.clone(),
            offset: d.offset,
            last: None,
        });
    }
    let stream = g.capture_stream()?;
    super::matmul::prepare_capture(g)?;
    let _one = g.capture_lock.lock();
    let exec;
    let ys;
    let fft;
    let checks;
    {
        let scope = CaptureScope::begin(
            Capture {
                ordinal: ord,
                pool: pool.clone(),
                checks: Vec::new(),
                fft: None,
            },
            stream.clone(),
        );
        use cudarc::driver::sys::CUstreamCaptureMode;
        // Relaxed: allocating from the driver (the pool growing) is allowed while capturing.
        stream
            .begin_capture(CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_RELAXED)
            .map_err(|e| cuda_err("cuda graph capture", e))?;
        let ran = program.call(&static_arrays).and_then(|ys| {
            crate::eval(&ys)?;
            Ok(ys)
        });
        // Ended whatever happened, so the stream leaves capture mode.
        let ended = stream.end_capture(cudarc::driver::sys::CUgraphInstantiate_flags(0));
        (fft, checks) = scope.take_kept();
        ys = ran?;
        exec = ended
            .map_err(|e| cuda_err("cuda graph capture", e))?
            .ok_or_else(|| Error::unsupported("cuda graph", "the program has no GPU work"))?;
    }
    pool.sealed.store(true, Relaxed);
    let mut outputs = Vec::with_capacity(ys.len());
    let mut blocks: Vec<(u64, usize)> = Vec::new();
    for (y, &v) in ys.iter().zip(&program.outputs) {
        match program.values[v].source {
            Source::Input(i) => outputs.push(OutSpec::Input(i)),
            Source::Const(c) => outputs.push(OutSpec::Const(c)),
            Source::Op { .. } => {
                let d = y.ready_data();
                let len = d.buffer.len();
                let ptr = d.buffer.device_address().ok_or_else(|| {
                    Error::unsupported("cuda graph", "an output was computed on the host")
                })?;
                let (st, off) = (d.strides.clone(), d.offset);
                if let Some(i) = statics.iter().position(|s| s.len > 0 && s.ptr == ptr) {
                    outputs.push(OutSpec::InputView(i, st, off));
                } else if let Some(c) = const_ptrs.iter().position(|&p| len > 0 && p == ptr) {
                    outputs.push(OutSpec::ConstView(c, st, off));
                } else if len == 0 || pool.owns(ptr) {
                    let b = match blocks.iter().position(|&(p, l)| p == ptr && l == len) {
                        Some(b) => b,
                        None => {
                            blocks.push((ptr, len));
                            blocks.len() - 1
                        }
                    };
                    outputs.push(OutSpec::Block(b, st, off));
                } else {
                    return Err(Error::unsupported(
                        "cuda graph",
                        "an output is memory the graph does not own",
                    ));
                }
            }
        }
    }
    Ok(Instance {
        program: program.clone(),
        exec: Exec(exec),
        pool,
        inputs: statics,
        outputs,
        blocks,
        handed: Vec::new(),
        _fft: fft,
        _checks: checks,
    })
}
