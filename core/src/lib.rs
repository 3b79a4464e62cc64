//! The rscst SCSI target core (skeleton; filled by the core issue).
#![no_std]
#![forbid(unsafe_code)]
