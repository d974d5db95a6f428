//! Validated repository-relative paths.
//!
//! Owns the one rule every governed path must satisfy before anything else looks at it:
//! UTF-8, Unicode NFC, `/`-separated, relative, no empty, `.` or `..` segments, no backslash
//! and no control characters. It never touches the file system: a [`RepoPath`] is a name, and
//! whether a name refers to a symlink is the caller's question (see [`crate::source`]).

use std::fmt;
use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};

/// Longest path accepted. Git allows longer, but nothing in a governance repo needs it, and a
/// bound keeps hostile trees from inflating reports.
pub const MAX_PATH_LEN: usize = 1024;

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    #[error("path is empty")]
    Empty,
    #[error("path is longer than {MAX_PATH_LEN} bytes")]
    TooLong,
    #[error("path is absolute (starts with '/')")]
    Absolute,
    #[error("path has an empty, '.' or '..' segment")]
    Traversal,
    #[error("path contains a backslash or a control character")]
    BadCharacter,
    #[error("path is not in Unicode NFC (normalised form: {0:?})")]
    NotNfc(String),
    #[error("path is not valid UTF-8")]
    NotUtf8,
}

/// A path inside a governance repository that passed every rule in the module doc.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RepoPath(String);

impl RepoPath {
    /// Validates `s` as a repository-relative path.
    pub fn new(s: &str) -> Result<Self, PathError> {
        if s.is_empty() {
            return Err(PathError::Empty);
        }
        if s.len() > MAX_PATH_LEN {
            return Err(PathError::TooLong);
        }
        if s.starts_with('/') {
            return Err(PathError::Absolute);
        }
        if s.chars().any(|c| c == '\\' || c.is_control()) {
            return Err(PathError::BadCharacter);
        }
        if s.split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..")
        {
            return Err(PathError::Traversal);
        }
        let nfc = match is_nfc_quick(s.chars()) {
            IsNormalized::Yes => true,
            _ => s.nfc().eq(s.chars()),
        };
        if !nfc {
            return Err(PathError::NotNfc(s.nfc().collect()));
        }
        Ok(Self(s.to_owned()))
    }

    /// Validates raw bytes (as git stores names) as a path.
    pub fn from_bytes(b: &[u8]) -> Result<Self, PathError> {
        std::str::from_utf8(b)
            .map_err(|_| PathError::NotUtf8)
            .and_then(Self::new)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first segment (`treaties` for `treaties/X.json`).
    pub fn top(&self) -> &str {
        self.0.split('/').next().unwrap_or("")
    }

    /// The final segment.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or("")
    }

    /// The path of the approval envelope beside this file.
    pub fn sig_path(&self) -> RepoPath {
        RepoPath(format!("{}.sig", self.0))
    }

    /// The RFC 3161 timestamp beside an approval envelope: `x.sig` → `x.sig.tsr`.
    pub fn stamp_path(&self) -> RepoPath {
        RepoPath(format!("{}.tsr", self.0))
    }

    /// For `x.sig.tsr`, the envelope it timestamps (`x.sig`).
    pub fn stamped_envelope(&self) -> Option<RepoPath> {
        self.0
            .strip_suffix(".sig.tsr")
            .filter(|s| !s.is_empty() && !s.ends_with('/'))
            .map(|s| RepoPath(format!("{s}.sig")))
    }

    /// For an approval artefact (`x.sig` or its timestamp `x.sig.tsr`), the file it is about.
    pub fn approval_target(&self) -> Option<RepoPath> {
        self.signed_file()
            .or_else(|| self.stamped_envelope().and_then(|e| e.signed_file()))
    }

    /// For `x.sig`, the path of the file it approves.
    pub fn signed_file(&self) -> Option<RepoPath> {
        self.0
            .strip_suffix(".sig")
            .filter(|s| !s.is_empty() && !s.ends_with('/'))
            .map(|s| RepoPath(s.to_owned()))
    }
}

impl fmt::Display for RepoPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RepoPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// `p` relative to `root`, both absolute, resolved lexically (`.` dropped, `..` pops a
/// component) — never through the file system, so a symlink on the way is not followed and
/// stays visible to the caller. `None`: `p` is not below `root`.
pub fn relative_to(root: &std::path::Path, p: &std::path::Path) -> Option<String> {
    use std::path::Component;
    let mut parts: Vec<std::ffi::OsString> = Vec::new();
    for c in p.components() {
        match c {
            Component::Prefix(_) | Component::RootDir => parts.clear(),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop();
            }
            Component::Normal(n) => parts.push(n.to_owned()),
        }
    }
    let root_parts: Vec<std::ffi::OsString> = root
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_owned()),
            _ => None,
        })
        .collect();
    if parts.len() < root_parts.len() || parts[..root_parts.len()] != root_parts[..] {
        return None;
    }
    let rest: Vec<String> = parts[root_parts.len()..]
        .iter()
        .map(|s| s.to_string_lossy().into_owned())
        .collect();
    Some(rest.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn honest_paths_pass() {
        for p in [
            "treaties/AURORA-AKASH-001.json",
            "keys/root.json",
            "a",
            "ünïcode/ok.json",
        ] {
            assert!(RepoPath::new(p).is_ok(), "{p}");
        }
    }

    #[test]
    fn traversal_absolute_and_odd_paths_are_refused() {
        assert_eq!(RepoPath::new("../x"), Err(PathError::Traversal));
        assert_eq!(RepoPath::new("a/../b"), Err(PathError::Traversal));
        assert_eq!(RepoPath::new("a//b"), Err(PathError::Traversal));
        assert_eq!(RepoPath::new("./a"), Err(PathError::Traversal));
        assert_eq!(RepoPath::new("a/"), Err(PathError::Traversal));
        assert_eq!(RepoPath::new("/etc/passwd"), Err(PathError::Absolute));
        assert_eq!(RepoPath::new("a\\b"), Err(PathError::BadCharacter));
        assert_eq!(RepoPath::new("a\nb"), Err(PathError::BadCharacter));
        assert_eq!(RepoPath::new(""), Err(PathError::Empty));
        assert_eq!(
            RepoPath::from_bytes(b"tre\xffaties"),
            Err(PathError::NotUtf8)
        );
        assert!(RepoPath::new(&"a".repeat(MAX_PATH_LEN + 1)).is_err());
    }

    #[test]
    fn non_nfc_paths_are_refused() {
        // "é" as e + combining acute accent.
        assert!(matches!(
            RepoPath::new("caf\u{65}\u{301}.json"),
            Err(PathError::NotNfc(_))
        ));
        assert!(RepoPath::new("caf\u{e9}.json").is_ok());
    }

    #[test]
    fn sig_paths_round_trip() {
        let p = RepoPath::new("treaties/A.json").unwrap();
        assert_eq!(p.sig_path().signed_file(), Some(p));
        assert_eq!(RepoPath::new("x/.sig").unwrap().signed_file(), None);
    }
}
