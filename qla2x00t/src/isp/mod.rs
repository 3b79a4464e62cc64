//! The driver: one ISP port, its rings and tables, polled with `poll(now)`.
//!
//! `Isp` owns the platform (registers, DMA, interrupt line), the three rings
//! in DMA memory, the mailbox engine, the bring-up state machine and the
//! command/TMF/session tables over caller storage. `Isp::poll` services the
//! interrupt status, steps the bring-up, drains the ATIO and response rings
//! into core calls, delivers deferred completions and rings the request
//! doorbell once. The core calls back through `rscst_core::Transport`,
//! implemented for `Isp` in `transport.rs`.

/// Register access from the fields, so the borrow checker sees a borrow of
/// `platform` only and other fields stay free to mutate.
macro_rules! regs {
    ($s:expr) => {
        $crate::regs::Regs {
            regs: $s.platform.regs(),
            mq: $s.platform.mq_regs(),
            map: $s.map,
        }
    };
}

mod bringup;
mod command;
mod hw;
mod online;
mod session;
mod slots;
mod transport;

use core::time::Duration;

use rscst_core::Instant;
use rscst_fw::PortId;
use rscst_fw::mailbox::{FirmwareVersion, ResourceCounts, Topology};
use rscst_fw::pci::ChipInfo;
use rscst_fw::regs::{HccrCommand, IntType};
use rscst_hba::{DmaError, DmaPool, DmaRegion, Irq, PciConfig, Platform};

use crate::config::IspConfig;
use crate::core_api::CoreApi;
use crate::event::{Event, EventLog, EventRecord, ResetReason};
use crate::firmware::{FirmwareImage, FirmwareSource, ImageError};
use crate::handle::{HandleSlot, HandleTable};
use crate::mailbox::MailboxEngine;
use crate::regs::{RegMap, Regs};
use crate::ring::{AtioRing, ENTRY_LEN, RequestRing, ResponseRing};
use crate::stats::Stats;

pub use bringup::Phase;
pub(crate) use slots::*;
pub use slots::{CmdSlot, Session, SessionInfo, SessionState, TmfSlot};

/// Whether a `poll` did anything (spin again) or found nothing (may sleep).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Nothing happened.
    Idle,
    /// Work was done; more may be ready.
    Busy,
}

impl Progress {
    fn from_bool(b: bool) -> Progress {
        if b { Progress::Busy } else { Progress::Idle }
    }
}

/// Why `Isp::probe` failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProbeError {
    /// The PCI function is not a supported ISP.
    Pci(rscst_fw::pci::ProbeError),
    /// The chip keeps its queue pointers in the MQ BAR, which the platform lacks.
    MissingMqBar,
    /// DMA memory for the rings could not be allocated.
    Dma(DmaError),
    /// The firmware image is invalid.
    Image(ImageError),
    /// The storage or configuration cannot work (the text says why).
    Config(&'static str),
}

impl core::fmt::Display for ProbeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ProbeError::Pci(e) => write!(f, "{e}"),
            ProbeError::MissingMqBar => f.write_str("MQ register BAR not mapped"),
            ProbeError::Dma(e) => write!(f, "{e}"),
            ProbeError::Image(e) => write!(f, "{e}"),
            ProbeError::Config(why) => write!(f, "bad configuration: {why}"),
        }
    }
}

impl core::error::Error for ProbeError {}

/// Caller storage of one `Isp`: commands (≥ the core's command slots), TMFs
/// (≥ the core's TMF slots), sessions, outstanding IOCB handles and the
/// event queue. `const fn new`, so it can live in a `static`.
pub struct IspStorage<
    const CMDS: usize,
    const TMFS: usize,
    const SESSIONS: usize,
    const HANDLES: usize,
    const EVENTS: usize,
> {
    cmds: [CmdSlot; CMDS],
    tmfs: [TmfSlot; TMFS],
    sessions: [Session; SESSIONS],
    handles: [HandleSlot<Owner>; HANDLES],
    events: [Option<EventRecord>; EVENTS],
}

impl<
    const CMDS: usize,
    const TMFS: usize,
    const SESSIONS: usize,
    const HANDLES: usize,
    const EVENTS: usize,
> IspStorage<CMDS, TMFS, SESSIONS, HANDLES, EVENTS>
{
    /// Empty storage.
    pub const fn new() -> Self {
        IspStorage {
            cmds: [CmdSlot::EMPTY; CMDS],
            tmfs: [TmfSlot::EMPTY; TMFS],
            sessions: [Session::EMPTY; SESSIONS],
            handles: [HandleSlot::EMPTY; HANDLES],
            events: [None; EVENTS],
        }
    }
}

impl<
    const CMDS: usize,
    const TMFS: usize,
    const SESSIONS: usize,
    const HANDLES: usize,
    const EVENTS: usize,
> Default for IspStorage<CMDS, TMFS, SESSIONS, HANDLES, EVENTS>
{
    fn default() -> Self {
        Self::new()
    }
}

/// The DMA memory the driver owns for its lifetime.
pub(crate) struct IspDma<R: DmaRegion> {
    pub(crate) req: R,
    pub(crate) rsp: R,
    pub(crate) atio: R,
    pub(crate) icb: R,
    pub(crate) scratch: R,
}

/// What the firmware told us at start.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FwInfo {
    pub(crate) version: Option<FirmwareVersion>,
    pub(crate) resources: Option<ResourceCounts>,
    pub(crate) port_id: PortId,
    pub(crate) topology: Option<Topology>,
}

/// A mailbox command the online port issues on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Job {
    /// GET_ADAPTER_ID after LOOP_UP.
    AdapterId,
    /// LINK_INITIALIZATION when GET_ADAPTER_ID asks for it.
    LinkInit,
    /// GET_PORT_DATABASE of a session's N_Port handle (RSCN, PORT_UPDATE,
    /// link back up).
    PortDb { session: u16, nport: u16, seq: u32 },
}

pub(crate) const JOBS: usize = 4;
/// Driver-generated answers that can wait for ring space.
pub(crate) const DEFERRED: usize = 64;

/// One ISP port: the target-mode driver.
///
/// `REQ`, `RSP` and `ATIO` are the ring lengths in entries.
pub struct Isp<'s, P: Platform, const REQ: usize, const RSP: usize, const ATIO: usize> {
    pub(crate) platform: P,
    pub(crate) chip: &'static ChipInfo,
    pub(crate) map: RegMap,
    pub(crate) config: IspConfig<'s>,
    pub(crate) image: Option<FirmwareImage<'s>>,
    pub(crate) dma: IspDma<<P::Dma as DmaPool>::Region>,
    pub(crate) req: RequestRing<REQ>,
    pub(crate) rsp: ResponseRing<RSP>,
    pub(crate) atio: AtioRing<ATIO>,
    pub(crate) mbx: MailboxEngine,
    pub(crate) up: bringup::BringUp,
    pub(crate) fw: FwInfo,
    pub(crate) link_up: bool,
    pub(crate) marker_needed: bool,
    pub(crate) handles: HandleTable<'s, Owner>,
    pub(crate) cmds: &'s mut [CmdSlot],
    pub(crate) tmfs: &'s mut [TmfSlot],
    pub(crate) sessions: &'s mut [Session],
    pub(crate) held: [HeldNotify; HELD_NOTIFIES],
    /// Some notify may be held (`held` has a used entry only if this is set).
    pub(crate) held_any: bool,
    /// Some session may have `check_pending` set (only if this is set).
    pub(crate) checks_queued: bool,
    pub(crate) cmd_pending: PendingList,
    pub(crate) tmf_pending: PendingList,
    pub(crate) events: EventLog<'s>,
    pub(crate) stats: Stats,
    /// Chip resets so far; slots created in an older epoch are void.
    pub(crate) epoch: u16,
    pub(crate) jobs: [Option<Job>; JOBS],
    /// Some `jobs` entry may be set (only if this is set).
    pub(crate) jobs_queued: bool,
    /// The job whose mailbox command is outstanding.
    pub(crate) job_running: Option<Job>,
    pub(crate) reset_requested: bool,
    /// Read host status at the next poll even if the interrupt line is quiet
    /// (set by the periodic sweep, and by `wait_for_work` when it found a
    /// cause; see `service_interrupts`).
    pub(crate) status_check_due: bool,
    /// Commands the driver tracks (live command slots).
    pub(crate) live_cmds: usize,
    /// Busy threshold in live commands (from the firmware's exchange count).
    pub(crate) busy_threshold: usize,
    pub(crate) sid_cache: Option<(PortId, u16)>,
    pub(crate) core_checked: bool,
    pub(crate) now: Instant,
    pub(crate) next_sweep: Instant,
    /// The firmware ran out of exchanges and this was reported.
    pub(crate) exhausted: bool,
    /// Login counter (see `Session::login_seq`).
    pub(crate) login_seq: u32,
    /// Answers the driver generated (BUSY, terminate, BA_RJT, dropped TMF
    /// answers) that did not fit the request ring: posted first thing at the
    /// next poll, never dropped.
    pub(crate) deferred: [[u8; ENTRY_LEN]; DEFERRED],
    pub(crate) deferred_len: usize,
    pub(crate) job_not_before: Instant,
    /// `config.completion_timeout` in nanoseconds (saturated), added to
    /// `now` for the deadline of every IOCB.
    pub(crate) completion_nanos: u64,
}

impl<'s, P: Platform, const REQ: usize, const RSP: usize, const ATIO: usize>
    Isp<'s, P, REQ, RSP, ATIO>
{
    /// Probe the PCI function, choose the register map from the generation
    /// table, enable bus mastering and allocate the rings. Nothing is sent to
    /// the chip yet: the first `poll` starts the bring-up.
    pub fn probe<
        const CMDS: usize,
        const TMFS: usize,
        const SESSIONS: usize,
        const HANDLES: usize,
        const EVENTS: usize,
    >(
        platform: P,
        storage: &'s mut IspStorage<CMDS, TMFS, SESSIONS, HANDLES, EVENTS>,
        config: IspConfig<'s>,
    ) -> Result<Self, ProbeError> {
        if REQ < 16 || RSP < 16 || ATIO < 16 || REQ > 0xFFFF || RSP > 0xFFFF || ATIO > 0xFFFF {
            return Err(ProbeError::Config("ring lengths must be in 16..=65535"));
        }
        if CMDS == 0 || CMDS >= 0xFFFF || TMFS == 0 || TMFS >= 0xFFFF || SESSIONS >= 0xFFFF {
            return Err(ProbeError::Config("table sizes must be in 1..65535"));
        }
        if HANDLES < 4 {
            return Err(ProbeError::Config("too few IOCB handles"));
        }
        let id = platform.pci().id();
        let chip = rscst_fw::pci::probe(id.vendor, id.device).map_err(ProbeError::Pci)?;
        let map = RegMap::new(chip.gen_info);
        if map.needs_mq_bar() && platform.mq_regs().is_none() {
            return Err(ProbeError::MissingMqBar);
        }
        let image = match config.firmware {
            FirmwareSource::Image(bytes) => {
                Some(FirmwareImage::parse(bytes).map_err(ProbeError::Image)?)
            }
            FirmwareSource::Flash { .. } => None,
        };
        platform.pci().enable_bus_master();
        let pool = platform.dma();
        // One extra entry per ring (reference §6.3: shadow indexes live there).
        let alloc = |entries: usize| pool.alloc((entries + 1) * ENTRY_LEN, 4096);
        let dma = IspDma {
            req: alloc(REQ).map_err(ProbeError::Dma)?,
            rsp: alloc(RSP).map_err(ProbeError::Dma)?,
            atio: alloc(ATIO).map_err(ProbeError::Dma)?,
            icb: pool
                .alloc(rscst_fw::icb::ICB_LEN, 64)
                .map_err(ProbeError::Dma)?,
            scratch: pool.alloc(4096, 64).map_err(ProbeError::Dma)?,
        };
        let IspStorage {
            cmds,
            tmfs,
            sessions,
            handles,
            events,
        } = storage;
        Ok(Isp {
            chip,
            map,
            image,
            dma,
            req: RequestRing::new(),
            rsp: ResponseRing::new(),
            atio: AtioRing::new(),
            mbx: MailboxEngine::new(chip.generation()),
            up: bringup::BringUp::new(),
            fw: FwInfo::default(),
            link_up: false,
            marker_needed: false,
            handles: HandleTable::new(handles, 0),
            cmds,
            tmfs,
            sessions,
            held: [HeldNotify::EMPTY; HELD_NOTIFIES],
            held_any: false,
            checks_queued: false,
            cmd_pending: PendingList::new(),
            tmf_pending: PendingList::new(),
            events: EventLog::new(events),
            stats: Stats::default(),
            epoch: 0,
            jobs: [None; JOBS],
            jobs_queued: false,
            job_running: None,
            reset_requested: false,
            status_check_due: false,
            live_cmds: 0,
            busy_threshold: CMDS,
            sid_cache: None,
            core_checked: false,
            now: Instant::ZERO,
            next_sweep: Instant::ZERO,
            exhausted: false,
            login_seq: 0,
            deferred: [[0; ENTRY_LEN]; DEFERRED],
            deferred_len: 0,
            job_not_before: Instant::ZERO,
            completion_nanos: u64::try_from(config.completion_timeout.as_nanos())
                .unwrap_or(u64::MAX),
            platform,
            config,
        })
    }

    /// The chip this driver runs.
    pub fn chip(&self) -> &'static ChipInfo {
        self.chip
    }

    /// The platform (for a test that needs to reach the simulator behind it).
    pub fn platform(&self) -> &P {
        &self.platform
    }

    /// Where the port is in its life.
    pub fn phase(&self) -> Phase {
        self.up.phase()
    }

    /// Whether the port is online (firmware running, rings live).
    pub fn is_online(&self) -> bool {
        self.phase() == Phase::Online
    }

    /// Whether the link is up.
    pub fn link_up(&self) -> bool {
        self.link_up
    }

    /// Our port id (valid once online with the link up).
    pub fn port_id(&self) -> PortId {
        self.fw.port_id
    }

    /// The running firmware's version.
    pub fn firmware_version(&self) -> Option<FirmwareVersion> {
        self.fw.version
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        let mut s = self.stats;
        s.events_dropped = self.events.dropped;
        s
    }

    /// Take the oldest undrained event.
    pub fn pop_event(&mut self) -> Option<EventRecord> {
        self.events.pop()
    }

    /// Commands the driver is tracking (for leak checks: 0 when idle).
    pub fn commands_in_flight(&self) -> usize {
        self.live_cmds
    }

    /// Task management requests the driver is tracking.
    pub fn tmfs_in_flight(&self) -> usize {
        self.tmfs.iter().filter(|t| t.live).count()
    }

    /// IOCB handles outstanding (for leak checks: 0 when idle).
    pub fn handles_in_use(&self) -> usize {
        self.handles.in_use()
    }

    /// The known remote ports.
    pub fn sessions(&self) -> impl Iterator<Item = SessionInfo> + '_ {
        self.sessions
            .iter()
            .filter(|s| s.state != SessionState::Free)
            .map(|s| SessionInfo {
                state: s.state,
                wwpn: s.wwpn,
                wwnn: s.wwnn,
                port_id: s.port_id,
                nport_handle: s.nport,
                core: s.core,
            })
    }

    /// Ask for a chip reset and a full bring-up at the next `poll`.
    pub fn request_reset(&mut self) {
        self.reset_requested = true;
    }

    /// Whether the firmware was started (a RISC pause then means it died).
    fn firmware_running(&self) -> bool {
        matches!(
            self.phase(),
            Phase::Initializing | Phase::WaitingForReady | Phase::Online
        )
    }

    pub(crate) fn event(&mut self, e: Event) {
        self.events.push(self.now, e);
    }

    pub(crate) fn regs(&self) -> Regs<'_, P::Mmio> {
        Regs {
            regs: self.platform.regs(),
            mq: self.platform.mq_regs(),
            map: self.map,
        }
    }

    /// Run the driver once: service interrupts, step bring-up or drain the
    /// rings into `core`, deliver deferred completions, ring the doorbell.
    /// Never blocks.
    pub fn poll<C: CoreApi>(&mut self, now: Instant, core: &mut C) -> Progress {
        self.now = now;
        if !self.core_checked {
            self.core_checked = true;
            if core.command_slots().is_some_and(|n| n > self.cmds.len())
                || core.tmf_slots().is_some_and(|n| n > self.tmfs.len())
            {
                self.up
                    .fatal("driver storage smaller than the core's pools");
            }
        }
        let mut busy = self.service_interrupts(core);
        if self.mbx.check_timeout(now) {
            busy = true;
        }
        if self.reset_requested {
            self.reset_requested = false;
            self.chip_reset(core, ResetReason::Requested);
            busy = true;
        }
        if self.phase() != Phase::Online {
            busy |= self.step_bringup(core);
            // Completions owed to the core (a chip reset voided commands)
            // go out whatever the chip does.
            busy |= self.process_cmd_pending(core);
            busy |= self.process_tmf_pending(core);
        } else {
            busy |= self.online_poll(core);
        }
        busy |= self.flush();
        Progress::from_bool(busy)
    }

    /// When `poll` must run next at the latest if no interrupt comes
    /// (`Some(now)` while work is ready).
    pub fn poll_at(&self, now: Instant) -> Option<Instant> {
        if !self.cmd_pending.is_empty() || !self.tmf_pending.is_empty() || self.reset_requested {
            return Some(now);
        }
        let mut t = self.up.wake_at();
        let mut min = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t: Instant| t.min(x)));
            }
        };
        min(self.mbx.deadline());
        if self.phase() == Phase::Online {
            // Deadlines of outstanding IOCBs and session timers are checked
            // by the periodic sweep (O(1) here instead of a table scan).
            if self.handles.in_use() > 0 || self.sessions.iter().any(|s| s.lost_deadline.is_some())
            {
                min(Some(self.next_sweep));
            }
            if self.jobs.iter().any(Option::is_some)
                || (self.checks_queued && self.sessions.iter().any(|s| s.check_pending))
            {
                min(Some(self.job_not_before.max(now)));
            }
        }
        t
    }

    /// Block until the interrupt line fires or `timeout` passes, unless
    /// work is already known to be ready. Returns whether to poll now.
    ///
    /// The adaptive loop of a poller: `poll` while it returns
    /// `Progress::Busy` (spinning while busy), then
    /// `wait_for_work(poll_at - now)` to sleep until the hardware or a
    /// deadline needs the driver. Interrupts are enabled once the firmware
    /// is initialised; during bring-up the wait ends at the next bring-up
    /// deadline.
    ///
    /// Host status is read once before sleeping; a cause found there makes
    /// the next `poll` read host status whatever the interrupt line says, so
    /// a platform whose line missed it costs one turn, not a spin until the
    /// next sweep.
    pub fn wait_for_work(&mut self, timeout: Option<Duration>) -> bool {
        if !self.cmd_pending.is_empty() || !self.tmf_pending.is_empty() || self.reset_requested {
            return true;
        }
        if self.regs().host_status().int_pending() {
            self.status_check_due = true;
            return true;
        }
        self.platform.irq().wait(timeout)
    }

    /// Read and acknowledge the pending interrupt causes (reference §2.2,
    /// gotcha 16: loop until B15 clears, up to 50 times).
    ///
    /// Host status is a register: on PCIe each read is an uncached round trip
    /// (about a microsecond), so a spinning poller must not read it on every
    /// turn. Online, the chip's interrupts are enabled (since
    /// INITIALIZE_FIRMWARE), so every cause — queue update, mailbox
    /// completion, async event — raises the interrupt line, and host status is
    /// read only when the line is latched. It is also read while a mailbox
    /// command is outstanding, and once per sweep (every 100 ms) whatever the
    /// line says: a RISC pause need not raise an interrupt, and a platform
    /// whose line is not wired still sees every cause, late. Before online
    /// (bring-up, interrupts off) it is read on every poll. An edge-triggered
    /// line (MSI, MSI-X) is acknowledged before host status is read, so a
    /// message sent after the read latches it again; a level-triggered one
    /// (INTx) after the causes were cleared, so that it does not latch again
    /// at once for the cause just handled (`rscst_hba::Trigger`).
    ///
    /// The loop ends early after a queue-update cause (response or ATIO
    /// queue): the rings are drained right after this in the same poll, and a
    /// cause raised behind it is not lost — `poll` reports progress, so the
    /// poller polls again, and `wait_for_work` reads host status before it
    /// sleeps. Mailbox completions and async events keep the loop going (a
    /// queue update may follow them).
    fn service_interrupts<C: CoreApi>(&mut self, core: &mut C) -> bool {
        let irq = self.platform.irq();
        let latched = irq.pending();
        if !latched && !self.status_check_due && self.is_online() && self.mbx.is_idle() {
            return false;
        }
        let level = irq.trigger() == rscst_hba::Trigger::Level;
        if latched && !level {
            irq.ack();
        }
        self.status_check_due = false;
        let any = self.read_causes(core);
        if latched && level {
            self.platform.irq().ack();
        }
        any
    }

    /// The host-status loop of `service_interrupts`.
    #[inline(always)]
    fn read_causes<C: CoreApi>(&mut self, core: &mut C) -> bool {
        let mut any = false;
        for _ in 0..50 {
            let regs = self.regs();
            let hs = regs.host_status();
            if hs.risc_paused() && self.firmware_running() {
                self.chip_reset(core, ResetReason::RiscPaused);
                return true;
            }
            if !hs.int_pending() {
                break;
            }
            any = true;
            self.stats.interrupts += 1;
            let t = hs.int_type();
            if t.is_mailbox_completion() {
                let regs = regs!(self);
                self.mbx.on_completion(&regs, hs);
                regs.hccr(HccrCommand::ClearRiscInt);
            } else if t == IntType::AsyncEvent {
                let regs = self.regs();
                let mut mb = [0u16; 8];
                mb[0] = hs.mailbox0();
                for (n, v) in mb.iter_mut().enumerate().skip(1) {
                    *v = regs.mailbox(n);
                }
                regs.hccr(HccrCommand::ClearRiscInt);
                self.stats.async_events += 1;
                self.async_event(core, rscst_fw::async_event::AsyncEvent::parse(&mb));
            } else {
                // Queue updates: the rings are drained by signature and
                // in-pointer anyway; just clear the cause (and stop, above).
                self.regs().hccr(HccrCommand::ClearRiscInt);
                break;
            }
        }
        any
    }

    /// Ring the request doorbell if entries were written since the last one.
    pub fn flush(&mut self) -> bool {
        let hw = hw::ReqHw::new(&self.platform, self.map, &self.dma.req);
        if self.req.flush(&hw) {
            self.stats.doorbells += 1;
            true
        } else {
            false
        }
    }

    /// Copy `entries` into the request ring if they fit while keeping
    /// `keep` further slots free. The doorbell is rung by `flush`. When a
    /// MARKER is due (after init, LIP, link or chip events; reference §7.12,
    /// gotcha 12) it goes first, whatever the entries are.
    #[inline]
    pub(crate) fn post(&mut self, entries: &[[u8; ENTRY_LEN]], keep: usize) -> bool {
        let hw = hw::ReqHw::new(&self.platform, self.map, &self.dma.req);
        let marker = self.marker_needed as usize;
        if !self.req.reserve(&hw, entries.len() + marker, keep) {
            return false;
        }
        if self.marker_needed {
            let m = crate::iocb::marker_sync_all(0);
            if !matches!(self.req.push(&hw, &[m]), Ok(true)) {
                return false;
            }
            self.marker_needed = false;
        }
        matches!(self.req.push(&hw, entries), Ok(true))
    }

    /// [`Self::post`] for entries the caller's own `reserve` already made
    /// room for: written straight into the ring (`push` still checks the
    /// room), through `post` only while a MARKER has to go first.
    #[inline(always)]
    pub(crate) fn post_reserved(&mut self, entries: &[[u8; ENTRY_LEN]]) -> bool {
        if self.marker_needed {
            return self.post(entries, 0);
        }
        let hw = hw::ReqHw::new(&self.platform, self.map, &self.dma.req);
        matches!(self.req.push(&hw, entries), Ok(true))
    }
}

#[cfg(test)]
pub(crate) mod fake;

#[cfg(test)]
mod cmd_tests;
#[cfg(test)]
mod harness;
#[cfg(test)]
mod tests;

impl<P: Platform, const REQ: usize, const RSP: usize, const ATIO: usize>
    Isp<'_, P, REQ, RSP, ATIO>
{
    /// One turn of a port's poller with the SCSI core: drain the rings into
    /// `target` (a new command the core can run at once runs there, with
    /// `backend`: `Target::submit_now`), let the core run (its transport calls
    /// queue IOCBs), then ring the doorbell once for everything queued.
    pub fn poll_stack<B: rscst_core::Backend>(
        &mut self,
        now: Instant,
        target: &mut rscst_core::Target<'_>,
        backend: &mut B,
    ) -> Progress {
        // The rings drained with the backend at hand: a command the core can
        // run at once runs from the ATIO drain (`CoreApi::submit_now`).
        let a = self.poll(
            now,
            &mut crate::core_api::StackCore {
                target: &mut *target,
                backend: &mut *backend,
            },
        );
        let b = target.poll(now, self, backend);
        let c = self.flush();
        Progress::from_bool(a == Progress::Busy || b == rscst_core::Progress::Progressed || c)
    }

    /// When the stack's poller must run next (`Some(now)` while work is
    /// ready): the earlier of the driver's and the core's deadlines.
    pub fn poll_at_stack(&self, now: Instant, target: &rscst_core::Target<'_>) -> Option<Instant> {
        match (self.poll_at(now), target.poll_at(now)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}
#[cfg(test)]
mod event_tests;
#[cfg(test)]
mod stack_tests;
