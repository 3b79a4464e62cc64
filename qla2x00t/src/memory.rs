//! `hba::DmaRegion` as `rscst_core::Memory`: LUN bytes and the core's
//! buffer pool in device-visible memory, bus address = IOVA.
//!
//! With a RAM LUN in such memory, READ and WRITE CTIO7s point straight at
//! the LUN's bytes: the host copies nothing (`docs/design/dma.md`, "Who owns
//! what").

use rscst_core::{Memory, MemoryError};
use rscst_hba::{DmaError, DmaRegion};

/// A DMA region seen by the SCSI core as bus-addressable memory.
#[derive(Debug, Clone)]
pub struct DmaMemory<R: DmaRegion> {
    region: R,
}

impl<R: DmaRegion> DmaMemory<R> {
    /// Wrap `region`.
    pub fn new(region: R) -> DmaMemory<R> {
        DmaMemory { region }
    }

    /// The region.
    pub fn region(&self) -> &R {
        &self.region
    }

    /// Unwrap.
    pub fn into_inner(self) -> R {
        self.region
    }
}

fn map_err(e: DmaError, offset: usize, len: usize, memory_len: usize) -> MemoryError {
    match e {
        DmaError::OutOfBounds {
            offset,
            len,
            region_len,
        } => MemoryError {
            offset,
            len,
            memory_len: region_len,
        },
        _ => MemoryError {
            offset,
            len,
            memory_len,
        },
    }
}

impl<R: DmaRegion> Memory for DmaMemory<R> {
    fn len(&self) -> usize {
        self.region.len()
    }
    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), MemoryError> {
        self.region
            .read(offset, buf)
            .map_err(|e| map_err(e, offset, buf.len(), self.region.len()))
    }
    fn write(&self, offset: usize, data: &[u8]) -> Result<(), MemoryError> {
        self.region
            .write(offset, data)
            .map_err(|e| map_err(e, offset, data.len(), self.region.len()))
    }
    fn fill(&self, offset: usize, len: usize, byte: u8) -> Result<(), MemoryError> {
        self.region
            .fill(offset, len, byte)
            .map_err(|e| map_err(e, offset, len, self.region.len()))
    }
    fn bus_addr(&self, offset: usize) -> Option<u64> {
        self.region.iova_at(offset).map(|a| a.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rscst_hba::Iova;
    use rscst_hba::host::HostRegion;

    #[test]
    fn bus_address_is_iova() {
        let r = HostRegion::new(8192, Iova(0x4000_0000)).unwrap();
        let m = DmaMemory::new(r.clone());
        assert_eq!(m.len(), 8192);
        assert_eq!(m.bus_addr(0), Some(0x4000_0000));
        assert_eq!(m.bus_addr(4096), Some(0x4000_1000));
        assert_eq!(m.bus_addr(8192), Some(0x4000_2000));
        assert_eq!(m.bus_addr(8193), None);
        m.write(100, b"hello").unwrap();
        let mut b = [0u8; 5];
        r.read(100, &mut b).unwrap();
        assert_eq!(&b, b"hello");
        m.fill(100, 2, 0xAA).unwrap();
        m.read(100, &mut b).unwrap();
        assert_eq!(b, [0xAA, 0xAA, b'l', b'l', b'o']);
        let e = m.read(8190, &mut b).unwrap_err();
        assert_eq!((e.offset, e.len, e.memory_len), (8190, 5, 8192));
        assert!(m.write(usize::MAX, b"x").is_err());
    }
}
