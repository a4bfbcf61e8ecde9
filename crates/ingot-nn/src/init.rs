//! Initializers: arrays of a given shape and floating dtype drawn from a key, with
//! PyTorch's `torch.nn.init` formulas.
//!
//! Fans depend on where a weight keeps its input channels. PyTorch's layout is
//! `(out, in, *kernel)`; ingot's convolutions are channels-last, `(out, *kernel, in)` (see
//! `ingot::conv_general`). Every fan-based initializer takes a [`Layout`]; a linear weight
//! `(out, in)` has the same fans in both.

use ingot::{Array, DType, Error, Result};

/// Where a weight keeps its input channels, for fan computation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Layout {
    /// PyTorch's `(out, in, *kernel)`.
    #[default]
    Torch,
    /// ingot's and MLX's convolution weights, `(out, *kernel, in)`.
    ChannelsLast,
}

/// Which fan scales a He/Kaiming initialization.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FanMode {
    /// Preserves the variance of activations in the forward pass.
    #[default]
    FanIn,
    /// Preserves the variance of gradients in the backward pass.
    FanOut,
}

/// The nonlinearity following a layer, for [`calculate_gain`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Nonlinearity {
    /// Identity, and the linear and convolution functions.
    Linear,
    Sigmoid,
    Tanh,
    Relu,
    /// Leaky ReLU with this negative slope (PyTorch's default is 0.01).
    LeakyRelu(f64),
    Selu,
}

/// PyTorch's `calculate_gain`: 1 (linear, sigmoid), 5/3 (tanh), sqrt 2 (relu),
/// `sqrt(2 / (1 + slope^2))` (leaky relu), 3/4 (selu).
pub fn calculate_gain(nonlinearity: Nonlinearity) -> f64 {
    match nonlinearity {
        Nonlinearity::Linear | Nonlinearity::Sigmoid => 1.0,
        Nonlinearity::Tanh => 5.0 / 3.0,
        Nonlinearity::Relu => std::f64::consts::SQRT_2,
        Nonlinearity::LeakyRelu(slope) => (2.0 / (1.0 + slope * slope)).sqrt(),
        Nonlinearity::Selu => 0.75,
    }
}

/// `(fan_in, fan_out)` of a weight of `shape`, as PyTorch's `_calculate_fan_in_and_fan_out`
/// for [`Layout::Torch`]: `in * receptive` and `out * receptive`, where receptive is the
/// product of the kernel dimensions. Fewer than 2 dimensions is an error, as in PyTorch.
pub fn fans(shape: &[usize], layout: Layout) -> Result<(usize, usize)> {
    if shape.len() < 2 {
        return Err(Error::invalid(
            "fans",
            format!(
                "fan in and fan out need a weight of at least 2 dimensions, got shape {shape:?}"
            ),
        ));
    }
    let n = shape.len();
    let (inp, kernel) = match layout {
        Layout::Torch => (shape[1], &shape[2..]),
        Layout::ChannelsLast => (shape[n - 1], &shape[1..n - 1]),
    };
    let receptive: usize = kernel.iter().product();
    Ok((inp * receptive, shape[0] * receptive))
}

fn check_dtype(name: &str, shape: &[usize], dtype: DType) -> Result<()> {
    if dtype.is_float() {
        Ok(())
    } else {
        Err(Error::invalid(
            name,
            format!("the dtype must be floating, got {dtype} (shape {shape:?})"),
        ))
    }
}

fn check_param(name: &str, what: &str, v: f64, nonneg: bool) -> Result<()> {
    if v.is_finite() && (!nonneg || v >= 0.0) {
        Ok(())
    } else {
        let need = if nonneg { "finite and >= 0" } else { "finite" };
        Err(Error::invalid(
            name,
            format!("{what} must be {need}, got {v}"),
        ))
    }
}

/// Every element `value`.
pub fn constant(shape: &[usize], value: f64, dtype: DType) -> Result<Array> {
    check_dtype("init::constant", shape, dtype)?;
    ingot::full(shape, value, dtype)
}

/// Samples of `N(mean, std^2)` (`std >= 0`; 0 gives the constant `mean`).
pub fn normal(key: &Array, shape: &[usize], mean: f64, std: f64, dtype: DType) -> Result<Array> {
    let name = "init::normal";
    check_dtype(name, shape, dtype)?;
    check_param(name, "mean", mean, false)?;
    check_param(name, "std", std, true)?;
    if std == 0.0 {
        return ingot::full(shape, mean, dtype);
    }
    ingot::random::normal(key, shape, mean, std, dtype)
}

/// Samples of `U(low, high)` (`low <= high`; equal bounds give the constant).
pub fn uniform(key: &Array, shape: &[usize], low: f64, high: f64, dtype: DType) -> Result<Array> {
    let name = "init::uniform";
    check_dtype(name, shape, dtype)?;
    check_param(name, "low", low, false)?;
    check_param(name, "high", high, false)?;
    if low > high {
        return Err(Error::invalid(
            name,
            format!("need low <= high, got low {low}, high {high}"),
        ));
    }
    if low == high || shape.contains(&0) {
        return ingot::full(shape, low, dtype);
    }
    ingot::random::uniform(key, shape, low, high, dtype)
}

/// Samples of `N(mean, std^2)` restricted to `[a, b]` (absolute bounds, as PyTorch's
/// `trunc_normal_`; its defaults are mean 0, std 1, a -2, b 2). Needs `std > 0`, `a < b`.
pub fn truncated_normal(
    key: &Array,
    shape: &[usize],
    mean: f64,
    std: f64,
    a: f64,
    b: f64,
    dtype: DType,
) -> Result<Array> {
    let name = "init::truncated_normal";
    check_dtype(name, shape, dtype)?;
    check_param(name, "mean", mean, false)?;
    check_param(name, "std", std, true)?;
    if std == 0.0 || a.is_nan() || b.is_nan() || a >= b {
        return Err(Error::invalid(
            name,
            format!("need std > 0 and a < b, got std {std}, a {a}, b {b}"),
        ));
    }
    // Computed in f32 at least so the affine map does not round halves twice.
    let c = if matches!(dtype, DType::F64) {
        DType::F64
    } else {
        DType::F32
    };
    let z = ingot::random::truncated_normal(key, (a - mean) / std, (b - mean) / std, shape, c)?;
    let v = ingot::add(&ingot::multiply(&z, std)?, mean)?;
    // The affine map may round a sample just past a bound.
    let v = ingot::clip(
        &v,
        Some(&Array::scalar_as(a.max(f64::MIN), c)),
        Some(&Array::scalar_as(b.min(f64::MAX), c)),
    )?;
    ingot::astype(&v, dtype)
}

fn check_gain(name: &str, gain: f64) -> Result<()> {
    check_param(name, "gain", gain, true)
}

/// `gain sqrt(c / (fan_in + fan_out))`, the scale of a Glorot initialization (None when
/// both fans are 0).
fn glorot_scale(
    name: &str,
    shape: &[usize],
    gain: f64,
    layout: Layout,
    c: f64,
) -> Result<Option<f64>> {
    check_gain(name, gain)?;
    let (fi, fo) = fans(shape, layout).map_err(|e| Error::invalid(name, e))?;
    if fi + fo == 0 {
        return Ok(None);
    }
    Ok(Some(gain * (c / (fi + fo) as f64).sqrt()))
}

/// `U(-bound, bound)`, or zeros for no bound; errors are labelled `name`.
fn symmetric_uniform(
    name: &str,
    key: &Array,
    shape: &[usize],
    bound: Option<f64>,
    dtype: DType,
) -> Result<Array> {
    match bound {
        None => constant(shape, 0.0, dtype),
        Some(b) => uniform(key, shape, -b, b, dtype).map_err(|e| Error::invalid(name, e)),
    }
}

/// `N(0, std^2)`, or zeros for no std; errors are labelled `name`.
fn centered_normal(
    name: &str,
    key: &Array,
    shape: &[usize],
    std: Option<f64>,
    dtype: DType,
) -> Result<Array> {
    match std {
        None => constant(shape, 0.0, dtype),
        Some(std) => normal(key, shape, 0.0, std, dtype).map_err(|e| Error::invalid(name, e)),
    }
}

/// Glorot/Xavier uniform: `U(-a, a)`, `a = gain sqrt(6 / (fan_in + fan_out))`.
pub fn glorot_uniform(
    key: &Array,
    shape: &[usize],
    gain: f64,
    layout: Layout,
    dtype: DType,
) -> Result<Array> {
    let name = "init::glorot_uniform";
    let a = glorot_scale(name, shape, gain, layout, 6.0)?;
    symmetric_uniform(name, key, shape, a, dtype)
}

/// Glorot/Xavier normal: `N(0, std^2)`, `std = gain sqrt(2 / (fan_in + fan_out))`.
pub fn glorot_normal(
    key: &Array,
    shape: &[usize],
    gain: f64,
    layout: Layout,
    dtype: DType,
) -> Result<Array> {
    let name = "init::glorot_normal";
    let std = glorot_scale(name, shape, gain, layout, 2.0)?;
    centered_normal(name, key, shape, std, dtype)
}

/// PyTorch's name for [`glorot_uniform`].
pub fn xavier_uniform(
    key: &Array,
    shape: &[usize],
    gain: f64,
    layout: Layout,
    dtype: DType,
) -> Result<Array> {
    glorot_uniform(key, shape, gain, layout, dtype)
}

/// PyTorch's name for [`glorot_normal`].
pub fn xavier_normal(
    key: &Array,
    shape: &[usize],
    gain: f64,
    layout: Layout,
    dtype: DType,
) -> Result<Array> {
    glorot_normal(key, shape, gain, layout, dtype)
}

/// `gain(nonlinearity) / sqrt(fan)`: the standard deviation of He initialization.
fn he_std(
    name: &str,
    shape: &[usize],
    mode: FanMode,
    nonlinearity: Nonlinearity,
    layout: Layout,
) -> Result<Option<f64>> {
    if let Nonlinearity::LeakyRelu(s) = nonlinearity {
        check_param(name, "leaky_relu slope", s, false)?;
    }
    let (fi, fo) = fans(shape, layout).map_err(|e| Error::invalid(name, e))?;
    let fan = match mode {
        FanMode::FanIn => fi,
        FanMode::FanOut => fo,
    };
    if fan == 0 {
        // A zero-element weight: nothing to draw.
        return Ok(None);
    }
    Ok(Some(calculate_gain(nonlinearity) / (fan as f64).sqrt()))
}

/// He/Kaiming uniform: `U(-b, b)`, `b = gain sqrt(3 / fan)` (PyTorch's `kaiming_uniform_`;
/// its default is `FanIn` with `LeakyRelu(0)`, that is relu's gain).
pub fn he_uniform(
    key: &Array,
    shape: &[usize],
    mode: FanMode,
    nonlinearity: Nonlinearity,
    layout: Layout,
    dtype: DType,
) -> Result<Array> {
    let name = "init::he_uniform";
    check_dtype(name, shape, dtype)?;
    let b = he_std(name, shape, mode, nonlinearity, layout)?.map(|std| 3f64.sqrt() * std);
    symmetric_uniform(name, key, shape, b, dtype)
}

/// He/Kaiming normal: `N(0, std^2)`, `std = gain / sqrt(fan)`.
pub fn he_normal(
    key: &Array,
    shape: &[usize],
    mode: FanMode,
    nonlinearity: Nonlinearity,
    layout: Layout,
    dtype: DType,
) -> Result<Array> {
    let name = "init::he_normal";
    check_dtype(name, shape, dtype)?;
    let std = he_std(name, shape, mode, nonlinearity, layout)?;
    centered_normal(name, key, shape, std, dtype)
}

/// PyTorch's name for [`he_uniform`].
pub fn kaiming_uniform(
    key: &Array,
    shape: &[usize],
    mode: FanMode,
    nonlinearity: Nonlinearity,
    layout: Layout,
    dtype: DType,
) -> Result<Array> {
    he_uniform(key, shape, mode, nonlinearity, layout, dtype)
}

/// PyTorch's name for [`he_normal`].
pub fn kaiming_normal(
    key: &Array,
    shape: &[usize],
    mode: FanMode,
    nonlinearity: Nonlinearity,
    layout: Layout,
    dtype: DType,
) -> Result<Array> {
    he_normal(key, shape, mode, nonlinearity, layout, dtype)
}

/// A (semi-)orthogonal matrix times `gain`, as PyTorch's `orthogonal_`: the weight is seen
/// as `(shape[0], product of the rest)` (whatever the layout), a Gaussian matrix of that
/// shape (transposed if wide) is QR-factored, and Q's columns are multiplied by the signs of
/// R's diagonal so the result is uniform (Haar) over orthogonal matrices. Rows are
/// orthonormal when there are fewer rows than columns, columns otherwise, so
/// `W^T W = gain^2 I` (tall) or `W W^T = gain^2 I` (wide). At least 2 dimensions.
pub fn orthogonal(key: &Array, shape: &[usize], gain: f64, dtype: DType) -> Result<Array> {
    let name = "init::orthogonal";
    check_dtype(name, shape, dtype)?;
    check_gain(name, gain)?;
    if shape.len() < 2 {
        return Err(Error::invalid(
            name,
            format!("only weights of 2 or more dimensions are supported, got shape {shape:?}"),
        ));
    }
    if shape.contains(&0) {
        return constant(shape, 0.0, dtype);
    }
    let rows = shape[0];
    let cols: usize = shape[1..].iter().product();
    // QR in f32 at least (halves have too little precision for orthogonality).
    let c = if matches!(dtype, DType::F64) {
        DType::F64
    } else {
        DType::F32
    };
    let (m, n) = if rows < cols {
        (cols, rows)
    } else {
        (rows, cols)
    };
    let flat = ingot::random::normal(key, &[m, n], 0.0, 1.0, c)?;
    let (q, r) = ingot::qr(&flat)?;
    // sign(0) would zero a column; a zero diagonal has probability 0 but map it to +1.
    let d = ingot::diagonal(&r, 0, 0, 1)?;
    let s = ingot::where_(&ingot::less(&d, 0.0)?, -1.0, 1.0)?;
    let s = ingot::astype(&s, c)?;
    let mut q = ingot::multiply(&q, &s)?;
    if rows < cols {
        q = ingot::transpose(&q, None)?;
    }
    let w = ingot::multiply(&q, gain)?;
    ingot::astype(&ingot::reshape_to(&w, shape)?, dtype)
}
