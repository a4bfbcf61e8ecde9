//! Function transformations: reverse- and forward-mode differentiation (`vjp`, `grad`,
//! `jvp`), gradient checkpointing and user-defined backward rules.
//!
//! A transform calls the function on fresh handles of its inputs, then walks the lazy graph
//! the function built. The rules of each transform are written with ordinary ops, so the
//! graphs they build can be transformed again (grad of grad, jvp of vjp).

mod autodiff;
mod tree;
mod vjp;
mod vjp_linalg;
mod vjp_nn;

pub use autodiff::{
    checkpoint, custom_vjp, grad, grad_tree, jvp, value_and_grad, value_and_grad_tree, vjp, VjpRule,
};
pub use tree::Tree;
