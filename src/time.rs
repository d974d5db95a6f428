//! Timestamps: RFC 3339 UTC instants as every governance file writes them.
//!
//! Owns parsing and formatting; it never reads the clock except in [`now`], so that
//! verification can be judged as of any instant (`--at`).

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// An instant, always UTC.
pub type Instant = OffsetDateTime;

/// Parses an RFC 3339 timestamp. Offsets are accepted and converted to UTC.
pub fn parse(s: &str) -> Result<Instant, String> {
    OffsetDateTime::parse(s, &Rfc3339)
        .map(|t| t.to_offset(time::UtcOffset::UTC))
        .map_err(|e| format!("{s:?} is not an RFC 3339 timestamp ({e})"))
}

/// Formats as RFC 3339 UTC with a `Z`, whole seconds.
pub fn format(t: Instant) -> String {
    let t = t
        .to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(t);
    t.format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// The current time.
pub fn now() -> Instant {
    OffsetDateTime::now_utc()
}

#[cfg(test)]
mod tests {
    #[test]
    fn parse_and_format_round_trip() {
        let t = super::parse("2036-11-22T00:00:00Z").unwrap();
        assert_eq!(super::format(t), "2036-11-22T00:00:00Z");
        let t = super::parse("2036-11-22T02:00:00+02:00").unwrap();
        assert_eq!(super::format(t), "2036-11-22T00:00:00Z");
        assert!(super::parse("tomorrow").is_err());
    }
}
