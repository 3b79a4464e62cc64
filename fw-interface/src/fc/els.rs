//! Extended link services a fabric model and a target need: opcodes, LS_RJT, the login
//! service parameters of PLOGI/FLOGI/FDISC/PDISC (and their LS_ACC), PRLI/PRLO with the FCP
//! service parameter page, LOGO, ADISC, RSCN and SCR. Big-endian wire form (FC-LS).
//!
//! Source: reference §8.6 (opcodes, LS_RJT reasons), §8.4 (PRLI word 3), §7.8 (what the
//! firmware reports of PLOGI/PRLI); layouts per FC-LS as summarised in the Linux `fc_els.h`.

use core::fmt;

use crate::bytes::{array, be16, be32, set_be16, set_be32};
use crate::error::need;
use crate::fc::header::FcType;
use crate::value::{FieldVisitor, Value, Visit};
use crate::{PortId, WireError, Wwn};

enum_with_unknown! {
    /// ELS command code (payload byte 0).
    pub enum ElsOpcode(u8) {
        /// 0x01.
        LsRjt = 0x01 => "LS_RJT",
        /// 0x02.
        LsAcc = 0x02 => "LS_ACC",
        /// 0x03.
        Plogi = 0x03 => "PLOGI",
        /// 0x04.
        Flogi = 0x04 => "FLOGI",
        /// 0x05.
        Logo = 0x05 => "LOGO",
        /// 0x0E.
        Rtv = 0x0E => "RTV",
        /// 0x0F.
        Rls = 0x0F => "RLS",
        /// 0x12.
        Rrq = 0x12 => "RRQ",
        /// 0x13.
        Rec = 0x13 => "REC",
        /// 0x14.
        Srr = 0x14 => "SRR",
        /// 0x20.
        Prli = 0x20 => "PRLI",
        /// 0x21.
        Prlo = 0x21 => "PRLO",
        /// 0x24.
        Tprlo = 0x24 => "TPRLO",
        /// 0x50.
        Pdisc = 0x50 => "PDISC",
        /// 0x51.
        Fdisc = 0x51 => "FDISC",
        /// 0x52.
        Adisc = 0x52 => "ADISC",
        /// 0x61.
        Rscn = 0x61 => "RSCN",
        /// 0x62.
        Scr = 0x62 => "SCR",
        /// 0x78.
        Rnid = 0x78 => "RNID",
    }
}

enum_with_unknown! {
    /// LS_RJT reason code.
    pub enum LsRjtReason(u8) {
        /// 0x01.
        InvalidCommand = 0x01 => "INVALID_COMMAND",
        /// 0x03.
        LogicalError = 0x03 => "LOGICAL_ERROR",
        /// 0x05.
        LogicalBusy = 0x05 => "LOGICAL_BUSY",
        /// 0x07.
        ProtocolError = 0x07 => "PROTOCOL_ERROR",
        /// 0x09.
        UnableToPerform = 0x09 => "UNABLE_TO_PERFORM",
        /// 0x0B.
        NotSupported = 0x0B => "NOT_SUPPORTED",
        /// 0x0E.
        InProgress = 0x0E => "IN_PROGRESS",
        /// 0xFF.
        VendorUnique = 0xFF => "VENDOR_UNIQUE",
    }
}

enum_with_unknown! {
    /// LS_RJT reason explanation.
    pub enum LsRjtExplanation(u8) {
        /// 0x00.
        None = 0x00 => "NONE",
        /// 0x01: service parameter error — options.
        ServiceParamOptions = 0x01 => "SPP_OPTIONS",
        /// 0x03: service parameter error — initiator control.
        ServiceParamInitiatorCtl = 0x03 => "SPP_INITIATOR_CTL",
        /// 0x15.
        InvalidOriginatorSid = 0x15 => "INVALID_S_ID",
        /// 0x17.
        InvalidOxRxId = 0x17 => "INVALID_OX_RX_ID",
        /// 0x19.
        RequestInProgress = 0x19 => "REQUEST_IN_PROGRESS",
        /// 0x1E: N_Port login required.
        PlogiRequired = 0x1E => "PLOGI_REQUIRED",
        /// 0x29.
        InsufficientResources = 0x29 => "INSUFFICIENT_RESOURCES",
        /// 0x2A.
        UnableToSupplyData = 0x2A => "UNABLE_TO_SUPPLY_DATA",
        /// 0x2C.
        RequestNotSupported = 0x2C => "REQUEST_NOT_SUPPORTED",
        /// 0x2D.
        InvalidPayloadLength = 0x2D => "INVALID_PAYLOAD_LENGTH",
    }
}

/// LS_RJT payload length.
pub const LS_RJT_LEN: usize = 8;
/// Login (PLOGI/FLOGI/FDISC/PDISC and LS_ACC) payload length.
pub const SERVICE_PARAMS_LEN: usize = 116;
/// PRLI/PRLO page length.
pub const PRLI_PAGE_LEN: usize = 16;
/// LOGO payload length.
pub const LOGO_LEN: usize = 16;
/// ADISC payload length.
pub const ADISC_LEN: usize = 28;
/// SCR payload length.
pub const SCR_LEN: usize = 8;
/// Most RSCN pages this crate keeps.
pub const RSCN_MAX_PAGES: usize = 32;

fn check_opcode(b: &[u8], allowed: &[ElsOpcode]) -> Result<ElsOpcode, WireError> {
    need(4, b.len())?;
    let op = ElsOpcode::from(b[0]);
    if allowed.contains(&op) {
        Ok(op)
    } else {
        Err(WireError::Malformed(
            "ELS opcode does not match the payload type",
        ))
    }
}

// ---------------------------------------------------------------------------------------------

/// A parsed LS_RJT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LsRjtRepr {
    /// Byte 5.
    pub reason: LsRjtReason,
    /// Byte 6.
    pub explanation: LsRjtExplanation,
    /// Byte 7.
    pub vendor: u8,
}

impl LsRjtRepr {
    /// Parses 8 bytes.
    pub fn parse(b: &[u8]) -> Result<LsRjtRepr, WireError> {
        check_opcode(b, &[ElsOpcode::LsRjt])?;
        need(LS_RJT_LEN, b.len())?;
        Ok(LsRjtRepr {
            reason: b[5].into(),
            explanation: b[6].into(),
            vendor: b[7],
        })
    }

    /// 8.
    pub const fn buffer_len(&self) -> usize {
        LS_RJT_LEN
    }

    /// Writes 8 bytes.
    pub fn emit(&self, b: &mut [u8]) -> Result<(), WireError> {
        need(LS_RJT_LEN, b.len())?;
        b[..8].copy_from_slice(&[
            0x01,
            0,
            0,
            0,
            0,
            self.reason.into(),
            self.explanation.into(),
            self.vendor,
        ]);
        Ok(())
    }
}

impl fmt::Display for LsRjtRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LS_RJT reason={} expl={}", self.reason, self.explanation)?;
        if self.vendor != 0 {
            write!(f, " vendor={:#04x}", self.vendor)?;
        }
        Ok(())
    }
}

impl Visit for LsRjtRepr {
    fn visit(&self, v: &mut dyn FieldVisitor) {
        v.field("els_opcode", ElsOpcode::LsRjt.to_value());
        v.field("reason", self.reason.to_value());
        v.field("explanation", self.explanation.to_value());
        v.field("vendor", Value::U8(self.vendor));
    }
}

// ---------------------------------------------------------------------------------------------

bit_flags! {
    /// Common service parameters, common features word (bytes 8–9). Some bits mean
    /// different things in FLOGI and PLOGI; both names are listed.
    pub struct CommonFeatures: u16 {
        /// 0x8000: PLOGI: continuously increasing relative offset.
        const CONT_INCR_REL_OFF = 0x8000;
        /// 0x8000: FLOGI: multiple N_Port_ID (NPIV) support; LS_ACC: clean address.
        const NPIV = 0x8000;
        /// 0x4000: random relative offset.
        const RANDOM_REL_OFF = 0x4000;
        /// 0x2000: valid vendor version level (FLOGI LS_ACC: NPIV assignment).
        const VENDOR_VERSION_VALID = 0x2000;
        /// 0x1000: sender is an F_Port.
        const F_PORT = 0x1000;
        /// 0x0800: alternate BB_credit management.
        const ALT_BB_CREDIT = 0x0800;
        /// 0x0400: E_D_TOV resolution is nanoseconds.
        const E_D_TOV_NS = 0x0400;
        /// 0x0200: multicast.
        const MULTICAST = 0x0200;
        /// 0x0100: broadcast.
        const BROADCAST = 0x0100;
        /// 0x0080: hunt group.
        const HUNT_GROUP = 0x0080;
        /// 0x0040: dedicated simplex.
        const SIMPLEX = 0x0040;
        /// 0x0010: clock synchronisation.
        const CLOCK_SYNC = 0x0010;
        /// 0x0008: R_T_TOV is 100 µs (else 100 ms).
        const R_T_TOV_US = 0x0008;
        /// 0x0004: dynamic half duplex.
        const HALF_DUPLEX = 0x0004;
        /// 0x0002: SEQ_CNT.
        const SEQ_CNT = 0x0002;
        /// 0x0001: FLOGI payload length 256 (else 116).
        const PAYLOAD_256 = 0x0001;
    }
}

/// Class-specific service parameters (16 bytes each; class 1–4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ClassParamsRepr {
    /// Bytes 0–1: service options; B15 (0x8000) = class valid.
    pub service_options: u16,
    /// Bytes 2–3: initiator control.
    pub initiator_control: u16,
    /// Bytes 4–5: recipient control.
    pub recipient_control: u16,
    /// Bytes 6–7: receive data field size.
    pub rx_data_field_size: u16,
    /// Bytes 8–9: concurrent sequences.
    pub concurrent_sequences: u16,
    /// Bytes 10–11: end-to-end credit.
    pub ee_credit: u16,
    /// Byte 13: open sequences per exchange.
    pub open_seq_per_exchange: u8,
}

impl ClassParamsRepr {
    /// Service option: class valid.
    pub const VALID: u16 = 0x8000;
    /// Service option: sequential delivery.
    pub const SEQUENTIAL_DELIVERY: u16 = 0x0800;

    /// A valid class with the given receive size (sequential delivery, 255 concurrent
    /// sequences, 1 open sequence per exchange).
    pub const fn valid_class(rx_data_field_size: u16) -> Self {
        ClassParamsRepr {
            service_options: Self::VALID | Self::SEQUENTIAL_DELIVERY,
            initiator_control: 0,
            recipient_control: 0,
            rx_data_field_size,
            concurrent_sequences: 255,
            ee_credit: 0,
            open_seq_per_exchange: 1,
        }
    }

    /// B15 of the service options.
    pub const fn is_valid(&self) -> bool {
        self.service_options & Self::VALID != 0
    }

    fn parse(b: &[u8]) -> ClassParamsRepr {
        ClassParamsRepr {
            service_options: be16(b, 0),
            initiator_control: be16(b, 2),
            recipient_control: be16(b, 4),
            rx_data_field_size: be16(b, 6),
            concurrent_sequences: be16(b, 8),
            ee_credit: be16(b, 10),
            open_seq_per_exchange: b[13],
        }
    }

    fn emit(&self, b: &mut [u8]) {
        set_be16(b, 0, self.service_options);
        set_be16(b, 2, self.initiator_control);
        set_be16(b, 4, self.recipient_control);
        set_be16(b, 6, self.rx_data_field_size);
        set_be16(b, 8, self.concurrent_sequences);
        set_be16(b, 10, self.ee_credit);
        b[12] = 0;
        b[13] = self.open_seq_per_exchange;
        b[14..16].fill(0);
    }
}

/// Login service parameters: the payload of PLOGI, FLOGI, FDISC, PDISC and of their LS_ACC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ServiceParamsRepr {
    /// Byte 0: PLOGI, FLOGI, FDISC, PDISC or LS_ACC.
    pub opcode: ElsOpcode,
    /// Byte 4: highest FC-PH version (obsolete).
    pub version_high: u8,
    /// Byte 5: lowest FC-PH version (obsolete).
    pub version_low: u8,
    /// Bytes 6–7: buffer-to-buffer credit.
    pub bb_credit: u16,
    /// Bytes 8–9: common features.
    pub common_features: CommonFeatures,
    /// Byte 10 bits 7–4: BB_SC_N.
    pub bb_sc_n: u8,
    /// Bytes 10–11 bits 11–0: receive data field size.
    pub rx_data_field_size: u16,
    /// Bytes 12–15: PLOGI: total concurrent sequences (high half) and relative offset by
    /// information category (low half); FLOGI LS_ACC: R_A_TOV (ms).
    pub word2: u32,
    /// Bytes 16–19: E_D_TOV.
    pub e_d_tov: u32,
    /// Bytes 20–27: WWPN.
    pub port_name: Wwn,
    /// Bytes 28–35: WWNN.
    pub node_name: Wwn,
    /// Bytes 36–99: class 1–4 parameters.
    pub classes: [ClassParamsRepr; 4],
    /// Bytes 100–115: vendor version level.
    pub vendor_version: [u8; 16],
}

impl ServiceParamsRepr {
    /// Typical N_Port parameters (class 3 only) for `opcode`: version 0x20/0x20, BB credit 3,
    /// features CONT_INCR_REL_OFF, the given receive size, 255 sequences, relative offset for
    /// all categories, E_D_TOV 2000 ms.
    pub const fn n_port(
        opcode: ElsOpcode,
        port_name: Wwn,
        node_name: Wwn,
        rx_data_field_size: u16,
    ) -> Self {
        let empty = ClassParamsRepr {
            service_options: 0,
            initiator_control: 0,
            recipient_control: 0,
            rx_data_field_size: 0,
            concurrent_sequences: 0,
            ee_credit: 0,
            open_seq_per_exchange: 0,
        };
        ServiceParamsRepr {
            opcode,
            version_high: 0x20,
            version_low: 0x20,
            bb_credit: 3,
            common_features: CommonFeatures::CONT_INCR_REL_OFF,
            bb_sc_n: 0,
            rx_data_field_size: rx_data_field_size & 0xFFF,
            word2: 0x00FF_001F,
            e_d_tov: 2000,
            port_name,
            node_name,
            classes: [
                empty,
                empty,
                ClassParamsRepr::valid_class(rx_data_field_size),
                empty,
            ],
            vendor_version: [0; 16],
        }
    }

    /// Class 3 parameters.
    pub const fn class3(&self) -> &ClassParamsRepr {
        &self.classes[2]
    }

    /// PLOGI: total concurrent sequences.
    pub const fn total_concurrent_sequences(&self) -> u16 {
        (self.word2 >> 16) as u16
    }

    /// PLOGI: relative offset by information category.
    pub const fn rel_offset_categories(&self) -> u16 {
        self.word2 as u16
    }

    /// FLOGI LS_ACC: R_A_TOV.
    pub const fn r_a_tov(&self) -> u32 {
        self.word2
    }

    /// Parses 116 bytes.
    pub fn parse(b: &[u8]) -> Result<ServiceParamsRepr, WireError> {
        use ElsOpcode::*;
        let opcode = check_opcode(b, &[Plogi, Flogi, Fdisc, Pdisc, LsAcc])?;
        need(SERVICE_PARAMS_LEN, b.len())?;
        let bb_data = be16(b, 10);
        Ok(ServiceParamsRepr {
            opcode,
            version_high: b[4],
            version_low: b[5],
            bb_credit: be16(b, 6),
            common_features: CommonFeatures::from_bits_retain(be16(b, 8)),
            bb_sc_n: (bb_data >> 12) as u8,
            rx_data_field_size: bb_data & 0xFFF,
            word2: be32(b, 12),
            e_d_tov: be32(b, 16),
            port_name: Wwn(array(b, 20)),
            node_name: Wwn(array(b, 28)),
            classes: [
                ClassParamsRepr::parse(&b[36..52]),
                ClassParamsRepr::parse(&b[52..68]),
                ClassParamsRepr::parse(&b[68..84]),
                ClassParamsRepr::parse(&b[84..100]),
            ],
            vendor_version: array(b, 100),
        })
    }

    /// 116.
    pub const fn buffer_len(&self) -> usize {
        SERVICE_PARAMS_LEN
    }

    /// Writes 116 bytes.
    pub fn emit(&self, b: &mut [u8]) -> Result<(), WireError> {
        need(SERVICE_PARAMS_LEN, b.len())?;
        b[..4].copy_from_slice(&[self.opcode.into(), 0, 0, 0]);
        b[4] = self.version_high;
        b[5] = self.version_low;
        set_be16(b, 6, self.bb_credit);
        set_be16(b, 8, self.common_features.bits());
        set_be16(
            b,
            10,
            (self.bb_sc_n as u16 & 0xF) << 12 | self.rx_data_field_size & 0xFFF,
        );
        set_be32(b, 12, self.word2);
        set_be32(b, 16, self.e_d_tov);
        b[20..28].copy_from_slice(&self.port_name.0);
        b[28..36].copy_from_slice(&self.node_name.0);
        for (i, c) in self.classes.iter().enumerate() {
            c.emit(&mut b[36 + 16 * i..52 + 16 * i]);
        }
        b[100..116].copy_from_slice(&self.vendor_version);
        Ok(())
    }
}

impl fmt::Display for ServiceParamsRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} wwpn={} wwnn={} bb_credit={} rx_size={} features={} class3={}",
            self.opcode,
            self.port_name,
            self.node_name,
            self.bb_credit,
            self.rx_data_field_size,
            self.common_features,
            if self.class3().is_valid() {
                "valid"
            } else {
                "invalid"
            }
        )
    }
}

impl Visit for ServiceParamsRepr {
    fn visit(&self, v: &mut dyn FieldVisitor) {
        v.field("els_opcode", self.opcode.to_value());
        v.field("version_high", Value::U8(self.version_high));
        v.field("version_low", Value::U8(self.version_low));
        v.field("bb_credit", Value::U16(self.bb_credit));
        v.field("common_features", Value::U16(self.common_features.bits()));
        v.field("bb_sc_n", Value::U8(self.bb_sc_n));
        v.field("rx_data_field_size", Value::U16(self.rx_data_field_size));
        v.field("word2", Value::U32(self.word2));
        v.field("e_d_tov", Value::U32(self.e_d_tov));
        v.field("port_name", Value::Wwn(self.port_name));
        v.field("node_name", Value::Wwn(self.node_name));
        let c = self.class3();
        v.field("class3_service_options", Value::U16(c.service_options));
        v.field(
            "class3_rx_data_field_size",
            Value::U16(c.rx_data_field_size),
        );
        v.field(
            "class3_concurrent_sequences",
            Value::U16(c.concurrent_sequences),
        );
        v.field(
            "class3_open_seq_per_exchange",
            Value::U8(c.open_seq_per_exchange),
        );
    }
}

// ---------------------------------------------------------------------------------------------

bit_flags! {
    /// PRLI FCP service parameter page, word 3 (reference §8.4).
    pub struct PrliServiceParams: u32 {
        /// 0x0001: write XFER_RDY disabled.
        const WRITE_XFER_RDY_DISABLED = 0x0001;
        /// 0x0002: read XFER_RDY disabled.
        const READ_XFER_RDY_DISABLED = 0x0002;
        /// 0x0010: target function.
        const TARGET_FUNCTION = 0x0010;
        /// 0x0020: initiator function.
        const INITIATOR_FUNCTION = 0x0020;
        /// 0x0040: data overlay allowed.
        const DATA_OVERLAY = 0x0040;
        /// 0x0080: confirmed completion allowed.
        const CONFIRMED_COMPLETION = 0x0080;
        /// 0x0100: retry.
        const RETRY = 0x0100;
        /// 0x0200: task retry identification requested.
        const TASK_RETRY_ID = 0x0200;
    }
}

bit_flags! {
    /// PRLI page byte 2, bits 7–5 (bits 3–0 are the response code, see [`PrliResponse`]).
    pub struct PrliPageFlags: u8 {
        /// 0x80: originator process associator valid.
        const ORIG_PA_VALID = 0x80;
        /// 0x40: responder process associator valid.
        const RESP_PA_VALID = 0x40;
        /// 0x20: establish image pair.
        const EST_IMAGE_PAIR = 0x20;
    }
}

enum_with_unknown! {
    /// PRLI LS_ACC page response code (byte 2 bits 3–0); 0 in a request.
    pub enum PrliResponse(u8) {
        /// 0: none (a request).
        None = 0 => "NONE",
        /// 1: request executed.
        Accepted = 1 => "ACCEPTED",
        /// 2: no resources.
        NoResources = 2 => "NO_RESOURCES",
        /// 3: initialization not complete.
        InitNotComplete = 3 => "INIT_NOT_COMPLETE",
        /// 4: no such process associator.
        NoProcessAssociator = 4 => "NO_PA",
        /// 5: configuration precludes image pair.
        ConfigPrecludes = 5 => "CONFIG_PRECLUDES",
        /// 6: completed conditionally.
        Conditional = 6 => "CONDITIONAL",
        /// 7: cannot handle multiple pages.
        MultipleNotSupported = 7 => "MULTIPLE_NOT_SUPPORTED",
        /// 8: invalid page.
        InvalidPage = 8 => "INVALID_PAGE",
    }
}

/// One PRLI/PRLO service parameter page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PrliPageRepr {
    /// Byte 0: FC-4 type (FCP).
    pub type_code: FcType,
    /// Byte 1.
    pub type_ext: u8,
    /// Byte 2 bits 7–5.
    pub flags: PrliPageFlags,
    /// Byte 2 bits 3–0.
    pub response: PrliResponse,
    /// Bytes 4–7.
    pub originator_pa: u32,
    /// Bytes 8–11.
    pub responder_pa: u32,
    /// Bytes 12–15: word 3.
    pub service_params: PrliServiceParams,
}

impl PrliPageRepr {
    /// An FCP page establishing an image pair with `params`.
    pub const fn fcp(response: PrliResponse, service_params: PrliServiceParams) -> Self {
        PrliPageRepr {
            type_code: FcType::Fcp,
            type_ext: 0,
            flags: PrliPageFlags::EST_IMAGE_PAIR,
            response,
            originator_pa: 0,
            responder_pa: 0,
            service_params,
        }
    }

    fn parse(b: &[u8]) -> PrliPageRepr {
        PrliPageRepr {
            type_code: b[0].into(),
            type_ext: b[1],
            flags: PrliPageFlags::from_bits_retain(b[2] & 0xF0),
            response: (b[2] & 0x0F).into(),
            originator_pa: be32(b, 4),
            responder_pa: be32(b, 8),
            service_params: PrliServiceParams::from_bits_retain(be32(b, 12)),
        }
    }

    fn emit(&self, b: &mut [u8]) {
        b[0] = self.type_code.into();
        b[1] = self.type_ext;
        b[2] = self.flags.bits() & 0xF0 | u8::from(self.response) & 0x0F;
        b[3] = 0;
        set_be32(b, 4, self.originator_pa);
        set_be32(b, 8, self.responder_pa);
        set_be32(b, 12, self.service_params.bits());
    }
}

/// A PRLI or PRLO (or their LS_ACC) with its FCP page.
///
/// Only one page is kept: the first FCP-type page, or the first page if none is FCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PrliRepr {
    /// Byte 0: PRLI, PRLO or LS_ACC.
    pub opcode: ElsOpcode,
    /// The page.
    pub page: PrliPageRepr,
}

impl PrliRepr {
    /// Parses a payload: byte 1 must be 0x10 (page length), bytes 2–3 the payload length
    /// (4 + 16·pages, within the buffer).
    pub fn parse(b: &[u8]) -> Result<PrliRepr, WireError> {
        let opcode = check_opcode(b, &[ElsOpcode::Prli, ElsOpcode::Prlo, ElsOpcode::LsAcc])?;
        if b[1] as usize != PRLI_PAGE_LEN {
            return Err(WireError::Malformed("PRLI page length not 16"));
        }
        let len = be16(b, 2) as usize;
        if len < 4 + PRLI_PAGE_LEN || !(len - 4).is_multiple_of(PRLI_PAGE_LEN) {
            return Err(WireError::Malformed("PRLI payload length not 4 + 16n"));
        }
        need(len, b.len())?;
        let mut pages = b[4..len].chunks_exact(PRLI_PAGE_LEN);
        let first = pages.clone().next().map(PrliPageRepr::parse);
        let fcp = pages
            .find(|p| p[0] == u8::from(FcType::Fcp))
            .map(PrliPageRepr::parse);
        match fcp.or(first) {
            Some(page) => Ok(PrliRepr { opcode, page }),
            None => Err(WireError::Malformed("PRLI without a page")),
        }
    }

    /// 20.
    pub const fn buffer_len(&self) -> usize {
        4 + PRLI_PAGE_LEN
    }

    /// Writes 20 bytes.
    pub fn emit(&self, b: &mut [u8]) -> Result<(), WireError> {
        need(self.buffer_len(), b.len())?;
        b[0] = self.opcode.into();
        b[1] = PRLI_PAGE_LEN as u8;
        set_be16(b, 2, self.buffer_len() as u16);
        self.page.emit(&mut b[4..20]);
        Ok(())
    }
}

impl fmt::Display for PrliRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} type={} params={}",
            self.opcode, self.page.type_code, self.page.service_params
        )?;
        if self.page.response != PrliResponse::None {
            write!(f, " response={}", self.page.response)?;
        }
        if !self.page.flags.is_empty() {
            write!(f, " flags={}", self.page.flags)?;
        }
        Ok(())
    }
}

impl Visit for PrliRepr {
    fn visit(&self, v: &mut dyn FieldVisitor) {
        v.field("els_opcode", self.opcode.to_value());
        v.field("type_code", self.page.type_code.to_value());
        v.field("type_ext", Value::U8(self.page.type_ext));
        v.field("page_flags", Value::U8(self.page.flags.bits()));
        v.field("response_code", self.page.response.to_value());
        v.field("originator_pa", Value::U32(self.page.originator_pa));
        v.field("responder_pa", Value::U32(self.page.responder_pa));
        v.field(
            "service_params",
            Value::U32(self.page.service_params.bits()),
        );
    }
}

// ---------------------------------------------------------------------------------------------

/// A LOGO request: the N_Port ID and name of the port logging out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LogoRepr {
    /// Bytes 5–7.
    pub port_id: PortId,
    /// Bytes 8–15.
    pub port_name: Wwn,
}

impl LogoRepr {
    /// Parses 16 bytes.
    pub fn parse(b: &[u8]) -> Result<LogoRepr, WireError> {
        check_opcode(b, &[ElsOpcode::Logo])?;
        need(LOGO_LEN, b.len())?;
        Ok(LogoRepr {
            port_id: PortId::from_be_bytes(array(b, 5)),
            port_name: Wwn(array(b, 8)),
        })
    }

    /// 16.
    pub const fn buffer_len(&self) -> usize {
        LOGO_LEN
    }

    /// Writes 16 bytes.
    pub fn emit(&self, b: &mut [u8]) -> Result<(), WireError> {
        need(LOGO_LEN, b.len())?;
        b[..5].copy_from_slice(&[ElsOpcode::Logo.into(), 0, 0, 0, 0]);
        b[5..8].copy_from_slice(&self.port_id.to_be_bytes());
        b[8..16].copy_from_slice(&self.port_name.0);
        Ok(())
    }
}

impl fmt::Display for LogoRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LOGO port_id={} wwpn={}", self.port_id, self.port_name)
    }
}

impl Visit for LogoRepr {
    fn visit(&self, v: &mut dyn FieldVisitor) {
        v.field("els_opcode", ElsOpcode::Logo.to_value());
        v.field("port_id", Value::PortId(self.port_id));
        v.field("port_name", Value::Wwn(self.port_name));
    }
}

/// ADISC and its LS_ACC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AdiscRepr {
    /// Byte 0: ADISC or LS_ACC.
    pub opcode: ElsOpcode,
    /// Bytes 5–7.
    pub hard_address: PortId,
    /// Bytes 8–15.
    pub port_name: Wwn,
    /// Bytes 16–23.
    pub node_name: Wwn,
    /// Bytes 25–27.
    pub port_id: PortId,
}

impl AdiscRepr {
    /// Parses 28 bytes.
    pub fn parse(b: &[u8]) -> Result<AdiscRepr, WireError> {
        let opcode = check_opcode(b, &[ElsOpcode::Adisc, ElsOpcode::LsAcc])?;
        need(ADISC_LEN, b.len())?;
        Ok(AdiscRepr {
            opcode,
            hard_address: PortId::from_be_bytes(array(b, 5)),
            port_name: Wwn(array(b, 8)),
            node_name: Wwn(array(b, 16)),
            port_id: PortId::from_be_bytes(array(b, 25)),
        })
    }

    /// 28.
    pub const fn buffer_len(&self) -> usize {
        ADISC_LEN
    }

    /// Writes 28 bytes.
    pub fn emit(&self, b: &mut [u8]) -> Result<(), WireError> {
        need(ADISC_LEN, b.len())?;
        b[..5].copy_from_slice(&[self.opcode.into(), 0, 0, 0, 0]);
        b[5..8].copy_from_slice(&self.hard_address.to_be_bytes());
        b[8..16].copy_from_slice(&self.port_name.0);
        b[16..24].copy_from_slice(&self.node_name.0);
        b[24] = 0;
        b[25..28].copy_from_slice(&self.port_id.to_be_bytes());
        Ok(())
    }
}

impl fmt::Display for AdiscRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} port_id={} wwpn={} wwnn={}",
            self.opcode, self.port_id, self.port_name, self.node_name
        )?;
        if self.hard_address.get() != 0 {
            write!(f, " hard_address={}", self.hard_address)?;
        }
        Ok(())
    }
}

impl Visit for AdiscRepr {
    fn visit(&self, v: &mut dyn FieldVisitor) {
        v.field("els_opcode", self.opcode.to_value());
        v.field("hard_address", Value::PortId(self.hard_address));
        v.field("port_name", Value::Wwn(self.port_name));
        v.field("node_name", Value::Wwn(self.node_name));
        v.field("port_id", Value::PortId(self.port_id));
    }
}

// ---------------------------------------------------------------------------------------------

enum_with_unknown! {
    /// RSCN page address format (bits 1–0 of the page's first byte).
    pub enum RscnAddressFormat(u8) {
        /// 0: one port.
        Port = 0 => "PORT",
        /// 1: an area.
        Area = 1 => "AREA",
        /// 2: a domain.
        Domain = 2 => "DOMAIN",
        /// 3: the whole fabric.
        Fabric = 3 => "FABRIC",
    }
}

/// One RSCN affected-port page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RscnPage {
    /// Bits 5–2 of byte 0.
    pub event_qualifier: u8,
    /// Bits 1–0 of byte 0 (raw; see [`RscnAddressFormat`]).
    pub address_format: u8,
    /// Bytes 1–3.
    pub port_id: PortId,
}

/// An RSCN (up to [`RSCN_MAX_PAGES`] pages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RscnRepr {
    pages: [RscnPage; RSCN_MAX_PAGES],
    count: u8,
}

impl RscnRepr {
    /// An RSCN with the given pages; `Err` if more than [`RSCN_MAX_PAGES`].
    pub fn new(pages: &[RscnPage]) -> Result<RscnRepr, WireError> {
        let mut r = RscnRepr {
            pages: [RscnPage::default(); RSCN_MAX_PAGES],
            count: 0,
        };
        r.pages
            .get_mut(..pages.len())
            .ok_or(WireError::Unsupported("RSCN with more than 32 pages"))?
            .copy_from_slice(pages);
        r.count = pages.len() as u8;
        Ok(r)
    }

    /// The pages.
    pub fn pages(&self) -> &[RscnPage] {
        &self.pages[..self.count as usize]
    }

    /// Parses a payload: byte 1 = 4 (page length), bytes 2–3 = 4 + 4·pages.
    pub fn parse(b: &[u8]) -> Result<RscnRepr, WireError> {
        check_opcode(b, &[ElsOpcode::Rscn])?;
        if b[1] != 4 {
            return Err(WireError::Malformed("RSCN page length not 4"));
        }
        let len = be16(b, 2) as usize;
        if len < 8 || !len.is_multiple_of(4) {
            return Err(WireError::Malformed("RSCN payload length not 4 + 4n"));
        }
        need(len, b.len())?;
        let mut pages = [RscnPage::default(); RSCN_MAX_PAGES];
        let chunks = b[4..len].chunks_exact(4);
        if chunks.len() > RSCN_MAX_PAGES {
            return Err(WireError::Unsupported("RSCN with more than 32 pages"));
        }
        let count = chunks.len();
        for (p, c) in pages.iter_mut().zip(chunks) {
            *p = RscnPage {
                event_qualifier: (c[0] >> 2) & 0xF,
                address_format: c[0] & 3,
                port_id: PortId::from_be_bytes([c[1], c[2], c[3]]),
            };
        }
        Ok(RscnRepr {
            pages,
            count: count as u8,
        })
    }

    /// 4 + 4·pages.
    pub fn buffer_len(&self) -> usize {
        4 + 4 * self.count as usize
    }

    /// Writes [`buffer_len`](Self::buffer_len) bytes.
    pub fn emit(&self, b: &mut [u8]) -> Result<(), WireError> {
        need(self.buffer_len(), b.len())?;
        b[0] = ElsOpcode::Rscn.into();
        b[1] = 4;
        set_be16(b, 2, self.buffer_len() as u16);
        for (p, c) in self.pages().iter().zip(b[4..].chunks_exact_mut(4)) {
            c[0] = (p.event_qualifier & 0xF) << 2 | p.address_format & 3;
            c[1..4].copy_from_slice(&p.port_id.to_be_bytes());
        }
        Ok(())
    }
}

impl fmt::Display for RscnRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RSCN")?;
        for p in self.pages() {
            write!(
                f,
                " {}/{}",
                p.port_id,
                RscnAddressFormat::from(p.address_format)
            )?;
        }
        Ok(())
    }
}

impl Visit for RscnRepr {
    fn visit(&self, v: &mut dyn FieldVisitor) {
        v.field("els_opcode", ElsOpcode::Rscn.to_value());
        v.field("page_count", Value::U8(self.count));
        if let Some(p) = self.pages().first() {
            v.field("port_id", Value::PortId(p.port_id));
            v.field(
                "address_format",
                RscnAddressFormat::from(p.address_format).to_value(),
            );
        }
    }
}

/// SCR: state change registration (function 1 fabric, 2 N_Port, 3 full, 255 clear).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ScrRepr {
    /// Byte 7.
    pub function: u8,
}

impl ScrRepr {
    /// Parses 8 bytes.
    pub fn parse(b: &[u8]) -> Result<ScrRepr, WireError> {
        check_opcode(b, &[ElsOpcode::Scr])?;
        need(SCR_LEN, b.len())?;
        Ok(ScrRepr { function: b[7] })
    }

    /// 8.
    pub const fn buffer_len(&self) -> usize {
        SCR_LEN
    }

    /// Writes 8 bytes.
    pub fn emit(&self, b: &mut [u8]) -> Result<(), WireError> {
        need(SCR_LEN, b.len())?;
        b[..8].copy_from_slice(&[ElsOpcode::Scr.into(), 0, 0, 0, 0, 0, 0, self.function]);
        Ok(())
    }
}

impl fmt::Display for ScrRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SCR function={}", self.function)
    }
}

impl Visit for ScrRepr {
    fn visit(&self, v: &mut dyn FieldVisitor) {
        v.field("els_opcode", ElsOpcode::Scr.to_value());
        v.field("function", Value::U8(self.function));
    }
}

// ---------------------------------------------------------------------------------------------

/// Any ELS payload this crate decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ElsRepr {
    /// LS_RJT.
    LsRjt(LsRjtRepr),
    /// PLOGI / FLOGI / FDISC / PDISC, or an LS_ACC carrying service parameters.
    ServiceParams(ServiceParamsRepr),
    /// PRLI / PRLO, or an LS_ACC carrying a PRLI page.
    Prli(PrliRepr),
    /// LOGO.
    Logo(LogoRepr),
    /// ADISC or its LS_ACC.
    Adisc(AdiscRepr),
    /// RSCN.
    Rscn(RscnRepr),
    /// SCR.
    Scr(ScrRepr),
    /// A plain LS_ACC (e.g. answering LOGO), or any other ELS: opcode and payload length.
    Other {
        /// Byte 0.
        opcode: ElsOpcode,
        /// Payload length.
        len: usize,
    },
}

impl ElsRepr {
    /// Parses an ELS payload by its opcode. An LS_ACC's layout depends on the request it
    /// answers, which the payload does not say; this guesses from its shape (116+ bytes:
    /// service parameters; byte 1 = 0x10 with a PRLI length: PRLI page; 28 bytes: ADISC)
    /// and otherwise returns [`ElsRepr::Other`]. Callers that know the request should call
    /// the specific `parse` instead.
    pub fn parse(b: &[u8]) -> Result<ElsRepr, WireError> {
        need(4, b.len())?;
        let opcode = ElsOpcode::from(b[0]);
        Ok(match opcode {
            ElsOpcode::LsRjt => ElsRepr::LsRjt(LsRjtRepr::parse(b)?),
            ElsOpcode::Plogi | ElsOpcode::Flogi | ElsOpcode::Fdisc | ElsOpcode::Pdisc => {
                ElsRepr::ServiceParams(ServiceParamsRepr::parse(b)?)
            }
            ElsOpcode::Prli | ElsOpcode::Prlo => ElsRepr::Prli(PrliRepr::parse(b)?),
            ElsOpcode::Logo => ElsRepr::Logo(LogoRepr::parse(b)?),
            ElsOpcode::Adisc => ElsRepr::Adisc(AdiscRepr::parse(b)?),
            ElsOpcode::Rscn => ElsRepr::Rscn(RscnRepr::parse(b)?),
            ElsOpcode::Scr => ElsRepr::Scr(ScrRepr::parse(b)?),
            ElsOpcode::LsAcc if b.len() >= SERVICE_PARAMS_LEN => {
                ElsRepr::ServiceParams(ServiceParamsRepr::parse(b)?)
            }
            ElsOpcode::LsAcc if b[1] as usize == PRLI_PAGE_LEN && PrliRepr::parse(b).is_ok() => {
                ElsRepr::Prli(PrliRepr::parse(b)?)
            }
            ElsOpcode::LsAcc if b.len() == ADISC_LEN => ElsRepr::Adisc(AdiscRepr::parse(b)?),
            _ => ElsRepr::Other {
                opcode,
                len: b.len(),
            },
        })
    }

    /// Bytes [`emit`](Self::emit) writes (4 for `Other`: the opcode word only).
    pub fn buffer_len(&self) -> usize {
        match self {
            ElsRepr::LsRjt(r) => r.buffer_len(),
            ElsRepr::ServiceParams(r) => r.buffer_len(),
            ElsRepr::Prli(r) => r.buffer_len(),
            ElsRepr::Logo(r) => r.buffer_len(),
            ElsRepr::Adisc(r) => r.buffer_len(),
            ElsRepr::Rscn(r) => r.buffer_len(),
            ElsRepr::Scr(r) => r.buffer_len(),
            ElsRepr::Other { .. } => 4,
        }
    }

    /// Writes the payload.
    pub fn emit(&self, b: &mut [u8]) -> Result<(), WireError> {
        match self {
            ElsRepr::LsRjt(r) => r.emit(b),
            ElsRepr::ServiceParams(r) => r.emit(b),
            ElsRepr::Prli(r) => r.emit(b),
            ElsRepr::Logo(r) => r.emit(b),
            ElsRepr::Adisc(r) => r.emit(b),
            ElsRepr::Rscn(r) => r.emit(b),
            ElsRepr::Scr(r) => r.emit(b),
            ElsRepr::Other { opcode, .. } => {
                need(4, b.len())?;
                b[..4].copy_from_slice(&[(*opcode).into(), 0, 0, 0]);
                Ok(())
            }
        }
    }

    /// The opcode byte.
    pub fn opcode(&self) -> ElsOpcode {
        match self {
            ElsRepr::LsRjt(_) => ElsOpcode::LsRjt,
            ElsRepr::ServiceParams(r) => r.opcode,
            ElsRepr::Prli(r) => r.opcode,
            ElsRepr::Logo(_) => ElsOpcode::Logo,
            ElsRepr::Adisc(r) => r.opcode,
            ElsRepr::Rscn(_) => ElsOpcode::Rscn,
            ElsRepr::Scr(_) => ElsOpcode::Scr,
            ElsRepr::Other { opcode, .. } => *opcode,
        }
    }
}

impl fmt::Display for ElsRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ElsRepr::LsRjt(r) => r.fmt(f),
            ElsRepr::ServiceParams(r) => r.fmt(f),
            ElsRepr::Prli(r) => r.fmt(f),
            ElsRepr::Logo(r) => r.fmt(f),
            ElsRepr::Adisc(r) => r.fmt(f),
            ElsRepr::Rscn(r) => r.fmt(f),
            ElsRepr::Scr(r) => r.fmt(f),
            ElsRepr::Other { opcode, len } => write!(f, "{opcode} len={len}"),
        }
    }
}

impl Visit for ElsRepr {
    fn visit(&self, v: &mut dyn FieldVisitor) {
        match self {
            ElsRepr::LsRjt(r) => r.visit(v),
            ElsRepr::ServiceParams(r) => r.visit(v),
            ElsRepr::Prli(r) => r.visit(v),
            ElsRepr::Logo(r) => r.visit(v),
            ElsRepr::Adisc(r) => r.visit(v),
            ElsRepr::Rscn(r) => r.visit(v),
            ElsRepr::Scr(r) => r.visit(v),
            ElsRepr::Other { opcode, len } => {
                v.field("els_opcode", opcode.to_value());
                v.field("payload_len", Value::U32(*len as u32));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::value::test_util::Collect;
    use std::string::ToString;

    fn golden_plogi() -> [u8; 116] {
        let mut b = [0u8; 116];
        b[0] = 0x03; // PLOGI
        b[4] = 0x20; // highest version
        b[5] = 0x20; // lowest version
        b[6..8].copy_from_slice(&[0x00, 0x03]); // BB credit 3
        b[8..10].copy_from_slice(&[0x80, 0x00]); // features: continuously increasing rel off
        b[10..12].copy_from_slice(&[0x08, 0x00]); // BB_SC_N 0, rx size 2048
        b[12..16].copy_from_slice(&[0x00, 0xff, 0x00, 0x1f]); // 255 seqs, rel off categories
        b[16..20].copy_from_slice(&[0x00, 0x00, 0x07, 0xd0]); // E_D_TOV 2000
        b[20..28].copy_from_slice(&[0x21, 0, 0, 0x24, 0xff, 0x11, 0x22, 0x33]); // WWPN
        b[28..36].copy_from_slice(&[0x20, 0, 0, 0x24, 0xff, 0x11, 0x22, 0x33]); // WWNN
        // class 3 at 36 + 32 = 68
        b[68..70].copy_from_slice(&[0x88, 0x00]); // valid | sequential delivery
        b[74..76].copy_from_slice(&[0x08, 0x00]); // rx data field size 2048
        b[76..78].copy_from_slice(&[0x00, 0xff]); // concurrent sequences
        b[81] = 0x01; // open sequences per exchange
        b
    }

    #[test]
    fn golden_plogi_parse_emit() {
        let b = golden_plogi();
        let wwpn = Wwn([0x21, 0, 0, 0x24, 0xff, 0x11, 0x22, 0x33]);
        let wwnn = Wwn([0x20, 0, 0, 0x24, 0xff, 0x11, 0x22, 0x33]);
        let want = ServiceParamsRepr::n_port(ElsOpcode::Plogi, wwpn, wwnn, 2048);
        let r = ServiceParamsRepr::parse(&b).unwrap();
        assert_eq!(r, want);
        assert!(r.class3().is_valid() && !r.classes[0].is_valid());
        assert_eq!(
            (
                r.total_concurrent_sequences(),
                r.rel_offset_categories(),
                r.r_a_tov()
            ),
            (255, 0x1f, 0x00FF_001F)
        );
        let mut out = [0xA5u8; 116];
        r.emit(&mut out).unwrap();
        assert_eq!(out, b);
        assert_eq!(ElsRepr::parse(&b).unwrap(), ElsRepr::ServiceParams(r));
        assert!(
            r.to_string()
                .starts_with("PLOGI wwpn=21:00:00:24:ff:11:22:33")
        );
        // The same bytes with opcode LS_ACC decode as an accept.
        let mut acc = b;
        acc[0] = 0x02;
        assert_eq!(ElsRepr::parse(&acc).unwrap().opcode(), ElsOpcode::LsAcc);
        assert!(ServiceParamsRepr::parse(&b[..115]).is_err());
        let mut logo_op = b;
        logo_op[0] = 0x05;
        assert!(ServiceParamsRepr::parse(&logo_op).is_err());
        Collect::of(&r).assert_unique();
        assert_eq!(r.buffer_len(), 116);
    }

    #[test]
    fn golden_prli_and_accept() {
        let b = [
            0x20, 0x10, 0x00, 0x14, // PRLI, page len 16, payload len 20
            0x08, 0x00, 0x20, 0x00, // FCP, ext 0, establish image pair, resp 0
            0x00, 0x00, 0x00, 0x00, // originator PA
            0x00, 0x00, 0x00, 0x00, // responder PA
            0x00, 0x00, 0x00,
            0xa2, // word 3: initiator | confirmed completion | read xfer_rdy disabled
        ];
        let r = PrliRepr::parse(&b).unwrap();
        let params = PrliServiceParams::INITIATOR_FUNCTION
            | PrliServiceParams::CONFIRMED_COMPLETION
            | PrliServiceParams::READ_XFER_RDY_DISABLED;
        assert_eq!(
            r,
            PrliRepr {
                opcode: ElsOpcode::Prli,
                page: PrliPageRepr::fcp(PrliResponse::None, params)
            }
        );
        let mut out = [0xA5u8; 20];
        r.emit(&mut out).unwrap();
        assert_eq!(out, b);
        assert_eq!(
            r.to_string(),
            "PRLI type=FCP params=READ_XFER_RDY_DISABLED|INITIATOR_FUNCTION|CONFIRMED_COMPLETION flags=EST_IMAGE_PAIR"
        );
        let mut acc = b;
        acc[0] = 0x02;
        acc[6] = 0x21; // image pair + accepted
        acc[19] = 0x12; // target function | read xfer_rdy disabled
        let a = ElsRepr::parse(&acc).unwrap();
        let ElsRepr::Prli(a) = a else { panic!("{a:?}") };
        assert_eq!(a.page.response, PrliResponse::Accepted);
        assert!(
            a.page
                .service_params
                .contains(PrliServiceParams::TARGET_FUNCTION)
        );
        let mut bad = b;
        bad[1] = 0x14;
        assert!(PrliRepr::parse(&bad).is_err());
        bad = b;
        bad[3] = 0x15;
        assert!(PrliRepr::parse(&bad).is_err());
        bad = b;
        bad[3] = 0x24;
        assert!(PrliRepr::parse(&bad).is_err());
        // Two pages: the FCP one is picked.
        let mut two = [0u8; 36];
        two[..4].copy_from_slice(&[0x20, 0x10, 0x00, 0x24]);
        two[4] = 0x28; // NVMe page first
        two[20..36].copy_from_slice(&b[4..20]);
        assert_eq!(PrliRepr::parse(&two).unwrap().page.type_code, FcType::Fcp);
        Collect::of(&r).assert_unique();
    }

    #[test]
    fn golden_logo_adisc_rjt_rscn_scr() {
        let logo = [
            0x05, 0, 0, 0, 0x00, 0x01, 0x02, 0x03, 0x21, 0, 0, 0x24, 0xff, 1, 2, 3,
        ];
        let r = LogoRepr::parse(&logo).unwrap();
        assert_eq!(
            r,
            LogoRepr {
                port_id: PortId::new(0x010203),
                port_name: Wwn([0x21, 0, 0, 0x24, 0xff, 1, 2, 3])
            }
        );
        let mut out = [0xA5u8; 16];
        r.emit(&mut out).unwrap();
        assert_eq!(out, logo);
        assert_eq!(
            r.to_string(),
            "LOGO port_id=010203 wwpn=21:00:00:24:ff:01:02:03"
        );

        let mut adisc = [0u8; 28];
        adisc[0] = 0x52; // ADISC
        adisc[5..8].copy_from_slice(&[0, 0, 0xef]); // hard address
        adisc[8..16].copy_from_slice(&[0x21, 0, 0, 0, 0, 0, 0, 1]); // WWPN
        adisc[16..24].copy_from_slice(&[0x20, 0, 0, 0, 0, 0, 0, 1]); // WWNN
        adisc[25..28].copy_from_slice(&[0x0a, 0x0b, 0x0c]); // N_Port ID
        let r = AdiscRepr::parse(&adisc).unwrap();
        assert_eq!(
            (r.port_id, r.hard_address, r.node_name),
            (
                PortId::new(0x0a0b0c),
                PortId::new(0xef),
                Wwn::from_u64(0x2000_0000_0000_0001)
            )
        );
        let mut out = [0xA5u8; 28];
        r.emit(&mut out).unwrap();
        assert_eq!(out, adisc);
        assert!(r.to_string().ends_with("hard_address=0000ef"));
        let mut adisc_acc = adisc;
        adisc_acc[0] = 0x02;
        assert!(
            matches!(ElsRepr::parse(&adisc_acc).unwrap(), ElsRepr::Adisc(a) if a.opcode == ElsOpcode::LsAcc)
        );

        let rjt = [0x01, 0, 0, 0, 0, 0x09, 0x1e, 0x00];
        let r = LsRjtRepr::parse(&rjt).unwrap();
        assert_eq!(
            (r.reason, r.explanation),
            (
                LsRjtReason::UnableToPerform,
                LsRjtExplanation::PlogiRequired
            )
        );
        let mut out = [0xA5u8; 8];
        r.emit(&mut out).unwrap();
        assert_eq!(out, rjt);
        assert_eq!(
            r.to_string(),
            "LS_RJT reason=UNABLE_TO_PERFORM expl=PLOGI_REQUIRED"
        );
        assert!(
            LsRjtRepr { vendor: 1, ..r }
                .to_string()
                .ends_with("vendor=0x01")
        );

        let rscn = [
            0x61, 0x04, 0x00, 0x0c, 0x00, 0x01, 0x02, 0x03, 0x01, 0x0a, 0x0b, 0x00,
        ];
        let r = RscnRepr::parse(&rscn).unwrap();
        assert_eq!(r.pages().len(), 2);
        assert_eq!(
            r.pages()[1],
            RscnPage {
                event_qualifier: 0,
                address_format: 1,
                port_id: PortId::new(0x0a0b00)
            }
        );
        let mut out = [0xA5u8; 12];
        r.emit(&mut out).unwrap();
        assert_eq!(out, rscn);
        assert_eq!(r.to_string(), "RSCN 010203/PORT 0a0b00/AREA");
        assert_eq!(RscnRepr::new(&r.pages()[..1]).unwrap().buffer_len(), 8);
        assert!(RscnRepr::new(&[RscnPage::default(); 33]).is_err());
        let mut big = [0u8; 4 + 4 * 33];
        big[..4].copy_from_slice(&[0x61, 4, 0, 136]);
        assert!(RscnRepr::parse(&big).is_err());
        assert!(RscnRepr::parse(&[0x61, 4, 0, 6, 0, 0]).is_err());
        assert!(RscnRepr::parse(&[0x61, 8, 0, 8, 0, 0, 0, 0]).is_err());

        let scr = [0x62, 0, 0, 0, 0, 0, 0, 0x03];
        let r = ScrRepr::parse(&scr).unwrap();
        let mut out = [0xA5u8; 8];
        r.emit(&mut out).unwrap();
        assert_eq!((out, r.function), (scr, 3));
        for b in [&logo[..], &adisc[..], &rjt[..], &rscn[..], &scr[..]] {
            let e = ElsRepr::parse(b).unwrap();
            let mut out = [0u8; 128];
            e.emit(&mut out).unwrap();
            assert_eq!(&out[..e.buffer_len()], b);
            let c = Collect::of(&e);
            c.assert_unique();
            assert_eq!(c.0[0].0, "els_opcode");
            assert!(!e.to_string().is_empty());
        }
        let acc = ElsRepr::parse(&[0x02, 0, 0, 0]).unwrap();
        assert_eq!(
            acc,
            ElsRepr::Other {
                opcode: ElsOpcode::LsAcc,
                len: 4
            }
        );
        assert_eq!(acc.to_string(), "LS_ACC len=4");
        let mut out = [0xA5u8; 4];
        acc.emit(&mut out).unwrap();
        assert_eq!(out, [2, 0, 0, 0]);
        assert!(ElsRepr::parse(&[0x03]).is_err());
    }
}
