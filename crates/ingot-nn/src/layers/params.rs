//! Helpers the layers share to create and apply their parameters.

use crate::module::Param;
use ingot::{Array, DType, Error, Result};

/// An error naming `layer` unless `dtype` is floating (parameters must be).
pub(super) fn check_float(layer: &str, dtype: DType) -> Result<()> {
    if dtype.is_float() {
        Ok(())
    } else {
        Err(Error::invalid(
            layer,
            format!("parameters must be a floating dtype, got {dtype}"),
        ))
    }
}

/// `1/sqrt(fan)` (0 for a zero fan): the bound of PyTorch's default weight and bias
/// initialization of linear, convolution and recurrent layers (for weights it comes from
/// `kaiming_uniform_(a=sqrt(5))`; biases use the same bound).
pub(super) fn default_bound(fan: usize) -> f64 {
    if fan == 0 {
        0.0
    } else {
        1.0 / (fan as f64).sqrt()
    }
}

/// `U(-bound, bound)` of `shape`; zeros when `bound` is 0 or the shape is empty.
pub(super) fn uniform_init(
    key: &Array,
    shape: &[usize],
    bound: f64,
    dtype: DType,
) -> Result<Array> {
    if bound == 0.0 || shape.contains(&0) {
        return ingot::zeros(shape, dtype);
    }
    ingot::random::uniform(key, shape, -bound, bound, dtype)
}

/// A weight of `weight_shape` and, when `bias`, a bias `(weight_shape[0],)`, both
/// [`uniform_init`] with `bound`, drawn from the two halves of `key`.
pub(super) fn uniform_weight_and_bias(
    key: &Array,
    weight_shape: &[usize],
    bias: bool,
    bound: f64,
    dtype: DType,
) -> Result<(Array, Option<Array>)> {
    let keys = ingot::random::split(key, 2)?;
    let weight = uniform_init(
        &ingot::random::key_at(&keys, 0)?,
        weight_shape,
        bound,
        dtype,
    )?;
    let bias = if bias {
        Some(uniform_init(
            &ingot::random::key_at(&keys, 1)?,
            &weight_shape[..1],
            bound,
            dtype,
        )?)
    } else {
        None
    };
    Ok((weight, bias))
}

/// `y + b`, or `y` without a bias.
pub(super) fn add_bias(y: Array, bias: Option<&Param>) -> Result<Array> {
    match bias {
        Some(b) => ingot::add(&y, &b.value),
        None => Ok(y),
    }
}

/// `x W^T + b` for a weight `(out, in)` and `x (..., in)`: float operands make one
/// `fast::linear` node (on the GPU the bias rides in the product's cuBLASLt epilogue).
pub(super) fn affine(x: &Array, weight: &Param, bias: Option<&Param>) -> Result<Array> {
    let wt = ingot::transpose(&weight.value, None)?;
    let float = [Some(x), Some(&weight.value), bias.map(|b| &b.value)]
        .into_iter()
        .flatten()
        .all(|a| a.dtype().is_float());
    if float {
        return ingot::fast::linear(x, &wt, bias.map(|b| &b.value), ingot::fast::LinearAct::None);
    }
    add_bias(ingot::matmul(x, &wt)?, bias)
}

/// `a` without the leading batch dim a layer added to an unbatched input (`batched`
/// false), or `a` itself.
pub(super) fn unbatch(a: Array, batched: bool) -> Result<Array> {
    if batched {
        Ok(a)
    } else {
        ingot::squeeze(&a, Some(&[0]))
    }
}
