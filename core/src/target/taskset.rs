//! The task set of a logical unit and SAM-5 task attribute ordering.
//!
//! SAM-5 8.6 / 8.9: a SIMPLE task enters the enabled state when every older
//! HEAD OF QUEUE and ORDERED task has completed; an ORDERED task when every
//! older task has; HEAD OF QUEUE (and ACA) at once. The task set is one
//! arrival-ordered list per LU (TST=000b: shared by every I_T nexus) with
//! counters, so the common case (SIMPLE tasks only) is O(1); the list is
//! walked only when dormant tasks exist.

use super::{CmdState, NIL, Target};
use crate::transport::TaskAttr;

impl Target<'_> {
    /// Put command `i` at the tail of its LU's task set. True if it may run
    /// now; false if it must wait (dormant).
    pub(crate) fn enter_task_set(&mut self, i: usize) -> bool {
        let l = usize::from(self.cmds[i].lu);
        let attr = self.cmds[i].attr;
        let Some(lu) = self.lus.get_mut(l) else {
            return true;
        };
        let enabled = match attr {
            TaskAttr::Simple => lu.n_blocking == 0 && lu.n_dormant == 0,
            TaskAttr::Ordered => lu.n_tasks == 0,
            TaskAttr::HeadOfQueue | TaskAttr::Aca => true,
        };
        let blocking = matches!(attr, TaskAttr::Ordered | TaskAttr::HeadOfQueue);
        lu.n_tasks += 1;
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
        c.blocking = blocking;
        enabled
    }

    /// Take command `i` out of its LU's task set (completed or aborted),
    /// and enable the dormant tasks that may now run.
    pub(crate) fn leave_task_set(&mut self, i: usize) {
        let c = &self.cmds[i];
        if !c.in_task_set {
            return;
        }
        let (prev, next, l) = (c.prev, c.next, usize::from(c.lu));
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
    pub(crate) fn enable_dormant(&mut self, l: usize) {
        if self.lus[l].aca != NIL {
            // Blocked until the ACA condition is cleared (SAM-5 5.9.2).
            return;
        }
        let (mut seen_any, mut seen_blocking) = (false, false);
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
