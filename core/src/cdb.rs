//! The static CDB table (SCST `scst_scsi_op_table` style).
//!
//! One row per operation (opcode and, where it has one, service action):
//! name, CDB length, the CDB usage bitmap of REPORT SUPPORTED OPERATION CODES
//! (SPC-5 6.35.3), data direction, where the LBA and the transfer/allocation
//! length sit, flags and the handler. The usage bitmap does double duty: a
//! bit set in the CDB that the bitmap does not allow is a reserved or
//! unsupported field, answered with INVALID FIELD IN CDB pointing at it
//! (SPC-5 4.4.2.4.2), so the two can never disagree. The one exception is
//! an obsolete bit a device server ignores (`ignoring`): usage 0, accepted.

use crate::sense::{FieldPointer, SenseReason};
use crate::transport::DataDirection;

/// Which handler runs an operation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum OpKind {
    TestUnitReady,
    RequestSense,
    FormatUnit,
    Inquiry,
    ModeSelect,
    ModeSense,
    Reserve,
    Release,
    StartStopUnit,
    PreventAllow,
    ReadCapacity10,
    ReadCapacity16,
    Read,
    Write,
    WriteVerify,
    Verify,
    Prefetch,
    SyncCache,
    ReadDefectData,
    WriteSame,
    Unmap,
    Sanitize,
    LogSense,
    CompareAndWrite,
    OrWrite,
    WriteAtomic,
    GetLbaStatus,
    ReportLuns,
    ReportTpg,
    Rsoc,
    Rstmf,
    PrIn,
    PrOut,
    ExtendedCopy,
    ReceiveCopyResults,
}

/// How an operation meets persistent reservations (SPC-5 5.13.1, table
/// "SPC commands that are allowed in the presence of various
/// reservations"; SBC-4 4.17). Consumed by the reservation check.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum PrClass {
    /// Never conflicts (INQUIRY, REPORT LUNS, REQUEST SENSE ...).
    Allowed,
    /// Conflicts under exclusive access types for non-holders (reads).
    Read,
    /// Conflicts under every type for non-holders (writes, MODE SELECT ...).
    Write,
}

/// Served for a LUN the initiator has no logical unit at.
pub(crate) const NO_LU: u16 = 1 << 0;
/// A pending unit attention is not reported (INQUIRY, REPORT LUNS, REQUEST SENSE).
pub(crate) const UA_EXEMPT: u16 = 1 << 1;
/// Needs a loaded, started medium.
pub(crate) const MEDIUM: u16 = 1 << 2;
/// Modifies the medium: refused with DATA PROTECT on a write-protected LU.
pub(crate) const WRITES: u16 = 1 << 3;
/// Allowed while another I_T nexus holds an SPC-2 reservation.
pub(crate) const RES2_OK: u16 = 1 << 4;
/// Allowed while a SANITIZE or FORMAT UNIT runs.
pub(crate) const BG_OK: u16 = 1 << 5;
/// The Data-Out length must equal what the CDB implies.
pub(crate) const EXACT_OUT: u16 = 1 << 6;
/// Allowed through a target port group in standby or unavailable state.
pub(crate) const STANDBY_OK: u16 = 1 << 7;

/// One operation.
#[derive(Debug)]
pub(crate) struct OpInfo {
    pub opcode: u8,
    pub sa: Option<u8>,
    pub name: &'static str,
    pub cdb_len: u8,
    pub usage: [u8; 16],
    /// The bits of bytes 1 .. cdb_len the usage map forbids, as a
    /// big-endian `u128` of the CDB.
    pub reserved: u128,
    pub dir: DataDirection,
    /// LBA field: (offset, size in bytes); size 0 = none.
    pub lba: (u8, u8),
    /// Transfer, allocation or parameter list length: (offset, size).
    pub count: (u8, u8),
    /// Which of the LBA/count layouts `lba` and `count` describe, worked
    /// out with the table (see [`LbaLayout`]).
    pub layout: LbaLayout,
    pub flags: u16,
    pub kind: OpKind,
    /// Nominal and recommended timeouts in seconds (REPORT SUPPORTED OPERATION CODES, RCTD).
    pub timeouts: (u32, u32),
    pub pr: PrClass,
}

/// The layout of an operation's LBA and count fields, so that the READ and
/// WRITE decoders need not compare offsets per command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LbaLayout {
    /// LBA in bytes 2-5, count in bytes 7-8 (the 10-byte READ/WRITE layout).
    Ten,
    /// LBA in bytes 2-9, count in bytes 10-13 (the 16-byte layout).
    Sixteen,
    /// A 6-byte CDB: 21-bit LBA in bytes 1-3, count in byte 4 (0 means 256).
    Six,
    /// Anything else: the `lba` and `count` fields as they are.
    Fields,
}

impl LbaLayout {
    /// The layout of fields `lba` and `count` of a CDB of `cdb_len` bytes.
    pub(crate) const fn of(lba: (u8, u8), count: (u8, u8), cdb_len: usize) -> LbaLayout {
        match (lba, count) {
            ((2, 4), (7, 2)) => LbaLayout::Ten,
            ((2, 8), (10, 4)) => LbaLayout::Sixteen,
            _ if cdb_len == 6 => LbaLayout::Six,
            _ => LbaLayout::Fields,
        }
    }
}

impl OpInfo {
    #[inline]
    pub(crate) fn has(&self, flag: u16) -> bool {
        self.flags & flag != 0
    }
}

const fn reserved_mask(bytes: &[u8]) -> u128 {
    let mut m = 0u128;
    let mut i = 1;
    while i < bytes.len() && i < 16 {
        m |= ((!bytes[i]) as u128) << ((15 - i) * 8);
        i += 1;
    }
    m
}

const fn usage(bytes: &[u8]) -> [u8; 16] {
    let mut u = [0u8; 16];
    let mut i = 0;
    while i < bytes.len() && i < 16 {
        u[i] = bytes[i];
        i += 1;
    }
    u
}

const N: DataDirection = DataDirection::None;
const I: DataDirection = DataDirection::In;
const O: DataDirection = DataDirection::Out;
const FF: u8 = 0xff;
/// CONTROL byte: NACA is supported, LINK and the vendor bits are not.
const CTL: u8 = 0x04;
const T_SHORT: (u32, u32) = (1, 30);
const T_IO: (u32, u32) = (1, 60);
const T_LONG: (u32, u32) = (0, 3600 * 24);

#[allow(clippy::too_many_arguments)]
const fn op(
    opcode: u8,
    sa: Option<u8>,
    name: &'static str,
    bytes: &[u8],
    dir: DataDirection,
    lba: (u8, u8),
    count: (u8, u8),
    flags: u16,
    kind: OpKind,
    timeouts: (u32, u32),
    pr: PrClass,
) -> OpInfo {
    OpInfo {
        opcode,
        sa,
        name,
        cdb_len: bytes.len() as u8,
        usage: usage(bytes),
        reserved: reserved_mask(bytes),
        dir,
        lba,
        count,
        layout: LbaLayout::of(lba, count, bytes.len()),
        flags,
        kind,
        timeouts,
        pr,
    }
}

/// `o` with the bits `mask` of CDB byte `byte` accepted and ignored: an
/// obsolete bit old initiators still set. Its usage stays 0 (the device
/// server does not use it, SPC-5 6.35.3), but it is not refused.
const fn ignoring(mut o: OpInfo, byte: usize, mask: u8) -> OpInfo {
    o.reserved &= !((mask as u128) << ((15 - byte) * 8));
    o
}

use OpKind as K;
use PrClass as P;

const INFO_FLAGS: u16 = NO_LU | UA_EXEMPT | RES2_OK | BG_OK | STANDBY_OK;
const REPORT_FLAGS: u16 = RES2_OK | BG_OK | STANDBY_OK;
const RW: u16 = MEDIUM;
const WR: u16 = MEDIUM | WRITES;

/// The table, sorted by opcode then service action.
#[rustfmt::skip]
const TABLE: [OpInfo; 66] = [
    op(0x00, None, "TEST UNIT READY", &[FF, 0, 0, 0, 0, CTL], N, (0, 0), (0, 0), MEDIUM, K::TestUnitReady, T_SHORT, P::Allowed),
    op(0x03, None, "REQUEST SENSE", &[FF, 0x01, 0, 0, FF, CTL], I, (0, 0), (4, 1), INFO_FLAGS, K::RequestSense, T_SHORT, P::Allowed),
    op(0x04, None, "FORMAT UNIT", &[FF, 0x3f, 0, 0, 0, CTL], O, (0, 0), (0, 0), WR, K::FormatUnit, T_LONG, P::Write),
    op(0x08, None, "READ(6)", &[FF, 0x1f, FF, FF, FF, CTL], I, (1, 3), (4, 1), RW, K::Read, T_IO, P::Read),
    op(0x0a, None, "WRITE(6)", &[FF, 0x1f, FF, FF, FF, CTL], O, (1, 3), (4, 1), WR, K::Write, T_IO, P::Write),
    op(0x12, None, "INQUIRY", &[FF, 0x01, FF, FF, FF, CTL], I, (0, 0), (3, 2), INFO_FLAGS, K::Inquiry, T_SHORT, P::Allowed),
    op(0x15, None, "MODE SELECT(6)", &[FF, 0x11, 0, 0, FF, CTL], O, (0, 0), (4, 1), STANDBY_OK, K::ModeSelect, T_SHORT, P::Write),
    op(0x16, None, "RESERVE(6)", &[FF, 0, 0, 0, 0, CTL], N, (0, 0), (0, 0), 0, K::Reserve, T_SHORT, P::Write),
    op(0x17, None, "RELEASE(6)", &[FF, 0, 0, 0, 0, CTL], N, (0, 0), (0, 0), RES2_OK, K::Release, T_SHORT, P::Write),
    op(0x1a, None, "MODE SENSE(6)", &[FF, 0x08, FF, FF, FF, CTL], I, (0, 0), (4, 1), STANDBY_OK, K::ModeSense, T_SHORT, P::Read),
    op(0x1b, None, "START STOP UNIT", &[FF, 0x01, 0, 0x0f, 0xf7, CTL], N, (0, 0), (0, 0), 0, K::StartStopUnit, T_SHORT, P::Write),
    op(0x1e, None, "PREVENT ALLOW MEDIUM REMOVAL", &[FF, 0, 0, 0, 0x03, CTL], N, (0, 0), (0, 0), 0, K::PreventAllow, T_SHORT, P::Allowed),
    op(0x25, None, "READ CAPACITY(10)", &[FF, 0, FF, FF, FF, FF, 0, 0, 0x01, CTL], I, (2, 4), (0, 0), MEDIUM, K::ReadCapacity10, T_SHORT, P::Allowed),
    op(0x28, None, "READ(10)", &[FF, 0x1c, FF, FF, FF, FF, 0x1f, FF, FF, CTL], I, (2, 4), (7, 2), RW, K::Read, T_IO, P::Read),
    op(0x2a, None, "WRITE(10)", &[FF, 0x18, FF, FF, FF, FF, 0x1f, FF, FF, CTL], O, (2, 4), (7, 2), WR, K::Write, T_IO, P::Write),
    op(0x2e, None, "WRITE AND VERIFY(10)", &[FF, 0x12, FF, FF, FF, FF, 0x1f, FF, FF, CTL], O, (2, 4), (7, 2), WR, K::WriteVerify, T_IO, P::Write),
    op(0x2f, None, "VERIFY(10)", &[FF, 0x16, FF, FF, FF, FF, 0x1f, FF, FF, CTL], O, (2, 4), (7, 2), RW, K::Verify, T_IO, P::Read),
    op(0x34, None, "PRE-FETCH(10)", &[FF, 0x02, FF, FF, FF, FF, 0x1f, FF, FF, CTL], N, (2, 4), (7, 2), RW, K::Prefetch, T_IO, P::Read),
    // Byte 1 bit 2 is SBC-3's SYNC_NV, obsolete in SBC-4: accepted and ignored
    // (a cache flush is always to the medium), so an old initiator that sets it
    // gets the answer the command deserves (e.g. MEDIUM NOT PRESENT, which
    // libiscsi's NoMedia.NoMediaSBC expects) rather than INVALID FIELD IN CDB.
    ignoring(op(0x35, None, "SYNCHRONIZE CACHE(10)", &[FF, 0x02, FF, FF, FF, FF, 0x1f, FF, FF, CTL], N, (2, 4), (7, 2), RW, K::SyncCache, T_IO, P::Write), 1, 0x04),
    op(0x37, None, "READ DEFECT DATA(10)", &[FF, 0, 0x1f, 0, 0, 0, 0, FF, FF, CTL], I, (0, 0), (7, 2), MEDIUM, K::ReadDefectData, T_SHORT, P::Read),
    op(0x41, None, "WRITE SAME(10)", &[FF, 0x08, FF, FF, FF, FF, 0x1f, FF, FF, CTL], O, (2, 4), (7, 2), WR | EXACT_OUT, K::WriteSame, T_LONG, P::Write),
    op(0x42, None, "UNMAP", &[FF, 0, 0, 0, 0, 0, 0x1f, FF, FF, CTL], O, (0, 0), (7, 2), WR, K::Unmap, T_LONG, P::Write),
    op(0x48, Some(0x01), "SANITIZE", &[FF, 0xbf, 0, 0, 0, 0, 0, FF, FF, CTL], O, (0, 0), (7, 2), WR, K::Sanitize, T_LONG, P::Write),
    op(0x48, Some(0x02), "SANITIZE", &[FF, 0xbf, 0, 0, 0, 0, 0, FF, FF, CTL], O, (0, 0), (7, 2), WR, K::Sanitize, T_LONG, P::Write),
    op(0x48, Some(0x1f), "SANITIZE", &[FF, 0x9f, 0, 0, 0, 0, 0, FF, FF, CTL], O, (0, 0), (7, 2), WR, K::Sanitize, T_SHORT, P::Write),
    op(0x4d, None, "LOG SENSE", &[FF, 0, FF, FF, 0, FF, FF, FF, FF, CTL], I, (0, 0), (7, 2), STANDBY_OK, K::LogSense, T_SHORT, P::Allowed),
    op(0x55, None, "MODE SELECT(10)", &[FF, 0x11, 0, 0, 0, 0, 0, FF, FF, CTL], O, (0, 0), (7, 2), STANDBY_OK, K::ModeSelect, T_SHORT, P::Write),
    op(0x56, None, "RESERVE(10)", &[FF, 0, 0, 0, 0, 0, 0, 0, 0, CTL], N, (0, 0), (0, 0), 0, K::Reserve, T_SHORT, P::Write),
    op(0x57, None, "RELEASE(10)", &[FF, 0, 0, 0, 0, 0, 0, 0, 0, CTL], N, (0, 0), (0, 0), RES2_OK, K::Release, T_SHORT, P::Write),
    op(0x5a, None, "MODE SENSE(10)", &[FF, 0x18, FF, FF, 0, 0, 0, FF, FF, CTL], I, (0, 0), (7, 2), STANDBY_OK, K::ModeSense, T_SHORT, P::Read),
    op(0x5e, Some(0x00), "PERSISTENT RESERVE IN", &[FF, 0x1f, 0, 0, 0, 0, 0, FF, FF, CTL], I, (0, 0), (7, 2), STANDBY_OK, K::PrIn, T_SHORT, P::Allowed),
    op(0x5e, Some(0x01), "PERSISTENT RESERVE IN", &[FF, 0x1f, 0, 0, 0, 0, 0, FF, FF, CTL], I, (0, 0), (7, 2), STANDBY_OK, K::PrIn, T_SHORT, P::Allowed),
    op(0x5e, Some(0x02), "PERSISTENT RESERVE IN", &[FF, 0x1f, 0, 0, 0, 0, 0, FF, FF, CTL], I, (0, 0), (7, 2), STANDBY_OK, K::PrIn, T_SHORT, P::Allowed),
    op(0x5e, Some(0x03), "PERSISTENT RESERVE IN", &[FF, 0x1f, 0, 0, 0, 0, 0, FF, FF, CTL], I, (0, 0), (7, 2), STANDBY_OK, K::PrIn, T_SHORT, P::Allowed),
    op(0x5f, Some(0x00), "PERSISTENT RESERVE OUT", &[FF, 0x1f, FF, 0, 0, FF, FF, FF, FF, CTL], O, (0, 0), (5, 4), STANDBY_OK, K::PrOut, T_SHORT, P::Allowed),
    op(0x5f, Some(0x01), "PERSISTENT RESERVE OUT", &[FF, 0x1f, FF, 0, 0, FF, FF, FF, FF, CTL], O, (0, 0), (5, 4), STANDBY_OK, K::PrOut, T_SHORT, P::Allowed),
    op(0x5f, Some(0x02), "PERSISTENT RESERVE OUT", &[FF, 0x1f, FF, 0, 0, FF, FF, FF, FF, CTL], O, (0, 0), (5, 4), STANDBY_OK, K::PrOut, T_SHORT, P::Allowed),
    op(0x5f, Some(0x03), "PERSISTENT RESERVE OUT", &[FF, 0x1f, FF, 0, 0, FF, FF, FF, FF, CTL], O, (0, 0), (5, 4), STANDBY_OK, K::PrOut, T_SHORT, P::Allowed),
    op(0x5f, Some(0x04), "PERSISTENT RESERVE OUT", &[FF, 0x1f, FF, 0, 0, FF, FF, FF, FF, CTL], O, (0, 0), (5, 4), STANDBY_OK, K::PrOut, T_SHORT, P::Allowed),
    op(0x5f, Some(0x05), "PERSISTENT RESERVE OUT", &[FF, 0x1f, FF, 0, 0, FF, FF, FF, FF, CTL], O, (0, 0), (5, 4), STANDBY_OK, K::PrOut, T_SHORT, P::Allowed),
    op(0x5f, Some(0x06), "PERSISTENT RESERVE OUT", &[FF, 0x1f, FF, 0, 0, FF, FF, FF, FF, CTL], O, (0, 0), (5, 4), STANDBY_OK, K::PrOut, T_SHORT, P::Allowed),
    op(0x5f, Some(0x07), "PERSISTENT RESERVE OUT", &[FF, 0x1f, FF, 0, 0, FF, FF, FF, FF, CTL], O, (0, 0), (5, 4), STANDBY_OK, K::PrOut, T_SHORT, P::Allowed),
    op(0x83, Some(0x00), "EXTENDED COPY", &[FF, 0x1f, 0, 0, 0, 0, 0, 0, 0, 0, FF, FF, FF, FF, 0, CTL], O, (0, 0), (10, 4), MEDIUM, K::ExtendedCopy, T_LONG, P::Write),
    op(0x84, Some(0x00), "RECEIVE COPY RESULTS", &[FF, 0x1f, FF, 0, 0, 0, 0, 0, 0, 0, FF, FF, FF, FF, 0, CTL], I, (0, 0), (10, 4), 0, K::ReceiveCopyResults, T_SHORT, P::Read),
    op(0x84, Some(0x03), "RECEIVE COPY RESULTS", &[FF, 0x1f, FF, 0, 0, 0, 0, 0, 0, 0, FF, FF, FF, FF, 0, CTL], I, (0, 0), (10, 4), 0, K::ReceiveCopyResults, T_SHORT, P::Read),
    op(0x88, None, "READ(16)", &[FF, 0x1c, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, 0x1f, CTL], I, (2, 8), (10, 4), RW, K::Read, T_IO, P::Read),
    op(0x89, None, "COMPARE AND WRITE", &[FF, 0x18, FF, FF, FF, FF, FF, FF, FF, FF, 0, 0, 0, FF, 0x1f, CTL], O, (2, 8), (13, 1), WR | EXACT_OUT, K::CompareAndWrite, T_IO, P::Write),
    op(0x8a, None, "WRITE(16)", &[FF, 0x18, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, 0x1f, CTL], O, (2, 8), (10, 4), WR, K::Write, T_IO, P::Write),
    op(0x8b, None, "ORWRITE(16)", &[FF, 0x18, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, 0x1f, CTL], O, (2, 8), (10, 4), WR, K::OrWrite, T_IO, P::Write),
    op(0x8e, None, "WRITE AND VERIFY(16)", &[FF, 0x12, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, 0x1f, CTL], O, (2, 8), (10, 4), WR, K::WriteVerify, T_IO, P::Write),
    op(0x8f, None, "VERIFY(16)", &[FF, 0x16, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, 0x1f, CTL], O, (2, 8), (10, 4), RW, K::Verify, T_IO, P::Read),
    op(0x90, None, "PRE-FETCH(16)", &[FF, 0x02, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, 0x1f, CTL], N, (2, 8), (10, 4), RW, K::Prefetch, T_IO, P::Read),
    ignoring(op(0x91, None, "SYNCHRONIZE CACHE(16)", &[FF, 0x02, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, 0x1f, CTL], N, (2, 8), (10, 4), RW, K::SyncCache, T_IO, P::Write), 1, 0x04),
    op(0x93, None, "WRITE SAME(16)", &[FF, 0x09, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, 0x1f, CTL], O, (2, 8), (10, 4), WR | EXACT_OUT, K::WriteSame, T_LONG, P::Write),
    op(0x9c, None, "WRITE ATOMIC(16)", &[FF, 0x18, FF, FF, FF, FF, FF, FF, FF, FF, 0, 0, FF, FF, 0x1f, CTL], O, (2, 8), (12, 2), WR, K::WriteAtomic, T_IO, P::Write),
    op(0x9e, Some(0x10), "READ CAPACITY(16)", &[FF, 0x1f, 0, 0, 0, 0, 0, 0, 0, 0, FF, FF, FF, FF, 0, CTL], I, (0, 0), (10, 4), MEDIUM, K::ReadCapacity16, T_SHORT, P::Allowed),
    op(0x9e, Some(0x12), "GET LBA STATUS", &[FF, 0x1f, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, 0, CTL], I, (2, 8), (10, 4), MEDIUM, K::GetLbaStatus, T_SHORT, P::Read),
    op(0xa0, None, "REPORT LUNS", &[FF, 0, FF, 0, 0, 0, FF, FF, FF, FF, 0, CTL], I, (0, 0), (6, 4), INFO_FLAGS, K::ReportLuns, T_SHORT, P::Allowed),
    op(0xa3, Some(0x0a), "REPORT TARGET PORT GROUPS", &[FF, 0xff, 0, 0, 0, 0, FF, FF, FF, FF, 0, CTL], I, (0, 0), (6, 4), REPORT_FLAGS, K::ReportTpg, T_SHORT, P::Allowed),
    op(0xa3, Some(0x0c), "REPORT SUPPORTED OPERATION CODES", &[FF, 0x1f, 0x87, FF, FF, FF, FF, FF, FF, FF, 0, CTL], I, (0, 0), (6, 4), REPORT_FLAGS, K::Rsoc, T_SHORT, P::Read),
    op(0xa3, Some(0x0d), "REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS", &[FF, 0x1f, 0x80, 0, 0, 0, FF, FF, FF, FF, 0, CTL], I, (0, 0), (6, 4), REPORT_FLAGS, K::Rstmf, T_SHORT, P::Read),
    op(0xa8, None, "READ(12)", &[FF, 0x1c, FF, FF, FF, FF, FF, FF, FF, FF, 0x1f, CTL], I, (2, 4), (6, 4), RW, K::Read, T_IO, P::Read),
    op(0xaa, None, "WRITE(12)", &[FF, 0x18, FF, FF, FF, FF, FF, FF, FF, FF, 0x1f, CTL], O, (2, 4), (6, 4), WR, K::Write, T_IO, P::Write),
    op(0xae, None, "WRITE AND VERIFY(12)", &[FF, 0x12, FF, FF, FF, FF, FF, FF, FF, FF, 0x1f, CTL], O, (2, 4), (6, 4), WR, K::WriteVerify, T_IO, P::Write),
    op(0xaf, None, "VERIFY(12)", &[FF, 0x16, FF, FF, FF, FF, FF, FF, FF, FF, 0x1f, CTL], O, (2, 4), (6, 4), RW, K::Verify, T_IO, P::Read),
    op(0xb7, None, "READ DEFECT DATA(12)", &[FF, 0x1f, FF, FF, FF, FF, FF, FF, FF, FF, 0, CTL], I, (0, 0), (6, 4), MEDIUM, K::ReadDefectData, T_SHORT, P::Read),
];

/// Rows with the same opcode are contiguous; this maps an opcode to its
/// first row (0xff: unsupported).
const fn build_index() -> [u8; 256] {
    let mut index = [0xffu8; 256];
    let mut i = TABLE.len();
    while i > 0 {
        i -= 1;
        index[TABLE[i].opcode as usize] = i as u8;
    }
    index
}

static OPS: [OpInfo; TABLE.len()] = TABLE;
static INDEX: [u8; 256] = build_index();

/// Every supported operation, in opcode order.
pub(crate) fn all_ops() -> &'static [OpInfo] {
    &OPS
}

/// Whether the opcode's rows are told apart by a service action (byte 1, bits 4-0).
pub(crate) fn has_service_action(opcode: u8) -> bool {
    INDEX
        .get(usize::from(opcode))
        .and_then(|&i| OPS.get(usize::from(i)))
        .is_some_and(|o| o.sa.is_some())
}

/// The row of an opcode without service actions, in two loads: `None` for an
/// opcode that is not supported or whose rows need the service action (then
/// [`lookup`] decides). Where it answers, it answers as [`lookup`] does.
#[inline(always)]
pub(crate) fn lookup_plain(opcode: u8) -> Option<&'static OpInfo> {
    let o = OPS.get(usize::from(*INDEX.get(usize::from(opcode))?))?;
    o.sa.is_none().then_some(o)
}

/// The operation of a CDB.
pub(crate) fn lookup(cdb: &[u8; 16]) -> Result<&'static OpInfo, SenseReason> {
    lookup_op(cdb[0], cdb[1] & 0x1f).ok_or(if has_service_action(cdb[0]) {
        SenseReason::InvalidFieldInCdb(FieldPointer::bit(1, 4))
    } else {
        SenseReason::InvalidOpcode
    })
}

/// The row of an opcode and (if it has them) service action.
pub(crate) fn lookup_op(opcode: u8, sa: u8) -> Option<&'static OpInfo> {
    let first = usize::from(*INDEX.get(usize::from(opcode))?);
    let rows = OPS.get(first..)?;
    rows.iter()
        .take_while(|o| o.opcode == opcode)
        .find(|o| o.sa.is_none_or(|s| s == sa))
}

/// INVALID FIELD IN CDB at the first set bit the usage bitmap does not allow.
pub(crate) fn check_reserved(op: &OpInfo, cdb: &[u8; 16]) -> Result<(), SenseReason> {
    // One 128-bit AND: the CDB against the bits its usage map forbids.
    let bad = u128::from_be_bytes(*cdb) & op.reserved;
    if bad == 0 {
        return Ok(());
    }
    let lz = bad.leading_zeros();
    let (byte, bit) = ((lz / 8) as u16, 7 - (lz % 8) as u8);
    Err(SenseReason::InvalidFieldInCdb(FieldPointer::bit(byte, bit)))
}

/// Big-endian field of `size` (1-4 or 8) bytes at `off`; 0 for none.
pub(crate) fn be(cdb: &[u8; 16], (off, size): (u8, u8)) -> u64 {
    let o = usize::from(off);
    let get = |n: usize| cdb.get(o..o + n);
    match size {
        1 => get(1).map_or(0, |b| u64::from(b[0])),
        2 => get(2).map_or(0, |b| u64::from(u16::from_be_bytes([b[0], b[1]]))),
        3 => get(3).map_or(0, |b| u64::from(u32::from_be_bytes([0, b[0], b[1], b[2]]))),
        4 => get(4).map_or(0, |b| {
            u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        }),
        8 => get(8)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u64::from_be_bytes),
        _ => 0,
    }
}

/// Big-endian field of a byte slice (parameter data).
pub(crate) fn be_at(data: &[u8], off: usize, size: usize) -> u64 {
    data.get(off..off + size)
        .map_or(0, |b| b.iter().fold(0u64, |v, &x| v << 8 | u64::from(x)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cdb(bytes: &[u8]) -> [u8; 16] {
        let mut c = [0u8; 16];
        c[..bytes.len()].copy_from_slice(bytes);
        c
    }

    #[test]
    fn table_is_sorted_and_consistent() {
        for w in TABLE.windows(2) {
            let (a, b) = (&w[0], &w[1]);
            assert!(
                (a.opcode, a.sa) < (b.opcode, b.sa),
                "{} before {}",
                a.name,
                b.name
            );
        }
        for o in &TABLE {
            assert_eq!(o.usage[0], 0xff, "{}", o.name);
            let len = usize::from(o.cdb_len);
            assert!(matches!(len, 6 | 10 | 12 | 16), "{}", o.name);
            assert_eq!(o.usage[len - 1], CTL, "{}", o.name);
            assert_eq!(
                len,
                match o.opcode >> 5 {
                    0 => 6,
                    1 | 2 => 10,
                    4 => 16,
                    5 => 12,
                    _ => len,
                },
                "{}: group code and length",
                o.name
            );
            if let Some(sa) = o.sa {
                assert_eq!(o.usage[1] & 0x1f, 0x1f, "{}", o.name);
                assert!(sa <= 0x1f);
            }
            for (off, size) in [o.lba, o.count] {
                assert!(size == 0 || usize::from(off + size) < len, "{}", o.name);
            }
        }
    }

    #[test]
    fn layout_follows_the_fields() {
        for o in all_ops() {
            assert_eq!(
                o.layout,
                LbaLayout::of(o.lba, o.count, o.cdb_len.into()),
                "{}",
                o.name
            );
        }
        let l = |op: u8| lookup_op(op, 0).unwrap().layout;
        assert_eq!(l(0x08), LbaLayout::Six);
        assert_eq!(l(0x28), LbaLayout::Ten);
        assert_eq!(l(0x2a), LbaLayout::Ten);
        assert_eq!(l(0x88), LbaLayout::Sixteen);
        assert_eq!(l(0x8a), LbaLayout::Sixteen);
        assert_eq!(l(0xa8), LbaLayout::Fields);
    }

    #[test]
    fn lookup_plain_agrees_with_lookup() {
        for opcode in 0..=255u8 {
            for b1 in [0u8, 0x01, 0x10, 0x1f, 0xe0, 0xff] {
                let c = cdb(&[opcode, b1]);
                match lookup_plain(opcode) {
                    Some(o) => {
                        assert!(core::ptr::eq(o, lookup(&c).unwrap()), "{opcode:#x}");
                        assert!(o.sa.is_none());
                    }
                    None => assert!(lookup(&c).is_err() || has_service_action(opcode)),
                }
            }
        }
        assert!(lookup_plain(0x28).is_some_and(|o| matches!(o.kind, OpKind::Read)));
        assert!(
            lookup_plain(0x9e).is_none(),
            "SERVICE ACTION IN(16) needs its SA"
        );
    }

    #[test]
    fn lookup_by_opcode_and_service_action() {
        assert_eq!(lookup(&cdb(&[0x28])).unwrap().name, "READ(10)");
        assert_eq!(
            lookup(&cdb(&[0x9e, 0x12])).unwrap().kind,
            OpKind::GetLbaStatus
        );
        assert_eq!(
            lookup(&cdb(&[0x9e, 0x10])).unwrap().kind,
            OpKind::ReadCapacity16
        );
        assert_eq!(
            lookup(&cdb(&[0x9e, 0x11])).unwrap_err(),
            SenseReason::InvalidFieldInCdb(FieldPointer::bit(1, 4))
        );
        assert_eq!(
            lookup(&cdb(&[0xff])).unwrap_err(),
            SenseReason::InvalidOpcode
        );
        assert_eq!(
            lookup(&cdb(&[0x48, 0x03])).unwrap_err(),
            SenseReason::InvalidFieldInCdb(FieldPointer::bit(1, 4))
        );
    }

    #[test]
    fn reserved_bits_point_at_the_field() {
        let read10 = lookup(&cdb(&[0x28])).unwrap();
        assert_eq!(
            check_reserved(read10, &cdb(&[0x28, 0x18, 0, 0, 0, 0, 0, 0, 1, 0])),
            Ok(())
        );
        // RDPROTECT = 1 (no protection information): byte 1 bit 5.
        assert_eq!(
            check_reserved(read10, &cdb(&[0x28, 0x20, 0, 0, 0, 0, 0, 0, 1, 0])),
            Err(SenseReason::InvalidFieldInCdb(FieldPointer::bit(1, 5)))
        );
        // LINK in the control byte.
        assert_eq!(
            check_reserved(read10, &cdb(&[0x28, 0, 0, 0, 0, 0, 0, 0, 1, 1])),
            Err(SenseReason::InvalidFieldInCdb(FieldPointer::bit(9, 0)))
        );
        // SYNCHRONIZE CACHE: the obsolete SYNC_NV bit is accepted, though
        // its usage bit stays 0; the bits next to it are still refused.
        for op in [0x35u8, 0x91] {
            let sync = lookup(&cdb(&[op])).unwrap();
            assert_eq!(sync.usage[1], 0x02);
            assert_eq!(check_reserved(sync, &cdb(&[op, 0x06])), Ok(()));
            assert_eq!(
                check_reserved(sync, &cdb(&[op, 0x08])),
                Err(SenseReason::InvalidFieldInCdb(FieldPointer::bit(1, 3)))
            );
            assert_eq!(
                check_reserved(sync, &cdb(&[op, 0x01])),
                Err(SenseReason::InvalidFieldInCdb(FieldPointer::bit(1, 0)))
            );
        }
        assert_eq!(
            be(&cdb(&[0x28, 0, 1, 2, 3, 4, 0, 0, 8]), read10.lba),
            0x0102_0304
        );
        assert_eq!(
            be(&cdb(&[0x28, 0, 1, 2, 3, 4, 0, 1, 8]), read10.count),
            0x108
        );
    }
}
