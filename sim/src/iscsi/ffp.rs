//! Full feature phase (RFC 7143 §4.2, §11): commands in CmdSN order, the data phases,
//! R2T generation, task management, NOP, text (SendTargets) and logout.
//!
//! * Ordering (§4.2.2.1): non-immediate PDUs are processed in CmdSN order; a CmdSN ahead
//!   of ExpCmdSN within the window waits; one outside the window is silently dropped.
//!   MaxCmdSN grows as tasks finish, bounding the commands in flight to the queue depth
//!   and never shrinking.
//! * Write data (§4.2.5.2, §13.10-§13.14): immediate data and unsolicited Data-Out (up to
//!   FirstBurstLength, ending with F) are buffered; the SAN's `ready_to_transfer` requests
//!   are served from that buffer, then with R2Ts of at most MaxBurstLength, at most
//!   MaxOutstandingR2T at a time. DataSN, offsets and lengths are checked; at
//!   ErrorRecoveryLevel 0 there is no within-command recovery, so a violation ends that
//!   task with CHECK CONDITION (ABORTED COMMAND) and the connection stays up.
//! * Read data (§11.7): Data-In PDUs no larger than the initiator's
//!   MaxRecvDataSegmentLength, sequences no longer than MaxBurstLength (F bit at each
//!   end); a GOOD status without sense rides on the last Data-In (S bit) when that PDU has
//!   not left yet, otherwise a SCSI Response follows (§11.4.7 sense with its 2-byte length).
//! * Status waits for the initiator's outstanding data (unsolicited sequence, answered
//!   R2Ts) so no Data-Out arrives for a finished task.

use std::cmp::min;

use super::conn::{
    Conn, Grant, ParkedStatus, PendingTmf, Phase, Queued, R2tState, SessionKind, Task, TaskState,
    TextContinuation,
};
use super::portal::{Deferred, Portal};
use super::san::{
    Command, DataDirection, EventError, Handle, NexusLoss, SanPort, ScsiStatus, TaskId, TaskMgmt,
    TmfId,
};
use super::text;
use super::wire::{
    BHS_LEN, Bhs, DataInRepr, DataOutRepr, LogoutReason, LogoutRequestRepr, LogoutResponseRepr,
    Lun, NopInRepr, NopOutRepr, Opcode, R2tRepr, RESERVED_TAG, RejectReason, Residual,
    ScsiCommandRepr, ScsiResponseRepr, TextRequestRepr, TextResponseRepr, TmfFunction,
    TmfRequestRepr, TmfResponseCode, TmfResponseRepr, ahs, ahs_iter, sn_le, sn_lt,
};

/// Largest text request accumulated across continued PDUs.
const MAX_TEXT: usize = 64 * 1024;
/// Immediate commands allowed beyond the queue depth before TASK SET FULL.
const IMMEDIATE_SLACK: usize = 16;

const STATUS_TASK_SET_FULL: u8 = 0x28;
/// WRITE ERROR (SPC-4 Annex D, ASC 0x0C) with ASCQ 0x0C: unexpected unsolicited data.
const ASC_WRITE_ERROR: u8 = 0x0c;
const ASCQ_UNEXPECTED_UNSOLICITED: u8 = 0x0c;
/// ASC 0x4B: DATA PHASE ERROR (ASCQ 0) and DATA OFFSET ERROR (ASCQ 5).
const ASC_DATA_PHASE: u8 = 0x4b;
const ASCQ_DATA_PHASE_ERROR: u8 = 0x00;
const ASCQ_DATA_OFFSET_ERROR: u8 = 0x05;

fn header(bhs: &[u8]) -> [u8; BHS_LEN] {
    let mut h = [0u8; BHS_LEN];
    h.copy_from_slice(&bhs[..BHS_LEN]);
    h
}

impl Portal {
    pub(crate) fn on_full_feature<S: SanPort + ?Sized>(
        &mut self,
        c: &mut Conn,
        ch: Handle,
        f: &super::conn::Frame<'_>,
        san: &mut S,
    ) {
        // Any PDU shows the initiator is alive.
        c.ping = None;
        let bhs = Bhs::new_unchecked(f.bhs);
        match bhs.opcode() {
            Opcode::DataOut => self.on_data_out(c, ch, f.bhs, f.data, san),
            Opcode::ScsiCommand
            | Opcode::NopOut
            | Opcode::TaskMgmtRequest
            | Opcode::TextRequest
            | Opcode::LogoutRequest => self.ordered(c, ch, f.bhs, f.ahs, f.data, san),
            // SNACK needs ErrorRecoveryLevel > 0 (RFC 7143 §11.16).
            Opcode::Snack | Opcode::LoginRequest => {
                self.reject(c, RejectReason::ProtocolError, &header(f.bhs));
            }
            _ => self.reject(c, RejectReason::CommandNotSupported, &header(f.bhs)),
        }
    }

    /// CmdSN ordering (RFC 7143 §4.2.2.1, §3.2.2.1 of RFC 3720).
    fn ordered<S: SanPort + ?Sized>(
        &mut self,
        c: &mut Conn,
        ch: Handle,
        bhs: &[u8],
        ahs_area: &[u8],
        data: &[u8],
        san: &mut S,
    ) {
        let b = Bhs::new_unchecked(bhs);
        let cmdsn = b.u32_at(24);
        let ping_reply = b.opcode() == Opcode::NopOut && b.itt() == RESERVED_TAG;
        if b.immediate() || ping_reply {
            self.process(c, ch, bhs, ahs_area, data, san);
            self.update_window(c);
            return;
        }
        let Some(s) = c.session.as_mut() else {
            return;
        };
        // MaxCmdSN = ExpCmdSN - 1 closes the window: even the expected CmdSN waits.
        if cmdsn == s.exp_cmdsn && sn_le(cmdsn, s.max_cmdsn) {
            s.exp_cmdsn = s.exp_cmdsn.wrapping_add(1);
            self.process(c, ch, bhs, ahs_area, data, san);
            self.drain_queue(c, ch, san);
        } else if sn_lt(s.exp_cmdsn, cmdsn) && sn_le(cmdsn, s.max_cmdsn) {
            if s.queued.contains_key(&cmdsn) {
                self.stats.cmdsn_dropped += 1;
                return;
            }
            if b.opcode() == Opcode::ScsiCommand {
                if let Some(h) = self.new_task(c, bhs, ahs_area, data) {
                    if let Some(s) = c.session.as_mut() {
                        s.queued.insert(cmdsn, Queued::Task(h));
                    }
                } else if let Some(s) = c.session.as_mut() {
                    // Rejected: its CmdSN is still used up when its turn comes.
                    s.queued.insert(cmdsn, Queued::Tombstone);
                }
            } else {
                let mut v = Vec::with_capacity(bhs.len() + ahs_area.len() + data.len());
                v.extend_from_slice(bhs);
                v.extend_from_slice(ahs_area);
                v.extend_from_slice(data);
                s.queued.insert(cmdsn, Queued::Pdu(v));
            }
        } else {
            // Outside [ExpCmdSN, MaxCmdSN]: silently ignored.
            self.stats.cmdsn_dropped += 1;
        }
        self.update_window(c);
    }

    fn drain_queue<S: SanPort + ?Sized>(&mut self, c: &mut Conn, ch: Handle, san: &mut S) {
        loop {
            let Some(s) = c.session.as_mut() else {
                return;
            };
            let Some(q) = s.queued.remove(&s.exp_cmdsn) else {
                return;
            };
            s.exp_cmdsn = s.exp_cmdsn.wrapping_add(1);
            match q {
                Queued::Task(h) => self.submit(c, ch, h, san),
                Queued::Pdu(v) => {
                    let ahs_len = Bhs::new_unchecked(&v[..]).total_ahs_len();
                    let (bhs, rest) = v.split_at(BHS_LEN);
                    let (ahs_area, data) = rest.split_at(ahs_len.min(rest.len()));
                    self.process(c, ch, bhs, ahs_area, data, san);
                }
                Queued::Tombstone => {}
            }
            if c.phase != Phase::FullFeature {
                return;
            }
        }
    }

    fn process<S: SanPort + ?Sized>(
        &mut self,
        c: &mut Conn,
        ch: Handle,
        bhs: &[u8],
        ahs_area: &[u8],
        data: &[u8],
        san: &mut S,
    ) {
        match Bhs::new_unchecked(bhs).opcode() {
            Opcode::ScsiCommand => {
                if let Some(h) = self.new_task(c, bhs, ahs_area, data) {
                    self.submit(c, ch, h, san);
                }
            }
            Opcode::NopOut => self.on_nop_out(c, bhs, data),
            Opcode::TaskMgmtRequest => self.on_tmf(c, ch, bhs, san),
            Opcode::TextRequest => self.on_text(c, bhs, data),
            Opcode::LogoutRequest => self.on_logout(c, ch, bhs),
            _ => {}
        }
    }

    /// Raises MaxCmdSN to ExpCmdSN + free slots - 1 (never lowers it).
    pub(crate) fn update_window(&self, c: &mut Conn) {
        let outstanding = c.tasks.len() + c.session.as_ref().map_or(0, |s| s.queued.len());
        let depth = self.cfg.queue_depth;
        let Some(s) = c.session.as_mut() else {
            return;
        };
        let free = (depth as usize).saturating_sub(outstanding) as u32;
        let candidate = s.exp_cmdsn.wrapping_add(free).wrapping_sub(1);
        if sn_lt(s.max_cmdsn, candidate) {
            s.max_cmdsn = candidate;
        }
    }

    /// Validates a SCSI Command and makes it a task (not yet given to the SAN).
    fn new_task(
        &mut self,
        c: &mut Conn,
        bhs: &[u8],
        ahs_area: &[u8],
        data: &[u8],
    ) -> Option<Handle> {
        let hdr = header(bhs);
        let s = c.session.as_ref()?;
        if s.kind == SessionKind::Discovery {
            self.reject(c, RejectReason::ProtocolError, &hdr);
            return None;
        }
        let Ok(cmd) = ScsiCommandRepr::parse(&Bhs::new_unchecked(bhs)) else {
            self.reject(c, RejectReason::InvalidPduField, &hdr);
            return None;
        };
        let mut cdb_long = Vec::new();
        for a in ahs_iter(ahs_area) {
            match a {
                Ok((ahs::EXTENDED_CDB, bytes)) if bytes.len() > 1 => {
                    if cdb_long.is_empty() {
                        cdb_long.extend_from_slice(&cmd.cdb);
                    }
                    cdb_long.extend_from_slice(&bytes[1..]);
                }
                Ok((ahs::BIDI_READ_LENGTH, _)) => {
                    // Bidirectional commands are not supported.
                    self.reject(c, RejectReason::CommandNotSupported, &hdr);
                    return None;
                }
                _ => {
                    self.reject(c, RejectReason::InvalidPduField, &hdr);
                    return None;
                }
            }
        }
        let p = &s.params;
        let write = cmd.write;
        let unsol_limit = if write {
            min(p.first_burst_length, cmd.edtl)
        } else {
            0
        };
        let bad_data = (!data.is_empty() && (!write || !p.immediate_data))
            || data.len() as u64 > u64::from(unsol_limit)
            || (write && !cmd.final_ && p.initial_r2t);
        if bad_data {
            self.reject(c, RejectReason::ProtocolError, &hdr);
            return None;
        }
        if c.itt_map.contains_key(&cmd.itt) || cmd.itt == RESERVED_TAG {
            self.reject(c, RejectReason::TaskInProgress, &hdr);
            return None;
        }
        if c.tasks.len() >= self.cfg.queue_depth as usize + IMMEDIATE_SLACK {
            self.send_response(c, cmd.itt, STATUS_TASK_SET_FULL, &[], Residual::None, 0);
            return None;
        }
        let unsol_open = write && !cmd.final_ && (data.len() as u32) < unsol_limit;
        let t = Task {
            itt: cmd.itt,
            lun: cmd.lun,
            cmdsn: cmd.cmdsn,
            edtl: cmd.edtl,
            read: cmd.read,
            write,
            attr: cmd.attr,
            cdb: cmd.cdb,
            cdb_long,
            state: TaskState::Waiting,
            unsol_open,
            unsol_buf: if write { data.to_vec() } else { Vec::new() },
            unsol_next_datasn: 0,
            unsol_limit,
            grants: Default::default(),
            r2ts: Vec::new(),
            r2t_queue: Default::default(),
            in_sn: 0,
            in_next_offset: 0,
            in_seq_bytes: 0,
            last_datain: None,
            parked: None,
            granted_end: 0,
        };
        let h = c.tasks.insert(t);
        c.itt_map.insert(cmd.itt, h);
        Some(h)
    }

    /// Gives a task to the SAN.
    fn submit<S: SanPort + ?Sized>(&mut self, c: &mut Conn, ch: Handle, h: Handle, san: &mut S) {
        let Some(nexus) = c.session.as_ref().and_then(|s| s.nexus()) else {
            return;
        };
        let first_burst = c
            .session
            .as_ref()
            .map_or(0, |s| s.params.first_burst_length);
        let Some(t) = c.tasks.get_mut(h) else {
            return;
        };
        t.state = TaskState::Active;
        self.stats.commands += 1;
        let dir = if t.write {
            DataDirection::Write
        } else if t.read {
            DataDirection::Read
        } else {
            DataDirection::None
        };
        let unsolicited_max = if t.unsol_open {
            min(first_burst, t.edtl)
        } else {
            t.unsol_buf.len() as u32
        };
        let cmd = Command {
            lun: t.lun,
            cdb: t.cdb(),
            attr: t.attr,
            expected_len: t.edtl,
            dir,
            unsolicited_received: t.unsol_buf.len() as u32,
            unsolicited_max,
            cmdsn: t.cmdsn,
            itt: t.itt,
        };
        san.command(nexus, TaskId { conn: ch, task: h }, &cmd);
    }

    /// Ends a task the initiator broke (bad DataSN, offset, length or TTT in its
    /// Data-Out): at ErrorRecoveryLevel 0 there is no within-command recovery, so the task
    /// ends with CHECK CONDITION, ABORTED COMMAND and the iSCSI-specific ASC/ASCQ of
    /// RFC 7143 §11.4.7.2 / SPC-4; the connection stays up. Its later Data-Out PDUs are
    /// discarded as strays.
    fn fail_task(&mut self, c: &mut Conn, ch: Handle, h: Handle, asc: u8, ascq: u8) {
        let nexus = c.session.as_ref().and_then(|s| s.nexus());
        let Some(t) = c.remove_task(h) else {
            return;
        };
        self.stats.protocol_errors += 1;
        match (t.state, nexus) {
            (TaskState::Active, Some(n)) => self
                .deferred
                .push_back(Deferred::Abort(n, TaskId { conn: ch, task: h })),
            _ => {
                if let Some(q) = c.session.as_mut().and_then(|s| s.queued.get_mut(&t.cmdsn)) {
                    *q = Queued::Tombstone;
                }
            }
        }
        self.update_window(c);
        let mut sense = [0u8; 18];
        sense[0] = 0x70;
        sense[2] = 0x0b; // ABORTED COMMAND
        sense[7] = 10;
        sense[12] = asc;
        sense[13] = ascq;
        self.send_response(c, t.itt, 0x02, &sense, Residual::None, t.in_sn);
    }

    fn on_data_out<S: SanPort + ?Sized>(
        &mut self,
        c: &mut Conn,
        ch: Handle,
        bhs: &[u8],
        data: &[u8],
        san: &mut S,
    ) {
        let Ok(d) = DataOutRepr::parse(&Bhs::new_unchecked(bhs)) else {
            return;
        };
        let Some(&h) = c.itt_map.get(&d.itt) else {
            // A task already finished or aborted: the data has nowhere to go.
            self.stats.stray_data_out += 1;
            return;
        };
        let Some(t) = c.tasks.get_mut(h) else {
            return;
        };
        let n = data.len() as u32;
        if !t.write {
            // Data for a command that expects none: unexpected unsolicited data.
            return self.fail_task(c, ch, h, ASC_WRITE_ERROR, ASCQ_UNEXPECTED_UNSOLICITED);
        }
        if d.ttt == RESERVED_TAG {
            // Unsolicited Data-Out (RFC 7143 §4.2.5.2).
            if !t.unsol_open || u64::from(d.offset) + u64::from(n) > u64::from(t.unsol_limit) {
                return self.fail_task(c, ch, h, ASC_WRITE_ERROR, ASCQ_UNEXPECTED_UNSOLICITED);
            }
            if d.datasn != t.unsol_next_datasn {
                return self.fail_task(c, ch, h, ASC_DATA_PHASE, ASCQ_DATA_PHASE_ERROR);
            }
            if d.offset as usize != t.unsol_buf.len() {
                return self.fail_task(c, ch, h, ASC_DATA_PHASE, ASCQ_DATA_OFFSET_ERROR);
            }
            t.unsol_buf.extend_from_slice(data);
            t.unsol_next_datasn = t.unsol_next_datasn.wrapping_add(1);
            if d.final_ || t.unsol_buf.len() as u32 >= t.unsol_limit {
                t.unsol_open = false;
            }
            if t.state == TaskState::Active {
                self.pump(c, ch, h, san);
            }
        } else {
            let Some(i) = t.r2ts.iter().position(|r| r.ttt == d.ttt) else {
                return self.fail_task(c, ch, h, ASC_DATA_PHASE, ASCQ_DATA_PHASE_ERROR);
            };
            let r = &mut t.r2ts[i];
            if d.datasn != r.next_datasn {
                return self.fail_task(c, ch, h, ASC_DATA_PHASE, ASCQ_DATA_PHASE_ERROR);
            }
            let ok = d.offset == r.offset + r.received
                && r.received + n <= r.len
                && (!d.final_ || r.received + n == r.len);
            if !ok {
                return self.fail_task(c, ch, h, ASC_DATA_PHASE, ASCQ_DATA_OFFSET_ERROR);
            }
            r.received += n;
            r.next_datasn = r.next_datasn.wrapping_add(1);
            let complete = r.received == r.len;
            if complete {
                t.r2ts.swap_remove(i);
            }
            if t.parked.is_none() {
                self.deliver(c, ch, h, d.offset, data, san);
            }
            if complete {
                self.issue_r2ts(c, h);
            }
        }
        self.maybe_send_parked(c, h);
    }

    /// Hands solicited data to the SAN against its requests, in order.
    fn deliver<S: SanPort + ?Sized>(
        &mut self,
        c: &mut Conn,
        ch: Handle,
        h: Handle,
        offset: u32,
        data: &[u8],
        san: &mut S,
    ) {
        let Some(nexus) = c.session.as_ref().and_then(|s| s.nexus()) else {
            return;
        };
        let Some(t) = c.tasks.get_mut(h) else {
            return;
        };
        let id = TaskId { conn: ch, task: h };
        let mut off = offset;
        let mut rest = data;
        while !rest.is_empty() {
            let Some(g) = t.grants.front_mut() else {
                break;
            };
            if off != g.offset + g.delivered {
                break;
            }
            let n = min(rest.len() as u32, g.len - g.delivered);
            g.delivered += n;
            let last = g.delivered == g.len;
            if last {
                t.grants.pop_front();
            }
            san.data_out(nexus, id, off, &rest[..n as usize], last);
            off += n;
            rest = &rest[n as usize..];
        }
    }

    /// Serves the SAN's requests from buffered unsolicited data, then solicits the rest.
    pub(crate) fn pump<S: SanPort + ?Sized>(
        &mut self,
        c: &mut Conn,
        ch: Handle,
        h: Handle,
        san: &mut S,
    ) {
        let Some(nexus) = c.session.as_ref().and_then(|s| s.nexus()) else {
            return;
        };
        let max_burst = c.session.as_ref().map_or(0, |s| s.params.max_burst_length);
        let Some(t) = c.tasks.get_mut(h) else {
            return;
        };
        if t.state != TaskState::Active || t.parked.is_some() {
            return;
        }
        let id = TaskId { conn: ch, task: h };
        while let Some(g) = t.grants.front_mut() {
            if g.len == 0 {
                let off = g.offset;
                t.grants.pop_front();
                san.data_out(nexus, id, off, &[], true);
                continue;
            }
            let pos = g.offset + g.delivered;
            let have = t.unsol_buf.len() as u32;
            if pos >= have {
                break;
            }
            let n = min(g.end() - pos, have - pos);
            g.delivered += n;
            let last = g.delivered == g.len;
            if last {
                t.grants.pop_front();
            }
            san.data_out(
                nexus,
                id,
                pos,
                &t.unsol_buf[pos as usize..(pos + n) as usize],
                last,
            );
        }
        if !t.unsol_open {
            let unsol_end = t.unsol_buf.len() as u32;
            let Task {
                grants, r2t_queue, ..
            } = t;
            for g in grants.iter_mut() {
                let mut next = g.r2t_next.max(unsol_end).max(g.offset + g.delivered);
                while next < g.end() {
                    let chunk = min(g.end() - next, max_burst.max(1));
                    r2t_queue.push_back((next, chunk));
                    next += chunk;
                }
                g.r2t_next = g.end();
            }
            self.issue_r2ts(c, h);
        }
    }

    /// Sends queued R2Ts up to MaxOutstandingR2T (RFC 7143 §13.17).
    fn issue_r2ts(&mut self, c: &mut Conn, h: Handle) {
        let Some(s) = c.session.as_ref() else {
            return;
        };
        let max_out = usize::from(s.params.max_outstanding_r2t.max(1));
        let (exp, max) = (s.exp_cmdsn, s.max_cmdsn);
        let statsn = c.statsn;
        let mut out = Vec::new();
        {
            let next_ttt = &mut c.next_ttt;
            let Some(t) = c.tasks.get_mut(h) else {
                return;
            };
            if t.parked.is_some() {
                return;
            }
            while t.r2ts.len() < max_out {
                let Some((offset, len)) = t.r2t_queue.pop_front() else {
                    break;
                };
                let ttt = *next_ttt;
                *next_ttt = next_ttt.wrapping_add(1);
                if *next_ttt == RESERVED_TAG {
                    *next_ttt = 1;
                }
                t.r2ts.push(R2tState {
                    ttt,
                    offset,
                    len,
                    received: 0,
                    next_datasn: 0,
                });
                out.push(R2tRepr {
                    lun: t.lun,
                    itt: t.itt,
                    ttt,
                    statsn,
                    exp_cmdsn: exp,
                    max_cmdsn: max,
                    r2tsn: t.in_sn,
                    offset,
                    desired_len: len,
                });
                t.in_sn = t.in_sn.wrapping_add(1);
            }
        }
        for r in out {
            let mut hdr = [0u8; BHS_LEN];
            r.emit(&mut hdr);
            c.send(&hdr, &[]);
        }
    }

    fn maybe_send_parked(&mut self, c: &mut Conn, h: Handle) {
        let ready = c
            .tasks
            .get(h)
            .is_some_and(|t| t.parked.is_some() && !t.unsol_open && t.r2ts.is_empty());
        if ready && let Some(p) = c.tasks.get_mut(h).and_then(|t| t.parked.take()) {
            self.finish_task(c, h, p.status, &p.sense, p.residual);
        }
    }

    pub(crate) fn on_ready_to_transfer(
        &mut self,
        c: &mut Conn,
        task: TaskId,
        offset: u32,
        len: u32,
    ) -> Result<(), EventError> {
        let t = c.tasks.get_mut(task.task).ok_or(EventError::Stale)?;
        if t.state != TaskState::Active {
            return Err(EventError::Stale);
        }
        if t.parked.is_some() {
            return Err(EventError::Invalid("status already given"));
        }
        let limit = if t.write { t.edtl } else { 0 };
        let start = offset.min(limit);
        let end = offset.saturating_add(len).min(limit).max(start);
        if start < t.granted_end {
            return Err(EventError::Invalid("request overlaps an earlier one"));
        }
        t.granted_end = end;
        t.grants.push_back(Grant {
            offset: start,
            len: end - start,
            delivered: 0,
            r2t_next: start,
        });
        self.deferred.push_back(Deferred::Pump(task));
        Ok(())
    }

    /// Read data at `offset`: `parts` joined, as Data-In PDUs of at most
    /// MaxRecvDataSegmentLength within MaxBurstLength sequences.
    pub(crate) fn on_data_in(
        &mut self,
        c: &mut Conn,
        task: TaskId,
        offset: u32,
        parts: &[&[u8]],
    ) -> Result<(), EventError> {
        let Some(s) = c.session.as_ref() else {
            return Err(EventError::Stale);
        };
        let (exp, max) = (s.exp_cmdsn, s.max_cmdsn);
        let max_seg = s.params.max_xmit_data_segment_length.max(512);
        let max_burst = s.params.max_burst_length.max(512);
        let dg = c.tx_digests;
        let t = c.tasks.get_mut(task.task).ok_or(EventError::Stale)?;
        if t.state != TaskState::Active {
            return Err(EventError::Stale);
        }
        if t.parked.is_some() {
            return Err(EventError::Invalid("status already given"));
        }
        if offset != t.in_next_offset {
            return Err(EventError::Invalid("Data-In not contiguous"));
        }
        let total: usize = parts.iter().map(|p| p.len()).sum();
        t.in_next_offset = offset.saturating_add(total as u32);
        if !t.read || offset >= t.edtl {
            // Nothing the initiator can take: the SAN's residual covers it.
            return Ok(());
        }
        let usable = min(total as u64, u64::from(t.edtl - offset)) as usize;
        let mut off = offset;
        let mut at = 0usize;
        while at < usable {
            let n = min(
                min((usable - at) as u32, max_seg),
                max_burst - t.in_seq_bytes,
            );
            let end = off + n;
            let final_ = t.in_seq_bytes + n == max_burst || end == t.edtl;
            let mut hdr = [0u8; BHS_LEN];
            DataInRepr {
                final_,
                ack: false,
                status: None,
                lun: Lun::ZERO,
                itt: t.itt,
                ttt: RESERVED_TAG,
                statsn: 0,
                exp_cmdsn: exp,
                max_cmdsn: max,
                datasn: t.in_sn,
                offset: off,
            }
            .emit(&mut hdr);
            t.last_datain = Some(c.tx.push_pdu_range(&hdr, parts, at, n as usize, dg));
            t.in_sn = t.in_sn.wrapping_add(1);
            t.in_seq_bytes = if final_ { 0 } else { t.in_seq_bytes + n };
            off = end;
            at += n as usize;
        }
        Ok(())
    }

    pub(crate) fn on_status(
        &mut self,
        c: &mut Conn,
        task: TaskId,
        st: &ScsiStatus<'_>,
    ) -> Result<(), EventError> {
        if st.sense.len() > 0xffff {
            return Err(EventError::Invalid("sense too long"));
        }
        let t = c.tasks.get_mut(task.task).ok_or(EventError::Stale)?;
        if t.state != TaskState::Active {
            return Err(EventError::Stale);
        }
        if t.parked.is_some() {
            return Err(EventError::Invalid("status already given"));
        }
        if t.unsol_open || !t.r2ts.is_empty() {
            // Wait for the data the initiator is still sending (RFC 7143 §4.2.5.2).
            t.parked = Some(ParkedStatus {
                status: st.status,
                sense: st.sense.to_vec(),
                residual: st.residual,
            });
            t.grants.clear();
            t.r2t_queue.clear();
            return Ok(());
        }
        self.finish_task(c, task.task, st.status, st.sense, st.residual);
        Ok(())
    }

    /// Ends a task with its status: on its last Data-In if possible, else a SCSI Response.
    fn finish_task(
        &mut self,
        c: &mut Conn,
        h: Handle,
        status: u8,
        sense: &[u8],
        residual: Residual,
    ) {
        let Some(t) = c.remove_task(h) else {
            return;
        };
        self.update_window(c);
        let (exp, max) = c.window();
        // RFC 7143 §11.7.3: status may ride on the last Data-In when there is no sense
        // data and the status is GOOD, CONDITION MET or INTERMEDIATE(-CONDITION MET).
        let collapsible = sense.is_empty() && matches!(status, 0x00 | 0x04 | 0x10 | 0x14);
        if collapsible
            && let Some(pos) = t.last_datain
            && pos >= c.statsn_pos
        {
            let statsn = c.statsn;
            if let Some(hb) = c.tx.patchable(pos) {
                let mut hv = Bhs::new_unchecked(hb);
                let fl = hv.flags()
                    | 0x80
                    | 0x01
                    | match residual {
                        Residual::None => 0,
                        Residual::Overflow(_) => 0x04,
                        Residual::Underflow(_) => 0x02,
                    };
                hv.set_flags(fl);
                hv.set_byte(3, status);
                hv.set_u32_at(24, statsn);
                hv.set_u32_at(28, exp);
                hv.set_u32_at(32, max);
                hv.set_u32_at(
                    44,
                    match residual {
                        Residual::None => 0,
                        Residual::Overflow(n) | Residual::Underflow(n) => n,
                    },
                );
                if c.tx_digests.header {
                    c.tx.refresh_header_digest(pos);
                }
                c.statsn = c.statsn.wrapping_add(1);
                c.statsn_pos = pos;
                return;
            }
        }
        self.send_response(c, t.itt, status, sense, residual, t.in_sn);
    }

    fn send_response(
        &mut self,
        c: &mut Conn,
        itt: u32,
        status: u8,
        sense: &[u8],
        residual: Residual,
        exp_datasn: u32,
    ) {
        let (exp, max) = c.window();
        let mut hdr = [0u8; BHS_LEN];
        ScsiResponseRepr {
            response: 0,
            status,
            residual,
            itt,
            statsn: c.take_statsn(),
            exp_cmdsn: exp,
            max_cmdsn: max,
            exp_datasn,
        }
        .emit(&mut hdr);
        if sense.is_empty() {
            c.send(&hdr, &[]);
        } else {
            // RFC 7143 §11.4.7.2: SenseLength then the sense data.
            let len = (sense.len() as u16).to_be_bytes();
            c.send(&hdr, &[&len, sense]);
        }
    }

    fn on_nop_out(&mut self, c: &mut Conn, bhs: &[u8], data: &[u8]) {
        let Ok(n) = NopOutRepr::parse(&Bhs::new_unchecked(bhs)) else {
            return;
        };
        if n.ttt != RESERVED_TAG {
            // The answer to our ping (RFC 7143 §11.18.2).
            if c.ping.is_some_and(|p| p.ttt == n.ttt) {
                c.ping = None;
            }
            return;
        }
        if n.itt == RESERVED_TAG {
            return;
        }
        let max_seg = c
            .session
            .as_ref()
            .map_or(8192, |s| s.params.max_xmit_data_segment_length) as usize;
        let (exp, max) = c.window();
        let mut hdr = [0u8; BHS_LEN];
        NopInRepr {
            lun: n.lun,
            itt: n.itt,
            ttt: RESERVED_TAG,
            statsn: c.take_statsn(),
            exp_cmdsn: exp,
            max_cmdsn: max,
        }
        .emit(&mut hdr);
        c.send(&hdr, &[&data[..min(data.len(), max_seg)]]);
    }

    /// A target-initiated NOP-In ping (RFC 7143 §11.19: ITT reserved, StatSN not advanced).
    pub(crate) fn send_ping(&mut self, c: &mut Conn, now: std::time::Duration) {
        let ttt = c.alloc_ttt();
        let (exp, max) = c.window();
        let mut hdr = [0u8; BHS_LEN];
        NopInRepr {
            lun: Lun::ZERO,
            itt: RESERVED_TAG,
            ttt,
            statsn: c.statsn,
            exp_cmdsn: exp,
            max_cmdsn: max,
        }
        .emit(&mut hdr);
        c.send(&hdr, &[]);
        c.ping = Some(super::conn::Ping { ttt, sent: now });
    }

    fn tmf_response(&mut self, c: &mut Conn, itt: u32, response: TmfResponseCode) {
        let (exp, max) = c.window();
        let mut hdr = [0u8; BHS_LEN];
        TmfResponseRepr {
            response,
            itt,
            statsn: c.take_statsn(),
            exp_cmdsn: exp,
            max_cmdsn: max,
        }
        .emit(&mut hdr);
        c.send(&hdr, &[]);
    }

    /// Removes a task the SAN never saw, keeping its CmdSN slot as a tombstone.
    fn drop_waiting(c: &mut Conn, h: Handle) {
        if let Some(t) = c.remove_task(h)
            && let Some(s) = c.session.as_mut()
            && let Some(q) = s.queued.get_mut(&t.cmdsn)
        {
            *q = Queued::Tombstone;
        }
    }

    fn on_tmf<S: SanPort + ?Sized>(&mut self, c: &mut Conn, ch: Handle, bhs: &[u8], san: &mut S) {
        let Ok(r) = TmfRequestRepr::parse(&Bhs::new_unchecked(bhs)) else {
            return;
        };
        let Some(nexus) = c.session.as_ref().and_then(|s| s.nexus()) else {
            self.reject(c, RejectReason::ProtocolError, &header(bhs));
            return;
        };
        let affected: Vec<Handle> = match r.function {
            TmfFunction::TaskReassign => {
                // Needs ErrorRecoveryLevel 2 (RFC 7143 §11.5.1).
                return self.tmf_response(c, r.itt, TmfResponseCode::ReassignNotSupported);
            }
            TmfFunction::Unknown(_) => {
                return self.tmf_response(c, r.itt, TmfResponseCode::NotSupported);
            }
            TmfFunction::AbortTask => match c.itt_map.get(&r.ref_itt) {
                None => return self.tmf_response(c, r.itt, TmfResponseCode::TaskDoesNotExist),
                Some(&h) => vec![h],
            },
            TmfFunction::AbortTaskSet
            | TmfFunction::ClearTaskSet
            | TmfFunction::LogicalUnitReset => c
                .tasks
                .iter()
                .filter(|(_, t)| t.lun == r.lun)
                .map(|(h, _)| h)
                .collect(),
            TmfFunction::TargetWarmReset | TmfFunction::TargetColdReset => {
                c.tasks.iter().map(|(h, _)| h).collect()
            }
            TmfFunction::ClearAca => Vec::new(),
        };
        // Tasks still waiting for their CmdSN never reach the SAN.
        let mut active = Vec::new();
        for h in affected {
            match c.tasks.get(h).map(|t| t.state) {
                Some(TaskState::Waiting) => Self::drop_waiting(c, h),
                Some(TaskState::Active) => active.push(h),
                None => {}
            }
        }
        if r.function == TmfFunction::AbortTask && active.is_empty() {
            self.update_window(c);
            return self.tmf_response(c, r.itt, TmfResponseCode::Complete);
        }
        let referenced = if r.function == TmfFunction::AbortTask {
            active.first().map(|&h| TaskId { conn: ch, task: h })
        } else {
            None
        };
        let th = c.tmfs.insert(PendingTmf {
            itt: r.itt,
            function: r.function,
            affected: active,
        });
        san.task_mgmt(
            nexus,
            TmfId { conn: ch, tmf: th },
            &TaskMgmt {
                function: r.function,
                lun: r.lun,
                referenced,
            },
        );
    }

    pub(crate) fn on_tmf_done(
        &mut self,
        c: &mut Conn,
        tmf: TmfId,
        response: TmfResponseCode,
    ) -> Result<(), EventError> {
        let p = c.tmfs.remove(tmf.tmf).ok_or(EventError::Stale)?;
        if response == TmfResponseCode::Complete {
            // "Safe" task management: no response for an affected task follows.
            for h in &p.affected {
                c.remove_task(*h);
            }
            self.update_window(c);
        }
        self.tmf_response(c, p.itt, response);
        if response == TmfResponseCode::Complete && p.function == TmfFunction::TargetColdReset {
            // RFC 7143 §11.5.1: after a cold reset the target drops all connections.
            self.fail_conn(c, tmf.conn, NexusLoss::TargetReset);
            for h in self.conns.handles() {
                if let Some(mut oc) = self.conns.take(h) {
                    self.fail_conn(&mut oc, h, NexusLoss::TargetReset);
                    self.conns.put_back(h, oc);
                }
            }
        }
        Ok(())
    }

    fn target_address(&self, c: &Conn) -> Option<String> {
        if let Some(a) = &self.cfg.target_address {
            return Some(a.clone());
        }
        c.local_addr.map(|a| match a {
            std::net::SocketAddr::V4(v4) => format!("{}:{}", v4.ip(), v4.port()),
            std::net::SocketAddr::V6(v6) => format!("[{}]:{}", v6.ip(), v6.port()),
        })
    }

    fn on_text(&mut self, c: &mut Conn, bhs: &[u8], data: &[u8]) {
        let Ok(r) = TextRequestRepr::parse(&Bhs::new_unchecked(bhs)) else {
            self.reject(c, RejectReason::InvalidPduField, &header(bhs));
            return;
        };
        if r.ttt != RESERVED_TAG {
            // The initiator asks for the next piece of a long response.
            match c.text_cont.take() {
                Some(tc) if tc.itt == r.itt && tc.ttt == r.ttt => {
                    return self.send_text(c, r.itt, r.lun, tc.rest);
                }
                _ => {
                    self.reject(c, RejectReason::InvalidPduField, &header(bhs));
                    return;
                }
            }
        }
        // A new request resets any unfinished one (RFC 7143 §11.10.4).
        c.text_cont = None;
        if c.text_in.len() + data.len() > MAX_TEXT {
            c.text_in.clear();
            self.reject(c, RejectReason::ProtocolError, &header(bhs));
            return;
        }
        c.text_in.extend_from_slice(data);
        if r.cont {
            // More request text follows: acknowledge with an empty response.
            return self.send_text(c, r.itt, r.lun, Vec::new());
        }
        let all = std::mem::take(&mut c.text_in);
        let Ok(keys) = text::parse(&all) else {
            self.reject(c, RejectReason::InvalidPduField, &header(bhs));
            return;
        };
        let mut out = Vec::new();
        for (k, v) in &keys {
            if k == "SendTargets" {
                self.send_targets(c, v, &mut out);
            } else {
                text::push(&mut out, k, "NotUnderstood");
            }
        }
        self.send_text(c, r.itt, r.lun, out);
    }

    /// SendTargets (RFC 7143 §12.3 and Appendix C).
    fn send_targets(&self, c: &Conn, value: &str, out: &mut Vec<u8>) {
        let Some(s) = c.session.as_ref() else {
            return;
        };
        let addr = self.target_address(c);
        let tpgt = self.cfg.portal_group_tag;
        let own = match s.kind {
            SessionKind::Normal { target, .. } => Some(target),
            SessionKind::Discovery => None,
        };
        for (i, t) in self.cfg.targets.iter().enumerate() {
            let wanted = match value {
                "All" => true,
                "" => own == Some(i),
                name => t.name.eq_ignore_ascii_case(name),
            };
            if wanted && t.allows(&s.initiator_name) {
                text::push(out, "TargetName", &t.name);
                if let Some(a) = &addr {
                    text::push(out, "TargetAddress", &format!("{a},{tpgt}"));
                }
            }
        }
    }

    /// Sends text, split into pieces of the initiator's MaxRecvDataSegmentLength.
    fn send_text(&mut self, c: &mut Conn, itt: u32, lun: Lun, mut body: Vec<u8>) {
        let max_seg = c
            .session
            .as_ref()
            .map_or(8192, |s| s.params.max_xmit_data_segment_length) as usize;
        let (exp, max) = c.window();
        let more = body.len() > max_seg;
        let rest = if more {
            body.split_off(max_seg)
        } else {
            Vec::new()
        };
        let ttt = if more { c.alloc_ttt() } else { RESERVED_TAG };
        let mut hdr = [0u8; BHS_LEN];
        TextResponseRepr {
            final_: !more,
            cont: more,
            lun,
            itt,
            ttt,
            statsn: c.take_statsn(),
            exp_cmdsn: exp,
            max_cmdsn: max,
        }
        .emit(&mut hdr);
        c.send(&hdr, &[&body]);
        if more {
            c.text_cont = Some(TextContinuation { itt, ttt, rest });
        }
    }

    fn on_logout(&mut self, c: &mut Conn, ch: Handle, bhs: &[u8]) {
        let Ok(r) = LogoutRequestRepr::parse(&Bhs::new_unchecked(bhs)) else {
            return;
        };
        let Some(s) = c.session.as_ref() else {
            return;
        };
        let response = match r.reason {
            LogoutReason::CloseSession => 0,
            LogoutReason::CloseConnection if r.cid == s.cid => 0,
            LogoutReason::CloseConnection => 1,
            // Connection recovery needs ErrorRecoveryLevel 2.
            LogoutReason::RemoveForRecovery => 2,
            LogoutReason::Unknown(_) => {
                self.reject(c, RejectReason::InvalidPduField, &header(bhs));
                return;
            }
        };
        let (t2w, t2r) = (s.params.default_time2wait, s.params.default_time2retain);
        let (exp, max) = c.window();
        let mut hdr = [0u8; BHS_LEN];
        LogoutResponseRepr {
            response,
            itt: r.itt,
            statsn: c.take_statsn(),
            exp_cmdsn: exp,
            max_cmdsn: max,
            time2wait: t2w,
            time2retain: t2r,
        }
        .emit(&mut hdr);
        c.send(&hdr, &[]);
        if response == 0 {
            self.fail_conn(c, ch, NexusLoss::Logout);
        }
    }
}
