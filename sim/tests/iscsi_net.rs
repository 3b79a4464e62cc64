//! The run-to-completion network loop batches its socket calls: the PDUs of one read are
//! answered with one write, and a read that did not fill the buffer ends the read burst
//! (no read that only says `WouldBlock`). A client on a loopback socket, the portal's
//! loop in the test thread with the test-only RAM responder as its SAN. At high queue
//! depth the loop's moderation ([`NetConfig::coalesce`]) gathers commands that arrive in
//! several writes into one read; at queue depth 1 it never waits.

mod iscsi_common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use iscsi_common::{MemSan, TARGET, frame_pdu, read10};
use rscst_sim::iscsi::net::{NetConfig, NetStats, Server};
use rscst_sim::iscsi::wire::{self, BHS_LEN, Bhs, Lun, Opcode};
use rscst_sim::iscsi::{PortalConfig, TargetConfig};

const COMMANDS: u32 = 16;

/// PDU headers from a socket.
struct Reader {
    buf: Vec<u8>,
    pos: usize,
}

impl Reader {
    /// The next whole PDU's header (reading as needed).
    fn next(&mut self, s: &mut TcpStream) -> [u8; BHS_LEN] {
        let mut chunk = [0u8; 65536];
        loop {
            if self.buf.len() >= self.pos + BHS_LEN {
                let v = Bhs::new_unchecked(&self.buf[self.pos..self.pos + BHS_LEN]);
                let dsl = v.data_segment_len() as usize;
                let len = BHS_LEN + v.total_ahs_len() + dsl + wire::pad4(dsl);
                if self.buf.len() >= self.pos + len {
                    let mut h = [0u8; BHS_LEN];
                    h.copy_from_slice(&self.buf[self.pos..self.pos + BHS_LEN]);
                    self.pos += len;
                    return h;
                }
            }
            let k = s.read(&mut chunk).expect("read");
            assert!(k > 0, "the portal closed the connection");
            self.buf.extend_from_slice(&chunk[..k]);
        }
    }
}

/// A portal loop with the test-only RAM responder as its SAN, in this thread, and a
/// client in another: `client` gets a logged-in connection and the command window's
/// first CmdSN; the loop stops when it returns (or fails). The loop's counters.
fn serve(
    net: NetConfig,
    client: impl FnOnce(&mut TcpStream, &mut Reader, u32) + Send + 'static,
) -> NetStats {
    let mut server = Server::bind(
        NetConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..net
        },
        PortalConfig {
            targets: vec![TargetConfig::open(TARGET)],
            nop_in_interval: None,
            ..Default::default()
        },
    )
    .expect("bind");
    let addr = server.local_addr();
    let stop = server.stop_handle();
    let client = std::thread::spawn(move || {
        // Stops the server however the client ends (a failed assertion included).
        struct StopOnDrop(rscst_sim::iscsi::net::StopHandle);
        impl Drop for StopOnDrop {
            fn drop(&mut self) {
                self.0.stop();
            }
        }
        let _stop = StopOnDrop(stop);
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut keys = Vec::new();
        for (k, v) in [
            ("InitiatorName", "iqn.2024-01.test:net"),
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
            cmdsn: 1,
            exp_statsn: 0,
        }
        .emit(&mut hdr);
        s.write_all(&frame_pdu(&hdr, &[], &keys, false, false))
            .unwrap();
        let mut rd = Reader {
            buf: Vec::new(),
            pos: 0,
        };
        let r = rd.next(&mut s);
        let v = Bhs::new_unchecked(&r[..]);
        assert_eq!(v.opcode(), Opcode::LoginResponse);
        assert_eq!(v.u16_at(36), 0, "login accepted");
        let (exp_cmdsn, max_cmdsn) = (v.u32_at(28), v.u32_at(32));
        assert!(
            max_cmdsn.wrapping_sub(exp_cmdsn) + 1 >= 2 * COMMANDS,
            "window"
        );
        client(&mut s, &mut rd, exp_cmdsn);
    });
    let mut san = MemSan::new(&[2048]);
    server.run(&mut san).expect("run");
    client.join().expect("client");
    server.net_stats()
}

/// `n` READs of 4 KiB (ITTs and CmdSNs from `first`), framed back to back.
fn reads(first: u32, n: u32) -> Vec<u8> {
    reads_of(first, n, 8)
}

/// `n` READs of `blocks` 512-byte blocks each (at most 2,048).
fn reads_of(first: u32, n: u32, blocks: u16) -> Vec<u8> {
    let mut batch = Vec::new();
    for i in first..first + n {
        let mut c = [0u8; 16];
        let lba = i * u32::from(blocks) % (2048 - u32::from(blocks) + 1);
        c[..10].copy_from_slice(&read10(lba, blocks));
        let mut h = [0u8; BHS_LEN];
        wire::ScsiCommandRepr {
            immediate: false,
            final_: true,
            read: true,
            write: false,
            attr: wire::TaskAttr::Simple,
            lun: Lun::ZERO,
            itt: i + 1,
            edtl: u32::from(blocks) * 512,
            cmdsn: i,
            exp_statsn: 1,
            cdb: c,
        }
        .emit(&mut h);
        batch.extend_from_slice(&frame_pdu(&h, &[], &[], false, false));
    }
    batch
}

/// Reads answers until `n` READs have ended with GOOD status (on their last Data-In or
/// in a SCSI Response).
fn await_good(s: &mut TcpStream, rd: &mut Reader, n: u32) {
    let mut ended = 0;
    while ended < n {
        let h = rd.next(s);
        let v = Bhs::new_unchecked(&h[..]);
        let last_data_in = v.opcode() == Opcode::DataIn && v.flags() & 0x01 != 0;
        if last_data_in || v.opcode() == Opcode::ScsiResponse {
            assert_eq!(v.byte(3), 0, "GOOD");
            ended += 1;
        }
    }
}

/// Block at once when idle (as `rscst run` does): the counts are the work's, not a
/// spin's.
fn no_spin() -> NetConfig {
    NetConfig {
        spin: Duration::ZERO,
        ..Default::default()
    }
}

#[test]
fn one_write_per_batch_and_no_empty_reads() {
    let st = serve(no_spin(), |s, rd, cmdsn| {
        // The batch: every command in one write.
        s.write_all(&reads(cmdsn, COMMANDS)).unwrap();
        await_good(s, rd, COMMANDS);
    });
    // Login and batch: one read each. Their answers: one write each. The first read
    // may find the socket still empty (the connection is read as soon as it is
    // accepted); no read burst ends with an empty read.
    assert!(st.reads >= 2, "{st}");
    assert!(st.writes <= st.reads, "a write per read at most: {st}");
    assert!(st.empty_reads <= 1, "{st}");
    assert_eq!(st.coalesced, 0, "moderation is off by default: {st}");
}

/// Moderation long enough that the test does not depend on the scheduler: the client's
/// two half batches, 1 ms apart, both arrive while the loop sleeps.
const MODERATION: Duration = Duration::from_millis(200);

#[test]
fn moderation_gathers_commands_at_high_queue_depth() {
    let net = NetConfig {
        spin_max_batch: 2,
        coalesce: MODERATION,
        ..no_spin()
    };
    let st = serve(net, |s, rd, cmdsn| {
        // A batch of more than two commands puts the loop in the high-depth regime.
        s.write_all(&reads(cmdsn, COMMANDS)).unwrap();
        await_good(s, rd, COMMANDS);
        // The next batch in two writes: the loop, sleeping after its last pass, takes
        // both halves in one read and answers them in one write.
        let half = COMMANDS / 2;
        s.write_all(&reads(cmdsn + COMMANDS, half)).unwrap();
        std::thread::sleep(Duration::from_millis(1));
        s.write_all(&reads(cmdsn + COMMANDS + half, half)).unwrap();
        await_good(s, rd, COMMANDS);
    });
    assert!(st.coalesced >= 1, "{st}");
    // Login, first batch, both halves of the second: three reads with bytes.
    assert_eq!(st.reads, 3, "{st}");
    assert!(st.writes <= st.reads, "{st}");
}

#[test]
fn no_moderation_while_commands_come_one_at_a_time() {
    let net = NetConfig {
        spin_max_batch: 2,
        coalesce: MODERATION,
        ..no_spin()
    };
    let st = serve(net, |s, rd, cmdsn| {
        // Queue depth 1: each command waits for the previous one's answer.
        for i in 0..COMMANDS {
            s.write_all(&reads(cmdsn + i, 1)).unwrap();
            await_good(s, rd, 1);
        }
    });
    assert_eq!(st.coalesced, 0, "{st}");
    assert!(st.reads > u64::from(COMMANDS), "{st}");
}

#[test]
fn no_moderation_for_large_transfers() {
    let net = NetConfig {
        spin_max_batch: 2,
        coalesce: MODERATION,
        ..no_spin()
    };
    let st = serve(net, |s, rd, cmdsn| {
        // High queue depth, but 64 KiB a command: each pass moves far more than
        // `coalesce_max_bytes`, and the data, not the pass, is what costs.
        for b in 0..3 {
            s.write_all(&reads_of(cmdsn + b * COMMANDS / 2, COMMANDS / 2, 128))
                .unwrap();
            await_good(s, rd, COMMANDS / 2);
        }
    });
    assert_eq!(st.coalesced, 0, "{st}");
}
