//! Persistent reservations (SPC-5 5.13) with golden CDBs and several
//! initiators: every reservation type's access matrix, ownership, release,
//! clear, preempt, preempt and abort with tasks in flight, register and
//! move, ALL_TG_PT, SPEC_I_PT, APTPL, READ FULL STATUS, the interaction with
//! SPC-2 RESERVE/RELEASE and with resets and nexus loss, and bad parameter
//! lists.
mod common;
use std::cell::RefCell;
use std::rc::Rc;

use common::*;
use rscst_core::{
    Access, DataDirection, GroupId, LuConfig, Lun, PortConfig, PrBlob, PrStore, PrStoreError,
    RamBackend, RelativePortId, ScsiStatus, SessionHandle, TargetPortGroupId, TaskAttr,
    TmfFunction, TransportId,
};

const WE: u8 = 1;
const EA: u8 = 3;
const WE_RO: u8 = 5;
const EA_RO: u8 = 6;
const WE_AR: u8 = 7;
const EA_AR: u8 = 8;
const TYPES: [u8; 6] = [WE, EA, WE_RO, EA_RO, WE_AR, EA_AR];

const REGISTER: u8 = 0;
const RESERVE: u8 = 1;
const RELEASE: u8 = 2;
const CLEAR: u8 = 3;
const PREEMPT: u8 = 4;
const PREEMPT_ABORT: u8 = 5;
const REG_IGNORE: u8 = 6;
const REG_MOVE: u8 = 7;

const SPEC_I_PT: u8 = 0x08;
const ALL_TG_PT: u8 = 0x04;
const APTPL: u8 = 0x01;

fn prin(sa: u8, alloc: u16) -> [u8; 10] {
    let a = alloc.to_be_bytes();
    [0x5e, sa, 0, 0, 0, 0, 0, a[0], a[1], 0]
}

fn prout(sa: u8, ty: u8, len: u32) -> [u8; 10] {
    let l = len.to_be_bytes();
    [0x5f, sa, ty, 0, 0, l[0], l[1], l[2], l[3], 0]
}

fn basic(rk: u64, sark: u64, flags: u8) -> Vec<u8> {
    let mut p = vec![0u8; 24];
    p[..8].copy_from_slice(&rk.to_be_bytes());
    p[8..16].copy_from_slice(&sark.to_be_bytes());
    p[20] = flags;
    p
}

/// A PERSISTENT RESERVE OUT with the basic 24-byte parameter list.
fn po(h: &mut H<RamB>, s: SessionHandle, sa: u8, ty: u8, rk: u64, sark: u64, flags: u8) -> Outcome {
    h.write_cmd(s, 0, &prout(sa, ty, 24), &basic(rk, sark, flags))
}

fn good(h: &mut H<RamB>, s: SessionHandle, sa: u8, ty: u8, rk: u64, sark: u64) {
    po(h, s, sa, ty, rk, sark, 0).good();
}

fn conflict(o: &Outcome) {
    o.status(ScsiStatus::ReservationConflict);
    assert!(o.sense.is_empty());
}

/// READ KEYS: (PRgeneration, keys).
fn keys(h: &mut H<RamB>, s: SessionHandle) -> (u32, Vec<u64>) {
    let d = h.read_cmd(s, 0, &prin(0, 4096), 4096).good().data.clone();
    let n = u32::from_be_bytes(d[4..8].try_into().unwrap()) as usize;
    assert_eq!(d.len(), 8 + n);
    let ks = d[8..]
        .chunks(8)
        .map(|k| u64::from_be_bytes(k.try_into().unwrap()))
        .collect();
    (u32::from_be_bytes(d[..4].try_into().unwrap()), ks)
}

/// READ RESERVATION: (key, type) of the reservation, if any.
fn reservation(h: &mut H<RamB>, s: SessionHandle) -> Option<(u64, u8)> {
    let d = h.read_cmd(s, 0, &prin(1, 4096), 4096).good().data.clone();
    match u32::from_be_bytes(d[4..8].try_into().unwrap()) {
        0 => {
            assert_eq!(d.len(), 8);
            None
        }
        16 => {
            assert_eq!(d.len(), 24);
            Some((u64::from_be_bytes(d[8..16].try_into().unwrap()), d[21]))
        }
        n => panic!("READ RESERVATION additional length {n}"),
    }
}

fn read_ok(h: &mut H<RamB>, s: SessionHandle) -> bool {
    let o = h.read_cmd(s, 0, &rd10(1, 1), 512);
    match o.status {
        ScsiStatus::Good => true,
        ScsiStatus::ReservationConflict => false,
        st => panic!("READ ended {st:?} {:02x?}", o.sense),
    }
}

fn write_ok(h: &mut H<RamB>, s: SessionHandle) -> bool {
    let o = h.write_cmd(s, 0, &wr10(1, 1), &[0x5a; 512]);
    match o.status {
        ScsiStatus::Good => true,
        ScsiStatus::ReservationConflict => false,
        st => panic!("WRITE ended {st:?} {:02x?}", o.sense),
    }
}

fn tur_ua(h: &mut H<RamB>, s: SessionHandle) -> Option<(u8, u8)> {
    let o = h.cmd(s, 0, &TUR);
    match o.status {
        ScsiStatus::Good => None,
        _ => {
            let k = o.kcq().unwrap();
            assert_eq!(k.0, 6, "a unit attention");
            Some((k.1, k.2))
        }
    }
}

fn three() -> (H<RamB>, SessionHandle, SessionHandle, SessionHandle) {
    let (mut h, _) = ram_target(64);
    let a = h.login_clean("iqn.t:a", 0);
    let b = h.login_clean("iqn.t:b", 0);
    let c = h.login_clean("iqn.t:c", 0);
    (h, a, b, c)
}

#[test]
fn read_keys_generation_and_truncation() {
    let (mut h, a, b, _) = three();
    // No registrations: generation 0, additional length 0.
    h.read_cmd(a, 0, &prin(0, 4096), 4096)
        .good()
        .data(&[0, 0, 0, 0, 0, 0, 0, 0]);
    good(&mut h, a, REGISTER, 0, 0, 0xaaaa);
    good(&mut h, b, REG_IGNORE, 0, 0, 0xbbbb);
    assert_eq!(keys(&mut h, a), (2, vec![0xaaaa, 0xbbbb]));
    // ALLOCATION LENGTH 8: the header only, ADDITIONAL LENGTH unchanged.
    let o = h.read_cmd(a, 0, &prin(0, 8), 8);
    o.good().data(&[0, 0, 0, 2, 0, 0, 0, 16]);
    // 12: half a key, with the residual of what was cut.
    let o = h.read_cmd(a, 0, &prin(0, 12), 64);
    o.good()
        .data(&[0, 0, 0, 2, 0, 0, 0, 16, 0, 0, 0, 0])
        .residual(rscst_core::Residual::Under(64 - 12));
    // RESERVE and RELEASE do not change the generation; REGISTER does.
    good(&mut h, a, RESERVE, WE, 0xaaaa, 0);
    good(&mut h, a, RELEASE, WE, 0xaaaa, 0);
    assert_eq!(keys(&mut h, b).0, 2);
    good(&mut h, a, REGISTER, 0, 0xaaaa, 0xa1);
    assert_eq!(keys(&mut h, b), (3, vec![0xa1, 0xbbbb]));
}

#[test]
fn prin_service_action_range() {
    let (mut h, a, _, _) = three();
    for sa in 0..4 {
        h.read_cmd(a, 0, &prin(sa, 4096), 4096).good();
    }
    for sa in 4..0x20 {
        h.read_cmd(a, 0, &prin(sa, 4096), 4096)
            .invalid_cdb(1, Some(4));
    }
    for sa in 8..0x20 {
        h.write_cmd(a, 0, &prout(sa, 0, 24), &basic(0, 0, 0))
            .invalid_cdb(1, Some(4));
    }
}

#[test]
fn report_capabilities() {
    let (mut h, a, _, _) = three();
    // No store: PTPL_C = 0; CRH, SIP_C, ATP_C; TMV, ALLOW COMMANDS 100b;
    // every type in the mask.
    h.read_cmd(a, 0, &prin(2, 4096), 4096)
        .good()
        .data(&[0, 8, 0x1c, 0xc0, 0xea, 0x01, 0, 0]);
    // Truncated to 4 bytes.
    h.read_cmd(a, 0, &prin(2, 4), 4)
        .good()
        .data(&[0, 8, 0x1c, 0xc0]);
}

#[test]
fn register_and_register_and_ignore() {
    let (mut h, a, b, c) = three();
    // An unregistered nexus with a non-zero RESERVATION KEY: conflict.
    conflict(&po(&mut h, a, REGISTER, 0, 5, 6, 0));
    // SARK 0 from an unregistered nexus: nothing happens.
    good(&mut h, a, REGISTER, 0, 0, 0);
    assert_eq!(keys(&mut h, a), (0, vec![]));
    good(&mut h, a, REGISTER, 0, 0, 0x10);
    // Registered: REGISTER with the wrong key conflicts (libiscsi
    // ProutRegister.Simple re-registers with RK 0).
    conflict(&po(&mut h, a, REGISTER, 0, 0, 0x11, 0));
    conflict(&po(&mut h, a, REGISTER, 0, 0x99, 0x11, 0));
    good(&mut h, a, REGISTER, 0, 0x10, 0x11);
    // REGISTER AND IGNORE EXISTING KEY ignores RESERVATION KEY.
    good(&mut h, a, REG_IGNORE, 0, 0x12345, 0x12);
    assert_eq!(keys(&mut h, b), (3, vec![0x12]));
    // Unregister.
    good(&mut h, a, REGISTER, 0, 0x12, 0);
    assert_eq!(keys(&mut h, b), (4, vec![]));
    // SPEC_I_PT with REGISTER AND IGNORE EXISTING KEY is invalid.
    let mut p = basic(0, 7, SPEC_I_PT);
    p.extend_from_slice(&[0, 0, 0, 0]);
    h.write_cmd(a, 0, &prout(REG_IGNORE, 0, 28), &p)
        .check(5, 0x26, 0);
    // Registrations fill up (8 per LU here): INSUFFICIENT REGISTRATION
    // RESOURCES, and a SPEC_I_PT list is registered whole or not at all.
    for k in 0..5 {
        let s = h.login_clean(&format!("iqn.t:many{k}"), 0);
        good(&mut h, s, REGISTER, 0, 0, 100 + k);
    }
    good(&mut h, a, REGISTER, 0, 0, 1);
    good(&mut h, b, REGISTER, 0, 0, 2);
    assert_eq!(keys(&mut h, a).1.len(), 7);
    let mut p = basic(0, 3, SPEC_I_PT);
    p.extend_from_slice(&[0, 0, 0, 24]);
    p.extend_from_slice(TransportId::fc(0x2100_0000_0000_0001).as_bytes());
    h.write_cmd(c, 0, &prout(REGISTER, 0, p.len() as u32), &p)
        .check(5, 0x55, 0x04);
    assert_eq!(keys(&mut h, a).1.len(), 7);
    good(&mut h, c, REGISTER, 0, 0, 3);
    good(&mut h, c, REGISTER, 0, 3, 0);
    po(&mut h, c, REG_IGNORE, 0, 0, 4, 0).good();
    assert_eq!(keys(&mut h, a).1.len(), 8);
}

#[test]
fn access_matrix_for_every_type() {
    // (type, registered non-holder read/write, unregistered read/write),
    // the semantics of libiscsi's ProutReserve.Access* tests.
    for (ty, reg_r, reg_w, unreg_r, unreg_w) in [
        (EA, false, false, false, false),
        (WE, true, false, true, false),
        (EA_RO, true, true, false, false),
        (WE_RO, true, true, true, false),
        (EA_AR, true, true, false, false),
        (WE_AR, true, true, true, false),
    ] {
        let (mut h, a, b, c) = three();
        good(&mut h, a, REGISTER, 0, 0, 0xa);
        good(&mut h, b, REGISTER, 0, 0, 0xb);
        good(&mut h, a, RESERVE, ty, 0xa, 0);
        let ar = ty == WE_AR || ty == EA_AR;
        assert_eq!(
            reservation(&mut h, c),
            Some((if ar { 0 } else { 0xa }, ty)),
            "type {ty}"
        );
        // The holder does everything.
        assert!(read_ok(&mut h, a) && write_ok(&mut h, a), "type {ty}");
        assert_eq!(read_ok(&mut h, b), reg_r, "type {ty}: registered read");
        assert_eq!(write_ok(&mut h, b), reg_w, "type {ty}: registered write");
        assert_eq!(read_ok(&mut h, c), unreg_r, "type {ty}: unregistered read");
        assert_eq!(
            write_ok(&mut h, c),
            unreg_w,
            "type {ty}: unregistered write"
        );
        // Commands of the "allowed" class pass for everyone.
        for s in [b, c] {
            h.read_cmd(s, 0, &[0x12, 0, 0, 0, 96, 0], 96).good();
            h.cmd(s, 0, &TUR).good();
            h.read_cmd(s, 0, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], 8)
                .good();
            h.read_cmd(s, 0, &[0x4d, 0, 0x40, 0, 0, 0, 0, 0, 255, 0], 255)
                .good();
            h.read_cmd(s, 0, &prin(0, 64), 64).good();
            h.read_cmd(s, 0, &[0x03, 0, 0, 0, 18, 0], 18).good();
            h.cmd(s, 0, &[0x1e, 0, 0, 0, 0, 0]).good();
            h.cmd(s, 0, &[0x1b, 0, 0, 0, 0x01, 0]).good();
        }
        // MODE SENSE is a read (ALLOW COMMANDS 100b); PREVENT=1, START STOP
        // UNIT stopping and SYNCHRONIZE CACHE are writes.
        let ms = [0x1a, 0, 0x3f, 0, 255, 0];
        let ea = ty == EA || ty == EA_RO || ty == EA_AR;
        let o = h.read_cmd(c, 0, &ms, 255);
        assert_eq!(o.status == ScsiStatus::Good, !ea, "type {ty}: MODE SENSE");
        conflict(&h.cmd(c, 0, &[0x1e, 0, 0, 0, 1, 0]));
        conflict(&h.cmd(c, 0, &[0x1b, 0, 0, 0, 0x00, 0]));
        conflict(&h.cmd(c, 0, &[0x35, 0, 0, 0, 0, 0, 0, 0, 1, 0]));
        // Unregister b: it now sees what an unregistered nexus sees.
        good(&mut h, b, REGISTER, 0, 0xb, 0);
        assert_eq!(read_ok(&mut h, b), unreg_r, "type {ty}");
        assert_eq!(write_ok(&mut h, b), unreg_w, "type {ty}");
        good(&mut h, a, RELEASE, ty, 0xa, 0);
        assert!(read_ok(&mut h, c) && write_ok(&mut h, c));
    }
}

#[test]
fn ownership_when_the_holder_unregisters() {
    for ty in TYPES {
        let (mut h, a, b, _) = three();
        good(&mut h, a, REGISTER, 0, 0, 1);
        good(&mut h, b, REGISTER, 0, 0, 2);
        good(&mut h, a, RESERVE, ty, 1, 0);
        good(&mut h, a, REGISTER, 0, 1, 0);
        let ar = ty == WE_AR || ty == EA_AR;
        if ar {
            // All registrants: the reservation stays with b, which may release it.
            assert_eq!(reservation(&mut h, a), Some((0, ty)));
            assert_eq!(tur_ua(&mut h, b), None);
            good(&mut h, b, RELEASE, ty, 2, 0);
            // Releasing an all-registrants reservation tells the other
            // registrants (none left but b).
            assert_eq!(tur_ua(&mut h, a), None);
        } else {
            assert_eq!(reservation(&mut h, a), None, "type {ty}");
            // Registrants-only types tell the registrants it was released.
            let ro = ty == WE_RO || ty == EA_RO;
            assert_eq!(tur_ua(&mut h, b), ro.then_some((0x2a, 0x04)), "type {ty}");
        }
        good(&mut h, b, REGISTER, 0, 2, 0);
        assert_eq!(keys(&mut h, a).1, Vec::<u64>::new());
        // An all-registrants reservation ends with its last registrant.
        if ar {
            good(&mut h, b, REGISTER, 0, 0, 2);
            good(&mut h, b, RESERVE, ty, 2, 0);
            good(&mut h, b, REGISTER, 0, 2, 0);
            assert_eq!(reservation(&mut h, a), None);
        }
    }
}

#[test]
fn reserve_and_release_rules() {
    let (mut h, a, b, c) = three();
    good(&mut h, a, REGISTER, 0, 0, 1);
    good(&mut h, b, REGISTER, 0, 0, 2);
    // RESERVE needs the registered key.
    conflict(&po(&mut h, c, RESERVE, WE, 0, 0, 0));
    conflict(&po(&mut h, a, RESERVE, WE, 2, 0, 0));
    // Bad scope and type: INVALID FIELD IN CDB at byte 2.
    po(&mut h, a, RESERVE, 0x10 | WE, 1, 0, 0).invalid_cdb(2, Some(7));
    po(&mut h, a, RESERVE, 2, 1, 0, 0).invalid_cdb(2, Some(3));
    good(&mut h, a, RESERVE, WE_RO, 1, 0);
    // The same reservation again is GOOD; another type, or another nexus, conflicts.
    good(&mut h, a, RESERVE, WE_RO, 1, 0);
    conflict(&po(&mut h, a, RESERVE, EA, 1, 0, 0));
    conflict(&po(&mut h, b, RESERVE, WE_RO, 2, 0, 0));
    // A registered non-holder's RELEASE is GOOD and changes nothing.
    good(&mut h, b, RELEASE, WE_RO, 2, 0);
    assert_eq!(reservation(&mut h, c), Some((1, WE_RO)));
    // The holder's RELEASE with another type: INVALID RELEASE OF PERSISTENT RESERVATION.
    po(&mut h, a, RELEASE, WE, 1, 0, 0).check(5, 0x26, 0x04);
    // An unregistered nexus's RELEASE conflicts.
    conflict(&po(&mut h, c, RELEASE, WE_RO, 0, 0, 0));
    good(&mut h, a, RELEASE, WE_RO, 1, 0);
    // Registrants-only: the other registrants get RESERVATIONS RELEASED,
    // the unregistered nexus and the releaser nothing.
    assert_eq!(tur_ua(&mut h, b), Some((0x2a, 0x04)));
    assert_eq!(tur_ua(&mut h, a), None);
    assert_eq!(tur_ua(&mut h, c), None);
    // Write Exclusive: no unit attention on release.
    good(&mut h, a, RESERVE, WE, 1, 0);
    good(&mut h, a, RELEASE, WE, 1, 0);
    assert_eq!(tur_ua(&mut h, b), None);
    // RELEASE without a reservation: GOOD.
    good(&mut h, a, RELEASE, WE, 1, 0);
}

#[test]
fn clear_removes_everything_and_tells_the_others() {
    let (mut h, a, b, c) = three();
    good(&mut h, a, REGISTER, 0, 0, 1);
    good(&mut h, b, REGISTER, 0, 0, 2);
    good(&mut h, a, RESERVE, EA, 1, 0);
    let g = keys(&mut h, a).0;
    conflict(&po(&mut h, c, CLEAR, 0, 0, 0, 0));
    conflict(&po(&mut h, b, CLEAR, 0, 1, 0, 0));
    good(&mut h, b, CLEAR, 0, 2, 0);
    assert_eq!(keys(&mut h, b), (g + 1, vec![]));
    assert_eq!(reservation(&mut h, b), None);
    assert_eq!(tur_ua(&mut h, a), Some((0x2a, 0x03)));
    assert_eq!(tur_ua(&mut h, b), None);
    assert_eq!(tur_ua(&mut h, c), None);
    assert!(write_ok(&mut h, c));
}

#[test]
fn preempt_removes_registrations_without_a_reservation() {
    // libiscsi ProutPreempt.RemoveRegistration.
    let (mut h, a, b, _) = three();
    good(&mut h, a, REGISTER, 0, 0, 0xa);
    good(&mut h, b, REGISTER, 0, 0, 0xb);
    let (g, k) = keys(&mut h, a);
    assert_eq!(k, vec![0xa, 0xb]);
    // SARK 0 without an all-registrants reservation: INVALID FIELD IN PARAMETER LIST.
    po(&mut h, b, PREEMPT, EA, 0xb, 0, 0).check(5, 0x26, 0);
    // A key nobody has: RESERVATION CONFLICT.
    conflict(&po(&mut h, b, PREEMPT, EA, 0xb, 0x77, 0));
    good(&mut h, b, PREEMPT, EA, 0xb, 0xa);
    assert_eq!(tur_ua(&mut h, a), Some((0x2a, 0x05)));
    assert_eq!(tur_ua(&mut h, b), None);
    assert_eq!(keys(&mut h, a), (g + 1, vec![0xb]));
    assert_eq!(reservation(&mut h, a), None);
}

#[test]
fn preempt_the_holder_and_change_the_type() {
    let (mut h, a, b, c) = three();
    good(&mut h, a, REGISTER, 0, 0, 0xa);
    good(&mut h, b, REGISTER, 0, 0, 0xb);
    good(&mut h, c, REGISTER, 0, 0, 0xc);
    good(&mut h, a, RESERVE, WE, 0xa, 0);
    // b preempts a's reservation and registration, as Exclusive Access.
    good(&mut h, b, PREEMPT, EA, 0xb, 0xa);
    assert_eq!(reservation(&mut h, b), Some((0xb, EA)));
    assert_eq!(keys(&mut h, b).1, vec![0xb, 0xc]);
    // a lost its registration; c kept its own but saw the type change.
    assert_eq!(tur_ua(&mut h, a), Some((0x2a, 0x05)));
    assert_eq!(tur_ua(&mut h, c), Some((0x2a, 0x04)));
    assert_eq!(tur_ua(&mut h, b), None);
    assert!(!read_ok(&mut h, a) && !read_ok(&mut h, c));
    // Preempting a registrant that does not hold the reservation leaves it.
    good(&mut h, b, PREEMPT, EA, 0xb, 0xc);
    assert_eq!(tur_ua(&mut h, c), Some((0x2a, 0x05)));
    assert_eq!(reservation(&mut h, a), Some((0xb, EA)));
    // An all-registrants reservation is preempted with SARK 0.
    good(&mut h, b, RELEASE, EA, 0xb, 0);
    good(&mut h, a, REGISTER, 0, 0, 0xa);
    good(&mut h, b, RESERVE, WE_AR, 0xb, 0);
    good(&mut h, a, PREEMPT, WE_RO, 0xa, 0);
    assert_eq!(reservation(&mut h, c), Some((0xa, WE_RO)));
    assert_eq!(keys(&mut h, c).1, vec![0xa]);
    assert_eq!(tur_ua(&mut h, b), Some((0x2a, 0x05)));
}

/// Two RAM LUs behind a backend whose I/O can be held, TAS as asked.
fn slow_pr_target(tas: bool) -> (H<Slow<RamB>>, SessionHandle, SessionHandle) {
    let m0 = mem(256 * 512, 0x4000_0000);
    let mut ram: RamB = RamBackend::new();
    let id = ram.add_lun(m0, 512).unwrap();
    let mut h = H::new(Slow::new(ram), 512 * 1024, &[m0]);
    let lu = h.t.add_lu(&LuConfig::new(id, 512, 256)).unwrap();
    h.t.map_lun(GroupId::DEFAULT, Lun::ZERO, lu, Access::ReadWrite)
        .unwrap();
    let a = h.login_clean("iqn.t:a", 0);
    let b = h.login_clean("iqn.t:b", 0);
    if tas {
        // MODE SELECT(6) of the control mode page with TAS.
        let mut p = vec![0, 0, 0, 0];
        p.extend_from_slice(&[0x0a, 0x0a, 0, 0, 0, 0x40, 0, 0, 0xff, 0xff, 0, 0]);
        h.write_cmd(a, 0, &[0x15, 0x10, 0, 0, p.len() as u8, 0], &p)
            .good();
        h.cmd(b, 0, &TUR); // MODE PARAMETERS CHANGED
    }
    (h, a, b)
}

fn tur_ua_slow(h: &mut H<Slow<RamB>>, s: SessionHandle) -> Option<(u8, u8)> {
    let o = h.exec(s, 0, &TUR, DataDirection::None, 0, &[]);
    (o.status != ScsiStatus::Good).then(|| {
        let k = o.kcq().unwrap();
        assert_eq!(k.0, 6);
        (k.1, k.2)
    })
}

#[test]
fn preempt_and_abort_with_tasks_in_flight() {
    for tas in [false, true] {
        let (mut h, a, b) = slow_pr_target(tas);
        let reg = |h: &mut H<Slow<RamB>>, s, sa, ty, rk: u64, sark: u64| {
            h.exec(
                s,
                0,
                &prout(sa, ty, 24),
                DataDirection::Out,
                24,
                &basic(rk, sark, 0),
            )
        };
        reg(&mut h, a, REGISTER, 0, 0, 0xa).good();
        reg(&mut h, b, REGISTER, 0, 0, 0xb).good();
        reg(&mut h, a, RESERVE, WE_RO, 0xa, 0).good();
        // a has a READ held in the backend and a WRITE waiting for its data.
        h.b.hold = true;
        h.auto = false;
        let rd = h.submit(a, 0, &rd10(0, 8), DataDirection::In, 4096, &[]);
        let wr = h.submit(a, 0, &wr10(8, 1), DataDirection::Out, 512, &[7; 512]);
        h.settle();
        let ev = h.take_for(wr).expect("XFER_RDY");
        assert!(matches!(ev, Ev::DataOut { .. }));
        // b preempts a and aborts its tasks.
        let pa = h.submit(
            b,
            0,
            &prout(PREEMPT_ABORT, EA, 24),
            DataDirection::Out,
            24,
            &basic(0xb, 0xa, 0),
        );
        h.settle();
        h.complete_for(pa); // the parameter list
        h.settle();
        assert!(
            h.outcome(pa).is_none(),
            "status waits for the aborted tasks"
        );
        if tas {
            // The write's transfer is outstanding: TASK ABORTED waits for it.
            assert!(!h.aborted_pending(wr));
            h.complete(ev);
        } else {
            assert!(h.aborted_pending(wr), "silent abort told at once");
        }
        h.settle();
        assert!(h.outcome(pa).is_none(), "the READ is still in the backend");
        h.b.release();
        h.b.hold = false;
        h.auto = true;
        h.settle();
        let (r, w) = (h.result(rd), h.result(wr));
        if tas {
            r.status(ScsiStatus::TaskAborted);
            w.status(ScsiStatus::TaskAborted);
            assert!(!r.aborted && !w.aborted);
        } else {
            assert!(r.aborted && w.aborted);
        }
        h.result(pa).good();
        // The status of PREEMPT AND ABORT came after the aborted tasks ended.
        let last_victim =
            h.tr.log
                .iter()
                .rposition(|e| e.cmd() == Some(rd) || e.cmd() == Some(wr))
                .unwrap();
        let pa_status = h.tr.log.iter().rposition(|e| e.cmd() == Some(pa)).unwrap();
        assert!(last_victim < pa_status);
        // a: registration preempted, and (TAS off) commands cleared.
        let mut uas = Vec::new();
        while let Some(ua) = tur_ua_slow(&mut h, a) {
            uas.push(ua);
        }
        uas.sort();
        let want: &[(u8, u8)] = if tas {
            &[(0x2a, 0x05)]
        } else {
            &[(0x2a, 0x05), (0x2f, 0x00)]
        };
        assert_eq!(uas, want);
        let o = h.exec(a, 0, &rd10(0, 1), DataDirection::In, 512, &[]);
        o.status(ScsiStatus::ReservationConflict);
        // b's own task of the same LU was not touched.
        let o = h.exec(b, 0, &rd10(0, 1), DataDirection::In, 512, &[]);
        o.good();
    }
}

#[test]
fn preempt_and_abort_without_tasks_is_immediate() {
    let (mut h, a, b, _) = three();
    good(&mut h, a, REGISTER, 0, 0, 0xa);
    good(&mut h, b, REGISTER, 0, 0, 0xb);
    good(&mut h, a, RESERVE, WE, 0xa, 0);
    good(&mut h, b, PREEMPT_ABORT, EA, 0xb, 0xa);
    assert_eq!(reservation(&mut h, b), Some((0xb, EA)));
    assert_eq!(tur_ua(&mut h, a), Some((0x2a, 0x05)));
}

fn iscsi_tid(name: &str) -> Vec<u8> {
    TransportId::iscsi(name, Some([0, 2, 0x3d, 0, 0, 1]))
        .unwrap()
        .as_bytes()
        .to_vec()
}

#[test]
fn register_and_move() {
    let (mut h, a, b, c) = three();
    good(&mut h, a, REGISTER, 0, 0, 0xa);
    // Not holding a reservation: conflict.
    let mv = |rk: u64, sark: u64, flags: u8, port: u16, tid: &[u8]| {
        let mut p = vec![0u8; 24];
        p[..8].copy_from_slice(&rk.to_be_bytes());
        p[8..16].copy_from_slice(&sark.to_be_bytes());
        p[17] = flags;
        p[18..20].copy_from_slice(&port.to_be_bytes());
        p[20..24].copy_from_slice(&(tid.len() as u32).to_be_bytes());
        p.extend_from_slice(tid);
        p
    };
    let tb = iscsi_tid("iqn.t:b");
    let p = mv(0xa, 0xb0, 0x02, 1, &tb);
    conflict(&h.write_cmd(a, 0, &prout(REG_MOVE, EA, p.len() as u32), &p));
    good(&mut h, a, RESERVE, WE, 0xa, 0);
    // Errors: SARK 0, unknown port, the issuer itself, a truncated list.
    let p = mv(0xa, 0, 0, 1, &tb);
    h.write_cmd(a, 0, &prout(REG_MOVE, EA, p.len() as u32), &p)
        .check(5, 0x26, 0);
    let p = mv(0xa, 0xb0, 0, 9, &tb);
    let o = h.write_cmd(a, 0, &prout(REG_MOVE, EA, p.len() as u32), &p);
    o.check(5, 0x26, 0);
    assert_eq!(o.sks(), Some([0x80, 0, 18]));
    let p = mv(0xa, 0xb0, 0, 1, &iscsi_tid("iqn.t:a"));
    h.write_cmd(a, 0, &prout(REG_MOVE, EA, p.len() as u32), &p)
        .check(5, 0x26, 0);
    let p = mv(0xa, 0xb0, 0, 1, &tb);
    h.write_cmd(
        a,
        0,
        &prout(REG_MOVE, EA, p.len() as u32 - 4),
        &p[..p.len() - 4],
    )
    .check(5, 0x1a, 0);
    // Move to b (unregistered: registered with SARK), unregistering a.
    let g = keys(&mut h, c).0;
    let p = mv(0xa, 0xb0, 0x02, 1, &tb);
    h.write_cmd(a, 0, &prout(REG_MOVE, EA, p.len() as u32), &p)
        .good();
    assert_eq!(keys(&mut h, c), (g + 1, vec![0xb0]));
    assert_eq!(reservation(&mut h, c), Some((0xb0, EA)));
    assert!(read_ok(&mut h, b) && write_ok(&mut h, b));
    assert!(!read_ok(&mut h, a));
    good(&mut h, b, RELEASE, EA, 0xb0, 0);
}

#[test]
fn all_target_ports_registration() {
    let (mut h, _) = ram_target(64);
    h.t.add_port(&PortConfig::new(RelativePortId(2), TargetPortGroupId(1)))
        .unwrap();
    let id = TransportId::iscsi("iqn.t:a", Some([0, 2, 0x3d, 0, 0, 1])).unwrap();
    let p1 = h.t.create_session(&id, RelativePortId(1)).unwrap();
    let p2 = h.t.create_session(&id, RelativePortId(2)).unwrap();
    for s in [p1, p2] {
        h.cmd(s, 0, &TUR);
    }
    // Without ALL_TG_PT, the registration is the port-1 nexus's only.
    good(&mut h, p1, REGISTER, 0, 0, 0x11);
    conflict(&po(&mut h, p2, RESERVE, WE, 0x11, 0, 0));
    good(&mut h, p1, REGISTER, 0, 0x11, 0);
    // With ALL_TG_PT, both nexuses are registered.
    po(&mut h, p1, REGISTER, 0, 0, 0x22, ALL_TG_PT).good();
    good(&mut h, p2, RESERVE, EA, 0x22, 0);
    // The holder is the port-2 nexus only; the port-1 nexus is a registrant.
    assert!(read_ok(&mut h, p2));
    assert!(!read_ok(&mut h, p1));
    let d = h.read_cmd(p1, 0, &prin(3, 4096), 4096).good().data.clone();
    let desc = &d[8..];
    assert_eq!(&desc[..8], &0x22u64.to_be_bytes());
    assert_eq!(desc[12], 0x03, "ALL_TG_PT and R_HOLDER");
    assert_eq!(desc[13], EA);
    assert_eq!(&desc[18..20], &[0, 2], "the holding nexus's port");
    assert_eq!(&desc[24..], id.as_bytes());
}

#[test]
fn specify_initiator_ports() {
    let (mut h, a, b, c) = three();
    let fc = TransportId::fc(0x2100_0024_ff00_0042);
    let sas = TransportId::sas(0x5000_c500_0000_0001);
    let mut list = iscsi_tid("iqn.t:b");
    list.extend_from_slice(fc.as_bytes());
    list.extend_from_slice(sas.as_bytes());
    let mut p = basic(0, 0x5, SPEC_I_PT);
    p.extend_from_slice(&(list.len() as u32).to_be_bytes());
    p.extend_from_slice(&list);
    h.write_cmd(a, 0, &prout(REGISTER, 0, p.len() as u32), &p)
        .good();
    assert_eq!(keys(&mut h, c), (1, vec![5, 5, 5, 5]));
    // b is registered with the key without having sent anything.
    good(&mut h, b, RESERVE, WE, 5, 0);
    // READ FULL STATUS lists the four TransportIDs.
    let d = h.read_cmd(c, 0, &prin(3, 4096), 4096).good().data.clone();
    let mut at = 8;
    let mut tids = Vec::new();
    while at < d.len() {
        let n = u32::from_be_bytes(d[at + 20..at + 24].try_into().unwrap()) as usize;
        tids.push((d[at + 12], d[at + 24..at + 24 + n].to_vec()));
        at += 24 + n;
    }
    assert_eq!(at, d.len());
    assert_eq!(tids.len(), 4);
    assert_eq!(
        tids[1],
        (0x01, iscsi_tid("iqn.t:b")),
        "b holds the reservation"
    );
    assert_eq!(tids[2], (0, fc.as_bytes().to_vec()));
    assert_eq!(tids[3], (0, sas.as_bytes().to_vec()));
    good(&mut h, b, RELEASE, WE, 5, 0);
    good(&mut h, a, CLEAR, 0, 5, 0);
    h.cmd(b, 0, &TUR);
    // Errors: a TransportID list longer than the parameter list, an
    // unsupported protocol (SRP), the same port twice, and an already
    // registered one.
    let spec = |h: &mut H<RamB>, s, tids: &[u8], tpdl: u32| {
        let mut p = basic(0, 0x6, SPEC_I_PT);
        p.extend_from_slice(&tpdl.to_be_bytes());
        p.extend_from_slice(tids);
        h.write_cmd(s, 0, &prout(REGISTER, 0, p.len() as u32), &p)
    };
    spec(&mut h, a, fc.as_bytes(), 48).check(5, 0x1a, 0);
    let o = spec(&mut h, a, &[0x04; 24], 24);
    o.check(5, 0x26, 0);
    assert_eq!(o.sks(), Some([0x80, 0, 28]));
    let mut two = fc.as_bytes().to_vec();
    two.extend_from_slice(fc.as_bytes());
    let o = spec(&mut h, a, &two, 48);
    o.check(5, 0x26, 0);
    assert_eq!(o.sks(), Some([0x80, 0, 52]));
    good(&mut h, c, REGISTER, 0, 0, 9);
    let o = spec(
        &mut h,
        a,
        &iscsi_tid("iqn.t:c"),
        iscsi_tid("iqn.t:c").len() as u32,
    );
    o.check(5, 0x26, 0);
    assert_eq!(
        keys(&mut h, a).1,
        vec![9],
        "nothing registered by the failures"
    );
}

/// A persistent reservation store in memory, shared between targets.
#[derive(Clone, Default)]
struct MemStore(Rc<RefCell<Blobs>>);

type Blobs = Vec<([u8; 16], Vec<u8>)>;

impl PrStore for MemStore {
    fn load(
        &mut self,
        lu: &[u8; 16],
        offset: usize,
        buf: &mut [u8],
    ) -> Result<usize, PrStoreError> {
        let v = self.0.borrow();
        let Some((_, b)) = v.iter().find(|(k, _)| k == lu) else {
            return Ok(0);
        };
        let src = b.get(offset..).unwrap_or(&[]);
        let n = src.len().min(buf.len());
        buf[..n].copy_from_slice(&src[..n]);
        Ok(n)
    }
    fn save(&mut self, lu: &[u8; 16], blob: &PrBlob<'_>) -> Result<(), PrStoreError> {
        let mut out = Vec::new();
        blob.write_to(&mut |p| {
            out.extend_from_slice(p);
            Ok(())
        })?;
        assert_eq!(out.len(), blob.len());
        let mut v = self.0.borrow_mut();
        v.retain(|(k, _)| k != lu);
        v.push((*lu, out));
        Ok(())
    }
}

fn target_with_store(store: &MemStore) -> H<RamB> {
    let lun_mem = mem(64 * 512, 0x4000_0000);
    let mut b: RamB = RamBackend::new();
    let id = b.add_lun(lun_mem, 512).unwrap();
    let mut h = H::new(b, 256 * 1024, &[lun_mem]);
    let s: &'static mut MemStore = Box::leak(Box::new(store.clone()));
    h.t.set_pr_store(s);
    let lu = h.t.add_lu(&LuConfig::new(id, 512, 64)).unwrap();
    h.t.map_lun(GroupId::DEFAULT, Lun::ZERO, lu, Access::ReadWrite)
        .unwrap();
    h
}

#[test]
fn aptpl_is_saved_and_restored() {
    let store = MemStore::default();
    {
        let mut h = target_with_store(&store);
        let a = h.login_clean("iqn.t:a", 0);
        let b = h.login_clean("iqn.t:b", 0);
        // PTPL_C with a store.
        h.read_cmd(a, 0, &prin(2, 8), 8)
            .good()
            .data(&[0, 8, 0x1d, 0xc0, 0xea, 0x01, 0, 0]);
        po(&mut h, a, REGISTER, 0, 0, 0xa, APTPL).good();
        // The last APTPL value received counts: b's registration keeps it on.
        po(&mut h, b, REGISTER, 0, 0, 0xb, APTPL).good();
        good(&mut h, a, RESERVE, EA_RO, 0xa, 0);
        // PTPL_A now.
        assert_eq!(h.read_cmd(a, 0, &prin(2, 8), 8).data[3], 0xc1);
        assert_eq!(store.0.borrow().len(), 1);
        assert_eq!(h.t.pr_store_errors(), 0);
    }
    // "Power loss": a new target over the same store.
    let mut h = target_with_store(&store);
    let c = h.login_clean("iqn.t:c", 0);
    assert_eq!(keys(&mut h, c), (2, vec![0xa, 0xb]));
    assert_eq!(reservation(&mut h, c), Some((0xa, EA_RO)));
    assert!(!read_ok(&mut h, c));
    // The initiators log in again and their registrations apply.
    let a = h.login_clean("iqn.t:a", 0);
    let b = h.login_clean("iqn.t:b", 0);
    assert!(read_ok(&mut h, b) && write_ok(&mut h, a));
    good(&mut h, a, RELEASE, EA_RO, 0xa, 0);
    assert_eq!(tur_ua(&mut h, b), Some((0x2a, 0x04)));
    // APTPL off: the saved state restores nothing.
    good(&mut h, b, REGISTER, 0, 0xb, 0xb1);
    drop(h);
    let mut h = target_with_store(&store);
    let c = h.login_clean("iqn.t:c", 0);
    assert_eq!(keys(&mut h, c), (0, vec![]));
}

#[test]
fn aptpl_without_a_store_is_refused() {
    let (mut h, a, _, _) = three();
    let o = po(&mut h, a, REGISTER, 0, 0, 1, APTPL);
    o.check(5, 0x26, 0);
    assert_eq!(o.sks(), Some([0x88, 0, 20]));
    assert_eq!(keys(&mut h, a).1, Vec::<u64>::new());
}

#[cfg(feature = "std")]
#[test]
fn file_store_replaces_atomically() {
    let dir = std::env::temp_dir().join(format!("rscst-pr-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Box::leak(Box::new(rscst_core::FilePrStore::new(&dir).unwrap()));
    let lun_mem = mem(64 * 512, 0x4000_0000);
    let mut b: RamB = RamBackend::new();
    let id = b.add_lun(lun_mem, 512).unwrap();
    let mut h = H::new(b, 256 * 1024, &[lun_mem]);
    h.t.set_pr_store(store);
    let lu = h.t.add_lu(&LuConfig::new(id, 512, 64)).unwrap();
    h.t.map_lun(GroupId::DEFAULT, Lun::ZERO, lu, Access::ReadWrite)
        .unwrap();
    let a = h.login_clean("iqn.t:a", 0);
    po(&mut h, a, REGISTER, 0, 0, 0x77, APTPL).good();
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(files.len(), 1, "no temporary file left: {files:?}");
    let name = files[0].to_string_lossy().to_string();
    assert!(name.starts_with("pr-") && name.ends_with(".bin"));
    let blob = std::fs::read(dir.join(&name)).unwrap();
    assert_eq!(&blob[..4], b"RSPR");
    assert!(blob.windows(8).any(|w| w == 0x77u64.to_be_bytes()));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn read_full_status_contents() {
    let (mut h, a, b, c) = three();
    good(&mut h, a, REGISTER, 0, 0, 0x0102_0304_0506_0708);
    good(&mut h, b, REGISTER, 0, 0, 0x11);
    good(&mut h, a, RESERVE, WE_RO, 0x0102_0304_0506_0708, 0);
    let ta = iscsi_tid("iqn.t:a");
    let tb = iscsi_tid("iqn.t:b");
    let mut want = vec![0, 0, 0, 2];
    let len = 24 + ta.len() + 24 + tb.len();
    want.extend_from_slice(&(len as u32).to_be_bytes());
    want.extend_from_slice(&[
        1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 0x01, WE_RO, 0, 0, 0, 0, 0, 1,
    ]);
    want.extend_from_slice(&(ta.len() as u32).to_be_bytes());
    want.extend_from_slice(&ta);
    want.extend_from_slice(&[
        0, 0, 0, 0, 0, 0, 0, 0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
    ]);
    want.extend_from_slice(&(tb.len() as u32).to_be_bytes());
    want.extend_from_slice(&tb);
    h.read_cmd(c, 0, &prin(3, 4096), 4096).good().data(&want);
    // Truncated by the allocation length, with the full ADDITIONAL LENGTH.
    h.read_cmd(c, 0, &prin(3, 30), 30).good().data(&want[..30]);
}

#[test]
fn bad_parameter_lists() {
    let (mut h, a, _, _) = three();
    // PARAMETER LIST LENGTH other than 24 (no SPEC_I_PT).
    for len in [0u32, 23] {
        h.write_cmd(a, 0, &prout(REGISTER, 0, len), &vec![0; len as usize])
            .check(5, 0x1a, 0);
    }
    h.write_cmd(a, 0, &prout(REGISTER, 0, 28), &[0; 28])
        .check(5, 0x1a, 0);
    // SPEC_I_PT with a TransportID list that does not match the length.
    let mut p = basic(0, 1, SPEC_I_PT);
    p.extend_from_slice(&[0, 0, 0, 24]);
    p.extend_from_slice(&[0; 20]);
    h.write_cmd(a, 0, &prout(REGISTER, 0, p.len() as u32), &p)
        .check(5, 0x1a, 0);
    // SPEC_I_PT on another service action.
    good(&mut h, a, REGISTER, 0, 0, 1);
    let o = po(&mut h, a, RESERVE, WE, 1, 0, SPEC_I_PT);
    o.check(5, 0x26, 0);
    assert_eq!(o.sks(), Some([0x8b, 0, 20]));
    // SPEC_I_PT from a registered nexus.
    let mut p = basic(1, 2, SPEC_I_PT);
    p.extend_from_slice(&[0, 0, 0, 0]);
    h.write_cmd(a, 0, &prout(REGISTER, 0, 28), &p)
        .check(5, 0x26, 0);
    // The initiator sends less than the CDB announced.
    let o = h.exec(
        a,
        0,
        &prout(REGISTER, 0, 24),
        DataDirection::Out,
        20,
        &[0; 20],
    );
    o.check(5, 0x1a, 0);
    assert_eq!(keys(&mut h, a).1, vec![1]);
}

#[test]
fn spc2_reservations_and_persistent_reservations_conflict_both_ways() {
    let (mut h, a, b, _) = three();
    // An SPC-2 reservation: PR IN/OUT from another nexus conflict.
    h.cmd(a, 0, &[0x16, 0, 0, 0, 0, 0]).good();
    conflict(&h.read_cmd(b, 0, &prin(0, 64), 64));
    conflict(&po(&mut h, b, REGISTER, 0, 0, 1, 0));
    h.read_cmd(a, 0, &prin(0, 64), 64).good();
    h.cmd(a, 0, &[0x17, 0, 0, 0, 0, 0]).good();
    // With a registration, RESERVE(6)/(10) and RELEASE(6)/(10) conflict for everyone.
    good(&mut h, b, REGISTER, 0, 0, 1);
    for cdb in [&[0x16u8, 0, 0, 0, 0, 0][..], &[0x17, 0, 0, 0, 0, 0]] {
        conflict(&h.cmd(a, 0, cdb));
        conflict(&h.cmd(b, 0, cdb));
    }
    conflict(&h.cmd(b, 0, &[0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
    good(&mut h, b, REGISTER, 0, 1, 0);
    h.cmd(b, 0, &[0x16, 0, 0, 0, 0, 0]).good();
}

#[test]
fn persistent_reservations_survive_resets_and_nexus_loss() {
    let (mut h, a, b, _) = three();
    good(&mut h, a, REGISTER, 0, 0, 0xa);
    good(&mut h, a, RESERVE, EA, 0xa, 0);
    let t = h.tmf(b, 0, TmfFunction::LogicalUnitReset);
    h.settle();
    h.tmf_result(t);
    h.cmd(a, 0, &TUR).check(6, 0x29, 0x03);
    h.cmd(b, 0, &TUR).check(6, 0x29, 0x03);
    assert_eq!(reservation(&mut h, b), Some((0xa, EA)));
    let t = h.tmf(a, 0, TmfFunction::ItNexusReset);
    h.settle();
    h.tmf_result(t);
    h.cmd(a, 0, &TUR);
    assert!(read_ok(&mut h, a) && !read_ok(&mut h, b));
    // Nexus loss: the registration stays and applies when a returns.
    h.t.remove_session(a).unwrap();
    h.settle();
    assert!(!read_ok(&mut h, b));
    let a2 = h.login("iqn.t:a");
    h.cmd(a2, 0, &TUR).check(6, 0x29, 0x07);
    assert!(read_ok(&mut h, a2));
    good(&mut h, a2, RELEASE, EA, 0xa, 0);
    assert!(read_ok(&mut h, b));
}

#[test]
fn prout_runs_under_ordered_and_head_of_queue() {
    // PERSISTENT RESERVE OUT takes part in the task set like any command.
    let (mut h, a, b, _) = three();
    good(&mut h, a, REGISTER, 0, 0, 0xa);
    let r = h.submit_attr(
        a,
        0,
        TaskAttr::HeadOfQueue,
        &prout(RESERVE, EA, 24),
        DataDirection::Out,
        24,
        &basic(0xa, 0, 0),
    );
    h.settle();
    h.result(r).good();
    assert!(!read_ok(&mut h, b));
}
