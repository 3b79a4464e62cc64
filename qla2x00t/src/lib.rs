//! The target-mode ISP driver (skeleton; filled by the driver issue).
#![no_std]
#![forbid(unsafe_code)]
