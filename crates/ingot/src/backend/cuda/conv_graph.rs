//! The convolution forward through cuDNN's graph (backend) API: cuDNN 9 offers its newest
//! kernels (Hopper's among them) only there. Through the legacy `cudnnConvolutionForward`
//! ResNet-50's bf16 convolutions ran at a quarter of PyTorch's speed, which builds the same
//! one-op graph. A problem's plans are built once, the fastest kept (timed for large
//! problems), and reused; where the graph API offers nothing, conv.rs uses the legacy call.

use cudarc::cudnn::sys::{
    self, cudnnBackendAttributeName_t as Attr, cudnnBackendAttributeType_t as Ty,
    cudnnBackendDescriptorType_t as Kind, cudnnBackendNumericalNote_t as Note,
};
use std::ffi::{c_int, c_void};
use std::ptr::null_mut;
use std::sync::Arc;

type Status = sys::cudnnStatus_t;
type R<T> = std::result::Result<T, Status>;

fn ck(s: Status) -> R<()> {
    if s == Status::CUDNN_STATUS_SUCCESS {
        Ok(())
    } else {
        Err(s)
    }
}

/// One backend descriptor, destroyed on drop.
struct Desc(sys::cudnnBackendDescriptor_t);

// Safety: a descriptor is plain host memory owned by this value; the caller serializes use
// (the handle lock in conv.rs).
unsafe impl Send for Desc {}
unsafe impl Sync for Desc {}

impl Drop for Desc {
    fn drop(&mut self) {
        // Safety: made by cudnnBackendCreateDescriptor, destroyed once.
        unsafe {
            let _ = sys::cudnnBackendDestroyDescriptor(self.0);
        }
    }
}

impl Desc {
    fn new(kind: Kind) -> R<Desc> {
        let mut d = null_mut();
        // Safety: `d` receives a new descriptor.
        ck(unsafe { sys::cudnnBackendCreateDescriptor(kind, &mut d) })?;
        Ok(Desc(d))
    }

    /// Sets attribute `name` to `vals`, elements of cuDNN type `ty` (the caller matches the
    /// Rust element type to it).
    fn set<V>(&self, name: Attr, ty: Ty, vals: &[V]) -> R<&Self> {
        // Safety: `vals` holds `len` elements of the type `ty` names.
        ck(unsafe {
            sys::cudnnBackendSetAttribute(
                self.0,
                name,
                ty,
                vals.len() as i64,
                vals.as_ptr() as *const c_void,
            )
        })?;
        Ok(self)
    }

    fn finalize(self) -> R<Desc> {
        // Safety: a descriptor this value owns.
        ck(unsafe { sys::cudnnBackendFinalize(self.0) })?;
        Ok(self)
    }

    /// Reads up to `out.len()` elements of attribute `name`; returns how many there are.
    /// An empty `out` asks only for the count (a null array, as cuDNN expects: given an
    /// array it reports how many it wrote).
    fn get<V>(&self, name: Attr, ty: Ty, out: &mut [V]) -> R<usize> {
        let mut n = 0i64;
        let array = if out.is_empty() {
            null_mut()
        } else {
            out.as_mut_ptr() as *mut c_void
        };
        // Safety: `out` has room for the requested count of `ty` elements.
        ck(unsafe {
            sys::cudnnBackendGetAttribute(self.0, name, ty, out.len() as i64, &mut n, array)
        })?;
        Ok(n.max(0) as usize)
    }
}

/// A convolution forward problem in cuDNN's terms: dims in (N, C, *spatial) order,
/// channels-last strides; grouping follows from the filter's channel count.
pub(super) struct Problem<'a> {
    pub data: sys::cudnnDataType_t,
    pub compute: sys::cudnnDataType_t,
    pub x: &'a [c_int],
    pub w: &'a [c_int],
    pub y: &'a [c_int],
    pub x_strides: &'a [c_int],
    pub w_strides: &'a [c_int],
    pub y_strides: &'a [c_int],
    pub pads: &'a [c_int],
    pub strides: &'a [c_int],
    pub dilations: &'a [c_int],
    pub mode: sys::cudnnConvolutionMode_t,
    /// The largest power of two (at most 16) that divides every tensor's address.
    pub align: i64,
    /// f32 data, which tensor cores round to TF32: allowed only with `tf32`.
    pub f32: bool,
    pub tf32: bool,
    pub double: bool,
}

/// An execution plan and what it was built from (kept alive with it).
pub(super) struct Plan {
    plan: Desc,
    pub workspace: usize,
    _config: Desc,
    _parts: Arc<Vec<Desc>>,
}

const X_ID: i64 = 1;
const W_ID: i64 = 2;
const Y_ID: i64 = 3;

fn i64s(v: &[c_int]) -> Vec<i64> {
    v.iter().map(|&x| x as i64).collect()
}

fn tensor(p: &Problem, dims: &[c_int], strides: &[c_int], id: i64) -> R<Desc> {
    let t = Desc::new(Kind::CUDNN_BACKEND_TENSOR_DESCRIPTOR)?;
    t.set(
        Attr::CUDNN_ATTR_TENSOR_DATA_TYPE,
        Ty::CUDNN_TYPE_DATA_TYPE,
        &[p.data],
    )?
    .set(
        Attr::CUDNN_ATTR_TENSOR_DIMENSIONS,
        Ty::CUDNN_TYPE_INT64,
        &i64s(dims),
    )?
    .set(
        Attr::CUDNN_ATTR_TENSOR_STRIDES,
        Ty::CUDNN_TYPE_INT64,
        &i64s(strides),
    )?
    .set(
        Attr::CUDNN_ATTR_TENSOR_UNIQUE_ID,
        Ty::CUDNN_TYPE_INT64,
        &[id],
    )?
    .set(
        Attr::CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT,
        Ty::CUDNN_TYPE_INT64,
        &[p.align],
    )?;
    t.finalize()
}

/// Whether an engine's numerics keep ingot's promise for the problem: f16 and bf16
/// accumulate in f32, f32 is not rounded to TF32 unless allowed, inputs are not narrowed,
/// and results do not depend on the run.
fn numerics_ok(p: &Problem, cfg: &Desc) -> R<bool> {
    let engine = Desc::new(Kind::CUDNN_BACKEND_ENGINE_DESCRIPTOR)?;
    let mut e = [engine.0];
    cfg.get(
        Attr::CUDNN_ATTR_ENGINECFG_ENGINE,
        Ty::CUDNN_TYPE_BACKEND_DESCRIPTOR,
        &mut e,
    )?;
    let mut notes = [Note::CUDNN_NUMERICAL_NOTE_TYPE_COUNT; 16];
    let n = engine.get(
        Attr::CUDNN_ATTR_ENGINE_NUMERICAL_NOTE,
        Ty::CUDNN_TYPE_NUMERICAL_NOTE,
        &mut notes,
    )?;
    Ok(notes[..n.min(16)].iter().all(|note| match note {
        Note::CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS
        | Note::CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION
        | Note::CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC => false,
        Note::CUDNN_NUMERICAL_NOTE_TENSOR_CORE => !p.f32 || p.tf32,
        _ => true,
    }))
}

/// Up to `max` plans for the problem, in the order cuDNN's heuristic ranks them, each of
/// which finalized on this handle (an engine may refuse the problem at that step), and a
/// line for each configuration passed over, saying why.
pub(super) fn plans(h: sys::cudnnHandle_t, p: &Problem, max: usize) -> R<(Vec<Plan>, Vec<String>)> {
    let nsp = p.x.len() - 2;
    let x = tensor(p, p.x, p.x_strides, X_ID)?;
    let w = tensor(p, p.w, p.w_strides, W_ID)?;
    let y = tensor(p, p.y, p.y_strides, Y_ID)?;
    let conv = Desc::new(Kind::CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR)?;
    conv.set(
        Attr::CUDNN_ATTR_CONVOLUTION_COMP_TYPE,
        Ty::CUDNN_TYPE_DATA_TYPE,
        &[p.compute],
    )?
    .set(
        Attr::CUDNN_ATTR_CONVOLUTION_CONV_MODE,
        Ty::CUDNN_TYPE_CONVOLUTION_MODE,
        &[p.mode],
    )?
    .set(
        Attr::CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS,
        Ty::CUDNN_TYPE_INT64,
        &[nsp as i64],
    )?
    .set(
        Attr::CUDNN_ATTR_CONVOLUTION_DILATIONS,
        Ty::CUDNN_TYPE_INT64,
        &i64s(p.dilations),
    )?
    .set(
        Attr::CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES,
        Ty::CUDNN_TYPE_INT64,
        &i64s(p.strides),
    )?
    .set(
        Attr::CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS,
        Ty::CUDNN_TYPE_INT64,
        &i64s(p.pads),
    )?
    .set(
        Attr::CUDNN_ATTR_CONVOLUTION_POST_PADDINGS,
        Ty::CUDNN_TYPE_INT64,
        &i64s(p.pads),
    )?;
    let conv = conv.finalize()?;
    let op = Desc::new(Kind::CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR)?;
    let d = Ty::CUDNN_TYPE_BACKEND_DESCRIPTOR;
    op.set(Attr::CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, d, &[x.0])?
        .set(Attr::CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, d, &[w.0])?
        .set(Attr::CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, d, &[y.0])?
        .set(
            Attr::CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC,
            d,
            &[conv.0],
        )?;
    if p.double {
        op.set(
            Attr::CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA,
            Ty::CUDNN_TYPE_DOUBLE,
            &[1f64],
        )?
        .set(
            Attr::CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA,
            Ty::CUDNN_TYPE_DOUBLE,
            &[0f64],
        )?;
    } else {
        op.set(
            Attr::CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA,
            Ty::CUDNN_TYPE_FLOAT,
            &[1f32],
        )?
        .set(
            Attr::CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA,
            Ty::CUDNN_TYPE_FLOAT,
            &[0f32],
        )?;
    }
    let op = op.finalize()?;
    let graph = Desc::new(Kind::CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR)?;
    graph
        .set(
            Attr::CUDNN_ATTR_OPERATIONGRAPH_HANDLE,
            Ty::CUDNN_TYPE_HANDLE,
            &[h],
        )?
        .set(Attr::CUDNN_ATTR_OPERATIONGRAPH_OPS, d, &[op.0])?;
    let graph = graph.finalize()?;
    let heur = Desc::new(Kind::CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR)?;
    heur.set(Attr::CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, d, &[graph.0])?
        .set(
            Attr::CUDNN_ATTR_ENGINEHEUR_MODE,
            Ty::CUDNN_TYPE_HEUR_MODE,
            &[sys::cudnnBackendHeurMode_t::CUDNN_HEUR_MODE_A],
        )?;
    let heur = heur.finalize()?;
    // How many configurations the heuristic offers, then the configurations themselves
    // (cuDNN fills descriptors the caller has made).
    let count =
        heur.get::<sys::cudnnBackendDescriptor_t>(Attr::CUDNN_ATTR_ENGINEHEUR_RESULTS, d, &mut [])?;
    let cfgs = (0..count.min(64))
        .map(|_| Desc::new(Kind::CUDNN_BACKEND_ENGINECFG_DESCRIPTOR))
        .collect::<R<Vec<_>>>()?;
    let mut raw: Vec<_> = cfgs.iter().map(|c| c.0).collect();
    let got = heur.get(Attr::CUDNN_ATTR_ENGINEHEUR_RESULTS, d, &mut raw)?;
    let mut out = Vec::new();
    let mut skipped = vec![format!("the heuristic offered {got} configurations")];
    let parts = Arc::new(vec![x, w, y, conv, op, graph, heur]);
    for (k, cfg) in cfgs.into_iter().take(got).enumerate() {
        if out.len() >= max {
            break;
        }
        match numerics_ok(p, &cfg) {
            Ok(true) => {}
            Ok(false) => {
                skipped.push(format!("configuration {k}: numerics"));
                continue;
            }
            Err(e) => {
                skipped.push(format!("configuration {k}: reading its notes: {e:?}"));
                continue;
            }
        }
        let Ok(plan) = Desc::new(Kind::CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR) else {
            continue;
        };
        let built = plan
            .set(
                Attr::CUDNN_ATTR_EXECUTION_PLAN_HANDLE,
                Ty::CUDNN_TYPE_HANDLE,
                &[h],
            )
            .and_then(|pl| pl.set(Attr::CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, d, &[cfg.0]))
            .is_ok();
        if !built {
            continue;
        }
        let plan = match plan.finalize() {
            Ok(plan) => plan,
            Err(e) => {
                skipped.push(format!("configuration {k}: plan: {e:?}"));
                continue;
            }
        };
        let mut ws = [0i64];
        if plan
            .get(
                Attr::CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                Ty::CUDNN_TYPE_INT64,
                &mut ws,
            )
            .is_err()
        {
            continue;
        }
        out.push(Plan {
            plan,
            workspace: ws[0].max(0) as usize,
            // The descriptors a plan was built from live as long as it does.
            _config: cfg,
            _parts: parts.clone(),
        });
    }
    Ok((out, skipped))
}

/// Enqueues `plan` on the handle's stream: y = conv(x, w), with `work` bytes of workspace.
pub(super) fn execute(
    h: sys::cudnnHandle_t,
    plan: &Plan,
    x: u64,
    w: u64,
    y: u64,
    work: u64,
) -> R<()> {
    let pack = Desc::new(Kind::CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR)?;
    let ptrs: [*mut c_void; 3] = [x as *mut c_void, w as *mut c_void, y as *mut c_void];
    pack.set(
        Attr::CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS,
        Ty::CUDNN_TYPE_INT64,
        &[X_ID, W_ID, Y_ID],
    )?
    .set(
        Attr::CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS,
        Ty::CUDNN_TYPE_VOID_PTR,
        &ptrs,
    )?
    .set(
        Attr::CUDNN_ATTR_VARIANT_PACK_WORKSPACE,
        Ty::CUDNN_TYPE_VOID_PTR,
        &[work as *mut c_void],
    )?;
    let pack = pack.finalize()?;
    // Safety: the pointers hold the tensors the plan describes, on the handle's GPU, and the
    // workspace has `plan.workspace` bytes.
    ck(unsafe { sys::cudnnBackendExecute(h, plan.plan.0, pack.0) })
}
