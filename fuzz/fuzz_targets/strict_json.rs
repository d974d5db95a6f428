//! Strict JSON (`treaty::json`) against serde_json: whatever the strict reader accepts, serde_json
//! accepts with an equal value, and re-reading its serialisation strictly gives it back; whatever
//! serde_json accepts and the strict reader refuses is refused for one of the strict rules only
//! (a repeated key, excess depth). Never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

include!("../props/strict_json.rs");

fuzz_target!(|data: &[u8]| check(data));
