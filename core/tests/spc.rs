//! SPC commands with golden CDBs: INQUIRY and VPD pages, REPORT LUNS, TEST
//! UNIT READY, REQUEST SENSE, MODE SENSE/SELECT, LOG SENSE, REPORT SUPPORTED
//! OPERATION CODES / TMFs, REPORT TARGET PORT GROUPS, RESERVE/RELEASE.
mod common;
use common::*;
use rscst_core::{
    AluaState, DataDirection, GroupId, Residual, ScsiStatus, TargetPortGroupId, TmfFunction,
};

const INQ: [u8; 6] = [0x12, 0, 0, 0, 0xff, 0];

fn vpd(page: u8) -> [u8; 6] {
    [0x12, 0x01, page, 0x00, 0xff, 0]
}

#[test]
fn inquiry_standard_data() {
    let (mut h, _) = ram_target(64);
    let s = h.login_clean("iqn.t:a", 0);
    let o = h.read_cmd(s, 0, &INQ, 255);
    o.good().residual(Residual::Under(255 - 96));
    let d = &o.data;
    assert_eq!(d.len(), 96);
    // TPGS 01b and 3PC (EXTENDED COPY) in byte 5.
    assert_eq!(&d[..8], &[0x00, 0x80, 0x06, 0x32, 91, 0x18, 0x00, 0x02]);
    assert_eq!(&d[8..16], b"RSCST   ");
    assert_eq!(&d[16..32], b"core tests      ");
    assert_eq!(&d[32..36], b"0001");
    // SAM-5, SPC-4, SBC-3 and the transport's (FCP-4) version descriptors.
    assert_eq!(
        &d[58..66],
        &[0x00, 0xa0, 0x04, 0x60, 0x04, 0xc0, 0x0a, 0x40]
    );
    assert!(d[66..].iter().all(|&b| b == 0));
}

#[test]
fn inquiry_allocation_length_truncates_without_overflow() {
    let (mut h, _) = ram_target(64);
    let s = h.login_clean("iqn.t:a", 0);
    let full = h.read_cmd(s, 0, &INQ, 255).data;
    // ALLOCATION LENGTH 36 with an expected length of 36.
    let o = h.read_cmd(s, 0, &[0x12, 0, 0, 0, 36, 0], 36);
    o.good().residual(Residual::None).data(&full[..36]);
    // ALLOCATION LENGTH 200 but the initiator expects only 20 bytes.
    let o = h.read_cmd(s, 0, &[0x12, 0, 0, 0, 200, 0], 20);
    o.good().residual(Residual::Over(96 - 20)).data(&full[..20]);
    // ALLOCATION LENGTH 0: no data, not an error.
    h.read_cmd(s, 0, &[0x12, 0, 0, 0, 0, 0], 0).good().data(&[]);
}

#[test]
fn inquiry_bad_fields_point_at_them() {
    let (mut h, _) = ram_target(64);
    let s = h.login_clean("iqn.t:a", 0);
    // PAGE CODE without EVPD.
    h.read_cmd(s, 0, &[0x12, 0, 0x80, 0, 0xff, 0], 255)
        .invalid_cdb(2, Some(7));
    // An unsupported VPD page.
    h.read_cmd(s, 0, &[0x12, 1, 0x99, 0, 0xff, 0], 255)
        .invalid_cdb(2, Some(7));
    // CMDDT (obsolete) set: reserved in SPC-4.
    h.read_cmd(s, 0, &[0x12, 0x02, 0, 0, 0xff, 0], 255)
        .invalid_cdb(1, Some(1));
    // LINK in the control byte.
    h.read_cmd(s, 0, &[0x12, 0, 0, 0, 0xff, 0x01], 255)
        .invalid_cdb(5, Some(0));
}

#[test]
fn vpd_supported_pages_and_serial() {
    let (mut h, _) = ram_target(64);
    let s = h.login_clean("iqn.t:a", 0);
    let o = h.read_cmd(s, 0, &vpd(0x00), 255);
    o.good()
        .data(&[0, 0, 0, 8, 0x00, 0x80, 0x83, 0x86, 0x8f, 0xb0, 0xb1, 0xb2]);
    let o = h.read_cmd(s, 0, &vpd(0x80), 255);
    let mut want = vec![0, 0x80, 0, 32];
    want.extend_from_slice(b"SN0001");
    want.extend_from_slice(&[b' '; 26]);
    o.good().data(&want);
}

#[test]
fn vpd_device_identification() {
    let (mut h, _) = ram_target(64);
    let s = h.login_clean("iqn.t:a", 0);
    let d = h.read_cmd(s, 0, &vpd(0x83), 255).good().data.clone();
    assert_eq!(&d[..2], &[0x00, 0x83]);
    assert_eq!(usize::from(u16::from_be_bytes([d[2], d[3]])), d.len() - 4);
    // Walk the designators: (code set, type/association, length).
    let mut found = Vec::new();
    let mut at = 4;
    while at < d.len() {
        let len = usize::from(d[at + 3]);
        found.push((
            d[at] & 0x0f,
            d[at + 1] & 0x3f,
            d[at + 4..at + 4 + len].to_vec(),
        ));
        at += 4 + len;
    }
    assert_eq!(at, d.len());
    // NAA (locally assigned, type 3), binary, LU association.
    assert_eq!(found[0].0, 1);
    assert_eq!(found[0].1, 0x03);
    assert_eq!(found[0].2.len(), 8);
    assert_eq!(found[0].2[0] >> 4, 3);
    // T10 vendor ID: vendor + serial, ASCII.
    assert_eq!((found[1].0, found[1].1), (2, 0x01));
    assert_eq!(found[1].2, b"RSCST   SN0001");
    // Relative target port 1 and target port group 1, port association.
    assert_eq!((found[2].1, &found[2].2[..]), (0x14, &[0u8, 0, 0, 1][..]));
    assert_eq!((found[3].1, &found[3].2[..]), (0x15, &[0u8, 0, 0, 1][..]));
    assert_eq!(found.len(), 4);
}

#[test]
fn vpd_lu_group_designator_when_configured() {
    let (mut h, _) = ram_target_with(64, 512, |c| c.lu_group = 7);
    let s = h.login_clean("iqn.t:a", 0);
    let d = h.read_cmd(s, 0, &vpd(0x83), 255).good().data.clone();
    let tail = &d[d.len() - 8..];
    assert_eq!(tail, &[0x01, 0x06, 0, 4, 0, 0, 0, 7]);
}

#[test]
fn vpd_extended_inquiry_block_limits_characteristics_provisioning() {
    let (mut h, _) = ram_target(64);
    let s = h.login_clean("iqn.t:a", 0);
    let d = h.read_cmd(s, 0, &vpd(0x86), 255).good().data.clone();
    assert_eq!(&d[..7], &[0, 0x86, 0, 0x3c, 0, 0x07, 0x01]);
    assert_eq!(d.len(), 64);

    let d = h.read_cmd(s, 0, &vpd(0xb0), 255).good().data.clone();
    assert_eq!(&d[..4], &[0, 0xb0, 0, 0x3c]);
    assert_eq!(d.len(), 64);
    let u32_at = |o: usize| u32::from_be_bytes(d[o..o + 4].try_into().unwrap());
    assert_eq!(d[4] & 1, 0, "WSNZ");
    // 512 KiB pool: COMPARE AND WRITE holds 3 x N blocks -> 255 (capped).
    assert_eq!(d[5], 255);
    assert_eq!(u32_at(8), u32::MAX, "MAXIMUM TRANSFER LENGTH: no limit");
    assert_eq!(u32_at(20), u32::MAX, "MAXIMUM UNMAP LBA COUNT");
    assert_eq!(u32_at(24), 4096, "MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT");
    assert_eq!(u32_at(28), 1, "OPTIMAL UNMAP GRANULARITY");
    assert_eq!(u32_at(32), 0x8000_0000, "UGAVALID");
    assert_eq!(
        u32_at(44),
        512,
        "MAXIMUM ATOMIC TRANSFER LENGTH: half the pool"
    );

    let d = h.read_cmd(s, 0, &vpd(0xb1), 255).good().data.clone();
    assert_eq!(&d[..6], &[0, 0xb1, 0, 0x3c, 0, 1]);
    assert_eq!(d.len(), 64);
    // WABEREQ 01b (reads after SANITIZE BLOCK ERASE complete with GOOD),
    // WACEREQ 00b, form factor not reported.
    assert_eq!(d[7], 0x40);

    let d = h.read_cmd(s, 0, &vpd(0xb2), 255).good().data.clone();
    assert_eq!(d, &[0, 0xb2, 0, 4, 0, 0xe4, 0x02, 0]);
}

#[test]
fn vpd_provisioning_of_a_fully_provisioned_lu() {
    let (mut h, _) = ram_target_with(64, 512, |c| c.thin = false);
    let s = h.login_clean("iqn.t:a", 0);
    let d = h.read_cmd(s, 0, &vpd(0xb2), 255).good().data.clone();
    assert_eq!(d, &[0, 0xb2, 0, 4, 0, 0, 0, 0]);
    let d = h.read_cmd(s, 0, &vpd(0xb0), 255).good().data.clone();
    assert_eq!(&d[20..28], &[0; 8], "no UNMAP limits without UNMAP");
}

#[test]
fn report_luns_lists_the_group_map_in_order() {
    let (mut h, lu) = ram_target(64);
    for n in [300u16, 5] {
        h.t.map_lun(
            GroupId::DEFAULT,
            rscst_core::Lun::single_level(n).unwrap(),
            lu,
            rscst_core::Access::ReadWrite,
        )
        .unwrap();
    }
    let s = h.login_clean("iqn.t:a", 0);
    let o = h.read_cmd(s, 0, &[0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0], 256);
    let mut want = vec![0, 0, 0, 24, 0, 0, 0, 0];
    want.extend_from_slice(&[0; 8]);
    want.extend_from_slice(&[0, 5, 0, 0, 0, 0, 0, 0]);
    want.extend_from_slice(&[0x41, 0x2c, 0, 0, 0, 0, 0, 0]);
    o.good().data(&want).residual(Residual::Under(256 - 32));
    // SELECT REPORT 01h: well-known LUs only (none).
    h.read_cmd(s, 0, &[0xa0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0], 256)
        .good()
        .data(&[0; 8]);
    // Reserved SELECT REPORT value, allocation length below 16.
    h.read_cmd(s, 0, &[0xa0, 0, 3, 0, 0, 0, 0, 0, 1, 0, 0, 0], 256)
        .invalid_cdb(2, Some(7));
    h.read_cmd(s, 0, &[0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 15, 0, 0], 15)
        .invalid_cdb(6, Some(7));
}

#[test]
fn test_unit_ready_and_unmapped_lun() {
    let (mut h, _) = ram_target(64);
    let s = h.login_clean("iqn.t:a", 0);
    h.cmd(s, 0, &TUR).good().residual(Residual::None);
    h.cmd(s, 4, &TUR).check(0x5, 0x25, 0x00);
    // INQUIRY on an unmapped LUN: peripheral qualifier 3, device type 1Fh.
    let o = h.read_cmd(s, 4, &INQ, 96);
    o.good();
    assert_eq!(o.data[0], 0x7f);
    h.read_cmd(s, 4, &vpd(0x00), 96)
        .good()
        .data(&[0x7f, 0, 0, 1, 0]);
    h.read_cmd(s, 4, &vpd(0x83), 96).invalid_cdb(2, Some(7));
    // REPORT LUNS through an unmapped LUN works.
    let o = h.read_cmd(s, 4, &[0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0], 16);
    o.good()
        .data(&[0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    // REQUEST SENSE on it: GOOD, LOGICAL UNIT NOT SUPPORTED in the data.
    let o = h.read_cmd(s, 4, &[0x03, 0, 0, 0, 18, 0], 18);
    o.good();
    assert_eq!((o.data[2], o.data[12], o.data[13]), (5, 0x25, 0));
    // Anything else: LOGICAL UNIT NOT SUPPORTED.
    h.read_cmd(s, 4, &rd10(0, 1), 512).check(0x5, 0x25, 0x00);
}

#[test]
fn request_sense_formats_and_unit_attention() {
    let (mut h, _) = ram_target(64);
    let s = h.login("iqn.t:a");
    // The power-on UA is reported by REQUEST SENSE (and cleared), in the
    // format DESC asks for.
    let o = h.read_cmd(s, 0, &[0x03, 0x01, 0, 0, 252, 0], 252);
    o.good();
    assert_eq!(&o.data[..4], &[0x72, 0x06, 0x29, 0x00]);
    assert_eq!(o.data.len(), 8);
    h.cmd(s, 0, &TUR).good();
    let o = h.read_cmd(s, 0, &[0x03, 0, 0, 0, 252, 0], 252);
    o.good().residual(Residual::Under(252 - 18));
    assert_eq!(
        o.data,
        [0x70, 0, 0, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    );
}

fn mode_sense6(page: u8, alloc: u8) -> [u8; 6] {
    [0x1a, 0, page, 0, alloc, 0]
}

#[test]
fn mode_sense_all_pages() {
    let (mut h, _) = ram_target(64);
    let s = h.login_clean("iqn.t:a", 0);
    let d = h
        .read_cmd(s, 0, &mode_sense6(0x3f, 255), 255)
        .good()
        .data
        .clone();
    // Header, 8-byte block descriptor, pages 01 (12), 08 (20), 0A (12), 1C (12).
    assert_eq!(d.len(), 4 + 8 + 56);
    assert_eq!(&d[..4], &[(d.len() - 1) as u8, 0, 0x10, 8]);
    assert_eq!(&d[4..12], &[0, 0, 0, 64, 0, 0, 2, 0]);
    assert_eq!(&d[12..14], &[0x81, 0x0a]);
    assert_eq!(&d[24..27], &[0x88, 0x12, 0x04]);
    assert_eq!(&d[44..46], &[0x8a, 0x0a]);
    assert_eq!(&d[56..59], &[0x9c, 0x0a, 0x08]);
    // All pages and subpages (3Fh/FFh) is the same here.
    let o = h.read_cmd(s, 0, &[0x1a, 0, 0x3f, 0xff, 255, 0], 255);
    o.good().data(&d);
    // DBD drops the block descriptor.
    let o = h.read_cmd(s, 0, &[0x1a, 0x08, 0x08, 0, 255, 0], 255);
    assert_eq!(
        &o.good().data[..],
        &[
            23, 0, 0x10, 0, 0x88, 0x12, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
        ]
    );
}

#[test]
fn mode_sense_page_controls_and_errors() {
    let (mut h, _) = ram_target(64);
    let s = h.login_clean("iqn.t:a", 0);
    // Changeable values of the control page: D_SENSE, QERR, SWP, TAS.
    let o = h.read_cmd(s, 0, &[0x1a, 0x08, 0x4a, 0, 255, 0], 255);
    assert_eq!(&o.good().data[4..10], &[0x8a, 0x0a, 0x04, 0x06, 0x08, 0x40]);
    // Default and saved values: all clear.
    for pc in [0x80u8, 0xc0] {
        let o = h.read_cmd(s, 0, &[0x1a, 0x08, pc | 0x0a, 0, 255, 0], 255);
        assert_eq!(&o.good().data[4..10], &[0x8a, 0x0a, 0, 0, 0, 0]);
    }
    h.read_cmd(s, 0, &mode_sense6(0x05, 255), 255)
        .invalid_cdb(2, Some(5));
    h.read_cmd(s, 0, &[0x1a, 0, 0x0a, 0x01, 255, 0], 255)
        .invalid_cdb(3, Some(7));
    // MODE SENSE(10) with LLBAA: a 16-byte block descriptor.
    let o = h.read_cmd(s, 0, &[0x5a, 0x10, 0x08, 0, 0, 0, 0, 0, 255, 0], 255);
    let d = o.good().data.clone();
    assert_eq!(&d[..8], &[0, (d.len() - 2) as u8, 0, 0x10, 1, 0, 0, 16]);
    assert_eq!(
        &d[8..24],
        &[0, 0, 0, 0, 0, 0, 0, 64, 0, 0, 0, 0, 0, 0, 2, 0]
    );
}

#[test]
fn mode_sense_residuals() {
    let (mut h, _) = ram_target(64);
    let s = h.login_clean("iqn.t:a", 0);
    let o = h.read_cmd(s, 0, &mode_sense6(0x3f, 4), 4);
    assert_eq!(o.good().data.len(), 4);
    o.residual(Residual::None);
    h.read_cmd(s, 0, &mode_sense6(0x3f, 255), 255)
        .good()
        .residual(Residual::Under(255 - 68));
}

fn caching_page(wce: bool) -> Vec<u8> {
    let mut p = vec![0u8; 4 + 20];
    p[4] = 0x08;
    p[5] = 0x12;
    p[6] = if wce { 0x04 } else { 0 };
    p
}

#[test]
fn mode_select_changes_wce_and_tells_the_other_nexuses() {
    let (mut h, _) = ram_target(64);
    let a = h.login_clean("iqn.t:a", 0);
    let b = h.login_clean("iqn.t:b", 0);
    let p = caching_page(false);
    h.write_cmd(a, 0, &[0x15, 0x10, 0, 0, p.len() as u8, 0], &p)
        .good();
    let o = h.read_cmd(a, 0, &[0x1a, 0x08, 0x08, 0, 255, 0], 255);
    assert_eq!(o.good().data[6], 0, "WCE cleared");
    h.cmd(a, 0, &TUR).good();
    h.cmd(b, 0, &TUR).check(0x6, 0x2a, 0x01);
    h.cmd(b, 0, &TUR).good();
    // Unchanged parameters: no unit attention.
    h.write_cmd(a, 0, &[0x15, 0x10, 0, 0, p.len() as u8, 0], &p)
        .good();
    h.cmd(b, 0, &TUR).good();
}

#[test]
fn mode_select_rejects_what_cannot_change() {
    let (mut h, _) = ram_target(64);
    let s = h.login_clean("iqn.t:a", 0);
    let mut p = caching_page(true);
    p[7] = 0x01; // a retention priority, not changeable
    h.write_cmd(s, 0, &[0x15, 0x10, 0, 0, p.len() as u8, 0], &p)
        .check(0x5, 0x26, 0x00);
    let o = h.write_cmd(s, 0, &[0x15, 0x10, 0, 0, p.len() as u8, 0], &p);
    assert_eq!(
        o.sks(),
        Some([0x80 | 0x08, 0, 7]),
        "field pointer into the parameter list, bit 0"
    );
    // PF must be set.
    let p = caching_page(true);
    h.write_cmd(s, 0, &[0x15, 0x00, 0, 0, p.len() as u8, 0], &p)
        .invalid_cdb(1, Some(4));
    // Wrong page length.
    let mut q = caching_page(true);
    q[5] = 0x10;
    h.write_cmd(s, 0, &[0x15, 0x10, 0, 0, q.len() as u8, 0], &q)
        .check(0x5, 0x26, 0x00);
    // An unknown page.
    let mut r = caching_page(true);
    r[4] = 0x05;
    h.write_cmd(s, 0, &[0x15, 0x10, 0, 0, r.len() as u8, 0], &r)
        .check(0x5, 0x26, 0x00);
    // A block descriptor with another block size.
    let mut bd = vec![0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 4, 0];
    bd.extend_from_slice(&caching_page(true)[4..]);
    h.write_cmd(s, 0, &[0x15, 0x10, 0, 0, bd.len() as u8, 0], &bd)
        .check(0x5, 0x26, 0x00);
    // The same descriptor with the right block size is accepted.
    bd[10] = 2;
    h.write_cmd(s, 0, &[0x15, 0x10, 0, 0, bd.len() as u8, 0], &bd)
        .good();
    // A truncated parameter list.
    h.write_cmd(s, 0, &[0x15, 0x10, 0, 0, 2, 0], &[0, 0])
        .check(0x5, 0x1a, 0x00);
    // Parameter list length 0: nothing to do.
    h.cmd(s, 0, &[0x15, 0x10, 0, 0, 0, 0]).good();
}

fn control_page(d_sense: bool, qerr: u8, swp: bool, tas: bool) -> Vec<u8> {
    let mut p = vec![0u8; 8 + 12];
    p[8] = 0x0a;
    p[9] = 0x0a;
    p[10] = if d_sense { 0x04 } else { 0 };
    p[11] = qerr << 1;
    p[12] = if swp { 0x08 } else { 0 };
    p[13] = if tas { 0x40 } else { 0 };
    p[16] = 0xff;
    p[17] = 0xff;
    p
}

#[test]
fn mode_select10_control_page_d_sense_swp_and_saving() {
    let (mut h, _) = ram_target(64);
    let s = h.login_clean("iqn.t:a", 0);
    let sel = |p: &Vec<u8>, sp: bool| {
        [
            0x55,
            0x10 | u8::from(sp),
            0,
            0,
            0,
            0,
            0,
            0,
            p.len() as u8,
            0,
        ]
    };
    // D_SENSE: errors in descriptor format.
    let p = control_page(true, 0, false, false);
    h.write_cmd(s, 0, &sel(&p, false), &p).good();
    let o = h.read_cmd(s, 0, &rd10(1000, 1), 512);
    o.check(0x5, 0x21, 0x00);
    assert_eq!(o.sense[0], 0x72);
    // SWP: the LU is write protected, and MODE SENSE says so.
    let p = control_page(false, 0, true, false);
    h.write_cmd(s, 0, &sel(&p, false), &p).good();
    h.write_cmd(s, 0, &wr10(0, 1), &[0; 512])
        .check(0x7, 0x27, 0x02);
    assert_eq!(
        h.read_cmd(s, 0, &mode_sense6(0x0a, 255), 255).good().data[2] & 0x80,
        0x80
    );
    // QERR 10b is reserved.
    let p = control_page(false, 2, false, false);
    h.write_cmd(s, 0, &sel(&p, false), &p)
        .check(0x5, 0x26, 0x00);
    // Save TAS; a LUN reset returns the current values to the saved ones.
    let p = control_page(false, 0, false, true);
    h.write_cmd(s, 0, &sel(&p, true), &p).good();
    let p = control_page(true, 1, false, true);
    h.write_cmd(s, 0, &sel(&p, false), &p).good();
    let t = h.tmf(s, 0, TmfFunction::LogicalUnitReset);
    h.settle();
    h.tmf_result(t);
    h.cmd(s, 0, &TUR).check(0x6, 0x29, 0x03);
    let o = h.read_cmd(s, 0, &[0x1a, 0x08, 0x0a, 0, 255, 0], 255);
    assert_eq!(&o.good().data[4..10], &[0x8a, 0x0a, 0, 0, 0, 0x40]);
    let o = h.read_cmd(s, 0, &[0x1a, 0x08, 0xca, 0, 255, 0], 255);
    assert_eq!(
        &o.good().data[4..10],
        &[0x8a, 0x0a, 0, 0, 0, 0x40],
        "saved values"
    );
}

#[test]
fn log_sense_pages() {
    let (mut h, _) = ram_target(64);
    let s = h.login_clean("iqn.t:a", 0);
    h.read_cmd(s, 0, &[0x4d, 0, 0x00, 0, 0, 0, 0, 0, 255, 0], 255)
        .good()
        .data(&[0, 0, 0, 3, 0, 2, 3]);
    h.read_cmd(s, 0, &[0x4d, 0, 0x00, 0xff, 0, 0, 0, 0, 255, 0], 255)
        .good()
        .data(&[0x40, 0xff, 0, 8, 0, 0, 0, 0xff, 2, 0, 3, 0]);
    h.write_cmd(s, 0, &wr10(0, 4), &[1; 2048]).good();
    h.read_cmd(s, 0, &rd10(0, 2), 1024).good();
    // Write error counters: parameter 0005h, total bytes processed.
    let d = h
        .read_cmd(s, 0, &[0x4d, 0, 0x42, 0, 0, 0, 5, 0, 255, 0], 255)
        .good()
        .data
        .clone();
    assert_eq!(&d[..4], &[0x02, 0, 0, 12 + 8]);
    assert_eq!(&d[4..16], &[0, 5, 0, 8, 0, 0, 0, 0, 0, 0, 0x08, 0x00]);
    assert_eq!(&d[16..24], &[0, 6, 0, 4, 0, 0, 0, 0]);
    let d = h
        .read_cmd(s, 0, &[0x4d, 0, 0x43, 0, 0, 0, 5, 0, 255, 0], 255)
        .good()
        .data
        .clone();
    assert_eq!(&d[4..16], &[0, 5, 0, 8, 0, 0, 0, 0, 0, 0, 0x04, 0x00]);
    // Every parameter from 0000h.
    let d = h
        .read_cmd(s, 0, &[0x4d, 0, 0x42, 0, 0, 0, 0, 0, 255, 0], 255)
        .good()
        .data
        .clone();
    assert_eq!(d.len(), 4 + 6 * 8 + 12);
    h.read_cmd(s, 0, &[0x4d, 0, 0x17, 0, 0, 0, 0, 0, 255, 0], 255)
        .invalid_cdb(2, Some(5));
    h.read_cmd(s, 0, &[0x4d, 0x01, 0x02, 0, 0, 0, 0, 0, 255, 0], 255)
        .invalid_cdb(1, Some(0));
    h.read_cmd(s, 0, &[0x4d, 0, 0x02, 0, 0, 0, 7, 0, 255, 0], 255)
        .invalid_cdb(5, Some(7));
}

fn rsoc(option: u8, rctd: bool, op: u8, sa: u16) -> [u8; 12] {
    let sa = sa.to_be_bytes();
    [
        0xa3,
        0x0c,
        option | if rctd { 0x80 } else { 0 },
        op,
        sa[0],
        sa[1],
        0,
        0,
        0x10,
        0,
        0,
        0,
    ]
}

#[test]
fn report_supported_operation_codes() {
    let (mut h, _) = ram_target(64);
    let s = h.login_clean("iqn.t:a", 0);
    let d = h
        .read_cmd(s, 0, &rsoc(0, false, 0, 0), 4096)
        .good()
        .data
        .clone();
    let n = u32::from_be_bytes(d[..4].try_into().unwrap()) as usize;
    assert_eq!(n % 8, 0);
    assert_eq!(d.len(), 4 + n);
    let descs: Vec<&[u8]> = d[4..].chunks(8).collect();
    assert_eq!(descs.len(), 66);
    assert_eq!(descs[0], &[0x00, 0, 0, 0, 0, 0, 0, 6]);
    let rc16 = descs.iter().find(|x| x[0] == 0x9e && x[3] == 0x10).unwrap();
    assert_eq!(rc16, &&[0x9e, 0, 0, 0x10, 0, 0x01, 0, 16][..], "SERVACTV");
    // PERSISTENT RESERVE IN (4 service actions) and OUT (8), EXTENDED
    // COPY (LID1) and RECEIVE COPY RESULTS (COPY STATUS, OPERATING PARAMETERS).
    for (op, n) in [(0x5e, 4), (0x5f, 8), (0x83, 1), (0x84, 2)] {
        assert_eq!(descs.iter().filter(|x| x[0] == op).count(), n, "{op:#x}");
    }
    // With RCTD: 20-byte descriptors with CTDP and the timeouts descriptor.
    let d = h
        .read_cmd(s, 0, &rsoc(0, true, 0, 0), 4096)
        .good()
        .data
        .clone();
    assert_eq!(u32::from_be_bytes(d[..4].try_into().unwrap()), 66 * 20);
    assert_eq!(
        &d[4..24],
        &[
            0, 0, 0, 0, 0, 0x02, 0, 6, 0, 0x0a, 0, 0, 0, 0, 0, 1, 0, 0, 0, 30
        ]
    );
}

#[test]
fn report_supported_operation_codes_one_command() {
    let (mut h, _) = ram_target(64);
    let s = h.login_clean("iqn.t:a", 0);
    let o = h.read_cmd(s, 0, &rsoc(1, false, 0x28, 0), 255);
    o.good().data(&[
        0, 0x03, 0, 10, 0x28, 0x1c, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, 0x04,
    ]);
    let o = h.read_cmd(s, 0, &rsoc(2, true, 0x9e, 0x12), 255);
    let d = o.good().data.clone();
    assert_eq!(&d[..6], &[0, 0x83, 0, 16, 0x9e, 0x12]);
    assert_eq!(d.len(), 4 + 16 + 12);
    assert_eq!(&d[20..22], &[0, 0x0a]);
    // Not supported: SUPPORT 001b.
    h.read_cmd(s, 0, &rsoc(1, false, 0xe8, 0), 255)
        .good()
        .data(&[0, 1, 0, 0]);
    h.read_cmd(s, 0, &rsoc(2, false, 0x9e, 0x11), 255)
        .good()
        .data(&[0, 1, 0, 0]);
    // An opcode with service actions asked without one, and the reverse.
    h.read_cmd(s, 0, &rsoc(1, false, 0x9e, 0), 255)
        .invalid_cdb(3, Some(7));
    h.read_cmd(s, 0, &rsoc(2, false, 0x28, 0), 255)
        .invalid_cdb(3, Some(7));
    // Option 3 handles both.
    h.read_cmd(s, 0, &rsoc(3, false, 0x28, 0), 255).good();
    h.read_cmd(s, 0, &rsoc(3, false, 0x48, 0x1f), 255).good();
    h.read_cmd(s, 0, &rsoc(4, false, 0, 0), 255)
        .invalid_cdb(2, Some(2));
}

#[test]
fn report_supported_task_management_functions() {
    let (mut h, _) = ram_target(64);
    let s = h.login_clean("iqn.t:a", 0);
    h.read_cmd(s, 0, &[0xa3, 0x0d, 0, 0, 0, 0, 0, 0, 0, 255, 0, 0], 255)
        .good()
        .data(&[0xfe, 0x07, 0, 0]);
    let o = h.read_cmd(s, 0, &[0xa3, 0x0d, 0x80, 0, 0, 0, 0, 0, 0, 255, 0, 0], 255);
    let d = o.good().data.clone();
    assert_eq!(d.len(), 16);
    assert_eq!(&d[..4], &[0xfe, 0x07, 0, 0x0c]);
}

#[test]
fn report_target_port_groups_and_alua_state() {
    let (mut h, _) = ram_target(64);
    h.t.add_port(&rscst_core::PortConfig::new(
        rscst_core::RelativePortId(2),
        TargetPortGroupId(2),
    ))
    .unwrap();
    let s = h.login_clean("iqn.t:a", 0);
    let cdb = [0xa3, 0x0a, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0];
    let o = h.read_cmd(s, 0, &cdb, 256);
    o.good().data(&[
        0, 0, 0, 24, //
        0x00, 0x0f, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, //
        0x00, 0x0f, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2,
    ]);
    // Extended header.
    let o = h.read_cmd(s, 0, &[0xa3, 0x2a, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0], 256);
    assert_eq!(&o.good().data[..8], &[0, 0, 0, 28, 0x10, 0, 0, 0]);
    h.read_cmd(s, 0, &[0xa3, 0x4a, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0], 256)
        .invalid_cdb(1, Some(7));
    // Group 1 (our port) goes to standby: every nexus is told, media
    // commands are refused, reports still work.
    h.t.set_port_group_state(TargetPortGroupId(1), AluaState::Standby)
        .unwrap();
    h.cmd(s, 0, &TUR).check(0x6, 0x2a, 0x06);
    h.read_cmd(s, 0, &rd10(0, 1), 512).check(0x2, 0x04, 0x0b);
    let o = h.read_cmd(s, 0, &cdb, 256);
    assert_eq!(o.good().data[4], 0x02);
    h.read_cmd(s, 0, &INQ, 96).good();
    h.t.set_port_group_state(TargetPortGroupId(1), AluaState::ActiveOptimized)
        .unwrap();
    h.cmd(s, 0, &TUR).check(0x6, 0x2a, 0x06);
    h.read_cmd(s, 0, &rd10(0, 1), 512).good();
}

const RESERVE6: [u8; 6] = [0x16, 0, 0, 0, 0, 0];
const RELEASE6: [u8; 6] = [0x17, 0, 0, 0, 0, 0];

#[test]
fn reserve6_two_initiators() {
    let (mut h, _) = ram_target(64);
    let a = h.login_clean("iqn.t:a", 0);
    let b = h.login_clean("iqn.t:b", 0);
    h.cmd(a, 0, &RESERVE6).good();
    h.cmd(a, 0, &RESERVE6).good();
    h.cmd(b, 0, &RESERVE6)
        .status(ScsiStatus::ReservationConflict);
    h.cmd(b, 0, &RELEASE6).good();
    h.read_cmd(a, 0, &mode_sense6(0x3f, 255), 255).good();
    h.read_cmd(b, 0, &mode_sense6(0x3f, 255), 255)
        .status(ScsiStatus::ReservationConflict);
    h.cmd(b, 0, &TUR).status(ScsiStatus::ReservationConflict);
    h.read_cmd(b, 0, &rd10(0, 1), 512)
        .status(ScsiStatus::ReservationConflict);
    h.read_cmd(b, 0, &INQ, 96).good();
    h.read_cmd(b, 0, &[0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0], 16)
        .good();
    h.read_cmd(b, 0, &[0x03, 0, 0, 0, 18, 0], 18).good();
    // PREVENT ALLOW with PREVENT=0 is allowed, PREVENT=1 is not.
    h.cmd(b, 0, &[0x1e, 0, 0, 0, 0, 0]).good();
    h.cmd(b, 0, &[0x1e, 0, 0, 0, 1, 0])
        .status(ScsiStatus::ReservationConflict);
    h.cmd(a, 0, &RELEASE6).good();
    h.cmd(b, 0, &RESERVE6).good();
    h.cmd(b, 0, &RELEASE6).good();
    // RESERVE(10) with a third party is not supported.
    h.cmd(a, 0, &[0x56, 0x10, 0, 0, 0, 0, 0, 0, 0, 0])
        .invalid_cdb(1, Some(4));
    h.cmd(a, 0, &[0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0]).good();
    h.cmd(b, 0, &[0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0])
        .status(ScsiStatus::ReservationConflict);
    h.cmd(a, 0, &[0x57, 0, 0, 0, 0, 0, 0, 0, 0, 0]).good();
    h.cmd(b, 0, &[0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0]).good();
}

#[test]
fn reserve6_released_by_resets_and_nexus_loss() {
    for how in 0..4 {
        let (mut h, _) = ram_target(64);
        let a = h.login_clean("iqn.t:a", 0);
        let b = h.login_clean("iqn.t:b", 0);
        h.cmd(a, 0, &RESERVE6).good();
        match how {
            0 => {
                let t = h.tmf(a, 0, TmfFunction::LogicalUnitReset);
                h.settle();
                h.tmf_result(t);
            }
            1 => {
                let t = h.tmf(b, 0, TmfFunction::TargetReset);
                h.settle();
                h.tmf_result(t);
            }
            2 => {
                let t = h.tmf(a, 0, TmfFunction::ItNexusReset);
                h.settle();
                h.tmf_result(t);
            }
            _ => h.t.remove_session(a).unwrap(),
        }
        h.settle();
        let o = h.cmd(b, 0, &RESERVE6);
        if o.status == ScsiStatus::CheckCondition {
            o.check(0x6, 0x29, if how == 0 { 0x03 } else { 0x00 });
            h.cmd(b, 0, &RESERVE6).good();
        } else {
            o.good();
        }
    }
}

#[test]
fn commands_longer_than_the_expected_direction() {
    // An emulated data-in command whose initiator announced Data-Out: the
    // command runs, nothing is transferred, the residual says so.
    let (mut h, _) = ram_target(64);
    let s = h.login_clean("iqn.t:a", 0);
    let o = h.exec(s, 0, &INQ, DataDirection::Out, 96, &[0; 96]);
    o.good().residual(Residual::Over(96)).data(&[]);
}
