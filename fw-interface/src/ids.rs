//! FC identifiers: port ids, world-wide names, LUNs, exchange and port handles.
//!
//! Byte order matters (reference gotcha 1): S_ID/D_ID in an ATIO and in every FC header are
//! big-endian (domain, area, al_pa); CTIO7 `initiator_id`, IMMED_NOTIFY `port_id` and
//! LOGINOUT `port_id` are little-endian (al_pa, area, domain). [`PortId`] has a constructor
//! and an encoder for each order, so no caller swaps bytes by hand.

use core::fmt;

use crate::Value;

/// A 24-bit FC port identifier (N_Port ID / D_ID / S_ID): `domain << 16 | area << 8 | al_pa`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PortId(u32);

impl PortId {
    /// The fabric F_Port (FLOGI destination), FF:FF:FE.
    pub const FABRIC_LOGIN: PortId = PortId(0xFF_FFFE);
    /// The directory (name) server, FF:FF:FC.
    pub const NAME_SERVER: PortId = PortId(0xFF_FFFC);
    /// The fabric controller (RSCN source, SCR destination), FF:FF:FD.
    pub const FABRIC_CONTROLLER: PortId = PortId(0xFF_FFFD);

    /// A port id from its 24-bit value; the top byte of `v` is dropped.
    pub const fn new(v: u32) -> PortId {
        PortId(v & 0xFF_FFFF)
    }

    /// A port id from its three parts.
    pub const fn from_parts(domain: u8, area: u8, al_pa: u8) -> PortId {
        PortId((domain as u32) << 16 | (area as u32) << 8 | al_pa as u32)
    }

    /// From wire (big-endian) order: `[domain, area, al_pa]`.
    pub const fn from_be_bytes(b: [u8; 3]) -> PortId {
        PortId::from_parts(b[0], b[1], b[2])
    }

    /// From IOCB little-endian order: `[al_pa, area, domain]`.
    pub const fn from_le_bytes(b: [u8; 3]) -> PortId {
        PortId::from_parts(b[2], b[1], b[0])
    }

    /// Wire (big-endian) order: `[domain, area, al_pa]`.
    pub const fn to_be_bytes(self) -> [u8; 3] {
        [self.domain(), self.area(), self.al_pa()]
    }

    /// IOCB little-endian order: `[al_pa, area, domain]`.
    pub const fn to_le_bytes(self) -> [u8; 3] {
        [self.al_pa(), self.area(), self.domain()]
    }

    /// The 24-bit value.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// The domain byte (bits 23..16).
    pub const fn domain(self) -> u8 {
        (self.0 >> 16) as u8
    }

    /// The area byte (bits 15..8).
    pub const fn area(self) -> u8 {
        (self.0 >> 8) as u8
    }

    /// The AL_PA / port byte (bits 7..0).
    pub const fn al_pa(self) -> u8 {
        self.0 as u8
    }

    /// `true` for the switch-reserved well-known addresses FF:Fx:xx (reference §9.1).
    pub const fn is_well_known(self) -> bool {
        self.0 & 0xFF_F000 == 0xFF_F000
    }
}

impl fmt::Display for PortId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:06x}", self.0)
    }
}

impl From<PortId> for Value<'static> {
    fn from(p: PortId) -> Self {
        Value::PortId(p)
    }
}

/// A world-wide name (WWPN or WWNN), 8 bytes in wire (big-endian) order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Wwn(pub [u8; 8]);

impl Wwn {
    /// From the big-endian 64-bit value.
    pub const fn from_u64(v: u64) -> Wwn {
        Wwn(v.to_be_bytes())
    }

    /// The big-endian 64-bit value.
    pub const fn to_u64(self) -> u64 {
        u64::from_be_bytes(self.0)
    }

    /// `true` if every byte is zero (no name).
    pub const fn is_zero(self) -> bool {
        self.to_u64() == 0
    }
}

impl fmt::Display for Wwn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::bytes::write_hex(f, &self.0, ":")
    }
}

/// A SCSI logical unit number as the 8 raw bytes of SAM (FCP_LUN), big-endian.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Lun(pub [u8; 8]);

impl Lun {
    /// From the 8 bytes read as a big-endian integer.
    pub const fn from_u64(v: u64) -> Lun {
        Lun(v.to_be_bytes())
    }

    /// The 8 bytes as a big-endian integer.
    pub const fn to_u64(self) -> u64 {
        u64::from_be_bytes(self.0)
    }

    /// A single-level LUN for `index`: peripheral addressing (`00 nn`) below 256, flat
    /// addressing (`4n nn`) up to 16383 (SAM-5 §4.7). `None` above 16383.
    pub const fn from_index(index: u16) -> Option<Lun> {
        if index < 256 {
            Some(Lun([0, index as u8, 0, 0, 0, 0, 0, 0]))
        } else if index < 0x4000 {
            Some(Lun([
                0x40 | (index >> 8) as u8,
                index as u8,
                0,
                0,
                0,
                0,
                0,
                0,
            ]))
        } else {
            None
        }
    }

    /// The index of a single-level peripheral or flat LUN (bytes 2..8 zero), else `None`.
    pub const fn index(self) -> Option<u16> {
        let b = self.0;
        if b[2] != 0 || b[3] != 0 || b[4] != 0 || b[5] != 0 || b[6] != 0 || b[7] != 0 {
            return None;
        }
        match b[0] >> 6 {
            0 if b[0] == 0 => Some(b[1] as u16),
            1 => Some(((b[0] & 0x3F) as u16) << 8 | b[1] as u16),
            _ => None,
        }
    }
}

impl fmt::Display for Lun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::bytes::write_hex(f, &self.0, "")
    }
}

/// The firmware's 32-bit handle of a received exchange (ATIO `exchange_addr`), echoed in
/// every CTIO. It is the identity of a command (reference gotcha 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ExchangeAddr(pub u32);

impl ExchangeAddr {
    /// 0xFFFFFFFF: in an ATIO the firmware had no exchange (answer BUSY); in ABTS_RECV
    /// `exchange_addr_to_abort` the aborted exchange is unknown (answer BA_RJT).
    pub const UNKNOWN: ExchangeAddr = ExchangeAddr(0xFFFF_FFFF);

    /// `true` for [`ExchangeAddr::UNKNOWN`].
    pub const fn is_unknown(self) -> bool {
        self.0 == Self::UNKNOWN.0
    }
}

impl fmt::Display for ExchangeAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#010x}", self.0)
    }
}

/// The firmware's 16-bit index of a logged-in remote port (`loop_id` in the Linux driver).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NportHandle(pub u16);

impl NportHandle {
    /// 0xFFFF: "unrecognized" in a CTIO7 (only valid to terminate an idle exchange), "global"
    /// in IMMED_NOTIFY and async PORT_UPDATE.
    pub const NONE: NportHandle = NportHandle(0xFFFF);

    /// `true` for [`NportHandle::NONE`].
    pub const fn is_none(self) -> bool {
        self.0 == Self::NONE.0
    }
}

impl fmt::Display for NportHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#06x}", self.0)
    }
}

/// The originator (initiator) exchange id of an FC exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct OxId(pub u16);

impl fmt::Display for OxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#06x}", self.0)
    }
}

/// The responder exchange id of an FC exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RxId(pub u16);

impl RxId {
    /// 0xFFFF: not assigned yet.
    pub const UNASSIGNED: RxId = RxId(0xFFFF);
}

impl fmt::Display for RxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#06x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::ToString;

    #[test]
    fn port_id_byte_orders() {
        let p = PortId::from_be_bytes([0x01, 0x02, 0x03]);
        assert_eq!(p.get(), 0x010203);
        assert_eq!(p.to_le_bytes(), [0x03, 0x02, 0x01]);
        assert_eq!(PortId::from_le_bytes([0x03, 0x02, 0x01]), p);
        assert_eq!(p.to_be_bytes(), [1, 2, 3]);
        assert_eq!((p.domain(), p.area(), p.al_pa()), (1, 2, 3));
        assert_eq!(p.to_string(), "010203");
        assert_eq!(PortId::new(0xAB12_3456).get(), 0x12_3456);
        assert!(PortId::NAME_SERVER.is_well_known());
        assert!(!p.is_well_known());
        assert_eq!(PortId::FABRIC_LOGIN.get(), 0xFFFFFE);
        assert_eq!(PortId::FABRIC_CONTROLLER.get(), 0xFFFFFD);
        assert!(matches!(Value::from(p), Value::PortId(x) if x == p));
    }

    #[test]
    fn wwn_and_lun_render() {
        let w = Wwn::from_u64(0x2100_00e0_8b1c_5586);
        assert_eq!(w.to_string(), "21:00:00:e0:8b:1c:55:86");
        assert_eq!(w.to_u64(), 0x2100_00e0_8b1c_5586);
        assert!(!w.is_zero());
        assert!(Wwn::default().is_zero());
        let l = Lun::from_index(5).unwrap();
        assert_eq!(l.to_string(), "0005000000000000");
        assert_eq!(l.index(), Some(5));
        let flat = Lun::from_index(0x1234).unwrap();
        assert_eq!(flat.0[..2], [0x52, 0x34]);
        assert_eq!(flat.index(), Some(0x1234));
        assert_eq!(Lun::from_index(0x4000), None);
        assert_eq!(Lun::from_u64(1).index(), None);
        assert_eq!(Lun([0x80, 1, 0, 0, 0, 0, 0, 0]).index(), None);
        assert_eq!(
            Lun::from_u64(0x0001_0000_0000_0000).to_u64(),
            0x0001_0000_0000_0000
        );
    }

    #[test]
    fn handles_render() {
        assert_eq!(ExchangeAddr(0x123).to_string(), "0x00000123");
        assert!(ExchangeAddr::UNKNOWN.is_unknown());
        assert!(!ExchangeAddr(0).is_unknown());
        assert_eq!(NportHandle(1).to_string(), "0x0001");
        assert!(NportHandle::NONE.is_none());
        assert_eq!(OxId(0x1234).to_string(), "0x1234");
        assert_eq!(RxId::UNASSIGNED.to_string(), "0xffff");
    }
}
