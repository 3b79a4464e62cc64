//! Threaded mode: the simulation (firmware model, fabric, initiators, workloads) on its own
//! thread, on the host's monotonic clock, while the driver runs on others.
//!
//! The register file is atomics in both modes; in threaded mode a doorbell, a mailbox
//! command, an out-pointer update or `CLEAR_RISC_INT` wakes the simulation thread, which
//! then runs everything that is due. The interrupt line wakes a driver sleeping in
//! [`rscst_hba::Irq::wait`]. Use [`SimConfig::threaded`](crate::SimConfig::threaded) for
//! benchmarks: no modelled latencies, no trace.
//!
//! No lock stands between the threads on the data path: a register write sets an atomic
//! and unparks the simulation thread only if it sleeps; jobs ([`SimThread::post`]) go
//! through a lock-free channel. The simulation thread reads the host clock every few
//! events (`BATCH`), so time moves on while it is saturated and initiator latencies are
//! real.
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

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::InitiatorId;
use crate::device::Shared;
use crate::initiator::{Control, InitiatorEvent, InitiatorHandler};
use crate::sim::Sim;
use crate::time::SimTime;

type Job = Box<dyn FnOnce(&mut Sim) + Send>;

/// Events the simulation thread runs before it looks at the host clock again.
const BATCH: usize = 16;

struct Ctl {
    stop: AtomicBool,
}

/// A simulation running on its own thread.
pub struct SimThread {
    ctl: Arc<Ctl>,
    jobs: mpsc::Sender<Job>,
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
        });
        let (jobs, rx) = mpsc::channel();
        let shared = Arc::clone(&self.shared);
        shared.threaded.store(true, Ordering::Release);
        let c = Arc::clone(&ctl);
        let handle = std::thread::Builder::new()
            .name("rscst-sim".into())
            .spawn(move || run(self, c, rx))
            .expect("spawn the simulator thread");
        SimThread {
            ctl,
            jobs,
            shared,
            handle: Some(handle),
        }
    }
}

fn run(mut sim: Sim, ctl: Arc<Ctl>, jobs: mpsc::Receiver<Job>) -> Sim {
    sim.shared.wake.register();
    let start = Instant::now();
    let base = sim.now();
    let clock = || base + start.elapsed();
    loop {
        if ctl.stop.load(Ordering::Acquire) {
            break;
        }
        let mut had_jobs = false;
        while let Ok(j) = jobs.try_recv() {
            had_jobs = true;
            j(&mut sim);
        }
        // A batch of what is due, then the clock again: time moves while saturated.
        if sim.run_due(clock(), BATCH) || had_jobs {
            continue;
        }
        let sleep = match sim.next_event_time() {
            Some(t) => {
                let now = clock();
                if t <= now {
                    continue;
                }
                (t - now).min(Duration::from_millis(10))
            }
            None => Duration::from_millis(10),
        };
        sim.shared.wake.sleep(sleep);
    }
    // Jobs posted before the stop still run (a bounded number: a job may post more).
    for _ in 0..4096 {
        let Ok(j) = jobs.try_recv() else { break };
        j(&mut sim);
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
        // Lock-free (an mpsc list channel); fails only once the thread has stopped.
        let _ = self.jobs.send(Box::new(f));
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

// The gateway shares one `SimThread` between threads.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<SimThread>();
};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{InitiatorConfig, SimConfig};

    /// The threaded loop's step: the clock moves to the host time before each batch, even
    /// while events of an earlier instant still wait (a saturated thread), and they still
    /// run in order.
    #[test]
    fn run_due_moves_the_clock_between_batches() {
        let (mut sim, _p) = Sim::new(SimConfig::threaded());
        let inis: Vec<_> = (0..4)
            .map(|i| sim.add_initiator(InitiatorConfig::new(0x2100_0000_c9dd_0000 + i)))
            .collect();
        let t1 = SimTime::from_micros(5);
        assert!(sim.run_due(t1, 1), "more due");
        assert_eq!(sim.now(), t1);
        assert_eq!(sim.shared.now(), t1);
        let t2 = SimTime::from_micros(9);
        assert!(sim.run_due(t2, 2));
        assert_eq!(sim.now(), t2);
        let t3 = SimTime::from_micros(12);
        assert!(!sim.run_due(t3, 1000), "all done");
        assert_eq!(sim.now(), t3);
        for i in inis {
            assert!(sim.initiator_port_id(i).is_some(), "{i:?} on the fabric");
        }
    }
}
