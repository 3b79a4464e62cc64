//! The three rings in host memory: request (driver → firmware), response and
//! ATIO (firmware → driver).
//!
//! Reference §6.3 and gotchas 4 and 8. The index arithmetic is written
//! against three small traits ([`RequestHw`], [`ResponseHw`], [`AtioHw`]) so it
//! is property-tested against a mock (STYLE.md S14 item 3); the real
//! implementations over an `hba::DmaRegion` and the queue-pointer registers
//! are in the driver module `isp::hw`.
//!
//! * Request: entries are copied into slots at the local in-index; the
//!   doorbell (`req_q_in`) is written once per batch, after a release fence.
//!   A post needs `needed + 2` free slots (the ring is never filled), where
//!   free = `out − in` if `in < out`, else `N − (in − out)`.
//! * Response: consume while `out != rsp_q_in` and the slot's signature is
//!   not `0xDEADDEAD`; stamp the signature back, then write `rsp_q_out` once.
//! * ATIO: the signature is the only "new entry" indication (`atio_q_in` is
//!   not read); an entry occupies `entry_count` consecutive slots, possibly
//!   wrapping; each is stamped; `atio_q_out` is written once per drain.

use core::mem::MaybeUninit;

use rscst_hba::DmaError;

/// Bytes of one ring entry (IOCB).
pub const ENTRY_LEN: usize = 64;
/// The "processed" signature at bytes 0x3C..0x40 of response and ATIO slots.
pub const PROCESSED: u32 = 0xDEAD_DEAD;
/// Byte offset of the signature within a slot.
pub const SIGNATURE_OFFSET: usize = 0x3C;
/// Slots never used by the request ring (reference §6.3: free ≥ needed + 2).
pub const REQUEST_KEEP_FREE: usize = 2;
/// Most ATIO slots one entry may occupy that the driver copies out (an
/// FCP_CMND with the largest additional CDB needs 5).
pub const MAX_ATIO_SLOTS: usize = 8;

/// One 64-byte entry.
pub type Entry = [u8; ENTRY_LEN];

/// What the request ring needs from the machine.
pub trait RequestHw {
    /// Copy `entry` into slot `idx`.
    fn write_slot(&self, idx: u16, entry: &Entry) -> Result<(), DmaError>;
    /// Read the firmware's out-pointer (`req_q_out`).
    fn out_pointer(&self) -> u16;
    /// Release fence: slot writes become visible before the doorbell.
    fn release(&self);
    /// Write the in-pointer register (the doorbell).
    fn doorbell(&self, in_ptr: u16);
}

/// Driver side of the request ring of `N` entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestRing<const N: usize> {
    in_idx: u16,
    published: u16,
    out_cache: u16,
    /// `free_between(in_idx, out_cache)`, kept with the two: every command
    /// asks for it several times (each ATIO's reservation, its CTIO7's
    /// reservation and write).
    free: u16,
}

impl<const N: usize> Default for RequestRing<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> RequestRing<N> {
    const CHECK: () = assert!(N >= 8 && N <= 0xFFFF, "ring length out of range");

    /// An empty ring (in = out = 0).
    pub const fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::CHECK;
        RequestRing {
            in_idx: 0,
            published: 0,
            out_cache: 0,
            free: Self::free_between(0, 0) as u16,
        }
    }

    /// Free slots between `in_idx` and `out` by the reference's rule.
    #[inline]
    pub const fn free_between(in_idx: u16, out: u16) -> usize {
        let (i, o) = (in_idx as usize, out as usize);
        if i < o { o - i } else { N - (i - o) }
    }

    /// Free slots by the last known out-pointer.
    #[inline]
    pub fn free(&self) -> usize {
        usize::from(self.free)
    }

    /// The local in-index (next slot to write).
    pub fn in_index(&self) -> u16 {
        self.in_idx
    }

    /// Whether entries were written that the doorbell has not announced.
    #[inline]
    pub fn unpublished(&self) -> bool {
        self.in_idx != self.published
    }

    /// Whether `needed` entries fit while keeping `REQUEST_KEEP_FREE + keep`
    /// slots free; re-reads the out-pointer only when the cached one says no.
    /// An out-pointer outside the ring is ignored (a hardware fault; the
    /// answer is then "no room").
    #[inline]
    pub fn reserve<H: RequestHw>(&mut self, hw: &H, needed: usize, keep: usize) -> bool {
        let want = needed + REQUEST_KEEP_FREE + keep;
        if self.free() >= want {
            return true;
        }
        let out = hw.out_pointer();
        if (out as usize) < N {
            self.out_cache = out;
            self.free = Self::free_between(self.in_idx, out) as u16;
        }
        self.free() >= want
    }

    /// Write `entries` into consecutive slots (wrapping). Call [`reserve`]
    /// first; if it was not called or said no, nothing is written and
    /// `false` is returned.
    ///
    /// [`reserve`]: RequestRing::reserve
    #[inline(always)]
    pub fn push<H: RequestHw>(&mut self, hw: &H, entries: &[Entry]) -> Result<bool, DmaError> {
        if self.free() < entries.len() + REQUEST_KEEP_FREE {
            return Ok(false);
        }
        let mut idx = self.in_idx;
        for e in entries {
            hw.write_slot(idx, e)?;
            idx = Self::next(idx);
        }
        self.in_idx = idx;
        // `free` was at least `entries.len() + REQUEST_KEEP_FREE` (above).
        self.free -= entries.len() as u16;
        debug_assert_eq!(self.free(), Self::free_between(self.in_idx, self.out_cache));
        Ok(true)
    }

    /// Announce every written entry with one doorbell (after a release
    /// fence). Returns whether a doorbell was written.
    #[inline]
    pub fn flush<H: RequestHw>(&mut self, hw: &H) -> bool {
        if !self.unpublished() {
            return false;
        }
        hw.release();
        hw.doorbell(self.in_idx);
        self.published = self.in_idx;
        true
    }

    /// The index after `idx`.
    #[inline]
    pub const fn next(idx: u16) -> u16 {
        if idx as usize + 1 >= N { 0 } else { idx + 1 }
    }
}

/// What the response ring needs from the machine.
pub trait ResponseHw {
    /// Read the firmware's in-pointer (`rsp_q_in`).
    fn in_pointer(&self) -> u16;
    /// The signature word of slot `idx`.
    fn signature(&self, idx: u16) -> u32;
    /// Acquire fence: reads after it see the firmware's slot writes.
    fn acquire(&self);
    /// Copy slot `idx` into `buf` (which need not be initialised) and
    /// return it.
    fn read_slot<'b>(
        &self,
        idx: u16,
        buf: &'b mut MaybeUninit<Entry>,
    ) -> Result<&'b mut Entry, DmaError>;
    /// Write [`PROCESSED`] into slot `idx`'s signature.
    fn stamp(&self, idx: u16);
    /// Write the out-pointer register.
    fn write_out(&self, out: u16);
}

/// Driver side of the response ring of `N` entries.
///
/// An entry is taken when its signature is no longer [`PROCESSED`] **and** the
/// firmware's in-pointer has moved past it (reference §6.3). The in-pointer is a
/// register — an uncached read over PCIe — so it is read only when the signature
/// says an entry is there and the last value read does not already cover that
/// slot: an idle poll reads no register, a drain of `k` entries reads it once.
/// The register read comes after the signature test and before the slot is
/// copied, so the entry's DMA (which the firmware completes before it moves the
/// pointer) is visible when the copy is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResponseRing<const N: usize> {
    out_idx: u16,
    published: u16,
    /// The in-pointer as last read: slots from `out_idx` up to it are written.
    in_seen: u16,
}

impl<const N: usize> ResponseRing<N> {
    /// An empty ring.
    pub const fn new() -> Self {
        ResponseRing {
            out_idx: 0,
            published: 0,
            in_seen: 0,
        }
    }

    /// The local out-index (next slot to read).
    pub fn out_index(&self) -> u16 {
        self.out_idx
    }

    /// Take the next entry if the firmware has written one. `pointer_read`
    /// starts `false` for each drain: the in-pointer is read at most once per
    /// drain, and a drain that has caught up with the value it read stops
    /// there (what comes after is for the next one).
    #[inline]
    pub fn next<'b, H: ResponseHw>(
        &mut self,
        hw: &H,
        pointer_read: &mut bool,
        buf: &'b mut MaybeUninit<Entry>,
    ) -> Result<Option<&'b mut Entry>, DmaError> {
        if self.out_idx == self.in_seen {
            if *pointer_read || hw.signature(self.out_idx) == PROCESSED {
                return Ok(None);
            }
            *pointer_read = true;
            let in_ptr = hw.in_pointer();
            if in_ptr == self.out_idx || in_ptr as usize >= N {
                return Ok(None);
            }
            self.in_seen = in_ptr;
        } else if hw.signature(self.out_idx) == PROCESSED {
            return Ok(None);
        }
        hw.acquire();
        let entry = hw.read_slot(self.out_idx, buf)?;
        hw.stamp(self.out_idx);
        self.out_idx = RequestRing::<N>::next(self.out_idx);
        Ok(Some(entry))
    }

    /// Write the out-pointer if entries were consumed since the last call.
    #[inline]
    pub fn finish<H: ResponseHw>(&mut self, hw: &H) -> bool {
        if self.out_idx == self.published {
            return false;
        }
        hw.write_out(self.out_idx);
        self.published = self.out_idx;
        true
    }
}

/// What the ATIO ring needs from the machine.
pub trait AtioHw {
    /// The signature word of slot `idx`.
    fn signature(&self, idx: u16) -> u32;
    /// Acquire fence.
    fn acquire(&self);
    /// Copy slot `idx` into `buf` (which need not be initialised) and
    /// return it.
    fn read_slot<'b>(
        &self,
        idx: u16,
        buf: &'b mut MaybeUninit<Entry>,
    ) -> Result<&'b mut Entry, DmaError>;
    /// Write [`PROCESSED`] into slot `idx`'s signature.
    fn stamp(&self, idx: u16);
    /// Write the out-pointer register.
    fn write_out(&self, out: u16);
}

/// Driver side of the ATIO ring of `N` entries.
///
/// Taking an entry is two steps, so the common single-slot entry is copied out once,
/// into a 64-byte buffer, with no buffer for the slots it does not have:
/// [`peek`](AtioRing::peek) copies the first slot out and says how many slots the entry
/// spans once all are written; [`read_rest`](AtioRing::read_rest) copies the others (an
/// entry with an additional CDB); [`consume`](AtioRing::consume) stamps them and moves on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AtioRing<const N: usize> {
    out_idx: u16,
    published: u16,
}

impl<const N: usize> AtioRing<N> {
    /// An empty ring.
    pub const fn new() -> Self {
        AtioRing {
            out_idx: 0,
            published: 0,
        }
    }

    /// The local out-index.
    pub fn out_index(&self) -> u16 {
        self.out_idx
    }

    #[inline]
    fn advance(idx: u16, by: usize) -> u16 {
        ((idx as usize + by) % N) as u16
    }

    /// Whether the slot at the out-index holds a new entry.
    pub fn has_work<H: AtioHw>(&self, hw: &H) -> bool {
        hw.signature(self.out_idx) != PROCESSED
    }

    /// The entry at the out-index, if all of its slots are written: its slot count and
    /// its first slot, copied into `first` (after the acquire fence). An
    /// `entry_count` of 0 counts as 1; one larger than the ring is clamped. Nothing is
    /// consumed: [`consume`](Self::consume) does that.
    #[inline]
    pub fn peek<'b, H: AtioHw>(
        &self,
        hw: &H,
        first: &'b mut MaybeUninit<Entry>,
    ) -> Result<Option<(usize, &'b mut Entry)>, DmaError> {
        if hw.signature(self.out_idx) == PROCESSED {
            return Ok(None);
        }
        hw.acquire();
        let first = hw.read_slot(self.out_idx, first)?;
        let slots = (first[1] as usize).clamp(1, N - 1);
        if slots > 1 {
            // Every slot of a multi-slot entry must be written before it is taken.
            for k in 1..slots {
                if hw.signature(Self::advance(self.out_idx, k)) == PROCESSED {
                    return Ok(None);
                }
            }
            hw.acquire();
        }
        Ok(Some((slots, first)))
    }

    /// Copy slots `1..slots` of the entry [`peek`](Self::peek) found into `rest`, one
    /// after the other, as far as `rest` holds whole slots (at most `MAX_ATIO_SLOTS - 1`).
    pub fn read_rest<H: AtioHw>(
        &self,
        hw: &H,
        slots: usize,
        rest: &mut [u8],
    ) -> Result<(), DmaError> {
        let n = slots.min(MAX_ATIO_SLOTS).saturating_sub(1);
        for (k, chunk) in rest.chunks_exact_mut(ENTRY_LEN).take(n).enumerate() {
            let mut e = MaybeUninit::uninit();
            chunk.copy_from_slice(hw.read_slot(Self::advance(self.out_idx, k + 1), &mut e)?);
        }
        Ok(())
    }

    /// Release the entry of `slots` slots at the out-index: stamp each with the processed
    /// signature and move past it.
    #[inline]
    pub fn consume<H: AtioHw>(&mut self, hw: &H, slots: usize) {
        for k in 0..slots {
            hw.stamp(Self::advance(self.out_idx, k));
        }
        self.out_idx = Self::advance(self.out_idx, slots);
    }

    /// Write the out-pointer if entries were consumed since the last call.
    #[inline]
    pub fn finish<H: AtioHw>(&mut self, hw: &H) -> bool {
        if self.out_idx == self.published {
            return false;
        }
        hw.write_out(self.out_idx);
        self.published = self.out_idx;
        true
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use core::cell::{Cell, RefCell};
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    const N: usize = 16;

    /// A ring in "memory" plus a firmware consumer/producer.
    struct Mock {
        slots: RefCell<Vec<Entry>>,
        out: Cell<u16>,
        doorbell: Cell<u16>,
        fences: Cell<u32>,
        /// Fence count seen at each doorbell.
        doorbells: RefCell<Vec<(u16, u32)>>,
        in_ptr: Cell<u16>,
        /// Reads of the response in-pointer register.
        in_reads: Cell<u32>,
        written_out: Cell<u16>,
    }

    impl Mock {
        fn new() -> Mock {
            let mut s = vec![[0u8; ENTRY_LEN]; N];
            for e in &mut s {
                e[SIGNATURE_OFFSET..].copy_from_slice(&PROCESSED.to_le_bytes());
            }
            Mock {
                slots: RefCell::new(s),
                out: Cell::new(0),
                doorbell: Cell::new(0),
                fences: Cell::new(0),
                doorbells: RefCell::new(Vec::new()),
                in_ptr: Cell::new(0),
                in_reads: Cell::new(0),
                written_out: Cell::new(0),
            }
        }
        fn sig(&self, idx: u16) -> u32 {
            let s = self.slots.borrow();
            let e = &s[idx as usize];
            u32::from_le_bytes(e[SIGNATURE_OFFSET..].try_into().unwrap())
        }
    }

    impl RequestHw for Mock {
        fn write_slot(&self, idx: u16, entry: &Entry) -> Result<(), DmaError> {
            self.slots.borrow_mut()[idx as usize] = *entry;
            Ok(())
        }
        fn out_pointer(&self) -> u16 {
            self.out.get()
        }
        fn release(&self) {
            self.fences.set(self.fences.get() + 1);
        }
        fn doorbell(&self, in_ptr: u16) {
            self.doorbell.set(in_ptr);
            self.doorbells
                .borrow_mut()
                .push((in_ptr, self.fences.get()));
        }
    }

    impl ResponseHw for Mock {
        fn in_pointer(&self) -> u16 {
            self.in_reads.set(self.in_reads.get() + 1);
            self.in_ptr.get()
        }
        fn signature(&self, idx: u16) -> u32 {
            self.sig(idx)
        }
        fn acquire(&self) {}
        fn read_slot<'b>(
            &self,
            idx: u16,
            buf: &'b mut MaybeUninit<Entry>,
        ) -> Result<&'b mut Entry, DmaError> {
            Ok(buf.write(self.slots.borrow()[idx as usize]))
        }
        fn stamp(&self, idx: u16) {
            self.slots.borrow_mut()[idx as usize][SIGNATURE_OFFSET..]
                .copy_from_slice(&PROCESSED.to_le_bytes());
        }
        fn write_out(&self, out: u16) {
            self.written_out.set(out);
        }
    }

    impl AtioHw for Mock {
        fn signature(&self, idx: u16) -> u32 {
            self.sig(idx)
        }
        fn acquire(&self) {}
        fn read_slot<'b>(
            &self,
            idx: u16,
            buf: &'b mut MaybeUninit<Entry>,
        ) -> Result<&'b mut Entry, DmaError> {
            Ok(buf.write(self.slots.borrow()[idx as usize]))
        }
        fn stamp(&self, idx: u16) {
            ResponseHw::stamp(self, idx)
        }
        fn write_out(&self, out: u16) {
            self.written_out.set(out);
        }
    }

    /// `ResponseRing::next` with the entry copied into `buf`: whether one was taken.
    fn next(r: &mut ResponseRing<N>, hw: &Mock, read: &mut bool, buf: &mut Entry) -> bool {
        let mut e = MaybeUninit::uninit();
        match r.next(hw, read, &mut e).unwrap() {
            Some(e) => {
                *buf = *e;
                true
            }
            None => false,
        }
    }

    fn entry(tag: u32) -> Entry {
        let mut e = [0u8; ENTRY_LEN];
        e[0] = 0x12;
        e[1] = 1;
        e[4..8].copy_from_slice(&tag.to_le_bytes());
        e
    }

    #[test]
    fn free_rule_matches_reference() {
        type R = RequestRing<16>;
        assert_eq!(R::free_between(0, 0), 16);
        assert_eq!(R::free_between(3, 5), 2);
        assert_eq!(R::free_between(5, 3), 14);
        assert_eq!(R::free_between(15, 0), 1);
    }

    #[test]
    fn request_ring_keeps_two_free_and_wraps() {
        let hw = Mock::new();
        let mut r = RequestRing::<N>::new();
        let mut posted = 0u32;
        while r.reserve(&hw, 1, 0) {
            assert!(r.push(&hw, &[entry(posted)]).unwrap());
            posted += 1;
        }
        assert_eq!(posted as usize, N - REQUEST_KEEP_FREE);
        assert!(!r.push(&hw, &[entry(99)]).unwrap());
        assert!(r.flush(&hw));
        assert!(!r.flush(&hw), "nothing new: no second doorbell");
        assert_eq!(hw.doorbell.get(), (N - 2) as u16);
        assert_eq!(hw.doorbells.borrow()[0].1, 1, "fence before the doorbell");
        // The firmware consumes 5: room again, and the ring wraps.
        hw.out.set(5);
        assert!(r.reserve(&hw, 5, 0));
        r.push(
            &hw,
            &[entry(100), entry(101), entry(102), entry(103), entry(104)],
        )
        .unwrap();
        r.flush(&hw);
        assert_eq!(hw.doorbell.get(), 3);
        assert_eq!(
            u32::from_le_bytes(hw.slots.borrow()[15][4..8].try_into().unwrap()),
            101
        );
    }

    #[test]
    fn response_ring_needs_pointer_and_signature() {
        let hw = Mock::new();
        let mut r = ResponseRing::<N>::new();
        let mut buf = [0u8; ENTRY_LEN];
        // Nothing written: the in-pointer register is not read at all.
        assert!(!next(&mut r, &hw, &mut false, &mut buf));
        assert_eq!(hw.in_reads.get(), 0, "an idle poll reads no register");
        // Firmware writes slot 0 but has not moved rsp_q_in yet.
        hw.slots.borrow_mut()[0] = entry(7);
        assert!(!next(&mut r, &hw, &mut false, &mut buf));
        assert_eq!(hw.in_reads.get(), 1);
        // Pointer moved past a slot whose signature is still PROCESSED.
        hw.slots.borrow_mut()[0][SIGNATURE_OFFSET..].copy_from_slice(&PROCESSED.to_le_bytes());
        hw.in_ptr.set(1);
        assert!(!next(&mut r, &hw, &mut false, &mut buf));
        hw.slots.borrow_mut()[0] = entry(7);
        assert!(next(&mut r, &hw, &mut false, &mut buf));
        assert_eq!(buf[4], 7);
        assert_eq!(hw.sig(0), PROCESSED);
        assert!(!next(&mut r, &hw, &mut false, &mut buf));
        assert!(r.finish(&hw));
        assert_eq!(hw.written_out.get(), 1);
        assert!(!r.finish(&hw));
        // Three entries behind one pointer move: one register read for all three.
        for k in 1..4 {
            hw.slots.borrow_mut()[k] = entry(10 + k as u32);
        }
        hw.in_ptr.set(4);
        let reads = hw.in_reads.get();
        let mut read = false;
        for k in 1..4 {
            assert!(next(&mut r, &hw, &mut read, &mut buf));
            assert_eq!(buf[4], 10 + k as u8);
        }
        // An entry the firmware writes after the drain read the pointer waits
        // for the next drain, which reads the pointer again.
        hw.slots.borrow_mut()[4] = entry(14);
        hw.in_ptr.set(5);
        assert!(!next(&mut r, &hw, &mut read, &mut buf));
        assert_eq!(hw.in_reads.get(), reads + 1, "one register read per drain");
        assert!(next(&mut r, &hw, &mut false, &mut buf));
        assert_eq!(buf[4], 14);
        assert_eq!(hw.in_reads.get(), reads + 2);
        // An in-pointer outside the ring is ignored.
        hw.slots.borrow_mut()[5] = entry(8);
        hw.in_ptr.set(N as u16);
        assert!(!next(&mut r, &hw, &mut false, &mut buf));
        assert_eq!(hw.sig(5), 0, "the entry stays on the ring");
    }

    /// Take one ATIO entry the way the driver does: its bytes, or `None`.
    fn take_atio(r: &mut AtioRing<N>, hw: &Mock) -> Option<Vec<u8>> {
        let mut first = MaybeUninit::uninit();
        let (slots, first) = r.peek(hw, &mut first).unwrap()?;
        let first = *first;
        let mut rest = [0u8; ENTRY_LEN * (MAX_ATIO_SLOTS - 1)];
        r.read_rest(hw, slots, &mut rest).unwrap();
        r.consume(hw, slots);
        let mut v = first.to_vec();
        v.extend_from_slice(&rest[..(slots.min(MAX_ATIO_SLOTS) - 1) * ENTRY_LEN]);
        Some(v)
    }

    #[test]
    fn atio_multi_slot_entry_wraps_and_waits_for_all_slots() {
        let hw = Mock::new();
        let mut r = AtioRing::<N>::new();
        // Move to slot 14 with 14 single entries.
        for i in 0..14 {
            hw.slots.borrow_mut()[i] = entry(i as u32);
            let e = take_atio(&mut r, &hw).unwrap();
            assert_eq!((e.len(), e[4]), (ENTRY_LEN, i as u8));
        }
        assert!(take_atio(&mut r, &hw).is_none(), "nothing new");
        // A 3-slot entry at 14, 15, 0: only the first two written so far.
        let mut a = entry(0xAA);
        a[0] = 0x06;
        a[1] = 3;
        hw.slots.borrow_mut()[14] = a;
        let mut c = [0x11u8; ENTRY_LEN];
        hw.slots.borrow_mut()[15] = c;
        assert!(take_atio(&mut r, &hw).is_none(), "slot 0 not written yet");
        assert_eq!(hw.sig(14), 0, "a waiting entry is left alone");
        c[0] = 0x22;
        hw.slots.borrow_mut()[0] = c;
        let e = take_atio(&mut r, &hw).unwrap();
        assert_eq!(e.len(), 3 * ENTRY_LEN);
        assert_eq!(e[4], 0xAA);
        assert_eq!(e[ENTRY_LEN], 0x11);
        assert_eq!(e[2 * ENTRY_LEN], 0x22);
        for s in [14, 15, 0] {
            assert_eq!(hw.sig(s), PROCESSED);
        }
        assert_eq!(r.out_index(), 1);
        assert!(r.finish(&hw));
        assert_eq!(hw.written_out.get(), 1);
        // An entry longer than what the driver copies: MAX_ATIO_SLOTS slots are copied,
        // every slot is stamped.
        let mut big = entry(0xBB);
        big[1] = (MAX_ATIO_SLOTS + 2) as u8;
        hw.slots.borrow_mut()[1] = big;
        for k in 2..MAX_ATIO_SLOTS + 3 {
            hw.slots.borrow_mut()[k] = [k as u8; ENTRY_LEN];
        }
        let e = take_atio(&mut r, &hw).unwrap();
        assert_eq!(e.len(), MAX_ATIO_SLOTS * ENTRY_LEN);
        assert_eq!(e[(MAX_ATIO_SLOTS - 1) * ENTRY_LEN], MAX_ATIO_SLOTS as u8);
        assert_eq!(r.out_index() as usize, MAX_ATIO_SLOTS + 3);
        for k in 1..MAX_ATIO_SLOTS + 3 {
            assert_eq!(hw.sig(k as u16), PROCESSED);
        }
    }

    proptest! {
        /// Random interleavings of posting (groups of 1..=4 entries) and of the
        /// firmware consuming: nothing unconsumed is ever overwritten, every
        /// entry is consumed exactly once and in order, a fence precedes every
        /// doorbell, and the ring never becomes full.
        #[test]
        fn request_ring_never_overwrites(ops in proptest::collection::vec((0u8..3, 1usize..5), 1..300)) {
            let hw = Mock::new();
            let mut r = RequestRing::<N>::new();
            let mut next_tag = 0u32;
            let mut consumed = 0u32;
            for (op, n) in ops {
                match op {
                    0 => {
                        if r.reserve(&hw, n, 0) {
                            let es: Vec<Entry> = (0..n).map(|k| entry(next_tag + k as u32)).collect();
                            prop_assert!(r.push(&hw, &es).unwrap());
                            next_tag += n as u32;
                        }
                    }
                    1 => { r.flush(&hw); }
                    _ => {
                        // Firmware consumes up to n published entries.
                        for _ in 0..n {
                            let out = hw.out.get();
                            if out == hw.doorbell.get() { break; }
                            let tag = u32::from_le_bytes(hw.slots.borrow()[out as usize][4..8].try_into().unwrap());
                            prop_assert_eq!(tag, consumed);
                            consumed += 1;
                            hw.out.set(RequestRing::<N>::next(out));
                        }
                    }
                }
                // Against the firmware's real out-pointer (the cached one may
                // lag), at least two slots stay free: in never catches up
                // with out from behind.
                let true_free = RequestRing::<N>::free_between(r.in_index(), hw.out.get());
                prop_assert!(true_free >= REQUEST_KEEP_FREE);
            }
            for (i, (_, fences)) in hw.doorbells.borrow().iter().enumerate() {
                prop_assert_eq!(*fences as usize, i + 1);
            }
        }

        /// The firmware produces single entries at random; the driver drains
        /// at random points: every entry is seen once, in order.
        #[test]
        fn response_ring_in_order(ops in proptest::collection::vec((any::<bool>(), 1usize..6), 1..200)) {
            let hw = Mock::new();
            let mut r = ResponseRing::<N>::new();
            let (mut produced, mut seen) = (0u32, 0u32);
            let mut fw_in = 0u16;
            for (produce, n) in ops {
                if produce {
                    for _ in 0..n {
                        // One slot always stays empty between in and the driver's out.
                        if RequestRing::<N>::next(fw_in) == hw.written_out.get() { break; }
                        hw.slots.borrow_mut()[fw_in as usize] = entry(produced);
                        produced += 1;
                        fw_in = RequestRing::<N>::next(fw_in);
                        hw.in_ptr.set(fw_in);
                    }
                } else {
                    let mut buf = [0u8; ENTRY_LEN];
                    let mut read = false;
                    while next(&mut r, &hw, &mut read, &mut buf) {
                        prop_assert_eq!(u32::from_le_bytes(buf[4..8].try_into().unwrap()), seen);
                        seen += 1;
                    }
                    r.finish(&hw);
                }
            }
            prop_assert!(seen <= produced);
        }
    }
}
