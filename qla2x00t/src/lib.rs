#![doc = include_str!("../README.md")]
#![no_std]
#![forbid(unsafe_code)]

#[cfg(test)]
extern crate std;

#[macro_use]
#[allow(unused_macros)]
mod log_shim;

mod config;
mod core_api;
mod event;
mod firmware;
mod handle;
mod iocb;
mod isp;
mod mailbox;
mod memory;
mod regs;
pub mod ring;
mod stats;

pub use config::IspConfig;
pub use core_api::CoreApi;
pub use event::{BringUpError, Event, EventRecord, LogoutReason, ResetReason};
pub use firmware::{FirmwareImage, FirmwareSource, ImageError, Segment};
pub use handle::{INTERMEDIATE, IocbHandle, SKIP_HANDLE, TARGET_MARKER};
pub use isp::{Isp, IspStorage, Phase, ProbeError, Progress, SessionInfo, SessionState};
pub use mailbox::MbxError;
pub use memory::DmaMemory;
pub use stats::Stats;
