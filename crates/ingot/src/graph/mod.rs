//! The eval scheduler (later: tracing, simplification, fusion).

mod eval;
pub use eval::eval;
