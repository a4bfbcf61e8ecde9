//! NCCL, the collective library every GPU framework runs on, through its C API loaded at
//! run time: the same binary builds and runs without it, and GPU collectives use it when
//! the machine has it.
//!
//! The library is looked up as `INGOT_NCCL_LIB` (a path), then `libnccl.so` and
//! `libnccl.so.2` (the name pip's nvidia-nccl wheels and the CUDA packages install); cudarc's
//! loader does not try `.so.2`, so ingot opens it itself and calls the dozen functions it
//! needs.

use crate::{Error, Result};
use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::OnceLock;

/// ncclUniqueId: 128 opaque bytes that rank 0 makes and every rank passes to init.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct UniqueId {
    pub internal: [u8; 128],
}

type RawComm = *mut c_void;
type Res = c_int;
type Stream = *mut c_void;

/// ncclDataType_t values (nccl.h).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub(crate) enum NcclType {
    I8 = 0,
    U8 = 1,
    I32 = 2,
    U32 = 3,
    I64 = 4,
    U64 = 5,
    F16 = 6,
    F32 = 7,
    F64 = 8,
    BF16 = 9,
}

/// ncclRedOp_t values.
#[derive(Clone, Copy, Debug)]
#[repr(i32)]
pub(crate) enum RedOp {
    Sum = 0,
    Max = 2,
    Min = 3,
}

/// ncclAllReduce, ncclReduceScatter and ncclBroadcast: (send, recv, count, type, op or
/// root, comm, stream).
type Collective =
    unsafe extern "C" fn(*const c_void, *mut c_void, usize, c_int, c_int, RawComm, Stream) -> Res;

struct Api {
    _lib: libloading::Library,
    version: (u32, u32, u32),
    get_unique_id: unsafe extern "C" fn(*mut UniqueId) -> Res,
    comm_init_rank: unsafe extern "C" fn(*mut RawComm, c_int, UniqueId, c_int) -> Res,
    comm_destroy: unsafe extern "C" fn(RawComm) -> Res,
    error_string: unsafe extern "C" fn(Res) -> *const c_char,
    last_error: unsafe extern "C" fn(RawComm) -> *const c_char,
    all_reduce: Collective,
    all_gather:
        unsafe extern "C" fn(*const c_void, *mut c_void, usize, c_int, RawComm, Stream) -> Res,
    reduce_scatter: Collective,
    broadcast: Collective,
}

fn candidates() -> Vec<String> {
    let mut v: Vec<String> = std::env::var("INGOT_NCCL_LIB").into_iter().collect();
    v.extend(["libnccl.so".to_string(), "libnccl.so.2".to_string()]);
    v
}

fn load() -> std::result::Result<Api, String> {
    let mut tried = Vec::new();
    let mut lib = None;
    for name in candidates() {
        // Safety: loading NCCL runs its (trusted) initializers only.
        match unsafe { libloading::Library::new(&name) } {
            Ok(l) => {
                lib = Some(l);
                break;
            }
            Err(e) => tried.push(format!("{name}: {e}")),
        }
    }
    let lib = lib.ok_or_else(|| {
        format!(
            "NCCL was not found ({}); install it (the CUDA packages or pip's nvidia-nccl) or \
             name the library in INGOT_NCCL_LIB",
            tried.join("; ")
        )
    })?;
    macro_rules! sym {
        ($name:literal) => {
            // Safety: the symbol's type is NCCL's documented signature for it.
            *unsafe { lib.get(concat!($name, "\0").as_bytes()) }
                .map_err(|e| format!("NCCL lacks {}: {e}", $name))?
        };
    }
    let get_version: unsafe extern "C" fn(*mut c_int) -> Res = sym!("ncclGetVersion");
    let mut code: c_int = 0;
    // Safety: writes one int.
    unsafe { get_version(&mut code) };
    // Since 2.9 the code is major*10000 + minor*100 + patch.
    let version = (
        (code / 10000) as u32,
        (code / 100 % 100) as u32,
        (code % 100) as u32,
    );
    if version < (2, 12, 0) {
        return Err(format!(
            "NCCL {}.{}.{} is too old (ingot needs 2.12 or later)",
            version.0, version.1, version.2
        ));
    }
    Ok(Api {
        version,
        get_unique_id: sym!("ncclGetUniqueId"),
        comm_init_rank: sym!("ncclCommInitRank"),
        comm_destroy: sym!("ncclCommDestroy"),
        error_string: sym!("ncclGetErrorString"),
        last_error: sym!("ncclGetLastError"),
        all_reduce: sym!("ncclAllReduce"),
        all_gather: sym!("ncclAllGather"),
        reduce_scatter: sym!("ncclReduceScatter"),
        broadcast: sym!("ncclBroadcast"),
        _lib: lib,
    })
}

fn api() -> Result<&'static Api> {
    static API: OnceLock<std::result::Result<Api, String>> = OnceLock::new();
    API.get_or_init(load)
        .as_ref()
        .map_err(|e| Error::Unsupported {
            op: "nccl".into(),
            msg: e.clone(),
        })
}

/// Whether NCCL can be loaded here, and its version.
pub fn version() -> Result<(u32, u32, u32)> {
    Ok(api()?.version)
}

fn check(op: &str, r: Res, comm: Option<RawComm>) -> Result<()> {
    if r == 0 {
        return Ok(());
    }
    let a = api()?;
    // Safety: NCCL returns static strings for both.
    let what = unsafe { CStr::from_ptr((a.error_string)(r)) }.to_string_lossy();
    let last = unsafe { CStr::from_ptr((a.last_error)(comm.unwrap_or(std::ptr::null_mut()))) }
        .to_string_lossy()
        .into_owned();
    Err(Error::Backend {
        op: op.into(),
        msg: format!("NCCL error {r} ({what}){}", {
            if last.is_empty() {
                String::new()
            } else {
                format!(": {last}")
            }
        }),
    })
}

/// A new id for a communicator (made by one rank, handed to the others).
pub(crate) fn unique_id() -> Result<UniqueId> {
    let a = api()?;
    let mut id = UniqueId { internal: [0; 128] };
    // Safety: fills the 128-byte id.
    check("nccl init", unsafe { (a.get_unique_id)(&mut id) }, None)?;
    Ok(id)
}

/// One NCCL communicator: this process's place in a group on one GPU. Collectives are
/// queued on the stream given to each call and return at once.
pub(crate) struct Comm {
    raw: RawComm,
    pub size: usize,
}

// Safety: NCCL communicators may be used from any thread (one at a time: ingot's eval of a
// device is serialized by the caller's lock).
unsafe impl Send for Comm {}
unsafe impl Sync for Comm {}

impl Drop for Comm {
    fn drop(&mut self) {
        if let Ok(a) = api() {
            // Safety: the communicator is no longer used; a failure here has nowhere to go.
            unsafe { (a.comm_destroy)(self.raw) };
        }
    }
}

impl Comm {
    /// Joins the communicator `id` as `rank` of `size`; the GPU whose context is current
    /// on this thread is the one it uses. Blocks until every rank has joined.
    pub(crate) fn init(id: &UniqueId, rank: usize, size: usize) -> Result<Comm> {
        let a = api()?;
        let mut raw: RawComm = std::ptr::null_mut();
        // Safety: `raw` receives the new communicator.
        let r = unsafe { (a.comm_init_rank)(&mut raw, size as c_int, *id, rank as c_int) };
        check("nccl init", r, None)?;
        Ok(Comm { raw, size })
    }

    /// Queues one NCCL call (`f` makes it with the library's functions).
    fn queue(&self, op: &str, f: impl FnOnce(&Api) -> Res) -> Result<()> {
        check(op, f(api()?), Some(self.raw))
    }

    // Safety, for every collective below: the addresses hold the elements the call reads
    // and writes (`count` of `ty`; n × count for a gather's output and a scatter's input)
    // on this communicator's GPU, and stay alive until `stream` has run the call.

    /// Sums (or max, min) `count` elements at `src` over the group into `dst` on every rank.
    pub(crate) unsafe fn all_reduce(
        &self,
        (src, dst, count): (u64, u64, usize),
        ty: NcclType,
        op: RedOp,
        stream: Stream,
    ) -> Result<()> {
        self.queue("all_sum (nccl)", |a| unsafe {
            (a.all_reduce)(
                src as _,
                dst as _,
                count,
                ty as c_int,
                op as c_int,
                self.raw,
                stream,
            )
        })
    }

    /// `dst` gets every rank's `count` elements at `src`, in rank order.
    pub(crate) unsafe fn all_gather(
        &self,
        (src, dst, count): (u64, u64, usize),
        ty: NcclType,
        stream: Stream,
    ) -> Result<()> {
        self.queue("all_gather (nccl)", |a| unsafe {
            (a.all_gather)(src as _, dst as _, count, ty as c_int, self.raw, stream)
        })
    }

    /// Rank k's `dst` (`count` elements) gets the sum over ranks of part k of `src`.
    pub(crate) unsafe fn reduce_scatter(
        &self,
        (src, dst, count): (u64, u64, usize),
        ty: NcclType,
        stream: Stream,
    ) -> Result<()> {
        let sum = RedOp::Sum as c_int;
        self.queue("reduce_scatter (nccl)", |a| unsafe {
            (a.reduce_scatter)(
                src as _,
                dst as _,
                count,
                ty as c_int,
                sum,
                self.raw,
                stream,
            )
        })
    }

    /// Every rank's `dst` gets `root`'s `src` (read on the root only).
    pub(crate) unsafe fn broadcast(
        &self,
        (src, dst, count): (u64, u64, usize),
        ty: NcclType,
        root: usize,
        stream: Stream,
    ) -> Result<()> {
        let root = root as c_int;
        self.queue("broadcast (nccl)", |a| unsafe {
            (a.broadcast)(
                src as _,
                dst as _,
                count,
                ty as c_int,
                root,
                self.raw,
                stream,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    /// Where NCCL loads (a GPU machine, or INGOT_NCCL_LIB naming one): a version ingot takes
    /// and an id from its bootstrap. Elsewhere: an error that says what to install.
    #[test]
    fn loads_or_says_what_is_missing() {
        match super::version() {
            Ok(v) => {
                eprintln!("NCCL {v:?}");
                assert!(v >= (2, 12, 0), "{v:?}");
                let id = super::unique_id().unwrap();
                assert!(id.internal.iter().any(|&b| b != 0));
                if !crate::backend::cuda::is_available() {
                    // Without a GPU, joining fails with NCCL's own explanation, not a crash.
                    let e = super::Comm::init(&id, 0, 1)
                        .err()
                        .expect("no GPU to join on");
                    eprintln!("{e}");
                    assert!(e.to_string().contains("NCCL error"), "{e}");
                }
            }
            Err(e) => {
                let e = e.to_string();
                assert!(
                    e.contains("NCCL was not found") && e.contains("INGOT_NCCL_LIB"),
                    "{e}"
                );
            }
        }
    }
}
