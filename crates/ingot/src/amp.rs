//! Automatic mixed precision: inside [`autocast`], matrix products and convolutions run in
//! float16 or bfloat16, and the ops whose accuracy needs range or many terms (reductions,
//! softmax, exp and log, their relatives) run in float32, as PyTorch's autocast decides per
//! op. Outside it nothing changes. Float64 inputs are never narrowed.
//!
//! The backward pass is built with autocast suspended: each gradient op then runs in the
//! dtype its forward op chose, and casts' gradients cast back, so gradients of float32
//! parameters are float32 ("master weights").

use crate::{astype, Array, DType, Error, Result};
use std::cell::Cell;

thread_local! {
    static AUTOCAST: Cell<Option<DType>> = const { Cell::new(None) };
}

/// Runs `f` with autocast to `dtype` (float16 or bfloat16) on this thread, restoring the
/// previous setting afterwards (scopes nest).
pub fn autocast<R>(dtype: DType, f: impl FnOnce() -> R) -> Result<R> {
    if !matches!(dtype, DType::F16 | DType::BF16) {
        return Err(Error::invalid(
            "autocast",
            format!("the low precision must be float16 or bfloat16, got {dtype}"),
        ));
    }
    Ok(with(Some(dtype), f))
}

/// The autocast dtype in effect on this thread, if any.
pub fn autocast_dtype() -> Option<DType> {
    AUTOCAST.with(|c| c.get())
}

/// Runs `f` with autocast set to `d` (None: off), restoring the previous setting even if
/// `f` panics.
pub(crate) fn with<R>(d: Option<DType>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<DType>);
    impl Drop for Restore {
        fn drop(&mut self) {
            AUTOCAST.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(AUTOCAST.with(|c| c.replace(d)));
    f()
}

/// An operand of a low-precision op: float32 narrowed to the autocast dtype.
pub(crate) fn low(x: &Array) -> Result<Array> {
    match autocast_dtype() {
        Some(d) if x.dtype() == DType::F32 => astype(x, d),
        _ => Ok(x.clone()),
    }
}

/// An operand of a float32 op: float16 and bfloat16 widened to float32.
pub(crate) fn high(x: &Array) -> Result<Array> {
    match (autocast_dtype(), x.dtype()) {
        (Some(_), DType::F16 | DType::BF16) => astype(x, DType::F32),
        _ => Ok(x.clone()),
    }
}
