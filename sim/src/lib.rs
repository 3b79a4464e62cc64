#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod chip;
mod device;
mod event;
mod fabric;
pub mod fault;
pub mod firmware;
mod frame;
mod fxhash;
pub mod gateway;
pub mod initiator;
mod iommu;
pub mod iscsi;
pub mod pcap;
mod platform;
mod ranges;
mod rng;
mod sim;
mod threaded;
pub mod time;
pub mod trace;
mod violation;
pub mod workload;

pub use chip::ChipModel;
pub use device::{MQ_BAR_LEN, REG_BAR_LEN};
pub use fabric::{FabricConfig, HBA_SLOT, NameServerEntry, Slot};
pub use fault::{FaultConfig, FrameFaults, FrameScope, InjectedFault, ScheduledFault};
pub use firmware::image::{FirmwareImage, ImageSpec};
pub use firmware::{ExchangeExhaustion, FirmwareConfig, FirmwareStats, Timing};
pub use frame::{DataFrame, Frame};
pub use initiator::{
    CommandError, CommandResult, CommandSpec, Control, InitiatorConfig, InitiatorEvent,
    InitiatorHandler, InitiatorStats, LogoutReason, ResultRef, SubmitError, Tag,
};
pub use iommu::{DEFAULT_IOVA_BASE, DmaAccess, Iommu, IommuFault, SimDmaPool, SimDmaRegion};
pub use platform::{SimFence, SimIrq, SimMmio, SimPci, SimPlatform};
pub use rng::SimRng;
pub use sim::{Sim, SimConfig};
pub use threaded::{ChannelHandler, SimThread};
pub use time::SimTime;
pub use trace::{TraceConfig, TraceEvent, TraceKind};
pub use violation::{Violation, ViolationKind};
pub use workload::{Histogram, Pattern, VerifyError, WorkloadId, WorkloadReport, WorkloadSpec};

/// Identifies a simulated initiator port of a [`Sim`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InitiatorId(pub usize);
