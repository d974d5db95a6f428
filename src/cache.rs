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
use crate::verdict::FileVerdict;

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
            let _ = crate::durable::write(&path, &bytes, None);
        }
        // The first format kept whole verdicts; nothing reads it any more.
        let _ = std::fs::remove_file(path.with_file_name("verdicts-v1.json"));
    }
}

/// Adds one field to a key: a tag, then the length, then the bytes, so that no two different
/// sequences of fields hash the same way (a path ending in what looks like an id, say).
fn field(h: &mut blake3::Hasher, tag: &[u8], bytes: &[u8]) {
    h.update(tag);
    h.update(&(bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

/// An entry as a key field: its mode and its object id (`-` when absent). The mode is part of
/// it because a symlink or a submodule can carry the same object id as an approved file.
fn entry_field(h: &mut blake3::Hasher, tag: &[u8], t: &Tree, p: &RepoPath) {
    let mut v = Vec::with_capacity(21);
    if let Some(id) = t.blob_ids.get(p) {
        v.push(t.modes.get(p).map_or(b'?', |m| m.tag()));
        v.extend_from_slice(id.as_bytes());
    } else {
        v.push(b'-');
    }
    field(h, tag, &v);
}

/// The part of the key shared by every file of one run.
pub fn run_key(
    tree: &Tree,
    anchor: &crate::trust::Anchor,
    exhaustive: bool,
    chain_ok: bool,
) -> blake3::Hasher {
    let mut h = blake3::Hasher::new();
    field(&mut h, b"format", FORMAT.as_bytes());
    field(&mut h, b"tool", env!("CARGO_PKG_VERSION").as_bytes());
    field(
        &mut h,
        b"flags",
        &[
            u8::from(exhaustive),
            u8::from(chain_ok),
            u8::from(tree.history.is_some()),
        ],
    );
    match anchor {
        crate::trust::Anchor::Repository => field(&mut h, b"anchor", b"repository"),
        crate::trust::Anchor::Pinned(r) => field(
            &mut h,
            b"anchor-root",
            &serde_json::to_vec(r).unwrap_or_default(),
        ),
        crate::trust::Anchor::PinnedGroup(id) => field(&mut h, b"anchor-group", id.as_bytes()),
    };
    for p in tree.blob_ids.keys().filter(|p| p.top() == "keys") {
        field(&mut h, b"keys-path", p.as_str().as_bytes());
        entry_field(&mut h, b"keys-entry", tree, p);
    }
    h
}

/// The key for one file, or `None` when some input has no blob id (work tree): everything the
/// file's verdict depends on beyond [`run_key`] — its path, its entry (mode and id), its
/// envelope's and timestamp's entries, the parent's entry at the path, the schema's entry, and
/// the highest version (and its blobs) the revision's ancestors committed at the path.
pub fn file_key(
    base: &blake3::Hasher,
    tree: &Tree,
    parent: Option<&Tree>,
    p: &RepoPath,
    schema: Option<&str>,
) -> Option<String> {
    tree.blob_ids.get(p)?;
    let mut h = base.clone();
    field(&mut h, b"path", p.as_str().as_bytes());
    entry_field(&mut h, b"entry", tree, p);
    entry_field(&mut h, b"sig", tree, &p.sig_path());
    entry_field(&mut h, b"tsr", tree, &p.sig_path().stamp_path());
    match parent {
        Some(t) => entry_field(&mut h, b"parent", t, p),
        None => field(&mut h, b"parent", b"none"),
    }
    match schema {
        Some(sp) => entry_field(&mut h, b"schema", tree, &RepoPath::new(sp).ok()?),
        None => field(&mut h, b"schema", b"none"),
    }
    match tree.history.as_deref().and_then(|hi| hi.mark(p)) {
        Some(m) => {
            let mut blobs: Vec<&git2::Oid> = m.blobs.iter().collect();
            blobs.sort();
            let mut v = m
                .version
                .map_or_else(|| b"-".to_vec(), |v| v.to_le_bytes().to_vec());
            for b in blobs {
                v.extend_from_slice(b.as_bytes());
            }
            field(&mut h, b"mark", &v);
        }
        None => field(&mut h, b"mark", b"none"),
    }
    Some(h.finalize().to_hex().to_string())
}

#[cfg(test)]
#[allow(clippy::too_many_lines)]
mod tests {
    use super::*;
    use crate::source::{Entry, Mode};

    fn oid(n: u8) -> git2::Oid {
        git2::Oid::from_bytes(&[n; 20]).unwrap()
    }

    fn rp(s: &str) -> RepoPath {
        RepoPath::new(s).unwrap()
    }

    /// One valid fixture: a treaty with its envelope and timestamp, a schema, a key file.
    fn fixture() -> Tree {
        let mut t = Tree::default();
        for (p, n) in [
            ("treaties/T.json", 1),
            ("treaties/T.json.sig", 2),
            ("treaties/T.json.sig.tsr", 3),
            ("schemas/treaty.schema.json", 4),
            ("keys/root.json", 5),
        ] {
            t.entries.insert(rp(p), Entry::Blob(oid(n)));
            t.blob_ids.insert(rp(p), oid(n));
            t.modes.insert(rp(p), Mode::File);
        }
        t
    }

    fn key(t: &Tree, parent: Option<&Tree>) -> String {
        let base = run_key(t, &crate::trust::Anchor::Repository, false, true);
        file_key(
            &base,
            t,
            parent,
            &rp("treaties/T.json"),
            Some("schemas/treaty.schema.json"),
        )
        .unwrap()
    }

    /// Flipping any component of the key must miss (issue 12, class 4).
    #[test]
    fn every_component_changes_the_key() {
        let honest = fixture();
        let k = key(&honest, Some(&honest));
        assert_eq!(
            k,
            key(&fixture(), Some(&fixture())),
            "the key is deterministic"
        );
        type Flip = fn(&mut Tree);
        let flips: Vec<(&str, Flip)> = vec![
            ("file mode → symlink", |t| {
                t.modes.insert(rp("treaties/T.json"), Mode::Symlink);
            }),
            ("file mode → submodule", |t| {
                t.modes.insert(rp("treaties/T.json"), Mode::Gitlink);
            }),
            ("file mode → executable", |t| {
                t.modes.insert(rp("treaties/T.json"), Mode::Executable);
            }),
            ("file id", |t| {
                t.blob_ids.insert(rp("treaties/T.json"), oid(9));
            }),
            ("envelope id", |t| {
                t.blob_ids.insert(rp("treaties/T.json.sig"), oid(9));
            }),
            ("envelope mode", |t| {
                t.modes.insert(rp("treaties/T.json.sig"), Mode::Symlink);
            }),
            ("envelope removed", |t| {
                t.blob_ids.remove(&rp("treaties/T.json.sig"));
            }),
            ("timestamp id", |t| {
                t.blob_ids.insert(rp("treaties/T.json.sig.tsr"), oid(9));
            }),
            ("timestamp mode", |t| {
                t.modes.insert(rp("treaties/T.json.sig.tsr"), Mode::Symlink);
            }),
            ("schema id", |t| {
                t.blob_ids.insert(rp("schemas/treaty.schema.json"), oid(9));
            }),
            ("key file id", |t| {
                t.blob_ids.insert(rp("keys/root.json"), oid(9));
            }),
            ("key file mode", |t| {
                t.modes.insert(rp("keys/root.json"), Mode::Symlink);
            }),
            ("key file added", |t| {
                t.blob_ids.insert(rp("keys/groups/x.json"), oid(9));
            }),
            ("history attached", |t| {
                t.history = Some(std::sync::Arc::new(
                    crate::source::history::History::default(),
                ));
            }),
        ];
        let marked = |version: Option<u64>, blob: u8| {
            let mut t = fixture();
            t.history = Some(std::sync::Arc::new(
                crate::source::history::History::from_marks([(
                    rp("treaties/T.json"),
                    crate::source::history::Mark {
                        version,
                        blobs: vec![oid(blob)],
                    },
                )]),
            ));
            key(&t, Some(&honest))
        };
        let m = marked(Some(3), 1);
        assert_ne!(m, marked(Some(4), 1), "the ancestors' highest version");
        assert_ne!(m, marked(Some(3), 2), "the blobs at the highest version");
        assert_ne!(m, marked(None, 1), "a versionless mark");
        for (what, flip) in flips {
            let mut t = fixture();
            flip(&mut t);
            assert_ne!(key(&t, Some(&honest)), k, "{what}: the key did not change");
        }
        // The parent's entry, its mode, and its absence.
        let mut p = fixture();
        p.blob_ids.insert(rp("treaties/T.json"), oid(8));
        assert_ne!(key(&honest, Some(&p)), k, "parent id");
        let mut p = fixture();
        p.modes.insert(rp("treaties/T.json"), Mode::Symlink);
        assert_ne!(key(&honest, Some(&p)), k, "parent mode");
        assert_ne!(key(&honest, None), k, "no parent");
        // Run-wide inputs.
        let base = |anchor, ex, ok| {
            file_key(
                &run_key(&honest, &anchor, ex, ok),
                &honest,
                Some(&honest),
                &rp("treaties/T.json"),
                Some("schemas/treaty.schema.json"),
            )
            .unwrap()
        };
        assert_ne!(
            base(crate::trust::Anchor::Repository, true, true),
            k,
            "exhaustive"
        );
        assert_ne!(
            base(crate::trust::Anchor::Repository, false, false),
            k,
            "chain_ok"
        );
        assert_ne!(
            base(
                crate::trust::Anchor::PinnedGroup("blake3:00".into()),
                false,
                true
            ),
            k,
            "anchor"
        );
    }
}
