//! The gateway across threads: the portal's network thread on one side, the simulation
//! thread ([`SimThread`]) on the other.
//!
//! Requests become jobs posted to the simulation thread (owned copies of the CDB and the
//! Data-Out bytes); the engine runs there, inside the jobs and the initiator-event
//! handlers, and queues [`SanEvent`]s that the network thread applies in its poll. The
//! queue wakes the network thread only when it goes from empty to non-empty, and
//! consecutive Data-In frames of one task are merged into one event.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use mio::Waker;

use super::engine::{Engine, LoginReq, Sink};
use super::{GatewayConfig, GatewayStats};
use crate::iscsi::net::SanEvent;
use crate::iscsi::wire::{Residual, TmfResponseCode};
use crate::iscsi::{
    Command, EventError, LoginDecision, NexusId, NexusLoss, SanEvents, SanPoll, SanPort,
    ScsiStatus, SessionLogin, TaskId, TaskMgmt, TmfId,
};
use crate::threaded::SimThread;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Answers waiting for the network thread.
struct EventQueue {
    events: Mutex<Vec<SanEvent>>,
    pending: AtomicBool,
    waker: Arc<Waker>,
}

impl EventQueue {
    fn push(&self, ev: SanEvent) {
        {
            let mut q = lock(&self.events);
            if let (
                SanEvent::DataIn { task, offset, data },
                Some(SanEvent::DataIn {
                    task: t,
                    offset: o,
                    data: d,
                }),
            ) = (&ev, q.last_mut())
                && t == task
                && o.wrapping_add(d.len() as u32) == *offset
            {
                d.extend_from_slice(data);
                return;
            }
            q.push(ev);
        }
        if !self.pending.swap(true, Ordering::AcqRel) {
            let _ = self.waker.wake();
        }
    }
}

/// The engine's sink on the simulation thread.
pub(crate) struct QueueSink(Arc<EventQueue>);

impl Sink for QueueSink {
    fn login_done(
        &mut self,
        login: crate::iscsi::LoginId,
        result: Result<NexusId, crate::iscsi::wire::LoginStatus>,
    ) {
        self.0.push(SanEvent::LoginDone { login, result });
    }

    fn ready_to_transfer(&mut self, task: TaskId, offset: u32, len: u32) {
        self.0.push(SanEvent::ReadyToTransfer { task, offset, len });
    }

    fn data_in(&mut self, task: TaskId, offset: u32, data: &[u8]) {
        self.0.push(SanEvent::DataIn {
            task,
            offset,
            data: data.to_vec(),
        });
    }

    fn status(&mut self, task: TaskId, status: u8, sense: &[u8], residual: Residual) {
        self.0.push(SanEvent::Status {
            task,
            status,
            sense: sense.to_vec(),
            residual,
        });
    }

    fn tmf_done(&mut self, tmf: TmfId, response: TmfResponseCode) {
        self.0.push(SanEvent::TmfDone { tmf, response });
    }
}

/// The gateway as the SAN of a portal running on its own thread, with the simulation on
/// another ([`crate::Sim::spawn`]). Give it the server's waker
/// ([`crate::iscsi::net::Server::waker`]) and run the server with it:
///
/// ```no_run
/// use std::sync::Arc;
/// use rscst_sim::gateway::{GatewayConfig, ThreadedGateway};
/// use rscst_sim::iscsi::net::{NetConfig, Server};
/// use rscst_sim::iscsi::{PortalConfig, TargetConfig};
/// use rscst_sim::{Sim, SimConfig};
///
/// let (sim, _platform) = Sim::new(SimConfig::threaded());
/// // ... the driver runs on `_platform` on another thread ...
/// let sim = Arc::new(sim.spawn());
/// let portal = PortalConfig { targets: vec![TargetConfig::open("iqn.2024-01.org.rscst:t")], ..Default::default() };
/// let mut server = Server::bind(NetConfig::default(), portal).unwrap();
/// let mut gw = ThreadedGateway::new(sim, GatewayConfig::default(), server.waker());
/// std::thread::spawn(move || server.run(&mut gw));
/// ```
pub struct ThreadedGateway {
    sim: Arc<SimThread>,
    engine: Arc<Mutex<Engine<QueueSink>>>,
    queue: Arc<EventQueue>,
    spare: Vec<SanEvent>,
}

impl std::fmt::Debug for ThreadedGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ThreadedGateway")
    }
}

impl ThreadedGateway {
    /// A gateway posting to `sim`, waking the portal's loop with `waker`.
    pub fn new(sim: Arc<SimThread>, cfg: GatewayConfig, waker: Arc<Waker>) -> ThreadedGateway {
        let queue = Arc::new(EventQueue {
            events: Mutex::new(Vec::new()),
            pending: AtomicBool::new(false),
            waker,
        });
        ThreadedGateway {
            sim,
            engine: Engine::new(cfg, QueueSink(Arc::clone(&queue))),
            queue,
            spare: Vec::new(),
        }
    }

    /// Counters (briefly locks the engine, which the simulation thread uses).
    pub fn stats(&self) -> GatewayStats {
        let e = lock(&self.engine);
        let mut s = e.stats;
        s.sessions = e.session_count() as u64;
        s
    }

    /// A handle on the counters for other threads.
    pub fn stats_handle(&self) -> impl Fn() -> GatewayStats + Send + Sync + 'static {
        let engine = Arc::clone(&self.engine);
        move || {
            let e = lock(&engine);
            let mut s = e.stats;
            s.sessions = e.session_count() as u64;
            s
        }
    }

    fn post(&self, f: impl FnOnce(&mut Engine<QueueSink>, &mut crate::Sim) + Send + 'static) {
        let engine = Arc::clone(&self.engine);
        self.sim.post(move |sim| {
            let mut e = lock(&engine);
            f(&mut e, sim);
            e.finish(sim);
        });
    }
}

impl SanPort for ThreadedGateway {
    fn login(&mut self, req: &SessionLogin<'_>) -> LoginDecision {
        let r = LoginReq {
            login: req.login,
            initiator_name: req.initiator_name.to_owned(),
            isid: req.isid,
        };
        self.post(move |e, sim| e.login(sim, &r));
        LoginDecision::Pending
    }

    fn command(&mut self, nexus: NexusId, task: TaskId, cmd: &Command<'_>) {
        let cdb = cmd.cdb.to_vec();
        let (lun, attr, expected_len, dir) = (cmd.lun, cmd.attr, cmd.expected_len, cmd.dir);
        let (ur, um, cmdsn, itt) = (
            cmd.unsolicited_received,
            cmd.unsolicited_max,
            cmd.cmdsn,
            cmd.itt,
        );
        self.post(move |e, sim| {
            let c = Command {
                lun,
                cdb: &cdb,
                attr,
                expected_len,
                dir,
                unsolicited_received: ur,
                unsolicited_max: um,
                cmdsn,
                itt,
            };
            e.command(sim, nexus, task, &c);
        });
    }

    fn data_out(&mut self, nexus: NexusId, task: TaskId, offset: u32, data: &[u8], last: bool) {
        let d = data.to_vec();
        self.post(move |e, sim| e.data_out(sim, nexus, task, offset, &d, last));
    }

    fn task_mgmt(&mut self, nexus: NexusId, tmf: TmfId, req: &TaskMgmt) {
        let r = *req;
        self.post(move |e, sim| e.task_mgmt(sim, nexus, tmf, &r));
    }

    fn abort_task(&mut self, nexus: NexusId, task: TaskId) {
        self.post(move |e, sim| e.abort_task(sim, nexus, task));
    }

    fn logout(&mut self, nexus: NexusId, reason: NexusLoss) {
        self.post(move |e, sim| e.logout(sim, nexus, reason));
    }
}

impl SanPoll for ThreadedGateway {
    fn poll(&mut self, _now: Duration, events: &mut dyn SanEvents) -> bool {
        if !self.queue.pending.swap(false, Ordering::AcqRel) {
            return false;
        }
        std::mem::swap(&mut *lock(&self.queue.events), &mut self.spare);
        let mut abandoned = Vec::new();
        for ev in self.spare.drain(..) {
            match ev {
                SanEvent::LoginDone { login, result } => {
                    if events.login_done(login, result) == Err(EventError::Stale)
                        && let Ok(n) = result
                    {
                        abandoned.push(n);
                    }
                }
                SanEvent::ReadyToTransfer { task, offset, len } => {
                    let _ = events.ready_to_transfer(task, offset, len);
                }
                SanEvent::DataIn { task, offset, data } => {
                    let _ = events.data_in(task, offset, &data);
                }
                SanEvent::Status {
                    task,
                    status,
                    sense,
                    residual,
                } => {
                    let _ = events.status(
                        task,
                        &ScsiStatus {
                            status,
                            sense: &sense,
                            residual,
                        },
                    );
                }
                SanEvent::TaskAborted { task } => {
                    let _ = events.task_aborted(task);
                }
                SanEvent::TmfDone { tmf, response } => {
                    let _ = events.tmf_done(tmf, response);
                }
                SanEvent::AsyncEvent { nexus, lun, sense } => {
                    let _ = events.async_event(nexus, lun, &sense);
                }
            }
        }
        for n in abandoned {
            self.post(move |e, sim| e.abandon_login(sim, n));
        }
        true
    }
}
