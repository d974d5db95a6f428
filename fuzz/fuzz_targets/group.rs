//! Group files: parsing and validation never panic, and an accepted group obeys its rules.
#![no_main]
use libfuzzer_sys::fuzz_target;
use treaty::governance::model::{Group, GroupFile};

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = treaty::json::from_slice::<GroupFile>(data) {
        if let Ok(g) = Group::from_file(&f) {
            assert!(g.threshold >= 1 && g.threshold <= g.members.len());
            let mut ids: Vec<&str> = g.members.iter().map(|m| m.id.as_str()).collect();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), g.members.len());
        }
    }
});
