//! Identities: LUNs, task tags, pool handles, ports and SPC TransportIDs.
//!
//! SAM-5 4.7 (logical unit numbers), SAM-5 4.6 (I_T nexus), SPC-5 7.6.4
//! (TransportID formats). Nothing here knows FC: an FC driver builds a
//! [`TransportId`] from an N_Port name with [`TransportId::fc`].

use core::fmt;

/// A logical unit number in its SAM 8-byte form, held as a big-endian `u64`.
///
/// The core compares LUNs after [`Lun::normalized`]: a single-level LUN below
/// 256 addressed with the peripheral method (`00 nn`) and the same number
/// addressed with the flat space method (`40 nn`) name the same logical unit.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Lun(pub u64);

impl Lun {
    /// LUN 0 (peripheral device addressing).
    pub const ZERO: Lun = Lun(0);

    /// The LUN of the 8 bytes as they appear on the wire.
    pub const fn from_bytes(bytes: [u8; 8]) -> Lun {
        Lun(u64::from_be_bytes(bytes))
    }

    /// The 8 wire bytes.
    pub const fn to_bytes(self) -> [u8; 8] {
        self.0.to_be_bytes()
    }

    /// A single-level LUN: peripheral device addressing below 256, flat space
    /// addressing below 16384 (the encoding Linux and SCST use). `None` above.
    pub const fn single_level(number: u16) -> Option<Lun> {
        if number < 256 {
            Some(Lun((number as u64) << 48))
        } else if number < 0x4000 {
            Some(Lun(((0x4000 | number as u64) & 0x7fff) << 48))
        } else {
            None
        }
    }

    /// The number of a single-level LUN (peripheral or flat space addressing,
    /// second to fourth levels zero), `None` for any other form.
    pub const fn single_level_number(self) -> Option<u16> {
        if self.0 & 0x0000_ffff_ffff_ffff != 0 {
            return None;
        }
        let first = (self.0 >> 48) as u16;
        match first >> 14 {
            // Peripheral device addressing: bus identifier must be 0.
            0b00 if first >> 8 == 0 => Some(first & 0xff),
            // Flat space addressing.
            0b01 => Some(first & 0x3fff),
            _ => None,
        }
    }

    /// The canonical form the core compares: single-level LUNs re-encoded as
    /// [`Lun::single_level`], anything else unchanged.
    #[inline]
    pub const fn normalized(self) -> Lun {
        // Peripheral addressing with bus 0 is already canonical.
        if self.0 & 0xff00_ffff_ffff_ffff == 0 {
            return self;
        }
        match self.single_level_number() {
            Some(n) => match Lun::single_level(n) {
                Some(l) => l,
                None => self,
            },
            None => self,
        }
    }
}

impl fmt::Display for Lun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.single_level_number() {
            Some(n) => write!(f, "LUN {n}"),
            None => write!(f, "LUN {:#018x}", self.0),
        }
    }
}

/// The transport's identity of a task (FC: the firmware's exchange address;
/// iSCSI: the initiator task tag). Opaque to the core, which only compares
/// tags within one I_T nexus (ABORT TASK, QUERY TASK).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TaskTag(pub u64);

impl fmt::Display for TaskTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tag {:#x}", self.0)
    }
}

macro_rules! handle {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
        #[cfg_attr(feature = "defmt", derive(defmt::Format))]
        pub struct $name {
            index: u16,
            generation: u16,
        }

        impl $name {
            #[allow(dead_code)] // issued by the target
            #[inline]
            pub(crate) const fn new(index: u16, generation: u16) -> $name {
                $name { index, generation }
            }

            /// Pool index: stable while the handle is live, so a transport may
            /// keep per-slot state in an array indexed by it.
            #[inline]
            pub const fn index(self) -> usize {
                self.index as usize
            }

            /// Generation of the slot when the handle was issued; a reused
            /// slot has a new one, so a stale handle is refused, never aliased.
            #[inline]
            pub const fn generation(self) -> u16 {
                self.generation
            }

            /// The handle as one `u32` (index in the low half), e.g. for a
            /// 32-bit handle field of a firmware request.
            pub const fn to_u32(self) -> u32 {
                (self.generation as u32) << 16 | self.index as u32
            }

            /// The inverse of [`Self::to_u32`].
            pub const fn from_u32(raw: u32) -> $name {
                $name { index: raw as u16, generation: (raw >> 16) as u16 }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "#{}.{}"), self.index, self.generation)
            }
        }
    };
}

handle!(
    /// A session (I_T nexus) of a [`crate::Target`].
    SessionHandle,
    "session"
);
handle!(
    /// A command slot of a [`crate::Target`].
    CmdHandle,
    "cmd"
);
handle!(
    /// A task management request slot of a [`crate::Target`].
    TmfHandle,
    "tmf"
);

/// The relative target port identifier (SPC-5 7.7.15.4): 1 for the first
/// port of the target, 0 is reserved.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RelativePortId(pub u16);

impl fmt::Display for RelativePortId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "port {}", self.0)
    }
}

/// A target port group identifier (SPC-5 5.16, asymmetric logical unit access).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TargetPortGroupId(pub u16);

impl fmt::Display for TargetPortGroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "port group {}", self.0)
    }
}

/// SCSI transport protocol identifier (SPC-5 7.6.1, table "PROTOCOL IDENTIFIER").
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ProtocolId {
    /// Fibre Channel (FCP-4).
    FibreChannel,
    /// Parallel SCSI (SPI-5).
    ParallelScsi,
    /// SSA.
    Ssa,
    /// IEEE 1394 (SBP-3).
    Ieee1394,
    /// SCSI RDMA Protocol.
    Srp,
    /// iSCSI.
    Iscsi,
    /// Serial Attached SCSI.
    Sas,
    /// Automation/Drive Interface.
    Adt,
    /// AT Attachment Interface.
    Ata,
    /// USB Attached SCSI.
    Uas,
    /// SCSI over PCI Express.
    Sop,
    /// PCI Express (NVMe).
    Pcie,
    /// No specific protocol.
    None,
    /// A value this crate does not know.
    Unknown(u8),
}

impl ProtocolId {
    /// The 4-bit code.
    pub const fn code(self) -> u8 {
        match self {
            ProtocolId::FibreChannel => 0x0,
            ProtocolId::ParallelScsi => 0x1,
            ProtocolId::Ssa => 0x2,
            ProtocolId::Ieee1394 => 0x3,
            ProtocolId::Srp => 0x4,
            ProtocolId::Iscsi => 0x5,
            ProtocolId::Sas => 0x6,
            ProtocolId::Adt => 0x7,
            ProtocolId::Ata => 0x8,
            ProtocolId::Uas => 0x9,
            ProtocolId::Sop => 0xa,
            ProtocolId::Pcie => 0xb,
            ProtocolId::None => 0xf,
            ProtocolId::Unknown(c) => c & 0xf,
        }
    }

    /// The protocol of a 4-bit code.
    pub const fn from_code(code: u8) -> ProtocolId {
        match code & 0xf {
            0x0 => ProtocolId::FibreChannel,
            0x1 => ProtocolId::ParallelScsi,
            0x2 => ProtocolId::Ssa,
            0x3 => ProtocolId::Ieee1394,
            0x4 => ProtocolId::Srp,
            0x5 => ProtocolId::Iscsi,
            0x6 => ProtocolId::Sas,
            0x7 => ProtocolId::Adt,
            0x8 => ProtocolId::Ata,
            0x9 => ProtocolId::Uas,
            0xa => ProtocolId::Sop,
            0xb => ProtocolId::Pcie,
            0xf => ProtocolId::None,
            c => ProtocolId::Unknown(c),
        }
    }
}

impl fmt::Display for ProtocolId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            ProtocolId::FibreChannel => "FCP",
            ProtocolId::ParallelScsi => "SPI",
            ProtocolId::Ssa => "SSA",
            ProtocolId::Ieee1394 => "SBP",
            ProtocolId::Srp => "SRP",
            ProtocolId::Iscsi => "iSCSI",
            ProtocolId::Sas => "SAS",
            ProtocolId::Adt => "ADT",
            ProtocolId::Ata => "ATA",
            ProtocolId::Uas => "UAS",
            ProtocolId::Sop => "SOP",
            ProtocolId::Pcie => "PCIe",
            ProtocolId::None => "none",
            ProtocolId::Unknown(c) => return write!(f, "protocol {c:#x}"),
        };
        f.write_str(name)
    }
}

/// Longest TransportID the core stores (an iSCSI name of 223 bytes, the
/// `,i,0x` separator, an ISID and padding fit).
pub const TRANSPORT_ID_MAX: usize = 256;

/// Why a TransportID was refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum TransportIdError {
    /// Shorter than the 24 bytes every format has, or than its own length field says.
    TooShort,
    /// Longer than [`TRANSPORT_ID_MAX`].
    TooLong,
    /// An iSCSI name that is empty or not printable ASCII.
    BadName,
    /// A FORMAT CODE the protocol does not define.
    BadFormat,
}

impl fmt::Display for TransportIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransportIdError::TooShort => "TransportID too short",
            TransportIdError::TooLong => "TransportID too long",
            TransportIdError::BadName => "TransportID name is empty or not printable ASCII",
            TransportIdError::BadFormat => "TransportID format code not defined for its protocol",
        })
    }
}

impl core::error::Error for TransportIdError {}

/// An initiator port's SPC TransportID (SPC-5 7.6.4): protocol identifier
/// plus the protocol's name of the port. Used for access control (initiator
/// groups) and by persistent reservations.
#[derive(Clone, PartialEq, Eq)]
pub struct TransportId {
    len: u16,
    bytes: [u8; TRANSPORT_ID_MAX],
}

impl TransportId {
    /// An empty (invalid) TransportID, for initialising storage.
    pub(crate) const EMPTY: TransportId = TransportId {
        len: 0,
        bytes: [0; TRANSPORT_ID_MAX],
    };

    /// The FC TransportID (FORMAT CODE 00b) of an N_Port name.
    pub fn fc(n_port_name: u64) -> TransportId {
        let mut t = TransportId::EMPTY;
        t.len = 24;
        t.bytes[0] = ProtocolId::FibreChannel.code();
        t.bytes[8..16].copy_from_slice(&n_port_name.to_be_bytes());
        t
    }

    /// The SAS TransportID (FORMAT CODE 00b) of a SAS address.
    pub fn sas(sas_address: u64) -> TransportId {
        let mut t = TransportId::EMPTY;
        t.len = 24;
        t.bytes[0] = ProtocolId::Sas.code();
        t.bytes[4..12].copy_from_slice(&sas_address.to_be_bytes());
        t
    }

    /// The iSCSI TransportID of an initiator name: FORMAT CODE 00b without an
    /// ISID (an initiator device), 01b with one (an initiator port,
    /// `name,i,0x<ISID>`).
    pub fn iscsi(name: &str, isid: Option<[u8; 6]>) -> Result<TransportId, TransportIdError> {
        let name = name.as_bytes();
        if name.is_empty() || !name.iter().all(|b| (0x21..0x7f).contains(b)) {
            return Err(TransportIdError::BadName);
        }
        let mut t = TransportId::EMPTY;
        let mut n = 4usize;
        let mut put = |b: &[u8], n: &mut usize| -> Result<(), TransportIdError> {
            let end = *n + b.len();
            t.bytes
                .get_mut(*n..end)
                .ok_or(TransportIdError::TooLong)?
                .copy_from_slice(b);
            *n = end;
            Ok(())
        };
        put(name, &mut n)?;
        if let Some(isid) = isid {
            put(b",i,0x", &mut n)?;
            for byte in isid {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                put(
                    &[HEX[usize::from(byte >> 4)], HEX[usize::from(byte & 0xf)]],
                    &mut n,
                )?;
            }
        }
        // NUL terminator, then pad to a multiple of 4 and at least 20 bytes.
        n += 1;
        let padded = (n.max(20) + 3) & !3;
        if padded > TRANSPORT_ID_MAX {
            return Err(TransportIdError::TooLong);
        }
        let format = if isid.is_some() { 0x40 } else { 0x00 };
        t.bytes[0] = format | ProtocolId::Iscsi.code();
        let additional = (padded - 4) as u16;
        t.bytes[2..4].copy_from_slice(&additional.to_be_bytes());
        t.len = padded as u16;
        Ok(t)
    }

    /// Parse a TransportID from its wire bytes (e.g. a PERSISTENT RESERVE OUT
    /// parameter list). Trailing bytes past the ID's own length are ignored.
    pub fn from_bytes(bytes: &[u8]) -> Result<TransportId, TransportIdError> {
        let first = *bytes.first().ok_or(TransportIdError::TooShort)?;
        let format = first >> 6;
        let len = match ProtocolId::from_code(first) {
            ProtocolId::Iscsi => {
                if format > 1 {
                    return Err(TransportIdError::BadFormat);
                }
                let hdr = bytes.get(2..4).ok_or(TransportIdError::TooShort)?;
                let additional = usize::from(u16::from_be_bytes([hdr[0], hdr[1]]));
                let len = 4 + additional;
                if len < 20 {
                    return Err(TransportIdError::TooShort);
                }
                len
            }
            _ => {
                if format != 0 {
                    return Err(TransportIdError::BadFormat);
                }
                24
            }
        };
        if len > TRANSPORT_ID_MAX {
            return Err(TransportIdError::TooLong);
        }
        let src = bytes.get(..len).ok_or(TransportIdError::TooShort)?;
        let mut t = TransportId::EMPTY;
        t.bytes[..len].copy_from_slice(src);
        t.len = len as u16;
        Ok(t)
    }

    /// The wire bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// The protocol identifier.
    pub fn protocol(&self) -> ProtocolId {
        ProtocolId::from_code(self.bytes[0])
    }

    /// Whether this is a valid (non-empty) TransportID.
    pub fn is_valid(&self) -> bool {
        self.len != 0
    }

    /// For iSCSI, the initiator name (without the `,i,0x<ISID>` part).
    fn iscsi_name(&self) -> &[u8] {
        let body = self.as_bytes().get(4..).unwrap_or(&[]);
        let end = body
            .iter()
            .position(|&b| b == 0 || b == b',')
            .unwrap_or(body.len());
        &body[..end]
    }

    /// For iSCSI with FORMAT CODE 01b, the ISID (the hex digits after `,i,0x`).
    fn iscsi_isid(&self) -> Option<&[u8]> {
        let body = self.as_bytes().get(4..)?;
        let end = body.iter().position(|&b| b == 0).unwrap_or(body.len());
        let body = &body[..end];
        let at = body
            .windows(5)
            .position(|w| w.eq_ignore_ascii_case(b",i,0x"))?;
        body.get(at + 5..)
    }

    /// Whether the protocol's TransportID format is one persistent
    /// reservations accept from an initiator (SPEC_I_PT, REGISTER AND MOVE):
    /// Fibre Channel, iSCSI and SAS.
    pub fn is_supported_for_pr(&self) -> bool {
        matches!(
            self.protocol(),
            ProtocolId::FibreChannel | ProtocolId::Iscsi | ProtocolId::Sas
        ) && (self.protocol() != ProtocolId::Iscsi || !self.iscsi_name().is_empty())
    }

    /// Whether `self` (a registration's TransportID) names the initiator
    /// port `port` (an I_T nexus's): FC by N_Port name, SAS by SAS address,
    /// iSCSI by name (case-insensitive) and ISID, where an iSCSI TransportID
    /// without an ISID (FORMAT CODE 00b) names every port of that initiator
    /// device (SPC-5 7.6.4.6). Other protocols compare whole.
    pub fn same_port(&self, port: &TransportId) -> bool {
        if self.protocol() != port.protocol() || !self.is_valid() || !port.is_valid() {
            return false;
        }
        match self.protocol() {
            ProtocolId::FibreChannel => self.bytes[8..16] == port.bytes[8..16],
            ProtocolId::Sas => self.bytes[4..12] == port.bytes[4..12],
            ProtocolId::Iscsi => {
                self.same_initiator(port)
                    && match (self.iscsi_isid(), port.iscsi_isid()) {
                        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                        (None, _) => true,
                        (Some(_), None) => false,
                    }
            }
            _ => self == port,
        }
    }

    /// Whether both name the same initiator device: equal for FC and other
    /// fixed formats, equal names (ISIDs ignored) for iSCSI. Access control
    /// matches initiators this way.
    pub fn same_initiator(&self, other: &TransportId) -> bool {
        if self.protocol() != other.protocol() {
            return false;
        }
        match self.protocol() {
            ProtocolId::Iscsi => {
                let (a, b) = (self.iscsi_name(), other.iscsi_name());
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.eq_ignore_ascii_case(y))
            }
            _ => self == other,
        }
    }
}

impl fmt::Debug for TransportId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TransportId({self})")
    }
}

impl fmt::Display for TransportId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.is_valid() {
            return f.write_str("<none>");
        }
        match self.protocol() {
            ProtocolId::FibreChannel => {
                let b = &self.bytes[8..16];
                write!(
                    f,
                    "FCP {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                    b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]
                )
            }
            ProtocolId::Iscsi => {
                f.write_str("iSCSI ")?;
                let body = self.as_bytes().get(4..).unwrap_or(&[]);
                for &c in body.iter().take_while(|&&c| c != 0) {
                    write!(f, "{}", char::from(c))?;
                }
                Ok(())
            }
            p => {
                write!(f, "{p} ")?;
                for b in self.as_bytes() {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for TransportId {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "TransportId({=[u8]:x})", self.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lun_forms() {
        assert_eq!(Lun::single_level(5), Some(Lun(0x0005_0000_0000_0000)));
        assert_eq!(Lun::single_level(300), Some(Lun(0x412c_0000_0000_0000)));
        assert_eq!(Lun::single_level(0x4000), None);
        assert_eq!(Lun(0x4005_0000_0000_0000).single_level_number(), Some(5));
        assert_eq!(
            Lun(0x4005_0000_0000_0000).normalized(),
            Lun(0x0005_0000_0000_0000)
        );
        assert_eq!(Lun(0x0105_0000_0000_0000).single_level_number(), None);
        assert_eq!(Lun(0x0005_0000_0000_0001).single_level_number(), None);
        assert_eq!(
            Lun::from_bytes([0, 7, 0, 0, 0, 0, 0, 0]).to_string(),
            "LUN 7"
        );
    }

    #[test]
    fn handles_round_trip() {
        let h = CmdHandle::new(3, 9);
        assert_eq!(CmdHandle::from_u32(h.to_u32()), h);
        assert_eq!(h.to_string(), "cmd#3.9");
    }

    #[test]
    fn transport_ids() {
        let fc = TransportId::fc(0x2100_0024_ff00_0001);
        assert_eq!(fc.as_bytes().len(), 24);
        assert_eq!(fc.protocol(), ProtocolId::FibreChannel);
        assert_eq!(fc.to_string(), "FCP 21:00:00:24:ff:00:00:01");
        assert_eq!(TransportId::from_bytes(fc.as_bytes()).unwrap(), fc);

        let a =
            TransportId::iscsi("iqn.2007-10.com.example:a", Some([0, 2, 0x3d, 0, 0, 1])).unwrap();
        assert_eq!(a.as_bytes()[0], 0x45);
        assert_eq!(a.as_bytes().len() % 4, 0);
        assert_eq!(
            a.to_string(),
            "iSCSI iqn.2007-10.com.example:a,i,0x00023d000001"
        );
        let b = TransportId::iscsi("IQN.2007-10.com.example:a", None).unwrap();
        assert!(a.same_initiator(&b));
        assert_ne!(a, b);
        assert_eq!(TransportId::from_bytes(a.as_bytes()).unwrap(), a);
        assert_eq!(TransportId::iscsi("", None), Err(TransportIdError::BadName));
        // Ports: ISIDs tell iSCSI ports apart; a name without ISID covers them all.
        let a2 =
            TransportId::iscsi("iqn.2007-10.com.example:a", Some([0, 2, 0x3d, 0, 0, 2])).unwrap();
        assert!(a.same_port(&a));
        assert!(!a.same_port(&a2));
        assert!(b.same_port(&a) && b.same_port(&a2));
        assert!(!a.same_port(&b));
        assert!(fc.same_port(&TransportId::fc(0x2100_0024_ff00_0001)));
        assert!(!fc.same_port(&TransportId::fc(0x2100_0024_ff00_0002)));
        let sas = TransportId::sas(0x5000_c500_1234_5678);
        assert_eq!(sas.as_bytes()[0], 6);
        assert!(sas.same_port(&TransportId::from_bytes(sas.as_bytes()).unwrap()));
        assert!(!sas.same_port(&fc));
        assert!(sas.is_supported_for_pr() && fc.is_supported_for_pr() && a.is_supported_for_pr());
        assert!(
            !TransportId::from_bytes(&[0x04; 24])
                .unwrap()
                .is_supported_for_pr()
        );
        assert_eq!(
            TransportId::from_bytes(&[0x45, 0, 0, 2]),
            Err(TransportIdError::TooShort)
        );
        assert_eq!(
            TransportId::from_bytes(&[0x80; 24]),
            Err(TransportIdError::BadFormat)
        );
    }
}
