//! Softmax and log-softmax along one axis (kernels/softmax.cuh), for f16, bf16, f32 and f64
//! (halves computed in f32, as on the CPU). A non-contiguous input is first copied to
//! row-major order on the GPU. The same module holds softmax cross entropy and its gradient
//! (`ce_eval`).

use super::elementwise::{ctype, row_major, COMMON, FUNCS};
use super::{Args, Gpu};
use crate::array::{Array, Data};
use crate::backend::cpu::strided::out_data;
use crate::buffer::Buffer;
use crate::op::Op;
use crate::shape::size_of;
use crate::{DType, Result};

const SOFTMAX: &str = include_str!("kernels/softmax.cuh");

fn source(base: &str, dt: DType, log: bool) -> String {
    let c = if dt == DType::F64 { "double" } else { "float" };
    format!(
        "{COMMON}\n{FUNCS}\n#define T {}\n#define C {c}\n#define LOG {}\n#define KNAME(k) {base}_##k\n{SOFTMAX}\n",
        ctype(dt),
        log as i32
    )
}

/// Module bases for the compile check: every dtype, both forms.
pub(crate) fn sample_sources() -> Vec<(String, String)> {
    let mut v = Vec::new();
    for dt in [DType::F16, DType::BF16, DType::F32, DType::F64] {
        for log in [false, true] {
            let base = base(dt, log);
            v.push((base.clone(), source(&base, dt, log)));
        }
    }
    v
}

fn base(dt: DType, log: bool) -> String {
    format!("{}softmax_{}", if log { "log" } else { "" }, ctype(dt))
}

pub(super) fn eval(g: &Gpu, x: &Array, axis: usize, log: bool) -> Result<Option<Vec<Data>>> {
    let dt = x.dtype();
    if !matches!(dt, DType::F16 | DType::BF16 | DType::F32 | DType::F64) || axis >= x.ndim() {
        return Ok(None);
    }
    let shape = x.shape();
    let n = size_of(shape);
    let mem = g.alloc(n * dt.size())?;
    if n == 0 {
        return Ok(Some(vec![out_data(Buffer::on_device(mem), shape)]));
    }
    let Some((_src, xptr)) = row_major(g, x)? else {
        return Ok(None);
    };
    let len = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let base = base(dt, log);
    let src = || source(&base, dt, log);
    let mut args = Args::new();
    args.push(mem.ptr()).push(xptr);
    if inner == 1 {
        let rows = n / len;
        if rows > i32::MAX as usize {
            return Ok(None);
        }
        // A row that fits in the 48 KiB of shared memory every kernel may take is read once.
        let cached = len * if dt == DType::F64 { 8 } else { 4 };
        let (which, shared) = if cached <= 48 << 10 {
            ("rows", cached as u32)
        } else {
            ("row", 0)
        };
        let f = g.kernel_in(&base, &format!("{base}_{which}"), src)?;
        args.push(rows as i64).push(len as i64);
        // Short rows waste most of a 256-thread block; 64 threads still cover 2 KiB rows
        // in a few loads each.
        let threads = if len <= 1024 { 64 } else { 256 };
        g.launch(&f, (rows as u32, 1, 1), (threads, 1, 1), shared, &args)?;
    } else {
        let lines = n / len;
        let f = g.kernel_in(&base, &format!("{base}_col"), src)?;
        args.push(lines as i64).push(len as i64).push(inner as i64);
        g.launch_1d(&f, lines, &args)?;
    }
    Ok(Some(vec![out_data(Buffer::on_device(mem), shape)]))
}

/// `Op::CrossEntropy` (the loss a row, in the compute dtype) or `Op::CrossEntropyGrad` (the
/// logits' gradient, in their dtype): one block per row.
pub(super) fn ce_eval(g: &Gpu, op: &Op, inputs: &[Array]) -> Result<Option<Vec<Data>>> {
    let x = &inputs[0];
    let dt = x.dtype();
    if !matches!(dt, DType::F16 | DType::BF16 | DType::F32 | DType::F64) || x.ndim() == 0 {
        return Ok(None);
    }
    let grad = matches!(op, Op::CrossEntropyGrad);
    let shape = x.shape();
    let len = shape[shape.len() - 1];
    let rows = size_of(&shape[..shape.len() - 1]);
    let cdt = if dt == DType::F64 {
        DType::F64
    } else {
        DType::F32
    };
    let (out_shape, out_size) = if grad {
        (shape, dt.size())
    } else {
        (&shape[..shape.len() - 1], cdt.size())
    };
    let mem = g.alloc(size_of(out_shape) * out_size)?;
    if size_of(out_shape) == 0 {
        return Ok(Some(vec![out_data(Buffer::on_device(mem), out_shape)]));
    }
    if rows > i32::MAX as usize || len == 0 {
        return Ok(None);
    }
    // Each source is kept until the launch is queued.
    let mut srcs = Vec::new();
    let mut args = Args::new();
    args.push(mem.ptr());
    for a in &inputs[..2 + grad as usize] {
        let Some((src, ptr)) = row_major(g, a)? else {
            return Ok(None);
        };
        srcs.push(src);
        args.push(ptr);
    }
    let bad = g.alloc(8)?;
    // Safety: `bad` is an 8-byte block of this GPU; the memset is ordered on its stream.
    unsafe { cudarc::driver::result::memset_d8_async(bad.ptr(), 0xff, 8, g.stream()?.cu_stream()) }
        .map_err(|e| super::cuda_err(op.name(), e))?;
    args.push(rows as i64).push(len as i64).push(bad.ptr());
    let base = base(dt, false);
    let name = format!("{base}_{}", if grad { "ce_grad" } else { "ce" });
    let f = g.kernel_in(&base, &name, || source(&base, dt, false))?;
    g.launch(&f, (rows as u32, 1, 1), (256, 1, 1), 0, &args)?;
    drop(srcs);
    // A target past the classes is an error, as a gather's index out of bounds: the host
    // waits for the kernel's word (a graph checks after the fact).
    if !super::graph::defer_index_check(g, op.name(), bad.ptr())? {
        let mut first = [0u64; 1];
        // Safety: 8 bytes from an 8-byte block; the synchronize below completes the copy.
        unsafe {
            cudarc::driver::result::memcpy_dtoh_async(
                &mut first[..],
                bad.ptr(),
                g.stream()?.cu_stream(),
            )
        }
        .map_err(|e| super::cuda_err(op.name(), e))?;
        g.synchronize()?;
        super::count_transfer(false, 8);
        if first[0] != u64::MAX {
            return Err(crate::backend::cpu::misc::ce_target_error(
                op.name(),
                first[0] as usize,
                len,
            ));
        }
    }
    Ok(Some(vec![out_data(Buffer::on_device(mem), out_shape)]))
}
