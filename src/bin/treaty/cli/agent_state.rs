//! `treaty-agent state stats|clear`: operators' commands on the replay and quota state
//! (docs/law.md § Operating the state), the embedded store under `--state` or the fleet's on
//! Redis (`--state-url`). Both are recorded in the audit log of the agent's mirror
//! ([`treaty::law::admin`]); a clear takes `--reason` and `--confirm`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::output::{say, tell};
use treaty::law::admin::{self, AdminError, Record};
use treaty::law::store::{LawStore, StateStats, StoreError};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Operators' commands on the replay and quota state: `stats`, `clear`
    #[command(subcommand)]
    State(StateCommand),
}

#[derive(Debug, clap::Subcommand)]
pub enum StateCommand {
    /// What the state holds: its birth, nonces, decisions, reservations and running jobs
    /// (recorded in the audit log). Reads the embedded store without stopping its agent.
    #[command(
        after_help = "Examples:\n  treaty-agent state stats --state /var/lib/treaty-agent\n  treaty-agent state stats --state /var/lib/treaty-agent --state-url redis://10.0.0.5:6379/0 --format json"
    )]
    Stats {
        #[command(flatten)]
        at: StoreArgs,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Forget every nonce, decision, reservation, job and day counter, and move the store's
    /// birth to now: every order issued before it (plus the skew) is then refused
    /// `state-too-new`, so a clear never reopens the replay window. On Redis it clears the
    /// state of every agent of the fleet at once; the embedded store's agent must be stopped.
    /// Recorded in the audit log before and after.
    #[command(
        after_help = "Examples:\n  treaty-agent state clear --state /var/lib/treaty-agent --reason 'INC-2291: restored from a stale backup' --confirm\n  TREATY_AGENT_REDIS_PASSWORD=… treaty-agent state clear --state /var/lib/treaty-agent \\\n      --state-url rediss://redis.internal:6380/0 --reason 'quota counters corrupted by INC-2301' --confirm"
    )]
    Clear {
        #[command(flatten)]
        at: StoreArgs,
        /// Why (recorded in the audit log; at most 500 characters).
        #[arg(long)]
        reason: String,
        /// Says you mean it: without it nothing is cleared.
        #[arg(long)]
        confirm: bool,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// Which store, as the agent is configured (flags win over `--config`).
#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    /// The agent's configuration (agent.toml): `state`, `state-url`, `state-password-file`
    /// and `state-timeout` are read from it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The agent's state directory (its mirror holds the audit log; the embedded store is
    /// STATE/law).
    #[arg(long)]
    state: Option<PathBuf>,
    /// The shared state on Redis (redis://HOST:PORT/DB or rediss://…); the password from
    /// --state-password-file or TREATY_AGENT_REDIS_PASSWORD.
    #[arg(long, value_name = "URL")]
    state_url: Option<String>,
    /// A file (mode 0600) holding the Redis password.
    #[arg(long, value_name = "PATH")]
    state_password_file: Option<PathBuf>,
    /// The longest one step on Redis may take [default: 500ms].
    #[arg(long)]
    state_timeout: Option<String>,
}

/// The store's settings after the config file filled what the flags left unset.
struct Resolved {
    state: PathBuf,
    url: Option<String>,
    password_file: Option<PathBuf>,
    timeout: Option<String>,
}

impl StoreArgs {
    fn resolve(self) -> Result<Resolved, String> {
        let mut file = toml::Table::new();
        if let Some(p) = &self.config {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            file =
                toml::from_str(&text).map_err(|e| format!("{}: {}", p.display(), e.message()))?;
        }
        let key = |k: &str| -> Result<Option<String>, String> {
            match file.get(k) {
                None => Ok(None),
                Some(toml::Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(format!(
                    "{}: `{k}` must be a string",
                    self.config.as_deref().unwrap_or(Path::new("")).display()
                )),
            }
        };
        let state = match self.state.or(key("state")?.map(PathBuf::from)) {
            Some(s) => s,
            None => return Err("--state is required (on the command line or in --config): the agent's state directory, whose mirror holds the audit log".into()),
        };
        Ok(Resolved {
            state,
            url: self.state_url.or(key("state-url")?),
            password_file: self
                .state_password_file
                .or(key("state-password-file")?.map(PathBuf::from)),
            timeout: self.state_timeout.or(key("state-timeout")?),
        })
    }
}

/// The login name recorded with the command (escaped when the record is written).
fn operator() -> String {
    ["TREATY_OPERATOR", "USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

pub fn run(c: Command) -> ExitCode {
    let Command::State(c) = c;
    match run_state(c) {
        Ok(code) => code,
        Err(m) => {
            tell!("treaty-agent: {m}");
            ExitCode::from(2)
        }
    }
}

fn run_state(c: StateCommand) -> Result<ExitCode, String> {
    let now = treaty::time::now();
    let op = operator();
    match c {
        StateCommand::Stats { at, format } => {
            let r = at.resolve()?;
            let mirror = r.state.join("mirror.git");
            let (name, stats) = match &r.url {
                Some(url) => {
                    let store = super::serve::shared_store(
                        url,
                        r.password_file.as_deref(),
                        r.timeout.as_deref(),
                    )?;
                    let name = url.clone();
                    let rec = Record {
                        mirror: &mirror,
                        store: &name,
                        operator: &op,
                    };
                    let s = admin::stats(&store, now, &rec).map_err(|e| e.to_string())?;
                    (name, s)
                }
                None => {
                    let dir = r.state.join("law");
                    let name = format!("embedded {}", dir.display());
                    // Read while the agent runs: nothing opened, nothing moved.
                    let s = treaty::law::journal::peek(&dir, now).map_err(|e| match e {
                        StoreError::Io { source, .. }
                            if source.kind() == std::io::ErrorKind::NotFound =>
                        {
                            format!(
                                "{}: no embedded state here (has an agent served with --state {}?)",
                                dir.display(),
                                r.state.display()
                            )
                        }
                        e => e.to_string(),
                    })?;
                    let rec = Record {
                        mirror: &mirror,
                        store: &name,
                        operator: &op,
                    };
                    admin::record_stats(&s, now, &rec).map_err(|e| e.to_string())?;
                    (name, s)
                }
            };
            show(format, &name, &stats, None, &mirror);
            Ok(ExitCode::SUCCESS)
        }
        StateCommand::Clear {
            at,
            reason,
            confirm,
            format,
        } => {
            admin::check_reason(&reason).map_err(|e| e.to_string())?;
            if !confirm {
                return Err("clear forgets every nonce, decision, reservation, job and day counter (on Redis, for every agent of the fleet) and refuses every order issued before now: add --confirm to mean it".into());
            }
            let r = at.resolve()?;
            let mirror = r.state.join("mirror.git");
            // The record must be possible before anything is opened or cleared.
            if !mirror.is_dir() {
                return Err(AdminError::NoMirror { path: mirror }.to_string());
            }
            let (name, store): (String, Box<dyn LawStore>) = match &r.url {
                Some(url) => (
                    url.clone(),
                    Box::new(super::serve::shared_store(
                        url,
                        r.password_file.as_deref(),
                        r.timeout.as_deref(),
                    )?),
                ),
                None => {
                    let dir = r.state.join("law");
                    if !dir.join(treaty::law::journal::SNAPSHOT).is_file() {
                        return Err(format!(
                            "{}: no embedded state here (has an agent served with --state {}?)",
                            dir.display(),
                            r.state.display()
                        ));
                    }
                    let s = treaty::law::journal::JournalStore::open(&dir, now).map_err(|e| match e {
                        StoreError::Locked { path } => format!("{path}: the agent holds this state: stop it first (the embedded store has one owner), then clear"),
                        e => e.to_string(),
                    })?;
                    (format!("embedded {}", dir.display()), Box::new(s))
                }
            };
            let rec = Record {
                mirror: &mirror,
                store: &name,
                operator: &op,
            };
            let done =
                admin::clear(store.as_ref(), now, &reason, &rec).map_err(|e| e.to_string())?;
            show(format, &name, &done.before, Some(done.birth), &mirror);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn show(
    format: Format,
    store: &str,
    s: &StateStats,
    cleared: Option<treaty::time::Instant>,
    mirror: &Path,
) {
    let time = |t: i64| {
        treaty::time::Instant::from_unix(t)
            .map(treaty::time::format)
            .unwrap_or_else(|| t.to_string())
    };
    match format {
        Format::Json => {
            let mut v = serde_json::json!({
                "store": store,
                "stats": s,
                "birth": time(s.birth),
                "audit_log": mirror.display().to_string(),
            });
            if let Some(b) = cleared {
                v["cleared"] = serde_json::json!({ "birth": treaty::time::format(b) });
            }
            let _ = super::output::json(&v);
        }
        Format::Text => {
            say!("store: {store}");
            if cleared.is_some() {
                say!("before the clear:");
            }
            say!(
                "  born: {} (orders issued before it plus the skew are refused)",
                time(s.birth)
            );
            say!("  latest change: {}", time(s.high_water));
            say!("  changes recorded: {}", s.seq);
            let at_least = if s.partial { "at least " } else { "" };
            say!("  nonces: {at_least}{}", s.nonces);
            say!("  decisions: {at_least}{}", s.decisions);
            say!("  reserved (waiting for an ACK): {}", s.reserved);
            say!("  jobs running: {}", s.running);
            if let Some(b) = cleared {
                say!(
                    "cleared: born again at {}; orders issued before it plus the skew are refused",
                    treaty::time::format(b)
                );
            }
            say!("recorded in the audit log of {}", mirror.display());
        }
    }
}
