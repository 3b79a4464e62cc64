//! The iSCSI-to-FC gateway through the whole stack, stepped on the simulator's virtual
//! clock: iSCSI PDUs fed to the portal as bytes → gateway → simulated fabric and ISP →
//! qla2x00t driver → SCSI core → RAM LU, and the answers back as PDUs.

#[path = "../../sim/tests/iscsi_common/mod.rs"]
mod iscsi_common;

use std::time::Duration;

use iscsi_common::{Pdu, TestInit, frame_pdu, keys_of, read10, write10};
use rscst_hba::DmaRegion;
use rscst_sim::SimConfig;
use rscst_sim::gateway::{GatewayConfig, initiator_wwpn};
use rscst_sim::iscsi::wire::{self, BHS_LEN, Isid, Lun, Opcode, TmfFunction, TmfResponseCode};
use rscst_sim::iscsi::{Portal, PortalConfig, TargetConfig};
use rscst_tools::config::{Config, default_lu};
use rscst_tools::stack::{self, RtcStack};

const TARGET: &str = "iqn.2025-01.org.rscst:gw-test";
const INITIATOR: &str = "iqn.2024-01.test:gateway";
const ISID: [u8; 6] = [0x80, 0, 0, 0x12, 0x34, 0x56];
const BLOCKS: u64 = 8192;

struct Rig {
    st: RtcStack,
    portal: Portal,
    ini: TestInit,
}

fn stack() -> RtcStack {
    let cfg = Config {
        lus: vec![default_lu("ram0", BLOCKS * 512)],
        ..Default::default()
    };
    let parts = stack::build(&cfg, SimConfig::default()).expect("stack");
    let mut st = RtcStack::stepped(parts, GatewayConfig::default());
    st.bring_up(Duration::from_secs(60)).expect("port up");
    st
}

impl Rig {
    fn new() -> Rig {
        let st = stack();
        let portal = Portal::new(PortalConfig {
            targets: vec![TargetConfig::open(TARGET)],
            nop_in_interval: None,
            ..Default::default()
        })
        .expect("portal");
        let mut r = Rig {
            st,
            ini: TestInit::connect(&mut Portal::new(PortalConfig::default()).unwrap()),
            portal,
        };
        r.ini = TestInit::connect(&mut r.portal);
        r
    }

    fn now(&self) -> Duration {
        self.st.elapsed()
    }

    /// Runs everything (stack, gateway, portal timers) until `n` PDUs came out or
    /// `limit` of simulated time passed.
    fn pump_for(&mut self, n: usize, limit: Duration) -> Vec<Pdu> {
        let end = self.now() + limit;
        let mut got = Vec::new();
        loop {
            self.st.run(&mut self.portal);
            let now = self.now();
            self.portal.poll(now, &mut self.st);
            self.st.run(&mut self.portal);
            self.ini.now = self.now();
            got.extend(self.ini.recv(&mut self.portal));
            if got.len() >= n || self.now() >= end {
                return got;
            }
            self.st.advance(Duration::from_millis(50), &mut self.portal);
        }
    }

    fn pump(&mut self, n: usize) -> Vec<Pdu> {
        let got = self.pump_for(n, Duration::from_secs(30));
        assert!(
            got.len() >= n,
            "expected {n} PDUs, got {}: {got:?}",
            got.len()
        );
        got
    }

    fn send(&mut self, bhs: &[u8; BHS_LEN], data: &[u8]) {
        self.ini.now = self.now();
        let b = frame_pdu(bhs, &[], data, self.ini.hd, self.ini.dd);
        let used = self
            .portal
            .receive(self.ini.conn, &b, self.ini.now, &mut self.st);
        assert_eq!(used, b.len());
    }

    fn login(&mut self) {
        let mut data = Vec::new();
        for (k, v) in [
            ("InitiatorName", INITIATOR),
            ("TargetName", TARGET),
            ("SessionType", "Normal"),
            ("MaxRecvDataSegmentLength", "8192"),
            ("InitialR2T", "Yes"),
            ("ImmediateData", "No"),
            ("MaxBurstLength", "65536"),
        ] {
            rscst_sim::iscsi::text::push(&mut data, k, v);
        }
        let mut hdr = [0u8; BHS_LEN];
        wire::LoginRequestRepr {
            transit: true,
            cont: false,
            csg: wire::Stage::Operational,
            nsg: wire::Stage::FullFeature,
            version_max: 0,
            version_min: 0,
            isid: ISID,
            tsih: 0,
            itt: 0x1000,
            cid: 1,
            cmdsn: self.ini.cmdsn,
            exp_statsn: 0,
        }
        .emit(&mut hdr);
        self.send(&hdr, &data);
        let r = self.pump(1);
        assert_eq!(r[0].opcode(), Opcode::LoginResponse);
        assert_eq!(
            r[0].view().u16_at(36),
            0,
            "login status: {:?}",
            keys_of(&r[0])
        );
        assert!(
            r[0].view().flags() & 0x80 != 0,
            "transit to full feature phase"
        );
    }

    /// A command; returns every PDU up to and including its SCSI Response.
    fn command(&mut self, cdb: &[u8], edtl: u32, read: bool, write: bool, out: &[u8]) -> Vec<Pdu> {
        let (hdr, itt) = self.ini.cmd(cdb, edtl, read, write, true);
        self.send(&hdr, &[]);
        let mut pdus = Vec::new();
        let mut datasn = 0;
        loop {
            let got = self.pump(1);
            for p in got {
                if p.opcode() == Opcode::R2t {
                    let v = p.view();
                    let (ttt, off, len) = (v.u32_at(20), v.u32_at(40), v.u32_at(44));
                    let mut o = off;
                    while o < off + len {
                        let n = (off + len - o).min(8192);
                        let last = o + n == off + len;
                        let d = self.ini.data_out(itt, ttt, datasn, o, last);
                        datasn += 1;
                        self.send(&d, &out[o as usize..(o + n) as usize]);
                        o += n;
                    }
                    datasn = 0;
                }
                let done = p.opcode() == Opcode::ScsiResponse
                    || (p.opcode() == Opcode::DataIn && p.view().flags() & 0x01 != 0);
                pdus.push(p);
                if done {
                    return pdus;
                }
            }
        }
    }
}

fn status_of(pdus: &[Pdu]) -> u8 {
    let last = pdus.last().expect("a response");
    last.view().byte(3)
}

fn data_of(pdus: &[Pdu]) -> Vec<u8> {
    let mut v = Vec::new();
    for p in pdus.iter().filter(|p| p.opcode() == Opcode::DataIn) {
        let off = p.view().u32_at(40) as usize;
        assert_eq!(off, v.len(), "Data-In in order");
        v.extend_from_slice(&p.data);
    }
    v
}

fn tmf(rig: &mut Rig, function: TmfFunction, ref_itt: u32) -> TmfResponseCode {
    let itt = rig.ini.next_itt();
    let mut hdr = [0u8; BHS_LEN];
    wire::TmfRequestRepr {
        immediate: true,
        function,
        lun: Lun::ZERO,
        itt,
        ref_itt,
        cmdsn: rig.ini.cmdsn,
        exp_statsn: rig.ini.exp_statsn,
        ref_cmdsn: rig.ini.cmdsn,
        exp_datasn: 0,
    }
    .emit(&mut hdr);
    rig.send(&hdr, &[]);
    let r = rig.pump(1);
    let p = r
        .iter()
        .find(|p| p.opcode() == Opcode::TaskMgmtResponse)
        .expect("TMF response");
    iscsi_common::tmf_code(p)
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn login_inquiry_write_read_tmf_logout_through_the_fc_stack() {
    let mut rig = Rig::new();
    rig.login();
    // The session is an FC initiator port with the derived WWPN, logged in to the HBA.
    let wwpn = initiator_wwpn(INITIATOR, Isid(ISID));
    let sessions: Vec<_> = rig.st.parts.isp.sessions().collect();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert!(
        rig.st
            .parts
            .sim
            .name_server()
            .iter()
            .any(|e| e.wwpn == wwpn && e.fcp_initiator),
        "the port is on the fabric under {wwpn:?}"
    );
    assert_eq!(rig.st.gw.stats().sessions, 1);

    // POWER ON RESET unit attention first, then INQUIRY data from the core.
    let r = rig.command(&[0, 0, 0, 0, 0, 0], 0, false, false, &[]);
    assert_eq!(status_of(&r), 2, "the new nexus reports its unit attention");
    let r = rig.command(&[0x12, 0, 0, 0, 96, 0], 96, true, false, &[]);
    let inq = data_of(&r);
    assert_eq!(&inq[8..13], b"RSCST", "{inq:?}");
    // READ CAPACITY(16): the default LU's 512-byte blocks in 4096-byte physical blocks
    // (LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT 3, LBA 0 aligned).
    let mut rc16 = [0u8; 16];
    rc16[0] = 0x9e;
    rc16[1] = 0x10;
    rc16[13] = 32;
    let r = rig.command(&rc16, 32, true, false, &[]);
    assert_eq!(status_of(&r), 0);
    let cap = data_of(&r);
    assert_eq!(cap[..8], (BLOCKS - 1).to_be_bytes(), "{cap:?}");
    assert_eq!(cap[8..12], 512u32.to_be_bytes(), "{cap:?}");
    assert_eq!(cap[13] & 0x0f, 3, "LBPPB exponent: {cap:?}");
    assert_eq!(
        (cap[14] & 0x3f, cap[15]),
        (0, 0),
        "lowest aligned LBA: {cap:?}"
    );

    // WRITE through R2T / XFER_RDY, then READ it back; the LU's memory holds it.
    let data = pattern(64 * 512, 7);
    let r = rig.command(&write10(100, 64), data.len() as u32, false, true, &data);
    assert_eq!(status_of(&r), 0, "write status");
    assert!(
        r.iter().any(|p| p.opcode() == Opcode::R2t),
        "solicited data"
    );
    let r = rig.command(&read10(100, 64), data.len() as u32, true, false, &[]);
    assert_eq!(data_of(&r), data, "read back");
    assert_eq!(status_of(&r), 0);
    let mut lun = vec![0u8; data.len()];
    rig.st
        .parts
        .backend
        .a
        .memory(rscst_core::BackendLun(0))
        .expect("RAM LU")
        .region()
        .read(100 * 512, &mut lun)
        .unwrap();
    assert_eq!(lun, data, "the bytes are in the LU's DMA memory");

    // A large read spans many FC frames and Data-In PDUs; residual underflow.
    let r = rig.command(&read10(0, 512), 512 * 512 + 4096, true, false, &[]);
    assert_eq!(data_of(&r).len(), 512 * 512);
    let resp = r.last().unwrap();
    assert_eq!(
        iscsi_common::residual_of(resp),
        wire::Residual::Underflow(4096)
    );

    // ABORT TASK of a write waiting for its data: ABTS on the FC side.
    let (hdr, itt) = rig.ini.cmd(&write10(0, 8), 4096, false, true, true);
    rig.send(&hdr, &[]);
    let r = rig.pump(1);
    assert_eq!(r[0].opcode(), Opcode::R2t);
    assert_eq!(
        tmf(&mut rig, TmfFunction::AbortTask, itt),
        TmfResponseCode::Complete
    );
    assert!(
        rig.st.parts.isp.stats().abts >= 1,
        "ABTS reached the driver"
    );
    // ABORT TASK of an unknown task.
    assert_eq!(
        tmf(&mut rig, TmfFunction::AbortTask, 0xdead),
        TmfResponseCode::TaskDoesNotExist
    );
    // LUN RESET as an FCP task management function.
    assert_eq!(
        tmf(&mut rig, TmfFunction::LogicalUnitReset, 0),
        TmfResponseCode::Complete
    );
    assert!(rig.st.parts.isp.stats().tmfs >= 1);
    let r = rig.command(&[0, 0, 0, 0, 0, 0], 0, false, false, &[]);
    assert_eq!(status_of(&r), 2, "29/03 after the LU reset");

    let st = rig.st.parts.isp.stats();
    assert!(st.commands >= 7, "the driver saw the commands: {st:?}");
    assert!(
        st.bytes_in + st.bytes_out >= 2 * 64 * 512 + 512 * 512,
        "{st:?}"
    );
    // Logout: LOGO on the FC side, nothing left anywhere.
    let itt = rig.ini.next_itt();
    let mut hdr = [0u8; BHS_LEN];
    wire::LogoutRequestRepr {
        immediate: true,
        reason: wire::LogoutReason::CloseSession,
        itt,
        cid: 1,
        cmdsn: rig.ini.cmdsn,
        exp_statsn: rig.ini.exp_statsn,
    }
    .emit(&mut hdr);
    rig.send(&hdr, &[]);
    let r = rig.pump(1);
    assert_eq!(r[0].opcode(), Opcode::LogoutResponse);
    rig.pump_for(usize::MAX, Duration::from_secs(2));
    assert_eq!(
        rig.st.parts.isp.sessions().count(),
        0,
        "LOGO ended the nexus"
    );
    assert_eq!(rig.st.gw.stats().sessions, 0);
    assert_eq!(rig.st.gw.tasks_in_flight(), 0);
    assert_eq!(rig.st.parts.isp.commands_in_flight(), 0);
    assert_eq!(rig.st.parts.target.active_commands(), 0);
    assert!(
        rig.st.parts.sim.violations().is_empty(),
        "{:?}",
        rig.st.parts.sim.violations()
    );
}

#[test]
fn connection_loss_mid_write_loses_nothing_acknowledged() {
    let mut rig = Rig::new();
    rig.login();
    let _ = rig.command(&[0, 0, 0, 0, 0, 0], 0, false, false, &[]);
    // An acknowledged write.
    let data = pattern(16 * 512, 3);
    let r = rig.command(&write10(10, 16), data.len() as u32, false, true, &data);
    assert_eq!(status_of(&r), 0);
    // A write left waiting for its data, then the connection drops.
    let (hdr, _) = rig.ini.cmd(&write10(10, 16), 8192, false, true, true);
    rig.send(&hdr, &[]);
    let r = rig.pump(1);
    assert_eq!(r[0].opcode(), Opcode::R2t);
    let conn = rig.ini.conn;
    rig.portal.close(conn, &mut rig.st);
    rig.pump_for(usize::MAX, Duration::from_secs(3));
    assert_eq!(rig.st.parts.isp.sessions().count(), 0, "nexus gone");
    assert_eq!(rig.st.parts.isp.commands_in_flight(), 0);
    assert_eq!(rig.st.parts.target.active_commands(), 0);
    assert_eq!(rig.st.gw.tasks_in_flight(), 0);
    // A new session reads what was acknowledged.
    rig.ini = TestInit::connect(&mut rig.portal);
    rig.login();
    let _ = rig.command(&[0, 0, 0, 0, 0, 0], 0, false, false, &[]);
    let r = rig.command(&read10(10, 16), data.len() as u32, true, false, &[]);
    assert_eq!(data_of(&r), data);
}

#[test]
fn garbage_gets_a_reject_or_a_drop_never_a_panic() {
    let mut rig = Rig::new();
    rig.login();
    // An unknown opcode: Reject with the header.
    let mut bad = [0u8; BHS_LEN];
    bad[0] = 0x3e;
    bad[1] = 0x80;
    rig.send(&bad, &[]);
    let r = rig.pump(1);
    assert_eq!(r[0].opcode(), Opcode::Reject);
    // Random bytes: the portal drops the connection; the gateway logs the port out.
    let junk: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let now = rig.now();
    let _ = rig.portal.receive(rig.ini.conn, &junk, now, &mut rig.st);
    rig.pump_for(usize::MAX, Duration::from_secs(20));
    if rig.portal.should_close(rig.ini.conn) {
        let conn = rig.ini.conn;
        rig.portal.close(conn, &mut rig.st);
        rig.pump_for(usize::MAX, Duration::from_secs(3));
        assert_eq!(rig.st.parts.isp.sessions().count(), 0);
    }
    assert!(rig.st.parts.sim.violations().is_empty());
}

#[test]
fn many_sessions_reuse_and_rename_ports() {
    let mut st = stack();
    let max = 3;
    st.gw = rscst_sim::gateway::Gateway::new(GatewayConfig {
        max_ports: max,
        ..Default::default()
    });
    let mut portal = Portal::new(PortalConfig {
        targets: vec![TargetConfig::open(TARGET)],
        nop_in_interval: None,
        ..Default::default()
    })
    .unwrap();
    for round in 0..(2 * max as u8 + 1) {
        let mut ini = TestInit::connect(&mut portal);
        let mut data = Vec::new();
        for (k, v) in [
            ("InitiatorName", INITIATOR),
            ("TargetName", TARGET),
            ("SessionType", "Normal"),
        ] {
            rscst_sim::iscsi::text::push(&mut data, k, v);
        }
        let mut hdr = [0u8; BHS_LEN];
        wire::LoginRequestRepr {
            transit: true,
            cont: false,
            csg: wire::Stage::Operational,
            nsg: wire::Stage::FullFeature,
            version_max: 0,
            version_min: 0,
            isid: [0x80, 0, 0, 0, 0, round],
            tsih: 0,
            itt: 1,
            cid: 1,
            cmdsn: 1,
            exp_statsn: 0,
        }
        .emit(&mut hdr);
        let b = frame_pdu(&hdr, &[], &data, false, false);
        portal.receive(ini.conn, &b, st.elapsed(), &mut st);
        let mut ok = false;
        for _ in 0..10_000 {
            st.run(&mut portal);
            ini.now = st.elapsed();
            if let Some(p) = ini.recv(&mut portal).first() {
                assert_eq!(p.view().u16_at(36), 0, "round {round}: login status");
                ok = true;
                break;
            }
            st.advance(Duration::from_millis(20), &mut portal);
        }
        assert!(ok, "round {round}: no login response");
        portal.close(ini.conn, &mut st);
        for _ in 0..200 {
            st.advance(Duration::from_millis(20), &mut portal);
        }
        assert_eq!(st.parts.isp.sessions().count(), 0, "round {round}");
    }
    let s = st.gw.stats();
    assert_eq!(s.ports, max as u64, "{s}");
    assert_eq!(s.port_renames, (2 * max + 1 - max) as u64, "{s}");
    assert_eq!(s.logins, (2 * max + 1) as u64, "{s}");
}

#[test]
fn fc_nexus_loss_under_a_live_session_relogs_in() {
    let mut rig = Rig::new();
    rig.login();
    let _ = rig.command(&[0, 0, 0, 0, 0, 0], 0, false, false, &[]);
    let data = pattern(8 * 512, 9);
    let r = rig.command(&write10(20, 8), data.len() as u32, false, true, &data);
    assert_eq!(status_of(&r), 0);
    // The HBA's link drops: the FC nexus is gone, the iSCSI session stays.
    rig.st.parts.sim.set_hba_link(false);
    rig.pump_for(usize::MAX, Duration::from_millis(200));
    let r = rig.command(&[0, 0, 0, 0, 0, 0], 0, false, false, &[]);
    assert_eq!(status_of(&r), 0x08, "BUSY while the port is logged out");
    // The link comes back; the port logs in again by itself.
    rig.st.parts.sim.set_hba_link(true);
    let mut back = false;
    for _ in 0..200 {
        rig.pump_for(usize::MAX, Duration::from_millis(100));
        if rig.st.parts.isp.sessions().count() == 1 {
            back = true;
            break;
        }
    }
    assert!(back, "the initiator port logged in again");
    // The new nexus reports its unit attention, then the data written before is there.
    let mut status = 0xff;
    for _ in 0..4 {
        let r = rig.command(&read10(20, 8), data.len() as u32, true, false, &[]);
        status = status_of(&r);
        if status == 0 {
            assert_eq!(data_of(&r), data);
            break;
        }
    }
    assert_eq!(status, 0, "read after the new login");
    assert_eq!(rig.st.gw.stats().sessions, 1);
}
