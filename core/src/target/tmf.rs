//! Task management (SAM-5 7) with SCST's "safe" semantics.
//!
//! A TMF aborts the commands it affects at once (`abort_cmd`), counts them,
//! and queues its response only when the last one has left the transport
//! (`abort_done`/`response_sent`) and the backend. Reset side effects
//! (reservations, PREVENT, mode pages, unit attentions) are applied at that
//! point, just before the response; new commands to a LU being reset are
//! held until then.

use super::{CmdState, NIL, SessionState, Target};
use crate::ids::{Lun, TaskTag, TmfHandle};
use crate::sense::UnitAttention;
use crate::tmf::{TmfFunction, TmfRequest, TmfResponse, TmfResponseCode};
use crate::transport::{TaskAttr, TmfRef, Transport};

/// TMF slots of a target (one bit each in a command's waiter mask).
pub const MAX_TMFS: usize = 8;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum TmfState {
    Free,
    /// Submitted, not yet started.
    New,
    /// Waiting for `pending` affected commands.
    Waiting,
    /// Ready to queue the response.
    Respond,
    /// Response queued; waiting for `tmf_response_sent`.
    Sent,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Tmf {
    pub generation: u16,
    pub state: TmfState,
    pub session: u16,
    /// The generation of the session's handle when the request came.
    pub session_generation: u16,
    pub tag: TaskTag,
    pub lun: Lun,
    pub lu: u16,
    pub function: TmfFunction,
    pub pending: u16,
    pub response: TmfResponse,
    /// The session went away: no response is sent ([`Transport::tmf_dropped`]).
    pub orphan: bool,
}

impl Tmf {
    pub(crate) const EMPTY: Tmf = Tmf {
        generation: 0,
        state: TmfState::Free,
        session: NIL,
        session_generation: 0,
        tag: TaskTag(0),
        lun: Lun(0),
        lu: NIL,
        function: TmfFunction::AbortTaskSet,
        pending: 0,
        response: TmfResponse::new(TmfResponseCode::FunctionComplete),
        orphan: false,
    };

    pub(crate) fn new(generation: u16, session: u16, req: &TmfRequest) -> Tmf {
        Tmf {
            generation,
            state: TmfState::New,
            session,
            session_generation: req.session.generation(),
            tag: req.tag,
            lun: req.lun.normalized(),
            function: req.function,
            ..Tmf::EMPTY
        }
    }

    pub(crate) fn in_use(&self) -> bool {
        self.state != TmfState::Free
    }
}

impl Target<'_> {
    /// Start new TMFs and queue the responses of finished ones.
    pub(crate) fn run_tmfs<T: Transport>(&mut self, t: &mut T) -> bool {
        self.tmf_work = false;
        let mut moved = false;
        for k in 0..self.tmfs.len() {
            if self.tmfs[k].state == TmfState::New {
                moved = true;
                self.start_tmf(k);
            }
        }
        for k in 0..self.tmfs.len() {
            if self.tmfs[k].state != TmfState::Respond {
                continue;
            }
            let tm = self.tmfs[k];
            let r = TmfRef {
                handle: TmfHandle::new(k as u16, tm.generation),
                session: crate::ids::SessionHandle::new(tm.session, tm.session_generation),
                tag: tm.tag,
            };
            if tm.orphan
                || self.sessions.get(usize::from(tm.session)).is_none_or(|s| {
                    s.state != SessionState::Active || s.generation != tm.session_generation
                })
            {
                // The nexus is gone: no response; the transport ends its wire state.
                self.tmfs[k].state = TmfState::Free;
                moved = true;
                t.tmf_dropped(r);
                continue;
            }
            match t.queue_tmf_response(r, &tm.response) {
                Ok(()) => {
                    moved = true;
                    self.tmfs[k].state = TmfState::Sent;
                }
                Err(_) => self.tmf_work = true,
            }
        }
        moved
    }

    fn start_tmf(&mut self, k: usize) {
        let tm = self.tmfs[k];
        let s = usize::from(tm.session);
        let group = self.sessions.get(s).map_or(0, |x| x.group);
        let lu = self.lookup_lun(group, tm.lun).map(|(l, _)| l);
        self.tmfs[k].lu = lu.unwrap_or(NIL);
        self.tmfs[k].state = TmfState::Waiting;
        let mut code = TmfResponseCode::FunctionComplete;
        let mut info = [0u8; 3];
        info!("TMF {} from session {}", k as u32, s as u32);
        match (tm.function, lu) {
            (TmfFunction::AbortTask(tag), _) => {
                if let Some(j) = self.find_cmd(s, tag) {
                    self.abort_cmd(j, false, Some(k));
                }
            }
            (TmfFunction::QueryTask(tag), _) => {
                if self.find_cmd(s, tag).is_some_and(|j| !self.cmds[j].aborted) {
                    code = TmfResponseCode::FunctionSucceeded;
                }
            }
            (TmfFunction::TargetReset, _) => {
                for l in 0..self.lus.len() {
                    if self.lus[l].in_use {
                        self.lus[l].resets += 1;
                        self.lu_changed(l);
                    }
                }
                for j in 0..self.cmds.len() {
                    self.abort_cmd(j, false, Some(k));
                }
            }
            (TmfFunction::ItNexusReset, _) => {
                for j in 0..self.cmds.len() {
                    if usize::from(self.cmds[j].session) == s {
                        self.abort_cmd(j, false, Some(k));
                    }
                }
            }
            (_, None) => code = TmfResponseCode::IncorrectLun,
            (TmfFunction::AbortTaskSet, Some(l)) => {
                for j in 0..self.cmds.len() {
                    let c = &self.cmds[j];
                    if c.lu == l && usize::from(c.session) == s {
                        self.abort_cmd(j, false, Some(k));
                    }
                }
            }
            (TmfFunction::ClearTaskSet, Some(l)) => {
                let tas = self.lus[usize::from(l)].mode.tas;
                for j in 0..self.cmds.len() {
                    let c = &self.cmds[j];
                    if c.lu != l || c.state == CmdState::Free {
                        continue;
                    }
                    let other = usize::from(c.session);
                    let same = other == s;
                    self.abort_cmd(j, !same && tas, Some(k));
                    if !same && !tas {
                        self.set_ua(other, usize::from(l), UnitAttention::CommandsCleared);
                    }
                }
            }
            (TmfFunction::ClearAca, Some(l)) => {
                let lu = &self.lus[usize::from(l)];
                if lu.aca != NIL && usize::from(lu.aca) != s {
                    code = TmfResponseCode::FunctionRejected;
                } else {
                    for j in 0..self.cmds.len() {
                        let c = &self.cmds[j];
                        if c.lu == l && usize::from(c.session) == s && c.attr == TaskAttr::Aca {
                            self.abort_cmd(j, false, Some(k));
                        }
                    }
                }
            }
            (TmfFunction::LogicalUnitReset, Some(l)) => {
                self.lus[usize::from(l)].resets += 1;
                self.lu_changed(usize::from(l));
                for j in 0..self.cmds.len() {
                    if self.cmds[j].lu == l {
                        self.abort_cmd(j, false, Some(k));
                    }
                }
            }
            (TmfFunction::QueryTaskSet, Some(l)) => {
                let any = self.cmds.iter().any(|c| {
                    c.state != CmdState::Free
                        && c.lu == l
                        && usize::from(c.session) == s
                        && !c.aborted
                });
                if any {
                    code = TmfResponseCode::FunctionSucceeded;
                }
            }
            (TmfFunction::QueryAsynchronousEvent, Some(l)) => {
                let pending = self.pending_ua(s, usize::from(l));
                if let Some(ua) = UnitAttention::ALL.iter().find(|u| pending & u.bit() != 0) {
                    code = TmfResponseCode::FunctionSucceeded;
                    let (asc, ascq) = ua.asc_ascq();
                    let depth = if pending.count_ones() > 1 { 2 } else { 1 };
                    info = [
                        depth << 4 | crate::sense::SenseKey::UnitAttention as u8,
                        asc,
                        ascq,
                    ];
                }
            }
        }
        self.tmfs[k].response = TmfResponse {
            code,
            additional_info: info,
        };
        if self.tmfs[k].pending == 0 {
            self.finish_tmf(k);
        }
    }

    fn find_cmd(&self, s: usize, tag: TaskTag) -> Option<usize> {
        self.cmds
            .iter()
            .position(|c| c.state != CmdState::Free && usize::from(c.session) == s && c.tag == tag)
    }

    /// Commands a set of TMFs waited for have finished.
    pub(crate) fn tmf_cmd_finished(&mut self, waiters: u8) {
        for k in 0..self.tmfs.len() {
            if waiters & (1 << k) == 0 || self.tmfs[k].state != TmfState::Waiting {
                continue;
            }
            self.tmfs[k].pending = self.tmfs[k].pending.saturating_sub(1);
            if self.tmfs[k].pending == 0 {
                self.finish_tmf(k);
            }
        }
    }

    /// Every affected command is gone: apply the function's effects and
    /// make the response ready.
    fn finish_tmf(&mut self, k: usize) {
        let tm = self.tmfs[k];
        let s = usize::from(tm.session);
        if tm.response.code != TmfResponseCode::IncorrectLun {
            match tm.function {
                TmfFunction::LogicalUnitReset => {
                    if let Some(l) = self.lus.get(usize::from(tm.lu)).map(|_| usize::from(tm.lu)) {
                        self.reset_lu(l, UnitAttention::LunReset);
                    }
                }
                TmfFunction::TargetReset => {
                    for l in 0..self.lus.len() {
                        if self.lus[l].in_use {
                            self.reset_lu(l, UnitAttention::PowerOnReset);
                        }
                    }
                }
                TmfFunction::ItNexusReset => {
                    self.release_nexus(s);
                    for l in 0..self.lus.len() {
                        if self.lus[l].in_use {
                            self.set_ua(s, l, UnitAttention::NexusLoss);
                        }
                    }
                }
                TmfFunction::ClearAca => {
                    if let Some(lu) = self.lus.get(usize::from(tm.lu))
                        && usize::from(lu.aca) == s
                    {
                        self.clear_aca(usize::from(tm.lu));
                    }
                }
                _ => {}
            }
        }
        self.tmfs[k].state = TmfState::Respond;
        self.tmf_work = true;
    }

    /// The effects of a logical unit reset (SAM-5 6.3.3), after its tasks
    /// are gone: ACA, SPC-2 reservations and PREVENT are cleared, mode
    /// parameters return to their saved values, and every I_T nexus gets
    /// `ua`. Persistent reservations and a running SANITIZE survive.
    fn reset_lu(&mut self, l: usize, ua: UnitAttention) {
        let stride = self.lus.len();
        let lu = &mut self.lus[l];
        lu.res2 = NIL;
        lu.prevent = 0;
        lu.mode = lu.saved;
        lu.resets = lu.resets.saturating_sub(1);
        let released = lu.resets == 0;
        self.lu_changed(l);
        for s in 0..self.sessions.len() {
            self.itl[s * stride + l].prevent = false;
        }
        self.clear_aca(l);
        self.set_ua_all(l, ua, None);
        if released {
            self.release_held(l);
        }
    }
}
