//! PCI configuration space.

use core::fmt;

/// PCI configuration space access (little-endian dwords at byte offsets).
pub trait PciConfig {
    /// Read the dword at `offset` (4-byte aligned; others read as all-ones).
    fn read32(&self, offset: u16) -> u32;
    /// Write the dword at `offset`.
    fn write32(&self, offset: u16, value: u32);

    /// The identity registers of the function.
    fn id(&self) -> PciId {
        let v = self.read32(0x00);
        let class = self.read32(0x08);
        let sub = self.read32(0x2C);
        PciId {
            vendor: v as u16,
            device: (v >> 16) as u16,
            revision: class as u8,
            subsystem_vendor: sub as u16,
            subsystem_device: (sub >> 16) as u16,
        }
    }

    /// Turn on memory decoding and bus mastering (command register bits 1, 2).
    fn enable_bus_master(&self) {
        let cmd = self.read32(0x04);
        self.write32(0x04, (cmd & 0xFFFF) | 0x0006);
    }
}

/// The identity of a PCI function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PciId {
    /// Vendor id (QLogic: 0x1077).
    pub vendor: u16,
    /// Device id (e.g. 0x2532 for ISP2532).
    pub device: u16,
    /// Revision id.
    pub revision: u8,
    /// Subsystem vendor id.
    pub subsystem_vendor: u16,
    /// Subsystem device id.
    pub subsystem_device: u16,
}

impl fmt::Display for PciId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04x}:{:04x} rev {:02x} (subsystem {:04x}:{:04x})",
            self.vendor, self.device, self.revision, self.subsystem_vendor, self.subsystem_device
        )
    }
}
