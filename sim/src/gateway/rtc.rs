//! The gateway in the caller's thread: stepped tests and the run-to-completion loop.

use std::sync::{Arc, Mutex, MutexGuard};

use super::engine::{Engine, LoginReq, Sink};
use super::{GatewayConfig, GatewayStats};
use crate::iscsi::wire::{LoginStatus, Residual, TmfResponseCode};
use crate::iscsi::{
    Command, EventError, LoginDecision, LoginId, NexusId, NexusLoss, SanEvents, SanPort,
    SessionLogin, TaskId, TaskMgmt, TmfId,
};
use crate::sim::Sim;

/// One answer for the portal; byte ranges point into [`Outbox::bytes`].
#[derive(Debug, Clone, Copy)]
enum Out {
    Login(LoginId, Result<NexusId, LoginStatus>),
    Ready(TaskId, u32, u32),
    DataIn {
        task: TaskId,
        offset: u32,
        start: usize,
        len: usize,
    },
    Status {
        task: TaskId,
        status: u8,
        start: usize,
        len: usize,
        residual: Residual,
    },
    Tmf(TmfId, TmfResponseCode),
}

/// Answers collected while the simulation runs, in order. The byte buffer is reused, so
/// steady-state operation allocates nothing.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    items: Vec<Out>,
    bytes: Vec<u8>,
}

impl Outbox {
    fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    fn clear(&mut self) {
        self.items.clear();
        self.bytes.clear();
    }
}

impl Sink for Outbox {
    fn login_done(&mut self, login: LoginId, result: Result<NexusId, LoginStatus>) {
        self.items.push(Out::Login(login, result));
    }

    fn ready_to_transfer(&mut self, task: TaskId, offset: u32, len: u32) {
        self.items.push(Out::Ready(task, offset, len));
    }

    fn data_in(&mut self, task: TaskId, offset: u32, data: &[u8]) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(data);
        // Frames of one sequence follow each other: one portal call for all of them.
        if let Some(Out::DataIn {
            task: t,
            offset: o,
            start: s,
            len,
        }) = self.items.last_mut()
            && *t == task
            && *s + *len == start
            && o.wrapping_add(*len as u32) == offset
        {
            *len += data.len();
            return;
        }
        self.items.push(Out::DataIn {
            task,
            offset,
            start,
            len: data.len(),
        });
    }

    fn status(&mut self, task: TaskId, status: u8, sense: &[u8], residual: Residual) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(sense);
        self.items.push(Out::Status {
            task,
            status,
            start,
            len: sense.len(),
            residual,
        });
    }

    fn tmf_done(&mut self, tmf: TmfId, response: TmfResponseCode) {
        self.items.push(Out::Tmf(tmf, response));
    }
}

/// The iSCSI-to-FC gateway for a [`Sim`] owned by the caller (stepped tests, the
/// run-to-completion loop): requests go into the simulation at once, answers are
/// collected while it runs and handed to the portal by [`Gateway::deliver`].
///
/// ```
/// use rscst_sim::gateway::{Gateway, GatewayConfig};
/// use rscst_sim::{Sim, SimConfig};
///
/// let (mut sim, _platform) = Sim::new(SimConfig::default());
/// let mut gw = Gateway::new(GatewayConfig::default());
/// // portal.receive(conn, bytes, now, &mut gw.port(&mut sim));   // requests
/// sim.run_for(core::time::Duration::from_millis(1));             // the fabric works
/// // gw.deliver(&mut sim, &mut portal);                          // answers
/// assert_eq!(gw.stats().sessions, 0);
/// ```
pub struct Gateway {
    engine: Arc<Mutex<Engine<Outbox>>>,
    spare: Outbox,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Gateway({})", self.stats())
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Gateway {
    /// A gateway; its initiator ports are created in the simulation as sessions log in.
    pub fn new(cfg: GatewayConfig) -> Gateway {
        Gateway {
            engine: Engine::new(cfg, Outbox::default()),
            spare: Outbox::default(),
        }
    }

    /// The portal's SAN for one call: `portal.receive(conn, bytes, now, &mut gw.port(&mut sim))`.
    pub fn port<'a>(&'a mut self, sim: &'a mut Sim) -> GatewayPort<'a> {
        GatewayPort { gw: self, sim }
    }

    /// Counters.
    pub fn stats(&self) -> GatewayStats {
        let e = lock(&self.engine);
        let mut s = e.stats;
        s.sessions = e.session_count() as u64;
        s
    }

    /// Tasks still tracked (0 when every command has ended).
    pub fn tasks_in_flight(&self) -> usize {
        lock(&self.engine).task_count()
    }

    /// Whether answers are waiting for [`Gateway::deliver`].
    pub fn has_output(&self) -> bool {
        !lock(&self.engine).sink.is_empty()
    }

    /// Hands the answers collected so far to the portal. Returns whether there were any.
    pub fn deliver(&mut self, sim: &mut Sim, events: &mut dyn SanEvents) -> bool {
        {
            let mut e = lock(&self.engine);
            e.finish(sim);
            if e.sink.is_empty() {
                return false;
            }
            std::mem::swap(&mut e.sink, &mut self.spare);
        }
        let mut abandoned = Vec::new();
        let out = &self.spare;
        for item in &out.items {
            match *item {
                Out::Login(login, result) => {
                    if events.login_done(login, result) == Err(EventError::Stale)
                        && let Ok(n) = result
                    {
                        abandoned.push(n);
                    }
                }
                Out::Ready(task, offset, len) => {
                    let _ = events.ready_to_transfer(task, offset, len);
                }
                Out::DataIn {
                    task,
                    offset,
                    start,
                    len,
                } => {
                    if let Some(d) = out.bytes.get(start..start + len) {
                        let _ = events.data_in(task, offset, d);
                    }
                }
                Out::Status {
                    task,
                    status,
                    start,
                    len,
                    residual,
                } => {
                    let sense = out.bytes.get(start..start + len).unwrap_or(&[]);
                    let _ = events.status(
                        task,
                        &crate::iscsi::ScsiStatus {
                            status,
                            sense,
                            residual,
                        },
                    );
                }
                Out::Tmf(tmf, response) => {
                    let _ = events.tmf_done(tmf, response);
                }
            }
        }
        self.spare.clear();
        if !abandoned.is_empty() {
            let mut e = lock(&self.engine);
            for n in abandoned {
                e.abandon_login(sim, n);
            }
            e.finish(sim);
        }
        true
    }
}

/// A [`Gateway`] with the simulation, for the length of one portal call.
#[derive(Debug)]
pub struct GatewayPort<'a> {
    gw: &'a mut Gateway,
    sim: &'a mut Sim,
}

impl GatewayPort<'_> {
    fn with(&mut self, f: impl FnOnce(&mut Engine<Outbox>, &mut Sim)) {
        let mut e = lock(&self.gw.engine);
        f(&mut e, self.sim);
        e.finish(self.sim);
    }
}

impl SanPort for GatewayPort<'_> {
    fn login(&mut self, req: &SessionLogin<'_>) -> LoginDecision {
        let r = LoginReq {
            login: req.login,
            initiator_name: req.initiator_name.to_owned(),
            isid: req.isid,
        };
        self.with(|e, sim| e.login(sim, &r));
        LoginDecision::Pending
    }

    fn command(&mut self, nexus: NexusId, task: TaskId, cmd: &Command<'_>) {
        self.with(|e, sim| e.command(sim, nexus, task, cmd));
    }

    fn data_out(&mut self, nexus: NexusId, task: TaskId, offset: u32, data: &[u8], last: bool) {
        self.with(|e, sim| e.data_out(sim, nexus, task, offset, data, last));
    }

    fn task_mgmt(&mut self, nexus: NexusId, tmf: TmfId, req: &TaskMgmt) {
        self.with(|e, sim| e.task_mgmt(sim, nexus, tmf, req));
    }

    fn abort_task(&mut self, nexus: NexusId, task: TaskId) {
        self.with(|e, sim| e.abort_task(sim, nexus, task));
    }

    fn logout(&mut self, nexus: NexusId, reason: NexusLoss) {
        self.with(|e, sim| e.logout(sim, nexus, reason));
    }
}
