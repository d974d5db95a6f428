//! `treaty-agent`: pulls approved governance state and emits commands for a runtime.
//! Everything happens in the library.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    treaty::cli::agent_main()
}
