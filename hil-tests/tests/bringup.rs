//! Bring-up scenarios.

use std::time::Duration;

use rscst_hil::{SimStack, StackConfig, scenario};
use rscst_qla::{Event, Phase};
use rscst_sim::{ChipModel, ScheduledFault, SimConfig};

#[test]
fn bring_up_25xx_and_27xx() {
    scenario("bring_up", false, || {
        for chip in [ChipModel::default(), ChipModel::isp27xx()] {
            let mut s = SimStack::new(StackConfig {
                sim: SimConfig::with_chip(chip),
                ..StackConfig::default()
            });
            s.bring_up();
            assert_eq!(Some(s.isp.port_id()), s.sim.hba_port_id());
            assert!(s.sim.violations().is_empty(), "{:?}", s.sim.violations());
            assert!(s.leaks().is_clean());
        }
    });
}

#[test]
fn system_error_recovery() {
    scenario("system_error_recovery", true, || {
        let mut s = SimStack::new(StackConfig::default());
        s.bring_up();
        s.sim.inject(ScheduledFault::SystemError);
        s.run_for(Duration::from_millis(1));
        assert_ne!(s.isp.phase(), Phase::Online);
        s.bring_up();
        let ev: Vec<Event> = std::iter::from_fn(|| s.isp.pop_event())
            .map(|r| r.event)
            .collect();
        assert!(ev.iter().any(|e| matches!(e, Event::Reset(_))));
        assert_eq!(s.isp.stats().resets, 2);
        assert!(s.leaks().is_clean());
    });
}
