//! Audit-log inputs from untrusted hosts: tile paths, entry bundles, hash tiles, entries,
//! checkpoints and proofs. Parsing and checking never panic; what decodes re-encodes to the
//! same bytes; a proof never verifies for a leaf it was not made for.
#![no_main]
use libfuzzer_sys::fuzz_target;
use treaty::audit::{self, tiles};

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Some((level, index, width)) = tiles::parse_path(s) {
            let back = match level {
                Some(l) => tiles::tile_path(l, index, width),
                None => tiles::entries_path(index, width),
            };
            assert_eq!(back, s);
        }
    }
    if let Ok(entries) = tiles::bundle_decode(data) {
        assert_eq!(tiles::bundle_encode(entries).unwrap(), data);
    }
    let _ = tiles::tile_decode(data);
    let _ = audit::check_entry(data, &audit::LogTrust::default());
    let _ = audit::check_checkpoint(data, &audit::LogTrust::default());
    // A proof that checks out never checks out for another leaf or another root.
    let flip = |h: &str| -> String {
        let mut b = h.as_bytes().to_vec();
        if let Some(c) = b.first_mut() {
            *c = if *c == b'0' { b'1' } else { b'0' };
        }
        String::from_utf8(b).unwrap_or_default()
    };
    if let Ok(p) = treaty::json::from_slice::<audit::InclusionProof>(data) {
        if audit::check_inclusion(&p).is_ok() {
            let mut q = p.clone();
            q.leaf_hash = flip(&q.leaf_hash);
            assert!(
                audit::check_inclusion(&q).is_err(),
                "verified for another leaf"
            );
            let mut q = p.clone();
            q.root = flip(&q.root);
            assert!(
                audit::check_inclusion(&q).is_err(),
                "verified for another root"
            );
        }
    }
    if let Ok(p) = treaty::json::from_slice::<audit::ConsistencyProof>(data) {
        if audit::check_consistency(&p).is_ok() && p.old_size > 0 {
            let mut q = p.clone();
            q.old_root = flip(&q.old_root);
            assert!(
                audit::check_consistency(&q).is_err(),
                "consistent with another past"
            );
        }
    }
});
