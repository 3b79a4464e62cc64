//! `rscst trace`: read a recorded simulator trace (written by `rscst bench --trace`),
//! print its events one line each, or convert its frames to a pcap.
//!
//! # The trace file format (version 1)
//!
//! All integers little-endian.
//!
//! ```text
//! header   "RSCSTTRC" (8 bytes) | version u16 = 1 | flags u16 = 0 | reserved u32 = 0
//! record   tag u8 | body length u32 | body = time u64 (simulator ns) | payload
//! ```
//!
//! | tag | event | payload |
//! |---|---|---|
//! | 0x01 / 0x02 | register read / write | bar u8 (0 regs, 1 mq), width u8, offset u32, value u32 |
//! | 0x03 | mailbox command | mb0..mb31 (u16 each) |
//! | 0x04 | mailbox completion | interrupt type u8, mb0..mb31 |
//! | 0x05 | async event | mb0..mb7 |
//! | 0x06 | queue interrupt | host_status u32 |
//! | 0x07 / 0x08 | IOCB in / out | ring u8 (0 request, 1 response, 2 ATIO), slot u16, 64 bytes |
//! | 0x09 | FC frame | from u32, to u32, SOF u32, EOF u32, CRC as sent u32, header + payload |
//! | 0x0A | frame discarded | port u32, reason (UTF-8) |
//! | 0x0B | link change | port u32, up u8 |
//! | 0x0C | other (fault, IOMMU fault, violation, chip) | class u8 (1 fault, 2 IOMMU fault, 3 violation, 4 chip, 0 other), the event's text (UTF-8) |
//!
//! Typed records are rebuilt into the simulator's [`TraceEvent`]s, so `rscst trace FILE`
//! prints exactly what the simulator's own trace text says (`[time] event`); frames go
//! to a pcap (LINKTYPE_FC_2_WITH_FRAME_DELIMS, 225) through the simulator's
//! [`PcapWriter`], CRC as it was on the wire.

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use clap::Args;
use rscst_fw::PortId;
use rscst_fw::fc::{Eof, Sof};
use rscst_fw::mailbox::Mailboxes;
use rscst_fw::regs::IntType;
use rscst_sim::pcap::PcapWriter;
use rscst_sim::trace::{Bar, RingKind, TracedFrame};
use rscst_sim::{SimTime, TraceEvent, TraceKind};

use crate::CliError;

/// The file's first 8 bytes.
pub const MAGIC: &[u8; 8] = b"RSCSTTRC";
/// The format version this tool writes and reads.
pub const VERSION: u16 = 1;
/// Largest record body accepted (a frame is at most 2,148 bytes).
const MAX_BODY: u32 = 64 * 1024;

mod tag {
    pub const REG_READ: u8 = 0x01;
    pub const REG_WRITE: u8 = 0x02;
    pub const MBX_CMD: u8 = 0x03;
    pub const MBX_DONE: u8 = 0x04;
    pub const ASYNC: u8 = 0x05;
    pub const QUEUE_INT: u8 = 0x06;
    pub const IOCB_IN: u8 = 0x07;
    pub const IOCB_OUT: u8 = 0x08;
    pub const FRAME: u8 = 0x09;
    pub const DISCARD: u8 = 0x0A;
    pub const LINK: u8 = 0x0B;
    pub const TEXT: u8 = 0x0C;
}

/// Arguments of `rscst trace`.
#[derive(Debug, Args)]
pub struct TraceArgs {
    /// A trace recorded with `rscst bench --trace FILE`.
    pub file: PathBuf,
    /// Write the trace's FC frames to this pcap file (LINKTYPE 225) instead of printing
    /// the events.
    #[arg(long, value_name = "OUT")]
    pub pcap: Option<PathBuf>,
}

/// Runs `rscst trace`.
pub fn run(args: &TraceArgs) -> Result<(), CliError> {
    let name = args.file.display().to_string();
    let file = File::open(&args.file).map_err(|e| CliError(format!("{name}: {e}")))?;
    let mut reader = TraceReader::new(BufReader::new(file)).map_err(|e| e.at(&name))?;
    match &args.pcap {
        Some(out) => {
            let (events, frames) = to_pcap(&mut reader, out).map_err(|e| e.at(&name))?;
            println!(
                "{frames} frames of {events} events written to {}",
                out.display()
            );
        }
        None => {
            let stdout = io::stdout();
            let mut out = BufWriter::new(stdout.lock());
            while let Some(r) = reader.next_record().map_err(|e| e.at(&name))? {
                if let Err(e) = writeln!(out, "{r}") {
                    // A closed pipe (`| head`) ends the listing quietly.
                    if e.kind() == io::ErrorKind::BrokenPipe {
                        return Ok(());
                    }
                    return Err(CliError(format!("stdout: {e}")));
                }
            }
            out.flush().map_err(|e| CliError(format!("stdout: {e}")))?;
        }
    }
    Ok(())
}

fn to_pcap<R: Read>(reader: &mut TraceReader<R>, out: &Path) -> Result<(u64, u64), TraceError> {
    let file =
        File::create(out).map_err(|e| TraceError::Output(format!("{}: {e}", out.display())))?;
    let io_err = |e: io::Error| TraceError::Output(format!("{}: {e}", out.display()));
    let mut w = PcapWriter::new(BufWriter::new(file)).map_err(io_err)?;
    let mut events = 0;
    while let Some(r) = reader.next_record()? {
        events += 1;
        if let Record::Event(TraceEvent {
            time,
            kind: TraceKind::Frame(f),
        }) = &r
        {
            w.write_frame(*time, f.sof, &f.bytes, f.crc, f.eof)
                .map_err(|e| TraceError::Bad {
                    offset: reader.last_offset,
                    what: format!("frame not writable as pcap: {e}"),
                })?;
        }
    }
    let frames = w.frames();
    w.into_inner().map_err(io_err)?;
    Ok((events, frames))
}

/// What went wrong reading a trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceError {
    /// Reading the input failed.
    Io(String),
    /// The input is not a trace of a version this tool reads.
    NotATrace(String),
    /// A record is malformed.
    Bad {
        /// Byte offset of the record.
        offset: u64,
        /// What is wrong.
        what: String,
    },
    /// Writing the output failed.
    Output(String),
}

impl TraceError {
    fn at(self, name: &str) -> CliError {
        CliError(format!("{name}: {self}"))
    }
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceError::Io(e) => write!(f, "read error: {e}"),
            TraceError::NotATrace(w) => write!(f, "not an rscst trace: {w}"),
            TraceError::Bad { offset, what } => write!(f, "bad record at byte {offset}: {what}"),
            TraceError::Output(e) => write!(f, "output: {e}"),
        }
    }
}

impl std::error::Error for TraceError {}

/// One record of a trace.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// A typed simulator event.
    Event(TraceEvent),
    /// An event kept as its text (faults, IOMMU faults, violations, chip changes,
    /// discarded frames).
    Text {
        /// When.
        time: SimTime,
        /// The event's one-line text.
        text: String,
    },
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Record::Event(e) => e.fmt(f),
            Record::Text { time, text } => write!(f, "[{time}] {text}"),
        }
    }
}

/// Streams trace events into a file in the format above.
#[derive(Debug)]
pub struct TraceWriter<W: Write> {
    out: W,
    body: Vec<u8>,
    records: u64,
}

impl<W: Write> TraceWriter<W> {
    /// Writes the header.
    pub fn new(mut out: W) -> io::Result<TraceWriter<W>> {
        let mut h = [0u8; 16];
        h[..8].copy_from_slice(MAGIC);
        h[8..10].copy_from_slice(&VERSION.to_le_bytes());
        out.write_all(&h)?;
        Ok(TraceWriter {
            out,
            body: Vec::with_capacity(4096),
            records: 0,
        })
    }

    /// Records written.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Appends one event.
    pub fn write(&mut self, ev: &TraceEvent) -> io::Result<()> {
        let b = &mut self.body;
        b.clear();
        b.extend_from_slice(&ev.time.as_nanos().to_le_bytes());
        let tag = match &ev.kind {
            TraceKind::RegRead {
                bar,
                offset,
                width,
                value,
            }
            | TraceKind::RegWrite {
                bar,
                offset,
                width,
                value,
            } => {
                b.push(match bar {
                    Bar::Regs => 0,
                    Bar::Mq => 1,
                });
                b.push(*width);
                b.extend_from_slice(&offset.to_le_bytes());
                b.extend_from_slice(&value.to_le_bytes());
                if matches!(ev.kind, TraceKind::RegRead { .. }) {
                    tag::REG_READ
                } else {
                    tag::REG_WRITE
                }
            }
            TraceKind::MailboxCommand(m) => {
                put_words(b, &m.0);
                tag::MBX_CMD
            }
            TraceKind::MailboxCompletion { int_type, regs } => {
                b.push(int_type.raw());
                put_words(b, &regs.0);
                tag::MBX_DONE
            }
            TraceKind::AsyncEvent(mb) => {
                put_words(b, mb);
                tag::ASYNC
            }
            TraceKind::QueueInterrupt(hs) => {
                b.extend_from_slice(&hs.to_le_bytes());
                tag::QUEUE_INT
            }
            TraceKind::IocbIn { ring, index, bytes }
            | TraceKind::IocbOut { ring, index, bytes } => {
                b.push(match ring {
                    RingKind::Request => 0,
                    RingKind::Response => 1,
                    RingKind::Atio => 2,
                });
                b.extend_from_slice(&index.to_le_bytes());
                b.extend_from_slice(bytes);
                if matches!(ev.kind, TraceKind::IocbIn { .. }) {
                    tag::IOCB_IN
                } else {
                    tag::IOCB_OUT
                }
            }
            TraceKind::Frame(f) => {
                for w in [
                    f.from.get(),
                    f.to.get(),
                    u32::from(f.sof),
                    u32::from(f.eof),
                    f.crc,
                ] {
                    b.extend_from_slice(&w.to_le_bytes());
                }
                b.extend_from_slice(&f.bytes);
                tag::FRAME
            }
            TraceKind::FrameDiscarded { at, reason } => {
                b.extend_from_slice(&at.get().to_le_bytes());
                b.extend_from_slice(reason.as_bytes());
                tag::DISCARD
            }
            TraceKind::Link { port, up } => {
                b.extend_from_slice(&port.get().to_le_bytes());
                b.push(*up as u8);
                tag::LINK
            }
            other => {
                b.push(match other {
                    TraceKind::Fault(_) => 1,
                    TraceKind::IommuFault(_) => 2,
                    TraceKind::Violation(_) => 3,
                    TraceKind::Chip(_) => 4,
                    _ => 0,
                });
                b.extend_from_slice(other.to_string().as_bytes());
                tag::TEXT
            }
        };
        let len = u32::try_from(b.len())
            .ok()
            .filter(|&n| n <= MAX_BODY)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "trace event too large"))?;
        let mut h = [0u8; 5];
        h[0] = tag;
        h[1..].copy_from_slice(&len.to_le_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(b)?;
        self.records += 1;
        Ok(())
    }

    /// Flushes and returns the writer.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

fn put_words(b: &mut Vec<u8>, words: &[u16]) {
    for w in words {
        b.extend_from_slice(&w.to_le_bytes());
    }
}

/// Reads a trace record by record.
#[derive(Debug)]
pub struct TraceReader<R: Read> {
    input: R,
    offset: u64,
    last_offset: u64,
    body: Vec<u8>,
}

impl<R: Read> TraceReader<R> {
    /// Reads and checks the header.
    pub fn new(mut input: R) -> Result<TraceReader<R>, TraceError> {
        let mut h = [0u8; 16];
        let n = read_full(&mut input, &mut h)?;
        if n < 8 || &h[..8] != MAGIC {
            return Err(TraceError::NotATrace("bad magic".into()));
        }
        if n < 16 {
            return Err(TraceError::NotATrace("short header".into()));
        }
        let version = u16::from_le_bytes([h[8], h[9]]);
        if version != VERSION {
            return Err(TraceError::NotATrace(format!(
                "version {version} (this tool reads version {VERSION})"
            )));
        }
        Ok(TraceReader {
            input,
            offset: 16,
            last_offset: 16,
            body: Vec::new(),
        })
    }

    /// The next record, `None` at the end of the file.
    pub fn next_record(&mut self) -> Result<Option<Record>, TraceError> {
        let at = self.offset;
        self.last_offset = at;
        let bad = |what: String| TraceError::Bad { offset: at, what };
        let mut h = [0u8; 5];
        match read_full(&mut self.input, &mut h)? {
            0 => return Ok(None),
            5 => {}
            n => return Err(bad(format!("truncated record header ({n} of 5 bytes)"))),
        }
        let tag = h[0];
        let len = u32::from_le_bytes([h[1], h[2], h[3], h[4]]);
        if !(8..=MAX_BODY).contains(&len) {
            return Err(bad(format!(
                "record length {len} out of range 8..={MAX_BODY}"
            )));
        }
        self.body.resize(len as usize, 0);
        let n = read_full(&mut self.input, &mut self.body)?;
        if n < len as usize {
            return Err(bad(format!("truncated record ({n} of {len} bytes)")));
        }
        self.offset += 5 + u64::from(len);
        parse_body(tag, &self.body).map(Some).map_err(bad)
    }
}

fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<usize, TraceError> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(TraceError::Io(e.to_string())),
        }
    }
    Ok(n)
}

/// A cursor over a record body that reports short fields as errors.
struct Body<'a> {
    b: &'a [u8],
}

impl<'a> Body<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.b.len() < n {
            return Err(format!(
                "record too short ({} bytes left, {n} needed)",
                self.b.len()
            ));
        }
        let (x, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(x)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, String> {
        let x = self.take(2)?;
        Ok(u16::from_le_bytes([x[0], x[1]]))
    }
    fn u32(&mut self) -> Result<u32, String> {
        let x = self.take(4)?;
        Ok(u32::from_le_bytes([x[0], x[1], x[2], x[3]]))
    }
    fn u64(&mut self) -> Result<u64, String> {
        let x = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(x);
        Ok(u64::from_le_bytes(a))
    }
    fn words<const N: usize>(&mut self) -> Result<[u16; N], String> {
        let mut w = [0u16; N];
        for x in &mut w {
            *x = self.u16()?;
        }
        Ok(w)
    }
    fn port(&mut self) -> Result<PortId, String> {
        let v = self.u32()?;
        if v > 0x00FF_FFFF {
            return Err(format!("port id {v:#x} wider than 24 bits"));
        }
        Ok(PortId::new(v))
    }
    fn text(&mut self) -> Result<String, String> {
        let rest = std::mem::take(&mut self.b);
        String::from_utf8(rest.to_vec()).map_err(|_| "text is not UTF-8".to_string())
    }
    fn end(&self) -> Result<(), String> {
        if self.b.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{} unexpected bytes after the fields",
                self.b.len()
            ))
        }
    }
}

fn parse_body(tag: u8, body: &[u8]) -> Result<Record, String> {
    let mut b = Body { b: body };
    let time = SimTime::from_nanos(b.u64()?);
    let kind = match tag {
        tag::REG_READ | tag::REG_WRITE => {
            let bar = match b.u8()? {
                0 => Bar::Regs,
                1 => Bar::Mq,
                x => return Err(format!("unknown BAR {x}")),
            };
            let width = b.u8()?;
            let offset = b.u32()?;
            let value = b.u32()?;
            if tag == tag::REG_READ {
                TraceKind::RegRead {
                    bar,
                    offset,
                    width,
                    value,
                }
            } else {
                TraceKind::RegWrite {
                    bar,
                    offset,
                    width,
                    value,
                }
            }
        }
        tag::MBX_CMD => TraceKind::MailboxCommand(Mailboxes(b.words()?)),
        tag::MBX_DONE => TraceKind::MailboxCompletion {
            int_type: IntType::from(b.u8()?),
            regs: Mailboxes(b.words()?),
        },
        tag::ASYNC => TraceKind::AsyncEvent(b.words()?),
        tag::QUEUE_INT => TraceKind::QueueInterrupt(b.u32()?),
        tag::IOCB_IN | tag::IOCB_OUT => {
            let ring = match b.u8()? {
                0 => RingKind::Request,
                1 => RingKind::Response,
                2 => RingKind::Atio,
                x => return Err(format!("unknown ring {x}")),
            };
            let index = b.u16()?;
            let mut bytes = [0u8; 64];
            bytes.copy_from_slice(b.take(64)?);
            if tag == tag::IOCB_IN {
                TraceKind::IocbIn { ring, index, bytes }
            } else {
                TraceKind::IocbOut { ring, index, bytes }
            }
        }
        tag::FRAME => {
            let from = b.port()?;
            let to = b.port()?;
            let sof = Sof::from(b.u32()?);
            let eof = Eof::from(b.u32()?);
            let crc = b.u32()?;
            let bytes = b.take(b.b.len())?.to_vec();
            TraceKind::Frame(TracedFrame {
                from,
                to,
                sof,
                eof,
                bytes,
                crc,
            })
        }
        tag::DISCARD => {
            let at = b.port()?;
            let reason = b.text()?;
            return Ok(Record::Text {
                time,
                text: format!("DISCARD at {at}: {reason}"),
            });
        }
        tag::LINK => {
            let port = b.port()?;
            let up = match b.u8()? {
                0 => false,
                1 => true,
                x => return Err(format!("link state {x} is neither 0 nor 1")),
            };
            TraceKind::Link { port, up }
        }
        tag::TEXT => {
            let _class = b.u8()?;
            let text = b.text()?;
            return Ok(Record::Text { time, text });
        }
        t => return Err(format!("unknown record type {t:#04x}")),
    };
    b.end()?;
    Ok(Record::Event(TraceEvent { time, kind }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(ns: u64, kind: TraceKind) -> TraceEvent {
        TraceEvent {
            time: SimTime::from_nanos(ns),
            kind,
        }
    }

    fn sample() -> Vec<TraceEvent> {
        let mut iocb = [0u8; 64];
        iocb[0] = 0x12;
        iocb[1] = 1;
        let mut frame = vec![
            0x06, 0x01, 0x02, 0x03, 0, 0x0a, 0x0b, 0x0c, 0x08, 0x29, 0, 0,
        ];
        frame.resize(24 + 32, 0);
        let crc = rscst_fw::fc::crc32(&frame);
        vec![
            ev(
                1,
                TraceKind::RegWrite {
                    bar: Bar::Regs,
                    offset: 0x48,
                    width: 32,
                    value: 0x5000_0000,
                },
            ),
            ev(
                2,
                TraceKind::RegRead {
                    bar: Bar::Mq,
                    offset: 0x04,
                    width: 32,
                    value: 7,
                },
            ),
            ev(3, TraceKind::MailboxCommand(Mailboxes([0x69; 32]))),
            ev(
                4,
                TraceKind::MailboxCompletion {
                    int_type: IntType::from(0x10),
                    regs: Mailboxes([0x4000; 32]),
                },
            ),
            ev(5, TraceKind::AsyncEvent([0x8011, 0, 0, 0, 0, 0, 0, 0])),
            ev(6, TraceKind::QueueInterrupt(0x0001_8013)),
            ev(
                7,
                TraceKind::IocbIn {
                    ring: RingKind::Request,
                    index: 3,
                    bytes: iocb,
                },
            ),
            ev(
                8,
                TraceKind::IocbOut {
                    ring: RingKind::Atio,
                    index: 1023,
                    bytes: iocb,
                },
            ),
            ev(
                9,
                TraceKind::Frame(TracedFrame {
                    from: PortId::new(0x010200),
                    to: PortId::new(0x010100),
                    sof: Sof::I3,
                    eof: Eof::TNeg,
                    bytes: frame,
                    crc: crc ^ 1,
                }),
            ),
            ev(
                10,
                TraceKind::FrameDiscarded {
                    at: PortId::new(0x010100),
                    reason: "bad CRC",
                },
            ),
            ev(
                11,
                TraceKind::Link {
                    port: PortId::new(0x010100),
                    up: true,
                },
            ),
            ev(12, TraceKind::Chip("soft reset")),
        ]
    }

    fn roundtrip(events: &[TraceEvent]) -> Vec<u8> {
        let mut w = TraceWriter::new(Vec::new()).unwrap();
        for e in events {
            w.write(e).unwrap();
        }
        assert_eq!(w.records(), events.len() as u64);
        w.into_inner().unwrap()
    }

    fn read_all(bytes: &[u8]) -> Result<Vec<Record>, TraceError> {
        let mut r = TraceReader::new(bytes)?;
        let mut v = Vec::new();
        while let Some(x) = r.next_record()? {
            v.push(x);
        }
        Ok(v)
    }

    #[test]
    fn every_kind_round_trips_and_prints_as_the_simulator_does() {
        let events = sample();
        let bytes = roundtrip(&events);
        let back = read_all(&bytes).unwrap();
        assert_eq!(back.len(), events.len());
        for (a, b) in events.iter().zip(&back) {
            // Same text as the simulator's own trace line, typed where the kind allows.
            assert_eq!(a.to_string(), b.to_string());
            match (&a.kind, b) {
                (TraceKind::FrameDiscarded { .. } | TraceKind::Chip(_), Record::Text { .. }) => {}
                (_, Record::Event(e)) => assert_eq!(a, e),
                (k, r) => panic!("{k:?} came back as {r:?}"),
            }
        }
    }

    #[test]
    fn bad_input_is_an_error_value() {
        let good = roundtrip(&sample());
        assert!(matches!(
            TraceReader::new(&b"PCAPFILE0000000000"[..]),
            Err(TraceError::NotATrace(_))
        ));
        let mut v2 = good.clone();
        v2[8] = 2;
        assert!(matches!(
            TraceReader::new(&v2[..]),
            Err(TraceError::NotATrace(_))
        ));
        // Every truncation point is either a clean end (on a record boundary) or an error.
        let mut boundaries = vec![16];
        let mut at = 16;
        while at < good.len() {
            let len = u32::from_le_bytes(good[at + 1..at + 5].try_into().unwrap()) as usize;
            at += 5 + len;
            boundaries.push(at);
        }
        for cut in 16..good.len() {
            let r = read_all(&good[..cut]);
            if boundaries.contains(&cut) {
                assert!(r.is_ok(), "cut at {cut}");
            } else {
                assert!(
                    matches!(r, Err(TraceError::Bad { .. })),
                    "cut at {cut}: {r:?}"
                );
            }
        }
        // Unknown tag, length out of range, a field out of range.
        let mut t = good.clone();
        t[16] = 0x7F;
        assert!(
            read_all(&t)
                .unwrap_err()
                .to_string()
                .contains("unknown record type 0x7f")
        );
        let mut t = good.clone();
        t[17..21].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(
            read_all(&t)
                .unwrap_err()
                .to_string()
                .contains("out of range")
        );
        let mut t = good.clone();
        t[16 + 5 + 8] = 9; // BAR of the first register write
        assert!(
            read_all(&t)
                .unwrap_err()
                .to_string()
                .contains("unknown BAR 9")
        );
    }

    #[test]
    fn frames_go_to_a_pcap_the_simulator_reads_back() {
        let bytes = roundtrip(&sample());
        let dir = std::env::temp_dir().join(format!("rscst-trace-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("t.pcap");
        let mut r = TraceReader::new(&bytes[..]).unwrap();
        let (events, frames) = to_pcap(&mut r, &out).unwrap();
        assert_eq!((events, frames), (12, 1));
        let (lt, recs) = rscst_sim::pcap::read_pcap(&std::fs::read(&out).unwrap()).unwrap();
        assert_eq!(lt, rscst_sim::pcap::LINKTYPE_FC_2_WITH_FRAME_DELIMS);
        assert_eq!(recs.len(), 1);
        // SOFi3 first; the corrupted CRC is kept as it was on the wire.
        assert_eq!(&recs[0].data[..4], &[0xBC, 0xB5, 0x56, 0x56]);
        let parsed = rscst_fw::fc::frame::DelimitedFrame::parse(&recs[0].data).unwrap();
        assert!(!parsed.crc_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
