// Git tree objects as `source::parse_tree` reads them for verify, gate, emit and the agent:
// any bytes are parsed or refused without a panic, and a tree that parses has what git fsck
// demands — non-empty names without `/`, no name twice, and entries strictly in git's order
// (a tree sorting as its name followed by `/`).
//
// Shared by the fuzz target (`fuzz/fuzz_targets/tree.rs`) and by the test that replays
// the committed corpus in CI (`tests/it/fuzz_corpus.rs`): one property, two drivers.

use treaty::source::{parse_tree, Mode};

/// Panics when the property does not hold for `data`.
pub fn check(data: &[u8]) {
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
}
