//! `treaty-agent`: argument parsing and the pull loop around [`crate::agent`]. Logs go to
//! stderr; commands go to the sink only.

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::agent::{self, Config, DirStore, LinesSink, Outcome, Refusal, SpoolSink};

#[derive(Debug, Parser)]
#[command(
    name = "treaty-agent",
    version,
    about = "Pull approved governance state, verify it end to end, emit ordered commands",
    after_help = "Exit codes (with --once): 0 applied or unchanged; 1 refused (unapproved, snapshot mismatch,\nstale heartbeat, rollback, rewritten history, delivery failed); 2 cannot judge (unreachable\nremote, storage, usage).\n\nRemotes: a local path, file://, or git:// (git daemon). libgit2 has no dumb-HTTP transport;\nsmart https and ssh need a build with those git2 features.\n\nExamples:\n  treaty-agent --once --remote https://git.example/gov.git --trust root-v1.json --state /var/lib/treaty-agent\n  treaty-agent --once --allow-stale --remote . --state /tmp/agent --trust keys/root.json\n  treaty-agent --remote git://gov.example/gov --state /var/lib/treaty-agent --interval 60s --spool /var/spool/treaty"
)]
pub struct Args {
    /// The governance repository to pull.
    #[arg(long)]
    remote: String,
    #[arg(long = "ref", default_value = "main")]
    refname: String,
    /// The root pinned out of band (a root file). Without it: trust on first use of the
    /// repository's genesis root (keys/roots/1.json).
    #[arg(long)]
    trust: Option<PathBuf>,
    /// Where the mirror, the applied state and the write-ahead record live (created).
    #[arg(long)]
    state: PathBuf,
    /// Pull once and exit (non-zero on any refusal).
    #[arg(long)]
    once: bool,
    /// Seconds between pulls (30s, 5m).
    #[arg(long, default_value = "60s")]
    interval: String,
    /// Refuse a heartbeat issued longer ago than this (freeze protection).
    #[arg(long, default_value = "26h")]
    max_heartbeat_age: String,
    /// Clock-skew allowance on heartbeat times.
    #[arg(long, default_value = "5m")]
    skew: String,
    /// Waive the heartbeat check only (demos, offline inspection); loudly logged.
    #[arg(long)]
    allow_stale: bool,
    /// Deliver each command as a file here (deduplicated by idempotency key) instead of stdout.
    #[arg(long)]
    spool: Option<PathBuf>,
    /// The repository name in each command's source (default: the remote).
    #[arg(long)]
    repository: Option<String>,
}

fn log(msg: &str) {
    eprintln!(
        "{} treaty-agent: {msg}",
        crate::time::format(crate::time::now())
    );
}

pub fn agent_main() -> ExitCode {
    let a = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let dur =
        |s: &str, what: &str| crate::snapshot::parse_ttl(s).map_err(|e| format!("--{what}: {e}"));
    let parsed = (|| -> Result<_, String> {
        let anchor = match &a.trust {
            Some(p) => {
                let b = std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?;
                crate::trust::Anchor::Pinned(Box::new(
                    serde_json::from_slice(&b)
                        .map_err(|e| format!("{}: not a root: {e}", p.display()))?,
                ))
            }
            None => crate::trust::Anchor::Repository,
        };
        Ok((
            Config {
                remote: a.remote.clone(),
                refname: a.refname.clone(),
                anchor,
                max_heartbeat_age: dur(&a.max_heartbeat_age, "max-heartbeat-age")?,
                skew: dur(&a.skew, "skew")?,
                allow_stale: a.allow_stale,
                repository: a.repository.clone().unwrap_or_else(|| a.remote.clone()),
            },
            dur(&a.interval, "interval")?,
        ))
    })();
    let (cfg, interval) = match parsed {
        Ok(x) => x,
        Err(m) => {
            log(&m);
            return ExitCode::from(2);
        }
    };
    if let Err(e) = std::fs::create_dir_all(&a.state) {
        log(&format!("{}: {e}", a.state.display()));
        return ExitCode::from(2);
    }
    let store = DirStore {
        dir: a.state.clone(),
    };
    let mut refusals: std::collections::BTreeMap<&'static str, u64> = Default::default();
    loop {
        let mut warn = |m: String| log(&m);
        let result = match &a.spool {
            Some(dir) => agent::step(
                &a.state,
                &store,
                &cfg,
                &mut SpoolSink { dir: dir.clone() },
                crate::time::now(),
                &mut warn,
            ),
            None => agent::step(
                &a.state,
                &store,
                &cfg,
                &mut LinesSink(std::io::stdout().lock()),
                crate::time::now(),
                &mut warn,
            ),
        };
        let code = match &result {
            Ok(Outcome::Unchanged) => {
                log("unchanged");
                0
            }
            Ok(Outcome::Applied { commit, commands }) => {
                log(&format!("applied {commit}: {commands} command(s)"));
                0
            }
            Err(r) => {
                *refusals.entry(r.reason()).or_default() += 1;
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
