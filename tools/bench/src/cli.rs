//! The part of `treaty`'s command line the benchmarks share: its output sink (every byte for a
//! person escaped), included by path so there is one copy of it.

#[allow(dead_code, unused_imports, unused_macros)]
#[path = "../../../src/bin/treaty/cli/output.rs"]
pub mod output;
