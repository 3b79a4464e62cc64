//! ABTS_RECV_24XX (0x54) and ABTS_RESP_24XX (0x55): a received ABTS, the driver's BA_ACC /
//! BA_RJT answer, and the answer's completion.
//!
//! Source: reference §7.10, §7.11, §9.8, gotcha 2: these IOCBs hold the FC header and the
//! BA_ACC/BA_RJT payload **dword-swapped** (each 32-bit word little-endian). The Reprs hold
//! them in wire form ([`FcHeaderRepr`], [`BaAccRepr`], [`BaRjtRepr`]) and convert.

use core::fmt;

use crate::bytes::dword_swap;
use crate::fc::bls::{ABTS_PARAM_ABORT_SEQUENCE, BA_ACC_LEN, BaAccRepr, BaRjtRepr};
use crate::fc::header::{FC_HEADER_LEN, FCtl, FcHeaderRepr, FcType, RCtl};
use crate::iocb::{ENTRY_LEN, EntryStatus, EntryType, IocbStatus, check_entry, start_entry};
use crate::value::{FieldVisitor, Value, Visit};
use crate::{ExchangeAddr, NportHandle, WireError};

/// Offset of the dword-swapped FC header.
pub const HEADER_OFFSET: usize = 0x14;
/// Offset of the dword-swapped BA_ACC/BA_RJT payload in ABTS_RESP.
pub const PAYLOAD_OFFSET: usize = 0x2C;
/// ABTS_RESP `control_flags` B0: terminate the exchange (defined; Linux does not set it).
pub const CONTROL_FLAGS_TERMINATE: u16 = 1;
/// ABTS_RESP completion `error_subcode1`: the exchange to abort was not terminated.
pub const SUBCODE_EXCHANGE_NOT_TERMINATED: u32 = 0x1E;

fn header_from_iocb(b: &[u8]) -> Result<FcHeaderRepr, WireError> {
    let mut wire = [0u8; FC_HEADER_LEN];
    dword_swap(&b[HEADER_OFFSET..HEADER_OFFSET + FC_HEADER_LEN], &mut wire);
    FcHeaderRepr::parse_bytes(&wire)
}

fn header_to_iocb(h: &FcHeaderRepr, b: &mut [u8]) -> Result<(), WireError> {
    let mut wire = [0u8; FC_HEADER_LEN];
    h.emit_bytes(&mut wire)?;
    dword_swap(&wire, &mut b[HEADER_OFFSET..HEADER_OFFSET + FC_HEADER_LEN]);
    Ok(())
}

macro_rules! abts_view {
    ($name:ident, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone)]
        pub struct $name<T: AsRef<[u8]>> {
            buffer: T,
        }

        impl<T: AsRef<[u8]>> $name<T> {
            view_basics!($name, ENTRY_LEN);

            accessors! {
                /// 0x01.
                entry_count, set_entry_count, 0x01, u8;
                /// 0x03 raw.
                entry_status_raw, set_entry_status_raw, 0x03, u8;
                /// 0x0A.
                nport_handle, set_nport_handle, 0x0A, le16 as NportHandle;
                /// 0x0E.
                vp_index, set_vp_index, 0x0E, u8;
                /// 0x10: the ABTS exchange's firmware handle.
                exchange_addr, set_exchange_addr, 0x10, le32 as ExchangeAddr;
                /// 0x3C: exchange address of the command being aborted; 0xFFFFFFFF = unknown.
                exchange_addr_to_abort, set_exchange_addr_to_abort, 0x3C, le32 as ExchangeAddr;
            }

            /// 0x0F bits 4–7: SOF type.
            pub fn sof_type(&self) -> u8 {
                self.buffer.as_ref()[0x0F] >> 4
            }

            /// Sets 0x0F bits 4–7 (bits 0–3 cleared).
            pub fn set_sof_type(&mut self, v: u8)
            where
                T: AsMut<[u8]>,
            {
                self.buffer.as_mut()[0x0F] = (v & 0xF) << 4
            }

            /// 0x14..0x2C as stored (dword-swapped).
            pub fn header_raw(&self) -> &[u8] {
                &self.buffer.as_ref()[HEADER_OFFSET..HEADER_OFFSET + FC_HEADER_LEN]
            }

            /// The FC header converted to wire order and parsed.
            pub fn header(&self) -> Result<FcHeaderRepr, WireError> {
                header_from_iocb(self.buffer.as_ref())
            }

            /// Writes a wire-form header, dword-swapped.
            pub fn set_header(&mut self, h: &FcHeaderRepr) -> Result<(), WireError>
            where
                T: AsMut<[u8]>,
            {
                header_to_iocb(h, self.buffer.as_mut())
            }
        }
    };
}

abts_view!(AbtsRecv, "A view of an ABTS_RECV_24XX entry.");
abts_view!(
    AbtsResp,
    "A view of an ABTS_RESP_24XX entry (request or completion)."
);

impl<T: AsRef<[u8]>> AbtsResp<T> {
    accessors! {
        /// 0x04.
        handle, set_handle, 0x04, le32;
        /// 0x08 (completion): compl_status raw.
        compl_status_raw, set_compl_status_raw, 0x08, le16;
        /// 0x0C (request): B0 terminate exchange.
        control_flags, set_control_flags, 0x0C, le16;
        /// 0x34 (completion).
        error_subcode1, set_error_subcode1, 0x34, le32;
        /// 0x38 (completion).
        error_subcode2, set_error_subcode2, 0x38, le32;
    }

    /// 0x2C..0x38 (request) as stored (dword-swapped).
    pub fn payload_raw(&self) -> &[u8] {
        &self.buffer.as_ref()[PAYLOAD_OFFSET..PAYLOAD_OFFSET + BA_ACC_LEN]
    }

    /// 0x2C..0x38 converted to wire order.
    pub fn payload_wire(&self) -> [u8; BA_ACC_LEN] {
        let mut w = [0u8; BA_ACC_LEN];
        dword_swap(self.payload_raw(), &mut w);
        w
    }

    /// Writes 12 wire-order payload bytes, dword-swapped.
    pub fn set_payload_wire(&mut self, wire: &[u8; BA_ACC_LEN])
    where
        T: AsMut<[u8]>,
    {
        dword_swap(
            wire,
            &mut self.buffer.as_mut()[PAYLOAD_OFFSET..PAYLOAD_OFFSET + BA_ACC_LEN],
        )
    }
}

// ---------------------------------------------------------------------------------------------

/// A received ABTS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AbtsRecvRepr {
    /// 0x03.
    pub entry_status: EntryStatus,
    /// 0x0A.
    pub nport_handle: NportHandle,
    /// 0x0E.
    pub vp_index: u8,
    /// 0x0F bits 4–7, echoed in the response.
    pub sof_type: u8,
    /// 0x10: the ABTS exchange.
    pub exchange_addr: ExchangeAddr,
    /// 0x14: the ABTS frame header (wire form).
    pub header: FcHeaderRepr,
    /// 0x3C: the ATIO exchange address of the aborted command; 0xFFFFFFFF = unknown.
    pub exchange_addr_to_abort: ExchangeAddr,
}

impl AbtsRecvRepr {
    /// PARAMETER B0: abort the sequence (true) or the exchange (false).
    pub const fn abort_sequence(&self) -> bool {
        self.header.parameter & ABTS_PARAM_ABORT_SEQUENCE != 0
    }

    /// Parses an entry.
    pub fn parse<T: AsRef<[u8]>>(a: &AbtsRecv<T>) -> Result<AbtsRecvRepr, WireError> {
        check_entry(a.buffer.as_ref(), EntryType::AbtsRecv)?;
        Ok(AbtsRecvRepr {
            entry_status: EntryStatus::from_bits_retain(a.entry_status_raw()),
            nport_handle: a.nport_handle(),
            vp_index: a.vp_index(),
            sof_type: a.sof_type(),
            exchange_addr: a.exchange_addr(),
            header: a.header()?,
            exchange_addr_to_abort: a.exchange_addr_to_abort(),
        })
    }

    /// Parses bytes (never panics).
    pub fn parse_bytes(b: &[u8]) -> Result<AbtsRecvRepr, WireError> {
        AbtsRecvRepr::parse(&AbtsRecv::new_checked(b)?)
    }

    /// 64.
    pub const fn buffer_len(&self) -> usize {
        ENTRY_LEN
    }

    /// Writes the 64 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, a: &mut AbtsRecv<T>) -> Result<(), WireError> {
        start_entry(a.buffer.as_mut(), EntryType::AbtsRecv, 1, self.entry_status)?;
        a.set_nport_handle(self.nport_handle);
        a.set_vp_index(self.vp_index);
        a.set_sof_type(self.sof_type);
        a.set_exchange_addr(self.exchange_addr);
        a.set_header(&self.header)?;
        a.set_exchange_addr_to_abort(self.exchange_addr_to_abort);
        Ok(())
    }

    /// Writes into bytes.
    pub fn emit_bytes(&self, b: &mut [u8]) -> Result<(), WireError> {
        self.emit(&mut AbtsRecv::new_unchecked(b))
    }
}

fn fmt_ids(f: &mut fmt::Formatter<'_>, h: &FcHeaderRepr) -> fmt::Result {
    write!(
        f,
        "s_id={} d_id={} ox_id={} rx_id={}",
        h.s_id, h.d_id, h.ox_id, h.rx_id
    )
}

impl fmt::Display for AbtsRecvRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ABTS_RECV xchg={} abort={} ",
            self.exchange_addr, self.exchange_addr_to_abort
        )?;
        fmt_ids(f, &self.header)?;
        write!(
            f,
            " nport={} {}",
            self.nport_handle,
            if self.abort_sequence() {
                "ABORT_SEQUENCE"
            } else {
                "ABORT_EXCHANGE"
            }
        )?;
        if self.vp_index != 0 {
            write!(f, " vp={}", self.vp_index)?;
        }
        if !self.entry_status.is_empty() {
            write!(f, " entry_status={}", self.entry_status)?;
        }
        Ok(())
    }
}

impl Visit for AbtsRecvRepr {
    fn visit(&self, v: &mut dyn FieldVisitor) {
        v.field("entry_type", EntryType::AbtsRecv.to_value());
        v.field("entry_status", Value::U8(self.entry_status.bits()));
        v.field("nport_handle", Value::U16(self.nport_handle.0));
        v.field("vp_index", Value::U8(self.vp_index));
        v.field("sof_type", Value::U8(self.sof_type));
        v.field("exchange_addr", Value::U32(self.exchange_addr.0));
        self.header.visit_fields(v);
        v.field(
            "exchange_addr_to_abort",
            Value::U32(self.exchange_addr_to_abort.0),
        );
    }
}

// ---------------------------------------------------------------------------------------------

/// The BLS answer an ABTS_RESP carries (chosen by its header's R_CTL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BlsPayload {
    /// R_CTL 0x84.
    BaAcc(BaAccRepr),
    /// R_CTL 0x85.
    BaRjt(BaRjtRepr),
}

/// An ABTS_RESP request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AbtsRespRepr {
    /// 0x04: skip handle, or a real one to match the completion to the TM.
    pub handle: u32,
    /// 0x0A.
    pub nport_handle: NportHandle,
    /// 0x0C: B0 terminate exchange.
    pub control_flags: u16,
    /// 0x0E.
    pub vp_index: u8,
    /// 0x0F bits 4–7.
    pub sof_type: u8,
    /// 0x10: the ABTS exchange (from ABTS_RECV).
    pub exchange_addr: ExchangeAddr,
    /// 0x14: the response header (wire form); its R_CTL must match the payload.
    pub header: FcHeaderRepr,
    /// 0x2C.
    pub payload: BlsPayload,
    /// 0x3C.
    pub exchange_addr_to_abort: ExchangeAddr,
}

impl AbtsRespRepr {
    fn answer(recv: &AbtsRecvRepr, handle: u32, r_ctl: RCtl, payload: BlsPayload) -> AbtsRespRepr {
        AbtsRespRepr {
            handle,
            nport_handle: recv.nport_handle,
            control_flags: 0,
            vp_index: recv.vp_index,
            sof_type: recv.sof_type,
            exchange_addr: recv.exchange_addr,
            header: FcHeaderRepr {
                r_ctl,
                d_id: recv.header.s_id,
                s_id: recv.header.d_id,
                fc_type: FcType::Bls,
                f_ctl: FCtl::BLS_RESPONSE,
                ..recv.header
            },
            payload,
            exchange_addr_to_abort: recv.exchange_addr_to_abort,
        }
    }

    /// BA_ACC for `recv` as Linux builds it (§9.8 step 4): the ABTS header with S_ID/D_ID
    /// swapped, R_CTL 0x84, F_CTL 0x990000; payload OX_ID/RX_ID from the ABTS, SEQ_ID
    /// invalid, SEQ_CNT 0x0000–0xFFFF.
    pub fn accept(recv: &AbtsRecvRepr, handle: u32) -> AbtsRespRepr {
        let acc = BaAccRepr::for_abts(recv.header.ox_id, recv.header.rx_id);
        Self::answer(recv, handle, RCtl::BaAcc, BlsPayload::BaAcc(acc))
    }

    /// BA_RJT for `recv` (§9.8 step 2: reason 0x09 for an unmatched ABTS).
    pub fn reject(recv: &AbtsRecvRepr, handle: u32, rjt: BaRjtRepr) -> AbtsRespRepr {
        Self::answer(recv, handle, RCtl::BaRjt, BlsPayload::BaRjt(rjt))
    }

    /// Parses a request. A header R_CTL other than BA_ACC/BA_RJT is malformed.
    pub fn parse<T: AsRef<[u8]>>(a: &AbtsResp<T>) -> Result<AbtsRespRepr, WireError> {
        check_entry(a.buffer.as_ref(), EntryType::AbtsResp)?;
        let header = a.header()?;
        let wire = a.payload_wire();
        let payload = match header.r_ctl {
            RCtl::BaAcc => BlsPayload::BaAcc(BaAccRepr::parse(&wire)?),
            RCtl::BaRjt => BlsPayload::BaRjt(BaRjtRepr::parse(&wire)?),
            _ => {
                return Err(WireError::Malformed(
                    "ABTS_RESP header R_CTL is neither BA_ACC nor BA_RJT",
                ));
            }
        };
        Ok(AbtsRespRepr {
            handle: a.handle(),
            nport_handle: a.nport_handle(),
            control_flags: a.control_flags(),
            vp_index: a.vp_index(),
            sof_type: a.sof_type(),
            exchange_addr: a.exchange_addr(),
            header,
            payload,
            exchange_addr_to_abort: a.exchange_addr_to_abort(),
        })
    }

    /// Parses bytes (never panics).
    pub fn parse_bytes(b: &[u8]) -> Result<AbtsRespRepr, WireError> {
        AbtsRespRepr::parse(&AbtsResp::new_checked(b)?)
    }

    /// 64.
    pub const fn buffer_len(&self) -> usize {
        ENTRY_LEN
    }

    /// Writes the 64 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, a: &mut AbtsResp<T>) -> Result<(), WireError> {
        start_entry(
            a.buffer.as_mut(),
            EntryType::AbtsResp,
            1,
            EntryStatus::empty(),
        )?;
        a.set_handle(self.handle);
        a.set_nport_handle(self.nport_handle);
        a.set_control_flags(self.control_flags);
        a.set_vp_index(self.vp_index);
        a.set_sof_type(self.sof_type);
        a.set_exchange_addr(self.exchange_addr);
        a.set_header(&self.header)?;
        let mut wire = [0u8; BA_ACC_LEN];
        match &self.payload {
            BlsPayload::BaAcc(p) => p.emit(&mut wire)?,
            BlsPayload::BaRjt(p) => p.emit(&mut wire)?,
        }
        a.set_payload_wire(&wire);
        a.set_exchange_addr_to_abort(self.exchange_addr_to_abort);
        Ok(())
    }

    /// Writes into bytes.
    pub fn emit_bytes(&self, b: &mut [u8]) -> Result<(), WireError> {
        self.emit(&mut AbtsResp::new_unchecked(b))
    }
}

impl fmt::Display for AbtsRespRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ABTS_RESP handle={:#010x} xchg={} abort={} ",
            self.handle, self.exchange_addr, self.exchange_addr_to_abort
        )?;
        fmt_ids(f, &self.header)?;
        match &self.payload {
            BlsPayload::BaAcc(p) => write!(f, " {p}")?,
            BlsPayload::BaRjt(p) => write!(f, " {p}")?,
        }
        if self.control_flags & CONTROL_FLAGS_TERMINATE != 0 {
            f.write_str(" TERMINATE")?;
        }
        Ok(())
    }
}

impl Visit for AbtsRespRepr {
    fn visit(&self, v: &mut dyn FieldVisitor) {
        v.field("entry_type", EntryType::AbtsResp.to_value());
        v.field("handle", Value::U32(self.handle));
        v.field("nport_handle", Value::U16(self.nport_handle.0));
        v.field("control_flags", Value::U16(self.control_flags));
        v.field("vp_index", Value::U8(self.vp_index));
        v.field("sof_type", Value::U8(self.sof_type));
        v.field("exchange_addr", Value::U32(self.exchange_addr.0));
        self.header.visit_fields(v);
        match &self.payload {
            BlsPayload::BaAcc(p) => p.visit(v),
            BlsPayload::BaRjt(p) => p.visit(v),
        }
        v.field(
            "exchange_addr_to_abort",
            Value::U32(self.exchange_addr_to_abort.0),
        );
    }
}

/// An ABTS_RESP completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AbtsRespCompletionRepr {
    /// 0x03.
    pub entry_status: EntryStatus,
    /// 0x04.
    pub handle: u32,
    /// 0x08: 0 success, 0x31 error with subcodes.
    pub compl_status: IocbStatus,
    /// 0x0A.
    pub nport_handle: NportHandle,
    /// 0x0F bits 4–7.
    pub sof_type: u8,
    /// 0x10.
    pub exchange_addr: ExchangeAddr,
    /// 0x14: the header as sent (IDs already swapped).
    pub header: FcHeaderRepr,
    /// 0x34: 0x1E = the exchange to abort was not terminated.
    pub error_subcode1: u32,
    /// 0x38.
    pub error_subcode2: u32,
    /// 0x3C.
    pub exchange_addr_to_abort: ExchangeAddr,
}

impl AbtsRespCompletionRepr {
    /// What the firmware returns for `req` with `compl_status` and the subcodes.
    pub fn for_request(
        req: &AbtsRespRepr,
        compl_status: IocbStatus,
        error_subcode1: u32,
        error_subcode2: u32,
    ) -> Self {
        AbtsRespCompletionRepr {
            entry_status: EntryStatus::empty(),
            handle: req.handle,
            compl_status,
            nport_handle: req.nport_handle,
            sof_type: req.sof_type,
            exchange_addr: req.exchange_addr,
            header: req.header,
            error_subcode1,
            error_subcode2,
            exchange_addr_to_abort: req.exchange_addr_to_abort,
        }
    }

    /// The §9.8 step-5 case: error with subcode1 0x1E, subcode2 0 — terminate the exchange,
    /// then re-send the ABTS_RESP without swapping the IDs again.
    pub fn exchange_not_terminated(&self) -> bool {
        self.compl_status == IocbStatus::IocbError
            && self.error_subcode1 == SUBCODE_EXCHANGE_NOT_TERMINATED
            && self.error_subcode2 == 0
    }

    /// Parses a completion.
    pub fn parse<T: AsRef<[u8]>>(a: &AbtsResp<T>) -> Result<Self, WireError> {
        check_entry(a.buffer.as_ref(), EntryType::AbtsResp)?;
        Ok(AbtsRespCompletionRepr {
            entry_status: EntryStatus::from_bits_retain(a.entry_status_raw()),
            handle: a.handle(),
            compl_status: IocbStatus::from(a.compl_status_raw()),
            nport_handle: a.nport_handle(),
            sof_type: a.sof_type(),
            exchange_addr: a.exchange_addr(),
            header: a.header()?,
            error_subcode1: a.error_subcode1(),
            error_subcode2: a.error_subcode2(),
            exchange_addr_to_abort: a.exchange_addr_to_abort(),
        })
    }

    /// Parses bytes (never panics).
    pub fn parse_bytes(b: &[u8]) -> Result<Self, WireError> {
        Self::parse(&AbtsResp::new_checked(b)?)
    }

    /// 64.
    pub const fn buffer_len(&self) -> usize {
        ENTRY_LEN
    }

    /// Writes the 64 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, a: &mut AbtsResp<T>) -> Result<(), WireError> {
        start_entry(a.buffer.as_mut(), EntryType::AbtsResp, 1, self.entry_status)?;
        a.set_handle(self.handle);
        a.set_compl_status_raw(self.compl_status.into());
        a.set_nport_handle(self.nport_handle);
        a.set_sof_type(self.sof_type);
        a.set_exchange_addr(self.exchange_addr);
        a.set_header(&self.header)?;
        a.set_error_subcode1(self.error_subcode1);
        a.set_error_subcode2(self.error_subcode2);
        a.set_exchange_addr_to_abort(self.exchange_addr_to_abort);
        Ok(())
    }

    /// Writes into bytes.
    pub fn emit_bytes(&self, b: &mut [u8]) -> Result<(), WireError> {
        self.emit(&mut AbtsResp::new_unchecked(b))
    }
}

impl fmt::Display for AbtsRespCompletionRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ABTS_RESP-DONE handle={:#010x} status={} xchg={} abort={} ",
            self.handle, self.compl_status, self.exchange_addr, self.exchange_addr_to_abort
        )?;
        fmt_ids(f, &self.header)?;
        write!(f, " {}", self.header.r_ctl)?;
        if self.error_subcode1 != 0 || self.error_subcode2 != 0 {
            write!(
                f,
                " subcodes={:#x}/{:#x}",
                self.error_subcode1, self.error_subcode2
            )?;
        }
        if !self.entry_status.is_empty() {
            write!(f, " entry_status={}", self.entry_status)?;
        }
        Ok(())
    }
}

impl Visit for AbtsRespCompletionRepr {
    fn visit(&self, v: &mut dyn FieldVisitor) {
        v.field("entry_type", EntryType::AbtsResp.to_value());
        v.field("entry_status", Value::U8(self.entry_status.bits()));
        v.field("handle", Value::U32(self.handle));
        v.field("compl_status", self.compl_status.to_value());
        v.field("nport_handle", Value::U16(self.nport_handle.0));
        v.field("sof_type", Value::U8(self.sof_type));
        v.field("exchange_addr", Value::U32(self.exchange_addr.0));
        self.header.visit_fields(v);
        v.field("error_subcode1", Value::U32(self.error_subcode1));
        v.field("error_subcode2", Value::U32(self.error_subcode2));
        v.field(
            "exchange_addr_to_abort",
            Value::U32(self.exchange_addr_to_abort.0),
        );
    }
}

view_display!(AbtsRecv, AbtsRecvRepr::parse, "ABTS_RECV");
// A view displays as a request.
view_display!(AbtsResp, AbtsRespRepr::parse, "ABTS_RESP");

#[cfg(test)]
pub(crate) mod tests {
    extern crate std;
    use super::*;
    use crate::fc::bls::{BaRjtExplanation, BaRjtReason};
    use crate::value::test_util::Collect;
    use crate::{OxId, PortId, RxId};
    use std::string::ToString;

    /// ABTS for OX_ID 0x1234 from 010203 to 0a0b0c, by hand from reference §7.10
    /// (each header dword stored little-endian).
    pub(crate) fn recv_bytes() -> [u8; 64] {
        let mut b = [0u8; 64];
        b[0x00] = 0x54; // ABTS_RECV
        b[0x01] = 0x01;
        b[0x0A..0x0C].copy_from_slice(&[0x01, 0x00]); // nport_handle 1
        b[0x0E] = 0x00; // vp_index
        b[0x0F] = 0x50; // SOF type 5 in bits 4-7
        b[0x10..0x14].copy_from_slice(&[0x00, 0x20, 0x00, 0x00]); // exchange 0x2000
        b[0x14..0x18].copy_from_slice(&[0x0c, 0x0b, 0x0a, 0x81]); // D_ID (al_pa, area, domain), R_CTL
        b[0x18..0x1C].copy_from_slice(&[0x03, 0x02, 0x01, 0x00]); // S_ID LE, CS_CTL
        b[0x1C..0x20].copy_from_slice(&[0x00, 0x00, 0x29, 0x00]); // F_CTL 0x290000 LE, TYPE BLS
        b[0x20..0x24].copy_from_slice(&[0x00, 0x00, 0x00, 0x01]); // SEQ_CNT 0, DF_CTL 0, SEQ_ID 1
        b[0x24..0x28].copy_from_slice(&[0xff, 0xff, 0x34, 0x12]); // RX_ID 0xffff, OX_ID 0x1234
        b[0x28..0x2C].copy_from_slice(&[0x00, 0x00, 0x00, 0x00]); // PARAMETER: abort exchange
        b[0x3C..0x40].copy_from_slice(&[0x23, 0x01, 0x00, 0x00]); // exchange to abort 0x123
        b
    }

    pub(crate) fn recv() -> AbtsRecvRepr {
        AbtsRecvRepr {
            entry_status: EntryStatus::empty(),
            nport_handle: NportHandle(1),
            vp_index: 0,
            sof_type: 5,
            exchange_addr: ExchangeAddr(0x2000),
            header: FcHeaderRepr {
                seq_id: 1,
                ..FcHeaderRepr::new(
                    RCtl::Abts,
                    FcType::Bls,
                    PortId::new(0x0a0b0c),
                    PortId::new(0x010203),
                    FCtl::FCP_CMND,
                    OxId(0x1234),
                )
            },
            exchange_addr_to_abort: ExchangeAddr(0x123),
        }
    }

    #[test]
    fn golden_abts_recv() {
        let b = recv_bytes();
        let r = AbtsRecvRepr::parse_bytes(&b).unwrap();
        assert_eq!(r, recv());
        assert!(!r.abort_sequence());
        let mut out = [0xA5u8; 64];
        r.emit_bytes(&mut out).unwrap();
        assert_eq!(out, b);
        assert_eq!(
            r.to_string(),
            "ABTS_RECV xchg=0x00002000 abort=0x00000123 s_id=010203 d_id=0a0b0c ox_id=0x1234 rx_id=0xffff nport=0x0001 ABORT_EXCHANGE"
        );
        let v = AbtsRecv::new_checked(&b[..]).unwrap();
        assert_eq!(
            (v.sof_type(), v.entry_count(), v.header_raw()[3]),
            (5, 1, 0x81)
        );
        let c = Collect::of(&r);
        c.assert_unique();
        assert_eq!(c.get("s_id"), "010203");
        let seq = AbtsRecvRepr {
            header: FcHeaderRepr {
                parameter: 1,
                ..r.header
            },
            vp_index: 1,
            entry_status: EntryStatus::BUSY,
            ..r
        };
        assert!(seq.abort_sequence());
        assert!(
            seq.to_string()
                .ends_with("ABORT_SEQUENCE vp=1 entry_status=BUSY")
        );
    }

    /// The BA_ACC answer, by hand from §7.11.
    fn acc_bytes() -> [u8; 64] {
        let mut b = [0u8; 64];
        b[0x00] = 0x55; // ABTS_RESP
        b[0x01] = 0x01;
        b[0x04..0x08].copy_from_slice(&[0x09, 0x00, 0x00, 0x20]); // handle 0x20000009
        b[0x0A..0x0C].copy_from_slice(&[0x01, 0x00]); // nport_handle
        b[0x0F] = 0x50; // SOF type
        b[0x10..0x14].copy_from_slice(&[0x00, 0x20, 0x00, 0x00]); // exchange
        b[0x14..0x18].copy_from_slice(&[0x03, 0x02, 0x01, 0x84]); // D_ID = ABTS S_ID, R_CTL BA_ACC
        b[0x18..0x1C].copy_from_slice(&[0x0c, 0x0b, 0x0a, 0x00]); // S_ID = ABTS D_ID
        b[0x1C..0x20].copy_from_slice(&[0x00, 0x00, 0x99, 0x00]); // F_CTL 0x990000 (bytes 00 00 99), TYPE 0
        b[0x20..0x24].copy_from_slice(&[0x00, 0x00, 0x00, 0x01]); // SEQ_CNT, DF_CTL, SEQ_ID 1
        b[0x24..0x28].copy_from_slice(&[0xff, 0xff, 0x34, 0x12]); // RX_ID, OX_ID
        b[0x2C..0x30].copy_from_slice(&[0x00, 0x00, 0x00, 0x00]); // reserved, SEQ_ID, validity 0x00
        b[0x30..0x34].copy_from_slice(&[0xff, 0xff, 0x34, 0x12]); // RX_ID, OX_ID
        b[0x34..0x38].copy_from_slice(&[0xff, 0xff, 0x00, 0x00]); // high SEQ_CNT 0xffff, low 0
        b[0x3C..0x40].copy_from_slice(&[0x23, 0x01, 0x00, 0x00]); // exchange to abort
        b
    }

    #[test]
    fn golden_ba_acc_response() {
        let want = AbtsRespRepr::accept(&recv(), 0x2000_0009);
        assert_eq!(AbtsRespRepr::parse_bytes(&acc_bytes()).unwrap(), want);
        let mut out = [0xA5u8; 64];
        want.emit_bytes(&mut out).unwrap();
        assert_eq!(out, acc_bytes());
        let BlsPayload::BaAcc(p) = want.payload else {
            panic!()
        };
        assert_eq!(
            (p.ox_id, p.rx_id, p.high_seq_cnt),
            (OxId(0x1234), RxId(0xffff), 0xffff)
        );
        assert_eq!(
            want.to_string(),
            "ABTS_RESP handle=0x20000009 xchg=0x00002000 abort=0x00000123 s_id=0a0b0c d_id=010203 ox_id=0x1234 rx_id=0xffff BA_ACC ox_id=0x1234 rx_id=0xffff seq_cnt=0-65535"
        );
        let ab = acc_bytes();
        let v = AbtsResp::new_checked(&ab[..]).unwrap();
        assert_eq!(v.payload_raw()[..4], [0, 0, 0, 0]);
        assert_eq!(v.payload_wire()[4..6], [0x12, 0x34]);
        let c = Collect::of(&want);
        c.assert_unique();
        assert_eq!(c.get("payload_ox_id"), "4660");
    }

    #[test]
    fn golden_ba_rjt_response() {
        let rjt = BaRjtRepr {
            reason: BaRjtReason::UnableToPerform,
            explanation: BaRjtExplanation::InvalidOxRxId,
            vendor: 0,
        };
        let want = AbtsRespRepr::reject(&recv(), 0x0FFF_FFFF, rjt);
        let mut b = acc_bytes();
        b[0x04..0x08].copy_from_slice(&[0xff, 0xff, 0xff, 0x0f]);
        b[0x17] = 0x85; // R_CTL BA_RJT
        b[0x2C..0x38].fill(0);
        b[0x2C..0x30].copy_from_slice(&[0x00, 0x03, 0x09, 0x00]); // vendor, explanation, reason, reserved
        assert_eq!(AbtsRespRepr::parse_bytes(&b).unwrap(), want);
        let mut out = [0xA5u8; 64];
        want.emit_bytes(&mut out).unwrap();
        assert_eq!(out, b);
        assert!(
            want.to_string()
                .ends_with("BA_RJT reason=UNABLE_TO_PERFORM expl=INVALID_OX_RX_ID")
        );
        let term = AbtsRespRepr {
            control_flags: CONTROL_FLAGS_TERMINATE,
            ..want
        };
        assert!(term.to_string().ends_with(" TERMINATE"));
        let mut bad = b;
        bad[0x17] = 0x81;
        assert!(AbtsRespRepr::parse_bytes(&bad).is_err());
    }

    #[test]
    fn golden_response_completion() {
        let req = AbtsRespRepr::accept(&recv(), 0x2000_0009);
        let mut b = acc_bytes();
        b[0x08..0x0A].copy_from_slice(&[0x31, 0x00]); // compl_status error
        b[0x2C..0x34].fill(0); // reserved in the completion
        b[0x34..0x38].copy_from_slice(&[0x1e, 0x00, 0x00, 0x00]); // subcode1
        b[0x38..0x3C].copy_from_slice(&[0x00, 0x00, 0x00, 0x00]); // subcode2
        let r = AbtsRespCompletionRepr::parse_bytes(&b).unwrap();
        assert_eq!(
            r,
            AbtsRespCompletionRepr::for_request(&req, IocbStatus::IocbError, 0x1E, 0)
        );
        assert!(r.exchange_not_terminated());
        let mut out = [0xA5u8; 64];
        r.emit_bytes(&mut out).unwrap();
        assert_eq!(out, b);
        assert_eq!(
            r.to_string(),
            "ABTS_RESP-DONE handle=0x20000009 status=IOCB_ERROR xchg=0x00002000 abort=0x00000123 s_id=0a0b0c d_id=010203 ox_id=0x1234 rx_id=0xffff BA_ACC subcodes=0x1e/0x0"
        );
        let ok = AbtsRespCompletionRepr::for_request(&req, IocbStatus::Complete, 0, 0);
        assert!(!ok.exchange_not_terminated());
        let v = AbtsResp::new_checked(&b[..]).unwrap();
        assert_eq!(
            (
                v.error_subcode1(),
                v.error_subcode2(),
                v.compl_status_raw(),
                v.control_flags()
            ),
            (0x1E, 0, 0x31, 0)
        );
        let e = AbtsRespCompletionRepr {
            entry_status: EntryStatus::DMA_ERROR,
            ..ok
        };
        assert!(e.to_string().ends_with("entry_status=DMA_ERROR"));
        Collect::of(&r).assert_unique();
        assert_eq!(
            (r.buffer_len(), req.buffer_len(), recv().buffer_len()),
            (64, 64, 64)
        );
    }
}
