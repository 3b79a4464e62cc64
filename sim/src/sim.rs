//! [`Sim`]: the device side of the simulated HBA and everything around it — the firmware
//! model, the fabric, simulated initiators and workloads, fault injection — driven by a
//! discrete-event loop on a virtual clock.
//!
//! ```
//! use rscst_sim::{Sim, SimConfig};
//! use rscst_hba::{Platform, PciConfig};
//!
//! let (mut sim, platform) = Sim::new(SimConfig::default());
//! assert_eq!(platform.pci().id().vendor, 0x1077);
//! // Hand `platform` to the driver; step the simulator from the test loop:
//! sim.run_for(core::time::Duration::from_millis(1));
//! assert!(sim.violations().is_empty());
//! ```

use core::time::Duration;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use rscst_fw::PortId;

use crate::InitiatorId;
use crate::chip::ChipModel;
use crate::device::Shared;
use crate::event::EventQueue;
use crate::fabric::{Fabric, FabricConfig, HBA_SLOT, NameServerEntry, Slot, Tx};
use crate::fault::{FaultConfig, FaultInjector, FrameId, InjectedFault, ScheduledFault};
use crate::firmware::{Firmware, FirmwareConfig, FirmwareStats, FwEvent};
use crate::frame::{DataFrame, Frame, FramePool};
use crate::initiator::{
    CommandSpec, Control, FrameOutcome, IniTimer, Initiator, InitiatorConfig, InitiatorEvent,
    InitiatorHandler, InitiatorStats, Owner, ResultRef, SubmitError, Tag,
};
use crate::iommu::{DEFAULT_IOVA_BASE, DmaView, Iommu, IommuFault, SimDmaPool};
use crate::pcap::PcapWriter;
use crate::platform::SimPlatform;
use crate::rng::SimRng;
use crate::time::SimTime;
use crate::trace::{TraceConfig, TraceEvent, TraceKind, TracedFrame, Tracer};
use crate::violation::Violation;
use rscst_fw::Lun;
use rscst_fw::fc::TmFunction;

/// Everything a scenario chooses.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// The chip modelled (ISP2532 by default).
    pub chip: ChipModel,
    /// Seed of every random choice outside fault injection.
    pub seed: u64,
    /// The firmware model.
    pub firmware: FirmwareConfig,
    /// The fabric.
    pub fabric: FabricConfig,
    /// Faults.
    pub faults: FaultConfig,
    /// Tracing.
    pub trace: TraceConfig,
    /// First IOVA of the DMA pool.
    pub iova_base: u64,
    /// Panic when the [`Sim`] is dropped with IOMMU faults the test did not take.
    pub fail_on_iommu_fault: bool,
    /// The interrupt line: `Edge` (MSI, the default, as the ISP24xx and later
    /// are run under VFIO: a message per posted cause, consumed by the driver's
    /// acknowledge) or `Level` (INTx: the level of `host_status` B15 with the
    /// interrupt enabled, re-armed by the acknowledge).
    pub irq_trigger: rscst_hba::Trigger,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            chip: ChipModel::default(),
            seed: 1,
            firmware: FirmwareConfig::default(),
            fabric: FabricConfig::default(),
            faults: FaultConfig::default(),
            trace: TraceConfig::default(),
            iova_base: DEFAULT_IOVA_BASE,
            fail_on_iommu_fault: true,
            irq_trigger: rscst_hba::Trigger::Edge,
        }
    }
}

impl SimConfig {
    /// For threaded runs and benchmarks: no modelled latencies, zero-time fabric, no trace.
    pub fn threaded() -> SimConfig {
        let mut c = SimConfig::default();
        c.firmware.timing = crate::firmware::Timing::immediate();
        c.fabric.latency = Duration::ZERO;
        c.fabric.bytes_per_sec = 0;
        c.trace = TraceConfig::off();
        c
    }

    /// The default configuration for another chip (its port at the chip's link speed,
    /// [`ChipModel::link_speed`]).
    pub fn with_chip(chip: ChipModel) -> SimConfig {
        let mut c = SimConfig {
            chip,
            ..SimConfig::default()
        };
        c.firmware.link_speed = chip.link_speed();
        c
    }
}

/// A timed event of the simulation.
pub(crate) enum Event {
    Fw(u32, FwEvent),
    Ini(InitiatorId, IniTimer),
    Deliver { to: Slot, frame: Frame },
    Cable { slot: Slot, up: bool },
    Fault(ScheduledFault),
    RandomLinkBounce,
    WorkloadKick(usize, InitiatorId),
    WorkloadTimer(usize, crate::workload::WorkloadTimer),
    RandomLip,
}

/// What a model may do while it handles something: read the clock, schedule events, send
/// frames, draw faults.
pub(crate) struct Ctx<'a> {
    pub now: SimTime,
    pub shared: &'a Shared,
    pub queue: &'a mut EventQueue<Event>,
    pub out: &'a mut Vec<(Slot, Frame, Tx)>,
    pub faults: &'a mut FaultInjector,
    pub pool: &'a mut FramePool,
    /// The device's view of the IOMMU (DMA).
    pub dma: &'a mut DmaView,
    /// The fabric: its ports (routing) and links (serialisation).
    pub fabric: &'a mut Fabric,
    /// Whether link serialisation is modelled (stepped mode with finite links).
    pub paced: bool,
    /// The HBA left the fabric (reset, system error).
    pub fabric_logout_hba: bool,
}

impl Ctx<'_> {
    /// Queues `frame` for transmission from `from`: it goes on `from`'s link behind what
    /// the port already sends. Returns when its last bit has left the port.
    ///
    /// A frame between two N_Ports that nothing can happen to on the way (no frame fault
    /// configured) and nothing records (no trace, no pcap) is routed at once, straight into
    /// the event queue; anything else (fabric services, discards, faults, recording) goes
    /// through the simulator's outbox when the handler returns. Frames to one destination
    /// always take the same way, so they stay in order.
    #[inline]
    pub(crate) fn send(&mut self, from: Slot, frame: Frame) -> SimTime {
        let len = frame.bytes.len();
        let tx = self.fabric.links.send(self.now, from, len, self.paced);
        match self.direct_route(from, &frame) {
            Some(to) => {
                let latency = self.fabric.cfg.latency;
                let t = self
                    .fabric
                    .links
                    .arrival(tx, to, len, latency, None, self.paced);
                self.queue.push(t, Event::Deliver { to, frame });
            }
            None => self.out.push((from, frame, tx)),
        }
        tx.end
    }

    /// The destination of a frame that can skip the outbox (see [`Ctx::send`]).
    #[inline]
    fn direct_route(&self, from: Slot, frame: &Frame) -> Option<Slot> {
        if self.faults.frame_faults_possible() || self.shared.trace.frames_wanted() {
            return None;
        }
        let d_id = frame.hdr?.d_id;
        if d_id.is_well_known() {
            return None;
        }
        let p = self.fabric.ports.get(from)?;
        if !(p.cable && p.logged_in) {
            return None;
        }
        self.fabric.route(d_id)
    }

    /// When `from`'s link is free to send (now or later).
    pub(crate) fn link_free(&self, from: Slot) -> SimTime {
        self.fabric.links.free_at(self.now, from)
    }

    pub(crate) fn discard(&self, at: PortId, reason: &'static str) {
        self.shared
            .trace
            .record(self.now, TraceKind::FrameDiscarded { at, reason });
    }

    fn check_bus_master(&self) {
        if !self.shared.pci.bus_master()
            && !self.shared.bus_master_warned.swap(true, Ordering::Relaxed)
        {
            self.shared
                .violation(crate::violation::ViolationKind::DmaWithoutBusMaster);
        }
    }

    /// Device read through the IOMMU; a fault is recorded and traced, and `false` returned.
    pub(crate) fn dma_read(&mut self, iova: u64, buf: &mut [u8], what: &'static str) -> bool {
        self.check_bus_master();
        match self.dma.read(self.now, iova, buf, what) {
            Ok(()) => true,
            Err(f) => {
                self.shared.trace.record(self.now, TraceKind::IommuFault(f));
                false
            }
        }
    }

    /// Device write through the IOMMU; a fault is recorded and traced, and `false` returned.
    pub(crate) fn dma_write(&mut self, iova: u64, data: &[u8], what: &'static str) -> bool {
        self.check_bus_master();
        match self.dma.write(self.now, iova, data, what) {
            Ok(()) => true,
            Err(f) => {
                self.shared.trace.record(self.now, TraceKind::IommuFault(f));
                false
            }
        }
    }

    /// Device atomic word store (release) through the IOMMU.
    pub(crate) fn dma_store_u32(&mut self, iova: u64, v: u32, what: &'static str) -> bool {
        match self.dma.store_u32(self.now, iova, v, what) {
            Ok(()) => true,
            Err(f) => {
                self.shared.trace.record(self.now, TraceKind::IommuFault(f));
                false
            }
        }
    }
}

/// The simulated HBA, its fabric and everything attached to it.
pub struct Sim {
    pub(crate) shared: Arc<Shared>,
    pool: SimDmaPool,
    platform: SimPlatform,
    now: SimTime,
    queue: EventQueue<Event>,
    pub(crate) fw: Firmware,
    pub(crate) fabric: Fabric,
    pub(crate) inis: Vec<Initiator>,
    /// Boxed: taken out while they run, which then moves a pointer, not the workload.
    pub(crate) workloads: Vec<Option<Box<crate::workload::Workload>>>,
    faults: FaultInjector,
    frames: FramePool,
    dma: DmaView,
    outbox: Vec<(Slot, Frame, Tx)>,
    spare: Vec<(Slot, Frame, Tx)>,
    /// A spare initiator event list (see `flush_ini_events`).
    ev_spare: Vec<InitiatorEvent<'static>>,
    #[allow(dead_code)]
    rng: SimRng,
    fail_on_iommu_fault: bool,
}

impl core::fmt::Debug for Sim {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Sim({} at {})", self.shared.chip, self.now)
    }
}

impl Sim {
    /// A new simulator and the platform to give the driver.
    pub fn new(cfg: SimConfig) -> (Sim, SimPlatform) {
        let iommu = Arc::new(Iommu::new(cfg.iova_base));
        let tracer = Tracer::new(cfg.trace);
        let shared = Arc::new(Shared::new(
            cfg.chip,
            Arc::clone(&iommu),
            tracer,
            cfg.firmware.wwpn,
            cfg.firmware.wwnn,
            cfg.irq_trigger == rscst_hba::Trigger::Edge,
        ));
        let dma = DmaView::new(Arc::clone(&iommu));
        let pool = SimDmaPool::new(iommu);
        let platform = SimPlatform::new(Arc::clone(&shared), pool.clone());
        let mut fabric = Fabric::new(cfg.fabric);
        let hba = fabric.attach(
            cfg.firmware.wwpn,
            cfg.firmware.wwnn,
            cfg.fabric.hba_link_up,
            true,
            false,
            crate::fabric::link_bytes_per_sec(cfg.firmware.link_speed),
        );
        debug_assert_eq!(hba, HBA_SLOT);
        let mut fw = Firmware::new(cfg.firmware.clone());
        fw.link.cable = cfg.fabric.hba_link_up;
        let mut sim = Sim {
            shared,
            pool,
            platform: platform.clone(),
            now: SimTime::ZERO,
            queue: EventQueue::default(),
            fw,
            fabric,
            inis: Vec::new(),
            workloads: Vec::new(),
            faults: FaultInjector::new(cfg.faults.clone()),
            frames: FramePool::default(),
            dma,
            outbox: Vec::new(),
            spare: Vec::new(),
            ev_spare: Vec::new(),
            rng: SimRng::new(cfg.seed),
            fail_on_iommu_fault: cfg.fail_on_iommu_fault,
        };
        sim.schedule_random_faults_initial();
        (sim, platform)
    }

    /// Another handle on the driver's platform (it is `Clone`).
    pub fn platform(&self) -> SimPlatform {
        self.platform.clone()
    }

    /// The DMA pool (to allocate memory a test or tool shares with the driver, e.g. a RAM
    /// LUN).
    pub fn dma_pool(&self) -> &SimDmaPool {
        &self.pool
    }

    /// The chip modelled.
    pub fn chip(&self) -> ChipModel {
        self.shared.chip
    }

    /// The current simulated time.
    pub fn now(&self) -> SimTime {
        self.now
    }

    /// The time of the next scheduled event, if any.
    pub fn next_event_time(&self) -> Option<SimTime> {
        self.queue.peek_time()
    }

    fn set_now(&mut self, t: SimTime) {
        if t > self.now {
            self.now = t;
            self.queue.set_now(t);
        }
        self.shared.clock.store(self.now.0, Ordering::Relaxed);
    }

    fn ctx_parts(&mut self) -> (Ctx<'_>, &mut Firmware) {
        let paced = self
            .fabric
            .links
            .paced(self.shared.threaded.load(Ordering::Relaxed));
        let ctx = Ctx {
            now: self.now,
            shared: &self.shared,
            queue: &mut self.queue,
            out: &mut self.outbox,
            faults: &mut self.faults,
            pool: &mut self.frames,
            dma: &mut self.dma,
            fabric: &mut self.fabric,
            paced,
            fabric_logout_hba: false,
        };
        (ctx, &mut self.fw)
    }

    fn ini_parts(&mut self, idx: usize) -> Option<(Ctx<'_>, &mut Initiator)> {
        let ini = self.inis.get_mut(idx)?;
        let paced = self
            .fabric
            .links
            .paced(self.shared.threaded.load(Ordering::Relaxed));
        let ctx = Ctx {
            now: self.now,
            shared: &self.shared,
            queue: &mut self.queue,
            out: &mut self.outbox,
            faults: &mut self.faults,
            pool: &mut self.frames,
            dma: &mut self.dma,
            fabric: &mut self.fabric,
            paced,
            fabric_logout_hba: false,
        };
        Some((ctx, ini))
    }

    /// Runs `f` on initiator `id` with a context, then routes its frames and delivers its
    /// events.
    fn with_ini<R>(
        &mut self,
        id: InitiatorId,
        f: impl FnOnce(&mut Ctx<'_>, &mut Initiator) -> R,
    ) -> Option<R> {
        let (mut ctx, ini) = self.ini_parts(id.0)?;
        let r = f(&mut ctx, ini);
        self.after(false);
        self.flush_ini_events(id.0);
        Some(r)
    }

    fn flush_ini_events(&mut self, idx: usize) {
        loop {
            let Some(ini) = self.inis.get_mut(idx) else {
                return;
            };
            if ini.pending.is_empty() {
                return;
            }
            // Swap the pending list with a spare one (both keep their storage; events
            // the owner causes meanwhile land in the spare).
            let mut evs = std::mem::take(&mut self.ev_spare);
            std::mem::swap(&mut evs, &mut ini.pending);
            for ev in evs.drain(..) {
                self.dispatch(idx, ev);
            }
            if evs.capacity() > self.ev_spare.capacity() {
                self.ev_spare = evs;
            }
            self.after(false);
        }
    }

    /// Hands one event to the port's owner. A handler or workload gets a completion's
    /// result lent (and its read buffer comes back to the port for a later command).
    fn dispatch(&mut self, idx: usize, ev: InitiatorEvent<'_>) {
        let Some(ini) = self.inis.get_mut(idx) else {
            return;
        };
        let owner = std::mem::replace(&mut ini.owner, Owner::Busy);
        let id = InitiatorId(idx);
        // A handler or workload gets a completion's result lent; its storage comes back.
        let (ev, lent) = match ev {
            InitiatorEvent::Completed {
                tag,
                result: ResultRef::Owned(r),
            } if !matches!(owner, Owner::Queue | Owner::Busy) => (None, Some((tag, r))),
            ev => (Some(ev), None),
        };
        let ev = match (ev, &lent) {
            (Some(ev), _) => ev,
            (None, Some((tag, r))) => InitiatorEvent::Completed {
                tag: *tag,
                result: ResultRef::Borrowed(r),
            },
            (None, None) => return,
        };
        let owner = match owner {
            Owner::Queue | Owner::Busy => {
                ini.events.push_back(ev.into_owned());
                owner
            }
            Owner::Handler(mut h) => {
                h.on_event(&mut Control { sim: self, id }, ev);
                Owner::Handler(h)
            }
            Owner::Workload(w) => {
                self.with_workload(w, |wl, ctl| wl.on_event(ctl, ev), id);
                Owner::Workload(w)
            }
        };
        if let Some(ini) = self.inis.get_mut(idx) {
            ini.owner = owner;
            if let Some((_, r)) = lent {
                ini.recycle_result(r);
            }
        }
    }

    /// Runs `f` on workload `w` with a control on initiator `id`, then schedules the
    /// workload's timers.
    fn with_workload(
        &mut self,
        w: usize,
        f: impl FnOnce(&mut crate::workload::Workload, &mut Control<'_>),
        id: InitiatorId,
    ) {
        let Some(mut wl) = self.workloads.get_mut(w).and_then(|s| s.take()) else {
            return;
        };
        f(&mut wl, &mut Control { sim: self, id });
        for (after, t) in wl.timers.drain(..) {
            self.queue
                .push(self.now + after, Event::WorkloadTimer(w, t));
        }
        if let Some(slot) = self.workloads.get_mut(w) {
            *slot = Some(wl);
        }
    }

    /// Acts on the driver's register writes; returns whether that changed anything (a
    /// command taken, an entry written, an interrupt posted, an event scheduled).
    fn service(&mut self) -> bool {
        if !self.fw.needs_service(&self.shared) {
            return false;
        }
        let before = (self.queue.pushed(), self.fw.stats);
        let (mut ctx, fw) = self.ctx_parts();
        let bits = fw.service(&mut ctx);
        let logout = ctx.fabric_logout_hba;
        self.after(logout);
        bits & crate::device::work::CMD != 0 || before != (self.queue.pushed(), self.fw.stats)
    }

    /// Applies what a handler asked for: frames out, fabric changes.
    fn after(&mut self, hba_logout: bool) {
        if hba_logout {
            let rscn = self.fabric.set_logged_in(&mut self.frames, HBA_SLOT, false);
            for (to, f) in rscn {
                self.transmit(PortId::FABRIC_CONTROLLER, to, f, Tx::at(self.now));
            }
        }
        while !self.outbox.is_empty() {
            let mut batch = std::mem::replace(&mut self.outbox, std::mem::take(&mut self.spare));
            for (from, frame, tx) in batch.drain(..) {
                self.route(from, frame, tx);
            }
            self.spare = batch;
        }
    }

    /// Routes a frame sent by the port in `from` (on its link as `tx`).
    fn route(&mut self, from: Slot, frame: Frame, tx: Tx) {
        let Ok(h) = frame.header() else {
            self.frames.put(frame.bytes);
            return;
        };
        let src = self
            .fabric
            .ports
            .get(from)
            .map(|p| p.port_id)
            .unwrap_or_default();
        if h.d_id.is_well_known() {
            // Fabric service: record the request, answer it.
            self.record_frame(h.s_id, h.d_id, &frame);
            let out = self.fabric.service(&mut self.frames, from, &frame);
            self.frames.put(frame.bytes);
            if let Some((slot, logged_in)) = out.login_changed {
                let rscn = self.fabric.set_logged_in(&mut self.frames, slot, logged_in);
                for (to, f) in rscn {
                    self.transmit(PortId::FABRIC_CONTROLLER, to, f, Tx::at(self.now));
                }
            }
            for (to, f) in out.frames {
                let s = f.header().map(|h| h.s_id).unwrap_or_default();
                self.transmit(s, to, f, Tx::at(self.now));
            }
            return;
        }
        let sender_ok = self
            .fabric
            .ports
            .get(from)
            .is_some_and(|p| p.cable && p.logged_in);
        match self.fabric.route(h.d_id) {
            Some(to) if sender_ok => self.transmit(src, to, frame, tx),
            _ => {
                self.record_frame(h.s_id, h.d_id, &frame);
                self.shared.trace.record(
                    self.now,
                    TraceKind::FrameDiscarded {
                        at: h.d_id,
                        reason: "fabric: no route to D_ID",
                    },
                );
                self.frames.put(frame.bytes);
            }
        }
    }

    fn record_frame(&self, from: PortId, to: PortId, frame: &Frame) {
        if self.shared.trace.frames_wanted() {
            let crc = frame
                .crc
                .unwrap_or_else(|| rscst_fw::fc::crc32(&frame.bytes));
            self.shared.trace.frame(
                self.now,
                TracedFrame {
                    from,
                    to,
                    sof: frame.sof,
                    eof: frame.eof,
                    bytes: frame.bytes.clone(),
                    crc,
                },
            );
        }
    }

    /// Puts a frame on the wire to `to`, with frame faults (`tx`: when it is on the
    /// sender's link; the switch forwards it down `to`'s link).
    fn transmit(&mut self, from: PortId, to: Slot, mut frame: Frame, tx: Tx) {
        let Ok(h) = frame.header() else { return };
        if !self.faults.frame_faults_possible() && !self.shared.trace.frames_wanted() {
            // Nothing can happen to the frame on the way, and nothing records it.
            let t = self.arrival(tx, to, frame.bytes.len(), None);
            self.queue.push(t, Event::Deliver { to, frame });
            return;
        }
        let to_hba = to == HBA_SLOT;
        let from_hba = !to_hba && self.fabric.ports.first().is_some_and(|p| p.port_id == from);
        let fate = self
            .faults
            .frame(to_hba, from_hba, h.fc_type == rscst_fw::fc::FcType::Fcp);
        let id = FrameId {
            from,
            to: h.d_id,
            r_ctl: h.r_ctl.into(),
            ox_id: h.ox_id.0,
        };
        let want_crc = fate.corrupt || self.shared.trace.frames_wanted();
        if want_crc && frame.crc.is_none() {
            frame.crc = Some(rscst_fw::fc::crc32(&frame.bytes));
        }
        if fate.corrupt {
            frame.hdr = None;
            let n = frame.bytes.len();
            if n > 0 {
                let bit = (h.ox_id.0 as usize * 7 + n) % (n * 8);
                frame.bytes[bit / 8] ^= 1 << (bit % 8);
            }
            self.shared.trace.record(
                self.now,
                TraceKind::Fault(InjectedFault::FrameCorrupted(id)),
            );
        }
        self.record_frame(from, h.d_id, &frame);
        if fate.drop {
            self.shared
                .trace
                .record(self.now, TraceKind::Fault(InjectedFault::FrameDropped(id)));
            self.frames.put(frame.bytes);
            return;
        }
        if let Some(d) = fate.delay {
            self.shared.trace.record(
                self.now,
                TraceKind::Fault(InjectedFault::FrameDelayed(id, d)),
            );
        }
        if fate.duplicate {
            self.shared.trace.record(
                self.now,
                TraceKind::Fault(InjectedFault::FrameDuplicated(id)),
            );
            let t = self.arrival(tx, to, frame.bytes.len(), fate.delay);
            self.queue.push(
                t,
                Event::Deliver {
                    to,
                    frame: frame.clone(),
                },
            );
        }
        let t = self.arrival(tx, to, frame.bytes.len(), fate.delay);
        self.queue.push(t, Event::Deliver { to, frame });
    }

    fn arrival(&mut self, tx: Tx, to: Slot, len: usize, extra: Option<Duration>) -> SimTime {
        let paced = self
            .fabric
            .links
            .paced(self.shared.threaded.load(Ordering::Relaxed));
        let latency = self.fabric.cfg.latency;
        self.fabric
            .links
            .arrival(tx, to, len, latency, extra, paced)
    }

    fn handle(&mut self, ev: Event) {
        match ev {
            Event::Fw(epoch, e) => {
                let (mut ctx, fw) = self.ctx_parts();
                fw.on_event(&mut ctx, epoch, e);
                let lo = ctx.fabric_logout_hba;
                self.after(lo);
            }
            Event::Deliver { to, frame } => self.deliver(to, frame),
            Event::WorkloadKick(w, id) => {
                self.with_workload(w, |wl, ctl| wl.kick(ctl), id);
                self.after(false);
                self.flush_ini_events(id.0);
            }
            Event::WorkloadTimer(w, t) => {
                let id = match t {
                    crate::workload::WorkloadTimer::Abort { ini, .. }
                    | crate::workload::WorkloadTimer::Logout { ini }
                    | crate::workload::WorkloadTimer::Login { ini } => ini,
                };
                self.with_workload(w, |wl, ctl| wl.on_timer(ctl, t), id);
                self.after(false);
                self.flush_ini_events(id.0);
            }
            Event::Ini(id, t) => {
                self.with_ini(id, |ctx, ini| ini.on_timer(ctx, t));
            }
            Event::Cable { slot, up } => self.set_cable(slot, up),
            Event::Fault(f) => self.apply_fault(f),
            Event::RandomLinkBounce => {
                let down = self.faults.cfg.link_down_for;
                self.apply_fault(ScheduledFault::LinkBounce(down));
                if let Some(mean) = self.faults.cfg.link_bounce_every {
                    let d = FaultInjector::next_interval(&mut self.faults.link, mean);
                    self.queue
                        .push(self.now + down + d, Event::RandomLinkBounce);
                }
            }
            Event::RandomLip => {
                self.apply_fault(ScheduledFault::Lip);
                if let Some(mean) = self.faults.cfg.lip_every {
                    let d = FaultInjector::next_interval(&mut self.faults.link, mean);
                    self.queue.push(self.now + d, Event::RandomLip);
                }
            }
        }
    }

    fn deliver(&mut self, to: Slot, frame: Frame) {
        if !self.fabric.ports.get(to).is_some_and(|p| p.cable) {
            self.frames.put(frame.bytes);
            return;
        }
        if to == HBA_SLOT {
            let (mut ctx, fw) = self.ctx_parts();
            fw.on_frame(&mut ctx, &frame);
            let lo = ctx.fabric_logout_hba;
            self.frames.put(frame.bytes);
            self.after(lo);
        } else {
            self.deliver_other(to, frame);
        }
    }

    fn deliver_other(&mut self, to: Slot, frame: Frame) {
        let idx = to - 1;
        // An RSCN is decoded here (the simulator knows the name server); other frames
        // are not decoded twice.
        let els_req = frame.header().is_ok_and(|h| {
            h.r_ctl == rscst_fw::fc::RCtl::ElsReq && h.fc_type == rscst_fw::fc::FcType::Els
        });
        let rscn: Vec<PortId> = match els_req.then(|| frame.decode()) {
            Some(Ok(rscst_fw::fc::FcFrameRepr {
                payload: rscst_fw::fc::FcPayload::Els(rscst_fw::fc::els::ElsRepr::Rscn(r)),
                ..
            })) => r.pages().iter().map(|p| p.port_id).collect(),
            _ => Vec::new(),
        };
        let outcome = match self.ini_parts(idx) {
            Some((mut ctx, ini)) => ini.on_frame(&mut ctx, &frame),
            None => FrameOutcome::None,
        };
        self.after(false);
        // The frame's buffer, unless a handler kept it.
        let spare = if let FrameOutcome::DataIn { tag, offset } = outcome {
            self.flush_ini_events(idx);
            let to_handler = self
                .inis
                .get(idx)
                .is_some_and(|i| matches!(i.owner, Owner::Handler(_)));
            let spare = if to_handler {
                self.dispatch_frame(idx, tag, offset, frame)
            } else {
                let ev = InitiatorEvent::DataIn {
                    tag,
                    offset,
                    data: std::borrow::Cow::Borrowed(frame.payload()),
                };
                self.dispatch(idx, ev);
                Some(frame.bytes)
            };
            self.after(false);
            spare
        } else {
            Some(frame.bytes)
        };
        for port in rscn {
            let present = self.fabric.route(port).is_some();
            if let Some((mut ctx, ini)) = self.ini_parts(idx) {
                ini.rscn(&mut ctx, port, present);
            }
            self.after(false);
        }
        self.flush_ini_events(idx);
        if let Some(b) = spare {
            self.frames.put(b);
        }
    }

    /// Hands a data frame whole to the port's handler, which may keep it. Returns the
    /// frame's buffer unless kept.
    fn dispatch_frame(
        &mut self,
        idx: usize,
        tag: Tag,
        offset: u32,
        frame: Frame,
    ) -> Option<Vec<u8>> {
        let Some(ini) = self.inis.get_mut(idx) else {
            return Some(frame.bytes);
        };
        let mut h = match std::mem::replace(&mut ini.owner, Owner::Busy) {
            Owner::Handler(h) => h,
            other => {
                // Not a handler (the caller checked): as a plain event.
                ini.owner = other;
                let ev = InitiatorEvent::DataIn {
                    tag,
                    offset,
                    data: std::borrow::Cow::Borrowed(frame.payload()),
                };
                self.dispatch(idx, ev);
                return Some(frame.bytes);
            }
        };
        let back = h.on_data_frame(
            &mut Control {
                sim: self,
                id: InitiatorId(idx),
            },
            tag,
            offset,
            DataFrame::new(frame),
        );
        if let Some(ini) = self.inis.get_mut(idx) {
            ini.owner = Owner::Handler(h);
        }
        back.map(DataFrame::into_bytes)
    }

    /// Gives the buffer of a data frame a handler kept back to the frame pool.
    pub fn recycle_data_frame(&mut self, frame: DataFrame) {
        self.frames.put(frame.into_bytes());
    }

    fn set_cable(&mut self, slot: Slot, up: bool) {
        let pid = self
            .fabric
            .ports
            .get(slot)
            .map(|p| p.port_id)
            .unwrap_or_default();
        self.shared
            .trace
            .record(self.now, TraceKind::Link { port: pid, up });
        let rscn = self.fabric.set_cable(&mut self.frames, slot, up);
        for (to, f) in rscn {
            self.transmit(PortId::FABRIC_CONTROLLER, to, f, Tx::at(self.now));
        }
        if slot == HBA_SLOT {
            let (mut ctx, fw) = self.ctx_parts();
            fw.on_cable(&mut ctx, up);
            let lo = ctx.fabric_logout_hba;
            self.after(lo);
        } else {
            let id = InitiatorId(slot - 1);
            if up {
                self.with_ini(id, |ctx, ini| ini.start_flogi(ctx));
            } else {
                self.with_ini(id, |ctx, ini| ini.link_down(ctx));
            }
        }
    }

    fn apply_fault(&mut self, f: ScheduledFault) {
        match f {
            ScheduledFault::LinkBounce(d) => {
                self.shared
                    .trace
                    .record(self.now, TraceKind::Fault(InjectedFault::LinkBounce(d)));
                self.set_cable(HBA_SLOT, false);
                self.queue.push(
                    self.now + d,
                    Event::Cable {
                        slot: HBA_SLOT,
                        up: true,
                    },
                );
            }
            ScheduledFault::Lip => {
                self.shared
                    .trace
                    .record(self.now, TraceKind::Fault(InjectedFault::Lip));
                let (mut ctx, fw) = self.ctx_parts();
                fw.lip(&mut ctx);
                let lo = ctx.fabric_logout_hba;
                self.after(lo);
            }
            ScheduledFault::SystemError | ScheduledFault::RiscHalt => {
                let (mut ctx, fw) = self.ctx_parts();
                let code = (f == ScheduledFault::SystemError).then_some(0x0DEA);
                fw.halt(&mut ctx, code);
                let lo = ctx.fabric_logout_hba;
                self.after(lo);
            }
            ScheduledFault::StallNextMailbox => self.faults.stall_next_mailbox = true,
            ScheduledFault::LoseNextCtioCompletion => self.faults.lose_next_ctio = true,
            ScheduledFault::DelayNextCtioCompletion(d) => self.faults.delay_next_ctio = Some(d),
            ScheduledFault::DropNextFrameToHba => self.faults.drop_next_to_hba = true,
            ScheduledFault::InitiatorLogout(id) => {
                let pid = self.initiator_port_id(id).unwrap_or_default();
                self.shared.trace.record(
                    self.now,
                    TraceKind::Fault(InjectedFault::InitiatorLogout(pid)),
                );
                if let Some(target) = self.hba_port_id() {
                    let _ = self.initiator_logout(id, target);
                }
            }
            ScheduledFault::AbtsStorm(id, n) => {
                let pid = self.initiator_port_id(id).unwrap_or_default();
                self.shared
                    .trace
                    .record(self.now, TraceKind::Fault(InjectedFault::AbtsStorm(pid, n)));
                let tags = self
                    .inis
                    .get(id.0)
                    .map(|i| i.open_tags(n as usize))
                    .unwrap_or_default();
                for t in tags {
                    let _ = self.initiator_abort(id, t);
                }
            }
        }
    }

    fn schedule_random_faults_initial(&mut self) {
        if let Some(mean) = self.faults.cfg.link_bounce_every {
            let d = FaultInjector::next_interval(&mut self.faults.link, mean);
            self.queue.push(self.now + d, Event::RandomLinkBounce);
        }
        if let Some(mean) = self.faults.cfg.lip_every {
            let d = FaultInjector::next_interval(&mut self.faults.link, mean);
            self.queue.push(self.now + d, Event::RandomLip);
        }
    }

    // ---------------------------------------------------------------------------------
    // Stepping.

    /// Does one unit of work: acts on the driver's register writes if that changes
    /// anything, or else runs the next scheduled event (advancing the clock to it).
    /// Returns `false` when there was nothing to do (the simulation waits for the driver).
    ///
    /// Rewriting a register with no effect (the same out-pointer again) is not work, so a
    /// driver that writes on every poll still lets time advance.
    pub fn step(&mut self) -> bool {
        self.set_now(self.now);
        if self.service() {
            return true;
        }
        match self.queue.pop() {
            Some((t, ev)) => {
                self.set_now(t);
                self.handle(ev);
                self.service();
                true
            }
            None => false,
        }
    }

    /// Runs every event up to and including time `t`, then sets the clock to `t`.
    pub fn run_until(&mut self, t: SimTime) {
        self.service();
        while let Some(next) = self.queue.peek_time() {
            if next > t {
                break;
            }
            if let Some((at, ev)) = self.queue.pop() {
                self.set_now(at);
                self.handle(ev);
                self.service();
            }
        }
        self.set_now(t);
        self.service();
    }

    /// Threaded mode: moves the clock to `t` (the host clock), then runs at most `max`
    /// events due by then; returns whether more are due. Events scheduled for an earlier
    /// instant that the thread could not get to in time run late, at the current time.
    pub(crate) fn run_due(&mut self, t: SimTime, max: usize) -> bool {
        self.set_now(t);
        self.service();
        for _ in 0..max {
            match self.queue.peek_time() {
                Some(next) if next <= t => {}
                _ => return false,
            }
            if let Some((at, ev)) = self.queue.pop() {
                self.set_now(at);
                self.handle(ev);
                self.service();
            }
        }
        self.queue.peek_time().is_some_and(|next| next <= t)
    }

    /// Runs for `d` of simulated time.
    pub fn run_for(&mut self, d: Duration) {
        let t = self.now + d;
        self.run_until(t);
    }

    /// Steps until `cond` holds or `timeout` of simulated time passes; returns whether it
    /// held. `cond` sees the simulator between events.
    pub fn run_until_cond(
        &mut self,
        timeout: Duration,
        mut cond: impl FnMut(&mut Sim) -> bool,
    ) -> bool {
        let deadline = self.now + timeout;
        loop {
            if cond(self) {
                return true;
            }
            match self.queue.peek_time() {
                Some(t) if t <= deadline => {
                    self.step();
                }
                _ => {
                    self.service();
                    if cond(self) {
                        return true;
                    }
                    self.set_now(deadline);
                    self.service();
                    return cond(self);
                }
            }
        }
    }

    // ---------------------------------------------------------------------------------
    // Faults and link control.

    /// Schedules a fault at time `at` (now if in the past).
    pub fn schedule_fault(&mut self, at: SimTime, fault: ScheduledFault) {
        self.queue.push(at.max(self.now), Event::Fault(fault));
    }

    /// Injects a fault now.
    pub fn inject(&mut self, fault: ScheduledFault) {
        self.apply_fault(fault);
    }

    /// Plugs or unplugs the HBA's cable now.
    pub fn set_hba_link(&mut self, up: bool) {
        self.set_cable(HBA_SLOT, up);
    }

    // ---------------------------------------------------------------------------------
    // Initiators.

    /// Attaches a simulated initiator port to the fabric; it logs in to the fabric at once
    /// ([`InitiatorEvent::FabricLogin`]).
    pub fn add_initiator(&mut self, cfg: InitiatorConfig) -> InitiatorId {
        let rate = self.fabric.cfg.bytes_per_sec;
        let slot = self
            .fabric
            .attach(cfg.wwpn, cfg.wwnn, true, false, true, rate);
        let id = InitiatorId(slot - 1);
        debug_assert_eq!(id.0, self.inis.len());
        self.inis.push(Initiator::new(id, slot, cfg));
        self.queue.push(self.now, Event::Ini(id, IniTimer::Flogi));
        id
    }

    /// Starts a workload on `initiators` (they log in to the target if needed); their
    /// events go to the workload from now on. `None` if the target is unknown (the HBA is
    /// not logged in to the fabric and the spec names no target).
    pub fn start_workload(
        &mut self,
        spec: crate::workload::WorkloadSpec,
        initiators: &[InitiatorId],
    ) -> Option<crate::workload::WorkloadId> {
        let target = spec.target.or_else(|| self.hba_port_id())?;
        let w = self.workloads.len();
        self.workloads
            .push(Some(Box::new(crate::workload::Workload::new(
                spec, target, initiators, self.now,
            ))));
        for &id in initiators {
            if let Some(i) = self.inis.get_mut(id.0) {
                i.owner = Owner::Workload(w);
                self.queue.push(self.now, Event::WorkloadKick(w, id));
            }
        }
        Some(crate::workload::WorkloadId(w))
    }

    /// The workload's statistics so far.
    pub fn workload_report(
        &self,
        id: crate::workload::WorkloadId,
    ) -> Option<crate::workload::WorkloadReport> {
        self.workloads
            .get(id.0)?
            .as_ref()
            .map(|w| w.report().clone())
    }

    /// `true` once the workload issued everything and got every answer.
    pub fn workload_done(&self, id: crate::workload::WorkloadId) -> bool {
        self.workloads
            .get(id.0)
            .and_then(|w| w.as_ref())
            .is_some_and(|w| w.done())
    }

    /// Stops issuing new commands (outstanding ones still complete).
    pub fn stop_workload(&mut self, id: crate::workload::WorkloadId) {
        if let Some(Some(w)) = self.workloads.get_mut(id.0) {
            w.stop();
        }
    }

    /// The initiator ports.
    pub fn initiators(&self) -> Vec<InitiatorId> {
        (0..self.inis.len()).map(InitiatorId).collect()
    }

    /// A control handle on an initiator port (requests go out when the simulator next runs).
    pub fn initiator(&mut self, id: InitiatorId) -> Control<'_> {
        Control { sim: self, id }
    }

    /// Sends events of `id` to `handler` instead of the queue.
    pub fn set_initiator_handler(&mut self, id: InitiatorId, handler: Box<dyn InitiatorHandler>) {
        if let Some(i) = self.inis.get_mut(id.0) {
            i.owner = Owner::Handler(handler);
        }
    }

    /// Takes the events queued for `id` (ports without a handler).
    pub fn initiator_events(&mut self, id: InitiatorId) -> Vec<InitiatorEvent<'static>> {
        self.inis
            .get_mut(id.0)
            .map(|i| i.events.drain(..).collect())
            .unwrap_or_default()
    }

    /// The N_Port ID of `id` once it logged in to the fabric.
    pub fn initiator_port_id(&self, id: InitiatorId) -> Option<PortId> {
        self.inis.get(id.0).filter(|i| i.online).map(|i| i.port_id)
    }

    /// Counters of `id`.
    pub fn initiator_stats(&self, id: InitiatorId) -> InitiatorStats {
        self.inis.get(id.0).map(|i| i.stats).unwrap_or_default()
    }

    /// Commands outstanding on `id`.
    pub fn initiator_outstanding(&self, id: InitiatorId) -> usize {
        self.inis.get(id.0).map(|i| i.outstanding()).unwrap_or(0)
    }

    /// Whether `id` is logged in to `target`.
    pub fn initiator_logged_in(&self, id: InitiatorId, target: PortId) -> bool {
        self.inis.get(id.0).is_some_and(|i| i.logged_in(target))
    }

    /// PLOGI + PRLI from `id` to `target`.
    pub fn initiator_login(&mut self, id: InitiatorId, target: PortId) -> Result<(), SubmitError> {
        self.with_ini(id, |ctx, i| i.login(ctx, target))
            .unwrap_or(Err(SubmitError::NoSuchInitiator))
    }

    /// LOGO from `id` to `target`.
    pub fn initiator_logout(&mut self, id: InitiatorId, target: PortId) -> Result<(), SubmitError> {
        self.with_ini(id, |ctx, i| i.logout(ctx, target))
            .unwrap_or(Err(SubmitError::NoSuchInitiator))
    }

    /// A command from `id` to `target`.
    pub fn initiator_command(
        &mut self,
        id: InitiatorId,
        target: PortId,
        spec: CommandSpec,
    ) -> Result<Tag, SubmitError> {
        let mut spec = spec;
        self.with_ini(id, |ctx, i| i.command(ctx, target, &mut spec, None))
            .unwrap_or(Err(SubmitError::NoSuchInitiator))
    }

    /// A buffer for a command's data, from the port's recycled ones.
    pub(crate) fn initiator_buffer(&mut self, id: InitiatorId) -> Vec<u8> {
        self.inis
            .get_mut(id.0)
            .map(|i| i.buffer())
            .unwrap_or_default()
    }

    /// A command whose read data is collected (or streamed) as `collect` says, whatever
    /// the port's configuration (a workload that does not verify needs no copy).
    pub(crate) fn initiator_command_collect(
        &mut self,
        id: InitiatorId,
        target: PortId,
        spec: CommandSpec,
        collect: bool,
    ) -> Result<Tag, SubmitError> {
        let mut spec = spec;
        self.with_ini(id, |ctx, i| {
            i.command(ctx, target, &mut spec, Some(collect))
        })
        .unwrap_or(Err(SubmitError::NoSuchInitiator))
    }

    /// A task management request from `id`.
    pub fn initiator_tmf(
        &mut self,
        id: InitiatorId,
        target: PortId,
        lun: Lun,
        f: TmFunction,
    ) -> Result<Tag, SubmitError> {
        self.with_ini(id, |ctx, i| i.tmf(ctx, target, lun, f))
            .unwrap_or(Err(SubmitError::NoSuchInitiator))
    }

    /// ABTS for a command of `id`.
    pub fn initiator_abort(&mut self, id: InitiatorId, tag: Tag) -> Result<(), SubmitError> {
        self.with_ini(id, |ctx, i| i.abort(ctx, tag))
            .unwrap_or(Err(SubmitError::NoSuchInitiator))
    }

    /// Write data for an XFER_RDY of a command of `id`.
    pub fn initiator_supply_data(
        &mut self,
        id: InitiatorId,
        tag: Tag,
        offset: u32,
        data: &[u8],
        last: bool,
    ) -> Result<(), SubmitError> {
        self.with_ini(id, |ctx, i| i.supply_data(ctx, tag, offset, data, last))
            .unwrap_or(Err(SubmitError::NoSuchInitiator))
    }

    /// Plugs or unplugs an initiator's cable.
    pub fn set_initiator_link(&mut self, id: InitiatorId, up: bool) {
        if let Some(i) = self.inis.get(id.0) {
            let slot = i.slot;
            self.set_cable(slot, up);
        }
    }

    /// Entries the firmware holds because the response / ATIO ring had no free slot.
    pub fn ring_backlog(&self) -> (usize, usize) {
        self.fw
            .rings
            .as_ref()
            .map(|r| (r.rsp_backlog(), r.atio_backlog()))
            .unwrap_or((0, 0))
    }

    /// FCP exchanges open in the firmware (commands the driver has not closed yet).
    pub fn open_exchanges(&self) -> u16 {
        self.fw.xchg.fcp_open()
    }

    /// Remote ports in the firmware's port database: (handle, port id, login state).
    pub fn hba_logins(&self) -> Vec<(u16, PortId, u8)> {
        self.fw
            .ports
            .iter()
            .map(|p| (p.handle, p.port_id, p.state))
            .collect()
    }

    // ---------------------------------------------------------------------------------
    // Inspection.

    /// The interface rules the driver broke so far.
    pub fn violations(&self) -> Vec<Violation> {
        self.shared
            .violations
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default()
    }

    /// Takes (clears) the recorded violations.
    pub fn take_violations(&self) -> Vec<Violation> {
        self.shared
            .violations
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }

    /// IOMMU faults recorded so far.
    pub fn iommu_faults(&self) -> Vec<IommuFault> {
        self.shared.iommu.faults()
    }

    /// Takes the IOMMU faults (a test that provokes one takes it, so dropping the
    /// simulator does not fail the test).
    pub fn take_iommu_faults(&self) -> Vec<IommuFault> {
        self.shared.iommu.take_faults()
    }

    /// `DmaFence::release` calls by the driver so far.
    pub fn release_fences(&self) -> u64 {
        self.shared.fence.release.load(Ordering::Relaxed)
    }

    /// `DmaFence::acquire` calls by the driver so far.
    pub fn acquire_fences(&self) -> u64 {
        self.shared.fence.acquire.load(Ordering::Relaxed)
    }

    /// Interrupts raised on the line so far.
    pub fn interrupts_raised(&self) -> u64 {
        self.shared.irq.raised.load(Ordering::Relaxed)
    }

    /// Firmware statistics.
    pub fn firmware_stats(&self) -> FirmwareStats {
        self.fw.stats
    }

    /// The HBA's N_Port ID once it logged in to the fabric.
    pub fn hba_port_id(&self) -> Option<PortId> {
        self.fw.link.logged_in.then_some(self.fw.link.port_id)
    }

    /// The fabric name server's table (logged-in ports).
    pub fn name_server(&self) -> Vec<NameServerEntry> {
        self.fabric.name_server()
    }

    /// The events in the in-memory trace.
    pub fn trace_events(&self) -> Vec<TraceEvent> {
        self.shared.trace.events()
    }

    /// The in-memory trace as text, one line per event.
    pub fn trace_text(&self) -> String {
        let mut s = String::new();
        for e in self.shared.trace.events() {
            s.push_str(&e.to_string());
            s.push('\n');
        }
        s
    }

    /// Clears the in-memory trace.
    pub fn clear_trace(&self) {
        self.shared.trace.clear();
    }

    /// Events recorded in total and dropped from the bounded in-memory ring.
    pub fn trace_counts(&self) -> (u64, u64) {
        (self.shared.trace.total(), self.shared.trace.dropped())
    }

    /// Changes what is traced.
    pub fn configure_trace(&self, cfg: TraceConfig) {
        self.shared.trace.configure(cfg);
    }

    /// Streams every trace event as a text line to `sink` (`None` stops).
    pub fn set_trace_sink(&self, sink: Option<Box<dyn std::io::Write + Send>>) {
        self.shared.trace.set_text_sink(sink);
    }

    /// Streams every frame to a pcap writer; returns the previous one.
    pub fn set_pcap(
        &self,
        pcap: Option<PcapWriter<Box<dyn std::io::Write + Send>>>,
    ) -> Option<PcapWriter<Box<dyn std::io::Write + Send>>> {
        self.shared.trace.set_pcap(pcap)
    }

    /// Flushes the trace sinks.
    pub fn flush_trace(&self) {
        self.shared.trace.flush();
    }

    /// An I/O error a trace sink hit (it was detached then).
    pub fn trace_io_error(&self) -> Option<String> {
        self.shared.trace.io_error()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.shared.trace.flush();
        if self.fail_on_iommu_fault && !std::thread::panicking() {
            let faults = self.shared.iommu.faults();
            if !faults.is_empty() {
                let list: Vec<String> = faults
                    .iter()
                    .map(|f| format!("  [{}] {f}", f.time))
                    .collect();
                panic!(
                    "the simulated device hit {} IOMMU fault(s):\n{}",
                    faults.len(),
                    list.join("\n")
                );
            }
        }
    }
}
