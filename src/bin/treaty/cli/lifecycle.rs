//! `treaty root | group | delegate | renew` and `treaty key revoke`: trust changes as commands.

use anyhow::Context;
use std::path::{Path, PathBuf};

use super::output::{say, tell};
use super::Exit;
use treaty::lifecycle::{self, LifecycleError, Outcome};

/// Where the governance work tree is.
#[derive(Debug, Clone, clap::Args)]
pub struct Where {
    /// Governance repository (default: the one containing the current directory).
    #[arg(long = "repo", value_name = "DIR", global = true)]
    repo: Option<PathBuf>,
}

impl Where {
    pub fn dir(&self) -> anyhow::Result<PathBuf> {
        let start = match &self.repo {
            Some(d) => d.clone(),
            None => std::env::current_dir().context("cannot read the current directory")?,
        };
        match treaty::source::Repo::discover(&start)
            .ok()
            .and_then(|r| r.workdir())
        {
            Some(wd) => Ok(wd),
            None if start.join("keys/root.json").exists() => Ok(start),
            None => anyhow::bail!(
                "{} is not inside a governance repository (no keys/root.json)",
                start.display()
            ),
        }
    }
}

#[derive(Debug, clap::Subcommand)]
pub enum RootCommand {
    /// Start a new root version from the current one (optionally with a new expiry).
    #[command(
        after_help = "Example:\n  treaty root rotate --expires 2031-01-01T00:00:00Z\n  treaty root sign --key ~/keys/root-1.key"
    )]
    Rotate {
        #[arg(long)]
        expires: Option<String>,
        #[command(flatten)]
        at: Where,
    },
    /// Sign the new root version (the same as `treaty sign keys/root.json`).
    Sign {
        #[arg(long)]
        key: PathBuf,
        #[command(flatten)]
        at: Where,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum GroupCommand {
    /// Create a group and pin it in the root.
    #[command(
        after_help = "Example:\n  treaty group create akash --threshold 1 --member akash-ops.pub.json --member akash-cto.pub.json"
    )]
    Create {
        name: String,
        #[arg(long)]
        threshold: u64,
        #[arg(long = "member", required = true)]
        members: Vec<PathBuf>,
        #[command(flatten)]
        at: Where,
    },
    /// Add a member (onboarding a signer); `root` names the root group.
    AddMember {
        name: String,
        #[arg(long)]
        member: PathBuf,
        #[arg(long)]
        threshold: Option<u64>,
        /// The member's ASCII-armoured OpenPGP public key (release signing with `gpg`); v4
        /// EdDSA keys work with GnuPG 2.2.
        #[arg(long)]
        openpgp: Option<PathBuf>,
        #[command(flatten)]
        at: Where,
    },
    /// Remove a member.
    RemoveMember {
        name: String,
        #[arg(long)]
        id: String,
        #[arg(long)]
        threshold: Option<u64>,
        #[command(flatten)]
        at: Where,
    },
    /// Change how many members must sign.
    SetThreshold {
        name: String,
        threshold: u64,
        #[command(flatten)]
        at: Where,
    },
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  treaty delegate 'treaties/AURORA-SALAD-*' --groups council,salad"
)]
pub struct DelegateArgs {
    /// Path glob (`*` within a segment, `**` across segments).
    #[arg(required_unless_present = "remove")]
    pattern: Option<String>,
    /// Required groups, comma-separated (`root` for the root group).
    #[arg(long, value_delimiter = ',', required_unless_present = "remove")]
    groups: Vec<String>,
    /// Remove the delegation with this name instead (`treaty trust show` lists them).
    #[arg(long, value_name = "NAME", conflicts_with_all = ["pattern", "groups", "name", "position"])]
    remove: Option<String>,
    /// Name for a new delegation (default: derived from the pattern).
    #[arg(long)]
    name: Option<String>,
    /// Position of a new delegation (0 = first; first match wins). Default 0.
    #[arg(long)]
    position: Option<usize>,
    #[command(flatten)]
    at: Where,
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  treaty renew --within-days 60 --rotate-root --expires 2032-01-01T00:00:00Z"
)]
pub struct RenewArgs {
    /// Window: what expires within this many days (0 to 36525, a century).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u16).range(0..=36525))]
    within_days: u16,
    /// New expiry for renewed approvals and the root (RFC 3339, in the future).
    #[arg(long)]
    expires: Option<String>,
    /// When the root expires within the window, start a new root version now (needs --expires:
    /// a new root with the old expiry would renew nothing).
    #[arg(long, requires = "expires")]
    rotate_root: bool,
    #[arg(long, value_enum, default_value_t)]
    format: super::Format,
    #[command(flatten)]
    at: Where,
}

fn report(o: Result<Outcome, LifecycleError>) -> anyhow::Result<Exit> {
    match o {
        Ok(o) => {
            if o.bumped {
                say!("wrote root version {} (a new version; the previous one is kept in keys/roots/)", o.version);
            } else {
                say!("updated root version {} (not yet approved; signatures collected for it so far were dropped)", o.version);
            }
            for s in &o.next_steps {
                say!("next: {s}");
            }
            Ok(Exit::Ok)
        }
        Err(LifecycleError::Refused(m)) => {
            tell!("treaty: refused: {m}");
            Ok(Exit::Findings)
        }
        Err(e @ LifecycleError::Unchanged(_)) => {
            say!("{e}");
            Ok(Exit::Ok)
        }
        Err(e) => Err(e.into()),
    }
}

pub fn run_root(c: RootCommand) -> anyhow::Result<Exit> {
    match c {
        RootCommand::Rotate { expires, at } => {
            if let Some(e) = &expires {
                let t = treaty::time::parse(e)
                    .map_err(anyhow::Error::msg)
                    .context("--expires")?;
                if t <= treaty::time::now() {
                    anyhow::bail!("--expires {e} is not in the future: the new root version would be expired from the start");
                }
            }
            report(lifecycle::root_rotate(&at.dir()?, expires))
        }
        RootCommand::Sign { key, at } => {
            let dir = at.dir()?;
            super::sign::sign_paths(
                &[dir.join(treaty::trust::ROOT_PATH)],
                &key,
                None,
                Some(&dir),
                None,
                false,
                false,
            )
        }
    }
}

pub fn run_group(c: GroupCommand) -> anyhow::Result<Exit> {
    let member = |p: &Path| lifecycle::read_member(p).map_err(anyhow::Error::from);
    match c {
        GroupCommand::Create {
            name,
            threshold,
            members,
            at,
        } => {
            let ms = members
                .iter()
                .map(|p| member(p))
                .collect::<anyhow::Result<Vec<_>>>()?;
            report(lifecycle::group_create(&at.dir()?, &name, threshold, ms))
        }
        GroupCommand::AddMember {
            name,
            member: m,
            threshold,
            openpgp,
            at,
        } => {
            let mut entry = member(&m)?;
            if let Some(p) = openpgp {
                let text = std::fs::read_to_string(&p)
                    .with_context(|| format!("cannot read {}", p.display()))?;
                treaty::release::pgp::check_public_key(&text)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
                entry.openpgp = Some(text);
            }
            report(lifecycle::group_add_member(
                &at.dir()?,
                &name,
                entry,
                threshold,
            ))
        }
        GroupCommand::RemoveMember {
            name,
            id,
            threshold,
            at,
        } => report(lifecycle::group_remove_member(
            &at.dir()?,
            &name,
            &id,
            threshold,
        )),
        GroupCommand::SetThreshold {
            name,
            threshold,
            at,
        } => report(lifecycle::group_set_threshold(&at.dir()?, &name, threshold)),
    }
}

pub fn run_delegate(a: DelegateArgs) -> anyhow::Result<Exit> {
    let dir = a.at.dir()?;
    if let Some(name) = &a.remove {
        return report(lifecycle::delegate_remove(&dir, name));
    }
    let pattern = a.pattern.unwrap_or_default();
    report(lifecycle::delegate(
        &dir, &pattern, a.groups, a.name, a.position,
    ))
}

#[derive(Debug, clap::Subcommand)]
pub enum RoleCommand {
    /// Which group fills a role: release (seals releases), snapshot (signs state/snapshot.json and
    /// the heartbeat), verdict (signs gate verdicts), log (signs audit checkpoints), orders (signs
    /// runtime orders; optional), reputation (signs reputation attestations; optional). A root
    /// update.
    #[command(
        after_help = "Example:\n  treaty role set release release\n  treaty role set orders dispatch\n  treaty root sign --key ~/keys/root-1.key"
    )]
    Set {
        /// release, snapshot, verdict, log, orders or reputation.
        role: String,
        /// The group (`root` for the root group).
        group: String,
        #[command(flatten)]
        at: Where,
    },
}

pub fn run_role(c: RoleCommand) -> anyhow::Result<Exit> {
    match c {
        RoleCommand::Set { role, group, at } => {
            report(lifecycle::role_set(&at.dir()?, &role, &group))
        }
    }
}

/// `treaty key revoke`: the root update, then every file whose approval falls below threshold.
pub fn run_revoke(
    keyid: &str,
    reason: treaty::governance::model::RevocationReason,
    at: &Where,
) -> anyhow::Result<Exit> {
    let dir = at.dir()?;
    let exit = report(lifecycle::key_revoke(&dir, keyid, reason))?;
    if exit != Exit::Ok {
        return Ok(exit);
    }
    let tree = treaty::source::tree_from_dir(&dir)?;
    let opts = treaty::verify::Options {
        anchor: treaty::trust::Anchor::Repository,
        at: treaty::time::now(),
        exhaustive: true,
    };
    let r = treaty::verify::verify_tree(&tree, None, &opts);
    let below: Vec<&treaty::verify::FileVerdict> = r
        .files
        .iter()
        .filter(|v| {
            v.findings
                .iter()
                .any(|f| f.code == treaty::diag::Code::ThresholdNotMet)
        })
        .collect();
    if below.is_empty() {
        say!("no approval falls below its threshold because of this revocation");
    } else {
        say!("approvals now below threshold ({}):", below.len());
        for v in below {
            for g in v.groups.iter().filter(|g| !g.met) {
                say!(
                    "  {}: {} has {}/{}; may sign: {}",
                    v.path,
                    g.name,
                    g.signed.len(),
                    g.threshold,
                    g.may_sign.join(", ")
                );
            }
        }
    }
    Ok(exit)
}

pub fn run_renew(a: RenewArgs) -> anyhow::Result<Exit> {
    let dir = a.at.dir()?;
    let now = treaty::time::now();
    if let Some(e) = &a.expires {
        let t = treaty::time::parse(e)
            .map_err(anyhow::Error::msg)
            .context("--expires")?;
        if t <= now {
            anyhow::bail!("--expires {e} is not in the future: a renewal must end later than now");
        }
    }
    let items = lifecycle::renew_plan(&dir, treaty::time::days(i64::from(a.within_days)), now)?;
    if a.format == super::Format::Json {
        let v = serde_json::json!({
            "ok": items.is_empty(),
            "within_days": a.within_days,
            "expiring": items,
        });
        super::output::json(&v)?;
        return Ok(if items.is_empty() {
            Exit::Ok
        } else {
            Exit::Findings
        });
    }
    if items.is_empty() {
        say!("nothing expires within {} days", a.within_days);
        return Ok(Exit::Ok);
    }
    let exp = a.expires.clone().unwrap_or_else(|| "NEW-EXPIRY".into());
    for it in &items {
        super::output::finding_line(format_args!("{} expires {}", it.path, it.expires));
        for (g, t, who) in &it.signers {
            say!("  needs {t} of {g}: {}", who.join(", "));
        }
        if it.path == treaty::trust::ROOT_PATH {
            if a.rotate_root {
                let o = lifecycle::root_rotate(&dir, a.expires.clone());
                report(o)?;
            } else {
                say!("  run: treaty renew --rotate-root --expires {exp}   (a new root version), then `treaty root sign`");
            }
        } else if it.signers.is_empty() {
            say!("  run: treaty verify --worktree   (to see why), then re-sign it");
        } else {
            say!("  run: treaty sign {} --key KEY --expires {exp} --restart   (the first signer; the others sign with the same --expires)", it.path);
        }
    }
    Ok(Exit::Findings)
}
