//! Host memory usable as DMA memory (feature `std`).
//!
//! [`HostRegion`] is page-aligned, zero-initialised host memory with the
//! [`DmaRegion`] access rules. It is the backing of the simulator's DMA arena
//! and will be what the VFIO backend maps into the IOMMU.
//!
//! Every access is an atomic operation on an aligned machine word
//! ([`AtomicUsize`]: 8 bytes on 64-bit hosts), so the same memory may be read
//! and written from several threads at once (the simulator's threaded mode
//! runs the firmware model on its own thread) without a data race in the Rust
//! memory model. All accesses have the same size — Rust does not allow racing
//! atomic accesses of different sizes to the same memory — so whatever is
//! narrower than a word (the 32-bit [`DmaRegion::load_u32`] and
//! [`DmaRegion::store_u32`], the bytes at either end of a copy that does not
//! start or end on a word boundary) is done on the containing word: a load
//! that keeps the bytes asked for, or a compare-exchange that replaces only
//! them, so a concurrent writer of the word's other bytes loses nothing.
//!
//! A bulk copy checks its range once and then moves whole words in a tight
//! loop. What another thread may see of a copy in progress: each word is
//! either all old or all new (a 32-bit word, which is never split across two
//! machine words, is too); words may become visible in any order. Relaxed
//! ordering is used for bulk copies; callers order them with
//! [`crate::DmaFence`] or the `Ordering` of `load_u32`/`store_u32`, as they
//! would on hardware.
#![allow(unsafe_code)]

#[cfg(feature = "uring")]
pub mod uring;

use core::mem::{MaybeUninit, size_of};
use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::dma::check_range;
use crate::{DmaError, DmaRegion, Iova};

const PAGE: usize = 4096;

/// Bytes per atomic access: the machine word.
const WORD: usize = size_of::<usize>();

/// Words per step of the bulk copy loops.
const UNROLL: usize = 8;

// A page holds whole words, and a 32-bit word at a 4-aligned offset never
// straddles two machine words.
const _: () = assert!(PAGE.is_multiple_of(WORD) && WORD.is_multiple_of(4));

/// One zeroed, page-aligned allocation. Only ever accessed through
/// `AtomicUsize`s, never through references to its bytes.
struct Block {
    ptr: NonNull<u8>,
    layout: Layout,
}

// SAFETY: `Block` owns its allocation exclusively; every access to the bytes
// goes through `AtomicUsize` operations (see `words`), which are safe to
// perform from any thread concurrently.
unsafe impl Send for Block {}
// SAFETY: as above: shared access is only ever atomic.
unsafe impl Sync for Block {}

impl Block {
    fn new(len: usize) -> Result<Block, DmaError> {
        // Round up to whole pages (so whole words: every word overlapping the
        // region is inside the allocation), and never allocate zero bytes.
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

    /// The whole allocation as atomic words.
    fn all_words(&self) -> &[AtomicUsize] {
        // SAFETY: the pointer is the start of a live allocation of
        // `layout.size()` bytes, a multiple of `PAGE` and so of `WORD`;
        // it is page-aligned, so aligned for `AtomicUsize`, which has the
        // size and alignment of `usize`. The memory was zero-initialised, so
        // every word holds a valid value. It is only ever accessed through
        // `AtomicUsize`s of this one size (never through a non-atomic
        // reference or a differently sized atomic), so a shared slice of
        // them aliases nothing non-atomic, and concurrent use from other
        // threads is atomic. The slice does not outlive `&self`, which keeps
        // the allocation alive.
        unsafe {
            core::slice::from_raw_parts(
                self.ptr.as_ptr().cast::<AtomicUsize>(),
                self.layout.size() / WORD,
            )
        }
    }

    /// The words overlapping the bytes `[abs, abs + len)` of the block, with
    /// the offset of byte `abs` within the first of them.
    ///
    /// Panics if the bytes are outside the allocation; `HostRegion` checks
    /// every range against its window (which lies inside the allocation)
    /// before it gets here, so this cannot happen.
    #[inline]
    fn span(&self, abs: usize, len: usize) -> (&[AtomicUsize], usize) {
        let first = abs / WORD;
        let end = (abs + len).div_ceil(WORD);
        (&self.all_words()[first..end], abs % WORD)
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from `alloc_zeroed(self.layout)` and is freed
        // once, here, when the last `Arc<Block>` goes away.
        unsafe { dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

/// The ordering of the load part of a read-modify-write whose store part has
/// ordering `order` (`fetch_update` allows neither `Release` nor `AcqRel`
/// there).
fn load_part(order: Ordering) -> Ordering {
    match order {
        Ordering::Acquire | Ordering::AcqRel => Ordering::Acquire,
        Ordering::SeqCst => Ordering::SeqCst,
        _ => Ordering::Relaxed,
    }
}

/// Replace bytes `[at, at + bytes.len())` of `word` (in memory order) with
/// `bytes`, leaving its other bytes as they are even if another thread writes
/// them at the same time. `order` is the ordering of the store.
#[inline]
fn merge(word: &AtomicUsize, at: usize, bytes: &[u8], order: Ordering) {
    let (mut value, mut mask) = ([0u8; WORD], [0u8; WORD]);
    value[at..at + bytes.len()].copy_from_slice(bytes);
    mask[at..at + bytes.len()].fill(0xFF);
    merge_bits(
        word,
        usize::from_ne_bytes(value),
        usize::from_ne_bytes(mask),
        order,
    );
}

/// Replace the bits of `word` under `mask` with those of `value` (which has no
/// bits outside `mask`), atomically with respect to other writers of the word.
#[inline]
fn merge_bits(word: &AtomicUsize, value: usize, mask: usize, order: Ordering) {
    let _ = word.fetch_update(order, load_part(order), |w| Some((w & !mask) | value));
}

/// Where the 32-bit word at byte `at` of a machine word sits in the machine
/// word's value: the shift that brings it to the low bits.
#[inline]
fn shift32(at: usize) -> u32 {
    let from_low = if cfg!(target_endian = "little") {
        at
    } else {
        WORD - 4 - at
    };
    (from_low * 8) as u32
}

/// Copy the bytes that start `at` bytes into `words` out into `out`.
#[inline]
fn copy_out(words: &[AtomicUsize], at: usize, out: &mut [u8]) {
    let (mut words, mut out) = (words, out);
    if at != 0 {
        let Some((w, rest)) = words.split_first() else {
            return;
        };
        let n = (WORD - at).min(out.len());
        let (head, tail) = out.split_at_mut(n);
        head.copy_from_slice(&w.load(Ordering::Relaxed).to_ne_bytes()[at..at + n]);
        (words, out) = (rest, tail);
    }
    let (whole, tail) = out.as_chunks_mut::<WORD>();
    let n = whole.len().min(words.len());
    let (whole, mid) = (&mut whole[..n], &words[..n]);
    // Eight words a step: the loads cannot be merged, but the loop overhead
    // can be spread over more of them.
    let (blocks, rest) = whole.as_chunks_mut::<UNROLL>();
    let (wblocks, wrest) = mid.as_chunks::<UNROLL>();
    for (c, w) in blocks.iter_mut().zip(wblocks) {
        for (c, w) in c.iter_mut().zip(w) {
            *c = w.load(Ordering::Relaxed).to_ne_bytes();
        }
    }
    for (c, w) in rest.iter_mut().zip(wrest) {
        *c = w.load(Ordering::Relaxed).to_ne_bytes();
    }
    if !tail.is_empty()
        && let Some(w) = words.get(n)
    {
        let n = tail.len();
        tail.copy_from_slice(&w.load(Ordering::Relaxed).to_ne_bytes()[..n]);
    }
}

/// Copy `data` into `words`, starting `at` bytes into the first of them.
#[inline]
fn copy_in(words: &[AtomicUsize], at: usize, data: &[u8]) {
    let (mut words, mut data) = (words, data);
    if at != 0 {
        let Some((w, rest)) = words.split_first() else {
            return;
        };
        let n = (WORD - at).min(data.len());
        merge(w, at, &data[..n], Ordering::Relaxed);
        (words, data) = (rest, &data[n..]);
    }
    let (whole, tail) = data.as_chunks::<WORD>();
    let n = whole.len().min(words.len());
    let (whole, mid) = (&whole[..n], &words[..n]);
    let (blocks, rest) = whole.as_chunks::<UNROLL>();
    let (wblocks, wrest) = mid.as_chunks::<UNROLL>();
    for (c, w) in blocks.iter().zip(wblocks) {
        for (c, w) in c.iter().zip(w) {
            w.store(usize::from_ne_bytes(*c), Ordering::Relaxed);
        }
    }
    for (c, w) in rest.iter().zip(wrest) {
        w.store(usize::from_ne_bytes(*c), Ordering::Relaxed);
    }
    if !tail.is_empty()
        && let Some(w) = words.get(n)
    {
        merge(w, 0, tail, Ordering::Relaxed);
    }
}

/// Set `len` bytes to `byte`, starting `at` bytes into the first of `words`.
fn fill_words(words: &[AtomicUsize], at: usize, len: usize, byte: u8) {
    let pattern = [byte; WORD];
    let (mut words, mut len) = (words, len);
    if at != 0 {
        let Some((w, rest)) = words.split_first() else {
            return;
        };
        let n = (WORD - at).min(len);
        merge(w, at, &pattern[..n], Ordering::Relaxed);
        (words, len) = (rest, len - n);
    }
    let whole = len / WORD;
    let value = usize::from_ne_bytes(pattern);
    for w in words.iter().take(whole) {
        w.store(value, Ordering::Relaxed);
    }
    let tail = len % WORD;
    if tail != 0
        && let Some(w) = words.get(whole)
    {
        merge(w, 0, &pattern[..tail], Ordering::Relaxed);
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

    /// The machine word holding the 32-bit word at `offset` (which must be
    /// 4-aligned in the block), and the word's first byte within it.
    #[inline]
    fn word32(&self, offset: usize) -> Result<(&AtomicUsize, usize), DmaError> {
        check_range(offset, 4, self.len)?;
        let abs = self.base + offset;
        if !abs.is_multiple_of(4) {
            return Err(DmaError::Misaligned { offset });
        }
        match self.block.all_words().get(abs / WORD) {
            Some(w) => Ok((w, abs % WORD)),
            None => Err(DmaError::OutOfBounds {
                offset,
                len: 4,
                region_len: self.len,
            }),
        }
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
        if !buf.is_empty() {
            let (words, at) = self.block.span(self.base + offset, buf.len());
            copy_out(words, at, buf);
        }
        Ok(())
    }

    fn write(&self, offset: usize, data: &[u8]) -> Result<(), DmaError> {
        check_range(offset, data.len(), self.len)?;
        if !data.is_empty() {
            let (words, at) = self.block.span(self.base + offset, data.len());
            copy_in(words, at, data);
        }
        Ok(())
    }

    #[inline]
    fn read64<'b>(
        &self,
        offset: usize,
        buf: &'b mut MaybeUninit<[u8; 64]>,
    ) -> Result<&'b mut [u8; 64], DmaError> {
        check_range(offset, 64, self.len)?;
        let abs = self.base + offset;
        let (words, at) = self.block.span(abs, 64);
        let words: Option<&[AtomicUsize; 64 / WORD]> = words.try_into().ok();
        let (0, Some(words)) = (at, words) else {
            // Not word-aligned: the general copy.
            let b = buf.write([0u8; 64]);
            self.read(offset, b)?;
            return Ok(b);
        };
        let out = buf.as_mut_ptr().cast::<[u8; WORD]>();
        for (i, w) in words.iter().enumerate() {
            // SAFETY: `i < 64 / WORD`, so the `WORD` bytes at `out + i` lie
            // within `buf` (`[u8; WORD]` has alignment 1); writing through
            // the raw pointer makes no reference to uninitialised bytes.
            unsafe { out.add(i).write(w.load(Ordering::Relaxed).to_ne_bytes()) };
        }
        // SAFETY: the loop wrote all `64 / WORD` chunks of `WORD` bytes, so
        // every byte of `buf` is initialised.
        Ok(unsafe { buf.assume_init_mut() })
    }

    fn fill(&self, offset: usize, len: usize, byte: u8) -> Result<(), DmaError> {
        check_range(offset, len, self.len)?;
        if len != 0 {
            let (words, at) = self.block.span(self.base + offset, len);
            fill_words(words, at, len, byte);
        }
        Ok(())
    }

    #[inline]
    fn load_u32(&self, offset: usize, order: Ordering) -> Result<u32, DmaError> {
        let (word, at) = self.word32(offset)?;
        // The four bytes in memory order, as a native-endian u32, hold the
        // value little-endian.
        Ok(u32::from_le((word.load(order) >> shift32(at)) as u32))
    }

    #[inline]
    fn store_u32(&self, offset: usize, value: u32, order: Ordering) -> Result<(), DmaError> {
        let (word, at) = self.word32(offset)?;
        let shift = shift32(at);
        let (value, mask) = ((value.to_le() as usize) << shift, 0xFFFF_FFFFusize << shift);
        merge_bits(word, value, mask, order);
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
    fn read64_is_read_at_every_offset_and_checked() {
        let r = HostRegion::new(256, Iova(0x1000)).unwrap();
        let data: std::vec::Vec<u8> = (0..256).map(|i| (i * 13 + 5) as u8).collect();
        r.write(0, &data).unwrap();
        // Aligned (the copy into uninitialised memory) and unaligned (the
        // general copy), in a region that starts inside its block or not.
        let sub = r.slice(3, 200).unwrap();
        for (region, base) in [(&r, 0), (&sub, 3)] {
            for off in [0, 1, 4, 8, 64, 100, region.len() - 64] {
                let mut buf = MaybeUninit::uninit();
                let got = *region.read64(off, &mut buf).unwrap();
                assert_eq!(
                    got[..],
                    data[base + off..base + off + 64],
                    "base {base} off {off}"
                );
            }
            let mut buf = MaybeUninit::uninit();
            assert!(matches!(
                region.read64(region.len() - 63, &mut buf),
                Err(DmaError::OutOfBounds { len: 64, .. })
            ));
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

    /// Loop counts of the threaded tests (Miri runs them much slower).
    const SPINS: u32 = if cfg!(miri) { 50 } else { 20_000 };

    /// A small deterministic generator for the model test.
    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn matches_a_byte_model_at_every_offset_and_length() {
        // Windows whose first byte is at every position within a machine
        // word, so head and tail bytes, whole words and 32-bit words in
        // either half of a word all get exercised.
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        for base in 0..2 * WORD {
            let parent = HostRegion::new(4096, Iova(0)).unwrap();
            let len = 200 + base;
            let r = parent.slice(base, len).unwrap();
            let mut model = std::vec![0u8; len];
            r.fill(0, len, 0).unwrap();
            let steps = if cfg!(miri) { 60 } else { 3000 };
            for _ in 0..steps {
                let off = rng.below(len + 1);
                let n = rng.below(len - off + 1).min(40);
                match rng.below(5) {
                    0 => {
                        let data: std::vec::Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                        r.write(off, &data).unwrap();
                        model[off..off + n].copy_from_slice(&data);
                    }
                    1 => {
                        let b = rng.next() as u8;
                        r.fill(off, n, b).unwrap();
                        model[off..off + n].fill(b);
                    }
                    2 => {
                        let v = rng.next() as u32;
                        let res = r.store_u32(off, v, Ordering::Release);
                        if off + 4 > len {
                            assert!(matches!(res, Err(DmaError::OutOfBounds { .. })));
                        } else if !(base + off).is_multiple_of(4) {
                            assert_eq!(res, Err(DmaError::Misaligned { offset: off }));
                        } else {
                            res.unwrap();
                            model[off..off + 4].copy_from_slice(&v.to_le_bytes());
                        }
                    }
                    3 => {
                        let res = r.load_u32(off, Ordering::Acquire);
                        if off + 4 <= len && (base + off).is_multiple_of(4) {
                            let mut b = [0u8; 4];
                            b.copy_from_slice(&model[off..off + 4]);
                            assert_eq!(res, Ok(u32::from_le_bytes(b)), "base {base} off {off}");
                        } else {
                            assert!(res.is_err());
                        }
                    }
                    _ => {
                        let mut back = std::vec![0xEEu8; n];
                        r.read(off, &mut back).unwrap();
                        assert_eq!(back, model[off..off + n], "base {base} off {off} n {n}");
                    }
                }
            }
            let mut all = std::vec![0u8; len];
            r.read(0, &mut all).unwrap();
            assert_eq!(all, model, "base {base}");
            // Nothing outside the window was touched.
            let mut before = std::vec![0xEEu8; base];
            parent.read(0, &mut before).unwrap();
            assert!(before.iter().all(|&b| b == 0), "base {base}");
            let mut after = [0xEEu8; 64];
            parent.read(base + len, &mut after).unwrap();
            assert!(after.iter().all(|&b| b == 0), "base {base}");
        }
    }

    #[test]
    fn long_copies_at_unaligned_ends_round_trip() {
        // Lengths around the unrolled step (8 words) and a page, at every
        // start and end position within a word.
        let r = HostRegion::new(3 * PAGE, Iova(0)).unwrap();
        for off in 0..=WORD {
            for len in [
                0,
                1,
                WORD - 1,
                WORD,
                WORD + 1,
                8 * WORD - 1,
                8 * WORD,
                8 * WORD + 3,
                17 * WORD + 5,
                PAGE - 1,
                PAGE,
                PAGE + 7,
                2 * PAGE,
            ] {
                let data: std::vec::Vec<u8> =
                    (0..len).map(|i| (i * 31 + off * 7 + 1) as u8).collect();
                r.fill(0, r.len(), 0x5A).unwrap();
                r.write(off, &data).unwrap();
                let mut back = std::vec![0u8; len];
                r.read(off, &mut back).unwrap();
                assert_eq!(back, data, "off {off} len {len}");
                let mut edge = [0u8; 2 * WORD];
                r.read(off + len, &mut edge).unwrap();
                assert_eq!(edge, [0x5A; 2 * WORD], "after: off {off} len {len}");
                if off > 0 {
                    let mut head = std::vec![0u8; off];
                    r.read(0, &mut head).unwrap();
                    assert!(
                        head.iter().all(|&b| b == 0x5A),
                        "before: off {off} len {len}"
                    );
                }
                r.fill(off, len, 0xC3).unwrap();
                r.read(off, &mut back).unwrap();
                assert!(back.iter().all(|&b| b == 0xC3), "fill: off {off} len {len}");
                r.read(off + len, &mut edge).unwrap();
                assert_eq!(edge, [0x5A; 2 * WORD], "fill after: off {off} len {len}");
            }
        }
    }

    #[test]
    fn thirty_two_bit_words_in_either_half_of_a_machine_word() {
        for base in [0, 4, 8, 12] {
            let parent = HostRegion::new(64, Iova(0)).unwrap();
            let r = parent.slice(base, 32).unwrap();
            r.fill(0, 32, 0x77).unwrap();
            for k in 0..8u32 {
                r.store_u32(k as usize * 4, 0x0101_0101 * (k + 1), Ordering::SeqCst)
                    .unwrap();
            }
            let mut all = [0u8; 32];
            r.read(0, &mut all).unwrap();
            for (k, w) in all.chunks_exact(4).enumerate() {
                assert_eq!(w, [k as u8 + 1; 4], "base {base}");
                let got = r.load_u32(k * 4, Ordering::SeqCst).unwrap();
                assert_eq!(got, 0x0101_0101 * (k as u32 + 1));
            }
            let mut around = [0xEEu8; 64];
            parent.read(0, &mut around).unwrap();
            assert!(around[..base].iter().all(|&b| b == 0), "base {base}");
            assert!(around[base + 32..].iter().all(|&b| b == 0), "base {base}");
        }
    }

    #[test]
    fn readers_never_see_a_torn_32_bit_word() {
        // The writer rewrites a page, each generation one byte value
        // everywhere: through an aligned window, a window 4 bytes off the
        // machine word, and an unaligned copy whose edges are read-modify-
        // writes. A reader must see every 4-aligned 32-bit word whole (all
        // four bytes of one generation), as it did when words were 32-bit.
        for base in [0, 4] {
            // A fresh parent: the edges a previous window left would be
            // inside this one.
            let parent = HostRegion::new(2 * PAGE, Iova(0)).unwrap();
            let r = parent.slice(base, PAGE).unwrap();
            let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let writer = {
                let (r, stop) = (r.clone(), Arc::clone(&stop));
                std::thread::spawn(move || {
                    let mut g = 0u8;
                    let mut page = std::vec![0u8; PAGE];
                    while !stop.load(Ordering::Relaxed) {
                        g = g.wrapping_add(1);
                        page.fill(g);
                        match g % 3 {
                            0 => r.write(0, &page).unwrap(),
                            1 => r.fill(0, PAGE, g).unwrap(),
                            _ => r.write(1, &page[..PAGE - 2]).unwrap(),
                        }
                    }
                })
            };
            let mut seen = [0u8; PAGE];
            for i in 0..SPINS / 20 {
                if i % 2 == 0 {
                    r.read(0, &mut seen).unwrap();
                } else {
                    for (k, w) in seen.chunks_exact_mut(4).enumerate() {
                        let v = r.load_u32(k * 4, Ordering::Relaxed).unwrap();
                        w.copy_from_slice(&v.to_le_bytes());
                    }
                }
                // The first and last words are the unaligned copy's edges.
                for (k, w) in seen[4..PAGE - 4].chunks_exact(4).enumerate() {
                    let k = k + 1;
                    assert!(
                        w.iter().all(|&b| b == w[0]),
                        "base {base} word {k}: torn {w:?}"
                    );
                }
            }
            stop.store(true, Ordering::Relaxed);
            writer.join().unwrap();
        }
    }

    /// Runs `f(t, i)` for `i` in `0..n` on two threads `t` = 0, 1 at once.
    fn race(n: u32, f: impl Fn(usize, u32) + Send + Sync + 'static) {
        let f = Arc::new(f);
        let start = Arc::new(std::sync::Barrier::new(2));
        let threads: std::vec::Vec<_> = (0..2)
            .map(|t| {
                let (f, start) = (Arc::clone(&f), Arc::clone(&start));
                std::thread::spawn(move || {
                    start.wait();
                    for i in 0..n {
                        f(t, i);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }

    #[test]
    fn stores_into_both_halves_of_a_machine_word_lose_nothing() {
        // Each thread owns one 32-bit half of the same machine word and must
        // always read back what it last stored there.
        let r = HostRegion::new(64, Iova(0)).unwrap();
        let shared = r.clone();
        race(SPINS * 10, move |t, i| {
            let v = i.wrapping_mul(0x0101_0101) ^ t as u32;
            shared.store_u32(8 + t * 4, v, Ordering::Release).unwrap();
            assert_eq!(shared.load_u32(8 + t * 4, Ordering::Acquire), Ok(v));
        });
        let mut all = [0u8; 64];
        r.read(0, &mut all).unwrap();
        assert_eq!(all[..8], [0; 8]);
        assert_eq!(all[16..], [0; 48]);
    }

    #[test]
    fn unaligned_copies_sharing_a_machine_word_lose_nothing() {
        // A copy ending and a fill starting inside the same machine word
        // (bytes 24..32): each thread must always read back its own bytes,
        // and the byte between them is never written.
        let r = HostRegion::new(64, Iova(0)).unwrap();
        let shared = r.clone();
        race(SPINS * 10, move |t, i| {
            let b = (i as u8) ^ (t as u8 * 0x55);
            if t == 0 {
                shared.write(11, &[b; 16]).unwrap();
                let mut back = [0u8; 16];
                shared.read(11, &mut back).unwrap();
                assert_eq!(back, [b; 16]);
            } else {
                shared.fill(28, 3, b).unwrap();
                let mut back = [0u8; 3];
                shared.read(28, &mut back).unwrap();
                assert_eq!(back, [b; 3]);
            }
        });
        let mut all = [0u8; 64];
        r.read(0, &mut all).unwrap();
        assert_eq!(all[..11], [0; 11]);
        assert_eq!(all[27], 0);
        assert_eq!(all[31..], [0; 33]);
    }

    #[test]
    fn a_release_store_publishes_the_copy_before_it() {
        // The ring protocol: bulk-copy an entry, then release-store its
        // signature; the other side acquire-loads the signature and must
        // then read the whole entry. The two signature words share one
        // machine word.
        let r = HostRegion::new(PAGE + 8, Iova(0)).unwrap();
        let (flag, ack) = (PAGE, PAGE + 4);
        let reader = {
            let r = r.clone();
            std::thread::spawn(move || {
                let mut page = std::vec![0u8; PAGE];
                for seq in 1..=SPINS / 10 {
                    while r.load_u32(flag, Ordering::Acquire).unwrap() != seq {
                        std::hint::spin_loop();
                        std::thread::yield_now();
                    }
                    r.read(0, &mut page).unwrap();
                    assert!(page.iter().all(|&b| b == seq as u8), "seq {seq}");
                    r.store_u32(ack, seq, Ordering::Release).unwrap();
                }
            })
        };
        let mut page = std::vec![0u8; PAGE];
        for seq in 1..=SPINS / 10 {
            page.fill(seq as u8);
            r.write(0, &page).unwrap();
            r.store_u32(flag, seq, Ordering::Release).unwrap();
            while r.load_u32(ack, Ordering::Acquire).unwrap() != seq {
                std::hint::spin_loop();
                std::thread::yield_now();
            }
        }
        reader.join().unwrap();
    }
}
