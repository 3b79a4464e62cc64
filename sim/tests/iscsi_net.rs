//! The run-to-completion network loop batches its socket calls: the PDUs of one read are
//! answered with one write, and a read that did not fill the buffer ends the read burst
//! (no read that only says `WouldBlock`). A client on a loopback socket, the portal's
//! loop in the test thread with the test-only RAM responder as its SAN.

mod iscsi_common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use iscsi_common::{MemSan, TARGET, frame_pdu, read10};
use rscst_sim::iscsi::net::{NetConfig, Server};
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

#[test]
fn one_write_per_batch_and_no_empty_reads() {
    let net = NetConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        // Block at once when idle (as `rscst run` does): the counts below are the
        // work's, not a spin's.
        spin: Duration::ZERO,
        ..Default::default()
    };
    let mut server = Server::bind(
        net,
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
        assert!(max_cmdsn.wrapping_sub(exp_cmdsn) + 1 >= COMMANDS, "window");
        // The batch: every command in one write.
        let mut batch = Vec::new();
        for i in 0..COMMANDS {
            let mut c = [0u8; 16];
            c[..10].copy_from_slice(&read10(i * 8, 8));
            let mut h = [0u8; BHS_LEN];
            wire::ScsiCommandRepr {
                immediate: false,
                final_: true,
                read: true,
                write: false,
                attr: wire::TaskAttr::Simple,
                lun: Lun::ZERO,
                itt: i + 1,
                edtl: 4096,
                cmdsn: exp_cmdsn.wrapping_add(i),
                exp_statsn: 1,
                cdb: c,
            }
            .emit(&mut h);
            batch.extend_from_slice(&frame_pdu(&h, &[], &[], false, false));
        }
        s.write_all(&batch).unwrap();
        // Each READ ends with its status: on its last Data-In or in a SCSI Response.
        let mut ended = 0;
        while ended < COMMANDS {
            let h = rd.next(&mut s);
            let v = Bhs::new_unchecked(&h[..]);
            let last_data_in = v.opcode() == Opcode::DataIn && v.flags() & 0x01 != 0;
            if last_data_in || v.opcode() == Opcode::ScsiResponse {
                assert_eq!(v.byte(3), 0, "GOOD");
                ended += 1;
            }
        }
    });
    let mut san = MemSan::new(&[2048]);
    server.run(&mut san).expect("run");
    client.join().expect("client");
    let st = server.net_stats();
    // Login and batch: one read each. Their answers: one write each. The first read
    // may find the socket still empty (the connection is read as soon as it is
    // accepted); no read burst ends with an empty read.
    assert!(st.reads >= 2, "{st}");
    assert!(st.writes <= st.reads, "a write per read at most: {st}");
    assert!(st.empty_reads <= 1, "{st}");
}
