// RFC 3339 instants (`--at`, every `expires`, `issued`, revocation times): parsing any text never
// panics, a parsed instant lies in years 0001..=9999 UTC and formats back to an instant equal to
// it (to the second), and adding or subtracting any duration saturates instead of panicking.
//
// Shared by the fuzz target (`fuzz/fuzz_targets/time.rs`) and by the test that replays
// the committed corpus in CI (`tests/it/fuzz_corpus.rs`): one property, two drivers.

use treaty::time::{format, parse, Instant};

/// Panics when the property does not hold for `data`.
pub fn check(data: &[u8]) {
    let (secs, text) = match data.split_first_chunk::<8>() {
        Some((n, rest)) => (i64::from_le_bytes(*n), rest),
        None => (0, data),
    };
    let Ok(s) = std::str::from_utf8(text) else { return };
    let Ok(t) = parse(s) else { return };
    assert!(Instant::MIN <= t && t <= Instant::MAX);
    let again = parse(&format(t)).expect("a formatted instant parses");
    assert_eq!(again.unix(), t.unix());
    let d = time::Duration::seconds(secs);
    for u in [t + d, t - d, t + time::Duration::MAX, t - time::Duration::MAX] {
        assert!(Instant::MIN <= u && u <= Instant::MAX);
        let _ = format(u);
    }
    let _ = treaty::time::days(secs);
}
