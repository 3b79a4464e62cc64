//! `rscst run` as a process: it comes up, serves iSCSI, prints its stats line, stops on
//! time and on SIGTERM, and refuses bad arguments with one line and exit status 2.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn rscst() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rscst"))
}

#[track_caller]
fn bad(args: &[&str], needle: &str) {
    let o = rscst().args(args).output().expect("run rscst");
    assert_eq!(o.status.code(), Some(2), "{args:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line for {args:?}: {err}");
    assert!(lines[0].contains(needle), "{args:?}: {err}");
}

#[test]
fn bad_arguments_and_configs_are_one_line_and_exit_2() {
    bad(&["run", "--mode", "fast"], "--mode");
    bad(&["run", "--size", "12x"], "--size");
    bad(&["run", "--size", "1000"], "--size");
    bad(&["run", "--iscsi", "nowhere:xx"], "--iscsi");
    bad(&["run", "--target", "not a name"], "--target");
    bad(&["run", "--stats=-1"], "--stats");
    bad(&["run", "--bogus"], "--bogus");
    bad(
        &["run", "--config", "/nonexistent/rscst.toml"],
        "/nonexistent/rscst.toml",
    );
    let dir = std::env::temp_dir().join(format!("rscst-run-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("bad.toml");
    std::fs::write(
        &f,
        "[[lu]]\nname = \"a\"\nsize = \"3KiB\"\nblock_size = 2048\n",
    )
    .unwrap();
    bad(&["run", "--config", f.to_str().unwrap()], "lu[0].size");
    std::fs::write(&f, "[[lu]]\nname = \"a\"\nphysical_block_size = 1000\n").unwrap();
    bad(
        &["run", "--config", f.to_str().unwrap()],
        "lu[0].physical_block_size: 1000 is not the block size 512 times a power of two",
    );
    std::fs::write(&f, "[[lu]]\nsise = 1\n").unwrap();
    bad(&["run", "--config", f.to_str().unwrap()], "sise");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Starts `rscst run` on an ephemeral port; returns the child and the address.
fn start(
    extra: &[&str],
) -> (
    std::process::Child,
    String,
    BufReader<std::process::ChildStdout>,
) {
    let mut child = rscst()
        .args(["run", "--iscsi", "127.0.0.1:0", "--size", "64MiB"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn rscst run");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut addr = None;
    let mut line = String::new();
    let t0 = Instant::now();
    while addr.is_none() && t0.elapsed() < Duration::from_secs(60) {
        line.clear();
        if out.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if let Some(rest) = line.trim().strip_prefix("rscst: try: iscsi-inq iscsi://") {
            addr = rest.split('/').next().map(str::to_owned);
        }
    }
    let addr = addr.expect("rscst run printed the URL");
    (child, addr, out)
}

#[test]
fn serves_until_sigterm_in_both_modes() {
    for mode in ["rtc", "threaded"] {
        let (mut child, addr, mut out) = start(&["--mode", mode, "--stats", "0.2"]);
        // A real initiator, when libiscsi's tools are installed.
        if std::process::Command::new("iscsi-inq")
            .arg("--help")
            .output()
            .is_ok()
        {
            let url = format!("iscsi://{addr}/iqn.2025-01.org.rscst:sim/0");
            let o = Command::new("iscsi-readcapacity16")
                .arg(&url)
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&o.stdout);
            assert!(o.status.success(), "{mode}: {text}");
            assert!(text.contains("Total size:67108864"), "{mode}: {text}");
        }
        let mut line = String::new();
        let mut saw_stats = false;
        for _ in 0..50 {
            line.clear();
            if out.read_line(&mut line).unwrap() == 0 {
                break;
            }
            if line.contains("iops") && line.contains("MB/s") && line.contains("sessions") {
                saw_stats = true;
                break;
            }
        }
        assert!(saw_stats, "{mode}: no stats line");
        // SIGTERM stops it cleanly.
        let pid = child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let t0 = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "{mode}: did not stop"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(status.success(), "{mode}: {status}");
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
        assert!(rest.contains("rscst: stopped"), "{mode}: {rest}");
    }
}

#[test]
fn chap_from_the_config_file() {
    if Command::new("iscsi-inq").arg("--help").output().is_err() {
        println!("SKIP: libiscsi-bin (iscsi-inq) not installed");
        return;
    }
    let dir = std::env::temp_dir().join(format!("rscst-chap-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("chap.toml");
    std::fs::write(
        &f,
        "[iscsi]\nchap_user = \"host1\"\nchap_secret = \"0123456789abcdef\"\n[[lu]]\nsize = \"16MiB\"\n",
    )
    .unwrap();
    let (mut child, addr, _out) = start(&["--config", f.to_str().unwrap(), "--stats", "0"]);
    let inq = |creds: &str| {
        let url = format!("iscsi://{creds}{addr}/iqn.2025-01.org.rscst:sim/0");
        Command::new("iscsi-inq").arg(&url).output().unwrap()
    };
    let good = inq("host1%0123456789abcdef@");
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    assert!(String::from_utf8_lossy(&good.stdout).contains("RSCST"));
    assert!(
        !inq("host1%wrong-secret-123@").status.success(),
        "wrong secret refused"
    );
    assert!(!inq("").status.success(), "no credentials refused");
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    let _ = std::fs::remove_dir_all(&dir);
}
