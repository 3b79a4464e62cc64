//! The trace: every register access, mailbox command, async event, IOCB and FC frame the
//! simulator sees, as typed [`TraceEvent`]s.
//!
//! * In memory: a bounded ring of the last [`TraceConfig::capacity`] events (older ones are
//!   counted and dropped, so a long benchmark never grows without bound).
//! * Streaming: every event as one text line to a [`std::io::Write`] sink
//!   ([`crate::Sim::set_trace_sink`]), and every frame to a [`PcapWriter`]
//!   ([`crate::Sim::set_pcap`]).
//! * Off: [`TraceConfig::enabled`] `false` costs one relaxed atomic load per would-be event.
//!
//! `Display` prints one line per event, e.g.
//! `[0.000012000] REG W regs+0x48 hccr = 0x50000000 SET_HOST_INT`. In stepped mode the text
//! of a run is a pure function of the seed (the determinism test compares it byte for byte).

use std::collections::VecDeque;
use std::fmt;
use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rscst_fw::fc::{Eof, FcFrameRepr, Sof};
use rscst_fw::mailbox::Mailboxes;
use rscst_fw::regs::IntType;
use rscst_fw::{HexBytes, PortId};

use crate::fault::InjectedFault;
use crate::iommu::IommuFault;
use crate::pcap::PcapWriter;
use crate::time::SimTime;
use crate::violation::ViolationKind;

/// A register BAR of the simulated function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bar {
    /// The `device_reg_24xx` block.
    Regs,
    /// The multi-queue register pages (27xx).
    Mq,
}

impl fmt::Display for Bar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Bar::Regs => "regs",
            Bar::Mq => "mq",
        })
    }
}

/// One of the three rings in host memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RingKind {
    /// Request queue (driver → firmware).
    Request,
    /// Response queue (firmware → driver).
    Response,
    /// ATIO queue (firmware → driver).
    Atio,
}

impl fmt::Display for RingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RingKind::Request => "req",
            RingKind::Response => "rsp",
            RingKind::Atio => "atio",
        })
    }
}

/// An FC frame as it crossed a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracedFrame {
    /// Sending port.
    pub from: PortId,
    /// Receiving port.
    pub to: PortId,
    /// Start of frame.
    pub sof: Sof,
    /// End of frame.
    pub eof: Eof,
    /// Header + payload.
    pub bytes: Vec<u8>,
    /// The CRC as transmitted (differs from the computed one if the frame was corrupted).
    pub crc: u32,
}

impl fmt::Display for TracedFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FRAME {} {} ", self.sof, self.eof)?;
        match FcFrameRepr::parse(&self.bytes) {
            Ok(r) => write!(f, "{r}")?,
            Err(e) => write!(
                f,
                "{}>{} undecodable ({e}) len={}",
                self.from,
                self.to,
                self.bytes.len()
            )?,
        }
        if rscst_fw::fc::crc32(&self.bytes) != self.crc {
            f.write_str(" BAD-CRC")?;
        }
        Ok(())
    }
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TraceKind {
    /// A register read by the driver.
    RegRead {
        /// BAR.
        bar: Bar,
        /// Byte offset.
        offset: u32,
        /// 16 or 32.
        width: u8,
        /// Value returned.
        value: u32,
    },
    /// A register write by the driver.
    RegWrite {
        /// BAR.
        bar: Bar,
        /// Byte offset.
        offset: u32,
        /// 16 or 32.
        width: u8,
        /// Value written.
        value: u32,
    },
    /// The firmware took a mailbox command (mb0..mb31 as written).
    MailboxCommand(Mailboxes),
    /// The firmware posted a mailbox completion.
    MailboxCompletion {
        /// Interrupt type (ROM or firmware, OK or failed).
        int_type: IntType,
        /// The output registers.
        regs: Mailboxes,
    },
    /// The firmware posted an asynchronous event (mb0..mb7).
    AsyncEvent([u16; 8]),
    /// The firmware raised a queue interrupt (`host_status` value).
    QueueInterrupt(u32),
    /// An IOCB slot the firmware fetched from the request ring.
    IocbIn {
        /// Ring.
        ring: RingKind,
        /// Slot index.
        index: u16,
        /// The 64 bytes.
        bytes: [u8; 64],
    },
    /// An IOCB slot the firmware wrote into the response or ATIO ring.
    IocbOut {
        /// Ring.
        ring: RingKind,
        /// Slot index.
        index: u16,
        /// The 64 bytes.
        bytes: [u8; 64],
    },
    /// A frame on the fabric.
    Frame(TracedFrame),
    /// A frame was discarded by its receiver (CRC error, no login, unknown exchange, ...).
    FrameDiscarded {
        /// Receiving port.
        at: PortId,
        /// Why.
        reason: &'static str,
    },
    /// A port's link went up or down.
    Link {
        /// The port.
        port: PortId,
        /// Up?
        up: bool,
    },
    /// A fault was injected.
    Fault(InjectedFault),
    /// The firmware's DMA hit an unmapped address.
    IommuFault(IommuFault),
    /// The driver broke an interface rule.
    Violation(ViolationKind),
    /// A chip-level state change (reset, boot, firmware start, halt).
    Chip(&'static str),
}

fn iocb_name(t: u8) -> &'static str {
    match t {
        0x04 => "MARKER",
        0x06 => "ATIO7",
        0x0A => "CONT_A64",
        0x0D => "IMMED_NOTIFY",
        0x0E => "NOTIFY_ACK",
        0x12 => "CTIO7",
        0x39 => "MBX_IOCB",
        0x52 => "LOGINOUT",
        0x54 => "ABTS_RECV",
        0x55 => "ABTS_RESP",
        0x7A => "CTIO_CRC2",
        _ => "IOCB",
    }
}

impl fmt::Display for TraceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceKind::RegRead {
                bar,
                offset,
                width,
                value,
            } => {
                write!(
                    f,
                    "REG R{width} {bar}+{offset:#04x} {} = {value:#x}",
                    reg_name(*bar, *offset)
                )
            }
            TraceKind::RegWrite {
                bar,
                offset,
                width,
                value,
            } => {
                write!(
                    f,
                    "REG W{width} {bar}+{offset:#04x} {} = {value:#x}",
                    reg_name(*bar, *offset)
                )?;
                if *bar == Bar::Regs && *offset == rscst_fw::regs::HCCR {
                    write!(f, " {}", rscst_fw::regs::HccrCommand::from(*value))?;
                }
                Ok(())
            }
            TraceKind::MailboxCommand(m) => write!(f, "MBX CMD {m}"),
            TraceKind::MailboxCompletion { int_type, regs } => {
                write!(f, "MBX DONE {int_type} {regs}")
            }
            TraceKind::AsyncEvent(mb) => {
                let ev = rscst_fw::async_event::AsyncEvent::parse(mb);
                write!(f, "{ev}")
            }
            TraceKind::QueueInterrupt(hs) => write!(f, "IRQ {}", rscst_fw::regs::HostStatus(*hs)),
            TraceKind::IocbIn { ring, index, bytes }
            | TraceKind::IocbOut { ring, index, bytes } => {
                let (tag, d) = if matches!(self, TraceKind::IocbIn { .. }) {
                    ("IN ", rscst_fw::iocb::Dir::Request)
                } else {
                    ("OUT", rscst_fw::iocb::Dir::Response)
                };
                write!(f, "IOCB {tag} {ring}[{index}] ")?;
                match rscst_fw::iocb::AnyEntry::parse(bytes, d) {
                    Ok(e) => write!(f, "{e}"),
                    Err(_) => write!(f, "{} {}", iocb_name(bytes[0]), HexBytes(bytes)),
                }
            }
            TraceKind::Frame(fr) => fr.fmt(f),
            TraceKind::FrameDiscarded { at, reason } => write!(f, "DISCARD at {at}: {reason}"),
            TraceKind::Link { port, up } => {
                write!(f, "LINK {port} {}", if *up { "UP" } else { "DOWN" })
            }
            TraceKind::Fault(x) => write!(f, "FAULT {x}"),
            TraceKind::IommuFault(x) => x.fmt(f),
            TraceKind::Violation(v) => write!(f, "VIOLATION {v}"),
            TraceKind::Chip(s) => write!(f, "CHIP {s}"),
        }
    }
}

fn reg_name(bar: Bar, offset: u32) -> &'static str {
    match bar {
        Bar::Regs => rscst_fw::regs::name(offset).unwrap_or("?"),
        Bar::Mq => match offset {
            rscst_fw::regs::mq::REQ_Q_IN => "mq.req_q_in",
            rscst_fw::regs::mq::REQ_Q_OUT => "mq.req_q_out",
            rscst_fw::regs::mq::RSP_Q_IN => "mq.rsp_q_in",
            rscst_fw::regs::mq::RSP_Q_OUT => "mq.rsp_q_out",
            rscst_fw::regs::mq::ATIO_Q_IN => "mq.atio_q_in",
            rscst_fw::regs::mq::ATIO_Q_OUT => "mq.atio_q_out",
            _ => "mq.?",
        },
    }
}

/// One trace event.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceEvent {
    /// When.
    pub time: SimTime,
    /// What.
    pub kind: TraceKind,
}

impl fmt::Display for TraceEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.time, self.kind)
    }
}

/// What the trace records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceConfig {
    /// Record events at all (frames still go to a pcap writer if one is set).
    pub enabled: bool,
    /// Record register reads and writes (the bulk of a trace; off keeps the rest).
    pub registers: bool,
    /// Events kept in memory (the oldest are dropped first).
    pub capacity: usize,
}

impl Default for TraceConfig {
    fn default() -> Self {
        TraceConfig {
            enabled: true,
            registers: true,
            capacity: 100_000,
        }
    }
}

impl TraceConfig {
    /// Nothing recorded (benchmarks).
    pub fn off() -> TraceConfig {
        TraceConfig {
            enabled: false,
            registers: false,
            capacity: 0,
        }
    }
}

type Sink = Box<dyn Write + Send>;

struct Inner {
    ring: VecDeque<TraceEvent>,
    capacity: usize,
    text: Option<Sink>,
    pcap: Option<PcapWriter<Sink>>,
    io_error: Option<String>,
}

/// The recorder shared by the register file (driver thread) and the model.
pub(crate) struct Tracer {
    enabled: AtomicBool,
    registers: AtomicBool,
    pcap_on: AtomicBool,
    total: AtomicU64,
    dropped: AtomicU64,
    inner: Mutex<Inner>,
}

impl Tracer {
    pub(crate) fn new(cfg: TraceConfig) -> Tracer {
        Tracer {
            enabled: AtomicBool::new(cfg.enabled),
            registers: AtomicBool::new(cfg.enabled && cfg.registers),
            pcap_on: AtomicBool::new(false),
            total: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            inner: Mutex::new(Inner {
                ring: VecDeque::with_capacity(cfg.capacity.min(4096)),
                capacity: cfg.capacity,
                text: None,
                pcap: None,
                io_error: None,
            }),
        }
    }

    pub(crate) fn configure(&self, cfg: TraceConfig) {
        self.enabled.store(cfg.enabled, Ordering::Relaxed);
        self.registers
            .store(cfg.enabled && cfg.registers, Ordering::Relaxed);
        if let Ok(mut g) = self.inner.lock() {
            g.capacity = cfg.capacity;
            while g.ring.len() > g.capacity {
                g.ring.pop_front();
            }
        }
    }

    #[inline]
    pub(crate) fn on(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    #[inline]
    pub(crate) fn registers_on(&self) -> bool {
        self.registers.load(Ordering::Relaxed)
    }

    #[inline]
    pub(crate) fn frames_wanted(&self) -> bool {
        self.on() || self.pcap_on.load(Ordering::Relaxed)
    }

    pub(crate) fn record(&self, time: SimTime, kind: TraceKind) {
        if !self.on() {
            return;
        }
        let ev = TraceEvent { time, kind };
        self.total.fetch_add(1, Ordering::Relaxed);
        let Ok(mut g) = self.inner.lock() else { return };
        if let Some(w) = g.text.as_mut()
            && let Err(e) = writeln!(w, "{ev}")
        {
            g.io_error = Some(e.to_string());
            g.text = None;
        }
        if g.capacity == 0 {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if g.ring.len() >= g.capacity {
            g.ring.pop_front();
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        g.ring.push_back(ev);
    }

    /// Records a frame: into the pcap stream (if any) and as an event (if enabled).
    pub(crate) fn frame(&self, time: SimTime, frame: TracedFrame) {
        if self.pcap_on.load(Ordering::Relaxed)
            && let Ok(mut g) = self.inner.lock()
            && let Some(p) = g.pcap.as_mut()
            && let Err(e) = p.write_frame(time, frame.sof, &frame.bytes, frame.crc, frame.eof)
        {
            g.io_error = Some(e.to_string());
            g.pcap = None;
            self.pcap_on.store(false, Ordering::Relaxed);
        }
        self.record(time, TraceKind::Frame(frame));
    }

    pub(crate) fn events(&self) -> Vec<TraceEvent> {
        self.inner
            .lock()
            .map(|g| g.ring.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub(crate) fn clear(&self) {
        if let Ok(mut g) = self.inner.lock() {
            g.ring.clear();
        }
    }

    pub(crate) fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub(crate) fn set_text_sink(&self, sink: Option<Sink>) {
        if let Ok(mut g) = self.inner.lock() {
            if let Some(mut old) = g.text.take() {
                let _ = old.flush();
            }
            g.text = sink;
        }
    }

    pub(crate) fn set_pcap(&self, pcap: Option<PcapWriter<Sink>>) -> Option<PcapWriter<Sink>> {
        let Ok(mut g) = self.inner.lock() else {
            return None;
        };
        self.pcap_on.store(pcap.is_some(), Ordering::Relaxed);
        std::mem::replace(&mut g.pcap, pcap)
    }

    pub(crate) fn flush(&self) {
        if let Ok(mut g) = self.inner.lock() {
            if let Some(w) = g.text.as_mut() {
                let _ = w.flush();
            }
            if let Some(p) = g.pcap.as_mut() {
                let _ = p.flush();
            }
        }
    }

    pub(crate) fn io_error(&self) -> Option<String> {
        self.inner.lock().ok().and_then(|g| g.io_error.clone())
    }
}
