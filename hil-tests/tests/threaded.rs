//! The stack with the simulator on its own thread in real time: the poller
//! spins while there is work and sleeps on the interrupt line
//! (`Isp::wait_for_work` over `Irq::wait`) when there is none.

use std::time::{Duration, Instant as HostInstant};

use rscst_core::Instant;
use rscst_hba::Trigger;
use rscst_hil::{INITIATOR_WWPN, SimStack, StackConfig, scenario};
use rscst_qla::Progress;
use rscst_sim::{InitiatorConfig, SimConfig, SimThread, WorkloadSpec};

fn now(th: &SimThread) -> Instant {
    Instant::from_nanos(th.now().as_nanos())
}

/// An MSI line (the simulator's default): a message per cause.
#[test]
fn poller_sleeps_when_idle_and_wakes_on_interrupts() {
    sleeps_and_wakes(Trigger::Edge);
}

/// An INTx line: a level, acknowledged after the cause is cleared.
#[test]
fn poller_sleeps_and_wakes_on_a_level_line() {
    sleeps_and_wakes(Trigger::Level);
}

fn sleeps_and_wakes(trigger: Trigger) {
    scenario("threaded", false, || {
        let mut sim = SimConfig::threaded();
        sim.irq_trigger = trigger;
        let s = SimStack::new(StackConfig {
            sim,
            ..StackConfig::default()
        });
        let (sim, mut isp, mut target, mut backend) = s.into_parts();
        let th = sim.spawn();
        let mut sleeps = 0u64;
        let mut woken = 0u64;
        let mut timed_out = 0u64;
        let mut run =
            |th: &SimThread, limit: Duration, cond: &mut dyn FnMut(&SimThread) -> bool| {
                let end = HostInstant::now() + limit;
                let mut turns = 0u32;
                while HostInstant::now() < end {
                    let t = now(th);
                    if isp.poll_stack(t, &mut target, &mut backend) == Progress::Busy {
                        continue;
                    }
                    turns += 1;
                    if turns.is_multiple_of(64) && cond(th) {
                        return true;
                    }
                    // Idle: sleep until an interrupt or the next deadline (at most 2 ms).
                    let wait = isp
                        .poll_at_stack(t, &target)
                        .map(|d| d.saturating_duration_since(t))
                        .unwrap_or(Duration::from_millis(2))
                        .min(Duration::from_millis(2));
                    sleeps += 1;
                    if isp.wait_for_work(Some(wait)) {
                        woken += 1;
                    } else {
                        timed_out += 1;
                    }
                }
                cond(th)
            };
        let up = run(&th, Duration::from_secs(10), &mut |th| {
            th.with(|sim| sim.hba_port_id().is_some())
        });
        assert!(up, "port up");
        let inis = th.with(|sim| {
            (0..2)
                .map(|i| sim.add_initiator(InitiatorConfig::new(INITIATOR_WWPN.to_u64() + i)))
                .collect::<Vec<_>>()
        });
        let i2 = inis.clone();
        assert!(run(&th, Duration::from_secs(10), &mut |th| {
            let i2 = i2.clone();
            th.with(move |sim| i2.iter().all(|&i| sim.initiator_port_id(i).is_some()))
        }));
        let i2 = inis.clone();
        th.with(move |sim| {
            let t = sim.hba_port_id().unwrap();
            for &i in &i2 {
                sim.initiator_login(i, t).unwrap();
            }
        });
        let i2 = inis.clone();
        assert!(run(&th, Duration::from_secs(10), &mut |th| {
            let i2 = i2.clone();
            th.with(move |sim| {
                let t = sim.hba_port_id().unwrap();
                i2.iter().all(|&i| sim.initiator_logged_in(i, t))
            })
        }));
        let i2 = inis.clone();
        let w = th.with(move |sim| {
            let spec = WorkloadSpec {
                lba_count: 1024,
                io_blocks: 8,
                queue_depth: 8,
                total_ios: Some(5000),
                read_percent: 50,
                ..WorkloadSpec::default()
            };
            sim.start_workload(spec, &i2).unwrap()
        });
        let done = run(&th, Duration::from_secs(60), &mut |th| {
            th.with(move |sim| sim.workload_done(w))
        });
        let sim = th.stop();
        let r = sim.workload_report(w).unwrap();
        assert!(done, "workload did not finish: {r}");
        // The first command of each initiator meets its POWER ON unit attention.
        assert_eq!(r.verify_errors, 0, "{r}");
        assert_eq!(r.failed, 0, "{r}");
        assert_eq!(r.ok + r.bad_status, 5000, "{r}");
        assert!(r.bad_status <= 2, "{r}");
        assert!(sim.violations().is_empty(), "{:?}", sim.violations());
        // The poller slept when idle and the interrupt line woke it.
        assert!(
            sleeps > 0 && woken > 0,
            "sleeps {sleeps} woken {woken} timed out {timed_out}"
        );
        assert!(isp.stats().interrupts > 0);
        println!(
            "{r}\n{}\nidle sleeps {sleeps}: {woken} woken by the interrupt line, {timed_out} timed out",
            isp.stats()
        );
    });
}
