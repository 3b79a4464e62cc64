//! Register access at BAR offsets.

use crate::RegOffset;

/// 32-bit (and 16-bit, for the ISP mailbox registers) access to one BAR.
///
/// Methods take `&self`: a register file is shared with the device by nature,
/// and the simulator's threaded mode shares it between two threads. Reads may
/// have side effects on real hardware; callers read each register once per
/// decision and keep the value.
///
/// An offset outside the BAR reads as all-ones and ignores writes, as a PCIe
/// master abort does; implementations never panic on a bad offset.
pub trait Mmio {
    /// Read the 32-bit register at `offset`.
    fn read32(&self, offset: RegOffset) -> u32;
    /// Write the 32-bit register at `offset`.
    fn write32(&self, offset: RegOffset, value: u32);
    /// Read the 16-bit register at `offset` (ISP mailboxes).
    fn read16(&self, offset: RegOffset) -> u16;
    /// Write the 16-bit register at `offset` (ISP mailboxes).
    fn write16(&self, offset: RegOffset, value: u16);
}

impl<M: Mmio + ?Sized> Mmio for &M {
    fn read32(&self, offset: RegOffset) -> u32 {
        (**self).read32(offset)
    }
    fn write32(&self, offset: RegOffset, value: u32) {
        (**self).write32(offset, value)
    }
    fn read16(&self, offset: RegOffset) -> u16 {
        (**self).read16(offset)
    }
    fn write16(&self, offset: RegOffset, value: u16) {
        (**self).write16(offset, value)
    }
}
