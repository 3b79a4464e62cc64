//! The receive checks' short path (a quiet LU, no unit attention, a SIMPLE
//! task with nothing listed ahead) is never taken when a state that could
//! hold or refuse the command is present. Each test first runs a READ on the
//! quiet LU (the short path), then sets one state, sees the command held or
//! refused as the standards say, clears the state and sees READs pass again.
//! (In test builds the core also checks, on every command, that the LU's
//! cached summary equals the states it summarises.)
mod common;
use common::*;
use rscst_core::{
    AluaState, CmdState, DataDirection, GroupId, LuConfig, Lun, RamBackend, ScsiStatus,
    TargetPortGroupId, TaskAttr, TmfFunction, TmfResponseCode,
};

const RESERVE6: [u8; 6] = [0x16, 0, 0, 0, 0, 0];
const RELEASE6: [u8; 6] = [0x17, 0, 0, 0, 0, 0];

fn read(h: &mut H<RamB>, s: rscst_core::SessionHandle) -> Outcome {
    h.read_cmd(s, 0, &rd10(0, 1), 512)
}

fn prout(h: &mut H<RamB>, s: rscst_core::SessionHandle, sa: u8, ty: u8, rk: u64, sark: u64) {
    let mut p = vec![0u8; 24];
    p[..8].copy_from_slice(&rk.to_be_bytes());
    p[8..16].copy_from_slice(&sark.to_be_bytes());
    h.write_cmd(s, 0, &[0x5f, sa, ty, 0, 0, 0, 0, 0, 24, 0], &p)
        .good();
}

#[test]
fn unit_attention_pending_on_the_nexus() {
    let (mut h, lu) = ram_target(64);
    let a = h.login_clean("iqn.t:a", 0);
    read(&mut h, a).good();
    h.t.resize_lu(lu, 32).unwrap();
    // CAPACITY DATA HAS CHANGED, once.
    read(&mut h, a).check(0x6, 0x2a, 0x09);
    read(&mut h, a).good();
}

#[test]
fn spc2_reservation_by_another_nexus() {
    let (mut h, _) = ram_target(64);
    let a = h.login_clean("iqn.t:a", 0);
    let b = h.login_clean("iqn.t:b", 0);
    read(&mut h, b).good();
    h.cmd(a, 0, &RESERVE6).good();
    read(&mut h, b).status(ScsiStatus::ReservationConflict);
    read(&mut h, a).good();
    h.cmd(a, 0, &RELEASE6).good();
    read(&mut h, b).good();
}

#[test]
fn persistent_reservation_by_another_nexus() {
    let (mut h, _) = ram_target(64);
    let a = h.login_clean("iqn.t:a", 0);
    let b = h.login_clean("iqn.t:b", 0);
    read(&mut h, b).good();
    // REGISTER key 1, RESERVE EXCLUSIVE ACCESS.
    prout(&mut h, a, 0, 0, 0, 1);
    read(&mut h, b).good();
    prout(&mut h, a, 1, 3, 1, 0);
    read(&mut h, b).status(ScsiStatus::ReservationConflict);
    read(&mut h, a).good();
    // RELEASE: b reads again.
    prout(&mut h, a, 2, 3, 1, 0);
    read(&mut h, b).good();
}

#[test]
fn aca_condition() {
    let (mut h, _) = ram_target(64);
    let a = h.login_clean("iqn.t:a", 0);
    let b = h.login_clean("iqn.t:b", 0);
    read(&mut h, a).good();
    // NACA=1 on a failing command establishes ACA.
    h.read_cmd(a, 0, &[0x28, 0, 0, 0, 1, 0, 0, 0, 1, 0x04], 512)
        .check(0x5, 0x21, 0x00);
    read(&mut h, a).status(ScsiStatus::AcaActive);
    read(&mut h, b).status(ScsiStatus::AcaActive);
    let t = h.tmf(a, 0, TmfFunction::ClearAca);
    h.settle();
    assert_eq!(h.tmf_result(t).code, TmfResponseCode::FunctionComplete);
    read(&mut h, a).good();
    read(&mut h, b).good();
}

#[test]
fn ordered_command_ahead() {
    let m0 = mem(64 * 512, 0x4000_0000);
    let mut ram: RamB = RamBackend::new();
    let a = ram.add_lun(m0, 512).unwrap();
    let mut h = H::new(Slow::new(ram), 512 * 1024, &[m0]);
    let lu = h.t.add_lu(&LuConfig::new(a, 512, 64)).unwrap();
    h.t.map_lun(
        GroupId::DEFAULT,
        Lun::ZERO,
        lu,
        rscst_core::Access::ReadWrite,
    )
    .unwrap();
    let s = h.login_clean("iqn.t:a", 0);
    h.b.hold = true;
    let first = h.submit(s, 0, &rd10(0, 1), DataDirection::In, 512, &[]);
    h.settle();
    assert_eq!(h.t.cmd_state(first), Some(CmdState::Backend));
    let o = h.submit_attr(
        s,
        0,
        TaskAttr::Ordered,
        &rd10(1, 1),
        DataDirection::In,
        512,
        &[],
    );
    let simple = h.submit(s, 0, &rd10(2, 1), DataDirection::In, 512, &[]);
    h.settle();
    // The ORDERED task waits for the older one, the SIMPLE one for it.
    assert_eq!(h.t.cmd_state(o), Some(CmdState::Dormant));
    assert_eq!(h.t.cmd_state(simple), Some(CmdState::Dormant));
    h.b.release();
    h.settle();
    h.result(first).good();
    assert_eq!(h.t.cmd_state(simple), Some(CmdState::Dormant));
    h.b.release();
    h.settle();
    h.result(o).good();
    h.b.release();
    h.settle();
    h.result(simple).good();
}

#[test]
fn lu_not_ready() {
    let (mut h, _) = ram_target_with(64, 512, |c| {
        c.stoppable = true;
        c.removable = true;
    });
    let s = h.login_clean("iqn.t:a", 0);
    read(&mut h, s).good();
    // Stopped: NOT READY, INITIALIZING COMMAND REQUIRED.
    h.cmd(s, 0, &[0x1b, 0x01, 0, 0, 0x00, 0]).good();
    read(&mut h, s).check(0x2, 0x04, 0x02);
    h.cmd(s, 0, &[0x1b, 0x01, 0, 0, 0x01, 0]).good();
    read(&mut h, s).good();
    // Ejected: NOT READY, MEDIUM NOT PRESENT.
    h.cmd(s, 0, &[0x1b, 0x01, 0, 0, 0x02, 0]).good();
    read(&mut h, s).check(0x2, 0x3a, 0x00);
    h.cmd(s, 0, &[0x1b, 0x01, 0, 0, 0x03, 0]).good();
    read(&mut h, s).good();
}

#[test]
fn alua_standby() {
    let (mut h, _) = ram_target(64);
    let s = h.login_clean("iqn.t:a", 0);
    read(&mut h, s).good();
    h.t.set_port_group_state(TargetPortGroupId(1), AluaState::Standby)
        .unwrap();
    h.cmd(s, 0, &TUR).check(0x6, 0x2a, 0x06);
    read(&mut h, s).check(0x2, 0x04, 0x0b);
    h.t.set_port_group_state(TargetPortGroupId(1), AluaState::ActiveOptimized)
        .unwrap();
    h.cmd(s, 0, &TUR).check(0x6, 0x2a, 0x06);
    read(&mut h, s).good();
}

#[test]
fn software_write_protect() {
    let (mut h, _) = ram_target(64);
    let s = h.login_clean("iqn.t:a", 0);
    h.write_cmd(s, 0, &wr10(0, 1), &[1; 512]).good();
    // MODE SELECT(6) of the control page with SWP set.
    let mut p = vec![0u8; 4 + 12];
    p[4] = 0x0a;
    p[5] = 0x0a;
    p[8] = 0x08;
    // BUSY TIMEOUT PERIOD as the LU reports it (not changeable).
    p[12] = 0xff;
    p[13] = 0xff;
    h.write_cmd(s, 0, &[0x15, 0x10, 0, 0, p.len() as u8, 0], &p)
        .good();
    // DATA PROTECT, WRITE PROTECTED / SOFTWARE WRITE PROTECTED.
    h.write_cmd(s, 0, &wr10(0, 1), &[2; 512])
        .check(0x7, 0x27, 0x02);
    read(&mut h, s).good().data(&[1; 512]);
    p[8] = 0;
    h.write_cmd(s, 0, &[0x15, 0x10, 0, 0, p.len() as u8, 0], &p)
        .good();
    h.write_cmd(s, 0, &wr10(0, 1), &[3; 512]).good();
    read(&mut h, s).good().data(&[3; 512]);
}

#[test]
fn naca_is_read_where_the_cdb_length_puts_the_control_byte() {
    // READ(16) out of range with NACA=1 in byte 15; an unsupported 6-byte
    // opcode with NACA=1 in byte 5; NACA=0 establishes nothing.
    let mut rd16_naca = rd16(1000, 1);
    rd16_naca[15] = 0x04;
    let unsupported6 = [0x02, 0, 0, 0, 0, 0x04];
    for (cdb, len, key, asc) in [
        (&rd16_naca[..], 512, 0x5, 0x21),
        (&unsupported6[..], 0, 0x5, 0x20),
    ] {
        let (mut h, _) = ram_target(64);
        let a = h.login_clean("iqn.t:a", 0);
        read(&mut h, a).good();
        h.read_cmd(a, 0, cdb, len).check(key, asc, 0x00);
        read(&mut h, a).status(ScsiStatus::AcaActive);
        let t = h.tmf(a, 0, TmfFunction::ClearAca);
        h.settle();
        assert_eq!(h.tmf_result(t).code, TmfResponseCode::FunctionComplete);
        read(&mut h, a).good();
        // The same without NACA: no ACA.
        let mut plain = cdb.to_vec();
        *plain.last_mut().unwrap() = 0;
        h.read_cmd(a, 0, &plain, len).check(key, asc, 0x00);
        read(&mut h, a).good();
    }
}

#[test]
fn the_remembered_lun_follows_every_map_change() {
    let (mut h, lu0) = ram_target(64);
    let lu1 =
        h.t.add_lu(&LuConfig::new(rscst_core::BackendLun(0), 512, 32))
            .unwrap();
    let s = h.login_clean("iqn.t:a", 0);
    let cap = [0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let o = h.read_cmd(s, 0, &cap, 8);
    o.good().data(&[0, 0, 0, 63, 0, 0, 2, 0]);
    // Unmapped: LOGICAL UNIT NOT SUPPORTED at once.
    h.t.unmap_lun(GroupId::DEFAULT, Lun::ZERO).unwrap();
    h.read_cmd(s, 0, &cap, 8).check(0x5, 0x25, 0x00);
    // LUN 0 now names the other LU (new to the nexus: POWER ON, RESET).
    h.t.map_lun(
        GroupId::DEFAULT,
        Lun::ZERO,
        lu1,
        rscst_core::Access::ReadOnly,
    )
    .unwrap();
    h.cmd(s, 0, &TUR).check(0x6, 0x29, 0x00);
    let o = h.read_cmd(s, 0, &cap, 8);
    o.good().data(&[0, 0, 0, 31, 0, 0, 2, 0]);
    // Read-only through this map.
    h.write_cmd(s, 0, &wr10(0, 1), &[1; 512])
        .check(0x7, 0x27, 0x00);
    // The same LUN in another encoding (flat space) is the same LUN.
    let flat = Lun::from_bytes([0x40, 0, 0, 0, 0, 0, 0, 0]);
    let tag = h.tag();
    let c =
        h.t.submit(&rscst_core::CommandRequest {
            session: s,
            tag,
            lun: flat,
            attr: TaskAttr::Simple,
            priority: 0,
            crn: 0,
            cdb: &cap,
            expected_len: 8,
            dir: DataDirection::In,
        })
        .expect("submit");
    h.settle();
    h.result(c).good().data(&[0, 0, 0, 31, 0, 0, 2, 0]);
    // Back to the first LU, read-write.
    h.t.unmap_lun(GroupId::DEFAULT, Lun::ZERO).unwrap();
    h.t.map_lun(
        GroupId::DEFAULT,
        Lun::ZERO,
        lu0,
        rscst_core::Access::ReadWrite,
    )
    .unwrap();
    h.cmd(s, 0, &TUR).check(0x6, 0x29, 0x00);
    h.write_cmd(s, 0, &wr10(0, 1), &[1; 512]).good();
}

#[test]
fn fua_of_a_read_reaches_buffered_io() {
    // A backend that cannot map: every READ goes through a buffer and
    // `Backend::submit`, which must see the CDB's FUA.
    let m0 = mem(64 * 512, 0x4000_0000);
    let mut ram: RamB = RamBackend::new();
    let a = ram.add_lun(m0, 512).unwrap();
    let mut h = H::new(Slow::new(ram), 512 * 1024, &[m0]);
    let lu = h.t.add_lu(&LuConfig::new(a, 512, 64)).unwrap();
    h.t.map_lun(
        GroupId::DEFAULT,
        Lun::ZERO,
        lu,
        rscst_core::Access::ReadWrite,
    )
    .unwrap();
    let s = h.login_clean("iqn.t:a", 0);
    h.b.hold = true;
    let mut rd10_fua = rd10(0, 1);
    rd10_fua[1] = 0x08;
    let mut rd16_fua = rd16(0, 1);
    rd16_fua[1] = 0x08;
    let cases: [(&[u8], bool); 5] = [
        (&rd10_fua, true),
        (&rd10(0, 1), false),
        (&rd16_fua, true),
        (&rd16(0, 1), false),
        (&[0x08, 0, 0, 0, 1, 0], false),
    ];
    for (cdb, fua) in cases {
        let c = h.submit(s, 0, cdb, DataDirection::In, 512, &[]);
        h.settle();
        h.b.release();
        h.settle();
        h.result(c).good();
        assert_eq!(h.b.fua.last(), Some(&fua), "{cdb:02x?}");
    }
}
