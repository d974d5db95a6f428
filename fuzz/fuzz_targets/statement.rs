//! Approval statement parsing: never panics; canonical serialisation round-trips.
#![no_main]
use libfuzzer_sys::fuzz_target;
use treaty::statement::Statement;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = Statement::parse(data) {
        let bytes = s.to_bytes();
        let again = Statement::parse(&bytes).expect("our own output must parse");
        assert_eq!(again, s);
        assert_eq!(again.to_bytes(), bytes);
    }
});
