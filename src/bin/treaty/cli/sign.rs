//! `treaty sign`: add this member's signatures to `PATH.sig`.

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};

use super::output::{say, tell};
use super::Exit;
use treaty::crypto::SigningKey;
use treaty::path::RepoPath;
use treaty::sign::SignError;

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  treaty sign treaties/AURORA-AKASH-001.json --key ~/keys/alice.key
  # air-gapped: a copy of the file and of the repository's keys/ and schemas/
  treaty sign ./AURORA-AKASH-001.json --as treaties/AURORA-AKASH-001.json --repo ./gov-copy --key alice.key")]
pub struct Args {
    /// Files to approve.
    #[arg(required_unless_present = "pending", conflicts_with = "pending")]
    paths: Vec<PathBuf>,
    /// Sign what awaits this key's signature (`treaty status --pending --key KEY`): each file's
    /// change since its last approval is shown and you answer for each one; there is no
    /// "yes to all" (a threshold exists so that each signer reviews).
    #[arg(long, conflicts_with = "as_path")]
    pending: bool,
    /// Your private key file (from `treaty key gen`).
    #[arg(long)]
    key: PathBuf,
    /// Sign a copy outside the repository as this repository-relative path (one PATH only).
    #[arg(long = "as")]
    as_path: Option<String>,
    /// The governance repository (or a copy of it) whose trust files decide who must sign.
    /// Default: the repository containing each PATH.
    #[arg(long)]
    repo: Option<PathBuf>,
    /// Approval expiry (RFC 3339). Default: keep the existing envelope's, else none.
    #[arg(long)]
    expires: Option<String>,
    /// With --expires: start a new approval even though it drops other members' signatures that
    /// are valid today for the same bytes (the first signer of a renewal). Without it, that is
    /// refused.
    #[arg(long, requires = "expires")]
    restart: bool,
    /// When this signature brings the file to its threshold, append an `approval.threshold`
    /// entry (signed with the same key) to the repository's audit log.
    #[arg(long)]
    audit: bool,
}

/// Is `rp` approved in `tree` (trust from the same tree)?
fn approved_in(tree: &treaty::source::Tree, rp: &RepoPath) -> bool {
    treaty::verify::judge_one(tree, &treaty::trust::Anchor::Repository, rp.as_str())
        .is_some_and(|f| f.approved)
}

/// Appends `approval.threshold` for `rel` to the audit log of the repository at `root`.
fn log_threshold(root: &Path, rel: &str, bytes: &[u8], key: &SigningKey) -> anyhow::Result<u64> {
    let git = git2::Repository::discover(root)
        .with_context(|| format!("{}: not a git repository", root.display()))?;
    let entry = serde_json::json!({
        "kind": "approval.threshold",
        "time": treaty::time::format(treaty::time::now()),
        "subject": { "path": rel, "digest": format!("sha256:{}", treaty::crypto::sha256_hex(bytes)) },
        "verdict": "approved",
        "details": { "completed_by": key.member_id },
    });
    let entry = treaty::audit::sign_entry(entry, key)?;
    let b = treaty::audit::entry_bytes(&entry)?;
    let (i, _, _) =
        treaty::audit::store::append(&git, &[b], &format!("audit: {rel} reached its threshold"))?;
    Ok(i)
}

pub(crate) fn locate(path: &Path, repo: Option<&Path>) -> anyhow::Result<(PathBuf, String)> {
    let abs =
        std::fs::canonicalize(path).with_context(|| format!("cannot read {}", path.display()))?;
    let root = match repo {
        Some(r) => {
            std::fs::canonicalize(r).with_context(|| format!("cannot read {}", r.display()))?
        }
        None => {
            let start = abs.parent().unwrap_or(Path::new("/"));
            let repo = treaty::source::Repo::discover(start)?;
            let wd = repo
                .workdir()
                .context("the repository has no work tree (bare); sign in a checkout")?;
            std::fs::canonicalize(&wd).with_context(|| format!("cannot read {}", wd.display()))?
        }
    };
    let rel = abs.strip_prefix(&root).with_context(|| {
        format!(
            "{} is not inside {}; use --as to sign a copy",
            path.display(),
            root.display()
        )
    })?;
    let rel = rel
        .to_str()
        .context("path is not valid UTF-8")?
        .replace(std::path::MAIN_SEPARATOR, "/");
    Ok((root, rel))
}

pub fn run(a: Args) -> anyhow::Result<Exit> {
    if a.pending {
        return sign_pending(&a);
    }
    sign_paths(
        &a.paths,
        &a.key,
        a.as_path.as_deref(),
        a.repo.as_deref(),
        a.expires.as_deref(),
        a.audit,
        a.restart,
    )
}

/// `treaty sign --pending`: the files awaiting this key, each shown as its change since its
/// last approval, each signed only on an explicit "y" for that file.
fn sign_pending(a: &Args) -> anyhow::Result<Exit> {
    use std::io::BufRead as _;
    let start = match &a.repo {
        Some(d) => d.clone(),
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    let repo = treaty::source::Repo::discover(&start)?;
    let wd = repo
        .workdir()
        .context("the repository is bare; signatures are collected in a work tree")?;
    // The private key first: a wrong file (a public key, a wrong passphrase) fails before any
    // review is asked of the signer.
    SigningKey::load(&a.key, || super::keys::passphrase(false))?;
    let member = super::keys::member_for_key(&a.key, &wd)?;
    let tree = treaty::source::tree_from_dir(&wd)?;
    let opts = treaty::verify::Options {
        anchor: treaty::trust::Anchor::Repository,
        at: treaty::time::now(),
        exhaustive: true,
    };
    let report = treaty::verify::verify_tree(&tree, None, &opts);
    let pending = treaty::verify::pending_for(&report, &member);
    if pending.is_empty() {
        say!("nothing awaits a signature from {member}");
        return Ok(Exit::Ok);
    }
    say!("{} file(s) await a signature from {member}:", pending.len());
    for p in &pending {
        say!("  {}", p.path);
    }
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let mut exit = Exit::Ok;
    let (mut signed, mut declined, mut refused) = (0, 0, 0);
    for p in &pending {
        say!("");
        let now = tree.file(&p.path).map(|b| b.to_vec()).unwrap_or_default();
        match treaty::review::last_approved(&repo, &p.path)? {
            Some((commit, before)) => {
                let c = commit.to_string();
                say!("{}: change since its last approval ({}):", p.path, &c[..12]);
                let d = treaty::review::diff(
                    &before,
                    &now,
                    &format!("{} (approved at {})", p.path, &c[..12]),
                    &format!("{} (now)", p.path),
                );
                if d.is_empty() {
                    say!("  (no change to the document: only its approval needs signatures)");
                }
                for l in d.lines() {
                    say!("  {l}");
                }
            }
            None => {
                say!("{}: never approved before; its whole content:", p.path);
                for l in String::from_utf8_lossy(&now).lines() {
                    say!("  {l}");
                }
            }
        }
        super::output::prompt(&format!("sign {} as {member}? [y/N] ", p.path));
        let answer = match lines.next() {
            Some(Ok(l)) => l,
            Some(Err(e)) => return Err(e).context("cannot read the answer from standard input"),
            None => String::new(),
        };
        if matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
            let path = wd.join(&p.path);
            // A refusal (an expired approval without --expires, say) is counted as refused.
            if sign_paths(
                std::slice::from_ref(&path),
                &a.key,
                None,
                a.repo.as_deref(),
                a.expires.as_deref(),
                a.audit,
                a.restart,
            )? == Exit::Findings
            {
                exit = Exit::Findings;
                refused += 1;
            } else {
                signed += 1;
            }
        } else {
            say!("{}: not signed", p.path);
            declined += 1;
        }
    }
    say!("signed {signed}, declined {declined}, refused {refused}");
    Ok(exit)
}

/// Signs each of `paths` with the key file `key_path`; see [`Args`] for the rest.
pub fn sign_paths(
    paths: &[PathBuf],
    key_path: &Path,
    as_path: Option<&str>,
    repo: Option<&Path>,
    expires: Option<&str>,
    audit: bool,
    restart: bool,
) -> anyhow::Result<Exit> {
    if as_path.is_some() && paths.len() != 1 {
        bail!("--as names one file; sign one PATH at a time with it");
    }
    if let Some(e) = expires {
        let t = treaty::time::parse(e)
            .map_err(anyhow::Error::msg)
            .context("--expires")?;
        if t <= treaty::time::now() {
            bail!("--expires {e} is not in the future: an approval that has already expired approves nothing");
        }
    }
    let key = SigningKey::load(key_path, || super::keys::passphrase(false))?;
    let mut exit = Exit::Ok;
    for path in paths {
        let (root, rel) = match as_path {
            Some(rel) => {
                // The repository is FILE's (the copy travels with its repository's keys/ and
                // schemas/), never whatever repository the shell happens to be in.
                let root = match repo {
                    Some(r) => r.to_path_buf(),
                    None => {
                        let abs = std::fs::canonicalize(path)
                            .with_context(|| format!("cannot read {}", path.display()))?;
                        treaty::source::Repo::discover(abs.parent().unwrap_or(Path::new("/")))
                            .ok()
                            .and_then(|r| r.workdir())
                            .with_context(|| format!("{} is not inside a repository: --as needs --repo DIR, a copy of the governance repository's keys/ and schemas/", path.display()))?
                    }
                };
                (root, rel.to_owned())
            }
            None => locate(path, repo)?,
        };
        let rp = RepoPath::new(&rel)
            .with_context(|| format!("{rel:?} is not a valid repository path"))?;
        let tree = treaty::source::tree_from_dir(&root)?;
        // The document and its envelope are read as `verify --worktree` reads them: never
        // through a symlink, never from a FIFO or device (which would block), never past the
        // size limit. What cannot be read so is refused, and nothing is written.
        let read = |p: &Path, what: &str| -> anyhow::Result<Result<Option<Vec<u8>>, String>> {
            let meta = match std::fs::symlink_metadata(p) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Ok(None)),
                Err(e) => return Err(e).with_context(|| format!("cannot read {}", p.display())),
            };
            Ok(match treaty::source::entry_on_disk(p, &meta)? {
                treaty::source::Entry::File(b) => Ok(Some(b)),
                treaty::source::Entry::Symlink => Err(format!("{what} {} is a symlink; refusing to follow it (verify refuses symlinks under governed folders too)", p.display())),
                treaty::source::Entry::TooLarge(n) => Err(format!("{what} {} is {n} bytes, over the 16 MiB limit", p.display())),
                _ => Err(format!("{what} {} is not a regular file", p.display())),
            })
        };
        let bytes = match read(path, "the document")? {
            Ok(Some(b)) => b,
            Ok(None) => bail!("cannot read {}: no such file", path.display()),
            Err(why) => {
                tell!("treaty: refused: {why}");
                exit = Exit::Findings;
                continue;
            }
        };
        let sig_file = PathBuf::from(format!("{}.sig", path.display()));
        let existing = match read(&sig_file, "the envelope")? {
            Ok(b) => b,
            Err(why) => {
                tell!("treaty: refused: {why}");
                exit = Exit::Findings;
                continue;
            }
        };
        match treaty::sign::sign_with(
            &tree,
            &rp,
            &bytes,
            existing.as_deref(),
            &key,
            expires.map(str::to_owned),
            restart,
        ) {
            Ok(s) => {
                let was_approved = audit && approved_in(&tree, &rp);
                treaty::scaffold::write_atomic(&sig_file, &s.envelope)?;
                if audit && !was_approved {
                    let now = treaty::source::tree_from_dir(&root)?;
                    if approved_in(&now, &rp) {
                        let i = log_threshold(&root, &rel, &bytes, &key)?;
                        say!("{rel}: reached its threshold; logged as audit entry {i}");
                    }
                }
                // A root approval is kept beside its numbered copy too, so the chain stays whole.
                if rel == treaty::trust::ROOT_PATH && as_path.is_none() {
                    if let Ok(r) =
                        treaty::json::from_slice::<treaty::governance::model::Root>(&bytes)
                    {
                        let kept = root.join(format!("keys/roots/{}.json.sig", r.version));
                        if root.join(format!("keys/roots/{}.json", r.version)).exists() {
                            treaty::scaffold::write_atomic(&kept, &s.envelope)?;
                        }
                    }
                }
                let groups: Vec<&str> = s
                    .groups
                    .iter()
                    .filter(|(_, is)| *is)
                    .map(|(g, _)| g.as_str())
                    .collect();
                if s.already_signed {
                    say!(
                        "{rel}: already signed by {} ({}); unchanged",
                        key.member_id,
                        groups.join(", ")
                    );
                } else {
                    say!(
                        "{rel}: signed by {} for {}; kept {} signature entr{} from others (a hybrid member has two)",
                        key.member_id,
                        groups.join(", "),
                        s.kept,
                        if s.kept == 1 { "y" } else { "ies" }
                    );
                }
                if s.dropped_stale > 0 {
                    say!(
                        "{rel}: dropped {} signature entr{} made for another statement (other content, version, groups or expiry); those members must sign again",
                        s.dropped_stale,
                        if s.dropped_stale == 1 { "y" } else { "ies" }
                    );
                }
            }
            Err(e @ SignError::Trust { .. }) => return Err(e.into()),
            Err(e) => {
                tell!("treaty: refused: {e}");
                exit = Exit::Findings;
            }
        }
    }
    Ok(exit)
}
