//! Convolution on the GPU through cuDNN (loaded at run time, like the rest of CUDA).
//!
//! ingot's convolutions are channels-last, x `(N, *spatial, C_in)` and w `(C_out, *kernel,
//! C_in / groups)`, which is cuDNN's NHWC tensor and filter format, so both go to cuDNN as
//! they are (after a copy only when not row-major). 1-D convolutions get a unit height.
//! Unequal low and high padding is applied first with the pad kernel (cuDNN pads both sides
//! alike). Transposed convolutions (input dilation) and complex dtypes still run on the CPU.
//!
//! f16 and bf16 accumulate in f32 on tensor cores; f32 uses plain FMA math unless TF32 is
//! allowed (`ingot::cuda::set_allow_tf32`), as for matmul; f64 computes in f64. With
//! `INGOT_CUDNN_GRAPH=1` (or `ingot::cuda::set_cudnn_graph(true)`; opt-in until it has
//! passed on a GPU) each problem first goes through cuDNN's graph API (conv_graph.rs: its
//! engines include the Hopper kernels the legacy call does not reach), with engines whose
//! numerics break those rules left out; otherwise, or where it has no plan, the legacy
//! `cudnnConvolutionForward` runs, its
//! algorithm chosen once per problem and cached: large problems time every algorithm
//! (cudnnFindConvolutionForwardAlgorithm), small ones take cuDNN's heuristic. What cuDNN
//! cannot describe or has no algorithm for (f64 channels-last, for one) runs on the CPU and
//! is counted as a fallback.

use super::conv_graph::{self, Plan, Problem};
use super::Gpu;
use crate::array::{Array, Data};
use crate::backend::cpu::strided::out_data;
use crate::buffer::Buffer;
use crate::dtype::DType;
use crate::op::PadMode;
use crate::shape::size_of;
use crate::{Error, Result, Scalar};
use cudarc::cudnn::{result as dnn, sys};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::ffi::c_int;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// The parameters of one convolution, as the op holds them.
pub(super) struct ConvParams<'a> {
    pub stride: &'a [usize],
    pub padding_lo: &'a [usize],
    pub padding_hi: &'a [usize],
    pub kernel_dilation: &'a [usize],
    pub input_dilation: &'a [usize],
    pub groups: usize,
    pub flip: bool,
}

struct Handle(sys::cudnnHandle_t);
// Safety: a cuDNN handle may be used from any thread, one at a time (the mutex below).
unsafe impl Send for Handle {}

/// One handle per GPU, bound to its stream; the lock is held while work is enqueued, since a
/// handle must not be used by two threads at once.
static HANDLES: Mutex<Vec<(usize, Handle)>> = Mutex::new(Vec::new());

type AlgoKey = (usize, Vec<c_int>, DType, bool);
type Algo = Option<(sys::cudnnConvolutionFwdAlgo_t, usize)>;
/// Chosen algorithm and workspace bytes by (GPU, problem, dtype, tf32); `None` where cuDNN
/// has none (the CPU computes those).
static ALGOS: Mutex<Option<HashMap<AlgoKey, Algo>>> = Mutex::new(None);

/// Graph-API plans by problem and address alignment; `None` where the graph API has no
/// plan (the legacy call is tried then).
type PlanCache = HashMap<(AlgoKey, i64), Option<Arc<Plan>>>;
static PLANS: Mutex<Option<PlanCache>> = Mutex::new(None);
thread_local! {
    /// Why the graph API last had no plan for a problem this thread asked about (for
    /// `conv_paths`; per thread, so concurrent tests read their own).
    static LAST_REFUSAL: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}
/// Whether convolutions try cuDNN's graph API first (plans cached per problem; the legacy
/// call where it has none): on unless `INGOT_CUDNN_GRAPH=0` or `set_cudnn_graph(false)`.
/// It passed the GPU conv suites on an H200 (2026-12-05).
static GRAPH_API: OnceLock<AtomicBool> = OnceLock::new();

fn graph_api() -> &'static AtomicBool {
    GRAPH_API.get_or_init(|| {
        AtomicBool::new(std::env::var_os("INGOT_CUDNN_GRAPH").is_none_or(|v| v != "0"))
    })
}

/// Lets convolutions go through cuDNN's graph API first (see `GRAPH_API`); for checking
/// that path on a GPU.
pub fn set_cudnn_graph(on: bool) {
    graph_api().store(on, Relaxed);
}

/// Convolutions enqueued through the graph API and through the legacy call.
static GRAPH_RUNS: AtomicUsize = AtomicUsize::new(0);
static LEGACY_RUNS: AtomicUsize = AtomicUsize::new(0);

/// How many convolutions ran through cuDNN's graph API and through its legacy call in this
/// process, and why the graph API last offered no plan for a problem asked about on this
/// thread (a diagnostic for tests and the bench).
#[doc(hidden)]
pub fn conv_paths() -> (usize, usize, Option<String>) {
    (
        GRAPH_RUNS.load(Relaxed),
        LEGACY_RUNS.load(Relaxed),
        LAST_REFUSAL.with(|r| r.borrow().clone()),
    )
}

fn dnn_err(what: &str, e: impl std::fmt::Debug) -> Error {
    Error::Backend {
        op: "conv".into(),
        msg: format!("cuDNN {what}: {e:?}"),
    }
}

fn dnn_dtype(dt: DType) -> Option<(sys::cudnnDataType_t, sys::cudnnDataType_t)> {
    use sys::cudnnDataType_t::*;
    Some(match dt {
        DType::F16 => (CUDNN_DATA_HALF, CUDNN_DATA_FLOAT),
        DType::BF16 => (CUDNN_DATA_BFLOAT16, CUDNN_DATA_FLOAT),
        DType::F32 => (CUDNN_DATA_FLOAT, CUDNN_DATA_FLOAT),
        DType::F64 => (CUDNN_DATA_DOUBLE, CUDNN_DATA_DOUBLE),
        _ => return None,
    })
}

/// Packed channels-last strides for cuDNN's dims order (N, C, *spatial).
fn nhwc_strides(dims: &[c_int]) -> Vec<c_int> {
    let (n_sp, c) = (dims.len() - 2, dims[1]);
    let mut st = vec![0; dims.len()];
    st[1] = 1;
    let mut acc = c;
    for i in (0..n_sp).rev() {
        st[2 + i] = acc;
        acc *= dims[2 + i];
    }
    st[0] = acc;
    st
}

/// Descriptors, destroyed on drop (also on an error path).
struct Descs {
    x: sys::cudnnTensorDescriptor_t,
    y: sys::cudnnTensorDescriptor_t,
    w: sys::cudnnFilterDescriptor_t,
    conv: sys::cudnnConvolutionDescriptor_t,
}

impl Drop for Descs {
    fn drop(&mut self) {
        // Safety: each was created by `Descs::new` and is destroyed once.
        unsafe {
            let _ = dnn::destroy_tensor_descriptor(self.x);
            let _ = dnn::destroy_tensor_descriptor(self.y);
            let _ = dnn::destroy_filter_descriptor(self.w);
            let _ = dnn::destroy_convolution_descriptor(self.conv);
        }
    }
}

impl Descs {
    fn new() -> Result<Descs> {
        let e = |e| dnn_err("descriptor", e);
        Ok(Descs {
            x: dnn::create_tensor_descriptor().map_err(e)?,
            y: dnn::create_tensor_descriptor().map_err(e)?,
            w: dnn::create_filter_descriptor().map_err(e)?,
            conv: dnn::create_convolution_descriptor().map_err(e)?,
        })
    }
}

/// Whether libcudnn can be loaded here.
fn available() -> bool {
    // Safety: only probes whether the shared library can be opened.
    unsafe { sys::is_culib_present() }
}

fn to_int(v: usize) -> Option<c_int> {
    c_int::try_from(v).ok()
}

/// `Conv` on the GPU; `None` hands it to the CPU.
pub(super) fn eval(
    g: &Gpu,
    inputs: &[Array],
    p: &ConvParams,
    out_shape: &[usize],
) -> Result<Option<Vec<Data>>> {
    let (x, w) = (&inputs[0], &inputs[1]);
    let dt = x.dtype();
    let nsp = x.ndim() - 2;
    let Some((data_t, compute_t)) = dnn_dtype(dt) else {
        return Ok(None);
    };
    if w.dtype() != dt || !(1..=3).contains(&nsp) || p.input_dilation.iter().any(|&d| d != 1) {
        return Ok(None);
    }
    let n_out = size_of(out_shape);
    if n_out == 0 {
        return Ok(Some(vec![out_data(
            Buffer::on_device(g.alloc(0)?),
            out_shape,
        )]));
    }
    // A reduction over nothing (no input channels or an empty input) is left to the CPU,
    // which writes its zeros; cuDNN refuses empty tensors.
    if size_of(x.shape()) == 0 || size_of(w.shape()) == 0 || !available() {
        return Ok(None);
    }
    // Unequal padding: pad explicitly, then convolve without padding.
    let mut x = x.clone();
    let mut pad: Vec<usize> = p.padding_lo.to_vec();
    if p.padding_lo != p.padding_hi {
        let mut low = vec![0usize; x.ndim()];
        let mut shape = x.shape().to_vec();
        for i in 0..nsp {
            low[1 + i] = p.padding_lo[i];
            shape[1 + i] += p.padding_lo[i] + p.padding_hi[i];
        }
        let zero = (&low[..], PadMode::Constant, Scalar::Float(0.0));
        let Some(mut d) = super::layout::pad(g, &x, zero, &shape)? else {
            return Ok(None);
        };
        x = Array::from_data(d.remove(0), shape, dt);
        pad = vec![0; nsp];
    }
    let (Some((_xs, xp)), Some((_ws, wp))) = (
        super::elementwise::row_major(g, &x)?,
        super::elementwise::row_major(g, w)?,
    ) else {
        return Ok(None);
    };
    // cuDNN's dims order: (N, C, *spatial); a 1-D convolution gets a unit height.
    let lift = |v: &[usize], unit: usize| -> Vec<usize> {
        if nsp == 1 {
            vec![unit, v[0]]
        } else {
            v.to_vec()
        }
    };
    let xsh = x.shape();
    let dims = |n: usize, c: usize, sp: &[usize]| -> Option<Vec<c_int>> {
        [n, c]
            .iter()
            .chain(lift(sp, 1).iter())
            .map(|&v| to_int(v))
            .collect()
    };
    let (Some(xd), Some(wd), Some(yd)) = (
        dims(xsh[0], xsh[nsp + 1], &xsh[1..nsp + 1]),
        dims(w.shape()[0], w.shape()[nsp + 1], &w.shape()[1..nsp + 1]),
        dims(out_shape[0], out_shape[nsp + 1], &out_shape[1..nsp + 1]),
    ) else {
        return Ok(None);
    };
    let ints = |v: Vec<usize>| -> Option<Vec<c_int>> { v.into_iter().map(to_int).collect() };
    let (Some(pads), Some(strides), Some(dils), Some(groups)) = (
        ints(lift(&pad, 0)),
        ints(lift(p.stride, 1)),
        ints(lift(p.kernel_dilation, 1)),
        to_int(p.groups),
    ) else {
        return Ok(None);
    };
    if size_of(xsh) > i32::MAX as usize || n_out > i32::MAX as usize {
        return Ok(None);
    }
    let tf32 = super::matmul::allow_tf32();
    let math = match dt {
        DType::F16 | DType::BF16 => sys::cudnnMathType_t::CUDNN_TENSOR_OP_MATH,
        DType::F32 if tf32 => sys::cudnnMathType_t::CUDNN_DEFAULT_MATH,
        _ => sys::cudnnMathType_t::CUDNN_FMA_MATH,
    };
    let mode = if p.flip {
        sys::cudnnConvolutionMode_t::CUDNN_CONVOLUTION
    } else {
        sys::cudnnConvolutionMode_t::CUDNN_CROSS_CORRELATION
    };
    let mem = g.alloc(n_out * dt.size())?;
    let yp = mem.ptr();
    // cuDNN works on the stream itself: the launches queued before it (the operands'
    // row-major copies) go first. Every block cuDNN writes is taken before the drain
    // (`scratch` for the workspaces below).
    g.stream()?;
    let mut handles = HANDLES.lock();
    let h = match handles.iter().find(|(o, _)| *o == g.ordinal) {
        Some((_, h)) => h.0,
        None => {
            let h = dnn::create_handle().map_err(|e| dnn_err("handle", e))?;
            // Safety: the handle was just made; the stream lives as long as the GPU.
            unsafe { dnn::set_stream(h, g.stream()?.cu_stream() as sys::cudaStream_t) }
                .map_err(|e| dnn_err("stream", e))?;
            handles.push((g.ordinal, Handle(h)));
            h
        }
    };
    // A thread recording a CUDA graph runs this convolution on the capture stream; the
    // handle is bound back before the lock is released.
    let bound = super::graph::Rebind::new(g, |s| {
        // Safety: the handle is this GPU's, used under HANDLES' lock; both streams live as
        // long as the GPU.
        unsafe { dnn::set_stream(h, s as sys::cudaStream_t) }.map_err(|e| dnn_err("stream", e))
    })?;
    let key: AlgoKey = (
        g.ordinal,
        [
            xd.clone(),
            wd.clone(),
            yd.clone(),
            pads.clone(),
            strides.clone(),
            dils.clone(),
            vec![groups, p.flip as c_int],
        ]
        .concat(),
        dt,
        tf32,
    );
    let (xst, yst) = (nhwc_strides(&xd), nhwc_strides(&yd));
    let macs = n_out * size_of(&w.shape()[1..]);
    if graph_api().load(Relaxed) {
        let align = [xp, wp, yp]
            .iter()
            .map(|&a| 1i64 << a.trailing_zeros().min(4))
            .min()
            .unwrap_or(1);
        let wst = nhwc_strides(&wd);
        let problem = Problem {
            data: data_t,
            compute: compute_t,
            x: &xd,
            w: &wd,
            y: &yd,
            x_strides: &xst,
            w_strides: &wst,
            y_strides: &yst,
            pads: &pads,
            strides: &strides,
            dilations: &dils,
            mode,
            align,
            f32: dt == DType::F32,
            tf32,
            double: dt == DType::F64,
        };
        if graph_forward(g, h, &key, &problem, (xp, wp, yp), macs >= 1 << 26)? {
            GRAPH_RUNS.fetch_add(1, Relaxed);
            drop(bound);
            drop(handles);
            return Ok(Some(vec![out_data(Buffer::on_device(mem), out_shape)]));
        }
    }
    let nb = xd.len() as c_int;
    let d = Descs::new()?;
    // A description cuDNN refuses (a dtype or layout it has no kernels for, such as f64
    // channels-last) sends the convolution to the CPU, where it is counted as a fallback.
    // Safety: every array passed outlives its call and holds `nb` (or nb - 2) ints.
    let described = unsafe {
        dnn::set_tensornd_descriptor(d.x, data_t, nb, xd.as_ptr(), xst.as_ptr())
            .and_then(|_| dnn::set_tensornd_descriptor(d.y, data_t, nb, yd.as_ptr(), yst.as_ptr()))
            .and_then(|_| {
                dnn::set_filternd_descriptor(
                    d.w,
                    data_t,
                    sys::cudnnTensorFormat_t::CUDNN_TENSOR_NHWC,
                    nb,
                    wd.as_ptr(),
                )
            })
            .and_then(|_| {
                dnn::set_convolutionnd_descriptor(
                    d.conv,
                    nb - 2,
                    pads.as_ptr(),
                    strides.as_ptr(),
                    dils.as_ptr(),
                    mode,
                    compute_t,
                )
            })
            .and_then(|_| dnn::set_convolution_math_type(d.conv, math))
            .and_then(|_| dnn::set_convolution_group_count(d.conv, groups))
    };
    if described.is_err() {
        return Ok(None);
    }
    let cached = ALGOS
        .lock()
        .get_or_insert_with(HashMap::new)
        .get(&key)
        .copied();
    let chosen = match cached {
        Some(c) => c,
        None => {
            // Choosing runs and times candidates: not while recording a CUDA graph (the
            // capture fails, and the cache is not filled with what a capture saw).
            super::graph::forbid(g.ordinal, "choosing a cuDNN algorithm")?;
            let c = choose_algo(h, &d, macs >= 1 << 26)?;
            ALGOS
                .lock()
                .get_or_insert_with(HashMap::new)
                .insert(key.clone(), c);
            c
        }
    };
    let Some((algo, ws)) = chosen else {
        if super::stats::enabled() {
            eprintln!(
                "ingot-cuda: conv to the CPU: cuDNN offered no algorithm for x {xd:?}, y {:?}",
                key.1
            );
        }
        return Ok(None);
    };
    let work = scratch(g, ws)?;
    let (one_f, zero_f) = (1f32, 0f32);
    let (one_d, zero_d) = (1f64, 0f64);
    let (alpha, beta) = if dt == DType::F64 {
        (
            &one_d as *const f64 as *const std::ffi::c_void,
            &zero_d as *const f64 as *const std::ffi::c_void,
        )
    } else {
        (
            &one_f as *const f32 as *const std::ffi::c_void,
            &zero_f as *const f32 as *const std::ffi::c_void,
        )
    };
    // Safety: x, w and y hold the elements their descriptors describe, on this GPU; the
    // workspace has `ws` bytes; alpha and beta point at values of the compute type.
    let ran = unsafe {
        dnn::convolution_forward(
            h,
            alpha,
            d.x,
            xp as *const std::ffi::c_void,
            d.w,
            wp as *const std::ffi::c_void,
            d.conv,
            algo,
            work.ptr() as *mut std::ffi::c_void,
            ws,
            beta,
            d.y,
            yp as *mut std::ffi::c_void,
        )
    };
    drop(bound);
    drop(handles);
    if let Err(e) = ran {
        super::graph::forbid(g.ordinal, &format!("cuDNN's {algo:?} ({e:?})"))?;
        if super::stats::enabled() {
            eprintln!("ingot-cuda: conv to the CPU: cuDNN refused algorithm {algo:?} ({ws} bytes of workspace) for x {xd:?}: {e:?}");
        }
        // cuDNN checks the call before it enqueues anything: an algorithm its heuristic
        // offered that then refuses the problem (seen as BAD_PARAM for small bf16 problems)
        // sends this problem to the CPU from now on, counted as a fallback.
        ALGOS
            .lock()
            .get_or_insert_with(HashMap::new)
            .insert(key, None);
        return Ok(None);
    }
    LEGACY_RUNS.fetch_add(1, Relaxed);
    // The workspace and any copies go back to the cache; later work runs after this.
    drop(work);
    Ok(Some(vec![out_data(Buffer::on_device(mem), out_shape)]))
}

/// A workspace for a cuDNN call, which works on the stream directly. The block may come
/// from the cache, freed by another thread while a kernel that reads it still waits in the
/// launch queue: the drain after taking it puts that kernel on the stream before cuDNN's
/// writes. (Run G25's wrong gradients on several threads: a drain made before taking the
/// workspace let cuDNN overwrite a max-pooling input that a queued kernel had yet to read.)
fn scratch(g: &Gpu, bytes: usize) -> Result<super::DeviceMem> {
    let work = g.alloc(bytes)?;
    g.stream()?;
    Ok(work)
}

/// cuDNN's fastest expected algorithm that works for the problem and whose workspace fits
/// in a quarter of the GPU's free memory; `None` when it has none. `timed` runs them all
/// and takes the fastest.
fn choose_algo(h: sys::cudnnHandle_t, d: &Descs, timed: bool) -> Result<Algo> {
    const N: usize = 8;
    // Safety: zeroed perf structs are valid (plain data), overwritten by cuDNN.
    let mut perf: [sys::cudnnConvolutionFwdAlgoPerf_t; N] = unsafe { std::mem::zeroed() };
    let mut count: c_int = 0;
    // Safety: `perf` has room for N results.
    // Large problems time every algorithm once (cuDNN's benchmark mode): the heuristic's
    // first choice for channels-last bf16 ran ResNet-50's convolutions at a third of the
    // speed of the best one. Small ones, where a wrong choice costs little, take the
    // heuristic, which runs nothing.
    let ask = if timed {
        sys::cudnnFindConvolutionForwardAlgorithm
    } else {
        sys::cudnnGetConvolutionForwardAlgorithm_v7
    };
    let asked = unsafe {
        ask(
            h,
            d.x,
            d.w,
            d.conv,
            d.y,
            N as c_int,
            &mut count,
            perf.as_mut_ptr(),
        )
    }
    .result();
    if asked.is_err() {
        return Ok(None);
    }
    let free = cudarc::driver::result::mem_get_info()
        .map(|(f, _)| f)
        .unwrap_or(usize::MAX);
    Ok(perf[..(count.max(0) as usize).min(N)]
        .iter()
        .find(|p| p.status == sys::cudnnStatus_t::CUDNN_STATUS_SUCCESS && p.memory <= free / 4)
        .map(|p| (p.algo, p.memory)))
}

/// Enqueues the convolution through the graph API when it has a plan for the problem;
/// `false` leaves it to the legacy call.
fn graph_forward(
    g: &Gpu,
    h: sys::cudnnHandle_t,
    key: &AlgoKey,
    p: &Problem,
    (xp, wp, yp): (u64, u64, u64),
    timed: bool,
) -> Result<bool> {
    let pkey = (key.clone(), p.align);
    let cached = PLANS
        .lock()
        .get_or_insert_with(HashMap::new)
        .get(&pkey)
        .cloned();
    let plan = match cached {
        Some(Some(plan)) => plan,
        Some(None) => return Ok(false),
        None => {
            super::graph::forbid(g.ordinal, "choosing a cuDNN plan")?;
            let chosen = choose_plan(g, h, p, (xp, wp, yp), timed)?;
            PLANS
                .lock()
                .get_or_insert_with(HashMap::new)
                .insert(pkey.clone(), chosen.clone());
            match chosen {
                Some(plan) => plan,
                None => return Ok(false),
            }
        }
    };
    let work = scratch(g, plan.workspace)?;
    if let Err(e) = conv_graph::execute(h, &plan, xp, wp, yp, work.ptr()) {
        // A plan that fails while a graph is recorded fails the capture, not the plan.
        super::graph::forbid(g.ordinal, &format!("the cuDNN plan ({e:?})"))?;
        if super::stats::enabled() {
            eprintln!("ingot-cuda: conv: the graph plan for x {:?} failed ({e:?}); legacy call from now on", p.x);
        }
        PLANS
            .lock()
            .get_or_insert_with(HashMap::new)
            .insert(pkey, None);
        return Ok(false);
    }
    Ok(true)
}

/// The plan to keep for a problem: the heuristic's first that builds, or for large problems
/// the fastest of its first four (each run three times on the real operands, like PyTorch's
/// benchmark mode). Plans whose workspace exceeds a quarter of the free memory are skipped.
fn choose_plan(
    g: &Gpu,
    h: sys::cudnnHandle_t,
    p: &Problem,
    (xp, wp, yp): (u64, u64, u64),
    timed: bool,
) -> Result<Option<Arc<Plan>>> {
    let (plans, skipped) = match conv_graph::plans(h, p, if timed { 4 } else { 1 }) {
        Ok(v) => v,
        Err(e) => (Vec::new(), vec![format!("building the graph: {e:?}")]),
    };
    if plans.is_empty() {
        let why = format!(
            "no graph plan for x {:?}, w {:?}: {}",
            p.x,
            p.w,
            skipped.join("; ")
        );
        if super::stats::enabled() {
            eprintln!("ingot-cuda: conv: {why}");
        }
        LAST_REFUSAL.with(|r| *r.borrow_mut() = Some(why));
        return Ok(None);
    }
    let free = cudarc::driver::result::mem_get_info()
        .map(|(f, _)| f)
        .unwrap_or(usize::MAX);
    let mut plans: Vec<Plan> = plans
        .into_iter()
        .filter(|pl| pl.workspace <= free / 4)
        .collect();
    if plans.len() <= 1 {
        return Ok(plans.pop().map(Arc::new));
    }
    let mut best: Option<(usize, f64)> = None;
    for (i, pl) in plans.iter().enumerate() {
        let work = scratch(g, pl.workspace)?;
        let run = || conv_graph::execute(h, pl, xp, wp, yp, work.ptr());
        if run().is_err() {
            continue;
        }
        g.synchronize()?;
        let t = Instant::now();
        if (0..3).any(|_| run().is_err()) {
            continue;
        }
        g.synchronize()?;
        let secs = t.elapsed().as_secs_f64() / 3.0;
        if best.is_none_or(|(_, b)| secs < b) {
            best = Some((i, secs));
        }
    }
    if super::stats::enabled() {
        if let Some((i, secs)) = best {
            eprintln!(
                "ingot-cuda: conv x {:?} w {:?}: plan {i} of {} ({:.1} us)",
                p.x,
                p.w,
                plans.len(),
                secs * 1e6
            );
        }
    }
    Ok(best.map(|(i, _)| Arc::new(plans.swap_remove(i))))
}
