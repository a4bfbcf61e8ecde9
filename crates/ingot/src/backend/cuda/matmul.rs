//! Matmul through cuBLAS (strided batched GEMM): f32, f64, f16 and bf16 (f32 accumulation),
//! complex64. Row-major operands are handed over as their column-major transposes, so no
//! copy is made unless a matrix has neither unit row nor unit column stride, or its batch
//! offsets are not one arithmetic progression. Integer matmul runs on the CPU for now.
//!
//! cuBLAS's fast kernels need leading dimensions and batch strides of whole 16 bytes: a
//! large product with a row length that is not (GPT-2's 50,257-word vocabulary in bf16)
//! otherwise runs on "align1" kernels at a fifth of the speed. There, operands are copied
//! into rows padded to 16 bytes and the result is written into padded rows (a strided view),
//! which costs a copy at memory speed and saves several times that. Padded rows are not
//! enough for f16 and bf16: cuBLAS still took align1 kernels for GPT-2's three vocabulary
//! products, each with one of its dimensions odd (run G25: 16 ms of a 74 ms step). There
//! the product runs on zero-padded copies with every dimension a multiple of 8, and the
//! result is the top-left corner of the padded one.

use super::elementwise::{ctype, COMMON, FUNCS};
use super::{cuda_err, elementwise, Args, Gpu};
use crate::array::{Array, Data};
use crate::backend::cpu::strided::out_data;
use crate::backend::cpu::Outs;
use crate::buffer::Buffer;
use crate::dtype::DType;
use crate::op::LinearAct;
use crate::shape::size_of;
use crate::Result;
use cudarc::cublas::sys;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

pub(crate) struct Blas {
    handle: sys::cublasHandle_t,
    /// Held for each call: cuBLAS does not promise the same bits when host threads call one
    /// handle at once (run G21: a model's logits differed in the last bit while another
    /// test thread ran products, and never with this lock).
    call: parking_lot::Mutex<()>,
    /// cuBLAS's scratch space, as PyTorch gives it one (none when it could not be had:
    /// cuBLAS then uses its own), also cuBLASLt's.
    workspace: Option<super::DeviceMem>,
    /// Products go here first (none without libcublasLt or with INGOT_CUDA_GEMM=ex).
    lt: Option<super::blaslt::Lt>,
}
// The handle is used under the GPU's launch order only (one stream).
unsafe impl Send for Blas {}
unsafe impl Sync for Blas {}

static TF32: AtomicBool = AtomicBool::new(false);

/// cuBLAS's workspace.
const WORKSPACE_BYTES: usize = 32 << 20;

/// Lets f32 matmuls use TF32 tensor cores (10-bit mantissa inputs, f32 accumulation):
/// several times faster, about 1e-3 relative error. Off by default, as in PyTorch.
pub fn set_allow_tf32(on: bool) {
    TF32.store(on, Relaxed);
}

/// Whether f32 matmuls and convolutions may use TF32.
pub(super) fn allow_tf32() -> bool {
    TF32.load(Relaxed)
}

/// The GPU's cuBLAS handle, called right before each cuBLAS call: cuBLAS works on the
/// stream itself, so the launches queued before it (the operands' copies) go first. A thread
/// recording a CUDA graph gets the capture stream's handle (made by `prepare_capture`).
fn blas(g: &Gpu) -> Result<&Blas> {
    let stream = g.stream()?;
    let slot = if g.capturing_stream().is_some() {
        &g.capture_blas
    } else {
        &g.blas
    };
    let b = slot.get_or_init(|| new_blas(g, stream));
    b.as_ref().map_err(|e| cuda_err("matmul", e))
}

/// Makes the capture stream's cuBLAS handle before a capture: its workspace must not come
/// from the graph's pool, and its first product (where cuBLAS sets itself up) runs here,
/// outside any capture.
pub(super) fn prepare_capture(g: &Gpu) -> Result<()> {
    let stream = g.capture_stream()?;
    g.capture_blas
        .get_or_init(|| {
            let b = new_blas(g, stream)?;
            warm_up(g, &b, stream).map_err(|e| e.to_string())?;
            Ok(b)
        })
        .as_ref()
        .map(|_| ())
        .map_err(|e| cuda_err("matmul", e))
}

/// A 1x1x1 product on `b`'s stream, waited for.
fn warm_up(g: &Gpu, b: &Blas, stream: &cudarc::driver::CudaStream) -> Result<()> {
    let m = super::DeviceMem::alloc_cached(g, 16)?;
    // Cached blocks (this one, the handle's workspace) may still be read by work queued on
    // the GPU's stream: the capture stream waits for it before writing them.
    let main = g.stream()?;
    let ev = main.record_event(None).map_err(|e| cuda_err("matmul", e))?;
    stream.wait(&ev).map_err(|e| cuda_err("matmul", e))?;
    let p = m.ptr() as *mut f32;
    let (one, zero) = (1f32, 0f32);
    use cudarc::cublas::sys::cublasOperation_t::CUBLAS_OP_N;
    // Safety: three f32s inside a 16-byte block of this GPU; waited for below.
    unsafe {
        cudarc::cublas::result::sgemm(
            b.handle,
            CUBLAS_OP_N,
            CUBLAS_OP_N,
            1,
            1,
            1,
            &one,
            p,
            1,
            p.add(1),
            1,
            &zero,
            p.add(2),
            1,
        )
    }
    .map_err(|e| cuda_err("matmul", e))?;
    stream.synchronize().map_err(|e| cuda_err("matmul", e))
}

fn new_blas(g: &Gpu, stream: &cudarc::driver::CudaStream) -> std::result::Result<Blas, String> {
    // Safety: plain handle creation; the library is probed first.
    if !unsafe { cudarc::cublas::sys::is_culib_present() } {
        return Err("cuBLAS (libcublas.so) was not found".into());
    }
    let handle = cudarc::cublas::result::create_handle().map_err(|e| e.to_string())?;
    unsafe { cudarc::cublas::result::set_stream(handle, stream.cu_stream() as _) }
        .map_err(|e| e.to_string())?;
    // PyTorch's size on Hopper (CUBLAS_WORKSPACE_CONFIG=:4096:8). Optional: a GPU too
    // full for it at the first product must not fail every later one.
    let bytes = WORKSPACE_BYTES;
    let ws = super::DeviceMem::alloc_cached(g, bytes).ok().filter(|ws| {
        // Safety: `ws` is device memory of this GPU, kept as long as the handle.
        let st = unsafe { sys::cublasSetWorkspace_v2(handle, ws.ptr() as *mut _, bytes) };
        st == sys::cublasStatus_t::CUBLAS_STATUS_SUCCESS
    });
    let lt = (super::blaslt::mode() != super::blaslt::Mode::Ex)
        .then(super::blaslt::Lt::new)
        .flatten();
    Ok(Blas {
        handle,
        call: parking_lot::Mutex::new(()),
        workspace: ws,
        lt,
    })
}

/// A matrix operand as cuBLAS sees it: transposed or not, leading dimension, batch stride.
#[derive(Clone, Copy)]
struct Mat {
    ptr: u64,
    trans: bool,
    ld: i64,
    batch_stride: i64,
}

impl Mat {
    /// Results of `rows` rows `ld` elements apart at `ptr`, one after another.
    fn result(ptr: u64, rows: usize, ld: usize) -> Mat {
        Mat {
            ptr,
            trans: false,
            ld: ld as i64,
            batch_stride: (rows * ld) as i64,
        }
    }
}

/// The cuBLAS view of `rows x cols` matrices at `d` (batch dims first), if it has one.
fn mat_view(
    g: &Gpu,
    a: &Array,
    d: &Data,
    rows: usize,
    cols: usize,
    esize: usize,
) -> Result<Option<Mat>> {
    let nd = a.shape().len();
    let (rs, cs) = (d.strides[nd - 2], d.strides[nd - 1]);
    // Size-1 dims may carry any stride: they constrain nothing.
    let (r1, c1) = (rows == 1, cols == 1);
    let (trans, ld) = if (c1 || cs == 1) && (r1 || rs >= cols as isize) {
        (false, if r1 { cols as isize } else { rs })
    } else if (r1 || rs == 1) && (c1 || cs >= rows as isize) {
        (true, if c1 { rows as isize } else { cs })
    } else {
        return Ok(None);
    };
    let bshape = &a.shape()[..nd - 2];
    let bst = &d.strides[..nd - 2];
    let batch_stride = match elementwise::collapse(bshape, &[bst.to_vec()]) {
        Some((dims, sts)) if dims.len() == 1 => sts[0][0],
        _ => return Ok(None),
    };
    let base = d.buffer.device_ptr(g.ordinal)?;
    Ok(Some(Mat {
        ptr: base + (d.offset * esize) as u64,
        trans,
        ld: ld as i64,
        batch_stride: batch_stride as i64,
    }))
}

/// A product's cuBLAS data type, compute type and scale factors 1 and 0 (of the compute
/// type).
type GemmTypes = (
    sys::cudaDataType,
    sys::cublasComputeType_t,
    [u64; 2],
    [u64; 2],
);

fn gemm_types(dt: DType) -> Option<GemmTypes> {
    Some(match dt {
        DType::F32 => (
            sys::cudaDataType::CUDA_R_32F,
            if TF32.load(Relaxed) {
                sys::cublasComputeType_t::CUBLAS_COMPUTE_32F_FAST_TF32
            } else {
                sys::cublasComputeType_t::CUBLAS_COMPUTE_32F
            },
            scalar(&1f32),
            scalar(&0f32),
        ),
        DType::F16 => (
            sys::cudaDataType::CUDA_R_16F,
            sys::cublasComputeType_t::CUBLAS_COMPUTE_32F,
            scalar(&1f32),
            scalar(&0f32),
        ),
        DType::BF16 => (
            sys::cudaDataType::CUDA_R_16BF,
            sys::cublasComputeType_t::CUBLAS_COMPUTE_32F,
            scalar(&1f32),
            scalar(&0f32),
        ),
        DType::F64 => (
            sys::cudaDataType::CUDA_R_64F,
            sys::cublasComputeType_t::CUBLAS_COMPUTE_64F,
            scalar(&1f64),
            scalar(&0f64),
        ),
        DType::C64 => (
            sys::cudaDataType::CUDA_C_32F,
            sys::cublasComputeType_t::CUBLAS_COMPUTE_32F,
            scalar(&[1f32, 0.0]),
            scalar(&[0f32, 0.0]),
        ),
        _ => return None,
    })
}

pub(super) fn eval(g: &Gpu, inputs: &[Array], outs: Outs) -> Result<Option<Vec<Data>>> {
    let (a, b) = (&inputs[0], &inputs[1]);
    let (out_shape, dt) = (&outs[0].0, outs[0].1);
    let Some(types) = gemm_types(dt) else {
        return Ok(None);
    };
    if a.dtype() != dt || b.dtype() != dt {
        return Ok(None);
    }
    let nd = out_shape.len();
    let (m, n) = (out_shape[nd - 2], out_shape[nd - 1]);
    let k = a.shape()[nd - 1];
    let total = size_of(out_shape);
    let batch = size_of(&out_shape[..nd - 2]);
    let esize = dt.size();
    // Large products get 16-byte rows (see the module comment).
    // (Dims of at least 64, so padding adds at most an eighth.)
    let big = m > GEMV_MAX_ROWS
        && n >= 64
        && k >= 64
        && m.saturating_mul(n).saturating_mul(k) >= PAD_MIN_MACS;
    if big && batch == 1 && matches!(dt, DType::F16 | DType::BF16) && pad_dims_enabled() {
        let p = [m, n, k].map(|v| v.next_multiple_of(8));
        if p != [m, n, k] {
            if let Some(d) = padded_product(g, (a, b), [m, n, k], p, (esize, out_shape), types)? {
                return Ok(Some(vec![d]));
            }
        }
    }
    let ldc = if big { padded(n, esize) } else { n };
    let mem = g.alloc(batch * m * ldc * esize)?;
    let out = |mem| {
        let mut d = out_data(Buffer::on_device(mem), out_shape);
        d.strides = padded_strides(out_shape, ldc);
        Ok(Some(vec![d]))
    };
    if total == 0 {
        return out(mem);
    }
    if k == 0 {
        // Sums of nothing.
        unsafe {
            cudarc::driver::result::memset_d8_async(
                mem.ptr(),
                0,
                batch * m * ldc * esize,
                g.stream()?.cu_stream(),
            )
        }
        .map_err(|e| cuda_err("matmul", e))?;
        return out(mem);
    }
    let limit = i32::MAX as usize;
    if m > limit || ldc > limit || k > limit || batch > limit {
        return Ok(None);
    }
    let view = |x, rows, cols| operand(g, x, (rows, cols), esize, big, batch);
    let (Some((va, _ka)), Some((vb, _kb))) = (view(a, m, k)?, view(b, k, n)?) else {
        return Ok(None);
    };
    if !big && gemv(g, &va, &vb, [m, n, k, batch], dt, mem.ptr())? {
        return out(mem);
    }
    gemm_call(
        g,
        (va, vb, Mat::result(mem.ptr(), m, ldc)),
        [m, n, k, batch],
        types,
    )?;
    out(mem)
}

/// `x` as cuBLAS reads a `rows x cols` operand: its own storage where it can, otherwise a
/// row-major copy, with 16-byte rows when `pad` (see the module comment). A batch-broadcast
/// operand is never padded, since the copy would repeat it. A copy comes back beside the
/// view so that it lives until the product is enqueued.
fn operand(
    g: &Gpu,
    x: &Array,
    (rows, cols): (usize, usize),
    esize: usize,
    pad: bool,
    batch: usize,
) -> Result<Option<(Mat, Option<Data>)>> {
    let d = x.ready_data();
    let v = mat_view(g, x, &d, rows, cols, esize)?;
    let keep = |v: &Mat| !pad || aligned16(v, esize) || (v.batch_stride == 0 && batch > 1);
    if let Some(v) = v.as_ref().filter(|v| keep(v)) {
        return Ok(Some((*v, None)));
    }
    let c = if pad {
        padded_copy(g, x, v.as_ref().is_some_and(|v| v.trans), esize)?
    } else {
        elementwise::copy(g, x)?
    };
    let Some(c) = c else {
        return Ok(None);
    };
    Ok(mat_view(g, x, &c, rows, cols, esize)?.map(|v| (v, Some(c))))
}

/// One cuBLAS call: `c = a b` for `batch` matrices, row-major `m x n` results from `m x k`
/// and `k x n` operands (as cuBLAS sees them: column-major `c^T = b^T a^T`). The call's
/// host time shows under INGOT_CUDA_STATS=1.
fn gemm_call(
    g: &Gpu,
    (va, vb, c): (Mat, Mat, Mat),
    [m, n, k, batch]: [usize; 4],
    (dtype, ctype, one, zero): GemmTypes,
) -> Result<()> {
    let blas = blas(g)?;
    let _one_call = blas.call.lock();
    if lt_call(
        g,
        blas,
        (va, vb, c),
        [m, n, k, batch],
        (dtype, ctype, one, zero),
        None,
    ) {
        return Ok(());
    }
    let op = |t: bool| {
        if t {
            sys::cublasOperation_t::CUBLAS_OP_T
        } else {
            sys::cublasOperation_t::CUBLAS_OP_N
        }
    };
    super::stats::timed("[cublas gemm call]", || unsafe {
        cudarc::cublas::result::gemm_strided_batched_ex(
            blas.handle,
            op(vb.trans),
            op(va.trans),
            n as i32,
            m as i32,
            k as i32,
            one.as_ptr() as *const _,
            vb.ptr as *const _,
            dtype,
            vb.ld as i32,
            vb.batch_stride,
            va.ptr as *const _,
            dtype,
            va.ld as i32,
            va.batch_stride,
            zero.as_ptr() as *const _,
            c.ptr as *mut _,
            dtype,
            c.ld as i32,
            c.batch_stride,
            batch as i32,
            ctype,
            sys::cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
        )
    })
    .map_err(|e| cuda_err("matmul", e))
}

/// The product through cuBLASLt (`blaslt.rs`) with the epilogue `act(. + bias)` when one
/// is given; false where cuBLASLt is missing or refuses it. The caller holds `blas.call`.
fn lt_call(
    g: &Gpu,
    blas: &Blas,
    (va, vb, c): (Mat, Mat, Mat),
    [m, n, k, batch]: [usize; 4],
    (dtype, ctype, one, zero): GemmTypes,
    epilogue: Option<(LinearAct, Option<u64>)>,
) -> bool {
    use sys::cudaDataType as T;
    let dt = match dtype {
        T::CUDA_R_16F => DType::F16,
        T::CUDA_R_16BF => DType::BF16,
        T::CUDA_R_32F => DType::F32,
        T::CUDA_R_64F => DType::F64,
        _ => return false,
    };
    let Some(lt) = &blas.lt else {
        return false;
    };
    let (act, bias) = epilogue.unwrap_or((LinearAct::None, None));
    // cuBLAS's column-major view: c^T (n x m) = b^T a^T.
    let o = |v: &Mat| super::blaslt::Operand {
        trans: v.trans,
        ld: v.ld,
        batch_stride: v.batch_stride,
        ptr: v.ptr,
    };
    let p = super::blaslt::Problem {
        dtype: dt,
        tf32: ctype == sys::cublasComputeType_t::CUBLAS_COMPUTE_32F_FAST_TF32,
        m: n as u64,
        n: m as u64,
        k: k as u64,
        batch: batch as u64,
        a: o(&vb),
        b: o(&va),
        d: o(&c),
        act,
        bias,
    };
    let call = super::blaslt::Call {
        workspace: blas.workspace.as_ref().map(|w| (w.ptr(), WORKSPACE_BYTES)),
        one: &one,
        zero: &zero,
    };
    super::stats::timed("[cublaslt matmul call]", || {
        super::blaslt::matmul(g, lt, &p, &call)
    })
}

/// `act(x @ w + bias)` (`Op::Linear`): one cuBLASLt call with the bias and activation as
/// its epilogue. `None` (the CPU's kernel) where cuBLASLt is missing or refuses it, or the
/// sum is empty (k = 0).
pub(super) fn linear(
    g: &Gpu,
    inputs: &[Array],
    outs: Outs,
    act: LinearAct,
    has_bias: bool,
) -> Result<Option<Vec<Data>>> {
    let (x, w) = (&inputs[0], &inputs[1]);
    let (out_shape, dt) = (&outs[0].0, outs[0].1);
    let Some(types) = gemm_types(dt) else {
        return Ok(None);
    };
    let (m, n, k) = (out_shape[0], out_shape[1], x.shape()[1]);
    let esize = dt.size();
    let limit = i32::MAX as usize;
    if k == 0 || m > limit || n > limit || k > limit {
        return Ok(None);
    }
    let mem = g.alloc(m * n * esize)?;
    let out = |mem| Ok(Some(vec![out_data(Buffer::on_device(mem), out_shape)]));
    if m * n == 0 {
        return out(mem);
    }
    // An operand cuBLAS cannot read as it is (or a strided bias) gets a contiguous copy.
    let view = |a, rows, cols| operand(g, a, (rows, cols), esize, false, 1);
    let (Some((va, _ka)), Some((vb, _kb))) = (view(x, m, k)?, view(w, k, n)?) else {
        return Ok(None);
    };
    let mut _kbias = None;
    let bias = if has_bias {
        let b = &inputs[2];
        let mut d = b.ready_data();
        let at = |d: &Data| -> Result<u64> {
            Ok(d.buffer.device_ptr(g.ordinal)? + (d.offset * esize) as u64)
        };
        // A strided bias, or one off 16 bytes (a view; a fresh buffer is aligned), is copied:
        // the plans are made for aligned vectors, as the matrices' are.
        if (n > 1 && d.strides[0] != 1) || at(&d)? % 16 != 0 {
            let Some(c) = elementwise::copy(g, b)? else {
                return Ok(None);
            };
            d = c;
        }
        let ptr = at(&d)?;
        _kbias = Some(d);
        Some(ptr)
    } else {
        None
    };
    let blas = blas(g)?;
    let _one_call = blas.call.lock();
    let c = Mat::result(mem.ptr(), m, n);
    if lt_call(g, blas, (va, vb, c), [m, n, k, 1], types, Some((act, bias))) {
        return out(mem);
    }
    Ok(None)
}

/// Products of at least this many multiply-adds get 16-byte rows: below it a copy costs
/// about what the faster kernel saves.
const PAD_MIN_MACS: usize = 1 << 30;

/// `cols` rounded up to whole 16 bytes of `esize`-byte elements.
fn padded(cols: usize, esize: usize) -> usize {
    cols.next_multiple_of((16 / esize).max(1))
}

/// Row-major strides of `shape` with rows `ld` elements apart.
fn padded_strides(shape: &[usize], ld: usize) -> Vec<isize> {
    let nd = shape.len();
    let mut st = vec![1isize; nd];
    let mut acc = ld as isize;
    for i in (0..nd.saturating_sub(1)).rev() {
        st[i] = acc;
        acc *= shape[i] as isize;
    }
    st
}

/// Whether cuBLAS sees whole 16 bytes: the start, the leading dimension and the batch step.
fn aligned16(v: &Mat, esize: usize) -> bool {
    let e = esize as i64;
    v.ptr % 16 == 0 && (v.ld * e) % 16 == 0 && (v.batch_stride * e) % 16 == 0
}

/// A copy of `x` whose rows start at multiples of 16 bytes, or its columns when `x` is a
/// transposed view (`trans`, unit row stride): the copy keeps the storage's orientation, so
/// it reads and writes at memory speed and cuBLAS reads it transposed as before.
fn padded_copy(g: &Gpu, x: &Array, trans: bool, esize: usize) -> Result<Option<Data>> {
    let shape = x.shape();
    let nd = shape.len();
    if nd > super::layout::MAX_DIMS {
        return Ok(None);
    }
    let order = storage_order(nd, trans);
    let ld = padded(shape[order[nd - 1]], esize);
    let rows: usize = order[..nd - 1].iter().map(|&i| shape[i]).product();
    let mem = g.alloc(rows * ld * esize)?;
    copy_stored(g, mem, x, &order, ld)
}

/// The dims of an `nd`-dim matrix operand in storage order: the last two swapped for a
/// transposed view.
fn storage_order(nd: usize, trans: bool) -> Vec<usize> {
    let mut order: Vec<usize> = (0..nd).collect();
    if trans {
        order.swap(nd - 2, nd - 1);
    }
    order
}

/// `x` copied into `mem` in the storage order `order` (x's dims, the last one stored
/// contiguously) with rows `ld` elements apart: the copy's data, strided over x's dims.
fn copy_stored(
    g: &Gpu,
    mem: super::DeviceMem,
    x: &Array,
    order: &[usize],
    ld: usize,
) -> Result<Option<Data>> {
    let shape = x.shape();
    let stored: Vec<usize> = order.iter().map(|&i| shape[i]).collect();
    let st_stored = padded_strides(&stored, ld);
    // Strides over `x`'s own dims.
    let mut strides = vec![0isize; shape.len()];
    for (k, &i) in order.iter().enumerate() {
        strides[i] = st_stored[k];
    }
    if !super::layout::copy_into(g, mem.ptr(), &strides, x, order)? {
        return Ok(None);
    }
    let mut d = out_data(Buffer::on_device(mem), shape);
    d.strides = strides;
    Ok(Some(d))
}

/// Whether f16 and bf16 products with a dimension that is not a multiple of 8 run on
/// zero-padded copies (see the module comment): yes, unless `INGOT_CUDA_PAD_DIMS=0`.
fn pad_dims_enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("INGOT_CUDA_PAD_DIMS").map_or(true, |v| v != "0"))
}

/// `a @ b` (one matrix each, f16 or bf16, dims `[m, n, k]`) computed as the padded
/// `[mp, np, kp]` product: an operand with a padded dimension is copied into a zeroed block
/// of the padded size (the zeros add nothing to the sums), the others are read as they
/// are. The result is the `m x n` corner of an `mp x np` block; `None` where an operand
/// has no view cuBLAS can read.
fn padded_product(
    g: &Gpu,
    (a, b): (&Array, &Array),
    [m, n, k]: [usize; 3],
    [mp, np, kp]: [usize; 3],
    (esize, out_shape): (usize, &[usize]),
    types: GemmTypes,
) -> Result<Option<Data>> {
    let operand = |x: &Array, rows, cols, rp, cp| -> Result<Option<(Mat, Data)>> {
        let d = x.ready_data();
        let v = mat_view(g, x, &d, rows, cols, esize)?;
        if rp == rows && cp == cols {
            if let Some(v) = v.filter(|v| aligned16(v, esize)) {
                return Ok(Some((v, d)));
            }
        }
        let trans = v.is_some_and(|v| v.trans);
        let Some(c) = zero_padded_copy(g, x, trans, esize, (rp, cp))? else {
            return Ok(None);
        };
        Ok(mat_view(g, x, &c, rows, cols, esize)?.map(|v| (v, c)))
    };
    let (Some((va, _ka)), Some((vb, _kb))) = (operand(a, m, k, mp, kp)?, operand(b, k, n, kp, np)?)
    else {
        return Ok(None);
    };
    let mem = g.alloc(mp * np * esize)?;
    gemm_call(
        g,
        (va, vb, Mat::result(mem.ptr(), mp, np)),
        [mp, np, kp, 1],
        types,
    )?;
    let mut d = out_data(Buffer::on_device(mem), out_shape);
    d.strides = padded_strides(out_shape, np);
    Ok(Some(d))
}

/// A copy of the `rows x cols` matrix `x` (leading dims of 1) inside a zeroed block of
/// `rows_p x cols_p`, kept in x's storage orientation (transposed where `trans`, as
/// [`padded_copy`]), so the padded rows and columns read as zeros.
fn zero_padded_copy(
    g: &Gpu,
    x: &Array,
    trans: bool,
    esize: usize,
    (rows_p, cols_p): (usize, usize),
) -> Result<Option<Data>> {
    let shape = x.shape();
    let nd = shape.len();
    if nd > super::layout::MAX_DIMS || size_of(&shape[..nd - 2]) != 1 {
        return Ok(None);
    }
    let order = storage_order(nd, trans);
    // The stored matrix (sr x sc) and its block (srp x scp).
    let (sr, sc, srp, scp) = if trans {
        (shape[nd - 1], shape[nd - 2], cols_p, rows_p)
    } else {
        (shape[nd - 2], shape[nd - 1], rows_p, cols_p)
    };
    let mem = g.alloc(srp * scp * esize)?;
    let stream = g.stream()?.cu_stream();
    // Safety: both regions lie inside `mem` (srp x scp elements); the memsets are ordered
    // on the GPU's stream before the copy and the product that read the block.
    unsafe {
        use cudarc::driver::sys::{cuMemsetD2D8Async, cuMemsetD8Async};
        if scp > sc && sr > 0 {
            let at = mem.ptr() + (sc * esize) as u64;
            cuMemsetD2D8Async(at, scp * esize, 0, (scp - sc) * esize, sr, stream).result()
        } else {
            Ok(())
        }
        .and_then(|()| {
            if srp > sr {
                let at = mem.ptr() + (sr * scp * esize) as u64;
                cuMemsetD8Async(at, 0, (srp - sr) * scp * esize, stream).result()
            } else {
                Ok(())
            }
        })
    }
    .map_err(|e| cuda_err("matmul", e))?;
    copy_stored(g, mem, x, &order, scp)
}

const GEMV: &str = include_str!("kernels/gemv.cuh");

fn gemv_source(dt: DType) -> String {
    let flag = match dt {
        DType::BF16 => "#define GEMV_BF16\n",
        DType::F16 => "#define GEMV_F16\n",
        _ => "",
    };
    let base = gemv_base(dt);
    format!(
        "{COMMON}\n{FUNCS}\n{flag}#define T {}\n#define KNAME(k) {base}_##k\n{GEMV}\n",
        ctype(dt)
    )
}

fn gemv_base(dt: DType) -> String {
    format!("gemv2_{}", ctype(dt))
}

/// Module sources for the compile check.
pub(crate) fn sample_sources() -> Vec<(String, String)> {
    [DType::F16, DType::BF16, DType::F32]
        .into_iter()
        .map(|dt| (gemv_base(dt), gemv_source(dt)))
        .collect()
}

/// `INGOT_CUDA_GEMV=0` sends products of a few rows to cuBLAS too (for comparison).
fn gemv_enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("INGOT_CUDA_GEMV").is_none_or(|v| v != "0"))
}

/// At most this many rows of `a` go to the matrix-vector kernel.
pub(super) const GEMV_MAX_ROWS: usize = 8;

/// `a (m, k) @ w^T` for at most 8 rows of `a` and a weight stored `(n, k)` with unit
/// stride along k (a Linear layer's `x @ W^T` while decoding) on ingot's matrix-vector
/// kernels: they read the weight at close to the memory bandwidth, and a launch costs the
/// host a fraction of cuBLAS's call, which dominated a decoded token. Returns false for
/// other shapes and layouts (cuBLAS's case).
fn gemv(g: &Gpu, va: &Mat, vb: &Mat, dims: [usize; 4], dt: DType, out: u64) -> Result<bool> {
    let [m, n, k, batch] = dims;
    if !matches!(dt, DType::BF16 | DType::F16 | DType::F32)
        || m > GEMV_MAX_ROWS
        || va.trans
        || !vb.trans
        || batch > 65535
        || !gemv_enabled()
    {
        return Ok(false);
    }
    let esize = dt.size() as i64;
    let per = 16 / esize;
    let aligned =
        |ptr: u64, strides: &[i64]| ptr % 16 == 0 && strides.iter().all(|&s| (s * esize) % 16 == 0);
    let vec = k as i64 % per == 0
        && aligned(va.ptr, &[va.ld, va.batch_stride])
        && aligned(vb.ptr, &[vb.ld, vb.batch_stride]);
    let base = gemv_base(dt);
    let mut args = Args::new();
    args.push(out)
        .push(va.ptr)
        .push(vb.ptr)
        .push(m as i32)
        .push(n as i64)
        .push(k as i64)
        .push(va.ld)
        .push(vb.ld)
        .push(va.batch_stride)
        .push(vb.batch_stride);
    let (f, blocks, shared) = if vec {
        // One warp per output (two for m > 2, sharing each activation load), 8 warps a
        // block. For m > 2 the activation rows go to shared memory when they fit.
        let rows = m.next_power_of_two();
        let per_warp = if rows > 2 { 2 } else { 1 };
        let staged = rows > 2 && m * k * (esize as usize) <= g.max_shared;
        let name = format!("{base}_gemv_rows_m{rows}{}", if staged { "s" } else { "" });
        let f = g.kernel_in(&base, &name, || gemv_source(dt))?;
        let shared = if staged { m * k * esize as usize } else { 0 };
        super::allow_shared(g, &f, shared, &name)?;
        (f, n.div_ceil(8 * per_warp), shared)
    } else {
        // Element loads: a group of warps per output when there are few outputs, and at
        // most ~8 KiB of weight a warp, unless k is too short to give every thread two loads.
        let mut wpr = (8192 / n.max(1)).next_power_of_two().clamp(1, 8);
        while wpr < 8 && k * esize as usize > 8192 * wpr {
            wpr *= 2;
        }
        while wpr > 1 && k < wpr * 32 * 2 {
            wpr /= 2;
        }
        let f = g.kernel_in(&base, &format!("{base}_gemv"), || gemv_source(dt))?;
        args.push(wpr as i32);
        (f, n.div_ceil(8 / wpr), 0)
    };
    if blocks > i32::MAX as usize {
        return Ok(false);
    }
    g.launch(
        &f,
        (blocks as u32, batch as u32, 1),
        (256, 1, 1),
        shared as u32,
        &args,
    )?;
    Ok(true)
}

/// A host scalar's bytes, for cuBLAS's alpha and beta.
fn scalar<T: Copy>(v: &T) -> [u64; 2] {
    let mut b = [0u64; 2];
    let n = std::mem::size_of::<T>();
    // Safety: T is plain data of at most 16 bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(v as *const T as *const u8, b.as_mut_ptr() as *mut u8, n)
    };
    b
}
