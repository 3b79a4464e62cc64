//! Persistent reservations (SPC-5 5.13): the hooks.
//!
//! PERSISTENT RESERVE IN/OUT, APTPL and their store are not implemented yet.
//! Everything they need has its place: [`PrState`] lives in every logical
//! unit, [`PrState::conflict`] is called by the reservation check of the
//! command flow (after the SPC-2 RESERVE check, for every command that
//! reaches the enabled state), every CDB row carries its
//! [`crate::cdb::PrClass`], [`crate::UnitAttention`] has the 2A/03-2A/05
//! conditions, and the PREEMPT AND ABORT path can reuse the task management
//! abort (`Target::abort_cmd`) with TAS handling.

use crate::cdb::OpInfo;

/// Persistent reservation state of one logical unit: registrations, the
/// reservation holder and type, the generation counter, APTPL.
#[derive(Clone, Debug, Default)]
pub(crate) struct PrState {}

impl PrState {
    pub(crate) const EMPTY: PrState = PrState {};

    /// Whether a command from the I_T nexus of `session` conflicts with a
    /// persistent reservation. No reservation can exist yet: never.
    pub(crate) fn conflict(&self, session: u16, op: &OpInfo, cdb: &[u8; 16]) -> bool {
        let _ = (session, op, cdb);
        false
    }

    /// Whether any I_T nexus is registered (an SPC-2 RESERVE then conflicts,
    /// SPC-5 5.13.3). None can be yet.
    pub(crate) fn has_registrations(&self) -> bool {
        false
    }
}
