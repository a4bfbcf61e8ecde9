//! Reverse-mode rules of convolution, pooling, FFT and grid_sample.
//! Same contract as the rules in `vjp.rs`.

use super::vjp::no_rule;
use crate::op::Op;
use crate::{Array, Result};

pub(crate) fn rule(
    op: &Op,
    _inputs: &[Array],
    _outs: &[Option<Array>],
    _cts: &[Option<Array>],
    _needs: &[bool],
) -> Result<Vec<Option<Array>>> {
    Err(no_rule(op, ""))
}
