//! Integration tests: the real `treaty` binary on real git repositories made in temp dirs,
//! changed with the real `git` CLI.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Tests print to the developer, and read the binaries' output through pipes: clippy.toml's
// ban on println!/stdout (which keeps the product's output escaped) is for the product.
#![allow(clippy::disallowed_macros, clippy::disallowed_methods)]

mod agent;
mod audit;
mod cache;
mod ceremony;
mod cli;
mod common;
mod emit;
mod escape;
mod fuzz_corpus;
mod gate;
mod githttp;
#[cfg(feature = "github")]
mod github;
mod hardening;
mod lifecycle;
mod release;
mod rotation;
mod security;
mod tsa;
mod vectors;
