//! Basic link services: ABTS, BA_ACC, BA_RJT (FC-FS), big-endian wire form.
//!
//! Source: reference §8.5. The qla ABTS_RESP IOCB carries these payloads dword-swapped
//! (§7.11, gotcha 2); [`crate::iocb::abts`] converts with [`crate::dword_swap`].

use core::fmt;

use crate::error::need;
use crate::value::{FieldVisitor, Value, Visit};
use crate::{OxId, RxId, WireError};

/// Size of a BA_ACC payload.
pub const BA_ACC_LEN: usize = 12;
/// Size of a BA_RJT payload.
pub const BA_RJT_LEN: usize = 4;
/// ABTS PARAMETER B0: 1 = abort sequence, 0 = abort exchange.
pub const ABTS_PARAM_ABORT_SEQUENCE: u32 = 1;
/// BA_ACC SEQ_ID validity byte: the SEQ_ID is valid.
pub const SEQ_ID_VALID: u8 = 0x80;

enum_with_unknown! {
    /// BA_RJT reason code.
    pub enum BaRjtReason(u8) {
        /// 0x01.
        InvalidCommand = 0x01 => "INVALID_COMMAND",
        /// 0x03.
        LogicalError = 0x03 => "LOGICAL_ERROR",
        /// 0x05.
        LogicalBusy = 0x05 => "LOGICAL_BUSY",
        /// 0x07.
        ProtocolError = 0x07 => "PROTOCOL_ERROR",
        /// 0x09: what Linux sends for an ABTS it cannot match.
        UnableToPerform = 0x09 => "UNABLE_TO_PERFORM",
        /// 0xFF.
        VendorUnique = 0xFF => "VENDOR_UNIQUE",
    }
}

enum_with_unknown! {
    /// BA_RJT reason explanation.
    pub enum BaRjtExplanation(u8) {
        /// 0x00.
        None = 0x00 => "NONE",
        /// 0x03.
        InvalidOxRxId = 0x03 => "INVALID_OX_RX_ID",
        /// 0x05.
        SequenceAborted = 0x05 => "SEQUENCE_ABORTED",
    }
}

/// A parsed BA_ACC payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BaAccRepr {
    /// Byte 0 == 0x80: `seq_id` is valid.
    pub seq_id_valid: bool,
    /// Byte 1: SEQ_ID of the last deliverable sequence.
    pub seq_id: u8,
    /// Bytes 4–5.
    pub ox_id: OxId,
    /// Bytes 6–7.
    pub rx_id: RxId,
    /// Bytes 8–9.
    pub low_seq_cnt: u16,
    /// Bytes 10–11.
    pub high_seq_cnt: u16,
}

impl BaAccRepr {
    /// The BA_ACC Linux sends for an ABTS: SEQ_ID invalid, SEQ_CNT 0x0000–0xFFFF.
    pub const fn for_abts(ox_id: OxId, rx_id: RxId) -> BaAccRepr {
        BaAccRepr {
            seq_id_valid: false,
            seq_id: 0,
            ox_id,
            rx_id,
            low_seq_cnt: 0,
            high_seq_cnt: 0xFFFF,
        }
    }

    /// Parses 12 wire bytes. A validity byte other than 0x00/0x80 is malformed.
    pub fn parse(b: &[u8]) -> Result<BaAccRepr, WireError> {
        need(BA_ACC_LEN, b.len())?;
        let seq_id_valid = match b[0] {
            SEQ_ID_VALID => true,
            0 => false,
            _ => return Err(WireError::Malformed("BA_ACC SEQ_ID validity not 0x00/0x80")),
        };
        Ok(BaAccRepr {
            seq_id_valid,
            seq_id: b[1],
            ox_id: OxId(u16::from_be_bytes([b[4], b[5]])),
            rx_id: RxId(u16::from_be_bytes([b[6], b[7]])),
            low_seq_cnt: u16::from_be_bytes([b[8], b[9]]),
            high_seq_cnt: u16::from_be_bytes([b[10], b[11]]),
        })
    }

    /// 12.
    pub const fn buffer_len(&self) -> usize {
        BA_ACC_LEN
    }

    /// Writes 12 wire bytes.
    pub fn emit(&self, b: &mut [u8]) -> Result<(), WireError> {
        need(BA_ACC_LEN, b.len())?;
        b[0] = if self.seq_id_valid { SEQ_ID_VALID } else { 0 };
        b[1] = self.seq_id;
        b[2..4].fill(0);
        b[4..6].copy_from_slice(&self.ox_id.0.to_be_bytes());
        b[6..8].copy_from_slice(&self.rx_id.0.to_be_bytes());
        b[8..10].copy_from_slice(&self.low_seq_cnt.to_be_bytes());
        b[10..12].copy_from_slice(&self.high_seq_cnt.to_be_bytes());
        Ok(())
    }
}

impl fmt::Display for BaAccRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BA_ACC ox_id={} rx_id={}", self.ox_id, self.rx_id)?;
        if self.seq_id_valid {
            write!(f, " seq_id={:#04x}", self.seq_id)?;
        }
        write!(f, " seq_cnt={}-{}", self.low_seq_cnt, self.high_seq_cnt)
    }
}

impl Visit for BaAccRepr {
    fn visit(&self, v: &mut dyn FieldVisitor) {
        v.field("seq_id_valid", Value::Bool(self.seq_id_valid));
        v.field("seq_id_last", Value::U8(self.seq_id));
        v.field("payload_ox_id", Value::U16(self.ox_id.0));
        v.field("payload_rx_id", Value::U16(self.rx_id.0));
        v.field("low_seq_cnt", Value::U16(self.low_seq_cnt));
        v.field("high_seq_cnt", Value::U16(self.high_seq_cnt));
    }
}

/// A parsed BA_RJT payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BaRjtRepr {
    /// Byte 1.
    pub reason: BaRjtReason,
    /// Byte 2.
    pub explanation: BaRjtExplanation,
    /// Byte 3.
    pub vendor: u8,
}

impl BaRjtRepr {
    /// Linux's reject for an unmatched ABTS: unable to perform, no explanation.
    pub const UNABLE_TO_PERFORM: BaRjtRepr = BaRjtRepr {
        reason: BaRjtReason::UnableToPerform,
        explanation: BaRjtExplanation::None,
        vendor: 0,
    };

    /// Parses 4 wire bytes.
    pub fn parse(b: &[u8]) -> Result<BaRjtRepr, WireError> {
        need(BA_RJT_LEN, b.len())?;
        Ok(BaRjtRepr {
            reason: BaRjtReason::from(b[1]),
            explanation: BaRjtExplanation::from(b[2]),
            vendor: b[3],
        })
    }

    /// 4.
    pub const fn buffer_len(&self) -> usize {
        BA_RJT_LEN
    }

    /// Writes 4 wire bytes.
    pub fn emit(&self, b: &mut [u8]) -> Result<(), WireError> {
        need(BA_RJT_LEN, b.len())?;
        b[0] = 0;
        b[1] = self.reason.into();
        b[2] = self.explanation.into();
        b[3] = self.vendor;
        Ok(())
    }
}

impl fmt::Display for BaRjtRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BA_RJT reason={} expl={}", self.reason, self.explanation)?;
        if self.vendor != 0 {
            write!(f, " vendor={:#04x}", self.vendor)?;
        }
        Ok(())
    }
}

impl Visit for BaRjtRepr {
    fn visit(&self, v: &mut dyn FieldVisitor) {
        v.field("reason_code", self.reason.to_value());
        v.field("reason_expl", self.explanation.to_value());
        v.field("vendor_uniq", Value::U8(self.vendor));
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::value::test_util::Collect;
    use std::string::ToString;

    #[test]
    fn golden_ba_acc() {
        let b = [
            0x00, // SEQ_ID validity: invalid
            0x00, // SEQ_ID
            0x00, 0x00, // reserved
            0x12, 0x34, // OX_ID
            0x56, 0x78, // RX_ID
            0x00, 0x00, // low SEQ_CNT
            0xff, 0xff, // high SEQ_CNT
        ];
        let r = BaAccRepr::parse(&b).unwrap();
        assert_eq!(r, BaAccRepr::for_abts(OxId(0x1234), RxId(0x5678)));
        let mut out = [0xA5u8; 12];
        r.emit(&mut out).unwrap();
        assert_eq!(out, b);
        assert_eq!(
            r.to_string(),
            "BA_ACC ox_id=0x1234 rx_id=0x5678 seq_cnt=0-65535"
        );
        let valid = BaAccRepr {
            seq_id_valid: true,
            seq_id: 3,
            ..r
        };
        valid.emit(&mut out).unwrap();
        assert_eq!(out[..2], [0x80, 0x03]);
        assert_eq!(BaAccRepr::parse(&out).unwrap(), valid);
        assert!(valid.to_string().contains("seq_id=0x03"));
        out[0] = 0x40;
        assert!(BaAccRepr::parse(&out).is_err());
        assert!(BaAccRepr::parse(&b[..11]).is_err());
        assert_eq!(r.buffer_len(), 12);
        Collect::of(&r).assert_unique();
    }

    #[test]
    fn golden_ba_rjt() {
        let b = [0x00, 0x09, 0x03, 0x00]; // reserved, reason, explanation, vendor
        let r = BaRjtRepr::parse(&b).unwrap();
        assert_eq!(
            r,
            BaRjtRepr {
                explanation: BaRjtExplanation::InvalidOxRxId,
                ..BaRjtRepr::UNABLE_TO_PERFORM
            }
        );
        let mut out = [0xA5u8; 4];
        r.emit(&mut out).unwrap();
        assert_eq!(out, b);
        assert_eq!(
            r.to_string(),
            "BA_RJT reason=UNABLE_TO_PERFORM expl=INVALID_OX_RX_ID"
        );
        let v = BaRjtRepr { vendor: 7, ..r };
        assert!(v.to_string().ends_with("vendor=0x07"));
        assert_eq!(Collect::of(&r).get("reason_code"), "UNABLE_TO_PERFORM");
        assert_eq!(BaRjtReason::from(0xFF), BaRjtReason::VendorUnique);
        assert!(BaRjtRepr::parse(&b[..3]).is_err());
        assert_eq!(r.buffer_len(), 4);
    }
}
