//! The `rscst` command: one module per subcommand.
//!
//! * `rscst run` — start a target (placeholder until the driver lands).
//! * `rscst decode iocb|fcp` — decode queue entries and FC frames (one line or JSON).
//!
//! Exit status: 0 on success, 2 on bad input or usage errors (clap's convention too).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod decode;
mod hex;
mod json;
mod run;

/// rscst: a SCSI target stack for QLogic FC HBAs — tools.
#[derive(Debug, Parser)]
#[command(name = "rscst", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a target (being built: prints what it will do).
    Run(run::RunArgs),
    /// Decode IOCBs and FC frames given as hex.
    Decode(decode::DecodeArgs),
}

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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(a) => run::run(&a),
        Command::Decode(a) => decode::run(&a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rscst: error: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn wire_errors_become_one_line_cli_errors() {
        let e = CliError::from(rscst_fw::WireError::UnknownEntryType(0xEE));
        assert_eq!(e.to_string(), "unknown entry type 0xee");
        assert!(std::error::Error::source(&e).is_none());
    }
}
