//! Convolution layers, channels-last as ingot's convolutions (and MLX's): inputs
//! `(N, *spatial, C_in)` (or unbatched `(*spatial, C_in)`), outputs `(N, *spatial', C_out)`.
//!
//! Parameter names and initializations are PyTorch's; only the weight's axis order differs.
//! [`Conv`] stores its weight as `(out, *kernel, in / groups)`, where PyTorch's `ConvNd`
//! holds `(out, in / groups, *kernel)`; [`ConvTranspose`] stores `(out, *kernel, in / groups)`
//! where PyTorch's `ConvTransposeNd` holds `(in, out / groups, *kernel)`. A PyTorch
//! checkpoint's weight therefore needs [`conv_weight_from_torch`] (or
//! [`Conv::from_torch_weight`]) and [`conv_transpose_weight_from_torch`] before
//! [`crate::ModuleExt::update`]; the `*_to_torch` functions go back.

use super::params::{add_bias, check_float, default_bound, unbatch, uniform_weight_and_bias};
use crate::module::{Module, Param, Unary};
use crate::rng;
use ingot::{Array, DType, Error, PadMode, Padding, Result, SliceArg};

/// Sizes of a pooling or convolution option: one value for every spatial dim, or one per
/// dim (`2`, `[2, 3]`, `vec![1, 2, 2]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PerDim(pub Vec<usize>);

impl From<usize> for PerDim {
    fn from(v: usize) -> Self {
        PerDim(vec![v])
    }
}
impl From<&[usize]> for PerDim {
    fn from(v: &[usize]) -> Self {
        PerDim(v.to_vec())
    }
}
impl From<Vec<usize>> for PerDim {
    fn from(v: Vec<usize>) -> Self {
        PerDim(v)
    }
}
impl<const K: usize> From<[usize; K]> for PerDim {
    fn from(v: [usize; K]) -> Self {
        PerDim(v.to_vec())
    }
}

impl PerDim {
    /// Exactly `nd` values (one broadcasts), or an error naming `layer` and `what`.
    pub fn resolve(&self, layer: &str, what: &str, nd: usize) -> Result<Vec<usize>> {
        match self.0.len() {
            1 => Ok(vec![self.0[0]; nd]),
            n if n == nd => Ok(self.0.clone()),
            n => Err(Error::invalid(
                layer,
                format!(
                    "{what} needs 1 or {nd} values for {nd} spatial dims, got {n}: {:?}",
                    self.0
                ),
            )),
        }
    }
}

/// How a convolution fills its padding (PyTorch's `padding_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaddingMode {
    /// Zeros (the default).
    Zeros,
    /// Mirror without repeating the border (`[2 1 | 0 1 2 | 1 0]`).
    Reflect,
    /// Repeat the border cell.
    Replicate,
    /// Wrap around (periodic).
    Circular,
}

/// The options of a convolution layer, PyTorch's defaults: stride 1, padding 0, dilation
/// 1, groups 1, a bias, zero padding, output_padding 0 (transposed layers only).
#[derive(Clone, Debug)]
pub struct ConvOptions {
    pub stride: PerDim,
    /// `Padding::Same` is PyTorch's `padding="same"` (stride 1): `dilation * (k - 1)`
    /// cells, the odd one at the end.
    pub padding: Padding,
    pub dilation: PerDim,
    pub groups: usize,
    pub bias: bool,
    pub padding_mode: PaddingMode,
    /// Extra cells on the high side of a transposed convolution's output.
    pub output_padding: PerDim,
}

impl Default for ConvOptions {
    fn default() -> Self {
        ConvOptions {
            stride: PerDim(vec![1]),
            padding: Padding::Explicit(vec![0]),
            dilation: PerDim(vec![1]),
            groups: 1,
            bias: true,
            padding_mode: PaddingMode::Zeros,
            output_padding: PerDim(vec![0]),
        }
    }
}

impl ConvOptions {
    pub fn stride(mut self, s: impl Into<PerDim>) -> Self {
        self.stride = s.into();
        self
    }
    pub fn padding(mut self, p: impl Into<Padding>) -> Self {
        self.padding = p.into();
        self
    }
    pub fn dilation(mut self, d: impl Into<PerDim>) -> Self {
        self.dilation = d.into();
        self
    }
    pub fn groups(mut self, g: usize) -> Self {
        self.groups = g;
        self
    }
    pub fn bias(mut self, b: bool) -> Self {
        self.bias = b;
        self
    }
    pub fn padding_mode(mut self, m: PaddingMode) -> Self {
        self.padding_mode = m;
        self
    }
    pub fn output_padding(mut self, p: impl Into<PerDim>) -> Self {
        self.output_padding = p.into();
        self
    }
}

/// A core error re-labelled with the layer's name and the input it got.
fn relabel(layer: &str, x: &Array, w: &Array, e: Error) -> Error {
    match e {
        Error::Invalid { op, msg } => Error::invalid(
            layer,
            format!(
                "input {:?} {} with weight {:?} {}: [{op}] {msg}",
                x.shape(),
                x.dtype(),
                w.shape(),
                w.dtype()
            ),
        ),
        other => other,
    }
}

/// Permutes a PyTorch conv weight `(out, in / groups, *kernel)` to the stored
/// `(out, *kernel, in / groups)`.
pub fn conv_weight_from_torch(w: &Array) -> Result<Array> {
    let nd = w.ndim();
    if nd < 3 {
        return Err(Error::invalid(
            "conv_weight_from_torch",
            format!(
                "weight must be (out, in / groups, *kernel), got {:?}",
                w.shape()
            ),
        ));
    }
    let mut perm: Vec<isize> = vec![0];
    perm.extend(2..nd as isize);
    perm.push(1);
    ingot::transpose(w, Some(&perm))
}

/// The stored conv weight `(out, *kernel, in / groups)` in PyTorch's `(out, in / groups,
/// *kernel)`.
pub fn conv_weight_to_torch(w: &Array) -> Result<Array> {
    let nd = w.ndim();
    if nd < 3 {
        return Err(Error::invalid(
            "conv_weight_to_torch",
            format!(
                "weight must be (out, *kernel, in / groups), got {:?}",
                w.shape()
            ),
        ));
    }
    let mut perm: Vec<isize> = vec![0, nd as isize - 1];
    perm.extend(1..nd as isize - 1);
    ingot::transpose(w, Some(&perm))
}

/// A PyTorch transposed-conv weight `(in, out / groups, *kernel)` in the stored layout
/// `(out, *kernel, in / groups)`: output channel `g * out/groups + o` reads input channel
/// `g * in/groups + i` through `torch[g * in/groups + i, o, k]`.
pub fn conv_transpose_weight_from_torch(w: &Array, groups: usize) -> Result<Array> {
    let op = "conv_transpose_weight_from_torch";
    let s = w.shape();
    if s.len() < 3 || groups == 0 || s[0] % groups != 0 {
        return Err(Error::invalid(
            op,
            format!(
                "weight must be (in, out / groups, *kernel) with in divisible by groups={groups}, got {s:?}"
            ),
        ));
    }
    let nk = s.len() - 2;
    let (cin_g, cout_g) = (s[0] / groups, s[1]);
    let mut split = vec![groups, cin_g, cout_g];
    split.extend_from_slice(&s[2..]);
    let g = ingot::reshape_to(w, &split)?;
    // (g, in/g, out/g, *k) -> (g, out/g, *k, in/g)
    let mut perm: Vec<isize> = vec![0, 2];
    perm.extend(3..3 + nk as isize);
    perm.push(1);
    let t = ingot::transpose(&g, Some(&perm))?;
    let mut to = vec![groups * cout_g];
    to.extend_from_slice(&s[2..]);
    to.push(cin_g);
    ingot::reshape_to(&t, &to)
}

/// The stored transposed-conv weight `(out, *kernel, in / groups)` in PyTorch's `(in, out /
/// groups, *kernel)`.
pub fn conv_transpose_weight_to_torch(w: &Array, groups: usize) -> Result<Array> {
    let op = "conv_transpose_weight_to_torch";
    let s = w.shape();
    if s.len() < 3 || groups == 0 || s[0] % groups != 0 {
        return Err(Error::invalid(
            op,
            format!(
                "weight must be (out, *kernel, in / groups) with out divisible by groups={groups}, got {s:?}"
            ),
        ));
    }
    let nk = s.len() - 2;
    let (cout_g, cin_g) = (s[0] / groups, s[s.len() - 1]);
    let mut split = vec![groups, cout_g];
    split.extend_from_slice(&s[1..s.len() - 1]);
    split.push(cin_g);
    let g = ingot::reshape_to(w, &split)?;
    // (g, out/g, *k, in/g) -> (g, in/g, out/g, *k)
    let mut perm: Vec<isize> = vec![0, 2 + nk as isize, 1];
    perm.extend(2..2 + nk as isize);
    let t = ingot::transpose(&g, Some(&perm))?;
    let mut to = vec![groups * cin_g, cout_g];
    to.extend_from_slice(&s[1..s.len() - 1]);
    ingot::reshape_to(&t, &to)
}

/// Validates the weight and bias of an `nd`-d layer; returns (out, in) channels.
fn check_params(
    layer: &str,
    nd: usize,
    w: &Array,
    b: Option<&Array>,
    groups: usize,
) -> Result<(usize, usize)> {
    if !(1..=3).contains(&nd) {
        return Err(Error::invalid(
            layer,
            format!("only 1, 2 or 3 spatial dims are supported, got {nd}"),
        ));
    }
    check_float(layer, w.dtype())?;
    if w.ndim() != nd + 2 {
        return Err(Error::invalid(
            layer,
            format!(
                "weight must be {}-D (out, *kernel, in / groups), got {:?}",
                nd + 2,
                w.shape()
            ),
        ));
    }
    if groups == 0 || w.shape()[0] % groups != 0 {
        return Err(Error::invalid(
            layer,
            format!(
                "groups={groups} must be positive and divide the {} output channels of weight {:?}",
                w.shape()[0],
                w.shape()
            ),
        ));
    }
    if w.shape()[1..=nd].contains(&0) {
        return Err(Error::invalid(
            layer,
            format!("kernel sizes must be positive, got weight {:?}", w.shape()),
        ));
    }
    if let Some(b) = b {
        if b.shape() != [w.shape()[0]] || b.dtype() != w.dtype() {
            return Err(Error::invalid(
                layer,
                format!(
                    "bias {:?} {} does not match weight {:?} {}",
                    b.shape(),
                    b.dtype(),
                    w.shape(),
                    w.dtype()
                ),
            ));
        }
    }
    Ok((w.shape()[0], w.shape()[nd + 1] * groups))
}

/// Checks the input's rank and channels; returns it batched and whether it was.
fn batched_input(
    layer: &str,
    nd: usize,
    x: &Array,
    cin: usize,
    w: &Array,
) -> Result<(Array, bool)> {
    let batched = if x.ndim() == nd + 2 {
        true
    } else if x.ndim() == nd + 1 {
        false
    } else {
        return Err(Error::invalid(
            layer,
            format!(
                "input must be (N, *spatial, C) or (*spatial, C) with {nd} spatial dims, got {:?} {}",
                x.shape(),
                x.dtype()
            ),
        ));
    };
    let c = x.shape()[x.ndim() - 1];
    if c != cin {
        return Err(Error::invalid(
            layer,
            format!(
                "input {:?} has {c} channels in its last dim, the layer takes {cin} (weight {:?}, channels last)",
                x.shape(),
                w.shape()
            ),
        ));
    }
    let xb = if batched {
        x.clone()
    } else {
        ingot::expand_dims(x, &[0])?
    };
    Ok((xb, batched))
}

/// Pads the spatial dims of a batched `x` by `pairs` in a non-zero `mode`.
fn pad_spatial(
    layer: &str,
    x: &Array,
    pairs: &[(usize, usize)],
    mode: PaddingMode,
) -> Result<Array> {
    let nd = pairs.len();
    for (i, &(lo, hi)) in pairs.iter().enumerate() {
        let n = x.shape()[i + 1];
        let limit = match mode {
            PaddingMode::Reflect => n.saturating_sub(1),
            PaddingMode::Circular => n,
            _ => usize::MAX,
        };
        if lo > limit || hi > limit {
            return Err(Error::invalid(
                layer,
                format!(
                    "{mode:?} padding ({lo}, {hi}) is too large for spatial dim {i} of input {:?}",
                    x.shape()
                ),
            ));
        }
    }
    match mode {
        PaddingMode::Zeros | PaddingMode::Reflect | PaddingMode::Replicate => {
            let pm = match mode {
                PaddingMode::Reflect => PadMode::Reflect,
                PaddingMode::Replicate => PadMode::Edge,
                _ => PadMode::Constant,
            };
            let mut all = vec![(0, 0)];
            all.extend_from_slice(pairs);
            all.push((0, 0));
            ingot::pad(x, &all, pm, 0.0)
        }
        PaddingMode::Circular => {
            let mut y = x.clone();
            for (i, &(lo, hi)) in pairs.iter().enumerate().take(nd) {
                let ax = i as isize + 1;
                let n = y.shape()[i + 1] as isize;
                let mut parts = Vec::with_capacity(3);
                if lo > 0 {
                    parts.push(ingot::slice_axis(
                        &y,
                        ax,
                        SliceArg::range(n - lo as isize, n),
                    )?);
                }
                parts.push(y.clone());
                if hi > 0 {
                    parts.push(ingot::slice_axis(&y, ax, SliceArg::range(0, hi as isize))?);
                }
                y = ingot::concatenate(&parts, Some(ax))?;
            }
            Ok(y)
        }
    }
}

fn conv_name(nd: usize) -> &'static str {
    match nd {
        1 => "Conv1d",
        2 => "Conv2d",
        3 => "Conv3d",
        _ => "Conv",
    }
}

fn conv_transpose_name(nd: usize) -> &'static str {
    match nd {
        1 => "ConvTranspose1d",
        2 => "ConvTranspose2d",
        3 => "ConvTranspose3d",
        _ => "ConvTranspose",
    }
}

/// The initial weight `(out, *kernel, in / groups)` and bias `(out,)` (when
/// `options.bias`) of a new [`Conv`] or (`transposed`) [`ConvTranspose`]: both
/// `U(-1/sqrt(fan_in), 1/sqrt(fan_in))` with PyTorch's `fan_in`, `in / groups *
/// prod(kernel)` for a convolution and `out / groups * prod(kernel)` for a transposed one
/// (PyTorch computes it from its own weight's dim 1).
fn init_arrays<const N: usize>(
    transposed: bool,
    in_channels: usize,
    out_channels: usize,
    kernel: PerDim,
    options: &ConvOptions,
    key: &Array,
    dtype: DType,
) -> Result<(Array, Option<Array>)> {
    let (layer, fan_channels) = if transposed {
        (conv_transpose_name(N), out_channels)
    } else {
        (conv_name(N), in_channels)
    };
    check_float(layer, dtype)?;
    let kernel = kernel.resolve(layer, "kernel_size", N)?;
    let g = options.groups;
    if g == 0 || in_channels % g != 0 || out_channels % g != 0 {
        return Err(Error::invalid(
            layer,
            format!(
                "groups={g} must be positive and divide in_channels={in_channels} and out_channels={out_channels}"
            ),
        ));
    }
    let fan_in = fan_channels / g * kernel.iter().product::<usize>();
    let mut shape = vec![out_channels];
    shape.extend_from_slice(&kernel);
    shape.push(in_channels / g);
    uniform_weight_and_bias(key, &shape, options.bias, default_bound(fan_in), dtype)
}

/// `options`' stride and dilation for `nd` dims, checked positive.
fn stride_and_dilation(
    layer: &str,
    nd: usize,
    options: &ConvOptions,
) -> Result<(Vec<usize>, Vec<usize>)> {
    let stride = options.stride.resolve(layer, "stride", nd)?;
    let dilation = options.dilation.resolve(layer, "dilation", nd)?;
    if stride.contains(&0) || dilation.contains(&0) {
        return Err(Error::invalid(
            layer,
            format!("stride {stride:?} and dilation {dilation:?} must be positive"),
        ));
    }
    Ok((stride, dilation))
}

/// An `N`-d convolution (cross-correlation, as PyTorch's `ConvNd`): weight `(out, *kernel,
/// in / groups)` under "weight", bias `(out,)` under "bias", both `U(-1/sqrt(fan_in),
/// 1/sqrt(fan_in))` with `fan_in = in / groups * prod(kernel)` (PyTorch's default).
#[derive(Clone, Debug)]
pub struct Conv<const N: usize> {
    pub weight: Param,
    pub bias: Option<Param>,
    pub stride: Vec<usize>,
    pub padding: Padding,
    pub dilation: Vec<usize>,
    pub groups: usize,
    pub padding_mode: PaddingMode,
}

pub type Conv1d = Conv<1>;
pub type Conv2d = Conv<2>;
pub type Conv3d = Conv<3>;

impl<const N: usize> Conv<N> {
    /// An f32 layer with PyTorch's default options, drawn from the shared random state.
    pub fn new(in_channels: usize, out_channels: usize, kernel: impl Into<PerDim>) -> Result<Self> {
        Self::with_options(in_channels, out_channels, kernel, &ConvOptions::default())
    }

    /// An f32 layer with `options`, drawn from the shared random state.
    pub fn with_options(
        in_channels: usize,
        out_channels: usize,
        kernel: impl Into<PerDim>,
        options: &ConvOptions,
    ) -> Result<Self> {
        Self::with(
            in_channels,
            out_channels,
            kernel,
            options,
            &rng::next_key()?,
            DType::F32,
        )
    }

    /// A layer of `dtype` drawn from `key`.
    pub fn with(
        in_channels: usize,
        out_channels: usize,
        kernel: impl Into<PerDim>,
        options: &ConvOptions,
        key: &Array,
        dtype: DType,
    ) -> Result<Self> {
        let (weight, bias) = init_arrays::<N>(
            false,
            in_channels,
            out_channels,
            kernel.into(),
            options,
            key,
            dtype,
        )?;
        Self::from_arrays(weight, bias, options)
    }

    /// A layer over given arrays: weight `(out, *kernel, in / groups)`, bias `(out,)`
    /// (`options.bias` is ignored: the bias is there or not).
    pub fn from_arrays(weight: Array, bias: Option<Array>, options: &ConvOptions) -> Result<Self> {
        let name = conv_name(N);
        check_params(name, N, &weight, bias.as_ref(), options.groups)?;
        let (stride, dilation) = stride_and_dilation(name, N, options)?;
        if options.padding == Padding::Same && stride.iter().any(|&s| s != 1) {
            return Err(Error::invalid(
                name,
                format!("padding=\"same\" needs stride 1 (as PyTorch), got {stride:?}"),
            ));
        }
        let layer = Conv {
            weight: Param::new(weight),
            bias: bias.map(Param::new),
            stride,
            padding: options.padding.clone(),
            dilation,
            groups: options.groups,
            padding_mode: options.padding_mode,
        };
        // Checks the padding's length now rather than at the first forward.
        layer.padding_pairs()?;
        Ok(layer)
    }

    /// A layer over a PyTorch checkpoint's arrays: weight `(out, in / groups, *kernel)`.
    pub fn from_torch(weight: &Array, bias: Option<Array>, options: &ConvOptions) -> Result<Self> {
        Self::from_arrays(Self::from_torch_weight(weight)?, bias, options)
    }

    /// PyTorch's `(out, in / groups, *kernel)` weight in this layer's layout.
    pub fn from_torch_weight(weight: &Array) -> Result<Array> {
        if weight.ndim() != N + 2 {
            return Err(Error::invalid(
                conv_name(N),
                format!(
                    "a PyTorch weight is {}-D (out, in / groups, *kernel), got {:?}",
                    N + 2,
                    weight.shape()
                ),
            ));
        }
        conv_weight_from_torch(weight)
    }

    /// This layer's weight in PyTorch's `(out, in / groups, *kernel)` layout.
    pub fn torch_weight(&self) -> Result<Array> {
        conv_weight_to_torch(&self.weight.value)
    }

    pub fn in_channels(&self) -> usize {
        self.weight.value.shape()[N + 1] * self.groups
    }
    pub fn out_channels(&self) -> usize {
        self.weight.value.shape()[0]
    }
    pub fn kernel_size(&self) -> Vec<usize> {
        self.weight.value.shape()[1..=N].to_vec()
    }

    /// Explicit (lo, hi) pairs of the padding (for the non-zero padding modes).
    fn padding_pairs(&self) -> Result<Vec<(usize, usize)>> {
        let name = conv_name(N);
        let k = self.kernel_size();
        Ok(match &self.padding {
            Padding::Valid => vec![(0, 0); N],
            Padding::Same => (0..N)
                .map(|i| {
                    let total = self.dilation[i] * (k[i] - 1);
                    (total / 2, total - total / 2)
                })
                .collect(),
            Padding::Explicit(v) => PerDim(v.clone())
                .resolve(name, "padding", N)?
                .into_iter()
                .map(|p| (p, p))
                .collect(),
            Padding::Pairs(v) => match v.len() {
                1 => vec![v[0]; N],
                n if n == N => v.clone(),
                n => {
                    return Err(Error::invalid(
                        name,
                        format!("padding needs 1 or {N} (lo, hi) pairs, got {n}: {v:?}"),
                    ))
                }
            },
        })
    }
}

impl<const N: usize> Module for Conv<N> {
    fn visit(&self, f: &mut dyn FnMut(&str, &Param)) {
        f("weight", &self.weight);
        if let Some(b) = &self.bias {
            f("bias", b);
        }
    }
    fn visit_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
        f("weight", &mut self.weight);
        if let Some(b) = &mut self.bias {
            f("bias", b);
        }
    }
}

impl<const N: usize> Unary for Conv<N> {
    /// `(N, *spatial, in)` or `(*spatial, in)` to `(N, *spatial', out)` / `(*spatial', out)`.
    fn forward(&self, x: &Array) -> Result<Array> {
        let name = conv_name(N);
        let w = &self.weight.value;
        let (xb, batched) = batched_input(name, N, x, self.in_channels(), w)?;
        let (xb, padding) = match self.padding_mode {
            PaddingMode::Zeros => (xb, self.padding.clone()),
            mode => (
                pad_spatial(name, &xb, &self.padding_pairs()?, mode)?,
                Padding::Valid,
            ),
        };
        let y = ingot::conv_general(
            &xb,
            w,
            &self.stride,
            padding,
            &self.dilation,
            &[1],
            self.groups,
            false,
        )
        .map_err(|e| relabel(name, x, w, e))?;
        unbatch(add_bias(y, self.bias.as_ref())?, batched)
    }
}

/// An `N`-d transposed convolution (PyTorch's `ConvTransposeNd`, the gradient of a
/// convolution with respect to its input). Stored weight `(out, *kernel, in / groups)`
/// (ingot's and MLX's layout; PyTorch holds `(in, out / groups, *kernel)`, see
/// [`conv_transpose_weight_from_torch`]), bias `(out,)`. Both are `U(-1/sqrt(fan_in),
/// 1/sqrt(fan_in))` with PyTorch's `fan_in = out / groups * prod(kernel)` (PyTorch computes
/// it from its own weight's dim 1). Output size per dim: `(in - 1) * stride - 2 * padding +
/// dilation * (k - 1) + output_padding + 1`.
/// `Padding::Same` here is ingot's transposed rule (output `in * stride`), which PyTorch
/// does not offer.
#[derive(Clone, Debug)]
pub struct ConvTranspose<const N: usize> {
    pub weight: Param,
    pub bias: Option<Param>,
    pub stride: Vec<usize>,
    pub padding: Padding,
    pub dilation: Vec<usize>,
    pub output_padding: Vec<usize>,
    pub groups: usize,
}

pub type ConvTranspose1d = ConvTranspose<1>;
pub type ConvTranspose2d = ConvTranspose<2>;
pub type ConvTranspose3d = ConvTranspose<3>;

impl<const N: usize> ConvTranspose<N> {
    /// An f32 layer with PyTorch's default options, drawn from the shared random state.
    pub fn new(in_channels: usize, out_channels: usize, kernel: impl Into<PerDim>) -> Result<Self> {
        Self::with_options(in_channels, out_channels, kernel, &ConvOptions::default())
    }

    /// An f32 layer with `options`, drawn from the shared random state.
    pub fn with_options(
        in_channels: usize,
        out_channels: usize,
        kernel: impl Into<PerDim>,
        options: &ConvOptions,
    ) -> Result<Self> {
        Self::with(
            in_channels,
            out_channels,
            kernel,
            options,
            &rng::next_key()?,
            DType::F32,
        )
    }

    /// A layer of `dtype` drawn from `key`.
    pub fn with(
        in_channels: usize,
        out_channels: usize,
        kernel: impl Into<PerDim>,
        options: &ConvOptions,
        key: &Array,
        dtype: DType,
    ) -> Result<Self> {
        let (weight, bias) = init_arrays::<N>(
            true,
            in_channels,
            out_channels,
            kernel.into(),
            options,
            key,
            dtype,
        )?;
        Self::from_arrays(weight, bias, options)
    }

    /// A layer over given arrays: weight `(out, *kernel, in / groups)`, bias `(out,)`.
    pub fn from_arrays(weight: Array, bias: Option<Array>, options: &ConvOptions) -> Result<Self> {
        let name = conv_transpose_name(N);
        check_params(name, N, &weight, bias.as_ref(), options.groups)?;
        if options.padding_mode != PaddingMode::Zeros {
            return Err(Error::invalid(
                name,
                format!(
                    "only zero padding is supported (as PyTorch), got {:?}",
                    options.padding_mode
                ),
            ));
        }
        let (stride, dilation) = stride_and_dilation(name, N, options)?;
        let output_padding = options.output_padding.resolve(name, "output_padding", N)?;
        for i in 0..N {
            if output_padding[i] >= stride[i].max(dilation[i]) {
                return Err(Error::invalid(
                    name,
                    format!(
                        "output_padding {output_padding:?} must be smaller than stride {stride:?} or dilation {dilation:?}"
                    ),
                ));
            }
        }
        match &options.padding {
            Padding::Explicit(v) => {
                PerDim(v.clone()).resolve(name, "padding", N)?;
            }
            Padding::Pairs(v) if v.len() != 1 && v.len() != N => {
                return Err(Error::invalid(
                    name,
                    format!("padding needs 1 or {N} (lo, hi) pairs, got {v:?}"),
                ))
            }
            _ => {}
        }
        Ok(ConvTranspose {
            weight: Param::new(weight),
            bias: bias.map(Param::new),
            stride,
            padding: options.padding.clone(),
            dilation,
            output_padding,
            groups: options.groups,
        })
    }

    /// A layer over a PyTorch checkpoint's arrays: weight `(in, out / groups, *kernel)`.
    pub fn from_torch(weight: &Array, bias: Option<Array>, options: &ConvOptions) -> Result<Self> {
        Self::from_arrays(
            Self::from_torch_weight(weight, options.groups)?,
            bias,
            options,
        )
    }

    /// PyTorch's `(in, out / groups, *kernel)` weight in this layer's layout.
    pub fn from_torch_weight(weight: &Array, groups: usize) -> Result<Array> {
        if weight.ndim() != N + 2 {
            return Err(Error::invalid(
                conv_transpose_name(N),
                format!(
                    "a PyTorch weight is {}-D (in, out / groups, *kernel), got {:?}",
                    N + 2,
                    weight.shape()
                ),
            ));
        }
        conv_transpose_weight_from_torch(weight, groups)
    }

    /// This layer's weight in PyTorch's `(in, out / groups, *kernel)` layout.
    pub fn torch_weight(&self) -> Result<Array> {
        conv_transpose_weight_to_torch(&self.weight.value, self.groups)
    }

    pub fn in_channels(&self) -> usize {
        self.weight.value.shape()[N + 1] * self.groups
    }
    pub fn out_channels(&self) -> usize {
        self.weight.value.shape()[0]
    }
    pub fn kernel_size(&self) -> Vec<usize> {
        self.weight.value.shape()[1..=N].to_vec()
    }

    /// The forward pass with `output_padding` chosen so the spatial output is `size`
    /// (PyTorch's `forward(input, output_size)`, which resolves a strided layer's ambiguity).
    pub fn forward_with_output_size(&self, x: &Array, size: &[usize]) -> Result<Array> {
        let name = conv_transpose_name(N);
        let (xb, _) = batched_input(name, N, x, self.in_channels(), &self.weight.value)?;
        let pads = match &self.padding {
            Padding::Explicit(v) => PerDim(v.clone()).resolve(name, "padding", N)?,
            Padding::Valid => vec![0; N],
            p => {
                return Err(Error::invalid(
                    name,
                    format!("an output size needs a symmetric explicit padding, got {p:?}"),
                ))
            }
        };
        if size.len() != N {
            return Err(Error::invalid(
                name,
                format!("output size needs {N} values, got {size:?}"),
            ));
        }
        let k = self.kernel_size();
        let mut op = Vec::with_capacity(N);
        for i in 0..N {
            let base = ((xb.shape()[i + 1] - 1) * self.stride[i]
                + self.dilation[i] * (k[i] - 1)
                + 1) as isize
                - 2 * pads[i] as isize;
            let extra = size[i] as isize - base;
            if extra < 0 || extra as usize >= self.stride[i].max(self.dilation[i]) {
                return Err(Error::invalid(
                    name,
                    format!(
                        "output size {size:?} is not reachable from input {:?} (dim {i}: {base} plus less than {})",
                        x.shape(),
                        self.stride[i].max(self.dilation[i])
                    ),
                ));
            }
            op.push(extra as usize);
        }
        self.forward_padded(x, &op)
    }

    fn forward_padded(&self, x: &Array, output_padding: &[usize]) -> Result<Array> {
        let name = conv_transpose_name(N);
        let w = &self.weight.value;
        let (xb, batched) = batched_input(name, N, x, self.in_channels(), w)?;
        let p = self.padding.clone();
        let y = match N {
            1 => ingot::conv_transpose1d(
                &xb,
                w,
                self.stride[0],
                p,
                self.dilation[0],
                output_padding[0],
                self.groups,
            ),
            2 => ingot::conv_transpose2d(
                &xb,
                w,
                &self.stride,
                p,
                &self.dilation,
                output_padding,
                self.groups,
            ),
            _ => ingot::conv_transpose3d(
                &xb,
                w,
                &self.stride,
                p,
                &self.dilation,
                output_padding,
                self.groups,
            ),
        }
        .map_err(|e| relabel(name, x, w, e))?;
        unbatch(add_bias(y, self.bias.as_ref())?, batched)
    }
}

impl<const N: usize> Module for ConvTranspose<N> {
    fn visit(&self, f: &mut dyn FnMut(&str, &Param)) {
        f("weight", &self.weight);
        if let Some(b) = &self.bias {
            f("bias", b);
        }
    }
    fn visit_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
        f("weight", &mut self.weight);
        if let Some(b) = &mut self.bias {
            f("bias", b);
        }
    }
}

impl<const N: usize> Unary for ConvTranspose<N> {
    /// `(N, *spatial, in)` or `(*spatial, in)` to `(N, *spatial', out)` / `(*spatial', out)`.
    fn forward(&self, x: &Array) -> Result<Array> {
        self.forward_padded(x, &self.output_padding.clone())
    }
}
