//! Delegation globs: compiling and matching never panic and always finish; a pattern without
//! wildcards matches only itself.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let (pattern, path) = s.split_once('\n').unwrap_or((s, s));
    if let Ok(g) = treaty::glob::Glob::new(pattern) {
        let m = g.is_match(path);
        if !pattern.contains('*') {
            assert_eq!(m, pattern == path);
        }
    }
});
