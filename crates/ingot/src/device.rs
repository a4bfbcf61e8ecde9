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
            "cuda" | "gpu" => Ok(Device::Cuda(0)),
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

static DEFAULT: RwLock<Option<Device>> = RwLock::new(None);

/// The device operations run on unless one is named: `INGOT_DEVICE` or the CPU.
pub fn default_device() -> Device {
    if let Some(d) = *DEFAULT.read() {
        return d;
    }
    let d = std::env::var("INGOT_DEVICE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_default();
    *DEFAULT.write() = Some(d);
    d
}

pub fn set_default_device(d: Device) {
    *DEFAULT.write() = Some(d);
}
