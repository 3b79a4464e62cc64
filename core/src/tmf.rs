//! Task management requests and responses (SAM-5 7).
//!
//! The core implements SCST's "safe" semantics: a response is queued only
//! after every affected command has left the transport and the backend, so
//! once the initiator sees it no affected command touches media or DMA
//! buffers again.

use core::fmt;

use crate::ids::{Lun, SessionHandle, TaskTag};

/// A task management function (SAM-5 7.1).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TmfFunction {
    /// ABORT TASK of the task with this tag on the I_T_L nexus (FC ABTS maps
    /// here). The task is found by I_T nexus and tag; the request's LUN is
    /// not needed (an ABTS carries none).
    AbortTask(TaskTag),
    /// ABORT TASK SET: every task of the I_T_L nexus.
    AbortTaskSet,
    /// CLEAR TASK SET: every task of the logical unit, from every I_T nexus.
    ClearTaskSet,
    /// CLEAR ACA: clear the ACA condition the I_T nexus established.
    ClearAca,
    /// LOGICAL UNIT RESET.
    LogicalUnitReset,
    /// TARGET RESET (iSCSI TARGET WARM RESET): a logical unit reset of every
    /// logical unit. A cold reset is this followed by the transport removing its sessions.
    TargetReset,
    /// I_T NEXUS RESET: every task of the I_T nexus on every logical unit.
    ItNexusReset,
    /// QUERY TASK: is the task with this tag in the task set? Found by I_T
    /// nexus and tag, like ABORT TASK.
    QueryTask(TaskTag),
    /// QUERY TASK SET: does the I_T_L nexus have any task?
    QueryTaskSet,
    /// QUERY ASYNCHRONOUS EVENT: is a unit attention pending for the I_T_L nexus?
    QueryAsynchronousEvent,
}

impl TmfFunction {
    /// Whether the function addresses a logical unit (the request's LUN
    /// matters): all but TARGET RESET and I_T NEXUS RESET.
    pub const fn is_lun_scoped(self) -> bool {
        !matches!(self, TmfFunction::TargetReset | TmfFunction::ItNexusReset)
    }
}

impl fmt::Display for TmfFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TmfFunction::AbortTask(t) => write!(f, "ABORT TASK ({t})"),
            TmfFunction::AbortTaskSet => f.write_str("ABORT TASK SET"),
            TmfFunction::ClearTaskSet => f.write_str("CLEAR TASK SET"),
            TmfFunction::ClearAca => f.write_str("CLEAR ACA"),
            TmfFunction::LogicalUnitReset => f.write_str("LOGICAL UNIT RESET"),
            TmfFunction::TargetReset => f.write_str("TARGET RESET"),
            TmfFunction::ItNexusReset => f.write_str("I_T NEXUS RESET"),
            TmfFunction::QueryTask(t) => write!(f, "QUERY TASK ({t})"),
            TmfFunction::QueryTaskSet => f.write_str("QUERY TASK SET"),
            TmfFunction::QueryAsynchronousEvent => f.write_str("QUERY ASYNCHRONOUS EVENT"),
        }
    }
}

/// A task management request as the transport received it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TmfRequest {
    /// The I_T nexus it arrived on.
    pub session: SessionHandle,
    /// The transport's tag of the request itself.
    pub tag: TaskTag,
    /// The addressed logical unit (ignored for target-wide functions).
    pub lun: Lun,
    /// The function.
    pub function: TmfFunction,
}

/// Service response of a task management function (SAM-5 7.1, FCP-4 RSP_CODE).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TmfResponseCode {
    /// FUNCTION COMPLETE (FCP RSP_CODE 00h).
    FunctionComplete,
    /// FUNCTION SUCCEEDED (FCP 08h): a QUERY found what it asked for.
    FunctionSucceeded,
    /// FUNCTION REJECTED (FCP 04h).
    FunctionRejected,
    /// INCORRECT LOGICAL UNIT NUMBER (FCP 09h).
    IncorrectLun,
    /// SERVICE DELIVERY OR TARGET FAILURE (FCP 05h).
    ServiceDeliveryFailure,
}

impl fmt::Display for TmfResponseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TmfResponseCode::FunctionComplete => "FUNCTION COMPLETE",
            TmfResponseCode::FunctionSucceeded => "FUNCTION SUCCEEDED",
            TmfResponseCode::FunctionRejected => "FUNCTION REJECTED",
            TmfResponseCode::IncorrectLun => "INCORRECT LOGICAL UNIT NUMBER",
            TmfResponseCode::ServiceDeliveryFailure => "SERVICE DELIVERY OR TARGET FAILURE",
        })
    }
}

/// The response of a task management function.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TmfResponse {
    /// Service response.
    pub code: TmfResponseCode,
    /// ADDITIONAL RESPONSE INFORMATION (SAM-5 7.12): for QUERY ASYNCHRONOUS
    /// EVENT, byte 0 = UADE DEPTH << 4 | SENSE KEY, then ASC and ASCQ of the
    /// pending unit attention; zero otherwise.
    pub additional_info: [u8; 3],
}

impl TmfResponse {
    /// A response with no additional information.
    pub const fn new(code: TmfResponseCode) -> TmfResponse {
        TmfResponse {
            code,
            additional_info: [0; 3],
        }
    }
}

impl fmt::Display for TmfResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if self.additional_info != [0; 3] {
            let [a, b, c] = self.additional_info;
            write!(f, " ({a:02x} {b:02x} {c:02x})")?;
        }
        Ok(())
    }
}
