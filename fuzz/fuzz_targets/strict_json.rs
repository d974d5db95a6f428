//! Strict JSON (`treaty::json`) against serde_json: whatever the strict reader accepts, serde_json
//! accepts with an equal value, and re-reading its serialisation strictly gives it back; whatever
//! serde_json accepts and the strict reader refuses is refused for one of the strict rules only
//! (a repeated key, excess depth). Never a panic.
#![no_main]
// The lax reader is the oracle here, so it is called directly.
#![allow(clippy::disallowed_methods)]
use libfuzzer_sys::fuzz_target;
use treaty::json::{parse_value, JsonError};

fuzz_target!(|data: &[u8]| {
    let lax = serde_json::from_slice::<serde_json::Value>(data);
    match parse_value(data) {
        Ok(v) => {
            assert_eq!(
                lax.as_ref().ok(),
                Some(&v),
                "strict accepted what serde_json reads otherwise"
            );
            let again =
                parse_value(&serde_json::to_vec(&v).unwrap()).expect("our own output must parse");
            assert_eq!(again, v);
        }
        Err(e) => {
            if lax.is_ok() {
                assert!(
                    matches!(
                        e,
                        JsonError::DuplicateKey { .. } | JsonError::TooDeep { .. }
                    ),
                    "strict refused valid JSON for another reason: {e}"
                );
            }
        }
    }
});
