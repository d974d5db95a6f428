// RFC 9162 proofs: verification of any input never panics; the proofs we make always verify;
// and a proof never verifies for a leaf or a root it was not made for.
//
// Shared by the fuzz target (`fuzz/fuzz_targets/merkle_proof.rs`) and by the test that replays
// the committed corpus in CI (`tests/it/fuzz_corpus.rs`): one property, two drivers.

use treaty::merkle::{leaf_hash, verify_consistency, verify_inclusion, Tree};

/// Panics when the property does not hold for `data`.
pub fn check(data: &[u8]) {
    if data.len() < 4 {
        return;
    }
    let n = 1 + usize::from(data[0]) % 64;
    let m = usize::from(data[1]) % n;
    let mut t = Tree::new();
    for i in 0..n {
        t.push(leaf_hash(&[i as u8, data[2]]));
    }
    let root = t.root();
    let leaf = t.leaves()[m];
    let p = t.inclusion_proof(m, n).expect("in range");
    assert!(verify_inclusion(m as u64, n as u64, &leaf, &p, &root));
    // Not for another leaf, another root, or another position.
    let mut other_leaf = leaf;
    other_leaf[usize::from(data[3]) % 32] ^= 1 << (data[3] % 8);
    assert!(!verify_inclusion(m as u64, n as u64, &other_leaf, &p, &root));
    let mut other_root = root;
    other_root[usize::from(data[2]) % 32] ^= 1;
    assert!(!verify_inclusion(m as u64, n as u64, &leaf, &p, &other_root));
    let c = t.consistency_proof(m + 1, n).expect("in range");
    let mut small = Tree::new();
    for l in &t.leaves()[..=m] {
        small.push(*l);
    }
    assert!(verify_consistency(m as u64 + 1, n as u64, &c, &small.root(), &root));
    if m + 1 < n {
        // A grown log is consistent only with its own past root.
        assert!(!verify_consistency(m as u64 + 1, n as u64, &c, &other_root, &root));
    }
    // Arbitrary proofs from the rest of the input never verify the root as its own leaf, except
    // for the one-leaf tree whose root is that leaf (a second preimage otherwise).
    let proof: Vec<[u8; 32]> = data[3..]
        .chunks_exact(32)
        .filter_map(|c| c.try_into().ok())
        .collect();
    let idx = u64::from(data[1]);
    let size = u64::from(data[0]);
    let ok = verify_inclusion(idx, size, &root, &proof, &root);
    assert_eq!(ok, size == 1 && idx == 0 && proof.is_empty(), "idx {idx} size {size}");
    let _ = verify_consistency(idx, size, &proof, &root, &root);
}
