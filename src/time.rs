//! Timestamps: RFC 3339 UTC instants as every governance file writes them.
//!
//! Owns parsing, formatting and the only arithmetic on instants; it never reads the clock except
//! in [`now`], so that verification can be judged as of any instant (`--at`).
//!
//! Every instant lies in years 0001..=9999 UTC (docs/spec.md § Timestamps): a timestamp whose
//! UTC form falls outside (`9999-12-31T23:00:00-05:00`, say) is refused when parsed, never
//! converted with a panic. [`Instant`] is a newtype so that no code can add a duration with the
//! `time` crate's panicking `+`: adding saturates at [`Instant::MAX`] / [`Instant::MIN`], which
//! is the right answer for every comparison the tool makes ("is now past expiry plus skew?").

use std::fmt;
use std::ops::{Add, Sub};
use time::format_description::well_known::Rfc3339;
use time::macros::datetime;
use time::{Duration, OffsetDateTime, UtcOffset};

/// An instant, always UTC, always within years 0001..=9999.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(OffsetDateTime);

/// Why a timestamp was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimeError {
    #[error("{text:?} is not an RFC 3339 timestamp ({reason})")]
    Syntax { text: String, reason: String },
    #[error("{text:?} is outside years 0001..=9999 once converted to UTC")]
    OutOfRange { text: String },
}

impl Instant {
    /// The earliest instant the tool represents.
    pub const MIN: Instant = Instant(datetime!(0001-01-01 00:00:00 UTC));
    /// The latest instant the tool represents.
    pub const MAX: Instant = Instant(datetime!(9999-12-31 23:59:59 UTC));

    /// From a Unix time in seconds; `None` outside the representable range.
    pub fn from_unix(secs: i64) -> Option<Instant> {
        OffsetDateTime::from_unix_timestamp(secs)
            .ok()
            .and_then(Self::bounded)
    }

    /// Seconds since the Unix epoch.
    pub fn unix(self) -> i64 {
        self.0.unix_timestamp()
    }

    /// The underlying `time` value, for formatting and calendar fields.
    pub fn get(self) -> OffsetDateTime {
        self.0
    }

    /// `self + d`, or `None` past the representable range.
    pub fn checked_add(self, d: Duration) -> Option<Instant> {
        self.0.checked_add(d).and_then(Self::bounded)
    }

    fn bounded(t: OffsetDateTime) -> Option<Instant> {
        let t = t.checked_to_offset(UtcOffset::UTC)?;
        (Self::MIN.0..=Self::MAX.0)
            .contains(&t)
            .then_some(Instant(t))
    }
}

impl From<OffsetDateTime> for Instant {
    /// Clamps into the representable range (a clock or a library value outside it saturates).
    fn from(t: OffsetDateTime) -> Self {
        Instant::bounded(t).unwrap_or(if t.unix_timestamp() < 0 {
            Instant::MIN
        } else {
            Instant::MAX
        })
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    /// Saturating: an expiry near year 9999 plus a skew is still "the end of time".
    fn add(self, d: Duration) -> Instant {
        self.checked_add(d).unwrap_or(if d.is_negative() {
            Self::MIN
        } else {
            Self::MAX
        })
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, d: Duration) -> Instant {
        match self.0.checked_sub(d).and_then(Self::bounded) {
            Some(t) => t,
            None if d.is_negative() => Self::MAX,
            None => Self::MIN,
        }
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    /// Cannot overflow: two instants within 0001..=9999 are at most ~3.2e11 s apart.
    fn sub(self, other: Instant) -> Duration {
        self.0 - other.0
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format(*self))
    }
}

/// Parses an RFC 3339 timestamp. Offsets are accepted and converted to UTC; the UTC instant must
/// fall within years 0001..=9999.
pub fn parse(s: &str) -> Result<Instant, TimeError> {
    let t = OffsetDateTime::parse(s, &Rfc3339).map_err(|e| TimeError::Syntax {
        text: s.chars().take(64).collect(),
        reason: e.to_string(),
    })?;
    Instant::bounded(t).ok_or_else(|| TimeError::OutOfRange {
        text: s.chars().take(64).collect(),
    })
}

/// Formats as RFC 3339 UTC with a `Z`, whole seconds.
pub fn format(t: Instant) -> String {
    let t = t.0.replace_nanosecond(0).unwrap_or(t.0);
    t.format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// The current time.
pub fn now() -> Instant {
    Instant::from(OffsetDateTime::now_utc())
}

/// `n` days as a duration, saturating instead of panicking (`time::Duration::days` panics on
/// overflow); used for day counts read from files and flags.
pub fn days(n: i64) -> Duration {
    n.checked_mul(86_400).map_or(
        if n < 0 { Duration::MIN } else { Duration::MAX },
        Duration::seconds,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_format_round_trip() {
        let t = parse("2036-11-22T00:00:00Z").unwrap();
        assert_eq!(format(t), "2036-11-22T00:00:00Z");
        let t = parse("2036-11-22T02:00:00+02:00").unwrap();
        assert_eq!(format(t), "2036-11-22T00:00:00Z");
        assert!(parse("tomorrow").is_err());
    }

    #[test]
    fn offsets_that_leave_the_range_are_refused_not_panics() {
        // The red team's input: year 9999 with a negative offset is year 10000 in UTC.
        for s in [
            "9999-12-31T23:00:00-05:00",
            "9999-12-31T23:59:59-00:01",
            "0001-01-01T00:00:00+00:01",
            "0000-06-01T00:00:00Z",
        ] {
            assert!(
                matches!(parse(s), Err(TimeError::OutOfRange { .. })),
                "{s}: {:?}",
                parse(s)
            );
        }
        // Honest twins at the edges.
        assert_eq!(parse("9999-12-31T23:59:59Z").unwrap(), Instant::MAX);
        assert_eq!(parse("0001-01-01T00:00:00Z").unwrap(), Instant::MIN);
        assert!(parse("9999-12-31T23:00:00+05:00").is_ok());
    }

    #[test]
    fn arithmetic_saturates() {
        let end = Instant::MAX;
        assert_eq!(end + Duration::minutes(5), Instant::MAX);
        assert_eq!(end + Duration::MAX, Instant::MAX);
        assert_eq!(Instant::MIN - Duration::days(1), Instant::MIN);
        assert_eq!(Instant::MIN + Duration::MIN, Instant::MIN);
        assert_eq!(end - Duration::MIN, Instant::MAX);
        let t = parse("2030-01-01T00:00:00Z").unwrap();
        assert_eq!(format(t + Duration::hours(1)), "2030-01-01T01:00:00Z");
        assert_eq!(format(t - Duration::hours(1)), "2029-12-31T23:00:00Z");
        assert_eq!((t + Duration::hours(1)) - t, Duration::hours(1));
        assert_eq!(
            Instant::MAX - Instant::MIN,
            Instant::MAX.get() - Instant::MIN.get()
        );
        assert_eq!(days(i64::MAX), Duration::MAX);
        assert_eq!(days(2), Duration::hours(48));
        assert!(Instant::from_unix(i64::MAX).is_none());
        assert_eq!(Instant::from_unix(0).unwrap().unix(), 0);
    }

    proptest::proptest! {
        /// Any string parses to an in-range instant or an error; any addition stays in range.
        #[test]
        fn never_panics(s in "\\PC{0,40}", secs in proptest::num::i64::ANY) {
            if let Ok(t) = parse(&s) {
                let _ = format(t + Duration::seconds(secs));
                let _ = t - Duration::seconds(secs);
            }
            let y = format!("9999-12-31T23:59:59-{:02}:{:02}", secs.rem_euclid(24), secs.rem_euclid(60));
            proptest::prop_assert!(parse(&y).is_err() || y.ends_with("-00:00"));
        }
    }
}
