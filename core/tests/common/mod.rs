//! Test harness: a recording fake transport, backend wrappers, and helpers
//! to drive a `Target` with golden CDBs.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};

use rscst_core::backend::{
    Backend, BackendLun, Io, IoError, IoToken, LbaRun, MapDir, Mapped, Submitted,
};
use rscst_core::{
    Access, BufferPool, Busy, CmdHandle, CmdRef, CommandRequest, Data, DataDirection, GroupId,
    Instant, LuConfig, LuId, Lun, Memory, PortConfig, Progress, RamBackend, RelativePortId,
    Residual, ScsiStatus, Seg, SegList, SessionHandle, SliceMemory, Status, Target, TargetConfig,
    TargetPortGroupId, TargetStorage, TaskAttr, TaskTag, TmfFunction, TmfHandle, TmfRef,
    TmfRequest, TmfResponse, Transport, TransportId,
};

/// Memory that lives for the whole test binary.
pub fn mem(len: usize, bus_base: u64) -> &'static SliceMemory<'static> {
    let buf: &'static mut [u8] = Box::leak(vec![0u8; len].into_boxed_slice());
    Box::leak(Box::new(SliceMemory::new(buf, bus_base)))
}

/// A status as the fake transport saw it.
#[derive(Clone, Debug, PartialEq)]
pub struct St {
    pub status: ScsiStatus,
    pub sense: Vec<u8>,
    pub residual: Residual,
}

impl St {
    fn of(s: &Status<'_>) -> St {
        St {
            status: s.status,
            sense: s.sense.to_vec(),
            residual: s.residual,
        }
    }
}

/// One call the core made on the transport.
#[derive(Clone, Debug)]
pub enum Ev {
    DataIn {
        cmd: CmdRef,
        offset: u32,
        bytes: Vec<u8>,
        status: Option<St>,
    },
    DataOut {
        cmd: CmdRef,
        offset: u32,
        segs: Vec<Seg>,
    },
    Status {
        cmd: CmdRef,
        st: St,
    },
    Tmf {
        tmf: TmfRef,
        resp: TmfResponse,
    },
    Aborted {
        cmd: CmdRef,
    },
}

impl Ev {
    pub fn cmd(&self) -> Option<CmdHandle> {
        match self {
            Ev::DataIn { cmd, .. }
            | Ev::DataOut { cmd, .. }
            | Ev::Status { cmd, .. }
            | Ev::Aborted { cmd } => Some(cmd.handle),
            Ev::Tmf { .. } => None,
        }
    }
}

/// The recording fake transport.
#[derive(Default)]
pub struct Fake {
    pub mems: Vec<&'static SliceMemory<'static>>,
    /// Every call, in order.
    pub log: Vec<Ev>,
    /// Calls not yet completed by the harness.
    pub pending: VecDeque<Ev>,
    /// Answer Busy to this many of the next calls.
    pub busy: u32,
    pub busy_answers: u32,
    pub hw_pending: Vec<CmdRef>,
    /// `tmf_dropped` calls.
    pub dropped: Vec<TmfRef>,
}

impl Fake {
    /// Copy the bytes of a segment list out of the memories ("DMA").
    pub fn gather(&self, segs: &[Seg]) -> Vec<u8> {
        let mut out = Vec::new();
        for s in segs {
            let m = self.resolve(s);
            let mut b = vec![0u8; s.len as usize];
            m.0.read(m.1, &mut b).unwrap();
            out.extend_from_slice(&b);
        }
        out
    }

    /// Write bytes into a segment list ("DMA").
    pub fn scatter(&self, segs: &[Seg], data: &[u8]) {
        let mut at = 0;
        for s in segs {
            let (m, off) = self.resolve(s);
            let n = (s.len as usize).min(data.len().saturating_sub(at));
            m.write(off, &data[at..at + n]).unwrap();
            if n < s.len as usize {
                m.fill(off + n, s.len as usize - n, 0).unwrap();
            }
            at += s.len as usize;
        }
    }

    fn resolve(&self, s: &Seg) -> (&'static SliceMemory<'static>, usize) {
        for m in &self.mems {
            if let Some(off) = m.offset_of(s.addr, s.len as usize) {
                return (m, off);
            }
        }
        panic!("segment {s} is outside every known memory (IOMMU fault)");
    }

    fn take_busy(&mut self) -> bool {
        if self.busy > 0 {
            self.busy -= 1;
            self.busy_answers += 1;
            true
        } else {
            false
        }
    }

    fn record(&mut self, ev: Ev) {
        self.log.push(ev.clone());
        self.pending.push_back(ev);
    }
}

impl Transport for Fake {
    fn queue_data_in(
        &mut self,
        cmd: CmdRef,
        data: &Data<'_>,
        status: Option<&Status<'_>>,
    ) -> Result<(), Busy> {
        if self.take_busy() {
            return Err(Busy);
        }
        assert_eq!(data.segs.iter().map(|s| s.len).sum::<u32>(), data.len());
        let bytes = self.gather(data.segs);
        self.record(Ev::DataIn {
            cmd,
            offset: data.offset,
            bytes,
            status: status.map(St::of),
        });
        Ok(())
    }

    fn request_data_out(&mut self, cmd: CmdRef, data: &Data<'_>) -> Result<(), Busy> {
        if self.take_busy() {
            return Err(Busy);
        }
        for s in data.segs {
            self.resolve(s);
        }
        self.record(Ev::DataOut {
            cmd,
            offset: data.offset,
            segs: data.segs.to_vec(),
        });
        Ok(())
    }

    fn queue_status(&mut self, cmd: CmdRef, status: &Status<'_>) -> Result<(), Busy> {
        if self.take_busy() {
            return Err(Busy);
        }
        self.record(Ev::Status {
            cmd,
            st: St::of(status),
        });
        Ok(())
    }

    fn queue_tmf_response(&mut self, tmf: TmfRef, response: &TmfResponse) -> Result<(), Busy> {
        if self.take_busy() {
            return Err(Busy);
        }
        self.record(Ev::Tmf {
            tmf,
            resp: *response,
        });
        Ok(())
    }

    fn command_aborted(&mut self, cmd: CmdRef) -> Result<(), Busy> {
        if self.take_busy() {
            return Err(Busy);
        }
        self.record(Ev::Aborted { cmd });
        Ok(())
    }

    fn hw_pending_timeout(&mut self, cmd: CmdRef) {
        self.hw_pending.push(cmd);
    }

    fn tmf_dropped(&mut self, tmf: TmfRef) {
        self.dropped.push(tmf);
    }
}

/// A backend wrapper whose I/O completes only when the test says so
/// (`release`), to hold commands "in the backend".
pub struct Slow<B> {
    pub inner: B,
    pub hold: bool,
    pub queued: VecDeque<(IoToken, Result<(), IoError>)>,
    pub done: VecDeque<(IoToken, Result<(), IoError>)>,
    pub submitted: Vec<(IoToken, rscst_core::IoKind, u64, u64)>,
    /// The FUA of each submitted I/O, in `submitted` order.
    pub fua: Vec<bool>,
    pub busy: u32,
    /// Calls of `poll_completions` (the core asks only while I/O is queued).
    pub polls: u64,
}

impl<B: Backend> Slow<B> {
    pub fn new(inner: B) -> Slow<B> {
        Slow {
            inner,
            hold: false,
            queued: VecDeque::new(),
            done: VecDeque::new(),
            submitted: Vec::new(),
            fua: Vec::new(),
            busy: 0,
            polls: 0,
        }
    }

    /// Let every held I/O complete on the next poll.
    pub fn release(&mut self) {
        while let Some(x) = self.queued.pop_front() {
            self.done.push_back(x);
        }
    }
}

impl<B: Backend> Backend for Slow<B> {
    fn map(
        &mut self,
        lun: BackendLun,
        dir: MapDir,
        lba: u64,
        blocks: u64,
        bs: u32,
        segs: &mut SegList,
    ) -> Result<Mapped, IoError> {
        if self.hold {
            // Force buffered I/O so that the data path goes through submit.
            return Ok(Mapped::Unsupported);
        }
        self.inner.map(lun, dir, lba, blocks, bs, segs)
    }

    fn submit(&mut self, io: &Io<'_>) -> Result<Submitted, Busy> {
        if self.busy > 0 {
            self.busy -= 1;
            return Err(Busy);
        }
        self.submitted.push((io.token, io.kind, io.lba, io.blocks));
        self.fua.push(io.fua);
        // Do the work now (data lands), report it later.
        let r = match self.inner.submit(io)? {
            Submitted::Done(r) => r,
            Submitted::Queued => panic!("inner backend queued"),
        };
        if self.hold {
            self.queued.push_back((io.token, r));
            Ok(Submitted::Queued)
        } else {
            Ok(Submitted::Done(r))
        }
    }

    fn poll_completions(&mut self, done: &mut dyn FnMut(IoToken, Result<(), IoError>)) {
        self.polls += 1;
        while let Some((t, r)) = self.done.pop_front() {
            done(t, r);
        }
    }

    fn lba_status(
        &mut self,
        lun: BackendLun,
        lba: u64,
        max: u64,
        bs: u32,
    ) -> Result<LbaRun, IoError> {
        self.inner.lba_status(lun, lba, max, bs)
    }
}

/// What a command ended with.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub handle: CmdHandle,
    pub status: ScsiStatus,
    pub sense: Vec<u8>,
    pub data: Vec<u8>,
    pub residual: Residual,
    pub aborted: bool,
}

impl Outcome {
    /// (key, asc, ascq) of the sense data, fixed or descriptor format.
    pub fn kcq(&self) -> Option<(u8, u8, u8)> {
        let s = &self.sense;
        match s.first()? & 0x7f {
            0x70 | 0x71 => Some((s[2] & 0xf, s[12], s[13])),
            0x72 | 0x73 => Some((s[1] & 0xf, s[2], s[3])),
            _ => None,
        }
    }

    /// The sense-key specific bytes (SKSV set), fixed or descriptor format.
    pub fn sks(&self) -> Option<[u8; 3]> {
        let s = &self.sense;
        match s.first()? & 0x7f {
            0x70 => (s[15] & 0x80 != 0).then(|| [s[15], s[16], s[17]]),
            0x72 => {
                let mut at = 8;
                while at + 1 < s.len() {
                    if s[at] == 0x02 {
                        return Some([s[at + 4], s[at + 5], s[at + 6]]);
                    }
                    at += 2 + s[at + 1] as usize;
                }
                None
            }
            _ => None,
        }
    }

    /// The INFORMATION field, if VALID.
    pub fn info(&self) -> Option<u64> {
        let s = &self.sense;
        match s.first()? {
            0xf0 => Some(u64::from(u32::from_be_bytes([s[3], s[4], s[5], s[6]]))),
            0x72 => {
                let mut at = 8;
                while at + 1 < s.len() {
                    if s[at] == 0x00 && s[at + 2] & 0x80 != 0 {
                        return Some(u64::from_be_bytes(s[at + 4..at + 12].try_into().unwrap()));
                    }
                    at += 2 + s[at + 1] as usize;
                }
                None
            }
            _ => None,
        }
    }

    #[track_caller]
    pub fn good(&self) -> &Self {
        assert_eq!(
            self.status,
            ScsiStatus::Good,
            "expected GOOD, got {:?} sense {:02x?}",
            self.status,
            self.sense
        );
        self
    }

    #[track_caller]
    pub fn status(&self, s: ScsiStatus) -> &Self {
        assert_eq!(self.status, s, "sense {:02x?}", self.sense);
        self
    }

    #[track_caller]
    pub fn check(&self, key: u8, asc: u8, ascq: u8) -> &Self {
        assert_eq!(
            self.status,
            ScsiStatus::CheckCondition,
            "expected CHECK CONDITION"
        );
        assert_eq!(
            self.kcq(),
            Some((key, asc, ascq)),
            "sense {:02x?}",
            self.sense
        );
        self
    }

    /// INVALID FIELD IN CDB at `byte` (and `bit`, if given).
    #[track_caller]
    pub fn invalid_cdb(&self, byte: u16, bit: Option<u8>) -> &Self {
        self.check(0x5, 0x24, 0x00);
        let sks = self.sks().expect("field pointer");
        assert_eq!(sks[0] & 0xc0, 0xc0, "SKSV and C/D");
        assert_eq!(
            u16::from_be_bytes([sks[1], sks[2]]),
            byte,
            "field pointer byte"
        );
        if let Some(b) = bit {
            assert_eq!(sks[0] & 0x0f, 0x08 | b, "bit pointer");
        }
        self
    }

    #[track_caller]
    pub fn residual(&self, r: Residual) -> &Self {
        assert_eq!(self.residual, r);
        self
    }

    #[track_caller]
    pub fn data(&self, d: &[u8]) -> &Self {
        assert_eq!(self.data, d);
        self
    }
}

pub type RamB = RamBackend<'static, &'static SliceMemory<'static>, 8>;

/// A target, its fake transport and a backend, with explicit time.
pub struct H<B: Backend> {
    pub t: Target<'static>,
    pub tr: Fake,
    pub b: B,
    pub now: Instant,
    /// Complete transport calls automatically while settling.
    pub auto: bool,
    pub outs: HashMap<u32, Vec<u8>>,
    pub partial: HashMap<u32, Vec<u8>>,
    pub done: HashMap<u32, Outcome>,
    pub tmf_done: HashMap<u32, TmfResponse>,
    next_tag: u64,
}

pub const POOL_BUS: u64 = 0x1000_0000;

impl<B: Backend> H<B> {
    /// A target with one port (relative port 1, group 1) and `pool` bytes
    /// of 4 KiB buffer chunks.
    pub fn new(b: B, pool: usize, extra_mems: &[&'static SliceMemory<'static>]) -> H<B> {
        let storage = Box::leak(Box::new(TargetStorage::<64, 8, 8>::new()));
        let pm = mem(pool, POOL_BUS);
        let bp = BufferPool::new(pm, 4096).unwrap();
        let mut cfg = TargetConfig::new("RSCST", "core tests", "0001");
        cfg.transport_version = 0x0a40;
        let mut t = Target::new(storage, bp, &cfg);
        t.add_port(&PortConfig::new(RelativePortId(1), TargetPortGroupId(1)))
            .unwrap();
        let mut tr = Fake::default();
        tr.mems.push(pm);
        tr.mems.extend_from_slice(extra_mems);
        H {
            t,
            tr,
            b,
            now: Instant::from_millis(1),
            auto: true,
            outs: HashMap::new(),
            partial: HashMap::new(),
            done: HashMap::new(),
            tmf_done: HashMap::new(),
            next_tag: 1,
        }
    }

    pub fn login(&mut self, name: &str) -> SessionHandle {
        let id = TransportId::iscsi(name, Some([0, 2, 0x3d, 0, 0, 1])).unwrap();
        self.t.create_session(&id, RelativePortId(1)).unwrap()
    }

    /// Log in and consume the power-on unit attention on `lun`.
    pub fn login_clean(&mut self, name: &str, lun: u16) -> SessionHandle {
        let s = self.login(name);
        let o = self.exec(s, lun, &[0x00, 0, 0, 0, 0, 0], DataDirection::None, 0, &[]);
        assert_eq!(
            o.kcq().map(|k| k.0),
            Some(6),
            "first command after login reports a unit attention"
        );
        s
    }

    pub fn tag(&mut self) -> TaskTag {
        self.next_tag += 1;
        TaskTag(self.next_tag)
    }

    /// A request with the next tag, priority 0 and CRN 0.
    fn request<'c>(
        &mut self,
        s: SessionHandle,
        lun: u16,
        attr: TaskAttr,
        cdb: &'c [u8],
        dir: DataDirection,
        len: u32,
    ) -> CommandRequest<'c> {
        CommandRequest {
            session: s,
            tag: self.tag(),
            lun: Lun::single_level(lun).unwrap(),
            attr,
            priority: 0,
            crn: 0,
            cdb,
            expected_len: len,
            dir,
        }
    }

    /// Submit without settling.
    #[allow(clippy::too_many_arguments)]
    pub fn submit_attr(
        &mut self,
        s: SessionHandle,
        lun: u16,
        attr: TaskAttr,
        cdb: &[u8],
        dir: DataDirection,
        len: u32,
        out: &[u8],
    ) -> CmdHandle {
        let req = self.request(s, lun, attr, cdb, dir, len);
        let h = self.t.submit(&req).expect("submit");
        self.outs.insert(h.to_u32(), out.to_vec());
        h
    }

    pub fn submit(
        &mut self,
        s: SessionHandle,
        lun: u16,
        cdb: &[u8],
        dir: DataDirection,
        len: u32,
        out: &[u8],
    ) -> CmdHandle {
        self.submit_attr(s, lun, TaskAttr::Simple, cdb, dir, len, out)
    }

    /// Submit through the express path (`Target::submit_now`, the fake
    /// transport as the transport) without settling: the command runs at
    /// once if the core can, else it waits for the next poll.
    #[allow(clippy::too_many_arguments)]
    pub fn submit_now_attr(
        &mut self,
        s: SessionHandle,
        lun: u16,
        attr: TaskAttr,
        cdb: &[u8],
        dir: DataDirection,
        len: u32,
        out: &[u8],
    ) -> CmdHandle {
        let req = self.request(s, lun, attr, cdb, dir, len);
        let mut seen = None;
        let h = self
            .t
            .submit_now(&req, self.now, &mut self.tr, &mut self.b, |_, h| {
                seen = Some(h)
            })
            .expect("submit_now");
        assert_eq!(seen, Some(h), "accepted ran once with the handle");
        self.outs.insert(h.to_u32(), out.to_vec());
        h
    }

    /// [`Self::submit_now_attr`] of a SIMPLE Data-In command.
    pub fn submit_now_read(
        &mut self,
        s: SessionHandle,
        lun: u16,
        cdb: &[u8],
        len: u32,
    ) -> CmdHandle {
        self.submit_now_attr(s, lun, TaskAttr::Simple, cdb, DataDirection::In, len, &[])
    }

    pub fn tmf(&mut self, s: SessionHandle, lun: u16, f: TmfFunction) -> TmfHandle {
        let tag = self.tag();
        self.t
            .submit_tmf(&TmfRequest {
                session: s,
                tag,
                lun: Lun::single_level(lun).unwrap(),
                function: f,
            })
            .expect("submit_tmf")
    }

    /// Submit a TMF if a slot is free; remembers the session it came from.
    pub fn tmf_try(
        &mut self,
        s: SessionHandle,
        lun: u16,
        f: TmfFunction,
    ) -> Option<(TmfHandle, SessionHandle)> {
        let tag = self.tag();
        self.t
            .submit_tmf(&TmfRequest {
                session: s,
                tag,
                lun: Lun::single_level(lun).unwrap(),
                function: f,
            })
            .ok()
            .map(|t| (t, s))
    }

    /// One poll.
    pub fn poll(&mut self) -> Progress {
        self.t.poll(self.now, &mut self.tr, &mut self.b)
    }

    /// Complete one pending transport call the way a well-behaved transport would.
    pub fn complete(&mut self, ev: Ev) {
        match ev {
            Ev::DataIn {
                cmd,
                offset,
                bytes,
                status,
            } => {
                let k = cmd.handle.to_u32();
                let acc = self.partial.entry(k).or_default();
                assert_eq!(acc.len(), offset as usize, "data-in offsets are contiguous");
                acc.extend_from_slice(&bytes);
                match status {
                    Some(st) => {
                        let data = self.partial.remove(&k).unwrap_or_default();
                        self.finish(cmd.handle, st, data, false);
                        self.t.response_sent(cmd.handle, Ok(())).unwrap();
                    }
                    None => self.t.data_in_done(cmd.handle, Ok(())).unwrap(),
                }
            }
            Ev::DataOut { cmd, offset, segs } => {
                let data = self
                    .outs
                    .get(&cmd.handle.to_u32())
                    .cloned()
                    .unwrap_or_default();
                let from = (offset as usize).min(data.len());
                self.tr.scatter(&segs, &data[from..]);
                self.t.data_out_done(cmd.handle, Ok(())).unwrap();
            }
            Ev::Status { cmd, st } => {
                let data = self
                    .partial
                    .remove(&cmd.handle.to_u32())
                    .unwrap_or_default();
                self.finish(cmd.handle, st, data, false);
                self.t.response_sent(cmd.handle, Ok(())).unwrap();
            }
            Ev::Tmf { tmf, resp } => {
                self.tmf_done.insert(tmf.handle.to_u32(), resp);
                self.t.tmf_response_sent(tmf.handle).unwrap();
            }
            Ev::Aborted { cmd } => {
                // The exchange is terminated: its other queued work is gone
                // and is never completed after abort_done.
                self.tr.pending.retain(|e| e.cmd() != Some(cmd.handle));
                self.partial.remove(&cmd.handle.to_u32());
                let st = St {
                    status: ScsiStatus::TaskAborted,
                    sense: vec![],
                    residual: Residual::None,
                };
                self.finish(cmd.handle, st, vec![], true);
                self.t.abort_done(cmd.handle).unwrap();
            }
        }
    }

    fn finish(&mut self, handle: CmdHandle, st: St, data: Vec<u8>, aborted: bool) {
        self.done.insert(
            handle.to_u32(),
            Outcome {
                handle,
                status: st.status,
                sense: st.sense,
                data,
                residual: st.residual,
                aborted,
            },
        );
    }

    /// Poll and (in auto mode) complete transport calls until nothing moves.
    pub fn settle(&mut self) {
        for _ in 0..100_000 {
            let p = self.poll();
            let mut any = false;
            if self.auto {
                while let Some(ev) = self.tr.pending.pop_front() {
                    any = true;
                    self.complete(ev);
                }
            }
            if p == Progress::Idle && !any && self.t.poll_at(self.now) != Some(self.now) {
                return;
            }
            if p == Progress::Idle && !any && !self.auto {
                return;
            }
        }
        panic!("target does not settle");
    }

    /// Advance time and settle (background operations).
    pub fn advance(&mut self, ms: u64) {
        self.now = Instant::from_nanos(self.now.as_nanos() + ms * 1_000_000);
        self.settle();
    }

    /// Let `ms` milliseconds pass, polling at every deadline on the way.
    pub fn run_for(&mut self, ms: u64) {
        let end = Instant::from_nanos(self.now.as_nanos() + ms * 1_000_000);
        loop {
            self.settle();
            match self.t.poll_at(self.now) {
                Some(at) if at <= end => {
                    self.now = at.max(Instant::from_nanos(self.now.as_nanos() + 1))
                }
                _ => break,
            }
        }
        self.now = end;
        self.settle();
    }

    /// Run until every paced background operation is finished.
    pub fn run_until_idle(&mut self) {
        for _ in 0..1_000_000 {
            self.settle();
            match self.t.poll_at(self.now) {
                None => return,
                Some(at) => self.now = at.max(Instant::from_nanos(self.now.as_nanos() + 1)),
            }
        }
        panic!("never idle");
    }

    pub fn outcome(&mut self, h: CmdHandle) -> Option<Outcome> {
        self.done.remove(&h.to_u32())
    }

    #[track_caller]
    pub fn result(&mut self, h: CmdHandle) -> Outcome {
        self.outcome(h).unwrap_or_else(|| {
            panic!(
                "command {h} has no outcome (state {:?})",
                self.t.cmd_state(h)
            )
        })
    }

    #[track_caller]
    pub fn tmf_result(&mut self, h: TmfHandle) -> TmfResponse {
        self.tmf_done
            .remove(&h.to_u32())
            .unwrap_or_else(|| panic!("TMF {h} has no response"))
    }

    /// Remove the first pending transport call for command `h`.
    pub fn take_for(&mut self, h: CmdHandle) -> Option<Ev> {
        let i = self.tr.pending.iter().position(|e| e.cmd() == Some(h))?;
        self.tr.pending.remove(i)
    }

    /// Complete the first pending transport call of command `h`.
    #[track_caller]
    pub fn complete_for(&mut self, h: CmdHandle) {
        let ev = self
            .take_for(h)
            .unwrap_or_else(|| panic!("no pending call for {h}"));
        self.complete(ev);
    }

    /// Complete every pending transport call (one round).
    pub fn complete_all(&mut self) {
        while let Some(ev) = self.tr.pending.pop_front() {
            self.complete(ev);
        }
    }

    /// Pending TMF responses.
    pub fn pending_tmfs(&self) -> usize {
        self.tr
            .pending
            .iter()
            .filter(|e| matches!(e, Ev::Tmf { .. }))
            .count()
    }

    /// Whether a command has a pending `command_aborted`.
    pub fn aborted_pending(&self, h: CmdHandle) -> bool {
        self.tr
            .pending
            .iter()
            .any(|e| matches!(e, Ev::Aborted { cmd } if cmd.handle == h))
    }

    /// Whether the transport was ever asked anything about a command.
    pub fn touched(&self, h: CmdHandle) -> bool {
        self.tr.log.iter().any(|e| e.cmd() == Some(h))
    }

    /// Submit, settle, and return the outcome.
    #[track_caller]
    pub fn exec(
        &mut self,
        s: SessionHandle,
        lun: u16,
        cdb: &[u8],
        dir: DataDirection,
        len: u32,
        out: &[u8],
    ) -> Outcome {
        let h = self.submit(s, lun, cdb, dir, len, out);
        self.settle();
        self.result(h)
    }

    /// A data-in command with the expected length `len`.
    #[track_caller]
    pub fn read_cmd(&mut self, s: SessionHandle, lun: u16, cdb: &[u8], len: u32) -> Outcome {
        self.exec(s, lun, cdb, DataDirection::In, len, &[])
    }

    /// A data-out command carrying `data`.
    #[track_caller]
    pub fn write_cmd(&mut self, s: SessionHandle, lun: u16, cdb: &[u8], data: &[u8]) -> Outcome {
        self.exec(s, lun, cdb, DataDirection::Out, data.len() as u32, data)
    }

    /// A command with no data.
    #[track_caller]
    pub fn cmd(&mut self, s: SessionHandle, lun: u16, cdb: &[u8]) -> Outcome {
        self.exec(s, lun, cdb, DataDirection::None, 0, &[])
    }
}

/// A thin RAM LU of `blocks` 512-byte blocks mapped as LUN 0 in the default
/// group, with a per-block provisioning bitmap.
pub fn ram_target(blocks: u64) -> (H<RamB>, LuId) {
    ram_target_with(blocks, 512, |_| {})
}

pub fn ram_target_with(
    blocks: u64,
    bs: u32,
    tweak: impl FnOnce(&mut LuConfig<'static>),
) -> (H<RamB>, LuId) {
    ram_target_pool(blocks, bs, 512 * 1024, tweak)
}

pub fn ram_target_pool(
    blocks: u64,
    bs: u32,
    pool: usize,
    tweak: impl FnOnce(&mut LuConfig<'static>),
) -> (H<RamB>, LuId) {
    ram_target_granule(blocks, bs, pool, 1, tweak)
}

/// A thin RAM LU whose backend allocates `granule` blocks at a time (the
/// LU's OPTIMAL UNMAP GRANULARITY).
pub fn ram_target_granule(
    blocks: u64,
    bs: u32,
    pool: usize,
    granule: u32,
    tweak: impl FnOnce(&mut LuConfig<'static>),
) -> (H<RamB>, LuId) {
    let lun_mem = mem((blocks * u64::from(bs)) as usize, 0x4000_0000);
    let bits: &'static mut [u32] =
        Box::leak(vec![0u32; RamB::bitmap_words(blocks, granule)].into_boxed_slice());
    let mut b: RamB = RamBackend::new();
    let id = b.add_thin_lun(lun_mem, bs, bits, granule).unwrap();
    let mut h = H::new(b, pool, &[lun_mem]);
    let mut cfg = LuConfig::new(id, bs, blocks);
    cfg.thin = true;
    cfg.unmap_granularity = granule;
    cfg.removable = true;
    cfg.serial = "SN0001";
    tweak(&mut cfg);
    let lu = h.t.add_lu(&cfg).unwrap();
    h.t.map_lun(
        GroupId::DEFAULT,
        Lun::single_level(0).unwrap(),
        lu,
        Access::ReadWrite,
    )
    .unwrap();
    (h, lu)
}

/// Read the LU's bytes straight out of the RAM backend's memory.
pub fn lun_bytes(h: &H<RamB>, lba: u64, blocks: u64) -> Vec<u8> {
    let m = h.b.memory(BackendLun(0)).unwrap();
    let mut out = vec![0u8; (blocks * 512) as usize];
    m.read((lba * 512) as usize, &mut out).unwrap();
    out
}

pub fn rd10(lba: u32, n: u16) -> [u8; 10] {
    let l = lba.to_be_bytes();
    let c = n.to_be_bytes();
    [0x28, 0, l[0], l[1], l[2], l[3], 0, c[0], c[1], 0]
}

pub fn wr10(lba: u32, n: u16) -> [u8; 10] {
    let l = lba.to_be_bytes();
    let c = n.to_be_bytes();
    [0x2a, 0, l[0], l[1], l[2], l[3], 0, c[0], c[1], 0]
}

pub fn rd16(lba: u64, n: u32) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = 0x88;
    c[2..10].copy_from_slice(&lba.to_be_bytes());
    c[10..14].copy_from_slice(&n.to_be_bytes());
    c
}

pub fn wr16(lba: u64, n: u32) -> [u8; 16] {
    let mut c = rd16(lba, n);
    c[0] = 0x8a;
    c
}

pub const TUR: [u8; 6] = [0x00, 0, 0, 0, 0, 0];

pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Set TAS and QErr in the control mode page (0Ah) through session `s` with
/// MODE SELECT(6), PF=1; the page's other fields are 0 but BUSY TIMEOUT PERIOD (FFFFh).
pub fn set_control<B: Backend>(h: &mut H<B>, s: SessionHandle, tas: bool, qerr: u8) {
    let mut p = vec![0u8; 4 + 12];
    p[4] = 0x0a;
    p[5] = 0x0a;
    p[7] = qerr << 1;
    p[9] = if tas { 0x40 } else { 0 };
    p[12] = 0xff;
    p[13] = 0xff;
    h.write_cmd(s, 0, &[0x15, 0x10, 0, 0, p.len() as u8, 0], &p)
        .good();
}
