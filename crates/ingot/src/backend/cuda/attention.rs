//! Fused scaled dot-product attention (kernels/attention.cuh) for f16, bf16, f32 and f64,
//! head dims up to 256: one warp per query row with an online softmax, the scores never
//! stored; decoding (at most 1024 query rows, any number of keys) splits the keys across
//! blocks and merges the partial softmaxes (`INGOT_CUDA_ATTENTION=0` opts out; ops/fast.rs picks where the
//! fused node is built). Keys and values are read in place when their rows are contiguous
//! (KV-cache views); other operands and the mask are made row-major first.
//!
//! Prefill in f16 and bf16 (more than 16 query rows a head, head dims 16 to 128 in steps of
//! 16, no mask or causal, sm_80 and later) runs kernels/flash.cuh instead: flash attention
//! on the tensor cores, and so do the gradients of what it takes (`grad_eval`);
//! `INGOT_CUDA_FLASH=0` opts out.

use super::elementwise::{ctype, row_major, COMMON, FUNCS};
use super::{Args, Gpu};
use crate::array::{Array, Data};
use crate::backend::cpu::strided::out_data;
use crate::buffer::Buffer;
use crate::op::AttentionMask;
use crate::shape::size_of;
use crate::{DType, Result};

const ATTENTION: &str = include_str!("kernels/attention.cuh");
const FLASH: &str = include_str!("kernels/flash.cuh");
const WARPS: usize = 4;
/// Query rows a flash block takes (kernels/flash.cuh's F_BQ and `bq`'s tile).
const FLASH_ROWS: usize = 64;
/// Keys a block of the backward's `bkv` takes.
const FLASH_KEYS: usize = 64;

fn flash_source(base: &str, dt: DType, d: usize) -> String {
    let mma = if dt == DType::BF16 { "bf16" } else { "f16" };
    format!(
        "{COMMON}\n#define T {}\n#define MMA_T \"{mma}\"\n#define FD {d}\n#define KNAME(k) {base}_##k\n{FLASH}\n",
        ctype(dt)
    )
}

fn flash_base(dt: DType, d: usize) -> String {
    format!("flash_{}_{d}", ctype(dt))
}

/// Whether the flash kernels take attention of this kind (`l` query rows a head over `s`
/// keys, head dims `e` and `ev`) on a GPU of compute capability `sm` (e.g. 90): f16 or
/// bf16, no mask or causal, one head dim of 16 to 128 in steps of 16, some keys, sm_80 on.
/// The forward pass (`grad` false) takes prompts, more than 16 rows a head (decoding keeps
/// the split-KV kernel); the gradient takes any rows.
pub(crate) fn flash_takes(
    dt: DType,
    kind: AttentionMask,
    (l, s, e, ev): (usize, usize, usize, usize),
    sm: u32,
    grad: bool,
) -> bool {
    super::flash_enabled()
        && sm >= 80
        && matches!(dt, DType::F16 | DType::BF16)
        && matches!(kind, AttentionMask::None | AttentionMask::Causal)
        && e == ev
        && e % 16 == 0
        && (16..=128).contains(&e)
        && (1..=i32::MAX as usize).contains(&s)
        && l > if grad { 0 } else { 16 }
        && l <= i32::MAX as usize
}

/// Whether the flash kernels' 16-byte loads fit the operands: every pointer 16-byte
/// aligned, and the key and value heads a multiple of 8 elements apart.
fn flash_aligned(ptrs: &[u64], head_strides: &[i64; 2]) -> bool {
    ptrs.iter().all(|p| p % 16 == 0) && head_strides.iter().all(|h| h % 8 == 0)
}

/// Queues the flash forward kernel: `out` row-major like q and, for the backward pass when
/// not 0, each row's lse and D = g · o (`grads`: lse, g, D). `qkv` are device pointers,
/// `heads` the query heads of every batch (B·Hq).
#[allow(clippy::too_many_arguments)]
fn flash_forward(
    g: &Gpu,
    dt: DType,
    out: u64,
    grads: [u64; 3],
    qkv: [u64; 3],
    (heads, hq, hkv): (usize, usize, usize),
    (l, s, e): (usize, usize, usize),
    scale: f64,
    causal: bool,
    head_strides: [i64; 2],
) -> Result<()> {
    let fb = flash_base(dt, e);
    let f = g.kernel_in(&fb, &format!("{fb}_flash"), || flash_source(&fb, dt, e))?;
    let mut args = Args::new();
    args.push(out).push(grads[0]).push(grads[1]).push(grads[2]);
    args.push(qkv[0]).push(qkv[1]).push(qkv[2]);
    args.push(heads as i64)
        .push(hq as i32)
        .push(hkv as i32)
        .push(l as i32)
        .push(s as i32)
        .push((scale * std::f64::consts::LOG2_E) as f32)
        .push(i32::from(causal))
        .push(head_strides[0])
        .push(head_strides[1]);
    let blocks = l.div_ceil(FLASH_ROWS) * heads;
    g.launch(&f, (blocks as u32, 1, 1), (128, 1, 1), 0, &args)?;
    super::note_flash_launch();
    Ok(())
}

fn source(base: &str, dt: DType) -> String {
    let c = if dt == DType::F64 { "double" } else { "float" };
    let (_, dec_u, dec_pipe) = decode_tuning();
    format!(
        "{COMMON}\n{FUNCS}\n#define T {}\n#define C {c}\n#define KNAME(k) {base}_##k\n#define DEC_U {dec_u}\n#define DEC_PIPE {}\n{ATTENTION}\n",
        ctype(dt),
        dec_pipe as i32
    )
}

fn base(dt: DType) -> String {
    format!("attention_{}", ctype(dt))
}

/// Module sources for the compile check: every dtype.
pub(crate) fn sample_sources() -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = [DType::F16, DType::BF16, DType::F32, DType::F64]
        .into_iter()
        .map(|dt| (base(dt), source(&base(dt), dt)))
        .collect();
    for dt in [DType::F16, DType::BF16] {
        for d in [64, 80, 128] {
            v.push((flash_base(dt, d), flash_source(&flash_base(dt, d), dt, d)));
        }
    }
    v
}

pub(super) fn eval(
    g: &Gpu,
    inputs: &[Array],
    scale: f64,
    kind: AttentionMask,
    out_shape: &[usize],
) -> Result<Option<Vec<Data>>> {
    let dt = inputs[0].dtype();
    let n = out_shape.len();
    let (qs, ks) = (inputs[0].shape(), inputs[1].shape());
    let (hq, l, e) = (qs[n - 3], qs[n - 2], qs[n - 1]);
    let (hkv, s) = (ks[n - 3], ks[n - 2]);
    let ev = out_shape[n - 1];
    if !matches!(dt, DType::F16 | DType::BF16 | DType::F32 | DType::F64) || e > 256 || ev > 256 {
        return Ok(None);
    }
    let total = size_of(out_shape);
    let mem = g.alloc(total * dt.size())?;
    let rows = size_of(&out_shape[..n - 1]);
    if total == 0 {
        return Ok(Some(vec![out_data(Buffer::on_device(mem), out_shape)]));
    }
    if l > i32::MAX as usize
        || s > i32::MAX as usize
        || hq > i32::MAX as usize
        || rows.div_ceil(WARPS) > i32::MAX as usize
    {
        return Ok(None);
    }
    let Some((mut held, ptrs, head_strides)) = operands(g, &inputs[..1], &inputs[1..3])? else {
        return Ok(None);
    };
    let mptr = match inputs.get(3) {
        Some(m) => {
            // Bool masks are read as bytes; the additive one has the compute dtype already.
            let Some((d, p)) = row_major(g, m)? else {
                return Ok(None);
            };
            held.push(d);
            p
        }
        None => 0u64,
    };
    let kind_code: i32 = match kind {
        AttentionMask::None => 0,
        AttentionMask::Causal => 1,
        AttentionMask::Allow => 2,
        AttentionMask::Additive => 3,
    };
    let base = base(dt);
    let push_scale = |args: &mut Args| {
        if dt == DType::F64 {
            args.push(scale);
        } else {
            args.push(scale as f32);
        }
    };
    let bhs = rows / l;
    if flash_aligned(&ptrs, &head_strides)
        && flash_takes(dt, kind, (l, s, e, ev), g.sm(), false)
        && l.div_ceil(FLASH_ROWS) * bhs <= i32::MAX as usize
    {
        flash_forward(
            g,
            dt,
            mem.ptr(),
            [0; 3],
            [ptrs[0], ptrs[1], ptrs[2]],
            (bhs, hq, hkv),
            (l, s, e),
            scale,
            kind == AttentionMask::Causal,
            head_strides,
        )?;
        drop(held);
        return Ok(Some(vec![out_data(Buffer::on_device(mem), out_shape)]));
    }
    let splits = decode_splits(rows, s);
    if splits > 0 {
        let chunk = s.div_ceil(splits);
        let csize = if dt == DType::F64 { 8 } else { 4 };
        let part = g.alloc(rows * splits * (ev + 2) * csize)?;
        let vector = decv_takes(dt, e, ev, &ptrs, &head_strides);
        let name = if vector { "decv" } else { "dec" };
        let f = g.kernel_in(&base, &format!("{base}_{name}"), || source(&base, dt))?;
        let mut args = Args::new();
        args.push(part.ptr())
            .push(ptrs[0])
            .push(ptrs[1])
            .push(ptrs[2])
            .push(mptr)
            .push(hq as i32)
            .push(hkv as i32)
            .push(l as i32)
            .push(s as i32)
            .push(e as i32);
        if !vector {
            args.push(ev as i32);
        }
        push_scale(&mut args);
        args.push(kind_code)
            .push(head_strides[0])
            .push(head_strides[1])
            .push(chunk as i32);
        g.launch(
            &f,
            (rows as u32, splits as u32, 1),
            ((32 * WARPS) as u32, 1, 1),
            0,
            &args,
        )?;
        if vector {
            super::note_decv_launch();
        }
        let f = g.kernel_in(&base, &format!("{base}_comb"), || source(&base, dt))?;
        let mut args = Args::new();
        args.push(mem.ptr())
            .push(part.ptr())
            .push(splits as i32)
            .push(ev as i32);
        g.launch(&f, (rows as u32, 1, 1), (128, 1, 1), 0, &args)?;
        drop(part);
        drop(held);
        return Ok(Some(vec![out_data(Buffer::on_device(mem), out_shape)]));
    }
    let f = g.kernel_in(&base, &format!("{base}_fwd"), || source(&base, dt))?;
    let mut args = Args::new();
    args.push(mem.ptr())
        .push(ptrs[0])
        .push(ptrs[1])
        .push(ptrs[2])
        .push(mptr)
        .push(rows as i64)
        .push(hq as i32)
        .push(hkv as i32)
        .push(l as i32)
        .push(s as i32)
        .push(e as i32)
        .push(ev as i32);
    push_scale(&mut args);
    args.push(kind_code)
        .push(head_strides[0])
        .push(head_strides[1]);
    g.launch(
        &f,
        (rows.div_ceil(WARPS) as u32, 1, 1),
        ((32 * WARPS) as u32, 1, 1),
        0,
        &args,
    )?;
    drop(held);
    Ok(Some(vec![out_data(Buffer::on_device(mem), out_shape)]))
}

/// The kernels' operands: `rows` made row-major, then keys and values read in place when
/// their rows are (a KV cache's `[:len]` view): the data to hold until the launch, the
/// device pointers in that order, and the keys' and values' head strides.
type Operands = (Vec<Data>, Vec<u64>, [i64; 2]);
fn operands(g: &Gpu, rows: &[Array], kv: &[Array]) -> Result<Option<Operands>> {
    let (mut held, mut ptrs) = (Vec::new(), Vec::new());
    for x in rows {
        let Some((d, p)) = row_major(g, x)? else {
            return Ok(None);
        };
        held.push(d);
        ptrs.push(p);
    }
    let mut head_strides = [0i64; 2];
    for (x, hs) in kv.iter().zip(head_strides.iter_mut()) {
        let Some((d, p, stride)) = kv_operand(g, x)? else {
            return Ok(None);
        };
        held.push(d);
        ptrs.push(p);
        *hs = stride;
    }
    Ok(Some((held, ptrs, head_strides)))
}

/// Keys or values `(..., H, S, E)` for the kernels: their data, device pointer and head
/// stride, in place when their rows are contiguous, else made row-major.
fn kv_operand(g: &Gpu, x: &Array) -> Result<Option<(Data, u64, i64)>> {
    if let Some(t) = head_blocks(g, x)? {
        return Ok(Some(t));
    }
    let Some((d, p)) = row_major(g, x)? else {
        return Ok(None);
    };
    let sh = x.shape();
    Ok(Some((d, p, (sh[sh.len() - 2] * sh[sh.len() - 1]) as i64)))
}

/// `Op::AttentionGrad` on the flash kernels: the forward kernel again (for each row's lse and
/// D = g · o), then dk and dv (`bkv`, a block per 64 keys of a key/value head, walking its
/// query heads) and dq (`bq`, a block per 64 query rows). None where they do not take it.
pub(super) fn grad_eval(
    g: &Gpu,
    inputs: &[Array],
    scale: f64,
    kind: AttentionMask,
    outs: &[(Vec<usize>, DType)],
) -> Result<Option<Vec<Data>>> {
    let dt = inputs[0].dtype();
    let (qs, ks, vs) = (inputs[0].shape(), inputs[1].shape(), inputs[2].shape());
    let n = qs.len();
    let (hq, l, e) = (qs[n - 3], qs[n - 2], qs[n - 1]);
    let (hkv, s, ev) = (ks[n - 3], ks[n - 2], vs[n - 1]);
    if !flash_takes(dt, kind, (l, s, e, ev), g.sm(), true) {
        return Ok(None);
    }
    let rows = size_of(&qs[..n - 1]);
    let (bhs, bkh) = (rows / l, size_of(&ks[..n - 2]));
    let qblocks = l.div_ceil(FLASH_ROWS) * bhs;
    let kblocks = s.div_ceil(FLASH_KEYS) * bkh;
    if hq > i32::MAX as usize || hkv > i32::MAX as usize || qblocks.max(kblocks) > i32::MAX as usize
    {
        return Ok(None);
    }
    let rows_of = [inputs[0].clone(), inputs[3].clone()];
    let Some((held, ptrs, head_strides)) = operands(g, &rows_of, &inputs[1..3])? else {
        return Ok(None);
    };
    if !flash_aligned(&ptrs, &head_strides) {
        return Ok(None);
    }
    let (q, go, k, v) = (ptrs[0], ptrs[1], ptrs[2], ptrs[3]);
    let size = dt.size();
    let o = g.alloc(rows * e * size)?;
    let lse = g.alloc(rows * 4)?;
    let dsum = g.alloc(rows * 4)?;
    flash_forward(
        g,
        dt,
        o.ptr(),
        [lse.ptr(), go, dsum.ptr()],
        [q, k, v],
        (bhs, hq, hkv),
        (l, s, e),
        scale,
        kind == AttentionMask::Causal,
        head_strides,
    )?;
    drop(o);
    let fb = flash_base(dt, e);
    let src = || flash_source(&fb, dt, e);
    let scale_log2 = (scale * std::f64::consts::LOG2_E) as f32;
    let causal = i32::from(kind == AttentionMask::Causal);
    let dq = g.alloc(rows * e * size)?;
    let dk = g.alloc(bkh * s * e * size)?;
    let dv = g.alloc(bkh * s * e * size)?;
    // bkv's tiles: K and V of 64 rows, Q and g of 32, and 32 rows' lse and D.
    let shared = 192 * (e + 8) * size + 256;
    let f = g.kernel_in(&fb, &format!("{fb}_bkv"), src)?;
    super::allow_shared(g, &f, shared, "scaled_dot_product_attention_grad")?;
    // Both backward kernels take the same operands after their outputs.
    let operands = |args: &mut Args, heads: usize| {
        args.push(q)
            .push(k)
            .push(v)
            .push(go)
            .push(lse.ptr())
            .push(dsum.ptr())
            .push(heads as i64)
            .push(hq as i32)
            .push(hkv as i32)
            .push(l as i32)
            .push(s as i32)
            .push(scale_log2)
            .push(scale as f32)
            .push(causal)
            .push(head_strides[0])
            .push(head_strides[1]);
    };
    let mut args = Args::new();
    args.push(dk.ptr()).push(dv.ptr());
    operands(&mut args, bkh);
    g.launch(
        &f,
        (kblocks as u32, 1, 1),
        (128, 1, 1),
        shared as u32,
        &args,
    )?;
    let f = g.kernel_in(&fb, &format!("{fb}_bq"), src)?;
    let mut args = Args::new();
    args.push(dq.ptr());
    operands(&mut args, bhs);
    g.launch(&f, (qblocks as u32, 1, 1), (128, 1, 1), 0, &args)?;
    drop((lse, dsum, held));
    Ok(Some(
        [dq, dk, dv]
            .into_iter()
            .zip(outs)
            .map(|(m, (shape, _))| out_data(Buffer::on_device(m), shape))
            .collect(),
    ))
}

/// Whether split-KV decoding can use `decv` (16-byte loads): f16, bf16 or f32 with equal
/// key and value widths that are a power of two times a 16-byte vector, up to 32 vectors,
/// and every row and head starting on 16 bytes.
fn decv_takes(dt: DType, e: usize, ev: usize, ptrs: &[u64], head_strides: &[i64; 2]) -> bool {
    if !matches!(dt, DType::F16 | DType::BF16 | DType::F32) || !super::decv_enabled() {
        return false;
    }
    let vec = 16 / dt.size();
    let lanes = e / vec;
    e == ev
        && e % vec == 0
        && lanes.is_power_of_two()
        && lanes <= 32
        && ptrs[..3].iter().all(|p| p % 16 == 0)
        && head_strides.iter().all(|s| s % vec as i64 == 0)
}

/// How many key splits the decoding kernels use for `rows` query rows over `s` keys: 0
/// (the row-per-warp kernel) when the rows alone fill the GPU, else enough blocks to cover
/// the SMs about eight times, at least 8 keys a split (2 a warp). Short caches too: the
/// row-per-warp kernel reads a key a lane, one element at a time, which took 30 us over
/// 20 keys of a decoded token where the split kernel's coalesced rows take a few.
fn decode_splits(rows: usize, s: usize) -> usize {
    if rows > 1024 || s == 0 || rows > u32::MAX as usize {
        return 0;
    }
    (decode_tuning().0 / rows)
        .clamp(1, s.div_ceil(8))
        .min(u16::MAX as usize)
}

/// The blocks split-KV decoding aims for (rows times splits), the key steps a `decv` warp
/// loads at once (DEC_U) and whether it loads the next steps while scoring the current
/// ones (DEC_PIPE): 528, 4 and yes, or `INGOT_CUDA_DEC_BLOCKS` (64 to 65536),
/// `INGOT_CUDA_DEC_U` (1, 2, 4 or 8) and `INGOT_CUDA_DEC_PIPE` (0 or 1), for tuning on a
/// GPU. One query over 8,192 keys, 32 x 128, bf16, on an H100 (run G25): 1024 blocks 75.4-
/// 76.2 us, 528 blocks 66.4 us, 528 pipelined 64.7-65.3 us, 2048 blocks 99-105 us (fewer,
/// longer blocks spend less on each block's merge and on the combining kernel); 8 steps
/// pipelined spills, 79-97 us.
fn decode_tuning() -> (usize, usize, bool) {
    static T: std::sync::OnceLock<(usize, usize, bool)> = std::sync::OnceLock::new();
    *T.get_or_init(|| {
        let var = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<usize>().ok());
        let blocks = var("INGOT_CUDA_DEC_BLOCKS").filter(|b| (64..=65536).contains(b));
        let u = var("INGOT_CUDA_DEC_U").filter(|u| [1, 2, 4, 8].contains(u));
        let pipe = var("INGOT_CUDA_DEC_PIPE") != Some(0);
        (blocks.unwrap_or(528), u.unwrap_or(4), pipe)
    })
}

/// `x (..., H, S, E)` whose rows are contiguous and whose heads, batch included, are one
/// stride apart: its data, device pointer and that stride (in elements).
fn head_blocks(g: &Gpu, x: &Array) -> Result<Option<(Data, u64, i64)>> {
    let d = x.ready_data();
    let (sh, st) = (x.shape(), &d.strides);
    let n = sh.len();
    if n < 3 || st.iter().any(|&v| v < 0) {
        return Ok(None);
    }
    let (s, e) = (sh[n - 2], sh[n - 1]);
    if (e > 1 && st[n - 1] != 1) || (s > 1 && st[n - 2] != e as isize) {
        return Ok(None);
    }
    let head = st[n - 3];
    // Every leading axis must continue the head stride (heads flatten to one index).
    let mut want = head * sh[n - 3] as isize;
    for i in (0..n - 3).rev() {
        if sh[i] > 1 && st[i] != want {
            return Ok(None);
        }
        want *= sh[i] as isize;
    }
    let head = if sh[..n - 2].iter().product::<usize>() <= 1 {
        (s * e) as i64
    } else {
        head as i64
    };
    let ptr = d.buffer.device_ptr(g.ordinal)? + (d.offset * x.dtype().size()) as u64;
    Ok(Some((d, ptr, head)))
}
