//! The format version every governance file and signed statement carries (`spec_version`,
//! docs/spec.md § 1.2) and the UINT grammar it is written in. Base layer: the key file reader
//! ([`crate::crypto`]) and the model ([`crate::governance`]) both check it, so it sits below both.

/// Reads a UINT written as text (docs/spec.md § 1.2): `0|[1-9][0-9]*` in ASCII digits, at
/// most 2^64 − 1. `str::parse::<u64>` alone would also take `+7` and `007`, which another
/// verifier refuses.
pub fn parse_uint(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let canonical =
        b.first().is_some_and(|&c| c != b'0' || b.len() == 1) && b.iter().all(u8::is_ascii_digit);
    canonical.then(|| s.parse().ok()).flatten()
}

/// Why a `spec_version` is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecVersionError {
    #[error(
        "spec_version {0:?} is not of the form MAJOR.MINOR (ASCII digits, no sign, no leading zero, each part at most 18446744073709551615)"
    )]
    Malformed(String),
    #[error(
        "spec_version {version:?} has major version {major}; this treaty build reads only {}.x",
        crate::SPEC_MAJOR
    )]
    UnsupportedMajor { version: String, major: u64 },
}

/// Checks a `spec_version` against docs/spec.md § 1.2: exactly
/// `(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)`, ASCII digits only, each part at most 2^64 − 1 (so at
/// most 20 digits), and a major this build reads.
///
/// The grammar is closed on purpose. Rust's integer parser accepts `+1`, Python's `int()`
/// accepts `01`, ` 1` and Unicode digits; a verifier that reads "whatever parses as a number"
/// agrees with another only by luck, and a statement one of them refuses must be refused by all.
pub fn check_spec_version(v: &str) -> Result<(), SpecVersionError> {
    let malformed = || SpecVersionError::Malformed(v.to_owned());
    let (major, minor) = v.split_once('.').ok_or_else(malformed)?;
    let (Some(major), Some(_)) = (parse_uint(major), parse_uint(minor)) else {
        return Err(malformed());
    };
    if major != crate::SPEC_MAJOR {
        return Err(SpecVersionError::UnsupportedMajor {
            version: v.to_owned(),
            major,
        });
    }
    Ok(())
}
