//! `treaty hooks install`: a git pre-push hook that runs the gate locally.

use anyhow::{bail, Context};
use std::path::PathBuf;

use super::output::say;
use super::Exit;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Install a pre-push hook that runs `treaty gate` on what is being pushed.
    #[command(
        after_help = "The hook judges each pushed branch against what the remote has (or, for a new branch,\nagainst its merge base with $TREATY_GATE_BASE, default origin/main). Pending approvals do not\nblock a push; everything else does. Skip once with `git push --no-verify`."
    )]
    Install {
        /// Replace an existing pre-push hook.
        #[arg(long)]
        force: bool,
        #[arg(short = 'C', long = "repo")]
        repo: Option<PathBuf>,
    },
}

const HOOK: &str = r#"#!/bin/sh
# Installed by `treaty hooks install`: runs the treaty gate on every push.
# Skip once with `git push --no-verify`.
treaty="@TREATY@"
[ -x "$treaty" ] || treaty=treaty
z40=0000000000000000000000000000000000000000
status=0
while read -r local_ref local_sha remote_ref remote_sha; do
  [ "$local_sha" = "$z40" ] && continue
  if [ "$remote_sha" = "$z40" ]; then
    base=$(git merge-base "$local_sha" "${TREATY_GATE_BASE:-origin/main}" 2>/dev/null) || continue
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
            let repo = crate::source::Repo::discover(&dir)?;
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
            let body = HOOK.replace("@TREATY@", &exe.replace('"', ""));
            std::fs::create_dir_all(&hooks)
                .with_context(|| format!("cannot create {}", hooks.display()))?;
            crate::scaffold::write_atomic(&path, body.as_bytes())?;
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
            Ok(Exit::Ok)
        }
    }
}
