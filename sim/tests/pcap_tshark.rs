//! The CI pcap check: a mixed workload (reads, writes, a TMF, an ABTS, a LOGO) captured as
//! LINKTYPE_FC_2_WITH_FRAME_DELIMS (225), verified frame by frame here (delimiters, CRC,
//! decode), then by an independent decoder: `tshark` must find no malformed frame and no
//! bad CRC, and must decode exactly the SCSI opcodes, TMF and BLS/ELS the workload sent.
//! Skips (with the reason printed) when tshark is not installed.
//!
//! `RSCST_PCAP_OUT=path` keeps a copy of the capture (sim/scripts/pcap-check.sh uses it).

mod common;

use std::process::Command;
use std::time::Duration;

use common::setup;
use common::target::{BLOCK, MiniTarget, run};
use rscst_fw::Lun;
use rscst_fw::fc::{DelimitedFrame, FcFrameRepr, TmFunction};
use rscst_sim::pcap::{LINKTYPE_FC_2_WITH_FRAME_DELIMS, PcapWriter, read_pcap};
use rscst_sim::{CommandSpec, InitiatorConfig, InitiatorEvent, SimConfig};

const T: Duration = Duration::from_secs(2);

fn rw10(op: u8, lba: u32, n: u16) -> Vec<u8> {
    let mut c = vec![op, 0];
    c.extend_from_slice(&lba.to_be_bytes());
    c.push(0);
    c.extend_from_slice(&n.to_be_bytes());
    c.push(0);
    c
}

fn rw16(op: u8, lba: u64, n: u32) -> Vec<u8> {
    let mut c = vec![op, 0];
    c.extend_from_slice(&lba.to_be_bytes());
    c.extend_from_slice(&n.to_be_bytes());
    c.extend_from_slice(&[0, 0]);
    c
}

/// Runs the mixed workload with a pcap stream; returns the capture and the opcodes sent.
fn capture(path: &std::path::Path) -> Vec<u8> {
    let mut cfg = SimConfig::default();
    cfg.trace.registers = false;
    let (mut sim, mut d) = setup(cfg);
    let file = std::fs::File::create(path).expect("pcap file");
    let pcap =
        PcapWriter::new(Box::new(std::io::BufWriter::new(file)) as Box<dyn std::io::Write + Send>)
            .unwrap();
    sim.set_pcap(Some(pcap));
    d.bring_up(&mut sim);
    let mut t = MiniTarget::new(d, 1024);
    let ini = sim.add_initiator(InitiatorConfig::new(0x2100_0000_c9dd_0001));
    assert!(run(&mut sim, &mut t, T, |s, _| s
        .initiator_port_id(ini)
        .is_some()));
    let target = sim.hba_port_id().unwrap();
    sim.initiator_login(ini, target).unwrap();
    assert!(run(&mut sim, &mut t, T, |s, _| s
        .initiator_logged_in(ini, target)));
    let lun = Lun::from_index(0).unwrap();
    let data: Vec<u8> = (0..4 * BLOCK).map(|i| (i % 251) as u8).collect();
    let cmds: Vec<CommandSpec> = vec![
        CommandSpec::no_data(lun, &[0x00, 0, 0, 0, 0, 0]).unwrap(),
        CommandSpec::read(lun, &[0x12, 0, 0, 0, 36, 0], 36).unwrap(),
        CommandSpec::read(lun, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], 8).unwrap(),
        CommandSpec::write(lun, &rw10(0x2A, 16, 4), data.clone()).unwrap(),
        CommandSpec::read(lun, &rw10(0x28, 16, 4), 4 * BLOCK).unwrap(),
        CommandSpec::write(lun, &rw16(0x8A, 64, 4), data.clone()).unwrap(),
        CommandSpec::read(lun, &rw16(0x88, 64, 4), 4 * BLOCK).unwrap(),
    ];
    for spec in cmds {
        let tag = sim.initiator_command(ini, target, spec).unwrap();
        let mut evs = Vec::new();
        assert!(run(&mut sim, &mut t, T, |s, _| {
            evs.extend(s.initiator_events(ini));
            evs.iter().any(|e| matches!(e, InitiatorEvent::Completed { tag: g, result } if *g == tag && result.status == 0))
        }));
    }
    // A TMF.
    let tag = sim
        .initiator_tmf(ini, target, lun, TmFunction::LunReset)
        .unwrap();
    let mut evs = Vec::new();
    assert!(run(&mut sim, &mut t, T, |s, _| {
        evs.extend(s.initiator_events(ini));
        evs.iter()
            .any(|e| matches!(e, InitiatorEvent::TmfDone { tag: g, .. } if *g == tag))
    }));
    // An ABTS of a command the target holds.
    t.hold_commands = true;
    let tag = sim
        .initiator_command(
            ini,
            target,
            CommandSpec::read(lun, &rw10(0x28, 100, 2), 2 * BLOCK).unwrap(),
        )
        .unwrap();
    assert!(run(&mut sim, &mut t, T, |_, t| t.open_commands() == 1));
    sim.initiator_abort(ini, tag).unwrap();
    let mut evs = Vec::new();
    assert!(run(&mut sim, &mut t, T, |s, _| {
        evs.extend(s.initiator_events(ini));
        evs.iter()
            .any(|e| matches!(e, InitiatorEvent::AbortDone { accepted: true, .. }))
    }));
    // A LOGO.
    sim.initiator_logout(ini, target).unwrap();
    let mut evs = Vec::new();
    assert!(run(&mut sim, &mut t, T, |s, _| {
        evs.extend(s.initiator_events(ini));
        evs.iter()
            .any(|e| matches!(e, InitiatorEvent::LoggedOut { .. }))
    }));
    sim.run_for(Duration::from_millis(1));
    t.poll(&mut sim);
    let w = sim.set_pcap(None).unwrap();
    drop(w.into_inner().unwrap());
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    std::fs::read(path).unwrap()
}

/// The SCSI opcodes the workload sends, in order.
const OPCODES: [u8; 8] = [0x00, 0x12, 0x25, 0x2A, 0x28, 0x8A, 0x88, 0x28];

#[test]
fn mixed_workload_pcap_decodes_cleanly() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join("rscst-mixed-workload.pcap");
    let bytes = capture(&path);
    if let Ok(out) = std::env::var("RSCST_PCAP_OUT") {
        std::fs::copy(&path, &out).expect("copy the capture");
        println!("capture kept at {out}");
    }

    // Our own check: every record is SOF + header + payload + good CRC + EOF and decodes.
    let (linktype, recs) = read_pcap(&bytes).unwrap();
    assert_eq!(linktype, LINKTYPE_FC_2_WITH_FRAME_DELIMS);
    assert!(recs.len() > 30, "{} frames", recs.len());
    let mut cmnd_opcodes = Vec::new();
    for (i, r) in recs.iter().enumerate() {
        let d = DelimitedFrame::parse(&r.data).unwrap();
        assert!(d.crc_ok(), "frame {} CRC", i + 1);
        assert!(
            d.sof.name().is_some() && d.eof.name().is_some(),
            "frame {} delimiters",
            i + 1
        );
        let f = FcFrameRepr::parse(d.frame).unwrap_or_else(|e| panic!("frame {}: {e}", i + 1));
        if let rscst_fw::fc::FcPayload::FcpCmnd(c) = f.payload
            && c.tmf.is_empty()
        {
            cmnd_opcodes.push(c.cdb.opcode());
        }
    }
    assert_eq!(cmnd_opcodes, OPCODES);

    // The independent decoder.
    let version = Command::new("tshark").arg("--version").output();
    if !version.as_ref().is_ok_and(|o| o.status.success()) {
        println!(
            "SKIPPED: tshark is not installed (apt-get install tshark); the pcap check needs it"
        );
        return;
    }
    let fields = |filter: &str, fields: &[&str]| -> Vec<String> {
        let mut c = Command::new("tshark");
        c.arg("-r").arg(&path).arg("-T").arg("fields");
        if !filter.is_empty() {
            c.arg("-Y").arg(filter);
        }
        for f in fields {
            c.arg("-e").arg(f);
        }
        let out = c.output().expect("tshark runs");
        assert!(
            out.status.success(),
            "tshark failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    };
    let all = fields("", &["frame.number"]);
    assert_eq!(all.len(), recs.len(), "tshark read every frame");
    let bad = fields(
        "_ws.malformed || _ws.expert.severity >= 0x00800000",
        &["frame.number"],
    );
    assert!(bad.is_empty(), "malformed or erroneous frames: {bad:?}");
    let crc = fields("", &["fc.crc.status"]);
    assert!(
        crc.iter().all(|c| c == "1"),
        "CRC status not Good everywhere: {crc:?}"
    );
    // SCSI opcodes in the FCP_CMND frames, in order (SBC and SPC decoders).
    let ops = fields(
        "fc.r_ctl == 0x06 && fcp.taskmgmt == 0",
        &["scsi_sbc.opcode", "scsi.spc.opcode"],
    );
    let got: Vec<u8> = ops
        .iter()
        .map(|l| {
            let v = l
                .split('\t')
                .find(|s| !s.is_empty())
                .unwrap_or_else(|| panic!("no opcode decoded: {l:?}"));
            u8::from_str_radix(v.trim_start_matches("0x"), 16).unwrap()
        })
        .collect();
    assert_eq!(got, OPCODES, "tshark opcodes");
    // The TMF, the ABTS / BA_ACC, the LOGO and its LS_ACC.
    assert_eq!(
        fields("fcp.mgmt.flags.lu_reset == 1", &["frame.number"]).len(),
        1,
        "LUN RESET"
    );
    assert_eq!(
        fields(
            "fcp.rspcode == 0 && fcp.rsp.flags.res_vld == 1",
            &["frame.number"]
        )
        .len(),
        1,
        "TMF response"
    );
    assert_eq!(
        fields("fc.r_ctl == 0x81", &["frame.number"]).len(),
        1,
        "ABTS"
    );
    assert_eq!(
        fields("fc.r_ctl == 0x84", &["frame.number"]).len(),
        1,
        "BA_ACC"
    );
    assert_eq!(
        fields("fcels.opcode == 0x05", &["frame.number"]).len(),
        1,
        "LOGO"
    );
    assert_eq!(
        fields("fcels.opcode == 0x04", &["frame.number"]).len(),
        2,
        "FLOGI x2"
    );
    assert!(
        !fields("fcels.opcode == 0x03", &["frame.number"]).is_empty(),
        "PLOGI"
    );
    assert!(
        !fields("fcels.opcode == 0x20", &["frame.number"]).is_empty(),
        "PRLI"
    );
    // Data and status frames decode as FCP.
    assert_eq!(
        fields("fc.r_ctl == 0x07 && fc.type == 0x08", &["fcp.status"]).len(),
        8,
        "FCP_RSP frames"
    );
    assert!(
        !fields("fcp.burstlen", &["fcp.burstlen"]).is_empty(),
        "XFER_RDY frames"
    );
}
