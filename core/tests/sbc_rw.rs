//! READ/WRITE 6/10/12/16, VERIFY, WRITE AND VERIFY, residual rules, data
//! protection and the transfer paths (zero copy, rounds, buffered).
mod common;
use common::*;
use rscst_core::backend::BackendLun;
use rscst_core::{
    Access, DataDirection, GroupId, LuConfig, Lun, Memory, NullBackend, Residual, ScsiStatus,
};

#[test]
fn write_then_read_every_size_of_cdb() {
    let (mut h, _) = ram_target(1024);
    let s = h.login_clean("iqn.t:a", 0);
    // WRITE(6)/READ(6): 21-bit LBA, LBA 0x1f0.
    let d = pattern(512, 1);
    h.write_cmd(s, 0, &[0x0a, 0, 0x01, 0xf0, 1, 0], &d).good();
    h.read_cmd(s, 0, &[0x08, 0, 0x01, 0xf0, 1, 0], 512)
        .good()
        .data(&d);
    assert_eq!(lun_bytes(&h, 0x1f0, 1), d);
    // WRITE(10)/READ(10).
    let d = pattern(4 * 512, 2);
    h.write_cmd(s, 0, &wr10(10, 4), &d)
        .good()
        .residual(Residual::None);
    h.read_cmd(s, 0, &rd10(10, 4), 2048)
        .good()
        .residual(Residual::None)
        .data(&d);
    // WRITE(12)/READ(12).
    let d = pattern(3 * 512, 3);
    h.write_cmd(s, 0, &[0xaa, 0, 0, 0, 0, 100, 0, 0, 0, 3, 0, 0], &d)
        .good();
    h.read_cmd(s, 0, &[0xa8, 0, 0, 0, 0, 100, 0, 0, 0, 3, 0, 0], 1536)
        .good()
        .data(&d);
    // WRITE(16)/READ(16) at the last blocks.
    let d = pattern(2 * 512, 4);
    h.write_cmd(s, 0, &wr16(1022, 2), &d).good();
    h.read_cmd(s, 0, &rd16(1022, 2), 1024).good().data(&d);
    assert_eq!(lun_bytes(&h, 1022, 2), d);
}

#[test]
fn maximum_transfer_length_is_enforced_and_reported() {
    let (mut h, _) = ram_target_with(1024, 512, |c| c.max_transfer_blocks = 64);
    let s = h.login_clean("iqn.t:a", 0);
    let vpd = h
        .read_cmd(s, 0, &[0x12, 1, 0xb0, 0, 64, 0], 64)
        .good()
        .data
        .clone();
    assert_eq!(&vpd[8..12], &[0, 0, 0, 64]);
    assert_eq!(
        &vpd[44..48],
        &[0, 0, 0, 64],
        "atomic limit within the transfer limit"
    );
    h.read_cmd(s, 0, &rd10(0, 64), 64 * 512).good();
    h.read_cmd(s, 0, &rd10(0, 65), 65 * 512)
        .invalid_cdb(7, Some(7));
    h.write_cmd(s, 0, &wr16(0, 65), &[0; 65 * 512])
        .invalid_cdb(10, Some(7));
}

#[test]
fn read6_zero_length_means_256_blocks() {
    let (mut h, _) = ram_target(1024);
    let s = h.login_clean("iqn.t:a", 0);
    let o = h.read_cmd(s, 0, &[0x08, 0, 0, 0, 0, 0], 256 * 512);
    assert_eq!(o.good().data.len(), 256 * 512);
}

#[test]
fn zero_blocks_and_beyond_end_of_lun() {
    let (mut h, _) = ram_target(1024);
    let s = h.login_clean("iqn.t:a", 0);
    h.read_cmd(s, 0, &rd10(0, 0), 0).good().data(&[]);
    h.write_cmd(s, 0, &wr10(0, 0), &[]).good();
    h.read_cmd(s, 0, &rd10(1024, 0), 0).good();
    h.read_cmd(s, 0, &rd10(1025, 0), 0).check(0x5, 0x21, 0x00);
    h.read_cmd(s, 0, &rd10(0x8000_0000, 0), 0)
        .check(0x5, 0x21, 0x00);
    h.read_cmd(s, 0, &rd10(u32::MAX, 0), 0)
        .check(0x5, 0x21, 0x00);
    h.read_cmd(s, 0, &rd10(1023, 2), 1024)
        .check(0x5, 0x21, 0x00);
    h.read_cmd(s, 0, &rd16(u64::MAX, 1), 512)
        .check(0x5, 0x21, 0x00);
    h.write_cmd(s, 0, &wr16(1024, 1), &[0; 512])
        .check(0x5, 0x21, 0x00);
    h.read_cmd(s, 0, &[0x08, 0, 0x04, 0, 1, 0], 512)
        .check(0x5, 0x21, 0x00);
}

#[test]
fn dpo_fua_accepted_protection_fields_refused() {
    let (mut h, _) = ram_target(64);
    let s = h.login_clean("iqn.t:a", 0);
    let mut r = rd10(0, 1);
    r[1] = 0x18;
    h.read_cmd(s, 0, &r, 512).good();
    let mut w = wr10(0, 1);
    w[1] = 0x18;
    h.write_cmd(s, 0, &w, &[0; 512]).good();
    for prot in 1..8u8 {
        let mut r = rd10(0, 1);
        r[1] = prot << 5;
        h.read_cmd(s, 0, &r, 512)
            .invalid_cdb(1, Some(5 + 7 - prot.leading_zeros() as u8));
        let mut w = wr16(0, 1);
        w[1] = prot << 5;
        h.write_cmd(s, 0, &w, &[0; 512]).check(0x5, 0x24, 0x00);
    }
}

#[test]
fn read_residuals_follow_the_expected_length() {
    let (mut h, _) = ram_target(64);
    let s = h.login_clean("iqn.t:a", 0);
    let d = pattern(1024, 9);
    h.write_cmd(s, 0, &wr10(0, 2), &d).good();
    h.read_cmd(s, 0, &rd10(0, 1), 0)
        .good()
        .residual(Residual::Over(512))
        .data(&[]);
    h.read_cmd(s, 0, &rd10(0, 1), 10000)
        .good()
        .residual(Residual::Under(10000 - 512))
        .data(&d[..512]);
    h.read_cmd(s, 0, &rd10(0, 1), 200)
        .good()
        .residual(Residual::Over(312))
        .data(&d[..200]);
    h.read_cmd(s, 0, &rd10(0, 2), 512)
        .good()
        .residual(Residual::Over(512))
        .data(&d[..512]);
    // A READ the initiator flagged as a write: nothing moves, GOOD.
    h.exec(s, 0, &rd10(0, 1), DataDirection::Out, 512, &[0; 512])
        .good()
        .residual(Residual::Over(512));
}

#[test]
fn write_residuals_follow_the_expected_length() {
    let (mut h, _) = ram_target(64);
    let s = h.login_clean("iqn.t:a", 0);
    h.write_cmd(s, 0, &wr10(0, 1), &[])
        .good()
        .residual(Residual::Over(512));
    h.write_cmd(s, 0, &wr10(0, 1), &[7; 10000])
        .good()
        .residual(Residual::Under(10000 - 512));
    // A partial block cannot be written.
    h.write_cmd(s, 0, &wr10(0, 1), &[7; 200])
        .check(0x5, 0x0e, 0x03)
        .residual(Residual::Over(312));
    // EDTL > TL: only TL is written.
    h.write_cmd(s, 0, &wr10(0, 2), &[b'a'; 1024]).good();
    h.write_cmd(s, 0, &wr10(0, 1), &[b'b'; 1024])
        .good()
        .residual(Residual::Under(512));
    let d = lun_bytes(&h, 0, 2);
    assert!(d[..512].iter().all(|&x| x == b'b') && d[512..].iter().all(|&x| x == b'a'));
    // EDTL < TL: only EDTL is written.
    h.write_cmd(s, 0, &wr10(0, 2), &[b'a'; 1024]).good();
    h.write_cmd(s, 0, &wr10(0, 2), &[b'b'; 512])
        .good()
        .residual(Residual::Over(512));
    let d = lun_bytes(&h, 0, 2);
    assert!(d[..512].iter().all(|&x| x == b'b') && d[512..].iter().all(|&x| x == b'a'));
}

#[test]
fn read_only_lu_and_read_only_map() {
    let (mut h, _) = ram_target_with(64, 512, |c| c.read_only = true);
    let s = h.login_clean("iqn.t:a", 0);
    h.read_cmd(s, 0, &rd10(0, 1), 512).good();
    let dp = |o: &Outcome| {
        o.check(0x7, 0x27, 0x00);
    };
    dp(&h.write_cmd(s, 0, &wr10(0, 1), &[0; 512]));
    dp(&h.write_cmd(s, 0, &[0x0a, 0, 0, 0, 1, 0], &[0; 512]));
    dp(&h.write_cmd(s, 0, &wr16(0, 1), &[0; 512]));
    dp(&h.write_cmd(s, 0, &[0x2e, 0, 0, 0, 0, 0, 0, 0, 1, 0], &[0; 512]));
    dp(&h.write_cmd(s, 0, &[0x41, 0, 0, 0, 0, 0, 0, 0, 1, 0], &[0; 512]));
    dp(&h.write_cmd(s, 0, &[0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0], &[0; 24]));
    dp(&h.write_cmd(
        s,
        0,
        &[0x89, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0],
        &[0; 1024],
    ));
    dp(&h.cmd(s, 0, &[0x04, 0, 0, 0, 0, 0]));
    dp(&h.cmd(s, 0, &[0x48, 0x02, 0, 0, 0, 0, 0, 0, 0, 0]));
    let ms = h.read_cmd(s, 0, &[0x1a, 0, 0x3f, 0, 255, 0], 255);
    assert_eq!(ms.good().data[2], 0x90, "WP and DPOFUA");

    // A map entry can be read-only for one group only.
    let (mut h, lu) = ram_target(64);
    let g = h.t.add_group().unwrap();
    h.t.add_initiator(
        g,
        &rscst_core::TransportId::iscsi("iqn.t:ro", None).unwrap(),
    )
    .unwrap();
    h.t.map_lun(g, Lun::single_level(3).unwrap(), lu, Access::ReadOnly)
        .unwrap();
    let ro = h.login_clean("iqn.t:ro", 3);
    let rw = h.login_clean("iqn.t:rw", 0);
    h.write_cmd(ro, 3, &wr10(0, 1), &[0; 512])
        .check(0x7, 0x27, 0x00);
    h.read_cmd(ro, 3, &rd10(0, 1), 512).good();
    h.write_cmd(rw, 0, &wr10(0, 1), &[0; 512]).good();
    let _ = GroupId::DEFAULT;
}

#[test]
fn verify_with_and_without_byte_check() {
    let (mut h, _) = ram_target(64);
    let s = h.login_clean("iqn.t:a", 0);
    let d = pattern(8 * 512, 5);
    h.write_cmd(s, 0, &wr10(0, 8), &d).good();
    let v10 = |lba: u32, n: u16, bytchk: u8| {
        let l = lba.to_be_bytes();
        let c = n.to_be_bytes();
        [0x2f, bytchk << 1, l[0], l[1], l[2], l[3], 0, c[0], c[1], 0]
    };
    // BYTCHK=0: medium verification, no data (the initiator's data is not taken).
    h.write_cmd(s, 0, &v10(0, 8, 0), &d)
        .good()
        .residual(Residual::Under(4096));
    h.cmd(s, 0, &v10(0, 8, 0)).good().residual(Residual::None);
    // BYTCHK=1: compare.
    h.write_cmd(s, 0, &v10(0, 8, 1), &d)
        .good()
        .residual(Residual::None);
    let mut bad = d.clone();
    bad[3 * 512 + 27] ^= 0x58;
    let o = h.write_cmd(s, 0, &v10(0, 8, 1), &bad);
    o.check(0xe, 0x1d, 0x00);
    assert_eq!(o.info(), Some(3 * 512 + 27));
    // BYTCHK=11b: one block compared with every block.
    h.write_cmd(s, 0, &wr10(20, 4), &[0x5a; 2048]).good();
    h.write_cmd(s, 0, &v10(20, 4, 3), &[0x5a; 512]).good();
    h.write_cmd(s, 0, &wr10(22, 1), &[0x5b; 512]).good();
    let o = h.write_cmd(s, 0, &v10(20, 4, 3), &[0x5a; 512]);
    o.check(0xe, 0x1d, 0x00);
    assert_eq!(o.info(), Some(2 * 512));
    // BYTCHK=10b is reserved; beyond the end; VERIFY(12) and (16).
    h.write_cmd(s, 0, &v10(0, 1, 2), &[0; 512])
        .invalid_cdb(1, Some(2));
    h.write_cmd(s, 0, &v10(63, 2, 1), &[0; 1024])
        .check(0x5, 0x21, 0x00);
    h.write_cmd(s, 0, &[0xaf, 0x02, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0], &d)
        .good();
    let mut v16 = [0u8; 16];
    v16[0] = 0x8f;
    v16[1] = 0x02;
    v16[13] = 8;
    h.write_cmd(s, 0, &v16, &d).good();
    v16[1] = 0x12; // DPO
    h.write_cmd(s, 0, &v16, &bad).check(0xe, 0x1d, 0x00);
}

#[test]
fn write_and_verify_writes() {
    let (mut h, _) = ram_target(64);
    let s = h.login_clean("iqn.t:a", 0);
    let d = pattern(2 * 512, 6);
    h.write_cmd(s, 0, &[0x2e, 0x02, 0, 0, 0, 4, 0, 0, 2, 0], &d)
        .good();
    assert_eq!(lun_bytes(&h, 4, 2), d);
    h.write_cmd(s, 0, &[0xae, 0x10, 0, 0, 0, 8, 0, 0, 0, 2, 0, 0], &d)
        .good();
    assert_eq!(lun_bytes(&h, 8, 2), d);
    let mut c = wr16(12, 2);
    c[0] = 0x8e;
    h.write_cmd(s, 0, &c, &d).good();
    assert_eq!(lun_bytes(&h, 12, 2), d);
    c[2..10].copy_from_slice(&63u64.to_be_bytes());
    h.write_cmd(s, 0, &c, &d).check(0x5, 0x21, 0x00);
    h.write_cmd(s, 0, &[0x2e, 0x04, 0, 0, 0, 4, 0, 0, 2, 0], &d)
        .invalid_cdb(1, Some(2));
}

#[test]
fn null_backend_reads_zeros_in_rounds_and_discards_writes() {
    // A 4 KiB zero chunk: at most 8 segments (32 KiB) per round.
    let zeros = mem(4096, 0x2000_0000);
    let sink = mem(4096, 0x3000_0000);
    zeros.fill(0, 4096, 0xff).unwrap();
    let b = NullBackend::new(zeros, sink).unwrap();
    let mut h = H::new(b, 64 * 1024, &[zeros, sink]);
    let lu =
        h.t.add_lu(&LuConfig::new(BackendLun(0), 512, 1 << 40))
            .unwrap();
    h.t.map_lun(GroupId::DEFAULT, Lun::ZERO, lu, Access::ReadWrite)
        .unwrap();
    let s = h.login_clean("iqn.t:a", 0);
    let o = h.read_cmd(s, 0, &rd10(100, 200), 200 * 512);
    o.good().residual(Residual::None);
    assert_eq!(o.data.len(), 200 * 512);
    assert!(o.data.iter().all(|&b| b == 0));
    let rounds =
        h.tr.log
            .iter()
            .filter(|e| matches!(e, Ev::DataIn { .. }))
            .count();
    assert_eq!(
        rounds, 4,
        "32 KiB per round: 3 without status, the last with it"
    );
    h.write_cmd(s, 0, &wr10(0, 100), &pattern(100 * 512, 1))
        .good();
    assert!(
        h.read_cmd(s, 0, &rd10(0, 8), 4096)
            .good()
            .data
            .iter()
            .all(|&b| b == 0)
    );
    // READ CAPACITY(10) of a LU with more than 2^32 blocks.
    let o = h.read_cmd(s, 0, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], 8);
    o.good().data(&[0xff, 0xff, 0xff, 0xff, 0, 0, 2, 0]);
}

#[test]
fn buffered_path_when_the_backend_does_not_map() {
    let lun_mem = mem(64 * 512, 0x4000_0000);
    let mut ram: RamB = rscst_core::RamBackend::new();
    let id = ram.add_lun(lun_mem, 512).unwrap();
    let mut slow = Slow::new(ram);
    slow.hold = true;
    // A 16 KiB pool: rounds of 8 KiB.
    let mut h = H::new(slow, 16 * 1024, &[lun_mem]);
    let lu = h.t.add_lu(&LuConfig::new(id, 512, 64)).unwrap();
    h.t.map_lun(GroupId::DEFAULT, Lun::ZERO, lu, Access::ReadWrite)
        .unwrap();
    let s = h.login("iqn.t:a");
    let t = h.submit(s, 0, &TUR, DataDirection::None, 0, &[]);
    h.settle();
    h.result(t);
    let d = pattern(40 * 512, 3);
    let w = h.submit(s, 0, &wr10(2, 40), DataDirection::Out, d.len() as u32, &d);
    for _ in 0..20 {
        h.settle();
        h.b.release();
    }
    h.result(w).good();
    let mut got = vec![0u8; d.len()];
    lun_mem.read(2 * 512, &mut got).unwrap();
    assert_eq!(got, d);
    let r = h.submit(s, 0, &rd10(2, 40), DataDirection::In, d.len() as u32, &[]);
    for _ in 0..20 {
        h.settle();
        h.b.release();
    }
    h.result(r).good().data(&d);
    let writes =
        h.b.submitted
            .iter()
            .filter(|x| x.1 == rscst_core::IoKind::Write)
            .count();
    assert_eq!(writes, 3, "20 KiB in rounds of at most 8 KiB");
    assert_eq!(
        h.t.buffer_pool().free_chunks(),
        h.t.buffer_pool().chunks(),
        "every chunk returned"
    );
}

#[test]
fn sync_cache_prefetch() {
    let (mut h, _) = ram_target(64);
    let s = h.login_clean("iqn.t:a", 0);
    h.cmd(s, 0, &[0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0]).good();
    h.cmd(s, 0, &[0x35, 0x02, 0, 0, 0, 60, 0, 0, 4, 0]).good();
    // The obsolete SYNC_NV bit is ignored; the reserved bits around it are not.
    h.cmd(s, 0, &[0x35, 0x04, 0, 0, 0, 60, 0, 0, 4, 0]).good();
    h.cmd(s, 0, &[0x35, 0x08, 0, 0, 0, 60, 0, 0, 4, 0])
        .invalid_cdb(1, Some(3));
    h.cmd(s, 0, &[0x35, 0, 0, 0, 0, 62, 0, 0, 4, 0])
        .check(0x5, 0x21, 0x00);
    let mut s16 = [0u8; 16];
    s16[0] = 0x91;
    s16[13] = 64;
    h.cmd(s, 0, &s16).good();
    s16[9] = 1;
    h.cmd(s, 0, &s16).check(0x5, 0x21, 0x00);
    h.cmd(s, 0, &[0x34, 0, 0, 0, 0, 0, 0, 0, 8, 0])
        .status(ScsiStatus::ConditionMet);
    h.cmd(s, 0, &[0x34, 0x02, 0, 0, 0, 63, 0, 0, 1, 0])
        .status(ScsiStatus::ConditionMet);
    h.cmd(s, 0, &[0x34, 0, 0, 0, 0, 63, 0, 0, 2, 0])
        .check(0x5, 0x21, 0x00);
    let mut p16 = [0u8; 16];
    p16[0] = 0x90;
    p16[13] = 64;
    h.cmd(s, 0, &p16).status(ScsiStatus::ConditionMet);
    p16[13] = 65;
    h.cmd(s, 0, &p16).check(0x5, 0x21, 0x00);
}

#[test]
fn read_capacity() {
    let (mut h, _) = ram_target(1000);
    let s = h.login_clean("iqn.t:a", 0);
    let rc10 = [0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    h.read_cmd(s, 0, &rc10, 8)
        .good()
        .data(&[0, 0, 0x03, 0xe7, 0, 0, 2, 0])
        .residual(Residual::None);
    h.read_cmd(s, 0, &[0x25, 0, 0, 0, 0, 1, 0, 0, 0, 0], 8)
        .invalid_cdb(2, Some(7));
    h.read_cmd(s, 0, &[0x25, 0, 0, 0, 0, 1, 0, 0, 1, 0], 8)
        .good();
    let mut rc16 = [0u8; 16];
    rc16[0] = 0x9e;
    rc16[1] = 0x10;
    rc16[13] = 32;
    let o = h.read_cmd(s, 0, &rc16, 32);
    let mut want = vec![0, 0, 0, 0, 0, 0, 0x03, 0xe7, 0, 0, 2, 0, 0, 0, 0xc0, 0];
    want.extend_from_slice(&[0; 16]);
    o.good().data(&want);
    rc16[13] = 0;
    h.read_cmd(s, 0, &rc16, 0).good().data(&[]);
    rc16[13] = 12;
    h.read_cmd(s, 0, &rc16, 12).good().data(&want[..12]);
    rc16[2] = 1;
    h.read_cmd(s, 0, &rc16, 12).invalid_cdb(2, Some(0));
}

#[test]
fn physical_block_size_in_read_capacity_and_block_limits() {
    // 4096-byte physical blocks of 512-byte logical ones, thin with 8-block
    // granules (what `rscst run`'s default LU is meant to be).
    let (mut h, _) = ram_target_granule(1024, 512, 512 * 1024, 8, |c| {
        c.physical_block_exponent = 3;
    });
    let s = h.login_clean("iqn.t:a", 0);
    let mut rc16 = [0u8; 16];
    rc16[0] = 0x9e;
    rc16[1] = 0x10;
    rc16[13] = 32;
    let mut want = vec![0, 0, 0, 0, 0, 0, 0x03, 0xff, 0, 0, 2, 0, 0, 3, 0xc0, 0];
    want.extend_from_slice(&[0; 16]);
    h.read_cmd(s, 0, &rc16, 32).good().data(&want);
    // VPD B0h: OPTIMAL TRANSFER LENGTH GRANULARITY is the physical block;
    // the unmap granularity is the backend's, aligned at LBA 0 like the
    // physical blocks (LOWEST ALIGNED LOGICAL BLOCK ADDRESS 0).
    let d = h
        .read_cmd(s, 0, &[0x12, 1, 0xb0, 0, 64, 0], 64)
        .good()
        .data
        .clone();
    assert_eq!(&d[6..8], &[0, 8], "OPTIMAL TRANSFER LENGTH GRANULARITY");
    assert_eq!(&d[28..32], &[0, 0, 0, 8], "OPTIMAL UNMAP GRANULARITY");
    assert_eq!(&d[32..36], &[0x80, 0, 0, 0], "UGAVALID, alignment 0");
    // READ CAPACITY(10) and the transfer rules stay in logical blocks.
    h.read_cmd(s, 0, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], 8)
        .good()
        .data(&[0, 0, 0x03, 0xff, 0, 0, 2, 0]);
    h.write_cmd(s, 0, &wr10(3, 1), &[1; 512]).good();
    // The exponent is a 4-bit field.
    let lun_mem = mem(64 * 512, 0x5000_0000);
    let mut b: RamB = rscst_core::RamBackend::new();
    let id = b.add_lun(lun_mem, 512).unwrap();
    let mut h = H::new(b, 64 * 1024, &[lun_mem]);
    let mut c = rscst_core::LuConfig::new(id, 512, 64);
    c.physical_block_exponent = rscst_core::PHYSICAL_EXPONENT_MAX + 1;
    assert_eq!(h.t.add_lu(&c), Err(rscst_core::ConfigError::Invalid));
    c.physical_block_exponent = rscst_core::PHYSICAL_EXPONENT_MAX;
    assert!(h.t.add_lu(&c).is_ok());
}

#[test]
fn read_defect_data() {
    let (mut h, _) = ram_target(64);
    let s = h.login_clean("iqn.t:a", 0);
    h.read_cmd(s, 0, &[0x37, 0, 0x1d, 0, 0, 0, 0, 0, 255, 0], 255)
        .good()
        .data(&[0, 0x1d, 0, 0]);
    h.read_cmd(s, 0, &[0xb7, 0x0c, 0, 0, 0, 0, 0, 0, 0, 255, 0, 0], 255)
        .good()
        .data(&[0, 0x0c, 0, 0, 0, 0, 0, 0]);
}

#[test]
fn write_atomic16() {
    let (mut h, _) = ram_target(64);
    let s = h.login_clean("iqn.t:a", 0);
    let mut c = [0u8; 16];
    c[0] = 0x9c;
    c[9] = 5;
    c[13] = 3;
    let d = pattern(3 * 512, 8);
    h.write_cmd(s, 0, &c, &d).good();
    assert_eq!(lun_bytes(&h, 5, 3), d);
    c[1] = 0x18;
    h.write_cmd(s, 0, &c, &d).good();
    // More than MAXIMUM ATOMIC TRANSFER LENGTH (512 blocks for this pool).
    c[12] = 0x02;
    c[13] = 0x01;
    h.write_cmd(s, 0, &c, &[0; 513 * 512])
        .check(0x5, 0x21, 0x00);
    c[9] = 0;
    let (mut h2, _) = ram_target(1024);
    let s2 = h2.login_clean("iqn.t:a", 0);
    h2.write_cmd(s2, 0, &c, &vec![0; 513 * 512])
        .invalid_cdb(12, Some(7));
    // ATOMIC BOUNDARY is not supported.
    let mut c = [0u8; 16];
    c[0] = 0x9c;
    c[11] = 1;
    c[13] = 1;
    h.write_cmd(s, 0, &c, &[0; 512]).invalid_cdb(11, Some(0));
    // Zero blocks; beyond the end.
    c[11] = 0;
    c[13] = 0;
    h.write_cmd(s, 0, &c, &[]).good();
    c[9] = 64;
    c[13] = 1;
    h.write_cmd(s, 0, &c, &[0; 512]).check(0x5, 0x21, 0x00);
}

#[test]
fn orwrite() {
    let (mut h, _) = ram_target(64);
    let s = h.login_clean("iqn.t:a", 0);
    h.write_cmd(s, 0, &wr10(0, 2), &[0x0f; 1024]).good();
    let mut c = [0u8; 16];
    c[0] = 0x8b;
    c[13] = 2;
    h.write_cmd(s, 0, &c, &[0xa0; 1024]).good();
    assert!(lun_bytes(&h, 0, 2).iter().all(|&b| b == 0xaf));
    c[1] = 0x18;
    h.write_cmd(s, 0, &c, &[0x10; 1024]).good();
    assert!(lun_bytes(&h, 0, 2).iter().all(|&b| b == 0xbf));
    c[13] = 0;
    h.write_cmd(s, 0, &c, &[]).good();
    c[9] = 63;
    c[13] = 2;
    h.write_cmd(s, 0, &c, &[0; 1024]).check(0x5, 0x21, 0x00);
    c[1] = 0x20; // ORPROTECT
    c[9] = 0;
    h.write_cmd(s, 0, &c, &[0; 1024]).invalid_cdb(1, Some(5));
}
