// Strict JSON (`treaty::json`) against serde_json: whatever the strict reader accepts, serde_json
// accepts with an equal value, and re-reading its serialisation strictly gives it back; whatever
// serde_json accepts and the strict reader refuses is refused for one of the strict rules only
// (a repeated key, excess depth). Never a panic.
//
// Shared by the fuzz target (`fuzz/fuzz_targets/strict_json.rs`) and by the test that replays
// the committed corpus in CI (`tests/it/fuzz_corpus.rs`): one property, two drivers.

use treaty::json::{parse_value, JsonError};

/// Panics when the property does not hold for `data`.
// The lax reader is the oracle here, so it is called directly.
#[allow(clippy::disallowed_methods)]
pub fn check(data: &[u8]) {
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
}
