//! Target mode through the hba traits: logins (IMMED_NOTIFY / NOTIFY_ACK), commands
//! (ATIO7 → CTIO7 in every form), task management, ABTS, logout, exchange exhaustion, ring
//! wrap and full, IOMMU faults — with a tiny test target (tests/common/target.rs) and
//! simulated initiators.

mod common;

use std::time::Duration;

use common::setup;
use common::target::{BLOCK, MiniTarget, Seen, run};
use rscst_fw::fc::{DataDir, Residual, RspCode, TmFunction};
use rscst_fw::mailbox::{Mailboxes, MbxCommand};
use rscst_fw::port_db::{PortDatabase, PortDatabaseRepr};
use rscst_fw::{Lun, PortId};
use rscst_hba::{DmaPool, DmaRegion, Platform};
use rscst_sim::{
    CommandError, CommandSpec, InitiatorConfig, InitiatorEvent, InitiatorId, Sim, SimConfig, Tag,
    ViolationKind,
};

const T: Duration = Duration::from_secs(2);

fn lun0() -> Lun {
    Lun::from_index(0).unwrap()
}

fn read10(lba: u32, n: u16) -> Vec<u8> {
    let mut c = vec![0x28, 0];
    c.extend_from_slice(&lba.to_be_bytes());
    c.push(0);
    c.extend_from_slice(&n.to_be_bytes());
    c.push(0);
    c
}

fn write10(lba: u32, n: u16) -> Vec<u8> {
    let mut c = read10(lba, n);
    c[0] = 0x2A;
    c
}

/// Bring-up, one initiator logged in.
fn ready(cfg: SimConfig) -> (Sim, MiniTarget, InitiatorId, PortId) {
    let (mut sim, mut d) = setup(cfg);
    d.bring_up(&mut sim);
    let mut t = MiniTarget::new(d, 2048);
    let ini = sim.add_initiator(InitiatorConfig::new(0x2100_0000_c9aa_0001));
    assert!(run(&mut sim, &mut t, T, |s, _| s
        .initiator_port_id(ini)
        .is_some()));
    let target = sim.hba_port_id().unwrap();
    sim.initiator_login(ini, target).unwrap();
    assert!(
        run(&mut sim, &mut t, T, |s, _| s
            .initiator_logged_in(ini, target)),
        "login"
    );
    (sim, t, ini, target)
}

fn wait_event(
    sim: &mut Sim,
    t: &mut MiniTarget,
    ini: InitiatorId,
    max: Duration,
    pred: impl Fn(&InitiatorEvent<'static>) -> bool,
) -> Vec<InitiatorEvent<'static>> {
    let mut got = Vec::new();
    let ok = run(sim, t, max, |s, _| {
        got.extend(s.initiator_events(ini));
        got.iter().any(&pred)
    });
    assert!(ok, "event not seen; got {got:#?}");
    got
}

fn completed(evs: &[InitiatorEvent<'static>], tag: Tag) -> rscst_sim::CommandResult {
    evs.iter()
        .find_map(|e| match e {
            InitiatorEvent::Completed { tag: t, result } if *t == tag => Some((**result).clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no completion for {tag}: {evs:#?}"))
}

#[test]
fn login_is_notified_acked_and_in_the_port_database() {
    let (mut sim, mut t, ini, target) = ready(SimConfig::default());
    let notifies: Vec<(u16, u8)> = t
        .seen
        .iter()
        .filter_map(|s| match s {
            Seen::Notify {
                status, subcode, ..
            } => Some((*status, *subcode)),
            _ => None,
        })
        .collect();
    assert_eq!(
        notifies,
        vec![(0x46, 0x03), (0x46, 0x20)],
        "PLOGI then PRLI notified"
    );
    assert_eq!(
        t.seen
            .iter()
            .filter(|s| matches!(s, Seen::NotifyAckDone))
            .count(),
        2
    );
    let evs = sim.initiator_events(ini);
    assert!(
        evs.iter().any(
            |e| matches!(e, InitiatorEvent::LoginDone { ok: true, target: tg } if *tg == target)
        )
    );
    // PORT_UPDATE async events: PLOGI complete, PRLI complete.
    let pu: Vec<u16> =
        t.d.asyncs
            .iter()
            .filter(|a| a[0] == 0x8014)
            .map(|a| a[2])
            .collect();
    assert_eq!(pu, vec![4, 6]);
    let (&handle, &pid) = t.sessions.iter().next().unwrap();
    assert_eq!(Some(pid), sim.initiator_port_id(ini));
    let buf = t.d.p.dma().alloc(64, 64).unwrap();
    let r = t.d.mailbox(
        &mut sim,
        &Mailboxes::get_port_database(rscst_fw::NportHandle(handle), buf.iova().0, 0, 0),
    );
    assert_eq!(r.status(), 0x4000);
    let mut b = [0u8; 64];
    buf.read(0, &mut b).unwrap();
    let pdb = PortDatabaseRepr::parse(&PortDatabase::new_checked(&b[..]).unwrap()).unwrap();
    assert!(pdb.prli_complete());
    assert!(pdb.is_initiator());
    assert_eq!(
        pdb.port_name,
        InitiatorConfig::new(0x2100_0000_c9aa_0001).wwpn
    );
    let ids = t.d.p.dma().alloc(4096, 64).unwrap();
    let r =
        t.d.mailbox(&mut sim, &Mailboxes::get_id_list(ids.iova().0, 0));
    assert_eq!(r.mb(1), 1);
    let mut e = [0u8; 8];
    ids.read(0, &mut e).unwrap();
    assert_eq!(&e[..3], &pid.to_le_bytes());
    assert_eq!(u16::from_le_bytes([e[4], e[5]]), handle);
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

#[test]
fn write_then_read_back_through_dma() {
    let (mut sim, mut t, ini, target) = ready(SimConfig::default());
    let data: Vec<u8> = (0..8 * BLOCK).map(|i| (i * 7 + 3) as u8).collect();
    let w = sim
        .initiator_command(
            ini,
            target,
            CommandSpec::write(lun0(), &write10(100, 8), data.clone()).unwrap(),
        )
        .unwrap();
    let evs = wait_event(&mut sim, &mut t, ini, T, |e| e.tag() == Some(w));
    let r = completed(&evs, w);
    assert_eq!(r.status, 0);
    assert_eq!(r.transferred, 8 * BLOCK);
    let mut lun = vec![0u8; data.len()];
    t.lun.read(100 * BLOCK as usize, &mut lun).unwrap();
    assert_eq!(lun, data, "the write landed in the LUN's DMA memory");
    let rd = sim
        .initiator_command(
            ini,
            target,
            CommandSpec::read(lun0(), &read10(100, 8), 8 * BLOCK).unwrap(),
        )
        .unwrap();
    let evs = wait_event(&mut sim, &mut t, ini, T, |e| e.tag() == Some(rd));
    let r = completed(&evs, rd);
    assert_eq!((r.status, r.residual), (0, Residual::None));
    assert_eq!(r.data, data);
    assert_eq!(sim.open_exchanges(), 0);
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

fn failed(evs: &[InitiatorEvent<'static>], tag: Tag) -> Option<CommandError> {
    evs.iter().find_map(|e| match e {
        InitiatorEvent::Failed { tag: t, error } if *t == tag => Some(*error),
        _ => None,
    })
}

#[test]
fn scatter_gather_with_continuation_entries_and_ring_wrap() {
    let (mut sim, mut t, ini, target) = ready(SimConfig::default());
    t.dsd_split = BLOCK; // one DSD per block: 16 DSDs = CTIO + 3 CONTINUE_A64
    let data: Vec<u8> = (0..16 * BLOCK).map(|i| (i / 3) as u8 ^ 0x5A).collect();
    // Enough commands to wrap the 128-entry request ring several times.
    for round in 0..20u32 {
        let lba = round * 16;
        let w = sim
            .initiator_command(
                ini,
                target,
                CommandSpec::write(lun0(), &write10(lba, 16), data.clone()).unwrap(),
            )
            .unwrap();
        let evs = wait_event(&mut sim, &mut t, ini, T, |e| e.tag() == Some(w));
        assert_eq!(completed(&evs, w).status, 0);
        let r = sim
            .initiator_command(
                ini,
                target,
                CommandSpec::read(lun0(), &read10(lba, 16), 16 * BLOCK).unwrap(),
            )
            .unwrap();
        let evs = wait_event(&mut sim, &mut t, ini, T, |e| e.tag() == Some(r));
        assert_eq!(completed(&evs, r).data, data, "round {round}");
    }
    assert!(
        sim.firmware_stats().request_iocbs > 128,
        "the request ring wrapped"
    );
    assert_eq!(sim.open_exchanges(), 0);
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

#[test]
fn residual_takes_the_two_ctio_path() {
    let (mut sim, mut t, ini, target) = ready(SimConfig::default());
    // INQUIRY with a 36-byte allocation length but FCP_DL 255: data CTIO (DONT_RET_CTIO,
    // intermediate handle) + status CTIO with UNDER residual.
    let cdb = [0x12, 0, 0, 0, 36, 0];
    let tag = sim
        .initiator_command(ini, target, CommandSpec::read(lun0(), &cdb, 255).unwrap())
        .unwrap();
    let evs = wait_event(&mut sim, &mut t, ini, T, |e| e.tag() == Some(tag));
    let r = completed(&evs, tag);
    assert_eq!(r.status, 0);
    assert_eq!(r.residual, Residual::Under(219));
    assert_eq!(r.data.len(), 36);
    assert_eq!(&r.data[8..16], b"RSCST   ");
    // Only the status CTIO came back (the data CTIO had DONT_RET_CTIO).
    let dones = t
        .seen
        .iter()
        .filter(|s| matches!(s, Seen::CtioDone { .. }))
        .count();
    assert_eq!(dones, 1);
}

#[test]
fn check_condition_sense_reaches_the_wire_in_order() {
    let (mut sim, mut t, ini, target) = ready(SimConfig::default());
    let tag = sim
        .initiator_command(
            ini,
            target,
            CommandSpec::read(lun0(), &read10(5000, 1), BLOCK).unwrap(),
        )
        .unwrap();
    let evs = wait_event(&mut sim, &mut t, ini, T, |e| e.tag() == Some(tag));
    let r = completed(&evs, tag);
    assert_eq!(r.status, 0x02);
    assert_eq!(r.residual, Residual::Under(BLOCK));
    assert_eq!(
        r.sense.as_slice(),
        &[
            0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x21, 0x00, 0, 0, 0, 0
        ]
    );
    // Unknown opcode with a 32-byte CDB: a multi-slot ATIO (additional CDB).
    let mut cdb = vec![0u8; 32];
    cdb[0] = 0x7F;
    cdb[7] = 24;
    let tag = sim
        .initiator_command(ini, target, CommandSpec::no_data(lun0(), &cdb).unwrap())
        .unwrap();
    let evs = wait_event(&mut sim, &mut t, ini, T, |e| e.tag() == Some(tag));
    let r = completed(&evs, tag);
    assert_eq!((r.status, r.sense.as_slice()[12]), (0x02, 0x20));
    assert!(
        t.seen
            .iter()
            .any(|s| matches!(s, Seen::Command { opcode: 0x7F, .. }))
    );
}

#[test]
fn task_management_gets_its_response_code() {
    let (mut sim, mut t, ini, target) = ready(SimConfig::default());
    let tag = sim
        .initiator_tmf(ini, target, lun0(), TmFunction::LunReset)
        .unwrap();
    let evs = wait_event(&mut sim, &mut t, ini, T, |e| e.tag() == Some(tag));
    assert!(evs.iter().any(|e| matches!(e, InitiatorEvent::TmfDone { tag: g, code: Some(RspCode::Complete) } if *g == tag)));
    assert!(
        t.seen
            .iter()
            .any(|s| matches!(s, Seen::Tmf { flags: 0x10, .. }))
    );
    assert_eq!(sim.open_exchanges(), 0);
}

#[test]
fn abts_aborts_a_held_command() {
    let (mut sim, mut t, ini, target) = ready(SimConfig::default());
    t.hold_commands = true;
    let tag = sim
        .initiator_command(
            ini,
            target,
            CommandSpec::read(lun0(), &read10(0, 4), 4 * BLOCK).unwrap(),
        )
        .unwrap();
    assert!(run(&mut sim, &mut t, T, |_, t| t.open_commands() == 1));
    let xchg = t
        .seen
        .iter()
        .find_map(|s| match s {
            Seen::Command { exchange, .. } => Some(*exchange),
            _ => None,
        })
        .unwrap();
    assert_eq!(sim.open_exchanges(), 1);
    sim.initiator_abort(ini, tag).unwrap();
    let evs = wait_event(&mut sim, &mut t, ini, T, |e| {
        matches!(e, InitiatorEvent::AbortDone { .. })
    });
    assert!(
        evs.iter()
            .any(|e| matches!(e, InitiatorEvent::AbortDone { accepted: true, .. })),
        "{evs:?}"
    );
    assert_eq!(failed(&evs, tag), Some(CommandError::Aborted));
    assert!(
        t.seen
            .iter()
            .any(|s| matches!(s, Seen::Abts { to_abort, .. } if *to_abort == xchg))
    );
    assert!(t.seen.iter().any(|s| matches!(
        s,
        Seen::AbtsRespDone {
            status: 0,
            not_terminated: false
        }
    )));
    sim.run_for(Duration::from_millis(1));
    assert_eq!(sim.open_exchanges(), 0, "terminated");
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

#[test]
fn abts_for_a_finished_command_is_rejected() {
    let (mut sim, mut t, ini, target) = ready(SimConfig::default());
    // The FCP_CMND is lost on the way: the ABTS names an exchange the firmware never had.
    sim.inject(rscst_sim::ScheduledFault::DropNextFrameToHba);
    let tag = sim
        .initiator_command(
            ini,
            target,
            CommandSpec::no_data(lun0(), &[0, 0, 0, 0, 0, 0]).unwrap(),
        )
        .unwrap();
    sim.run_for(Duration::from_millis(1));
    sim.initiator_abort(ini, tag).unwrap();
    let evs = wait_event(&mut sim, &mut t, ini, T, |e| {
        matches!(e, InitiatorEvent::AbortDone { .. })
    });
    assert!(
        evs.iter().any(|e| matches!(
            e,
            InitiatorEvent::AbortDone {
                accepted: false,
                ..
            }
        )),
        "{evs:?}"
    );
    assert!(t.seen.iter().any(|s| matches!(
        s,
        Seen::Abts {
            to_abort: 0xFFFF_FFFF,
            ..
        }
    )));
}

#[test]
fn abts_under_an_outstanding_data_out_ctio_completes_it_aborted() {
    let (mut sim, mut t, ini, target) = ready(SimConfig::default());
    // A write whose data the initiator never supplies: the DATA_OUT CTIO waits.
    let tag = sim
        .initiator_command(
            ini,
            target,
            CommandSpec::write_on_demand(lun0(), &write10(0, 2), 2 * BLOCK).unwrap(),
        )
        .unwrap();
    wait_event(&mut sim, &mut t, ini, T, |e| {
        matches!(e, InitiatorEvent::XferRdy { .. })
    });
    sim.initiator_abort(ini, tag).unwrap();
    wait_event(&mut sim, &mut t, ini, T, |e| {
        matches!(e, InitiatorEvent::AbortDone { .. })
    });
    assert!(
        t.seen
            .iter()
            .any(|s| matches!(s, Seen::CtioDone { status: 0x02, .. })),
        "{:?}",
        t.seen
    );
    sim.run_for(Duration::from_millis(1));
    assert_eq!(sim.open_exchanges(), 0);
}

#[test]
fn data_supplied_on_demand_per_burst() {
    let (mut sim, mut t, ini, target) = ready(SimConfig::default());
    let data: Vec<u8> = (0..4 * BLOCK).map(|i| i as u8).collect();
    let tag = sim
        .initiator_command(
            ini,
            target,
            CommandSpec::write_on_demand(lun0(), &write10(10, 4), 4 * BLOCK).unwrap(),
        )
        .unwrap();
    let evs = wait_event(&mut sim, &mut t, ini, T, |e| {
        matches!(e, InitiatorEvent::XferRdy { .. })
    });
    let (off, len) = evs
        .iter()
        .find_map(|e| match e {
            InitiatorEvent::XferRdy { offset, len, .. } => Some((*offset, *len)),
            _ => None,
        })
        .unwrap();
    assert_eq!((off, len), (0, 4 * BLOCK));
    sim.initiator_supply_data(ini, tag, 0, &data[..1000], false)
        .unwrap();
    sim.initiator_supply_data(ini, tag, 1000, &data[1000..], true)
        .unwrap();
    let evs = wait_event(&mut sim, &mut t, ini, T, |e| {
        e.tag() == Some(tag) && matches!(e, InitiatorEvent::Completed { .. })
    });
    assert_eq!(completed(&evs, tag).status, 0);
    let mut lun = vec![0u8; data.len()];
    t.lun.read(10 * BLOCK as usize, &mut lun).unwrap();
    assert_eq!(lun, data);
}

#[test]
fn logout_with_commands_outstanding() {
    let (mut sim, mut t, ini, target) = ready(SimConfig::default());
    t.hold_commands = true;
    let tags: Vec<Tag> = (0..3)
        .map(|i| {
            sim.initiator_command(
                ini,
                target,
                CommandSpec::read(lun0(), &read10(i, 1), BLOCK).unwrap(),
            )
            .unwrap()
        })
        .collect();
    assert!(run(&mut sim, &mut t, T, |_, t| t.open_commands() == 3));
    assert_eq!(sim.open_exchanges(), 3);
    sim.initiator_logout(ini, target).unwrap();
    let evs = wait_event(&mut sim, &mut t, ini, T, |e| {
        matches!(e, InitiatorEvent::LoggedOut { .. })
    });
    for tag in tags {
        assert_eq!(failed(&evs, tag), Some(CommandError::LoggedOut));
    }
    assert!(t.seen.iter().any(|s| matches!(
        s,
        Seen::Notify {
            status: 0x46,
            subcode: 0x05,
            ..
        }
    )));
    sim.run_for(Duration::from_millis(1));
    t.poll(&mut sim);
    sim.run_for(Duration::from_millis(1));
    assert_eq!(
        sim.open_exchanges(),
        0,
        "the target terminated the logged-out exchanges"
    );
    assert!(sim.hba_logins().is_empty());
    // FCP from a port that is not logged in is answered with LOGO, no ATIO.
    assert!(
        sim.initiator_command(ini, target, CommandSpec::no_data(lun0(), &[0; 6]).unwrap())
            .is_err()
    );
}

#[test]
fn exchange_exhaustion_gives_unknown_exchange_atios() {
    let mut cfg = SimConfig::default();
    cfg.firmware.exchange_count = 2;
    let (mut sim, mut t, ini, target) = ready(cfg);
    t.hold_commands = true;
    let tags: Vec<Tag> = (0..4)
        .map(|i| {
            sim.initiator_command(
                ini,
                target,
                CommandSpec::read(lun0(), &read10(i, 1), BLOCK).unwrap(),
            )
            .unwrap()
        })
        .collect();
    let mut evs = Vec::new();
    assert!(run(&mut sim, &mut t, T, |s, _| {
        evs.extend(s.initiator_events(ini));
        evs.iter()
            .filter(|e| matches!(e, InitiatorEvent::Completed { .. }))
            .count()
            == 2
    }));
    let busy: Vec<u8> = evs
        .iter()
        .filter_map(|e| match e {
            InitiatorEvent::Completed { result, .. } => Some(result.status),
            _ => None,
        })
        .collect();
    assert_eq!(
        busy,
        vec![0x08, 0x08],
        "BUSY for the two without an exchange"
    );
    assert_eq!(
        t.seen
            .iter()
            .filter(|s| matches!(
                s,
                Seen::Busy {
                    exchange: 0xFFFF_FFFF
                }
            ))
            .count(),
        2
    );
    assert_eq!(sim.open_exchanges(), 2);
    let r = t.d.simple(&mut sim, MbxCommand::GetResourceCounts);
    assert_eq!((r.mb(1), r.mb(2)), (2, 0), "no exchange left");
    let _ = tags;
}

#[test]
fn exchange_exhaustion_firmware_busy() {
    let mut cfg = SimConfig::default();
    cfg.firmware.exchange_count = 1;
    cfg.firmware.exhaustion = rscst_sim::ExchangeExhaustion::FirmwareBusy;
    let (mut sim, mut t, ini, target) = ready(cfg);
    t.hold_commands = true;
    for i in 0..2 {
        sim.initiator_command(
            ini,
            target,
            CommandSpec::read(lun0(), &read10(i, 1), BLOCK).unwrap(),
        )
        .unwrap();
    }
    let evs = wait_event(&mut sim, &mut t, ini, T, |e| {
        matches!(e, InitiatorEvent::Completed { .. })
    });
    assert!(evs.iter().any(|e| matches!(e, InitiatorEvent::Completed { result, .. } if result.status == 0x08 && result.residual == Residual::Under(BLOCK))));
    assert!(run(&mut sim, &mut t, T, |_, t| t
        .d
        .asyncs
        .iter()
        .any(|a| a[0] == 0x8049 && a[3] == 1)));
    assert_eq!(sim.firmware_stats().commands_rejected, 1);
}

#[test]
fn atio_ring_one_slot_empty_and_backlog() {
    let (mut sim, mut d) = setup(SimConfig::default());
    d.boot(&mut sim);
    d.init(&mut sim, 64, 64, 4); // ATIO ring of 4 slots
    d.wait_ready(&mut sim);
    let mut t = MiniTarget::new(d, 64);
    let ini = sim.add_initiator(InitiatorConfig::new(0x2100_0000_c9aa_0002));
    assert!(run(&mut sim, &mut t, T, |s, _| s
        .initiator_port_id(ini)
        .is_some()));
    let target = sim.hba_port_id().unwrap();
    sim.initiator_login(ini, target).unwrap();
    assert!(run(&mut sim, &mut t, T, |s, _| s
        .initiator_logged_in(ini, target)));
    t.hold_commands = true;
    for i in 0..6 {
        sim.initiator_command(
            ini,
            target,
            CommandSpec::read(lun0(), &read10(i, 1), BLOCK).unwrap(),
        )
        .unwrap();
    }
    // Do not consume the ATIO ring: the firmware writes 3 (one slot stays empty).
    sim.run_for(Duration::from_millis(5));
    let written = sim.firmware_stats().atio_entries;
    let before = written;
    let in_ptr = t.d.qp_read(rscst_fw::regs::QueuePointer::AtioIn);
    let out = t.d.qp_read(rscst_fw::regs::QueuePointer::AtioOut);
    assert_eq!((in_ptr + 4 - out) % 4, 3, "one slot stays empty");
    // Consume: the backlog follows, the ring wraps.
    assert!(run(&mut sim, &mut t, T, |_, t| t.open_commands() == 6));
    assert_eq!(sim.firmware_stats().atio_entries, before + 3);
}

#[test]
fn response_ring_full_holds_completions_in_order() {
    let (mut sim, mut d) = setup(SimConfig::default());
    d.boot(&mut sim);
    d.init(&mut sim, 64, 4, 64); // response ring of 4 slots
    d.wait_ready(&mut sim);
    let mut t = MiniTarget::new(d, 64);
    let ini = sim.add_initiator(InitiatorConfig::new(0x2100_0000_c9aa_0003));
    assert!(run(&mut sim, &mut t, T, |s, _| s
        .initiator_port_id(ini)
        .is_some()));
    let target = sim.hba_port_id().unwrap();
    sim.initiator_login(ini, target).unwrap();
    assert!(run(&mut sim, &mut t, T, |s, _| s
        .initiator_logged_in(ini, target)));
    let tags: Vec<Tag> = (0..10)
        .map(|i| {
            sim.initiator_command(
                ini,
                target,
                CommandSpec::read(lun0(), &read10(i, 1), BLOCK).unwrap(),
            )
            .unwrap()
        })
        .collect();
    let mut evs = Vec::new();
    assert!(run(&mut sim, &mut t, Duration::from_secs(5), |s, _| {
        evs.extend(s.initiator_events(ini));
        evs.iter()
            .filter(|e| matches!(e, InitiatorEvent::Completed { .. }))
            .count()
            == 10
    }));
    for tag in tags {
        assert_eq!(completed(&evs, tag).status, 0);
    }
    assert_eq!(
        t.seen
            .iter()
            .filter(|s| matches!(s, Seen::CtioDone { status: 1, .. }))
            .count(),
        10
    );
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

#[test]
fn lip_aborts_exchanges_and_keeps_logins() {
    let (mut sim, mut t, ini, target) = ready(SimConfig::default());
    t.hold_commands = true;
    let tag = sim
        .initiator_command(
            ini,
            target,
            CommandSpec::read(lun0(), &read10(0, 1), BLOCK).unwrap(),
        )
        .unwrap();
    assert!(run(&mut sim, &mut t, T, |_, t| t.open_commands() == 1));
    sim.inject(rscst_sim::ScheduledFault::Lip);
    assert!(run(&mut sim, &mut t, T, |_, t| t
        .seen
        .iter()
        .any(|s| matches!(s, Seen::Notify { status: 0x0E, .. }))));
    assert!(t.d.asyncs.iter().any(|a| a[0] == 0x8010));
    assert_eq!(sim.hba_logins().len(), 1, "logins survive a LIP");
    let _ = tag;
}

#[test]
fn link_bounce_logs_everyone_out_and_auto_login_recovers() {
    let mut cfg = SimConfig::default();
    cfg.trace.registers = false;
    let (mut sim, mut d) = setup(cfg);
    d.bring_up(&mut sim);
    let mut t = MiniTarget::new(d, 64);
    let mut icfg = InitiatorConfig::new(0x2100_0000_c9aa_0004);
    icfg.auto_login = true;
    let ini = sim.add_initiator(icfg);
    assert!(run(&mut sim, &mut t, T, |s, _| s
        .initiator_port_id(ini)
        .is_some()));
    let target = sim.hba_port_id().unwrap();
    sim.initiator_login(ini, target).unwrap();
    assert!(run(&mut sim, &mut t, T, |s, _| s
        .initiator_logged_in(ini, target)));
    sim.inject(rscst_sim::ScheduledFault::LinkBounce(
        Duration::from_millis(50),
    ));
    assert!(
        run(&mut sim, &mut t, T, |_, t| t
            .d
            .asyncs
            .iter()
            .any(|a| a[0] == 0x8012)),
        "LOOP_DOWN"
    );
    assert!(sim.hba_logins().is_empty());
    // Link back: fabric login, LOOP_UP, the initiator logs in again by itself.
    assert!(run(&mut sim, &mut t, Duration::from_secs(2), |s, _| s
        .initiator_logged_in(ini, target)
        && s.hba_logins().len() == 1));
    let evs = sim.initiator_events(ini);
    assert!(
        evs.iter().any(|e| matches!(
            e,
            InitiatorEvent::LoggedOut {
                reason: rscst_sim::LogoutReason::TargetGone,
                ..
            }
        )),
        "{evs:?}"
    );
    let tag = sim
        .initiator_command(
            ini,
            target,
            CommandSpec::read(lun0(), &read10(1, 1), BLOCK).unwrap(),
        )
        .unwrap();
    let evs = wait_event(&mut sim, &mut t, ini, T, |e| e.tag() == Some(tag));
    assert_eq!(completed(&evs, tag).status, 0);
}

#[test]
fn iommu_fault_on_a_bad_dsd_halts_the_firmware() {
    let (mut sim, mut t, ini, target) = ready(SimConfig::default());
    t.hold_commands = true;
    sim.initiator_command(
        ini,
        target,
        CommandSpec::read(lun0(), &read10(0, 1), BLOCK).unwrap(),
    )
    .unwrap();
    assert!(run(&mut sim, &mut t, T, |_, t| t.open_commands() == 1));
    let xchg = t
        .seen
        .iter()
        .find_map(|s| match s {
            Seen::Command { exchange, .. } => Some(*exchange),
            _ => None,
        })
        .unwrap();
    // Hand-built CTIO pointing at an IOVA nobody mapped.
    let nport = *t.sessions.keys().next().unwrap();
    let x = rscst_fw::iocb::Ctio7Exchange {
        nport_handle: rscst_fw::NportHandle(nport),
        initiator_id: sim.initiator_port_id(ini).unwrap(),
        exchange_addr: rscst_fw::ExchangeAddr(xchg),
        ox_id: rscst_fw::OxId(1),
        attr: if xchg & 1 == 1 { 4 } else { 0 },
        vp_index: 0,
    };
    let dsd = rscst_fw::iocb::Dsd64 {
        address: 0xBAD0_0000,
        length: BLOCK,
    };
    let c = rscst_fw::iocb::Ctio7Repr::data(&x, 7, DataDir::DataIn, 0, BLOCK, dsd, 1)
        .unwrap()
        .with_good_status();
    let mut e = [0u8; 64];
    c.emit_bytes(&mut e).unwrap();
    t.post(&[e]);
    assert!(run(&mut sim, &mut t, T, |_, t| t
        .d
        .asyncs
        .iter()
        .any(|a| a[0] == 0x8002)));
    let faults = sim.take_iommu_faults();
    assert_eq!(faults.len(), 1);
    assert_eq!(faults[0].iova, 0xBAD0_0000);
    assert_eq!(faults[0].context, "CTIO data-in DSD");
    assert!(t.d.host_status().risc_paused());
}

#[test]
fn ctio_rule_breaking_is_caught() {
    let (mut sim, mut t, ini, target) = ready(SimConfig::default());
    t.hold_commands = true;
    sim.initiator_command(
        ini,
        target,
        CommandSpec::read(lun0(), &read10(0, 1), BLOCK).unwrap(),
    )
    .unwrap();
    assert!(run(&mut sim, &mut t, T, |_, t| t.open_commands() == 1));
    let xchg = t
        .seen
        .iter()
        .find_map(|s| match s {
            Seen::Command { exchange, .. } => Some(*exchange),
            _ => None,
        })
        .unwrap();
    let nport = *t.sessions.keys().next().unwrap();
    let attr = if xchg & 1 == 1 { 4 } else { 0 };
    let x = rscst_fw::iocb::Ctio7Exchange {
        nport_handle: rscst_fw::NportHandle(nport),
        initiator_id: sim.initiator_port_id(ini).unwrap(),
        exchange_addr: rscst_fw::ExchangeAddr(xchg),
        ox_id: rscst_fw::OxId(1),
        attr,
        vp_index: 0,
    };
    let emit = |c: rscst_fw::iocb::Ctio7Repr| {
        let mut e = [0u8; 64];
        c.emit_bytes(&mut e).unwrap();
        e
    };
    let status = |x: &rscst_fw::iocb::Ctio7Exchange, h: u32| {
        rscst_fw::iocb::Ctio7Repr::status(x, h, 0, Residual::None, &[]).unwrap()
    };
    // 1. Wrong attr: completed INVALID_RX_ID, violation.
    let mut bad = x;
    bad.attr = attr ^ 4;
    t.post(&[emit(status(&bad, 11))]);
    // 2. DATA_IN and DATA_OUT together: bounced with entry_status "invalid parameter".
    let dsd = rscst_fw::iocb::Dsd64 {
        address: t.lun.iova().0,
        length: BLOCK,
    };
    let mut both =
        rscst_fw::iocb::Ctio7Repr::data(&x, 12, DataDir::DataIn, 0, BLOCK, dsd, 1).unwrap();
    both.flags.insert(rscst_fw::iocb::Ctio7Flags::DATA_OUT);
    t.post(&[emit(both)]);
    // 3. Final status, then another CTIO after it.
    t.post(&[emit(status(&x, 13)), emit(status(&x, 14))]);
    sim.run_for(Duration::from_millis(1));
    t.poll(&mut sim);
    let v: Vec<ViolationKind> = sim.take_violations().into_iter().map(|v| v.kind).collect();
    assert!(
        v.iter()
            .any(|k| matches!(k, ViolationKind::AttrMismatch { .. })),
        "{v:?}"
    );
    assert!(
        v.iter()
            .any(|k| matches!(k, ViolationKind::StaleExchange { .. })),
        "CTIO after the final one: {v:?}"
    );
    assert!(t.seen.iter().any(|s| matches!(
        s,
        Seen::CtioDone {
            status: 0x08,
            handle: 11,
            ..
        }
    )));
    assert!(t.seen.iter().any(|s| matches!(
        s,
        Seen::Bounced {
            entry_type: 0x12,
            entry_status: 0x08
        }
    )));
    assert!(t.seen.iter().any(|s| matches!(
        s,
        Seen::CtioDone {
            status: 0x01,
            handle: 13,
            ..
        }
    )));
    assert!(t.seen.iter().any(|s| matches!(
        s,
        Seen::CtioDone {
            status: 0x08,
            handle: 14,
            ..
        }
    )));
    assert_eq!(sim.open_exchanges(), 0);
}

#[test]
fn marker_is_required_before_io() {
    let (mut sim, mut d) = setup(SimConfig::default());
    d.bring_up(&mut sim);
    let mut t = MiniTarget::new(d, 64);
    t.no_markers = true;
    let ini = sim.add_initiator(InitiatorConfig::new(0x2100_0000_c9aa_0005));
    assert!(run(&mut sim, &mut t, T, |s, _| s
        .initiator_port_id(ini)
        .is_some()));
    let target = sim.hba_port_id().unwrap();
    sim.initiator_login(ini, target).unwrap();
    assert!(run(&mut sim, &mut t, T, |s, _| s
        .initiator_logged_in(ini, target)));
    let tag = sim
        .initiator_command(ini, target, CommandSpec::no_data(lun0(), &[0; 6]).unwrap())
        .unwrap();
    wait_event(&mut sim, &mut t, ini, T, |e| e.tag() == Some(tag));
    let v = sim.take_violations();
    assert!(
        matches!(
            v[0].kind,
            ViolationKind::IocbBeforeMarker { entry_type: 0x12 }
        ),
        "{v:?}"
    );
}

/// A held command's exchange and what a CTIO7 for it needs.
fn held_exchange(
    sim: &mut Sim,
    t: &mut MiniTarget,
    ini: InitiatorId,
    target: PortId,
    lba: u32,
) -> rscst_fw::iocb::Ctio7Exchange {
    let before = t
        .seen
        .iter()
        .filter(|s| matches!(s, Seen::Command { .. }))
        .count();
    sim.initiator_command(
        ini,
        target,
        CommandSpec::read(lun0(), &read10(lba, 1), BLOCK).unwrap(),
    )
    .unwrap();
    assert!(run(sim, t, T, |_, t| t
        .seen
        .iter()
        .filter(|s| matches!(s, Seen::Command { .. }))
        .count()
        > before));
    let xchg = t
        .seen
        .iter()
        .rev()
        .find_map(|s| match s {
            Seen::Command { exchange, .. } => Some(*exchange),
            _ => None,
        })
        .unwrap();
    rscst_fw::iocb::Ctio7Exchange {
        nport_handle: rscst_fw::NportHandle(*t.sessions.keys().next().unwrap()),
        initiator_id: sim.initiator_port_id(ini).unwrap(),
        exchange_addr: rscst_fw::ExchangeAddr(xchg),
        ox_id: rscst_fw::OxId(0),
        attr: if xchg & 1 == 1 { 4 } else { 0 },
        vp_index: 0,
    }
}

fn status_ctio(x: &rscst_fw::iocb::Ctio7Exchange, handle: u32) -> [u8; 64] {
    let mut e = [0u8; 64];
    rscst_fw::iocb::Ctio7Repr::status(x, handle, 0, Residual::None, &[])
        .unwrap()
        .emit_bytes(&mut e)
        .unwrap();
    e
}

fn marker_violations(sim: &mut Sim) -> usize {
    sim.take_violations()
        .into_iter()
        .filter(|v| matches!(v.kind, ViolationKind::IocbBeforeMarker { .. }))
        .count()
}

#[test]
fn marker_check_goes_by_doorbell_position() {
    let mut cfg = SimConfig::default();
    // A slow firmware: a request IOCB is processed 1 ms after its doorbell.
    cfg.firmware.timing.iocb = Duration::from_millis(1);
    let (mut sim, mut t, ini, target) = ready(cfg);
    t.hold_commands = true;
    // 1. The race: a CTIO7 doorbelled before a LIP, processed after the target
    //    acknowledged the LIP (and queued its MARKER behind the CTIO7). The target
    //    could not have known: no violation.
    let x = held_exchange(&mut sim, &mut t, ini, target, 0);
    t.post(&[status_ctio(&x, 0x2000_0100)]);
    sim.inject(rscst_sim::ScheduledFault::Lip);
    let acked = sim.now();
    assert!(run(&mut sim, &mut t, T, |s, _| s.now()
        > acked + Duration::from_millis(5)));
    assert!(
        t.seen.iter().any(|s| matches!(
            s,
            Seen::CtioDone {
                handle: 0x2000_0100,
                status: 0x0E,
                ..
            }
        )),
        "the CTIO7 was processed after the LIP: {:?}",
        t.seen
    );
    assert_eq!(marker_violations(&mut sim), 0);
    // 2. The target's MARKER is through: I/O flows without a violation.
    let x = held_exchange(&mut sim, &mut t, ini, target, 1);
    t.post(&[status_ctio(&x, 0x2000_0101)]);
    assert!(run(&mut sim, &mut t, T, |_, t| t.seen.iter().any(
        |s| matches!(
            s,
            Seen::CtioDone {
                handle: 0x2000_0101,
                status: 0x01,
                ..
            }
        )
    )));
    assert_eq!(marker_violations(&mut sim), 0);
    // 3. A target that sends no MARKER after acknowledging a LIP: the first CTIO7 it
    //    doorbells afterwards is a violation.
    t.no_markers = true;
    let x = held_exchange(&mut sim, &mut t, ini, target, 2);
    sim.inject(rscst_sim::ScheduledFault::Lip);
    let lip = sim.now();
    assert!(run(&mut sim, &mut t, T, |s, _| s.now()
        > lip + Duration::from_millis(5)));
    assert_eq!(marker_violations(&mut sim), 0, "nothing doorbelled yet");
    t.post(&[status_ctio(&x, 0x2000_0102)]);
    let posted = sim.now();
    assert!(run(&mut sim, &mut t, T, |s, _| s.now()
        > posted + Duration::from_millis(5)));
    assert_eq!(marker_violations(&mut sim), 1);
}

#[test]
fn transfers_take_the_link_time() {
    // 1 MiB each way, in 2 KiB frames (+ 24 header + 36 SOF/CRC/EOF/gap bytes).
    let bytes = 2048 * BLOCK;
    let wire = |rate: f64| Duration::from_secs_f64(bytes as f64 * 2108.0 / 2048.0 / rate);
    for (chip, rate) in [
        (rscst_sim::ChipModel::isp2532(), 800e6),
        (rscst_sim::ChipModel::isp27xx(), 3200e6),
    ] {
        let mut cfg = SimConfig::with_chip(chip);
        cfg.fabric.bytes_per_sec = rate as u64;
        let (mut sim, mut t, ini, target) = ready(cfg);
        let r = sim
            .initiator_command(
                ini,
                target,
                CommandSpec::read(lun0(), &read10(0, 2048), bytes).unwrap(),
            )
            .unwrap();
        let evs = wait_event(&mut sim, &mut t, ini, T, |e| e.tag() == Some(r));
        let read = completed(&evs, r).latency;
        let w = sim
            .initiator_command(
                ini,
                target,
                CommandSpec::write(lun0(), &write10(0, 2048), vec![7; bytes as usize]).unwrap(),
            )
            .unwrap();
        let evs = wait_event(&mut sim, &mut t, ini, T, |e| e.tag() == Some(w));
        let write = completed(&evs, w).latency;
        for (what, l) in [("read", read), ("write", write)] {
            assert!(
                l >= wire(rate) && l < wire(rate) * 3 / 2 + Duration::from_micros(100),
                "{chip}: {what} of 1 MiB took {l:?} at {rate} B/s"
            );
        }
    }
}

#[test]
fn fabric_login_logout_mailboxes_and_loginout_iocb() {
    let (mut sim, mut t, ini, target) = ready(SimConfig::default());
    let ini_pid = sim.initiator_port_id(ini).unwrap();
    let handle = *t.sessions.keys().next().unwrap();
    // LOGIN_FABRIC_PORT of a logged-in port under another handle: port id used.
    let mut m = Mailboxes::new(MbxCommand::LoginFabricPort);
    m.0[1] = 0x20;
    m.0[2] = ini_pid.domain() as u16;
    m.0[3] = (ini_pid.area() as u16) << 8 | ini_pid.al_pa() as u16;
    let r = t.d.mailbox(&mut sim, &m);
    assert_eq!((r.status(), r.mb(1)), (0x4007, handle));
    // A second initiator that never logged in to us: the HBA logs in to it (PLOGI).
    let ini2 = sim.add_initiator(InitiatorConfig::new(0x2100_0000_c9aa_0777));
    assert!(run(&mut sim, &mut t, T, |s, _| s
        .initiator_port_id(ini2)
        .is_some()));
    let pid2 = sim.initiator_port_id(ini2).unwrap();
    m.0[2] = pid2.domain() as u16;
    m.0[3] = (pid2.area() as u16) << 8 | pid2.al_pa() as u16;
    let r = t.d.mailbox(&mut sim, &m);
    assert_eq!(r.status(), 0x4000, "PLOGI accepted");
    assert!(
        sim.hba_logins()
            .iter()
            .any(|&(h, p, st)| h == 0x20 && p == pid2 && st == 4)
    );
    // LOGOUT_FABRIC_PORT.
    let mut lo = Mailboxes::new(MbxCommand::LogoutFabricPort);
    lo.0[1] = 0x20;
    assert_eq!(t.d.mailbox(&mut sim, &lo).status(), 0x4000);
    assert_eq!(
        t.d.mailbox(&mut sim, &lo).status(),
        0x400A,
        "not logged in any more"
    );
    // A LOGINOUT IOCB (LOGO) ends the first initiator's login from the target side.
    let mut lo_req =
        rscst_fw::iocb::LoginoutRepr::logout(0x1234, rscst_fw::NportHandle(handle), ini_pid);
    lo_req.flags = rscst_fw::iocb::loginout::LoginoutFlags::FREE_NPORT_HANDLE; // explicit LOGO
    let mut e = [0u8; 64];
    lo_req.emit_bytes(&mut e).unwrap();
    t.post(&[e]);
    let evs = wait_event(&mut sim, &mut t, ini, T, |e| {
        matches!(e, InitiatorEvent::LoggedOut { .. })
    });
    assert!(evs.iter().any(|e| matches!(e, InitiatorEvent::LoggedOut { reason: rscst_sim::LogoutReason::ByTarget, target: tg } if *tg == target)));
    assert!(sim.hba_logins().is_empty());
    // RSCNs reached the firmware as async events when the second initiator joined.
    assert!(t.d.asyncs.iter().any(|a| a[0] == 0x8015));
}

#[test]
fn iocbs_through_mailbox_and_ring() {
    let (mut sim, mut t, _ini, _target) = ready(SimConfig::default());
    // MBX_IOCB on the request ring: GET_FIRMWARE_STATE answered in the returned entry.
    let m = rscst_fw::iocb::MbxIocbRepr::from_mailboxes(
        0x77,
        &Mailboxes::new(MbxCommand::GetFirmwareState),
    );
    let mut e = [0u8; 64];
    m.emit_bytes(&mut e).unwrap();
    t.post(&[e]);
    sim.run_for(Duration::from_millis(1));
    let r = t.d.rings.as_ref().unwrap();
    let idx =
        (t.d.qp_read(rscst_fw::regs::QueuePointer::ResponseIn) as u16 + r.rsp_len - 1) % r.rsp_len;
    let mut b = [0u8; 64];
    r.rsp.read(idx as usize * 64, &mut b).unwrap();
    let got = rscst_fw::iocb::MbxIocbRepr::parse_bytes(&b).unwrap();
    assert_eq!((got.handle, got.mb[0], got.mb[1]), (0x77, 0x4000, 3));
    t.poll(&mut sim);
    // IOCB_COMMAND_A64 with a MARKER: executed in place.
    let buf = t.d.p.dma().alloc(64, 64).unwrap();
    let mut mk = [0u8; 64];
    rscst_fw::iocb::MarkerRepr::sync_all(0)
        .emit_bytes(&mut mk)
        .unwrap();
    buf.write(0, &mk).unwrap();
    let r =
        t.d.mailbox(&mut sim, &Mailboxes::iocb_command_a64(buf.iova().0));
    assert_eq!(r.status(), 0x4000);
    // An unknown entry type comes back with entry_status B2.
    buf.write(0, &[0x77; 64]).unwrap();
    assert_eq!(
        t.d.mailbox(&mut sim, &Mailboxes::iocb_command_a64(buf.iova().0))
            .status(),
        0x4000
    );
    let mut back = [0u8; 64];
    buf.read(0, &mut back).unwrap();
    assert_ne!(back[3] & 0x04, 0);
    // CTIO_CRC2 (T10-PI) is not modelled: bounced as an invalid entry type.
    let mut crc2 = [0u8; 64];
    crc2[0] = 0x7A;
    crc2[1] = 1;
    t.post(&[crc2]);
    sim.run_for(Duration::from_millis(1));
    t.poll(&mut sim);
    assert!(t.seen.iter().any(|s| matches!(
        s,
        Seen::Bounced {
            entry_type: 0x7A,
            entry_status: 0x04
        }
    )));
}

#[test]
fn initiate_lip_and_stop_firmware() {
    let (mut sim, mut t, _ini, _target) = ready(SimConfig::default());
    let r = t.d.simple(&mut sim, MbxCommand::InitiateLip);
    assert_eq!(r.status(), 0x4000);
    assert!(run(&mut sim, &mut t, T, |_, t| t
        .d
        .asyncs
        .iter()
        .any(|a| a[0] == 0x8010)));
    assert!(run(&mut sim, &mut t, T, |_, t| t.seen.iter().any(
        |s| matches!(
            s,
            Seen::Notify {
                status: 0x0E,
                handle: 0xFFFF,
                ..
            }
        )
    )));
    let r = t.d.simple(&mut sim, MbxCommand::StopFirmware);
    assert_eq!((r.status(), r.int_type()), (0x4000, 0x10));
    let r = t.d.simple(&mut sim, MbxCommand::GetFirmwareState);
    assert_eq!(
        (r.status(), r.int_type()),
        (0x4001, 0x02),
        "back in the boot ROM"
    );
}

#[test]
fn isp27xx_target_mode_with_abts_on_the_atio_queue() {
    let (mut sim, mut d) = setup(SimConfig::with_chip(rscst_sim::ChipModel::isp27xx()));
    d.boot(&mut sim);
    // Linux default on 27xx: ABTS_RECV to the ATIO queue (SET_FIRMWARE_OPTION word 2 B11).
    let r = d.mailbox(&mut sim, &Mailboxes::set_firmware_option([0, 1 << 11, 0]));
    assert_eq!(r.status(), 0x4000);
    assert_eq!(d.init(&mut sim, 128, 128, 128).status(), 0x4000);
    d.wait_ready(&mut sim);
    let mut t = MiniTarget::new(d, 256);
    let ini = sim.add_initiator(InitiatorConfig::new(0x2100_0000_c9aa_2700));
    assert!(run(&mut sim, &mut t, T, |s, _| s
        .initiator_port_id(ini)
        .is_some()));
    let target = sim.hba_port_id().unwrap();
    sim.initiator_login(ini, target).unwrap();
    assert!(run(&mut sim, &mut t, T, |s, _| s
        .initiator_logged_in(ini, target)));
    let data: Vec<u8> = (0..2 * BLOCK).map(|i| (i * 13) as u8).collect();
    let w = sim
        .initiator_command(
            ini,
            target,
            CommandSpec::write(lun0(), &write10(3, 2), data.clone()).unwrap(),
        )
        .unwrap();
    wait_event(&mut sim, &mut t, ini, T, |e| e.tag() == Some(w));
    let r = sim
        .initiator_command(
            ini,
            target,
            CommandSpec::read(lun0(), &read10(3, 2), 2 * BLOCK).unwrap(),
        )
        .unwrap();
    let evs = wait_event(&mut sim, &mut t, ini, T, |e| e.tag() == Some(r));
    assert_eq!(completed(&evs, r).data, data);
    t.hold_commands = true;
    let tag = sim
        .initiator_command(
            ini,
            target,
            CommandSpec::read(lun0(), &read10(0, 1), BLOCK).unwrap(),
        )
        .unwrap();
    assert!(run(&mut sim, &mut t, T, |_, t| t.open_commands() == 1));
    sim.initiator_abort(ini, tag).unwrap();
    wait_event(&mut sim, &mut t, ini, T, |e| {
        matches!(e, InitiatorEvent::AbortDone { accepted: true, .. })
    });
    // 27xx interrupt types: ATIO updates are 0x1E (or 0x1D with the response queue).
    assert!(
        t.d.queue_ints
            .iter()
            .any(|hs| matches!(hs & 0xFF, 0x1E | 0x1D))
    );
    assert!(!t.d.queue_ints.iter().any(|hs| hs & 0xFF == 0x1C));
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

#[test]
fn mid_initialize_firmware() {
    let (mut sim, mut d) = setup(SimConfig::default());
    d.boot(&mut sim);
    // A MID ICB: the 128-byte ICB followed by the VP count (no VPs).
    let icb = d.p.dma().alloc(rscst_fw::icb::MID_ICB_LEN, 64).unwrap();
    let rings = d.p.dma().alloc(3 * 65 * 64, 4096).unwrap();
    let repr = rscst_fw::icb::IcbRepr::target_only(
        d.gen_info,
        rscst_fw::Wwn::from_u64(0x2100_0024_ff00_0009),
        rscst_fw::Wwn::from_u64(0x2000_0024_ff00_0009),
        rscst_fw::icb::RingConfig {
            address: rings.iova().0,
            length: 64,
        },
        rscst_fw::icb::RingConfig {
            address: rings.iova().0 + 65 * 64,
            length: 64,
        },
        rscst_fw::icb::RingConfig {
            address: rings.iova().0 + 130 * 64,
            length: 64,
        },
    );
    let mut b = [0u8; 128];
    repr.emit(&mut rscst_fw::icb::Icb::new_unchecked(&mut b[..]))
        .unwrap();
    icb.write(0, &b).unwrap();
    let r = d.mailbox(
        &mut sim,
        &Mailboxes::initialize_firmware(icb.iova().0, true),
    );
    assert_eq!(r.status(), 0x4000);
    d.wait_ready(&mut sim);
    assert_eq!(sim.hba_port_id(), Some(PortId::from_parts(1, 1, 0)));
}

/// Hand-built CTIO7s in every form, against held commands, checked at the initiator.
#[test]
fn every_ctio7_form() {
    use rscst_fw::iocb::ctio7::ScsiStatusFlags;
    use rscst_fw::iocb::{
        Ctio7Exchange, Ctio7Flags, Ctio7Mode, Ctio7Mode1, Ctio7Repr, Dsd64, ScsiStatusWord,
    };
    let (mut sim, mut t, ini, target) = ready(SimConfig::default());
    t.hold_commands = true;
    let nport = *t.sessions.keys().next().unwrap();
    let ini_pid = sim.initiator_port_id(ini).unwrap();
    // Issue a command and get its exchange for hand-made CTIOs.
    let issue = |sim: &mut Sim, t: &mut MiniTarget, spec: CommandSpec| -> (Tag, Ctio7Exchange) {
        let before = t.seen.len();
        let tag = sim.initiator_command(ini, target, spec).unwrap();
        assert!(run(sim, t, T, |_, t| t.seen[before..]
            .iter()
            .any(|s| matches!(s, Seen::Command { .. }))));
        let xchg = t.seen[before..]
            .iter()
            .find_map(|s| match s {
                Seen::Command { exchange, .. } => Some(*exchange),
                _ => None,
            })
            .unwrap();
        let x = Ctio7Exchange {
            nport_handle: rscst_fw::NportHandle(nport),
            initiator_id: ini_pid,
            exchange_addr: rscst_fw::ExchangeAddr(xchg),
            ox_id: rscst_fw::OxId(0),
            attr: if xchg & 1 == 1 { 4 } else { 0 },
            vp_index: 0,
        };
        (tag, x)
    };
    let emit = |c: &Ctio7Repr| {
        let mut e = [0u8; 64];
        c.emit_bytes(&mut e).unwrap();
        e
    };
    let pattern: Vec<u8> = (0..4 * BLOCK).map(|i| (i * 31 + 7) as u8).collect();
    t.lun.write(0, &pattern).unwrap();
    let base = t.lun.iova().0;

    // 1. Data in two CTIOs with increasing relative offsets, then a mode-0 status-only CTIO
    //    with GOOD and CONFORM_REQ.
    let (tag, x) = issue(
        &mut sim,
        &mut t,
        CommandSpec::read(lun0(), &read10(0, 4), 4 * BLOCK).unwrap(),
    );
    let a = Ctio7Repr::data(
        &x,
        101,
        DataDir::DataIn,
        0,
        2 * BLOCK,
        Dsd64 {
            address: base,
            length: 2 * BLOCK,
        },
        1,
    )
    .unwrap();
    let b = Ctio7Repr::data(
        &x,
        102,
        DataDir::DataIn,
        2 * BLOCK,
        2 * BLOCK,
        Dsd64 {
            address: base + 2 * BLOCK as u64,
            length: 2 * BLOCK,
        },
        1,
    )
    .unwrap();
    let mut st = Ctio7Repr::data(&x, 103, DataDir::DataIn, 0, 0, Dsd64::default(), 0).unwrap();
    st.flags = Ctio7Flags::SEND_STATUS | Ctio7Flags::CONFORM_REQ;
    t.post(&[emit(&a), emit(&b), emit(&st)]);
    let evs = wait_event(&mut sim, &mut t, ini, T, |e| e.tag() == Some(tag));
    let r = completed(&evs, tag);
    assert_eq!(r.data, pattern);
    assert!(r.rsp_flags.contains(rscst_fw::fc::FcpRspFlags::CONF_REQ));
    // Three completions (no DONT_RET_CTIO), in order.
    let handles: Vec<u32> = t
        .seen
        .iter()
        .filter_map(|s| match s {
            Seen::CtioDone { handle, .. } if (101..=103).contains(handle) => Some(*handle),
            _ => None,
        })
        .collect();
    assert_eq!(handles, vec![101, 102, 103]);

    // 2. Mode 1: CHECK CONDITION with sense, OVER residual.
    let (tag, x) = issue(
        &mut sim,
        &mut t,
        CommandSpec::no_data(lun0(), &[0x00, 0, 0, 0, 0, 0]).unwrap(),
    );
    let sense = [0x72, 0x06, 0x29, 0x00, 0, 0, 0, 0];
    let mut c = Ctio7Repr::status(&x, 201, 0x02, rscst_fw::fc::Residual::Over(7), &sense).unwrap();
    c.flags.insert(Ctio7Flags::DONT_RET_CTIO);
    t.post(&[emit(&c)]);
    let evs = wait_event(&mut sim, &mut t, ini, T, |e| e.tag() == Some(tag));
    let r = completed(&evs, tag);
    assert_eq!(
        (r.status, r.residual, r.sense.as_slice()),
        (0x02, rscst_fw::fc::Residual::Over(7), &sense[..])
    );
    sim.run_for(Duration::from_micros(50));
    t.poll(&mut sim);
    assert!(
        !t.seen
            .iter()
            .any(|s| matches!(s, Seen::CtioDone { handle: 201, .. })),
        "DONT_RET_CTIO on success: not returned"
    );

    // 3. Mode 1 with response info and sense together.
    let (tag, x) = issue(
        &mut sim,
        &mut t,
        CommandSpec::no_data(lun0(), &[0x00, 0, 0, 0, 0, 0]).unwrap(),
    );
    let mut m1 = Ctio7Mode1 {
        response_len: 8,
        sense_length: 8,
        ..Default::default()
    };
    m1.data[3] = 0;
    m1.data[8..16].copy_from_slice(&[0x70, 0, 0x0B, 0, 0, 0, 0, 0]);
    let mut c = Ctio7Repr::status(&x, 301, 0x02, rscst_fw::fc::Residual::None, &[]).unwrap();
    c.mode = Ctio7Mode::Mode1(m1);
    c.scsi_status = ScsiStatusWord {
        status: 0x02,
        flags: ScsiStatusFlags::RSP_INFO_VALID | ScsiStatusFlags::SENSE_VALID,
    };
    t.post(&[emit(&c)]);
    let evs = wait_event(&mut sim, &mut t, ini, T, |e| e.tag() == Some(tag));
    let r = completed(&evs, tag);
    assert_eq!(r.rsp_code, Some(RspCode::Complete));
    assert_eq!(r.sense.as_slice(), &[0x70, 0, 0x0B, 0, 0, 0, 0, 0]);

    // 4. DONT_RET_CTIO on a CTIO that fails: returned (with the error).
    let (tag, x) = issue(
        &mut sim,
        &mut t,
        CommandSpec::write_on_demand(lun0(), &write10(8, 1), BLOCK).unwrap(),
    );
    let mut d = Ctio7Repr::data(
        &x,
        401,
        DataDir::DataOut,
        0,
        BLOCK,
        Dsd64 {
            address: base,
            length: BLOCK,
        },
        1,
    )
    .unwrap();
    d.flags.insert(Ctio7Flags::DONT_RET_CTIO);
    t.post(&[emit(&d)]);
    wait_event(
        &mut sim,
        &mut t,
        ini,
        T,
        |e| matches!(e, InitiatorEvent::XferRdy { tag: g, .. } if *g == tag),
    );
    // 5. TERMINATE while it waits for data: the data-out CTIO completes ABORTED (and is
    //    returned despite DONT_RET_CTIO), the terminate completes OK, no frame.
    let term = Ctio7Repr::terminate(&x);
    t.post(&[emit(&term)]);
    sim.run_for(Duration::from_micros(100));
    t.poll(&mut sim);
    assert!(t.seen.iter().any(|s| matches!(
        s,
        Seen::CtioDone {
            handle: 401,
            status: 0x02,
            ..
        }
    )));
    assert!(t.seen.iter().any(|s| matches!(s, Seen::CtioDone { status: 0x01, handle, .. } if rscst_fw::iocb::handle::is_skip(*handle))));
    assert_eq!(sim.open_exchanges(), 0);
    // The initiator hears nothing (no frame for a terminate); it times out later.
    assert_eq!(sim.initiator_outstanding(ini), 1);
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}
