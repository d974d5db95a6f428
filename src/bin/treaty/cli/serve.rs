//! `treaty-agent --serve`: the decision point's flags and `agent.toml` keys, the state store it
//! opens under `--state`, and the refresh of the law after every pull.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use treaty::agent::serve::{self, Limits, Live, ServeConfig, TlsFiles, Tokens};
use treaty::agent::{self, Store as _};
use treaty::law::decide::Bounds;

/// The environment variable that may carry the tokens (`ROLE:TOKEN`, comma-separated).
pub const TOKENS_ENV: &str = "TREATY_AGENT_TOKENS";

/// The decision point's flags (each also an `agent.toml` key by its long name).
#[derive(Debug, Default, Clone, clap::Args)]
#[command(next_help_heading = "Decision point")]
pub struct ServeArgs {
    /// PEM certificate chain for TLS on --serve.
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long)]
    tls_key: Option<PathBuf>,
    /// Require client certificates issued by this PEM CA (mutual TLS); the subject's OU names
    /// the caller's role: dispatcher, provider or operator.
    #[arg(long)]
    client_ca: Option<PathBuf>,
    /// Bearer tokens, `ROLE:TOKEN` per line (roles: dispatcher, provider, operator; tokens of
    /// at least 32 characters; mode 0600). Or the TREATY_AGENT_TOKENS variable, never a flag.
    #[arg(long)]
    tokens: Option<PathBuf>,
    /// Largest request body in bytes [default: 65536].
    #[arg(long)]
    max_body: Option<usize>,
    /// Connections served at once; more are closed [default: 512].
    #[arg(long)]
    max_connections: Option<usize>,
    /// Connections served at once from one IP address, before any authentication; more from
    /// it are closed [default: 64].
    #[arg(long)]
    max_connections_per_address: Option<usize>,
    /// Time to read and answer one request [default: 5s].
    #[arg(long)]
    request_timeout: Option<String>,
    /// Requests a second per caller (token, certificate or address) [default: 2000].
    #[arg(long)]
    rate: Option<u32>,
    /// Time SIGTERM waits for requests in flight [default: 10s].
    #[arg(long)]
    drain_timeout: Option<String>,
    /// Treaties with their own series on /metrics; the rest are `_other` [default: 1000].
    #[arg(long)]
    max_treaty_series: Option<usize>,
    /// How long an allowed order's reservation waits for the provider's ACK [default: 5m].
    #[arg(long)]
    reservation_ttl: Option<String>,
    /// The longest a job may run before it is closed `job-timed-out` [default: 24h].
    #[arg(long)]
    max_job: Option<String>,
    /// The oldest reputation attestation accepted [default: 24h].
    #[arg(long)]
    attestation_max_age: Option<String>,
    /// Time budget of one evaluation of the Rego rules, in milliseconds (1..=1000); an
    /// overrun denies the order `rego-error` [default: 5].
    #[arg(long)]
    rego_budget_ms: Option<u64>,
    /// Keep nonces, reservations, jobs and day counters in Redis, shared by every agent of the
    /// federation: redis://HOST:PORT/DB or rediss://… (TLS). No password in it: give it in
    /// --state-password-file or TREATY_AGENT_REDIS_PASSWORD. Without it, the embedded store
    /// under --state.
    #[arg(long, value_name = "URL")]
    state_url: Option<String>,
    /// A file (mode 0600) holding the Redis password.
    #[arg(long, value_name = "PATH")]
    state_password_file: Option<PathBuf>,
    /// The longest one step on the shared state may take (connect, or a reply); past it the
    /// order is not decided (503) [default: 500ms].
    #[arg(long)]
    state_timeout: Option<String>,
    /// This agent's key, a member of the root's `agent` role: decisions and ACKs are recorded
    /// as provenance receipts (write-ahead under STATE/receipts, then batched into
    /// refs/treaty/receipts/MEMBER of the mirror under checkpoints it signs). An encrypted
    /// key's passphrase comes from TREATY_AGENT_RECEIPT_KEY_PASSPHRASE. Without it, no
    /// receipts are kept.
    #[arg(long, value_name = "PATH")]
    receipt_key: Option<PathBuf>,
    /// An RFC 3161 authority that timestamps each receipt checkpoint (the token is kept beside
    /// it in the log; a failure leaves that checkpoint unstamped and is logged).
    #[arg(long, value_name = "URL", requires = "receipt_key")]
    receipt_tsa: Option<String>,
}

/// The same keys in `agent.toml`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ServeFile {
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    client_ca: Option<PathBuf>,
    tokens: Option<PathBuf>,
    max_body: Option<usize>,
    max_connections: Option<usize>,
    max_connections_per_address: Option<usize>,
    request_timeout: Option<String>,
    rate: Option<u32>,
    drain_timeout: Option<String>,
    max_treaty_series: Option<usize>,
    reservation_ttl: Option<String>,
    max_job: Option<String>,
    attestation_max_age: Option<String>,
    rego_budget_ms: Option<u64>,
    state_url: Option<String>,
    state_password_file: Option<PathBuf>,
    state_timeout: Option<String>,
    receipt_key: Option<PathBuf>,
    receipt_tsa: Option<String>,
}

impl ServeArgs {
    /// Fills what the command line left unset from the config file.
    pub fn merge(&mut self, f: ServeFile) {
        macro_rules! fill {
            ($($k:ident),*) => { $( if self.$k.is_none() { self.$k = f.$k; } )* };
        }
        fill!(
            tls_cert,
            tls_key,
            client_ca,
            tokens,
            max_body,
            max_connections,
            max_connections_per_address,
            request_timeout,
            rate,
            drain_timeout,
            max_treaty_series,
            reservation_ttl,
            max_job,
            attestation_max_age,
            rego_budget_ms,
            state_url,
            state_password_file,
            state_timeout,
            receipt_key,
            receipt_tsa
        );
    }
}

/// The most a size or count flag may be (bounded like every input).
const MAX_BODY: usize = 16 * 1024 * 1024;
const MAX_CONNECTIONS: usize = 65_536;

fn duration(v: Option<&str>, default: &str, flag: &str) -> Result<std::time::Duration, String> {
    let d =
        treaty::snapshot::parse_ttl(v.unwrap_or(default)).map_err(|e| format!("--{flag}: {e}"))?;
    Ok(std::time::Duration::from_secs(
        u64::try_from(d.whole_seconds()).unwrap_or(1),
    ))
}

fn config(addr: &str, a: &ServeArgs) -> Result<(ServeConfig, Bounds), String> {
    let d = Limits::default();
    let bounded = |v: Option<usize>, def: usize, max: usize, flag: &str| match v {
        None => Ok(def),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(n) => Err(format!("--{flag} {n}: must be 1..={max}")),
    };
    let limits = Limits {
        max_body: bounded(a.max_body, d.max_body, MAX_BODY, "max-body")?,
        max_connections: bounded(
            a.max_connections,
            d.max_connections,
            MAX_CONNECTIONS,
            "max-connections",
        )?,
        max_connections_per_address: bounded(
            a.max_connections_per_address,
            d.max_connections_per_address,
            MAX_CONNECTIONS,
            "max-connections-per-address",
        )?,
        request_timeout: duration(a.request_timeout.as_deref(), "5s", "request-timeout")?
            .min(std::time::Duration::from_secs(600)),
        rate_per_second: match a.rate {
            None => d.rate_per_second,
            Some(n) if (1..=1_000_000).contains(&n) => n,
            Some(n) => return Err(format!("--rate {n}: must be 1..=1000000")),
        },
        drain_timeout: duration(a.drain_timeout.as_deref(), "10s", "drain-timeout")?
            .min(std::time::Duration::from_secs(600)),
        max_treaty_series: bounded(
            a.max_treaty_series,
            d.max_treaty_series,
            100_000,
            "max-treaty-series",
        )?,
    };
    let tls = match (&a.tls_cert, &a.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: a.client_ca.clone(),
        }),
        (None, None) if a.client_ca.is_some() => {
            return Err("--client-ca needs --tls-cert and --tls-key".into())
        }
        (None, None) => None,
        _ => return Err("--tls-cert and --tls-key go together".into()),
    };
    let tokens = match (&a.tokens, std::env::var(TOKENS_ENV)) {
        (Some(p), _) => Some(Tokens::from_file(p).map_err(|e| e.to_string())?),
        (None, Ok(v)) => Some(Tokens::parse(&v, TOKENS_ENV).map_err(|e| e.to_string())?),
        (None, Err(_)) => None,
    };
    let secs = |v: Option<&str>, def: &str, flag: &str| duration(v, def, flag).map(|d| d.as_secs());
    let bounds = Bounds {
        skew_seconds: 0, // set by the caller from --skew
        attestation_max_age_seconds: secs(
            a.attestation_max_age.as_deref(),
            "24h",
            "attestation-max-age",
        )?,
        reservation_ttl_seconds: secs(a.reservation_ttl.as_deref(), "5m", "reservation-ttl")?,
        max_job_seconds: secs(a.max_job.as_deref(), "24h", "max-job")?,
        rego_budget_micros: match a.rego_budget_ms {
            None => 5_000,
            Some(n) if (1..=1_000).contains(&n) => n * 1_000,
            Some(n) => return Err(format!("--rego-budget-ms {n}: must be 1..=1000")),
        },
    };
    Ok((
        ServeConfig {
            addr: addr.to_owned(),
            tls,
            tokens,
            limits,
        },
        bounds,
    ))
}

/// The Redis store of `--state-url`: the password from its file (0600) or the environment,
/// never the command line. A server that is down is not an error here: the agent serves, not
/// ready and deciding nothing, until it answers.
pub fn shared_store(
    url: &str,
    password_file: Option<&Path>,
    state_timeout: Option<&str>,
) -> Result<treaty::law::redis::RedisStore, String> {
    use treaty::law::redis::{RedisConfig, RedisStore, PASSWORD_ENV, PREFIX};
    let password = match password_file {
        Some(p) => {
            use std::os::unix::fs::PermissionsExt;
            let meta = std::fs::metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
            if meta.permissions().mode() & 0o077 != 0 {
                return Err(format!(
                    "{}: readable by others; chmod 600 it (it holds the Redis password)",
                    p.display()
                ));
            }
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            Some(text.trim_end_matches(['\n', '\r']).to_owned())
        }
        None => std::env::var(PASSWORD_ENV).ok(),
    };
    let timeout = match state_timeout {
        None => std::time::Duration::from_millis(500),
        Some(v) => humantime_ms(v).ok_or_else(|| {
            format!("--state-timeout {v}: a duration such as 200ms or 2s (10ms..=60s)")
        })?,
    };
    RedisStore::open(&RedisConfig {
        url: url.to_owned(),
        password,
        timeout,
        prefix: PREFIX.into(),
    })
    .map_err(|e| format!("--state-url: {e}"))
}

/// `200ms`, `2s`: a bounded duration for the shared state's timeout.
fn humantime_ms(v: &str) -> Option<std::time::Duration> {
    let (n, unit) = v.split_at(v.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = n.parse().ok()?;
    let ms = match unit {
        "ms" => n,
        "s" => n.checked_mul(1_000)?,
        _ => return None,
    };
    (10..=60_000)
        .contains(&ms)
        .then(|| std::time::Duration::from_millis(ms))
}

/// The passphrase of an encrypted receipt key (never a flag).
pub const RECEIPT_PASSPHRASE_ENV: &str = "TREATY_AGENT_RECEIPT_KEY_PASSPHRASE";
/// How often the receipts are moved into the log.
const RECEIPT_FLUSH: std::time::Duration = std::time::Duration::from_secs(1);

/// Opens the receipts' write-ahead file and starts the thread that batches them into the log
/// (docs/law.md § Receipts). The log lives in the mirror, which the first pull creates: until
/// then receipts wait in the write-ahead file.
fn start_receipts(
    key: &Path,
    tsa: Option<String>,
    state: &Path,
) -> Result<Arc<treaty::law::receipts::Receipts>, String> {
    use treaty::law::receipts::{self, Logger, Receipts};
    let shown = key.display().to_string();
    let key = treaty::crypto::SigningKey::load(key, || {
        std::env::var(RECEIPT_PASSPHRASE_ENV).map_err(|_| treaty::crypto::KeyError::KeyFile {
            path: shown.clone(),
            reason: format!("encrypted: give its passphrase in {RECEIPT_PASSPHRASE_ENV}"),
        })
    })
    .map_err(|e| format!("--receipt-key: {e}"))?;
    let member = key.member_id.clone();
    let logger = Logger {
        mirror: state.join("mirror.git"),
        refname: receipts::refname(&member),
        origin: receipts::origin(&member),
        tsa,
        key,
    };
    let logged = if logger.mirror.exists() {
        logger.logged().map_err(|e| format!("receipts: {e}"))?
    } else {
        0
    };
    let mut opened = Receipts::open(&state.join("receipts"), &member, logged)
        .map_err(|e| format!("receipts: {e}"))?;
    // Checked against the root's `agent` role whenever a law is put in force.
    opened.agent_key = Some(logger.key.classical_public());
    let r = Arc::new(opened);
    let writer = r.clone();
    std::thread::Builder::new()
        .name("treaty-receipts".into())
        .spawn(move || loop {
            std::thread::sleep(RECEIPT_FLUSH);
            if !logger.mirror.exists() {
                continue;
            }
            if let Err(e) = logger.flush(&writer) {
                tracing::warn!("receipts: {e} (kept in the write-ahead file; retried)");
            }
        })
        .map_err(|e| format!("receipts: {e}"))?;
    tracing::info!(member = %member, "recording provenance receipts in {}", receipts::refname(&member));
    Ok(r)
}

/// The serving decision point beside the pull loop.
pub struct Serving {
    live: Arc<Live>,
    server: serve::Server,
}

/// Opens the state store under `STATE/law` and starts the server.
pub fn start(
    addr: &str,
    a: &ServeArgs,
    state: &Path,
    cfg: &agent::Config,
    pull: Arc<Mutex<agent::Metrics>>,
) -> Result<Serving, String> {
    let (sc, mut bounds) = config(addr, a)?;
    bounds.skew_seconds = u64::try_from(cfg.skew.whole_seconds()).unwrap_or(0);
    let store: serve::SharedStore = match &a.state_url {
        Some(url) => Arc::new(shared_store(
            url,
            a.state_password_file.as_deref(),
            a.state_timeout.as_deref(),
        )?),
        None => {
            let dir = state.join("law");
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            Arc::new(
                treaty::law::journal::JournalStore::open(&dir, treaty::time::now())
                    .map_err(|e| e.to_string())?,
            )
        }
    };
    let receipts = match &a.receipt_key {
        Some(k) => Some(start_receipts(k, a.receipt_tsa.clone(), state)?),
        None => None,
    };
    let live = Arc::new(Live::new(
        store,
        bounds,
        cfg.anchor.clone(),
        cfg.max_heartbeat_age,
        cfg.skew,
        receipts,
    ));
    let server = serve::start(sc, live.clone(), pull).map_err(|e| e.to_string())?;
    tracing::info!(at = %server.local, "deciding orders on http{}://{}", if a.tls_cert.is_some() { "s" } else { "" }, server.local);
    let s = Serving { live, server };
    Ok(s)
}

impl Serving {
    /// Puts the applied state's law in force (after every pull, whatever its outcome: a
    /// refused pull leaves the last good law serving until its own deadline).
    pub fn refresh(&self, state: &Path, store: &agent::DirStore) {
        let Ok(Some(b)) = store.read("applied.json") else {
            return;
        };
        let Ok(applied) = treaty::json::from_slice::<agent::Applied>(&b) else {
            return;
        };
        match self
            .live
            .refresh(&state.join("mirror.git"), &applied, treaty::time::now())
        {
            Ok(true) => {
                tracing::info!(commit = %applied.commit, "law in force: {}", applied.commit)
            }
            Ok(false) => {}
            Err(e) => tracing::error!("the last good law keeps serving: {e}"),
        }
    }

    /// Waits up to `pause`; true once the server has stopped (SIGTERM) and drained.
    pub fn wait(&self, pause: std::time::Duration) -> bool {
        match self.server.stopped.recv_timeout(pause) {
            Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => true,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => false,
        }
    }
}
