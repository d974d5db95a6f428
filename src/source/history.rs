//! History: what a revision's ancestors committed at each governed path — the highest version
//! and the blobs committed at it — so that verification can refuse rollbacks by any route.
//!
//! Owns walking every ancestor (all parents, not only the first: a merge whose first parent is
//! the stale side must not hide the newer version on its other side), reading parents from the
//! commit objects' own bytes (grafts, replace refs and the shallow list never change what a
//! commit id means; see [`super::Repo::parents`]), reporting history that is needed but
//! absent, and the cache `.git/treaty/history-v1` that keeps this cheap on large repositories.
//!
//! A path's *mark* is the highest `version` any ancestor committed there and the blob ids
//! committed at that version (docs/spec.md § Rollback). Every version counts, approved or not:
//! an ancestor is history the verifier cannot unsee, and counting only approved versions would
//! need every ancestor judged again. The cost is fail-closed: a high version once committed on
//! main, even unapproved, must be exceeded by the next approved one.
//!
//! The cache holds the marks of one commit's full ancestry (its *tip*) and the set of commits in
//! it; a later walk stops at any commit in that set and takes the stored marks, but only when the
//! tip itself is an ancestor of what is asked (otherwise it walks everything). It is trusted like
//! the rest of `.git` (the verdict and facts caches are): whoever can write there can already
//! rewrite the history it summarises. It never changes a verdict: a missing or unreadable cache
//! only costs time.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::{Mode, Repo, SourceError};
use crate::governance::{schema, FileKind, GOVERNED_TOPS};
use crate::path::RepoPath;

/// Bump when the walk, the marks or the file format change.
const FORMAT: &str = "treaty-history-v1";

/// The highest version committed at one path, and the blobs committed at that version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mark {
    /// `None` when no ancestor's document at this path had a readable `version` (groups).
    pub version: Option<u64>,
    pub blobs: Vec<git2::Oid>,
}

impl Mark {
    fn fold(&mut self, version: Option<u64>, blob: git2::Oid) {
        if version > self.version {
            self.version = version;
            self.blobs = vec![blob];
        } else if version == self.version && !self.blobs.contains(&blob) {
            self.blobs.push(blob);
        }
    }

    fn merge(&mut self, other: &Mark) {
        for b in &other.blobs {
            self.fold(other.version, *b);
        }
    }
}

/// The marks of every ancestor of a revision.
#[derive(Debug, Clone, Default)]
pub struct History {
    marks: HashMap<RepoPath, Mark>,
    commits: HashSet<git2::Oid>,
    /// Commits whose parents are absent from the object database (a shallow clone's cut),
    /// when the caller accepted judging without them.
    pub incomplete: Vec<git2::Oid>,
    /// Removed documents whose removal the revision's snapshot cannot approve: some ancestor
    /// held the document beside this very snapshot, so the snapshot predates (or ignored) the
    /// document and says nothing about removing it.
    pub stale_removals: std::collections::BTreeSet<RepoPath>,
}

impl History {
    /// The mark at `p`, if any ancestor committed a document there.
    pub fn mark(&self, p: &RepoPath) -> Option<&Mark> {
        self.marks.get(p)
    }

    /// Every path some ancestor committed a document at.
    pub fn paths(&self) -> impl Iterator<Item = &RepoPath> {
        self.marks.keys()
    }

    /// Fills [`History::stale_removals`] for `tree`, the revision whose parents are `parents`:
    /// for each document some ancestor had and `tree` lacks, is there an ancestor holding both
    /// it and the snapshot blob `tree` holds? Walks every ancestor, but only when something was
    /// removed, reading two trees per commit and one more per removed path where the snapshot
    /// matches.
    pub fn find_stale_removals(
        &mut self,
        repo: &Repo,
        tree: &super::Tree,
        parents: &[git2::Oid],
    ) -> Result<(), SourceError> {
        let removed: Vec<RepoPath> = self
            .marks
            .keys()
            .filter(|p| !tree.entries.contains_key(*p))
            .cloned()
            .collect();
        if removed.is_empty() {
            return Ok(());
        }
        let snap = crate::path::RepoPath::new(crate::governance::SNAPSHOT_PATH)
            .ok()
            .and_then(|p| tree.blob_ids.get(&p).copied());
        let Some(snap) = snap else {
            return Ok(()); // no snapshot: every removal is refused anyway
        };
        let mut seen: HashSet<git2::Oid> = HashSet::new();
        let mut stack: Vec<git2::Oid> = parents.to_vec();
        while let Some(c) = stack.pop() {
            if !seen.insert(c) || !repo.has_object(c) {
                continue;
            }
            let raw = repo.raw_commit(c)?;
            if lookup(repo, raw.tree, crate::governance::SNAPSHOT_PATH)? == Some(snap) {
                for p in &removed {
                    if !self.stale_removals.contains(p)
                        && lookup(repo, raw.tree, p.as_str())?.is_some()
                    {
                        self.stale_removals.insert(p.clone());
                    }
                }
            }
            stack.extend(raw.parents);
        }
        Ok(())
    }

    /// A history with the given marks (tests build judgement inputs without a repository).
    #[cfg(test)]
    pub(crate) fn from_marks(marks: impl IntoIterator<Item = (RepoPath, Mark)>) -> History {
        History {
            marks: marks.into_iter().collect(),
            ..History::default()
        }
    }

    /// How many commits the history covers.
    pub fn len(&self) -> usize {
        self.commits.len()
    }

    pub fn is_empty(&self) -> bool {
        self.commits.is_empty()
    }

    /// The history of `commit`'s ancestors (its parents and everything before them). Records
    /// the history including `commit` in the cache for the next run.
    pub fn of_parents(
        repo: &Repo,
        commit: git2::Oid,
        parents: &[git2::Oid],
        allow_incomplete: bool,
    ) -> Result<History, SourceError> {
        let cached = load(repo);
        // The same revision again: its parents' history is what the cache holds.
        let cached = cached.filter(|c| usable(repo, &c.parents, allow_incomplete));
        if let Some(c) = cached.as_ref().filter(|c| c.tip == commit) {
            return Ok(c.parents.clone());
        }
        let full = cached.map(Cached::full);
        let h = Self::of_with(repo, parents, full.as_ref(), allow_incomplete)?;
        // Best effort: the cache is an optimisation; a commit whose own tree cannot be diffed
        // is reported by the caller that reads it.
        if repo.history_cache {
            if let Ok(own) = introduced(repo, commit, first_present(repo, parents)) {
                save(repo.repo.path(), commit, &h, &own);
            }
        }
        Ok(h)
    }

    /// The history of `starts` and all their ancestors.
    pub fn of(
        repo: &Repo,
        starts: &[git2::Oid],
        allow_incomplete: bool,
    ) -> Result<History, SourceError> {
        let full = load(repo)
            .filter(|c| usable(repo, &c.parents, allow_incomplete))
            .map(Cached::full);
        Self::of_with(repo, starts, full.as_ref(), allow_incomplete)
    }

    fn of_with(
        repo: &Repo,
        starts: &[git2::Oid],
        cached: Option<&Full>,
        allow_incomplete: bool,
    ) -> Result<History, SourceError> {
        if let Some(c) = cached {
            if let Some(h) = walk(repo, starts, Some(c), allow_incomplete)? {
                return Ok(h);
            }
        }
        walk(repo, starts, None, allow_incomplete)?.ok_or_else(|| SourceError::Object {
            what: "history".into(),
            reason: "the walk did not finish".into(),
        })
    }
}

/// May a cached history serve this walk? Not when it was made while accepting a cut history and
/// the caller does not accept one; and not when any commit it could not read is readable now
/// (the clone was deepened: the cut is gone, and the marks behind it must count).
fn usable(repo: &Repo, h: &History, allow_incomplete: bool) -> bool {
    h.incomplete.is_empty()
        || (allow_incomplete
            && h.incomplete
                .iter()
                .all(|c| !repo.has_object(*c) || introduced_readable(repo, *c).is_err()))
}

/// Whether the commit `c` and everything it introduced can be read now.
fn introduced_readable(repo: &Repo, c: git2::Oid) -> Result<(), SourceError> {
    let parents = repo.parents(c)?;
    let first = first_present(repo, &parents);
    if parents.iter().any(|p| !repo.has_object(*p)) {
        return Err(SourceError::HistoryMissing {
            object: format!("a parent of commit {c}"),
        });
    }
    introduced(repo, c, first).map(|_| ())
}

/// The first parent, when its object is present (a shallow cut leaves it out).
fn first_present(repo: &Repo, parents: &[git2::Oid]) -> Option<git2::Oid> {
    parents.first().copied().filter(|p| repo.has_object(*p))
}

/// What the cache file holds: the history of `tip`'s parents, and what `tip` itself committed.
struct Cached {
    tip: git2::Oid,
    parents: History,
    own: Vec<(RepoPath, git2::Oid, Option<u64>)>,
}

/// A history usable to cut a walk short: everything up to and including its tip.
struct Full {
    tip: git2::Oid,
    history: History,
}

impl Cached {
    fn full(self) -> Full {
        let mut history = self.parents;
        for (p, blob, v) in self.own {
            history.marks.entry(p).or_default().fold(v, blob);
        }
        history.commits.insert(self.tip);
        Full {
            tip: self.tip,
            history,
        }
    }
}

/// Walks every ancestor of `starts`. With a cache, stops at commits in the cached ancestry and
/// folds in the cached marks; returns `None` when that turned out unsound (the cached tip is not
/// an ancestor of `starts`), so the caller walks again without it.
fn walk(
    repo: &Repo,
    starts: &[git2::Oid],
    cache: Option<&Full>,
    allow_incomplete: bool,
) -> Result<Option<History>, SourceError> {
    let mut h = History::default();
    let mut stack: Vec<git2::Oid> = starts.to_vec();
    let mut skipped_cached = false;
    let mut reached_tip = false;
    while let Some(c) = stack.pop() {
        if !h.commits.insert(c) {
            continue;
        }
        if let Some(cache) = cache {
            if cache.history.commits.contains(&c) {
                skipped_cached = true;
                reached_tip |= c == cache.tip;
                continue;
            }
        }
        if !repo.has_object(c) {
            if allow_incomplete {
                h.incomplete.push(c);
                continue;
            }
            return Err(SourceError::HistoryMissing {
                object: format!("commit {c}: it is not in the object database"),
            });
        }
        let parents = repo.parents(c)?;
        let first = first_present(repo, &parents);
        match introduced(repo, c, first) {
            Ok(own) => {
                for (path, blob, version) in own {
                    h.marks.entry(path).or_default().fold(version, blob);
                }
            }
            // A blob of this commit is absent (a partial clone): judged as a cut in history.
            Err(SourceError::HistoryMissing { .. }) if allow_incomplete => h.incomplete.push(c),
            Err(e) => return Err(e),
        }
        stack.extend(parents);
    }
    if skipped_cached {
        let Some(cache) = cache.filter(|_| reached_tip) else {
            return Ok(None);
        };
        for (p, m) in &cache.history.marks {
            h.marks.entry(p.clone()).or_default().merge(m);
        }
        h.commits.extend(cache.history.commits.iter().copied());
        h.incomplete
            .extend(cache.history.incomplete.iter().copied());
    }
    h.incomplete.sort();
    h.incomplete.dedup();
    Ok(Some(h))
}

/// The documents `commit` committed that its first parent did not have (every document, for a
/// root commit): (path, blob, version). Subtrees with equal ids are skipped, so this costs the
/// size of the change, not of the tree.
fn introduced(
    repo: &Repo,
    commit: git2::Oid,
    first_parent: Option<git2::Oid>,
) -> Result<Vec<(RepoPath, git2::Oid, Option<u64>)>, SourceError> {
    let tree = repo.raw_commit(commit)?.tree;
    let base = match first_parent {
        Some(p) => Some(repo.raw_commit(p)?.tree),
        None => None,
    };
    let mut changed: Vec<(Vec<u8>, git2::Oid)> = Vec::new();
    diff_trees(repo, Vec::new(), tree, base, true, &mut changed)?;
    let mut out = Vec::new();
    for (name, blob) in changed {
        let Ok(path) = RepoPath::from_bytes(&name) else {
            continue;
        };
        let kind = FileKind::of(&path);
        if kind == FileKind::Unsupported || path.approval_target().is_some() {
            continue;
        }
        let version = version_of(repo, kind, blob).map_err(|why| SourceError::HistoryMissing {
            object: format!("blob {blob} ({path} in commit {commit}): {why}"),
        })?;
        out.push((path, blob, version));
    }
    Ok(out)
}

/// Collects the regular files of tree `new` (below `prefix`) whose blob differs from `old`'s at
/// the same path. At the top level only the governed folders are looked at.
fn diff_trees(
    repo: &Repo,
    prefix: Vec<u8>,
    new: git2::Oid,
    old: Option<git2::Oid>,
    top: bool,
    out: &mut Vec<(Vec<u8>, git2::Oid)>,
) -> Result<(), SourceError> {
    if Some(new) == old {
        return Ok(());
    }
    let bad = |what: &[u8], e: super::TreeError| SourceError::Object {
        what: format!("tree {}", String::from_utf8_lossy(what)),
        reason: format!("malformed in the revision's history: {e}"),
    };
    let new_entries = repo.read_tree(new)?.map_err(|e| bad(&prefix, e))?;
    let old_entries: HashMap<Vec<u8>, (Mode, git2::Oid)> = match old {
        // The old side only narrows what is looked at: a malformed old tree means "read all".
        Some(o) => repo
            .read_tree(o)?
            .map(|v| v.into_iter().map(|e| (e.name, (e.mode, e.id))).collect())
            .unwrap_or_default(),
        None => HashMap::new(),
    };
    for e in new_entries {
        if top
            && !GOVERNED_TOPS
                .iter()
                .any(|t| t.as_bytes() == e.name.as_slice())
        {
            continue;
        }
        let mut name = prefix.clone();
        if !name.is_empty() {
            name.push(b'/');
        }
        name.extend_from_slice(&e.name);
        let before = old_entries.get(&e.name).copied();
        match e.mode {
            Mode::Tree => {
                let old_sub = before.filter(|(m, _)| *m == Mode::Tree).map(|(_, id)| id);
                diff_trees(repo, name, e.id, old_sub, false, out)?;
            }
            Mode::File | Mode::Executable => {
                if before.map(|(_, id)| id) != Some(e.id) {
                    out.push((name, e.id));
                }
            }
            Mode::Symlink | Mode::Gitlink => {}
        }
    }
    Ok(())
}

/// The object at `path` below tree `root`, if any (a malformed tree on the way reads as absent:
/// the revision that holds it is refused when judged).
fn lookup(repo: &Repo, root: git2::Oid, path: &str) -> Result<Option<git2::Oid>, SourceError> {
    let mut id = root;
    for seg in path.split('/') {
        let Ok(entries) = repo.read_tree(id)? else {
            return Ok(None);
        };
        match entries.into_iter().find(|e| e.name == seg.as_bytes()) {
            Some(e) => id = e.id,
            None => return Ok(None),
        }
    }
    Ok(Some(id))
}

/// The `version` of the document of `kind` in `blob`, if it parses and has one; `Err` when the
/// blob is absent from the object database (a partial clone, a damaged repository): an
/// unreadable version is history missing, never "no version", or its mark would vanish.
fn version_of(
    repo: &Repo,
    kind: FileKind,
    blob: git2::Oid,
) -> Result<Option<u64>, super::ReadError> {
    if kind == FileKind::Group {
        return Ok(None);
    }
    let bytes = match super::read_blob(repo.repo.path(), blob) {
        Ok(b) => b,
        // Not a blob, or over the size limit: no document, so no version (the revision that
        // holds it is refused when judged).
        Err(super::ReadError::NotAFile | super::ReadError::TooLarge(_)) => return Ok(None),
        Err(e @ super::ReadError::Git(_)) => return Err(e),
    };
    Ok(schema::parse(kind, &bytes)
        .and_then(|v| schema::header(&v))
        .ok()
        .map(|(_, v)| v))
}

fn cache_path(git_dir: &Path) -> std::path::PathBuf {
    git_dir.join("treaty").join("history-v1")
}

/// Reads the cache; `None` when turned off, absent, of another format or version, or damaged in
/// any way.
fn load(repo: &Repo) -> Option<Cached> {
    if !repo.history_cache {
        return None;
    }
    let text = std::fs::read_to_string(cache_path(repo.repo.path())).ok()?;
    let mut lines = text.lines();
    if lines.next()? != format!("{FORMAT} {}", env!("CARGO_PKG_VERSION")) {
        return None;
    }
    let tip = git2::Oid::from_str(lines.next()?.strip_prefix("tip ")?).ok()?;
    let mut h = History::default();
    let mut own = Vec::new();
    for l in lines {
        let (tag, rest) = l.split_once(' ')?;
        match tag {
            "c" => {
                h.commits.insert(git2::Oid::from_str(rest).ok()?);
            }
            "i" => h.incomplete.push(git2::Oid::from_str(rest).ok()?),
            "o" => {
                // o <version|-> <blob> <path>: what the tip committed itself.
                let mut f = rest.splitn(3, ' ');
                let version = match f.next()? {
                    "-" => None,
                    v => Some(v.parse::<u64>().ok()?),
                };
                let blob = git2::Oid::from_str(f.next()?).ok()?;
                own.push((RepoPath::new(f.next()?).ok()?, blob, version));
            }
            "m" => {
                // m <version|-> <blob>[,<blob>…] <path>
                let mut f = rest.splitn(3, ' ');
                let version = match f.next()? {
                    "-" => None,
                    v => Some(v.parse::<u64>().ok()?),
                };
                let blobs = f
                    .next()?
                    .split(',')
                    .map(git2::Oid::from_str)
                    .collect::<Result<Vec<_>, _>>()
                    .ok()?;
                let path = RepoPath::new(f.next()?).ok()?;
                let mark = h.marks.entry(path).or_default();
                for b in blobs {
                    mark.fold(version, b);
                }
            }
            _ => return None,
        }
    }
    Some(Cached {
        tip,
        parents: h,
        own,
    })
}

/// Writes the history of `tip`'s ancestry (`h` for its parents plus `own`, what `tip` itself
/// committed). Failures are ignored: the cache only saves time.
fn save(git_dir: &Path, tip: git2::Oid, h: &History, own: &[(RepoPath, git2::Oid, Option<u64>)]) {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(64 * (h.marks.len() + h.commits.len() + 2));
    let _ = writeln!(s, "{FORMAT} {}", env!("CARGO_PKG_VERSION"));
    let _ = writeln!(s, "tip {tip}");
    for c in &h.commits {
        let _ = writeln!(s, "c {c}");
    }
    for c in &h.incomplete {
        let _ = writeln!(s, "i {c}");
    }
    let line = |s: &mut String, v: Option<u64>, blobs: &[git2::Oid], p: &RepoPath| {
        let v = v.map_or_else(|| "-".to_owned(), |v| v.to_string());
        let b: Vec<String> = blobs.iter().map(git2::Oid::to_string).collect();
        let _ = writeln!(s, "m {v} {} {p}", b.join(","));
    };
    for (p, m) in &h.marks {
        if !m.blobs.is_empty() {
            line(&mut s, m.version, &m.blobs, p);
        }
    }
    for (p, blob, v) in own {
        let v = v.map_or_else(|| "-".to_owned(), |v| v.to_string());
        let _ = writeln!(s, "o {v} {blob} {p}");
    }
    let path = cache_path(git_dir);
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = crate::durable::write(&path, s.as_bytes(), None);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oid(n: u8) -> git2::Oid {
        git2::Oid::from_bytes(&[n; 20]).unwrap()
    }

    #[test]
    fn marks_keep_the_highest_version_and_every_blob_at_it() {
        let mut m = Mark::default();
        m.fold(Some(2), oid(1));
        m.fold(Some(1), oid(2));
        assert_eq!(
            m,
            Mark {
                version: Some(2),
                blobs: vec![oid(1)]
            }
        );
        m.fold(Some(2), oid(3));
        m.fold(Some(2), oid(3));
        assert_eq!(m.blobs, vec![oid(1), oid(3)]);
        m.fold(Some(5), oid(4));
        assert_eq!(
            m,
            Mark {
                version: Some(5),
                blobs: vec![oid(4)]
            }
        );
        // A version always beats none.
        let mut g = Mark::default();
        g.fold(None, oid(7));
        g.fold(Some(1), oid(8));
        assert_eq!(
            g,
            Mark {
                version: Some(1),
                blobs: vec![oid(8)]
            }
        );
        let mut other = Mark::default();
        other.fold(Some(1), oid(9));
        g.merge(&other);
        assert_eq!(g.blobs, vec![oid(8), oid(9)]);
    }
}
