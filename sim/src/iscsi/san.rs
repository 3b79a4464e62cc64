//! The seam between the iSCSI portal and the SAN behind it.
//!
//! The portal calls [`SanPort`] for everything the initiators ask: session login and
//! logout, SCSI commands, Data-Out bytes, task management, aborts. The SAN answers later
//! through [`SanEvents`], which [`Portal`](super::Portal) implements: Data-In bytes,
//! "ready to transfer" requests (the FC XFER_RDY), final status, TMF responses. Nothing
//! here knows about FC: the gateway that maps these calls onto FCP frames lives on the
//! other side of the seam.
//!
//! Rules of the seam:
//! * Handles ([`TaskId`], [`TmfId`], [`LoginId`]) carry generations. An event for a task
//!   the portal has already forgotten (aborted, connection gone) is refused with
//!   [`EventError::Stale`] and has no effect: late completions are harmless.
//! * Data moves by reference: `data_out` hands the SAN a slice of the receive buffer (or of
//!   the task's unsolicited-data buffer); `data_in` is copied once, straight into the
//!   socket output buffer, already framed as Data-In PDUs.
//! * A SAN must not call [`SanEvents`] from inside a [`SanPort`] method (the portal is
//!   busy); it queues its answers and delivers them from its poll ([`SanPoll`]), or from
//!   another thread through the channel adapter of the network layer.
//! * Write data flows only on request: for every `ready_to_transfer(offset, len)` the SAN
//!   receives `data_out` calls covering the request in order, the last one flagged `last`.
//!   Bytes the initiator sent unsolicited (immediate data, unsolicited Data-Out) are kept
//!   by the portal and used to satisfy requests; the rest is solicited with R2Ts. A
//!   request beyond the Expected Data Transfer Length is cut short (possibly to an empty
//!   `last` delivery): the SAN reports the residual in its status.
//! * `logout(nexus, ..)` ends the nexus: every task of it the SAN still holds is gone
//!   (the portal has called `abort_task` for each first).

use core::fmt;

use super::wire::LoginStatus;
use super::wire::{Isid, Lun, Residual, TaskAttr, TmfFunction, TmfResponseCode};

/// A handle: slot index plus generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Handle {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.index, self.generation)
    }
}

/// The SAN's identity of an I_T nexus (an iSCSI session), chosen by the SAN at login.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NexusId(pub u64);

impl fmt::Display for NexusId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "nexus#{}", self.0)
    }
}

/// The portal's identity of a task (one SCSI command).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId {
    pub(crate) conn: Handle,
    pub(crate) task: Handle,
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "task#{}/{}", self.conn, self.task)
    }
}

/// The portal's identity of a task management request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TmfId {
    pub(crate) conn: Handle,
    pub(crate) tmf: Handle,
}

impl fmt::Display for TmfId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tmf#{}/{}", self.conn, self.tmf)
    }
}

/// The portal's identity of a login waiting for the SAN's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LoginId {
    pub(crate) conn: Handle,
}

impl fmt::Display for LoginId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "login#{}", self.conn)
    }
}

/// A normal session asking to enter full feature phase.
#[derive(Debug, Clone, Copy)]
pub struct SessionLogin<'a> {
    /// Handle for a later [`SanEvents::login_done`] when the answer is [`LoginDecision::Pending`].
    pub login: LoginId,
    /// iSCSI initiator name.
    pub initiator_name: &'a str,
    /// InitiatorAlias, if sent.
    pub initiator_alias: Option<&'a str>,
    /// ISID: with the initiator name, the SCSI initiator port identifier.
    pub isid: Isid,
    /// Target name (one of the configured targets).
    pub target_name: &'a str,
    /// Index of the target in the portal configuration.
    pub target_index: usize,
    /// Target portal group tag (the SCSI target port's relative identity).
    pub portal_group_tag: u16,
    /// TSIH the portal will give the session.
    pub tsih: u16,
}

/// The SAN's answer to a login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginDecision {
    /// Accepted: the nexus to name in later calls.
    Accept(NexusId),
    /// Refused with this login status (e.g. [`LoginStatus::AUTHORIZATION_FAILURE`]).
    Reject(LoginStatus),
    /// Decided later with [`SanEvents::login_done`].
    Pending,
}

/// Data direction of a command, named from the initiator's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataDirection {
    /// No data.
    None,
    /// Data-In (target to initiator): the R bit.
    Read,
    /// Data-Out (initiator to target): the W bit.
    Write,
}

impl fmt::Display for DataDirection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DataDirection::None => "none",
            DataDirection::Read => "read",
            DataDirection::Write => "write",
        })
    }
}

/// A SCSI command for the SAN.
#[derive(Debug, Clone, Copy)]
pub struct Command<'a> {
    /// Logical unit (8 SAM bytes).
    pub lun: Lun,
    /// The CDB: 16 bytes from the BHS plus any extended CDB bytes from the AHS.
    pub cdb: &'a [u8],
    /// Task attribute.
    pub attr: TaskAttr,
    /// Expected Data Transfer Length.
    pub expected_len: u32,
    /// Direction.
    pub dir: DataDirection,
    /// Bytes of unsolicited data already received (immediate data).
    pub unsolicited_received: u32,
    /// Bytes the initiator may send without an R2T in total (immediate plus unsolicited
    /// Data-Out), an upper bound until its unsolicited sequence ends.
    pub unsolicited_max: u32,
    /// CmdSN (for logs).
    pub cmdsn: u32,
    /// Initiator Task Tag (for logs).
    pub itt: u32,
}

/// A task management request for the SAN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskMgmt {
    /// Function (never TASK REASSIGN: the portal answers that itself at ERL 0).
    pub function: TmfFunction,
    /// LUN from the request.
    pub lun: Lun,
    /// The task to abort, for ABORT TASK.
    pub referenced: Option<TaskId>,
}

/// Why a nexus ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NexusLoss {
    /// The initiator logged out.
    Logout,
    /// The TCP connection dropped, timed out or failed a digest (session failure at ERL 0).
    ConnectionLost,
    /// A new login with the same initiator name and ISID replaced the session.
    Reinstated,
    /// A protocol error forced the portal to drop the connection.
    ProtocolError,
    /// TARGET COLD RESET or portal shutdown.
    TargetReset,
}

impl fmt::Display for NexusLoss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NexusLoss::Logout => "logout",
            NexusLoss::ConnectionLost => "connection lost",
            NexusLoss::Reinstated => "session reinstated",
            NexusLoss::ProtocolError => "protocol error",
            NexusLoss::TargetReset => "target reset",
        })
    }
}

/// Final status of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScsiStatus<'a> {
    /// SCSI status byte (SAM-5 §5.3).
    pub status: u8,
    /// Sense data (fixed or descriptor format), empty if none.
    pub sense: &'a [u8],
    /// Residual relative to the Expected Data Transfer Length.
    pub residual: Residual,
}

/// The SAN side as the portal sees it. The FC gateway implements this.
pub trait SanPort {
    /// A normal session asks to log in (reached only after authentication succeeded).
    fn login(&mut self, req: &SessionLogin<'_>) -> LoginDecision;
    /// A SCSI command, delivered in CmdSN order.
    fn command(&mut self, nexus: NexusId, task: TaskId, cmd: &Command<'_>);
    /// Write data at `offset`, answering an earlier `ready_to_transfer`; `last` ends that
    /// request (its total may be short of the request when the EDTL ends first).
    fn data_out(&mut self, nexus: NexusId, task: TaskId, offset: u32, data: &[u8], last: bool);
    /// A task management request; answer with [`SanEvents::tmf_done`].
    fn task_mgmt(&mut self, nexus: NexusId, tmf: TmfId, req: &TaskMgmt);
    /// The portal gave up a task (connection lost, protocol error): no status will be sent.
    fn abort_task(&mut self, nexus: NexusId, task: TaskId);
    /// The nexus is gone; everything the SAN holds for it ends.
    fn logout(&mut self, nexus: NexusId, reason: NexusLoss);
}

/// Why the portal refused an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventError {
    /// The handle names something the portal no longer has (aborted, finished, closed).
    Stale,
    /// The event is not valid in the task's state (the reason says why).
    Invalid(&'static str),
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventError::Stale => f.write_str("stale handle"),
            EventError::Invalid(why) => write!(f, "invalid event: {why}"),
        }
    }
}

impl std::error::Error for EventError {}

/// What the SAN reports back. [`Portal`](super::Portal) implements this.
pub trait SanEvents {
    /// The answer to a login that was [`LoginDecision::Pending`]. [`EventError::Stale`]
    /// means the connection went away meanwhile: a SAN that accepted must end that nexus
    /// itself, the portal will never name it.
    fn login_done(
        &mut self,
        login: LoginId,
        result: Result<NexusId, LoginStatus>,
    ) -> Result<(), EventError>;
    /// The SAN is ready for `len` bytes of write data at `offset` (the FC XFER_RDY).
    fn ready_to_transfer(&mut self, task: TaskId, offset: u32, len: u32) -> Result<(), EventError>;
    /// Read data at `offset` (must continue where the previous one ended).
    fn data_in(&mut self, task: TaskId, offset: u32, data: &[u8]) -> Result<(), EventError>;
    /// Read data at `offset` in parts that follow each other: the same as one
    /// [`SanEvents::data_in`] of the parts joined (the same PDUs), without joining them
    /// first. The default joins them.
    fn data_in_parts(
        &mut self,
        task: TaskId,
        offset: u32,
        parts: &[&[u8]],
    ) -> Result<(), EventError> {
        match parts {
            [one] => self.data_in(task, offset, one),
            _ => self.data_in(task, offset, &parts.concat()),
        }
    }
    /// Final status; the task ends.
    fn status(&mut self, task: TaskId, status: &ScsiStatus<'_>) -> Result<(), EventError>;
    /// The SAN terminated the task without status (aborted by a TMF, maybe from another
    /// nexus); the portal forgets it.
    fn task_aborted(&mut self, task: TaskId) -> Result<(), EventError>;
    /// The answer to a task management request.
    fn tmf_done(&mut self, tmf: TmfId, response: TmfResponseCode) -> Result<(), EventError>;
    /// A SCSI asynchronous event (sense data) for the nexus, sent as an iSCSI
    /// Asynchronous Message (RFC 7143 §11.9.1, AsyncEvent 0).
    fn async_event(&mut self, nexus: NexusId, lun: Lun, sense: &[u8]) -> Result<(), EventError>;
}

/// A SAN that runs in the portal's own loop (run-to-completion mode).
pub trait SanPoll: SanPort {
    /// Does pending work and reports results through `events`; returns whether anything
    /// happened. `now` is the portal clock.
    fn poll(&mut self, now: core::time::Duration, events: &mut dyn SanEvents) -> bool;
    /// When the SAN next needs a poll even without I/O; `None` if only I/O wakes it.
    fn poll_at(&self) -> Option<core::time::Duration> {
        None
    }
}
