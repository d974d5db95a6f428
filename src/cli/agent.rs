//! `treaty-agent`: argument parsing and the pull loop around [`crate::agent`]. Logs go to
//! stderr; commands go to the sink only.

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::agent::{
    self, Config, DirStore, ExecSink, LinesSink, Outcome, Refusal, SpoolSink, Store as _,
};

#[derive(Debug, Parser)]
#[command(
    name = "treaty-agent",
    version,
    about = "Pull approved governance state, verify it end to end, emit ordered commands",
    after_help = "Exit codes (with --once): 0 applied or unchanged; 1 refused (unapproved, snapshot mismatch,\nstale heartbeat, rollback, rewritten history, delivery failed); 2 cannot judge (unreachable\nremote, storage, usage).\n\nRemotes: a local path, file://, or git:// (git daemon). libgit2 has no dumb-HTTP transport;\nsmart https and ssh need a build with those git2 features.\n\nExamples:\n  treaty-agent --once --remote https://git.example/gov.git --trust root-v1.json --state /var/lib/treaty-agent\n  treaty-agent --once --allow-stale --remote . --state /tmp/agent --trust keys/root.json\n  treaty-agent --remote git://gov.example/gov --state /var/lib/treaty-agent --interval 60s --spool /var/spool/treaty"
)]
pub struct Args {
    /// A TOML file with any of these options by their long names (`remote`, `ref`, `trust`,
    /// `state`, `interval`, `max-heartbeat-age`, `skew`, `allow-stale`, `spool`, `exec`,
    /// `exec-args`, `exec-timeout`, `metrics`, `repository`, `audit`); flags win.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The governance repository to pull.
    #[arg(long)]
    remote: Option<String>,
    /// The branch to follow [default: main].
    #[arg(long = "ref")]
    refname: Option<String>,
    /// The root pinned out of band (a root file). Without it: trust on first use of the
    /// repository's genesis root (keys/roots/1.json).
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
}

fn log(msg: &str) {
    eprintln!(
        "{} treaty-agent: {msg}",
        crate::time::format(crate::time::now())
    );
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
    let a = match merge(a) {
        Ok(a) => a,
        Err(m) => {
            log(&m);
            return ExitCode::from(2);
        }
    };
    let (Some(remote), Some(state)) = (a.remote.clone(), a.state.clone()) else {
        log("--remote and --state are required (on the command line or in --config)");
        return ExitCode::from(2);
    };
    if a.spool.is_some() && a.exec.is_some() {
        log("--spool and --exec cannot both be set");
        return ExitCode::from(2);
    }
    let dur =
        |s: &str, what: &str| crate::snapshot::parse_ttl(s).map_err(|e| format!("--{what}: {e}"));
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
            },
            dur(a.interval.as_deref().unwrap_or("60s"), "interval")?,
            dur(a.exec_timeout.as_deref().unwrap_or("30s"), "exec-timeout")?,
        ))
    })();
    let (cfg, interval, exec_timeout) = match parsed {
        Ok(x) => x,
        Err(m) => {
            log(&m);
            return ExitCode::from(2);
        }
    };
    if let Err(e) = std::fs::create_dir_all(&state) {
        log(&format!("{}: {e}", state.display()));
        return ExitCode::from(2);
    }
    let store = DirStore { dir: state.clone() };
    let metrics = std::sync::Arc::new(std::sync::Mutex::new(agent::Metrics::default()));
    if let Some(addr) = &a.metrics {
        match agent::serve_metrics(addr, metrics.clone()) {
            Ok(at) => log(&format!(
                "serving /healthz, /readyz and /metrics on http://{at}"
            )),
            Err(m) => {
                log(&m);
                return ExitCode::from(2);
            }
        }
    }
    loop {
        let mut warn = |m: String| log(&m);
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
                crate::time::now(),
                &mut warn,
            ),
            (Some(dir), None) => agent::step(
                &state,
                &store,
                &cfg,
                &mut SpoolSink { dir: dir.clone() },
                crate::time::now(),
                &mut warn,
            ),
            (None, None) => agent::step(
                &state,
                &store,
                &cfg,
                &mut LinesSink(std::io::stdout().lock()),
                crate::time::now(),
                &mut warn,
            ),
        };
        if let Ok(mut m) = metrics.lock() {
            m.observe_pull(started.elapsed().as_secs_f64());
            match &result {
                Ok(o) => {
                    m.last_success_unix = Some(crate::time::now().unix_timestamp());
                    if let Ok(Some(b)) = store.read("applied.json") {
                        if let Ok(ap) = serde_json::from_slice::<agent::Applied>(&b) {
                            m.applied_snapshot_version = Some(ap.snapshot_version);
                            m.heartbeat_issued_unix = ap
                                .heartbeat_issued
                                .as_deref()
                                .and_then(|t| crate::time::parse(t).ok())
                                .map(|t| t.unix_timestamp());
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
        let code = match &result {
            Ok(Outcome::Unchanged) => {
                log("unchanged");
                0
            }
            Ok(Outcome::Applied {
                commit, commands, ..
            }) => {
                log(&format!("applied {commit}: {commands} command(s)"));
                0
            }
            Err(r) => {
                log(&format!("refused: {r}"));
                match r {
                    Refusal::Unreachable(_) | Refusal::Storage(_) => 2,
                    _ => 1,
                }
            }
        };
        if a.once {
            return ExitCode::from(code);
        }
        std::thread::sleep(std::time::Duration::from_secs(
            u64::try_from(interval.whole_seconds()).unwrap_or(60),
        ));
    }
}
