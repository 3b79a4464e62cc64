//! The `rscst` command: one module per subcommand.
//!
//! * `rscst run` — start the target: a simulated FC port, the driver, the SCSI core and
//!   the iSCSI door (see `rscst_tools::run`).
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
mod trace;

pub use rscst_tools::CliError;
use rscst_tools::run;

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
    /// Start the target: a simulated FC port with a RAM LU and the iSCSI door; serve
    /// until Ctrl-C.
    Run(run::RunArgs),
    /// Decode IOCBs and FC frames given as hex.
    Decode(decode::DecodeArgs),
    /// Load from simulated initiators through the whole stack; IOPS, latency, CPU,
    /// allocations and copies per command.
    Bench(bench::BenchArgs),
    /// Print a recorded trace one event per line, or write its frames to a pcap.
    Trace(trace::TraceArgs),
}

fn main() -> ExitCode {
    // Usage errors are one line too (clap's own text adds the usage and a hint).
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e)
            if matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp
                    | clap::error::ErrorKind::DisplayVersion
                    | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) =>
        {
            e.exit()
        }
        Err(e) => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            eprintln!("rscst: {first}");
            return ExitCode::from(2);
        }
    };
    // Logs (RUST_LOG, default: warnings and the driver's events) go to stderr; the
    // banner and the stats lines to stdout.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,rscst::driver=info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
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
