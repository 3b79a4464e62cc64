//! Byte-order helpers for the views.
//!
//! Every helper indexes the slice directly: views call them only after `check_len`, so a
//! panic here means a view was built with `new_unchecked` on a short buffer.

#[inline]
pub(crate) fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

#[inline]
pub(crate) fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline]
pub(crate) fn le64(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

#[inline]
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
pub(crate) fn be24(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([0, b[at], b[at + 1], b[at + 2]])
}

#[inline]
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline]
pub(crate) fn set_le16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

#[inline]
pub(crate) fn set_le32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

#[inline]
pub(crate) fn set_le64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

#[inline]
pub(crate) fn set_be16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

#[inline]
pub(crate) fn set_be24(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 3].copy_from_slice(&v.to_be_bytes()[1..]);
}

#[inline]
pub(crate) fn set_be32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

#[inline]
pub(crate) fn array<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut x = [0u8; N];
    x.copy_from_slice(&b[at..at + N]);
    x
}

/// Reverses the bytes of every 4-byte group of `src` into `dst` (a trailing partial group is
/// treated as zero-padded to 4 bytes). This is the byte-order conversion of gotchas 2 and 3:
/// a sequence of big-endian wire dwords ⇄ the same dwords stored little-endian in an IOCB.
/// `dst` must be at least `src.len()` rounded up to 4; extra `dst` bytes are left alone.
pub fn dword_swap(src: &[u8], dst: &mut [u8]) {
    for (i, chunk) in src.chunks(4).enumerate() {
        let mut w = [0u8; 4];
        w[..chunk.len()].copy_from_slice(chunk);
        w.reverse();
        if let Some(d) = dst.get_mut(i * 4..i * 4 + 4) {
            d.copy_from_slice(&w);
        }
    }
}

/// Writes bytes as lowercase hex pairs separated by `sep` (none if `sep` is empty).
pub(crate) fn write_hex(
    f: &mut core::fmt::Formatter<'_>,
    bytes: &[u8],
    sep: &str,
) -> core::fmt::Result {
    for (i, b) in bytes.iter().enumerate() {
        if i != 0 {
            f.write_str(sep)?;
        }
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

/// `Display` of a byte string as space-separated hex in brackets: `[28 00 01]`.
#[derive(Clone, Copy)]
pub struct HexBytes<'a>(pub &'a [u8]);

impl core::fmt::Display for HexBytes<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("[")?;
        write_hex(f, self.0, " ")?;
        f.write_str("]")
    }
}

impl core::fmt::Debug for HexBytes<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dword_swap_reverses_each_group() {
        let src = [1, 2, 3, 4, 5, 6, 7, 8, 9];
        let mut dst = [0xEEu8; 13];
        dword_swap(&src, &mut dst);
        assert_eq!(dst, [4, 3, 2, 1, 8, 7, 6, 5, 0, 0, 0, 9, 0xEE]);
        // Short destination: groups that do not fit are dropped, no panic.
        let mut small = [0u8; 5];
        dword_swap(&src, &mut small);
        assert_eq!(small, [4, 3, 2, 1, 0]);
    }

    #[test]
    fn helpers_round_trip() {
        let mut b = [0u8; 16];
        set_le16(&mut b, 0, 0x1234);
        set_le32(&mut b, 2, 0xdead_beef);
        set_be24(&mut b, 6, 0x0a0b0c);
        set_be16(&mut b, 9, 0xcafe);
        set_be32(&mut b, 11, 0x0102_0304);
        assert_eq!(b[..6], [0x34, 0x12, 0xef, 0xbe, 0xad, 0xde]);
        assert_eq!(le16(&b, 0), 0x1234);
        assert_eq!(le32(&b, 2), 0xdead_beef);
        assert_eq!(be24(&b, 6), 0x0a0b0c);
        assert_eq!(be16(&b, 9), 0xcafe);
        assert_eq!(be32(&b, 11), 0x0102_0304);
        let mut c = [0u8; 8];
        set_le64(&mut c, 0, 0x0102_0304_0506_0708);
        assert_eq!(c, [8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(le64(&c, 0), 0x0102_0304_0506_0708);
        assert_eq!(array::<3>(&c, 1), [7, 6, 5]);
    }
}
