//! NOTIFY_ACK (0x0E), 24xx layout: the driver's answer to an IMMED_NOTIFY, and the entry the
//! firmware returns for it.
//!
//! Source: reference §7.9, §9.7 (when to ack, with a real handle or the skip handle), §9.9
//! (SRR accept/reject). The firmware returns every NOTIFY_ACK on the response queue with the
//! completion status in place of the echoed notify status.

use core::fmt;

use crate::iocb::immed_notify::{ImmedNotifyRepr, NotifyFlags, NotifyStatus, SrrIu};
use crate::iocb::{ENTRY_LEN, EntryStatus, EntryType, check_entry, start_entry};
use crate::value::{FieldVisitor, Value, Visit};
use crate::{ExchangeAddr, NportHandle, WireError};

bit_flags! {
    /// NOTIFY_ACK `flags` (0x0C).
    pub struct NotifyAckFlags: u16 {
        /// B0: echo of the notify's PUREX flag (status ELS).
        const PUREX = 1 << 0;
        /// B3: terminate — reject/abort the notified exchange instead of accepting
        /// (wire effect LS_RJT vs. silent abort unconfirmed; a simulator should send LS_RJT).
        const TERMINATE = 1 << 3;
        /// B5: ack of an authenticated (FC-SP) PLOGI.
        const FC_SP = 1 << 5;
    }
}

enum_with_unknown! {
    /// Status of a returned NOTIFY_ACK (0x10 of the completion).
    pub enum NotifyAckStatus(u16) {
        /// 0x01.
        Success = 0x01 => "SUCCESS",
    }
}

/// `srr_flags`: accept the SRR.
pub const SRR_FLAGS_ACCEPT: u16 = 0;
/// `srr_flags`: reject the SRR.
pub const SRR_FLAGS_REJECT: u16 = 1;
/// `srr_reject_code`: unable to perform.
pub const SRR_REJECT_UNABLE_TO_PERFORM: u8 = 0x09;
/// `srr_reject_code_expl`: no explanation.
pub const SRR_EXPL_NONE: u8 = 0x00;
/// `srr_reject_code_expl`: invalid OX_ID/RX_ID.
pub const SRR_EXPL_INVALID_OX_RX_ID: u8 = 0x17;
/// `srr_reject_code_expl`: unable to supply data.
pub const SRR_EXPL_UNABLE_TO_SUPPLY_DATA: u8 = 0x2A;

/// A view of a NOTIFY_ACK (request or completion).
#[derive(Debug, Clone)]
pub struct NotifyAck<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> NotifyAck<T> {
    view_basics!(NotifyAck, ENTRY_LEN);

    accessors! {
        /// 0x01.
        entry_count, set_entry_count, 0x01, u8;
        /// 0x03 raw.
        entry_status_raw, set_entry_status_raw, 0x03, u8;
        /// 0x04.
        handle, set_handle, 0x04, le32;
        /// 0x08.
        nport_handle, set_nport_handle, 0x08, le16 as NportHandle;
        /// 0x0C raw.
        flags_raw, set_flags_raw, 0x0C, le16;
        /// 0x0E.
        srr_rx_id, set_srr_rx_id, 0x0E, le16;
        /// 0x10 raw: notify status echo (request) / completion status (returned entry).
        status_raw, set_status_raw, 0x10, le16;
        /// 0x12.
        status_subcode, set_status_subcode, 0x12, u8;
        /// 0x13.
        fw_handle, set_fw_handle, 0x13, u8;
        /// 0x14.
        exchange_addr, set_exchange_addr, 0x14, le32 as ExchangeAddr;
        /// 0x18.
        srr_rel_offs, set_srr_rel_offs, 0x18, le32;
        /// 0x1C raw.
        srr_ui_raw, set_srr_ui_raw, 0x1C, le16;
        /// 0x1E: 0 accept, 1 reject.
        srr_flags, set_srr_flags, 0x1E, le16;
        /// 0x33.
        vp_index, set_vp_index, 0x33, u8;
        /// 0x34.
        srr_reject_vendor_uniq, set_srr_reject_vendor_uniq, 0x34, u8;
        /// 0x35.
        srr_reject_code_expl, set_srr_reject_code_expl, 0x35, u8;
        /// 0x36.
        srr_reject_code, set_srr_reject_code, 0x36, u8;
        /// 0x3E (raw, echoed).
        ox_id, set_ox_id, 0x3E, le16;
    }

    /// 0x0C.
    pub fn flags(&self) -> NotifyAckFlags {
        NotifyAckFlags::from_bits_retain(self.flags_raw())
    }
}

/// A NOTIFY_ACK request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NotifyAckRepr {
    /// 0x04: skip handle, or a real one when the completion matters (PLOGI/PRLI/LOGO).
    pub handle: u32,
    /// 0x08.
    pub nport_handle: NportHandle,
    /// 0x0C.
    pub flags: NotifyAckFlags,
    /// 0x0E.
    pub srr_rx_id: u16,
    /// 0x10: echo of the notify status.
    pub status: NotifyStatus,
    /// 0x12.
    pub status_subcode: u8,
    /// 0x13.
    pub fw_handle: u8,
    /// 0x14.
    pub exchange_addr: ExchangeAddr,
    /// 0x18.
    pub srr_rel_offs: u32,
    /// 0x1C.
    pub srr_ui: SrrIu,
    /// 0x1E.
    pub srr_flags: u16,
    /// 0x33.
    pub vp_index: u8,
    /// 0x34.
    pub srr_reject_vendor_uniq: u8,
    /// 0x35.
    pub srr_reject_code_expl: u8,
    /// 0x36.
    pub srr_reject_code: u8,
    /// 0x3E.
    pub ox_id: u16,
}

impl NotifyAckRepr {
    /// The acknowledgement of `n`: every echo field copied; for an ELS notify the PUREX and
    /// FC-SP flags are echoed.
    pub fn ack(n: &ImmedNotifyRepr, handle: u32) -> NotifyAckRepr {
        let mut flags = NotifyAckFlags::empty();
        if n.status == NotifyStatus::Els {
            flags.set(NotifyAckFlags::PUREX, n.flags.contains(NotifyFlags::PUREX));
            flags.set(NotifyAckFlags::FC_SP, n.flags.contains(NotifyFlags::FC_SP));
        }
        NotifyAckRepr {
            handle,
            nport_handle: n.nport_handle,
            flags,
            srr_rx_id: n.srr_rx_id,
            status: n.status,
            status_subcode: n.status_subcode,
            fw_handle: n.fw_handle,
            exchange_addr: n.exchange_addr,
            srr_rel_offs: n.srr_rel_offs,
            srr_ui: n.srr_ui,
            srr_flags: SRR_FLAGS_ACCEPT,
            vp_index: n.vp_index,
            srr_reject_vendor_uniq: 0,
            srr_reject_code_expl: 0,
            srr_reject_code: 0,
            ox_id: n.ox_id,
        }
    }

    /// This ack with the TERMINATE flag: refuse the notified ELS.
    pub fn terminate(mut self) -> NotifyAckRepr {
        self.flags.insert(NotifyAckFlags::TERMINATE);
        self
    }

    /// This ack rejecting an SRR (flags 1, reason `code`, explanation `expl`).
    pub fn reject_srr(mut self, code: u8, expl: u8) -> NotifyAckRepr {
        self.srr_flags = SRR_FLAGS_REJECT;
        self.srr_reject_code = code;
        self.srr_reject_code_expl = expl;
        self
    }

    /// Parses a request.
    pub fn parse<T: AsRef<[u8]>>(n: &NotifyAck<T>) -> Result<NotifyAckRepr, WireError> {
        check_entry(n.buffer.as_ref(), EntryType::NotifyAck)?;
        Ok(NotifyAckRepr {
            handle: n.handle(),
            nport_handle: n.nport_handle(),
            flags: n.flags(),
            srr_rx_id: n.srr_rx_id(),
            status: NotifyStatus::from(n.status_raw()),
            status_subcode: n.status_subcode(),
            fw_handle: n.fw_handle(),
            exchange_addr: n.exchange_addr(),
            srr_rel_offs: n.srr_rel_offs(),
            srr_ui: SrrIu::from(n.srr_ui_raw()),
            srr_flags: n.srr_flags(),
            vp_index: n.vp_index(),
            srr_reject_vendor_uniq: n.srr_reject_vendor_uniq(),
            srr_reject_code_expl: n.srr_reject_code_expl(),
            srr_reject_code: n.srr_reject_code(),
            ox_id: n.ox_id(),
        })
    }

    /// Parses bytes (never panics).
    pub fn parse_bytes(b: &[u8]) -> Result<NotifyAckRepr, WireError> {
        NotifyAckRepr::parse(&NotifyAck::new_checked(b)?)
    }

    /// 64.
    pub const fn buffer_len(&self) -> usize {
        ENTRY_LEN
    }

    /// Writes the 64 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        n: &mut NotifyAck<T>,
    ) -> Result<(), WireError> {
        start_entry(
            n.buffer.as_mut(),
            EntryType::NotifyAck,
            1,
            EntryStatus::empty(),
        )?;
        self.write_echo(n, self.status.into());
        n.set_srr_reject_vendor_uniq(self.srr_reject_vendor_uniq);
        n.set_srr_reject_code_expl(self.srr_reject_code_expl);
        n.set_srr_reject_code(self.srr_reject_code);
        Ok(())
    }

    fn write_echo<T: AsRef<[u8]> + AsMut<[u8]>>(&self, n: &mut NotifyAck<T>, status: u16) {
        n.set_handle(self.handle);
        n.set_nport_handle(self.nport_handle);
        n.set_flags_raw(self.flags.bits());
        n.set_srr_rx_id(self.srr_rx_id);
        n.set_status_raw(status);
        n.set_status_subcode(self.status_subcode);
        n.set_fw_handle(self.fw_handle);
        n.set_exchange_addr(self.exchange_addr);
        n.set_srr_rel_offs(self.srr_rel_offs);
        n.set_srr_ui_raw(self.srr_ui.into());
        n.set_srr_flags(self.srr_flags);
        n.set_vp_index(self.vp_index);
        n.set_ox_id(self.ox_id);
    }

    /// Writes into bytes.
    pub fn emit_bytes(&self, b: &mut [u8]) -> Result<(), WireError> {
        self.emit(&mut NotifyAck::new_unchecked(b))
    }

    fn fmt_echo(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "handle={:#010x} nport={} xchg={} ox_id={:#06x}",
            self.handle, self.nport_handle, self.exchange_addr, self.ox_id
        )?;
        if !self.flags.is_empty() {
            write!(f, " flags={}", self.flags)?;
        }
        if self.srr_flags != 0 {
            write!(
                f,
                " srr_flags={} srr_reject={:#04x}/{:#04x}",
                self.srr_flags, self.srr_reject_code, self.srr_reject_code_expl
            )?;
        }
        Ok(())
    }

    fn visit_echo(&self, v: &mut dyn FieldVisitor) {
        v.field("handle", Value::U32(self.handle));
        v.field("nport_handle", Value::U16(self.nport_handle.0));
        v.field("flags", Value::U16(self.flags.bits()));
        v.field("srr_rx_id", Value::U16(self.srr_rx_id));
    }

    fn visit_rest(&self, v: &mut dyn FieldVisitor) {
        v.field("status_subcode", Value::U8(self.status_subcode));
        v.field("fw_handle", Value::U8(self.fw_handle));
        v.field("exchange_addr", Value::U32(self.exchange_addr.0));
        v.field("srr_rel_offs", Value::U32(self.srr_rel_offs));
        v.field("srr_ui", Value::U16(self.srr_ui.into()));
        v.field("srr_flags", Value::U16(self.srr_flags));
        v.field("vp_index", Value::U8(self.vp_index));
        v.field(
            "srr_reject_vendor_uniq",
            Value::U8(self.srr_reject_vendor_uniq),
        );
        v.field("srr_reject_code_expl", Value::U8(self.srr_reject_code_expl));
        v.field("srr_reject_code", Value::U8(self.srr_reject_code));
        v.field("ox_id", Value::U16(self.ox_id));
    }
}

impl fmt::Display for NotifyAckRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NOTIFY_ACK status={}", self.status)?;
        if self.status == NotifyStatus::Els {
            write!(
                f,
                "({})",
                crate::fc::els::ElsOpcode::from(self.status_subcode)
            )?;
        }
        f.write_str(" ")?;
        self.fmt_echo(f)
    }
}

impl Visit for NotifyAckRepr {
    fn visit(&self, v: &mut dyn FieldVisitor) {
        v.field("entry_type", EntryType::NotifyAck.to_value());
        self.visit_echo(v);
        v.field("status", self.status.to_value());
        self.visit_rest(v);
    }
}

/// A returned NOTIFY_ACK: the request's fields with the completion status in 0x10.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NotifyAckCompletionRepr {
    /// 0x03.
    pub entry_status: EntryStatus,
    /// 0x10: completion status (0x01 success).
    pub status: NotifyAckStatus,
    /// Every other field, as echoed (its `status` field is not used: it is what 0x10 held
    /// in the request and is not stored in the returned entry).
    pub ack: NotifyAckRepr,
}

impl NotifyAckCompletionRepr {
    /// What the firmware returns for `req`.
    pub fn for_request(req: &NotifyAckRepr, status: NotifyAckStatus) -> Self {
        NotifyAckCompletionRepr {
            entry_status: EntryStatus::empty(),
            status,
            ack: *req,
        }
    }

    /// `true` for status 0x01 and no entry_status bits.
    pub fn is_success(&self) -> bool {
        self.status == NotifyAckStatus::Success && self.entry_status.is_empty()
    }

    /// Parses a returned entry. The `ack.status` field is set to `Unknown(0)`.
    pub fn parse<T: AsRef<[u8]>>(n: &NotifyAck<T>) -> Result<Self, WireError> {
        let mut ack = NotifyAckRepr::parse(n)?;
        ack.status = NotifyStatus::Unknown(0);
        Ok(NotifyAckCompletionRepr {
            entry_status: EntryStatus::from_bits_retain(n.entry_status_raw()),
            status: NotifyAckStatus::from(n.status_raw()),
            ack,
        })
    }

    /// Parses bytes (never panics).
    pub fn parse_bytes(b: &[u8]) -> Result<Self, WireError> {
        Self::parse(&NotifyAck::new_checked(b)?)
    }

    /// 64.
    pub const fn buffer_len(&self) -> usize {
        ENTRY_LEN
    }

    /// Writes the 64 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        n: &mut NotifyAck<T>,
    ) -> Result<(), WireError> {
        self.ack.emit(n)?;
        n.set_status_raw(self.status.into());
        n.set_entry_status_raw(self.entry_status.bits());
        Ok(())
    }

    /// Writes into bytes.
    pub fn emit_bytes(&self, b: &mut [u8]) -> Result<(), WireError> {
        self.emit(&mut NotifyAck::new_unchecked(b))
    }
}

impl PartialEq<NotifyAckRepr> for NotifyAckCompletionRepr {
    /// `true` if every echoed field matches (the status fields are ignored).
    fn eq(&self, other: &NotifyAckRepr) -> bool {
        NotifyAckRepr {
            status: other.status,
            ..self.ack
        } == *other
    }
}

impl fmt::Display for NotifyAckCompletionRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NOTIFY_ACK-DONE status={} ", self.status)?;
        self.ack.fmt_echo(f)?;
        if !self.entry_status.is_empty() {
            write!(f, " entry_status={}", self.entry_status)?;
        }
        Ok(())
    }
}

impl Visit for NotifyAckCompletionRepr {
    fn visit(&self, v: &mut dyn FieldVisitor) {
        v.field("entry_type", EntryType::NotifyAck.to_value());
        v.field("entry_status", Value::U8(self.entry_status.bits()));
        self.ack.visit_echo(v);
        v.field("status", self.status.to_value());
        self.ack.visit_rest(v);
    }
}

// A view displays as a request.
view_display!(NotifyAck, NotifyAckRepr::parse, "NOTIFY_ACK");

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::iocb::handle;
    use crate::iocb::immed_notify::tests::plogi;
    use crate::value::test_util::Collect;
    use std::string::ToString;

    /// The ack of the golden PLOGI notify, by hand from reference §7.9.
    fn ack_bytes() -> [u8; 64] {
        let mut b = [0u8; 64];
        b[0x00] = 0x0E; // NOTIFY_ACK
        b[0x01] = 0x01;
        b[0x04..0x08].copy_from_slice(&[0x05, 0x00, 0x00, 0x00]); // handle 5 (real: PLOGI)
        b[0x08..0x0A].copy_from_slice(&[0x01, 0x00]); // nport_handle
        b[0x0C..0x0E].copy_from_slice(&[0x20, 0x00]); // flags FC_SP echoed
        b[0x10..0x12].copy_from_slice(&[0x46, 0x00]); // status ELS echo
        b[0x12] = 0x03; // subcode
        b[0x13] = 0x07; // fw_handle
        b[0x14..0x18].copy_from_slice(&[0x00, 0x10, 0x00, 0x00]); // exchange
        b[0x3E..0x40].copy_from_slice(&[0x55, 0x44]); // ox_id
        b
    }

    #[test]
    fn golden_ack_of_plogi() {
        let want = NotifyAckRepr::ack(&plogi(), 5);
        assert_eq!(NotifyAckRepr::parse_bytes(&ack_bytes()).unwrap(), want);
        let mut out = [0xA5u8; 64];
        want.emit_bytes(&mut out).unwrap();
        assert_eq!(out, ack_bytes());
        assert_eq!(
            want.to_string(),
            "NOTIFY_ACK status=ELS(PLOGI) handle=0x00000005 nport=0x0001 xchg=0x00001000 ox_id=0x4455 flags=FC_SP"
        );
        let c = Collect::of(&want);
        c.assert_unique();
        assert_eq!(c.get("status"), "ELS");
    }

    #[test]
    fn terminate_srr_reject_and_completion() {
        let t = NotifyAckRepr::ack(&plogi(), handle::SKIP).terminate();
        let mut b = [0u8; 64];
        t.emit_bytes(&mut b).unwrap();
        assert_eq!(b[0x0C..0x0E], [0x28, 0x00]);
        assert_eq!(b[0x04..0x08], [0xff, 0xff, 0xff, 0x0f]);
        let r = NotifyAckRepr::ack(&plogi(), 1)
            .reject_srr(SRR_REJECT_UNABLE_TO_PERFORM, SRR_EXPL_UNABLE_TO_SUPPLY_DATA);
        r.emit_bytes(&mut b).unwrap();
        assert_eq!(b[0x1E..0x20], [0x01, 0x00]);
        assert_eq!(b[0x35..0x37], [0x2a, 0x09]);
        assert_eq!(NotifyAckRepr::parse_bytes(&b).unwrap(), r);
        assert!(r.to_string().ends_with("srr_flags=1 srr_reject=0x09/0x2a"));
        // Completion: status 0x01 in 0x10.
        let done = NotifyAckCompletionRepr::for_request(
            &NotifyAckRepr::ack(&plogi(), 5),
            NotifyAckStatus::Success,
        );
        let mut out = [0xA5u8; 64];
        done.emit_bytes(&mut out).unwrap();
        let mut want = ack_bytes();
        want[0x10] = 0x01;
        assert_eq!(out, want);
        let back = NotifyAckCompletionRepr::parse_bytes(&out).unwrap();
        assert!(back.is_success());
        assert!(back == NotifyAckRepr::ack(&plogi(), 5));
        assert_eq!(back.ack.status, NotifyStatus::Unknown(0));
        assert!(
            back.to_string()
                .starts_with("NOTIFY_ACK-DONE status=SUCCESS handle=0x00000005")
        );
        let mut v = NotifyAck::new_unchecked(&mut out[..]);
        v.set_entry_status_raw(EntryStatus::INVALID_ENTRY_PARAMETER.bits());
        v.set_entry_count(1);
        let bad = NotifyAckCompletionRepr::parse_bytes(&out).unwrap();
        assert!(!bad.is_success());
        assert!(
            bad.to_string()
                .ends_with("entry_status=INVALID_ENTRY_PARAMETER")
        );
        Collect::of(&bad).assert_unique();
        assert_eq!(bad.buffer_len(), 64);
        assert!(NotifyAckRepr::parse_bytes(&[0u8; 64]).is_err());
    }
}
