//! Release manifests, archives and inclusion proofs from untrusted hands: see the property in
//! `fuzz/props/release_manifest.rs` (an archive that passes matches the root its manifest
//! states; a proof that passes stops passing for another digest).
#![no_main]
use libfuzzer_sys::fuzz_target;

include!("../props/release_manifest.rs");

fuzz_target!(|data: &[u8]| check(data));
