//! `treaty`: the governance toolchain's command line. The command line (argument parsing,
//! output, prompts, exit codes) lives here with the binaries, not in the library: `cli/`.
#![forbid(unsafe_code)]

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
