//! The mailbox engine: one command at a time, as an explicit state machine.
//!
//! Reference §3.1: the driver writes all 32 mailbox registers (inputs with
//! their values, the rest 0, gotcha 17), sets the host interrupt, and the
//! firmware answers with `host_status = (mb0 << 16) | B15 | type` (0x10/0x11,
//! or 0x01/0x02 from the boot ROM). The engine is `Idle → Posted →
//! Completed | TimedOut`; the deadline is computed from the `now` given to
//! [`MailboxEngine::post`] and checked by [`MailboxEngine::check_timeout`].
//! Nothing here blocks or sleeps.

use core::fmt;
use core::time::Duration;

use rscst_core::Instant;
use rscst_fw::mailbox::{Mailboxes, MbMask, MbxCommand, MbxStatus};
use rscst_fw::pci::Generation;
use rscst_fw::regs::{HccrCommand, HostStatus, MAILBOX_COUNT};
use rscst_hba::Mmio;

use crate::regs::Regs;

/// Why a mailbox command did not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MbxError {
    /// The firmware completed the command with a status other than 0x4000.
    Status {
        /// The command.
        cmd: MbxCommand,
        /// mb0 of the completion.
        status: MbxStatus,
        /// mb1 of the completion (detail code of 0x4005).
        mb1: u16,
    },
    /// No completion before the deadline.
    Timeout {
        /// The command.
        cmd: MbxCommand,
    },
}

impl fmt::Display for MbxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MbxError::Status { cmd, status, mb1 } => {
                write!(f, "mailbox {cmd} failed: {status} (mb1 {mb1:#06x})")
            }
            MbxError::Timeout { cmd } => write!(f, "mailbox {cmd} timed out"),
        }
    }
}

impl core::error::Error for MbxError {}

/// The state of the one mailbox channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MbxState {
    /// No command outstanding.
    Idle,
    /// Written and doorbell rung; waiting for the completion interrupt.
    Posted {
        cmd: MbxCommand,
        outputs: MbMask,
        deadline: Instant,
    },
    /// The firmware answered; the result waits to be taken.
    Completed { cmd: MbxCommand, result: Mailboxes },
    /// The deadline passed with no answer.
    TimedOut { cmd: MbxCommand },
}

/// The mailbox channel.
#[derive(Debug)]
pub(crate) struct MailboxEngine {
    state: MbxState,
    generation: Generation,
    /// Completions that arrived while no command was posted.
    pub(crate) spurious: u32,
}

impl MailboxEngine {
    pub(crate) fn new(generation: Generation) -> MailboxEngine {
        MailboxEngine {
            state: MbxState::Idle,
            generation,
            spurious: 0,
        }
    }

    /// Whether a new command may be posted.
    pub(crate) fn is_idle(&self) -> bool {
        self.state == MbxState::Idle
    }

    /// The deadline of the posted command.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        match self.state {
            MbxState::Posted { deadline, .. } => Some(deadline),
            _ => None,
        }
    }

    /// Forget everything (chip reset): a late completion is then spurious.
    pub(crate) fn reset(&mut self) {
        self.state = MbxState::Idle;
    }

    fn registers(&self, cmd: MbxCommand) -> (MbMask, MbMask) {
        match cmd.registers(self.generation) {
            Some(u) => (u.inputs, u.outputs),
            None => (MbMask::range(0, 31), MbMask::range(0, 31)),
        }
    }

    /// Post `mb` (mb0 = opcode). `extra_inputs` adds registers the command
    /// uses conditionally (e.g. INITIALIZE_FIRMWARE's extended ICB). Returns
    /// `false` (and writes nothing) if a command is outstanding.
    pub(crate) fn post<M: Mmio>(
        &mut self,
        regs: &Regs<'_, M>,
        now: Instant,
        mb: &Mailboxes,
        extra_inputs: MbMask,
        timeout: Duration,
    ) -> bool {
        if !self.is_idle() {
            return false;
        }
        let cmd = mb.command();
        let (inputs, outputs) = self.registers(cmd);
        let value = mb.masked(inputs.with(extra_inputs));
        for n in 0..MAILBOX_COUNT {
            regs.set_mailbox(n, value.get(n));
        }
        regs.hccr(HccrCommand::SetHostInt);
        self.state = MbxState::Posted {
            cmd,
            outputs,
            deadline: now.saturating_add(timeout),
        };
        true
    }

    /// A mailbox-completion interrupt (`host_status` type 0x01/0x02/0x10/0x11):
    /// read the command's output registers. Returns `false` if no command was
    /// posted (the completion is counted as spurious and dropped).
    pub(crate) fn on_completion<M: Mmio>(&mut self, regs: &Regs<'_, M>, hs: HostStatus) -> bool {
        let MbxState::Posted { cmd, outputs, .. } = self.state else {
            self.spurious = self.spurious.saturating_add(1);
            return false;
        };
        let mut result = Mailboxes([0; MAILBOX_COUNT]);
        result.set(0, hs.mailbox0());
        for n in outputs.iter().filter(|&n| n != 0) {
            result.set(n, regs.mailbox(n));
        }
        self.state = MbxState::Completed { cmd, result };
        true
    }

    /// Move a posted command whose deadline has passed to `TimedOut`.
    pub(crate) fn check_timeout(&mut self, now: Instant) -> bool {
        if let MbxState::Posted { cmd, deadline, .. } = self.state
            && now >= deadline
        {
            self.state = MbxState::TimedOut { cmd };
            return true;
        }
        false
    }

    /// Take the outcome of a finished command (`None` while idle or posted).
    pub(crate) fn take(&mut self) -> Option<(MbxCommand, Result<Mailboxes, MbxError>)> {
        match self.state {
            MbxState::Completed { cmd, result } => {
                self.state = MbxState::Idle;
                let status = result.status();
                if status.is_ok() {
                    Some((cmd, Ok(result)))
                } else {
                    Some((
                        cmd,
                        Err(MbxError::Status {
                            cmd,
                            status,
                            mb1: result.get(1),
                        }),
                    ))
                }
            }
            MbxState::TimedOut { cmd } => {
                self.state = MbxState::Idle;
                Some((cmd, Err(MbxError::Timeout { cmd })))
            }
            MbxState::Idle | MbxState::Posted { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::regs::RegMap;
    use core::cell::RefCell;
    use rscst_fw::pci::probe;
    use rscst_hba::RegOffset;
    use std::vec::Vec;

    /// Records register writes; mailboxes read back what was last written.
    #[derive(Default)]
    struct Rec {
        writes: RefCell<Vec<(u32, u32)>>,
        mbx: RefCell<[u16; 32]>,
    }

    impl Mmio for Rec {
        fn read32(&self, _: RegOffset) -> u32 {
            0
        }
        fn write32(&self, o: RegOffset, v: u32) {
            self.writes.borrow_mut().push((o.0, v));
        }
        fn read16(&self, o: RegOffset) -> u16 {
            rscst_fw::regs::mailbox_index(o.0).map_or(0xFFFF, |n| self.mbx.borrow()[n])
        }
        fn write16(&self, o: RegOffset, v: u16) {
            self.writes.borrow_mut().push((o.0, v as u32));
            if let Some(n) = rscst_fw::regs::mailbox_index(o.0) {
                self.mbx.borrow_mut()[n] = v;
            }
        }
    }

    fn regs(m: &Rec) -> Regs<'_, Rec> {
        Regs {
            regs: m,
            mq: None,
            map: RegMap::new(probe(0x1077, 0x2532).unwrap().gen_info),
        }
    }

    #[test]
    fn post_writes_all_32_registers_then_doorbell() {
        let hw = Rec::default();
        let r = regs(&hw);
        let mut e = MailboxEngine::new(Generation::Isp25xx);
        let mut mb = Mailboxes::load_risc_ram_extended(0x0010_0000, 0x1234_5678_9abc, 0x400);
        mb.set(20, 0x7777); // not an input: must be written as 0
        assert!(e.post(&r, Instant::ZERO, &mb, MbMask(0), Duration::from_secs(30)));
        let w = hw.writes.borrow();
        assert_eq!(w.len(), 33);
        for (n, (off, v)) in w[..32].iter().enumerate() {
            assert_eq!(*off, 0x80 + 2 * n as u32);
            let want = if n == 20 { 0 } else { mb.get(n) as u32 };
            assert_eq!(*v, want, "mb{n}");
        }
        assert_eq!(w[32], (0x48, 0x5000_0000));
        drop(w);
        // A second post while one is outstanding is refused and writes nothing.
        assert!(!e.post(&r, Instant::ZERO, &mb, MbMask(0), Duration::from_secs(1)));
        assert_eq!(hw.writes.borrow().len(), 33);
    }

    #[test]
    fn completion_reads_outputs_and_judges_status() {
        let hw = Rec::default();
        let r = regs(&hw);
        let mut e = MailboxEngine::new(Generation::Isp25xx);
        assert!(e.post(
            &r,
            Instant::ZERO,
            &Mailboxes::mailbox_register_test(),
            MbMask(0),
            Duration::from_secs(1)
        ));
        assert!(e.take().is_none());
        hw.mbx.borrow_mut()[3] = 0x1111;
        let hs = HostStatus((0x4000 << 16) | HostStatus::INT_PENDING | 0x10);
        assert!(e.on_completion(&r, hs));
        let (cmd, res) = e.take().unwrap();
        assert_eq!(cmd, MbxCommand::MailboxRegisterTest);
        let mb = res.unwrap();
        assert_eq!(mb.get(0), 0x4000);
        assert_eq!(mb.get(3), 0x1111);
        assert!(e.is_idle());

        // Failure status.
        assert!(e.post(
            &r,
            Instant::ZERO,
            &Mailboxes::verify_checksum(0x10_0000),
            MbMask(0),
            Duration::from_secs(1)
        ));
        hw.mbx.borrow_mut()[1] = 0x0042;
        let hs = HostStatus((0x4010 << 16) | HostStatus::INT_PENDING | 0x11);
        assert!(e.on_completion(&r, hs));
        assert_eq!(
            e.take().unwrap().1,
            Err(MbxError::Status {
                cmd: MbxCommand::VerifyChecksum,
                status: MbxStatus::ChecksumError,
                mb1: 0x42
            })
        );
        // A completion with nothing posted is spurious.
        assert!(!e.on_completion(&r, hs));
        assert_eq!(e.spurious, 1);
    }

    #[test]
    fn timeout_from_now() {
        let hw = Rec::default();
        let r = regs(&hw);
        let mut e = MailboxEngine::new(Generation::Isp25xx);
        let t0 = Instant::from_millis(1000);
        e.post(
            &r,
            t0,
            &Mailboxes::new(MbxCommand::GetFirmwareState),
            MbMask(0),
            Duration::from_millis(500),
        );
        assert_eq!(e.deadline(), Some(Instant::from_millis(1500)));
        assert!(!e.check_timeout(Instant::from_millis(1499)));
        assert!(e.check_timeout(Instant::from_millis(1500)));
        assert_eq!(
            e.take().unwrap().1,
            Err(MbxError::Timeout {
                cmd: MbxCommand::GetFirmwareState
            })
        );
        // A late completion after the timeout was taken is dropped.
        let hs = HostStatus((0x4000 << 16) | HostStatus::INT_PENDING | 0x10);
        assert!(!e.on_completion(&r, hs));
        assert!(e.take().is_none());
    }
}
