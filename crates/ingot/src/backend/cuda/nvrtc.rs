//! Run-time compilation of kernels with NVRTC, straight to machine code (CUBIN) for the
//! running GPU, cached on disk by a hash of the source, options, architecture and NVRTC
//! version: a kernel is compiled once per machine, not once per process.

use super::cuda_err;
use crate::{Error, Result};
use sha2::{Digest, Sha256};
use std::ffi::CString;
use std::path::PathBuf;

/// `INGOT_KERNEL_CACHE`, else `$XDG_CACHE_HOME/ingot/kernels`, else `~/.cache/ingot/kernels`.
fn cache_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("INGOT_KERNEL_CACHE") {
        return Some(PathBuf::from(d));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("ingot").join("kernels"))
}

/// `INGOT_CUDA_LOG_COMPILES=1` prints each NVRTC compile and its time to stderr, to see
/// what first use of the GPU costs.
fn log_compiles() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("INGOT_CUDA_LOG_COMPILES").is_some_and(|v| v == "1"))
}

pub(crate) fn options(arch: &str) -> Vec<String> {
    vec![
        format!("--gpu-architecture={arch}"),
        "--std=c++17".into(),
        "--device-as-default-execution-space".into(),
        // No contraction of a * b + c into one rounding: results match the CPU's, and a
        // fused chain matches the same ops unfused, bit for bit.
        "--fmad=false".into(),
        // Generated code compares unsigned values with 0 and keeps unused helpers.
        "--diag-suppress=186,177".into(),
    ]
}

fn nvrtc_version() -> Result<(i32, i32)> {
    let (mut major, mut minor) = (0, 0);
    // Safety: plain out-parameters.
    unsafe { cudarc::nvrtc::sys::nvrtcVersion(&mut major, &mut minor) }
        .result()
        .map_err(|e| cuda_err("nvrtc", e))?;
    Ok((major, minor))
}

/// The CUBIN of kernel `name` from `src`, from the disk cache or NVRTC.
pub(crate) fn compile(arch: &str, name: &str, src: &str) -> Result<Vec<u8>> {
    // Safety: only probes whether the shared library can be opened.
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        return Err(Error::Unsupported {
            op: name.into(),
            msg: "NVRTC (libnvrtc.so) was not found; GPU kernels are compiled at run time and need it (install the CUDA toolkit's nvrtc or the nvidia-cuda-nvrtc wheel and put it on LD_LIBRARY_PATH)".into(),
        });
    }
    let opts = options(arch);
    let version = nvrtc_version()?;
    let mut h = Sha256::new();
    h.update(src.as_bytes());
    h.update(format!("{opts:?}{version:?}").as_bytes());
    let key: String = h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let file = cache_dir().map(|d| d.join(format!("{key}-{arch}.cubin")));
    if let Some(f) = &file {
        if let Ok(bytes) = super::stats::timed("[kernel from disk]", || std::fs::read(f)) {
            return Ok(bytes);
        }
    }
    let t0 = std::time::Instant::now();
    let cubin = super::stats::timed("[nvrtc compile]", || build(name, src, &opts))?;
    if log_compiles() {
        eprintln!(
            "ingot-cuda: compiled {name} ({} bytes of source) in {:.0} ms",
            src.len(),
            t0.elapsed().as_secs_f64() * 1e3
        );
    }
    if let Some(f) = &file {
        // A cache that cannot be written only costs a compile next time.
        if let Some(dir) = f.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let tmp = f.with_extension(format!("tmp{}", std::process::id()));
        if std::fs::write(&tmp, &cubin).is_ok() {
            let _ = std::fs::rename(&tmp, f);
        }
    }
    Ok(cubin)
}

pub(crate) fn build(name: &str, src: &str, opts: &[String]) -> Result<Vec<u8>> {
    use cudarc::nvrtc::{result, sys};
    let c_src = CString::new(src).map_err(|_| Error::invalid(name, "kernel source holds a NUL"))?;
    let c_name = CString::new(format!("{name}.cu")).expect("kernel names have no NUL");
    let prog = result::create_program(&c_src, Some(&c_name)).map_err(|e| cuda_err(name, e))?;
    // Safety: `prog` is live until destroy_program below.
    let out = unsafe {
        let compiled = result::compile_program(prog, opts);
        if compiled.is_err() {
            let log = result::get_program_log(prog).unwrap_or_default();
            let log: Vec<u8> = log
                .iter()
                .map(|&c| c as u8)
                .take_while(|&c| c != 0)
                .collect();
            Err(Error::Backend {
                op: name.into(),
                msg: format!(
                    "NVRTC could not compile the kernel:\n{}",
                    String::from_utf8_lossy(&log)
                ),
            })
        } else {
            let mut size = 0usize;
            sys::nvrtcGetCUBINSize(prog, &mut size)
                .result()
                .map_err(|e| cuda_err(name, e))
                .and_then(|_| {
                    let mut buf = vec![0u8; size];
                    sys::nvrtcGetCUBIN(prog, buf.as_mut_ptr() as *mut std::ffi::c_char)
                        .result()
                        .map_err(|e| cuda_err(name, e))?;
                    Ok(buf)
                })
        }
    };
    // Safety: created above and not destroyed before.
    let _ = unsafe { result::destroy_program(prog) };
    out
}
