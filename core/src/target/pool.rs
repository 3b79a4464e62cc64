//! The core's buffer pool: chunks of one caller-provided bus-addressable memory.
//!
//! A command takes a contiguous run of chunks for parameter data, emulated
//! data-in and buffered backend I/O; a run is one [`Seg`] on the wire.

use core::fmt;

use crate::backend::IoBuf;
use crate::memory::{Memory, MemoryError, Seg};

/// Most chunks a pool manages.
pub const MAX_CHUNKS: usize = 256;

/// Why a buffer pool could not be built.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum BufferPoolError {
    /// The chunk size is not a power of two of at least 512 bytes.
    BadChunkSize,
    /// The memory holds fewer than two chunks.
    TooSmall,
    /// The memory has no bus address.
    NoBusAddress,
}

impl fmt::Display for BufferPoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BufferPoolError::BadChunkSize => "chunk size must be a power of two of at least 512",
            BufferPoolError::TooSmall => "buffer memory holds fewer than two chunks",
            BufferPoolError::NoBusAddress => "buffer memory has no bus address",
        })
    }
}

impl core::error::Error for BufferPoolError {}

/// A run of chunks held by a command.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct PoolBuf {
    pub first: u16,
    pub chunks: u16,
}

/// Chunks of a caller-provided [`Memory`] (at most [`MAX_CHUNKS`]; memory past
/// that is unused).
pub struct BufferPool<'a> {
    mem: &'a dyn Memory,
    chunk: u32,
    chunks: u16,
    free_count: u16,
    /// Bit set = chunk free.
    free: [u32; MAX_CHUNKS / 32],
}

impl fmt::Debug for BufferPool<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "BufferPool({} of {} chunks of {} free)",
            self.free_count, self.chunks, self.chunk
        )
    }
}

impl<'a> BufferPool<'a> {
    /// A pool of `chunk`-byte chunks over `mem`.
    pub fn new(mem: &'a dyn Memory, chunk: usize) -> Result<BufferPool<'a>, BufferPoolError> {
        if !chunk.is_power_of_two() || !(512..=(1 << 24)).contains(&chunk) {
            return Err(BufferPoolError::BadChunkSize);
        }
        let chunks = (mem.len() / chunk).min(MAX_CHUNKS);
        if chunks < 2 {
            return Err(BufferPoolError::TooSmall);
        }
        if mem.bus_addr(0).is_none() {
            return Err(BufferPoolError::NoBusAddress);
        }
        let mut free = [0u32; MAX_CHUNKS / 32];
        for c in 0..chunks {
            free[c / 32] |= 1 << (c % 32);
        }
        Ok(BufferPool {
            mem,
            chunk: chunk as u32,
            chunks: chunks as u16,
            free_count: chunks as u16,
            free,
        })
    }

    /// Chunk size in bytes.
    pub fn chunk_size(&self) -> u32 {
        self.chunk
    }

    /// Total bytes the pool manages.
    pub fn capacity(&self) -> u64 {
        u64::from(self.chunk) * u64::from(self.chunks)
    }

    /// Chunks free now.
    pub fn free_chunks(&self) -> usize {
        usize::from(self.free_count)
    }

    /// Number of chunks.
    pub fn chunks(&self) -> usize {
        usize::from(self.chunks)
    }

    pub(crate) fn memory(&self) -> &'a dyn Memory {
        self.mem
    }

    fn is_free(&self, c: usize) -> bool {
        self.free[c / 32] & (1 << (c % 32)) != 0
    }

    fn set(&mut self, c: usize, free: bool) {
        if free {
            self.free[c / 32] |= 1 << (c % 32);
        } else {
            self.free[c / 32] &= !(1 << (c % 32));
        }
    }

    /// Chunks needed for `bytes` (at least one).
    pub(crate) fn chunks_for(&self, bytes: u64) -> u64 {
        bytes.div_ceil(u64::from(self.chunk)).max(1)
    }

    /// A contiguous run holding `bytes`, if one is free now. `bytes` above the
    /// capacity never fits (callers check against [`Self::capacity`] first).
    pub(crate) fn alloc(&mut self, bytes: u64) -> Option<PoolBuf> {
        let n = usize::try_from(self.chunks_for(bytes)).ok()?;
        if n > usize::from(self.free_count) {
            return None;
        }
        let total = usize::from(self.chunks);
        let mut start = 0;
        while start + n <= total {
            // Skip whole used words quickly.
            if start % 32 == 0 && self.free[start / 32] == 0 {
                start += 32;
                continue;
            }
            if !self.is_free(start) {
                start += 1;
                continue;
            }
            match (start..start + n).find(|&c| !self.is_free(c)) {
                Some(used) => start = used + 1,
                None => {
                    for c in start..start + n {
                        self.set(c, false);
                    }
                    self.free_count -= n as u16;
                    return Some(PoolBuf {
                        first: start as u16,
                        chunks: n as u16,
                    });
                }
            }
        }
        None
    }

    /// Give a run back.
    pub(crate) fn release(&mut self, buf: PoolBuf) {
        let first = usize::from(buf.first);
        let end = (first + usize::from(buf.chunks)).min(usize::from(self.chunks));
        for c in first..end {
            if !self.is_free(c) {
                self.set(c, true);
                self.free_count += 1;
            }
        }
    }

    pub(crate) fn offset(&self, buf: PoolBuf) -> usize {
        usize::from(buf.first) * self.chunk as usize
    }

    pub(crate) fn len(&self, buf: PoolBuf) -> usize {
        usize::from(buf.chunks) * self.chunk as usize
    }

    /// The bytes `at .. at + len` of a run as a wire segment.
    pub(crate) fn seg(&self, buf: PoolBuf, at: usize, len: usize) -> Seg {
        let addr = self.mem.bus_addr(self.offset(buf) + at).unwrap_or(0);
        Seg {
            addr,
            len: len as u32,
        }
    }

    /// The bytes `at .. at + len` of a run as a backend buffer.
    pub(crate) fn io_buf(&self, buf: PoolBuf, at: usize, len: usize) -> IoBuf<'a> {
        IoBuf {
            mem: self.mem,
            offset: self.offset(buf) + at,
            len,
        }
    }

    pub(crate) fn read(&self, buf: PoolBuf, at: usize, out: &mut [u8]) -> Result<(), MemoryError> {
        crate::memory::check_range(at, out.len(), self.len(buf))?;
        self.mem.read(self.offset(buf) + at, out)
    }

    pub(crate) fn write(&self, buf: PoolBuf, at: usize, data: &[u8]) -> Result<(), MemoryError> {
        crate::memory::check_range(at, data.len(), self.len(buf))?;
        self.mem.write(self.offset(buf) + at, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::SliceMemory;

    #[test]
    fn contiguous_runs() {
        let mut m = [0u8; 8 * 512];
        let mem = SliceMemory::new(&mut m, 0x8000);
        let mut p = BufferPool::new(&mem, 512).unwrap();
        assert_eq!(p.chunks(), 8);
        let a = p.alloc(600).unwrap();
        assert_eq!((a.first, a.chunks), (0, 2));
        let b = p.alloc(1).unwrap();
        assert_eq!((b.first, b.chunks), (2, 1));
        let c = p.alloc(5 * 512).unwrap();
        assert_eq!(c.first, 3);
        assert_eq!(p.free_chunks(), 0);
        assert!(p.alloc(1).is_none());
        p.release(a);
        p.release(c);
        // 2 free at 0..2, 5 free at 3..8: a run of 6 does not fit, 5 does.
        assert!(p.alloc(6 * 512).is_none());
        let d = p.alloc(5 * 512).unwrap();
        assert_eq!(d.first, 3);
        assert_eq!(
            p.seg(d, 10, 20),
            Seg {
                addr: 0x8000 + 3 * 512 + 10,
                len: 20
            }
        );
        assert!(BufferPool::new(&mem, 500).is_err());
    }
}
