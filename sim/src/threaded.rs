//! Threaded mode: the simulation (firmware model, fabric, initiators, workloads) on its own
//! thread, on the host's monotonic clock, while the driver runs on others.
//!
//! The register file is atomics in both modes; in threaded mode a doorbell, a mailbox
//! command, an out-pointer update or `CLEAR_RISC_INT` wakes the simulation thread, which
//! then runs everything that is due. The interrupt line wakes a driver sleeping in
//! [`rscst_hba::Irq::wait`]. Use [`SimConfig::threaded`](crate::SimConfig::threaded) for
//! benchmarks: no modelled latencies, no trace.
//!
//! ```no_run
//! use rscst_sim::{Sim, SimConfig};
//! let (sim, platform) = Sim::new(SimConfig::threaded());
//! let th = sim.spawn();
//! // ... the driver runs with `platform` on this thread ...
//! let ns = th.with(|sim| sim.name_server());
//! let sim = th.stop(); // back to stepped inspection
//! # let _ = (ns, platform, sim);
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::InitiatorId;
use crate::device::Shared;
use crate::initiator::{Control, InitiatorEvent, InitiatorHandler};
use crate::sim::Sim;
use crate::time::SimTime;

type Job = Box<dyn FnOnce(&mut Sim) + Send>;

struct Ctl {
    stop: AtomicBool,
    jobs: Mutex<Vec<Job>>,
}

/// A simulation running on its own thread.
pub struct SimThread {
    ctl: Arc<Ctl>,
    shared: Arc<Shared>,
    handle: Option<JoinHandle<Sim>>,
}

impl core::fmt::Debug for SimThread {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SimThread")
    }
}

impl Sim {
    /// Moves the simulation to its own thread. The clock continues from [`Sim::now`] at the
    /// host's pace.
    pub fn spawn(self) -> SimThread {
        let ctl = Arc::new(Ctl {
            stop: AtomicBool::new(false),
            jobs: Mutex::new(Vec::new()),
        });
        let shared = Arc::clone(&self.shared);
        shared.threaded.store(true, Ordering::Release);
        let c = Arc::clone(&ctl);
        let handle = std::thread::Builder::new()
            .name("rscst-sim".into())
            .spawn(move || run(self, c))
            .expect("spawn the simulator thread");
        SimThread {
            ctl,
            shared,
            handle: Some(handle),
        }
    }
}

fn run(mut sim: Sim, ctl: Arc<Ctl>) -> Sim {
    let start = Instant::now();
    let base = sim.now();
    loop {
        if ctl.stop.load(Ordering::Acquire) {
            break;
        }
        let jobs: Vec<Job> = ctl
            .jobs
            .lock()
            .map(|mut j| std::mem::take(&mut *j))
            .unwrap_or_default();
        let had_jobs = !jobs.is_empty();
        for j in jobs {
            j(&mut sim);
        }
        let now = base + start.elapsed();
        sim.run_until(now);
        if had_jobs {
            continue;
        }
        let sleep = match sim.next_event_time() {
            Some(t) if t <= base + start.elapsed() => continue,
            Some(t) => (t - (base + start.elapsed())).min(Duration::from_millis(10)),
            None => Duration::from_millis(10),
        };
        sim.shared.wake.sleep(sleep);
    }
    sim.shared.threaded.store(false, Ordering::Release);
    sim
}

impl SimThread {
    /// Runs `f` on the simulation thread and returns its result (waits).
    pub fn with<R: Send + 'static>(&self, f: impl FnOnce(&mut Sim) -> R + Send + 'static) -> R {
        let (tx, rx) = mpsc::sync_channel(1);
        self.post(move |sim| {
            let _ = tx.send(f(sim));
        });
        rx.recv().expect("the simulator thread stopped")
    }

    /// Queues `f` to run on the simulation thread (does not wait).
    pub fn post(&self, f: impl FnOnce(&mut Sim) + Send + 'static) {
        if let Ok(mut j) = self.ctl.jobs.lock() {
            j.push(Box::new(f));
        }
        self.shared.wake.notify();
    }

    /// The simulation clock as of now.
    pub fn now(&self) -> SimTime {
        self.shared.now()
    }

    /// Stops the thread and returns the simulation (stepped again).
    pub fn stop(mut self) -> Sim {
        self.ctl.stop.store(true, Ordering::Release);
        self.shared.wake.notify();
        let h = self.handle.take().expect("running");
        h.join().expect("the simulator thread panicked")
    }
}

impl Drop for SimThread {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            self.ctl.stop.store(true, Ordering::Release);
            self.shared.wake.notify();
            let _ = h.join();
        }
    }
}

/// An [`InitiatorHandler`] that forwards every event (copied) to a channel — how another
/// thread (a gateway) follows initiator ports of a threaded simulation.
#[derive(Debug)]
pub struct ChannelHandler {
    tx: mpsc::Sender<(InitiatorId, InitiatorEvent<'static>)>,
}

impl ChannelHandler {
    /// A handler and the receiving end.
    pub fn new() -> (
        ChannelHandler,
        mpsc::Receiver<(InitiatorId, InitiatorEvent<'static>)>,
    ) {
        let (tx, rx) = mpsc::channel();
        (ChannelHandler { tx }, rx)
    }

    /// Another handler feeding the same channel (one per port).
    pub fn sender(&self) -> ChannelHandler {
        ChannelHandler {
            tx: self.tx.clone(),
        }
    }
}

impl InitiatorHandler for ChannelHandler {
    fn on_event(&mut self, ctl: &mut Control<'_>, ev: InitiatorEvent<'_>) {
        let _ = self.tx.send((ctl.id(), ev.into_owned()));
    }
}
