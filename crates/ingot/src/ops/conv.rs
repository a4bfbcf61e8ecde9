//! Public operations: convolution and pooling, channels last as in MLX.
//!
//! Inputs are `(N, *spatial, C_in)`, weights `(C_out, *kernel, C_in / groups)`, outputs
//! `(N, *out_spatial, C_out)`. Every op validates shapes, dtypes and parameters here and
//! builds one `Op::Conv` or `Op::Pool` node (transposed convolution is a `Conv` with input
//! dilation and a flipped kernel, plus a crop when the padding exceeds the kernel span).

use crate::array::Array;
use crate::dtype::{promote_types, DType};
use crate::op::{Op, PoolKind};
use crate::ops::{astype, slice, SliceArg};
use crate::shape::{checked_size, fmt_shape};
use crate::{Error, Result};

/// Spatial padding of a convolution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Padding {
    /// No padding.
    Valid,
    /// Output size `ceil(in / stride)`, the padding split evenly with the odd cell at the
    /// end (TensorFlow's rule; PyTorch's for stride 1). Transposed: output `in * stride`.
    Same,
    /// The same padding on both sides: one value for every spatial dim, or one per dim.
    Explicit(Vec<usize>),
    /// `(lo, hi)` padding: one pair for every spatial dim, or one per dim.
    Pairs(Vec<(usize, usize)>),
}

impl Padding {
    /// Parses `"same"` / `"valid"` (any case).
    pub fn parse(s: &str) -> Option<Padding> {
        match s.to_ascii_lowercase().as_str() {
            "same" => Some(Padding::Same),
            "valid" => Some(Padding::Valid),
            _ => None,
        }
    }
}

impl From<usize> for Padding {
    fn from(p: usize) -> Self {
        Padding::Explicit(vec![p])
    }
}
impl From<&[usize]> for Padding {
    fn from(p: &[usize]) -> Self {
        Padding::Explicit(p.to_vec())
    }
}
impl From<Vec<usize>> for Padding {
    fn from(p: Vec<usize>) -> Self {
        Padding::Explicit(p)
    }
}
impl<const N: usize> From<[usize; N]> for Padding {
    fn from(p: [usize; N]) -> Self {
        Padding::Explicit(p.to_vec())
    }
}
impl From<(usize, usize)> for Padding {
    fn from(p: (usize, usize)) -> Self {
        Padding::Pairs(vec![p])
    }
}
impl From<&[(usize, usize)]> for Padding {
    fn from(p: &[(usize, usize)]) -> Self {
        Padding::Pairs(p.to_vec())
    }
}
impl From<Vec<(usize, usize)>> for Padding {
    fn from(p: Vec<(usize, usize)>) -> Self {
        Padding::Pairs(p)
    }
}
impl<const N: usize> From<[(usize, usize); N]> for Padding {
    fn from(p: [(usize, usize); N]) -> Self {
        Padding::Pairs(p.to_vec())
    }
}
impl From<&Padding> for Padding {
    fn from(p: &Padding) -> Self {
        p.clone()
    }
}

fn fmt_list(v: &[usize]) -> String {
    fmt_shape(v)
}

/// One value per spatial dim: a single value broadcasts.
fn per_dim(op: &str, what: &str, v: &[usize], nd: usize) -> Result<Vec<usize>> {
    match v.len() {
        1 => Ok(vec![v[0]; nd]),
        n if n == nd => Ok(v.to_vec()),
        n => Err(Error::invalid(
            op,
            format!("{what} needs 1 or {nd} values for {nd} spatial dims, got {n}: {v:?}"),
        )),
    }
}

fn positive(op: &str, what: &str, v: &[usize]) -> Result<()> {
    if v.contains(&0) {
        return Err(Error::invalid(
            op,
            format!("{what} must be positive, got {}", fmt_list(v)),
        ));
    }
    Ok(())
}

/// Size of an axis of `n` cells after inserting `d - 1` holes between neighbours.
fn dilated(n: usize, d: usize) -> usize {
    if n == 0 {
        0
    } else {
        (n - 1) * d + 1
    }
}

/// The floating dtype both operands are computed in, or an error naming them.
fn float_dtype(op: &str, x: &Array, w: &Array) -> Result<DType> {
    if !x.dtype().is_float() || !w.dtype().is_float() {
        return Err(Error::invalid(
            op,
            format!(
                "input and weight must be float16, bfloat16, float32 or float64, got {} and {}",
                x.dtype(),
                w.dtype()
            ),
        ));
    }
    Ok(promote_types(x.dtype(), w.dtype()))
}

/// Checks ranks and channels; returns the number of spatial dims.
fn check_layout(op: &str, x: &Array, w: &Array, nd: Option<usize>, groups: usize) -> Result<usize> {
    let nd = match nd {
        Some(nd) => {
            if x.ndim() != nd + 2 {
                return Err(Error::invalid(
                    op,
                    format!(
                        "input must be {}-D (N, *spatial, C_in) with {nd} spatial dims, got shape {}",
                        nd + 2,
                        fmt_shape(x.shape())
                    ),
                ));
            }
            nd
        }
        None => {
            if x.ndim() < 3 {
                return Err(Error::invalid(
                    op,
                    format!(
                        "input must be (N, *spatial, C_in) with at least one spatial dim, got shape {}",
                        fmt_shape(x.shape())
                    ),
                ));
            }
            x.ndim() - 2
        }
    };
    if w.ndim() != nd + 2 {
        return Err(Error::invalid(
            op,
            format!(
                "weight must be {}-D (C_out, *kernel, C_in / groups) for input {}, got shape {}",
                nd + 2,
                fmt_shape(x.shape()),
                fmt_shape(w.shape())
            ),
        ));
    }
    if groups == 0 {
        return Err(Error::invalid(op, "groups must be positive, got 0"));
    }
    let cin = x.shape()[nd + 1];
    let cout = w.shape()[0];
    if cin % groups != 0 {
        return Err(Error::invalid(
            op,
            format!(
                "input channels {cin} of input {} are not divisible by groups={groups}",
                fmt_shape(x.shape())
            ),
        ));
    }
    if cout % groups != 0 {
        return Err(Error::invalid(
            op,
            format!(
                "output channels {cout} of weight {} are not divisible by groups={groups}",
                fmt_shape(w.shape())
            ),
        ));
    }
    if w.shape()[nd + 1] != cin / groups {
        return Err(Error::invalid(
            op,
            format!(
                "channel mismatch: input {} has {cin} channels, so weight needs C_in / groups = {} in its last dim (groups={groups}), got weight {}",
                fmt_shape(x.shape()),
                cin / groups,
                fmt_shape(w.shape())
            ),
        ));
    }
    let kernel = &w.shape()[1..nd + 1];
    if kernel.contains(&0) {
        return Err(Error::invalid(
            op,
            format!(
                "kernel size must be positive, got weight {}",
                fmt_shape(w.shape())
            ),
        ));
    }
    Ok(nd)
}

/// Explicit (lo, hi) pairs per dim from a non-`Same` padding.
fn explicit_pairs(op: &str, padding: &Padding, nd: usize) -> Result<Option<Vec<(usize, usize)>>> {
    Ok(match padding {
        Padding::Valid => Some(vec![(0, 0); nd]),
        Padding::Same => None,
        Padding::Explicit(v) => Some(
            per_dim(op, "padding", v, nd)?
                .into_iter()
                .map(|p| (p, p))
                .collect(),
        ),
        Padding::Pairs(v) => match v.len() {
            1 => Some(vec![v[0]; nd]),
            n if n == nd => Some(v.clone()),
            n => {
                return Err(Error::invalid(
                    op,
                    format!(
                    "padding needs 1 or {nd} (lo, hi) pairs for {nd} spatial dims, got {n}: {v:?}"
                ),
                ))
            }
        },
    })
}

/// The general convolution every public conv builds. `nd` fixes the number of spatial dims
/// (None: taken from the input).
#[allow(clippy::too_many_arguments)]
fn conv_node(
    op: &str,
    x: &Array,
    w: &Array,
    nd: Option<usize>,
    stride: &[usize],
    padding: &Padding,
    kernel_dilation: &[usize],
    input_dilation: &[usize],
    groups: usize,
    flip: bool,
) -> Result<Array> {
    let (x, w) = (&crate::amp::low(x)?, &crate::amp::low(w)?);
    let dtype = float_dtype(op, x, w)?;
    let nd = check_layout(op, x, w, nd, groups)?;
    let stride = per_dim(op, "stride", stride, nd)?;
    positive(op, "stride", &stride)?;
    let kd = per_dim(op, "dilation", kernel_dilation, nd)?;
    positive(op, "dilation", &kd)?;
    let idil = per_dim(op, "input_dilation", input_dilation, nd)?;
    positive(op, "input_dilation", &idil)?;
    let in_sp = &x.shape()[1..nd + 1];
    let k_sp = &w.shape()[1..nd + 1];
    let span: Vec<usize> = (0..nd).map(|i| dilated(k_sp[i], kd[i])).collect();
    let in_d: Vec<usize> = (0..nd).map(|i| dilated(in_sp[i], idil[i])).collect();
    let pairs = match explicit_pairs(op, padding, nd)? {
        Some(p) => p,
        None => (0..nd)
            .map(|i| {
                let out = in_d[i].div_ceil(stride[i]);
                let need = (out.max(1) - 1) * stride[i] + span[i];
                let total = need.saturating_sub(in_d[i]);
                (total / 2, total - total / 2)
            })
            .collect(),
    };
    let mut out_sp = Vec::with_capacity(nd);
    for i in 0..nd {
        let padded = in_d[i]
            .checked_add(pairs[i].0)
            .and_then(|v| v.checked_add(pairs[i].1))
            .ok_or_else(|| Error::invalid(op, "padding is too large"))?;
        if padded < span[i] {
            let padded_all: Vec<usize> =
                (0..nd).map(|j| in_d[j] + pairs[j].0 + pairs[j].1).collect();
            return Err(Error::invalid(
                op,
                format!(
                    "kernel {} with dilation {} spans {}, larger than the padded input {} (input {}, padding {:?})",
                    fmt_shape(k_sp),
                    fmt_shape(&kd),
                    fmt_shape(&span),
                    fmt_shape(&padded_all),
                    fmt_shape(x.shape()),
                    pairs
                ),
            ));
        }
        out_sp.push((padded - span[i]) / stride[i] + 1);
    }
    let mut shape = vec![x.shape()[0]];
    shape.extend_from_slice(&out_sp);
    shape.push(w.shape()[0]);
    checked_size(op, &shape)?;
    let x = astype(x, dtype)?;
    let w = astype(w, dtype)?;
    Ok(Array::from_op(
        Op::Conv {
            stride,
            padding_lo: pairs.iter().map(|p| p.0).collect(),
            padding_hi: pairs.iter().map(|p| p.1).collect(),
            kernel_dilation: kd,
            input_dilation: idil,
            groups,
            flip,
        },
        vec![x, w],
        shape,
        dtype,
    ))
}

/// 1-D convolution (cross-correlation, as MLX and PyTorch): x `(N, L, C_in)`, w
/// `(C_out, K, C_in / groups)` -> `(N, L_out, C_out)`.
pub fn conv1d(
    x: &Array,
    w: &Array,
    stride: usize,
    padding: impl Into<Padding>,
    dilation: usize,
    groups: usize,
) -> Result<Array> {
    conv_node(
        "conv1d",
        x,
        w,
        Some(1),
        &[stride],
        &padding.into(),
        &[dilation],
        &[1],
        groups,
        false,
    )
}

/// 2-D convolution: x `(N, H, W, C_in)`, w `(C_out, KH, KW, C_in / groups)`. `stride` and
/// `dilation` take one value for both dims or one per dim.
pub fn conv2d(
    x: &Array,
    w: &Array,
    stride: &[usize],
    padding: impl Into<Padding>,
    dilation: &[usize],
    groups: usize,
) -> Result<Array> {
    conv_node(
        "conv2d",
        x,
        w,
        Some(2),
        stride,
        &padding.into(),
        dilation,
        &[1],
        groups,
        false,
    )
}

/// 3-D convolution: x `(N, D, H, W, C_in)`, w `(C_out, KD, KH, KW, C_in / groups)`.
pub fn conv3d(
    x: &Array,
    w: &Array,
    stride: &[usize],
    padding: impl Into<Padding>,
    dilation: &[usize],
    groups: usize,
) -> Result<Array> {
    conv_node(
        "conv3d",
        x,
        w,
        Some(3),
        stride,
        &padding.into(),
        dilation,
        &[1],
        groups,
        false,
    )
}

/// MLX's general convolution over any number of spatial dims, with input dilation
/// (holes between input cells) and an optional kernel flip (true convolution).
#[allow(clippy::too_many_arguments)]
pub fn conv_general(
    x: &Array,
    w: &Array,
    stride: &[usize],
    padding: impl Into<Padding>,
    kernel_dilation: &[usize],
    input_dilation: &[usize],
    groups: usize,
    flip: bool,
) -> Result<Array> {
    conv_node(
        "conv_general",
        x,
        w,
        None,
        stride,
        &padding.into(),
        kernel_dilation,
        input_dilation,
        groups,
        flip,
    )
}

/// Transposed convolution as MLX defines it: w `(C_out, *kernel, C_in / groups)`, output
/// size `(in - 1) * stride - lo - hi + dilation * (k - 1) + 1 + output_padding`.
#[allow(clippy::too_many_arguments)]
fn conv_transpose_node(
    op: &str,
    x: &Array,
    w: &Array,
    nd: usize,
    stride: &[usize],
    padding: &Padding,
    dilation: &[usize],
    output_padding: &[usize],
    groups: usize,
) -> Result<Array> {
    float_dtype(op, x, w)?;
    check_layout(op, x, w, Some(nd), groups)?;
    let stride = per_dim(op, "stride", stride, nd)?;
    positive(op, "stride", &stride)?;
    let kd = per_dim(op, "dilation", dilation, nd)?;
    positive(op, "dilation", &kd)?;
    let outpad = per_dim(op, "output_padding", output_padding, nd)?;
    for i in 0..nd {
        if outpad[i] >= stride[i].max(kd[i]) {
            return Err(Error::invalid(
                op,
                format!(
                    "output_padding {} must be smaller than stride {} or dilation {}",
                    fmt_shape(&outpad),
                    fmt_shape(&stride),
                    fmt_shape(&kd)
                ),
            ));
        }
    }
    let k_sp = &w.shape()[1..nd + 1];
    let span: Vec<isize> = (0..nd).map(|i| dilated(k_sp[i], kd[i]) as isize).collect();
    // The transposed side's (lo, hi) padding; "same" may need a negative hi (extra cells).
    let pads: Vec<(isize, isize)> = match explicit_pairs(op, padding, nd)? {
        Some(p) => p.iter().map(|&(l, h)| (l as isize, h as isize)).collect(),
        None => (0..nd)
            .map(|i| {
                let total = span[i] - stride[i] as isize;
                if total >= 0 {
                    (total / 2, total - total / 2)
                } else {
                    (0, total)
                }
            })
            .collect(),
    };
    // Equivalent convolution: pad span-1-p on each side; a negative pad becomes a crop.
    let mut lo = Vec::with_capacity(nd);
    let mut hi = Vec::with_capacity(nd);
    let mut crop = Vec::with_capacity(nd);
    for i in 0..nd {
        let l = span[i] - 1 - pads[i].0;
        let h = span[i] - 1 - pads[i].1 + outpad[i] as isize;
        lo.push(l.max(0) as usize);
        hi.push(h.max(0) as usize);
        crop.push(((-l).max(0) as usize, (-h).max(0) as usize));
    }
    let in_sp = &x.shape()[1..nd + 1];
    if in_sp.contains(&0) {
        return Err(Error::invalid(
            op,
            format!(
                "spatial dims must be non-empty, got input {}",
                fmt_shape(x.shape())
            ),
        ));
    }
    for i in 0..nd {
        let full = dilated(in_sp[i], stride[i]) + lo[i] + hi[i];
        let out = full as isize - span[i] + 1;
        if out - ((crop[i].0 + crop[i].1) as isize) < 1 {
            return Err(Error::invalid(
                op,
                format!(
                    "padding {:?} leaves no output for input {} with kernel {} (stride {}, dilation {})",
                    pads,
                    fmt_shape(x.shape()),
                    fmt_shape(k_sp),
                    fmt_shape(&stride),
                    fmt_shape(&kd)
                ),
            ));
        }
    }
    let pairs: Vec<(usize, usize)> = lo.iter().copied().zip(hi.iter().copied()).collect();
    let y = conv_node(
        op,
        x,
        w,
        Some(nd),
        &vec![1; nd],
        &Padding::Pairs(pairs),
        &kd,
        &stride,
        groups,
        true,
    )?;
    if crop.iter().all(|&(a, b)| a == 0 && b == 0) {
        return Ok(y);
    }
    let mut args = vec![SliceArg::ALL];
    for i in 0..nd {
        let n = y.shape()[i + 1] as isize;
        args.push(SliceArg::range(crop[i].0 as isize, n - crop[i].1 as isize));
    }
    slice(&y, &args)
}

/// 1-D transposed convolution (MLX layout: w `(C_out, K, C_in / groups)`).
#[allow(clippy::too_many_arguments)]
pub fn conv_transpose1d(
    x: &Array,
    w: &Array,
    stride: usize,
    padding: impl Into<Padding>,
    dilation: usize,
    output_padding: usize,
    groups: usize,
) -> Result<Array> {
    conv_transpose_node(
        "conv_transpose1d",
        x,
        w,
        1,
        &[stride],
        &padding.into(),
        &[dilation],
        &[output_padding],
        groups,
    )
}

/// 2-D transposed convolution (MLX layout: w `(C_out, KH, KW, C_in / groups)`).
#[allow(clippy::too_many_arguments)]
pub fn conv_transpose2d(
    x: &Array,
    w: &Array,
    stride: &[usize],
    padding: impl Into<Padding>,
    dilation: &[usize],
    output_padding: &[usize],
    groups: usize,
) -> Result<Array> {
    conv_transpose_node(
        "conv_transpose2d",
        x,
        w,
        2,
        stride,
        &padding.into(),
        dilation,
        output_padding,
        groups,
    )
}

/// 3-D transposed convolution (MLX layout: w `(C_out, KD, KH, KW, C_in / groups)`).
#[allow(clippy::too_many_arguments)]
pub fn conv_transpose3d(
    x: &Array,
    w: &Array,
    stride: &[usize],
    padding: impl Into<Padding>,
    dilation: &[usize],
    output_padding: &[usize],
    groups: usize,
) -> Result<Array> {
    conv_transpose_node(
        "conv_transpose3d",
        x,
        w,
        3,
        stride,
        &padding.into(),
        dilation,
        output_padding,
        groups,
    )
}

// ---- pooling ----------------------------------------------------------------------------

#[allow(clippy::too_many_arguments)]
fn pool_node(
    op: &str,
    kind: PoolKind,
    x: &Array,
    nd: usize,
    kernel_size: &[usize],
    stride: Option<&[usize]>,
    padding: &[usize],
    count_pad: bool,
) -> Result<Array> {
    if !x.dtype().is_float() {
        return Err(Error::invalid(
            op,
            format!(
                "input must be float16, bfloat16, float32 or float64, got {}",
                x.dtype()
            ),
        ));
    }
    if x.ndim() != nd + 2 {
        return Err(Error::invalid(
            op,
            format!(
                "input must be {}-D (N, *spatial, C) with {nd} spatial dims, got shape {}",
                nd + 2,
                fmt_shape(x.shape())
            ),
        ));
    }
    let window = per_dim(op, "kernel_size", kernel_size, nd)?;
    positive(op, "kernel_size", &window)?;
    let stride = match stride {
        Some(s) => per_dim(op, "stride", s, nd)?,
        None => window.clone(),
    };
    positive(op, "stride", &stride)?;
    let padding = if padding.is_empty() {
        vec![0; nd]
    } else {
        per_dim(op, "padding", padding, nd)?
    };
    if (0..nd).any(|i| padding[i] > window[i] / 2) {
        return Err(Error::invalid(
            op,
            format!(
                "padding {} must be at most half of kernel_size {}",
                fmt_shape(&padding),
                fmt_shape(&window)
            ),
        ));
    }
    let in_sp = &x.shape()[1..nd + 1];
    if in_sp.contains(&0) {
        return Err(Error::invalid(
            op,
            format!(
                "spatial dims must be non-empty, got input {}",
                fmt_shape(x.shape())
            ),
        ));
    }
    let mut shape = vec![x.shape()[0]];
    for i in 0..nd {
        let padded = in_sp[i] + 2 * padding[i];
        if padded < window[i] {
            return Err(Error::invalid(
                op,
                format!(
                    "kernel_size {} is larger than the padded input {} (input {}, padding {})",
                    fmt_shape(&window),
                    fmt_shape(
                        &(0..nd)
                            .map(|j| in_sp[j] + 2 * padding[j])
                            .collect::<Vec<_>>()
                    ),
                    fmt_shape(x.shape()),
                    fmt_shape(&padding)
                ),
            ));
        }
        shape.push((padded - window[i]) / stride[i] + 1);
    }
    shape.push(x.shape()[nd + 1]);
    checked_size(op, &shape)?;
    Ok(Array::from_op(
        Op::Pool {
            kind,
            window,
            stride,
            padding,
            count_pad: count_pad && kind == PoolKind::Avg,
        },
        vec![x.clone()],
        shape,
        x.dtype(),
    ))
}

/// Max pooling over `(N, L, C)`. `stride` None: the kernel size. Padded cells never win
/// (PyTorch); padding is at most half the kernel. NaN propagates.
pub fn max_pool1d(
    x: &Array,
    kernel_size: usize,
    stride: Option<usize>,
    padding: usize,
) -> Result<Array> {
    let s = stride.map(|s| [s]);
    pool_node(
        "max_pool1d",
        PoolKind::Max,
        x,
        1,
        &[kernel_size],
        s.as_ref().map(|s| &s[..]),
        &[padding],
        false,
    )
}

/// Max pooling over `(N, H, W, C)`; each size takes one value for both dims or one per dim.
pub fn max_pool2d(
    x: &Array,
    kernel_size: &[usize],
    stride: Option<&[usize]>,
    padding: &[usize],
) -> Result<Array> {
    pool_node(
        "max_pool2d",
        PoolKind::Max,
        x,
        2,
        kernel_size,
        stride,
        padding,
        false,
    )
}

/// Max pooling over `(N, D, H, W, C)`.
pub fn max_pool3d(
    x: &Array,
    kernel_size: &[usize],
    stride: Option<&[usize]>,
    padding: &[usize],
) -> Result<Array> {
    pool_node(
        "max_pool3d",
        PoolKind::Max,
        x,
        3,
        kernel_size,
        stride,
        padding,
        false,
    )
}

/// Average pooling over `(N, L, C)`. With `count_include_pad` padded zeros count in the
/// divisor (PyTorch's default), otherwise only real cells do.
pub fn avg_pool1d(
    x: &Array,
    kernel_size: usize,
    stride: Option<usize>,
    padding: usize,
    count_include_pad: bool,
) -> Result<Array> {
    let s = stride.map(|s| [s]);
    pool_node(
        "avg_pool1d",
        PoolKind::Avg,
        x,
        1,
        &[kernel_size],
        s.as_ref().map(|s| &s[..]),
        &[padding],
        count_include_pad,
    )
}

/// Average pooling over `(N, H, W, C)`.
pub fn avg_pool2d(
    x: &Array,
    kernel_size: &[usize],
    stride: Option<&[usize]>,
    padding: &[usize],
    count_include_pad: bool,
) -> Result<Array> {
    pool_node(
        "avg_pool2d",
        PoolKind::Avg,
        x,
        2,
        kernel_size,
        stride,
        padding,
        count_include_pad,
    )
}

/// Average pooling over `(N, D, H, W, C)`.
pub fn avg_pool3d(
    x: &Array,
    kernel_size: &[usize],
    stride: Option<&[usize]>,
    padding: &[usize],
    count_include_pad: bool,
) -> Result<Array> {
    pool_node(
        "avg_pool3d",
        PoolKind::Avg,
        x,
        3,
        kernel_size,
        stride,
        padding,
        count_include_pad,
    )
}
