//! C2SP signed notes and checkpoints: parsing never panics, and what parses re-encodes to the
//! same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use treaty::note::{Checkpoint, Note, VerifierKey};

fuzz_target!(|data: &[u8]| {
    if let Ok(n) = Note::parse(data) {
        assert_eq!(n.encode().as_bytes(), data);
        if let Ok(cp) = Checkpoint::parse(&n.text) {
            assert_eq!(cp.text(), n.text);
        }
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = VerifierKey::parse(s);
        let _ = Checkpoint::parse(s);
    }
});
