//! Counters a tool reads (`rscst stats`, `rscst bench`).

use core::fmt;

/// Driver statistics since probe. All counters only grow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// SCSI commands handed to the core.
    pub commands: u64,
    /// Task management requests handed to the core (FCP TMFs and ABTS).
    pub tmfs: u64,
    /// ABTS received.
    pub abts: u64,
    /// ABTS answered with BA_RJT at once (unknown exchange, no session).
    pub abts_rejected: u64,
    /// Bytes sent to initiators (Data-In).
    pub bytes_in: u64,
    /// Bytes received from initiators (Data-Out).
    pub bytes_out: u64,
    /// Bytes the host copied to move command data. The data path is zero
    /// copy (every transfer is a scatter list of bus addresses), so this
    /// stays 0; it is here so tools can show it.
    pub bytes_copied: u64,
    /// Commands answered BUSY by the driver (exchange threshold, no exchange).
    pub busy: u64,
    /// Commands answered TASK SET FULL / BUSY because the core refused them.
    pub core_rejected: u64,
    /// Exchanges terminated by the driver.
    pub terminates: u64,
    /// Commands from an S_ID with no session (terminated).
    pub unknown_session: u64,
    /// CTIO7s posted.
    pub ctios: u64,
    /// CONTINUE_A64 entries posted.
    pub continuations: u64,
    /// Request-queue doorbells written.
    pub doorbells: u64,
    /// Entries taken from the ATIO queue.
    pub atio_entries: u64,
    /// Entries taken from the response queue.
    pub response_entries: u64,
    /// `Busy` answers to the core because the request ring was full.
    pub ring_full: u64,
    /// `Busy` answers to the core because the handle table was full.
    pub handles_exhausted: u64,
    /// Completions dropped because their handle was stale.
    pub stale_completions: u64,
    /// Completions dropped because their exchange address did not match.
    pub exchange_mismatches: u64,
    /// CTIO7 completions with an error status.
    pub ctio_errors: u64,
    /// CTIO7s with SEND_STATUS that failed: the exchange counts as closed
    /// and nothing more is sent for it.
    pub final_ctio_failed: u64,
    /// Tracked IOCBs that timed out.
    pub completion_timeouts: u64,
    /// Chip resets (including the first bring-up).
    pub resets: u64,
    /// Commands voided by a chip reset (completed towards the core as aborted).
    pub voided: u64,
    /// Logins accepted (I_T nexus created).
    pub logins: u64,
    /// I_T nexus ends.
    pub logouts: u64,
    /// Asynchronous events.
    pub async_events: u64,
    /// Link-down events (async LOOP_DOWN).
    pub link_downs: u64,
    /// LIPs (async LIP_OCCURRED / LIP_RESET, IMMED_NOTIFY LIP_RESET).
    pub lips: u64,
    /// Interrupt-status values handled.
    pub interrupts: u64,
    /// Events overwritten before the caller drained them.
    pub events_dropped: u64,
    /// Driver-generated answers lost because the ring and the deferred queue
    /// were both full (expected to stay 0).
    pub deferred_dropped: u64,
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cmds {} tmfs {} abts {} in {}B out {}B copied {}B busy {} rejected {} \
             terminates {} ctios {} doorbells {} stale {} timeouts {} resets {} voided {} logins {} \
             logouts {} link-downs {} lips {}",
            self.commands,
            self.tmfs,
            self.abts,
            self.bytes_in,
            self.bytes_out,
            self.bytes_copied,
            self.busy,
            self.core_rejected,
            self.terminates,
            self.ctios,
            self.doorbells,
            self.stale_completions,
            self.completion_timeouts,
            self.resets,
            self.voided,
            self.logins,
            self.logouts,
            self.link_downs,
            self.lips
        )
    }
}
