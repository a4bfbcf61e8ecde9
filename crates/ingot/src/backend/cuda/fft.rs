//! FFT on the GPU through cuFFT (complex64 and float32, as on the CPU), one axis at a time,
//! with the CPU kernel's contract (cpu/fft.rs): unnormalized; on the complex steps each line
//! is cropped or zero-padded to the node's length; RealForward transforms the last of `axes`
//! at the input's length; RealInverse reads the first N/2+1 bins and drops the imaginary
//! parts of the DC and Nyquist bins.
//!
//! Each step copies its lines into a fresh row-major buffer with the transformed axis last
//! (the pad kernel crops, pads and transposes in one pass; a contiguous last axis with no
//! crop or pad is read in place), runs one batched cuFFT plan on the GPU's stream, and
//! returns a strided view in the original axis order, so no copy goes back.

use super::{Args, Gpu};
use crate::array::{Array, Data};
use crate::buffer::Buffer;
use crate::dtype::DType;
use crate::op::{FftKind, PadMode};
use crate::shape::{contiguous_strides, size_of};
use crate::{Error, Result, Scalar};
use cudarc::cufft::{result as cufft, sys};
use parking_lot::Mutex;
use std::collections::HashMap;

const FORWARD: i32 = -1;
const INVERSE: i32 = 1;

/// Plans by (GPU, type, length, batch): making one costs far more than running it.
static PLANS: Mutex<Option<HashMap<(usize, i32, i32, i32), sys::cufftHandle>>> = Mutex::new(None);
const MAX_PLANS: usize = 64;

/// Live CUDA graphs that recorded a cuFFT call (`PlanPin`s).
static PINS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Keeps the plan cache from evicting while held (by a recorded graph).
pub(super) struct PlanPin(());

impl PlanPin {
    pub(super) fn new() -> PlanPin {
        PINS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        PlanPin(())
    }
}

impl Drop for PlanPin {
    fn drop(&mut self) {
        PINS.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

fn fft_err(e: impl std::fmt::Debug) -> Error {
    Error::Backend {
        op: "fft".into(),
        msg: format!("cuFFT: {e:?}"),
    }
}

/// Runs `exec` with the plan for `ty` over `batch` lines of `n` (basic layout), made on
/// first use and bound to the GPU's stream. The lock is held while the work is enqueued, so
/// a plan's work area is never used by two enqueues at once.
fn with_plan(
    g: &Gpu,
    ty: sys::cufftType,
    n: usize,
    batch: usize,
    exec: impl FnOnce(sys::cufftHandle) -> Result<()>,
) -> Result<()> {
    let key = (g.ordinal, ty as i32, n as i32, batch as i32);
    let mut plans = PLANS.lock();
    let map = plans.get_or_insert_with(HashMap::new);
    let plan = match map.get(&key) {
        Some(&p) => p,
        None => {
            // A recorded CUDA graph keeps using its plans' work areas: no eviction while
            // one that ran cuFFT lives.
            if map.len() >= MAX_PLANS && PINS.load(std::sync::atomic::Ordering::Relaxed) == 0 {
                // Work already enqueued with an old plan must finish before it goes.
                g.synchronize()?;
                for (_, p) in map.drain() {
                    // Safety: each plan was made below and is not used again.
                    let _ = unsafe { cufft::destroy(p) };
                }
            }
            let mut dims = [n as i32];
            // Safety: `dims` outlives the call; null embeds mean the basic layout.
            let p = unsafe {
                cufft::plan_many(
                    1,
                    dims.as_mut_ptr(),
                    std::ptr::null_mut(),
                    1,
                    0,
                    std::ptr::null_mut(),
                    1,
                    0,
                    ty,
                    batch as i32,
                )
            }
            .map_err(fft_err)?;
            // Safety: the plan is valid and the stream lives as long as the GPU.
            unsafe { cufft::set_stream(p, g.stream()?.cu_stream() as sys::cudaStream_t) }
                .map_err(fft_err)?;
            map.insert(key, p);
            p
        }
    };
    // cuFFT works on the stream itself: the launches queued before it (the input's copy,
    // the DC and Nyquist fix of an inverse real transform) go first.
    g.stream()?;
    // A thread recording a CUDA graph runs the plan on the capture stream, and binds it
    // back before the lock is released.
    let bound = super::graph::Rebind::new(g, |s| {
        // Safety: the plan is valid and used under PLANS' lock; both streams outlive it.
        unsafe { cufft::set_stream(plan, s as sys::cudaStream_t) }.map_err(fft_err)
    })?;
    if bound.is_bound() {
        super::graph::note_fft_plan();
    }
    exec(plan)
}

/// `x` viewed with `axis` moved last and that axis cut to at most `len` elements.
fn axis_last_view(x: &Array, axis: usize, len: usize) -> (Array, Vec<usize>) {
    let d = x.ready_data();
    let nd = x.ndim();
    let perm: Vec<usize> = (0..nd).filter(|&i| i != axis).chain([axis]).collect();
    let mut shape: Vec<usize> = perm.iter().map(|&i| x.shape()[i]).collect();
    let strides: Vec<isize> = perm.iter().map(|&i| d.strides[i]).collect();
    let last = shape.len() - 1;
    shape[last] = shape[last].min(len);
    let view = Data {
        buffer: d.buffer,
        strides,
        offset: d.offset,
    };
    (Array::from_data(view, shape.clone(), x.dtype()), perm)
}

/// `x` row-major with `axis` moved last, cut to `len` on it or zero-padded to `len`; with
/// its shape and the axis order. `x`'s own data when it already is so, unless `fresh` asks
/// for a copy the caller may overwrite.
fn lines(
    g: &Gpu,
    x: &Array,
    axis: usize,
    len: usize,
    fresh: bool,
) -> Result<Option<(Data, Vec<usize>, Vec<usize>)>> {
    let (view, perm) = axis_last_view(x, axis, len);
    let mut shape = view.shape().to_vec();
    *shape.last_mut().expect("at least one dim") = len;
    let d = view.ready_data();
    if !fresh && view.shape() == shape.as_slice() && d.strides == contiguous_strides(&shape) {
        // Already row-major with the axis last, nothing to crop or pad: read in place.
        return Ok(Some((d, shape, perm)));
    }
    let low = vec![0usize; shape.len()];
    let zero = (&low[..], PadMode::Constant, Scalar::Float(0.0));
    Ok(super::layout::pad(g, &view, zero, &shape)?.map(|mut v| (v.remove(0), shape, perm)))
}

/// Data of row-major `shape` (axes in `perm` order) as a view in the original order.
fn unpermute(d: Data, shape: &[usize], perm: &[usize]) -> (Data, Vec<usize>) {
    let st = contiguous_strides(shape);
    let mut strides = vec![0isize; perm.len()];
    let mut oshape = vec![0usize; perm.len()];
    for (k, &ax) in perm.iter().enumerate() {
        strides[ax] = st[k];
        oshape[ax] = shape[k];
    }
    (
        Data {
            buffer: d.buffer,
            strides,
            offset: d.offset,
        },
        oshape,
    )
}

fn ptr(g: &Gpu, d: &Data, size: usize) -> Result<u64> {
    Ok(d.buffer.device_ptr(g.ordinal)? + (d.offset * size) as u64)
}

/// One complex step: `x` (c64) transformed along `axis` to length `n`.
fn c2c(g: &Gpu, x: &Array, axis: usize, n: usize, inverse: bool) -> Result<Option<Array>> {
    let Some((src, shape, perm)) = lines(g, x, axis, n, false)? else {
        return Ok(None);
    };
    let total = size_of(&shape);
    let mem = g.alloc(total * 8)?;
    if total > 0 {
        let rows = total / n;
        let (ip, op) = (ptr(g, &src, 8)?, mem.ptr());
        with_plan(g, sys::cufftType::CUFFT_C2C, n, rows, |p| {
            // Safety: both blocks hold rows * n complex64 values on this GPU.
            unsafe {
                cufft::exec_c2c(
                    p,
                    ip as *mut sys::cufftComplex,
                    op as *mut sys::cufftComplex,
                    if inverse { INVERSE } else { FORWARD },
                )
            }
            .map_err(fft_err)
        })?;
    }
    drop(src); // freed into the cache; later work on the stream runs after the FFT
    let d = crate::backend::cpu::strided::out_data(Buffer::on_device(mem), &shape);
    let (d, oshape) = unpermute(d, &shape, &perm);
    Ok(Some(Array::from_data(d, oshape, DType::C64)))
}

pub(super) fn eval(
    g: &Gpu,
    x: &Array,
    axes: &[usize],
    kind: FftKind,
    out_shape: &[usize],
) -> Result<Option<Vec<Data>>> {
    // Safety: only probes whether the shared library can be opened.
    if !unsafe { sys::is_culib_present() } || x.ndim() > 6 || x.ndim() == 0 {
        return Ok(None);
    }
    let fits = |shape: &[usize]| size_of(shape) <= i32::MAX as usize;
    if !fits(x.shape()) || !fits(out_shape) {
        return Ok(None);
    }
    let want = match kind {
        FftKind::Forward | FftKind::Inverse | FftKind::RealInverse => DType::C64,
        FftKind::RealForward => DType::F32,
    };
    if x.dtype() != want {
        return Ok(None);
    }
    let mut cur = x.clone();
    let done = |a: Array| Ok(Some(vec![a.ready_data()]));
    match kind {
        FftKind::Forward | FftKind::Inverse => {
            for &ax in axes {
                match c2c(g, &cur, ax, out_shape[ax], kind == FftKind::Inverse)? {
                    Some(a) => cur = a,
                    None => return Ok(None),
                }
            }
            done(cur)
        }
        FftKind::RealForward => {
            let Some((&last, rest)) = axes.split_last() else {
                return Ok(None);
            };
            let n = x.shape()[last];
            if n == 0 {
                return Ok(None);
            }
            let Some((src, shape, perm)) = lines(g, x, last, n, false)? else {
                return Ok(None);
            };
            let rows = size_of(&shape) / n;
            let mut oshape = shape.clone();
            *oshape.last_mut().unwrap() = n / 2 + 1;
            let total = size_of(&oshape);
            let mem = g.alloc(total * 8)?;
            if total > 0 {
                let (ip, op) = (ptr(g, &src, 4)?, mem.ptr());
                with_plan(g, sys::cufftType::CUFFT_R2C, n, rows, |p| {
                    // Safety: rows * n reals in, rows * (n/2+1) complex out.
                    unsafe {
                        cufft::exec_r2c(p, ip as *mut sys::cufftReal, op as *mut sys::cufftComplex)
                    }
                    .map_err(fft_err)
                })?;
            }
            drop(src);
            let d = crate::backend::cpu::strided::out_data(Buffer::on_device(mem), &oshape);
            let (d, os) = unpermute(d, &oshape, &perm);
            cur = Array::from_data(d, os, DType::C64);
            for &ax in rest {
                match c2c(g, &cur, ax, out_shape[ax], false)? {
                    Some(a) => cur = a,
                    None => return Ok(None),
                }
            }
            done(cur)
        }
        FftKind::RealInverse => {
            let Some((&last, rest)) = axes.split_last() else {
                return Ok(None);
            };
            for &ax in rest {
                match c2c(g, &cur, ax, out_shape[ax], true)? {
                    Some(a) => cur = a,
                    None => return Ok(None),
                }
            }
            let n = out_shape[last];
            let bins = n / 2 + 1;
            // The bins as fresh rows (C2R overwrites its input), cut or padded to n/2+1.
            let Some((src, shape, perm)) = lines(g, &cur, last, bins, true)? else {
                return Ok(None);
            };
            let rows = size_of(&shape) / bins;
            let mut oshape = shape.clone();
            *oshape.last_mut().unwrap() = n;
            let total = size_of(&oshape);
            let mem = g.alloc(total * 4)?;
            if total > 0 {
                let ip = ptr(g, &src, 8)?;
                zero_dc_nyquist_imag(g, ip, rows, bins, n)?;
                let op = mem.ptr();
                with_plan(g, sys::cufftType::CUFFT_C2R, n, rows, |p| {
                    // Safety: rows * (n/2+1) complex in (ours to overwrite), rows * n reals out.
                    unsafe {
                        cufft::exec_c2r(p, ip as *mut sys::cufftComplex, op as *mut sys::cufftReal)
                    }
                    .map_err(fft_err)
                })?;
            }
            drop(src);
            let d = crate::backend::cpu::strided::out_data(Buffer::on_device(mem), &oshape);
            let (d, os) = unpermute(d, &oshape, &perm);
            done(Array::from_data(d, os, DType::F32))
        }
    }
}

/// A real signal's DC bin (and Nyquist bin, for even n) is real: their imaginary parts go,
/// as the CPU (and pocketfft) do.
fn zero_dc_nyquist_imag(g: &Gpu, rows_ptr: u64, rows: usize, bins: usize, n: usize) -> Result<()> {
    let f = g.kernel("fft_zero_dc_imag", || {
        "extern \"C\" __global__ void fft_zero_dc_imag(float* x, long long rows, long long bins, int nyq) {\n\
         long long r = (long long)blockIdx.x * blockDim.x + threadIdx.x;\n\
         if (r >= rows) return;\n\
         x[2 * r * bins + 1] = 0.f;\n\
         if (nyq) x[2 * (r * bins + bins - 1) + 1] = 0.f;\n}\n"
            .to_string()
    })?;
    let mut args = Args::new();
    args.push(rows_ptr)
        .push(rows as i64)
        .push(bins as i64)
        .push((n % 2 == 0) as i32);
    g.launch_1d(&f, rows, &args)
}
