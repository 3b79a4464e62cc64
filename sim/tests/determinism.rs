//! Determinism: the same seed gives the same run — the whole trace (register accesses,
//! mailboxes, IOCBs, frames, faults) and the pcap, byte for byte. A different fault seed
//! gives a different run (so the comparison can fail).

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::setup;
use common::target::{MiniTarget, run};
use rscst_sim::pcap::PcapWriter;
use rscst_sim::{FaultConfig, FrameFaults, FrameScope, InitiatorConfig, SimConfig, WorkloadSpec};

#[derive(Clone, Default)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One full run: bring-up, two initiators, a faulty verified workload, a LIP. Returns the
/// text trace and the pcap.
fn one_run(fault_seed: u64) -> (Vec<u8>, Vec<u8>, String) {
    let mut cfg = SimConfig {
        seed: 42,
        ..SimConfig::default()
    };
    cfg.trace.capacity = 0; // stream only
    cfg.faults = FaultConfig {
        lip_every: Some(Duration::from_millis(4)),
        ctio_completion_delayed: 0.02,
        ctio_completion_delay: Duration::from_micros(100),
        ..FaultConfig::frames(
            fault_seed,
            FrameFaults {
                drop: 0.005,
                duplicate: 0.005,
                corrupt: 0.005,
                delay: 0.01,
                delay_by: Duration::from_micros(20),
                scope: FrameScope::FcpOnly,
            },
        )
    };
    cfg.firmware.data_out_timeout = Duration::from_millis(20);
    let text = SharedBuf::default();
    let pcap = SharedBuf::default();
    let (mut sim, mut d) = setup(cfg);
    sim.set_trace_sink(Some(Box::new(text.clone())));
    sim.set_pcap(Some(
        PcapWriter::new(Box::new(pcap.clone()) as Box<dyn Write + Send>).unwrap(),
    ));
    d.bring_up(&mut sim);
    let mut t = MiniTarget::new(d, 512);
    let inis: Vec<_> = (0..2)
        .map(|i| {
            let mut c = InitiatorConfig::new(0x2100_0000_c9ee_0000 + i);
            c.command_timeout = Duration::from_millis(30);
            c.auto_login = true;
            sim.add_initiator(c)
        })
        .collect();
    assert!(run(&mut sim, &mut t, Duration::from_secs(1), |s, _| inis
        .iter()
        .all(|i| s.initiator_port_id(*i).is_some())));
    let spec = WorkloadSpec {
        lba_count: 256,
        total_ios: Some(600),
        queue_depth: 4,
        seed: 9,
        ..WorkloadSpec::default()
    };
    let w = sim.start_workload(spec, &inis).unwrap();
    assert!(run(&mut sim, &mut t, Duration::from_secs(30), |s, _| s
        .workload_done(w)));
    let report = sim.workload_report(w).unwrap();
    assert_eq!(report.verify_errors, 0, "{report}");
    sim.flush_trace();
    drop(sim);
    let text = text.0.lock().unwrap().clone();
    let pcap = pcap.0.lock().unwrap().clone();
    (text, pcap, report.to_string())
}

#[test]
fn same_seed_same_trace_byte_for_byte() {
    let (t1, p1, r1) = one_run(1);
    let (t2, p2, r2) = one_run(1);
    assert!(t1.len() > 100_000, "trace of {} bytes", t1.len());
    assert!(p1.len() > 10_000, "pcap of {} bytes", p1.len());
    assert_eq!(r1, r2);
    if t1 != t2 {
        let a = String::from_utf8_lossy(&t1);
        let b = String::from_utf8_lossy(&t2);
        let (n, (x, y)) = a
            .lines()
            .zip(b.lines())
            .enumerate()
            .find(|(_, (x, y))| x != y)
            .unwrap();
        panic!("traces differ at line {}:\n  {x}\n  {y}", n + 1);
    }
    assert_eq!(p1, p2, "pcaps differ");
    // Another fault seed: another run.
    let (t3, p3, _) = one_run(2);
    assert_ne!(t1, t3);
    assert_ne!(p1, p3);
}
