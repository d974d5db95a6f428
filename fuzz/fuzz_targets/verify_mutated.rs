//! Verification of a mutated repository: the signed demo federation with one file's bytes
//! replaced by fuzzer input. Never panics, and — the security property — if a governed file
//! (not an envelope) no longer has its approved bytes, the state is never approved.
#![no_main]
use libfuzzer_sys::fuzz_target;

include!("../props/verify_mutated.rs");

fuzz_target!(|data: &[u8]| check(data));
