//! One error type for the whole library. Every message names the operation and shows the
//! shapes and dtypes involved, e.g. `[matmul] inner dimensions differ: (2, 3) @ (4, 5)`.

use std::fmt;

/// The result type of every fallible ingot call.
pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A bad call: wrong shapes, dtypes, axes or arguments. `op` names the operation.
    #[error("[{op}] {msg}")]
    Invalid { op: String, msg: String },
    /// A file or buffer could not be read or written.
    #[error("[{op}] {msg}")]
    Io { op: String, msg: String },
    /// The operation exists but is not available for these inputs or on this device.
    #[error("[{op}] {msg}")]
    Unsupported { op: String, msg: String },
    /// Memory could not be allocated.
    #[error("[{op}] out of memory: {msg}")]
    OutOfMemory { op: String, msg: String },
    /// A GPU driver, compiler or library call failed.
    #[error("[{op}] {msg}")]
    Backend { op: String, msg: String },
}

impl Error {
    pub fn invalid(op: impl fmt::Display, msg: impl fmt::Display) -> Self {
        Error::Invalid {
            op: op.to_string(),
            msg: msg.to_string(),
        }
    }
    pub fn io(op: impl fmt::Display, msg: impl fmt::Display) -> Self {
        Error::Io {
            op: op.to_string(),
            msg: msg.to_string(),
        }
    }
    pub fn unsupported(op: impl fmt::Display, msg: impl fmt::Display) -> Self {
        Error::Unsupported {
            op: op.to_string(),
            msg: msg.to_string(),
        }
    }
    /// The operation this error names.
    pub fn op(&self) -> &str {
        match self {
            Error::Invalid { op, .. }
            | Error::Io { op, .. }
            | Error::Unsupported { op, .. }
            | Error::OutOfMemory { op, .. }
            | Error::Backend { op, .. } => op,
        }
    }
}

/// `bail!(op, "fmt", args..)` returns an [`Error::Invalid`] from the current function.
#[macro_export]
macro_rules! bail {
    ($op:expr, $($arg:tt)*) => {
        return Err($crate::Error::invalid($op, format!($($arg)*)))
    };
}

/// `ensure!(cond, op, "fmt", args..)` returns an [`Error::Invalid`] unless `cond` holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $op:expr, $($arg:tt)*) => {
        if !$cond {
            return Err($crate::Error::invalid($op, format!($($arg)*)));
        }
    };
}
