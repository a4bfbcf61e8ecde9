//! Devices. Arrays are not bound to one: an operation runs on the device named for it or the
//! default device, and buffers move when another device needs them.

use crate::{Error, Result};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum Device {
    #[default]
    Cpu,
    Cuda(usize),
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl std::str::FromStr for Device {
    type Err = Error;
    fn from_str(s: &str) -> Result<Device> {
        match s {
            "cpu" => Ok(Device::Cpu),
            // This process's GPU: the first, or under `ingot launch` its local rank's.
            "cuda" | "gpu" => Ok(Device::Cuda(local_gpu())),
            _ => match s.strip_prefix("cuda:").and_then(|n| n.parse().ok()) {
                Some(n) => Ok(Device::Cuda(n)),
                None => Err(Error::invalid(
                    "device",
                    format!("unknown device '{s}' (cpu, cuda, cuda:N)"),
                )),
            },
        }
    }
}

/// The GPU a process uses unless one is named: its `LOCAL_RANK` (set by `ingot launch`
/// and torchrun) modulo the GPUs it sees, so the ranks on a machine take one GPU each, as
/// NCCL requires; GPU 0 otherwise.
fn local_gpu() -> usize {
    let local = std::env::var("LOCAL_RANK")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok());
    match local {
        Some(l) => match crate::backend::cuda::device_count() {
            0 => 0,
            n => l % n,
        },
        None => 0,
    }
}

/// This process's GPU (see `Device::from_str("cuda")`), or `None` without one.
pub fn default_gpu() -> Option<Device> {
    crate::backend::cuda::is_available().then(|| Device::Cuda(local_gpu()))
}

static DEFAULT: RwLock<Option<Device>> = RwLock::new(None);

thread_local! {
    /// This thread's `with_device` scope, over the process-wide default.
    static SCOPED: std::cell::Cell<Option<Device>> = const { std::cell::Cell::new(None) };
}

/// The device operations run on unless one is named: this thread's innermost
/// [`with_device`], else the process-wide default ([`set_default_device`]), else
/// `INGOT_DEVICE`, else `INGOT_TEST_DEVICE` (which the test suites are run with to test a
/// GPU), else the CPU.
pub fn default_device() -> Device {
    if let Some(d) = SCOPED.with(|s| s.get()) {
        return d;
    }
    if let Some(d) = *DEFAULT.read() {
        return d;
    }
    let d = std::env::var("INGOT_DEVICE")
        .ok()
        .or_else(|| std::env::var("INGOT_TEST_DEVICE").ok())
        .and_then(|s| s.parse().ok())
        .unwrap_or_default();
    *DEFAULT.write() = Some(d);
    d
}

/// Sets the process-wide default device (every thread outside a [`with_device`] scope).
pub fn set_default_device(d: Device) {
    *DEFAULT.write() = Some(d);
}

/// Runs `f` with `d` as this thread's default device, restoring the previous one afterwards
/// (also when `f` panics). Only this thread sees it, as `with torch.device(...)` and
/// `jax.default_device` scope theirs: other threads keep theirs while `f` runs.
pub fn with_device<R>(d: Device, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Device>);
    impl Drop for Restore {
        fn drop(&mut self) {
            SCOPED.with(|s| s.set(self.0));
        }
    }
    let _restore = Restore(SCOPED.with(|s| s.replace(Some(d))));
    f()
}

/// Waits until every operation queued on `d` has finished (a no-op on the CPU, whose
/// kernels run during `eval`).
pub fn synchronize(d: Device) -> crate::Result<()> {
    match d {
        Device::Cpu => Ok(()),
        Device::Cuda(n) => crate::backend::cuda::synchronize(n),
    }
}
