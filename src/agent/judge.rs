//! Whether a fetched commit may be applied, and what to deliver: verification against the trust
//! anchor (with the mirror's verdict cache), the exact snapshot match and the heartbeat (with
//! the mirror's facts cache), rollback and history-rewrite refusals, and the commands from the
//! applied state. It reads the mirror and its caches only; it never delivers or records.

use std::path::Path;

use super::{Applied, Config, Refusal};
use crate::snapshot::{Heartbeat, Snapshot, HEARTBEAT_PATH, SNAPSHOT_PATH};

/// What [`judge`] works out beside verification: the snapshot and its match with the tree, the
/// heartbeat, and the commands. Computed while the same commit is being verified (it reads only
/// the mirror and caches of pure facts) and thrown away unless everything is approved.
struct Beside {
    snap: Result<(Vec<u8>, Snapshot), Refusal>,
    file_mismatches: Vec<String>,
    heartbeat: Option<Heartbeat>,
    plan: Result<crate::emit::Plan, Refusal>,
}

fn open(mirror: &Path) -> Result<crate::source::Repo, Refusal> {
    crate::source::Repo::discover(mirror).map_err(|e| Refusal::Storage(e.to_string()))
}

fn tree_at(mirror: &Path, commit: git2::Oid) -> Result<crate::source::Tree, Refusal> {
    open(mirror)?
        .tree_at(commit)
        .map_err(|e| Refusal::Storage(e.to_string()))
}

/// The tree at `commit` with its history (every version its ancestors committed): the mirror
/// holds full history, so an absent ancestor is a damaged mirror, refused as storage.
fn revision_at(mirror: &Path, commit: git2::Oid) -> Result<crate::source::Tree, Refusal> {
    open(mirror)?
        .revision(commit, false)
        .map(|(t, _)| t)
        .map_err(|e| Refusal::Storage(e.to_string()))
}

fn beside(
    mirror: &Path,
    tree: &crate::source::Tree,
    applied: Option<&Applied>,
    commit: git2::Oid,
    now: crate::time::Instant,
) -> Beside {
    let repo = open(mirror);
    let mut facts = match &repo {
        Ok(r) => crate::facts::FactCache::load(r.repo.path()),
        Err(_) => crate::facts::FactCache::in_memory(),
    };
    let snap = tree
        .file(SNAPSHOT_PATH)
        .ok_or_else(|| Refusal::SnapshotMissing(format!("{SNAPSHOT_PATH} is absent at {commit}")))
        .map(std::borrow::Cow::into_owned)
        .and_then(|b| {
            crate::json::from_slice::<Snapshot>(&b)
                .map(|s| (b, s))
                .map_err(|e| Refusal::SnapshotMissing(format!("{SNAPSHOT_PATH}: {e}")))
        });
    let file_mismatches = match &snap {
        Ok((_, s)) => crate::snapshot::file_mismatches(tree, s, &mut facts),
        Err(_) => Vec::new(),
    };
    let heartbeat = tree
        .file(HEARTBEAT_PATH)
        .and_then(|b| crate::json::from_slice::<Heartbeat>(&b).ok());
    let plan = (|| {
        let Some(a) = applied else {
            return Ok(crate::emit::plan(None, tree, now, &mut facts));
        };
        let old = git2::Oid::from_str(&a.commit)
            .map_err(|e| Refusal::Storage(format!("applied commit: {}", e.message())))?;
        let repo = repo.as_ref().map_err(Clone::clone)?;
        let from = repo
            .tree_at(old)
            .map_err(|e| Refusal::Storage(e.to_string()))?;
        // What was in force before is judged as of the applied commit's time.
        let from_at = repo
            .repo
            .find_commit(old)
            .ok()
            .and_then(|c| crate::time::Instant::from_unix(c.time().seconds()))
            .unwrap_or(now)
            .min(now);
        Ok(crate::emit::plan(
            Some((&from, from_at)),
            tree,
            now,
            &mut facts,
        ))
    })();
    facts.save();
    Beside {
        snap,
        file_mismatches,
        heartbeat,
        plan,
    }
}

/// Verifies `commit` in the mirror and everything about it an agent requires; returns what
/// would be applied and the commands from `applied` to it.
///
/// Verification (with the mirror's verdict cache: unchanged blobs are not judged again) runs
/// beside the snapshot match and the command plan (with the mirror's facts cache: unchanged
/// blobs are not read again), on separate threads; the refusals are then decided in a fixed
/// order, and the commands are released only when nothing was refused.
pub fn judge(
    mirror: &Path,
    commit: git2::Oid,
    applied: Option<&Applied>,
    cfg: &Config,
    now: crate::time::Instant,
    warn: &mut dyn FnMut(String),
) -> Result<(Applied, Vec<serde_json::Value>), Refusal> {
    let repo = open(mirror)?;
    let parent_id = repo.first_parent(commit).ok().flatten();
    let (tree, parent) = rayon::join(
        || revision_at(mirror, commit),
        || parent_id.and_then(|p| tree_at(mirror, p).ok()),
    );
    let tree = tree?;
    let git_dir = repo.repo.path().to_path_buf();
    let (report, side) = rayon::join(
        || {
            let mut cache = crate::cache::Cache::load(&git_dir);
            let report = crate::verify::verify_tree_cached(
                &tree,
                parent.as_ref(),
                &crate::verify::Options {
                    anchor: cfg.anchor.clone(),
                    at: now,
                    exhaustive: false,
                },
                &mut cache,
            );
            cache.save();
            report
        },
        || beside(mirror, &tree, applied, commit, now),
    );
    // An object the mirror could not read, on either thread, means nothing here can be trusted
    // (a file skipped by the snapshot match or the plan would otherwise go unnoticed).
    let unread = tree.read_errors();
    if !unread.is_empty() {
        return Err(Refusal::Storage(format!(
            "the mirror could not read {} object(s); first: {}",
            unread.len(),
            unread[0]
        )));
    }
    if !report.approved {
        let first = report
            .files
            .iter()
            .flat_map(|f| f.findings.iter())
            .chain(report.findings.iter())
            .find(|f| f.is_error())
            .map_or_else(|| "not approved".to_owned(), ToString::to_string);
        return Err(Refusal::Unapproved(format!(
            "{} of {} files unapproved at {commit}; first: {first}",
            report.summary.unapproved, report.summary.files
        )));
    }
    let root_version = report.trust.as_ref().map_or(0, |t| t.root_version);
    let (snap_bytes, snap) = side.snap?;
    let mism: Vec<String> = crate::snapshot::root_mismatch(&snap, root_version)
        .into_iter()
        .chain(side.file_mismatches)
        .collect();
    if !mism.is_empty() {
        return Err(Refusal::SnapshotMismatch(mism.join("; ")));
    }
    let hb = side.heartbeat;
    let fresh = match &hb {
        None => Err(format!("{HEARTBEAT_PATH} is absent or unreadable")),
        Some(h) => {
            crate::snapshot::check_heartbeat(h, &snap_bytes, now, cfg.max_heartbeat_age, cfg.skew)
                .map_err(|e| e.to_string())
        }
    };
    if let Err(why) = fresh {
        if cfg.allow_stale {
            warn(format!(
                "WARNING: --allow-stale: acting on a state whose heartbeat is not fresh ({why}); an attacker could be replaying an old state"
            ));
        } else {
            return Err(Refusal::StaleHeartbeat(why));
        }
    }
    let target = Applied {
        commit: commit.to_string(),
        root_version,
        snapshot_version: snap.version,
        versions: snap
            .files
            .iter()
            .filter_map(|(p, i)| i.version.map(|v| (p.clone(), v)))
            .collect(),
        heartbeat_issued: hb.as_ref().map(|h| h.issued.clone()),
    };
    if let Some(a) = applied {
        if root_version < a.root_version {
            return Err(Refusal::Rollback(format!(
                "root version {root_version} < applied {}",
                a.root_version
            )));
        }
        if snap.version < a.snapshot_version {
            return Err(Refusal::Rollback(format!(
                "snapshot version {} < applied {}",
                snap.version, a.snapshot_version
            )));
        }
        for (p, v) in &a.versions {
            if let Some(n) = target.versions.get(p) {
                if n < v {
                    return Err(Refusal::Rollback(format!("{p}: version {n} < applied {v}")));
                }
            }
        }
        let old = git2::Oid::from_str(&a.commit)
            .map_err(|e| Refusal::Storage(format!("applied commit: {}", e.message())))?;
        let descends = old == commit || repo.repo.graph_descendant_of(commit, old).unwrap_or(false);
        if !descends {
            return Err(Refusal::HistoryRewritten(format!(
                "{commit} does not descend from the applied {old}"
            )));
        }
    }
    let src = crate::emit::Source {
        repository: cfg.repository.clone(),
        commit: commit.to_string(),
        root_version,
        snapshot_version: Some(snap.version),
    };
    Ok((target, side.plan?.render(&src)))
}
