//! TEST SCAFFOLDING ONLY, not a feature: an in-memory SCSI responder that stands in for
//! the SAN behind the iSCSI portal (the real one is the FC gateway), plus a PDU-level
//! test initiator for sans-IO tests.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use rscst_sim::iscsi::net::{SanEvent, SanRequest};
use rscst_sim::iscsi::wire::{
    self, BHS_LEN, Bhs, LoginStatus, Lun, Opcode, Residual, TmfFunction, TmfResponseCode,
};
use rscst_sim::iscsi::{
    Command, ConnId, DataDirection, LoginDecision, NexusId, NexusLoss, Portal, SanEvents, SanPoll,
    SanPort, SessionLogin, TaskId, TaskMgmt, TmfId, digest,
};

pub const BLOCK: usize = 512;

/// What a test can observe of the SAN side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    Login(String, NexusId),
    Logout(NexusId, NexusLoss),
    Abort(NexusId, TaskId),
    Command(NexusId, TaskId, u8),
    Tmf(NexusId, TmfFunction),
}

#[derive(Debug)]
struct Pending {
    nexus: NexusId,
    lun: Lun,
    write_lba: u64,
    expected: u32,
    got: Vec<u8>,
    status_residual: Residual,
}

/// A RAM disk per LUN that answers the SCSI commands the tests and libiscsi tools use.
#[derive(Debug)]
pub struct MemSan {
    pub luns: Vec<Vec<u8>>,
    pub seen: Vec<Seen>,
    pub events: VecDeque<SanEvent>,
    next_nexus: u64,
    nexuses: HashMap<NexusId, String>,
    writes: HashMap<TaskId, Pending>,
    /// Tasks seen and not yet answered with status (for TMF answers).
    open: HashMap<TaskId, (NexusId, Lun)>,
    /// When false, commands are recorded but not answered.
    pub auto: bool,
    /// Every `data_out` call: task, offset, length, last.
    pub data_outs: Vec<(TaskId, u32, usize, bool)>,
    /// Every command: task, CDB, EDTL, unsolicited bytes already received.
    pub commands: Vec<(TaskId, Vec<u8>, u32, u32)>,
    /// Answer logins with `Pending` (decided later by the test).
    pub login_pending: bool,
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn sense(key: u8, asc: u8, ascq: u8) -> Vec<u8> {
    let mut s = vec![0u8; 18];
    s[0] = 0x70;
    s[2] = key;
    s[7] = 10;
    s[12] = asc;
    s[13] = ascq;
    s
}

impl MemSan {
    pub fn new(blocks: &[usize]) -> Self {
        MemSan {
            luns: blocks.iter().map(|&b| vec![0u8; b * BLOCK]).collect(),
            seen: Vec::new(),
            events: VecDeque::new(),
            next_nexus: 1,
            nexuses: HashMap::new(),
            writes: HashMap::new(),
            open: HashMap::new(),
            auto: true,
            data_outs: Vec::new(),
            commands: Vec::new(),
            login_pending: false,
        }
    }

    fn lun_index(&self, lun: Lun) -> Option<usize> {
        lun.index()
            .map(usize::from)
            .filter(|&i| i < self.luns.len())
    }

    fn status(&mut self, task: TaskId, status: u8, sense: Vec<u8>, residual: Residual) {
        self.open.remove(&task);
        self.events.push_back(SanEvent::Status {
            task,
            status,
            sense,
            residual,
        });
    }

    fn check(&mut self, task: TaskId, key: u8, asc: u8, ascq: u8) {
        self.status(task, 2, sense(key, asc, ascq), Residual::None);
    }

    fn residual(scsi_len: u64, edtl: u32) -> Residual {
        let e = u64::from(edtl);
        if scsi_len > e {
            Residual::Overflow((scsi_len - e).min(u64::from(u32::MAX)) as u32)
        } else if scsi_len < e {
            Residual::Underflow((e - scsi_len) as u32)
        } else {
            Residual::None
        }
    }

    /// Sends `data` (the full SCSI-level payload) as Data-In, clipped to what the
    /// initiator expects, and the status with the residual.
    fn data_in_and_status(&mut self, task: TaskId, dir: DataDirection, edtl: u32, data: Vec<u8>) {
        let expect = if dir == DataDirection::Read { edtl } else { 0 };
        let n = data.len().min(expect as usize);
        let residual = Self::residual(data.len() as u64, expect);
        if n > 0 {
            // Deliver in two pieces when large, as an FC target would in frames.
            let mid = if n > 8192 { n / 2 } else { n };
            self.events.push_back(SanEvent::DataIn {
                task,
                offset: 0,
                data: data[..mid].to_vec(),
            });
            if mid < n {
                self.events.push_back(SanEvent::DataIn {
                    task,
                    offset: mid as u32,
                    data: data[mid..n].to_vec(),
                });
            }
        }
        self.status(task, 0, Vec::new(), residual);
    }

    fn alloc_len(cdb: &[u8]) -> usize {
        usize::from(u16::from_be_bytes([cdb[3], cdb[4]]))
    }

    fn rw(cdb: &[u8]) -> Option<(u64, u64)> {
        Some(match cdb[0] {
            0x08 | 0x0a => {
                let lba =
                    u64::from(cdb[1] & 0x1f) << 16 | u64::from(cdb[2]) << 8 | u64::from(cdb[3]);
                let n = if cdb[4] == 0 { 256 } else { u64::from(cdb[4]) };
                (lba, n)
            }
            0x28 | 0x2a | 0x2e | 0x2f => (
                u64::from(be32(&cdb[2..6])),
                u64::from(u16::from_be_bytes([cdb[7], cdb[8]])),
            ),
            0xa8 | 0xaa | 0xae | 0xaf => {
                (u64::from(be32(&cdb[2..6])), u64::from(be32(&cdb[6..10])))
            }
            0x88 | 0x8a | 0x8e | 0x8f => (
                u64::from_be_bytes(cdb[2..10].try_into().ok()?),
                u64::from(be32(&cdb[10..14])),
            ),
            _ => return None,
        })
    }

    fn run(&mut self, nexus: NexusId, task: TaskId, cmd: &Command<'_>) {
        let cdb = cmd.cdb;
        let op = cdb[0];
        let Some(li) = self.lun_index(cmd.lun) else {
            if op == 0x12 {
                let mut d = vec![0u8; 36];
                d[0] = 0x7f;
                let n = Self::alloc_len(cdb).min(d.len());
                d.truncate(n);
                return self.data_in_and_status(task, cmd.dir, cmd.expected_len, d);
            }
            if op == 0xa0 {
                return self.report_luns(task, cmd);
            }
            return self.check(task, 5, 0x25, 0);
        };
        let blocks = (self.luns[li].len() / BLOCK) as u64;
        match op {
            0x00 | 0x35 | 0x91 => self.status(task, 0, Vec::new(), Residual::None),
            0x03 => {
                let mut d = vec![0u8; 18];
                d[0] = 0x70;
                d[7] = 10;
                d.truncate(usize::from(cdb[4]));
                self.data_in_and_status(task, cmd.dir, cmd.expected_len, d);
            }
            0x12 => self.inquiry(task, cmd, li),
            0x1a => {
                // MODE SENSE(6): no block descriptors, not write-protected; the Control
                // page (SPC-4 §7.5.8) for page 0x0a or 0x3f.
                let page = cdb[2] & 0x3f;
                let mut d = vec![0u8, 0, 0, 0];
                match page {
                    0x0a | 0x3f => {
                        d.extend_from_slice(&[0x0a, 10, 0x02, 0x10, 0, 0, 0, 0, 0xff, 0xff, 0, 0])
                    }
                    0x00 => {}
                    _ => return self.check(task, 5, 0x24, 0),
                }
                d[0] = (d.len() - 1) as u8;
                d.truncate(usize::from(cdb[4]));
                self.data_in_and_status(task, cmd.dir, cmd.expected_len, d);
            }
            0x25 => {
                let mut d = Vec::new();
                d.extend_from_slice(&((blocks - 1).min(0xffff_ffff) as u32).to_be_bytes());
                d.extend_from_slice(&(BLOCK as u32).to_be_bytes());
                self.data_in_and_status(task, cmd.dir, cmd.expected_len, d);
            }
            0x9e if cdb[1] & 0x1f == 0x10 => {
                let mut d = vec![0u8; 32];
                d[..8].copy_from_slice(&(blocks - 1).to_be_bytes());
                d[8..12].copy_from_slice(&(BLOCK as u32).to_be_bytes());
                d.truncate(be32(&cdb[10..14]) as usize);
                self.data_in_and_status(task, cmd.dir, cmd.expected_len, d);
            }
            0xa0 => self.report_luns(task, cmd),
            0x08 | 0x28 | 0xa8 | 0x88 | 0x0a | 0x2a | 0xaa | 0x8a | 0x2e | 0xae | 0x8e => {
                let Some((lba, n)) = Self::rw(cdb) else {
                    return self.check(task, 5, 0x24, 0);
                };
                if lba.saturating_add(n) > blocks {
                    return self.check(task, 5, 0x21, 0);
                }
                let bytes = n * BLOCK as u64;
                let is_read = matches!(op, 0x08 | 0x28 | 0xa8 | 0x88);
                if is_read {
                    let start = lba as usize * BLOCK;
                    let d = self.luns[li][start..start + bytes as usize].to_vec();
                    return self.data_in_and_status(task, cmd.dir, cmd.expected_len, d);
                }
                let expect = if cmd.dir == DataDirection::Write {
                    cmd.expected_len
                } else {
                    0
                };
                let want = bytes.min(u64::from(expect)) as u32;
                let residual = Self::residual(bytes, expect);
                if want == 0 {
                    return self.status(task, 0, Vec::new(), residual);
                }
                self.writes.insert(
                    task,
                    Pending {
                        nexus,
                        lun: cmd.lun,
                        write_lba: lba,
                        expected: want,
                        got: Vec::with_capacity(want as usize),
                        status_residual: residual,
                    },
                );
                self.events.push_back(SanEvent::ReadyToTransfer {
                    task,
                    offset: 0,
                    len: want,
                });
            }
            _ => self.check(task, 5, 0x20, 0),
        }
    }

    fn report_luns(&mut self, task: TaskId, cmd: &Command<'_>) {
        let mut d = vec![0u8; 8];
        d[..4].copy_from_slice(&((self.luns.len() * 8) as u32).to_be_bytes());
        for i in 0..self.luns.len() {
            d.extend_from_slice(&Lun::from_index(i as u16).unwrap().0);
        }
        d.truncate(be32(&cmd.cdb[6..10]) as usize);
        self.data_in_and_status(task, cmd.dir, cmd.expected_len, d);
    }

    fn inquiry(&mut self, task: TaskId, cmd: &Command<'_>, li: usize) {
        let cdb = cmd.cdb;
        let evpd = cdb[1] & 1 != 0;
        let page = cdb[2];
        let d = if !evpd {
            if page != 0 {
                return self.check(task, 5, 0x24, 0);
            }
            let mut d = vec![0u8; 36];
            d[2] = 0x06; // SPC-4
            d[3] = 0x02; // response data format 2
            d[4] = 31;
            d[7] = 0x02; // CmdQue
            d[8..16].copy_from_slice(b"RSCST   ");
            d[16..32].copy_from_slice(b"MEMDISK (TEST)  ");
            d[32..36].copy_from_slice(b"0001");
            d
        } else {
            match page {
                0x00 => vec![0, 0x00, 0, 4, 0x00, 0x80, 0x83, 0xb0],
                0xb0 => {
                    // Block Limits (SBC-4 §6.6.4): 64-byte page, transfer limits unset.
                    let mut d = vec![0u8; 64];
                    d[1] = 0xb0;
                    d[3] = 0x3c;
                    d
                }
                0x80 => {
                    let sn = format!("MEM{li:05}");
                    let mut d = vec![0, 0x80, 0, sn.len() as u8];
                    d.extend_from_slice(sn.as_bytes());
                    d
                }
                0x83 => {
                    // One T10 vendor ID designator.
                    let id = format!("RSCST   MEMDISK{li:04}");
                    let mut d = vec![0, 0x83, 0, 0];
                    d.extend_from_slice(&[0x02, 0x01, 0, id.len() as u8]);
                    d.extend_from_slice(id.as_bytes());
                    let l = (d.len() - 4) as u16;
                    d[2..4].copy_from_slice(&l.to_be_bytes());
                    d
                }
                _ => return self.check(task, 5, 0x24, 0),
            }
        };
        let mut d = d;
        d.truncate(Self::alloc_len(cdb));
        self.data_in_and_status(task, cmd.dir, cmd.expected_len, d);
    }

    /// Applies an owned request (threaded mode) and returns the events to send back.
    pub fn handle_request(&mut self, r: SanRequest) -> Vec<SanEvent> {
        match r {
            SanRequest::Login {
                login,
                initiator_name,
                isid,
                target_name,
                target_index,
                portal_group_tag,
                tsih,
                ..
            } => {
                let req = SessionLogin {
                    login,
                    initiator_name: &initiator_name,
                    initiator_alias: None,
                    isid,
                    target_name: &target_name,
                    target_index,
                    portal_group_tag,
                    tsih,
                };
                let result = match self.login(&req) {
                    LoginDecision::Accept(n) => Ok(n),
                    LoginDecision::Reject(s) => Err(s),
                    LoginDecision::Pending => Err(LoginStatus::TARGET_ERROR),
                };
                self.events.push_back(SanEvent::LoginDone { login, result });
            }
            SanRequest::Command {
                nexus,
                task,
                lun,
                cdb,
                attr,
                expected_len,
                dir,
                unsolicited_received,
                unsolicited_max,
            } => self.command(
                nexus,
                task,
                &Command {
                    lun,
                    cdb: &cdb,
                    attr,
                    expected_len,
                    dir,
                    unsolicited_received,
                    unsolicited_max,
                    cmdsn: 0,
                    itt: 0,
                },
            ),
            SanRequest::DataOut {
                nexus,
                task,
                offset,
                data,
                last,
            } => self.data_out(nexus, task, offset, &data, last),
            SanRequest::TaskMgmt { nexus, tmf, req } => self.task_mgmt(nexus, tmf, &req),
            SanRequest::AbortTask { nexus, task } => self.abort_task(nexus, task),
            SanRequest::Logout { nexus, reason } => self.logout(nexus, reason),
        }
        self.events.drain(..).collect()
    }
}

impl SanPort for MemSan {
    fn login(&mut self, req: &SessionLogin<'_>) -> LoginDecision {
        let n = NexusId(self.next_nexus);
        self.next_nexus += 1;
        self.nexuses.insert(n, req.initiator_name.to_owned());
        self.seen
            .push(Seen::Login(req.initiator_name.to_owned(), n));
        if self.login_pending {
            return LoginDecision::Pending;
        }
        LoginDecision::Accept(n)
    }

    fn command(&mut self, nexus: NexusId, task: TaskId, cmd: &Command<'_>) {
        self.seen.push(Seen::Command(nexus, task, cmd.cdb[0]));
        self.commands.push((
            task,
            cmd.cdb.to_vec(),
            cmd.expected_len,
            cmd.unsolicited_received,
        ));
        self.open.insert(task, (nexus, cmd.lun));
        if self.auto {
            self.run(nexus, task, cmd);
        }
    }

    fn data_out(&mut self, _nexus: NexusId, task: TaskId, offset: u32, data: &[u8], last: bool) {
        self.data_outs.push((task, offset, data.len(), last));
        let Some(p) = self.writes.get_mut(&task) else {
            return;
        };
        assert_eq!(offset as usize, p.got.len(), "Data-Out in order");
        p.got.extend_from_slice(data);
        if last {
            let p = self.writes.remove(&task).unwrap();
            assert!(p.got.len() <= p.expected as usize);
            if let Some(li) = self.lun_index(p.lun) {
                let start = p.write_lba as usize * BLOCK;
                self.luns[li][start..start + p.got.len()].copy_from_slice(&p.got);
            }
            let _ = p.nexus;
            self.status(task, 0, Vec::new(), p.status_residual);
        }
    }

    fn task_mgmt(&mut self, nexus: NexusId, tmf: TmfId, req: &TaskMgmt) {
        self.seen.push(Seen::Tmf(nexus, req.function));
        let response = match req.function {
            TmfFunction::AbortTask => match req.referenced {
                Some(t) if self.open.remove(&t).is_some() => {
                    self.writes.remove(&t);
                    self.events.retain(|e| !matches!(e, SanEvent::Status { task, .. } | SanEvent::DataIn { task, .. } | SanEvent::ReadyToTransfer { task, .. } if *task == t));
                    TmfResponseCode::Complete
                }
                _ => TmfResponseCode::TaskDoesNotExist,
            },
            _ => {
                let all = matches!(
                    req.function,
                    TmfFunction::TargetWarmReset | TmfFunction::TargetColdReset
                );
                let victims: Vec<(TaskId, NexusId)> = self
                    .open
                    .iter()
                    .filter(|(_, (_, l))| all || *l == req.lun)
                    .map(|(t, (n, _))| (*t, *n))
                    .collect();
                for (t, n) in victims {
                    self.open.remove(&t);
                    self.writes.remove(&t);
                    self.events.retain(|e| !matches!(e, SanEvent::Status { task, .. } | SanEvent::DataIn { task, .. } | SanEvent::ReadyToTransfer { task, .. } if *task == t));
                    if n != nexus {
                        self.events.push_back(SanEvent::TaskAborted { task: t });
                    }
                }
                TmfResponseCode::Complete
            }
        };
        self.events.push_back(SanEvent::TmfDone { tmf, response });
    }

    fn abort_task(&mut self, nexus: NexusId, task: TaskId) {
        self.seen.push(Seen::Abort(nexus, task));
        self.open.remove(&task);
        self.writes.remove(&task);
    }

    fn logout(&mut self, nexus: NexusId, reason: NexusLoss) {
        self.seen.push(Seen::Logout(nexus, reason));
        self.nexuses.remove(&nexus);
        self.open.retain(|_, (n, _)| *n != nexus);
    }
}

impl SanPoll for MemSan {
    fn poll(&mut self, _now: Duration, events: &mut dyn SanEvents) -> bool {
        let mut any = false;
        while let Some(e) = self.events.pop_front() {
            any = true;
            e.apply(events);
        }
        any
    }
}

/// One parsed PDU from the portal.
#[derive(Debug, Clone)]
pub struct Pdu {
    pub bhs: [u8; BHS_LEN],
    pub data: Vec<u8>,
}

impl Pdu {
    pub fn opcode(&self) -> Opcode {
        Bhs::new_unchecked(&self.bhs[..]).opcode()
    }
    pub fn view(&self) -> Bhs<&[u8]> {
        Bhs::new_unchecked(&self.bhs[..])
    }
}

/// Frames a PDU the way an initiator would.
pub fn frame_pdu(bhs: &[u8; BHS_LEN], ahs: &[u8], data: &[u8], hd: bool, dd: bool) -> Vec<u8> {
    let mut h = *bhs;
    {
        let mut v = Bhs::new_unchecked(&mut h[..]);
        v.set_total_ahs_len(ahs.len());
        v.set_data_segment_len(data.len() as u32);
    }
    let mut out = h.to_vec();
    out.extend_from_slice(ahs);
    if hd {
        out.extend_from_slice(&digest::header_digest(&out));
    }
    if !data.is_empty() {
        out.extend_from_slice(data);
        out.extend_from_slice(&[0u8; 3][..wire::pad4(data.len())]);
        if dd {
            out.extend_from_slice(&digest::data_digest(data));
        }
    }
    out
}

/// Splits the portal's output into PDUs, checking digests when on.
pub fn parse_pdus(mut bytes: &[u8], hd: bool, dd: bool) -> Vec<Pdu> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        assert!(bytes.len() >= BHS_LEN, "truncated output");
        let v = Bhs::new_unchecked(&bytes[..BHS_LEN]);
        let ahs = v.total_ahs_len();
        let dsl = v.data_segment_len() as usize;
        let mut pos = BHS_LEN + ahs;
        if hd {
            assert_eq!(
                &bytes[pos..pos + 4],
                &digest::header_digest(&bytes[..pos]),
                "header digest"
            );
            pos += 4;
        }
        let data = bytes[pos..pos + dsl].to_vec();
        pos += dsl + wire::pad4(dsl);
        if dd && dsl > 0 {
            assert_eq!(
                &bytes[pos..pos + 4],
                &digest::data_digest(&data),
                "data digest"
            );
            pos += 4;
        }
        let mut bhs = [0u8; BHS_LEN];
        bhs.copy_from_slice(&bytes[..BHS_LEN]);
        out.push(Pdu { bhs, data });
        bytes = &bytes[pos..];
    }
    out
}

/// A PDU-level initiator driving a [`Portal`] without sockets.
pub struct TestInit {
    pub conn: ConnId,
    pub now: Duration,
    pub hd: bool,
    pub dd: bool,
    pub cmdsn: u32,
    pub itt: u32,
    pub exp_statsn: u32,
    pub max_cmdsn: u32,
}

impl TestInit {
    pub fn connect(p: &mut Portal) -> Self {
        let conn = p.accept(Duration::ZERO, Some("127.0.0.1:3260".parse().unwrap()));
        TestInit {
            conn,
            now: Duration::ZERO,
            hd: false,
            dd: false,
            cmdsn: 100,
            itt: 1,
            exp_statsn: 0,
            max_cmdsn: 100,
        }
    }

    /// Sends raw bytes; returns how many the portal consumed.
    pub fn send_raw<S: SanPort + ?Sized>(
        &mut self,
        p: &mut Portal,
        san: &mut S,
        bytes: &[u8],
    ) -> usize {
        p.receive(self.conn, bytes, self.now, san)
    }

    pub fn send<S: SanPort + ?Sized>(
        &mut self,
        p: &mut Portal,
        san: &mut S,
        bhs: &[u8; BHS_LEN],
        data: &[u8],
    ) {
        let b = frame_pdu(bhs, &[], data, self.hd, self.dd);
        let used = p.receive(self.conn, &b, self.now, san);
        assert_eq!(used, b.len(), "portal consumed the whole PDU");
    }

    pub fn send_ahs<S: SanPort + ?Sized>(
        &mut self,
        p: &mut Portal,
        san: &mut S,
        bhs: &[u8; BHS_LEN],
        ahs: &[u8],
        data: &[u8],
    ) {
        let b = frame_pdu(bhs, ahs, data, self.hd, self.dd);
        p.receive(self.conn, &b, self.now, san);
    }

    /// Takes everything the portal has written.
    pub fn recv(&mut self, p: &mut Portal) -> Vec<Pdu> {
        let bytes = p.transmit(self.conn).to_vec();
        p.transmitted(self.conn, bytes.len());
        let pdus = parse_pdus(&bytes, self.hd, self.dd);
        for pdu in &pdus {
            if matches!(
                pdu.opcode(),
                Opcode::ScsiResponse
                    | Opcode::TaskMgmtResponse
                    | Opcode::LoginResponse
                    | Opcode::TextResponse
                    | Opcode::LogoutResponse
                    | Opcode::NopIn
                    | Opcode::R2t
                    | Opcode::Reject
            ) {
                let v = pdu.view();
                if pdu.opcode() != Opcode::R2t
                    && !(pdu.opcode() == Opcode::NopIn && v.itt() == wire::RESERVED_TAG)
                {
                    self.exp_statsn = v.u32_at(24).wrapping_add(1);
                }
                self.max_cmdsn = v.u32_at(32);
            } else if pdu.opcode() == Opcode::DataIn && pdu.view().flags() & 0x01 != 0 {
                self.exp_statsn = pdu.view().u32_at(24).wrapping_add(1);
                self.max_cmdsn = pdu.view().u32_at(32);
            }
        }
        pdus
    }

    pub fn next_itt(&mut self) -> u32 {
        let i = self.itt;
        self.itt += 1;
        i
    }

    /// Logs in with the given keys in one operational-stage PDU (T=1, NSG=FFP).
    pub fn login_keys<S: SanPort + ?Sized>(
        &mut self,
        p: &mut Portal,
        san: &mut S,
        keys: &[(&str, &str)],
        csg: wire::Stage,
        nsg: wire::Stage,
        transit: bool,
    ) -> Pdu {
        let mut data = Vec::new();
        for (k, v) in keys {
            rscst_sim::iscsi::text::push(&mut data, k, v);
        }
        let mut hdr = [0u8; BHS_LEN];
        wire::LoginRequestRepr {
            transit,
            cont: false,
            csg,
            nsg,
            version_max: 0,
            version_min: 0,
            isid: [0x80, 0, 0, 0x12, 0x34, 0x56],
            tsih: 0,
            itt: 0x1000,
            cid: 1,
            cmdsn: self.cmdsn,
            exp_statsn: self.exp_statsn,
        }
        .emit(&mut hdr);
        let (hd, dd) = (self.hd, self.dd);
        self.hd = false;
        self.dd = false;
        self.send(p, san, &hdr, &data);
        let mut r = self.recv(p);
        self.hd = hd;
        self.dd = dd;
        assert_eq!(r.len(), 1, "one login response");
        r.remove(0)
    }

    /// A complete normal-session login with libiscsi-like keys; returns the response.
    pub fn login<S: SanPort + ?Sized>(
        &mut self,
        p: &mut Portal,
        san: &mut S,
        target: &str,
        extra: &[(&str, &str)],
    ) -> Pdu {
        let mut keys: Vec<(&str, &str)> = vec![
            ("InitiatorName", "iqn.2024-01.test:init"),
            ("TargetName", target),
            ("SessionType", "Normal"),
            ("MaxRecvDataSegmentLength", "8192"),
        ];
        keys.extend_from_slice(extra);
        let r = self.login_keys(
            p,
            san,
            &keys,
            wire::Stage::Operational,
            wire::Stage::FullFeature,
            true,
        );
        if r.view().u16_at(36) == 0 && r.view().flags() & 0x80 != 0 {
            if self.hd_wanted(&r) {
                self.hd = true;
            }
            if self.dd_wanted(&r) {
                self.dd = true;
            }
        }
        r
    }

    fn hd_wanted(&self, r: &Pdu) -> bool {
        keys_of(r)
            .iter()
            .any(|(k, v)| k == "HeaderDigest" && v == "CRC32C")
    }

    fn dd_wanted(&self, r: &Pdu) -> bool {
        keys_of(r)
            .iter()
            .any(|(k, v)| k == "DataDigest" && v == "CRC32C")
    }

    /// Builds a SCSI Command header with the next ITT/CmdSN.
    pub fn cmd(
        &mut self,
        cdb: &[u8],
        edtl: u32,
        read: bool,
        write: bool,
        final_: bool,
    ) -> ([u8; BHS_LEN], u32) {
        let itt = self.next_itt();
        let mut c = [0u8; 16];
        c[..cdb.len()].copy_from_slice(cdb);
        let mut hdr = [0u8; BHS_LEN];
        wire::ScsiCommandRepr {
            immediate: false,
            final_,
            read,
            write,
            attr: wire::TaskAttr::Simple,
            lun: Lun::ZERO,
            itt,
            edtl,
            cmdsn: self.cmdsn,
            exp_statsn: self.exp_statsn,
            cdb: c,
        }
        .emit(&mut hdr);
        self.cmdsn = self.cmdsn.wrapping_add(1);
        (hdr, itt)
    }

    pub fn data_out(
        &self,
        itt: u32,
        ttt: u32,
        datasn: u32,
        offset: u32,
        final_: bool,
    ) -> [u8; BHS_LEN] {
        let mut hdr = [0u8; BHS_LEN];
        wire::DataOutRepr {
            final_,
            lun: Lun::ZERO,
            itt,
            ttt,
            exp_statsn: self.exp_statsn,
            datasn,
            offset,
        }
        .emit(&mut hdr);
        hdr
    }
}

pub fn keys_of(p: &Pdu) -> Vec<(String, String)> {
    rscst_sim::iscsi::text::parse(&p.data).expect("well-formed text")
}

/// Key/value pairs in order, duplicates allowed (SendTargets answers repeat keys).
pub fn pairs_of(p: &Pdu) -> Vec<(String, String)> {
    String::from_utf8(p.data.clone())
        .expect("UTF-8 text")
        .split('\0')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').expect("key=value");
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

pub fn key<'a>(keys: &'a [(String, String)], k: &str) -> Option<&'a str> {
    keys.iter().find(|(kk, _)| kk == k).map(|(_, v)| v.as_str())
}

pub fn read10(lba: u32, blocks: u16) -> [u8; 10] {
    let mut c = [0u8; 10];
    c[0] = 0x28;
    c[2..6].copy_from_slice(&lba.to_be_bytes());
    c[7..9].copy_from_slice(&blocks.to_be_bytes());
    c
}

pub fn write10(lba: u32, blocks: u16) -> [u8; 10] {
    let mut c = read10(lba, blocks);
    c[0] = 0x2a;
    c
}

/// Runs the SAN's queued answers into the portal until quiet.
pub fn settle(p: &mut Portal, san: &mut MemSan, now: Duration) {
    for _ in 0..64 {
        let a = san.poll(now, p);
        let b = p.poll(now, san);
        if !a && !b {
            return;
        }
    }
    panic!("SAN and portal did not settle");
}

pub fn portal_with(targets: &[&str]) -> Portal {
    let cfg = rscst_sim::iscsi::PortalConfig {
        targets: targets
            .iter()
            .map(|t| rscst_sim::iscsi::TargetConfig::open(*t))
            .collect(),
        nop_in_interval: None,
        ..Default::default()
    };
    Portal::new(cfg).expect("valid config")
}

pub const TARGET: &str = "iqn.2024-01.org.rscst:test";

pub fn residual_of(p: &Pdu) -> Residual {
    let v = p.view();
    let fl = v.flags();
    let n = v.u32_at(44);
    if fl & 0x04 != 0 {
        Residual::Overflow(n)
    } else if fl & 0x02 != 0 {
        Residual::Underflow(n)
    } else {
        Residual::None
    }
}

pub fn tmf_code(p: &Pdu) -> TmfResponseCode {
    TmfResponseCode::from(p.view().byte(2))
}
