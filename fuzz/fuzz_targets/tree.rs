//! Git tree objects as `source::parse_tree` reads them for verify, gate, emit and the agent:
//! any bytes are parsed or refused without a panic, and a tree that parses has what git fsck
//! demands — non-empty names without `/`, no name twice, and entries strictly in git's order
//! (a tree sorting as its name followed by `/`).
#![no_main]
use libfuzzer_sys::fuzz_target;

include!("../props/tree.rs");

fuzz_target!(|data: &[u8]| check(data));
