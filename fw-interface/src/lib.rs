#![doc = include_str!("../README.md")]
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[macro_use]
mod macros;

mod bytes;
mod error;
mod fixed;
mod ids;
mod value;

pub mod async_event;
pub mod fc;
pub mod icb;
pub mod iocb;
pub mod mailbox;
pub mod pci;
pub mod port_db;
pub mod regs;

pub use bytes::{HexBytes, dword_swap};
pub use error::WireError;
pub use fixed::FixedBytes;
pub use ids::{ExchangeAddr, Lun, NportHandle, OxId, PortId, RxId, Wwn};
pub use value::{FieldVisitor, Value, Visit};
