//! Linear, Bilinear and Embedding layers, with PyTorch's shapes and initializations.

use super::params::{add_bias, affine, check_float, default_bound, uniform_weight_and_bias};
use crate::module::{Module, Param, Unary};
use crate::rng;
use ingot::{Array, DType, Error, Result};

/// `y = x W^T + b`: weight `(out, in)`, bias `(out,)`, both initialized `U(-1/sqrt(in),
/// 1/sqrt(in))` as in PyTorch. Inputs `(..., in)`.
#[derive(Clone)]
pub struct Linear {
    pub weight: Param,
    pub bias: Option<Param>,
}

impl Linear {
    /// An f32 layer drawn from the shared random state.
    pub fn new(input: usize, output: usize, bias: bool) -> Result<Linear> {
        Linear::with(input, output, bias, &rng::next_key()?, DType::F32)
    }

    /// A layer of `dtype` drawn from `key`.
    pub fn with(
        input: usize,
        output: usize,
        bias: bool,
        key: &Array,
        dtype: DType,
    ) -> Result<Linear> {
        check_float("Linear", dtype)?;
        let (weight, bias) =
            uniform_weight_and_bias(key, &[output, input], bias, default_bound(input), dtype)?;
        Ok(Linear {
            weight: Param::new(weight),
            bias: bias.map(Param::new),
        })
    }

    /// A layer over given arrays: weight `(out, in)`, bias `(out,)`.
    pub fn from_arrays(weight: Array, bias: Option<Array>) -> Result<Linear> {
        if weight.ndim() != 2 {
            return Err(Error::invalid(
                "Linear",
                format!("weight must be (out, in), got {:?}", weight.shape()),
            ));
        }
        if let Some(b) = &bias {
            if b.shape() != [weight.shape()[0]] {
                return Err(Error::invalid(
                    "Linear",
                    format!(
                        "bias {:?} does not match weight {:?}",
                        b.shape(),
                        weight.shape()
                    ),
                ));
            }
        }
        Ok(Linear {
            weight: Param::new(weight),
            bias: bias.map(Param::new),
        })
    }
}

impl Module for Linear {
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

impl Unary for Linear {
    fn forward(&self, x: &Array) -> Result<Array> {
        let w = &self.weight.value;
        let (out, inp) = (w.shape()[0], w.shape()[1]);
        if x.ndim() == 0 || x.shape()[x.ndim() - 1] != inp {
            return Err(Error::invalid(
                "Linear",
                format!(
                    "input {:?} does not end in {inp} features (weight ({out}, {inp}))",
                    x.shape()
                ),
            ));
        }
        affine(x, &self.weight, self.bias.as_ref())
    }
}

/// `y_o = x1^T W_o x2 + b_o`: weight `(out, in1, in2)`, bias `(out,)`, initialized
/// `U(-1/sqrt(in1), 1/sqrt(in1))` as in PyTorch.
#[derive(Clone)]
pub struct Bilinear {
    pub weight: Param,
    pub bias: Option<Param>,
}

impl Bilinear {
    pub fn new(in1: usize, in2: usize, output: usize, bias: bool) -> Result<Bilinear> {
        Bilinear::with(in1, in2, output, bias, &rng::next_key()?, DType::F32)
    }

    pub fn with(
        in1: usize,
        in2: usize,
        output: usize,
        bias: bool,
        key: &Array,
        dtype: DType,
    ) -> Result<Bilinear> {
        check_float("Bilinear", dtype)?;
        let (weight, bias) =
            uniform_weight_and_bias(key, &[output, in1, in2], bias, default_bound(in1), dtype)?;
        Ok(Bilinear {
            weight: Param::new(weight),
            bias: bias.map(Param::new),
        })
    }

    /// `x1 (..., in1)` and `x2 (..., in2)` with the same leading dims -> `(..., out)`.
    pub fn forward(&self, x1: &Array, x2: &Array) -> Result<Array> {
        let w = &self.weight.value;
        let (o, i1, i2) = (w.shape()[0], w.shape()[1], w.shape()[2]);
        let lead = |x: &Array| x.shape()[..x.ndim().saturating_sub(1)].to_vec();
        if x1.ndim() == 0
            || x2.ndim() == 0
            || x1.shape()[x1.ndim() - 1] != i1
            || x2.shape()[x2.ndim() - 1] != i2
            || lead(x1) != lead(x2)
        {
            return Err(Error::invalid(
                "Bilinear",
                format!(
                    "inputs {:?} and {:?} do not fit weight ({o}, {i1}, {i2})",
                    x1.shape(),
                    x2.shape()
                ),
            ));
        }
        // x1 W as one matmul over (in1, out * in2), then a dot with x2 per output.
        let wm = ingot::reshape_to(&ingot::transpose(w, Some(&[1, 0, 2]))?, &[i1, o * i2])?;
        let t = ingot::matmul(x1, &wm)?;
        let mut shape = lead(x1);
        shape.extend([o, i2]);
        let t = ingot::reshape_to(&t, &shape)?;
        let y = ingot::sum(
            &ingot::multiply(&t, &ingot::expand_dims(x2, &[-2])?)?,
            Some(&[-1]),
            false,
        )?;
        add_bias(y, self.bias.as_ref())
    }
}

impl Module for Bilinear {
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

/// A table of `num` vectors of width `dim` (weight `(num, dim)`, initialized N(0, 1) as in
/// PyTorch), looked up by integer ids.
#[derive(Clone)]
pub struct Embedding {
    pub weight: Param,
}

impl Embedding {
    pub fn new(num: usize, dim: usize) -> Result<Embedding> {
        Embedding::with(num, dim, &rng::next_key()?, DType::F32)
    }

    pub fn with(num: usize, dim: usize, key: &Array, dtype: DType) -> Result<Embedding> {
        check_float("Embedding", dtype)?;
        Ok(Embedding {
            weight: Param::new(ingot::random::normal(key, &[num, dim], 0.0, 1.0, dtype)?),
        })
    }

    /// The vectors of integer `ids` (any shape): `(*ids.shape, dim)`.
    pub fn forward(&self, ids: &Array) -> Result<Array> {
        if ids.dtype().is_float() || ids.dtype().is_complex() || ids.dtype() == DType::Bool {
            return Err(Error::invalid(
                "Embedding",
                format!("ids must be integers, got {}", ids.dtype()),
            ));
        }
        ingot::take(&self.weight.value, ids, Some(0))
    }

    /// `x (..., dim)` against every vector: `(..., num)` logits, for an output layer that
    /// shares the table (tied embeddings).
    pub fn as_linear(&self, x: &Array) -> Result<Array> {
        ingot::matmul(x, &ingot::transpose(&self.weight.value, None)?)
    }
}

impl Module for Embedding {
    fn visit(&self, f: &mut dyn FnMut(&str, &Param)) {
        f("weight", &self.weight);
    }
    fn visit_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
        f("weight", &mut self.weight);
    }
}

impl Unary for Embedding {
    fn forward(&self, x: &Array) -> Result<Array> {
        Embedding::forward(self, x)
    }
}
