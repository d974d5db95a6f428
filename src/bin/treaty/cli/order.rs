//! `treaty order new|attest|sign|check` and `treaty ack sign|verify`: runtime messages for
//! people and scripts (docs/law.md). `check` and `verify` judge against the approved state of
//! a repository, offline: with no replay or quota state, an order is never reported allowed.

use anyhow::Context;
use std::path::{Path, PathBuf};

use super::output::{say, tell};
use super::Exit;
use treaty::law::message::{Ack, AckStatus, Attestation, Kind, Order};
use treaty::law::{signed, AckAnswer, Answer, Engine};

#[derive(Debug, clap::Subcommand)]
pub enum OrderCommand {
    /// Write an order (JSON) to stdout: a fresh nonce and id, issued now.
    #[command(
        after_help = "Example:\n  treaty order new --treaty AURORA-AKASH-001 --region us-east --gpu-milli-hours 1500 --credits 1200 \\\n    --attestation att.json > order.json\n  treaty order sign order.json --key examples/demo-keys/dispatcher-1.key > order.signed.json"
    )]
    New(NewArgs),
    /// Sign a reputation attestation for a requester (a member of the `reputation` role).
    #[command(
        after_help = "Example:\n  treaty order attest --subject dispatcher-1 --score 0.9 --key examples/demo-keys/reputation-1.key > att.json"
    )]
    Attest(AttestArgs),
    /// Sign an order (a member of the `orders` role): its DSSE envelope to stdout.
    Sign(SignArgs),
    /// Judge a signed order against the approved state, offline. Replay and quota usage need
    /// the agent's state: they are reported not-evaluated, and the exit is 1 even when every
    /// other check passes.
    #[command(
        after_help = "Exit codes: 1 always when the order could be judged (denials, or not-evaluated checks);\n2 when it cannot be judged (no approved state, unreadable file).\n\nExample:\n  treaty order check order.signed.json"
    )]
    Check(CheckArgs),
}

#[derive(Debug, clap::Subcommand)]
pub enum AckCommand {
    /// Sign a provider's ACK or completion of a signed order.
    #[command(
        after_help = "Example:\n  treaty ack sign --order order.signed.json --status accepted --key examples/demo-keys/akash-1.key > ack.json\n  treaty ack sign --order order.signed.json --status completed --used-gpu-milli-hours 900 --key examples/demo-keys/akash-1.key"
    )]
    Sign(AckSignArgs),
    /// Verify an ACK: signed by the provider of its treaty in the approved state.
    Verify(AckVerifyArgs),
}

#[derive(Debug, clap::Args)]
pub struct NewArgs {
    #[arg(long)]
    treaty: String,
    #[arg(long)]
    region: String,
    /// GPU time asked, in milli-GPU-hours (1500 = 1.5 GPU-hours).
    #[arg(long)]
    gpu_milli_hours: u64,
    #[arg(long)]
    credits: u64,
    /// How long the order is valid from now (10m, 1h).
    #[arg(long, default_value = "10m")]
    ttl: String,
    /// The order id [default: `ord-` and 16 random hex digits].
    #[arg(long)]
    order_id: Option<String>,
    /// The longest the job may run, in seconds.
    #[arg(long)]
    max_duration_seconds: Option<u64>,
    /// A signed attestation (`treaty order attest`) to embed.
    #[arg(long)]
    attestation: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct AttestArgs {
    /// The requester's member id in the `orders` role group.
    #[arg(long)]
    subject: String,
    /// Reputation 0..1 (0.9), kept as basis points (9000).
    #[arg(long)]
    score: f64,
    #[arg(long, default_value = "24h")]
    ttl: String,
    #[arg(long)]
    key: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// The order (JSON); `-` for stdin.
    order: PathBuf,
    #[arg(long)]
    key: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The signed order (DSSE envelope).
    order: PathBuf,
    /// The approved revision to judge against.
    #[arg(long, default_value = "HEAD")]
    rev: String,
    /// Judge as of this time (RFC 3339) [default: now].
    #[arg(long)]
    at: Option<String>,
    #[arg(long)]
    trust: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    format: super::Format,
    #[arg(long = "repo", value_name = "DIR")]
    repo: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct AckSignArgs {
    /// The signed order this ACK answers.
    #[arg(long)]
    order: PathBuf,
    #[arg(long, value_enum)]
    status: StatusArg,
    /// Completions: the GPU time consumed, in milli-GPU-hours.
    #[arg(long)]
    used_gpu_milli_hours: Option<u64>,
    #[arg(long)]
    reason: Option<String>,
    #[arg(long)]
    key: PathBuf,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum StatusArg {
    Accepted,
    Rejected,
    Completed,
    Failed,
}

#[derive(Debug, clap::Args)]
pub struct AckVerifyArgs {
    ack: PathBuf,
    #[arg(long, default_value = "HEAD")]
    rev: String,
    #[arg(long)]
    trust: Option<PathBuf>,
    #[arg(long = "repo", value_name = "DIR")]
    repo: Option<PathBuf>,
}

/// The largest message file read.
const MAX_MESSAGE: u64 = 1024 * 1024;

fn read(p: &Path) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let mut b = Vec::new();
    if p == Path::new("-") {
        std::io::stdin()
            .take(MAX_MESSAGE + 1)
            .read_to_end(&mut b)
            .context("stdin")?;
    } else {
        std::fs::File::open(p)
            .and_then(|f| f.take(MAX_MESSAGE + 1).read_to_end(&mut b))
            .with_context(|| p.display().to_string())?;
    }
    anyhow::ensure!(
        b.len() as u64 <= MAX_MESSAGE,
        "{}: larger than {MAX_MESSAGE} bytes",
        p.display()
    );
    Ok(b)
}

fn random_hex(n: usize) -> anyhow::Result<String> {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(hex::encode(b))
}

fn ttl(s: &str) -> anyhow::Result<i64> {
    Ok(treaty::snapshot::parse_ttl(s)
        .with_context(|| format!("--ttl {s}"))?
        .whole_seconds())
}

fn plus(now: treaty::time::Instant, secs: i64) -> anyhow::Result<String> {
    treaty::time::Instant::from_unix(now.unix().saturating_add(secs))
        .map(treaty::time::format)
        .context("a time past year 9999")
}

/// Machine output: one JSON document on stdout.
#[allow(clippy::disallowed_methods)]
fn emit(bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    o.write_all(bytes)?;
    o.write_all(b"\n")?;
    Ok(())
}

fn load_key(p: &Path) -> anyhow::Result<treaty::crypto::SigningKey> {
    Ok(treaty::crypto::SigningKey::load(p, || {
        super::keys::passphrase(false)
    })?)
}

pub fn run_order(c: OrderCommand) -> anyhow::Result<Exit> {
    match c {
        OrderCommand::New(a) => {
            let now = treaty::time::now();
            let attestation = match &a.attestation {
                None => None,
                Some(p) => Some(
                    treaty::json::parse_value(&read(p)?)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?,
                ),
            };
            let o = Order {
                spec_version: "1.0".into(),
                order_id: a.order_id.unwrap_or(format!("ord-{}", random_hex(8)?)),
                treaty_id: a.treaty,
                nonce: random_hex(16)?,
                issued_at: treaty::time::format(now),
                not_after: plus(now, ttl(&a.ttl)?)?,
                region: a.region,
                gpu_milli_hours: a.gpu_milli_hours,
                credits: a.credits,
                max_duration_seconds: a.max_duration_seconds,
                attestation,
            };
            let b = serde_json::to_vec_pretty(&o)?;
            // What is written must be what the agent accepts.
            Order::parse(&b).map_err(|e| anyhow::anyhow!("{e}"))?;
            emit(&b)?;
            Ok(Exit::Ok)
        }
        OrderCommand::Attest(a) => {
            anyhow::ensure!(
                (0.0..=1.0).contains(&a.score),
                "--score {}: a reputation is 0..1",
                a.score
            );
            let now = treaty::time::now();
            let at = Attestation {
                spec_version: "1.0".into(),
                subject: a.subject,
                // In 0..=1 by the check above: the product is in 0..=10,000 (rounded: 0.29
                // is 2,900, not the 2,899 its binary form would floor to).
                score_bp: (a.score * 10_000.0).round() as u32,
                issued_at: treaty::time::format(now),
                expires: plus(now, ttl(&a.ttl)?)?,
            };
            let b = serde_json::to_vec(&at)?;
            Attestation::parse(&b).map_err(|e| anyhow::anyhow!("{e}"))?;
            emit(&signed::sign(&b, Kind::Attestation, &load_key(&a.key)?)?)?;
            Ok(Exit::Ok)
        }
        OrderCommand::Sign(a) => {
            let b = read(&a.order)?;
            let o = Order::parse(&b).map_err(|e| anyhow::anyhow!("{}: {e}", a.order.display()))?;
            let compact = serde_json::to_vec(&o)?;
            emit(&signed::sign(&compact, Kind::Order, &load_key(&a.key)?)?)?;
            Ok(Exit::Ok)
        }
        OrderCommand::Check(a) => check(a),
    }
}

/// The approved tree at `rev` and its trust, or why there is none.
fn approved(
    repo_dir: Option<&Path>,
    rev: &str,
    trust: Option<&Path>,
    at: treaty::time::Instant,
) -> anyhow::Result<Result<(treaty::source::Tree, treaty::trust::Trust, String), String>> {
    let dir = match repo_dir {
        Some(d) => d.to_path_buf(),
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    let repo = treaty::source::Repo::discover(&dir)?;
    let anchor = super::anchor(trust)?;
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
            "the state at {rev} is not approved; `treaty verify --rev {rev}` says why"
        )));
    }
    let (t, _) = treaty::trust::load(&tree, &anchor, at);
    Ok(t.map(|t| (tree, t, commit.to_string()))
        .ok_or_else(|| format!("no usable root at {rev}")))
}

fn offline_engine(
    tree: &treaty::source::Tree,
    trust: &treaty::trust::Trust,
    commit: String,
) -> anyhow::Result<Engine<treaty::law::store::MemStore>> {
    let law = treaty::law::Law::from_tree(
        tree,
        treaty::law::Provenance {
            commit,
            root_version: trust.root.version,
            snapshot_version: None,
        },
    )?;
    Ok(Engine {
        law,
        signers: signed::Signers::from_trust(trust),
        bounds: treaty::law::decide::Bounds::default(),
        // No state: born at the dawn of time (so nothing is `state-too-new`), empty.
        store: treaty::law::store::MemStore::new(treaty::time::Instant::MIN),
        fresh_until: treaty::time::Instant::MAX,
        attestations: Default::default(),
        health: Default::default(),
        receipts: None,
    })
}

/// The checks an offline judgement cannot make.
const NOT_EVALUATED: [(&str, &str); 2] = [
    (
        "replay",
        "whether the nonce or order id was used needs the agent's state",
    ),
    (
        "quota-usage",
        "the day's GPU hours, volume and concurrent jobs are checked against an empty day only",
    ),
];

fn check(a: CheckArgs) -> anyhow::Result<Exit> {
    let at = match &a.at {
        Some(s) => treaty::time::parse(s)
            .map_err(anyhow::Error::msg)
            .context("--at")?,
        None => treaty::time::now(),
    };
    let bytes = read(&a.order)?;
    let (tree, trust, commit) = match approved(a.repo.as_deref(), &a.rev, a.trust.as_deref(), at)? {
        Ok(x) => x,
        Err(m) => anyhow::bail!("{m}"),
    };
    let engine = offline_engine(&tree, &trust, commit)?;
    let answer = engine.decide(&bytes, at)?;
    let denials = match &answer {
        Answer::Unauthenticated(d) | Answer::Refused(d) => vec![d.clone()],
        Answer::Decided { decision, .. } => decision.denials.clone(),
    };
    if a.format == super::Format::Json {
        let v = serde_json::json!({
            "order": a.order.display().to_string(),
            "allowed": serde_json::Value::Null,
            "denials": denials,
            "not_evaluated": NOT_EVALUATED.iter().map(|(k, why)| serde_json::json!({"check": k, "why": why})).collect::<Vec<_>>(),
        });
        emit(&serde_json::to_vec_pretty(&v)?)?;
        return Ok(Exit::Findings);
    }
    let name = treaty::text::escape(&a.order.display().to_string()).into_owned();
    for d in &denials {
        tell!("{name}: denied: {}: {}", d.code, d.message);
    }
    if denials.is_empty() {
        say!("{name}: every stateless check passed (signature, signer, treaty, policy, region, reputation, amounts)");
    }
    for (k, why) in NOT_EVALUATED {
        tell!("{name}: not-evaluated: {k}: {why}");
    }
    tell!("{name}: not allowed offline: only the agent, with its replay and quota state, allows an order");
    Ok(Exit::Findings)
}

pub fn run_ack(c: AckCommand) -> anyhow::Result<Exit> {
    match c {
        AckCommand::Sign(a) => {
            let env_bytes = read(&a.order)?;
            let env = signed::open(&env_bytes, Kind::Order)
                .map_err(|e| anyhow::anyhow!("{}: {e}", a.order.display()))?;
            let o = Order::parse(&env.payload)
                .map_err(|e| anyhow::anyhow!("{}: {e}", a.order.display()))?;
            use sha2::Digest;
            let ack = Ack {
                spec_version: "1.0".into(),
                order_id: o.order_id,
                treaty_id: o.treaty_id,
                order_sha256: hex::encode(sha2::Sha256::digest(&env.payload)),
                status: match a.status {
                    StatusArg::Accepted => AckStatus::Accepted,
                    StatusArg::Rejected => AckStatus::Rejected,
                    StatusArg::Completed => AckStatus::Completed,
                    StatusArg::Failed => AckStatus::Failed,
                },
                at: treaty::time::format(treaty::time::now()),
                used_gpu_milli_hours: a.used_gpu_milli_hours,
                reason: a.reason,
            };
            let b = serde_json::to_vec(&ack)?;
            Ack::parse(&b).map_err(|e| anyhow::anyhow!("{e}"))?;
            emit(&signed::sign(&b, Kind::Ack, &load_key(&a.key)?)?)?;
            Ok(Exit::Ok)
        }
        AckCommand::Verify(a) => {
            let now = treaty::time::now();
            let bytes = read(&a.ack)?;
            let (tree, trust, commit) =
                match approved(a.repo.as_deref(), &a.rev, a.trust.as_deref(), now)? {
                    Ok(x) => x,
                    Err(m) => anyhow::bail!("{m}"),
                };
            let engine = offline_engine(&tree, &trust, commit)?;
            let name = treaty::text::escape(&a.ack.display().to_string()).into_owned();
            // Only the signature and signer are judged offline: an ACK the engine did not
            // refuse as unauthenticated is signed by its treaty's provider.
            match engine.ack(&bytes, now)? {
                AckAnswer::Unauthenticated(d) => {
                    tell!("{name}: {}: {}", d.code, d.message);
                    Ok(Exit::Findings)
                }
                AckAnswer::Refused(d) if d.code == "ack-malformed" => {
                    tell!("{name}: {}: {}", d.code, d.message);
                    Ok(Exit::Findings)
                }
                _ => {
                    say!("{name}: signed by the provider of its treaty");
                    Ok(Exit::Ok)
                }
            }
        }
    }
}
