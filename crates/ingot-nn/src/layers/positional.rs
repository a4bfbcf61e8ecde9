//! Positions: rotary embeddings (RoPE), sinusoidal encodings and ALiBi biases.

use crate::module::{Module, Param, Unary};
use ingot::SliceArg;
use ingot::{Array, DType, Error, Result};
use std::sync::{Arc, Mutex};

/// Rotary position embedding over the last axis of `(..., L, D)` inputs, for positions
/// `offset .. offset + L` (the offset is the number of cached positions when decoding).
/// Only the first `dims` features rotate; the rest pass through.
///
/// `traditional` rotates adjacent pairs (x0, x1), (x2, x3), ... (the original RoFormer and
/// GPT-J layout); otherwise the two halves (x[..d/2], x[d/2..]) pair up, as in GPT-NeoX and
/// Hugging Face's Llama. Feature pair i turns by `pos * scale * base^(-2i/dims)`, or by
/// `pos * scale * freqs[i]` with custom frequencies (Llama 3 and YaRN scaling compute
/// them); cos and sin are multiplied by `attention_factor` (YaRN's, else 1).
#[derive(Clone, Debug)]
pub struct RoPE {
    pub dims: usize,
    pub traditional: bool,
    pub base: f64,
    pub scale: f64,
    pub freqs: Option<Vec<f64>>,
    pub attention_factor: f64,
    /// `freqs` as an array of the compute dtype, made once on the default device (a decode
    /// step would otherwise upload and convert it for every layer).
    freqs_array: FreqsArray,
}

#[derive(Clone, Default)]
struct FreqsArray(Arc<Mutex<Option<(Vec<f64>, DType, ingot::Device, Array)>>>);

impl std::fmt::Debug for FreqsArray {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FreqsArray")
    }
}

impl FreqsArray {
    fn get(&self, freqs: &[f64], dtype: DType) -> Result<Array> {
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let device = ingot::default_device();
        if let Some((f, dt, dev, a)) = slot.as_ref() {
            if f == freqs && *dt == dtype && *dev == device {
                return Ok(a.clone());
            }
        }
        let a = ingot::astype(&Array::from_slice(freqs, &[freqs.len()])?, dtype)?;
        a.eval()?;
        *slot = Some((freqs.to_vec(), dtype, device, a.clone()));
        Ok(a)
    }
}

impl RoPE {
    pub fn new(dims: usize, traditional: bool, base: f64) -> Result<RoPE> {
        if dims == 0 || dims % 2 != 0 || !(base.is_finite() && base > 0.0) {
            return Err(Error::invalid(
                "RoPE",
                format!("dims must be even and positive and base positive, got dims {dims}, base {base}"),
            ));
        }
        Ok(RoPE {
            dims,
            traditional,
            base,
            scale: 1.0,
            freqs: None,
            attention_factor: 1.0,
            freqs_array: FreqsArray::default(),
        })
    }

    /// RoPE with the inverse frequency of each of the `dims / 2` pairs given, and cos/sin
    /// multiplied by `attention_factor`.
    pub fn with_frequencies(
        dims: usize,
        traditional: bool,
        freqs: Vec<f64>,
        attention_factor: f64,
    ) -> Result<RoPE> {
        if freqs.len() * 2 != dims || freqs.iter().any(|f| !f.is_finite()) {
            return Err(Error::invalid(
                "RoPE",
                format!(
                    "{} finite frequencies are needed for dims {dims}, got {}",
                    dims / 2,
                    freqs.len()
                ),
            ));
        }
        let mut r = RoPE::new(dims, traditional, 10000.0)?;
        r.freqs = Some(freqs);
        r.attention_factor = attention_factor;
        Ok(r)
    }

    /// `(cos, sin)` of shape `(R, L, dims / 2)` (`(L, dims / 2)` for one row), row r at
    /// positions `starts[r] .. starts[r] + len`.
    fn angles_from(&self, starts: &[i64], len: usize, dtype: DType) -> Result<(Array, Array)> {
        let half = self.dims / 2;
        let inv: Vec<f64> = match &self.freqs {
            Some(f) => f.clone(),
            None => (0..half)
                .map(|i| self.base.powf(-2.0 * i as f64 / self.dims as f64))
                .collect(),
        };
        let ang: Vec<f64> = starts
            .iter()
            .flat_map(|&s0| {
                let inv = &inv;
                (0..len).flat_map(move |p| {
                    let pos = (s0 + p as i64) as f64 * self.scale;
                    inv.iter().map(move |f| pos * f)
                })
            })
            .collect();
        let shape: Vec<usize> = if starts.len() == 1 {
            vec![len, half]
        } else {
            vec![starts.len(), len, half]
        };
        let a = Array::from_slice(&ang, &shape)?;
        let a = ingot::astype(&a, dtype)?;
        if self.attention_factor == 1.0 {
            return Ok((ingot::cos(&a)?, ingot::sin(&a)?));
        }
        let f = self.attention_factor;
        Ok((
            ingot::multiply(&ingot::cos(&a)?, f)?,
            ingot::multiply(&ingot::sin(&a)?, f)?,
        ))
    }

    /// Rotates `x (..., L, D)` as positions `offset ..`.
    pub fn forward_at(&self, x: &Array, offset: usize) -> Result<Array> {
        self.rotate(x, &[offset as i64])
    }

    /// Rotates `x (B, ..., L, D)` with row b at positions `starts[b] ..` (left-padded
    /// batches: each row counts from its first real token; pads get negative positions).
    pub fn forward_rows(&self, x: &Array, starts: &[i64]) -> Result<Array> {
        if x.ndim() < 3 || x.shape()[0] != starts.len() {
            return Err(Error::invalid(
                "RoPE",
                format!(
                    "input {:?} needs a leading batch of {} rows",
                    x.shape(),
                    starts.len()
                ),
            ));
        }
        self.rotate(x, starts)
    }

    fn rotate(&self, x: &Array, starts: &[i64]) -> Result<Array> {
        if x.ndim() < 2 || x.shape()[x.ndim() - 1] < self.dims || !x.dtype().is_float() {
            return Err(Error::invalid(
                "RoPE",
                format!(
                    "input {:?} {} is not floating (..., L, D) with D >= dims = {}",
                    x.shape(),
                    x.dtype(),
                    self.dims
                ),
            ));
        }
        if self.attention_factor == 1.0 {
            return self.rotate_fast(x, starts);
        }
        let nd = x.ndim();
        let (len, d) = (x.shape()[nd - 2], x.shape()[nd - 1]);
        // Angles in f32 at least: positions of long sequences do not fit f16.
        let cdt = if x.dtype() == DType::F64 {
            DType::F64
        } else {
            DType::F32
        };
        let (mut cos, mut sin) = self.angles_from(starts, len, cdt)?;
        if starts.len() > 1 {
            // (B, L, half) -> (B, 1.., L, half) against (B, ..., L, D).
            let mut shape = vec![starts.len()];
            shape.extend(std::iter::repeat_n(1, nd - 3));
            shape.extend([len, self.dims / 2]);
            cos = ingot::reshape_to(&cos, &shape)?;
            sin = ingot::reshape_to(&sin, &shape)?;
        }
        let xc = ingot::astype(x, cdt)?;
        let rot = ingot::slice_axis(&xc, -1, SliceArg::new(Some(0), Some(self.dims as isize), 1))?;
        let half = self.dims / 2;
        let rotated = if self.traditional {
            // (..., L, half, 2) pairs
            let mut s = rot.shape().to_vec();
            s.pop();
            s.extend([half, 2]);
            let pairs = ingot::reshape_to(&rot, &s)?;
            let x0 = ingot::squeeze(
                &ingot::slice_axis(&pairs, -1, SliceArg::new(Some(0), Some(1), 1))?,
                Some(&[-1]),
            )?;
            let x1 = ingot::squeeze(
                &ingot::slice_axis(&pairs, -1, SliceArg::new(Some(1), Some(2), 1))?,
                Some(&[-1]),
            )?;
            let r0 = ingot::subtract(&ingot::multiply(&x0, &cos)?, &ingot::multiply(&x1, &sin)?)?;
            let r1 = ingot::add(&ingot::multiply(&x0, &sin)?, &ingot::multiply(&x1, &cos)?)?;
            let st = ingot::stack(&[r0, r1], -1)?;
            ingot::reshape_to(&st, rot.shape())?
        } else {
            let x0 = ingot::slice_axis(&rot, -1, SliceArg::new(Some(0), Some(half as isize), 1))?;
            let x1 = ingot::slice_axis(&rot, -1, SliceArg::new(Some(half as isize), None, 1))?;
            let r0 = ingot::subtract(&ingot::multiply(&x0, &cos)?, &ingot::multiply(&x1, &sin)?)?;
            let r1 = ingot::add(&ingot::multiply(&x0, &sin)?, &ingot::multiply(&x1, &cos)?)?;
            ingot::concatenate(&[r0, r1], Some(-1))?
        };
        let out = if self.dims < d {
            let rest =
                ingot::slice_axis(&xc, -1, SliceArg::new(Some(self.dims as isize), None, 1))?;
            ingot::concatenate(&[rotated, rest], Some(-1))?
        } else {
            rotated
        };
        ingot::astype(&out, x.dtype())
    }
}

impl RoPE {
    /// One fused `fast::rope` node (no materialized angles): positions from an integer
    /// offset, or an offset per batch row.
    fn rotate_fast(&self, x: &Array, starts: &[i64]) -> Result<Array> {
        let cdt = if x.dtype() == DType::F64 {
            DType::F64
        } else {
            DType::F32
        };
        let freqs = match &self.freqs {
            Some(f) => Some(self.freqs_array.get(f, cdt)?),
            None => None,
        };
        let base = freqs.is_none().then_some(self.base);
        let offs;
        let offset = match starts {
            [s] if *s >= 0 => ingot::fast::RopeOffset::Int(*s as usize),
            _ => {
                offs = Array::from_slice(starts, &[starts.len()])?;
                ingot::fast::RopeOffset::Array(&offs)
            }
        };
        ingot::fast::rope(
            x,
            self.dims,
            self.traditional,
            base,
            self.scale,
            offset,
            freqs.as_ref(),
        )
    }
}

impl Module for RoPE {
    fn visit(&self, _f: &mut dyn FnMut(&str, &Param)) {}
    fn visit_mut(&mut self, _f: &mut dyn FnMut(&str, &mut Param)) {}
}

impl Unary for RoPE {
    fn forward(&self, x: &Array) -> Result<Array> {
        self.forward_at(x, 0)
    }
}

/// The Transformer's sinusoidal encodings `(len, dim)`: `PE[p, 2i] = sin(p / base^(2i/dim))`,
/// `PE[p, 2i+1] = cos(p / base^(2i/dim))` (base 10000 in "Attention is all you need").
pub fn sinusoidal_positions(len: usize, dim: usize, base: f64, dtype: DType) -> Result<Array> {
    if dim % 2 != 0 || !(base.is_finite() && base > 0.0) || !dtype.is_float() {
        return Err(Error::invalid(
            "sinusoidal_positions",
            format!(
                "dim must be even, base positive, dtype floating: dim {dim}, base {base}, {dtype}"
            ),
        ));
    }
    let mut v = vec![0.0f64; len * dim];
    for p in 0..len {
        for i in 0..dim / 2 {
            let a = p as f64 / base.powf(2.0 * i as f64 / dim as f64);
            v[p * dim + 2 * i] = a.sin();
            v[p * dim + 2 * i + 1] = a.cos();
        }
    }
    ingot::astype(&Array::from_slice(&v, &[len, dim])?, dtype)
}

/// Adds [`sinusoidal_positions`] to `(..., L, dim)` inputs (scaled by `scale`), starting
/// at position `offset`.
#[derive(Clone, Debug)]
pub struct SinusoidalPositionalEncoding {
    pub dim: usize,
    pub base: f64,
    pub scale: f64,
}

impl SinusoidalPositionalEncoding {
    pub fn new(dim: usize) -> SinusoidalPositionalEncoding {
        SinusoidalPositionalEncoding {
            dim,
            base: 10000.0,
            scale: 1.0,
        }
    }

    pub fn forward_at(&self, x: &Array, offset: usize) -> Result<Array> {
        if x.ndim() < 2 || x.shape()[x.ndim() - 1] != self.dim {
            return Err(Error::invalid(
                "SinusoidalPositionalEncoding",
                format!("input {:?} is not (..., L, {})", x.shape(), self.dim),
            ));
        }
        let len = x.shape()[x.ndim() - 2];
        let pe = sinusoidal_positions(offset + len, self.dim, self.base, x.dtype())?;
        let pe = ingot::slice_axis(&pe, 0, SliceArg::new(Some(offset as isize), None, 1))?;
        ingot::add(x, &ingot::multiply(&pe, self.scale)?)
    }
}

impl Module for SinusoidalPositionalEncoding {
    fn visit(&self, _f: &mut dyn FnMut(&str, &Param)) {}
    fn visit_mut(&mut self, _f: &mut dyn FnMut(&str, &mut Param)) {}
}

impl Unary for SinusoidalPositionalEncoding {
    fn forward(&self, x: &Array) -> Result<Array> {
        self.forward_at(x, 0)
    }
}

/// ALiBi's per-head slopes: for `n` a power of two, `2^(-8 (h + 1) / n)`; otherwise those of
/// the power of two below `n`, then every other slope of the next power of two (Press et al.).
pub fn alibi_slopes(heads: usize) -> Vec<f64> {
    fn pow2(n: usize) -> Vec<f64> {
        (0..n)
            .map(|h| 2f64.powf(-8.0 * (h + 1) as f64 / n as f64))
            .collect()
    }
    if heads == 0 {
        return Vec::new();
    }
    if heads.is_power_of_two() {
        return pow2(heads);
    }
    let lower = 1 << (usize::BITS - 1 - heads.leading_zeros());
    let mut s = pow2(lower);
    s.extend(pow2(2 * lower).into_iter().step_by(2).take(heads - lower));
    s
}

/// The ALiBi bias `(heads, L, S)` added to attention scores: `-slope_h * |i + offset - j|`
/// for query i (at position `offset + i`, with S = offset + L keys when decoding) and key j.
pub fn alibi_bias(
    heads: usize,
    queries: usize,
    keys: usize,
    offset: usize,
    dtype: DType,
) -> Result<Array> {
    if !dtype.is_float() {
        return Err(Error::invalid(
            "alibi_bias",
            format!("dtype {dtype} is not floating"),
        ));
    }
    let slopes = alibi_slopes(heads);
    let mut v = vec![0.0f64; heads * queries * keys];
    for (h, s) in slopes.iter().enumerate() {
        for i in 0..queries {
            for j in 0..keys {
                v[(h * queries + i) * keys + j] = -s * ((i + offset) as f64 - j as f64).abs();
            }
        }
    }
    ingot::astype(&Array::from_slice(&v, &[heads, queries, keys])?, dtype)
}
