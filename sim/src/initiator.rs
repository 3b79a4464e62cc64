//! Simulated FC initiator ports: the traffic side of the fabric.
//!
//! This is the primary interface for anything that drives SCSI traffic at the simulated
//! target — scripted tests, the workload generator ([`crate::workload`]) and external
//! gateways (the iSCSI gateway turns each iSCSI session into one of these ports). An
//! initiator port
//!
//! * logs in to the fabric (FLOGI) when created, and to targets on request (PLOGI + PRLI),
//!   and out again (LOGO);
//! * sends FCP_CMND with any CDB (additional CDB included), task attribute, priority, CRN,
//!   LUN and FCP_DL ([`CommandSpec`]), task management functions ([`TmFunction`]) and ABTS;
//! * answers XFER_RDY with write data — given up front (moved in, no copy) or supplied per
//!   burst on request ([`InitiatorEvent::XferRdy`] → [`Control::supply_data`]);
//! * reports read data either collected into the result (default) or streamed frame by
//!   frame without a copy ([`InitiatorConfig::collect_data`] false →
//!   [`InitiatorEvent::DataIn`] borrowing the frame payload);
//! * reports status, sense, residual and FCP_RSP_INFO, and checks the data received against
//!   the residual (a lost data frame is a [`CommandError::DataMismatch`]);
//! * reacts to link events: RSCN, LOGO from the target, loss of the target
//!   ([`InitiatorEvent::LoggedOut`]), re-logging in when [`InitiatorConfig::auto_login`].
//!
//! Events go to the port's owner: a queue the test drains ([`crate::Sim::initiator_events`]),
//! an [`InitiatorHandler`] called synchronously inside the simulation (it may issue new
//! requests through the [`Control`] it gets), or a workload.

use core::fmt;
use core::time::Duration;
use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};

use rscst_fw::fc::els::{
    ElsOpcode, ElsRepr, LogoRepr, PrliPageRepr, PrliRepr, PrliResponse, PrliServiceParams,
    ServiceParamsRepr,
};
use rscst_fw::fc::fcp::SenseData;
use rscst_fw::fc::{
    Cdb, DataDir, Eof, FCtl, FcFrameRepr, FcHeaderRepr, FcPayload, FcType, FcpCmndRepr, FcpRspRepr,
    RCtl, Residual, RspCode, Sof, TaskAttr, TmFlags, TmFunction,
};
use rscst_fw::{Lun, OxId, PortId, RxId, WireError, Wwn};

use crate::InitiatorId;
use crate::fabric::Slot;
use crate::frame::Frame;
use crate::fxhash::FxHashMap;
use crate::sim::{Ctx, Event};
use crate::time::SimTime;

/// An initiator-local command tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tag(pub u64);

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tag#{}", self.0)
    }
}

/// Configuration of an initiator port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitiatorConfig {
    /// WWPN.
    pub wwpn: Wwn,
    /// WWNN.
    pub wwnn: Wwn,
    /// Largest frame payload this port sends and receives.
    pub max_payload: u16,
    /// A command not answered within this time is aborted (ABTS) and fails with
    /// [`CommandError::Timeout`].
    pub command_timeout: Duration,
    /// ELS (FLOGI/PLOGI/PRLI/LOGO) and ABTS answer timeout.
    pub els_timeout: Duration,
    /// Log in again by itself when a target it was logged in to logs it out or reappears.
    pub auto_login: bool,
    /// Collect read data into [`CommandResult::data`] (true) or stream it as
    /// [`InitiatorEvent::DataIn`] (false; needs a handler).
    pub collect_data: bool,
}

impl InitiatorConfig {
    /// Defaults with the given WWPN (WWNN derived).
    pub fn new(wwpn: u64) -> InitiatorConfig {
        InitiatorConfig {
            wwpn: Wwn::from_u64(wwpn),
            wwnn: Wwn::from_u64(wwpn & !0xF000_0000_0000_0000 | 0x2000_0000_0000_0000),
            max_payload: 2048,
            command_timeout: Duration::from_secs(20),
            els_timeout: Duration::from_secs(2),
            auto_login: false,
            collect_data: true,
        }
    }
}

/// One SCSI command to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    /// FCP_LUN.
    pub lun: Lun,
    /// The CDB (16 + 4·n bytes in FCP form; shorter CDBs are padded).
    pub cdb: Cdb,
    /// Task attribute.
    pub attr: TaskAttr,
    /// Priority (0–15).
    pub priority: u8,
    /// Command reference number.
    pub crn: u8,
    /// Direction (RDDATA / WRDATA).
    pub dir: DataDir,
    /// FCP_DL.
    pub fcp_dl: u32,
    /// Write data given up front (sent as XFER_RDYs ask for it). `None` for a write means
    /// [`InitiatorEvent::XferRdy`] asks the owner for each burst.
    pub data_out: Option<Vec<u8>>,
}

impl CommandSpec {
    /// A command with no data.
    pub fn no_data(lun: Lun, cdb: &[u8]) -> Result<CommandSpec, WireError> {
        Ok(CommandSpec {
            lun,
            cdb: Cdb::new(cdb)?,
            attr: TaskAttr::Simple,
            priority: 0,
            crn: 0,
            dir: DataDir::None,
            fcp_dl: 0,
            data_out: None,
        })
    }

    /// A read of `len` bytes.
    pub fn read(lun: Lun, cdb: &[u8], len: u32) -> Result<CommandSpec, WireError> {
        Ok(CommandSpec {
            dir: DataDir::DataIn,
            fcp_dl: len,
            ..CommandSpec::no_data(lun, cdb)?
        })
    }

    /// A write of `data` (FCP_DL = its length).
    pub fn write(lun: Lun, cdb: &[u8], data: Vec<u8>) -> Result<CommandSpec, WireError> {
        Ok(CommandSpec {
            dir: DataDir::DataOut,
            fcp_dl: data.len() as u32,
            data_out: Some(data),
            ..CommandSpec::no_data(lun, cdb)?
        })
    }

    /// A write of `len` bytes whose data the owner supplies per XFER_RDY.
    pub fn write_on_demand(lun: Lun, cdb: &[u8], len: u32) -> Result<CommandSpec, WireError> {
        Ok(CommandSpec {
            dir: DataDir::DataOut,
            fcp_dl: len,
            ..CommandSpec::no_data(lun, cdb)?
        })
    }

    /// With a task attribute.
    pub fn with_attr(mut self, attr: TaskAttr) -> CommandSpec {
        self.attr = attr;
        self
    }
}

/// The outcome of a command that got an FCP_RSP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandResult {
    /// SCSI status.
    pub status: u8,
    /// Residual as reported.
    pub residual: Residual,
    /// Sense data.
    pub sense: SenseData,
    /// RSP_CODE if FCP_RSP_INFO was present.
    pub rsp_code: Option<RspCode>,
    /// FCP_RSP flags other than the length-valid and residual ones (FCP_CONF_REQ, ...).
    pub rsp_flags: rscst_fw::fc::FcpRspFlags,
    /// The read data (collect mode; empty when streaming or for writes).
    pub data: Vec<u8>,
    /// Data bytes received (reads) or sent (writes).
    pub transferred: u32,
    /// From FCP_CMND to FCP_RSP.
    pub latency: Duration,
}

/// The result in an [`InitiatorEvent::Completed`]; dereferences to [`CommandResult`],
/// like a `Cow`.
///
/// An [`InitiatorHandler`] (and a workload) gets it lent: no allocation, and the simulator
/// reuses its storage — the read buffer included — for a later command of the port.
/// Queued events ([`crate::Sim::initiator_events`], [`InitiatorEvent::into_owned`]) own
/// it.
#[derive(Clone, PartialEq, Eq)]
pub enum ResultRef<'a> {
    /// Lent for the duration of the handler call.
    Borrowed(&'a CommandResult),
    /// Owned.
    Owned(Box<CommandResult>),
}

impl ResultRef<'_> {
    /// The result itself (copied if lent).
    pub fn into_owned(self) -> CommandResult {
        match self {
            ResultRef::Borrowed(r) => r.clone(),
            ResultRef::Owned(b) => *b,
        }
    }

    /// An owned `ResultRef` (copied if lent).
    pub fn into_static(self) -> ResultRef<'static> {
        match self {
            ResultRef::Borrowed(r) => ResultRef::Owned(Box::new(r.clone())),
            ResultRef::Owned(b) => ResultRef::Owned(b),
        }
    }
}

impl core::ops::Deref for ResultRef<'_> {
    type Target = CommandResult;
    fn deref(&self) -> &CommandResult {
        match self {
            ResultRef::Borrowed(r) => r,
            ResultRef::Owned(b) => b,
        }
    }
}

impl fmt::Debug for ResultRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

impl CommandResult {
    fn empty() -> CommandResult {
        CommandResult {
            status: 0,
            residual: Residual::None,
            sense: SenseData::new(),
            rsp_code: None,
            rsp_flags: rscst_fw::fc::FcpRspFlags::empty(),
            data: Vec::new(),
            transferred: 0,
            latency: Duration::ZERO,
        }
    }
}

/// Why a command did not complete with a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandError {
    /// No answer within [`InitiatorConfig::command_timeout`] (an ABTS was sent).
    Timeout,
    /// Aborted by the owner's ABTS (BA_ACC received).
    Aborted,
    /// The target went away (link down, RSCN) or rebooted.
    TargetGone,
    /// The target logged this port out, or this port logged out.
    LoggedOut,
    /// Not logged in to the target when submitted.
    NotLoggedIn,
    /// The data received does not match FCP_DL minus the residual.
    DataMismatch {
        /// Bytes FCP_RSP implies.
        expected: u32,
        /// Bytes received.
        received: u32,
    },
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::Timeout => f.write_str("timeout"),
            CommandError::Aborted => f.write_str("aborted"),
            CommandError::TargetGone => f.write_str("target gone"),
            CommandError::LoggedOut => f.write_str("logged out"),
            CommandError::NotLoggedIn => f.write_str("not logged in"),
            CommandError::DataMismatch { expected, received } => {
                write!(
                    f,
                    "data mismatch: expected {expected} bytes, received {received}"
                )
            }
        }
    }
}

/// Why a login with a target ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogoutReason {
    /// This port sent LOGO.
    Requested,
    /// The target sent LOGO (or rejected FCP traffic with it).
    ByTarget,
    /// The target left the fabric or came back without our login (RSCN).
    TargetGone,
    /// This port's own link went down.
    LinkDown,
}

/// What an initiator port reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitiatorEvent<'a> {
    /// Fabric login done; the port has its N_Port ID.
    FabricLogin {
        /// Assigned N_Port ID.
        port_id: PortId,
    },
    /// A PLOGI + PRLI finished.
    LoginDone {
        /// The target.
        target: PortId,
        /// Accepted (both ELS answered LS_ACC) or not.
        ok: bool,
    },
    /// A login ended.
    LoggedOut {
        /// The target.
        target: PortId,
        /// Why.
        reason: LogoutReason,
    },
    /// The fabric reported a change of `port`.
    Rscn {
        /// The affected port.
        port: PortId,
    },
    /// The target is ready for `len` bytes of write data at `offset`; answer with
    /// [`Control::supply_data`] (only for commands submitted without data).
    XferRdy {
        /// The command.
        tag: Tag,
        /// Relative offset.
        offset: u32,
        /// Burst length.
        len: u32,
    },
    /// Read data (streaming mode): `data` at relative `offset`.
    DataIn {
        /// The command.
        tag: Tag,
        /// Relative offset.
        offset: u32,
        /// The frame payload.
        data: Cow<'a, [u8]>,
    },
    /// A command got its FCP_RSP.
    Completed {
        /// The command.
        tag: Tag,
        /// Status, sense, residual, data.
        result: ResultRef<'a>,
    },
    /// A task management request got its FCP_RSP.
    TmfDone {
        /// The request.
        tag: Tag,
        /// RSP_CODE (`None` if the target sent no FCP_RSP_INFO).
        code: Option<RspCode>,
    },
    /// A command ended without status.
    Failed {
        /// The command.
        tag: Tag,
        /// Why.
        error: CommandError,
    },
    /// The answer to [`Control::abort`]: BA_ACC (true) or BA_RJT (false).
    AbortDone {
        /// The command.
        tag: Tag,
        /// BA_ACC?
        accepted: bool,
    },
}

impl InitiatorEvent<'_> {
    /// An owned copy (streamed data is copied).
    pub fn into_owned(self) -> InitiatorEvent<'static> {
        match self {
            InitiatorEvent::DataIn { tag, offset, data } => InitiatorEvent::DataIn {
                tag,
                offset,
                data: Cow::Owned(data.into_owned()),
            },
            InitiatorEvent::FabricLogin { port_id } => InitiatorEvent::FabricLogin { port_id },
            InitiatorEvent::LoginDone { target, ok } => InitiatorEvent::LoginDone { target, ok },
            InitiatorEvent::LoggedOut { target, reason } => {
                InitiatorEvent::LoggedOut { target, reason }
            }
            InitiatorEvent::Rscn { port } => InitiatorEvent::Rscn { port },
            InitiatorEvent::XferRdy { tag, offset, len } => {
                InitiatorEvent::XferRdy { tag, offset, len }
            }
            InitiatorEvent::Completed { tag, result } => InitiatorEvent::Completed {
                tag,
                result: result.into_static(),
            },
            InitiatorEvent::TmfDone { tag, code } => InitiatorEvent::TmfDone { tag, code },
            InitiatorEvent::Failed { tag, error } => InitiatorEvent::Failed { tag, error },
            InitiatorEvent::AbortDone { tag, accepted } => {
                InitiatorEvent::AbortDone { tag, accepted }
            }
        }
    }

    /// The command tag the event is about, if any.
    pub fn tag(&self) -> Option<Tag> {
        match self {
            InitiatorEvent::XferRdy { tag, .. }
            | InitiatorEvent::DataIn { tag, .. }
            | InitiatorEvent::Completed { tag, .. }
            | InitiatorEvent::TmfDone { tag, .. }
            | InitiatorEvent::Failed { tag, .. }
            | InitiatorEvent::AbortDone { tag, .. } => Some(*tag),
            _ => None,
        }
    }
}

/// Why a request was refused at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitError {
    /// No such initiator.
    NoSuchInitiator,
    /// Not logged in to the fabric yet.
    Offline,
    /// Not logged in to the target.
    NotLoggedIn,
    /// Every OX_ID is in use.
    NoExchange,
    /// The command is malformed (e.g. write data longer than FCP_DL).
    Invalid(&'static str),
    /// No such command (or it is finished).
    NoSuchCommand,
}

impl fmt::Display for SubmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubmitError::NoSuchInitiator => f.write_str("no such initiator"),
            SubmitError::Offline => f.write_str("initiator not logged in to the fabric"),
            SubmitError::NotLoggedIn => f.write_str("not logged in to the target"),
            SubmitError::NoExchange => f.write_str("no free OX_ID"),
            SubmitError::Invalid(w) => write!(f, "invalid request: {w}"),
            SubmitError::NoSuchCommand => f.write_str("no such command"),
        }
    }
}

impl std::error::Error for SubmitError {}

/// Counters of one initiator port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InitiatorStats {
    /// Commands sent (TMFs included).
    pub commands: u64,
    /// Commands completed with an FCP_RSP.
    pub completed: u64,
    /// Commands failed (timeout, abort, target gone, data mismatch, ...).
    pub failed: u64,
    /// ABTS sent.
    pub abts: u64,
    /// Frames received and discarded (unknown exchange, CRC error, ...).
    pub discarded: u64,
    /// Read bytes received.
    pub bytes_in: u64,
    /// Write bytes sent.
    pub bytes_out: u64,
}

/// Something that receives an initiator's events inside the simulation.
pub trait InitiatorHandler: Send {
    /// Called for every event; `ctl` issues new requests on the same port.
    fn on_event(&mut self, ctl: &mut Control<'_>, ev: InitiatorEvent<'_>);

    /// Read data of a command in streaming mode as the whole frame that carried it. A
    /// handler may keep the frame (return `None`) to pass the payload on later without
    /// copying it, and give the buffer back with [`crate::Sim::recycle_data_frame`];
    /// the default hands the payload to [`InitiatorHandler::on_event`] as
    /// [`InitiatorEvent::DataIn`] and returns the frame.
    fn on_data_frame(
        &mut self,
        ctl: &mut Control<'_>,
        tag: Tag,
        offset: u32,
        frame: crate::frame::DataFrame,
    ) -> Option<crate::frame::DataFrame> {
        self.on_event(
            ctl,
            InitiatorEvent::DataIn {
                tag,
                offset,
                data: Cow::Borrowed(frame.payload()),
            },
        );
        Some(frame)
    }
}

/// Requests on one initiator port, from a handler or the test.
pub struct Control<'a> {
    pub(crate) sim: &'a mut crate::sim::Sim,
    pub(crate) id: InitiatorId,
}

impl Control<'_> {
    /// This port.
    pub fn id(&self) -> InitiatorId {
        self.id
    }

    /// Simulated time.
    pub fn now(&self) -> SimTime {
        self.sim.now()
    }

    /// This port's N_Port ID (zero before fabric login).
    pub fn port_id(&self) -> PortId {
        self.sim.initiator_port_id(self.id).unwrap_or_default()
    }

    /// PLOGI + PRLI to `target` ([`InitiatorEvent::LoginDone`] follows).
    pub fn login(&mut self, target: PortId) -> Result<(), SubmitError> {
        self.sim.initiator_login(self.id, target)
    }

    /// LOGO to `target` ([`InitiatorEvent::LoggedOut`] follows; outstanding commands fail).
    pub fn logout(&mut self, target: PortId) -> Result<(), SubmitError> {
        self.sim.initiator_logout(self.id, target)
    }

    /// Sends a command.
    pub fn command(&mut self, target: PortId, spec: CommandSpec) -> Result<Tag, SubmitError> {
        self.sim.initiator_command(self.id, target, spec)
    }

    /// Sends a task management request.
    pub fn tmf(
        &mut self,
        target: PortId,
        lun: Lun,
        function: TmFunction,
    ) -> Result<Tag, SubmitError> {
        self.sim.initiator_tmf(self.id, target, lun, function)
    }

    /// Sends ABTS for a command.
    pub fn abort(&mut self, tag: Tag) -> Result<(), SubmitError> {
        self.sim.initiator_abort(self.id, tag)
    }

    /// Write data for an [`InitiatorEvent::XferRdy`] (`last` = the final piece of that
    /// burst).
    pub fn supply_data(
        &mut self,
        tag: Tag,
        offset: u32,
        data: &[u8],
        last: bool,
    ) -> Result<(), SubmitError> {
        self.sim
            .initiator_supply_data(self.id, tag, offset, data, last)
    }

    /// Commands outstanding on this port.
    pub fn outstanding(&self) -> usize {
        self.sim.initiator_outstanding(self.id)
    }
}

/// Who gets a port's events.
pub(crate) enum Owner {
    Queue,
    Handler(Box<dyn InitiatorHandler>),
    Workload(usize),
    /// Temporarily taken out while it runs.
    Busy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TLogin {
    PlogiSent,
    PrliSent,
    LoggedIn,
    LogoSent,
}

#[derive(Debug, Clone)]
struct TargetState {
    state: TLogin,
    rx_size: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ElsKind {
    Flogi,
    Plogi,
    Prli,
    Logo,
    Abts { tag: Tag, user: bool },
}

#[derive(Debug, Clone)]
struct PendingEls {
    kind: ElsKind,
    target: PortId,
    serial: u64,
}

#[derive(Debug)]
struct Cmd {
    tag: Tag,
    target: PortId,
    rx: u16,
    dir: DataDir,
    fcp_dl: u32,
    tmf: bool,
    data_out: Option<Vec<u8>>,
    read: Vec<u8>,
    /// Distinct read bytes received.
    received: crate::ranges::Ranges,
    sent: u32,
    issued: SimTime,
    seq_id: u8,
    /// An XFER_RDY waiting for owner-supplied data: (offset, len, supplied so far).
    burst: Option<(u32, u32, u32)>,
    /// Finished (status, failure or abort reported); the OX_ID stays reserved while an
    /// ABTS is open.
    done: bool,
    abts_open: bool,
    serial: u64,
    /// When the command times out (unless done).
    deadline: SimTime,
    /// Read data goes into `read` (else it is streamed as [`InitiatorEvent::DataIn`]).
    collect: bool,
}

/// Timers of initiator ports.
#[derive(Debug, Clone)]
pub(crate) enum IniTimer {
    Flogi,
    Els {
        ox: u16,
        serial: u64,
    },
    /// The earliest command deadline (one timer per port, not one per command).
    Commands,
    Relogin {
        target: PortId,
    },
}

/// Outcome of a received frame that the simulator must pass on with the frame's bytes.
pub(crate) enum FrameOutcome {
    None,
    /// Streamed data: the frame payload at `offset` belongs to `tag`.
    DataIn {
        tag: Tag,
        offset: u32,
    },
}

/// One simulated initiator N_Port.
pub(crate) struct Initiator {
    pub id: InitiatorId,
    pub slot: Slot,
    pub cfg: InitiatorConfig,
    pub port_id: PortId,
    pub online: bool,
    targets: BTreeMap<PortId, TargetState>,
    /// Targets to log in to again when `auto_login`.
    wanted: BTreeMap<PortId, ()>,
    /// By OX_ID; a tag carries its command's OX_ID (`Initiator::ox_of`).
    cmds: FxHashMap<u16, Cmd>,
    els: BTreeMap<u16, PendingEls>,
    /// Open ABTS (they share the command's OX_ID).
    els_abts: BTreeMap<u16, PendingEls>,
    next_ox: u16,
    next_tag: u64,
    serial: u64,
    /// When the scheduled [`IniTimer::Commands`] fires (at most one is pending).
    cmd_timer: Option<SimTime>,
    /// Data buffers of finished commands, for the next ones.
    bufs: Vec<Vec<u8>>,
    /// Result storage lent to the owner and given back (see [`ResultRef`]): boxes, as
    /// the events carry them.
    #[allow(clippy::vec_box)]
    results: Vec<Box<CommandResult>>,
    pub owner: Owner,
    pub events: VecDeque<InitiatorEvent<'static>>,
    pub stats: InitiatorStats,
    /// Events produced while handling something, delivered by the simulator afterwards.
    pub pending: Vec<InitiatorEvent<'static>>,
}

impl Initiator {
    pub(crate) fn new(id: InitiatorId, slot: Slot, cfg: InitiatorConfig) -> Initiator {
        Initiator {
            id,
            slot,
            cfg,
            port_id: PortId::new(0),
            online: false,
            targets: BTreeMap::new(),
            wanted: BTreeMap::new(),
            cmds: FxHashMap::default(),
            els: BTreeMap::new(),
            els_abts: BTreeMap::new(),
            next_ox: 0,
            next_tag: 0,
            serial: 0,
            cmd_timer: None,
            bufs: Vec::new(),
            results: Vec::new(),
            owner: Owner::Queue,
            events: VecDeque::new(),
            stats: InitiatorStats::default(),
            pending: Vec::new(),
        }
    }

    fn timer(&self, ctx: &mut Ctx<'_>, after: Duration, t: IniTimer) {
        ctx.queue.push(ctx.now + after, Event::Ini(self.id, t));
    }

    fn next_serial(&mut self) -> u64 {
        self.serial += 1;
        self.serial
    }

    fn alloc_ox(&mut self) -> Option<u16> {
        for _ in 0..0xFFFF {
            self.next_ox = self.next_ox.wrapping_add(1);
            if self.next_ox == 0xFFFF {
                continue;
            }
            if !self.cmds.contains_key(&self.next_ox) && !self.els.contains_key(&self.next_ox) {
                return Some(self.next_ox);
            }
        }
        None
    }

    fn emit(&mut self, ev: InitiatorEvent<'static>) {
        self.pending.push(ev);
    }

    /// Up to `n` tags of unfinished commands (oldest first).
    pub(crate) fn open_tags(&self, n: usize) -> Vec<Tag> {
        let mut v: Vec<(u64, Tag)> = self
            .cmds
            .values()
            .filter(|c| !c.done && !c.tmf)
            .map(|c| (c.serial, c.tag))
            .collect();
        v.sort_unstable();
        v.into_iter().take(n).map(|(_, t)| t).collect()
    }

    /// A buffer for read data or write data (storage of a finished command's).
    pub(crate) fn buffer(&mut self) -> Vec<u8> {
        let mut b = self.bufs.pop().unwrap_or_default();
        b.clear();
        b
    }

    /// Keeps a finished command's buffer for the next one.
    pub(crate) fn recycle(&mut self, b: Vec<u8>) {
        if self.bufs.len() < 128 && b.capacity() > 0 && b.capacity() <= 4 << 20 {
            self.bufs.push(b);
        }
    }

    /// Takes back a result lent to the owner: its storage and read buffer serve again.
    pub(crate) fn recycle_result(&mut self, mut r: Box<CommandResult>) {
        self.recycle(std::mem::take(&mut r.data));
        if self.results.len() < 128 {
            self.results.push(r);
        }
    }

    /// Forgets command `ox` (its buffers are kept for the next ones).
    fn release(&mut self, ox: u16) {
        if let Some(c) = self.cmds.remove(&ox) {
            self.recycle(c.read);
            if let Some(d) = c.data_out {
                self.recycle(d);
            }
        }
    }

    /// Commands not finished yet.
    pub(crate) fn outstanding(&self) -> usize {
        self.cmds.values().filter(|c| !c.done).count()
    }

    pub(crate) fn logged_in(&self, target: PortId) -> bool {
        self.targets
            .get(&target)
            .is_some_and(|t| t.state == TLogin::LoggedIn)
    }

    fn header(
        &self,
        r_ctl: RCtl,
        fc_type: FcType,
        d_id: PortId,
        f_ctl: FCtl,
        ox: u16,
    ) -> FcHeaderRepr {
        FcHeaderRepr::new(r_ctl, fc_type, d_id, self.port_id, f_ctl, OxId(ox))
    }

    fn send_els(
        &mut self,
        ctx: &mut Ctx<'_>,
        d_id: PortId,
        els: ElsRepr,
        kind: ElsKind,
    ) -> Option<u16> {
        let ox = self.alloc_ox()?;
        let h = self.header(RCtl::ElsReq, FcType::Els, d_id, FCtl::FCP_CMND, ox);
        let repr = FcFrameRepr {
            header: h,
            payload: FcPayload::Els(els),
        };
        let f = ctx.pool.build(Sof::I3, Eof::TNeg, &repr).ok()?;
        let serial = self.next_serial();
        self.els.insert(
            ox,
            PendingEls {
                kind,
                target: d_id,
                serial,
            },
        );
        self.timer(ctx, self.cfg.els_timeout, IniTimer::Els { ox, serial });
        ctx.send(self.slot, f);
        Some(ox)
    }

    fn service_params(&self, opcode: ElsOpcode) -> ServiceParamsRepr {
        ServiceParamsRepr::n_port(opcode, self.cfg.wwpn, self.cfg.wwnn, self.cfg.max_payload)
    }

    pub(crate) fn start_flogi(&mut self, ctx: &mut Ctx<'_>) {
        self.port_id = PortId::new(0);
        self.online = false;
        let sp = self.service_params(ElsOpcode::Flogi);
        self.send_els(
            ctx,
            PortId::FABRIC_LOGIN,
            ElsRepr::ServiceParams(sp),
            ElsKind::Flogi,
        );
    }

    pub(crate) fn login(&mut self, ctx: &mut Ctx<'_>, target: PortId) -> Result<(), SubmitError> {
        if !self.online {
            return Err(SubmitError::Offline);
        }
        self.wanted.insert(target, ());
        let sp = self.service_params(ElsOpcode::Plogi);
        self.send_els(ctx, target, ElsRepr::ServiceParams(sp), ElsKind::Plogi)
            .ok_or(SubmitError::NoExchange)?;
        self.targets.insert(
            target,
            TargetState {
                state: TLogin::PlogiSent,
                rx_size: 2048,
            },
        );
        Ok(())
    }

    pub(crate) fn logout(&mut self, ctx: &mut Ctx<'_>, target: PortId) -> Result<(), SubmitError> {
        if !self.online {
            return Err(SubmitError::Offline);
        }
        self.wanted.remove(&target);
        let logo = LogoRepr {
            port_id: self.port_id,
            port_name: self.cfg.wwpn,
        };
        self.send_els(ctx, target, ElsRepr::Logo(logo), ElsKind::Logo)
            .ok_or(SubmitError::NoExchange)?;
        if let Some(t) = self.targets.get_mut(&target) {
            t.state = TLogin::LogoSent;
        }
        Ok(())
    }

    fn new_cmd(
        &mut self,
        target: PortId,
        ox: u16,
        dir: DataDir,
        fcp_dl: u32,
        tmf: bool,
        now: SimTime,
    ) -> Tag {
        // Unique per port (a counter) and naming its OX_ID (the low 16 bits).
        self.next_tag += 1;
        let tag = Tag(self.next_tag << 16 | ox as u64);
        let serial = self.next_serial();
        self.cmds.insert(
            ox,
            Cmd {
                tag,
                target,
                rx: 0xFFFF,
                dir,
                fcp_dl,
                tmf,
                data_out: None,
                read: Vec::new(),
                received: crate::ranges::Ranges::default(),
                sent: 0,
                issued: now,
                seq_id: 0,
                burst: None,
                done: false,
                abts_open: false,
                serial,
                deadline: now + self.cfg.command_timeout,
                collect: false,
            },
        );
        tag
    }

    /// The OX_ID of the unfinished (or ABTS-held) command `tag`.
    fn ox_of(&self, tag: Tag) -> Option<u16> {
        let ox = tag.0 as u16;
        self.cmds.get(&ox).filter(|c| c.tag == tag).map(|_| ox)
    }

    /// Makes sure the command timer fires by `deadline` (command timeouts are one port
    /// constant, so deadlines only grow: at most one timer is ever pending).
    fn arm_cmd_timer(&mut self, ctx: &mut Ctx<'_>, deadline: SimTime) {
        if self.cmd_timer.is_none_or(|t| deadline < t) {
            self.cmd_timer = Some(deadline);
            ctx.queue
                .push(deadline, Event::Ini(self.id, IniTimer::Commands));
        }
    }

    /// The command timer fired: commands past their deadline are aborted (ABTS) and fail
    /// with [`CommandError::Timeout`], oldest first; the timer is armed for the next one.
    fn command_timeouts(&mut self, ctx: &mut Ctx<'_>) {
        if self.cmd_timer.is_some_and(|t| t <= ctx.now) {
            self.cmd_timer = None;
        }
        let now = ctx.now;
        let mut expired: Vec<(SimTime, u64, u16)> = self
            .cmds
            .iter()
            .filter(|(_, c)| !c.done && c.deadline <= now)
            .map(|(&ox, c)| (c.deadline, c.serial, ox))
            .collect();
        expired.sort_unstable();
        for (_, _, ox) in expired {
            let Some(c) = self.cmds.get(&ox) else {
                continue;
            };
            let tag = c.tag;
            let _ = self.send_abts(ctx, ox, false);
            self.finish(
                ox,
                InitiatorEvent::Failed {
                    tag,
                    error: CommandError::Timeout,
                },
            );
        }
        let next = self
            .cmds
            .values()
            .filter(|c| !c.done)
            .map(|c| c.deadline)
            .min();
        if let Some(d) = next {
            self.arm_cmd_timer(ctx, d);
        }
    }

    fn send_fcp_cmnd(
        &mut self,
        ctx: &mut Ctx<'_>,
        target: PortId,
        ox: u16,
        fcp: FcpCmndRepr,
    ) -> Result<(), SubmitError> {
        let h = self.header(RCtl::UnsolCmd, FcType::Fcp, target, FCtl::FCP_CMND, ox);
        let repr = FcFrameRepr {
            header: h,
            payload: FcPayload::FcpCmnd(fcp),
        };
        let f = ctx
            .pool
            .build(Sof::I3, Eof::TNeg, &repr)
            .map_err(|_| SubmitError::Invalid("FCP_CMND"))?;
        ctx.send(self.slot, f);
        self.stats.commands += 1;
        Ok(())
    }

    /// Sends a command; `collect` overrides [`InitiatorConfig::collect_data`] for it.
    pub(crate) fn command(
        &mut self,
        ctx: &mut Ctx<'_>,
        target: PortId,
        spec: &mut CommandSpec,
        collect: Option<bool>,
    ) -> Result<Tag, SubmitError> {
        if !self.online {
            return Err(SubmitError::Offline);
        }
        if !self.logged_in(target) {
            return Err(SubmitError::NotLoggedIn);
        }
        if let Some(d) = &spec.data_out
            && (d.len() as u64 > spec.fcp_dl as u64 || spec.dir != DataDir::DataOut)
        {
            return Err(SubmitError::Invalid(
                "write data longer than FCP_DL or not a write",
            ));
        }
        let ox = self.alloc_ox().ok_or(SubmitError::NoExchange)?;
        let tag = self.new_cmd(target, ox, spec.dir, spec.fcp_dl, false, ctx.now);
        let collect = collect.unwrap_or(self.cfg.collect_data) && spec.dir.rddata();
        let read = if collect {
            let mut b = self.buffer();
            b.resize(spec.fcp_dl as usize, 0);
            b
        } else {
            Vec::new()
        };
        if let Some(c) = self.cmds.get_mut(&ox) {
            c.data_out = spec.data_out.take();
            c.collect = collect;
            c.read = read;
        }
        let fcp = FcpCmndRepr {
            lun: spec.lun,
            crn: spec.crn,
            task_attr: spec.attr,
            priority: spec.priority & 0xF,
            tmf: TmFlags::empty(),
            dir: spec.dir,
            cdb: spec.cdb,
            data_len: spec.fcp_dl,
        };
        self.send_fcp_cmnd(ctx, target, ox, fcp)?;
        if let Some(d) = self.cmds.get(&ox).map(|c| c.deadline) {
            self.arm_cmd_timer(ctx, d);
        }
        Ok(tag)
    }

    pub(crate) fn tmf(
        &mut self,
        ctx: &mut Ctx<'_>,
        target: PortId,
        lun: Lun,
        function: TmFunction,
    ) -> Result<Tag, SubmitError> {
        if !self.online {
            return Err(SubmitError::Offline);
        }
        if !self.logged_in(target) {
            return Err(SubmitError::NotLoggedIn);
        }
        let ox = self.alloc_ox().ok_or(SubmitError::NoExchange)?;
        let fcp = FcpCmndRepr::task_management(lun, function);
        let tag = self.new_cmd(target, ox, DataDir::None, 0, true, ctx.now);
        self.send_fcp_cmnd(ctx, target, ox, fcp)?;
        if let Some(d) = self.cmds.get(&ox).map(|c| c.deadline) {
            self.arm_cmd_timer(ctx, d);
        }
        Ok(tag)
    }

    fn send_abts(&mut self, ctx: &mut Ctx<'_>, ox: u16, user: bool) -> Result<(), SubmitError> {
        let Some(c) = self.cmds.get_mut(&ox) else {
            return Err(SubmitError::NoSuchCommand);
        };
        if c.abts_open {
            return Ok(());
        }
        c.abts_open = true;
        let (tag, target, rx) = (c.tag, c.target, c.rx);
        let mut h = self.header(
            RCtl::Abts,
            FcType::Bls,
            target,
            FCtl::from_bits_retain(0x09_0000),
            ox,
        );
        h.rx_id = RxId(rx);
        let repr = FcFrameRepr {
            header: h,
            payload: FcPayload::Abts,
        };
        let f = ctx
            .pool
            .build(Sof::I3, Eof::TNeg, &repr)
            .map_err(|_| SubmitError::Invalid("ABTS"))?;
        ctx.send(self.slot, f);
        self.stats.abts += 1;
        // The ABTS shares the command's OX_ID; its timer is an ELS timer on that OX_ID.
        let serial = self.next_serial();
        self.els_abts.insert(
            ox,
            PendingEls {
                kind: ElsKind::Abts { tag, user },
                target,
                serial,
            },
        );
        self.timer(ctx, self.cfg.els_timeout, IniTimer::Els { ox, serial });
        Ok(())
    }

    pub(crate) fn abort(&mut self, ctx: &mut Ctx<'_>, tag: Tag) -> Result<(), SubmitError> {
        let ox = self.ox_of(tag).ok_or(SubmitError::NoSuchCommand)?;
        self.send_abts(ctx, ox, true)
    }

    /// Sends write data frames for `[offset, offset + data.len())`; `end` marks the last
    /// frame of the burst.
    fn send_data(&mut self, ctx: &mut Ctx<'_>, ox: u16, offset: u32, data: &[u8], end: bool) {
        let max = self.max_payload_to(self.cmds.get(&ox).map(|c| c.target).unwrap_or_default());
        let Some(c) = self.cmds.get_mut(&ox) else {
            return;
        };
        let (target, rx) = (c.target, c.rx);
        let seq = c.seq_id;
        let mut sent = 0usize;
        let mut seq_cnt = 0u16;
        while sent < data.len() || (data.is_empty() && sent == 0 && end) {
            let n = (data.len() - sent).min(max);
            let last = sent + n == data.len();
            let f_ctl = if last && end {
                FCtl::FCP_DATA_OUT_LAST
            } else {
                FCtl::FCP_DATA_OUT
            };
            let mut h = FcHeaderRepr::new(
                RCtl::SolData,
                FcType::Fcp,
                target,
                self.port_id,
                f_ctl,
                OxId(ox),
            );
            h.rx_id = RxId(rx);
            h.seq_id = seq;
            h.seq_cnt = seq_cnt;
            h.parameter = offset.wrapping_add(sent as u32);
            let Ok(mut f) = ctx.pool.build_data(
                Sof::class3(seq_cnt == 0),
                Eof::for_frame(last && end),
                &h,
                n,
            ) else {
                return;
            };
            f.bytes[24..24 + n].copy_from_slice(&data[sent..sent + n]);
            ctx.send(self.slot, f);
            sent += n;
            seq_cnt = seq_cnt.wrapping_add(1);
            if n == 0 {
                break;
            }
        }
        self.stats.bytes_out += data.len() as u64;
        if let Some(c) = self.cmds.get_mut(&ox) {
            c.sent += data.len() as u32;
            if end {
                c.seq_id = c.seq_id.wrapping_add(1);
            }
        }
    }

    fn max_payload_to(&self, target: PortId) -> usize {
        let t = self.targets.get(&target).map(|t| t.rx_size).unwrap_or(2048);
        (self.cfg.max_payload.min(t) as usize).max(256)
    }

    pub(crate) fn supply_data(
        &mut self,
        ctx: &mut Ctx<'_>,
        tag: Tag,
        offset: u32,
        data: &[u8],
        last: bool,
    ) -> Result<(), SubmitError> {
        let ox = self.ox_of(tag).ok_or(SubmitError::NoSuchCommand)?;
        let c = self.cmds.get_mut(&ox).ok_or(SubmitError::NoSuchCommand)?;
        let Some((ro, len, got)) = c.burst else {
            return Err(SubmitError::Invalid("no XFER_RDY outstanding"));
        };
        if offset != ro + got || got as u64 + data.len() as u64 > len as u64 {
            return Err(SubmitError::Invalid("data outside the requested burst"));
        }
        let total = got + data.len() as u32;
        let end = last || total == len;
        c.burst = if end { None } else { Some((ro, len, total)) };
        self.send_data(ctx, ox, offset, data, end);
        Ok(())
    }

    fn finish(&mut self, ox: u16, ev: InitiatorEvent<'static>) {
        if let Some(c) = self.cmds.get_mut(&ox) {
            c.done = true;
            if !c.abts_open {
                self.release(ox);
            }
        }
        match &ev {
            InitiatorEvent::Completed { .. } | InitiatorEvent::TmfDone { .. } => {
                self.stats.completed += 1
            }
            InitiatorEvent::Failed { .. } => self.stats.failed += 1,
            _ => {}
        }
        self.emit(ev);
    }

    /// Fails every open command to `target` (or all).
    fn fail_all(&mut self, target: Option<PortId>, error: CommandError) {
        let mut oxs: Vec<u16> = self
            .cmds
            .iter()
            .filter(|(_, c)| !c.done && target.is_none_or(|t| t == c.target))
            .map(|(o, _)| *o)
            .collect();
        oxs.sort_unstable();
        for ox in oxs {
            if let Some(c) = self.cmds.get_mut(&ox) {
                c.abts_open = false; // the exchange is gone with the login
                let tag = c.tag;
                self.finish(ox, InitiatorEvent::Failed { tag, error });
            }
        }
        // Commands that finished but still had an ABTS open: release them too.
        let mut stale: Vec<u16> = self
            .cmds
            .iter()
            .filter(|(_, c)| c.done && target.is_none_or(|t| t == c.target))
            .map(|(o, _)| *o)
            .collect();
        stale.sort_unstable();
        for ox in stale {
            self.release(ox);
            self.els_abts.remove(&ox);
        }
    }

    fn lose_target(
        &mut self,
        ctx: &mut Ctx<'_>,
        target: PortId,
        reason: LogoutReason,
        error: CommandError,
    ) {
        let was = self.targets.remove(&target).is_some();
        self.fail_all(Some(target), error);
        if was {
            self.emit(InitiatorEvent::LoggedOut { target, reason });
        }
        if self.cfg.auto_login
            && self.wanted.contains_key(&target)
            && reason != LogoutReason::Requested
        {
            self.timer(ctx, Duration::from_millis(1), IniTimer::Relogin { target });
        }
    }

    pub(crate) fn on_timer(&mut self, ctx: &mut Ctx<'_>, t: IniTimer) {
        match t {
            IniTimer::Flogi => self.start_flogi(ctx),
            IniTimer::Relogin { target } => {
                if self.online
                    && !self.targets.contains_key(&target)
                    && self.wanted.contains_key(&target)
                {
                    let _ = self.login(ctx, target);
                }
            }
            IniTimer::Commands => self.command_timeouts(ctx),
            IniTimer::Els { ox, serial } => {
                if let Some(p) = self.els_abts.get(&ox)
                    && p.serial == serial
                {
                    // ABTS unanswered: give the exchange up.
                    let p = self.els_abts.remove(&ox);
                    if let Some(c) = self.cmds.get_mut(&ox) {
                        c.abts_open = false;
                        if c.done {
                            self.release(ox);
                        }
                    }
                    if let Some(PendingEls {
                        kind: ElsKind::Abts { tag, user: true },
                        ..
                    }) = p
                    {
                        self.emit(InitiatorEvent::AbortDone {
                            tag,
                            accepted: false,
                        });
                    }
                    return;
                }
                let Some(p) = self.els.get(&ox) else { return };
                if p.serial != serial {
                    return;
                }
                let p = self.els.remove(&ox);
                match p.map(|p| (p.kind, p.target)) {
                    Some((ElsKind::Flogi, _)) => {
                        self.timer(ctx, Duration::from_millis(10), IniTimer::Flogi)
                    }
                    Some((ElsKind::Plogi | ElsKind::Prli, target)) => {
                        self.targets.remove(&target);
                        self.emit(InitiatorEvent::LoginDone { target, ok: false });
                    }
                    Some((ElsKind::Logo, target)) => {
                        self.lose_target(
                            ctx,
                            target,
                            LogoutReason::Requested,
                            CommandError::LoggedOut,
                        );
                    }
                    _ => {}
                }
            }
        }
    }

    /// The port's link went down (or the fabric logged it out).
    pub(crate) fn link_down(&mut self, ctx: &mut Ctx<'_>) {
        self.online = false;
        let targets: Vec<PortId> = self.targets.keys().copied().collect();
        for t in targets {
            self.lose_target(ctx, t, LogoutReason::LinkDown, CommandError::TargetGone);
        }
        self.els.clear();
    }

    /// RSCN for `port`; `present` = the port is in the name server now.
    pub(crate) fn rscn(&mut self, ctx: &mut Ctx<'_>, port: PortId, present: bool) {
        self.emit(InitiatorEvent::Rscn { port });
        if self.targets.contains_key(&port) {
            // Gone, or back without remembering us: the login is void either way.
            self.lose_target(
                ctx,
                port,
                LogoutReason::TargetGone,
                CommandError::TargetGone,
            );
        } else if present && self.cfg.auto_login && self.wanted.contains_key(&port) {
            self.timer(
                ctx,
                Duration::from_millis(1),
                IniTimer::Relogin { target: port },
            );
        }
    }

    pub(crate) fn on_frame(&mut self, ctx: &mut Ctx<'_>, frame: &Frame) -> FrameOutcome {
        if !frame.crc_ok() {
            self.stats.discarded += 1;
            ctx.discard(self.port_id, "CRC error");
            return FrameOutcome::None;
        }
        let Ok(h) = frame.header() else {
            return FrameOutcome::None;
        };
        let payload = frame.payload();
        match (h.r_ctl, h.fc_type) {
            (RCtl::ElsRep, FcType::Els) => self.els_reply(ctx, &h, payload),
            (RCtl::ElsReq, FcType::Els) => self.els_request(ctx, &h, payload),
            (RCtl::DataDesc, FcType::Fcp) => self.xfer_rdy(ctx, &h, payload),
            (RCtl::SolData, FcType::Fcp) => return self.data_in(&h, payload),
            (RCtl::CmdStatus, FcType::Fcp) => self.fcp_rsp(ctx, &h, payload),
            (RCtl::BaAcc | RCtl::BaRjt, FcType::Bls) => self.bls_reply(&h),
            _ => {
                self.stats.discarded += 1;
                ctx.discard(self.port_id, "initiator: frame not handled");
            }
        }
        FrameOutcome::None
    }

    fn els_reply(&mut self, ctx: &mut Ctx<'_>, h: &FcHeaderRepr, payload: &[u8]) {
        let Some(p) = self.els.remove(&h.ox_id.0) else {
            self.stats.discarded += 1;
            return;
        };
        let els = ElsRepr::parse(payload).ok();
        let acc = els.as_ref().is_some_and(|e| e.opcode() == ElsOpcode::LsAcc);
        match p.kind {
            ElsKind::Flogi => {
                if acc {
                    self.port_id = h.d_id;
                    self.online = true;
                    self.emit(InitiatorEvent::FabricLogin { port_id: h.d_id });
                    let wanted: Vec<PortId> = self.wanted.keys().copied().collect();
                    for t in wanted {
                        if self.cfg.auto_login {
                            let _ = self.login(ctx, t);
                        }
                    }
                } else {
                    self.timer(ctx, Duration::from_millis(10), IniTimer::Flogi);
                }
            }
            ElsKind::Plogi => {
                if let (true, Some(ElsRepr::ServiceParams(sp))) = (acc, els) {
                    if let Some(t) = self.targets.get_mut(&p.target) {
                        t.rx_size = sp.class3().rx_data_field_size.clamp(256, 2112);
                        t.state = TLogin::PrliSent;
                    }
                    let page = PrliPageRepr::fcp(
                        PrliResponse::None,
                        PrliServiceParams::INITIATOR_FUNCTION
                            | PrliServiceParams::READ_XFER_RDY_DISABLED,
                    );
                    let prli = PrliRepr {
                        opcode: ElsOpcode::Prli,
                        page,
                    };
                    if self
                        .send_els(ctx, p.target, ElsRepr::Prli(prli), ElsKind::Prli)
                        .is_none()
                    {
                        self.targets.remove(&p.target);
                        self.emit(InitiatorEvent::LoginDone {
                            target: p.target,
                            ok: false,
                        });
                    }
                } else {
                    self.targets.remove(&p.target);
                    self.emit(InitiatorEvent::LoginDone {
                        target: p.target,
                        ok: false,
                    });
                }
            }
            ElsKind::Prli => {
                let ok = matches!(els, Some(ElsRepr::Prli(r)) if acc && r.page.response == PrliResponse::Accepted);
                if ok {
                    if let Some(t) = self.targets.get_mut(&p.target) {
                        t.state = TLogin::LoggedIn;
                    }
                } else {
                    self.targets.remove(&p.target);
                }
                self.emit(InitiatorEvent::LoginDone {
                    target: p.target,
                    ok,
                });
            }
            ElsKind::Logo => self.lose_target(
                ctx,
                p.target,
                LogoutReason::Requested,
                CommandError::LoggedOut,
            ),
            ElsKind::Abts { .. } => {}
        }
    }

    fn els_request(&mut self, ctx: &mut Ctx<'_>, h: &FcHeaderRepr, payload: &[u8]) {
        let els = ElsRepr::parse(payload).ok();
        let reply = |me: &mut Initiator, ctx: &mut Ctx<'_>, els: ElsRepr| {
            let mut rh = h.reply(RCtl::ElsRep, FcType::Els, FCtl::BLS_RESPONSE);
            rh.rx_id = RxId(0x7000 | (me.serial as u16 & 0x0FFF));
            let repr = FcFrameRepr {
                header: rh,
                payload: FcPayload::Els(els),
            };
            if let Ok(f) = ctx.pool.build(Sof::I3, Eof::TNeg, &repr) {
                ctx.send(me.slot, f);
            }
        };
        let acc = ElsRepr::Other {
            opcode: ElsOpcode::LsAcc,
            len: 4,
        };
        match els {
            Some(ElsRepr::Rscn(_)) => {
                // Handled by the simulator (it knows the name server); just accept here.
                reply(self, ctx, acc);
            }
            Some(ElsRepr::Logo(_)) => {
                reply(self, ctx, acc);
                self.lose_target(ctx, h.s_id, LogoutReason::ByTarget, CommandError::LoggedOut);
            }
            Some(ElsRepr::ServiceParams(sp)) if sp.opcode == ElsOpcode::Plogi => {
                // A target logging in to us (e.g. before an explicit LOGO): accept.
                let mine = self.service_params(ElsOpcode::LsAcc);
                reply(self, ctx, ElsRepr::ServiceParams(mine));
            }
            Some(ElsRepr::Adisc(_)) | Some(ElsRepr::Prli(_)) | Some(ElsRepr::Scr(_)) => {
                reply(self, ctx, acc)
            }
            _ => {
                let rjt = rscst_fw::fc::els::LsRjtRepr {
                    reason: rscst_fw::fc::els::LsRjtReason::NotSupported,
                    explanation: rscst_fw::fc::els::LsRjtExplanation::None,
                    vendor: 0,
                };
                reply(self, ctx, ElsRepr::LsRjt(rjt));
            }
        }
    }

    fn xfer_rdy(&mut self, ctx: &mut Ctx<'_>, h: &FcHeaderRepr, payload: &[u8]) {
        let Ok(x) = rscst_fw::fc::fcp::FcpXferRdyRepr::parse(
            &match rscst_fw::fc::FcpXferRdy::new_checked(payload) {
                Ok(v) => v,
                Err(_) => {
                    self.stats.discarded += 1;
                    return;
                }
            },
        ) else {
            return;
        };
        let Some(c) = self.cmds.get_mut(&h.ox_id.0) else {
            self.stats.discarded += 1;
            return;
        };
        if c.done || c.dir != DataDir::DataOut {
            self.stats.discarded += 1;
            return;
        }
        c.rx = h.rx_id.0;
        let tag = c.tag;
        let (ro, len) = (x.relative_offset, x.burst_len);
        if ro as u64 + len as u64 > c.fcp_dl as u64 {
            // A burst beyond FCP_DL: send what exists (the target sees a short transfer).
        }
        match c.data_out.take() {
            Some(data) => {
                let end = (ro as usize).saturating_add(len as usize).min(data.len());
                let start = (ro as usize).min(end);
                let ox = h.ox_id.0;
                self.send_data(ctx, ox, ro, &data[start..end], true);
                if let Some(c) = self.cmds.get_mut(&ox) {
                    c.data_out = Some(data);
                }
            }
            None => {
                c.burst = Some((ro, len, 0));
                self.emit(InitiatorEvent::XferRdy {
                    tag,
                    offset: ro,
                    len,
                });
            }
        }
    }

    fn data_in(&mut self, h: &FcHeaderRepr, payload: &[u8]) -> FrameOutcome {
        let Some(c) = self.cmds.get_mut(&h.ox_id.0) else {
            self.stats.discarded += 1;
            return FrameOutcome::None;
        };
        if c.done || !c.dir.rddata() {
            self.stats.discarded += 1;
            return FrameOutcome::None;
        }
        c.rx = h.rx_id.0;
        let off = h.parameter as usize;
        let end = off.saturating_add(payload.len());
        if end > c.fcp_dl as usize {
            self.stats.discarded += 1;
            return FrameOutcome::None;
        }
        c.received.add(off as u32, end as u32);
        self.stats.bytes_in += payload.len() as u64;
        if c.collect {
            if let Some(dst) = c.read.get_mut(off..end) {
                dst.copy_from_slice(payload);
            }
            FrameOutcome::None
        } else {
            FrameOutcome::DataIn {
                tag: c.tag,
                offset: h.parameter,
            }
        }
    }

    fn fcp_rsp(&mut self, ctx: &mut Ctx<'_>, h: &FcHeaderRepr, payload: &[u8]) {
        let ox = h.ox_id.0;
        let Some(c) = self.cmds.get_mut(&ox) else {
            self.stats.discarded += 1;
            return;
        };
        if c.done {
            self.stats.discarded += 1;
            return;
        }
        let Ok(rsp) = FcpRspRepr::parse_bytes(payload) else {
            self.stats.discarded += 1;
            ctx.discard(self.port_id, "malformed FCP_RSP");
            return;
        };
        let tag = c.tag;
        if c.tmf {
            return self.finish(
                ox,
                InitiatorEvent::TmfDone {
                    tag,
                    code: rsp.rsp_code,
                },
            );
        }
        // The data actually moved must agree with FCP_DL and the residual.
        let moved = if c.dir.rddata() {
            c.received.total()
        } else {
            c.sent
        };
        let expected = match rsp.residual {
            Residual::Under(n) => c.fcp_dl.saturating_sub(n),
            Residual::Over(_) | Residual::None => c.fcp_dl,
        };
        let status_ok_for_data = rsp.scsi_status == 0 || c.dir.rddata();
        if c.dir.rddata() && moved != expected && status_ok_for_data && rsp.scsi_status == 0 {
            let received = moved;
            return self.finish(
                ox,
                InitiatorEvent::Failed {
                    tag,
                    error: CommandError::DataMismatch { expected, received },
                },
            );
        }
        let latency = ctx.now.since(c.issued);
        let mut data = std::mem::take(&mut c.read);
        data.truncate(moved.min(c.fcp_dl) as usize);
        let mut result = self
            .results
            .pop()
            .unwrap_or_else(|| Box::new(CommandResult::empty()));
        // Field by field: the storage is reused, no temporary of the whole result.
        let r = &mut *result;
        r.status = rsp.scsi_status;
        r.residual = rsp.residual;
        r.sense = rsp.sense;
        r.rsp_code = rsp.rsp_code;
        r.rsp_flags = rsp.flags;
        r.data = data;
        r.transferred = moved;
        r.latency = latency;
        self.finish(
            ox,
            InitiatorEvent::Completed {
                tag,
                result: ResultRef::Owned(result),
            },
        );
    }

    fn bls_reply(&mut self, h: &FcHeaderRepr) {
        let ox = h.ox_id.0;
        let Some(p) = self.els_abts.remove(&ox) else {
            self.stats.discarded += 1;
            return;
        };
        let accepted = h.r_ctl == RCtl::BaAcc;
        let ElsKind::Abts { tag, user } = p.kind else {
            return;
        };
        if let Some(c) = self.cmds.get_mut(&ox) {
            c.abts_open = false;
            let done = c.done;
            if accepted && !done {
                self.finish(
                    ox,
                    InitiatorEvent::Failed {
                        tag,
                        error: CommandError::Aborted,
                    },
                );
            } else if done {
                self.release(ox);
            }
        }
        if user {
            self.emit(InitiatorEvent::AbortDone { tag, accepted });
        }
    }
}
