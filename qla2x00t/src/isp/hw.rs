//! The ring traits of `crate::ring` over real DMA memory and registers.

use core::mem::MaybeUninit;
use core::sync::atomic::Ordering;

use rscst_fw::regs::QueuePointer;
use rscst_hba::{DmaError, DmaFence, DmaRegion, Platform};

use crate::regs::{RegMap, Regs};
use crate::ring::{AtioHw, ENTRY_LEN, Entry, PROCESSED, RequestHw, ResponseHw, SIGNATURE_OFFSET};

#[inline]
fn slot_off(idx: u16) -> usize {
    idx as usize * ENTRY_LEN
}

/// The request ring: slots in `region`, pointers in the register map.
pub(crate) struct ReqHw<'a, P: Platform, R: DmaRegion> {
    regs: Regs<'a, P::Mmio>,
    fence: &'a P::Fence,
    region: &'a R,
}

impl<'a, P: Platform, R: DmaRegion> ReqHw<'a, P, R> {
    #[inline]
    pub(crate) fn new(p: &'a P, map: RegMap, region: &'a R) -> Self {
        ReqHw {
            regs: Regs {
                regs: p.regs(),
                mq: p.mq_regs(),
                map,
            },
            fence: p.fence(),
            region,
        }
    }
}

impl<P: Platform, R: DmaRegion> RequestHw for ReqHw<'_, P, R> {
    fn write_slot(&self, idx: u16, entry: &Entry) -> Result<(), DmaError> {
        self.region.write(slot_off(idx), entry)
    }
    fn out_pointer(&self) -> u16 {
        let v = self.regs.queue_ptr(QueuePointer::RequestOut);
        if v > 0xFFFF { u16::MAX } else { v as u16 }
    }
    fn release(&self) {
        self.fence.release();
    }
    fn doorbell(&self, in_ptr: u16) {
        self.regs
            .set_queue_ptr(QueuePointer::RequestIn, in_ptr as u32);
    }
}

/// The response or ATIO ring: slots in `region`.
pub(crate) struct InHw<'a, P: Platform, R: DmaRegion> {
    regs: Regs<'a, P::Mmio>,
    fence: &'a P::Fence,
    region: &'a R,
    atio: bool,
}

impl<'a, P: Platform, R: DmaRegion> InHw<'a, P, R> {
    #[inline]
    pub(crate) fn response(p: &'a P, map: RegMap, region: &'a R) -> Self {
        InHw {
            regs: Regs {
                regs: p.regs(),
                mq: p.mq_regs(),
                map,
            },
            fence: p.fence(),
            region,
            atio: false,
        }
    }

    #[inline]
    pub(crate) fn atio(p: &'a P, map: RegMap, region: &'a R) -> Self {
        let mut h = Self::response(p, map, region);
        h.atio = true;
        h
    }

    #[inline]
    fn sig(&self, idx: u16) -> u32 {
        // A failed read (impossible within the ring) reads as "processed":
        // the slot is then left alone.
        self.region
            .load_u32(slot_off(idx) + SIGNATURE_OFFSET, Ordering::Acquire)
            .unwrap_or(PROCESSED)
    }

    #[inline]
    fn stamp_slot(&self, idx: u16) {
        let _ = self.region.store_u32(
            slot_off(idx) + SIGNATURE_OFFSET,
            PROCESSED,
            Ordering::Release,
        );
    }
}

impl<P: Platform, R: DmaRegion> ResponseHw for InHw<'_, P, R> {
    fn in_pointer(&self) -> u16 {
        let v = self.regs.queue_ptr(QueuePointer::ResponseIn);
        if v > 0xFFFF { u16::MAX } else { v as u16 }
    }
    fn signature(&self, idx: u16) -> u32 {
        self.sig(idx)
    }
    fn acquire(&self) {
        self.fence.acquire();
    }
    fn read_slot<'b>(
        &self,
        idx: u16,
        buf: &'b mut MaybeUninit<Entry>,
    ) -> Result<&'b mut Entry, DmaError> {
        self.region.read64(slot_off(idx), buf)
    }
    fn stamp(&self, idx: u16) {
        self.stamp_slot(idx)
    }
    fn write_out(&self, out: u16) {
        let which = if self.atio {
            QueuePointer::AtioOut
        } else {
            QueuePointer::ResponseOut
        };
        self.regs.set_queue_ptr(which, out as u32);
    }
}

impl<P: Platform, R: DmaRegion> AtioHw for InHw<'_, P, R> {
    fn signature(&self, idx: u16) -> u32 {
        self.sig(idx)
    }
    fn acquire(&self) {
        self.fence.acquire();
    }
    fn read_slot<'b>(
        &self,
        idx: u16,
        buf: &'b mut MaybeUninit<Entry>,
    ) -> Result<&'b mut Entry, DmaError> {
        self.region.read64(slot_off(idx), buf)
    }
    fn stamp(&self, idx: u16) {
        self.stamp_slot(idx)
    }
    fn write_out(&self, out: u16) {
        self.regs.set_queue_ptr(QueuePointer::AtioOut, out as u32);
    }
}

/// Stamp every slot of a response/ATIO ring with the processed signature.
pub(crate) fn stamp_all<R: DmaRegion>(region: &R, entries: usize) -> Result<(), DmaError> {
    for i in 0..entries {
        region.store_u32(
            i * ENTRY_LEN + SIGNATURE_OFFSET,
            PROCESSED,
            Ordering::Relaxed,
        )?;
    }
    Ok(())
}
