//! `rscst bench` end to end: short runs of the built binary, checking the JSON report's
//! fields and the properties the stack promises — every block read verifies, no
//! allocation in the driver+core turns, no byte copied on the RAM LUN's data path —
//! never its speed.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn rscst(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rscst"))
        .args(args)
        .output()
        .expect("run rscst")
}

fn bench_json(args: &[&str]) -> Value {
    let mut a = vec!["bench", "--json"];
    a.extend_from_slice(args);
    let o = rscst(&a);
    assert!(
        o.status.success(),
        "rscst {a:?}: exit {:?}\nstdout {}\nstderr {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let out = String::from_utf8(o.stdout).unwrap();
    assert_eq!(out.lines().count(), 1, "one JSON line: {out}");
    serde_json::from_str(&out).unwrap()
}

fn f(j: &Value, path: &str) -> f64 {
    let mut v = j;
    for k in path.split('.') {
        v = &v[k];
    }
    v.as_f64()
        .unwrap_or_else(|| panic!("{path} is not a number: {v}"))
}

fn u(j: &Value, path: &str) -> u64 {
    let mut v = j;
    for k in path.split('.') {
        v = &v[k];
    }
    v.as_u64()
        .unwrap_or_else(|| panic!("{path} is not a count: {v}"))
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rscst-bench-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The checks every clean run passes.
fn clean(j: &Value) {
    assert_eq!(u(j, "verify.errors"), 0, "{j}");
    assert_eq!(j["verify"]["first_errors"], Value::Array(vec![]));
    assert_eq!(u(j, "status.bad_status"), 0);
    assert_eq!(u(j, "status.failed"), 0);
    assert_eq!(u(j, "status.not_sent"), 0);
    assert_eq!(u(j, "sim.violations"), 0);
    assert_eq!(u(j, "sim.iommu_faults"), 0);
    assert_eq!(u(j, "sim.open_exchanges"), 0);
    assert_eq!(u(j, "driver.resets"), 1, "only the bring-up reset");
    assert!(f(j, "iops") > 0.0 && f(j, "mb_per_s") > 0.0 && f(j, "elapsed_s") > 0.0);
    for k in [
        "poller_thread",
        "driver_core_busy",
        "driver_core_turns",
        "simulator",
    ] {
        assert!(f(j, &format!("cpu_ns_per_cmd.{k}")) >= 0.0, "{k}");
    }
    assert!(f(j, "baseline.memcpy_ns") > 0.0);
    assert!(u(j, "machine.cpus") >= 1);
    // Zero copy on the RAM LUN: the driver copies nothing and the host never touches
    // the LUN's bytes or the buffer pool; the CTIO7s point at the LUN memory.
    assert_eq!(f(j, "bytes_copied_per_cmd"), 0.0);
    assert_eq!(f(j, "host_bytes_per_cmd"), 0.0);
    assert_eq!(u(j, "host_bytes.lun") + u(j, "host_bytes.pool"), 0);
}

#[test]
fn deterministic_mixed_run_verifies_with_no_allocation_and_no_copy() {
    let j = bench_json(&[
        "--deterministic",
        "--commands",
        "3000",
        "--bs",
        "512",
        "--qd",
        "4",
        "--initiators",
        "2",
        "--read-percent",
        "50",
    ]);
    assert_eq!(j["mode"], "deterministic");
    assert_eq!(u(&j, "config.bs"), 512);
    assert_eq!(u(&j, "config.qd"), 4);
    assert_eq!(u(&j, "config.initiators"), 2);
    assert_eq!(j["config"]["verify"], true);
    assert_eq!(j["config"]["lun"], "ram");
    assert_eq!(u(&j, "commands"), 3000);
    assert_eq!(u(&j, "status.good"), 3000);
    assert_eq!(u(&j, "reads") + u(&j, "writes"), 3000);
    assert!(u(&j, "reads") > 1000 && u(&j, "writes") > 1000, "{j}");
    // Reads of blocks written earlier in the run were checked against the shadow.
    assert!(u(&j, "verify.blocks_verified") >= u(&j, "reads"));
    clean(&j);
    // Zero allocations per command in the driver and the core (measured exactly: one
    // thread runs everything in deterministic mode), while the simulator does allocate.
    assert_eq!(u(&j, "allocs.driver_core"), 0);
    assert_eq!(f(&j, "allocs_per_cmd.driver_core"), 0.0);
    assert!(u(&j, "allocs.process") > 0);
    // A write is a data-out CTIO7 plus a status CTIO7; a GOOD read is one CTIO7.
    let ctios = f(&j, "per_cmd.ctios");
    assert!(ctios > 1.0 && ctios < 2.0, "{ctios}");
    assert_eq!(j["latency_us"], Value::Null);
    assert_eq!(f(&j, "bytes_copied_per_cmd"), 0.0);
}

#[test]
fn threaded_run_reports_latency_and_verifies() {
    let j = bench_json(&[
        "--seconds",
        "1",
        "--bs",
        "4096",
        "--qd",
        "8",
        "--read-percent",
        "70",
    ]);
    assert_eq!(j["mode"], "threaded");
    assert_eq!(f(&j, "config.seconds"), 1.0);
    assert_eq!(j["config"]["idle"], "spin");
    let n = u(&j, "commands");
    assert!(n > 0);
    // The workload's count covers the whole run; the window holds nearly all of it.
    assert!(u(&j, "status.good") >= n);
    assert!(u(&j, "writes") > 0 && u(&j, "reads") > 0);
    clean(&j);
    // The poller thread's own counter isolates driver+core from the simulator thread.
    assert_eq!(u(&j, "allocs.driver_core"), 0);
    let (p50, p99, p999, max) = (
        f(&j, "latency_us.p50"),
        f(&j, "latency_us.p99"),
        f(&j, "latency_us.p99_9"),
        f(&j, "latency_us.max"),
    );
    assert!(
        p50 <= p99 && p99 <= p999 && p999 <= max,
        "{}",
        j["latency_us"]
    );
    assert!(max > 0.0);
    assert!(f(&j, "latency_us.mean_littles_law") > 0.0);
    assert!(
        (f(&j, "mb_per_s") - f(&j, "iops") * 4096.0 / 1e6).abs() < f(&j, "mb_per_s") * 0.01 + 0.1
    );
}

#[test]
fn threaded_irq_mode_and_commands_stop() {
    let j = bench_json(&[
        "--commands",
        "2000",
        "--bs",
        "512",
        "--qd",
        "2",
        "--idle",
        "irq",
    ]);
    assert_eq!(j["config"]["idle"], "irq");
    assert_eq!(u(&j, "commands"), 2000);
    assert_eq!(u(&j, "status.good"), 2000);
    clean(&j);
}

/// Both interrupt lines the simulator models serve the same run; the report says
/// which, and counts the driver's register reads: with a spinning poller at QD 1, one
/// host-status read per interrupt and one `rsp_q_in` per command, not one per turn.
#[test]
fn msi_and_intx_lines_serve_the_run_and_count_register_reads() {
    for irq in ["msi", "intx"] {
        let j = bench_json(&[
            "--commands",
            "2000",
            "--bs",
            "512",
            "--qd",
            "1",
            "--irq",
            irq,
        ]);
        assert_eq!(j["config"]["irq"], irq);
        assert_eq!(u(&j, "status.good"), 2000);
        clean(&j);
        let reads = f(&j, "per_cmd.mmio_reads");
        let interrupts = f(&j, "per_cmd.interrupts");
        assert!(interrupts > 0.0, "{irq}: {j}");
        // The poller spins (many turns per command); the reads stay at one per
        // interrupt and one in-pointer per command, within the 100 ms sweeps' share.
        let turns = f(&j, "per_cmd.turns");
        assert!(turns > 2.0, "{irq}: {turns} turns per command");
        assert!(
            reads <= interrupts + 1.5,
            "{irq}: {reads} register reads for {interrupts} interrupts and {turns} turns per command"
        );
    }
}

#[test]
fn null_lun_reads_zero_copy() {
    let j = bench_json(&[
        "--deterministic",
        "--commands",
        "500",
        "--lun",
        "null",
        "--bs",
        "65536",
        "--qd",
        "2",
    ]);
    assert_eq!(j["config"]["lun"], "null");
    assert_eq!(u(&j, "commands"), 500);
    // 64 KiB = 16 segments of 4 KiB... the null backend maps one 1 MiB chunk: one CTIO7.
    assert_eq!(f(&j, "per_cmd.ctios"), 1.0);
    assert_eq!(u(&j, "allocs.driver_core"), 0);
    clean(&j);
}

#[test]
fn buffered_lun_shows_the_copies_zero_copy_saves() {
    // The same RAM LUN without mapping: every READ is copied LUN → pool by the host and
    // every WRITE pool → LUN, so the host-bytes count is 2 × 512 per command.
    let j = bench_json(&[
        "--deterministic",
        "--commands",
        "400",
        "--lun",
        "ram-copy",
        "--bs",
        "512",
        "--read-percent",
        "50",
    ]);
    assert_eq!(u(&j, "verify.errors"), 0);
    assert_eq!(f(&j, "host_bytes_per_cmd"), 1024.0);
    assert_eq!(u(&j, "host_bytes.lun"), 400 * 512);
    assert_eq!(u(&j, "host_bytes.pool"), 400 * 512);
    assert_eq!(u(&j, "allocs.driver_core"), 0);
}

#[test]
fn deterministic_runs_repeat_byte_for_byte() {
    let d = tmp("det");
    let run = |name: &str| {
        let p = d.join(name);
        let j = bench_json(&[
            "--deterministic",
            "--commands",
            "300",
            "--qd",
            "3",
            "--read-percent",
            "60",
            "--seed",
            "7",
            "--pcap",
            p.to_str().unwrap(),
        ]);
        (j, std::fs::read(&p).unwrap())
    };
    let (j1, a) = run("a.pcap");
    let (j2, b) = run("b.pcap");
    assert_eq!(a, b, "same seed, same frames");
    assert_eq!(j1["reads"], j2["reads"]);
    assert_eq!(j1["writes"], j2["writes"]);
    let (lt, recs) = rscst_sim::pcap::read_pcap(&a).unwrap();
    assert_eq!(lt, 225);
    assert_eq!(recs.len() as u64, u(&j1, "pcap.frames"));
    // FLOGI, PLOGI, PRLI, TEST UNIT READY and at least FCP_CMND + FCP_DATA/XFER_RDY +
    // FCP_RSP per command.
    assert!(recs.len() > 3 * 300, "{}", recs.len());
    for r in &recs {
        let f = rscst_fw::fc::frame::DelimitedFrame::parse(&r.data).unwrap();
        assert!(f.crc_ok());
    }
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn threaded_pcap_reads_back_and_tshark_decodes_it() {
    let d = tmp("pcap");
    let p = d.join("t.pcap");
    let j = bench_json(&[
        "--commands",
        "200",
        "--read-percent",
        "50",
        "--pcap",
        p.to_str().unwrap(),
    ]);
    clean(&j);
    let bytes = std::fs::read(&p).unwrap();
    let (lt, recs) = rscst_sim::pcap::read_pcap(&bytes).unwrap();
    assert_eq!(lt, 225);
    assert_eq!(recs.len() as u64, u(&j, "pcap.frames"));
    match Command::new("tshark")
        .args(["-r", p.to_str().unwrap(), "-Y", "fcp"])
        .output()
    {
        Ok(o) => {
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let text = String::from_utf8_lossy(&o.stdout);
            assert!(text.contains("SCSI: Read(10)"), "{text}");
            assert!(text.contains("SCSI: Write(10)"), "{text}");
        }
        Err(_) => eprintln!("tshark not installed: the pcap is checked by read_pcap only"),
    }
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn text_report_names_the_figures() {
    let o = rscst(&["bench", "--deterministic", "--commands", "200", "--quiet"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let t = String::from_utf8(o.stdout).unwrap();
    for k in [
        "IOPS",
        "MB/s",
        "CPU/command",
        "allocations  0.00/command in driver+core",
        "0 B/command copied by the driver",
        "memcpy of 4096 B",
        "1600 blocks checked, 0 errors", // 200 commands × 8 blocks
    ] {
        assert!(t.contains(k), "missing {k:?} in\n{t}");
    }
}

#[test]
fn bad_arguments_are_one_line_and_exit_2() {
    for (args, want) in [
        (vec!["--bs", "1000"], "a multiple of --lba-size"),
        (vec!["--lba-size", "520"], "a power of two"),
        (vec!["--qd", "0"], "at least 1"),
        (vec!["--initiators", "4", "--qd", "100"], "command slots"),
        (vec!["--lun", "null", "--read-percent", "50"], "null LUN"),
        (vec!["--seconds", "0"], "more than 0"),
        (vec!["--commands", "0"], "at least 1"),
        (vec!["--lun-mib", "0"], "1 to 16384"),
    ] {
        let mut a = vec!["bench"];
        a.extend_from_slice(&args);
        let o = rscst(&a);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let e = String::from_utf8(o.stderr).unwrap();
        assert_eq!(e.lines().count(), 1, "{e}");
        assert!(
            e.starts_with("rscst: error: ") && e.contains(want),
            "{args:?}: {e}"
        );
        assert!(o.stdout.is_empty());
    }
    // clap's own errors (unknown value) also exit 2.
    let o = rscst(&["bench", "--lun", "tape"]);
    assert_eq!(o.status.code(), Some(2));
}
