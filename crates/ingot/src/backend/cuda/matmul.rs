//! Matmul through cuBLAS (strided batched GEMM): f32, f64, f16 and bf16 (f32 accumulation),
//! complex64. Row-major operands are handed over as their column-major transposes, so no
//! copy is made unless a matrix has neither unit row nor unit column stride, or its batch
//! offsets are not one arithmetic progression. Integer matmul runs on the CPU for now.

use super::elementwise::{ctype, COMMON, FUNCS};
use super::{cuda_err, elementwise, Args, Gpu};
use crate::array::{Array, Data};
use crate::backend::cpu::strided::out_data;
use crate::backend::cpu::Outs;
use crate::buffer::Buffer;
use crate::dtype::DType;
use crate::shape::size_of;
use crate::Result;
use cudarc::cublas::sys;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

pub(crate) struct Blas {
    handle: sys::cublasHandle_t,
}
// The handle is used under the GPU's launch order only (one stream).
unsafe impl Send for Blas {}
unsafe impl Sync for Blas {}

static TF32: AtomicBool = AtomicBool::new(false);

/// Lets f32 matmuls use TF32 tensor cores (10-bit mantissa inputs, f32 accumulation):
/// several times faster, about 1e-3 relative error. Off by default, as in PyTorch.
pub fn set_allow_tf32(on: bool) {
    TF32.store(on, Relaxed);
}

/// Whether f32 matmuls and convolutions may use TF32.
pub(super) fn allow_tf32() -> bool {
    TF32.load(Relaxed)
}

fn blas(g: &Gpu) -> Result<&Blas> {
    let b = g.blas.get_or_init(|| {
        // Safety: plain handle creation; the library is probed first.
        if !unsafe { cudarc::cublas::sys::is_culib_present() } {
            return Err("cuBLAS (libcublas.so) was not found".into());
        }
        let handle = cudarc::cublas::result::create_handle().map_err(|e| e.to_string())?;
        unsafe { cudarc::cublas::result::set_stream(handle, g.stream.cu_stream() as _) }
            .map_err(|e| e.to_string())?;
        Ok(Blas { handle })
    });
    b.as_ref().map_err(|e| cuda_err("matmul", e))
}

/// A matrix operand as cuBLAS sees it: transposed or not, leading dimension, batch stride.
struct Mat {
    ptr: u64,
    trans: bool,
    ld: i64,
    batch_stride: i64,
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

pub(super) fn eval(g: &Gpu, inputs: &[Array], outs: Outs) -> Result<Option<Vec<Data>>> {
    let (a, b) = (&inputs[0], &inputs[1]);
    let (out_shape, dt) = (&outs[0].0, outs[0].1);
    let (dtype, ctype, one, zero): (
        sys::cudaDataType,
        sys::cublasComputeType_t,
        [u64; 2],
        [u64; 2],
    ) = match dt {
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
        _ => return Ok(None),
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
    let mem = g.alloc(total * esize)?;
    let out = |mem| Ok(Some(vec![out_data(Buffer::on_device(mem), out_shape)]));
    if total == 0 {
        return out(mem);
    }
    if k == 0 {
        // Sums of nothing.
        unsafe {
            cudarc::driver::result::memset_d8_async(
                mem.ptr(),
                0,
                total * esize,
                g.stream.cu_stream(),
            )
        }
        .map_err(|e| cuda_err("matmul", e))?;
        return out(mem);
    }
    let limit = i32::MAX as usize;
    if m > limit || n > limit || k > limit || batch > limit {
        return Ok(None);
    }
    // An operand cuBLAS cannot read as it is gets a row-major copy first.
    let view = |x: &Array, rows, cols| -> Result<Option<(Mat, Option<Data>)>> {
        let d = x.ready_data();
        if let Some(v) = mat_view(g, x, &d, rows, cols, esize)? {
            return Ok(Some((v, None)));
        }
        let Some(c) = elementwise::copy(g, x)? else {
            return Ok(None);
        };
        Ok(mat_view(g, x, &c, rows, cols, esize)?.map(|v| (v, Some(c))))
    };
    let (Some((va, _ka)), Some((vb, _kb))) = (view(a, m, k)?, view(b, k, n)?) else {
        return Ok(None);
    };
    if gemv(g, &va, &vb, [m, n, k, batch], dt, mem.ptr())? {
        return out(mem);
    }
    let h = blas(g)?.handle;
    let op = |t: bool| {
        if t {
            sys::cublasOperation_t::CUBLAS_OP_T
        } else {
            sys::cublasOperation_t::CUBLAS_OP_N
        }
    };
    // Row-major C = A B is column-major C^T = B^T A^T. The call's host time shows under
    // INGOT_CUDA_STATS=1.
    super::stats::timed("[cublas gemm call]", || unsafe {
        cudarc::cublas::result::gemm_strided_batched_ex(
            h,
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
            mem.ptr() as *mut _,
            dtype,
            n as i32,
            (m * n) as i64,
            batch as i32,
            ctype,
            sys::cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
        )
    })
    .map_err(|e| cuda_err("matmul", e))?;
    out(mem)
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
const GEMV_MAX_ROWS: usize = 8;

/// Shared memory a block may use without opting in to more.
const DEFAULT_SHARED: usize = 48 * 1024;

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
        if shared > DEFAULT_SHARED {
            f.set_attribute(
                cudarc::driver::sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                shared as i32,
            )
            .map_err(|e| cuda_err(&name, e))?;
        }
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
        &mut args,
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
