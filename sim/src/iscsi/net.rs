//! The network layer: TCP sockets around the sans-IO [`Portal`].
//!
//! Two ways to run, both offered so the faster can be chosen by measurement:
//!
//! * **Run-to-completion** ([`Server::run`], [`spawn_run_to_completion`]): one thread
//!   polls nonblocking sockets (mio) and, in the same loop, calls the SAN's
//!   [`SanPoll::poll`]. After work it may keep polling without blocking for a short spin
//!   time ([`NetConfig::spin`], optionally only at low queue depth:
//!   [`NetConfig::spin_max_batch`]), then blocks in the poller until a socket, a timer or
//!   a [`Waker`] wakes it, so an idle portal uses no CPU. At high queue depth it may
//!   first let commands gather for a moment ([`NetConfig::coalesce`], as a NIC's
//!   interrupt moderation), so that one wake-up, one read and one write serve more of
//!   them.
//! * **Threaded** ([`spawn_threaded`]): the same loop on its own thread with a channel
//!   adapter as its SAN: requests go to the SAN thread as owned [`SanRequest`]s, and the
//!   SAN answers with [`SanEvent`]s through an [`EventSender`], which wakes the network
//!   thread.
//!
//! Received bytes are framed in place in a per-connection buffer and handed to the
//! portal by reference; the portal writes PDUs straight into a per-connection output
//! buffer, which is written to the socket from there.

use crate::fxhash::FxHashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};

use super::portal::{ConnId, Portal, PortalConfig};
use super::san::{
    Command, DataDirection, LoginDecision, LoginId, NexusId, NexusLoss, SanEvents, SanPoll,
    SanPort, ScsiStatus, SessionLogin, TaskId, TaskMgmt, TmfId,
};
use super::wire::{Isid, LoginStatus, Lun, Residual, TaskAttr, TmfResponseCode};

/// The default portal address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:3260";
/// The iSCSI well-known TCP port (IANA).
pub const ISCSI_PORT: u16 = 3260;

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
const FIRST_CONN: usize = 2;

/// Parses `ADDR:PORT`, `ADDR` (port 3260), `:PORT`/`PORT` (127.0.0.1) or `[V6]:PORT`.
pub fn parse_listen(s: &str) -> io::Result<SocketAddr> {
    let s = s.trim();
    let port_only = s.strip_prefix(':').unwrap_or(s);
    if !port_only.is_empty() && port_only.bytes().all(|b| b.is_ascii_digit()) {
        let port = port_only
            .parse::<u16>()
            .map_err(|e| io::Error::new(ErrorKind::InvalidInput, e))?;
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    if let Ok(ip) = s
        .trim_matches(|c| c == '[' || c == ']')
        .parse::<std::net::IpAddr>()
    {
        return Ok(SocketAddr::new(ip, ISCSI_PORT));
    }
    let with_port = if s.contains(':') {
        s.to_owned()
    } else {
        format!("{s}:{ISCSI_PORT}")
    };
    with_port
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(ErrorKind::InvalidInput, format!("no address for {s}")))
}

/// Network layer settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Keep polling without blocking for this long after the last work.
    pub spin: Duration,
    /// Spin only while the passes that brought new SCSI commands brought at most this
    /// many each (after a larger batch, not for the next 64 passes with commands): at
    /// low queue depth the spin saves the wake-up latency of the next command; at higher
    /// depths the initiator's commands batch up while the loop sleeps, and spinning would
    /// only burn the CPU the initiators need. 0: spin whatever the batches.
    pub spin_max_batch: u32,
    /// Longest single block in the poller (bounds timer slack).
    pub max_block: Duration,
    /// Interrupt moderation at high queue depth: after a pass that brought commands and
    /// moved at most [`NetConfig::coalesce_max_bytes`], while the passes bring more than
    /// [`NetConfig::spin_max_batch`] commands (the same test and hold-off that stop the
    /// spin; never with a limit of 0), sleep this long (at most until the next portal or
    /// SAN deadline) before looking at the sockets again instead of waking for the first
    /// byte, so the next pass takes the commands that arrived meanwhile in one read and
    /// answers them in one write. Costs up to this much latency per command at those
    /// depths; saves a wake-up, a read and a write per command it gathers. The loop's
    /// thread runs with a timer slack of 1 µs while it is set (Linux), so the sleep is
    /// this long and not the default 50 µs more. `Duration::ZERO`: off (block at once).
    pub coalesce: Duration,
    /// Moderate only after a pass that moved at most this many bytes through its
    /// sockets (read and written): the sleep pays where each command is small and a
    /// pass's fixed cost (wake-up, system calls) is a large share of it; with large
    /// transfers the data dominates and a sleep would only hold the initiators up.
    pub coalesce_max_bytes: usize,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], ISCSI_PORT)),
            spin: Duration::from_micros(50),
            spin_max_batch: 0,
            max_block: Duration::from_millis(100),
            coalesce: Duration::ZERO,
            coalesce_max_bytes: 128 * 1024,
        }
    }
}

/// Stops a running server from any thread.
#[derive(Debug, Clone)]
pub struct StopHandle {
    flag: Arc<AtomicBool>,
    waker: Arc<Waker>,
}

impl StopHandle {
    /// Asks the loop to close every connection and return.
    pub fn stop(&self) {
        self.flag.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
    }
}

/// Socket-level counters of a [`Server`] (per IO they say how well its calls are batched).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Waits in the poller (`epoll_wait`), blocking or not.
    pub polls: u64,
    /// Socket reads that returned bytes.
    pub reads: u64,
    /// Socket reads that found nothing (`WouldBlock`).
    pub empty_reads: u64,
    /// Socket writes (each takes as much of the connection's queued output as the
    /// socket accepts: every PDU the portal produced in that pass).
    pub writes: u64,
    /// Moderation sleeps ([`NetConfig::coalesce`]).
    pub coalesced: u64,
}

impl std::fmt::Display for NetStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} polls, {} reads ({} empty), {} writes, {} moderation sleeps",
            self.polls,
            self.reads + self.empty_reads,
            self.empty_reads,
            self.writes,
            self.coalesced
        )
    }
}

struct NetConn {
    stream: TcpStream,
    id: ConnId,
    rx: Vec<u8>,
    start: usize,
    end: usize,
    /// Input may be waiting in the socket (edge-triggered readiness).
    readable: bool,
}

/// A listening portal with its sockets.
pub struct Server {
    poll: Poll,
    listener: TcpListener,
    conns: FxHashMap<Token, NetConn>,
    next_token: usize,
    portal: Portal,
    start: Instant,
    waker: Arc<Waker>,
    stop: Arc<AtomicBool>,
    local_addr: SocketAddr,
    cfg: NetConfig,
    rx_cap: usize,
    /// The connections of one pass (kept for its buffer).
    tokens: Vec<Token>,
    stats: NetStats,
    spin_policy: SpinPolicy,
    /// Bytes read and written by the current pass.
    pass_bytes: usize,
}

/// Whether the loop may spin ([`NetConfig::spin_max_batch`]): not for the next
/// [`SpinPolicy::HOLD`] passes that bring commands after one that brought more than the
/// limit. A maximum with hold-off rather than an average: while the loop spins it takes
/// commands as they come, one or two a pass even at a high queue depth, so an average
/// would keep it spinning; a single larger batch ends the spinning.
#[derive(Debug, Clone, Copy)]
struct SpinPolicy {
    /// Passes with commands still to see before spinning again.
    hold: u32,
    /// The limit (0: none).
    max: u32,
}

impl SpinPolicy {
    const HOLD: u32 = 64;

    fn new(max: u32) -> SpinPolicy {
        SpinPolicy { hold: 0, max }
    }

    fn record(&mut self, new_commands: u64) {
        if self.max == 0 || new_commands == 0 {
            return;
        }
        if new_commands > u64::from(self.max) {
            self.hold = Self::HOLD;
        } else {
            self.hold = self.hold.saturating_sub(1);
        }
    }

    fn may_spin(&self) -> bool {
        self.hold == 0
    }

    /// Commands come in batches larger than the limit (there is one): the high queue
    /// depth regime, where [`NetConfig::coalesce`] applies.
    fn deep(&self) -> bool {
        self.hold > 0
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr)
            .field("connections", &self.conns.len())
            .finish()
    }
}

impl Server {
    /// Binds the listener and builds the portal. The CHAP/StatSN generator is seeded
    /// from the operating system unless `portal.rng_seed` was changed from the default.
    pub fn bind(net: NetConfig, mut portal: PortalConfig) -> io::Result<Server> {
        let spin_policy = SpinPolicy::new(net.spin_max_batch);
        if portal.rng_seed == PortalConfig::default().rng_seed {
            portal.rng_seed = os_seed();
        }
        let rx_cap = 2
            * (portal.limits.max_recv_data_segment_length as usize + 48 + 1024 + 8).max(128 * 1024);
        let portal = Portal::new(portal).map_err(|e| io::Error::new(ErrorKind::InvalidInput, e))?;
        let poll = Poll::new()?;
        let mut listener = TcpListener::bind(net.listen)?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let local_addr = listener.local_addr()?;
        Ok(Server {
            poll,
            listener,
            conns: FxHashMap::default(),
            next_token: FIRST_CONN,
            portal,
            start: Instant::now(),
            waker,
            stop: Arc::new(AtomicBool::new(false)),
            local_addr,
            cfg: net,
            rx_cap,
            tokens: Vec::new(),
            stats: NetStats::default(),
            spin_policy,
            pass_bytes: 0,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The portal state machine.
    pub fn portal(&self) -> &Portal {
        &self.portal
    }

    /// Socket-level counters.
    pub fn net_stats(&self) -> NetStats {
        self.stats
    }

    /// A handle that stops [`Server::run`] from another thread.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            flag: self.stop.clone(),
            waker: self.waker.clone(),
        }
    }

    /// Wakes the loop from another thread (a SAN with work for [`SanPoll::poll`]).
    pub fn waker(&self) -> Arc<Waker> {
        self.waker.clone()
    }

    /// The portal clock: time since the server was bound.
    pub fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// Runs until stopped: sockets, portal timers and the SAN in one loop.
    pub fn run<S: SanPoll + ?Sized>(&mut self, san: &mut S) -> io::Result<()> {
        let mut events = Events::with_capacity(256);
        let mut last_work = Instant::now();
        // The last pass brought new SCSI commands.
        let mut brought = false;
        if !self.cfg.coalesce.is_zero() {
            fine_timer_slack();
        }
        loop {
            if self.stop.load(Ordering::SeqCst) {
                self.shutdown(san);
                return Ok(());
            }
            let now = self.now();
            let timeout = if self.spin_policy.may_spin() && last_work.elapsed() < self.cfg.spin {
                Duration::ZERO
            } else {
                let mut t = self.cfg.max_block;
                for at in [self.portal.poll_at(), san.poll_at()].into_iter().flatten() {
                    t = t.min(at.saturating_sub(now));
                }
                t
            };
            let timeout = if brought && !timeout.is_zero() && self.moderate() {
                // Let the initiators' next commands gather, then take them all at once.
                self.stats.coalesced += 1;
                std::thread::sleep(self.cfg.coalesce.min(timeout));
                Duration::ZERO
            } else {
                timeout
            };
            self.stats.polls += 1;
            match self.poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let mut work = !events.is_empty();
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.accept_all()?,
                    WAKER => {}
                    t => {
                        if let Some(nc) = self.conns.get_mut(&t)
                            && (ev.is_readable() || ev.is_read_closed() || ev.is_error())
                        {
                            nc.readable = true;
                        }
                    }
                }
            }
            let commands = self.portal.stats().commands;
            work |= self.service(san);
            let new_commands = self.portal.stats().commands.wrapping_sub(commands);
            self.spin_policy.record(new_commands);
            if work {
                last_work = Instant::now();
            }
            brought = new_commands > 0;
        }
    }

    /// Whether to sleep for [`NetConfig::coalesce`] before the next look at the sockets.
    fn moderate(&self) -> bool {
        !self.cfg.coalesce.is_zero()
            && self.spin_policy.deep()
            && self.pass_bytes <= self.cfg.coalesce_max_bytes
    }

    /// One pass over every connection and the SAN; returns whether anything happened.
    fn service<S: SanPoll + ?Sized>(&mut self, san: &mut S) -> bool {
        let mut work = false;
        self.pass_bytes = 0;
        let mut tokens = std::mem::take(&mut self.tokens);
        tokens.clear();
        tokens.extend(self.conns.keys().copied());
        for t in &tokens {
            work |= self.read_conn(*t, san);
        }
        // The SAN answers; the portal runs timers and leftover SAN calls.
        for _ in 0..4 {
            let now = self.now();
            let a = san.poll(now, &mut self.portal);
            let b = self.portal.poll(now, san);
            work |= a | b;
            if !(a || b) {
                break;
            }
        }
        for t in &tokens {
            work |= self.write_conn(*t, san);
        }
        self.tokens = tokens;
        work
    }

    fn accept_all(&mut self) -> io::Result<()> {
        loop {
            match self.listener.accept() {
                Ok((mut stream, _peer)) => {
                    let _ = stream.set_nodelay(true);
                    let token = Token(self.next_token);
                    self.next_token += 1;
                    self.poll.registry().register(
                        &mut stream,
                        token,
                        Interest::READABLE | Interest::WRITABLE,
                    )?;
                    let local = stream.local_addr().ok();
                    let id = self.portal.accept(self.now(), local);
                    self.conns.insert(
                        token,
                        NetConn {
                            stream,
                            id,
                            rx: vec![0; self.rx_cap],
                            start: 0,
                            end: 0,
                            readable: true,
                        },
                    );
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                // A connection that failed before we took it (e.g. reset): keep going.
                Err(e) if e.kind() == ErrorKind::ConnectionAborted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn read_conn<S: SanPoll + ?Sized>(&mut self, t: Token, san: &mut S) -> bool {
        let Some(nc) = self.conns.get_mut(&t) else {
            return false;
        };
        let mut work = false;
        let mut closed = false;
        while nc.readable && self.portal.wants_input(nc.id) {
            if nc.end == nc.rx.len() {
                // Keep the partial PDU, make room behind it.
                nc.rx.copy_within(nc.start..nc.end, 0);
                nc.end -= nc.start;
                nc.start = 0;
                if nc.end == nc.rx.len() {
                    // Cannot happen with a sane portal limit; refuse to grow unbounded.
                    closed = true;
                    break;
                }
            }
            match nc.stream.read(&mut nc.rx[nc.end..]) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => {
                    work = true;
                    self.stats.reads += 1;
                    self.pass_bytes += n;
                    // A short read emptied the socket: bytes arriving later raise a new
                    // readiness edge, so the read that would only say WouldBlock is
                    // skipped (one syscall less per batch).
                    if nc.end + n < nc.rx.len() {
                        nc.readable = false;
                    }
                    nc.end += n;
                    let now = self.start.elapsed();
                    let used = self
                        .portal
                        .receive(nc.id, &nc.rx[nc.start..nc.end], now, san);
                    nc.start += used;
                    if nc.start == nc.end {
                        nc.start = 0;
                        nc.end = 0;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.stats.empty_reads += 1;
                    nc.readable = false;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    closed = true;
                    break;
                }
            }
        }
        if closed {
            self.drop_conn(t, san);
            return true;
        }
        work
    }

    fn write_conn<S: SanPoll + ?Sized>(&mut self, t: Token, san: &mut S) -> bool {
        let Some(nc) = self.conns.get_mut(&t) else {
            return false;
        };
        let mut work = false;
        loop {
            let out = self.portal.transmit(nc.id);
            if out.is_empty() {
                break;
            }
            match nc.stream.write(out) {
                Ok(0) => break,
                Ok(n) => {
                    work = true;
                    self.stats.writes += 1;
                    self.pass_bytes += n;
                    self.portal.transmitted(nc.id, n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    self.drop_conn(t, san);
                    return true;
                }
            }
        }
        if self.portal.should_close(nc.id) {
            self.drop_conn(t, san);
            return true;
        }
        work
    }

    fn drop_conn<S: SanPort + ?Sized>(&mut self, t: Token, san: &mut S) {
        if let Some(mut nc) = self.conns.remove(&t) {
            let _ = self.poll.registry().deregister(&mut nc.stream);
            let _ = nc.stream.shutdown(std::net::Shutdown::Both);
            self.portal.close(nc.id, san);
        }
    }

    fn shutdown<S: SanPort + ?Sized>(&mut self, san: &mut S) {
        let tokens: Vec<Token> = self.conns.keys().copied().collect();
        for t in tokens {
            self.drop_conn(t, san);
        }
    }
}

/// A timer slack of 1 µs for the calling thread, so the moderation sleep lasts what was
/// asked (Linux's default slack for normal threads adds up to 50 µs). Best effort: where
/// it cannot be set the sleeps are longer, nothing else changes.
fn fine_timer_slack() {
    #[cfg(target_os = "linux")]
    let _ = nix::sys::prctl::set_timerslack(1_000);
}

fn os_seed() -> u64 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    // RandomState's keys come from the operating system's random source.
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// A server running on its own thread.
#[derive(Debug)]
pub struct ServerHandle {
    /// The address bound.
    pub local_addr: SocketAddr,
    stop: StopHandle,
    join: Option<JoinHandle<io::Result<()>>>,
}

impl ServerHandle {
    /// A handle to stop the server.
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// Stops the server and waits for its thread.
    pub fn stop(mut self) -> io::Result<()> {
        self.stop.stop();
        match self.join.take() {
            Some(j) => j
                .join()
                .map_err(|_| io::Error::other("network thread panicked"))?,
            None => Ok(()),
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop.stop();
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

/// Runs `server` in run-to-completion mode on a new thread, with `san` polled in the
/// same loop.
pub fn spawn_run_to_completion<S: SanPoll + Send + 'static>(
    mut server: Server,
    mut san: S,
) -> io::Result<ServerHandle> {
    let local_addr = server.local_addr();
    let stop = server.stop_handle();
    let join = std::thread::Builder::new()
        .name("iscsi-rtc".into())
        .spawn(move || server.run(&mut san))?;
    Ok(ServerHandle {
        local_addr,
        stop,
        join: Some(join),
    })
}

/// A portal request for a SAN on another thread (owned form of a [`SanPort`] call).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SanRequest {
    /// [`SanPort::login`]; answer with [`SanEvent::LoginDone`].
    Login {
        /// Handle for the answer.
        login: LoginId,
        /// Initiator name.
        initiator_name: String,
        /// Initiator alias.
        initiator_alias: Option<String>,
        /// ISID.
        isid: Isid,
        /// Target name.
        target_name: String,
        /// Target index in the configuration.
        target_index: usize,
        /// Portal group tag.
        portal_group_tag: u16,
        /// TSIH.
        tsih: u16,
    },
    /// [`SanPort::command`].
    Command {
        /// Nexus.
        nexus: NexusId,
        /// Task.
        task: TaskId,
        /// LUN.
        lun: Lun,
        /// CDB.
        cdb: Vec<u8>,
        /// Task attribute.
        attr: TaskAttr,
        /// Expected data transfer length.
        expected_len: u32,
        /// Direction.
        dir: DataDirection,
        /// Unsolicited bytes already received.
        unsolicited_received: u32,
        /// Unsolicited bytes at most.
        unsolicited_max: u32,
    },
    /// [`SanPort::data_out`].
    DataOut {
        /// Nexus.
        nexus: NexusId,
        /// Task.
        task: TaskId,
        /// Offset.
        offset: u32,
        /// Bytes.
        data: Vec<u8>,
        /// Ends the current request.
        last: bool,
    },
    /// [`SanPort::task_mgmt`].
    TaskMgmt {
        /// Nexus.
        nexus: NexusId,
        /// TMF handle.
        tmf: TmfId,
        /// Request.
        req: TaskMgmt,
    },
    /// [`SanPort::abort_task`].
    AbortTask {
        /// Nexus.
        nexus: NexusId,
        /// Task.
        task: TaskId,
    },
    /// [`SanPort::logout`].
    Logout {
        /// Nexus.
        nexus: NexusId,
        /// Why.
        reason: NexusLoss,
    },
}

/// A SAN answer from another thread (owned form of a [`SanEvents`] call).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SanEvent {
    /// [`SanEvents::login_done`].
    LoginDone {
        /// Handle.
        login: LoginId,
        /// Result.
        result: Result<NexusId, LoginStatus>,
    },
    /// [`SanEvents::ready_to_transfer`].
    ReadyToTransfer {
        /// Task.
        task: TaskId,
        /// Offset.
        offset: u32,
        /// Length.
        len: u32,
    },
    /// [`SanEvents::data_in`].
    DataIn {
        /// Task.
        task: TaskId,
        /// Offset.
        offset: u32,
        /// Bytes.
        data: Vec<u8>,
    },
    /// [`SanEvents::status`].
    Status {
        /// Task.
        task: TaskId,
        /// SCSI status.
        status: u8,
        /// Sense data.
        sense: Vec<u8>,
        /// Residual.
        residual: Residual,
    },
    /// [`SanEvents::task_aborted`].
    TaskAborted {
        /// Task.
        task: TaskId,
    },
    /// [`SanEvents::tmf_done`].
    TmfDone {
        /// TMF handle.
        tmf: TmfId,
        /// Response.
        response: TmfResponseCode,
    },
    /// [`SanEvents::async_event`].
    AsyncEvent {
        /// Nexus.
        nexus: NexusId,
        /// LUN.
        lun: Lun,
        /// Sense data.
        sense: Vec<u8>,
    },
}

impl SanEvent {
    /// Applies the event to a portal (or anything implementing [`SanEvents`]).
    pub fn apply(&self, ev: &mut dyn SanEvents) {
        // A refused event (stale handle) is harmless by design: ignore the result.
        let _ = match self {
            SanEvent::LoginDone { login, result } => ev.login_done(*login, *result),
            SanEvent::ReadyToTransfer { task, offset, len } => {
                ev.ready_to_transfer(*task, *offset, *len)
            }
            SanEvent::DataIn { task, offset, data } => ev.data_in(*task, *offset, data),
            SanEvent::Status {
                task,
                status,
                sense,
                residual,
            } => ev.status(
                *task,
                &ScsiStatus {
                    status: *status,
                    sense,
                    residual: *residual,
                },
            ),
            SanEvent::TaskAborted { task } => ev.task_aborted(*task),
            SanEvent::TmfDone { tmf, response } => ev.tmf_done(*tmf, *response),
            SanEvent::AsyncEvent { nexus, lun, sense } => ev.async_event(*nexus, *lun, sense),
        };
    }
}

/// Sends SAN events to the network thread and wakes it.
#[derive(Debug, Clone)]
pub struct EventSender {
    tx: Sender<SanEvent>,
    waker: Arc<Waker>,
}

/// The network thread is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Disconnected;

impl std::fmt::Display for Disconnected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("network thread gone")
    }
}

impl std::error::Error for Disconnected {}

impl EventSender {
    /// Sends one event and wakes the network thread.
    pub fn send(&self, ev: SanEvent) -> Result<(), Disconnected> {
        self.tx.send(ev).map_err(|_| Disconnected)?;
        self.waker.wake().map_err(|_| Disconnected)
    }

    /// Sends several events with a single wake-up.
    pub fn send_batch(&self, evs: impl IntoIterator<Item = SanEvent>) -> Result<(), Disconnected> {
        for ev in evs {
            self.tx.send(ev).map_err(|_| Disconnected)?;
        }
        self.waker.wake().map_err(|_| Disconnected)
    }
}

/// The SAN thread's end of a threaded server.
#[derive(Debug)]
pub struct SanEndpoint {
    /// Requests from the portal, in order.
    pub requests: Receiver<SanRequest>,
    /// Where to send answers.
    pub events: EventSender,
}

/// The network thread's SAN: forwards requests over a channel, applies events.
struct ChannelSan {
    tx: Sender<SanRequest>,
    rx: Receiver<SanEvent>,
}

impl ChannelSan {
    fn send(&mut self, r: SanRequest) {
        // If the SAN thread is gone, requests go nowhere; the portal keeps running and
        // its tasks time out at the initiator.
        let _ = self.tx.send(r);
    }
}

impl SanPort for ChannelSan {
    fn login(&mut self, req: &SessionLogin<'_>) -> LoginDecision {
        self.send(SanRequest::Login {
            login: req.login,
            initiator_name: req.initiator_name.to_owned(),
            initiator_alias: req.initiator_alias.map(str::to_owned),
            isid: req.isid,
            target_name: req.target_name.to_owned(),
            target_index: req.target_index,
            portal_group_tag: req.portal_group_tag,
            tsih: req.tsih,
        });
        LoginDecision::Pending
    }

    fn command(&mut self, nexus: NexusId, task: TaskId, cmd: &Command<'_>) {
        self.send(SanRequest::Command {
            nexus,
            task,
            lun: cmd.lun,
            cdb: cmd.cdb.to_vec(),
            attr: cmd.attr,
            expected_len: cmd.expected_len,
            dir: cmd.dir,
            unsolicited_received: cmd.unsolicited_received,
            unsolicited_max: cmd.unsolicited_max,
        });
    }

    fn data_out(&mut self, nexus: NexusId, task: TaskId, offset: u32, data: &[u8], last: bool) {
        self.send(SanRequest::DataOut {
            nexus,
            task,
            offset,
            data: data.to_vec(),
            last,
        });
    }

    fn task_mgmt(&mut self, nexus: NexusId, tmf: TmfId, req: &TaskMgmt) {
        self.send(SanRequest::TaskMgmt {
            nexus,
            tmf,
            req: *req,
        });
    }

    fn abort_task(&mut self, nexus: NexusId, task: TaskId) {
        self.send(SanRequest::AbortTask { nexus, task });
    }

    fn logout(&mut self, nexus: NexusId, reason: NexusLoss) {
        self.send(SanRequest::Logout { nexus, reason });
    }
}

impl SanPoll for ChannelSan {
    fn poll(&mut self, _now: Duration, events: &mut dyn SanEvents) -> bool {
        let mut any = false;
        loop {
            match self.rx.try_recv() {
                Ok(ev) => {
                    any = true;
                    ev.apply(events);
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return any,
            }
        }
    }
}

/// Runs `server` on a network thread whose SAN is the returned endpoint, to be served
/// from another thread.
pub fn spawn_threaded(mut server: Server) -> io::Result<(ServerHandle, SanEndpoint)> {
    let (req_tx, req_rx) = mpsc::channel();
    let (ev_tx, ev_rx) = mpsc::channel();
    let endpoint = SanEndpoint {
        requests: req_rx,
        events: EventSender {
            tx: ev_tx,
            waker: server.waker(),
        },
    };
    let local_addr = server.local_addr();
    let stop = server.stop_handle();
    let join = std::thread::Builder::new()
        .name("iscsi-net".into())
        .spawn(move || {
            let mut san = ChannelSan {
                tx: req_tx,
                rx: ev_rx,
            };
            server.run(&mut san)
        })?;
    Ok((
        ServerHandle {
            local_addr,
            stop,
            join: Some(join),
        },
        endpoint,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spin_only_while_commands_come_one_or_two_a_pass() {
        let mut p = SpinPolicy::new(2);
        assert!(p.may_spin(), "no commands yet");
        for _ in 0..200 {
            p.record(1);
            p.record(0);
            p.record(2);
            assert!(p.may_spin(), "queue depth 1 or 2");
        }
        p.record(3);
        assert!(!p.may_spin(), "a batch of 3 ends the spinning");
        // Spinning would take the commands of a deep queue one or two at a time: one
        // larger batch among them keeps the loop from spinning.
        for i in 0..10 * SpinPolicy::HOLD {
            p.record(if i % 32 == 0 { 8 } else { 1 });
            assert!(!p.may_spin());
        }
        // Passes without commands do not count.
        p.record(8);
        for _ in 0..1000 {
            p.record(0);
        }
        assert!(!p.may_spin());
        for _ in 0..SpinPolicy::HOLD {
            assert!(!p.may_spin());
            p.record(1);
        }
        assert!(p.may_spin(), "back to spinning after HOLD single commands");
        assert!(!p.deep(), "moderation ends with the high-depth regime");
        p.record(3);
        assert!(p.deep(), "moderation starts with it");
        let mut always = SpinPolicy::new(0);
        always.record(1000);
        assert!(always.may_spin(), "no limit");
        assert!(!always.deep(), "no limit: never the high-depth regime");
    }

    #[test]
    fn listen_address_forms() {
        assert_eq!(
            parse_listen("127.0.0.1:3261").unwrap(),
            "127.0.0.1:3261".parse().unwrap()
        );
        assert_eq!(
            parse_listen("3262").unwrap(),
            "127.0.0.1:3262".parse().unwrap()
        );
        assert_eq!(
            parse_listen(":3263").unwrap(),
            "127.0.0.1:3263".parse().unwrap()
        );
        assert_eq!(
            parse_listen("127.0.0.2").unwrap(),
            "127.0.0.2:3260".parse().unwrap()
        );
        assert_eq!(
            parse_listen("[::1]:3260").unwrap(),
            "[::1]:3260".parse().unwrap()
        );
        assert_eq!(parse_listen("::1").unwrap(), "[::1]:3260".parse().unwrap());
        assert!(parse_listen("not an address:xyz").is_err());
    }
}
