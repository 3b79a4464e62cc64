//! WRITE SAME, UNMAP, GET LBA STATUS, COMPARE AND WRITE, START STOP UNIT,
//! PREVENT ALLOW MEDIUM REMOVAL, FORMAT UNIT and SANITIZE.
mod common;
use common::*;
use rscst_core::{DataDirection, Residual, ScsiStatus, TmfFunction};

fn ws10(lba: u32, n: u16, unmap: bool) -> [u8; 10] {
    let l = lba.to_be_bytes();
    let c = n.to_be_bytes();
    [
        0x41,
        if unmap { 0x08 } else { 0 },
        l[0],
        l[1],
        l[2],
        l[3],
        0,
        c[0],
        c[1],
        0,
    ]
}

fn ws16(lba: u64, n: u32, unmap: bool, ndob: bool) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = 0x93;
    c[1] = if unmap { 0x08 } else { 0 } | u8::from(ndob);
    c[2..10].copy_from_slice(&lba.to_be_bytes());
    c[10..14].copy_from_slice(&n.to_be_bytes());
    c
}

fn unmap_list(ranges: &[(u64, u32)]) -> Vec<u8> {
    let mut p = vec![0u8; 8];
    let bdl = (ranges.len() * 16) as u16;
    p[0..2].copy_from_slice(&(bdl + 6).to_be_bytes());
    p[2..4].copy_from_slice(&bdl.to_be_bytes());
    for &(lba, n) in ranges {
        p.extend_from_slice(&lba.to_be_bytes());
        p.extend_from_slice(&n.to_be_bytes());
        p.extend_from_slice(&[0; 4]);
    }
    p
}

fn unmap_cdb(len: usize) -> [u8; 10] {
    let l = (len as u16).to_be_bytes();
    [0x42, 0, 0, 0, 0, 0, 0, l[0], l[1], 0]
}

fn glbas(lba: u64, alloc: u32) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = 0x9e;
    c[1] = 0x12;
    c[2..10].copy_from_slice(&lba.to_be_bytes());
    c[10..14].copy_from_slice(&alloc.to_be_bytes());
    c
}

/// GET LBA STATUS descriptors: (lba, blocks, status).
fn lba_status(h: &mut H<RamB>, s: rscst_core::SessionHandle, lba: u64) -> Vec<(u64, u32, u8)> {
    let d = h
        .read_cmd(s, 0, &glbas(lba, 1024), 1024)
        .good()
        .data
        .clone();
    let len = u32::from_be_bytes(d[..4].try_into().unwrap()) as usize;
    assert_eq!(len + 4, d.len());
    d[8..]
        .chunks(16)
        .map(|x| {
            (
                u64::from_be_bytes(x[..8].try_into().unwrap()),
                u32::from_be_bytes(x[8..12].try_into().unwrap()),
                x[12],
            )
        })
        .collect()
}

#[test]
fn write_same_replicates_one_block() {
    let (mut h, _) = ram_target(300);
    let s = h.login_clean("iqn.t:a", 0);
    for n in [1u16, 7, 256] {
        let blk = vec![n as u8; 512];
        h.write_cmd(s, 0, &ws10(0, n, false), &blk)
            .good()
            .residual(Residual::None);
        assert!(lun_bytes(&h, 0, u64::from(n)).iter().all(|&b| b == n as u8));
    }
    let blk = pattern(512, 3);
    h.write_cmd(s, 0, &ws16(290, 10, false, false), &blk).good();
    let d = lun_bytes(&h, 290, 10);
    assert!(d.chunks(512).all(|c| c == &blk[..]));
    // WRITE SAME(16) with NDOB writes zeros; no Data-Out.
    h.cmd(s, 0, &ws16(290, 10, false, true)).good();
    assert!(lun_bytes(&h, 290, 10).iter().all(|&b| b == 0));
    // 0 blocks: to the end of the LU (WSNZ=0).
    h.write_cmd(s, 0, &ws10(296, 0, false), &[9; 512]).good();
    assert!(lun_bytes(&h, 296, 4).iter().all(|&b| b == 9));
    // Beyond the end.
    h.write_cmd(s, 0, &ws10(300, 1, false), &[0; 512])
        .check(0x5, 0x21, 0x00);
    h.write_cmd(s, 0, &ws10(301, 0, false), &[0; 512])
        .check(0x5, 0x21, 0x00);
    h.write_cmd(s, 0, &ws16(u64::MAX, 1, false, false), &[0; 512])
        .check(0x5, 0x21, 0x00);
    // The Data-Out must be exactly one block.
    h.write_cmd(s, 0, &ws10(0, 1, false), &[0; 256])
        .status(ScsiStatus::CheckCondition);
    h.write_cmd(s, 0, &ws10(0, 1, true), &[0; 1024])
        .status(ScsiStatus::CheckCondition);
    // ANCHOR is not supported.
    let mut c = ws10(0, 1, true);
    c[1] |= 0x10;
    h.write_cmd(s, 0, &c, &[0; 512]).invalid_cdb(1, Some(4));
}

#[test]
fn write_same_unmap_deallocates_zero_blocks() {
    let (mut h, _) = ram_target(256);
    let s = h.login_clean("iqn.t:a", 0);
    h.write_cmd(s, 0, &wr10(0, 256), &vec![0xaa; 256 * 512])
        .good();
    assert_eq!(lba_status(&mut h, s, 0), vec![(0, 256, 0)]);
    h.write_cmd(s, 0, &ws10(16, 16, true), &[0; 512]).good();
    assert_eq!(
        lba_status(&mut h, s, 0),
        vec![(0, 16, 0), (16, 16, 1), (32, 224, 0)]
    );
    assert!(lun_bytes(&h, 16, 16).iter().all(|&b| b == 0));
    // UNMAP with non-zero data unmaps all the same: the Data-Out block only
    // matters for LBAs not unmapped, and every LBA is (SBC-4 WRITE SAME,
    // UNMAP=1 ANCHOR=0: "unmap").
    h.write_cmd(s, 0, &ws16(40, 4, false, false), &[7; 512])
        .good();
    h.write_cmd(s, 0, &ws16(40, 4, true, false), &[7; 512])
        .good();
    assert_eq!(lba_status(&mut h, s, 40)[0], (40, 4, 1));
    assert!(lun_bytes(&h, 40, 4).iter().all(|&b| b == 0));
    // NDOB + UNMAP, to the end of the LU.
    h.cmd(s, 0, &ws16(200, 0, true, true)).good();
    assert_eq!(lba_status(&mut h, s, 190), vec![(190, 10, 0), (200, 56, 1)]);
    // Read back zeros.
    assert!(
        h.read_cmd(s, 0, &rd10(200, 56), 56 * 512)
            .good()
            .data
            .iter()
            .all(|&b| b == 0)
    );
}

#[test]
fn write_same_unmap_with_data_reads_zeros_at_any_granularity() {
    // The backend allocates 8 blocks at a time; WRITE SAME(10) UNMAP=1 with a
    // 0xFF block over ranges that start and end inside granules (libiscsi
    // WriteSame10.UnmapUntilEnd: 1 to 256 blocks at the end of the LU).
    let (mut h, _) = ram_target_granule(256, 512, 512 * 1024, 8, |_| {});
    let s = h.login_clean("iqn.t:a", 0);
    for n in [1u16, 3, 8, 13, 256] {
        let lba = 256 - u32::from(n);
        h.write_cmd(s, 0, &wr10(lba, n), &vec![0xff; usize::from(n) * 512])
            .good();
        h.write_cmd(s, 0, &ws10(lba, n, true), &[0xff; 512])
            .good()
            .residual(Residual::None);
        let d = h
            .read_cmd(s, 0, &rd10(lba, n), u32::from(n) * 512)
            .good()
            .data
            .clone();
        assert!(d.iter().all(|&b| b == 0), "{n} blocks read back as zeros");
    }
    // Whole granules are deallocated; a partly covered one stays mapped
    // (holding zeros) with its other blocks untouched.
    h.write_cmd(s, 0, &wr10(0, 32), &vec![b'x'; 32 * 512])
        .good();
    h.write_cmd(s, 0, &ws10(5, 20, true), &[0xff; 512]).good();
    assert_eq!(
        lba_status(&mut h, s, 0),
        vec![(0, 8, 0), (8, 16, 1), (24, 8, 0), (32, 224, 1)]
    );
    assert!(lun_bytes(&h, 0, 5).iter().all(|&b| b == b'x'));
    assert!(lun_bytes(&h, 5, 20).iter().all(|&b| b == 0));
    assert!(lun_bytes(&h, 25, 7).iter().all(|&b| b == b'x'));
    // Without UNMAP the block is written, and the granules it touches mapped.
    h.write_cmd(s, 0, &ws10(9, 2, false), &[0xff; 512]).good();
    assert!(lun_bytes(&h, 9, 2).iter().all(|&b| b == 0xff));
    assert_eq!(lba_status(&mut h, s, 8)[0], (8, 8, 0));
}

#[test]
fn write_same_unmap_needs_a_thin_lu() {
    let (mut h, _) = ram_target_with(64, 512, |c| c.thin = false);
    let s = h.login_clean("iqn.t:a", 0);
    h.write_cmd(s, 0, &ws10(0, 1, true), &[0; 512])
        .invalid_cdb(1, Some(3));
    h.write_cmd(s, 0, &ws10(0, 1, false), &[0; 512]).good();
    let p = unmap_list(&[(0, 1)]);
    h.write_cmd(s, 0, &unmap_cdb(p.len()), &p)
        .check(0x5, 0x20, 0x00);
}

#[test]
fn unmap_and_get_lba_status() {
    let (mut h, _) = ram_target(512);
    let s = h.login_clean("iqn.t:a", 0);
    // A new thin LU is all deallocated.
    assert_eq!(lba_status(&mut h, s, 0), vec![(0, 512, 1)]);
    h.write_cmd(s, 0, &wr10(0, 257), &vec![b'A'; 257 * 512])
        .good();
    assert_eq!(lba_status(&mut h, s, 0), vec![(0, 257, 0), (257, 255, 1)]);
    for i in [0u64, 1, 100, 255] {
        let p = unmap_list(&[(i, 1)]);
        h.write_cmd(s, 0, &unmap_cdb(p.len()), &p).good();
        assert_eq!(lba_status(&mut h, s, i)[0], (i, 1, 1));
        assert_eq!(
            lba_status(&mut h, s, i + 1)[0].2,
            if i + 1 < 257 { 0 } else { 1 }
        );
        assert!(lun_bytes(&h, i, 1).iter().all(|&b| b == 0), "LBPRZ");
    }
    // Several descriptors; a zero-length one is fine.
    let p = unmap_list(&[(10, 5), (20, 0), (30, 2)]);
    h.write_cmd(s, 0, &unmap_cdb(p.len()), &p).good();
    let st = lba_status(&mut h, s, 9);
    assert_eq!(&st[..4], &[(9, 1, 0), (10, 5, 1), (15, 15, 0), (30, 2, 1)]);
    // GET LBA STATUS with room for one descriptor only.
    let o = h.read_cmd(s, 0, &glbas(9, 24), 24);
    o.good().residual(Residual::None);
    assert_eq!(&o.data[..4], &[0, 0, 0, 20]);
    assert_eq!(o.data.len(), 24);
    h.read_cmd(s, 0, &glbas(512, 24), 24).check(0x5, 0x21, 0x00);
    // Parameter list errors: nothing is unmapped.
    let p = unmap_list(&[(40, 1), (510, 3)]);
    h.write_cmd(s, 0, &unmap_cdb(p.len()), &p)
        .check(0x5, 0x21, 0x00);
    assert_eq!(lba_status(&mut h, s, 40)[0].2, 0);
    h.write_cmd(s, 0, &unmap_cdb(4), &[0, 0, 0, 0])
        .check(0x5, 0x1a, 0x00);
    h.cmd(s, 0, &unmap_cdb(0)).good();
    // ANCHOR is not supported.
    let p = unmap_list(&[(40, 1)]);
    let mut c = unmap_cdb(p.len());
    c[1] = 1;
    h.write_cmd(s, 0, &c, &p).invalid_cdb(1, Some(0));
}

#[test]
fn unmap_descriptor_limit() {
    // A small pool limits the descriptors per list (VPD B0).
    let (mut h, _) = ram_target_pool(64, 512, 32 * 1024, |_| {});
    let s = h.login_clean("iqn.t:a", 0);
    let vpd = h
        .read_cmd(s, 0, &[0x12, 1, 0xb0, 0, 64, 0], 64)
        .good()
        .data
        .clone();
    let max = u32::from_be_bytes(vpd[24..28].try_into().unwrap()) as usize;
    assert_eq!(max, (32 * 1024 - 8) / 16 - 1);
    let ranges: Vec<(u64, u32)> = (0..max).map(|k| ((k % 64) as u64, 0)).collect();
    let p = unmap_list(&ranges);
    h.write_cmd(s, 0, &unmap_cdb(p.len()), &p).good();
    let ranges: Vec<(u64, u32)> = (0..=max).map(|k| ((k % 64) as u64, 0)).collect();
    let p = unmap_list(&ranges);
    h.write_cmd(s, 0, &unmap_cdb(p.len()), &p)
        .check(0x5, 0x26, 0x00);
}

fn caw(lba: u64, n: u8) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = 0x89;
    c[2..10].copy_from_slice(&lba.to_be_bytes());
    c[13] = n;
    c
}

#[test]
fn compare_and_write() {
    let (mut h, _) = ram_target(512);
    let s = h.login_clean("iqn.t:a", 0);
    for n in [1u8, 2, 100, 255] {
        let len = usize::from(n) * 512;
        h.write_cmd(s, 0, &wr16(0, u32::from(n)), &vec![b'A'; len])
            .good();
        let mut d = vec![b'A'; len];
        d.extend_from_slice(&vec![b'B'; len]);
        h.write_cmd(s, 0, &caw(0, n), &d)
            .good()
            .residual(Residual::None);
        assert!(lun_bytes(&h, 0, u64::from(n)).iter().all(|&b| b == b'B'));
        // Miscompare 27 bytes from the end of the compare data: nothing written.
        h.write_cmd(
            s,
            0,
            &wr16(512 - u64::from(n), u32::from(n)),
            &vec![b'A'; len],
        )
        .good();
        let mut d = vec![b'A'; len];
        d[len - 27] = b'C';
        d.extend_from_slice(&vec![b'B'; len]);
        let o = h.write_cmd(s, 0, &caw(512 - u64::from(n), n), &d);
        o.check(0xe, 0x1d, 0x00);
        assert_eq!(o.info(), Some((len - 27) as u64));
        assert!(
            lun_bytes(&h, 512 - u64::from(n), u64::from(n))
                .iter()
                .all(|&b| b == b'A')
        );
    }
    h.cmd(s, 0, &caw(0, 0)).good();
    // 256 blocks wrap to 0 in the one-byte field: with the Data-Out of 256
    // blocks it is a count beyond MAXIMUM COMPARE AND WRITE LENGTH.
    h.write_cmd(s, 0, &caw(0, 0), &vec![b'A'; 512 * 512])
        .invalid_cdb(13, Some(7));
    assert!(lun_bytes(&h, 0, 1).iter().all(|&b| b == b'B'));
    h.write_cmd(s, 0, &caw(511, 2), &[0; 2048])
        .check(0x5, 0x21, 0x00);
    // The Data-Out must be exactly 2 x NUMBER OF LOGICAL BLOCKS.
    h.write_cmd(s, 0, &caw(0, 1), &[0; 4 * 512])
        .status(ScsiStatus::CheckCondition);
    h.write_cmd(s, 0, &caw(0, 3), &[0; 4 * 512])
        .status(ScsiStatus::CheckCondition);
    // DPO/FUA are fine.
    let mut c = caw(0, 1);
    c[1] = 0x18;
    let mut d = vec![b'B'; 512];
    d.extend_from_slice(&[b'D'; 512]);
    h.write_cmd(s, 0, &c, &d).good();
}

#[test]
fn compare_and_write_limit_follows_the_pool() {
    // A 64 KiB pool: 3 x N x 512 <= 64 KiB -> 42 blocks.
    let lun_mem = mem(512 * 512, 0x4000_0000);
    let mut b: RamB = rscst_core::RamBackend::new();
    let id = b.add_lun(lun_mem, 512).unwrap();
    let mut h = H::new(b, 64 * 1024, &[lun_mem]);
    let lu =
        h.t.add_lu(&rscst_core::LuConfig::new(id, 512, 512))
            .unwrap();
    h.t.map_lun(
        rscst_core::GroupId::DEFAULT,
        rscst_core::Lun::ZERO,
        lu,
        rscst_core::Access::ReadWrite,
    )
    .unwrap();
    let s = h.login_clean("iqn.t:a", 0);
    let vpd = h
        .read_cmd(s, 0, &[0x12, 1, 0xb0, 0, 64, 0], 64)
        .good()
        .data
        .clone();
    assert_eq!(vpd[5], 42);
    h.write_cmd(s, 0, &caw(0, 42), &vec![0; 84 * 512]).good();
    h.write_cmd(s, 0, &caw(0, 43), &vec![0; 86 * 512])
        .invalid_cdb(13, Some(7));
}

const EJECT: [u8; 6] = [0x1b, 0, 0, 0, 0x02, 0];
const LOAD: [u8; 6] = [0x1b, 0, 0, 0, 0x03, 0];
const STOP: [u8; 6] = [0x1b, 0, 0, 0, 0x00, 0];
const START: [u8; 6] = [0x1b, 0, 0, 0, 0x01, 0];
const PREVENT: [u8; 6] = [0x1e, 0, 0, 0, 1, 0];
const ALLOW: [u8; 6] = [0x1e, 0, 0, 0, 0, 0];

#[test]
fn start_stop_unit_and_no_medium() {
    let (mut h, _) = ram_target_with(64, 512, |c| c.stoppable = true);
    let s = h.login_clean("iqn.t:a", 0);
    h.cmd(s, 0, &[0x1b, 0x01, 0, 0, 0x02, 0]).good();
    // Medium commands: NOT READY, MEDIUM NOT PRESENT.
    let nm = |o: &Outcome| {
        o.check(0x2, 0x3a, 0x00);
    };
    nm(&h.cmd(s, 0, &TUR));
    nm(&h.read_cmd(s, 0, &rd10(0, 1), 512));
    nm(&h.read_cmd(s, 0, &rd16(0, 1), 512));
    nm(&h.write_cmd(s, 0, &wr10(0, 1), &[0; 512]));
    nm(&h.read_cmd(s, 0, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], 8));
    nm(&h.cmd(s, 0, &[0x35, 0, 0, 0, 0, 0, 0, 0, 1, 0]));
    // SYNC_NV (obsolete) and IMMED set: still MEDIUM NOT PRESENT (libiscsi
    // NoMedia.NoMediaSBC sends SYNCHRONIZE CACHE(10)/(16) like this).
    nm(&h.cmd(s, 0, &[0x35, 0x06, 0, 0, 0, 0, 0, 0, 1, 0]));
    let mut sc16 = [0u8; 16];
    sc16[0] = 0x91;
    sc16[1] = 0x06;
    sc16[13] = 1;
    nm(&h.cmd(s, 0, &sc16));
    nm(&h.cmd(s, 0, &[0x34, 0, 0, 0, 0, 0, 0, 0, 1, 0]));
    nm(&h.read_cmd(s, 0, &glbas(0, 24), 24));
    nm(&h.write_cmd(s, 0, &ws10(0, 1, false), &[0; 512]));
    let p = unmap_list(&[(0, 1)]);
    nm(&h.write_cmd(s, 0, &unmap_cdb(p.len()), &p));
    nm(&h.write_cmd(s, 0, &[0x2f, 0x02, 0, 0, 0, 0, 0, 0, 1, 0], &[0; 512]));
    // Non-medium commands still work.
    h.read_cmd(s, 0, &[0x12, 0, 0, 0, 96, 0], 96).good();
    h.read_cmd(s, 0, &[0x1a, 0, 0x3f, 0, 255, 0], 255).good();
    let o = h.read_cmd(s, 0, &[0x03, 0, 0, 0, 18, 0], 18);
    assert_eq!((o.good().data[2], o.data[12]), (0x2, 0x3a));
    // START without a medium is refused; LOAD loads and starts.
    h.cmd(s, 0, &START).check(0x2, 0x3a, 0x00);
    h.cmd(s, 0, &LOAD).good();
    h.cmd(s, 0, &TUR).good();
    // STOP: NOT READY, INITIALIZING COMMAND REQUIRED, until START.
    h.cmd(s, 0, &STOP).good();
    h.cmd(s, 0, &TUR).check(0x2, 0x04, 0x02);
    h.cmd(s, 0, &START).good();
    h.cmd(s, 0, &TUR).good();
    // A power condition is accepted and changes nothing, whatever LOEJ/START say.
    for pc in 1..16u8 {
        h.cmd(s, 0, &[0x1b, 0x01, 0, 0, pc << 4 | 0x02, 0]).good();
        h.cmd(s, 0, &TUR).good();
    }
}

#[test]
fn start_stop_unit_without_stoppable_keeps_the_lu_ready() {
    // libiscsi StartStopUnit.NoLoej: every IMMED / NO_FLUSH / START
    // combination with LOEJ=0 leaves the medium in, and TEST UNIT READY GOOD.
    let (mut h, _) = ram_target(64);
    let s = h.login_clean("iqn.t:a", 0);
    for immed in [0u8, 1] {
        for no_flush in [0u8, 0x04] {
            for start in [0u8, 1] {
                h.cmd(s, 0, &[0x1b, immed, 0, 0, no_flush | start, 0])
                    .good();
                h.cmd(s, 0, &TUR).good();
                h.read_cmd(s, 0, &rd10(0, 1), 512).good();
            }
        }
    }
    // LOEJ still ejects and loads a removable medium.
    h.cmd(s, 0, &EJECT).good();
    h.cmd(s, 0, &TUR).check(0x2, 0x3a, 0x00);
    h.cmd(s, 0, &STOP).good();
    h.cmd(s, 0, &START).check(0x2, 0x3a, 0x00);
    h.cmd(s, 0, &LOAD).good();
    h.cmd(s, 0, &TUR).good();
}

#[test]
fn start_stop_unit_loej_on_a_fixed_medium() {
    let (mut h, _) = ram_target_with(64, 512, |c| {
        c.removable = false;
        c.stoppable = true;
    });
    let s = h.login_clean("iqn.t:a", 0);
    assert_eq!(h.read_cmd(s, 0, &[0x12, 0, 0, 0, 96, 0], 96).data[1], 0);
    h.cmd(s, 0, &EJECT).invalid_cdb(4, Some(1));
    h.cmd(s, 0, &STOP).good();
    h.cmd(s, 0, &TUR).check(0x2, 0x04, 0x02);
    h.cmd(s, 0, &START).good();
}

#[test]
fn prevent_allow_medium_removal() {
    let (mut h, _) = ram_target(64);
    let a = h.login_clean("iqn.t:a", 0);
    let b = h.login_clean("iqn.t:b", 0);
    h.cmd(a, 0, &PREVENT).good();
    h.cmd(a, 0, &EJECT).check(0x5, 0x53, 0x02);
    h.cmd(b, 0, &EJECT).check(0x5, 0x53, 0x02);
    h.cmd(a, 0, &TUR).good();
    h.cmd(a, 0, &ALLOW).good();
    h.cmd(a, 0, &EJECT).good();
    h.cmd(a, 0, &TUR).check(0x2, 0x3a, 0x00);
    h.cmd(a, 0, &PREVENT).good();
    h.cmd(a, 0, &LOAD).check(0x5, 0x53, 0x02);
    h.cmd(a, 0, &ALLOW).good();
    h.cmd(a, 0, &LOAD).good();
    // Both nexuses prevent: removal needs both to allow.
    h.cmd(a, 0, &PREVENT).good();
    h.cmd(b, 0, &PREVENT).good();
    h.cmd(a, 0, &ALLOW).good();
    h.cmd(a, 0, &EJECT).check(0x5, 0x53, 0x02);
    h.cmd(b, 0, &ALLOW).good();
    h.cmd(a, 0, &EJECT).good();
    h.cmd(a, 0, &LOAD).good();
    // PREVENT values 10b/11b are for medium changers.
    h.cmd(a, 0, &[0x1e, 0, 0, 0, 2, 0]).invalid_cdb(4, Some(1));
}

#[test]
fn prevent_is_cleared_by_resets_and_nexus_loss() {
    for how in 0..4 {
        let (mut h, _) = ram_target(64);
        let a = h.login_clean("iqn.t:a", 0);
        let b = h.login_clean("iqn.t:b", 0);
        h.cmd(a, 0, &PREVENT).good();
        h.cmd(b, 0, &EJECT).check(0x5, 0x53, 0x02);
        let t = match how {
            0 => Some(h.tmf(a, 0, TmfFunction::LogicalUnitReset)),
            1 => Some(h.tmf(a, 0, TmfFunction::TargetReset)),
            2 => Some(h.tmf(a, 0, TmfFunction::ItNexusReset)),
            _ => {
                h.t.remove_session(a).unwrap();
                None
            }
        };
        h.settle();
        if let Some(t) = t {
            h.tmf_result(t);
        }
        // Clear whatever unit attention the reset left for b.
        while h.cmd(b, 0, &TUR).status != ScsiStatus::Good {}
        h.cmd(b, 0, &EJECT).good();
        h.cmd(b, 0, &LOAD).good();
    }
}

#[test]
fn format_unit() {
    let (mut h, _) = ram_target(128);
    let s = h.login_clean("iqn.t:a", 0);
    h.write_cmd(s, 0, &wr10(0, 128), &vec![1; 128 * 512]).good();
    h.cmd(s, 0, &[0x04, 0, 0, 0, 0, 0]).good();
    assert_eq!(lba_status(&mut h, s, 0), vec![(0, 128, 1)]);
    assert!(
        h.read_cmd(s, 0, &rd10(0, 128), 128 * 512)
            .good()
            .data
            .iter()
            .all(|&b| b == 0)
    );
    // FMTDATA with an empty short header.
    h.write_cmd(s, 0, &[0x04, 0x10, 0, 0, 0, 0], &[0, 0, 0, 0])
        .good();
    // A defect list, or an initialization pattern, is not supported.
    h.write_cmd(s, 0, &[0x04, 0x10, 0, 0, 0, 0], &[0, 0, 0, 4, 0, 0, 0, 0])
        .check(0x5, 0x26, 0x00);
    h.write_cmd(s, 0, &[0x04, 0x10, 0, 0, 0, 0], &[0, 0x08, 0, 0])
        .check(0x5, 0x26, 0x00);
    // Protection information is not supported.
    h.cmd(s, 0, &[0x04, 0x40, 0, 0, 0, 0])
        .invalid_cdb(1, Some(6));
    // On a fully provisioned LU the data stays.
    let (mut h, _) = ram_target_with(16, 512, |c| c.thin = false);
    let s = h.login_clean("iqn.t:a", 0);
    h.write_cmd(s, 0, &wr10(0, 1), &[3; 512]).good();
    h.cmd(s, 0, &[0x04, 0, 0, 0, 0, 0]).good();
    assert!(lun_bytes(&h, 0, 1).iter().all(|&b| b == 3));
}

fn sanitize(sa: u8, immed: bool, len: u16) -> [u8; 10] {
    let l = len.to_be_bytes();
    [
        0x48,
        sa | if immed { 0x80 } else { 0 },
        0,
        0,
        0,
        0,
        0,
        l[0],
        l[1],
        0,
    ]
}

fn overwrite_params(count: u8, invert: bool, pattern: &[u8]) -> Vec<u8> {
    let mut p = vec![if invert { 0x80 } else { 0 } | count, 0];
    p.extend_from_slice(&(pattern.len() as u16).to_be_bytes());
    p.extend_from_slice(pattern);
    p
}

#[test]
fn sanitize_overwrite_and_block_erase() {
    let (mut h, _) = ram_target(300);
    let s = h.login_clean("iqn.t:a", 0);
    h.write_cmd(s, 0, &wr10(0, 300), &vec![b'a'; 300 * 512])
        .good();
    let p = overwrite_params(1, false, &[0xaa; 512]);
    h.write_cmd(s, 0, &sanitize(1, false, p.len() as u16), &p)
        .good();
    assert!(lun_bytes(&h, 0, 300).iter().all(|&b| b == 0xaa));
    // A pattern shorter than a block repeats.
    let p = overwrite_params(1, false, &[1, 2, 3, 4]);
    h.write_cmd(s, 0, &sanitize(1, false, p.len() as u16), &p)
        .good();
    let d = lun_bytes(&h, 299, 1);
    assert!(d.chunks(4).all(|c| c == [1, 2, 3, 4]));
    // Two passes with INVERT: the last pass writes the inverted pattern.
    let p = overwrite_params(2, true, &[0x0f; 256]);
    h.write_cmd(s, 0, &sanitize(1, false, p.len() as u16), &p)
        .good();
    assert!(lun_bytes(&h, 0, 300).iter().all(|&b| b == 0xf0));
    // BLOCK ERASE deallocates a thin LU.
    h.cmd(s, 0, &sanitize(2, false, 0)).good();
    assert_eq!(lba_status(&mut h, s, 0), vec![(0, 300, 1)]);
    assert!(lun_bytes(&h, 0, 300).iter().all(|&b| b == 0));
    // What VPD B1h WABEREQ 01b promises: a read with no write in between
    // completes with GOOD.
    let d = h.read_cmd(s, 0, &rd10(0, 8), 8 * 512).good().data.clone();
    assert!(d.iter().all(|&b| b == 0));
    // EXIT FAILURE MODE.
    h.cmd(s, 0, &sanitize(0x1f, false, 0)).good();
}

#[test]
fn sanitize_block_erase_of_a_fully_provisioned_lu_reads_zeros() {
    let (mut h, _) = ram_target_with(64, 512, |c| c.thin = false);
    let s = h.login_clean("iqn.t:a", 0);
    h.write_cmd(s, 0, &wr10(0, 64), &vec![b'a'; 64 * 512])
        .good();
    h.cmd(s, 0, &sanitize(2, false, 0)).good();
    let d = h.read_cmd(s, 0, &rd10(0, 64), 64 * 512).good().data.clone();
    assert!(d.iter().all(|&b| b == 0));
    let vpd = h.read_cmd(s, 0, &[0x12, 1, 0xb1, 0, 64, 0], 64);
    assert_eq!(vpd.good().data[7] >> 6, 0b01, "WABEREQ");
}

#[test]
fn block_erase_and_format_deallocate_every_granule_whatever_the_pace() {
    // 8-block granules, a pace whose 20 ms step is 13 blocks: the steps are
    // rounded to whole granules, so no granule straddles two unmap steps
    // and stays mapped (libiscsi Sanitize.BlockErase checks GET LBA STATUS).
    let (mut h, _) = ram_target_granule(1000, 512, 512 * 1024, 8, |c| {
        c.background_rate = 50 * 512 * 13;
    });
    let s = h.login_clean("iqn.t:a", 0);
    for cdb in [sanitize(2, false, 0), [0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0]] {
        h.write_cmd(s, 0, &wr10(0, 1000), &vec![b'a'; 1000 * 512])
            .good();
        assert_eq!(lba_status(&mut h, s, 0), vec![(0, 1000, 0)]);
        let c = h.submit(
            s,
            0,
            &cdb[..if cdb[0] == 0x04 { 6 } else { 10 }],
            DataDirection::None,
            0,
            &[],
        );
        h.run_until_idle();
        h.result(c).good();
        assert_eq!(lba_status(&mut h, s, 0), vec![(0, 1000, 1)]);
        assert!(lun_bytes(&h, 0, 1000).iter().all(|&b| b == 0));
    }
}

#[test]
fn sanitize_parameter_checks() {
    let (mut h, _) = ram_target(64);
    let s = h.login_clean("iqn.t:a", 0);
    for len in 0..5u16 {
        h.write_cmd(s, 0, &sanitize(1, false, len), &vec![1; usize::from(len)])
            .invalid_cdb(7, Some(7));
    }
    h.write_cmd(s, 0, &sanitize(1, false, 512 + 5), &[1; 517])
        .invalid_cdb(7, Some(7));
    let p = overwrite_params(0, false, &[1; 512]);
    h.write_cmd(s, 0, &sanitize(1, false, p.len() as u16), &p)
        .check(0x5, 0x26, 0x00);
    let mut p = overwrite_params(1, false, &[1; 512]);
    p[2] = 0;
    p[3] = 0;
    h.write_cmd(s, 0, &sanitize(1, false, p.len() as u16), &p)
        .check(0x5, 0x26, 0x00);
    p[2] = 0x02;
    p[3] = 0x04;
    h.write_cmd(s, 0, &sanitize(1, false, p.len() as u16), &p)
        .check(0x5, 0x26, 0x00);
    let mut p = overwrite_params(1, false, &[1; 4]);
    p[0] |= 0x20; // TEST
    h.write_cmd(s, 0, &sanitize(1, false, p.len() as u16), &p)
        .check(0x5, 0x26, 0x00);
    h.write_cmd(s, 0, &sanitize(2, false, 8), &[0; 8])
        .invalid_cdb(7, Some(7));
    h.write_cmd(s, 0, &sanitize(0x1f, false, 8), &[0; 8])
        .invalid_cdb(7, Some(7));
    // CRYPTOGRAPHIC ERASE and unknown service actions are not supported.
    h.cmd(s, 0, &sanitize(3, false, 0)).invalid_cdb(1, Some(4));
    h.cmd(s, 0, &sanitize(4, false, 0)).invalid_cdb(1, Some(4));
    // Reserved CDB bits.
    let mut c = sanitize(2, false, 0);
    c[2] = 1;
    h.cmd(s, 0, &c).invalid_cdb(2, Some(0));
    // A reservation of another initiator conflicts.
    let b = h.login_clean("iqn.t:b", 0);
    h.cmd(b, 0, &[0x16, 0, 0, 0, 0, 0]).good();
    h.cmd(s, 0, &sanitize(2, false, 0))
        .status(ScsiStatus::ReservationConflict);
}

#[test]
fn sanitize_in_progress_survives_resets() {
    // 4 MiB at 1 MiB/s: four seconds of background work.
    let (mut h, _) = ram_target_with(8192, 512, |c| c.background_rate = 1 << 20);
    let s = h.login_clean("iqn.t:a", 0);
    let p = overwrite_params(1, false, &[0x55; 512]);
    let san = h.submit(
        s,
        0,
        &sanitize(1, false, p.len() as u16),
        DataDirection::Out,
        p.len() as u32,
        &p,
    );
    h.settle();
    assert!(
        h.outcome(san).is_none(),
        "IMMED=0: the command waits for the operation"
    );
    h.run_for(1000);
    let o = h.cmd(s, 0, &TUR);
    o.check(0x2, 0x04, 0x1b);
    let progress = u16::from_be_bytes([o.sks().unwrap()[1], o.sks().unwrap()[2]]);
    assert!(
        progress > 10000 && progress < 30000,
        "about a quarter done: {progress}"
    );
    h.cmd(s, 0, &[0x1b, 0, 0, 0, 0x01, 0])
        .check(0x2, 0x04, 0x1b);
    h.read_cmd(s, 0, &rd16(0, 1), 512).check(0x2, 0x04, 0x1b);
    h.read_cmd(s, 0, &[0x12, 0, 0, 0, 96, 0], 96).good();
    let o = h.read_cmd(s, 0, &[0x03, 0, 0, 0, 18, 0], 18);
    assert_eq!(
        (o.good().data[2], o.data[12], o.data[13], o.data[15]),
        (0x2, 0x04, 0x1b, 0x80)
    );
    // ABORT TASK, LUN reset, target reset: the operation goes on.
    let t = h.tmf(s, 0, TmfFunction::AbortTask(rscst_core::TaskTag(0)));
    h.settle();
    h.tmf_result(t);
    let t = h.tmf(s, 0, TmfFunction::LogicalUnitReset);
    h.settle();
    h.tmf_result(t);
    assert!(
        h.result(san).aborted,
        "the waiting command is aborted by the reset"
    );
    let t = h.tmf(s, 0, TmfFunction::TargetReset);
    h.settle();
    h.tmf_result(t);
    h.t.remove_session(s).unwrap();
    let s = h.login("iqn.t:a");
    h.cmd(s, 0, &TUR).check(0x6, 0x29, 0x07);
    h.cmd(s, 0, &TUR).check(0x2, 0x04, 0x1b);
    h.run_until_idle();
    h.cmd(s, 0, &TUR).good();
    assert!(lun_bytes(&h, 0, 8192).iter().all(|&b| b == 0x55));
}

#[test]
fn sanitize_immediate_completes_at_once() {
    let (mut h, _) = ram_target_with(2048, 512, |c| c.background_rate = 1 << 20);
    let s = h.login_clean("iqn.t:a", 0);
    h.cmd(s, 0, &sanitize(2, true, 0)).good();
    h.cmd(s, 0, &TUR).check(0x2, 0x04, 0x1b);
    // A second SANITIZE while one runs: NOT READY too.
    h.cmd(s, 0, &sanitize(2, true, 0)).check(0x2, 0x04, 0x1b);
    h.run_until_idle();
    h.cmd(s, 0, &TUR).good();
}
