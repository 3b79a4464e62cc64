//! CTIO_TYPE7 (0x12): data transfer and status for a received exchange, driver → firmware on
//! the request queue, and the completion the firmware returns on the response queue.
//!
//! Source: reference §7.3 (request layout, status modes 0 and 1), §7.4 (flags), §7.5 (the
//! scsi_status word and its FCP_RSP mapping), §7.6 (completion and status codes), §9.2–§9.6,
//! §9.10, §9.11 (how Linux uses it), gotchas 3, 7, 10. Mode-1 sense/response info is stored
//! dword-reversed: [`Ctio7Mode1`] keeps it in wire order and converts on parse/emit.

use core::fmt;

use crate::bytes::dword_swap;
use crate::fc::fcp::{DataDir, Residual, RspCode};
use crate::iocb::atio7::Atio7Repr;
use crate::iocb::{
    Dsd64, ENTRY_LEN, EntryStatus, EntryType, check_entry, ctio7_entry_count, handle, start_entry,
};
use crate::value::{FieldVisitor, Value, Visit};
use crate::{ExchangeAddr, HexBytes, NportHandle, OxId, PortId, WireError};

/// Bytes of sense / response information a mode-1 CTIO7 carries.
pub const CTIO7_SENSE_LEN: usize = 24;
/// Linux's CTIO7 timeout (`QLA_TGT_TIMEOUT`; seconds presumably — unit unconfirmed).
pub const DEFAULT_TIMEOUT: u16 = 10;

bit_flags! {
    /// CTIO7 `flags` (0x1A), reference §7.4. Bits 9–12 carry the ATIO attr nibble and are
    /// kept out of this type in [`Ctio7Repr`] (see [`Ctio7Repr::attr`]).
    pub struct Ctio7Flags: u16 {
        /// B0: receive data from the initiator (XFER_RDY, then DMA into the DSDs).
        const DATA_OUT = 0x0001;
        /// B1: send data to the initiator from the DSDs.
        const DATA_IN = 0x0002;
        /// B2: the DSD points to a DSD list.
        const DSD_PTR = 0x0004;
        /// B4.
        const CONFIRM_SATISF = 0x0010;
        /// B5: request explicit confirmation.
        const EXPLICIT_CONFORM = 0x0020;
        /// B6: status mode 1 layout.
        const STATUS_MODE_1 = 0x0040;
        /// B7: status mode 2 (unused by the drivers; semantics unconfirmed).
        const STATUS_MODE_2 = 0x0080;
        /// B8: do not return this CTIO on success.
        const DONT_RET_CTIO = 0x0100;
        /// B13: set FCP_CONF_REQ in FCP_RSP.
        const CONFORM_REQ = 0x2000;
        /// B14: terminate the exchange (wire effect unconfirmed: this crate's model is that
        /// no frame is sent).
        const TERMINATE = 0x4000;
        /// B15: send FCP_RSP after any data.
        const SEND_STATUS = 0x8000;
    }
}

impl Ctio7Flags {
    /// Bits 9–12: the attr nibble.
    pub const ATTR_MASK: u16 = 0x1E00;
    /// Shift of the attr nibble.
    pub const ATTR_SHIFT: u16 = 9;
    /// Bits 6–7: the status mode.
    pub const MODE_MASK: u16 = 0x00C0;

    /// The attr nibble (bits 9–12).
    pub const fn attr(self) -> u8 {
        ((self.0 & Self::ATTR_MASK) >> Self::ATTR_SHIFT) as u8
    }

    /// The status mode (bits 6–7: 0, 1, 2 or 3).
    pub const fn status_mode(self) -> u8 {
        ((self.0 & Self::MODE_MASK) >> 6) as u8
    }
}

bit_flags! {
    /// The flag bits (8–15) of the CTIO7 `scsi_status` word; they equal FCP_RSP byte 10
    /// shifted left by 8 (reference §7.5).
    pub struct ScsiStatusFlags: u16 {
        /// B8: FCP_RSP_LEN_VALID (response info present).
        const RSP_INFO_VALID = 1 << 8;
        /// B9: FCP_SNS_LEN_VALID (sense present).
        const SENSE_VALID = 1 << 9;
        /// B10: FCP_RESID_OVER.
        const RESID_OVER = 1 << 10;
        /// B11: FCP_RESID_UNDER.
        const RESID_UNDER = 1 << 11;
        /// B12: FCP_CONF_REQ.
        const CONF_REQ = 1 << 12;
    }
}

/// The CTIO7 `scsi_status` word (0x22): SCSI status byte + FCP_RSP flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ScsiStatusWord {
    /// Bits 0–7: the SCSI status (0x00 GOOD, 0x02 CHECK CONDITION, 0x08 BUSY, 0x28 TASK SET FULL).
    pub status: u8,
    /// Bits 8–15.
    pub flags: ScsiStatusFlags,
}

impl ScsiStatusWord {
    /// GOOD, no flags.
    pub const GOOD: ScsiStatusWord = ScsiStatusWord {
        status: 0,
        flags: ScsiStatusFlags::empty(),
    };

    /// From the 16-bit value.
    pub const fn from_u16(v: u16) -> Self {
        ScsiStatusWord {
            status: v as u8,
            flags: ScsiStatusFlags::from_bits_retain(v & 0xFF00),
        }
    }

    /// The 16-bit value.
    pub const fn to_u16(self) -> u16 {
        self.flags.bits() & 0xFF00 | self.status as u16
    }

    /// `status` with the residual flag of `residual`.
    pub fn with_residual(status: u8, residual: Residual) -> Self {
        let flags = match residual {
            Residual::None => ScsiStatusFlags::empty(),
            Residual::Over(_) => ScsiStatusFlags::RESID_OVER,
            Residual::Under(_) => ScsiStatusFlags::RESID_UNDER,
        };
        ScsiStatusWord { status, flags }
    }
}

impl fmt::Display for ScsiStatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#04x}", self.status)?;
        if !self.flags.is_empty() {
            write!(f, "|{}", self.flags)?;
        }
        Ok(())
    }
}

enum_with_unknown! {
    /// CTIO7 / CTIO_CRC2 completion status (0x08 of the returned entry), reference §7.6.
    pub enum CtioStatus(u16) {
        /// 0x01.
        Success = 0x01 => "SUCCESS",
        /// 0x02: always terminate.
        Aborted = 0x02 => "ABORTED",
        /// 0x08: always terminate.
        InvalidRxId = 0x08 => "INVALID_RX_ID",
        /// 0x0B.
        Timeout = 0x0B => "TIMEOUT",
        /// 0x0C: T10-PI error.
        DifError = 0x0C => "DIF_ERROR",
        /// 0x0E: always terminate.
        LipReset = 0x0E => "LIP_RESET",
        /// 0x17: always terminate.
        TargetReset = 0x17 => "TARGET_RESET",
        /// 0x28: always terminate.
        PortUnavailable = 0x28 => "PORT_UNAVAILABLE",
        /// 0x29: always terminate; Linux also schedules an explicit LOGO.
        PortLoggedOut = 0x29 => "PORT_LOGGED_OUT",
        /// 0x2A.
        PortConfChanged = 0x2A => "PORT_CONF_CHANGED",
        /// 0x45: SRR in progress (SCST only).
        SrrReceived = 0x45 => "SRR_RECEIVED",
        /// 0x63 (28xx eDIF).
        EdifAuthError = 0x63 => "EDIF_AUTH_ERROR",
        /// 0x65 (28xx eDIF).
        EdifPadLength = 0x65 => "EDIF_PAD_LENGTH",
        /// 0x66 (28xx eDIF).
        EdifInvalidRequest = 0x66 => "EDIF_INVALID_REQUEST",
        /// 0x67 (28xx eDIF).
        EdifSpiError = 0x67 => "EDIF_SPI_ERROR",
    }
}

impl CtioStatus {
    /// The codes after which Linux terminates the exchange in every phase (ABORTED,
    /// INVALID_RX_ID, LIP_RESET, TARGET_RESET, PORT_UNAVAILABLE, PORT_LOGGED_OUT).
    pub fn always_terminate(self) -> bool {
        matches!(
            self,
            CtioStatus::Aborted
                | CtioStatus::InvalidRxId
                | CtioStatus::LipReset
                | CtioStatus::TargetReset
                | CtioStatus::PortUnavailable
                | CtioStatus::PortLoggedOut
        )
    }
}

mod field {
    pub const HANDLE: usize = 0x04;
    pub const NPORT_HANDLE: usize = 0x08; // request; completion: status
    pub const TIMEOUT: usize = 0x0A;
    pub const DSEG_COUNT: usize = 0x0C;
    pub const VP_INDEX: usize = 0x0E;
    pub const ADD_FLAGS: usize = 0x0F;
    pub const INITIATOR_ID: usize = 0x10;
    pub const EXCHANGE_ADDR: usize = 0x14;
    pub const SENSE_LENGTH: usize = 0x18; // mode 1
    pub const FLAGS: usize = 0x1A;
    pub const RESIDUAL: usize = 0x1C;
    pub const OX_ID: usize = 0x20;
    pub const SCSI_STATUS: usize = 0x22;
    pub const RELATIVE_OFFSET: usize = 0x24; // mode 0 and completion
    pub const RESPONSE_LEN: usize = 0x24; // mode 1
    pub const TRANSFER_LENGTH: usize = 0x2C; // mode 0
    pub const DSD: usize = 0x34; // mode 0
    pub const SENSE_DATA: usize = 0x28; // mode 1, 24 bytes
}

/// A view of a CTIO7 entry (request in either status mode, or completion: the accessors for
/// all layouts are here; the caller knows which applies).
#[derive(Debug, Clone)]
pub struct Ctio7<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ctio7<T> {
    view_basics!(Ctio7, ENTRY_LEN);

    accessors! {
        /// 0x00 raw (0x12).
        entry_type_raw, set_entry_type_raw, 0x00, u8;
        /// 0x01: 1 + continuation entries.
        entry_count, set_entry_count, 0x01, u8;
        /// 0x02.
        sys_define, set_sys_define, 0x02, u8;
        /// 0x04.
        handle, set_handle, field::HANDLE, le32;
        /// 0x08 (request): initiator's N_Port handle; 0xFFFF = unrecognized.
        nport_handle, set_nport_handle, field::NPORT_HANDLE, le16 as NportHandle;
        /// 0x08 (completion) raw: the completion status.
        status_raw, set_status_raw, field::NPORT_HANDLE, le16;
        /// 0x0A.
        timeout, set_timeout, field::TIMEOUT, le16;
        /// 0x0C: DSDs in this CTIO and its continuations.
        dseg_count, set_dseg_count, field::DSEG_COUNT, le16;
        /// 0x0E.
        vp_index, set_vp_index, field::VP_INDEX, u8;
        /// 0x0F.
        add_flags, set_add_flags, field::ADD_FLAGS, u8;
        /// 0x10: initiator port id, little-endian (ATIO S_ID reversed).
        initiator_id, set_initiator_id, field::INITIATOR_ID, port_le;
        /// 0x14.
        exchange_addr, set_exchange_addr, field::EXCHANGE_ADDR, le32 as ExchangeAddr;
        /// 0x18 (mode 1): sense bytes (≤ 24).
        sense_length, set_sense_length, field::SENSE_LENGTH, le16;
        /// 0x1A raw.
        flags_raw, set_flags_raw, field::FLAGS, le16;
        /// 0x1C.
        residual, set_residual, field::RESIDUAL, le32;
        /// 0x20: OX_ID as a number, stored little-endian.
        ox_id, set_ox_id, field::OX_ID, le16 as OxId;
        /// 0x22 raw.
        scsi_status_raw, set_scsi_status_raw, field::SCSI_STATUS, le16;
        /// 0x24 (mode 0, completion).
        relative_offset, set_relative_offset, field::RELATIVE_OFFSET, le32;
        /// 0x24 (mode 1): FCP_RSP_INFO length.
        response_len, set_response_len, field::RESPONSE_LEN, le16;
        /// 0x2C (mode 0).
        transfer_length, set_transfer_length, field::TRANSFER_LENGTH, le32;
        /// 0x34 (mode 0): first DSD address.
        dsd_address, set_dsd_address, field::DSD, le64;
        /// 0x3C (mode 0): first DSD length.
        dsd_length, set_dsd_length, field::DSD + 8, le32;
    }

    /// 0x00.
    pub fn entry_type(&self) -> EntryType {
        EntryType::from(self.entry_type_raw())
    }

    /// 0x03.
    pub fn entry_status(&self) -> EntryStatus {
        EntryStatus::from_bits_retain(self.buffer.as_ref()[3])
    }

    /// 0x08 (completion).
    pub fn status(&self) -> CtioStatus {
        CtioStatus::from(self.status_raw())
    }

    /// 0x1A.
    pub fn flags(&self) -> Ctio7Flags {
        Ctio7Flags::from_bits_retain(self.flags_raw())
    }

    /// 0x22.
    pub fn scsi_status(&self) -> ScsiStatusWord {
        ScsiStatusWord::from_u16(self.scsi_status_raw())
    }

    /// 0x28..0x40 (mode 1) as stored (dword-reversed).
    pub fn sense_data_raw(&self) -> &[u8] {
        &self.buffer.as_ref()[field::SENSE_DATA..field::SENSE_DATA + CTIO7_SENSE_LEN]
    }

    /// 0x28..0x40 (mode 1) converted to wire order.
    pub fn sense_data_wire(&self) -> [u8; CTIO7_SENSE_LEN] {
        let mut w = [0u8; CTIO7_SENSE_LEN];
        dword_swap(self.sense_data_raw(), &mut w);
        w
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ctio7<T> {
    /// Sets 0x03.
    pub fn set_entry_status(&mut self, v: EntryStatus) {
        self.buffer.as_mut()[3] = v.bits()
    }

    /// Sets 0x08 as a completion status.
    pub fn set_status(&mut self, v: CtioStatus) {
        self.set_status_raw(v.into())
    }

    /// Sets 0x1A.
    pub fn set_flags(&mut self, v: Ctio7Flags) {
        self.set_flags_raw(v.bits())
    }

    /// Sets 0x22.
    pub fn set_scsi_status(&mut self, v: ScsiStatusWord) {
        self.set_scsi_status_raw(v.to_u16())
    }

    /// Writes 24 wire-order bytes into 0x28..0x40, dword-reversed.
    pub fn set_sense_data_wire(&mut self, wire: &[u8; CTIO7_SENSE_LEN]) {
        dword_swap(
            wire,
            &mut self.buffer.as_mut()[field::SENSE_DATA..field::SENSE_DATA + CTIO7_SENSE_LEN],
        );
    }
}

/// Converts up to 24 wire-order sense/response bytes to the IOCB's dword-reversed order
/// (gotcha 3); the rest of `iocb` is zero-filled.
pub fn sense_to_iocb(wire: &[u8], iocb: &mut [u8; CTIO7_SENSE_LEN]) -> Result<(), WireError> {
    if wire.len() > CTIO7_SENSE_LEN {
        return Err(WireError::Malformed("CTIO7 sense longer than 24 bytes"));
    }
    let mut w = [0u8; CTIO7_SENSE_LEN];
    w[..wire.len()].copy_from_slice(wire);
    dword_swap(&w, iocb);
    Ok(())
}

/// Converts the 24 IOCB-order bytes back to wire order.
pub fn sense_from_iocb(iocb: &[u8; CTIO7_SENSE_LEN]) -> [u8; CTIO7_SENSE_LEN] {
    let mut w = [0u8; CTIO7_SENSE_LEN];
    dword_swap(iocb, &mut w);
    w
}

/// The mode-0 (data) part of a CTIO7 request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Ctio7Mode0 {
    /// 0x24: offset of this CTIO's data in the command's buffer.
    pub relative_offset: u32,
    /// 0x2C: bytes to move.
    pub transfer_length: u32,
    /// 0x34: the first DSD (the rest follow in CONTINUE_A64 entries).
    pub dsd: Dsd64,
}

/// The mode-1 (status with sense / response info) part of a CTIO7 request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Ctio7Mode1 {
    /// 0x24: FCP_RSP_INFO length (8 for TM responses).
    pub response_len: u16,
    /// 0x18: sense length.
    pub sense_length: u16,
    /// 0x28: the 24-byte area in **wire order** (response info, then sense); emitted
    /// dword-reversed.
    pub data: [u8; CTIO7_SENSE_LEN],
}

impl Ctio7Mode1 {
    /// Sense bytes only (`sense_length` ≤ 24).
    pub fn with_sense(sense: &[u8]) -> Result<Ctio7Mode1, WireError> {
        let mut m = Ctio7Mode1::default();
        m.data
            .get_mut(..sense.len())
            .ok_or(WireError::Malformed("CTIO7 sense longer than 24 bytes"))?
            .copy_from_slice(sense);
        m.sense_length = sense.len() as u16;
        Ok(m)
    }

    /// An 8-byte FCP_RSP_INFO with `code` (RSP_CODE at wire byte 3, i.e. the first byte of
    /// the IOCB area, as Linux writes it).
    pub fn with_rsp_code(code: RspCode) -> Ctio7Mode1 {
        let mut m = Ctio7Mode1 {
            response_len: 8,
            ..Default::default()
        };
        m.data[3] = code.into();
        m
    }

    /// The response info (wire order).
    pub fn response_info(&self) -> &[u8] {
        &self.data[..(self.response_len as usize).min(CTIO7_SENSE_LEN)]
    }

    /// The sense bytes (wire order), after the response info.
    pub fn sense(&self) -> &[u8] {
        let start = (self.response_len as usize).min(CTIO7_SENSE_LEN);
        let end = (start + self.sense_length as usize).min(CTIO7_SENSE_LEN);
        &self.data[start..end]
    }
}

/// The status-mode-specific part of a CTIO7 request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Ctio7Mode {
    /// Mode 0: data transfer (and optionally status without sense).
    Mode0(Ctio7Mode0),
    /// Mode 1: status with sense or response info; also terminate and BUSY.
    Mode1(Ctio7Mode1),
}

/// The identity of an exchange every CTIO7 for it repeats, taken from the ATIO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Ctio7Exchange {
    /// The session's N_Port handle (0xFFFF if none: terminate only).
    pub nport_handle: NportHandle,
    /// ATIO S_ID.
    pub initiator_id: PortId,
    /// ATIO exchange address.
    pub exchange_addr: ExchangeAddr,
    /// ATIO OX_ID.
    pub ox_id: OxId,
    /// ATIO attr nibble.
    pub attr: u8,
    /// Virtual port index.
    pub vp_index: u8,
}

impl Ctio7Exchange {
    /// From a parsed ATIO and the session's N_Port handle.
    pub const fn from_atio(atio: &Atio7Repr, nport_handle: NportHandle, vp_index: u8) -> Self {
        Ctio7Exchange {
            nport_handle,
            initiator_id: atio.header.s_id,
            exchange_addr: atio.exchange_addr,
            ox_id: atio.header.ox_id,
            attr: atio.attr,
            vp_index,
        }
    }
}

/// A CTIO7 request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Ctio7Repr {
    /// 0x01: 1 + number of CONTINUE_A64 entries that follow.
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
    /// Flags bits 9–12: the ATIO attr nibble.
    pub attr: u8,
    /// 0x1A without the status-mode bits (they follow from [`mode`](Self::mode)) and
    /// without the attr bits.
    pub flags: Ctio7Flags,
    /// 0x1C.
    pub residual: u32,
    /// 0x20.
    pub ox_id: OxId,
    /// 0x22.
    pub scsi_status: ScsiStatusWord,
    /// The mode-specific bytes.
    pub mode: Ctio7Mode,
}

impl Ctio7Repr {
    #[inline]
    fn base(x: &Ctio7Exchange, handle: u32, flags: Ctio7Flags, mode: Ctio7Mode) -> Ctio7Repr {
        Ctio7Repr {
            entry_count: 1,
            handle,
            nport_handle: x.nport_handle,
            timeout: DEFAULT_TIMEOUT,
            dseg_count: 0,
            vp_index: x.vp_index,
            add_flags: 0,
            initiator_id: x.initiator_id,
            exchange_addr: x.exchange_addr,
            attr: x.attr & 0xF,
            flags,
            residual: 0,
            ox_id: x.ox_id,
            scsi_status: ScsiStatusWord::GOOD,
            mode,
        }
    }

    /// A mode-0 data CTIO (§9.2, §9.4): `dir` DataIn sends, DataOut receives (anything else
    /// is refused); `first_dsd` goes in the CTIO, `dseg_count` counts all DSDs (the caller
    /// writes DSDs 2.. into CONTINUE_A64 entries; `entry_count` is set from `dseg_count`).
    #[inline]
    pub fn data(
        x: &Ctio7Exchange,
        handle: u32,
        dir: DataDir,
        relative_offset: u32,
        transfer_length: u32,
        first_dsd: Dsd64,
        dseg_count: u16,
    ) -> Result<Ctio7Repr, WireError> {
        let flags = match dir {
            DataDir::DataIn => Ctio7Flags::DATA_IN,
            DataDir::DataOut => Ctio7Flags::DATA_OUT,
            _ => {
                return Err(WireError::Malformed(
                    "CTIO7 data direction must be DataIn or DataOut",
                ));
            }
        };
        let entries = ctio7_entry_count(dseg_count as usize);
        if entries > u8::MAX as usize {
            return Err(WireError::Malformed("CTIO7 needs more than 255 entries"));
        }
        let mut c = Self::base(
            x,
            handle,
            flags,
            Ctio7Mode::Mode0(Ctio7Mode0 {
                relative_offset,
                transfer_length,
                dsd: first_dsd,
            }),
        );
        c.dseg_count = dseg_count;
        c.entry_count = entries as u8;
        Ok(c)
    }

    /// This mode-0 CTIO with SEND_STATUS, GOOD and no residual (the one-CTIO read of §9.2).
    pub fn with_good_status(mut self) -> Ctio7Repr {
        self.flags.insert(Ctio7Flags::SEND_STATUS);
        self.scsi_status = ScsiStatusWord::GOOD;
        self.residual = 0;
        self
    }

    /// A mode-1 status CTIO (§9.6): SEND_STATUS, `status` with the residual flag, sense
    /// (≤ 24 bytes, wire order) with SENSE_VALID when present.
    #[inline]
    pub fn status(
        x: &Ctio7Exchange,
        handle: u32,
        status: u8,
        residual: Residual,
        sense: &[u8],
    ) -> Result<Ctio7Repr, WireError> {
        let m = Ctio7Mode1::with_sense(sense)?;
        let mut c = Self::base(x, handle, Ctio7Flags::SEND_STATUS, Ctio7Mode::Mode1(m));
        c.scsi_status = ScsiStatusWord::with_residual(status, residual);
        c.scsi_status
            .flags
            .set(ScsiStatusFlags::SENSE_VALID, !sense.is_empty());
        c.residual = residual.count();
        Ok(c)
    }

    /// A TM response (§9.5): skip handle | B29, mode 1, SEND_STATUS, RSP_INFO_VALID,
    /// response_len 8 with `code`.
    pub fn tm_response(x: &Ctio7Exchange, code: RspCode) -> Ctio7Repr {
        let mut c = Self::base(
            x,
            handle::SKIP_TARGET,
            Ctio7Flags::SEND_STATUS,
            Ctio7Mode::Mode1(Ctio7Mode1::with_rsp_code(code)),
        );
        c.scsi_status = ScsiStatusWord {
            status: 0,
            flags: ScsiStatusFlags::RSP_INFO_VALID,
        };
        c
    }

    /// BUSY / TASK SET FULL (§9.10): skip handle | B29, mode 1, SEND_STATUS | DONT_RET_CTIO,
    /// residual = FCP_DL with UNDER when FCP_DL ≠ 0.
    pub fn busy(x: &Ctio7Exchange, status: u8, fcp_dl: u32) -> Ctio7Repr {
        let residual = if fcp_dl != 0 {
            Residual::Under(fcp_dl)
        } else {
            Residual::None
        };
        let mut c = Self::base(
            x,
            handle::SKIP_TARGET,
            Ctio7Flags::SEND_STATUS | Ctio7Flags::DONT_RET_CTIO,
            Ctio7Mode::Mode1(Ctio7Mode1::default()),
        );
        c.scsi_status = ScsiStatusWord::with_residual(status, residual);
        c.residual = residual.count();
        c
    }

    /// Terminate the exchange (§9.11): skip handle | B29, mode 1, TERMINATE, no SEND_STATUS.
    #[inline]
    pub fn terminate(x: &Ctio7Exchange) -> Ctio7Repr {
        Self::base(
            x,
            handle::SKIP_TARGET,
            Ctio7Flags::TERMINATE,
            Ctio7Mode::Mode1(Ctio7Mode1::default()),
        )
    }

    /// The 16-bit flags word as sent (mode bit and attr included).
    #[inline]
    pub fn wire_flags(&self) -> u16 {
        let mode = match self.mode {
            Ctio7Mode::Mode0(_) => 0,
            Ctio7Mode::Mode1(_) => Ctio7Flags::STATUS_MODE_1.bits(),
        };
        self.flags.bits() & !(Ctio7Flags::ATTR_MASK | Ctio7Flags::MODE_MASK)
            | mode
            | ((self.attr as u16 & 0xF) << Ctio7Flags::ATTR_SHIFT)
    }

    /// Parses a request. Status mode 2/3 is [`WireError::Unsupported`]; a mode-1 entry with
    /// `response_len + sense_length > 24` is malformed.
    pub fn parse<T: AsRef<[u8]>>(c: &Ctio7<T>) -> Result<Ctio7Repr, WireError> {
        check_entry(c.buffer.as_ref(), EntryType::Ctio7)?;
        let raw = c.flags();
        let mode = match raw.status_mode() {
            0 => Ctio7Mode::Mode0(Ctio7Mode0 {
                relative_offset: c.relative_offset(),
                transfer_length: c.transfer_length(),
                dsd: Dsd64 {
                    address: c.dsd_address(),
                    length: c.dsd_length(),
                },
            }),
            1 => {
                let (response_len, sense_length) = (c.response_len(), c.sense_length());
                if response_len as usize + sense_length as usize > CTIO7_SENSE_LEN {
                    return Err(WireError::Malformed(
                        "CTIO7 response_len + sense_length > 24",
                    ));
                }
                Ctio7Mode::Mode1(Ctio7Mode1 {
                    response_len,
                    sense_length,
                    data: c.sense_data_wire(),
                })
            }
            _ => return Err(WireError::Unsupported("CTIO7 status mode 2")),
        };
        Ok(Ctio7Repr {
            entry_count: c.entry_count(),
            handle: c.handle(),
            nport_handle: c.nport_handle(),
            timeout: c.timeout(),
            dseg_count: c.dseg_count(),
            vp_index: c.vp_index(),
            add_flags: c.add_flags(),
            initiator_id: c.initiator_id(),
            exchange_addr: c.exchange_addr(),
            attr: raw.attr(),
            flags: Ctio7Flags::from_bits_retain(
                raw.bits() & !(Ctio7Flags::ATTR_MASK | Ctio7Flags::MODE_MASK),
            ),
            residual: c.residual(),
            ox_id: c.ox_id(),
            scsi_status: c.scsi_status(),
            mode,
        })
    }

    /// Parses bytes (never panics).
    pub fn parse_bytes(b: &[u8]) -> Result<Ctio7Repr, WireError> {
        Ctio7Repr::parse(&Ctio7::new_checked(b)?)
    }

    /// 64.
    pub const fn buffer_len(&self) -> usize {
        ENTRY_LEN
    }

    /// Writes the 64 bytes (reserved bytes zero).
    #[inline]
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, c: &mut Ctio7<T>) -> Result<(), WireError> {
        start_entry(
            c.buffer.as_mut(),
            EntryType::Ctio7,
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
        c.set_scsi_status(self.scsi_status);
        match &self.mode {
            Ctio7Mode::Mode0(m) => {
                c.set_relative_offset(m.relative_offset);
                c.set_transfer_length(m.transfer_length);
                c.set_dsd_address(m.dsd.address);
                c.set_dsd_length(m.dsd.length);
            }
            Ctio7Mode::Mode1(m) => {
                if m.response_len as usize + m.sense_length as usize > CTIO7_SENSE_LEN {
                    return Err(WireError::Malformed(
                        "CTIO7 response_len + sense_length > 24",
                    ));
                }
                c.set_sense_length(m.sense_length);
                c.set_response_len(m.response_len);
                c.set_sense_data_wire(&m.data);
            }
        }
        Ok(())
    }

    /// Writes into bytes.
    pub fn emit_bytes(&self, b: &mut [u8]) -> Result<(), WireError> {
        self.emit(&mut Ctio7::new_unchecked(b))
    }
}

impl fmt::Display for Ctio7Repr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CTIO7 handle={:#010x} xchg={} nport={} i_id={} ox_id={} flags={}",
            self.handle,
            self.exchange_addr,
            self.nport_handle,
            self.initiator_id,
            self.ox_id,
            self.flags
        )?;
        match &self.mode {
            Ctio7Mode::Mode0(m) => {
                write!(
                    f,
                    " mode0 ro={} len={} dsd={} dsegs={}",
                    m.relative_offset, m.transfer_length, m.dsd, self.dseg_count
                )?;
                if self.entry_count > 1 {
                    write!(f, " entries={}", self.entry_count)?;
                }
            }
            Ctio7Mode::Mode1(_) => f.write_str(" mode1")?,
        }
        if self.flags.contains(Ctio7Flags::SEND_STATUS) || self.scsi_status != ScsiStatusWord::GOOD
        {
            write!(f, " status={}", self.scsi_status)?;
        }
        if self.residual != 0 {
            write!(f, " resid={}", self.residual)?;
        }
        if let Ctio7Mode::Mode1(m) = &self.mode {
            if m.response_len != 0 {
                write!(f, " rsp_info={}", HexBytes(m.response_info()))?;
            }
            if m.sense_length != 0 {
                write!(f, " sense={}", HexBytes(m.sense()))?;
            }
        }
        if self.attr != 0 {
            write!(f, " attr={}", self.attr)?;
        }
        Ok(())
    }
}

impl Visit for Ctio7Repr {
    fn visit(&self, v: &mut dyn FieldVisitor) {
        v.field("entry_type", EntryType::Ctio7.to_value());
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
        let (mode, m0, m1) = match &self.mode {
            Ctio7Mode::Mode0(m) => (0, Some(m), None),
            Ctio7Mode::Mode1(m) => (1, None, Some(m)),
        };
        v.field("status_mode", Value::U8(mode));
        v.field("residual", Value::U32(self.residual));
        v.field("ox_id", Value::U16(self.ox_id.0));
        v.field("scsi_status", Value::U16(self.scsi_status.to_u16()));
        let absent = Value::Absent;
        v.field(
            "relative_offset",
            m0.map_or(absent, |m| Value::U32(m.relative_offset)),
        );
        v.field(
            "transfer_length",
            m0.map_or(absent, |m| Value::U32(m.transfer_length)),
        );
        v.field(
            "dsd_address",
            m0.map_or(absent, |m| Value::U64(m.dsd.address)),
        );
        v.field(
            "dsd_length",
            m0.map_or(absent, |m| Value::U32(m.dsd.length)),
        );
        v.field(
            "sense_length",
            m1.map_or(absent, |m| Value::U16(m.sense_length)),
        );
        v.field(
            "response_len",
            m1.map_or(absent, |m| Value::U16(m.response_len)),
        );
        v.field(
            "response_info",
            m1.map_or(absent, |m| Value::Bytes(m.response_info())),
        );
        v.field("sense_data", m1.map_or(absent, |m| Value::Bytes(m.sense())));
    }
}

/// A CTIO7 completion (firmware → driver, response queue).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Ctio7CompletionRepr {
    /// 0x03: non-empty = the firmware rejected the IOCB.
    pub entry_status: EntryStatus,
    /// 0x04: echoed.
    pub handle: u32,
    /// 0x08.
    pub status: CtioStatus,
    /// 0x0A.
    pub timeout: u16,
    /// 0x0C.
    pub dseg_count: u16,
    /// 0x0E: routes the completion to the virtual port.
    pub vp_index: u8,
    /// 0x14: echoed; the driver validates it against the command.
    pub exchange_addr: ExchangeAddr,
    /// 0x1A: echo of the request flags (mode and attr bits included).
    pub flags: Ctio7Flags,
    /// 0x1C.
    pub residual: u32,
    /// 0x20.
    pub ox_id: OxId,
    /// 0x24.
    pub relative_offset: u32,
}

impl Ctio7CompletionRepr {
    /// The completion a firmware returns for `req` with `status`.
    pub fn for_request(req: &Ctio7Repr, status: CtioStatus) -> Ctio7CompletionRepr {
        Ctio7CompletionRepr {
            entry_status: EntryStatus::empty(),
            handle: req.handle,
            status,
            timeout: req.timeout,
            dseg_count: req.dseg_count,
            vp_index: req.vp_index,
            exchange_addr: req.exchange_addr,
            flags: Ctio7Flags::from_bits_retain(req.wire_flags()),
            residual: req.residual,
            ox_id: req.ox_id,
            relative_offset: match &req.mode {
                Ctio7Mode::Mode0(m) => m.relative_offset,
                Ctio7Mode::Mode1(_) => 0,
            },
        }
    }

    /// `true` for SUCCESS with no entry_status bits.
    pub fn is_success(&self) -> bool {
        self.status == CtioStatus::Success && self.entry_status.is_empty()
    }

    /// Handle B30: an intermediate CTIO (ignored except for logging).
    pub const fn is_intermediate(&self) -> bool {
        self.handle & handle::INTERMEDIATE_BIT != 0
    }

    /// A skip handle: completion to be ignored.
    pub const fn is_skip(&self) -> bool {
        handle::is_skip(self.handle)
    }

    /// Parses a completion.
    #[inline]
    pub fn parse<T: AsRef<[u8]>>(c: &Ctio7<T>) -> Result<Ctio7CompletionRepr, WireError> {
        check_entry(c.buffer.as_ref(), EntryType::Ctio7)?;
        Ok(Ctio7CompletionRepr {
            entry_status: c.entry_status(),
            handle: c.handle(),
            status: c.status(),
            timeout: c.timeout(),
            dseg_count: c.dseg_count(),
            vp_index: c.vp_index(),
            exchange_addr: c.exchange_addr(),
            flags: c.flags(),
            residual: c.residual(),
            ox_id: c.ox_id(),
            relative_offset: c.relative_offset(),
        })
    }

    /// Parses bytes (never panics).
    #[inline]
    pub fn parse_bytes(b: &[u8]) -> Result<Ctio7CompletionRepr, WireError> {
        Ctio7CompletionRepr::parse(&Ctio7::new_checked(b)?)
    }

    /// 64.
    pub const fn buffer_len(&self) -> usize {
        ENTRY_LEN
    }

    /// Writes the 64 bytes (entry_count 1, reserved zero).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, c: &mut Ctio7<T>) -> Result<(), WireError> {
        start_entry(c.buffer.as_mut(), EntryType::Ctio7, 1, self.entry_status)?;
        c.set_handle(self.handle);
        c.set_status(self.status);
        c.set_timeout(self.timeout);
        c.set_dseg_count(self.dseg_count);
        c.set_vp_index(self.vp_index);
        c.set_exchange_addr(self.exchange_addr);
        c.set_flags(self.flags);
        c.set_residual(self.residual);
        c.set_ox_id(self.ox_id);
        c.set_relative_offset(self.relative_offset);
        Ok(())
    }

    /// Writes into bytes.
    pub fn emit_bytes(&self, b: &mut [u8]) -> Result<(), WireError> {
        self.emit(&mut Ctio7::new_unchecked(b))
    }
}

impl fmt::Display for Ctio7CompletionRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CTIO7-DONE handle={:#010x} xchg={} status={} ox_id={} flags={}",
            self.handle, self.exchange_addr, self.status, self.ox_id, self.flags
        )?;
        if self.residual != 0 {
            write!(f, " resid={}", self.residual)?;
        }
        if self.relative_offset != 0 {
            write!(f, " ro={}", self.relative_offset)?;
        }
        if !self.entry_status.is_empty() {
            write!(f, " entry_status={}", self.entry_status)?;
        }
        Ok(())
    }
}

impl Visit for Ctio7CompletionRepr {
    fn visit(&self, v: &mut dyn FieldVisitor) {
        v.field("entry_type", EntryType::Ctio7.to_value());
        v.field("entry_status", Value::U8(self.entry_status.bits()));
        v.field("handle", Value::U32(self.handle));
        v.field("status", self.status.to_value());
        v.field("timeout", Value::U16(self.timeout));
        v.field("dseg_count", Value::U16(self.dseg_count));
        v.field("vp_index", Value::U8(self.vp_index));
        v.field("exchange_addr", Value::U32(self.exchange_addr.0));
        v.field("flags", Value::U16(self.flags.bits()));
        v.field("residual", Value::U32(self.residual));
        v.field("ox_id", Value::U16(self.ox_id.0));
        v.field("relative_offset", Value::U32(self.relative_offset));
    }
}

// A view displays as a request; use `Ctio7CompletionRepr` for returned entries.
view_display!(Ctio7, Ctio7Repr::parse, "CTIO7");

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::iocb::atio7::tests::golden_repr as atio;
    use crate::value::test_util::Collect;
    use std::string::ToString;

    fn xchg() -> Ctio7Exchange {
        Ctio7Exchange::from_atio(&atio(), NportHandle(0x0001), 0)
    }

    /// Mode 0: read of 4096 bytes with GOOD status (§9.2), by hand from §7.3/§7.4.
    const MODE0: [u8; 64] = [
        0x12, 0x01, 0x00, 0x00, // type CTIO7, count 1, sys_define, entry_status
        0x01, 0x00, 0x00, 0x20, // 0x04 handle 0x20000001
        0x01, 0x00, // 0x08 nport_handle 1
        0x0a, 0x00, // 0x0A timeout 10
        0x01, 0x00, // 0x0C dseg_count 1
        0x00, // 0x0E vp_index
        0x00, // 0x0F add_flags
        0x03, 0x02, 0x01, // 0x10 initiator_id 010203 little-endian
        0x00, // 0x13 reserved
        0x23, 0x01, 0x00, 0x00, // 0x14 exchange_addr 0x123
        0x00, 0x00, // 0x18 reserved
        0x02, 0x82, // 0x1A flags DATA_IN | SEND_STATUS | attr 1 (<<9)
        0x00, 0x00, 0x00, 0x00, // 0x1C residual
        0x34, 0x12, // 0x20 ox_id 0x1234 LE
        0x00, 0x00, // 0x22 scsi_status GOOD
        0x00, 0x00, 0x00, 0x00, // 0x24 relative_offset
        0x00, 0x00, 0x00, 0x00, // 0x28 reserved
        0x00, 0x10, 0x00, 0x00, // 0x2C transfer_length 4096
        0x00, 0x00, 0x00, 0x00, // 0x30 reserved
        0x00, 0x00, 0x10, 0x00, 0x01, 0x00, 0x00, 0x00, // 0x34 dsd address 0x1_0010_0000
        0x00, 0x10, 0x00, 0x00, // 0x3C dsd length 4096
    ];

    fn mode0() -> Ctio7Repr {
        Ctio7Repr::data(
            &xchg(),
            0x2000_0001,
            DataDir::DataIn,
            0,
            4096,
            Dsd64 {
                address: 0x1_0010_0000,
                length: 4096,
            },
            1,
        )
        .unwrap()
        .with_good_status()
    }

    /// Mode 1: CHECK CONDITION with 18 bytes of fixed sense and an underrun of 512.
    fn mode1_bytes() -> [u8; 64] {
        let mut b = [0u8; 64];
        b[..4].copy_from_slice(&[0x12, 0x01, 0x00, 0x00]);
        b[0x04..0x08].copy_from_slice(&[0x02, 0x00, 0x00, 0x20]); // handle 0x20000002
        b[0x08..0x0A].copy_from_slice(&[0x01, 0x00]); // nport_handle
        b[0x0A..0x0C].copy_from_slice(&[0x0a, 0x00]); // timeout
        b[0x10..0x13].copy_from_slice(&[0x03, 0x02, 0x01]); // initiator_id LE
        b[0x14..0x18].copy_from_slice(&[0x23, 0x01, 0x00, 0x00]); // exchange
        b[0x18..0x1A].copy_from_slice(&[0x12, 0x00]); // sense_length 18
        b[0x1A..0x1C].copy_from_slice(&[0x40, 0x82]); // flags MODE_1 | SEND_STATUS | attr 1
        b[0x1C..0x20].copy_from_slice(&[0x00, 0x02, 0x00, 0x00]); // residual 512
        b[0x20..0x22].copy_from_slice(&[0x34, 0x12]); // ox_id
        b[0x22..0x24].copy_from_slice(&[0x02, 0x0a]); // status 0x02 | SENSE_VALID(B9) | UNDER(B11)
        b[0x24..0x26].copy_from_slice(&[0x00, 0x00]); // response_len 0
        // Sense wire bytes 70 00 05 00 | 00 00 00 0a | 00 00 00 00 | 24 00 00 00 | 00 00 ..
        // stored dword-reversed:
        b[0x28..0x2C].copy_from_slice(&[0x00, 0x05, 0x00, 0x70]);
        b[0x2C..0x30].copy_from_slice(&[0x0a, 0x00, 0x00, 0x00]);
        b[0x30..0x34].copy_from_slice(&[0x00, 0x00, 0x00, 0x00]);
        b[0x34..0x38].copy_from_slice(&[0x00, 0x00, 0x00, 0x24]);
        b
    }

    fn sense() -> [u8; 18] {
        let mut s = [0u8; 18];
        s[0] = 0x70;
        s[2] = 0x05;
        s[7] = 0x0a;
        s[12] = 0x24;
        s
    }

    fn mode1() -> Ctio7Repr {
        let mut c =
            Ctio7Repr::status(&xchg(), 0x2000_0002, 0x02, Residual::Under(512), &sense()).unwrap();
        c.timeout = 10;
        c
    }

    #[test]
    fn golden_mode0() {
        let r = Ctio7Repr::parse_bytes(&MODE0).unwrap();
        assert_eq!(r, mode0());
        let mut out = [0xA5u8; 64];
        mode0().emit_bytes(&mut out).unwrap();
        assert_eq!(out, MODE0);
        let v = Ctio7::new_checked(&MODE0[..]).unwrap();
        assert_eq!(
            (v.entry_type(), v.sys_define(), v.add_flags()),
            (EntryType::Ctio7, 0, 0)
        );
        assert_eq!(v.flags().attr(), 1);
        assert_eq!(v.flags().status_mode(), 0);
        assert_eq!(
            r.to_string(),
            "CTIO7 handle=0x20000001 xchg=0x00000123 nport=0x0001 i_id=010203 ox_id=0x1234 flags=DATA_IN|SEND_STATUS mode0 ro=0 len=4096 dsd=0x100100000/4096 dsegs=1 status=0x00 attr=1"
        );
        assert_eq!(v.to_string(), r.to_string());
        let c = Collect::of(&r);
        c.assert_unique();
        for k in [
            "handle",
            "nport_handle",
            "timeout",
            "dseg_count",
            "vp_index",
            "initiator_id",
            "exchange_addr",
            "flags",
            "status_mode",
            "residual",
            "ox_id",
            "scsi_status",
            "relative_offset",
            "transfer_length",
            "dsd_address",
            "dsd_length",
            "sense_length",
            "sense_data",
        ] {
            c.get(k);
        }
        assert_eq!(c.get("initiator_id"), "010203");
        assert_eq!(c.get("flags"), "33282");
        assert_eq!(c.get("sense_length"), "-");
    }

    #[test]
    fn golden_mode1_sense_is_dword_reversed() {
        let b = mode1_bytes();
        let r = Ctio7Repr::parse_bytes(&b).unwrap();
        assert_eq!(r, mode1());
        let Ctio7Mode::Mode1(m) = r.mode else {
            panic!()
        };
        assert_eq!(m.sense(), &sense()[..]);
        assert_eq!(m.response_info(), &[] as &[u8]);
        assert_eq!(r.scsi_status.to_u16(), 0x0a02);
        let mut out = [0xA5u8; 64];
        mode1().emit_bytes(&mut out).unwrap();
        assert_eq!(out, b);
        let v = Ctio7::new_checked(&b[..]).unwrap();
        assert_eq!(&v.sense_data_wire()[..18], &sense()[..]);
        assert_eq!(v.sense_data_raw()[..4], [0x00, 0x05, 0x00, 0x70]);
        assert!(
            r.to_string()
                .contains("mode1 status=0x02|SENSE_VALID|RESID_UNDER resid=512 sense=[70 00 05 00")
        );
        let c = Collect::of(&r);
        assert_eq!(c.get("sense_length"), "18");
        assert_eq!(
            c.get("sense_data"),
            "700005000000000a0000000024000000".to_string() + "0000"
        );
        assert_eq!(c.get("dsd_address"), "-");
        // helpers
        let mut iocb = [0u8; 24];
        sense_to_iocb(&sense(), &mut iocb).unwrap();
        assert_eq!(iocb[..], b[0x28..0x40]);
        assert_eq!(&sense_from_iocb(&iocb)[..18], &sense()[..]);
        assert!(sense_to_iocb(&[0; 25], &mut iocb).is_err());
    }

    #[test]
    fn tm_busy_terminate_builders() {
        // TM response: RSP_CODE lands at the first IOCB byte of the area (§9.5).
        let tm = Ctio7Repr::tm_response(&xchg(), RspCode::TmfIncorrectLun);
        let mut b = [0u8; 64];
        tm.emit_bytes(&mut b).unwrap();
        assert_eq!(b[0x04..0x08], [0xff, 0xff, 0xff, 0x2f]);
        assert_eq!(b[0x22..0x24], [0x00, 0x01]); // 0x0100
        assert_eq!(b[0x24..0x26], [0x08, 0x00]); // response_len 8
        assert_eq!(b[0x28], 0x09);
        assert_eq!(b[0x1A..0x1C], [0x40, 0x82]);
        assert_eq!(Ctio7Repr::parse_bytes(&b).unwrap(), tm);
        // BUSY with FCP_DL 4096.
        let busy = Ctio7Repr::busy(&xchg(), 0x08, 4096);
        busy.emit_bytes(&mut b).unwrap();
        assert_eq!(b[0x1A..0x1C], [0x40, 0x83]); // MODE_1 | DONT_RET | SEND_STATUS | attr 1
        assert_eq!(b[0x22..0x24], [0x08, 0x08]); // BUSY | UNDER
        assert_eq!(b[0x1C..0x20], [0x00, 0x10, 0x00, 0x00]);
        assert_eq!(
            Ctio7Repr::busy(&xchg(), 0x28, 0).scsi_status,
            ScsiStatusWord::from_u16(0x28)
        );
        // Terminate: MODE_1 | TERMINATE | attr, no SEND_STATUS.
        let t = Ctio7Repr::terminate(&xchg());
        t.emit_bytes(&mut b).unwrap();
        assert_eq!(b[0x1A..0x1C], [0x40, 0x42]);
        assert!(t.to_string().contains("flags=TERMINATE mode1"));
        // Data-out with 7 DSDs takes 3 entries.
        let w =
            Ctio7Repr::data(&xchg(), 5, DataDir::DataOut, 0, 65536, Dsd64::default(), 7).unwrap();
        assert_eq!((w.entry_count, w.flags), (3, Ctio7Flags::DATA_OUT));
        assert!(w.to_string().contains("entries=3"));
        assert!(Ctio7Repr::data(&xchg(), 5, DataDir::None, 0, 0, Dsd64::default(), 1).is_err());
        assert!(Ctio7Mode1::with_sense(&[0; 25]).is_err());
        assert!(Ctio7Repr::status(&xchg(), 1, 2, Residual::None, &[0; 30]).is_err());
    }

    #[test]
    fn mode2_and_bad_lengths_are_errors() {
        let mut b = MODE0;
        b[0x1A] |= 0x80;
        assert_eq!(
            Ctio7Repr::parse_bytes(&b),
            Err(WireError::Unsupported("CTIO7 status mode 2"))
        );
        let mut b = mode1_bytes();
        b[0x24] = 8; // response_len 8 + sense 18 > 24
        assert!(Ctio7Repr::parse_bytes(&b).is_err());
        let mut bad = mode1();
        bad.mode = Ctio7Mode::Mode1(Ctio7Mode1 {
            response_len: 20,
            sense_length: 8,
            data: [0; 24],
        });
        assert!(bad.emit_bytes(&mut [0u8; 64]).is_err());
        assert!(Ctio7Repr::parse_bytes(&MODE0[..63]).is_err());
        assert!(
            Ctio7::new_unchecked(&b[..])
                .to_string()
                .starts_with("CTIO7 (malformed")
        );
    }

    /// A completion by hand from §7.6: status 0x02 ABORTED.
    const DONE: [u8; 64] = {
        let mut b = [0u8; 64];
        b[0] = 0x12;
        b[1] = 0x01;
        b[4] = 0x01; // handle 0x20000001
        b[7] = 0x20;
        b[8] = 0x02; // status ABORTED
        b[0x0A] = 0x0a; // timeout
        b[0x0C] = 0x01; // dseg_count
        b[0x0E] = 0x03; // vp_index
        b[0x14] = 0x23; // exchange 0x123
        b[0x15] = 0x01;
        b[0x1A] = 0x02; // flags DATA_IN | SEND_STATUS | attr 1
        b[0x1B] = 0x82;
        b[0x1D] = 0x01; // residual 256
        b[0x20] = 0x34; // ox_id
        b[0x21] = 0x12;
        b[0x25] = 0x02; // relative_offset 512
        b
    };

    #[test]
    fn golden_completion() {
        let r = Ctio7CompletionRepr::parse_bytes(&DONE).unwrap();
        let want = Ctio7CompletionRepr {
            entry_status: EntryStatus::empty(),
            handle: 0x2000_0001,
            status: CtioStatus::Aborted,
            timeout: 10,
            dseg_count: 1,
            vp_index: 3,
            exchange_addr: ExchangeAddr(0x123),
            flags: Ctio7Flags::from_bits_retain(0x8202),
            residual: 256,
            ox_id: OxId(0x1234),
            relative_offset: 512,
        };
        assert_eq!(r, want);
        assert!(
            !r.is_success() && r.status.always_terminate() && !r.is_intermediate() && !r.is_skip()
        );
        let mut out = [0xA5u8; 64];
        want.emit_bytes(&mut out).unwrap();
        assert_eq!(out, DONE);
        assert_eq!(
            r.to_string(),
            "CTIO7-DONE handle=0x20000001 xchg=0x00000123 status=ABORTED ox_id=0x1234 flags=DATA_IN|SEND_STATUS|0x200 resid=256 ro=512"
        );
        let ok = Ctio7CompletionRepr::for_request(&mode0(), CtioStatus::Success);
        assert!(ok.is_success());
        assert_eq!(ok.flags.bits(), mode0().wire_flags());
        assert_eq!(
            Ctio7CompletionRepr::for_request(&mode1(), CtioStatus::Timeout).relative_offset,
            0
        );
        let rej = Ctio7CompletionRepr {
            entry_status: EntryStatus::INVALID_ENTRY_PARAMETER,
            ..ok
        };
        assert!(!rej.is_success());
        assert!(
            rej.to_string()
                .ends_with("entry_status=INVALID_ENTRY_PARAMETER")
        );
        let mut v = Ctio7::new_unchecked(out);
        v.set_entry_status(EntryStatus::BUSY);
        v.set_status(CtioStatus::Success);
        v.set_sys_define(0);
        assert_eq!(v.entry_status(), EntryStatus::BUSY);
        Collect::of(&r).assert_unique();
        for s in [
            0x01u16, 0x02, 0x08, 0x0B, 0x0C, 0x0E, 0x17, 0x28, 0x29, 0x2A, 0x45, 0x63, 0x65, 0x66,
            0x67,
        ] {
            assert!(CtioStatus::from(s).name().is_some());
        }
        assert!(!CtioStatus::Timeout.always_terminate());
        let inter = Ctio7CompletionRepr {
            handle: 0x6000_0001,
            ..ok
        };
        assert!(inter.is_intermediate());
    }
}
