//! The `rscst` command's library: the target stack `rscst run` builds ([`stack`]), its
//! configuration ([`config`]) and the run loop in both scheduling modes ([`run`]).
//! The binary (`src/main.rs`) adds the command line and the decoders.
#![forbid(unsafe_code)]

pub mod config;
pub mod run;
pub mod stack;

/// The error every subcommand returns: one line, exit status 2.
#[derive(Debug)]
pub struct CliError(pub String);

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CliError {}

impl From<rscst_fw::WireError> for CliError {
    fn from(e: rscst_fw::WireError) -> Self {
        CliError(e.to_string())
    }
}
