//! The portal: every connection and session of one iSCSI target portal group, as a
//! sans-IO state machine. Bytes go in with [`Portal::receive`], PDUs come out of
//! [`Portal::transmit`], time goes in with [`Portal::poll`]; the SAN is called through
//! [`SanPort`] and answers through [`SanEvents`], which the portal implements.

use std::collections::VecDeque;

use crate::fxhash::FxHashMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use super::chap::ChapConfig;
use super::conn::{Conn, FrameError, Phase, Slab, frame};
use super::params::TargetLimits;
use super::san::{
    EventError, Handle, LoginId, NexusId, NexusLoss, SanEvents, SanPort, ScsiStatus, TaskId, TmfId,
};
use super::wire::{
    AsyncMessageRepr, BHS_LEN, Bhs, LoginStatus, Lun, Opcode, RejectReason, RejectRepr,
    TmfResponseCode,
};

/// One iSCSI target served by the portal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetConfig {
    /// iSCSI name (`iqn.…`, `eui.…` or `naa.…`).
    pub name: String,
    /// TargetAlias sent at login, if any.
    pub alias: Option<String>,
    /// CHAP required for normal sessions to this target, if any.
    pub chap: Option<ChapConfig>,
    /// Initiator names allowed to log in; `None` allows all.
    pub allowed_initiators: Option<Vec<String>>,
}

impl TargetConfig {
    /// A target with no authentication and no initiator restriction.
    pub fn open(name: impl Into<String>) -> Self {
        TargetConfig {
            name: name.into(),
            alias: None,
            chap: None,
            allowed_initiators: None,
        }
    }

    pub(crate) fn allows(&self, initiator: &str) -> bool {
        self.allowed_initiators
            .as_ref()
            .is_none_or(|l| l.iter().any(|n| n.eq_ignore_ascii_case(initiator)))
    }
}

/// Portal configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalConfig {
    /// The targets reachable through this portal.
    pub targets: Vec<TargetConfig>,
    /// Target portal group tag (RFC 7143 §13.9).
    pub portal_group_tag: u16,
    /// CHAP required for discovery sessions, if any.
    pub discovery_chap: Option<ChapConfig>,
    /// Negotiation limits.
    pub limits: TargetLimits,
    /// Commands a session may have outstanding (the CmdSN window).
    pub queue_depth: u32,
    /// Send a NOP-In ping after this much silence from the initiator (`None`: never).
    pub nop_in_interval: Option<Duration>,
    /// Drop the connection when a ping is not answered within this time.
    pub nop_in_timeout: Duration,
    /// Drop a connection whose login has not completed within this time.
    pub login_timeout: Duration,
    /// `TargetAddress` in SendTargets answers; by default the address the connection
    /// was accepted on.
    pub target_address: Option<String>,
    /// Seed of the generator for CHAP challenges and initial StatSNs. The network layer
    /// seeds it from the operating system; tests fix it.
    pub rng_seed: u64,
}

impl Default for PortalConfig {
    fn default() -> Self {
        PortalConfig {
            targets: Vec::new(),
            portal_group_tag: 1,
            discovery_chap: None,
            limits: TargetLimits::default(),
            queue_depth: 128,
            nop_in_interval: Some(Duration::from_secs(30)),
            nop_in_timeout: Duration::from_secs(15),
            login_timeout: Duration::from_secs(30),
            target_address: None,
            rng_seed: 0x5eed_1557,
        }
    }
}

/// A configuration the portal refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// A target name is empty, too long (over 223 bytes, RFC 7143 §4.2.7.1) or has
    /// characters outside the iSCSI name alphabet.
    BadTargetName(String),
    /// Two targets share a name.
    DuplicateTarget(String),
    /// A length limit is outside 512..=16777215 or FirstBurstLength > MaxBurstLength.
    BadLimit(&'static str),
    /// The queue depth is 0 or above 2^20.
    BadQueueDepth,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::BadTargetName(n) => write!(f, "invalid target name {n:?}"),
            ConfigError::DuplicateTarget(n) => write!(f, "duplicate target {n}"),
            ConfigError::BadLimit(k) => write!(f, "invalid limit {k}"),
            ConfigError::BadQueueDepth => f.write_str("queue depth must be 1..=1048576"),
        }
    }
}

impl std::error::Error for ConfigError {}

fn valid_iscsi_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 223
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'))
}

/// A connection handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub(crate) Handle);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// Counters, for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortalStats {
    /// Connections accepted.
    pub connections: u64,
    /// Logins that reached full feature phase.
    pub logins: u64,
    /// Logins refused.
    pub login_failures: u64,
    /// Sessions replaced by a new login with the same ISID.
    pub reinstatements: u64,
    /// Reject PDUs sent.
    pub rejects: u64,
    /// Connections dropped for a protocol or digest error.
    pub protocol_errors: u64,
    /// Commands dropped because their CmdSN was outside the window.
    pub cmdsn_dropped: u64,
    /// Data-Out PDUs for unknown tasks (discarded).
    pub stray_data_out: u64,
    /// SAN events refused (stale or invalid).
    pub refused_events: u64,
    /// SCSI commands given to the SAN.
    pub commands: u64,
}

/// SAN calls the portal could not make at the time (it was inside a SAN event).
#[derive(Debug)]
pub(crate) enum Deferred {
    /// Deliver buffered unsolicited data and send R2Ts for a task.
    Pump(TaskId),
    /// Tell the SAN a task is gone.
    Abort(NexusId, TaskId),
    /// Tell the SAN a nexus is gone.
    Logout(NexusId, NexusLoss),
}

/// Key of the session table used for reinstatement (RFC 7143 §6.3.5): initiator name,
/// ISID and target (`None` for discovery).
pub(crate) type SessionKey = (String, [u8; 6], Option<usize>);

/// The iSCSI portal state machine.
#[derive(Debug)]
pub struct Portal {
    pub(crate) cfg: PortalConfig,
    /// Boxed: every event takes its connection out of the slab and puts it back.
    pub(crate) conns: Slab<Box<Conn>>,
    pub(crate) by_isid: FxHashMap<SessionKey, Handle>,
    pub(crate) by_tsih: FxHashMap<u16, Handle>,
    pub(crate) by_nexus: FxHashMap<NexusId, Handle>,
    next_tsih: u16,
    rng: u64,
    pub(crate) deferred: VecDeque<Deferred>,
    pub(crate) now: Duration,
    pub(crate) stats: PortalStats,
}

/// How long a connection may take to flush its last PDUs before it is cut.
const CLOSING_GRACE: Duration = Duration::from_secs(5);

impl Portal {
    /// Creates a portal after checking the configuration.
    pub fn new(cfg: PortalConfig) -> Result<Self, ConfigError> {
        for (i, t) in cfg.targets.iter().enumerate() {
            if !valid_iscsi_name(&t.name) {
                return Err(ConfigError::BadTargetName(t.name.clone()));
            }
            if cfg.targets[..i]
                .iter()
                .any(|o| o.name.eq_ignore_ascii_case(&t.name))
            {
                return Err(ConfigError::DuplicateTarget(t.name.clone()));
            }
        }
        let l = &cfg.limits;
        let range = super::params::MIN_LENGTH..=super::params::MAX_LENGTH;
        if !range.contains(&l.max_recv_data_segment_length) {
            return Err(ConfigError::BadLimit("MaxRecvDataSegmentLength"));
        }
        if !range.contains(&l.max_burst_length) {
            return Err(ConfigError::BadLimit("MaxBurstLength"));
        }
        if !range.contains(&l.first_burst_length) || l.first_burst_length > l.max_burst_length {
            return Err(ConfigError::BadLimit("FirstBurstLength"));
        }
        if l.max_outstanding_r2t == 0 {
            return Err(ConfigError::BadLimit("MaxOutstandingR2T"));
        }
        if cfg.queue_depth == 0 || cfg.queue_depth > (1 << 20) {
            return Err(ConfigError::BadQueueDepth);
        }
        let rng = cfg.rng_seed;
        Ok(Portal {
            cfg,
            conns: Slab::default(),
            by_isid: FxHashMap::default(),
            by_tsih: FxHashMap::default(),
            by_nexus: FxHashMap::default(),
            next_tsih: 1,
            rng,
            deferred: VecDeque::new(),
            now: Duration::ZERO,
            stats: PortalStats::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &PortalConfig {
        &self.cfg
    }

    /// Counters.
    pub fn stats(&self) -> PortalStats {
        self.stats
    }

    /// Open connections.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Sessions in full feature phase.
    pub fn session_count(&self) -> usize {
        self.conns
            .iter()
            .filter(|(_, c)| c.session.is_some() && c.phase == Phase::FullFeature)
            .count()
    }

    /// Tasks in flight on a connection (for tests and statistics).
    pub fn task_count(&self, conn: ConnId) -> usize {
        self.conns.get(conn.0).map_or(0, |c| c.tasks.len())
    }

    /// The TSIH of the connection's session, once in full feature phase.
    pub fn tsih(&self, conn: ConnId) -> Option<u16> {
        self.conns
            .get(conn.0)
            .and_then(|c| c.session.as_ref())
            .map(|s| s.tsih)
    }

    /// The SAN nexus of the connection's session, for a normal session.
    pub fn nexus(&self, conn: ConnId) -> Option<NexusId> {
        self.conns
            .get(conn.0)
            .and_then(|c| c.session.as_ref())
            .and_then(|s| s.nexus())
    }

    /// The handle under which a login on `conn` is (or would be) given to the SAN in
    /// [`SessionLogin::login`](super::san::SessionLogin).
    pub fn login_id(&self, conn: ConnId) -> LoginId {
        LoginId { conn: conn.0 }
    }

    pub(crate) fn random(&mut self) -> u64 {
        // SplitMix64.
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub(crate) fn alloc_tsih(&mut self) -> u16 {
        loop {
            let t = self.next_tsih;
            self.next_tsih = self.next_tsih.wrapping_add(1);
            if self.next_tsih == 0 {
                self.next_tsih = 1;
            }
            if t != 0 && !self.by_tsih.contains_key(&t) {
                return t;
            }
        }
    }

    /// A new TCP connection was accepted on `local_addr`.
    pub fn accept(&mut self, now: Duration, local_addr: Option<SocketAddr>) -> ConnId {
        self.now = now;
        self.stats.connections += 1;
        let statsn = self.random() as u32;
        ConnId(
            self.conns
                .insert(Box::new(Conn::new(now, statsn, local_addr))),
        )
    }

    /// Feeds received bytes. Returns how many were consumed: whole PDUs only; the caller
    /// keeps the rest and offers it again with more bytes. Everything is consumed once the
    /// connection is closing.
    pub fn receive<S: SanPort + ?Sized>(
        &mut self,
        conn: ConnId,
        input: &[u8],
        now: Duration,
        san: &mut S,
    ) -> usize {
        self.now = now;
        self.flush_deferred(san);
        let Some(mut c) = self.conns.take(conn.0) else {
            return input.len();
        };
        let mut used = 0;
        while matches!(c.phase, Phase::Login | Phase::FullFeature) {
            let max = self.cfg.limits.max_recv_data_segment_length;
            match frame(&input[used..], c.rx_digests, max) {
                Ok(None) => break,
                Ok(Some(f)) => {
                    let len = f.len;
                    c.last_rx = now;
                    c.rx_pdus += 1;
                    self.dispatch(&mut c, conn.0, &f, san);
                    used += len;
                }
                Err((FrameError::HeaderDigest, _)) => {
                    self.stats.protocol_errors += 1;
                    self.fail_conn(&mut c, conn.0, NexusLoss::ProtocolError);
                    c.phase = Phase::Dead;
                }
                Err((FrameError::DataDigest, _)) => {
                    let mut hdr = [0u8; BHS_LEN];
                    hdr.copy_from_slice(&input[used..used + BHS_LEN]);
                    self.reject(&mut c, RejectReason::DataDigestError, &hdr);
                    self.stats.protocol_errors += 1;
                    self.fail_conn(&mut c, conn.0, NexusLoss::ProtocolError);
                }
                Err((FrameError::TooLong, _)) => {
                    let mut hdr = [0u8; BHS_LEN];
                    hdr.copy_from_slice(&input[used..used + BHS_LEN]);
                    self.reject(&mut c, RejectReason::ProtocolError, &hdr);
                    self.stats.protocol_errors += 1;
                    self.fail_conn(&mut c, conn.0, NexusLoss::ProtocolError);
                }
            }
        }
        if matches!(c.phase, Phase::Closing | Phase::Dead) {
            used = input.len();
        }
        self.conns.put_back(conn.0, c);
        self.flush_deferred(san);
        used
    }

    /// Bytes waiting to be written to the connection's socket.
    pub fn transmit(&self, conn: ConnId) -> &[u8] {
        self.conns.get(conn.0).map_or(&[][..], |c| c.tx.pending())
    }

    /// Bytes waiting to be written, without borrowing them.
    pub fn transmit_len(&self, conn: ConnId) -> usize {
        self.conns.get(conn.0).map_or(0, |c| c.tx.len())
    }

    /// `n` bytes of [`Portal::transmit`] were written to the socket.
    pub fn transmitted(&mut self, conn: ConnId, n: usize) {
        if let Some(c) = self.conns.get_mut(conn.0) {
            c.tx.advance(n);
        }
    }

    /// Whether the network layer should close the socket now.
    pub fn should_close(&self, conn: ConnId) -> bool {
        match self.conns.get(conn.0) {
            None => true,
            Some(c) => c.phase == Phase::Dead || (c.phase == Phase::Closing && c.tx.is_empty()),
        }
    }

    /// Whether the connection wants more input (back-pressure: not while closing or while
    /// much output is waiting).
    pub fn wants_input(&self, conn: ConnId) -> bool {
        self.conns.get(conn.0).is_some_and(|c| {
            matches!(c.phase, Phase::Login | Phase::FullFeature) && c.tx.len() < (16 << 20)
        })
    }

    /// The socket is gone (closed by the peer, an error, or after [`Portal::should_close`]):
    /// ends the session if it still exists and frees the connection.
    pub fn close<S: SanPort + ?Sized>(&mut self, conn: ConnId, san: &mut S) {
        if let Some(mut c) = self.conns.take(conn.0) {
            self.teardown(&mut c, conn.0, NexusLoss::ConnectionLost);
            self.conns.put_back(conn.0, c);
            self.conns.remove(conn.0);
        }
        self.flush_deferred(san);
    }

    /// Runs timers (NOP-In pings, login and close timeouts) and SAN calls left over from
    /// SAN events. Returns whether anything happened.
    pub fn poll<S: SanPort + ?Sized>(&mut self, now: Duration, san: &mut S) -> bool {
        self.now = now;
        let mut progress = self.flush_deferred(san);
        // By slot, not over a list of handles: no allocation per poll.
        for i in 0..self.conns.slot_count() {
            let Some(h) = self.conns.handle_at(i) else {
                continue;
            };
            let Some(mut c) = self.conns.take(h) else {
                continue;
            };
            progress |= self.timers(&mut c, h, now);
            self.conns.put_back(h, c);
        }
        progress |= self.flush_deferred(san);
        progress
    }

    /// When [`Portal::poll`] next has timer work (`None`: none pending).
    pub fn poll_at(&self) -> Option<Duration> {
        if !self.deferred.is_empty() {
            return Some(self.now);
        }
        let mut at: Option<Duration> = None;
        let mut min = |t: Duration| at = Some(at.map_or(t, |a| a.min(t)));
        for (_, c) in self.conns.iter() {
            match c.phase {
                Phase::Login => min(c.accepted_at + self.cfg.login_timeout),
                Phase::FullFeature => {
                    if let Some(p) = c.ping {
                        min(p.sent + self.cfg.nop_in_timeout);
                    } else if let Some(iv) = self.cfg.nop_in_interval {
                        min(c.last_rx + iv);
                    }
                }
                Phase::Closing => min(c.last_rx.max(c.accepted_at) + CLOSING_GRACE),
                Phase::Dead => min(self.now),
            }
        }
        at
    }

    fn timers(&mut self, c: &mut Conn, h: Handle, now: Duration) -> bool {
        match c.phase {
            Phase::Login if now >= c.accepted_at + self.cfg.login_timeout => {
                c.phase = Phase::Dead;
                true
            }
            Phase::FullFeature => {
                if let Some(p) = c.ping {
                    if now >= p.sent + self.cfg.nop_in_timeout {
                        self.fail_conn(c, h, NexusLoss::ConnectionLost);
                        c.phase = Phase::Dead;
                        return true;
                    }
                    false
                } else if let Some(iv) = self.cfg.nop_in_interval
                    && now >= c.last_rx + iv
                {
                    self.send_ping(c, now);
                    true
                } else {
                    false
                }
            }
            Phase::Closing if now >= c.last_rx.max(c.accepted_at) + CLOSING_GRACE => {
                c.phase = Phase::Dead;
                true
            }
            _ => false,
        }
    }

    pub(crate) fn flush_deferred<S: SanPort + ?Sized>(&mut self, san: &mut S) -> bool {
        let mut any = false;
        while let Some(d) = self.deferred.pop_front() {
            any = true;
            match d {
                Deferred::Abort(n, t) => san.abort_task(n, t),
                Deferred::Logout(n, r) => san.logout(n, r),
                Deferred::Pump(t) => {
                    if let Some(mut c) = self.conns.take(t.conn) {
                        self.pump(&mut c, t.conn, t.task, san);
                        self.conns.put_back(t.conn, c);
                    }
                }
            }
        }
        any
    }

    fn dispatch<S: SanPort + ?Sized>(
        &mut self,
        c: &mut Conn,
        ch: Handle,
        f: &super::conn::Frame<'_>,
        san: &mut S,
    ) {
        let bhs = Bhs::new_unchecked(f.bhs);
        match c.phase {
            Phase::Login => {
                if bhs.opcode() == Opcode::LoginRequest {
                    self.on_login(c, ch, f, san);
                } else {
                    // RFC 7143 §6.3: only Login Requests before full feature phase.
                    self.stats.protocol_errors += 1;
                    c.phase = Phase::Dead;
                }
            }
            Phase::FullFeature => self.on_full_feature(c, ch, f, san),
            Phase::Closing | Phase::Dead => {}
        }
    }

    /// Sends a Reject carrying the offending header (RFC 7143 §11.17).
    pub(crate) fn reject(&mut self, c: &mut Conn, reason: RejectReason, hdr: &[u8; BHS_LEN]) {
        self.stats.rejects += 1;
        let (exp, max) = c.window();
        let mut out = [0u8; BHS_LEN];
        RejectRepr {
            reason,
            statsn: c.take_statsn(),
            exp_cmdsn: exp,
            max_cmdsn: max,
            datasn: 0,
        }
        .emit(&mut out);
        c.send(&out, &[hdr]);
    }

    /// Ends the connection's session (if any) and starts closing the connection.
    pub(crate) fn fail_conn(&mut self, c: &mut Conn, ch: Handle, reason: NexusLoss) {
        self.teardown(c, ch, reason);
        if c.phase != Phase::Dead {
            c.phase = Phase::Closing;
            // The closing grace period counts from here.
            c.last_rx = self.now;
        }
    }

    /// Forgets the session of `c`: aborts its tasks at the SAN, then ends the nexus.
    pub(crate) fn teardown(&mut self, c: &mut Conn, ch: Handle, reason: NexusLoss) {
        c.login = None;
        let Some(s) = c.session.take() else {
            return;
        };
        let key: SessionKey = (
            s.initiator_name.clone(),
            s.isid.0,
            match s.kind {
                super::conn::SessionKind::Normal { target, .. } => Some(target),
                super::conn::SessionKind::Discovery => None,
            },
        );
        if self.by_isid.get(&key) == Some(&ch) {
            self.by_isid.remove(&key);
        }
        if self.by_tsih.get(&s.tsih) == Some(&ch) {
            self.by_tsih.remove(&s.tsih);
        }
        if let Some(nexus) = s.nexus() {
            if self.by_nexus.get(&nexus) == Some(&ch) {
                self.by_nexus.remove(&nexus);
            }
            for (th, t) in c.tasks.iter() {
                if t.state == super::conn::TaskState::Active {
                    self.deferred
                        .push_back(Deferred::Abort(nexus, TaskId { conn: ch, task: th }));
                }
            }
            self.deferred.push_back(Deferred::Logout(nexus, reason));
        }
        c.tasks = Slab::default();
        c.itt_map.clear();
        c.tmfs = Slab::default();
    }

    fn with_conn<R>(
        &mut self,
        h: Handle,
        f: impl FnOnce(&mut Portal, &mut Conn) -> Result<R, EventError>,
    ) -> Result<R, EventError> {
        let Some(mut c) = self.conns.take(h) else {
            self.stats.refused_events += 1;
            return Err(EventError::Stale);
        };
        let r = f(self, &mut c);
        self.conns.put_back(h, c);
        if r.is_err() {
            self.stats.refused_events += 1;
        }
        r
    }
}

impl SanEvents for Portal {
    fn login_done(
        &mut self,
        login: LoginId,
        result: Result<NexusId, LoginStatus>,
    ) -> Result<(), EventError> {
        self.with_conn(login.conn, |p, c| {
            p.finish_pending_login(c, login.conn, result)
        })
    }

    fn ready_to_transfer(&mut self, task: TaskId, offset: u32, len: u32) -> Result<(), EventError> {
        self.with_conn(task.conn, |p, c| {
            p.on_ready_to_transfer(c, task, offset, len)
        })
    }

    fn data_in(&mut self, task: TaskId, offset: u32, data: &[u8]) -> Result<(), EventError> {
        self.with_conn(task.conn, |p, c| p.on_data_in(c, task, offset, &[data]))
    }

    fn data_in_parts(
        &mut self,
        task: TaskId,
        offset: u32,
        parts: &[&[u8]],
    ) -> Result<(), EventError> {
        self.with_conn(task.conn, |p, c| p.on_data_in(c, task, offset, parts))
    }

    fn status(&mut self, task: TaskId, status: &ScsiStatus<'_>) -> Result<(), EventError> {
        self.with_conn(task.conn, |p, c| p.on_status(c, task, status))
    }

    fn task_aborted(&mut self, task: TaskId) -> Result<(), EventError> {
        self.with_conn(task.conn, |p, c| {
            c.remove_task(task.task).ok_or(EventError::Stale)?;
            p.update_window(c);
            Ok(())
        })
    }

    fn tmf_done(&mut self, tmf: TmfId, response: TmfResponseCode) -> Result<(), EventError> {
        self.with_conn(tmf.conn, |p, c| p.on_tmf_done(c, tmf, response))
    }

    fn async_event(&mut self, nexus: NexusId, lun: Lun, sense: &[u8]) -> Result<(), EventError> {
        let Some(&h) = self.by_nexus.get(&nexus) else {
            self.stats.refused_events += 1;
            return Err(EventError::Stale);
        };
        if sense.len() > 0xffff {
            return Err(EventError::Invalid("sense too long"));
        }
        self.with_conn(h, |_, c| {
            if c.phase != Phase::FullFeature {
                return Err(EventError::Stale);
            }
            let (exp, max) = c.window();
            let mut hdr = [0u8; BHS_LEN];
            AsyncMessageRepr {
                lun,
                statsn: c.take_statsn(),
                exp_cmdsn: exp,
                max_cmdsn: max,
                event: 0,
                vcode: 0,
                param1: 0,
                param2: 0,
                param3: 0,
            }
            .emit(&mut hdr);
            let len = (sense.len() as u16).to_be_bytes();
            c.send(&hdr, &[&len, sense]);
            Ok(())
        })
    }
}
