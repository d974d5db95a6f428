//! Build script: records the commit and the enabled features for `treaty --version`, so a bug
//! report or an audit names exactly which build judged.
#![forbid(unsafe_code)]
// A build script talks to cargo through stdout; nothing here is shown to a person.
#![allow(clippy::disallowed_macros)]

use std::path::Path;
use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(|| "unknown".to_owned());
    let mut features: Vec<String> = std::env::vars()
        .filter_map(|(k, _)| k.strip_prefix("CARGO_FEATURE_").map(|f| f.to_lowercase()))
        .filter(|f| f != "default")
        .collect();
    features.sort();
    let features = if features.is_empty() {
        "none".to_owned()
    } else {
        features.join(",")
    };
    println!("cargo:rustc-env=TREATY_BUILD_COMMIT={commit}");
    println!("cargo:rustc-env=TREATY_BUILD_FEATURES={features}");
    // Rebuild when HEAD moves (a new commit or another branch), not on every file change. The
    // repository's top, not the package's directory: the war game's agent (tools/bench) is
    // built from the same sources with this same script.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let top = Path::new(&manifest)
        .ancestors()
        .find(|d| d.join("build.rs").is_file() && d.join("src/bin/treaty").is_dir())
        .unwrap_or(Path::new(&manifest));
    for p in [".git/HEAD", ".git/packed-refs"] {
        let p = top.join(p);
        if p.exists() {
            println!("cargo:rerun-if-changed={}", p.display());
        }
    }
    if let Ok(head) = std::fs::read_to_string(top.join(".git/HEAD")) {
        if let Some(r) = head.trim().strip_prefix("ref: ") {
            let p = top.join(".git").join(r);
            if p.exists() {
                println!("cargo:rerun-if-changed={}", p.display());
            }
        }
    }
    println!("cargo:rerun-if-changed={}", top.join("build.rs").display());
}
