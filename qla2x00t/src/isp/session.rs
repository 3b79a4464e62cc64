//! Sessions and the other events of the ATIO queue: IMMED_NOTIFY (logins,
//! logouts, LIP), NOTIFY_ACK, ABTS; task management responses.
//!
//! Reference §7.8–7.11, §9.5, §9.7, §9.8, §9.12. Sessions come from ELS
//! notifies, never from FCP traffic (gotcha 13): PLOGI records the port,
//! PRLI creates the I_T nexus in the core, LOGO/PRLO/TPRLO (and the
//! firmware's logout notifies) end it. NOTIFY_ACK follows the bookkeeping.

use rscst_core::{
    Busy, Lun, SessionHandle, TaskTag, TmfFunction, TmfRef, TmfRequest, TmfResponse,
    TmfResponseCode, TransportId,
};
use rscst_fw::fc::bls::{BaRjtExplanation, BaRjtReason, BaRjtRepr};
use rscst_fw::fc::els::ElsOpcode;
use rscst_fw::iocb::{
    AbtsRecvRepr, AbtsRespCompletionRepr, AbtsRespRepr, ImmedNotifyRepr, IocbStatus,
    NotifyAckCompletionRepr, NotifyAckRepr, NotifyFlags, NotifyStatus,
};
use rscst_fw::{NportHandle, PortId};
use rscst_hba::Platform;

use super::slots::HELD_NOTIFIES;
use super::{
    Exchange, HeldNotify, HoldReason, Isp, Owner, Session, SessionState, TmfKind, TmfSlot,
};
use crate::core_api::CoreApi;
use crate::event::{Event, LogoutReason, ResetReason};
use crate::handle::{HandleMiss, IocbHandle, SKIP_HANDLE};
use crate::iocb;
use crate::ring::Entry;

/// Marks the tag of a TMF the driver created itself (not an exchange address).
const INTERNAL_TAG: u64 = 1 << 40;
/// Marks the tag of an ABTS (its own exchange, distinct from command tags).
const ABTS_TAG: u64 = 1 << 32;
/// Linux resets the ISP after this many failed ABTS responses for one exchange.
const ABTS_RETRIES: u8 = 5;
/// ABTS_RESP error subcode 1: "the exchange to abort was not terminated".
const ABTS_NOT_TERMINATED: u32 = 0x1E;

impl<'s, P: Platform, const REQ: usize, const RSP: usize, const ATIO: usize>
    Isp<'s, P, REQ, RSP, ATIO>
{
    // ---------------------------------------------------------------- lookup

    /// The session of an S_ID (any login state).
    pub(crate) fn session_by_sid(&mut self, s_id: PortId) -> Option<usize> {
        if let Some((p, i)) = self.sid_cache
            && p == s_id
            && self
                .sessions
                .get(i as usize)
                .is_some_and(|s| s.state != SessionState::Free && s.port_id == s_id)
        {
            return Some(i as usize);
        }
        let i = self
            .sessions
            .iter()
            .position(|s| s.state != SessionState::Free && s.port_id == s_id)?;
        self.sid_cache = Some((s_id, i as u16));
        Some(i)
    }

    fn session_by_port(&self, nport: NportHandle, port_id: PortId) -> Option<usize> {
        self.sessions
            .iter()
            .position(|s| s.state != SessionState::Free && s.nport == nport.0)
            .or_else(|| {
                self.sessions
                    .iter()
                    .position(|s| s.state != SessionState::Free && s.port_id == port_id)
            })
    }

    /// End a session: the core loses the I_T nexus (its commands are aborted).
    pub(crate) fn end_session<C: CoreApi>(
        &mut self,
        core: &mut C,
        i: usize,
        reason: LogoutReason,
        keep_plogi: bool,
    ) {
        let Some(s) = self.sessions.get_mut(i) else {
            return;
        };
        if s.state == SessionState::Free {
            return;
        }
        let (wwpn, port_id) = (s.wwpn, s.port_id);
        if let Some(h) = s.core.take() {
            // Its pending TMFs come back through `Transport::tmf_dropped`.
            core.remove_session(h);
            self.stats.logouts += 1;
            self.event(Event::Logout {
                wwpn,
                port_id,
                reason,
            });
        }
        let s = &mut self.sessions[i];
        if keep_plogi {
            s.state = SessionState::PortLoggedIn;
            s.lost_deadline = None;
        } else {
            *s = Session::EMPTY;
        }
        self.sid_cache = None;
    }

    /// `Transport::tmf_dropped`: the core ended a TMF without a response (its
    /// nexus was removed). Its wire state is ours: answer it, free the slot.
    pub(crate) fn t_tmf_dropped(&mut self, tmf: TmfRef) {
        let i = tmf.handle.index();
        let Some(t) = self.tmfs.get(i).copied() else {
            return;
        };
        if !t.live || t.handle != tmf.handle {
            return;
        }
        self.answer_dropped(i);
        self.tmfs[i] = TmfSlot {
            queued: t.queued,
            next: t.next,
            ..TmfSlot::EMPTY
        };
    }

    /// Answer a dropped TMF on the wire (deferred if the ring is full): the
    /// FCP TMF's exchange is terminated, an ABTS gets BA_RJT, the driver's
    /// own nexus reset no longer holds its notify.
    fn answer_dropped(&mut self, i: usize) -> bool {
        let t = self.tmfs[i];
        if t.epoch != self.epoch {
            return true;
        }
        match t.kind {
            TmfKind::Fcp => self.post_terminate(&t.x, SKIP_HANDLE),
            TmfKind::Abts { entry, .. } => match AbtsRecvRepr::parse_bytes(&entry) {
                Ok(r) => {
                    let resp = AbtsRespRepr::reject(&r, SKIP_HANDLE, BaRjtRepr::UNABLE_TO_PERFORM);
                    let mut e = [0u8; 64];
                    let _ = resp.emit_bytes(&mut e);
                    self.post_or_defer(&e)
                }
                Err(_) => true,
            },
            TmfKind::Internal { notify } => {
                if let Some(h) = self.held.get_mut(notify as usize)
                    && h.used
                    && h.reason == HoldReason::Tmfs
                    && h.epoch == t.epoch
                {
                    h.waiting = h.waiting.saturating_sub(1);
                }
                true
            }
        }
    }

    pub(crate) fn end_all_sessions<C: CoreApi>(&mut self, core: &mut C, reason: LogoutReason) {
        for i in 0..self.sessions.len() {
            self.end_session(core, i, reason, false);
        }
    }

    // ---------------------------------------------------------------- notify ack

    /// Send the NOTIFY_ACK of `n` (`terminate`: refuse). If the ring is
    /// full the notify is held and acknowledged later.
    fn ack(&mut self, raw: &Entry, n: &ImmedNotifyRepr, terminate: bool) {
        let handle = if n.status == NotifyStatus::Els {
            self.handles
                .alloc(
                    Owner::NotifyAck,
                    n.exchange_addr.0,
                    self.now.saturating_add(self.config.completion_timeout),
                )
                .map_or(SKIP_HANDLE, |h| h.0)
        } else {
            SKIP_HANDLE
        };
        let mut a = NotifyAckRepr::ack(n, handle);
        if terminate {
            a = a.terminate();
        }
        if n.status == NotifyStatus::Srr {
            // SRR is not supported: reject, "unable to perform" (§9.9).
            a = a.reject_srr(0x09, 0x00);
        }
        let mut e = [0u8; 64];
        let _ = a.emit_bytes(&mut e);
        if !self.post_internal(&e) {
            if handle != SKIP_HANDLE {
                let _ = self.handles.free(IocbHandle(handle));
            }
            self.hold(raw, HoldReason::Ring, terminate);
        }
    }

    fn hold(&mut self, raw: &Entry, reason: HoldReason, terminate: bool) -> Option<usize> {
        let i = self.held.iter().position(|h| !h.used)?;
        self.held[i] = HeldNotify {
            used: true,
            entry: *raw,
            reason,
            terminate,
            waiting: 0,
            epoch: self.epoch,
        };
        Some(i)
    }

    fn release_held(&mut self, i: usize) {
        let h = self.held[i];
        self.held[i] = HeldNotify::EMPTY;
        if h.epoch != self.epoch {
            return;
        }
        if let Ok(n) = ImmedNotifyRepr::parse_bytes(&h.entry) {
            self.ack(&h.entry, &n, h.terminate);
        }
    }

    /// Acknowledge held notifies whose condition is met.
    pub(crate) fn process_held(&mut self) -> bool {
        let mut any = false;
        for i in 0..HELD_NOTIFIES {
            let h = self.held[i];
            if !h.used {
                continue;
            }
            let ready = match h.reason {
                HoldReason::Ring => true,
                HoldReason::Tmfs => h.waiting == 0,
                HoldReason::LinkReinit => false,
            };
            if ready {
                self.release_held(i);
                any = true;
            }
        }
        any
    }

    /// Acknowledge the held LINK_REINIT notifies (LOOP_UP, ADISC/PDISC).
    pub(crate) fn ack_link_reinit(&mut self) {
        for i in 0..HELD_NOTIFIES {
            if self.held[i].used && self.held[i].reason == HoldReason::LinkReinit {
                self.release_held(i);
            }
        }
    }

    // ---------------------------------------------------------------- IMMED_NOTIFY

    /// An IMMED_NOTIFY (reference §7.8, §9.7, §9.12).
    pub(crate) fn immed_notify<C: CoreApi>(&mut self, core: &mut C, raw: &Entry) {
        let Ok(n) = ImmedNotifyRepr::parse_bytes(raw) else {
            self.event(Event::UnknownEntry {
                entry_type: raw[0],
                atio_queue: true,
            });
            return;
        };
        if !n.entry_status.is_empty() {
            return;
        }
        match n.status {
            NotifyStatus::Els => self.els_notify(core, raw, &n),
            NotifyStatus::LipReset | NotifyStatus::PortConfig => {
                if n.status == NotifyStatus::LipReset {
                    self.event(Event::Lip);
                }
                self.abort_all_then_ack(core, raw, &n);
            }
            NotifyStatus::LipLinkReinit => {
                self.ack_link_reinit();
                if self.hold(raw, HoldReason::LinkReinit, false).is_none() {
                    self.ack(raw, &n, false);
                }
            }
            NotifyStatus::PortLogout => {
                if n.nport_handle.is_none() {
                    self.end_all_sessions(core, LogoutReason::PortLogout);
                } else if let Some(i) = self.session_by_port(n.nport_handle, n.port_id) {
                    self.end_session(core, i, LogoutReason::PortLogout, false);
                }
                self.ack(raw, &n, false);
            }
            NotifyStatus::GlobalLogo | NotifyStatus::GlobalTprlo => {
                self.end_all_sessions(core, LogoutReason::PortLogout);
                self.ack(raw, &n, false);
            }
            _ => self.ack(raw, &n, false),
        }
    }

    fn els_notify<C: CoreApi>(&mut self, core: &mut C, raw: &Entry, n: &ImmedNotifyRepr) {
        let op = ElsOpcode::from(n.status_subcode);
        match op {
            ElsOpcode::Plogi => self.plogi(core, raw, n),
            ElsOpcode::Prli => self.prli(core, raw, n),
            ElsOpcode::Logo | ElsOpcode::Prlo | ElsOpcode::Tprlo => {
                if op == ElsOpcode::Tprlo && n.flags.contains(NotifyFlags::GLOBAL_TPRLO) {
                    for i in 0..self.sessions.len() {
                        self.end_session(core, i, LogoutReason::Logout, true);
                    }
                } else if let Some(i) = self.session_by_port(n.nport_handle, n.port_id) {
                    // LOGO ends the port login too; PRLO/TPRLO only the FCP one.
                    self.end_session(core, i, LogoutReason::Logout, op != ElsOpcode::Logo);
                }
                self.ack(raw, n, false);
            }
            ElsOpcode::Adisc | ElsOpcode::Pdisc => {
                self.ack_link_reinit();
                if let Some(i) = self.session_by_port(n.nport_handle, n.port_id) {
                    self.sessions[i].lost_deadline = None;
                }
                self.ack(raw, n, false);
            }
            _ => {
                if let Some(i) = self.session_by_port(n.nport_handle, n.port_id) {
                    self.end_session(core, i, LogoutReason::Logout, false);
                }
                self.ack(raw, n, false);
            }
        }
    }

    fn plogi<C: CoreApi>(&mut self, core: &mut C, raw: &Entry, n: &ImmedNotifyRepr) {
        // A new PLOGI replaces any login with the same name, id or handle.
        for i in 0..self.sessions.len() {
            let s = &self.sessions[i];
            if s.state != SessionState::Free
                && (s.wwpn == n.port_name || s.port_id == n.port_id || s.nport == n.nport_handle.0)
            {
                self.end_session(core, i, LogoutReason::Replaced, false);
            }
        }
        let Some(i) = self
            .sessions
            .iter()
            .position(|s| s.state == SessionState::Free)
        else {
            self.event(Event::LoginRefused {
                wwpn: n.port_name,
                port_id: n.port_id,
            });
            self.ack(raw, n, true);
            return;
        };
        self.login_seq = self.login_seq.wrapping_add(1);
        self.sessions[i] = Session {
            state: SessionState::PortLoggedIn,
            port_id: n.port_id,
            nport: n.nport_handle.0,
            wwpn: n.port_name,
            wwnn: n.node_name(),
            vp: n.routes_to_vp().unwrap_or(0),
            login_seq: self.login_seq,
            ..Session::EMPTY
        };
        self.sid_cache = None;
        self.ack(raw, n, false);
    }

    fn prli<C: CoreApi>(&mut self, core: &mut C, raw: &Entry, n: &ImmedNotifyRepr) {
        let i = match self.session_by_port(n.nport_handle, n.port_id) {
            Some(i) => {
                if self.sessions[i].state == SessionState::Active {
                    // A second PRLI: a new FCP login, the old nexus ends.
                    self.end_session(core, i, LogoutReason::Replaced, true);
                }
                i
            }
            None => match self
                .sessions
                .iter()
                .position(|s| s.state == SessionState::Free)
            {
                Some(i) => {
                    self.sessions[i] = Session {
                        state: SessionState::PortLoggedIn,
                        port_id: n.port_id,
                        nport: n.nport_handle.0,
                        wwpn: n.port_name,
                        vp: n.routes_to_vp().unwrap_or(0),
                        ..Session::EMPTY
                    };
                    i
                }
                None => {
                    self.event(Event::LoginRefused {
                        wwpn: n.port_name,
                        port_id: n.port_id,
                    });
                    self.ack(raw, n, true);
                    return;
                }
            },
        };
        self.login_seq = self.login_seq.wrapping_add(1);
        let s = &mut self.sessions[i];
        s.login_seq = self.login_seq;
        s.check_pending = false;
        if !n.port_name.is_zero() {
            s.wwpn = n.port_name;
        }
        s.port_id = n.port_id;
        s.nport = n.nport_handle.0;
        s.prli_word3 = n.prli_word3();
        let wwpn = s.wwpn;
        match core.create_session(&TransportId::fc(wwpn.to_u64()), self.config.relative_port) {
            Some(h) => {
                let s = &mut self.sessions[i];
                s.core = Some(h);
                s.state = SessionState::Active;
                s.lost_deadline = None;
                self.sid_cache = None;
                self.stats.logins += 1;
                self.event(Event::Login {
                    wwpn,
                    port_id: n.port_id,
                    nport_handle: n.nport_handle,
                });
                self.ack(raw, n, false);
            }
            None => {
                self.event(Event::LoginRefused {
                    wwpn,
                    port_id: n.port_id,
                });
                self.ack(raw, n, true);
            }
        }
    }

    /// LIP_RESET / PORT_CONFIG: every task of the session (or of all, for a
    /// global notify) is aborted by an I_T nexus reset in the core; the ack
    /// follows when those finished.
    fn abort_all_then_ack<C: CoreApi>(&mut self, core: &mut C, raw: &Entry, n: &ImmedNotifyRepr) {
        let Some(hi) = self.hold(raw, HoldReason::Tmfs, false) else {
            self.ack(raw, n, false);
            return;
        };
        let one = if n.nport_handle.is_none() {
            None
        } else {
            self.session_by_port(n.nport_handle, n.port_id)
        };
        let mut waiting = 0u16;
        for i in 0..self.sessions.len() {
            if one.is_some_and(|o| o != i) {
                continue;
            }
            let Some(sh) = self.sessions[i].core else {
                continue;
            };
            if self.internal_tmf(core, sh, hi as u8) {
                waiting += 1;
            }
        }
        self.held[hi].waiting = waiting;
        if waiting == 0 {
            self.release_held(hi);
        }
    }

    fn internal_tmf<C: CoreApi>(
        &mut self,
        core: &mut C,
        session: SessionHandle,
        notify: u8,
    ) -> bool {
        let req = TmfRequest {
            session,
            tag: TaskTag(INTERNAL_TAG | self.stats.tmfs),
            lun: Lun::ZERO,
            function: TmfFunction::ItNexusReset,
        };
        match core.submit_tmf(&req) {
            Ok(h) => {
                self.stats.tmfs += 1;
                self.new_tmf(h, TmfKind::Internal { notify }, Exchange::default());
                true
            }
            Err(_) => false,
        }
    }

    // ---------------------------------------------------------------- ABTS

    /// An ABTS_RECV (reference §9.8).
    pub(crate) fn abts<C: CoreApi>(&mut self, core: &mut C, raw: &Entry) {
        let Ok(r) = AbtsRecvRepr::parse_bytes(raw) else {
            self.event(Event::UnknownEntry {
                entry_type: raw[0],
                atio_queue: false,
            });
            return;
        };
        if !r.entry_status.is_empty() {
            return;
        }
        self.stats.abts += 1;
        let to_abort = r.exchange_addr_to_abort;
        let s_id = r.header.s_id;
        let sess = self
            .session_by_sid(s_id)
            .filter(|&i| self.sessions[i].core.is_some());
        let cmd = sess.and_then(|si| {
            self.cmds
                .iter()
                .position(|c| c.live && !c.void && c.x.addr == to_abort.0 && c.session == si as u16)
        });
        let (Some(si), Some(ci), false, false) =
            (sess, cmd, r.abort_sequence(), to_abort.is_unknown())
        else {
            self.abts_reject_now(&r, BaRjtRepr::UNABLE_TO_PERFORM);
            return;
        };
        let x = Exchange {
            addr: r.exchange_addr.0,
            nport: r.nport_handle.0,
            s_id,
            ox_id: r.header.ox_id.0,
            // The attr of the exchange to abort, for a terminate of the 0x1E loop.
            attr: self.cmds[ci].x.attr,
            vp: r.vp_index,
            fcp_dl: 0,
        };
        let core_session = self.sessions[si].core.unwrap_or(SessionHandle::from_u32(0));
        let req = TmfRequest {
            session: core_session,
            tag: TaskTag(ABTS_TAG | r.exchange_addr.0 as u64),
            lun: self.cmds[ci].lun,
            function: TmfFunction::AbortTask(TaskTag(to_abort.0 as u64)),
        };
        match core.submit_tmf(&req) {
            Ok(h) => {
                self.stats.tmfs += 1;
                self.new_tmf(
                    h,
                    TmfKind::Abts {
                        entry: *raw,
                        retries: 0,
                    },
                    x,
                );
                self.event(Event::Abts {
                    exchange: to_abort,
                    port_id: s_id,
                    rejected: false,
                });
            }
            Err(_) => self.abts_reject_now(
                &r,
                BaRjtRepr {
                    reason: BaRjtReason::LogicalBusy,
                    explanation: BaRjtExplanation::None,
                    vendor: 0,
                },
            ),
        }
    }

    fn abts_reject_now(&mut self, r: &AbtsRecvRepr, rjt: BaRjtRepr) {
        self.stats.abts_rejected += 1;
        self.event(Event::Abts {
            exchange: r.exchange_addr_to_abort,
            port_id: r.header.s_id,
            rejected: true,
        });
        let resp = AbtsRespRepr::reject(r, SKIP_HANDLE, rjt);
        let mut e = [0u8; 64];
        let _ = resp.emit_bytes(&mut e);
        let _ = self.post_or_defer(&e);
    }

    fn post_abts_resp(&mut self, i: usize, accept: bool) -> bool {
        let TmfKind::Abts { entry, .. } = self.tmfs[i].kind else {
            return false;
        };
        let Ok(r) = AbtsRecvRepr::parse_bytes(&entry) else {
            return false;
        };
        let deadline = self.now.saturating_add(self.config.completion_timeout);
        let Some(h) = self.handles.alloc(
            Owner::AbtsResp { tmf: i as u16 },
            r.exchange_addr.0,
            deadline,
        ) else {
            return false;
        };
        let resp = if accept {
            AbtsRespRepr::accept(&r, h.0)
        } else {
            AbtsRespRepr::reject(&r, h.0, BaRjtRepr::UNABLE_TO_PERFORM)
        };
        let mut e = [0u8; 64];
        let _ = resp.emit_bytes(&mut e);
        if self.post_internal(&e) {
            self.tmfs[i].outstanding = 1;
            self.tmfs[i].accepted = accept;
            true
        } else {
            let _ = self.handles.free(h);
            false
        }
    }

    /// An ABTS_RESP completion (reference §7.11, §9.8 step 5).
    pub(crate) fn abts_resp_completion<C: CoreApi>(&mut self, core: &mut C, raw: &Entry) {
        let Ok(c) = AbtsRespCompletionRepr::parse_bytes(raw) else {
            return;
        };
        let h = IocbHandle(c.handle);
        let o = match self.handles.get(h) {
            Ok(o) => o,
            Err(HandleMiss::Skip) => return,
            Err(_) => {
                self.stats.stale_completions += 1;
                self.event(Event::StaleCompletion {
                    handle: h,
                    entry_type: raw[0],
                });
                return;
            }
        };
        if o.exchange != c.exchange_addr.0 {
            self.stats.exchange_mismatches += 1;
            self.event(Event::ExchangeMismatch {
                handle: h,
                expected: rscst_fw::ExchangeAddr(o.exchange),
                got: c.exchange_addr,
            });
            return;
        }
        let _ = self.handles.free(h);
        let Owner::AbtsResp { tmf } = o.payload else {
            return;
        };
        let i = tmf as usize;
        let Some(slot) = self.tmfs.get_mut(i) else {
            return;
        };
        slot.outstanding = 0;
        let slot = *slot;
        if c.compl_status != IocbStatus::Complete {
            self.event(Event::IocbError {
                entry_type: raw[0],
                status: c.compl_status.into(),
            });
            if c.error_subcode1 == ABTS_NOT_TERMINATED
                && let TmfKind::Abts { retries, entry } = slot.kind
            {
                if retries >= ABTS_RETRIES {
                    self.chip_reset(core, ResetReason::AbtsLoop);
                    return;
                }
                self.tmfs[i].kind = TmfKind::Abts {
                    entry,
                    retries: retries + 1,
                };
                // Terminate the exchange the firmware still holds, then
                // answer again (with the command's attr first, then the other
                // value Linux alternates with, in case it was wrong).
                let x = Exchange {
                    addr: c.exchange_addr_to_abort.0,
                    nport: c.nport_handle.0,
                    s_id: slot.x.s_id,
                    ox_id: slot.x.ox_id,
                    attr: if retries % 2 == 0 {
                        slot.x.attr
                    } else {
                        slot.x.attr ^ 4
                    },
                    vp: slot.x.vp,
                    fcp_dl: 0,
                };
                let accept = slot.accepted;
                self.tmfs[i].resend = Some(accept);
                self.post_terminate(&x, SKIP_HANDLE);
                self.tmf_pending.push(self.tmfs, tmf);
                return;
            }
        }
        self.tmfs[i].deliver = true;
        self.tmf_pending.push(self.tmfs, tmf);
    }

    /// A NOTIFY_ACK completion: only errors matter (they are reported).
    pub(crate) fn notify_ack_completion(&mut self, raw: &Entry) {
        let Ok(c) = NotifyAckCompletionRepr::parse_bytes(raw) else {
            return;
        };
        let h = IocbHandle(c.ack.handle);
        match self.handles.free(h) {
            Ok(_) | Err(HandleMiss::Skip) => {}
            Err(_) => {
                self.stats.stale_completions += 1;
                self.event(Event::StaleCompletion {
                    handle: h,
                    entry_type: raw[0],
                });
                return;
            }
        }
        if !c.is_success() {
            self.event(Event::IocbError {
                entry_type: raw[0],
                status: c.status.into(),
            });
        }
    }

    // ---------------------------------------------------------------- TMF responses

    pub(crate) fn t_queue_tmf_response(
        &mut self,
        tmf: TmfRef,
        resp: &TmfResponse,
    ) -> Result<(), Busy> {
        let i = tmf.handle.index();
        let epoch = self.epoch;
        let Some(slot) = self.tmfs.get_mut(i) else {
            return Ok(());
        };
        if !slot.live || slot.handle != tmf.handle {
            *slot = TmfSlot {
                live: true,
                handle: tmf.handle,
                epoch: epoch.wrapping_sub(1),
                kind: TmfKind::Internal { notify: u8::MAX },
                ..TmfSlot::EMPTY
            };
        }
        let slot = *slot;
        if slot.epoch != epoch || matches!(slot.kind, TmfKind::Internal { .. }) {
            // Void (chip reset) or the driver's own: nothing goes on the wire.
            self.tmfs[i].deliver = true;
            self.tmf_pending.push(self.tmfs, i as u16);
            return Ok(());
        }
        match slot.kind {
            TmfKind::Fcp => {
                let deadline = self.now.saturating_add(self.config.completion_timeout);
                let Some(h) =
                    self.handles
                        .alloc(Owner::TmfCtio { tmf: i as u16 }, slot.x.addr, deadline)
                else {
                    self.stats.handles_exhausted += 1;
                    return Err(Busy);
                };
                let mut c = rscst_fw::iocb::Ctio7Repr::tm_response(
                    &iocb::ctio_exchange(&slot.x),
                    super::command::rsp_code(resp.code),
                );
                c.handle = h.0;
                c.timeout = self.config.ctio_timeout_secs;
                if !self.post_internal(&iocb::emit_ctio(&c)) {
                    let _ = self.handles.free(h);
                    self.stats.ring_full += 1;
                    return Err(Busy);
                }
                self.stats.ctios += 1;
                self.tmfs[i].outstanding = 1;
                Ok(())
            }
            TmfKind::Abts { .. } => {
                let accept = matches!(
                    resp.code,
                    TmfResponseCode::FunctionComplete | TmfResponseCode::FunctionSucceeded
                );
                if self.post_abts_resp(i, accept) {
                    Ok(())
                } else {
                    self.stats.ring_full += 1;
                    Err(Busy)
                }
            }
            TmfKind::Internal { .. } => Ok(()),
        }
    }

    /// The response of a TMF completed (`ok`: successfully). An FCP_RSP CTIO7
    /// that failed or never completed leaves the exchange open in the firmware:
    /// it is terminated (reference §7.6).
    pub(crate) fn tmf_response_done(&mut self, i: usize, ok: bool) {
        let Some(s) = self.tmfs.get_mut(i) else {
            return;
        };
        s.outstanding = 0;
        s.deliver = true;
        let t = *s;
        self.tmf_pending.push(self.tmfs, i as u16);
        if !ok && t.kind == TmfKind::Fcp && t.epoch == self.epoch {
            self.post_terminate(&t.x, SKIP_HANDLE);
        }
    }

    /// Deliver `tmf_response_sent` and resend ABTS responses.
    pub(crate) fn process_tmf_pending<C: CoreApi>(&mut self, core: &mut C) -> bool {
        let mut any = false;
        let mut budget = self.tmfs.len() * 2;
        while budget > 0 {
            budget -= 1;
            let Some(i) = self.tmf_pending.pop(self.tmfs) else {
                break;
            };
            any = true;
            let i = i as usize;
            let s = self.tmfs[i];
            if !s.live {
                continue;
            }
            if let Some(accept) = s.resend {
                if s.epoch != self.epoch {
                    self.tmfs[i].resend = None;
                    self.tmfs[i].deliver = true;
                } else if self.post_abts_resp(i, accept) {
                    self.tmfs[i].resend = None;
                    continue;
                } else {
                    self.tmf_pending.push(self.tmfs, i as u16);
                    break;
                }
            }
            let s = self.tmfs[i];
            if s.deliver && s.outstanding == 0 {
                self.tmfs[i] = TmfSlot::EMPTY;
                if let TmfKind::Internal { notify } = s.kind
                    && let Some(h) = self.held.get_mut(notify as usize)
                    && h.used
                    && h.reason == HoldReason::Tmfs
                    && h.epoch == s.epoch
                {
                    h.waiting = h.waiting.saturating_sub(1);
                }
                core.tmf_response_sent(s.handle);
            }
        }
        any
    }
}
