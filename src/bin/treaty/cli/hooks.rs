//! `treaty hooks install`: a git pre-push hook that runs the gate locally.

use anyhow::{bail, Context};
use std::path::PathBuf;

use super::output::{say, tell};
use super::Exit;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Install a pre-push hook that runs `treaty gate` on what is being pushed.
    #[command(
        after_help = "The hook judges each pushed branch against what the remote has (or, for a new branch,\nagainst its merge base with $TREATY_GATE_BASE, default origin/main; with no such base, e.g. the\nfirst push to an empty remote, the whole pushed state must verify). Pending approvals do not\nblock a push; everything else does. Skip once with `git push --no-verify`.\n\nAlso installs the `*.sig` merge driver (`treaty merge-sig`) in .git/config and\n.git/info/attributes: run it in every clone."
    )]
    Install {
        /// Replace an existing pre-push hook.
        #[arg(long)]
        force: bool,
        #[arg(long = "repo", value_name = "DIR")]
        repo: Option<PathBuf>,
    },
}

/// `treaty merge-sig`: git's merge driver for `*.sig` (installed by `treaty hooks install`).
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Git runs this during a merge when both branches changed one PATH.sig (two members signed
the same file on two branches). It writes the union of both sides' valid signatures over the
same statement to OURS and exits 0; different statements (the document itself differs) are a
conflict (exit 1) to settle by hand. Installed by `treaty hooks install` as:
  git config merge.treaty-sig.driver 'treaty merge-sig %O %A %B %P'
  echo '*.sig merge=treaty-sig' >> .git/info/attributes
Server-side merges (GitHub's merge button) ignore custom merge drivers: merge locally, or
rebase one branch and have its signers sign again."
)]
pub struct MergeSigArgs {
    /// The common ancestor's version (%O); unused: a union needs only both sides.
    base: PathBuf,
    /// Our version (%A); the result is written here.
    ours: PathBuf,
    /// Their version (%B).
    theirs: PathBuf,
    /// The path in the repository (%P), for messages.
    path: Option<String>,
}

pub fn merge_sig(a: MergeSigArgs) -> anyhow::Result<Exit> {
    let name = a
        .path
        .clone()
        .unwrap_or_else(|| a.ours.display().to_string());
    let read =
        |p: &PathBuf| std::fs::read(p).with_context(|| format!("cannot read {}", p.display()));
    let (ours, theirs) = (read(&a.ours)?, read(&a.theirs)?);
    let dir = std::env::current_dir().context("cannot read the current directory")?;
    let root = treaty::source::Repo::discover(&dir)?
        .workdir()
        .context("the merge runs in a repository without a work tree")?;
    let keys = treaty::lifecycle::member_keys_at(&root)?;
    match treaty::sign::merge_envelopes(&ours, &theirs, &|id| keys.get(id).cloned()) {
        Ok(m) => {
            treaty::scaffold::write_atomic(&a.ours, &m.envelope)?;
            tell!(
                "treaty merge-sig: {name}: merged the signatures of both sides ({} valid{})",
                m.signatures,
                if m.dropped > 0 {
                    format!(
                        ", {} unknown or invalid entr{} dropped",
                        m.dropped,
                        if m.dropped == 1 { "y" } else { "ies" }
                    )
                } else {
                    String::new()
                }
            );
            Ok(Exit::Ok)
        }
        Err(e) => {
            tell!("treaty merge-sig: {name}: conflict: {e}");
            Ok(Exit::Findings)
        }
    }
}

const HOOK: &str = r#"#!/bin/sh
# Installed by `treaty hooks install`: runs the treaty gate on every push.
# Skip once with `git push --no-verify`.
treaty=@TREATY@
[ -x "$treaty" ] || treaty=treaty
z40=0000000000000000000000000000000000000000
status=0
while read -r local_ref local_sha remote_ref remote_sha; do
  [ "$local_sha" = "$z40" ] && continue
  if [ "$remote_sha" = "$z40" ]; then
    target="${TREATY_GATE_BASE:-origin/main}"
    if ! base=$(git merge-base "$local_sha" "$target" 2>/dev/null); then
      # No base to judge a change against (a first push to an empty remote, or $target not
      # fetched): judge the whole state instead. Fail closed: only a fully approved state goes.
      echo "treaty gate: no merge base with $target for $remote_ref: verifying the whole state at $local_sha instead" >&2
      if ! "$treaty" verify --rev "$local_sha" --quiet >&2; then
        echo "treaty gate: refusing to push $remote_ref: not every governed file is approved, and there is no base to judge a change against" >&2
        echo "  fetch the target (git fetch origin), or set TREATY_GATE_BASE to the branch this one merges into" >&2
        echo "  (TREATY_GATE_BASE=main git push ...); skip the check once with git push --no-verify" >&2
        status=1
      fi
      continue
    fi
  else
    base=$remote_sha
  fi
  echo "treaty gate: $remote_ref ($base..$local_sha)" >&2
  "$treaty" gate --base "$base" --head "$local_sha" --allow-pending >&2 || status=1
done
exit $status
"#;

pub fn run(c: Command) -> anyhow::Result<Exit> {
    match c {
        Command::Install { force, repo } => {
            let dir = match repo {
                Some(d) => d,
                None => std::env::current_dir().context("cannot read the current directory")?,
            };
            let repo = treaty::source::Repo::discover(&dir)?;
            let hooks = match repo
                .repo
                .config()
                .ok()
                .and_then(|c| c.get_path("core.hooksPath").ok())
            {
                Some(p) if p.is_absolute() => p,
                Some(p) => repo
                    .workdir()
                    .unwrap_or_else(|| repo.repo.path().to_path_buf())
                    .join(p),
                None => repo.repo.path().join("hooks"),
            };
            let path = hooks.join("pre-push");
            if path.exists() && !force {
                bail!(
                    "{} already exists; pass --force to replace it",
                    path.display()
                );
            }
            let exe = std::env::current_exe()
                .ok()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "treaty".into());
            let body = HOOK.replace("@TREATY@", &shell_quote(&exe));
            std::fs::create_dir_all(&hooks)
                .with_context(|| format!("cannot create {}", hooks.display()))?;
            treaty::scaffold::write_atomic(&path, body.as_bytes())?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                    .with_context(|| format!("cannot make {} executable", path.display()))?;
            }
            say!(
                "installed {}: `git push` now runs `treaty gate` first",
                path.display()
            );
            install_merge_driver(&repo, &exe)?;
            Ok(Exit::Ok)
        }
    }
}

/// `s` as one single-quoted shell word.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The `*.sig` merge driver: a local git config entry and a line in `.git/info/attributes`
/// (neither is committed, so nothing in the repository changes).
fn install_merge_driver(repo: &treaty::source::Repo, exe: &str) -> anyhow::Result<()> {
    let mut cfg = repo
        .repo
        .config()
        .context("cannot open the repository's git config")?;
    cfg.set_str("merge.treaty-sig.name", "treaty: union of valid signatures")
        .context("cannot write the git config")?;
    cfg.set_str(
        "merge.treaty-sig.driver",
        &format!("{} merge-sig %O %A %B %P", shell_quote(exe)),
    )
    .context("cannot write the git config")?;
    let info = repo.repo.path().join("info");
    std::fs::create_dir_all(&info).with_context(|| format!("cannot create {}", info.display()))?;
    let attrs = info.join("attributes");
    let line = "*.sig merge=treaty-sig";
    let current = match std::fs::read_to_string(&attrs) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", attrs.display())),
    };
    if !current.lines().any(|l| l.trim() == line) {
        let mut next = current;
        if !next.is_empty() && !next.ends_with('\n') {
            next.push('\n');
        }
        next.push_str(line);
        next.push('\n');
        treaty::scaffold::write_atomic(&attrs, next.as_bytes())?;
    }
    say!(
        "installed the merge driver for *.sig ({}): concurrent signatures on two branches merge as a union",
        attrs.display()
    );
    Ok(())
}
