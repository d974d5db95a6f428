//! `treaty-agent`: argument parsing and the pull loop around [`treaty::agent`]. Logs go to
//! stderr through `tracing` (text or JSON lines, level from `--log-level` or `RUST_LOG`);
//! commands go to the sink only, never to the log.

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

use super::output::tell;

use treaty::agent::{
    self, Config, DirStore, ExecSink, LinesSink, Outcome, Refusal, SpoolSink, Store as _,
};

#[derive(Debug, Parser)]
#[command(
    name = "treaty-agent",
    version = super::version::SHORT,
    long_version = super::version::LONG,
    about = "Pull approved governance state, verify it end to end, emit ordered commands",
    after_help = "Exit codes (with --once): 0 applied or unchanged; 1 refused (unapproved, snapshot mismatch,\nstale heartbeat, rollback, rewritten history, delivery failed); 2 cannot judge (unreachable\nremote, storage, usage).\n\nRemotes: a local path, file://, git:// (git daemon), http:// (smart HTTP; libgit2 has no dumb\nHTTP); https:// and ssh:// in builds with the `https` / `ssh` features. Integrity never rests\non the transport: everything is verified against the pinned root.\n\nExamples:\n  treaty-agent --once --remote https://git.example/gov.git --trust root-v1.json --state /var/lib/treaty-agent\n  treaty-agent --once --allow-stale --remote . --state /tmp/agent --trust keys/root.json\n  treaty-agent --remote git://gov.example/gov --state /var/lib/treaty-agent --interval 60s --spool /var/spool/treaty"
)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<super::agent_state::Command>,
    /// A TOML file with any of these options by their long names (`remote`, `ref`, `trust`,
    /// `state`, `interval`, `max-heartbeat-age`, `skew`, `allow-stale`, `spool`, `exec`,
    /// `exec-args`, `exec-timeout`, `metrics`, `repository`, `audit`, `ssh-key`); flags win.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The governance repository to pull.
    #[arg(long)]
    remote: Option<String>,
    /// The branch to follow [default: main].
    #[arg(long = "ref")]
    refname: Option<String>,
    /// The root pinned out of band: a root file, or a root group id (`blake3:<hex>`). Without
    /// it: trust on first use of the repository's genesis root (keys/roots/1.json).
    #[arg(long)]
    trust: Option<PathBuf>,
    /// Where the mirror, the applied state and the write-ahead record live (created).
    #[arg(long)]
    state: Option<PathBuf>,
    /// Pull once and exit (non-zero on any refusal).
    #[arg(long)]
    once: bool,
    /// Time between pulls (30s, 5m) [default: 60s].
    #[arg(long)]
    interval: Option<String>,
    /// Refuse a heartbeat issued longer ago than this (freeze protection) [default: 26h].
    #[arg(long)]
    max_heartbeat_age: Option<String>,
    /// Clock-skew allowance on heartbeat times [default: 5m].
    #[arg(long)]
    skew: Option<String>,
    /// Waive the heartbeat check only (demos, offline inspection); loudly logged.
    #[arg(long)]
    allow_stale: bool,
    /// Deliver each command as a file here (deduplicated by idempotency key) instead of stdout.
    #[arg(long)]
    spool: Option<PathBuf>,
    /// Run this program per command (JSON on stdin) instead of stdout; a non-zero exit or a
    /// timeout stops and retries at the next pull.
    #[arg(long, conflicts_with = "spool")]
    exec: Option<String>,
    /// Arguments for --exec.
    #[arg(long = "exec-arg")]
    exec_args: Vec<String>,
    /// Timeout per --exec run [default: 30s].
    #[arg(long)]
    exec_timeout: Option<String>,
    /// Serve /healthz, /readyz and Prometheus /metrics on this loopback address (e.g.
    /// 127.0.0.1:9464).
    #[arg(long)]
    metrics: Option<String>,
    /// The repository name in each command's source (default: the remote).
    #[arg(long)]
    repository: Option<String>,
    /// Record every applied step as an `agent.apply` entry in the audit log kept in the
    /// mirror (STATE/mirror.git, refs/treaty/audit).
    #[arg(long)]
    audit: bool,
    /// For ssh:// remotes (a build with the `ssh` feature): the private key to authenticate
    /// with [default: the ssh agent]. The server's host key must already be in
    /// ~/.ssh/known_hosts: unknown or changed host keys are refused.
    #[arg(long)]
    ssh_key: Option<PathBuf>,
    /// Serve the decision point on this address (docs/law.md § API): POST /v1/decide and
    /// /v1/acks, GET /v1/orders/ID and /v1/treaties/ID/usage, /metrics, /healthz, /readyz.
    /// Loopback unless TLS and client authentication are configured. Not with --allow-stale or
    /// --once.
    #[arg(long, conflicts_with_all = ["once", "allow_stale"], help_heading = "Decision point")]
    serve: Option<String>,
    #[command(flatten)]
    serving: super::serve::ServeArgs,
    /// Log lines on stderr: `text` for people, `json` (one object per line) for collectors.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// The least severe log level shown (error, warn, info, debug, trace); `RUST_LOG` wins
    /// when set. `debug` adds each pull's phases and timings.
    #[arg(long, default_value = "info")]
    log_level: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Sends `tracing` events to stderr. Colour only on a terminal (or with `CLICOLOR_FORCE`), and
/// never with `NO_COLOR`.
// stderr is the log's own writer, and the terminal test decides its colour.
#[allow(clippy::disallowed_methods)]
fn init_logs(format: LogFormat, level: &str) -> Result<(), String> {
    use std::io::IsTerminal as _;
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.is_empty() => {
            tracing_subscriber::EnvFilter::try_new(&v).map_err(|e| format!("RUST_LOG={v}: {e}"))?
        }
        _ => tracing_subscriber::EnvFilter::try_new(level)
            .map_err(|e| format!("--log-level {level}: {e}"))?,
    };
    let ansi = super::output::colour(std::io::stderr().is_terminal());
    let b = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .with_ansi(ansi);
    let r = match format {
        LogFormat::Text => b.fmt_fields(escaped_fields()).try_init(),
        LogFormat::Json => b.json().flatten_event(true).try_init(),
    };
    r.map_err(|e| e.to_string())
}

/// How the text log writes an event's fields: as tracing-subscriber's default does
/// (`message key=value …`), but with every value escaped by [`treaty::text`]. Refusals quote
/// repository content (a finding about an unapproved file names the file), and the default
/// escapes ESC in messages but not `\n` or `\r`, so a file name could start a log line of its
/// own. JSON logs need nothing: serde escapes control characters in strings.
fn escaped_fields() -> impl for<'w> tracing_subscriber::fmt::FormatFields<'w> + Send + Sync + 'static
{
    use tracing_subscriber::field::MakeExt as _;
    tracing_subscriber::fmt::format::debug_fn(|w, field, value| {
        let v = format!("{value:?}");
        if field.name() == "message" {
            write!(w, "{}", treaty::text::escape(&v))
        } else {
            write!(w, "{field}={}", treaty::text::escape(&v))
        }
    })
    .delimited(" ")
}

/// A message that stops the agent before it starts (usage, configuration).
fn fatal(msg: &str) -> ExitCode {
    tracing::error!("{msg}");
    ExitCode::from(2)
}

/// `--config FILE`: the same options, by their long names.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    remote: Option<String>,
    #[serde(rename = "ref")]
    refname: Option<String>,
    trust: Option<PathBuf>,
    state: Option<PathBuf>,
    interval: Option<String>,
    max_heartbeat_age: Option<String>,
    skew: Option<String>,
    allow_stale: Option<bool>,
    spool: Option<PathBuf>,
    exec: Option<String>,
    exec_args: Option<Vec<String>>,
    exec_timeout: Option<String>,
    metrics: Option<String>,
    repository: Option<String>,
    audit: Option<bool>,
    ssh_key: Option<PathBuf>,
    serve: Option<String>,
    #[serde(flatten)]
    serving: super::serve::ServeFile,
}

/// Fills what the command line left unset from the config file.
fn merge(mut a: Args) -> Result<Args, String> {
    let Some(p) = a.config.clone() else {
        return Ok(a);
    };
    let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    let f: FileConfig =
        toml::from_str(&text).map_err(|e| format!("{}: {}", p.display(), e.message()))?;
    a.remote = a.remote.or(f.remote);
    a.refname = a.refname.or(f.refname);
    a.trust = a.trust.or(f.trust);
    a.state = a.state.or(f.state);
    a.interval = a.interval.or(f.interval);
    a.max_heartbeat_age = a.max_heartbeat_age.or(f.max_heartbeat_age);
    a.skew = a.skew.or(f.skew);
    a.allow_stale |= f.allow_stale.unwrap_or(false);
    a.spool = a.spool.or(f.spool);
    a.exec = a.exec.or(f.exec);
    if a.exec_args.is_empty() {
        a.exec_args = f.exec_args.unwrap_or_default();
    }
    a.exec_timeout = a.exec_timeout.or(f.exec_timeout);
    a.metrics = a.metrics.or(f.metrics);
    a.repository = a.repository.or(f.repository);
    a.audit |= f.audit.unwrap_or(false);
    a.ssh_key = a.ssh_key.or(f.ssh_key);
    a.serve = a.serve.or(f.serve);
    a.serving.merge(f.serving);
    if a.serve.is_some() && a.allow_stale {
        return Err("--serve does not take --allow-stale (nor `allow-stale` in the config): only fresh law decides".into());
    }
    Ok(a)
}

pub fn agent_main() -> ExitCode {
    let a = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    if let Some(c) = a.command {
        return super::agent_state::run(c);
    }
    if let Err(m) = init_logs(a.log_format, &a.log_level) {
        tell!("treaty-agent: {m}");
        return ExitCode::from(2);
    }
    // A simulated clock exists only in the war game's and the tests' builds (never a release:
    // .ci/no-sim-clock); a malformed one is refused, never replaced by the real clock in silence.
    #[cfg(feature = "sim-clock")]
    match treaty::time::sim::configured() {
        Some(Err(e)) => return fatal(&e.to_string()),
        Some(Ok(c)) => tracing::warn!(
            clock = %c.render(),
            "SIMULATED CLOCK ({}): a test or war-game build; never run one in production",
            treaty::time::sim::ENV
        ),
        None => {}
    }
    let a = match merge(a) {
        Ok(a) => a,
        Err(m) => return fatal(&m),
    };
    let (Some(remote), Some(state)) = (a.remote.clone(), a.state.clone()) else {
        return fatal("--remote and --state are required (on the command line or in --config)");
    };
    if a.spool.is_some() && a.exec.is_some() {
        return fatal("--spool and --exec cannot both be set");
    }
    let dur =
        |s: &str, what: &str| treaty::snapshot::parse_ttl(s).map_err(|e| format!("--{what}: {e}"));
    let parsed = (|| -> Result<_, String> {
        let anchor = super::anchor(a.trust.as_deref()).map_err(|e| format!("{e:#}"))?;
        Ok((
            Config {
                remote: remote.clone(),
                refname: a.refname.clone().unwrap_or_else(|| "main".into()),
                anchor,
                max_heartbeat_age: dur(
                    a.max_heartbeat_age.as_deref().unwrap_or("26h"),
                    "max-heartbeat-age",
                )?,
                skew: dur(a.skew.as_deref().unwrap_or("5m"), "skew")?,
                allow_stale: a.allow_stale,
                repository: a.repository.clone().unwrap_or_else(|| remote.clone()),
                audit: a.audit,
                ssh_key: a.ssh_key.clone(),
            },
            dur(a.interval.as_deref().unwrap_or("60s"), "interval")?,
            dur(a.exec_timeout.as_deref().unwrap_or("30s"), "exec-timeout")?,
        ))
    })();
    let (cfg, interval, exec_timeout) = match parsed {
        Ok(x) => x,
        Err(m) => return fatal(&m),
    };
    if let Err(e) = std::fs::create_dir_all(&state) {
        return fatal(&format!("{}: {e}", state.display()));
    }
    // Held for the process's life: one agent per state directory, and a predecessor's stale
    // git lock files (a kill -9 during a fetch) are cleared.
    let _state_lock = match agent::StateLock::take(&state) {
        Ok(l) => l,
        Err(e) => return fatal(&e.to_string()),
    };
    let store = DirStore { dir: state.clone() };
    let metrics = std::sync::Arc::new(std::sync::Mutex::new(agent::Metrics::default()));
    if let Some(addr) = &a.metrics {
        match agent::serve_metrics(addr, metrics.clone()) {
            Ok(at) => tracing::info!(%at, "serving /healthz, /readyz and /metrics on http://{at}"),
            Err(m) => return fatal(&m.to_string()),
        }
    }
    let serving = match &a.serve {
        None => None,
        Some(addr) => match super::serve::start(addr, &a.serving, &state, &cfg, metrics.clone()) {
            Ok(s) => Some(s),
            Err(m) => return fatal(&m),
        },
    };
    loop {
        // SIGTERM while the loop paused or pulled: stop before another pull starts.
        if serving
            .as_ref()
            .is_some_and(|s| s.wait(std::time::Duration::ZERO))
        {
            tracing::info!("stopped");
            return ExitCode::SUCCESS;
        }
        let mut warn = |m: String| tracing::warn!("{m}");
        let started = std::time::Instant::now();
        let result = match (&a.spool, &a.exec) {
            (_, Some(program)) => agent::step(
                &state,
                &store,
                &cfg,
                &mut ExecSink {
                    program: program.clone(),
                    args: a.exec_args.clone(),
                    timeout: std::time::Duration::from_secs(
                        u64::try_from(exec_timeout.whole_seconds()).unwrap_or(30),
                    ),
                },
                treaty::time::now(),
                &mut warn,
            ),
            (Some(dir), None) => agent::step(
                &state,
                &store,
                &cfg,
                &mut SpoolSink { dir: dir.clone() },
                treaty::time::now(),
                &mut warn,
            ),
            (None, None) => {
                // Commands as JSON lines, the agent's machine output (serde escapes them).
                #[allow(clippy::disallowed_methods)]
                let stdout = std::io::stdout();
                agent::step(
                    &state,
                    &store,
                    &cfg,
                    &mut LinesSink(stdout.lock()),
                    treaty::time::now(),
                    &mut warn,
                )
            }
        };
        if let Ok(mut m) = metrics.lock() {
            m.observe_pull(started.elapsed().as_secs_f64());
            match &result {
                Ok(o) => {
                    m.last_success_unix = Some(treaty::time::now().unix());
                    if let Ok(Some(b)) = store.read("applied.json") {
                        if let Ok(ap) = treaty::json::from_slice::<agent::Applied>(&b) {
                            m.applied_snapshot_version = Some(ap.snapshot_version);
                            m.heartbeat_issued_unix = ap
                                .heartbeat_issued
                                .as_deref()
                                .and_then(|t| treaty::time::parse(t).ok())
                                .map(|t| t.unix());
                        }
                    }
                    if let Outcome::Applied { by_op, .. } = o {
                        for (op, n) in by_op {
                            *m.commands.entry(op.clone()).or_default() += n;
                        }
                    }
                }
                Err(r) => *m.refusals.entry(r.reason().to_owned()).or_default() += 1,
            }
        }
        let took_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let code = match &result {
            Ok(Outcome::Unchanged) => {
                tracing::info!(took_ms, "unchanged");
                0
            }
            Ok(Outcome::Applied {
                commit, commands, ..
            }) => {
                tracing::info!(%commit, commands, took_ms, "applied {commit}: {commands} command(s)");
                0
            }
            Err(r) => {
                let reason = r.reason();
                match r {
                    Refusal::Unreachable(_) | Refusal::Storage(_) => {
                        tracing::error!(reason, "cannot judge: {r}");
                        2
                    }
                    _ => {
                        tracing::warn!(reason, "refused: {r}");
                        1
                    }
                }
            }
        };
        if a.once {
            return ExitCode::from(code);
        }
        let pause =
            std::time::Duration::from_secs(u64::try_from(interval.whole_seconds()).unwrap_or(60));
        match &serving {
            Some(s) => {
                s.refresh(&state, &store);
                if s.wait(pause) {
                    tracing::info!("stopped");
                    return ExitCode::SUCCESS;
                }
            }
            None => std::thread::sleep(pause),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn text_log_fields_are_escaped_so_an_event_stays_one_line() {
        let buf = Buf::default();
        let w = buf.clone();
        let sub = tracing_subscriber::fmt()
            .with_writer(move || w.clone())
            .with_ansi(false)
            .fmt_fields(super::escaped_fields())
            .finish();
        let hostile = "a\x1b[2J\r\nINFO applied\u{202e}";
        tracing::subscriber::with_default(sub, || {
            tracing::warn!(reason = hostile, other = %hostile, "refused: {hostile}");
        });
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(
            !out.trim_end().chars().any(treaty::text::is_unsafe),
            "{out:?}"
        );
        assert!(
            out.contains(r"refused: a\u{1b}[2J\r\nINFO applied\u{202e}"),
            "{out}"
        );
        assert!(
            out.contains(r"other=a\u{1b}[2J\r\nINFO applied\u{202e}"),
            "{out}"
        );
        assert!(
            out.contains("reason=\"a\\u{1b}[2J\\r\\nINFO applied"),
            "{out}"
        );
    }
}
