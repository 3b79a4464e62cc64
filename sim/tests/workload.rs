//! The workload generator against the tiny test target: verified mixed I/O from several
//! initiators, statistics, and detection of lost / misplaced writes.

mod common;

use std::time::Duration;

use common::setup;
use common::target::{MiniTarget, run};
use rscst_sim::{InitiatorConfig, Pattern, Sim, SimConfig, VerifyError, WorkloadSpec};

fn target_with_initiators(
    cfg: SimConfig,
    n: usize,
    blocks: u64,
) -> (Sim, MiniTarget, Vec<rscst_sim::InitiatorId>) {
    let (mut sim, mut d) = setup(cfg);
    d.bring_up(&mut sim);
    let mut t = MiniTarget::new(d, blocks);
    let inis: Vec<_> = (0..n)
        .map(|i| sim.add_initiator(InitiatorConfig::new(0x2100_0000_c9bb_0000 + i as u64)))
        .collect();
    assert!(run(&mut sim, &mut t, Duration::from_secs(1), |s, _| inis
        .iter()
        .all(|i| s.initiator_port_id(*i).is_some())));
    (sim, t, inis)
}

fn quiet() -> SimConfig {
    let mut cfg = SimConfig::default();
    cfg.trace.registers = false;
    cfg.trace.capacity = 10_000;
    cfg
}

#[test]
fn verified_mixed_workload_from_four_initiators_is_clean() {
    let (mut sim, mut t, inis) = target_with_initiators(quiet(), 4, 1024);
    let spec = WorkloadSpec {
        lba_count: 512,
        io_blocks: 8,
        queue_depth: 4,
        total_ios: Some(2000),
        read_percent: 50,
        ..WorkloadSpec::default()
    };
    let w = sim.start_workload(spec, &inis).unwrap();
    assert!(
        run(&mut sim, &mut t, Duration::from_secs(10), |s, _| s
            .workload_done(w)),
        "workload did not finish"
    );
    let r = sim.workload_report(w).unwrap();
    assert!(r.clean(), "{r}");
    assert_eq!(r.ok, 2000);
    assert!(r.reads > 800 && r.writes > 800, "{r}");
    assert!(r.blocks_verified > 5000, "{r}");
    assert!(r.latency.quantile(0.5) > Duration::ZERO);
    assert!(r.iops() > 0.0);
    assert_eq!(sim.open_exchanges(), 0);
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    // Every initiator did work.
    for i in &inis {
        assert!(sim.initiator_stats(*i).completed > 100);
    }
}

#[test]
fn sequential_sixteen_byte_cdbs() {
    let (mut sim, mut t, inis) = target_with_initiators(quiet(), 1, 256);
    let spec = WorkloadSpec {
        lba_count: 256,
        io_blocks: 16,
        pattern: Pattern::Sequential,
        cdb16: true,
        queue_depth: 2,
        total_ios: Some(200),
        read_percent: 30,
        ..WorkloadSpec::default()
    };
    let w = sim.start_workload(spec, &inis).unwrap();
    assert!(run(&mut sim, &mut t, Duration::from_secs(10), |s, _| s
        .workload_done(w)));
    let r = sim.workload_report(w).unwrap();
    assert!(r.clean(), "{r}");
    assert_eq!(r.ok, 200);
}

#[test]
fn lost_and_misplaced_writes_are_detected() {
    let (mut sim, mut t, inis) = target_with_initiators(quiet(), 1, 256);
    // The target writes every data-out 8 blocks further on than asked.
    t.misdirect_writes = 8;
    let spec = WorkloadSpec {
        lba_count: 128,
        io_blocks: 8,
        pattern: Pattern::Sequential,
        queue_depth: 1,
        total_ios: Some(64),
        read_percent: 50,
        ..WorkloadSpec::default()
    };
    let w = sim.start_workload(spec, &inis).unwrap();
    assert!(run(&mut sim, &mut t, Duration::from_secs(10), |s, _| s
        .workload_done(w)));
    let r = sim.workload_report(w).unwrap();
    assert!(r.verify_errors > 0, "{r}");
    assert!(
        r.first_errors
            .iter()
            .any(|e| matches!(e, VerifyError::Misplaced { .. })),
        "{r}"
    );

    // Writes that land outside the region read back as old data: lost writes.
    let (mut sim, mut t, inis) = target_with_initiators(quiet(), 1, 512);
    t.misdirect_writes = 256;
    let spec = WorkloadSpec {
        lba_count: 128,
        io_blocks: 8,
        pattern: Pattern::Sequential,
        queue_depth: 1,
        total_ios: Some(64),
        read_percent: 50,
        ..WorkloadSpec::default()
    };
    let w = sim.start_workload(spec, &inis).unwrap();
    assert!(run(&mut sim, &mut t, Duration::from_secs(10), |s, _| s
        .workload_done(w)));
    let r = sim.workload_report(w).unwrap();
    assert!(r.verify_errors > 0, "{r}");
    assert!(
        r.first_errors
            .iter()
            .all(|e| matches!(e, VerifyError::Lost { found: 0, .. })),
        "{r}"
    );
}

/// Frames between N_Ports that nothing records take a shortcut into the event queue (no
/// outbox): the same verified workload gives the same results with and without a trace,
/// on paced links (stepped defaults) and on zero-time ones (threaded settings).
#[test]
fn untraced_frames_give_the_same_run() {
    let run_one = |mut cfg: SimConfig, traced: bool| {
        if !traced {
            cfg.trace = rscst_sim::TraceConfig::off();
        }
        let (mut sim, mut t, inis) = target_with_initiators(cfg, 3, 1024);
        let spec = WorkloadSpec {
            lba_count: 512,
            io_blocks: 4,
            queue_depth: 6,
            total_ios: Some(1500),
            read_percent: 60,
            seed: 77,
            ..WorkloadSpec::default()
        };
        let w = sim.start_workload(spec, &inis).unwrap();
        assert!(run(&mut sim, &mut t, Duration::from_secs(10), |s, _| s
            .workload_done(w)));
        let r = sim.workload_report(w).unwrap();
        assert!(r.clean(), "{r}");
        assert!(sim.violations().is_empty(), "{:?}", sim.violations());
        assert_eq!(sim.open_exchanges(), 0);
        let fw = sim.firmware_stats();
        (
            (r.ok, r.reads, r.writes, r.blocks_verified),
            (fw.atios, fw.ctios, fw.request_iocbs, fw.response_entries),
            traced || sim.trace_counts().0 == 0,
        )
    };
    for cfg in [quiet(), {
        let mut c = SimConfig::threaded();
        c.trace = quiet().trace;
        c
    }] {
        let a = run_one(cfg.clone(), true);
        let b = run_one(cfg, false);
        assert_eq!(a.0, b.0);
        assert_eq!(a.0.0, 1500);
        assert_eq!(a.1, b.1);
        assert!(b.2, "nothing recorded when the trace is off");
    }
}
