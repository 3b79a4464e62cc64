//! Bus-addressable memory, reached by copy and never by slice.
//!
//! Data the core and the backends exchange with the transport lives in memory
//! a device may read or write by DMA (LUN bytes of a RAM backend, the core's
//! buffer pool). The rule of `docs/design/dma.md` applies: no Rust reference
//! into it; access is by [`Memory::read`]/[`Memory::write`]/[`Memory::fill`],
//! and the wire sees it as [`Seg`]ments of bus addresses.

use core::cell::Cell;
use core::fmt;

/// Why a memory access failed: the range lies outside the memory.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MemoryError {
    /// First byte asked for.
    pub offset: usize,
    /// Bytes asked for.
    pub len: usize,
    /// Length of the memory.
    pub memory_len: usize,
}

impl fmt::Display for MemoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "memory access of {} bytes at {:#x} outside {:#x} bytes",
            self.len, self.offset, self.memory_len
        )
    }
}

impl core::error::Error for MemoryError {}

/// Check that `[offset, offset + len)` lies within `memory_len` bytes.
pub fn check_range(offset: usize, len: usize, memory_len: usize) -> Result<(), MemoryError> {
    match offset.checked_add(len) {
        Some(end) if end <= memory_len => Ok(()),
        _ => Err(MemoryError {
            offset,
            len,
            memory_len,
        }),
    }
}

/// A contiguous range of bus-addressable memory.
///
/// Methods take `&self`: the memory is shared with a device, so writes go
/// through interior mutability, as the device's own writes do. A memory is
/// contiguous in bus space: `bus_addr(o) == bus_addr(0) + o` for every `o`
/// within it. The qla2x00t crate adapts an `hba::DmaRegion`; tests and
/// devices without DMA use [`SliceMemory`].
pub trait Memory {
    /// Length in bytes.
    fn len(&self) -> usize;
    /// Whether the memory is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Copy `buf.len()` bytes starting at `offset` out of the memory.
    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), MemoryError>;
    /// Copy `data` into the memory at `offset`.
    fn write(&self, offset: usize, data: &[u8]) -> Result<(), MemoryError>;
    /// Set `len` bytes at `offset` to `byte`.
    fn fill(&self, offset: usize, len: usize, byte: u8) -> Result<(), MemoryError>;
    /// The bus (DMA) address of byte `offset`, `None` outside the memory.
    fn bus_addr(&self, offset: usize) -> Option<u64>;
}

impl<M: Memory + ?Sized> Memory for &M {
    fn len(&self) -> usize {
        (**self).len()
    }
    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), MemoryError> {
        (**self).read(offset, buf)
    }
    fn write(&self, offset: usize, data: &[u8]) -> Result<(), MemoryError> {
        (**self).write(offset, data)
    }
    fn fill(&self, offset: usize, len: usize, byte: u8) -> Result<(), MemoryError> {
        (**self).fill(offset, len, byte)
    }
    fn bus_addr(&self, offset: usize) -> Option<u64> {
        (**self).bus_addr(offset)
    }
}

/// Bytes moved per step by the copy and compare helpers (a stack bounce buffer).
const BOUNCE: usize = 256;

/// Copy `len` bytes from `src` at `src_off` to `dst` at `dst_off`, through a
/// small stack buffer (the memories may be different devices' windows).
pub fn copy(
    dst: &dyn Memory,
    dst_off: usize,
    src: &dyn Memory,
    src_off: usize,
    len: usize,
) -> Result<(), MemoryError> {
    check_range(src_off, len, src.len())?;
    check_range(dst_off, len, dst.len())?;
    let mut tmp = [0u8; BOUNCE];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(BOUNCE);
        src.read(src_off + done, &mut tmp[..n])?;
        dst.write(dst_off + done, &tmp[..n])?;
        done += n;
    }
    Ok(())
}

/// Compare `len` bytes of `a` at `a_off` with `b` at `b_off`: `Ok(None)` when
/// equal, `Ok(Some(i))` with the offset of the first differing byte.
pub fn compare(
    a: &dyn Memory,
    a_off: usize,
    b: &dyn Memory,
    b_off: usize,
    len: usize,
) -> Result<Option<usize>, MemoryError> {
    check_range(a_off, len, a.len())?;
    check_range(b_off, len, b.len())?;
    let mut x = [0u8; BOUNCE];
    let mut y = [0u8; BOUNCE];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(BOUNCE);
        a.read(a_off + done, &mut x[..n])?;
        b.read(b_off + done, &mut y[..n])?;
        if let Some(i) = x[..n].iter().zip(&y[..n]).position(|(p, q)| p != q) {
            return Ok(Some(done + i));
        }
        done += n;
    }
    Ok(None)
}

/// Memory over a caller-provided byte slice, with synthetic bus addresses
/// starting at `bus_base`. For tests (a fake transport resolves the addresses
/// back) and for controllers where the wire engine reads host memory through
/// addresses the caller knows.
pub struct SliceMemory<'a> {
    cells: &'a [Cell<u8>],
    bus_base: u64,
}

impl<'a> SliceMemory<'a> {
    /// Memory over `buf`; byte `o` has bus address `bus_base + o`.
    pub fn new(buf: &'a mut [u8], bus_base: u64) -> SliceMemory<'a> {
        SliceMemory {
            cells: Cell::from_mut(buf).as_slice_of_cells(),
            bus_base,
        }
    }

    /// Memory over cells the caller shares with others (e.g. a test's view).
    pub fn from_cells(cells: &'a [Cell<u8>], bus_base: u64) -> SliceMemory<'a> {
        SliceMemory { cells, bus_base }
    }

    /// Bus address of byte 0.
    pub fn bus_base(&self) -> u64 {
        self.bus_base
    }

    /// The offset of bus address `addr` with `len` bytes after it, if the
    /// whole range lies in this memory (how a fake transport resolves a [`Seg`]).
    pub fn offset_of(&self, addr: u64, len: usize) -> Option<usize> {
        let off = usize::try_from(addr.checked_sub(self.bus_base)?).ok()?;
        check_range(off, len, self.cells.len()).ok()?;
        Some(off)
    }

    fn range(&self, offset: usize, len: usize) -> Result<&[Cell<u8>], MemoryError> {
        check_range(offset, len, self.cells.len())?;
        Ok(&self.cells[offset..offset + len])
    }
}

impl fmt::Debug for SliceMemory<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SliceMemory({} bytes at bus {:#x})",
            self.cells.len(),
            self.bus_base
        )
    }
}

impl Memory for SliceMemory<'_> {
    fn len(&self) -> usize {
        self.cells.len()
    }
    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), MemoryError> {
        let src = self.range(offset, buf.len())?;
        for (d, s) in buf.iter_mut().zip(src) {
            *d = s.get();
        }
        Ok(())
    }
    fn write(&self, offset: usize, data: &[u8]) -> Result<(), MemoryError> {
        let dst = self.range(offset, data.len())?;
        for (d, s) in dst.iter().zip(data) {
            d.set(*s);
        }
        Ok(())
    }
    fn fill(&self, offset: usize, len: usize, byte: u8) -> Result<(), MemoryError> {
        for d in self.range(offset, len)? {
            d.set(byte);
        }
        Ok(())
    }
    fn bus_addr(&self, offset: usize) -> Option<u64> {
        if offset <= self.cells.len() {
            self.bus_base.checked_add(offset as u64)
        } else {
            None
        }
    }
}

/// A range of bus addresses the transport's device reads or writes by DMA.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Seg {
    /// Bus address of the first byte.
    pub addr: u64,
    /// Length in bytes.
    pub len: u32,
}

impl fmt::Display for Seg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}+{}", self.addr, self.len)
    }
}

/// Most segments one data transfer of a command carries. A longer transfer
/// is sent in several rounds (data-in without status, then the rest).
pub const MAX_SEGS: usize = 8;

/// A short scatter list of [`Seg`]s, filled by a backend's `map`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct SegList {
    segs: [Seg; MAX_SEGS],
    n: u8,
}

impl SegList {
    /// An empty list.
    pub const fn new() -> SegList {
        SegList {
            segs: [Seg { addr: 0, len: 0 }; MAX_SEGS],
            n: 0,
        }
    }

    /// The segments.
    #[inline]
    pub fn as_slice(&self) -> &[Seg] {
        &self.segs[..usize::from(self.n)]
    }

    /// Number of segments.
    #[inline]
    pub fn len(&self) -> usize {
        usize::from(self.n)
    }

    /// Whether there are no segments.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Whether no more segment fits.
    pub fn is_full(&self) -> bool {
        usize::from(self.n) == MAX_SEGS
    }

    /// Total bytes.
    #[inline(always)]
    pub fn total_len(&self) -> u64 {
        self.as_slice().iter().map(|s| u64::from(s.len)).sum()
    }

    /// Remove every segment.
    #[inline]
    pub fn clear(&mut self) {
        self.n = 0;
    }

    /// Make the list `seg` alone.
    #[inline]
    pub(crate) fn set_one(&mut self, seg: Seg) {
        self.segs[0] = seg;
        self.n = 1;
    }

    /// Append a segment, merging it with the last one when contiguous.
    /// `Err(seg)` when the list is full.
    #[inline]
    pub fn push(&mut self, seg: Seg) -> Result<(), Seg> {
        if seg.len == 0 {
            return Ok(());
        }
        if let Some(last) = self.n.checked_sub(1).map(usize::from) {
            let l = &mut self.segs[last];
            if l.addr.checked_add(u64::from(l.len)) == Some(seg.addr)
                && let Some(len) = l.len.checked_add(seg.len)
            {
                l.len = len;
                return Ok(());
            }
        }
        if self.is_full() {
            return Err(seg);
        }
        self.segs[usize::from(self.n)] = seg;
        self.n += 1;
        Ok(())
    }

    /// Keep only the first `bytes` bytes.
    #[inline]
    pub fn truncate(&mut self, bytes: u64) {
        if self.n == 1 {
            // The usual case (a RAM LU maps one contiguous range).
            if bytes == 0 {
                self.n = 0;
            } else if u64::from(self.segs[0].len) > bytes {
                self.segs[0].len = bytes as u32;
            }
            return;
        }
        let mut left = bytes;
        let mut keep = 0;
        for s in self.segs[..usize::from(self.n)].iter_mut() {
            if left == 0 {
                break;
            }
            if u64::from(s.len) > left {
                s.len = left as u32;
            }
            left -= u64::from(s.len);
            keep += 1;
        }
        self.n = keep;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_memory() {
        let mut buf = [0u8; 64];
        let m = SliceMemory::new(&mut buf, 0x1000);
        m.write(4, &[1, 2, 3]).unwrap();
        m.fill(10, 2, 0xaa).unwrap();
        let mut out = [0u8; 8];
        m.read(4, &mut out).unwrap();
        assert_eq!(out, [1, 2, 3, 0, 0, 0, 0xaa, 0xaa]);
        assert_eq!(m.bus_addr(4), Some(0x1004));
        assert_eq!(m.offset_of(0x1004, 60), Some(4));
        assert_eq!(m.offset_of(0x1004, 61), None);
        assert_eq!(m.offset_of(0xfff, 1), None);
        assert_eq!(
            m.write(63, &[1, 2]),
            Err(MemoryError {
                offset: 63,
                len: 2,
                memory_len: 64
            })
        );
        assert!(m.read(usize::MAX, &mut out).is_err());
    }

    #[test]
    fn copy_and_compare() {
        let mut a = [7u8; 600];
        let mut b = [0u8; 600];
        let (a, b) = (
            SliceMemory::new(&mut a, 0),
            SliceMemory::new(&mut b, 0x10000),
        );
        copy(&b, 10, &a, 0, 590).unwrap();
        assert_eq!(compare(&a, 0, &b, 10, 590).unwrap(), None);
        b.write(10 + 300, &[9]).unwrap();
        assert_eq!(compare(&a, 0, &b, 10, 590).unwrap(), Some(300));
        assert!(copy(&b, 11, &a, 0, 590).is_err());
    }

    #[test]
    fn seg_list() {
        let mut l = SegList::new();
        l.push(Seg {
            addr: 0x100,
            len: 0x100,
        })
        .unwrap();
        l.push(Seg {
            addr: 0x200,
            len: 0x100,
        })
        .unwrap();
        assert_eq!(l.len(), 1);
        for i in 0..7 {
            l.push(Seg {
                addr: 0x1000 * (i + 1),
                len: 16,
            })
            .unwrap();
        }
        assert!(l.is_full());
        assert!(
            l.push(Seg {
                addr: 0x9_0000,
                len: 1
            })
            .is_err()
        );
        assert_eq!(l.total_len(), 0x200 + 7 * 16);
        l.truncate(0x208);
        assert_eq!(l.len(), 2);
        assert_eq!(l.as_slice()[1].len, 8);
    }

    #[test]
    fn truncate_one_segment_matches_the_general_rule() {
        for (len, keep, want) in [
            (512u32, 512u64, Some(512u32)),
            (512, 100, Some(100)),
            (512, 0, None),
            (512, 4096, Some(512)),
        ] {
            let mut l = SegList::new();
            l.push(Seg { addr: 0x1000, len }).unwrap();
            l.truncate(keep);
            assert_eq!(l.as_slice().first().map(|s| s.len), want, "{len} to {keep}");
            assert_eq!(l.total_len(), u64::from(want.unwrap_or(0)));
        }
    }
}
