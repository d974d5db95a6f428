//! The verdict cache: per-file verdicts reused across runs, under `.git/treaty/verdicts-v2.json`.
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
const FORMAT: &str = "treaty-verdict-cache-v2";

/// One stored verdict.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cached {
    pub verdict: FileVerdict,
    /// The approval's expiry, when it has one, and whether the verdict was made at or after it.
    pub expires: Option<String>,
    pub made_after_expiry: bool,
}

/// The stored form. Verdicts are interned without their path and version ("shapes"): in a
/// large federation thousands of files were approved the same way by the same members, and
/// one shared copy keeps the file small enough to load and rewrite on every pull (the agent's
/// incremental target, issue 7). Each entry is `key → [shape index, version]`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Stored {
    format: String,
    shapes: Vec<Cached>,
    entries: HashMap<String, (u32, Option<u64>)>,
}

/// The cache: key (hex) → verdict.
#[derive(Debug, Default)]
pub struct Cache {
    stored: Stored,
    path: Option<PathBuf>,
    fresh: HashMap<String, Cached>,
    seen: Vec<String>,
}

/// Interns shapes for [`Cache::save`].
#[derive(Default)]
struct Interner {
    shapes: Vec<Cached>,
    index: HashMap<String, u32>,
}

impl Interner {
    /// The index of `c` without its path and version (added if new).
    fn intern(&mut self, mut c: Cached) -> Option<(u32, Option<u64>)> {
        let version = c.verdict.version.take();
        c.verdict.path = String::new();
        let text = serde_json::to_string(&c).ok()?;
        if let Some(i) = self.index.get(&text) {
            return Some((*i, version));
        }
        let i = u32::try_from(self.shapes.len()).ok()?;
        self.shapes.push(c);
        self.index.insert(text, i);
        Some((i, version))
    }
}

impl Cache {
    /// Loads the cache of the repository whose git directory is `git_dir` (empty if absent,
    /// unreadable or of another format: a cache is never a reason to fail).
    pub fn load(git_dir: &Path) -> Cache {
        let path = git_dir.join("treaty").join("verdicts-v2.json");
        let stored = std::fs::read(&path)
            .ok()
            .and_then(|b| crate::json::from_slice::<Stored>(&b).ok())
            .filter(|c| c.format == FORMAT)
            .unwrap_or_default();
        Cache {
            stored,
            path: Some(path),
            ..Cache::default()
        }
    }

    /// The verdict stored under `key` for the file at `path`, if it may be reused at `at`.
    pub fn get(&self, key: &str, path: &str, at: crate::time::Instant) -> Option<FileVerdict> {
        let (i, version) = self.stored.entries.get(key)?;
        let c = self.stored.shapes.get(usize::try_from(*i).ok()?)?;
        if let Some(e) = &c.expires {
            let after = crate::time::parse(e).ok().is_some_and(|t| at >= t);
            if after != c.made_after_expiry {
                return None;
            }
        }
        let mut v = c.verdict.clone();
        v.path = path.to_owned();
        v.version = *version;
        Some(v)
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
        let mut interner = Interner::default();
        let mut old: HashMap<u32, u32> = HashMap::new();
        let mut entries = HashMap::with_capacity(self.seen.len());
        for k in std::mem::take(&mut self.seen) {
            let slot = if let Some(c) = self.fresh.remove(&k) {
                interner.intern(c)
            } else if let Some((i, version)) = self.stored.entries.get(&k).copied() {
                match old.get(&i) {
                    Some(n) => Some((*n, version)),
                    None => {
                        let shape = usize::try_from(i)
                            .ok()
                            .and_then(|i| self.stored.shapes.get(i))
                            .cloned();
                        shape.and_then(|s| interner.intern(s)).map(|(n, _)| {
                            old.insert(i, n);
                            (n, version)
                        })
                    }
                }
            } else {
                None
            };
            if let Some(slot) = slot {
                entries.insert(k, slot);
            }
        }
        let stored = Stored {
            format: FORMAT.to_owned(),
            shapes: interner.shapes,
            entries,
        };
        if let Ok(bytes) = serde_json::to_vec(&stored) {
            let _ = crate::scaffold::write_atomic(&path, &bytes);
        }
        // The first format kept whole verdicts; nothing reads it any more.
        let _ = std::fs::remove_file(path.with_file_name("verdicts-v1.json"));
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
        crate::trust::Anchor::PinnedGroup(id) => {
            h.update(b"anchor:group:");
            h.update(id.as_bytes())
        }
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
