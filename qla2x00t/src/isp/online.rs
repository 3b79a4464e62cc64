//! The running port: draining the rings, asynchronous events, the port's
//! own mailbox jobs, timers, and chip reset with full recovery.
//!
//! Reference §4 (async events), §6.3/§6.4 (rings and what arrives where),
//! §9.12 (LIP, link and chip events). On a chip reset every exchange from
//! before is void (§9.12): each command the core holds gets exactly one
//! completion for its outstanding operation (`Err(Aborted)`), every I_T
//! nexus ends (the initiators log in again), and the bring-up runs again.

use core::mem::MaybeUninit;
use core::time::Duration;

use rscst_core::Instant;
use rscst_fw::async_event::{AsyncEvent, AsyncEventCode};
use rscst_fw::iocb::{Ctio7CompletionRepr, EntryType};
use rscst_fw::mailbox::{
    ADAPTER_ID_LOOP_TRANSITION, ADAPTER_ID_NEEDS_LINK_INIT, AdapterId, Mailboxes, MbMask, MbxStatus,
};
use rscst_fw::port_db::PortDatabase;
use rscst_fw::{NportHandle, PortId};
use rscst_hba::{DmaRegion, Platform};

use super::{CmdSlot, Deliver, HeldNotify, Isp, Job, Op, Owner, SessionState, hw};
use crate::core_api::CoreApi;
use crate::event::{Event, LogoutReason, ResetReason};
use crate::handle::IocbHandle;
use crate::mailbox::MbxError;
use crate::ring::{ENTRY_LEN, Entry, MAX_ATIO_SLOTS};

/// How often outstanding handles and session timers are checked.
const SWEEP: Duration = Duration::from_millis(100);
/// Login states of the port database (reference §7.13).
const LOGIN_PLOGI_COMPLETE: u8 = 0x04;
const LOGIN_PRLI_PENDING: u8 = 0x05;
const LOGIN_PRLI_COMPLETE: u8 = 0x06;
/// PORT_UPDATE login state "port unavailable / logged out".
const PORT_UPDATE_LOGGED_OUT: u16 = 0x07;

/// Raw entry types of the two entries of every command (`EntryType::from`
/// is a chain of compares the compiler keeps out of line).
const RAW_ATIO7: u8 = 0x06;
const RAW_CTIO7: u8 = 0x12;

/// The type of an entry: ATIO7 and CTIO7 without the general lookup.
#[inline]
fn entry_type(raw: u8) -> EntryType {
    match raw {
        RAW_ATIO7 => EntryType::Atio7,
        RAW_CTIO7 => EntryType::Ctio7,
        _ => EntryType::from(raw),
    }
}

impl<'s, P: Platform, const REQ: usize, const RSP: usize, const ATIO: usize>
    Isp<'s, P, REQ, RSP, ATIO>
{
    // ---------------------------------------------------------------- the online poll

    /// Everything a running port does in one poll.
    pub(crate) fn online_poll<C: CoreApi>(&mut self, core: &mut C) -> bool {
        let mut busy = false;
        if self.marker_needed && self.post_marker() {
            busy = true;
        }
        busy |= self.flush_deferred();
        busy |= self.drain_atio(core);
        busy |= self.drain_responses(core);
        busy |= self.process_cmd_pending(core);
        busy |= self.process_tmf_pending(core);
        busy |= self.process_held();
        busy |= self.run_jobs(core);
        if self.now >= self.next_sweep {
            self.next_sweep = self.now.saturating_add(SWEEP);
            busy |= self.sweep(core);
        }
        busy
    }

    /// Take ATIO-queue entries: ATIO7, IMMED_NOTIFY, and (83xx+) ABTS_RECV.
    /// An entry is taken only when one request slot is free to answer it,
    /// so back-pressure reaches the firmware instead of dropping anything.
    fn drain_atio<C: CoreApi>(&mut self, core: &mut C) -> bool {
        let mut n = 0;
        while n < self.config.atio_budget {
            let mut buf = MaybeUninit::uninit();
            let (slots, first) = {
                // Room for the answer and a MARKER that may have to precede it.
                let req = hw::ReqHw::new(&self.platform, self.map, &self.dma.req);
                if self.deferred_len > 0 || !self.req.reserve(&req, 2, 0) {
                    break;
                }
                let hw = hw::InHw::atio(&self.platform, self.map, &self.dma.atio);
                match self.atio.peek(&hw, &mut buf) {
                    Ok(Some(found)) => found,
                    _ => break,
                }
            };
            n += 1;
            self.stats.atio_entries += 1;
            if slots == 1 {
                let hw = hw::InHw::atio(&self.platform, self.map, &self.dma.atio);
                self.atio.consume(&hw, 1);
                self.atio_entry(core, first, first);
            } else if !self.atio_multi(core, first, slots) {
                break;
            }
        }
        let hw = hw::InHw::atio(&self.platform, self.map, &self.dma.atio);
        self.atio.finish(&hw);
        n > 0
    }

    /// An entry of several slots (an ATIO7 with an additional CDB): copy the
    /// other slots out behind the first, then handle it. `false` if the slots
    /// could not be read (the entry stays on the ring).
    #[inline(never)]
    fn atio_multi<C: CoreApi>(&mut self, core: &mut C, first: &Entry, slots: usize) -> bool {
        let mut bytes = [0u8; ENTRY_LEN * MAX_ATIO_SLOTS];
        bytes[..ENTRY_LEN].copy_from_slice(first);
        let hw = hw::InHw::atio(&self.platform, self.map, &self.dma.atio);
        if self
            .atio
            .read_rest(&hw, slots, &mut bytes[ENTRY_LEN..])
            .is_err()
        {
            return false;
        }
        self.atio.consume(&hw, slots);
        let len = slots.min(MAX_ATIO_SLOTS) * ENTRY_LEN;
        self.atio_entry(core, first, &bytes[..len]);
        true
    }

    /// One entry taken from the ATIO queue: `first` is its first slot, `bytes`
    /// all of its slots that were copied.
    #[inline]
    fn atio_entry<C: CoreApi>(&mut self, core: &mut C, first: &Entry, bytes: &[u8]) {
        match entry_type(first[0]) {
            EntryType::Atio7 => self.atio7(core, bytes),
            EntryType::ImmedNotify => self.immed_notify(core, first),
            EntryType::AbtsRecv => self.abts(core, first),
            t => self.event(Event::UnknownEntry {
                entry_type: t.into(),
                atio_queue: true,
            }),
        }
    }

    /// Take response-queue entries: completions of what the driver sent,
    /// and (24xx/25xx/81xx) ABTS_RECV.
    fn drain_responses<C: CoreApi>(&mut self, core: &mut C) -> bool {
        let mut n = 0;
        let mut buf = MaybeUninit::uninit();
        let mut pointer_read = false;
        while n < self.config.response_budget {
            let buf = {
                let hw = hw::InHw::response(&self.platform, self.map, &self.dma.rsp);
                match self.rsp.next(&hw, &mut pointer_read, &mut buf) {
                    Ok(Some(entry)) => entry,
                    _ => break,
                }
            };
            n += 1;
            self.stats.response_entries += 1;
            // The usual completion without the full parse; anything else parsed.
            if !self.ctio_completion_ok(core, buf) {
                match Ctio7CompletionRepr::parse_bytes(&*buf) {
                    Ok(c) => self.ctio_completion(core, &c),
                    Err(_) => self.response_entry(core, buf),
                }
            }
            if self.phase() != super::Phase::Online {
                // A completion made us reset the chip: the ring is gone.
                return true;
            }
        }
        let hw = hw::InHw::response(&self.platform, self.map, &self.dma.rsp);
        self.rsp.finish(&hw);
        n > 0
    }

    /// A response-queue entry other than a CTIO7 completion.
    #[cold]
    #[inline(never)]
    fn response_entry<C: CoreApi>(&mut self, core: &mut C, buf: &Entry) {
        match entry_type(buf[0]) {
            // A CTIO7 that does not parse.
            EntryType::Ctio7 => self.event(Event::UnknownEntry {
                entry_type: buf[0],
                atio_queue: false,
            }),
            EntryType::NotifyAck => self.notify_ack_completion(buf),
            EntryType::AbtsRecv => self.abts(core, buf),
            EntryType::AbtsResp => self.abts_resp_completion(core, buf),
            EntryType::Marker => {}
            t => self.event(Event::UnknownEntry {
                entry_type: t.into(),
                atio_queue: false,
            }),
        }
    }

    // ---------------------------------------------------------------- async events

    /// One asynchronous event (reference §4).
    #[cold]
    #[inline(never)]
    pub(crate) fn async_event<C: CoreApi>(&mut self, core: &mut C, ev: AsyncEvent) {
        let running = matches!(
            self.phase(),
            super::Phase::Online | super::Phase::WaitingForReady
        );
        if ev.needs_isp_reset() {
            let reason = match ev {
                AsyncEvent::Other {
                    code: AsyncEventCode::SystemError,
                    mb,
                } => ResetReason::SystemError([mb[0], mb[1], mb[2]]),
                e => ResetReason::FirmwareError(e.code().into()),
            };
            if running || self.phase() == super::Phase::Initializing {
                self.chip_reset(core, reason);
            } else {
                self.event(Event::Async(ev));
            }
            return;
        }
        if ev.needs_marker() {
            self.marker_needed = true;
        }
        match ev {
            AsyncEvent::LoopUp { .. } => {
                self.link_up = true;
                self.marker_needed = true;
                self.event(Event::LinkUp(ev));
                // Waiting for the firmware to be ready: ask again now.
                if let super::bringup::Step::WaitReady { deadline, .. } = self.up.step
                    && !self.up.is_posted()
                {
                    self.up.step = super::bringup::Step::WaitReady {
                        next: self.now,
                        deadline,
                    };
                }
                if self.phase() == super::Phase::Online {
                    self.queue_job(Job::AdapterId);
                    self.ack_link_reinit();
                    for s in self.sessions.iter_mut() {
                        if s.state != SessionState::Free && s.lost_deadline.is_some() {
                            s.check_pending = true;
                            self.checks_queued = true;
                        }
                    }
                }
            }
            AsyncEvent::LoopDown { .. } => {
                self.link_up = false;
                self.stats.link_downs += 1;
                self.event(Event::LinkDown);
                let deadline = self.now.saturating_add(self.config.port_down_timeout);
                for s in self.sessions.iter_mut() {
                    if s.state != SessionState::Free && s.lost_deadline.is_none() {
                        s.lost_deadline = Some(deadline);
                    }
                }
            }
            AsyncEvent::LipOccurred { .. } => {
                self.stats.lips += 1;
                self.event(Event::Lip)
            }
            AsyncEvent::PortUpdate {
                nport_handle,
                login_state,
                ..
            } => {
                self.event(Event::Async(ev));
                // A login completing is only news (§9.7); a global update or
                // a port gone makes the driver check its sessions.
                if nport_handle.is_none() || login_state == PORT_UPDATE_LOGGED_OUT {
                    self.check_sessions(|s_nport, _| {
                        nport_handle.is_none() || s_nport == nport_handle.0
                    });
                }
            }
            AsyncEvent::RscnUpdate {
                port_id,
                address_format,
                ..
            } => {
                self.event(Event::Rscn(port_id));
                let mask: u32 = match address_format {
                    0 => 0xFF_FFFF,
                    1 => 0xFF_FF00,
                    2 => 0xFF_0000,
                    _ => 0,
                };
                self.check_sessions(|_, p: PortId| p.get() & mask == port_id.get() & mask);
            }
            AsyncEvent::RejectedFcpCmd {
                exchange_starvation,
            } => {
                if exchange_starvation {
                    self.event(Event::ExchangesExhausted);
                } else {
                    self.event(Event::Async(ev));
                }
            }
            AsyncEvent::Other {
                code: AsyncEventCode::LipReset,
                ..
            } => self.event(Event::Lip),
            _ => self.event(Event::Async(ev)),
        }
    }

    /// Queue a port-database check of the sessions `f` selects.
    fn check_sessions(&mut self, f: impl Fn(u16, PortId) -> bool) {
        for s in self.sessions.iter_mut() {
            if s.state != SessionState::Free && f(s.nport, s.port_id) {
                s.check_pending = true;
                self.checks_queued = true;
            }
        }
    }

    // ---------------------------------------------------------------- mailbox jobs

    pub(crate) fn queue_job(&mut self, j: Job) {
        if self.jobs.contains(&Some(j)) || self.job_running == Some(j) {
            return;
        }
        if let Some(slot) = self.jobs.iter_mut().find(|s| s.is_none()) {
            *slot = Some(j);
            self.jobs_queued = true;
        }
    }

    fn next_job(&mut self) -> Option<Job> {
        if self.now < self.job_not_before {
            return None;
        }
        if self.jobs_queued {
            if let Some(j) = self.jobs.iter_mut().find_map(|s| s.take()) {
                return Some(j);
            }
            self.jobs_queued = false;
        }
        if !self.checks_queued {
            return None;
        }
        let Some(i) = self.sessions.iter().position(|s| s.check_pending) else {
            self.checks_queued = false;
            return None;
        };
        self.sessions[i].check_pending = false;
        Some(Job::PortDb {
            session: i as u16,
            nport: self.sessions[i].nport,
            seq: self.sessions[i].login_seq,
        })
    }

    fn run_jobs<C: CoreApi>(&mut self, core: &mut C) -> bool {
        // The usual poll: no job running, none queued, no session check due.
        if self.job_running.is_none() && !self.jobs_queued && !self.checks_queued {
            return false;
        }
        self.run_jobs_now(core)
    }

    #[inline(never)]
    fn run_jobs_now<C: CoreApi>(&mut self, core: &mut C) -> bool {
        if let Some(j) = self.job_running {
            let Some((_, res)) = self.mbx.take() else {
                return false;
            };
            self.job_running = None;
            self.job_done(core, j, res);
            return true;
        }
        if !self.mbx.is_idle() {
            return false;
        }
        let Some(j) = self.next_job() else {
            return false;
        };
        let mb = match j {
            Job::AdapterId => Mailboxes::get_adapter_id(0),
            Job::LinkInit => Mailboxes::link_initialization(false, 0),
            Job::PortDb { nport, .. } => {
                Mailboxes::get_port_database(NportHandle(nport), self.dma.scratch.iova().0, 0, 0)
            }
        };
        let regs = regs!(self);
        if self
            .mbx
            .post(&regs, self.now, &mb, MbMask(0), self.config.mailbox_timeout)
        {
            self.job_running = Some(j);
        }
        true
    }

    #[cold]
    #[inline(never)]
    fn job_done<C: CoreApi>(&mut self, core: &mut C, j: Job, res: Result<Mailboxes, MbxError>) {
        if let Err(MbxError::Timeout { cmd }) = res {
            self.chip_reset(core, ResetReason::MailboxTimeout(cmd));
            return;
        }
        match j {
            Job::AdapterId => match res {
                Ok(out) => {
                    let id = AdapterId::from_mailboxes(&out);
                    self.adapter_id(id);
                }
                Err(MbxError::Status {
                    status: MbxStatus::CommandError,
                    mb1,
                    ..
                }) if mb1 == ADAPTER_ID_NEEDS_LINK_INIT => self.queue_job(Job::LinkInit),
                Err(MbxError::Status {
                    status: MbxStatus::CommandError,
                    mb1,
                    ..
                }) if mb1 == ADAPTER_ID_LOOP_TRANSITION && self.link_up => {
                    self.job_not_before = self.now.saturating_add(self.config.ready_poll);
                    self.queue_job(Job::AdapterId);
                }
                Err(_) => {}
            },
            Job::LinkInit => {
                self.job_not_before = self.now.saturating_add(self.config.ready_poll);
                self.queue_job(Job::AdapterId);
            }
            Job::PortDb {
                session,
                nport,
                seq,
            } => {
                let i = session as usize;
                let same = self.sessions.get(i).is_some_and(|s| {
                    s.state != SessionState::Free && s.nport == nport && s.login_seq == seq
                });
                if !same {
                    // The port logged in again meanwhile: the answer is old.
                    return;
                }
                let state = match res {
                    Ok(_) => {
                        let mut b = [0u8; 64];
                        if self.dma.scratch.read(0, &mut b).is_ok() {
                            let db = PortDatabase::new_unchecked(&b[..]);
                            Some((db.current_login_state() & 0xF, db.last_login_state() & 0xF))
                        } else {
                            None
                        }
                    }
                    Err(_) => None,
                };
                let fcp_ok = state
                    .is_some_and(|(c, l)| c == LOGIN_PRLI_COMPLETE || l == LOGIN_PRLI_COMPLETE);
                let port_ok = state.is_some_and(|(c, _)| {
                    matches!(
                        c,
                        LOGIN_PLOGI_COMPLETE | LOGIN_PRLI_PENDING | LOGIN_PRLI_COMPLETE
                    )
                });
                match (self.sessions[i].state, fcp_ok, port_ok) {
                    (_, true, _) => self.sessions[i].lost_deadline = None,
                    (SessionState::Active, false, true) => {
                        // The port is there but its FCP login is gone.
                        self.end_session(core, i, LogoutReason::PortDatabase, true)
                    }
                    (SessionState::PortLoggedIn, false, true) => {
                        self.sessions[i].lost_deadline = None
                    }
                    _ => self.end_session(core, i, LogoutReason::PortDatabase, false),
                }
            }
        }
    }

    // ---------------------------------------------------------------- timers

    /// Session timers and IOCBs whose completion is overdue.
    #[cold]
    #[inline(never)]
    fn sweep<C: CoreApi>(&mut self, core: &mut C) -> bool {
        let mut any = false;
        self.status_check_due = true;
        for i in 0..self.sessions.len() {
            if let Some(d) = self.sessions[i].lost_deadline
                && self.now >= d
            {
                self.end_session(core, i, LogoutReason::LinkLost, false);
                any = true;
            }
        }
        while let Some((h, o)) = self.handles.first_expired(self.now) {
            any = true;
            self.stats.completion_timeouts += 1;
            let _ = self.handles.free(h);
            match o.payload {
                Owner::Ctio { cmd } => {
                    self.event(Event::CompletionTimeout {
                        handle: h,
                        exchange: rscst_fw::ExchangeAddr(o.exchange),
                    });
                    self.ctio_timed_out(cmd as usize);
                }
                Owner::Terminate { .. } => {
                    // Even the terminate got no answer: the firmware is lost.
                    self.chip_reset(core, ResetReason::CompletionTimeout);
                    return true;
                }
                Owner::TmfCtio { tmf } => self.tmf_response_done(tmf as usize, false),
                Owner::AbtsResp { tmf } => self.tmf_response_done(tmf as usize, true),
                Owner::Answer { peer } => {
                    // Never completed: terminate, as after a failure (SCST does
                    // the same for a command pending in the hardware too long).
                    self.post_terminate(&peer.exchange(o.exchange), crate::handle::SKIP_HANDLE);
                }
                Owner::NotifyAck => {}
            }
        }
        any
    }

    fn ctio_timed_out(&mut self, i: usize) {
        let Some(s) = self.cmds.get_mut(i) else {
            return;
        };
        s.outstanding = s.outstanding.saturating_sub(1);
        s.op_error = Some(rscst_core::TransferError::Failed);
        // The firmware's view is unknown (the CTIO7 may still run, or have
        // failed, or succeeded with its completion lost): terminate, as SCST
        // does for a command pending in the hardware too long. A firmware that
        // had closed the exchange answers the terminate with INVALID_RX_ID.
        s.needs_terminate |= !s.terminated;
        if s.outstanding == 0 && !s.aborting {
            let r = Err(rscst_core::TransferError::Failed);
            s.deliver = match s.op {
                Op::DataOut => Deliver::DataOut(r),
                Op::DataIn { with_status: false } => Deliver::DataIn(r),
                Op::DataIn { with_status: true } | Op::Status => Deliver::Response(r),
                Op::Idle => Deliver::Nothing,
            };
            s.op = Op::Idle;
        }
        self.cmd_pending.push(self.cmds, i as u16);
    }

    // ---------------------------------------------------------------- chip reset

    /// Reset the chip and run the whole bring-up again, completing
    /// everything that was in flight.
    #[cold]
    #[inline(never)]
    pub(crate) fn chip_reset<C: CoreApi>(&mut self, core: &mut C, reason: ResetReason) {
        self.event(Event::Reset(reason));
        self.epoch = self.epoch.wrapping_add(1);
        let mut voided = 0u32;
        for i in 0..self.cmds.len() {
            let s = &mut self.cmds[i];
            if !s.live {
                continue;
            }
            voided += 1;
            s.void = true;
            s.outstanding = 0;
            s.needs_terminate = false;
            if !s.aborting {
                let r = Err(rscst_core::TransferError::Aborted);
                match s.op {
                    Op::DataOut => s.deliver = Deliver::DataOut(r),
                    Op::DataIn { with_status: false } => s.deliver = Deliver::DataIn(r),
                    Op::DataIn { with_status: true } | Op::Status => {
                        s.deliver = Deliver::Response(r)
                    }
                    Op::Idle => {}
                }
            }
            s.op = Op::Idle;
            self.cmd_pending.push(self.cmds, i as u16);
        }
        for i in 0..self.tmfs.len() {
            let t = &mut self.tmfs[i];
            if t.live && (t.outstanding > 0 || t.resend.is_some()) {
                t.outstanding = 0;
                t.resend = None;
                t.deliver = true;
                self.tmf_pending.push(self.tmfs, i as u16);
            }
        }
        // Held notifies of internal TMFs: nothing to acknowledge any more.
        self.held = [HeldNotify::EMPTY; super::slots::HELD_NOTIFIES];
        self.held_any = false;
        self.handles.invalidate_all();
        self.mbx.reset();
        self.jobs = [None; super::JOBS];
        self.job_running = None;
        self.deferred_len = 0;
        self.end_all_sessions(core, LogoutReason::ChipReset);
        self.link_up = false;
        self.marker_needed = false;
        self.fw.port_id = PortId::new(0);
        if voided > 0 {
            self.stats.voided += voided as u64;
            self.event(Event::CommandsVoided(voided));
        }
        let _ = CmdSlot::EMPTY;
        let _ = IocbHandle(0);
        let _ = Instant::ZERO;
        self.up.restart();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_type_shortcuts_agree() {
        for raw in 0..=u8::MAX {
            assert_eq!(entry_type(raw), EntryType::from(raw));
        }
        assert_eq!(entry_type(RAW_ATIO7), EntryType::Atio7);
        assert_eq!(entry_type(RAW_CTIO7), EntryType::Ctio7);
    }
}
