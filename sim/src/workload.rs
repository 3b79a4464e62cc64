//! Workload generator: random or sequential I/O with a read/write mix, block size, queue
//! depth and any number of initiators, with **data verification** and latency statistics.
//!
//! Verification: every block a workload writes starts with a 32-byte signature — magic
//! `"RSCSTBLK"`, the LBA, a write generation (unique per write command), the initiator
//! index — followed by a body derived from (LBA, generation), and an FNV-1a checksum over
//! the whole block. The workload keeps a shadow of what each block must hold (the last
//! write that completed GOOD, or the set of candidates after a write that failed or was
//! aborted mid-flight) and checks every block it reads back:
//!
//! * a block with another LBA in its signature is a **misplaced** write;
//! * an older generation than the shadow's is a **lost** write (stale data);
//! * a bad checksum is **corrupt** data;
//! * a signature on a block this workload never wrote is a **phantom** write.
//!
//! Two commands of one workload never overlap in flight, so the expected content is exact.
//! (Several workloads writing the same blocks at once are not checked against each other.)
//!
//! Faults at the initiator side: `abts_probability` aborts a fraction of the commands
//! shortly after they are sent (an ABTS storm when high); `logout_every` logs an initiator
//! out with its commands outstanding, then back in.

use core::fmt;
use core::time::Duration;
use std::collections::BTreeMap;

use crate::fxhash::FxHashMap as HashMap;

use rscst_fw::fc::Residual;
use rscst_fw::{Lun, PortId};

use crate::InitiatorId;
use crate::initiator::{CommandSpec, Control, InitiatorEvent, LogoutReason, Tag};
use crate::rng::SimRng;
use crate::time::SimTime;

/// Address pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// Uniformly random I/O-aligned addresses.
    Random,
    /// Ascending, wrapping at the end of the range (each initiator keeps its own cursor).
    Sequential,
}

/// What a workload does.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadSpec {
    /// Target port (`None`: the simulated HBA's port).
    pub target: Option<PortId>,
    /// Logical unit.
    pub lun: Lun,
    /// Logical block size of the LUN.
    pub block_size: u32,
    /// Blocks per command.
    pub io_blocks: u32,
    /// First LBA of the region used.
    pub first_lba: u64,
    /// Blocks in the region used.
    pub lba_count: u64,
    /// Address pattern.
    pub pattern: Pattern,
    /// Percentage of reads (0–100).
    pub read_percent: u8,
    /// Commands in flight per initiator.
    pub queue_depth: u32,
    /// Stop after this many commands in total (`None`: run until `duration`).
    pub total_ios: Option<u64>,
    /// Stop issuing after this long (`None`: until `total_ios`).
    pub duration: Option<Duration>,
    /// Write signed blocks and check every block read.
    pub verify: bool,
    /// Use READ(16)/WRITE(16) (else READ(10)/WRITE(10)).
    pub cdb16: bool,
    /// Seed of the workload's random choices.
    pub seed: u64,
    /// Probability that a command is aborted (ABTS) right after it is sent.
    pub abts_probability: f64,
    /// Delay between sending a command and its ABTS.
    pub abts_delay: Duration,
    /// Log each initiator out (commands outstanding) and back in at this mean interval.
    pub logout_every: Option<Duration>,
}

impl Default for WorkloadSpec {
    fn default() -> Self {
        WorkloadSpec {
            target: None,
            lun: Lun::from_index(0).unwrap_or_default(),
            block_size: 512,
            io_blocks: 8,
            first_lba: 0,
            lba_count: 1024,
            pattern: Pattern::Random,
            read_percent: 50,
            queue_depth: 4,
            total_ios: Some(1000),
            duration: None,
            verify: true,
            cdb16: false,
            seed: 1,
            abts_probability: 0.0,
            abts_delay: Duration::from_micros(2),
            logout_every: None,
        }
    }
}

/// Identifies a workload of a [`crate::Sim`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WorkloadId(pub usize);

/// A latency histogram with ~6 % resolution (16 sub-buckets per power of two).
#[derive(Clone, PartialEq, Eq)]
pub struct Histogram {
    buckets: Vec<u64>,
    count: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: vec![0; 64 * 16],
            count: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }
}

impl fmt::Debug for Histogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Histogram({self})")
    }
}

impl Histogram {
    fn index(v: u64) -> usize {
        if v < 16 {
            return v as usize;
        }
        let e = 63 - v.leading_zeros() as usize; // >= 4
        (e - 3) * 16 + ((v >> (e - 4)) & 15) as usize
    }

    fn upper(i: usize) -> u64 {
        if i < 16 {
            return i as u64;
        }
        let e = i / 16 + 3;
        let sub = (i % 16) as u64;
        ((16 + sub + 1) << (e - 4)) - 1
    }

    /// Records a value (nanoseconds).
    pub fn record(&mut self, ns: u64) {
        let i = Self::index(ns).min(self.buckets.len() - 1);
        self.buckets[i] += 1;
        self.count += 1;
        self.sum += ns as u128;
        self.min = self.min.min(ns);
        self.max = self.max.max(ns);
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The value at quantile `q` (0..=1), as the upper edge of its bucket.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.count == 0 {
            return Duration::ZERO;
        }
        let want = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= want {
                return Duration::from_nanos(Self::upper(i).min(self.max));
            }
        }
        Duration::from_nanos(self.max)
    }

    /// Mean.
    pub fn mean(&self) -> Duration {
        if self.count == 0 {
            Duration::ZERO
        } else {
            Duration::from_nanos((self.sum / self.count as u128) as u64)
        }
    }

    /// Largest value.
    pub fn max(&self) -> Duration {
        Duration::from_nanos(if self.count == 0 { 0 } else { self.max })
    }

    /// Smallest value.
    pub fn min(&self) -> Duration {
        Duration::from_nanos(if self.count == 0 { 0 } else { self.min })
    }
}

impl fmt::Display for Histogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        write!(
            f,
            "n={} min={:.1}us mean={:.1}us p50={:.1}us p99={:.1}us p99.9={:.1}us max={:.1}us",
            self.count,
            us(self.min()),
            us(self.mean()),
            us(self.quantile(0.5)),
            us(self.quantile(0.99)),
            us(self.quantile(0.999)),
            us(self.max())
        )
    }
}

/// A data-verification failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyError {
    /// The block holds another LBA's data.
    Misplaced {
        /// The block read.
        lba: u64,
        /// The LBA its signature names.
        found_lba: u64,
    },
    /// The block holds an older (or never completed) write.
    Lost {
        /// The block.
        lba: u64,
        /// Generation found (0 = unsigned).
        found: u64,
        /// Generation expected.
        expected: u64,
    },
    /// Checksum mismatch.
    Corrupt {
        /// The block.
        lba: u64,
    },
    /// A signed block this workload never wrote.
    Phantom {
        /// The block.
        lba: u64,
        /// Generation found.
        found: u64,
    },
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::Misplaced { lba, found_lba } => write!(
                f,
                "LBA {lba}: holds LBA {found_lba}'s data (misplaced write)"
            ),
            VerifyError::Lost {
                lba,
                found,
                expected,
            } => {
                write!(
                    f,
                    "LBA {lba}: generation {found}, expected {expected} (lost write)"
                )
            }
            VerifyError::Corrupt { lba } => write!(f, "LBA {lba}: checksum mismatch (corrupt)"),
            VerifyError::Phantom { lba, found } => {
                write!(f, "LBA {lba}: generation {found} never written (phantom)")
            }
        }
    }
}

/// What a workload did.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadReport {
    /// Commands completed with GOOD status.
    pub ok: u64,
    /// Reads completed GOOD.
    pub reads: u64,
    /// Writes completed GOOD.
    pub writes: u64,
    /// Bytes read.
    pub bytes_read: u64,
    /// Bytes written.
    pub bytes_written: u64,
    /// Commands that completed with another status (BUSY, TASK SET FULL, CHECK CONDITION).
    pub bad_status: u64,
    /// Commands without status: timeout, aborted, target gone, logged out, data mismatch.
    pub failed: u64,
    /// Commands that could not be sent (not logged in, no OX_ID).
    pub not_sent: u64,
    /// ABTS the workload sent.
    pub aborts: u64,
    /// Logouts the workload did.
    pub logouts: u64,
    /// Blocks verified.
    pub blocks_verified: u64,
    /// Verification failures (count).
    pub verify_errors: u64,
    /// The first verification failures.
    pub first_errors: Vec<VerifyError>,
    /// Latency of GOOD commands.
    pub latency: Histogram,
    /// When the workload started.
    pub started: SimTime,
    /// When it finished (all commands issued and answered).
    pub finished: Option<SimTime>,
}

impl WorkloadReport {
    /// Commands per second of simulated (stepped) or real (threaded) time.
    pub fn iops(&self) -> f64 {
        let end = self.finished.unwrap_or(self.started);
        let secs = end.since(self.started).as_secs_f64();
        if secs > 0.0 {
            self.ok as f64 / secs
        } else {
            0.0
        }
    }

    /// `true` if every command completed GOOD and every block verified.
    pub fn clean(&self) -> bool {
        self.failed == 0 && self.bad_status == 0 && self.verify_errors == 0 && self.not_sent == 0
    }
}

impl fmt::Display for WorkloadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "ok={} (r={} w={}) bad_status={} failed={} not_sent={} aborts={} logouts={} iops={:.0}",
            self.ok,
            self.reads,
            self.writes,
            self.bad_status,
            self.failed,
            self.not_sent,
            self.aborts,
            self.logouts,
            self.iops()
        )?;
        writeln!(f, "latency {}", self.latency)?;
        write!(
            f,
            "verified {} blocks, {} errors",
            self.blocks_verified, self.verify_errors
        )?;
        for e in &self.first_errors {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

const MAGIC: &[u8; 8] = b"RSCSTBLK";

fn fnv(data: &[u8], mut h: u32) -> u32 {
    for &b in data {
        h ^= b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

fn body_word(lba: u64, generation: u64, i: u64) -> u64 {
    let mut z = lba.rotate_left(17) ^ generation.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z ^ (z >> 31)
}

/// Fills `block` with the signed content of (`lba`, `generation`, `initiator`).
pub fn sign_block(block: &mut [u8], lba: u64, generation: u64, initiator: u32) {
    if block.len() < 32 {
        return;
    }
    block[..8].copy_from_slice(MAGIC);
    block[8..16].copy_from_slice(&lba.to_le_bytes());
    block[16..24].copy_from_slice(&generation.to_le_bytes());
    block[24..28].copy_from_slice(&initiator.to_le_bytes());
    for (i, w) in block[32..].chunks_mut(8).enumerate() {
        let v = body_word(lba, generation, i as u64).to_le_bytes();
        w.copy_from_slice(&v[..w.len()]);
    }
    let h = fnv(&block[32..], fnv(&block[..28], 0x811C_9DC5));
    block[28..32].copy_from_slice(&h.to_le_bytes());
}

/// What a block's signature says: `None` if unsigned (no magic), `Some(Err)` if the magic is
/// there but the checksum is wrong, else (lba, generation).
pub fn read_signature(block: &[u8]) -> Option<Result<(u64, u64), ()>> {
    if block.len() < 32 || &block[..8] != MAGIC {
        return None;
    }
    let h = fnv(&block[32..], fnv(&block[..28], 0x811C_9DC5));
    if block[28..32] != h.to_le_bytes() {
        return Some(Err(()));
    }
    let lba = u64::from_le_bytes(block[8..16].try_into().unwrap_or([0; 8]));
    let generation = u64::from_le_bytes(block[16..24].try_into().unwrap_or([0; 8]));
    Some(Ok((lba, generation)))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Expect {
    /// Exactly this generation (0 = never written by this workload).
    Known(u64),
    /// One of these (a failed or aborted write may or may not have landed).
    OneOf(Vec<u64>),
}

#[derive(Debug, Clone, Copy)]
struct Io {
    ini: usize,
    write: bool,
    lba: u64,
    blocks: u32,
    generation: u64,
}

#[derive(Debug, Clone, Default)]
struct IniState {
    outstanding: u32,
    cursor: u64,
    logged_in: bool,
}

/// Timers of a workload.
#[derive(Debug, Clone, Copy)]
pub(crate) enum WorkloadTimer {
    Abort { ini: InitiatorId, tag: Tag },
    Logout { ini: InitiatorId },
    Login { ini: InitiatorId },
}

/// A running workload (owned by the simulator).
#[derive(Debug)]
pub struct Workload {
    spec: WorkloadSpec,
    target: PortId,
    rng: SimRng,
    inis: BTreeMap<usize, IniState>,
    inflight: HashMap<(usize, Tag), Io>,
    /// Slots (`io_blocks`-sized, aligned LBA ranges) with a command in flight: every
    /// command covers exactly one slot.
    busy_slots: HashMap<u64, ()>,
    shadow: HashMap<u64, Expect>,
    generation: u64,
    issued: u64,
    answered: u64,
    end: Option<SimTime>,
    report: WorkloadReport,
    stopped: bool,
    pub(crate) timers: Vec<(Duration, WorkloadTimer)>,
}

impl Workload {
    pub(crate) fn new(
        spec: WorkloadSpec,
        target: PortId,
        inis: &[InitiatorId],
        now: SimTime,
    ) -> Workload {
        let end = spec.duration.map(|d| now + d);
        Workload {
            rng: SimRng::new(spec.seed),
            target,
            inis: inis.iter().map(|i| (i.0, IniState::default())).collect(),
            inflight: HashMap::default(),
            busy_slots: HashMap::default(),
            shadow: HashMap::default(),
            generation: 0,
            issued: 0,
            answered: 0,
            end,
            report: WorkloadReport {
                ok: 0,
                reads: 0,
                writes: 0,
                bytes_read: 0,
                bytes_written: 0,
                bad_status: 0,
                failed: 0,
                not_sent: 0,
                aborts: 0,
                logouts: 0,
                blocks_verified: 0,
                verify_errors: 0,
                first_errors: Vec::new(),
                latency: Histogram::default(),
                started: now,
                finished: None,
            },
            stopped: false,
            spec,
            timers: Vec::new(),
        }
    }

    /// The statistics so far.
    pub fn report(&self) -> &WorkloadReport {
        &self.report
    }

    /// `true` once everything was issued and answered.
    pub fn done(&self) -> bool {
        self.report.finished.is_some()
    }

    pub(crate) fn stop(&mut self) {
        self.stopped = true;
    }

    fn may_issue(&self, now: SimTime) -> bool {
        !self.stopped
            && self.spec.total_ios.is_none_or(|t| self.issued < t)
            && self.end.is_none_or(|e| now < e)
    }

    fn check_done(&mut self, now: SimTime) {
        if self.report.finished.is_none() && !self.may_issue(now) && self.inflight.is_empty() {
            self.report.finished = Some(now);
        }
    }

    /// Starts the initiator: log in or fill its queue.
    pub(crate) fn kick(&mut self, ctl: &mut Control<'_>) {
        let i = ctl.id().0;
        if ctl.sim.initiator_logged_in(ctl.id(), self.target) {
            if let Some(s) = self.inis.get_mut(&i) {
                s.logged_in = true;
            }
            self.fill(ctl);
        } else if ctl.sim.initiator_port_id(ctl.id()).is_some() {
            let _ = ctl.login(self.target);
        }
        if let Some(mean) = self.spec.logout_every {
            let d = crate::fault::FaultInjector::next_interval(&mut self.rng, mean);
            self.timers
                .push((d, WorkloadTimer::Logout { ini: ctl.id() }));
        }
    }

    fn pick(&mut self, ini: usize) -> Option<(u64, u32)> {
        let n = self.spec.io_blocks.max(1) as u64;
        let slots = (self.spec.lba_count / n).max(1);
        for _ in 0..16 {
            let slot = match self.spec.pattern {
                Pattern::Random => self.rng.below(slots),
                Pattern::Sequential => {
                    let s = self.inis.get_mut(&ini)?;
                    let v = s.cursor % slots;
                    s.cursor = s.cursor.wrapping_add(1);
                    v
                }
            };
            if !self.busy_slots.contains_key(&slot) {
                return Some((self.spec.first_lba + slot * n, n as u32));
            }
        }
        None
    }

    /// The slot of a command's first LBA.
    fn slot_of(&self, lba: u64) -> u64 {
        (lba - self.spec.first_lba) / self.spec.io_blocks.max(1) as u64
    }

    /// The READ/WRITE CDB in `buf`; returns its length.
    fn cdb(&self, buf: &mut [u8; 16], write: bool, lba: u64, blocks: u32) -> usize {
        if self.spec.cdb16 {
            buf[0] = if write { 0x8A } else { 0x88 };
            buf[1] = 0;
            buf[2..10].copy_from_slice(&lba.to_be_bytes());
            buf[10..14].copy_from_slice(&blocks.to_be_bytes());
            buf[14..16].fill(0);
            16
        } else {
            buf[0] = if write { 0x2A } else { 0x28 };
            buf[1] = 0;
            buf[2..6].copy_from_slice(&(lba as u32).to_be_bytes());
            buf[6] = 0;
            buf[7..9].copy_from_slice(&(blocks as u16).to_be_bytes());
            buf[9] = 0;
            10
        }
    }

    /// Issues commands on this initiator up to the queue depth.
    fn fill(&mut self, ctl: &mut Control<'_>) {
        let i = ctl.id().0;
        loop {
            let now = ctl.now();
            if !self.may_issue(now) {
                break;
            }
            let Some(st) = self.inis.get(&i) else { break };
            if !st.logged_in || st.outstanding >= self.spec.queue_depth {
                break;
            }
            let Some((lba, blocks)) = self.pick(i) else {
                break;
            };
            let write = self.rng.below(100) >= self.spec.read_percent as u64;
            let bs = self.spec.block_size as usize;
            let len = blocks as usize * bs;
            let mut cdb_buf = [0u8; 16];
            let cdb_len = self.cdb(&mut cdb_buf, write, lba, blocks);
            let cdb = &cdb_buf[..cdb_len];
            let mut generation = 0;
            let spec = if write {
                self.generation += 1;
                generation = self.generation;
                let mut data = ctl.sim.initiator_buffer(ctl.id());
                data.resize(len, 0);
                for (k, b) in data.chunks_mut(bs).enumerate() {
                    if self.spec.verify {
                        sign_block(b, lba + k as u64, generation, i as u32);
                    } else {
                        let n = b.len().min(8);
                        b[..n].copy_from_slice(&(lba + k as u64).to_le_bytes()[..n]);
                    }
                }
                CommandSpec::write(self.spec.lun, cdb, data)
            } else {
                CommandSpec::read(self.spec.lun, cdb, len as u32)
            };
            let Ok(spec) = spec else { break };
            // Read data is collected only to be verified.
            let id = ctl.id();
            match ctl
                .sim
                .initiator_command_collect(id, self.target, spec, self.spec.verify)
            {
                Ok(tag) => {
                    self.issued += 1;
                    self.busy_slots.insert(self.slot_of(lba), ());
                    self.inflight.insert(
                        (i, tag),
                        Io {
                            ini: i,
                            write,
                            lba,
                            blocks,
                            generation,
                        },
                    );
                    if let Some(s) = self.inis.get_mut(&i) {
                        s.outstanding += 1;
                    }
                    if self.spec.abts_probability > 0.0
                        && self.rng.chance(self.spec.abts_probability)
                    {
                        self.timers.push((
                            self.spec.abts_delay,
                            WorkloadTimer::Abort { ini: ctl.id(), tag },
                        ));
                    }
                }
                Err(_) => {
                    self.report.not_sent += 1;
                    break;
                }
            }
        }
        self.check_done(ctl.now());
    }

    fn finish_io(&mut self, key: (usize, Tag)) -> Option<Io> {
        let io = self.inflight.remove(&key)?;
        self.busy_slots.remove(&self.slot_of(io.lba));
        if let Some(s) = self.inis.get_mut(&io.ini) {
            s.outstanding = s.outstanding.saturating_sub(1);
        }
        self.answered += 1;
        Some(io)
    }

    /// A write whose outcome is unknown: the blocks may hold the old or the new data.
    fn uncertain(&mut self, io: &Io) {
        for b in io.lba..io.lba + io.blocks as u64 {
            let e = self.shadow.entry(b).or_insert(Expect::Known(0));
            let mut set = match e {
                Expect::Known(g) => vec![*g],
                Expect::OneOf(v) => v.clone(),
            };
            if !set.contains(&io.generation) {
                set.push(io.generation);
            }
            *e = Expect::OneOf(set);
        }
    }

    fn verify_error(&mut self, e: VerifyError) {
        self.report.verify_errors += 1;
        if self.report.first_errors.len() < 16 {
            self.report.first_errors.push(e);
        }
    }

    fn verify(&mut self, io: &Io, data: &[u8]) {
        let bs = self.spec.block_size as usize;
        for (k, block) in data.chunks(bs).enumerate() {
            let lba = io.lba + k as u64;
            self.report.blocks_verified += 1;
            let expect = self.shadow.get(&lba).cloned().unwrap_or(Expect::Known(0));
            let found = match read_signature(block) {
                None => 0,
                Some(Err(())) => {
                    self.verify_error(VerifyError::Corrupt { lba });
                    continue;
                }
                Some(Ok((l, g))) => {
                    if l != lba {
                        self.verify_error(VerifyError::Misplaced { lba, found_lba: l });
                        continue;
                    }
                    g
                }
            };
            let ok = match &expect {
                Expect::Known(g) => *g == found,
                Expect::OneOf(v) => v.contains(&found),
            };
            if ok {
                // Collapse an uncertain block to what it turned out to hold.
                self.shadow.insert(lba, Expect::Known(found));
                continue;
            }
            match expect {
                Expect::Known(0) => self.verify_error(VerifyError::Phantom { lba, found }),
                Expect::Known(g) => self.verify_error(VerifyError::Lost {
                    lba,
                    found,
                    expected: g,
                }),
                Expect::OneOf(v) => {
                    let expected = v.iter().copied().max().unwrap_or(0);
                    if v.contains(&0) || found > expected {
                        self.verify_error(VerifyError::Phantom { lba, found })
                    } else {
                        self.verify_error(VerifyError::Lost {
                            lba,
                            found,
                            expected,
                        })
                    }
                }
            }
        }
    }

    pub(crate) fn on_event(&mut self, ctl: &mut Control<'_>, ev: InitiatorEvent<'_>) {
        let i = ctl.id().0;
        match ev {
            InitiatorEvent::FabricLogin { .. } => {
                let _ = ctl.login(self.target);
            }
            InitiatorEvent::LoginDone { target, ok } if target == self.target => {
                if ok {
                    if let Some(s) = self.inis.get_mut(&i) {
                        s.logged_in = true;
                    }
                    self.fill(ctl);
                } else {
                    self.timers.push((
                        Duration::from_millis(10),
                        WorkloadTimer::Login { ini: ctl.id() },
                    ));
                }
            }
            InitiatorEvent::LoggedOut { target, reason } if target == self.target => {
                if let Some(s) = self.inis.get_mut(&i) {
                    s.logged_in = false;
                }
                let d = if reason == LogoutReason::Requested {
                    Duration::ZERO
                } else {
                    Duration::from_millis(1)
                };
                self.timers
                    .push((d, WorkloadTimer::Login { ini: ctl.id() }));
            }
            InitiatorEvent::Completed { tag, result } => {
                let Some(io) = self.finish_io((i, tag)) else {
                    return;
                };
                if result.status == 0 {
                    self.report.ok += 1;
                    self.report
                        .latency
                        .record(u64::try_from(result.latency.as_nanos()).unwrap_or(u64::MAX));
                    let bytes = io.blocks as u64 * self.spec.block_size as u64;
                    if io.write {
                        self.report.writes += 1;
                        self.report.bytes_written += bytes;
                        for b in io.lba..io.lba + io.blocks as u64 {
                            self.shadow.insert(b, Expect::Known(io.generation));
                        }
                    } else {
                        self.report.reads += 1;
                        self.report.bytes_read += bytes;
                        if self.spec.verify && result.residual == Residual::None {
                            self.verify(&io, &result.data);
                        }
                    }
                } else {
                    self.report.bad_status += 1;
                    // BUSY / TASK SET FULL: not executed; anything else may have partly run.
                    if io.write && !matches!(result.status, 0x08 | 0x28) {
                        self.uncertain(&io);
                    }
                }
                self.fill(ctl);
            }
            InitiatorEvent::Failed { tag, .. } => {
                let Some(io) = self.finish_io((i, tag)) else {
                    return;
                };
                self.report.failed += 1;
                if io.write {
                    self.uncertain(&io);
                }
                self.fill(ctl);
            }
            _ => {}
        }
        self.check_done(ctl.now());
    }

    pub(crate) fn on_timer(&mut self, ctl: &mut Control<'_>, t: WorkloadTimer) {
        match t {
            WorkloadTimer::Abort { tag, .. } => {
                if self.inflight.contains_key(&(ctl.id().0, tag)) && ctl.abort(tag).is_ok() {
                    self.report.aborts += 1;
                }
            }
            WorkloadTimer::Logout { .. } => {
                if self.may_issue(ctl.now()) {
                    if ctl.logout(self.target).is_ok() {
                        self.report.logouts += 1;
                    }
                    if let Some(mean) = self.spec.logout_every {
                        let d = crate::fault::FaultInjector::next_interval(&mut self.rng, mean);
                        self.timers
                            .push((d, WorkloadTimer::Logout { ini: ctl.id() }));
                    }
                }
            }
            WorkloadTimer::Login { .. } => {
                if !ctl.sim.initiator_logged_in(ctl.id(), self.target)
                    && ctl.login(self.target).is_err()
                {
                    self.timers.push((
                        Duration::from_millis(10),
                        WorkloadTimer::Login { ini: ctl.id() },
                    ));
                }
            }
        }
        self.check_done(ctl.now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_round_trip_and_detect_damage() {
        let mut b = vec![0u8; 512];
        sign_block(&mut b, 77, 5, 2);
        assert_eq!(read_signature(&b), Some(Ok((77, 5))));
        let mut c = b.clone();
        c[300] ^= 1;
        assert_eq!(read_signature(&c), Some(Err(())));
        assert_eq!(read_signature(&[0u8; 512]), None);
        let mut d = vec![0u8; 512];
        sign_block(&mut d, 78, 5, 2);
        assert_ne!(b[32..], d[32..], "the body depends on the LBA");
    }

    #[test]
    fn verify_classifies_every_failure() {
        let spec = WorkloadSpec::default();
        let mut w = Workload::new(
            spec,
            PortId::new(0x010100),
            &[InitiatorId(0)],
            SimTime::ZERO,
        );
        let io = Io {
            ini: 0,
            write: false,
            lba: 10,
            blocks: 4,
            generation: 0,
        };
        w.shadow.insert(10, Expect::Known(3));
        w.shadow.insert(11, Expect::Known(3));
        w.shadow.insert(12, Expect::OneOf(vec![2, 5]));
        let mut data = vec![0u8; 4 * 512];
        sign_block(&mut data[..512], 10, 3, 0); // correct
        sign_block(&mut data[512..1024], 11, 2, 0); // older generation: lost
        sign_block(&mut data[1024..1536], 12, 5, 0); // one of the candidates: fine
        sign_block(&mut data[1536..], 13, 1, 0); // never written: phantom
        w.verify(&io, &data);
        assert_eq!(
            w.report.first_errors,
            vec![
                VerifyError::Lost {
                    lba: 11,
                    found: 2,
                    expected: 3
                },
                VerifyError::Phantom { lba: 13, found: 1 }
            ]
        );
        assert_eq!(
            w.shadow.get(&12),
            Some(&Expect::Known(5)),
            "uncertain block collapsed"
        );
        let mut bad = data.clone();
        bad[100] ^= 0xFF;
        sign_block(&mut bad[512..1024], 9, 3, 0); // another LBA's block
        w.report.first_errors.clear();
        w.verify(&io, &bad);
        assert_eq!(w.report.first_errors[0], VerifyError::Corrupt { lba: 10 });
        assert_eq!(
            w.report.first_errors[1],
            VerifyError::Misplaced {
                lba: 11,
                found_lba: 9
            }
        );
        assert_eq!(w.report.blocks_verified, 8);
    }

    #[test]
    fn histogram_quantiles() {
        let mut h = Histogram::default();
        for v in 1..=1000u64 {
            h.record(v * 1000);
        }
        let p50 = h.quantile(0.5).as_nanos() as u64;
        assert!((500_000..=540_000).contains(&p50), "{p50}");
        let p99 = h.quantile(0.99).as_nanos() as u64;
        assert!((990_000..=1_000_000).contains(&p99), "{p99}");
        assert_eq!(h.max(), Duration::from_micros(1000));
        assert_eq!(h.min(), Duration::from_micros(1));
        assert_eq!(h.count(), 1000);
        for v in [0u64, 1, 15, 16, 17, 31, 32, 1 << 20, u64::MAX >> 1] {
            assert!(Histogram::upper(Histogram::index(v)) >= v, "{v}");
        }
    }
}
