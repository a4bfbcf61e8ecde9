//! Sequential: layers applied in order, named "0", "1", ... as in PyTorch.

use crate::module::{visit_child, visit_child_mut, Module, Param, Unary};
use ingot::{Array, Result};

/// Layers applied one after another.
#[derive(Clone, Default)]
pub struct Sequential {
    pub layers: Vec<Box<dyn Unary>>,
}

impl Sequential {
    pub fn new() -> Sequential {
        Sequential::default()
    }

    /// Appends a layer (builder style).
    pub fn push(mut self, layer: impl Unary + Clone + 'static) -> Sequential {
        self.layers.push(Box::new(layer));
        self
    }
}

impl Module for Sequential {
    fn visit(&self, f: &mut dyn FnMut(&str, &Param)) {
        for (i, l) in self.layers.iter().enumerate() {
            visit_child(&i.to_string(), l.as_ref(), f);
        }
    }
    fn visit_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
        for (i, l) in self.layers.iter_mut().enumerate() {
            visit_child_mut(&i.to_string(), l.as_mut(), f);
        }
    }
    fn set_training(&mut self, on: bool) {
        for l in &mut self.layers {
            l.set_training(on);
        }
    }
}

impl Unary for Sequential {
    fn forward(&self, x: &Array) -> Result<Array> {
        let mut y = x.clone();
        for l in &self.layers {
            y = l.forward(&y)?;
        }
        Ok(y)
    }
}
