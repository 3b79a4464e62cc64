//! Faults during verified I/O: LIP, logout with commands outstanding, a
//! firmware system error, a full request ring, exchange exhaustion. In every
//! case the workload ends with no lost or misplaced write, and nothing leaks.

use std::time::Duration;

use rscst_hil::{SimStack, Stack, StackConfig, scenario};
use rscst_sim::{ExchangeExhaustion, ScheduledFault, WorkloadReport, WorkloadSpec};

const IOS: u64 = 4000;

fn quiet() -> StackConfig {
    let mut c = StackConfig {
        blocks: 4096,
        ..StackConfig::default()
    };
    c.sim.trace.registers = false;
    c.sim.trace.capacity = 10_000;
    c.initiator = |i| {
        i.auto_login = true;
        i.command_timeout = Duration::from_secs(2);
    };
    c
}

fn spec(ios: u64) -> WorkloadSpec {
    WorkloadSpec {
        lba_count: 2048,
        io_blocks: 8,
        queue_depth: 16,
        total_ios: Some(ios),
        read_percent: 50,
        ..WorkloadSpec::default()
    }
}

/// Run a workload from `n` initiators, calling `mid` once it is under way.
fn run_with<const R: usize>(
    s: &mut Stack<R>,
    n: usize,
    ios: u64,
    mid: impl FnOnce(&mut Stack<R>),
) -> WorkloadReport {
    let inis = s.add_initiators(n);
    let w = s.sim.start_workload(spec(ios), &inis).unwrap();
    s.run_until(Duration::from_secs(60), |s| {
        s.sim.workload_report(w).is_some_and(|r| r.ok >= ios / 4)
    });
    mid(s);
    let done = s.run_until(Duration::from_secs(300), |s| s.sim.workload_done(w));
    let r = s.sim.workload_report(w).unwrap();
    assert!(done, "workload did not finish: {r}");
    // Let the initiators' and the driver's clean-up finish.
    s.run_for(Duration::from_secs(5));
    r
}

fn assert_clean_end<const R: usize>(s: &Stack<R>, r: &WorkloadReport, ios: u64) {
    assert_eq!(r.verify_errors, 0, "lost/misplaced/corrupt writes: {r}");
    // Every command is accounted for: GOOD, another status (BUSY, the unit
    // attention after a new login), failed at the initiator (aborted by the
    // fault), or not sent (the initiator was logged out at the time).
    assert!(r.ok + r.bad_status + r.failed + r.not_sent >= ios, "{r}");
    assert!(s.leaks().is_clean(), "{:?}", s.leaks());
    assert_eq!(s.sim.open_exchanges(), 0);
    assert!(s.sim.violations().is_empty(), "{:?}", s.sim.violations());
    assert!(s.sim.iommu_faults().is_empty());
}

#[test]
fn lip_during_io() {
    scenario("lip_during_io", true, || {
        let mut s = SimStack::new(quiet());
        s.bring_up();
        let r = run_with(&mut s, 2, IOS, |s| s.sim.inject(ScheduledFault::Lip));
        assert_clean_end(&s, &r, IOS);
        assert!(r.ok > IOS * 3 / 4, "{r}");
        let st = s.isp.stats();
        assert!(st.ctio_errors > 0 || st.voided > 0 || r.failed == 0, "{st}");
        println!("{r}\n{st}");
    });
}

#[test]
fn logout_with_commands_outstanding() {
    scenario("logout_outstanding", false, || {
        let mut s = SimStack::new(quiet());
        s.bring_up();
        let r = run_with(&mut s, 2, IOS, |s| {
            let i = s.sim.initiators()[0];
            assert!(s.sim.initiator_outstanding(i) > 0);
            s.sim.inject(ScheduledFault::InitiatorLogout(i));
        });
        assert_clean_end(&s, &r, IOS);
        assert!(s.isp.stats().logouts >= 1);
        println!("{r}\n{}", s.isp.stats());
    });
}

#[test]
fn system_error_during_io_recovers() {
    scenario("system_error_during_io", true, || {
        let mut s = SimStack::new(quiet());
        s.bring_up();
        let r = run_with(&mut s, 2, IOS, |s| {
            s.sim.inject(ScheduledFault::SystemError)
        });
        assert_clean_end(&s, &r, IOS);
        let st = s.isp.stats();
        assert_eq!(st.resets, 2, "{st}");
        assert!(st.voided > 0, "commands were in flight at the reset: {st}");
        assert!(st.logins >= 4, "the initiators logged in again: {st}");
        assert!(r.ok > IOS * 3 / 4, "{r}");
        println!("{r}\n{st}");
    });
}

#[test]
fn ring_full_back_pressure() {
    scenario("ring_full", false, || {
        let mut cfg = quiet();
        // A slow firmware and a small request ring: the driver must refuse
        // work with Busy instead of overwriting unconsumed entries.
        cfg.sim.firmware.timing.iocb = Duration::from_micros(20);
        let mut s = Stack::<32>::new(cfg);
        s.bring_up();
        let r = run_with(&mut s, 4, IOS, |_| {});
        assert_clean_end(&s, &r, IOS);
        assert!(r.clean(), "{r}");
        assert!(s.isp.stats().ring_full > 0, "{}", s.isp.stats());
        println!("{r}\n{}", s.isp.stats());
    });
}

fn exhaustion(mode: ExchangeExhaustion) {
    let mut cfg = quiet();
    cfg.sim.firmware.exchange_count = 12;
    cfg.sim.firmware.exhaustion = mode;
    let mut s = SimStack::new(cfg);
    s.bring_up();
    let r = run_with(&mut s, 4, IOS, |_| {});
    assert_clean_end(&s, &r, IOS);
    assert_eq!(r.failed, 0, "{r}");
    // Commands refused for lack of exchanges got BUSY, not lost.
    assert!(r.bad_status > 0, "{r}");
    assert_eq!(r.ok + r.bad_status, IOS, "{r}");
    println!("{r}\n{}", s.isp.stats());
}

#[test]
fn exchange_exhaustion_unknown_exchange_atio() {
    scenario("exchange_exhaustion_atio", false, || {
        exhaustion(ExchangeExhaustion::UnknownExchangeAtio);
    });
}

#[test]
fn exchange_exhaustion_firmware_busy() {
    scenario("exchange_exhaustion_fw", false, || {
        exhaustion(ExchangeExhaustion::FirmwareBusy);
    });
}
