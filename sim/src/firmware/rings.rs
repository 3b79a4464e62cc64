//! The three rings in host memory (reference §6.3).
//!
//! * Request ring: on a `req_q_in` doorbell the model fetches entries from its out-index up
//!   to the register's value, `entry_count` slots per IOCB (continuations may wrap), and
//!   publishes `req_q_out` after each IOCB.
//! * Response and ATIO rings: the model writes an entry's bytes 0x00–0x3B, then the dword at
//!   0x3C with release ordering (so a driver that sees the signature change sees the whole
//!   entry), advances the in-index (register) and raises the queue interrupt. It never fills
//!   the last free slot (one-slot-empty: at most `length − 1` unconsumed entries, judged
//!   against the driver's out-pointer register); entries that do not fit wait inside the
//!   firmware, in order, until the driver moves the out-pointer.
//! * Multi-slot ATIOs may wrap around the end of the ATIO ring (the driver advances with
//!   wrap per slot).

use std::collections::VecDeque;

use rscst_fw::icb::IcbRepr;

use super::Firmware;
use crate::device::Qp;
use crate::sim::Ctx;
use crate::trace::{RingKind, TraceKind};
use crate::violation::ViolationKind;

/// IOCB size.
pub(crate) const IOCB: usize = 64;

/// `entry_status` bits the firmware sets when it bounces an IOCB (§6.1).
pub(crate) mod entry_status {
    pub const INVALID_TYPE: u8 = 1 << 2;
    pub const INVALID_PARAM: u8 = 1 << 3;
    pub const INVALID_COUNT: u8 = 1 << 4;
    pub const INVALID_ORDER: u8 = 1 << 5;
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Ring {
    pub base: u64,
    pub len: u16,
}

impl Ring {
    pub(crate) fn slot(&self, i: u16) -> u64 {
        self.base + i as u64 * IOCB as u64
    }

    pub(crate) fn next(&self, i: u16, n: u16) -> u16 {
        ((i as u32 + n as u32) % self.len as u32) as u16
    }

    /// Slots free for the firmware to write, one-slot-empty.
    fn free(&self, fw_in: u16, drv_out: u16) -> u16 {
        let used = (fw_in as u32 + self.len as u32 - drv_out as u32) % self.len as u32;
        (self.len as u32 - 1 - used) as u16
    }
}

/// An ATIO-ring entry of one or more slots.
#[derive(Debug, Clone)]
pub(crate) enum AtioEntry {
    One(Box<[u8; IOCB]>),
    Many(Vec<[u8; IOCB]>),
}

impl AtioEntry {
    fn slots(&self) -> &[[u8; IOCB]] {
        match self {
            AtioEntry::One(b) => std::slice::from_ref(&**b),
            AtioEntry::Many(v) => v,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Rings {
    pub req: Ring,
    pub rsp: Ring,
    pub atio: Ring,
    pub req_out: u16,
    pub rsp_in: u16,
    pub atio_in: u16,
    /// The driver's out-pointers as last seen (to check it does not run past our in).
    rsp_out_seen: u16,
    atio_out_seen: u16,
    /// Response entries waiting for ring space, each with the exchange address its CTIO
    /// completion closed (0: none).
    rsp_pending: VecDeque<(Box<[u8; IOCB]>, u32)>,
    /// Per response-ring slot: the exchange address the completion written there closed
    /// (0: none), so the model knows what the driver has not read yet.
    rsp_closing: Vec<u32>,
    atio_pending: VecDeque<AtioEntry>,
    pub processing: bool,
}

impl Rings {
    pub(crate) fn new(icb: &IcbRepr) -> Rings {
        let ring = |c: &rscst_fw::icb::RingConfig| Ring {
            base: c.address,
            len: c.length.max(1),
        };
        let atio = if icb.atio_q.length >= 2 {
            ring(&icb.atio_q)
        } else {
            Ring { base: 0, len: 1 }
        };
        Rings {
            req: ring(&icb.request_q),
            rsp: ring(&icb.response_q),
            atio,
            req_out: icb.request_q_outpointer % icb.request_q.length.max(1),
            rsp_in: icb.response_q_inpointer % icb.response_q.length.max(1),
            atio_in: icb.atio_q_inpointer % icb.atio_q.length.max(1),
            rsp_out_seen: icb.response_q_inpointer % icb.response_q.length.max(1),
            atio_out_seen: icb.atio_q_inpointer % icb.atio_q.length.max(1),
            rsp_pending: VecDeque::new(),
            rsp_closing: vec![0; icb.response_q.length.max(1) as usize],
            atio_pending: VecDeque::new(),
            processing: false,
        }
    }

    /// Response entries waiting for ring space.
    pub(crate) fn rsp_backlog(&self) -> usize {
        self.rsp_pending.len()
    }

    /// ATIO entries waiting for ring space.
    pub(crate) fn atio_backlog(&self) -> usize {
        self.atio_pending.len()
    }

    /// Whether a completion that closed exchange `addr` is in the response queue and not
    /// read by the driver yet (written but not consumed, or waiting for ring space).
    pub(crate) fn unread_closing(&self, ctx: &Ctx<'_>, addr: u32) -> bool {
        if addr == 0 {
            return false;
        }
        if self.rsp_pending.iter().any(|(_, a)| *a == addr) {
            return true;
        }
        let len = self.rsp.len;
        let mut i = ctx.shared.regs.qp(Qp::RspOut) as u16 % len;
        while i != self.rsp_in {
            if self.rsp_closing.get(i as usize) == Some(&addr) {
                return true;
            }
            i = self.rsp.next(i, 1);
        }
        false
    }
}

/// Is `x` within the cyclic range `[from, to]` of a ring of `len`?
fn within(from: u16, to: u16, x: u16, len: u16) -> bool {
    let d = |a: u16, b: u16| (b as u32 + len as u32 - a as u32) % len as u32;
    d(from, x) <= d(from, to)
}

impl Firmware {
    pub(crate) fn request_doorbell(&mut self, ctx: &mut Ctx<'_>) {
        let Some(r) = self.rings.as_mut() else { return };
        if r.processing {
            return;
        }
        r.processing = true;
        let t = self.cfg.timing.iocb;
        self.at(ctx, t, super::FwEvent::ProcessRequests);
    }

    /// Fetches and executes request IOCBs (a batch per event).
    pub(crate) fn process_requests(&mut self, ctx: &mut Ctx<'_>) {
        const BATCH: u32 = 256;
        if let Some(r) = self.rings.as_mut() {
            r.processing = false;
        }
        if !self.operational() {
            return;
        }
        let mut done = 0u32;
        loop {
            let Some(r) = self.rings.as_ref() else { return };
            let req = r.req;
            let drv_in = ctx.shared.regs.qp(Qp::ReqIn) as u16;
            if drv_in >= req.len || r.req_out == drv_in {
                break;
            }
            if done >= BATCH {
                if let Some(r) = self.rings.as_mut() {
                    r.processing = true;
                }
                let t = self.cfg.timing.iocb * BATCH;
                self.at(ctx, t, super::FwEvent::ProcessRequests);
                return;
            }
            let idx = r.req_out;
            // Whether this entry was doorbelled before the driver observed the event that
            // made a MARKER required (it then may precede the marker).
            self.marker_observed(ctx);
            let exempt = self.marker_exempt > 0;
            let mut first = [0u8; IOCB];
            if !ctx.dma_read(req.slot(idx), &mut first, "request ring") {
                self.transfer_error(
                    ctx,
                    rscst_fw::async_event::AsyncEventCode::RequestTransferError,
                );
                return;
            }
            let count = first[1].max(1);
            let avail = (drv_in as u32 + req.len as u32 - idx as u32) % req.len as u32;
            if count as u32 > avail || count as u32 >= req.len as u32 {
                // The driver announced more slots than it posted: bounce the entry.
                self.trace_in(ctx, idx, &first);
                self.bounce(ctx, &first, entry_status::INVALID_COUNT);
                self.marker_exempt = self.marker_exempt.saturating_sub(1);
                self.advance_req(ctx, 1);
                done += 1;
                continue;
            }
            let mut cont: Vec<[u8; IOCB]> = Vec::new();
            let mut ok = true;
            for k in 1..count as u16 {
                let mut s = [0u8; IOCB];
                if !ctx.dma_read(req.slot(req.next(idx, k)), &mut s, "request ring") {
                    ok = false;
                    break;
                }
                cont.push(s);
            }
            if !ok {
                self.transfer_error(
                    ctx,
                    rscst_fw::async_event::AsyncEventCode::RequestTransferError,
                );
                return;
            }
            self.trace_in(ctx, idx, &first);
            for (k, s) in cont.iter().enumerate() {
                self.trace_in(ctx, req.next(idx, k as u16 + 1), s);
            }
            self.stats.request_iocbs += count as u64;
            self.marker_exempt = self.marker_exempt.saturating_sub(count as u32);
            self.advance_req(ctx, count as u16);
            done += count as u32;
            self.dispatch_iocb(ctx, &first, &cont, exempt);
            if !self.operational() {
                return;
            }
            if ctx.faults.system_error() {
                self.system_error(ctx, 0x0DEB);
                return;
            }
        }
    }

    fn trace_in(&self, ctx: &Ctx<'_>, index: u16, bytes: &[u8; IOCB]) {
        if ctx.shared.trace.on() {
            ctx.shared.trace.record(
                ctx.now,
                TraceKind::IocbIn {
                    ring: RingKind::Request,
                    index,
                    bytes: *bytes,
                },
            );
        }
    }

    fn advance_req(&mut self, ctx: &mut Ctx<'_>, n: u16) {
        if let Some(r) = self.rings.as_mut() {
            r.req_out = r.req.next(r.req_out, n);
            ctx.shared.regs.set_qp(Qp::ReqOut, r.req_out as u32);
        }
    }

    /// Returns a request entry on the response queue with `entry_status` set.
    pub(crate) fn bounce(&mut self, ctx: &mut Ctx<'_>, entry: &[u8; IOCB], status: u8) {
        let mut e = *entry;
        e[1] = 1;
        e[3] |= status;
        self.post_response(ctx, e);
    }

    /// A DMA error on a queue: async event, firmware stops.
    pub(crate) fn transfer_error(
        &mut self,
        ctx: &mut Ctx<'_>,
        code: rscst_fw::async_event::AsyncEventCode,
    ) {
        let ev = rscst_fw::async_event::AsyncEvent::Other { code, mb: [0; 7] };
        self.causes.asyncs.push_back(ev.emit());
        self.halted = true;
        ctx.shared
            .trace
            .record(ctx.now, TraceKind::Chip("queue DMA error: firmware halted"));
        self.try_post(ctx);
    }

    /// Queues a response entry and writes what fits.
    pub(crate) fn post_response(&mut self, ctx: &mut Ctx<'_>, entry: [u8; IOCB]) {
        self.post_response_closing(ctx, entry, 0);
    }

    /// Queues a CTIO completion that closed exchange `closed` (0: none).
    pub(crate) fn post_response_closing(
        &mut self,
        ctx: &mut Ctx<'_>,
        entry: [u8; IOCB],
        closed: u32,
    ) {
        let Some(r) = self.rings.as_mut() else { return };
        r.rsp_pending.push_back((Box::new(entry), closed));
        self.flush_responses(ctx);
    }

    pub(crate) fn flush_responses(&mut self, ctx: &mut Ctx<'_>) {
        if self.halted {
            return;
        }
        let mut wrote = false;
        loop {
            let Some(r) = self.rings.as_mut() else { return };
            let drv_out = ctx.shared.regs.qp(Qp::RspOut) as u16 % r.rsp.len;
            if r.rsp.free(r.rsp_in, drv_out) == 0 {
                break;
            }
            let Some((e, closed)) = r.rsp_pending.pop_front() else {
                break;
            };
            let at = r.rsp.slot(r.rsp_in);
            let idx = r.rsp_in;
            if let Some(t) = r.rsp_closing.get_mut(idx as usize) {
                *t = closed;
            }
            let sig = u32::from_le_bytes([e[0x3C], e[0x3D], e[0x3E], e[0x3F]]);
            if !ctx.dma_write(at, &e[..0x3C], "response ring")
                || !ctx.dma_store_u32(at + 0x3C, sig, "response ring")
            {
                self.transfer_error(
                    ctx,
                    rscst_fw::async_event::AsyncEventCode::ResponseTransferError,
                );
                return;
            }
            r.rsp_in = r.rsp.next(r.rsp_in, 1);
            ctx.shared.regs.set_qp(Qp::RspIn, r.rsp_in as u32);
            if ctx.shared.trace.on() {
                ctx.shared.trace.record(
                    ctx.now,
                    TraceKind::IocbOut {
                        ring: RingKind::Response,
                        index: idx,
                        bytes: *e,
                    },
                );
            }
            self.stats.response_entries += 1;
            wrote = true;
        }
        if wrote {
            self.mark_rsp();
            self.try_post(ctx);
        }
    }

    /// Queues an ATIO-ring entry and writes what fits.
    pub(crate) fn post_atio(&mut self, ctx: &mut Ctx<'_>, entry: AtioEntry) {
        let Some(r) = self.rings.as_mut() else { return };
        r.atio_pending.push_back(entry);
        self.flush_atios(ctx);
    }

    pub(crate) fn flush_atios(&mut self, ctx: &mut Ctx<'_>) {
        if self.halted {
            return;
        }
        let mut wrote = false;
        loop {
            let Some(r) = self.rings.as_mut() else { return };
            let drv_out = ctx.shared.regs.qp(Qp::AtioOut) as u16 % r.atio.len;
            let Some(e) = r.atio_pending.front() else {
                break;
            };
            let n = e.slots().len() as u16;
            if r.atio.free(r.atio_in, drv_out) < n {
                break;
            }
            let Some(e) = r.atio_pending.pop_front() else {
                break;
            };
            let slots = e.slots();
            // Later slots first, the first slot's signature word last.
            for (k, s) in slots.iter().enumerate().rev() {
                let idx = r.atio.next(r.atio_in, k as u16);
                let at = r.atio.slot(idx);
                let sig = u32::from_le_bytes([s[0x3C], s[0x3D], s[0x3E], s[0x3F]]);
                if !ctx.dma_write(at, &s[..0x3C], "ATIO ring")
                    || !ctx.dma_store_u32(at + 0x3C, sig, "ATIO ring")
                {
                    self.transfer_error(
                        ctx,
                        rscst_fw::async_event::AsyncEventCode::ResponseTransferError,
                    );
                    return;
                }
            }
            if ctx.shared.trace.on() {
                for (k, s) in slots.iter().enumerate() {
                    let index = r.atio.next(r.atio_in, k as u16);
                    ctx.shared.trace.record(
                        ctx.now,
                        TraceKind::IocbOut {
                            ring: RingKind::Atio,
                            index,
                            bytes: *s,
                        },
                    );
                }
            }
            r.atio_in = r.atio.next(r.atio_in, n);
            ctx.shared.regs.set_qp(Qp::AtioIn, r.atio_in as u32);
            self.stats.atio_entries += n as u64;
            wrote = true;
        }
        if wrote {
            self.mark_atio();
            self.try_post(ctx);
        }
    }

    pub(crate) fn rsp_out_moved(&mut self, ctx: &mut Ctx<'_>) {
        let Some(r) = self.rings.as_mut() else { return };
        let v = ctx.shared.regs.qp(Qp::RspOut) as u16;
        if !within(r.rsp_out_seen, r.rsp_in, v, r.rsp.len) {
            ctx.shared.violation(ViolationKind::OutPointerPastIn {
                register: "rsp_q_out",
                value: v as u32,
            });
        }
        r.rsp_out_seen = v;
        self.flush_responses(ctx);
    }

    pub(crate) fn atio_out_moved(&mut self, ctx: &mut Ctx<'_>) {
        let Some(r) = self.rings.as_mut() else { return };
        let v = ctx.shared.regs.qp(Qp::AtioOut) as u16;
        if !within(r.atio_out_seen, r.atio_in, v, r.atio.len) {
            ctx.shared.violation(ViolationKind::OutPointerPastIn {
                register: "atio_q_out",
                value: v as u32,
            });
        }
        r.atio_out_seen = v;
        self.flush_atios(ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_slot_empty_and_cyclic_ranges() {
        let r = Ring { base: 0, len: 8 };
        assert_eq!(r.free(0, 0), 7);
        assert_eq!(r.free(7, 0), 0);
        assert_eq!(r.free(3, 4), 0);
        assert_eq!(r.free(4, 3), 6);
        assert_eq!(r.next(7, 2), 1);
        assert!(within(6, 1, 7, 8));
        assert!(within(6, 1, 1, 8));
        assert!(!within(6, 1, 2, 8));
        assert!(within(3, 3, 3, 8));
    }
}
