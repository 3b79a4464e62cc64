//! The stack under test: the simulated ISP (`rscst-sim`), the `rscst-qla` driver on the
//! simulator's platform, the `rscst-core` target, and one LUN — the composition of
//! `rscst-hil`'s `SimStack`, with two things a benchmark needs that `SimStack`'s fixed
//! types do not give: a choice of backend (RAM or null) and memories that count the
//! bytes the host moves through them (the "bytes copied" figure).
//!
//! Everything here is stepped (virtual time); a threaded bench then hands the simulator
//! to its own thread.

use std::cell::Cell;
use std::time::Duration;

use rscst_core::{
    Access, Backend, BackendLun, BufferPool, GroupId, Instant, LuConfig, Memory, MemoryError,
    NullBackend, PortConfig, RamBackend, RelativePortId, Target, TargetConfig, TargetPortGroupId,
    TargetStorage,
};
use rscst_fw::Lun;
use rscst_hba::{DmaPool, Platform};
use rscst_qla::{DmaMemory, FirmwareSource, Isp, IspConfig, IspStorage, Progress};
use rscst_sim::{
    CommandSpec, FirmwareImage, InitiatorConfig, InitiatorEvent, InitiatorId, Sim, SimConfig,
    SimDmaRegion, SimPlatform, SimTime,
};

/// Core command slots (and driver command table entries): the most commands in flight.
pub const CMDS: usize = 256;
/// I_T nexuses (initiators).
pub const SESSIONS: usize = 16;
/// Ring entries (request, response, ATIO).
pub const RING: usize = 1024;

/// The driver.
pub type Driver = Isp<'static, SimPlatform, RING, RING, RING>;
type DriverStorage = IspStorage<CMDS, { rscst_core::MAX_TMFS }, SESSIONS, 1024, 4096>;
/// Simulator DMA memory as the core sees it.
pub type Mem = DmaMemory<SimDmaRegion>;
/// The RAM backend over a counted LUN memory.
pub type Ram = RamBackend<'static, &'static Counted<Mem>, 1>;
/// The null backend over counted zero and sink chunks.
pub type Null = NullBackend<&'static Counted<Mem>>;

/// The initiators' WWPN base.
pub const INITIATOR_WWPN: u64 = 0x2100_0024_ff10_0000;
/// LUN 0 as an initiator addresses it.
pub const LUN0: Lun = Lun([0; 8]);

/// Bus-addressable memory that counts the bytes the host reads, writes or fills through
/// it. The device's DMA (the simulated firmware) does not go through this trait, so on a
/// zero-copy data path the count stays 0.
#[derive(Debug)]
pub struct Counted<M> {
    inner: M,
    bytes: Cell<u64>,
}

impl<M> Counted<M> {
    /// Wrap `inner` with a count of 0.
    pub fn new(inner: M) -> Counted<M> {
        Counted {
            inner,
            bytes: Cell::new(0),
        }
    }

    /// Bytes moved through this memory by the host so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.get()
    }

    fn add(&self, n: usize) {
        self.bytes.set(self.bytes.get() + n as u64);
    }
}

impl<M: Memory> Memory for Counted<M> {
    fn len(&self) -> usize {
        self.inner.len()
    }
    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), MemoryError> {
        self.add(buf.len());
        self.inner.read(offset, buf)
    }
    fn write(&self, offset: usize, data: &[u8]) -> Result<(), MemoryError> {
        self.add(data.len());
        self.inner.write(offset, data)
    }
    fn fill(&self, offset: usize, len: usize, byte: u8) -> Result<(), MemoryError> {
        self.add(len);
        self.inner.fill(offset, len, byte)
    }
    fn bus_addr(&self, offset: usize) -> Option<u64> {
        self.inner.bus_addr(offset)
    }
}

/// Which backend serves the LUN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LunKind {
    /// A RAM LUN in DMA memory: READ/WRITE CTIO7s point at the LUN's own bytes.
    Ram,
    /// The null backend: reads return zeros, writes are discarded.
    Null,
    /// A RAM LUN that does not map its memory, so the core moves every block through
    /// its buffer pool (a copy per command: what zero copy saves).
    RamCopy,
}

impl std::fmt::Display for LunKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LunKind::Ram => "ram",
            LunKind::Null => "null",
            LunKind::RamCopy => "ram-copy",
        })
    }
}

/// What the stack is built with.
#[derive(Debug, Clone)]
pub struct StackConfig {
    /// The simulator.
    pub sim: SimConfig,
    /// Logical block size.
    pub block_size: u32,
    /// Blocks of the LUN.
    pub blocks: u64,
    /// Bytes of the core's buffer pool.
    pub pool_bytes: usize,
}

/// The parts every stack has, whatever its backend.
pub struct Stack<B> {
    /// The simulated HBA, fabric and initiators.
    pub sim: Sim,
    /// The driver.
    pub isp: Driver,
    /// The SCSI core.
    pub target: Target<'static>,
    /// The backend.
    pub backend: B,
    /// Every memory the host could copy command data through: the LUN's (or the null
    /// backend's chunks) and the core's buffer pool.
    pub counted: Counters,
}

/// The counted memories of a stack.
#[derive(Debug, Clone)]
pub struct Counters {
    /// LUN memory (RAM) or the zero and sink chunks (null).
    pub lun: Vec<&'static Counted<Mem>>,
    /// The core's buffer pool.
    pub pool: &'static Counted<Mem>,
}

impl Counters {
    /// Bytes the host moved through LUN memory.
    pub fn lun_bytes(&self) -> u64 {
        self.lun.iter().map(|m| m.bytes()).sum()
    }
    /// Bytes the host moved through the buffer pool.
    pub fn pool_bytes(&self) -> u64 {
        self.pool.bytes()
    }
}

fn leak<T>(x: T) -> &'static T {
    Box::leak(Box::new(x))
}

fn alloc(p: &SimPlatform, len: usize) -> Result<&'static Counted<Mem>, String> {
    let r = p
        .dma()
        .alloc(len, 4096)
        .map_err(|e| format!("simulator DMA memory of {len} bytes: {e}"))?;
    Ok(leak(Counted::new(DmaMemory::new(r))))
}

/// Build a stack with a RAM LUN of `cfg.blocks` blocks.
pub fn build_ram(cfg: &StackConfig) -> Result<Stack<Ram>, String> {
    build(cfg, |p| {
        let bytes = usize::try_from(cfg.blocks * u64::from(cfg.block_size))
            .map_err(|_| "LUN too large".to_string())?;
        let mem = alloc(p, bytes)?;
        let mut b = Ram::new();
        b.add_lun(mem, cfg.block_size)
            .map_err(|e| format!("RAM LUN: {e:?}"))?;
        Ok((b, vec![mem]))
    })
}

/// Build a stack with a null LUN of `cfg.blocks` blocks (1 MiB zero and sink chunks).
pub fn build_null(cfg: &StackConfig) -> Result<Stack<Null>, String> {
    build(cfg, |p| {
        let (z, s) = (alloc(p, 1 << 20)?, alloc(p, 1 << 20)?);
        let b = Null::new(z, s).map_err(|e| format!("null backend: {e}"))?;
        Ok((b, vec![z, s]))
    })
}

/// Build a stack with a RAM LUN served through the core's buffer pool.
pub fn build_ram_copy(cfg: &StackConfig) -> Result<Stack<Buffered<Ram>>, String> {
    let s = build_ram(cfg)?;
    Ok(Stack {
        sim: s.sim,
        isp: s.isp,
        target: s.target,
        backend: Buffered(s.backend),
        counted: s.counted,
    })
}

/// A backend that does not map: READ/WRITE go through the core's pool buffers.
#[derive(Debug)]
pub struct Buffered<B>(pub B);

impl<B: Backend> Backend for Buffered<B> {
    fn submit(
        &mut self,
        io: &rscst_core::Io<'_>,
    ) -> Result<rscst_core::Submitted, rscst_core::Busy> {
        self.0.submit(io)
    }
    fn poll_completions(
        &mut self,
        done: &mut dyn FnMut(rscst_core::IoToken, Result<(), rscst_core::IoError>),
    ) {
        self.0.poll_completions(done)
    }
    fn complete(
        &mut self,
        pool: &dyn Memory,
        done: &mut dyn FnMut(rscst_core::IoToken, Result<(), rscst_core::IoError>),
    ) {
        self.0.complete(pool, done)
    }
    fn lba_status(
        &mut self,
        lun: BackendLun,
        lba: u64,
        max: u64,
        block_size: u32,
    ) -> Result<rscst_core::LbaRun, rscst_core::IoError> {
        self.0.lba_status(lun, lba, max, block_size)
    }
}

fn build<B: Backend>(
    cfg: &StackConfig,
    make: impl FnOnce(&SimPlatform) -> Result<(B, Vec<&'static Counted<Mem>>), String>,
) -> Result<Stack<B>, String> {
    let (sim, platform) = Sim::new(cfg.sim.clone());
    let image: &'static [u8] = Box::leak(
        FirmwareImage::default_image()
            .as_bytes()
            .to_vec()
            .into_boxed_slice(),
    );
    let pool_mem = alloc(&platform, cfg.pool_bytes)?;
    let (backend, lun) = make(&platform)?;
    let ts: &'static mut TargetStorage<CMDS, SESSIONS, 1> =
        Box::leak(Box::new(TargetStorage::new()));
    let pool = BufferPool::new(pool_mem, 4096).map_err(|e| format!("buffer pool: {e:?}"))?;
    let mut target = Target::new(ts, pool, &TargetConfig::new("RSCST", "bench", "0001"));
    target
        .add_port(&PortConfig::new(RelativePortId(1), TargetPortGroupId(1)))
        .map_err(|e| format!("port: {e:?}"))?;
    let lu = target
        .add_lu(&LuConfig::new(BackendLun(0), cfg.block_size, cfg.blocks))
        .map_err(|e| format!("LU: {e:?}"))?;
    target
        .map_lun(
            GroupId::DEFAULT,
            rscst_core::Lun::ZERO,
            lu,
            Access::ReadWrite,
        )
        .map_err(|e| format!("LUN map: {e:?}"))?;
    let storage: &'static mut DriverStorage = Box::leak(Box::new(DriverStorage::new()));
    let icfg = IspConfig::new(
        cfg.sim.firmware.wwpn,
        cfg.sim.firmware.wwnn,
        FirmwareSource::Image(image),
    );
    let isp = Driver::probe(platform, storage, icfg).map_err(|e| format!("probe: {e}"))?;
    Ok(Stack {
        sim,
        isp,
        target,
        backend,
        counted: Counters {
            lun,
            pool: pool_mem,
        },
    })
}

impl<B: Backend> Stack<B> {
    /// The virtual clock as the driver and the core see it.
    pub fn now(&self) -> Instant {
        Instant::from_nanos(self.sim.now().as_nanos())
    }

    /// Run driver, core and simulator until none has work at the current instant.
    fn settle(&mut self) {
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

    /// Interleave everything until `cond` holds (checked whenever all are idle) or `d`
    /// of virtual time passes; returns whether it held.
    pub fn run_until(&mut self, d: Duration, mut cond: impl FnMut(&mut Stack<B>) -> bool) -> bool {
        let end = self.sim.now().saturating_add(d);
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

    /// Bring the port up, log `n` initiators in and clear their POWER ON unit attention.
    pub fn bring_up(&mut self, n: usize) -> Result<Vec<InitiatorId>, String> {
        if !self.run_until(Duration::from_secs(30), |s| {
            s.isp.is_online() && s.isp.link_up()
        }) {
            return Err(format!("port did not come up: {:?}", self.isp.phase()));
        }
        let inis: Vec<InitiatorId> = (0..n)
            .map(|i| {
                self.sim
                    .add_initiator(InitiatorConfig::new(INITIATOR_WWPN + i as u64))
            })
            .collect();
        let target = self
            .sim
            .hba_port_id()
            .ok_or("the HBA is not on the fabric")?;
        for &i in &inis {
            if !self.run_until(Duration::from_secs(5), |s| {
                s.sim.initiator_port_id(i).is_some()
            }) {
                return Err(format!("initiator {i:?} did not log in to the fabric"));
            }
            self.sim
                .initiator_login(i, target)
                .map_err(|e| format!("login: {e:?}"))?;
        }
        if !self.run_until(Duration::from_secs(10), |s| {
            inis.iter().all(|&i| s.sim.initiator_logged_in(i, target))
        }) {
            return Err("initiators did not log in to the target".into());
        }
        let tur = CommandSpec::no_data(LUN0, &[0; 6]).map_err(|e| e.to_string())?;
        for &i in &inis {
            let mut good = false;
            for _ in 0..8 {
                let tag = self
                    .sim
                    .initiator_command(i, target, tur.clone())
                    .map_err(|e| format!("TEST UNIT READY: {e:?}"))?;
                let mut status = None;
                self.run_until(Duration::from_secs(10), |s| {
                    for e in s.sim.initiator_events(i) {
                        match e {
                            InitiatorEvent::Completed { tag: t, result } if t == tag => {
                                status = Some(result.status)
                            }
                            InitiatorEvent::Failed { tag: t, .. } if t == tag => {
                                status = Some(0xFF)
                            }
                            _ => {}
                        }
                    }
                    status.is_some()
                });
                if status == Some(0) {
                    good = true;
                    break;
                }
            }
            if !good {
                return Err(format!("TEST UNIT READY of {i:?} never returned GOOD"));
            }
        }
        Ok(inis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rscst_core::SliceMemory;

    #[test]
    fn counted_memory_counts_host_bytes() {
        let mut bytes = [0u8; 64];
        let m = Counted::new(SliceMemory::new(&mut bytes, 0x1000));
        assert_eq!(m.bytes(), 0);
        m.write(0, &[1, 2, 3]).unwrap();
        let mut out = [0u8; 5];
        m.read(0, &mut out).unwrap();
        m.fill(8, 10, 0xAA).unwrap();
        assert_eq!(m.bytes(), 3 + 5 + 10);
        assert_eq!(m.bus_addr(4), Some(0x1004));
        assert_eq!(m.len(), 64);
        assert_eq!(&out[..3], &[1, 2, 3]);
    }
}
