//! Runtime orders, ACKs and attestations from untrusted hands: see the property in
//! `fuzz/props/law_message.rs` (what parses is within bounds and round-trips; nothing verifies
//! against an empty key set).
#![no_main]
use libfuzzer_sys::fuzz_target;

include!("../props/law_message.rs");

fuzz_target!(|data: &[u8]| check(data));
