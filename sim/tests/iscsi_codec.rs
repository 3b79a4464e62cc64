//! Golden bytes for the iSCSI PDU codec, written by hand from the RFC 7143 §11 layouts
//! (and the RFC 3720 Appendix B.4 example PDU), in both directions, plus round trips.

use proptest::prelude::*;
use rscst_sim::iscsi::wire::*;

fn bhs(b: &[u8]) -> Bhs<&[u8]> {
    Bhs::new_checked(b).expect("48 bytes")
}

fn emit<F: FnOnce(&mut [u8; BHS_LEN])>(f: F) -> [u8; BHS_LEN] {
    let mut b = [0xeeu8; BHS_LEN]; // emit must clear everything it does not set
    f(&mut b);
    b
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn scsi_command_rfc3720_example() {
    // RFC 3720 B.4: a READ (10) command PDU.
    let b = hex("01 c0 00 00 00 00 00 00 00 00 00 00 00 00 00 00
         14 00 00 00 00 00 04 00 00 00 00 14 00 00 00 18
         28 00 00 00 00 00 00 00 02 00 00 00 00 00 00 00");
    let c = ScsiCommandRepr::parse(&bhs(&b)).unwrap();
    assert!(!c.immediate && c.final_ && c.read && !c.write);
    assert_eq!(c.attr, TaskAttr::Untagged);
    assert_eq!(c.lun, Lun::ZERO);
    assert_eq!(c.itt, 0x1400_0000);
    assert_eq!(c.edtl, 0x400);
    assert_eq!(c.cmdsn, 0x14);
    assert_eq!(c.exp_statsn, 0x18);
    assert_eq!(&c.cdb[..10], &[0x28, 0, 0, 0, 0, 0, 0, 0, 2, 0]);
    let out = emit(|o| c.emit(o));
    assert_eq!(&out[..], &b[..]);
    assert_eq!(
        c.to_string(),
        "SCSI-Cmd itt=0x14000000 lun=0 op=0x28 RF edtl=1024 cmdsn=20 untagged"
    );
}

#[test]
fn scsi_response_golden() {
    let r = ScsiResponseRepr {
        response: 0,
        status: 0x02,
        residual: Residual::Underflow(0x100),
        itt: 0x1122_3344,
        statsn: 0x0102_0304,
        exp_cmdsn: 5,
        max_cmdsn: 0x24,
        exp_datasn: 2,
    };
    let want = hex("21 82 00 02 00 00 00 00 00 00 00 00 00 00 00 00
         11 22 33 44 00 00 00 00 01 02 03 04 00 00 00 05
         00 00 00 24 00 00 00 02 00 00 00 00 00 00 01 00");
    assert_eq!(&emit(|o| r.emit(o))[..], &want[..]);
    assert_eq!(ScsiResponseRepr::parse(&bhs(&want)).unwrap(), r);
    // O and U together are invalid.
    let mut bad = want.clone();
    bad[1] = 0x86;
    assert!(ScsiResponseRepr::parse(&bhs(&bad)).is_err());
}

#[test]
fn data_in_with_status_golden() {
    let d = DataInRepr {
        final_: true,
        ack: false,
        status: Some((0, Residual::Overflow(8))),
        lun: Lun::ZERO,
        itt: 0x10,
        ttt: RESERVED_TAG,
        statsn: 7,
        exp_cmdsn: 8,
        max_cmdsn: 9,
        datasn: 3,
        offset: 0x2000,
    };
    let want = hex("25 85 00 00 00 00 00 00 00 00 00 00 00 00 00 00
         00 00 00 10 ff ff ff ff 00 00 00 07 00 00 00 08
         00 00 00 09 00 00 00 03 00 00 20 00 00 00 00 08");
    assert_eq!(&emit(|o| d.emit(o))[..], &want[..]);
    assert_eq!(DataInRepr::parse(&bhs(&want)).unwrap(), d);
    // Without S: StatSN and residual are reserved (zero).
    let plain = DataInRepr {
        final_: false,
        status: None,
        statsn: 0,
        ..d
    };
    let b = emit(|o| plain.emit(o));
    assert_eq!(b[1], 0x00);
    assert_eq!(&b[24..28], &[0, 0, 0, 0]);
    assert_eq!(&b[44..48], &[0, 0, 0, 0]);
    // S without F is malformed.
    let mut bad = want.clone();
    bad[1] = 0x01;
    assert!(DataInRepr::parse(&bhs(&bad)).is_err());
}

#[test]
fn r2t_golden() {
    let r = R2tRepr {
        lun: Lun::from_index(1).unwrap(),
        itt: 0x20,
        ttt: 0x1234,
        statsn: 5,
        exp_cmdsn: 6,
        max_cmdsn: 7,
        r2tsn: 1,
        offset: 0x10000,
        desired_len: 0x4000,
    };
    let want = hex("31 80 00 00 00 00 00 00 00 01 00 00 00 00 00 00
         00 00 00 20 00 00 12 34 00 00 00 05 00 00 00 06
         00 00 00 07 00 00 00 01 00 01 00 00 00 00 40 00");
    assert_eq!(&emit(|o| r.emit(o))[..], &want[..]);
    assert_eq!(R2tRepr::parse(&bhs(&want)).unwrap(), r);
}

#[test]
fn login_golden_both_directions() {
    // Initiator side: I=1, T=1, CSG=0, NSG=1.
    let req = hex("43 81 00 00 00 00 01 2c 80 00 00 12 34 56 00 00
         00 00 00 07 00 01 00 00 00 00 00 64 00 00 00 00
         00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00");
    let l = LoginRequestRepr::parse(&bhs(&req)).unwrap();
    assert!(l.transit && !l.cont);
    assert_eq!((l.csg, l.nsg), (Stage::Security, Stage::Operational));
    assert_eq!(l.isid, [0x80, 0, 0, 0x12, 0x34, 0x56]);
    assert_eq!((l.tsih, l.itt, l.cid, l.cmdsn), (0, 7, 1, 100));
    assert_eq!(bhs(&req).data_segment_len(), 300);
    let mut back = emit(|o| l.emit(o));
    Bhs::new_unchecked(&mut back[..]).set_data_segment_len(300);
    assert_eq!(&back[..], &req[..]);
    // T and C together are invalid.
    let mut bad = req.clone();
    bad[1] = 0xc1;
    assert!(LoginRequestRepr::parse(&bhs(&bad)).is_err());

    // Target side: T=1, CSG=1, NSG=3, status 0x0201.
    let rsp = LoginResponseRepr {
        transit: true,
        cont: false,
        csg: Stage::Operational,
        nsg: Stage::FullFeature,
        version_max: 0,
        version_active: 0,
        isid: [0x80, 0, 0, 0x12, 0x34, 0x56],
        tsih: 0x0102,
        itt: 0xabcd,
        statsn: 1,
        exp_cmdsn: 2,
        max_cmdsn: 3,
        status: LoginStatus::AUTHENTICATION_FAILURE,
    };
    let want = hex("23 87 00 00 00 00 00 00 80 00 00 12 34 56 01 02
         00 00 ab cd 00 00 00 00 00 00 00 01 00 00 00 02
         00 00 00 03 02 01 00 00 00 00 00 00 00 00 00 00");
    assert_eq!(&emit(|o| rsp.emit(o))[..], &want[..]);
    assert_eq!(LoginResponseRepr::parse(&bhs(&want)).unwrap(), rsp);
    assert_eq!(rsp.status.class(), 2);
    assert_eq!(rsp.status.detail(), 1);
    assert_eq!(rsp.status.to_string(), "0x0201 (authentication failure)");
}

#[test]
fn tmf_golden_both_directions() {
    let req = hex("42 81 00 00 00 00 00 00 00 02 00 00 00 00 00 00
         00 00 00 09 00 00 00 05 00 00 00 20 00 00 00 30
         00 00 00 1f 00 00 00 00 00 00 00 00 00 00 00 00");
    let t = TmfRequestRepr::parse(&bhs(&req)).unwrap();
    assert!(t.immediate);
    assert_eq!(t.function, TmfFunction::AbortTask);
    assert_eq!(t.lun.index(), Some(2));
    assert_eq!(
        (t.itt, t.ref_itt, t.cmdsn, t.exp_statsn, t.ref_cmdsn),
        (9, 5, 0x20, 0x30, 0x1f)
    );
    assert_eq!(&emit(|o| t.emit(o))[..], &req[..]);
    let rsp = TmfResponseRepr {
        response: TmfResponseCode::TaskDoesNotExist,
        itt: 9,
        statsn: 0x31,
        exp_cmdsn: 0x21,
        max_cmdsn: 0x40,
    };
    let want = hex("22 80 01 00 00 00 00 00 00 00 00 00 00 00 00 00
         00 00 00 09 00 00 00 00 00 00 00 31 00 00 00 21
         00 00 00 40 00 00 00 00 00 00 00 00 00 00 00 00");
    assert_eq!(&emit(|o| rsp.emit(o))[..], &want[..]);
    // Unknown function codes survive for logs.
    let mut odd = req.clone();
    odd[1] = 0x80 | 0x33;
    assert_eq!(
        TmfRequestRepr::parse(&bhs(&odd)).unwrap().function,
        TmfFunction::Unknown(0x33)
    );
}

#[test]
fn nop_data_out_text_logout_reject_async_golden() {
    let nop_out = hex("40 80 00 00 00 00 00 04 00 00 00 00 00 00 00 00
         00 00 00 0a ff ff ff ff 00 00 00 0b 00 00 00 0c
         00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00");
    let n = NopOutRepr::parse(&bhs(&nop_out)).unwrap();
    assert_eq!(
        (n.immediate, n.itt, n.ttt, n.cmdsn, n.exp_statsn),
        (true, 10, RESERVED_TAG, 11, 12)
    );
    assert_eq!(bhs(&nop_out).data_segment_len(), 4);

    let nop_in = NopInRepr {
        lun: Lun::ZERO,
        itt: RESERVED_TAG,
        ttt: 0x77,
        statsn: 1,
        exp_cmdsn: 2,
        max_cmdsn: 3,
    };
    let want = hex("20 80 00 00 00 00 00 00 00 00 00 00 00 00 00 00
         ff ff ff ff 00 00 00 77 00 00 00 01 00 00 00 02
         00 00 00 03 00 00 00 00 00 00 00 00 00 00 00 00");
    assert_eq!(&emit(|o| nop_in.emit(o))[..], &want[..]);

    let data_out = hex("05 80 00 00 00 00 02 00 00 00 00 00 00 00 00 00
         00 00 00 21 00 00 00 42 00 00 00 00 00 00 00 05
         00 00 00 00 00 00 00 02 00 00 04 00 00 00 00 00");
    let d = DataOutRepr::parse(&bhs(&data_out)).unwrap();
    assert_eq!(
        (d.final_, d.itt, d.ttt, d.exp_statsn, d.datasn, d.offset),
        (true, 0x21, 0x42, 5, 2, 0x400)
    );
    assert_eq!(bhs(&data_out).data_segment_len(), 512);

    let text = TextResponseRepr {
        final_: false,
        cont: true,
        lun: Lun::ZERO,
        itt: 3,
        ttt: 0x99,
        statsn: 4,
        exp_cmdsn: 5,
        max_cmdsn: 6,
    };
    let want = hex("24 40 00 00 00 00 00 00 00 00 00 00 00 00 00 00
         00 00 00 03 00 00 00 99 00 00 00 04 00 00 00 05
         00 00 00 06 00 00 00 00 00 00 00 00 00 00 00 00");
    assert_eq!(&emit(|o| text.emit(o))[..], &want[..]);

    let logout = LogoutResponseRepr {
        response: 0,
        itt: 0x55,
        statsn: 8,
        exp_cmdsn: 9,
        max_cmdsn: 10,
        time2wait: 2,
        time2retain: 20,
    };
    let want = hex("26 80 00 00 00 00 00 00 00 00 00 00 00 00 00 00
         00 00 00 55 00 00 00 00 00 00 00 08 00 00 00 09
         00 00 00 0a 00 00 00 00 00 02 00 14 00 00 00 00");
    assert_eq!(&emit(|o| logout.emit(o))[..], &want[..]);

    let reject = RejectRepr {
        reason: RejectReason::InvalidPduField,
        statsn: 0x10,
        exp_cmdsn: 0x11,
        max_cmdsn: 0x12,
        datasn: 0,
    };
    let want = hex("3f 80 09 00 00 00 00 00 00 00 00 00 00 00 00 00
         ff ff ff ff 00 00 00 00 00 00 00 10 00 00 00 11
         00 00 00 12 00 00 00 00 00 00 00 00 00 00 00 00");
    assert_eq!(&emit(|o| reject.emit(o))[..], &want[..]);

    let asy = AsyncMessageRepr {
        lun: Lun::from_index(3).unwrap(),
        statsn: 1,
        exp_cmdsn: 2,
        max_cmdsn: 3,
        event: 1,
        vcode: 0,
        param1: 0,
        param2: 0,
        param3: 5,
    };
    let want = hex("32 80 00 00 00 00 00 00 00 03 00 00 00 00 00 00
         ff ff ff ff 00 00 00 00 00 00 00 01 00 00 00 02
         00 00 00 03 01 00 00 00 00 00 00 05 00 00 00 00");
    assert_eq!(&emit(|o| asy.emit(o))[..], &want[..]);
}

#[test]
fn lun_forms_and_ahs() {
    assert_eq!(Lun::from_index(5).unwrap().0, [0, 5, 0, 0, 0, 0, 0, 0]);
    assert_eq!(
        Lun::from_index(300).unwrap().0,
        [0x41, 0x2c, 0, 0, 0, 0, 0, 0]
    );
    assert_eq!(Lun::from_index(300).unwrap().index(), Some(300));
    assert_eq!(Lun::from_index(0x4000), None);
    assert_eq!(
        Lun([0xc0, 0, 0, 0, 0, 0, 0, 1]).to_string(),
        "c000000000000001"
    );
    // Extended CDB AHS: length 17 (reserved byte + 16 CDB bytes), type 1; then a bidi AHS.
    let mut area = vec![0, 17, 1, 0];
    area.extend(0u8..16);
    area.extend_from_slice(&[0, 5, 2, 0, 0, 0, 0x10, 0x00]);
    let v: Vec<_> = ahs_iter(&area).collect::<Result<_, _>>().unwrap();
    assert_eq!(v.len(), 2);
    assert_eq!(v[0].0, ahs::EXTENDED_CDB);
    assert_eq!(v[0].1.len(), 17);
    assert_eq!(v[1], (ahs::BIDI_READ_LENGTH, &[0, 0, 0, 0x10, 0][..]));
    // A length past the end is an error, not a panic.
    assert!(ahs_iter(&[0, 200, 1, 0]).next().unwrap().is_err());
    assert!(ahs_iter(&[0, 0]).next().unwrap().is_err());
}

#[test]
fn serial_number_arithmetic() {
    assert!(sn_lt(1, 2));
    assert!(sn_lt(0xffff_ffff, 0));
    assert!(!sn_lt(0, 0xffff_ffff));
    assert!(sn_le(7, 7));
    assert!(!sn_lt(7, 7));
    assert!(sn_lt(0x7fff_fff0, 0x8000_0010));
}

fn lun() -> impl Strategy<Value = Lun> {
    any::<[u8; 8]>().prop_map(Lun)
}

fn residual() -> impl Strategy<Value = Residual> {
    prop_oneof![
        Just(Residual::None),
        any::<u32>().prop_map(Residual::Underflow),
        any::<u32>().prop_map(Residual::Overflow),
    ]
}

proptest! {
    #[test]
    fn scsi_command_round_trip(imm in any::<bool>(), f in any::<bool>(), r in any::<bool>(), w in any::<bool>(),
                               attr in 0u8..8, lun in lun(), itt in any::<u32>(), edtl in any::<u32>(),
                               cmdsn in any::<u32>(), es in any::<u32>(), cdb in any::<[u8; 16]>()) {
        let c = ScsiCommandRepr { immediate: imm, final_: f, read: r, write: w, attr: TaskAttr::from(attr),
                                  lun, itt, edtl, cmdsn, exp_statsn: es, cdb };
        let b = emit(|o| c.emit(o));
        prop_assert_eq!(ScsiCommandRepr::parse(&bhs(&b)).unwrap(), c);
    }

    #[test]
    fn data_in_round_trip(f in any::<bool>(), s in proptest::option::of((any::<u8>(), residual())),
                          itt in any::<u32>(), ttt in any::<u32>(), sn in any::<u32>(), e in any::<u32>(),
                          m in any::<u32>(), dsn in any::<u32>(), off in any::<u32>()) {
        let d = DataInRepr { final_: f || s.is_some(), ack: false, status: s, lun: Lun::ZERO, itt, ttt,
                             statsn: if s.is_some() { sn } else { 0 }, exp_cmdsn: e, max_cmdsn: m, datasn: dsn, offset: off };
        let b = emit(|o| d.emit(o));
        prop_assert_eq!(DataInRepr::parse(&bhs(&b)).unwrap(), d);
    }

    #[test]
    fn response_and_r2t_round_trip(st in any::<u8>(), res in residual(), a in any::<[u32; 9]>(), lun in lun()) {
        let r = ScsiResponseRepr { response: 0, status: st, residual: res, itt: a[0], statsn: a[1],
                                   exp_cmdsn: a[2], max_cmdsn: a[3], exp_datasn: a[4] };
        prop_assert_eq!(ScsiResponseRepr::parse(&bhs(&emit(|o| r.emit(o)))).unwrap(), r);
        let t = R2tRepr { lun, itt: a[0], ttt: a[1], statsn: a[2], exp_cmdsn: a[3], max_cmdsn: a[4],
                          r2tsn: a[5], offset: a[6], desired_len: a[7] };
        prop_assert_eq!(R2tRepr::parse(&bhs(&emit(|o| t.emit(o)))).unwrap(), t);
    }

    #[test]
    fn parsers_never_panic(b in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(h) = Bhs::new_checked(&b[..]) {
            let _ = h.to_string();
            let _ = ScsiCommandRepr::parse(&h);
            let _ = DataOutRepr::parse(&h);
            let _ = LoginRequestRepr::parse(&h);
            let _ = TmfRequestRepr::parse(&h);
            let _ = TextRequestRepr::parse(&h);
            let _ = LogoutRequestRepr::parse(&h);
            let _ = NopOutRepr::parse(&h);
            let _ = DataInRepr::parse(&h);
            let _ = ScsiResponseRepr::parse(&h);
        } else {
            prop_assert!(b.len() < BHS_LEN);
        }
        for a in ahs_iter(&b) { let _ = a; }
        let _ = rscst_sim::iscsi::text::parse(&b);
    }
}
