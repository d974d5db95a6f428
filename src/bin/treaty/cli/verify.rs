//! `treaty verify` and `treaty status`: judge the approved state at a revision.

use anyhow::Context;
use std::path::PathBuf;

use super::output::{say, Style};
use super::{Exit, Format};
use treaty::source::Repo;
use treaty::verify::{verify_tree, Options, Report};

#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    /// Revision to judge, from git objects (not the work tree).
    #[arg(long, default_value = "HEAD", conflicts_with = "worktree")]
    rev: String,
    /// Judge the files on disk instead of a revision.
    #[arg(long)]
    worktree: bool,
    /// A root file obtained out of band, or a root group id (`blake3:<hex>`): walk the root
    /// chain from it instead of trusting the repository's own first root.
    #[arg(long)]
    trust: Option<PathBuf>,
    /// Judge expiry as of this instant (RFC 3339) instead of now.
    #[arg(long)]
    at: Option<String>,
    /// Do not read or write the verdict or history caches under .git/treaty/.
    #[arg(long)]
    no_cache: bool,
    /// Judge even when ancestors needed for the rollback check are absent (a shallow clone):
    /// versions committed before the cut are not compared, and a warning says so.
    #[arg(long)]
    allow_shallow: bool,
    /// Repository to judge (default: the one containing the current directory).
    #[arg(long = "repo", value_name = "DIR")]
    repo: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit codes: 0 every governed file is approved; 1 anything is not (the reasons are listed); 2 cannot judge.

Examples:
  treaty verify
  treaty verify --rev origin/main --trust pinned-root.json
  treaty verify --rev 4f1c2e0 --at 2027-01-01T00:00:00Z --format json"
)]
pub struct VerifyArgs {
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  treaty status\n  treaty status --worktree      # while collecting signatures\n  treaty status --format json"
)]
pub struct StatusArgs {
    #[command(flatten)]
    common: Common,
    /// "What needs my signature?": only the files (and root versions) that signatures would move
    /// toward approval, judged in the work tree (where signatures are collected).
    #[arg(long)]
    pending: bool,
    /// With --pending: only what this member's key (ID.key or ID.pub.json) could sign.
    #[arg(long, requires = "pending", conflicts_with = "member")]
    key: Option<PathBuf>,
    /// With --pending: only what this member id could sign.
    #[arg(long, requires = "pending")]
    member: Option<String>,
}

/// `treaty status --pending`: what signatures would move toward approval.
fn run_pending(a: &StatusArgs) -> anyhow::Result<Exit> {
    let mut c = a.common.clone();
    c.worktree = true;
    let r = judge(&c, true)?;
    let wd = std::env::current_dir().context("cannot read the current directory")?;
    let wd = match &c.repo {
        Some(d) => d.clone(),
        None => wd,
    };
    let wd = Repo::discover(&wd)?
        .workdir()
        .context("the repository is bare; signatures are collected in a work tree")?;
    let member = match (&a.key, &a.member) {
        (Some(k), _) => Some(super::keys::member_for_key(k, &wd)?),
        (_, Some(m)) => Some(m.clone()),
        _ => None,
    };
    // A state signatures cannot fix (no usable root, an expired root, a broken chain) is said,
    // never reported as "nothing awaits".
    let blocking: Vec<&treaty::diag::Finding> = r
        .findings
        .iter()
        .filter(|f| f.is_error() && !f.code.fixed_by_signing())
        .collect();
    if r.trust.is_none() || !blocking.is_empty() {
        if c.format == Format::Json {
            super::output::json(&serde_json::json!({
                "ok": false,
                "member": member,
                "pending": [],
                "blocked_by": blocking,
            }))?;
        } else {
            let s = Style::stdout();
            for f in &blocking {
                s.finding("", f);
            }
            super::output::finding_line(format_args!(
                "no signature can approve anything until the state's own problems above are fixed (a root update: `treaty status`, `treaty renew`)"
            ));
        }
        return Ok(Exit::Findings);
    }
    let mut rows: Vec<serde_json::Value> = Vec::new();
    match &member {
        Some(who) => {
            for p in treaty::verify::pending_for(&r, who) {
                rows.push(serde_json::to_value(&p)?);
            }
        }
        // Without a member: every file a signature would help, with who may sign.
        None => {
            for p in treaty::verify::pending(&r) {
                rows.push(serde_json::to_value(&p)?);
            }
        }
    }
    if c.format == Format::Json {
        super::output::json(&serde_json::json!({
            "ok": true,
            "member": member,
            "pending": rows,
        }))?;
        return Ok(Exit::Ok);
    }
    let whose = member
        .as_deref()
        .map(|m| format!(" for {m}"))
        .unwrap_or_default();
    if rows.is_empty() {
        say!("nothing awaits a signature{whose}");
        return Ok(Exit::Ok);
    }
    say!("{} file(s) await a signature{whose}:", rows.len());
    for row in &rows {
        let groups: Vec<String> = row["groups"]
            .as_array()
            .map(|gs| {
                gs.iter()
                    .map(|g| {
                        let may = g["may_sign"]
                            .as_array()
                            .filter(|_| member.is_none())
                            .map(|m| {
                                format!(
                                    " (may sign: {})",
                                    m.iter()
                                        .filter_map(|x| x.as_str())
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                )
                            })
                            .unwrap_or_default();
                        format!(
                            "{} {}/{}{may}",
                            g["name"].as_str().unwrap_or("?"),
                            g["signed"],
                            g["threshold"]
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        super::output::finding_line(format_args!(
            "  {}  {}{}",
            row["path"].as_str().unwrap_or("?"),
            groups.join("; "),
            row["note"]
                .as_str()
                .map(|n| format!(" — {n}"))
                .unwrap_or_default()
        ));
    }
    if let Some(k) = &a.key {
        let shown = k.display().to_string();
        let private = shown
            .strip_suffix(".pub.json")
            .map_or_else(|| shown.clone(), |stem| format!("{stem}.key"));
        say!("sign them one by one, reviewing each: treaty sign --pending --key {private}");
    }
    Ok(Exit::Ok)
}

fn judge(c: &Common, exhaustive: bool) -> anyhow::Result<Report> {
    let at = match &c.at {
        Some(s) => treaty::time::parse(s)
            .map_err(anyhow::Error::msg)
            .context("--at")?,
        None => treaty::time::now(),
    };
    let anchor = super::anchor(c.trust.as_deref())?;
    let dir = match &c.repo {
        Some(d) => d.clone(),
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    let mut repo = Repo::discover(&dir)?;
    repo.history_cache = !c.no_cache;
    let opts = Options {
        anchor,
        at,
        exhaustive,
    };
    if c.worktree {
        let wd = repo
            .workdir()
            .context("the repository is bare; --worktree needs a work tree")?;
        let tree = treaty::source::tree_from_dir(&wd)?;
        let mut tree = tree;
        let parent = match repo.resolve("HEAD") {
            Ok(h) => {
                // The work tree comes after HEAD: HEAD itself is history.
                let history = treaty::source::history::History::of(&repo, &[h], c.allow_shallow)?;
                tree.history = Some(std::sync::Arc::new(history));
                Some(repo.tree_at(h)?)
            }
            Err(_) => None,
        };
        let mut r = verify_tree(&tree, parent.as_ref(), &opts);
        r.revision = Some("work tree".into());
        Ok(r)
    } else {
        let commit = repo.resolve(&c.rev)?;
        let (tree, parent) = repo.revision(commit, c.allow_shallow)?;
        let mut cache = (!c.no_cache).then(|| treaty::cache::Cache::load(repo.repo.path()));
        let mut r = match cache.as_mut() {
            Some(cache) => treaty::verify::verify_tree_cached(&tree, parent.as_ref(), &opts, cache),
            None => verify_tree(&tree, parent.as_ref(), &opts),
        };
        let mut errs = tree.read_errors();
        errs.extend(parent.iter().flat_map(|p| p.read_errors()));
        if !errs.is_empty() {
            anyhow::bail!(
                "cannot read git objects, so no verdict: {}",
                errs.join("; ")
            );
        }
        if let Some(cache) = cache {
            cache.save();
        }
        r.revision = Some(c.rev.clone());
        r.commit = Some(commit.to_string());
        Ok(r)
    }
}

fn header(r: &Report, s: &Style) {
    let rev = match (&r.revision, &r.commit) {
        (Some(rev), Some(c)) => format!("{rev} ({})", &c[..c.len().min(12)]),
        (Some(rev), None) => rev.clone(),
        _ => "?".into(),
    };
    say!("judged {rev} at {}", r.judged_at);
    match &r.trust {
        Some(t) => {
            let anchor = if t.anchor == "pinned" {
                format!("walked from the pinned root version {}", t.anchor_version)
            } else if t.anchor == "pinned-group" {
                format!(
                    "walked from root version {}, the first with the pinned root group",
                    t.anchor_version
                )
            } else {
                "trusting the repository's own root version 1 (not pinned: pass --trust ROOT to pin one)".to_owned()
            };
            let state = if t.chain_ok {
                s.good("verified")
            } else {
                s.bad("NOT VERIFIED")
            };
            say!(
                "trust: root version {} (expires {}), {anchor}: {state}",
                t.root_version,
                t.root_expires
            );
        }
        None => say!("trust: {}", s.bad("no usable root")),
    }
    for f in &r.findings {
        s.finding("", f);
    }
}

fn footer(r: &Report, s: &Style) {
    let sm = &r.summary;
    say!(
        "{} files: {} approved, {} not approved; {} error(s), {} warning(s)",
        sm.files,
        sm.approved,
        sm.unapproved,
        sm.errors,
        sm.warnings
    );
    say!(
        "result: {}",
        if r.approved {
            s.good("APPROVED")
        } else {
            s.bad("NOT APPROVED")
        }
    );
}

fn finish(r: &Report) -> Exit {
    if r.approved {
        Exit::Ok
    } else {
        Exit::Findings
    }
}

pub fn run_verify(a: VerifyArgs) -> anyhow::Result<Exit> {
    let r = judge(&a.common, false)?;
    if a.common.format == Format::Json {
        super::output::json_ok(&r, r.approved)?;
        return Ok(finish(&r));
    }
    let s = Style::stdout();
    header(&r, &s);
    for v in &r.files {
        let mark = if v.approved {
            s.good("ok  ")
        } else {
            s.bad("FAIL")
        };
        let ver = v.version.map(|n| format!(" v{n}")).unwrap_or_default();
        let tallies: Vec<String> = v
            .groups
            .iter()
            .map(|g| format!("{} {}/{}", g.name, g.signed.len(), g.threshold))
            .collect();
        let why = if tallies.is_empty() {
            v.governed_by.clone().unwrap_or_default()
        } else {
            tallies.join(", ")
        };
        say!("{mark} {}{ver}  {}", v.path, s.dim(&why));
        for f in &v.findings {
            s.finding("     ", f);
        }
    }
    footer(&r, &s);
    Ok(finish(&r))
}

pub fn run_status(a: StatusArgs) -> anyhow::Result<Exit> {
    if a.pending {
        return run_pending(&a);
    }
    let r = judge(&a.common, true)?;
    if a.common.format == Format::Json {
        super::output::json_ok(&r, r.approved)?;
        return Ok(finish(&r));
    }
    let s = Style::stdout();
    header(&r, &s);
    for v in &r.files {
        let state = if v.approved {
            s.good("approved")
        } else {
            s.bad("not approved")
        };
        let ver = v.version.map(|n| format!(" v{n}")).unwrap_or_default();
        say!(
            "{}{ver}: {state} ({})",
            v.path,
            v.governed_by.as_deref().unwrap_or("-")
        );
        for g in &v.groups {
            let signed = if g.signed.is_empty() {
                "-".to_owned()
            } else {
                g.signed.join(", ")
            };
            let may = if g.may_sign.is_empty() {
                "-".to_owned()
            } else {
                g.may_sign.join(", ")
            };
            // "met" only on an approved file: signatures counted on a file rejected for another
            // reason (schema, rollback, …) approve nothing, and the line must not suggest so.
            let mark = match (g.met, v.approved) {
                (true, true) => s.good("met"),
                (true, false) => {
                    s.warn("signatures counted, but the file is NOT approved (see below)")
                }
                (false, _) => s.warn("needs more"),
            };
            say!(
                "    {:<12} {}/{} {mark}  signed: {signed}  may still sign: {may}",
                g.name,
                g.signed.len(),
                g.threshold
            );
        }
        for f in v
            .findings
            .iter()
            .filter(|f| f.code != treaty::diag::Code::ThresholdNotMet)
        {
            s.finding("    ", f);
        }
    }
    footer(&r, &s);
    Ok(finish(&r))
}
