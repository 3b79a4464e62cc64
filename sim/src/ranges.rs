//! A small set of byte ranges, to count the distinct bytes a transfer delivered when frames
//! may be duplicated, reordered or lost.

/// Disjoint, sorted half-open ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Ranges {
    r: Vec<(u32, u32)>,
}

impl Ranges {
    /// Adds `[start, end)`.
    pub(crate) fn add(&mut self, start: u32, end: u32) {
        if start >= end {
            return;
        }
        let pos = self.r.partition_point(|&(_, e)| e < start);
        let mut s = start;
        let mut e = end;
        let mut k = pos;
        while k < self.r.len() && self.r[k].0 <= e {
            s = s.min(self.r[k].0);
            e = e.max(self.r[k].1);
            k += 1;
        }
        self.r.splice(pos..k, std::iter::once((s, e)));
    }

    /// Distinct bytes covered.
    pub(crate) fn total(&self) -> u32 {
        self.r.iter().map(|(a, b)| b - a).sum()
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
        assert_eq!(r.r, vec![(0, 30)]);
        r.add(40, 40);
        r.add(31, 35);
        assert_eq!(r.total(), 34);
    }
}
