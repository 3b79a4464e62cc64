//! EXTENDED COPY (LID1) and RECEIVE COPY RESULTS with golden parameter
//! lists: the copy itself (one LU, two LUs, overlapping ranges), the limits
//! and errors libiscsi's ExtendedCopy.* tests check, COPY STATUS, the
//! third-party copy VPD page, fairness with other commands and aborts.
mod common;
use common::*;
use rscst_core::{
    Access, DataDirection, GroupId, LuConfig, Lun, RamBackend, ScsiStatus, SessionHandle,
    TmfFunction,
};

fn xcopy_cdb(len: u32) -> [u8; 16] {
    let l = len.to_be_bytes();
    [
        0x83, 0, 0, 0, 0, 0, 0, 0, 0, 0, l[0], l[1], l[2], l[3], 0, 0,
    ]
}

fn rcr(sa: u8, list_id: u8, alloc: u32) -> [u8; 16] {
    let a = alloc.to_be_bytes();
    [
        0x84, sa, list_id, 0, 0, 0, 0, 0, 0, 0, a[0], a[1], a[2], a[3], 0, 0,
    ]
}

/// The NAA designator of the LU at `lun`, from VPD page 83h.
fn naa<B: rscst_core::Backend>(h: &mut H<B>, s: SessionHandle, lun: u16) -> Vec<u8> {
    let d = h
        .exec(
            s,
            lun,
            &[0x12, 1, 0x83, 0, 255, 0],
            DataDirection::In,
            255,
            &[],
        )
        .good()
        .data
        .clone();
    assert_eq!(d[5] & 0x3f, 0x03, "the first designator is the LU's NAA");
    d[8..8 + usize::from(d[7])].to_vec()
}

/// An identification descriptor CSCD descriptor (E4h).
fn cscd(naa: &[u8], flags: u8, block_size: u32) -> Vec<u8> {
    let mut d = vec![0u8; 32];
    d[0] = 0xe4;
    d[1] = flags;
    d[4] = 0x01;
    d[5] = 0x03;
    d[7] = naa.len() as u8;
    d[8..8 + naa.len()].copy_from_slice(naa);
    d[29..32].copy_from_slice(&block_size.to_be_bytes()[1..]);
    d
}

/// A block device to block device segment descriptor (02h).
fn b2b(src: u16, dst: u16, blocks: u16, src_lba: u64, dst_lba: u64) -> Vec<u8> {
    let mut d = vec![0u8; 28];
    d[0] = 0x02;
    d[3] = 0x18;
    d[4..6].copy_from_slice(&src.to_be_bytes());
    d[6..8].copy_from_slice(&dst.to_be_bytes());
    d[10..12].copy_from_slice(&blocks.to_be_bytes());
    d[12..20].copy_from_slice(&src_lba.to_be_bytes());
    d[20..28].copy_from_slice(&dst_lba.to_be_bytes());
    d
}

/// A LID1 parameter list.
fn list(list_id: u8, usage: u8, cscds: &[Vec<u8>], segs: &[Vec<u8>]) -> Vec<u8> {
    let tdl: usize = cscds.iter().map(Vec::len).sum();
    let sdl: usize = segs.iter().map(Vec::len).sum();
    let mut p = vec![0u8; 16];
    p[0] = list_id;
    p[1] = usage << 3;
    p[2..4].copy_from_slice(&(tdl as u16).to_be_bytes());
    p[8..12].copy_from_slice(&(sdl as u32).to_be_bytes());
    for d in cscds.iter().chain(segs) {
        p.extend_from_slice(d);
    }
    p
}

const HOLD: u8 = 0;
const DISCARD: u8 = 2;

fn xcopy(h: &mut H<RamB>, s: SessionHandle, p: &[u8]) -> Outcome {
    h.write_cmd(s, 0, &xcopy_cdb(p.len() as u32), p)
}

#[test]
fn copy_within_one_lu() {
    // libiscsi ExtendedCopy.Simple: 2048 blocks from the start to the end.
    let (mut h, _) = ram_target(4096);
    let s = h.login_clean("iqn.t:a", 0);
    let data = pattern(2048 * 512, 3);
    h.write_cmd(s, 0, &wr16(0, 2048), &data).good();
    let n = naa(&mut h, s, 0);
    let p = list(1, DISCARD, &[cscd(&n, 0, 512)], &[b2b(0, 0, 2048, 0, 2048)]);
    xcopy(&mut h, s, &p).good();
    assert_eq!(lun_bytes(&h, 2048, 2048), data);
    // A parameter list length of 0 is not an error.
    h.cmd(s, 0, &xcopy_cdb(0)).good();
}

#[test]
fn copy_overlapping_ranges_backwards() {
    let (mut h, _) = ram_target(2048);
    let s = h.login_clean("iqn.t:a", 0);
    let data = pattern(1024 * 512, 9);
    h.write_cmd(s, 0, &wr16(0, 1024), &data).good();
    let n = naa(&mut h, s, 0);
    // 1024 blocks from LBA 0 to LBA 300: the ranges overlap upwards.
    let p = list(1, DISCARD, &[cscd(&n, 0, 512)], &[b2b(0, 0, 1024, 0, 300)]);
    xcopy(&mut h, s, &p).good();
    assert_eq!(lun_bytes(&h, 300, 1024), data);
    // And downwards.
    let p = list(
        1,
        DISCARD,
        &[cscd(&n, 0, 512)],
        &[b2b(0, 0, 1024, 300, 100)],
    );
    xcopy(&mut h, s, &p).good();
    assert_eq!(lun_bytes(&h, 100, 1024), data);
}

/// Two RAM LUs of 1024 blocks as LUN 0 and LUN 1.
fn two_lus() -> (H<RamB>, SessionHandle) {
    let m0 = mem(1024 * 512, 0x4000_0000);
    let m1 = mem(1024 * 512, 0x5000_0000);
    let mut ram: RamB = RamBackend::new();
    let a = ram.add_lun(m0, 512).unwrap();
    let b = ram.add_lun(m1, 512).unwrap();
    let mut h = H::new(ram, 512 * 1024, &[m0, m1]);
    for (n, id) in [(0u16, a), (1, b)] {
        let lu = h.t.add_lu(&LuConfig::new(id, 512, 1024)).unwrap();
        h.t.map_lun(
            GroupId::DEFAULT,
            Lun::single_level(n).unwrap(),
            lu,
            Access::ReadWrite,
        )
        .unwrap();
    }
    let s = h.login_clean("iqn.t:a", 0);
    h.cmd(s, 1, &TUR);
    (h, s)
}

#[test]
fn copy_between_two_lus_and_reservations_on_the_other() {
    let (mut h, s) = two_lus();
    let data = pattern(100 * 512, 5);
    h.write_cmd(s, 0, &wr10(10, 100), &data).good();
    let (n0, n1) = (naa(&mut h, s, 0), naa(&mut h, s, 1));
    assert_ne!(n0, n1);
    let p = list(
        7,
        HOLD,
        &[cscd(&n0, 0, 512), cscd(&n1, 0, 512)],
        &[b2b(0, 1, 60, 10, 500), b2b(0, 1, 40, 70, 560)],
    );
    xcopy(&mut h, s, &p).good();
    let got = h
        .read_cmd(s, 1, &rd10(500, 100), 100 * 512)
        .good()
        .data
        .clone();
    assert_eq!(got, data);
    // COPY STATUS: done, two segments, 51200 bytes; then discarded.
    h.read_cmd(s, 0, &rcr(0, 7, 64), 64)
        .good()
        .data(&[0, 0, 0, 8, 0x01, 0, 2, 0, 0, 0, 0xc8, 0]);
    h.read_cmd(s, 0, &rcr(0, 7, 64), 64).invalid_cdb(2, Some(7));
    // Another initiator reserves LUN 1 exclusively: the copy into it conflicts.
    let b = h.login_clean("iqn.t:b", 1);
    let mut po = vec![0u8; 24];
    po[8..16].copy_from_slice(&1u64.to_be_bytes());
    h.write_cmd(b, 1, &[0x5f, 0, 0, 0, 0, 0, 0, 0, 24, 0], &po)
        .good();
    po[..8].copy_from_slice(&1u64.to_be_bytes());
    po[8..16].fill(0);
    h.write_cmd(b, 1, &[0x5f, 1, 3, 0, 0, 0, 0, 0, 24, 0], &po)
        .good();
    xcopy(&mut h, s, &p).status(ScsiStatus::ReservationConflict);
}

#[test]
fn parameter_list_length_errors() {
    // libiscsi ExtendedCopy.ParamHdr.
    let (mut h, _) = ram_target(4096);
    let s = h.login_clean("iqn.t:a", 0);
    let n = naa(&mut h, s, 0);
    let p = list(1, HOLD, &[cscd(&n, 0, 512)], &[b2b(0, 0, 2048, 0, 2048)]);
    xcopy(&mut h, s, &p[..16 + 32 - 1]).check(5, 0x1a, 0);
    xcopy(&mut h, s, &p[..p.len() - 1]).check(5, 0x1a, 0);
    xcopy(&mut h, s, &p[..10]).check(5, 0x1a, 0);
}

#[test]
fn operating_parameters_and_descriptor_limits() {
    // libiscsi ReceiveCopyResults.OpParams and ExtendedCopy.DescrLimits.
    let (mut h, _) = ram_target(4096);
    let s = h.login_clean("iqn.t:a", 0);
    let d = h.read_cmd(s, 0, &rcr(3, 0, 1024), 1024).good().data.clone();
    let mut want = vec![0, 0, 0, 42, 0x01, 0, 0, 0, 0, 8, 0, 16, 0, 0, 4, 0];
    want.extend_from_slice(&[0xff; 4]);
    want.extend_from_slice(&[0; 12]);
    want.extend_from_slice(&[0, 0, 0, 8, 8, 9, 0, 0, 0, 0, 0, 2, 0x02, 0xe4]);
    assert_eq!(d, want);
    let n = naa(&mut h, s, 0);
    let seg = b2b(0, 0, 2048, 0, 2048);
    let p = list(
        1,
        HOLD,
        &vec![cscd(&n, 0, 512); 9],
        std::slice::from_ref(&seg),
    );
    xcopy(&mut h, s, &p).check(5, 0x26, 0x06);
    let p = list(2, HOLD, &[cscd(&n, 0, 512)], &vec![seg.clone(); 17]);
    xcopy(&mut h, s, &p).check(5, 0x26, 0x08);
    // Over MAXIMUM DESCRIPTOR LIST LENGTH: refused before the data is taken.
    let p = list(3, HOLD, &vec![cscd(&n, 0, 512); 9], &vec![seg; 28]);
    assert!(p.len() - 16 > 1024);
    let o = xcopy(&mut h, s, &p);
    o.check(5, 0x1a, 0);
}

#[test]
fn unsupported_descriptor_types_and_fields() {
    // libiscsi ExtendedCopy.DescrType and ValidTgtDescr.
    let (mut h, _) = ram_target(4096);
    let s = h.login_clean("iqn.t:a", 0);
    let n = naa(&mut h, s, 0);
    let seg = b2b(0, 0, 2048, 0, 2048);
    let mut fc = cscd(&n, 0, 512);
    fc[0] = 0xe0;
    xcopy(&mut h, s, &list(1, HOLD, &[fc], std::slice::from_ref(&seg))).check(5, 0x26, 0x07);
    let mut s2s = vec![0u8; 20];
    s2s[0] = 0x03;
    s2s[3] = 0x10;
    xcopy(&mut h, s, &list(1, HOLD, &[cscd(&n, 0, 512)], &[s2s])).check(5, 0x26, 0x09);
    // LU ID TYPE has no LU IDENTIFIER to qualify in an E4h descriptor: any
    // value is ignored and the copy runs.
    for (k, lu_id_type) in [0x40u8, 0x80, 0xc0].into_iter().enumerate() {
        let src = 100 * k as u64;
        h.write_cmd(s, 0, &wr10(src as u32, 4), &vec![k as u8 + 1; 4 * 512])
            .good();
        xcopy(
            &mut h,
            s,
            &list(
                9,
                HOLD,
                &[cscd(&n, lu_id_type, 512)],
                &[b2b(0, 0, 4, src, 3000 + src)],
            ),
        )
        .good();
        assert!(
            lun_bytes(&h, 3000 + src, 4)
                .iter()
                .all(|&b| b == k as u8 + 1)
        );
    }
    // NUL: the copy target is unreachable.
    let o = xcopy(
        &mut h,
        s,
        &list(1, HOLD, &[cscd(&n, 0x20, 512)], std::slice::from_ref(&seg)),
    );
    o.check(0xa, 0x0d, 0x02);
    // A designator that names no LU.
    let o = xcopy(
        &mut h,
        s,
        &list(
            1,
            HOLD,
            &[cscd(&[0x60; 16], 0, 512)],
            std::slice::from_ref(&seg),
        ),
    );
    o.check(0xa, 0x0d, 0x02);
    // A block length that is not the LU's.
    let o = xcopy(&mut h, s, &list(1, HOLD, &[cscd(&n, 0, 4096)], &[seg]));
    o.check(5, 0x26, 0);
    assert_eq!(o.sks(), Some([0x80, 0, 16 + 29]));
    // None of these started a copy: nothing is held for list 1.
    h.read_cmd(s, 0, &rcr(0, 1, 64), 64).invalid_cdb(2, Some(7));
}

#[test]
fn segment_descriptor_errors_are_copy_aborted() {
    // libiscsi ExtendedCopy.ValidSegDescr.
    let (mut h, _) = ram_target(4096);
    let s = h.login_clean("iqn.t:a", 0);
    let n = naa(&mut h, s, 0);
    // A destination index beyond the CSCD list: UNREACHABLE COPY TARGET,
    // the segment pointer at DESTINATION CSCD DESCRIPTOR INDEX.
    let o = xcopy(
        &mut h,
        s,
        &list(1, HOLD, &[cscd(&n, 0, 512)], &[b2b(0, 1, 2048, 0, 2048)]),
    );
    o.check(0xa, 0x08, 0x04);
    assert_eq!(o.sks(), Some([0xa0, 0, 6]));
    // Beyond the end of the LU: COPY ABORTED, pointer at the destination LBA,
    // COMMAND-SPECIFIC INFORMATION = segment 1.
    let o = xcopy(
        &mut h,
        s,
        &list(
            1,
            HOLD,
            &[cscd(&n, 0, 512)],
            &[b2b(0, 0, 8, 0, 100), b2b(0, 0, 2048, 0, 4095)],
        ),
    );
    o.check(0xa, 0, 0);
    assert_eq!(o.sks(), Some([0xa0, 0, 20]));
    assert_eq!(&o.sense[8..12], &[0, 0, 0, 1]);
    // Nothing was copied: the whole list is checked first.
    assert_eq!(lun_bytes(&h, 100, 8), vec![0; 8 * 512]);
}

#[test]
fn copy_status_without_a_copy_and_descriptor_format_sense() {
    let (mut h, _) = ram_target(4096);
    let s = h.login_clean("iqn.t:a", 0);
    h.read_cmd(s, 0, &rcr(0, 1, 1024), 1024)
        .invalid_cdb(2, Some(7));
    // Unsupported service actions (RECEIVE DATA, FAILED SEGMENT DETAILS).
    for sa in [1, 4] {
        h.read_cmd(s, 0, &rcr(sa, 1, 1024), 1024)
            .invalid_cdb(1, Some(4));
    }
    // Descriptor format COPY ABORTED: command-specific and sense-key specific descriptors.
    let mut p = vec![0u8; 8];
    p.extend_from_slice(&[0x0a, 0x0a, 0x04, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0]);
    h.write_cmd(s, 0, &[0x55, 0x10, 0, 0, 0, 0, 0, 0, p.len() as u8, 0], &p)
        .good();
    let n = naa(&mut h, s, 0);
    let o = xcopy(
        &mut h,
        s,
        &list(1, HOLD, &[cscd(&n, 0, 512)], &[b2b(0, 0, 8, 0, 4095)]),
    );
    assert_eq!(
        o.sense,
        vec![
            0x72, 0x0a, 0, 0, 0, 0, 0, 20, //
            0x01, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, //
            0x02, 0x06, 0, 0, 0xa0, 0, 20, 0
        ]
    );
}

#[test]
fn third_party_copy_vpd_page() {
    let (mut h, _) = ram_target(64);
    let s = h.login_clean("iqn.t:a", 0);
    let d = h
        .read_cmd(s, 0, &[0x12, 1, 0x8f, 0x04, 0, 0], 1024)
        .good()
        .data
        .clone();
    let mut want = vec![0, 0x8f, 0, 96];
    want.extend_from_slice(&[0, 1, 0, 8, 7, 0x83, 1, 0, 0x84, 2, 0, 3]);
    want.extend_from_slice(&[0, 4, 0, 0x1c, 0, 0, 0, 0, 0, 8, 0, 16, 0, 0, 4, 0]);
    want.extend_from_slice(&[0; 16]);
    want.extend_from_slice(&[0, 8, 0, 4, 2, 0x02, 0xe4, 0]);
    want.extend_from_slice(&[0, 0x0c, 0, 4, 0, 0, 0, 0]);
    want.extend_from_slice(&[0x80, 1, 0, 0x20, 0, 0, 0, 8, 0, 0, 0, 8]);
    want.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 9, 0]);
    want.extend_from_slice(&[0; 18]);
    assert_eq!(d, want);
    assert_eq!(d.len(), 4 + 96);
}

#[test]
fn a_long_copy_gives_way_to_other_commands() {
    let (mut h, _) = ram_target(8192);
    let s = h.login_clean("iqn.t:a", 0);
    let n = naa(&mut h, s, 0);
    // 4096 blocks = 2 MiB: eight chunks.
    let p = list(1, DISCARD, &[cscd(&n, 0, 512)], &[b2b(0, 0, 4096, 0, 4096)]);
    let x = h.submit(
        s,
        0,
        &xcopy_cdb(p.len() as u32),
        DataDirection::Out,
        p.len() as u32,
        &p,
    );
    // Let the parameter list in and the first chunk run.
    h.auto = false;
    h.poll();
    h.complete_for(x);
    h.poll();
    let r = h.submit(s, 0, &rd10(7000, 1), DataDirection::In, 512, &[]);
    h.auto = true;
    h.settle();
    h.result(x).good();
    h.result(r).good();
    let pos = |h: &H<RamB>, c| h.tr.log.iter().rposition(|e| e.cmd() == Some(c)).unwrap();
    assert!(pos(&h, r) < pos(&h, x), "the READ finished during the copy");
}

#[test]
fn aborting_a_copy_between_chunks() {
    let m0 = mem(8192 * 512, 0x4000_0000);
    let mut ram: RamB = RamBackend::new();
    let id = ram.add_lun(m0, 512).unwrap();
    let mut h = H::new(Slow::new(ram), 512 * 1024, &[m0]);
    let lu = h.t.add_lu(&LuConfig::new(id, 512, 8192)).unwrap();
    h.t.map_lun(GroupId::DEFAULT, Lun::ZERO, lu, Access::ReadWrite)
        .unwrap();
    let s = h.login_clean("iqn.t:a", 0);
    let n = naa(&mut h, s, 0);
    let p = list(5, HOLD, &[cscd(&n, 0, 512)], &[b2b(0, 0, 4096, 0, 4096)]);
    h.b.hold = true;
    let x = h.submit(
        s,
        0,
        &xcopy_cdb(p.len() as u32),
        DataDirection::Out,
        p.len() as u32,
        &p,
    );
    h.settle();
    // The first read is held in the backend; the copy is in progress.
    h.read_cmd(s, 0, &rcr(0, 5, 64), 64)
        .good()
        .data(&[0, 0, 0, 8, 0x00, 0, 0, 0, 0, 0, 0, 0]);
    let tag =
        h.tr.log
            .iter()
            .find_map(|e| match e {
                Ev::DataOut { cmd, .. } if cmd.handle == x => Some(cmd.tag),
                _ => None,
            })
            .unwrap();
    let t = h.tmf(s, 0, TmfFunction::AbortTask(tag));
    h.settle();
    assert!(h.outcome(x).is_none(), "backend I/O still in flight");
    h.b.hold = false;
    h.b.release();
    h.settle();
    assert!(h.result(x).aborted);
    h.tmf_result(t);
    let writes =
        h.b.submitted
            .iter()
            .filter(|(_, k, _, _)| *k == rscst_core::IoKind::Write)
            .count();
    assert_eq!(writes, 0, "nothing written after the abort");
    // The held result says: completed with errors.
    h.read_cmd(s, 0, &rcr(0, 5, 64), 64)
        .good()
        .data(&[0, 0, 0, 8, 0x02, 0, 0, 0, 0, 0, 0, 0]);
}

#[test]
fn same_list_id_while_running_is_refused() {
    let m0 = mem(8192 * 512, 0x4000_0000);
    let mut ram: RamB = RamBackend::new();
    let id = ram.add_lun(m0, 512).unwrap();
    let mut h = H::new(Slow::new(ram), 1024 * 1024, &[m0]);
    let lu = h.t.add_lu(&LuConfig::new(id, 512, 8192)).unwrap();
    h.t.map_lun(GroupId::DEFAULT, Lun::ZERO, lu, Access::ReadWrite)
        .unwrap();
    let s = h.login_clean("iqn.t:a", 0);
    let n = naa(&mut h, s, 0);
    let p = list(5, HOLD, &[cscd(&n, 0, 512)], &[b2b(0, 0, 64, 0, 4096)]);
    h.b.hold = true;
    let x = h.submit(
        s,
        0,
        &xcopy_cdb(p.len() as u32),
        DataDirection::Out,
        p.len() as u32,
        &p,
    );
    h.settle();
    let y = h.exec(
        s,
        0,
        &xcopy_cdb(p.len() as u32),
        DataDirection::Out,
        p.len() as u32,
        &p,
    );
    y.check(5, 0x00, 0x16);
    h.b.hold = false;
    h.b.release();
    h.settle();
    h.result(x).good();
}
