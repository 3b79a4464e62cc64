//! No allocation per command in steady state, counted by a counting global allocator around
//! the simulator's own calls (the tiny test target in between is not counted):
//!
//! * the gateway's way of using an initiator port — a handler that streams read data
//!   (`DataIn` borrowing each frame), supplies write data per XFER_RDY and gets the status
//!   lent;
//! * a verified workload with reads and writes.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::setup;
use common::target::{MiniTarget, run};
use rscst_fw::{Lun, PortId};
use rscst_hba::alloc_count::CountingAllocator;
use rscst_sim::{
    CommandSpec, Control, InitiatorConfig, InitiatorEvent, InitiatorHandler, Sim, SimConfig,
    TraceConfig, WorkloadSpec,
};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator::new();

const BLOCK: u32 = 512;

/// Runs the simulator until `cond`, counting the allocations made inside its calls.
fn counted_run(
    sim: &mut Sim,
    t: &mut MiniTarget,
    max: Duration,
    mut cond: impl FnMut(&mut Sim) -> bool,
) -> u64 {
    let deadline = sim.now() + max;
    let mut allocs = 0;
    loop {
        t.poll(sim);
        if cond(sim) {
            return allocs;
        }
        assert!(sim.now() < deadline, "no progress");
        let a0 = ALLOC.thread_allocations();
        if !sim.step() {
            let next = sim.next_event_time().unwrap_or(deadline).min(deadline);
            sim.run_until(next);
        }
        allocs += ALLOC.thread_allocations() - a0;
    }
}

/// Counters a handler shares with the test.
#[derive(Default)]
struct Counters {
    completed: AtomicU64,
    good: AtomicU64,
    bytes_in: AtomicU64,
    stop: AtomicBool,
}

/// A gateway-like handler: keeps its commands in flight (4 KiB reads and writes alternately), read data streamed into a buffer it owns, write data supplied per
/// XFER_RDY from another, each completion answered with the next command.
struct Gateway {
    target: PortId,
    issued: u64,
    read_buf: Vec<u8>,
    write_buf: Vec<u8>,
    n: Arc<Counters>,
}

fn spec(k: u64) -> CommandSpec {
    let lba = (k % 64) as u32 * 8;
    let mut cdb = [0x28, 0, 0, 0, 0, 0, 0, 0, 8, 0];
    cdb[2..6].copy_from_slice(&lba.to_be_bytes());
    let lun = Lun::from_index(0).unwrap();
    if k.is_multiple_of(2) {
        CommandSpec::read(lun, &cdb, 8 * BLOCK).unwrap()
    } else {
        cdb[0] = 0x2A;
        CommandSpec::write_on_demand(lun, &cdb, 8 * BLOCK).unwrap()
    }
}

impl Gateway {
    fn next(&mut self, ctl: &mut Control<'_>) {
        self.n.completed.fetch_add(1, Ordering::Relaxed);
        if !self.n.stop.load(Ordering::Relaxed)
            && ctl.command(self.target, spec(self.issued)).is_ok()
        {
            self.issued += 1;
        }
    }
}

impl InitiatorHandler for Gateway {
    fn on_event(&mut self, ctl: &mut Control<'_>, ev: InitiatorEvent<'_>) {
        match ev {
            InitiatorEvent::XferRdy { tag, offset, len } => {
                let data = &self.write_buf[offset as usize..(offset + len) as usize];
                let _ = ctl.supply_data(tag, offset, data, true);
            }
            InitiatorEvent::DataIn { offset, data, .. } => {
                let o = offset as usize;
                self.read_buf[o..o + data.len()].copy_from_slice(&data);
                self.n
                    .bytes_in
                    .fetch_add(data.len() as u64, Ordering::Relaxed);
            }
            InitiatorEvent::Completed { result, .. } => {
                if result.status == 0 {
                    self.n.good.fetch_add(1, Ordering::Relaxed);
                }
                self.next(ctl);
            }
            InitiatorEvent::Failed { .. } => self.next(ctl),
            _ => {}
        }
    }
}

fn ready(cfg: SimConfig) -> (Sim, MiniTarget) {
    let (mut sim, mut d) = setup(cfg);
    d.bring_up(&mut sim);
    (sim, MiniTarget::new(d, 1024))
}

#[test]
fn the_gateway_path_allocates_nothing_per_command() {
    for mut cfg in [SimConfig::default(), SimConfig::threaded()] {
        cfg.trace = TraceConfig::off();
        let (mut sim, mut t) = ready(cfg);
        let mut c = InitiatorConfig::new(0x2100_0000_c9cc_0001);
        c.collect_data = false;
        let ini = sim.add_initiator(c);
        assert!(run(&mut sim, &mut t, Duration::from_secs(1), |s, _| s
            .initiator_port_id(ini)
            .is_some()));
        let target = sim.hba_port_id().unwrap();
        sim.initiator_login(ini, target).unwrap();
        assert!(run(&mut sim, &mut t, Duration::from_secs(1), |s, _| s
            .initiator_logged_in(ini, target)));
        // The first commands come from the test; each completion, in the handler,
        // issues the next one.
        const DEPTH: u64 = 8;
        let n = Arc::new(Counters::default());
        sim.set_initiator_handler(
            ini,
            Box::new(Gateway {
                target,
                issued: DEPTH,
                read_buf: vec![0; 8 * BLOCK as usize],
                write_buf: (0..8 * BLOCK).map(|i| i as u8).collect(),
                n: Arc::clone(&n),
            }),
        );
        for k in 0..DEPTH {
            sim.initiator_command(ini, target, spec(k)).unwrap();
        }
        let done = || n.completed.load(Ordering::Relaxed);
        // Warm-up: the pools and queues grow to what the load needs.
        counted_run(&mut sim, &mut t, Duration::from_secs(5), |_| done() >= 500);
        let before = done();
        let allocs = counted_run(&mut sim, &mut t, Duration::from_secs(5), |_| {
            done() >= before + 2_000
        });
        assert_eq!(
            allocs,
            0,
            "{allocs} allocations in the simulator over {} commands",
            done() - before
        );
        n.stop.store(true, Ordering::Relaxed);
        assert!(run(&mut sim, &mut t, Duration::from_secs(1), |s, _| s
            .initiator_outstanding(ini)
            == 0));
        let completed = done();
        assert_eq!(
            n.good.load(Ordering::Relaxed),
            completed,
            "every command GOOD"
        );
        assert_eq!(
            n.bytes_in.load(Ordering::Relaxed),
            completed.div_ceil(2) * 8 * BLOCK as u64,
            "every read's data streamed"
        );
        assert_eq!(sim.open_exchanges(), 0);
        assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    }
}

#[test]
fn a_verified_workload_allocates_nothing_per_command() {
    let (mut sim, mut t) = ready(SimConfig {
        trace: TraceConfig::off(),
        ..SimConfig::default()
    });
    let inis: Vec<_> = (0..2)
        .map(|i| sim.add_initiator(InitiatorConfig::new(0x2100_0000_c9cc_0100 + i)))
        .collect();
    assert!(run(&mut sim, &mut t, Duration::from_secs(1), |s, _| inis
        .iter()
        .all(|i| s.initiator_port_id(*i).is_some())));
    let spec = WorkloadSpec {
        lba_count: 64,
        io_blocks: 4,
        queue_depth: 4,
        read_percent: 50,
        total_ios: Some(4_000),
        ..WorkloadSpec::default()
    };
    let w = sim.start_workload(spec, &inis).unwrap();
    let ok = |s: &Sim| s.workload_report(w).map_or(0, |r| r.ok);
    counted_run(&mut sim, &mut t, Duration::from_secs(5), |s| ok(s) >= 1_000);
    let allocs = counted_run(&mut sim, &mut t, Duration::from_secs(5), |s| ok(s) >= 3_000);
    assert_eq!(allocs, 0, "{allocs} allocations over 2,000 commands");
    assert!(run(&mut sim, &mut t, Duration::from_secs(5), |s, _| s
        .workload_done(w)));
    let r = sim.workload_report(w).unwrap();
    assert!(r.clean(), "{r}");
    assert!(r.blocks_verified > 1_000, "{r}");
}
