//! The target stack `rscst run` serves: the simulated ISP port, the qla2x00t driver on
//! its platform, the SCSI core with the configured logical units, and the iSCSI gateway
//! in front. Built like `rscst-hil`'s `SimStack`; RAM LUs live in the simulator's DMA
//! memory, so every READ/WRITE CTIO7 points at the LU's own bytes (zero copy).

use std::time::Duration;

use rscst_core::{
    Access, BackendLun, BufferPool, FileBackend, FileOptions, GroupId, Instant, LuConfig,
    NullBackend, Pair, PortConfig, PreadEngine, RamBackend, RelativePortId, Target, TargetConfig,
    TargetPortGroupId, TargetStorage, TransportId,
};
use rscst_fw::Wwn;
use rscst_hba::{DmaPool, Platform};
use rscst_qla::{DmaMemory, EventRecord, FirmwareSource, Isp, IspConfig, IspStorage, Progress};
use rscst_sim::gateway::{Gateway, GatewayConfig};
use rscst_sim::iscsi::{
    Command, LoginDecision, NexusId, NexusLoss, SanEvents, SanPoll, SanPort, SessionLogin, TaskId,
    TaskMgmt, TmfId,
};
use rscst_sim::{FirmwareImage, Sim, SimConfig, SimDmaRegion, SimPlatform, SimTime};

use crate::config::{BackendKind, Config};

/// Commands in flight (core pool = driver table).
pub const CMDS: usize = 256;
/// I_T nexuses (FC logins, i.e. iSCSI sessions).
pub const SESSIONS: usize = 64;
/// Logical units.
pub const LUNS: usize = 16;
/// Request ring entries.
pub const REQ: usize = 1024;

/// The driver on the simulator's platform.
pub type Driver = Isp<'static, SimPlatform, REQ, 1024, 1024>;
/// The driver's storage.
pub type DriverStorage = IspStorage<CMDS, { rscst_core::MAX_TMFS }, SESSIONS, 2048, 4096>;
/// Bus-addressable memory of the simulator.
pub type Mem = DmaMemory<SimDmaRegion>;
/// Every backend kind behind one: RAM LUs first, then null, then file LUs.
pub type StackBackend =
    Pair<RamBackend<'static, Mem, LUNS>, Pair<NullBackend<Mem>, FileBackend<PreadEngine>>>;

/// The monotonic clock every part runs on (simulator, driver, core).
#[derive(Debug, Clone, Copy)]
pub struct Clock(std::time::Instant);

impl Clock {
    /// A clock starting now (at simulated time 0).
    pub fn start() -> Clock {
        Clock(std::time::Instant::now())
    }

    /// Time since the start.
    pub fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }

    /// The core's / driver's time.
    pub fn now(&self) -> Instant {
        Instant::from_nanos(self.elapsed().as_nanos() as u64)
    }

    /// The simulator's time.
    pub fn sim_now(&self) -> SimTime {
        SimTime::from_nanos(self.elapsed().as_nanos() as u64)
    }
}

/// The parts, built and not yet running.
pub struct Parts {
    /// The simulated card and fabric.
    pub sim: Sim,
    /// The driver.
    pub isp: Driver,
    /// The SCSI core.
    pub target: Target<'static>,
    /// The LUs' storage.
    pub backend: StackBackend,
}

impl std::fmt::Debug for Parts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Parts({:?}, {:?})", self.sim, self.isp.phase())
    }
}

fn leak<T>(v: T) -> &'static mut T {
    Box::leak(Box::new(v))
}

/// Builds the stack for `cfg` (storage of the driver and the core is leaked: the stack
/// lives for the process). `sim_cfg` is the simulator's configuration; its WWNs are
/// replaced by the configuration's.
pub fn build(cfg: &Config, mut sim_cfg: SimConfig) -> Result<Parts, String> {
    sim_cfg.firmware.wwpn = Wwn::from_u64(cfg.wwpn);
    sim_cfg.firmware.wwnn = Wwn::from_u64(cfg.wwnn);
    let (sim, platform) = Sim::new(sim_cfg);
    let dma = platform.dma();
    let alloc = |len: usize, what: &str| {
        dma.alloc(len, 4096)
            .map_err(|e| format!("{what}: cannot allocate {len} bytes of DMA memory: {e}"))
    };
    let has_file = cfg
        .lus
        .iter()
        .any(|l| matches!(l.backend, BackendKind::File(_)));
    // The core's buffer pool: parameter data, emulated payloads, and the buffers of
    // file I/O (a whole transfer at once).
    let pool_bytes: usize = if has_file { 16 << 20 } else { 4 << 20 };
    let pool_mem: &'static Mem = leak(DmaMemory::new(alloc(pool_bytes, "buffer pool")?));
    let pool = BufferPool::new(pool_mem, pool_bytes / rscst_core::MAX_CHUNKS)
        .map_err(|e| format!("buffer pool: {e}"))?;

    let mut ram = RamBackend::<'static, Mem, LUNS>::new();
    let null_chunk = 256 << 10;
    let null = NullBackend::new(
        DmaMemory::new(alloc(null_chunk, "null LU")?),
        DmaMemory::new(alloc(null_chunk, "null LU")?),
    )
    .map_err(|e| format!("null backend: {e:?}"))?;
    let mut files = if has_file {
        FileBackend::new(PreadEngine::new(32, 1 << 20), CMDS)
    } else {
        FileBackend::new(PreadEngine::new(1, 4096), 1)
    };
    let n_ram = cfg
        .lus
        .iter()
        .filter(|l| l.backend == BackendKind::Ram)
        .count() as u32;
    let n_null = cfg
        .lus
        .iter()
        .filter(|l| l.backend == BackendKind::Null)
        .count() as u32;
    let (mut next_null, mut blocks_of) = (0u32, Vec::new());
    let mut backend_lun = Vec::new();
    for (i, l) in cfg.lus.iter().enumerate() {
        let field = format!("lu[{i}] ({})", l.name);
        let blocks = l.size / u64::from(l.block_size);
        match &l.backend {
            BackendKind::Ram => {
                let len = usize::try_from(l.size).map_err(|_| format!("{field}: too large"))?;
                let mem = DmaMemory::new(alloc(len, &field)?);
                let b = if l.thin {
                    let words = RamBackend::<'static, Mem, LUNS>::bitmap_words(blocks, 8);
                    let bitmap: &'static mut [u32] =
                        Box::leak(vec![0u32; words].into_boxed_slice());
                    ram.add_thin_lun(mem, l.block_size, bitmap, 8)
                } else {
                    ram.add_lun(mem, l.block_size)
                }
                .map_err(|e| format!("{field}: {e:?}"))?;
                backend_lun.push(b);
                blocks_of.push(blocks);
            }
            BackendKind::Null => {
                backend_lun.push(BackendLun(n_ram + next_null));
                next_null += 1;
                blocks_of.push(blocks);
            }
            BackendKind::File(path) => {
                let f = std::fs::OpenOptions::new()
                    .read(true)
                    .write(!l.read_only)
                    .create(!l.read_only)
                    .truncate(false)
                    .open(path)
                    .map_err(|e| format!("{field}: {}: {e}", path.display()))?;
                let have = f.metadata().map(|m| m.len()).unwrap_or(0);
                if l.size > have && !l.read_only {
                    f.set_len(l.size)
                        .map_err(|e| format!("{field}: {}: {e}", path.display()))?;
                }
                drop(f);
                let b = files
                    .open(
                        path,
                        l.block_size,
                        FileOptions {
                            direct: false,
                            read_only: l.read_only,
                        },
                    )
                    .map_err(|e| format!("{field}: {}: {e}", path.display()))?;
                let fb = files.blocks(b).unwrap_or(0);
                backend_lun.push(BackendLun(n_ram + n_null + b.0));
                blocks_of.push(fb);
            }
        }
    }
    let backend = Pair::new(ram, Pair::new(null, files, n_null), n_ram);

    let ts: &'static mut TargetStorage<CMDS, SESSIONS, LUNS> = leak(TargetStorage::new());
    let mut tcfg = TargetConfig::new("RSCST", "sim FC target", "0001");
    tcfg.transport_version = 0x0A40; // FCP-4
    let mut target = Target::new(ts, pool, &tcfg);
    let mut port = PortConfig::new(RelativePortId(1), TargetPortGroupId(1));
    port.name = Some(cfg.wwpn);
    port.protocol = rscst_core::ProtocolId::FibreChannel;
    target.add_port(&port).map_err(|e| format!("port: {e}"))?;
    let mut lus = Vec::new();
    for (i, l) in cfg.lus.iter().enumerate() {
        let serial: &'static str = if l.serial.is_empty() {
            Box::leak(
                format!("RSCST{:04}{}", i, l.name)
                    .chars()
                    .take(rscst_core::SERIAL_MAX)
                    .collect::<String>()
                    .into_boxed_str(),
            )
        } else {
            Box::leak(l.serial.clone().into_boxed_str())
        };
        let mut lc = LuConfig::new(backend_lun[i], l.block_size, blocks_of[i]);
        lc.physical_block_exponent = l.physical_block_exponent();
        lc.thin = l.thin && l.backend != BackendKind::Null;
        lc.unmap_granularity = if l.backend == BackendKind::Ram { 8 } else { 1 };
        lc.removable = l.removable;
        lc.read_only = l.read_only;
        lc.write_cache = l.write_cache;
        lc.background_rate = l.background_rate;
        lc.serial = serial;
        lus.push(
            target
                .add_lu(&lc)
                .map_err(|e| format!("lu[{i}] ({}): {e}", l.name))?,
        );
    }
    let lun = |n: u16| rscst_core::Lun::single_level(n).ok_or_else(|| format!("LUN {n}"));
    for &(n, li) in &cfg.map {
        target
            .map_lun(GroupId::DEFAULT, lun(n)?, lus[li], Access::ReadWrite)
            .map_err(|e| format!("map.{n}: {e}"))?;
    }
    for (gi, g) in cfg.groups.iter().enumerate() {
        let gid = target
            .add_group()
            .map_err(|e| format!("group[{gi}]: {e}"))?;
        for (j, &w) in g.initiators.iter().enumerate() {
            target
                .add_initiator(gid, &TransportId::fc(w))
                .map_err(|e| format!("group[{gi}].initiators[{j}]: {e}"))?;
        }
        let access = if g.read_only {
            Access::ReadOnly
        } else {
            Access::ReadWrite
        };
        for &(n, li) in &g.map {
            target
                .map_lun(gid, lun(n)?, lus[li], access)
                .map_err(|e| format!("group[{gi}].map.{n}: {e}"))?;
        }
    }

    let image: &'static [u8] = Box::leak(
        FirmwareImage::default_image()
            .as_bytes()
            .to_vec()
            .into_boxed_slice(),
    );
    let storage: &'static mut DriverStorage = leak(DriverStorage::new());
    let icfg = IspConfig::new(
        Wwn::from_u64(cfg.wwpn),
        Wwn::from_u64(cfg.wwnn),
        FirmwareSource::Image(image),
    );
    let isp = Driver::probe(platform, storage, icfg).map_err(|e| format!("driver probe: {e}"))?;
    Ok(Parts {
        sim,
        isp,
        target,
        backend,
    })
}

/// One second of counters, for the stats line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// SCSI commands the driver received.
    pub commands: u64,
    /// Bytes moved to and from initiators.
    pub bytes: u64,
    /// FC I_T nexuses (sessions).
    pub sessions: u64,
    /// ABTS and task management requests.
    pub aborts: u64,
}

impl Snapshot {
    /// The counters of a driver.
    pub fn of(isp: &Driver) -> Snapshot {
        let s = isp.stats();
        Snapshot {
            commands: s.commands,
            bytes: s.bytes_in + s.bytes_out,
            sessions: isp.sessions().count() as u64,
            aborts: s.abts + s.tmfs,
        }
    }
}

/// Prints one stats line per interval.
#[derive(Debug)]
pub struct StatsLine {
    interval: Option<Duration>,
    last: Snapshot,
    last_at: Duration,
}

impl StatsLine {
    /// A printer (`None`: silent).
    pub fn new(interval: Option<Duration>) -> StatsLine {
        StatsLine {
            interval,
            last: Snapshot::default(),
            last_at: Duration::ZERO,
        }
    }

    /// When the next line is due.
    pub fn due(&self) -> Option<Duration> {
        self.interval.map(|i| self.last_at + i)
    }

    /// Prints a line if one is due at `now`.
    pub fn tick(&mut self, now: Duration, s: Snapshot) {
        let Some(i) = self.interval else { return };
        if now < self.last_at + i {
            return;
        }
        let dt = (now - self.last_at).as_secs_f64().max(1e-9);
        let iops = (s.commands - self.last.commands) as f64 / dt;
        let mbs = (s.bytes - self.last.bytes) as f64 / dt / 1e6;
        println!(
            "rscst: {:>6.0}s  iops {:>8.0}  MB/s {:>8.1}  sessions {}  aborts {}",
            now.as_secs_f64(),
            iops,
            mbs,
            s.sessions,
            s.aborts
        );
        self.last = s;
        self.last_at = now;
    }
}

/// Logs the driver's events (link, logins, resets, aborts).
pub fn log_events(isp: &mut Driver) {
    while let Some(e) = isp.pop_event() {
        log_event(&e);
    }
}

fn log_event(e: &EventRecord) {
    tracing::info!(target: "rscst::driver", "{e}");
}

/// The stack stepped on the host clock from the iSCSI portal's thread:
/// run-to-completion. It is the portal's SAN ([`SanPoll`]): each poll runs the simulated
/// card, the driver and core, and the gateway until nothing moves.
pub struct RtcStack {
    /// The parts.
    pub parts: Parts,
    /// The gateway.
    pub gw: Gateway,
    /// The host clock, or `None` for the simulator's virtual clock (stepped tests).
    clock: Option<Clock>,
    /// Stack clock minus portal clock.
    offset: Option<Duration>,
    stats: StatsLine,
}

impl std::fmt::Debug for RtcStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RtcStack({:?})", self.parts)
    }
}

impl RtcStack {
    /// A run-to-completion stack over `parts`, timed by `clock` (the one the simulator
    /// started with).
    pub fn new(parts: Parts, gw: GatewayConfig, clock: Clock, stats: Option<Duration>) -> RtcStack {
        RtcStack {
            parts,
            gw: Gateway::new(gw),
            clock: Some(clock),
            offset: None,
            stats: StatsLine::new(stats),
        }
    }

    /// A stack on the simulator's virtual clock, for deterministic tests: [`RtcStack::run`]
    /// works at the current simulated instant, [`RtcStack::advance`] moves the clock to
    /// the next deadline.
    pub fn stepped(parts: Parts, gw: GatewayConfig) -> RtcStack {
        RtcStack {
            parts,
            gw: Gateway::new(gw),
            clock: None,
            offset: None,
            stats: StatsLine::new(None),
        }
    }

    /// The stack's time: the host clock, or the simulator's.
    pub fn elapsed(&self) -> Duration {
        match self.clock {
            Some(c) => c.elapsed(),
            None => Duration::from_nanos(self.parts.sim.now().as_nanos()),
        }
    }

    /// Stepped stacks: moves the virtual clock to the next deadline of any part (at most
    /// `max` ahead) and runs what is due. Returns the new time.
    pub fn advance(&mut self, max: Duration, events: &mut dyn SanEvents) -> Duration {
        let now = self.elapsed();
        let next = self
            .next_deadline()
            .unwrap_or(now + max)
            .clamp(now, now + max);
        let next = if next <= now {
            now + Duration::from_micros(1)
        } else {
            next
        };
        self.parts
            .sim
            .run_until(SimTime::from_nanos(next.as_nanos() as u64));
        self.run(events);
        self.elapsed()
    }

    /// Runs the card, driver, core and gateway until nothing moves; hands the gateway's
    /// answers to `events`. Returns whether anything happened.
    pub fn run(&mut self, events: &mut dyn SanEvents) -> bool {
        let mut any = false;
        for _ in 0..10_000 {
            let t = self.elapsed();
            let p = &mut self.parts;
            p.sim.run_until(SimTime::from_nanos(t.as_nanos() as u64));
            let now = Instant::from_nanos(t.as_nanos() as u64);
            let busy = p.isp.poll_stack(now, &mut p.target, &mut p.backend) == Progress::Busy;
            let out = self.gw.deliver(&mut p.sim, events);
            if !busy && !out {
                break;
            }
            any = true;
        }
        log_events(&mut self.parts.isp);
        let t = self.elapsed();
        self.stats.tick(t, Snapshot::of(&self.parts.isp));
        any
    }

    /// Brings the port up (firmware loaded, link up, on the fabric), or says why not.
    pub fn bring_up(&mut self, timeout: Duration) -> Result<(), String> {
        let end = self.elapsed() + timeout;
        let mut none = NoPortal;
        loop {
            self.run(&mut none);
            let p = &self.parts;
            if p.isp.is_online() && p.isp.link_up() && p.sim.hba_port_id().is_some() {
                return Ok(());
            }
            if self.elapsed() > end {
                return Err(format!(
                    "the port did not come up within {timeout:?}: {:?}",
                    p.isp.phase()
                ));
            }
            if self.clock.is_some() {
                std::thread::sleep(Duration::from_micros(200));
            } else {
                self.advance(Duration::from_millis(100), &mut none);
            }
        }
    }

    /// The next deadline of any part, on the stack clock.
    fn next_deadline(&self) -> Option<Duration> {
        let p = &self.parts;
        let now = Instant::from_nanos(self.elapsed().as_nanos() as u64);
        let a = p
            .sim
            .next_event_time()
            .map(|t| Duration::from_nanos(t.as_nanos()));
        let b = p
            .isp
            .poll_at_stack(now, &p.target)
            .map(|t| Duration::from_nanos(t.as_nanos()));
        [a, b, self.stats.due()].into_iter().flatten().min()
    }
}

/// A SAN-events sink for runs without a portal (nothing to deliver).
#[derive(Debug)]
pub struct NoPortal;

impl SanEvents for NoPortal {
    fn login_done(
        &mut self,
        _: rscst_sim::iscsi::LoginId,
        _: Result<NexusId, rscst_sim::iscsi::wire::LoginStatus>,
    ) -> Result<(), rscst_sim::iscsi::EventError> {
        Err(rscst_sim::iscsi::EventError::Stale)
    }
    fn ready_to_transfer(
        &mut self,
        _: TaskId,
        _: u32,
        _: u32,
    ) -> Result<(), rscst_sim::iscsi::EventError> {
        Err(rscst_sim::iscsi::EventError::Stale)
    }
    fn data_in(&mut self, _: TaskId, _: u32, _: &[u8]) -> Result<(), rscst_sim::iscsi::EventError> {
        Err(rscst_sim::iscsi::EventError::Stale)
    }
    fn status(
        &mut self,
        _: TaskId,
        _: &rscst_sim::iscsi::ScsiStatus<'_>,
    ) -> Result<(), rscst_sim::iscsi::EventError> {
        Err(rscst_sim::iscsi::EventError::Stale)
    }
    fn task_aborted(&mut self, _: TaskId) -> Result<(), rscst_sim::iscsi::EventError> {
        Err(rscst_sim::iscsi::EventError::Stale)
    }
    fn tmf_done(
        &mut self,
        _: TmfId,
        _: rscst_sim::iscsi::wire::TmfResponseCode,
    ) -> Result<(), rscst_sim::iscsi::EventError> {
        Err(rscst_sim::iscsi::EventError::Stale)
    }
    fn async_event(
        &mut self,
        _: NexusId,
        _: rscst_sim::iscsi::wire::Lun,
        _: &[u8],
    ) -> Result<(), rscst_sim::iscsi::EventError> {
        Err(rscst_sim::iscsi::EventError::Stale)
    }
}

impl SanPort for RtcStack {
    fn login(&mut self, req: &SessionLogin<'_>) -> LoginDecision {
        self.gw.port(&mut self.parts.sim).login(req)
    }
    fn command(&mut self, nexus: NexusId, task: TaskId, cmd: &Command<'_>) {
        self.gw.port(&mut self.parts.sim).command(nexus, task, cmd)
    }
    fn data_out(&mut self, nexus: NexusId, task: TaskId, offset: u32, data: &[u8], last: bool) {
        self.gw
            .port(&mut self.parts.sim)
            .data_out(nexus, task, offset, data, last)
    }
    fn task_mgmt(&mut self, nexus: NexusId, tmf: TmfId, req: &TaskMgmt) {
        self.gw.port(&mut self.parts.sim).task_mgmt(nexus, tmf, req)
    }
    fn abort_task(&mut self, nexus: NexusId, task: TaskId) {
        self.gw.port(&mut self.parts.sim).abort_task(nexus, task)
    }
    fn logout(&mut self, nexus: NexusId, reason: NexusLoss) {
        self.gw.port(&mut self.parts.sim).logout(nexus, reason)
    }
}

impl SanPoll for RtcStack {
    fn poll(&mut self, now: Duration, events: &mut dyn SanEvents) -> bool {
        self.offset = Some(self.elapsed().saturating_sub(now));
        self.run(events)
    }

    fn poll_at(&self) -> Option<Duration> {
        let Some(off) = self.offset else {
            return Some(Duration::ZERO);
        };
        self.next_deadline().map(|t| t.saturating_sub(off))
    }
}
