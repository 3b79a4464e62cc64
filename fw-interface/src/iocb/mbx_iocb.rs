//! MBX_IOCB (0x39): a mailbox command sent through the request queue; the firmware returns the
//! same entry with the output mailboxes.
//!
//! Source: reference §7.15. Completion success is judged with
//! [`mbx_iocb_status_ok`](crate::mailbox::mbx_iocb_status_ok) (mask 0x3FFF).

use core::fmt;

use crate::WireError;
use crate::iocb::{ENTRY_LEN, EntryStatus, EntryType, check_entry, start_entry};
use crate::mailbox::{Mailboxes, MbxCommand, MbxStatus};
use crate::value::{FieldVisitor, Value, Visit};

/// Mailbox registers an MBX_IOCB carries (mb0..mb27).
pub const MBX_IOCB_REGS: usize = 28;

/// A view of an MBX_IOCB.
#[derive(Debug, Clone)]
pub struct MbxIocb<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> MbxIocb<T> {
    view_basics!(MbxIocb, ENTRY_LEN);

    accessors! {
        /// 0x01.
        entry_count, set_entry_count, 0x01, u8;
        /// 0x03 raw.
        entry_status_raw, set_entry_status_raw, 0x03, u8;
        /// 0x04.
        handle, set_handle, 0x04, le32;
    }

    /// mb`n` (LE16 at 0x08 + 2n); `None` for `n > 27`.
    pub fn mb(&self, n: usize) -> Option<u16> {
        (n < MBX_IOCB_REGS).then(|| crate::bytes::le16(self.buffer.as_ref(), 0x08 + 2 * n))
    }

    /// Sets mb`n` (ignored for `n > 27`).
    pub fn set_mb(&mut self, n: usize, v: u16)
    where
        T: AsMut<[u8]>,
    {
        if n < MBX_IOCB_REGS {
            crate::bytes::set_le16(self.buffer.as_mut(), 0x08 + 2 * n, v)
        }
    }
}

/// A parsed MBX_IOCB (request or returned entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MbxIocbRepr {
    /// 0x03.
    pub entry_status: EntryStatus,
    /// 0x04.
    pub handle: u32,
    /// 0x08: mb0..mb27.
    pub mb: [u16; MBX_IOCB_REGS],
}

impl MbxIocbRepr {
    /// From the first 28 registers of a mailbox command.
    pub fn from_mailboxes(handle: u32, m: &Mailboxes) -> MbxIocbRepr {
        let mut mb = [0u16; MBX_IOCB_REGS];
        mb.copy_from_slice(&m.0[..MBX_IOCB_REGS]);
        MbxIocbRepr {
            entry_status: EntryStatus::empty(),
            handle,
            mb,
        }
    }

    /// As 32 mailbox registers (mb28..31 zero).
    pub fn to_mailboxes(&self) -> Mailboxes {
        let mut m = Mailboxes::default();
        m.0[..MBX_IOCB_REGS].copy_from_slice(&self.mb);
        m
    }

    /// mb0 as a command (request).
    pub fn command(&self) -> MbxCommand {
        MbxCommand::from(self.mb[0])
    }

    /// mb0 as a status (returned entry).
    pub fn status(&self) -> MbxStatus {
        MbxStatus::from(self.mb[0])
    }

    /// Parses an entry.
    pub fn parse<T: AsRef<[u8]>>(m: &MbxIocb<T>) -> Result<MbxIocbRepr, WireError> {
        check_entry(m.buffer.as_ref(), EntryType::MbxIocb)?;
        let mut mb = [0u16; MBX_IOCB_REGS];
        for (n, r) in mb.iter_mut().enumerate() {
            *r = m.mb(n).unwrap_or(0);
        }
        Ok(MbxIocbRepr {
            entry_status: EntryStatus::from_bits_retain(m.entry_status_raw()),
            handle: m.handle(),
            mb,
        })
    }

    /// Parses bytes (never panics).
    pub fn parse_bytes(b: &[u8]) -> Result<MbxIocbRepr, WireError> {
        MbxIocbRepr::parse(&MbxIocb::new_checked(b)?)
    }

    /// 64.
    pub const fn buffer_len(&self) -> usize {
        ENTRY_LEN
    }

    /// Writes the 64 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, m: &mut MbxIocb<T>) -> Result<(), WireError> {
        start_entry(m.buffer.as_mut(), EntryType::MbxIocb, 1, self.entry_status)?;
        m.set_handle(self.handle);
        for (n, r) in self.mb.iter().enumerate() {
            m.set_mb(n, *r);
        }
        Ok(())
    }

    /// Writes into bytes.
    pub fn emit_bytes(&self, b: &mut [u8]) -> Result<(), WireError> {
        self.emit(&mut MbxIocb::new_unchecked(b))
    }
}

impl fmt::Display for MbxIocbRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "MBX_IOCB handle={:#010x} {}",
            self.handle,
            self.to_mailboxes()
        )?;
        if !self.entry_status.is_empty() {
            write!(f, " entry_status={}", self.entry_status)?;
        }
        Ok(())
    }
}

impl Visit for MbxIocbRepr {
    fn visit(&self, v: &mut dyn FieldVisitor) {
        const N: [&str; MBX_IOCB_REGS] = [
            "mb0", "mb1", "mb2", "mb3", "mb4", "mb5", "mb6", "mb7", "mb8", "mb9", "mb10", "mb11",
            "mb12", "mb13", "mb14", "mb15", "mb16", "mb17", "mb18", "mb19", "mb20", "mb21", "mb22",
            "mb23", "mb24", "mb25", "mb26", "mb27",
        ];
        v.field("entry_type", EntryType::MbxIocb.to_value());
        v.field("entry_status", Value::U8(self.entry_status.bits()));
        v.field("handle", Value::U32(self.handle));
        for (name, r) in N.iter().zip(self.mb) {
            v.field(name, Value::U16(r));
        }
    }
}

view_display!(MbxIocb, MbxIocbRepr::parse, "MBX_IOCB");

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::NportHandle;
    use crate::value::test_util::Collect;
    use std::string::ToString;

    #[test]
    fn golden_get_port_database_via_iocb() {
        let mut b = [0u8; 64];
        b[0x00] = 0x39; // MBX_IOCB
        b[0x01] = 0x01;
        b[0x04..0x08].copy_from_slice(&[0x21, 0x00, 0x00, 0x00]); // handle
        b[0x08..0x0A].copy_from_slice(&[0x64, 0x00]); // mb0 GET_PORT_DATABASE
        b[0x0A..0x0C].copy_from_slice(&[0x81, 0x00]); // mb1 handle 0x81
        b[0x0C..0x0E].copy_from_slice(&[0x00, 0x30]); // mb2 A[31:16]
        b[0x0E..0x10].copy_from_slice(&[0x00, 0x00]); // mb3 A[15:0]
        b[0x1C..0x1E].copy_from_slice(&[0x01, 0x00]); // mb10 options
        b[0x3E..0x40].copy_from_slice(&[0x7f, 0x00]); // mb27
        let r = MbxIocbRepr::parse_bytes(&b).unwrap();
        let mut m = Mailboxes::get_port_database(NportHandle(0x81), 0x3000_0000, 0, 1);
        m.set(27, 0x7f);
        assert_eq!(r, MbxIocbRepr::from_mailboxes(0x21, &m));
        assert_eq!(r.command(), MbxCommand::GetPortDatabase);
        assert_eq!(r.to_mailboxes().dma_addr(), 0x3000_0000);
        let mut out = [0xA5u8; 64];
        r.emit_bytes(&mut out).unwrap();
        assert_eq!(out, b);
        assert_eq!(
            r.to_string(),
            "MBX_IOCB handle=0x00000021 mb0=0x0064(GET_PORT_DATABASE) mb1=0x0081 mb2=0x3000 mb10=0x0001 mb27=0x007f"
        );
        let done = MbxIocbRepr {
            mb: {
                let mut x = [0; 28];
                x[0] = 0x4000;
                x
            },
            entry_status: EntryStatus::BUSY,
            ..r
        };
        assert_eq!(done.status(), MbxStatus::CommandComplete);
        assert!(done.to_string().ends_with("entry_status=BUSY"));
        let v = MbxIocb::new_checked(&b[..]).unwrap();
        assert_eq!((v.mb(27), v.mb(28), v.entry_count()), (Some(0x7f), None, 1));
        let c = Collect::of(&r);
        c.assert_unique();
        assert_eq!(c.get("mb1"), "129");
    }
}
