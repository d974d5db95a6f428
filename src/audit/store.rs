//! The log in git: a commit per appended batch or checkpoint on `refs/treaty/audit`, whose tree
//! is the C2SP tlog-tiles layout (`checkpoint`, `tile/<L>/…`, `tile/entries/…`).
//!
//! Owns reading (a full scan that recomputes every hash and compares every stored tile) and
//! writing (only the bundles and tiles an append changes, with a compare-and-swap on the ref
//! so two writers never lose each other's entries). It never touches a branch, the index or
//! the work tree.

use git2::{Oid, Repository};
use rayon::prelude::*;

use super::tiles::{self, WIDTH};
use super::{problem, AuditError, LogTrust, Problem, Report, AUDIT_REF, CHECKPOINT_PATH};
use crate::merkle::{self, Hash};

/// One bundle's leaf hashes and entries, or the problem that stopped it.
type BundleResult = Result<Vec<(Hash, Vec<u8>)>, Problem>;

/// A log read from git and recomputed.
#[derive(Debug, Default)]
pub struct Scanned {
    /// The commit the ref pointed at (None: no log yet, a valid empty log).
    pub commit: Option<Oid>,
    pub tree: merkle::Tree,
    /// Entries of the last, partial bundle (kept for the next append).
    pub tail: Vec<Vec<u8>>,
    pub checkpoint: Option<Vec<u8>>,
    /// Structural problems: unreadable bundles, tiles that differ from the recomputed ones.
    pub problems: Vec<Problem>,
    /// Entries (index, bytes) that the caller may want (only with `keep_entries`).
    pub entries: Vec<Vec<u8>>,
}

struct Reader<'r> {
    repo: &'r Repository,
    tree: Option<git2::Tree<'r>>,
}

impl Reader<'_> {
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, AuditError> {
        let Some(t) = &self.tree else { return Ok(None) };
        match t.get_path(std::path::Path::new(path)) {
            Ok(e) => {
                let blob = e
                    .to_object(self.repo)?
                    .into_blob()
                    .map_err(|_| AuditError::Refused(format!("{path} is not a file")))?;
                Ok(Some(blob.content().to_vec()))
            }
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The object id at `path`, if it is there.
    fn oid(&self, path: &str) -> Result<Option<Oid>, AuditError> {
        let Some(t) = &self.tree else { return Ok(None) };
        match t.get_path(std::path::Path::new(path)) {
            Ok(e) => Ok(Some(e.id())),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The names inside a folder (for partial tiles, whose width is the file name).
    fn list(&self, path: &str) -> Result<Vec<String>, AuditError> {
        let Some(t) = &self.tree else {
            return Ok(vec![]);
        };
        match t.get_path(std::path::Path::new(path)) {
            Ok(e) => {
                let sub = e.to_object(self.repo)?;
                let Some(sub) = sub.as_tree() else {
                    return Ok(vec![]);
                };
                Ok(sub
                    .iter()
                    .filter_map(|x| x.name().ok().map(str::to_owned))
                    .collect())
            }
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(vec![]),
            Err(e) => Err(e.into()),
        }
    }
}

/// Resolves the log's commit: `rev` (any revision) or the ref itself.
pub fn resolve(repo: &Repository, rev: Option<&str>) -> Result<Option<Oid>, AuditError> {
    match rev {
        Some(r) => Ok(Some(
            repo.revparse_single(r)
                .and_then(|o| o.peel_to_commit())
                .map_err(|e| AuditError::Refused(format!("cannot resolve {r:?}: {}", e.message())))?
                .id(),
        )),
        None => resolve_ref(repo, AUDIT_REF),
    }
}

/// The commit a log's ref names (another log than the governance one: an agent's receipts),
/// if the ref exists.
pub fn resolve_ref(repo: &Repository, refname: &str) -> Result<Option<Oid>, AuditError> {
    match repo.find_reference(refname) {
        Ok(r) => Ok(Some(r.peel_to_commit()?.id())),
        Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Reads the log at `commit` and recomputes it: every bundle decoded in order (full ones
/// first, at most one partial last), every entry checked (`trust`, when given), leaf hashes
/// pushed, then every stored tile compared with the recomputed hashes. A stored level-0 hash
/// that differs names its entry.
pub fn scan(
    repo: &Repository,
    commit: Option<Oid>,
    trust: Option<&LogTrust>,
    keep_entries: bool,
) -> Result<Scanned, AuditError> {
    let tree = match commit {
        Some(c) => Some(log_tree(repo, c)?),
        None => None,
    };
    // Every tree of the log is checked as git fsck would before any is read: libgit2 finds
    // names by binary search, so a duplicated or unsorted tile folder could show the verifier
    // other bytes than `git show` shows an auditor.
    if let Some(t) = &tree {
        match crate::source::check_trees(repo, t.id(), None) {
            Ok(Ok(())) => {}
            Ok(Err((path, why))) => {
                return Err(AuditError::Refused(format!(
                    "the log's tree at {path:?} is malformed: {why}"
                )))
            }
            Err(e) => return Err(AuditError::Refused(e.to_string())),
        }
    }
    let r = Reader { repo, tree };
    let mut out = Scanned {
        commit,
        checkpoint: r.read(CHECKPOINT_PATH)?,
        ..Scanned::default()
    };
    // The bundles' object ids, in order (cheap: tree lookups only).
    let mut bundles: Vec<(u64, Oid, bool)> = Vec::new();
    loop {
        let i = bundles.len() as u64;
        if let Some(oid) = r.oid(&tiles::entries_path(i, WIDTH))? {
            bundles.push((i, oid, true));
            continue;
        }
        let dir = format!("{}.p", tiles::entries_path(i, WIDTH));
        let widths = r.list(&dir)?;
        match widths.as_slice() {
            [] => {}
            [w] => {
                if let Some(oid) = r.oid(&format!("{dir}/{w}"))? {
                    bundles.push((i, oid, false));
                }
            }
            _ => out.problems.push(problem(
                Some(i * WIDTH),
                format!(
                    "bundle {i} has several partial versions ({})",
                    widths.join(", ")
                ),
            )),
        }
        break;
    }
    // Read, decode, check and hash on every core; inflating git objects is most of the cost.
    let git_dir = repo.path().to_path_buf();
    let results: Vec<BundleResult> = bundles
        .par_iter()
        .map(|&(i, oid, full)| {
            let bytes = crate::source::read_blob(&git_dir, oid)
                .map_err(|e| problem(Some(i * WIDTH), format!("bundle {i}: unreadable: {e:?}")))?;
            let entries = tiles::bundle_decode(&bytes)
                .map_err(|e| problem(Some(i * WIDTH), format!("bundle {i}: {e}")))?;
            if full && entries.len() as u64 != WIDTH {
                return Err(problem(
                    Some(i * WIDTH),
                    format!("bundle {i} is a full bundle with {} entries", entries.len()),
                ));
            }
            if !full && (entries.is_empty() || entries.len() as u64 >= WIDTH) {
                return Err(problem(
                    Some(i * WIDTH),
                    format!("bundle {i}: bad partial width"),
                ));
            }
            let keep = keep_entries || !full;
            entries
                .iter()
                .enumerate()
                .map(|(k, e)| {
                    let idx = i * WIDTH + k as u64;
                    if let Some(t) = trust {
                        super::check_entry(e, t).map_err(|why| problem(Some(idx), why))?;
                    }
                    Ok((
                        merkle::leaf_hash(e),
                        if keep { e.to_vec() } else { Vec::new() },
                    ))
                })
                .collect()
        })
        .collect();
    for (res, &(_, _, full)) in results.into_iter().zip(&bundles) {
        match res {
            Ok(v) => {
                for (h, e) in v {
                    out.tree.push(h);
                    if !full {
                        out.tail.push(e.clone());
                    }
                    if keep_entries {
                        out.entries.push(e);
                    }
                }
            }
            Err(p) => {
                out.problems.push(p);
                return Ok(out);
            }
        }
    }
    // Every stored tile must equal the recomputed hashes (read on every core).
    let size = out.tree.len() as u64;
    let mut wanted: Vec<(u32, u64, u64, String)> = Vec::new();
    let mut level: u32 = 0;
    loop {
        let count = size >> (level * tiles::HEIGHT);
        if count == 0 {
            break;
        }
        for t in 0..count.div_ceil(WIDTH) {
            let width = (count - t * WIDTH).min(WIDTH);
            wanted.push((level, t, width, tiles::tile_path(level, t, width)));
        }
        level += 1;
    }
    let mut located = Vec::with_capacity(wanted.len());
    for (level, t, width, path) in wanted {
        match r.oid(&path)? {
            Some(oid) => located.push((level, t, width, path, oid)),
            None => {
                out.problems
                    .push(problem(None, format!("tile {path} is missing")));
                return Ok(out);
            }
        }
    }
    let tree = &out.tree;
    let mut bad: Vec<(u32, Problem)> = located
        .par_iter()
        .filter_map(|(level, t, width, path, oid)| {
            let hashes = tree.level((level * tiles::HEIGHT) as usize);
            let lo = (t * WIDTH) as usize;
            let want = &hashes[lo..lo + *width as usize];
            let got = match crate::source::read_blob(&git_dir, *oid)
                .map_err(|e| format!("{e:?}"))
                .and_then(|b| tiles::tile_decode(&b).map_err(|e| e.to_string()))
            {
                Ok(g) => g,
                Err(e) => return Some((*level, problem(None, format!("tile {path}: {e}")))),
            };
            (0..want.len())
                .find(|&k| got.get(k) != Some(&want[k]))
                .map(|k| {
                    let first = (t * WIDTH + k as u64) << (level * tiles::HEIGHT);
                    (
                        *level,
                        problem(
                            Some(first),
                            format!(
                                "the stored hash in {path} differs from the recomputed one (the entry or the tile was altered)"
                            ),
                        ),
                    )
                })
        })
        .collect();
    // Report the most specific finding first (level 0 names the entry), deterministically.
    bad.sort_by_key(|(level, p)| (*level, p.index.is_none(), p.index));
    if let Some((_, p)) = bad.into_iter().next() {
        out.problems.push(p);
    }
    Ok(out)
}

/// The tree of a log commit: only `checkpoint` and `tile/`, and at least one of them. Every
/// reader calls this first, so a ref moved to any other commit is refused rather than read as
/// an empty (and so trivially valid) log.
fn log_tree<'r>(repo: &'r Repository, commit: Oid) -> Result<git2::Tree<'r>, AuditError> {
    let tree = repo.find_commit(commit)?.tree()?;
    let not_a_log = |found: String| AuditError::NotALog {
        commit: commit.to_string(),
        found,
    };
    let names: Vec<String> = tree
        .iter()
        .map(|e| String::from_utf8_lossy(e.name_bytes()).into_owned())
        .collect();
    let foreign: Vec<String> = names
        .iter()
        .filter(|n| {
            n.as_str() != crate::audit::CHECKPOINT_PATH
                && n.as_str() != crate::audit::CHECKPOINT_TIMESTAMP_PATH
                && n.as_str() != "tile"
        })
        .take(5)
        .map(|n| format!("{n:?}"))
        .collect();
    if names.is_empty() {
        return Err(not_a_log("nothing".into()));
    }
    if !foreign.is_empty() {
        return Err(not_a_log(foreign.join(", ")));
    }
    // `checkpoint` a regular file, `tile` a folder of tlog-tiles names down to regular files:
    // anything else (a `tile` file, a symlink, a submodule, stray names) is not this layout.
    for e in tree.iter() {
        let name = String::from_utf8_lossy(e.name_bytes()).into_owned();
        let ok = match name.as_str() {
            "checkpoint" | "checkpoint.tst" => e.filemode() == 0o100644,
            _ => e.filemode() == 0o040000,
        };
        if !ok {
            return Err(not_a_log(format!("{name:?} of mode {:o}", e.filemode())));
        }
    }
    if let Some(t) = tree.get_name("tile") {
        let sub = repo.find_tree(t.id())?;
        let mut stack = vec![(String::from("tile"), sub, 0u32)];
        let mut seen = 0usize;
        while let Some((at, t, depth)) = stack.pop() {
            for e in t.iter() {
                seen += 1;
                let n = String::from_utf8_lossy(e.name_bytes()).into_owned();
                let path = format!("{at}/{n}");
                if depth > 16 || seen > 10_000_000 {
                    return Err(not_a_log(format!(
                        "{path:?}, deeper or larger than any log"
                    )));
                }
                if e.filemode() == 0o100644 && crate::audit::tiles::parse_path(&path).is_none() {
                    return Err(not_a_log(format!("{path:?}, which is no tlog-tiles path")));
                }
                match e.filemode() {
                    0o040000 => stack.push((path, repo.find_tree(e.id())?, depth + 1)),
                    0o100644 => {}
                    m => return Err(not_a_log(format!("{path:?} of mode {m:o}"))),
                }
            }
        }
    }
    Ok(tree)
}

/// A log commit holds a checkpoint or at least one entry: a commit that holds neither is not
/// an empty log (an empty log is no ref at all) but something else under the log's name.
fn refuse_empty(commit: Option<Oid>, size: u64, has_checkpoint: bool) -> Result<(), AuditError> {
    match commit {
        Some(c) if size == 0 && !has_checkpoint => Err(AuditError::NotALog {
            commit: c.to_string(),
            found: "no checkpoint and no entries".into(),
        }),
        _ => Ok(()),
    }
}

/// Full verification of the log at `commit` (or the ref): recompute, check the newest
/// checkpoint's signatures and root, and, with `old`, that the log extends it.
pub fn verify(
    repo: &Repository,
    commit: Option<Oid>,
    trust: &LogTrust,
    old: Option<&[u8]>,
) -> Result<(Report, Scanned), AuditError> {
    let s = scan(repo, commit, Some(trust), false)?;
    let mut problems = s.problems.clone();
    let mut notes = Vec::new();
    let size = s.tree.len() as u64;
    refuse_empty(commit, size, s.checkpoint.is_some())?;
    let mut info = None;
    let mut newest = None;
    match &s.checkpoint {
        None if size == 0 => notes.push("empty log (no entries, no checkpoint)".into()),
        None => problems.push(problem(
            None,
            format!("{size} entries but no signed checkpoint vouches for them (`treaty audit checkpoint`)"),
        )),
        Some(b) => match super::check_checkpoint(b, trust) {
            Err(e) => problems.push(problem(None, e)),
            Ok((cp, i)) => {
                if cp.size > size {
                    problems.push(problem(
                        None,
                        format!(
                            "the checkpoint claims {} entries, the log holds {size} (entries removed)",
                            cp.size
                        ),
                    ));
                } else if s.tree.root_at(cp.size as usize) != Some(cp.root) {
                    problems.push(problem(
                        None,
                        format!(
                            "the checkpoint's root does not match the first {} entries (entries changed, removed, reordered or inserted)",
                            cp.size
                        ),
                    ));
                } else if cp.size < size {
                    notes.push(format!(
                        "{} entries after the checkpoint are not yet vouched for",
                        size - cp.size
                    ));
                }
                newest = Some(cp);
                info = Some(i);
            }
        },
    }
    if let Some(old) = old {
        match super::check_checkpoint(old, trust) {
            Err(e) => problems.push(super::not_extension(format!("the old checkpoint: {e}"))),
            Ok((oc, _)) => match &newest {
                None if oc.size == 0 => {}
                None => problems.push(super::not_extension(format!(
                    "the old checkpoint vouches for {} entries, but the log has no checkpoint now",
                    oc.size
                ))),
                Some(nc) => {
                    if let Err(e) = super::check_extension(&s.tree, &oc, nc) {
                        problems.push(super::not_extension(e));
                    }
                }
            },
        }
    }
    let report = Report {
        ok: problems.is_empty(),
        size,
        root: hex::encode(s.tree.root()),
        checkpoint: info,
        problems,
        notes,
    };
    Ok((report, s))
}

/// Appends `entries` (canonical bytes) in one commit (compare-and-swap on the ref); returns
/// (old size, new size, commit). Reads only the right edge of the stored tree
/// ([`load_for_append`]: O(log n) tiles), pushes the new leaves onto it, and writes the bundles
/// and the tiles they touch. Refuses to extend a log whose edge does not check out.
pub fn append(
    repo: &Repository,
    entries: &[Vec<u8>],
    message: &str,
) -> Result<(u64, u64, Oid), AuditError> {
    let edge = load_for_append(repo, resolve(repo, None)?)?;
    append_to(repo, &edge, entries, message)
}

/// [`append`] onto an edge the caller already loaded (from the ref, with [`load_for_append`]);
/// the ref must still point at `edge.commit`, or the compare-and-swap refuses.
pub fn append_to(
    repo: &Repository,
    s: &Edge,
    entries: &[Vec<u8>],
    message: &str,
) -> Result<(u64, u64, Oid), AuditError> {
    append_to_ref(repo, AUDIT_REF, s, entries, message)
}

/// [`append_to`] on the log at `refname`.
pub fn append_to_ref(
    repo: &Repository,
    refname: &str,
    s: &Edge,
    entries: &[Vec<u8>],
    message: &str,
) -> Result<(u64, u64, Oid), AuditError> {
    let base = s.commit;
    if let Some(p) = s.problems.first() {
        return Err(AuditError::Refused(format!(
            "the log does not verify, so it will not be extended: {p}"
        )));
    }
    for e in entries {
        if e.len() > tiles::MAX_ENTRY {
            return Err(AuditError::Refused(format!(
                "an entry of {} bytes is over the {} limit",
                e.len(),
                tiles::MAX_ENTRY
            )));
        }
    }
    let old = s.size;
    // Push each leaf onto the peaks (a binary counter): every subtree it completes is a new
    // hash, and those at heights 8·L are the new entries of tile level L, in index order.
    let mut peaks = s.peaks.clone();
    let mut fresh: Vec<Vec<Hash>> = Vec::new();
    let record = |height: u32, h: Hash, fresh: &mut Vec<Vec<Hash>>| {
        if height.is_multiple_of(tiles::HEIGHT) {
            let level = (height / tiles::HEIGHT) as usize;
            if fresh.len() <= level {
                fresh.resize(level + 1, Vec::new());
            }
            fresh[level].push(h);
        }
    };
    for e in entries {
        push_leaf(&mut peaks, merkle::leaf_hash(e), |h, n| {
            record(h, n, &mut fresh)
        });
    }
    let new = old + entries.len() as u64;
    let mut upd = git2::build::TreeUpdateBuilder::new();
    // Entry bundles from the one that held the old tail.
    let mut pending: Vec<&[u8]> = s.tail.iter().map(Vec::as_slice).collect();
    let mut bundle = old / WIDTH;
    if !old.is_multiple_of(WIDTH) {
        upd.remove(tiles::entries_path(bundle, old % WIDTH));
    }
    for e in entries {
        pending.push(e);
        if pending.len() as u64 == WIDTH {
            let b = tiles::bundle_encode(pending.drain(..)).map_err(|source| AuditError::Tile {
                path: tiles::entries_path(bundle, WIDTH),
                source,
            })?;
            upd.upsert(
                tiles::entries_path(bundle, WIDTH),
                repo.blob(&b)?,
                git2::FileMode::Blob,
            );
            bundle += 1;
        }
    }
    if !pending.is_empty() {
        let w = pending.len() as u64;
        let b = tiles::bundle_encode(pending).map_err(|source| AuditError::Tile {
            path: tiles::entries_path(bundle, w),
            source,
        })?;
        upd.upsert(
            tiles::entries_path(bundle, w),
            repo.blob(&b)?,
            git2::FileMode::Blob,
        );
    }
    // Hash tiles at every level the append touched: the old partial tile's hashes, then the
    // new ones, cut into tiles from the old partial tile on.
    for (level, added) in fresh.iter().enumerate() {
        if added.is_empty() {
            continue;
        }
        let level32 = level as u32;
        let shift = level32 * tiles::HEIGHT;
        let c_old = old >> shift;
        if !c_old.is_multiple_of(WIDTH) {
            upd.remove(tiles::tile_path(level32, c_old / WIDTH, c_old % WIDTH));
        }
        let mut hashes: Vec<Hash> = s.partial.get(level).cloned().unwrap_or_default();
        hashes.extend_from_slice(added);
        let first = c_old / WIDTH;
        for (i, chunk) in hashes.chunks(WIDTH as usize).enumerate() {
            upd.upsert(
                tiles::tile_path(level32, first + i as u64, chunk.len() as u64),
                repo.blob(&chunk.concat())?,
                git2::FileMode::Blob,
            );
        }
    }
    let commit = commit_update(repo, refname, base, &mut upd, message)?;
    Ok((old, new, commit))
}

/// The right edge of a stored log: what an append needs, and the root.
#[derive(Debug, Default, Clone)]
pub struct Edge {
    /// The commit the ref pointed at (None: no log yet, a valid empty log).
    pub commit: Option<Oid>,
    pub size: u64,
    /// The roots of the perfect subtrees that make up the tree (one per set bit of `size`),
    /// largest first, with their heights: what new leaves are merged with.
    pub peaks: Vec<(u32, Hash)>,
    /// For each tile level, the hashes of its last, partial tile (empty when the level ends on
    /// a full tile): rewritten, extended, by the next append.
    pub partial: Vec<Vec<Hash>>,
    /// Entries of the last, partial bundle.
    pub tail: Vec<Vec<u8>>,
    pub checkpoint: Option<Vec<u8>>,
    /// Why the log must not be extended.
    pub problems: Vec<Problem>,
}

impl Edge {
    /// RFC 9162 MTH of the whole log: the peaks folded from the right.
    pub fn root(&self) -> Hash {
        let mut it = self.peaks.iter().rev();
        let Some((_, last)) = it.next() else {
            return merkle::empty_root();
        };
        it.fold(*last, |acc, (_, left)| merkle::node_hash(left, &acc))
    }
}

/// Pushes a leaf onto `peaks` (largest first), merging equal heights like a binary counter;
/// `completed` sees every node this completes, the leaf included, as (height, hash).
pub fn push_leaf(peaks: &mut Vec<(u32, Hash)>, leaf: Hash, mut completed: impl FnMut(u32, Hash)) {
    let (mut node, mut height) = (leaf, 0u32);
    completed(height, node);
    while peaks.last().is_some_and(|(ph, _)| *ph == height) {
        let Some((_, left)) = peaks.pop() else { break };
        node = merkle::node_hash(&left, &node);
        height += 1;
        completed(height, node);
    }
    peaks.push((height, node));
}

/// Stored hashes, read a tile at a time (each at most once) for a log of `size` leaves.
struct TileCache<'a, 'r> {
    r: &'a Reader<'r>,
    size: u64,
    tiles: std::collections::HashMap<(u32, u64), Vec<Hash>>,
}

impl TileCache<'_, '_> {
    /// Tile `t` of tile level `level` (full, or partial with the width `size` implies).
    fn tile(&mut self, level: u32, t: u64) -> Result<&[Hash], Problem> {
        if !self.tiles.contains_key(&(level, t)) {
            let count = self.size >> (level * tiles::HEIGHT);
            let width = count.saturating_sub(t * WIDTH).min(WIDTH);
            let path = tiles::tile_path(level, t, width);
            let bytes = self
                .r
                .read(&path)
                .map_err(|e| problem(None, format!("{path}: {e}")))?
                .ok_or_else(|| problem(None, format!("tile {path} is missing")))?;
            let hashes = tiles::tile_decode(&bytes)
                .map_err(|e| problem(None, format!("tile {path}: {e}")))?;
            if hashes.len() as u64 != width {
                return Err(problem(
                    None,
                    format!("tile {path} holds {} hashes", hashes.len()),
                ));
            }
            self.tiles.insert((level, t), hashes);
        }
        Ok(self.tiles.get(&(level, t)).map_or(&[], Vec::as_slice))
    }

    /// The hash of the perfect subtree of 2^height leaves starting at leaf `index << height`:
    /// stored in a tile at heights 8·L, otherwise folded from the tile below it.
    fn node(&mut self, height: u32, index: u64) -> Result<Hash, Problem> {
        let (level, k) = (height / tiles::HEIGHT, height % tiles::HEIGHT);
        let lo = index << k;
        let t = lo / WIDTH;
        let off = (lo % WIDTH) as usize;
        let tile = self.tile(level, t)?;
        let hashes = tile
            .get(off..off + (1usize << k))
            .ok_or_else(|| problem(None, format!("tile {level}/{t} is too short")))?;
        Ok(merkle::root_of(hashes))
    }

    /// RFC 9162 §2.1.1 MTH of leaves [a, b) from stored hashes.
    fn mth(&mut self, a: u64, b: u64) -> Result<Hash, Problem> {
        let n = b - a;
        if n == 0 {
            return Ok(merkle::empty_root());
        }
        if n.is_power_of_two() && a.is_multiple_of(n) {
            return self.node(n.trailing_zeros(), a >> n.trailing_zeros());
        }
        let mut k = 1u64;
        while k << 1 < n {
            k <<= 1;
        }
        let left = self.mth(a, a + k)?;
        let right = self.mth(a + k, b)?;
        Ok(merkle::node_hash(&left, &right))
    }
}

/// More full tiles than any real log has (2^48 entries): a tree claiming more is refused before
/// any size arithmetic could overflow.
const MAX_FULL_TILES: u64 = 1 << 40;

/// How many full tiles (or bundles) `path(i)` names: the first `i` with none, found by
/// exponential then binary search (they are contiguous from 0 in a log that verifies; a log
/// with holes gets a count whose edge then fails its checks).
fn full_count(r: &Reader, path: impl Fn(u64) -> String) -> Result<u64, AuditError> {
    let exists = |i: u64| r.oid(&path(i)).map(|o| o.is_some());
    if !exists(0)? {
        return Ok(0);
    }
    let mut hi = 1u64;
    while exists(hi)? {
        hi *= 2;
        if hi > MAX_FULL_TILES {
            return Err(AuditError::Refused(format!(
                "the log claims more than {MAX_FULL_TILES} full tiles ({}), so it is not extended",
                path(hi / 2)
            )));
        }
    }
    let mut lo = hi / 2; // exists(lo), !exists(hi)
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if exists(mid)? {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(hi)
}

/// The width of the partial tile (or bundle) in folder `dir` (`None` when there is none).
fn partial_width(r: &Reader, dir: &str) -> Result<Result<Option<u64>, Problem>, AuditError> {
    let names = r.list(dir)?;
    Ok(match names.as_slice() {
        [] => Ok(None),
        [w] => w
            .parse::<u64>()
            .ok()
            .filter(|n| (1..WIDTH).contains(n) && !w.starts_with('0'))
            .map(Some)
            .ok_or_else(|| problem(None, format!("{dir}/{w} is not a partial width"))),
        _ => Err(problem(None, format!("{dir} has several partial versions"))),
    })
}

/// What an append needs, read in O(log n) lookups: the size (full level-0 tiles counted by
/// search, plus the partial one), the peaks and each level's partial tile (a tile or two per
/// level), and the entries of the last partial bundle. Checked so an append never extends a
/// damaged log: bundles end where tiles end, the tail bundle's entries hash to the tail tile,
/// and the newest checkpoint's root is the root of the stored tiles at its size. Everything
/// else is `audit verify`'s job (a full scan).
pub fn load_for_append(repo: &Repository, commit: Option<Oid>) -> Result<Edge, AuditError> {
    let tree = match commit {
        Some(c) => Some(log_tree(repo, c)?),
        None => None,
    };
    let r = Reader { repo, tree };
    let mut out = Edge {
        commit,
        checkpoint: r.read(CHECKPOINT_PATH)?,
        ..Edge::default()
    };
    let full_tiles = full_count(&r, |i| tiles::tile_path(0, i, WIDTH))?;
    let full_bundles = full_count(&r, |i| tiles::entries_path(i, WIDTH))?;
    if full_tiles != full_bundles {
        out.problems.push(problem(
            Some(full_tiles.min(full_bundles) * WIDTH),
            format!("{full_tiles} full level-0 tiles but {full_bundles} full entry bundles"),
        ));
        return Ok(out);
    }
    let tile_dir = format!("{}.p", tiles::tile_path(0, full_tiles, WIDTH));
    let bundle_dir = format!("{}.p", tiles::entries_path(full_tiles, WIDTH));
    let (tw, bw) = (
        partial_width(&r, &tile_dir)?,
        partial_width(&r, &bundle_dir)?,
    );
    let width = match (tw, bw) {
        (Ok(t), Ok(b)) if t == b => t.unwrap_or(0),
        (Err(e), _) | (_, Err(e)) => {
            out.problems.push(Problem {
                index: Some(full_tiles * WIDTH),
                ..e
            });
            return Ok(out);
        }
        (Ok(t), Ok(b)) => {
            out.problems.push(problem(
                Some(full_tiles * WIDTH),
                format!("the last tile holds {t:?} hashes but the last bundle {b:?} entries"),
            ));
            return Ok(out);
        }
    };
    out.size = full_tiles * WIDTH + width;
    refuse_empty(commit, out.size, out.checkpoint.is_some())?;
    let mut tc = TileCache {
        r: &r,
        size: out.size,
        tiles: std::collections::HashMap::new(),
    };
    let edge = (|| -> Result<(), Problem> {
        let mut start = 0u64;
        for height in (0..64u32).rev() {
            if out.size & (1u64 << height) != 0 {
                out.peaks.push((height, tc.node(height, start >> height)?));
                start += 1u64 << height;
            }
        }
        let mut level = 0u32;
        loop {
            let count = out.size >> (level * tiles::HEIGHT);
            if count == 0 {
                break;
            }
            out.partial.push(if count.is_multiple_of(WIDTH) {
                Vec::new()
            } else {
                tc.tile(level, count / WIDTH)?.to_vec()
            });
            level += 1;
        }
        Ok(())
    })();
    if let Err(e) = edge {
        out.problems.push(e);
        return Ok(out);
    }
    if width > 0 {
        let path = tiles::entries_path(full_tiles, width);
        let entries = match r.read(&path)?.map(|b| {
            tiles::bundle_decode(&b).map(|v| v.into_iter().map(<[u8]>::to_vec).collect::<Vec<_>>())
        }) {
            Some(Ok(e)) => e,
            Some(Err(e)) => {
                out.problems
                    .push(problem(Some(full_tiles * WIDTH), format!("{path}: {e}")));
                return Ok(out);
            }
            None => {
                out.problems.push(problem(
                    Some(full_tiles * WIDTH),
                    format!("{path} is missing"),
                ));
                return Ok(out);
            }
        };
        let tail_tile = out.partial.first().cloned().unwrap_or_default();
        let ok = entries.len() == tail_tile.len()
            && entries
                .iter()
                .zip(&tail_tile)
                .all(|(e, h)| merkle::leaf_hash(e) == *h);
        if !ok {
            out.problems.push(problem(
                Some(full_tiles * WIDTH),
                format!("the last bundle does not match tile {tile_dir}/{width}"),
            ));
            return Ok(out);
        }
        out.tail = entries;
    }
    if let Some(cp) = out
        .checkpoint
        .as_deref()
        .and_then(|b| crate::note::Note::parse(b).ok())
        .and_then(|n| crate::note::Checkpoint::parse(&n.text).ok())
    {
        let matches = if cp.size == out.size {
            Ok(out.root() == cp.root)
        } else if cp.size > out.size {
            Ok(false)
        } else {
            tc.mth(0, cp.size).map(|r| r == cp.root)
        };
        match matches {
            Ok(true) => {}
            Ok(false) => out.problems.push(problem(
                None,
                "the stored tiles do not match the checkpoint's root",
            )),
            Err(e) => out.problems.push(problem(None, e)),
        }
    }
    Ok(out)
}

/// The newest entry of the log at `edge` (`None` for an empty log): from the last partial
/// bundle, or the last full one. For writers that must not append the same fact twice after a
/// crash (the agent's `agent.apply`).
pub fn last_entry(repo: &Repository, edge: &Edge) -> Result<Option<Vec<u8>>, AuditError> {
    let head = edge.commit;
    if let Some(e) = edge.tail.last() {
        return Ok(Some(e.clone()));
    }
    if edge.size == 0 {
        return Ok(None);
    }
    let tree = match head {
        Some(c) => Some(repo.find_commit(c)?.tree()?),
        None => None,
    };
    let r = Reader { repo, tree };
    let path = tiles::entries_path(edge.size / WIDTH - 1, WIDTH);
    let bytes = r
        .read(&path)?
        .ok_or_else(|| AuditError::Refused(format!("{path} is missing")))?;
    let entries = tiles::bundle_decode(&bytes).map_err(|source| AuditError::Tile {
        path: path.clone(),
        source,
    })?;
    Ok(entries.last().map(|e| e.to_vec()))
}

/// Writes `checkpoint` (a signed note) in one commit.
pub fn put_checkpoint(repo: &Repository, note: &[u8], message: &str) -> Result<Oid, AuditError> {
    put_checkpoint_ref(repo, AUDIT_REF, note, None, message)
}

/// [`put_checkpoint`] on the log at `refname`.
pub fn put_checkpoint_ref(
    repo: &Repository,
    refname: &str,
    note: &[u8],
    timestamp: Option<&[u8]>,
    message: &str,
) -> Result<Oid, AuditError> {
    let base = resolve_ref(repo, refname)?;
    let mut upd = git2::build::TreeUpdateBuilder::new();
    upd.upsert(CHECKPOINT_PATH, repo.blob(note)?, git2::FileMode::Blob);
    // A token always goes with the checkpoint it stamps: none leaves no stale one behind.
    match timestamp {
        Some(t) => {
            upd.upsert(
                crate::audit::CHECKPOINT_TIMESTAMP_PATH,
                repo.blob(t)?,
                git2::FileMode::Blob,
            );
        }
        None => {
            let stale = match base {
                Some(c) => repo
                    .find_commit(c)?
                    .tree()?
                    .get_name(crate::audit::CHECKPOINT_TIMESTAMP_PATH)
                    .is_some(),
                None => false,
            };
            if stale {
                upd.remove(crate::audit::CHECKPOINT_TIMESTAMP_PATH);
            }
        }
    }
    commit_update(repo, refname, base, &mut upd, message)
}

/// The timestamp token stored beside the checkpoint at `commit`, if any.
pub fn checkpoint_timestamp(repo: &Repository, commit: Oid) -> Result<Option<Vec<u8>>, AuditError> {
    let tree = log_tree(repo, commit)?;
    let id = tree
        .get_name(crate::audit::CHECKPOINT_TIMESTAMP_PATH)
        .map(|e| e.id());
    match id {
        Some(id) => Ok(Some(repo.find_blob(id)?.content().to_vec())),
        None => Ok(None),
    }
}

fn commit_update(
    repo: &Repository,
    refname: &str,
    base: Option<Oid>,
    upd: &mut git2::build::TreeUpdateBuilder,
    message: &str,
) -> Result<Oid, AuditError> {
    let baseline = match base {
        Some(c) => repo.find_commit(c)?.tree()?,
        None => {
            let empty = repo.treebuilder(None)?.write()?;
            repo.find_tree(empty)?
        }
    };
    let tree_oid = upd.create_updated(repo, &baseline)?;
    let tree = repo.find_tree(tree_oid)?;
    let sig = repo
        .signature()
        .or_else(|_| git2::Signature::now("treaty", "treaty@localhost"))?;
    let parents: Vec<git2::Commit<'_>> = match base {
        Some(c) => vec![repo.find_commit(c)?],
        None => vec![],
    };
    let refs: Vec<&git2::Commit<'_>> = parents.iter().collect();
    let oid = repo.commit(None, &sig, &sig, message, &tree, &refs)?;
    // Compare-and-swap: a concurrent writer makes this fail instead of losing entries.
    match base {
        Some(old) => {
            repo.reference_matching(refname, oid, true, old, message)
                .map_err(|e| {
                    AuditError::Refused(format!(
                        "{refname} moved while writing ({}); run the command again",
                        e.message()
                    ))
                })?;
        }
        None => {
            repo.reference(refname, oid, false, message).map_err(|e| {
                AuditError::Refused(format!(
                    "{refname} appeared while writing ({}); run the command again",
                    e.message()
                ))
            })?;
        }
    }
    Ok(oid)
}

/// Reads a checkpoint from a file or from a revision of the log (`REV:checkpoint`).
pub fn read_checkpoint_arg(repo: &Repository, arg: &str) -> Result<Vec<u8>, AuditError> {
    if std::path::Path::new(arg).is_file() {
        return std::fs::read(arg).map_err(|source| AuditError::Io {
            path: arg.to_owned(),
            source,
        });
    }
    let c = resolve(repo, Some(arg))?;
    let r = Reader {
        repo,
        tree: match c {
            Some(c) => Some(repo.find_commit(c)?.tree()?),
            None => None,
        },
    };
    r.read(CHECKPOINT_PATH)?
        .ok_or_else(|| AuditError::Refused(format!("{arg} has no checkpoint")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: u64) -> Vec<u8> {
        format!("{{\"kind\":\"test\",\"n\":{i},\"time\":\"2026-01-01T00:00:00Z\"}}").into_bytes()
    }

    fn fresh_repo() -> (tempfile::TempDir, Repository) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let repo = Repository::init_bare(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        (dir, repo)
    }

    /// Appends over the edge alone write exactly the tiles a full recomputation expects, at
    /// sizes that cross tile boundaries at levels 0, 1 and 2 (65,536 leaves).
    #[test]
    fn appends_from_the_edge_agree_with_a_full_scan_across_tile_boundaries() {
        let (_d, repo) = fresh_repo();
        let mut leaves = Vec::new();
        let mut n = 0u64;
        for batch in [1u64, 254, 1, 1, 300, 512, 3, 65_000, 5, 1] {
            let entries: Vec<Vec<u8>> = (n..n + batch).map(entry).collect();
            leaves.extend(entries.iter().map(|e| merkle::leaf_hash(e)));
            let (old, new, _) = append(&repo, &entries, "test").unwrap_or_else(|e| panic!("{e}"));
            assert_eq!((old, new), (n, n + batch));
            n += batch;
            let head = resolve(&repo, None).unwrap_or_else(|e| panic!("{e}"));
            let full = scan(&repo, head, None, false).unwrap_or_else(|e| panic!("{e}"));
            assert!(full.problems.is_empty(), "at {n}: {:?}", full.problems);
            assert_eq!(full.tree.len() as u64, n);
            let edge = load_for_append(&repo, head).unwrap_or_else(|e| panic!("{e}"));
            assert!(edge.problems.is_empty(), "at {n}: {:?}", edge.problems);
            assert_eq!(edge.size, n);
            assert_eq!(edge.root(), merkle::root_of(&leaves), "at {n}");
            assert_eq!(edge.root(), full.tree.root());
        }
        assert!(n > 65_536, "level 2 reached");
    }

    /// The newest entry comes from the partial bundle, or from the last full one when the log
    /// ends on a bundle boundary.
    #[test]
    fn the_last_entry_is_found_on_and_off_bundle_boundaries() {
        let (_d, repo) = fresh_repo();
        let last = |repo: &Repository| {
            let edge = load_for_append(repo, resolve(repo, None).unwrap_or_else(|e| panic!("{e}")))
                .unwrap_or_else(|e| panic!("{e}"));
            last_entry(repo, &edge).unwrap_or_else(|e| panic!("{e}"))
        };
        assert_eq!(last(&repo), None);
        let mut n = 0u64;
        for batch in [3u64, 253, 1, 255] {
            let entries: Vec<Vec<u8>> = (n..n + batch).map(entry).collect();
            append(&repo, &entries, "t").unwrap_or_else(|e| panic!("{e}"));
            n += batch;
            assert_eq!(last(&repo), Some(entry(n - 1)), "at {n}");
        }
    }

    fn checkpoint(repo: &Repository, size: u64, root: Hash) {
        let key = crate::crypto::SigningKey::generate("log").unwrap_or_else(|e| panic!("{e}"));
        let cp = crate::note::Checkpoint {
            origin: "test".into(),
            size,
            root,
            extensions: vec![],
        };
        let note = crate::note::sign(&cp.text(), "test", &key).unwrap_or_else(|e| panic!("{e}"));
        put_checkpoint(repo, note.encode().as_bytes(), "cp").unwrap_or_else(|e| panic!("{e}"));
    }

    /// The edge is checked before it is extended: a checkpoint whose root the stored tiles do
    /// not give (at its size, older or current) refuses the append; the honest one does not.
    #[test]
    fn an_edge_that_disagrees_with_the_checkpoint_is_not_extended() {
        let (_d, repo) = fresh_repo();
        let first: Vec<Vec<u8>> = (0..300).map(entry).collect();
        append(&repo, &first, "a").unwrap_or_else(|e| panic!("{e}"));
        let leaves: Vec<Hash> = first.iter().map(|e| merkle::leaf_hash(e)).collect();
        // An honest checkpoint at an older size (appends happen between checkpoints).
        checkpoint(&repo, 200, merkle::root_of(&leaves[..200]));
        append(&repo, &[entry(300)], "b").unwrap_or_else(|e| panic!("{e}"));
        // A checkpoint naming another root at that size: refused.
        checkpoint(&repo, 250, merkle::root_of(&leaves[..249]));
        let err = append(&repo, &[entry(301)], "c").err();
        assert!(
            err.as_ref()
                .is_some_and(|e| e.to_string().contains("checkpoint's root")),
            "{err:?}"
        );
        // And one from the future (a size the log does not have).
        checkpoint(&repo, 10_000, merkle::root_of(&leaves));
        assert!(append(&repo, &[entry(301)], "d").is_err());
    }

    /// A tail bundle that does not hash to the tail tile, or bundles that end elsewhere than the
    /// tiles, stop the append.
    #[test]
    fn a_damaged_tail_is_not_extended() {
        let (_d, repo) = fresh_repo();
        let batch: Vec<Vec<u8>> = (0..260).map(entry).collect();
        append(&repo, &batch, "a").unwrap_or_else(|e| panic!("{e}"));
        let head = resolve(&repo, None).unwrap_or_else(|e| panic!("{e}"));
        // Rewrite the tail bundle (4 entries) with other bytes.
        let mut upd = git2::build::TreeUpdateBuilder::new();
        let forged = tiles::bundle_encode(
            [entry(7), entry(8), entry(9), entry(10)]
                .iter()
                .map(Vec::as_slice),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        upd.upsert(
            tiles::entries_path(1, 4),
            repo.blob(&forged).unwrap_or_else(|e| panic!("{e}")),
            git2::FileMode::Blob,
        );
        commit_update(&repo, AUDIT_REF, head, &mut upd, "forge").unwrap_or_else(|e| panic!("{e}"));
        let err = append(&repo, &[entry(260)], "b").err();
        assert!(
            err.as_ref()
                .is_some_and(|e| e.to_string().contains("does not match tile")),
            "{err:?}"
        );
        // Bundles that run past the tiles.
        let (_d2, repo2) = fresh_repo();
        append(&repo2, &batch, "a").unwrap_or_else(|e| panic!("{e}"));
        let head = resolve(&repo2, None).unwrap_or_else(|e| panic!("{e}"));
        let mut upd = git2::build::TreeUpdateBuilder::new();
        upd.remove(tiles::tile_path(0, 0, WIDTH));
        commit_update(&repo2, AUDIT_REF, head, &mut upd, "drop a tile")
            .unwrap_or_else(|e| panic!("{e}"));
        let err = append(&repo2, &[entry(260)], "b").err();
        assert!(
            err.as_ref().is_some_and(|e| e.to_string().contains("full")),
            "{err:?}"
        );
    }
}

#[cfg(test)]
mod hostile_tests {
    use super::*;

    /// A hostile log's tree can name tiles far apart (0, 1, 2, 4, … 2^k): the count search
    /// then lands on a size whose edge is missing, or on an implausible size — refused either
    /// way, never a panic or an overflow.
    #[test]
    fn sparse_tiles_far_apart_are_refused_without_overflow() {
        for top in [4u32, 45] {
            let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
            let repo = Repository::init_bare(dir.path()).unwrap_or_else(|e| panic!("{e}"));
            let tile = repo
                .blob(&[7u8; 32 * WIDTH as usize])
                .unwrap_or_else(|e| panic!("{e}"));
            let bundle = repo.blob(b"").unwrap_or_else(|e| panic!("{e}"));
            let mut upd = git2::build::TreeUpdateBuilder::new();
            let mut idx = vec![0u64];
            idx.extend((0..top).map(|k| 1u64 << k));
            for i in idx {
                upd.upsert(tiles::tile_path(0, i, WIDTH), tile, git2::FileMode::Blob);
                upd.upsert(tiles::entries_path(i, WIDTH), bundle, git2::FileMode::Blob);
            }
            commit_update(&repo, AUDIT_REF, None, &mut upd, "hostile")
                .unwrap_or_else(|e| panic!("{e}"));
            let r = append(&repo, &[b"{}".to_vec()], "x");
            assert!(r.is_err(), "top {top}: {r:?}");
        }
    }
}

#[cfg(test)]
mod edge_props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The peaks of any size, folded from the right, give RFC 9162's MTH; pushing more
        /// leaves onto them (as `append` does) gives the MTH of the longer tree.
        #[test]
        fn peaks_fold_to_the_rfc_root_and_extend(n in 0usize..3000, more in 0usize..600) {
            let leaves: Vec<Hash> = (0..n + more)
                .map(|i| merkle::leaf_hash(&(i as u64).to_be_bytes()))
                .collect();
            let mut tree = merkle::Tree::new();
            for l in &leaves[..n] {
                tree.push(*l);
            }
            let mut edge = Edge::default();
            let mut start = 0usize;
            for h in (0..usize::BITS).rev() {
                if n & (1 << h) != 0 {
                    let node = tree.level(h as usize)[start >> h];
                    edge.peaks.push((h, node));
                    start += 1 << h;
                }
            }
            prop_assert_eq!(edge.root(), merkle::root_of(&leaves[..n]));
            let mut completed = 0usize;
            for l in &leaves[n..] {
                push_leaf(&mut edge.peaks, *l, |_, _| completed += 1);
            }
            // Every leaf, and every node a leaf closes: 2·more minus the change in peak count.
            prop_assert_eq!(
                completed + edge.peaks.len(),
                2 * more + n.count_ones() as usize
            );
            prop_assert_eq!(edge.root(), merkle::root_of(&leaves));
        }
    }
}
