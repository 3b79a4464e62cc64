//! What the driver needs of the SCSI core, as a trait.
//!
//! The driver calls the core directly (no queue, no thread hop); this trait
//! names exactly the entry points of the transport contract
//! (`docs/design/transport-contract.md`, "Transport → core") so the driver
//! can also be driven by a recording fake in its own tests. It is
//! implemented for `rscst_core::Target`.

use rscst_core::{
    Backend, CmdHandle, CommandRequest, Instant, Rejected, RelativePortId, SessionHandle, Target,
    TmfHandle, TmfRequest, TransferError, Transport, TransportId,
};

/// The core entry points a transport calls.
///
/// Completion methods return `false` when the core refused the handle as
/// stale (the driver counts it; it never happens unless the two disagree).
pub trait CoreApi {
    /// Command slots of the core, if it says (the driver's command table
    /// must have at least this many, since it is indexed by
    /// `CmdHandle::index`; the driver refuses to start otherwise).
    fn command_slots(&self) -> Option<usize>;
    /// Task-management slots of the core (likewise for `TmfHandle::index`).
    fn tmf_slots(&self) -> Option<usize>;
    /// An initiator logged in: create its I_T nexus.
    fn create_session(
        &mut self,
        initiator: &TransportId,
        port: RelativePortId,
    ) -> Option<SessionHandle>;
    /// The I_T nexus is lost (logout, link loss, reset): abort its commands.
    fn remove_session(&mut self, session: SessionHandle);
    /// A new command.
    fn submit(&mut self, req: &CommandRequest<'_>) -> Result<CmdHandle, Rejected>;
    /// A new command, run at once if the core can (the express path,
    /// [`Target::submit_now`]) with `t` as its transport: `accepted(t,
    /// handle)` runs first, once the command has its slot, so that the
    /// transport's own state for it is in place for the transport calls.
    /// `Err`: no slot was taken and `accepted` did not run. The default,
    /// for a core without a backend at hand, is `submit` then `accepted`.
    #[inline]
    fn submit_now<T: Transport>(
        &mut self,
        req: &CommandRequest<'_>,
        now: Instant,
        t: &mut T,
        accepted: impl FnOnce(&mut T, CmdHandle),
    ) -> Result<CmdHandle, Rejected> {
        let _ = now;
        let h = self.submit(req)?;
        accepted(t, h);
        Ok(h)
    }
    /// A new task management request.
    fn submit_tmf(&mut self, req: &TmfRequest) -> Result<TmfHandle, Rejected>;
    /// The Data-Out asked for by `request_data_out` arrived (or failed).
    fn data_out_done(&mut self, cmd: CmdHandle, result: Result<(), TransferError>) -> bool;
    /// Data-In sent without status went out (or failed).
    fn data_in_done(&mut self, cmd: CmdHandle, result: Result<(), TransferError>) -> bool;
    /// The status went out (or failed).
    fn response_sent(&mut self, cmd: CmdHandle, result: Result<(), TransferError>) -> bool;
    /// After `command_aborted`: no transfer of the command can touch memory.
    fn abort_done(&mut self, cmd: CmdHandle) -> bool;
    /// The TMF response went out.
    fn tmf_response_sent(&mut self, tmf: TmfHandle) -> bool;
}

impl CoreApi for Target<'_> {
    fn command_slots(&self) -> Option<usize> {
        Some(rscst_core::Target::command_slots(self))
    }
    fn tmf_slots(&self) -> Option<usize> {
        Some(rscst_core::MAX_TMFS)
    }
    fn create_session(
        &mut self,
        initiator: &TransportId,
        port: RelativePortId,
    ) -> Option<SessionHandle> {
        rscst_core::Target::create_session(self, initiator, port).ok()
    }
    fn remove_session(&mut self, session: SessionHandle) {
        let _ = rscst_core::Target::remove_session(self, session);
    }
    fn submit(&mut self, req: &CommandRequest<'_>) -> Result<CmdHandle, Rejected> {
        rscst_core::Target::submit(self, req)
    }
    fn submit_tmf(&mut self, req: &TmfRequest) -> Result<TmfHandle, Rejected> {
        rscst_core::Target::submit_tmf(self, req)
    }
    fn data_out_done(&mut self, cmd: CmdHandle, result: Result<(), TransferError>) -> bool {
        rscst_core::Target::data_out_done(self, cmd, result).is_ok()
    }
    fn data_in_done(&mut self, cmd: CmdHandle, result: Result<(), TransferError>) -> bool {
        rscst_core::Target::data_in_done(self, cmd, result).is_ok()
    }
    #[inline]
    fn response_sent(&mut self, cmd: CmdHandle, result: Result<(), TransferError>) -> bool {
        rscst_core::Target::response_sent(self, cmd, result).is_ok()
    }
    fn abort_done(&mut self, cmd: CmdHandle) -> bool {
        rscst_core::Target::abort_done(self, cmd).is_ok()
    }
    fn tmf_response_sent(&mut self, tmf: TmfHandle) -> bool {
        rscst_core::Target::tmf_response_sent(self, tmf).is_ok()
    }
}

/// The core with the backend at hand: what [`crate::Isp::poll_stack`] drains
/// the rings into, so that a command the core can run at once runs from the
/// ATIO drain ([`CoreApi::submit_now`]) instead of waiting for the core's poll.
/// Every other entry point is the target's own.
/// The backend is a trait object: one instantiation of the driver's poll
/// serves every backend type (with a generic one the whole online poll was
/// compiled once per backend).
pub(crate) struct StackCore<'a, 't> {
    pub(crate) target: &'a mut Target<'t>,
    pub(crate) backend: &'a mut (dyn Backend + 'a),
}

impl CoreApi for StackCore<'_, '_> {
    #[inline]
    fn command_slots(&self) -> Option<usize> {
        CoreApi::command_slots(&*self.target)
    }
    #[inline]
    fn tmf_slots(&self) -> Option<usize> {
        CoreApi::tmf_slots(&*self.target)
    }
    #[inline]
    fn create_session(
        &mut self,
        initiator: &TransportId,
        port: RelativePortId,
    ) -> Option<SessionHandle> {
        CoreApi::create_session(&mut *self.target, initiator, port)
    }
    #[inline]
    fn remove_session(&mut self, session: SessionHandle) {
        CoreApi::remove_session(&mut *self.target, session)
    }
    #[inline]
    fn submit(&mut self, req: &CommandRequest<'_>) -> Result<CmdHandle, Rejected> {
        CoreApi::submit(&mut *self.target, req)
    }
    #[inline]
    fn submit_now<T: Transport>(
        &mut self,
        req: &CommandRequest<'_>,
        now: Instant,
        t: &mut T,
        accepted: impl FnOnce(&mut T, CmdHandle),
    ) -> Result<CmdHandle, Rejected> {
        self.target
            .submit_now(req, now, t, &mut self.backend, accepted)
    }
    #[inline]
    fn submit_tmf(&mut self, req: &TmfRequest) -> Result<TmfHandle, Rejected> {
        CoreApi::submit_tmf(&mut *self.target, req)
    }
    #[inline]
    fn data_out_done(&mut self, cmd: CmdHandle, result: Result<(), TransferError>) -> bool {
        CoreApi::data_out_done(&mut *self.target, cmd, result)
    }
    #[inline]
    fn data_in_done(&mut self, cmd: CmdHandle, result: Result<(), TransferError>) -> bool {
        CoreApi::data_in_done(&mut *self.target, cmd, result)
    }
    #[inline]
    fn response_sent(&mut self, cmd: CmdHandle, result: Result<(), TransferError>) -> bool {
        CoreApi::response_sent(&mut *self.target, cmd, result)
    }
    #[inline]
    fn abort_done(&mut self, cmd: CmdHandle) -> bool {
        CoreApi::abort_done(&mut *self.target, cmd)
    }
    #[inline]
    fn tmf_response_sent(&mut self, tmf: TmfHandle) -> bool {
        CoreApi::tmf_response_sent(&mut *self.target, tmf)
    }
}
