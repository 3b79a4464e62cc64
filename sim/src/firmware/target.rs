//! Target mode (reference §7, §9): incoming ELS → IMMED_NOTIFY / NOTIFY_ACK, FCP_CMND →
//! ATIO7, CTIO7 in every form, ABTS → ABTS_RECV / ABTS_RESP, the LOGINOUT and MBX IOCBs.
//!
//! # Exchanges
//!
//! Every received FCP_CMND, held ELS and received ABTS gets a firmware exchange. Its
//! address is `generation << 16 | index` (generation 1..=0x7FFF, so 0xFFFFFFFF never
//! occurs); a CTIO naming a freed exchange is caught by the generation. Only FCP exchanges
//! count against the exchange capacity (GET_RESOURCE_COUNTS); our RX_ID for an exchange
//! is its index.
//!
//! An FCP exchange lives from the FCP_CMND until the driver closes it, or a chip reset.
//! It is closed by a CTIO with SEND_STATUS that **completes successfully** (the FCP_RSP
//! went out), by a CTIO with TERMINATE, or — after an ABTS — by BA_ACC in the ABTS_RESP
//! (an implicit terminate). Nothing else ends it: after any CTIO that completes with an
//! error (data-out timeout 0x0B, ABORTED, INVALID_RX_ID, LIP_RESET, PORT_UNAVAILABLE,
//! PORT_LOGGED_OUT, a bounced entry), the exchange stays open until the driver
//! terminates it (the Linux rule of reference §7.6: the driver terminates after a failed
//! CTIO; the firmware must therefore keep the exchange until then). Its address is never
//! reused while it is open.
//!
//! When the initiator aborts an exchange (ABTS), logs out (LOGO/PRLO), or the link goes
//! down or resets (LIP), the exchange is **aborted**: the CTIO in progress and the queued
//! ones complete with the matching status (0x02 ABORTED, 0x29 PORT_LOGGED_OUT, 0x28
//! PORT_UNAVAILABLE, 0x0E LIP_RESET), and CTIOs that arrive later complete with it at
//! once and send nothing — the same whichever came first, the abort or the CTIO. The
//! ABTS_RECV is posted before the CTIOs the ABTS kills complete. An exchange the driver
//! never closes is a leak the model keeps visible ([`crate::Sim::open_exchanges`]).
//!
//! After a CTIO with SEND_STATUS was posted for an exchange, only a TERMINATE may follow
//! (anything else is [`ViolationKind::CtioAfterFinal`]). A CTIO naming an exchange that is
//! not open is [`ViolationKind::StaleExchange`] (gotcha 5) — except a TERMINATE for an
//! exchange whose closing completion the driver has not seen (lost or late by fault
//! injection, or still unread in the response queue): a driver that gives up waiting
//! terminates, as SCST does when a command stays pending in the hardware too long; that
//! TERMINATE completes 0x08 INVALID_RX_ID and is not a violation.
//!
//! CTIOs of one exchange run in order: a data-out CTIO waits for all its data before the
//! next one (e.g. the status) runs; CTIOs of different exchanges interleave.
//!
//! # Decisions on the reference's unconfirmed items
//!
//! * ATIO attr nibble: 0 for even exchange indices, 4 for odd ones (the two values Linux
//!   alternates between); a CTIO7 with another attr than its exchange's is completed with
//!   0x08 INVALID_RX_ID and nothing happens (recorded as a violation).
//! * TERMINATE sends no frame; it frees the exchange and completes the CTIOs in progress
//!   with 0x02 ABORTED.
//! * NOTIFY_ACK with terminate answers the held ELS with LS_RJT (unable to perform).
//! * Multi-slot ATIOs may wrap the ATIO ring.
//! * An aborted exchange's outstanding CTIO completes with 0x02 ABORTED.
//! * Data DMA to or from an unmapped IOVA is a firmware system error (async 0x8002,
//!   mb1 = 0xD0A5) after the IOMMU fault is recorded.
//! * The FCP_RSP is built from the CTIO exactly as the status word says: byte 10 =
//!   status-word bits 8–15 (plus FCP_CONF_REQ for CONFORM_REQ), FCP_RESID from the residual
//!   field, FCP_SNS_LEN / FCP_RSP_LEN only with their valid bits, then the mode-1 area in
//!   wire order (response info, then sense). F_CTL 0x980000.

use std::collections::VecDeque;

use crate::fxhash::FxHashMap as HashMap;

use rscst_fw::async_event::AsyncEvent;
use rscst_fw::fc::bls::{ABTS_PARAM_ABORT_SEQUENCE, BaRjtExplanation, BaRjtReason, BaRjtRepr};
use rscst_fw::fc::els::{
    AdiscRepr, ElsOpcode, ElsRepr, LsRjtExplanation, LsRjtReason, LsRjtRepr, PrliPageRepr,
    PrliRepr, PrliResponse, PrliServiceParams, ServiceParamsRepr,
};
use rscst_fw::fc::fcp::FCP_RSP_LEN;
use rscst_fw::fc::{
    Eof, FCtl, FcFrameRepr, FcHeaderRepr, FcPayload, FcType, FcpCmndRepr, RCtl, Sof,
};
use rscst_fw::iocb::ctio7::ScsiStatusFlags;
use rscst_fw::iocb::loginout::{LoginoutCommand, LoginoutError, LoginoutFlags};
use rscst_fw::iocb::{
    AbtsRecvRepr, AbtsRespCompletionRepr, AbtsRespRepr, Atio7Repr, BlsPayload, ContinueA64Repr,
    Ctio7CompletionRepr, Ctio7Flags, Ctio7Mode, Ctio7Repr, CtioStatus, Dsd64, EntryStatus,
    ImmedNotifyRepr, IocbStatus, LoginoutCompletionRepr, LoginoutRepr, MarkerRepr, MbxIocbRepr,
    NotifyAckCompletionRepr, NotifyAckFlags, NotifyAckRepr, NotifyAckStatus, NotifyStatus,
    ctio7_entry_count,
};
use rscst_fw::port_db::LoginState;
use rscst_fw::{ExchangeAddr, NportHandle, OxId, PortId, RxId, Wwn};

use super::rings::{AtioEntry, IOCB, entry_status};
use super::{ExchangeExhaustion, Firmware, FwEvent};
use crate::fabric::HBA_SLOT;
use crate::fault::InjectedFault;
use crate::frame::Frame;
use crate::sim::Ctx;
use crate::trace::TraceKind;
use crate::violation::ViolationKind;

/// CTIO completion status: success.
pub(crate) const CTIO_SUCCESS: u16 = 0x01;
/// CTIO completion status: aborted (ABTS, terminate).
pub(crate) const CTIO_ABORTED: u16 = 0x02;
/// CTIO completion status: the exchange is not open.
pub(crate) const CTIO_INVALID_RX_ID: u16 = 0x08;
/// CTIO completion status: data-out timeout.
pub(crate) const CTIO_TIMEOUT: u16 = 0x0B;
/// CTIO completion status: LIP reset.
pub(crate) const CTIO_LIP_RESET: u16 = 0x0E;
/// CTIO completion status: port unavailable (link down).
pub(crate) const CTIO_PORT_UNAVAILABLE: u16 = 0x28;
/// CTIO completion status: port logged out.
pub(crate) const CTIO_PORT_LOGGED_OUT: u16 = 0x29;

/// The SOF-type nibble the model reports in ABTS_RECV (class 3).
const ABTS_SOF_TYPE: u8 = 3;
/// The system-error code for a data DMA fault (async 0x8002 mb1).
const DMA_FAULT_CODE: u16 = 0xD0A5;

/// One queued or running CTIO.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub req: Ctio7Repr,
    pub dsds: Vec<Dsd64>,
    pub serial: u64,
    /// Data-out: byte ranges received so far (relative to the CTIO's offset).
    pub ranges: crate::ranges::Ranges,
    /// Waiting: for data-out frames, or for its data-in frames to leave the HBA's link.
    pub waiting: bool,
    /// Data-in on a paced link: bytes sent so far, and the sequence's id and count.
    pub sent: u32,
    pub seq_id: u8,
    pub seq_cnt: u16,
}

/// A data-in CTIO whose frames go out one by one as the HBA's link frees up.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TxJob {
    pub index: u16,
    pub generation: u16,
    pub serial: u64,
}

impl Job {
    fn received(&self) -> u32 {
        self.ranges.total()
    }

    fn add_range(&mut self, start: u32, end: u32) {
        self.ranges.add(start, end);
    }

    fn mode0(&self) -> (u32, u32) {
        match self.req.mode {
            Ctio7Mode::Mode0(m) => (m.relative_offset, m.transfer_length),
            Ctio7Mode::Mode1(_) => (0, 0),
        }
    }
}

/// An FCP exchange.
#[derive(Debug, Clone)]
pub(crate) struct Fcp {
    pub s_id: PortId,
    pub ox_id: u16,
    pub nport: u16,
    pub attr: u8,
    /// `Some(status)` once aborted.
    pub aborted: Option<u16>,
    /// A SEND_STATUS CTIO was posted: only a TERMINATE may follow.
    pub final_posted: bool,
    pub jobs: VecDeque<Job>,
    pub seq_id: u8,
}

/// A received ELS the driver must acknowledge.
#[derive(Debug, Clone)]
pub(crate) struct ElsHeld {
    pub opcode: ElsOpcode,
    pub hdr: FcHeaderRepr,
    pub handle: u16,
    pub new_port: bool,
    pub prli: Option<PrliRepr>,
}

/// A received ABTS waiting for ABTS_RESP.
#[derive(Debug, Clone)]
pub(crate) struct AbtsHeld {
    pub to_abort: ExchangeAddr,
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Fcp(Box<Fcp>),
    Els(Box<ElsHeld>),
    Abts(Box<AbtsHeld>),
}

#[derive(Debug, Clone)]
struct Slot {
    generation: u16,
    x: Option<Kind>,
}

/// The firmware's exchange table.
#[derive(Debug)]
pub(crate) struct Exchanges {
    slots: Vec<Slot>,
    free: VecDeque<u16>,
    capacity: u16,
    fcp_used: u16,
    by_ox: HashMap<(u32, u16), u16>,
}

impl Exchanges {
    pub(crate) fn new(capacity: u16) -> Exchanges {
        Exchanges {
            slots: Vec::new(),
            free: VecDeque::new(),
            capacity,
            fcp_used: 0,
            by_ox: HashMap::default(),
        }
    }

    pub(crate) fn capacity(&self) -> u16 {
        self.capacity
    }

    pub(crate) fn free_count(&self) -> u16 {
        self.capacity.saturating_sub(self.fcp_used)
    }

    pub(crate) fn fcp_open(&self) -> u16 {
        self.fcp_used
    }

    pub(crate) fn clear(&mut self) {
        for s in &mut self.slots {
            s.x = None;
        }
        self.free = (0..self.slots.len() as u16).collect();
        self.fcp_used = 0;
        self.by_ox.clear();
    }

    fn alloc(&mut self, kind: Kind) -> Option<(u16, ExchangeAddr)> {
        let is_fcp = matches!(kind, Kind::Fcp(_));
        if is_fcp && self.fcp_used >= self.capacity {
            return None;
        }
        let idx = match self.free.pop_front() {
            Some(i) => i,
            None => {
                if self.slots.len() >= 0xFFF0 {
                    return None;
                }
                self.slots.push(Slot {
                    generation: 0,
                    x: None,
                });
                (self.slots.len() - 1) as u16
            }
        };
        let s = &mut self.slots[idx as usize];
        s.generation = if s.generation >= 0x7FFF {
            1
        } else {
            s.generation + 1
        };
        if let Kind::Fcp(f) = &kind {
            self.by_ox.insert((f.s_id.get(), f.ox_id), idx);
            self.fcp_used += 1;
        }
        s.x = Some(kind);
        Some((idx, ExchangeAddr((s.generation as u32) << 16 | idx as u32)))
    }

    fn free(&mut self, idx: u16) -> Option<Kind> {
        let s = self.slots.get_mut(idx as usize)?;
        let k = s.x.take()?;
        if let Kind::Fcp(f) = &k {
            self.by_ox.remove(&(f.s_id.get(), f.ox_id));
            self.fcp_used -= 1;
        }
        self.free.push_back(idx);
        Some(k)
    }

    fn index_of(&self, addr: ExchangeAddr) -> Option<u16> {
        let idx = (addr.0 & 0xFFFF) as u16;
        let generation = (addr.0 >> 16) as u16;
        let s = self.slots.get(idx as usize)?;
        (s.generation == generation && s.x.is_some()).then_some(idx)
    }

    fn addr_of(&self, idx: u16) -> ExchangeAddr {
        let g = self
            .slots
            .get(idx as usize)
            .map(|s| s.generation)
            .unwrap_or(0);
        ExchangeAddr((g as u32) << 16 | idx as u32)
    }

    fn get(&self, idx: u16) -> Option<&Kind> {
        self.slots.get(idx as usize)?.x.as_ref()
    }

    fn fcp_mut(&mut self, idx: u16) -> Option<&mut Fcp> {
        match self.slots.get_mut(idx as usize)?.x.as_mut()? {
            Kind::Fcp(f) => Some(f),
            _ => None,
        }
    }

    fn fcp_by_ox(&self, s_id: PortId, ox: u16) -> Option<u16> {
        self.by_ox.get(&(s_id.get(), ox)).copied()
    }

    /// Indices of the FCP exchanges (for a port, or all), in index order.
    fn fcp_indices(&self, of: Option<PortId>) -> Vec<u16> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match &s.x {
                Some(Kind::Fcp(f)) if of.is_none_or(|p| p == f.s_id) => Some(i as u16),
                _ => None,
            })
            .collect()
    }

    fn non_fcp_indices(&self) -> Vec<u16> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match &s.x {
                Some(Kind::Els(_) | Kind::Abts(_)) => Some(i as u16),
                _ => None,
            })
            .collect()
    }
}

fn emit<F: FnOnce(&mut [u8]) -> Result<(), rscst_fw::WireError>>(f: F) -> Option<[u8; IOCB]> {
    let mut b = [0u8; IOCB];
    f(&mut b).ok().map(|_| b)
}

impl Firmware {
    fn own_header(&self, r_ctl: RCtl, d_id: PortId, f_ctl: FCtl, ox: u16, rx: u16) -> FcHeaderRepr {
        let mut h = FcHeaderRepr::new(r_ctl, FcType::Fcp, d_id, self.link.port_id, f_ctl, OxId(ox));
        h.rx_id = RxId(rx);
        h
    }

    // ================================================================================
    // Request IOCBs.

    /// Executes one request IOCB; `marker_exempt`: it was doorbelled before the driver
    /// observed the event that made a MARKER required.
    pub(crate) fn dispatch_iocb(
        &mut self,
        ctx: &mut Ctx<'_>,
        first: &[u8; IOCB],
        cont: &[[u8; IOCB]],
        marker_exempt: bool,
    ) {
        match first[0] {
            0x04 => match MarkerRepr::parse_bytes(first) {
                Ok(_) => self.marker = super::MarkerState::NotNeeded,
                Err(_) => self.bounce(ctx, first, entry_status::INVALID_PARAM),
            },
            0x12 => self.ctio(ctx, first, cont, marker_exempt),
            0x0E => self.notify_ack(ctx, first),
            0x55 => self.abts_resp(ctx, first),
            0x52 => self.loginout(ctx, first, None),
            0x39 => {
                if let Some(out) = self.mbx_iocb(ctx, first) {
                    self.post_response(ctx, out);
                }
            }
            0x0A => self.bounce(ctx, first, entry_status::INVALID_ORDER),
            _ => self.bounce(ctx, first, entry_status::INVALID_TYPE),
        }
    }

    /// MBX_IOCB: the mailbox command executed by the ring path; returns the entry.
    fn mbx_iocb(&mut self, ctx: &mut Ctx<'_>, first: &[u8; IOCB]) -> Option<[u8; IOCB]> {
        let Ok(req) = MbxIocbRepr::parse_bytes(first) else {
            self.bounce(ctx, first, entry_status::INVALID_PARAM);
            return None;
        };
        let mut regs = [0u16; 32];
        regs.copy_from_slice(&req.to_mailboxes().0);
        let out = match self.exec(ctx, &regs) {
            super::mailbox::Exec::Done(m, _) => m,
            super::mailbox::Exec::Deferred => {
                let mut m = [0u16; 32];
                m[0] = rscst_fw::mailbox::MbxStatus::CommandError.into();
                m
            }
        };
        let mut rsp = MbxIocbRepr::from_mailboxes(req.handle, &rscst_fw::mailbox::Mailboxes(out));
        rsp.entry_status = EntryStatus::empty();
        emit(|b| rsp.emit_bytes(b))
    }

    /// IOCB_COMMAND_A64: execute the IOCB at `dma` and write the result back in place.
    pub(crate) fn mbx_execute_iocb(&mut self, ctx: &mut Ctx<'_>, dma: u64) -> super::mailbox::Exec {
        use rscst_fw::mailbox::MbxStatus;
        let done = |s: MbxStatus| {
            let mut m = [0u16; 32];
            m[0] = s.into();
            super::mailbox::Exec::Done(m, core::time::Duration::ZERO)
        };
        let mut e = [0u8; IOCB];
        if !ctx.dma_read(dma, &mut e, "IOCB_COMMAND_A64 entry") {
            return done(MbxStatus::HostInterfaceError);
        }
        let out = match e[0] {
            0x04 => {
                self.marker = super::MarkerState::NotNeeded;
                Some(e)
            }
            0x39 => self.mbx_iocb(ctx, &e),
            0x52 => {
                self.loginout(ctx, &e, Some(dma));
                return if self.mbx.as_ref().is_some_and(|m| m.result.is_none())
                    && self.loginout_pending_mbx
                {
                    self.loginout_pending_mbx = false;
                    super::mailbox::Exec::Deferred
                } else {
                    done(MbxStatus::CommandComplete)
                };
            }
            _ => {
                let mut b = e;
                b[3] |= entry_status::INVALID_TYPE;
                Some(b)
            }
        };
        if let Some(o) = out
            && !ctx.dma_write(dma, &o, "IOCB_COMMAND_A64 entry")
        {
            return done(MbxStatus::HostInterfaceError);
        }
        done(MbxStatus::CommandComplete)
    }

    // ================================================================================
    // CTIO7.

    /// Completes `req` with `status`. `closes`: this completion reports the end of the
    /// exchange (a SEND_STATUS CTIO that succeeded), so until the driver has read it, a
    /// TERMINATE for that exchange is legitimate (see the module docs).
    fn complete_ctio(&mut self, ctx: &mut Ctx<'_>, req: &Ctio7Repr, status: u16, closes: bool) {
        self.stats.ctios += 1;
        if status == CTIO_SUCCESS && req.flags.contains(Ctio7Flags::DONT_RET_CTIO) {
            return;
        }
        let c = Ctio7CompletionRepr::for_request(req, CtioStatus::from(status));
        let Some(b) = emit(|b| c.emit_bytes(b)) else {
            return;
        };
        let closed = if closes { req.exchange_addr.0 } else { 0 };
        match ctx.faults.ctio_completion() {
            Some(None) => {
                ctx.shared.trace.record(
                    ctx.now,
                    TraceKind::Fault(InjectedFault::CtioCompletionLost {
                        exchange: req.exchange_addr.0,
                    }),
                );
                if closes {
                    self.unseen_closed.insert(closed, ());
                }
            }
            Some(Some(d)) => {
                ctx.shared.trace.record(
                    ctx.now,
                    TraceKind::Fault(InjectedFault::CtioCompletionDelayed {
                        exchange: req.exchange_addr.0,
                        by: d,
                    }),
                );
                if closes {
                    self.unseen_closed.insert(closed, ());
                }
                self.at(ctx, d, FwEvent::PostResponse(Box::new(b), closed));
            }
            None => self.post_response_closing(ctx, b, closed),
        }
    }

    /// Whether the driver may not have seen that exchange `addr` (no longer open) was
    /// closed: its closing completion was lost, is late, or is still unread in the
    /// response queue. Forgets a lost or late one (the driver's TERMINATE answers it).
    fn closing_unseen(&mut self, ctx: &Ctx<'_>, addr: u32) -> bool {
        if self.unseen_closed.remove(&addr).is_some() {
            return true;
        }
        self.rings
            .as_ref()
            .is_some_and(|r| r.unread_closing(ctx, addr))
    }

    fn ctio(
        &mut self,
        ctx: &mut Ctx<'_>,
        first: &[u8; IOCB],
        cont: &[[u8; IOCB]],
        marker_exempt: bool,
    ) {
        let req = match Ctio7Repr::parse_bytes(first) {
            Ok(r) => r,
            Err(_) => return self.bounce(ctx, first, entry_status::INVALID_PARAM),
        };
        if self.marker == super::MarkerState::Required && !marker_exempt {
            ctx.shared.violation(ViolationKind::IocbBeforeMarker {
                entry_type: first[0],
            });
            self.marker = super::MarkerState::NotNeeded;
        }
        // DSDs: the CTIO's own and those of its continuations.
        let mut dsds = Vec::new();
        if let Ctio7Mode::Mode0(m) = req.mode
            && req.dseg_count > 0
        {
            dsds.push(m.dsd);
            if ctio7_entry_count(req.dseg_count as usize) != req.entry_count as usize {
                return self.bounce(ctx, first, entry_status::INVALID_COUNT);
            }
            for c in cont {
                match ContinueA64Repr::parse_bytes(c) {
                    Ok(r) => dsds.extend_from_slice(&r.dsds),
                    Err(_) => return self.bounce(ctx, first, entry_status::INVALID_ORDER),
                }
            }
            dsds.truncate(req.dseg_count as usize);
        } else if !cont.is_empty() {
            return self.bounce(ctx, first, entry_status::INVALID_COUNT);
        }
        let flags = req.flags;
        let terminate = flags.contains(Ctio7Flags::TERMINATE);
        let send_status = flags.contains(Ctio7Flags::SEND_STATUS);
        if req.exchange_addr.is_unknown() {
            // The driver answers an ATIO that had no exchange (BUSY / TASK SET FULL).
            if send_status && !terminate {
                self.send_rsp_raw(ctx, &req, req.initiator_id, req.ox_id.0, 0xFFFF, 0);
            }
            return self.complete_ctio(ctx, &req, CTIO_SUCCESS, false);
        }
        let Some(idx) = self.xchg.index_of(req.exchange_addr) else {
            if !(terminate && self.closing_unseen(ctx, req.exchange_addr.0)) {
                ctx.shared.violation(ViolationKind::StaleExchange {
                    exchange: req.exchange_addr.0,
                });
            }
            return self.complete_ctio(ctx, &req, CTIO_INVALID_RX_ID, false);
        };
        let Some(x) = self.xchg.fcp_mut(idx) else {
            ctx.shared.violation(ViolationKind::StaleExchange {
                exchange: req.exchange_addr.0,
            });
            return self.complete_ctio(ctx, &req, CTIO_INVALID_RX_ID, false);
        };
        if req.attr != x.attr {
            ctx.shared.violation(ViolationKind::AttrMismatch {
                exchange: req.exchange_addr.0,
                attr: req.attr,
                expected: x.attr,
            });
            return self.complete_ctio(ctx, &req, CTIO_INVALID_RX_ID, false);
        }
        if !terminate && (req.nport_handle.0 != x.nport || req.initiator_id != x.s_id) {
            return self.bounce(ctx, first, entry_status::INVALID_PARAM);
        }
        if terminate {
            let jobs: Vec<Job> = x.jobs.drain(..).collect();
            self.xchg.free(idx);
            for j in jobs {
                self.complete_ctio(ctx, &j.req, CTIO_ABORTED, false);
            }
            return self.complete_ctio(ctx, &req, CTIO_SUCCESS, false);
        }
        if x.final_posted {
            ctx.shared.violation(ViolationKind::CtioAfterFinal {
                exchange: req.exchange_addr.0,
            });
            return self.complete_ctio(ctx, &req, CTIO_INVALID_RX_ID, false);
        }
        if let Some(st) = x.aborted {
            return self.complete_ctio(ctx, &req, st, false);
        }
        // Parameter checks.
        let data_in = flags.contains(Ctio7Flags::DATA_IN);
        let data_out = flags.contains(Ctio7Flags::DATA_OUT);
        match req.mode {
            Ctio7Mode::Mode0(m) => {
                let total: u64 = dsds.iter().map(|d| d.length as u64).sum();
                let bad = (data_in && data_out)
                    || ((data_in || data_out) && total < m.transfer_length as u64)
                    || (!data_in && !data_out && m.transfer_length != 0)
                    || flags.contains(Ctio7Flags::DSD_PTR);
                if bad {
                    return self.bounce(ctx, first, entry_status::INVALID_PARAM);
                }
            }
            Ctio7Mode::Mode1(_) => {
                if data_in || data_out {
                    return self.bounce(ctx, first, entry_status::INVALID_PARAM);
                }
            }
        }
        if send_status {
            x.final_posted = true;
        }
        let serial = self.next_serial();
        let Some(x) = self.xchg.fcp_mut(idx) else {
            return;
        };
        x.jobs.push_back(Job {
            req,
            dsds,
            serial,
            ranges: crate::ranges::Ranges::default(),
            waiting: false,
            sent: 0,
            seq_id: 0,
            seq_cnt: 0,
        });
        if x.jobs.len() == 1 {
            self.start_job(ctx, idx);
        }
    }

    /// Runs the head CTIO of exchange `idx` as far as it can go.
    fn start_job(&mut self, ctx: &mut Ctx<'_>, idx: u16) {
        loop {
            let Some(x) = self.xchg.fcp_mut(idx) else {
                return;
            };
            let Some(job) = x.jobs.front() else { return };
            if job.waiting {
                return;
            }
            let job = job.clone();
            let flags = job.req.flags;
            if flags.contains(Ctio7Flags::DATA_IN) {
                if ctx.paced && job.mode0().1 > 0 {
                    // The frames leave one by one at the link's rate; the CTIO
                    // completes when the last has left (an abort meanwhile stops it).
                    let generation = (self.xchg.addr_of(idx).0 >> 16) as u16;
                    if let Some(x) = self.xchg.fcp_mut(idx) {
                        let seq_id = x.seq_id;
                        x.seq_id = x.seq_id.wrapping_add(1);
                        if let Some(j) = x.jobs.front_mut() {
                            j.waiting = true;
                            j.seq_id = seq_id;
                        }
                    }
                    self.tx_queue.push_back(TxJob {
                        index: idx,
                        generation,
                        serial: job.serial,
                    });
                    self.kick_tx(ctx);
                    return;
                }
                if !self.send_data_in(ctx, idx, &job) {
                    return;
                }
                self.job_done(ctx, idx, CTIO_SUCCESS, true);
            } else if flags.contains(Ctio7Flags::DATA_OUT) {
                let (ro, len) = job.mode0();
                if len == 0 {
                    self.job_done(ctx, idx, CTIO_SUCCESS, true);
                    continue;
                }
                self.send_xfer_rdy(ctx, idx, ro, len);
                if let Some(x) = self.xchg.fcp_mut(idx)
                    && let Some(j) = x.jobs.front_mut()
                {
                    j.waiting = true;
                }
                let mut t = self.cfg.data_out_timeout;
                if job.req.timeout != 0 {
                    t = t.min(core::time::Duration::from_secs(job.req.timeout as u64));
                }
                let generation = (self.xchg.addr_of(idx).0 >> 16) as u16;
                self.at(
                    ctx,
                    t,
                    FwEvent::DataOutTimeout {
                        index: idx,
                        generation,
                        serial: job.serial,
                    },
                );
                return;
            } else {
                self.job_done(ctx, idx, CTIO_SUCCESS, true);
            }
        }
    }

    /// The head job of `idx` finished with `status`: status frame if asked and it
    /// succeeded, completion, exchange freed after a successful final CTIO.
    fn job_done(&mut self, ctx: &mut Ctx<'_>, idx: u16, status: u16, send_rsp: bool) {
        let Some(x) = self.xchg.fcp_mut(idx) else {
            return;
        };
        let Some(job) = x.jobs.pop_front() else {
            return;
        };
        let final_ctio = job.req.flags.contains(Ctio7Flags::SEND_STATUS);
        if final_ctio && status == CTIO_SUCCESS && send_rsp {
            let (s_id, ox) = (x.s_id, x.ox_id);
            let seq = x.seq_id;
            x.seq_id = x.seq_id.wrapping_add(1);
            self.send_rsp_raw(ctx, &job.req, s_id, ox, idx, seq);
        }
        // Only a successful final CTIO ends the exchange; after a failed one it stays
        // open until the driver terminates it (module docs).
        let closes = final_ctio && status == CTIO_SUCCESS;
        if closes {
            self.xchg.free(idx);
        }
        self.complete_ctio(ctx, &job.req, status, closes);
    }

    /// Schedules the HBA's transmit engine for when its link is free.
    fn kick_tx(&mut self, ctx: &mut Ctx<'_>) {
        if self.tx_scheduled || self.tx_queue.is_empty() {
            return;
        }
        self.tx_scheduled = true;
        let at = ctx.link_free(HBA_SLOT);
        self.at(ctx, at.since(ctx.now), FwEvent::Transmit);
    }

    /// The transmit engine: the next data-in frame (round robin over the exchanges
    /// sending), then again when the link is free.
    pub(crate) fn transmit(&mut self, ctx: &mut Ctx<'_>) {
        self.tx_scheduled = false;
        if !self.operational() {
            self.tx_queue.clear();
            return;
        }
        while let Some(t) = self.tx_queue.pop_front() {
            if (self.xchg.addr_of(t.index).0 >> 16) as u16 != t.generation {
                continue;
            }
            let Some((s_id, ox)) = self.xchg.fcp_mut(t.index).and_then(|x| {
                x.jobs
                    .front()
                    .is_some_and(|j| j.serial == t.serial && j.waiting)
                    .then_some((x.s_id, x.ox_id))
            }) else {
                continue; // aborted or terminated meanwhile
            };
            let rx_size = self
                .ports
                .by_pid(s_id)
                .map(|p| p.rx_size as usize)
                .unwrap_or(2048);
            let max = self.frame_size().min(rx_size).max(256) as u32;
            let port_id = self.link.port_id;
            let Some(job) = self.xchg.fcp_mut(t.index).and_then(|x| x.jobs.front_mut()) else {
                continue;
            };
            let (ro, len) = job.mode0();
            let off = job.sent;
            let n = (len - off).min(max);
            let last = off + n == len;
            let f_ctl = if last {
                FCtl::FCP_DATA_IN_LAST
            } else {
                FCtl::FCP_DATA_IN
            };
            let mut h =
                FcHeaderRepr::new(RCtl::SolData, FcType::Fcp, s_id, port_id, f_ctl, OxId(ox));
            h.rx_id = RxId(t.index);
            h.seq_id = job.seq_id;
            h.seq_cnt = job.seq_cnt;
            h.parameter = ro.wrapping_add(off);
            let Ok(mut frame) = ctx.pool.build_raw(
                Sof::class3(job.seq_cnt == 0),
                Eof::for_frame(last),
                &h,
                n as usize,
            ) else {
                continue;
            };
            if !gather(ctx, &job.dsds, off, &mut frame.bytes[24..24 + n as usize]) {
                ctx.pool.put(frame.bytes);
                self.system_error(ctx, DMA_FAULT_CODE);
                return;
            }
            job.sent += n;
            job.seq_cnt = job.seq_cnt.wrapping_add(1);
            let end = ctx.send(HBA_SLOT, frame);
            if last {
                self.at(
                    ctx,
                    end.since(ctx.now),
                    FwEvent::TxDone {
                        index: t.index,
                        generation: t.generation,
                        serial: t.serial,
                    },
                );
            } else {
                self.tx_queue.push_back(t);
            }
            break;
        }
        self.kick_tx(ctx);
    }

    /// The last data-in frame of a CTIO has left the link: the CTIO is done.
    pub(crate) fn tx_done(&mut self, ctx: &mut Ctx<'_>, index: u16, generation: u16, serial: u64) {
        if (self.xchg.addr_of(index).0 >> 16) as u16 != generation {
            return;
        }
        let Some(x) = self.xchg.fcp_mut(index) else {
            return;
        };
        let Some(j) = x.jobs.front_mut() else {
            return;
        };
        if j.serial != serial || !j.waiting {
            return;
        }
        j.waiting = false;
        self.job_done(ctx, index, CTIO_SUCCESS, true);
        self.start_job(ctx, index);
    }

    /// Sends the data of a DATA_IN CTIO. `false` if the firmware halted (DMA fault).
    fn send_data_in(&mut self, ctx: &mut Ctx<'_>, idx: u16, job: &Job) -> bool {
        let (ro, len) = job.mode0();
        let Some(x) = self.xchg.fcp_mut(idx) else {
            return false;
        };
        let (s_id, ox) = (x.s_id, x.ox_id);
        let seq_id = x.seq_id;
        x.seq_id = x.seq_id.wrapping_add(1);
        let rx_size = self
            .ports
            .by_pid(s_id)
            .map(|p| p.rx_size as usize)
            .unwrap_or(2048);
        let max = self.frame_size().min(rx_size).max(256);
        let mut off = 0u32;
        let mut seq_cnt = 0u16;
        while off < len {
            let n = (len - off).min(max as u32);
            let last = off + n == len;
            let f_ctl = if last {
                FCtl::FCP_DATA_IN_LAST
            } else {
                FCtl::FCP_DATA_IN
            };
            let mut h = self.own_header(RCtl::SolData, s_id, f_ctl, ox, idx);
            h.seq_id = seq_id;
            h.seq_cnt = seq_cnt;
            h.parameter = ro.wrapping_add(off);
            let Ok(mut frame) = ctx.pool.build_raw(
                Sof::class3(seq_cnt == 0),
                Eof::for_frame(last),
                &h,
                n as usize,
            ) else {
                return false;
            };
            if !gather(ctx, &job.dsds, off, &mut frame.bytes[24..24 + n as usize]) {
                ctx.pool.put(frame.bytes);
                self.system_error(ctx, DMA_FAULT_CODE);
                return false;
            }
            ctx.send(HBA_SLOT, frame);
            off += n;
            seq_cnt = seq_cnt.wrapping_add(1);
        }
        true
    }

    fn send_xfer_rdy(&mut self, ctx: &mut Ctx<'_>, idx: u16, ro: u32, len: u32) {
        let Some(x) = self.xchg.fcp_mut(idx) else {
            return;
        };
        let (s_id, ox) = (x.s_id, x.ox_id);
        let seq_id = x.seq_id;
        x.seq_id = x.seq_id.wrapping_add(1);
        let mut h = self.own_header(RCtl::DataDesc, s_id, FCtl::FCP_XFER_RDY, ox, idx);
        h.seq_id = seq_id;
        let repr = FcFrameRepr {
            header: h,
            payload: FcPayload::XferRdy(rscst_fw::fc::FcpXferRdyRepr {
                relative_offset: ro,
                burst_len: len,
            }),
        };
        if let Ok(f) = ctx.pool.build(Sof::I3, Eof::TNeg, &repr) {
            ctx.send(HBA_SLOT, f);
        }
    }

    /// FCP_RSP exactly as the CTIO describes it.
    fn send_rsp_raw(
        &mut self,
        ctx: &mut Ctx<'_>,
        req: &Ctio7Repr,
        to: PortId,
        ox: u16,
        rx: u16,
        seq_id: u8,
    ) {
        let word = req.scsi_status;
        let mut fl = (word.flags.bits() >> 8) as u8;
        if req.flags.contains(Ctio7Flags::CONFORM_REQ) {
            fl |= 0x10;
        }
        let (rsp_info, sense): (&[u8], &[u8]) = match &req.mode {
            Ctio7Mode::Mode1(m) => (
                if word.flags.contains(ScsiStatusFlags::RSP_INFO_VALID) {
                    m.response_info()
                } else {
                    &[]
                },
                if word.flags.contains(ScsiStatusFlags::SENSE_VALID) {
                    m.sense()
                } else {
                    &[]
                },
            ),
            Ctio7Mode::Mode0(_) => {
                fl &= !0x03; // mode 0 carries no response info or sense
                (&[], &[])
            }
        };
        let len = FCP_RSP_LEN + rsp_info.len() + sense.len();
        let mut h = self.own_header(RCtl::CmdStatus, to, FCtl::FCP_RSP, ox, rx);
        h.seq_id = seq_id;
        let Ok(mut frame) = ctx.pool.build_raw(Sof::I3, Eof::TNeg, &h, len) else {
            return;
        };
        let b = &mut frame.bytes[24..24 + len];
        b[10] = fl;
        b[11] = word.status;
        b[12..16].copy_from_slice(&req.residual.to_be_bytes());
        b[16..20].copy_from_slice(&(sense.len() as u32).to_be_bytes());
        b[20..24].copy_from_slice(&(rsp_info.len() as u32).to_be_bytes());
        b[24..24 + rsp_info.len()].copy_from_slice(rsp_info);
        b[24 + rsp_info.len()..].copy_from_slice(sense);
        ctx.send(HBA_SLOT, frame);
    }

    pub(crate) fn data_out_timeout(
        &mut self,
        ctx: &mut Ctx<'_>,
        index: u16,
        generation: u16,
        serial: u64,
    ) {
        if (self.xchg.addr_of(index).0 >> 16) as u16 != generation {
            return;
        }
        let Some(x) = self.xchg.fcp_mut(index) else {
            return;
        };
        if x.jobs
            .front()
            .is_some_and(|j| j.serial == serial && j.waiting)
        {
            self.job_done(ctx, index, CTIO_TIMEOUT, false);
            self.start_job(ctx, index);
        }
    }

    /// Aborts FCP exchange `idx` with `status`: its CTIOs complete with `status` (now, and
    /// at once when more arrive); the exchange stays open until TERMINATE or BA_ACC.
    fn abort_exchange(&mut self, ctx: &mut Ctx<'_>, idx: u16, status: u16) {
        let Some(x) = self.xchg.fcp_mut(idx) else {
            return;
        };
        if x.aborted.is_none() {
            x.aborted = Some(status);
        }
        let jobs: Vec<Job> = x.jobs.drain(..).collect();
        for j in jobs {
            self.complete_ctio(ctx, &j.req, status, false);
        }
    }

    pub(crate) fn abort_all_exchanges(&mut self, ctx: &mut Ctx<'_>, status: u16) {
        for idx in self.xchg.fcp_indices(None) {
            self.abort_exchange(ctx, idx, status);
        }
        for idx in self.xchg.non_fcp_indices() {
            self.xchg.free(idx);
        }
    }

    pub(crate) fn abort_exchanges_of(&mut self, ctx: &mut Ctx<'_>, pid: PortId, status: u16) {
        for idx in self.xchg.fcp_indices(Some(pid)) {
            self.abort_exchange(ctx, idx, status);
        }
    }

    pub(crate) fn notify_lip_reset(&mut self, ctx: &mut Ctx<'_>) {
        if !self.target_mode() {
            return;
        }
        let n = ImmedNotifyRepr::global(NotifyStatus::LipReset);
        if let Some(b) = emit(|b| n.emit_bytes(b)) {
            self.post_atio(ctx, AtioEntry::One(Box::new(b)));
        }
    }

    // ================================================================================
    // Frames from the fabric.

    pub(crate) fn frame_in(&mut self, ctx: &mut Ctx<'_>, frame: &Frame) {
        let Ok(h) = frame.header() else {
            ctx.discard(self.own_pid(), "short frame");
            return;
        };
        let flogi_reply =
            !self.link.logged_in && h.r_ctl == RCtl::ElsRep && h.s_id == PortId::FABRIC_LOGIN;
        if h.d_id != self.link.port_id && !flogi_reply {
            ctx.discard(self.own_pid(), "not addressed to us");
            return;
        }
        let payload = frame.payload();
        match (h.r_ctl, h.fc_type) {
            (RCtl::ElsRep, FcType::Els) => self.els_reply(ctx, &h, ElsRepr::parse(payload).ok()),
            (RCtl::ElsReq, FcType::Els) => self.els_request(ctx, &h, payload),
            (RCtl::UnsolCmd, FcType::Fcp) => self.fcp_cmnd(ctx, &h, payload),
            (RCtl::SolData, FcType::Fcp) => self.data_out_frame(ctx, &h, payload),
            (RCtl::Abts, FcType::Bls) => self.abts_in(ctx, &h),
            _ => ctx.discard(self.own_pid(), "frame not handled by the firmware"),
        }
    }

    fn fcp_cmnd(&mut self, ctx: &mut Ctx<'_>, h: &FcHeaderRepr, payload: &[u8]) {
        if !self.target_mode() {
            ctx.discard(self.own_pid(), "FCP_CMND with target mode off");
            return;
        }
        let Some(port) = self.ports.by_pid(h.s_id).cloned() else {
            ctx.discard(self.own_pid(), "FCP_CMND from a port not logged in");
            self.send_logo(ctx, h.s_id);
            return;
        };
        if !port.fcp_ready() {
            ctx.discard(self.own_pid(), "FCP_CMND before PRLI");
            self.send_logo(ctx, h.s_id);
            return;
        }
        if self.xchg.fcp_by_ox(h.s_id, h.ox_id.0).is_some() {
            ctx.discard(self.own_pid(), "duplicate FCP_CMND (OX_ID open)");
            return;
        }
        let Ok(fcp) = FcpCmndRepr::parse_bytes(payload) else {
            ctx.discard(self.own_pid(), "malformed FCP_CMND");
            return;
        };
        let x = Fcp {
            s_id: h.s_id,
            ox_id: h.ox_id.0,
            nport: port.handle,
            attr: 0,
            aborted: None,
            final_posted: false,
            jobs: VecDeque::new(),
            seq_id: 0,
        };
        let (attr, addr) = match self.xchg.alloc(Kind::Fcp(Box::new(x))) {
            Some((idx, addr)) => {
                let attr = if idx & 1 == 1 { 4 } else { 0 };
                if let Some(x) = self.xchg.fcp_mut(idx) {
                    x.attr = attr;
                }
                (attr, addr)
            }
            None => match self.cfg.exhaustion {
                ExchangeExhaustion::UnknownExchangeAtio => (0, ExchangeAddr::UNKNOWN),
                ExchangeExhaustion::FirmwareBusy => {
                    self.stats.commands_rejected += 1;
                    self.busy_rsp(ctx, h, fcp.data_len);
                    self.queue_async(
                        ctx,
                        AsyncEvent::RejectedFcpCmd {
                            exchange_starvation: true,
                        },
                    );
                    return;
                }
            },
        };
        let atio = Atio7Repr {
            attr,
            exchange_addr: addr,
            header: *h,
            fcp,
        };
        let slots = atio.slots();
        let mut buf = vec![0u8; slots * IOCB];
        if atio.emit_bytes(&mut buf).is_err() {
            return;
        }
        let entry = if slots == 1 {
            let mut b = [0u8; IOCB];
            b.copy_from_slice(&buf);
            AtioEntry::One(Box::new(b))
        } else {
            AtioEntry::Many(
                buf.chunks_exact(IOCB)
                    .map(|c| c.try_into().unwrap_or([0u8; IOCB]))
                    .collect(),
            )
        };
        self.stats.atios += 1;
        self.post_atio(ctx, entry);
    }

    /// The firmware answers BUSY itself (no exchange).
    fn busy_rsp(&mut self, ctx: &mut Ctx<'_>, h: &FcHeaderRepr, fcp_dl: u32) {
        let residual = if fcp_dl != 0 {
            rscst_fw::fc::Residual::Under(fcp_dl)
        } else {
            rscst_fw::fc::Residual::None
        };
        let Ok(rsp) = rscst_fw::fc::FcpRspRepr::status(0x08, residual, &[]) else {
            return;
        };
        let mut rh = h.reply(RCtl::CmdStatus, FcType::Fcp, FCtl::FCP_RSP);
        rh.rx_id = RxId::UNASSIGNED;
        let repr = FcFrameRepr {
            header: rh,
            payload: FcPayload::FcpRsp(rsp),
        };
        if let Ok(f) = ctx.pool.build(Sof::I3, Eof::TNeg, &repr) {
            ctx.send(HBA_SLOT, f);
        }
    }

    fn data_out_frame(&mut self, ctx: &mut Ctx<'_>, h: &FcHeaderRepr, payload: &[u8]) {
        let Some(idx) = self.xchg.fcp_by_ox(h.s_id, h.ox_id.0) else {
            ctx.discard(self.own_pid(), "FCP_DATA for no open exchange");
            return;
        };
        let Some(x) = self.xchg.fcp_mut(idx) else {
            return;
        };
        let Some(job) = x.jobs.front_mut() else {
            ctx.discard(self.own_pid(), "FCP_DATA with no data-out CTIO");
            return;
        };
        if !job.waiting || !job.req.flags.contains(Ctio7Flags::DATA_OUT) {
            ctx.discard(self.own_pid(), "FCP_DATA with no data-out CTIO");
            return;
        }
        let (ro, len) = job.mode0();
        let start = h.parameter.wrapping_sub(ro);
        let end = start as u64 + payload.len() as u64;
        if h.parameter < ro || end > len as u64 {
            ctx.discard(self.own_pid(), "FCP_DATA outside the burst");
            return;
        }
        let dsds = job.dsds.clone();
        if !scatter(ctx, &dsds, start, payload) {
            self.system_error(ctx, DMA_FAULT_CODE);
            return;
        }
        let Some(x) = self.xchg.fcp_mut(idx) else {
            return;
        };
        let Some(job) = x.jobs.front_mut() else {
            return;
        };
        job.add_range(start, end as u32);
        if job.received() >= len {
            job.waiting = false;
            self.job_done(ctx, idx, CTIO_SUCCESS, true);
            self.start_job(ctx, idx);
        }
    }

    // ================================================================================
    // ABTS.

    fn abts_in(&mut self, ctx: &mut Ctx<'_>, h: &FcHeaderRepr) {
        let Some(port) = self.ports.by_pid(h.s_id).cloned() else {
            // Not logged in: reject at once.
            self.send_bls(
                ctx,
                h,
                RCtl::BaRjt,
                FcPayload::BaRjt(BaRjtRepr {
                    reason: BaRjtReason::LogicalError,
                    explanation: BaRjtExplanation::InvalidOxRxId,
                    vendor: 0,
                }),
            );
            return;
        };
        let target = self.xchg.fcp_by_ox(h.s_id, h.ox_id.0);
        let to_abort = target
            .map(|i| self.xchg.addr_of(i))
            .unwrap_or(ExchangeAddr::UNKNOWN);
        let Some((_, addr)) = self.xchg.alloc(Kind::Abts(Box::new(AbtsHeld { to_abort }))) else {
            return;
        };
        let recv = AbtsRecvRepr {
            entry_status: EntryStatus::empty(),
            nport_handle: NportHandle(port.handle),
            vp_index: 0,
            sof_type: ABTS_SOF_TYPE,
            exchange_addr: addr,
            header: *h,
            exchange_addr_to_abort: to_abort,
        };
        let Some(b) = emit(|b| recv.emit_bytes(b)) else {
            return;
        };
        if self.abts_on_atio(ctx) {
            self.post_atio(ctx, AtioEntry::One(Box::new(b)));
        } else {
            self.post_response(ctx, b);
        }
        // The exchange dies after the driver was told: the CTIOs in progress complete
        // ABORTED behind the ABTS_RECV.
        if let Some(idx) = target
            && h.parameter & ABTS_PARAM_ABORT_SEQUENCE == 0
        {
            self.abort_exchange(ctx, idx, CTIO_ABORTED);
        }
    }

    fn send_bls(
        &mut self,
        ctx: &mut Ctx<'_>,
        abts: &FcHeaderRepr,
        r_ctl: RCtl,
        payload: FcPayload<'_>,
    ) {
        let h = abts.reply(r_ctl, FcType::Bls, FCtl::BLS_RESPONSE);
        let repr = FcFrameRepr { header: h, payload };
        if let Ok(f) = ctx.pool.build(Sof::I3, Eof::TNeg, &repr) {
            ctx.send(HBA_SLOT, f);
        }
    }

    fn abts_resp(&mut self, ctx: &mut Ctx<'_>, first: &[u8; IOCB]) {
        let Ok(req) = AbtsRespRepr::parse_bytes(first) else {
            return self.bounce(ctx, first, entry_status::INVALID_PARAM);
        };
        let done = |fw: &mut Firmware, ctx: &mut Ctx<'_>, st: IocbStatus, sub1: u32| {
            let c = AbtsRespCompletionRepr::for_request(&req, st, sub1, 0);
            if let Some(b) = emit(|b| c.emit_bytes(b)) {
                fw.post_response(ctx, b);
            }
        };
        let held = self
            .xchg
            .index_of(req.exchange_addr)
            .and_then(|i| match self.xchg.get(i) {
                Some(Kind::Abts(a)) => Some((i, (**a).clone())),
                _ => None,
            });
        let Some((abts_idx, held)) = held else {
            return done(self, ctx, IocbStatus::IocbError, 0);
        };
        let target = self
            .xchg
            .index_of(held.to_abort)
            .filter(|&i| self.xchg.fcp_mut(i).is_some());
        let terminate = req.control_flags & rscst_fw::iocb::abts::CONTROL_FLAGS_TERMINATE != 0;
        match req.payload {
            BlsPayload::BaAcc(acc) => {
                if let Some(t) = target {
                    let busy = self.xchg.fcp_mut(t).is_some_and(|x| !x.jobs.is_empty());
                    if busy && !terminate {
                        return done(
                            self,
                            ctx,
                            IocbStatus::IocbError,
                            rscst_fw::iocb::abts::SUBCODE_EXCHANGE_NOT_TERMINATED,
                        );
                    }
                    self.abort_exchange(ctx, t, CTIO_ABORTED);
                    self.xchg.free(t);
                }
                self.xchg.free(abts_idx);
                self.send_bls_from(ctx, &req.header, FcPayload::BaAcc(acc));
            }
            BlsPayload::BaRjt(rjt) => {
                if terminate && let Some(t) = target {
                    self.abort_exchange(ctx, t, CTIO_ABORTED);
                    self.xchg.free(t);
                }
                self.xchg.free(abts_idx);
                self.send_bls_from(ctx, &req.header, FcPayload::BaRjt(rjt));
            }
        }
        done(self, ctx, IocbStatus::Complete, 0);
    }

    /// Sends a BLS reply with the header the driver built (S_ID forced to ours).
    fn send_bls_from(&mut self, ctx: &mut Ctx<'_>, hdr: &FcHeaderRepr, payload: FcPayload<'_>) {
        let mut h = *hdr;
        h.s_id = self.link.port_id;
        let repr = FcFrameRepr { header: h, payload };
        if let Ok(f) = ctx.pool.build(Sof::I3, Eof::TNeg, &repr) {
            ctx.send(HBA_SLOT, f);
        }
    }

    // ================================================================================
    // ELS from remote ports.

    fn send_els_reply(&mut self, ctx: &mut Ctx<'_>, req: &FcHeaderRepr, rx: u16, els: ElsRepr) {
        let mut h = req.reply(RCtl::ElsRep, FcType::Els, FCtl::BLS_RESPONSE);
        h.rx_id = RxId(rx);
        let repr = FcFrameRepr {
            header: h,
            payload: FcPayload::Els(els),
        };
        if let Ok(f) = ctx.pool.build(Sof::I3, Eof::TNeg, &repr) {
            ctx.send(HBA_SLOT, f);
        }
    }

    fn ls_rjt(
        &mut self,
        ctx: &mut Ctx<'_>,
        req: &FcHeaderRepr,
        reason: LsRjtReason,
        explanation: LsRjtExplanation,
    ) {
        let rjt = LsRjtRepr {
            reason,
            explanation,
            vendor: 0,
        };
        self.send_els_reply(ctx, req, 0xFFFF, ElsRepr::LsRjt(rjt));
    }

    fn ls_acc_plain(&mut self) -> ElsRepr {
        ElsRepr::Other {
            opcode: ElsOpcode::LsAcc,
            len: 4,
        }
    }

    fn els_request(&mut self, ctx: &mut Ctx<'_>, h: &FcHeaderRepr, payload: &[u8]) {
        let els = match ElsRepr::parse(payload) {
            Ok(e) => e,
            Err(_) => {
                return self.ls_rjt(
                    ctx,
                    h,
                    LsRjtReason::ProtocolError,
                    LsRjtExplanation::InvalidPayloadLength,
                );
            }
        };
        let op = els.opcode();
        match (op, els) {
            (ElsOpcode::Rscn, ElsRepr::Rscn(r)) => {
                let acc = self.ls_acc_plain();
                self.send_els_reply(ctx, h, 0xFFFF, acc);
                for p in r.pages() {
                    self.queue_async(
                        ctx,
                        AsyncEvent::RscnUpdate {
                            port_id: p.port_id,
                            address_format: p.address_format,
                            vp_index: 0,
                        },
                    );
                }
            }
            (ElsOpcode::Plogi, ElsRepr::ServiceParams(sp)) => self.plogi_in(ctx, h, &sp),
            (ElsOpcode::Prli, ElsRepr::Prli(p)) => self.prli_in(ctx, h, p),
            (ElsOpcode::Logo, ElsRepr::Logo(_)) => self.logo_in(ctx, h),
            (ElsOpcode::Prlo, ElsRepr::Prli(p)) => self.held_els(ctx, h, ElsOpcode::Prlo, Some(p)),
            (ElsOpcode::Adisc, ElsRepr::Adisc(_))
            | (ElsOpcode::Pdisc, ElsRepr::ServiceParams(_)) => {
                if self
                    .ports
                    .by_pid(h.s_id)
                    .is_some_and(|p| p.state_logged_in())
                {
                    self.held_els(ctx, h, op, None)
                } else {
                    self.ls_rjt(
                        ctx,
                        h,
                        LsRjtReason::UnableToPerform,
                        LsRjtExplanation::PlogiRequired,
                    )
                }
            }
            (ElsOpcode::Rrq, _) => {
                let acc = self.ls_acc_plain();
                self.send_els_reply(ctx, h, 0xFFFF, acc);
            }
            _ => self.ls_rjt(ctx, h, LsRjtReason::NotSupported, LsRjtExplanation::None),
        }
    }

    fn plogi_in(&mut self, ctx: &mut Ctx<'_>, h: &FcHeaderRepr, sp: &ServiceParamsRepr) {
        if !self.target_mode() {
            return self.ls_rjt(ctx, h, LsRjtReason::UnableToPerform, LsRjtExplanation::None);
        }
        // A PLOGI from a logged-in port logs it out implicitly; the same WWPN at a new
        // address replaces the old entry.
        let (handle, new_port) = match self.ports.by_pid(h.s_id).map(|p| p.handle) {
            Some(handle) => {
                self.abort_exchanges_of(ctx, h.s_id, CTIO_PORT_LOGGED_OUT);
                (handle, false)
            }
            None => {
                let old = self
                    .ports
                    .iter()
                    .find(|p| p.wwpn == sp.port_name)
                    .map(|p| p.handle);
                if let Some(old) = old {
                    self.port_gone(ctx, old, CTIO_PORT_LOGGED_OUT);
                }
                match self.ports.insert(h.s_id, sp.port_name, sp.node_name, None) {
                    Some(hd) => (hd, true),
                    None => {
                        return self.ls_rjt(
                            ctx,
                            h,
                            LsRjtReason::UnableToPerform,
                            LsRjtExplanation::InsufficientResources,
                        );
                    }
                }
            }
        };
        if let Some(p) = self.ports.get_mut(handle) {
            p.wwpn = sp.port_name;
            p.wwnn = sp.node_name;
            p.rx_size = sp.class3().rx_data_field_size.clamp(256, 2112);
            p.prli_word3 = 0;
            p.set_state(LoginState::PlogiPending);
        }
        let held = ElsHeld {
            opcode: ElsOpcode::Plogi,
            hdr: *h,
            handle,
            new_port,
            prli: None,
        };
        self.hold_or_accept(ctx, held, sp.node_name.0);
    }

    fn prli_in(&mut self, ctx: &mut Ctx<'_>, h: &FcHeaderRepr, p: PrliRepr) {
        let Some(port) = self.ports.by_pid(h.s_id).cloned() else {
            self.ls_rjt(
                ctx,
                h,
                LsRjtReason::UnableToPerform,
                LsRjtExplanation::PlogiRequired,
            );
            return self.send_logo(ctx, h.s_id);
        };
        if !port.state_logged_in() || port.state == u8::from(LoginState::PlogiPending) {
            return self.ls_rjt(
                ctx,
                h,
                LsRjtReason::UnableToPerform,
                LsRjtExplanation::PlogiRequired,
            );
        }
        if p.page.type_code != FcType::Fcp {
            return self.ls_rjt(
                ctx,
                h,
                LsRjtReason::UnableToPerform,
                LsRjtExplanation::ServiceParamOptions,
            );
        }
        if let Some(q) = self.ports.get_mut(port.handle) {
            q.set_state(LoginState::PrliPending);
        }
        let w3 = (p.page.service_params.bits() as u16).to_le_bytes();
        let held = ElsHeld {
            opcode: ElsOpcode::Prli,
            hdr: *h,
            handle: port.handle,
            new_port: false,
            prli: Some(p),
        };
        self.hold_or_accept(ctx, held, [w3[0], w3[1], 0, 0, 0, 0, 0, 0]);
    }

    fn logo_in(&mut self, ctx: &mut Ctx<'_>, h: &FcHeaderRepr) {
        let Some(port) = self.ports.by_pid(h.s_id).cloned() else {
            let acc = self.ls_acc_plain();
            return self.send_els_reply(ctx, h, 0xFFFF, acc);
        };
        // LOGO ends every exchange of the port at once.
        self.abort_exchanges_of(ctx, h.s_id, CTIO_PORT_LOGGED_OUT);
        if let Some(q) = self.ports.get_mut(port.handle) {
            q.set_state(LoginState::LogoPending);
        }
        if !self.target_mode() {
            let acc = self.ls_acc_plain();
            self.send_els_reply(ctx, h, 0xFFFF, acc);
            return self.port_gone(ctx, port.handle, CTIO_PORT_LOGGED_OUT);
        }
        let held = ElsHeld {
            opcode: ElsOpcode::Logo,
            hdr: *h,
            handle: port.handle,
            new_port: false,
            prli: None,
        };
        let le = port.port_id.to_le_bytes();
        let hb = port.handle.to_le_bytes();
        self.post_els_notify(ctx, held, [le[0], le[1], le[2], 0, hb[0], hb[1], 0, 0]);
    }

    fn held_els(
        &mut self,
        ctx: &mut Ctx<'_>,
        h: &FcHeaderRepr,
        op: ElsOpcode,
        prli: Option<PrliRepr>,
    ) {
        let Some(port) = self.ports.by_pid(h.s_id).cloned() else {
            return self.ls_rjt(
                ctx,
                h,
                LsRjtReason::UnableToPerform,
                LsRjtExplanation::PlogiRequired,
            );
        };
        if op == ElsOpcode::Prlo {
            self.abort_exchanges_of(ctx, h.s_id, CTIO_PORT_LOGGED_OUT);
        }
        let held = ElsHeld {
            opcode: op,
            hdr: *h,
            handle: port.handle,
            new_port: false,
            prli,
        };
        let specific = match op {
            ElsOpcode::Adisc | ElsOpcode::Pdisc => port.wwnn.0,
            _ => {
                let le = port.port_id.to_le_bytes();
                let hb = port.handle.to_le_bytes();
                [le[0], le[1], le[2], 0, hb[0], hb[1], 0, 0]
            }
        };
        if self.target_mode() {
            self.post_els_notify(ctx, held, specific);
        } else {
            self.finish_els(ctx, &held, 0xFFFF, true);
        }
    }

    /// With target PRLI control the ELS waits for NOTIFY_ACK; without it the firmware
    /// accepts it itself.
    fn hold_or_accept(&mut self, ctx: &mut Ctx<'_>, held: ElsHeld, specific: [u8; 8]) {
        if self.prli_control() {
            self.post_els_notify(ctx, held, specific);
        } else {
            self.finish_els(ctx, &held, 0xFFFF, true);
        }
    }

    fn post_els_notify(&mut self, ctx: &mut Ctx<'_>, held: ElsHeld, specific: [u8; 8]) {
        let Some(port) = self.ports.get(held.handle).cloned() else {
            return;
        };
        let opcode = held.opcode;
        let ox = held.hdr.ox_id.0;
        let Some((_, addr)) = self.xchg.alloc(Kind::Els(Box::new(held))) else {
            return;
        };
        let mut n = ImmedNotifyRepr::els(
            opcode,
            NportHandle(port.handle),
            port.port_id,
            port.wwpn,
            addr,
            ox,
        );
        n.els_specific = specific;
        if let Some(b) = emit(|b| n.emit_bytes(b)) {
            self.post_atio(ctx, AtioEntry::One(Box::new(b)));
        }
    }

    fn notify_ack(&mut self, ctx: &mut Ctx<'_>, first: &[u8; IOCB]) {
        let Ok(ack) = NotifyAckRepr::parse_bytes(first) else {
            return self.bounce(ctx, first, entry_status::INVALID_PARAM);
        };
        if ack.status == NotifyStatus::Els
            && let Some(idx) = self.xchg.index_of(ack.exchange_addr)
            && let Some(Kind::Els(held)) = self.xchg.get(idx).cloned()
        {
            self.xchg.free(idx);
            let accept = !ack.flags.contains(NotifyAckFlags::TERMINATE);
            self.finish_els(ctx, &held, idx, accept);
        }
        // Everything else (LIP reset, link reinit, an ELS already dropped by a link event)
        // is simply acknowledged.
        let c = NotifyAckCompletionRepr::for_request(&ack, NotifyAckStatus::Success);
        if let Some(b) = emit(|b| c.emit_bytes(b)) {
            self.post_response(ctx, b);
        }
    }

    /// Answers a held ELS (accepted or refused) and updates the port database.
    fn finish_els(&mut self, ctx: &mut Ctx<'_>, held: &ElsHeld, rx: u16, accept: bool) {
        let h = &held.hdr;
        if !accept {
            let rjt = LsRjtRepr {
                reason: LsRjtReason::UnableToPerform,
                explanation: LsRjtExplanation::None,
                vendor: 0,
            };
            self.send_els_reply(ctx, h, rx, ElsRepr::LsRjt(rjt));
            match held.opcode {
                ElsOpcode::Plogi if held.new_port => {
                    self.ports.remove(held.handle);
                }
                ElsOpcode::Plogi => {
                    self.port_gone(ctx, held.handle, CTIO_PORT_LOGGED_OUT);
                }
                ElsOpcode::Prli => {
                    if let Some(p) = self.ports.get_mut(held.handle) {
                        p.set_state(LoginState::PlogiComplete);
                    }
                }
                ElsOpcode::Logo => self.port_gone(ctx, held.handle, CTIO_PORT_LOGGED_OUT),
                _ => {}
            }
            return;
        }
        let state_event = |fw: &mut Firmware, ctx: &mut Ctx<'_>, s: LoginState| {
            fw.queue_async(
                ctx,
                AsyncEvent::PortUpdate {
                    nport_handle: NportHandle(held.handle),
                    login_state: u8::from(s) as u16,
                    vp_index: 0,
                },
            );
        };
        match held.opcode {
            ElsOpcode::Plogi => {
                let acc = self.our_service_params(ElsOpcode::LsAcc);
                self.send_els_reply(ctx, h, rx, ElsRepr::ServiceParams(acc));
                if let Some(p) = self.ports.get_mut(held.handle) {
                    p.set_state(LoginState::PlogiComplete);
                }
                state_event(self, ctx, LoginState::PlogiComplete);
            }
            ElsOpcode::Prli => {
                let page =
                    PrliPageRepr::fcp(PrliResponse::Accepted, PrliServiceParams::TARGET_FUNCTION);
                self.send_els_reply(
                    ctx,
                    h,
                    rx,
                    ElsRepr::Prli(PrliRepr {
                        opcode: ElsOpcode::LsAcc,
                        page,
                    }),
                );
                if let Some(p) = self.ports.get_mut(held.handle) {
                    p.prli_word3 = held
                        .prli
                        .map(|q| q.page.service_params.bits() as u16)
                        .unwrap_or(0);
                    p.set_state(LoginState::PrliComplete);
                }
                state_event(self, ctx, LoginState::PrliComplete);
            }
            ElsOpcode::Logo => {
                let acc = self.ls_acc_plain();
                self.send_els_reply(ctx, h, rx, acc);
                self.port_gone(ctx, held.handle, CTIO_PORT_LOGGED_OUT);
            }
            ElsOpcode::Prlo => {
                let page = PrliPageRepr {
                    flags: rscst_fw::fc::els::PrliPageFlags::empty(),
                    ..PrliPageRepr::fcp(PrliResponse::Accepted, PrliServiceParams::empty())
                };
                self.send_els_reply(
                    ctx,
                    h,
                    rx,
                    ElsRepr::Prli(PrliRepr {
                        opcode: ElsOpcode::LsAcc,
                        page,
                    }),
                );
                if let Some(p) = self.ports.get_mut(held.handle) {
                    p.prli_word3 = 0;
                    p.set_state(LoginState::PlogiComplete);
                }
                state_event(self, ctx, LoginState::PlogiComplete);
            }
            ElsOpcode::Adisc => {
                let sp = self.our_service_params(ElsOpcode::Adisc);
                let acc = AdiscRepr {
                    opcode: ElsOpcode::LsAcc,
                    hard_address: PortId::new(0),
                    port_name: sp.port_name,
                    node_name: sp.node_name,
                    port_id: self.link.port_id,
                };
                self.send_els_reply(ctx, h, rx, ElsRepr::Adisc(acc));
            }
            ElsOpcode::Pdisc => {
                let acc = self.our_service_params(ElsOpcode::LsAcc);
                self.send_els_reply(ctx, h, rx, ElsRepr::ServiceParams(acc));
            }
            _ => {
                let acc = self.ls_acc_plain();
                self.send_els_reply(ctx, h, rx, acc);
            }
        }
    }

    // ================================================================================
    // LOGINOUT.

    /// A LOGINOUT IOCB from the request ring (`via_mbx = None`) or IOCB_COMMAND_A64 (the
    /// entry's DMA address).
    pub(crate) fn loginout(&mut self, ctx: &mut Ctx<'_>, first: &[u8; IOCB], via_mbx: Option<u64>) {
        let Ok(req) = LoginoutRepr::parse_bytes(first) else {
            return self.bounce(ctx, first, entry_status::INVALID_PARAM);
        };
        let fail = |fw: &mut Firmware, ctx: &mut Ctx<'_>, e: LoginoutError, p1: u32| {
            let mut entry = req;
            entry.io_parameter[0] = e.into();
            entry.io_parameter[1] = p1;
            let c = LoginoutCompletionRepr {
                entry_status: EntryStatus::empty(),
                status: IocbStatus::IocbError,
                entry,
            };
            fw.deliver_loginout(ctx, &c, via_mbx);
        };
        if !self.link.logged_in {
            return fail(self, ctx, LoginoutError::NoLink, 0);
        }
        match req.command {
            LoginoutCommand::Plogi => {
                let handle = req.nport_handle.0;
                if let Some(p) = self.ports.by_pid(req.port_id).cloned() {
                    if p.handle != handle {
                        return fail(self, ctx, LoginoutError::PortIdUsed, p.handle as u32);
                    }
                    if req.flags.contains(LoginoutFlags::COND_PLOGI) && p.state_logged_in() {
                        let c = LoginoutCompletionRepr {
                            entry_status: EntryStatus::empty(),
                            status: IocbStatus::Complete,
                            entry: req,
                        };
                        return self.deliver_loginout(ctx, &c, via_mbx);
                    }
                } else if self.ports.get(handle).is_some() {
                    return fail(self, ctx, LoginoutError::NportHandleUsed, 0);
                } else if self
                    .ports
                    .insert(req.port_id, Wwn::default(), Wwn::default(), Some(handle))
                    .is_none()
                {
                    return fail(self, ctx, LoginoutError::ParameterError, 0);
                }
                let mut entry = Box::new(*first);
                entry[3] = 0;
                if let Some(dma) = via_mbx {
                    self.loginout_pending_mbx = true;
                    self.loginout_mbx_dma = dma;
                }
                self.start_plogi(ctx, handle, req.port_id, Some(entry));
            }
            LoginoutCommand::Logo => {
                let Some(p) = self.ports.get(req.nport_handle.0).cloned() else {
                    return fail(self, ctx, LoginoutError::NotLoggedIn, 0);
                };
                if !req.flags.contains(LoginoutFlags::IMPLICIT_LOGO) {
                    self.send_logo(ctx, p.port_id);
                }
                self.port_gone(ctx, p.handle, CTIO_PORT_LOGGED_OUT);
                let c = LoginoutCompletionRepr {
                    entry_status: EntryStatus::empty(),
                    status: IocbStatus::Complete,
                    entry: req,
                };
                self.deliver_loginout(ctx, &c, via_mbx);
            }
            _ => fail(self, ctx, LoginoutError::CommandFailed, 0),
        }
    }

    fn deliver_loginout(
        &mut self,
        ctx: &mut Ctx<'_>,
        c: &LoginoutCompletionRepr,
        via_mbx: Option<u64>,
    ) {
        let Some(b) = emit(|b| c.emit_bytes(b)) else {
            return;
        };
        match via_mbx {
            Some(dma) => {
                ctx.dma_write(dma, &b, "IOCB_COMMAND_A64 entry");
            }
            None => self.post_response(ctx, b),
        }
    }

    /// A PLOGI started by a LOGINOUT IOCB finished.
    pub(crate) fn loginout_done(
        &mut self,
        ctx: &mut Ctx<'_>,
        entry: [u8; 64],
        _handle: u16,
        ok: bool,
    ) {
        let Ok(mut req) = LoginoutRepr::parse_bytes(&entry) else {
            return;
        };
        let status = if ok {
            IocbStatus::Complete
        } else {
            IocbStatus::IocbError
        };
        if !ok {
            req.io_parameter[0] = LoginoutError::ElsReject.into();
        }
        let c = LoginoutCompletionRepr {
            entry_status: EntryStatus::empty(),
            status,
            entry: req,
        };
        if self.mbx.as_ref().is_some_and(|m| {
            m.result.is_none()
                && u16::from(rscst_fw::mailbox::MbxCommand::IocbCommandA64) == m.regs[0]
        }) {
            let dma = self.loginout_mbx_dma;
            self.deliver_loginout(ctx, &c, Some(dma));
            let mut out = [0u16; 32];
            out[0] = rscst_fw::mailbox::MbxStatus::CommandComplete.into();
            self.complete_deferred(ctx, out);
        } else {
            self.deliver_loginout(ctx, &c, None);
        }
    }
}

/// Copies `buf.len()` bytes at offset `off` of the DSD list into `buf`.
fn gather(ctx: &Ctx<'_>, dsds: &[Dsd64], off: u32, buf: &mut [u8]) -> bool {
    let mut need = buf.len();
    let mut at = 0usize;
    let mut skip = off as u64;
    for d in dsds {
        if need == 0 {
            break;
        }
        let len = d.length as u64;
        if skip >= len {
            skip -= len;
            continue;
        }
        let n = ((len - skip) as usize).min(need);
        if !ctx.dma_read(
            d.address.wrapping_add(skip),
            &mut buf[at..at + n],
            "CTIO data-in DSD",
        ) {
            return false;
        }
        at += n;
        need -= n;
        skip = 0;
    }
    need == 0
}

/// Copies `data` into the DSD list at offset `off`.
fn scatter(ctx: &Ctx<'_>, dsds: &[Dsd64], off: u32, data: &[u8]) -> bool {
    let mut at = 0usize;
    let mut skip = off as u64;
    for d in dsds {
        if at == data.len() {
            break;
        }
        let len = d.length as u64;
        if skip >= len {
            skip -= len;
            continue;
        }
        let n = ((len - skip) as usize).min(data.len() - at);
        if !ctx.dma_write(
            d.address.wrapping_add(skip),
            &data[at..at + n],
            "CTIO data-out DSD",
        ) {
            return false;
        }
        at += n;
        skip = 0;
    }
    at == data.len()
}
