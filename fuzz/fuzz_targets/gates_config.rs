//! Gate configuration (TOML): parsing and schema validation never panic, and the gate reads every
//! configuration the schema accepts.
#![no_main]
use libfuzzer_sys::fuzz_target;

include!("../props/gates_config.rs");

fuzz_target!(|data: &[u8]| check(data));
