//! Commands: ATIO7 → core, the core's requests → CTIO7s, CTIO7 completions
//! → core, and the deferred-work list that delivers completions and posts
//! terminates.
//!
//! Reference §7.6, §9.1–9.6, §9.10, §9.11. Every exchange the driver receives
//! is closed by it: by a SEND_STATUS CTIO7 that completes successfully, or by a
//! TERMINATE (or, after an ABTS, by BA_ACC), except after a chip reset, which
//! voids them all. After a CTIO7 fails, the firmware keeps the exchange open, and
//! the driver follows Linux (§7.6): it terminates the exchange unless a
//! terminate was already posted — except after a failed DATA_OUT CTIO7 with a
//! code that is not "always terminate", which goes to the core first (the core
//! then aborts the command, and the abort terminates). After a terminate nothing
//! more is sent for the exchange. A CTIO7 that is never completed (deadline
//! `completion_timeout`) is treated the same way, as SCST does for a command
//! pending in the hardware too long: its exchange is terminated. Every
//! operation the core asks for is completed towards it exactly once: by its
//! CTIO7 completion, by a chip reset (`Err(Aborted)`), or, once the core aborted
//! the command, by `abort_done` — and not before a terminate posted for the
//! exchange completed, so no transfer touches the command's buffers afterwards.

use rscst_core::{
    Busy, CmdHandle, CmdRef, CommandRequest, Data, DataDirection, Lun, Rejected, ScsiStatus,
    Status, TaskAttr, TaskTag, TmfFunction, TmfRequest, TransferError,
};
use rscst_fw::fc::fcp::{DataDir, RspCode, TaskAttr as FcpTaskAttr, TmFlags, TmFunction};
use rscst_fw::iocb::{
    Atio7, Atio7CmdRepr, Ctio7, Ctio7CompletionRepr, Ctio7Flags, Ctio7Repr, CtioStatus, Dsd64,
    EntryType,
};
use rscst_hba::Platform;

use super::{CmdSlot, Deliver, Exchange, Isp, Op, Owner, Peer, TmfKind, TmfSlot};
use crate::core_api::CoreApi;
use crate::event::Event;
use crate::handle::{HandleMiss, IocbHandle, SKIP_HANDLE};
use crate::iocb::{self, Pieces};
use crate::ring::Entry;

/// ILLEGAL REQUEST / INVALID FIELD IN CDB, fixed format (bidirectional
/// commands, which FCP allows and the core does not).
const SENSE_INVALID_FIELD_IN_CDB: [u8; 18] = [
    0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x24, 0, 0, 0, 0, 0,
];

fn ctio_error(status: CtioStatus) -> TransferError {
    match status {
        CtioStatus::Aborted
        | CtioStatus::LipReset
        | CtioStatus::TargetReset
        | CtioStatus::PortUnavailable
        | CtioStatus::PortLoggedOut
        | CtioStatus::PortConfChanged
        | CtioStatus::InvalidRxId => TransferError::Aborted,
        _ => TransferError::Failed,
    }
}

/// Whether a failed CTIO7 makes the driver terminate its exchange now (reference
/// §7.6): yes unless it was a DATA_OUT one with a code outside the "always
/// terminate" list — that failure goes to the core first.
pub(crate) fn terminate_after(status: CtioStatus, flags: Ctio7Flags) -> bool {
    status.always_terminate() || !flags.contains(Ctio7Flags::DATA_OUT)
}

fn task_attr(a: FcpTaskAttr) -> TaskAttr {
    match a {
        FcpTaskAttr::HeadOfQueue => TaskAttr::HeadOfQueue,
        FcpTaskAttr::Ordered => TaskAttr::Ordered,
        FcpTaskAttr::Aca => TaskAttr::Aca,
        _ => TaskAttr::Simple,
    }
}

pub(crate) fn rsp_code(c: rscst_core::TmfResponseCode) -> RspCode {
    use rscst_core::TmfResponseCode::*;
    match c {
        FunctionComplete => RspCode::Complete,
        FunctionSucceeded => RspCode::Unknown(8),
        FunctionRejected => RspCode::TmfRejected,
        IncorrectLun => RspCode::TmfIncorrectLun,
        ServiceDeliveryFailure => RspCode::TmfFailed,
    }
}

impl<'s, P: Platform, const REQ: usize, const RSP: usize, const ATIO: usize>
    Isp<'s, P, REQ, RSP, ATIO>
{
    // ---------------------------------------------------------------- posting

    /// Post one driver-generated entry that carries a tracked handle.
    /// `false` if the ring is full (the caller retries).
    pub(crate) fn post_internal(&mut self, e: &Entry) -> bool {
        self.post(core::slice::from_ref(e), 0)
    }

    /// Post one driver-generated entry with a skip handle (BUSY, terminate,
    /// TMF reject, BA_RJT): if the ring is full it waits in the deferred
    /// queue and goes out first at the next poll. `false` only if even that
    /// queue is full (counted; it is sized far above what a ring stall
    /// produces between two polls).
    pub(crate) fn post_or_defer(&mut self, e: &Entry) -> bool {
        if self.deferred_len == 0 && self.post_internal(e) {
            return true;
        }
        match self.deferred.get_mut(self.deferred_len) {
            Some(slot) => {
                *slot = *e;
                self.deferred_len += 1;
                true
            }
            None => {
                self.stats.deferred_dropped += 1;
                false
            }
        }
    }

    /// Post what waits in the deferred queue, in order, while it fits.
    #[inline]
    pub(crate) fn flush_deferred(&mut self) -> bool {
        self.deferred_len > 0 && self.flush_deferred_entries()
    }

    #[cold]
    #[inline(never)]
    fn flush_deferred_entries(&mut self) -> bool {
        let mut n = 0;
        while n < self.deferred_len {
            let e = self.deferred[n];
            if !self.post_internal(&e) {
                break;
            }
            n += 1;
        }
        if n > 0 {
            self.deferred.copy_within(n..self.deferred_len, 0);
            self.deferred_len -= n;
        }
        n > 0
    }

    fn post_busy(&mut self, x: &Exchange, status: ScsiStatus) -> bool {
        let c = Ctio7Repr::busy(&iocb::ctio_exchange(x), status.code(), x.fcp_dl);
        self.post_answer(x, c)
    }

    /// Post a status CTIO7 the driver answers an exchange with on its own
    /// (BUSY, TASK SET FULL, a status-only error, a rejected TMF; §9.10). It
    /// carries a tracked handle and asks for its completion (no
    /// DONT_RET_CTIO), so that if it fails the exchange is terminated like any
    /// other (the firmware keeps it open otherwise). An exchange the firmware
    /// never had (0xFFFFFFFF), or no free handle, goes with the skip handle as
    /// in Linux. Deferred if the ring is full.
    fn post_answer(&mut self, x: &Exchange, mut c: Ctio7Repr) -> bool {
        c.timeout = self.config.ctio_timeout_secs;
        let deadline = self.completion_deadline();
        let h = if rscst_fw::ExchangeAddr(x.addr).is_unknown() {
            None
        } else {
            self.handles
                .alloc(Owner::Answer { peer: Peer::of(x) }, x.addr, deadline)
        };
        match h {
            Some(h) => {
                c.handle = h.0;
                c.flags.remove(Ctio7Flags::DONT_RET_CTIO);
            }
            None => {
                c.handle = SKIP_HANDLE;
                c.flags.insert(Ctio7Flags::DONT_RET_CTIO);
            }
        }
        let ok = self.post_or_defer(&iocb::emit_ctio(&c));
        if ok {
            self.stats.ctios += 1;
        } else if let Some(h) = h {
            let _ = self.handles.free(h);
        }
        ok
    }

    /// TERMINATE the exchange (reference §9.11) with `handle`.
    pub(crate) fn post_terminate(&mut self, x: &Exchange, handle: u32) -> bool {
        let mut c = Ctio7Repr::terminate(&iocb::ctio_exchange(x));
        c.handle = handle;
        c.timeout = self.config.ctio_timeout_secs;
        let e = iocb::emit_ctio(&c);
        let ok = if handle == SKIP_HANDLE {
            self.post_or_defer(&e)
        } else {
            self.post_internal(&e)
        };
        if ok {
            self.stats.terminates += 1;
            self.stats.ctios += 1;
        }
        ok
    }

    #[inline]
    fn completion_deadline(&self) -> rscst_core::Instant {
        // `now.saturating_add(config.completion_timeout)`, the duration
        // converted once at probe.
        rscst_core::Instant::from_nanos(self.now.as_nanos().saturating_add(self.completion_nanos))
    }

    // ---------------------------------------------------------------- ATIO7

    /// An ATIO7 (reference §9.1).
    pub(crate) fn atio7<C: CoreApi>(&mut self, core: &mut C, bytes: &[u8]) {
        let a = match Atio7CmdRepr::parse_bytes(bytes) {
            Ok(a) => a,
            Err(_) => {
                self.corrupt_atio7(bytes);
                return;
            }
        };
        let sess = self.session_by_sid(a.s_id);
        let mut x = Exchange {
            addr: a.exchange_addr.0,
            nport: sess.map_or(0xFFFF, |i| self.sessions[i].nport),
            s_id: a.s_id,
            ox_id: a.ox_id.0,
            attr: a.attr,
            vp: 0,
            fcp_dl: a.data_len,
        };
        if a.exchange_addr.is_unknown() {
            // The firmware had no exchange for it (gotcha 6).
            self.stats.busy += 1;
            if !self.exhausted {
                // One event per episode, not one per command.
                self.exhausted = true;
                self.event(Event::ExchangesExhausted);
            }
            self.post_busy(&x, ScsiStatus::Busy);
            return;
        }
        self.exhausted = false;
        let Some(si) = sess else {
            self.stats.unknown_session += 1;
            if a.s_id.is_well_known() {
                self.post_busy(&x, ScsiStatus::TaskSetFull);
            } else {
                self.post_terminate(&x, SKIP_HANDLE);
            }
            return;
        };
        let session = &mut self.sessions[si];
        // Traffic proves the login is alive after a link bounce.
        session.lost_deadline = None;
        x.vp = session.vp;
        let Some(core_session) = session.core else {
            self.stats.unknown_session += 1;
            self.post_terminate(&x, SKIP_HANDLE);
            return;
        };
        let lun = Lun::from_bytes(a.lun.0);
        if !a.tmf.is_empty() {
            self.fcp_tmf(core, a.tmf, x, si as u16, core_session, lun);
            return;
        }
        if self.live_cmds >= self.busy_threshold {
            self.stats.busy += 1;
            self.post_busy(&x, ScsiStatus::Busy);
            return;
        }
        let dir = match a.dir {
            DataDir::None => DataDirection::None,
            DataDir::DataIn => DataDirection::In,
            DataDir::DataOut => DataDirection::Out,
            DataDir::Bidirectional => {
                self.post_status_only(&x, ScsiStatus::CheckCondition, &SENSE_INVALID_FIELD_IN_CDB);
                return;
            }
        };
        let req = CommandRequest {
            session: core_session,
            tag: TaskTag(x.addr as u64),
            lun,
            attr: task_attr(a.task_attr),
            priority: a.priority,
            crn: a.crn,
            cdb: a.cdb,
            expected_len: a.data_len,
            dir,
        };
        // The express path: the core runs it now if nothing is ahead of it
        // and its checks would pass (else its poll does), once the driver's
        // slot for it is filled.
        let now = self.now;
        let accepted = |isp: &mut Self, h: CmdHandle| {
            isp.stats.commands += 1;
            isp.new_cmd(h, x, si as u16, lun);
        };
        match core.submit_now(&req, now, self, accepted) {
            Ok(_) => {}
            Err(rej) => {
                self.stats.core_rejected += 1;
                let st = match rej {
                    Rejected::TaskSetFull => ScsiStatus::TaskSetFull,
                    _ => ScsiStatus::Busy,
                };
                self.post_busy(&x, st);
            }
        }
    }

    /// An ATIO7 that does not parse (Linux: FCP_CMND length < 0x38): its
    /// exchange, if it has one, is terminated.
    #[cold]
    #[inline(never)]
    fn corrupt_atio7(&mut self, bytes: &[u8]) {
        let Ok(xa) = Atio7::new_checked(bytes).map(|a| a.exchange_addr()) else {
            return;
        };
        if xa.is_unknown() {
            return;
        }
        let s_id = rscst_fw::PortId::from_be_bytes([bytes[0x0D], bytes[0x0E], bytes[0x0F]]);
        let x = Exchange {
            addr: xa.0,
            nport: 0xFFFF,
            s_id,
            ox_id: u16::from_be_bytes([bytes[0x18], bytes[0x19]]),
            attr: (bytes[3] >> 4) & 0xF,
            vp: 0,
            fcp_dl: 0,
        };
        self.post_terminate(&x, SKIP_HANDLE);
        self.event(Event::CorruptAtio(xa));
    }

    /// A status the driver sends on its own (the core never sees the command).
    fn post_status_only(&mut self, x: &Exchange, st: ScsiStatus, sense: &[u8]) {
        let res = if x.fcp_dl != 0 {
            rscst_fw::fc::fcp::Residual::Under(x.fcp_dl)
        } else {
            rscst_fw::fc::fcp::Residual::None
        };
        if let Ok(c) =
            Ctio7Repr::status(&iocb::ctio_exchange(x), SKIP_HANDLE, st.code(), res, sense)
        {
            self.post_answer(x, c);
        }
    }

    #[inline]
    fn new_cmd(&mut self, h: CmdHandle, x: Exchange, session: u16, lun: Lun) {
        let Some(slot) = self.cmds.get_mut(h.index()) else {
            // The core's pool is larger than the driver's table: refused at
            // the first poll, so this cannot happen; keep the exchange closed.
            self.post_terminate(&x, SKIP_HANDLE);
            return;
        };
        if !slot.live {
            self.live_cmds += 1;
        }
        *slot = CmdSlot {
            live: true,
            handle: h,
            x,
            session,
            lun,
            ..CmdSlot::EMPTY
        };
    }

    /// FCP_CMND with task management flags (reference §9.5).
    fn fcp_tmf<C: CoreApi>(
        &mut self,
        core: &mut C,
        tmf: TmFlags,
        x: Exchange,
        session: u16,
        core_session: rscst_core::SessionHandle,
        lun: Lun,
    ) {
        let function = match tmf.function() {
            Some(TmFunction::AbortTaskSet) => TmfFunction::AbortTaskSet,
            Some(TmFunction::ClearTaskSet) => TmfFunction::ClearTaskSet,
            Some(TmFunction::LunReset) => TmfFunction::LogicalUnitReset,
            Some(TmFunction::TargetReset) => TmfFunction::TargetReset,
            Some(TmFunction::ClearAca) => TmfFunction::ClearAca,
            None => {
                // More than one bit, or an unknown one (gotcha 9).
                self.post_tm_answer(&x, RspCode::TmfRejected);
                return;
            }
        };
        let req = TmfRequest {
            session: core_session,
            tag: TaskTag(x.addr as u64),
            lun,
            function,
        };
        match core.submit_tmf(&req) {
            Ok(h) => {
                self.stats.tmfs += 1;
                self.new_tmf(h, TmfKind::Fcp, x);
                let _ = session;
            }
            Err(_) => {
                self.post_tm_answer(&x, RspCode::TmfFailed);
            }
        }
    }

    pub(crate) fn new_tmf(&mut self, h: rscst_core::TmfHandle, kind: TmfKind, x: Exchange) {
        if let Some(slot) = self.tmfs.get_mut(h.index()) {
            *slot = TmfSlot {
                live: true,
                handle: h,
                epoch: self.epoch,
                kind,
                x,
                ..TmfSlot::EMPTY
            };
        }
    }

    /// A TMF the driver answers itself (rejected, or the core had no slot).
    fn post_tm_answer(&mut self, x: &Exchange, code: RspCode) -> bool {
        let c = Ctio7Repr::tm_response(&iocb::ctio_exchange(x), code);
        self.post_answer(x, c)
    }

    // ---------------------------------------------------------------- transport side

    /// The slot of a core command; a command the driver does not know (it
    /// cannot happen unless the two disagree) gets a void slot so the core
    /// still hears back.
    fn cmd_index(&mut self, cmd: &CmdRef) -> Option<usize> {
        let i = cmd.handle.index();
        let slot = self.cmds.get_mut(i)?;
        if !slot.live || slot.handle != cmd.handle {
            if !slot.live {
                self.live_cmds += 1;
            }
            *slot = CmdSlot {
                live: true,
                handle: cmd.handle,
                void: true,
                ..CmdSlot::EMPTY
            };
        }
        Some(i)
    }

    /// Complete the core's request `op` at once with an error (void or closed exchange).
    fn fail_op(&mut self, i: usize, op: Op) {
        let d = match op {
            Op::DataOut => Deliver::DataOut(Err(TransferError::Aborted)),
            Op::DataIn { with_status: false } => Deliver::DataIn(Err(TransferError::Aborted)),
            _ => Deliver::Response(Err(TransferError::Aborted)),
        };
        self.cmds[i].deliver = d;
        self.cmd_pending.push(self.cmds, i as u16);
    }

    /// [`Self::post_transfer`] of Data-In without status: compiled with the
    /// direction known.
    #[inline(never)]
    fn post_data_in(&mut self, i: usize, data: &Data<'_>) -> Result<(), Busy> {
        self.post_transfer(i, DataDir::DataIn, data, None)
    }

    /// [`Self::post_transfer`] of Data-In with the status (or of a status
    /// alone): compiled with the direction and the status's presence known.
    #[inline(never)]
    fn post_data_in_status(
        &mut self,
        i: usize,
        data: &Data<'_>,
        status: &Status<'_>,
    ) -> Result<(), Busy> {
        self.post_transfer(i, DataDir::DataIn, data, Some(status))
    }

    /// [`Self::post_transfer`] of Data-Out, compiled with the direction known.
    #[inline(never)]
    fn post_data_out(&mut self, i: usize, data: &Data<'_>) -> Result<(), Busy> {
        self.post_transfer(i, DataDir::DataOut, data, None)
    }

    /// Post the CTIO7s of a data transfer (and the status CTIO7 when
    /// `status` is given and cannot ride on the last data CTIO7). Called
    /// through [`Self::post_data_in`], [`Self::post_data_in_status`] and
    /// [`Self::post_data_out`], one copy per direction and status.
    #[inline(always)]
    fn post_transfer(
        &mut self,
        i: usize,
        dir: DataDir,
        data: &Data<'_>,
        status: Option<&Status<'_>>,
    ) -> Result<(), Busy> {
        // The usual case: one segment that fits one CTIO7, and no status or
        // one that rides on it (GOOD, no sense, no residual, §9.2).
        let good = status.is_none_or(|s| {
            s.status == ScsiStatus::Good
                && s.sense.is_empty()
                && s.residual == rscst_core::Residual::None
        });
        if good && let Some(dsd) = iocb::single_dsd(data.segs, self.config.max_ctio_bytes) {
            return self.post_one_ctio(i, dir, data.offset, dsd, status.is_some());
        }
        self.post_transfer_cut(i, dir, data, status)
    }

    /// Room in the request ring for `needed` CTIO7s (and the internal
    /// reserve) and a final handle for a CTIO7 of command `i`: its exchange
    /// and the handle, or `Busy` (counted) when either is short.
    #[inline(always)]
    fn reserve_ctio(&mut self, i: usize, needed: usize) -> Result<(Exchange, IocbHandle), Busy> {
        let h = self.reserve_ctio_handle(i, needed)?;
        Ok((self.cmds[i].x, h))
    }

    /// [`Self::reserve_ctio`] without the copy of the exchange (the one-CTIO7
    /// path reads it where it lies in the slot).
    #[inline(always)]
    fn reserve_ctio_handle(&mut self, i: usize, needed: usize) -> Result<IocbHandle, Busy> {
        {
            let hw = super::hw::ReqHw::new(&self.platform, self.map, &self.dma.req);
            if !self.req.reserve(&hw, needed, self.config.internal_reserve) {
                self.stats.ring_full += 1;
                return Err(Busy);
            }
        }
        let deadline = self.completion_deadline();
        let addr = self.cmds[i].x.addr;
        let Some(h) = self
            .handles
            .alloc(Owner::Ctio { cmd: i as u16 }, addr, deadline)
        else {
            self.stats.handles_exhausted += 1;
            return Err(Busy);
        };
        Ok(h)
    }

    /// [`Self::post_transfer`] of one data CTIO7 carrying the final handle
    /// (and the status, with `send_status`): what the general path does for
    /// one piece without a separate status CTIO7.
    #[inline(always)]
    fn post_one_ctio(
        &mut self,
        i: usize,
        dir: DataDir,
        offset: u32,
        dsd: Dsd64,
        send_status: bool,
    ) -> Result<(), Busy> {
        {
            let hw = super::hw::ReqHw::new(&self.platform, self.map, &self.dma.req);
            if !self.req.reserve(&hw, 1, self.config.internal_reserve) {
                self.stats.ring_full += 1;
                return Err(Busy);
            }
        }
        let deadline = self.completion_deadline();
        // The slot looked up once, for the handle, its own fields and the
        // entry (the ring write below is a call).
        let slot = &mut self.cmds[i];
        let Some(h) = self
            .handles
            .alloc(Owner::Ctio { cmd: i as u16 }, slot.x.addr, deadline)
        else {
            self.stats.handles_exhausted += 1;
            return Err(Busy);
        };
        slot.op = match dir {
            DataDir::DataOut => Op::DataOut,
            _ => Op::DataIn {
                with_status: send_status,
            },
        };
        slot.outstanding = slot.outstanding.saturating_add(1);
        slot.op_error = None;
        if send_status {
            slot.closed = true;
        }
        let flags = if send_status {
            Ctio7Flags::SEND_STATUS
        } else {
            Ctio7Flags::empty()
        };
        let mut e = [0u8; 64];
        iocb::data_ctio_one(
            &slot.x,
            h.0,
            dir,
            offset,
            dsd,
            flags,
            self.config.ctio_timeout_secs,
            &mut e,
        );
        let _ = self.post_reserved(core::slice::from_ref(&e));
        self.stats.ctios += 1;
        let len = u64::from(dsd.length);
        match dir {
            DataDir::DataOut => self.stats.bytes_out += len,
            _ => self.stats.bytes_in += len,
        }
        Ok(())
    }

    /// [`Self::post_transfer`] in general: the transfer cut into CTIO7s
    /// (with continuations), the status on the last one or on its own.
    #[inline(never)]
    fn post_transfer_cut(
        &mut self,
        i: usize,
        dir: DataDir,
        data: &Data<'_>,
        status: Option<&Status<'_>>,
    ) -> Result<(), Busy> {
        let max = self.config.max_ctio_bytes;
        // The common case, one segment that fits one CTIO7, is cut without
        // walking the scatter list.
        let single = iocb::single_dsd(data.segs, max);
        let (data_entries, pieces) = match single {
            Some(_) => (1, 1),
            None => iocb::entries_for(data.segs, data.offset, max),
        };
        let good = status.is_some_and(|s| {
            s.status == ScsiStatus::Good
                && s.sense.is_empty()
                && s.residual == rscst_core::Residual::None
        });
        // GOOD with no residual rides on the last data CTIO7 (§9.2);
        // anything else is a separate mode-1 status CTIO7 (§9.3).
        let separate_status = status.is_some() && (!good || pieces == 0);
        let needed = data_entries + separate_status as usize;
        if needed == 0 {
            // Nothing to move and no status: done at once.
            self.cmds[i].deliver = match dir {
                DataDir::DataOut => Deliver::DataOut(Ok(())),
                _ => Deliver::DataIn(Ok(())),
            };
            self.cmd_pending.push(self.cmds, i as u16);
            return Ok(());
        }
        let (x, h) = self.reserve_ctio(i, needed)?;
        let timeout = self.config.ctio_timeout_secs;
        // The last data CTIO7 carries the final handle (and the status when it
        // rides along); the others are intermediate, returned only on error.
        let handle_flags = |last: bool| {
            if last && !separate_status {
                let f = if status.is_some() {
                    Ctio7Flags::SEND_STATUS
                } else {
                    Ctio7Flags::empty()
                };
                (h.0, f)
            } else {
                (h.intermediate().0, Ctio7Flags::DONT_RET_CTIO)
            }
        };
        let mut len = 0u64;
        if let Some(dsd) = single {
            let (handle, flags) = handle_flags(true);
            let mut e = [0u8; 64];
            iocb::data_ctio_one(&x, handle, dir, data.offset, dsd, flags, timeout, &mut e);
            let _ = self.post_reserved(core::slice::from_ref(&e));
            self.stats.ctios += 1;
            len = u64::from(dsd.length);
        } else {
            let mut out = [[0u8; 64]; 3];
            let mut k = 0;
            for p in Pieces::new(data.segs, data.offset, max) {
                k += 1;
                len += u64::from(p.len);
                let (handle, flags) = handle_flags(k == pieces);
                let n = iocb::data_ctio(&x, handle, dir, &p, data.segs, flags, timeout, &mut out);
                let _ = self.post_reserved(&out[..n]);
                self.stats.ctios += 1;
                self.stats.continuations += n.saturating_sub(1) as u64;
            }
        }
        if separate_status && let Some(s) = status {
            let mut sense = [0u8; 24];
            let n = iocb::fit_sense(s.sense, &mut sense);
            if let Ok(mut c) = Ctio7Repr::status(
                &iocb::ctio_exchange(&x),
                h.0,
                s.status.code(),
                iocb::residual(s.residual),
                &sense[..n],
            ) {
                c.timeout = timeout;
                let _ = self.post_reserved(&[iocb::emit_ctio(&c)]);
                self.stats.ctios += 1;
            }
        }
        match dir {
            DataDir::DataOut => self.stats.bytes_out += len,
            _ => self.stats.bytes_in += len,
        }
        let slot = &mut self.cmds[i];
        slot.op = match (dir, status.is_some()) {
            (DataDir::DataOut, _) => Op::DataOut,
            (_, true) if pieces == 0 => Op::Status,
            (_, ws) => Op::DataIn { with_status: ws },
        };
        slot.outstanding = slot.outstanding.saturating_add(1);
        slot.op_error = None;
        if status.is_some() {
            slot.closed = true;
        }
        Ok(())
    }

    pub(crate) fn t_queue_data_in(
        &mut self,
        cmd: CmdRef,
        data: &Data<'_>,
        status: Option<&Status<'_>>,
    ) -> Result<(), Busy> {
        let Some(i) = self.cmd_index(&cmd) else {
            return Ok(());
        };
        let op = Op::DataIn {
            with_status: status.is_some(),
        };
        if self.cmds[i].void || self.cmds[i].closed || self.cmds[i].aborting {
            self.fail_op(i, op);
            return Ok(());
        }
        match status {
            Some(s) => self.post_data_in_status(i, data, s),
            None => self.post_data_in(i, data),
        }
    }

    pub(crate) fn t_request_data_out(&mut self, cmd: CmdRef, data: &Data<'_>) -> Result<(), Busy> {
        let Some(i) = self.cmd_index(&cmd) else {
            return Ok(());
        };
        if self.cmds[i].void || self.cmds[i].closed || self.cmds[i].aborting {
            self.fail_op(i, Op::DataOut);
            return Ok(());
        }
        self.post_data_out(i, data)
    }

    pub(crate) fn t_queue_status(&mut self, cmd: CmdRef, status: &Status<'_>) -> Result<(), Busy> {
        let Some(i) = self.cmd_index(&cmd) else {
            return Ok(());
        };
        if self.cmds[i].void || self.cmds[i].closed || self.cmds[i].aborting {
            self.fail_op(i, Op::Status);
            return Ok(());
        }
        let data = Data {
            offset: 0,
            segs: &[],
        };
        self.post_data_in_status(i, &data, status)
    }

    pub(crate) fn t_command_aborted(&mut self, cmd: CmdRef) -> Result<(), Busy> {
        let Some(i) = self.cmd_index(&cmd) else {
            return Ok(());
        };
        let slot = &mut self.cmds[i];
        slot.aborting = true;
        if !slot.closed && !slot.void {
            slot.needs_terminate = true;
        }
        self.cmd_pending.push(self.cmds, i as u16);
        Ok(())
    }

    // ---------------------------------------------------------------- completions

    /// A CTIO7 on the response queue (reference §7.6).
    pub(crate) fn ctio_completion<C: CoreApi>(&mut self, core: &mut C, c: &Ctio7CompletionRepr) {
        let h = IocbHandle(c.handle);
        let ok = c.status == CtioStatus::Success && !c.entry_status.fwi2_error();
        let (slot, o) = match self.handles.lookup(h) {
            Ok(x) => x,
            Err(miss) => return self.ctio_unmatched(h, miss, ok, c),
        };
        if o.exchange != c.exchange_addr.0 {
            return self.ctio_exchange_mismatch(h, o.exchange, c);
        }
        if !ok {
            self.ctio_failed(c);
        }
        if h.is_intermediate() {
            // The data half of a pair comes back only on error; its final
            // half completes the operation.
            if let Owner::Ctio { cmd } = o.payload
                && let Some(s) = self.cmds.get_mut(cmd as usize)
                && !ok
            {
                s.op_error.get_or_insert(ctio_error(c.status));
                if !s.terminated && terminate_after(c.status, c.flags) {
                    s.needs_terminate = true;
                }
            }
            return;
        }
        self.handles.release(slot);
        match o.payload {
            Owner::Ctio { cmd } => self.cmd_ctio_done(core, cmd as usize, (!ok).then_some(c)),
            Owner::Terminate { cmd } => {
                if let Some(s) = self.cmds.get_mut(cmd as usize) {
                    s.outstanding = s.outstanding.saturating_sub(1);
                    self.cmd_pending.push(self.cmds, cmd);
                }
            }
            Owner::TmfCtio { tmf } => self.tmf_response_done(tmf as usize, ok),
            Owner::Answer { peer } => {
                if !ok {
                    // Reference §7.6: the exchange stays open after the failure.
                    self.post_terminate(&peer.exchange(o.exchange), SKIP_HANDLE);
                }
            }
            Owner::AbtsResp { .. } | Owner::NotifyAck => {}
        }
    }

    /// A CTIO7 completion in its usual form, read where it lies in the copied
    /// entry: SUCCESS without entry status, the final handle of an outstanding
    /// CTIO7 of a command, its exchange. Returns `false`, having done nothing,
    /// for anything else: the general path ([`Self::ctio_completion`] after the
    /// full parse) takes it, and does for this form exactly what is done here.
    #[inline(always)]
    pub(crate) fn ctio_completion_ok<C: CoreApi>(&mut self, core: &mut C, buf: &Entry) -> bool {
        let v = Ctio7::new_unchecked(buf);
        if v.entry_type_raw() != u8::from(EntryType::Ctio7)
            || !v.entry_status().is_empty()
            || v.status_raw() != u16::from(CtioStatus::Success)
        {
            return false;
        }
        let h = IocbHandle(v.handle());
        if h.is_intermediate() {
            return false;
        }
        // Lookup, checks and release in one look at the handle's slot.
        let exchange = v.exchange_addr().0;
        let mut cmd = 0;
        let taken = self.handles.take_if(h, |o| match o.payload {
            Owner::Ctio { cmd: c } if o.exchange == exchange => {
                cmd = c;
                true
            }
            _ => false,
        });
        if taken.is_none() {
            return false;
        }
        self.cmd_ctio_done(core, cmd as usize, None);
        true
    }

    /// A CTIO7 completion whose handle is the skip handle or matches nothing
    /// outstanding.
    #[cold]
    #[inline(never)]
    fn ctio_unmatched(
        &mut self,
        h: IocbHandle,
        miss: HandleMiss,
        ok: bool,
        c: &Ctio7CompletionRepr,
    ) {
        if miss == HandleMiss::Skip {
            if !ok {
                self.event(Event::IocbError {
                    entry_type: 0x12,
                    status: c.status.into(),
                });
            }
            return;
        }
        self.stats.stale_completions += 1;
        self.event(Event::StaleCompletion {
            handle: h,
            entry_type: 0x12,
        });
    }

    #[cold]
    #[inline(never)]
    fn ctio_exchange_mismatch(&mut self, h: IocbHandle, expected: u32, c: &Ctio7CompletionRepr) {
        self.stats.exchange_mismatches += 1;
        self.event(Event::ExchangeMismatch {
            handle: h,
            expected: rscst_fw::ExchangeAddr(expected),
            got: c.exchange_addr,
        });
    }

    /// What any failed CTIO7 means besides its command.
    #[cold]
    #[inline(never)]
    fn ctio_failed(&mut self, c: &Ctio7CompletionRepr) {
        self.stats.ctio_errors += 1;
        if matches!(
            c.status,
            CtioStatus::LipReset | CtioStatus::PortUnavailable | CtioStatus::TargetReset
        ) {
            // A LIP, link loss or reset happened (its async event may not
            // have been seen yet): whatever the driver posts next (a
            // terminate, say) must follow a MARKER (reference §7.12).
            self.marker_needed = true;
        }
    }

    /// The final CTIO7 of command slot `i` came back: `failed` is its
    /// completion when it did not succeed.
    #[inline(always)]
    fn cmd_ctio_done<C: CoreApi>(
        &mut self,
        core: &mut C,
        i: usize,
        failed: Option<&Ctio7CompletionRepr>,
    ) {
        let Some(slot) = self.cmds.get_mut(i) else {
            return;
        };
        if failed.is_some() && matches!(slot.op, Op::Status | Op::DataIn { with_status: true }) {
            self.stats.final_ctio_failed += 1;
        }
        let slot = &mut self.cmds[i];
        slot.outstanding = slot.outstanding.saturating_sub(1);
        if let Some(c) = failed {
            slot.op_error.get_or_insert(ctio_error(c.status));
            // Reference §7.6: terminate unless already terminated; a DATA_OUT
            // failure (not "always terminate") goes to the core first.
            if !slot.terminated && terminate_after(c.status, c.flags) {
                slot.needs_terminate = true;
            }
        }
        if slot.outstanding == 0 && !slot.aborting {
            let res = match slot.op_error {
                Some(e) => Err(e),
                None => Ok(()),
            };
            let op = core::mem::replace(&mut slot.op, Op::Idle);
            // Nothing else owed first (no terminate to post, nothing queued
            // before it): tell the core now, as `deliver_cmd_pending` would
            // once it reached this slot (what `deliver` does).
            if slot.live && !slot.needs_terminate && self.cmd_pending.is_empty() {
                let handle = slot.handle;
                slot.deliver = Deliver::Nothing;
                match op {
                    Op::DataIn { with_status: true } | Op::Status => {
                        self.free_cmd(i);
                        core.response_sent(handle, res);
                    }
                    Op::DataIn { with_status: false } => {
                        core.data_in_done(handle, res);
                    }
                    Op::DataOut => {
                        core.data_out_done(handle, res);
                    }
                    Op::Idle => {}
                }
                return;
            }
            slot.deliver = match op {
                Op::DataOut => Deliver::DataOut(res),
                Op::DataIn { with_status: false } => Deliver::DataIn(res),
                Op::DataIn { with_status: true } | Op::Status => Deliver::Response(res),
                Op::Idle => Deliver::Nothing,
            };
        }
        self.cmd_pending.push(self.cmds, i as u16);
    }

    /// Tell the core what slot `i` (command `handle`) owes it.
    #[inline(always)]
    fn deliver<C: CoreApi>(&mut self, core: &mut C, i: usize, handle: CmdHandle, d: Deliver) {
        match d {
            Deliver::Nothing => {}
            Deliver::DataOut(r) => {
                self.cmds[i].deliver = Deliver::Nothing;
                core.data_out_done(handle, r);
            }
            Deliver::DataIn(r) => {
                self.cmds[i].deliver = Deliver::Nothing;
                core.data_in_done(handle, r);
            }
            Deliver::Response(r) => {
                self.free_cmd(i);
                core.response_sent(handle, r);
            }
        }
    }

    /// Deliver what the command slots owe the core, posting terminates first.
    #[inline]
    pub(crate) fn process_cmd_pending<C: CoreApi>(&mut self, core: &mut C) -> bool {
        !self.cmd_pending.is_empty() && self.deliver_cmd_pending(core)
    }

    #[inline(never)]
    fn deliver_cmd_pending<C: CoreApi>(&mut self, core: &mut C) -> bool {
        let mut any = false;
        let mut budget = self.cmds.len() * 2;
        while budget > 0 {
            budget -= 1;
            let Some(i) = self.cmd_pending.pop(self.cmds) else {
                break;
            };
            let i = i as usize;
            any = true;
            // `pop` only returns indexes of the table.
            let slot = &self.cmds[i];
            if !slot.live {
                continue;
            }
            if slot.needs_terminate && !slot.void {
                let slot = *slot;
                // A tracked handle: the command hears back only after the
                // terminate completed (no transfer touches its buffers then).
                let posted = match self.handles.alloc(
                    Owner::Terminate { cmd: i as u16 },
                    slot.x.addr,
                    self.completion_deadline(),
                ) {
                    Some(h) => {
                        let ok = self.post_terminate(&slot.x, h.0);
                        if !ok {
                            let _ = self.handles.free(h);
                        }
                        ok
                    }
                    None => false,
                };
                if !posted {
                    // Ring or handles full: try again at the next poll.
                    self.cmd_pending.push(self.cmds, i as u16);
                    break;
                }
                let s = &mut self.cmds[i];
                s.needs_terminate = false;
                s.terminated = true;
                s.closed = true;
                s.outstanding = s.outstanding.saturating_add(1);
            }
            let s = &self.cmds[i];
            let (handle, outstanding, deliver) = (s.handle, s.outstanding, s.deliver);
            if s.aborting {
                if outstanding == 0 {
                    self.free_cmd(i);
                    core.abort_done(handle);
                }
                continue;
            }
            if outstanding > 0 {
                // A terminate is on its way: deliver after it completed.
                continue;
            }
            self.deliver(core, i, handle, deliver);
        }
        any
    }

    fn free_cmd(&mut self, i: usize) {
        if let Some(s) = self.cmds.get_mut(i)
            && s.live
        {
            *s = CmdSlot::EMPTY;
            self.live_cmds = self.live_cmds.saturating_sub(1);
        }
    }
}
