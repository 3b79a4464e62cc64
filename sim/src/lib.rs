//! The ISP firmware simulator (skeleton; filled by the simulator issue).
#![forbid(unsafe_code)]

pub mod iscsi;
