//! A tiny SCSI target on top of [`super::TestDriver`]: it polls the ATIO and response
//! rings, acknowledges logins, answers a handful of SCSI commands from a RAM disk that
//! lives in DMA memory (CTIO DSDs point straight at the LUN's bytes), handles task
//! management and ABTS. Test code, not the real driver.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use rscst_fw::fc::bls::BaRjtRepr;
use rscst_fw::fc::els::ElsOpcode;
use rscst_fw::fc::{DataDir, Residual, RspCode, TmFlags};
use rscst_fw::iocb::{
    AbtsRecvRepr, AbtsRespCompletionRepr, AbtsRespRepr, Atio7Repr, ContinueA64Repr,
    Ctio7CompletionRepr, Ctio7Exchange, Ctio7Repr, Dsd64, ImmedNotifyRepr, NotifyAckCompletionRepr,
    NotifyAckRepr, NotifyStatus, handle,
};
use rscst_fw::regs::QueuePointer;
use rscst_fw::{ExchangeAddr, NportHandle, PortId};
use rscst_hba::{DmaPool, DmaRegion, Platform};
use rscst_sim::{Sim, SimDmaRegion};

use super::{FenceExt, RESPONSE_PROCESSED, TestDriver};

pub const BLOCK: u32 = 512;

/// What the target saw, for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    Command {
        exchange: u32,
        opcode: u8,
        s_id: PortId,
    },
    Tmf {
        exchange: u32,
        flags: u8,
    },
    Busy {
        exchange: u32,
    },
    Notify {
        status: u16,
        subcode: u8,
        handle: u16,
    },
    Abts {
        exchange: u32,
        to_abort: u32,
    },
    CtioDone {
        exchange: u32,
        status: u16,
        handle: u32,
    },
    NotifyAckDone,
    AbtsRespDone {
        status: u16,
        not_terminated: bool,
    },
    Bounced {
        entry_type: u8,
        entry_status: u8,
    },
}

struct Cmd {
    x: Ctio7Exchange,
    scratch: Option<SimDmaRegion>,
    /// After the data-out CTIO completes: send status GOOD.
    pending_status: bool,
    fcp_dl: u32,
}

pub struct MiniTarget {
    pub d: TestDriver,
    pub lun: SimDmaRegion,
    pub blocks: u64,
    pub sessions: BTreeMap<u16, PortId>,
    cmds: BTreeMap<u32, Cmd>,
    pub seen: Vec<Seen>,
    next_handle: u32,
    /// Split every data CTIO into DSDs of at most this many bytes (continuation entries).
    pub dsd_split: u32,
    /// Do not answer commands (let them sit; for ABTS / logout tests).
    pub hold_commands: bool,
    pub marker_sent: bool,
    /// Never send a MARKER (a broken target, for the marker check).
    pub no_markers: bool,
    /// Writes land this many blocks away from their LBA (a broken target, for the
    /// verification tests).
    pub misdirect_writes: u64,
}

impl MiniTarget {
    pub fn new(d: TestDriver, blocks: u64) -> MiniTarget {
        let lun =
            d.p.dma()
                .alloc((blocks * BLOCK as u64) as usize, 4096)
                .expect("LUN memory");
        MiniTarget {
            d,
            lun,
            blocks,
            sessions: BTreeMap::new(),
            cmds: BTreeMap::new(),
            seen: Vec::new(),
            next_handle: 1,
            dsd_split: u32::MAX,
            hold_commands: false,
            marker_sent: false,
            no_markers: false,
            misdirect_writes: 0,
        }
    }

    fn handle(&mut self) -> u32 {
        self.next_handle = self.next_handle % 0x0FFF_0000 + 1;
        handle::TARGET_BIT | self.next_handle
    }

    /// Writes entries into the request ring and rings the doorbell once.
    pub fn post(&mut self, entries: &[[u8; 64]]) {
        let out = self.d.qp_read(QueuePointer::RequestOut) as u16;
        let r = self.d.rings.as_mut().expect("rings");
        let free = if r.req_in < out {
            out - r.req_in
        } else {
            r.req_len - (r.req_in - out)
        };
        assert!(free as usize >= entries.len() + 2, "request ring full");
        for e in entries {
            r.req.write(r.req_in as usize * 64, e).unwrap();
            r.req_in = (r.req_in + 1) % r.req_len;
        }
        let v = r.req_in as u32;
        self.d.fence();
        self.d.qp_write(QueuePointer::RequestIn, v);
    }

    pub fn send_marker(&mut self) {
        let mut b = [0u8; 64];
        rscst_fw::iocb::MarkerRepr::sync_all(0)
            .emit_bytes(&mut b)
            .unwrap();
        self.post(&[b]);
        self.marker_sent = true;
    }

    /// Processes everything in the ATIO and response rings and clears interrupts.
    pub fn poll(&mut self, _sim: &mut Sim) {
        self.poll_hw();
    }

    /// [`MiniTarget::poll`] without the simulator (threaded mode).
    pub fn poll_hw(&mut self) {
        self.marker_if_needed();
        // Interrupt causes: async events are collected, queue updates just cleared.
        for _ in 0..50 {
            let hs = self.d.host_status();
            if !hs.int_pending() {
                break;
            }
            if hs.int_type() == rscst_fw::regs::IntType::AsyncEvent {
                let mut mb = [0u16; 8];
                mb[0] = hs.mailbox0();
                for (n, m) in mb.iter_mut().enumerate().skip(1) {
                    *m = self.d.mb_out(n);
                }
                self.d.asyncs.push(mb);
                if mb[0] == 0x8011 || mb[0] == 0x8012 || mb[0] == 0x8010 {
                    self.marker_sent = false;
                }
            } else if !hs.int_type().is_mailbox_completion() {
                self.d.queue_ints.push(hs.0);
            } else {
                break; // a mailbox completion belongs to the mailbox helper
            }
            self.d.hccr(rscst_fw::regs::HccrCommand::ClearRiscInt);
        }
        self.d.irq_ack();
        // After a LIP / link event: the MARKER goes before anything else.
        self.marker_if_needed();
        self.poll_atio();
        self.poll_rsp();
    }

    fn marker_if_needed(&mut self) {
        if !self.marker_sent && !self.no_markers && self.d.rings.is_some() {
            self.send_marker();
        }
    }

    fn poll_atio(&mut self) {
        let start = self.d.rings.as_ref().unwrap().atio_out;
        loop {
            let (slot, idx, len) = {
                let r = self.d.rings.as_ref().unwrap();
                let sig = r
                    .atio
                    .load_u32(r.atio_out as usize * 64 + 0x3C, Ordering::Acquire)
                    .unwrap();
                if sig == RESPONSE_PROCESSED {
                    break;
                }
                self.d.p.fence_acquire();
                let mut s = [0u8; 64];
                r.atio.read(r.atio_out as usize * 64, &mut s).unwrap();
                (s, r.atio_out, r.atio_len)
            };
            let count = slot[1].max(1) as u16;
            let mut bytes = Vec::with_capacity(count as usize * 64);
            {
                let r = self.d.rings.as_ref().unwrap();
                for k in 0..count {
                    let i = (idx + k) % len;
                    let mut s = [0u8; 64];
                    r.atio.read(i as usize * 64, &mut s).unwrap();
                    bytes.extend_from_slice(&s);
                    r.atio
                        .store_u32(
                            i as usize * 64 + 0x3C,
                            RESPONSE_PROCESSED,
                            Ordering::Relaxed,
                        )
                        .unwrap();
                }
            }
            {
                let r = self.d.rings.as_mut().unwrap();
                r.atio_out = (idx + count) % len;
            }
            match bytes[0] {
                0x06 => self.atio(&bytes),
                0x0D => self.notify(&bytes[..64]),
                0x54 => self.abts(&bytes[..64]),
                t => panic!("unexpected ATIO-ring entry type {t:#x}"),
            }
        }
        let out = self.d.rings.as_ref().unwrap().atio_out;
        if out != start {
            self.d.fence();
            self.d.qp_write(QueuePointer::AtioOut, out as u32);
        }
    }

    fn poll_rsp(&mut self) {
        let start = self.d.rings.as_ref().unwrap().rsp_out;
        loop {
            let fw_in = self.d.qp_read(QueuePointer::ResponseIn) as u16;
            let (e, idx, len) = {
                let r = self.d.rings.as_ref().unwrap();
                if r.rsp_out == fw_in {
                    break;
                }
                let sig = r
                    .rsp
                    .load_u32(r.rsp_out as usize * 64 + 0x3C, Ordering::Acquire)
                    .unwrap();
                assert_ne!(
                    sig, RESPONSE_PROCESSED,
                    "in-pointer moved before the entry was written"
                );
                self.d.p.fence_acquire();
                let mut s = [0u8; 64];
                r.rsp.read(r.rsp_out as usize * 64, &mut s).unwrap();
                r.rsp
                    .store_u32(
                        r.rsp_out as usize * 64 + 0x3C,
                        RESPONSE_PROCESSED,
                        Ordering::Relaxed,
                    )
                    .unwrap();
                (s, r.rsp_out, r.rsp_len)
            };
            self.d.rings.as_mut().unwrap().rsp_out = (idx + 1) % len;
            if e[3] & 0x3C != 0 {
                self.seen.push(Seen::Bounced {
                    entry_type: e[0],
                    entry_status: e[3],
                });
                continue;
            }
            match e[0] {
                0x12 => self.ctio_done(&e),
                0x0E => {
                    let c = NotifyAckCompletionRepr::parse_bytes(&e).unwrap();
                    assert!(c.is_success());
                    self.seen.push(Seen::NotifyAckDone);
                }
                0x54 => self.abts(&e),
                0x55 => {
                    let c = AbtsRespCompletionRepr::parse_bytes(&e).unwrap();
                    self.seen.push(Seen::AbtsRespDone {
                        status: c.compl_status.raw(),
                        not_terminated: c.exchange_not_terminated(),
                    });
                }
                0x04 | 0x52 | 0x39 => {}
                t => panic!("unexpected response entry {t:#x}"),
            }
        }
        let out = self.d.rings.as_ref().unwrap().rsp_out;
        if out != start {
            self.d.fence();
            self.d.qp_write(QueuePointer::ResponseOut, out as u32);
        }
    }

    fn notify(&mut self, b: &[u8]) {
        let n = ImmedNotifyRepr::parse_bytes(b).unwrap();
        self.seen.push(Seen::Notify {
            status: n.status.raw(),
            subcode: n.status_subcode,
            handle: n.nport_handle.0,
        });
        if n.status == NotifyStatus::Els {
            match n.els_opcode() {
                Some(ElsOpcode::Plogi) => {
                    self.sessions.insert(n.nport_handle.0, n.port_id);
                }
                Some(ElsOpcode::Logo) | Some(ElsOpcode::Prlo) => {
                    self.sessions.remove(&n.nport_handle.0);
                    // Nexus loss: terminate every command of that session.
                    let xs: Vec<u32> = self
                        .cmds
                        .iter()
                        .filter(|(_, c)| c.x.nport_handle == n.nport_handle)
                        .map(|(k, _)| *k)
                        .collect();
                    for x in xs {
                        if let Some(c) = self.cmds.remove(&x) {
                            self.terminate(&c.x);
                        }
                    }
                }
                _ => {}
            }
        }
        let h = self.handle();
        let ack = NotifyAckRepr::ack(&n, h);
        let mut e = [0u8; 64];
        ack.emit_bytes(&mut e).unwrap();
        self.post(&[e]);
    }

    fn terminate(&mut self, x: &Ctio7Exchange) {
        let mut e = [0u8; 64];
        Ctio7Repr::terminate(x).emit_bytes(&mut e).unwrap();
        self.post(&[e]);
    }

    fn abts(&mut self, b: &[u8]) {
        let a = AbtsRecvRepr::parse_bytes(b).unwrap();
        self.seen.push(Seen::Abts {
            exchange: a.exchange_addr.0,
            to_abort: a.exchange_addr_to_abort.0,
        });
        let mut e = [0u8; 64];
        match self.cmds.remove(&a.exchange_addr_to_abort.0) {
            Some(c) => {
                self.terminate(&c.x);
                AbtsRespRepr::accept(&a, self.handle())
                    .emit_bytes(&mut e)
                    .unwrap();
            }
            None => {
                AbtsRespRepr::reject(&a, handle::SKIP, BaRjtRepr::UNABLE_TO_PERFORM)
                    .emit_bytes(&mut e)
                    .unwrap();
            }
        }
        self.post(&[e]);
    }

    fn ctio_done(&mut self, e: &[u8; 64]) {
        let c = Ctio7CompletionRepr::parse_bytes(e).unwrap();
        self.seen.push(Seen::CtioDone {
            exchange: c.exchange_addr.0,
            status: c.status.raw(),
            handle: c.handle,
        });
        if c.is_skip() {
            return;
        }
        let key = c.exchange_addr.0;
        if !c.is_success() {
            if let Some(cmd) = self.cmds.remove(&key) {
                if !c.status.always_terminate()
                    && c.flags.contains(rscst_fw::iocb::Ctio7Flags::DATA_OUT)
                {
                    let mut s = [0u8; 64];
                    Ctio7Repr::status(
                        &cmd.x,
                        self.handle(),
                        0x02,
                        Residual::None,
                        &[0x70, 0, 0x0B, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x47, 0],
                    )
                    .unwrap()
                    .emit_bytes(&mut s)
                    .unwrap();
                    self.post(&[s]);
                } else {
                    self.terminate(&cmd.x);
                }
            }
            return;
        }
        let pending = self.cmds.get(&key).is_some_and(|c| c.pending_status);
        if pending {
            if let Some(cmd) = self.cmds.get_mut(&key) {
                cmd.pending_status = false;
            }
            let x = self.cmds[&key].x;
            let mut s = [0u8; 64];
            Ctio7Repr::status(&x, self.handle(), 0, Residual::None, &[])
                .unwrap()
                .emit_bytes(&mut s)
                .unwrap();
            self.post(&[s]);
        } else {
            self.cmds.remove(&key);
        }
    }

    /// DSDs of `len` bytes at `addr`, split by `dsd_split`.
    fn dsds(&self, addr: u64, len: u32) -> Vec<Dsd64> {
        let mut v = Vec::new();
        let mut off = 0;
        while off < len {
            let n = (len - off).min(self.dsd_split);
            v.push(Dsd64 {
                address: addr + off as u64,
                length: n,
            });
            off += n;
        }
        if v.is_empty() {
            v.push(Dsd64 {
                address: addr,
                length: 0,
            });
        }
        v
    }

    fn data_ctio(
        &self,
        x: &Ctio7Exchange,
        h: u32,
        dir: DataDir,
        addr: u64,
        len: u32,
    ) -> Vec<[u8; 64]> {
        let dsds = self.dsds(addr, len);
        let c = Ctio7Repr::data(x, h, dir, 0, len, dsds[0], dsds.len() as u16).unwrap();
        self.with_continuations(c, &dsds)
    }

    fn with_continuations(&self, c: Ctio7Repr, dsds: &[Dsd64]) -> Vec<[u8; 64]> {
        let mut out = Vec::new();
        let mut e = [0u8; 64];
        c.emit_bytes(&mut e).unwrap();
        out.push(e);
        for cont in ContinueA64Repr::for_dsds(dsds) {
            let mut e = [0u8; 64];
            cont.emit_bytes(&mut e).unwrap();
            out.push(e);
        }
        out
    }

    fn atio(&mut self, b: &[u8]) {
        let a = Atio7Repr::parse_bytes(b).unwrap();
        let handle_of = self
            .sessions
            .iter()
            .find(|(_, p)| **p == a.header.s_id)
            .map(|(h, _)| *h);
        let x = Ctio7Exchange::from_atio(&a, NportHandle(handle_of.unwrap_or(0xFFFF)), 0);
        if a.exchange_addr == ExchangeAddr::UNKNOWN {
            self.seen.push(Seen::Busy {
                exchange: a.exchange_addr.0,
            });
            let mut e = [0u8; 64];
            Ctio7Repr::busy(&x, 0x08, a.fcp.data_len)
                .emit_bytes(&mut e)
                .unwrap();
            return self.post(&[e]);
        }
        if !a.fcp.tmf.is_empty() {
            self.seen.push(Seen::Tmf {
                exchange: a.exchange_addr.0,
                flags: a.fcp.tmf.bits(),
            });
            let code = if a.fcp.tmf.function().is_some() {
                RspCode::Complete
            } else {
                RspCode::TmfRejected
            };
            if a.fcp
                .tmf
                .intersects(TmFlags::LUN_RESET | TmFlags::ABORT_TASK_SET | TmFlags::CLEAR_TASK_SET)
            {
                let xs: Vec<u32> = self.cmds.keys().copied().collect();
                for k in xs {
                    if let Some(c) = self.cmds.remove(&k) {
                        self.terminate(&c.x);
                    }
                }
            }
            let mut e = [0u8; 64];
            Ctio7Repr::tm_response(&x, code).emit_bytes(&mut e).unwrap();
            return self.post(&[e]);
        }
        let cdb = a.fcp.cdb.as_slice().to_vec();
        self.seen.push(Seen::Command {
            exchange: a.exchange_addr.0,
            opcode: cdb[0],
            s_id: a.header.s_id,
        });
        self.cmds.insert(
            a.exchange_addr.0,
            Cmd {
                x,
                scratch: None,
                pending_status: false,
                fcp_dl: a.fcp.data_len,
            },
        );
        if self.hold_commands {
            return;
        }
        self.execute(a.exchange_addr.0, &cdb, a.fcp.data_len);
    }

    fn check_condition(&mut self, key: u32, asc: u8, ascq: u8, fcp_dl: u32) {
        let x = self.cmds[&key].x;
        let sense = [
            0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, asc, ascq, 0, 0, 0, 0,
        ];
        let resid = if fcp_dl > 0 {
            Residual::Under(fcp_dl)
        } else {
            Residual::None
        };
        let mut e = [0u8; 64];
        let h = self.handle();
        Ctio7Repr::status(&x, h, 0x02, resid, &sense)
            .unwrap()
            .emit_bytes(&mut e)
            .unwrap();
        self.post(&[e]);
    }

    /// Sends `data` (copied to a scratch DMA buffer) with GOOD status; a residual goes in a
    /// second CTIO (§9.3).
    fn send_bytes(&mut self, key: u32, data: &[u8], fcp_dl: u32) {
        let n = (data.len() as u32).min(fcp_dl);
        let scratch = self.d.p.dma().alloc(4096.max(n as usize), 64).unwrap();
        scratch.write(0, &data[..n as usize]).unwrap();
        let x = self.cmds[&key].x;
        let h = self.handle();
        let mut entries;
        if n == fcp_dl {
            let dsds = self.dsds(scratch.iova().0, n);
            let c = Ctio7Repr::data(&x, h, DataDir::DataIn, 0, n, dsds[0], dsds.len() as u16)
                .unwrap()
                .with_good_status();
            entries = self.with_continuations(c, &dsds);
        } else {
            let dsds = self.dsds(scratch.iova().0, n);
            let mut c = Ctio7Repr::data(
                &x,
                h | handle::INTERMEDIATE_BIT,
                DataDir::DataIn,
                0,
                n,
                dsds[0],
                dsds.len() as u16,
            )
            .unwrap();
            c.flags.insert(rscst_fw::iocb::Ctio7Flags::DONT_RET_CTIO);
            entries = self.with_continuations(c, &dsds);
            let mut e = [0u8; 64];
            Ctio7Repr::status(&x, h, 0, Residual::Under(fcp_dl - n), &[])
                .unwrap()
                .emit_bytes(&mut e)
                .unwrap();
            entries.push(e);
        }
        if let Some(c) = self.cmds.get_mut(&key) {
            c.scratch = Some(scratch);
        }
        self.post(&entries);
    }

    fn execute(&mut self, key: u32, cdb: &[u8], fcp_dl: u32) {
        let x = self.cmds[&key].x;
        match cdb[0] {
            0x00 => {
                let mut e = [0u8; 64];
                let h = self.handle();
                Ctio7Repr::status(&x, h, 0, Residual::None, &[])
                    .unwrap()
                    .emit_bytes(&mut e)
                    .unwrap();
                self.post(&[e]);
            }
            0x12 => {
                let mut inq = [0u8; 36];
                inq[2] = 6;
                inq[3] = 2;
                inq[4] = 31;
                inq[8..16].copy_from_slice(b"RSCST   ");
                inq[16..32].copy_from_slice(b"SIM TEST DISK   ");
                inq[32..36].copy_from_slice(b"0001");
                let alloc = u16::from_be_bytes([cdb[3], cdb[4]]) as u32;
                self.send_bytes(key, &inq[..36.min(alloc as usize)], fcp_dl);
            }
            0x25 => {
                let mut d = [0u8; 8];
                d[..4].copy_from_slice(&((self.blocks - 1) as u32).to_be_bytes());
                d[4..].copy_from_slice(&BLOCK.to_be_bytes());
                self.send_bytes(key, &d, fcp_dl);
            }
            0x28 | 0x88 | 0x2A | 0x8A => {
                let (lba, n) = if cdb[0] & 0xF0 == 0x20 {
                    (
                        u32::from_be_bytes([cdb[2], cdb[3], cdb[4], cdb[5]]) as u64,
                        u16::from_be_bytes([cdb[7], cdb[8]]) as u32,
                    )
                } else {
                    (
                        u64::from_be_bytes([
                            cdb[2], cdb[3], cdb[4], cdb[5], cdb[6], cdb[7], cdb[8], cdb[9],
                        ]),
                        u32::from_be_bytes([cdb[10], cdb[11], cdb[12], cdb[13]]),
                    )
                };
                if lba + n as u64 > self.blocks {
                    return self.check_condition(key, 0x21, 0x00, fcp_dl);
                }
                let len = n * BLOCK;
                if len != fcp_dl {
                    return self.check_condition(key, 0x24, 0x00, fcp_dl);
                }
                let addr = self.lun.iova().0 + lba * BLOCK as u64;
                let h = self.handle();
                if cdb[0] & 0x02 == 0 {
                    let dsds = self.dsds(addr, len);
                    let c =
                        Ctio7Repr::data(&x, h, DataDir::DataIn, 0, len, dsds[0], dsds.len() as u16)
                            .unwrap()
                            .with_good_status();
                    let entries = self.with_continuations(c, &dsds);
                    self.post(&entries);
                } else {
                    if let Some(c) = self.cmds.get_mut(&key) {
                        c.pending_status = true;
                    }
                    let shift =
                        self.misdirect_writes.min(self.blocks - lba - n as u64) * BLOCK as u64;
                    let entries = self.data_ctio(&x, h, DataDir::DataOut, addr + shift, len);
                    self.post(&entries);
                }
            }
            _ => self.check_condition(key, 0x20, 0x00, fcp_dl),
        }
    }

    /// Commands the target still tracks.
    pub fn open_commands(&self) -> usize {
        self.cmds.len()
    }

    pub fn cmd_fcp_dl(&self, key: u32) -> Option<u32> {
        self.cmds.get(&key).map(|c| c.fcp_dl)
    }
}

/// Runs the simulator and the mini target until `cond` or `max` simulated time.
pub fn run(
    sim: &mut Sim,
    t: &mut MiniTarget,
    max: std::time::Duration,
    mut cond: impl FnMut(&mut Sim, &mut MiniTarget) -> bool,
) -> bool {
    let deadline = sim.now() + max;
    let mut steps = 0u64;
    loop {
        steps += 1;
        assert!(steps < 20_000_000, "run(): no progress in simulated time");
        t.poll(sim);
        if cond(sim, t) {
            return true;
        }
        if sim.now() >= deadline {
            return false;
        }
        if !sim.step() {
            t.poll(sim);
            if cond(sim, t) {
                return true;
            }
            match sim.next_event_time() {
                Some(n) if n <= deadline => {}
                _ => {
                    sim.run_until(deadline);
                    t.poll(sim);
                    return cond(sim, t);
                }
            }
        }
    }
}
