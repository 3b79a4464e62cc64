//! Workload generator (placeholder; filled next).

use crate::initiator::{Control, InitiatorEvent};

/// A running workload.
#[derive(Debug, Default)]
pub struct Workload {}

impl Workload {
    pub(crate) fn on_event(&mut self, _ctl: &mut Control<'_>, _ev: InitiatorEvent<'_>) {}
}
