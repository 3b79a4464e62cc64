//! Device-visible memory.
//!
//! The rule (after rust-vmm's vm-memory): no `&`/`&mut` into memory the device
//! may write while it is mapped. Access is by copy ([`DmaRegion::read`],
//! [`DmaRegion::write`]) or by atomic 32-bit word ([`DmaRegion::load_u32`],
//! [`DmaRegion::store_u32`]), and every offset is checked against the region.

use core::fmt;
use core::mem::MaybeUninit;
use core::sync::atomic::Ordering;

use crate::Iova;

/// Why a DMA operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DmaError {
    /// `offset + len` lies outside the region.
    OutOfBounds {
        /// First byte asked for.
        offset: usize,
        /// Bytes asked for.
        len: usize,
        /// Length of the region.
        region_len: usize,
    },
    /// A word access at an offset that is not a multiple of 4.
    Misaligned {
        /// The offending offset.
        offset: usize,
    },
    /// The pool has no memory (or IOVA space) left for this request.
    NoMemory {
        /// Bytes asked for.
        len: usize,
    },
    /// The IOMMU refused the mapping.
    Map,
}

impl fmt::Display for DmaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DmaError::OutOfBounds {
                offset,
                len,
                region_len,
            } => write!(
                f,
                "DMA access of {len} bytes at offset {offset:#x} outside region of {region_len:#x} bytes"
            ),
            DmaError::Misaligned { offset } => {
                write!(f, "DMA word access at unaligned offset {offset:#x}")
            }
            DmaError::NoMemory { len } => write!(f, "no DMA memory for {len} bytes"),
            DmaError::Map => write!(f, "IOMMU mapping failed"),
        }
    }
}

impl core::error::Error for DmaError {}

/// Check that `[offset, offset + len)` lies within `region_len` bytes, without
/// overflow. A helper for `DmaRegion` implementations.
pub fn check_range(offset: usize, len: usize, region_len: usize) -> Result<(), DmaError> {
    match offset.checked_add(len) {
        Some(end) if end <= region_len => Ok(()),
        _ => Err(DmaError::OutOfBounds {
            offset,
            len,
            region_len,
        }),
    }
}

/// A contiguous range of device-visible memory.
///
/// Methods take `&self`: the memory is shared with the device, so writes go
/// through interior mutability, exactly as the device's own writes do.
pub trait DmaRegion {
    /// The address the device uses for byte 0 of the region.
    fn iova(&self) -> Iova;
    /// Length in bytes.
    fn len(&self) -> usize;
    /// Whether the region is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Copy `buf.len()` bytes starting at `offset` out of the region.
    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), DmaError>;
    /// Copy `data` into the region at `offset`.
    fn write(&self, offset: usize, data: &[u8]) -> Result<(), DmaError>;
    /// Copy the 64 bytes at `offset` (one ring entry, one cache line) into
    /// `buf` and return them, initialised. What a ring drain reads every
    /// entry with: `buf` need not be zeroed before the copy, as the buffer of
    /// [`read`](Self::read) must. The default zeroes it and calls `read`; a
    /// region that can copy into uninitialised memory overrides it.
    fn read64<'b>(
        &self,
        offset: usize,
        buf: &'b mut MaybeUninit<[u8; 64]>,
    ) -> Result<&'b mut [u8; 64], DmaError> {
        let b = buf.write([0u8; 64]);
        self.read(offset, b)?;
        Ok(b)
    }
    /// Set `len` bytes at `offset` to `byte`.
    fn fill(&self, offset: usize, len: usize, byte: u8) -> Result<(), DmaError>;
    /// Atomically load the little-endian 32-bit word at `offset` (4-aligned).
    fn load_u32(&self, offset: usize, order: Ordering) -> Result<u32, DmaError>;
    /// Atomically store the little-endian 32-bit word at `offset` (4-aligned).
    fn store_u32(&self, offset: usize, value: u32, order: Ordering) -> Result<(), DmaError>;

    /// The device address of byte `offset`, if it lies within the region.
    fn iova_at(&self, offset: usize) -> Option<Iova> {
        if offset <= self.len() {
            self.iova().checked_add(offset as u64)
        } else {
            None
        }
    }
}

impl<R: DmaRegion + ?Sized> DmaRegion for &R {
    fn iova(&self) -> Iova {
        (**self).iova()
    }
    fn len(&self) -> usize {
        (**self).len()
    }
    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), DmaError> {
        (**self).read(offset, buf)
    }
    fn write(&self, offset: usize, data: &[u8]) -> Result<(), DmaError> {
        (**self).write(offset, data)
    }
    fn read64<'b>(
        &self,
        offset: usize,
        buf: &'b mut MaybeUninit<[u8; 64]>,
    ) -> Result<&'b mut [u8; 64], DmaError> {
        (**self).read64(offset, buf)
    }
    fn fill(&self, offset: usize, len: usize, byte: u8) -> Result<(), DmaError> {
        (**self).fill(offset, len, byte)
    }
    fn load_u32(&self, offset: usize, order: Ordering) -> Result<u32, DmaError> {
        (**self).load_u32(offset, order)
    }
    fn store_u32(&self, offset: usize, value: u32, order: Ordering) -> Result<(), DmaError> {
        (**self).store_u32(offset, value, order)
    }
}

/// An allocator of device-visible memory.
///
/// On VFIO an allocation is host memory mapped into the IOMMU at an IOVA the
/// pool chooses; in the simulator it is arena memory entered in the simulated
/// IOMMU; on the card it is a carve-out of DMA-capable SRAM. Dropping a region
/// unmaps it where the backend supports freeing.
pub trait DmaPool {
    /// The region type handed out.
    type Region: DmaRegion;
    /// Allocate `len` bytes whose IOVA is a multiple of `align` (a power of
    /// two), zero-filled.
    fn alloc(&self, len: usize, align: usize) -> Result<Self::Region, DmaError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_checks() {
        assert!(check_range(0, 16, 16).is_ok());
        assert!(check_range(16, 0, 16).is_ok());
        assert_eq!(
            check_range(15, 2, 16),
            Err(DmaError::OutOfBounds {
                offset: 15,
                len: 2,
                region_len: 16
            })
        );
        assert!(check_range(usize::MAX, 2, 16).is_err());
    }
}
