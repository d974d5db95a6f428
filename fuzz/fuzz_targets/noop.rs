//! The no-op guard's classifier: judging any pair of texts never panics, is reflexive and
//! symmetric, and a change after or inside a string literal holding anything is never a no-op.
#![no_main]
use libfuzzer_sys::fuzz_target;

include!("../props/noop.rs");

fuzz_target!(|data: &[u8]| check(data));
