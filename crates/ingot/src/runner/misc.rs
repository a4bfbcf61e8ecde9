//! Runner entries: misc family.

use super::OpDef;

pub fn register(_r: &mut Vec<OpDef>) {}
