//! Hardware-in-the-loop scenarios (skeleton; filled with the driver issue).
#![forbid(unsafe_code)]
