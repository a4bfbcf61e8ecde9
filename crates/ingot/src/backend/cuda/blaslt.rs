//! Products through cuBLASLt, which `matmul.rs` tries before cublasGemmStridedBatchedEx.
//! A product's descriptors and algorithm are made once per problem (shape, layouts, dtype,
//! pointer alignment) and kept. Large products time cuBLASLt's first candidates once and
//! keep the fastest, as cuDNN's benchmark mode does for convolutions: its heuristic's first
//! choice for an 8192^3 f16 product ran 8% slower than PyTorch's (run G27).
//!
//! `INGOT_CUDA_GEMM` picks: `tune` (the default: timing for products of at least 2^33
//! multiply-adds, the heuristic's first below), `lt` (the heuristic's first always, the same
//! algorithm on every run of every process), `ex` (cublasGemmStridedBatchedEx alone, the path
//! before cuBLASLt; `fast::linear` then builds its decomposition on a CUDA device).

use super::Gpu;
use crate::dtype::DType;
use crate::op::LinearAct;
use cudarc::cublaslt::sys;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Mode {
    Ex,
    Heuristic,
    Tune,
}

/// Whether products go to cuBLASLt first (unless `INGOT_CUDA_GEMM=ex`).
pub fn enabled() -> bool {
    mode() != Mode::Ex
}

/// Whether a `fast::linear` of `rows` rows is one node on a CUDA device (one cuBLASLt call
/// with its epilogue): cuBLASLt is on and there are more rows than ingot's matrix-vector
/// kernel takes (a decoded token's few rows run faster there than in any cuBLAS call).
pub(crate) fn takes_linear(rows: usize) -> bool {
    enabled() && rows > super::matmul::GEMV_MAX_ROWS
}

pub(super) fn mode() -> Mode {
    static M: OnceLock<Mode> = OnceLock::new();
    *M.get_or_init(|| match std::env::var("INGOT_CUDA_GEMM").as_deref() {
        Ok("ex") => Mode::Ex,
        Ok("lt") => Mode::Heuristic,
        _ => Mode::Tune,
    })
}

/// Products of at least this many multiply-adds time their candidates (about 25 us each on
/// an H100 in f16): below it the timing would cost more than any choice saves.
const TUNE_MIN_MACS: u64 = 1 << 33;

/// How many of the heuristic's candidates a tuned product times.
const TUNE_CANDIDATES: i32 = 8;

/// Kept plans at most; past it the cache starts over (a decoder sees a new length per
/// token, each a small plan).
const MAX_PLANS: usize = 4096;

/// One operand as cuBLAS sees it (column-major): transposed or not, leading dimension,
/// batch stride, and the alignment of its pointer (which decides the kernels it may take).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(super) struct Operand {
    pub trans: bool,
    pub ld: i64,
    pub batch_stride: i64,
    pub ptr: u64,
}

/// A product `d = a b` of `batch` column-major matrices: `a` is `m x k` after its
/// transpose, `b` is `k x n`, `d` is `m x n`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Problem {
    pub dtype: DType,
    pub tf32: bool,
    pub m: u64,
    pub n: u64,
    pub k: u64,
    pub batch: u64,
    pub a: Operand,
    pub b: Operand,
    pub d: Operand,
    /// The epilogue: an activation, and a bias of `m` values (one per row of `d`, a column
    /// of ingot's row-major result) at this address.
    pub act: LinearAct,
    pub bias: Option<u64>,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    dtype: DType,
    tf32: bool,
    act: LinearAct,
    /// log2 of the bias pointer's alignment, when there is a bias.
    bias: Option<u32>,
    dims: [u64; 4],
    /// (trans, ld, batch stride, log2 of the pointer's alignment up to 256 bytes).
    ops: [(bool, i64, i64, u32); 3],
}

impl Problem {
    fn key(&self) -> Key {
        let op = |o: &Operand| (o.trans, o.ld, o.batch_stride, align_log2(o.ptr));
        Key {
            dtype: self.dtype,
            tf32: self.tf32,
            act: self.act,
            bias: self.bias.map(align_log2),
            dims: [self.m, self.n, self.k, self.batch],
            ops: [op(&self.a), op(&self.b), op(&self.d)],
        }
    }
}

fn align_log2(ptr: u64) -> u32 {
    ptr.trailing_zeros().min(8)
}

/// The cuBLASLt handle of one cuBLAS handle (`matmul::Blas`), with its plans.
pub(super) struct Lt {
    handle: sys::cublasLtHandle_t,
    /// `None` where cuBLASLt offered nothing: that problem goes to cublasGemmEx.
    plans: parking_lot::Mutex<HashMap<Key, Option<Arc<Plan>>>>,
}
// The handle is used under `Blas::call` (one product at a time).
unsafe impl Send for Lt {}
unsafe impl Sync for Lt {}

impl Lt {
    pub(super) fn new() -> Option<Lt> {
        // Safety: probes the library before any call into it.
        if !unsafe { sys::is_culib_present() } {
            return None;
        }
        let handle = cudarc::cublaslt::result::create_handle().ok()?;
        Some(Lt {
            handle,
            plans: parking_lot::Mutex::new(HashMap::new()),
        })
    }
}

impl Drop for Lt {
    fn drop(&mut self) {
        self.plans.get_mut().clear();
        // Safety: made by `new`, dropped once.
        unsafe {
            let _ = cudarc::cublaslt::result::destroy_handle(self.handle);
        }
    }
}

/// Descriptors and the chosen algorithm of one problem.
struct Plan {
    desc: sys::cublasLtMatmulDesc_t,
    layouts: [sys::cublasLtMatrixLayout_t; 3],
    algo: sys::cublasLtMatmulAlgo_t,
    /// Which of the heuristic's candidates won, of how many (for INGOT_CUDA_STATS).
    chosen: (usize, usize),
}
unsafe impl Send for Plan {}
unsafe impl Sync for Plan {}

impl Drop for Plan {
    fn drop(&mut self) {
        // Safety: made by `describe`, dropped once.
        unsafe {
            let _ = cudarc::cublaslt::result::destroy_matmul_desc(self.desc);
            for l in self.layouts {
                if !l.is_null() {
                    let _ = cudarc::cublaslt::result::destroy_matrix_layout(l);
                }
            }
        }
    }
}

fn types(
    p: &Problem,
) -> Option<(
    sys::cudaDataType,
    sys::cublasComputeType_t,
    sys::cudaDataType,
)> {
    use sys::cublasComputeType_t as C;
    use sys::cudaDataType as T;
    Some(match p.dtype {
        DType::F16 => (T::CUDA_R_16F, C::CUBLAS_COMPUTE_32F, T::CUDA_R_32F),
        DType::BF16 => (T::CUDA_R_16BF, C::CUBLAS_COMPUTE_32F, T::CUDA_R_32F),
        DType::F32 if p.tf32 => (
            T::CUDA_R_32F,
            C::CUBLAS_COMPUTE_32F_FAST_TF32,
            T::CUDA_R_32F,
        ),
        DType::F32 => (T::CUDA_R_32F, C::CUBLAS_COMPUTE_32F, T::CUDA_R_32F),
        DType::F64 => (T::CUDA_R_64F, C::CUBLAS_COMPUTE_64F, T::CUDA_R_64F),
        _ => return None,
    })
}

fn st(s: sys::cublasStatus_t) -> std::result::Result<(), String> {
    s.result().map_err(|e| format!("cuBLASLt: {e:?}"))
}

/// Sets one attribute from a plain value.
macro_rules! attr {
    ($f:ident, $obj:expr, $a:expr, $v:expr) => {{
        let v = $v;
        st(sys::$f(
            $obj,
            $a,
            &v as *const _ as *const std::ffi::c_void,
            std::mem::size_of_val(&v),
        ))
    }};
}

/// Points the epilogue's bias at device address `bias`.
///
/// # Safety
/// `desc` is a live matmul descriptor.
unsafe fn set_bias(desc: sys::cublasLtMatmulDesc_t, bias: u64) -> std::result::Result<(), String> {
    use sys::cublasLtMatmulDescAttributes_t as D;
    // Safety: the caller's descriptor; the value is a pointer, the attribute's type.
    unsafe {
        attr!(
            cublasLtMatmulDescSetAttribute,
            desc,
            D::CUBLASLT_MATMUL_DESC_BIAS_POINTER,
            bias as *const std::ffi::c_void
        )
    }
}

/// cuBLASLt's epilogue for `act(. + bias)`; `None` for the plain product (its default).
/// cuBLASLt's GELU is the tanh approximation, as PyTorch's `_addmm_activation` takes it.
fn epilogue(act: LinearAct, bias: bool) -> Option<sys::cublasLtEpilogue_t> {
    use sys::cublasLtEpilogue_t as E;
    Some(match (act, bias) {
        (LinearAct::None, false) => return None,
        (LinearAct::None, true) => E::CUBLASLT_EPILOGUE_BIAS,
        (LinearAct::Relu, false) => E::CUBLASLT_EPILOGUE_RELU,
        (LinearAct::Relu, true) => E::CUBLASLT_EPILOGUE_RELU_BIAS,
        (LinearAct::GeluTanh, false) => E::CUBLASLT_EPILOGUE_GELU,
        (LinearAct::GeluTanh, true) => E::CUBLASLT_EPILOGUE_GELU_BIAS,
    })
}

/// The descriptors of `p` (the plan without an algorithm yet).
fn describe(p: &Problem) -> std::result::Result<Option<Plan>, String> {
    let Some((dt, compute, scale)) = types(p) else {
        return Ok(None);
    };
    let mut plan = Plan {
        desc: std::ptr::null_mut(),
        layouts: [std::ptr::null_mut(); 3],
        algo: sys::cublasLtMatmulAlgo_t { data: [0; 8] },
        chosen: (0, 0),
    };
    plan.desc = cudarc::cublaslt::result::create_matmul_desc(compute, scale)
        .map_err(|e| format!("cuBLASLt: {e}"))?;
    // cublasOperation_t, an int.
    let op = |t: bool| {
        use cudarc::cublas::sys::cublasOperation_t as O;
        (if t { O::CUBLAS_OP_T } else { O::CUBLAS_OP_N }) as i32
    };
    use sys::cublasLtMatmulDescAttributes_t as D;
    use sys::cublasLtMatrixLayoutAttribute_t as L;
    // Safety: the descriptor was just made; each value has the attribute's type.
    unsafe {
        attr!(
            cublasLtMatmulDescSetAttribute,
            plan.desc,
            D::CUBLASLT_MATMUL_DESC_TRANSA,
            op(p.a.trans)
        )?;
        attr!(
            cublasLtMatmulDescSetAttribute,
            plan.desc,
            D::CUBLASLT_MATMUL_DESC_TRANSB,
            op(p.b.trans)
        )?;
        if let Some(e) = epilogue(p.act, p.bias.is_some()) {
            attr!(
                cublasLtMatmulDescSetAttribute,
                plan.desc,
                D::CUBLASLT_MATMUL_DESC_EPILOGUE,
                e as u32
            )?;
        }
        if let Some(bias) = p.bias {
            // The heuristic sees the first product's bias; each call sets its own (`enqueue`).
            set_bias(plan.desc, bias)?;
        }
    }
    // Stored shapes: a transposed operand is stored as its transpose.
    let stored = |o: &Operand, r: u64, c: u64| if o.trans { (c, r) } else { (r, c) };
    let shapes = [
        (p.a, stored(&p.a, p.m, p.k)),
        (p.b, stored(&p.b, p.k, p.n)),
        (p.d, (p.m, p.n)),
    ];
    for (i, (o, (r, c))) in shapes.into_iter().enumerate() {
        let l = cudarc::cublaslt::result::create_matrix_layout(dt, r, c, o.ld)
            .map_err(|e| format!("cuBLASLt: {e}"))?;
        plan.layouts[i] = l;
        if p.batch > 1 {
            // Safety: the layout was just made; each value has the attribute's type.
            unsafe {
                attr!(
                    cublasLtMatrixLayoutSetAttribute,
                    l,
                    L::CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT,
                    p.batch as i32
                )?;
                attr!(
                    cublasLtMatrixLayoutSetAttribute,
                    l,
                    L::CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                    o.batch_stride
                )?;
            }
        }
    }
    Ok(Some(plan))
}

/// Up to `count` candidates for `plan`, best first by cuBLASLt's heuristic, each needing at
/// most `ws` bytes of workspace.
fn candidates(
    lt: &Lt,
    p: &Problem,
    plan: &Plan,
    ws: usize,
    count: i32,
) -> std::result::Result<Vec<sys::cublasLtMatmulAlgo_t>, String> {
    let pref =
        cudarc::cublaslt::result::create_matmul_pref().map_err(|e| format!("cuBLASLt: {e}"))?;
    struct Pref(sys::cublasLtMatmulPreference_t);
    impl Drop for Pref {
        fn drop(&mut self) {
            // Safety: made above, dropped once.
            unsafe {
                let _ = cudarc::cublaslt::result::destroy_matmul_pref(self.0);
            }
        }
    }
    let pref = Pref(pref);
    use sys::cublasLtMatmulPreferenceAttributes_t as P;
    let aligns = [
        (P::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, p.a.ptr),
        (P::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, p.b.ptr),
        (P::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, p.d.ptr),
        (P::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, p.d.ptr),
    ];
    let mut got = 0i32;
    let mut res = vec![
        sys::cublasLtMatmulHeuristicResult_t {
            algo: sys::cublasLtMatmulAlgo_t { data: [0; 8] },
            workspaceSize: 0,
            state: sys::cublasStatus_t::CUBLAS_STATUS_NOT_SUPPORTED,
            wavesCount: 0.0,
            reserved: [0; 4],
        };
        count as usize
    ];
    // Safety: the preference was just made; `res` holds `count` results.
    unsafe {
        attr!(
            cublasLtMatmulPreferenceSetAttribute,
            pref.0,
            P::CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
            ws as u64
        )?;
        for (a, ptr) in aligns {
            attr!(
                cublasLtMatmulPreferenceSetAttribute,
                pref.0,
                a,
                1u32 << align_log2(ptr)
            )?;
        }
        let [la, lb, ld] = plan.layouts;
        st(sys::cublasLtMatmulAlgoGetHeuristic(
            lt.handle,
            plan.desc,
            la,
            lb,
            ld,
            ld,
            pref.0,
            count,
            res.as_mut_ptr(),
            &mut got,
        ))?;
    }
    res.truncate(got.clamp(0, count) as usize);
    Ok(res
        .into_iter()
        .filter(|r| r.state == sys::cublasStatus_t::CUBLAS_STATUS_SUCCESS && r.workspaceSize <= ws)
        .map(|r| r.algo)
        .collect())
}

/// What one call needs besides the problem: the handle's workspace and the scale factors
/// 1 and 0 of the compute type.
pub(super) struct Call<'a> {
    pub workspace: Option<(u64, usize)>,
    pub one: &'a [u64; 2],
    pub zero: &'a [u64; 2],
}

/// Enqueues `p` through cuBLASLt; false where cuBLASLt offers no algorithm for it
/// (the caller then uses cublasGemmEx).
pub(super) fn matmul(g: &Gpu, lt: &Lt, p: &Problem, call: &Call) -> bool {
    let key = p.key();
    let cached = lt.plans.lock().get(&key).cloned();
    let plan = match cached {
        Some(Some(plan)) => plan,
        Some(None) => return false,
        None => {
            let plan = make_plan(g, lt, p, call).map(Arc::new);
            let mut plans = lt.plans.lock();
            if plans.len() >= MAX_PLANS {
                plans.clear();
            }
            plans.insert(key, plan.clone());
            match plan {
                Some(plan) => plan,
                None => return false,
            }
        }
    };
    // cuBLASLt checks a call before it enqueues anything: a refused one goes to cublasGemmEx.
    let run = Run { g, lt, p, call };
    if let Err(e) = run.enqueue(&plan, &plan.algo) {
        if super::stats::enabled() {
            eprintln!("ingot-cuda: matmul {p:?} to cublasGemmEx: {e}");
        }
        lt.plans.lock().insert(key, None);
        return false;
    }
    true
}

/// The plan for `p`; `None` where cuBLASLt refuses the problem (a batch stride of 0, say),
/// which then goes to cublasGemmEx.
fn make_plan(g: &Gpu, lt: &Lt, p: &Problem, call: &Call) -> Option<Plan> {
    let refused = |e: String| -> Option<Plan> {
        if super::stats::enabled() {
            eprintln!("ingot-cuda: matmul {p:?} to cublasGemmEx: {e}");
        }
        None
    };
    let mut plan = match describe(p) {
        Ok(plan) => plan?,
        Err(e) => return refused(e),
    };
    let ws = call.workspace.map_or(0, |w| w.1);
    let macs = [p.n, p.k, p.batch]
        .iter()
        .fold(p.m, |a, &v| a.saturating_mul(v));
    // A thread recording a CUDA graph cannot time anything: it takes the heuristic's first.
    let tune = mode() == Mode::Tune && macs >= TUNE_MIN_MACS && g.capturing_stream().is_none();
    let count = if tune { TUNE_CANDIDATES } else { 1 };
    let algos = match candidates(lt, p, &plan, ws, count) {
        Ok(a) if !a.is_empty() => a,
        Ok(_) => return refused("no algorithm".into()),
        Err(e) => return refused(e),
    };
    let first = &algos[0];
    plan.algo = *first;
    plan.chosen = (0, algos.len());
    if algos.len() > 1 {
        let run = Run { g, lt, p, call };
        let times: Vec<Option<f64>> = algos.iter().map(|a| run.time(&plan, a)).collect();
        let best = times
            .iter()
            .enumerate()
            .filter_map(|(i, t)| t.map(|t| (i, t)))
            .min_by(|x, y| x.1.total_cmp(&y.1));
        if let Some((i, _)) = best {
            plan.algo = algos[i];
            plan.chosen = (i, algos.len());
        }
        if super::stats::enabled() {
            let us: Vec<String> = times
                .iter()
                .map(|t| t.map_or("-".into(), |t| format!("{:.1}", t * 1e6)))
                .collect();
            eprintln!(
                "ingot-cuda: matmul {:?} m {} n {} k {} batch {}: cuBLASLt candidate {} of {} (us: {})",
                p.dtype,
                p.m,
                p.n,
                p.k,
                p.batch,
                plan.chosen.0,
                algos.len(),
                us.join(" ")
            );
        }
    }
    Some(plan)
}

/// One product to enqueue: the GPU, the cuBLASLt handle, the problem and its scalars.
struct Run<'a> {
    g: &'a Gpu,
    lt: &'a Lt,
    p: &'a Problem,
    call: &'a Call<'a>,
}

impl Run<'_> {
    /// Seconds one run of `algo` takes (the median of 3 after a warm-up); `None` if it
    /// fails. Writes `p.d`, which the product's own run overwrites after.
    fn time(&self, plan: &Plan, algo: &sys::cublasLtMatmulAlgo_t) -> Option<f64> {
        let s = self.g.stream().ok()?;
        self.enqueue(plan, algo).ok()?;
        let flags = Some(cudarc::driver::sys::CUevent_flags::CU_EVENT_DEFAULT);
        let mut t = Vec::new();
        for _ in 0..3 {
            let a = s.record_event(flags).ok()?;
            self.enqueue(plan, algo).ok()?;
            let b = s.record_event(flags).ok()?;
            t.push(a.elapsed_ms(&b).ok()? as f64 * 1e-3);
        }
        t.sort_by(f64::total_cmp);
        Some(t[1])
    }

    fn enqueue(
        &self,
        plan: &Plan,
        algo: &sys::cublasLtMatmulAlgo_t,
    ) -> std::result::Result<(), String> {
        let Run { g, lt, p, call } = *self;
        let stream = g.stream().map_err(|e| e.to_string())?;
        let (ws, ws_bytes) = call.workspace.unwrap_or((0, 0));
        let [la, lb, ld] = plan.layouts;
        if let Some(bias) = p.bias {
            // The plan is shared by every product of its problem: each sets its own bias (under
            // `Blas::call`, one product at a time).
            // Safety: the descriptor is the plan's; the value is a device pointer.
            unsafe { set_bias(plan.desc, bias)? };
        }
        // Safety: the pointers are device memory of this GPU holding the operands the layouts
        // describe; the workspace has `ws_bytes` bytes; the scale factors are of the compute
        // type.
        st(unsafe {
            sys::cublasLtMatmul(
                lt.handle,
                plan.desc,
                call.one.as_ptr() as *const _,
                p.a.ptr as *const _,
                la,
                p.b.ptr as *const _,
                lb,
                call.zero.as_ptr() as *const _,
                p.d.ptr as *const _,
                ld,
                p.d.ptr as *mut _,
                ld,
                algo,
                ws as *mut _,
                ws_bytes,
                stream.cu_stream() as _,
            )
        })
    }
}
