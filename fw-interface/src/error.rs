//! The one error type of the wire layer.

use core::fmt;

/// Why a buffer could not be viewed, parsed or emitted.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum WireError {
    /// The buffer is shorter than the structure (or than what its length fields announce).
    Truncated {
        /// Bytes the structure needs.
        needed: usize,
        /// Bytes the buffer has.
        got: usize,
    },
    /// The entry-type byte is not the one this view decodes.
    WrongEntryType {
        /// The type this view decodes.
        expected: u8,
        /// The type in the buffer.
        found: u8,
    },
    /// No decoder exists for this entry type (in this direction).
    UnknownEntryType(u8),
    /// A field holds a value the format forbids; the text names the field.
    Malformed(&'static str),
    /// Valid per the format, but this crate does not decode it; the text says what.
    Unsupported(&'static str),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Truncated { needed, got } => {
                write!(f, "truncated: need {needed} bytes, have {got}")
            }
            WireError::WrongEntryType { expected, found } => {
                write!(
                    f,
                    "wrong entry type {found:#04x} (expected {expected:#04x})"
                )
            }
            WireError::UnknownEntryType(t) => write!(f, "unknown entry type {t:#04x}"),
            WireError::Malformed(what) => write!(f, "malformed: {what}"),
            WireError::Unsupported(what) => write!(f, "unsupported: {what}"),
        }
    }
}

impl core::error::Error for WireError {}

/// `Ok(())` if `got >= needed`, else [`WireError::Truncated`].
#[inline]
pub(crate) const fn need(needed: usize, got: usize) -> Result<(), WireError> {
    if got >= needed {
        Ok(())
    } else {
        Err(WireError::Truncated { needed, got })
    }
}
