//! Fault injection under load: frame drop / duplicate / corrupt / delay, lost and delayed
//! CTIO completions, LIP and link bounce during I/O, ABTS storms and logouts with commands
//! outstanding. Commands may fail; data must never be lost or misplaced.

mod common;

use std::time::Duration;

use common::setup;
use common::target::{MiniTarget, run};
use rscst_sim::{
    FaultConfig, FrameFaults, FrameScope, InitiatorConfig, ScheduledFault, Sim, SimConfig,
    WorkloadReport, WorkloadSpec,
};

fn cfg_with(faults: FaultConfig) -> SimConfig {
    let mut cfg = SimConfig::default();
    cfg.trace.registers = false;
    cfg.trace.capacity = 200_000;
    cfg.faults = faults;
    cfg.firmware.data_out_timeout = Duration::from_millis(20);
    cfg
}

fn run_workload(
    cfg: SimConfig,
    spec: WorkloadSpec,
    initiators: usize,
    schedule: &[(Duration, ScheduledFault)],
) -> (Sim, WorkloadReport) {
    let (mut sim, mut d) = setup(cfg);
    d.bring_up(&mut sim);
    let mut t = MiniTarget::new(d, 1024);
    let inis: Vec<_> = (0..initiators)
        .map(|i| {
            let mut c = InitiatorConfig::new(0x2100_0000_c9cc_0000 + i as u64);
            c.command_timeout = Duration::from_millis(50);
            c.els_timeout = Duration::from_millis(20);
            c.auto_login = true;
            sim.add_initiator(c)
        })
        .collect();
    assert!(run(&mut sim, &mut t, Duration::from_secs(2), |s, _| inis
        .iter()
        .all(|i| s.initiator_port_id(*i).is_some())));
    for (at, f) in schedule {
        let when = sim.now() + *at;
        sim.schedule_fault(when, *f);
    }
    let w = sim.start_workload(spec, &inis).unwrap();
    assert!(
        run(&mut sim, &mut t, Duration::from_secs(60), |s, _| s
            .workload_done(w)),
        "workload stuck: {}",
        sim.workload_report(w).unwrap()
    );
    let r = sim.workload_report(w).unwrap();
    (sim, r)
}

fn spec(total: u64) -> WorkloadSpec {
    WorkloadSpec {
        lba_count: 512,
        io_blocks: 8,
        queue_depth: 4,
        total_ios: Some(total),
        read_percent: 50,
        ..WorkloadSpec::default()
    }
}

#[test]
fn frame_faults_lose_commands_never_data() {
    let faults = FaultConfig::frames(
        7,
        FrameFaults {
            drop: 0.01,
            duplicate: 0.01,
            corrupt: 0.01,
            delay: 0.01,
            delay_by: Duration::from_micros(30),
            scope: FrameScope::FcpOnly,
        },
    );
    let (sim, r) = run_workload(cfg_with(faults), spec(3000), 2, &[]);
    assert_eq!(r.verify_errors, 0, "{r}");
    assert!(r.failed > 0, "faults had no effect: {r}");
    assert!(r.ok > 2500, "{r}");
    let text = sim.trace_text();
    for what in [
        "frame dropped",
        "frame duplicated",
        "frame corrupted",
        "frame delayed",
    ] {
        assert!(text.contains(what), "no '{what}' in the trace");
    }
    assert!(
        text.contains("CRC error"),
        "a corrupted frame was discarded by its receiver"
    );
}

#[test]
fn frame_faults_on_every_frame_including_logins() {
    let faults = FaultConfig::frames(
        11,
        FrameFaults {
            drop: 0.02,
            duplicate: 0.02,
            corrupt: 0.0,
            delay: 0.0,
            delay_by: Duration::ZERO,
            scope: FrameScope::All,
        },
    );
    let (_sim, r) = run_workload(cfg_with(faults), spec(1000), 2, &[]);
    assert_eq!(r.verify_errors, 0, "{r}");
    assert!(r.ok > 800, "{r}");
}

#[test]
fn lost_and_delayed_ctio_completions() {
    let faults = FaultConfig {
        seed: 3,
        ctio_completion_lost: 0.02,
        ctio_completion_delayed: 0.05,
        ctio_completion_delay: Duration::from_micros(200),
        ..FaultConfig::default()
    };
    let (sim, r) = run_workload(cfg_with(faults), spec(2000), 2, &[]);
    assert_eq!(r.verify_errors, 0, "{r}");
    assert!(r.ok > 1800, "{r}");
    let text = sim.trace_text();
    assert!(text.contains("CTIO completion lost"));
    assert!(text.contains("CTIO completion delayed"));
}

#[test]
fn lip_and_link_bounce_during_io() {
    let schedule = [
        (Duration::from_micros(300), ScheduledFault::Lip),
        (
            Duration::from_millis(2),
            ScheduledFault::LinkBounce(Duration::from_millis(5)),
        ),
        (Duration::from_millis(20), ScheduledFault::Lip),
    ];
    let (sim, r) = run_workload(cfg_with(FaultConfig::default()), spec(3000), 2, &schedule);
    assert_eq!(r.verify_errors, 0, "{r}");
    assert!(r.failed > 0, "{r}");
    assert!(r.ok > 2000, "{r}");
    let text = sim.trace_text();
    assert!(text.contains("FAULT LIP") && text.contains("FAULT link bounce"));
}

#[test]
fn random_link_faults() {
    let faults = FaultConfig {
        seed: 5,
        link_bounce_every: Some(Duration::from_millis(15)),
        link_down_for: Duration::from_millis(2),
        lip_every: Some(Duration::from_millis(7)),
        ..FaultConfig::default()
    };
    let (_sim, r) = run_workload(cfg_with(faults), spec(2000), 1, &[]);
    assert_eq!(r.verify_errors, 0, "{r}");
    assert!(r.ok > 1000, "{r}");
}

#[test]
fn abts_storms_and_logouts_with_commands_outstanding() {
    let mut s = spec(3000);
    s.abts_probability = 0.1;
    s.logout_every = Some(Duration::from_millis(3));
    let (sim, r) = run_workload(cfg_with(FaultConfig::default()), s, 3, &[]);
    assert_eq!(r.verify_errors, 0, "{r}");
    assert!(r.aborts > 50, "{r}");
    assert!(r.logouts > 0, "{r}");
    assert!(r.ok > 1000, "{r}");
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}
