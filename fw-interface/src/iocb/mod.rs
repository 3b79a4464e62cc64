//! Queue entries ("IOCBs"): the 64-byte request, response and ATIO ring entries of the FWI2
//! target-mode interface, as checked views and parsed `Repr`s.
//!
//! Source: reference §6 (entry format, continuation entries, ring protocol, handles) and §7
//! (every target-mode IOCB) — read them first. Native IOCB fields are little-endian; the FC
//! header and FCP_CMND inside an ATIO are big-endian wire bytes; ABTS IOCBs store the FC
//! header and BA_ACC/BA_RJT dword-swapped; CTIO7 mode-1 sense is dword-reversed (gotchas 1–3).
//!
//! Entries are never overlaid on ring memory: copy a slot out into a `[u8; 64]`, parse the
//! copy; build a new entry in a local `[u8; 64]` and copy it in (STYLE.md S3). An entry type
//! byte alone does not say which form an entry has — a CTIO7 going to the firmware and the
//! CTIO7 it returns share type 0x12 — so [`AnyEntry::parse`] takes the [`Dir`] too.

use core::fmt;

use crate::bytes::{le32, set_le32, set_le64};
use crate::error::need;
use crate::{WireError, bytes::le64};

pub mod abts;
pub mod any;
pub mod atio7;
pub mod continuation;
pub mod ctio7;
pub mod ctio_crc2;
pub mod immed_notify;
pub mod loginout;
pub mod marker;
pub mod mbx_iocb;
pub mod notify_ack;
pub mod status_cont;

pub use abts::{
    AbtsRecv, AbtsRecvRepr, AbtsResp, AbtsRespCompletionRepr, AbtsRespRepr, BlsPayload,
};
pub use any::{AnyEntry, Dir, EntryIter};
pub use atio7::{Atio7, Atio7CmdRepr, Atio7Repr};
pub use continuation::{ContinueA64, ContinueA64Repr};
pub use ctio_crc2::{CtioCrc2, CtioCrc2CompletionRepr, CtioCrc2Repr};
pub use ctio7::{
    Ctio7, Ctio7CompletionRepr, Ctio7Exchange, Ctio7Flags, Ctio7Mode, Ctio7Mode0, Ctio7Mode1,
    Ctio7Repr, CtioStatus, ScsiStatusWord,
};
pub use immed_notify::{ImmedNotify, ImmedNotifyRepr, NotifyStatus};
pub use immed_notify::{NotifyFlags, SrrIu};
pub use loginout::{Loginout, LoginoutCompletionRepr, LoginoutRepr};
pub use marker::{Marker, MarkerRepr};
pub use mbx_iocb::{MbxIocb, MbxIocbRepr};
pub use notify_ack::{NotifyAck, NotifyAckCompletionRepr, NotifyAckRepr};
pub use notify_ack::{NotifyAckFlags, NotifyAckStatus};
pub use status_cont::{StatusCont, StatusContRepr};

/// Every queue entry is 64 bytes.
pub const ENTRY_LEN: usize = 64;
/// Where response and ATIO entries carry the "processed" signature (bytes 0x3C–0x3F).
pub const SIGNATURE_OFFSET: usize = 0x3C;
/// The value the driver stamps into a consumed response/ATIO slot (`RESPONSE_PROCESSED`).
pub const PROCESSED_SIGNATURE: u32 = 0xDEAD_DEAD;
/// On FWI2 the driver masks `entry_status` with this (B2–B5).
pub const ENTRY_STATUS_MASK_FWI2: u8 = 0x3C;

/// `true` if `slot`'s signature says it was consumed (or never written). Gotcha 4: an ATIO
/// whose FCP_DL is 0xADDEADDE... reads as processed too — the edge case is inherent.
pub fn is_processed(slot: &[u8]) -> bool {
    slot.get(SIGNATURE_OFFSET..ENTRY_LEN)
        .is_some_and(|s| s == PROCESSED_SIGNATURE.to_le_bytes())
}

/// Stamps the processed signature into `slot` (no-op on a short slot).
pub fn stamp_processed(slot: &mut [u8]) {
    if let Some(s) = slot.get_mut(SIGNATURE_OFFSET..ENTRY_LEN) {
        s.copy_from_slice(&PROCESSED_SIGNATURE.to_le_bytes());
    }
}

/// Linux's handle conventions (reference §6.5). The IOCB `handle` is a raw `u32` in this
/// crate; a driver puts its own handle (pool index + generation) into it.
pub mod handle {
    /// 0: the null handle.
    pub const NULL: u32 = 0;
    /// B29: "this completion belongs to the target code" (`CTIO_COMPLETION_HANDLE_MARK`).
    pub const TARGET_BIT: u32 = 1 << 29;
    /// B30: an intermediate CTIO (the data half of a data + status pair).
    pub const INTERMEDIATE_BIT: u32 = 1 << 30;
    /// Linux's "skip" handle: no completion wanted / completion ignored.
    pub const SKIP: u32 = 0x0FFF_FFFF;
    /// The skip handle with B29, as Linux sends it on terminate/BUSY/TM CTIOs (0x2FFFFFFF).
    pub const SKIP_TARGET: u32 = SKIP | TARGET_BIT;
    /// The old SCST qla2x00t skip handle.
    pub const SCST_LEGACY_SKIP: u32 = 0x9FFF_FFFF;

    /// `true` for a skip handle (with or without B29, or the legacy SCST one).
    pub const fn is_skip(h: u32) -> bool {
        h & !TARGET_BIT == SKIP || h == SCST_LEGACY_SKIP
    }
}

enum_with_unknown! {
    /// The entry-type byte (reference §7.1).
    pub enum EntryType(u8) {
        /// 0x02: 32-bit continuation (not used by FWI2 target code).
        Continue = 0x02 => "CONTINUE",
        /// 0x03: initiator status.
        Status = 0x03 => "STATUS",
        /// 0x04.
        Marker = 0x04 => "MARKER",
        /// 0x06.
        Atio7 = 0x06 => "ATIO7",
        /// 0x0A.
        ContinueA64 = 0x0A => "CONTINUE_A64",
        /// 0x0B: legacy 2xxx.
        EnableLun = 0x0B => "ENABLE_LUN",
        /// 0x0C: legacy 2xxx.
        ModifyLun = 0x0C => "MODIFY_LUN",
        /// 0x0D.
        ImmedNotify = 0x0D => "IMMED_NOTIFY",
        /// 0x0E.
        NotifyAck = 0x0E => "NOTIFY_ACK",
        /// 0x10.
        StatusCont = 0x10 => "STATUS_CONT",
        /// 0x12.
        Ctio7 = 0x12 => "CTIO7",
        /// 0x14: initiator.
        TskMgmt = 0x14 => "TSK_MGMT",
        /// 0x16: legacy ATIO.
        AcceptTgtIo = 0x16 => "ACCEPT_TGT_IO",
        /// 0x17: legacy CTIO.
        ContinueTgtIo = 0x17 => "CONTINUE_TGT_IO",
        /// 0x18: initiator.
        CommandType7 = 0x18 => "COMMAND_TYPE_7",
        /// 0x1F: legacy.
        CtioA64 = 0x1F => "CTIO_A64",
        /// 0x29.
        CtPassthru = 0x29 => "CT_PASSTHRU",
        /// 0x30.
        VpCtrl = 0x30 => "VP_CTRL",
        /// 0x31.
        VpConfig = 0x31 => "VP_CONFIG",
        /// 0x32.
        VpRptId = 0x32 => "VP_RPT_ID",
        /// 0x33: initiator.
        Abort = 0x33 => "ABORT",
        /// 0x39.
        MbxIocb = 0x39 => "MBX_IOCB",
        /// 0x48: initiator.
        CommandType6 = 0x48 => "COMMAND_TYPE_6",
        /// 0x51.
        Purex = 0x51 => "PUREX",
        /// 0x52.
        Loginout = 0x52 => "LOGINOUT",
        /// 0x53.
        ElsPassthru = 0x53 => "ELS_PASSTHRU",
        /// 0x54.
        AbtsRecv = 0x54 => "ABTS_RECV",
        /// 0x55.
        AbtsResp = 0x55 => "ABTS_RESP",
        /// 0x6A: initiator T10-PI.
        CommandTypeCrc2 = 0x6A => "COMMAND_TYPE_CRC_2",
        /// 0x7A.
        CtioCrc2 = 0x7A => "CTIO_CRC2",
    }
}

bit_flags! {
    /// `entry_status` (byte 3): why the firmware bounced an entry.
    pub struct EntryStatus: u8 {
        /// B1.
        const BUSY = 1 << 1;
        /// B2.
        const INVALID_ENTRY_TYPE = 1 << 2;
        /// B3.
        const INVALID_ENTRY_PARAMETER = 1 << 3;
        /// B4.
        const INVALID_ENTRY_COUNT = 1 << 4;
        /// B5.
        const INVALID_ENTRY_ORDER = 1 << 5;
        /// B6.
        const DMA_ERROR = 1 << 6;
    }
}

impl EntryStatus {
    /// The bits the FWI2 driver looks at (mask 0x3C).
    pub const fn fwi2_error(self) -> bool {
        self.bits() & ENTRY_STATUS_MASK_FWI2 != 0
    }
}

/// A view of the common 8-byte header: type, count, sys_define, entry_status, handle.
#[derive(Debug, Clone)]
pub struct EntryHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EntryHeader<T> {
    view_basics!(EntryHeader, 8);

    accessors! {
        /// 0x00 raw.
        entry_type_raw, set_entry_type_raw, 0x00, u8;
        /// 0x01: slots this entry uses, continuations included.
        entry_count, set_entry_count, 0x01, u8;
        /// 0x02: driver-defined / handle_count.
        sys_define, set_sys_define, 0x02, u8;
        /// 0x04: the handle (not present in ATIO, IMMED_NOTIFY, ABTS_RECV).
        handle, set_handle, 0x04, le32;
    }

    /// 0x00.
    pub fn entry_type(&self) -> EntryType {
        EntryType::from(self.entry_type_raw())
    }

    /// 0x03.
    pub fn entry_status(&self) -> EntryStatus {
        EntryStatus::from_bits_retain(self.buffer.as_ref()[3])
    }

    /// Sets 0x03.
    pub fn set_entry_status(&mut self, v: EntryStatus)
    where
        T: AsMut<[u8]>,
    {
        self.buffer.as_mut()[3] = v.bits()
    }
}

/// Checks `b` holds a 64-byte entry of type `expected`.
#[inline]
pub(crate) fn check_entry(b: &[u8], expected: EntryType) -> Result<(), WireError> {
    need(ENTRY_LEN, b.len())?;
    let found = b[0];
    let expected = u8::from(expected);
    if found != expected {
        return Err(WireError::WrongEntryType { expected, found });
    }
    Ok(())
}

/// Writes the 4-byte header (type, count, sys_define 0, entry_status) and zeroes the rest of
/// the 64 bytes.
#[inline]
pub(crate) fn start_entry(
    b: &mut [u8],
    t: EntryType,
    count: u8,
    entry_status: EntryStatus,
) -> Result<(), WireError> {
    need(ENTRY_LEN, b.len())?;
    b[..ENTRY_LEN].fill(0);
    b[0] = t.into();
    b[1] = count;
    b[3] = entry_status.bits();
    Ok(())
}

/// A 64-bit data segment descriptor: `LE64 address`, `LE32 length` (12 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Dsd64 {
    /// Bus (DMA) address.
    pub address: u64,
    /// Length in bytes.
    pub length: u32,
}

impl Dsd64 {
    /// Size of a DSD64.
    pub const LEN: usize = 12;

    /// Reads a DSD at `at`.
    #[inline]
    pub fn read(b: &[u8], at: usize) -> Dsd64 {
        Dsd64 {
            address: le64(b, at),
            length: le32(b, at + 8),
        }
    }

    /// Writes this DSD at `at`.
    #[inline]
    pub fn write(&self, b: &mut [u8], at: usize) {
        set_le64(b, at, self.address);
        set_le32(b, at + 8, self.length);
    }
}

impl fmt::Display for Dsd64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}/{}", self.address, self.length)
    }
}

/// DSDs a CTIO7 carries itself.
pub const DSDS_PER_CTIO7: usize = 1;
/// DSDs per CONTINUE_A64 entry.
pub const DSDS_PER_CONTINUATION: usize = 5;
/// Linux's cap on segments per command.
pub const MAX_DSDS_PER_COMMAND: usize = 1270;

/// Ring slots a CTIO7 with `dseg_count` DSDs occupies: 1 + ceil((n − 1) / 5) (1 for n ≤ 1).
pub const fn ctio7_entry_count(dseg_count: usize) -> usize {
    if dseg_count <= DSDS_PER_CTIO7 {
        1
    } else {
        1 + (dseg_count - DSDS_PER_CTIO7).div_ceil(DSDS_PER_CONTINUATION)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_and_handles() {
        let mut slot = [0u8; 64];
        assert!(!is_processed(&slot));
        stamp_processed(&mut slot);
        assert_eq!(slot[0x3C..], [0xAD, 0xDE, 0xAD, 0xDE]);
        assert!(is_processed(&slot));
        assert!(!is_processed(&slot[..63]));
        stamp_processed(&mut [0u8; 10]);
        assert!(
            handle::is_skip(handle::SKIP)
                && handle::is_skip(0x2FFF_FFFF)
                && handle::is_skip(0x9FFF_FFFF)
        );
        assert!(!handle::is_skip(0x2000_0001));
        assert_eq!(handle::SKIP_TARGET, 0x2FFF_FFFF);
        assert_eq!(
            (handle::TARGET_BIT, handle::INTERMEDIATE_BIT, handle::NULL),
            (0x2000_0000, 0x4000_0000, 0)
        );
    }

    #[test]
    fn header_view_and_counts() {
        let b = [0x12, 0x02, 0x00, 0x0C, 0x01, 0x00, 0x00, 0x20];
        let mut h = EntryHeader::new_checked(b).unwrap();
        assert_eq!(h.entry_type(), EntryType::Ctio7);
        assert_eq!(
            (h.entry_count(), h.sys_define(), h.handle()),
            (2, 0, 0x2000_0001)
        );
        assert_eq!(
            h.entry_status(),
            EntryStatus::INVALID_ENTRY_TYPE | EntryStatus::INVALID_ENTRY_PARAMETER
        );
        assert!(h.entry_status().fwi2_error());
        assert!(!EntryStatus::BUSY.fwi2_error());
        h.set_entry_status(EntryStatus::empty());
        h.set_entry_type_raw(0x06);
        h.set_entry_count(3);
        h.set_sys_define(1);
        h.set_handle(7);
        assert_eq!(h.into_inner(), [0x06, 3, 1, 0, 7, 0, 0, 0]);
        assert!(EntryHeader::new_checked(&b[..7]).is_err());
        assert_eq!(
            (
                ctio7_entry_count(0),
                ctio7_entry_count(1),
                ctio7_entry_count(2)
            ),
            (1, 1, 2)
        );
        assert_eq!(
            (
                ctio7_entry_count(6),
                ctio7_entry_count(7),
                ctio7_entry_count(1270)
            ),
            (2, 3, 255)
        );
        assert_eq!(EntryType::from(0x99), EntryType::Unknown(0x99));
        let mut d = [0u8; 12];
        let dsd = Dsd64 {
            address: 0x1122_3344_5566_7788,
            length: 0x1000,
        };
        dsd.write(&mut d, 0);
        assert_eq!(
            d,
            [
                0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0x00, 0x10, 0, 0
            ]
        );
        assert_eq!(Dsd64::read(&d, 0), dsd);
        assert!(check_entry(&[0x12; 64], EntryType::Ctio7).is_ok());
        assert_eq!(
            check_entry(&[0x06; 64], EntryType::Ctio7),
            Err(WireError::WrongEntryType {
                expected: 0x12,
                found: 0x06
            })
        );
        assert!(check_entry(&[0x12; 63], EntryType::Ctio7).is_err());
    }
}

enum_with_unknown! {
    /// Completion status of LOGINOUT and ABTS_RESP entries (0x08).
    pub enum IocbStatus(u16) {
        /// 0x00.
        Complete = 0x00 => "COMPLETE",
        /// 0x31: error; subcodes elsewhere in the entry.
        IocbError = 0x31 => "IOCB_ERROR",
    }
}
