//! The RAM backend: logical units in caller-provided bus-addressable memory.
//!
//! READ and WRITE are zero copy: [`Backend::map`] hands out segments of the
//! LUN's own bytes, so the transport's DMA reads or writes them in place.
//! Thin provisioning keeps a bitmap of mapped granules in caller storage;
//! deallocated granules hold zeros, so the LUN reports LBPRZ and reads of
//! unmapped blocks return zeros with no extra work.

use core::fmt;

use super::{
    Backend, BackendLun, Io, IoError, IoKind, LbaRun, MapDir, Mapped, ProvisioningStatus,
    Submitted, push_range,
};
use crate::memory::{Memory, MemoryError, SegList, copy};
use crate::transport::Busy;

/// Why a RAM LUN could not be added.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum RamError {
    /// Every LUN slot of the backend is taken.
    Full,
    /// The block size is not a power of two between 512 and 65536.
    BadBlockSize,
    /// The memory holds less than one block.
    TooSmall,
    /// The memory has no bus address (cannot be mapped for the transport).
    NoBusAddress,
    /// Blocks per bitmap bit is not a power of two.
    BadGranularity,
    /// The bitmap has fewer bits than the LUN has granules.
    BitmapTooSmall,
    /// Zeroing the memory failed.
    Memory(MemoryError),
}

impl fmt::Display for RamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RamError::Full => f.write_str("no free RAM LUN slot"),
            RamError::BadBlockSize => {
                f.write_str("block size must be a power of two in 512..=65536")
            }
            RamError::TooSmall => f.write_str("memory smaller than one block"),
            RamError::NoBusAddress => f.write_str("memory has no bus address"),
            RamError::BadGranularity => f.write_str("blocks per bitmap bit must be a power of two"),
            RamError::BitmapTooSmall => f.write_str("provisioning bitmap too small"),
            RamError::Memory(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for RamError {}

/// Mapped-granule bitmap of a thin LUN: bit set = mapped.
struct Thin<'a> {
    bits: &'a mut [u32],
    /// log2 of blocks per bit.
    shift: u32,
}

impl Thin<'_> {
    fn get(&self, granule: u64) -> bool {
        let w = usize::try_from(granule / 32).unwrap_or(usize::MAX);
        self.bits
            .get(w)
            .is_some_and(|word| word & (1 << (granule % 32)) != 0)
    }

    fn set_range(&mut self, first: u64, count: u64, value: bool) {
        let mut g = first;
        let end = first.saturating_add(count);
        while g < end {
            let Some(word) = usize::try_from(g / 32)
                .ok()
                .and_then(|w| self.bits.get_mut(w))
            else {
                return;
            };
            if g.is_multiple_of(32) && end - g >= 32 {
                *word = if value { u32::MAX } else { 0 };
                g += 32;
            } else {
                if value {
                    *word |= 1 << (g % 32);
                } else {
                    *word &= !(1 << (g % 32));
                }
                g += 1;
            }
        }
    }

    /// Mark every granule touched by blocks `lba .. lba + blocks` mapped.
    fn map_blocks(&mut self, lba: u64, blocks: u64) {
        if blocks == 0 {
            return;
        }
        let first = lba >> self.shift;
        let last = (lba + blocks - 1) >> self.shift;
        self.set_range(first, last - first + 1, true);
    }

    /// Mark every granule wholly inside blocks `lba .. lba + blocks` deallocated.
    fn unmap_blocks(&mut self, lba: u64, blocks: u64) {
        let per = 1u64 << self.shift;
        let first = lba.div_ceil(per);
        let end = (lba + blocks) / per;
        if end > first {
            self.set_range(first, end - first, false);
        }
    }
}

struct RamLun<'a, M> {
    mem: M,
    block_size: u32,
    blocks: u64,
    thin: Option<Thin<'a>>,
}

impl<M: Memory> RamLun<'_, M> {
    fn range(&self, lba: u64, blocks: u64) -> Result<(usize, usize), IoError> {
        let end = lba.checked_add(blocks).ok_or(IoError::OutOfRange)?;
        if end > self.blocks {
            return Err(IoError::OutOfRange);
        }
        let bs = u64::from(self.block_size);
        let off = usize::try_from(lba * bs).map_err(|_| IoError::OutOfRange)?;
        let len = usize::try_from(blocks * bs).map_err(|_| IoError::OutOfRange)?;
        Ok((off, len))
    }

    fn mark_mapped(&mut self, lba: u64, blocks: u64) {
        if let Some(t) = self.thin.as_mut() {
            t.map_blocks(lba, blocks);
        }
    }

    fn run(&mut self, io: &Io<'_>) -> Result<(), IoError> {
        if io.block_size != self.block_size {
            return Err(IoError::Failed);
        }
        let (off, len) = self.range(io.lba, io.blocks)?;
        match io.kind {
            IoKind::Read => {
                let buf = io.buf.ok_or(IoError::Failed)?;
                copy(buf.mem, buf.offset, &self.mem, off, len.min(buf.len))?;
            }
            IoKind::Write => {
                let buf = io.buf.ok_or(IoError::Failed)?;
                if buf.len < len {
                    return Err(IoError::Failed);
                }
                copy(&self.mem, off, buf.mem, buf.offset, len)?;
                self.mark_mapped(io.lba, io.blocks);
            }
            IoKind::CommitWrite => self.mark_mapped(io.lba, io.blocks),
            IoKind::Flush => {}
            IoKind::Unmap => {
                let thin = self.thin.as_mut().ok_or(IoError::Unsupported)?;
                thin.unmap_blocks(io.lba, io.blocks);
                // Deallocated granules read as zeros (LBPRZ); blocks of
                // partly unmapped granules stay mapped and are zeroed too.
                self.mem.fill(off, len, 0)?;
            }
            IoKind::WriteSame => {
                let buf = io.buf.ok_or(IoError::Failed)?;
                let bs = self.block_size as usize;
                if buf.len < bs {
                    return Err(IoError::Failed);
                }
                let mut first = [0u8; 64];
                let mut zero = true;
                let mut at = 0;
                while at < bs && zero {
                    let n = (bs - at).min(first.len());
                    buf.read(at, &mut first[..n])?;
                    zero = first[..n].iter().all(|&b| b == 0);
                    at += n;
                }
                if zero {
                    self.mem.fill(off, len, 0)?;
                } else {
                    let mut o = off;
                    while o < off + len {
                        copy(&self.mem, o, buf.mem, buf.offset, bs)?;
                        o += bs;
                    }
                }
                self.mark_mapped(io.lba, io.blocks);
            }
        }
        Ok(())
    }
}

/// Up to `N` logical units, each in its own bus-addressable memory `M`.
pub struct RamBackend<'a, M: Memory, const N: usize> {
    luns: [Option<RamLun<'a, M>>; N],
}

impl<M: Memory, const N: usize> fmt::Debug for RamBackend<'_, M, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.luns.iter().filter(|l| l.is_some()).count();
        write!(f, "RamBackend({n} of {N} LUNs)")
    }
}

impl<M: Memory, const N: usize> Default for RamBackend<'_, M, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a, M: Memory, const N: usize> RamBackend<'a, M, N> {
    /// A backend with no LUNs.
    pub const fn new() -> Self {
        RamBackend {
            luns: [const { None }; N],
        }
    }

    /// Words of bitmap a thin LUN of `blocks` blocks needs at `blocks_per_bit`.
    pub const fn bitmap_words(blocks: u64, blocks_per_bit: u32) -> usize {
        let granules = blocks.div_ceil(blocks_per_bit as u64);
        granules.div_ceil(32) as usize
    }

    fn check(mem: &M, block_size: u32) -> Result<u64, RamError> {
        if !block_size.is_power_of_two() || !(512..=65536).contains(&block_size) {
            return Err(RamError::BadBlockSize);
        }
        let blocks = (mem.len() / block_size as usize) as u64;
        if blocks == 0 {
            return Err(RamError::TooSmall);
        }
        if mem.bus_addr(0).is_none() {
            return Err(RamError::NoBusAddress);
        }
        Ok(blocks)
    }

    fn insert(&mut self, lun: RamLun<'a, M>) -> Result<BackendLun, RamError> {
        let (i, slot) = self
            .luns
            .iter_mut()
            .enumerate()
            .find(|(_, s)| s.is_none())
            .ok_or(RamError::Full)?;
        *slot = Some(lun);
        Ok(BackendLun(i as u32))
    }

    /// Add a fully provisioned LUN over `mem` (its contents are the LUN's
    /// initial data); `mem.len() / block_size` blocks.
    pub fn add_lun(&mut self, mem: M, block_size: u32) -> Result<BackendLun, RamError> {
        let blocks = Self::check(&mem, block_size)?;
        self.insert(RamLun {
            mem,
            block_size,
            blocks,
            thin: None,
        })
    }

    /// Add a thin-provisioned LUN: `bitmap` tracks mapped granules of
    /// `blocks_per_bit` blocks ([`Self::bitmap_words`] words). The memory is
    /// zeroed and every block starts deallocated.
    pub fn add_thin_lun(
        &mut self,
        mem: M,
        block_size: u32,
        bitmap: &'a mut [u32],
        blocks_per_bit: u32,
    ) -> Result<BackendLun, RamError> {
        let blocks = Self::check(&mem, block_size)?;
        if !blocks_per_bit.is_power_of_two() {
            return Err(RamError::BadGranularity);
        }
        if bitmap.len() < Self::bitmap_words(blocks, blocks_per_bit) {
            return Err(RamError::BitmapTooSmall);
        }
        mem.fill(0, mem.len(), 0).map_err(RamError::Memory)?;
        bitmap.fill(0);
        let thin = Thin {
            bits: bitmap,
            shift: blocks_per_bit.trailing_zeros(),
        };
        self.insert(RamLun {
            mem,
            block_size,
            blocks,
            thin: Some(thin),
        })
    }

    /// Number of blocks of a LUN.
    pub fn blocks(&self, lun: BackendLun) -> Option<u64> {
        self.get(lun).map(|l| l.blocks)
    }

    /// The memory of a LUN (e.g. for a test to inspect what was written).
    pub fn memory(&self, lun: BackendLun) -> Option<&M> {
        self.get(lun).map(|l| &l.mem)
    }

    fn get(&self, lun: BackendLun) -> Option<&RamLun<'a, M>> {
        self.luns.get(usize::try_from(lun.0).ok()?)?.as_ref()
    }

    fn get_mut(&mut self, lun: BackendLun) -> Result<&mut RamLun<'a, M>, IoError> {
        let i = usize::try_from(lun.0).map_err(|_| IoError::OutOfRange)?;
        self.luns
            .get_mut(i)
            .and_then(Option::as_mut)
            .ok_or(IoError::OutOfRange)
    }
}

impl<M: Memory, const N: usize> Backend for RamBackend<'_, M, N> {
    fn map(
        &mut self,
        lun: BackendLun,
        _dir: MapDir,
        lba: u64,
        blocks: u64,
        block_size: u32,
        segs: &mut SegList,
    ) -> Result<Mapped, IoError> {
        let l = self.get_mut(lun)?;
        if block_size != l.block_size {
            return Err(IoError::Failed);
        }
        let (off, len) = l.range(lba, blocks)?;
        let addr = l.mem.bus_addr(off).ok_or(IoError::Failed)?;
        let len = len as u64;
        let mut done = push_range(segs, addr, len);
        if done != len {
            // The list filled up: whole blocks only (`len` is whole blocks).
            done = done / u64::from(block_size) * u64::from(block_size);
        }
        if done == 0 {
            return Ok(Mapped::Unsupported);
        }
        Ok(Mapped::Bytes(done))
    }

    fn submit(&mut self, io: &Io<'_>) -> Result<Submitted, Busy> {
        let r = self.get_mut(io.lun).and_then(|l| l.run(io));
        Ok(Submitted::Done(r))
    }

    fn lba_status(
        &mut self,
        lun: BackendLun,
        lba: u64,
        max: u64,
        _block_size: u32,
    ) -> Result<LbaRun, IoError> {
        let l = self.get_mut(lun)?;
        if lba >= l.blocks {
            return Err(IoError::OutOfRange);
        }
        let max = max.max(1).min(l.blocks - lba);
        let Some(t) = l.thin.as_ref() else {
            return Ok(LbaRun {
                status: ProvisioningStatus::Mapped,
                blocks: max,
            });
        };
        let per = 1u64 << t.shift;
        let g0 = lba >> t.shift;
        let mapped = t.get(g0);
        let mut end = (g0 + 1) * per;
        while end < lba + max && t.get(end >> t.shift) == mapped {
            end += per;
        }
        let status = if mapped {
            ProvisioningStatus::Mapped
        } else {
            ProvisioningStatus::Deallocated
        };
        Ok(LbaRun {
            status,
            blocks: (end - lba).min(max),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{IoBuf, IoToken};
    use crate::memory::{Seg, SliceMemory};

    fn io<'b>(kind: IoKind, lba: u64, blocks: u64, buf: Option<IoBuf<'b>>) -> Io<'b> {
        Io {
            token: IoToken::new(0),
            lun: BackendLun(0),
            kind,
            lba,
            blocks,
            block_size: 512,
            fua: false,
            buf,
        }
    }

    #[test]
    fn maps_lun_bytes_in_place() {
        let mut lun = [0u8; 8192];
        let mut b: RamBackend<'_, SliceMemory<'_>, 2> = RamBackend::new();
        let id = b
            .add_lun(SliceMemory::new(&mut lun, 0x4000_0000), 512)
            .unwrap();
        assert_eq!(b.blocks(id), Some(16));
        let mut segs = SegList::new();
        assert_eq!(
            b.map(id, MapDir::Read, 2, 3, 512, &mut segs),
            Ok(Mapped::Bytes(1536))
        );
        assert_eq!(
            segs.as_slice(),
            &[Seg {
                addr: 0x4000_0400,
                len: 1536
            }]
        );
        assert_eq!(
            b.map(id, MapDir::Read, 15, 2, 512, &mut segs),
            Err(IoError::OutOfRange)
        );
        assert_eq!(
            b.map(BackendLun(1), MapDir::Read, 0, 1, 512, &mut segs),
            Err(IoError::OutOfRange)
        );
    }

    #[test]
    fn thin_provisioning() {
        let mut lun = [0xeeu8; 16 * 512];
        let mut bits = [u32::MAX; 1];
        let mut pool = [0x5au8; 512];
        let pool = SliceMemory::new(&mut pool, 0);
        let mut b: RamBackend<'_, SliceMemory<'_>, 1> = RamBackend::new();
        let id = b
            .add_thin_lun(SliceMemory::new(&mut lun, 0x1000), 512, &mut bits, 2)
            .unwrap();
        let st = |b: &mut RamBackend<'_, SliceMemory<'_>, 1>, lba| {
            b.lba_status(id, lba, 100, 512).unwrap()
        };
        assert_eq!(
            st(&mut b, 0),
            LbaRun {
                status: ProvisioningStatus::Deallocated,
                blocks: 16
            }
        );
        // Write one block at LBA 5: granule 2 (blocks 4,5) becomes mapped.
        let buf = IoBuf {
            mem: &pool,
            offset: 0,
            len: 512,
        };
        assert_eq!(
            b.submit(&io(IoKind::Write, 5, 1, Some(buf))),
            Ok(Submitted::Done(Ok(())))
        );
        assert_eq!(
            st(&mut b, 0),
            LbaRun {
                status: ProvisioningStatus::Deallocated,
                blocks: 4
            }
        );
        assert_eq!(
            st(&mut b, 4),
            LbaRun {
                status: ProvisioningStatus::Mapped,
                blocks: 2
            }
        );
        assert_eq!(
            st(&mut b, 5),
            LbaRun {
                status: ProvisioningStatus::Mapped,
                blocks: 1
            }
        );
        let mut out = [0u8; 4];
        b.memory(id).unwrap().read(5 * 512, &mut out).unwrap();
        assert_eq!(out, [0x5a; 4]);
        // Unmapping block 5 alone leaves the granule mapped but zeroes the block.
        assert_eq!(
            b.submit(&io(IoKind::Unmap, 5, 1, None)),
            Ok(Submitted::Done(Ok(())))
        );
        assert_eq!(st(&mut b, 4).status, ProvisioningStatus::Mapped);
        b.memory(id).unwrap().read(5 * 512, &mut out).unwrap();
        assert_eq!(out, [0; 4]);
        // Unmapping 4..6 deallocates it.
        assert_eq!(
            b.submit(&io(IoKind::Unmap, 4, 2, None)),
            Ok(Submitted::Done(Ok(())))
        );
        assert_eq!(st(&mut b, 0).blocks, 16);
        // WRITE SAME of a non-zero block replicates it and maps.
        assert_eq!(
            b.submit(&io(IoKind::WriteSame, 8, 3, Some(buf))),
            Ok(Submitted::Done(Ok(())))
        );
        b.memory(id)
            .unwrap()
            .read(10 * 512 + 508, &mut out)
            .unwrap();
        assert_eq!(out, [0x5a; 4]);
        assert_eq!(
            st(&mut b, 8),
            LbaRun {
                status: ProvisioningStatus::Mapped,
                blocks: 4
            }
        );
    }

    #[test]
    fn rejects_bad_setup() {
        let mut lun = [0u8; 1024];
        let mut small = [0u32; 0];
        let mut b: RamBackend<'_, SliceMemory<'_>, 1> = RamBackend::new();
        let m = SliceMemory::new(&mut lun, 0);
        assert_eq!(
            b.add_thin_lun(m, 512, &mut small, 1).unwrap_err(),
            RamError::BitmapTooSmall
        );
        let mut lun = [0u8; 100];
        assert_eq!(
            b.add_lun(SliceMemory::new(&mut lun, 0), 512).unwrap_err(),
            RamError::TooSmall
        );
        let mut lun = [0u8; 1024];
        assert_eq!(
            b.add_lun(SliceMemory::new(&mut lun, 0), 500).unwrap_err(),
            RamError::BadBlockSize
        );
    }
}
