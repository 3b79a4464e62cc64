//! The `rscst` command (skeleton).
#![forbid(unsafe_code)]

fn main() {}
