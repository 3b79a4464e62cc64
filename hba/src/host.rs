//! Host memory usable as DMA memory (feature `std`).
//!
//! [`HostRegion`] is page-aligned, zero-initialised host memory with the
//! [`DmaRegion`] access rules. It is the backing of the simulator's DMA arena
//! and will be what the VFIO backend maps into the IOMMU.
//!
//! Every access is an atomic operation on an aligned 32-bit word, so the same
//! memory may be read and written from several threads at once (the
//! simulator's threaded mode runs the firmware model on its own thread) without
//! a data race in the Rust memory model; byte-granular edges are done by
//! read-modify-write of the containing word. All words are accessed with the
//! same size, so accesses never mix sizes. Relaxed ordering is used for bulk
//! copies; callers order them with [`crate::DmaFence`] or the `Ordering` of
//! [`DmaRegion::load_u32`]/[`DmaRegion::store_u32`], as they would on hardware.
#![allow(unsafe_code)]

#[cfg(feature = "uring")]
pub mod uring;

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::dma::check_range;
use crate::{DmaError, DmaRegion, Iova};

const PAGE: usize = 4096;

/// One zeroed, page-aligned allocation. Only ever accessed through
/// `AtomicU32`s, never through references to its bytes.
struct Block {
    ptr: NonNull<u8>,
    layout: Layout,
}

// SAFETY: `Block` owns its allocation exclusively; every access to the bytes
// goes through `AtomicU32` operations (see `word`), which are safe to perform
// from any thread concurrently.
unsafe impl Send for Block {}
// SAFETY: as above: shared access is only ever atomic.
unsafe impl Sync for Block {}

impl Block {
    fn new(len: usize) -> Result<Block, DmaError> {
        // Round up so that every 4-byte word overlapping the region is inside
        // the allocation, and never allocate zero bytes.
        let size = len
            .max(1)
            .checked_next_multiple_of(PAGE)
            .ok_or(DmaError::NoMemory { len })?;
        let layout = Layout::from_size_align(size, PAGE).map_err(|_| DmaError::NoMemory { len })?;
        // SAFETY: `layout` has a non-zero size (at least one page).
        let raw = unsafe { alloc_zeroed(layout) };
        let ptr = NonNull::new(raw).ok_or(DmaError::NoMemory { len })?;
        Ok(Block { ptr, layout })
    }

    /// The atomic word at byte offset `word_off` (a multiple of 4).
    ///
    /// Callers guarantee `word_off + 4 <= self.layout.size()`.
    fn word(&self, word_off: usize) -> &AtomicU32 {
        debug_assert!(word_off.is_multiple_of(4) && word_off + 4 <= self.layout.size());
        // SAFETY: the pointer is within the live allocation (callers check
        // `word_off + 4 <= size`), 4-byte aligned (the base is page-aligned
        // and `word_off` is a multiple of 4), and the memory is only ever
        // accessed atomically as `AtomicU32`, so creating a shared reference to
        // an `AtomicU32` there aliases nothing non-atomic. The reference does
        // not outlive `&self`, which keeps the allocation alive.
        unsafe { AtomicU32::from_ptr(self.ptr.as_ptr().add(word_off).cast::<u32>()) }
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from `alloc_zeroed(self.layout)` and is freed
        // once, here, when the last `Arc<Block>` goes away.
        unsafe { dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

/// Zeroed host memory with an IOVA, shareable between threads.
///
/// Cloning shares the memory (it is reference-counted); [`HostRegion::slice`]
/// gives a window onto part of it with its own IOVA.
#[derive(Clone)]
pub struct HostRegion {
    block: Arc<Block>,
    /// Offset of this window within the block.
    base: usize,
    len: usize,
    iova: Iova,
}

impl core::fmt::Debug for HostRegion {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HostRegion")
            .field("iova", &self.iova)
            .field("len", &self.len)
            .field("base", &self.base)
            .finish()
    }
}

impl HostRegion {
    /// Allocate `len` zeroed bytes that the device will see at `iova`.
    pub fn new(len: usize, iova: Iova) -> Result<HostRegion, DmaError> {
        Ok(HostRegion {
            block: Arc::new(Block::new(len)?),
            base: 0,
            len,
            iova,
        })
    }

    /// A window of `len` bytes at `offset`, sharing this region's memory; its
    /// IOVA is this region's IOVA plus `offset`.
    pub fn slice(&self, offset: usize, len: usize) -> Result<HostRegion, DmaError> {
        check_range(offset, len, self.len)?;
        Ok(HostRegion {
            block: Arc::clone(&self.block),
            base: self.base + offset,
            len,
            iova: Iova(self.iova.0 + offset as u64),
        })
    }

    /// Whether `other` shares this region's memory.
    pub fn same_memory(&self, other: &HostRegion) -> bool {
        Arc::ptr_eq(&self.block, &other.block)
    }

    fn load_byte(&self, abs: usize) -> u8 {
        let w = self.block.word(abs & !3).load(Ordering::Relaxed);
        w.to_ne_bytes()[abs & 3]
    }

    fn store_byte(&self, abs: usize, byte: u8) {
        let word = self.block.word(abs & !3);
        let _ = word.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| {
            let mut b = w.to_ne_bytes();
            b[abs & 3] = byte;
            Some(u32::from_ne_bytes(b))
        });
    }
}

impl DmaRegion for HostRegion {
    fn iova(&self) -> Iova {
        self.iova
    }

    fn len(&self) -> usize {
        self.len
    }

    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), DmaError> {
        check_range(offset, buf.len(), self.len)?;
        let mut abs = self.base + offset;
        let mut out = &mut buf[..];
        while !out.is_empty() && !abs.is_multiple_of(4) {
            out[0] = self.load_byte(abs);
            out = &mut out[1..];
            abs += 1;
        }
        let mut chunks = out.chunks_exact_mut(4);
        for chunk in &mut chunks {
            let w = self.block.word(abs).load(Ordering::Relaxed);
            chunk.copy_from_slice(&w.to_ne_bytes());
            abs += 4;
        }
        for b in chunks.into_remainder() {
            *b = self.load_byte(abs);
            abs += 1;
        }
        Ok(())
    }

    fn write(&self, offset: usize, data: &[u8]) -> Result<(), DmaError> {
        check_range(offset, data.len(), self.len)?;
        let mut abs = self.base + offset;
        let mut rest = data;
        while !rest.is_empty() && !abs.is_multiple_of(4) {
            self.store_byte(abs, rest[0]);
            rest = &rest[1..];
            abs += 1;
        }
        let mut chunks = rest.chunks_exact(4);
        for chunk in &mut chunks {
            let w = u32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            self.block.word(abs).store(w, Ordering::Relaxed);
            abs += 4;
        }
        for &b in chunks.remainder() {
            self.store_byte(abs, b);
            abs += 1;
        }
        Ok(())
    }

    fn fill(&self, offset: usize, len: usize, byte: u8) -> Result<(), DmaError> {
        check_range(offset, len, self.len)?;
        let mut abs = self.base + offset;
        let end = abs + len;
        while abs < end && !abs.is_multiple_of(4) {
            self.store_byte(abs, byte);
            abs += 1;
        }
        let pattern = u32::from_ne_bytes([byte; 4]);
        while abs + 4 <= end {
            self.block.word(abs).store(pattern, Ordering::Relaxed);
            abs += 4;
        }
        while abs < end {
            self.store_byte(abs, byte);
            abs += 1;
        }
        Ok(())
    }

    fn load_u32(&self, offset: usize, order: Ordering) -> Result<u32, DmaError> {
        check_range(offset, 4, self.len)?;
        let abs = self.base + offset;
        if !abs.is_multiple_of(4) {
            return Err(DmaError::Misaligned { offset });
        }
        Ok(u32::from_le(self.block.word(abs).load(order)))
    }

    fn store_u32(&self, offset: usize, value: u32, order: Ordering) -> Result<(), DmaError> {
        check_range(offset, 4, self.len)?;
        let abs = self.base + offset;
        if !abs.is_multiple_of(4) {
            return Err(DmaError::Misaligned { offset });
        }
        self.block.word(abs).store(value.to_le(), order);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeroed_and_round_trips_at_every_alignment() {
        let r = HostRegion::new(64, Iova(0x1000)).unwrap();
        let mut buf = [0xFFu8; 64];
        r.read(0, &mut buf).unwrap();
        assert_eq!(buf, [0u8; 64]);
        for off in 0..8 {
            for len in 0..20 {
                let data: std::vec::Vec<u8> = (0..len).map(|i| (i * 7 + off + 1) as u8).collect();
                r.fill(0, 64, 0xA5).unwrap();
                r.write(off, &data).unwrap();
                let mut back = std::vec![0u8; len];
                r.read(off, &mut back).unwrap();
                assert_eq!(back, data, "off {off} len {len}");
                // Neighbours untouched.
                let mut all = [0u8; 64];
                r.read(0, &mut all).unwrap();
                assert!(all[..off].iter().all(|&b| b == 0xA5));
                assert!(all[off + len..].iter().all(|&b| b == 0xA5));
            }
        }
    }

    #[test]
    fn words_are_little_endian_and_checked() {
        let r = HostRegion::new(16, Iova(0)).unwrap();
        r.store_u32(4, 0xDEADDEAD, Ordering::Release).unwrap();
        let mut b = [0u8; 4];
        r.read(4, &mut b).unwrap();
        assert_eq!(b, [0xAD, 0xDE, 0xAD, 0xDE]);
        r.write(8, &[1, 2, 3, 4]).unwrap();
        assert_eq!(r.load_u32(8, Ordering::Acquire).unwrap(), 0x0403_0201);
        assert_eq!(
            r.load_u32(2, Ordering::Relaxed),
            Err(DmaError::Misaligned { offset: 2 })
        );
        assert!(matches!(
            r.load_u32(16, Ordering::Relaxed),
            Err(DmaError::OutOfBounds { .. })
        ));
        assert!(matches!(
            r.write(10, &[0; 7]),
            Err(DmaError::OutOfBounds { .. })
        ));
    }

    #[test]
    fn slices_share_memory_and_offset_the_iova() {
        let r = HostRegion::new(8192, Iova(0x10_0000)).unwrap();
        let s = r.slice(4096, 100).unwrap();
        assert_eq!(s.iova(), Iova(0x10_1000));
        assert_eq!(s.len(), 100);
        assert!(s.same_memory(&r));
        s.write(1, b"abc").unwrap();
        let mut b = [0u8; 3];
        r.read(4097, &mut b).unwrap();
        assert_eq!(&b, b"abc");
        assert!(r.slice(8000, 200).is_err());
        assert_eq!(r.iova_at(8192), Some(Iova(0x10_2000)));
        assert_eq!(r.iova_at(8193), None);
    }

    #[test]
    fn concurrent_writers_on_disjoint_bytes_do_not_lose_updates() {
        let r = HostRegion::new(64, Iova(0)).unwrap();
        let threads: std::vec::Vec<_> = (0..4)
            .map(|t| {
                let r = r.clone();
                std::thread::spawn(move || {
                    for i in 0..10_000u32 {
                        // Each thread owns every fourth byte of the same words.
                        for k in 0..16 {
                            r.write(k * 4 + t, &[(i as u8).wrapping_add(t as u8)])
                                .unwrap();
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let mut all = [0u8; 64];
        r.read(0, &mut all).unwrap();
        for (i, b) in all.iter().enumerate() {
            assert_eq!(*b, (9_999u32 as u8).wrapping_add((i % 4) as u8));
        }
    }
}
