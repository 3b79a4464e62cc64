//! Which ISP the simulator pretends to be.
//!
//! The model follows the generation facts of `rscst_fw::pci` (reference §1): an ISP2532
//! (25xx) by default — register block in BAR1, queue pointers in the 24xx block, no MQ BAR
//! — or an ISP27xx (e.g. 2722 = device id 0x2261/0x2271 family): register block in BAR0,
//! queue-0 and ATIO pointers in MQ page 0 of the MQ BAR (BAR4), ATIO-queue interrupt type
//! 0x1E.

use rscst_fw::pci::{self, ChipInfo, GenInfo, Generation};

/// A chip the simulator can model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChipModel {
    info: &'static ChipInfo,
}

impl ChipModel {
    /// ISP2532 (QLE2560/2562 class, 8 Gb/s): the default.
    pub fn isp2532() -> ChipModel {
        ChipModel::from_device_id(0x2532).expect("0x2532 is in the chip table")
    }

    /// An ISP27xx (QLE2742 class, 32 Gb/s, PCI id 0x2261): MQ BAR, queue pointers in MQ
    /// page 0.
    pub fn isp27xx() -> ChipModel {
        ChipModel::from_device_id(0x2261).expect("0x2261 is in the chip table")
    }

    /// Any FWI2 device id of the chip table except the converged network adapters
    /// (81xx/8031, whose FCoE side is not modelled). `None` for others.
    pub fn from_device_id(device_id: u16) -> Option<ChipModel> {
        let info = pci::chip_info(device_id)?;
        if info.cna {
            return None;
        }
        Some(ChipModel { info })
    }

    /// The chip table entry.
    pub fn info(&self) -> &'static ChipInfo {
        self.info
    }

    /// The generation facts.
    pub fn gen_info(&self) -> &'static GenInfo {
        self.info.gen_info
    }

    /// The generation.
    pub fn generation(&self) -> Generation {
        self.info.generation()
    }

    /// PCI device id.
    pub fn device_id(&self) -> u16 {
        self.info.device_id
    }

    /// `true` if the queue-0 and ATIO pointers live in MQ page 0 (83xx/27xx/28xx).
    pub fn queue_ptrs_in_mq(&self) -> bool {
        self.gen_info().queue_ptrs_in_mq_page
    }

    /// `true` if the chip has a multi-queue BAR the driver must use (83xx and later).
    pub fn has_mq_bar(&self) -> bool {
        self.gen_info().mq_bar_mandatory
    }

    /// The link speed the model gives the chip's port (the family's fastest): 4GFC for
    /// 24xx, 8GFC for 25xx, 16GFC for 83xx, 32GFC for 27xx, 64GFC for 28xx.
    pub fn link_speed(&self) -> rscst_fw::async_event::LinkSpeed {
        use rscst_fw::async_event::LinkSpeed;
        match self.generation() {
            Generation::Isp24xx => LinkSpeed::Gbps4,
            Generation::Isp25xx | Generation::Isp81xx => LinkSpeed::Gbps8,
            Generation::Isp83xx => LinkSpeed::Gbps16,
            Generation::Isp27xx => LinkSpeed::Gbps32,
            Generation::Isp28xx => LinkSpeed::Gbps64,
        }
    }
}

impl Default for ChipModel {
    fn default() -> Self {
        ChipModel::isp2532()
    }
}

impl core::fmt::Display for ChipModel {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} ({})", self.info.name, self.generation())
    }
}
