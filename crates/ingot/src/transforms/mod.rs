//! Function transformations: reverse- and forward-mode differentiation (`vjp`, `grad`,
//! `jvp`), gradient checkpointing, user-defined backward rules, tracing, `compile` and `vmap`.
//!
//! A transform calls the function on fresh handles of its inputs, then walks the lazy graph
//! the function built. The rules of each transform are written with ordinary ops, so the
//! graphs they build can be transformed again (grad of grad, jvp of vjp).

pub(crate) mod autodiff;
mod check;
mod compile;
mod export;
mod fuse;
mod shapeless;
mod trace;
mod tree;
mod vjp;
mod vjp_linalg;
mod vjp_nn;
mod vmap;

pub use autodiff::{
    checkpoint, custom_vjp, grad, grad_tree, jvp, value_and_grad, value_and_grad_tree, vjp, VjpRule,
};
pub use check::{infer as check_op, Sig};
pub(crate) use compile::optimize;
pub use compile::{
    compile, compile_with, simplify, CompileOptions, CompileStats, Compiled, GraphStats,
    CUDA_GRAPH_ENV, DISABLE_ENV,
};
pub use export::{
    export, import, import_bytes, Exporter, Package, Signature, TensorSpec, PACKAGE_MAGIC,
    PACKAGE_VERSION,
};
pub use trace::{trace, App, Graph, Source, Value};
pub use tree::Tree;
pub use vmap::vmap;
