//! The ISP24xx+ firmware interface (skeleton; filled by the fw-interface issue).
#![no_std]
#![forbid(unsafe_code)]
