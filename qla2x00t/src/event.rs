//! Typed driver events for logs and tools (STYLE.md S10), and the bounded
//! queue they wait in until the caller drains them.

use core::fmt;
use core::time::Duration;

use rscst_core::Instant;
use rscst_fw::async_event::AsyncEvent;
use rscst_fw::mailbox::{FirmwareVersion, MbxCommand, Topology};
use rscst_fw::pci::Generation;
use rscst_fw::{ExchangeAddr, NportHandle, PortId, Wwn};

use crate::handle::IocbHandle;
use crate::mailbox::MbxError;

/// Why the chip was reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResetReason {
    /// First bring-up after probe.
    Probe,
    /// The caller asked for it.
    Requested,
    /// Async SYSTEM_ERR (0x8002), with mb1..mb3.
    SystemError([u16; 3]),
    /// Request/response-queue DMA error or loop-init error (async 0x8003/0x8004/0x8017).
    FirmwareError(u16),
    /// host_status B8: the RISC paused.
    RiscPaused,
    /// A mailbox command got no answer.
    MailboxTimeout(MbxCommand),
    /// An IOCB the driver tracks got no completion even after its exchange
    /// was terminated.
    CompletionTimeout,
    /// An ABTS response kept failing for the same exchange (reference §9.8).
    AbtsLoop,
    /// Bring-up failed; retried after a backoff.
    BringUpRetry,
}

impl fmt::Display for ResetReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResetReason::Probe => f.write_str("probe"),
            ResetReason::Requested => f.write_str("requested"),
            ResetReason::SystemError([a, b, c]) => {
                write!(f, "system error {a:#06x} {b:#06x} {c:#06x}")
            }
            ResetReason::FirmwareError(code) => write!(f, "firmware error event {code:#06x}"),
            ResetReason::RiscPaused => f.write_str("RISC paused"),
            ResetReason::MailboxTimeout(c) => write!(f, "mailbox {c} timed out"),
            ResetReason::CompletionTimeout => f.write_str("IOCB completion timed out"),
            ResetReason::AbtsLoop => f.write_str("ABTS response loop"),
            ResetReason::BringUpRetry => f.write_str("bring-up retry"),
        }
    }
}

/// Why bring-up failed at a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BringUpError {
    /// A register did not reach the expected state in time.
    RegisterTimeout(&'static str),
    /// A mailbox command failed or timed out.
    Mailbox(MbxError),
    /// MAILBOX_REGISTER_TEST did not echo its pattern.
    RegisterTestMismatch,
    /// The firmware image is invalid.
    Image(crate::firmware::ImageError),
    /// DMA memory could not be written.
    Dma,
    /// The request ring could not take the MARKER.
    RingFull,
}

impl fmt::Display for BringUpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BringUpError::RegisterTimeout(what) => write!(f, "timeout waiting for {what}"),
            BringUpError::Mailbox(e) => write!(f, "{e}"),
            BringUpError::RegisterTestMismatch => f.write_str("mailbox register test mismatch"),
            BringUpError::Image(e) => write!(f, "{e}"),
            BringUpError::Dma => f.write_str("DMA write failed"),
            BringUpError::RingFull => f.write_str("request ring full"),
        }
    }
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogoutReason {
    /// LOGO, PRLO or TPRLO from the initiator.
    Logout,
    /// Firmware reported the port logged out (IMMED_NOTIFY PORT_LOGOUT, global LOGO/TPRLO).
    PortLogout,
    /// A new PLOGI from the same port (implicit logout).
    Replaced,
    /// The link stayed down longer than the port-down timeout.
    LinkLost,
    /// The port database says the port is no longer logged in (RSCN, PORT_UPDATE).
    PortDatabase,
    /// Chip reset: every login is void.
    ChipReset,
}

impl fmt::Display for LogoutReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogoutReason::Logout => "logout",
            LogoutReason::PortLogout => "port logged out",
            LogoutReason::Replaced => "replaced by new login",
            LogoutReason::LinkLost => "link lost",
            LogoutReason::PortDatabase => "port database",
            LogoutReason::ChipReset => "chip reset",
        })
    }
}

/// Something that happened in the driver worth a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A chip reset began.
    Reset(ResetReason),
    /// Bring-up failed; the next attempt follows after `retry_in`.
    BringUpFailed {
        /// What failed.
        error: BringUpError,
        /// Backoff before the next attempt.
        retry_in: Duration,
    },
    /// The firmware runs.
    FirmwareStarted {
        /// Chip generation.
        generation: Generation,
        /// GET_FIRMWARE_VERSION.
        version: FirmwareVersion,
        /// Target exchanges the firmware has (GET_RESOURCE_COUNTS mb3).
        exchanges: u16,
    },
    /// The port is up: the firmware is ready and the adapter id known.
    Online {
        /// Our port id.
        port_id: PortId,
        /// Topology.
        topology: Topology,
    },
    /// The firmware was initialised but the link did not come up in time;
    /// the port waits for LOOP_UP.
    WaitingForLink,
    /// Link up (async LOOP_UP).
    LinkUp(AsyncEvent),
    /// Link down (async LOOP_DOWN).
    LinkDown,
    /// A LIP (async LIP_OCCURRED/LIP_RESET) or IMMED_NOTIFY LIP_RESET.
    Lip,
    /// Another asynchronous event.
    Async(AsyncEvent),
    /// An initiator logged in (PRLI accepted): an I_T nexus exists.
    Login {
        /// Initiator WWPN.
        wwpn: Wwn,
        /// Its port id.
        port_id: PortId,
        /// Its N_Port handle.
        nport_handle: NportHandle,
    },
    /// An I_T nexus ended.
    Logout {
        /// Initiator WWPN.
        wwpn: Wwn,
        /// Its port id.
        port_id: PortId,
        /// Why.
        reason: LogoutReason,
    },
    /// A login was refused (no free session slot, or the core refused).
    LoginRefused {
        /// Initiator WWPN.
        wwpn: Wwn,
        /// Its port id.
        port_id: PortId,
    },
    /// An ABTS arrived.
    Abts {
        /// Exchange the initiator aborts.
        exchange: ExchangeAddr,
        /// From.
        port_id: PortId,
        /// Whether it was answered with BA_RJT at once (unknown exchange).
        rejected: bool,
    },
    /// An RSCN for this port id.
    Rscn(PortId),
    /// A completion whose handle no longer matches an outstanding IOCB was dropped.
    StaleCompletion {
        /// The handle.
        handle: IocbHandle,
        /// Entry type of the completion.
        entry_type: u8,
    },
    /// A completion whose exchange address differs from the IOCB's was dropped.
    ExchangeMismatch {
        /// The handle.
        handle: IocbHandle,
        /// Exchange the IOCB was for.
        expected: ExchangeAddr,
        /// Exchange in the completion.
        got: ExchangeAddr,
    },
    /// The chip reset voided commands; each was completed towards the core.
    CommandsVoided(u32),
    /// A tracked IOCB got no completion in time; its exchange is terminated.
    CompletionTimeout {
        /// The handle.
        handle: IocbHandle,
        /// Exchange.
        exchange: ExchangeAddr,
    },
    /// An ATIO with a corrupted length field was terminated.
    CorruptAtio(ExchangeAddr),
    /// An entry the driver does not handle arrived (type, queue).
    UnknownEntry {
        /// Entry type.
        entry_type: u8,
        /// `true` on the ATIO queue, `false` on the response queue.
        atio_queue: bool,
    },
    /// The firmware ran out of exchanges (ATIO exchange 0xFFFFFFFF or async REJECTED_FCP_CMD).
    ExchangesExhausted,
    /// A NOTIFY_ACK, ABTS_RESP or terminate the driver sent came back with an error.
    IocbError {
        /// Entry type.
        entry_type: u8,
        /// Completion status.
        status: u16,
    },
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Reset(r) => write!(f, "chip reset: {r}"),
            Event::BringUpFailed { error, retry_in } => {
                write!(f, "bring-up failed: {error}; retry in {retry_in:?}")
            }
            Event::FirmwareStarted {
                generation,
                version,
                exchanges,
            } => write!(f, "{generation} {version} running, {exchanges} exchanges"),
            Event::Online { port_id, topology } => {
                write!(f, "port online: id {port_id}, topology {topology}")
            }
            Event::WaitingForLink => f.write_str("firmware initialised, waiting for link"),
            Event::LinkUp(e) => write!(f, "link up ({e})"),
            Event::LinkDown => f.write_str("link down"),
            Event::Lip => f.write_str("LIP"),
            Event::Async(e) => write!(f, "{e}"),
            Event::Login {
                wwpn,
                port_id,
                nport_handle,
            } => write!(f, "login {wwpn} id {port_id} handle {nport_handle}"),
            Event::Logout {
                wwpn,
                port_id,
                reason,
            } => write!(f, "logout {wwpn} id {port_id}: {reason}"),
            Event::LoginRefused { wwpn, port_id } => {
                write!(f, "login refused {wwpn} id {port_id}")
            }
            Event::Abts {
                exchange,
                port_id,
                rejected,
            } => write!(
                f,
                "ABTS from {port_id} for exchange {exchange}{}",
                if *rejected { " (BA_RJT)" } else { "" }
            ),
            Event::Rscn(p) => write!(f, "RSCN {p}"),
            Event::StaleCompletion { handle, entry_type } => {
                write!(
                    f,
                    "stale completion {handle} (entry {entry_type:#04x}) dropped"
                )
            }
            Event::ExchangeMismatch {
                handle,
                expected,
                got,
            } => write!(
                f,
                "completion {handle} for exchange {got}, expected {expected}: dropped"
            ),
            Event::CommandsVoided(n) => write!(f, "{n} commands voided by chip reset"),
            Event::CompletionTimeout { handle, exchange } => {
                write!(
                    f,
                    "no completion for {handle} (exchange {exchange}): terminating"
                )
            }
            Event::CorruptAtio(x) => write!(f, "corrupt ATIO on exchange {x} terminated"),
            Event::UnknownEntry {
                entry_type,
                atio_queue,
            } => write!(
                f,
                "unhandled entry {entry_type:#04x} on {} queue",
                if *atio_queue { "ATIO" } else { "response" }
            ),
            Event::ExchangesExhausted => f.write_str("firmware out of exchanges"),
            Event::IocbError { entry_type, status } => {
                write!(
                    f,
                    "IOCB {entry_type:#04x} completed with status {status:#06x}"
                )
            }
        }
    }
}

/// An event with the time it was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRecord {
    /// When.
    pub at: Instant,
    /// What.
    pub event: Event,
}

impl fmt::Display for EventRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.at, self.event)
    }
}

/// A bounded FIFO of events over caller storage; when full the oldest is
/// overwritten and counted.
pub(crate) struct EventLog<'s> {
    buf: &'s mut [Option<EventRecord>],
    head: usize,
    len: usize,
    pub(crate) dropped: u64,
}

impl<'s> EventLog<'s> {
    pub(crate) fn new(buf: &'s mut [Option<EventRecord>]) -> EventLog<'s> {
        EventLog {
            buf,
            head: 0,
            len: 0,
            dropped: 0,
        }
    }

    pub(crate) fn push(&mut self, at: Instant, event: Event) {
        let cap = self.buf.len();
        if cap == 0 {
            self.dropped += 1;
            return;
        }
        if self.len == cap {
            self.head = (self.head + 1) % cap;
            self.len -= 1;
            self.dropped += 1;
        }
        let tail = (self.head + self.len) % cap;
        self.buf[tail] = Some(EventRecord { at, event });
        self.len += 1;
    }

    pub(crate) fn pop(&mut self) -> Option<EventRecord> {
        if self.len == 0 {
            return None;
        }
        let r = self.buf[self.head].take();
        self.head = (self.head + 1) % self.buf.len();
        self.len -= 1;
        r
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::ToString;

    #[test]
    fn bounded_fifo_drops_oldest() {
        let mut st = [None; 3];
        let mut log = EventLog::new(&mut st);
        for i in 0..5u64 {
            log.push(Instant::from_millis(i), Event::CommandsVoided(i as u32));
        }
        assert_eq!(log.len(), 3);
        assert_eq!(log.dropped, 2);
        let r = log.pop().unwrap();
        assert_eq!(r.event, Event::CommandsVoided(2));
        assert_eq!(
            r.to_string(),
            "[0.002000000s] 2 commands voided by chip reset"
        );
        assert_eq!(log.pop().unwrap().event, Event::CommandsVoided(3));
        assert_eq!(log.pop().unwrap().event, Event::CommandsVoided(4));
        assert!(log.pop().is_none());
    }

    #[test]
    fn display_lines() {
        assert_eq!(
            Event::Reset(ResetReason::SystemError([1, 2, 3])).to_string(),
            "chip reset: system error 0x0001 0x0002 0x0003"
        );
        assert_eq!(
            Event::Abts {
                exchange: ExchangeAddr(5),
                port_id: PortId::new(0x010203),
                rejected: true
            }
            .to_string(),
            "ABTS from 010203 for exchange 0x00000005 (BA_RJT)"
        );
        assert_eq!(
            Event::StaleCompletion {
                handle: IocbHandle::new(3, 0, 2),
                entry_type: 0x12
            }
            .to_string(),
            "stale completion h3.2 (entry 0x12) dropped"
        );
    }
}
