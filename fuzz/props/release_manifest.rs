// Release manifests, archives and inclusion proofs from untrusted hands (`treaty release
// verify`): checking never panics; an archive whose entries pass has exactly the Merkle root
// the manifest states over the (path, sha256) leaves it lists; a proof that passes names the
// manifest's root and stops passing when its file's digest is changed; and the seal, statement
// and proof documents re-encode to what they parsed as.
//
// Shared by the fuzz target (`fuzz/fuzz_targets/release_manifest.rs`) and by the test that
// replays the committed corpus in CI (`tests/it/fuzz_corpus.rs`): one property, two drivers.

use treaty::release::{check_archive_entries, check_proof, leaf_data, Proof};

/// The RFC 9162 root over the leaves the manifest lists, as hex.
fn listed_root(manifest: &serde_json::Value) -> Option<String> {
    let mut tree = treaty::merkle::Tree::new();
    for f in manifest["files"].as_array()? {
        let leaf = leaf_data(f["path"].as_str()?, f["sha256"].as_str()?);
        tree.push(treaty::merkle::leaf_hash(&leaf));
    }
    Some(hex::encode(tree.root()))
}

/// Panics when the property does not hold for `data` (manifest ‖ 0x00 ‖ archive or proof).
pub fn check(data: &[u8]) {
    let (manifest, rest) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    if check_archive_entries(manifest, rest).is_ok() {
        let m = treaty::json::parse_value(manifest).expect("a manifest that passed is JSON");
        assert_eq!(
            listed_root(&m).as_deref(),
            m["merkle"]["root"].as_str(),
            "an archive passed against a manifest whose root is not the root of its listed files"
        );
    }
    if check_proof(manifest, rest).is_ok() {
        let p: Proof = treaty::json::from_slice(rest).expect("a proof that passed parses");
        let m = treaty::json::parse_value(manifest).expect("a manifest that passed is JSON");
        assert_eq!(m["merkle"]["root"].as_str(), Some(p.root.as_str()));
        let mut other = p.clone();
        other.sha256 = if other.sha256.starts_with('0') {
            format!("1{}", &other.sha256[1..])
        } else {
            format!("0{}", other.sha256.get(1..).unwrap_or(""))
        };
        let bytes = serde_json::to_vec(&other).expect("a proof encodes");
        assert!(
            check_proof(manifest, &bytes).is_err(),
            "a proof still passed with another digest for its file"
        );
    }
    if let Ok(p) = treaty::json::from_slice::<Proof>(data) {
        let once = serde_json::to_vec(&p).expect("a proof encodes");
        let again: Proof = treaty::json::from_slice(&once).expect("an encoded proof parses");
        assert_eq!(serde_json::to_vec(&again).expect("encodes"), once);
    }
    let _ = treaty::json::from_slice::<treaty::release::ceremony::Seal>(data);
    let _ = treaty::json::from_slice::<treaty::release::ceremony::ReleaseStatement>(data);
}
