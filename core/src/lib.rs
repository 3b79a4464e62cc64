#![doc = include_str!("../README.md")]
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

#[cfg(all(feature = "std", not(test)))]
extern crate std;

#[macro_use]
#[allow(unused_macros)]
mod log_shim;

pub mod backend;
mod cdb;
mod ids;
mod memory;
mod payload;
mod pr;
mod sbc;
mod sense;
mod spc;
mod target;
mod time;
mod tmf;
mod transport;

pub use backend::{
    Backend, BackendLun, Io, IoBuf, IoError, IoKind, IoToken, LbaRun, MapDir, Mapped, NullBackend,
    Pair, ProvisioningStatus, RamBackend, RamError, Submitted,
};
#[cfg(feature = "std")]
pub use backend::{FileBackend, FileOptions, IoEngine, PreadEngine};
pub use ids::{
    CmdHandle, Lun, ProtocolId, RelativePortId, SessionHandle, TRANSPORT_ID_MAX, TargetPortGroupId,
    TaskTag, TmfHandle, TransportId, TransportIdError,
};
pub use memory::{
    MAX_SEGS, Memory, MemoryError, Seg, SegList, SliceMemory, check_range, compare, copy,
};
#[cfg(feature = "std")]
pub use pr::FilePrStore;
pub use pr::{PrBlob, PrStore, PrStoreError, PrType};
pub use sense::{FieldPointer, SENSE_MAX, SenseData, SenseKey, SenseReason, UnitAttention};
pub use target::{
    Access, AluaState, BufferPool, BufferPoolError, CmdState, ConfigError, GroupId, HandleError,
    LuConfig, LuId, MAX_CHUNKS, MAX_GROUPS, MAX_PORTS, MAX_TMFS, PHYSICAL_EXPONENT_MAX, PortConfig,
    Progress, SERIAL_MAX, SessionError, Stats, Target, TargetConfig, TargetStorage,
};
pub use time::Instant;
pub use tmf::{TmfFunction, TmfRequest, TmfResponse, TmfResponseCode};
pub use transport::{
    Busy, CmdRef, CommandRequest, Data, DataDirection, Rejected, Residual, ScsiStatus, Status,
    TaskAttr, TmfRef, TransferError, Transport,
};
