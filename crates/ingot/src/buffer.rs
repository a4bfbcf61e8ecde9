//! Host memory behind arrays: 16-byte aligned owned allocations, or a memory-mapped file.

use crate::dtype::Element;
use crate::{Error, Result};
use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::ptr::NonNull;
use std::sync::Arc;

// malloc's own alignment: at most this, `alloc_zeroed` is calloc, which maps fresh zero
// pages for big buffers; a larger alignment makes it memset (and fault in) every byte on
// one thread first. Elements need at most 8.
const ALIGN: usize = 16;

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
        map: memmap2::MmapMut,
        start: usize,
        len: usize,
    },
}

/// A block of host bytes. Immutable once shared; kernels write only into buffers they
/// allocated or that were donated to them (held by nobody else).
pub struct Buffer {
    inner: Inner,
}

// The buffer is plain bytes; all access goes through & or &mut as usual.
unsafe impl Send for Buffer {}
unsafe impl Sync for Buffer {}

impl Buffer {
    /// A zeroed buffer of `nbytes`. Large requests that cannot be met are an error.
    pub fn zeroed(nbytes: usize) -> Result<Buffer> {
        if nbytes == 0 {
            return Ok(Buffer {
                inner: Inner::Owned {
                    ptr: NonNull::dangling(),
                    len: 0,
                },
            });
        }
        if nbytes >= HUGE_MIN {
            return Self::anon(nbytes);
        }
        let layout = Layout::from_size_align(nbytes, ALIGN).map_err(|_| Error::OutOfMemory {
            op: "alloc".into(),
            msg: format!("{nbytes} bytes"),
        })?;
        // alloc_zeroed gets fresh pages from the OS for large sizes, so zeroing is nearly free.
        let ptr = unsafe { alloc_zeroed(layout) };
        let ptr = NonNull::new(ptr).ok_or_else(|| Error::OutOfMemory {
            op: "alloc".into(),
            msg: format!("could not allocate {nbytes} bytes on the host"),
        })?;
        Ok(Buffer {
            inner: Inner::Owned { ptr, len: nbytes },
        })
    }

    /// A zeroed anonymous mapping of `nbytes`, starting on a huge page.
    fn anon(nbytes: usize) -> Result<Buffer> {
        let oom = || Error::OutOfMemory {
            op: "alloc".into(),
            msg: format!("could not allocate {nbytes} bytes on the host"),
        };
        let total = nbytes.checked_add(HUGE_PAGE).ok_or_else(oom)?;
        let map = memmap2::MmapMut::map_anon(total).map_err(|_| oom())?;
        let base = map.as_ptr() as usize;
        let start = base.next_multiple_of(HUGE_PAGE) - base;
        #[cfg(target_os = "linux")]
        {
            // Only a hint: without transparent huge pages the buffer works as before.
            let _ = map.advise_range(memmap2::Advice::HugePage, start, nbytes);
        }
        Ok(Buffer {
            inner: Inner::Anon {
                map,
                start,
                len: nbytes,
            },
        })
    }

    /// A buffer holding a copy of `data`.
    pub fn from_slice<T: Element>(data: &[T]) -> Result<Buffer> {
        let nbytes = std::mem::size_of_val(data);
        let mut b = Buffer::zeroed(nbytes)?;
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
        Buffer {
            inner: Inner::Mapped { map, start, len },
        }
    }

    pub fn len(&self) -> usize {
        match &self.inner {
            Inner::Owned { len, .. } | Inner::Mapped { len, .. } | Inner::Anon { len, .. } => *len,
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn as_bytes(&self) -> &[u8] {
        match &self.inner {
            Inner::Owned { ptr, len } => unsafe { std::slice::from_raw_parts(ptr.as_ptr(), *len) },
            Inner::Mapped { map, start, len } => &map[*start..*start + *len],
            Inner::Anon { map, start, len } => &map[*start..*start + *len],
        }
    }

    /// Mutable bytes; a mapped buffer is read-only and gives an error.
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        match &mut self.inner {
            Inner::Owned { ptr, len } => unsafe {
                std::slice::from_raw_parts_mut(ptr.as_ptr(), *len)
            },
            Inner::Anon { map, start, len } => &mut map[*start..*start + *len],
            Inner::Mapped { .. } => &mut [],
        }
    }

    pub fn is_mapped(&self) -> bool {
        matches!(self.inner, Inner::Mapped { .. })
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

impl Drop for Buffer {
    fn drop(&mut self) {
        if let Inner::Owned { ptr, len } = self.inner {
            if len > 0 {
                unsafe { dealloc(ptr.as_ptr(), Layout::from_size_align_unchecked(len, ALIGN)) };
            }
        }
    }
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
