//! Building emulated payloads straight into a pool buffer.
//!
//! A [`Payload`] counts every byte put into it and stores the first `limit`
//! of them; with no memory it only counts. Generators run twice: once to
//! measure (the allocation length decides how much is kept), once to write.

use crate::memory::Memory;

pub(crate) struct Payload<'m> {
    mem: Option<&'m dyn Memory>,
    base: usize,
    limit: usize,
    pos: usize,
}

impl<'m> Payload<'m> {
    /// A payload that only counts.
    pub(crate) fn counter() -> Payload<'static> {
        Payload {
            mem: None,
            base: 0,
            limit: 0,
            pos: 0,
        }
    }

    /// A payload stored at `base` in `mem`, at most `limit` bytes of it.
    pub(crate) fn new(mem: &'m dyn Memory, base: usize, limit: usize) -> Payload<'m> {
        Payload {
            mem: Some(mem),
            base,
            limit,
            pos: 0,
        }
    }

    /// Bytes produced so far.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Overwrite bytes at `at` (a length field known only at the end).
    pub(crate) fn patch(&mut self, at: usize, data: &[u8]) {
        if let Some(m) = self.mem
            && at < self.limit
        {
            let n = data.len().min(self.limit - at);
            let _ = m.write(self.base + at, &data[..n]);
        }
    }

    pub(crate) fn put(&mut self, data: &[u8]) {
        self.patch(self.pos, data);
        self.pos += data.len();
    }

    pub(crate) fn u8(&mut self, v: u8) {
        self.put(&[v]);
    }

    pub(crate) fn u16(&mut self, v: u16) {
        self.put(&v.to_be_bytes());
    }

    pub(crate) fn u32(&mut self, v: u32) {
        self.put(&v.to_be_bytes());
    }

    pub(crate) fn u64(&mut self, v: u64) {
        self.put(&v.to_be_bytes());
    }

    pub(crate) fn zeros(&mut self, n: usize) {
        const Z: [u8; 32] = [0; 32];
        let mut left = n;
        while left > 0 {
            let k = left.min(Z.len());
            self.put(&Z[..k]);
            left -= k;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::SliceMemory;

    #[test]
    fn counts_everything_stores_up_to_limit() {
        let mut m = [0xffu8; 16];
        let mem = SliceMemory::new(&mut m, 0);
        let mut p = Payload::new(&mem, 2, 5);
        p.u16(0x0102);
        p.u32(0x0304_0506);
        p.zeros(40);
        p.patch(0, &[9]);
        assert_eq!(p.pos(), 46);
        let mut out = [0u8; 8];
        mem.read(0, &mut out).unwrap();
        assert_eq!(out, [0xff, 0xff, 9, 2, 3, 4, 5, 0xff]);
        let mut c = Payload::counter();
        c.zeros(7);
        assert_eq!(c.pos(), 7);
    }
}
