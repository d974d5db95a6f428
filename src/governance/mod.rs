//! The governance repository's file kinds and their rules.
//!
//! Owns: which path is which kind ([`FileKind::of`]), the typed models of the trust files
//! ([`model`]), `group_id` computation, parsing with line/column errors and JSON Schema
//! validation ([`schema`]). It decides nothing about signatures or trust chains.

pub mod model;
pub mod schema;

use crate::path::RepoPath;

/// The top-level folders whose files are governed. A file anywhere below one of these must be
/// covered by a delegation (or be a trust file), or it is rejected: fail closed.
pub const GOVERNED_TOPS: [&str; 6] = ["keys", "treaties", "policies", "gates", "schemas", "state"];

/// The signed state snapshot's well-known path (its format is [`crate::snapshot`]'s).
pub const SNAPSHOT_PATH: &str = "state/snapshot.json";
/// The heartbeat's well-known path.
pub const HEARTBEAT_PATH: &str = "state/heartbeat.json";
/// The approved roots of the RFC 3161 authorities whose timestamps count (docs/release.md).
pub const TSA_ROOTS_PATH: &str = "keys/tsa-roots.pem";

/// A governed file may be at most this large (16 MiB).
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// What a governed path holds, decided by its path alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileKind {
    /// `keys/root.json`
    Root,
    /// `keys/roots/<N>.json`: a kept root version.
    RootVersion(u64),
    /// `keys/groups/<name>.json`
    Group,
    /// `treaties/*.json`
    Treaty,
    /// `policies/*.json`
    Policy,
    /// `policies/*.rego`: extra runtime rules in Rego (docs/law.md § Rego), the header read
    /// from `# spec_version:` and `# version:` comment lines before `package treaty`.
    Rego,
    /// `gates/*.toml`
    Gates,
    /// `schemas/*.schema.json`
    Schema,
    /// `state/snapshot.json`: the signed state snapshot (approved by the `snapshot` role).
    Snapshot,
    /// `state/heartbeat.json`: the short-lived freshness statement over the snapshot.
    Heartbeat,
    /// `keys/tsa-roots.pem`: the trusted RFC 3161 authority roots, PEM certificates after a
    /// comment header that carries `spec_version` and `version` (docs/release.md).
    TsaRoots,
    /// Anything else below a governed folder: refused (no way to read its version).
    Unsupported,
}

impl FileKind {
    pub fn of(p: &RepoPath) -> FileKind {
        let s = p.as_str();
        let segs: Vec<&str> = s.split('/').collect();
        match segs.as_slice() {
            ["keys", "root.json"] => FileKind::Root,
            ["keys", "roots", f] => f
                .strip_suffix(".json")
                .and_then(parse_uint)
                .filter(|&n| n >= 1)
                .map_or(FileKind::Unsupported, FileKind::RootVersion),
            ["keys", "groups", f] if f.ends_with(".json") => FileKind::Group,
            ["keys", "tsa-roots.pem"] => FileKind::TsaRoots,
            ["state", "snapshot.json"] => FileKind::Snapshot,
            ["state", "heartbeat.json"] => FileKind::Heartbeat,
            ["treaties", f] if f.ends_with(".json") => FileKind::Treaty,
            ["policies", f] if f.ends_with(".json") => FileKind::Policy,
            ["policies", f] if f.ends_with(".rego") => FileKind::Rego,
            ["gates", f] if f.ends_with(".toml") => FileKind::Gates,
            ["schemas", f] if f.ends_with(".schema.json") => FileKind::Schema,
            _ => FileKind::Unsupported,
        }
    }

    /// The schema file that judges this kind, if any.
    pub fn schema_path(self) -> Option<&'static str> {
        match self {
            FileKind::Root | FileKind::RootVersion(_) => Some("schemas/root.schema.json"),
            FileKind::Group => Some("schemas/group.schema.json"),
            FileKind::Treaty => Some("schemas/treaty.schema.json"),
            FileKind::Policy => Some("schemas/policy.schema.json"),
            FileKind::Gates => Some("schemas/gates.schema.json"),
            FileKind::Schema
            | FileKind::Rego
            | FileKind::TsaRoots
            | FileKind::Snapshot
            | FileKind::Heartbeat
            | FileKind::Unsupported => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            FileKind::Root | FileKind::RootVersion(_) => "root",
            FileKind::Group => "group",
            FileKind::Treaty => "treaty",
            FileKind::Policy => "policy",
            FileKind::Rego => "rego",
            FileKind::Gates => "gates",
            FileKind::Schema => "schema",
            FileKind::TsaRoots => "tsa-roots",
            FileKind::Snapshot => "snapshot",
            FileKind::Heartbeat => "heartbeat",
            FileKind::Unsupported => "unsupported",
        }
    }
}

/// Is `p` below a governed folder?
pub fn is_governed(p: &RepoPath) -> bool {
    GOVERNED_TOPS.contains(&p.top())
}

pub use crate::spec::{check_spec_version, parse_uint, SpecVersionError};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_paths() {
        let k = |s: &str| FileKind::of(&RepoPath::new(s).unwrap());
        assert_eq!(k("keys/root.json"), FileKind::Root);
        assert_eq!(k("keys/roots/3.json"), FileKind::RootVersion(3));
        assert_eq!(k("keys/roots/03.json"), FileKind::Unsupported);
        assert_eq!(k("keys/groups/council.json"), FileKind::Group);
        assert_eq!(k("treaties/AURORA-AKASH-001.json"), FileKind::Treaty);
        assert_eq!(
            k("treaties/sub/AURORA-AKASH-001.json"),
            FileKind::Unsupported
        );
        assert_eq!(k("gates/gates.toml"), FileKind::Gates);
        assert_eq!(k("schemas/treaty.schema.json"), FileKind::Schema);
        assert_eq!(k("policies/README.md"), FileKind::Unsupported);
    }

    #[test]
    fn unknown_major_spec_versions_are_refused() {
        assert!(check_spec_version("1.0").is_ok());
        assert!(check_spec_version("1.7").is_ok());
        assert!(matches!(
            check_spec_version("2.0"),
            Err(SpecVersionError::UnsupportedMajor { major: 2, .. })
        ));
        assert!(check_spec_version("0.9").is_err());
    }

    #[test]
    fn spec_versions_outside_the_grammar_are_malformed() {
        for bad in [
            "1",
            "one.0",
            "+1.+0",
            "+1.0",
            "1.+0",
            "01.0",
            "1.00",
            "1.01",
            " 1.0",
            "1.0 ",
            "1.0\n",
            "-1.0",
            "1.-0",
            "1.0.0",
            "1..0",
            ".1",
            "1.",
            "",
            "1,0",
            "1.0e0",
            "\u{661}.0",
            "\u{ff11}.0",
            "1.18446744073709551616",
            "18446744073709551616.0",
            "1.000000000000000000000",
        ] {
            assert!(
                matches!(check_spec_version(bad), Err(SpecVersionError::Malformed(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn uints_in_text_follow_the_json_grammar() {
        assert_eq!(parse_uint("0"), Some(0));
        assert_eq!(parse_uint("18446744073709551615"), Some(u64::MAX));
        for bad in [
            "",
            "+7",
            "007",
            "-0",
            " 7",
            "7 ",
            "1e0",
            "18446744073709551616",
            "\u{661}",
        ] {
            assert_eq!(parse_uint(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn spec_versions_inside_the_grammar_with_major_one_are_read() {
        for good in ["1.0", "1.10", "1.18446744073709551615"] {
            assert_eq!(check_spec_version(good), Ok(()), "{good}");
        }
    }
}
