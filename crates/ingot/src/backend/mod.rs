//! Backends: one folder per device, one file per op family.

pub mod cpu;
pub mod cuda;
