//! Pooling layers (PyTorch's `MaxPoolNd` / `AvgPoolNd`), parameter-free, channels-last:
//! inputs `(N, *spatial, C)` or unbatched `(*spatial, C)`. Output size per dim
//! `(in + 2 * padding - kernel) / stride + 1` (PyTorch's `ceil_mode=False`; `ceil_mode`
//! and max pooling's `dilation` are not offered).

use super::conv::PerDim;
use crate::module::{Module, Param, Unary};
use ingot::{Array, Error, Result};

fn max_name(nd: usize) -> &'static str {
    match nd {
        1 => "MaxPool1d",
        2 => "MaxPool2d",
        3 => "MaxPool3d",
        _ => "MaxPool",
    }
}

fn avg_name(nd: usize) -> &'static str {
    match nd {
        1 => "AvgPool1d",
        2 => "AvgPool2d",
        3 => "AvgPool3d",
        _ => "AvgPool",
    }
}

/// Kernel, stride and padding resolved to one value per dim and checked.
fn resolve(
    name: &str,
    nd: usize,
    kernel: PerDim,
    stride: Option<PerDim>,
    padding: PerDim,
) -> Result<(Vec<usize>, Vec<usize>, Vec<usize>)> {
    if !(1..=3).contains(&nd) {
        return Err(Error::invalid(
            name,
            format!("only 1, 2 or 3 spatial dims are supported, got {nd}"),
        ));
    }
    let kernel = kernel.resolve(name, "kernel_size", nd)?;
    let stride = match stride {
        Some(s) => s.resolve(name, "stride", nd)?,
        None => kernel.clone(),
    };
    let padding = padding.resolve(name, "padding", nd)?;
    if kernel.contains(&0) || stride.contains(&0) {
        return Err(Error::invalid(
            name,
            format!("kernel_size {kernel:?} and stride {stride:?} must be positive"),
        ));
    }
    // PyTorch's rule: a window is never all padding.
    for i in 0..nd {
        if 2 * padding[i] > kernel[i] {
            return Err(Error::invalid(
                name,
                format!("padding {padding:?} must be at most half the kernel_size {kernel:?}"),
            ));
        }
    }
    Ok((kernel, stride, padding))
}

/// Checks the input's rank; returns it batched and whether it was.
fn batched(name: &str, nd: usize, x: &Array) -> Result<(Array, bool)> {
    if x.ndim() == nd + 2 {
        Ok((x.clone(), true))
    } else if x.ndim() == nd + 1 {
        Ok((ingot::expand_dims(x, &[0])?, false))
    } else {
        Err(Error::invalid(
            name,
            format!(
                "input must be (N, *spatial, C) or (*spatial, C) with {nd} spatial dims, got {:?} {}",
                x.shape(),
                x.dtype()
            ),
        ))
    }
}

fn relabel(name: &str, x: &Array, e: Error) -> Error {
    match e {
        Error::Invalid { op, msg } => Error::invalid(
            name,
            format!("input {:?} {}: [{op}] {msg}", x.shape(), x.dtype()),
        ),
        other => other,
    }
}

fn unbatch(y: Array, was_batched: bool) -> Result<Array> {
    if was_batched {
        Ok(y)
    } else {
        ingot::squeeze(&y, Some(&[0]))
    }
}

/// `N`-d max pooling; padded cells never win (PyTorch). NaN propagates.
#[derive(Clone, Debug)]
pub struct MaxPool<const N: usize> {
    pub kernel_size: Vec<usize>,
    pub stride: Vec<usize>,
    pub padding: Vec<usize>,
}

pub type MaxPool1d = MaxPool<1>;
pub type MaxPool2d = MaxPool<2>;
pub type MaxPool3d = MaxPool<3>;

impl<const N: usize> MaxPool<N> {
    /// Windows of `kernel`, stride `kernel`, no padding.
    pub fn new(kernel: impl Into<PerDim>) -> Result<Self> {
        Self::with(kernel, None::<usize>, 0)
    }

    /// `stride` None: the kernel size (PyTorch's default).
    pub fn with(
        kernel: impl Into<PerDim>,
        stride: Option<impl Into<PerDim>>,
        padding: impl Into<PerDim>,
    ) -> Result<Self> {
        let (kernel_size, stride, padding) = resolve(
            max_name(N),
            N,
            kernel.into(),
            stride.map(Into::into),
            padding.into(),
        )?;
        Ok(MaxPool {
            kernel_size,
            stride,
            padding,
        })
    }
}

impl<const N: usize> Module for MaxPool<N> {
    fn visit(&self, _f: &mut dyn FnMut(&str, &Param)) {}
    fn visit_mut(&mut self, _f: &mut dyn FnMut(&str, &mut Param)) {}
}

impl<const N: usize> Unary for MaxPool<N> {
    fn forward(&self, x: &Array) -> Result<Array> {
        let name = max_name(N);
        let (xb, was) = batched(name, N, x)?;
        let y = match N {
            1 => ingot::max_pool1d(
                &xb,
                self.kernel_size[0],
                Some(self.stride[0]),
                self.padding[0],
            ),
            2 => ingot::max_pool2d(&xb, &self.kernel_size, Some(&self.stride), &self.padding),
            _ => ingot::max_pool3d(&xb, &self.kernel_size, Some(&self.stride), &self.padding),
        }
        .map_err(|e| relabel(name, x, e))?;
        unbatch(y, was)
    }
}

/// `N`-d average pooling. `count_include_pad` (PyTorch's default true): padded zeros count
/// in the divisor; otherwise only real cells do.
#[derive(Clone, Debug)]
pub struct AvgPool<const N: usize> {
    pub kernel_size: Vec<usize>,
    pub stride: Vec<usize>,
    pub padding: Vec<usize>,
    pub count_include_pad: bool,
}

pub type AvgPool1d = AvgPool<1>;
pub type AvgPool2d = AvgPool<2>;
pub type AvgPool3d = AvgPool<3>;

impl<const N: usize> AvgPool<N> {
    /// Windows of `kernel`, stride `kernel`, no padding.
    pub fn new(kernel: impl Into<PerDim>) -> Result<Self> {
        Self::with(kernel, None::<usize>, 0, true)
    }

    /// `stride` None: the kernel size (PyTorch's default).
    pub fn with(
        kernel: impl Into<PerDim>,
        stride: Option<impl Into<PerDim>>,
        padding: impl Into<PerDim>,
        count_include_pad: bool,
    ) -> Result<Self> {
        let (kernel_size, stride, padding) = resolve(
            avg_name(N),
            N,
            kernel.into(),
            stride.map(Into::into),
            padding.into(),
        )?;
        Ok(AvgPool {
            kernel_size,
            stride,
            padding,
            count_include_pad,
        })
    }
}

impl<const N: usize> Module for AvgPool<N> {
    fn visit(&self, _f: &mut dyn FnMut(&str, &Param)) {}
    fn visit_mut(&mut self, _f: &mut dyn FnMut(&str, &mut Param)) {}
}

impl<const N: usize> Unary for AvgPool<N> {
    fn forward(&self, x: &Array) -> Result<Array> {
        let name = avg_name(N);
        let (xb, was) = batched(name, N, x)?;
        let cip = self.count_include_pad;
        let y = match N {
            1 => ingot::avg_pool1d(
                &xb,
                self.kernel_size[0],
                Some(self.stride[0]),
                self.padding[0],
                cip,
            ),
            2 => ingot::avg_pool2d(
                &xb,
                &self.kernel_size,
                Some(&self.stride),
                &self.padding,
                cip,
            ),
            _ => ingot::avg_pool3d(
                &xb,
                &self.kernel_size,
                Some(&self.stride),
                &self.padding,
                cip,
            ),
        }
        .map_err(|e| relabel(name, x, e))?;
        unbatch(y, was)
    }
}
