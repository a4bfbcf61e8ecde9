//! Upsampling (PyTorch's `nn.Upsample` / `F.interpolate`), channels-last: `(N, *spatial,
//! C)` with any number of spatial dims. Each spatial axis is resampled in turn with a
//! gather (`take`) and a weighted sum of taps, so the result differentiates with respect to
//! the input; linear and cubic are separable, so this equals PyTorch's bilinear,
//! trilinear and bicubic kernels.
//!
//! Source coordinates are PyTorch's: a layer built from a scale factor uses `1 / scale`
//! (F.interpolate with `recompute_scale_factor=None`), one built from a size uses
//! `in / out`; with `align_corners` linear and cubic use `(in - 1) / (out - 1)`.

use crate::module::{Module, Param, Unary};
use ingot::{Array, Error, Result};

/// How values between input cells are found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpsampleMode {
    /// `src = min(floor(dst * scale), in - 1)` (PyTorch's "nearest", computed in f32 as
    /// PyTorch does, so ties fall the same way).
    Nearest,
    /// `src = min(floor((dst + 0.5) * scale), in - 1)` (PyTorch's "nearest-exact").
    NearestExact,
    /// Linear along each axis: "linear", "bilinear", "trilinear" by the number of dims.
    Linear,
    /// Keys cubic convolution with `A = -0.75` and border clamping, PyTorch's "bicubic",
    /// along each axis.
    Cubic,
}

impl UpsampleMode {
    /// PyTorch's mode names: "nearest", "nearest-exact", "linear", "bilinear", "trilinear",
    /// "bicubic" (and "cubic").
    pub fn parse(s: &str) -> Option<UpsampleMode> {
        match s.to_ascii_lowercase().as_str() {
            "nearest" => Some(UpsampleMode::Nearest),
            "nearest-exact" | "nearest_exact" => Some(UpsampleMode::NearestExact),
            "linear" | "bilinear" | "trilinear" => Some(UpsampleMode::Linear),
            "bicubic" | "cubic" => Some(UpsampleMode::Cubic),
            _ => None,
        }
    }
}

/// Resamples the spatial dims of a channels-last input by a scale factor or to a size.
#[derive(Clone, Debug)]
pub struct Upsample {
    /// One factor for every spatial dim or one per dim (exclusive with `size`).
    pub scale_factor: Option<Vec<f64>>,
    /// One output size for every spatial dim or one per dim.
    pub size: Option<Vec<usize>>,
    pub mode: UpsampleMode,
    pub align_corners: bool,
}

impl Upsample {
    /// Output `floor(in * scale)` per spatial dim (`scale`: one value or one per dim).
    pub fn new(scale_factor: &[f64], mode: UpsampleMode) -> Result<Upsample> {
        if scale_factor.is_empty() || scale_factor.iter().any(|&s| !(s.is_finite() && s > 0.0)) {
            return Err(Error::invalid(
                "Upsample",
                format!("scale factors must be positive and finite, got {scale_factor:?}"),
            ));
        }
        Ok(Upsample {
            scale_factor: Some(scale_factor.to_vec()),
            size: None,
            mode,
            align_corners: false,
        })
    }

    /// Output of the given spatial size (one value or one per dim).
    pub fn with_size(size: &[usize], mode: UpsampleMode) -> Result<Upsample> {
        if size.is_empty() || size.contains(&0) {
            return Err(Error::invalid(
                "Upsample",
                format!("sizes must be positive, got {size:?}"),
            ));
        }
        Ok(Upsample {
            scale_factor: None,
            size: Some(size.to_vec()),
            mode,
            align_corners: false,
        })
    }

    /// Sets `align_corners` (linear and cubic only, as PyTorch).
    pub fn align_corners(mut self, on: bool) -> Result<Upsample> {
        if on
            && matches!(
                self.mode,
                UpsampleMode::Nearest | UpsampleMode::NearestExact
            )
        {
            return Err(Error::invalid(
                "Upsample",
                format!(
                    "align_corners only applies to linear and cubic modes, got {:?}",
                    self.mode
                ),
            ));
        }
        self.align_corners = on;
        Ok(self)
    }
}

impl Module for Upsample {
    fn visit(&self, _f: &mut dyn FnMut(&str, &Param)) {}
    fn visit_mut(&mut self, _f: &mut dyn FnMut(&str, &mut Param)) {}
}

impl Unary for Upsample {
    fn forward(&self, x: &Array) -> Result<Array> {
        interpolate(
            x,
            self.size.as_deref(),
            self.scale_factor.as_deref(),
            self.mode,
            self.align_corners,
        )
    }
}

fn cubic1(x: f64, a: f64) -> f64 {
    ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
}

fn cubic2(x: f64, a: f64) -> f64 {
    ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
}

/// Taps of one axis: for each tap, the source index and weight of every output cell.
fn axis_taps(
    mode: UpsampleMode,
    input: usize,
    output: usize,
    scale: Option<f64>,
    align_corners: bool,
) -> Vec<(Vec<i32>, Vec<f64>)> {
    let last = input as i64 - 1;
    // PyTorch's compute_scales_value: the given factor's reciprocal, else in / out.
    let plain = match scale {
        Some(s) => 1.0 / s,
        None => input as f64 / output as f64,
    };
    match mode {
        UpsampleMode::Nearest | UpsampleMode::NearestExact => {
            let exact = mode == UpsampleMode::NearestExact;
            let sf = plain as f32;
            let idx = (0..output)
                .map(|d| {
                    let i = if !exact && output == input {
                        d as i64
                    } else if !exact && output == 2 * input {
                        (d >> 1) as i64
                    } else {
                        let o = if exact { d as f32 + 0.5 } else { d as f32 };
                        ((o * sf).floor() as i64).min(last)
                    };
                    i as i32
                })
                .collect();
            vec![(idx, vec![1.0; output])]
        }
        UpsampleMode::Linear | UpsampleMode::Cubic => {
            let cubic = mode == UpsampleMode::Cubic;
            let sc = if align_corners {
                if output > 1 {
                    (input as f64 - 1.0) / (output as f64 - 1.0)
                } else {
                    0.0
                }
            } else {
                plain
            };
            let taps = if cubic { 4 } else { 2 };
            let mut out: Vec<(Vec<i32>, Vec<f64>)> = (0..taps)
                .map(|_| (vec![0; output], vec![0.0; output]))
                .collect();
            for d in 0..output {
                let mut src = if align_corners {
                    sc * d as f64
                } else {
                    sc * (d as f64 + 0.5) - 0.5
                };
                if !cubic && src < 0.0 {
                    src = 0.0;
                }
                // PyTorch's guard_index_and_lambda.
                let i0 = (src.floor() as i64).min(last);
                let t = (src - i0 as f64).clamp(0.0, 1.0);
                let clamp = |i: i64| i.clamp(0, last) as i32;
                if cubic {
                    const A: f64 = -0.75;
                    let w = [
                        cubic2(t + 1.0, A),
                        cubic1(t, A),
                        cubic1(1.0 - t, A),
                        cubic2(2.0 - t, A),
                    ];
                    for k in 0..4 {
                        out[k].0[d] = clamp(i0 - 1 + k as i64);
                        out[k].1[d] = w[k];
                    }
                } else {
                    let i1 = if i0 < last { i0 + 1 } else { i0 };
                    out[0].0[d] = clamp(i0);
                    out[0].1[d] = 1.0 - t;
                    out[1].0[d] = clamp(i1);
                    out[1].1[d] = t;
                }
            }
            out
        }
    }
}

/// PyTorch's `F.interpolate` on a channels-last `(N, *spatial, C)` input: give `size` or
/// `scale_factor` (one value or one per spatial dim).
pub fn interpolate(
    x: &Array,
    size: Option<&[usize]>,
    scale_factor: Option<&[f64]>,
    mode: UpsampleMode,
    align_corners: bool,
) -> Result<Array> {
    const OP: &str = "Upsample";
    if x.ndim() < 3 {
        return Err(Error::invalid(
            OP,
            format!(
                "input must be (N, *spatial, C) with at least one spatial dim, got {:?} {}",
                x.shape(),
                x.dtype()
            ),
        ));
    }
    let nd = x.ndim() - 2;
    let per = |n: usize, what: &str| -> Result<()> {
        if n == 1 || n == nd {
            Ok(())
        } else {
            Err(Error::invalid(
                OP,
                format!(
                    "{what} needs 1 or {nd} values for input {:?}, got {n}",
                    x.shape()
                ),
            ))
        }
    };
    let (sizes, scales): (Vec<usize>, Vec<Option<f64>>) = match (size, scale_factor) {
        (Some(s), None) => {
            per(s.len(), "size")?;
            (
                (0..nd).map(|i| s[i.min(s.len() - 1)]).collect(),
                vec![None; nd],
            )
        }
        (None, Some(f)) => {
            per(f.len(), "scale_factor")?;
            let f: Vec<f64> = (0..nd).map(|i| f[i.min(f.len() - 1)]).collect();
            if f.iter().any(|&s| !(s.is_finite() && s > 0.0)) {
                return Err(Error::invalid(
                    OP,
                    format!("scale factors must be positive and finite, got {f:?}"),
                ));
            }
            (
                (0..nd)
                    .map(|i| (x.shape()[i + 1] as f64 * f[i]).floor() as usize)
                    .collect(),
                f.into_iter().map(Some).collect(),
            )
        }
        _ => {
            return Err(Error::invalid(
                OP,
                "give exactly one of size and scale_factor",
            ))
        }
    };
    let linear = matches!(mode, UpsampleMode::Linear | UpsampleMode::Cubic);
    if linear && !x.dtype().is_float() {
        return Err(Error::invalid(
            OP,
            format!("{mode:?} mode needs a floating input, got {}", x.dtype()),
        ));
    }
    if align_corners && !linear {
        return Err(Error::invalid(
            OP,
            format!("align_corners only applies to linear and cubic modes, got {mode:?}"),
        ));
    }
    for i in 0..nd {
        if x.shape()[i + 1] == 0 || sizes[i] == 0 {
            return Err(Error::invalid(
                OP,
                format!(
                    "input {:?} resampled to spatial size {sizes:?} has an empty dim",
                    x.shape()
                ),
            ));
        }
    }
    let mut y = x.clone();
    for i in 0..nd {
        let ax = i + 1;
        let (inp, out) = (x.shape()[ax], sizes[i]);
        if inp == out && scales[i].is_none_or(|s| s == 1.0) {
            continue;
        }
        let taps = axis_taps(mode, inp, out, scales[i], align_corners);
        let mut wshape = vec![1; x.ndim()];
        wshape[ax] = out;
        let mut acc: Option<Array> = None;
        for (idx, w) in taps {
            let g = ingot::take(&y, &Array::from_slice(&idx, &[out])?, Some(ax as isize))?;
            let term = if linear {
                let w = ingot::astype(&Array::from_slice(&w, &wshape)?, x.dtype())?;
                ingot::multiply(&g, &w)?
            } else {
                g
            };
            acc = Some(match acc {
                None => term,
                Some(a) => ingot::add(&a, &term)?,
            });
        }
        if let Some(a) = acc {
            y = a;
        }
    }
    Ok(y)
}
