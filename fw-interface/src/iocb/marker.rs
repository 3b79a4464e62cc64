//! MARKER (0x04), 24xx layout: synchronise the firmware after init, LIP or reset.
//!
//! Source: reference §7.12, §3.5 step 14, gotcha 12. Newer firmware may return the marker on
//! the response queue (which versions is unconfirmed); the same layout decodes both.

use core::fmt;

use crate::iocb::{ENTRY_LEN, EntryStatus, EntryType, check_entry, handle, start_entry};
use crate::value::{FieldVisitor, Value, Visit};
use crate::{Lun, NportHandle, WireError};

enum_with_unknown! {
    /// MARKER modifier (0x0A).
    pub enum MarkerModifier(u8) {
        /// 0: sync one N_Port handle + LUN.
        SyncIdLun = 0 => "SYNC_ID_LUN",
        /// 1: sync one N_Port handle.
        SyncId = 1 => "SYNC_ID",
        /// 2: sync all (what the driver sends after init/LIP/reset).
        SyncAll = 2 => "SYNC_ALL",
    }
}

/// A view of a MARKER.
#[derive(Debug, Clone)]
pub struct Marker<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Marker<T> {
    view_basics!(Marker, ENTRY_LEN);

    accessors! {
        /// 0x01.
        entry_count, set_entry_count, 0x01, u8;
        /// 0x02: handle_count (0).
        handle_count, set_handle_count, 0x02, u8;
        /// 0x03 raw.
        entry_status_raw, set_entry_status_raw, 0x03, u8;
        /// 0x04.
        handle, set_handle, 0x04, le32;
        /// 0x08: for modifiers 0 and 1.
        nport_handle, set_nport_handle, 0x08, le16 as NportHandle;
        /// 0x0A raw.
        modifier_raw, set_modifier_raw, 0x0A, u8;
        /// 0x0D.
        vp_index, set_vp_index, 0x0D, u8;
        /// 0x10: FCP LUN for modifier 0.
        lun, set_lun, 0x10, lun;
    }
}

/// A parsed MARKER.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MarkerRepr {
    /// 0x03 (returned markers).
    pub entry_status: EntryStatus,
    /// 0x04: Linux sends the skip handle.
    pub handle: u32,
    /// 0x08.
    pub nport_handle: NportHandle,
    /// 0x0A.
    pub modifier: MarkerModifier,
    /// 0x0D.
    pub vp_index: u8,
    /// 0x10.
    pub lun: Lun,
}

impl MarkerRepr {
    /// The "sync all" marker Linux sends (skip handle).
    pub const fn sync_all(vp_index: u8) -> MarkerRepr {
        MarkerRepr {
            entry_status: EntryStatus::empty(),
            handle: handle::SKIP,
            nport_handle: NportHandle(0),
            modifier: MarkerModifier::SyncAll,
            vp_index,
            lun: Lun([0; 8]),
        }
    }

    /// Parses an entry.
    pub fn parse<T: AsRef<[u8]>>(m: &Marker<T>) -> Result<MarkerRepr, WireError> {
        check_entry(m.buffer.as_ref(), EntryType::Marker)?;
        Ok(MarkerRepr {
            entry_status: EntryStatus::from_bits_retain(m.entry_status_raw()),
            handle: m.handle(),
            nport_handle: m.nport_handle(),
            modifier: MarkerModifier::from(m.modifier_raw()),
            vp_index: m.vp_index(),
            lun: m.lun(),
        })
    }

    /// Parses bytes (never panics).
    pub fn parse_bytes(b: &[u8]) -> Result<MarkerRepr, WireError> {
        MarkerRepr::parse(&Marker::new_checked(b)?)
    }

    /// 64.
    pub const fn buffer_len(&self) -> usize {
        ENTRY_LEN
    }

    /// Writes the 64 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, m: &mut Marker<T>) -> Result<(), WireError> {
        start_entry(m.buffer.as_mut(), EntryType::Marker, 1, self.entry_status)?;
        m.set_handle(self.handle);
        m.set_nport_handle(self.nport_handle);
        m.set_modifier_raw(self.modifier.into());
        m.set_vp_index(self.vp_index);
        m.set_lun(self.lun);
        Ok(())
    }

    /// Writes into bytes.
    pub fn emit_bytes(&self, b: &mut [u8]) -> Result<(), WireError> {
        self.emit(&mut Marker::new_unchecked(b))
    }
}

impl fmt::Display for MarkerRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MARKER {} handle={:#010x}", self.modifier, self.handle)?;
        match self.modifier {
            MarkerModifier::SyncAll => {}
            MarkerModifier::SyncIdLun => {
                write!(f, " nport={} lun={}", self.nport_handle, self.lun)?
            }
            _ => write!(f, " nport={}", self.nport_handle)?,
        }
        if self.vp_index != 0 {
            write!(f, " vp={}", self.vp_index)?;
        }
        if !self.entry_status.is_empty() {
            write!(f, " entry_status={}", self.entry_status)?;
        }
        Ok(())
    }
}

impl Visit for MarkerRepr {
    fn visit(&self, v: &mut dyn FieldVisitor) {
        v.field("entry_type", EntryType::Marker.to_value());
        v.field("entry_status", Value::U8(self.entry_status.bits()));
        v.field("handle", Value::U32(self.handle));
        v.field("nport_handle", Value::U16(self.nport_handle.0));
        v.field("modifier", self.modifier.to_value());
        v.field("vp_index", Value::U8(self.vp_index));
        v.field("lun", Value::Lun(self.lun));
    }
}

view_display!(Marker, MarkerRepr::parse, "MARKER");

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::value::test_util::Collect;
    use std::string::ToString;

    #[test]
    fn golden_marker() {
        let mut b = [0u8; 64];
        b[0x00] = 0x04; // MARKER
        b[0x01] = 0x01;
        b[0x04..0x08].copy_from_slice(&[0xff, 0xff, 0xff, 0x0f]); // skip handle
        b[0x0A] = 0x02; // sync all
        b[0x0D] = 0x01; // vp_index
        let r = MarkerRepr::parse_bytes(&b).unwrap();
        assert_eq!(r, MarkerRepr::sync_all(1));
        let mut out = [0xA5u8; 64];
        r.emit_bytes(&mut out).unwrap();
        assert_eq!(out, b);
        assert_eq!(r.to_string(), "MARKER SYNC_ALL handle=0x0fffffff vp=1");
        let one = MarkerRepr {
            modifier: MarkerModifier::SyncIdLun,
            nport_handle: NportHandle(3),
            lun: Lun::from_index(2).unwrap(),
            ..r
        };
        one.emit_bytes(&mut out).unwrap();
        assert_eq!(out[0x08..0x0B], [0x03, 0x00, 0x00]);
        assert_eq!(out[0x10..0x18], [0, 2, 0, 0, 0, 0, 0, 0]);
        assert_eq!(MarkerRepr::parse_bytes(&out).unwrap(), one);
        assert!(
            one.to_string()
                .contains("nport=0x0003 lun=0002000000000000")
        );
        let id = MarkerRepr {
            modifier: MarkerModifier::SyncId,
            entry_status: EntryStatus::BUSY,
            ..one
        };
        assert!(
            id.to_string()
                .ends_with("nport=0x0003 vp=1 entry_status=BUSY")
        );
        let v = Marker::new_checked(&b[..]).unwrap();
        assert_eq!((v.entry_count(), v.handle_count()), (1, 0));
        Collect::of(&r).assert_unique();
        assert_eq!(r.buffer_len(), 64);
    }
}
