//! The running port: async events, chip reset and recovery, the online poll.

use rscst_fw::async_event::{AsyncEvent, AsyncEventCode};
use rscst_hba::Platform;

use super::Isp;
use crate::core_api::CoreApi;
use crate::event::{Event, ResetReason};

impl<'s, P: Platform, const REQ: usize, const RSP: usize, const ATIO: usize>
    Isp<'s, P, REQ, RSP, ATIO>
{
    /// One asynchronous event (reference §4).
    pub(crate) fn async_event<C: CoreApi>(&mut self, core: &mut C, ev: AsyncEvent) {
        if ev.needs_isp_reset() {
            let reason = match ev {
                AsyncEvent::Other {
                    code: AsyncEventCode::SystemError,
                    mb,
                } => ResetReason::SystemError([mb[0], mb[1], mb[2]]),
                e => ResetReason::FirmwareError(e.code().into()),
            };
            self.chip_reset(core, reason);
            return;
        }
        if ev.needs_marker() {
            self.marker_needed = true;
        }
        match ev {
            AsyncEvent::LoopUp { .. } => {
                self.link_up = true;
                self.event(Event::LinkUp(ev));
            }
            AsyncEvent::LoopDown { .. } => {
                self.link_up = false;
                self.event(Event::LinkDown);
            }
            AsyncEvent::LipOccurred { .. } => self.event(Event::Lip),
            _ => self.event(Event::Async(ev)),
        }
    }

    /// Reset the chip and start the bring-up again.
    pub(crate) fn chip_reset<C: CoreApi>(&mut self, _core: &mut C, reason: ResetReason) {
        self.event(Event::Reset(reason));
        self.epoch = self.epoch.wrapping_add(1);
        self.handles.invalidate_all();
        self.mbx.reset();
        self.link_up = false;
        self.up.restart();
    }

    /// Everything a running port does in one poll.
    pub(crate) fn online_poll<C: CoreApi>(&mut self, _core: &mut C) -> bool {
        false
    }
}
