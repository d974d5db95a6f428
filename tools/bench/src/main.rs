//! `treaty-bench`: the benchmarks — synthetic federations, and each figure beside its floor
//! (`cargo run --release -p treaty-bench -- verify DIR`). A tool beside the product: nothing
//! here is in the `treaty` library or binary. Its output goes through the same escaping sink as
//! `treaty`'s (the command line's `output` module, shared by path).
#![forbid(unsafe_code)]

use clap::Parser;
use std::process::ExitCode;

mod cli;

mod bench;
#[cfg(feature = "sim-clock")]
mod fleet_report;

/// What a command concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok,
    Findings,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum Format {
    #[default]
    Human,
    Json,
}

#[derive(Debug, Parser)]
#[command(
    name = "treaty-bench",
    version,
    about = "treaty's benchmarks: figures against their floors"
)]
struct Args {
    #[command(subcommand)]
    command: bench::Command,
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match bench::run(args.command) {
        Ok(Exit::Ok) => ExitCode::SUCCESS,
        Ok(Exit::Findings) => ExitCode::from(1),
        Err(e) => {
            cli::output::stderr_line(format_args!("treaty-bench: error: {e:#}"));
            ExitCode::from(2)
        }
    }
}
