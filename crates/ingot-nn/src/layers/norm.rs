//! Normalization layers: LayerNorm, RMSNorm, GroupNorm, BatchNorm and InstanceNorm, with
//! PyTorch's parameter names, defaults and statistics. Channels are the last axis.
//!
//! f16 and bf16 inputs are normalized in f32 and the result cast back, as PyTorch's kernels
//! do internally: a variance summed in half precision loses most of its digits.

use crate::module::{Module, Param, Unary};
use ingot::{Array, DType, Error, Result};
use parking_lot::Mutex;

/// The dtype statistics are computed in.
fn stat_dtype(d: DType) -> DType {
    match d {
        DType::F16 | DType::BF16 => DType::F32,
        d => d,
    }
}

fn check_float(layer: &str, x: &Array) -> Result<()> {
    if x.dtype().is_float() {
        Ok(())
    } else {
        Err(Error::invalid(
            layer,
            format!("input must be floating, got {:?} {}", x.shape(), x.dtype()),
        ))
    }
}

/// `(x - mean) / sqrt(var + eps)` over `axes` (biased variance), in the statistics dtype.
fn standardize(x: &Array, axes: &[isize], eps: f64) -> Result<Array> {
    let xs = ingot::astype(x, stat_dtype(x.dtype()))?;
    let mean = ingot::mean(&xs, Some(axes), true)?;
    let c = ingot::subtract(&xs, &mean)?;
    let var = ingot::mean(&ingot::square(&c)?, Some(axes), true)?;
    ingot::multiply(&c, &ingot::rsqrt(&ingot::add(&var, eps)?)?)
}

/// A norm's optional scale (ones) and shift (zeros) over the normalized features, named
/// "weight" and "bias" as in PyTorch.
#[derive(Clone)]
pub struct Affine {
    pub weight: Option<Param>,
    pub bias: Option<Param>,
}

impl Affine {
    fn new(layer: &str, shape: &[usize], weight: bool, bias: bool, dtype: DType) -> Result<Affine> {
        if !dtype.is_float() {
            return Err(Error::invalid(
                layer,
                format!("parameters must be a floating dtype, got {dtype}"),
            ));
        }
        Ok(Affine {
            weight: if weight {
                Some(Param::new(ingot::ones(shape, dtype)?))
            } else {
                None
            },
            bias: if bias {
                Some(Param::new(ingot::zeros(shape, dtype)?))
            } else {
                None
            },
        })
    }

    /// `y * weight + bias` (where present), then back to `dtype`.
    fn apply(&self, y: Array, dtype: DType) -> Result<Array> {
        let mut y = y;
        if let Some(w) = &self.weight {
            y = ingot::multiply(&y, &ingot::astype(&w.value, y.dtype())?)?;
        }
        if let Some(b) = &self.bias {
            y = ingot::add(&y, &ingot::astype(&b.value, y.dtype())?)?;
        }
        ingot::astype(&y, dtype)
    }
}

impl Module for Affine {
    fn visit(&self, f: &mut dyn FnMut(&str, &Param)) {
        if let Some(w) = &self.weight {
            f("weight", w);
        }
        if let Some(b) = &self.bias {
            f("bias", b);
        }
    }
    fn visit_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
        if let Some(w) = &mut self.weight {
            f("weight", w);
        }
        if let Some(b) = &mut self.bias {
            f("bias", b);
        }
    }
}

/// Layer normalization over the last `normalized_shape.len()` axes, with a weight (ones)
/// and bias (zeros) of that shape.
#[derive(Clone)]
pub struct LayerNorm {
    pub normalized_shape: Vec<usize>,
    pub eps: f64,
    pub affine: Affine,
}

impl LayerNorm {
    /// PyTorch's defaults: eps 1e-5, affine with bias.
    pub fn new(normalized_shape: &[usize]) -> Result<LayerNorm> {
        LayerNorm::with(normalized_shape, 1e-5, true, true, DType::F32)
    }

    pub fn with(
        normalized_shape: &[usize],
        eps: f64,
        elementwise_affine: bool,
        bias: bool,
        dtype: DType,
    ) -> Result<LayerNorm> {
        Ok(LayerNorm {
            normalized_shape: normalized_shape.to_vec(),
            eps,
            affine: Affine::new(
                "LayerNorm",
                normalized_shape,
                elementwise_affine,
                elementwise_affine && bias,
                dtype,
            )?,
        })
    }
}

impl Module for LayerNorm {
    fn visit(&self, f: &mut dyn FnMut(&str, &Param)) {
        self.affine.visit(f);
    }
    fn visit_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
        self.affine.visit_mut(f);
    }
}

impl Unary for LayerNorm {
    fn forward(&self, x: &Array) -> Result<Array> {
        check_float("LayerNorm", x)?;
        let k = self.normalized_shape.len();
        if x.ndim() < k || x.shape()[x.ndim() - k..] != self.normalized_shape[..] {
            return Err(Error::invalid(
                "LayerNorm",
                format!(
                    "input {:?} does not end in the normalized shape {:?}",
                    x.shape(),
                    self.normalized_shape
                ),
            ));
        }
        // One fused node over the flattened normalized axes: its gradient rebuilds the
        // statistics from x, so a training step keeps x alone, not f32 intermediates.
        let d: usize = self.normalized_shape.iter().product();
        let lead = &x.shape()[..x.ndim() - k];
        let flat = |p: &Option<Param>| {
            p.as_ref()
                .map(|p| ingot::reshape(&p.value, &[d as isize]))
                .transpose()
        };
        let (w, b) = (flat(&self.affine.weight)?, flat(&self.affine.bias)?);
        let xf = ingot::reshape_to(x, &[lead, &[d]].concat())?;
        let y = ingot::fast::layer_norm(&xf, w.as_ref(), b.as_ref(), self.eps)?;
        ingot::astype(&ingot::reshape_to(&y, x.shape())?, x.dtype())
    }
}

/// Root-mean-square normalization over the last axis: `x / sqrt(mean(x^2) + eps) * weight`
/// (weight ones), as in Llama.
#[derive(Clone)]
pub struct RMSNorm {
    pub dim: usize,
    pub eps: f64,
    pub affine: Affine,
}

impl RMSNorm {
    /// eps 1e-6 (Llama's; PyTorch's RMSNorm defaults to the dtype's machine epsilon).
    pub fn new(dim: usize) -> Result<RMSNorm> {
        RMSNorm::with(dim, 1e-6, true, DType::F32)
    }

    pub fn with(dim: usize, eps: f64, elementwise_affine: bool, dtype: DType) -> Result<RMSNorm> {
        Ok(RMSNorm {
            dim,
            eps,
            affine: Affine::new("RMSNorm", &[dim], elementwise_affine, false, dtype)?,
        })
    }
}

impl Module for RMSNorm {
    fn visit(&self, f: &mut dyn FnMut(&str, &Param)) {
        self.affine.visit(f);
    }
    fn visit_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
        self.affine.visit_mut(f);
    }
}

impl Unary for RMSNorm {
    fn forward(&self, x: &Array) -> Result<Array> {
        check_float("RMSNorm", x)?;
        if x.ndim() == 0 || x.shape()[x.ndim() - 1] != self.dim {
            return Err(Error::invalid(
                "RMSNorm",
                format!(
                    "input {:?} does not end in {} features",
                    x.shape(),
                    self.dim
                ),
            ));
        }
        // One fused node, as LayerNorm's.
        let w = self.affine.weight.as_ref().map(|p| &p.value);
        let y = ingot::fast::rms_norm(x, w, self.eps)?;
        ingot::astype(&y, x.dtype())
    }
}

/// Group normalization: the channels (last axis) split into `groups`, each normalized over
/// its channels and every spatial position of a sample. Inputs `(N, *spatial, C)`.
#[derive(Clone)]
pub struct GroupNorm {
    pub groups: usize,
    pub channels: usize,
    pub eps: f64,
    pub affine: Affine,
}

impl GroupNorm {
    pub fn new(groups: usize, channels: usize) -> Result<GroupNorm> {
        GroupNorm::with(groups, channels, 1e-5, true, DType::F32)
    }

    pub fn with(
        groups: usize,
        channels: usize,
        eps: f64,
        affine: bool,
        dtype: DType,
    ) -> Result<GroupNorm> {
        if groups == 0 || channels % groups != 0 {
            return Err(Error::invalid(
                "GroupNorm",
                format!("{channels} channels do not split into {groups} groups"),
            ));
        }
        Ok(GroupNorm {
            groups,
            channels,
            eps,
            affine: Affine::new("GroupNorm", &[channels], affine, affine, dtype)?,
        })
    }
}

impl Module for GroupNorm {
    fn visit(&self, f: &mut dyn FnMut(&str, &Param)) {
        self.affine.visit(f);
    }
    fn visit_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
        self.affine.visit_mut(f);
    }
}

impl Unary for GroupNorm {
    fn forward(&self, x: &Array) -> Result<Array> {
        check_float("GroupNorm", x)?;
        if x.ndim() < 2 || x.shape()[x.ndim() - 1] != self.channels {
            return Err(Error::invalid(
                "GroupNorm",
                format!(
                    "input {:?} is not (N, *spatial, {}) channels-last",
                    x.shape(),
                    self.channels
                ),
            ));
        }
        let mut g = x.shape().to_vec();
        g.pop();
        g.extend([self.groups, self.channels / self.groups]);
        let xg = ingot::reshape_to(x, &g)?;
        // Every axis but the batch and the group one.
        let nd = g.len() as isize;
        let axes: Vec<isize> = (1..nd).filter(|&a| a != nd - 2).collect();
        let y = ingot::reshape_to(&standardize(&xg, &axes, self.eps)?, x.shape())?;
        self.affine.apply(y, x.dtype())
    }
}

/// Running statistics of a batch norm, behind a lock because `forward(&self)` updates them
/// in train mode (as PyTorch's does).
struct Running {
    mean: Param,
    var: Param,
    count: Param,
}

/// Batch normalization over every axis but the last (channels): BatchNorm1d, 2d and 3d in
/// one, for `(N, C)`, `(N, L, C)`, `(N, H, W, C)` or `(N, D, H, W, C)` inputs. In train mode
/// it normalizes with the batch's statistics and moves the running ones by `momentum`
/// (the unbiased variance, as PyTorch); in eval mode it uses the running ones.
pub struct BatchNorm {
    pub features: usize,
    pub eps: f64,
    pub momentum: f64,
    pub affine: Affine,
    running: Option<Mutex<Running>>,
    pub training: bool,
}

impl Clone for BatchNorm {
    fn clone(&self) -> Self {
        BatchNorm {
            features: self.features,
            eps: self.eps,
            momentum: self.momentum,
            affine: self.affine.clone(),
            running: self.running.as_ref().map(|r| {
                let r = r.lock();
                Mutex::new(Running {
                    mean: r.mean.clone(),
                    var: r.var.clone(),
                    count: r.count.clone(),
                })
            }),
            training: self.training,
        }
    }
}

impl BatchNorm {
    /// PyTorch's defaults: eps 1e-5, momentum 0.1, affine, running statistics tracked.
    pub fn new(features: usize) -> Result<BatchNorm> {
        BatchNorm::with(features, 1e-5, 0.1, true, true, DType::F32)
    }

    pub fn with(
        features: usize,
        eps: f64,
        momentum: f64,
        affine: bool,
        track_running_stats: bool,
        dtype: DType,
    ) -> Result<BatchNorm> {
        if !(0.0..=1.0).contains(&momentum) {
            return Err(Error::invalid(
                "BatchNorm",
                format!("momentum {momentum} is not in [0, 1]"),
            ));
        }
        let running = if track_running_stats {
            Some(Mutex::new(Running {
                mean: Param::buffer(ingot::zeros(&[features], dtype)?),
                var: Param::buffer(ingot::ones(&[features], dtype)?),
                count: Param::buffer(ingot::zeros(&[], DType::I64)?),
            }))
        } else {
            None
        };
        Ok(BatchNorm {
            features,
            eps,
            momentum,
            affine: Affine::new("BatchNorm", &[features], affine, affine, dtype)?,
            running,
            training: true,
        })
    }

    /// The running mean and variance (None without running statistics).
    pub fn running_stats(&self) -> Option<(Array, Array)> {
        self.running.as_ref().map(|r| {
            let r = r.lock();
            (r.mean.value.clone(), r.var.value.clone())
        })
    }
}

impl Module for BatchNorm {
    fn visit(&self, f: &mut dyn FnMut(&str, &Param)) {
        self.affine.visit(f);
        if let Some(r) = &self.running {
            let r = r.lock();
            f("running_mean", &r.mean);
            f("running_var", &r.var);
            f("num_batches_tracked", &r.count);
        }
    }
    fn visit_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
        self.affine.visit_mut(f);
        if let Some(r) = &self.running {
            let mut r = r.lock();
            f("running_mean", &mut r.mean);
            f("running_var", &mut r.var);
            f("num_batches_tracked", &mut r.count);
        }
    }
    fn set_training(&mut self, on: bool) {
        self.training = on;
    }
}

impl Unary for BatchNorm {
    fn forward(&self, x: &Array) -> Result<Array> {
        check_float("BatchNorm", x)?;
        if x.ndim() < 2 || x.shape()[x.ndim() - 1] != self.features {
            return Err(Error::invalid(
                "BatchNorm",
                format!(
                    "input {:?} is not (N, ..., {}) channels-last",
                    x.shape(),
                    self.features
                ),
            ));
        }
        let axes: Vec<isize> = (0..x.ndim() as isize - 1).collect();
        let count: usize = x.shape()[..x.ndim() - 1].iter().product();
        let sd = stat_dtype(x.dtype());
        let xs = ingot::astype(x, sd)?;
        let use_batch = self.training || self.running.is_none();
        let y = if use_batch {
            if count <= 1 && self.training {
                return Err(Error::invalid(
                    "BatchNorm",
                    format!(
                        "train mode needs more than one value per channel, input {:?}",
                        x.shape()
                    ),
                ));
            }
            let mean = ingot::mean(&xs, Some(&axes), false)?;
            let c = ingot::subtract(&xs, &mean)?;
            let var = ingot::mean(&ingot::square(&c)?, Some(&axes), false)?;
            if let (true, Some(r)) = (self.training, &self.running) {
                // The running statistics are state, not part of the differentiated graph.
                let m = self.momentum;
                let unbiased = ingot::multiply(&var, count as f64 / (count as f64 - 1.0))?;
                let mut r = r.lock();
                let rd = r.mean.value.dtype();
                let upd = |old: &Array, new: &Array| -> Result<Array> {
                    let new = ingot::stop_gradient(&ingot::astype(new, rd)?)?;
                    ingot::add(&ingot::multiply(old, 1.0 - m)?, &ingot::multiply(&new, m)?)
                };
                r.mean.value = upd(&r.mean.value, &mean)?;
                r.var.value = upd(&r.var.value, &unbiased)?;
                r.count.value = ingot::add(&r.count.value, 1i64)?;
            }
            ingot::multiply(&c, &ingot::rsqrt(&ingot::add(&var, self.eps)?)?)?
        } else {
            let r = self.running.as_ref().map(|r| r.lock());
            let r = r
                .as_ref()
                .ok_or_else(|| Error::invalid("BatchNorm", "no running statistics"))?;
            let mean = ingot::astype(&r.mean.value, sd)?;
            let var = ingot::astype(&r.var.value, sd)?;
            ingot::multiply(
                &ingot::subtract(&xs, &mean)?,
                &ingot::rsqrt(&ingot::add(&var, self.eps)?)?,
            )?
        };
        self.affine.apply(y, x.dtype())
    }
}

/// Instance normalization: each sample's channels normalized over the spatial axes, inputs
/// `(N, *spatial, C)`. PyTorch's defaults: no affine parameters, no running statistics.
#[derive(Clone)]
pub struct InstanceNorm {
    pub features: usize,
    pub eps: f64,
    pub affine: Affine,
}

impl InstanceNorm {
    pub fn new(features: usize) -> Result<InstanceNorm> {
        InstanceNorm::with(features, 1e-5, false, DType::F32)
    }

    pub fn with(features: usize, eps: f64, affine: bool, dtype: DType) -> Result<InstanceNorm> {
        Ok(InstanceNorm {
            features,
            eps,
            affine: Affine::new("InstanceNorm", &[features], affine, affine, dtype)?,
        })
    }
}

impl Module for InstanceNorm {
    fn visit(&self, f: &mut dyn FnMut(&str, &Param)) {
        self.affine.visit(f);
    }
    fn visit_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
        self.affine.visit_mut(f);
    }
}

impl Unary for InstanceNorm {
    fn forward(&self, x: &Array) -> Result<Array> {
        check_float("InstanceNorm", x)?;
        if x.ndim() < 3 || x.shape()[x.ndim() - 1] != self.features {
            return Err(Error::invalid(
                "InstanceNorm",
                format!(
                    "input {:?} is not (N, *spatial, {}) channels-last",
                    x.shape(),
                    self.features
                ),
            ));
        }
        let axes: Vec<isize> = (1..x.ndim() as isize - 1).collect();
        let y = standardize(x, &axes, self.eps)?;
        self.affine.apply(y, x.dtype())
    }
}
