//! Address newtypes: what the device sees, and where a register lives.

use core::fmt;

/// An I/O virtual address: the address the device uses for DMA (after the
/// IOMMU). Host pointers never leave this crate; drivers only ever see `Iova`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Iova(pub u64);

impl Iova {
    /// The address `bytes` further on, or `None` on overflow.
    pub const fn checked_add(self, bytes: u64) -> Option<Iova> {
        match self.0.checked_add(bytes) {
            Some(v) => Some(Iova(v)),
            None => None,
        }
    }
}

impl fmt::Display for Iova {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "iova:{:#x}", self.0)
    }
}

/// A byte offset into a register BAR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RegOffset(pub u32);

impl fmt::Display for RegOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#06x}", self.0)
    }
}
