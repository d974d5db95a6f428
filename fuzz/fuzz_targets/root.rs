//! Root files: parsing, root-group validation and delegation compilation never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use treaty::governance::model::{Group, Root, ROOT_GROUP};

fuzz_target!(|data: &[u8]| {
    let _ = treaty::governance::schema::parse(treaty::governance::FileKind::Root, data);
    if let Ok(r) = treaty::json::from_slice::<Root>(data) {
        let _ = Group::validate(ROOT_GROUP, &r.root_group);
        let _ = treaty::governance::check_spec_version(&r.spec_version);
        let _ = treaty::time::parse(&r.expires);
        for d in &r.delegations {
            for p in &d.paths {
                if let Ok(g) = treaty::glob::Glob::new(p) {
                    let _ = g.is_match("treaties/AURORA-AKASH-001.json");
                }
            }
        }
    }
});
