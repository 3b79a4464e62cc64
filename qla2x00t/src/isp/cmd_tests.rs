//! Command path, sessions, TMF, ABTS, recovery: the driver alone, driven at
//! the IOCB level by a test playing firmware, with a recording core.

use std::vec::Vec;

use rscst_core::{
    CmdHandle, CmdRef, Data, DataDirection, Rejected, Residual, ScsiStatus, Seg, SessionHandle,
    Status, TaskAttr, TaskTag, TmfFunction, TmfHandle, TmfRef, TmfResponse, TmfResponseCode,
    TransferError, Transport,
};
use rscst_fw::fc::bls::BaAccRepr;
use rscst_fw::fc::els::ElsOpcode;
use rscst_fw::fc::fcp::{DataDir, FcpCmndRepr, TmFunction};
use rscst_fw::fc::header::{FCtl, FcHeaderRepr, FcType, RCtl};
use rscst_fw::iocb::{
    AbtsRecvRepr, AbtsRespCompletionRepr, AbtsRespRepr, Atio7Repr, BlsPayload, ContinueA64Repr,
    Ctio7CompletionRepr, Ctio7Flags, Ctio7Mode, Ctio7Repr, CtioStatus, EntryStatus,
    ImmedNotifyRepr, IocbStatus, NotifyAckCompletionRepr, NotifyAckFlags, NotifyAckRepr,
    NotifyAckStatus, NotifyStatus,
};
use rscst_fw::{ExchangeAddr, Lun, NportHandle, OxId, PortId, Wwn};

use super::harness::{Call, Fw, HIsp, HStorage, RecCore, online};
use crate::event::{Event, LogoutReason};

const INIT: u32 = 0x010400;
const INIT_WWPN: u64 = 0x2100_0024_ff00_0001;
const NPORT: u16 = 0x81;

fn notify_els(op: ElsOpcode, xchg: u32) -> [u8; 64] {
    let mut n = ImmedNotifyRepr::els(
        op,
        NportHandle(NPORT),
        PortId::new(INIT),
        Wwn::from_u64(INIT_WWPN),
        ExchangeAddr(xchg),
        0x77,
    );
    if op == ElsOpcode::Prli {
        n.els_specific[..2].copy_from_slice(&0x0020u16.to_le_bytes());
    }
    let mut e = [0u8; 64];
    n.emit_bytes(&mut e).unwrap();
    e
}

fn ack_done(fw: &mut Fw, isp: &HIsp<'_>, req: &[u8; 64]) {
    let a = NotifyAckRepr::parse_bytes(req).unwrap();
    let c = NotifyAckCompletionRepr::for_request(&a, NotifyAckStatus::Success);
    let mut e = [0u8; 64];
    c.emit_bytes(&mut e).unwrap();
    fw.respond(isp, &e);
}

/// PLOGI + PRLI: the session exists in the core; returns its handle.
fn login(fw: &mut Fw, isp: &mut HIsp<'_>, core: &mut RecCore) -> SessionHandle {
    fw.atio(isp, &notify_els(ElsOpcode::Plogi, 0x9001));
    fw.poll(isp, core);
    let r = fw.requests(isp);
    assert_eq!(r.len(), 1);
    let a = NotifyAckRepr::parse_bytes(&r[0]).unwrap();
    assert_eq!(a.status, NotifyStatus::Els);
    assert_eq!(a.status_subcode, 0x03);
    assert!(!a.flags.contains(NotifyAckFlags::TERMINATE));
    ack_done(fw, isp, &r[0]);
    fw.atio(isp, &notify_els(ElsOpcode::Prli, 0x9002));
    fw.poll(isp, core);
    let r = fw.requests(isp);
    assert_eq!(r.len(), 1);
    assert_eq!(
        NotifyAckRepr::parse_bytes(&r[0]).unwrap().status_subcode,
        0x20
    );
    ack_done(fw, isp, &r[0]);
    fw.poll(isp, core);
    assert_eq!(core.calls.remove(0), Call::CreateSession(INIT_WWPN));
    assert_eq!(isp.handles_in_use(), 0, "NOTIFY_ACK handles returned");
    isp.sessions().next().unwrap().core.unwrap()
}

fn atio(xchg: u32, cdb: &[u8], dir: DataDir, len: u32) -> [u8; 64] {
    let fcp = FcpCmndRepr::command(Lun::from_index(1).unwrap(), cdb, dir, len).unwrap();
    let mut a = Atio7Repr::new(
        ExchangeAddr(xchg),
        PortId::new(INIT),
        PortId::new(0x010200),
        OxId(0x4000u16.wrapping_add(xchg as u16)),
        fcp,
    );
    a.attr = 2;
    let mut e = [0u8; 64];
    a.emit_bytes(&mut e).unwrap();
    e
}

fn complete(fw: &mut Fw, isp: &HIsp<'_>, req: &[u8; 64], status: CtioStatus) {
    let c = Ctio7Repr::parse_bytes(req).unwrap();
    let done = Ctio7CompletionRepr::for_request(&c, status);
    let mut e = [0u8; 64];
    done.emit_bytes(&mut e).unwrap();
    fw.respond(isp, &e);
}

/// A command submitted to the core: returns its CmdRef.
#[allow(clippy::too_many_arguments)]
fn submit(
    fw: &mut Fw,
    isp: &mut HIsp<'_>,
    core: &mut RecCore,
    s: SessionHandle,
    xchg: u32,
    cdb: &[u8],
    dir: DataDir,
    len: u32,
) -> CmdRef {
    fw.atio(isp, &atio(xchg, cdb, dir, len));
    fw.poll(isp, core);
    match core.calls.last() {
        Some(Call::Submit { tag, .. }) => assert_eq!(*tag, xchg as u64),
        c => panic!("no submit: {c:?}"),
    }
    let n = core.next_cmd;
    CmdRef {
        handle: CmdHandle::from_u32(((n - 1) % 8) as u32 | (n as u32) << 16),
        session: s,
        tag: TaskTag(xchg as u64),
    }
}

const GOOD: Status<'static> = Status {
    status: ScsiStatus::Good,
    sense: &[],
    residual: Residual::None,
};

#[test]
fn login_and_read_good_status_in_one_ctio() {
    let mut st = HStorage::new();
    let mut core = RecCore::default();
    let (mut isp, mut fw) = online(&mut st, &mut core);
    let s = login(&mut fw, &mut isp, &mut core);
    let cdb = [0x28, 0, 0, 0, 0, 0x10, 0, 0, 8, 0];
    let cmd = submit(
        &mut fw,
        &mut isp,
        &mut core,
        s,
        0x100,
        &cdb,
        DataDir::DataIn,
        4096,
    );
    assert_eq!(
        core.calls[0],
        Call::Submit {
            tag: 0x100,
            lun: 0x0001_0000_0000_0000,
            cdb0: 0x28,
            len: 4096,
            dir: DataDirection::In,
            attr: TaskAttr::Simple
        }
    );
    // 7 segments: CTIO7 + 2 CONTINUE_A64, one doorbell.
    let segs: Vec<Seg> = (0..7)
        .map(|i| Seg {
            addr: 0x8000_0000 + i * 0x1000,
            len: if i == 6 { 4096 - 6 * 512 } else { 512 },
        })
        .collect();
    let doorbells = isp.stats().doorbells;
    isp.queue_data_in(
        cmd,
        &Data {
            offset: 0,
            segs: &segs,
        },
        Some(&GOOD),
    )
    .unwrap();
    isp.flush();
    assert_eq!(isp.stats().doorbells, doorbells + 1);
    let r = fw.requests(&isp);
    assert_eq!(r.len(), 3);
    let c = Ctio7Repr::parse_bytes(&r[0]).unwrap();
    assert!(
        c.flags
            .contains(Ctio7Flags::DATA_IN | Ctio7Flags::SEND_STATUS)
    );
    assert!(!c.flags.contains(Ctio7Flags::DONT_RET_CTIO));
    assert_eq!((c.entry_count, c.dseg_count, c.attr), (3, 7, 2));
    assert_eq!(c.exchange_addr, ExchangeAddr(0x100));
    assert_eq!(c.nport_handle, NportHandle(NPORT));
    assert_eq!(c.initiator_id, PortId::new(INIT));
    assert_eq!(c.ox_id, OxId(0x4100));
    let Ctio7Mode::Mode0(m) = c.mode else {
        panic!()
    };
    assert_eq!((m.relative_offset, m.transfer_length), (0, 4096));
    assert_eq!(m.dsd.address, 0x8000_0000);
    let k = ContinueA64Repr::parse_bytes(&r[2]).unwrap();
    assert_eq!(k.dsds[0].address, 0x8000_6000);
    complete(&mut fw, &isp, &r[0], CtioStatus::Success);
    fw.poll(&mut isp, &mut core);
    assert_eq!(
        core.calls.last(),
        Some(&Call::ResponseSent(cmd.handle, Ok(())))
    );
    assert_eq!((isp.commands_in_flight(), isp.handles_in_use()), (0, 0));
    assert_eq!(isp.stats().bytes_in, 4096);
    assert_eq!(isp.stats().bytes_copied, 0);
}

#[test]
fn read_with_check_condition_is_data_then_status() {
    let mut st = HStorage::new();
    let mut core = RecCore::default();
    let (mut isp, mut fw) = online(&mut st, &mut core);
    let s = login(&mut fw, &mut isp, &mut core);
    let cmd = submit(
        &mut fw,
        &mut isp,
        &mut core,
        s,
        0x101,
        &[0x28; 10],
        DataDir::DataIn,
        8192,
    );
    let sense = [
        0x70, 0, 0x03, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x11, 0x00, 0, 0, 0, 0,
    ];
    let status = Status {
        status: ScsiStatus::CheckCondition,
        sense: &sense,
        residual: Residual::Under(4096),
    };
    let seg = [Seg {
        addr: 0x9000_0000,
        len: 4096,
    }];
    isp.queue_data_in(
        cmd,
        &Data {
            offset: 0,
            segs: &seg,
        },
        Some(&status),
    )
    .unwrap();
    isp.flush();
    let r = fw.requests(&isp);
    assert_eq!(r.len(), 2, "data CTIO + status CTIO in one submission");
    let d = Ctio7Repr::parse_bytes(&r[0]).unwrap();
    assert!(
        d.flags
            .contains(Ctio7Flags::DATA_IN | Ctio7Flags::DONT_RET_CTIO)
    );
    assert!(!d.flags.contains(Ctio7Flags::SEND_STATUS));
    assert_ne!(d.handle & crate::handle::INTERMEDIATE, 0);
    let st1 = Ctio7Repr::parse_bytes(&r[1]).unwrap();
    assert!(st1.flags.contains(Ctio7Flags::SEND_STATUS));
    assert_eq!(st1.residual, 4096);
    assert_eq!(st1.scsi_status.to_u16(), 0x0002 | 1 << 9 | 1 << 11);
    let Ctio7Mode::Mode1(m) = st1.mode else {
        panic!()
    };
    assert_eq!(m.sense(), &sense);
    // The raw IOCB holds the sense dword-reversed (gotcha 3).
    assert_eq!(r[1][0x28..0x2C], [0, 0x03, 0, 0x70]);
    assert_eq!(st1.handle, d.handle & !crate::handle::INTERMEDIATE);
    complete(&mut fw, &isp, &r[1], CtioStatus::Success);
    fw.poll(&mut isp, &mut core);
    assert_eq!(
        core.calls.last(),
        Some(&Call::ResponseSent(cmd.handle, Ok(())))
    );
    assert_eq!(isp.handles_in_use(), 0);
}

#[test]
fn write_then_status() {
    let mut st = HStorage::new();
    let mut core = RecCore::default();
    let (mut isp, mut fw) = online(&mut st, &mut core);
    let s = login(&mut fw, &mut isp, &mut core);
    let cmd = submit(
        &mut fw,
        &mut isp,
        &mut core,
        s,
        0x102,
        &[0x2A; 10],
        DataDir::DataOut,
        1024,
    );
    let seg = [Seg {
        addr: 0xA000_0000,
        len: 1024,
    }];
    isp.request_data_out(
        cmd,
        &Data {
            offset: 0,
            segs: &seg,
        },
    )
    .unwrap();
    isp.flush();
    let r = fw.requests(&isp);
    assert_eq!(r.len(), 1);
    let c = Ctio7Repr::parse_bytes(&r[0]).unwrap();
    assert!(c.flags.contains(Ctio7Flags::DATA_OUT));
    assert!(!c.flags.contains(Ctio7Flags::SEND_STATUS));
    complete(&mut fw, &isp, &r[0], CtioStatus::Success);
    fw.poll(&mut isp, &mut core);
    assert_eq!(
        core.calls.last(),
        Some(&Call::DataOutDone(cmd.handle, Ok(())))
    );
    isp.queue_status(cmd, &GOOD).unwrap();
    isp.flush();
    let r = fw.requests(&isp);
    let c = Ctio7Repr::parse_bytes(&r[0]).unwrap();
    assert!(c.flags.contains(Ctio7Flags::SEND_STATUS));
    assert!(matches!(c.mode, Ctio7Mode::Mode1(_)));
    complete(&mut fw, &isp, &r[0], CtioStatus::Success);
    fw.poll(&mut isp, &mut core);
    assert_eq!(
        core.calls.last(),
        Some(&Call::ResponseSent(cmd.handle, Ok(())))
    );
    assert_eq!(isp.stats().bytes_out, 1024);
}

/// Requests the driver posted, without MARKERs.
fn requests_no_marker(fw: &mut Fw, isp: &HIsp<'_>) -> Vec<[u8; 64]> {
    fw.requests(isp)
        .into_iter()
        .filter(|e| e[0] != 0x04)
        .collect()
}

fn write_cmd(
    fw: &mut Fw,
    isp: &mut HIsp<'_>,
    core: &mut RecCore,
    s: SessionHandle,
    xchg: u32,
) -> (CmdRef, [u8; 64]) {
    let cmd = submit(fw, isp, core, s, xchg, &[0x2A; 10], DataDir::DataOut, 512);
    let seg = [Seg {
        addr: 0xA000_0000,
        len: 512,
    }];
    isp.request_data_out(
        cmd,
        &Data {
            offset: 0,
            segs: &seg,
        },
    )
    .unwrap();
    isp.flush();
    let r = fw.requests(isp);
    assert_eq!(r.len(), 1);
    (cmd, r[0])
}

#[test]
fn failed_ctios_follow_the_linux_rule() {
    let mut st = HStorage::new();
    let mut core = RecCore::default();
    let (mut isp, mut fw) = online(&mut st, &mut core);
    let s = login(&mut fw, &mut isp, &mut core);
    // 1. A SEND_STATUS CTIO7 fails (LIP): the firmware keeps the exchange, so
    //    it is terminated (after a MARKER), and the core hears back once the
    //    terminate completed.
    let r = submit(
        &mut fw,
        &mut isp,
        &mut core,
        s,
        0x110,
        &[0x28; 10],
        DataDir::DataIn,
        512,
    );
    let seg = [Seg {
        addr: 0xA000_0000,
        len: 512,
    }];
    isp.queue_data_in(
        r,
        &Data {
            offset: 0,
            segs: &seg,
        },
        Some(&GOOD),
    )
    .unwrap();
    isp.flush();
    let c = fw.requests(&isp);
    complete(&mut fw, &isp, &c[0], CtioStatus::LipReset);
    fw.poll(&mut isp, &mut core);
    let q = fw.requests(&isp);
    assert_eq!(q.len(), 2);
    assert_eq!(q[0][0], 0x04, "MARKER first after LIP_RESET");
    let t = Ctio7Repr::parse_bytes(&q[1]).unwrap();
    assert!(t.flags.contains(Ctio7Flags::TERMINATE));
    assert_eq!(t.exchange_addr, ExchangeAddr(0x110));
    assert_ne!(t.handle, crate::handle::SKIP_HANDLE, "a tracked terminate");
    assert!(!matches!(core.calls.last(), Some(Call::ResponseSent(..))));
    complete(&mut fw, &isp, &q[1], CtioStatus::Success);
    fw.poll(&mut isp, &mut core);
    assert_eq!(
        core.calls.last(),
        Some(&Call::ResponseSent(r.handle, Err(TransferError::Aborted)))
    );
    assert_eq!(isp.stats().final_ctio_failed, 1);
    // 2. A DATA_OUT CTIO7 times out (0x0B, not "always terminate"): the core
    //    hears first; its abort terminates.
    let (w, c) = write_cmd(&mut fw, &mut isp, &mut core, s, 0x111);
    complete(&mut fw, &isp, &c, CtioStatus::Timeout);
    fw.poll(&mut isp, &mut core);
    assert!(
        requests_no_marker(&mut fw, &isp).is_empty(),
        "no terminate yet"
    );
    assert_eq!(
        core.calls.last(),
        Some(&Call::DataOutDone(w.handle, Err(TransferError::Failed)))
    );
    isp.command_aborted(w).unwrap();
    fw.poll(&mut isp, &mut core);
    let q = requests_no_marker(&mut fw, &isp);
    assert_eq!(q.len(), 1);
    assert!(
        Ctio7Repr::parse_bytes(&q[0])
            .unwrap()
            .flags
            .contains(Ctio7Flags::TERMINATE)
    );
    complete(&mut fw, &isp, &q[0], CtioStatus::Success);
    fw.poll(&mut isp, &mut core);
    assert_eq!(core.calls.last(), Some(&Call::AbortDone(w.handle)));
    // 3. A DATA_OUT CTIO7 completes ABORTED ("always terminate"): terminated
    //    at once; a failing terminate is not terminated again.
    let (w, c) = write_cmd(&mut fw, &mut isp, &mut core, s, 0x112);
    complete(&mut fw, &isp, &c, CtioStatus::Aborted);
    fw.poll(&mut isp, &mut core);
    let q = requests_no_marker(&mut fw, &isp);
    assert_eq!(q.len(), 1);
    assert!(
        Ctio7Repr::parse_bytes(&q[0])
            .unwrap()
            .flags
            .contains(Ctio7Flags::TERMINATE)
    );
    complete(&mut fw, &isp, &q[0], CtioStatus::InvalidRxId);
    fw.poll(&mut isp, &mut core);
    assert_eq!(
        core.calls.last(),
        Some(&Call::DataOutDone(w.handle, Err(TransferError::Aborted)))
    );
    isp.command_aborted(w).unwrap();
    fw.poll(&mut isp, &mut core);
    assert_eq!(core.calls.last(), Some(&Call::AbortDone(w.handle)));
    assert!(requests_no_marker(&mut fw, &isp).is_empty());
    // 4. An answer of the driver's own (TASK SET FULL) fails: its exchange is
    //    terminated too.
    core.reject = Some(Rejected::TaskSetFull);
    fw.atio(&isp, &atio(0x113, &[0; 6], DataDir::None, 0));
    fw.poll(&mut isp, &mut core);
    core.reject = None;
    let q = requests_no_marker(&mut fw, &isp);
    let c = Ctio7Repr::parse_bytes(&q[0]).unwrap();
    assert_eq!(c.scsi_status.status, 0x28);
    assert_ne!(c.handle, crate::handle::SKIP_HANDLE);
    assert!(!c.flags.contains(Ctio7Flags::DONT_RET_CTIO));
    complete(&mut fw, &isp, &q[0], CtioStatus::PortLoggedOut);
    fw.poll(&mut isp, &mut core);
    let q = requests_no_marker(&mut fw, &isp);
    assert_eq!(q.len(), 1);
    let t = Ctio7Repr::parse_bytes(&q[0]).unwrap();
    assert!(t.flags.contains(Ctio7Flags::TERMINATE));
    assert_eq!(t.exchange_addr, ExchangeAddr(0x113));
    assert_eq!(t.attr, 2);
    // ... and one that succeeds needs nothing more.
    core.reject = Some(Rejected::Busy);
    fw.atio(&isp, &atio(0x114, &[0; 6], DataDir::None, 0));
    fw.poll(&mut isp, &mut core);
    core.reject = None;
    let q = requests_no_marker(&mut fw, &isp);
    complete(&mut fw, &isp, &q[0], CtioStatus::Success);
    fw.poll(&mut isp, &mut core);
    assert!(requests_no_marker(&mut fw, &isp).is_empty());
    assert_eq!((isp.commands_in_flight(), isp.handles_in_use()), (0, 0));
}

#[test]
fn large_transfer_is_split_across_ctios() {
    let mut st = HStorage::new();
    let mut core = RecCore::default();
    let (mut isp, mut fw) = online(&mut st, &mut core);
    isp.config.max_ctio_bytes = 4096;
    let s = login(&mut fw, &mut isp, &mut core);
    let cmd = submit(
        &mut fw,
        &mut isp,
        &mut core,
        s,
        0x103,
        &[0x28; 10],
        DataDir::DataIn,
        10240,
    );
    let seg = [Seg {
        addr: 0xB000_0000,
        len: 10240,
    }];
    isp.queue_data_in(
        cmd,
        &Data {
            offset: 0,
            segs: &seg,
        },
        Some(&GOOD),
    )
    .unwrap();
    isp.flush();
    let r = fw.requests(&isp);
    let cs: Vec<Ctio7Repr> = r
        .iter()
        .map(|e| Ctio7Repr::parse_bytes(e).unwrap())
        .collect();
    assert_eq!(cs.len(), 3);
    let offs: Vec<(u32, u32, bool, bool)> = cs
        .iter()
        .map(|c| {
            let Ctio7Mode::Mode0(m) = c.mode else {
                panic!()
            };
            (
                m.relative_offset,
                m.transfer_length,
                c.flags.contains(Ctio7Flags::DONT_RET_CTIO),
                c.flags.contains(Ctio7Flags::SEND_STATUS),
            )
        })
        .collect();
    assert_eq!(
        offs,
        [
            (0, 4096, true, false),
            (4096, 4096, true, false),
            (8192, 2048, false, true)
        ]
    );
    complete(&mut fw, &isp, &r[2], CtioStatus::Success);
    fw.poll(&mut isp, &mut core);
    assert_eq!(
        core.calls.last(),
        Some(&Call::ResponseSent(cmd.handle, Ok(())))
    );
}

#[test]
fn back_pressure_answers() {
    let mut st = HStorage::new();
    let mut core = RecCore::default();
    let (mut isp, mut fw) = online(&mut st, &mut core);
    // No session: terminate.
    fw.atio(&isp, &atio(0x200, &[0; 6], DataDir::None, 0));
    fw.poll(&mut isp, &mut core);
    let r = fw.requests(&isp);
    let c = Ctio7Repr::parse_bytes(&r[0]).unwrap();
    assert!(c.flags.contains(Ctio7Flags::TERMINATE));
    assert_eq!(c.nport_handle, NportHandle::NONE);
    assert!(core.calls.is_empty());
    let _s = login(&mut fw, &mut isp, &mut core);
    // The firmware had no exchange: BUSY.
    fw.atio(&isp, &atio(0xFFFF_FFFF, &[0; 6], DataDir::DataIn, 512));
    fw.poll(&mut isp, &mut core);
    let c = Ctio7Repr::parse_bytes(&fw.requests(&isp)[0]).unwrap();
    assert_eq!(c.scsi_status.status, 0x08);
    assert_eq!(c.residual, 512);
    assert!(
        c.flags
            .contains(Ctio7Flags::SEND_STATUS | Ctio7Flags::DONT_RET_CTIO)
    );
    // The core is full: TASK SET FULL.
    core.reject = Some(Rejected::TaskSetFull);
    fw.atio(&isp, &atio(0x201, &[0; 6], DataDir::None, 0));
    fw.poll(&mut isp, &mut core);
    let c = Ctio7Repr::parse_bytes(&fw.requests(&isp)[0]).unwrap();
    assert_eq!(c.scsi_status.status, 0x28);
    assert_eq!(c.exchange_addr, ExchangeAddr(0x201));
    core.reject = None;
    // Threshold of in-flight commands (the fake has 100 exchanges; the
    // table has 8): the 9th gets BUSY without reaching the core.
    isp.busy_threshold = 2;
    let s = isp.sessions().next().unwrap().core.unwrap();
    submit(
        &mut fw,
        &mut isp,
        &mut core,
        s,
        0x300,
        &[0; 6],
        DataDir::None,
        0,
    );
    submit(
        &mut fw,
        &mut isp,
        &mut core,
        s,
        0x301,
        &[0; 6],
        DataDir::None,
        0,
    );
    let n = core.calls.len();
    fw.atio(&isp, &atio(0x302, &[0; 6], DataDir::None, 0));
    fw.poll(&mut isp, &mut core);
    assert_eq!(core.calls.len(), n);
    let c = Ctio7Repr::parse_bytes(&fw.requests(&isp)[0]).unwrap();
    assert_eq!(c.scsi_status.status, 0x08);
    assert_eq!(isp.stats().busy, 2);
}

#[test]
fn ring_full_is_busy_to_the_core() {
    let mut st = HStorage::new();
    let mut core = RecCore::default();
    let (mut isp, mut fw) = online(&mut st, &mut core);
    let s = login(&mut fw, &mut isp, &mut core);
    let mut cmds = Vec::new();
    for x in 0..8 {
        cmds.push(submit(
            &mut fw,
            &mut isp,
            &mut core,
            s,
            0x400 + x,
            &[0x28; 10],
            DataDir::DataIn,
            512,
        ));
    }
    // The firmware stops consuming: the ring (32 entries, 2 kept free,
    // 8 reserved for the driver) takes 22 entries of core work.
    let segs: Vec<Seg> = (0..8)
        .map(|i| Seg {
            addr: 0x1000 * (i + 1),
            len: 64,
        })
        .collect();
    let mut ok = 0;
    for c in &cmds {
        match isp.queue_data_in(
            *c,
            &Data {
                offset: 0,
                segs: &segs,
            },
            Some(&GOOD),
        ) {
            Ok(()) => ok += 1,
            Err(rscst_core::Busy) => break,
        }
    }
    // 3 entries each; a post needs 3 + 2 kept + 8 reserved free: 7 fit in 32.
    assert_eq!(ok, 7);
    assert!(isp.stats().ring_full >= 1);
    // Consuming frees room.
    isp.flush();
    fw.requests(&isp);
    let c = cmds[ok];
    isp.queue_data_in(
        c,
        &Data {
            offset: 0,
            segs: &segs,
        },
        Some(&GOOD),
    )
    .unwrap();
}

#[test]
fn fcp_lun_reset_round_trip() {
    let mut st = HStorage::new();
    let mut core = RecCore::default();
    let (mut isp, mut fw) = online(&mut st, &mut core);
    let s = login(&mut fw, &mut isp, &mut core);
    let fcp = FcpCmndRepr::task_management(Lun::from_index(1).unwrap(), TmFunction::LunReset);
    let mut a = Atio7Repr::new(
        ExchangeAddr(0x500),
        PortId::new(INIT),
        PortId::new(0x010200),
        OxId(0x55),
        fcp,
    );
    a.attr = 1;
    let mut e = [0u8; 64];
    a.emit_bytes(&mut e).unwrap();
    fw.atio(&isp, &e);
    fw.poll(&mut isp, &mut core);
    let Some(Call::SubmitTmf(req)) = core.calls.last().cloned() else {
        panic!("{:?}", core.calls)
    };
    assert_eq!(req.function, TmfFunction::LogicalUnitReset);
    assert_eq!(req.session, s);
    assert_eq!(req.lun.0, 0x0001_0000_0000_0000);
    let tmf = TmfRef {
        handle: TmfHandle::from_u32(1 << 16),
        session: s,
        tag: req.tag,
    };
    isp.queue_tmf_response(tmf, &TmfResponse::new(TmfResponseCode::FunctionComplete))
        .unwrap();
    isp.flush();
    let r = fw.requests(&isp);
    let c = Ctio7Repr::parse_bytes(&r[0]).unwrap();
    assert_eq!(c.scsi_status.to_u16(), 0x0100);
    let Ctio7Mode::Mode1(m) = c.mode else {
        panic!()
    };
    assert_eq!((m.response_len, m.response_info()[3]), (8, 0));
    assert_eq!(c.attr, 1);
    complete(&mut fw, &isp, &r[0], CtioStatus::Success);
    fw.poll(&mut isp, &mut core);
    assert_eq!(core.calls.last(), Some(&Call::TmfResponseSent(tmf.handle)));
    assert_eq!(isp.tmfs_in_flight(), 0);
    // Two TM bits at once: rejected by the driver itself.
    let mut e2 = e;
    e2[0x20 + 10] = 0x12;
    e2[4] = 0x01;
    fw.atio(&isp, &e2);
    fw.poll(&mut isp, &mut core);
    let c = Ctio7Repr::parse_bytes(&fw.requests(&isp)[0]).unwrap();
    let Ctio7Mode::Mode1(m) = c.mode else {
        panic!()
    };
    assert_eq!(m.response_info()[3], 4, "TMF rejected");
}

#[test]
fn dropped_tmfs_are_answered_by_the_driver() {
    let mut st = HStorage::new();
    let mut core = RecCore::default();
    let (mut isp, mut fw) = online(&mut st, &mut core);
    let s = login(&mut fw, &mut isp, &mut core);
    // An FCP LUN RESET the core drops (its nexus went away): the driver
    // terminates the TMF's exchange itself.
    let fcp = FcpCmndRepr::task_management(Lun::from_index(1).unwrap(), TmFunction::LunReset);
    let mut a = Atio7Repr::new(
        ExchangeAddr(0x500),
        PortId::new(INIT),
        PortId::new(0x010200),
        OxId(0x55),
        fcp,
    );
    a.attr = 1;
    let mut e = [0u8; 64];
    a.emit_bytes(&mut e).unwrap();
    fw.atio(&isp, &e);
    fw.poll(&mut isp, &mut core);
    let Some(Call::SubmitTmf(req)) = core.calls.last().cloned() else {
        panic!("{:?}", core.calls)
    };
    assert_eq!(isp.tmfs_in_flight(), 1);
    isp.tmf_dropped(TmfRef {
        handle: TmfHandle::from_u32(1 << 16),
        session: s,
        tag: req.tag,
    });
    isp.flush();
    let r = fw.requests(&isp);
    assert_eq!(r.len(), 1);
    let c = Ctio7Repr::parse_bytes(&r[0]).unwrap();
    assert!(c.flags.contains(Ctio7Flags::TERMINATE));
    assert_eq!((c.exchange_addr, c.attr), (ExchangeAddr(0x500), 1));
    assert_eq!(isp.tmfs_in_flight(), 0);
    // A second drop of the same handle changes nothing.
    isp.tmf_dropped(TmfRef {
        handle: TmfHandle::from_u32(1 << 16),
        session: s,
        tag: req.tag,
    });
    isp.flush();
    assert!(fw.requests(&isp).is_empty());
    // An ABTS whose ABORT TASK the core drops: BA_RJT.
    submit(
        &mut fw,
        &mut isp,
        &mut core,
        s,
        0x600,
        &[0x28; 10],
        DataDir::DataIn,
        512,
    );
    fw.respond(&isp, &abts(0x7001, 0x600));
    fw.poll(&mut isp, &mut core);
    let Some(Call::SubmitTmf(req)) = core.calls.last().cloned() else {
        panic!("{:?}", core.calls)
    };
    assert_eq!(req.function, TmfFunction::AbortTask(TaskTag(0x600)));
    isp.tmf_dropped(TmfRef {
        handle: TmfHandle::from_u32(1 | 2 << 16),
        session: s,
        tag: req.tag,
    });
    isp.flush();
    let r = fw.requests(&isp);
    assert_eq!(r.len(), 1);
    let resp = AbtsRespRepr::parse_bytes(&r[0]).unwrap();
    assert_eq!(resp.header.r_ctl, RCtl::BaRjt);
    assert_eq!(resp.exchange_addr, ExchangeAddr(0x7001));
    assert_eq!(isp.tmfs_in_flight(), 0);
    assert!(
        !core
            .calls
            .iter()
            .any(|c| matches!(c, Call::TmfResponseSent(_)))
    );
}

fn abts(xchg: u32, to_abort: u32) -> [u8; 64] {
    let mut h = FcHeaderRepr::new(
        RCtl::Abts,
        FcType::Bls,
        PortId::new(0x010200),
        PortId::new(INIT),
        FCtl::from_bits_retain(0x09_0000),
        OxId(0x4000 + to_abort as u16),
    );
    h.rx_id = rscst_fw::RxId(0x1234);
    let a = AbtsRecvRepr {
        entry_status: EntryStatus::empty(),
        nport_handle: NportHandle(NPORT),
        vp_index: 0,
        sof_type: 0,
        exchange_addr: ExchangeAddr(xchg),
        header: h,
        exchange_addr_to_abort: ExchangeAddr(to_abort),
    };
    let mut e = [0u8; 64];
    a.emit_bytes(&mut e).unwrap();
    e
}

#[test]
fn abts_mid_write_then_stale_completion() {
    let mut st = HStorage::new();
    let mut core = RecCore::default();
    let (mut isp, mut fw) = online(&mut st, &mut core);
    let s = login(&mut fw, &mut isp, &mut core);
    let cmd = submit(
        &mut fw,
        &mut isp,
        &mut core,
        s,
        0x600,
        &[0x2A; 10],
        DataDir::DataOut,
        4096,
    );
    let seg = [Seg {
        addr: 0xC000_0000,
        len: 4096,
    }];
    isp.request_data_out(
        cmd,
        &Data {
            offset: 0,
            segs: &seg,
        },
    )
    .unwrap();
    isp.flush();
    let data_ctio = fw.requests(&isp)[0];
    // ABTS for it on the response queue (25xx).
    fw.respond(&isp, &abts(0x7001, 0x600));
    fw.poll(&mut isp, &mut core);
    let Some(Call::SubmitTmf(req)) = core.calls.last().cloned() else {
        panic!("{:?}", core.calls)
    };
    assert_eq!(req.function, TmfFunction::AbortTask(TaskTag(0x600)));
    let ev: Vec<Event> = core::iter::from_fn(|| isp.pop_event())
        .map(|r| r.event)
        .collect();
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::Abts {
            rejected: false,
            ..
        }
    )));
    // The core aborts the command: the driver terminates the exchange.
    isp.command_aborted(cmd).unwrap();
    fw.poll(&mut isp, &mut core);
    let r = fw.requests(&isp);
    let t = Ctio7Repr::parse_bytes(&r[0]).unwrap();
    assert!(t.flags.contains(Ctio7Flags::TERMINATE));
    assert_eq!(t.exchange_addr, ExchangeAddr(0x600));
    // The data CTIO comes back ABORTED, then the terminate; only then abort_done.
    complete(&mut fw, &isp, &data_ctio, CtioStatus::Aborted);
    fw.poll(&mut isp, &mut core);
    assert!(
        !core
            .calls
            .iter()
            .any(|c| matches!(c, Call::AbortDone(_) | Call::DataOutDone(..)))
    );
    complete(&mut fw, &isp, &r[0], CtioStatus::Success);
    fw.poll(&mut isp, &mut core);
    assert_eq!(core.calls.last(), Some(&Call::AbortDone(cmd.handle)));
    // BA_ACC once the core answers the TMF.
    let tmf = TmfRef {
        handle: TmfHandle::from_u32(1 << 16),
        session: s,
        tag: req.tag,
    };
    isp.queue_tmf_response(tmf, &TmfResponse::new(TmfResponseCode::FunctionComplete))
        .unwrap();
    isp.flush();
    let r = fw.requests(&isp);
    let resp = AbtsRespRepr::parse_bytes(&r[0]).unwrap();
    assert_eq!(resp.header.r_ctl, RCtl::BaAcc);
    assert_eq!(resp.header.d_id, PortId::new(INIT), "IDs swapped");
    assert_eq!(resp.exchange_addr_to_abort, ExchangeAddr(0x600));
    let BlsPayload::BaAcc(BaAccRepr { ox_id, .. }) = resp.payload else {
        panic!()
    };
    assert_eq!(ox_id, OxId(0x4600));
    let done = AbtsRespCompletionRepr::for_request(&resp, IocbStatus::Complete, 0, 0);
    let mut e = [0u8; 64];
    done.emit_bytes(&mut e).unwrap();
    fw.respond(&isp, &e);
    fw.poll(&mut isp, &mut core);
    assert_eq!(core.calls.last(), Some(&Call::TmfResponseSent(tmf.handle)));
    // A late duplicate completion of the data CTIO: recognised and dropped.
    let n = core.calls.len();
    complete(&mut fw, &isp, &data_ctio, CtioStatus::Success);
    fw.poll(&mut isp, &mut core);
    assert_eq!(core.calls.len(), n);
    assert_eq!(isp.stats().stale_completions, 1);
    assert_eq!(
        (
            isp.handles_in_use(),
            isp.commands_in_flight(),
            isp.tmfs_in_flight()
        ),
        (0, 0, 0)
    );
}

#[test]
fn abts_for_unknown_exchange_is_rejected() {
    let mut st = HStorage::new();
    let mut core = RecCore::default();
    let (mut isp, mut fw) = online(&mut st, &mut core);
    login(&mut fw, &mut isp, &mut core);
    fw.respond(&isp, &abts(0x7002, 0x999));
    fw.poll(&mut isp, &mut core);
    let resp = AbtsRespRepr::parse_bytes(&fw.requests(&isp)[0]).unwrap();
    assert_eq!(resp.header.r_ctl, RCtl::BaRjt);
    assert!(core.calls.is_empty());
    assert_eq!(isp.stats().abts_rejected, 1);
}

#[test]
fn logout_with_commands_outstanding() {
    let mut st = HStorage::new();
    let mut core = RecCore::default();
    let (mut isp, mut fw) = online(&mut st, &mut core);
    let s = login(&mut fw, &mut isp, &mut core);
    let cmd = submit(
        &mut fw,
        &mut isp,
        &mut core,
        s,
        0x700,
        &[0x28; 10],
        DataDir::DataIn,
        512,
    );
    let seg = [Seg {
        addr: 0xD000_0000,
        len: 512,
    }];
    isp.queue_data_in(
        cmd,
        &Data {
            offset: 0,
            segs: &seg,
        },
        None,
    )
    .unwrap();
    isp.flush();
    let data = fw.requests(&isp)[0];
    fw.atio(&isp, &notify_els(ElsOpcode::Logo, 0x9003));
    fw.poll(&mut isp, &mut core);
    assert!(core.calls.contains(&Call::RemoveSession(s)));
    let ack = NotifyAckRepr::parse_bytes(&fw.requests(&isp)[0]).unwrap();
    assert_eq!(ack.status_subcode, 0x05);
    assert!(isp.sessions().next().is_none());
    // The core aborts: the exchange is terminated, the data CTIO fails.
    isp.command_aborted(cmd).unwrap();
    fw.poll(&mut isp, &mut core);
    let t = fw.requests(&isp)[0];
    complete(&mut fw, &isp, &data, CtioStatus::PortLoggedOut);
    complete(&mut fw, &isp, &t, CtioStatus::Success);
    fw.poll(&mut isp, &mut core);
    assert_eq!(core.calls.last(), Some(&Call::AbortDone(cmd.handle)));
    assert!(
        core.calls
            .iter()
            .all(|c| !matches!(c, Call::DataInDone(..))),
        "only abort_done after command_aborted"
    );
    let ev: Vec<Event> = core::iter::from_fn(|| isp.pop_event())
        .map(|r| r.event)
        .collect();
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::Logout {
            reason: LogoutReason::Logout,
            ..
        }
    )));
}

#[test]
fn system_error_voids_everything_and_recovers() {
    let mut st = HStorage::new();
    let mut core = RecCore::default();
    let (mut isp, mut fw) = online(&mut st, &mut core);
    let s = login(&mut fw, &mut isp, &mut core);
    let a = submit(
        &mut fw,
        &mut isp,
        &mut core,
        s,
        0x800,
        &[0x2A; 10],
        DataDir::DataOut,
        512,
    );
    let b = submit(
        &mut fw,
        &mut isp,
        &mut core,
        s,
        0x801,
        &[0x28; 10],
        DataDir::DataIn,
        512,
    );
    let c = submit(
        &mut fw,
        &mut isp,
        &mut core,
        s,
        0x802,
        &[0x00; 6],
        DataDir::None,
        0,
    );
    let seg = [Seg {
        addr: 0xE000_0000,
        len: 512,
    }];
    isp.request_data_out(
        a,
        &Data {
            offset: 0,
            segs: &seg,
        },
    )
    .unwrap();
    isp.queue_data_in(
        b,
        &Data {
            offset: 0,
            segs: &seg,
        },
        Some(&GOOD),
    )
    .unwrap();
    isp.flush();
    let old = fw.requests(&isp);
    core.calls.clear();
    // SYSTEM_ERR.
    fw.async_event([0x8002, 1, 2, 3, 0, 0, 0, 0]);
    fw.poll(&mut isp, &mut core);
    assert!(!isp.is_online());
    assert_eq!(
        core.calls,
        [
            Call::RemoveSession(s),
            Call::DataOutDone(a.handle, Err(TransferError::Aborted)),
            Call::ResponseSent(b.handle, Err(TransferError::Aborted)),
        ]
    );
    // The core aborts the rest: no terminate goes out for a void exchange.
    isp.command_aborted(a).unwrap();
    isp.queue_status(c, &GOOD).unwrap();
    fw.poll(&mut isp, &mut core);
    assert!(core.calls.contains(&Call::AbortDone(a.handle)));
    assert!(
        core.calls
            .contains(&Call::ResponseSent(c.handle, Err(TransferError::Aborted)))
    );
    // Full bring-up again.
    while !isp.is_online() {
        fw.poll(&mut isp, &mut core);
        assert!(fw.now < 100_000);
    }
    // The rings start over.
    (fw.req_out, fw.rsp_in, fw.atio_in) = (0, 0, 0);
    let r = fw.requests(&isp);
    assert_eq!(r.len(), 1, "only the marker after the reset");
    // A late completion from before the reset is stale.
    complete(&mut fw, &isp, &old[0], CtioStatus::Success);
    fw.poll(&mut isp, &mut core);
    assert_eq!(isp.stats().stale_completions, 1);
    assert_eq!(isp.stats().voided, 3);
    assert_eq!((isp.commands_in_flight(), isp.handles_in_use()), (0, 0));
    // Initiators log in again.
    core.calls.clear();
    login(&mut fw, &mut isp, &mut core);
}

#[test]
fn lost_completions_fail_the_operation() {
    let mut st = HStorage::new();
    let mut core = RecCore::default();
    let (mut isp, mut fw) = online(&mut st, &mut core);
    let s = login(&mut fw, &mut isp, &mut core);
    // A data-out whose completion never comes: the exchange is terminated
    // (SCST's hardware-pending timeout does the same), and the core hears of
    // the failure once the terminate completed.
    let w = submit(
        &mut fw,
        &mut isp,
        &mut core,
        s,
        0x900,
        &[0x2A; 10],
        DataDir::DataOut,
        512,
    );
    let seg = [Seg {
        addr: 0xF000_0000,
        len: 512,
    }];
    isp.request_data_out(
        w,
        &Data {
            offset: 0,
            segs: &seg,
        },
    )
    .unwrap();
    isp.flush();
    fw.requests(&isp);
    fw.now += 15_000;
    fw.poll(&mut isp, &mut core);
    fw.poll(&mut isp, &mut core);
    let term = fw.requests(&isp);
    assert_eq!(term.len(), 1);
    let t = Ctio7Repr::parse_bytes(&term[0]).unwrap();
    assert!(t.flags.contains(Ctio7Flags::TERMINATE));
    assert!(
        !matches!(core.calls.last(), Some(Call::DataOutDone(..))),
        "the core waits for the terminate"
    );
    complete(&mut fw, &isp, &term[0], CtioStatus::Success);
    fw.poll(&mut isp, &mut core);
    assert_eq!(
        core.calls.last(),
        Some(&Call::DataOutDone(w.handle, Err(TransferError::Failed)))
    );
    // The core aborts it: already terminated, so abort_done at once.
    isp.command_aborted(w).unwrap();
    fw.poll(&mut isp, &mut core);
    assert_eq!(core.calls.last(), Some(&Call::AbortDone(w.handle)));
    assert!(fw.requests(&isp).is_empty(), "no second terminate");
    // A status whose completion never comes: the driver cannot know whether
    // the firmware closed the exchange, so it terminates it too; a firmware
    // that had closed it answers INVALID_RX_ID.
    let r = submit(
        &mut fw,
        &mut isp,
        &mut core,
        s,
        0x901,
        &[0x28; 10],
        DataDir::DataIn,
        512,
    );
    isp.queue_data_in(
        r,
        &Data {
            offset: 0,
            segs: &seg,
        },
        Some(&GOOD),
    )
    .unwrap();
    isp.flush();
    fw.requests(&isp);
    fw.now += 15_000;
    fw.poll(&mut isp, &mut core);
    fw.poll(&mut isp, &mut core);
    let term = fw.requests(&isp);
    assert_eq!(term.len(), 1);
    assert!(
        Ctio7Repr::parse_bytes(&term[0])
            .unwrap()
            .flags
            .contains(Ctio7Flags::TERMINATE)
    );
    complete(&mut fw, &isp, &term[0], CtioStatus::InvalidRxId);
    fw.poll(&mut isp, &mut core);
    assert_eq!(
        core.calls.last(),
        Some(&Call::ResponseSent(r.handle, Err(TransferError::Failed)))
    );
    assert!(fw.requests(&isp).is_empty());
    assert_eq!(isp.stats().completion_timeouts, 2);
    assert_eq!((isp.commands_in_flight(), isp.handles_in_use()), (0, 0));
}

#[test]
fn additional_cdb_in_two_atio_slots() {
    let mut st = HStorage::new();
    let mut core = RecCore::default();
    let (mut isp, mut fw) = online(&mut st, &mut core);
    let s = login(&mut fw, &mut isp, &mut core);
    let _ = s;
    // Move the ATIO ring near its end (with notifies that are only acked) so
    // the two-slot entry wraps.
    while fw.atio_in != 31 {
        let mut n = [0u8; 64];
        ImmedNotifyRepr::global(NotifyStatus::Resource)
            .emit_bytes(&mut n)
            .unwrap();
        fw.atio(&isp, &n);
        fw.poll(&mut isp, &mut core);
        assert_eq!(fw.requests(&isp).len(), 1);
    }
    let mut cdb = [0u8; 32];
    cdb[0] = 0x7F;
    cdb[7] = 0x18;
    cdb[31] = 0xEE;
    let fcp =
        FcpCmndRepr::command(Lun::from_index(1).unwrap(), &cdb, DataDir::DataIn, 512).unwrap();
    let a = Atio7Repr::new(
        ExchangeAddr(0xB00),
        PortId::new(INIT),
        PortId::new(0x010200),
        OxId(0xB00),
        fcp,
    );
    let mut e = [0u8; 128];
    a.emit_bytes(&mut e).unwrap();
    assert_eq!(e[1], 2, "two ATIO slots");
    assert_eq!(fw.atio_in, 31);
    fw.atio(&isp, &e);
    fw.poll(&mut isp, &mut core);
    assert_eq!(core.last_cdb.len(), 32);
    assert_eq!(core.last_cdb[..], cdb[..]);
    assert!(matches!(
        core.calls.last(),
        Some(Call::Submit {
            tag: 0xB00,
            len: 512,
            ..
        })
    ));
}
