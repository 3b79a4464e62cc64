//! `rscst run`: start a target. Placeholder until the qla2x00t driver issue replaces it.

use clap::Args;

use crate::CliError;

/// What `rscst run` will start.
#[derive(Debug, Args)]
pub struct RunArgs {}

/// The one line the placeholder prints.
pub const PLACEHOLDER: &str = "rscst run: will start one simulated ISP2532 port with a 1 GiB RAM LUN on a simulated \
     FC fabric and serve it to iSCSI initiators through the gateway on 127.0.0.1:3260 — \
     being built (qla2x00t driver issue); nothing started";

/// Prints what `run` will do.
pub fn run(_args: &RunArgs) -> Result<(), CliError> {
    println!("{PLACEHOLDER}");
    Ok(())
}
