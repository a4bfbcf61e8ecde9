//! Attention: scaled dot-product attention from ordinary ops, and multi-head attention
//! with PyTorch's `nn.MultiheadAttention` parameters (batch-first inputs).

use super::{Dropout, Linear};
use crate::module::{visit_child, visit_child_mut, Module, Param, Unary};
use crate::rng;
use ingot::fast::SdpaMask;
use ingot::{Array, DType, Error, Result, SliceArg};

/// A mask for attention scores `(..., L, S)`.
#[derive(Clone, Debug)]
pub enum Mask {
    /// Added to the scores (use -inf to forbid a pair).
    Additive(Array),
    /// `true` where query i may attend to key j (F.scaled_dot_product_attention's meaning).
    Allow(Array),
    /// Query i attends to keys `j <= i + S - L`: causal, aligned to the last key, so a query
    /// block appended after S - L cached positions sees all of them.
    Causal,
}

/// The `(L, S)` boolean causal pattern aligned to the last key.
fn causal_allow(l: usize, s: usize) -> Result<Array> {
    let qi = ingot::reshape_to(&ingot::arange(0.0, l as f64, 1.0, DType::I64)?, &[l, 1])?;
    let kj = ingot::reshape_to(&ingot::arange(0.0, s as f64, 1.0, DType::I64)?, &[1, s])?;
    ingot::less_equal(&kj, &ingot::add(&qi, (s as i64) - (l as i64))?)
}

/// `softmax(q k^T * scale + mask) v` for `q (..., L, E)`, `k (..., S, E)`, `v (..., S, Ev)`
/// (the leading dims broadcast). Scores and softmax are computed in f32 for f16 and bf16
/// inputs. Rows with every key masked give NaN, as in PyTorch. `dropout` (probability, with
/// its key) drops attention weights in training.
///
/// Without dropout this is the fused `ingot::fast::scaled_dot_product_attention`: the
/// scores are not materialized, and a query head count that is a multiple of the key/value
/// head count is grouped-query attention (no need to repeat K and V).
pub fn scaled_dot_product_attention(
    q: &Array,
    k: &Array,
    v: &Array,
    mask: Option<&Mask>,
    scale: Option<f64>,
    dropout: Option<(f64, &Array)>,
) -> Result<Array> {
    let bad = || {
        Error::invalid(
            "scaled_dot_product_attention",
            format!(
                "q {:?} {}, k {:?} {}, v {:?} {} are not (..., L, E), (..., S, E), (..., S, Ev) of one floating dtype",
                q.shape(),
                q.dtype(),
                k.shape(),
                k.dtype(),
                v.shape(),
                v.dtype()
            ),
        )
    };
    if q.ndim() < 2 || k.ndim() < 2 || v.ndim() < 2 || !q.dtype().is_float() {
        return Err(bad());
    }
    if q.dtype() != k.dtype() || q.dtype() != v.dtype() {
        return Err(bad());
    }
    let (e, ek) = (q.shape()[q.ndim() - 1], k.shape()[k.ndim() - 1]);
    let (s, sv) = (k.shape()[k.ndim() - 2], v.shape()[v.ndim() - 2]);
    if e != ek || s != sv {
        return Err(bad());
    }
    let l = q.shape()[q.ndim() - 2];
    if dropout.is_none_or(|(p, _)| p == 0.0) {
        let fm = match mask {
            None => None,
            Some(Mask::Causal) => Some(SdpaMask::Causal),
            Some(Mask::Allow(m)) => Some(SdpaMask::Allow(m)),
            Some(Mask::Additive(m)) => Some(SdpaMask::Additive(m)),
        };
        // Shapes the fused op does not take (more key heads than query heads, broadcast
        // the other way) go through the composition below, which also gives the errors.
        if let Ok(y) = ingot::fast::scaled_dot_product_attention(q, k, v, fm, scale) {
            return Ok(y);
        }
    }
    let scale = scale.unwrap_or(1.0 / (e as f64).sqrt());
    let cdt = if q.dtype() == DType::F64 {
        DType::F64
    } else {
        DType::F32
    };
    let kt = ingot::swapaxes(k, -1, -2)?;
    let scores = ingot::astype(&ingot::matmul(q, &kt)?, cdt)?;
    let mut scores = ingot::multiply(&scores, scale)?;
    match mask {
        None => {}
        Some(Mask::Additive(m)) => scores = ingot::add(&scores, &ingot::astype(m, cdt)?)?,
        Some(Mask::Allow(m)) => {
            if m.dtype() != DType::Bool {
                return Err(Error::invalid(
                    "scaled_dot_product_attention",
                    format!(
                        "an Allow mask must be bool, got {:?} {}",
                        m.shape(),
                        m.dtype()
                    ),
                ));
            }
            scores = ingot::where_(m, &scores, f64::NEG_INFINITY)?;
        }
        Some(Mask::Causal) => {
            scores = ingot::where_(&causal_allow(l, s)?, &scores, f64::NEG_INFINITY)?;
        }
    }
    let mut w = ingot::softmax(&scores, -1)?;
    if let Some((p, key)) = dropout {
        if p > 0.0 {
            w = Dropout::new(p)?.forward_with_key(&w, key)?;
        }
    }
    ingot::matmul(&ingot::astype(&w, q.dtype())?, v)
}

/// Multi-head attention on batch-first inputs `(N, L, E)`: PyTorch's parameters
/// `in_proj_weight (3E, E)`, `in_proj_bias (3E)`, `out_proj.weight (E, E)`,
/// `out_proj.bias (E)`, initialized as PyTorch does (Xavier-uniform in-projection, zero
/// biases). Keys and values have the query's width (PyTorch's kdim = vdim = embed_dim).
#[derive(Clone)]
pub struct MultiHeadAttention {
    pub embed_dim: usize,
    pub heads: usize,
    pub dropout: f64,
    pub in_proj_weight: Param,
    pub in_proj_bias: Option<Param>,
    pub out_proj: Linear,
    pub training: bool,
}

impl MultiHeadAttention {
    pub fn new(embed_dim: usize, heads: usize) -> Result<MultiHeadAttention> {
        MultiHeadAttention::with(embed_dim, heads, 0.0, true, &rng::next_key()?, DType::F32)
    }

    pub fn with(
        embed_dim: usize,
        heads: usize,
        dropout: f64,
        bias: bool,
        key: &Array,
        dtype: DType,
    ) -> Result<MultiHeadAttention> {
        if heads == 0 || embed_dim % heads != 0 {
            return Err(Error::invalid(
                "MultiHeadAttention",
                format!("embed_dim {embed_dim} is not divisible by {heads} heads"),
            ));
        }
        if !(0.0..1.0).contains(&dropout) {
            return Err(Error::invalid(
                "MultiHeadAttention",
                format!("dropout {dropout} is not in [0, 1)"),
            ));
        }
        let keys = ingot::random::split(key, 2)?;
        // Xavier uniform over (3E, E), as PyTorch's _reset_parameters.
        let bound = (6.0 / (4 * embed_dim) as f64).sqrt();
        let w = ingot::random::uniform(
            &ingot::random::key_at(&keys, 0)?,
            &[3 * embed_dim, embed_dim],
            -bound,
            bound,
            dtype,
        )?;
        let mut out_proj = Linear::with(
            embed_dim,
            embed_dim,
            bias,
            &ingot::random::key_at(&keys, 1)?,
            dtype,
        )?;
        if let Some(b) = &mut out_proj.bias {
            b.value = ingot::zeros(&[embed_dim], dtype)?;
        }
        Ok(MultiHeadAttention {
            embed_dim,
            heads,
            dropout,
            in_proj_weight: Param::new(w),
            in_proj_bias: if bias {
                Some(Param::new(ingot::zeros(&[3 * embed_dim], dtype)?))
            } else {
                None
            },
            out_proj,
            training: true,
        })
    }

    /// `(N, T, E)` -> `(N, heads, T, E / heads)`.
    fn split_heads(&self, x: &Array) -> Result<Array> {
        let (n, t) = (x.shape()[0], x.shape()[1]);
        let x = ingot::reshape_to(x, &[n, t, self.heads, self.embed_dim / self.heads])?;
        ingot::transpose(&x, Some(&[0, 2, 1, 3]))
    }

    /// Projection `i` (0: query, 1: key, 2: value) of `x`.
    fn project(&self, x: &Array, i: usize) -> Result<Array> {
        let e = self.embed_dim as isize;
        let rows = SliceArg::new(Some(i as isize * e), Some((i as isize + 1) * e), 1);
        let w = ingot::slice_axis(&self.in_proj_weight.value, 0, rows)?;
        let y = ingot::matmul(x, &ingot::transpose(&w, None)?)?;
        match &self.in_proj_bias {
            Some(b) => ingot::add(&y, &ingot::slice_axis(&b.value, 0, rows)?),
            None => Ok(y),
        }
    }

    /// Attention of `query (N, L, E)` over `key` and `value (N, S, E)`. `mask` applies to
    /// every head's `(L, S)` scores (or `(N, heads, L, S)`); `key_padding` `(N, S)` is true
    /// at keys to ignore (PyTorch's key_padding_mask).
    pub fn forward(
        &self,
        query: &Array,
        key: &Array,
        value: &Array,
        mask: Option<&Mask>,
        key_padding: Option<&Array>,
    ) -> Result<Array> {
        let e = self.embed_dim;
        let ok3 = |x: &Array| x.ndim() == 3 && x.shape()[2] == e;
        if !ok3(query)
            || !ok3(key)
            || !ok3(value)
            || key.shape()[..2] != value.shape()[..2]
            || query.shape()[0] != key.shape()[0]
        {
            return Err(Error::invalid(
                "MultiHeadAttention",
                format!(
                    "query {:?}, key {:?}, value {:?} are not (N, L, {e}), (N, S, {e}), (N, S, {e})",
                    query.shape(),
                    key.shape(),
                    value.shape()
                ),
            ));
        }
        let (n, l, s) = (query.shape()[0], query.shape()[1], key.shape()[1]);
        let q = self.split_heads(&self.project(query, 0)?)?;
        let k = self.split_heads(&self.project(key, 1)?)?;
        let v = self.split_heads(&self.project(value, 2)?)?;
        // Key padding joins the mask as an additive -inf over (N, 1, 1, S).
        let mut combined: Option<Mask> = mask.cloned();
        if let Some(kp) = key_padding {
            if kp.dtype() != DType::Bool || kp.shape() != [n, s] {
                return Err(Error::invalid(
                    "MultiHeadAttention",
                    format!(
                        "key_padding must be bool ({n}, {s}), got {:?} {}",
                        kp.shape(),
                        kp.dtype()
                    ),
                ));
            }
            let cdt = if query.dtype() == DType::F64 {
                DType::F64
            } else {
                DType::F32
            };
            let pad = ingot::where_(
                &ingot::reshape_to(kp, &[n, 1, 1, s])?,
                ingot::full(&[], f64::NEG_INFINITY, cdt)?,
                ingot::zeros(&[], cdt)?,
            )?;
            let base = match combined {
                None => pad,
                Some(Mask::Additive(m)) => ingot::add(&ingot::astype(&m, cdt)?, &pad)?,
                Some(Mask::Allow(m)) => ingot::add(
                    &ingot::where_(
                        &m,
                        ingot::zeros(&[], cdt)?,
                        ingot::full(&[], f64::NEG_INFINITY, cdt)?,
                    )?,
                    &pad,
                )?,
                Some(Mask::Causal) => ingot::add(
                    &ingot::where_(
                        &causal_allow(l, s)?,
                        ingot::zeros(&[], cdt)?,
                        ingot::full(&[], f64::NEG_INFINITY, cdt)?,
                    )?,
                    &pad,
                )?,
            };
            combined = Some(Mask::Additive(base));
        }
        let drop_key = if self.training && self.dropout > 0.0 {
            Some(rng::next_key()?)
        } else {
            None
        };
        let o = scaled_dot_product_attention(
            &q,
            &k,
            &v,
            combined.as_ref(),
            None,
            drop_key.as_ref().map(|k| (self.dropout, k)),
        )?;
        let o = ingot::reshape_to(&ingot::transpose(&o, Some(&[0, 2, 1, 3]))?, &[n, l, e])?;
        self.out_proj.forward(&o)
    }
}

impl Module for MultiHeadAttention {
    fn visit(&self, f: &mut dyn FnMut(&str, &Param)) {
        f("in_proj_weight", &self.in_proj_weight);
        if let Some(b) = &self.in_proj_bias {
            f("in_proj_bias", b);
        }
        visit_child("out_proj", &self.out_proj, f);
    }
    fn visit_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
        f("in_proj_weight", &mut self.in_proj_weight);
        if let Some(b) = &mut self.in_proj_bias {
            f("in_proj_bias", b);
        }
        visit_child_mut("out_proj", &mut self.out_proj, f);
    }
    fn set_training(&mut self, on: bool) {
        self.training = on;
    }
}
