// The runtime messages (`treaty::law::message`, docs/law.md § Messages) from untrusted hands:
// parsing never panics; an order, ACK or attestation that parses is within its bounds
// (quantities ≤ 2^53 − 1, `not_after` after `issued_at`, scores ≤ 10,000) and re-encodes to a
// message that parses to the same value; and no envelope verifies against an empty key set
// (a role nobody fills lets nobody sign).
//
// Shared by the fuzz target (`fuzz/fuzz_targets/law_message.rs`) and by the test that replays
// the committed corpus in CI (`tests/it/fuzz_corpus.rs`): one property, two drivers.

use treaty::law::message::{Ack, Attestation, Kind, Order, MAX_QUANTITY, MAX_SCORE_BP};
use treaty::law::signed::{verify, KeySet};

/// Panics when the property does not hold for `data`.
pub fn check(data: &[u8]) {
    if let Ok(o) = Order::parse(data) {
        assert!(o.gpu_milli_hours > 0 && o.gpu_milli_hours <= MAX_QUANTITY);
        assert!(o.credits <= MAX_QUANTITY);
        assert!(o.issued() < o.expires(), "not_after must follow issued_at");
        let again = Order::parse(&serde_json::to_vec(&o).expect("encodes")).expect("re-parses");
        assert_eq!(again, o);
    }
    if let Ok(a) = Ack::parse(data) {
        assert_eq!(a.status.ends_job(), a.used_gpu_milli_hours.is_some());
        let again = Ack::parse(&serde_json::to_vec(&a).expect("encodes")).expect("re-parses");
        assert_eq!(again, a);
    }
    if let Ok(a) = Attestation::parse(data) {
        assert!(a.score_bp <= MAX_SCORE_BP);
        assert!(a.issued() < a.expires());
        let again = Attestation::parse(&serde_json::to_vec(&a).expect("encodes")).expect("re-parses");
        assert_eq!(again, a);
    }
    for kind in [Kind::Order, Kind::Ack, Kind::Attestation] {
        assert!(
            verify(data, kind, &KeySet::default()).is_err(),
            "an envelope verified against no keys"
        );
    }
}
