//! `treaty trust show`: who can approve what, and how trust flows from the root.

use anyhow::Context;
use std::path::PathBuf;

use super::output::{say, Style};
use super::Exit;
use treaty::trustmap::Map;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Root → groups → members → delegations, thresholds, expiry, roles and revocations; with
    /// PATH, the delegation and groups that approve that path.
    #[command(after_help = "Examples:
  treaty trust show                                   # the whole map, as a table
  treaty trust show treaties/AURORA-AKASH-001.json    # who can approve this file
  treaty trust show --format mermaid                  # paste into Markdown (GitHub renders it)
  treaty trust show --format dot | dot -Tsvg > trust.svg")]
    Show(ShowArgs),
}

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// A repository path: show only who approves it.
    path: Option<String>,
    /// Revision to read the trust files at (default HEAD).
    #[arg(long, default_value = "HEAD", conflicts_with = "worktree")]
    rev: String,
    /// Read the trust files on disk instead (a root update being prepared).
    #[arg(long)]
    worktree: bool,
    /// A pinned root (file or `blake3:` group id), as for `treaty verify --trust`.
    #[arg(long)]
    trust: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = MapFormat::Table)]
    format: MapFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MapFormat {
    Table,
    Json,
    Dot,
    Mermaid,
}

pub fn run(c: Command) -> anyhow::Result<Exit> {
    let Command::Show(a) = c;
    let anchor = super::anchor(a.trust.as_deref())?;
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let repo = treaty::source::Repo::discover(&cwd)?;
    let tree = if a.worktree {
        let wd = repo
            .workdir()
            .context("the repository is bare; --worktree needs a work tree")?;
        treaty::source::tree_from_dir(&wd)?
    } else {
        let commit = repo.resolve(&a.rev)?;
        repo.tree_at(commit)?
    };
    let (trust, findings) = treaty::trust::load(&tree, &anchor, treaty::time::now());
    let Some(trust) = trust else {
        let s = Style::stdout();
        for f in &findings {
            s.finding("", f);
        }
        anyhow::bail!("no usable root of trust at this revision, so there is no map to show (the findings above say why)");
    };
    let map = Map::of(&trust);
    let problems = findings.iter().any(treaty::diag::Finding::is_error);
    if let Some(p) = &a.path {
        let who = map.who_approves(&trust, p);
        match a.format {
            MapFormat::Json => super::output::json(&serde_json::json!({
                "ok": who.governed_by.is_some(),
                "who_approves": who,
            }))?,
            _ => {
                match &who.governed_by {
                    Some(d) => {
                        say!("{p}: decided by {d}; every group below must reach its threshold")
                    }
                    None => {
                        super::output::finding_line(format_args!(
                            "{p}: no delegation covers it: nothing can approve it (add one with `treaty delegate`)"
                        ));
                        return Ok(Exit::Findings);
                    }
                }
                for g in &who.groups {
                    say!(
                        "  {}: {} of {}: {}",
                        g.name,
                        g.threshold,
                        g.members.len(),
                        g.members
                            .iter()
                            .map(|m| m.id.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
            }
        }
        return Ok(if who.governed_by.is_some() {
            Exit::Ok
        } else {
            Exit::Findings
        });
    }
    match a.format {
        MapFormat::Json => super::output::json(
            &serde_json::json!({ "ok": !problems, "trust": map, "findings": findings }),
        )?,
        // DOT and Mermaid escape their own labels (treaty::trustmap).
        MapFormat::Dot => super::output::raw(&map.dot()),
        MapFormat::Mermaid => super::output::raw(&map.mermaid()),
        MapFormat::Table => table(&map),
    }
    if a.format == MapFormat::Table {
        let s = Style::stdout();
        for f in &findings {
            s.finding("", f);
        }
    }
    Ok(if problems { Exit::Findings } else { Exit::Ok })
}

fn table(m: &Map) {
    say!(
        "root v{} · expires {} · anchor: {}{}",
        m.root_version,
        m.root_expires,
        m.anchor,
        if m.chain_ok {
            ""
        } else {
            " · CHAIN NOT VERIFIED"
        }
    );
    say!("");
    say!(
        "{:<14} {:>9}  {:<28} members",
        "group",
        "threshold",
        "roles"
    );
    for g in &m.groups {
        let members: Vec<String> = g
            .members
            .iter()
            .map(|x| {
                format!(
                    "{}{}",
                    x.id,
                    if x.revoked.is_empty() {
                        ""
                    } else {
                        " (revoked key)"
                    }
                )
            })
            .collect();
        say!(
            "{:<14} {:>9}  {:<28} {}",
            g.name,
            format!("{} of {}", g.threshold, g.members.len()),
            if g.roles.is_empty() {
                "-".to_owned()
            } else {
                g.roles.join(",")
            },
            members.join(", ")
        );
    }
    for (g, why) in &m.broken_groups {
        super::output::finding_line(format_args!("{g}: pinned but unusable: {why}"));
    }
    say!("");
    say!("delegations (first match wins):");
    for (i, d) in m.delegations.iter().enumerate() {
        say!(
            "  {:>2}. {:<28} {} -> {}",
            i + 1,
            d.name,
            d.paths.join(" "),
            d.groups.join(" + ")
        );
    }
    if !m.revoked.is_empty() {
        say!("");
        say!("revoked keys:");
        for (k, r, t) in &m.revoked {
            say!("  {k} {r} at {t}");
        }
    }
}
