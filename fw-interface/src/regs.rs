//! The `device_reg_24xx` register block and the multi-queue (MQ) register page.
//!
//! Source: reference §1.2 (MQ page), §2 (register block and bits), §2.4 (flash access).
//! Offsets are byte offsets into the register BAR ([`GenInfo::reg_bar`]) or, for
//! [`mq`], into one MQ page ([`GenInfo::mq_bar`]). All registers are 32-bit except the
//! 16-bit mailboxes. Where a queue pointer lives depends on the generation:
//! [`queue_pointer`] answers it from the [`GenInfo`] table (gotcha 15).

use core::fmt;

use crate::pci::{GenInfo, MQ_PAGE_SIZE};

/// 0x00: flash/NVRAM address; B31 = data ready (read) / write (see [`FLASH_ADDR_DATA_FLAG`]).
pub const FLASH_ADDR: u32 = 0x00;
/// 0x04: flash/NVRAM data.
pub const FLASH_DATA: u32 = 0x04;
/// 0x08: control/status ([`CtrlStatus`]).
pub const CTRL_STATUS: u32 = 0x08;
/// 0x0C: interrupt control ([`Ictrl`]).
pub const ICTRL: u32 = 0x0C;
/// 0x10: interrupt status ([`Istatus`]).
pub const ISTATUS: u32 = 0x10;
/// 0x1C: request queue in-pointer (driver writes: the doorbell).
pub const REQ_Q_IN: u32 = 0x1C;
/// 0x20: request queue out-pointer (firmware updates).
pub const REQ_Q_OUT: u32 = 0x20;
/// 0x24: response queue in-pointer (firmware updates).
pub const RSP_Q_IN: u32 = 0x24;
/// 0x28: response queue out-pointer (driver writes).
pub const RSP_Q_OUT: u32 = 0x28;
/// 0x2C: priority request queue in-pointer (unused by Linux).
pub const PREQ_Q_IN: u32 = 0x2C;
/// 0x30: priority request queue out-pointer.
pub const PREQ_Q_OUT: u32 = 0x30;
/// 0x3C: ATIO queue in-pointer (firmware updates).
pub const ATIO_Q_IN: u32 = 0x3C;
/// 0x40: ATIO queue out-pointer (driver writes).
pub const ATIO_Q_OUT: u32 = 0x40;
/// 0x44: RISC → host status ([`HostStatus`]).
pub const HOST_STATUS: u32 = 0x44;
/// 0x48: host command & control ([`HccrCommand`] written, [`HccrStatus`] read).
pub const HCCR: u32 = 0x48;
/// 0x4C: GPIO data (LED bits).
pub const GPIOD: u32 = 0x4C;
/// 0x50: GPIO enable.
pub const GPIOE: u32 = 0x50;
/// 0x54: window base select for RISC-internal registers (debug/dump).
pub const IOBASE_ADDR: u32 = 0x54;
/// 0x80: mailbox 0; mailbox n is at `0x80 + 2n` (16-bit), n = 0..31.
pub const MAILBOX_BASE: u32 = 0x80;
/// Number of mailbox registers on FWI2 chips.
pub const MAILBOX_COUNT: usize = 32;
/// 0xC0: windowed RISC register access.
pub const IOBASE_WINDOW: u32 = 0xC0;
/// 0xC4.
pub const IOBASE_C4: u32 = 0xC4;
/// 0xC8.
pub const IOBASE_C8: u32 = 0xC8;
/// 0xE4.
pub const IOBASE_Q: u32 = 0xE4;
/// 0xF0.
pub const IOBASE_SELECT: u32 = 0xF0;
/// 0xFC.
pub const IOBASE_SDATA: u32 = 0xFC;

// Every constant offset fits the 0x100 bytes the driver maps.
const _: () = assert!(IOBASE_SDATA + 4 <= crate::pci::MIN_REGISTER_BAR_LEN);
const _: () = assert!(MAILBOX_BASE + 2 * (MAILBOX_COUNT as u32) <= IOBASE_WINDOW);

/// Byte offset of mailbox register `n` (16-bit), or `None` if `n > 31`.
pub const fn mailbox(n: usize) -> Option<u32> {
    if n < MAILBOX_COUNT {
        Some(MAILBOX_BASE + 2 * n as u32)
    } else {
        None
    }
}

/// The mailbox number at byte offset `offset`, if it is one (for a simulator's register file).
pub const fn mailbox_index(offset: u32) -> Option<usize> {
    if offset >= MAILBOX_BASE
        && offset < MAILBOX_BASE + 2 * MAILBOX_COUNT as u32
        && offset.is_multiple_of(2)
    {
        Some(((offset - MAILBOX_BASE) / 2) as usize)
    } else {
        None
    }
}

/// The name of the register at `offset`, for traces (`"mailbox5"` style names for mailboxes
/// are not static, so mailboxes report `"mailbox"`).
pub const fn name(offset: u32) -> Option<&'static str> {
    Some(match offset {
        FLASH_ADDR => "flash_addr",
        FLASH_DATA => "flash_data",
        CTRL_STATUS => "ctrl_status",
        ICTRL => "ictrl",
        ISTATUS => "istatus",
        REQ_Q_IN => "req_q_in",
        REQ_Q_OUT => "req_q_out",
        RSP_Q_IN => "rsp_q_in",
        RSP_Q_OUT => "rsp_q_out",
        PREQ_Q_IN => "preq_q_in",
        PREQ_Q_OUT => "preq_q_out",
        ATIO_Q_IN => "atio_q_in",
        ATIO_Q_OUT => "atio_q_out",
        HOST_STATUS => "host_status",
        HCCR => "hccr",
        GPIOD => "gpiod",
        GPIOE => "gpioe",
        IOBASE_ADDR => "iobase_addr",
        IOBASE_WINDOW => "iobase_window",
        IOBASE_C4 => "iobase_c4",
        IOBASE_C8 => "iobase_c8",
        IOBASE_Q => "iobase_q",
        IOBASE_SELECT => "iobase_select",
        IOBASE_SDATA => "iobase_sdata",
        _ => match mailbox_index(offset) {
            Some(_) => "mailbox",
            None => return None,
        },
    })
}

bit_flags! {
    /// `ctrl_status` (0x08) single-bit flags. Multi-bit fields: [`CtrlStatus::max_write_burst`]
    /// (B4–B5) and [`CtrlStatus::bus_mode`] (B8–B11).
    pub struct CtrlStatus: u32 {
        /// B0: ISP soft reset (write 1; self-clears when done).
        const SOFT_RESET = 1 << 0;
        /// B1: flash BIOS read/write enable.
        const FLASH_ENABLE = 1 << 1;
        /// B2: 64-bit PCI slot.
        const SLOT_64BIT = 1 << 2;
        /// B15: PCI function number is 1.
        const FUNCTION_1 = 1 << 15;
        /// B16: DMA shutdown control.
        const DMA_SHUTDOWN = 1 << 16;
        /// B17: DMA active (status).
        const DMA_ACTIVE = 1 << 17;
        /// B18: flash/NVRAM access error.
        const FLASH_NVRAM_ERROR = 1 << 18;
    }
}

impl CtrlStatus {
    /// B4–B5 = 3: max write burst 4096 bytes (what the driver writes, 0x30).
    pub const BURST_4096: CtrlStatus = CtrlStatus(0x30);
    /// Reset step 1 value: DMA shutdown + burst 4096 (0x00010030).
    pub const RESET_STEP_DMA_SHUTDOWN: CtrlStatus = CtrlStatus(0x0001_0030);
    /// Reset step 2 value: step 1 + soft reset (0x00010031).
    pub const RESET_STEP_SOFT_RESET: CtrlStatus = CtrlStatus(0x0001_0031);

    /// Max write burst in bytes (B4–B5: 512 << n).
    pub const fn max_write_burst(self) -> u32 {
        512 << ((self.0 >> 4) & 3)
    }

    /// PCI bus mode code (B8–B11): 0 PCI 33 MHz, 1/2/3 PCI-X mode 1 66/100/133, 5/6/7
    /// PCI-X mode 2 66/100/133, 8 PCI 66 MHz.
    pub const fn bus_mode(self) -> u8 {
        ((self.0 >> 8) & 0xF) as u8
    }
}

bit_flags! {
    /// `ictrl` (0x0C): interrupt control.
    pub struct Ictrl: u32 {
        /// B3: enable RISC interrupts to PCI.
        const ENABLE_RISC_INT = 1 << 3;
    }
}

bit_flags! {
    /// `istatus` (0x10): interrupt status.
    pub struct Istatus: u32 {
        /// B3: RISC interrupt pending.
        const RISC_INT = 1 << 3;
    }
}

enum_with_unknown! {
    /// `host_status` bits 0–7: why the RISC interrupted the host (reference §2.2).
    pub enum IntType(u8) {
        /// 0x01: ROM mailbox command completed OK.
        RomMbxOk = 0x01 => "ROM_MBX_OK",
        /// 0x02: ROM mailbox command failed.
        RomMbxFail = 0x02 => "ROM_MBX_FAIL",
        /// 0x10: firmware mailbox command completed OK.
        MbxOk = 0x10 => "MBX_OK",
        /// 0x11: firmware mailbox command failed.
        MbxFail = 0x11 => "MBX_FAIL",
        /// 0x12: asynchronous event; mb0 = event code.
        AsyncEvent = 0x12 => "ASYNC_EVENT",
        /// 0x13: response queue updated.
        RspQueue = 0x13 => "RSP_QUEUE",
        /// 0x14: response queue updated (83xx variant).
        RspQueue83xx = 0x14 => "RSP_QUEUE_83XX",
        /// 0x1C: ATIO queue updated.
        AtioQueue = 0x1C => "ATIO_QUEUE",
        /// 0x1D: ATIO and response queue updated.
        AtioRspQueue = 0x1D => "ATIO_RSP_QUEUE",
        /// 0x1E: ATIO queue updated (27xx variant).
        AtioQueue27xx = 0x1E => "ATIO_QUEUE_27XX",
    }
}

impl IntType {
    /// A mailbox command completed (ROM or firmware, OK or failed).
    #[inline]
    pub fn is_mailbox_completion(self) -> bool {
        matches!(
            self,
            IntType::RomMbxOk | IntType::RomMbxFail | IntType::MbxOk | IntType::MbxFail
        )
    }

    /// The response queue has new entries.
    pub fn response_queue(self) -> bool {
        matches!(
            self,
            IntType::RspQueue | IntType::RspQueue83xx | IntType::AtioRspQueue
        )
    }

    /// The ATIO queue has new entries.
    pub fn atio_queue(self) -> bool {
        matches!(
            self,
            IntType::AtioQueue | IntType::AtioRspQueue | IntType::AtioQueue27xx
        )
    }
}

/// A `host_status` (0x44) value: `mb0 << 16 | flags | type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct HostStatus(pub u32);

impl HostStatus {
    /// B8: the RISC is paused (firmware halted: dump and reset).
    pub const RISC_PAUSED: u32 = 1 << 8;
    /// B15: a RISC interrupt is pending.
    pub const INT_PENDING: u32 = 1 << 15;

    /// What the firmware writes when it interrupts: `mb0 << 16 | B15 | type`.
    pub fn interrupt(int_type: IntType, mb0: u16) -> HostStatus {
        HostStatus((mb0 as u32) << 16 | Self::INT_PENDING | u8::from(int_type) as u32)
    }

    /// Bits 0–7: the interrupt type.
    #[inline]
    pub fn int_type(self) -> IntType {
        IntType::from(self.0 as u8)
    }

    /// B8.
    #[inline]
    pub const fn risc_paused(self) -> bool {
        self.0 & Self::RISC_PAUSED != 0
    }

    /// B15.
    #[inline]
    pub const fn int_pending(self) -> bool {
        self.0 & Self::INT_PENDING != 0
    }

    /// Bits 16–31: mailbox 0 (completion status or async event code).
    #[inline]
    pub const fn mailbox0(self) -> u16 {
        (self.0 >> 16) as u16
    }
}

impl fmt::Display for HostStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "host_status {:#010x} type={} mb0={:#06x}",
            self.0,
            self.int_type(),
            self.mailbox0()
        )?;
        if self.int_pending() {
            f.write_str(" INT")?;
        }
        if self.risc_paused() {
            f.write_str(" PAUSED")?;
        }
        Ok(())
    }
}

enum_with_unknown! {
    /// Commands written to `hccr` (0x48) as the whole 32-bit value (reference §2.3).
    pub enum HccrCommand(u32) {
        /// No operation.
        Nop = 0x0000_0000 => "NOP",
        /// Set RISC reset.
        SetRiscReset = 0x1000_0000 => "SET_RISC_RESET",
        /// Clear RISC reset.
        ClearRiscReset = 0x2000_0000 => "CLEAR_RISC_RESET",
        /// Set RISC pause.
        SetRiscPause = 0x3000_0000 => "SET_RISC_PAUSE",
        /// Release RISC pause.
        ReleaseRiscPause = 0x4000_0000 => "RELEASE_RISC_PAUSE",
        /// Set host → RISC interrupt (the mailbox-command doorbell).
        SetHostInt = 0x5000_0000 => "SET_HOST_INT",
        /// Clear host → RISC interrupt.
        ClearHostInt = 0x6000_0000 => "CLEAR_HOST_INT",
        /// Clear RISC → host (PCI) interrupt.
        ClearRiscInt = 0xA000_0000 => "CLEAR_RISC_INT",
    }
}

bit_flags! {
    /// Status bits read from `hccr`.
    pub struct HccrStatus: u32 {
        /// B4: RISC pause mode (listed in older headers only).
        const RISC_PAUSE = 1 << 4;
        /// B5: RISC reset mode.
        const RISC_RESET = 1 << 5;
        /// B6: host → RISC interrupt pending.
        const HOST_INT = 1 << 6;
    }
}

/// `flash_addr` B31: set by the driver to write, set by the chip when read data is ready.
pub const FLASH_ADDR_DATA_FLAG: u32 = 1 << 31;
/// Dword address base of the NVRAM data window (24xx/25xx).
pub const NVRAM_DATA_BASE: u32 = 0x7FFE_0000;

/// The multi-queue register page (`device_reg_25xxmq`), one [`MQ_PAGE_SIZE`] page per queue.
pub mod mq {
    /// 0x00: request queue in-pointer.
    pub const REQ_Q_IN: u32 = 0x00;
    /// 0x04: request queue out-pointer.
    pub const REQ_Q_OUT: u32 = 0x04;
    /// 0x08: response queue in-pointer.
    pub const RSP_Q_IN: u32 = 0x08;
    /// 0x0C: response queue out-pointer.
    pub const RSP_Q_OUT: u32 = 0x0C;
    /// 0x10: ATIO queue in-pointer.
    pub const ATIO_Q_IN: u32 = 0x10;
    /// 0x14: ATIO queue out-pointer.
    pub const ATIO_Q_OUT: u32 = 0x14;

    /// Byte offset in the MQ BAR of register `reg` of queue `queue`'s page.
    pub const fn offset(queue: u16, reg: u32) -> u32 {
        queue as u32 * super::MQ_PAGE_SIZE + reg
    }
}

/// One of the six ring pointer registers of queue 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum QueuePointer {
    /// Request queue in-pointer (doorbell).
    RequestIn,
    /// Request queue out-pointer.
    RequestOut,
    /// Response queue in-pointer.
    ResponseIn,
    /// Response queue out-pointer.
    ResponseOut,
    /// ATIO queue in-pointer.
    AtioIn,
    /// ATIO queue out-pointer.
    AtioOut,
}

/// A register address: a BAR and a byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RegLocation {
    /// PCI BAR index.
    pub bar: u8,
    /// Byte offset in the BAR.
    pub offset: u32,
}

/// Where queue 0's pointer register `which` lives: MQ page 0 on 83xx/27xx/28xx, and on
/// 25xx/81xx when `mq_enabled`; otherwise the 24xx register block (reference §1.2, gotcha 15).
pub const fn queue_pointer(
    gen_info: &GenInfo,
    mq_enabled: bool,
    which: QueuePointer,
) -> RegLocation {
    if gen_info.queue_ptrs_in_mq_page || mq_enabled {
        let reg = match which {
            QueuePointer::RequestIn => mq::REQ_Q_IN,
            QueuePointer::RequestOut => mq::REQ_Q_OUT,
            QueuePointer::ResponseIn => mq::RSP_Q_IN,
            QueuePointer::ResponseOut => mq::RSP_Q_OUT,
            QueuePointer::AtioIn => mq::ATIO_Q_IN,
            QueuePointer::AtioOut => mq::ATIO_Q_OUT,
        };
        RegLocation {
            bar: gen_info.mq_bar,
            offset: mq::offset(0, reg),
        }
    } else {
        let offset = match which {
            QueuePointer::RequestIn => REQ_Q_IN,
            QueuePointer::RequestOut => REQ_Q_OUT,
            QueuePointer::ResponseIn => RSP_Q_IN,
            QueuePointer::ResponseOut => RSP_Q_OUT,
            QueuePointer::AtioIn => ATIO_Q_IN,
            QueuePointer::AtioOut => ATIO_Q_OUT,
        };
        RegLocation {
            bar: gen_info.reg_bar,
            offset,
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::pci::Generation;
    use std::string::ToString;

    #[test]
    fn offsets_match_reference_table() {
        let table = [
            (FLASH_ADDR, 0x00),
            (FLASH_DATA, 0x04),
            (CTRL_STATUS, 0x08),
            (ICTRL, 0x0C),
            (ISTATUS, 0x10),
            (REQ_Q_IN, 0x1C),
            (REQ_Q_OUT, 0x20),
            (RSP_Q_IN, 0x24),
            (RSP_Q_OUT, 0x28),
            (PREQ_Q_IN, 0x2C),
            (PREQ_Q_OUT, 0x30),
            (ATIO_Q_IN, 0x3C),
            (ATIO_Q_OUT, 0x40),
            (HOST_STATUS, 0x44),
            (HCCR, 0x48),
            (GPIOD, 0x4C),
            (GPIOE, 0x50),
            (IOBASE_ADDR, 0x54),
            (IOBASE_WINDOW, 0xC0),
            (IOBASE_C4, 0xC4),
            (IOBASE_C8, 0xC8),
            (IOBASE_Q, 0xE4),
            (IOBASE_SELECT, 0xF0),
            (IOBASE_SDATA, 0xFC),
        ];
        for (got, want) in table {
            assert_eq!(got, want);
            assert!(name(got).is_some());
        }
        assert_eq!(mailbox(0), Some(0x80));
        assert_eq!(mailbox(31), Some(0xBE));
        assert_eq!(mailbox(32), None);
        assert_eq!(mailbox_index(0xBE), Some(31));
        assert_eq!(mailbox_index(0x81), None);
        assert_eq!(mailbox_index(0xC0), None);
        assert_eq!(name(0x86), Some("mailbox"));
        assert_eq!(name(0x14), None);
    }

    #[test]
    fn ctrl_status_fields() {
        assert_eq!(CtrlStatus::RESET_STEP_DMA_SHUTDOWN.bits(), 0x0001_0030);
        assert_eq!(CtrlStatus::RESET_STEP_SOFT_RESET.bits(), 0x0001_0031);
        assert_eq!(CtrlStatus::BURST_4096.max_write_burst(), 4096);
        assert_eq!(CtrlStatus::empty().max_write_burst(), 512);
        let s = CtrlStatus::from_bits_retain(0x0002_0504);
        assert!(s.contains(CtrlStatus::DMA_ACTIVE | CtrlStatus::SLOT_64BIT));
        assert_eq!(s.bus_mode(), 5);
        assert_eq!(s.to_string(), "SLOT_64BIT|DMA_ACTIVE|0x500");
        assert_eq!(Ictrl::ENABLE_RISC_INT.bits(), 8);
        assert_eq!(Istatus::RISC_INT.bits(), 8);
        assert_eq!(HccrStatus::HOST_INT.bits(), 0x40);
        assert_eq!(HccrStatus::RISC_RESET.to_string(), "RISC_RESET");
        assert_eq!(HccrStatus::RISC_PAUSE.bits(), 0x10);
    }

    #[test]
    fn host_status_round_trip() {
        let h = HostStatus::interrupt(IntType::MbxOk, 0x4000);
        assert_eq!(h.0, 0x4000_8010);
        assert_eq!(h.int_type(), IntType::MbxOk);
        assert!(h.int_pending() && !h.risc_paused());
        assert_eq!(h.mailbox0(), 0x4000);
        assert_eq!(
            h.to_string(),
            "host_status 0x40008010 type=MBX_OK mb0=0x4000 INT"
        );
        let p = HostStatus(0x0000_0100 | 0x77);
        assert!(p.risc_paused());
        assert_eq!(p.int_type(), IntType::Unknown(0x77));
        assert!(p.to_string().ends_with("PAUSED"));
        assert!(IntType::AtioRspQueue.atio_queue() && IntType::AtioRspQueue.response_queue());
        assert!(IntType::RomMbxFail.is_mailbox_completion());
        assert!(!IntType::AsyncEvent.is_mailbox_completion());
        assert!(IntType::AtioQueue27xx.atio_queue() && IntType::RspQueue83xx.response_queue());
    }

    #[test]
    fn hccr_commands() {
        assert_eq!(u32::from(HccrCommand::ClearRiscInt), 0xA000_0000);
        assert_eq!(HccrCommand::from(0x5000_0000), HccrCommand::SetHostInt);
        assert_eq!(
            HccrCommand::from(0x7000_0000).to_string(),
            "UNKNOWN(0x70000000)"
        );
        for (c, v) in [
            (HccrCommand::Nop, 0),
            (HccrCommand::SetRiscReset, 0x1000_0000),
            (HccrCommand::ClearRiscReset, 0x2000_0000),
            (HccrCommand::SetRiscPause, 0x3000_0000),
            (HccrCommand::ReleaseRiscPause, 0x4000_0000),
            (HccrCommand::ClearHostInt, 0x6000_0000),
        ] {
            assert_eq!(c.raw(), v);
        }
    }

    #[test]
    fn queue_pointers_follow_the_generation() {
        let g25 = Generation::Isp25xx.info();
        assert_eq!(
            queue_pointer(g25, false, QueuePointer::RequestIn),
            RegLocation {
                bar: 1,
                offset: 0x1C
            }
        );
        assert_eq!(
            queue_pointer(g25, false, QueuePointer::AtioOut),
            RegLocation {
                bar: 1,
                offset: 0x40
            }
        );
        assert_eq!(
            queue_pointer(g25, true, QueuePointer::AtioOut),
            RegLocation {
                bar: 3,
                offset: 0x14
            }
        );
        let g83 = Generation::Isp83xx.info();
        let expect = [
            (QueuePointer::RequestIn, 0x00),
            (QueuePointer::RequestOut, 0x04),
            (QueuePointer::ResponseIn, 0x08),
            (QueuePointer::ResponseOut, 0x0C),
            (QueuePointer::AtioIn, 0x10),
            (QueuePointer::AtioOut, 0x14),
        ];
        for (q, off) in expect {
            assert_eq!(
                queue_pointer(g83, false, q),
                RegLocation {
                    bar: 4,
                    offset: off
                }
            );
        }
        let g24 = Generation::Isp24xx.info();
        assert_eq!(
            queue_pointer(g24, false, QueuePointer::ResponseIn).offset,
            0x24
        );
        assert_eq!(
            queue_pointer(g24, false, QueuePointer::ResponseOut).offset,
            0x28
        );
        assert_eq!(
            queue_pointer(g24, false, QueuePointer::RequestOut).offset,
            0x20
        );
        assert_eq!(queue_pointer(g24, false, QueuePointer::AtioIn).offset, 0x3C);
        assert_eq!(mq::offset(2, mq::RSP_Q_OUT), 0x200C);
    }
}
