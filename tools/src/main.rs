//! The `rscst` command: one module per subcommand.
//!
//! * `rscst run` — start a target (placeholder until the driver lands).
//! * `rscst decode iocb|fcp` — decode queue entries and FC frames (one line or JSON).
//! * `rscst bench` — load through the simulated HBA, driver and core; what it costs.
//! * `rscst trace` — print a recorded trace, or convert its frames to a pcap.
//!
//! Exit status: 0 on success, 2 on bad input or usage errors (clap's convention too).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod decode;
mod hex;
mod json;
mod run;
mod trace;

/// Every allocation of the process is counted (`rscst bench` reports them per command).
#[global_allocator]
static ALLOC: rscst_hba::alloc_count::CountingAllocator =
    rscst_hba::alloc_count::CountingAllocator::new();

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
    /// Load from simulated initiators through the whole stack; IOPS, latency, CPU,
    /// allocations and copies per command.
    Bench(bench::BenchArgs),
    /// Print a recorded trace one event per line, or write its frames to a pcap.
    Trace(trace::TraceArgs),
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
        Command::Bench(a) => bench::run(&a),
        Command::Trace(a) => trace::run(&a),
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
