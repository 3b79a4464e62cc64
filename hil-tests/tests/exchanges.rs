//! Exchange lifetime after a failed CTIO7 (reference §7.6, §9.8, §9.11): the
//! firmware keeps an exchange open after any CTIO7 that fails, whichever
//! came first — the abort or the CTIO7 — until the driver terminates it (or a
//! BA_ACC ends it); the driver terminates after every failed CTIO7 unless it
//! already did. Each scenario ends with no firmware exchange open, no
//! interface-rule violation and nothing held by the driver or the core.

use std::time::Duration;

use rscst_hil::{LUN0, SimStack, StackConfig, scenario};
use rscst_sim::{CommandError, CommandSpec, InitiatorEvent, InitiatorId, ScheduledFault, Tag};

fn read10(lba: u32, blocks: u16) -> Vec<u8> {
    let mut c = vec![0x28, 0];
    c.extend(lba.to_be_bytes());
    c.push(0);
    c.extend(blocks.to_be_bytes());
    c.push(0);
    c
}

fn write10(lba: u32, blocks: u16) -> Vec<u8> {
    let mut c = read10(lba, blocks);
    c[0] = 0x2a;
    c
}

const TUR: [u8; 6] = [0; 6];

/// Nothing open, nothing held, no rule broken.
fn assert_clean(s: &SimStack) {
    assert!(s.leaks().is_clean(), "{:?}", s.leaks());
    assert_eq!(s.sim.open_exchanges(), 0, "firmware exchanges left open");
    assert!(s.sim.violations().is_empty(), "{:?}", s.sim.violations());
    assert!(s.sim.iommu_faults().is_empty());
}

/// Abort `tag` and wait for the BA_ACC/BA_RJT; returns (accepted, how the
/// command ended).
fn abort(s: &mut SimStack, ini: InitiatorId, tag: Tag) -> (bool, Option<CommandError>) {
    s.sim.initiator_abort(ini, tag).unwrap();
    let mut failed = None;
    let mut accepted = None;
    let ok = s.run_until(Duration::from_secs(5), |s| {
        for e in s.sim.initiator_events(ini) {
            match e {
                InitiatorEvent::Failed { tag: t, error } if t == tag => failed = Some(error),
                InitiatorEvent::AbortDone {
                    tag: t,
                    accepted: a,
                } if t == tag => accepted = Some(a),
                InitiatorEvent::Completed { tag: t, .. } if t == tag => {
                    panic!("{tag} completed despite the ABTS")
                }
                _ => {}
            }
        }
        accepted.is_some()
    });
    assert!(ok, "no answer to the ABTS");
    (accepted.unwrap_or(false), failed)
}

/// The nexus still works.
fn still_works(s: &mut SimStack, ini: InitiatorId) {
    let r = s
        .command(ini, CommandSpec::read(LUN0, &read10(8, 8), 4096).unwrap())
        .unwrap();
    assert_eq!(r.status, 0);
}

#[test]
fn abts_kills_a_queued_send_status_ctio() {
    scenario("abts_queued_status", false, || {
        let mut s = SimStack::new(StackConfig {
            blocks: 8192,
            ..StackConfig::default()
        });
        s.bring_up();
        let ini = s.add_initiators(1)[0];
        let t = s.sim.hba_port_id().unwrap();
        // FCP_DL one block more than the read moves: an underflow residual, so
        // the driver sends a data CTIO7 and a separate SEND_STATUS CTIO7, which
        // waits in the firmware behind the 32 KiB going out on the link.
        let spec = CommandSpec::read(LUN0, &read10(0, 64), 65 * 512).unwrap();
        let tag = s.sim.initiator_command(ini, t, spec).unwrap();
        assert!(s.run_until(Duration::from_secs(1), |s| s.isp.handles_in_use() == 1));
        let (accepted, failed) = abort(&mut s, ini, tag);
        assert!(accepted, "BA_ACC");
        assert_eq!(failed, Some(CommandError::Aborted));
        let st = s.isp.stats();
        assert_eq!(
            st.final_ctio_failed, 1,
            "the SEND_STATUS CTIO7 was killed: {st}"
        );
        s.run_for(Duration::from_millis(10));
        assert_clean(&s);
        still_works(&mut s, ini);
        assert_clean(&s);
    });
}

#[test]
fn abts_overtakes_a_posted_send_status_ctio() {
    scenario("abts_posted_status", false, || {
        let mut cfg = StackConfig::default();
        // The firmware fetches request IOCBs 200 µs after the doorbell: the
        // ABTS reaches it before the status CTIO7 the driver already posted.
        cfg.sim.firmware.timing.iocb = Duration::from_micros(200);
        let mut s = SimStack::new(cfg);
        s.bring_up();
        let ini = s.add_initiators(1)[0];
        let t = s.sim.hba_port_id().unwrap();
        let tag = s
            .sim
            .initiator_command(ini, t, CommandSpec::no_data(LUN0, &TUR).unwrap())
            .unwrap();
        assert!(s.run_until(Duration::from_secs(1), |s| s.isp.handles_in_use() == 1));
        let (accepted, failed) = abort(&mut s, ini, tag);
        assert!(accepted, "BA_ACC");
        assert_eq!(failed, Some(CommandError::Aborted), "no FCP_RSP went out");
        assert_eq!(s.isp.stats().final_ctio_failed, 1);
        s.run_for(Duration::from_millis(10));
        assert_clean(&s);
        still_works(&mut s, ini);
        assert_clean(&s);
    });
}

#[test]
fn lip_and_logout_with_status_ctios_in_flight() {
    scenario("lip_logout_status_in_flight", true, || {
        for logout in [false, true] {
            let mut cfg = StackConfig {
                blocks: 8192,
                ..StackConfig::default()
            };
            cfg.sim.firmware.timing.iocb = Duration::from_micros(200);
            cfg.initiator = |i| i.command_timeout = Duration::from_millis(500);
            let mut s = SimStack::new(cfg);
            s.bring_up();
            let ini = s.add_initiators(1)[0];
            let t = s.sim.hba_port_id().unwrap();
            // Reads whose SEND_STATUS CTIO7 waits in the firmware behind their
            // data on the link...
            for k in 0..4 {
                let spec = CommandSpec::read(LUN0, &read10(64 * k, 64), 65 * 512).unwrap();
                s.sim.initiator_command(ini, t, spec).unwrap();
            }
            assert!(s.run_until(Duration::from_secs(1), |s| s.isp.handles_in_use() == 4));
            s.run_for(Duration::from_micros(210));
            // ... and status-only commands whose SEND_STATUS CTIO7s are posted but
            // not fetched yet when the fault comes.
            for _ in 0..4 {
                s.sim
                    .initiator_command(ini, t, CommandSpec::no_data(LUN0, &TUR).unwrap())
                    .unwrap();
            }
            assert!(s.run_until(Duration::from_secs(1), |s| s.isp.handles_in_use() == 8));
            let fault = if logout {
                ScheduledFault::InitiatorLogout(ini)
            } else {
                ScheduledFault::Lip
            };
            s.sim.inject(fault);
            s.run_for(Duration::from_secs(3));
            let st = s.isp.stats();
            assert_eq!(
                st.final_ctio_failed,
                8,
                "status CTIO7s failed ({}): {st}",
                if logout { "logout" } else { "LIP" }
            );
            assert!(st.terminates >= st.final_ctio_failed, "{st}");
            assert_eq!(s.sim.initiator_outstanding(ini), 0);
            assert_clean(&s);
            if logout {
                s.sim.initiator_login(ini, t).unwrap();
                assert!(s.run_until(Duration::from_secs(5), |s| {
                    s.sim.initiator_logged_in(ini, t)
                }));
            }
            // The new nexus (or the old one after a LIP) starts with a unit attention.
            let _ = s.command(ini, CommandSpec::no_data(LUN0, &TUR).unwrap());
            still_works(&mut s, ini);
            assert_clean(&s);
        }
    });
}

#[test]
fn lost_ctio_completion() {
    scenario("lost_ctio_completion", false, || {
        let mut cfg = StackConfig {
            tune: |c| c.completion_timeout = Duration::from_millis(300),
            ..StackConfig::default()
        };
        cfg.initiator = |i| i.command_timeout = Duration::from_secs(1);
        let mut s = SimStack::new(cfg);
        s.bring_up();
        let ini = s.add_initiators(1)[0];
        // 1. The completion of a read's SEND_STATUS CTIO7 is lost: the
        //    initiator has its data and status, the firmware closed the
        //    exchange. The driver gives up after 300 ms and terminates (it
        //    cannot know); the firmware answers INVALID_RX_ID.
        s.sim.inject(ScheduledFault::LoseNextCtioCompletion);
        let r = s
            .command(ini, CommandSpec::read(LUN0, &read10(0, 8), 4096).unwrap())
            .unwrap();
        assert_eq!(r.status, 0);
        s.run_for(Duration::from_millis(500));
        let st = s.isp.stats();
        assert_eq!((st.completion_timeouts, st.terminates), (1, 1), "{st}");
        assert_clean(&s);
        // 2. The completion of a write's DATA_OUT CTIO7 is lost: the exchange
        //    is still open in the firmware; the driver's terminate closes it,
        //    the core aborts the command, the initiator times out.
        s.sim.inject(ScheduledFault::LoseNextCtioCompletion);
        let t = s.sim.hba_port_id().unwrap();
        let w = s
            .sim
            .initiator_command(
                ini,
                t,
                CommandSpec::write(LUN0, &write10(16, 8), vec![0x5a; 4096]).unwrap(),
            )
            .unwrap();
        let e = s.wait_command(ini, w, Duration::from_secs(5));
        assert!(matches!(e, Err(CommandError::Timeout)), "{e:?}");
        s.run_for(Duration::from_secs(1));
        let st = s.isp.stats();
        assert_eq!((st.completion_timeouts, st.terminates), (2, 2), "{st}");
        assert_clean(&s);
        still_works(&mut s, ini);
        assert_clean(&s);
    });
}
