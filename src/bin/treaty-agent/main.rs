//! `treaty-agent`: pulls approved governance state and emits commands for a runtime. Its command
//! line shares `treaty`'s (src/bin/treaty/cli/): the same output sink, trust arguments and
//! exit codes.
#![forbid(unsafe_code)]

// The agent binary uses the agent subcommand's half of the shared command line only.
#[allow(dead_code, unused_imports)]
#[path = "../treaty/cli/mod.rs"]
mod cli;

fn main() -> std::process::ExitCode {
    cli::agent_main()
}
