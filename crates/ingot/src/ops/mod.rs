//! The public operations, one file per family. Every function validates its arguments,
//! promotes dtypes and broadcasts shapes, then builds a lazy node: bad calls fail here, with
//! the operation's name, shapes and dtypes in the error.
//!
//! Random number functions stay in their own namespace, `ingot::random` (`random::split`,
//! `random::normal`), as in MLX and JAX: `ingot::split` splits arrays.

pub mod conv;
pub mod creation;
pub mod elementwise;
pub mod fast;
pub mod fft;
pub mod index;
pub mod linalg;
pub mod misc;
pub mod operators;
pub mod random;
pub mod reduce;
pub mod shape;
pub mod sort;
pub mod view;

#[allow(unused_imports)]
pub use conv::*;
pub use creation::*;
pub use elementwise::*;
#[allow(unused_imports)]
pub use fft::*;
#[allow(unused_imports)]
pub use index::*;
#[allow(unused_imports)]
pub use linalg::*;
#[allow(unused_imports)]
pub use misc::*;
#[allow(unused_imports)]
pub use reduce::*;
#[allow(unused_imports)]
pub use shape::*;
#[allow(unused_imports)]
pub use sort::*;
pub use view::*;
