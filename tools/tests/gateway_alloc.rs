//! No allocation per command on the iSCSI path in steady state: SCSI Command PDUs as
//! bytes → portal → gateway → simulated fabric and ISP → qla2x00t → core → RAM LU, and
//! the Data-In/status PDUs back into the portal's transmit buffer, stepped on the
//! simulator's clock in the caller's thread (the run-to-completion arrangement of
//! `rscst run`). Allocations are counted by a counting global allocator on this thread,
//! around the stack's and the portal's calls only (building the requests and checking the
//! answers happen outside the counted windows).

#[path = "../../sim/tests/iscsi_common/mod.rs"]
mod iscsi_common;

use std::time::Duration;

use iscsi_common::{TestInit, frame_pdu, parse_pdus, read10};
use rscst_hba::alloc_count::CountingAllocator;
use rscst_sim::SimConfig;
use rscst_sim::gateway::GatewayConfig;
use rscst_sim::iscsi::wire::{self, BHS_LEN, Opcode};
use rscst_sim::iscsi::{Portal, PortalConfig, TargetConfig};
use rscst_tools::config::{Config, default_lu};
use rscst_tools::stack::{self, RtcStack};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator::new();

const TARGET: &str = "iqn.2025-01.org.rscst:alloc-test";
/// Commands sent together (in one `receive`, as one socket read would hand them over).
const BATCH: u32 = 16;
/// 4 KiB READs.
const BLOCKS: u16 = 8;

/// Runs stack, gateway and portal until the connection has no task left, moving its
/// output into `out` (which has room, so appending allocates nothing).
fn settle(st: &mut RtcStack, portal: &mut Portal, ini: &TestInit, out: &mut Vec<u8>) {
    for _ in 0..10_000 {
        st.run(portal);
        let now = st.elapsed();
        portal.poll(now, st);
        st.run(portal);
        let tx = portal.transmit(ini.conn);
        let n = tx.len();
        out.extend_from_slice(tx);
        portal.transmitted(ini.conn, n);
        if portal.task_count(ini.conn) == 0 && portal.transmit_len(ini.conn) == 0 {
            return;
        }
        st.advance(Duration::from_millis(1), portal);
    }
    panic!("the commands did not finish");
}

/// `batches` batches of READ commands, as bytes, with the initiator's next ITTs/CmdSNs.
fn requests(ini: &mut TestInit, batches: usize) -> Vec<Vec<u8>> {
    (0..batches)
        .map(|b| {
            let mut bytes = Vec::new();
            for i in 0..BATCH {
                let lba = (b as u32 * BATCH + i) % 1024 * u32::from(BLOCKS);
                let (hdr, _) = ini.cmd(
                    &read10(lba, BLOCKS),
                    u32::from(BLOCKS) * 512,
                    true,
                    false,
                    true,
                );
                bytes.extend_from_slice(&frame_pdu(&hdr, &[], &[], false, false));
            }
            bytes
        })
        .collect()
}

/// Runs the batches; returns the allocations made inside the stack and the portal and
/// every byte the portal sent.
fn run_batches(
    st: &mut RtcStack,
    portal: &mut Portal,
    ini: &TestInit,
    batches: &[Vec<u8>],
) -> (u64, Vec<u8>) {
    let per_batch = BATCH as usize * (2 * BHS_LEN + usize::from(BLOCKS) * 512);
    let mut out = Vec::with_capacity(batches.len() * per_batch);
    let mut allocs = 0;
    for b in batches {
        let a0 = ALLOC.thread_allocations();
        let now = st.elapsed();
        let used = portal.receive(ini.conn, b, now, st);
        settle(st, portal, ini, &mut out);
        allocs += ALLOC.thread_allocations() - a0;
        assert_eq!(used, b.len());
    }
    (allocs, out)
}

#[test]
fn the_iscsi_path_allocates_nothing_per_command() {
    let cfg = Config {
        lus: vec![default_lu("ram0", 8192 * 512)],
        ..Default::default()
    };
    let parts = stack::build(&cfg, SimConfig::threaded()).expect("stack");
    let mut st = RtcStack::stepped(parts, GatewayConfig::default());
    st.bring_up(Duration::from_secs(60)).expect("port up");
    let mut portal = Portal::new(PortalConfig {
        targets: vec![TargetConfig::open(TARGET)],
        nop_in_interval: None,
        ..Default::default()
    })
    .expect("portal");
    let mut ini = TestInit::connect(&mut portal);

    // Login (the gateway logs an FC port in behind it: the answer comes later).
    let mut keys = Vec::new();
    for (k, v) in [
        ("InitiatorName", "iqn.2024-01.test:alloc"),
        ("TargetName", TARGET),
        ("SessionType", "Normal"),
        ("MaxRecvDataSegmentLength", "262144"),
    ] {
        rscst_sim::iscsi::text::push(&mut keys, k, v);
    }
    let mut hdr = [0u8; BHS_LEN];
    wire::LoginRequestRepr {
        transit: true,
        cont: false,
        csg: wire::Stage::Operational,
        nsg: wire::Stage::FullFeature,
        version_max: 0,
        version_min: 0,
        isid: [0x80, 0, 0, 0x12, 0x34, 0x56],
        tsih: 0,
        itt: 0x1000,
        cid: 1,
        cmdsn: ini.cmdsn,
        exp_statsn: 0,
    }
    .emit(&mut hdr);
    ini.send(&mut portal, &mut st, &hdr, &keys);
    let mut out = Vec::new();
    for _ in 0..1000 {
        if portal.session_count() == 1 {
            break;
        }
        settle(&mut st, &mut portal, &ini, &mut out);
        st.advance(Duration::from_millis(10), &mut portal);
    }
    assert_eq!(portal.session_count(), 1, "logged in");

    // Warm-up: pools, queues and buffers grow to what the load needs.
    let warm = requests(&mut ini, 20);
    run_batches(&mut st, &mut portal, &ini, &warm);
    let measured = requests(&mut ini, 50);
    let (allocs, bytes) = run_batches(&mut st, &mut portal, &ini, &measured);
    let commands = 50 * BATCH as usize;

    let pdus = parse_pdus(&bytes, false, false);
    let done: Vec<_> = pdus
        .iter()
        .filter(|p| p.opcode() == Opcode::DataIn && p.view().flags() & 0x01 != 0)
        .collect();
    assert_eq!(
        done.len(),
        commands,
        "every READ ended with status on its Data-In"
    );
    assert!(
        done.iter().all(|p| p.view().byte(3) == 0),
        "every READ GOOD"
    );
    let data: usize = pdus
        .iter()
        .filter(|p| p.opcode() == Opcode::DataIn)
        .map(|p| p.data.len())
        .sum();
    assert_eq!(data, commands * usize::from(BLOCKS) * 512);
    assert_eq!(
        allocs, 0,
        "{allocs} allocations on the iSCSI path over {commands} commands"
    );
}
