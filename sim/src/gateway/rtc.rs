//! The gateway in the caller's thread: stepped tests and the run-to-completion loop.

use std::sync::{Arc, Mutex, MutexGuard};

use super::engine::{Engine, LoginReq, Sink};
use super::{GatewayConfig, GatewayStats};
use crate::frame::DataFrame;
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
    /// Read data in `Outbox::frames[frame]`.
    DataFrame {
        task: TaskId,
        offset: u32,
        frame: usize,
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
    /// Data frames kept (their payloads are passed on uncopied), in arrival order.
    frames: Vec<DataFrame>,
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

    fn data_in_frame(&mut self, task: TaskId, offset: u32, frame: DataFrame) -> Option<DataFrame> {
        self.items.push(Out::DataFrame {
            task,
            offset,
            frame: self.frames.len(),
        });
        self.frames.push(frame);
        None
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
    /// A run of Data-In frames joined, when it has more than [`MAX_PARTS`].
    joined: Vec<u8>,
}

/// Frames at most whose payloads are handed to the portal as the parts of one Data-In
/// (64 KiB in 2 KiB frames); a longer run is joined first.
const MAX_PARTS: usize = 32;

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
            joined: Vec::new(),
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
        let mut i = 0;
        while let Some(item) = out.items.get(i) {
            i += 1;
            match *item {
                Out::DataFrame {
                    task,
                    offset,
                    frame,
                } => {
                    // The frames of this task that follow each other: one portal call
                    // with their payloads as the parts, so the PDUs are those of the
                    // data in one piece and the payloads are copied once, into them.
                    let first = frame;
                    let mut end = frame + 1;
                    let mut next = out
                        .frames
                        .get(frame)
                        .map_or(offset, |f| offset.wrapping_add(f.payload().len() as u32));
                    while let Some(&Out::DataFrame {
                        task: t,
                        offset: o,
                        frame: f,
                    }) = out.items.get(i)
                        && t == task
                        && o == next
                        && f == end
                    {
                        i += 1;
                        end += 1;
                        next = out
                            .frames
                            .get(f)
                            .map_or(next, |f| next.wrapping_add(f.payload().len() as u32));
                    }
                    let frames = out.frames.get(first..end).unwrap_or(&[]);
                    let _ = match frames {
                        [a] => events.data_in(task, offset, a.payload()),
                        [a, b] => events.data_in_parts(task, offset, &[a.payload(), b.payload()]),
                        _ if frames.len() <= MAX_PARTS => {
                            let mut parts: [&[u8]; MAX_PARTS] = [&[]; MAX_PARTS];
                            for (p, f) in parts.iter_mut().zip(frames) {
                                *p = f.payload();
                            }
                            events.data_in_parts(task, offset, &parts[..frames.len()])
                        }
                        _ => {
                            self.joined.clear();
                            for f in frames {
                                self.joined.extend_from_slice(f.payload());
                            }
                            events.data_in(task, offset, &self.joined)
                        }
                    };
                }
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
        for f in self.spare.frames.drain(..) {
            sim.recycle_data_frame(f);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SimConfig;
    use crate::frame::Frame;
    use crate::iscsi::san::Handle;
    use crate::iscsi::wire::Lun;
    use crate::iscsi::{EventError, ScsiStatus};
    use rscst_fw::fc::header::FC_HEADER_LEN;
    use rscst_fw::fc::{Eof, Sof};

    /// A frame carrying `payload` (the header's F_CTL counts the fill bytes).
    fn fc_frame_for_test(payload: &[u8]) -> Frame {
        let fill = payload.len().next_multiple_of(4) - payload.len();
        let mut bytes = vec![0u8; FC_HEADER_LEN];
        bytes[11] = fill as u8;
        bytes.extend_from_slice(payload);
        bytes.resize(bytes.len() + fill, 0xEE);
        Frame {
            sof: Sof::N3,
            eof: Eof::NNeg,
            bytes,
            crc: None,
            hdr: None,
        }
    }

    /// Records what the gateway hands the portal: per task, the data joined, and the
    /// number of calls.
    #[derive(Default)]
    struct Recorder {
        data: Vec<(TaskId, u32, Vec<u8>)>,
    }

    impl SanEvents for Recorder {
        fn login_done(
            &mut self,
            _: LoginId,
            _: Result<NexusId, LoginStatus>,
        ) -> Result<(), EventError> {
            Ok(())
        }
        fn ready_to_transfer(&mut self, _: TaskId, _: u32, _: u32) -> Result<(), EventError> {
            Ok(())
        }
        fn data_in(&mut self, task: TaskId, offset: u32, data: &[u8]) -> Result<(), EventError> {
            self.data.push((task, offset, data.to_vec()));
            Ok(())
        }
        fn status(&mut self, _: TaskId, _: &ScsiStatus<'_>) -> Result<(), EventError> {
            Ok(())
        }
        fn task_aborted(&mut self, _: TaskId) -> Result<(), EventError> {
            Ok(())
        }
        fn tmf_done(&mut self, _: TmfId, _: TmfResponseCode) -> Result<(), EventError> {
            Ok(())
        }
        fn async_event(&mut self, _: NexusId, _: Lun, _: &[u8]) -> Result<(), EventError> {
            Ok(())
        }
    }

    fn task(n: u32) -> TaskId {
        TaskId {
            conn: Handle {
                index: 0,
                generation: 1,
            },
            task: Handle {
                index: n,
                generation: 1,
            },
        }
    }

    #[test]
    fn kept_frames_reach_the_portal_joined_per_run() {
        let (mut sim, _platform) = Sim::new(SimConfig::default());
        let mut gw = Gateway::new(GatewayConfig::default());
        let payload =
            |i: usize, n: usize| -> Vec<u8> { (0..n).map(|k| (i * 31 + k) as u8).collect() };
        // Task 1: 40 frames of 2 KiB (more than MAX_PARTS: joined); task 2: 3 frames
        // (parts), then a frame of task 1 that does not follow on (a new run), task 3:
        // 1 frame of 6 bytes (fill bytes in the frame), task 2 again: 2 frames.
        let runs: [(u32, u32, usize, usize); 5] = [
            (1, 0, 40, 2048),
            (2, 0, 3, 2048),
            (1, 1 << 20, 1, 512),
            (3, 0, 1, 6),
            (2, 6144, 2, 1000),
        ];
        let mut expect = Vec::new();
        let mut i = 0;
        {
            let mut e = lock(&gw.engine);
            for (t, offset, frames, len) in runs {
                let mut joined = Vec::new();
                for k in 0..frames {
                    let p = payload(i, len);
                    i += 1;
                    joined.extend_from_slice(&p);
                    let f: Frame = fc_frame_for_test(&p);
                    assert_eq!(f.payload(), &p[..]);
                    let off = offset + (k * len) as u32;
                    assert!(
                        e.sink
                            .data_in_frame(task(t), off, DataFrame::new(f))
                            .is_none()
                    );
                }
                expect.push((task(t), offset, joined));
            }
        }
        let mut rec = Recorder::default();
        assert!(gw.deliver(&mut sim, &mut rec));
        assert_eq!(rec.data.len(), expect.len(), "one portal call per run");
        for (got, want) in rec.data.iter().zip(&expect) {
            assert_eq!((got.0, got.1), (want.0, want.1));
            assert!(got.2 == want.2, "data of {:?} at {}", want.0, want.1);
        }
        assert!(gw.spare.frames.is_empty() && !gw.has_output());
    }
}
