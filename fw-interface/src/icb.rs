//! The 128-byte initialization control block (ICB), its firmware options, the NPIV (MID)
//! extension, the additional options of SET_FIRMWARE_OPTION, and the NVRAM fields the driver
//! copies into the ICB.
//!
//! Source: reference §5 (ICB 24xx/81xx, option bits, MID ICB), §2.4 (NVRAM), §5.4 (SET_FIRMWARE_OPTION
//! bits), gotcha 14 (target mode needs opt1 B4/B5, opt2 B14, exchange_count 0xFFFF and an
//! ATIO ring). All integers little-endian; port/node names big-endian (wire order).

use core::fmt;

use crate::Wwn;
use crate::bytes::*;
use crate::error::{WireError, need};
use crate::pci::IcbVariant;
use crate::value::{FieldVisitor, Value, Visit};

/// Size of `init_cb_24xx` / `init_cb_81xx`.
pub const ICB_LEN: usize = 128;
/// The ICB version the driver writes (`ICB_VERSION`).
pub const ICB_VERSION: u16 = 1;

bit_flags! {
    /// ICB `firmware_options_1` (0x5C).
    pub struct FwOptions1: u32 {
        /// B0: enable hard loop id.
        const HARD_LOOP_ID = 1 << 0;
        /// B1: enable fairness.
        const FAIRNESS = 1 << 1;
        /// B2: enable full duplex.
        const FULL_DUPLEX = 1 << 2;
        /// B4: enable target mode (set for a target).
        const TARGET_MODE = 1 << 4;
        /// B5: disable initiator mode (set for target-only).
        const DISABLE_INITIATOR = 1 << 5;
        /// B6: acquire FA-WWN.
        const ACQUIRE_FA_WWN = 1 << 6;
        /// B7: enable D-port diagnostics.
        const DPORT = 1 << 7;
        /// B9: non-participating LIP (the target driver clears it: "enable initial LIP").
        const NON_PARTICIPATING_LIP = 1 << 9;
        /// B10: descending loop-id search.
        const DESCENDING_LOOP_ID = 1 << 10;
        /// B11: acquire loop id in LIPA.
        const ACQUIRE_LOOP_ID_LIPA = 1 << 11;
        /// B13: full login after LIP (the target driver clears it).
        const FULL_LOGIN_AFTER_LIP = 1 << 13;
        /// B14: node name option: use the ICB node_name.
        const NODE_NAME_OPTION = 1 << 14;
        /// B15: reserved; the driver clears it explicitly (known to break init when set).
        const RESERVED_15 = 1 << 15;
    }
}

bit_flags! {
    /// ICB `firmware_options_2` (0x60). Multi-bit fields: [`FwOptions2::operation_mode`]
    /// (B0–B3) and [`FwOptions2::connection_option`] (B4–B6).
    pub struct FwOptions2: u32 {
        /// B7: non-participating on LIHA failure.
        const NON_PARTICIPATING_ON_LIHA_FAILURE = 1 << 7;
        /// B8: enable class 2.
        const CLASS_2 = 1 << 8;
        /// B9: enable ACK0.
        const ACK0 = 1 << 9;
        /// B11: FC-SP security.
        const FC_SP = 1 << 11;
        /// B12: FC tape (sequence-level error recovery).
        const FC_TAPE = 1 << 12;
        /// B14: enable target PRLI control (logins are reported and wait for NOTIFY_ACK).
        const TARGET_PRLI_CONTROL = 1 << 14;
        /// B18: use alternate PCI devfn (MQ chips).
        const ALT_DEVFN = 1 << 18;
        /// B19: use alternate PCI bus (MQ chips).
        const ALT_BUS = 1 << 19;
        /// B22: MSI-X handshake on (MQ chips).
        const MSIX_HANDSHAKE = 1 << 22;
        /// B23: set by the driver on MQ chips; meaning unconfirmed.
        const MQ_B23 = 1 << 23;
        /// B26: 83xx/27xx/28xx: deliver ATIO-queue interrupts on INTx.
        const ATIO_ON_INTX = 1 << 26;
        /// B29: shadow the response-queue-0 in-index in host memory (27xx/28xx).
        const SHADOW_RSP_IN = 1 << 29;
        /// B30: shadow the request-queue-0 out-index in host memory (27xx/28xx).
        const SHADOW_REQ_OUT = 1 << 30;
    }
}

enum_with_unknown! {
    /// ICB firmware options 2 B4–B6: the connection option.
    pub enum ConnectionOption(u8) {
        /// 0: loop only.
        LoopOnly = 0 => "LOOP_ONLY",
        /// 1: point-to-point only (forced for 25xx/81xx targets).
        PointToPointOnly = 1 => "P2P_ONLY",
        /// 2: loop preferred.
        LoopPreferred = 2 => "LOOP_PREFERRED",
        /// 3: point-to-point preferred.
        PointToPointPreferred = 3 => "P2P_PREFERRED",
    }
}

impl FwOptions2 {
    /// B0–B3: operation mode (ZIO); Linux uses 6 or 0.
    pub const fn operation_mode(self) -> u8 {
        (self.0 & 0xF) as u8
    }

    /// Replaces B0–B3.
    pub const fn with_operation_mode(self, mode: u8) -> Self {
        FwOptions2(self.0 & !0xF | (mode as u32 & 0xF))
    }

    /// B4–B6: the connection option.
    pub fn connection_option(self) -> ConnectionOption {
        ConnectionOption::from(((self.0 >> 4) & 7) as u8)
    }

    /// Replaces B4–B6 (the value is masked to 3 bits).
    pub fn with_connection_option(self, c: ConnectionOption) -> Self {
        FwOptions2(self.0 & !0x70 | ((u8::from(c) as u32 & 7) << 4))
    }
}

bit_flags! {
    /// ICB `firmware_options_3` (0x64). Multi-bit fields: [`FwOptions3::rsp_payload_size`]
    /// (B4–B5) and [`FwOptions3::data_rate`] (B13–B15).
    pub struct FwOptions3: u32 {
        /// B1: soft ID only.
        const SOFT_ID_ONLY = 1 << 1;
        /// B6: receive out-of-order data.
        const OUT_OF_ORDER_DATA = 1 << 6;
        /// B7: disable automatic PLOGI on the local loop.
        const NO_AUTO_PLOGI_LOCAL_LOOP = 1 << 7;
        /// B8: the driver (not the firmware) initiates login in N2N; Linux always sets it.
        const DRIVER_N2N_LOGIN = 1 << 8;
        /// B9: out-of-order XFER_RDY relative-offset handling.
        const OUT_OF_ORDER_XFER_RDY = 1 << 9;
        /// B16: 75 Ω termination select.
        const TERMINATION_75_OHM = 1 << 16;
    }
}

impl FwOptions3 {
    /// B4–B5: FCP_RSP payload size code.
    pub const fn rsp_payload_size(self) -> u8 {
        ((self.0 >> 4) & 3) as u8
    }

    /// Replaces B4–B5.
    pub const fn with_rsp_payload_size(self, code: u8) -> Self {
        FwOptions3(self.0 & !0x30 | ((code as u32 & 3) << 4))
    }

    /// B13–B15: data rate code. The driver writes its `set_data_rate` code here (Linux: 0 = 1G,
    /// 1 = 2G, 2 = auto, 3 = 4G, 4 = 8G, 5 = 16G, 6 = 32G); the mapping is unconfirmed — this
    /// crate stores the code as given.
    pub const fn data_rate(self) -> u8 {
        ((self.0 >> 13) & 7) as u8
    }

    /// Replaces B13–B15.
    pub const fn with_data_rate(self, code: u8) -> Self {
        FwOptions3(self.0 & !(7 << 13) | ((code as u32 & 7) << 13))
    }
}

bit_flags! {
    /// SET_FIRMWARE_OPTION (0x38) mb1: additional firmware options word 1.
    pub struct AddFwOptions1: u16 {
        /// B6: disable LED / GPIO LED control.
        const DISABLE_LED = 1 << 6;
        /// B10: enable PUREX IOCBs (unsolicited ELS passed to the driver).
        const PUREX = 1 << 10;
    }
}

bit_flags! {
    /// SET_FIRMWARE_OPTION (0x38) mb2: additional firmware options word 2.
    pub struct AddFwOptions2: u16 {
        /// B3: retry FLOGI in P2P.
        const RETRY_FLOGI_P2P = 1 << 3;
        /// B4: track every exchange so a stale exchange address can't be reused.
        const EXCHANGE_TRACKING = 1 << 4;
        /// B5: enable class 2 selection.
        const CLASS_2_SELECTION = 1 << 5;
        /// B8: reserve half of the emergency exchanges for ELS.
        const RESERVE_ELS_EXCHANGES = 1 << 8;
        /// B11: move PUREX, ABTS-received and RIDA IOCBs to the ATIO queue (83xx+ target mode).
        const ABTS_TO_ATIO_QUEUE = 1 << 11;
    }
}

bit_flags! {
    /// SET_FIRMWARE_OPTION (0x38) mb3: additional firmware options word 3.
    pub struct AddFwOptions3: u16 {
        /// B10: async events for transceiver insertion/removal.
        const TRANSCEIVER_EVENTS = 1 << 10;
        /// B12: hold status IOCBs until the ABTS response is received.
        const HOLD_STATUS_UNTIL_ABTS_RESP = 1 << 12;
        /// B14: don't send ABTS on link down.
        const NO_ABTS_ON_LINK_DOWN = 1 << 14;
        /// B15: N2N secure login (eDIF).
        const N2N_SECURE_LOGIN = 1 << 15;
    }
}

mod field {
    use core::ops::Range;
    pub const VERSION: Range<usize> = 0x00..0x02;
    pub const FRAME_PAYLOAD_SIZE: Range<usize> = 0x04..0x06;
    pub const EXECUTION_THROTTLE: Range<usize> = 0x06..0x08;
    pub const EXCHANGE_COUNT: Range<usize> = 0x08..0x0A;
    pub const HARD_ADDRESS: Range<usize> = 0x0A..0x0C;
    pub const PORT_NAME: Range<usize> = 0x0C..0x14;
    pub const NODE_NAME: Range<usize> = 0x14..0x1C;
    pub const RESPONSE_Q_INPOINTER: Range<usize> = 0x1C..0x1E;
    pub const REQUEST_Q_OUTPOINTER: Range<usize> = 0x1E..0x20;
    pub const LOGIN_RETRY_COUNT: Range<usize> = 0x20..0x22;
    pub const PRIO_REQUEST_Q_OUTPOINTER: Range<usize> = 0x22..0x24;
    pub const RESPONSE_Q_LENGTH: Range<usize> = 0x24..0x26;
    pub const REQUEST_Q_LENGTH: Range<usize> = 0x26..0x28;
    pub const LINK_DOWN_ON_NOS: Range<usize> = 0x28..0x2A;
    pub const PRIO_REQUEST_Q_LENGTH: Range<usize> = 0x2A..0x2C;
    pub const REQUEST_Q_ADDRESS: Range<usize> = 0x2C..0x34;
    pub const RESPONSE_Q_ADDRESS: Range<usize> = 0x34..0x3C;
    pub const PRIO_REQUEST_Q_ADDRESS: Range<usize> = 0x3C..0x44;
    pub const MSIX: Range<usize> = 0x44..0x46;
    pub const MSIX_ATIO: Range<usize> = 0x46..0x48;
    pub const ATIO_Q_INPOINTER: Range<usize> = 0x4C..0x4E;
    pub const ATIO_Q_LENGTH: Range<usize> = 0x4E..0x50;
    pub const ATIO_Q_ADDRESS: Range<usize> = 0x50..0x58;
    pub const INTERRUPT_DELAY_TIMER: Range<usize> = 0x58..0x5A;
    pub const LOGIN_TIMEOUT: Range<usize> = 0x5A..0x5C;
    pub const FIRMWARE_OPTIONS_1: Range<usize> = 0x5C..0x60;
    pub const FIRMWARE_OPTIONS_2: Range<usize> = 0x60..0x64;
    pub const FIRMWARE_OPTIONS_3: Range<usize> = 0x64..0x68;
    pub const QOS: Range<usize> = 0x68..0x6A;
    pub const RID: Range<usize> = 0x6A..0x6C;
    pub const ENODE_MAC: Range<usize> = 0x70..0x76;
}

/// A view of an ICB (either variant; the 81xx-only `enode_mac` and the 24xx-only
/// `hard_address`/`link_down_on_nos` are plain byte fields here — [`IcbRepr`] knows which
/// variant is meant).
#[derive(Debug, Clone)]
pub struct Icb<T: AsRef<[u8]>> {
    buffer: T,
}

macro_rules! le_field {
    ($get:ident, $set:ident, $range:expr, u16) => {
        #[doc = concat!("`", stringify!($get), "` (LE16).")]
        pub fn $get(&self) -> u16 {
            le16(self.buffer.as_ref(), $range.start)
        }
        #[doc = concat!("Sets `", stringify!($get), "`.")]
        pub fn $set(&mut self, v: u16)
        where
            T: AsMut<[u8]>,
        {
            set_le16(self.buffer.as_mut(), $range.start, v)
        }
    };
    ($get:ident, $set:ident, $range:expr, u32) => {
        #[doc = concat!("`", stringify!($get), "` (LE32).")]
        pub fn $get(&self) -> u32 {
            le32(self.buffer.as_ref(), $range.start)
        }
        #[doc = concat!("Sets `", stringify!($get), "`.")]
        pub fn $set(&mut self, v: u32)
        where
            T: AsMut<[u8]>,
        {
            set_le32(self.buffer.as_mut(), $range.start, v)
        }
    };
    ($get:ident, $set:ident, $range:expr, u64) => {
        #[doc = concat!("`", stringify!($get), "` (LE64).")]
        pub fn $get(&self) -> u64 {
            le64(self.buffer.as_ref(), $range.start)
        }
        #[doc = concat!("Sets `", stringify!($get), "`.")]
        pub fn $set(&mut self, v: u64)
        where
            T: AsMut<[u8]>,
        {
            set_le64(self.buffer.as_mut(), $range.start, v)
        }
    };
    ($get:ident, $set:ident, $range:expr, Wwn) => {
        #[doc = concat!("`", stringify!($get), "` (8 bytes, wire order).")]
        pub fn $get(&self) -> Wwn {
            Wwn(array(self.buffer.as_ref(), $range.start))
        }
        #[doc = concat!("Sets `", stringify!($get), "`.")]
        pub fn $set(&mut self, v: Wwn)
        where
            T: AsMut<[u8]>,
        {
            self.buffer.as_mut()[$range].copy_from_slice(&v.0)
        }
    };
}

impl<T: AsRef<[u8]>> Icb<T> {
    /// Wraps a buffer without checking its length.
    pub const fn new_unchecked(buffer: T) -> Icb<T> {
        Icb { buffer }
    }

    /// Wraps a buffer of at least [`ICB_LEN`] bytes.
    pub fn new_checked(buffer: T) -> Result<Icb<T>, WireError> {
        let v = Icb::new_unchecked(buffer);
        v.check_len()?;
        Ok(v)
    }

    /// Checks the buffer holds a whole ICB.
    pub fn check_len(&self) -> Result<(), WireError> {
        need(ICB_LEN, self.buffer.as_ref().len())
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    le_field!(version, set_version, field::VERSION, u16);
    le_field!(
        frame_payload_size,
        set_frame_payload_size,
        field::FRAME_PAYLOAD_SIZE,
        u16
    );
    le_field!(
        execution_throttle,
        set_execution_throttle,
        field::EXECUTION_THROTTLE,
        u16
    );
    le_field!(
        exchange_count,
        set_exchange_count,
        field::EXCHANGE_COUNT,
        u16
    );
    le_field!(hard_address, set_hard_address, field::HARD_ADDRESS, u16);
    le_field!(port_name, set_port_name, field::PORT_NAME, Wwn);
    le_field!(node_name, set_node_name, field::NODE_NAME, Wwn);
    le_field!(
        response_q_inpointer,
        set_response_q_inpointer,
        field::RESPONSE_Q_INPOINTER,
        u16
    );
    le_field!(
        request_q_outpointer,
        set_request_q_outpointer,
        field::REQUEST_Q_OUTPOINTER,
        u16
    );
    le_field!(
        login_retry_count,
        set_login_retry_count,
        field::LOGIN_RETRY_COUNT,
        u16
    );
    le_field!(
        prio_request_q_outpointer,
        set_prio_request_q_outpointer,
        field::PRIO_REQUEST_Q_OUTPOINTER,
        u16
    );
    le_field!(
        response_q_length,
        set_response_q_length,
        field::RESPONSE_Q_LENGTH,
        u16
    );
    le_field!(
        request_q_length,
        set_request_q_length,
        field::REQUEST_Q_LENGTH,
        u16
    );
    le_field!(
        link_down_on_nos,
        set_link_down_on_nos,
        field::LINK_DOWN_ON_NOS,
        u16
    );
    le_field!(
        prio_request_q_length,
        set_prio_request_q_length,
        field::PRIO_REQUEST_Q_LENGTH,
        u16
    );
    le_field!(
        request_q_address,
        set_request_q_address,
        field::REQUEST_Q_ADDRESS,
        u64
    );
    le_field!(
        response_q_address,
        set_response_q_address,
        field::RESPONSE_Q_ADDRESS,
        u64
    );
    le_field!(
        prio_request_q_address,
        set_prio_request_q_address,
        field::PRIO_REQUEST_Q_ADDRESS,
        u64
    );
    le_field!(msix, set_msix, field::MSIX, u16);
    le_field!(msix_atio, set_msix_atio, field::MSIX_ATIO, u16);
    le_field!(
        atio_q_inpointer,
        set_atio_q_inpointer,
        field::ATIO_Q_INPOINTER,
        u16
    );
    le_field!(atio_q_length, set_atio_q_length, field::ATIO_Q_LENGTH, u16);
    le_field!(
        atio_q_address,
        set_atio_q_address,
        field::ATIO_Q_ADDRESS,
        u64
    );
    le_field!(
        interrupt_delay_timer,
        set_interrupt_delay_timer,
        field::INTERRUPT_DELAY_TIMER,
        u16
    );
    le_field!(login_timeout, set_login_timeout, field::LOGIN_TIMEOUT, u16);
    le_field!(qos, set_qos, field::QOS, u16);
    le_field!(rid, set_rid, field::RID, u16);

    /// `firmware_options_1`.
    pub fn firmware_options_1(&self) -> FwOptions1 {
        FwOptions1::from_bits_retain(le32(self.buffer.as_ref(), field::FIRMWARE_OPTIONS_1.start))
    }

    /// `firmware_options_2`.
    pub fn firmware_options_2(&self) -> FwOptions2 {
        FwOptions2::from_bits_retain(le32(self.buffer.as_ref(), field::FIRMWARE_OPTIONS_2.start))
    }

    /// `firmware_options_3`.
    pub fn firmware_options_3(&self) -> FwOptions3 {
        FwOptions3::from_bits_retain(le32(self.buffer.as_ref(), field::FIRMWARE_OPTIONS_3.start))
    }

    /// `enode_mac` (81xx layout, 0x70).
    pub fn enode_mac(&self) -> [u8; 6] {
        array(self.buffer.as_ref(), field::ENODE_MAC.start)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icb<T> {
    /// Sets `firmware_options_1`.
    pub fn set_firmware_options_1(&mut self, v: FwOptions1) {
        set_le32(
            self.buffer.as_mut(),
            field::FIRMWARE_OPTIONS_1.start,
            v.bits(),
        )
    }

    /// Sets `firmware_options_2`.
    pub fn set_firmware_options_2(&mut self, v: FwOptions2) {
        set_le32(
            self.buffer.as_mut(),
            field::FIRMWARE_OPTIONS_2.start,
            v.bits(),
        )
    }

    /// Sets `firmware_options_3`.
    pub fn set_firmware_options_3(&mut self, v: FwOptions3) {
        set_le32(
            self.buffer.as_mut(),
            field::FIRMWARE_OPTIONS_3.start,
            v.bits(),
        )
    }

    /// Sets `enode_mac` (81xx layout).
    pub fn set_enode_mac(&mut self, v: [u8; 6]) {
        self.buffer.as_mut()[field::ENODE_MAC].copy_from_slice(&v)
    }
}

/// The fields that differ between the two ICB layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum IcbLayout {
    /// `init_cb_24xx` (24xx, 25xx).
    Isp24xx {
        /// 0x0A: preferred loop address (default 124).
        hard_address: u16,
        /// 0x28: link down on NOS, milliseconds.
        link_down_on_nos: u16,
    },
    /// `init_cb_81xx` (81xx, 83xx, 27xx, 28xx).
    Isp81xx {
        /// 0x70: FCoE ENode MAC.
        enode_mac: [u8; 6],
    },
}

impl IcbLayout {
    /// The layout of `variant` with its specific fields zero.
    pub const fn new(variant: IcbVariant) -> IcbLayout {
        match variant {
            IcbVariant::Isp24xx => IcbLayout::Isp24xx {
                hard_address: 0,
                link_down_on_nos: 0,
            },
            IcbVariant::Isp81xx => IcbLayout::Isp81xx { enode_mac: [0; 6] },
        }
    }

    /// Which variant this is.
    pub const fn variant(&self) -> IcbVariant {
        match self {
            IcbLayout::Isp24xx { .. } => IcbVariant::Isp24xx,
            IcbLayout::Isp81xx { .. } => IcbVariant::Isp81xx,
        }
    }
}

/// One host-memory ring as the ICB describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RingConfig {
    /// DMA (bus) address of entry 0.
    pub address: u64,
    /// Number of 64-byte entries.
    pub length: u16,
}

/// A parsed ICB. Reserved bytes are not kept (emitted as zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct IcbRepr {
    /// Variant-specific fields.
    pub layout: IcbLayout,
    /// 0x00: [`ICB_VERSION`].
    pub version: u16,
    /// 0x04: max frame payload, bytes.
    pub frame_payload_size: u16,
    /// 0x06.
    pub execution_throttle: u16,
    /// 0x08: 0xFFFF in target-only mode.
    pub exchange_count: u16,
    /// 0x0C: WWPN.
    pub port_name: Wwn,
    /// 0x14: WWNN.
    pub node_name: Wwn,
    /// 0x1C.
    pub response_q_inpointer: u16,
    /// 0x1E.
    pub request_q_outpointer: u16,
    /// 0x20.
    pub login_retry_count: u16,
    /// 0x22.
    pub prio_request_q_outpointer: u16,
    /// 0x26 length, 0x2C address.
    pub request_q: RingConfig,
    /// 0x24 length, 0x34 address.
    pub response_q: RingConfig,
    /// 0x2A length, 0x3C address.
    pub prio_request_q: RingConfig,
    /// 0x44: MSI-X vector for queue 0 (MQ chips).
    pub msix: u16,
    /// 0x46: MSI-X vector for the ATIO queue (83xx+).
    pub msix_atio: u16,
    /// 0x4C.
    pub atio_q_inpointer: u16,
    /// 0x4E length, 0x50 address.
    pub atio_q: RingConfig,
    /// 0x58: 100 µs units.
    pub interrupt_delay_timer: u16,
    /// 0x5A.
    pub login_timeout: u16,
    /// 0x5C.
    pub firmware_options_1: FwOptions1,
    /// 0x60.
    pub firmware_options_2: FwOptions2,
    /// 0x64.
    pub firmware_options_3: FwOptions3,
    /// 0x68: MQ chips: 5.
    pub qos: u16,
    /// 0x6A: MQ chips: PCI requester id.
    pub rid: u16,
}

impl IcbRepr {
    /// A target-only ICB as Linux builds it (gotcha 14, §5.3): version 1, 2048-byte frames,
    /// throttle and exchange count 0xFFFF, fw options 1 = TARGET_MODE | DISABLE_INITIATOR |
    /// FULL_DUPLEX | NODE_NAME_OPTION (B9, B13, B15 clear), fw options 2 = TARGET_PRLI_CONTROL
    /// (point-to-point only where the generation forces it), fw options 3 = DRIVER_N2N_LOGIN,
    /// the three rings given, pointers 0. Adjust fields afterwards as needed.
    pub fn target_only(
        gen_info: &crate::pci::GenInfo,
        port_name: Wwn,
        node_name: Wwn,
        request_q: RingConfig,
        response_q: RingConfig,
        atio_q: RingConfig,
    ) -> IcbRepr {
        let mut layout = IcbLayout::new(gen_info.icb);
        if let IcbLayout::Isp24xx { hard_address, .. } = &mut layout {
            *hard_address = 124;
        }
        let mut opt2 = FwOptions2::TARGET_PRLI_CONTROL;
        if gen_info.target_forces_p2p {
            opt2 = opt2.with_connection_option(ConnectionOption::PointToPointOnly);
        }
        IcbRepr {
            layout,
            version: ICB_VERSION,
            frame_payload_size: 2048,
            execution_throttle: 0xFFFF,
            exchange_count: 0xFFFF,
            port_name,
            node_name,
            response_q_inpointer: 0,
            request_q_outpointer: 0,
            login_retry_count: 8,
            prio_request_q_outpointer: 0,
            request_q,
            response_q,
            prio_request_q: RingConfig::default(),
            msix: 0,
            msix_atio: 0,
            atio_q_inpointer: 0,
            atio_q,
            interrupt_delay_timer: 0,
            login_timeout: 0,
            firmware_options_1: FwOptions1::TARGET_MODE
                | FwOptions1::DISABLE_INITIATOR
                | FwOptions1::FULL_DUPLEX
                | FwOptions1::NODE_NAME_OPTION,
            firmware_options_2: opt2,
            firmware_options_3: FwOptions3::DRIVER_N2N_LOGIN,
            qos: 0,
            rid: 0,
        }
    }

    /// Parses `icb` as the `variant` layout.
    pub fn parse<T: AsRef<[u8]>>(icb: &Icb<T>, variant: IcbVariant) -> Result<IcbRepr, WireError> {
        icb.check_len()?;
        let layout = match variant {
            IcbVariant::Isp24xx => IcbLayout::Isp24xx {
                hard_address: icb.hard_address(),
                link_down_on_nos: icb.link_down_on_nos(),
            },
            IcbVariant::Isp81xx => IcbLayout::Isp81xx {
                enode_mac: icb.enode_mac(),
            },
        };
        Ok(IcbRepr {
            layout,
            version: icb.version(),
            frame_payload_size: icb.frame_payload_size(),
            execution_throttle: icb.execution_throttle(),
            exchange_count: icb.exchange_count(),
            port_name: icb.port_name(),
            node_name: icb.node_name(),
            response_q_inpointer: icb.response_q_inpointer(),
            request_q_outpointer: icb.request_q_outpointer(),
            login_retry_count: icb.login_retry_count(),
            prio_request_q_outpointer: icb.prio_request_q_outpointer(),
            request_q: RingConfig {
                address: icb.request_q_address(),
                length: icb.request_q_length(),
            },
            response_q: RingConfig {
                address: icb.response_q_address(),
                length: icb.response_q_length(),
            },
            prio_request_q: RingConfig {
                address: icb.prio_request_q_address(),
                length: icb.prio_request_q_length(),
            },
            msix: icb.msix(),
            msix_atio: icb.msix_atio(),
            atio_q_inpointer: icb.atio_q_inpointer(),
            atio_q: RingConfig {
                address: icb.atio_q_address(),
                length: icb.atio_q_length(),
            },
            interrupt_delay_timer: icb.interrupt_delay_timer(),
            login_timeout: icb.login_timeout(),
            firmware_options_1: icb.firmware_options_1(),
            firmware_options_2: icb.firmware_options_2(),
            firmware_options_3: icb.firmware_options_3(),
            qos: icb.qos(),
            rid: icb.rid(),
        })
    }

    /// Bytes [`emit`](Self::emit) writes.
    pub const fn buffer_len(&self) -> usize {
        ICB_LEN
    }

    /// Writes all 128 bytes (reserved bytes zero).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, icb: &mut Icb<T>) -> Result<(), WireError> {
        icb.check_len()?;
        icb.buffer.as_mut()[..ICB_LEN].fill(0);
        icb.set_version(self.version);
        icb.set_frame_payload_size(self.frame_payload_size);
        icb.set_execution_throttle(self.execution_throttle);
        icb.set_exchange_count(self.exchange_count);
        icb.set_port_name(self.port_name);
        icb.set_node_name(self.node_name);
        icb.set_response_q_inpointer(self.response_q_inpointer);
        icb.set_request_q_outpointer(self.request_q_outpointer);
        icb.set_login_retry_count(self.login_retry_count);
        icb.set_prio_request_q_outpointer(self.prio_request_q_outpointer);
        icb.set_response_q_length(self.response_q.length);
        icb.set_request_q_length(self.request_q.length);
        icb.set_prio_request_q_length(self.prio_request_q.length);
        icb.set_request_q_address(self.request_q.address);
        icb.set_response_q_address(self.response_q.address);
        icb.set_prio_request_q_address(self.prio_request_q.address);
        icb.set_msix(self.msix);
        icb.set_msix_atio(self.msix_atio);
        icb.set_atio_q_inpointer(self.atio_q_inpointer);
        icb.set_atio_q_length(self.atio_q.length);
        icb.set_atio_q_address(self.atio_q.address);
        icb.set_interrupt_delay_timer(self.interrupt_delay_timer);
        icb.set_login_timeout(self.login_timeout);
        icb.set_firmware_options_1(self.firmware_options_1);
        icb.set_firmware_options_2(self.firmware_options_2);
        icb.set_firmware_options_3(self.firmware_options_3);
        icb.set_qos(self.qos);
        icb.set_rid(self.rid);
        match self.layout {
            IcbLayout::Isp24xx {
                hard_address,
                link_down_on_nos,
            } => {
                icb.set_hard_address(hard_address);
                icb.set_link_down_on_nos(link_down_on_nos);
            }
            IcbLayout::Isp81xx { enode_mac } => icb.set_enode_mac(enode_mac),
        }
        Ok(())
    }

    /// `true` if the options and rings a target needs are present (gotcha 14).
    pub fn target_mode_ready(&self) -> bool {
        self.firmware_options_1.contains(FwOptions1::TARGET_MODE)
            && self
                .firmware_options_2
                .contains(FwOptions2::TARGET_PRLI_CONTROL)
            && self.atio_q.length != 0
            && self.atio_q.address != 0
    }
}

impl fmt::Display for IcbRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = match self.layout.variant() {
            IcbVariant::Isp24xx => "24xx",
            IcbVariant::Isp81xx => "81xx",
        };
        write!(
            f,
            "ICB{v} v{} wwpn={} wwnn={} frame={} xchg={} req={}@{:#x} rsp={}@{:#x} atio={}@{:#x} opt1={} opt2={} opt3={}",
            self.version,
            self.port_name,
            self.node_name,
            self.frame_payload_size,
            self.exchange_count,
            self.request_q.length,
            self.request_q.address,
            self.response_q.length,
            self.response_q.address,
            self.atio_q.length,
            self.atio_q.address,
            self.firmware_options_1,
            self.firmware_options_2,
            self.firmware_options_3
        )
    }
}

impl Visit for IcbRepr {
    fn visit(&self, v: &mut dyn FieldVisitor) {
        v.field("version", Value::U16(self.version));
        v.field("frame_payload_size", Value::U16(self.frame_payload_size));
        v.field("execution_throttle", Value::U16(self.execution_throttle));
        v.field("exchange_count", Value::U16(self.exchange_count));
        if let IcbLayout::Isp24xx { hard_address, .. } = self.layout {
            v.field("hard_address", Value::U16(hard_address));
        }
        v.field("port_name", Value::Wwn(self.port_name));
        v.field("node_name", Value::Wwn(self.node_name));
        v.field(
            "response_q_inpointer",
            Value::U16(self.response_q_inpointer),
        );
        v.field(
            "request_q_outpointer",
            Value::U16(self.request_q_outpointer),
        );
        v.field("login_retry_count", Value::U16(self.login_retry_count));
        v.field(
            "prio_request_q_outpointer",
            Value::U16(self.prio_request_q_outpointer),
        );
        v.field("response_q_length", Value::U16(self.response_q.length));
        v.field("request_q_length", Value::U16(self.request_q.length));
        if let IcbLayout::Isp24xx {
            link_down_on_nos, ..
        } = self.layout
        {
            v.field("link_down_on_nos", Value::U16(link_down_on_nos));
        }
        v.field(
            "prio_request_q_length",
            Value::U16(self.prio_request_q.length),
        );
        v.field("request_q_address", Value::U64(self.request_q.address));
        v.field("response_q_address", Value::U64(self.response_q.address));
        v.field(
            "prio_request_q_address",
            Value::U64(self.prio_request_q.address),
        );
        v.field("msix", Value::U16(self.msix));
        v.field("msix_atio", Value::U16(self.msix_atio));
        v.field("atio_q_inpointer", Value::U16(self.atio_q_inpointer));
        v.field("atio_q_length", Value::U16(self.atio_q.length));
        v.field("atio_q_address", Value::U64(self.atio_q.address));
        v.field(
            "interrupt_delay_timer",
            Value::U16(self.interrupt_delay_timer),
        );
        v.field("login_timeout", Value::U16(self.login_timeout));
        v.field(
            "firmware_options_1",
            Value::U32(self.firmware_options_1.bits()),
        );
        v.field(
            "firmware_options_2",
            Value::U32(self.firmware_options_2.bits()),
        );
        v.field(
            "firmware_options_3",
            Value::U32(self.firmware_options_3.bits()),
        );
        v.field("qos", Value::U16(self.qos));
        v.field("rid", Value::U16(self.rid));
        if let IcbLayout::Isp81xx { enode_mac } = &self.layout {
            v.field("enode_mac", Value::Bytes(enode_mac));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// MID (NPIV) ICB, reference §5.5.

/// Offset of the VP count in a MID ICB.
pub const MID_ICB_HEADER_LEN: usize = 0x84;
/// Bytes per VP entry in a MID ICB.
pub const MID_VP_ENTRY_LEN: usize = 20;
/// Entries in a MID ICB's VP table.
pub const MID_VP_ENTRIES: usize = 256;
/// Full size of `mid_init_cb_24xx`.
pub const MID_ICB_LEN: usize = MID_ICB_HEADER_LEN + MID_VP_ENTRIES * MID_VP_ENTRY_LEN;

bit_flags! {
    /// Options byte of a MID ICB VP entry (and of VP_CONFIG IOCBs).
    ///
    /// The reference lists B4 as "enable initiator" in the MID entry and, for VP_CONFIG,
    /// "B4 set = initiator disabled, B5 set = target disabled" (unconfirmed which is right);
    /// this crate follows the second ("same sense") statement for both.
    pub struct VpOptions: u8 {
        /// B0: hard loop id.
        const HARD_LOOP_ID = 1 << 0;
        /// B1: acquire in LIPA.
        const ACQUIRE_LIPA = 1 << 1;
        /// B2: id not acquired.
        const ID_NOT_ACQUIRED = 1 << 2;
        /// B3: enable the VP.
        const ENABLE_VP = 1 << 3;
        /// B4: initiator disabled.
        const DISABLE_INITIATOR = 1 << 4;
        /// B5: target disabled (target-mode drivers clear it).
        const DISABLE_TARGET = 1 << 5;
    }
}

/// One VP entry of a MID ICB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct VpEntryRepr {
    /// +2: options.
    pub options: VpOptions,
    /// +3: hard address.
    pub hard_address: u8,
    /// +4: WWPN.
    pub port_name: Wwn,
    /// +12: WWNN.
    pub node_name: Wwn,
}

impl VpEntryRepr {
    /// Parses 20 bytes.
    pub fn parse(b: &[u8]) -> Result<VpEntryRepr, WireError> {
        need(MID_VP_ENTRY_LEN, b.len())?;
        Ok(VpEntryRepr {
            options: VpOptions::from_bits_retain(b[2]),
            hard_address: b[3],
            port_name: Wwn(array(b, 4)),
            node_name: Wwn(array(b, 12)),
        })
    }

    /// Writes 20 bytes.
    pub fn emit(&self, b: &mut [u8]) -> Result<(), WireError> {
        need(MID_VP_ENTRY_LEN, b.len())?;
        b[..2].fill(0);
        b[2] = self.options.bits();
        b[3] = self.hard_address;
        b[4..12].copy_from_slice(&self.port_name.0);
        b[12..20].copy_from_slice(&self.node_name.0);
        Ok(())
    }
}

/// A view of a MID ICB: the ICB, then `count` and `options` and the VP table.
#[derive(Debug, Clone)]
pub struct MidIcb<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> MidIcb<T> {
    /// Wraps a buffer without checking its length.
    pub const fn new_unchecked(buffer: T) -> MidIcb<T> {
        MidIcb { buffer }
    }

    /// Wraps a buffer that holds the header and the `count` entries it announces.
    pub fn new_checked(buffer: T) -> Result<MidIcb<T>, WireError> {
        let v = MidIcb::new_unchecked(buffer);
        v.check_len()?;
        Ok(v)
    }

    /// Checks the header and `count` entries fit.
    pub fn check_len(&self) -> Result<(), WireError> {
        let len = self.buffer.as_ref().len();
        need(MID_ICB_HEADER_LEN, len)?;
        need(
            MID_ICB_HEADER_LEN + self.count() as usize * MID_VP_ENTRY_LEN,
            len,
        )
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The embedded ICB.
    pub fn icb(&self) -> Icb<&[u8]> {
        Icb::new_unchecked(&self.buffer.as_ref()[..ICB_LEN])
    }

    /// 0x80: number of VP entries.
    pub fn count(&self) -> u16 {
        le16(self.buffer.as_ref(), 0x80)
    }

    /// 0x82: options (Linux: B1).
    pub fn options(&self) -> u16 {
        le16(self.buffer.as_ref(), 0x82)
    }

    /// VP entry `i`, if it is within `count` and the buffer.
    pub fn vp_entry(&self, i: usize) -> Option<VpEntryRepr> {
        if i >= self.count() as usize {
            return None;
        }
        let at = MID_ICB_HEADER_LEN + i * MID_VP_ENTRY_LEN;
        VpEntryRepr::parse(self.buffer.as_ref().get(at..at + MID_VP_ENTRY_LEN)?).ok()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> MidIcb<T> {
    /// The embedded ICB, writable.
    pub fn icb_mut(&mut self) -> Icb<&mut [u8]> {
        Icb::new_unchecked(&mut self.buffer.as_mut()[..ICB_LEN])
    }

    /// Sets `count`.
    pub fn set_count(&mut self, v: u16) {
        set_le16(self.buffer.as_mut(), 0x80, v)
    }

    /// Sets `options`.
    pub fn set_options(&mut self, v: u16) {
        set_le16(self.buffer.as_mut(), 0x82, v)
    }

    /// Writes VP entry `i`; `Err` if it is outside the buffer.
    pub fn set_vp_entry(&mut self, i: usize, e: &VpEntryRepr) -> Result<(), WireError> {
        let at = MID_ICB_HEADER_LEN + i * MID_VP_ENTRY_LEN;
        let len = self.buffer.as_ref().len();
        let b = self
            .buffer
            .as_mut()
            .get_mut(at..at + MID_VP_ENTRY_LEN)
            .ok_or(WireError::Truncated {
                needed: at + MID_VP_ENTRY_LEN,
                got: len,
            })?;
        e.emit(b)
    }
}

// ---------------------------------------------------------------------------------------------
// NVRAM, reference §2.4.

/// Size of the `nvram_24xx` image.
pub const NVRAM_LEN: usize = 512;

/// What the driver substitutes when the NVRAM image is invalid (reference §2.4).
pub mod nvram_defaults {
    /// Frame payload size.
    pub const FRAME_PAYLOAD_SIZE: u16 = 2048;
    /// Execution throttle.
    pub const EXECUTION_THROTTLE: u16 = 0xFFFF;
    /// Hard address.
    pub const HARD_ADDRESS: u16 = 124;
    /// Login retry count.
    pub const LOGIN_RETRY_COUNT: u16 = 8;
    /// WWNN `20:00:00:e0:8b:1c:55:86`.
    pub const NODE_NAME: crate::Wwn = crate::Wwn([0x20, 0, 0, 0xe0, 0x8b, 0x1c, 0x55, 0x86]);
    /// Firmware options 1 = B14|B13|B2|B1.
    pub const FIRMWARE_OPTIONS_1: u32 = 1 << 14 | 1 << 13 | 1 << 2 | 1 << 1;
    /// Firmware options 2 = (2 << 4) | B12.
    pub const FIRMWARE_OPTIONS_2: u32 = 2 << 4 | 1 << 12;
    /// Firmware options 3 = 2 << 13.
    pub const FIRMWARE_OPTIONS_3: u32 = 2 << 13;

    /// WWPN `21:0p:00:e0:8b:1c:55:86`, p = `port` + 1.
    pub const fn port_name(port: u8) -> crate::Wwn {
        crate::Wwn([0x21, port.wrapping_add(1), 0, 0xe0, 0x8b, 0x1c, 0x55, 0x86])
    }
}

/// A view of the 512-byte `nvram_24xx` image: only the fields the driver copies into the ICB.
#[derive(Debug, Clone)]
pub struct Nvram24xx<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Nvram24xx<T> {
    /// Wraps a buffer without checking its length.
    pub const fn new_unchecked(buffer: T) -> Nvram24xx<T> {
        Nvram24xx { buffer }
    }

    /// Wraps a buffer of at least [`NVRAM_LEN`] bytes.
    pub fn new_checked(buffer: T) -> Result<Nvram24xx<T>, WireError> {
        let v = Nvram24xx::new_unchecked(buffer);
        v.check_len()?;
        Ok(v)
    }

    /// Checks the length.
    pub fn check_len(&self) -> Result<(), WireError> {
        need(NVRAM_LEN, self.buffer.as_ref().len())
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// 0x000: id, must be `"ISP "`.
    pub fn id(&self) -> [u8; 4] {
        array(self.buffer.as_ref(), 0)
    }

    le_field!(nvram_version, set_nvram_version, 0x004..0x006, u16);
    le_field!(version, set_version, 0x008..0x00A, u16);
    le_field!(
        frame_payload_size,
        set_frame_payload_size,
        0x00C..0x00E,
        u16
    );
    le_field!(
        execution_throttle,
        set_execution_throttle,
        0x00E..0x010,
        u16
    );
    le_field!(exchange_count, set_exchange_count, 0x010..0x012, u16);
    le_field!(hard_address, set_hard_address, 0x012..0x014, u16);
    le_field!(port_name, set_port_name, 0x014..0x01C, Wwn);
    le_field!(node_name, set_node_name, 0x01C..0x024, Wwn);
    le_field!(login_retry_count, set_login_retry_count, 0x024..0x026, u16);
    le_field!(link_down_on_nos, set_link_down_on_nos, 0x026..0x028, u16);
    le_field!(
        interrupt_delay_timer,
        set_interrupt_delay_timer,
        0x028..0x02A,
        u16
    );
    le_field!(login_timeout, set_login_timeout, 0x02A..0x02C, u16);
    le_field!(
        firmware_options_1,
        set_firmware_options_1,
        0x02C..0x030,
        u32
    );
    le_field!(
        firmware_options_2,
        set_firmware_options_2,
        0x030..0x034,
        u32
    );
    le_field!(
        firmware_options_3,
        set_firmware_options_3,
        0x034..0x038,
        u32
    );
    le_field!(host_p, set_host_p, 0x100..0x104, u32);
    le_field!(
        alternate_port_name,
        set_alternate_port_name,
        0x104..0x10C,
        Wwn
    );
    le_field!(
        alternate_node_name,
        set_alternate_node_name,
        0x10C..0x114,
        Wwn
    );
    le_field!(
        port_down_retry_count,
        set_port_down_retry_count,
        0x154..0x156,
        u16
    );
    le_field!(link_down_timeout, set_link_down_timeout, 0x156..0x158, u16);
    le_field!(checksum_word, set_checksum_word, 0x1FC..0x200, u32);

    /// 0x038: seriallink options (8 bytes).
    pub fn seriallink_options(&self) -> [u8; 8] {
        array(self.buffer.as_ref(), 0x038)
    }

    /// 0x148: reset delay.
    pub fn reset_delay(&self) -> u8 {
        self.buffer.as_ref()[0x148]
    }

    /// 0x1E0: model name (16 bytes).
    pub fn model_name(&self) -> [u8; 16] {
        array(self.buffer.as_ref(), 0x1E0)
    }

    /// The sum of the 128 LE dwords (0 for a valid image).
    pub fn checksum(&self) -> u32 {
        self.buffer.as_ref()[..NVRAM_LEN]
            .chunks_exact(4)
            .fold(0u32, |s, c| {
                s.wrapping_add(u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            })
    }

    /// The driver's validity check: id `"ISP "`, nvram_version ≥ 1, dword sum 0. When it fails
    /// the driver uses [`nvram_defaults`].
    pub fn is_valid(&self) -> bool {
        &self.id() == b"ISP " && self.nvram_version() >= 1 && self.checksum() == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Nvram24xx<T> {
    /// Sets the id bytes.
    pub fn set_id(&mut self, id: [u8; 4]) {
        self.buffer.as_mut()[..4].copy_from_slice(&id)
    }

    /// Sets the seriallink options.
    pub fn set_seriallink_options(&mut self, v: [u8; 8]) {
        self.buffer.as_mut()[0x038..0x040].copy_from_slice(&v)
    }

    /// Sets the reset delay.
    pub fn set_reset_delay(&mut self, v: u8) {
        self.buffer.as_mut()[0x148] = v
    }

    /// Sets the model name.
    pub fn set_model_name(&mut self, v: [u8; 16]) {
        self.buffer.as_mut()[0x1E0..0x1F0].copy_from_slice(&v)
    }

    /// Rewrites the checksum dword so the image sums to zero.
    pub fn fix_checksum(&mut self) {
        self.set_checksum_word(0);
        let sum = self.checksum();
        self.set_checksum_word(sum.wrapping_neg());
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::pci::Generation;
    use crate::value::test_util::Collect;
    use std::string::ToString;

    /// A 24xx ICB written by hand from reference §5.1, offset by offset.
    fn golden_24xx() -> [u8; 128] {
        let mut b = [0u8; 128];
        b[0x00..0x02].copy_from_slice(&[0x01, 0x00]); // version 1
        b[0x04..0x06].copy_from_slice(&[0x00, 0x08]); // frame_payload_size 2048
        b[0x06..0x08].copy_from_slice(&[0xff, 0xff]); // execution_throttle
        b[0x08..0x0A].copy_from_slice(&[0xff, 0xff]); // exchange_count
        b[0x0A..0x0C].copy_from_slice(&[0x7c, 0x00]); // hard_address 124
        b[0x0C..0x14].copy_from_slice(&[0x21, 0x00, 0x00, 0xe0, 0x8b, 0x1c, 0x55, 0x86]); // port_name
        b[0x14..0x1C].copy_from_slice(&[0x20, 0x00, 0x00, 0xe0, 0x8b, 0x1c, 0x55, 0x86]); // node_name
        b[0x1C..0x1E].copy_from_slice(&[0x01, 0x00]); // response_q_inpointer
        b[0x1E..0x20].copy_from_slice(&[0x02, 0x00]); // request_q_outpointer
        b[0x20..0x22].copy_from_slice(&[0x08, 0x00]); // login_retry_count
        b[0x22..0x24].copy_from_slice(&[0x03, 0x00]); // prio_request_q_outpointer
        b[0x24..0x26].copy_from_slice(&[0x00, 0x02]); // response_q_length 512
        b[0x26..0x28].copy_from_slice(&[0x00, 0x08]); // request_q_length 2048
        b[0x28..0x2A].copy_from_slice(&[0x0a, 0x00]); // link_down_on_nos 10
        b[0x2A..0x2C].copy_from_slice(&[0x04, 0x00]); // prio_request_q_length
        b[0x2C..0x34].copy_from_slice(&[0x00, 0x10, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00]); // req addr 0x1_0000_1000
        b[0x34..0x3C].copy_from_slice(&[0x00, 0x20, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00]); // rsp addr
        b[0x3C..0x44].copy_from_slice(&[0x00, 0x30, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]); // prio addr
        b[0x44..0x46].copy_from_slice(&[0x05, 0x00]); // msix
        b[0x46..0x48].copy_from_slice(&[0x06, 0x00]); // msix_atio
        b[0x4C..0x4E].copy_from_slice(&[0x07, 0x00]); // atio_q_inpointer
        b[0x4E..0x50].copy_from_slice(&[0x00, 0x10]); // atio_q_length 4096
        b[0x50..0x58].copy_from_slice(&[0x00, 0x40, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00]); // atio addr
        b[0x58..0x5A].copy_from_slice(&[0x09, 0x00]); // interrupt_delay_timer
        b[0x5A..0x5C].copy_from_slice(&[0x0b, 0x00]); // login_timeout
        b[0x5C..0x60].copy_from_slice(&[0x34, 0x40, 0x00, 0x00]); // opt1 B2|B4|B5|B14
        b[0x60..0x64].copy_from_slice(&[0x10, 0x40, 0x00, 0x00]); // opt2 P2P only | B14
        b[0x64..0x68].copy_from_slice(&[0x00, 0x41, 0x00, 0x00]); // opt3 B8 | rate 2 (B14)
        b[0x68..0x6A].copy_from_slice(&[0x05, 0x00]); // qos
        b[0x6A..0x6C].copy_from_slice(&[0x0c, 0x00]); // rid
        b
    }

    fn repr_24xx() -> IcbRepr {
        IcbRepr {
            layout: IcbLayout::Isp24xx {
                hard_address: 124,
                link_down_on_nos: 10,
            },
            version: 1,
            frame_payload_size: 2048,
            execution_throttle: 0xFFFF,
            exchange_count: 0xFFFF,
            port_name: Wwn::from_u64(0x2100_00e0_8b1c_5586),
            node_name: Wwn::from_u64(0x2000_00e0_8b1c_5586),
            response_q_inpointer: 1,
            request_q_outpointer: 2,
            login_retry_count: 8,
            prio_request_q_outpointer: 3,
            request_q: RingConfig {
                address: 0x1_0000_1000,
                length: 2048,
            },
            response_q: RingConfig {
                address: 0x1_0000_2000,
                length: 512,
            },
            prio_request_q: RingConfig {
                address: 0x3000,
                length: 4,
            },
            msix: 5,
            msix_atio: 6,
            atio_q_inpointer: 7,
            atio_q: RingConfig {
                address: 0x2_0000_4000,
                length: 4096,
            },
            interrupt_delay_timer: 9,
            login_timeout: 11,
            firmware_options_1: FwOptions1::FULL_DUPLEX
                | FwOptions1::TARGET_MODE
                | FwOptions1::DISABLE_INITIATOR
                | FwOptions1::NODE_NAME_OPTION,
            firmware_options_2: FwOptions2::TARGET_PRLI_CONTROL
                .with_connection_option(ConnectionOption::PointToPointOnly),
            firmware_options_3: FwOptions3::DRIVER_N2N_LOGIN.with_data_rate(2),
            qos: 5,
            rid: 12,
        }
    }

    #[test]
    fn golden_24xx_parse_and_emit() {
        let bytes = golden_24xx();
        let icb = Icb::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            IcbRepr::parse(&icb, IcbVariant::Isp24xx).unwrap(),
            repr_24xx()
        );
        let mut out = [0xA5u8; 128];
        let mut view = Icb::new_checked(&mut out[..]).unwrap();
        repr_24xx().emit(&mut view).unwrap();
        assert_eq!(out, bytes);
        assert_eq!(repr_24xx().buffer_len(), ICB_LEN);
    }

    #[test]
    fn golden_81xx_variant_fields() {
        let mut bytes = golden_24xx();
        bytes[0x0A..0x0C].fill(0); // reserved in 81xx
        bytes[0x28..0x2A].fill(0); // reserved in 81xx
        bytes[0x70..0x76].copy_from_slice(&[0x0e, 0xfc, 0x00, 0x01, 0x02, 0x03]); // enode_mac
        let icb = Icb::new_checked(&bytes[..]).unwrap();
        let r = IcbRepr::parse(&icb, IcbVariant::Isp81xx).unwrap();
        assert_eq!(
            r.layout,
            IcbLayout::Isp81xx {
                enode_mac: [0x0e, 0xfc, 0, 1, 2, 3]
            }
        );
        assert_eq!(r.layout.variant(), IcbVariant::Isp81xx);
        let mut out = [0xA5u8; 128];
        r.emit(&mut Icb::new_unchecked(&mut out[..])).unwrap();
        assert_eq!(out, bytes);
        let c = Collect::of(&r);
        c.assert_unique();
        assert_eq!(c.get("enode_mac"), "0efc00010203");
        assert!(c.0.iter().all(|(n, _)| *n != "hard_address"));
    }

    #[test]
    fn option_fields_and_target_defaults() {
        let o2 = FwOptions2::from_bits_retain(0x4036);
        assert_eq!(o2.operation_mode(), 6);
        assert_eq!(
            o2.connection_option(),
            ConnectionOption::PointToPointPreferred
        );
        assert_eq!(o2.with_operation_mode(0).bits(), 0x4030);
        let o3 = FwOptions3::empty()
            .with_rsp_payload_size(2)
            .with_data_rate(5);
        assert_eq!(
            (o3.rsp_payload_size(), o3.data_rate(), o3.bits()),
            (2, 5, 0xA020)
        );
        let g = Generation::Isp25xx.info();
        let ring = |a, l| RingConfig {
            address: a,
            length: l,
        };
        let r = IcbRepr::target_only(
            g,
            Wwn::from_u64(1),
            Wwn::from_u64(2),
            ring(0x1000, 2048),
            ring(0x2000, 512),
            ring(0x3000, 4096),
        );
        assert!(r.target_mode_ready());
        assert_eq!(
            r.firmware_options_2.connection_option(),
            ConnectionOption::PointToPointOnly
        );
        assert!(!r.firmware_options_1.intersects(
            FwOptions1::NON_PARTICIPATING_LIP
                | FwOptions1::FULL_LOGIN_AFTER_LIP
                | FwOptions1::RESERVED_15
        ));
        assert_eq!(
            r.layout,
            IcbLayout::Isp24xx {
                hard_address: 124,
                link_down_on_nos: 0
            }
        );
        let r83 = IcbRepr::target_only(
            Generation::Isp83xx.info(),
            Wwn::from_u64(1),
            Wwn::from_u64(2),
            ring(1, 1),
            ring(2, 1),
            ring(0, 0),
        );
        assert!(!r83.target_mode_ready());
        assert_eq!(
            r83.firmware_options_2.connection_option(),
            ConnectionOption::LoopOnly
        );
        assert!(
            r.to_string()
                .starts_with("ICB24xx v1 wwpn=00:00:00:00:00:00:00:01")
        );
        assert_eq!(AddFwOptions2::ABTS_TO_ATIO_QUEUE.bits(), 0x800);
        assert_eq!(
            (AddFwOptions1::PUREX | AddFwOptions1::DISABLE_LED).bits(),
            0x440
        );
        assert_eq!(AddFwOptions3::NO_ABTS_ON_LINK_DOWN.bits(), 0x4000);
        assert_eq!(
            Icb::new_checked(&[0u8; 127][..]).unwrap_err(),
            WireError::Truncated {
                needed: 128,
                got: 127
            }
        );
    }

    #[test]
    fn mid_icb_entries() {
        let mut buf = [0u8; MID_ICB_HEADER_LEN + 2 * MID_VP_ENTRY_LEN];
        buf[0x80] = 2; // count
        buf[0x82] = 0x02; // options B1
        // entry 1 at 0x84 + 20: reserved(2), options, hard_address, port_name, node_name
        let e1 = 0x84 + 20;
        buf[e1 + 2] = 0x08 | 0x10; // ENABLE_VP | DISABLE_INITIATOR
        buf[e1 + 3] = 0x7c;
        buf[e1 + 4..e1 + 12].copy_from_slice(&[0x21, 1, 2, 3, 4, 5, 6, 7]);
        buf[e1 + 12..e1 + 20].copy_from_slice(&[0x20, 1, 2, 3, 4, 5, 6, 7]);
        let mid = MidIcb::new_checked(&buf[..]).unwrap();
        assert_eq!((mid.count(), mid.options()), (2, 2));
        let e = mid.vp_entry(1).unwrap();
        assert_eq!(
            e.options,
            VpOptions::ENABLE_VP | VpOptions::DISABLE_INITIATOR
        );
        assert_eq!(e.hard_address, 0x7c);
        assert_eq!(e.port_name, Wwn([0x21, 1, 2, 3, 4, 5, 6, 7]));
        assert_eq!(mid.vp_entry(2), None);
        assert_eq!(mid.icb().version(), 0);
        let mut out = [0u8; MID_ICB_HEADER_LEN + 2 * MID_VP_ENTRY_LEN];
        let mut m = MidIcb::new_unchecked(&mut out[..]);
        m.set_count(2);
        m.set_options(2);
        m.set_vp_entry(1, &e).unwrap();
        assert!(m.set_vp_entry(2, &e).is_err());
        m.icb_mut().set_version(0);
        assert_eq!(out, buf);
        buf[0x80] = 3;
        assert!(MidIcb::new_checked(&buf[..]).is_err());
        assert_eq!(MID_ICB_LEN, 0x84 + 5120);
    }

    #[test]
    fn nvram_fields_and_checksum() {
        let mut img = [0u8; NVRAM_LEN];
        let mut n = Nvram24xx::new_checked(&mut img[..]).unwrap();
        n.set_id(*b"ISP ");
        n.set_nvram_version(1);
        n.set_version(2);
        n.set_frame_payload_size(2048);
        n.set_execution_throttle(0xFFFF);
        n.set_exchange_count(0);
        n.set_hard_address(124);
        n.set_port_name(nvram_defaults::port_name(0));
        n.set_node_name(nvram_defaults::NODE_NAME);
        n.set_login_retry_count(8);
        n.set_link_down_on_nos(3);
        n.set_interrupt_delay_timer(4);
        n.set_login_timeout(5);
        n.set_firmware_options_1(nvram_defaults::FIRMWARE_OPTIONS_1);
        n.set_firmware_options_2(nvram_defaults::FIRMWARE_OPTIONS_2);
        n.set_firmware_options_3(nvram_defaults::FIRMWARE_OPTIONS_3);
        n.set_seriallink_options([1, 2, 3, 4, 5, 6, 7, 8]);
        n.set_host_p(1 << 15);
        n.set_alternate_port_name(Wwn::from_u64(9));
        n.set_alternate_node_name(Wwn::from_u64(10));
        n.set_reset_delay(5);
        n.set_port_down_retry_count(30);
        n.set_link_down_timeout(45);
        n.set_model_name(*b"QLE2562         ");
        assert!(!n.is_valid());
        n.fix_checksum();
        assert!(n.is_valid());
        assert_eq!(n.checksum(), 0);
        // Offsets by hand (§2.4).
        assert_eq!(&img[0..4], b"ISP ");
        assert_eq!(
            img[0x14..0x1C],
            [0x21, 0x01, 0x00, 0xe0, 0x8b, 0x1c, 0x55, 0x86]
        );
        assert_eq!(img[0x2C..0x30], [0x06, 0x60, 0, 0]);
        assert_eq!(img[0x148], 5);
        let n = Nvram24xx::new_checked(&img[..]).unwrap();
        assert_eq!(
            (n.nvram_version(), n.version(), n.frame_payload_size()),
            (1, 2, 2048)
        );
        assert_eq!(
            (n.execution_throttle(), n.exchange_count(), n.hard_address()),
            (0xFFFF, 0, 124)
        );
        assert_eq!(n.node_name(), nvram_defaults::NODE_NAME);
        assert_eq!(
            (
                n.login_retry_count(),
                n.link_down_on_nos(),
                n.interrupt_delay_timer(),
                n.login_timeout()
            ),
            (8, 3, 4, 5)
        );
        assert_eq!(n.firmware_options_2(), 0x1020);
        assert_eq!(n.firmware_options_3(), 0x4000);
        assert_eq!(n.seriallink_options(), [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(n.host_p(), 0x8000);
        assert_eq!(
            (
                n.alternate_port_name().to_u64(),
                n.alternate_node_name().to_u64()
            ),
            (9, 10)
        );
        assert_eq!(
            (
                n.reset_delay(),
                n.port_down_retry_count(),
                n.link_down_timeout()
            ),
            (5, 30, 45)
        );
        assert_eq!(&n.model_name()[..7], b"QLE2562");
        assert_ne!(n.checksum_word(), 0);
        let _ = n.into_inner();
        assert!(Nvram24xx::new_checked(&[0u8; 100][..]).is_err());
    }
}
