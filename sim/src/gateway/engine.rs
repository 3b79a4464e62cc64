//! The gateway's state machine: sessions ↔ initiator ports, tasks ↔ FC exchanges (tags),
//! TMFs ↔ FCP task management or ABTS. It runs where the simulation runs (inside
//! [`Sim`] calls and initiator-event handlers) and reports to the portal through a
//! [`Sink`], which the run mode drains.

use crate::fxhash::FxHashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use rscst_fw::fc::{DataDir, Residual as FcResidual, RspCode, TaskAttr as FcAttr, TmFunction};
use rscst_fw::{Lun as FcLun, PortId, Wwn};

use super::{GatewayConfig, GatewayStats, initiator_wwnn, initiator_wwpn};
use crate::InitiatorId;
use crate::frame::DataFrame;
use crate::initiator::{
    CommandError, CommandSpec, Control, InitiatorConfig, InitiatorEvent, InitiatorHandler,
    LogoutReason, SubmitError, Tag,
};
use crate::iscsi::wire::{
    Isid, LoginStatus, Lun, Residual, TaskAttr, TmfFunction, TmfResponseCode,
};
use crate::iscsi::{Command, DataDirection, LoginId, NexusId, NexusLoss, TaskId, TaskMgmt, TmfId};
use crate::sim::Sim;

/// SCSI status bytes (SAM-5 §5.3).
const CHECK_CONDITION: u8 = 0x02;
const BUSY: u8 = 0x08;
const TASK_SET_FULL: u8 = 0x28;

/// Where the engine's answers go (the portal's [`crate::iscsi::SanEvents`], later).
pub(crate) trait Sink: Send {
    fn login_done(&mut self, login: LoginId, result: Result<NexusId, LoginStatus>);
    fn ready_to_transfer(&mut self, task: TaskId, offset: u32, len: u32);
    fn data_in(&mut self, task: TaskId, offset: u32, data: &[u8]);
    /// Read data as the frame that carried it: a sink that keeps the frame (to pass the
    /// payload on without a copy) returns `None`. The default copies the payload
    /// ([`Sink::data_in`]) and returns the frame.
    fn data_in_frame(&mut self, task: TaskId, offset: u32, frame: DataFrame) -> Option<DataFrame> {
        self.data_in(task, offset, frame.payload());
        Some(frame)
    }
    fn status(&mut self, task: TaskId, status: u8, sense: &[u8], residual: Residual);
    fn tmf_done(&mut self, tmf: TmfId, response: TmfResponseCode);
}

/// An owned login request (the portal's [`crate::iscsi::SessionLogin`] without borrows).
#[derive(Debug, Clone)]
pub(crate) struct LoginReq {
    pub login: LoginId,
    pub initiator_name: String,
    pub isid: Isid,
}

/// Fixed-format sense data (SPC-5 §4.4.3) with the given key, ASC and ASCQ.
pub(crate) fn fixed_sense(key: u8, asc: u8, ascq: u8) -> [u8; 18] {
    let mut s = [0u8; 18];
    s[0] = 0x70;
    s[2] = key;
    s[7] = 10;
    s[12] = asc;
    s[13] = ascq;
    s
}

/// Initiator events that arrived while the engine was busy (a request of ours made the
/// simulation call a handler): handled at the end of the current engine call.
#[derive(Default)]
pub(crate) struct Backlog {
    flag: AtomicBool,
    events: Mutex<Vec<(InitiatorId, InitiatorEvent<'static>)>>,
}

impl Backlog {
    fn push(&self, id: InitiatorId, ev: InitiatorEvent<'static>) {
        if let Ok(mut q) = self.events.lock() {
            q.push((id, ev));
            self.flag.store(true, Ordering::Release);
        }
    }

    /// Moves the waiting events into `out` (empty on entry) and leaves `out`'s old
    /// buffer in the backlog, so that neither side allocates in steady state.
    fn take_into(&self, out: &mut Vec<(InitiatorId, InitiatorEvent<'static>)>) {
        if !self.flag.swap(false, Ordering::AcqRel) {
            return;
        }
        if let Ok(mut q) = self.events.lock() {
            std::mem::swap(&mut *q, out);
        }
    }
}

/// The FC login state of an initiator port towards the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FcLogin {
    Out,
    PlogiSent,
    In,
    LogoSent,
}

#[derive(Debug)]
struct Port {
    ini: InitiatorId,
    wwpn: Wwn,
    /// Logged in to the fabric.
    online: bool,
    fc: FcLogin,
    /// The session using the port.
    session: Option<NexusId>,
    /// A session waiting for the current one to end (reinstatement: same WWPN).
    next: Option<NexusId>,
    last_used: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the port (fabric login, or the previous session's LOGO).
    Waiting,
    /// PLOGI + PRLI sent.
    LoggingIn,
    /// In full feature phase.
    Active,
    /// LOGO sent (or to be sent once the PLOGI in flight ends).
    Closing,
}

#[derive(Debug)]
struct Task {
    id: TaskId,
    lun: Lun,
    /// ABORT TASK in progress: its TMF.
    abort: Option<TmfId>,
    /// The portal no longer wants anything about this task.
    zombie: bool,
    /// The FC command ended (status forwarded) while an ABTS was outstanding.
    done: bool,
}

#[derive(Debug)]
struct Tmf {
    id: TmfId,
    function: TmfFunction,
    lun: Lun,
}

#[derive(Debug)]
struct Session {
    port: usize,
    login: LoginId,
    phase: Phase,
    /// The target the session logged in to.
    target: PortId,
    /// The FC login was lost under a live session (the port logs in again by itself).
    fc_lost: bool,
    tasks: FxHashMap<Tag, Task>,
    tags: FxHashMap<TaskId, Tag>,
    tmfs: FxHashMap<Tag, Tmf>,
}

/// The gateway state machine. `S` receives the answers for the portal.
pub(crate) struct Engine<S: Sink> {
    cfg: GatewayConfig,
    ports: Vec<Port>,
    port_of_ini: FxHashMap<InitiatorId, usize>,
    by_wwpn: FxHashMap<Wwn, usize>,
    sessions: FxHashMap<NexusId, Session>,
    next_nexus: u64,
    clock: u64,
    pub(crate) stats: GatewayStats,
    pub(crate) sink: S,
    backlog: Arc<Backlog>,
    /// The backlog's events while they are handled (kept for its buffer).
    backlog_scratch: Vec<(InitiatorId, InitiatorEvent<'static>)>,
    me: Weak<Mutex<Engine<S>>>,
}

/// The handler installed on every gateway port: runs the engine inside the simulation.
pub(crate) struct GwHandler<S: Sink> {
    engine: Arc<Mutex<Engine<S>>>,
    backlog: Arc<Backlog>,
}

impl<S: Sink + 'static> InitiatorHandler for GwHandler<S> {
    fn on_data_frame(
        &mut self,
        ctl: &mut Control<'_>,
        tag: Tag,
        offset: u32,
        frame: DataFrame,
    ) -> Option<DataFrame> {
        let mut e = match self.engine.try_lock() {
            Ok(e) => e,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            // The engine is inside a request of its own: keep a copy of the data for the
            // end of that request (as `on_event` does).
            Err(std::sync::TryLockError::WouldBlock) => {
                let ev = InitiatorEvent::DataIn {
                    tag,
                    offset,
                    data: std::borrow::Cow::Owned(frame.payload().to_vec()),
                };
                self.backlog.push(ctl.id, ev);
                return Some(frame);
            }
        };
        let back = e.on_data_frame(ctl.id, tag, offset, frame);
        e.finish(ctl.sim);
        back
    }

    fn on_event(&mut self, ctl: &mut Control<'_>, ev: InitiatorEvent<'_>) {
        match self.engine.try_lock() {
            Ok(mut e) => {
                e.on_event(ctl.sim, ctl.id, ev);
                e.finish(ctl.sim);
            }
            Err(std::sync::TryLockError::Poisoned(p)) => {
                let mut e = p.into_inner();
                e.on_event(ctl.sim, ctl.id, ev);
                e.finish(ctl.sim);
            }
            // The engine is inside a request of its own that made the simulation call
            // back: keep the event for the end of that request.
            Err(std::sync::TryLockError::WouldBlock) => self.backlog.push(ctl.id, ev.into_owned()),
        }
    }
}

fn attr_to_fc(a: TaskAttr) -> FcAttr {
    match a {
        TaskAttr::Ordered => FcAttr::Ordered,
        TaskAttr::HeadOfQueue => FcAttr::HeadOfQueue,
        TaskAttr::Aca => FcAttr::Aca,
        // Untagged is SIMPLE in SAM-5; reserved values are treated the same way.
        _ => FcAttr::Simple,
    }
}

fn residual_from_fc(r: FcResidual) -> Residual {
    match r {
        FcResidual::None => Residual::None,
        FcResidual::Under(n) => Residual::Underflow(n),
        FcResidual::Over(n) => Residual::Overflow(n),
    }
}

/// The iSCSI TMF response for an FCP_RSP RSP_CODE (FCP-4 Table 25; RFC 7143 §11.6.1).
pub(crate) fn tmf_response_from_fc(code: Option<RspCode>) -> TmfResponseCode {
    match code {
        None | Some(RspCode::Complete) => TmfResponseCode::Complete,
        // FUNCTION SUCCEEDED of a QUERY function: complete for iSCSI.
        Some(RspCode::Unknown(8)) => TmfResponseCode::Complete,
        Some(RspCode::TmfIncorrectLun) => TmfResponseCode::LunDoesNotExist,
        Some(_) => TmfResponseCode::Rejected,
    }
}

/// The sense an iSCSI initiator gets for an FC command that ended without FCP_RSP.
fn failure_sense(e: CommandError) -> [u8; 18] {
    match e {
        // ABORTED COMMAND, LOGICAL UNIT COMMUNICATION TIME-OUT.
        CommandError::Timeout => fixed_sense(0x0B, 0x08, 0x01),
        // ABORTED COMMAND, DATA PHASE ERROR.
        CommandError::DataMismatch { .. } => fixed_sense(0x0B, 0x4B, 0x00),
        // ABORTED COMMAND, LOGICAL UNIT COMMUNICATION FAILURE.
        _ => fixed_sense(0x0B, 0x08, 0x00),
    }
}

impl<S: Sink + 'static> Engine<S> {
    pub(crate) fn new(cfg: GatewayConfig, sink: S) -> Arc<Mutex<Engine<S>>> {
        Arc::new_cyclic(|me| {
            Mutex::new(Engine {
                cfg,
                ports: Vec::new(),
                port_of_ini: FxHashMap::default(),
                by_wwpn: FxHashMap::default(),
                sessions: FxHashMap::default(),
                next_nexus: 1,
                clock: 0,
                stats: GatewayStats::default(),
                sink,
                backlog: Arc::new(Backlog::default()),
                backlog_scratch: Vec::new(),
                me: me.clone(),
            })
        })
    }

    /// Work left over from nested simulation callbacks; call at the end of every entry.
    pub(crate) fn finish(&mut self, sim: &mut Sim) {
        for _ in 0..64 {
            let mut any = false;
            if self.backlog.flag.load(Ordering::Acquire) {
                let mut backlog = std::mem::take(&mut self.backlog_scratch);
                self.backlog.take_into(&mut backlog);
                for (id, ev) in backlog.drain(..) {
                    any = true;
                    self.on_event(sim, id, ev);
                }
                self.backlog_scratch = backlog;
            }
            // Events of a port whose handler was running land in its queue: those there
            // now, in order (what they cause waits for the next pass).
            let mut i = 0;
            while let Some(id) = self.ports.get(i).map(|p| p.ini) {
                i += 1;
                let queued = sim.inis.get(id.0).map_or(0, |x| x.events.len());
                for _ in 0..queued {
                    let Some(ev) = sim.inis.get_mut(id.0).and_then(|x| x.events.pop_front()) else {
                        break;
                    };
                    any = true;
                    self.on_event(sim, id, ev);
                }
            }
            if !any {
                return;
            }
        }
    }

    /// Active sessions.
    pub(crate) fn session_count(&self) -> usize {
        self.sessions
            .values()
            .filter(|s| s.phase == Phase::Active)
            .count()
    }

    /// Tasks the gateway still tracks (for leak checks).
    pub(crate) fn task_count(&self) -> usize {
        self.sessions.values().map(|s| s.tasks.len()).sum()
    }

    fn handler(&self) -> Option<Box<dyn InitiatorHandler>> {
        let engine = self.me.upgrade()?;
        Some(Box::new(GwHandler {
            engine,
            backlog: Arc::clone(&self.backlog),
        }))
    }

    // ---------------------------------------------------------------------------------
    // Sessions.

    /// A normal session asks to log in; the answer goes to the sink.
    pub(crate) fn login(&mut self, sim: &mut Sim, req: &LoginReq) {
        let Some(target) = sim.hba_port_id() else {
            // The target port is not on the fabric (yet): the initiator may retry.
            self.stats.login_failures += 1;
            self.sink
                .login_done(req.login, Err(LoginStatus::SERVICE_UNAVAILABLE));
            return;
        };
        let wwpn = initiator_wwpn(&req.initiator_name, req.isid);
        let port = match self.by_wwpn.get(&wwpn) {
            Some(&p) if self.ports[p].next.is_none() => p,
            Some(_) => {
                // Two logins with one identity at once: the portal does not do that.
                self.stats.login_failures += 1;
                self.sink
                    .login_done(req.login, Err(LoginStatus::SERVICE_UNAVAILABLE));
                return;
            }
            None => match self.acquire_port(sim, wwpn, &req.initiator_name) {
                Some(p) => p,
                None => {
                    self.stats.login_failures += 1;
                    self.sink
                        .login_done(req.login, Err(LoginStatus::OUT_OF_RESOURCES));
                    return;
                }
            },
        };
        let nexus = NexusId(self.next_nexus);
        self.next_nexus += 1;
        self.clock += 1;
        self.sessions.insert(
            nexus,
            Session {
                port,
                login: req.login,
                phase: Phase::Waiting,
                target,
                fc_lost: false,
                tasks: FxHashMap::default(),
                tags: FxHashMap::default(),
                tmfs: FxHashMap::default(),
            },
        );
        let p = &mut self.ports[port];
        p.last_used = self.clock;
        if p.session.is_some() {
            p.next = Some(nexus);
        } else {
            p.session = Some(nexus);
            self.try_login(sim, port);
        }
    }

    /// A port for a new WWPN: a new one while below the limit, else the least recently
    /// used idle one renamed.
    fn acquire_port(&mut self, sim: &mut Sim, wwpn: Wwn, name: &str) -> Option<usize> {
        let wwnn = initiator_wwnn(name);
        if self.ports.len() < self.cfg.max_ports {
            let mut c = InitiatorConfig::new(wwpn.to_u64());
            c.wwnn = wwnn;
            c.max_payload = self.cfg.max_payload.clamp(256, 2112);
            c.command_timeout = self.cfg.command_timeout;
            c.auto_login = true;
            c.collect_data = false;
            let ini = sim.add_initiator(c);
            let handler = self.handler()?;
            sim.set_initiator_handler(ini, handler);
            let idx = self.ports.len();
            self.ports.push(Port {
                ini,
                wwpn,
                online: false,
                fc: FcLogin::Out,
                session: None,
                next: None,
                last_used: self.clock,
            });
            self.port_of_ini.insert(ini, idx);
            self.by_wwpn.insert(wwpn, idx);
            self.stats.ports += 1;
            return Some(idx);
        }
        let idx = self
            .ports
            .iter()
            .enumerate()
            .filter(|(_, p)| p.session.is_none() && p.next.is_none() && p.fc == FcLogin::Out)
            .min_by_key(|(_, p)| p.last_used)
            .map(|(i, _)| i)?;
        let ini = self.ports[idx].ini;
        let old = self.ports[idx].wwpn;
        // A virtual port leaves the fabric and comes back under the new name.
        sim.set_initiator_link(ini, false);
        sim.rename_initiator(ini, wwpn, wwnn);
        sim.set_initiator_link(ini, true);
        self.by_wwpn.remove(&old);
        self.by_wwpn.insert(wwpn, idx);
        let p = &mut self.ports[idx];
        p.wwpn = wwpn;
        p.online = false;
        self.stats.port_renames += 1;
        Some(idx)
    }

    /// Starts the PLOGI of the port's session once the port can.
    fn try_login(&mut self, sim: &mut Sim, port: usize) {
        let p = &self.ports[port];
        let Some(nexus) = p.session else { return };
        if !p.online || p.fc != FcLogin::Out {
            return;
        }
        let ini = p.ini;
        let Some(s) = self.sessions.get_mut(&nexus) else {
            return;
        };
        if s.phase != Phase::Waiting {
            return;
        }
        if let Some(t) = sim.hba_port_id() {
            s.target = t;
        }
        match sim.initiator_login(ini, s.target) {
            Ok(()) => {
                s.phase = Phase::LoggingIn;
                self.ports[port].fc = FcLogin::PlogiSent;
            }
            Err(_) => self.fail_login(sim, nexus, LoginStatus::SERVICE_UNAVAILABLE),
        }
    }

    fn fail_login(&mut self, sim: &mut Sim, nexus: NexusId, why: LoginStatus) {
        if let Some(s) = self.sessions.get(&nexus) {
            self.stats.login_failures += 1;
            self.sink.login_done(s.login, Err(why));
        }
        self.end_session(sim, nexus);
    }

    /// Forgets a session and hands its port to the next one.
    fn end_session(&mut self, sim: &mut Sim, nexus: NexusId) {
        let Some(s) = self.sessions.remove(&nexus) else {
            return;
        };
        let port = s.port;
        let p = &mut self.ports[port];
        if p.session == Some(nexus) {
            p.session = p.next.take();
            self.try_login(sim, port);
        } else if p.next == Some(nexus) {
            p.next = None;
        }
    }

    /// The portal could not use an accepted login (its connection went away).
    pub(crate) fn abandon_login(&mut self, sim: &mut Sim, nexus: NexusId) {
        self.logout(sim, nexus, NexusLoss::ConnectionLost);
    }

    /// The nexus ends: LOGO.
    pub(crate) fn logout(&mut self, sim: &mut Sim, nexus: NexusId, _reason: NexusLoss) {
        let Some(s) = self.sessions.get_mut(&nexus) else {
            return;
        };
        let was_active = s.phase == Phase::Active;
        let phase = std::mem::replace(&mut s.phase, Phase::Closing);
        let (port, target) = (s.port, s.target);
        for t in s.tasks.values_mut() {
            t.zombie = true;
        }
        if was_active {
            self.stats.sessions = self.stats.sessions.saturating_sub(1);
        }
        let p = &mut self.ports[port];
        if p.session != Some(nexus) {
            // Still waiting for the port: nothing on the wire yet.
            self.end_session(sim, nexus);
            return;
        }
        match (phase, p.fc) {
            // The PLOGI in flight ends first; LoginDone sends the LOGO.
            (_, FcLogin::PlogiSent) => {}
            (_, FcLogin::In) => {
                let ini = p.ini;
                match sim.initiator_logout(ini, target) {
                    Ok(()) => self.ports[port].fc = FcLogin::LogoSent,
                    Err(_) => {
                        self.ports[port].fc = FcLogin::Out;
                        self.stats.logouts += 1;
                        self.end_session(sim, nexus);
                    }
                }
            }
            (_, FcLogin::LogoSent) => {}
            (_, FcLogin::Out) => {
                self.stats.logouts += 1;
                self.end_session(sim, nexus);
            }
        }
    }

    // ---------------------------------------------------------------------------------
    // Commands.

    fn refuse(&mut self, task: TaskId, status: u8, sense: &[u8]) {
        self.stats.refused += 1;
        self.sink.status(task, status, sense, Residual::None);
    }

    /// A SCSI command from the portal becomes an FCP_CMND.
    pub(crate) fn command(
        &mut self,
        sim: &mut Sim,
        nexus: NexusId,
        task: TaskId,
        cmd: &Command<'_>,
    ) {
        let Some(s) = self.sessions.get(&nexus) else {
            // Not a nexus of ours (cannot happen with a well-behaved portal).
            return self.refuse(
                task,
                CHECK_CONDITION,
                &failure_sense(CommandError::LoggedOut),
            );
        };
        let (port, target, fc_lost) = (s.port, s.target, s.fc_lost);
        let Ok(cdb) = rscst_fw::fc::Cdb::new(cmd.cdb) else {
            // ILLEGAL REQUEST, INVALID FIELD IN CDB: longer than FCP can carry.
            return self.refuse(task, CHECK_CONDITION, &fixed_sense(0x05, 0x24, 0x00));
        };
        if fc_lost {
            return self.refuse(task, BUSY, &[]);
        }
        let dir = match cmd.dir {
            DataDirection::None => DataDir::None,
            DataDirection::Read => DataDir::DataIn,
            DataDirection::Write => DataDir::DataOut,
        };
        let spec = CommandSpec {
            lun: FcLun(cmd.lun.0),
            cdb,
            attr: attr_to_fc(cmd.attr),
            priority: 0,
            crn: 0,
            dir,
            fcp_dl: if dir == DataDir::None {
                0
            } else {
                cmd.expected_len
            },
            data_out: None,
        };
        let ini = self.ports[port].ini;
        match sim.initiator_command(ini, target, spec) {
            Ok(tag) => {
                self.stats.commands += 1;
                if let Some(s) = self.sessions.get_mut(&nexus) {
                    s.tasks.insert(
                        tag,
                        Task {
                            id: task,
                            lun: cmd.lun,
                            abort: None,
                            zombie: false,
                            done: false,
                        },
                    );
                    s.tags.insert(task, tag);
                }
            }
            Err(SubmitError::NoExchange) => self.refuse(task, TASK_SET_FULL, &[]),
            Err(SubmitError::Invalid(_)) => {
                self.refuse(task, CHECK_CONDITION, &fixed_sense(0x05, 0x24, 0x00))
            }
            Err(_) => self.refuse(task, BUSY, &[]),
        }
    }

    /// Write data for an XFER_RDY.
    pub(crate) fn data_out(
        &mut self,
        sim: &mut Sim,
        nexus: NexusId,
        task: TaskId,
        offset: u32,
        data: &[u8],
        last: bool,
    ) {
        let Some(s) = self.sessions.get(&nexus) else {
            return;
        };
        let Some(&tag) = s.tags.get(&task) else {
            return;
        };
        let ini = self.ports[s.port].ini;
        if sim
            .initiator_supply_data(ini, tag, offset, data, last)
            .is_ok()
        {
            self.stats.bytes_out += data.len() as u64;
        }
    }

    /// A task management request.
    pub(crate) fn task_mgmt(&mut self, sim: &mut Sim, nexus: NexusId, tmf: TmfId, req: &TaskMgmt) {
        let Some(s) = self.sessions.get_mut(&nexus) else {
            self.sink.tmf_done(tmf, TmfResponseCode::Rejected);
            return;
        };
        let (ini, target) = (self.ports[s.port].ini, s.target);
        let function = match req.function {
            TmfFunction::AbortTask => {
                let Some(tag) = req.referenced.and_then(|t| s.tags.get(&t).copied()) else {
                    self.sink.tmf_done(tmf, TmfResponseCode::TaskDoesNotExist);
                    return;
                };
                match s.tasks.get_mut(&tag) {
                    Some(t) if t.abort.is_none() && !t.done => t.abort = Some(tmf),
                    _ => {
                        self.sink.tmf_done(tmf, TmfResponseCode::TaskDoesNotExist);
                        return;
                    }
                }
                // FC aborts one exchange with ABTS (FC-LS-3 §3.2.2).
                if sim.initiator_abort(ini, tag).is_err() {
                    if let Some(t) = s.tasks.get_mut(&tag) {
                        t.abort = None;
                    }
                    self.sink.tmf_done(tmf, TmfResponseCode::TaskDoesNotExist);
                } else {
                    self.stats.aborts += 1;
                }
                return;
            }
            TmfFunction::AbortTaskSet => TmFunction::AbortTaskSet,
            TmfFunction::ClearTaskSet => TmFunction::ClearTaskSet,
            TmfFunction::LogicalUnitReset => TmFunction::LunReset,
            TmfFunction::ClearAca => TmFunction::ClearAca,
            TmfFunction::TargetWarmReset | TmfFunction::TargetColdReset => TmFunction::TargetReset,
            TmfFunction::TaskReassign | TmfFunction::Unknown(_) => {
                self.sink.tmf_done(tmf, TmfResponseCode::NotSupported);
                return;
            }
        };
        let lun = if function == TmFunction::TargetReset {
            FcLun([0; 8])
        } else {
            FcLun(req.lun.0)
        };
        match sim.initiator_tmf(ini, target, lun, function) {
            Ok(tag) => {
                self.stats.tmfs += 1;
                s.tmfs.insert(
                    tag,
                    Tmf {
                        id: tmf,
                        function: req.function,
                        lun: req.lun,
                    },
                );
            }
            Err(_) => self.sink.tmf_done(tmf, TmfResponseCode::Rejected),
        }
    }

    /// The portal gave up a task: ABTS its exchange, forget its answers.
    pub(crate) fn abort_task(&mut self, sim: &mut Sim, nexus: NexusId, task: TaskId) {
        let Some(s) = self.sessions.get_mut(&nexus) else {
            return;
        };
        let Some(tag) = s.tags.remove(&task) else {
            return;
        };
        let ini = self.ports[s.port].ini;
        if let Some(t) = s.tasks.get_mut(&tag) {
            t.zombie = true;
            if t.abort.is_none() && !t.done && sim.initiator_abort(ini, tag).is_ok() {
                self.stats.aborts += 1;
            }
        }
    }

    // ---------------------------------------------------------------------------------
    // Events from the fabric.

    /// Read data as a whole frame (see [`Sink::data_in_frame`]); the frame comes back
    /// unless the sink kept it.
    pub(crate) fn on_data_frame(
        &mut self,
        ini: InitiatorId,
        tag: Tag,
        offset: u32,
        frame: DataFrame,
    ) -> Option<DataFrame> {
        let Some(&port) = self.port_of_ini.get(&ini) else {
            return Some(frame);
        };
        match self.task(port, tag) {
            Some(t) if !t.zombie => {
                let id = t.id;
                self.stats.bytes_in += frame.payload().len() as u64;
                self.sink.data_in_frame(id, offset, frame)
            }
            _ => Some(frame),
        }
    }

    pub(crate) fn on_event(&mut self, sim: &mut Sim, ini: InitiatorId, ev: InitiatorEvent<'_>) {
        let Some(&port) = self.port_of_ini.get(&ini) else {
            return;
        };
        match ev {
            InitiatorEvent::FabricLogin { .. } => {
                self.ports[port].online = true;
                self.try_login(sim, port);
            }
            InitiatorEvent::LoginDone { ok, .. } => self.on_login_done(sim, port, ok),
            InitiatorEvent::LoggedOut { reason, .. } => self.on_logged_out(sim, port, reason),
            InitiatorEvent::Rscn { .. } => {}
            InitiatorEvent::XferRdy { tag, offset, len } => {
                if let Some(t) = self.task(port, tag)
                    && !t.zombie
                {
                    let id = t.id;
                    self.sink.ready_to_transfer(id, offset, len);
                }
            }
            InitiatorEvent::DataIn { tag, offset, data } => {
                if let Some(t) = self.task(port, tag)
                    && !t.zombie
                {
                    let id = t.id;
                    self.stats.bytes_in += data.len() as u64;
                    self.sink.data_in(id, offset, &data);
                }
            }
            InitiatorEvent::Completed { tag, result } => {
                let Some(s) = session_of(&self.ports, &mut self.sessions, port) else {
                    return;
                };
                let Some(t) = s.tasks.get_mut(&tag) else {
                    return;
                };
                let (id, zombie) = (t.id, t.zombie);
                if t.abort.is_some() {
                    // The ABTS answer still comes; keep the entry for it.
                    t.done = true;
                } else {
                    s.tasks.remove(&tag);
                    s.tags.remove(&id);
                }
                if zombie {
                    return;
                }
                let residual = residual_from_fc(result.residual);
                match result.rsp_code {
                    Some(RspCode::Complete) | None => {
                        self.sink
                            .status(id, result.status, result.sense.as_slice(), residual)
                    }
                    // FCP_RSP_INFO of a failed command (FCP-4 Table 25).
                    Some(RspCode::CmndFieldsInvalid) => self.sink.status(
                        id,
                        CHECK_CONDITION,
                        &fixed_sense(0x05, 0x24, 0x00),
                        Residual::None,
                    ),
                    Some(_) => self.sink.status(
                        id,
                        CHECK_CONDITION,
                        &fixed_sense(0x0B, 0x4B, 0x00),
                        Residual::None,
                    ),
                }
            }
            InitiatorEvent::Failed { tag, error } => {
                let Some(s) = session_of(&self.ports, &mut self.sessions, port) else {
                    return;
                };
                let Some(t) = s.tasks.get(&tag) else { return };
                let (id, zombie, abort) = (t.id, t.zombie, t.abort);
                if let Some(tmf) = abort {
                    if error == CommandError::Aborted {
                        // BA_ACC: AbortDone follows and answers the TMF.
                        if let Some(t) = s.tasks.get_mut(&tag) {
                            t.done = true;
                        }
                        return;
                    }
                    // The exchange is gone some other way (timeout, nexus loss): the
                    // task no longer exists at the target.
                    s.tasks.remove(&tag);
                    s.tags.remove(&id);
                    self.sink.tmf_done(tmf, TmfResponseCode::Complete);
                    return;
                }
                s.tasks.remove(&tag);
                s.tags.remove(&id);
                if zombie {
                    return;
                }
                self.stats.failed += 1;
                self.sink
                    .status(id, CHECK_CONDITION, &failure_sense(error), Residual::None);
            }
            InitiatorEvent::TmfDone { tag, code } => {
                let Some(s) = session_of(&self.ports, &mut self.sessions, port) else {
                    return;
                };
                let Some(tmf) = s.tmfs.remove(&tag) else {
                    return;
                };
                let response = tmf_response_from_fc(code);
                if response == TmfResponseCode::Complete {
                    // The target ended the affected tasks of this nexus without status
                    // ("safe" semantics); their exchanges are void.
                    let all = matches!(
                        tmf.function,
                        TmfFunction::TargetWarmReset | TmfFunction::TargetColdReset
                    );
                    let scoped = matches!(
                        tmf.function,
                        TmfFunction::AbortTaskSet
                            | TmfFunction::ClearTaskSet
                            | TmfFunction::LogicalUnitReset
                    );
                    for t in s.tasks.values_mut() {
                        if all || (scoped && t.lun == tmf.lun) {
                            t.zombie = true;
                        }
                    }
                }
                self.sink.tmf_done(tmf.id, response);
            }
            InitiatorEvent::AbortDone { tag, accepted } => {
                let Some(s) = session_of(&self.ports, &mut self.sessions, port) else {
                    return;
                };
                let Some(t) = s.tasks.get_mut(&tag) else {
                    return;
                };
                let Some(tmf) = t.abort.take() else { return };
                let id = t.id;
                if accepted || t.done {
                    s.tasks.remove(&tag);
                    s.tags.remove(&id);
                }
                let response = if accepted {
                    TmfResponseCode::Complete
                } else {
                    TmfResponseCode::TaskDoesNotExist
                };
                self.sink.tmf_done(tmf, response);
            }
        }
    }

    fn task(&mut self, port: usize, tag: Tag) -> Option<&mut Task> {
        session_of(&self.ports, &mut self.sessions, port)?
            .tasks
            .get_mut(&tag)
    }

    fn on_login_done(&mut self, sim: &mut Sim, port: usize, ok: bool) {
        self.ports[port].fc = if ok { FcLogin::In } else { FcLogin::Out };
        let Some(nexus) = self.ports[port].session else {
            return;
        };
        let Some(s) = self.sessions.get_mut(&nexus) else {
            return;
        };
        match s.phase {
            Phase::LoggingIn if ok => {
                s.phase = Phase::Active;
                self.stats.logins += 1;
                self.stats.sessions += 1;
                let login = s.login;
                self.sink.login_done(login, Ok(nexus));
            }
            Phase::LoggingIn => self.fail_login(sim, nexus, LoginStatus::TARGET_ERROR),
            // A login of its own (auto_login after a loss) under a live session.
            Phase::Active => s.fc_lost = !ok,
            Phase::Closing => {
                if ok {
                    let (ini, target) = (self.ports[port].ini, s.target);
                    if sim.initiator_logout(ini, target).is_ok() {
                        self.ports[port].fc = FcLogin::LogoSent;
                        return;
                    }
                    self.ports[port].fc = FcLogin::Out;
                }
                self.stats.logouts += 1;
                self.end_session(sim, nexus);
            }
            Phase::Waiting => {}
        }
    }

    fn on_logged_out(&mut self, sim: &mut Sim, port: usize, reason: LogoutReason) {
        let was = self.ports[port].fc;
        self.ports[port].fc = FcLogin::Out;
        if reason == LogoutReason::LinkDown {
            self.ports[port].online = false;
        }
        let Some(nexus) = self.ports[port].session else {
            return;
        };
        let Some(s) = self.sessions.get_mut(&nexus) else {
            return;
        };
        match s.phase {
            Phase::Closing => {
                self.stats.logouts += 1;
                self.end_session(sim, nexus);
            }
            Phase::Active => {
                // The nexus was lost under the session (target LOGO, target gone, link):
                // the port logs in again by itself (auto_login); the outstanding
                // commands already failed.
                s.fc_lost = true;
                if was == FcLogin::LogoSent {
                    self.stats.logouts += 1;
                    self.end_session(sim, nexus);
                }
            }
            Phase::LoggingIn => self.fail_login(sim, nexus, LoginStatus::TARGET_ERROR),
            Phase::Waiting => {}
        }
    }
}

/// The session using `port` (a free function so the borrow stays on `sessions`).
fn session_of<'a>(
    ports: &[Port],
    sessions: &'a mut FxHashMap<NexusId, Session>,
    port: usize,
) -> Option<&'a mut Session> {
    let n = ports.get(port)?.session?;
    sessions.get_mut(&n)
}

impl Sim {
    /// Gives an initiator port a new identity (the gateway's port pool): call with its
    /// link down; the next fabric login uses the new names.
    pub(crate) fn rename_initiator(&mut self, id: InitiatorId, wwpn: Wwn, wwnn: Wwn) {
        if let Some(ini) = self.inis.get_mut(id.0) {
            ini.cfg.wwpn = wwpn;
            ini.cfg.wwnn = wwnn;
            let slot = ini.slot;
            if let Some(p) = self.fabric.ports.get_mut(slot) {
                p.wwpn = wwpn;
                p.wwnn = wwnn;
            }
        }
    }
}
