//! Per-blob facts: what the snapshot check and `emit` need to know about a governed document
//! — its SHA-256 and BLAKE3 digests, its `version`, and for a treaty the fields that decide
//! whether it is in force — computed once per blob and remembered by git blob id.
//!
//! Owns computing those facts from bytes and the cache file `.git/treaty/facts-v1.json`. The
//! facts are a pure function of (file kind, bytes) and this build, and a blob id names its
//! bytes, so a cached entry is never stale; the key also carries the kind (the same bytes are a
//! different document at another path) and the file is dropped when the tool version changes.
//! The cache is trusted like the rest of `.git` (as the verdict cache in [`crate::cache`] is):
//! whoever can write there can already rewrite the mirror. It never judges approval: callers
//! use facts only about states that verified.
//!
//! Why: an agent pulling one changed treaty out of 10,000 must not re-read and re-hash the
//! 9,999 unchanged ones to check the snapshot and to work out which treaties changed state
//! (issue 7's incremental target).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::crypto::{blake3_hex, sha256_hex};
use crate::governance::FileKind;
use crate::path::RepoPath;
use crate::source::Tree;

/// Bump when [`Facts`] or how it is computed changes (the tool version is checked too).
const FORMAT: &str = "treaty-facts-v1";

/// The lifecycle fields of a treaty (strings as written; judged by `emit`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Life {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

impl Life {
    /// The lifecycle fields of a parsed treaty.
    pub fn of(v: &Value) -> Life {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        Life {
            status: s("status"),
            valid_from: s("valid_from"),
            expires: s("expires"),
        }
    }
}

/// What is known about one governed document's bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    pub sha256: String,
    pub blake3: String,
    /// The document's `version` (never for groups, whose version is the root's pin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// For a treaty that parses as a JSON object: its lifecycle fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub life: Option<Life>,
}

impl Facts {
    /// The facts of `bytes` as a document of `kind`.
    pub fn of(kind: FileKind, bytes: &[u8]) -> Facts {
        let parsed = match kind {
            FileKind::Group => None,
            _ => crate::governance::schema::parse(kind, bytes).ok(),
        };
        let version = parsed
            .as_ref()
            .and_then(|v| v.get("version").and_then(Value::as_u64));
        let life = match (kind, &parsed) {
            (FileKind::Treaty, Some(v)) if v.is_object() => Some(Life::of(v)),
            _ => None,
        };
        Facts {
            sha256: sha256_hex(bytes),
            blake3: blake3_hex(bytes),
            version,
            life,
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Stored {
    format: String,
    tool: String,
    entries: HashMap<String, Facts>,
}

/// Facts by `kind:blob-id`, loaded from and saved to a repository's git directory (or held in
/// memory only, for trees without blob ids).
#[derive(Debug, Default)]
pub struct FactCache {
    entries: HashMap<String, Facts>,
    path: Option<PathBuf>,
    seen: HashSet<String>,
    learned: bool,
}

impl FactCache {
    /// A cache that is never written (the work tree, one-off commands).
    pub fn in_memory() -> FactCache {
        FactCache::default()
    }

    /// Loads the cache of the repository whose git directory is `git_dir` (empty when absent,
    /// unreadable, or written by another format or version: a cache is never a reason to fail).
    pub fn load(git_dir: &Path) -> FactCache {
        let path = git_dir.join("treaty").join("facts-v1.json");
        let entries = std::fs::read(&path)
            .ok()
            .and_then(|b| crate::json::from_slice::<Stored>(&b).ok())
            .filter(|s| s.format == FORMAT && s.tool == env!("CARGO_PKG_VERSION"))
            .map(|s| s.entries)
            .unwrap_or_default();
        FactCache {
            entries,
            path: Some(path),
            ..FactCache::default()
        }
    }

    /// The facts of the document at `p` in `tree` (`None` when it cannot be read: absent, not
    /// a regular file, over the size limit, or an object-database failure, which the tree
    /// records for its caller).
    pub fn get(&mut self, tree: &Tree, p: &RepoPath) -> Option<Facts> {
        let kind = FileKind::of(p);
        let key = tree.blob_ids.get(p).map(|id| format!("{kind:?}:{id}"));
        if let Some(k) = &key {
            if let Some(f) = self.entries.get(k) {
                self.seen.insert(k.clone());
                return Some(f.clone());
            }
        }
        let bytes = tree.read(p).ok()?;
        let f = Facts::of(kind, &bytes);
        if let Some(k) = key {
            self.seen.insert(k.clone());
            self.entries.insert(k, f.clone());
            self.learned = true;
        }
        Some(f)
    }

    /// Writes the cache if anything was learned, keeping only the entries used since it was
    /// loaded (so it never grows without bound). Atomic; failures are ignored.
    pub fn save(self) {
        let Some(path) = self.path else { return };
        if !self.learned {
            return;
        }
        let seen = self.seen;
        let stored = Stored {
            format: FORMAT.to_owned(),
            tool: env!("CARGO_PKG_VERSION").to_owned(),
            entries: self
                .entries
                .into_iter()
                .filter(|(k, _)| seen.contains(k))
                .collect(),
        };
        if let Ok(bytes) = serde_json::to_vec(&stored) {
            if let Some(dir) = path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            let _ = crate::durable::write(&path, &bytes, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_of_a_treaty_carry_digests_version_and_life() {
        let b = br#"{"version": 3, "status": "active", "expires": "2030-01-01T00:00:00Z"}"#;
        let f = Facts::of(FileKind::Treaty, b);
        assert_eq!(f.sha256, sha256_hex(b));
        assert_eq!(f.blake3, blake3_hex(b));
        assert_eq!(f.version, Some(3));
        let life = f.life.unwrap_or_default();
        assert_eq!(life.status.as_deref(), Some("active"));
        assert_eq!(life.expires.as_deref(), Some("2030-01-01T00:00:00Z"));
        assert_eq!(life.valid_from, None);
    }

    #[test]
    fn groups_have_no_version_and_garbage_has_no_life() {
        let g = Facts::of(FileKind::Group, br#"{"version": 9}"#);
        assert_eq!(g.version, None);
        let t = Facts::of(FileKind::Treaty, b"not json");
        assert_eq!((t.version, t.life), (None, None));
        let p = Facts::of(FileKind::Policy, br#"{"version": 2, "status": "active"}"#);
        assert_eq!((p.version, p.life), (Some(2), None));
    }

    #[test]
    fn a_cache_from_another_version_is_ignored_and_a_used_entry_survives_save() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("treaty").join("facts-v1.json");
        std::fs::create_dir_all(path.parent().unwrap_or(dir.path()))
            .unwrap_or_else(|e| panic!("{e}"));
        let mut entries = HashMap::new();
        entries.insert("Treaty:x".to_owned(), Facts::of(FileKind::Treaty, b"{}"));
        let other = Stored {
            format: FORMAT.to_owned(),
            tool: "0.0.0-other".to_owned(),
            entries,
        };
        std::fs::write(&path, serde_json::to_vec(&other).unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(FactCache::load(dir.path()).entries.is_empty());
    }

    #[test]
    fn learned_facts_persist_and_unused_ones_are_dropped() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut tree = Tree::default();
        let p = RepoPath::new("treaties/a.json").unwrap_or_else(|e| panic!("{e}"));
        let b = br#"{"version": 1, "status": "active"}"#.to_vec();
        tree.entries
            .insert(p.clone(), crate::source::Entry::File(b.clone()));
        let id =
            git2::Oid::hash_object(git2::ObjectType::Blob, &b).unwrap_or_else(|e| panic!("{e}"));
        tree.blob_ids.insert(p.clone(), id);
        let mut c = FactCache::load(dir.path());
        c.entries.insert(
            "Treaty:stale".to_owned(),
            Facts::of(FileKind::Treaty, b"{}"),
        );
        let f = c.get(&tree, &p);
        assert_eq!(f.as_ref().and_then(|f| f.version), Some(1));
        c.save();
        let mut again = FactCache::load(dir.path());
        assert_eq!(again.entries.len(), 1, "only the entry used is kept");
        // Served from the cache: the bytes are gone from the tree and the facts still come.
        tree.entries
            .insert(p.clone(), crate::source::Entry::TooLarge(1 << 40));
        assert_eq!(again.get(&tree, &p), f);
        assert!(!again.learned);
    }
}
