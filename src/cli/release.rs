//! `treaty release bundle`: the first step of a release ceremony.

use anyhow::{bail, Context};
use std::path::PathBuf;

use super::Exit;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Write NAME.tar.gz (deterministic), NAME.manifest.json and SHA256SUMS into DIR.
    #[command(
        after_help = "With no PATH: the approved state at REV (refused unless everything in it is approved).\nWith PATHs: those artifact files.\n\nExamples:\n  treaty release bundle --rev v1.0 --out dist --name federation-v1.0\n  treaty release bundle target/release/treaty --out dist --name treaty-0.1.0\n  cd dist && sha256sum -c SHA256SUMS"
    )]
    Bundle {
        /// Artifact files (default: the approved governance state at --rev).
        paths: Vec<PathBuf>,
        #[arg(long, default_value = "HEAD")]
        rev: String,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "release")]
        name: String,
        /// A pinned root to judge the state with (as `treaty verify --trust`).
        #[arg(long)]
        trust: Option<PathBuf>,
        #[arg(short = 'C', long = "repo")]
        repo: Option<PathBuf>,
    },
    /// Check a bundle layer by layer: integrity (digests, entries, manifest), authenticity,
    /// time, history (Merkle root). Exit 1 names the first layer that failed.
    #[command(
        after_help = "Until release signing lands, a bundle is never sealed: `--integrity-only` checks the
layers that exist (integrity and history) and exits 0 when they pass."
    )]
    Verify {
        /// DIR/NAME, as given to `bundle --out DIR --name NAME`.
        bundle: PathBuf,
        #[arg(long)]
        integrity_only: bool,
        #[arg(long, value_enum, default_value_t)]
        format: super::Format,
    },
}

pub fn run(c: Command) -> anyhow::Result<Exit> {
    let (paths, rev, out, name, trust, repo) = match c {
        Command::Bundle {
            paths,
            rev,
            out,
            name,
            trust,
            repo,
        } => (paths, rev, out, name, trust, repo),
        Command::Verify {
            bundle,
            integrity_only,
            format,
        } => return verify(&bundle, integrity_only, format),
    };
    let (files, source) = if paths.is_empty() {
        let dir = match repo {
            Some(d) => d,
            None => std::env::current_dir().context("cannot read the current directory")?,
        };
        let repo = crate::source::Repo::discover(&dir)?;
        let commit = repo.resolve(&rev)?;
        let tree = repo.tree_at(commit)?;
        let parent = repo
            .first_parent(commit)?
            .map(|p| repo.tree_at(p))
            .transpose()?;
        let anchor = match trust {
            Some(p) => {
                let b =
                    std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?;
                crate::trust::Anchor::Pinned(Box::new(
                    serde_json::from_slice(&b)
                        .with_context(|| format!("{}: not a root", p.display()))?,
                ))
            }
            None => crate::trust::Anchor::Repository,
        };
        let report = crate::verify::verify_tree(
            &tree,
            parent.as_ref(),
            &crate::verify::Options {
                anchor,
                at: crate::time::now(),
                exhaustive: false,
            },
        );
        if !report.approved {
            eprintln!(
                "treaty: refused: the state at {rev} is not approved ({} of {} files unapproved, {} error(s)); `treaty verify --rev {rev}` says why",
                report.summary.unapproved, report.summary.files, report.summary.errors
            );
            return Ok(Exit::Findings);
        }
        let mut files = Vec::new();
        for p in tree.entries.keys() {
            let bytes = tree
                .read(p)
                .map_err(|e| anyhow::anyhow!("{p}: cannot read: {e:?}"))?;
            files.push((p.to_string(), bytes.into_owned()));
        }
        (
            files,
            serde_json::json!({ "revision": rev, "commit": commit.to_string() }),
        )
    } else {
        let mut files = Vec::new();
        for p in &paths {
            let meta = std::fs::symlink_metadata(p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            if !meta.is_file() {
                bail!(
                    "{} is not a regular file (directories and symlinks are not bundled)",
                    p.display()
                );
            }
            let name = p
                .file_name()
                .and_then(|n| n.to_str())
                .with_context(|| format!("{}: not a UTF-8 file name", p.display()))?;
            files.push((
                name.to_owned(),
                std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?,
            ));
        }
        (files, serde_json::json!("artifacts"))
    };
    match crate::release::bundle(&out, &name, files, source) {
        Ok(m) => {
            println!(
                "wrote {}/{}.tar.gz ({} files, {} bytes), {}.manifest.json and SHA256SUMS",
                out.display(),
                name,
                m.files.len(),
                m.archive.size,
                name
            );
            println!(
                "archive sha256 {}  merkle root {}",
                m.archive.sha256, m.merkle.root
            );
            Ok(Exit::Ok)
        }
        Err(crate::release::ReleaseError::Refused(m)) => {
            eprintln!("treaty: refused: {m}");
            Ok(Exit::Findings)
        }
        Err(e) => Err(e.into()),
    }
}

fn verify(
    bundle: &std::path::Path,
    integrity_only: bool,
    format: super::Format,
) -> anyhow::Result<Exit> {
    let dir = bundle
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let name = bundle
        .file_name()
        .and_then(|n| n.to_str())
        .context("the bundle must be named DIR/NAME")?;
    let layers = crate::release::verify(dir, name)?;
    let relevant: Vec<&crate::release::Layer> = layers
        .iter()
        .filter(|l| !integrity_only || matches!(l.layer, "integrity" | "history"))
        .collect();
    let failed = relevant.iter().find(|l| !l.ok);
    match format {
        super::Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "ok": failed.is_none(), "layers": layers })
            )?
        ),
        super::Format::Human => {
            for l in &layers {
                println!(
                    "{:<13} {}  {}",
                    l.layer,
                    if l.ok { "ok  " } else { "FAIL" },
                    l.detail
                );
            }
            match failed {
                None => println!(
                    "result: VERIFIED{}",
                    if integrity_only {
                        " (integrity and history)"
                    } else {
                        ""
                    }
                ),
                Some(l) => println!("result: NOT VERIFIED: the {} layer failed", l.layer),
            }
        }
    }
    Ok(if failed.is_none() {
        Exit::Ok
    } else {
        Exit::Findings
    })
}
