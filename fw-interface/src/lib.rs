#![doc = include_str!("../README.md")]
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[macro_use]
#[allow(unused_macros)] // accessors/view_basics are used by the IOCB views (next commit)
mod macros;

#[allow(dead_code, unused_macros)]
mod bytes;
mod error;
mod ids;
mod value;

pub mod async_event;
pub mod icb;
pub mod mailbox;
pub mod pci;
pub mod port_db;
pub mod regs;

pub use bytes::{HexBytes, dword_swap};
pub use error::WireError;
pub use ids::{ExchangeAddr, Lun, NportHandle, OxId, PortId, RxId, Wwn};
pub use value::{FieldVisitor, Value, Visit};
