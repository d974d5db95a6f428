//! `treaty emit`: the commands between two approved states, one JSON object per line.

use anyhow::Context;
use std::path::PathBuf;

use super::output::{say, tell};
use super::Exit;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum EmitFormat {
    #[default]
    Jsonl,
    Human,
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Order: key.revoke, group.update, policy.update, treaty.activate, treaty.update,\ntreaty.suspend, treaty.revoke, treaty.expire; within an op by path. Each command carries its\nsource (repository, commit, root and snapshot versions), its subject (path, version, sha256)\nand an idempotency key that is the same whoever emits it. Refused (exit 1) unless both ends\nare approved. Schema: schemas/command.schema.json.\n\nExamples:\n  treaty emit --to HEAD                       # every approved object, from an empty state\n  treaty emit --from v1.0 --to v1.1 --format human"
)]
pub struct Args {
    /// The state the runtime has (default: none, so every approved object is emitted).
    #[arg(long)]
    from: Option<String>,
    #[arg(long, default_value = "HEAD")]
    to: String,
    #[arg(long, value_enum, default_value_t)]
    format: EmitFormat,
    /// Judge expiry as of this instant (RFC 3339) instead of now.
    #[arg(long)]
    at: Option<String>,
    /// The repository name in each command's source (default: the `origin` URL, else the
    /// directory name).
    #[arg(long)]
    repository: Option<String>,
    /// A root pinned out of band (as `treaty verify --trust`).
    #[arg(long)]
    trust: Option<PathBuf>,
    #[arg(long = "repo", value_name = "DIR")]
    repo: Option<PathBuf>,
}

pub fn run(a: Args) -> anyhow::Result<Exit> {
    let dir = match &a.repo {
        Some(d) => d.clone(),
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    let repo = treaty::source::Repo::discover(&dir)?;
    let at = match &a.at {
        Some(s) => treaty::time::parse(s)
            .map_err(anyhow::Error::msg)
            .context("--at")?,
        None => treaty::time::now(),
    };
    let anchor = super::anchor(a.trust.as_deref())?;
    // Both ends must be approved, each judged with its own first parent for rollback.
    let judge =
        |rev: &str| -> anyhow::Result<Result<(git2::Oid, treaty::source::Tree, u64), String>> {
            let commit = repo.resolve(rev)?;
            let (tree, parent) = repo.tree_and_parent(commit)?;
            let report = treaty::verify::verify_tree(
                &tree,
                parent.as_ref(),
                &treaty::verify::Options {
                    anchor: anchor.clone(),
                    at,
                    exhaustive: false,
                },
            );
            if !report.approved {
                return Ok(Err(format!(
                "the state at {rev} is not approved ({} of {} files unapproved); `treaty verify --rev {rev}` says why",
                report.summary.unapproved, report.summary.files
            )));
            }
            let rv = report.trust.map_or(0, |t| t.root_version);
            Ok(Ok((commit, tree, rv)))
        };
    let from = match a.from.as_deref().map(judge).transpose()? {
        Some(Err(m)) => {
            tell!("treaty: refused: {m}");
            return Ok(Exit::Findings);
        }
        Some(Ok(x)) => Some(x),
        None => None,
    };
    let (commit, to_tree, root_version) = match judge(&a.to)? {
        Ok(x) => x,
        Err(m) => {
            tell!("treaty: refused: {m}");
            return Ok(Exit::Findings);
        }
    };
    let repository = a.repository.clone().unwrap_or_else(|| {
        git2::Repository::discover(&dir)
            .ok()
            .and_then(|r| {
                r.find_remote("origin")
                    .ok()
                    .and_then(|o| o.url().ok().map(str::to_owned))
            })
            .or_else(|| {
                repo.workdir()
                    .and_then(|w| w.file_name().map(|n| n.to_string_lossy().into_owned()))
            })
            .unwrap_or_default()
    });
    let src = treaty::emit::Source {
        repository,
        commit: commit.to_string(),
        root_version,
        snapshot_version: None,
    };
    // The runtime's state was current when its commit was made.
    let from_at = |c: git2::Oid| -> anyhow::Result<treaty::time::Instant> {
        let git = git2::Repository::discover(&dir)?;
        let secs = git.find_commit(c)?.time().seconds();
        Ok(treaty::time::Instant::from_unix(secs).unwrap_or(at).min(at))
    };
    let from_state = match &from {
        Some((c, t, _)) => Some((t, from_at(*c)?)),
        None => None,
    };
    let cmds = treaty::emit::emit(
        from_state,
        &to_tree,
        &src,
        at,
        &mut treaty::facts::FactCache::in_memory(),
    );
    match a.format {
        EmitFormat::Jsonl => {
            for c in &cmds {
                super::output::json_line(c)?;
            }
        }
        EmitFormat::Human => {
            for c in &cmds {
                say!(
                    "{:<16} {} v{}",
                    c["op"].as_str().unwrap_or(""),
                    c["subject"]["path"].as_str().unwrap_or(""),
                    c["subject"]["version"]
                        .as_u64()
                        .map_or("-".into(), |v| v.to_string())
                );
            }
            say!(
                "{} command(s) to reach {}",
                cmds.len(),
                &src.commit[..12.min(src.commit.len())]
            );
        }
    }
    Ok(Exit::Ok)
}
