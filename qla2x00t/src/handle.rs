//! IOCB handles with generations: O(1) completion lookup that recognises a
//! late completion after an abort or a chip reset.
//!
//! Reference §6.5 and §9.13. The firmware echoes the 32-bit `handle` of a
//! request IOCB in its completion. Ours is
//!
//! | bits | meaning |
//! |---|---|
//! | 0–11 | slot index (0..4095; 4095 is never issued, so no handle equals [`SKIP_HANDLE`]) |
//! | 12–15 | queue id (0 today; multi-queue plumbing) |
//! | 16–27 | generation of the slot when issued (12 bits) |
//! | 29 | [`TARGET_MARKER`] (B29, "target-mode completion"), always set |
//! | 30 | [`INTERMEDIATE`] (B30): the data half of a data+status pair |
//!
//! A slot's generation changes every time it is freed, so a completion for
//! a freed slot (after a terminate, an abort, a timeout or a chip reset)
//! finds a different generation and is dropped and counted, never applied
//! to the slot's new owner. Completions are additionally validated by
//! exchange address by the caller.

use core::fmt;

use rscst_core::Instant;

/// B29: the completion belongs to the target code.
pub const TARGET_MARKER: u32 = 1 << 29;
/// B30: intermediate CTIO (data half of a data+status pair).
pub const INTERMEDIATE: u32 = 1 << 30;
/// "No completion wanted": `0x0FFFFFFF | B29`.
pub const SKIP_HANDLE: u32 = 0x0FFF_FFFF | TARGET_MARKER;
/// Most slots a handle table can have.
pub const MAX_HANDLES: usize = 0xFFF;

const INDEX_MASK: u32 = 0xFFF;
const QUEUE_SHIFT: u32 = 12;
const GEN_SHIFT: u32 = 16;
const GEN_MASK: u16 = 0xFFF;

/// A handle as issued in an IOCB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IocbHandle(pub u32);

impl IocbHandle {
    /// Compose a handle.
    pub const fn new(index: u16, queue: u8, generation: u16) -> IocbHandle {
        IocbHandle(
            TARGET_MARKER
                | ((generation & GEN_MASK) as u32) << GEN_SHIFT
                | ((queue & 0xF) as u32) << QUEUE_SHIFT
                | (index as u32 & INDEX_MASK),
        )
    }
    /// Slot index.
    pub const fn index(self) -> usize {
        (self.0 & INDEX_MASK) as usize
    }
    /// Queue id.
    pub const fn queue(self) -> u8 {
        ((self.0 >> QUEUE_SHIFT) & 0xF) as u8
    }
    /// Generation.
    pub const fn generation(self) -> u16 {
        ((self.0 >> GEN_SHIFT) as u16) & GEN_MASK
    }
    /// Whether B30 (intermediate) is set.
    pub const fn is_intermediate(self) -> bool {
        self.0 & INTERMEDIATE != 0
    }
    /// The same handle with B30 set.
    pub const fn intermediate(self) -> IocbHandle {
        IocbHandle(self.0 | INTERMEDIATE)
    }
    /// The handle without B30.
    pub const fn final_half(self) -> IocbHandle {
        IocbHandle(self.0 & !INTERMEDIATE)
    }
    /// Whether this is [`SKIP_HANDLE`] (with or without B30).
    pub const fn is_skip(self) -> bool {
        self.0 & !INTERMEDIATE == SKIP_HANDLE
    }
}

impl fmt::Display for IocbHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_skip() {
            return f.write_str("skip");
        }
        write!(f, "h{}.{}", self.index(), self.generation())?;
        if self.queue() != 0 {
            write!(f, "q{}", self.queue())?;
        }
        if self.is_intermediate() {
            f.write_str("i")?;
        }
        Ok(())
    }
}

/// One slot of the table (caller storage).
#[derive(Debug, Clone, Copy)]
pub struct HandleSlot<T: Copy> {
    generation: u16,
    next_free: u16,
    used: bool,
    payload: Option<T>,
    exchange: u32,
    deadline: Instant,
}

impl<T: Copy> HandleSlot<T> {
    /// An unused slot.
    pub const EMPTY: HandleSlot<T> = HandleSlot {
        generation: 1,
        next_free: u16::MAX,
        used: false,
        payload: None,
        exchange: 0,
        deadline: Instant::ZERO,
    };
}

/// Why a completion's handle matched no outstanding IOCB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandleMiss {
    /// Not a handle this table issued (no B29, index out of range).
    Foreign,
    /// The skip handle: no completion was wanted.
    Skip,
    /// The slot was freed (abort, timeout, reset) or reissued since.
    Stale,
}

/// An outstanding IOCB found by its handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outstanding<T> {
    /// What the driver recorded when it issued the handle.
    pub payload: T,
    /// The exchange address the IOCB was for (validated against the completion's).
    pub exchange: u32,
}

/// The table of outstanding IOCBs, over caller storage, with an O(1) free list.
pub struct HandleTable<'s, T: Copy> {
    slots: &'s mut [HandleSlot<T>],
    free_head: u16,
    in_use: usize,
    queue: u8,
}

const NIL: u16 = u16::MAX;

impl<'s, T: Copy> HandleTable<'s, T> {
    /// A table over `slots` (at most [`MAX_HANDLES`] are used) for queue `queue`.
    pub fn new(slots: &'s mut [HandleSlot<T>], queue: u8) -> HandleTable<'s, T> {
        let n = slots.len().min(MAX_HANDLES);
        let slots = &mut slots[..n];
        let mut t = HandleTable {
            slots,
            free_head: NIL,
            in_use: 0,
            queue,
        };
        t.rebuild_free_list();
        t
    }

    fn rebuild_free_list(&mut self) {
        self.free_head = NIL;
        self.in_use = 0;
        for i in (0..self.slots.len()).rev() {
            if self.slots[i].used {
                self.in_use += 1;
            } else {
                self.slots[i].next_free = self.free_head;
                self.free_head = i as u16;
            }
        }
    }

    /// Handles outstanding.
    pub fn in_use(&self) -> usize {
        self.in_use
    }

    /// Free slots.
    #[cfg(test)]
    pub fn available(&self) -> usize {
        self.slots.len() - self.in_use
    }

    /// Issue a handle for an IOCB on exchange `exchange`, with a deadline.
    #[inline]
    pub fn alloc(&mut self, payload: T, exchange: u32, deadline: Instant) -> Option<IocbHandle> {
        let i = self.free_head;
        let slot = self.slots.get_mut(i as usize)?;
        self.free_head = slot.next_free;
        slot.used = true;
        slot.payload = Some(payload);
        slot.exchange = exchange;
        slot.deadline = deadline;
        self.in_use += 1;
        Some(IocbHandle::new(i, self.queue, slot.generation))
    }

    #[inline]
    fn slot_of(&self, h: IocbHandle) -> Result<usize, HandleMiss> {
        if h.is_skip() {
            return Err(HandleMiss::Skip);
        }
        if h.0 & TARGET_MARKER == 0 || h.queue() != self.queue || h.index() >= self.slots.len() {
            return Err(HandleMiss::Foreign);
        }
        let s = &self.slots[h.index()];
        if !s.used || s.generation != h.generation() {
            return Err(HandleMiss::Stale);
        }
        Ok(h.index())
    }

    /// The outstanding IOCB of a completion's handle (B30 ignored).
    #[inline]
    pub fn get(&self, h: IocbHandle) -> Result<Outstanding<T>, HandleMiss> {
        self.lookup(h).map(|(_, o)| o)
    }

    /// [`get`](Self::get), with the slot to [`release`](Self::release) it by.
    #[inline]
    pub(crate) fn lookup(&self, h: IocbHandle) -> Result<(usize, Outstanding<T>), HandleMiss> {
        let i = self.slot_of(h.final_half())?;
        let s = &self.slots[i];
        match s.payload {
            Some(payload) => Ok((
                i,
                Outstanding {
                    payload,
                    exchange: s.exchange,
                },
            )),
            None => Err(HandleMiss::Stale),
        }
    }

    /// Free the handle's slot (its generation moves on). Returns what it held.
    #[inline]
    pub fn free(&mut self, h: IocbHandle) -> Result<Outstanding<T>, HandleMiss> {
        let (i, out) = self.lookup(h)?;
        self.release(i);
        Ok(out)
    }

    /// [`free`](Self::free) in one look at the slot, if `take` says yes to
    /// what it holds; `None` (nothing changed) for a handle `lookup` would
    /// refuse or one `take` declines.
    #[inline]
    pub(crate) fn take_if(
        &mut self,
        h: IocbHandle,
        take: impl FnOnce(&Outstanding<T>) -> bool,
    ) -> Option<Outstanding<T>> {
        let h = h.final_half();
        if h.is_skip() || h.0 & TARGET_MARKER == 0 || h.queue() != self.queue {
            return None;
        }
        let i = h.index();
        let s = self.slots.get_mut(i)?;
        if !s.used || s.generation != h.generation() {
            return None;
        }
        let out = Outstanding {
            payload: s.payload?,
            exchange: s.exchange,
        };
        if !take(&out) {
            return None;
        }
        s.used = false;
        s.payload = None;
        s.generation = s.generation.wrapping_add(1) & GEN_MASK;
        s.next_free = self.free_head;
        self.free_head = i as u16;
        self.in_use -= 1;
        Some(out)
    }

    /// Free slot `i`, as [`lookup`](Self::lookup) returned it for a handle
    /// in use (anything else is ignored).
    #[inline]
    pub(crate) fn release(&mut self, i: usize) {
        let Some(s) = self.slots.get_mut(i) else {
            return;
        };
        if !s.used {
            return;
        }
        s.used = false;
        s.payload = None;
        s.generation = s.generation.wrapping_add(1) & GEN_MASK;
        s.next_free = self.free_head;
        self.free_head = i as u16;
        self.in_use -= 1;
    }

    /// Free every slot (chip reset): every completion issued before is stale.
    pub fn invalidate_all(&mut self) -> usize {
        let n = self.in_use;
        for i in 0..self.slots.len() {
            if self.slots[i].used {
                let s = &mut self.slots[i];
                s.used = false;
                s.payload = None;
                s.generation = s.generation.wrapping_add(1) & GEN_MASK;
            }
        }
        self.rebuild_free_list();
        n
    }

    /// The earliest deadline among outstanding handles.
    #[cfg(test)]
    pub fn earliest_deadline(&self) -> Option<Instant> {
        self.slots
            .iter()
            .filter(|s| s.used)
            .map(|s| s.deadline)
            .min()
    }

    /// The first outstanding handle whose deadline is at or before `now`.
    pub fn first_expired(&self, now: Instant) -> Option<(IocbHandle, Outstanding<T>)> {
        self.slots.iter().enumerate().find_map(|(i, s)| {
            if s.used && s.deadline <= now {
                Some((
                    IocbHandle::new(i as u16, self.queue, s.generation),
                    Outstanding {
                        payload: s.payload?,
                        exchange: s.exchange,
                    },
                ))
            } else {
                None
            }
        })
    }

    /// Push an outstanding handle's deadline out (after it was dealt with).
    #[cfg(test)]
    pub fn set_deadline(&mut self, h: IocbHandle, deadline: Instant) {
        if let Ok(i) = self.slot_of(h.final_half()) {
            self.slots[i].deadline = deadline;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn layout() {
        let h = IocbHandle::new(5, 0, 3);
        assert_eq!(h.0, 0x2003_0005);
        assert_eq!((h.index(), h.queue(), h.generation()), (5, 0, 3));
        assert!(!h.is_intermediate());
        assert!(h.intermediate().is_intermediate());
        assert_eq!(h.intermediate().final_half(), h);
        assert!(IocbHandle(SKIP_HANDLE).is_skip());
        assert!(IocbHandle(SKIP_HANDLE | INTERMEDIATE).is_skip());
        assert_eq!(SKIP_HANDLE, 0x2FFF_FFFF);
        assert_eq!(
            IocbHandle::new(1, 2, 7).intermediate().to_string(),
            "h1.7q2i"
        );
        assert_eq!(IocbHandle(SKIP_HANDLE).to_string(), "skip");
    }

    #[test]
    fn take_if_is_free_when_taken() {
        let mut st = [HandleSlot::<u8>::EMPTY; 4];
        let mut t = HandleTable::new(&mut st, 0);
        let a = t.alloc(1, 0x100, Instant::ZERO).unwrap();
        let b = t.alloc(2, 0x200, Instant::ZERO).unwrap();
        // Declined: nothing changes.
        assert_eq!(t.take_if(a, |o| o.exchange == 0x999), None);
        assert_eq!((t.in_use(), t.get(a).unwrap().payload), (2, 1));
        // Taken: what it held, the handle stale after, the slot reused with a
        // new generation.
        let o = t.take_if(a, |o| o.exchange == 0x100).unwrap();
        assert_eq!((o.payload, o.exchange, t.in_use()), (1, 0x100, 1));
        assert_eq!(t.get(a), Err(HandleMiss::Stale));
        assert_eq!(t.take_if(a, |_| true), None);
        let c = t.alloc(3, 0x300, Instant::ZERO).unwrap();
        assert_eq!(c.index(), a.index());
        assert_ne!(c, a);
        // The intermediate half names the same IOCB; skip, foreign and
        // out-of-range handles are refused.
        assert_eq!(t.take_if(b.intermediate(), |_| true).unwrap().payload, 2);
        assert_eq!(t.take_if(IocbHandle(SKIP_HANDLE), |_| true), None);
        assert_eq!(t.take_if(IocbHandle(c.0 & !TARGET_MARKER), |_| true), None);
        assert_eq!(t.take_if(IocbHandle::new(1, 0, 0), |_| true), None);
        assert_eq!(t.take_if(IocbHandle::new(9, 0, 0), |_| true), None);
        assert_eq!(
            t.take_if(IocbHandle::new(c.index() as u16, 1, c.generation()), |_| {
                true
            }),
            None
        );
        assert_eq!(t.in_use(), 1);
        assert_eq!(t.take_if(c, |_| true).unwrap().payload, 3);
        assert_eq!(t.in_use(), 0);
    }

    #[test]
    fn stale_after_free_and_reset() {
        let mut st = [HandleSlot::<u8>::EMPTY; 4];
        let mut t = HandleTable::new(&mut st, 0);
        let a = t.alloc(1, 0x100, Instant::ZERO).unwrap();
        let b = t.alloc(2, 0x200, Instant::ZERO).unwrap();
        assert_eq!(t.in_use(), 2);
        assert_eq!(t.get(a).unwrap().payload, 1);
        assert_eq!(t.get(b.intermediate()).unwrap().exchange, 0x200);
        assert_eq!(t.free(a).unwrap().payload, 1);
        assert_eq!(t.get(a), Err(HandleMiss::Stale));
        assert_eq!(t.free(a), Err(HandleMiss::Stale));
        // The slot is reissued with a new generation: the old handle stays stale.
        let c = t.alloc(3, 0x300, Instant::ZERO).unwrap();
        assert_eq!(c.index(), a.index());
        assert_ne!(c, a);
        assert_eq!(t.get(a), Err(HandleMiss::Stale));
        assert_eq!(t.get(c).unwrap().payload, 3);
        assert_eq!(t.invalidate_all(), 2);
        assert_eq!(t.in_use(), 0);
        assert_eq!(t.get(b), Err(HandleMiss::Stale));
        assert_eq!(t.get(c), Err(HandleMiss::Stale));
        assert_eq!(t.get(IocbHandle(SKIP_HANDLE)), Err(HandleMiss::Skip));
        assert_eq!(t.get(IocbHandle(3)), Err(HandleMiss::Foreign));
        assert_eq!(t.get(IocbHandle::new(9, 0, 1)), Err(HandleMiss::Foreign));
        assert_eq!(t.get(IocbHandle::new(0, 1, 1)), Err(HandleMiss::Foreign));
        // Exhaustion and full recovery.
        for _ in 0..4 {
            t.alloc(0, 0, Instant::ZERO).unwrap();
        }
        assert!(t.alloc(0, 0, Instant::ZERO).is_none());
        assert_eq!(t.available(), 0);
    }

    #[test]
    fn deadlines() {
        let mut st = [HandleSlot::<u8>::EMPTY; 4];
        let mut t = HandleTable::new(&mut st, 0);
        assert_eq!(t.earliest_deadline(), None);
        let a = t.alloc(1, 0, Instant::from_millis(50)).unwrap();
        let _b = t.alloc(2, 0, Instant::from_millis(20)).unwrap();
        assert_eq!(t.earliest_deadline(), Some(Instant::from_millis(20)));
        assert!(t.first_expired(Instant::from_millis(19)).is_none());
        let (h, o) = t.first_expired(Instant::from_millis(20)).unwrap();
        assert_eq!(o.payload, 2);
        t.set_deadline(h, Instant::from_millis(100));
        assert_eq!(t.first_expired(Instant::from_millis(60)).unwrap().0, a);
    }
}
