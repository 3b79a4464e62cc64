//! The ISP firmware model: boot ROM, mailbox engine, rings, link and login handling, and the
//! target-mode exchange engine. One implementation serves both run modes.
//!
//! Structure:
//! * this module — chip state (reset, RISC reset/pause, ROM vs firmware), the register
//!   commands queued by `crate::device`, the interrupt-cause queue (one `host_status`
//!   cause at a time; the next is posted when the driver clears B15), link bring-up;
//! * [`image`] — the firmware image format and generator, RISC RAM;
//! * `mailbox` — every mailbox command of reference §3.4 that the model implements;
//! * `rings` — request / response / ATIO rings (§6.3);
//! * `ports` — the remote port database (N_Port handles, login states, §7.13);
//! * `target` — ELS → IMMED_NOTIFY/NOTIFY_ACK, FCP_CMND → ATIO7, CTIO7, ABTS (§7, §9).

pub mod image;
mod mailbox;
mod ports;
mod rings;
mod target;

use core::time::Duration;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;

use rscst_fw::async_event::{AsyncEvent, LinkSpeed};
use rscst_fw::mailbox::{FirmwareState, FirmwareVersion, MbMask};
use rscst_fw::regs::{CtrlStatus, HccrCommand, HostStatus, IntType};
use rscst_fw::{PortId, Wwn};

use crate::device::RegCmd;
use crate::frame::Frame;
use crate::sim::{Ctx, Event};
use crate::trace::TraceKind;

pub(crate) use ports::PortDb;
pub(crate) use rings::Rings;
pub(crate) use target::Exchanges;

/// What the firmware does when a command arrives and no exchange is free.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExchangeExhaustion {
    /// Deliver the ATIO with exchange address 0xFFFFFFFF; the driver answers BUSY with a
    /// CTIO7 naming that address (reference §9.1, §9.10).
    #[default]
    UnknownExchangeAtio,
    /// Answer the initiator with FCP_RSP BUSY itself and post async 0x8049
    /// REJECTED_FCP_CMD with mb3 = 1 (exchange starvation).
    FirmwareBusy,
}

/// Modelled latencies (stepped mode; threaded mode uses [`Timing::immediate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// mb0 stays non-zero this long after a soft reset (ROM reading NVRAM).
    pub soft_reset: Duration,
    /// mb0 stays non-zero this long after `hccr = CLEAR_RISC_RESET` (ROM boot).
    pub rom_boot: Duration,
    /// DMA active (ctrl_status B17) clears this long after DMA shutdown is requested.
    pub dma_quiesce: Duration,
    /// A mailbox command executed by the boot ROM.
    pub rom_mailbox: Duration,
    /// A mailbox command executed by the firmware.
    pub fw_mailbox: Duration,
    /// Extra time per KiB loaded by LOAD_RISC_RAM_EXTENDED.
    pub load_per_kib: Duration,
    /// INITIALIZE_FIRMWARE.
    pub init_firmware: Duration,
    /// From INITIALIZE_FIRMWARE (or link up) to the fabric login attempt.
    pub link_init: Duration,
    /// Per request IOCB processed.
    pub iocb: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            soft_reset: Duration::from_micros(200),
            rom_boot: Duration::from_millis(2),
            dma_quiesce: Duration::from_micros(20),
            rom_mailbox: Duration::from_micros(20),
            fw_mailbox: Duration::from_micros(10),
            load_per_kib: Duration::from_micros(1),
            init_firmware: Duration::from_micros(200),
            link_init: Duration::from_millis(5),
            iocb: Duration::from_nanos(500),
        }
    }
}

impl Timing {
    /// No modelled latency at all (threaded mode, benchmarks).
    pub fn immediate() -> Timing {
        Timing {
            soft_reset: Duration::ZERO,
            rom_boot: Duration::ZERO,
            dma_quiesce: Duration::ZERO,
            rom_mailbox: Duration::ZERO,
            fw_mailbox: Duration::ZERO,
            load_per_kib: Duration::ZERO,
            init_firmware: Duration::ZERO,
            link_init: Duration::ZERO,
            iocb: Duration::ZERO,
        }
    }
}

/// The firmware model's configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct FirmwareConfig {
    /// WWPN in the simulated NVRAM (the driver normally copies it into the ICB; the ICB's
    /// value is what the firmware uses).
    pub wwpn: Wwn,
    /// WWNN in the simulated NVRAM.
    pub wwnn: Wwn,
    /// Target exchanges the firmware has (GET_RESOURCE_COUNTS mb1/mb2; ICB exchange_count
    /// 0xFFFF selects this). Small values model exchange exhaustion.
    pub exchange_count: u16,
    /// What happens when they run out.
    pub exhaustion: ExchangeExhaustion,
    /// IOCBs the firmware can hold (GET_RESOURCE_COUNTS mb7/mb10).
    pub iocb_count: u16,
    /// Link speed reported in LOOP_UP.
    pub link_speed: LinkSpeed,
    /// Largest frame payload the port receives (PLOGI receive size).
    pub max_frame_payload: u16,
    /// How long the firmware waits for the rest of a data-out transfer before it completes
    /// the CTIO with TIMEOUT (0x0B); the CTIO's own timeout field (seconds) wins if it is
    /// non-zero and shorter.
    pub data_out_timeout: Duration,
    /// Latencies.
    pub timing: Timing,
}

impl Default for FirmwareConfig {
    fn default() -> Self {
        FirmwareConfig {
            wwpn: Wwn::from_u64(0x2100_0024_ff00_0001),
            wwnn: Wwn::from_u64(0x2000_0024_ff00_0001),
            exchange_count: 2048,
            exhaustion: ExchangeExhaustion::default(),
            iocb_count: 2048,
            link_speed: LinkSpeed::Gbps8,
            max_frame_payload: 2048,
            data_out_timeout: Duration::from_secs(10),
            timing: Timing::default(),
        }
    }
}

/// Whether a MARKER must precede the next I/O IOCB (reference §7.12, gotcha 12).
///
/// The rule is exact: an I/O IOCB is in violation only if the driver doorbelled it after
/// it had observed the event that requires the marker, and no MARKER came between. The
/// driver observes an async event when it acknowledges it (`hccr = CLEAR_RISC_INT` after
/// reading it); the model records `req_q_in` at that write, and every request entry
/// before that position is exempt whenever the firmware gets to process it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MarkerState {
    /// No.
    NotNeeded,
    /// An event requires one, but the driver has not acknowledged the async event yet.
    Pending,
    /// The driver acknowledged the event: a CTIO it doorbelled since, without a MARKER
    /// first, is a violation.
    Required,
}

/// Who executes mailbox commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// The boot ROM (after reset, before EXECUTE_FIRMWARE).
    Rom,
    /// The loaded firmware.
    Running,
}

/// Timed firmware events (each carries the reset epoch it was scheduled in; stale ones are
/// dropped after a reset).
#[derive(Debug, Clone)]
pub(crate) enum FwEvent {
    ResetDone,
    RomReady,
    DmaQuiesced,
    MailboxDone,
    LinkInit,
    ProcessRequests,
    /// A delayed response entry (fault: delayed CTIO completion); the exchange address
    /// its completion closed, or 0.
    PostResponse(Box<[u8; 64]>, u32),
    /// The HBA's transmit engine: the next data-in frame.
    Transmit,
    /// The last data-in frame of a CTIO on this exchange index has left the link.
    TxDone {
        index: u16,
        generation: u16,
        serial: u64,
    },
    /// The earliest data-out deadline: CTIOs whose data did not all arrive in time
    /// complete with TIMEOUT (one timer for all exchanges, not one per CTIO).
    DataOutTimers,
    /// ELS / login state machine timer of the HBA's own requests (FLOGI, PLOGI).
    LoginTimeout {
        serial: u64,
    },
}

/// The interrupt causes waiting for `host_status`.
#[derive(Debug, Default)]
struct Causes {
    mbx: Option<(IntType, [u16; 32], MbMask)>,
    asyncs: VecDeque<[u16; 8]>,
    rsp: bool,
    atio: bool,
}

/// An outstanding mailbox command.
#[derive(Debug, Clone)]
pub(crate) struct MbxInFlight {
    pub regs: [u16; 32],
    /// The result, once known: interrupt type and output registers.
    pub result: Option<(IntType, [u16; 32])>,
    /// Taken but never answered (fault).
    pub stalled: bool,
}

/// Link / fabric login state of the HBA's own port.
#[derive(Debug, Clone, Default)]
pub(crate) struct LinkState {
    /// The physical link (from the fabric).
    pub cable: bool,
    /// Logged in to the fabric (FLOGI accepted).
    pub logged_in: bool,
    /// Our port id (valid when logged in).
    pub port_id: PortId,
    /// Serial of the outstanding FLOGI, if any.
    pub flogi: Option<u64>,
    /// Counters for GET_LINK_STATUS.
    pub link_failures: u32,
    pub loss_of_sync: u32,
    pub invalid_crc: u32,
    pub lip_count: u32,
    pub link_up_count: u32,
}

/// Statistics of the firmware model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FirmwareStats {
    /// Mailbox commands taken.
    pub mailbox_commands: u64,
    /// Request IOCBs processed (slots).
    pub request_iocbs: u64,
    /// Response entries posted.
    pub response_entries: u64,
    /// ATIO ring entries posted (slots).
    pub atio_entries: u64,
    /// ATIO7s delivered.
    pub atios: u64,
    /// CTIO7s completed (returned or not).
    pub ctios: u64,
    /// FCP_CMNDs the firmware answered itself (no exchange / not logged in).
    pub commands_rejected: u64,
    /// Interrupt causes posted to `host_status`.
    pub interrupts: u64,
    /// Chip resets (soft reset or RISC reset).
    pub resets: u64,
}

/// The firmware model.
pub(crate) struct Firmware {
    pub cfg: FirmwareConfig,
    pub epoch: u32,
    pub phase: Phase,
    risc_reset: bool,
    paused: bool,
    /// Halted by a system error until reset.
    pub halted: bool,
    /// mb0 busy (reset/boot in progress).
    booting: bool,
    doorbell_deferred: bool,
    pub ram: image::RiscRam,
    pub version: Option<FirmwareVersion>,
    pub fw_options: [u16; 3],
    pub mbx: Option<MbxInFlight>,
    causes: Causes,
    pub rings: Option<Rings>,
    pub icb: Option<rscst_fw::icb::IcbRepr>,
    pub state: FirmwareState,
    pub link: LinkState,
    pub ports: PortDb,
    pub xchg: Exchanges,
    /// Exchanges closed by a successful SEND_STATUS CTIO whose completion the driver was
    /// not given (lost) or not yet given (late): a TERMINATE for them is legitimate.
    pub unseen_closed: crate::fxhash::FxHashMap<u32, ()>,
    /// Data-in CTIOs with frames still to send on a paced link (round robin).
    pub tx_queue: VecDeque<target::TxJob>,
    /// A `FwEvent::Transmit` is scheduled.
    pub tx_scheduled: bool,
    /// When the scheduled `FwEvent::DataOutTimers` fires (the earliest, if several).
    pub dout_timer: Option<crate::time::SimTime>,
    /// MARKER state: needed after init, LIP, link events and resets (§7.12).
    pub marker: MarkerState,
    /// An async event that requires the marker is (or was) in `host_status`; once the
    /// driver clears it, the marker is required.
    marker_watch: bool,
    /// Request-ring slots from the out-index on that the driver doorbelled before it
    /// acknowledged the event that made the marker required: exempt from the check.
    pub marker_exempt: u32,
    pub stats: FirmwareStats,
    pub serial: u64,
    /// ELS exchanges the HBA originated, by OX_ID.
    pub els_out: std::collections::BTreeMap<u16, (ports::ElsOrig, u64)>,
    pub ox_counter: u16,
    /// A LOGINOUT executed through IOCB_COMMAND_A64 waits for its PLOGI.
    pub loginout_pending_mbx: bool,
    pub loginout_mbx_dma: u64,
}

impl Firmware {
    pub(crate) fn new(cfg: FirmwareConfig) -> Firmware {
        let xchg = Exchanges::new(cfg.exchange_count);
        Firmware {
            cfg,
            epoch: 0,
            phase: Phase::Rom,
            risc_reset: false,
            paused: false,
            halted: false,
            booting: false,
            doorbell_deferred: false,
            ram: image::RiscRam::default(),
            version: None,
            fw_options: [0; 3],
            mbx: None,
            causes: Causes::default(),
            rings: None,
            icb: None,
            state: FirmwareState::ConfigWait,
            link: LinkState::default(),
            ports: PortDb::default(),
            xchg,
            unseen_closed: Default::default(),
            tx_queue: VecDeque::new(),
            tx_scheduled: false,
            dout_timer: None,
            marker: MarkerState::NotNeeded,
            marker_watch: false,
            marker_exempt: 0,
            stats: FirmwareStats::default(),
            serial: 0,
            els_out: std::collections::BTreeMap::new(),
            ox_counter: 0,
            loginout_pending_mbx: false,
            loginout_mbx_dma: 0,
        }
    }

    pub(crate) fn next_serial(&mut self) -> u64 {
        self.serial += 1;
        self.serial
    }

    pub(crate) fn at(&self, ctx: &mut Ctx<'_>, after: Duration, ev: FwEvent) {
        ctx.queue.push(ctx.now + after, Event::Fw(self.epoch, ev));
    }

    /// Whether the RISC executes anything now.
    fn risc_runs(&self) -> bool {
        !self.risc_reset && !self.paused && !self.halted && !self.booting
    }

    /// `true` once the firmware runs, the rings are set up and the chip is not halted.
    pub(crate) fn operational(&self) -> bool {
        self.phase == Phase::Running && self.risc_runs() && self.rings.is_some()
    }

    // -----------------------------------------------------------------------------
    // Reset and boot.

    /// Forget everything the RISC knew: a soft reset or a RISC reset.
    fn wipe(&mut self, ctx: &mut Ctx<'_>, why: &'static str) {
        self.epoch = self.epoch.wrapping_add(1);
        self.stats.resets += 1;
        ctx.shared.trace.record(ctx.now, TraceKind::Chip(why));
        self.phase = Phase::Rom;
        self.halted = false;
        self.ram.clear();
        self.version = None;
        self.fw_options = [0; 3];
        self.mbx = None;
        self.doorbell_deferred = false;
        self.causes = Causes::default();
        self.rings = None;
        self.icb = None;
        self.state = FirmwareState::ConfigWait;
        self.marker = MarkerState::NotNeeded;
        self.marker_watch = false;
        self.marker_exempt = 0;
        for l in &ctx.shared.ring_len {
            l.store(0, Ordering::Release);
        }
        let regs = &ctx.shared.regs;
        regs.host_status.store(0, Ordering::Release);
        for n in 0..32 {
            regs.set_mb_out(n, 0);
        }
        regs.hccr_status.fetch_and(
            !rscst_fw::regs::HccrStatus::HOST_INT.bits(),
            Ordering::AcqRel,
        );
        regs.ctrl_status
            .fetch_and(!CtrlStatus::DMA_ACTIVE.bits(), Ordering::AcqRel);
        // The port leaves the fabric; every exchange and login is void.
        self.xchg.clear();
        self.unseen_closed.clear();
        self.tx_queue.clear();
        self.tx_scheduled = false;
        self.dout_timer = None;
        self.ports.clear();
        if self.link.logged_in || self.link.flogi.is_some() {
            ctx.fabric_logout_hba = true;
        }
        self.link.logged_in = false;
        self.link.flogi = None;
        self.els_out.clear();
    }

    fn begin_boot(&mut self, ctx: &mut Ctx<'_>, after: Duration, ev: FwEvent) {
        self.booting = true;
        // The boot ROM reports "busy" in mb0 while it runs (any non-zero value; the model
        // uses 0x0001).
        ctx.shared.regs.set_mb_out(0, 0x0001);
        self.at(ctx, after, ev);
    }

    pub(crate) fn on_reg_cmd(&mut self, ctx: &mut Ctx<'_>, cmd: RegCmd) {
        match cmd {
            RegCmd::SoftReset => {
                self.wipe(ctx, "soft reset");
                let t = self.cfg.timing.soft_reset;
                self.begin_boot(ctx, t, FwEvent::ResetDone);
            }
            RegCmd::DmaShutdown(true) => {
                let t = self.cfg.timing.dma_quiesce;
                self.at(ctx, t, FwEvent::DmaQuiesced);
            }
            RegCmd::DmaShutdown(false) => {}
            RegCmd::Hccr(HccrCommand::SetRiscReset) => {
                if !self.risc_reset {
                    self.wipe(ctx, "RISC reset");
                }
                self.risc_reset = true;
                self.booting = false;
            }
            RegCmd::Hccr(HccrCommand::ClearRiscReset) => {
                if self.risc_reset {
                    self.risc_reset = false;
                    ctx.shared.trace.record(
                        ctx.now,
                        TraceKind::Chip("RISC released from reset: ROM boot"),
                    );
                    let t = self.cfg.timing.rom_boot;
                    self.begin_boot(ctx, t, FwEvent::RomReady);
                }
            }
            RegCmd::Hccr(HccrCommand::SetRiscPause) => {
                self.paused = true;
                ctx.shared.set_risc_paused(true);
            }
            RegCmd::Hccr(HccrCommand::ReleaseRiscPause) => {
                self.paused = false;
                if !self.halted {
                    ctx.shared.set_risc_paused(false);
                }
            }
            RegCmd::Hccr(_) => {}
            RegCmd::MailboxDoorbell => self.doorbell(ctx),
        }
    }

    pub(crate) fn on_event(&mut self, ctx: &mut Ctx<'_>, epoch: u32, ev: FwEvent) {
        if epoch != self.epoch {
            return;
        }
        match ev {
            FwEvent::ResetDone => {
                self.booting = false;
                ctx.shared.regs.set_mb_out(0, 0);
                ctx.shared
                    .regs
                    .ctrl_status
                    .fetch_and(!CtrlStatus::SOFT_RESET.bits(), Ordering::AcqRel);
                ctx.shared
                    .trace
                    .record(ctx.now, TraceKind::Chip("soft reset done: ROM ready"));
                self.after_ready(ctx);
            }
            FwEvent::RomReady => {
                self.booting = false;
                ctx.shared.regs.set_mb_out(0, 0);
                ctx.shared
                    .trace
                    .record(ctx.now, TraceKind::Chip("ROM ready"));
                self.after_ready(ctx);
            }
            FwEvent::DmaQuiesced => {
                ctx.shared
                    .regs
                    .ctrl_status
                    .fetch_and(!CtrlStatus::DMA_ACTIVE.bits(), Ordering::AcqRel);
            }
            FwEvent::MailboxDone => self.mailbox_done(ctx),
            FwEvent::LinkInit => self.link_init(ctx),
            FwEvent::ProcessRequests => self.process_requests(ctx),
            FwEvent::PostResponse(e, closed) => {
                // From now on the entry itself (in the queue) carries the news.
                self.unseen_closed.remove(&closed);
                self.post_response_closing(ctx, *e, closed);
            }
            FwEvent::DataOutTimers => self.data_out_timeouts(ctx),
            FwEvent::Transmit => self.transmit(ctx),
            FwEvent::TxDone {
                index,
                generation,
                serial,
            } => self.tx_done(ctx, index, generation, serial),
            FwEvent::LoginTimeout { serial } => self.login_timeout(ctx, serial),
        }
    }

    fn after_ready(&mut self, ctx: &mut Ctx<'_>) {
        if self.doorbell_deferred {
            self.doorbell_deferred = false;
            self.doorbell(ctx);
        }
    }

    pub(crate) fn need_marker(&mut self) {
        if self.marker == MarkerState::NotNeeded {
            self.marker = MarkerState::Pending;
        }
    }

    /// If the driver has acknowledged the async event that asked for a marker, the
    /// marker is now required — for what it doorbells from then on: the request entries
    /// between our out-index and its `req_q_in` at the acknowledgement are exempt. Called
    /// before anything new is posted to `host_status` and before each request IOCB is
    /// processed, so an entry doorbelled after the acknowledgement is never processed
    /// before this runs.
    pub(crate) fn marker_observed(&mut self, ctx: &Ctx<'_>) {
        if !self.marker_watch || ctx.shared.host_status_pending() {
            return;
        }
        self.marker_watch = false;
        if self.marker == MarkerState::Pending {
            self.marker = MarkerState::Required;
            self.marker_exempt = match self.rings.as_ref() {
                Some(r) => {
                    let at_ack = ctx.shared.req_in_at_ack.load(Ordering::Acquire) as u16;
                    let len = r.req.len as u32;
                    (at_ack as u32 % len + len - r.req_out as u32) % len
                }
                None => 0,
            };
        }
    }

    /// Firmware system error: async 0x8002, RISC paused, nothing more until reset.
    pub(crate) fn system_error(&mut self, ctx: &mut Ctx<'_>, code: u16) {
        self.halt(ctx, Some(code));
    }

    /// The RISC stops. With `code`, it reports a system error first (async
    /// 0x8002 with `code` in mailbox 1, an interrupt); without, it halts
    /// silently and only host status B8 shows it.
    pub(crate) fn halt(&mut self, ctx: &mut Ctx<'_>, code: Option<u16>) {
        if self.halted || self.phase != Phase::Running {
            return;
        }
        let fault = match code {
            Some(_) => crate::fault::InjectedFault::SystemError,
            None => crate::fault::InjectedFault::RiscHalt,
        };
        ctx.shared.trace.record(ctx.now, TraceKind::Fault(fault));
        if let Some(code) = code {
            let ev = AsyncEvent::Other {
                code: rscst_fw::async_event::AsyncEventCode::SystemError,
                mb: [code, 0, 0, 0, 0, 0, 0],
            };
            // The event goes out even though the RISC stops: it is the last thing it does.
            self.causes.asyncs.push_back(ev.emit());
        }
        self.halted = true;
        ctx.shared.set_risc_paused(true);
        ctx.shared
            .trace
            .record(ctx.now, TraceKind::Chip("system error: RISC halted"));
        if self.link.logged_in {
            ctx.fabric_logout_hba = true;
            self.link.logged_in = false;
        }
        self.try_post(ctx);
    }

    // -----------------------------------------------------------------------------
    // Interrupt causes.

    pub(crate) fn queue_async(&mut self, ctx: &mut Ctx<'_>, ev: AsyncEvent) {
        if self.phase != Phase::Running || self.halted {
            return;
        }
        self.causes.asyncs.push_back(ev.emit());
        self.try_post(ctx);
    }

    pub(crate) fn mark_rsp(&mut self) {
        self.causes.rsp = true;
    }

    pub(crate) fn mark_atio(&mut self) {
        self.causes.atio = true;
    }

    /// Posts the next cause if `host_status` is free.
    pub(crate) fn try_post(&mut self, ctx: &mut Ctx<'_>) {
        let sh = ctx.shared;
        if sh.host_status_pending() || self.risc_reset || self.booting {
            return;
        }
        // The driver may have cleared the async event that asked for a marker.
        self.marker_observed(ctx);
        if let Some((t, regs, mask)) = self.causes.mbx.take() {
            for n in mask.iter() {
                sh.regs.set_mb_out(n, regs[n]);
            }
            if sh.post_host_status(HostStatus::interrupt(t, regs[0]).0) {
                self.stats.interrupts += 1;
                sh.trace.record(
                    ctx.now,
                    TraceKind::MailboxCompletion {
                        int_type: t,
                        regs: rscst_fw::mailbox::Mailboxes(regs).masked(mask),
                    },
                );
                self.mbx = None;
            } else {
                self.causes.mbx = Some((t, regs, mask));
            }
            return;
        }
        if let Some(mb) = self.causes.asyncs.front().copied() {
            for (n, v) in mb.iter().enumerate() {
                sh.regs.set_mb_out(n, *v);
            }
            if sh.post_host_status(HostStatus::interrupt(IntType::AsyncEvent, mb[0]).0) {
                self.causes.asyncs.pop_front();
                let ev = AsyncEvent::parse(&mb);
                if self.marker == MarkerState::Pending
                    && (ev.needs_marker()
                        || ev.code() == rscst_fw::async_event::AsyncEventCode::LoopUp)
                {
                    self.marker_watch = true;
                }
                self.stats.interrupts += 1;
                sh.trace.record(ctx.now, TraceKind::AsyncEvent(mb));
            }
            return;
        }
        if self.halted {
            return;
        }
        let generation = sh.chip.generation();
        let t = match (self.causes.atio, self.causes.rsp) {
            (true, true) => IntType::AtioRspQueue,
            (true, false) => {
                if generation >= rscst_fw::pci::Generation::Isp27xx {
                    IntType::AtioQueue27xx
                } else {
                    IntType::AtioQueue
                }
            }
            (false, true) => {
                if generation.is_mq_chip() {
                    IntType::RspQueue83xx
                } else {
                    IntType::RspQueue
                }
            }
            (false, false) => return,
        };
        let hs = HostStatus::interrupt(t, 0).0;
        if sh.post_host_status(hs) {
            self.causes.atio = false;
            self.causes.rsp = false;
            self.stats.interrupts += 1;
            sh.trace.record(ctx.now, TraceKind::QueueInterrupt(hs));
        }
    }

    /// Whether [`Firmware::service`] has anything to do: a register write to act on, or
    /// an interrupt cause waiting while `host_status` is free.
    #[inline]
    pub(crate) fn needs_service(&self, sh: &crate::device::Shared) -> bool {
        sh.work.load(Ordering::Relaxed) != 0
            || ((self.causes.mbx.is_some()
                || !self.causes.asyncs.is_empty()
                || self.causes.rsp
                || self.causes.atio)
                && !sh.host_status_pending())
    }

    /// Everything the driver's register writes asked for since the last call; returns
    /// the `device::work` bits it acted on.
    pub(crate) fn service(&mut self, ctx: &mut Ctx<'_>) -> u32 {
        use crate::device::work;
        let bits = ctx.shared.take_work();
        if bits & work::CMD != 0 {
            for c in ctx.shared.take_cmds() {
                self.on_reg_cmd(ctx, c);
            }
        }
        if bits & work::RSP_OUT != 0 {
            self.rsp_out_moved(ctx);
        }
        if bits & work::ATIO_OUT != 0 {
            self.atio_out_moved(ctx);
        }
        if bits & work::REQ_DOORBELL != 0 {
            self.request_doorbell(ctx);
        }
        self.try_post(ctx);
        bits
    }

    // -----------------------------------------------------------------------------
    // Link.

    /// The physical link of the HBA's port changed.
    pub(crate) fn on_cable(&mut self, ctx: &mut Ctx<'_>, up: bool) {
        if self.link.cable == up {
            return;
        }
        self.link.cable = up;
        if !up {
            self.link.link_failures += 1;
            self.link.loss_of_sync += 1;
            let was_up = self.link.logged_in;
            self.link.logged_in = false;
            self.link.flogi = None;
            if self.rings.is_some() {
                self.state = FirmwareState::LossOfSync;
            }
            if was_up && self.operational() {
                self.link_lost(ctx);
                self.queue_async(ctx, AsyncEvent::LoopDown { reason: [0; 4] });
            }
        } else if self.rings.is_some() && self.phase == Phase::Running {
            self.state = FirmwareState::WaitLogin;
            let t = self.cfg.timing.link_init;
            self.at(ctx, t, FwEvent::LinkInit);
        }
    }

    /// Begin fabric login (FLOGI) if the link is up.
    fn link_init(&mut self, ctx: &mut Ctx<'_>) {
        if !self.operational()
            || !self.link.cable
            || self.link.logged_in
            || self.link.flogi.is_some()
        {
            return;
        }
        self.state = FirmwareState::WaitLogin;
        self.send_flogi(ctx);
    }

    /// The fabric accepted our FLOGI: we are an N_Port with `port_id`.
    pub(crate) fn fabric_login_done(&mut self, ctx: &mut Ctx<'_>, port_id: PortId) {
        self.link.flogi = None;
        self.link.logged_in = true;
        self.link.port_id = port_id;
        self.link.link_up_count += 1;
        self.state = FirmwareState::Ready;
        self.need_marker();
        let speed = self.cfg.link_speed;
        self.queue_async(ctx, AsyncEvent::LoopUp { speed, fec: false });
    }

    /// Every exchange and login is lost with the link (LOOP_DOWN).
    fn link_lost(&mut self, ctx: &mut Ctx<'_>) {
        self.abort_all_exchanges(ctx, target::CTIO_PORT_UNAVAILABLE);
        self.ports.clear();
        self.need_marker();
    }

    /// A LIP / link reset: open exchanges aborted (LIP_RESET), logins kept.
    pub(crate) fn lip(&mut self, ctx: &mut Ctx<'_>) {
        if !self.operational() || !self.link.logged_in {
            return;
        }
        self.link.lip_count += 1;
        // Needed before the event is posted: the driver observes the LIP when it
        // acknowledges LIP_OCCURRED.
        self.need_marker();
        self.queue_async(ctx, AsyncEvent::LipOccurred { lip_type: 0xF7F7 });
        self.abort_all_exchanges(ctx, target::CTIO_LIP_RESET);
        self.notify_lip_reset(ctx);
        let speed = self.cfg.link_speed;
        self.queue_async(ctx, AsyncEvent::LoopUp { speed, fec: false });
    }

    /// A frame arrived for the HBA.
    pub(crate) fn on_frame(&mut self, ctx: &mut Ctx<'_>, frame: &Frame) {
        if !frame.crc_ok() {
            self.link.invalid_crc += 1;
            ctx.discard(self.link.port_id, "CRC error");
            return;
        }
        if !self.risc_runs() || self.phase != Phase::Running || self.rings.is_none() {
            ctx.discard(self.link.port_id, "firmware not running");
            return;
        }
        self.frame_in(ctx, frame);
    }
}
