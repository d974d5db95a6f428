//! Where the public conformance vectors are, for every test that reads them (the library's unit
//! tests include this file with `#[path]`, the integration binary with `mod`).
//!
//! A conformance test never passes without checking: a missing vector file fails the test with
//! where it was looked for and how to point at another copy. `TREATY_VECTORS` names the folder
//! (the layout of `../shared/vectors`, whose README gives each set's upstream and commit); the
//! default is `../shared/vectors` beside the checkout. The GitHub workflow, which has no
//! `../shared`, fetches the same public sets at pinned commits (`.ci/fetch-vectors`).

use std::path::PathBuf;

/// The vectors folder: `$TREATY_VECTORS`, else `../shared/vectors` beside the checkout.
pub fn root() -> PathBuf {
    match std::env::var_os("TREATY_VECTORS") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/vectors"),
    }
}

/// The path of `rel` under the vectors folder; a test failure naming both when it is absent.
#[allow(clippy::panic)]
pub fn path(rel: &str) -> PathBuf {
    let p = root().join(rel);
    if !p.exists() {
        panic!(
            "conformance vectors missing: {} does not exist.\n\
             The public vector sets are expected in {} (set TREATY_VECTORS=DIR to point at a copy; \
             `bash .ci/fetch-vectors DIR` fetches them at pinned commits).",
            p.display(),
            root().display()
        );
    }
    p
}

/// The bytes of `rel` under the vectors folder (a test failure when absent or unreadable).
#[allow(clippy::panic)]
pub fn read(rel: &str) -> Vec<u8> {
    let p = path(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}
