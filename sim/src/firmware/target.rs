//! Target mode: incoming ELS → IMMED_NOTIFY / NOTIFY_ACK, FCP_CMND → ATIO7, CTIO7 in every
//! form, ABTS → ABTS_RECV / ABTS_RESP (reference §7, §9). (Step 1 skeleton.)

use rscst_fw::async_event::AsyncEvent;
use rscst_fw::fc::els::{ElsOpcode, ElsRepr};
use rscst_fw::fc::{Eof, FCtl, FcFrameRepr, FcPayload, FcType, RCtl, Sof};

use super::Firmware;
use super::rings::{IOCB, entry_status};
use crate::fabric::HBA_SLOT;
use crate::frame::Frame;
use crate::sim::Ctx;

/// CTIO completion status: success.
pub(crate) const CTIO_SUCCESS: u16 = 0x01;
/// CTIO completion status: aborted (ABTS, terminate).
pub(crate) const CTIO_ABORTED: u16 = 0x02;
/// CTIO completion status: LIP reset.
pub(crate) const CTIO_LIP_RESET: u16 = 0x0E;
/// CTIO completion status: port unavailable (link down).
pub(crate) const CTIO_PORT_UNAVAILABLE: u16 = 0x28;
/// CTIO completion status: port logged out.
pub(crate) const CTIO_PORT_LOGGED_OUT: u16 = 0x29;

/// The firmware's exchange table.
#[derive(Debug)]
pub(crate) struct Exchanges {
    capacity: u16,
    used: u16,
}

impl Exchanges {
    pub(crate) fn new(capacity: u16) -> Exchanges {
        Exchanges { capacity, used: 0 }
    }

    pub(crate) fn capacity(&self) -> u16 {
        self.capacity
    }

    pub(crate) fn free_count(&self) -> u16 {
        self.capacity - self.used
    }

    pub(crate) fn clear(&mut self) {
        self.used = 0;
    }
}

impl Firmware {
    pub(crate) fn abort_all_exchanges(&mut self, _ctx: &mut Ctx<'_>, _status: u16) {
        self.xchg.clear();
    }

    pub(crate) fn abort_exchanges_of(
        &mut self,
        _ctx: &mut Ctx<'_>,
        _pid: rscst_fw::PortId,
        _status: u16,
    ) {
    }

    pub(crate) fn notify_lip_reset(&mut self, _ctx: &mut Ctx<'_>) {}

    pub(crate) fn data_out_timeout(
        &mut self,
        _ctx: &mut Ctx<'_>,
        _index: u16,
        _generation: u16,
        _serial: u64,
    ) {
    }

    pub(crate) fn loginout_done(
        &mut self,
        ctx: &mut Ctx<'_>,
        entry: [u8; 64],
        _handle: u16,
        _ok: bool,
    ) {
        self.post_response(ctx, entry);
    }

    pub(crate) fn mbx_execute_iocb(
        &mut self,
        _ctx: &mut Ctx<'_>,
        _dma: u64,
    ) -> super::mailbox::Exec {
        let mut m = [0u16; 32];
        m[0] = rscst_fw::mailbox::MbxStatus::InvalidCommand.into();
        super::mailbox::Exec::Done(m, core::time::Duration::ZERO)
    }

    pub(crate) fn dispatch_iocb(
        &mut self,
        ctx: &mut Ctx<'_>,
        first: &[u8; IOCB],
        _cont: &[[u8; IOCB]],
    ) {
        match first[0] {
            0x04 => self.marker_needed = false,
            _ => self.bounce(ctx, first, entry_status::INVALID_TYPE),
        }
    }

    pub(crate) fn frame_in(&mut self, ctx: &mut Ctx<'_>, frame: &Frame) {
        let Ok(repr) = frame.decode() else {
            ctx.discard(self.own_pid(), "undecodable frame");
            return;
        };
        let h = repr.header;
        match (h.r_ctl, repr.payload) {
            (RCtl::ElsRep, FcPayload::Els(e)) => self.els_reply(ctx, &h, Some(e)),
            (RCtl::ElsRep, _) => self.els_reply(ctx, &h, None),
            (RCtl::ElsReq, FcPayload::Els(ElsRepr::Rscn(r))) => {
                let acc = FcFrameRepr {
                    header: h.reply(RCtl::ElsRep, FcType::Els, FCtl::BLS_RESPONSE),
                    payload: FcPayload::Els(ElsRepr::Other {
                        opcode: ElsOpcode::LsAcc,
                        len: 4,
                    }),
                };
                if let Ok(f) = ctx.pool.build(Sof::I3, Eof::TNeg, &acc) {
                    ctx.send(HBA_SLOT, f);
                }
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
            _ => ctx.discard(self.own_pid(), "not handled"),
        }
    }
}
