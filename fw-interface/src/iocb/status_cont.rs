//! STATUS_CONT (0x10): continued sense data after an initiator STATUS entry.
//!
//! Source: reference §7.13. Initiator side only; decoded so traces and the dispatcher cover it.

use core::fmt;

use crate::iocb::{ENTRY_LEN, EntryStatus, EntryType, check_entry, start_entry};
use crate::value::{FieldVisitor, Value, Visit};
use crate::{HexBytes, WireError};

/// Sense bytes one STATUS_CONT carries.
pub const STATUS_CONT_DATA_LEN: usize = 60;

/// A view of a STATUS_CONT.
#[derive(Debug, Clone)]
pub struct StatusCont<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> StatusCont<T> {
    view_basics!(StatusCont, ENTRY_LEN);

    accessors! {
        /// 0x01.
        entry_count, set_entry_count, 0x01, u8;
        /// 0x03 raw.
        entry_status_raw, set_entry_status_raw, 0x03, u8;
    }

    /// 0x04..0x40.
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[4..ENTRY_LEN]
    }

    /// 0x04..0x40, writable.
    pub fn data_mut(&mut self) -> &mut [u8]
    where
        T: AsMut<[u8]>,
    {
        &mut self.buffer.as_mut()[4..ENTRY_LEN]
    }
}

/// A parsed STATUS_CONT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct StatusContRepr {
    /// 0x03.
    pub entry_status: EntryStatus,
    /// 0x04: 60 bytes of continued sense.
    pub data: [u8; STATUS_CONT_DATA_LEN],
}

impl StatusContRepr {
    /// Parses an entry.
    pub fn parse<T: AsRef<[u8]>>(s: &StatusCont<T>) -> Result<StatusContRepr, WireError> {
        check_entry(s.buffer.as_ref(), EntryType::StatusCont)?;
        let mut data = [0u8; STATUS_CONT_DATA_LEN];
        data.copy_from_slice(s.data());
        Ok(StatusContRepr {
            entry_status: EntryStatus::from_bits_retain(s.entry_status_raw()),
            data,
        })
    }

    /// Parses bytes (never panics).
    pub fn parse_bytes(b: &[u8]) -> Result<StatusContRepr, WireError> {
        StatusContRepr::parse(&StatusCont::new_checked(b)?)
    }

    /// 64.
    pub const fn buffer_len(&self) -> usize {
        ENTRY_LEN
    }

    /// Writes the 64 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        s: &mut StatusCont<T>,
    ) -> Result<(), WireError> {
        start_entry(
            s.buffer.as_mut(),
            EntryType::StatusCont,
            1,
            self.entry_status,
        )?;
        s.data_mut().copy_from_slice(&self.data);
        Ok(())
    }

    /// Writes into bytes.
    pub fn emit_bytes(&self, b: &mut [u8]) -> Result<(), WireError> {
        self.emit(&mut StatusCont::new_unchecked(b))
    }
}

impl fmt::Display for StatusContRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let used = self.data.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        write!(f, "STATUS_CONT data={}", HexBytes(&self.data[..used]))?;
        if !self.entry_status.is_empty() {
            write!(f, " entry_status={}", self.entry_status)?;
        }
        Ok(())
    }
}

impl Visit for StatusContRepr {
    fn visit(&self, v: &mut dyn FieldVisitor) {
        v.field("entry_type", EntryType::StatusCont.to_value());
        v.field("entry_status", Value::U8(self.entry_status.bits()));
        v.field("data", Value::Bytes(&self.data));
    }
}

view_display!(StatusCont, StatusContRepr::parse, "STATUS_CONT");

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::value::test_util::Collect;
    use std::string::ToString;

    #[test]
    fn golden_status_cont() {
        let mut b = [0u8; 64];
        b[0] = 0x10; // STATUS_CONT
        b[1] = 0x01;
        b[4] = 0xAA; // first continued sense byte
        b[63] = 0xBB; // last
        let r = StatusContRepr::parse_bytes(&b).unwrap();
        assert_eq!((r.data[0], r.data[59]), (0xAA, 0xBB));
        let mut out = [0xA5u8; 64];
        r.emit_bytes(&mut out).unwrap();
        assert_eq!(out, b);
        assert!(r.to_string().starts_with("STATUS_CONT data=[aa 00"));
        let short = StatusContRepr {
            data: [0; 60],
            entry_status: EntryStatus::BUSY,
        };
        assert_eq!(short.to_string(), "STATUS_CONT data=[] entry_status=BUSY");
        assert_eq!(StatusCont::new_checked(&b[..]).unwrap().entry_count(), 1);
        Collect::of(&r).assert_unique();
        assert_eq!(r.buffer_len(), 64);
    }
}
