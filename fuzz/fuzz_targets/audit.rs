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
    if let Ok(p) = treaty::json::from_slice::<audit::InclusionProof>(data) {
        let _ = audit::check_inclusion(&p);
    }
    if let Ok(p) = treaty::json::from_slice::<audit::ConsistencyProof>(data) {
        let _ = audit::check_consistency(&p);
    }
});
