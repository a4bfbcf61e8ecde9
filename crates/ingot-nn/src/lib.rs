//! ingot-nn: modules with named parameters, layers, activations, losses, initializers and
//! optimizers, on ingot's arrays (the role mlx.nn and mlx.optimizers play for MLX).
//!
//! A [`Module`] names its parameters the way PyTorch's `state_dict` does ("weight",
//! "layers.0.bias"), so a model's safetensors file loads under the same names Hugging Face
//! uses. Training is functional: [`value_and_grad`] differentiates a loss with respect to
//! a module's trainable parameters, and an optimizer writes the updated arrays back.
//!
//! ```
//! use ingot::DType;
//! use ingot_nn::{Linear, Module, ModuleExt};
//! let layer = Linear::with(4, 3, true, &ingot_nn::rng::key(0), DType::F32).unwrap();
//! let names: Vec<String> = layer.parameters().into_keys().collect();
//! assert_eq!(names, ["bias", "weight"]);
//! ```

pub mod activations;
pub mod amp;
pub mod checkpoint;
pub mod data_parallel;
pub mod init;
pub mod layers;
pub mod losses;
pub mod models;
pub mod module;
pub mod optim;
pub mod rng;
pub mod schedule;
pub mod train;

pub use checkpoint::{load_checkpoint, save_checkpoint};
pub use layers::*;
pub use module::{
    value_and_grad, visit_child, visit_child_mut, Module, ModuleExt, Param, Role, Unary,
};
pub use optim::{clip_grad_norm, Optimizer};
pub use schedule::Schedule;
pub use train::TrainStep;
