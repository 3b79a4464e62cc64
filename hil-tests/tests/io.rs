//! Full-stack I/O: simulated initiators log in to the driver + core + RAM LUN
//! and run verified workloads.

use std::time::Duration;

use rscst_hil::{SimStack, StackConfig, scenario};
use rscst_sim::{InitiatorId, WorkloadSpec};

fn quiet() -> StackConfig {
    let mut c = StackConfig::default();
    c.sim.trace.registers = false;
    c.sim.trace.capacity = 10_000;
    c
}

fn with_initiators(cfg: StackConfig, n: usize) -> (SimStack, Vec<InitiatorId>) {
    let mut s = SimStack::new(cfg);
    s.bring_up();
    let inis = s.add_initiators(n);
    (s, inis)
}

#[test]
fn several_initiators_log_in() {
    scenario("login", false, || {
        let (s, _inis) = with_initiators(quiet(), 4);
        assert_eq!(s.isp.sessions().count(), 4);
        assert_eq!(s.target.session_count(), 4);
        assert_eq!(s.isp.stats().logins, 4);
        assert!(s.sim.violations().is_empty(), "{:?}", s.sim.violations());
    });
}

#[test]
fn verified_workload_four_initiators() {
    scenario("workload", false, || {
        let (mut s, inis) = with_initiators(quiet(), 4);
        let spec = WorkloadSpec {
            lba_count: 1024,
            io_blocks: 8,
            queue_depth: 8,
            total_ios: Some(4000),
            read_percent: 50,
            ..WorkloadSpec::default()
        };
        let w = s.sim.start_workload(spec, &inis).unwrap();
        let done = s.run_until(Duration::from_secs(60), |s| s.sim.workload_done(w));
        let r = s.sim.workload_report(w).unwrap();
        assert!(done, "workload did not finish: {r}");
        assert!(r.clean(), "{r}");
        assert_eq!(r.ok, 4000, "{r}");
        s.run_for(Duration::from_millis(10));
        assert!(s.leaks().is_clean(), "{:?}", s.leaks());
        assert_eq!(s.isp.stats().bytes_copied, 0);
        assert!(s.sim.violations().is_empty(), "{:?}", s.sim.violations());
        assert!(s.sim.iommu_faults().is_empty());
        println!("{r}\n{}", s.isp.stats());
    });
}

#[test]
#[ignore]
fn debug_first_commands() {
    use rscst_fw::Lun;
    use rscst_sim::CommandSpec;
    let (mut s, inis) = with_initiators(quiet(), 1);
    let t = s.sim.hba_port_id().unwrap();
    let i = inis[0];
    let lun = Lun::from_index(0).unwrap();
    for _ in 0..3 {
        s.sim
            .initiator_command(
                i,
                t,
                CommandSpec::no_data(lun, &[0, 0, 0, 0, 0, 0]).unwrap(),
            )
            .unwrap();
    }
    s.sim
        .initiator_command(
            i,
            t,
            CommandSpec::read(lun, &[0x28, 0, 0, 0, 0, 0, 0, 0, 8, 0], 4096).unwrap(),
        )
        .unwrap();
    s.sim
        .initiator_command(
            i,
            t,
            CommandSpec::write(lun, &[0x2A, 0, 0, 0, 0, 8, 0, 0, 8, 0], vec![7; 4096]).unwrap(),
        )
        .unwrap();
    s.run_for(Duration::from_millis(50));
    for e in s.sim.initiator_events(i) {
        match e {
            rscst_sim::InitiatorEvent::Completed { tag, result } => println!(
                "{tag} status {:#x} resid {:?} sense {:?} data {} xfer {}",
                result.status,
                result.residual,
                result.sense,
                result.data.len(),
                result.transferred
            ),
            e => println!("{e:?}"),
        }
    }
    while let Some(e) = s.isp.pop_event() {
        println!("{e}");
    }
    println!("{}", s.isp.stats());
}
