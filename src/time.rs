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

/// The exact form docs/spec.md §1 allows: `YYYY-MM-DDThh:mm:ss[.f{1,9}](Z|±hh:mm)`, an uppercase
/// `T` and `Z`, no leap second. The `time` crate's RFC 3339 parser is more lenient (any
/// separator byte, lowercase `z`, any number of fraction digits, second 60), and two verifiers
/// must agree on every accepted text, so the form is checked first.
fn well_formed(s: &str) -> Result<(), &'static str> {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    if !(digits(0..4)
        && b.get(4) == Some(&b'-')
        && digits(5..7)
        && b.get(7) == Some(&b'-')
        && digits(8..10)
        && b.get(10) == Some(&b'T')
        && digits(11..13)
        && b.get(13) == Some(&b':')
        && digits(14..16)
        && b.get(16) == Some(&b':')
        && digits(17..19))
    {
        return Err("not of the form YYYY-MM-DDThh:mm:ss");
    }
    if &b[17..19] > b"59".as_slice() {
        return Err("a leap second (second 60) is not accepted");
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        let n = b[i + 1..].iter().take_while(|d| d.is_ascii_digit()).count();
        if !(1..=9).contains(&n) {
            return Err("a fraction of a second has 1 to 9 digits");
        }
        i += 1 + n;
    }
    match &b[i..] {
        b"Z" => Ok(()),
        [b'+' | b'-', h1, h2, b':', m1, m2]
            if [h1, h2, m1, m2].iter().all(|d| d.is_ascii_digit()) =>
        {
            Ok(())
        }
        _ => Err("the offset must be Z or ±hh:mm"),
    }
}

/// Parses an RFC 3339 timestamp of the form docs/spec.md §1 allows. Offsets are accepted and
/// converted to UTC; the UTC instant must fall within years 0001..=9999.
pub fn parse(s: &str) -> Result<Instant, TimeError> {
    well_formed(s).map_err(|why| TimeError::Syntax {
        text: s.chars().take(64).collect(),
        reason: why.into(),
    })?;
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

/// The current time: the system clock — or, only in a build with the `sim-clock` feature (the
/// war game and the tests; never a release binary, a CI check proves it), the simulated clock
/// of `time::sim` while `TREATY_SIM_CLOCK` is set.
pub fn now() -> Instant {
    simulated_now().unwrap_or_else(|| Instant::from(OffsetDateTime::now_utc()))
}

/// The simulated clock's time when one runs; `None` always in a build without `sim-clock`
/// (which never reads the environment for it). The shared law store pins its scripts to it,
/// so every agent of a simulated fleet and its Redis agree on one time.
pub fn simulated_now() -> Option<Instant> {
    #[cfg(feature = "sim-clock")]
    if let Some(Ok(c)) = sim::configured() {
        return Some(c.now());
    }
    None
}

/// A clock that runs faster than the real one, from an origin, for the war game
/// (`treaty-bench fleet`: a day of orders in minutes). Compiled only with the `sim-clock`
/// feature: a release binary has neither this module nor the variable's name.
///
/// `TREATY_SIM_CLOCK=origin=UNIX_S,anchor_ms=UNIX_MS,rate=N` — at the real instant `anchor_ms`
/// the simulated time is `origin`, and it then runs `rate` times as fast. The origin may not
/// lie behind the anchor: a shared Redis expires keys on its real clock at the instants the
/// scripts compute on the simulated one, and a simulated clock behind the real one would have
/// it forget nonces early (replays accepted). Every process of one simulation gets the same
/// value, so they agree on the time to the millisecond.
#[cfg(feature = "sim-clock")]
pub mod sim {
    use super::Instant;
    use std::sync::OnceLock;
    use time::OffsetDateTime;

    /// The environment variable that sets the clock.
    pub const ENV: &str = "TREATY_SIM_CLOCK";
    /// The fastest the simulated clock may run (a day in under nine seconds).
    pub const MAX_RATE: u32 = 10_000;

    /// A simulated clock's definition.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct SimClock {
        /// The simulated time at the anchor, Unix seconds.
        pub origin: i64,
        /// The real instant the simulation starts, Unix milliseconds.
        pub anchor_ms: i64,
        /// Simulated seconds per real second.
        pub rate: u32,
    }

    /// Why a `TREATY_SIM_CLOCK` value is refused.
    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    #[non_exhaustive]
    pub enum SimClockError {
        #[error("{ENV}: {text:?} is not origin=UNIX_S,anchor_ms=UNIX_MS,rate=N ({reason})")]
        Syntax { text: String, reason: &'static str },
        #[error("{ENV}: rate {rate} is outside 1..={MAX_RATE}")]
        Rate { rate: u64 },
        #[error("{ENV}: the origin {origin} lies behind the real anchor {anchor_ms} ms (Redis would expire replay state early)")]
        Behind { origin: i64, anchor_ms: i64 },
    }

    impl SimClock {
        /// Parses the variable's value; every field is required, once, within its bounds.
        pub fn parse(text: &str) -> Result<SimClock, SimClockError> {
            let shown = || text.chars().take(96).collect::<String>();
            let syntax = |reason| SimClockError::Syntax {
                text: shown(),
                reason,
            };
            let (mut origin, mut anchor_ms, mut rate) = (None, None, None);
            for part in text.split(',') {
                let (k, v) = part
                    .split_once('=')
                    .ok_or_else(|| syntax("a field without `=`"))?;
                let slot = match k.trim() {
                    "origin" => &mut origin,
                    "anchor_ms" => &mut anchor_ms,
                    "rate" => &mut rate,
                    _ => return Err(syntax("an unknown field")),
                };
                if slot.is_some() {
                    return Err(syntax("a field given twice"));
                }
                *slot = Some(
                    v.trim()
                        .parse::<i64>()
                        .map_err(|_| syntax("a field is not an integer"))?,
                );
            }
            let (Some(origin), Some(anchor_ms), Some(rate)) = (origin, anchor_ms, rate) else {
                return Err(syntax("a field is missing"));
            };
            let rate = u32::try_from(rate)
                .ok()
                .filter(|r| (1..=MAX_RATE).contains(r))
                .ok_or(SimClockError::Rate {
                    rate: rate.unsigned_abs(),
                })?;
            if Instant::from_unix(origin).is_none()
                || !(0..=253_402_300_799_000).contains(&anchor_ms)
            {
                return Err(syntax("an instant outside years 0001..=9999"));
            }
            if origin.saturating_mul(1_000) < anchor_ms {
                return Err(SimClockError::Behind { origin, anchor_ms });
            }
            Ok(SimClock {
                origin,
                anchor_ms,
                rate,
            })
        }

        /// The variable's value for this clock.
        pub fn render(&self) -> String {
            format!(
                "origin={},anchor_ms={},rate={}",
                self.origin, self.anchor_ms, self.rate
            )
        }

        /// The simulated instant at the real instant `real` (saturating at the range's ends).
        pub fn at(&self, real: OffsetDateTime) -> Instant {
            // Before its anchor the clock stands at its origin: an anchor in the future must
            // not put the simulated time behind the real one.
            let real_ms = (real.unix_timestamp_nanos() / 1_000_000).max(i128::from(self.anchor_ms));
            let sim_ns = i128::from(self.origin) * 1_000_000_000
                + (real_ms - i128::from(self.anchor_ms)) * i128::from(self.rate) * 1_000_000;
            OffsetDateTime::from_unix_timestamp_nanos(sim_ns)
                .map(Instant::from)
                .unwrap_or(if sim_ns < 0 {
                    Instant::MIN
                } else {
                    Instant::MAX
                })
        }

        /// The simulated time now.
        pub fn now(&self) -> Instant {
            self.at(OffsetDateTime::now_utc())
        }
    }

    /// The clock this process runs on: `None` without the variable, read once.
    pub fn configured() -> Option<&'static Result<SimClock, SimClockError>> {
        static CLOCK: OnceLock<Option<Result<SimClock, SimClockError>>> = OnceLock::new();
        CLOCK
            .get_or_init(|| std::env::var_os(ENV).map(|v| SimClock::parse(&v.to_string_lossy())))
            .as_ref()
    }
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

    #[cfg(feature = "sim-clock")]
    #[test]
    fn a_simulated_clock_runs_from_its_origin_at_its_rate_and_refuses_bad_values() {
        use sim::{SimClock, SimClockError};
        let c = SimClock::parse("origin=2000000000,anchor_ms=1900000000500,rate=288").unwrap();
        assert_eq!(SimClock::parse(&c.render()), Ok(c));
        let real = |ms: i64| {
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap()
        };
        assert_eq!(c.at(real(1_900_000_000_500)).unix(), 2_000_000_000);
        // 300 real seconds are a simulated day.
        assert_eq!(c.at(real(1_900_000_300_500)).unix(), 2_000_000_000 + 86_400);
        // Before its anchor it stands at its origin (never behind the real clock).
        assert_eq!(c.at(real(1_800_000_000_000)).unix(), 2_000_000_000);
        for bad in [
            "",
            "origin=1,anchor_ms=1",
            "origin=2000000000,anchor_ms=1,rate=2,rate=3",
            "origin=2000000000,anchor_ms=1,rate=x",
            "origin=2000000000,anchor_ms=1,rate=2,speed=3",
            "origin=999999999999,anchor_ms=1,rate=2",
            "origin=2000000000,anchor_ms=-1,rate=2",
        ] {
            assert!(
                matches!(SimClock::parse(bad), Err(SimClockError::Syntax { .. })),
                "{bad}"
            );
        }
        for rate in ["0", "-5", "10001", "99999999999"] {
            let v = format!("origin=2000000000,anchor_ms=1,rate={rate}");
            assert!(
                matches!(SimClock::parse(&v), Err(SimClockError::Rate { .. })),
                "{v}"
            );
        }
        // Behind the real clock: Redis would forget nonces early.
        assert!(matches!(
            SimClock::parse("origin=1000,anchor_ms=1000001,rate=2"),
            Err(SimClockError::Behind { .. })
        ));
        assert!(SimClock::parse("origin=1000,anchor_ms=1000000,rate=2").is_ok());
    }

    #[test]
    fn parse_and_format_round_trip() {
        let t = parse("2036-11-22T00:00:00Z").unwrap();
        assert_eq!(format(t), "2036-11-22T00:00:00Z");
        let t = parse("2036-11-22T02:00:00+02:00").unwrap();
        assert_eq!(format(t), "2036-11-22T00:00:00Z");
        assert!(parse("tomorrow").is_err());
    }

    #[test]
    fn only_the_spec_form_is_accepted() {
        for ok in [
            "2030-01-01T00:00:00Z",
            "2030-01-01T00:00:00.5Z",
            "2030-01-01T00:00:00.123456789+05:30",
            "2030-01-01T00:00:00-23:59",
        ] {
            assert!(parse(ok).is_ok(), "{ok}");
        }
        // What the `time` crate alone would accept, and the spec refuses.
        for bad in [
            "2030-01-01t00:00:00Z",
            "2030-01-01 00:00:00Z",
            "2030-01-01X00:00:00Z",
            "2030-01-01T00:00:00z",
            "2030-01-01T00:00:00.1234567890Z",
            "2030-01-01T00:00:00.Z",
            "2030-12-31T23:59:60Z",
            "2030-01-01T00:00:00+0100",
            "2030-01-01T00:00:00",
            "2030-01-01T00:00:00Z ",
            "+2030-01-01T00:00:00Z",
            "2030-02-30T00:00:00Z",
            "2030-01-01T00:00:00+24:00",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
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
