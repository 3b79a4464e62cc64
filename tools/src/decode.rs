//! `rscst decode`: queue entries (`iocb`) and FC frames (`fcp`) from hex to one line of text
//! (the `Display` of `rscst-fw`) or, with `--json`, one JSON object per entry per line.

use clap::{Args, Subcommand, ValueEnum};
use rscst_fw::fc::{DelimitedFrame, FcFrameRepr};
use rscst_fw::iocb::{Dir, ENTRY_LEN, EntryIter};
use serde_json::Value as Json;

use crate::hex::read_hex;
use crate::{CliError, json};

/// `rscst decode ...`
#[derive(Debug, Args)]
pub struct DecodeArgs {
    #[command(subcommand)]
    what: DecodeWhat,
}

#[derive(Debug, Subcommand)]
enum DecodeWhat {
    /// Queue entries: one or more consecutive 64-byte slots (a multi-slot ATIO, a CTIO7 and
    /// its CONTINUE_A64s, ...). `-` reads the hex from stdin.
    Iocb(IocbArgs),
    /// An FC frame: 24-byte header + payload (FCP_CMND, XFER_RDY, FCP_RSP, DATA, BLS, ELS),
    /// optionally wrapped in SOF/CRC/EOF.
    Fcp(FcpArgs),
}

/// Which form of the entry types that exist both ways to decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DirArg {
    /// Driver → firmware (request queue): CTIO7, NOTIFY_ACK, ABTS_RESP, LOGINOUT requests.
    Request,
    /// Firmware → driver (response/ATIO queue): the completions of those.
    Response,
}

#[derive(Debug, Args)]
struct IocbArgs {
    /// The entry bytes in hex (spaces, colons, dashes allowed; several arguments are joined).
    #[arg(required = true, num_args = 1..)]
    hex: Vec<String>,
    /// Print one JSON object per entry instead of a line of text.
    #[arg(long)]
    json: bool,
    /// Decode request forms or returned (completion) forms.
    #[arg(long, value_enum, default_value_t = DirArg::Request)]
    dir: DirArg,
}

#[derive(Debug, Args)]
struct FcpArgs {
    /// The frame bytes in hex (header first; with --delims, SOF first).
    #[arg(required = true, num_args = 1..)]
    hex: Vec<String>,
    /// Print a JSON object instead of a line of text.
    #[arg(long)]
    json: bool,
    /// The bytes include SOF (4), CRC (4, little-endian) and EOF (4); the CRC is verified.
    #[arg(long)]
    delims: bool,
}

/// Runs `rscst decode`.
pub fn run(args: &DecodeArgs) -> Result<(), CliError> {
    let lines = match &args.what {
        DecodeWhat::Iocb(a) => decode_iocb(&read_hex(&a.hex)?, a.dir, a.json)?,
        DecodeWhat::Fcp(a) => decode_fcp(&read_hex(&a.hex)?, a.delims, a.json)?,
    };
    for l in lines {
        println!("{l}");
    }
    Ok(())
}

/// Decodes consecutive entries; one output line per entry.
fn decode_iocb(bytes: &[u8], dir: DirArg, as_json: bool) -> Result<Vec<String>, CliError> {
    if bytes.len() < ENTRY_LEN || !bytes.len().is_multiple_of(ENTRY_LEN) {
        return Err(CliError(format!(
            "an IOCB is one or more 64-byte slots; got {} bytes",
            bytes.len()
        )));
    }
    let dir = match dir {
        DirArg::Request => Dir::Request,
        DirArg::Response => Dir::Response,
    };
    let mut out = Vec::new();
    for item in EntryIter::new(bytes, dir) {
        let (entry, _) = item?;
        out.push(if as_json {
            Json::Object(json::object(&entry)).to_string()
        } else {
            entry.to_string()
        });
    }
    Ok(out)
}

/// Decodes one frame.
fn decode_fcp(bytes: &[u8], delims: bool, as_json: bool) -> Result<Vec<String>, CliError> {
    let (frame_bytes, delim) = if delims {
        let d = DelimitedFrame::parse(bytes)?;
        if !d.crc_ok() {
            return Err(CliError(format!(
                "CRC mismatch: frame has {:#010x}, computed {:#010x}",
                d.crc,
                rscst_fw::fc::crc32(d.frame)
            )));
        }
        (d.frame, Some(d))
    } else {
        (bytes, None)
    };
    let frame = FcFrameRepr::parse(frame_bytes)?;
    let line = if as_json {
        let mut o = json::object(&frame);
        if let Some(d) = delim {
            o.insert("sof".into(), Json::from(d.sof.to_string()));
            o.insert("crc".into(), Json::from(d.crc));
            o.insert("crc_ok".into(), Json::Bool(true));
            o.insert("eof".into(), Json::from(d.eof.to_string()));
        }
        Json::Object(o).to_string()
    } else {
        match delim {
            Some(d) => format!("{} {frame} {} crc=ok", d.sof, d.eof),
            None => frame.to_string(),
        }
    };
    Ok(vec![line])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iocb_length_rules() {
        assert!(
            decode_iocb(&[0u8; 63], DirArg::Request, false)
                .unwrap_err()
                .to_string()
                .contains("got 63 bytes")
        );
        assert!(decode_iocb(&[0u8; 65], DirArg::Request, false).is_err());
        let mut b = [0u8; 64];
        b[0] = 0xEE;
        assert_eq!(
            decode_iocb(&b, DirArg::Request, false)
                .unwrap_err()
                .to_string(),
            "unknown entry type 0xee"
        );
        b[0] = 0x12;
        assert!(decode_iocb(&b, DirArg::Response, false).unwrap()[0].starts_with("CTIO7-DONE"));
        assert!(
            decode_iocb(&b, DirArg::Request, true).unwrap()[0]
                .starts_with("{\"entry_type\":\"CTIO7\"")
        );
    }

    #[test]
    fn fcp_with_and_without_delimiters() {
        let mut f = [0u8; 48];
        f[..24].copy_from_slice(&[
            0x07, 0x01, 0x02, 0x03, 0x00, 0x0a, 0x0b, 0x0c, 0x08, 0x99, 0x00, 0x00, 0x01, 0x00,
            0x00, 0x00, 0x12, 0x34, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00,
        ]);
        assert!(decode_fcp(&f, false, false).unwrap()[0].ends_with("FCP_RSP status=0x00"));
        let mut d = [0u8; 60];
        DelimitedFrame::emit(rscst_fw::fc::Sof::I3, &f, rscst_fw::fc::Eof::TNeg, &mut d).unwrap();
        assert_eq!(d[52..56], [0xe7, 0x78, 0x48, 0x34]);
        let line = &decode_fcp(&d, true, false).unwrap()[0];
        assert!(
            line.starts_with("SOFi3 FC 0a0b0c>010203") && line.ends_with("EOFt- crc=ok"),
            "{line}"
        );
        let j: Json = serde_json::from_str(&decode_fcp(&d, true, true).unwrap()[0]).unwrap();
        assert_eq!(
            (j["crc"].as_u64(), j["crc_ok"].as_bool(), j["sof"].as_str()),
            (Some(0x344878E7), Some(true), Some("SOFi3"))
        );
        d[30] ^= 1;
        assert!(
            decode_fcp(&d, true, false)
                .unwrap_err()
                .to_string()
                .starts_with("CRC mismatch")
        );
        assert!(decode_fcp(&f[..20], false, false).is_err());
    }
}
