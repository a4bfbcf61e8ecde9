//! Memory behind arrays: host bytes (16-byte aligned owned allocations, anonymous mappings,
//! or a memory-mapped file) and/or a copy in GPU memory. Either side is filled lazily from
//! the other the first time it is needed, once: buffers are immutable once shared, so the
//! two copies never disagree (unified-memory semantics without managed memory).

use crate::dtype::Element;
use crate::{Error, Result};
use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::collections::VecDeque;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use crate::backend::cuda::DeviceMem;

// malloc's own alignment: at most this, `alloc_zeroed` is calloc, which maps fresh zero
// pages for big buffers; a larger alignment makes it memset (and fault in) every byte on
// one thread first. Elements need at most 8.
const ALIGN: usize = 16;

/// The layout of an owned allocation of `nbytes`: its size rounded up to the alignment,
/// so that `alloc_zeroed` is calloc even for a scalar (below the alignment in size, it
/// would be posix_memalign and a memset, several times slower). Malloc rounds so anyway.
fn owned_layout(nbytes: usize) -> std::result::Result<Layout, std::alloc::LayoutError> {
    Layout::from_size_align(nbytes.next_multiple_of(ALIGN), ALIGN)
}

// Large buffers are anonymous mappings advised to use 2 MiB pages, as NumPy does: a fresh
// 128 MiB output then takes 64 page faults instead of 32768, which was most of an
// elementwise kernel's time. Mapped with 2 MiB of slack so the data starts on a huge page.
const HUGE_MIN: usize = 4 << 20;
const HUGE_PAGE: usize = 2 << 20;

enum Inner {
    Owned {
        ptr: NonNull<u8>,
        len: usize,
    },
    Mapped {
        map: Arc<memmap2::Mmap>,
        start: usize,
        len: usize,
    },
    Anon {
        // Taken out in Drop, to go to the cache instead of being unmapped.
        map: std::mem::ManuallyDrop<memmap2::MmapMut>,
        start: usize,
        len: usize,
    },
}

/// A block of bytes on the host, on a GPU, or both. Immutable once shared; kernels write only
/// into buffers they allocated or that were donated to them (held by nobody else).
pub struct Buffer {
    /// Host bytes; empty for a GPU kernel's output until the host reads it.
    host: OnceLock<Inner>,
    /// The GPU copy; empty for a host buffer until a GPU kernel reads it.
    dev: OnceLock<DeviceMem>,
    len: usize,
}

// The buffer is plain bytes; all access goes through & or &mut as usual.
unsafe impl Send for Buffer {}
unsafe impl Sync for Buffer {}

impl Buffer {
    /// A zeroed buffer of `nbytes`. Large requests that cannot be met are an error.
    pub fn zeroed(nbytes: usize) -> Result<Buffer> {
        if nbytes == 0 {
            return Ok(Buffer::host(Inner::Owned {
                ptr: NonNull::dangling(),
                len: 0,
            }));
        }
        if nbytes >= HUGE_MIN {
            return Self::anon(nbytes);
        }
        let layout = owned_layout(nbytes).map_err(|_| Error::OutOfMemory {
            op: "alloc".into(),
            msg: format!("{nbytes} bytes"),
        })?;
        // alloc_zeroed gets fresh pages from the OS for large sizes, so zeroing is nearly free.
        let ptr = unsafe { alloc_zeroed(layout) };
        let ptr = NonNull::new(ptr).ok_or_else(|| Error::OutOfMemory {
            op: "alloc".into(),
            msg: format!("could not allocate {nbytes} bytes on the host"),
        })?;
        track_alloc(nbytes);
        Ok(Buffer::host(Inner::Owned { ptr, len: nbytes }))
    }

    /// A buffer of `nbytes` whose contents are unspecified (old data of a freed buffer), for
    /// kernels that write every byte before anyone reads it. Large sizes come from the cache
    /// of freed buffers when one fits, which skips the OS zeroing fresh pages. Debug builds
    /// fill it with 0xff bytes (NaN, -1) so a kernel that misses an element fails its tests.
    pub fn uninit(nbytes: usize) -> Result<Buffer> {
        let mut buf = match take_cached(nbytes) {
            Some(b) => b,
            None => Self::zeroed(nbytes)?,
        };
        if cfg!(debug_assertions) {
            buf.as_bytes_mut().fill(0xff);
        }
        Ok(buf)
    }

    /// A zeroed anonymous mapping of `nbytes`, starting on a huge page. It maps a whole
    /// size class (`map_len`), so the cache can hand it to any request of that class.
    fn anon(nbytes: usize) -> Result<Buffer> {
        let oom = || Error::OutOfMemory {
            op: "alloc".into(),
            msg: format!("could not allocate {nbytes} bytes on the host"),
        };
        let total = map_len(nbytes).ok_or_else(oom)?;
        let map = memmap2::MmapMut::map_anon(total).map_err(|_| oom())?;
        let buf = Self::over_map(map, nbytes);
        #[cfg(target_os = "linux")]
        if let Some(Inner::Anon { map, start, .. }) = buf.host.get() {
            // Only a hint: without transparent huge pages the buffer works as before.
            let _ = map.advise_range(memmap2::Advice::HugePage, *start, nbytes);
        }
        Ok(buf)
    }

    /// `nbytes` of an anonymous mapping of `nbytes`'s size class, from its first huge page.
    fn over_map(map: memmap2::MmapMut, nbytes: usize) -> Buffer {
        let base = map.as_ptr() as usize;
        let start = base.next_multiple_of(HUGE_PAGE) - base;
        track_alloc(nbytes);
        Buffer::host(Inner::Anon {
            map: std::mem::ManuallyDrop::new(map),
            start,
            len: nbytes,
        })
    }

    /// A buffer holding a copy of `data`.
    pub fn from_slice<T: Element>(data: &[T]) -> Result<Buffer> {
        let nbytes = std::mem::size_of_val(data);
        let mut b = Buffer::uninit(nbytes)?;
        unsafe {
            std::ptr::copy_nonoverlapping(
                data.as_ptr() as *const u8,
                b.as_bytes_mut().as_mut_ptr(),
                nbytes,
            );
        }
        Ok(b)
    }

    /// A buffer that reads `len` bytes at `start` of a mapped file. The caller has checked
    /// the range; the start must be aligned for the element type that will read it.
    pub fn mapped(map: Arc<memmap2::Mmap>, start: usize, len: usize) -> Buffer {
        debug_assert!(start + len <= map.len());
        Buffer::host(Inner::Mapped { map, start, len })
    }

    fn host(inner: Inner) -> Buffer {
        let len = match &inner {
            Inner::Owned { len, .. } | Inner::Mapped { len, .. } | Inner::Anon { len, .. } => *len,
        };
        Buffer {
            host: OnceLock::from(inner),
            dev: OnceLock::new(),
            len,
        }
    }

    /// A buffer whose only copy is in GPU memory (a GPU kernel's output).
    pub(crate) fn on_device(mem: DeviceMem) -> Buffer {
        Buffer {
            len: mem.len(),
            host: OnceLock::new(),
            dev: OnceLock::from(mem),
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the bytes are in host memory now (reading them elsewhere would copy).
    pub fn is_on_host(&self) -> bool {
        self.host.get().is_some()
    }

    /// The address of the GPU copy of the bytes, if there is one (to see that an update
    /// happened in place).
    pub fn device_address(&self) -> Option<u64> {
        self.dev.get().map(|d| d.ptr())
    }

    /// Whether the GPU copy is memory of a CUDA graph's private pool (a graph's output).
    pub(crate) fn in_graph_pool(&self) -> bool {
        self.dev.get().is_some_and(|d| d.is_pooled())
    }

    /// The GPU holding a copy of the bytes, if any.
    pub fn device_ordinal(&self) -> Option<usize> {
        self.dev.get().map(|d| d.ordinal())
    }

    /// Copies the bytes to the host if only a GPU holds them (waiting for the kernels that
    /// write them). Everything that reads host bytes goes through here first.
    pub fn ensure_host(&self) -> Result<()> {
        if self.host.get().is_some() {
            return Ok(());
        }
        let dev = self
            .dev
            .get()
            .ok_or_else(|| Error::invalid("buffer", "buffer holds no bytes"))?;
        let mut buf = Self::uninit(self.len)?;
        dev.copy_to_host(buf.host_bytes_mut())?;
        let inner = buf.host.take().expect("a fresh buffer is on the host");
        // Another thread may have copied it meanwhile; its copy is the same bytes.
        let _ = self.host.set(inner);
        Ok(())
    }

    /// The buffer's address on GPU `ordinal`, copying the bytes there first if they are only
    /// on the host.
    pub(crate) fn device_ptr(&self, ordinal: usize) -> Result<u64> {
        if let Some(d) = self.dev.get() {
            if d.ordinal() == ordinal {
                d.wait_pending()?;
                return Ok(d.ptr());
            }
            return Err(Error::unsupported(
                "transfer",
                format!(
                    "a buffer on cuda:{} is needed on cuda:{ordinal}; moving between GPUs is not built yet",
                    d.ordinal()
                ),
            ));
        }
        let mem = DeviceMem::upload(ordinal, self.as_bytes())?;
        let _ = self.dev.set(mem);
        Ok(self.dev.get().expect("just set").ptr())
    }

    /// The address on GPU `ordinal` of a buffer a kernel will write (one nobody else holds):
    /// the bytes move there first if they are only on the host, and the host copy, stale
    /// after the write, is dropped.
    pub(crate) fn device_ptr_mut(&mut self, ordinal: usize) -> Result<u64> {
        let p = self.device_ptr(ordinal)?;
        self.host.take();
        Ok(p)
    }

    pub fn as_bytes(&self) -> &[u8] {
        if self.host.get().is_none() {
            // Reads that can fail call ensure_host first and report the error; this is the
            // last resort for a reader that did not.
            if let Err(e) = self.ensure_host() {
                panic!("could not copy a GPU buffer to the host: {e}");
            }
        }
        self.host_bytes()
    }

    fn host_bytes(&self) -> &[u8] {
        match self.host.get().expect("host bytes present") {
            Inner::Owned { ptr, len } => unsafe { std::slice::from_raw_parts(ptr.as_ptr(), *len) },
            Inner::Mapped { map, start, len } => &map[*start..*start + *len],
            Inner::Anon { map, start, len } => &map[*start..*start + *len],
        }
    }

    /// Mutable bytes; a mapped buffer is read-only and gives an empty slice. A GPU copy,
    /// stale once the host writes, is dropped.
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        if self.host.get().is_none() {
            if let Err(e) = self.ensure_host() {
                panic!("could not copy a GPU buffer to the host: {e}");
            }
        }
        if self.dev.get().is_some() {
            self.dev.take();
        }
        self.host_bytes_mut()
    }

    fn host_bytes_mut(&mut self) -> &mut [u8] {
        match self.host.get_mut().expect("host bytes present") {
            Inner::Owned { ptr, len } => unsafe {
                std::slice::from_raw_parts_mut(ptr.as_ptr(), *len)
            },
            Inner::Anon { map, start, len } => &mut map[*start..*start + *len],
            Inner::Mapped { .. } => &mut [],
        }
    }

    pub fn is_mapped(&self) -> bool {
        matches!(self.host.get(), Some(Inner::Mapped { .. }))
    }

    /// The buffer's elements as `T`. Panics only on a broken internal invariant (wrong size
    /// or alignment), never on user input: dtypes are checked before kernels run.
    pub fn as_slice<T: Element>(&self) -> &[T] {
        let bytes = self.as_bytes();
        let size = std::mem::size_of::<T>();
        assert!(bytes.as_ptr() as usize % std::mem::align_of::<T>() == 0 || bytes.is_empty());
        let ptr = if bytes.is_empty() {
            NonNull::<T>::dangling().as_ptr() as *const T
        } else {
            bytes.as_ptr() as *const T
        };
        // Safety: every Element is plain data (bool bytes are kept 0/1), aligned as checked.
        unsafe { std::slice::from_raw_parts(ptr, bytes.len() / size) }
    }

    pub fn as_slice_mut<T: Element>(&mut self) -> &mut [T] {
        let size = std::mem::size_of::<T>();
        let bytes = self.as_bytes_mut();
        let n = bytes.len() / size;
        let ptr = if bytes.is_empty() {
            NonNull::<T>::dangling().as_ptr()
        } else {
            bytes.as_mut_ptr() as *mut T
        };
        assert!(ptr as usize % std::mem::align_of::<T>() == 0);
        unsafe { std::slice::from_raw_parts_mut(ptr, n) }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        match self {
            Inner::Owned { ptr, len } => {
                if *len > 0 {
                    ACTIVE.fetch_sub(*len, Relaxed);
                    let layout = owned_layout(*len).expect("checked when allocated");
                    unsafe { dealloc(ptr.as_ptr(), layout) };
                }
            }
            Inner::Anon { map, len, .. } => {
                ACTIVE.fetch_sub(*len, Relaxed);
                // Safety: the buffer is being dropped; `map` is not touched again.
                give_to_cache(unsafe { std::mem::ManuallyDrop::take(map) });
            }
            Inner::Mapped { .. } => {}
        }
    }
}

// ---- host memory accounting and the cache of freed large buffers ---------------------------

static ACTIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// Freed anonymous mappings, oldest first, kept for reuse up to `limit` bytes in all.
struct HostCache {
    maps: VecDeque<memmap2::MmapMut>,
    bytes: usize,
    limit: usize,
}

impl HostCache {
    /// Takes out the oldest mappings until at most `bytes` are held; the caller drops
    /// (unmaps) them after releasing the lock, since unmapping is slow.
    fn evict_to(&mut self, bytes: usize) -> Vec<memmap2::MmapMut> {
        let mut evicted = Vec::new();
        while self.bytes > bytes {
            let Some(m) = self.maps.pop_front() else {
                break;
            };
            self.bytes -= m.len();
            evicted.push(m);
        }
        evicted
    }
}

/// Freed large buffers kept at most: enough for the temporaries of a step over arrays of a
/// few hundred MiB, small beside a machine's memory. `set_cache_limit` changes it.
const DEFAULT_CACHE_LIMIT: usize = 2 << 30;

static CACHE: parking_lot::Mutex<HostCache> = parking_lot::Mutex::new(HostCache {
    maps: VecDeque::new(),
    bytes: 0,
    limit: DEFAULT_CACHE_LIMIT,
});

fn track_alloc(nbytes: usize) {
    let now = ACTIVE.fetch_add(nbytes, Relaxed) + nbytes;
    PEAK.fetch_max(now, Relaxed);
}

/// The mapping length for a large buffer of `nbytes`: its size class (a multiple of the
/// huge page) plus a huge page of slack to align the start.
fn map_len(nbytes: usize) -> Option<usize> {
    nbytes
        .checked_next_multiple_of(HUGE_PAGE)?
        .checked_add(HUGE_PAGE)
}

fn give_to_cache(map: memmap2::MmapMut) {
    let len = map.len();
    let evicted = {
        let mut c = CACHE.lock();
        if len > c.limit {
            return; // unmapped as it drops
        }
        let limit = c.limit;
        let evicted = c.evict_to(limit - len);
        c.bytes += len;
        c.maps.push_back(map);
        evicted
    };
    drop(evicted);
}

/// A cached mapping of `nbytes`'s size class, newest first (its pages are likelier cached).
fn take_cached(nbytes: usize) -> Option<Buffer> {
    if nbytes < HUGE_MIN {
        return None;
    }
    let want = map_len(nbytes)?;
    let map = {
        let mut c = CACHE.lock();
        let i = c.maps.iter().rposition(|m| m.len() == want)?;
        let m = c.maps.remove(i)?;
        c.bytes -= m.len();
        m
    };
    Some(Buffer::over_map(map, nbytes))
}

/// Bytes of host memory held by live arrays and kernel outputs (not memory-mapped files,
/// not the cache).
pub fn active_memory() -> usize {
    ACTIVE.load(Relaxed)
}

/// The most `active_memory` has been since the start or the last `reset_peak_memory`.
pub fn peak_memory() -> usize {
    PEAK.load(Relaxed)
}

pub fn reset_peak_memory() {
    PEAK.store(ACTIVE.load(Relaxed), Relaxed);
}

/// Bytes of freed large buffers kept for reuse.
pub fn cache_memory() -> usize {
    CACHE.lock().bytes
}

/// Sets the most the cache keeps, freeing what is over it; returns the previous limit.
/// 0 turns the cache off.
pub fn set_cache_limit(bytes: usize) -> usize {
    let (old, evicted) = {
        let mut c = CACHE.lock();
        let old = std::mem::replace(&mut c.limit, bytes);
        (old, c.evict_to(bytes))
    };
    drop(evicted);
    old
}

/// Returns every cached buffer to the OS.
pub fn clear_cache() {
    let maps = {
        let mut c = CACHE.lock();
        c.bytes = 0;
        std::mem::take(&mut c.maps)
    };
    drop(maps);
}

impl std::fmt::Debug for Buffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Buffer({} bytes{})",
            self.len(),
            if self.is_mapped() { ", mapped" } else { "" }
        )
    }
}
