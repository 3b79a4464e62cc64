//! Register access through the generation's register map.
//!
//! Reference §1.2 (BARs), §2 (the `device_reg_24xx` block), gotcha 15: on
//! 83xx/27xx/28xx the queue in/out pointers and the ATIO pointers live in MQ
//! page 0, everything else (mailboxes, host_status, hccr) stays in the 24xx
//! block. The choice is made once at probe from the generation table; the
//! rest of the driver asks for "the request in-pointer" and never for an
//! offset.

use rscst_fw::pci::GenInfo;
use rscst_fw::regs::{self as r, HccrCommand, HostStatus, QueuePointer};
use rscst_hba::{Mmio, RegOffset};

/// Where the six queue pointers of queue 0 live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QueueRegBlock {
    /// In the 24xx register block (24xx/25xx/81xx without MQ).
    Legacy,
    /// In MQ page 0 of the MQ BAR (83xx/27xx/28xx).
    MqPage,
}

/// The register map of one function, chosen at probe.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RegMap {
    queue_block: QueueRegBlock,
}

/// BAR offsets of the six queue pointers of queue 0, by `QueuePointer as
/// usize`, in the 24xx register block and in MQ page 0 (what
/// `rscst_fw::regs::queue_pointer` says, as tables: a test holds them equal).
const LEGACY_QUEUE_OFFSETS: [u32; 6] = [
    r::REQ_Q_IN,
    r::REQ_Q_OUT,
    r::RSP_Q_IN,
    r::RSP_Q_OUT,
    r::ATIO_Q_IN,
    r::ATIO_Q_OUT,
];
const MQ_QUEUE_OFFSETS: [u32; 6] = [
    r::mq::offset(0, r::mq::REQ_Q_IN),
    r::mq::offset(0, r::mq::REQ_Q_OUT),
    r::mq::offset(0, r::mq::RSP_Q_IN),
    r::mq::offset(0, r::mq::RSP_Q_OUT),
    r::mq::offset(0, r::mq::ATIO_Q_IN),
    r::mq::offset(0, r::mq::ATIO_Q_OUT),
];

/// The queue pointers in `QueuePointer as usize` order.
#[cfg(test)]
const QUEUE_POINTERS: [QueuePointer; 6] = [
    QueuePointer::RequestIn,
    QueuePointer::RequestOut,
    QueuePointer::ResponseIn,
    QueuePointer::ResponseOut,
    QueuePointer::AtioIn,
    QueuePointer::AtioOut,
];

impl RegMap {
    /// The map for `gen_info` (MQ is never enabled by this driver for
    /// 24xx/25xx/81xx; those keep their pointers in the 24xx block).
    pub(crate) fn new(gen_info: &'static GenInfo) -> RegMap {
        let loc = r::queue_pointer(gen_info, false, QueuePointer::RequestIn);
        let queue_block = if loc.bar == gen_info.reg_bar {
            QueueRegBlock::Legacy
        } else {
            QueueRegBlock::MqPage
        };
        RegMap { queue_block }
    }

    /// Whether the queue pointers need the MQ BAR.
    pub(crate) fn needs_mq_bar(&self) -> bool {
        self.queue_block == QueueRegBlock::MqPage
    }

    /// The BAR offset of a queue pointer register (what `Regs::queue_ptr`
    /// and `Regs::set_queue_ptr` use, there with the table chosen by branch).
    #[cfg(test)]
    pub(crate) fn queue_offset(&self, which: QueuePointer) -> RegOffset {
        let table = match self.queue_block {
            QueueRegBlock::Legacy => &LEGACY_QUEUE_OFFSETS,
            QueueRegBlock::MqPage => &MQ_QUEUE_OFFSETS,
        };
        RegOffset(table[which as usize])
    }
}

/// Register access for one poll: the register BAR and, where the chip has
/// one, the MQ BAR, with the map that says which register lives where.
pub(crate) struct Regs<'a, M: Mmio> {
    pub(crate) regs: &'a M,
    pub(crate) mq: Option<&'a M>,
    pub(crate) map: RegMap,
}

impl<M: Mmio> Regs<'_, M> {
    pub(crate) fn read(&self, offset: u32) -> u32 {
        self.regs.read32(RegOffset(offset))
    }

    pub(crate) fn write(&self, offset: u32, value: u32) {
        self.regs.write32(RegOffset(offset), value)
    }

    pub(crate) fn host_status(&self) -> HostStatus {
        HostStatus(self.read(r::HOST_STATUS))
    }

    pub(crate) fn hccr(&self, cmd: HccrCommand) {
        self.write(r::HCCR, cmd.into());
    }

    /// Read back hccr (the reset sequence reads after each write to flush it).
    pub(crate) fn hccr_read(&self) -> u32 {
        self.read(r::HCCR)
    }

    pub(crate) fn mailbox(&self, n: usize) -> u16 {
        match r::mailbox(n) {
            Some(off) => self.regs.read16(RegOffset(off)),
            None => 0xFFFF,
        }
    }

    pub(crate) fn set_mailbox(&self, n: usize, v: u16) {
        if let Some(off) = r::mailbox(n) {
            self.regs.write16(RegOffset(off), v);
        }
    }

    /// Read a queue pointer (all-ones if the MQ BAR is missing, as a master
    /// abort would read; probe refuses such a platform).
    ///
    /// One branch per register block, each with its constant offset (no
    /// select of the BAR and the offset table on every access).
    #[inline]
    pub(crate) fn queue_ptr(&self, which: QueuePointer) -> u32 {
        match self.map.queue_block {
            QueueRegBlock::Legacy => self
                .regs
                .read32(RegOffset(LEGACY_QUEUE_OFFSETS[which as usize])),
            QueueRegBlock::MqPage => match self.mq {
                Some(bar) => bar.read32(RegOffset(MQ_QUEUE_OFFSETS[which as usize])),
                None => u32::MAX,
            },
        }
    }

    #[inline]
    pub(crate) fn set_queue_ptr(&self, which: QueuePointer, v: u32) {
        match self.map.queue_block {
            QueueRegBlock::Legacy => self
                .regs
                .write32(RegOffset(LEGACY_QUEUE_OFFSETS[which as usize]), v),
            QueueRegBlock::MqPage => {
                if let Some(bar) = self.mq {
                    bar.write32(RegOffset(MQ_QUEUE_OFFSETS[which as usize]), v);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rscst_fw::pci::probe;

    #[test]
    fn queue_offsets_are_the_reference_table() {
        for dev in [0x2422, 0x2532, 0x8001, 0x2031, 0x2071, 0x2271, 0x2289] {
            let g = probe(0x1077, dev).unwrap().gen_info;
            let m = RegMap::new(g);
            for (k, which) in QUEUE_POINTERS.iter().enumerate() {
                assert_eq!(*which as usize, k);
                assert_eq!(
                    m.queue_offset(*which),
                    RegOffset(r::queue_pointer(g, false, *which).offset)
                );
            }
        }
    }

    #[test]
    fn legacy_and_mq_maps() {
        let m = RegMap::new(probe(0x1077, 0x2532).unwrap().gen_info);
        assert!(!m.needs_mq_bar());
        assert_eq!(m.queue_offset(QueuePointer::RequestIn), RegOffset(0x1C));
        assert_eq!(m.queue_offset(QueuePointer::AtioOut), RegOffset(0x40));
        let m = RegMap::new(probe(0x1077, 0x2071).unwrap().gen_info);
        assert!(m.needs_mq_bar());
        assert_eq!(m.queue_offset(QueuePointer::RequestIn), RegOffset(0x00));
        assert_eq!(m.queue_offset(QueuePointer::ResponseOut), RegOffset(0x0C));
        assert_eq!(m.queue_offset(QueuePointer::AtioIn), RegOffset(0x10));
    }
}
