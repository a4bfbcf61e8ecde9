//! ingot: lazy n-dimensional arrays with a NumPy-like API, for machine learning on CPUs and
//! NVIDIA GPUs. See docs/design.md for the architecture and docs/ops.md for the operations.
//!
//! ```
//! use ingot::{Array, DType};
//! let a = Array::from_slice(&[1.0f32, 2.0, 3.0, 4.0], &[2, 2])?;
//! let b = ingot::ones(&[2, 2], DType::F32)?;
//! let c = (&a + &b)?;
//! assert_eq!(c.to_vec::<f32>()?, vec![2.0, 3.0, 4.0, 5.0]);
//! # Ok::<(), ingot::Error>(())
//! ```

pub mod amp;
pub mod array;
pub mod backend;
pub mod buffer;
pub mod custom;
pub mod device;
mod display;
pub mod distributed;
pub mod dtype;
pub mod error;
pub mod graph;
pub mod io;
/// Host memory: what live arrays hold, the peak, and the cache of freed large buffers that
/// kernels reuse instead of asking the OS for fresh (zeroed) pages.
pub mod memory {
    pub use crate::buffer::{
        active_memory, cache_memory, clear_cache, peak_memory, reset_peak_memory, set_cache_limit,
    };
    /// GPU memory of the caching allocator, per GPU ordinal: the same figures and controls,
    /// plus a memory limit past which allocation returns `Error::OutOfMemory`.
    pub mod cuda {
        pub use crate::backend::cuda::alloc_api::*;
        pub use crate::backend::cuda::DeviceMemoryStats;
    }
    pub use crate::backend::cuda::{thread_transfers, transfers, Transfers};
}

/// NVIDIA GPUs: whether one is there, waiting for queued work, and what ran on the CPU for
/// want of a GPU kernel.
pub mod cuda {
    pub use crate::backend::cuda::blaslt::enabled as cublaslt_enabled;
    pub use crate::backend::cuda::matmul_api::{set_allow_tf32, set_cudnn_graph};
    pub use crate::backend::cuda::{
        device_count, fallbacks, is_available, nvrtc_available, print_stats, synchronize,
    };
}
pub mod op;
pub mod ops;
pub mod runner;
pub mod shape;
pub mod transforms;

pub use amp::{autocast, autocast_dtype};
pub use array::{Array, IntoArray};
pub use device::{
    default_device, default_gpu, set_default_device, synchronize, with_device, Device,
};
pub use dtype::{promote_types, DType, Element, Kind, Scalar};
pub use error::{Error, Result};
pub use graph::{to_dot, to_dot_fn};
pub use ops::fast;
pub use ops::random;
pub use ops::*;
pub use transforms::{
    checkpoint, compile, compile_with, custom_vjp, grad, grad_tree, jvp, value_and_grad,
    value_and_grad_tree, vjp, vmap, Tree,
};
pub use transforms::{export, import, import_bytes, Exporter, Package};

/// Evaluates several arrays together, sharing their common work.
pub fn eval(arrays: &[Array]) -> Result<()> {
    graph::eval(arrays)
}

/// Evaluates like [`eval`] and returns without waiting for GPU work to finish: kernels are
/// queued on the device's stream, and the host waits only when it reads a result (or at
/// [`synchronize`]). On the CPU this is `eval`.
pub fn async_eval(arrays: &[Array]) -> Result<()> {
    graph::eval(arrays)
}

pub use half::{bf16, f16};
pub use num_complex::Complex32 as c64;
