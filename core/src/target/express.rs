//! The express path: a command the transport has just submitted, run at once
//! by that transport when the core's own next step would be to run exactly it.
//!
//! [`Target::submit`] puts a command on the ready queue and [`Target::poll`]
//! later steps it through Received → Exec → Respond. A transport that has
//! the backend at hand (the FC driver's `poll_stack`) may instead call
//! [`Target::run_now`] right after `submit` and after its own per-command
//! state is ready for transport calls. The core runs the command then only
//! when the poll would have run it first and unchanged:
//!
//! * it is the only command on the ready queue (nothing is ahead of it, so
//!   the order in which commands are stepped is the poll's) and no task
//!   management request waits to be started (`tmf_work`: a poll would start
//!   it first);
//! * it is a SIMPLE READ (6/10/12/16) on a mapped LU whose `quiet` flag is
//!   set (no reset, ACA, reservation of any kind, background operation,
//!   ALUA restriction, stopped or absent medium, write protection), with no
//!   unit attention pending on its I_T_L nexus, no reserved CDB bit set, and
//!   nothing listed or blocking in the LU's task set (no ORDERED, HEAD OF
//!   QUEUE, ACA or dormant task): the receive and enabled checks of
//!   `step_received`/`step_enabled` would all pass, and the command would
//!   enter the task set as an unlisted SIMPLE task.
//!
//! Anything else is left as `submit` left it, on the ready queue for the
//! poll. Once it runs, the express READ does what the poll's steps do, in
//! their order (`read_first`, then the status through `step_respond`), and
//! every way the READ can go besides its single mapped round (range error,
//! interlocking commands, a backend that does not map, a transport `Busy`)
//! leaves the command on the ready queue in the state the step loop would
//! continue from.
//!
//! SAM-5 5.6 lets a command that arrived before a task management request
//! complete before the request is processed, which is what happens when a
//! TMF reaches the core right after an express command: the command is
//! already answered (`ResponseSent`) and the TMF waits for it as for any
//! command whose status is on its way.

use super::{CmdState, NIL, Target};
use crate::backend::Backend;
use crate::cdb::{self, OpKind, UA_EXEMPT, WRITES};
use crate::ids::CmdHandle;
use crate::time::Instant;
use crate::transport::{CommandRequest, Rejected, TaskAttr, Transport};

impl Target<'_> {
    /// [`Target::submit`], then `accepted(t, handle)` (the transport makes
    /// its own state for the command ready for transport calls), then
    /// [`Target::run_now`]: the command runs at once when the poll would run
    /// it first and unchanged (see the express path in the module
    /// documentation), else it waits on the ready queue for the poll. `now`
    /// is the time of the transport's poll. `Err` means no slot was taken and
    /// `accepted` was not called, as for `submit`.
    #[inline]
    pub fn submit_now<T: Transport, B: Backend>(
        &mut self,
        req: &CommandRequest<'_>,
        now: Instant,
        t: &mut T,
        b: &mut B,
        accepted: impl FnOnce(&mut T, CmdHandle),
    ) -> Result<CmdHandle, Rejected> {
        let (i, h) = self.submit_slot(req)?;
        accepted(t, h);
        // Nothing on the ready queue ahead of it, no TMF waiting to start.
        if !self.tmf_work && self.ready_len == 0 && self.express_claim(i, now) {
            self.express_read(i, t, b);
        } else {
            self.enqueue(i);
        }
        Ok(h)
    }

    /// Run command `cmd`, which the caller has just submitted, now, with `t`
    /// as its transport and `b` as the backend, when that is what
    /// [`Target::poll`] would do first (see the module documentation of
    /// the express path: the only command ready, no task management
    /// waiting, a SIMPLE READ every receive check would pass). Returns
    /// `true` if the command ran (its transport call is made, or it waits
    /// on the ready queue in the state the poll continues from), `false` if
    /// it was left untouched for the next poll.
    ///
    /// The transport must be ready for calls about `cmd` (its own state for
    /// the command in place) before calling this; `now` is the time of the
    /// transport's poll, as [`Target::poll`] would get it.
    pub fn run_now<T: Transport, B: Backend>(
        &mut self,
        cmd: CmdHandle,
        now: Instant,
        t: &mut T,
        b: &mut B,
    ) -> bool {
        let i = cmd.index();
        // Nothing ahead of it on the ready queue, no TMF waiting to start.
        if self.tmf_work || usize::from(self.ready_head) != i || self.ready_len != 1 {
            return false;
        }
        let fresh = self.cmds.get(i).is_some_and(|c| {
            c.generation == cmd.generation() && c.state == CmdState::Received && !c.aborted
        });
        if !fresh {
            return false;
        }
        if !self.express_claim(i, now) {
            return false;
        }
        // Off the ready queue (its only entry).
        self.ready_head = NIL;
        self.ready_tail = NIL;
        self.ready_len = 0;
        let c = &mut self.cmds[i];
        c.queued = false;
        c.next_ready = NIL;
        self.express_read(i, t, b);
        true
    }

    /// Whether command `i` (just submitted, in `Received`) takes the express
    /// path: a SIMPLE READ on a quiet LU whose receive and enabled checks
    /// would all pass and which the task set would take unlisted. If so it
    /// is made ready to run as `step_received` and `step_enabled` leave it
    /// in their passing cases (its operation set, in `Exec` at the first
    /// stage); the caller then runs the READ (`express_read`), off the
    /// ready queue. It enters the task set (unlisted) only if it outlives
    /// that: nothing can look at the task set between here and a status
    /// queued at once, and leaving it then is a no-op (no task is dormant).
    /// `false` changes nothing.
    #[inline(always)]
    fn express_claim(&mut self, i: usize, now: Instant) -> bool {
        let Some(c) = self.cmds.get_mut(i) else {
            return false;
        };
        if c.attr != TaskAttr::Simple {
            return false;
        }
        let Some(op) = cdb::lookup_plain(c.cdb[0]) else {
            return false;
        };
        if op.kind != OpKind::Read {
            return false;
        }
        let (s, l) = (usize::from(c.session), usize::from(c.lu));
        // An unmapped LUN (NIL) has no LU.
        let Some(lu) = self.lus.get(l) else {
            return false;
        };
        debug_assert_eq!(
            lu.quiet,
            lu.is_quiet(self.alua_restricted),
            "LU {l}: stale quiet"
        );
        // `step_received`'s ACA and reset tests and `step_enabled`'s checks
        // pass on a quiet LU; the task set takes a SIMPLE task unlisted when
        // nothing is listed or blocking.
        let ua = self.itl.get(s * self.lus.len() + l).map_or(0, |e| e.ua);
        if !lu.quiet
            || lu.ts_head != NIL
            || lu.n_blocking != 0
            || (c.map_ro && op.has(WRITES))
            || (ua != 0 && !op.has(UA_EXEMPT))
            || cdb::check_reserved(op, &c.cdb).is_err()
        {
            return false;
        }
        c.op = Some(op);
        trace!("command {}: {} (express)", i as u32, op.name);
        c.state = CmdState::Exec;
        c.stage = 0;
        self.now = now;
        true
    }

    /// Put command `i` of the express path in its LU's task set as
    /// `enter_task_set` does for a SIMPLE task with nothing listed or
    /// blocking (which [`Self::express_claim`] saw).
    #[inline]
    pub(crate) fn express_enter(&mut self, i: usize) {
        let c = &mut self.cmds[i];
        if let Some(lu) = self.lus.get_mut(usize::from(c.lu)) {
            lu.n_tasks += 1;
            lu.unlisted += 1;
            c.in_task_set = true;
            c.listed = false;
        }
    }
}
