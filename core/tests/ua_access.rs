//! Unit attentions per I_T_L delivered to every nexus, the SPC rules for
//! INQUIRY / REPORT LUNS / REQUEST SENSE, and access control (initiator
//! groups, LUN masking, read-only maps, unmapped LUNs).
mod common;
use common::*;
use rscst_core::{
    Access, ConfigError, DataDirection, GroupId, LuConfig, Lun, RamBackend, ScsiStatus,
    TmfFunction, TransportId,
};

const INQ: [u8; 6] = [0x12, 0, 0, 0, 96, 0];
const REPORT_LUNS: [u8; 12] = [0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0];

#[test]
fn new_nexus_gets_power_on_reset_on_every_lu() {
    let (mut h, _) = ram_target(64);
    let second =
        h.t.add_lu(&LuConfig::new(rscst_core::BackendLun(0), 512, 64))
            .unwrap();
    h.t.map_lun(
        GroupId::DEFAULT,
        Lun::single_level(1).unwrap(),
        second,
        Access::ReadWrite,
    )
    .unwrap();
    let s = h.login("iqn.t:a");
    // INQUIRY and REPORT LUNS neither report nor clear it.
    h.read_cmd(s, 0, &INQ, 96).good();
    h.read_cmd(s, 0, &REPORT_LUNS, 256).good();
    h.cmd(s, 0, &TUR).check(0x6, 0x29, 0x00);
    h.cmd(s, 0, &TUR).good();
    // Per I_T_L: LUN 1 still has its own.
    h.cmd(s, 1, &TUR).check(0x6, 0x29, 0x00);
    h.cmd(s, 1, &TUR).good();
}

#[test]
fn capacity_change_reaches_every_nexus_once() {
    let (mut h, lu) = ram_target(64);
    let sessions: Vec<_> = ["iqn.t:a", "iqn.t:b", "iqn.t:c"]
        .iter()
        .map(|n| h.login_clean(n, 0))
        .collect();
    h.t.resize_lu(lu, 32).unwrap();
    for &s in &sessions {
        h.read_cmd(s, 0, &INQ, 96).good();
        h.read_cmd(s, 0, &rd10(0, 1), 512).check(0x6, 0x2a, 0x09);
        h.read_cmd(s, 0, &rd10(0, 1), 512).good();
        let o = h.read_cmd(s, 0, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], 8);
        o.good().data(&[0, 0, 0, 31, 0, 0, 2, 0]);
    }
    assert_eq!(h.t.lu_blocks(lu), Some(32));
}

#[test]
fn request_sense_reports_and_clears_in_order() {
    let (mut h, lu) = ram_target(64);
    let a = h.login_clean("iqn.t:a", 0);
    let b = h.login_clean("iqn.t:b", 0);
    // Two conditions: MODE PARAMETERS CHANGED (from a's MODE SELECT) and
    // INQUIRY DATA HAS CHANGED.
    let mut p = vec![0u8; 4 + 20];
    p[4] = 0x08;
    p[5] = 0x12;
    h.write_cmd(a, 0, &[0x15, 0x10, 0, 0, p.len() as u8, 0], &p)
        .good();
    h.t.set_lu_serial(lu, "NEW").unwrap();
    let rs = [0x03, 0, 0, 0, 18, 0];
    let o = h.read_cmd(b, 0, &rs, 18);
    assert_eq!(
        (o.good().data[2], o.data[12], o.data[13]),
        (0x6, 0x2a, 0x01)
    );
    let o = h.read_cmd(b, 0, &rs, 18);
    assert_eq!(
        (o.good().data[2], o.data[12], o.data[13]),
        (0x6, 0x3f, 0x03)
    );
    let o = h.read_cmd(b, 0, &rs, 18);
    assert_eq!((o.good().data[2], o.data[12], o.data[13]), (0, 0, 0));
    h.cmd(b, 0, &TUR).good();
    // The changer itself only sees INQUIRY DATA HAS CHANGED.
    h.cmd(a, 0, &TUR).check(0x6, 0x3f, 0x03);
    h.cmd(a, 0, &TUR).good();
    let o = h.read_cmd(a, 0, &[0x12, 1, 0x80, 0, 255, 0], 255);
    assert_eq!(&o.good().data[4..7], b"NEW");
}

#[test]
fn a_reset_supersedes_pending_conditions() {
    let (mut h, lu) = ram_target(64);
    let a = h.login_clean("iqn.t:a", 0);
    h.t.resize_lu(lu, 60).unwrap();
    h.t.set_lu_serial(lu, "X").unwrap();
    let t = h.tmf(a, 0, TmfFunction::LogicalUnitReset);
    h.settle();
    h.tmf_result(t);
    h.cmd(a, 0, &TUR).check(0x6, 0x29, 0x03);
    h.cmd(a, 0, &TUR).good();
}

#[test]
fn reported_luns_data_changed_is_cleared_by_report_luns() {
    let (mut h, lu) = ram_target(64);
    let a = h.login_clean("iqn.t:a", 0);
    h.t.map_lun(
        GroupId::DEFAULT,
        Lun::single_level(2).unwrap(),
        lu,
        Access::ReadWrite,
    )
    .unwrap();
    let o = h.read_cmd(a, 0, &REPORT_LUNS, 256);
    assert_eq!(&o.good().data[..4], &[0, 0, 0, 16]);
    h.cmd(a, 0, &TUR).good();
    // The same LU at a second LUN is not new to the nexus.
    h.cmd(a, 2, &TUR).good();
    // A new LU starts with POWER ON, RESET.
    let other =
        h.t.add_lu(&LuConfig::new(rscst_core::BackendLun(0), 512, 64))
            .unwrap();
    h.t.map_lun(
        GroupId::DEFAULT,
        Lun::single_level(3).unwrap(),
        other,
        Access::ReadWrite,
    )
    .unwrap();
    h.cmd(a, 3, &TUR).check(0x6, 0x29, 0x00);
    h.cmd(a, 0, &TUR).check(0x6, 0x3f, 0x0e);
    // Unmapping tells the others, and the LUN stops answering.
    h.t.unmap_lun(GroupId::DEFAULT, Lun::single_level(2).unwrap())
        .unwrap();
    h.cmd(a, 0, &TUR).check(0x6, 0x3f, 0x0e);
    h.cmd(a, 2, &TUR).check(0x5, 0x25, 0x00);
    assert_eq!(
        h.t.unmap_lun(GroupId::DEFAULT, Lun::single_level(2).unwrap()),
        Err(ConfigError::NotFound)
    );
}

#[test]
fn lun_masking_by_initiator_group() {
    let m0 = mem(64 * 512, 0x4000_0000);
    let m1 = mem(64 * 512, 0x5000_0000);
    let mut ram: RamB = RamBackend::new();
    let a = ram.add_lun(m0, 512).unwrap();
    let b = ram.add_lun(m1, 512).unwrap();
    let mut h = H::new(ram, 256 * 1024, &[m0, m1]);
    let lu_a = h.t.add_lu(&LuConfig::new(a, 512, 64)).unwrap();
    let lu_b = h.t.add_lu(&LuConfig::new(b, 512, 64)).unwrap();
    // The default group sees LU a as LUN 0.
    h.t.map_lun(GroupId::DEFAULT, Lun::ZERO, lu_a, Access::ReadWrite)
        .unwrap();
    // The "backup" group sees LU b as LUN 0 and LU a read-only as LUN 5.
    let g = h.t.add_group().unwrap();
    h.t.map_lun(g, Lun::ZERO, lu_b, Access::ReadWrite).unwrap();
    h.t.map_lun(g, Lun::single_level(5).unwrap(), lu_a, Access::ReadOnly)
        .unwrap();
    h.t.add_initiator(g, &TransportId::iscsi("iqn.t:backup", None).unwrap())
        .unwrap();
    assert_eq!(
        h.t.add_initiator(
            g,
            &TransportId::iscsi("iqn.t:backup", Some([1, 2, 3, 4, 5, 6])).unwrap()
        ),
        Err(ConfigError::Duplicate)
    );
    assert_eq!(
        h.t.map_lun(g, Lun::ZERO, lu_a, Access::ReadWrite),
        Err(ConfigError::Duplicate)
    );

    let plain = h.login_clean("iqn.t:plain", 0);
    // The ISID does not matter for the match.
    let backup = h.login_clean("iqn.t:backup", 0);
    h.cmd(backup, 5, &TUR).check(0x6, 0x29, 0x00);
    h.write_cmd(plain, 0, &wr10(0, 1), &[0xaa; 512]).good();
    h.write_cmd(backup, 0, &wr10(0, 1), &[0xbb; 512]).good();
    h.read_cmd(backup, 5, &rd10(0, 1), 512)
        .good()
        .data(&[0xaa; 512]);
    h.write_cmd(backup, 5, &wr10(0, 1), &[0; 512])
        .check(0x7, 0x27, 0x00);
    h.read_cmd(plain, 0, &rd10(0, 1), 512)
        .good()
        .data(&[0xaa; 512]);
    // Each initiator's REPORT LUNS lists its own map.
    h.read_cmd(plain, 0, &REPORT_LUNS, 256)
        .good()
        .data(&[0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    let o = h.read_cmd(backup, 0, &REPORT_LUNS, 256);
    assert_eq!(&o.good().data[..4], &[0, 0, 0, 16]);
    assert_eq!(&o.data[16..18], &[0, 5]);
    // LUN 5 does not exist for the plain initiator.
    h.cmd(plain, 5, &TUR).check(0x5, 0x25, 0x00);
    assert_eq!(h.read_cmd(plain, 5, &INQ, 96).good().data[0], 0x7f);
    // A flat-space encoding of a small LUN names the same unit.
    let tag = h.tag();
    let c =
        h.t.submit(&rscst_core::CommandRequest {
            session: backup,
            tag,
            lun: Lun(0x4005_0000_0000_0000),
            attr: rscst_core::TaskAttr::Simple,
            priority: 0,
            crn: 0,
            cdb: &TUR,
            expected_len: 0,
            dir: DataDirection::None,
        })
        .unwrap();
    h.settle();
    h.result(c).good();
    // Too many groups.
    for _ in 0..2 {
        h.t.add_group().unwrap();
    }
    assert_eq!(h.t.add_group(), Err(ConfigError::Full));
    assert_eq!(
        h.t.map_lun(
            GroupId::DEFAULT,
            Lun::single_level(1).unwrap(),
            lu_b,
            Access::ReadWrite
        ),
        Ok(())
    );
    h.cmd(plain, 1, &TUR).check(0x6, 0x29, 0x00);
    let _ = ScsiStatus::Good;
}

#[test]
fn configuration_errors() {
    let (mut h, _) = ram_target(64);
    assert_eq!(
        h.t.add_lu(&LuConfig::new(rscst_core::BackendLun(0), 500, 10)),
        Err(ConfigError::Invalid)
    );
    assert_eq!(
        h.t.add_lu(&LuConfig::new(rscst_core::BackendLun(0), 512, 0)),
        Err(ConfigError::Invalid)
    );
    let mut c = LuConfig::new(rscst_core::BackendLun(0), 512, 10);
    c.serial = "this serial number is far too long for VPD 80";
    assert_eq!(h.t.add_lu(&c), Err(ConfigError::Invalid));
    assert_eq!(
        h.t.add_port(&rscst_core::PortConfig::new(
            rscst_core::RelativePortId(1),
            rscst_core::TargetPortGroupId(1)
        )),
        Err(ConfigError::Duplicate)
    );
    assert_eq!(
        h.t.add_port(&rscst_core::PortConfig::new(
            rscst_core::RelativePortId(0),
            rscst_core::TargetPortGroupId(1)
        )),
        Err(ConfigError::Invalid)
    );
    assert_eq!(
        h.t.create_session(&TransportId::fc(1), rscst_core::RelativePortId(9)),
        Err(rscst_core::SessionError::UnknownPort)
    );
    for n in 0..8 {
        h.login(&format!("iqn.t:{n}"));
    }
    assert_eq!(
        h.t.create_session(&TransportId::fc(1), rscst_core::RelativePortId(1)),
        Err(rscst_core::SessionError::Full)
    );
    assert_eq!(h.t.session_count(), 8);
    assert_eq!((h.t.command_slots(), h.t.session_slots()), (64, 8));
}
