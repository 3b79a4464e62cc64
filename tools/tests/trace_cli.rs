//! `rscst trace`: a trace recorded by `rscst bench --trace`, printed and converted to a
//! pcap; bad input is one line and exit status 2.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn rscst(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rscst"))
        .args(args)
        .output()
        .expect("run rscst")
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}, stderr {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rscst-trace-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Records a short deterministic run with a trace and the pcap the simulator streams.
fn record(d: &Path, registers: bool) -> (PathBuf, PathBuf, Value) {
    let (t, p) = (d.join("run.trace"), d.join("run.pcap"));
    let mut args = vec![
        "bench",
        "--deterministic",
        "--commands",
        "40",
        "--read-percent",
        "50",
        "--json",
        "--trace",
        s(&t),
        "--pcap",
        s(&p),
    ];
    if registers {
        args.push("--trace-registers");
    }
    let j: Value = serde_json::from_str(&ok(&rscst(&args))).unwrap();
    (t, p, j)
}

#[test]
fn trace_prints_every_event_one_line_each() {
    let d = tmp("print");
    let (t, _, j) = record(&d, true);
    let records = j["trace"]["records"].as_u64().unwrap();
    assert_eq!(j["trace"]["dropped"], 0);
    let out = ok(&rscst(&["trace", s(&t)]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len() as u64, records);
    assert!(
        lines.iter().all(|l| l.starts_with('[')),
        "every line is `[time] event`"
    );
    // Bring-up, logins and the I/O are all there, decoded.
    for k in [
        "REG W",
        "MBX CMD",
        "MBX DONE",
        "IOCB IN  req[",
        "IOCB OUT atio[",
        "ATIO7",
        "CTIO7",
        "FRAME SOFi3",
        "IRQ host_status",
        "LOOP_UP",
        "CHIP soft reset",
    ] {
        assert!(out.contains(k), "no {k:?} line");
    }
    // Times never go backwards.
    let times: Vec<f64> = lines
        .iter()
        .map(|l| l[1..l.find(']').unwrap()].parse().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn trace_to_pcap_matches_the_pcap_the_run_streamed() {
    let d = tmp("pcap");
    let (t, p, j) = record(&d, false);
    let out = d.join("conv.pcap");
    let msg = ok(&rscst(&["trace", s(&t), "--pcap", s(&out)]));
    let frames = j["pcap"]["frames"].as_u64().unwrap();
    assert!(frames > 100);
    assert_eq!(
        msg.trim(),
        format!(
            "{frames} frames of {} events written to {}",
            j["trace"]["records"],
            out.display()
        )
    );
    // Same frames, same timestamps, same CRCs: the same file byte for byte.
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&p).unwrap());
    if let Ok(o) = Command::new("tshark").args(["-r", s(&out)]).output() {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let text = String::from_utf8_lossy(&o.stdout);
        assert_eq!(text.lines().count() as u64, frames);
        for k in [
            "FLOGI",
            "PLOGI",
            "PRLI",
            "SCSI: Read(10)",
            "SCSI: Write(10)",
        ] {
            assert!(text.contains(k), "tshark shows no {k}");
        }
    } else {
        eprintln!("tshark not installed: the pcap is compared with the run's only");
    }
    std::fs::remove_dir_all(&d).unwrap();
}

fn fails(args: &[&str], want: &str) -> String {
    let o = rscst(args);
    assert_eq!(o.status.code(), Some(2), "{args:?}");
    let e = String::from_utf8(o.stderr).unwrap();
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(
        e.starts_with("rscst: error: ") && e.contains(want),
        "{args:?}: {e}"
    );
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let d = tmp("bad");
    let (t, p, _) = record(&d, false);
    let good = std::fs::read(&t).unwrap();
    let all = ok(&rscst(&["trace", s(&t)]));
    assert!(fails(&["trace", s(&d.join("missing"))], "missing").is_empty());
    // A pcap is not a trace.
    assert!(fails(&["trace", s(&p)], "not an rscst trace: bad magic").is_empty());
    let empty = d.join("empty");
    std::fs::write(&empty, b"").unwrap();
    fails(&["trace", s(&empty)], "not an rscst trace");
    // Cut in the middle of the last record: the events before it are printed (as a
    // decoder of a truncated capture does), then the error.
    let cut = d.join("cut");
    std::fs::write(&cut, &good[..good.len() - 3]).unwrap();
    let before = fails(&["trace", s(&cut)], "truncated record");
    assert_eq!(before.lines().count() + 1, all.lines().count());
    assert!(all.starts_with(&before));
    fails(
        &["trace", s(&cut), "--pcap", s(&d.join("x.pcap"))],
        "truncated record",
    );
    // A record type this version does not know.
    let mut bad = good.clone();
    bad[16] = 0xEE;
    let badp = d.join("badtag");
    std::fs::write(&badp, &bad).unwrap();
    fails(
        &["trace", s(&badp)],
        "bad record at byte 16: unknown record type 0xee",
    );
    // Another version.
    let mut v = good.clone();
    v[8] = 9;
    let vp = d.join("v9");
    std::fs::write(&vp, &v).unwrap();
    fails(&["trace", s(&vp)], "version 9");
    // An unwritable output.
    fails(
        &["trace", s(&t), "--pcap", s(&d.join("no/such/dir/x.pcap"))],
        "output",
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn threaded_trace_loses_no_frame() {
    // The threaded bench drains the simulator's trace from the poller thread every
    // 10 ms (a round trip to the simulator thread): every frame the simulator streamed
    // to the pcap must be in the trace too, in the same order.
    let d = tmp("threaded");
    let (t, p) = (d.join("run.trace"), d.join("run.pcap"));
    let j: Value = serde_json::from_str(&ok(&rscst(&[
        "bench",
        "--commands",
        "300",
        "--qd",
        "4",
        "--read-percent",
        "50",
        "--json",
        "--trace",
        s(&t),
        "--pcap",
        s(&p),
    ])))
    .unwrap();
    assert_eq!(j["trace"]["dropped"], 0);
    let out = d.join("conv.pcap");
    ok(&rscst(&["trace", s(&t), "--pcap", s(&out)]));
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&p).unwrap());
    std::fs::remove_dir_all(&d).unwrap();
}
