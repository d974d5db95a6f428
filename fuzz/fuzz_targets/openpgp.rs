//! The OpenPGP key and signature reader on untrusted bytes: see the property in
//! `fuzz/props/openpgp.rs` (accepted keys are v4 public keys; nothing verifies without a
//! published key).
#![no_main]
use libfuzzer_sys::fuzz_target;

include!("../props/openpgp.rs");

fuzz_target!(|data: &[u8]| check(data));
