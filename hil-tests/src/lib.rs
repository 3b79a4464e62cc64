#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

use std::time::Duration;

use rscst_core::{
    Access, BackendLun, BufferPool, GroupId, Instant, LuConfig, PortConfig, RamBackend,
    RelativePortId, Target, TargetConfig, TargetPortGroupId, TargetStorage,
};
use rscst_fw::Wwn;
use rscst_hba::{DmaPool, Platform};
use rscst_qla::{DmaMemory, FirmwareSource, Isp, IspConfig, IspStorage, Progress};
use rscst_sim::{
    CommandError, CommandResult, CommandSpec, FirmwareImage, InitiatorConfig, InitiatorEvent,
    InitiatorId, Sim, SimConfig, SimDmaRegion, SimPlatform, SimTime, Tag,
};

/// Commands in flight (core pool = driver table).
pub const CMDS: usize = 256;
/// I_T nexuses.
pub const SESSIONS: usize = 16;
/// Logical units.
pub const LUNS: usize = 4;
/// Request ring entries.
pub const REQ: usize = 1024;
/// Response ring entries.
pub const RSP: usize = 1024;
/// ATIO ring entries.
pub const ATIO: usize = 1024;

/// The driver type of a stack with a request ring of `R` entries.
pub type Driver<const R: usize = REQ> = Isp<'static, SimPlatform, R, RSP, ATIO>;
/// The driver's storage.
pub type DriverStorage = IspStorage<CMDS, { rscst_core::MAX_TMFS }, SESSIONS, 1024, 4096>;
/// The backend: RAM LUNs in simulator DMA memory.
pub type Backend = RamBackend<'static, DmaMemory<SimDmaRegion>, LUNS>;

/// What a stack is built with.
#[derive(Debug, Clone)]
pub struct StackConfig {
    /// The simulator (chip, fabric, faults, seed).
    pub sim: SimConfig,
    /// Block size of the LUNs.
    pub block_size: u32,
    /// Blocks per LUN.
    pub blocks: u64,
    /// LUNs (0..n).
    pub luns: usize,
    /// Thin-provisioned LUNs (UNMAP, GET LBA STATUS, LBPRZ).
    pub thin: bool,
    /// Bytes of the core's buffer pool.
    pub pool_bytes: usize,
    /// Driver settings applied after the defaults.
    pub tune: fn(&mut IspConfig<'static>),
    /// Initiator settings applied by [`Stack::add_initiators`].
    pub initiator: fn(&mut InitiatorConfig),
}

impl Default for StackConfig {
    fn default() -> Self {
        StackConfig {
            sim: SimConfig::default(),
            block_size: 512,
            blocks: 2048,
            luns: 1,
            thin: false,
            pool_bytes: 1 << 20,
            tune: |_| {},
            initiator: |_| {},
        }
    }
}

/// The full target stack on the simulator, with the default ring sizes.
pub type SimStack = Stack<REQ>;

/// The full target stack on the simulator, with a request ring of `R`
/// entries (small rings test back-pressure).
pub struct Stack<const R: usize> {
    /// The simulated HBA, fabric and initiators.
    pub sim: Sim,
    /// The driver.
    pub isp: Driver<R>,
    /// The SCSI core.
    pub target: Target<'static>,
    /// The RAM LUNs (`backend.memory(BackendLun(n))` is LUN n's memory).
    pub backend: Backend,
    initiator: fn(&mut InitiatorConfig),
}

impl<const R: usize> Stack<R> {
    /// Build the stack (nothing runs yet; [`SimStack::run_for`] brings it up).
    ///
    /// Storage of the driver and the core is leaked: a stack lives for the
    /// test (or the process, in a tool).
    pub fn new(cfg: StackConfig) -> Stack<R> {
        let (sim, platform) = Sim::new(cfg.sim.clone());
        let image: &'static [u8] = Box::leak(
            FirmwareImage::default_image()
                .as_bytes()
                .to_vec()
                .into_boxed_slice(),
        );
        let dma = platform.dma();
        let alloc = |len: usize| dma.alloc(len, 4096).expect("simulator DMA memory");
        let pool_mem: &'static DmaMemory<SimDmaRegion> =
            Box::leak(Box::new(DmaMemory::new(alloc(cfg.pool_bytes))));
        let mut backend = Backend::new();
        for _ in 0..cfg.luns {
            let region = alloc(cfg.block_size as usize * cfg.blocks as usize);
            let mem = DmaMemory::new(region);
            if cfg.thin {
                let words = Backend::bitmap_words(cfg.blocks, 8);
                let bitmap: &'static mut [u32] = Box::leak(vec![0u32; words].into_boxed_slice());
                backend
                    .add_thin_lun(mem, cfg.block_size, bitmap, 8)
                    .expect("thin RAM LUN");
            } else {
                backend.add_lun(mem, cfg.block_size).expect("RAM LUN");
            }
        }
        let ts: &'static mut TargetStorage<CMDS, SESSIONS, LUNS> =
            Box::leak(Box::new(TargetStorage::new()));
        let pool = BufferPool::new(pool_mem, 4096).expect("buffer pool");
        let mut target = Target::new(ts, pool, &TargetConfig::new("RSCST", "sim ramdisk", "0001"));
        target
            .add_port(&PortConfig::new(RelativePortId(1), TargetPortGroupId(1)))
            .expect("port");
        for l in 0..cfg.luns {
            let mut lc = LuConfig::new(BackendLun(l as u32), cfg.block_size, cfg.blocks);
            if cfg.thin {
                lc.thin = true;
                lc.unmap_granularity = 8;
            }
            let lu = target.add_lu(&lc).expect("LU");
            target
                .map_lun(
                    GroupId::DEFAULT,
                    rscst_core::Lun::single_level(l as u16).expect("LUN"),
                    lu,
                    Access::ReadWrite,
                )
                .expect("map");
        }
        let storage: &'static mut DriverStorage = Box::leak(Box::new(DriverStorage::new()));
        let mut icfg = IspConfig::new(
            cfg.sim.firmware.wwpn,
            cfg.sim.firmware.wwnn,
            FirmwareSource::Image(image),
        );
        (cfg.tune)(&mut icfg);
        let isp = Driver::<R>::probe(platform, storage, icfg).expect("probe");
        Stack {
            sim,
            isp,
            target,
            backend,
            initiator: cfg.initiator,
        }
    }

    /// Take the stack apart: the simulator (e.g. to run it on its own thread
    /// with `Sim::spawn`), the driver, the core and the backend.
    pub fn into_parts(self) -> (Sim, Driver<R>, Target<'static>, Backend) {
        (self.sim, self.isp, self.target, self.backend)
    }

    /// The virtual clock as the driver and core see it.
    pub fn now(&self) -> Instant {
        Instant::from_nanos(self.sim.now().as_nanos())
    }

    /// Run driver, core and simulator until none of them has work at the
    /// current instant.
    pub fn settle(&mut self) {
        for _ in 0..100_000 {
            self.sim.run_until(self.sim.now());
            let now = self.now();
            if self
                .isp
                .poll_stack(now, &mut self.target, &mut self.backend)
                == Progress::Idle
            {
                return;
            }
        }
    }

    /// Interleave everything for `d` of virtual time, jumping the clock to
    /// the next deadline of any part whenever all are idle.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.sim.now().saturating_add(d);
        self.run_until_time(end, &mut |_| false);
    }

    /// Run until `cond` holds (checked whenever everything is idle) or `d`
    /// passes; returns whether it held.
    pub fn run_until(&mut self, d: Duration, mut cond: impl FnMut(&mut Stack<R>) -> bool) -> bool {
        let end = self.sim.now().saturating_add(d);
        self.run_until_time(end, &mut cond)
    }

    fn run_until_time(
        &mut self,
        end: SimTime,
        cond: &mut dyn FnMut(&mut Stack<R>) -> bool,
    ) -> bool {
        loop {
            self.settle();
            if cond(self) {
                return true;
            }
            if self.sim.now() >= end {
                return false;
            }
            let mut next = end;
            if let Some(t) = self.sim.next_event_time() {
                next = next.min(t);
            }
            let now = self.now();
            if let Some(t) = self.isp.poll_at_stack(now, &self.target) {
                next = next.min(SimTime::from_nanos(t.as_nanos()));
            }
            if next <= self.sim.now() {
                next = self.sim.now().saturating_add(Duration::from_micros(1));
            }
            self.sim.run_until(next);
        }
    }

    /// Bring the port up (firmware running, link up).
    pub fn bring_up(&mut self) {
        let up = self.run_until(Duration::from_secs(30), |s| {
            s.isp.is_online() && s.isp.link_up()
        });
        assert!(up, "port did not come up: {:?}", self.isp.phase());
    }

    /// Add `n` initiators (WWPNs from [`INITIATOR_WWPN`]), let them log in to
    /// the fabric and to this target, and clear their POWER ON RESET unit
    /// attention with TEST UNIT READY (as an initiator's scan would).
    pub fn add_initiators(&mut self, n: usize) -> Vec<InitiatorId> {
        let inis = self.add_initiators_without_tur(n);
        for &i in &inis {
            for _ in 0..8 {
                let r = self.command(i, CommandSpec::no_data(LUN0, &[0; 6]).expect("TUR"));
                if matches!(r, Ok(ref r) if r.status == 0) {
                    break;
                }
            }
        }
        inis
    }

    /// Add `n` initiators and log them in to the fabric and this target.
    pub fn add_initiators_without_tur(&mut self, n: usize) -> Vec<InitiatorId> {
        let base = INITIATOR_WWPN.to_u64() + self.sim.initiators().len() as u64;
        let inis: Vec<_> = (0..n)
            .map(|i| {
                let mut c = InitiatorConfig::new(base + i as u64);
                (self.initiator)(&mut c);
                self.sim.add_initiator(c)
            })
            .collect();
        let target = self.sim.hba_port_id().expect("target port id");
        for &i in &inis {
            let ok = self.run_until(Duration::from_secs(5), |s| {
                s.sim.initiator_port_id(i).is_some()
            });
            assert!(ok, "initiator {i:?} not on the fabric");
            self.sim.initiator_login(i, target).expect("login");
        }
        let ok = self.run_until(Duration::from_secs(10), |s| {
            inis.iter().all(|&i| s.sim.initiator_logged_in(i, target))
        });
        assert!(ok, "logins: {:?}", self.isp.sessions().collect::<Vec<_>>());
        inis
    }

    /// Send one command from `ini` and run until it ends.
    pub fn command(
        &mut self,
        ini: InitiatorId,
        spec: CommandSpec,
    ) -> Result<CommandResult, CommandError> {
        let target = self.sim.hba_port_id().expect("target port id");
        let tag = self
            .sim
            .initiator_command(ini, target, spec)
            .expect("command submitted");
        self.wait_command(ini, tag, Duration::from_secs(60))
    }

    /// Run until command `tag` of `ini` ends (other events of `ini` are dropped).
    pub fn wait_command(
        &mut self,
        ini: InitiatorId,
        tag: Tag,
        timeout: Duration,
    ) -> Result<CommandResult, CommandError> {
        let mut out = None;
        let done = self.run_until(timeout, |s| {
            for e in s.sim.initiator_events(ini) {
                match e {
                    InitiatorEvent::Completed { tag: t, result } if t == tag => {
                        out = Some(Ok(*result))
                    }
                    InitiatorEvent::Failed { tag: t, error } if t == tag => out = Some(Err(error)),
                    _ => {}
                }
            }
            out.is_some()
        });
        assert!(done, "command {tag} of {ini:?} did not end");
        out.expect("result")
    }

    /// Everything the driver and the core still hold: all zero when idle.
    pub fn leaks(&self) -> Leaks {
        Leaks {
            driver_commands: self.isp.commands_in_flight(),
            driver_tmfs: self.isp.tmfs_in_flight(),
            handles: self.isp.handles_in_use(),
            core_commands: self.target.active_commands(),
            pool_chunks_used: self.target.buffer_pool().chunks()
                - self.target.buffer_pool().free_chunks(),
        }
    }
}

/// Resources held (see [`SimStack::leaks`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Leaks {
    /// Command slots of the driver.
    pub driver_commands: usize,
    /// TMF slots of the driver.
    pub driver_tmfs: usize,
    /// IOCB handles outstanding.
    pub handles: usize,
    /// Commands in the core.
    pub core_commands: usize,
    /// Buffer-pool chunks taken.
    pub pool_chunks_used: usize,
}

impl Leaks {
    /// Nothing held.
    pub fn is_clean(&self) -> bool {
        *self == Leaks::default()
    }
}

/// Where a scenario runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hardware {
    /// `RSCST_HIL_DEVICE` is not set: the simulator.
    Simulator,
    /// A card was named; the string says why it cannot be used (yet).
    Unavailable {
        /// The PCI address given.
        device: String,
        /// What is missing.
        reason: String,
    },
}

/// Read `RSCST_HIL_DEVICE` (and `RSCST_HIL_DESTRUCTIVE` for `destructive`
/// scenarios) and say where to run.
pub fn hardware(destructive: bool) -> Hardware {
    let Ok(device) = std::env::var("RSCST_HIL_DEVICE") else {
        return Hardware::Simulator;
    };
    let mut reason = String::from(
        "rscst-hba has no VFIO backend yet (missing: hba::vfio container/group/device \
         setup, BAR mmap as Mmio, IOMMU DMA mapping as DmaPool, MSI-X eventfd as Irq)",
    );
    if destructive && std::env::var("RSCST_HIL_DESTRUCTIVE").ok().as_deref() != Some(&device) {
        reason.push_str(
            "; and this scenario resets the chip or the link: set RSCST_HIL_DESTRUCTIVE to the same PCI address to allow it",
        );
    }
    Hardware::Unavailable { device, reason }
}

/// Run `scenario` on the simulator, or print why it is skipped on hardware.
pub fn scenario(name: &str, destructive: bool, scenario: impl FnOnce()) {
    match hardware(destructive) {
        Hardware::Simulator => scenario(),
        Hardware::Unavailable { device, reason } => {
            println!("SKIP {name} on {device}: {reason}");
        }
    }
}

/// The default initiator WWPN base of scenarios.
pub const INITIATOR_WWPN: Wwn = Wwn([0x21, 0x00, 0x00, 0x24, 0xff, 0x10, 0x00, 0x00]);

/// LUN 0 as an initiator addresses it.
pub const LUN0: rscst_fw::Lun = rscst_fw::Lun([0; 8]);
