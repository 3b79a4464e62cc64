#![doc = include_str!("../README.md")]
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

#[cfg(all(feature = "std", not(test)))]
extern crate std;

#[macro_use]
#[allow(unused_macros)]
mod log_shim;

pub mod backend;
mod ids;
mod memory;
mod sense;
mod time;
mod tmf;
mod transport;

pub use backend::{
    Backend, BackendLun, Io, IoBuf, IoError, IoKind, IoToken, LbaRun, MapDir, Mapped, NullBackend,
    Pair, ProvisioningStatus, RamBackend, RamError, Submitted,
};
pub use ids::{
    CmdHandle, Lun, ProtocolId, RelativePortId, SessionHandle, TRANSPORT_ID_MAX, TargetPortGroupId,
    TaskTag, TmfHandle, TransportId, TransportIdError,
};
pub use memory::{
    MAX_SEGS, Memory, MemoryError, Seg, SegList, SliceMemory, check_range, compare, copy,
};
pub use sense::{FieldPointer, SENSE_MAX, SenseData, SenseKey, SenseReason, UnitAttention};
pub use time::Instant;
pub use tmf::{TmfFunction, TmfRequest, TmfResponse, TmfResponseCode};
pub use transport::{
    Busy, CmdRef, CommandRequest, Data, DataDirection, Rejected, Residual, ScsiStatus, Status,
    TaskAttr, TmfRef, TransferError, Transport,
};
