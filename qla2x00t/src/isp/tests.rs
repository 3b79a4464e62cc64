//! Bring-up tests against the fake chip.

use std::vec::Vec;

use rscst_core::Instant;
use rscst_fw::Wwn;
use rscst_fw::icb::FwOptions1;

use super::fake::{FakePlatform, NoCore, image};
use super::*;
use crate::config::IspConfig;
use crate::event::{BringUpError, Event};
use crate::firmware::FirmwareSource;
use crate::mailbox::MbxError;

type Storage = IspStorage<4, 2, 4, 16, 64>;
type TestIsp<'s> = Isp<'s, FakePlatform, 32, 32, 32>;

fn config(img: &[u8]) -> IspConfig<'_> {
    let mut c = IspConfig::new(
        Wwn::from_u64(0x2100_0000_0000_0001),
        Wwn::from_u64(0x2000_0000_0000_0001),
        FirmwareSource::Image(img),
    );
    c.backoff_initial = core::time::Duration::from_millis(100);
    c
}

/// Poll every millisecond of virtual time until online or `limit_ms`.
fn run(isp: &mut TestIsp<'_>, from_ms: u64, limit_ms: u64) -> u64 {
    let mut core = NoCore;
    let mut t = from_ms;
    while t < limit_ms {
        isp.poll(Instant::from_millis(t), &mut core);
        if isp.is_online() {
            return t;
        }
        t += 1;
    }
    t
}

fn events(isp: &mut TestIsp<'_>) -> Vec<Event> {
    core::iter::from_fn(|| isp.pop_event())
        .map(|r| r.event)
        .collect()
}

#[test]
fn brings_up_target_mode_port() {
    let img = image([300, 40]);
    let mut st = Storage::new();
    let p = FakePlatform::new();
    let s = p.state.clone();
    s.borrow_mut().ready_after = 2;
    let mut isp = TestIsp::probe(p, &mut st, config(&img)).unwrap();
    assert_eq!(isp.phase(), Phase::Resetting);
    let t = run(&mut isp, 0, 5000);
    assert!(
        isp.is_online(),
        "not online after {t} ms: {:?}",
        isp.phase()
    );
    assert!(isp.link_up());
    assert_eq!(isp.port_id().get(), 0x010200);
    let st = s.borrow();
    // The order of reference §3.5.
    assert_eq!(
        st.commands,
        [
            0x06, 0x0B, 0x0B, 0x07, 0x02, 0x08, 0x42, 0x38, 0x60, 0x69, 0x69, 0x69, 0x20
        ]
    );
    // Chunks are at most the request ring's bytes (32 × 64 / 4 = 512 dwords):
    // segment 0 (300 dwords) in one chunk, segment 1 (40) in one.
    let loaded: Vec<(u32, usize)> = st.loaded.iter().map(|(a, w)| (*a, w.len())).collect();
    assert_eq!(loaded, [(0x10_0000, 300), (0x10_8000, 40)]);
    // Loaded words are the image's big-endian dwords in host order.
    let want: Vec<u32> = img
        .chunks(4)
        .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(st.loaded[0].1[..], want[..300]);
    assert_eq!(st.loaded[1].1[..], want[300..340]);
    // Target-mode ICB with the three rings.
    let icb = st.icb.unwrap();
    assert!(icb.target_mode_ready());
    assert!(
        icb.firmware_options_1
            .contains(FwOptions1::DISABLE_INITIATOR)
    );
    assert_eq!(
        (
            icb.request_q.length,
            icb.response_q.length,
            icb.atio_q.length
        ),
        (32, 32, 32)
    );
    assert_eq!(icb.execution_throttle, 100);
    assert_eq!(icb.port_name, Wwn::from_u64(0x2100_0000_0000_0001));
    // 25xx: exchange tracking on, ABTS stays on the response queue.
    assert_eq!(st.options, Some([0, 1 << 4, 0]));
    // Interrupts enabled; the marker was posted (one entry, doorbell 1).
    assert_eq!(st.ictrl, 8);
    assert_eq!(st.queue[rscst_fw::regs::REQ_Q_IN as usize / 4], 1);
    drop(st);
    let mut m = [0u8; 64];
    isp.dma.req.read(0, &mut m).unwrap();
    assert_eq!((m[0], m[1], m[0x0A]), (0x04, 1, 2));
    let ev = events(&mut isp);
    assert!(matches!(
        ev[0],
        Event::Reset(crate::event::ResetReason::Probe)
    ));
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::FirmwareStarted { exchanges: 100, .. }))
    );
    assert!(matches!(ev.last(), Some(Event::Online { .. })));
    assert_eq!(isp.stats().resets, 1);
    assert_eq!(isp.firmware_version().unwrap().major, 9);
}

#[test]
fn checksum_error_backs_off_and_retries() {
    let mut img = image([64, 16]);
    img[100] ^= 1; // corrupt one byte: the firmware's checksum fails
    let mut st = Storage::new();
    let p = FakePlatform::new();
    let s = p.state.clone();
    let mut isp = TestIsp::probe(p, &mut st, config(&img)).unwrap();
    run(&mut isp, 0, 50);
    assert_eq!(isp.phase(), Phase::Backoff);
    let ev = events(&mut isp);
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::BringUpFailed {
            error: BringUpError::Mailbox(MbxError::Status { .. }),
            retry_in
        } if *retry_in == core::time::Duration::from_millis(100)
    )));
    // The second attempt fails too, with twice the backoff.
    let cmds_before = s.borrow().commands.len();
    s.borrow_mut().sum = 0;
    run(&mut isp, 50, 400);
    assert!(s.borrow().commands.len() > cmds_before, "retried");
    let ev = events(&mut isp);
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::BringUpFailed { retry_in, .. } if *retry_in == core::time::Duration::from_millis(200)
    )));
    assert!(!isp.is_online());
}

#[test]
fn stalled_mailbox_times_out_then_recovers() {
    let img = image([64, 16]);
    let mut st = Storage::new();
    let p = FakePlatform::new();
    let s = p.state.clone();
    s.borrow_mut().stall = Some(0x02); // EXECUTE_FIRMWARE never answers
    let mut cfg = config(&img);
    cfg.mailbox_timeout = core::time::Duration::from_millis(200);
    let mut isp = TestIsp::probe(p, &mut st, cfg).unwrap();
    run(&mut isp, 0, 150);
    assert_eq!(isp.phase(), Phase::Initializing, "waiting for EXECUTE");
    run(&mut isp, 150, 250);
    assert_eq!(isp.phase(), Phase::Backoff);
    let ev = events(&mut isp);
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::BringUpFailed {
            error: BringUpError::Mailbox(MbxError::Timeout { .. }),
            ..
        }
    )));
    // The firmware comes back: the next attempt resets the chip and succeeds.
    {
        let mut st = s.borrow_mut();
        st.stall = None;
        st.sum = 0;
    }
    let t = run(&mut isp, 250, 5000);
    assert!(isp.is_online(), "online at {t}");
    assert_eq!(isp.stats().resets, 2);
}

#[test]
fn loads_firmware_from_flash() {
    let img = image([600, 30]);
    let mut st = Storage::new();
    let p = FakePlatform::new();
    let s = p.state.clone();
    {
        let mut st = s.borrow_mut();
        st.flash = std::vec![0xFFFF_FFFF; 0x100];
        st.flash.extend(
            img.chunks(4)
                .map(|c| u32::from_be_bytes(c.try_into().unwrap())),
        );
    }
    let mut cfg = config(&img);
    cfg.firmware = FirmwareSource::Flash {
        dword_offset: 0x100,
    };
    let mut isp = TestIsp::probe(p, &mut st, cfg).unwrap();
    let t = run(&mut isp, 0, 5000);
    assert!(isp.is_online(), "online at {t}: {:?}", events(&mut isp));
    let st = s.borrow();
    // 600 dwords in chunks of 512 + 88, then 30.
    let sizes: Vec<usize> = st.loaded.iter().map(|(_, w)| w.len()).collect();
    assert_eq!(sizes, [512, 88, 30]);
    assert_eq!(
        st.loaded[1].0,
        0x10_0000 + 512,
        "RISC addresses count in dwords"
    );
    let all: Vec<u32> = st
        .loaded
        .iter()
        .flat_map(|(_, w)| w.iter().copied())
        .collect();
    assert_eq!(all, st.flash[0x100..0x100 + 630]);
}

#[test]
fn probe_refuses_unknown_chip_and_bad_image() {
    let img = image([64, 16]);
    let mut st = Storage::new();
    let p = FakePlatform::new();
    p.state.borrow_mut().device_id = 0x8021;
    assert!(matches!(
        TestIsp::probe(p, &mut st, config(&img)),
        Err(ProbeError::Pci(_))
    ));
    let mut st = Storage::new();
    assert!(matches!(
        TestIsp::probe(FakePlatform::new(), &mut st, config(&img[..20])),
        Err(ProbeError::Image(_))
    ));
}
