// The OpenPGP reader (a member's published `openpgp` key, a release's detached `.asc`) on
// untrusted bytes: reading never panics; a key it accepts is a v4 public key (never a secret
// key) with a 40-hex-digit fingerprint; and a signature checked against a group that publishes
// no OpenPGP key never verifies.
//
// Shared by the fuzz target (`fuzz/fuzz_targets/openpgp.rs`) and by the test that replays the
// committed corpus in CI (`tests/it/fuzz_corpus.rs`): one property, two drivers.

use treaty::governance::model::MemberEntry;
use treaty::release::pgp;

/// Panics when the property does not hold for `data`.
pub fn check(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(fpr) = pgp::check_public_key(text) {
            assert!(!text.contains("PRIVATE KEY BLOCK"), "a secret key was accepted");
            assert_eq!(fpr.len(), 40, "a v4 fingerprint is 20 bytes: {fpr}");
            assert!(fpr.bytes().all(|b| b.is_ascii_hexdigit()));
        }
    }
    // Members with no OpenPGP key: nothing can verify, and the archive is never opened.
    let members = [MemberEntry {
        id: "m".into(),
        ed25519: Some(String::new()),
        p256: None,
        ml_dsa_65: None,
        openpgp: None,
    }];
    let archive = std::path::Path::new("/nonexistent/treaty-fuzz-archive.tar.gz");
    assert!(
        pgp::verify(data, archive, &members).is_err(),
        "a signature verified against a group with no OpenPGP key"
    );
}
