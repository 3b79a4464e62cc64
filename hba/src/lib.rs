#![doc = include_str!("../README.md")]
#![no_std]
// The only crate with unsafe code; it is confined to the leaf modules that
// say `#![allow(unsafe_code)]` (see STYLE.md S2).
#![deny(unsafe_code)]

#[cfg(feature = "std")]
extern crate std;

mod addr;
#[cfg(feature = "std")]
pub mod alloc_count;
mod dma;
mod fence;
#[cfg(feature = "std")]
pub mod host;
mod irq;
mod mmio;
mod pci;

pub use addr::{Iova, RegOffset};
pub use dma::{DmaError, DmaPool, DmaRegion, check_range};
pub use fence::{CpuFence, DmaFence};
pub use irq::{Irq, Trigger};
pub use mmio::Mmio;
pub use pci::{PciConfig, PciId};

/// Everything a driver needs from the machine, handed over as one value.
///
/// A driver is generic over `P: Platform` and owns it. The simulator, the VFIO
/// backend and the on-card MMIO backend each implement it; the driver cannot
/// tell them apart.
pub trait Platform {
    /// Register access type of the BARs.
    type Mmio: Mmio;
    /// DMA allocator.
    type Dma: DmaPool;
    /// Interrupt line of the function.
    type Irq: Irq;
    /// Ordering between memory and doorbells.
    type Fence: DmaFence;
    /// PCI configuration space.
    type Pci: PciConfig;

    /// The ISP register block (`device_reg_24xx`): BAR1 on 24xx/25xx/81xx,
    /// BAR0 on 83xx and later.
    fn regs(&self) -> &Self::Mmio;
    /// The multi-queue register pages (BAR3 / BAR4), where the chip has them.
    fn mq_regs(&self) -> Option<&Self::Mmio>;
    /// DMA allocation.
    fn dma(&self) -> &Self::Dma;
    /// The interrupt line.
    fn irq(&self) -> &Self::Irq;
    /// The fence to use around doorbells and ring reads.
    fn fence(&self) -> &Self::Fence;
    /// PCI configuration space.
    fn pci(&self) -> &Self::Pci;
}
