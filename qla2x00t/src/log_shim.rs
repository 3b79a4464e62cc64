//! Logging that serves `defmt`, `log` or nothing (STYLE.md S10).
//!
//! With neither feature the macros only type-check their arguments. With
//! both, `defmt` wins (a firmware build). Hot paths log at `trace` only.

#[cfg(feature = "defmt")]
macro_rules! trace { ($($t:tt)*) => { defmt::trace!($($t)*) } }
#[cfg(feature = "defmt")]
macro_rules! debug { ($($t:tt)*) => { defmt::debug!($($t)*) } }
#[cfg(feature = "defmt")]
macro_rules! info { ($($t:tt)*) => { defmt::info!($($t)*) } }
#[cfg(feature = "defmt")]
macro_rules! warn { ($($t:tt)*) => { defmt::warn!($($t)*) } }

#[cfg(all(feature = "log", not(feature = "defmt")))]
macro_rules! trace { ($($t:tt)*) => { log::trace!($($t)*) } }
#[cfg(all(feature = "log", not(feature = "defmt")))]
macro_rules! debug { ($($t:tt)*) => { log::debug!($($t)*) } }
#[cfg(all(feature = "log", not(feature = "defmt")))]
macro_rules! info { ($($t:tt)*) => { log::info!($($t)*) } }
#[cfg(all(feature = "log", not(feature = "defmt")))]
macro_rules! warn { ($($t:tt)*) => { log::warn!($($t)*) } }

#[cfg(not(any(feature = "log", feature = "defmt")))]
macro_rules! trace { ($($t:tt)*) => {{ let _ = format_args!($($t)*); }} }
#[cfg(not(any(feature = "log", feature = "defmt")))]
macro_rules! debug { ($($t:tt)*) => {{ let _ = format_args!($($t)*); }} }
#[cfg(not(any(feature = "log", feature = "defmt")))]
macro_rules! info { ($($t:tt)*) => {{ let _ = format_args!($($t)*); }} }
#[cfg(not(any(feature = "log", feature = "defmt")))]
macro_rules! warn { ($($t:tt)*) => {{ let _ = format_args!($($t)*); }} }
