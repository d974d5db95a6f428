//! Integration tests: the real `treaty` binary on real git repositories made in temp dirs,
//! changed with the real `git` CLI.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Tests read their own fixtures and the binary's JSON output with serde_json directly: they
// judge nothing, and the strict reader (treaty::json) is itself under test here, in
// strict_json.rs, not assumed.
#![allow(clippy::disallowed_methods)]

mod agent;
mod audit;
mod cache;
mod ceremony;
mod cli;
mod common;
mod emit;
mod gate;
mod githttp;
#[cfg(feature = "github")]
mod github;
mod lifecycle;
mod release;
mod rotation;
mod security;
mod strict_json;
mod tsa;
mod vectors;
