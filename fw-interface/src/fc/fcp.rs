//! FCP information units: FCP_CMND, FCP_XFER_RDY and FCP_RSP (FCP-4), big-endian.
//!
//! Source: reference §8.2–§8.4 and §7.2 (the FCP_CMND inside an ATIO7), gotcha 9 (the task
//! management byte is a bit mask; more than one bit set is invalid).

use core::fmt;

use crate::bytes::{be32, set_be32};
use crate::error::need;
use crate::fixed::FixedBytes;
use crate::value::{FieldVisitor, Value, Visit};
use crate::{Lun, WireError};

/// Size of an FCP_CMND without additional CDB.
pub const FCP_CMND_MIN_LEN: usize = 32;
/// Offset of the CDB in an FCP_CMND.
pub const FCP_CMND_CDB_OFFSET: usize = 12;
/// The largest additional CDB length (in dwords) the 6-bit field can say.
pub const MAX_ADD_CDB_DWORDS: usize = 63;
/// The largest CDB an FCP_CMND can carry: 16 + 4·63 bytes.
pub const CDB_MAX_LEN: usize = 16 + 4 * MAX_ADD_CDB_DWORDS;
/// Size of FCP_XFER_RDY.
pub const FCP_XFER_RDY_LEN: usize = 12;
/// Size of FCP_RSP up to and including FCP_RSP_LEN.
pub const FCP_RSP_LEN: usize = 24;
/// Size of the short FCP_RSP some early implementations send when no flag is set.
pub const FCP_RSP_SHORT_LEN: usize = 12;
/// Largest sense data this crate keeps (SPC: 252 bytes).
pub const SENSE_MAX_LEN: usize = 252;

enum_with_unknown! {
    /// FCP_CMND byte 9 bits 0–2: the task attribute.
    pub enum TaskAttr(u8) {
        /// 0.
        Simple = 0 => "SIMPLE",
        /// 1.
        HeadOfQueue = 1 => "HEAD_OF_QUEUE",
        /// 2.
        Ordered = 2 => "ORDERED",
        /// 4.
        Aca = 4 => "ACA",
        /// 5: untagged (older FCP and the qla definitions).
        Untagged = 5 => "UNTAGGED",
    }
}

bit_flags! {
    /// FCP_CMND byte 10: task management flags (a bit mask; gotcha 9). Zero = a command.
    pub struct TmFlags: u8 {
        /// 0x02.
        const ABORT_TASK_SET = 0x02;
        /// 0x04.
        const CLEAR_TASK_SET = 0x04;
        /// 0x10.
        const LUN_RESET = 0x10;
        /// 0x20: obsolete since FCP-3.
        const TARGET_RESET = 0x20;
        /// 0x40.
        const CLEAR_ACA = 0x40;
    }
}

/// The task management function of a valid TM byte (exactly one known bit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TmFunction {
    /// 0x02.
    AbortTaskSet,
    /// 0x04.
    ClearTaskSet,
    /// 0x10.
    LunReset,
    /// 0x20.
    TargetReset,
    /// 0x40.
    ClearAca,
}

impl TmFlags {
    /// The function if exactly one known bit is set; `None` for zero, several bits or an
    /// unknown bit (the target answers those with FCP_RSP RSP_CODE 4, TMF rejected).
    pub fn function(self) -> Option<TmFunction> {
        Some(match self.bits() {
            0x02 => TmFunction::AbortTaskSet,
            0x04 => TmFunction::ClearTaskSet,
            0x10 => TmFunction::LunReset,
            0x20 => TmFunction::TargetReset,
            0x40 => TmFunction::ClearAca,
            _ => return None,
        })
    }
}

impl TmFunction {
    /// The TM byte of this function.
    pub const fn flags(self) -> TmFlags {
        match self {
            TmFunction::AbortTaskSet => TmFlags::ABORT_TASK_SET,
            TmFunction::ClearTaskSet => TmFlags::CLEAR_TASK_SET,
            TmFunction::LunReset => TmFlags::LUN_RESET,
            TmFunction::TargetReset => TmFlags::TARGET_RESET,
            TmFunction::ClearAca => TmFlags::CLEAR_ACA,
        }
    }
}

/// Data direction of a command, named from the initiator's side (FCP_CMND RDDATA/WRDATA).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DataDir {
    /// Neither bit: no data.
    None,
    /// WRDATA (bit 0): data from the initiator (a write).
    DataOut,
    /// RDDATA (bit 1): data to the initiator (a read).
    DataIn,
    /// Both bits: bidirectional (Linux rejects it).
    Bidirectional,
}

impl DataDir {
    /// From the RDDATA and WRDATA bits.
    pub const fn from_bits(rddata: bool, wrdata: bool) -> DataDir {
        match (rddata, wrdata) {
            (false, false) => DataDir::None,
            (false, true) => DataDir::DataOut,
            (true, false) => DataDir::DataIn,
            (true, true) => DataDir::Bidirectional,
        }
    }

    /// RDDATA.
    pub const fn rddata(self) -> bool {
        matches!(self, DataDir::DataIn | DataDir::Bidirectional)
    }

    /// WRDATA.
    pub const fn wrdata(self) -> bool {
        matches!(self, DataDir::DataOut | DataDir::Bidirectional)
    }

    /// `NONE`, `WR`, `RD` or `BIDI`.
    pub const fn label(self) -> &'static str {
        match self {
            DataDir::None => "NONE",
            DataDir::DataOut => "WR",
            DataDir::DataIn => "RD",
            DataDir::Bidirectional => "BIDI",
        }
    }
}

impl fmt::Display for DataDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A CDB in FCP form: 16 bytes plus the additional CDB, so its length is 16 + 4·n
/// (n ≤ 63). Shorter CDBs are zero-padded to 16 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cdb(FixedBytes<CDB_MAX_LEN>);

impl Default for Cdb {
    /// 16 zero bytes.
    fn default() -> Cdb {
        Cdb(FixedBytes::zeroed(16))
    }
}

impl Cdb {
    /// A CDB from its bytes, zero-padded to 16 and to a multiple of 4. `Err` if longer than
    /// [`CDB_MAX_LEN`].
    pub fn new(bytes: &[u8]) -> Result<Cdb, WireError> {
        if bytes.len() > CDB_MAX_LEN {
            return Err(WireError::Malformed("CDB longer than 268 bytes"));
        }
        let len = bytes.len().max(16).next_multiple_of(4);
        let mut buf = [0u8; CDB_MAX_LEN];
        buf[..bytes.len()].copy_from_slice(bytes);
        Ok(Cdb(FixedBytes::from_slice(&buf[..len])?))
    }

    /// All bytes (16 + 4·n).
    pub fn as_slice(&self) -> &[u8] {
        self.0.as_slice()
    }

    /// The length in bytes (16 + 4·n).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always `false`: a CDB has at least 16 bytes in FCP form.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The additional CDB length in dwords (n).
    pub fn add_cdb_len(&self) -> u8 {
        (self.len().saturating_sub(16) / 4) as u8
    }

    /// The operation code (byte 0).
    pub fn opcode(&self) -> u8 {
        self.as_slice().first().copied().unwrap_or(0)
    }

    /// The length implied by the opcode's group code (6, 10, 12 or 16 bytes; for 0x7F
    /// variable-length CDBs 8 + byte 7), capped at [`len`](Self::len). Used to print CDBs
    /// without their padding.
    pub fn command_len(&self) -> usize {
        let op = self.opcode();
        let n = match op >> 5 {
            0 => 6,
            1 | 2 => 10,
            5 => 12,
            3 if op == 0x7F => 8 + self.as_slice().get(7).copied().unwrap_or(0) as usize,
            _ => 16,
        };
        n.min(self.len())
    }

    /// The CDB without padding (see [`command_len`](Self::command_len)).
    pub fn command(&self) -> &[u8] {
        &self.as_slice()[..self.command_len()]
    }
}

impl fmt::Debug for Cdb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cdb{}", crate::HexBytes(self.as_slice()))
    }
}

impl fmt::Display for Cdb {
    /// The command bytes without padding, `[28 00 00 00 00 00 00 00 08 00]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&crate::HexBytes(self.command()), f)
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Cdb {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{=[u8]:02x}", self.command())
    }
}

mod field {
    pub const LUN: usize = 0;
    pub const CRN: usize = 8;
    pub const TASK: usize = 9;
    pub const TM_FLAGS: usize = 10;
    pub const FLAGS: usize = 11;
    pub const CDB: usize = 12;
}

/// A view of an FCP_CMND IU (32 + 4·n bytes).
#[derive(Debug, Clone)]
pub struct FcpCmnd<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> FcpCmnd<T> {
    /// Wraps a buffer without checking its length.
    pub const fn new_unchecked(buffer: T) -> FcpCmnd<T> {
        FcpCmnd { buffer }
    }

    /// Wraps a buffer that holds the whole IU including the additional CDB and FCP_DL.
    pub fn new_checked(buffer: T) -> Result<FcpCmnd<T>, WireError> {
        let v = FcpCmnd::new_unchecked(buffer);
        v.check_len()?;
        Ok(v)
    }

    /// Checks the fixed part, then the length the additional-CDB field announces.
    pub fn check_len(&self) -> Result<(), WireError> {
        let len = self.buffer.as_ref().len();
        need(FCP_CMND_MIN_LEN, len)?;
        need(self.total_len(), len)
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// 32 + 4·add_cdb_len.
    pub fn total_len(&self) -> usize {
        FCP_CMND_MIN_LEN + 4 * self.add_cdb_len() as usize
    }

    /// The bytes of the IU.
    pub fn as_bytes(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        &b[..b.len().min(self.total_len())]
    }

    accessors! {
        /// Bytes 0–7: FCP_LUN.
        lun, set_lun, field::LUN, lun;
        /// Byte 8: command reference number.
        crn, set_crn, field::CRN, u8;
        /// Byte 9 raw: bits 0–2 task attribute, bits 3–6 priority.
        task_byte, set_task_byte, field::TASK, u8;
        /// Byte 10 raw: task management flags.
        tm_flags_raw, set_tm_flags_raw, field::TM_FLAGS, u8;
        /// Byte 11 raw: bits 7–2 additional CDB length, bit 1 RDDATA, bit 0 WRDATA.
        flags_byte, set_flags_byte, field::FLAGS, u8;
    }

    /// Byte 9 bits 0–2.
    pub fn task_attr(&self) -> TaskAttr {
        TaskAttr::from(self.task_byte() & 7)
    }

    /// Byte 9 bits 3–6.
    pub fn priority(&self) -> u8 {
        (self.task_byte() >> 3) & 0xF
    }

    /// Byte 10.
    pub fn tm_flags(&self) -> TmFlags {
        TmFlags::from_bits_retain(self.tm_flags_raw())
    }

    /// Byte 11 bits 7–2: additional CDB length in dwords.
    pub fn add_cdb_len(&self) -> u8 {
        self.flags_byte() >> 2
    }

    /// Byte 11 bit 1.
    pub fn rddata(&self) -> bool {
        self.flags_byte() & 2 != 0
    }

    /// Byte 11 bit 0.
    pub fn wrdata(&self) -> bool {
        self.flags_byte() & 1 != 0
    }

    /// The CDB including the additional CDB (bytes 12 .. 28 + 4·n).
    pub fn cdb(&self) -> &[u8] {
        &self.buffer.as_ref()[field::CDB..self.total_len() - 4]
    }

    /// FCP_DL (BE32 at 28 + 4·n).
    pub fn fcp_dl(&self) -> u32 {
        be32(self.buffer.as_ref(), self.total_len() - 4)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> FcpCmnd<T> {
    /// Sets FCP_DL at the position the current additional CDB length implies.
    pub fn set_fcp_dl(&mut self, v: u32) {
        let at = self.total_len() - 4;
        set_be32(self.buffer.as_mut(), at, v)
    }

    /// The CDB area, writable (its size follows the current additional CDB length).
    pub fn cdb_mut(&mut self) -> &mut [u8] {
        let end = self.total_len() - 4;
        &mut self.buffer.as_mut()[field::CDB..end]
    }
}

/// A parsed FCP_CMND.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FcpCmndRepr {
    /// FCP_LUN.
    pub lun: Lun,
    /// Command reference number.
    pub crn: u8,
    /// Task attribute.
    pub task_attr: TaskAttr,
    /// Priority (0–15).
    pub priority: u8,
    /// Task management flags; empty for a command.
    pub tmf: TmFlags,
    /// Direction from RDDATA/WRDATA.
    pub dir: DataDir,
    /// CDB in FCP form (16 + 4·n bytes).
    pub cdb: Cdb,
    /// FCP_DL: expected data length.
    pub data_len: u32,
}

impl FcpCmndRepr {
    /// A SIMPLE command with no TMF, CRN 0, priority 0.
    pub fn command(
        lun: Lun,
        cdb: &[u8],
        dir: DataDir,
        data_len: u32,
    ) -> Result<FcpCmndRepr, WireError> {
        Ok(FcpCmndRepr {
            lun,
            crn: 0,
            task_attr: TaskAttr::Simple,
            priority: 0,
            tmf: TmFlags::empty(),
            dir,
            cdb: Cdb::new(cdb)?,
            data_len,
        })
    }

    /// A task management request (zero CDB, no data).
    pub fn task_management(lun: Lun, function: TmFunction) -> FcpCmndRepr {
        FcpCmndRepr {
            lun,
            crn: 0,
            task_attr: TaskAttr::Simple,
            priority: 0,
            tmf: function.flags(),
            dir: DataDir::None,
            cdb: Cdb::default(),
            data_len: 0,
        }
    }

    /// Parses an FCP_CMND view.
    pub fn parse<T: AsRef<[u8]>>(c: &FcpCmnd<T>) -> Result<FcpCmndRepr, WireError> {
        c.check_len()?;
        Ok(FcpCmndRepr {
            lun: c.lun(),
            crn: c.crn(),
            task_attr: c.task_attr(),
            priority: c.priority(),
            tmf: c.tm_flags(),
            dir: DataDir::from_bits(c.rddata(), c.wrdata()),
            cdb: Cdb(FixedBytes::from_slice(c.cdb())?),
            data_len: c.fcp_dl(),
        })
    }

    /// Parses an FCP_CMND from bytes (never panics).
    pub fn parse_bytes(b: &[u8]) -> Result<FcpCmndRepr, WireError> {
        FcpCmndRepr::parse(&FcpCmnd::new_checked(b)?)
    }

    /// 32 + 4·n.
    pub fn buffer_len(&self) -> usize {
        FCP_CMND_MIN_LEN + 4 * self.cdb.add_cdb_len() as usize
    }

    /// Writes [`buffer_len`](Self::buffer_len) bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, c: &mut FcpCmnd<T>) -> Result<(), WireError> {
        need(self.buffer_len(), c.buffer.as_ref().len())?;
        c.set_lun(self.lun);
        c.set_crn(self.crn);
        c.set_task_byte((u8::from(self.task_attr) & 7) | (self.priority & 0xF) << 3);
        c.set_tm_flags_raw(self.tmf.bits());
        c.set_flags_byte(
            self.cdb.add_cdb_len() << 2 | (self.dir.rddata() as u8) << 1 | self.dir.wrdata() as u8,
        );
        c.cdb_mut().copy_from_slice(self.cdb.as_slice());
        c.set_fcp_dl(self.data_len);
        Ok(())
    }

    /// Writes into bytes.
    pub fn emit_bytes(&self, b: &mut [u8]) -> Result<(), WireError> {
        self.emit(&mut FcpCmnd::new_unchecked(b))
    }

    /// `lun=.. attr=.. cdb=[..] fcp_dl=.. RD` (+ `tmf=`, `crn=`, `prio=` when non-zero).
    pub(crate) fn fmt_fields(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "lun={} attr={}", self.lun, self.task_attr)?;
        if !self.tmf.is_empty() {
            write!(f, " tmf={}", self.tmf)?;
        }
        write!(f, " cdb={} fcp_dl={} {}", self.cdb, self.data_len, self.dir)?;
        if self.crn != 0 {
            write!(f, " crn={}", self.crn)?;
        }
        if self.priority != 0 {
            write!(f, " prio={}", self.priority)?;
        }
        Ok(())
    }

    pub(crate) fn visit_fields(&self, v: &mut dyn FieldVisitor) {
        v.field("lun", Value::Lun(self.lun));
        v.field("crn", Value::U8(self.crn));
        v.field("task_attr", self.task_attr.to_value());
        v.field("priority", Value::U8(self.priority));
        v.field("tmf_flags", Value::U8(self.tmf.bits()));
        v.field("rddata", Value::Bool(self.dir.rddata()));
        v.field("wrdata", Value::Bool(self.dir.wrdata()));
        v.field("add_cdb_len", Value::U8(self.cdb.add_cdb_len()));
        v.field("cdb", Value::Bytes(self.cdb.as_slice()));
        v.field("fcp_dl", Value::U32(self.data_len));
    }
}

impl fmt::Display for FcpCmndRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FCP_CMND ")?;
        self.fmt_fields(f)
    }
}

impl Visit for FcpCmndRepr {
    fn visit(&self, v: &mut dyn FieldVisitor) {
        self.visit_fields(v)
    }
}

// ---------------------------------------------------------------------------------------------

/// A view of FCP_XFER_RDY: `BE32 DATA_RO`, `BE32 BURST_LEN`, 4 reserved.
#[derive(Debug, Clone)]
pub struct FcpXferRdy<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> FcpXferRdy<T> {
    view_basics!(FcpXferRdy, FCP_XFER_RDY_LEN);

    accessors! {
        /// Bytes 0–3: relative offset of the requested data.
        data_ro, set_data_ro, 0, be32;
        /// Bytes 4–7: burst length.
        burst_len, set_burst_len, 4, be32;
    }
}

/// A parsed FCP_XFER_RDY.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FcpXferRdyRepr {
    /// DATA_RO.
    pub relative_offset: u32,
    /// BURST_LEN.
    pub burst_len: u32,
}

impl FcpXferRdyRepr {
    /// Parses a view.
    pub fn parse<T: AsRef<[u8]>>(x: &FcpXferRdy<T>) -> Result<FcpXferRdyRepr, WireError> {
        x.check_len()?;
        Ok(FcpXferRdyRepr {
            relative_offset: x.data_ro(),
            burst_len: x.burst_len(),
        })
    }

    /// 12.
    pub const fn buffer_len(&self) -> usize {
        FCP_XFER_RDY_LEN
    }

    /// Writes 12 bytes (reserved zero).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        x: &mut FcpXferRdy<T>,
    ) -> Result<(), WireError> {
        x.check_len()?;
        x.set_data_ro(self.relative_offset);
        x.set_burst_len(self.burst_len);
        x.buffer.as_mut()[8..12].fill(0);
        Ok(())
    }
}

impl fmt::Display for FcpXferRdyRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "XFER_RDY ro={} burst={}",
            self.relative_offset, self.burst_len
        )
    }
}

impl Visit for FcpXferRdyRepr {
    fn visit(&self, v: &mut dyn FieldVisitor) {
        v.field("data_ro", Value::U32(self.relative_offset));
        v.field("burst_len", Value::U32(self.burst_len));
    }
}

// ---------------------------------------------------------------------------------------------

bit_flags! {
    /// FCP_RSP byte 10.
    pub struct FcpRspFlags: u8 {
        /// 0x01: FCP_RSP_LEN valid (RSP_INFO present).
        const RSP_LEN_VALID = 0x01;
        /// 0x02: FCP_SNS_LEN valid (sense present).
        const SNS_LEN_VALID = 0x02;
        /// 0x04: FCP_RESID is an overrun.
        const RESID_OVER = 0x04;
        /// 0x08: FCP_RESID is an underrun.
        const RESID_UNDER = 0x08;
        /// 0x10: confirmation requested.
        const CONF_REQ = 0x10;
        /// 0x20: bidirectional read residual over.
        const BIDI_READ_OVER = 0x20;
        /// 0x40: bidirectional read residual under.
        const BIDI_READ_UNDER = 0x40;
        /// 0x80: bidirectional read residual valid.
        const BIDI_RSP = 0x80;
    }
}

enum_with_unknown! {
    /// FCP_RSP_INFO RSP_CODE.
    pub enum RspCode(u8) {
        /// 0: TMF complete / no failure.
        Complete = 0 => "TMF_COMPLETE",
        /// 1.
        DataLenInvalid = 1 => "FCP_DATA_LEN_INVALID",
        /// 2.
        CmndFieldsInvalid = 2 => "FCP_CMND_FIELDS_INVALID",
        /// 3.
        DataParamMismatch = 3 => "FCP_DATA_PARAM_MISMATCH",
        /// 4.
        TmfRejected = 4 => "TMF_REJECTED",
        /// 5.
        TmfFailed = 5 => "TMF_FAILED",
        /// 9.
        TmfIncorrectLun = 9 => "TMF_INCORRECT_LUN",
    }
}

/// A residual: FCP_RESID with its over/under flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Residual {
    /// No residual flag.
    #[default]
    None,
    /// Overrun by this many bytes (the command needed more than FCP_DL).
    Over(u32),
    /// Underrun by this many bytes (less data moved than FCP_DL).
    Under(u32),
}

impl Residual {
    /// The count (0 for `None`).
    pub const fn count(self) -> u32 {
        match self {
            Residual::None => 0,
            Residual::Over(n) | Residual::Under(n) => n,
        }
    }
}

impl fmt::Display for Residual {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Residual::None => f.write_str("NONE"),
            Residual::Over(n) => write!(f, "OVER({n})"),
            Residual::Under(n) => write!(f, "UNDER({n})"),
        }
    }
}

/// Sense data, up to 252 bytes, wire order.
pub type SenseData = FixedBytes<SENSE_MAX_LEN>;

/// A view of an FCP_RSP IU. Accessors past byte 11 read 0 on the short 12-byte form.
#[derive(Debug, Clone)]
pub struct FcpRsp<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> FcpRsp<T> {
    /// Wraps a buffer without checking its length.
    pub const fn new_unchecked(buffer: T) -> FcpRsp<T> {
        FcpRsp { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<FcpRsp<T>, WireError> {
        let v = FcpRsp::new_unchecked(buffer);
        v.check_len()?;
        Ok(v)
    }

    /// At least 12 bytes; 24 plus RSP_INFO and sense when any of the flags that need the
    /// rest is set (the short form is tolerated only without them).
    pub fn check_len(&self) -> Result<(), WireError> {
        let len = self.buffer.as_ref().len();
        need(FCP_RSP_SHORT_LEN, len)?;
        let fl = self.flags();
        let needs_tail = fl.intersects(
            FcpRspFlags::RSP_LEN_VALID
                | FcpRspFlags::SNS_LEN_VALID
                | FcpRspFlags::RESID_OVER
                | FcpRspFlags::RESID_UNDER,
        );
        if needs_tail {
            need(FCP_RSP_LEN, len)?;
            need(self.total_len(), len)?;
        }
        Ok(())
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn byte(&self, i: usize) -> u8 {
        self.buffer.as_ref().get(i).copied().unwrap_or(0)
    }

    fn be32_or0(&self, at: usize) -> u32 {
        u32::from_be_bytes([
            self.byte(at),
            self.byte(at + 1),
            self.byte(at + 2),
            self.byte(at + 3),
        ])
    }

    /// Bytes 8–9: retry delay timer / status qualifier.
    pub fn retry_delay(&self) -> u16 {
        u16::from_be_bytes([self.byte(8), self.byte(9)])
    }

    /// Byte 10.
    pub fn flags(&self) -> FcpRspFlags {
        FcpRspFlags::from_bits_retain(self.byte(10))
    }

    /// Byte 11: SCSI status.
    pub fn scsi_status(&self) -> u8 {
        self.byte(11)
    }

    /// Bytes 12–15: FCP_RESID.
    pub fn resid(&self) -> u32 {
        self.be32_or0(12)
    }

    /// Bytes 16–19: FCP_SNS_LEN (0 unless SNS_LEN_VALID).
    pub fn sns_len(&self) -> u32 {
        if self.flags().contains(FcpRspFlags::SNS_LEN_VALID) {
            self.be32_or0(16)
        } else {
            0
        }
    }

    /// Bytes 20–23: FCP_RSP_LEN (0 unless RSP_LEN_VALID).
    pub fn rsp_len(&self) -> u32 {
        if self.flags().contains(FcpRspFlags::RSP_LEN_VALID) {
            self.be32_or0(20)
        } else {
            0
        }
    }

    /// 24 + RSP_LEN + SNS_LEN when any length is valid, else 24 (or 12 for the short form).
    pub fn total_len(&self) -> usize {
        let tail = (self.rsp_len() as usize).saturating_add(self.sns_len() as usize);
        if self.buffer.as_ref().len() < FCP_RSP_LEN && tail == 0 {
            FCP_RSP_SHORT_LEN
        } else {
            FCP_RSP_LEN.saturating_add(tail)
        }
    }

    /// FCP_RSP_INFO (empty unless RSP_LEN_VALID).
    pub fn rsp_info(&self) -> &[u8] {
        let n = self.rsp_len() as usize;
        self.buffer
            .as_ref()
            .get(FCP_RSP_LEN..FCP_RSP_LEN.saturating_add(n))
            .unwrap_or(&[])
    }

    /// Sense data (empty unless SNS_LEN_VALID).
    pub fn sense(&self) -> &[u8] {
        let at = FCP_RSP_LEN.saturating_add(self.rsp_len() as usize);
        let n = self.sns_len() as usize;
        self.buffer
            .as_ref()
            .get(at..at.saturating_add(n))
            .unwrap_or(&[])
    }
}

/// A parsed FCP_RSP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FcpRspRepr {
    /// Bytes 8–9.
    pub retry_delay: u16,
    /// The flags other than RSP_LEN_VALID, SNS_LEN_VALID, RESID_OVER and RESID_UNDER
    /// (those follow from the other fields): CONF_REQ and the bidirectional bits.
    pub flags: FcpRspFlags,
    /// SCSI status.
    pub scsi_status: u8,
    /// FCP_RESID with its flag.
    pub residual: Residual,
    /// RSP_CODE when FCP_RSP_INFO is present (RSP_LEN 4 or 8 accepted; emitted as 8).
    pub rsp_code: Option<RspCode>,
    /// Sense data (SNS_LEN_VALID when non-empty).
    pub sense: SenseData,
}

impl FcpRspRepr {
    const DERIVED: FcpRspFlags = FcpRspFlags::from_bits_retain(0x0F);

    /// A status-only response (GOOD has `scsi_status` 0).
    pub fn status(
        scsi_status: u8,
        residual: Residual,
        sense: &[u8],
    ) -> Result<FcpRspRepr, WireError> {
        Ok(FcpRspRepr {
            retry_delay: 0,
            flags: FcpRspFlags::empty(),
            scsi_status,
            residual,
            rsp_code: None,
            sense: SenseData::from_slice(sense)?,
        })
    }

    /// A TMF response with RSP_CODE.
    pub fn tmf(code: RspCode) -> FcpRspRepr {
        FcpRspRepr {
            retry_delay: 0,
            flags: FcpRspFlags::empty(),
            scsi_status: 0,
            residual: Residual::None,
            rsp_code: Some(code),
            sense: SenseData::new(),
        }
    }

    /// Parses a view (the short 12-byte form included).
    pub fn parse<T: AsRef<[u8]>>(r: &FcpRsp<T>) -> Result<FcpRspRepr, WireError> {
        r.check_len()?;
        let fl = r.flags();
        let residual = match (
            fl.contains(FcpRspFlags::RESID_OVER),
            fl.contains(FcpRspFlags::RESID_UNDER),
        ) {
            (false, false) => Residual::None,
            (true, false) => Residual::Over(r.resid()),
            (false, true) => Residual::Under(r.resid()),
            (true, true) => {
                return Err(WireError::Malformed(
                    "FCP_RSP: both RESID_OVER and RESID_UNDER",
                ));
            }
        };
        let rsp_code = if fl.contains(FcpRspFlags::RSP_LEN_VALID) {
            match r.rsp_info() {
                [_, _, _, code] | [_, _, _, code, _, _, _, _] => Some(RspCode::from(*code)),
                _ => return Err(WireError::Malformed("FCP_RSP: RSP_LEN not 4 or 8")),
            }
        } else {
            None
        };
        let sense = SenseData::from_slice(r.sense())
            .map_err(|_| WireError::Unsupported("FCP_RSP: sense longer than 252 bytes"))?;
        Ok(FcpRspRepr {
            retry_delay: r.retry_delay(),
            flags: fl.difference(Self::DERIVED),
            scsi_status: r.scsi_status(),
            residual,
            rsp_code,
            sense,
        })
    }

    /// Parses bytes (never panics).
    pub fn parse_bytes(b: &[u8]) -> Result<FcpRspRepr, WireError> {
        FcpRspRepr::parse(&FcpRsp::new_checked(b)?)
    }

    /// The flag byte this response is sent with.
    pub fn wire_flags(&self) -> FcpRspFlags {
        let mut fl = self.flags.difference(Self::DERIVED);
        fl.set(FcpRspFlags::RSP_LEN_VALID, self.rsp_code.is_some());
        fl.set(FcpRspFlags::SNS_LEN_VALID, !self.sense.is_empty());
        fl.set(
            FcpRspFlags::RESID_OVER,
            matches!(self.residual, Residual::Over(_)),
        );
        fl.set(
            FcpRspFlags::RESID_UNDER,
            matches!(self.residual, Residual::Under(_)),
        );
        fl
    }

    /// 24 + 8 (if RSP_CODE) + sense length. The full form is always emitted.
    pub fn buffer_len(&self) -> usize {
        FCP_RSP_LEN + if self.rsp_code.is_some() { 8 } else { 0 } + self.sense.len()
    }

    /// Writes [`buffer_len`](Self::buffer_len) bytes.
    pub fn emit_bytes(&self, b: &mut [u8]) -> Result<(), WireError> {
        need(self.buffer_len(), b.len())?;
        b[..8].fill(0);
        b[8..10].copy_from_slice(&self.retry_delay.to_be_bytes());
        b[10] = self.wire_flags().bits();
        b[11] = self.scsi_status;
        set_be32(b, 12, self.residual.count());
        set_be32(b, 16, self.sense.len() as u32);
        let mut at = FCP_RSP_LEN;
        if let Some(code) = self.rsp_code {
            set_be32(b, 20, 8);
            b[at..at + 8].copy_from_slice(&[0, 0, 0, code.into(), 0, 0, 0, 0]);
            at += 8;
        } else {
            set_be32(b, 20, 0);
        }
        b[at..at + self.sense.len()].copy_from_slice(self.sense.as_slice());
        Ok(())
    }

    /// Writes into a view.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, r: &mut FcpRsp<T>) -> Result<(), WireError> {
        self.emit_bytes(r.buffer.as_mut())
    }
}

impl fmt::Display for FcpRspRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FCP_RSP status={:#04x}", self.scsi_status)?;
        if self.residual != Residual::None {
            write!(f, " resid={}", self.residual)?;
        }
        if let Some(c) = self.rsp_code {
            write!(f, " rsp_code={c}")?;
        }
        if !self.sense.is_empty() {
            write!(f, " sense={}", self.sense)?;
        }
        if !self.flags.is_empty() {
            write!(f, " flags={}", self.flags)?;
        }
        if self.retry_delay != 0 {
            write!(f, " retry_delay={}", self.retry_delay)?;
        }
        Ok(())
    }
}

impl Visit for FcpRspRepr {
    fn visit(&self, v: &mut dyn FieldVisitor) {
        v.field("retry_delay", Value::U16(self.retry_delay));
        v.field("flags", Value::U8(self.wire_flags().bits()));
        v.field("scsi_status", Value::U8(self.scsi_status));
        v.field("resid", Value::U32(self.residual.count()));
        v.field("sns_len", Value::U32(self.sense.len() as u32));
        v.field(
            "rsp_len",
            Value::U32(if self.rsp_code.is_some() { 8 } else { 0 }),
        );
        if let Some(c) = self.rsp_code {
            v.field("rsp_code", c.to_value());
        }
        v.field("sense", Value::Bytes(self.sense.as_slice()));
    }
}

view_display!(FcpCmnd, FcpCmndRepr::parse, "FCP_CMND");
view_display!(FcpXferRdy, FcpXferRdyRepr::parse, "XFER_RDY");
view_display!(FcpRsp, FcpRspRepr::parse, "FCP_RSP");

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::value::test_util::Collect;
    use std::string::ToString;

    /// READ(10) of 8 blocks on LUN 1, by hand from reference §8.2.
    const READ10: [u8; 32] = [
        0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // FCP_LUN
        0x05, // CRN
        0x0a, // task byte: attr ORDERED(2), priority 1
        0x00, // TM flags
        0x02, // add_cdb_len 0, RDDATA
        0x28, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, // CDB
        0x00, 0x00, 0x10, 0x00, // FCP_DL 4096
    ];

    fn read10() -> FcpCmndRepr {
        FcpCmndRepr {
            lun: Lun::from_index(1).unwrap(),
            crn: 5,
            task_attr: TaskAttr::Ordered,
            priority: 1,
            tmf: TmFlags::empty(),
            dir: DataDir::DataIn,
            cdb: Cdb::new(&[0x28, 0, 0, 0, 0x10, 0, 0, 0, 8, 0]).unwrap(),
            data_len: 4096,
        }
    }

    #[test]
    fn golden_fcp_cmnd() {
        let v = FcpCmnd::new_checked(&READ10[..]).unwrap();
        assert_eq!(FcpCmndRepr::parse(&v).unwrap(), read10());
        assert_eq!(
            (
                v.crn(),
                v.priority(),
                v.add_cdb_len(),
                v.rddata(),
                v.wrdata()
            ),
            (5, 1, 0, true, false)
        );
        assert_eq!(
            (v.task_byte(), v.tm_flags_raw(), v.flags_byte()),
            (0x0a, 0, 0x02)
        );
        assert_eq!(v.cdb().len(), 16);
        assert_eq!(v.as_bytes().len(), 32);
        let mut out = [0xA5u8; 32];
        read10()
            .emit(&mut FcpCmnd::new_unchecked(&mut out[..]))
            .unwrap();
        assert_eq!(out, READ10);
        assert_eq!(read10().buffer_len(), 32);
        assert_eq!(
            read10().to_string(),
            "FCP_CMND lun=0001000000000000 attr=ORDERED cdb=[28 00 00 00 10 00 00 00 08 00] fcp_dl=4096 RD crn=5 prio=1"
        );
        assert_eq!(v.to_string(), read10().to_string());
        let c = Collect::of(&read10());
        c.assert_unique();
        assert_eq!(c.get("cdb"), "28000000100000000800000000000000");
        assert_eq!(c.get("rddata"), "true");
        assert_eq!(c.get("task_attr"), "ORDERED");
    }

    #[test]
    fn golden_fcp_cmnd_with_additional_cdb() {
        // 32-byte variable-length CDB (0x7F, additional length 0x18): add_cdb_len = 4 dwords.
        let mut b = [0u8; 48];
        b[0..8].copy_from_slice(&[0; 8]); // LUN 0
        b[8] = 0; // CRN
        b[9] = 0x00; // SIMPLE
        b[10] = 0x00; // no TMF
        b[11] = (4 << 2) | 0x01; // add_cdb_len 4, WRDATA
        b[12] = 0x7f; // opcode
        b[19] = 0x18; // additional CDB length
        for (i, x) in b[20..44].iter_mut().enumerate() {
            *x = i as u8 + 1;
        }
        b[44..48].copy_from_slice(&[0x00, 0x00, 0x02, 0x00]); // FCP_DL at 28 + 16 = 44
        let r = FcpCmndRepr::parse_bytes(&b).unwrap();
        assert_eq!(r.cdb.len(), 32);
        assert_eq!(r.cdb.add_cdb_len(), 4);
        assert_eq!(r.cdb.command_len(), 32);
        assert_eq!((r.dir, r.data_len), (DataDir::DataOut, 512));
        let mut out = [0xA5u8; 48];
        r.emit_bytes(&mut out).unwrap();
        assert_eq!(out, b);
        assert!(FcpCmndRepr::parse_bytes(&b[..47]).is_err());
        assert_eq!(FcpCmnd::new_unchecked(&b[..]).fcp_dl(), 512);
    }

    #[test]
    fn tm_and_direction_helpers() {
        let r = FcpCmndRepr::task_management(Lun::default(), TmFunction::LunReset);
        let mut b = [0u8; 32];
        r.emit_bytes(&mut b).unwrap();
        assert_eq!(b[10], 0x10);
        assert_eq!(FcpCmndRepr::parse_bytes(&b).unwrap(), r);
        assert!(r.to_string().contains("tmf=LUN_RESET"));
        assert_eq!(TmFlags::from_bits_retain(0x12).function(), None);
        assert_eq!(TmFlags::empty().function(), None);
        for f in [
            TmFunction::AbortTaskSet,
            TmFunction::ClearTaskSet,
            TmFunction::LunReset,
            TmFunction::TargetReset,
            TmFunction::ClearAca,
        ] {
            assert_eq!(f.flags().function(), Some(f));
        }
        for (rd, wr, d, l) in [
            (false, false, DataDir::None, "NONE"),
            (false, true, DataDir::DataOut, "WR"),
            (true, false, DataDir::DataIn, "RD"),
            (true, true, DataDir::Bidirectional, "BIDI"),
        ] {
            assert_eq!(DataDir::from_bits(rd, wr), d);
            assert_eq!(
                (d.rddata(), d.wrdata(), d.to_string().as_str()),
                (rd, wr, l)
            );
        }
        assert_eq!(TaskAttr::from(3).to_string(), "UNKNOWN(0x3)");
        let cmd = FcpCmndRepr::command(Lun::default(), &[0x00], DataDir::None, 0).unwrap();
        assert_eq!(cmd.cdb.command(), &[0u8; 6]);
        assert!(Cdb::new(&[0; 269]).is_err());
        assert_eq!(Cdb::new(&[0xA0; 17]).unwrap().len(), 20);
        assert_eq!(Cdb::new(&[0x88; 16]).unwrap().command_len(), 16);
        assert_eq!(Cdb::new(&[0xA8; 12]).unwrap().command_len(), 12);
        assert_eq!(Cdb::default().len(), 16);
        assert!(!Cdb::default().is_empty());
        assert_eq!(Cdb::default().to_string(), "[00 00 00 00 00 00]");
        assert_eq!(
            std::format!("{:?}", Cdb::new(&[1]).unwrap()),
            "Cdb[01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00]"
        );
    }

    #[test]
    fn golden_xfer_rdy() {
        let b = [
            0x00, 0x00, 0x10, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        ];
        let v = FcpXferRdy::new_checked(&b[..]).unwrap();
        let r = FcpXferRdyRepr::parse(&v).unwrap();
        assert_eq!(
            r,
            FcpXferRdyRepr {
                relative_offset: 4096,
                burst_len: 65536
            }
        );
        let mut out = [0xA5u8; 12];
        r.emit(&mut FcpXferRdy::new_checked(&mut out[..]).unwrap())
            .unwrap();
        assert_eq!(out, b);
        assert_eq!(r.to_string(), "XFER_RDY ro=4096 burst=65536");
        assert_eq!(r.buffer_len(), 12);
        assert_eq!(Collect::of(&r).get("burst_len"), "65536");
    }

    #[test]
    fn golden_fcp_rsp_with_sense_and_residual() {
        let mut b = [0u8; 24 + 18];
        b[8..10].copy_from_slice(&[0x00, 0x00]); // retry delay
        b[10] = 0x02 | 0x08; // SNS_LEN_VALID | RESID_UNDER
        b[11] = 0x02; // CHECK CONDITION
        b[12..16].copy_from_slice(&[0x00, 0x00, 0x02, 0x00]); // resid 512
        b[16..20].copy_from_slice(&[0x00, 0x00, 0x00, 0x12]); // sns_len 18
        b[20..24].copy_from_slice(&[0x00, 0x00, 0x00, 0x00]); // rsp_len 0
        b[24] = 0x70; // fixed sense
        b[26] = 0x05; // ILLEGAL REQUEST
        b[31] = 0x0a; // additional length
        b[36] = 0x24; // ASC invalid field in CDB
        let v = FcpRsp::new_checked(&b[..]).unwrap();
        let r = FcpRspRepr::parse(&v).unwrap();
        assert_eq!(r.residual, Residual::Under(512));
        assert_eq!(r.scsi_status, 2);
        assert_eq!(r.sense.len(), 18);
        assert_eq!(r.rsp_code, None);
        assert_eq!(
            (v.sns_len(), v.rsp_len(), v.total_len(), v.rsp_info()),
            (18, 0, 42, &[][..])
        );
        let mut out = [0xA5u8; 42];
        r.emit_bytes(&mut out).unwrap();
        assert_eq!(out, b);
        assert!(
            r.to_string()
                .starts_with("FCP_RSP status=0x02 resid=UNDER(512) sense=[70 00 05")
        );
        assert!(FcpRsp::new_checked(&b[..41]).is_err());
    }

    #[test]
    fn golden_fcp_rsp_tmf_and_short_form() {
        let mut b = [0u8; 32];
        b[10] = 0x01; // RSP_LEN_VALID
        b[20..24].copy_from_slice(&[0, 0, 0, 8]); // rsp_len 8
        b[27] = 0x04; // RSP_CODE TMF rejected
        let r = FcpRspRepr::parse_bytes(&b).unwrap();
        assert_eq!(r, FcpRspRepr::tmf(RspCode::TmfRejected));
        let mut out = [0xA5u8; 32];
        r.emit_bytes(&mut out).unwrap();
        assert_eq!(out, b);
        // A 4-byte RSP_INFO is accepted too.
        let mut b4 = [0u8; 28];
        b4[10] = 0x01;
        b4[23] = 4;
        b4[27] = 9;
        assert_eq!(
            FcpRspRepr::parse_bytes(&b4).unwrap().rsp_code,
            Some(RspCode::TmfIncorrectLun)
        );
        b4[23] = 5;
        assert!(FcpRspRepr::parse_bytes(&[b4.as_slice(), &[0]].concat()).is_err());
        // Short 12-byte GOOD status.
        let short = [0u8; 12];
        let r = FcpRspRepr::parse_bytes(&short).unwrap();
        assert_eq!(r, FcpRspRepr::status(0, Residual::None, &[]).unwrap());
        assert_eq!(FcpRsp::new_checked(&short[..]).unwrap().total_len(), 12);
        let mut short_bad = [0u8; 12];
        short_bad[10] = 0x08;
        assert!(FcpRspRepr::parse_bytes(&short_bad).is_err());
        let mut both = [0u8; 24];
        both[10] = 0x0C;
        assert_eq!(
            FcpRspRepr::parse_bytes(&both),
            Err(WireError::Malformed(
                "FCP_RSP: both RESID_OVER and RESID_UNDER"
            ))
        );
        assert!(FcpRspRepr::parse_bytes(&[0u8; 11]).is_err());
        let c = Collect::of(&FcpRspRepr::tmf(RspCode::TmfFailed));
        c.assert_unique();
        assert_eq!(c.get("rsp_code"), "TMF_FAILED");
        assert_eq!(c.get("rsp_len"), "8");
        let conf = FcpRspRepr {
            flags: FcpRspFlags::CONF_REQ,
            retry_delay: 3,
            ..FcpRspRepr::status(8, Residual::Over(1), &[]).unwrap()
        };
        let mut cb = [0u8; 24];
        conf.emit_bytes(&mut cb).unwrap();
        assert_eq!(cb[10], 0x14);
        assert_eq!(FcpRspRepr::parse_bytes(&cb).unwrap(), conf);
        assert!(conf.to_string().ends_with("flags=CONF_REQ retry_delay=3"));
        assert_eq!(Residual::Over(4).count(), 4);
    }
}
