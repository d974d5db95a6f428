//! Git tree objects as `source::parse_tree` reads them for verify, gate, emit and the agent:
//! any bytes are parsed or refused without a panic, and a tree that parses has what git fsck
//! demands — non-empty names without `/`, no name twice, and entries strictly in git's order
//! (a tree sorting as its name followed by `/`).
#![no_main]
use libfuzzer_sys::fuzz_target;
use treaty::source::{parse_tree, Mode};

fuzz_target!(|data: &[u8]| {
    let Ok(entries) = parse_tree(data) else { return };
    let key = |e: &treaty::source::RawEntry| {
        let mut k = e.name.clone();
        if e.mode == Mode::Tree {
            k.push(b'/');
        }
        k
    };
    let mut names = std::collections::HashSet::new();
    for e in &entries {
        assert!(!e.name.is_empty() && !e.name.contains(&b'/'));
        assert!(names.insert(e.name.clone()), "duplicate accepted");
    }
    for w in entries.windows(2) {
        assert!(key(&w[0]) < key(&w[1]), "unsorted accepted");
    }
});
