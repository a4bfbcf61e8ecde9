//! Matmul through cuBLAS (strided batched GEMM): f32, f64, f16 and bf16 (f32 accumulation),
//! complex64. Row-major operands are handed over as their column-major transposes, so no
//! copy is made unless a matrix has neither unit row nor unit column stride, or its batch
//! offsets are not one arithmetic progression. Integer matmul runs on the CPU for now.

use super::{cuda_err, elementwise, Gpu};
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
    let h = blas(g)?.handle;
    let op = |t: bool| {
        if t {
            sys::cublasOperation_t::CUBLAS_OP_T
        } else {
            sys::cublasOperation_t::CUBLAS_OP_N
        }
    };
    // Row-major C = A B is column-major C^T = B^T A^T.
    unsafe {
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
    }
    .map_err(|e| cuda_err("matmul", e))?;
    out(mem)
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
