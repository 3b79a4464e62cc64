//! The 24-byte FC frame header (FC-FS), big-endian.
//!
//! Source: reference §8.1 (fields, R_CTL, TYPE, F_CTL bits and the F_CTL values a target uses).

use core::fmt;

use crate::value::{FieldVisitor, Value, Visit};
use crate::{OxId, PortId, RxId, WireError};

/// Size of the frame header.
pub const FC_HEADER_LEN: usize = 24;
/// Maximum data field size of an FC frame.
pub const FC_MAX_PAYLOAD: usize = 2112;
/// Minimum "max payload" a port may advertise.
pub const FC_MIN_MAX_PAYLOAD: usize = 256;

enum_with_unknown! {
    /// R_CTL: routing and information category.
    pub enum RCtl(u8) {
        /// 0x01: solicited data (FCP_DATA).
        SolData = 0x01 => "SOL_DATA",
        /// 0x02: unsolicited control (e.g. a CT request).
        UnsolCtl = 0x02 => "UNSOL_CTL",
        /// 0x03: solicited control (FCP_CONF per the FCP spec; unconfirmed from the sources).
        SolCtl = 0x03 => "SOL_CTL",
        /// 0x05: data descriptor (FCP_XFER_RDY).
        DataDesc = 0x05 => "DATA_DESC",
        /// 0x06: unsolicited command (FCP_CMND).
        UnsolCmd = 0x06 => "UNSOL_CMD",
        /// 0x07: command status (FCP_RSP).
        CmdStatus = 0x07 => "CMD_STATUS",
        /// 0x22: ELS request.
        ElsReq = 0x22 => "ELS_REQ",
        /// 0x23: ELS reply.
        ElsRep = 0x23 => "ELS_REP",
        /// 0x32: FC-4 link service request (e.g. FCP SRR).
        Fc4LsReq = 0x32 => "FC4_LS_REQ",
        /// 0x33: FC-4 link service reply.
        Fc4LsRep = 0x33 => "FC4_LS_REP",
        /// 0x81: BLS ABTS.
        Abts = 0x81 => "ABTS",
        /// 0x84: BLS BA_ACC.
        BaAcc = 0x84 => "BA_ACC",
        /// 0x85: BLS BA_RJT.
        BaRjt = 0x85 => "BA_RJT",
        /// 0xC0.
        Ack1 = 0xC0 => "ACK_1",
        /// 0xC1.
        Ack0 = 0xC1 => "ACK_0",
        /// 0xC2.
        PRjt = 0xC2 => "P_RJT",
        /// 0xC3.
        FRjt = 0xC3 => "F_RJT",
        /// 0xC4.
        PBsy = 0xC4 => "P_BSY",
        /// 0xC5.
        FBsy = 0xC5 => "F_BSY",
    }
}

enum_with_unknown! {
    /// TYPE: the FC-4 protocol of the frame.
    pub enum FcType(u8) {
        /// 0x00: basic link services.
        Bls = 0x00 => "BLS",
        /// 0x01: extended link services.
        Els = 0x01 => "ELS",
        /// 0x05: IP.
        Ip = 0x05 => "IP",
        /// 0x08: FCP (SCSI).
        Fcp = 0x08 => "FCP",
        /// 0x20: CT (fabric services).
        Ct = 0x20 => "CT",
        /// 0x28: FC-NVMe.
        FcNvme = 0x28 => "NVME",
    }
}

bit_flags! {
    /// F_CTL (24 bits). Multi-bit fields: ACK form B13–12, abort sequence condition B5–4
    /// ([`FCtl::abort_seq_cond`]), fill bytes B1–0 ([`FCtl::fill_bytes`]).
    pub struct FCtl: u32 {
        /// B23: the sender is the exchange responder.
        const EXCH_RESPONDER = 0x80_0000;
        /// B22: the sender is the sequence recipient.
        const SEQ_RECIPIENT = 0x40_0000;
        /// B21: first sequence of the exchange.
        const FIRST_SEQ = 0x20_0000;
        /// B20: last sequence of the exchange.
        const LAST_SEQ = 0x10_0000;
        /// B19: last frame of the sequence.
        const END_SEQ = 0x08_0000;
        /// B16: sequence initiative transferred.
        const SEQ_INIT = 0x01_0000;
        /// B9: retransmitted sequence.
        const RETRANSMIT = 0x00_0200;
        /// B3: PARAMETER is a relative offset.
        const REL_OFF = 0x00_0008;
    }
}

impl FCtl {
    /// FCP_CMND from an initiator: first sequence, end of sequence, initiative (0x290000;
    /// typical value, unconfirmed from the sources).
    pub const FCP_CMND: FCtl = FCtl(0x29_0000);
    /// FCP_XFER_RDY from a target (0x890000).
    pub const FCP_XFER_RDY: FCtl = FCtl(0x89_0000);
    /// FCP_DATA (read) from a target, not the last frame (0x800008).
    pub const FCP_DATA_IN: FCtl = FCtl(0x80_0008);
    /// FCP_DATA (read) from a target, last frame of the sequence (0x880008).
    pub const FCP_DATA_IN_LAST: FCtl = FCtl(0x88_0008);
    /// FCP_DATA (write) from an initiator, not the last frame (0x000008).
    pub const FCP_DATA_OUT: FCtl = FCtl(0x00_0008);
    /// FCP_DATA (write) from an initiator, last frame (0x090008).
    pub const FCP_DATA_OUT_LAST: FCtl = FCtl(0x09_0008);
    /// FCP_RSP from a target: responder, last sequence, end of sequence (0x980000).
    pub const FCP_RSP: FCtl = FCtl(0x98_0000);
    /// BA_ACC / BA_RJT from a target (0x990000); also FCP_RSP with initiative transferred.
    pub const BLS_RESPONSE: FCtl = FCtl(0x99_0000);

    /// B5–4: abort sequence condition.
    pub const fn abort_seq_cond(self) -> u8 {
        ((self.0 >> 4) & 3) as u8
    }

    /// B1–0: fill bytes at the end of the payload.
    pub const fn fill_bytes(self) -> u8 {
        (self.0 & 3) as u8
    }

    /// B13–12: ACK form (class 2).
    pub const fn ack_form(self) -> u8 {
        ((self.0 >> 12) & 3) as u8
    }

    /// This F_CTL with B1–0 set to `n & 3`.
    pub const fn with_fill_bytes(self, n: u8) -> FCtl {
        FCtl(self.0 & !3 | (n as u32 & 3))
    }
}

mod field {
    pub const R_CTL: usize = 0;
    pub const D_ID: usize = 1;
    pub const CS_CTL: usize = 4;
    pub const S_ID: usize = 5;
    pub const TYPE: usize = 8;
    pub const F_CTL: usize = 9;
    pub const SEQ_ID: usize = 12;
    pub const DF_CTL: usize = 13;
    pub const SEQ_CNT: usize = 14;
    pub const OX_ID: usize = 16;
    pub const RX_ID: usize = 18;
    pub const PARAMETER: usize = 20;
}

/// A view of an FC frame header (big-endian wire order).
#[derive(Debug, Clone)]
pub struct FcHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> FcHeader<T> {
    view_basics!(FcHeader, FC_HEADER_LEN);

    accessors! {
        /// Byte 0: R_CTL (raw).
        r_ctl_raw, set_r_ctl_raw, field::R_CTL, u8;
        /// Bytes 1–3: D_ID.
        d_id, set_d_id, field::D_ID, port_be;
        /// Byte 4: CS_CTL / priority.
        cs_ctl, set_cs_ctl, field::CS_CTL, u8;
        /// Bytes 5–7: S_ID.
        s_id, set_s_id, field::S_ID, port_be;
        /// Byte 8: TYPE (raw).
        type_raw, set_type_raw, field::TYPE, u8;
        /// Byte 12: SEQ_ID.
        seq_id, set_seq_id, field::SEQ_ID, u8;
        /// Byte 13: DF_CTL.
        df_ctl, set_df_ctl, field::DF_CTL, u8;
        /// Bytes 14–15: SEQ_CNT.
        seq_cnt, set_seq_cnt, field::SEQ_CNT, be16;
        /// Bytes 16–17: OX_ID.
        ox_id, set_ox_id, field::OX_ID, be16 as OxId;
        /// Bytes 18–19: RX_ID.
        rx_id, set_rx_id, field::RX_ID, be16 as RxId;
        /// Bytes 20–23: PARAMETER (relative offset for data frames with F_CTL B3).
        parameter, set_parameter, field::PARAMETER, be32;
    }

    /// R_CTL.
    pub fn r_ctl(&self) -> RCtl {
        RCtl::from(self.r_ctl_raw())
    }

    /// TYPE.
    pub fn fc_type(&self) -> FcType {
        FcType::from(self.type_raw())
    }

    /// Bytes 9–11: F_CTL.
    pub fn f_ctl(&self) -> FCtl {
        FCtl::from_bits_retain(crate::bytes::be24(self.buffer.as_ref(), field::F_CTL))
    }

    /// Sets F_CTL (bits above 23 are dropped).
    pub fn set_f_ctl(&mut self, v: FCtl)
    where
        T: AsMut<[u8]>,
    {
        crate::bytes::set_be24(self.buffer.as_mut(), field::F_CTL, v.bits() & 0xFF_FFFF)
    }
}

/// A parsed FC frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FcHeaderRepr {
    /// R_CTL.
    pub r_ctl: RCtl,
    /// D_ID.
    pub d_id: PortId,
    /// CS_CTL.
    pub cs_ctl: u8,
    /// S_ID.
    pub s_id: PortId,
    /// TYPE.
    pub fc_type: FcType,
    /// F_CTL (24 bits).
    pub f_ctl: FCtl,
    /// SEQ_ID.
    pub seq_id: u8,
    /// DF_CTL.
    pub df_ctl: u8,
    /// SEQ_CNT.
    pub seq_cnt: u16,
    /// OX_ID.
    pub ox_id: OxId,
    /// RX_ID.
    pub rx_id: RxId,
    /// PARAMETER.
    pub parameter: u32,
}

impl FcHeaderRepr {
    /// A header with the given routing fields and everything else zero (RX_ID unassigned).
    pub const fn new(
        r_ctl: RCtl,
        fc_type: FcType,
        d_id: PortId,
        s_id: PortId,
        f_ctl: FCtl,
        ox_id: OxId,
    ) -> Self {
        FcHeaderRepr {
            r_ctl,
            d_id,
            cs_ctl: 0,
            s_id,
            fc_type,
            f_ctl,
            seq_id: 0,
            df_ctl: 0,
            seq_cnt: 0,
            ox_id,
            rx_id: RxId::UNASSIGNED,
            parameter: 0,
        }
    }

    /// Parses a header view.
    pub fn parse<T: AsRef<[u8]>>(h: &FcHeader<T>) -> Result<FcHeaderRepr, WireError> {
        h.check_len()?;
        Ok(FcHeaderRepr {
            r_ctl: h.r_ctl(),
            d_id: h.d_id(),
            cs_ctl: h.cs_ctl(),
            s_id: h.s_id(),
            fc_type: h.fc_type(),
            f_ctl: h.f_ctl(),
            seq_id: h.seq_id(),
            df_ctl: h.df_ctl(),
            seq_cnt: h.seq_cnt(),
            ox_id: h.ox_id(),
            rx_id: h.rx_id(),
            parameter: h.parameter(),
        })
    }

    /// Bytes [`emit`](Self::emit) writes.
    pub const fn buffer_len(&self) -> usize {
        FC_HEADER_LEN
    }

    /// Writes the 24 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, h: &mut FcHeader<T>) -> Result<(), WireError> {
        h.check_len()?;
        h.set_r_ctl_raw(self.r_ctl.into());
        h.set_d_id(self.d_id);
        h.set_cs_ctl(self.cs_ctl);
        h.set_s_id(self.s_id);
        h.set_type_raw(self.fc_type.into());
        h.set_f_ctl(self.f_ctl);
        h.set_seq_id(self.seq_id);
        h.set_df_ctl(self.df_ctl);
        h.set_seq_cnt(self.seq_cnt);
        h.set_ox_id(self.ox_id);
        h.set_rx_id(self.rx_id);
        h.set_parameter(self.parameter);
        Ok(())
    }

    /// Parses 24 bytes.
    pub fn parse_bytes(b: &[u8]) -> Result<FcHeaderRepr, WireError> {
        FcHeaderRepr::parse(&FcHeader::new_checked(b)?)
    }

    /// Writes 24 bytes.
    pub fn emit_bytes(&self, b: &mut [u8]) -> Result<(), WireError> {
        self.emit(&mut FcHeader::new_checked(b)?)
    }

    /// The header of a reply in the same exchange: S_ID and D_ID swapped, the given R_CTL,
    /// TYPE and F_CTL, SEQ_CNT and PARAMETER zero, OX_ID/RX_ID kept.
    pub fn reply(&self, r_ctl: RCtl, fc_type: FcType, f_ctl: FCtl) -> FcHeaderRepr {
        FcHeaderRepr {
            r_ctl,
            d_id: self.s_id,
            s_id: self.d_id,
            fc_type,
            f_ctl,
            seq_cnt: 0,
            parameter: 0,
            ..*self
        }
    }

    pub(crate) fn visit_fields(&self, v: &mut dyn FieldVisitor) {
        v.field("r_ctl", self.r_ctl.to_value());
        v.field("d_id", Value::PortId(self.d_id));
        v.field("cs_ctl", Value::U8(self.cs_ctl));
        v.field("s_id", Value::PortId(self.s_id));
        v.field("type", self.fc_type.to_value());
        v.field("f_ctl", Value::U32(self.f_ctl.bits()));
        v.field("seq_id", Value::U8(self.seq_id));
        v.field("df_ctl", Value::U8(self.df_ctl));
        v.field("seq_cnt", Value::U16(self.seq_cnt));
        v.field("ox_id", Value::U16(self.ox_id.0));
        v.field("rx_id", Value::U16(self.rx_id.0));
        v.field("parameter", Value::U32(self.parameter));
    }
}

impl fmt::Display for FcHeaderRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}>{} {} {} f_ctl={} seq_id={:#04x} seq_cnt={} ox_id={} rx_id={} param={:#010x}",
            self.s_id,
            self.d_id,
            self.r_ctl,
            self.fc_type,
            self.f_ctl,
            self.seq_id,
            self.seq_cnt,
            self.ox_id,
            self.rx_id,
            self.parameter
        )?;
        if self.cs_ctl != 0 {
            write!(f, " cs_ctl={:#04x}", self.cs_ctl)?;
        }
        if self.df_ctl != 0 {
            write!(f, " df_ctl={:#04x}", self.df_ctl)?;
        }
        Ok(())
    }
}

impl<T: AsRef<[u8]>> fmt::Display for FcHeader<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match FcHeaderRepr::parse(self) {
            Ok(r) => write!(f, "FC {r}"),
            Err(e) => write!(f, "FC ({e})"),
        }
    }
}

#[cfg(feature = "defmt")]
impl<T: AsRef<[u8]>> defmt::Format for FcHeader<T> {
    fn format(&self, f: defmt::Formatter<'_>) {
        match FcHeaderRepr::parse(self) {
            Ok(r) => defmt::write!(f, "FC {}", r),
            Err(e) => defmt::write!(f, "FC ({})", e),
        }
    }
}

impl Visit for FcHeaderRepr {
    fn visit(&self, v: &mut dyn FieldVisitor) {
        self.visit_fields(v)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::value::test_util::Collect;
    use std::string::ToString;

    /// The FCP_RSP header of the reference §8.7 CRC test vector, by hand.
    const GOLDEN: [u8; 24] = [
        0x07, // R_CTL command status
        0x01, 0x02, 0x03, // D_ID 010203
        0x00, // CS_CTL
        0x0a, 0x0b, 0x0c, // S_ID 0a0b0c
        0x08, // TYPE FCP
        0x99, 0x00, 0x00, // F_CTL 0x990000
        0x01, // SEQ_ID
        0x00, // DF_CTL
        0x00, 0x00, // SEQ_CNT
        0x12, 0x34, // OX_ID
        0x00, 0x05, // RX_ID
        0x00, 0x00, 0x00, 0x00, // PARAMETER
    ];

    fn repr() -> FcHeaderRepr {
        FcHeaderRepr {
            r_ctl: RCtl::CmdStatus,
            d_id: PortId::new(0x010203),
            cs_ctl: 0,
            s_id: PortId::new(0x0a0b0c),
            fc_type: FcType::Fcp,
            f_ctl: FCtl::BLS_RESPONSE,
            seq_id: 1,
            df_ctl: 0,
            seq_cnt: 0,
            ox_id: OxId(0x1234),
            rx_id: RxId(5),
            parameter: 0,
        }
    }

    #[test]
    fn golden_header() {
        let h = FcHeader::new_checked(&GOLDEN[..]).unwrap();
        assert_eq!(FcHeaderRepr::parse(&h).unwrap(), repr());
        let mut out = [0xA5u8; 24];
        repr()
            .emit(&mut FcHeader::new_checked(&mut out[..]).unwrap())
            .unwrap();
        assert_eq!(out, GOLDEN);
        assert_eq!(
            h.to_string(),
            "FC 0a0b0c>010203 CMD_STATUS FCP f_ctl=EXCH_RESPONDER|LAST_SEQ|END_SEQ|SEQ_INIT seq_id=0x01 seq_cnt=0 ox_id=0x1234 rx_id=0x0005 param=0x00000000"
        );
        assert!(FcHeader::new_checked(&GOLDEN[..23]).is_err());
        assert_eq!(
            FcHeader::new_checked(&GOLDEN[..23])
                .map(|_| ())
                .unwrap_err()
                .to_string(),
            "truncated: need 24 bytes, have 23"
        );
        let c = Collect::of(&repr());
        c.assert_unique();
        assert_eq!(c.get("s_id"), "0a0b0c");
        assert_eq!(c.get("type"), "FCP");
        assert_eq!(c.get("f_ctl"), "10027008");
        assert_eq!(repr().buffer_len(), 24);
        let mut b = [0u8; 24];
        repr().emit_bytes(&mut b).unwrap();
        assert_eq!(FcHeaderRepr::parse_bytes(&b).unwrap(), repr());
        assert_eq!(h.as_bytes(), &GOLDEN[..]);
        assert_eq!(h.into_inner(), &GOLDEN[..]);
    }

    #[test]
    fn f_ctl_fields_and_reply() {
        let f = FCtl::from_bits_retain(0x88_3032);
        assert_eq!(
            (f.abort_seq_cond(), f.fill_bytes(), f.ack_form()),
            (3, 2, 3)
        );
        assert_eq!(FCtl::FCP_DATA_IN.with_fill_bytes(3).bits(), 0x80_000B);
        let r = repr().reply(RCtl::BaAcc, FcType::Bls, FCtl::BLS_RESPONSE);
        assert_eq!(
            (r.s_id, r.d_id, r.ox_id, r.rx_id),
            (repr().d_id, repr().s_id, repr().ox_id, repr().rx_id)
        );
        let n = FcHeaderRepr::new(
            RCtl::UnsolCmd,
            FcType::Fcp,
            PortId::new(1),
            PortId::new(2),
            FCtl::FCP_CMND,
            OxId(7),
        );
        assert_eq!(n.rx_id, RxId::UNASSIGNED);
        assert!(n.to_string().contains("FIRST_SEQ|END_SEQ|SEQ_INIT"));
        let odd = FcHeaderRepr {
            cs_ctl: 1,
            df_ctl: 0x40,
            ..n
        };
        assert!(odd.to_string().ends_with("cs_ctl=0x01 df_ctl=0x40"));
        assert_eq!(RCtl::from(0x99).to_string(), "UNKNOWN(0x99)");
    }
}
