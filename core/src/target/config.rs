//! Configuration of a target: identity, ports, logical units, initiator groups.

use core::fmt;
use core::time::Duration;

use crate::backend::BackendLun;
use crate::ids::{ProtocolId, RelativePortId, TargetPortGroupId};

fn padded<const N: usize>(s: &str) -> [u8; N] {
    let mut out = [b' '; N];
    for (o, c) in out.iter_mut().zip(s.bytes()) {
        *o = if (0x20..0x7f).contains(&c) { c } else { b' ' };
    }
    out
}

/// Identity and tunables of a target.
#[derive(Clone, Debug)]
pub struct TargetConfig {
    /// T10 VENDOR IDENTIFICATION (INQUIRY bytes 8-15), space padded.
    pub vendor: [u8; 8],
    /// PRODUCT IDENTIFICATION (bytes 16-31).
    pub product: [u8; 16],
    /// PRODUCT REVISION LEVEL (bytes 32-35).
    pub revision: [u8; 4],
    /// Version descriptor of the transport standard the driver implements,
    /// listed in standard INQUIRY data (e.g. 0A40h FCP-4); 0 for none.
    pub transport_version: u16,
    /// Call [`crate::Transport::hw_pending_timeout`] for a command that has
    /// waited this long for a transport completion. `None`: never.
    pub hw_pending_timeout: Option<Duration>,
}

impl TargetConfig {
    /// A configuration with these identification strings (padded with
    /// spaces, truncated, non-printable characters replaced).
    pub fn new(vendor: &str, product: &str, revision: &str) -> TargetConfig {
        TargetConfig {
            vendor: padded(vendor),
            product: padded(product),
            revision: padded(revision),
            transport_version: 0,
            hw_pending_timeout: None,
        }
    }
}

/// Asymmetric access state of a target port group (SPC-5 5.16.2.4).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AluaState {
    /// Active/optimized.
    ActiveOptimized,
    /// Active/non-optimized.
    ActiveNonOptimized,
    /// Standby: media commands are refused with NOT READY 04/0B.
    Standby,
    /// Unavailable: media commands are refused with NOT READY 04/0C.
    Unavailable,
}

impl AluaState {
    /// The ASYMMETRIC ACCESS STATE code.
    pub const fn code(self) -> u8 {
        match self {
            AluaState::ActiveOptimized => 0x0,
            AluaState::ActiveNonOptimized => 0x1,
            AluaState::Standby => 0x2,
            AluaState::Unavailable => 0x3,
        }
    }
}

impl fmt::Display for AluaState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AluaState::ActiveOptimized => "active/optimized",
            AluaState::ActiveNonOptimized => "active/non-optimized",
            AluaState::Standby => "standby",
            AluaState::Unavailable => "unavailable",
        })
    }
}

/// A target port.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PortConfig {
    /// Relative target port identifier (1 and up).
    pub id: RelativePortId,
    /// Its target port group.
    pub group: TargetPortGroupId,
    /// The port's name as an 8-byte NAA identifier (FC: the WWPN), listed in
    /// the device identification VPD page with `protocol`.
    pub name: Option<u64>,
    /// The transport protocol of the port.
    pub protocol: ProtocolId,
}

impl PortConfig {
    /// A port without a name.
    pub const fn new(id: RelativePortId, group: TargetPortGroupId) -> PortConfig {
        PortConfig {
            id,
            group,
            name: None,
            protocol: ProtocolId::None,
        }
    }
}

/// Longest unit serial number kept (VPD page 80h).
pub const SERIAL_MAX: usize = 32;

/// Largest [`LuConfig::physical_block_exponent`] (a 4-bit field).
pub const PHYSICAL_EXPONENT_MAX: u8 = 15;

/// A logical unit.
#[derive(Clone, Copy, Debug)]
pub struct LuConfig<'s> {
    /// Where its blocks are stored.
    pub backend: BackendLun,
    /// Logical block size in bytes (a power of two, 512 to 65536).
    pub block_size: u32,
    /// LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT (READ CAPACITY(16)): the
    /// physical block is `2^n` logical blocks, 0 to [`PHYSICAL_EXPONENT_MAX`]
    /// (e.g. 3 for 4096-byte physical blocks of 512-byte logical ones). LBA 0
    /// is aligned (LOWEST ALIGNED LOGICAL BLOCK ADDRESS 0); VPD page B0h's
    /// OPTIMAL TRANSFER LENGTH GRANULARITY is one physical block. 0 (the
    /// default): physical and logical blocks are the same.
    pub physical_block_exponent: u8,
    /// Number of blocks.
    pub blocks: u64,
    /// Thin provisioned: LBPME, UNMAP, WRITE SAME with UNMAP, GET LBA STATUS;
    /// unmapped blocks read as zeros (LBPRZ).
    pub thin: bool,
    /// OPTIMAL UNMAP GRANULARITY in blocks (a power of two; the backend's granule).
    pub unmap_granularity: u32,
    /// Write protected for every initiator (DATA PROTECT 27/00).
    pub read_only: bool,
    /// Removable medium (RMB): START STOP UNIT can unload it.
    pub removable: bool,
    /// START STOP UNIT with START=0 and LOEJ=0 stops the LU: the SBC-4
    /// stopped power condition, where TEST UNIT READY and media access
    /// commands get NOT READY, INITIALIZING COMMAND REQUIRED until a START=1.
    /// `false` (the default) deviates from SBC-4 on purpose: the command is
    /// accepted (the write cache flushed unless NO_FLUSH) and the LU stays
    /// ready, since it has no spindle to stop and one initiator stopping a
    /// shared LU would take it away from every other one. libiscsi's
    /// StartStopUnit.NoLoej expects this.
    pub stoppable: bool,
    /// Volatile write cache present and enabled by default (WCE).
    pub write_cache: bool,
    /// MEDIUM ROTATION RATE of VPD page B1h: 1 = non-rotating (solid state).
    pub rotation_rate: u16,
    /// The NAA IEEE Registered Extended identifier (type 6, 16 bytes) of the
    /// LU in VPD page 83h. All zeros: derived from the LU's position.
    pub naa: [u8; 16],
    /// Unit serial number (VPD page 80h), printable ASCII, at most [`SERIAL_MAX`] bytes.
    pub serial: &'s str,
    /// Logical unit group (VPD page 83h designator type 6); 0 for none.
    pub lu_group: u16,
    /// MAXIMUM TRANSFER LENGTH in blocks (VPD page B0h); 0 for no limit.
    pub max_transfer_blocks: u32,
    /// Pace of SANITIZE and FORMAT UNIT in bytes per second; 0 runs them as
    /// fast as the backend goes.
    pub background_rate: u64,
}

impl<'s> LuConfig<'s> {
    /// A fully provisioned, writable, non-removable LU with a write cache.
    pub const fn new(backend: BackendLun, block_size: u32, blocks: u64) -> LuConfig<'s> {
        LuConfig {
            backend,
            block_size,
            physical_block_exponent: 0,
            blocks,
            thin: false,
            unmap_granularity: 1,
            read_only: false,
            removable: false,
            stoppable: false,
            write_cache: true,
            rotation_rate: 1,
            naa: [0; 16],
            serial: "",
            lu_group: 0,
            max_transfer_blocks: 0,
            background_rate: 0,
        }
    }
}

/// An initiator group: a LUN map shared by the initiators in it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GroupId(pub(crate) u8);

impl GroupId {
    /// The group of initiators not named in any other group.
    pub const DEFAULT: GroupId = GroupId(0);
}

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "group {}", self.0)
    }
}

/// A logical unit of a target.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LuId(pub(crate) u16);

impl LuId {
    /// Its index in the target's storage.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for LuId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LU {}", self.0)
    }
}

/// How an initiator group may use a mapped LU.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Access {
    /// Read and write.
    ReadWrite,
    /// Read only: commands that modify the medium get DATA PROTECT.
    ReadOnly,
}

/// Why a configuration call failed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ConfigError {
    /// No room left (ports, LUs, groups, ACL entries, map entries).
    Full,
    /// The identifier is already in use (port, LUN in the map, initiator).
    Duplicate,
    /// No such LU, group or port.
    NotFound,
    /// A value is out of range (block size, physical block exponent, zero
    /// blocks, relative port 0, a serial number that is too long or not
    /// printable).
    Invalid,
    /// The LU still has commands or mappings.
    InUse,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConfigError::Full => "no room left",
            ConfigError::Duplicate => "already configured",
            ConfigError::NotFound => "not found",
            ConfigError::Invalid => "invalid value",
            ConfigError::InUse => "still in use",
        })
    }
}

impl core::error::Error for ConfigError {}

/// Why a session could not be created.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SessionError {
    /// Every session slot is in use.
    Full,
    /// The relative port is not configured.
    UnknownPort,
    /// The TransportID is empty.
    InvalidInitiator,
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SessionError::Full => "no free session slot",
            SessionError::UnknownPort => "unknown relative port",
            SessionError::InvalidInitiator => "invalid initiator TransportID",
        })
    }
}

impl core::error::Error for SessionError {}

/// A completion or request named a handle the core does not know (stale
/// generation, freed slot) or a command in a state where the call makes no sense.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum HandleError {
    /// Stale or never issued.
    Stale,
    /// The command is not waiting for this completion (e.g. `data_out_done`
    /// without `request_data_out`).
    WrongState,
}

impl fmt::Display for HandleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HandleError::Stale => "stale handle",
            HandleError::WrongState => "completion does not match the command's state",
        })
    }
}

impl core::error::Error for HandleError {}

/// What one [`crate::Target::poll`] achieved.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Progress {
    /// Nothing could move.
    Idle,
    /// Something moved; more may be possible at [`crate::Target::poll_at`].
    Progressed,
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Access::ReadWrite => "read-write",
            Access::ReadOnly => "read-only",
        })
    }
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Progress::Idle => "idle",
            Progress::Progressed => "progressed",
        })
    }
}
