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
        None => match repo.find_reference(AUDIT_REF) {
            Ok(r) => Ok(Some(r.peel_to_commit()?.id())),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        },
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
        Some(c) => Some(repo.find_commit(c)?.tree()?),
        None => None,
    };
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
                .and_then(|b| tiles::tile_decode(&b))
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
            Err(e) => problems.push(problem(None, format!("the old checkpoint: {e}"))),
            Ok((oc, _)) => match &newest {
                None if oc.size == 0 => {}
                None => problems.push(problem(
                    None,
                    format!(
                        "the old checkpoint vouches for {} entries, but the log has no checkpoint now",
                        oc.size
                    ),
                )),
                Some(nc) => {
                    if let Err(e) = super::check_extension(&s.tree, &oc, nc) {
                        problems.push(problem(None, e));
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

/// Appends `entries` (canonical bytes) in one commit; returns (old size, new size, commit).
/// Refuses to extend a log that does not recompute cleanly.
pub fn append(
    repo: &Repository,
    entries: &[Vec<u8>],
    message: &str,
) -> Result<(u64, u64, Oid), AuditError> {
    let base = resolve(repo, None)?;
    let s = load_for_append(repo, base)?;
    if let Some(p) = s.problems.first() {
        return Err(AuditError::Refused(format!(
            "the log does not verify, so it will not be extended: {p}"
        )));
    }
    let mut tree = s.tree;
    let old = tree.len() as u64;
    for e in entries {
        if e.len() > tiles::MAX_ENTRY {
            return Err(AuditError::Refused(format!(
                "an entry of {} bytes is over the {} limit",
                e.len(),
                tiles::MAX_ENTRY
            )));
        }
        tree.push(merkle::leaf_hash(e));
    }
    let new = tree.len() as u64;
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
            let b = tiles::bundle_encode(pending.drain(..)).map_err(AuditError::Refused)?;
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
        let b = tiles::bundle_encode(pending).map_err(AuditError::Refused)?;
        upd.upsert(
            tiles::entries_path(bundle, w),
            repo.blob(&b)?,
            git2::FileMode::Blob,
        );
    }
    // Hash tiles at every level the append touched.
    let mut level: u32 = 0;
    loop {
        let shift = level * tiles::HEIGHT;
        let (c_old, c_new) = (old >> shift, new >> shift);
        if c_new == 0 {
            break;
        }
        if c_new != c_old {
            if !c_old.is_multiple_of(WIDTH) {
                upd.remove(tiles::tile_path(level, c_old / WIDTH, c_old % WIDTH));
            }
            let hashes = tree.level(shift as usize);
            for t in (c_old / WIDTH)..c_new.div_ceil(WIDTH) {
                let width = (c_new - t * WIDTH).min(WIDTH);
                let lo = (t * WIDTH) as usize;
                let bytes: Vec<u8> = hashes[lo..lo + width as usize].concat();
                upd.upsert(
                    tiles::tile_path(level, t, width),
                    repo.blob(&bytes)?,
                    git2::FileMode::Blob,
                );
            }
        }
        level += 1;
    }
    let commit = commit_update(repo, base, &mut upd, message)?;
    Ok((old, new, commit))
}

/// What an append needs, read cheaply: the leaf hashes from the level-0 tiles (32 bytes an
/// entry, not the entries), the entries of the last partial bundle, and the checks that keep
/// an append from extending a damaged log: bundles and tiles agree in count, the tail bundle's
/// entries hash to the tail tile, and the checkpoint's root matches. Entry-level checks are
/// `audit verify`'s job.
pub fn load_for_append(repo: &Repository, commit: Option<Oid>) -> Result<Scanned, AuditError> {
    let tree = match commit {
        Some(c) => Some(repo.find_commit(c)?.tree()?),
        None => None,
    };
    let r = Reader { repo, tree };
    let mut out = Scanned {
        commit,
        checkpoint: r.read(CHECKPOINT_PATH)?,
        ..Scanned::default()
    };
    let mut t: u64 = 0;
    loop {
        let full = tiles::tile_path(0, t, WIDTH);
        let (bytes, partial) = match r.read(&full)? {
            Some(b) => (b, false),
            None => {
                let dir = format!("{full}.p");
                match r.list(&dir)?.as_slice() {
                    [] => break,
                    [w] => match r.read(&format!("{dir}/{w}"))? {
                        Some(b) => (b, true),
                        None => break,
                    },
                    _ => {
                        out.problems.push(problem(
                            None,
                            format!("tile {full} has several partial versions"),
                        ));
                        return Ok(out);
                    }
                }
            }
        };
        let hashes = match tiles::tile_decode(&bytes) {
            Ok(h) if partial || h.len() as u64 == WIDTH => h,
            _ => {
                out.problems.push(problem(
                    Some(t * WIDTH),
                    format!("tile {full} is malformed"),
                ));
                return Ok(out);
            }
        };
        let bundle = if partial {
            r.read(&tiles::entries_path(t, hashes.len() as u64))?
        } else {
            r.read(&tiles::entries_path(t, WIDTH))?.map(|_| Vec::new())
        };
        let Some(bundle) = bundle else {
            out.problems.push(problem(
                Some(t * WIDTH),
                format!("tile {full} has no matching entry bundle"),
            ));
            return Ok(out);
        };
        if partial {
            let entries = match tiles::bundle_decode(&bundle) {
                Ok(e) => e,
                Err(e) => {
                    out.problems
                        .push(problem(Some(t * WIDTH), format!("bundle {t}: {e}")));
                    return Ok(out);
                }
            };
            let ok = entries.len() == hashes.len()
                && entries
                    .iter()
                    .zip(&hashes)
                    .all(|(e, h)| merkle::leaf_hash(e) == *h);
            if !ok {
                out.problems.push(problem(
                    Some(t * WIDTH),
                    format!("the last bundle does not match tile {full}"),
                ));
                return Ok(out);
            }
            out.tail = entries.into_iter().map(<[u8]>::to_vec).collect();
        }
        for h in hashes {
            out.tree.push(h);
        }
        if partial {
            break;
        }
        t += 1;
    }
    if let Some(cp) = out
        .checkpoint
        .as_deref()
        .and_then(|b| crate::note::Note::parse(b).ok())
        .and_then(|n| crate::note::Checkpoint::parse(&n.text).ok())
    {
        let size = usize::try_from(cp.size).unwrap_or(usize::MAX);
        if out.tree.root_at(size) != Some(cp.root) {
            out.problems.push(problem(
                None,
                "the stored tiles do not match the checkpoint's root",
            ));
        }
    }
    Ok(out)
}

/// Writes `checkpoint` (a signed note) in one commit.
pub fn put_checkpoint(repo: &Repository, note: &[u8], message: &str) -> Result<Oid, AuditError> {
    let base = resolve(repo, None)?;
    let mut upd = git2::build::TreeUpdateBuilder::new();
    upd.upsert(CHECKPOINT_PATH, repo.blob(note)?, git2::FileMode::Blob);
    commit_update(repo, base, &mut upd, message)
}

fn commit_update(
    repo: &Repository,
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
            repo.reference_matching(AUDIT_REF, oid, true, old, message)
                .map_err(|e| {
                    AuditError::Refused(format!(
                        "{AUDIT_REF} moved while writing ({}); run the command again",
                        e.message()
                    ))
                })?;
        }
        None => {
            repo.reference(AUDIT_REF, oid, false, message)
                .map_err(|e| {
                    AuditError::Refused(format!(
                        "{AUDIT_REF} appeared while writing ({}); run the command again",
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
