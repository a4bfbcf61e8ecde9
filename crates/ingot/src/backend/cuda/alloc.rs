//! The caching allocator of GPU memory. Freed blocks are kept by size class and handed to the
//! next request of that class; kernels run on the GPU's compute stream, so a block freed while
//! kernels still read it is only reused by work queued after them (stream order). The
//! collectives' stream keeps what it reads alive until it has passed it (`Gpu::keep_until`)
//! and marks what it writes (`DeviceMem::set_pending`), so the compute stream's order holds.
//! Blocks go back to the driver when the cache is over its limit, when `clear_cache` is
//! called, or when an allocation would otherwise fail.

use super::{cuda_err, gpu, gpu_if_started, Gpu};
use crate::{Error, Result};
use cudarc::driver::CudaEvent;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Requests up to 1 MiB round up to 512 bytes, larger ones to 2 MiB: few classes for big
/// buffers (so they are reused across nearby sizes), little waste for small ones.
fn size_class(n: usize) -> usize {
    if n <= 1 << 20 {
        n.next_multiple_of(512)
    } else {
        n.next_multiple_of(2 << 20)
    }
}

pub(crate) struct Pool {
    free: BTreeMap<usize, Vec<u64>>,
    active: usize,
    peak: usize,
    cached: usize,
    /// Most bytes of live blocks plus cache; past it, allocation fails with OutOfMemory.
    limit: usize,
    cache_limit: usize,
    total: usize,
}

impl Pool {
    pub(crate) fn new(total: usize) -> Pool {
        Pool {
            free: BTreeMap::new(),
            active: 0,
            peak: 0,
            cached: 0,
            limit: total,
            cache_limit: env_cache_limit(),
            total,
        }
    }

    /// Takes every cached block out, for the caller to free after the GPU is idle.
    fn drain(&mut self) -> Vec<u64> {
        self.cached = 0;
        std::mem::take(&mut self.free)
            .into_values()
            .flatten()
            .collect()
    }
}

/// `INGOT_CUDA_CACHE_LIMIT` (bytes; 0 keeps no freed block, so every block goes back to the
/// driver after the GPU has finished with it): for ruling the cache in or out when results
/// look wrong, as PyTorch's PYTORCH_NO_CUDA_MEMORY_CACHING does. No limit without it.
fn env_cache_limit() -> usize {
    std::env::var("INGOT_CUDA_CACHE_LIMIT")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(usize::MAX)
}

/// Returns blocks to the driver once the work that may still read them has finished.
fn release(g: &Gpu, ptrs: Vec<u64>) -> Result<()> {
    if ptrs.is_empty() {
        return Ok(());
    }
    g.synchronize()?;
    super::stats::timed("[cuMemFree]", || {
        for p in ptrs {
            // Safety: each block came from malloc_sync and is no longer referenced.
            unsafe { cudarc::driver::result::free_sync(p) }.map_err(|e| cuda_err("free", e))?;
        }
        Ok(())
    })
}

/// GPU memory owned by one buffer; freed into its GPU's cache when dropped.
pub struct DeviceMem {
    ptr: u64,
    len: usize,
    class: usize,
    ordinal: usize,
    /// Work on another stream (a collective) still writing the block: the compute stream
    /// waits for it before the block is first read, copied out or reused.
    pending: parking_lot::Mutex<Option<Arc<CudaEvent>>>,
    /// The CUDA graph's private pool the block belongs to (`graph.rs`), if any: dropping
    /// the block gives it back to that pool, never to the GPU's cache, since the graph's
    /// replays write it.
    home: Option<Arc<super::graph::GraphPool>>,
}

impl DeviceMem {
    pub(crate) fn alloc(g: &Gpu, nbytes: usize) -> Result<DeviceMem> {
        if let Some(pool) = super::graph::capture_pool(g.ordinal) {
            return pool.alloc(g, nbytes);
        }
        Self::alloc_cached(g, nbytes)
    }

    /// A block of a graph's private pool (`graph.rs`).
    pub(crate) fn pooled(
        ptr: u64,
        nbytes: usize,
        ordinal: usize,
        home: Arc<super::graph::GraphPool>,
    ) -> DeviceMem {
        DeviceMem {
            ptr,
            len: nbytes,
            class: size_class(nbytes),
            ordinal,
            pending: parking_lot::Mutex::new(None),
            home: Some(home),
        }
    }

    /// The size class a request of `nbytes` takes.
    pub(crate) fn class_of(nbytes: usize) -> usize {
        size_class(nbytes)
    }

    /// A block from the GPU's cache (or the driver), whatever a capture is doing.
    pub(crate) fn alloc_cached(g: &Gpu, nbytes: usize) -> Result<DeviceMem> {
        let class = size_class(nbytes);
        let mem = |ptr| DeviceMem {
            ptr,
            len: nbytes,
            class,
            ordinal: g.ordinal,
            pending: parking_lot::Mutex::new(None),
            home: None,
        };
        if class == 0 {
            return Ok(mem(0));
        }
        let oom = |p: &Pool, why: String| {
            Error::OutOfMemory {
            op: "alloc".into(),
            msg: format!(
                "cuda:{}: cannot allocate {nbytes} bytes ({why}; {} bytes in live arrays, limit {}, {} on the card)",
                g.ordinal, p.active, p.limit, p.total
            ),
        }
        };
        {
            let mut p = g.pool.lock();
            if let Some(ptr) = p.free.get_mut(&class).and_then(|v| v.pop()) {
                p.cached -= class;
                p.active += class;
                p.peak = p.peak.max(p.active);
                return Ok(mem(ptr));
            }
            if p.active + class > p.limit {
                return Err(oom(&p, "over the memory limit".into()));
            }
            if p.active + p.cached + class > p.limit {
                // Freeing the cache synchronizes, which a thread recording a CUDA graph
                // cannot do: it fails (its capture with it) and leaves the cache as it is.
                if super::graph::capturing(g.ordinal) {
                    return Err(oom(
                        &p,
                        "over the memory limit while recording a CUDA graph".into(),
                    ));
                }
                let blocks = p.drain();
                drop(p);
                release(g, blocks)?;
            }
        }
        let fresh = super::stats::timed("[cuMemAlloc]", || {
            // Safety: a plain device allocation; the pointer is owned by the DeviceMem.
            unsafe { cudarc::driver::result::malloc_sync(class) }
        });
        let ptr = match fresh {
            Ok(p) => p,
            Err(e) if super::graph::capturing(g.ordinal) => {
                return Err(oom(&g.pool.lock(), format!("the driver said {e}")));
            }
            Err(_) => {
                // Free the cache and try once more before giving up.
                let blocks = g.pool.lock().drain();
                release(g, blocks)?;
                match unsafe { cudarc::driver::result::malloc_sync(class) } {
                    Ok(p) => p,
                    Err(e) => return Err(oom(&g.pool.lock(), format!("the driver said {e}"))),
                }
            }
        };
        let mut p = g.pool.lock();
        p.active += class;
        p.peak = p.peak.max(p.active);
        Ok(mem(ptr))
    }

    /// A device copy of `bytes` on GPU `ordinal` (counted as a transfer).
    pub(crate) fn upload(ordinal: usize, bytes: &[u8]) -> Result<DeviceMem> {
        super::stats::timed("[upload]", || Self::upload_inner(ordinal, bytes))
    }

    fn upload_inner(ordinal: usize, bytes: &[u8]) -> Result<DeviceMem> {
        // A graph would read the host bytes again at each replay, after they are gone.
        super::graph::forbid(ordinal, "copying host memory to the GPU")?;
        let g = gpu(ordinal)?;
        let mem = DeviceMem::alloc(&g, bytes.len())?;
        if !bytes.is_empty() {
            // Safety: `mem` has room for `bytes`; a copy from pageable memory returns once the
            // source has been staged, so `bytes` may be freed after the call.
            unsafe {
                cudarc::driver::result::memcpy_htod_async(mem.ptr, bytes, g.stream()?.cu_stream())
            }
            .map_err(|e| cuda_err("copy to device", e))?;
        }
        super::count_transfer(true, bytes.len());
        Ok(mem)
    }

    /// Copies the bytes into `out`, waiting for the kernels that write them.
    pub(crate) fn copy_to_host(&self, out: &mut [u8]) -> Result<()> {
        super::stats::timed("[read to host]", || self.copy_to_host_inner(out))
    }

    fn copy_to_host_inner(&self, out: &mut [u8]) -> Result<()> {
        super::graph::forbid(self.ordinal, "reading GPU memory on the host")?;
        let g = gpu(self.ordinal)?;
        self.wait_pending()?;
        if !out.is_empty() {
            // Safety: `out` holds `len` bytes, the block at least as many.
            unsafe {
                cudarc::driver::result::memcpy_dtoh_async(
                    &mut out[..self.len],
                    self.ptr,
                    g.stream()?.cu_stream(),
                )
            }
            .map_err(|e| cuda_err("copy to host", e))?;
        }
        g.synchronize()?;
        super::count_transfer(false, out.len());
        Ok(())
    }

    pub fn ptr(&self) -> u64 {
        self.ptr
    }

    /// Whether the block belongs to a CUDA graph's private pool.
    pub(crate) fn is_pooled(&self) -> bool {
        self.home.is_some()
    }

    /// Marks the block as written by work that `done` follows on another stream.
    pub(crate) fn set_pending(&self, done: Arc<CudaEvent>) {
        *self.pending.lock() = Some(done);
    }

    /// Makes the compute stream wait for the other stream's writes, once: every reader of
    /// the block's address goes through here (`Buffer::device_ptr`, the copy to the host).
    pub(crate) fn wait_pending(&self) -> Result<()> {
        let ev = self.pending.lock().take();
        if let Some(ev) = ev {
            let g = gpu(self.ordinal)?;
            g.stream()?
                .wait(&ev)
                .map_err(|e| cuda_err("wait for a collective", e))?;
        }
        Ok(())
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn ordinal(&self) -> usize {
        self.ordinal
    }
}

impl Drop for DeviceMem {
    fn drop(&mut self) {
        if self.class == 0 {
            return;
        }
        if let Some(pool) = self.home.take() {
            pool.give_back(self.ptr, self.class);
            return;
        }
        let Some(g) = gpu_if_started(self.ordinal) else {
            return;
        };
        // A block nobody read may still be written on the other stream: the work that
        // reuses it (on the compute stream) comes after those writes.
        let _ = self.wait_pending();
        let over = {
            let mut p = g.pool.lock();
            p.active -= self.class;
            // While this thread records a graph the block stays cached even over the cache's
            // limit: returning it to the driver would synchronize.
            if p.cached + self.class <= p.cache_limit || super::graph::capturing(self.ordinal) {
                p.free.entry(self.class).or_default().push(self.ptr);
                p.cached += self.class;
                None
            } else {
                Some(self.ptr)
            }
        };
        if let Some(ptr) = over {
            // Nothing to report to from a destructor: a failed free leaks the block.
            let _ = release(&g, vec![ptr]);
        }
    }
}

impl std::fmt::Debug for DeviceMem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DeviceMem(cuda:{}, {} bytes)", self.ordinal, self.len)
    }
}

/// Memory figures of one GPU, in bytes. Live blocks count by their size class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceMemoryStats {
    pub active: usize,
    pub peak: usize,
    pub cache: usize,
    pub limit: usize,
    pub cache_limit: usize,
    pub total: usize,
}

pub(crate) fn memory_stats(ordinal: usize) -> DeviceMemoryStats {
    match gpu_if_started(ordinal) {
        Some(g) => {
            let p = g.pool.lock();
            DeviceMemoryStats {
                active: p.active,
                peak: p.peak,
                cache: p.cached,
                limit: p.limit,
                cache_limit: p.cache_limit,
                total: p.total,
            }
        }
        None => DeviceMemoryStats::default(),
    }
}

/// Public memory controls of GPU memory, the counterparts of the host ones in
/// `ingot::memory`. Each takes the GPU's ordinal; figures of a GPU not used yet are 0.
pub mod api {
    use super::*;

    pub fn active_memory(ordinal: usize) -> usize {
        memory_stats(ordinal).active
    }
    pub fn peak_memory(ordinal: usize) -> usize {
        memory_stats(ordinal).peak
    }
    pub fn cache_memory(ordinal: usize) -> usize {
        memory_stats(ordinal).cache
    }
    pub fn reset_peak_memory(ordinal: usize) {
        if let Some(g) = gpu_if_started(ordinal) {
            let mut p = g.pool.lock();
            p.peak = p.active;
        }
    }
    /// Caps live arrays plus cache on GPU `ordinal`; returns the previous limit. An
    /// allocation past it fails with `Error::OutOfMemory`.
    pub fn set_memory_limit(ordinal: usize, bytes: usize) -> Result<usize> {
        let g = gpu(ordinal)?;
        let old = std::mem::replace(&mut g.pool.lock().limit, bytes);
        Ok(old)
    }
    /// Caps the cache of freed blocks; returns the previous limit. 0 turns it off.
    pub fn set_cache_limit(ordinal: usize, bytes: usize) -> Result<usize> {
        let g = gpu(ordinal)?;
        let (old, blocks) = {
            let mut p = g.pool.lock();
            let old = std::mem::replace(&mut p.cache_limit, bytes);
            let blocks = if p.cached > bytes {
                p.drain()
            } else {
                Vec::new()
            };
            (old, blocks)
        };
        release(&g, blocks)?;
        Ok(old)
    }
    /// Returns every cached block of GPU `ordinal` to the driver.
    pub fn clear_cache(ordinal: usize) -> Result<()> {
        match gpu_if_started(ordinal) {
            Some(g) => {
                let blocks = g.pool.lock().drain();
                release(&g, blocks)
            }
            None => Ok(()),
        }
    }
    pub fn memory_stats(ordinal: usize) -> DeviceMemoryStats {
        super::memory_stats(ordinal)
    }
}
