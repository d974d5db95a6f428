//! RFC 9162 (Certificate Transparency v2) §2.1 Merkle trees: leaf and node hashing with domain
//! separation, amortised O(1) appends that keep every complete subtree hash, inclusion and
//! consistency proofs.
//!
//! Owns the hashing and the proof algorithms exactly as the RFC states them; it knows nothing of
//! what the leaves mean (audit entries, release files) and never touches storage.

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// RFC 9162 §2.1.1: `MTH({d(0)}) = SHA-256(0x00 || d(0))`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// RFC 9162 §2.1.1: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &[u8], right: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The hash of an empty tree: `SHA-256()`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Largest power of two strictly smaller than `n` (n ≥ 2).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// RFC 9162 §2.1.1 MTH over leaf hashes.
pub fn root_of(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root_of(&leaves[..k]), &root_of(&leaves[k..]))
        }
    }
}

/// An append-only tree that stores every complete subtree hash: `levels[0]` are the leaf
/// hashes, `levels[h][i]` the hash of the perfect subtree of 2^h leaves starting at leaf
/// `i·2^h` (the hashes C2SP tlog-tiles publish). Appends are amortised O(1) (worst case
/// O(log n)); roots and proofs for any size are O(log² n) lookups, never a rehash of the leaves.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    levels: Vec<Vec<Hash>>,
}

impl Tree {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.levels.first().map_or(0, Vec::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends a leaf hash: completes every subtree the new leaf closes.
    pub fn push(&mut self, leaf: Hash) {
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        self.levels[0].push(leaf);
        let mut h = 0;
        let mut i = self.levels[0].len() - 1;
        while i & 1 == 1 {
            let parent = node_hash(&self.levels[h][i - 1], &self.levels[h][i]);
            if self.levels.len() == h + 1 {
                self.levels.push(Vec::new());
            }
            self.levels[h + 1].push(parent);
            h += 1;
            i >>= 1;
        }
    }

    /// The root of the current tree.
    pub fn root(&self) -> Hash {
        self.mth(0, self.len())
    }

    /// The root of the tree of the first `size` leaves (`None` beyond the current size).
    pub fn root_at(&self, size: usize) -> Option<Hash> {
        (size <= self.len()).then(|| self.mth(0, size))
    }

    pub fn leaves(&self) -> &[Hash] {
        self.levels.first().map_or(&[], Vec::as_slice)
    }

    /// The stored hashes of level `h` (perfect subtrees of 2^h leaves).
    pub fn level(&self, h: usize) -> &[Hash] {
        self.levels.get(h).map_or(&[], Vec::as_slice)
    }

    /// MTH(D[a:b]) (RFC 9162 §2.1.1) from stored subtrees.
    fn mth(&self, a: usize, b: usize) -> Hash {
        let n = b - a;
        if n == 0 {
            return empty_root();
        }
        if n.is_power_of_two() && a.is_multiple_of(n) {
            let h = n.trailing_zeros() as usize;
            if let Some(x) = self.levels.get(h).and_then(|l| l.get(a >> h)) {
                return *x;
            }
        }
        if n == 1 {
            return self.levels[0][a];
        }
        let k = split(n);
        node_hash(&self.mth(a, a + k), &self.mth(a + k, b))
    }

    /// RFC 9162 §2.1.3.1 `PATH(m, D[n])` for the first `size` leaves.
    pub fn inclusion_proof(&self, index: usize, size: usize) -> Option<Vec<Hash>> {
        if index >= size || size > self.len() {
            return None;
        }
        let mut out = Vec::new();
        self.path(index, 0, size, &mut out);
        Some(out)
    }

    /// RFC 9162 §2.1.4.1 `PROOF(m, D[n])` between sizes `m` ≤ `n`.
    pub fn consistency_proof(&self, m: usize, n: usize) -> Option<Vec<Hash>> {
        if m > n || n > self.len() {
            return None;
        }
        let mut out = Vec::new();
        if m > 0 && m < n {
            self.subproof(m, 0, n, true, &mut out);
        }
        Some(out)
    }

    /// PATH(m, D[a:b]), m relative to a.
    fn path(&self, m: usize, a: usize, b: usize, out: &mut Vec<Hash>) {
        if b - a <= 1 {
            return;
        }
        let k = split(b - a);
        if m < k {
            self.path(m, a, a + k, out);
            out.push(self.mth(a + k, b));
        } else {
            self.path(m - k, a + k, b, out);
            out.push(self.mth(a, a + k));
        }
    }

    /// SUBPROOF(m, D[a:b], flag), m relative to a.
    fn subproof(&self, m: usize, a: usize, b: usize, flag: bool, out: &mut Vec<Hash>) {
        if m == b - a {
            if !flag {
                out.push(self.mth(a, b));
            }
            return;
        }
        let k = split(b - a);
        if m <= k {
            self.subproof(m, a, a + k, flag, out);
            out.push(self.mth(a + k, b));
        } else {
            self.subproof(m - k, a + k, b, false, out);
            out.push(self.mth(a, a + k));
        }
    }
}

/// RFC 9162 §2.1.3.2: verifies that the leaf hash `leaf` is at `index` in the tree of `size`
/// with `root`. Inputs are byte strings so that malformed ones are simply rejected.
pub fn verify_inclusion(index: u64, size: u64, leaf: &[u8], proof: &[Hash], root: &[u8]) -> bool {
    if index >= size || leaf.len() != 32 || root.len() != 32 {
        return false;
    }
    let (mut fnn, mut sn) = (index, size - 1);
    let mut r = leaf.to_vec();
    for p in proof {
        if sn == 0 {
            return false;
        }
        if fnn & 1 == 1 || fnn == sn {
            r = node_hash(p, &r).to_vec();
            if fnn & 1 == 0 {
                while fnn & 1 == 0 && fnn != 0 {
                    fnn >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p).to_vec();
        }
        fnn >>= 1;
        sn >>= 1;
    }
    sn == 0 && r == root
}

/// RFC 9162 §2.1.4.2: verifies that the tree of `size2` with `root2` extends the tree of
/// `size1` with `root1`. A first size of 0 is refused, as in transparency-dev/merkle: every
/// tree extends the empty one, so such a "proof" proves nothing and callers handle the empty
/// tree themselves.
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    proof: &[Hash],
    root1: &[u8],
    root2: &[u8],
) -> bool {
    if size1 == 0 || size1 > size2 {
        return false;
    }
    if size1 == size2 {
        return proof.is_empty() && root1 == root2;
    }
    let mut path: Vec<Vec<u8>> = Vec::with_capacity(proof.len() + 1);
    if size1.is_power_of_two() {
        path.push(root1.to_vec());
    }
    path.extend(proof.iter().map(|p| p.to_vec()));
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let (mut fnn, mut sn) = (size1 - 1, size2 - 1);
    while fnn & 1 == 1 {
        fnn >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (first.clone(), first.clone());
    for c in rest {
        if sn == 0 {
            return false;
        }
        if fnn & 1 == 1 || fnn == sn {
            fr = node_hash(c, &fr).to_vec();
            sr = node_hash(c, &sr).to_vec();
            if fnn & 1 == 0 {
                while fnn & 1 == 0 && fnn != 0 {
                    fnn >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c).to_vec();
        }
        fnn >>= 1;
        sn >>= 1;
    }
    fr == root1 && sr == root2 && sn == 0
}

#[cfg(test)]
#[allow(clippy::disallowed_macros)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(format!("leaf {i}").as_bytes()))
            .collect()
    }

    #[test]
    fn compact_range_root_equals_the_recursive_definition() {
        let ls = leaves(70);
        let mut t = Tree::new();
        assert_eq!(t.root(), empty_root());
        for (i, l) in ls.iter().enumerate() {
            t.push(*l);
            assert_eq!(t.root(), root_of(&ls[..=i]), "size {}", i + 1);
        }
    }

    /// Brute force from the RFC's definitions, over slices: PATH and PROOF (§2.1.3.1,
    /// §2.1.4.1), recomputing every subtree hash, for comparison with the stored-hash tree.
    fn brute_path(m: usize, d: &[Hash]) -> Vec<Hash> {
        if d.len() <= 1 {
            return vec![];
        }
        let k = split(d.len());
        let mut p = if m < k {
            brute_path(m, &d[..k])
        } else {
            brute_path(m - k, &d[k..])
        };
        p.push(if m < k {
            root_of(&d[k..])
        } else {
            root_of(&d[..k])
        });
        p
    }

    fn brute_subproof(m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
        if m == d.len() {
            return if b { vec![] } else { vec![root_of(d)] };
        }
        let k = split(d.len());
        let mut p = if m <= k {
            brute_subproof(m, &d[..k], b)
        } else {
            brute_subproof(m - k, &d[k..], false)
        };
        p.push(if m <= k {
            root_of(&d[k..])
        } else {
            root_of(&d[..k])
        });
        p
    }

    #[test]
    fn every_root_and_proof_for_every_pair_of_small_sizes_matches_brute_force() {
        let ls = leaves(70);
        let mut t = Tree::new();
        for (n, l) in ls.iter().enumerate() {
            assert_eq!(t.root(), root_of(&ls[..n]));
            t.push(*l);
        }
        for n in 0..=70usize {
            assert_eq!(t.root_at(n), Some(root_of(&ls[..n])), "root {n}");
            for m in 0..n {
                assert_eq!(
                    t.inclusion_proof(m, n),
                    Some(brute_path(m, &ls[..n])),
                    "path {m}/{n}"
                );
            }
            for m in 1..n {
                assert_eq!(
                    t.consistency_proof(m, n),
                    Some(brute_subproof(m, &ls[..n], true)),
                    "proof {m}->{n}"
                );
            }
        }
        assert_eq!(t.root_at(71), None);
    }

    /// rs_merkle, with RFC 9162's hashing plugged in, is an independent cross-check of roots
    /// and inclusion proofs.
    #[derive(Clone)]
    struct Rfc9162;
    impl rs_merkle::Hasher for Rfc9162 {
        type Hash = [u8; 32];
        fn hash(data: &[u8]) -> [u8; 32] {
            Sha256::digest(data).into()
        }
        fn concat_and_hash(left: &[u8; 32], right: Option<&[u8; 32]>) -> [u8; 32] {
            match right {
                Some(r) => node_hash(left, r),
                None => *left,
            }
        }
    }

    #[test]
    fn rs_merkle_agrees_on_roots_and_inclusion() {
        let ls = leaves(300);
        let mut t = Tree::new();
        for n in 1..=300usize {
            t.push(ls[n - 1]);
            let theirs = rs_merkle::MerkleTree::<Rfc9162>::from_leaves(&ls[..n]);
            assert_eq!(theirs.root(), Some(t.root()), "root {n}");
            if n % 37 == 0 || n == 300 {
                for i in (0..n).step_by(7) {
                    let proof = theirs.proof(&[i]);
                    assert!(
                        proof.verify(t.root(), &[i], &[ls[i]], n),
                        "rs_merkle proof {i}/{n}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_inclusion_and_consistency_proof_for_small_sizes_verifies_and_tampering_fails() {
        let ls = leaves(33);
        let mut t = Tree::new();
        for l in &ls {
            t.push(*l);
        }
        for n in 1..=33usize {
            let root = root_of(&ls[..n]);
            for m in 0..n {
                let p = t.inclusion_proof(m, n).unwrap();
                assert!(
                    verify_inclusion(m as u64, n as u64, &ls[m], &p, &root),
                    "incl {m}/{n}"
                );
                assert!(
                    !verify_inclusion(m as u64, n as u64, &ls[(m + 1) % 33], &p, &root)
                        || ls[(m + 1) % 33] == ls[m]
                );
                if let Some(first) = p.first() {
                    let mut bad = p.clone();
                    bad[0][0] ^= 1;
                    assert!(!verify_inclusion(m as u64, n as u64, &ls[m], &bad, &root));
                    let _ = first;
                }
            }
            for m in 1..=n {
                let p = t.consistency_proof(m, n).unwrap();
                let r1 = root_of(&ls[..m]);
                assert!(
                    verify_consistency(m as u64, n as u64, &p, &r1, &root),
                    "cons {m}->{n}"
                );
                if m < n {
                    let mut bad_root = r1;
                    bad_root[3] ^= 0x40;
                    assert!(
                        !verify_consistency(m as u64, n as u64, &p, &bad_root, &root),
                        "forked {m}->{n}"
                    );
                }
            }
        }
    }

    fn b64h(v: &serde_json::Value) -> Option<Hash> {
        b64v(v)?.try_into().ok()
    }

    fn b64v(v: &serde_json::Value) -> Option<Vec<u8>> {
        crate::crypto::unb64(v.as_str()?).ok()
    }

    fn proof(v: &serde_json::Value) -> Option<Vec<Hash>> {
        match v {
            serde_json::Value::Null => Some(vec![]),
            serde_json::Value::Array(a) => a.iter().map(b64h).collect(),
            _ => None,
        }
    }

    fn vector_files(kind: &str) -> Vec<std::path::PathBuf> {
        let dir = crate::testvectors::path(&format!("merkle/transparency-dev/{kind}"));
        let mut out = Vec::new();
        let mut stack = vec![dir];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                if e.path().is_dir() {
                    stack.push(e.path());
                } else if e.path().extension().is_some_and(|x| x == "json") {
                    out.push(e.path());
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn transparency_dev_inclusion_vectors() {
        let files = vector_files("inclusion");
        for f in &files {
            let v: serde_json::Value =
                crate::json::parse_value(&std::fs::read(f).unwrap()).unwrap();
            let ok = (|| {
                let p = proof(&v["proof"])?;
                Some(verify_inclusion(
                    v["leafIdx"].as_u64()?,
                    v["treeSize"].as_u64()?,
                    &b64v(&v["leafHash"])?,
                    &p,
                    &b64v(&v["root"])?,
                ))
            })()
            .unwrap_or(false);
            assert_eq!(ok, !v["wantErr"].as_bool().unwrap(), "{}", f.display());
        }
        assert!(files.len() >= 90, "{} vector files", files.len());
    }

    #[test]
    fn transparency_dev_consistency_vectors() {
        let files = vector_files("consistency");
        for f in &files {
            let v: serde_json::Value =
                crate::json::parse_value(&std::fs::read(f).unwrap()).unwrap();
            let ok = (|| {
                let p = proof(&v["proof"])?;
                Some(verify_consistency(
                    v["size1"].as_u64()?,
                    v["size2"].as_u64()?,
                    &p,
                    &b64v(&v["root1"])?,
                    &b64v(&v["root2"])?,
                ))
            })()
            .unwrap_or(false);
            assert_eq!(ok, !v["wantErr"].as_bool().unwrap(), "{}", f.display());
        }
        assert!(files.len() >= 90, "{} vector files", files.len());
    }
}
