//! Whole FC frames: SOF/EOF delimiters, the frame CRC, and a frame decoder that dispatches
//! the payload on R_CTL and TYPE.
//!
//! Source: reference §8.7. The CRC is the IEEE 802.3 CRC-32 (reflected, init and final XOR
//! 0xFFFFFFFF, zlib's `crc32`) over header + payload; on the wire and in pcap the 4 CRC bytes
//! are the little-endian representation of that value (as Wireshark checks it).

use core::fmt;

use crate::WireError;
use crate::error::need;
use crate::fc::bls::{BaAccRepr, BaRjtRepr};
use crate::fc::els::ElsRepr;
use crate::fc::fcp::{FcpCmndRepr, FcpRspRepr, FcpXferRdy, FcpXferRdyRepr};
use crate::fc::header::{FC_HEADER_LEN, FcHeaderRepr, FcType, RCtl};
use crate::value::{FieldVisitor, Value, Visit};

enum_with_unknown! {
    /// Start-of-frame ordered sets as pcap encodes them (K28.5 as 0xBC; read as BE32).
    pub enum Sof(u32) {
        /// First frame of a class-3 sequence.
        I3 = 0xBCB5_5656 => "SOFi3",
        /// Subsequent class-3 frames.
        N3 = 0xBCB5_3636 => "SOFn3",
        /// First frame, class 2.
        I2 = 0xBCB5_5555 => "SOFi2",
        /// Subsequent frames, class 2.
        N2 = 0xBCB5_3535 => "SOFn2",
        /// Fabric.
        F = 0xBCB5_5858 => "SOFf",
    }
}

enum_with_unknown! {
    /// End-of-frame ordered sets (− and + running disparity), as pcap encodes them.
    pub enum Eof(u32) {
        /// Not the last frame of the sequence (−).
        NNeg = 0xBC95_D5D5 => "EOFn-",
        /// Not the last frame of the sequence (+).
        NPos = 0xBCB5_D5D5 => "EOFn+",
        /// Last frame of the sequence (−).
        TNeg = 0xBC95_7575 => "EOFt-",
        /// Last frame of the sequence (+).
        TPos = 0xBCB5_7575 => "EOFt+",
        /// Aborted frame (−).
        ANeg = 0xBC95_F5F5 => "EOFa-",
        /// Aborted frame (+).
        APos = 0xBCB5_F5F5 => "EOFa+",
        /// Invalid frame (−).
        NiNeg = 0xBC8A_D5D5 => "EOFni-",
        /// Invalid frame (+).
        NiPos = 0xBCAA_D5D5 => "EOFni+",
    }
}

impl Sof {
    /// The class-3 SOF for a frame: SOFi3 on the first frame of a sequence, SOFn3 otherwise
    /// (standard FC-FS practice; unconfirmed from the reference's sources).
    pub const fn class3(first_of_sequence: bool) -> Sof {
        if first_of_sequence { Sof::I3 } else { Sof::N3 }
    }
}

impl Eof {
    /// EOFt on the last frame of a sequence, EOFn otherwise (− disparity; a capture does not
    /// care which).
    pub const fn for_frame(last_of_sequence: bool) -> Eof {
        if last_of_sequence {
            Eof::TNeg
        } else {
            Eof::NNeg
        }
    }

    /// `true` for EOFt.
    pub fn is_terminate(self) -> bool {
        matches!(self, Eof::TNeg | Eof::TPos)
    }
}

const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

/// The reflected CRC-32 table for polynomial 0x04C11DB7 (0xEDB88320 reversed), built at
/// compile time.
static CRC_TABLE: [u32; 256] = crc_table();

/// An incremental IEEE CRC-32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crc32(u32);

impl Crc32 {
    /// A fresh CRC (state 0xFFFFFFFF).
    pub const fn new() -> Crc32 {
        Crc32(0xFFFF_FFFF)
    }

    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        let mut c = self.0;
        for &b in data {
            c = CRC_TABLE[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8);
        }
        self.0 = c;
    }

    /// The CRC value (final XOR applied).
    pub const fn finish(self) -> u32 {
        self.0 ^ 0xFFFF_FFFF
    }
}

impl Default for Crc32 {
    fn default() -> Self {
        Crc32::new()
    }
}

/// CRC-32 of `data` (zlib `crc32`).
pub fn crc32(data: &[u8]) -> u32 {
    let mut c = Crc32::new();
    c.update(data);
    c.finish()
}

/// The 4 CRC bytes that follow header + payload on the wire / in pcap (little-endian).
pub fn frame_crc_bytes(frame: &[u8]) -> [u8; 4] {
    crc32(frame).to_le_bytes()
}

/// SOF (4) + CRC (4) + EOF (4).
pub const DELIMITER_OVERHEAD: usize = 12;

/// A frame with its delimiters (LINKTYPE_FC_2_WITH_FRAME_DELIMS layout):
/// SOF, header + payload, CRC, EOF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DelimitedFrame<'a> {
    /// Start of frame.
    pub sof: Sof,
    /// Header and payload.
    pub frame: &'a [u8],
    /// The CRC as stored (read little-endian).
    pub crc: u32,
    /// End of frame.
    pub eof: Eof,
}

impl<'a> DelimitedFrame<'a> {
    /// Splits `bytes` (at least 12 + 24 bytes).
    pub fn parse(bytes: &'a [u8]) -> Result<DelimitedFrame<'a>, WireError> {
        need(DELIMITER_OVERHEAD + FC_HEADER_LEN, bytes.len())?;
        let n = bytes.len();
        let word = |at: usize| [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
        Ok(DelimitedFrame {
            sof: Sof::from(u32::from_be_bytes(word(0))),
            frame: &bytes[4..n - 8],
            crc: u32::from_le_bytes(word(n - 8)),
            eof: Eof::from(u32::from_be_bytes(word(n - 4))),
        })
    }

    /// `true` if the stored CRC matches header + payload.
    pub fn crc_ok(&self) -> bool {
        crc32(self.frame) == self.crc
    }

    /// Writes SOF, `frame`, its CRC and EOF into `out`; returns the length written.
    pub fn emit(sof: Sof, frame: &[u8], eof: Eof, out: &mut [u8]) -> Result<usize, WireError> {
        let n = frame.len() + DELIMITER_OVERHEAD;
        need(n, out.len())?;
        out[..4].copy_from_slice(&u32::from(sof).to_be_bytes());
        out[4..4 + frame.len()].copy_from_slice(frame);
        out[n - 8..n - 4].copy_from_slice(&frame_crc_bytes(frame));
        out[n - 4..n].copy_from_slice(&u32::from(eof).to_be_bytes());
        Ok(n)
    }
}

/// The payload of a frame, decoded by R_CTL and TYPE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FcPayload<'a> {
    /// R_CTL 0x06, TYPE FCP.
    FcpCmnd(FcpCmndRepr),
    /// R_CTL 0x05, TYPE FCP.
    XferRdy(FcpXferRdyRepr),
    /// R_CTL 0x07, TYPE FCP.
    FcpRsp(FcpRspRepr),
    /// R_CTL 0x01: data (fill bytes removed).
    Data(&'a [u8]),
    /// R_CTL 0x81, TYPE BLS (no payload).
    Abts,
    /// R_CTL 0x84, TYPE BLS.
    BaAcc(BaAccRepr),
    /// R_CTL 0x85, TYPE BLS.
    BaRjt(BaRjtRepr),
    /// R_CTL 0x22/0x23, TYPE ELS.
    Els(ElsRepr),
    /// Anything else, raw (fill bytes removed).
    Other(&'a [u8]),
}

/// A decoded frame (header + payload, no delimiters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FcFrameRepr<'a> {
    /// The header.
    pub header: FcHeaderRepr,
    /// The payload.
    pub payload: FcPayload<'a>,
}

impl<'a> FcFrameRepr<'a> {
    /// Decodes header + payload. The payload's fill bytes (F_CTL B1–0) are dropped before
    /// decoding.
    pub fn parse(frame: &'a [u8]) -> Result<FcFrameRepr<'a>, WireError> {
        let header = FcHeaderRepr::parse_bytes(frame)?;
        let body = &frame[FC_HEADER_LEN..];
        let fill = (header.f_ctl.fill_bytes() as usize).min(body.len());
        let body = &body[..body.len() - fill];
        let payload = match (header.r_ctl, header.fc_type) {
            (RCtl::UnsolCmd, FcType::Fcp) => FcPayload::FcpCmnd(FcpCmndRepr::parse_bytes(body)?),
            (RCtl::DataDesc, FcType::Fcp) => {
                FcPayload::XferRdy(FcpXferRdyRepr::parse(&FcpXferRdy::new_checked(body)?)?)
            }
            (RCtl::CmdStatus, FcType::Fcp) => FcPayload::FcpRsp(FcpRspRepr::parse_bytes(body)?),
            (RCtl::SolData, _) => FcPayload::Data(body),
            (RCtl::Abts, FcType::Bls) => FcPayload::Abts,
            (RCtl::BaAcc, FcType::Bls) => FcPayload::BaAcc(BaAccRepr::parse(body)?),
            (RCtl::BaRjt, FcType::Bls) => FcPayload::BaRjt(BaRjtRepr::parse(body)?),
            (RCtl::ElsReq | RCtl::ElsRep, FcType::Els) => FcPayload::Els(ElsRepr::parse(body)?),
            _ => FcPayload::Other(body),
        };
        Ok(FcFrameRepr { header, payload })
    }

    /// Header + payload length (payload padded to 4 bytes).
    pub fn buffer_len(&self) -> usize {
        FC_HEADER_LEN + self.payload_len().next_multiple_of(4)
    }

    fn payload_len(&self) -> usize {
        match &self.payload {
            FcPayload::FcpCmnd(r) => r.buffer_len(),
            FcPayload::XferRdy(r) => r.buffer_len(),
            FcPayload::FcpRsp(r) => r.buffer_len(),
            FcPayload::Data(d) | FcPayload::Other(d) => d.len(),
            FcPayload::Abts => 0,
            FcPayload::BaAcc(r) => r.buffer_len(),
            FcPayload::BaRjt(r) => r.buffer_len(),
            FcPayload::Els(r) => r.buffer_len(),
        }
    }

    /// Writes header + payload (+ zero fill to a multiple of 4, with the header's F_CTL fill
    /// count set accordingly); returns the length.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, WireError> {
        let n = self.buffer_len();
        need(n, out.len())?;
        let plen = self.payload_len();
        let fill = (n - FC_HEADER_LEN - plen) as u8;
        let mut header = self.header;
        header.f_ctl = header.f_ctl.with_fill_bytes(fill);
        header.emit_bytes(&mut out[..FC_HEADER_LEN])?;
        let body = &mut out[FC_HEADER_LEN..n];
        body.fill(0);
        match &self.payload {
            FcPayload::FcpCmnd(r) => r.emit_bytes(body)?,
            FcPayload::XferRdy(r) => r.emit(&mut FcpXferRdy::new_checked(&mut *body)?)?,
            FcPayload::FcpRsp(r) => r.emit_bytes(body)?,
            FcPayload::Data(d) | FcPayload::Other(d) => body[..d.len()].copy_from_slice(d),
            FcPayload::Abts => {}
            FcPayload::BaAcc(r) => r.emit(body)?,
            FcPayload::BaRjt(r) => r.emit(body)?,
            FcPayload::Els(r) => r.emit(body)?,
        }
        Ok(n)
    }
}

impl fmt::Display for FcFrameRepr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = &self.header;
        write!(
            f,
            "FC {}>{} ox_id={} rx_id={} ",
            h.s_id, h.d_id, h.ox_id, h.rx_id
        )?;
        match &self.payload {
            FcPayload::FcpCmnd(r) => r.fmt(f),
            FcPayload::XferRdy(r) => r.fmt(f),
            FcPayload::FcpRsp(r) => r.fmt(f),
            FcPayload::Data(d) => write!(
                f,
                "DATA ro={} len={} f_ctl={}",
                h.parameter,
                d.len(),
                h.f_ctl
            ),
            FcPayload::Abts => write!(f, "ABTS param={:#010x}", h.parameter),
            FcPayload::BaAcc(r) => r.fmt(f),
            FcPayload::BaRjt(r) => r.fmt(f),
            FcPayload::Els(r) => r.fmt(f),
            FcPayload::Other(d) => write!(f, "{} {} len={}", h.r_ctl, h.fc_type, d.len()),
        }
    }
}

impl Visit for FcFrameRepr<'_> {
    fn visit(&self, v: &mut dyn FieldVisitor) {
        self.header.visit_fields(v);
        match &self.payload {
            FcPayload::FcpCmnd(r) => r.visit(v),
            FcPayload::XferRdy(r) => r.visit(v),
            FcPayload::FcpRsp(r) => r.visit(v),
            FcPayload::Data(d) | FcPayload::Other(d) => {
                v.field("payload_len", Value::U32(d.len() as u32));
                v.field("payload", Value::Bytes(d));
            }
            FcPayload::Abts => {}
            FcPayload::BaAcc(r) => r.visit(v),
            FcPayload::BaRjt(r) => r.visit(v),
            FcPayload::Els(r) => r.visit(v),
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::fc::header::FCtl;
    use crate::value::test_util::Collect;
    use crate::{OxId, PortId, RxId};
    use std::string::ToString;
    use std::vec::Vec;

    /// Reference §8.7 test vector: header + 24 zero payload bytes.
    fn vector() -> [u8; 48] {
        let mut b = [0u8; 48];
        b[..24].copy_from_slice(&[
            0x07, 0x01, 0x02, 0x03, 0x00, 0x0a, 0x0b, 0x0c, 0x08, 0x99, 0x00, 0x00, 0x01, 0x00,
            0x00, 0x00, 0x12, 0x34, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00,
        ]);
        b
    }

    #[test]
    fn crc_check_values() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(&[]), 0);
        assert_eq!(crc32(&vector()), 0x3448_78E7);
        assert_eq!(frame_crc_bytes(&vector()), [0xe7, 0x78, 0x48, 0x34]);
        let mut c = Crc32::default();
        c.update(b"1234");
        c.update(b"56789");
        assert_eq!(c.finish(), 0xCBF4_3926);
    }

    #[test]
    fn delimited_round_trip_and_crc_check() {
        let mut out = [0u8; 60];
        let n = DelimitedFrame::emit(Sof::I3, &vector(), Eof::TNeg, &mut out).unwrap();
        assert_eq!(n, 60);
        assert_eq!(out[..4], [0xBC, 0xB5, 0x56, 0x56]);
        assert_eq!(out[52..56], [0xe7, 0x78, 0x48, 0x34]);
        assert_eq!(out[56..], [0xBC, 0x95, 0x75, 0x75]);
        let d = DelimitedFrame::parse(&out).unwrap();
        assert_eq!(
            (d.sof, d.eof, d.frame, d.crc),
            (Sof::I3, Eof::TNeg, &vector()[..], 0x3448_78E7)
        );
        assert!(d.crc_ok() && d.eof.is_terminate());
        out[30] ^= 1;
        assert!(!DelimitedFrame::parse(&out).unwrap().crc_ok());
        assert!(DelimitedFrame::parse(&out[..35]).is_err());
        assert!(DelimitedFrame::emit(Sof::N3, &vector(), Eof::NNeg, &mut [0u8; 59]).is_err());
        assert_eq!(Sof::class3(false), Sof::N3);
        assert_eq!(Eof::for_frame(false), Eof::NNeg);
        assert!(!Eof::NPos.is_terminate());
        assert_eq!(Sof::from(0x1234).to_string(), "UNKNOWN(0x1234)");
        for (e, v) in [
            (Eof::NPos, 0xBCB5_D5D5u32),
            (Eof::TPos, 0xBCB5_7575),
            (Eof::ANeg, 0xBC95_F5F5),
            (Eof::APos, 0xBCB5_F5F5),
            (Eof::NiNeg, 0xBC8A_D5D5),
            (Eof::NiPos, 0xBCAA_D5D5),
        ] {
            assert_eq!(u32::from(e), v);
        }
        for (s, v) in [
            (Sof::I2, 0xBCB5_5555u32),
            (Sof::N2, 0xBCB5_3535),
            (Sof::F, 0xBCB5_5858),
        ] {
            assert_eq!(s.raw(), v);
        }
    }

    #[test]
    fn frame_dispatch() {
        // The §8.7 vector is an FCP_RSP with 24 zero bytes: GOOD status.
        let v = vector();
        let f = FcFrameRepr::parse(&v).unwrap();
        assert!(matches!(f.payload, FcPayload::FcpRsp(r) if r.scsi_status == 0));
        assert_eq!(
            f.to_string(),
            "FC 0a0b0c>010203 ox_id=0x1234 rx_id=0x0005 FCP_RSP status=0x00"
        );
        let mut out = [0u8; 48];
        assert_eq!(f.emit(&mut out).unwrap(), 48);
        assert_eq!(out, vector());
        let c = Collect::of(&f);
        c.assert_unique();
        assert_eq!(c.get("scsi_status"), "0");

        // DATA with 2 fill bytes.
        let h = FcHeaderRepr {
            parameter: 512,
            ..FcHeaderRepr::new(
                RCtl::SolData,
                FcType::Fcp,
                PortId::new(1),
                PortId::new(2),
                FCtl::FCP_DATA_IN_LAST,
                OxId(1),
            )
        };
        let data = [1u8, 2, 3, 4, 5, 6];
        let fr = FcFrameRepr {
            header: h,
            payload: FcPayload::Data(&data),
        };
        let mut out = [0xA5u8; 32];
        assert_eq!(fr.emit(&mut out).unwrap(), 32);
        assert_eq!(out[11] & 3, 2);
        assert_eq!(out[24..], [1, 2, 3, 4, 5, 6, 0, 0]);
        let back = FcFrameRepr::parse(&out).unwrap();
        assert_eq!(back.payload, FcPayload::Data(&data));
        assert_eq!(
            back.to_string(),
            "FC 000002>000001 ox_id=0x0001 rx_id=0xffff DATA ro=512 len=6 f_ctl=EXCH_RESPONDER|END_SEQ|REL_OFF|0x2"
        );

        // ABTS, BA_ACC, BA_RJT, XFER_RDY, ELS, other.
        let abts = FcHeaderRepr::new(
            RCtl::Abts,
            FcType::Bls,
            PortId::new(1),
            PortId::new(2),
            FCtl::FCP_CMND,
            OxId(9),
        );
        let frames: Vec<FcFrameRepr> = std::vec![
            FcFrameRepr {
                header: abts,
                payload: FcPayload::Abts
            },
            FcFrameRepr {
                header: abts.reply(RCtl::BaAcc, FcType::Bls, FCtl::BLS_RESPONSE),
                payload: FcPayload::BaAcc(BaAccRepr::for_abts(OxId(9), RxId(3))),
            },
            FcFrameRepr {
                header: abts.reply(RCtl::BaRjt, FcType::Bls, FCtl::BLS_RESPONSE),
                payload: FcPayload::BaRjt(BaRjtRepr::UNABLE_TO_PERFORM),
            },
            FcFrameRepr {
                header: FcHeaderRepr {
                    fc_type: FcType::Fcp,
                    r_ctl: RCtl::DataDesc,
                    ..abts
                },
                payload: FcPayload::XferRdy(FcpXferRdyRepr {
                    relative_offset: 0,
                    burst_len: 8192
                }),
            },
            FcFrameRepr {
                header: FcHeaderRepr {
                    fc_type: FcType::Els,
                    r_ctl: RCtl::ElsReq,
                    ..abts
                },
                payload: FcPayload::Els(ElsRepr::Scr(crate::fc::els::ScrRepr { function: 3 })),
            },
            FcFrameRepr {
                header: FcHeaderRepr {
                    fc_type: FcType::Ct,
                    r_ctl: RCtl::UnsolCtl,
                    ..abts
                },
                payload: FcPayload::Other(&[1, 2, 3, 4]),
            },
            FcFrameRepr {
                header: FcHeaderRepr {
                    fc_type: FcType::Fcp,
                    r_ctl: RCtl::UnsolCmd,
                    ..abts
                },
                payload: FcPayload::FcpCmnd(
                    FcpCmndRepr::command(
                        crate::Lun::default(),
                        &[0x12, 0, 0, 0, 36, 0],
                        crate::fc::fcp::DataDir::DataIn,
                        36
                    )
                    .unwrap(),
                ),
            },
        ];
        for fr in frames {
            let mut out = [0u8; 200];
            let n = fr.emit(&mut out).unwrap();
            assert_eq!(n, fr.buffer_len());
            let back = FcFrameRepr::parse(&out[..n]).unwrap();
            assert_eq!(back, fr);
            Collect::of(&back).assert_unique();
            assert!(back.to_string().starts_with("FC "));
        }
        assert!(FcFrameRepr::parse(&vector()[..23]).is_err());
    }
}
