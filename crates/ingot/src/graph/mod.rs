//! The eval scheduler (later: tracing, simplification, fusion).

mod dot;
mod eval;
pub use dot::{to_dot, to_dot_fn};
pub use eval::eval;
