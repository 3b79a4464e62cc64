//! Sans-IO tests of the iSCSI portal: a PDU-level test initiator feeds bytes to the
//! portal and checks every PDU it writes back, with the test-only RAM responder (or a
//! hand-driven SAN) behind it.

mod iscsi_common;

use std::time::Duration;

use iscsi_common::*;
use rscst_sim::iscsi::chap::{self, ChapConfig, ChapCredentials};
use rscst_sim::iscsi::wire::{
    self, BHS_LEN, DataInRepr, LoginStatus, Lun, NopInRepr, NopOutRepr, Opcode, R2tRepr,
    RESERVED_TAG, Residual, ScsiResponseRepr, Stage, TmfFunction, TmfRequestRepr, TmfResponseCode,
};
use rscst_sim::iscsi::{
    EventError, NexusLoss, Portal, PortalConfig, SanEvents, ScsiStatus, TargetConfig, text,
};

fn status_of(p: &Pdu) -> LoginStatus {
    LoginStatus(p.view().u16_at(36))
}

fn logged_in(extra: &[(&str, &str)]) -> (Portal, MemSan, TestInit) {
    let mut p = portal_with(&[TARGET]);
    let mut san = MemSan::new(&[1024]);
    let mut ti = TestInit::connect(&mut p);
    let r = ti.login(&mut p, &mut san, TARGET, extra);
    assert_eq!(status_of(&r), LoginStatus::SUCCESS, "{:?}", keys_of(&r));
    (p, san, ti)
}

// ---------------------------------------------------------------- login

#[test]
fn login_operational_stage_answers_every_key() {
    let mut p = portal_with(&[TARGET]);
    let mut san = MemSan::new(&[8]);
    let mut ti = TestInit::connect(&mut p);
    let r = ti.login(
        &mut p,
        &mut san,
        TARGET,
        &[
            ("HeaderDigest", "None,CRC32C"),
            ("DataDigest", "None"),
            ("InitialR2T", "No"),
            ("ImmediateData", "Yes"),
            ("MaxBurstLength", "262144"),
            ("FirstBurstLength", "65536"),
            ("DefaultTime2Wait", "2"),
            ("DefaultTime2Retain", "0"),
            ("MaxOutstandingR2T", "1"),
            ("ErrorRecoveryLevel", "0"),
            ("IFMarker", "No"),
            ("OFMarker", "No"),
            ("MaxConnections", "1"),
            ("DataPDUInOrder", "Yes"),
            ("DataSequenceInOrder", "Yes"),
            ("X-com.example.Unknown", "1"),
        ],
    );
    let v = r.view();
    assert_eq!(r.opcode(), Opcode::LoginResponse);
    assert_eq!(status_of(&r), LoginStatus::SUCCESS);
    assert_eq!(v.flags(), 0x80 | (1 << 2) | 3, "T=1 CSG=1 NSG=3");
    assert_ne!(v.u16_at(14), 0, "TSIH assigned");
    assert_eq!(v.itt(), 0x1000);
    assert_eq!(v.u32_at(28), 100, "ExpCmdSN is the login CmdSN");
    let k = keys_of(&r);
    assert_eq!(key(&k, "TargetPortalGroupTag"), Some("1"));
    assert_eq!(key(&k, "HeaderDigest"), Some("None"));
    assert_eq!(key(&k, "InitialR2T"), Some("No"));
    assert_eq!(key(&k, "ImmediateData"), Some("Yes"));
    assert_eq!(key(&k, "MaxBurstLength"), Some("262144"));
    assert_eq!(key(&k, "FirstBurstLength"), Some("65536"));
    assert_eq!(key(&k, "ErrorRecoveryLevel"), Some("0"));
    assert_eq!(key(&k, "MaxConnections"), Some("1"));
    assert_eq!(key(&k, "IFMarker"), Some("No"));
    assert_eq!(key(&k, "X-com.example.Unknown"), Some("NotUnderstood"));
    assert_eq!(key(&k, "MaxRecvDataSegmentLength"), Some("262144"));
    assert!(matches!(&san.seen[..], [Seen::Login(n, _)] if n == "iqn.2024-01.test:init"));
    assert_eq!(p.session_count(), 1);
}

fn login_status(keys: &[(&str, &str)], csg: Stage, nsg: Stage) -> LoginStatus {
    let cfg = PortalConfig {
        targets: vec![
            TargetConfig::open(TARGET),
            TargetConfig {
                allowed_initiators: Some(vec!["iqn.2024-01.test:other".into()]),
                ..TargetConfig::open("iqn.2024-01.org.rscst:acl")
            },
        ],
        nop_in_interval: None,
        ..Default::default()
    };
    let mut p = Portal::new(cfg).unwrap();
    let mut san = MemSan::new(&[8]);
    let mut ti = TestInit::connect(&mut p);
    let r = ti.login_keys(&mut p, &mut san, keys, csg, nsg, true);
    let st = status_of(&r);
    if st != LoginStatus::SUCCESS {
        assert!(p.should_close(ti.conn) || !p.transmit(ti.conn).is_empty());
        assert!(san.seen.is_empty(), "no nexus for a failed login");
    }
    st
}

#[test]
fn login_error_status_classes() {
    let (op, ff) = (Stage::Operational, Stage::FullFeature);
    assert_eq!(
        login_status(&[("TargetName", TARGET)], op, ff),
        LoginStatus::MISSING_PARAMETER
    );
    assert_eq!(
        login_status(&[("InitiatorName", "iqn.x")], op, ff),
        LoginStatus::MISSING_PARAMETER
    );
    assert_eq!(
        login_status(
            &[("InitiatorName", "iqn.x"), ("TargetName", "iqn.nope")],
            op,
            ff
        ),
        LoginStatus::NOT_FOUND
    );
    assert_eq!(
        login_status(
            &[
                ("InitiatorName", "iqn.x"),
                ("TargetName", "iqn.2024-01.org.rscst:acl")
            ],
            op,
            ff
        ),
        LoginStatus::AUTHORIZATION_FAILURE
    );
    assert_eq!(
        login_status(
            &[("InitiatorName", "iqn.x"), ("SessionType", "Bogus")],
            op,
            ff
        ),
        LoginStatus::SESSION_TYPE_NOT_SUPPORTED
    );
    assert_eq!(
        login_status(
            &[
                ("InitiatorName", "iqn.x"),
                ("TargetName", TARGET),
                ("MaxRecvDataSegmentLength", "12")
            ],
            op,
            ff
        ),
        LoginStatus::INITIATOR_ERROR
    );
    // Operational stage cannot go "back" to security, and security keys do not belong there.
    assert_eq!(
        login_status(
            &[("InitiatorName", "iqn.x"), ("TargetName", TARGET)],
            op,
            Stage::Security
        ),
        LoginStatus::INITIATOR_ERROR
    );
    assert_eq!(
        login_status(
            &[
                ("InitiatorName", "iqn.x"),
                ("TargetName", TARGET),
                ("AuthMethod", "None")
            ],
            op,
            ff
        ),
        LoginStatus::INITIATOR_ERROR
    );
    // A discovery session needs no TargetName.
    assert_eq!(
        login_status(
            &[("InitiatorName", "iqn.x"), ("SessionType", "Discovery")],
            op,
            ff
        ),
        LoginStatus::SUCCESS
    );
}

#[test]
fn login_version_and_malformed_text() {
    let mut p = portal_with(&[TARGET]);
    let mut san = MemSan::new(&[8]);
    let mut ti = TestInit::connect(&mut p);
    let mut hdr = [0u8; BHS_LEN];
    wire::LoginRequestRepr {
        transit: true,
        cont: false,
        csg: Stage::Operational,
        nsg: Stage::FullFeature,
        version_max: 2,
        version_min: 1,
        isid: [0x80, 0, 0, 0, 0, 1],
        tsih: 0,
        itt: 7,
        cid: 0,
        cmdsn: 1,
        exp_statsn: 0,
    }
    .emit(&mut hdr);
    ti.send(&mut p, &mut san, &hdr, b"InitiatorName=iqn.x\0");
    let r = ti.recv(&mut p);
    assert_eq!(status_of(&r[0]), LoginStatus::UNSUPPORTED_VERSION);
    assert!(p.should_close(ti.conn));

    let mut ti = TestInit::connect(&mut p);
    hdr[3] = 0;
    ti.send(&mut p, &mut san, &hdr, b"no-equals-sign\0");
    let r = ti.recv(&mut p);
    assert_eq!(status_of(&r[0]), LoginStatus::INITIATOR_ERROR);
    assert_eq!(r[0].view().itt(), 7, "the error response echoes the ITT");
}

#[test]
fn non_login_pdu_before_full_feature_drops_the_connection() {
    let mut p = portal_with(&[TARGET]);
    let mut san = MemSan::new(&[8]);
    let mut ti = TestInit::connect(&mut p);
    let (hdr, _) = ti.cmd(&read10(0, 1), 512, true, false, true);
    ti.send(&mut p, &mut san, &hdr, &[]);
    assert!(p.should_close(ti.conn));
    assert!(san.seen.is_empty());
}

#[test]
fn login_text_continuation() {
    let mut p = portal_with(&[TARGET]);
    let mut san = MemSan::new(&[8]);
    let mut ti = TestInit::connect(&mut p);
    let mut text_bytes = Vec::new();
    text::push(&mut text_bytes, "InitiatorName", "iqn.2024-01.test:init");
    text::push(&mut text_bytes, "TargetName", TARGET);
    let (a, b) = text_bytes.split_at(10);
    let mut hdr = [0u8; BHS_LEN];
    let mut req = wire::LoginRequestRepr {
        transit: false,
        cont: true,
        csg: Stage::Operational,
        nsg: Stage::FullFeature,
        version_max: 0,
        version_min: 0,
        isid: [0x80, 0, 0, 0, 0, 2],
        tsih: 0,
        itt: 9,
        cid: 0,
        cmdsn: 5,
        exp_statsn: 0,
    };
    req.emit(&mut hdr);
    ti.send(&mut p, &mut san, &hdr, a);
    let r = ti.recv(&mut p);
    assert_eq!(r.len(), 1);
    assert!(
        r[0].data.is_empty(),
        "continued requests get empty responses"
    );
    assert_eq!(status_of(&r[0]), LoginStatus::SUCCESS);
    req.cont = false;
    req.transit = true;
    req.emit(&mut hdr);
    ti.send(&mut p, &mut san, &hdr, b);
    let r = ti.recv(&mut p);
    assert_eq!(status_of(&r[0]), LoginStatus::SUCCESS);
    assert_eq!(r[0].view().flags() & 0x83, 0x83);
    // Consecutive login responses carry consecutive StatSNs.
    assert_eq!(r[0].view().u32_at(24), ti.exp_statsn.wrapping_sub(1));
}

fn chap_portal(mutual: bool) -> Portal {
    let mut t = TargetConfig::open(TARGET);
    t.chap = Some(ChapConfig {
        initiator: ChapCredentials {
            name: "alice".into(),
            secret: b"alice-secret".to_vec(),
        },
        target: mutual.then(|| ChapCredentials {
            name: "target-name".into(),
            secret: b"target-secret".to_vec(),
        }),
    });
    Portal::new(PortalConfig {
        targets: vec![t],
        nop_in_interval: None,
        ..Default::default()
    })
    .unwrap()
}

/// Runs the security stage; returns the final security-stage response.
fn chap_exchange(
    p: &mut Portal,
    san: &mut MemSan,
    ti: &mut TestInit,
    secret: &[u8],
    mutual: Option<&[u8]>,
) -> Pdu {
    let sec = Stage::Security;
    let op = Stage::Operational;
    let r = ti.login_keys(
        p,
        san,
        &[
            ("InitiatorName", "iqn.2024-01.test:init"),
            ("TargetName", TARGET),
            ("SessionType", "Normal"),
            ("AuthMethod", "CHAP,None"),
        ],
        sec,
        op,
        true,
    );
    assert_eq!(status_of(&r), LoginStatus::SUCCESS);
    assert_eq!(
        r.view().flags() & 0x80,
        0,
        "no transit before authentication"
    );
    let k = keys_of(&r);
    assert_eq!(key(&k, "AuthMethod"), Some("CHAP"));
    assert_eq!(key(&k, "TargetPortalGroupTag"), Some("1"));
    let r = ti.login_keys(p, san, &[("CHAP_A", "7,5")], sec, op, false);
    let k = keys_of(&r);
    assert_eq!(key(&k, "CHAP_A"), Some("5"));
    let id: u8 = key(&k, "CHAP_I").unwrap().parse().unwrap();
    let c = text::decode_binary(key(&k, "CHAP_C").unwrap()).unwrap();
    assert!(c.len() >= 16, "challenge of at least 16 bytes");
    let resp = text::encode_hex(&chap::response(id, secret, &c));
    let my_challenge = text::encode_hex(&[9u8; 16]);
    let mut keys = vec![("CHAP_N", "alice"), ("CHAP_R", resp.as_str())];
    if mutual.is_some() {
        keys.push(("CHAP_I", "77"));
        keys.push(("CHAP_C", my_challenge.as_str()));
    }
    ti.login_keys(p, san, &keys, sec, op, true)
}

#[test]
fn chap_one_way_and_mutual() {
    let mut p = chap_portal(false);
    let mut san = MemSan::new(&[8]);
    let mut ti = TestInit::connect(&mut p);
    let r = chap_exchange(&mut p, &mut san, &mut ti, b"alice-secret", None);
    assert_eq!(status_of(&r), LoginStatus::SUCCESS);
    assert_eq!(r.view().flags(), 0x80 | 1, "T=1 CSG=0 NSG=1");
    let r = ti.login_keys(
        &mut p,
        &mut san,
        &[("HeaderDigest", "None")],
        Stage::Operational,
        Stage::FullFeature,
        true,
    );
    assert_eq!(status_of(&r), LoginStatus::SUCCESS);
    assert_eq!(p.session_count(), 1);

    // Wrong secret.
    let mut ti = TestInit::connect(&mut p);
    let r = chap_exchange(&mut p, &mut san, &mut ti, b"wrong-secret", None);
    assert_eq!(status_of(&r), LoginStatus::AUTHENTICATION_FAILURE);
    assert!(p.should_close(ti.conn));

    // Mutual CHAP asked of a target without mutual credentials.
    let mut ti = TestInit::connect(&mut p);
    let r = chap_exchange(&mut p, &mut san, &mut ti, b"alice-secret", Some(b"x"));
    assert_eq!(status_of(&r), LoginStatus::AUTHENTICATION_FAILURE);

    // Mutual CHAP with target credentials: the target proves itself.
    let mut p = chap_portal(true);
    let mut ti = TestInit::connect(&mut p);
    let r = chap_exchange(&mut p, &mut san, &mut ti, b"alice-secret", Some(b"x"));
    assert_eq!(status_of(&r), LoginStatus::SUCCESS);
    let k = keys_of(&r);
    assert_eq!(key(&k, "CHAP_N"), Some("target-name"));
    let want = text::encode_hex(&chap::response(77, b"target-secret", &[9u8; 16]));
    assert_eq!(key(&k, "CHAP_R"), Some(want.as_str()));
}

#[test]
fn chap_required_cannot_be_skipped() {
    let mut p = chap_portal(false);
    let mut san = MemSan::new(&[8]);
    let mut ti = TestInit::connect(&mut p);
    let r = ti.login(&mut p, &mut san, TARGET, &[]);
    assert_eq!(status_of(&r), LoginStatus::AUTHENTICATION_FAILURE);
    let mut ti = TestInit::connect(&mut p);
    let r = ti.login_keys(
        &mut p,
        &mut san,
        &[
            ("InitiatorName", "iqn.x"),
            ("TargetName", TARGET),
            ("AuthMethod", "None"),
        ],
        Stage::Security,
        Stage::Operational,
        true,
    );
    assert_eq!(status_of(&r), LoginStatus::AUTHENTICATION_FAILURE);
    assert!(san.seen.is_empty());
}

#[test]
fn login_pending_until_the_san_decides() {
    let mut p = portal_with(&[TARGET]);
    let mut san = MemSan::new(&[8]);
    san.login_pending = true;
    let mut ti = TestInit::connect(&mut p);
    let mut data = Vec::new();
    text::push(&mut data, "InitiatorName", "iqn.x");
    text::push(&mut data, "TargetName", TARGET);
    let mut hdr = [0u8; BHS_LEN];
    wire::LoginRequestRepr {
        transit: true,
        cont: false,
        csg: Stage::Operational,
        nsg: Stage::FullFeature,
        version_max: 0,
        version_min: 0,
        isid: [0x80, 0, 0, 0, 0, 3],
        tsih: 0,
        itt: 1,
        cid: 0,
        cmdsn: 1,
        exp_statsn: 0,
    }
    .emit(&mut hdr);
    ti.send(&mut p, &mut san, &hdr, &data);
    assert!(
        ti.recv(&mut p).is_empty(),
        "no response before the SAN decides"
    );
    let nexus = match san.seen[0] {
        Seen::Login(_, n) => n,
        _ => unreachable!(),
    };
    let login = p.login_id(ti.conn);
    assert_eq!(p.login_done(login, Ok(nexus)), Ok(()));
    let r = ti.recv(&mut p);
    assert_eq!(status_of(&r[0]), LoginStatus::SUCCESS);
    assert_eq!(p.nexus(ti.conn), Some(nexus));
    assert_eq!(p.login_done(login, Ok(nexus)), Err(EventError::Stale));
}

#[test]
fn discovery_session_send_targets() {
    let cfg = PortalConfig {
        targets: vec![
            TargetConfig::open(TARGET),
            TargetConfig::open("iqn.2024-01.org.rscst:two"),
            TargetConfig {
                allowed_initiators: Some(vec!["iqn.someone-else".into()]),
                ..TargetConfig::open("iqn.2024-01.org.rscst:hidden")
            },
        ],
        nop_in_interval: None,
        ..Default::default()
    };
    let mut p = Portal::new(cfg).unwrap();
    let mut san = MemSan::new(&[8]);
    let mut ti = TestInit::connect(&mut p);
    let r = ti.login_keys(
        &mut p,
        &mut san,
        &[
            ("InitiatorName", "iqn.2024-01.test:init"),
            ("SessionType", "Discovery"),
            ("MaxRecvDataSegmentLength", "512"),
            ("ImmediateData", "Yes"),
        ],
        Stage::Operational,
        Stage::FullFeature,
        true,
    );
    assert_eq!(status_of(&r), LoginStatus::SUCCESS);
    let k = keys_of(&r);
    assert_eq!(key(&k, "ImmediateData"), Some("Irrelevant"));
    assert_eq!(key(&k, "TargetPortalGroupTag"), None);
    assert!(
        san.seen.is_empty(),
        "discovery sessions do not reach the SAN"
    );

    let mut hdr = [0u8; BHS_LEN];
    wire::TextRequestRepr {
        immediate: true,
        final_: true,
        cont: false,
        lun: Lun::ZERO,
        itt: 5,
        ttt: RESERVED_TAG,
        cmdsn: 100,
        exp_statsn: ti.exp_statsn,
    }
    .emit(&mut hdr);
    ti.send(&mut p, &mut san, &hdr, b"SendTargets=All\0");
    let r = ti.recv(&mut p);
    assert_eq!(r.len(), 1);
    let k = pairs_of(&r[0]);
    assert_eq!(r[0].view().flags() & 0x80, 0x80, "final");
    let names: Vec<&str> = k
        .iter()
        .filter(|(k, _)| k == "TargetName")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(names, vec![TARGET, "iqn.2024-01.org.rscst:two"]);
    assert!(
        k.iter()
            .any(|(k, v)| k == "TargetAddress" && v == "127.0.0.1:3260,1")
    );

    // A SCSI command in a discovery session is rejected.
    let (hdr, _) = ti.cmd(&[0; 6], 0, false, false, true);
    ti.send(&mut p, &mut san, &hdr, &[]);
    let r = ti.recv(&mut p);
    assert_eq!(r[0].opcode(), Opcode::Reject);
    assert_eq!(r[0].view().byte(2), 0x04);
    assert_eq!(&r[0].data[..], &hdr[..]);
}

#[test]
fn send_targets_continues_over_several_pdus() {
    let names: Vec<String> = (0..20)
        .map(|i| format!("iqn.2024-01.org.rscst:a-long-target-name-{i:03}"))
        .collect();
    let cfg = PortalConfig {
        targets: names.iter().map(TargetConfig::open).collect(),
        nop_in_interval: None,
        ..Default::default()
    };
    let mut p = Portal::new(cfg).unwrap();
    let mut san = MemSan::new(&[8]);
    let mut ti = TestInit::connect(&mut p);
    ti.login_keys(
        &mut p,
        &mut san,
        &[
            ("InitiatorName", "iqn.x"),
            ("SessionType", "Discovery"),
            ("MaxRecvDataSegmentLength", "512"),
        ],
        Stage::Operational,
        Stage::FullFeature,
        true,
    );
    let mut req = wire::TextRequestRepr {
        immediate: true,
        final_: true,
        cont: false,
        lun: Lun::ZERO,
        itt: 5,
        ttt: RESERVED_TAG,
        cmdsn: 100,
        exp_statsn: 0,
    };
    let mut hdr = [0u8; BHS_LEN];
    req.emit(&mut hdr);
    ti.send(&mut p, &mut san, &hdr, b"SendTargets=All\0");
    let mut all = Vec::new();
    let mut pieces = 0;
    loop {
        let r = ti.recv(&mut p);
        assert_eq!(r.len(), 1);
        assert!(r[0].data.len() <= 512, "pieces fit the initiator's MRDSL");
        all.extend_from_slice(&r[0].data);
        pieces += 1;
        let v = r[0].view();
        if v.flags() & 0x80 != 0 {
            assert_eq!(v.u32_at(20), RESERVED_TAG);
            break;
        }
        assert_eq!(v.flags() & 0x40, 0x40, "C bit while more follows");
        req.ttt = v.u32_at(20);
        req.emit(&mut hdr);
        ti.send(&mut p, &mut san, &hdr, &[]);
    }
    assert!(pieces > 2);
    let k = text::parse(&all).unwrap_or_default();
    let got = {
        // Duplicate keys are legal in SendTargets answers; count them by hand.
        let s = String::from_utf8(all.clone()).unwrap();
        s.split('\0')
            .filter(|kv| kv.starts_with("TargetName="))
            .count()
    };
    let _ = k;
    assert_eq!(got, 20);
}

// ---------------------------------------------------------------- ordering

fn tur(ti: &mut TestInit) -> ([u8; BHS_LEN], u32) {
    ti.cmd(&[0u8; 6], 0, false, false, true)
}

fn responses(pdus: &[Pdu]) -> Vec<ScsiResponseRepr> {
    pdus.iter()
        .filter(|p| p.opcode() == Opcode::ScsiResponse)
        .map(|p| ScsiResponseRepr::parse(&p.view()).unwrap())
        .collect()
}

#[test]
fn cmdsn_outside_the_window_is_ignored() {
    let (mut p, mut san, mut ti) = logged_in(&[]);
    let exp = ti.cmdsn;
    // CmdSN = MaxCmdSN + 1 and ExpCmdSN - 1 are silently dropped (RFC 7143 §4.2.2.1).
    let (mut hdr, _) = tur(&mut ti);
    hdr[24..28].copy_from_slice(&ti.max_cmdsn.wrapping_add(1).to_be_bytes());
    ti.send(&mut p, &mut san, &hdr, &[]);
    let (mut hdr, _) = tur(&mut ti);
    hdr[24..28].copy_from_slice(&exp.wrapping_sub(1).to_be_bytes());
    ti.send(&mut p, &mut san, &hdr, &[]);
    settle(&mut p, &mut san, ti.now);
    assert!(ti.recv(&mut p).is_empty());
    assert!(san.commands.is_empty());
    assert_eq!(p.stats().cmdsn_dropped, 2);
    // The expected CmdSN still works.
    ti.cmdsn = exp;
    let (hdr, itt) = tur(&mut ti);
    ti.send(&mut p, &mut san, &hdr, &[]);
    settle(&mut p, &mut san, ti.now);
    let r = responses(&ti.recv(&mut p));
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].itt, itt);
    assert_eq!(r[0].exp_cmdsn, exp.wrapping_add(1));
}

#[test]
fn commands_ahead_of_expcmdsn_wait_for_the_gap() {
    let (mut p, mut san, mut ti) = logged_in(&[]);
    let (first, itt1) = tur(&mut ti);
    let (second, itt2) = tur(&mut ti);
    ti.send(&mut p, &mut san, &second, &[]);
    settle(&mut p, &mut san, ti.now);
    assert!(san.commands.is_empty(), "held until CmdSN order allows");
    ti.send(&mut p, &mut san, &first, &[]);
    settle(&mut p, &mut san, ti.now);
    let r = responses(&ti.recv(&mut p));
    assert_eq!(
        r.iter().map(|r| r.itt).collect::<Vec<_>>(),
        vec![itt1, itt2]
    );
    assert_eq!(san.commands.len(), 2);
}

#[test]
fn maxcmdsn_tracks_free_slots_and_never_shrinks() {
    let cfg = PortalConfig {
        targets: vec![TargetConfig::open(TARGET)],
        queue_depth: 4,
        nop_in_interval: None,
        ..Default::default()
    };
    let mut p = Portal::new(cfg).unwrap();
    let mut san = MemSan::new(&[8]);
    san.auto = false;
    let mut ti = TestInit::connect(&mut p);
    let r = ti.login(&mut p, &mut san, TARGET, &[]);
    assert_eq!(r.view().u32_at(32), 103, "MaxCmdSN = CmdSN + depth - 1");
    for _ in 0..4 {
        let (h, _) = tur(&mut ti);
        ti.send(&mut p, &mut san, &h, &[]);
    }
    let (h, _) = tur(&mut ti);
    ti.send(&mut p, &mut san, &h, &[]);
    assert_eq!(
        san.commands.len(),
        4,
        "the fifth command is beyond MaxCmdSN"
    );
    // Complete one: the window opens by one.
    let t0 = san.commands[0].0;
    p.status(
        t0,
        &ScsiStatus {
            status: 0,
            sense: &[],
            residual: Residual::None,
        },
    )
    .unwrap();
    let r = responses(&ti.recv(&mut p));
    assert_eq!(r[0].exp_cmdsn, 104);
    assert_eq!(r[0].max_cmdsn, 104);
    // An immediate NOP-Out ping shows the window without consuming it.
    let mut hdr = [0u8; BHS_LEN];
    NopOutRepr {
        immediate: true,
        lun: Lun::ZERO,
        itt: 77,
        ttt: RESERVED_TAG,
        cmdsn: 104,
        exp_statsn: 0,
    }
    .emit(&mut hdr);
    ti.send(&mut p, &mut san, &hdr, b"ping");
    let r = ti.recv(&mut p);
    let nop = NopInRepr::parse(&r[0].view()).unwrap();
    assert_eq!(
        (nop.itt, nop.ttt, nop.exp_cmdsn, nop.max_cmdsn),
        (77, RESERVED_TAG, 104, 104)
    );
    assert_eq!(r[0].data, b"ping");
}

// ---------------------------------------------------------------- data in

#[test]
fn data_in_splits_by_mrdsl_and_collapses_good_status() {
    let (mut p, mut san, mut ti) = logged_in(&[("MaxBurstLength", "16384")]);
    let next_statsn = ti.exp_statsn;
    // 64 blocks = 32 KiB; the initiator receives 8 KiB segments; bursts of 16 KiB.
    let (hdr, itt) = ti.cmd(&read10(0, 64), 32768, true, false, true);
    ti.send(&mut p, &mut san, &hdr, &[]);
    settle(&mut p, &mut san, ti.now);
    let pdus = ti.recv(&mut p);
    assert_eq!(pdus.len(), 4, "4 Data-In, status on the last");
    for (i, pdu) in pdus.iter().enumerate() {
        let d = DataInRepr::parse(&pdu.view()).unwrap();
        assert_eq!(d.itt, itt);
        assert_eq!(d.datasn, i as u32);
        assert_eq!(d.offset, i as u32 * 8192);
        assert_eq!(pdu.data.len(), 8192);
        assert_eq!(d.final_, i % 2 == 1, "F closes each 16 KiB sequence");
        assert_eq!(d.status.is_some(), i == 3);
    }
    let last = DataInRepr::parse(&pdus[3].view()).unwrap();
    assert_eq!(last.status, Some((0, Residual::None)));
    assert_eq!(
        last.statsn, next_statsn,
        "the collapsed status takes the next StatSN"
    );
    assert_eq!(p.task_count(ti.conn), 0);
}

/// The bytes the portal sends for one 40 KiB READ whose data comes as `parts` (one
/// `data_in` call if `None`), digests on, 8 KiB segments, 16 KiB bursts.
fn read_pdus(data: &[u8], parts: Option<&[usize]>) -> Vec<u8> {
    let (mut p, mut san, mut ti) = logged_in(&[
        ("HeaderDigest", "CRC32C"),
        ("DataDigest", "CRC32C"),
        ("MaxBurstLength", "16384"),
    ]);
    assert!(ti.hd && ti.dd, "digests negotiated");
    san.auto = false;
    let (hdr, _) = ti.cmd(&read10(0, 80), 40960, true, false, true);
    ti.send(&mut p, &mut san, &hdr, &[]);
    let task = san.commands[0].0;
    match parts {
        None => p.data_in(task, 0, data).unwrap(),
        Some(lens) => {
            let mut rest = data;
            let mut v: Vec<&[u8]> = Vec::new();
            for &n in lens {
                let (a, b) = rest.split_at(n.min(rest.len()));
                v.push(a);
                rest = b;
            }
            v.push(rest);
            p.data_in_parts(task, 0, &v).unwrap();
        }
    }
    p.status(
        task,
        &ScsiStatus {
            status: 0,
            sense: &[],
            residual: Residual::None,
        },
    )
    .unwrap();
    let bytes = p.transmit(ti.conn).to_vec();
    assert_eq!(
        ti.recv(&mut p).len(),
        5,
        "5 Data-In (8 KiB segments), digests checked"
    );
    bytes
}

#[test]
fn data_in_parts_make_the_pdus_of_the_data_in_one_piece() {
    let data: Vec<u8> = (0..40960u32).map(|i| (i * 7 + i / 251) as u8).collect();
    let whole = read_pdus(&data, None);
    for lens in [
        &[2048usize; 19][..],
        &[1, 4095, 8192, 0, 100, 12000],
        &[8192, 8192, 8192, 8192],
        &[40959],
        &[0, 0, 16384, 1, 1, 1],
    ] {
        assert_eq!(read_pdus(&data, Some(lens)), whole, "parts {lens:?}");
    }
    // More data than the initiator asked for: clipped the same way.
    let mut long = data.clone();
    long.extend_from_slice(&[9; 3000]);
    let clipped = read_pdus(&long, None);
    assert_eq!(clipped, whole);
    assert_eq!(read_pdus(&long, Some(&[2048; 20])), whole);
}

#[test]
fn data_in_without_collapse_when_already_sent_or_sense() {
    let (mut p, mut san, mut ti) = logged_in(&[]);
    san.auto = false;
    let (hdr, itt) = ti.cmd(&read10(0, 1), 1000, true, false, true);
    ti.send(&mut p, &mut san, &hdr, &[]);
    let task = san.commands[0].0;
    p.data_in(task, 0, &[7u8; 512]).unwrap();
    let pdus = ti.recv(&mut p); // the Data-In leaves before the status arrives
    assert_eq!(pdus.len(), 1);
    let d = DataInRepr::parse(&pdus[0].view()).unwrap();
    assert!(d.status.is_none());
    p.status(
        task,
        &ScsiStatus {
            status: 0,
            sense: &[],
            residual: Residual::Underflow(488),
        },
    )
    .unwrap();
    let r = ti.recv(&mut p);
    let rsp = ScsiResponseRepr::parse(&r[0].view()).unwrap();
    assert_eq!(
        (rsp.itt, rsp.status, rsp.residual, rsp.exp_datasn),
        (itt, 0, Residual::Underflow(488), 1)
    );
    // Late events for the finished task are refused.
    assert_eq!(p.data_in(task, 512, &[0]), Err(EventError::Stale));

    // CHECK CONDITION carries sense with its 2-byte length (RFC 7143 §11.4.7).
    let (hdr, _) = ti.cmd(&read10(0, 1), 512, true, false, true);
    ti.send(&mut p, &mut san, &hdr, &[]);
    let task = san.commands[1].0;
    p.data_in(task, 0, &[1u8; 512]).unwrap();
    let sense = [
        0x70u8, 0, 3, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x11, 0, 0, 0, 0, 0,
    ];
    p.status(
        task,
        &ScsiStatus {
            status: 2,
            sense: &sense,
            residual: Residual::None,
        },
    )
    .unwrap();
    let r = ti.recv(&mut p);
    assert_eq!(r.len(), 2);
    assert!(
        DataInRepr::parse(&r[0].view()).unwrap().status.is_none(),
        "no S bit with sense"
    );
    let rsp = ScsiResponseRepr::parse(&r[1].view()).unwrap();
    assert_eq!(rsp.status, 2);
    assert_eq!(&r[1].data[..2], &[0, 18]);
    assert_eq!(&r[1].data[2..], &sense);
    // Data-In must be contiguous.
    let (hdr, _) = ti.cmd(&read10(0, 2), 1024, true, false, true);
    ti.send(&mut p, &mut san, &hdr, &[]);
    let task = san.commands[2].0;
    assert!(matches!(
        p.data_in(task, 512, &[0; 512]),
        Err(EventError::Invalid(_))
    ));
}

#[test]
fn statsn_stays_in_stream_order_with_interleaved_reads() {
    let (mut p, mut san, mut ti) = logged_in(&[]);
    san.auto = false;
    let (a, itt_a) = ti.cmd(&read10(0, 1), 512, true, false, true);
    ti.send(&mut p, &mut san, &a, &[]);
    let (b, itt_b) = ti.cmd(&read10(1, 1), 512, true, false, true);
    ti.send(&mut p, &mut san, &b, &[]);
    let (ta, tb) = (san.commands[0].0, san.commands[1].0);
    let good = ScsiStatus {
        status: 0,
        sense: &[],
        residual: Residual::None,
    };
    p.data_in(ta, 0, &[1; 512]).unwrap();
    p.data_in(tb, 0, &[2; 512]).unwrap();
    p.status(tb, &good).unwrap(); // rides on B's Data-In
    p.status(ta, &good).unwrap(); // must not ride on A's earlier Data-In
    let pdus = ti.recv(&mut p);
    let mut statsns = Vec::new();
    for pdu in &pdus {
        let v = pdu.view();
        match pdu.opcode() {
            Opcode::DataIn if v.flags() & 1 != 0 => statsns.push((v.itt(), v.u32_at(24))),
            Opcode::ScsiResponse => statsns.push((v.itt(), v.u32_at(24))),
            _ => {}
        }
    }
    assert_eq!(
        pdus.len(),
        3,
        "A's status comes as a separate SCSI Response"
    );
    assert_eq!(statsns[0].0, itt_b);
    assert_eq!(statsns[1].0, itt_a);
    assert_eq!(
        statsns[1].1,
        statsns[0].1.wrapping_add(1),
        "StatSN increases along the stream"
    );
}

#[test]
fn read_overflow_is_clipped_to_edtl() {
    let (mut p, mut san, mut ti) = logged_in(&[]);
    let (hdr, _) = ti.cmd(&read10(0, 2), 512, true, false, true);
    ti.send(&mut p, &mut san, &hdr, &[]);
    settle(&mut p, &mut san, ti.now);
    let pdus = ti.recv(&mut p);
    assert_eq!(pdus.len(), 1);
    assert_eq!(pdus[0].data.len(), 512);
    let d = DataInRepr::parse(&pdus[0].view()).unwrap();
    assert_eq!(d.status, Some((0, Residual::Overflow(512))));
}

// ---------------------------------------------------------------- data out

fn r2ts(pdus: &[Pdu]) -> Vec<R2tRepr> {
    pdus.iter()
        .filter(|p| p.opcode() == Opcode::R2t)
        .map(|p| R2tRepr::parse(&p.view()).unwrap())
        .collect()
}

/// Answers every R2T with Data-Out PDUs of `seg` bytes until the command completes.
fn answer_r2ts(
    p: &mut Portal,
    san: &mut MemSan,
    ti: &mut TestInit,
    itt: u32,
    mut pending: Vec<R2tRepr>,
    seg: u32,
) -> (Vec<R2tRepr>, ScsiResponseRepr) {
    let mut all = pending.clone();
    loop {
        if pending.is_empty() {
            settle(p, san, ti.now);
            let pdus = ti.recv(p);
            let more = r2ts(&pdus);
            if let Some(rsp) = responses(&pdus).pop() {
                assert!(more.is_empty());
                return (all, rsp);
            }
            assert!(!more.is_empty(), "neither R2T nor status");
            all.extend_from_slice(&more);
            pending = more;
        }
        let r = pending.remove(0);
        let mut off = 0;
        let mut sn = 0;
        while off < r.desired_len {
            let n = seg.min(r.desired_len - off);
            let hdr = ti.data_out(itt, r.ttt, sn, r.offset + off, off + n == r.desired_len);
            ti.send(p, san, &hdr, &vec![0xab; n as usize]);
            off += n;
            sn += 1;
        }
        settle(p, san, ti.now);
        let pdus = ti.recv(p);
        let more = r2ts(&pdus);
        all.extend_from_slice(&more);
        pending.extend(more);
        if let Some(rsp) = responses(&pdus).pop() {
            return (all, rsp);
        }
    }
}

#[test]
fn r2t_only_with_initial_r2t_and_no_immediate_data() {
    let (mut p, mut san, mut ti) = logged_in(&[
        ("InitialR2T", "Yes"),
        ("ImmediateData", "No"),
        ("MaxBurstLength", "16384"),
        ("MaxOutstandingR2T", "1"),
    ]);
    let (hdr, itt) = ti.cmd(&write10(8, 128), 65536, false, true, true);
    ti.send(&mut p, &mut san, &hdr, &[]);
    settle(&mut p, &mut san, ti.now);
    let first = r2ts(&ti.recv(&mut p));
    assert_eq!(first.len(), 1, "MaxOutstandingR2T=1");
    let (all, rsp) = answer_r2ts(&mut p, &mut san, &mut ti, itt, first, 8192);
    let got: Vec<(u32, u32, u32)> = all
        .iter()
        .map(|r| (r.r2tsn, r.offset, r.desired_len))
        .collect();
    assert_eq!(
        got,
        vec![
            (0, 0, 16384),
            (1, 16384, 16384),
            (2, 32768, 16384),
            (3, 49152, 16384)
        ]
    );
    let ttts: std::collections::HashSet<u32> = all.iter().map(|r| r.ttt).collect();
    assert_eq!(ttts.len(), 4, "distinct TTTs");
    assert!(all.iter().all(|r| r.ttt != RESERVED_TAG && r.itt == itt));
    assert_eq!((rsp.status, rsp.residual), (0, Residual::None));
    assert_eq!(rsp.exp_datasn, 4, "ExpDataSN counts the R2Ts");
    assert_eq!(
        &san.luns[0][8 * 512..8 * 512 + 65536],
        &vec![0xab; 65536][..]
    );
    let last: Vec<bool> = san.data_outs.iter().map(|d| d.3).collect();
    assert_eq!(
        last.iter().filter(|l| **l).count(),
        1,
        "one last flag for one request"
    );
    assert!(*last.last().unwrap());
}

#[test]
fn unsolicited_then_r2t() {
    // ImmediateData=Yes, InitialR2T=No, FirstBurstLength=16 KiB, segments of 8 KiB.
    let (mut p, mut san, mut ti) = logged_in(&[
        ("InitialR2T", "No"),
        ("ImmediateData", "Yes"),
        ("FirstBurstLength", "16384"),
        ("MaxBurstLength", "32768"),
        ("MaxOutstandingR2T", "4"),
    ]);
    let (hdr, itt) = ti.cmd(&write10(0, 80), 40960, false, true, false);
    ti.send(&mut p, &mut san, &hdr, &[1u8; 8192]);
    assert_eq!(
        san.commands[0].3, 8192,
        "the SAN learns of the immediate data"
    );
    let d = ti.data_out(itt, RESERVED_TAG, 0, 8192, true);
    ti.send(&mut p, &mut san, &d, &[2u8; 8192]);
    settle(&mut p, &mut san, ti.now);
    let first = r2ts(&ti.recv(&mut p));
    // 40 KiB - 16 KiB unsolicited = 24 KiB solicited in one burst.
    assert_eq!(
        first
            .iter()
            .map(|r| (r.offset, r.desired_len))
            .collect::<Vec<_>>(),
        vec![(16384, 24576)]
    );
    let (_, rsp) = answer_r2ts(&mut p, &mut san, &mut ti, itt, first, 8192);
    assert_eq!(rsp.status, 0);
    assert_eq!(&san.luns[0][..8192], &[1u8; 8192][..]);
    assert_eq!(&san.luns[0][8192..16384], &[2u8; 8192][..]);
    assert_eq!(&san.luns[0][16384..40960], &vec![0xab; 24576][..]);
}

#[test]
fn immediate_data_with_initial_r2t_yes() {
    let (mut p, mut san, mut ti) = logged_in(&[
        ("InitialR2T", "Yes"),
        ("ImmediateData", "Yes"),
        ("MaxBurstLength", "8192"),
        ("MaxOutstandingR2T", "2"),
    ]);
    let (hdr, itt) = ti.cmd(&write10(0, 40), 20480, false, true, true);
    ti.send(&mut p, &mut san, &hdr, &[3u8; 4096]);
    settle(&mut p, &mut san, ti.now);
    let first = r2ts(&ti.recv(&mut p));
    assert_eq!(
        first
            .iter()
            .map(|r| (r.offset, r.desired_len))
            .collect::<Vec<_>>(),
        vec![(4096, 8192), (12288, 8192)],
        "two outstanding R2Ts of MaxBurstLength after the immediate data"
    );
    let (_, rsp) = answer_r2ts(&mut p, &mut san, &mut ti, itt, first, 4096);
    assert_eq!(rsp.status, 0);
    assert_eq!(&san.luns[0][..4096], &[3u8; 4096][..]);
}

#[test]
fn unsolicited_beyond_first_burst_fails_the_task() {
    let (mut p, mut san, mut ti) = logged_in(&[("InitialR2T", "No"), ("FirstBurstLength", "8192")]);
    san.auto = false;
    let (hdr, itt) = ti.cmd(&write10(0, 32), 16384, false, true, false);
    ti.send(&mut p, &mut san, &hdr, &[0u8; 4096]);
    let d = ti.data_out(itt, RESERVED_TAG, 0, 4096, false);
    ti.send(&mut p, &mut san, &d, &[0u8; 4096]);
    let d = ti.data_out(itt, RESERVED_TAG, 1, 8192, true);
    ti.send(&mut p, &mut san, &d, &[0u8; 4096]);
    settle(&mut p, &mut san, ti.now);
    let r = responses(&ti.recv(&mut p));
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].status, 2);
    assert!(
        san.seen.iter().any(|s| matches!(s, Seen::Abort(..))),
        "the SAN drops the task"
    );
    assert!(!p.should_close(ti.conn), "the connection survives");
}

#[test]
fn bad_datasn_and_offset_end_the_task() {
    for case in 0..3 {
        let (mut p, mut san, mut ti) = logged_in(&[("InitialR2T", "Yes"), ("ImmediateData", "No")]);
        let (hdr, itt) = ti.cmd(&write10(0, 2), 1024, false, true, true);
        ti.send(&mut p, &mut san, &hdr, &[]);
        settle(&mut p, &mut san, ti.now);
        let r = r2ts(&ti.recv(&mut p));
        let (sn0, sn1, off1) = match case {
            0 => (0, 0, 512), // DataSN repeated
            1 => (1, 0, 512), // DataSN reversed
            _ => (0, 1, 0),   // offset repeated
        };
        let d = ti.data_out(itt, r[0].ttt, sn0, 0, false);
        ti.send(&mut p, &mut san, &d, &[0u8; 512]);
        let d = ti.data_out(itt, r[0].ttt, sn1, off1, true);
        ti.send(&mut p, &mut san, &d, &[0u8; 512]);
        settle(&mut p, &mut san, ti.now);
        let rs = responses(&ti.recv(&mut p));
        assert_eq!(rs.len(), 1, "case {case}");
        assert_eq!(rs[0].status, 2, "case {case}");
        assert_eq!(p.task_count(ti.conn), 0);
        // The session goes on.
        let (hdr, itt) = tur(&mut ti);
        ti.send(&mut p, &mut san, &hdr, &[]);
        settle(&mut p, &mut san, ti.now);
        assert_eq!(responses(&ti.recv(&mut p))[0].itt, itt);
    }
}

#[test]
fn write_residuals_follow_the_san() {
    let (mut p, mut san, mut ti) = logged_in(&[("InitialR2T", "No")]);
    // EDTL 10000 for a 1-block write: 10000 bytes immediate, the SAN takes 512.
    let (hdr, _) = ti.cmd(&write10(0, 1), 10000, false, true, false);
    ti.send(&mut p, &mut san, &hdr, &vec![5u8; 8192]);
    settle(&mut p, &mut san, ti.now);
    let pdus = ti.recv(&mut p);
    assert!(r2ts(&pdus).is_empty());
    let rsp = &responses(&pdus);
    assert!(
        rsp.is_empty(),
        "status waits for the rest of the unsolicited data"
    );
    let d = ti.data_out(ti.itt - 1, RESERVED_TAG, 0, 8192, true);
    ti.send(&mut p, &mut san, &d, &vec![5u8; 1808]);
    settle(&mut p, &mut san, ti.now);
    let rsp = responses(&ti.recv(&mut p));
    assert_eq!(rsp[0].residual, Residual::Underflow(10000 - 512));
    assert_eq!(
        san.data_outs.last().map(|d| (d.1, d.2, d.3)),
        Some((0, 512, true))
    );
    // EDTL 0 for a 1-block write: no data at all, overflow.
    let (hdr, _) = ti.cmd(&write10(0, 1), 0, false, false, true);
    ti.send(&mut p, &mut san, &hdr, &[]);
    settle(&mut p, &mut san, ti.now);
    let rsp = responses(&ti.recv(&mut p));
    assert_eq!(rsp[0].residual, Residual::Overflow(512));
}

#[test]
fn ready_to_transfer_past_edtl_is_cut_short() {
    let (mut p, mut san, mut ti) = logged_in(&[("InitialR2T", "Yes"), ("ImmediateData", "No")]);
    san.auto = false;
    let (hdr, itt) = ti.cmd(&write10(0, 4), 1024, false, true, true);
    ti.send(&mut p, &mut san, &hdr, &[]);
    let task = san.commands[0].0;
    p.ready_to_transfer(task, 0, 2048).unwrap();
    settle(&mut p, &mut san, ti.now);
    let r = r2ts(&ti.recv(&mut p));
    assert_eq!((r[0].offset, r[0].desired_len), (0, 1024));
    let d = ti.data_out(itt, r[0].ttt, 0, 0, true);
    ti.send(&mut p, &mut san, &d, &[0u8; 1024]);
    assert_eq!(san.data_outs, vec![(task, 0, 1024, true)]);
    // A request entirely past the EDTL gets an empty last delivery.
    p.ready_to_transfer(task, 1024, 1024).unwrap();
    settle(&mut p, &mut san, ti.now);
    assert_eq!(san.data_outs.last(), Some(&(task, 1024, 0, true)));
    assert!(matches!(
        p.ready_to_transfer(task, 0, 1),
        Err(EventError::Invalid(_))
    ));
}

#[test]
fn status_waits_for_outstanding_r2t_data() {
    let (mut p, mut san, mut ti) = logged_in(&[("InitialR2T", "Yes"), ("ImmediateData", "No")]);
    san.auto = false;
    let (hdr, itt) = ti.cmd(&write10(0, 2), 1024, false, true, true);
    ti.send(&mut p, &mut san, &hdr, &[]);
    let task = san.commands[0].0;
    p.ready_to_transfer(task, 0, 1024).unwrap();
    settle(&mut p, &mut san, ti.now);
    let r = r2ts(&ti.recv(&mut p));
    // The SAN gives up early (e.g. a CHECK CONDITION) while the R2T is out.
    p.status(
        task,
        &ScsiStatus {
            status: 2,
            sense: &[0x70, 0, 5],
            residual: Residual::None,
        },
    )
    .unwrap();
    assert!(ti.recv(&mut p).is_empty(), "held until the R2T is answered");
    let d = ti.data_out(itt, r[0].ttt, 0, 0, true);
    ti.send(&mut p, &mut san, &d, &[0u8; 1024]);
    let rs = responses(&ti.recv(&mut p));
    assert_eq!(rs[0].status, 2);
    assert!(
        san.data_outs.is_empty(),
        "data after the status is not delivered"
    );
}

// ---------------------------------------------------------------- TMF, NOP, logout

fn tmf(ti: &mut TestInit, function: TmfFunction, ref_itt: u32) -> ([u8; BHS_LEN], u32) {
    let itt = ti.next_itt();
    let mut hdr = [0u8; BHS_LEN];
    TmfRequestRepr {
        immediate: true,
        function,
        lun: Lun::ZERO,
        itt,
        ref_itt,
        cmdsn: ti.cmdsn,
        exp_statsn: ti.exp_statsn,
        ref_cmdsn: 0,
        exp_datasn: 0,
    }
    .emit(&mut hdr);
    (hdr, itt)
}

#[test]
fn abort_task_is_safe() {
    let (mut p, mut san, mut ti) = logged_in(&[]);
    san.auto = false;
    let (hdr, itt) = tur(&mut ti);
    ti.send(&mut p, &mut san, &hdr, &[]);
    let task = san.commands[0].0;
    // Unknown ITT.
    let (t, titt) = tmf(&mut ti, TmfFunction::AbortTask, 0xdead);
    ti.send(&mut p, &mut san, &t, &[]);
    let r = ti.recv(&mut p);
    assert_eq!(
        (r[0].view().itt(), tmf_code(&r[0])),
        (titt, TmfResponseCode::TaskDoesNotExist)
    );
    // The real task: forwarded to the SAN, answered when it says so.
    let (t, titt) = tmf(&mut ti, TmfFunction::AbortTask, itt);
    ti.send(&mut p, &mut san, &t, &[]);
    assert!(matches!(
        san.seen.last(),
        Some(Seen::Tmf(_, TmfFunction::AbortTask))
    ));
    assert!(ti.recv(&mut p).is_empty());
    settle(&mut p, &mut san, ti.now);
    let r = ti.recv(&mut p);
    assert_eq!(r.len(), 1);
    assert_eq!(
        (r[0].view().itt(), tmf_code(&r[0])),
        (titt, TmfResponseCode::Complete)
    );
    // No response ever follows for the aborted task.
    assert_eq!(
        p.status(
            task,
            &ScsiStatus {
                status: 0,
                sense: &[],
                residual: Residual::None
            }
        ),
        Err(EventError::Stale)
    );
    assert!(ti.recv(&mut p).is_empty());
    // TASK REASSIGN needs ERL 2.
    let (t, _) = tmf(&mut ti, TmfFunction::TaskReassign, itt);
    ti.send(&mut p, &mut san, &t, &[]);
    assert_eq!(
        tmf_code(&ti.recv(&mut p)[0]),
        TmfResponseCode::ReassignNotSupported
    );
}

#[test]
fn lun_reset_clears_the_lun() {
    let (mut p, mut san, mut ti) = logged_in(&[]);
    san.auto = false;
    for _ in 0..3 {
        let (hdr, _) = tur(&mut ti);
        ti.send(&mut p, &mut san, &hdr, &[]);
    }
    assert_eq!(p.task_count(ti.conn), 3);
    let (t, _) = tmf(&mut ti, TmfFunction::LogicalUnitReset, RESERVED_TAG);
    ti.send(&mut p, &mut san, &t, &[]);
    settle(&mut p, &mut san, ti.now);
    let r = ti.recv(&mut p);
    assert_eq!(r.len(), 1);
    assert_eq!(tmf_code(&r[0]), TmfResponseCode::Complete);
    assert_eq!(p.task_count(ti.conn), 0);
}

#[test]
fn target_cold_reset_drops_connections_after_the_response() {
    let (mut p, mut san, mut ti) = logged_in(&[]);
    let (t, _) = tmf(&mut ti, TmfFunction::TargetColdReset, RESERVED_TAG);
    ti.send(&mut p, &mut san, &t, &[]);
    settle(&mut p, &mut san, ti.now);
    let r = ti.recv(&mut p);
    assert_eq!(tmf_code(&r[0]), TmfResponseCode::Complete);
    assert!(p.should_close(ti.conn));
    assert!(
        san.seen
            .iter()
            .any(|s| matches!(s, Seen::Logout(_, NexusLoss::TargetReset)))
    );
}

#[test]
fn target_nop_in_ping_and_timeout() {
    let cfg = PortalConfig {
        targets: vec![TargetConfig::open(TARGET)],
        nop_in_interval: Some(Duration::from_secs(5)),
        nop_in_timeout: Duration::from_secs(2),
        ..Default::default()
    };
    let mut p = Portal::new(cfg).unwrap();
    let mut san = MemSan::new(&[8]);
    let mut ti = TestInit::connect(&mut p);
    ti.login(&mut p, &mut san, TARGET, &[]);
    let statsn_before = ti.exp_statsn;
    assert_eq!(p.poll_at(), Some(Duration::from_secs(5)));
    p.poll(Duration::from_secs(5), &mut san);
    let r = ti.recv(&mut p);
    let nop = NopInRepr::parse(&r[0].view()).unwrap();
    assert_eq!(nop.itt, RESERVED_TAG);
    assert_ne!(nop.ttt, RESERVED_TAG);
    assert_eq!(nop.statsn, statsn_before, "a ping does not advance StatSN");
    // The answer clears the ping.
    let mut hdr = [0u8; BHS_LEN];
    NopOutRepr {
        immediate: true,
        lun: Lun::ZERO,
        itt: RESERVED_TAG,
        ttt: nop.ttt,
        cmdsn: ti.cmdsn,
        exp_statsn: ti.exp_statsn,
    }
    .emit(&mut hdr);
    ti.now = Duration::from_secs(6);
    ti.send(&mut p, &mut san, &hdr, &[]);
    assert!(ti.recv(&mut p).is_empty(), "no reply to a ping answer");
    p.poll(Duration::from_secs(9), &mut san);
    assert!(!p.should_close(ti.conn));
    // Next ping unanswered: the connection is dropped and the nexus lost.
    p.poll(Duration::from_secs(11), &mut san);
    assert_eq!(ti.recv(&mut p).len(), 1);
    p.poll(Duration::from_secs(14), &mut san);
    assert!(p.should_close(ti.conn));
    assert!(
        san.seen
            .iter()
            .any(|s| matches!(s, Seen::Logout(_, NexusLoss::ConnectionLost)))
    );
}

#[test]
fn logout_aborts_tasks_then_ends_the_nexus() {
    let (mut p, mut san, mut ti) = logged_in(&[]);
    san.auto = false;
    let (hdr, _) = tur(&mut ti);
    ti.send(&mut p, &mut san, &hdr, &[]);
    let mut l = [0u8; BHS_LEN];
    wire::LogoutRequestRepr {
        immediate: true,
        reason: wire::LogoutReason::CloseSession,
        itt: 99,
        cid: 1,
        cmdsn: ti.cmdsn,
        exp_statsn: ti.exp_statsn,
    }
    .emit(&mut l);
    ti.send(&mut p, &mut san, &l, &[]);
    let r = ti.recv(&mut p);
    let lr = wire::LogoutResponseRepr::parse(&r[0].view()).unwrap();
    assert_eq!((lr.itt, lr.response, lr.time2wait), (99, 0, 2));
    assert!(p.should_close(ti.conn));
    let tail: Vec<&Seen> = san.seen.iter().rev().take(2).collect();
    assert!(matches!(tail[0], Seen::Logout(_, NexusLoss::Logout)));
    assert!(matches!(tail[1], Seen::Abort(..)));
    p.close(ti.conn, &mut san);
    assert_eq!(p.connection_count(), 0);
}

#[test]
fn connection_loss_mid_io_aborts_then_reports_nexus_loss() {
    let (mut p, mut san, mut ti) = logged_in(&[("InitialR2T", "Yes")]);
    san.auto = false;
    let (hdr, _) = ti.cmd(&write10(0, 8), 4096, false, true, true);
    ti.send(&mut p, &mut san, &hdr, &[]);
    let (hdr, _) = tur(&mut ti);
    ti.send(&mut p, &mut san, &hdr, &[]);
    p.close(ti.conn, &mut san);
    let n = san.seen.len();
    assert!(matches!(
        san.seen[n - 1],
        Seen::Logout(_, NexusLoss::ConnectionLost)
    ));
    assert!(matches!(san.seen[n - 2], Seen::Abort(..)));
    assert!(matches!(san.seen[n - 3], Seen::Abort(..)));
    let t = san.commands[0].0;
    assert_eq!(p.ready_to_transfer(t, 0, 4096), Err(EventError::Stale));
}

#[test]
fn session_reinstatement_replaces_the_old_session() {
    let (mut p, mut san, mut ti) = logged_in(&[]);
    san.auto = false;
    let (hdr, _) = tur(&mut ti);
    ti.send(&mut p, &mut san, &hdr, &[]);
    let old_nexus = p.nexus(ti.conn).unwrap();
    let mut ti2 = TestInit::connect(&mut p);
    let r = ti2.login(&mut p, &mut san, TARGET, &[]);
    assert_eq!(status_of(&r), LoginStatus::SUCCESS);
    assert!(p.should_close(ti.conn), "the old connection goes");
    let pos_logout = san
        .seen
        .iter()
        .position(|s| *s == Seen::Logout(old_nexus, NexusLoss::Reinstated))
        .unwrap();
    let pos_login = san
        .seen
        .iter()
        .rposition(|s| matches!(s, Seen::Login(..)))
        .unwrap();
    assert!(
        pos_logout < pos_login,
        "old nexus ends before the new one starts"
    );
    assert!(matches!(san.seen[pos_logout - 1], Seen::Abort(n, _) if n == old_nexus));
    assert_eq!(p.stats().reinstatements, 1);
    assert_ne!(p.nexus(ti2.conn), Some(old_nexus));
}

#[test]
fn connection_reinstatement_keeps_the_nexus() {
    let (mut p, mut san, ti) = logged_in(&[]);
    let tsih = p.tsih(ti.conn).unwrap();
    let nexus = p.nexus(ti.conn).unwrap();
    let mut ti2 = TestInit::connect(&mut p);
    let mut data = Vec::new();
    text::push(&mut data, "InitiatorName", "iqn.2024-01.test:init");
    text::push(&mut data, "TargetName", TARGET);
    let mut hdr = [0u8; BHS_LEN];
    let mut req = wire::LoginRequestRepr {
        transit: true,
        cont: false,
        csg: Stage::Operational,
        nsg: Stage::FullFeature,
        version_max: 0,
        version_min: 0,
        isid: [0x80, 0, 0, 0x12, 0x34, 0x56],
        tsih,
        itt: 1,
        cid: 2,
        cmdsn: ti.cmdsn,
        exp_statsn: 0,
    };
    req.emit(&mut hdr);
    ti2.send(&mut p, &mut san, &hdr, &data);
    let r = ti2.recv(&mut p);
    assert_eq!(
        status_of(&r[0]),
        LoginStatus::TOO_MANY_CONNECTIONS,
        "a second CID"
    );
    let mut ti3 = TestInit::connect(&mut p);
    req.cid = 1;
    req.emit(&mut hdr);
    ti3.send(&mut p, &mut san, &hdr, &data);
    let r = ti3.recv(&mut p);
    assert_eq!(status_of(&r[0]), LoginStatus::SUCCESS);
    assert_eq!(r[0].view().u16_at(14), tsih);
    assert_eq!(p.nexus(ti3.conn), Some(nexus));
    assert!(p.should_close(ti.conn));
    // A TSIH nobody has.
    let mut ti4 = TestInit::connect(&mut p);
    req.tsih = tsih.wrapping_add(100);
    req.emit(&mut hdr);
    ti4.send(&mut p, &mut san, &hdr, &data);
    assert_eq!(
        status_of(&ti4.recv(&mut p)[0]),
        LoginStatus::SESSION_DOES_NOT_EXIST
    );
}

// ---------------------------------------------------------------- rejects and digests

#[test]
fn rejects_carry_the_offending_header() {
    let (mut p, mut san, mut ti) = logged_in(&[("ImmediateData", "No")]);
    let mut vendor = [0u8; BHS_LEN];
    vendor[0] = 0x1c;
    vendor[16..20].copy_from_slice(&5u32.to_be_bytes());
    ti.send(&mut p, &mut san, &vendor, &[]);
    let r = ti.recv(&mut p);
    assert_eq!(r[0].opcode(), Opcode::Reject);
    assert_eq!(r[0].view().byte(2), 0x05, "command not supported");
    assert_eq!(r[0].view().itt(), RESERVED_TAG);
    assert_eq!(&r[0].data[..], &vendor[..]);
    let mut snack = [0u8; BHS_LEN];
    snack[0] = 0x10;
    ti.send(&mut p, &mut san, &snack, &[]);
    assert_eq!(ti.recv(&mut p)[0].view().byte(2), 0x04, "SNACK at ERL 0");
    // Immediate data although ImmediateData=No.
    let (hdr, _) = ti.cmd(&write10(0, 1), 512, false, true, true);
    ti.send(&mut p, &mut san, &hdr, &[0u8; 512]);
    let r = ti.recv(&mut p);
    assert_eq!((r[0].opcode(), r[0].view().byte(2)), (Opcode::Reject, 0x04));
    // Duplicate ITT of a live task.
    san.auto = false;
    let (hdr, _) = tur(&mut ti);
    ti.send(&mut p, &mut san, &hdr, &[]);
    let mut dup = hdr;
    dup[24..28].copy_from_slice(&ti.cmdsn.to_be_bytes());
    ti.cmdsn += 1;
    ti.send(&mut p, &mut san, &dup, &[]);
    assert_eq!(ti.recv(&mut p)[0].view().byte(2), 0x07);
    assert!(!p.should_close(ti.conn));
}

#[test]
fn digests_are_used_and_enforced() {
    let (mut p, mut san, mut ti) =
        logged_in(&[("HeaderDigest", "CRC32C"), ("DataDigest", "CRC32C")]);
    assert!(ti.hd && ti.dd);
    let (hdr, itt) = ti.cmd(&read10(0, 1), 512, true, false, true);
    ti.send(&mut p, &mut san, &hdr, &[]);
    settle(&mut p, &mut san, ti.now);
    let r = ti.recv(&mut p); // parse_pdus checks both digests
    assert_eq!(r[0].view().itt(), itt);
    // A corrupted header digest: the connection is dropped (nothing can be trusted).
    let (hdr, _) = tur(&mut ti);
    let mut bytes = frame_pdu(&hdr, &[], &[], true, true);
    bytes[49] ^= 0xff;
    ti.send_raw(&mut p, &mut san, &bytes);
    assert!(p.should_close(ti.conn));
    assert!(
        san.seen
            .iter()
            .any(|s| matches!(s, Seen::Logout(_, NexusLoss::ProtocolError)))
    );

    // A corrupted data digest: Reject (data digest error), then the connection goes.
    let (mut p, mut san, mut ti) =
        logged_in(&[("HeaderDigest", "CRC32C"), ("DataDigest", "CRC32C")]);
    let (hdr, _) = ti.cmd(&write10(0, 1), 512, false, true, true);
    let mut bytes = frame_pdu(&hdr, &[], &[0u8; 512], true, true);
    let n = bytes.len();
    bytes[n - 1] ^= 1;
    ti.send_raw(&mut p, &mut san, &bytes);
    let r = ti.recv(&mut p);
    assert_eq!((r[0].opcode(), r[0].view().byte(2)), (Opcode::Reject, 0x02));
    assert!(p.should_close(ti.conn));
}

#[test]
fn oversized_data_segment_is_refused() {
    let (mut p, mut san, mut ti) = logged_in(&[]);
    let (mut hdr, _) = tur(&mut ti);
    hdr[5..8].copy_from_slice(&[0x10, 0, 0]); // 1 MiB > our 256 KiB
    let used = ti.send_raw(&mut p, &mut san, &hdr);
    assert_eq!(used, BHS_LEN);
    assert_eq!(ti.recv(&mut p)[0].opcode(), Opcode::Reject);
    assert!(p.should_close(ti.conn));
}

#[test]
fn extended_cdb_reaches_the_san() {
    let (mut p, mut san, mut ti) = logged_in(&[]);
    san.auto = false;
    let (hdr, _) = ti.cmd(&[0x7f, 0, 0, 0, 0, 0, 0, 0x18], 0, false, false, true);
    // 32-byte CDB: 16 more bytes in an Extended CDB AHS (length 17: reserved byte + 16).
    let mut ahs = vec![0, 17, wire::ahs::EXTENDED_CDB, 0];
    ahs.extend((0..16).map(|i| 0xa0 + i as u8));
    ti.send_ahs(&mut p, &mut san, &hdr, &ahs, &[]);
    let cdb = &san.commands[0].1;
    assert_eq!(cdb.len(), 32);
    assert_eq!(cdb[0], 0x7f);
    assert_eq!(cdb[16], 0xa0);
    assert_eq!(cdb[31], 0xaf);
}

#[test]
fn async_event_becomes_an_async_message() {
    let (mut p, _san, mut ti) = logged_in(&[]);
    let nexus = p.nexus(ti.conn).unwrap();
    let sense = [
        0x70u8, 0, 6, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x3f, 0x0e, 0, 0, 0, 0,
    ];
    p.async_event(nexus, Lun::ZERO, &sense).unwrap();
    let r = ti.recv(&mut p);
    let a = wire::AsyncMessageRepr::parse(&r[0].view()).unwrap();
    assert_eq!(a.event, 0);
    assert_eq!(&r[0].data[2..], &sense);
    assert_eq!(
        p.async_event(rscst_sim::iscsi::NexusId(999), Lun::ZERO, &sense),
        Err(EventError::Stale)
    );
}
