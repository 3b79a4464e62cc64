//! Sense reasons, the error currency of the core, and their one mapping to
//! sense data.
//!
//! Every failure inside the core is a [`SenseReason`]. [`SenseReason::code`]
//! is the single place that maps reasons to key/ASC/ASCQ (SPC-5 4.4.8, table
//! "ASC and ASCQ assignments"), and [`SenseData::encode`] writes fixed
//! (SPC-5 4.4.3) or descriptor (SPC-5 4.4.2) format, as the control mode
//! page's D_SENSE bit (or REQUEST SENSE's DESC bit) asks, with the
//! sense-key specific field pointer or progress indication (SPC-5 4.4.2.4).

use core::fmt;

/// Sense key (SPC-5 table "Sense key descriptions").
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum SenseKey {
    /// NO SENSE.
    NoSense = 0x0,
    /// RECOVERED ERROR.
    RecoveredError = 0x1,
    /// NOT READY.
    NotReady = 0x2,
    /// MEDIUM ERROR.
    MediumError = 0x3,
    /// HARDWARE ERROR.
    HardwareError = 0x4,
    /// ILLEGAL REQUEST.
    IllegalRequest = 0x5,
    /// UNIT ATTENTION.
    UnitAttention = 0x6,
    /// DATA PROTECT.
    DataProtect = 0x7,
    /// BLANK CHECK.
    BlankCheck = 0x8,
    /// COPY ABORTED.
    CopyAborted = 0xa,
    /// ABORTED COMMAND.
    AbortedCommand = 0xb,
    /// MISCOMPARE.
    Miscompare = 0xe,
}

impl fmt::Display for SenseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SenseKey::NoSense => "NO SENSE",
            SenseKey::RecoveredError => "RECOVERED ERROR",
            SenseKey::NotReady => "NOT READY",
            SenseKey::MediumError => "MEDIUM ERROR",
            SenseKey::HardwareError => "HARDWARE ERROR",
            SenseKey::IllegalRequest => "ILLEGAL REQUEST",
            SenseKey::UnitAttention => "UNIT ATTENTION",
            SenseKey::DataProtect => "DATA PROTECT",
            SenseKey::BlankCheck => "BLANK CHECK",
            SenseKey::CopyAborted => "COPY ABORTED",
            SenseKey::AbortedCommand => "ABORTED COMMAND",
            SenseKey::Miscompare => "MISCOMPARE",
        })
    }
}

/// A unit attention condition (SPC-5 5.14), one per bit of an I_T_L's
/// pending set. The declaration order is the order they are reported in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum UnitAttention {
    /// 29/00 POWER ON, RESET, OR BUS DEVICE RESET OCCURRED (new I_T nexus, target reset).
    PowerOnReset = 0,
    /// 29/03 BUS DEVICE RESET FUNCTION OCCURRED (logical unit reset).
    LunReset,
    /// 29/07 I_T NEXUS LOSS OCCURRED.
    NexusLoss,
    /// 2F/00 COMMANDS CLEARED BY ANOTHER INITIATOR.
    CommandsCleared,
    /// 2A/01 MODE PARAMETERS CHANGED.
    ModeParametersChanged,
    /// 2A/03 RESERVATIONS PREEMPTED.
    ReservationsPreempted,
    /// 2A/04 RESERVATIONS RELEASED.
    ReservationsReleased,
    /// 2A/05 REGISTRATIONS PREEMPTED.
    RegistrationsPreempted,
    /// 2A/06 ASYMMETRIC ACCESS STATE CHANGED.
    AsymmetricAccessStateChanged,
    /// 2A/09 CAPACITY DATA HAS CHANGED.
    CapacityDataChanged,
    /// 3F/03 INQUIRY DATA HAS CHANGED.
    InquiryDataChanged,
    /// 3F/0E REPORTED LUNS DATA HAS CHANGED.
    ReportedLunsDataChanged,
}

impl UnitAttention {
    /// Every condition, in reporting order.
    pub const ALL: [UnitAttention; 12] = [
        UnitAttention::PowerOnReset,
        UnitAttention::LunReset,
        UnitAttention::NexusLoss,
        UnitAttention::CommandsCleared,
        UnitAttention::ModeParametersChanged,
        UnitAttention::ReservationsPreempted,
        UnitAttention::ReservationsReleased,
        UnitAttention::RegistrationsPreempted,
        UnitAttention::AsymmetricAccessStateChanged,
        UnitAttention::CapacityDataChanged,
        UnitAttention::InquiryDataChanged,
        UnitAttention::ReportedLunsDataChanged,
    ];

    /// ASC and ASCQ.
    pub const fn asc_ascq(self) -> (u8, u8) {
        match self {
            UnitAttention::PowerOnReset => (0x29, 0x00),
            UnitAttention::LunReset => (0x29, 0x03),
            UnitAttention::NexusLoss => (0x29, 0x07),
            UnitAttention::CommandsCleared => (0x2f, 0x00),
            UnitAttention::ModeParametersChanged => (0x2a, 0x01),
            UnitAttention::ReservationsPreempted => (0x2a, 0x03),
            UnitAttention::ReservationsReleased => (0x2a, 0x04),
            UnitAttention::RegistrationsPreempted => (0x2a, 0x05),
            UnitAttention::AsymmetricAccessStateChanged => (0x2a, 0x06),
            UnitAttention::CapacityDataChanged => (0x2a, 0x09),
            UnitAttention::InquiryDataChanged => (0x3f, 0x03),
            UnitAttention::ReportedLunsDataChanged => (0x3f, 0x0e),
        }
    }

    /// Whether this is a reset-class (29h) condition, which supersedes the
    /// other pending conditions of the I_T_L nexus when established.
    pub const fn is_reset(self) -> bool {
        matches!(
            self,
            UnitAttention::PowerOnReset | UnitAttention::LunReset | UnitAttention::NexusLoss
        )
    }

    #[allow(dead_code)] // used by the target
    pub(crate) const fn bit(self) -> u16 {
        1 << self as u8
    }
}

impl fmt::Display for UnitAttention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UnitAttention::PowerOnReset => "POWER ON, RESET, OR BUS DEVICE RESET OCCURRED",
            UnitAttention::LunReset => "BUS DEVICE RESET FUNCTION OCCURRED",
            UnitAttention::NexusLoss => "I_T NEXUS LOSS OCCURRED",
            UnitAttention::CommandsCleared => "COMMANDS CLEARED BY ANOTHER INITIATOR",
            UnitAttention::ModeParametersChanged => "MODE PARAMETERS CHANGED",
            UnitAttention::ReservationsPreempted => "RESERVATIONS PREEMPTED",
            UnitAttention::ReservationsReleased => "RESERVATIONS RELEASED",
            UnitAttention::RegistrationsPreempted => "REGISTRATIONS PREEMPTED",
            UnitAttention::AsymmetricAccessStateChanged => "ASYMMETRIC ACCESS STATE CHANGED",
            UnitAttention::CapacityDataChanged => "CAPACITY DATA HAS CHANGED",
            UnitAttention::InquiryDataChanged => "INQUIRY DATA HAS CHANGED",
            UnitAttention::ReportedLunsDataChanged => "REPORTED LUNS DATA HAS CHANGED",
        })
    }
}

/// Where the offending field is: the sense-key specific FIELD POINTER.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FieldPointer {
    /// Byte offset in the CDB or parameter list.
    pub byte: u16,
    /// The most significant bit of the field within that byte, if known.
    pub bit: Option<u8>,
}

impl FieldPointer {
    /// Byte `byte`, bit `bit`.
    pub const fn bit(byte: u16, bit: u8) -> FieldPointer {
        FieldPointer {
            byte,
            bit: Some(bit),
        }
    }

    /// Byte `byte` as a whole.
    pub const fn byte(byte: u16) -> FieldPointer {
        FieldPointer { byte, bit: None }
    }
}

impl fmt::Display for FieldPointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "byte {}", self.byte)?;
        if let Some(b) = self.bit {
            write!(f, " bit {b}")?;
        }
        Ok(())
    }
}

/// Why a command failed (or what REQUEST SENSE reports). Every variant maps
/// to exactly one key/ASC/ASCQ in [`SenseReason::code`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SenseReason {
    /// NO SENSE, 00/00 (REQUEST SENSE with nothing to report).
    NoSense,
    /// ILLEGAL REQUEST, 20/00 INVALID COMMAND OPERATION CODE.
    InvalidOpcode,
    /// ILLEGAL REQUEST, 24/00 INVALID FIELD IN CDB, with the field pointer.
    InvalidFieldInCdb(FieldPointer),
    /// ILLEGAL REQUEST, 26/00 INVALID FIELD IN PARAMETER LIST, with the field pointer.
    InvalidFieldInParameterList(FieldPointer),
    /// ILLEGAL REQUEST, 1A/00 PARAMETER LIST LENGTH ERROR.
    ParameterListLengthError,
    /// ILLEGAL REQUEST, 26/02 PARAMETER VALUE INVALID.
    ParameterValueInvalid,
    /// ILLEGAL REQUEST, 21/00 LOGICAL BLOCK ADDRESS OUT OF RANGE.
    LbaOutOfRange,
    /// ILLEGAL REQUEST, 25/00 LOGICAL UNIT NOT SUPPORTED.
    LunNotSupported,
    /// ILLEGAL REQUEST, 0E/03 INVALID FIELD IN COMMAND INFORMATION UNIT.
    InvalidFieldInInformationUnit,
    /// ILLEGAL REQUEST, 39/00 SAVING PARAMETERS NOT SUPPORTED.
    SavingParametersNotSupported,
    /// ILLEGAL REQUEST, 53/02 MEDIUM REMOVAL PREVENTED.
    MediumRemovalPrevented,
    /// ILLEGAL REQUEST, 49/00 INVALID MESSAGE ERROR (an ACA task without ACA).
    InvalidMessage,
    /// ILLEGAL REQUEST, 2C/00 COMMAND SEQUENCE ERROR.
    CommandSequenceError,
    /// ILLEGAL REQUEST, 55/03 INSUFFICIENT RESOURCES (a transfer larger than
    /// the buffer pool).
    InsufficientResources,
    /// NOT READY, 04/02 LOGICAL UNIT NOT READY, INITIALIZING COMMAND REQUIRED (stopped).
    NotReadyStopped,
    /// NOT READY, 3A/00 MEDIUM NOT PRESENT (unloaded).
    MediumNotPresent,
    /// NOT READY, 04/04 LOGICAL UNIT NOT READY, FORMAT IN PROGRESS, with progress (of 65536).
    FormatInProgress(u16),
    /// NOT READY, 04/1B LOGICAL UNIT NOT READY, SANITIZE IN PROGRESS, with progress (of 65536).
    SanitizeInProgress(u16),
    /// NOT READY, 31/03 SANITIZE COMMAND FAILED (sanitize failure mode).
    SanitizeFailed,
    /// DATA PROTECT, 27/00 WRITE PROTECTED.
    WriteProtected,
    /// DATA PROTECT, 27/02 SOFTWARE WRITE PROTECTED (control mode page SWP).
    SoftwareWriteProtected,
    /// DATA PROTECT, 27/07 SPACE ALLOCATION FAILED WRITE PROTECT.
    SpaceAllocationFailed,
    /// MEDIUM ERROR, 11/00 UNRECOVERED READ ERROR.
    UnrecoveredReadError,
    /// MEDIUM ERROR, 0C/00 WRITE ERROR.
    WriteError,
    /// HARDWARE ERROR, 44/00 INTERNAL TARGET FAILURE.
    InternalTargetFailure,
    /// ABORTED COMMAND, 4B/00 DATA PHASE ERROR.
    DataPhaseError,
    /// MISCOMPARE, 1D/00 MISCOMPARE DURING VERIFY OPERATION; INFORMATION is
    /// the offset in bytes of the first miscompare.
    Miscompare(u64),
    /// UNIT ATTENTION with the condition.
    UnitAttention(UnitAttention),
    /// COPY ABORTED (EXTENDED COPY, SPC-5 6.6) with an ASC/ASCQ, the
    /// segment being processed (COMMAND-SPECIFIC INFORMATION) and, if
    /// known, the offending field within that segment descriptor (the
    /// segment pointer, SD=1).
    CopyAborted {
        /// Additional sense code.
        asc: u8,
        /// Additional sense code qualifier.
        ascq: u8,
        /// Index of the segment descriptor.
        segment: u16,
        /// Byte (and bit) of the field within the segment descriptor.
        field: Option<FieldPointer>,
    },
    /// Anything else, given explicitly (for command sets added later:
    /// reservations, copy).
    Other {
        /// Sense key.
        key: SenseKey,
        /// Additional sense code.
        asc: u8,
        /// Additional sense code qualifier.
        ascq: u8,
    },
}

impl SenseReason {
    /// The one mapping from reasons to key, ASC and ASCQ.
    pub const fn code(self) -> (SenseKey, u8, u8) {
        use SenseKey::*;
        match self {
            SenseReason::NoSense => (NoSense, 0x00, 0x00),
            SenseReason::InvalidOpcode => (IllegalRequest, 0x20, 0x00),
            SenseReason::InvalidFieldInCdb(_) => (IllegalRequest, 0x24, 0x00),
            SenseReason::InvalidFieldInParameterList(_) => (IllegalRequest, 0x26, 0x00),
            SenseReason::ParameterListLengthError => (IllegalRequest, 0x1a, 0x00),
            SenseReason::ParameterValueInvalid => (IllegalRequest, 0x26, 0x02),
            SenseReason::LbaOutOfRange => (IllegalRequest, 0x21, 0x00),
            SenseReason::LunNotSupported => (IllegalRequest, 0x25, 0x00),
            SenseReason::InvalidFieldInInformationUnit => (IllegalRequest, 0x0e, 0x03),
            SenseReason::SavingParametersNotSupported => (IllegalRequest, 0x39, 0x00),
            SenseReason::MediumRemovalPrevented => (IllegalRequest, 0x53, 0x02),
            SenseReason::InvalidMessage => (IllegalRequest, 0x49, 0x00),
            SenseReason::CommandSequenceError => (IllegalRequest, 0x2c, 0x00),
            SenseReason::InsufficientResources => (IllegalRequest, 0x55, 0x03),
            SenseReason::NotReadyStopped => (NotReady, 0x04, 0x02),
            SenseReason::MediumNotPresent => (NotReady, 0x3a, 0x00),
            SenseReason::FormatInProgress(_) => (NotReady, 0x04, 0x04),
            SenseReason::SanitizeInProgress(_) => (NotReady, 0x04, 0x1b),
            SenseReason::SanitizeFailed => (NotReady, 0x31, 0x03),
            SenseReason::WriteProtected => (DataProtect, 0x27, 0x00),
            SenseReason::SoftwareWriteProtected => (DataProtect, 0x27, 0x02),
            SenseReason::SpaceAllocationFailed => (DataProtect, 0x27, 0x07),
            SenseReason::UnrecoveredReadError => (MediumError, 0x11, 0x00),
            SenseReason::WriteError => (MediumError, 0x0c, 0x00),
            SenseReason::InternalTargetFailure => (HardwareError, 0x44, 0x00),
            SenseReason::DataPhaseError => (AbortedCommand, 0x4b, 0x00),
            SenseReason::Miscompare(_) => (Miscompare, 0x1d, 0x00),
            SenseReason::UnitAttention(ua) => {
                let (asc, ascq) = ua.asc_ascq();
                (UnitAttention, asc, ascq)
            }
            SenseReason::CopyAborted { asc, ascq, .. } => (CopyAborted, asc, ascq),
            SenseReason::Other { key, asc, ascq } => (key, asc, ascq),
        }
    }

    /// The sense data of this reason.
    pub const fn sense_data(self) -> SenseData {
        let (key, asc, ascq) = self.code();
        let csi = match self {
            SenseReason::CopyAborted { segment, .. } => Some(segment as u32),
            _ => None,
        };
        let (info, sks) = match self {
            SenseReason::InvalidFieldInCdb(p) => (None, Some(field_pointer_sks(true, p))),
            SenseReason::InvalidFieldInParameterList(p) => {
                (None, Some(field_pointer_sks(false, p)))
            }
            SenseReason::FormatInProgress(p) | SenseReason::SanitizeInProgress(p) => {
                (None, Some(progress_sks(p)))
            }
            SenseReason::Miscompare(offset) => (Some(offset), None),
            SenseReason::CopyAborted { field: Some(p), .. } => (None, Some(segment_pointer_sks(p))),
            _ => (None, None),
        };
        SenseData {
            key,
            asc,
            ascq,
            info,
            csi,
            sks,
        }
    }
}

impl fmt::Display for SenseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (key, asc, ascq) = self.code();
        write!(f, "{key} {asc:02x}/{ascq:02x}")?;
        match self {
            SenseReason::InvalidFieldInCdb(p) | SenseReason::InvalidFieldInParameterList(p) => {
                write!(f, " at byte {}", p.byte)?;
                if let Some(b) = p.bit {
                    write!(f, " bit {b}")?;
                }
                Ok(())
            }
            SenseReason::Miscompare(o) => write!(f, " at offset {o}"),
            SenseReason::UnitAttention(ua) => write!(f, " ({ua})"),
            _ => Ok(()),
        }
    }
}

const fn field_pointer_sks(cdb: bool, p: FieldPointer) -> [u8; 3] {
    let mut b0 = 0x80;
    if cdb {
        b0 |= 0x40;
    }
    if let Some(bit) = p.bit {
        b0 |= 0x08 | (bit & 7);
    }
    let [hi, lo] = p.byte.to_be_bytes();
    [b0, hi, lo]
}

/// The segment pointer of COPY ABORTED, relative to a segment descriptor (SD=1).
const fn segment_pointer_sks(p: FieldPointer) -> [u8; 3] {
    let mut b0 = 0x80 | 0x20;
    if let Some(bit) = p.bit {
        b0 |= 0x08 | (bit & 7);
    }
    let [hi, lo] = p.byte.to_be_bytes();
    [b0, hi, lo]
}

const fn progress_sks(progress: u16) -> [u8; 3] {
    let [hi, lo] = progress.to_be_bytes();
    [0x80, hi, lo]
}

/// Longest sense data the core produces (descriptor format with an
/// information and a sense-key specific descriptor: 28 bytes).
pub const SENSE_MAX: usize = 32;

/// Sense data before encoding.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SenseData {
    /// Sense key.
    pub key: SenseKey,
    /// Additional sense code.
    pub asc: u8,
    /// Additional sense code qualifier.
    pub ascq: u8,
    /// INFORMATION field, if valid.
    pub info: Option<u64>,
    /// COMMAND-SPECIFIC INFORMATION field, if any.
    pub csi: Option<u32>,
    /// The three sense-key specific bytes (SKSV set), if any.
    pub sks: Option<[u8; 3]>,
}

impl SenseData {
    /// Encode in descriptor (`descriptor`) or fixed format into `out`;
    /// returns the length.
    pub fn encode(&self, descriptor: bool, out: &mut [u8; SENSE_MAX]) -> usize {
        *out = [0; SENSE_MAX];
        if descriptor {
            out[0] = 0x72;
            out[1] = self.key as u8;
            out[2] = self.asc;
            out[3] = self.ascq;
            let mut n = 8;
            if let Some(info) = self.info {
                out[n] = 0x00;
                out[n + 1] = 0x0a;
                out[n + 2] = 0x80;
                out[n + 4..n + 12].copy_from_slice(&info.to_be_bytes());
                n += 12;
            }
            if let (Some(csi), None) = (self.csi, self.info) {
                out[n] = 0x01;
                out[n + 1] = 0x0a;
                out[n + 8..n + 12].copy_from_slice(&csi.to_be_bytes());
                n += 12;
            }
            if let Some(sks) = self.sks {
                out[n] = 0x02;
                out[n + 1] = 0x06;
                out[n + 4..n + 7].copy_from_slice(&sks);
                n += 8;
            }
            out[7] = (n - 8) as u8;
            n
        } else {
            out[0] = 0x70;
            out[2] = self.key as u8;
            if let Some(info) = self.info {
                // The fixed format holds 32 bits; VALID only when it fits.
                if let Ok(v) = u32::try_from(info) {
                    out[0] |= 0x80;
                    out[3..7].copy_from_slice(&v.to_be_bytes());
                }
            }
            out[7] = 10;
            if let Some(csi) = self.csi {
                out[8..12].copy_from_slice(&csi.to_be_bytes());
            }
            out[12] = self.asc;
            out[13] = self.ascq;
            if let Some(sks) = self.sks {
                out[15..18].copy_from_slice(&sks);
            }
            18
        }
    }
}

impl fmt::Display for SenseData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:02x}/{:02x}", self.key, self.asc, self.ascq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_format_with_field_pointer() {
        let mut out = [0u8; SENSE_MAX];
        let n = SenseReason::InvalidFieldInCdb(FieldPointer::bit(1, 4))
            .sense_data()
            .encode(false, &mut out);
        assert_eq!(n, 18);
        assert_eq!(
            &out[..18],
            &[
                0x70, 0, 5, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x24, 0, 0, 0xcc, 0, 1
            ]
        );
    }

    #[test]
    fn descriptor_format_with_information() {
        let mut out = [0u8; SENSE_MAX];
        let n = SenseReason::Miscompare(0x1234)
            .sense_data()
            .encode(true, &mut out);
        assert_eq!(n, 20);
        assert_eq!(
            &out[..20],
            &[
                0x72, 0xe, 0x1d, 0, 0, 0, 0, 12, 0, 0x0a, 0x80, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34
            ]
        );
        let n = SenseReason::Miscompare(0x1234)
            .sense_data()
            .encode(false, &mut out);
        assert_eq!(&out[..n][..8], &[0xf0, 0, 0xe, 0, 0, 0x12, 0x34, 10]);
    }

    #[test]
    fn parameter_list_pointer_and_progress() {
        let mut out = [0u8; SENSE_MAX];
        let n = SenseReason::InvalidFieldInParameterList(FieldPointer::byte(9))
            .sense_data()
            .encode(true, &mut out);
        assert_eq!(
            &out[..n],
            &[0x72, 5, 0x26, 0, 0, 0, 0, 8, 2, 6, 0, 0, 0x80, 0, 9, 0]
        );
        let n = SenseReason::SanitizeInProgress(0x8000)
            .sense_data()
            .encode(false, &mut out);
        assert_eq!((n, out[2], out[12], out[13]), (18, 2, 0x04, 0x1b));
        assert_eq!(&out[15..18], &[0x80, 0x80, 0x00]);
    }

    #[test]
    fn every_unit_attention_has_a_distinct_code() {
        for (i, a) in UnitAttention::ALL.iter().enumerate() {
            assert_eq!(*a as usize, i);
            for b in &UnitAttention::ALL[i + 1..] {
                assert_ne!(a.asc_ascq(), b.asc_ascq());
            }
        }
        assert_eq!(
            SenseReason::UnitAttention(UnitAttention::CapacityDataChanged).to_string(),
            "UNIT ATTENTION 2a/09 (CAPACITY DATA HAS CHANGED)"
        );
    }
}
