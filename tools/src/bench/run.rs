//! The measured loops: stepped (one thread, virtual time, deterministic) and threaded
//! (the simulator on its own thread, the driver and the core on this one).
//!
//! In both, the driver+core work of one poller turn is [`driver_core_turn`], a function
//! that is never inlined, so a profiler (callgrind's `--toggle-collect`, `perf`) can
//! name it; the whole stepped window is [`stepped_window`], likewise.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant as StdInstant};

use rscst_core::{Backend, Instant, Target};
use rscst_qla::Progress;
use rscst_sim::{Sim, SimTime, WorkloadId};

use super::stack::{Counters, Driver, Stack};

/// When the measured window ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stop {
    /// After the workload's command count (the workload issues exactly this many).
    Commands(u64),
    /// After this much wall-clock time (the workload stops issuing then).
    Time(Duration),
}

/// What one measured window saw. Deltas over the window.
#[derive(Debug, Clone, Default)]
pub struct Window {
    /// Commands the core completed (status sent).
    pub commands: u64,
    /// Data bytes the driver moved (Data-In + Data-Out).
    pub bytes: u64,
    /// Wall-clock length.
    pub wall: Duration,
    /// CPU time of the poller thread (driver + core; in stepped mode also the simulator).
    pub poller_cpu: Duration,
    /// CPU time of the whole process.
    pub process_cpu: Duration,
    /// Time spent inside the driver+core turn, all turns.
    pub in_turns: Duration,
    /// Time spent inside driver+core turns that made progress.
    pub busy: Duration,
    /// Driver+core turns.
    pub turns: u64,
    /// Turns that made progress.
    pub busy_turns: u64,
    /// Allocations by every thread.
    pub allocs_process: u64,
    /// Allocations inside driver+core turns (exact in stepped mode, where one thread
    /// runs everything; not separable in threaded mode).
    pub allocs_driver_core: Option<u64>,
    /// The driver's own `bytes_copied` counter.
    pub driver_copied: u64,
    /// Bytes the host moved through LUN memory.
    pub lun_bytes: u64,
    /// Bytes the host moved through the core's buffer pool.
    pub pool_bytes: u64,
    /// CTIO7s, doorbells and interrupts the driver handled.
    pub ctios: u64,
    /// Request-ring doorbells.
    pub doorbells: u64,
    /// Interrupt-status values serviced.
    pub interrupts: u64,
    /// Register reads by the driver (uncached round trips on hardware).
    pub mmio_reads: u64,
    /// Register writes by the driver (posted on hardware).
    pub mmio_writes: u64,
}

/// Counters sampled at the window's edges.
struct Snap {
    wall: StdInstant,
    poller_cpu: Duration,
    process_cpu: Duration,
    allocs: u64,
    completed: u64,
    drv: rscst_qla::Stats,
    mmio: (u64, u64),
    lun: u64,
    pool: u64,
}

/// CPU time of the calling thread (`CLOCK_THREAD_CPUTIME_ID`).
pub fn thread_cpu() -> Duration {
    cpu_time::ThreadTime::now().as_duration()
}

/// CPU time of the process (`CLOCK_PROCESS_CPUTIME_ID`).
pub fn process_cpu() -> Duration {
    cpu_time::ProcessTime::now().as_duration()
}

fn snap(isp: &Driver, target: &Target<'_>, c: &Counters) -> Snap {
    Snap {
        wall: StdInstant::now(),
        poller_cpu: thread_cpu(),
        process_cpu: process_cpu(),
        allocs: crate::ALLOC.allocations(),
        completed: target.stats().completed,
        drv: isp.stats(),
        mmio: isp.platform().mmio_counts(),
        lun: c.lun_bytes(),
        pool: c.pool_bytes(),
    }
}

fn window(a: &Snap, b: &Snap) -> Window {
    Window {
        commands: b.completed - a.completed,
        bytes: (b.drv.bytes_in + b.drv.bytes_out) - (a.drv.bytes_in + a.drv.bytes_out),
        wall: b.wall - a.wall,
        poller_cpu: b.poller_cpu.saturating_sub(a.poller_cpu),
        process_cpu: b.process_cpu.saturating_sub(a.process_cpu),
        allocs_process: b.allocs - a.allocs,
        driver_copied: b.drv.bytes_copied - a.drv.bytes_copied,
        lun_bytes: b.lun - a.lun,
        pool_bytes: b.pool - a.pool,
        ctios: b.drv.ctios - a.drv.ctios,
        doorbells: b.drv.doorbells - a.drv.doorbells,
        interrupts: b.drv.interrupts - a.drv.interrupts,
        mmio_reads: b.mmio.0 - a.mmio.0,
        mmio_writes: b.mmio.1 - a.mmio.1,
        ..Window::default()
    }
}

/// One poller turn of driver + core: drain the rings into the core, run the core, ring
/// the doorbell. Never inlined: profilers name it.
#[inline(never)]
pub fn driver_core_turn<B: Backend>(
    isp: &mut Driver,
    target: &mut Target<'static>,
    backend: &mut B,
    now: Instant,
) -> Progress {
    isp.poll_stack(now, target, backend)
}

/// One turn of the simulator: everything due at its current instant. Never inlined.
#[inline(never)]
pub fn sim_turn(sim: &mut Sim) {
    sim.run_until(sim.now());
}

/// Called between turns of the stepped loop, outside the measured brackets (progress
/// bar, trace drain): `commands` completed so far in the window.
pub type Tick<'a> = dyn FnMut(&Sim, u64) + 'a;

/// Runs the workload `w` on the stepped stack until `stop`, measuring. Returns an error
/// if the stack stops making progress.
pub fn stepped<B: Backend>(
    st: &mut Stack<B>,
    w: WorkloadId,
    stop: Stop,
    tick: &mut Tick<'_>,
) -> Result<Window, String> {
    let a = snap(&st.isp, &st.target, &st.counted);
    let acc = stepped_window(st, w, stop, a.completed, tick)?;
    let b = snap(&st.isp, &st.target, &st.counted);
    let mut win = window(&a, &b);
    win.in_turns = acc.in_turns;
    win.busy = acc.busy;
    win.turns = acc.turns;
    win.busy_turns = acc.busy_turns;
    win.allocs_driver_core = Some(acc.allocs);
    Ok(win)
}

#[derive(Default)]
struct Acc {
    in_turns: Duration,
    busy: Duration,
    turns: u64,
    busy_turns: u64,
    allocs: u64,
}

/// The measured stepped window: simulator turns and driver+core turns, interleaved on
/// the virtual clock until the workload is done. Never inlined (callgrind toggles
/// collection on it: `scripts/callgrind-read512.sh`).
#[inline(never)]
fn stepped_window<B: Backend>(
    st: &mut Stack<B>,
    w: WorkloadId,
    stop: Stop,
    completed0: u64,
    tick: &mut Tick<'_>,
) -> Result<Acc, String> {
    let start = StdInstant::now();
    let mut acc = Acc::default();
    let mut stopped = false;
    loop {
        sim_turn(&mut st.sim);
        let now = st.now();
        let a0 = crate::ALLOC.allocations();
        let t0 = StdInstant::now();
        let p = driver_core_turn(&mut st.isp, &mut st.target, &mut st.backend, now);
        let t1 = StdInstant::now();
        acc.allocs += crate::ALLOC.allocations() - a0;
        let d = t1 - t0;
        acc.in_turns += d;
        acc.turns += 1;
        if p == Progress::Busy {
            acc.busy += d;
            acc.busy_turns += 1;
        }
        if acc.turns.is_multiple_of(256) {
            tick(&st.sim, st.target.stats().completed - completed0);
            if let Stop::Time(limit) = stop {
                let el = start.elapsed();
                if !stopped && el >= limit {
                    st.sim.stop_workload(w);
                    stopped = true;
                }
                if el >= limit + Duration::from_secs(60) {
                    return Err("the workload did not finish within 60 s of its end".into());
                }
            }
        }
        if p == Progress::Busy {
            continue;
        }
        // Everything is idle at this instant.
        if st.sim.workload_done(w) {
            break;
        }
        let mut next = st.sim.next_event_time();
        if let Some(t) = st.isp.poll_at_stack(now, &st.target) {
            let t = SimTime::from_nanos(t.as_nanos());
            next = Some(next.map_or(t, |n| n.min(t)));
        }
        let next = match next {
            Some(t) if t > st.sim.now() => t,
            Some(_) => st.sim.now().saturating_add(Duration::from_micros(1)),
            None => return Err("the stack is idle with the workload unfinished".into()),
        };
        st.sim.run_until(next);
    }
    Ok(acc)
}

/// How the threaded poller waits when idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    /// Poll again at once (a dedicated poller core, as SPDK runs).
    Spin,
    /// Sleep on the interrupt line until the simulated HBA raises it.
    Irq,
}

/// The driver side of a threaded run.
pub struct Poller<'a, B> {
    /// The driver.
    pub isp: &'a mut Driver,
    /// The core.
    pub target: &'a mut Target<'static>,
    /// The backend.
    pub backend: &'a mut B,
    /// The counted memories.
    pub counted: &'a Counters,
    /// The simulator's clock when it was spawned, and the host instant then.
    pub clock: (SimTime, StdInstant),
}

impl<B: Backend> Poller<'_, B> {
    fn now(&self, t: StdInstant) -> Instant {
        Instant::from_nanos(self.clock.0.as_nanos() + (t - self.clock.1).as_nanos() as u64)
    }

    fn turn(&mut self) -> Progress {
        let now = self.now(StdInstant::now());
        driver_core_turn(self.isp, self.target, self.backend, now)
    }

    /// Polls until `cond` holds (checked every millisecond) or `limit` passes.
    pub fn poll_until(&mut self, limit: Duration, mut cond: impl FnMut(&mut Self) -> bool) -> bool {
        let end = StdInstant::now() + limit;
        let mut next_check = StdInstant::now();
        loop {
            if self.turn() == Progress::Idle {
                self.isp.wait_for_work(Some(Duration::from_micros(200)));
            }
            let t = StdInstant::now();
            if t >= next_check {
                if cond(self) {
                    return true;
                }
                if t >= end {
                    return false;
                }
                next_check = t + Duration::from_millis(1);
            }
        }
    }

    /// The measured threaded window: poll until `stop`. `progress` gets the commands
    /// completed so far; `drain` runs every 10 ms (trace), inside the window.
    pub fn measure(
        &mut self,
        stop: Stop,
        idle: Idle,
        progress: &AtomicU64,
        drain: &mut dyn FnMut(),
    ) -> Result<Window, String> {
        let a = snap(self.isp, self.target, self.counted);
        let mut acc = Acc::default();
        let mut t0 = StdInstant::now();
        let mut n = 0u64;
        let mut next_drain = t0 + Duration::from_millis(10);
        loop {
            let a0 = crate::ALLOC.thread_allocations();
            let p = driver_core_turn(self.isp, self.target, self.backend, self.now(t0));
            acc.allocs += crate::ALLOC.thread_allocations() - a0;
            let t1 = StdInstant::now();
            let d = t1 - t0;
            acc.in_turns += d;
            acc.turns += 1;
            if p == Progress::Busy {
                acc.busy += d;
                acc.busy_turns += 1;
            } else if idle == Idle::Irq {
                self.isp.wait_for_work(Some(Duration::from_millis(1)));
            }
            n += 1;
            if n.is_multiple_of(64) {
                let done = self.target.stats().completed - a.completed;
                progress.store(done, Ordering::Relaxed);
                let el = t1 - a.wall;
                let end = match stop {
                    Stop::Commands(c) => done >= c,
                    Stop::Time(limit) => {
                        if el >= limit + Duration::from_secs(60) {
                            return Err(
                                "commands still in flight 60 s after the end of the run".into()
                            );
                        }
                        el >= limit && self.isp.commands_in_flight() == 0
                    }
                };
                if end {
                    break;
                }
                if t1 >= next_drain {
                    drain();
                    next_drain = StdInstant::now() + Duration::from_millis(10);
                }
            }
            t0 = StdInstant::now();
        }
        let b = snap(self.isp, self.target, self.counted);
        let mut win = window(&a, &b);
        win.in_turns = acc.in_turns;
        win.busy = acc.busy;
        win.turns = acc.turns;
        win.busy_turns = acc.busy_turns;
        // This thread runs only driver+core turns inside the counted section, so
        // the per-thread counter isolates them from the simulator's thread.
        win.allocs_driver_core = Some(acc.allocs);
        Ok(win)
    }
}

/// Draws the progress bar from its own thread, reading `done` (so the measured thread
/// only stores a counter).
pub struct ProgressThread {
    stop: Arc<AtomicU64>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl ProgressThread {
    /// Starts drawing `bar` from `done` every 100 ms.
    pub fn start(bar: indicatif::ProgressBar, done: Arc<AtomicU64>, per_sec: bool) -> Self {
        let stop = Arc::new(AtomicU64::new(0));
        let s = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("rscst-progress".into())
            .spawn(move || {
                let t0 = StdInstant::now();
                while s.load(Ordering::Relaxed) == 0 {
                    std::thread::sleep(Duration::from_millis(100));
                    let n = done.load(Ordering::Relaxed);
                    if per_sec {
                        bar.set_position(t0.elapsed().as_millis() as u64);
                    } else {
                        bar.set_position(n);
                    }
                    let secs = t0.elapsed().as_secs_f64().max(1e-9);
                    bar.set_message(format!("{n} cmds, {:.0} IOPS", n as f64 / secs));
                }
                bar.finish_and_clear();
            })
            .ok();
        ProgressThread { stop, handle }
    }

    /// Stops and clears the bar.
    pub fn finish(mut self) {
        self.stop.store(1, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
