//! `treaty audit …`: the transparency log on `refs/treaty/audit` (docs/audit.md).

use anyhow::Context;
use std::path::PathBuf;

use super::output::{say, tell};
use super::Exit;
use treaty::audit::{self, store, AuditError, LogTrust};

#[derive(Debug, clap::Args)]
pub struct RepoArgs {
    /// The governance repository (its ref holds the log; its root names the log group).
    #[arg(long = "repo", value_name = "DIR")]
    repo: Option<PathBuf>,
    /// A root pinned out of band (as `treaty verify --trust`).
    #[arg(long)]
    trust: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Append one entry, or every line of a JSONL file (`treaty gate --audit-out`), in one commit.
    #[command(
        after_help = "Examples:\n  treaty audit append --kind approval.threshold --subject treaties/AURORA-AKASH-001.json --verdict approved\n  treaty gate --base origin/main --head HEAD --audit-out gate.jsonl && treaty audit append --from-jsonl gate.jsonl\n  treaty audit append --kind agent.apply --details '{\"snapshot\":7}' --key ci.key"
    )]
    Append {
        #[arg(long, required_unless_present = "from_jsonl")]
        kind: Option<String>,
        /// RFC 3339; default now.
        #[arg(long)]
        time: Option<String>,
        /// The file or object the entry is about.
        #[arg(long)]
        subject: Option<String>,
        /// The subject's digest (e.g. sha256:…).
        #[arg(long)]
        digest: Option<String>,
        #[arg(long)]
        commit: Option<String>,
        #[arg(long)]
        verdict: Option<String>,
        /// A JSON object of further details.
        #[arg(long)]
        details: Option<String>,
        /// Ingest every line of this file instead (one JSON object per line).
        #[arg(long, conflicts_with = "kind")]
        from_jsonl: Option<PathBuf>,
        /// Sign each entry as its actor (hybrid signature).
        #[arg(long)]
        key: Option<PathBuf>,
        #[command(flatten)]
        repo: RepoArgs,
    },
    /// Sign a checkpoint of the log as it is now (a member of the log group), or add your
    /// signature to the current one.
    #[command(after_help = "Example:\n  treaty audit checkpoint --key ~/keys/ci-1.key")]
    Checkpoint {
        #[arg(long)]
        key: PathBuf,
        /// The checkpoint's origin line (kept from the current checkpoint when there is one).
        #[arg(long)]
        origin: Option<String>,
        #[command(flatten)]
        repo: RepoArgs,
    },
    /// Add a witness's C2SP cosignature (`cosignature/v1`, signature type 0x04) to the current
    /// checkpoint: made here with the witness's key, or one an outside witness made (--line),
    /// checked against its verifier key before it is kept.
    #[command(
        after_help = "Examples:\n  treaty audit cosign --key witness.key --name witness.example/w1\n  treaty audit cosign --line '— witness.example/w1 <base64>' --witness 'witness.example/w1+<keyid>+B<base64>'\n\nExit: 0 added; 1 refused (the line does not verify, is dated ahead, the log does not verify);\n2 usage (a malformed line or key)."
    )]
    Cosign {
        #[arg(long, requires = "name", conflicts_with_all = ["line", "witness"])]
        key: Option<PathBuf>,
        /// The witness's key name (printed with its verifier key).
        #[arg(long, requires = "key")]
        name: Option<String>,
        /// An outside witness's signature line for the current checkpoint.
        #[arg(long, requires = "witness", required_unless_present = "key")]
        line: Option<String>,
        /// That witness's verifier key (cosignature/v1, 0x04; or Ed25519, 0x01).
        #[arg(long, requires = "line")]
        witness: Option<String>,
        #[command(flatten)]
        repo: RepoArgs,
    },
    /// Recompute everything and check every signature; with --from, that the log extends an
    /// older checkpoint. An absent log is a valid empty log.
    #[command(
        after_help = "Examples:\n  treaty audit verify\n  treaty audit verify --from old-checkpoint.txt     # a file, or a revision of the log\n  treaty audit verify --from refs/treaty/audit@{1} --witness 'w.example+1a2b3c4d+BA…'"
    )]
    Verify {
        /// An older checkpoint (file, or a revision of the log) the log must extend.
        #[arg(long)]
        from: Option<String>,
        /// The log revision to verify (default: refs/treaty/audit).
        #[arg(long)]
        rev: Option<String>,
        /// Require a cosignature by this witness (signed-note verifier key).
        #[arg(long)]
        witness: Vec<String>,
        #[arg(long, value_enum, default_value_t)]
        format: super::Format,
        #[command(flatten)]
        repo: RepoArgs,
    },
    /// Print an entry's RFC 9162 inclusion proof (JSON), against the checkpoint's size; or,
    /// with --order, what the agents' receipt logs prove about an order: that it was decided,
    /// under which approved state, and what its provider answered (docs/law.md § Receipts).
    #[command(after_help = "Examples:
  treaty audit prove 41
  treaty audit prove --order ord-7f3a --repo /var/lib/treaty-agent/mirror.git

With --order: exit 0 when a decision receipt is under a checkpoint its agent signed; 1 when none is.")]
    Prove {
        #[arg(required_unless_present = "order")]
        index: Option<u64>,
        /// Prove an order's receipts instead of one entry (the repository holds the agents'
        /// receipt logs: an agent's mirror, or a clone that fetched refs/treaty/receipts/*).
        #[arg(long, conflicts_with_all = ["index", "size"])]
        order: Option<String>,
        /// With --order: the governance revision whose root names the agents [default: HEAD;
        /// in an agent's mirror, which has none, the branch it follows]
        #[arg(long, requires = "order")]
        rev: Option<String>,
        /// Prove against this size (default: the checkpoint's).
        #[arg(long)]
        size: Option<u64>,
        #[command(flatten)]
        repo: RepoArgs,
    },
    /// Print the RFC 9162 consistency proof between two sizes (JSON).
    Consistency {
        old: u64,
        new: u64,
        #[command(flatten)]
        repo: RepoArgs,
    },
    /// List the entries.
    Show {
        #[arg(long, value_enum, default_value_t)]
        format: super::Format,
        #[command(flatten)]
        repo: RepoArgs,
    },
}

fn open(r: &RepoArgs) -> anyhow::Result<(git2::Repository, treaty::source::Repo)> {
    let dir = match &r.repo {
        Some(d) => d.clone(),
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    let repo = treaty::source::Repo::discover(&dir)?;
    let git = git2::Repository::discover(&dir)
        .with_context(|| format!("{}: not a git repository", dir.display()))?;
    Ok((git, repo))
}

/// The log group and actor keys from the governance state at HEAD.
fn log_trust(
    r: &RepoArgs,
    repo: &treaty::source::Repo,
) -> anyhow::Result<Result<LogTrust, String>> {
    Ok(
        trust_at(r, repo, "HEAD")?
            .and_then(|t| LogTrust::from_trust(&t).map_err(|e| e.to_string())),
    )
}

/// The verified trust of the governance tree at `rev` (`Err`: why the root does not verify).
fn trust_at(
    r: &RepoArgs,
    repo: &treaty::source::Repo,
    rev: &str,
) -> anyhow::Result<Result<treaty::trust::Trust, String>> {
    let tree = repo.tree_at(repo.resolve(rev)?)?;
    let anchor = super::anchor(r.trust.as_deref())?;
    let (t, findings) = treaty::trust::load(&tree, &anchor, treaty::time::now());
    Ok(t.filter(|t| t.chain_ok).ok_or_else(|| {
        format!(
            "the root of trust does not verify: {}",
            findings
                .iter()
                .filter(|f| f.is_error())
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        )
    }))
}

fn refused(e: AuditError) -> anyhow::Result<Exit> {
    match e {
        AuditError::Refused(m) => {
            tell!("treaty: refused: {m}");
            Ok(Exit::Findings)
        }
        e => Err(e.into()),
    }
}

/// `treaty audit prove --order ID`: the receipts of every agent log in the repository,
/// vouched for by the root's `agent` role at HEAD; JSON on stdout.
fn prove_order(r: &RepoArgs, order: &str, rev: Option<&str>) -> anyhow::Result<Exit> {
    let (git, repo) = open(r)?;
    // An agent's mirror has no HEAD: the one branch it fetched (refs/remotes/origin/NAME).
    let rev = match rev {
        Some(r) => r.to_owned(),
        None if git.head().is_ok() => "HEAD".to_owned(),
        None => {
            let followed: Vec<String> = git
                .references_glob("refs/remotes/origin/*")?
                .filter_map(|r| r.ok().and_then(|r| r.name().ok().map(str::to_owned)))
                .collect();
            match followed.as_slice() {
                [one] => one.clone(),
                _ => anyhow::bail!(
                    "the repository has no HEAD and not one followed branch: give --rev"
                ),
            }
        }
    };
    let t = match trust_at(r, &repo, &rev)? {
        Ok(t) => t,
        Err(m) => {
            tell!("treaty: refused: {m}");
            return Ok(Exit::Findings);
        }
    };
    let tree = repo.tree_at(repo.resolve(&rev)?)?;
    let anchor = super::anchor(r.trust.as_deref())?;
    // Checkpoint timestamps are checked against the governed TSA roots, when approved.
    let roots = treaty::release::ceremony::approved_tsa_roots(&tree, &anchor)
        .ok()
        .and_then(|pem| treaty::tsp::Roots::from_pem(&pem).ok());
    let (proofs, skipped) = treaty::law::receipts::prove_order(&git, &t, roots.as_ref(), order)?;
    let decided = proofs.iter().any(|p| p.decision.is_some());
    super::output::json(&serde_json::json!({
        "order_id": order,
        "decided": decided,
        "trusted_at": rev,
        "logs": proofs,
        "skipped": skipped,
    }))?;
    for s in &skipped {
        tell!("treaty: {}: not read: {}", s.refname, s.reason);
    }
    if !decided {
        tell!("treaty: no agent's signed receipt log holds a decision on order {order:?}");
    }
    Ok(if decided { Exit::Ok } else { Exit::Findings })
}

/// The log on the ref, recomputed; `None` (after saying why) when it does not verify, since
/// no proof is given from a log that does not.
fn clean_scan(git: &git2::Repository) -> anyhow::Result<Option<store::Scanned>> {
    let s = store::scan(git, store::resolve(git, None)?, None, false)?;
    if let Some(p) = s.problems.first() {
        tell!("treaty: refused: the log does not verify: {p}");
        return Ok(None);
    }
    Ok(Some(s))
}

/// Prints a proof as JSON, or says why there is none.
/// A proof asked for positions the log does not have is a request that cannot be resolved
/// (exit 2, docs/model.md § Exit codes), not a finding about the log.
fn print_proof<P: serde::Serialize>(proof: Result<P, audit::ProofError>) -> anyhow::Result<Exit> {
    match proof {
        Ok(p) => {
            super::output::json(&p)?;
            Ok(Exit::Ok)
        }
        Err(m) => anyhow::bail!("cannot make that proof: {m}"),
    }
}

pub fn run(c: Command) -> anyhow::Result<Exit> {
    match c {
        Command::Append {
            kind,
            time,
            subject,
            digest,
            commit,
            verdict,
            details,
            from_jsonl,
            key,
            repo,
        } => {
            let (git, _) = open(&repo)?;
            let key = key
                .map(|k| treaty::crypto::SigningKey::load(&k, || super::keys::passphrase(false)))
                .transpose()?;
            let mut values = Vec::new();
            if let Some(f) = from_jsonl {
                let text = std::fs::read_to_string(&f)
                    .with_context(|| format!("cannot read {}", f.display()))?;
                for (i, line) in text.lines().enumerate() {
                    if line.trim().is_empty() {
                        continue;
                    }
                    match treaty::json::from_str::<serde_json::Map<String, serde_json::Value>>(line)
                    {
                        Ok(m) => values.push(audit::entry_from_record(m)),
                        Err(e) => {
                            tell!(
                                "treaty: refused: {}:{}: not a JSON object: {e}",
                                f.display(),
                                i + 1
                            );
                            return Ok(Exit::Findings);
                        }
                    }
                }
            } else {
                let mut o = serde_json::Map::new();
                o.insert("kind".into(), kind.unwrap_or_default().into());
                o.insert(
                    "time".into(),
                    time.unwrap_or_else(|| treaty::time::format(treaty::time::now()))
                        .into(),
                );
                if subject.is_some() || digest.is_some() {
                    let mut s = serde_json::Map::new();
                    if let Some(p) = subject {
                        s.insert("path".into(), p.into());
                    }
                    if let Some(d) = digest {
                        s.insert("digest".into(), d.into());
                    }
                    o.insert("subject".into(), s.into());
                }
                if let Some(c) = commit {
                    o.insert("commit".into(), c.into());
                }
                if let Some(v) = verdict {
                    o.insert("verdict".into(), v.into());
                }
                if let Some(d) = details {
                    let d: serde_json::Value =
                        treaty::json::from_str(&d).context("--details is not JSON")?;
                    o.insert("details".into(), d);
                }
                values.push(serde_json::Value::Object(o));
            }
            let mut entries = Vec::with_capacity(values.len());
            for (i, v) in values.into_iter().enumerate() {
                let v = match &key {
                    Some(k) => audit::sign_entry(v, k)?,
                    None => v,
                };
                match audit::entry_bytes(&v) {
                    Ok(b) => entries.push(b),
                    Err(e) => {
                        tell!("treaty: refused: entry {}: {e}", i + 1);
                        return Ok(Exit::Findings);
                    }
                }
            }
            if entries.is_empty() {
                say!("nothing to append");
                return Ok(Exit::Ok);
            }
            match store::append(
                &git,
                &entries,
                &format!("audit: append {} entries", entries.len()),
            ) {
                Ok((old, new, c)) => {
                    say!(
                        "appended entries {old}..{} to {} ({}); not vouched for until `treaty audit checkpoint`",
                        new - 1,
                        audit::AUDIT_REF,
                        &c.to_string()[..12]
                    );
                    Ok(Exit::Ok)
                }
                Err(e) => refused(e),
            }
        }
        Command::Checkpoint { key, origin, repo } => {
            let (git, src) = open(&repo)?;
            let trust = match log_trust(&repo, &src)? {
                Ok(t) => t,
                Err(m) => {
                    tell!("treaty: refused: {m}");
                    return Ok(Exit::Findings);
                }
            };
            let key = treaty::crypto::SigningKey::load(&key, || super::keys::passphrase(false))?;
            let me = key.classical_public();
            let Some((member, _)) = trust.signers.iter().find(|(_, k)| *k == me) else {
                tell!(
                    "treaty: refused: key {} ({}) is not a member of log group {:?}",
                    me.key_id(),
                    key.member_id,
                    trust.group
                );
                return Ok(Exit::Findings);
            };
            let s = store::scan(&git, store::resolve(&git, None)?, Some(&trust), false)?;
            if let Some(p) = s.problems.first() {
                tell!(
                    "treaty: refused: the log does not verify, so it will not be vouched for: {p}"
                );
                return Ok(Exit::Findings);
            }
            let current = s
                .checkpoint
                .as_deref()
                .and_then(|b| treaty::note::Note::parse(b).ok());
            let origin = origin
                .or_else(|| {
                    current.as_ref().and_then(|n| {
                        treaty::note::Checkpoint::parse(&n.text)
                            .ok()
                            .map(|c| c.origin)
                    })
                })
                .unwrap_or_else(|| audit::DEFAULT_ORIGIN.to_owned());
            let cp = treaty::note::Checkpoint {
                origin: origin.clone(),
                size: s.tree.len() as u64,
                root: s.tree.root(),
                extensions: vec![],
            };
            let text = cp.text();
            let mut note = treaty::note::sign(&text, &origin, &key)?;
            if let Some(cur) = current.filter(|n| n.text == text) {
                // Same tree: this member's signature beside the others, replacing its own earlier
                // line (same name and key id). ECDSA (a TPM key) signs differently each time, so
                // keeping both would pile lines up toward the note's limit on an idle log.
                let mine = note.signatures.clone();
                note.signatures = cur.signatures;
                for s in mine {
                    note.signatures.retain(|o| !(o.0 == s.0 && o.1 == s.1));
                    note.signatures.push(s);
                }
            }
            match store::put_checkpoint(
                &git,
                note.encode().as_bytes(),
                &format!("audit: checkpoint size {} by {member}", cp.size),
            ) {
                Ok(_) => {
                    // A line at a time through the sink: the note's origin and signer names
                    // come from the log on the ref (its parser already refuses control
                    // characters; bidi controls it lets through are escaped here).
                    for l in note.encode().lines() {
                        say!("{l}");
                    }
                    Ok(Exit::Ok)
                }
                Err(e) => refused(e),
            }
        }
        Command::Cosign {
            key,
            name,
            line,
            witness,
            repo,
        } => {
            let (git, _) = open(&repo)?;
            let scanned = store::scan(&git, store::resolve(&git, None)?, None, false)?;
            if let Some(p) = scanned.problems.first() {
                tell!("treaty: refused: the log does not verify ({p}); a witness cosigns only a log it checked (`treaty audit verify`)");
                return Ok(Exit::Findings);
            }
            let Some(bytes) = scanned.checkpoint else {
                tell!("treaty: refused: the log has no checkpoint to cosign");
                return Ok(Exit::Findings);
            };
            let mut note = treaty::note::Note::parse(&bytes)?;
            let cp = treaty::note::Checkpoint::parse(&note.text)?;
            let (entry, vk) = match (key, name, line, witness) {
                (Some(key), Some(name), _, _) => {
                    let key =
                        treaty::crypto::SigningKey::load(&key, || super::keys::passphrase(false))?;
                    let now = u64::try_from(treaty::time::now().unix()).unwrap_or(0);
                    treaty::note::cosign(&note.text, &name, &key, now)?
                }
                (_, _, Some(line), Some(witness)) => {
                    let vk = treaty::note::VerifierKey::parse(&witness)
                        .with_context(|| format!("--witness {witness}"))?;
                    // The line as the note format writes it, checked on this checkpoint.
                    let with = format!("{}{}\n", note.encode(), line.trim());
                    let theirs = treaty::note::Note::parse(with.as_bytes())
                        .with_context(|| "--line is not a signature line".to_owned())?;
                    let Some(entry) = theirs.signatures.last().cloned() else {
                        anyhow::bail!("--line is not a signature line");
                    };
                    let alone = treaty::note::Note {
                        text: note.text.clone(),
                        signatures: vec![entry.clone()],
                    };
                    let Some((_, ts)) = alone.verified(std::slice::from_ref(&vk)).pop() else {
                        tell!(
                            "treaty: refused: the line is not {}'s signature of the current checkpoint (size {})",
                            vk.name,
                            cp.size
                        );
                        return Ok(Exit::Findings);
                    };
                    // A cosignature dated ahead of this clock by more than ten minutes is
                    // refused here (C2SP lets verifiers; `audit verify` does not judge time).
                    let now = treaty::time::now().unix();
                    if let Some(ts) = ts.and_then(|t| i64::try_from(t).ok()) {
                        if ts > now.saturating_add(600) {
                            tell!(
                                "treaty: refused: {}'s cosignature is dated {ts}, more than ten minutes after this clock ({now})",
                                vk.name
                            );
                            return Ok(Exit::Findings);
                        }
                    }
                    (entry, vk)
                }
                _ => anyhow::bail!("give --key and --name, or --line and --witness"),
            };
            // One line per witness key: a new cosignature (a new timestamp) replaces its older
            // one rather than piling up to the note's limit of lines.
            note.signatures
                .retain(|s| (s.0.as_str(), s.1) != (entry.0.as_str(), entry.1));
            note.signatures.push(entry);
            match store::put_checkpoint(
                &git,
                note.encode().as_bytes(),
                &format!("audit: cosigned by {}", vk.name),
            ) {
                Ok(_) => {
                    say!("cosigned as {}", vk.encode());
                    Ok(Exit::Ok)
                }
                Err(e) => refused(e),
            }
        }
        Command::Verify {
            from,
            rev,
            witness,
            format,
            repo,
        } => {
            let (git, src) = open(&repo)?;
            let mut trust = match log_trust(&repo, &src)? {
                Ok(t) => t,
                Err(m) => {
                    tell!("treaty: refused: {m}");
                    return Ok(Exit::Findings);
                }
            };
            for w in &witness {
                let vk = treaty::note::VerifierKey::parse(w)
                    .with_context(|| format!("--witness {w}"))?;
                // A cosignature/v1 does not sign its witness's name (C2SP tlog-cosignature):
                // one key under two names would count one signature twice.
                if let Some(twin) = trust.witnesses.iter().find(|t| t.key == vk.key) {
                    anyhow::bail!(
                        "--witness {} and --witness {} share one public key: a witness's one signature would count twice",
                        twin.name,
                        vk.name
                    );
                }
                trust.witnesses.push(vk);
            }
            let commit = store::resolve(&git, rev.as_deref())?;
            let old = from
                .as_deref()
                .map(|f| store::read_checkpoint_arg(&git, f))
                .transpose()?;
            let (report, _) = store::verify(&git, commit, &trust, old.as_deref())?;
            match format {
                super::Format::Json => super::output::json_ok(&report, report.problems.is_empty())?,
                super::Format::Human => {
                    say!(
                        "audit log {}: {} entries, root {}",
                        audit::AUDIT_REF,
                        report.size,
                        report.root
                    );
                    if let Some(c) = &report.checkpoint {
                        say!(
                            "checkpoint: {} size {} signed by {}{}",
                            c.origin,
                            c.size,
                            c.signed_by.join(", "),
                            if c.witnessed_by.is_empty() {
                                String::new()
                            } else {
                                let named: Vec<String> = c
                                    .witnessed_by
                                    .iter()
                                    .map(|w| match c.cosigned_at.get(w) {
                                        Some(t) => format!("{w} (cosigned {t})"),
                                        None => w.clone(),
                                    })
                                    .collect();
                                format!("; witnessed by {}", named.join(", "))
                            }
                        );
                    }
                    for n in &report.notes {
                        say!("note: {n}");
                    }
                    for p in &report.problems {
                        super::output::finding_line(format_args!("error: {p}"));
                    }
                    say!(
                        "result: {}",
                        if report.ok {
                            "VERIFIED"
                        } else {
                            "NOT VERIFIED"
                        }
                    );
                }
            }
            Ok(if report.ok { Exit::Ok } else { Exit::Findings })
        }
        Command::Prove {
            order: Some(order),
            repo,
            rev,
            ..
        } => prove_order(&repo, &order, rev.as_deref()),
        Command::Prove {
            index, size, repo, ..
        } => {
            let index = index.unwrap_or_default();
            let (git, _) = open(&repo)?;
            let Some(s) = clean_scan(&git)? else {
                return Ok(Exit::Findings);
            };
            let size = size
                .or_else(|| {
                    s.checkpoint
                        .as_deref()
                        .and_then(|b| treaty::note::Note::parse(b).ok())
                        .and_then(|n| treaty::note::Checkpoint::parse(&n.text).ok())
                        .map(|c| c.size)
                })
                .unwrap_or(s.tree.len() as u64);
            print_proof(audit::inclusion_proof(&s.tree, index, size))
        }
        Command::Consistency { old, new, repo } => {
            let (git, _) = open(&repo)?;
            let Some(s) = clean_scan(&git)? else {
                return Ok(Exit::Findings);
            };
            print_proof(audit::consistency_proof(&s.tree, old, new))
        }
        Command::Show { format, repo } => {
            let (git, _) = open(&repo)?;
            let s = store::scan(&git, store::resolve(&git, None)?, None, true)?;
            let entries: Vec<serde_json::Value> = s
                .entries
                .iter()
                .map(|e| treaty::json::from_slice(e).unwrap_or(serde_json::Value::Null))
                .collect();
            match format {
                super::Format::Json => super::output::json(&serde_json::json!({
                    "size": entries.len(), "root": hex::encode(s.tree.root()), "entries": entries
                }))?,
                super::Format::Human => {
                    for (i, e) in entries.iter().enumerate() {
                        let field = |k: &str| e.get(k).and_then(|v| v.as_str()).unwrap_or("");
                        say!(
                            "{i:>6}  {}  {:<20} {:<8} {}",
                            field("time"),
                            field("kind"),
                            field("verdict"),
                            e.get("subject")
                                .and_then(|s| s.get("path"))
                                .and_then(|p| p.as_str())
                                .unwrap_or("")
                        );
                    }
                    say!(
                        "{} entries, root {}",
                        entries.len(),
                        hex::encode(s.tree.root())
                    );
                }
            }
            for p in &s.problems {
                tell!("error: {p}");
            }
            Ok(if s.problems.is_empty() {
                Exit::Ok
            } else {
                Exit::Findings
            })
        }
    }
}
