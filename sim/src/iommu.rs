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
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// Bumped after every map and unmap (device-side views refresh on a change).
    generation: AtomicU64,
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
            generation: AtomicU64::new(0),
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
        self.generation.fetch_add(1, Ordering::Release);
        *next = end;
        Ok(region)
    }

    fn unmap(&self, iova: u64) {
        if let Ok(mut m) = self.maps.write() {
            m.remove(&iova);
        }
        self.generation.fetch_add(1, Ordering::Release);
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

/// The firmware model's view of the IOMMU: a copy of the mapping table, refreshed when the
/// driver maps or unmaps (the table's generation changed), so a device access takes no lock
/// and no reference count — one atomic load, then the mapping of the last access or a
/// binary search. An access outside every mapping is a fault, recorded in the [`Iommu`].
pub(crate) struct DmaView {
    iommu: Arc<Iommu>,
    generation: u64,
    /// (first IOVA, memory), sorted.
    maps: Vec<(u64, HostRegion)>,
    /// Index of the mapping of the last access.
    last: usize,
}

impl DmaView {
    pub(crate) fn new(iommu: Arc<Iommu>) -> DmaView {
        DmaView {
            iommu,
            generation: u64::MAX,
            maps: Vec::new(),
            last: 0,
        }
    }

    fn refresh(&mut self, generation: u64) {
        self.maps.clear();
        if let Ok(m) = self.iommu.maps.read() {
            self.maps.extend(m.iter().map(|(&a, r)| (a, r.clone())));
        }
        self.generation = generation;
        self.last = 0;
    }

    /// The mapping that contains `[iova, iova + len)` and the offset of `iova` in it.
    #[inline]
    fn lookup(&mut self, iova: u64, len: usize) -> Option<(&HostRegion, usize)> {
        let g = self.iommu.generation.load(Ordering::Acquire);
        if g != self.generation {
            self.refresh(g);
        }
        let hit = |(start, r): &(u64, HostRegion)| {
            let off = usize::try_from(iova.checked_sub(*start)?).ok()?;
            (off.checked_add(len)? <= r.len()).then_some(off)
        };
        if let Some(off) = self.maps.get(self.last).and_then(hit) {
            return Some((&self.maps[self.last].1, off));
        }
        let i = self
            .maps
            .partition_point(|(s, _)| *s <= iova)
            .checked_sub(1)?;
        let off = hit(&self.maps[i])?;
        self.last = i;
        Some((&self.maps[i].1, off))
    }

    /// Device read of `buf.len()` bytes at `iova`.
    pub(crate) fn read(
        &mut self,
        now: SimTime,
        iova: u64,
        buf: &mut [u8],
        context: &'static str,
    ) -> Result<(), IommuFault> {
        match self.lookup(iova, buf.len()) {
            Some((r, off)) if r.read(off, buf).is_ok() => Ok(()),
            _ => Err(self
                .iommu
                .fault(now, iova, buf.len(), DmaAccess::Read, context)),
        }
    }

    /// Device write of `data` at `iova`.
    pub(crate) fn write(
        &mut self,
        now: SimTime,
        iova: u64,
        data: &[u8],
        context: &'static str,
    ) -> Result<(), IommuFault> {
        match self.lookup(iova, data.len()) {
            Some((r, off)) if r.write(off, data).is_ok() => Ok(()),
            _ => Err(self
                .iommu
                .fault(now, iova, data.len(), DmaAccess::Write, context)),
        }
    }

    /// Device atomic store of the LE32 word at `iova` (release).
    pub(crate) fn store_u32(
        &mut self,
        now: SimTime,
        iova: u64,
        v: u32,
        context: &'static str,
    ) -> Result<(), IommuFault> {
        match self.lookup(iova, 4) {
            Some((r, off)) if r.store_u32(off, v, Ordering::Release).is_ok() => Ok(()),
            _ => Err(self.iommu.fault(now, iova, 4, DmaAccess::Write, context)),
        }
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
        let mut view = DmaView::new(Arc::clone(&iommu));
        view.read(SimTime::ZERO, a.iova().0 + 10, &mut buf, "test")
            .unwrap();
        assert_eq!(&buf, b"hello");
        view.write(SimTime::ZERO, b.iova().0 + 8188, &[1, 2, 3, 4], "test")
            .unwrap();
        assert_eq!(b.load_u32(8188, Ordering::Relaxed).unwrap(), 0x0403_0201);
        // Crossing the end of a mapping (into the guard page) faults.
        assert!(
            view.read(SimTime::ZERO, a.iova().0 + 96, &mut [0u8; 8], "overrun")
                .is_err()
        );
        assert!(view.write(SimTime::ZERO, 0x1000, &[0], "wild").is_err());
        let faults = iommu.take_faults();
        assert_eq!(faults.len(), 2);
        assert_eq!(faults[0].context, "overrun");
        assert_eq!(faults[1].access, DmaAccess::Write);
        assert!(iommu.faults().is_empty());
        // Dropping a region unmaps it.
        let iova = a.iova().0;
        drop(a);
        assert!(
            view.read(SimTime::ZERO, iova, &mut [0u8; 1], "gone")
                .is_err()
        );
        assert_eq!(iommu.take_faults().len(), 1);
        assert_eq!(iommu.mappings(), 1);
    }

    #[test]
    fn the_device_view_follows_maps_and_unmaps() {
        let iommu = Arc::new(Iommu::new(DEFAULT_IOVA_BASE));
        let pool = SimDmaPool::new(Arc::clone(&iommu));
        let mut view = DmaView::new(Arc::clone(&iommu));
        let t = SimTime::ZERO;
        let a = pool.alloc(64, 64).unwrap();
        let b = pool.alloc(8192, 4096).unwrap();
        a.write(0, b"abcd").unwrap();
        b.write(8000, b"wxyz").unwrap();
        let mut buf = [0u8; 4];
        view.read(t, a.iova().0, &mut buf, "a").unwrap();
        assert_eq!(&buf, b"abcd");
        view.read(t, b.iova().0 + 8000, &mut buf, "b").unwrap();
        assert_eq!(&buf, b"wxyz");
        view.write(t, a.iova().0 + 60, b"1234", "a").unwrap();
        view.store_u32(t, b.iova().0 + 4, 0x0403_0201, "b").unwrap();
        assert_eq!(b.load_u32(4, Ordering::Relaxed).unwrap(), 0x0403_0201);
        // Past the end of a mapping, between mappings, below the first.
        assert!(view.read(t, a.iova().0 + 61, &mut buf, "over").is_err());
        assert!(view.read(t, a.iova().0 + 4096, &mut buf, "guard").is_err());
        assert!(view.write(t, 0x1000, b"x", "wild").is_err());
        // A region mapped after the view was built is seen; an unmapped one faults.
        let c = pool.alloc(16, 16).unwrap();
        view.write(t, c.iova().0, b"new!", "c").unwrap();
        let a_iova = a.iova().0;
        drop(a);
        assert!(view.read(t, a_iova, &mut buf, "unmapped").is_err());
        let f = iommu.take_faults();
        assert_eq!(
            f.iter().map(|f| f.context).collect::<Vec<_>>(),
            ["over", "guard", "wild", "unmapped"]
        );
    }

    #[test]
    fn the_device_view_finds_the_right_mapping_in_any_order() {
        // Several mappings visited in rotating and shuffled orders: every
        // access lands in its own mapping, and one crossing a mapping's end
        // faults whatever was used last.
        let iommu = Arc::new(Iommu::new(DEFAULT_IOVA_BASE));
        let pool = SimDmaPool::new(Arc::clone(&iommu));
        let mut view = DmaView::new(Arc::clone(&iommu));
        let t = SimTime::ZERO;
        let regions: Vec<_> = (0..7)
            .map(|i| {
                let r = pool.alloc(256 * (i + 1), 64).unwrap();
                r.fill(0, r.len(), i as u8 + 1).unwrap();
                r
            })
            .collect();
        let mut order: Vec<usize> = (0..regions.len()).collect();
        for round in 0..40usize {
            order.rotate_left(round % 3 + 1);
            if round % 5 == 0 {
                order.swap(0, round % regions.len());
            }
            for &i in order.iter().chain(order.iter().take(2)) {
                let r = &regions[i];
                let mut b = [0u8; 8];
                let off = (round * 24) % (r.len() - 8);
                view.read(t, r.iova().0 + off as u64, &mut b, "in").unwrap();
                assert_eq!(b, [i as u8 + 1; 8], "round {round} region {i}");
                let tail = r.iova().0 + r.len() as u64 - 4;
                assert!(view.read(t, tail, &mut b, "across the end").is_err());
            }
        }
        assert_eq!(
            iommu.take_faults().len(),
            40 * (regions.len() + 2),
            "every crossing faulted"
        );
    }
}
