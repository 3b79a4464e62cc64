//! The driver's side of the simulated HBA: [`SimPlatform`] implements
//! [`rscst_hba::Platform`] exactly as the VFIO backend does, so a driver cannot tell them
//! apart.
//!
//! | part | type | behaviour |
//! |---|---|---|
//! | registers | [`SimMmio`] | the register BAR (and, on 27xx, the MQ BAR) of `crate::device` |
//! | DMA | [`SimDmaPool`] | host memory entered in the simulated IOMMU at chosen IOVAs |
//! | interrupt | [`SimIrq`] | MSI by default: a message per posted cause, latched until `ack`; or INTx (`SimConfig::irq_trigger`): level = `host_status` B15 && `ictrl` B3 |
//! | fence | [`SimFence`] | CPU fences, counted so tests can check one precedes each doorbell |
//! | PCI config | [`SimPci`] | vendor 0x1077, the modelled device id, class FC |

use std::sync::Arc;
use std::sync::atomic::{Ordering, fence};
use std::time::Duration;

use rscst_hba::{DmaFence, Irq, Mmio, PciConfig, Platform, RegOffset};

use crate::device::Shared;
use crate::iommu::SimDmaPool;
use crate::trace::Bar;

/// One register BAR of the simulated function.
#[derive(Clone)]
pub struct SimMmio {
    shared: Arc<Shared>,
    bar: Bar,
}

impl core::fmt::Debug for SimMmio {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "SimMmio({})", self.bar)
    }
}

impl Mmio for SimMmio {
    fn read32(&self, offset: RegOffset) -> u32 {
        self.shared.mmio_read32(self.bar, offset.0)
    }
    fn write32(&self, offset: RegOffset, value: u32) {
        self.shared.mmio_write32(self.bar, offset.0, value)
    }
    fn read16(&self, offset: RegOffset) -> u16 {
        self.shared.mmio_read16(self.bar, offset.0)
    }
    fn write16(&self, offset: RegOffset, value: u16) {
        self.shared.mmio_write16(self.bar, offset.0, value)
    }
}

/// The interrupt line of the simulated function.
///
/// An MSI line by default ([`Irq::trigger`] is `Edge`, `SimConfig::irq_trigger`): each
/// cause the firmware posts in `host_status` sends a message that latches the line, and
/// [`Irq::ack`] consumes it (the driver acknowledges before it reads the cause). As an
/// INTx line (`Level`) the latch follows the level of `host_status` B15 with the
/// interrupt enabled: [`Irq::ack`] re-arms it with the current level, race-free, and the
/// driver acknowledges after clearing the cause, so the cause it handled does not latch
/// the line again. Either way an interrupt raised while the driver was busy is never
/// lost. [`Irq::wait`] sleeps in threaded mode; in stepped mode nothing can change while
/// the caller waits (the test steps the simulator), so it returns at once.
#[derive(Clone)]
pub struct SimIrq {
    shared: Arc<Shared>,
}

impl core::fmt::Debug for SimIrq {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "SimIrq(pending={})", self.pending())
    }
}

impl Irq for SimIrq {
    fn pending(&self) -> bool {
        self.shared.irq.pending()
    }
    fn ack(&self) {
        if self.shared.edge_irq {
            self.shared.irq.clear();
        } else {
            self.shared.irq.ack(|| self.shared.irq_level());
        }
    }
    fn wait(&self, timeout: Option<Duration>) -> bool {
        if !self.shared.threaded.load(Ordering::Acquire) {
            return self.pending();
        }
        self.shared.irq.wait(timeout)
    }
    /// INTx (the level of `host_status` B15 with the interrupt enabled) unless
    /// the simulator was configured with an MSI line (`SimConfig::irq_trigger`).
    fn trigger(&self) -> rscst_hba::Trigger {
        if self.shared.edge_irq {
            rscst_hba::Trigger::Edge
        } else {
            rscst_hba::Trigger::Level
        }
    }
}

/// CPU fences that count their calls.
#[derive(Clone)]
pub struct SimFence {
    shared: Arc<Shared>,
}

impl core::fmt::Debug for SimFence {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SimFence")
    }
}

impl DmaFence for SimFence {
    fn release(&self) {
        fence(Ordering::Release);
        self.shared.fence.release.fetch_add(1, Ordering::AcqRel);
    }
    fn acquire(&self) {
        self.shared.fence.acquire.fetch_add(1, Ordering::AcqRel);
        fence(Ordering::Acquire);
    }
}

/// PCI configuration space.
#[derive(Clone)]
pub struct SimPci {
    shared: Arc<Shared>,
}

impl core::fmt::Debug for SimPci {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "SimPci({})", self.id())
    }
}

impl PciConfig for SimPci {
    fn read32(&self, offset: u16) -> u32 {
        self.shared.pci.read(offset)
    }
    fn write32(&self, offset: u16, value: u32) {
        self.shared.pci.write(offset, value)
    }
}

/// The platform a driver gets: give it to the driver by value; the [`crate::Sim`] holds the
/// device side.
#[derive(Clone)]
pub struct SimPlatform {
    regs: SimMmio,
    mq: Option<SimMmio>,
    dma: SimDmaPool,
    irq: SimIrq,
    fence: SimFence,
    pci: SimPci,
}

impl core::fmt::Debug for SimPlatform {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "SimPlatform({})", self.regs.shared.chip)
    }
}

impl SimPlatform {
    /// Register reads and writes the driver has made through this platform so far
    /// (both BARs, any width): what `rscst bench` reports per command. On hardware
    /// each read is an uncached round trip over PCIe; writes are posted.
    pub fn mmio_counts(&self) -> (u64, u64) {
        let m = &self.regs.shared.mmio;
        (
            m.reads.load(Ordering::Relaxed),
            m.writes.load(Ordering::Relaxed),
        )
    }

    pub(crate) fn new(shared: Arc<Shared>, dma: SimDmaPool) -> SimPlatform {
        let mq = shared.chip.has_mq_bar().then(|| SimMmio {
            shared: Arc::clone(&shared),
            bar: Bar::Mq,
        });
        SimPlatform {
            regs: SimMmio {
                shared: Arc::clone(&shared),
                bar: Bar::Regs,
            },
            mq,
            dma,
            irq: SimIrq {
                shared: Arc::clone(&shared),
            },
            fence: SimFence {
                shared: Arc::clone(&shared),
            },
            pci: SimPci { shared },
        }
    }
}

impl Platform for SimPlatform {
    type Mmio = SimMmio;
    type Dma = SimDmaPool;
    type Irq = SimIrq;
    type Fence = SimFence;
    type Pci = SimPci;

    fn regs(&self) -> &SimMmio {
        &self.regs
    }
    fn mq_regs(&self) -> Option<&SimMmio> {
        self.mq.as_ref()
    }
    fn dma(&self) -> &SimDmaPool {
        &self.dma
    }
    fn irq(&self) -> &SimIrq {
        &self.irq
    }
    fn fence(&self) -> &SimFence {
        &self.fence
    }
    fn pci(&self) -> &SimPci {
        &self.pci
    }
}
