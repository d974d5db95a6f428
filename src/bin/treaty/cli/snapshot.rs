//! `treaty snapshot` and `treaty heartbeat`: the signed state snapshot and its short-lived
//! freshness statement (TUF's snapshot and timestamp roles), written to `state/` and signed.

use anyhow::Context;
use std::path::PathBuf;

use super::output::{say, tell};
use super::Exit;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Writes state/snapshot.json for the approved state at REV (refused unless approved): every\ngoverned document with its version and digests, and the root version; then signs it with\nKEY, a member of the group the root names for the `snapshot` role. Commit it.\n\nExample (CI, after every merge):\n  treaty snapshot --key ci.key && treaty heartbeat --key ci.key --ttl 24h && git add state && git commit -m snapshot"
)]
pub struct SnapshotArgs {
    #[arg(long, default_value = "HEAD")]
    rev: String,
    #[arg(long)]
    key: PathBuf,
    #[arg(long = "repo", value_name = "DIR")]
    repo: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Writes state/heartbeat.json naming the current state/snapshot.json's digest and an expiry\nTTL from now, and signs it. Agents refuse a state whose heartbeat is older than their\n--max-heartbeat-age (a freeze). Refresh it on a schedule shorter than that.\n\nExample:\n  treaty heartbeat --key ci.key --ttl 24h"
)]
pub struct HeartbeatArgs {
    #[arg(long)]
    key: PathBuf,
    /// How long the heartbeat is valid: 30m, 24h, 7d.
    #[arg(long, default_value = "24h")]
    ttl: String,
    #[arg(long = "repo", value_name = "DIR")]
    repo: Option<PathBuf>,
}

/// Refuses, before anything is written, a key that is not in the snapshot role's group.
fn check_signer(
    root: &std::path::Path,
    key_path: &std::path::Path,
    rel: &str,
) -> anyhow::Result<bool> {
    let key = treaty::crypto::SigningKey::load(key_path, || super::keys::passphrase(false))?;
    let tree = treaty::source::tree_from_dir(root)?;
    let rp = treaty::path::RepoPath::new(rel)?;
    // No usable root (or no delegation) is a finding about the repository's content (exit 1),
    // as it is for `treaty snapshot` and `treaty verify`.
    let groups = match treaty::sign::requirements(&tree, &rp) {
        Ok((_, _, g)) => g,
        Err(e) => {
            tell!("treaty: refused: {e}");
            return Ok(false);
        }
    };
    let kid = key.classical_public().key_id();
    if groups.iter().any(|g| {
        g.members
            .iter()
            .any(|m| m.keys_with_ids().any(|(_, id)| id == kid))
    }) {
        return Ok(true);
    }
    tell!(
        "treaty: refused: {} is not in the group that approves {rel} ({}), the root's `snapshot` role",
        key.member_id,
        groups.iter().map(|g| g.name.as_str()).collect::<Vec<_>>().join(", ")
    );
    Ok(false)
}

fn workdir(repo: &Option<PathBuf>) -> anyhow::Result<(treaty::source::Repo, PathBuf)> {
    let dir = match repo {
        Some(d) => d.clone(),
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    let r = treaty::source::Repo::discover(&dir)?;
    let w = r
        .workdir()
        .context("a snapshot is written to a work tree; this repository has none")?;
    Ok((r, w))
}

pub fn snapshot(a: SnapshotArgs) -> anyhow::Result<Exit> {
    let (repo, root) = workdir(&a.repo)?;
    let commit = repo.resolve(&a.rev)?;
    let (tree, parent) = repo.tree_and_parent(commit)?;
    let report = treaty::verify::verify_tree(
        &tree,
        parent.as_ref(),
        &treaty::verify::Options {
            anchor: treaty::trust::Anchor::Repository,
            at: treaty::time::now(),
            exhaustive: false,
        },
    );
    // The snapshot role approves removals (docs/spec.md § Removal): a state whose only
    // objection is documents its ancestors had and it lacks is exactly what a new snapshot
    // vouches for, so those findings do not block it; they are listed instead.
    let removed: Vec<&str> = report
        .findings
        .iter()
        .filter(|f| f.code == treaty::diag::Code::GovernedFileDeleted)
        .filter_map(|f| f.path.as_deref())
        .collect();
    let only_removals = report.trust.as_ref().is_some_and(|t| t.chain_ok)
        && report.files.iter().all(|v| v.approved)
        && report
            .findings
            .iter()
            .filter(|f| f.is_error())
            .all(|f| f.code == treaty::diag::Code::GovernedFileDeleted);
    if !report.approved && !only_removals {
        tell!(
            "treaty: refused: the state at {} is not approved; a snapshot vouches only for approved states (`treaty verify --rev {}`)",
            a.rev, a.rev
        );
        return Ok(Exit::Findings);
    }
    if !check_signer(&root, &a.key, treaty::snapshot::SNAPSHOT_PATH)? {
        return Ok(Exit::Findings);
    }
    for p in &removed {
        // A validated RepoPath: no control characters can reach the terminal.
        say!("approves the removal of {p}");
    }
    let rv = report.trust.map_or(0, |t| t.root_version);
    let snap = treaty::snapshot::build(&tree, rv);
    let path = root.join(treaty::snapshot::SNAPSHOT_PATH);
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    write_signed(
        &path,
        &treaty::snapshot::to_bytes(&snap),
        &a.key,
        &root,
        || {
            say!(
                "wrote {} version {} ({} files, root v{rv})",
                treaty::snapshot::SNAPSHOT_PATH,
                snap.version,
                snap.files.len()
            )
        },
    )
}

/// Writes a state document and signs it: both or neither. If signing fails (a full disk, a
/// refused key), the previous document is put back, so the work tree never holds a new
/// snapshot or heartbeat beside the old one's signature.
fn write_signed(
    path: &std::path::Path,
    bytes: &[u8],
    key: &std::path::Path,
    root: &std::path::Path,
    said: impl FnOnce(),
) -> anyhow::Result<Exit> {
    let before = match std::fs::read(path) {
        Ok(b) => Some(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    treaty::scaffold::write_atomic(path, bytes)?;
    said();
    let signed = super::sign::sign_paths(
        &[path.to_path_buf()],
        key,
        None,
        Some(root),
        None,
        false,
        false,
    );
    if !matches!(signed, Ok(Exit::Ok)) {
        let restored = match &before {
            Some(b) => treaty::scaffold::write_atomic(path, b).map_err(anyhow::Error::from),
            None => std::fs::remove_file(path).map_err(anyhow::Error::from),
        };
        match restored {
            Ok(()) => tell!(
                "treaty: {} is as it was (not signed, so not written)",
                path.display()
            ),
            Err(e) => tell!("treaty: could not put {} back: {e}", path.display()),
        }
    }
    signed
}

pub fn heartbeat(a: HeartbeatArgs) -> anyhow::Result<Exit> {
    let (repo, root) = workdir(&a.repo)?;
    let ttl = treaty::snapshot::parse_ttl(&a.ttl).map_err(anyhow::Error::msg)?;
    if !check_signer(&root, &a.key, treaty::snapshot::HEARTBEAT_PATH)? {
        return Ok(Exit::Findings);
    }
    let snap_path = root.join(treaty::snapshot::SNAPSHOT_PATH);
    let snap = std::fs::read(&snap_path).with_context(|| {
        format!(
            "cannot read {} (run `treaty snapshot` first)",
            snap_path.display()
        )
    })?;
    let head = repo.tree_at(repo.resolve("HEAD")?)?;
    let hb = match treaty::snapshot::heartbeat(&head, &snap, treaty::time::now(), ttl) {
        Ok(h) => h,
        Err(m) => {
            tell!("treaty: refused: {m}");
            return Ok(Exit::Findings);
        }
    };
    let path = root.join(treaty::snapshot::HEARTBEAT_PATH);
    write_signed(
        &path,
        &treaty::snapshot::to_bytes(&hb),
        &a.key,
        &root,
        || {
            say!(
                "wrote {} version {} for snapshot v{}, expires {}",
                treaty::snapshot::HEARTBEAT_PATH,
                hb.version,
                hb.snapshot_version,
                hb.expires
            )
        },
    )
}
