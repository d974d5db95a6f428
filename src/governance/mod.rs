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
                .filter(|n| !n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|n| n.parse().ok())
                .map_or(FileKind::Unsupported, FileKind::RootVersion),
            ["keys", "groups", f] if f.ends_with(".json") => FileKind::Group,
            ["keys", "tsa-roots.pem"] => FileKind::TsaRoots,
            ["state", "snapshot.json"] => FileKind::Snapshot,
            ["state", "heartbeat.json"] => FileKind::Heartbeat,
            ["treaties", f] if f.ends_with(".json") => FileKind::Treaty,
            ["policies", f] if f.ends_with(".json") => FileKind::Policy,
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

/// Refuses a `spec_version` whose major part this build does not know.
pub fn check_spec_version(v: &str) -> Result<(), String> {
    let major = v
        .split('.')
        .next()
        .and_then(|m| m.parse::<u64>().ok())
        .ok_or_else(|| format!("spec_version {v:?} is not of the form MAJOR.MINOR"))?;
    if v.split('.').count() != 2
        || v.split('.')
            .nth(1)
            .and_then(|m| m.parse::<u64>().ok())
            .is_none()
    {
        return Err(format!("spec_version {v:?} is not of the form MAJOR.MINOR"));
    }
    if major != crate::SPEC_MAJOR {
        return Err(format!(
            "spec_version {v:?} has major version {major}; this treaty build reads only {}.x",
            crate::SPEC_MAJOR
        ));
    }
    Ok(())
}

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
        assert!(check_spec_version("2.0").is_err());
        assert!(check_spec_version("1").is_err());
        assert!(check_spec_version("one.0").is_err());
    }
}
