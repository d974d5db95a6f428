//! RFC 9162 proof verification on arbitrary input never panics; proofs we generate always
//! verify, and a proof never verifies for a leaf or root it was not made for.
#![no_main]
use libfuzzer_sys::fuzz_target;

include!("../props/merkle_proof.rs");

fuzz_target!(|data: &[u8]| check(data));
