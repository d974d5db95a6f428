//! `treaty-vectors --out DIR`: writes the spec's test vectors (docs/spec.md § 8), each case
//! judged by this build before it is written. `cargo run -p treaty-vectors -- --out tests/vectors`
//! regenerates the checked-in set.
#![forbid(unsafe_code)]
// A developer tool: its one line of output goes straight to the terminal.
#![allow(clippy::disallowed_macros)]

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = match args.as_slice() {
        [flag, dir] if flag == "--out" => std::path::PathBuf::from(dir),
        _ => {
            eprintln!("usage: treaty-vectors --out DIR");
            return ExitCode::from(2);
        }
    };
    match treaty_vectors::generate(&out) {
        Ok(n) => {
            println!("wrote {n} cases and base.json to {}", out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("treaty-vectors: {e}");
            ExitCode::from(2)
        }
    }
}
