//! Gate configuration (TOML): parsing and schema validation never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use treaty::governance::{schema, FileKind};

fuzz_target!(|data: &[u8]| {
    static SCHEMA: OnceLock<schema::Compiled> = OnceLock::new();
    let compiled = SCHEMA.get_or_init(|| {
        schema::compile_at("schemas/gates.schema.json", None, true).expect("builtin gates schema compiles")
    });
    if let Ok(v) = schema::parse(FileKind::Gates, data) {
        let _ = compiled.validate(&v, None);
        let _ = schema::header(&v);
    }
});
