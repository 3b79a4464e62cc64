//! Protocol violations: things a driver did that the interface forbids or that real
//! hardware would punish later (reference §3.1, §6, gotchas 8, 12, 17, and `docs/design/dma.md`).
//!
//! The model records each one (with the time) and carries on as the chip would; a test
//! asserts [`crate::Sim::violations`] is empty to prove a driver obeys the rules.

use core::fmt;

use crate::time::SimTime;
use crate::trace::Bar;

/// What rule was broken.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ViolationKind {
    /// A register access outside the BAR, misaligned, or of the wrong width.
    BadRegisterAccess {
        /// Which BAR.
        bar: Bar,
        /// Byte offset.
        offset: u32,
        /// 16 or 32.
        width: u8,
        /// A write (else a read).
        write: bool,
    },
    /// `hccr = SET_HOST_INT` while a mailbox command was still outstanding (§3.1 rule 1).
    MailboxWhileBusy {
        /// mb0 of the rejected doorbell.
        mb0: u16,
    },
    /// Not every mailbox register was written before the doorbell (§3.1 rule 2, gotcha 17).
    MailboxNotAllWritten {
        /// mb0 of the command.
        mb0: u16,
        /// Bit n set = mbN was not written since the previous command.
        missing: u32,
    },
    /// A request-queue doorbell (`req_q_in` write) with no `DmaFence::release` since the
    /// previous one (`docs/design/dma.md` rule 3).
    DoorbellWithoutFence,
    /// A ring pointer register was written with an index outside the ring.
    RingPointerOutOfRange {
        /// Register name.
        register: &'static str,
        /// The value written.
        value: u32,
        /// The ring length.
        length: u16,
    },
    /// A doorbell or ring pointer write before INITIALIZE_FIRMWARE set the rings up.
    RingsNotInitialized {
        /// Register name.
        register: &'static str,
    },
    /// An I/O IOCB arrived while a MARKER was required (after init, LIP or reset; §7.12).
    IocbBeforeMarker {
        /// The entry type.
        entry_type: u8,
    },
    /// A CTIO7 named an exchange address the firmware does not have open (stale after
    /// completion, termination or chip reset; gotcha 5).
    StaleExchange {
        /// The exchange address.
        exchange: u32,
    },
    /// A CTIO7 other than TERMINATE was sent for an exchange after one carrying
    /// SEND_STATUS (only a terminate may follow, if that one fails).
    CtioAfterFinal {
        /// The exchange address.
        exchange: u32,
    },
    /// The device did DMA while PCI bus mastering was off (the driver never enabled it;
    /// real hardware would master-abort).
    DmaWithoutBusMaster,
    /// A CTIO7 whose attr bits (flags 9–12) differ from its ATIO's attr nibble (gotcha 7).
    AttrMismatch {
        /// The exchange address.
        exchange: u32,
        /// The attr the CTIO carried.
        attr: u8,
        /// The ATIO's attr.
        expected: u8,
    },
    /// The response or ATIO out-pointer was moved past the in-pointer (the driver consumed
    /// entries the firmware never wrote).
    OutPointerPastIn {
        /// Register name.
        register: &'static str,
        /// The value written.
        value: u32,
    },
}

impl fmt::Display for ViolationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ViolationKind::BadRegisterAccess {
                bar,
                offset,
                width,
                write,
            } => write!(
                f,
                "bad {}-bit register {} at {bar}+{offset:#x}",
                width,
                if *write { "write" } else { "read" }
            ),
            ViolationKind::MailboxWhileBusy { mb0 } => {
                write!(
                    f,
                    "mailbox doorbell (mb0={mb0:#06x}) while a command is outstanding"
                )
            }
            ViolationKind::MailboxNotAllWritten { mb0, missing } => write!(
                f,
                "mailbox command mb0={mb0:#06x} without writing registers {missing:#010x}"
            ),
            ViolationKind::DoorbellWithoutFence => {
                f.write_str("req_q_in doorbell without a release fence since the previous one")
            }
            ViolationKind::RingPointerOutOfRange {
                register,
                value,
                length,
            } => {
                write!(f, "{register} = {value} outside a ring of {length} entries")
            }
            ViolationKind::RingsNotInitialized { register } => {
                write!(f, "{register} written before INITIALIZE_FIRMWARE")
            }
            ViolationKind::IocbBeforeMarker { entry_type } => {
                write!(f, "IOCB type {entry_type:#04x} before the required MARKER")
            }
            ViolationKind::StaleExchange { exchange } => {
                write!(f, "CTIO for exchange {exchange:#010x} that is not open")
            }
            ViolationKind::CtioAfterFinal { exchange } => {
                write!(f, "CTIO for exchange {exchange:#010x} after its final CTIO")
            }
            ViolationKind::DmaWithoutBusMaster => {
                f.write_str("device DMA with PCI bus mastering disabled")
            }
            ViolationKind::AttrMismatch {
                exchange,
                attr,
                expected,
            } => {
                write!(
                    f,
                    "CTIO for exchange {exchange:#010x} with attr {attr} (ATIO attr {expected})"
                )
            }
            ViolationKind::OutPointerPastIn { register, value } => {
                write!(f, "{register} = {value} beyond the firmware's in-pointer")
            }
        }
    }
}

/// A recorded violation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// When.
    pub time: SimTime,
    /// What.
    pub kind: ViolationKind,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.time, self.kind)
    }
}
