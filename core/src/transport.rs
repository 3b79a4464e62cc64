//! The transport contract: what a transport hands the core, and the
//! [`Transport`] trait the core calls back.
//!
//! SAM-5 5 (SCSI command model, task attributes, status), SAM-5 7 (task
//! management), SPC-5 4.2.4 (residuals follow the transport's expected
//! length). See `docs/design/transport-contract.md` for the whole protocol.

use core::fmt;

use crate::ids::{CmdHandle, Lun, SessionHandle, TaskTag, TmfHandle};
use crate::memory::Seg;
use crate::tmf::TmfResponse;

/// Task attribute of a command (SAM-5 8.6).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TaskAttr {
    /// SIMPLE (also what untagged commands are).
    #[default]
    Simple,
    /// ORDERED: runs after every older task, before every younger one.
    Ordered,
    /// HEAD OF QUEUE: runs at once; younger SIMPLE/ORDERED tasks wait for it.
    HeadOfQueue,
    /// ACA: only while an ACA condition exists on the I_T nexus.
    Aca,
}

impl fmt::Display for TaskAttr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TaskAttr::Simple => "SIMPLE",
            TaskAttr::Ordered => "ORDERED",
            TaskAttr::HeadOfQueue => "HEAD OF QUEUE",
            TaskAttr::Aca => "ACA",
        })
    }
}

/// Data direction the initiator announced, named from the initiator's side
/// (FCP: RDDATA is [`DataDirection::In`], WRDATA is [`DataDirection::Out`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DataDirection {
    /// No data phase.
    #[default]
    None,
    /// Data-In: target to initiator.
    In,
    /// Data-Out: initiator to target.
    Out,
}

impl fmt::Display for DataDirection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DataDirection::None => "none",
            DataDirection::In => "data-in",
            DataDirection::Out => "data-out",
        })
    }
}

/// A SCSI command as the transport received it.
#[derive(Clone, Copy, Debug)]
pub struct CommandRequest<'a> {
    /// The I_T nexus it arrived on.
    pub session: SessionHandle,
    /// The transport's tag of the task.
    pub tag: TaskTag,
    /// The addressed logical unit.
    pub lun: Lun,
    /// Task attribute.
    pub attr: TaskAttr,
    /// Command priority (SAM-5 8.7), 0 when the transport has none. Recorded.
    pub priority: u8,
    /// FCP command reference number, 0 when unused. Recorded.
    pub crn: u8,
    /// The CDB. Up to 16 bytes are used; shorter CDBs read as zero-padded.
    pub cdb: &'a [u8],
    /// Bytes the initiator expects to transfer (FCP_DL, iSCSI EDTL).
    pub expected_len: u32,
    /// The direction the initiator announced for those bytes.
    pub dir: DataDirection,
}

/// Why [`crate::Target::submit`] took no slot. The transport answers the
/// command itself with the matching SCSI status; a command is never dropped.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Rejected {
    /// Answer TASK SET FULL: the pool is exhausted and this I_T nexus has
    /// commands in it (SAM-5 5.3.3).
    TaskSetFull,
    /// Answer BUSY: the pool is exhausted and this I_T nexus has none, or the
    /// TMF pool is full.
    Busy,
    /// The session handle is stale or was never issued. Answer BUSY and fix the transport.
    UnknownSession,
}

impl Rejected {
    /// The SCSI status the transport should answer with.
    pub fn status(self) -> ScsiStatus {
        match self {
            Rejected::TaskSetFull => ScsiStatus::TaskSetFull,
            Rejected::Busy | Rejected::UnknownSession => ScsiStatus::Busy,
        }
    }
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rejected::TaskSetFull => "task set full",
            Rejected::Busy => "busy",
            Rejected::UnknownSession => "unknown session",
        })
    }
}

impl core::error::Error for Rejected {}

/// SCSI status codes (SAM-5 5.3.1).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ScsiStatus {
    /// GOOD (00h).
    Good,
    /// CHECK CONDITION (02h): sense data follows.
    CheckCondition,
    /// CONDITION MET (04h).
    ConditionMet,
    /// BUSY (08h).
    Busy,
    /// RESERVATION CONFLICT (18h).
    ReservationConflict,
    /// TASK SET FULL (28h).
    TaskSetFull,
    /// ACA ACTIVE (30h).
    AcaActive,
    /// TASK ABORTED (40h).
    TaskAborted,
    /// Any other code.
    Unknown(u8),
}

impl ScsiStatus {
    /// The status byte.
    pub const fn code(self) -> u8 {
        match self {
            ScsiStatus::Good => 0x00,
            ScsiStatus::CheckCondition => 0x02,
            ScsiStatus::ConditionMet => 0x04,
            ScsiStatus::Busy => 0x08,
            ScsiStatus::ReservationConflict => 0x18,
            ScsiStatus::TaskSetFull => 0x28,
            ScsiStatus::AcaActive => 0x30,
            ScsiStatus::TaskAborted => 0x40,
            ScsiStatus::Unknown(c) => c,
        }
    }

    /// The status of a status byte.
    pub const fn from_code(code: u8) -> ScsiStatus {
        match code {
            0x00 => ScsiStatus::Good,
            0x02 => ScsiStatus::CheckCondition,
            0x04 => ScsiStatus::ConditionMet,
            0x08 => ScsiStatus::Busy,
            0x18 => ScsiStatus::ReservationConflict,
            0x28 => ScsiStatus::TaskSetFull,
            0x30 => ScsiStatus::AcaActive,
            0x40 => ScsiStatus::TaskAborted,
            c => ScsiStatus::Unknown(c),
        }
    }
}

impl fmt::Display for ScsiStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ScsiStatus::Good => "GOOD",
            ScsiStatus::CheckCondition => "CHECK CONDITION",
            ScsiStatus::ConditionMet => "CONDITION MET",
            ScsiStatus::Busy => "BUSY",
            ScsiStatus::ReservationConflict => "RESERVATION CONFLICT",
            ScsiStatus::TaskSetFull => "TASK SET FULL",
            ScsiStatus::AcaActive => "ACA ACTIVE",
            ScsiStatus::TaskAborted => "TASK ABORTED",
            ScsiStatus::Unknown(c) => return write!(f, "status {c:#04x}"),
        })
    }
}

/// Residual of a command, relative to the transport's expected length.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Residual {
    /// Exactly the expected length was transferred.
    #[default]
    None,
    /// Underflow: this many expected bytes were not transferred (FCP_RESID_UNDER).
    Under(u32),
    /// Overflow: the command wanted this many bytes beyond the expected
    /// length, which were not transferred (FCP_RESID_OVER).
    Over(u32),
}

impl fmt::Display for Residual {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Residual::None => f.write_str("no residual"),
            Residual::Under(n) => write!(f, "underflow {n}"),
            Residual::Over(n) => write!(f, "overflow {n}"),
        }
    }
}

/// The final status of a command.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Status<'a> {
    /// Status byte.
    pub status: ScsiStatus,
    /// Sense data (fixed or descriptor format), empty unless CHECK CONDITION.
    /// The transport copies it during the call.
    pub sense: &'a [u8],
    /// Residual.
    pub residual: Residual,
}

impl fmt::Display for Status<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.status)?;
        if let (Some(&resp), Some(key)) =
            (self.sense.first(), self.sense.get(1).zip(self.sense.get(2)))
        {
            let (k, asc, ascq) = if resp & 0x7f >= 0x72 {
                (key.0 & 0xf, *key.1, self.sense.get(3).copied().unwrap_or(0))
            } else {
                (
                    key.1 & 0xf,
                    self.sense.get(12).copied().unwrap_or(0),
                    self.sense.get(13).copied().unwrap_or(0),
                )
            };
            write!(f, " sense {k:x}/{asc:02x}/{ascq:02x}")?;
        }
        if self.residual != Residual::None {
            write!(f, ", {}", self.residual)?;
        }
        Ok(())
    }
}

/// A piece of a command's data: `segs` carry the bytes at relative offset
/// `offset` (FCP RELATIVE OFFSET, iSCSI buffer offset) onwards.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Data<'a> {
    /// Relative offset of the first byte within the command's data.
    pub offset: u32,
    /// Bus-address ranges, in order.
    pub segs: &'a [Seg],
}

impl Data<'_> {
    /// Total bytes.
    pub fn len(&self) -> u32 {
        self.segs.iter().map(|s| s.len).sum()
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Display for Data<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} bytes at offset {} in {} segments",
            self.len(),
            self.offset,
            self.segs.len()
        )
    }
}

/// "Not now": the transport cannot take the request at the moment (ring full,
/// no exchange resources). The core keeps the command as it is and asks
/// again on a later poll; `Busy` never becomes a sense code.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Busy;

impl fmt::Display for Busy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("busy")
    }
}

impl core::error::Error for Busy {}

/// How a transfer the transport was asked for ended badly.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TransferError {
    /// The exchange was aborted on the wire (e.g. FC ABTS, link loss).
    Aborted,
    /// The transfer failed (DMA error, firmware error).
    Failed,
}

impl fmt::Display for TransferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransferError::Aborted => "transfer aborted",
            TransferError::Failed => "transfer failed",
        })
    }
}

impl core::error::Error for TransferError {}

/// Which command a [`Transport`] call is about.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CmdRef {
    /// The command's handle (completions name it).
    pub handle: CmdHandle,
    /// Its I_T nexus.
    pub session: SessionHandle,
    /// The tag the transport gave it.
    pub tag: TaskTag,
}

impl fmt::Display for CmdRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}, {})", self.handle, self.session, self.tag)
    }
}

/// Which task management request a [`Transport`] call is about.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TmfRef {
    /// The request's handle.
    pub handle: TmfHandle,
    /// Its I_T nexus.
    pub session: SessionHandle,
    /// The tag the transport gave it.
    pub tag: TaskTag,
}

impl fmt::Display for TmfRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}, {})", self.handle, self.session, self.tag)
    }
}

/// What the core asks of a transport (the qla2x00t driver; a test's recording
/// fake). Every method returns at once; `Err(Busy)` means "not now" and the
/// core asks again on a later [`crate::Target::poll`].
///
/// Completions come back through the [`crate::Target`] entry points named in
/// each method's documentation.
pub trait Transport {
    /// Send `data` to the initiator and, if `status` is given, the final
    /// status after it (FC: one CTIO7 with SEND_STATUS when it is GOOD with
    /// no residual, else data then status in one submission). Without
    /// status, call [`crate::Target::data_in_done`] once the data is out;
    /// with status, call [`crate::Target::response_sent`].
    fn queue_data_in(
        &mut self,
        cmd: CmdRef,
        data: &Data<'_>,
        status: Option<&Status<'_>>,
    ) -> Result<(), Busy>;

    /// Receive Data-Out bytes `data.offset .. data.offset + data.len()` into
    /// `data.segs` (FC: CTIO7 DATA_OUT, an XFER_RDY on the wire), then call
    /// [`crate::Target::data_out_done`].
    fn request_data_out(&mut self, cmd: CmdRef, data: &Data<'_>) -> Result<(), Busy>;

    /// Send the final status without data, then call
    /// [`crate::Target::response_sent`].
    fn queue_status(&mut self, cmd: CmdRef, status: &Status<'_>) -> Result<(), Busy>;

    /// Send the response of a task management request (FC: FCP_RSP with
    /// RSP_CODE, or BA_ACC/BA_RJT for ABTS), then call
    /// [`crate::Target::tmf_response_sent`].
    fn queue_tmf_response(&mut self, tmf: TmfRef, response: &TmfResponse) -> Result<(), Busy>;

    /// The core has aborted this command (task management, nexus loss,
    /// QErr). Terminate the exchange, wait until no transfer of it can touch
    /// memory any more, then call [`crate::Target::abort_done`]. Completions
    /// of transfers queued earlier may still arrive; the core ignores them.
    fn command_aborted(&mut self, cmd: CmdRef) -> Result<(), Busy>;

    /// Optional: the command has waited longer than the configured
    /// hardware-pending time for a transfer or response completion (SCST
    /// `on_hw_pending_cmd_timeout`). A transport may log, poll its hardware
    /// or abort the exchange. Called once per wait.
    fn hw_pending_timeout(&mut self, cmd: CmdRef) {
        let _ = cmd;
    }

    /// A task management request ends without a response: its I_T nexus was
    /// removed ([`crate::Target::remove_session`]) before the response was
    /// queued, so [`Transport::queue_tmf_response`] is never called for it and
    /// its handle is void when this returns. Whatever wire state the request
    /// holds belongs to the transport, which must end it itself (FC: terminate
    /// the exchange of a TMF FCP_CMND; answer an ABTS with BA_RJT).
    ///
    /// Called from [`crate::Target::poll`], once per dropped request, after
    /// every command it affected has finished (the same "safe" point at which
    /// its response would have gone out). Default: nothing.
    fn tmf_dropped(&mut self, tmf: TmfRef) {
        let _ = tmf;
    }
}
