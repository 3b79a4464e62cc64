//! The discrete-event queue of the simulator: events ordered by (time, insertion sequence),
//! so two events at the same time happen in the order they were scheduled and a run is a
//! pure function of its inputs.
//!
//! Most events of a busy simulation happen "now" (zero modelled latency: a frame delivered
//! by an infinitely fast fabric, the firmware's request processing, a workload's next
//! command). Those go to a FIFO — O(1) in and out, no comparison, no allocation once it has
//! grown. Only events in the future go to a binary heap, which holds small keys (time,
//! sequence, slot); the events themselves wait in a slab whose slots are reused. Pop takes
//! the smaller (time, sequence) of the FIFO's front and the heap's top: the FIFO is sorted
//! (it only receives events at the current time, which never goes back), so the order is
//! exactly that of one heap holding everything.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};

use crate::time::SimTime;

/// A future event's place in the heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    time: SimTime,
    seq: u64,
    slot: u32,
}

impl PartialOrd for Key {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

impl Ord for Key {
    fn cmp(&self, o: &Self) -> Ordering {
        // BinaryHeap is a max-heap: reverse for earliest-first.
        o.time.cmp(&self.time).then(o.seq.cmp(&self.seq))
    }
}

/// A min-queue of timed events.
pub(crate) struct EventQueue<E> {
    /// The current time: events scheduled for it go to the FIFO.
    now: SimTime,
    /// Events at the current time (or an earlier current time), in (time, seq) order.
    fifo: VecDeque<(SimTime, u64, E)>,
    /// Future events: keys into `slab`.
    heap: BinaryHeap<Key>,
    slab: Vec<Option<E>>,
    free: Vec<u32>,
    seq: u64,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        EventQueue {
            now: SimTime::ZERO,
            fifo: VecDeque::with_capacity(256),
            heap: BinaryHeap::with_capacity(256),
            slab: Vec::with_capacity(256),
            free: Vec::with_capacity(256),
            seq: 0,
        }
    }
}

impl<E> EventQueue<E> {
    /// Moves the current time (never backwards).
    #[inline]
    pub(crate) fn set_now(&mut self, now: SimTime) {
        if now > self.now {
            self.now = now;
        }
    }

    #[inline]
    pub(crate) fn push(&mut self, time: SimTime, ev: E) {
        self.seq += 1;
        if time == self.now {
            self.fifo.push_back((time, self.seq, ev));
            return;
        }
        let slot = match self.free.pop() {
            Some(s) => {
                self.slab[s as usize] = Some(ev);
                s
            }
            None => {
                self.slab.push(Some(ev));
                (self.slab.len() - 1) as u32
            }
        };
        self.heap.push(Key {
            time,
            seq: self.seq,
            slot,
        });
    }

    /// Whether the heap's top comes before the FIFO's front.
    #[inline]
    fn heap_first(&self) -> Option<bool> {
        match (self.fifo.front(), self.heap.peek()) {
            (None, None) => None,
            (Some(_), None) => Some(false),
            (None, Some(_)) => Some(true),
            (Some(f), Some(k)) => Some((k.time, k.seq) < (f.0, f.1)),
        }
    }

    #[inline]
    pub(crate) fn peek_time(&self) -> Option<SimTime> {
        match (self.fifo.front(), self.heap.peek()) {
            (None, None) => None,
            (Some(f), None) => Some(f.0),
            (None, Some(k)) => Some(k.time),
            (Some(f), Some(k)) => Some(f.0.min(k.time)),
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.fifo.len() + self.heap.len()
    }

    /// Events scheduled so far (a counter that changes whenever one is pushed).
    #[inline]
    pub(crate) fn pushed(&self) -> u64 {
        self.seq
    }

    #[inline]
    pub(crate) fn pop(&mut self) -> Option<(SimTime, E)> {
        if self.heap_first()? {
            let k = self.heap.pop()?;
            let ev = self.slab.get_mut(k.slot as usize)?.take()?;
            self.free.push(k.slot);
            Some((k.time, ev))
        } else {
            self.fifo.pop_front().map(|(t, _, e)| (t, e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_first_then_fifo() {
        let mut q = EventQueue::default();
        q.push(SimTime(5), "b");
        q.push(SimTime(1), "a");
        q.push(SimTime(5), "c");
        assert_eq!(q.peek_time(), Some(SimTime(1)));
        assert_eq!(q.pop(), Some((SimTime(1), "a")));
        assert_eq!(q.pop(), Some((SimTime(5), "b")));
        assert_eq!(q.pop(), Some((SimTime(5), "c")));
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn now_events_interleave_with_future_ones_by_time_then_sequence() {
        let mut q = EventQueue::default();
        q.push(SimTime(0), "now-1"); // FIFO
        q.push(SimTime(3), "later-1"); // heap
        q.push(SimTime(0), "now-2"); // FIFO
        q.push(SimTime(3), "later-2"); // heap
        assert_eq!(q.len(), 4);
        assert_eq!(q.pop(), Some((SimTime(0), "now-1")));
        // The clock moves on while a "now" event is still queued: it stays first.
        q.set_now(SimTime(3));
        q.push(SimTime(3), "now-3"); // FIFO, after the heap's events of time 3
        q.push(SimTime(2), "past"); // a time before now: heap, ordered by time
        assert_eq!(q.peek_time(), Some(SimTime(0)));
        assert_eq!(q.pop(), Some((SimTime(0), "now-2")));
        assert_eq!(q.pop(), Some((SimTime(2), "past")));
        assert_eq!(q.pop(), Some((SimTime(3), "later-1")));
        assert_eq!(q.pop(), Some((SimTime(3), "later-2")));
        assert_eq!(q.pop(), Some((SimTime(3), "now-3")));
        assert_eq!(q.pop(), None);
        assert_eq!(q.pushed(), 6);
        // Slots are reused.
        q.push(SimTime(9), "x");
        assert_eq!(q.slab.len(), 3);
        q.set_now(SimTime(1)); // never backwards
        assert_eq!(q.now, SimTime(3));
    }

    /// The two-part queue pops in exactly the order of a single (time, seq) queue.
    #[test]
    fn same_order_as_one_heap() {
        let mut rng = crate::rng::SimRng::new(5);
        let mut q = EventQueue::default();
        let mut reference = std::collections::BTreeSet::new();
        let mut seq = 0u64;
        let mut now = 0u64;
        for _ in 0..20_000 {
            if rng.below(3) < 2 {
                let t = now + if rng.chance(0.5) { 0 } else { rng.below(20) };
                seq += 1;
                q.push(SimTime(t), seq);
                reference.insert((t, seq));
            } else {
                let got = q.pop().map(|(t, s)| (t.0, s));
                assert_eq!(got, reference.pop_first());
                if let Some((t, _)) = got {
                    now = now.max(t) + if rng.chance(0.3) { rng.below(3) } else { 0 };
                    q.set_now(SimTime(now));
                }
            }
            assert_eq!(q.peek_time().map(|t| t.0), reference.first().map(|e| e.0));
        }
        while let Some((t, s)) = q.pop() {
            assert_eq!(Some((t.0, s)), reference.pop_first());
        }
        assert!(reference.is_empty());
    }
}
