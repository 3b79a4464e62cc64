//! A byte string of bounded length stored inline (no allocation): CDBs and sense data.

use core::fmt;
use core::hash::{Hash, Hasher};

use crate::WireError;

/// Up to `N` bytes stored inline, with a length. Bytes past the length are always zero, so
/// equality, hashing and `Debug` see only the valid prefix.
#[derive(Clone, Copy)]
pub struct FixedBytes<const N: usize> {
    buf: [u8; N],
    len: u16,
}

impl<const N: usize> FixedBytes<N> {
    /// The capacity.
    pub const CAPACITY: usize = N;

    /// An empty string.
    pub const fn new() -> Self {
        FixedBytes {
            buf: [0; N],
            len: 0,
        }
    }

    /// `len` zero bytes (`len` is clamped to `N`).
    pub const fn zeroed(len: usize) -> Self {
        FixedBytes {
            buf: [0; N],
            len: if len < N { len as u16 } else { N as u16 },
        }
    }

    /// A copy of `bytes`; `Err` if longer than `N`.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, WireError> {
        let mut s = Self::new();
        let dst = s
            .buf
            .get_mut(..bytes.len())
            .ok_or(WireError::Malformed("byte string longer than its capacity"))?;
        dst.copy_from_slice(bytes);
        s.len = bytes.len() as u16;
        Ok(s)
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }

    /// Number of bytes.
    pub const fn len(&self) -> usize {
        self.len as usize
    }

    /// `true` if empty.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<const N: usize> Default for FixedBytes<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> PartialEq for FixedBytes<N> {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl<const N: usize> Eq for FixedBytes<N> {}

impl<const N: usize> Hash for FixedBytes<N> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state)
    }
}

impl<const N: usize> fmt::Debug for FixedBytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&crate::HexBytes(self.as_slice()), f)
    }
}

impl<const N: usize> fmt::Display for FixedBytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&crate::HexBytes(self.as_slice()), f)
    }
}

#[cfg(feature = "defmt")]
impl<const N: usize> defmt::Format for FixedBytes<N> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{=[u8]:02x}", self.as_slice())
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::format;

    #[test]
    fn bounded_and_compared_by_prefix() {
        let a = FixedBytes::<4>::from_slice(&[1, 2]).unwrap();
        assert_eq!(a.as_slice(), &[1, 2]);
        assert_eq!((a.len(), a.is_empty()), (2, false));
        assert!(FixedBytes::<4>::default().is_empty());
        assert!(FixedBytes::<4>::from_slice(&[0; 5]).is_err());
        assert_eq!(a, FixedBytes::<4>::from_slice(&[1, 2]).unwrap());
        assert_ne!(a, FixedBytes::<4>::from_slice(&[1, 2, 0]).unwrap());
        assert_eq!(format!("{a}"), "[01 02]");
        assert_eq!(format!("{a:?}"), "[01 02]");
        assert_eq!(FixedBytes::<4>::CAPACITY, 4);
    }
}
