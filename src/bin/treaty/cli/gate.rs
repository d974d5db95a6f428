//! `treaty gate`: judge a pull request (base..head) with every gate.

use anyhow::Context;
use std::io::Write;
use std::path::PathBuf;

use super::output::{say, tell, Style};
use super::Exit;
use treaty::gate::{GateOptions, GateReport, Status};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum GateFormat {
    #[default]
    Human,
    Json,
    /// Workflow-command annotations on stdout, and a Markdown job summary appended to
    /// $GITHUB_STEP_SUMMARY when set.
    Github,
    /// SARIF 2.1.0 for code scanning.
    Sarif,
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Trust, gate configuration and schemas come from BASE, never from HEAD.

Exit codes: 0 every gate passed; 1 a gate failed, or approvals are pending (unless
--allow-pending); 2 the gate cannot judge (BASE unresolvable, e.g. in a shallow clone; BASE not
an ancestor of HEAD; unreadable configuration).

Examples:
  treaty gate --base origin/main --head HEAD
  treaty gate --base origin/main --head HEAD --target production --format json
  treaty gate --base \"$(git merge-base origin/main HEAD)\" --head HEAD --audit-out gate-audit.jsonl"
)]
pub struct Args {
    #[arg(long)]
    base: String,
    #[arg(long, default_value = "HEAD")]
    head: String,
    /// The branch the pull request targets (default: $GITHUB_BASE_REF); promotion lanes scan the
    /// whole tree for TEMP-STUB markers.
    #[arg(long)]
    target: Option<String>,
    /// Pending approvals do not fail the gate.
    #[arg(long)]
    allow_pending: bool,
    /// Append one JSON line per decision to this file.
    #[arg(long)]
    audit_out: Option<PathBuf>,
    /// The published audit log checkpoint (a revision of refs/treaty/audit, or a checkpoint
    /// file) that the audit log must extend.
    #[arg(long)]
    audit_base: Option<String>,
    /// The audit log revision to judge (default: refs/treaty/audit).
    #[arg(long)]
    audit_head: Option<String>,
    /// Judge as of this instant (RFC 3339) instead of now.
    #[arg(long)]
    at: Option<String>,
    #[arg(long = "repo", value_name = "DIR")]
    repo: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    format: GateFormat,
    /// Sign the verdict with this key (a member of the group the base root names for the
    /// `verdict` role); needs --verdict-out.
    #[arg(long, requires = "verdict_out")]
    sign_verdict: Option<PathBuf>,
    /// Where to write the signed verdict (a DSSE envelope).
    #[arg(long, requires = "sign_verdict")]
    verdict_out: Option<PathBuf>,
    /// Do not post check runs or statuses to GitHub even when GITHUB_TOKEN and
    /// GITHUB_REPOSITORY are set (posting needs the `github` cargo feature).
    #[arg(long)]
    no_post: bool,
}

#[derive(Debug, clap::Subcommand)]
pub enum VerdictCommand {
    /// Check a signed gate verdict against the verdict group of its base revision.
    Verify {
        file: PathBuf,
        /// Exit 1 unless the verdict says the gate passed.
        #[arg(long)]
        require_pass: bool,
        #[arg(long = "repo", value_name = "DIR")]
        repo: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t)]
        format: super::Format,
    },
}

pub fn run_verdict(c: VerdictCommand) -> anyhow::Result<Exit> {
    let VerdictCommand::Verify {
        file,
        require_pass,
        repo,
        format,
    } = c;
    let dir = match repo {
        Some(d) => d,
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    let repo = treaty::source::Repo::discover(&dir)?;
    let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
    let c = treaty::gate::verdict::verify(&repo, &bytes)?;
    let passed = c.predicate["passed"].as_bool().unwrap_or(false);
    let ok = c.authentic && (passed || !require_pass);
    if format == super::Format::Json {
        super::output::json(&serde_json::json!({
            "ok": ok,
            "authentic": c.authentic,
            "passed": passed,
            "signed_by": c.signed_by,
            "reason": c.reason,
            "base_commit": c.predicate["base_commit"],
            "head_commit": c.predicate["head_commit"],
        }))?;
        return Ok(if ok { Exit::Ok } else { Exit::Findings });
    }
    if c.authentic {
        say!(
            "authentic verdict for {} (base {}): gate {} — signed by {}",
            c.predicate["head_commit"].as_str().unwrap_or("?"),
            c.predicate["base_commit"].as_str().unwrap_or("?"),
            if passed { "PASSED" } else { "FAILED" },
            c.signed_by.join(", ")
        );
    } else {
        say!(
            "NOT authentic: {}",
            c.reason.as_deref().unwrap_or("unknown reason")
        );
    }
    Ok(if c.authentic && (passed || !require_pass) {
        Exit::Ok
    } else {
        Exit::Findings
    })
}

pub fn run(a: Args) -> anyhow::Result<Exit> {
    let at = match &a.at {
        Some(s) => treaty::time::parse(s)
            .map_err(anyhow::Error::msg)
            .context("--at")?,
        None => treaty::time::now(),
    };
    let dir = match &a.repo {
        Some(d) => d.clone(),
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    let repo = treaty::source::Repo::discover(&dir)?;
    let opts = GateOptions {
        base: a.base.clone(),
        head: a.head.clone(),
        target: a.target.clone(),
        allow_pending: a.allow_pending,
        at,
        audit_base: a.audit_base.clone(),
        audit_head: a.audit_head.clone(),
    };
    // The verdict key first: a key outside the verdict group is refused (exit 1, key
    // membership) before any work, like `treaty sign` with a non-member key.
    let verdict_key = match &a.sign_verdict {
        Some(k) => {
            let key = treaty::crypto::SigningKey::load(k, || super::keys::passphrase(false))?;
            let base_tree = repo.tree_at(repo.resolve(&a.base)?)?;
            if !treaty::gate::verdict::is_member(&base_tree, &key)? {
                tell!(
                    "treaty: refused: {} is not a member of the base root's verdict group; nothing was judged or written",
                    key.member_id
                );
                return Ok(Exit::Findings);
            }
            Some(key)
        }
        None => None,
    };
    let r = treaty::gate::run(&repo, &opts)?;
    let mut verdict_digest: Option<String> = None;
    if let (Some(key), Some(out)) = (&verdict_key, &a.verdict_out) {
        let base = repo.resolve(&a.base)?;
        let base_tree = repo.tree_at(base)?;
        let env = treaty::gate::verdict::sign(&r, &base_tree, key)?;
        treaty::scaffold::write_atomic(out, &env)?;
        let digest = treaty::crypto::sha256_hex(&env);
        tell!(
            "signed verdict written to {} (sha256 {digest})",
            out.display()
        );
        verdict_digest = Some(digest);
    }
    post(&a, &r, verdict_digest.as_deref());
    if let Some(path) = &a.audit_out {
        audit(path, &r, at).with_context(|| format!("cannot append to {}", path.display()))?;
    }
    match a.format {
        GateFormat::Json => super::output::json_ok(&r, r.passed)?,
        GateFormat::Human => human(&r),
        GateFormat::Github => {
            super::output::raw(&treaty::gate::report::github_annotations(&r));
            if let Some(p) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) {
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&p)
                    .with_context(|| {
                        format!(
                            "cannot append to GITHUB_STEP_SUMMARY ({})",
                            PathBuf::from(&p).display()
                        )
                    })?;
                f.write_all(treaty::gate::report::markdown_summary(&r).as_bytes())?;
            }
            human(&r);
        }
        GateFormat::Sarif => super::output::json(&treaty::gate::report::sarif(&r))?,
    }
    Ok(if r.passed { Exit::Ok } else { Exit::Findings })
}

fn audit(path: &std::path::Path, r: &GateReport, at: treaty::time::Instant) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let when = treaty::time::format(at);
    for g in &r.gates {
        let line = serde_json::json!({
            "kind": "gate.verdict", "time": when, "gate": g.id, "status": g.status,
            "base": r.base_commit, "head": r.head_commit, "target": r.target,
            "findings": g.findings.len(), "tool": r.tool,
        });
        writeln!(f, "{line}")?;
        if g.id == "temp-stub" && r.promotion_lane {
            for x in &g.findings {
                let decision = if x.is_error() { "block" } else { "allow" };
                let line = serde_json::json!({
                    "kind": "temp-stub.decision", "time": when, "decision": decision, "code": x.code,
                    "path": x.path, "line": x.line, "base": r.base_commit, "head": r.head_commit, "target": r.target,
                });
                writeln!(f, "{line}")?;
            }
        }
    }
    let line = serde_json::json!({ "kind": "gate.result", "time": when, "passed": r.passed, "pending": r.pending, "base": r.base_commit, "head": r.head_commit });
    writeln!(f, "{line}")
}

fn human(r: &GateReport) {
    let s = Style::stdout();
    say!(
        "treaty gate: {} ({}) -> {} ({}), {} file(s) changed",
        r.base,
        &r.base_commit[..r.base_commit.len().min(12)],
        r.head,
        &r.head_commit[..r.head_commit.len().min(12)],
        r.changed.len()
    );
    let lane = if r.promotion_lane {
        " (a promotion lane: the whole tree is scanned for TEMP-STUB)"
    } else {
        ""
    };
    match &r.target {
        Some(t) => say!("trust, gate configuration and schemas from base; target {t}{lane}"),
        None => say!("trust, gate configuration and schemas from base"),
    }
    for g in &r.gates {
        let st = match g.status {
            Status::Pass => s.good("pass"),
            Status::Fail => s.bad("FAIL"),
            Status::Pending => s.warn("PENDING"),
            Status::Warn => s.warn("warn"),
            Status::Off => s.dim("off"),
        };
        say!("{:<10} {st}", g.id);
        for f in &g.findings {
            s.finding("    ", f);
        }
    }
    for (p, why) in &r.exemptions {
        say!("exempt from temp-stub: {p} ({why})");
    }
    let failed = r.gates.iter().filter(|g| g.status == Status::Fail).count();
    let pending = r
        .gates
        .iter()
        .filter(|g| g.status == Status::Pending)
        .count();
    if r.passed {
        say!(
            "result: {}{}",
            s.good("PASSED"),
            if pending > 0 {
                " (pending approvals allowed)"
            } else {
                ""
            }
        );
    } else {
        say!(
            "result: {} ({failed} gate(s) failed, {pending} pending)",
            s.bad("FAILED")
        );
    }
}

#[cfg(feature = "github")]
fn post(a: &Args, r: &GateReport, digest: Option<&str>) {
    if a.no_post {
        return;
    }
    let Some(ctx) = treaty::gate::github::Context::from_env() else {
        return;
    };
    let p = treaty::gate::github::post(r, &ctx, digest);
    tell!(
        "github: posted {} check run(s) and {} status(es) to {}/{}",
        p.check_runs,
        p.statuses,
        ctx.owner,
        ctx.repo
    );
    for e in &p.errors {
        tell!("github: posting failed (the verdict does not depend on it): {e}");
    }
}

#[cfg(not(feature = "github"))]
fn post(a: &Args, _r: &GateReport, _digest: Option<&str>) {
    if !a.no_post
        && std::env::var_os("GITHUB_TOKEN").is_some()
        && std::env::var_os("GITHUB_REPOSITORY").is_some()
    {
        tell!("github: not posting check runs: this treaty was built without the `github` feature");
    }
}
