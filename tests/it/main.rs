//! Integration tests: the real `treaty` binary on real git repositories made in temp dirs,
//! changed with the real `git` CLI.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Tests print to the developer, read the binaries' output through pipes, and read their own
// fixtures and the binary's JSON output with serde_json directly: clippy.toml's bans (which keep
// the product's output escaped and its JSON reading strict) are for the product; the strict
// reader (treaty::json) is itself under test here, in strict_json.rs, not assumed.
#![allow(clippy::disallowed_macros, clippy::disallowed_methods)]

mod agent;
mod audit;
mod cache;
mod ceremony;
mod cli;
mod common;
mod docs;
mod emit;
mod escape;
mod fuzz_corpus;
mod gate;
mod gate_redteam;
mod githttp;
#[cfg(feature = "github")]
mod github;
mod hardening;
mod law;
mod lifecycle;
mod newcomer;
mod release;
mod rotation;
mod security;
mod strict_json;
#[cfg(feature = "tpm")]
mod tpm;
mod tsa;
mod vectors;

#[path = "../support/vectors.rs"]
mod testvectors;
