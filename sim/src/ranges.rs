//! A small set of byte ranges, to count the distinct bytes a transfer delivered when frames
//! may be duplicated, reordered or lost.
//!
//! The common case — frames in order, each continuing the last — keeps one range inline
//! and never allocates; only disjoint pieces (a lost or reordered frame) spill to a vector.

/// Disjoint, sorted half-open ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Ranges {
    /// The first range (`start == end`: none yet).
    head: (u32, u32),
    /// Further ranges after `head`, sorted, disjoint, not touching.
    rest: Vec<(u32, u32)>,
}

impl Ranges {
    /// Adds `[start, end)`.
    pub(crate) fn add(&mut self, start: u32, end: u32) {
        if start >= end {
            return;
        }
        let (hs, he) = self.head;
        if hs == he {
            self.head = (start, end);
            return;
        }
        // In-order continuation (or overlap) of the head, nothing after it: no spill.
        if self.rest.is_empty() && start <= he && end >= hs {
            self.head = (hs.min(start), he.max(end));
            return;
        }
        let mut all = Vec::with_capacity(self.rest.len() + 2);
        all.push(self.head);
        all.append(&mut self.rest);
        let pos = all.partition_point(|&(_, e)| e < start);
        let mut s = start;
        let mut e = end;
        let mut k = pos;
        while k < all.len() && all[k].0 <= e {
            s = s.min(all[k].0);
            e = e.max(all[k].1);
            k += 1;
        }
        all.splice(pos..k, std::iter::once((s, e)));
        self.head = all[0];
        all.remove(0);
        self.rest = all;
    }

    /// Distinct bytes covered.
    pub(crate) fn total(&self) -> u32 {
        (self.head.1 - self.head.0) + self.rest.iter().map(|(a, b)| b - a).sum::<u32>()
    }

    #[cfg(test)]
    fn list(&self) -> Vec<(u32, u32)> {
        let mut v = Vec::new();
        if self.head.0 != self.head.1 {
            v.push(self.head);
        }
        v.extend_from_slice(&self.rest);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_and_overlaps_count_once() {
        let mut r = Ranges::default();
        r.add(0, 10);
        r.add(0, 10);
        r.add(20, 30);
        assert_eq!(r.total(), 20);
        r.add(5, 25);
        assert_eq!(r.total(), 30);
        assert_eq!(r.list(), vec![(0, 30)]);
        r.add(40, 40);
        r.add(31, 35);
        assert_eq!(r.total(), 34);
    }

    #[test]
    fn in_order_frames_stay_inline() {
        let mut r = Ranges::default();
        for k in 0..64 {
            r.add(k * 2048, (k + 1) * 2048);
        }
        assert_eq!(r.list(), vec![(0, 64 * 2048)]);
        assert_eq!(r.rest.capacity(), 0, "no allocation");
    }

    /// Against a bitmap, for random pieces in random order.
    #[test]
    fn matches_a_bitmap() {
        let mut rng = crate::rng::SimRng::new(3);
        for _ in 0..200 {
            let mut r = Ranges::default();
            let mut bits = [false; 200];
            for _ in 0..rng.range(1, 12) {
                let s = rng.below(200) as u32;
                let e = (s + rng.below(40) as u32).min(200);
                r.add(s, e);
                for b in &mut bits[s as usize..e as usize] {
                    *b = true;
                }
                assert_eq!(r.total() as usize, bits.iter().filter(|b| **b).count());
                let l = r.list();
                assert!(l.windows(2).all(|w| w[0].1 < w[1].0), "{l:?}");
            }
        }
    }
}
