//! The one step function, and the helpers command handlers build on.
//!
//! `step` matches on [`CmdState`] exhaustively. Handlers (in `spc.rs` and
//! `sbc.rs`) run in `Exec` and keep their progress in `Cmd::stage`; a stage
//! only advances once the transport or backend accepted the request it
//! makes, so a `Busy` answer simply reruns the same stage on the next poll.

use super::{CmdState, NIL, Target};
use crate::backend::{Backend, IoError, IoKind, Submitted};
use crate::cdb::{self, EXACT_OUT, MEDIUM, NO_LU, OpKind, RES2_OK, STANDBY_OK, UA_EXEMPT, WRITES};
use crate::payload::Payload;
use crate::sense::{SENSE_MAX, SenseReason};
use crate::transport::{Data, DataDirection, Residual, ScsiStatus, Status, TaskAttr, Transport};

/// What a step did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Step {
    /// The command changed state and can step again now.
    Continue,
    /// The command waits for an external event (a completion, a wake-up).
    Park,
    /// The transport or backend said Busy: try again on the next poll.
    Retry,
    /// The command made progress and gives way to the others (a long
    /// operation such as EXTENDED COPY, between chunks): requeued at the tail.
    Yield,
}

/// Unwrap a buffer request: held, parked (return `Park`) or failed.
macro_rules! need_buf {
    ($self:ident, $i:expr, $bytes:expr) => {
        match $self.ensure_buf($i, $bytes) {
            Ok(true) => {}
            Ok(false) => return Step::Park,
            Err(r) => return $self.fail($i, r),
        }
    };
}
pub(crate) use need_buf;

/// Unwrap a `Result<_, SenseReason>` or fail the command.
macro_rules! check {
    ($self:ident, $i:expr, $e:expr) => {
        match $e {
            Ok(v) => v,
            Err(r) => return $self.fail($i, r),
        }
    };
}
pub(crate) use check;

/// The sense reason of a backend error.
pub(crate) fn io_sense(e: IoError, reading: bool) -> SenseReason {
    match e {
        IoError::Medium if reading => SenseReason::UnrecoveredReadError,
        IoError::Medium => SenseReason::WriteError,
        IoError::NoSpace => SenseReason::SpaceAllocationFailed,
        IoError::OutOfRange => SenseReason::LbaOutOfRange,
        IoError::Unsupported => SenseReason::InvalidOpcode,
        IoError::Failed => SenseReason::InternalTargetFailure,
    }
}

impl Target<'_> {
    pub(crate) fn step<T: Transport, B: Backend>(
        &mut self,
        i: usize,
        t: &mut T,
        b: &mut B,
    ) -> Step {
        let state = self.cmds[i].state;
        if self.cmds[i].aborted
            && matches!(
                state,
                CmdState::Received
                    | CmdState::Dormant
                    | CmdState::Enabled
                    | CmdState::Exec
                    | CmdState::WaitBuffers
                    | CmdState::WaitOverlap
                    | CmdState::WaitBackground
                    | CmdState::WaitAborts
            )
        {
            return self.route_abort(i);
        }
        match state {
            CmdState::Free | CmdState::Dormant => Step::Park,
            CmdState::Received => self.step_received(i),
            CmdState::Enabled => self.step_enabled(i),
            CmdState::Exec => self.exec(i, t, b),
            CmdState::WaitBuffers
            | CmdState::WaitOverlap
            | CmdState::WaitBackground
            | CmdState::WaitAborts => {
                // Woken: run the handler's stage again.
                self.cmds[i].state = CmdState::Exec;
                Step::Continue
            }
            CmdState::DataOut
            | CmdState::DataIn
            | CmdState::Backend
            | CmdState::ResponseSent
            | CmdState::AbortWait => Step::Park,
            CmdState::Respond => self.step_respond(i, t),
            CmdState::Aborting => {
                let r = self.cmd_ref(i);
                match t.command_aborted(r) {
                    Ok(()) => {
                        let c = &mut self.cmds[i];
                        c.state = CmdState::AbortWait;
                        c.waiting_since = self.now;
                        Step::Park
                    }
                    Err(_) => Step::Retry,
                }
            }
        }
    }

    /// An aborted command with nothing outstanding: TASK ABORTED under TAS,
    /// else tell the transport.
    fn route_abort(&mut self, i: usize) -> Step {
        self.leave_task_set(i);
        let c = &mut self.cmds[i];
        c.data_with_status = false;
        c.segs.clear();
        if c.abort_tas {
            c.status = ScsiStatus::TaskAborted;
            c.sense = None;
            c.state = CmdState::Respond;
        } else {
            c.state = CmdState::Aborting;
        }
        Step::Continue
    }

    /// Abort command `j`: silently, or with TASK ABORTED status (`tas`); a
    /// TMF in slot `tmf` waits for it to finish.
    pub(crate) fn abort_cmd(&mut self, j: usize, tas: bool, tmf: Option<usize>) {
        let state = self.cmds[j].state;
        if state == CmdState::Free {
            return;
        }
        if let Some(k) = tmf {
            self.cmds[j].tmf_waiters |= 1 << k;
            self.tmfs[k].pending += 1;
        }
        // A command whose status is on its way completes normally.
        if state == CmdState::ResponseSent || self.cmds[j].aborted {
            return;
        }
        let c = &mut self.cmds[j];
        c.aborted = true;
        c.abort_tas = tas;
        self.leave_task_set(j);
        match state {
            CmdState::Received
            | CmdState::Dormant
            | CmdState::Enabled
            | CmdState::Exec
            | CmdState::WaitBuffers
            | CmdState::WaitOverlap
            | CmdState::WaitBackground
            | CmdState::WaitAborts
            | CmdState::Respond => self.enqueue(j),
            // A transfer is outstanding: a silent abort tells the transport
            // now; TASK ABORTED waits for the transfer to end.
            CmdState::DataOut | CmdState::DataIn => {
                if !tas {
                    self.cmds[j].state = CmdState::Aborting;
                    self.enqueue(j);
                }
            }
            // Backend I/O cannot be recalled: wait for its completion.
            CmdState::Backend => {}
            CmdState::Free | CmdState::ResponseSent | CmdState::Aborting | CmdState::AbortWait => {}
        }
    }

    /// First step: LU, ACA, opcode, unit attention, CDB, task set.
    #[inline(always)]
    fn step_received(&mut self, i: usize) -> Step {
        let c = &self.cmds[i];
        let (s, l) = (usize::from(c.session), c.lu);
        // Most opcodes have one row: two loads find it, the search only the rest.
        let looked = match cdb::lookup_plain(c.cdb[0]) {
            Some(op) => Ok(op),
            None => cdb::lookup(&c.cdb),
        };
        if l == NIL {
            return match looked {
                Ok(op) if op.has(NO_LU) => {
                    self.cmds[i].op = Some(op);
                    check!(self, i, cdb::check_reserved(op, &self.cmds[i].cdb));
                    self.cmds[i].state = CmdState::Exec;
                    Step::Continue
                }
                _ => self.fail(i, SenseReason::LunNotSupported),
            };
        }
        let l = usize::from(l);
        let lu = &self.lus[l];
        debug_assert_eq!(
            lu.quiet,
            lu.is_quiet(self.alua_restricted),
            "LU {l}: stale quiet"
        );
        let attr = self.cmds[i].attr;
        // A quiet LU has no reset in progress and no ACA condition.
        if !lu.quiet || attr == TaskAttr::Aca {
            if lu.resets > 0 {
                // Held until the reset finishes (not in the task set).
                self.cmds[i].state = CmdState::Dormant;
                return Step::Park;
            }
            if lu.aca != NIL {
                if attr != TaskAttr::Aca || usize::from(lu.aca) != s || lu.aca_tasks > 0 {
                    return self.finish(i, ScsiStatus::AcaActive);
                }
            } else if attr == TaskAttr::Aca {
                return self.fail(i, SenseReason::InvalidMessage);
            }
        }
        let op = match looked {
            Ok(op) => op,
            Err(r) => {
                if let Some(ua) = self.pop_ua(s, l) {
                    return self.fail(i, SenseReason::UnitAttention(ua));
                }
                return self.fail(i, r);
            }
        };
        self.cmds[i].op = Some(op);
        trace!("command {}: {}", i as u32, op.name);
        if !op.has(UA_EXEMPT)
            && let Some(ua) = self.pop_ua(s, l)
        {
            return self.fail(i, SenseReason::UnitAttention(ua));
        }
        check!(self, i, cdb::check_reserved(op, &self.cmds[i].cdb));
        if self.enter_task_set(i) {
            // `step_enabled`'s usual case with the operation and LU at hand
            // (no store of the passing Enabled state).
            let c = &mut self.cmds[i];
            if self.lus.get(l).is_some_and(|lu| lu.quiet) && !(c.map_ro && op.has(WRITES)) {
                c.state = CmdState::Exec;
                c.stage = 0;
                return Step::Continue;
            }
            c.state = CmdState::Enabled;
            self.step_enabled_checks(i)
        } else {
            self.cmds[i].state = CmdState::Dormant;
            Step::Park
        }
    }

    /// The task is enabled: reservation, readiness and protection checks.
    #[inline(always)]
    fn step_enabled(&mut self, i: usize) -> Step {
        // The usual case first: a quiet LU (no reservation of any kind, no
        // background operation, no ALUA restriction, the medium ready and
        // writable) and no read-only map for a command that writes. Nothing
        // below could refuse the command then.
        let c = &self.cmds[i];
        if let (Some(op), Some(lu)) = (c.op, self.lus.get(usize::from(c.lu)))
            && lu.quiet
            && !(c.map_ro && op.has(WRITES))
        {
            let c = &mut self.cmds[i];
            c.state = CmdState::Exec;
            c.stage = 0;
            return Step::Continue;
        }
        self.step_enabled_checks(i)
    }

    /// [`Self::step_enabled`] when some check may refuse the command.
    #[inline(never)]
    fn step_enabled_checks(&mut self, i: usize) -> Step {
        let c = &self.cmds[i];
        let Some(op) = c.op else {
            return self.fail(i, SenseReason::InvalidOpcode);
        };
        let (s, l) = (usize::from(c.session), usize::from(c.lu));
        let lu = &self.lus[l];
        // The reservation check: SPC-2 RESERVE, then persistent reservations.
        let res2_conflict = lu.res2 != NIL
            && usize::from(lu.res2) != s
            && !op.has(RES2_OK)
            && !(op.kind == OpKind::PreventAllow && c.cdb[4] & 0x03 == 0);
        if res2_conflict || self.pr_conflict(i) {
            return self.finish(i, ScsiStatus::ReservationConflict);
        }
        let lu = &self.lus[l];
        if lu.bg.is_some() && !op.has(cdb::BG_OK) {
            let p = lu.bg_progress();
            let r = match lu.bg.as_ref().map(|b| b.kind) {
                Some(super::BgKind::Format) => SenseReason::FormatInProgress(p),
                _ => SenseReason::SanitizeInProgress(p),
            };
            return self.fail(i, r);
        }
        if self.alua_restricted && !op.has(STANDBY_OK) {
            let port = self.sessions.get(s).map(|x| x.port);
            match port.and_then(|p| self.port(p)).map(|p| p.state) {
                Some(super::AluaState::Standby) => {
                    return self.fail(
                        i,
                        SenseReason::Other {
                            key: crate::sense::SenseKey::NotReady,
                            asc: 0x04,
                            ascq: 0x0b,
                        },
                    );
                }
                Some(super::AluaState::Unavailable) => {
                    return self.fail(
                        i,
                        SenseReason::Other {
                            key: crate::sense::SenseKey::NotReady,
                            asc: 0x04,
                            ascq: 0x0c,
                        },
                    );
                }
                _ => {}
            }
        }
        let lu = &self.lus[l];
        if op.has(MEDIUM) {
            if !lu.loaded {
                return self.fail(i, SenseReason::MediumNotPresent);
            }
            if !lu.started {
                return self.fail(i, SenseReason::NotReadyStopped);
            }
        }
        if op.has(WRITES) {
            if lu.mode.swp {
                return self.fail(i, SenseReason::SoftwareWriteProtected);
            }
            if lu.cfg.read_only || self.cmds[i].map_ro {
                return self.fail(i, SenseReason::WriteProtected);
            }
        }
        let c = &mut self.cmds[i];
        c.state = CmdState::Exec;
        c.stage = 0;
        Step::Continue
    }

    /// Run the handler of the command's operation.
    fn exec<T: Transport, B: Backend>(&mut self, i: usize, t: &mut T, b: &mut B) -> Step {
        let Some(op) = self.cmds[i].op else {
            return self.fail(i, SenseReason::InvalidOpcode);
        };
        match op.kind {
            OpKind::TestUnitReady => self.good(i),
            OpKind::RequestSense => self.exec_request_sense(i),
            OpKind::Inquiry => self.exec_inquiry(i),
            OpKind::ReportLuns => self.exec_report_luns(i),
            OpKind::ModeSense => self.exec_mode_sense(i),
            OpKind::ModeSelect => self.exec_mode_select(i, t),
            OpKind::LogSense => self.exec_log_sense(i),
            OpKind::Rsoc => self.exec_rsoc(i),
            OpKind::Rstmf => self.exec_rstmf(i),
            OpKind::ReportTpg => self.exec_report_tpg(i),
            OpKind::Reserve => self.exec_reserve(i),
            OpKind::Release => self.exec_release(i),
            OpKind::StartStopUnit => self.exec_start_stop(i, b),
            OpKind::PreventAllow => self.exec_prevent_allow(i),
            OpKind::ReadCapacity10 => self.exec_read_capacity10(i),
            OpKind::ReadCapacity16 => self.exec_read_capacity16(i),
            OpKind::Read => self.exec_read(i, t, b),
            OpKind::Write => self.exec_write(i, t, b),
            OpKind::WriteVerify => self.exec_write(i, t, b),
            OpKind::Verify => self.exec_verify(i, t, b),
            OpKind::Prefetch => self.exec_prefetch(i),
            OpKind::SyncCache => self.exec_sync_cache(i, b),
            OpKind::ReadDefectData => self.exec_read_defect_data(i),
            OpKind::WriteSame => self.exec_write_same(i, t, b),
            OpKind::Unmap => self.exec_unmap(i, t, b),
            OpKind::GetLbaStatus => self.exec_get_lba_status(i, b),
            OpKind::CompareAndWrite => self.exec_compare_and_write(i, t, b),
            OpKind::OrWrite => self.exec_orwrite(i, t, b),
            OpKind::WriteAtomic => self.exec_write_atomic(i, t, b),
            OpKind::Sanitize => self.exec_sanitize(i, t),
            OpKind::FormatUnit => self.exec_format_unit(i, t),
            OpKind::PrIn => self.exec_prin(i),
            OpKind::PrOut => self.exec_prout(i, t),
            OpKind::ExtendedCopy => self.exec_extended_copy(i, t, b),
            OpKind::ReceiveCopyResults => self.exec_receive_copy_results(i),
        }
    }

    /// Queue the status (with the final data, if any).
    #[inline(always)]
    pub(crate) fn step_respond<T: Transport>(&mut self, i: usize, t: &mut T) -> Step {
        let c = &self.cmds[i];
        if c.status == ScsiStatus::CheckCondition || c.sense.is_some() {
            return self.step_respond_sense(i, t);
        }
        self.queue_response(i, t, &[])
    }

    /// [`Self::step_respond`] of a CHECK CONDITION: QErr and ACA, then the
    /// sense data encoded for the status.
    #[inline(never)]
    fn step_respond_sense<T: Transport>(&mut self, i: usize, t: &mut T) -> Step {
        if self.cmds[i].status == ScsiStatus::CheckCondition && !self.cmds[i].qerr_done {
            self.cmds[i].qerr_done = true;
            self.on_check_condition(i);
        }
        let c = &self.cmds[i];
        let mut sense = [0u8; SENSE_MAX];
        let n = match c.sense {
            Some(r) => {
                let d = self
                    .lus
                    .get(usize::from(c.lu))
                    .is_some_and(|lu| lu.mode.d_sense);
                r.sense_data().encode(d, &mut sense)
            }
            None => 0,
        };
        self.queue_response(i, t, &sense[..n])
    }

    /// Queue the status with `sense` (and the final data, if any).
    #[inline(always)]
    fn queue_response<T: Transport>(&mut self, i: usize, t: &mut T, sense: &[u8]) -> Step {
        let c = &self.cmds[i];
        let status = Status {
            status: c.status,
            sense,
            residual: residual(c),
        };
        let r = self.cmd_ref(i);
        let with_data = c.data_with_status && !c.segs.is_empty();
        let res = if with_data {
            let data = Data {
                offset: c.seg_offset as u32,
                segs: c.segs.as_slice(),
            };
            t.queue_data_in(r, &data, Some(&status))
        } else {
            t.queue_status(r, &status)
        };
        match res {
            Ok(()) => {
                if with_data {
                    self.stats.data_in_bytes += self.cmds[i].segs.total_len();
                }
                let c = &mut self.cmds[i];
                c.state = CmdState::ResponseSent;
                c.waiting_since = self.now;
                if c.in_task_set {
                    self.leave_task_set(i);
                }
                Step::Park
            }
            Err(_) => Step::Retry,
        }
    }

    /// [`Self::step_respond`] of a command that ends GOOD, without sense,
    /// with its final data in `segs` (the express READ's one mapped round):
    /// the one `queue_data_in` with the status that `queue_response` makes
    /// for it, with the slot borrowed once across the call. The command is
    /// not in the task set (the express path enters it only on its other
    /// ways out).
    #[inline(always)]
    pub(crate) fn express_respond<T: Transport>(&mut self, i: usize, t: &mut T) -> Step {
        let now = self.now;
        let c = &mut self.cmds[i];
        debug_assert!(
            c.status == ScsiStatus::Good
                && c.sense.is_none()
                && c.data_with_status
                && !c.segs.is_empty()
                && !c.in_task_set
        );
        let status = Status {
            status: ScsiStatus::Good,
            sense: &[],
            residual: residual(c),
        };
        let r = crate::transport::CmdRef {
            handle: crate::ids::CmdHandle::new(i as u16, c.generation),
            session: crate::ids::SessionHandle::new(c.session, c.session_gen),
            tag: c.tag,
        };
        let data = Data {
            offset: c.seg_offset as u32,
            segs: c.segs.as_slice(),
        };
        // Counted from the list at hand (the transport call cannot change it).
        let bytes = c.segs.total_len();
        match t.queue_data_in(r, &data, Some(&status)) {
            Ok(()) => {
                self.stats.data_in_bytes += bytes;
                c.state = CmdState::ResponseSent;
                c.waiting_since = now;
                Step::Park
            }
            Err(_) => Step::Retry,
        }
    }

    /// QErr and ACA (SAM-5 5.9, SPC-5 control mode page) on a CHECK CONDITION.
    fn on_check_condition(&mut self, i: usize) {
        let c = &self.cmds[i];
        let (s, l, naca) = (usize::from(c.session), usize::from(c.lu), naca(&c.cdb));
        let Some(lu) = self.lus.get_mut(l) else {
            return;
        };
        let (qerr, tas) = (lu.mode.qerr, lu.mode.tas);
        if naca && lu.aca == NIL {
            lu.aca = s as u16;
            self.lu_changed(l);
        }
        if qerr != 0b01 && qerr != 0b11 {
            return;
        }
        for j in 0..self.cmds.len() {
            let o = &self.cmds[j];
            if j == i || o.state == CmdState::Free || usize::from(o.lu) != l || !o.in_task_set {
                continue;
            }
            let same = usize::from(o.session) == s;
            if qerr == 0b11 && !same {
                continue;
            }
            let os = usize::from(o.session);
            self.abort_cmd(j, !same && tas, None);
            if !same && !tas {
                self.set_ua(os, l, crate::sense::UnitAttention::CommandsCleared);
            }
        }
    }

    // ------------------------------------------------------------ helpers

    /// End with `status` and no sense.
    pub(crate) fn finish(&mut self, i: usize, status: ScsiStatus) -> Step {
        let c = &mut self.cmds[i];
        c.status = status;
        c.sense = None;
        c.state = CmdState::Respond;
        Step::Continue
    }

    /// End with GOOD (and the data set up, if any).
    pub(crate) fn good(&mut self, i: usize) -> Step {
        self.finish(i, ScsiStatus::Good)
    }

    /// End with CHECK CONDITION and `reason`.
    pub(crate) fn fail(&mut self, i: usize, reason: SenseReason) -> Step {
        debug!("command {} failed: {}", i as u32, reason);
        let c = &mut self.cmds[i];
        c.status = ScsiStatus::CheckCondition;
        c.sense = Some(reason);
        c.data_with_status = false;
        c.segs.clear();
        c.state = CmdState::Respond;
        Step::Continue
    }

    /// Make sure the command holds a pool buffer of at least `bytes`:
    /// `Ok(false)` parks it until chunks are free.
    pub(crate) fn ensure_buf(&mut self, i: usize, bytes: u64) -> Result<bool, SenseReason> {
        if let Some(b) = self.cmds[i].buf {
            if self.pool.len(b) as u64 >= bytes {
                return Ok(true);
            }
            self.pool.release(b);
            self.cmds[i].buf = None;
        }
        if bytes > self.pool.capacity() {
            return Err(SenseReason::InsufficientResources);
        }
        match self.pool.alloc(bytes) {
            Some(b) => {
                self.cmds[i].buf = Some(b);
                Ok(true)
            }
            None => {
                self.cmds[i].state = CmdState::WaitBuffers;
                self.waiting_buffers = true;
                Ok(false)
            }
        }
    }

    /// Point `segs` at bytes `at .. at + len` of the command's buffer.
    pub(crate) fn buf_segs(&mut self, i: usize, at: usize, len: usize) {
        let c = &mut self.cmds[i];
        c.segs.clear();
        if let Some(b) = c.buf
            && len > 0
        {
            let _ = c.segs.push(self.pool.seg(b, at, len));
        }
    }

    /// Request Data-Out into `segs`, at relative offset `offset`; the handler
    /// continues at `next` once it has landed.
    pub(crate) fn request_out<T: Transport>(
        &mut self,
        i: usize,
        t: &mut T,
        offset: u64,
        next: u8,
    ) -> Step {
        let len = self.cmds[i].segs.total_len();
        if len == 0 {
            self.cmds[i].stage = next;
            return Step::Continue;
        }
        let r = self.cmd_ref(i);
        let c = &self.cmds[i];
        let data = Data {
            offset: offset as u32,
            segs: c.segs.as_slice(),
        };
        match t.request_data_out(r, &data) {
            Ok(()) => {
                self.stats.data_out_bytes += len;
                let c = &mut self.cmds[i];
                c.stage = next;
                c.state = CmdState::DataOut;
                c.waiting_since = self.now;
                Step::Park
            }
            Err(_) => Step::Retry,
        }
    }

    /// Send `segs` as Data-In without status (a round of a longer transfer).
    pub(crate) fn send_in<T: Transport>(&mut self, i: usize, t: &mut T, next: u8) -> Step {
        let r = self.cmd_ref(i);
        let c = &self.cmds[i];
        let data = Data {
            offset: c.seg_offset as u32,
            segs: c.segs.as_slice(),
        };
        match t.queue_data_in(r, &data, None) {
            Ok(()) => {
                self.stats.data_in_bytes += self.cmds[i].segs.total_len();
                let c = &mut self.cmds[i];
                c.stage = next;
                c.state = CmdState::DataIn;
                c.waiting_since = self.now;
                Step::Park
            }
            Err(_) => Step::Retry,
        }
    }

    /// Submit a backend I/O for the command's LU; `buf` is `(offset, len)`
    /// within the command's buffer. The handler continues at `next` with the
    /// result in `io_result`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn submit_io<B: Backend>(
        &mut self,
        i: usize,
        b: &mut B,
        kind: IoKind,
        lba: u64,
        blocks: u64,
        buf: Option<(usize, usize)>,
        next: u8,
    ) -> Step {
        let l = usize::from(self.cmds[i].lu);
        self.submit_io_on(i, b, l, kind, lba, blocks, buf, next)
    }

    /// [`Self::submit_io`] on LU `l` (EXTENDED COPY reads and writes LUs
    /// other than the one it was addressed to).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn submit_io_on<B: Backend>(
        &mut self,
        i: usize,
        b: &mut B,
        l: usize,
        kind: IoKind,
        lba: u64,
        blocks: u64,
        buf: Option<(usize, usize)>,
        next: u8,
    ) -> Step {
        let c = &self.cmds[i];
        let Some(lu) = self.lus.get(l) else {
            return self.fail(i, SenseReason::InternalTargetFailure);
        };
        let io_buf = match (buf, c.buf) {
            (Some((at, len)), Some(pb)) => Some(self.pool.io_buf(pb, at, len)),
            (Some(_), None) => return self.fail(i, SenseReason::InternalTargetFailure),
            (None, _) => None,
        };
        let io = crate::backend::Io {
            token: self.io_token(i),
            lun: lu.cfg.backend,
            kind,
            lba,
            blocks,
            block_size: lu.cfg.block_size,
            fua: c.flags.fua,
            buf: io_buf,
        };
        match b.submit(&io) {
            Ok(Submitted::Done(r)) => {
                let c = &mut self.cmds[i];
                c.io_result = Some(r);
                c.stage = next;
                Step::Continue
            }
            Ok(Submitted::Queued) => {
                self.backend_queued += 1;
                let c = &mut self.cmds[i];
                c.io_result = None;
                c.stage = next;
                c.state = CmdState::Backend;
                Step::Park
            }
            Err(_) => Step::Retry,
        }
    }

    /// Take the result of the last backend I/O.
    pub(crate) fn take_io_result(&mut self, i: usize, reading: bool) -> Result<(), SenseReason> {
        match self.cmds[i].io_result.take() {
            Some(Err(e)) => Err(io_sense(e, reading)),
            _ => Ok(()),
        }
    }

    /// Answer with an emulated payload: `generate` runs once to measure it
    /// and once to write it, truncated to `alloc` and the expected length.
    pub(crate) fn respond_payload(
        &mut self,
        i: usize,
        alloc: u64,
        generate: impl Fn(&Self, usize, &mut Payload<'_>) -> Result<(), SenseReason>,
    ) -> Step {
        let mut count = Payload::counter();
        check!(self, i, generate(self, i, &mut count));
        let intended = (count.pos() as u64).min(alloc);
        let xfer = intended.min(self.cmds[i].expected(DataDirection::In));
        self.cmds[i].intended = intended;
        if xfer > 0 {
            need_buf!(self, i, xfer);
            let Some(b) = self.cmds[i].buf else {
                return self.fail(i, SenseReason::InternalTargetFailure);
            };
            let mut p = Payload::new(self.pool.memory(), self.pool.offset(b), xfer as usize);
            check!(self, i, generate(self, i, &mut p));
            self.buf_segs(i, 0, xfer as usize);
            let c = &mut self.cmds[i];
            c.seg_offset = 0;
            c.data_with_status = true;
            c.done = xfer;
        }
        self.good(i)
    }

    /// Receive a parameter list of `len` bytes (the CDB's PARAMETER LIST
    /// LENGTH) into the command's buffer. Returns the bytes received once
    /// they are there, or the step to return while waiting.
    /// The buffer is `room` bytes (at least `len`), so a handler can keep
    /// more data after the parameters.
    pub(crate) fn receive_params<T: Transport>(
        &mut self,
        i: usize,
        t: &mut T,
        len: u64,
        room: u64,
    ) -> Result<usize, Step> {
        let c = &self.cmds[i];
        match c.stage {
            0 => {
                let exact = c.op.is_some_and(|o| o.has(EXACT_OUT));
                let expected = c.expected(DataDirection::Out);
                self.cmds[i].intended = len;
                if exact && expected != len {
                    return Err(self.fail(i, SenseReason::InvalidFieldInInformationUnit));
                }
                let n = len.min(expected);
                if room.max(n) > 0 {
                    match self.ensure_buf(i, room.max(n)) {
                        Ok(true) => {}
                        Ok(false) => return Err(Step::Park),
                        Err(r) => return Err(self.fail(i, r)),
                    }
                }
                if n == 0 {
                    let c = &mut self.cmds[i];
                    c.stage = 2;
                    c.done = 0;
                    return Ok(0);
                }
                self.buf_segs(i, 0, n as usize);
                Err(self.request_out(i, t, 0, 1))
            }
            1 => {
                let n = self.cmds[i].segs.total_len();
                let c = &mut self.cmds[i];
                c.done = n;
                c.stage = 2;
                Ok(n as usize)
            }
            _ => Ok(self.cmds[i].done as usize),
        }
    }

    /// Copy parameter data out of the command's buffer.
    pub(crate) fn read_params(
        &self,
        i: usize,
        at: usize,
        out: &mut [u8],
    ) -> Result<(), SenseReason> {
        let b = self.cmds[i]
            .buf
            .ok_or(SenseReason::ParameterListLengthError)?;
        self.pool
            .read(b, at, out)
            .map_err(|_| SenseReason::ParameterListLengthError)
    }

    /// Whether a command other than `i` on LU `l` uses blocks overlapping
    /// `lba .. lba + blocks`: with `media` set, one whose media access is
    /// active; with `locks` set, an older interlocking (atomic) one.
    fn overlap(&self, i: usize, l: u16, lba: u64, blocks: u64, media: bool, locks: bool) -> bool {
        let me = &self.cmds[i];
        let end = lba.saturating_add(blocks.max(1));
        self.cmds.iter().enumerate().any(|(j, o)| {
            j != i
                && o.state != CmdState::Free
                && o.range_lu() == l
                && ((media && o.media_active) || (locks && o.locks_range && o.seq < me.seq))
                && o.lba < end
                && lba < o.lba.saturating_add(o.count.max(1))
        })
    }

    /// A regular media command is about to touch `lba .. lba + blocks`:
    /// false (and parked) while an interlocking command holds or awaits
    /// an overlapping range.
    #[inline]
    pub(crate) fn begin_media(&mut self, i: usize, lba: u64, blocks: u64) -> bool {
        let c = &mut self.cmds[i];
        if c.media_active {
            return true;
        }
        let l = c.range_lu();
        if self.lus.get(usize::from(l)).is_none_or(|lu| lu.atomic == 0) {
            // No interlocking command on the LU: nothing to overlap with.
            self.cmds[i].media_active = true;
            return true;
        }
        self.begin_media_interlocked(i, l, lba, blocks)
    }

    /// [`Self::begin_media`] while interlocking commands hold ranges of LU `l`.
    #[inline(never)]
    fn begin_media_interlocked(&mut self, i: usize, l: u16, lba: u64, blocks: u64) -> bool {
        let busy = self.cmds.iter().enumerate().any(|(j, o)| {
            j != i
                && o.locks_range
                && o.range_lu() == l
                && o.lba < lba.saturating_add(blocks.max(1))
                && lba < o.lba.saturating_add(o.count.max(1))
        });
        if busy {
            self.cmds[i].state = CmdState::WaitOverlap;
            self.waiting_overlap = true;
            return false;
        }
        self.cmds[i].media_active = true;
        true
    }

    /// [`Self::begin_media`] for blocks `lba .. lba + blocks` of LU `l`
    /// (EXTENDED COPY's current destination chunk).
    pub(crate) fn begin_media_on(&mut self, i: usize, l: usize, lba: u64, blocks: u64) -> bool {
        let c = &mut self.cmds[i];
        c.media_lu = l as u16;
        c.lba = lba;
        c.count = blocks;
        self.begin_media(i, lba, blocks)
    }

    /// An interlocking command (COMPARE AND WRITE, WRITE ATOMIC, ORWRITE)
    /// takes its range `cmd.lba .. + cmd.count`: false (and parked) until no
    /// overlapping media access or older interlock remains.
    pub(crate) fn lock_range(&mut self, i: usize) -> bool {
        let (l, lba, blocks) = (self.cmds[i].lu, self.cmds[i].lba, self.cmds[i].count);
        if !self.cmds[i].locks_range {
            self.cmds[i].locks_range = true;
            if let Some(lu) = self.lus.get_mut(usize::from(l)) {
                lu.atomic += 1;
            }
        }
        if self.overlap(i, l, lba, blocks, true, true) {
            self.cmds[i].state = CmdState::WaitOverlap;
            self.waiting_overlap = true;
            return false;
        }
        self.cmds[i].media_active = true;
        true
    }
}

/// NACA of the CONTROL byte, wherever the CDB length puts it: the length of
/// the operation's row, else the one its group code gives. Read only on a
/// CHECK CONDITION (to establish ACA), so not parsed for every command.
#[cold]
#[inline(never)]
fn naca(cdb: &[u8; 16]) -> bool {
    let len = match cdb::lookup(cdb) {
        Ok(op) => usize::from(op.cdb_len),
        Err(_) => match cdb[0] >> 5 {
            0 => 6,
            1 | 2 => 10,
            4 => 16,
            5 => 12,
            _ => 16,
        },
    };
    cdb.get(len.wrapping_sub(1)).is_some_and(|b| b & 0x04 != 0)
}

/// The residual of a command (SPC-5 4.2.4; FCP-4 9.4.3): what it meant to
/// move in its direction against what the initiator expected.
#[inline(always)]
fn residual(c: &super::Cmd) -> Residual {
    let dir = c.op.map_or(DataDirection::None, |o| o.dir);
    let expected = if dir == DataDirection::None {
        u64::from(c.expected_len)
    } else {
        c.expected(dir)
    };
    let clamp = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    if c.intended > expected {
        Residual::Over(clamp(c.intended - expected))
    } else if expected > c.done {
        Residual::Under(clamp(expected - c.done))
    } else {
        Residual::None
    }
}
