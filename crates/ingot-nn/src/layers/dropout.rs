//! Dropout: in train mode each element (or each whole channel, for the 1d/2d/3d kinds) is
//! zeroed with probability `p` and the rest scaled by `1 / (1 - p)`; in eval mode the input
//! passes unchanged. The mask comes from the shared random state (`crate::rng`), so a seed
//! fixes it.

use crate::module::{Module, Param, Unary};
use crate::rng;
use ingot::{Array, Error, Result};

/// Which elements share a mask entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Every element on its own.
    Element,
    /// Whole channels of `(N, *spatial, C)` inputs with this many spatial dims.
    Channels(usize),
}

/// Element-wise dropout (PyTorch's `Dropout`), starting in train mode.
#[derive(Clone)]
pub struct Dropout {
    pub p: f64,
    pub training: bool,
    kind: Kind,
}

impl Dropout {
    /// Zeroes each element with probability `p` (in [0, 1)).
    pub fn new(p: f64) -> Result<Dropout> {
        Dropout::make("Dropout", p, Kind::Element)
    }

    /// Zeroes whole channels of `(N, L, C)` inputs (PyTorch's `Dropout1d`, channels last).
    pub fn channels_1d(p: f64) -> Result<Dropout> {
        Dropout::make("Dropout1d", p, Kind::Channels(1))
    }

    /// Zeroes whole channels of `(N, H, W, C)` inputs (`Dropout2d`).
    pub fn channels_2d(p: f64) -> Result<Dropout> {
        Dropout::make("Dropout2d", p, Kind::Channels(2))
    }

    /// Zeroes whole channels of `(N, D, H, W, C)` inputs (`Dropout3d`).
    pub fn channels_3d(p: f64) -> Result<Dropout> {
        Dropout::make("Dropout3d", p, Kind::Channels(3))
    }

    fn make(name: &str, p: f64, kind: Kind) -> Result<Dropout> {
        // p = 1 would scale by infinity; PyTorch returns zeros, which no one trains with.
        if !(0.0..1.0).contains(&p) {
            return Err(Error::invalid(name, format!("p = {p} is not in [0, 1)")));
        }
        Ok(Dropout {
            p,
            training: true,
            kind,
        })
    }

    fn name(&self) -> &'static str {
        match self.kind {
            Kind::Element => "Dropout",
            Kind::Channels(1) => "Dropout1d",
            Kind::Channels(2) => "Dropout2d",
            Kind::Channels(_) => "Dropout3d",
        }
    }

    /// The layer applied with an explicit key (for reproducible masks without the shared
    /// state).
    pub fn forward_with_key(&self, x: &Array, key: &Array) -> Result<Array> {
        if !self.training || self.p == 0.0 {
            return Ok(x.clone());
        }
        if !x.dtype().is_float() {
            return Err(Error::invalid(
                self.name(),
                format!("input must be floating, got {:?} {}", x.shape(), x.dtype()),
            ));
        }
        let mask_shape: Vec<usize> = match self.kind {
            Kind::Element => x.shape().to_vec(),
            Kind::Channels(s) => {
                if x.ndim() != s + 2 {
                    return Err(Error::invalid(
                        self.name(),
                        format!(
                            "input {:?} is not (N, {} spatial dims, C) channels-last",
                            x.shape(),
                            s
                        ),
                    ));
                }
                let mut m = vec![1; x.ndim()];
                m[0] = x.shape()[0];
                m[x.ndim() - 1] = x.shape()[x.ndim() - 1];
                m
            }
        };
        let keep = ingot::random::bernoulli(key, 1.0 - self.p, Some(&mask_shape))?;
        let scale = 1.0 / (1.0 - self.p);
        let m = ingot::multiply(&ingot::astype(&keep, x.dtype())?, scale)?;
        ingot::multiply(x, &m)
    }
}

impl Module for Dropout {
    fn visit(&self, _f: &mut dyn FnMut(&str, &Param)) {}
    fn visit_mut(&mut self, _f: &mut dyn FnMut(&str, &mut Param)) {}
    fn set_training(&mut self, on: bool) {
        self.training = on;
    }
}

impl Unary for Dropout {
    fn forward(&self, x: &Array) -> Result<Array> {
        if !self.training || self.p == 0.0 {
            return Ok(x.clone());
        }
        self.forward_with_key(x, &rng::next_key()?)
    }
}
