//! Link events and notifies at the IOCB level: LIP_RESET, LINK_REINIT, link
//! loss, port-database checks, refused logins.

use std::vec::Vec;

use rscst_core::{TmfFunction, TmfHandle, TmfRef, TmfResponse, TmfResponseCode, Transport};
use rscst_fw::fc::els::ElsOpcode;
use rscst_fw::iocb::{ImmedNotifyRepr, NotifyAckFlags, NotifyAckRepr, NotifyStatus};
use rscst_fw::{ExchangeAddr, NportHandle, PortId, Wwn};

use super::harness::{Call, Fw, HIsp, HStorage, RecCore, online};
use crate::event::{Event, LogoutReason};

fn notify(fw: &mut Fw, isp: &HIsp<'_>, n: &ImmedNotifyRepr) {
    let mut e = [0u8; 64];
    n.emit_bytes(&mut e).unwrap();
    fw.atio(isp, &e);
}

fn els(op: ElsOpcode, nport: u16, port: u32, wwpn: u64) -> ImmedNotifyRepr {
    ImmedNotifyRepr::els(
        op,
        NportHandle(nport),
        PortId::new(port),
        Wwn::from_u64(wwpn),
        ExchangeAddr(0x9000 + nport as u32),
        1,
    )
}

fn login(fw: &mut Fw, isp: &mut HIsp<'_>, core: &mut RecCore, nport: u16, port: u32, wwpn: u64) {
    notify(fw, isp, &els(ElsOpcode::Plogi, nport, port, wwpn));
    notify(fw, isp, &els(ElsOpcode::Prli, nport, port, wwpn));
    fw.poll(isp, core);
    let acks = fw.requests(isp);
    assert_eq!(acks.len(), 2);
}

fn acks(fw: &mut Fw, isp: &HIsp<'_>) -> Vec<NotifyAckRepr> {
    fw.requests(isp)
        .iter()
        .filter(|e| e[0] == 0x0E)
        .map(|e| NotifyAckRepr::parse_bytes(e).unwrap())
        .collect()
}

fn events(isp: &mut HIsp<'_>) -> Vec<Event> {
    core::iter::from_fn(|| isp.pop_event())
        .map(|r| r.event)
        .collect()
}

#[test]
fn lip_reset_acks_after_nexus_resets() {
    let mut st = HStorage::new();
    let mut core = RecCore::default();
    let (mut isp, mut fw) = online(&mut st, &mut core);
    login(&mut fw, &mut isp, &mut core, 0x10, 0x010400, 0x21);
    login(&mut fw, &mut isp, &mut core, 0x11, 0x010500, 0x22);
    core.calls.clear();
    notify(
        &mut fw,
        &isp,
        &ImmedNotifyRepr::global(NotifyStatus::LipReset),
    );
    fw.poll(&mut isp, &mut core);
    let tmfs: Vec<_> = core
        .calls
        .iter()
        .filter_map(|c| match c {
            Call::SubmitTmf(r) => Some(*r),
            _ => None,
        })
        .collect();
    assert_eq!(tmfs.len(), 2);
    assert!(tmfs.iter().all(|t| t.function == TmfFunction::ItNexusReset));
    assert!(acks(&mut fw, &isp).is_empty(), "ack waits for the resets");
    for (k, t) in tmfs.iter().enumerate() {
        let tref = TmfRef {
            handle: TmfHandle::from_u32(k as u32 | (k as u32 + 1) << 16),
            session: t.session,
            tag: t.tag,
        };
        isp.queue_tmf_response(tref, &TmfResponse::new(TmfResponseCode::FunctionComplete))
            .unwrap();
    }
    assert!(
        fw.requests(&isp).is_empty(),
        "nothing on the wire for internal TMFs"
    );
    fw.poll(&mut isp, &mut core);
    let a = acks(&mut fw, &isp);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].status, NotifyStatus::LipReset);
    assert_eq!(
        core.calls
            .iter()
            .filter(|c| matches!(c, Call::TmfResponseSent(_)))
            .count(),
        2
    );
    assert!(events(&mut isp).contains(&Event::Lip));
    assert_eq!(isp.tmfs_in_flight(), 0);
}

#[test]
fn link_reinit_is_held_until_loop_up() {
    let mut st = HStorage::new();
    let mut core = RecCore::default();
    let (mut isp, mut fw) = online(&mut st, &mut core);
    notify(
        &mut fw,
        &isp,
        &ImmedNotifyRepr::global(NotifyStatus::LipLinkReinit),
    );
    fw.poll(&mut isp, &mut core);
    assert!(acks(&mut fw, &isp).is_empty());
    fw.async_event([0x8011, 4, 0, 0, 0, 0, 0, 0]);
    fw.poll(&mut isp, &mut core);
    let r = fw.requests(&isp);
    // MARKER before new I/O, and the held ack.
    assert!(r.iter().any(|e| e[0] == 0x04));
    let a: Vec<_> = r.iter().filter(|e| e[0] == 0x0E).collect();
    assert_eq!(a.len(), 1);
    assert_eq!(
        NotifyAckRepr::parse_bytes(a[0]).unwrap().status,
        NotifyStatus::LipLinkReinit
    );
}

#[test]
fn link_loss_ends_sessions_unless_confirmed() {
    let mut st = HStorage::new();
    let mut core = RecCore::default();
    let (mut isp, mut fw) = online(&mut st, &mut core);
    login(&mut fw, &mut isp, &mut core, 0x10, 0x010400, 0x21);
    login(&mut fw, &mut isp, &mut core, 0x11, 0x010500, 0x22);
    core.calls.clear();
    // LOOP_DOWN: sessions kept for the port-down timeout.
    fw.async_event([0x8012, 0, 0, 0, 0, 0, 0, 0]);
    fw.poll(&mut isp, &mut core);
    assert!(!isp.link_up());
    assert_eq!(isp.sessions().count(), 2);
    // LOOP_UP: the port database confirms 0x10 is still logged in, not 0x11.
    fw.chip.borrow_mut().pdb_state = 6;
    fw.async_event([0x8011, 4, 0, 0, 0, 0, 0, 0]);
    fw.poll(&mut isp, &mut core);
    for _ in 0..10 {
        fw.poll(&mut isp, &mut core);
        if fw
            .chip
            .borrow()
            .commands
            .iter()
            .filter(|&&c| c == 0x64)
            .count()
            >= 1
        {
            fw.chip.borrow_mut().pdb_state = 0;
        }
    }
    let pdbs = fw
        .chip
        .borrow()
        .commands
        .iter()
        .filter(|&&c| c == 0x64)
        .count();
    assert_eq!(pdbs, 2);
    let left: Vec<u16> = isp.sessions().map(|s| s.nport_handle).collect();
    assert_eq!(left, [0x10]);
    assert_eq!(
        core.calls
            .iter()
            .filter(|c| matches!(c, Call::RemoveSession(_)))
            .count(),
        1
    );
    assert!(events(&mut isp).iter().any(|e| matches!(
        e,
        Event::Logout {
            reason: LogoutReason::PortDatabase,
            ..
        }
    )));
    // Another LOOP_DOWN with no LOOP_UP: after 10 s the nexus ends.
    fw.async_event([0x8012, 0, 0, 0, 0, 0, 0, 0]);
    fw.poll(&mut isp, &mut core);
    fw.now += 10_100;
    fw.poll(&mut isp, &mut core);
    assert_eq!(isp.sessions().count(), 0);
    assert!(events(&mut isp).iter().any(|e| matches!(
        e,
        Event::Logout {
            reason: LogoutReason::LinkLost,
            ..
        }
    )));
}

#[test]
fn refused_login_is_acked_with_terminate() {
    let mut st = HStorage::new();
    let mut core = RecCore {
        refuse_login: true,
        ..RecCore::default()
    };
    let (mut isp, mut fw) = online(&mut st, &mut core);
    notify(&mut fw, &isp, &els(ElsOpcode::Plogi, 0x10, 0x010400, 0x21));
    notify(&mut fw, &isp, &els(ElsOpcode::Prli, 0x10, 0x010400, 0x21));
    fw.poll(&mut isp, &mut core);
    let a = acks(&mut fw, &isp);
    assert!(
        !a[0].flags.contains(NotifyAckFlags::TERMINATE),
        "PLOGI accepted"
    );
    assert!(
        a[1].flags.contains(NotifyAckFlags::TERMINATE),
        "PRLI refused"
    );
    assert!(
        events(&mut isp)
            .iter()
            .any(|e| matches!(e, Event::LoginRefused { .. }))
    );
}

#[test]
fn replug_with_new_port_id_replaces_the_session() {
    let mut st = HStorage::new();
    let mut core = RecCore::default();
    let (mut isp, mut fw) = online(&mut st, &mut core);
    login(&mut fw, &mut isp, &mut core, 0x10, 0x010400, 0x21);
    let first = isp.sessions().next().unwrap().core.unwrap();
    login(&mut fw, &mut isp, &mut core, 0x12, 0x010600, 0x21);
    assert!(core.calls.contains(&Call::RemoveSession(first)));
    let s: Vec<_> = isp.sessions().collect();
    assert_eq!(s.len(), 1);
    assert_eq!(
        (s[0].nport_handle, s[0].port_id),
        (0x12, PortId::new(0x010600))
    );
}

/// Let the jobs that follow the bring-up finish (no mailbox command
/// outstanding: while one is, host status is read on every poll) and drop
/// the events so far.
fn settle(fw: &mut Fw, isp: &mut HIsp<'_>, core: &mut RecCore) {
    for _ in 0..20 {
        fw.poll(isp, core);
    }
    while isp.pop_event().is_some() {}
}

/// Online, host status is read only when the interrupt line is latched
/// (`service_interrupts`). A cause the line did not signal (here the line is
/// not wired: the chip's interrupt enable is cleared behind the driver's
/// back) is not seen by a poll, but `wait_for_work` reads host status before
/// it sleeps, and the poll after it handles the cause.
#[test]
fn a_cause_the_line_missed_is_handled_after_wait_for_work() {
    let mut st = HStorage::new();
    let mut core = RecCore::default();
    let (mut isp, mut fw) = online(&mut st, &mut core);
    settle(&mut fw, &mut isp, &mut core);
    assert!(isp.link_up());
    fw.chip.borrow_mut().ictrl = 0;
    // LOOP DOWN.
    fw.async_event([0x8012, 0, 0, 0, 0, 0, 0, 0]);
    for _ in 0..3 {
        fw.poll(&mut isp, &mut core);
    }
    assert!(isp.link_up(), "the line is quiet: host status not read");
    assert!(isp.wait_for_work(Some(core::time::Duration::ZERO)));
    fw.poll(&mut isp, &mut core);
    assert!(!isp.link_up(), "{:?}", events(&mut isp));
}

/// On an edge-triggered line (MSI) the driver acknowledges before it reads host
/// status: a cause the firmware posts as soon as the driver clears the one it
/// read (here an async event behind a queue update) sends a message that
/// latches the line again, and the next poll reads it. Acknowledging after the
/// clear, as for a level line, would consume that message and leave the cause
/// unseen until the sweep.
#[test]
fn edge_line_keeps_a_cause_posted_behind_the_one_read() {
    let mut st = HStorage::new();
    let mut core = RecCore::default();
    let (mut isp, mut fw) = online(&mut st, &mut core);
    settle(&mut fw, &mut isp, &mut core);
    {
        let mut c = fw.chip.borrow_mut();
        c.edge = true;
        c.latch = false;
        // TEMPERATURE_ALERT, posted when the driver clears the queue update.
        c.next_cause = Some((0x8070 << 16 | 0x8000 | 0x12, [0x8070, 7, 0, 0, 0, 0, 0, 0]));
    }
    fw.queue_update();
    fw.poll(&mut isp, &mut core);
    assert!(
        fw.chip.borrow().next_cause.is_none(),
        "the queue update was cleared"
    );
    fw.poll(&mut isp, &mut core);
    let ev = events(&mut isp);
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::Async(a) if u16::from(a.code()) == 0x8070)),
        "{ev:?}"
    );
}
