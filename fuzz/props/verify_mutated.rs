// Verification of a mutated repository: the signed demo federation with one file's bytes
// replaced by fuzzer input. Never panics, and — the security property — if a governed file
// (not an envelope) no longer has its approved bytes, the state is never approved.
//
// Shared by the fuzz target (`fuzz/fuzz_targets/verify_mutated.rs`) and by the test that replays
// the committed corpus in CI (`tests/it/fuzz_corpus.rs`): one property, two drivers.

use std::sync::OnceLock;
use treaty::source::{Entry, Tree};

fn demo() -> &'static Tree {
    static T: OnceLock<Tree> = OnceLock::new();
    T.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir").keep();
        treaty::scaffold::demo(&dir, false).expect("demo");
        treaty::source::tree_from_dir(&dir).expect("tree")
    })
}

/// Panics when the property does not hold for `data`.
pub fn check(data: &[u8]) {
    let Some((&pick, bytes)) = data.split_first() else { return };
    let base = demo();
    let paths: Vec<_> = base.entries.keys().cloned().collect();
    let path = &paths[pick as usize % paths.len()];
    let mut tree = base.clone();
    let changed = match tree.entries.get(path) {
        Some(Entry::File(old)) => old.as_slice() != bytes,
        _ => true,
    };
    tree.entries.insert(path.clone(), Entry::File(bytes.to_vec()));
    let opts = treaty::verify::Options {
        anchor: treaty::trust::Anchor::Repository,
        at: treaty::time::parse("2030-01-01T00:00:00Z").expect("time"),
        exhaustive: pick % 2 == 0,
    };
    let report = treaty::verify::verify_tree(&tree, None, &opts);
    if changed && !path.as_str().ends_with(".sig") && !path.as_str().starts_with("keys/groups/") {
        assert!(!report.approved, "changed {path} but the state is still approved");
    }
}
