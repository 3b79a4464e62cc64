//! The task set of a logical unit and SAM-5 task attribute ordering.
//!
//! SAM-5 8.6 / 8.9: a SIMPLE task enters the enabled state when every older
//! HEAD OF QUEUE and ORDERED task has completed; an ORDERED task when every
//! older task has; HEAD OF QUEUE (and ACA) at once. The task set is shared by
//! every I_T nexus (TST=000b).
//!
//! Two representations keep the common case O(1):
//! * while the LU has only SIMPLE tasks that all run, a new SIMPLE task is
//!   just counted (`unlisted`);
//! * once an ORDERED, HEAD OF QUEUE or ACA task or a dormant task exists,
//!   new tasks go on an arrival-ordered list, walked only when dormant tasks
//!   may become enabled.
//!
//! Every unlisted task is older than every listed one: a task is unlisted
//! only when the list is empty, and the list stays non-empty until its last
//! task leaves. So the walk treats the unlisted tasks as one incomplete,
//! non-blocking group at the head.

use super::{CmdState, NIL, Target};
use crate::transport::TaskAttr;

impl Target<'_> {
    /// Put command `i` in its LU's task set. True if it may run now; false if
    /// it must wait (dormant).
    #[inline(always)]
    pub(crate) fn enter_task_set(&mut self, i: usize) -> bool {
        let c = &self.cmds[i];
        let (l, attr) = (usize::from(c.lu), c.attr);
        let Some(lu) = self.lus.get_mut(l) else {
            return true;
        };
        if attr == TaskAttr::Simple && lu.ts_head == NIL && lu.n_blocking == 0 {
            // Nothing listed, nothing blocking: count it and run it.
            lu.n_tasks += 1;
            lu.unlisted += 1;
            let c = &mut self.cmds[i];
            c.in_task_set = true;
            c.listed = false;
            return true;
        }
        self.enter_task_set_listed(i, l, attr)
    }

    /// [`Self::enter_task_set`] when the task goes on the list.
    #[inline(never)]
    fn enter_task_set_listed(&mut self, i: usize, l: usize, attr: TaskAttr) -> bool {
        let lu = &mut self.lus[l];
        lu.n_tasks += 1;
        let enabled = match attr {
            TaskAttr::Simple => lu.n_blocking == 0 && lu.n_dormant == 0,
            TaskAttr::Ordered => lu.n_tasks == 1,
            TaskAttr::HeadOfQueue | TaskAttr::Aca => true,
        };
        let blocking = matches!(attr, TaskAttr::Ordered | TaskAttr::HeadOfQueue);
        if blocking {
            lu.n_blocking += 1;
        }
        if attr == TaskAttr::Aca {
            lu.aca_tasks += 1;
        }
        if !enabled {
            lu.n_dormant += 1;
        }
        let tail = lu.ts_tail;
        lu.ts_tail = i as u16;
        if tail == NIL {
            lu.ts_head = i as u16;
        } else {
            self.cmds[usize::from(tail)].next = i as u16;
        }
        let c = &mut self.cmds[i];
        c.prev = tail;
        c.next = NIL;
        c.in_task_set = true;
        c.listed = true;
        c.blocking = blocking;
        enabled
    }

    /// Take command `i` out of its LU's task set (completed or aborted),
    /// and enable the dormant tasks that may now run.
    #[inline]
    pub(crate) fn leave_task_set(&mut self, i: usize) {
        let c = &mut self.cmds[i];
        if !c.in_task_set {
            return;
        }
        let l = usize::from(c.lu);
        if !c.listed {
            c.in_task_set = false;
            let lu = &mut self.lus[l];
            lu.n_tasks -= 1;
            lu.unlisted -= 1;
            if lu.n_dormant > 0 && lu.unlisted == 0 {
                self.enable_dormant(l);
            }
            return;
        }
        self.leave_task_set_listed(i, l);
    }

    /// [`Self::leave_task_set`] for a task on the list.
    #[inline(never)]
    fn leave_task_set_listed(&mut self, i: usize, l: usize) {
        let c = &self.cmds[i];
        let (prev, next) = (c.prev, c.next);
        let (blocking, dormant, aca) = (
            c.blocking,
            c.state == CmdState::Dormant,
            c.attr == TaskAttr::Aca,
        );
        match self.cmds.get_mut(usize::from(prev)) {
            Some(p) => p.next = next,
            None => self.lus[l].ts_head = next,
        }
        match self.cmds.get_mut(usize::from(next)) {
            Some(n) => n.prev = prev,
            None => self.lus[l].ts_tail = prev,
        }
        let c = &mut self.cmds[i];
        c.in_task_set = false;
        c.listed = false;
        c.blocking = false;
        c.next = NIL;
        c.prev = NIL;
        let lu = &mut self.lus[l];
        lu.n_tasks -= 1;
        if blocking {
            lu.n_blocking -= 1;
        }
        if dormant {
            lu.n_dormant -= 1;
        }
        if aca {
            lu.aca_tasks = lu.aca_tasks.saturating_sub(1);
        }
        if lu.n_dormant > 0 {
            self.enable_dormant(l);
        }
    }

    /// Enable every dormant task of LU `l` that the attribute rules allow.
    #[inline(never)]
    pub(crate) fn enable_dormant(&mut self, l: usize) {
        if self.lus[l].aca != NIL {
            // Blocked until the ACA condition is cleared (SAM-5 5.9.2).
            return;
        }
        // The unlisted SIMPLE tasks are older than every listed one.
        let (mut seen_any, mut seen_blocking) = (self.lus[l].unlisted > 0, false);
        let mut j = usize::from(self.lus[l].ts_head);
        while let Some(c) = self.cmds.get(j) {
            let next = usize::from(c.next);
            let attr = c.attr;
            if c.state == CmdState::Dormant {
                let ok = match attr {
                    TaskAttr::Simple => !seen_blocking,
                    TaskAttr::Ordered => !seen_any,
                    TaskAttr::HeadOfQueue | TaskAttr::Aca => true,
                };
                if ok {
                    self.cmds[j].state = CmdState::Enabled;
                    self.lus[l].n_dormant -= 1;
                    self.enqueue(j);
                } else if attr == TaskAttr::Ordered {
                    // Nothing younger can pass an incomplete ORDERED task.
                    break;
                }
            }
            seen_any = true;
            if matches!(attr, TaskAttr::Ordered | TaskAttr::HeadOfQueue) {
                seen_blocking = true;
            }
            if self.lus[l].n_dormant == 0 {
                break;
            }
            j = next;
        }
    }

    /// End the ACA condition of LU `l` and let blocked tasks run.
    pub(crate) fn clear_aca(&mut self, l: usize) {
        self.lus[l].aca = NIL;
        self.lu_changed(l);
        if self.lus[l].n_dormant > 0 {
            self.enable_dormant(l);
        }
    }

    /// A reset of LU `l` finished: commands held during it proceed.
    pub(crate) fn release_held(&mut self, l: usize) {
        for j in 0..self.cmds.len() {
            let c = &self.cmds[j];
            if c.state == CmdState::Dormant && !c.in_task_set && usize::from(c.lu) == l {
                self.cmds[j].state = CmdState::Received;
                self.enqueue(j);
            }
        }
    }
}
