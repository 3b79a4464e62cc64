//! EXTENDED COPY (LID1) and RECEIVE COPY RESULTS.

use super::{Step, Target};
use crate::backend::Backend;
use crate::sense::SenseReason;
use crate::transport::Transport;

impl Target<'_> {
    pub(crate) fn exec_extended_copy<T: Transport, B: Backend>(
        &mut self,
        i: usize,
        _t: &mut T,
        _b: &mut B,
    ) -> Step {
        self.fail(i, SenseReason::InvalidOpcode)
    }

    pub(crate) fn exec_receive_copy_results(&mut self, i: usize) -> Step {
        self.fail(i, SenseReason::InvalidOpcode)
    }
}
