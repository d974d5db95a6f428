//! The verdict cache: per-file verdicts reused across runs, under `.git/treaty/`.
//!
//! Owns the cache key — everything a file's verdict depends on — and the cache file. A verdict
//! is reused only when the key matches exactly: this build's version, the exhaustive flag, the
//! anchor, every entry under `keys/` (root versions, groups and their envelopes, by blob id), the
//! schema that judges the kind, the file's and its envelope's blob ids, the parent commit's blob id
//! for the path, whether the root chain verified — and the judging time only through the
//! approval's expiry (a verdict made before the expiry is reused only before it, one made after
//! only after). Anything else changes the key, so a stale verdict can never be served. The cache
//! is trusted like the rest of `.git`: whoever can write there can already rewrite history. It
//! is never used for the work tree, and `--no-cache` turns it off.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::path::RepoPath;
use crate::source::Tree;
use crate::verify::FileVerdict;

/// Bump when the key or the stored form changes.
const FORMAT: &str = "treaty-verdict-cache-v1";

/// One stored verdict.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cached {
    pub verdict: FileVerdict,
    /// The approval's expiry, when it has one, and whether the verdict was made at or after it.
    pub expires: Option<String>,
    pub made_after_expiry: bool,
}

/// The cache: key (hex) → verdict.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Cache {
    format: String,
    entries: HashMap<String, Cached>,
    #[serde(skip)]
    path: Option<PathBuf>,
    #[serde(skip)]
    fresh: HashMap<String, Cached>,
    #[serde(skip)]
    seen: Vec<String>,
}

impl Cache {
    /// Loads the cache of the repository whose git directory is `git_dir` (empty if absent,
    /// unreadable or of another format: a cache is never a reason to fail).
    pub fn load(git_dir: &Path) -> Cache {
        let path = git_dir.join("treaty").join("verdicts-v1.json");
        let mut c = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Cache>(&b).ok())
            .filter(|c| c.format == FORMAT)
            .unwrap_or_default();
        c.format = FORMAT.to_owned();
        c.path = Some(path);
        c
    }

    pub fn get(&self, key: &str, at: crate::time::Instant) -> Option<FileVerdict> {
        let c = self.entries.get(key)?;
        match &c.expires {
            None => Some(c.verdict.clone()),
            Some(e) => {
                let after = crate::time::parse(e).ok().is_some_and(|t| at >= t);
                (after == c.made_after_expiry).then(|| c.verdict.clone())
            }
        }
    }

    pub fn put(&mut self, key: String, c: Cached) {
        self.fresh.insert(key, c);
    }

    /// Records the keys of the run just made (what [`Cache::save`] keeps).
    pub fn seen_this_run(&mut self, seen: Vec<String>) {
        self.seen = seen;
    }

    /// Writes the cache if anything new was learned (atomically; failures are ignored, a cache
    /// is an optimisation). Only keys seen in the last run are kept, so it never grows without
    /// bound.
    pub fn save(mut self) {
        if self.fresh.is_empty() {
            return;
        }
        let Some(path) = self.path.take() else { return };
        let mut keep: HashMap<String, Cached> = HashMap::new();
        let seen = std::mem::take(&mut self.seen);
        for k in &seen {
            if let Some(c) = self.fresh.remove(k).or_else(|| self.entries.remove(k)) {
                keep.insert(k.clone(), c);
            }
        }
        self.entries = keep;
        if let Ok(bytes) = serde_json::to_vec(&self) {
            let _ = crate::scaffold::write_atomic(&path, &bytes);
        }
    }
}

/// The part of the key shared by every file of one run.
pub fn run_key(
    tree: &Tree,
    anchor: &crate::trust::Anchor,
    exhaustive: bool,
    chain_ok: bool,
) -> blake3::Hasher {
    let mut h = blake3::Hasher::new();
    h.update(FORMAT.as_bytes());
    h.update(env!("CARGO_PKG_VERSION").as_bytes());
    h.update(&[u8::from(exhaustive), u8::from(chain_ok)]);
    match anchor {
        crate::trust::Anchor::Repository => h.update(b"anchor:repository"),
        crate::trust::Anchor::Pinned(r) => h.update(&serde_json::to_vec(r).unwrap_or_default()),
    };
    for (p, id) in tree.blob_ids.iter().filter(|(p, _)| p.top() == "keys") {
        h.update(p.as_str().as_bytes());
        h.update(&[0]);
        h.update(id.as_bytes());
    }
    h
}

/// The key for one file, or `None` when some input has no blob id (work tree).
pub fn file_key(
    base: &blake3::Hasher,
    tree: &Tree,
    parent: Option<&Tree>,
    p: &RepoPath,
    schema: Option<&str>,
) -> Option<String> {
    let mut h = base.clone();
    let id = |t: &Tree, p: &RepoPath| t.blob_ids.get(p).map(|o| o.as_bytes().to_vec());
    h.update(p.as_str().as_bytes());
    h.update(&id(tree, p)?);
    match id(tree, &p.sig_path()) {
        Some(s) => h.update(&s),
        None => h.update(b"-"),
    };
    match id(tree, &p.sig_path().stamp_path()) {
        Some(s) => h.update(&s),
        None => h.update(b"-"),
    };
    match parent.and_then(|t| id(t, p)) {
        Some(s) => h.update(&s),
        None => h.update(b"-"),
    };
    if let Some(sp) = schema {
        let sp = RepoPath::new(sp).ok()?;
        match id(tree, &sp) {
            Some(s) => h.update(&s),
            None => h.update(b"-"),
        };
    }
    Some(h.finalize().to_hex().to_string())
}
