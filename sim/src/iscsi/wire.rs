//! iSCSI PDU wire formats: the 48-byte Basic Header Segment as a checked byte view,
//! and one parsed `Repr` per PDU type, each with `parse` and `emit`.
//!
//! Heads up: read RFC 7143 §11 ("iSCSI PDU Formats") first. Layouts here follow
//! §11.2 (BHS, AHS), §11.3 (SCSI Command), §11.4 (SCSI Response), §11.5/§11.6 (Task
//! Management request/response), §11.7 (Data-Out/Data-In), §11.8 (R2T), §11.9
//! (Asynchronous Message), §11.10/§11.11 (Text), §11.12/§11.13 (Login), §11.14/§11.15
//! (Logout), §11.16 (SNACK), §11.17 (Reject), §11.18/§11.19 (NOP-Out/NOP-In).
//! All multi-byte fields are big-endian (network order).
//!
//! The reprs hold only the BHS fields. TotalAHSLength and DataSegmentLength are written by
//! whoever frames the PDU ([`Bhs::set_total_ahs_len`], [`Bhs::set_data_segment_len`]),
//! because only the framer knows the AHS, data and digests that follow.

use core::fmt;

/// Length of the Basic Header Segment (RFC 7143 §11.2.1).
pub const BHS_LEN: usize = 48;
/// The reserved tag value: "no task" for ITT/TTT (RFC 7143 §11.2.1.8, §11.7.4).
pub const RESERVED_TAG: u32 = 0xffff_ffff;
/// Largest DataSegmentLength the 24-bit field can carry.
pub const MAX_DATA_SEGMENT_LEN: u32 = 0x00ff_ffff;

macro_rules! enum_with_unknown {
    (
        $(#[$m:meta])* pub enum $name:ident($ty:ty) {
            $( $(#[$vm:meta])* $variant:ident = $value:expr ),+ $(,)?
        }
    ) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vm])* $variant, )+
            /// A value this implementation does not know, kept for logs.
            Unknown($ty),
        }
        impl From<$ty> for $name {
            fn from(v: $ty) -> Self {
                match v {
                    $( $value => $name::$variant, )+
                    other => $name::Unknown(other),
                }
            }
        }
        impl From<$name> for $ty {
            fn from(v: $name) -> $ty {
                match v {
                    $( $name::$variant => $value, )+
                    $name::Unknown(other) => other,
                }
            }
        }
    };
}

enum_with_unknown! {
    /// The 6-bit PDU opcode (RFC 7143 §11.2.1.2).
    pub enum Opcode(u8) {
        /// NOP-Out (initiator).
        NopOut = 0x00,
        /// SCSI Command (initiator).
        ScsiCommand = 0x01,
        /// SCSI Task Management Function Request (initiator).
        TaskMgmtRequest = 0x02,
        /// Login Request (initiator).
        LoginRequest = 0x03,
        /// Text Request (initiator).
        TextRequest = 0x04,
        /// SCSI Data-Out (initiator).
        DataOut = 0x05,
        /// Logout Request (initiator).
        LogoutRequest = 0x06,
        /// SNACK Request (initiator).
        Snack = 0x10,
        /// NOP-In (target).
        NopIn = 0x20,
        /// SCSI Response (target).
        ScsiResponse = 0x21,
        /// SCSI Task Management Function Response (target).
        TaskMgmtResponse = 0x22,
        /// Login Response (target).
        LoginResponse = 0x23,
        /// Text Response (target).
        TextResponse = 0x24,
        /// SCSI Data-In (target).
        DataIn = 0x25,
        /// Logout Response (target).
        LogoutResponse = 0x26,
        /// Ready To Transfer (target).
        R2t = 0x31,
        /// Asynchronous Message (target).
        AsyncMessage = 0x32,
        /// Reject (target).
        Reject = 0x3f,
    }
}

impl fmt::Display for Opcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Opcode::NopOut => "NOP-Out",
            Opcode::ScsiCommand => "SCSI-Cmd",
            Opcode::TaskMgmtRequest => "TMF-Req",
            Opcode::LoginRequest => "Login-Req",
            Opcode::TextRequest => "Text-Req",
            Opcode::DataOut => "Data-Out",
            Opcode::LogoutRequest => "Logout-Req",
            Opcode::Snack => "SNACK",
            Opcode::NopIn => "NOP-In",
            Opcode::ScsiResponse => "SCSI-Rsp",
            Opcode::TaskMgmtResponse => "TMF-Rsp",
            Opcode::LoginResponse => "Login-Rsp",
            Opcode::TextResponse => "Text-Rsp",
            Opcode::DataIn => "Data-In",
            Opcode::LogoutResponse => "Logout-Rsp",
            Opcode::R2t => "R2T",
            Opcode::AsyncMessage => "Async",
            Opcode::Reject => "Reject",
            Opcode::Unknown(v) => return write!(f, "opcode-{v:#04x}"),
        };
        f.write_str(s)
    }
}

/// A malformed PDU header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// Fewer bytes than the structure needs.
    Truncated,
    /// The opcode does not match the repr asked for.
    WrongOpcode(Opcode),
    /// A field holds a value the protocol forbids (the name says which).
    BadField(&'static str),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Truncated => f.write_str("truncated PDU"),
            WireError::WrongOpcode(op) => write!(f, "unexpected opcode {op}"),
            WireError::BadField(name) => write!(f, "invalid field {name}"),
        }
    }
}

impl std::error::Error for WireError {}

/// A SAM logical unit number as the 8 bytes carried on the wire (SAM-5 §4.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Lun(pub [u8; 8]);

impl Lun {
    /// LUN 0.
    pub const ZERO: Lun = Lun([0; 8]);

    /// The single-level LUN for `n`: peripheral addressing below 256, flat space
    /// addressing up to 16383 (SAM-5 §4.7.7); `None` above.
    pub fn from_index(n: u16) -> Option<Lun> {
        let mut b = [0u8; 8];
        if n < 256 {
            b[1] = n as u8;
        } else if n < 0x4000 {
            b[0] = 0x40 | (n >> 8) as u8;
            b[1] = n as u8;
        } else {
            return None;
        }
        Some(Lun(b))
    }

    /// The inverse of [`Lun::from_index`] for single-level peripheral/flat LUNs.
    pub fn index(&self) -> Option<u16> {
        if self.0[2..].iter().any(|&b| b != 0) {
            return None;
        }
        match self.0[0] >> 6 {
            0 if self.0[0] == 0 => Some(u16::from(self.0[1])),
            1 => Some((u16::from(self.0[0] & 0x3f) << 8) | u16::from(self.0[1])),
            _ => None,
        }
    }
}

impl fmt::Display for Lun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index() {
            Some(n) => write!(f, "{n}"),
            None => {
                for b in self.0 {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }
    }
}

/// Checked byte view of a Basic Header Segment (RFC 7143 §11.2.1).
#[derive(Debug, Clone)]
pub struct Bhs<T: AsRef<[u8]>> {
    buf: T,
}

mod field {
    pub const OPCODE: usize = 0;
    pub const FLAGS: usize = 1;
    pub const TOTAL_AHS: usize = 4;
    pub const DSL: core::ops::Range<usize> = 5..8;
    pub const LUN: core::ops::Range<usize> = 8..16;
    pub const ITT: usize = 16;
}

impl<T: AsRef<[u8]>> Bhs<T> {
    /// Wraps `buf` without checking its length.
    pub const fn new_unchecked(buf: T) -> Self {
        Bhs { buf }
    }

    /// Wraps `buf`, checking that it holds at least a whole BHS.
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        if buf.as_ref().len() < BHS_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Bhs { buf })
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buf
    }

    fn b(&self) -> &[u8] {
        self.buf.as_ref()
    }

    /// Byte `i` of the header.
    pub fn byte(&self, i: usize) -> u8 {
        self.b()[i]
    }

    /// Big-endian 16-bit word at byte `i`.
    pub fn u16_at(&self, i: usize) -> u16 {
        u16::from_be_bytes([self.b()[i], self.b()[i + 1]])
    }

    /// Big-endian 32-bit word at byte `i`.
    pub fn u32_at(&self, i: usize) -> u32 {
        let b = self.b();
        u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
    }

    /// The opcode (low 6 bits of byte 0).
    pub fn opcode(&self) -> Opcode {
        Opcode::from(self.b()[field::OPCODE] & 0x3f)
    }

    /// The I (immediate delivery) bit of an initiator PDU.
    pub fn immediate(&self) -> bool {
        self.b()[field::OPCODE] & 0x40 != 0
    }

    /// Byte 1: the F bit and opcode-specific flags.
    pub fn flags(&self) -> u8 {
        self.b()[field::FLAGS]
    }

    /// The F (final) bit.
    pub fn final_bit(&self) -> bool {
        self.flags() & 0x80 != 0
    }

    /// TotalAHSLength in bytes (the field counts 4-byte words).
    pub fn total_ahs_len(&self) -> usize {
        usize::from(self.b()[field::TOTAL_AHS]) * 4
    }

    /// DataSegmentLength in bytes, without padding.
    pub fn data_segment_len(&self) -> u32 {
        let d = &self.b()[field::DSL];
        u32::from_be_bytes([0, d[0], d[1], d[2]])
    }

    /// Bytes 8..16: LUN, or opcode-specific (ISID + TSIH in login PDUs).
    pub fn lun(&self) -> Lun {
        let mut l = [0u8; 8];
        l.copy_from_slice(&self.b()[field::LUN]);
        Lun(l)
    }

    /// Initiator Task Tag.
    pub fn itt(&self) -> u32 {
        self.u32_at(field::ITT)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Bhs<T> {
    fn bm(&mut self) -> &mut [u8] {
        self.buf.as_mut()
    }

    /// Sets byte `i`.
    pub fn set_byte(&mut self, i: usize, v: u8) {
        self.bm()[i] = v;
    }

    /// Writes a big-endian 16-bit word at byte `i`.
    pub fn set_u16_at(&mut self, i: usize, v: u16) {
        self.bm()[i..i + 2].copy_from_slice(&v.to_be_bytes());
    }

    /// Writes a big-endian 32-bit word at byte `i`.
    pub fn set_u32_at(&mut self, i: usize, v: u32) {
        self.bm()[i..i + 4].copy_from_slice(&v.to_be_bytes());
    }

    /// Writes the opcode and I bit.
    pub fn set_opcode(&mut self, op: Opcode, immediate: bool) {
        self.bm()[field::OPCODE] = (u8::from(op) & 0x3f) | if immediate { 0x40 } else { 0 };
    }

    /// Writes byte 1.
    pub fn set_flags(&mut self, v: u8) {
        self.bm()[field::FLAGS] = v;
    }

    /// Writes TotalAHSLength from a byte count, rounded up to 4-byte words and clipped
    /// to the field's 1020 bytes.
    pub fn set_total_ahs_len(&mut self, bytes: usize) {
        self.bm()[field::TOTAL_AHS] = bytes.div_ceil(4).min(255) as u8;
    }

    /// Writes DataSegmentLength (24 bits; larger values are clipped, never silently wrapped).
    pub fn set_data_segment_len(&mut self, len: u32) {
        let b = len.min(MAX_DATA_SEGMENT_LEN).to_be_bytes();
        self.bm()[field::DSL].copy_from_slice(&b[1..4]);
    }

    /// Writes bytes 8..16.
    pub fn set_lun(&mut self, lun: Lun) {
        self.bm()[field::LUN].copy_from_slice(&lun.0);
    }

    /// Writes the Initiator Task Tag.
    pub fn set_itt(&mut self, itt: u32) {
        self.set_u32_at(field::ITT, itt);
    }
}

impl<T: AsRef<[u8]>> fmt::Display for Bhs<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{} flags={:#04x} ahs={} dsl={} itt={:#010x}",
            self.opcode(),
            if self.immediate() { " I" } else { "" },
            self.flags(),
            self.total_ahs_len(),
            self.data_segment_len(),
            self.itt()
        )
    }
}

fn check(bhs: &Bhs<&[u8]>, op: Opcode) -> Result<(), WireError> {
    if bhs.b().len() < BHS_LEN {
        return Err(WireError::Truncated);
    }
    if bhs.opcode() != op {
        return Err(WireError::WrongOpcode(bhs.opcode()));
    }
    Ok(())
}

fn start(buf: &mut [u8; BHS_LEN], op: Opcode, immediate: bool, flags: u8) -> Bhs<&mut [u8]> {
    buf.fill(0);
    let mut h = Bhs::new_unchecked(&mut buf[..]);
    h.set_opcode(op, immediate);
    h.set_flags(flags);
    h
}

enum_with_unknown! {
    /// SCSI task attribute (RFC 7143 §11.3.1, ATTR field).
    pub enum TaskAttr(u8) {
        /// Untagged (treated as SIMPLE).
        Untagged = 0,
        /// SIMPLE.
        Simple = 1,
        /// ORDERED.
        Ordered = 2,
        /// HEAD OF QUEUE.
        HeadOfQueue = 3,
        /// ACA.
        Aca = 4,
    }
}

impl fmt::Display for TaskAttr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskAttr::Untagged => f.write_str("untagged"),
            TaskAttr::Simple => f.write_str("simple"),
            TaskAttr::Ordered => f.write_str("ordered"),
            TaskAttr::HeadOfQueue => f.write_str("hoq"),
            TaskAttr::Aca => f.write_str("aca"),
            TaskAttr::Unknown(v) => write!(f, "attr-{v}"),
        }
    }
}

/// SCSI Command (RFC 7143 §11.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScsiCommandRepr {
    /// I bit.
    pub immediate: bool,
    /// F bit: no unsolicited Data-Out PDUs follow.
    pub final_: bool,
    /// R bit: data is expected from the target.
    pub read: bool,
    /// W bit: data is expected from the initiator.
    pub write: bool,
    /// Task attribute.
    pub attr: TaskAttr,
    /// Logical unit.
    pub lun: Lun,
    /// Initiator Task Tag.
    pub itt: u32,
    /// Expected Data Transfer Length.
    pub edtl: u32,
    /// CmdSN.
    pub cmdsn: u32,
    /// ExpStatSN.
    pub exp_statsn: u32,
    /// The first 16 CDB bytes.
    pub cdb: [u8; 16],
}

impl ScsiCommandRepr {
    /// Parses a SCSI Command header.
    pub fn parse(h: &Bhs<&[u8]>) -> Result<Self, WireError> {
        check(h, Opcode::ScsiCommand)?;
        let fl = h.flags();
        let mut cdb = [0u8; 16];
        cdb.copy_from_slice(&h.b()[32..48]);
        Ok(ScsiCommandRepr {
            immediate: h.immediate(),
            final_: fl & 0x80 != 0,
            read: fl & 0x40 != 0,
            write: fl & 0x20 != 0,
            attr: TaskAttr::from(fl & 0x07),
            lun: h.lun(),
            itt: h.itt(),
            edtl: h.u32_at(20),
            cmdsn: h.u32_at(24),
            exp_statsn: h.u32_at(28),
            cdb,
        })
    }

    /// Emits the header (AHS and data lengths are left at 0).
    pub fn emit(&self, buf: &mut [u8; BHS_LEN]) {
        let fl = (if self.final_ { 0x80 } else { 0 })
            | (if self.read { 0x40 } else { 0 })
            | (if self.write { 0x20 } else { 0 })
            | (u8::from(self.attr) & 0x07);
        let mut h = start(buf, Opcode::ScsiCommand, self.immediate, fl);
        h.set_lun(self.lun);
        h.set_itt(self.itt);
        h.set_u32_at(20, self.edtl);
        h.set_u32_at(24, self.cmdsn);
        h.set_u32_at(28, self.exp_statsn);
        h.bm()[32..48].copy_from_slice(&self.cdb);
    }
}

impl fmt::Display for ScsiCommandRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SCSI-Cmd{} itt={:#x} lun={} op={:#04x} {}{}{} edtl={} cmdsn={} {}",
            if self.immediate { " I" } else { "" },
            self.itt,
            self.lun,
            self.cdb[0],
            if self.read { "R" } else { "" },
            if self.write { "W" } else { "" },
            if self.final_ { "F" } else { "" },
            self.edtl,
            self.cmdsn,
            self.attr
        )
    }
}

/// The residual of a command (RFC 7143 §11.4.5: O/U bits and Residual Count).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Residual {
    /// The whole Expected Data Transfer Length was transferred.
    #[default]
    None,
    /// Fewer bytes than expected were transferred (U bit); the count missing.
    Underflow(u32),
    /// The command wanted more than the expected length (O bit); the count not transferred.
    Overflow(u32),
}

impl Residual {
    fn flags(self) -> u8 {
        match self {
            Residual::None => 0,
            Residual::Overflow(_) => 0x04,
            Residual::Underflow(_) => 0x02,
        }
    }

    fn count(self) -> u32 {
        match self {
            Residual::None => 0,
            Residual::Overflow(n) | Residual::Underflow(n) => n,
        }
    }

    fn from_wire(flags: u8, count: u32) -> Result<Self, WireError> {
        match (flags & 0x04 != 0, flags & 0x02 != 0) {
            (false, false) => Ok(Residual::None),
            (true, false) => Ok(Residual::Overflow(count)),
            (false, true) => Ok(Residual::Underflow(count)),
            (true, true) => Err(WireError::BadField("O and U both set")),
        }
    }
}

impl fmt::Display for Residual {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Residual::None => f.write_str("resid=0"),
            Residual::Underflow(n) => write!(f, "under={n}"),
            Residual::Overflow(n) => write!(f, "over={n}"),
        }
    }
}

/// SCSI Response (RFC 7143 §11.4). Bidirectional residuals are not modelled (always 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScsiResponseRepr {
    /// Response: 0x00 command completed at target, 0x01 target failure.
    pub response: u8,
    /// SCSI status (valid when `response` is 0).
    pub status: u8,
    /// Residual (O/U bits and Residual Count).
    pub residual: Residual,
    /// Initiator Task Tag.
    pub itt: u32,
    /// StatSN.
    pub statsn: u32,
    /// ExpCmdSN.
    pub exp_cmdsn: u32,
    /// MaxCmdSN.
    pub max_cmdsn: u32,
    /// ExpDataSN: number of R2T and Data-In PDUs sent for the command.
    pub exp_datasn: u32,
}

impl ScsiResponseRepr {
    /// Parses a SCSI Response header.
    pub fn parse(h: &Bhs<&[u8]>) -> Result<Self, WireError> {
        check(h, Opcode::ScsiResponse)?;
        Ok(ScsiResponseRepr {
            response: h.byte(2),
            status: h.byte(3),
            residual: Residual::from_wire(h.flags(), h.u32_at(44))?,
            itt: h.itt(),
            statsn: h.u32_at(24),
            exp_cmdsn: h.u32_at(28),
            max_cmdsn: h.u32_at(32),
            exp_datasn: h.u32_at(36),
        })
    }

    /// Emits the header.
    pub fn emit(&self, buf: &mut [u8; BHS_LEN]) {
        let mut h = start(
            buf,
            Opcode::ScsiResponse,
            false,
            0x80 | self.residual.flags(),
        );
        h.set_byte(2, self.response);
        h.set_byte(3, self.status);
        h.set_itt(self.itt);
        h.set_u32_at(24, self.statsn);
        h.set_u32_at(28, self.exp_cmdsn);
        h.set_u32_at(32, self.max_cmdsn);
        h.set_u32_at(36, self.exp_datasn);
        h.set_u32_at(44, self.residual.count());
    }
}

impl fmt::Display for ScsiResponseRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SCSI-Rsp itt={:#x} resp={} status={:#04x} {} statsn={} expcmdsn={} maxcmdsn={}",
            self.itt,
            self.response,
            self.status,
            self.residual,
            self.statsn,
            self.exp_cmdsn,
            self.max_cmdsn
        )
    }
}

/// SCSI Data-In (RFC 7143 §11.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataInRepr {
    /// F bit: last PDU of a Data-In sequence.
    pub final_: bool,
    /// A bit (DataACK request; only with ERL > 0, so always false here).
    pub ack: bool,
    /// S bit with the SCSI status and residual it carries.
    pub status: Option<(u8, Residual)>,
    /// LUN (meaningful with the A bit).
    pub lun: Lun,
    /// Initiator Task Tag.
    pub itt: u32,
    /// Target Transfer Tag (reserved value unless A is set).
    pub ttt: u32,
    /// StatSN (meaningful with the S bit).
    pub statsn: u32,
    /// ExpCmdSN.
    pub exp_cmdsn: u32,
    /// MaxCmdSN.
    pub max_cmdsn: u32,
    /// DataSN.
    pub datasn: u32,
    /// Buffer Offset.
    pub offset: u32,
}

impl DataInRepr {
    /// Parses a Data-In header.
    pub fn parse(h: &Bhs<&[u8]>) -> Result<Self, WireError> {
        check(h, Opcode::DataIn)?;
        let fl = h.flags();
        let s = fl & 0x01 != 0;
        if s && fl & 0x80 == 0 {
            return Err(WireError::BadField("S without F"));
        }
        let status = if s {
            Some((h.byte(3), Residual::from_wire(fl, h.u32_at(44))?))
        } else {
            None
        };
        Ok(DataInRepr {
            final_: fl & 0x80 != 0,
            ack: fl & 0x40 != 0,
            status,
            lun: h.lun(),
            itt: h.itt(),
            ttt: h.u32_at(20),
            statsn: h.u32_at(24),
            exp_cmdsn: h.u32_at(28),
            max_cmdsn: h.u32_at(32),
            datasn: h.u32_at(36),
            offset: h.u32_at(40),
        })
    }

    /// Emits the header.
    pub fn emit(&self, buf: &mut [u8; BHS_LEN]) {
        let mut fl = (if self.final_ { 0x80 } else { 0 }) | (if self.ack { 0x40 } else { 0 });
        if let Some((_, r)) = self.status {
            fl |= 0x01 | r.flags();
        }
        let mut h = start(buf, Opcode::DataIn, false, fl);
        h.set_lun(self.lun);
        h.set_itt(self.itt);
        h.set_u32_at(20, self.ttt);
        h.set_u32_at(28, self.exp_cmdsn);
        h.set_u32_at(32, self.max_cmdsn);
        h.set_u32_at(36, self.datasn);
        h.set_u32_at(40, self.offset);
        if let Some((status, r)) = self.status {
            h.set_byte(3, status);
            h.set_u32_at(24, self.statsn);
            h.set_u32_at(44, r.count());
        }
    }
}

impl fmt::Display for DataInRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Data-In itt={:#x} datasn={} off={}{}",
            self.itt,
            self.datasn,
            self.offset,
            if self.final_ { " F" } else { "" }
        )?;
        if let Some((s, r)) = self.status {
            write!(f, " S status={s:#04x} {r} statsn={}", self.statsn)?;
        }
        Ok(())
    }
}

/// SCSI Data-Out (RFC 7143 §11.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataOutRepr {
    /// F bit: last PDU of a (solicited or unsolicited) Data-Out sequence.
    pub final_: bool,
    /// LUN (copied from the R2T for solicited data).
    pub lun: Lun,
    /// Initiator Task Tag.
    pub itt: u32,
    /// Target Transfer Tag (reserved value for unsolicited data).
    pub ttt: u32,
    /// ExpStatSN.
    pub exp_statsn: u32,
    /// DataSN.
    pub datasn: u32,
    /// Buffer Offset.
    pub offset: u32,
}

impl DataOutRepr {
    /// Parses a Data-Out header.
    pub fn parse(h: &Bhs<&[u8]>) -> Result<Self, WireError> {
        check(h, Opcode::DataOut)?;
        Ok(DataOutRepr {
            final_: h.final_bit(),
            lun: h.lun(),
            itt: h.itt(),
            ttt: h.u32_at(20),
            exp_statsn: h.u32_at(28),
            datasn: h.u32_at(36),
            offset: h.u32_at(40),
        })
    }

    /// Emits the header.
    pub fn emit(&self, buf: &mut [u8; BHS_LEN]) {
        let mut h = start(
            buf,
            Opcode::DataOut,
            false,
            if self.final_ { 0x80 } else { 0 },
        );
        h.set_lun(self.lun);
        h.set_itt(self.itt);
        h.set_u32_at(20, self.ttt);
        h.set_u32_at(28, self.exp_statsn);
        h.set_u32_at(36, self.datasn);
        h.set_u32_at(40, self.offset);
    }
}

impl fmt::Display for DataOutRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Data-Out itt={:#x} ttt={:#x} datasn={} off={}{}",
            self.itt,
            self.ttt,
            self.datasn,
            self.offset,
            if self.final_ { " F" } else { "" }
        )
    }
}

/// Ready To Transfer (RFC 7143 §11.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct R2tRepr {
    /// LUN.
    pub lun: Lun,
    /// Initiator Task Tag.
    pub itt: u32,
    /// Target Transfer Tag.
    pub ttt: u32,
    /// StatSN (the next StatSN; R2T does not advance it).
    pub statsn: u32,
    /// ExpCmdSN.
    pub exp_cmdsn: u32,
    /// MaxCmdSN.
    pub max_cmdsn: u32,
    /// R2TSN.
    pub r2tsn: u32,
    /// Buffer Offset.
    pub offset: u32,
    /// Desired Data Transfer Length.
    pub desired_len: u32,
}

impl R2tRepr {
    /// Parses an R2T header.
    pub fn parse(h: &Bhs<&[u8]>) -> Result<Self, WireError> {
        check(h, Opcode::R2t)?;
        Ok(R2tRepr {
            lun: h.lun(),
            itt: h.itt(),
            ttt: h.u32_at(20),
            statsn: h.u32_at(24),
            exp_cmdsn: h.u32_at(28),
            max_cmdsn: h.u32_at(32),
            r2tsn: h.u32_at(36),
            offset: h.u32_at(40),
            desired_len: h.u32_at(44),
        })
    }

    /// Emits the header.
    pub fn emit(&self, buf: &mut [u8; BHS_LEN]) {
        let mut h = start(buf, Opcode::R2t, false, 0x80);
        h.set_lun(self.lun);
        h.set_itt(self.itt);
        h.set_u32_at(20, self.ttt);
        h.set_u32_at(24, self.statsn);
        h.set_u32_at(28, self.exp_cmdsn);
        h.set_u32_at(32, self.max_cmdsn);
        h.set_u32_at(36, self.r2tsn);
        h.set_u32_at(40, self.offset);
        h.set_u32_at(44, self.desired_len);
    }
}

impl fmt::Display for R2tRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "R2T itt={:#x} ttt={:#x} r2tsn={} off={} len={}",
            self.itt, self.ttt, self.r2tsn, self.offset, self.desired_len
        )
    }
}

/// NOP-Out (RFC 7143 §11.18).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NopOutRepr {
    /// I bit.
    pub immediate: bool,
    /// LUN.
    pub lun: Lun,
    /// Initiator Task Tag (reserved value: no response wanted).
    pub itt: u32,
    /// Target Transfer Tag (echoes a NOP-In ping, else reserved).
    pub ttt: u32,
    /// CmdSN.
    pub cmdsn: u32,
    /// ExpStatSN.
    pub exp_statsn: u32,
}

impl NopOutRepr {
    /// Parses a NOP-Out header.
    pub fn parse(h: &Bhs<&[u8]>) -> Result<Self, WireError> {
        check(h, Opcode::NopOut)?;
        Ok(NopOutRepr {
            immediate: h.immediate(),
            lun: h.lun(),
            itt: h.itt(),
            ttt: h.u32_at(20),
            cmdsn: h.u32_at(24),
            exp_statsn: h.u32_at(28),
        })
    }

    /// Emits the header.
    pub fn emit(&self, buf: &mut [u8; BHS_LEN]) {
        let mut h = start(buf, Opcode::NopOut, self.immediate, 0x80);
        h.set_lun(self.lun);
        h.set_itt(self.itt);
        h.set_u32_at(20, self.ttt);
        h.set_u32_at(24, self.cmdsn);
        h.set_u32_at(28, self.exp_statsn);
    }
}

impl fmt::Display for NopOutRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "NOP-Out{} itt={:#x} ttt={:#x} cmdsn={}",
            if self.immediate { " I" } else { "" },
            self.itt,
            self.ttt,
            self.cmdsn
        )
    }
}

/// NOP-In (RFC 7143 §11.19).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NopInRepr {
    /// LUN.
    pub lun: Lun,
    /// Initiator Task Tag (reserved value for a target ping).
    pub itt: u32,
    /// Target Transfer Tag (a ping tag, or reserved in a reply).
    pub ttt: u32,
    /// StatSN.
    pub statsn: u32,
    /// ExpCmdSN.
    pub exp_cmdsn: u32,
    /// MaxCmdSN.
    pub max_cmdsn: u32,
}

impl NopInRepr {
    /// Parses a NOP-In header.
    pub fn parse(h: &Bhs<&[u8]>) -> Result<Self, WireError> {
        check(h, Opcode::NopIn)?;
        Ok(NopInRepr {
            lun: h.lun(),
            itt: h.itt(),
            ttt: h.u32_at(20),
            statsn: h.u32_at(24),
            exp_cmdsn: h.u32_at(28),
            max_cmdsn: h.u32_at(32),
        })
    }

    /// Emits the header.
    pub fn emit(&self, buf: &mut [u8; BHS_LEN]) {
        let mut h = start(buf, Opcode::NopIn, false, 0x80);
        h.set_lun(self.lun);
        h.set_itt(self.itt);
        h.set_u32_at(20, self.ttt);
        h.set_u32_at(24, self.statsn);
        h.set_u32_at(28, self.exp_cmdsn);
        h.set_u32_at(32, self.max_cmdsn);
    }
}

impl fmt::Display for NopInRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "NOP-In itt={:#x} ttt={:#x} statsn={}",
            self.itt, self.ttt, self.statsn
        )
    }
}

enum_with_unknown! {
    /// Task management function codes (RFC 7143 §11.5.1).
    pub enum TmfFunction(u8) {
        /// ABORT TASK.
        AbortTask = 1,
        /// ABORT TASK SET.
        AbortTaskSet = 2,
        /// CLEAR ACA.
        ClearAca = 3,
        /// CLEAR TASK SET.
        ClearTaskSet = 4,
        /// LOGICAL UNIT RESET.
        LogicalUnitReset = 5,
        /// TARGET WARM RESET.
        TargetWarmReset = 6,
        /// TARGET COLD RESET.
        TargetColdReset = 7,
        /// TASK REASSIGN.
        TaskReassign = 8,
    }
}

impl fmt::Display for TmfFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            TmfFunction::AbortTask => "ABORT TASK",
            TmfFunction::AbortTaskSet => "ABORT TASK SET",
            TmfFunction::ClearAca => "CLEAR ACA",
            TmfFunction::ClearTaskSet => "CLEAR TASK SET",
            TmfFunction::LogicalUnitReset => "LOGICAL UNIT RESET",
            TmfFunction::TargetWarmReset => "TARGET WARM RESET",
            TmfFunction::TargetColdReset => "TARGET COLD RESET",
            TmfFunction::TaskReassign => "TASK REASSIGN",
            TmfFunction::Unknown(v) => return write!(f, "TMF-{v}"),
        };
        f.write_str(s)
    }
}

/// Task Management Function Request (RFC 7143 §11.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TmfRequestRepr {
    /// I bit.
    pub immediate: bool,
    /// Function.
    pub function: TmfFunction,
    /// LUN.
    pub lun: Lun,
    /// Initiator Task Tag of this request.
    pub itt: u32,
    /// Referenced Task Tag (ABORT TASK, TASK REASSIGN).
    pub ref_itt: u32,
    /// CmdSN.
    pub cmdsn: u32,
    /// ExpStatSN.
    pub exp_statsn: u32,
    /// RefCmdSN.
    pub ref_cmdsn: u32,
    /// ExpDataSN.
    pub exp_datasn: u32,
}

impl TmfRequestRepr {
    /// Parses a TMF Request header.
    pub fn parse(h: &Bhs<&[u8]>) -> Result<Self, WireError> {
        check(h, Opcode::TaskMgmtRequest)?;
        Ok(TmfRequestRepr {
            immediate: h.immediate(),
            function: TmfFunction::from(h.flags() & 0x7f),
            lun: h.lun(),
            itt: h.itt(),
            ref_itt: h.u32_at(20),
            cmdsn: h.u32_at(24),
            exp_statsn: h.u32_at(28),
            ref_cmdsn: h.u32_at(32),
            exp_datasn: h.u32_at(36),
        })
    }

    /// Emits the header.
    pub fn emit(&self, buf: &mut [u8; BHS_LEN]) {
        let fl = 0x80 | (u8::from(self.function) & 0x7f);
        let mut h = start(buf, Opcode::TaskMgmtRequest, self.immediate, fl);
        h.set_lun(self.lun);
        h.set_itt(self.itt);
        h.set_u32_at(20, self.ref_itt);
        h.set_u32_at(24, self.cmdsn);
        h.set_u32_at(28, self.exp_statsn);
        h.set_u32_at(32, self.ref_cmdsn);
        h.set_u32_at(36, self.exp_datasn);
    }
}

impl fmt::Display for TmfRequestRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TMF-Req {} itt={:#x} lun={} ref_itt={:#x} cmdsn={}",
            self.function, self.itt, self.lun, self.ref_itt, self.cmdsn
        )
    }
}

enum_with_unknown! {
    /// Task Management Function Response codes (RFC 7143 §11.6.1).
    pub enum TmfResponseCode(u8) {
        /// Function complete.
        Complete = 0,
        /// Task does not exist.
        TaskDoesNotExist = 1,
        /// LUN does not exist.
        LunDoesNotExist = 2,
        /// Task still allegiant.
        TaskStillAllegiant = 3,
        /// Task allegiance reassignment not supported.
        ReassignNotSupported = 4,
        /// Task management function not supported.
        NotSupported = 5,
        /// Function authorization failed.
        AuthorizationFailed = 6,
        /// Function rejected.
        Rejected = 255,
    }
}

impl fmt::Display for TmfResponseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            TmfResponseCode::Complete => "function complete",
            TmfResponseCode::TaskDoesNotExist => "task does not exist",
            TmfResponseCode::LunDoesNotExist => "LUN does not exist",
            TmfResponseCode::TaskStillAllegiant => "task still allegiant",
            TmfResponseCode::ReassignNotSupported => "reassignment not supported",
            TmfResponseCode::NotSupported => "function not supported",
            TmfResponseCode::AuthorizationFailed => "authorization failed",
            TmfResponseCode::Rejected => "function rejected",
            TmfResponseCode::Unknown(v) => return write!(f, "tmf-response-{v}"),
        };
        f.write_str(s)
    }
}

/// Task Management Function Response (RFC 7143 §11.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TmfResponseRepr {
    /// Response code.
    pub response: TmfResponseCode,
    /// Initiator Task Tag of the request.
    pub itt: u32,
    /// StatSN.
    pub statsn: u32,
    /// ExpCmdSN.
    pub exp_cmdsn: u32,
    /// MaxCmdSN.
    pub max_cmdsn: u32,
}

impl TmfResponseRepr {
    /// Parses a TMF Response header.
    pub fn parse(h: &Bhs<&[u8]>) -> Result<Self, WireError> {
        check(h, Opcode::TaskMgmtResponse)?;
        Ok(TmfResponseRepr {
            response: TmfResponseCode::from(h.byte(2)),
            itt: h.itt(),
            statsn: h.u32_at(24),
            exp_cmdsn: h.u32_at(28),
            max_cmdsn: h.u32_at(32),
        })
    }

    /// Emits the header.
    pub fn emit(&self, buf: &mut [u8; BHS_LEN]) {
        let mut h = start(buf, Opcode::TaskMgmtResponse, false, 0x80);
        h.set_byte(2, u8::from(self.response));
        h.set_itt(self.itt);
        h.set_u32_at(24, self.statsn);
        h.set_u32_at(28, self.exp_cmdsn);
        h.set_u32_at(32, self.max_cmdsn);
    }
}

impl fmt::Display for TmfResponseRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TMF-Rsp itt={:#x} {} statsn={}",
            self.itt, self.response, self.statsn
        )
    }
}

enum_with_unknown! {
    /// Login stages, the CSG/NSG fields (RFC 7143 §11.12.3).
    pub enum Stage(u8) {
        /// SecurityNegotiation.
        Security = 0,
        /// LoginOperationalNegotiation.
        Operational = 1,
        /// FullFeaturePhase.
        FullFeature = 3,
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stage::Security => f.write_str("security"),
            Stage::Operational => f.write_str("operational"),
            Stage::FullFeature => f.write_str("full-feature"),
            Stage::Unknown(v) => write!(f, "stage-{v}"),
        }
    }
}

/// Login Request (RFC 7143 §11.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginRequestRepr {
    /// T bit: the initiator is ready to transit to `nsg`.
    pub transit: bool,
    /// C bit: the text continues in the next PDU.
    pub cont: bool,
    /// Current stage.
    pub csg: Stage,
    /// Next stage (meaningful with T).
    pub nsg: Stage,
    /// Version-max.
    pub version_max: u8,
    /// Version-min.
    pub version_min: u8,
    /// ISID (6 bytes).
    pub isid: [u8; 6],
    /// TSIH (0 for a new session).
    pub tsih: u16,
    /// Initiator Task Tag.
    pub itt: u32,
    /// CID.
    pub cid: u16,
    /// CmdSN.
    pub cmdsn: u32,
    /// ExpStatSN.
    pub exp_statsn: u32,
}

impl LoginRequestRepr {
    /// Parses a Login Request header.
    pub fn parse(h: &Bhs<&[u8]>) -> Result<Self, WireError> {
        check(h, Opcode::LoginRequest)?;
        let fl = h.flags();
        let transit = fl & 0x80 != 0;
        let cont = fl & 0x40 != 0;
        if transit && cont {
            return Err(WireError::BadField("T and C both set"));
        }
        let mut isid = [0u8; 6];
        isid.copy_from_slice(&h.b()[8..14]);
        Ok(LoginRequestRepr {
            transit,
            cont,
            csg: Stage::from((fl >> 2) & 0x03),
            nsg: Stage::from(fl & 0x03),
            version_max: h.byte(2),
            version_min: h.byte(3),
            isid,
            tsih: h.u16_at(14),
            itt: h.itt(),
            cid: h.u16_at(20),
            cmdsn: h.u32_at(24),
            exp_statsn: h.u32_at(28),
        })
    }

    /// Emits the header.
    pub fn emit(&self, buf: &mut [u8; BHS_LEN]) {
        let fl = (if self.transit { 0x80 } else { 0 })
            | (if self.cont { 0x40 } else { 0 })
            | ((u8::from(self.csg) & 3) << 2)
            | (u8::from(self.nsg) & 3);
        let mut h = start(buf, Opcode::LoginRequest, true, fl);
        h.set_byte(2, self.version_max);
        h.set_byte(3, self.version_min);
        h.bm()[8..14].copy_from_slice(&self.isid);
        h.set_u16_at(14, self.tsih);
        h.set_itt(self.itt);
        h.set_u16_at(20, self.cid);
        h.set_u32_at(24, self.cmdsn);
        h.set_u32_at(28, self.exp_statsn);
    }
}

impl fmt::Display for LoginRequestRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Login-Req {}{} csg={} nsg={} isid={} tsih={} cid={} cmdsn={}",
            if self.transit { "T" } else { "" },
            if self.cont { "C" } else { "" },
            self.csg,
            self.nsg,
            Isid(self.isid),
            self.tsih,
            self.cid,
            self.cmdsn
        )
    }
}

/// An ISID, displayed as 12 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Isid(pub [u8; 6]);

impl fmt::Display for Isid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Login Response status: class (high byte) and detail (low byte) (RFC 7143 §11.13.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LoginStatus(pub u16);

impl LoginStatus {
    /// 0x0000 Success.
    pub const SUCCESS: LoginStatus = LoginStatus(0x0000);
    /// 0x0101 Target moved temporarily.
    pub const TARGET_MOVED_TEMPORARILY: LoginStatus = LoginStatus(0x0101);
    /// 0x0102 Target moved permanently.
    pub const TARGET_MOVED_PERMANENTLY: LoginStatus = LoginStatus(0x0102);
    /// 0x0200 Initiator error (miscellaneous).
    pub const INITIATOR_ERROR: LoginStatus = LoginStatus(0x0200);
    /// 0x0201 Authentication failure.
    pub const AUTHENTICATION_FAILURE: LoginStatus = LoginStatus(0x0201);
    /// 0x0202 Authorization failure.
    pub const AUTHORIZATION_FAILURE: LoginStatus = LoginStatus(0x0202);
    /// 0x0203 Not found.
    pub const NOT_FOUND: LoginStatus = LoginStatus(0x0203);
    /// 0x0204 Target removed.
    pub const TARGET_REMOVED: LoginStatus = LoginStatus(0x0204);
    /// 0x0205 Unsupported version.
    pub const UNSUPPORTED_VERSION: LoginStatus = LoginStatus(0x0205);
    /// 0x0206 Too many connections.
    pub const TOO_MANY_CONNECTIONS: LoginStatus = LoginStatus(0x0206);
    /// 0x0207 Missing parameter.
    pub const MISSING_PARAMETER: LoginStatus = LoginStatus(0x0207);
    /// 0x0208 Can't include in session.
    pub const CANT_INCLUDE_IN_SESSION: LoginStatus = LoginStatus(0x0208);
    /// 0x0209 Session type not supported.
    pub const SESSION_TYPE_NOT_SUPPORTED: LoginStatus = LoginStatus(0x0209);
    /// 0x020a Session does not exist.
    pub const SESSION_DOES_NOT_EXIST: LoginStatus = LoginStatus(0x020a);
    /// 0x020b Invalid request during login.
    pub const INVALID_DURING_LOGIN: LoginStatus = LoginStatus(0x020b);
    /// 0x0300 Target error (miscellaneous).
    pub const TARGET_ERROR: LoginStatus = LoginStatus(0x0300);
    /// 0x0301 Service unavailable.
    pub const SERVICE_UNAVAILABLE: LoginStatus = LoginStatus(0x0301);
    /// 0x0302 Out of resources.
    pub const OUT_OF_RESOURCES: LoginStatus = LoginStatus(0x0302);

    /// Status-Class.
    pub fn class(self) -> u8 {
        (self.0 >> 8) as u8
    }

    /// Status-Detail.
    pub fn detail(self) -> u8 {
        self.0 as u8
    }
}

impl fmt::Display for LoginStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match *self {
            LoginStatus::SUCCESS => "success",
            LoginStatus::TARGET_MOVED_TEMPORARILY => "target moved temporarily",
            LoginStatus::TARGET_MOVED_PERMANENTLY => "target moved permanently",
            LoginStatus::INITIATOR_ERROR => "initiator error",
            LoginStatus::AUTHENTICATION_FAILURE => "authentication failure",
            LoginStatus::AUTHORIZATION_FAILURE => "authorization failure",
            LoginStatus::NOT_FOUND => "not found",
            LoginStatus::TARGET_REMOVED => "target removed",
            LoginStatus::UNSUPPORTED_VERSION => "unsupported version",
            LoginStatus::TOO_MANY_CONNECTIONS => "too many connections",
            LoginStatus::MISSING_PARAMETER => "missing parameter",
            LoginStatus::CANT_INCLUDE_IN_SESSION => "can't include in session",
            LoginStatus::SESSION_TYPE_NOT_SUPPORTED => "session type not supported",
            LoginStatus::SESSION_DOES_NOT_EXIST => "session does not exist",
            LoginStatus::INVALID_DURING_LOGIN => "invalid request during login",
            LoginStatus::TARGET_ERROR => "target error",
            LoginStatus::SERVICE_UNAVAILABLE => "service unavailable",
            LoginStatus::OUT_OF_RESOURCES => "out of resources",
            _ => "",
        };
        write!(f, "{:#06x}", self.0)?;
        if !s.is_empty() {
            write!(f, " ({s})")?;
        }
        Ok(())
    }
}

/// Login Response (RFC 7143 §11.13).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginResponseRepr {
    /// T bit.
    pub transit: bool,
    /// C bit.
    pub cont: bool,
    /// Current stage.
    pub csg: Stage,
    /// Next stage.
    pub nsg: Stage,
    /// Version-max.
    pub version_max: u8,
    /// Version-active.
    pub version_active: u8,
    /// ISID.
    pub isid: [u8; 6],
    /// TSIH.
    pub tsih: u16,
    /// Initiator Task Tag.
    pub itt: u32,
    /// StatSN.
    pub statsn: u32,
    /// ExpCmdSN.
    pub exp_cmdsn: u32,
    /// MaxCmdSN.
    pub max_cmdsn: u32,
    /// Status-Class and Status-Detail.
    pub status: LoginStatus,
}

impl LoginResponseRepr {
    /// Parses a Login Response header.
    pub fn parse(h: &Bhs<&[u8]>) -> Result<Self, WireError> {
        check(h, Opcode::LoginResponse)?;
        let fl = h.flags();
        let mut isid = [0u8; 6];
        isid.copy_from_slice(&h.b()[8..14]);
        Ok(LoginResponseRepr {
            transit: fl & 0x80 != 0,
            cont: fl & 0x40 != 0,
            csg: Stage::from((fl >> 2) & 0x03),
            nsg: Stage::from(fl & 0x03),
            version_max: h.byte(2),
            version_active: h.byte(3),
            isid,
            tsih: h.u16_at(14),
            itt: h.itt(),
            statsn: h.u32_at(24),
            exp_cmdsn: h.u32_at(28),
            max_cmdsn: h.u32_at(32),
            status: LoginStatus(h.u16_at(36)),
        })
    }

    /// Emits the header.
    pub fn emit(&self, buf: &mut [u8; BHS_LEN]) {
        let fl = (if self.transit { 0x80 } else { 0 })
            | (if self.cont { 0x40 } else { 0 })
            | ((u8::from(self.csg) & 3) << 2)
            | (u8::from(self.nsg) & 3);
        let mut h = start(buf, Opcode::LoginResponse, false, fl);
        h.set_byte(2, self.version_max);
        h.set_byte(3, self.version_active);
        h.bm()[8..14].copy_from_slice(&self.isid);
        h.set_u16_at(14, self.tsih);
        h.set_itt(self.itt);
        h.set_u32_at(24, self.statsn);
        h.set_u32_at(28, self.exp_cmdsn);
        h.set_u32_at(32, self.max_cmdsn);
        h.set_u16_at(36, self.status.0);
    }
}

impl fmt::Display for LoginResponseRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Login-Rsp {}{} csg={} nsg={} tsih={} statsn={} status={}",
            if self.transit { "T" } else { "" },
            if self.cont { "C" } else { "" },
            self.csg,
            self.nsg,
            self.tsih,
            self.statsn,
            self.status
        )
    }
}

/// Text Request (RFC 7143 §11.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextRequestRepr {
    /// I bit.
    pub immediate: bool,
    /// F bit.
    pub final_: bool,
    /// C bit.
    pub cont: bool,
    /// LUN.
    pub lun: Lun,
    /// Initiator Task Tag.
    pub itt: u32,
    /// Target Transfer Tag (continues a multi-PDU response, else reserved).
    pub ttt: u32,
    /// CmdSN.
    pub cmdsn: u32,
    /// ExpStatSN.
    pub exp_statsn: u32,
}

impl TextRequestRepr {
    /// Parses a Text Request header.
    pub fn parse(h: &Bhs<&[u8]>) -> Result<Self, WireError> {
        check(h, Opcode::TextRequest)?;
        let fl = h.flags();
        if fl & 0xc0 == 0xc0 {
            return Err(WireError::BadField("F and C both set"));
        }
        Ok(TextRequestRepr {
            immediate: h.immediate(),
            final_: fl & 0x80 != 0,
            cont: fl & 0x40 != 0,
            lun: h.lun(),
            itt: h.itt(),
            ttt: h.u32_at(20),
            cmdsn: h.u32_at(24),
            exp_statsn: h.u32_at(28),
        })
    }

    /// Emits the header.
    pub fn emit(&self, buf: &mut [u8; BHS_LEN]) {
        let fl = (if self.final_ { 0x80 } else { 0 }) | (if self.cont { 0x40 } else { 0 });
        let mut h = start(buf, Opcode::TextRequest, self.immediate, fl);
        h.set_lun(self.lun);
        h.set_itt(self.itt);
        h.set_u32_at(20, self.ttt);
        h.set_u32_at(24, self.cmdsn);
        h.set_u32_at(28, self.exp_statsn);
    }
}

impl fmt::Display for TextRequestRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Text-Req {}{} itt={:#x} ttt={:#x} cmdsn={}",
            if self.final_ { "F" } else { "" },
            if self.cont { "C" } else { "" },
            self.itt,
            self.ttt,
            self.cmdsn
        )
    }
}

/// Text Response (RFC 7143 §11.11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextResponseRepr {
    /// F bit.
    pub final_: bool,
    /// C bit.
    pub cont: bool,
    /// LUN.
    pub lun: Lun,
    /// Initiator Task Tag.
    pub itt: u32,
    /// Target Transfer Tag (reserved when final).
    pub ttt: u32,
    /// StatSN.
    pub statsn: u32,
    /// ExpCmdSN.
    pub exp_cmdsn: u32,
    /// MaxCmdSN.
    pub max_cmdsn: u32,
}

impl TextResponseRepr {
    /// Parses a Text Response header.
    pub fn parse(h: &Bhs<&[u8]>) -> Result<Self, WireError> {
        check(h, Opcode::TextResponse)?;
        let fl = h.flags();
        Ok(TextResponseRepr {
            final_: fl & 0x80 != 0,
            cont: fl & 0x40 != 0,
            lun: h.lun(),
            itt: h.itt(),
            ttt: h.u32_at(20),
            statsn: h.u32_at(24),
            exp_cmdsn: h.u32_at(28),
            max_cmdsn: h.u32_at(32),
        })
    }

    /// Emits the header.
    pub fn emit(&self, buf: &mut [u8; BHS_LEN]) {
        let fl = (if self.final_ { 0x80 } else { 0 }) | (if self.cont { 0x40 } else { 0 });
        let mut h = start(buf, Opcode::TextResponse, false, fl);
        h.set_lun(self.lun);
        h.set_itt(self.itt);
        h.set_u32_at(20, self.ttt);
        h.set_u32_at(24, self.statsn);
        h.set_u32_at(28, self.exp_cmdsn);
        h.set_u32_at(32, self.max_cmdsn);
    }
}

impl fmt::Display for TextResponseRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Text-Rsp {}{} itt={:#x} ttt={:#x} statsn={}",
            if self.final_ { "F" } else { "" },
            if self.cont { "C" } else { "" },
            self.itt,
            self.ttt,
            self.statsn
        )
    }
}

enum_with_unknown! {
    /// Logout reason codes (RFC 7143 §11.14.1).
    pub enum LogoutReason(u8) {
        /// Close the session.
        CloseSession = 0,
        /// Close the connection.
        CloseConnection = 1,
        /// Remove the connection for recovery.
        RemoveForRecovery = 2,
    }
}

/// Logout Request (RFC 7143 §11.14).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogoutRequestRepr {
    /// I bit.
    pub immediate: bool,
    /// Reason code.
    pub reason: LogoutReason,
    /// Initiator Task Tag.
    pub itt: u32,
    /// CID (for close/remove connection).
    pub cid: u16,
    /// CmdSN.
    pub cmdsn: u32,
    /// ExpStatSN.
    pub exp_statsn: u32,
}

impl LogoutRequestRepr {
    /// Parses a Logout Request header.
    pub fn parse(h: &Bhs<&[u8]>) -> Result<Self, WireError> {
        check(h, Opcode::LogoutRequest)?;
        Ok(LogoutRequestRepr {
            immediate: h.immediate(),
            reason: LogoutReason::from(h.flags() & 0x7f),
            itt: h.itt(),
            cid: h.u16_at(20),
            cmdsn: h.u32_at(24),
            exp_statsn: h.u32_at(28),
        })
    }

    /// Emits the header.
    pub fn emit(&self, buf: &mut [u8; BHS_LEN]) {
        let fl = 0x80 | (u8::from(self.reason) & 0x7f);
        let mut h = start(buf, Opcode::LogoutRequest, self.immediate, fl);
        h.set_itt(self.itt);
        h.set_u16_at(20, self.cid);
        h.set_u32_at(24, self.cmdsn);
        h.set_u32_at(28, self.exp_statsn);
    }
}

impl fmt::Display for LogoutRequestRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Logout-Req reason={} itt={:#x} cid={} cmdsn={}",
            u8::from(self.reason),
            self.itt,
            self.cid,
            self.cmdsn
        )
    }
}

/// Logout Response (RFC 7143 §11.15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogoutResponseRepr {
    /// Response: 0 closed, 1 CID not found, 2 recovery not supported, 3 cleanup failed.
    pub response: u8,
    /// Initiator Task Tag.
    pub itt: u32,
    /// StatSN.
    pub statsn: u32,
    /// ExpCmdSN.
    pub exp_cmdsn: u32,
    /// MaxCmdSN.
    pub max_cmdsn: u32,
    /// Time2Wait.
    pub time2wait: u16,
    /// Time2Retain.
    pub time2retain: u16,
}

impl LogoutResponseRepr {
    /// Parses a Logout Response header.
    pub fn parse(h: &Bhs<&[u8]>) -> Result<Self, WireError> {
        check(h, Opcode::LogoutResponse)?;
        Ok(LogoutResponseRepr {
            response: h.byte(2),
            itt: h.itt(),
            statsn: h.u32_at(24),
            exp_cmdsn: h.u32_at(28),
            max_cmdsn: h.u32_at(32),
            time2wait: h.u16_at(40),
            time2retain: h.u16_at(42),
        })
    }

    /// Emits the header.
    pub fn emit(&self, buf: &mut [u8; BHS_LEN]) {
        let mut h = start(buf, Opcode::LogoutResponse, false, 0x80);
        h.set_byte(2, self.response);
        h.set_itt(self.itt);
        h.set_u32_at(24, self.statsn);
        h.set_u32_at(28, self.exp_cmdsn);
        h.set_u32_at(32, self.max_cmdsn);
        h.set_u16_at(40, self.time2wait);
        h.set_u16_at(42, self.time2retain);
    }
}

impl fmt::Display for LogoutResponseRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Logout-Rsp itt={:#x} resp={} statsn={}",
            self.itt, self.response, self.statsn
        )
    }
}

enum_with_unknown! {
    /// Reject reason codes (RFC 7143 §11.17.1).
    pub enum RejectReason(u8) {
        /// Data (payload) digest error.
        DataDigestError = 0x02,
        /// SNACK Reject.
        SnackReject = 0x03,
        /// Protocol error.
        ProtocolError = 0x04,
        /// Command not supported.
        CommandNotSupported = 0x05,
        /// Immediate command reject: too many immediate commands.
        ImmediateCommandReject = 0x06,
        /// Task in progress.
        TaskInProgress = 0x07,
        /// Invalid data ack.
        InvalidDataAck = 0x08,
        /// Invalid PDU field.
        InvalidPduField = 0x09,
        /// Long operation reject: out of resources.
        OutOfResources = 0x0a,
        /// Waiting for Logout.
        WaitingForLogout = 0x0c,
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            RejectReason::DataDigestError => "data digest error",
            RejectReason::SnackReject => "SNACK reject",
            RejectReason::ProtocolError => "protocol error",
            RejectReason::CommandNotSupported => "command not supported",
            RejectReason::ImmediateCommandReject => "immediate command reject",
            RejectReason::TaskInProgress => "task in progress",
            RejectReason::InvalidDataAck => "invalid data ack",
            RejectReason::InvalidPduField => "invalid PDU field",
            RejectReason::OutOfResources => "out of resources",
            RejectReason::WaitingForLogout => "waiting for logout",
            RejectReason::Unknown(v) => return write!(f, "reason-{v:#04x}"),
        };
        f.write_str(s)
    }
}

/// Reject (RFC 7143 §11.17). The data segment carries the rejected PDU's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RejectRepr {
    /// Reason.
    pub reason: RejectReason,
    /// StatSN.
    pub statsn: u32,
    /// ExpCmdSN.
    pub exp_cmdsn: u32,
    /// MaxCmdSN.
    pub max_cmdsn: u32,
    /// DataSN/R2TSN (only for SNACK rejects; otherwise 0).
    pub datasn: u32,
}

impl RejectRepr {
    /// Parses a Reject header.
    pub fn parse(h: &Bhs<&[u8]>) -> Result<Self, WireError> {
        check(h, Opcode::Reject)?;
        Ok(RejectRepr {
            reason: RejectReason::from(h.byte(2)),
            statsn: h.u32_at(24),
            exp_cmdsn: h.u32_at(28),
            max_cmdsn: h.u32_at(32),
            datasn: h.u32_at(36),
        })
    }

    /// Emits the header.
    pub fn emit(&self, buf: &mut [u8; BHS_LEN]) {
        let mut h = start(buf, Opcode::Reject, false, 0x80);
        h.set_byte(2, u8::from(self.reason));
        h.set_itt(RESERVED_TAG);
        h.set_u32_at(24, self.statsn);
        h.set_u32_at(28, self.exp_cmdsn);
        h.set_u32_at(32, self.max_cmdsn);
        h.set_u32_at(36, self.datasn);
    }
}

impl fmt::Display for RejectRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reject {} statsn={}", self.reason, self.statsn)
    }
}

/// Asynchronous Message (RFC 7143 §11.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsyncMessageRepr {
    /// LUN (for SCSI asynchronous events).
    pub lun: Lun,
    /// StatSN.
    pub statsn: u32,
    /// ExpCmdSN.
    pub exp_cmdsn: u32,
    /// MaxCmdSN.
    pub max_cmdsn: u32,
    /// AsyncEvent: 0 SCSI event, 1 logout request, 2 drop connection, 3 drop all, 4 renegotiate.
    pub event: u8,
    /// AsyncVCode.
    pub vcode: u8,
    /// Parameter1.
    pub param1: u16,
    /// Parameter2.
    pub param2: u16,
    /// Parameter3.
    pub param3: u16,
}

impl AsyncMessageRepr {
    /// Parses an Asynchronous Message header.
    pub fn parse(h: &Bhs<&[u8]>) -> Result<Self, WireError> {
        check(h, Opcode::AsyncMessage)?;
        Ok(AsyncMessageRepr {
            lun: h.lun(),
            statsn: h.u32_at(24),
            exp_cmdsn: h.u32_at(28),
            max_cmdsn: h.u32_at(32),
            event: h.byte(36),
            vcode: h.byte(37),
            param1: h.u16_at(38),
            param2: h.u16_at(40),
            param3: h.u16_at(42),
        })
    }

    /// Emits the header.
    pub fn emit(&self, buf: &mut [u8; BHS_LEN]) {
        let mut h = start(buf, Opcode::AsyncMessage, false, 0x80);
        h.set_lun(self.lun);
        h.set_itt(RESERVED_TAG);
        h.set_u32_at(24, self.statsn);
        h.set_u32_at(28, self.exp_cmdsn);
        h.set_u32_at(32, self.max_cmdsn);
        h.set_byte(36, self.event);
        h.set_byte(37, self.vcode);
        h.set_u16_at(38, self.param1);
        h.set_u16_at(40, self.param2);
        h.set_u16_at(42, self.param3);
    }
}

impl fmt::Display for AsyncMessageRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Async event={} lun={} statsn={}",
            self.event, self.lun, self.statsn
        )
    }
}

/// AHS types (RFC 7143 §11.2.2.2).
pub mod ahs {
    /// Extended CDB.
    pub const EXTENDED_CDB: u8 = 1;
    /// Bidirectional Read Expected Data Transfer Length.
    pub const BIDI_READ_LENGTH: u8 = 2;
}

/// Walks the AHS area of a PDU, yielding `(type, specific bytes)` per AHS
/// (RFC 7143 §11.2.2: AHSLength counts the bytes after the type byte, before padding).
pub fn ahs_iter(area: &[u8]) -> impl Iterator<Item = Result<(u8, &[u8]), WireError>> {
    let mut rest = area;
    core::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        if rest.len() < 4 {
            rest = &[];
            return Some(Err(WireError::Truncated));
        }
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let ty = rest[2];
        let total = (3 + len).div_ceil(4) * 4;
        if len == 0 || total > rest.len() {
            rest = &[];
            return Some(Err(WireError::BadField("AHSLength")));
        }
        let specific = &rest[3..3 + len];
        rest = &rest[total..];
        Some(Ok((ty, specific)))
    })
}

/// Padding needed after `len` bytes to reach a 4-byte boundary.
pub const fn pad4(len: usize) -> usize {
    (4 - (len % 4)) % 4
}

/// Serial number arithmetic for 32-bit sequence numbers (RFC 1982, used by
/// RFC 7143 §4.2.2.1): `a < b`.
pub fn sn_lt(a: u32, b: u32) -> bool {
    a != b && b.wrapping_sub(a) < 0x8000_0000
}

/// Serial number `a <= b`.
pub fn sn_le(a: u32, b: u32) -> bool {
    a == b || sn_lt(a, b)
}
