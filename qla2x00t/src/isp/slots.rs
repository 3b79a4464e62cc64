//! Per-exchange, per-TMF and per-session state: the driver tables over
//! caller storage, indexed by the core's handles (commands, TMFs) or by the
//! driver's own session index.

use core::fmt;

use rscst_core::{CmdHandle, Instant, Lun, SessionHandle, TmfHandle, TransferError};
use rscst_fw::{PortId, Wwn};

use crate::ring::ENTRY_LEN;

/// What a CTIO7 (or other request IOCB) carries back to the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    /// A CTIO7 of a command: its final completion ends the current operation.
    Ctio { cmd: u16 },
    /// The terminate CTIO7 of a command's exchange.
    Terminate { cmd: u16 },
    /// The FCP_RSP CTIO7 answering an FCP task management request.
    TmfCtio { tmf: u16 },
    /// The ABTS_RESP answering an ABTS.
    AbtsResp { tmf: u16 },
    /// A NOTIFY_ACK whose completion is only reported.
    NotifyAck,
    /// A status CTIO7 the driver answered an exchange with on its own (BUSY, TASK SET
    /// FULL, a status-only error, a rejected TMF): if it fails, the exchange (address in
    /// the handle slot) is terminated.
    Answer { peer: Peer },
}

/// The exchange fields a terminate needs besides the address (kept small: it lives in
/// the handle table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Peer {
    pub(crate) nport: u16,
    pub(crate) s_id: PortId,
    pub(crate) ox_id: u16,
    pub(crate) attr: u8,
    pub(crate) vp: u8,
}

impl Peer {
    pub(crate) fn of(x: &Exchange) -> Peer {
        Peer {
            nport: x.nport,
            s_id: x.s_id,
            ox_id: x.ox_id,
            attr: x.attr,
            vp: x.vp,
        }
    }

    /// The exchange at `addr`.
    pub(crate) fn exchange(&self, addr: u32) -> Exchange {
        Exchange {
            addr,
            nport: self.nport,
            s_id: self.s_id,
            ox_id: self.ox_id,
            attr: self.attr,
            vp: self.vp,
            fcp_dl: 0,
        }
    }
}

/// The exchange of an ATIO: everything every CTIO7 for it echoes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Exchange {
    /// Firmware exchange address.
    pub(crate) addr: u32,
    /// Initiator N_Port handle (0xFFFF unknown).
    pub(crate) nport: u16,
    /// Initiator port id.
    pub(crate) s_id: PortId,
    /// OX_ID.
    pub(crate) ox_id: u16,
    /// ATIO attr nibble (echoed in CTIO7 flags B9–B12).
    pub(crate) attr: u8,
    /// Virtual port index.
    pub(crate) vp: u8,
    /// FCP_DL.
    pub(crate) fcp_dl: u32,
}

/// The transport operation a command has in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// Nothing: the command is in the core or the backend.
    Idle,
    /// Data-In; `with_status`: the status went with it.
    DataIn { with_status: bool },
    /// Data-Out.
    DataOut,
    /// Status only.
    Status,
}

/// A completion the driver owes the core, delivered at the next poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deliver {
    /// Nothing owed.
    Nothing,
    /// `data_out_done`.
    DataOut(Result<(), TransferError>),
    /// `data_in_done`.
    DataIn(Result<(), TransferError>),
    /// `response_sent`.
    Response(Result<(), TransferError>),
}

/// One command the core holds, seen from the wire.
#[derive(Debug, Clone, Copy)]
pub struct CmdSlot {
    pub(crate) live: bool,
    pub(crate) handle: CmdHandle,
    pub(crate) x: Exchange,
    pub(crate) session: u16,
    pub(crate) lun: Lun,
    pub(crate) op: Op,
    /// Tracked IOCBs of this command not completed yet.
    pub(crate) outstanding: u8,
    /// First error seen in the current operation.
    pub(crate) op_error: Option<TransferError>,
    /// A SEND_STATUS or TERMINATE CTIO7 was posted: no data or status CTIO7 may follow
    /// (only a terminate, if the SEND_STATUS one fails or is never completed).
    pub(crate) closed: bool,
    /// `command_aborted` was called; `abort_done` is owed.
    pub(crate) aborting: bool,
    /// A terminate must be posted (a failed or overdue CTIO7, or an abort).
    pub(crate) needs_terminate: bool,
    /// A terminate was posted: nothing more, not even another terminate, for this exchange.
    pub(crate) terminated: bool,
    /// The chip reset since the exchange arrived: nothing may be sent for it.
    pub(crate) void: bool,
    pub(crate) deliver: Deliver,
    pub(crate) queued: bool,
    pub(crate) next: u16,
}

impl CmdSlot {
    /// A free slot.
    pub const EMPTY: CmdSlot = CmdSlot {
        live: false,
        handle: CmdHandle::from_u32(0),
        x: Exchange {
            addr: 0,
            nport: 0,
            s_id: PortId::new(0),
            ox_id: 0,
            attr: 0,
            vp: 0,
            fcp_dl: 0,
        },
        session: 0,
        lun: Lun::ZERO,
        op: Op::Idle,
        outstanding: 0,
        op_error: None,
        closed: false,
        aborting: false,
        needs_terminate: false,
        terminated: false,
        void: false,
        deliver: Deliver::Nothing,
        queued: false,
        next: NIL,
    };
}

/// Where a task management request came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TmfKind {
    /// FCP_CMND with task management flags: answered by an FCP_RSP CTIO7.
    Fcp,
    /// ABTS: answered by ABTS_RESP; the received entry is kept to build it.
    Abts { entry: [u8; ENTRY_LEN], retries: u8 },
    /// The driver's own (I_T nexus reset for a LIP notify): answered to nobody.
    Internal { notify: u8 },
}

/// One task management request the core holds.
#[derive(Debug, Clone, Copy)]
pub struct TmfSlot {
    pub(crate) live: bool,
    pub(crate) handle: TmfHandle,
    pub(crate) epoch: u16,
    pub(crate) kind: TmfKind,
    pub(crate) x: Exchange,
    pub(crate) outstanding: u8,
    /// `tmf_response_sent` is owed.
    pub(crate) deliver: bool,
    /// The ABTS response must be (re)sent by the pending list: `Some(accept)`.
    pub(crate) resend: Option<bool>,
    /// Whether the ABTS was accepted (BA_ACC) when first answered.
    pub(crate) accepted: bool,
    pub(crate) queued: bool,
    pub(crate) next: u16,
}

impl TmfSlot {
    /// A free slot.
    pub const EMPTY: TmfSlot = TmfSlot {
        live: false,
        handle: TmfHandle::from_u32(0),
        epoch: 0,
        kind: TmfKind::Fcp,
        x: CmdSlot::EMPTY.x,
        outstanding: 0,
        deliver: false,
        resend: None,
        accepted: false,
        queued: false,
        next: NIL,
    };
}

/// Login state of a remote port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// Slot unused.
    Free,
    /// PLOGI accepted; no FCP login yet.
    PortLoggedIn,
    /// PRLI accepted: the I_T nexus exists in the core.
    Active,
}

impl fmt::Display for SessionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SessionState::Free => "free",
            SessionState::PortLoggedIn => "PLOGI",
            SessionState::Active => "active",
        })
    }
}

/// A remote port (initiator) known to the driver.
#[derive(Debug, Clone, Copy)]
pub struct Session {
    pub(crate) state: SessionState,
    pub(crate) port_id: PortId,
    pub(crate) nport: u16,
    pub(crate) wwpn: Wwn,
    pub(crate) wwnn: Wwn,
    pub(crate) vp: u8,
    pub(crate) prli_word3: u16,
    pub(crate) core: Option<SessionHandle>,
    /// Set while the link is down: the nexus ends at this time unless the
    /// initiator logs in again.
    pub(crate) lost_deadline: Option<Instant>,
    /// A port-database check is queued for this session.
    pub(crate) check_pending: bool,
    /// Bumped at every login (PLOGI, PRLI): a port-database answer for an
    /// older login is ignored.
    pub(crate) login_seq: u32,
}

impl Session {
    /// A free slot.
    pub const EMPTY: Session = Session {
        state: SessionState::Free,
        port_id: PortId::new(0),
        nport: 0xFFFF,
        wwpn: Wwn([0; 8]),
        wwnn: Wwn([0; 8]),
        vp: 0,
        prli_word3: 0,
        core: None,
        lost_deadline: None,
        check_pending: false,
        login_seq: 0,
    };
}

/// A public snapshot of a session (for tools).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionInfo {
    /// Login state.
    pub state: SessionState,
    /// Initiator WWPN.
    pub wwpn: Wwn,
    /// Initiator WWNN (from PLOGI).
    pub wwnn: Wwn,
    /// Initiator port id.
    pub port_id: PortId,
    /// N_Port handle.
    pub nport_handle: u16,
    /// The core's I_T nexus, once PRLI was accepted.
    pub core: Option<SessionHandle>,
}

impl fmt::Display for SessionInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} id {} handle {:#06x} {}",
            self.wwpn, self.port_id, self.nport_handle, self.state
        )
    }
}

/// Why an IMMED_NOTIFY is held instead of acknowledged at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HoldReason {
    /// LINK_REINIT: acked on the next LOOP_UP or ADISC/PDISC.
    LinkReinit,
    /// LIP_RESET/PORT_CONFIG: acked when the driver's nexus resets finished.
    Tmfs,
    /// The ack could not be posted (ring full): retried.
    Ring,
}

/// An IMMED_NOTIFY waiting for its NOTIFY_ACK.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeldNotify {
    pub(crate) used: bool,
    pub(crate) entry: [u8; ENTRY_LEN],
    pub(crate) reason: HoldReason,
    /// Acknowledge with TERMINATE (refuse the ELS).
    pub(crate) terminate: bool,
    pub(crate) waiting: u16,
    pub(crate) epoch: u16,
}

impl HeldNotify {
    pub(crate) const EMPTY: HeldNotify = HeldNotify {
        used: false,
        entry: [0; ENTRY_LEN],
        reason: HoldReason::Ring,
        terminate: false,
        waiting: 0,
        epoch: 0,
    };
}

/// Held notifies the driver keeps.
pub(crate) const HELD_NOTIFIES: usize = 16;

/// End of an intrusive list.
pub(crate) const NIL: u16 = u16::MAX;

/// An intrusive FIFO of slot indices (the slots carry `queued` and `next`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PendingList {
    pub(crate) head: u16,
    pub(crate) tail: u16,
}

impl PendingList {
    pub(crate) const fn new() -> PendingList {
        PendingList {
            head: NIL,
            tail: NIL,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.head == NIL
    }
}

/// Access to the `queued`/`next` fields of a slot kind.
pub(crate) trait Linked {
    fn queued(&mut self) -> &mut bool;
    fn next(&mut self) -> &mut u16;
}

impl Linked for CmdSlot {
    fn queued(&mut self) -> &mut bool {
        &mut self.queued
    }
    fn next(&mut self) -> &mut u16 {
        &mut self.next
    }
}

impl Linked for TmfSlot {
    fn queued(&mut self) -> &mut bool {
        &mut self.queued
    }
    fn next(&mut self) -> &mut u16 {
        &mut self.next
    }
}

impl PendingList {
    /// Append slot `i` unless it is already queued.
    pub(crate) fn push<T: Linked>(&mut self, slots: &mut [T], i: u16) {
        let Some(s) = slots.get_mut(i as usize) else {
            return;
        };
        if *s.queued() {
            return;
        }
        *s.queued() = true;
        *s.next() = NIL;
        if let Some(t) = slots.get_mut(self.tail as usize) {
            *t.next() = i;
        } else {
            self.head = i;
        }
        self.tail = i;
    }

    /// Remove and return the first slot index.
    pub(crate) fn pop<T: Linked>(&mut self, slots: &mut [T]) -> Option<u16> {
        let i = self.head;
        let s = slots.get_mut(i as usize)?;
        self.head = *s.next();
        *s.queued() = false;
        *s.next() = NIL;
        if self.head == NIL {
            self.tail = NIL;
        }
        Some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_list_fifo_without_duplicates() {
        let mut s = [CmdSlot::EMPTY; 4];
        let mut l = PendingList::new();
        assert!(l.is_empty());
        l.push(&mut s, 2);
        l.push(&mut s, 0);
        l.push(&mut s, 2);
        l.push(&mut s, 9);
        assert_eq!(l.pop(&mut s), Some(2));
        l.push(&mut s, 3);
        assert_eq!(l.pop(&mut s), Some(0));
        assert_eq!(l.pop(&mut s), Some(3));
        assert_eq!(l.pop(&mut s), None);
        assert!(l.is_empty());
        l.push(&mut s, 1);
        assert_eq!(l.pop(&mut s), Some(1));
    }
}
