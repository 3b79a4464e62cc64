//! `rscst bench`: load from simulated initiators through the whole stack in one process
//! — the simulated ISP (firmware model, fabric, initiators with a verifying workload),
//! the `rscst-qla` driver, the `rscst-core` target and a RAM (or null) LUN — and what it
//! costs: IOPS, MB/s, latency percentiles, the driver+core thread's CPU time per
//! command, allocations per command, bytes copied per command, against a baseline
//! (a memcpy of the command's bytes) measured in the same process.
//!
//! * Threaded (default): the simulator runs on its own thread on the host clock
//!   (`SimConfig::threaded()`: no modelled latencies, no trace); this thread is the
//!   poller (driver + core), spinning (`--idle spin`) or sleeping on the interrupt line
//!   (`--idle irq`) when idle. Latency is real time, measured by the initiators.
//! * `--deterministic`: one thread steps the simulator and the poller on the virtual
//!   clock with the same zero-latency model; the same seed issues the same commands and
//!   writes the same traces. Allocations and time inside the driver+core turns are
//!   bracketed exactly; this is the mode for `valgrind --tool=callgrind`
//!   (`scripts/callgrind-read512.sh`).
//!
//! The measured window starts when the workload starts (after bring-up, logins and the
//! baseline) and ends when the workload's commands are done (`--commands`) or its time
//! is up and the commands in flight have finished (`--seconds`).

mod report;
mod run;
mod stack;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant as StdInstant};

use clap::{Args, ValueEnum};
use rscst_core::Backend;
use rscst_sim::pcap::PcapWriter;
use rscst_sim::{Pattern, Sim, SimConfig, TraceConfig, WorkloadReport, WorkloadSpec};

use crate::CliError;
use crate::trace::TraceWriter;
use run::{Idle, Poller, ProgressThread, Stop, Window};
use stack::{CMDS, LUN0, LunKind, SESSIONS, Stack, StackConfig};

/// Address pattern of the workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PatternArg {
    /// Uniformly random, I/O-size aligned.
    Random,
    /// Ascending, wrapping (each initiator its own cursor).
    Sequential,
}

/// What the threaded poller does when it finds no work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IdleArg {
    /// Poll again at once (a dedicated core, as SPDK pollers run).
    Spin,
    /// Sleep on the interrupt line until the HBA raises it.
    Irq,
}

/// The simulated HBA's interrupt line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IrqArg {
    /// MSI: a message per posted cause, acknowledged before the cause is read.
    Msi,
    /// INTx: a level, acknowledged after the cause is cleared.
    Intx,
}

/// Arguments of `rscst bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Bytes per command (a multiple of --lba-size).
    #[arg(long, default_value_t = 4096)]
    pub bs: u32,
    /// Logical block size of the LUN.
    #[arg(long, default_value_t = 512)]
    pub lba_size: u32,
    /// Percentage of reads; the rest are writes.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub read_percent: u8,
    /// Address pattern.
    #[arg(long, value_enum, default_value_t = PatternArg::Random)]
    pub pattern: PatternArg,
    /// Commands in flight per initiator.
    #[arg(long, default_value_t = 1)]
    pub qd: u32,
    /// Simulated initiator ports, each logged in to the target.
    #[arg(long, default_value_t = 1)]
    pub initiators: usize,
    /// Run for this many seconds of wall-clock time [default: 5].
    #[arg(long, conflicts_with = "commands")]
    pub seconds: Option<f64>,
    /// Run exactly this many commands instead.
    #[arg(long)]
    pub commands: Option<u64>,
    /// Do not sign written blocks and check every block read.
    #[arg(long)]
    pub no_verify: bool,
    /// The LUN's backend.
    #[arg(long, value_enum, default_value_t = LunKind::Ram)]
    pub lun: LunKind,
    /// LUN size in MiB.
    #[arg(long, default_value_t = 64)]
    pub lun_mib: u64,
    /// Print one JSON object instead of the text report.
    #[arg(long)]
    pub json: bool,
    /// Write every FC frame of the run (bring-up included) to this pcap (LINKTYPE 225).
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,
    /// Record the simulator's typed trace events to FILE (read it with `rscst trace`).
    /// Tracing costs time: the figures of a traced run are not comparable.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// With --trace, also record every register access.
    #[arg(long, requires = "trace")]
    pub trace_registers: bool,
    /// Step simulator and poller on one thread on the virtual clock (reproducible).
    #[arg(long)]
    pub deterministic: bool,
    /// Seed of the simulator and the workload.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Threaded mode: what the poller does when idle.
    #[arg(long, value_enum, default_value_t = IdleArg::Spin)]
    pub idle: IdleArg,
    /// The simulated HBA's interrupt line (how the driver acknowledges it).
    #[arg(long, value_enum, default_value_t = IrqArg::Msi)]
    pub irq: IrqArg,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

impl BenchArgs {
    fn stop(&self) -> Stop {
        match self.commands {
            Some(n) => Stop::Commands(n),
            None => Stop::Time(Duration::from_secs_f64(self.seconds.unwrap_or(5.0))),
        }
    }

    fn verify(&self) -> bool {
        !self.no_verify
    }

    fn check(&self) -> Result<(), CliError> {
        let bad = |m: String| Err(CliError(m));
        if !self.lba_size.is_power_of_two() || !(512..=65536).contains(&self.lba_size) {
            return bad(format!(
                "--lba-size {}: a power of two from 512 to 65536",
                self.lba_size
            ));
        }
        if self.bs == 0 || !self.bs.is_multiple_of(self.lba_size) || self.bs > 1 << 20 {
            return bad(format!(
                "--bs {}: a multiple of --lba-size {} up to 1 MiB",
                self.bs, self.lba_size
            ));
        }
        if self.qd == 0 || self.initiators == 0 {
            return bad("--qd and --initiators must be at least 1".into());
        }
        if self.initiators > SESSIONS {
            return bad(format!(
                "--initiators {}: at most {SESSIONS}",
                self.initiators
            ));
        }
        if self.initiators as u64 * u64::from(self.qd) > CMDS as u64 {
            return bad(format!(
                "--initiators × --qd = {}: the target has {CMDS} command slots",
                self.initiators as u64 * u64::from(self.qd)
            ));
        }
        if self.lun_mib == 0 || self.lun_mib > 16 * 1024 {
            return bad(format!("--lun-mib {}: 1 to 16384", self.lun_mib));
        }
        let lun_bytes = self.lun_mib << 20;
        if lun_bytes / u64::from(self.bs) < self.initiators as u64 * u64::from(self.qd) {
            return bad("the LUN is too small for the commands in flight".into());
        }
        if let Some(s) = self.seconds
            && !(s > 0.0 && s <= 86_400.0)
        {
            return bad(format!("--seconds {s}: more than 0, at most a day"));
        }
        if self.commands == Some(0) {
            return bad("--commands must be at least 1".into());
        }
        if self.lun == LunKind::Null && self.verify() && self.read_percent < 100 {
            return bad(
                "a null LUN discards writes, so --verify cannot check them: use --no-verify \
                 or --read-percent 100"
                    .into(),
            );
        }
        Ok(())
    }

    fn stack_config(&self) -> StackConfig {
        let mut sim = SimConfig::threaded();
        sim.seed = self.seed;
        sim.irq_trigger = match self.irq {
            IrqArg::Msi => rscst_hba::Trigger::Edge,
            IrqArg::Intx => rscst_hba::Trigger::Level,
        };
        if self.trace.is_some() {
            sim.trace = TraceConfig {
                enabled: true,
                registers: self.trace_registers,
                capacity: 1 << 20,
            };
        }
        StackConfig {
            sim,
            block_size: self.lba_size,
            blocks: (self.lun_mib << 20) / u64::from(self.lba_size),
            pool_bytes: 4 << 20,
        }
    }

    fn workload(&self, blocks: u64) -> WorkloadSpec {
        WorkloadSpec {
            target: None,
            lun: rscst_fw::Lun::from_index(0).unwrap_or(LUN0),
            block_size: self.lba_size,
            io_blocks: self.bs / self.lba_size,
            first_lba: 0,
            lba_count: blocks,
            pattern: match self.pattern {
                PatternArg::Random => Pattern::Random,
                PatternArg::Sequential => Pattern::Sequential,
            },
            read_percent: self.read_percent,
            queue_depth: self.qd,
            total_ios: self.commands,
            // Threaded: the simulator's clock is the host's, so the workload stops
            // issuing at the end of the window by itself. Stepped: stopped by the loop
            // on the wall clock.
            duration: match (self.deterministic, self.stop()) {
                (false, Stop::Time(d)) => Some(d),
                _ => None,
            },
            verify: self.verify(),
            cdb16: blocks > u64::from(u32::MAX),
            seed: self.seed,
            ..WorkloadSpec::default()
        }
    }
}

/// Runs `rscst bench`.
pub fn run(args: &BenchArgs) -> Result<(), CliError> {
    args.check()?;
    let cfg = args.stack_config();
    let e = |m: String| CliError(m);
    match args.lun {
        LunKind::Ram => bench(args, stack::build_ram(&cfg).map_err(e)?),
        LunKind::Null => bench(args, stack::build_null(&cfg).map_err(e)?),
        LunKind::RamCopy => bench(args, stack::build_ram_copy(&cfg).map_err(e)?),
    }
}

/// Where the typed trace goes.
struct TraceOut {
    path: PathBuf,
    w: TraceWriter<BufWriter<File>>,
    error: Option<String>,
}

impl TraceOut {
    fn drain(&mut self, sim: &Sim) {
        let events = sim.trace_events();
        sim.clear_trace();
        self.write(&events);
    }

    fn write(&mut self, events: &[rscst_sim::TraceEvent]) {
        if self.error.is_some() {
            return;
        }
        for e in events {
            if let Err(err) = self.w.write(e) {
                self.error = Some(format!("{}: {err}", self.path.display()));
                return;
            }
        }
    }
}

fn progress_bar(args: &BenchArgs) -> indicatif::ProgressBar {
    if args.quiet || args.json {
        return indicatif::ProgressBar::hidden();
    }
    let (len, tpl) = match args.stop() {
        Stop::Commands(n) => (n, "{bar:40} {pos}/{len} commands  {msg}"),
        Stop::Time(d) => (
            d.as_millis() as u64,
            "{bar:40} {elapsed_precise} of the run  {msg}",
        ),
    };
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template(tpl) {
        bar.set_style(style);
    }
    bar
}

fn bench<B: Backend>(args: &BenchArgs, mut st: Stack<B>) -> Result<(), CliError> {
    let err = |m: String| CliError(m);
    let pcap = match &args.pcap {
        Some(p) => {
            let f = File::create(p).map_err(|e| err(format!("{}: {e}", p.display())))?;
            let w: Box<dyn Write + Send> = Box::new(BufWriter::new(f));
            let w = PcapWriter::new(w).map_err(|e| err(format!("{}: {e}", p.display())))?;
            st.sim.set_pcap(Some(w));
            Some(p.clone())
        }
        None => None,
    };
    let mut trace = match &args.trace {
        Some(p) => {
            let f = File::create(p).map_err(|e| err(format!("{}: {e}", p.display())))?;
            let w = TraceWriter::new(BufWriter::new(f))
                .map_err(|e| err(format!("{}: {e}", p.display())))?;
            Some(TraceOut {
                path: p.clone(),
                w,
                error: None,
            })
        }
        None => None,
    };
    let inis = st.bring_up(args.initiators).map_err(err)?;
    if let Some(t) = trace.as_mut() {
        t.drain(&st.sim);
    }
    let baseline_ns = memcpy_ns(args.bs as usize);
    let blocks = (args.lun_mib << 20) / u64::from(args.lba_size);
    let spec = args.workload(blocks);
    let bar = progress_bar(args);
    let done = if args.deterministic {
        stepped(args, st, &inis, spec, bar, &mut trace)?
    } else {
        threaded(args, st, inis, spec, bar, &mut trace)?
    };
    let mut pcap_frames = None;
    if let Some(p) = &pcap {
        let w = done
            .sim
            .set_pcap(None)
            .ok_or_else(|| err(format!("{}: the pcap writer was lost", p.display())))?;
        pcap_frames = Some(w.frames());
        w.into_inner()
            .map_err(|e| err(format!("{}: {e}", p.display())))?;
    }
    if let Some(e) = done.sim.trace_io_error() {
        return Err(err(format!("trace output: {e}")));
    }
    let mut trace_info = None;
    if let Some(mut t) = trace {
        t.drain(&done.sim);
        if let Some(e) = t.error {
            return Err(err(e));
        }
        let records = t.w.records();
        t.w.into_inner()
            .map_err(|e| err(format!("{}: {e}", t.path.display())))?;
        trace_info = Some((t.path, records, done.sim.trace_counts().1));
    }
    let r = report::Report {
        args,
        win: &done.win,
        wl: &done.report,
        driver: done.driver,
        baseline_ns,
        violations: done.sim.violations().len(),
        iommu_faults: done.sim.iommu_faults().len(),
        open_exchanges: done.sim.open_exchanges(),
        pcap: pcap.zip(pcap_frames),
        trace: trace_info,
    };
    if args.json {
        println!("{}", r.json());
    } else {
        print!("{r}");
    }
    let problems = r.problems();
    // The simulator panics on drop when its IOMMU saw faults nobody took; they are in
    // the report already.
    let _ = done.sim.take_iommu_faults();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(CliError(problems.join("; ")))
    }
}

/// What a run leaves for the report.
struct Done {
    win: Window,
    report: WorkloadReport,
    sim: Sim,
    driver: rscst_qla::Stats,
}

fn stepped<B: Backend>(
    args: &BenchArgs,
    mut st: Stack<B>,
    inis: &[rscst_sim::InitiatorId],
    spec: WorkloadSpec,
    bar: indicatif::ProgressBar,
    trace: &mut Option<TraceOut>,
) -> Result<Done, CliError> {
    let err = |m: String| CliError(m);
    let stop = args.stop();
    let w = st
        .sim
        .start_workload(spec, inis)
        .ok_or_else(|| err("the workload has no target".into()))?;
    let t0 = StdInstant::now();
    let mut tick = |sim: &Sim, done: u64| {
        match stop {
            Stop::Commands(_) => bar.set_position(done),
            Stop::Time(_) => bar.set_position(t0.elapsed().as_millis() as u64),
        }
        if let Some(t) = trace.as_mut() {
            t.drain(sim);
        }
    };
    let win = run::stepped(&mut st, w, stop, &mut tick);
    bar.finish_and_clear();
    let win = win.map_err(err)?;
    let report = st
        .sim
        .workload_report(w)
        .ok_or_else(|| err("no workload report".into()))?;
    Ok(Done {
        win,
        report,
        driver: st.isp.stats(),
        sim: st.sim,
    })
}

fn threaded<B: Backend>(
    args: &BenchArgs,
    st: Stack<B>,
    inis: Vec<rscst_sim::InitiatorId>,
    spec: WorkloadSpec,
    bar: indicatif::ProgressBar,
    trace: &mut Option<TraceOut>,
) -> Result<Done, CliError> {
    let err = |m: String| CliError(m);
    let stop = args.stop();
    let Stack {
        sim,
        mut isp,
        mut target,
        mut backend,
        counted,
    } = st;
    let clock = (sim.now(), StdInstant::now());
    let th = sim.spawn();
    let w = th
        .with(move |s| s.start_workload(spec, &inis))
        .ok_or_else(|| err("the workload has no target".into()))?;
    let done = Arc::new(AtomicU64::new(0));
    let pt = ProgressThread::start(bar, Arc::clone(&done), matches!(stop, Stop::Time(_)));
    let mut poller = Poller {
        isp: &mut isp,
        target: &mut target,
        backend: &mut backend,
        counted: &counted,
        clock,
    };
    let idle = match args.idle {
        IdleArg::Spin => Idle::Spin,
        IdleArg::Irq => Idle::Irq,
    };
    let mut drain = || {
        if let Some(t) = trace.as_mut() {
            let ev = th.with(|s| {
                let e = s.trace_events();
                s.clear_trace();
                e
            });
            t.write(&ev);
        }
    };
    let win = poller.measure(stop, idle, &done, &mut drain);
    pt.finish();
    let win = win.map_err(err)?;
    // Let the last commands finish (outside the window).
    let finished = poller.poll_until(Duration::from_secs(60), |_| {
        th.with(move |s| s.workload_done(w))
    });
    let sim = th.stop();
    if !finished {
        return Err(err("the workload did not finish after the window".into()));
    }
    let report = sim
        .workload_report(w)
        .ok_or_else(|| err("no workload report".into()))?;
    Ok(Done {
        win,
        report,
        driver: isp.stats(),
        sim,
    })
}

/// Nanoseconds per memcpy of `bytes` bytes (buffers cycling through 4 MiB), measured
/// for about 50 ms: the baseline the command costs are compared with.
fn memcpy_ns(bytes: usize) -> f64 {
    const SPAN: usize = 4 << 20;
    let bytes = bytes.clamp(1, SPAN);
    let src = vec![0x5Au8; SPAN];
    let mut dst = vec![0u8; SPAN];
    let per_pass = SPAN / bytes;
    let t = StdInstant::now();
    let mut copies = 0u64;
    while t.elapsed() < Duration::from_millis(50) {
        for i in 0..per_pass {
            let o = i * bytes;
            dst[o..o + bytes].copy_from_slice(std::hint::black_box(&src[o..o + bytes]));
        }
        std::hint::black_box(&mut dst);
        copies += per_pass as u64;
    }
    t.elapsed().as_nanos() as f64 / copies.max(1) as f64
}
