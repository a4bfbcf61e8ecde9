//! Runner entries: random family.

use super::OpDef;

pub fn register(_r: &mut Vec<OpDef>) {}
