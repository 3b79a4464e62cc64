//! Runs the built `rscst` binary on hand-made entries and frames.

use std::process::{Command, Output};

use serde_json::Value;

fn rscst(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rscst"))
        .args(args)
        .output()
        .expect("run rscst")
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}, stderr {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// ATIO7: READ(10) of 8 blocks, exchange 0x123, S_ID 010203, D_ID 0a0b0c, OX_ID 0x1234
/// (reference §7.2, by hand; colons and spaces mixed on purpose).
const ATIO7: &str = "06:01:38:10 23:01:00:00 \
    06 0a0b0c 00 010203 08 290000 00 00 0000 1234 ffff 00000000 \
    0000000000000000 00 00 00 02 \
    28000000 00000000 08000000 00000000 \
    00001000";

/// CTIO7 mode 1: CHECK CONDITION, 18 bytes of sense (stored dword-reversed), residual 512
/// under (reference §7.3–§7.5, by hand).
const CTIO7: &str = "12 01 00 00  02 00 00 20  01 00 0a 00  00 00 00 00 \
    03 02 01 00  23 01 00 00  12 00 40 82  00 02 00 00 \
    34 12 02 0a  00 00 00 00  00 05 00 70  0a 00 00 00 \
    00 00 00 00  00 00 00 24  00 00 00 00  00 00 00 00";

#[test]
fn atio7_one_line() {
    let out = stdout(&rscst(&["decode", "iocb", ATIO7]));
    assert_eq!(
        out,
        "ATIO7 xchg=0x00000123 s_id=010203 d_id=0a0b0c ox_id=0x1234 lun=0000000000000000 attr=SIMPLE \
         cdb=[28 00 00 00 00 00 00 00 08 00] fcp_dl=4096 RD atio_attr=1\n"
    );
}

#[test]
fn atio7_json_fields() {
    let out = stdout(&rscst(&["decode", "iocb", "--json", ATIO7]));
    assert_eq!(out.lines().count(), 1);
    let j: Value = serde_json::from_str(&out).unwrap();
    let expect = [
        ("entry_type", Value::from("ATIO7")),
        ("entry_count", Value::from(1)),
        ("exchange_addr", Value::from(0x123)),
        ("attr", Value::from(1)),
        ("d_id", Value::from("0a0b0c")),
        ("s_id", Value::from("010203")),
        ("ox_id", Value::from(0x1234)),
        ("rx_id", Value::from(0xffff)),
        ("lun", Value::from("0000000000000000")),
        ("crn", Value::from(0)),
        ("task_attr", Value::from("SIMPLE")),
        ("tmf_flags", Value::from(0)),
        ("rddata", Value::from(true)),
        ("wrdata", Value::from(false)),
        ("add_cdb_len", Value::from(0)),
        ("cdb", Value::from("28000000000000000800000000000000")),
        ("fcp_dl", Value::from(4096)),
    ];
    for (k, v) in expect {
        assert_eq!(j[k], v, "field {k} in {j}");
    }
}

#[test]
fn ctio7_one_line_and_json() {
    let out = stdout(&rscst(&["decode", "iocb", CTIO7]));
    assert_eq!(
        out,
        "CTIO7 handle=0x20000002 xchg=0x00000123 nport=0x0001 i_id=010203 ox_id=0x1234 flags=SEND_STATUS mode1 \
         status=0x02|SENSE_VALID|RESID_UNDER resid=512 \
         sense=[70 00 05 00 00 00 00 0a 00 00 00 00 24 00 00 00 00 00] attr=1\n"
    );
    let j: Value =
        serde_json::from_str(&stdout(&rscst(&["decode", "iocb", "--json", CTIO7]))).unwrap();
    let expect = [
        ("handle", Value::from(0x2000_0002u32)),
        ("nport_handle", Value::from(1)),
        ("timeout", Value::from(10)),
        ("dseg_count", Value::from(0)),
        ("vp_index", Value::from(0)),
        ("initiator_id", Value::from("010203")),
        ("exchange_addr", Value::from(0x123)),
        ("flags", Value::from(0x8240)),
        ("status_mode", Value::from(1)),
        ("residual", Value::from(512)),
        ("ox_id", Value::from(0x1234)),
        ("scsi_status", Value::from(0x0a02)),
        ("sense_length", Value::from(18)),
        (
            "sense_data",
            Value::from("700005000000000a00000000240000000000"),
        ),
        // Mode-0 fields exist in every CTIO7 object; null in a mode-1 CTIO.
        ("relative_offset", Value::Null),
        ("transfer_length", Value::Null),
        ("dsd_address", Value::Null),
        ("dsd_length", Value::Null),
    ];
    for (k, v) in expect {
        assert_eq!(j[k], v, "field {k} in {j}");
    }
}

#[test]
fn ctio7_completion_with_dir_response() {
    let out = stdout(&rscst(&["decode", "iocb", "--dir", "response", CTIO7]));
    // Read as a returned entry, 0x08 (the request's nport_handle 1) is the status: SUCCESS.
    assert_eq!(
        out,
        "CTIO7-DONE handle=0x20000002 xchg=0x00000123 status=SUCCESS ox_id=0x1234 \
         flags=STATUS_MODE_1|SEND_STATUS|0x200 resid=512\n"
    );
}

#[test]
fn multi_slot_input_gives_one_line_per_entry() {
    let cont = format!("0a01{}", "00".repeat(62));
    let out = stdout(&rscst(&["decode", "iocb", CTIO7, &cont]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].starts_with("CTIO7 ") && lines[1] == "CONTINUE_A64");
    let json = stdout(&rscst(&["decode", "iocb", "--json", CTIO7, &cont]));
    for l in json.lines() {
        serde_json::from_str::<Value>(l).unwrap();
    }
}

#[test]
fn fcp_frame_with_delimiters() {
    // Reference §8.7 vector: FCP_RSP header + 24 zero bytes, CRC e7 78 48 34.
    let frame = format!(
        "bcb55656 0701020300 0a0b0c 08990000 01000000 12340005 00000000 {} e7784834 bc957575",
        "00".repeat(24)
    );
    let out = stdout(&rscst(&["decode", "fcp", "--delims", &frame]));
    assert_eq!(
        out,
        "SOFi3 FC 0a0b0c>010203 ox_id=0x1234 rx_id=0x0005 FCP_RSP status=0x00 EOFt- crc=ok\n"
    );
    let bad = frame.replace("e7784834", "e7784835");
    let o = rscst(&["decode", "fcp", "--delims", &bad]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("CRC mismatch"));
    let j: Value = serde_json::from_str(&stdout(&rscst(&[
        "decode",
        "fcp",
        "--json",
        &frame[9..frame.len() - 18],
    ])))
    .unwrap();
    assert_eq!(
        (
            j["r_ctl"].as_str(),
            j["s_id"].as_str(),
            j["scsi_status"].as_u64()
        ),
        (Some("CMD_STATUS"), Some("0a0b0c"), Some(0))
    );
}

#[test]
fn bad_input_exits_2_with_one_line() {
    let cases: [&[&str]; 6] = [
        &["decode", "iocb", "060"],            // odd hex
        &["decode", "iocb", "0601"],           // wrong length
        &["decode", "iocb", &"ee".repeat(64)], // unknown entry type
        &["decode", "iocb", "zz"],             // not hex
        &["decode", "fcp", "07010203"],        // short frame
        &["decode", "iocb", &"12".repeat(65)], // not a multiple of 64
    ];
    for args in cases {
        let o = rscst(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("rscst: error: "), "{err}");
        assert!(o.stdout.is_empty());
    }
    // Usage errors (clap) exit 2 as well.
    for args in [
        &["decode", "nope"][..],
        &["decode", "iocb"],
        &["bogus"],
        &["decode", "iocb", "--dir", "x", "00"],
    ] {
        assert_eq!(rscst(args).status.code(), Some(2), "{args:?}");
    }
}
