//! Task management from FCP_CMND flags, ABTS mid-transfer (read and write),
//! and a stale completion after the driver aborted an exchange.

use std::time::Duration;

use rscst_fw::fc::fcp::{RspCode, TmFunction};
use rscst_hil::{LUN0, SimStack, StackConfig, scenario};
use rscst_qla::Event;
use rscst_sim::{CommandError, CommandSpec, InitiatorEvent, InitiatorId, ScheduledFault, Tag};

fn write10(lba: u32, blocks: u16) -> Vec<u8> {
    let mut c = vec![0x2a, 0];
    c.extend(lba.to_be_bytes());
    c.push(0);
    c.extend(blocks.to_be_bytes());
    c.push(0);
    c
}

fn read10(lba: u32, blocks: u16) -> Vec<u8> {
    let mut c = write10(lba, blocks);
    c[0] = 0x28;
    c
}

/// Writes whose data the initiator never sends: they wait in Data-Out.
fn stuck_writes(s: &mut SimStack, ini: InitiatorId, first_lba: u32, n: usize) -> Vec<Tag> {
    let t = s.sim.hba_port_id().unwrap();
    let tags: Vec<Tag> = (0..n)
        .map(|k| {
            let spec =
                CommandSpec::write_on_demand(LUN0, &write10(first_lba + 8 * k as u32, 8), 4096)
                    .unwrap();
            s.sim.initiator_command(ini, t, spec).unwrap()
        })
        .collect();
    let mut seen = 0;
    let ok = s.run_until(Duration::from_secs(1), |s| {
        seen += s
            .sim
            .initiator_events(ini)
            .iter()
            .filter(|e| matches!(e, InitiatorEvent::XferRdy { .. }))
            .count();
        seen == n
    });
    assert!(ok, "XFER_RDY for every write");
    tags
}

fn tmf(s: &mut SimStack, ini: InitiatorId, f: TmFunction) -> Option<RspCode> {
    let t = s.sim.hba_port_id().unwrap();
    let tag = s.sim.initiator_tmf(ini, t, LUN0, f).unwrap();
    let mut code = None;
    let ok = s.run_until(Duration::from_secs(5), |s| {
        for e in s.sim.initiator_events(ini) {
            if let InitiatorEvent::TmfDone { tag: t2, code: c } = e
                && t2 == tag
            {
                code = Some(c);
            }
        }
        code.is_some()
    });
    assert!(ok, "no TMF response for {f:?}");
    code.flatten()
}

#[test]
fn each_task_management_function() {
    scenario("tmf", true, || {
        // (function, commands of initiator 0 aborted, of initiator 1 aborted)
        let cases = [
            (TmFunction::AbortTaskSet, 3, 0),
            (TmFunction::ClearTaskSet, 3, 2),
            (TmFunction::LunReset, 3, 2),
            (TmFunction::TargetReset, 3, 2),
            (TmFunction::ClearAca, 0, 0),
        ];
        for (f, a0, a1) in cases {
            let mut s = SimStack::new(StackConfig::default());
            s.bring_up();
            let inis = s.add_initiators(2);
            stuck_writes(&mut s, inis[0], 0, 3);
            stuck_writes(&mut s, inis[1], 100, 2);
            assert_eq!(s.target.active_commands(), 5);
            let terminates = s.isp.stats().terminates;
            let code = tmf(&mut s, inis[0], f);
            assert_eq!(code, Some(RspCode::Complete), "{f:?}");
            let aborted = a0 + a1;
            // Safe TMF: by the time the response is out, the affected exchanges are
            // terminated and the commands are gone from the driver and the core.
            assert_eq!(
                s.isp.stats().terminates - terminates,
                aborted as u64,
                "{f:?}"
            );
            assert_eq!(s.target.active_commands(), 5 - aborted, "{f:?}");
            assert_eq!(s.isp.commands_in_flight(), 5 - aborted, "{f:?}");
            assert_eq!(s.sim.open_exchanges() as usize, 5 - aborted, "{f:?}");
            // The rest time out in the firmware (no data), the initiators give up;
            // everything is released.
            s.run_for(Duration::from_secs(30));
            assert!(s.leaks().is_clean(), "{f:?}: {:?}", s.leaks());
            assert_eq!(s.sim.open_exchanges(), 0, "{f:?}");
            assert!(s.sim.violations().is_empty(), "{:?}", s.sim.violations());
        }
    });
}

fn abort_mid_transfer(write: bool) {
    // No slowdown needed: the read's 32 KiB take ~40 µs on the 8GFC link, the
    // ABTS arrives while its frames are going out.
    let cfg = StackConfig {
        blocks: 8192,
        ..StackConfig::default()
    };
    let mut s = SimStack::new(cfg);
    s.bring_up();
    let ini = s.add_initiators(1)[0];
    let t = s.sim.hba_port_id().unwrap();
    let tag = if write {
        // A write whose data the initiator sends half of, then aborts.
        let spec = CommandSpec::write_on_demand(LUN0, &write10(64, 8), 4096).unwrap();
        let tag = s.sim.initiator_command(ini, t, spec).unwrap();
        let mut xfer = None;
        let ok = s.run_until(Duration::from_secs(1), |s| {
            for e in s.sim.initiator_events(ini) {
                if let InitiatorEvent::XferRdy { offset, len, .. } = e {
                    xfer = Some((offset, len));
                }
            }
            xfer.is_some()
        });
        assert!(ok, "XFER_RDY");
        assert_eq!(xfer, Some((0, 4096)));
        s.sim
            .initiator_supply_data(ini, tag, 0, &[0x77; 2048], false)
            .unwrap();
        s.run_for(Duration::from_micros(50));
        tag
    } else {
        let spec = CommandSpec::read(LUN0, &read10(0, 64), 64 * 512).unwrap();
        let tag = s.sim.initiator_command(ini, t, spec).unwrap();
        let ok = s.run_until(Duration::from_secs(1), |s| s.isp.handles_in_use() == 1);
        assert!(ok, "the read's CTIO7 is outstanding");
        tag
    };
    assert_eq!(s.target.active_commands(), 1, "mid-transfer");
    assert_eq!(s.isp.handles_in_use(), 1, "a CTIO7 outstanding");
    s.sim.initiator_abort(ini, tag).unwrap();
    let mut failed = None;
    let mut abort = None;
    let bytes_in = s.sim.initiator_stats(ini).bytes_in;
    let ok = s.run_until(Duration::from_secs(5), |s| {
        for e in s.sim.initiator_events(ini) {
            match e {
                InitiatorEvent::Failed { tag: t2, error } if t2 == tag => failed = Some(error),
                InitiatorEvent::AbortDone { tag: t2, accepted } if t2 == tag => {
                    abort = Some(accepted)
                }
                InitiatorEvent::Completed { tag: t2, .. } if t2 == tag => {
                    panic!("completed despite the ABTS")
                }
                _ => {}
            }
        }
        abort.is_some()
    });
    assert!(ok);
    assert_eq!(abort, Some(true), "BA_ACC");
    assert_eq!(failed, Some(CommandError::Aborted));
    if !write {
        // Mid-transfer: part of the data went out before the ABTS stopped it.
        let data_in = s.sim.initiator_stats(ini).bytes_in - bytes_in;
        assert!(
            data_in > 0 && data_in < 64 * 512,
            "{data_in} bytes of Data-In before the abort"
        );
    }
    assert_eq!(s.isp.stats().abts, 1);
    assert!(
        s.isp.stats().ctio_errors >= 1,
        "the CTIO7 completed ABORTED"
    );
    let ev: Vec<Event> = std::iter::from_fn(|| s.isp.pop_event())
        .map(|r| r.event)
        .collect();
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::Abts {
            rejected: false,
            ..
        }
    )));
    s.run_for(Duration::from_millis(10));
    assert!(s.leaks().is_clean(), "{:?}", s.leaks());
    assert_eq!(s.sim.open_exchanges(), 0);
    // The nexus still works.
    let r = s
        .command(ini, CommandSpec::read(LUN0, &read10(0, 8), 4096).unwrap())
        .unwrap();
    assert_eq!(r.status, 0);
    if !s.sim.violations().is_empty() {
        println!("{}", s.sim.trace_text());
    }
    assert!(s.sim.violations().is_empty(), "{:?}", s.sim.violations());
}

#[test]
fn abts_mid_read() {
    scenario("abts_mid_read", false, || abort_mid_transfer(false));
}

#[test]
fn abts_mid_write() {
    scenario("abts_mid_write", false, || abort_mid_transfer(true));
}

#[test]
fn stale_completion_after_abort() {
    scenario("stale_completion", false, || {
        let cfg = StackConfig {
            // The driver gives up on a CTIO7 after 300 ms; the completions of
            // the two reads below reach it 500 ms late.
            tune: |c| c.completion_timeout = Duration::from_millis(300),
            ..StackConfig::default()
        };
        let late = ScheduledFault::DelayNextCtioCompletion(Duration::from_millis(500));
        let mut s = SimStack::new(cfg);
        s.bring_up();
        let resets = s.isp.stats().resets;
        let ini = s.add_initiators_without_tur(1)[0];
        let t = s.sim.hba_port_id().unwrap();
        s.sim.inject(late);
        let a = s
            .sim
            .initiator_command(
                ini,
                t,
                CommandSpec::read(LUN0, &read10(0, 8), 4096).unwrap(),
            )
            .unwrap();
        // A's IOCB times out in the driver: it terminates the exchange (the
        // firmware, which had closed it, answers INVALID_RX_ID) and fails the
        // command towards the core...
        let ok = s.run_until(Duration::from_secs(1), |s| {
            s.isp.stats().completion_timeouts == 1 && s.isp.handles_in_use() == 0
        });
        assert!(ok);
        assert_eq!(s.isp.stats().terminates, 1);
        assert_eq!(s.isp.commands_in_flight(), 0);
        // ... then B takes the same handle slot (new generation) while A's late
        // completion is still on its way.
        s.sim.inject(late);
        let b = s
            .sim
            .initiator_command(
                ini,
                t,
                CommandSpec::read(LUN0, &read10(8, 8), 4096).unwrap(),
            )
            .unwrap();
        s.run_for(Duration::from_millis(1));
        assert_eq!(s.isp.handles_in_use(), 1);
        let ok = s.run_until(Duration::from_secs(1), |s| {
            s.isp.stats().stale_completions >= 1
        });
        assert!(ok, "A's completion arrived and was dropped as stale");
        assert_eq!(s.isp.stats().exchange_mismatches, 0);
        assert_eq!(
            s.isp.handles_in_use(),
            1,
            "B's handle untouched by A's completion"
        );
        // B ends the same way; its own late completion is stale too.
        let ok = s.run_until(Duration::from_secs(2), |s| {
            s.isp.stats().stale_completions >= 2
        });
        assert!(ok);
        assert_eq!(s.isp.stats().terminates, 2);
        let ev: Vec<Event> = std::iter::from_fn(|| s.isp.pop_event())
            .map(|r| r.event)
            .collect();
        assert_eq!(
            ev.iter()
                .filter(|e| matches!(e, Event::StaleCompletion { .. }))
                .count(),
            s.isp.stats().stale_completions as usize
        );
        s.run_for(Duration::from_secs(1));
        assert!(s.leaks().is_clean(), "{:?}", s.leaks());
        // The terminates named exchanges whose closing completions the driver had
        // not seen: not a violation.
        assert!(s.sim.violations().is_empty(), "{:?}", s.sim.violations());
        assert_eq!(s.sim.open_exchanges(), 0);
        assert_eq!(s.isp.stats().resets, resets, "no chip reset: {ev:?}");
        let _ = (a, b);
    });
}
