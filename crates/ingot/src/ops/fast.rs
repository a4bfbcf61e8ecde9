//! Fast ops: primitives with a fused kernel and a reference decomposition into ordinary
//! ops (the design's "fast ops"). The decomposition gives their gradients and serves any
//! backend without the kernel; the tests check the kernel against it.
//!
//! `scaled_dot_product_attention`: `softmax(q kᵀ · scale + mask) v`, with grouped-query
//! heads read in place (no repeated K/V) and the scores never materialized by the kernel.
//! `rms_norm`, `layer_norm` and `rope` (fast/norm_rope.rs): one pass over each row.
//! `softmax_cross_entropy` (fast/cross_entropy.rs): the loss and its gradient, each one
//! pass over each row of logits, with no f32 copy of them.
//! `linear` (fast/linear.rs): `act(x @ w + bias)`, on the GPU one cuBLASLt call with the
//! bias and activation as its epilogue.

mod cross_entropy;
mod linear;
mod norm_rope;
pub use crate::op::LinearAct;
pub(crate) use cross_entropy::{ce_out, ce_reference_of, cross_entropy_grad};
pub use cross_entropy::{softmax_cross_entropy, softmax_cross_entropy_reference};
pub(crate) use linear::consts as linear_consts;
pub use linear::{linear, linear_reference};
pub(crate) use linear::{linear_grads, linear_out, linear_reference_of};
pub(crate) use norm_rope::{fast_out, reference_of, rope_inv_freqs};
pub use norm_rope::{
    layer_norm, layer_norm_reference, rms_norm, rms_norm_reference, rope, rope_reference,
    RopeOffset,
};

use crate::array::Array;
use crate::dtype::{DType, Scalar};
use crate::op::{AttentionMask, Op};
use crate::shape::{broadcast_shapes, fmt_shape};
use crate::{Error, Result};

/// The mask of [`scaled_dot_product_attention`].
#[derive(Clone, Copy, Debug)]
pub enum SdpaMask<'a> {
    /// Query i attends to keys `j <= i + S - L`: causal, aligned to the last key, so a block
    /// of L queries that follows S - L cached positions sees all of them (decoding).
    Causal,
    /// Boolean, broadcastable to `(..., Hq, L, S)`: `true` where a query may attend to a key
    /// (the meaning of PyTorch's boolean `attn_mask`).
    Allow(&'a Array),
    /// Added to the scores (use -inf to forbid a pair), broadcastable to `(..., Hq, L, S)`.
    Additive(&'a Array),
}

const OP: &str = "scaled_dot_product_attention";

/// The output shape of an attention node on normalized inputs: q `(..., Hq, L, E)`,
/// k `(..., Hkv, S, E)`, v `(..., Hkv, S, Ev)` with the same leading dims, Hq a multiple of
/// Hkv, and a mask input `(..., Hq, L, S)` for the boolean and additive kinds. Shared by
/// the node builder and the import check.
pub(crate) fn attention_out(
    inputs: &[(Vec<usize>, DType)],
    mask: AttentionMask,
) -> Result<(Vec<usize>, DType)> {
    let with_mask = matches!(mask, AttentionMask::Allow | AttentionMask::Additive);
    let bad = |why: &str| {
        let parts: Vec<String> = inputs
            .iter()
            .map(|(s, d)| format!("{} {d}", fmt_shape(s)))
            .collect();
        Error::invalid(OP, format!("{why}: inputs {}", parts.join(", ")))
    };
    if inputs.len() != 3 + with_mask as usize {
        return Err(bad(&format!(
            "takes q, k, v{}",
            if with_mask { " and a mask" } else { "" }
        )));
    }
    let (q, k, v) = (&inputs[0], &inputs[1], &inputs[2]);
    let n = q.0.len();
    if n < 3
        || k.0.len() != n
        || v.0.len() != n
        || q.0[..n - 3] != k.0[..n - 3]
        || k.0[..n - 3] != v.0[..n - 3]
    {
        return Err(bad(
            "q, k and v must be (..., H, L, E) with the same leading dims",
        ));
    }
    if let Some(why) = operand_problem(q, k, v) {
        return Err(bad(why));
    }
    let s = k.0[n - 2];
    if with_mask {
        let m = &inputs[3];
        let mut want = q.0[..n - 1].to_vec();
        want.push(s);
        let dt_ok = match mask {
            AttentionMask::Allow => m.1 == DType::Bool,
            _ => m.1 == compute_dtype(q.1),
        };
        if m.0 != want || !dt_ok {
            return Err(bad(
                "the mask must be (..., Hq, L, S), bool or the compute dtype",
            ));
        }
    }
    let mut out = q.0[..n - 1].to_vec();
    out.push(v.0[n - 1]);
    Ok((out, q.1))
}

/// The outputs of `Op::AttentionGrad` (dq, dk, dv: q's, k's and v's shapes and dtype) from
/// its inputs q, k, v and g, or why they do not fit (the import check).
pub(crate) fn attention_grad_out(
    inputs: &[(Vec<usize>, DType)],
    mask: AttentionMask,
) -> Result<Vec<(Vec<usize>, DType)>> {
    let bad = |why: &str| {
        let parts: Vec<String> = inputs
            .iter()
            .map(|(s, d)| format!("{} {d}", fmt_shape(s)))
            .collect();
        Error::invalid(
            "scaled_dot_product_attention_grad",
            format!("{why}: inputs {}", parts.join(", ")),
        )
    };
    if matches!(mask, AttentionMask::Allow | AttentionMask::Additive) {
        return Err(bad("takes no mask input (kinds none and causal)"));
    }
    let [q, k, v, g] = inputs else {
        return Err(bad("takes q, k, v and the output's cotangent"));
    };
    let y = attention_out(&inputs[..3], mask)?;
    if *g != y {
        return Err(bad("the cotangent must have the output's shape and dtype"));
    }
    Ok(vec![q.clone(), k.clone(), v.clone()])
}

/// What is wrong with q, k and v of one rank (at least 3) and the same leading dims, if
/// anything: their dtypes, or their head, length and width dims. The node builder and
/// the import check share it.
fn operand_problem(
    q: &(Vec<usize>, DType),
    k: &(Vec<usize>, DType),
    v: &(Vec<usize>, DType),
) -> Option<&'static str> {
    if !q.1.is_float() || q.1 != k.1 || q.1 != v.1 {
        return Some("q, k and v must have one floating dtype");
    }
    let n = q.0.len();
    let (hq, e) = (q.0[n - 3], q.0[n - 1]);
    let (hkv, s) = (k.0[n - 3], k.0[n - 2]);
    if k.0[n - 1] != e || v.0[n - 3] != hkv || v.0[n - 2] != s {
        return Some("k must be (..., Hkv, S, E) and v (..., Hkv, S, Ev)");
    }
    if hkv == 0 && hq != 0 || hkv != 0 && hq % hkv != 0 {
        return Some("the query heads must be a multiple of the key/value heads");
    }
    None
}

/// Scores and softmax are computed in f64 for f64 inputs and in f32 for every other float.
pub(crate) fn compute_dtype(d: DType) -> DType {
    if d == DType::F64 {
        DType::F64
    } else {
        DType::F32
    }
}

/// Normalized operands: q, k, v with a head axis and common leading dims, the mask
/// broadcast to `(..., Hq, L, S)` in its kernel dtype, and the output shape to return.
struct Prepared {
    q: Array,
    k: Array,
    v: Array,
    mask: Option<Array>,
    kind: AttentionMask,
    scale: f64,
    /// The node's output `(..., Hq, L, Ev)`.
    node_shape: Vec<usize>,
    /// What the caller gets: the node's output, without the head axis for 2-d operands.
    out_shape: Vec<usize>,
}

fn prepare(
    q: &Array,
    k: &Array,
    v: &Array,
    mask: Option<SdpaMask>,
    scale: Option<f64>,
) -> Result<Prepared> {
    let bad = |why: &str| {
        Error::invalid(
            OP,
            format!(
                "{why}: q {} {}, k {} {}, v {} {}",
                fmt_shape(q.shape()),
                q.dtype(),
                fmt_shape(k.shape()),
                k.dtype(),
                fmt_shape(v.shape()),
                v.dtype()
            ),
        )
    };
    let (q, k, v) = (
        crate::amp::low(q)?,
        crate::amp::low(k)?,
        crate::amp::low(v)?,
    );
    if q.ndim() < 2 || k.ndim() < 2 || v.ndim() < 2 {
        return Err(bad("q, k and v must be at least (L, E), (S, E), (S, Ev)"));
    }
    // 2-d operands are one head; the result keeps q's rank.
    let lift = |x: &Array| -> Result<Array> {
        if x.ndim() == 2 {
            crate::expand_dims(x, &[0])
        } else {
            Ok(x.clone())
        }
    };
    let (q3, k3, v3) = (lift(&q)?, lift(&k)?, lift(&v)?);
    let lead = |x: &Array| x.shape()[..x.ndim() - 3].to_vec();
    let batch = broadcast_shapes(
        OP,
        &broadcast_shapes(OP, &lead(&q3), &lead(&k3))?,
        &lead(&v3),
    )?;
    let full = |x: &Array| -> Result<Array> {
        let mut s = batch.clone();
        s.extend_from_slice(&x.shape()[x.ndim() - 3..]);
        crate::broadcast_to(x, &s)
    };
    let (q4, k4, v4) = (full(&q3)?, full(&k3)?, full(&v3)?);
    let n = q4.ndim();
    let sig = |x: &Array| (x.shape().to_vec(), x.dtype());
    if let Some(why) = operand_problem(&sig(&q4), &sig(&k4), &sig(&v4)) {
        return Err(bad(why));
    }
    let (hq, l, e) = (q4.shape()[n - 3], q4.shape()[n - 2], q4.shape()[n - 1]);
    let s = k4.shape()[n - 2];
    let cdt = compute_dtype(q.dtype());
    let mut score_shape = q4.shape()[..n - 1].to_vec();
    score_shape.push(s);
    let (kind, mask) = match mask {
        None => (AttentionMask::None, None),
        Some(SdpaMask::Causal) => (AttentionMask::Causal, None),
        Some(SdpaMask::Allow(m)) | Some(SdpaMask::Additive(m)) => {
            let allow = matches!(mask, Some(SdpaMask::Allow(_)));
            if allow && m.dtype() != DType::Bool {
                return Err(Error::invalid(
                    OP,
                    format!(
                        "an Allow mask must be bool, got {} {}",
                        fmt_shape(m.shape()),
                        m.dtype()
                    ),
                ));
            }
            if !(allow || m.dtype().is_float() || m.dtype().is_integer()) {
                return Err(Error::invalid(
                    OP,
                    format!(
                        "an additive mask must be real, got {} {}",
                        fmt_shape(m.shape()),
                        m.dtype()
                    ),
                ));
            }
            let m = if allow {
                m.clone()
            } else {
                crate::astype(m, cdt)?
            };
            let m = crate::broadcast_to(&m, &score_shape).map_err(|_| {
                Error::invalid(
                    OP,
                    format!(
                        "the mask {} does not broadcast to the scores {}",
                        fmt_shape(m.shape()),
                        fmt_shape(&score_shape)
                    ),
                )
            })?;
            let kind = if allow {
                AttentionMask::Allow
            } else {
                AttentionMask::Additive
            };
            (kind, Some(m))
        }
    };
    // Three 2-d operands give a 2-d result; otherwise the batch dims and the head axis.
    let mut out_shape = if q.ndim() == 2 && k.ndim() == 2 && v.ndim() == 2 {
        vec![]
    } else {
        let mut b = batch.clone();
        b.push(hq);
        b
    };
    let ev = v4.shape()[n - 1];
    out_shape.extend_from_slice(&[l, ev]);
    let mut node_shape = q4.shape()[..n - 1].to_vec();
    node_shape.push(ev);
    Ok(Prepared {
        q: q4,
        k: k4,
        v: v4,
        mask,
        kind,
        scale: scale.unwrap_or(1.0 / (e.max(1) as f64).sqrt()),
        node_shape,
        out_shape,
    })
}

/// On a GPU, many query rows go faster through the decomposition (cuBLAS matmuls and the
/// softmax kernel) than through the warp-per-row fused kernel: on an H200, Llama-3-8B's
/// 512-token prefill took 23.5 ms composed and 102.5 ms fused. Decoding (a few rows a head)
/// keeps the fused split-KV kernel; scores past 2 GiB keep the fused kernel too, so memory
/// stays bounded; and what the tensor-core flash kernel takes is fused
/// (`INGOT_CUDA_FLASH=0` opts out).
fn gpu_prefers_composed(p: &Prepared, ordinal: usize) -> bool {
    let n = p.node_shape.len();
    let rows_per_head = p.node_shape[n - 2];
    let keys = p.k.shape()[p.k.ndim() - 2];
    let dims = (rows_per_head, keys, p.q.shape()[n - 1], p.node_shape[n - 1]);
    if crate::backend::cuda::flash_takes(ordinal, p.q.dtype(), p.kind, dims, false) {
        return false;
    }
    let score_bytes = (crate::shape::size_of(&p.node_shape[..n - 1]) as u128) * keys as u128 * 4;
    rows_per_head > 16 && score_bytes <= 2 << 30
}

/// `softmax(q kᵀ · scale + mask) v` over the last two axes: q `(..., Hq, L, E)`, k
/// `(..., Hkv, S, E)`, v `(..., Hkv, S, Ev)` (leading dims broadcast; 2-d operands are one
/// head). Hq must be a multiple of Hkv: query head h reads key/value head `h / (Hq/Hkv)`
/// (grouped- and multi-query attention, without repeating K and V). `scale` defaults to
/// `1/sqrt(E)`. f16 and bf16 compute in f32 and f64 in f64; a query row with every key
/// masked gives NaN, as in PyTorch. Under autocast f32 operands run in the low dtype.
///
/// One fused node: the CPU kernel never holds more than one row of scores per thread.
/// Its gradient without a mask input is one fused node too (`Op::AttentionGrad`, which
/// recomputes the scores), with a mask the reference decomposition's. On a CUDA default device the
/// fused CUDA kernels serve up to 16 query rows a head (decoding) and scores too large to
/// materialize; longer prompts build the decomposition (cuBLAS matmuls and the softmax
/// kernel), except in f16 and bf16, where the tensor-core flash kernel takes them
/// (`INGOT_CUDA_FLASH=0` opts out) (head dims 16 to 128 in steps of 16, no mask or causal).
/// `INGOT_CUDA_ATTENTION=0` builds the decomposition everywhere.
pub fn scaled_dot_product_attention(
    q: &Array,
    k: &Array,
    v: &Array,
    mask: Option<SdpaMask>,
    scale: Option<f64>,
) -> Result<Array> {
    let p = prepare(q, k, v, mask, scale)?;
    let composed = match crate::default_device() {
        crate::Device::Cuda(i) => {
            !crate::backend::cuda::attention_enabled() || gpu_prefers_composed(&p, i)
        }
        _ => false,
    };
    let y = if composed {
        reference_node(&p.q, &p.k, &p.v, p.mask.as_ref(), p.kind, p.scale)?
    } else {
        let dtype = p.q.dtype();
        let mut inputs = vec![p.q, p.k, p.v];
        inputs.extend(p.mask);
        Array::from_op(
            Op::Attention {
                scale: Scalar::Float(p.scale),
                mask: p.kind,
            },
            inputs,
            p.node_shape,
            dtype,
        )
    };
    crate::reshape_to(&y, &p.out_shape)
}

/// The decomposition of [`scaled_dot_product_attention`] into matmul, softmax and
/// elementwise ops (the scores materialized): what the fused kernel is tested against.
pub fn scaled_dot_product_attention_reference(
    q: &Array,
    k: &Array,
    v: &Array,
    mask: Option<SdpaMask>,
    scale: Option<f64>,
) -> Result<Array> {
    let p = prepare(q, k, v, mask, scale)?;
    let y = reference_node(&p.q, &p.k, &p.v, p.mask.as_ref(), p.kind, p.scale)?;
    crate::reshape_to(&y, &p.out_shape)
}

/// The decomposition on normalized operands (as the node holds them).
pub(crate) fn reference_node(
    q: &Array,
    k: &Array,
    v: &Array,
    mask: Option<&Array>,
    kind: AttentionMask,
    scale: f64,
) -> Result<Array> {
    let n = q.ndim();
    let (hq, l, e) = (q.shape()[n - 3], q.shape()[n - 2], q.shape()[n - 1]);
    let (hkv, s, ev) = (k.shape()[n - 3], k.shape()[n - 2], v.shape()[n - 1]);
    let lead = q.shape()[..n - 3].to_vec();
    let g = hq.checked_div(hkv).unwrap_or(1);
    let with = |tail: &[usize]| -> Vec<usize> {
        let mut s = lead.clone();
        s.extend_from_slice(tail);
        s
    };
    // Query heads grouped under their key/value head; K and V broadcast over the group.
    let qg = crate::reshape_to(q, &with(&[hkv, g, l, e]))?;
    let kg = crate::expand_dims(k, &[-3])?;
    let vg = crate::expand_dims(v, &[-3])?;
    let cdt = compute_dtype(q.dtype());
    let scores = crate::astype(&crate::matmul(&qg, &crate::swapaxes(&kg, -1, -2)?)?, cdt)?;
    let mut scores = crate::multiply(&scores, scale)?;
    let grouped = |m: &Array| crate::reshape_to(m, &with(&[hkv, g, l, s]));
    match (kind, mask) {
        (AttentionMask::None, _) => {}
        (AttentionMask::Causal, _) => {
            let qi = crate::reshape_to(&crate::arange(0.0, l as f64, 1.0, DType::I64)?, &[l, 1])?;
            let kj = crate::reshape_to(&crate::arange(0.0, s as f64, 1.0, DType::I64)?, &[1, s])?;
            let allow = crate::less_equal(&kj, &crate::add(&qi, (s as i64) - (l as i64))?)?;
            scores = crate::where_(&allow, &scores, f64::NEG_INFINITY)?;
        }
        (AttentionMask::Allow, Some(m)) => {
            scores = crate::where_(&grouped(m)?, &scores, f64::NEG_INFINITY)?;
        }
        (AttentionMask::Additive, Some(m)) => {
            scores = crate::add(&scores, &crate::astype(&grouped(m)?, cdt)?)?;
        }
        _ => return Err(Error::invalid(OP, "internal: a mask kind without its mask")),
    }
    let w = crate::softmax(&scores, -1)?;
    let y = crate::matmul(&crate::astype(&w, q.dtype())?, &vg)?;
    crate::reshape_to(&y, &with(&[hq, l, ev]))
}
