//! The simulated IOMMU and the DMA pool the driver allocates from.
//!
//! `docs/design/dma.md` rule 5: every region the driver allocates through
//! [`SimDmaPool`] is entered in the [`Iommu`] at an IOVA the pool chooses; the firmware model
//! reaches host memory only by IOVA through the IOMMU. An access that is not wholly inside
//! one mapping is an [`IommuFault`]: recorded (and in the trace), answered to the model as a
//! DMA error, and — unless the test takes it with [`crate::Sim::take_iommu_faults`] — it
//! fails the test when the [`crate::Sim`] is dropped.
//!
//! IOVAs start at [`DEFAULT_IOVA_BASE`] (above 4 GiB, so a driver that drops the high half of
//! an address faults) and every mapping is followed by an unmapped guard page, so an overrun
//! of a ring or buffer faults instead of landing in the next allocation.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};

use rscst_hba::host::HostRegion;
use rscst_hba::{DmaError, DmaPool, DmaRegion, Iova};

use crate::time::SimTime;

/// The first IOVA the pool hands out by default: bits 32..47 set, so both halves of a
/// 64-bit DMA address matter (mb2/mb3 and mb7 of the mailbox convention, §3.3).
pub const DEFAULT_IOVA_BASE: u64 = 0x0000_7F00_0000_0000;

const PAGE: u64 = 4096;

/// What the device was doing when it faulted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmaAccess {
    /// Device read of host memory.
    Read,
    /// Device write to host memory.
    Write,
}

/// A DMA access outside every mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IommuFault {
    /// When.
    pub time: SimTime,
    /// First IOVA of the access.
    pub iova: u64,
    /// Bytes.
    pub len: usize,
    /// Read or write.
    pub access: DmaAccess,
    /// What the firmware was doing ("request ring", "ICB", "CTIO data", ...).
    pub context: &'static str,
}

impl fmt::Display for IommuFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "IOMMU fault: device {} of {} bytes at iova {:#x} ({})",
            match self.access {
                DmaAccess::Read => "read",
                DmaAccess::Write => "write",
            },
            self.len,
            self.iova,
            self.context
        )
    }
}

/// The device's view of host memory: IOVA → host region.
pub struct Iommu {
    maps: RwLock<BTreeMap<u64, HostRegion>>,
    faults: Mutex<Vec<IommuFault>>,
    next: Mutex<u64>,
}

impl fmt::Debug for Iommu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iommu")
            .field("mappings", &self.mappings())
            .finish()
    }
}

impl Iommu {
    pub(crate) fn new(base: u64) -> Iommu {
        Iommu {
            maps: RwLock::new(BTreeMap::new()),
            faults: Mutex::new(Vec::new()),
            next: Mutex::new(base.next_multiple_of(PAGE)),
        }
    }

    /// Number of live mappings.
    pub fn mappings(&self) -> usize {
        self.maps.read().map(|m| m.len()).unwrap_or(0)
    }

    /// Bytes mapped in total.
    pub fn mapped_bytes(&self) -> usize {
        self.maps
            .read()
            .map(|m| m.values().map(|r| r.len()).sum())
            .unwrap_or(0)
    }

    fn map_new(&self, len: usize, align: usize) -> Result<HostRegion, DmaError> {
        let align = (align.max(1) as u64).max(PAGE);
        if !align.is_power_of_two() {
            return Err(DmaError::Map);
        }
        let mut next = self.next.lock().map_err(|_| DmaError::Map)?;
        let iova = next
            .checked_next_multiple_of(align)
            .ok_or(DmaError::NoMemory { len })?;
        let span = (len.max(1) as u64)
            .checked_next_multiple_of(PAGE)
            .ok_or(DmaError::NoMemory { len })?;
        // One unmapped guard page after every mapping.
        let end = iova
            .checked_add(span)
            .and_then(|e| e.checked_add(PAGE))
            .ok_or(DmaError::NoMemory { len })?;
        let region = HostRegion::new(len, Iova(iova))?;
        self.maps
            .write()
            .map_err(|_| DmaError::Map)?
            .insert(iova, region.clone());
        *next = end;
        Ok(region)
    }

    fn unmap(&self, iova: u64) {
        if let Ok(mut m) = self.maps.write() {
            m.remove(&iova);
        }
    }

    /// The mapping that contains `[iova, iova + len)` and the offset of `iova` in it.
    fn lookup(&self, iova: u64, len: usize) -> Option<(HostRegion, usize)> {
        let maps = self.maps.read().ok()?;
        let (start, region) = maps.range(..=iova).next_back()?;
        let off = usize::try_from(iova - start).ok()?;
        let end = off.checked_add(len)?;
        if end <= region.len() {
            Some((region.clone(), off))
        } else {
            None
        }
    }

    pub(crate) fn fault(
        &self,
        now: SimTime,
        iova: u64,
        len: usize,
        access: DmaAccess,
        context: &'static str,
    ) -> IommuFault {
        let f = IommuFault {
            time: now,
            iova,
            len,
            access,
            context,
        };
        if let Ok(mut v) = self.faults.lock() {
            v.push(f.clone());
        }
        f
    }

    /// Device read of `buf.len()` bytes at `iova`.
    pub(crate) fn read(
        &self,
        now: SimTime,
        iova: u64,
        buf: &mut [u8],
        context: &'static str,
    ) -> Result<(), IommuFault> {
        match self.lookup(iova, buf.len()) {
            Some((r, off)) => r
                .read(off, buf)
                .map_err(|_| self.fault(now, iova, buf.len(), DmaAccess::Read, context)),
            None => Err(self.fault(now, iova, buf.len(), DmaAccess::Read, context)),
        }
    }

    /// Device write of `data` at `iova`.
    pub(crate) fn write(
        &self,
        now: SimTime,
        iova: u64,
        data: &[u8],
        context: &'static str,
    ) -> Result<(), IommuFault> {
        match self.lookup(iova, data.len()) {
            Some((r, off)) => r
                .write(off, data)
                .map_err(|_| self.fault(now, iova, data.len(), DmaAccess::Write, context)),
            None => Err(self.fault(now, iova, data.len(), DmaAccess::Write, context)),
        }
    }

    /// Device atomic store of the LE32 word at `iova` (release).
    pub(crate) fn store_u32(
        &self,
        now: SimTime,
        iova: u64,
        v: u32,
        context: &'static str,
    ) -> Result<(), IommuFault> {
        match self.lookup(iova, 4) {
            Some((r, off)) => r
                .store_u32(off, v, Ordering::Release)
                .map_err(|_| self.fault(now, iova, 4, DmaAccess::Write, context)),
            None => Err(self.fault(now, iova, 4, DmaAccess::Write, context)),
        }
    }

    /// The faults recorded so far.
    pub fn faults(&self) -> Vec<IommuFault> {
        self.faults.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Takes the recorded faults (the test has seen them).
    pub fn take_faults(&self) -> Vec<IommuFault> {
        self.faults
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }
}

/// DMA memory allocated through the simulated IOMMU. Dropping it unmaps it.
#[derive(Debug)]
pub struct SimDmaRegion {
    region: HostRegion,
    iommu: Arc<Iommu>,
}

impl SimDmaRegion {
    /// The host memory behind the region (shares the bytes; the mapping stays owned by
    /// `self`). Useful to hand a RAM LUN's memory to something that reads it directly.
    pub fn host_region(&self) -> &HostRegion {
        &self.region
    }
}

impl Drop for SimDmaRegion {
    fn drop(&mut self) {
        self.iommu.unmap(self.region.iova().0);
    }
}

impl DmaRegion for SimDmaRegion {
    fn iova(&self) -> Iova {
        self.region.iova()
    }
    fn len(&self) -> usize {
        self.region.len()
    }
    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), DmaError> {
        self.region.read(offset, buf)
    }
    fn write(&self, offset: usize, data: &[u8]) -> Result<(), DmaError> {
        self.region.write(offset, data)
    }
    fn fill(&self, offset: usize, len: usize, byte: u8) -> Result<(), DmaError> {
        self.region.fill(offset, len, byte)
    }
    fn load_u32(&self, offset: usize, order: Ordering) -> Result<u32, DmaError> {
        self.region.load_u32(offset, order)
    }
    fn store_u32(&self, offset: usize, value: u32, order: Ordering) -> Result<(), DmaError> {
        self.region.store_u32(offset, value, order)
    }
}

/// The DMA allocator of [`crate::SimPlatform`]: host memory entered in the simulated IOMMU.
#[derive(Debug, Clone)]
pub struct SimDmaPool {
    iommu: Arc<Iommu>,
}

impl SimDmaPool {
    pub(crate) fn new(iommu: Arc<Iommu>) -> SimDmaPool {
        SimDmaPool { iommu }
    }

    /// The IOMMU behind the pool.
    pub fn iommu(&self) -> &Arc<Iommu> {
        &self.iommu
    }
}

impl DmaPool for SimDmaPool {
    type Region = SimDmaRegion;
    fn alloc(&self, len: usize, align: usize) -> Result<SimDmaRegion, DmaError> {
        let region = self.iommu.map_new(len, align)?;
        Ok(SimDmaRegion {
            region,
            iommu: Arc::clone(&self.iommu),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings_guard_pages_and_faults() {
        let iommu = Arc::new(Iommu::new(DEFAULT_IOVA_BASE));
        let pool = SimDmaPool::new(Arc::clone(&iommu));
        let a = pool.alloc(100, 64).unwrap();
        let b = pool.alloc(8192, 8192).unwrap();
        assert_eq!(a.iova().0, DEFAULT_IOVA_BASE);
        assert_eq!(b.iova().0 % 8192, 0);
        assert!(
            b.iova().0 >= a.iova().0 + 2 * PAGE,
            "guard page between mappings"
        );
        a.write(10, b"hello").unwrap();
        let mut buf = [0u8; 5];
        iommu
            .read(SimTime::ZERO, a.iova().0 + 10, &mut buf, "test")
            .unwrap();
        assert_eq!(&buf, b"hello");
        iommu
            .write(SimTime::ZERO, b.iova().0 + 8188, &[1, 2, 3, 4], "test")
            .unwrap();
        assert_eq!(b.load_u32(8188, Ordering::Relaxed).unwrap(), 0x0403_0201);
        // Crossing the end of a mapping (into the guard page) faults.
        assert!(
            iommu
                .read(SimTime::ZERO, a.iova().0 + 96, &mut [0u8; 8], "overrun")
                .is_err()
        );
        assert!(iommu.write(SimTime::ZERO, 0x1000, &[0], "wild").is_err());
        let faults = iommu.take_faults();
        assert_eq!(faults.len(), 2);
        assert_eq!(faults[0].context, "overrun");
        assert_eq!(faults[1].access, DmaAccess::Write);
        assert!(iommu.faults().is_empty());
        // Dropping a region unmaps it.
        let iova = a.iova().0;
        drop(a);
        assert!(iommu.lookup(iova, 1).is_none());
        assert_eq!(iommu.mappings(), 1);
    }
}
