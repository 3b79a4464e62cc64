//! CTIO_CRC2 (0x7A): the T10-PI variant of CTIO7 (driver → firmware) and its completion.
//!
//! Source: reference §7.7. The request matches CTIO7 mode 0 up to 0x33, then points at a CRC
//! context in host memory (not decoded here) instead of a DSD.

use core::fmt;

use crate::iocb::ctio7::{Ctio7Flags, CtioStatus, ScsiStatusWord};
use crate::iocb::{ENTRY_LEN, EntryStatus, EntryType, check_entry, start_entry};
use crate::value::{FieldVisitor, Value, Visit};
use crate::{ExchangeAddr, HexBytes, NportHandle, OxId, PortId, WireError};

/// `add_flags` B3: the DSD list includes DIF DSDs.
pub const ADD_FLAGS_DIF_DSD_ENABLE: u8 = 1 << 3;
/// Completion `state_flags` B4: DIF chopped.
pub const STATE_FLAGS_DIF_CHOPPED: u16 = 1 << 4;

/// A view of a CTIO_CRC2 (request or completion).
#[derive(Debug, Clone)]
pub struct CtioCrc2<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> CtioCrc2<T> {
    view_basics!(CtioCrc2, ENTRY_LEN);

    accessors! {
        /// 0x01.
        entry_count, set_entry_count, 0x01, u8;
        /// 0x03.
        entry_status_raw, set_entry_status_raw, 0x03, u8;
        /// 0x04.
        handle, set_handle, 0x04, le32;
        /// 0x08 (request).
        nport_handle, set_nport_handle, 0x08, le16 as NportHandle;
        /// 0x08 (completion) raw status.
        status_raw, set_status_raw, 0x08, le16;
        /// 0x0A.
        timeout, set_timeout, 0x0A, le16;
        /// 0x0C.
        dseg_count, set_dseg_count, 0x0C, le16;
        /// 0x0E (request).
        vp_index, set_vp_index, 0x0E, u8;
        /// 0x0F (request): B3 = DIF DSD list enable.
        add_flags, set_add_flags, 0x0F, u8;
        /// 0x10 (request): initiator port id, little-endian.
        initiator_id, set_initiator_id, 0x10, port_le;
        /// 0x12 (completion): B4 = DIF chopped.
        state_flags, set_state_flags, 0x12, le16;
        /// 0x14.
        exchange_addr, set_exchange_addr, 0x14, le32 as ExchangeAddr;
        /// 0x1A raw (CTIO7 flag values).
        flags_raw, set_flags_raw, 0x1A, le16;
        /// 0x1C (request: residual; completion: residual / transfer length).
        residual, set_residual, 0x1C, le32;
        /// 0x20.
        ox_id, set_ox_id, 0x20, le16 as OxId;
        /// 0x22 (request) raw.
        scsi_status_raw, set_scsi_status_raw, 0x22, le16;
        /// 0x24 (request).
        relative_offset, set_relative_offset, 0x24, le32;
        /// 0x2C (request): total FC transfer length.
        transfer_length, set_transfer_length, 0x2C, le32;
        /// 0x2E (completion): reported runt block guard.
        runt_guard, set_runt_guard, 0x2E, le16;
        /// 0x34 (request): CRC context address.
        crc_context_address, set_crc_context_address, 0x34, le64;
        /// 0x3C (request): CRC context length.
        crc_context_len, set_crc_context_len, 0x3C, le16;
    }

    /// 0x30 (completion): actual DIF.
    pub fn actual_dif(&self) -> [u8; 8] {
        crate::bytes::array(self.buffer.as_ref(), 0x30)
    }

    /// 0x38 (completion): expected DIF.
    pub fn expected_dif(&self) -> [u8; 8] {
        crate::bytes::array(self.buffer.as_ref(), 0x38)
    }

    /// Sets 0x30.
    pub fn set_actual_dif(&mut self, v: [u8; 8])
    where
        T: AsMut<[u8]>,
    {
        self.buffer.as_mut()[0x30..0x38].copy_from_slice(&v)
    }

    /// Sets 0x38.
    pub fn set_expected_dif(&mut self, v: [u8; 8])
    where
        T: AsMut<[u8]>,
    {
        self.buffer.as_mut()[0x38..0x40].copy_from_slice(&v)
    }
}

/// A CTIO_CRC2 request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CtioCrc2Repr {
    /// 0x01.
    pub entry_count: u8,
    /// 0x04.
    pub handle: u32,
    /// 0x08.
    pub nport_handle: NportHandle,
    /// 0x0A.
    pub timeout: u16,
    /// 0x0C.
    pub dseg_count: u16,
    /// 0x0E.
    pub vp_index: u8,
    /// 0x0F.
    pub add_flags: u8,
    /// 0x10.
    pub initiator_id: PortId,
    /// 0x14.
    pub exchange_addr: ExchangeAddr,
    /// Flags bits 9–12.
    pub attr: u8,
    /// 0x1A without the attr bits (mode bits kept as given).
    pub flags: Ctio7Flags,
    /// 0x1C.
    pub residual: u32,
    /// 0x20.
    pub ox_id: OxId,
    /// 0x22.
    pub scsi_status: ScsiStatusWord,
    /// 0x24.
    pub relative_offset: u32,
    /// 0x2C.
    pub transfer_length: u32,
    /// 0x34.
    pub crc_context_address: u64,
    /// 0x3C.
    pub crc_context_len: u16,
}

impl CtioCrc2Repr {
    /// Parses a request.
    pub fn parse<T: AsRef<[u8]>>(c: &CtioCrc2<T>) -> Result<CtioCrc2Repr, WireError> {
        check_entry(c.buffer.as_ref(), EntryType::CtioCrc2)?;
        let flags = Ctio7Flags::from_bits_retain(c.flags_raw());
        Ok(CtioCrc2Repr {
            entry_count: c.entry_count(),
            handle: c.handle(),
            nport_handle: c.nport_handle(),
            timeout: c.timeout(),
            dseg_count: c.dseg_count(),
            vp_index: c.vp_index(),
            add_flags: c.add_flags(),
            initiator_id: c.initiator_id(),
            exchange_addr: c.exchange_addr(),
            attr: flags.attr(),
            flags: Ctio7Flags::from_bits_retain(flags.bits() & !Ctio7Flags::ATTR_MASK),
            residual: c.residual(),
            ox_id: c.ox_id(),
            scsi_status: ScsiStatusWord::from_u16(c.scsi_status_raw()),
            relative_offset: c.relative_offset(),
            transfer_length: c.transfer_length(),
            crc_context_address: c.crc_context_address(),
            crc_context_len: c.crc_context_len(),
        })
    }

    /// Parses bytes (never panics).
    pub fn parse_bytes(b: &[u8]) -> Result<CtioCrc2Repr, WireError> {
        CtioCrc2Repr::parse(&CtioCrc2::new_checked(b)?)
    }

    /// 64.
    pub const fn buffer_len(&self) -> usize {
        ENTRY_LEN
    }

    /// The flags word as sent.
    pub fn wire_flags(&self) -> u16 {
        self.flags.bits() & !Ctio7Flags::ATTR_MASK
            | (self.attr as u16 & 0xF) << Ctio7Flags::ATTR_SHIFT
    }

    /// Writes the 64 bytes (0x3E "must be 0").
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, c: &mut CtioCrc2<T>) -> Result<(), WireError> {
        start_entry(
            c.buffer.as_mut(),
            EntryType::CtioCrc2,
            self.entry_count,
            EntryStatus::empty(),
        )?;
        c.set_handle(self.handle);
        c.set_nport_handle(self.nport_handle);
        c.set_timeout(self.timeout);
        c.set_dseg_count(self.dseg_count);
        c.set_vp_index(self.vp_index);
        c.set_add_flags(self.add_flags);
        c.set_initiator_id(self.initiator_id);
        c.set_exchange_addr(self.exchange_addr);
        c.set_flags_raw(self.wire_flags());
        c.set_residual(self.residual);
        c.set_ox_id(self.ox_id);
        c.set_scsi_status_raw(self.scsi_status.to_u16());
        c.set_relative_offset(self.relative_offset);
        c.set_transfer_length(self.transfer_length);
        c.set_crc_context_address(self.crc_context_address);
        c.set_crc_context_len(self.crc_context_len);
        Ok(())
    }

    /// Writes into bytes.
    pub fn emit_bytes(&self, b: &mut [u8]) -> Result<(), WireError> {
        self.emit(&mut CtioCrc2::new_unchecked(b))
    }
}

impl fmt::Display for CtioCrc2Repr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CTIO_CRC2 handle={:#010x} xchg={} nport={} i_id={} ox_id={} flags={} ro={} len={} crc_ctx={:#x}/{} dsegs={}",
            self.handle,
            self.exchange_addr,
            self.nport_handle,
            self.initiator_id,
            self.ox_id,
            self.flags,
            self.relative_offset,
            self.transfer_length,
            self.crc_context_address,
            self.crc_context_len,
            self.dseg_count
        )?;
        if self.flags.contains(Ctio7Flags::SEND_STATUS) {
            write!(f, " status={}", self.scsi_status)?;
        }
        if self.add_flags != 0 {
            write!(f, " add_flags={:#04x}", self.add_flags)?;
        }
        Ok(())
    }
}

impl Visit for CtioCrc2Repr {
    fn visit(&self, v: &mut dyn FieldVisitor) {
        v.field("entry_type", EntryType::CtioCrc2.to_value());
        v.field("entry_count", Value::U8(self.entry_count));
        v.field("handle", Value::U32(self.handle));
        v.field("nport_handle", Value::U16(self.nport_handle.0));
        v.field("timeout", Value::U16(self.timeout));
        v.field("dseg_count", Value::U16(self.dseg_count));
        v.field("vp_index", Value::U8(self.vp_index));
        v.field("add_flags", Value::U8(self.add_flags));
        v.field("initiator_id", Value::PortId(self.initiator_id));
        v.field("exchange_addr", Value::U32(self.exchange_addr.0));
        v.field("flags", Value::U16(self.wire_flags()));
        v.field("attr", Value::U8(self.attr));
        v.field("residual", Value::U32(self.residual));
        v.field("ox_id", Value::U16(self.ox_id.0));
        v.field("scsi_status", Value::U16(self.scsi_status.to_u16()));
        v.field("relative_offset", Value::U32(self.relative_offset));
        v.field("transfer_length", Value::U32(self.transfer_length));
        v.field("crc_context_address", Value::U64(self.crc_context_address));
        v.field("crc_context_len", Value::U16(self.crc_context_len));
    }
}

/// A CTIO_CRC2 completion (`ctio_crc_from_fw`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CtioCrc2CompletionRepr {
    /// 0x03.
    pub entry_status: EntryStatus,
    /// 0x04.
    pub handle: u32,
    /// 0x08.
    pub status: CtioStatus,
    /// 0x0A.
    pub timeout: u16,
    /// 0x0C.
    pub dseg_count: u16,
    /// 0x12.
    pub state_flags: u16,
    /// 0x14.
    pub exchange_addr: ExchangeAddr,
    /// 0x1A.
    pub flags: Ctio7Flags,
    /// 0x1C: residual / transfer length.
    pub residual: u32,
    /// 0x20.
    pub ox_id: OxId,
    /// 0x2E.
    pub runt_guard: u16,
    /// 0x30.
    pub actual_dif: [u8; 8],
    /// 0x38.
    pub expected_dif: [u8; 8],
}

impl CtioCrc2CompletionRepr {
    /// Parses a completion.
    pub fn parse<T: AsRef<[u8]>>(c: &CtioCrc2<T>) -> Result<CtioCrc2CompletionRepr, WireError> {
        check_entry(c.buffer.as_ref(), EntryType::CtioCrc2)?;
        Ok(CtioCrc2CompletionRepr {
            entry_status: EntryStatus::from_bits_retain(c.entry_status_raw()),
            handle: c.handle(),
            status: CtioStatus::from(c.status_raw()),
            timeout: c.timeout(),
            dseg_count: c.dseg_count(),
            state_flags: c.state_flags(),
            exchange_addr: c.exchange_addr(),
            flags: Ctio7Flags::from_bits_retain(c.flags_raw()),
            residual: c.residual(),
            ox_id: c.ox_id(),
            runt_guard: c.runt_guard(),
            actual_dif: c.actual_dif(),
            expected_dif: c.expected_dif(),
        })
    }

    /// Parses bytes (never panics).
    pub fn parse_bytes(b: &[u8]) -> Result<CtioCrc2CompletionRepr, WireError> {
        CtioCrc2CompletionRepr::parse(&CtioCrc2::new_checked(b)?)
    }

    /// 64.
    pub const fn buffer_len(&self) -> usize {
        ENTRY_LEN
    }

    /// Writes the 64 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, c: &mut CtioCrc2<T>) -> Result<(), WireError> {
        start_entry(c.buffer.as_mut(), EntryType::CtioCrc2, 1, self.entry_status)?;
        c.set_handle(self.handle);
        c.set_status_raw(self.status.into());
        c.set_timeout(self.timeout);
        c.set_dseg_count(self.dseg_count);
        c.set_state_flags(self.state_flags);
        c.set_exchange_addr(self.exchange_addr);
        c.set_flags_raw(self.flags.bits());
        c.set_residual(self.residual);
        c.set_ox_id(self.ox_id);
        c.set_runt_guard(self.runt_guard);
        c.set_actual_dif(self.actual_dif);
        c.set_expected_dif(self.expected_dif);
        Ok(())
    }

    /// Writes into bytes.
    pub fn emit_bytes(&self, b: &mut [u8]) -> Result<(), WireError> {
        self.emit(&mut CtioCrc2::new_unchecked(b))
    }
}

impl fmt::Display for CtioCrc2CompletionRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CTIO_CRC2-DONE handle={:#010x} xchg={} status={} ox_id={} flags={} resid={}",
            self.handle, self.exchange_addr, self.status, self.ox_id, self.flags, self.residual
        )?;
        if self.status == CtioStatus::DifError {
            write!(
                f,
                " actual_dif={} expected_dif={} runt_guard={:#06x}",
                HexBytes(&self.actual_dif),
                HexBytes(&self.expected_dif),
                self.runt_guard
            )?;
        }
        if self.state_flags != 0 {
            write!(f, " state_flags={:#06x}", self.state_flags)?;
        }
        Ok(())
    }
}

impl Visit for CtioCrc2CompletionRepr {
    fn visit(&self, v: &mut dyn FieldVisitor) {
        v.field("entry_type", EntryType::CtioCrc2.to_value());
        v.field("entry_status", Value::U8(self.entry_status.bits()));
        v.field("handle", Value::U32(self.handle));
        v.field("status", self.status.to_value());
        v.field("timeout", Value::U16(self.timeout));
        v.field("dseg_count", Value::U16(self.dseg_count));
        v.field("state_flags", Value::U16(self.state_flags));
        v.field("exchange_addr", Value::U32(self.exchange_addr.0));
        v.field("flags", Value::U16(self.flags.bits()));
        v.field("residual", Value::U32(self.residual));
        v.field("ox_id", Value::U16(self.ox_id.0));
        v.field("runt_guard", Value::U16(self.runt_guard));
        v.field("actual_dif", Value::Bytes(&self.actual_dif));
        v.field("expected_dif", Value::Bytes(&self.expected_dif));
    }
}

// A view displays as a request.
view_display!(CtioCrc2, CtioCrc2Repr::parse, "CTIO_CRC2");

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::value::test_util::Collect;
    use std::string::ToString;

    fn request_bytes() -> [u8; 64] {
        let mut b = [0u8; 64];
        b[0] = 0x7A; // CTIO_CRC2
        b[1] = 0x01;
        b[0x04..0x08].copy_from_slice(&[0x07, 0x00, 0x00, 0x20]); // handle
        b[0x08..0x0A].copy_from_slice(&[0x02, 0x00]); // nport_handle
        b[0x0A..0x0C].copy_from_slice(&[0x0a, 0x00]); // timeout
        b[0x0C..0x0E].copy_from_slice(&[0x02, 0x00]); // dseg_count
        b[0x0E] = 0x01; // vp_index
        b[0x0F] = 0x08; // add_flags DIF DSD enable
        b[0x10..0x13].copy_from_slice(&[0x03, 0x02, 0x01]); // initiator_id LE
        b[0x14..0x18].copy_from_slice(&[0x44, 0x00, 0x00, 0x00]); // exchange
        b[0x1A..0x1C].copy_from_slice(&[0x02, 0x84]); // DATA_IN | SEND_STATUS | attr 2
        b[0x20..0x22].copy_from_slice(&[0x34, 0x12]); // ox_id
        b[0x24..0x28].copy_from_slice(&[0x00, 0x02, 0x00, 0x00]); // relative_offset 512
        b[0x2C..0x30].copy_from_slice(&[0x10, 0x02, 0x00, 0x00]); // transfer_length 528
        b[0x34..0x3C].copy_from_slice(&[0x00, 0x50, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]); // ctx 0x5000
        b[0x3C..0x3E].copy_from_slice(&[0x80, 0x00]); // ctx len 128
        b
    }

    fn request() -> CtioCrc2Repr {
        CtioCrc2Repr {
            entry_count: 1,
            handle: 0x2000_0007,
            nport_handle: NportHandle(2),
            timeout: 10,
            dseg_count: 2,
            vp_index: 1,
            add_flags: ADD_FLAGS_DIF_DSD_ENABLE,
            initiator_id: PortId::new(0x010203),
            exchange_addr: ExchangeAddr(0x44),
            attr: 2,
            flags: Ctio7Flags::DATA_IN | Ctio7Flags::SEND_STATUS,
            residual: 0,
            ox_id: OxId(0x1234),
            scsi_status: ScsiStatusWord::GOOD,
            relative_offset: 512,
            transfer_length: 528,
            crc_context_address: 0x5000,
            crc_context_len: 128,
        }
    }

    #[test]
    fn golden_request() {
        let b = request_bytes();
        assert_eq!(CtioCrc2Repr::parse_bytes(&b).unwrap(), request());
        let mut out = [0xA5u8; 64];
        request().emit_bytes(&mut out).unwrap();
        assert_eq!(out, b);
        assert!(
            request()
                .to_string()
                .starts_with("CTIO_CRC2 handle=0x20000007 xchg=0x00000044")
        );
        assert!(
            request()
                .to_string()
                .ends_with("status=0x00 add_flags=0x08")
        );
        Collect::of(&request()).assert_unique();
        assert_eq!(request().buffer_len(), 64);
        let mut w = b;
        w[0] = 0x12;
        assert!(CtioCrc2Repr::parse_bytes(&w).is_err());
    }

    #[test]
    fn golden_completion() {
        let mut b = [0u8; 64];
        b[0] = 0x7A;
        b[1] = 0x01;
        b[0x04..0x08].copy_from_slice(&[0x07, 0x00, 0x00, 0x20]); // handle
        b[0x08..0x0A].copy_from_slice(&[0x0c, 0x00]); // status DIF_ERROR
        b[0x0A..0x0C].copy_from_slice(&[0x0a, 0x00]); // timeout
        b[0x0C..0x0E].copy_from_slice(&[0x02, 0x00]); // dseg_count
        b[0x12..0x14].copy_from_slice(&[0x10, 0x00]); // state_flags DIF chopped
        b[0x14..0x18].copy_from_slice(&[0x44, 0x00, 0x00, 0x00]); // exchange
        b[0x1A..0x1C].copy_from_slice(&[0x02, 0x84]); // flags echo
        b[0x1C..0x20].copy_from_slice(&[0x00, 0x02, 0x00, 0x00]); // residual 512
        b[0x20..0x22].copy_from_slice(&[0x34, 0x12]); // ox_id
        b[0x2E..0x30].copy_from_slice(&[0xcd, 0xab]); // runt guard
        b[0x30..0x38].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]); // actual DIF
        b[0x38..0x40].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 9]); // expected DIF
        let r = CtioCrc2CompletionRepr::parse_bytes(&b).unwrap();
        assert_eq!(r.status, CtioStatus::DifError);
        assert_eq!(
            (r.state_flags, r.residual, r.runt_guard),
            (STATE_FLAGS_DIF_CHOPPED, 512, 0xabcd)
        );
        assert_eq!((r.actual_dif[7], r.expected_dif[7]), (8, 9));
        assert_eq!(r.flags.attr(), 2);
        let mut out = [0xA5u8; 64];
        r.emit_bytes(&mut out).unwrap();
        assert_eq!(out, b);
        assert_eq!(
            r.to_string(),
            "CTIO_CRC2-DONE handle=0x20000007 xchg=0x00000044 status=DIF_ERROR ox_id=0x1234 flags=DATA_IN|SEND_STATUS|0x400 resid=512 actual_dif=[01 02 03 04 05 06 07 08] expected_dif=[01 02 03 04 05 06 07 09] runt_guard=0xabcd state_flags=0x0010"
        );
        Collect::of(&r).assert_unique();
        assert_eq!(r.buffer_len(), 64);
        let v = CtioCrc2::new_checked(&b[..]).unwrap();
        assert_eq!((v.entry_count(), v.entry_status_raw()), (1, 0));
    }
}
