//! Integration tests: the real `treaty` binary on real git repositories made in temp dirs,
//! changed with the real `git` CLI.

mod common;
mod cli;
mod rotation;
mod security;
mod vectors;
