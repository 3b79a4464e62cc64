//! Fault injection (after smoltcp's `FaultInjector`): every fault is switchable per
//! scenario, drawn from its own seeded random stream, and recorded in the trace.
//!
//! * Frame layer — [`FrameFaults`]: drop, duplicate, corrupt (one bit flipped after the CRC
//!   was computed, so the receiver discards it and the pcap shows a bad CRC), delay.
//! * Completion layer — lose or delay a CTIO completion (the firmware did the work, the
//!   response entry never / late reaches the driver).
//! * Mailbox engine — stall: a command is taken and never completed (driver timeout).
//! * Chip — system error: async 0x8002, RISC paused in `host_status` (B8), firmware halted
//!   until the driver resets the chip.
//! * Link — bounce (down for a while, then up) and LIP, at random or at scheduled times.
//! * Initiators — logout with commands outstanding, ABTS storms (aborting random
//!   outstanding commands) — driven by the workload generator.
//! * Exchanges — a small firmware exchange count ([`crate::FirmwareConfig::exchange_count`])
//!   makes the firmware run out: ATIOs with exchange address 0xFFFFFFFF, or the firmware
//!   answers BUSY itself ([`crate::ExchangeExhaustion`]).
//!
//! Scheduled faults ([`ScheduledFault`]) happen at a given time
//! ([`crate::Sim::schedule_fault`]).

use core::fmt;
use core::time::Duration;

use rscst_fw::PortId;

use crate::rng::SimRng;

/// Which frames the frame faults apply to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FrameScope {
    /// Every frame on the fabric.
    #[default]
    All,
    /// Frames sent to the simulated HBA.
    ToHba,
    /// Frames sent by the simulated HBA.
    FromHba,
    /// FCP frames only (no ELS/BLS/fabric services), both directions.
    FcpOnly,
}

/// Per-frame fault probabilities.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FrameFaults {
    /// Probability a frame is lost.
    pub drop: f64,
    /// Probability a frame is delivered twice.
    pub duplicate: f64,
    /// Probability a frame has one bit flipped (bad CRC).
    pub corrupt: f64,
    /// Probability a frame is delayed by [`FrameFaults::delay_by`] (may reorder frames).
    pub delay: f64,
    /// The extra delay.
    pub delay_by: Duration,
    /// Which frames.
    pub scope: FrameScope,
}

/// The fault configuration of a scenario. `FaultConfig::default()` injects nothing.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FaultConfig {
    /// Seed of the fault streams (independent of the scenario seed, so turning a fault on
    /// does not change the workload's random choices).
    pub seed: u64,
    /// Frame faults.
    pub frames: FrameFaults,
    /// Probability a CTIO completion entry is never posted.
    pub ctio_completion_lost: f64,
    /// Probability a CTIO completion entry is posted late.
    pub ctio_completion_delayed: f64,
    /// How late.
    pub ctio_completion_delay: Duration,
    /// Probability the firmware takes a mailbox command and never completes it (only after
    /// EXECUTE_FIRMWARE; a stalled firmware answers nothing until a chip reset).
    pub mailbox_stall: f64,
    /// Probability, per request IOCB processed, of a firmware system error.
    pub system_error_per_iocb: f64,
    /// Mean interval between random link bounces of the HBA's link (`None`: never).
    pub link_bounce_every: Option<Duration>,
    /// How long a bounced link stays down.
    pub link_down_for: Duration,
    /// Mean interval between random LIPs (`None`: never).
    pub lip_every: Option<Duration>,
}

impl FaultConfig {
    /// Only frame faults.
    pub fn frames(seed: u64, frames: FrameFaults) -> FaultConfig {
        FaultConfig {
            seed,
            frames,
            ..FaultConfig::default()
        }
    }
}

/// A fault that happens at a chosen time ([`crate::Sim::schedule_fault`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduledFault {
    /// The HBA's link goes down, and comes back after the duration.
    LinkBounce(Duration),
    /// A LIP / link reset on the HBA's link (logins kept, open exchanges aborted).
    Lip,
    /// Firmware system error (async 0x8002, RISC paused).
    SystemError,
    /// The RISC halts without a word: no async event, no interrupt; only host
    /// status (B8, RISC paused) shows it, for a driver that reads it.
    RiscHalt,
    /// The next mailbox command is taken and never completed.
    StallNextMailbox,
    /// The next CTIO completion is lost.
    LoseNextCtioCompletion,
    /// The next CTIO completion is posted this much later.
    DelayNextCtioCompletion(Duration),
    /// The next frame sent to the HBA is lost.
    DropNextFrameToHba,
    /// An initiator logs out (LOGO) now, with whatever it has outstanding.
    InitiatorLogout(crate::InitiatorId),
    /// An initiator sends ABTS for up to this many of its outstanding commands at once.
    AbtsStorm(crate::InitiatorId, u32),
}

/// A fault as recorded in the trace.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InjectedFault {
    /// A frame was dropped.
    FrameDropped(FrameId),
    /// A frame was delivered twice.
    FrameDuplicated(FrameId),
    /// A frame got a flipped bit.
    FrameCorrupted(FrameId),
    /// A frame was delayed.
    FrameDelayed(FrameId, Duration),
    /// A CTIO completion was never posted.
    CtioCompletionLost {
        /// The exchange.
        exchange: u32,
    },
    /// A CTIO completion was posted late.
    CtioCompletionDelayed {
        /// The exchange.
        exchange: u32,
        /// By how much.
        by: Duration,
    },
    /// The firmware stalled on a mailbox command.
    MailboxStall {
        /// The command.
        mb0: u16,
    },
    /// Firmware system error.
    SystemError,
    /// The RISC halted silently.
    RiscHalt,
    /// The HBA link bounced.
    LinkBounce(Duration),
    /// A LIP on the HBA link.
    Lip,
    /// An initiator logged out with commands outstanding.
    InitiatorLogout(PortId),
    /// An initiator aborted several commands at once.
    AbtsStorm(PortId, u32),
}

/// Enough of a frame to name it in a fault record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameId {
    /// Sender.
    pub from: PortId,
    /// Receiver.
    pub to: PortId,
    /// R_CTL.
    pub r_ctl: u8,
    /// OX_ID.
    pub ox_id: u16,
}

impl fmt::Display for FrameId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}>{} r_ctl={:#04x} ox_id={:#06x}",
            self.from, self.to, self.r_ctl, self.ox_id
        )
    }
}

impl fmt::Display for InjectedFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InjectedFault::FrameDropped(id) => write!(f, "frame dropped {id}"),
            InjectedFault::FrameDuplicated(id) => write!(f, "frame duplicated {id}"),
            InjectedFault::FrameCorrupted(id) => write!(f, "frame corrupted {id}"),
            InjectedFault::FrameDelayed(id, by) => write!(f, "frame delayed {by:?} {id}"),
            InjectedFault::CtioCompletionLost { exchange } => {
                write!(f, "CTIO completion lost xchg={exchange:#010x}")
            }
            InjectedFault::CtioCompletionDelayed { exchange, by } => {
                write!(f, "CTIO completion delayed {by:?} xchg={exchange:#010x}")
            }
            InjectedFault::MailboxStall { mb0 } => write!(f, "mailbox stall mb0={mb0:#06x}"),
            InjectedFault::SystemError => f.write_str("firmware system error"),
            InjectedFault::RiscHalt => f.write_str("RISC halted silently"),
            InjectedFault::LinkBounce(d) => write!(f, "link bounce, down {d:?}"),
            InjectedFault::Lip => f.write_str("LIP"),
            InjectedFault::InitiatorLogout(p) => write!(f, "initiator {p} logout"),
            InjectedFault::AbtsStorm(p, n) => write!(f, "initiator {p} ABTS storm x{n}"),
        }
    }
}

/// What happens to one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct FrameFate {
    pub drop: bool,
    pub duplicate: bool,
    pub corrupt: bool,
    pub delay: Option<Duration>,
}

/// The random side of fault injection.
#[derive(Debug, Clone)]
pub(crate) struct FaultInjector {
    pub cfg: FaultConfig,
    frames: SimRng,
    ctio: SimRng,
    mbx: SimRng,
    chip: SimRng,
    pub link: SimRng,
    pub(crate) lose_next_ctio: bool,
    pub(crate) delay_next_ctio: Option<Duration>,
    pub(crate) stall_next_mailbox: bool,
    pub(crate) drop_next_to_hba: bool,
}

impl FaultInjector {
    pub(crate) fn new(cfg: FaultConfig) -> FaultInjector {
        let root = SimRng::new(cfg.seed);
        FaultInjector {
            frames: root.fork(1),
            ctio: root.fork(2),
            mbx: root.fork(3),
            chip: root.fork(4),
            link: root.fork(5),
            cfg,
            lose_next_ctio: false,
            delay_next_ctio: None,
            stall_next_mailbox: false,
            drop_next_to_hba: false,
        }
    }

    /// Whether [`FaultInjector::frame`] can return anything but "deliver".
    #[inline]
    pub(crate) fn frame_faults_possible(&self) -> bool {
        let f = &self.cfg.frames;
        self.drop_next_to_hba
            || f.drop > 0.0
            || f.duplicate > 0.0
            || f.corrupt > 0.0
            || f.delay > 0.0
    }

    pub(crate) fn frame(&mut self, to_hba: bool, from_hba: bool, fcp: bool) -> FrameFate {
        if to_hba && self.drop_next_to_hba {
            self.drop_next_to_hba = false;
            return FrameFate {
                drop: true,
                ..FrameFate::default()
            };
        }
        let ff = self.cfg.frames;
        let in_scope = match ff.scope {
            FrameScope::All => true,
            FrameScope::ToHba => to_hba,
            FrameScope::FromHba => from_hba,
            FrameScope::FcpOnly => fcp,
        };
        if !in_scope {
            return FrameFate::default();
        }
        let r = &mut self.frames;
        FrameFate {
            drop: r.chance(ff.drop),
            duplicate: r.chance(ff.duplicate),
            corrupt: r.chance(ff.corrupt),
            delay: if r.chance(ff.delay) {
                Some(ff.delay_by)
            } else {
                None
            },
        }
    }

    /// `Some(None)` = lose the completion, `Some(Some(d))` = delay it by `d`.
    pub(crate) fn ctio_completion(&mut self) -> Option<Option<Duration>> {
        if self.lose_next_ctio {
            self.lose_next_ctio = false;
            return Some(None);
        }
        if let Some(d) = self.delay_next_ctio.take() {
            return Some(Some(d));
        }
        if self.ctio.chance(self.cfg.ctio_completion_lost) {
            return Some(None);
        }
        if self.ctio.chance(self.cfg.ctio_completion_delayed) {
            return Some(Some(self.cfg.ctio_completion_delay));
        }
        None
    }

    pub(crate) fn mailbox_stall(&mut self) -> bool {
        if self.stall_next_mailbox {
            self.stall_next_mailbox = false;
            return true;
        }
        self.mbx.chance(self.cfg.mailbox_stall)
    }

    pub(crate) fn system_error(&mut self) -> bool {
        self.chip.chance(self.cfg.system_error_per_iocb)
    }

    /// An exponentially distributed interval with the given mean.
    pub(crate) fn next_interval(rng: &mut SimRng, mean: Duration) -> Duration {
        let u = rng.unit().max(1e-12);
        let secs = -u.ln() * mean.as_secs_f64();
        Duration::from_secs_f64(secs.min(1e9))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_injects_nothing_and_rates_are_honoured() {
        let mut inj = FaultInjector::new(FaultConfig::default());
        for _ in 0..1000 {
            assert_eq!(inj.frame(true, false, true), FrameFate::default());
            assert_eq!(inj.ctio_completion(), None);
            assert!(!inj.mailbox_stall());
            assert!(!inj.system_error());
        }
        let mut inj = FaultInjector::new(FaultConfig::frames(
            9,
            FrameFaults {
                drop: 0.5,
                scope: FrameScope::ToHba,
                ..FrameFaults::default()
            },
        ));
        let drops = (0..10_000)
            .filter(|_| inj.frame(true, false, true).drop)
            .count();
        assert!((4_500..5_500).contains(&drops), "{drops}");
        assert!(
            !(0..100).any(|_| inj.frame(false, true, true).drop),
            "out of scope"
        );
        inj.lose_next_ctio = true;
        assert_eq!(inj.ctio_completion(), Some(None));
        assert_eq!(inj.ctio_completion(), None);
        inj.delay_next_ctio = Some(Duration::from_millis(3));
        assert_eq!(inj.ctio_completion(), Some(Some(Duration::from_millis(3))));
        assert_eq!(inj.ctio_completion(), None);
    }
}
