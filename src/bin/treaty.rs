//! `treaty`: the governance toolchain's command line. Everything happens in the library.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    treaty::cli::main()
}
