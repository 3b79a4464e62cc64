//! Fuzz-minded properties of the portal: arbitrary bytes, arbitrary mutations of valid
//! PDU streams and arbitrary SAN events never panic, and whatever the portal writes is
//! always a well-formed PDU stream.

mod iscsi_common;

use std::time::Duration;

use iscsi_common::*;
use proptest::prelude::*;
use rscst_sim::iscsi::wire::{Lun, Residual, TmfResponseCode};
use rscst_sim::iscsi::{Portal, SanEvents, ScsiStatus};

fn drain(p: &mut Portal, ti: &mut TestInit) {
    // parse_pdus asserts the output is whole, well-formed PDUs with correct digests.
    let _ = ti.recv(p);
}

/// A valid byte stream: login, a read, a write with unsolicited data, a TMF, a NOP,
/// a text request and a logout.
fn valid_stream() -> Vec<Vec<u8>> {
    let mut p = portal_with(&[TARGET]);
    let mut san = MemSan::new(&[64]);
    let mut ti = TestInit::connect(&mut p);
    let mut pdus = Vec::new();
    let mut data = Vec::new();
    for (k, v) in [
        ("InitiatorName", "iqn.2024-01.test:init"),
        ("TargetName", TARGET),
        ("InitialR2T", "No"),
        ("MaxRecvDataSegmentLength", "4096"),
    ] {
        rscst_sim::iscsi::text::push(&mut data, k, v);
    }
    let mut hdr = [0u8; 48];
    rscst_sim::iscsi::wire::LoginRequestRepr {
        transit: true,
        cont: false,
        csg: rscst_sim::iscsi::wire::Stage::Operational,
        nsg: rscst_sim::iscsi::wire::Stage::FullFeature,
        version_max: 0,
        version_min: 0,
        isid: [0x80, 0, 0, 0, 0, 9],
        tsih: 0,
        itt: 1,
        cid: 0,
        cmdsn: ti.cmdsn,
        exp_statsn: 0,
    }
    .emit(&mut hdr);
    pdus.push(frame_pdu(&hdr, &[], &data, false, false));
    let _ = &mut san;
    let (h, _) = ti.cmd(&read10(0, 4), 2048, true, false, true);
    pdus.push(frame_pdu(&h, &[], &[], false, false));
    let (h, itt) = ti.cmd(&write10(0, 4), 2048, false, true, false);
    pdus.push(frame_pdu(&h, &[], &[1u8; 1024], false, false));
    let d = ti.data_out(itt, u32::MAX, 0, 1024, true);
    pdus.push(frame_pdu(&d, &[], &[2u8; 1024], false, false));
    let mut t = [0u8; 48];
    t[0] = 0x42;
    t[1] = 0x81;
    t[16..20].copy_from_slice(&99u32.to_be_bytes());
    t[20..24].copy_from_slice(&itt.to_be_bytes());
    pdus.push(frame_pdu(&t, &[], &[], false, false));
    let mut n = [0u8; 48];
    n[0] = 0x40;
    n[1] = 0x80;
    n[16..20].copy_from_slice(&5u32.to_be_bytes());
    n[20..24].copy_from_slice(&u32::MAX.to_be_bytes());
    pdus.push(frame_pdu(&n, &[], b"hello", false, false));
    let mut tx = [0u8; 48];
    tx[0] = 0x44;
    tx[1] = 0x80;
    tx[20..24].copy_from_slice(&u32::MAX.to_be_bytes());
    pdus.push(frame_pdu(&tx, &[], b"SendTargets=All\0", false, false));
    let mut l = [0u8; 48];
    l[0] = 0x46;
    l[1] = 0x80;
    pdus.push(frame_pdu(&l, &[], &[], false, false));
    let _ = ti.recv(&mut p);
    pdus
}

fn run_stream(bytes: &[u8], chunk: usize) {
    let mut p = portal_with(&[TARGET]);
    let mut san = MemSan::new(&[64]);
    let mut ti = TestInit::connect(&mut p);
    let mut buf: Vec<u8> = Vec::new();
    for piece in bytes.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        let used = p.receive(ti.conn, &buf, ti.now, &mut san);
        assert!(used <= buf.len());
        buf.drain(..used);
        settle(&mut p, &mut san, ti.now);
        // Digests may have switched on after login; frame with what the portal uses.
        if ti.hd || ti.dd {
            drain(&mut p, &mut ti);
        } else {
            let out = p.transmit(ti.conn).to_vec();
            p.transmitted(ti.conn, out.len());
        }
        if p.should_close(ti.conn) {
            break;
        }
    }
    ti.now += Duration::from_secs(3600);
    p.poll(ti.now, &mut san);
    p.close(ti.conn, &mut san);
    assert_eq!(p.connection_count(), 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_before_login(bytes in proptest::collection::vec(any::<u8>(), 0..600), chunk in 1usize..97) {
        run_stream(&bytes, chunk);
    }

    #[test]
    fn mutated_valid_streams(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
                             cut in any::<prop::sample::Index>(), chunk in 1usize..200) {
        let mut s: Vec<u8> = valid_stream().concat();
        for (i, v) in flips {
            let i = i.index(s.len());
            s[i] ^= v;
        }
        let cut = cut.index(s.len() + 1);
        run_stream(&s[..cut], chunk);
    }

    #[test]
    fn random_pdus_after_login(bodies in proptest::collection::vec(
        (any::<[u8; 48]>(), proptest::collection::vec(any::<u8>(), 0..300)), 1..12)) {
        let mut p = portal_with(&[TARGET]);
        let mut san = MemSan::new(&[64]);
        let mut ti = TestInit::connect(&mut p);
        ti.login(&mut p, &mut san, TARGET, &[("InitialR2T", "No")]);
        for (mut hdr, data) in bodies {
            // Keep opcodes mostly in the initiator range so the handlers get exercised.
            hdr[0] &= 0x47;
            hdr[4] = 0;
            let b = frame_pdu(&hdr, &[], &data, false, false);
            let used = p.receive(ti.conn, &b, ti.now, &mut san);
            prop_assert!(used == b.len() || p.should_close(ti.conn));
            settle(&mut p, &mut san, ti.now);
            drain(&mut p, &mut ti);
            if p.should_close(ti.conn) { break; }
        }
        p.close(ti.conn, &mut san);
    }

    #[test]
    fn random_san_events_never_panic(ops in proptest::collection::vec((0u8..6, any::<u32>(), any::<u32>()), 1..40)) {
        let mut p = portal_with(&[TARGET]);
        let mut san = MemSan::new(&[64]);
        san.auto = false;
        let mut ti = TestInit::connect(&mut p);
        ti.login(&mut p, &mut san, TARGET, &[("InitialR2T", "No")]);
        let (h, _) = ti.cmd(&read10(0, 4), 2048, true, false, true);
        ti.send(&mut p, &mut san, &h, &[]);
        let (h, _) = ti.cmd(&write10(0, 4), 2048, false, true, true);
        ti.send(&mut p, &mut san, &h, &[7u8; 512]);
        let tasks: Vec<_> = san.commands.iter().map(|c| c.0).collect();
        let nexus = p.nexus(ti.conn).unwrap();
        for (op, a, b) in ops {
            let t = tasks[(a as usize) % tasks.len()];
            let data = vec![0u8; (b % 3000) as usize];
            let _ = match op {
                0 => p.data_in(t, a % 4096, &data),
                1 => p.ready_to_transfer(t, a % 4096, b % 8192),
                2 => p.status(t, &ScsiStatus { status: (a % 256) as u8, sense: &data[..data.len().min(260)], residual: Residual::Underflow(b) }),
                3 => p.task_aborted(t),
                4 => p.async_event(nexus, Lun::ZERO, &data[..data.len().min(64)]),
                _ => p.login_done(p.login_id(ti.conn), Err(rscst_sim::iscsi::wire::LoginStatus::TARGET_ERROR)),
            };
            p.poll(ti.now, &mut san);
            drain(&mut p, &mut ti);
        }
        let _ = TmfResponseCode::Complete;
        p.close(ti.conn, &mut san);
    }
}

#[test]
fn the_unmutated_stream_is_valid() {
    // Guards the mutation property: its seed stream must really log in and run I/O.
    let mut p = portal_with(&[TARGET]);
    let mut san = MemSan::new(&[64]);
    let ti = TestInit::connect(&mut p);
    let s: Vec<u8> = valid_stream().concat();
    let used = p.receive(ti.conn, &s, ti.now, &mut san);
    settle(&mut p, &mut san, ti.now);
    assert_eq!(used, s.len());
    assert_eq!(san.commands.len(), 2, "read and write reached the SAN");
    assert!(
        san.seen.iter().any(|x| matches!(x, Seen::Logout(..))),
        "logout ended it"
    );
    assert_eq!(p.stats().rejects, 0);
}
