//! RFC 3339 instants (`--at`, every `expires`, `issued`, revocation times): parsing any text never
//! panics, a parsed instant lies in years 0001..=9999 UTC and formats back to an instant equal to
//! it (to the second), and adding or subtracting any duration saturates instead of panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;

include!("../props/time.rs");

fuzz_target!(|data: &[u8]| check(data));
