//! The runtime agent's core (`treaty-agent`): pull a governance repository into a local bare
//! mirror, verify the new state end to end, refuse anything unapproved, stale, mixed or older
//! than what was applied, turn the difference into ordered commands (`treaty emit`), deliver
//! them at least once, and record what was applied — crash-safely.
//!
//! Owns the step and its order (so that a crash anywhere loses nothing and repeats at most the
//! command in flight), the refusal reasons, and the agent's configuration. All storage goes
//! through [`Store`], so tests can inject read-only, full and crashing storage. It never acts on
//! anything it has not verified.
//!
//! Submodules: [`store`] (the storage seam and the records it holds), [`sink`] (where commands
//! go), [`remote`] (fetching into the mirror), [`mod@judge`] (deciding whether a fetched commit may
//! be applied, and its commands), [`metrics`] (what the agent reports). This file holds the step
//! itself: recover, fetch, judge, deliver, log, record.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::snapshot::SNAPSHOT_PATH;

pub mod judge;
pub mod metrics;
pub mod remote;
pub mod serve;
pub mod sink;
pub mod store;

pub use judge::judge;
pub use metrics::{serve_metrics, Metrics};
pub use remote::{fetch, transport_problem};
pub use sink::{ExecSink, LinesSink, Sink, SpoolSink};
pub use store::{write_durably, Applied, DirStore, Inflight, Store};

/// Why a pull was refused (stable kebab-case reasons, for logs and metrics).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    #[error("remote-unreachable: {0}")]
    Unreachable(String),
    #[error("unapproved: {0}")]
    Unapproved(String),
    #[error("snapshot-missing: {0}")]
    SnapshotMissing(String),
    #[error("snapshot-mismatch: {0}")]
    SnapshotMismatch(String),
    #[error("stale-heartbeat: {0}")]
    StaleHeartbeat(String),
    #[error("rollback: {0}")]
    Rollback(String),
    #[error("history-rewritten: {0}")]
    HistoryRewritten(String),
    #[error("delivery-failed: {0}")]
    Delivery(String),
    #[error("storage: {0}")]
    Storage(String),
}

impl Refusal {
    /// The reason's stable name.
    /// Every reason [`Refusal::reason`] can give (metrics serve each from zero).
    pub const REASONS: [&'static str; 9] = [
        "remote-unreachable",
        "unapproved",
        "snapshot-missing",
        "snapshot-mismatch",
        "stale-heartbeat",
        "rollback",
        "history-rewritten",
        "delivery-failed",
        "storage",
    ];

    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::Unreachable(_) => "remote-unreachable",
            Refusal::Unapproved(_) => "unapproved",
            Refusal::SnapshotMissing(_) => "snapshot-missing",
            Refusal::SnapshotMismatch(_) => "snapshot-mismatch",
            Refusal::StaleHeartbeat(_) => "stale-heartbeat",
            Refusal::Rollback(_) => "rollback",
            Refusal::HistoryRewritten(_) => "history-rewritten",
            Refusal::Delivery(_) => "delivery-failed",
            Refusal::Storage(_) => "storage",
        }
    }
}

/// How the agent judges.
#[derive(Debug, Clone)]
pub struct Config {
    pub remote: String,
    pub refname: String,
    pub anchor: crate::trust::Anchor,
    pub max_heartbeat_age: time::Duration,
    pub skew: time::Duration,
    /// Waive only the heartbeat (demos, offline inspection).
    pub allow_stale: bool,
    pub repository: String,
    /// Append an `agent.apply` entry to the audit log kept in the mirror
    /// (`refs/treaty/audit`) after each applied step.
    pub audit: bool,
    /// For ssh remotes (the `ssh` feature): the private key to authenticate with; without it,
    /// the ssh agent (`SSH_AUTH_SOCK`). The server's host key must be in `~/.ssh/known_hosts`
    /// (libgit2 checks it and refuses unknown or changed keys).
    pub ssh_key: Option<std::path::PathBuf>,
}

/// What one pull did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The remote ref has not moved.
    Unchanged,
    /// Commands delivered and the new state recorded.
    Applied {
        commit: String,
        commands: usize,
        /// Commands delivered, by op.
        by_op: BTreeMap<String, u64>,
    },
}

fn storage(e: std::io::Error) -> Refusal {
    Refusal::Storage(e.to_string())
}

fn load<T: for<'de> Deserialize<'de>>(store: &dyn Store, name: &str) -> Result<Option<T>, Refusal> {
    match store.read(name).map_err(storage)? {
        None => Ok(None),
        Some(b) => crate::json::from_slice(&b)
            .map(Some)
            .map_err(|e| Refusal::Storage(format!("{name} is corrupt: {e}"))),
    }
}

fn save<T: Serialize>(store: &dyn Store, name: &str, v: &T) -> Result<(), Refusal> {
    let b = serde_json::to_vec_pretty(v).map_err(|e| Refusal::Storage(e.to_string()))?;
    store.write_atomic(name, &b).map_err(storage)
}

/// Finishes an interrupted step: delivers what was not recorded as done, logs it (with
/// `--audit`), then records the target as applied.
fn recover(
    store: &dyn Store,
    sink: &mut dyn Sink,
    audit: Option<&AuditTo<'_>>,
) -> Result<Option<Applied>, Refusal> {
    let Some(mut inf) = load::<Inflight>(store, "inflight.json")? else {
        return Ok(None);
    };
    if let Some(done) = store.read("inflight.done").map_err(storage)? {
        // A torn last line (a crash mid-append) is not a key: that command is redelivered.
        for line in String::from_utf8_lossy(&done).lines() {
            if line.len() == 64 && line.bytes().all(|b| b.is_ascii_hexdigit()) {
                inf.done.insert(line.to_owned());
            }
        }
    }
    deliver_all(store, sink, &mut inf)?;
    if let Some(to) = audit {
        log_apply(to, &inf)?;
    }
    finish(store, &inf)?;
    Ok(Some(inf.target))
}

fn deliver_all(store: &dyn Store, sink: &mut dyn Sink, inf: &mut Inflight) -> Result<(), Refusal> {
    let pending = inf.commands.iter().any(|c| {
        !inf.done
            .contains(c["idempotency_key"].as_str().unwrap_or_default())
    });
    if pending {
        // A store that cannot record a delivery is not delivered to: an empty append proves the
        // done log can be opened for writing, so a read-only store stops the step before a
        // command goes out unrecorded (a full disk can still fail the first real append; that
        // command is then delivered again, under the same idempotency key).
        store.append("inflight.done", b"").map_err(storage)?;
    }
    for c in inf.commands.clone() {
        let key = c["idempotency_key"].as_str().unwrap_or_default().to_owned();
        if inf.done.contains(&key) {
            continue;
        }
        sink.deliver(&c)
            .map_err(|e| Refusal::Delivery(e.to_string()))?;
        store
            .append("inflight.done", format!("{key}\n").as_bytes())
            .map_err(storage)?;
        inf.done.insert(key);
    }
    Ok(())
}

/// Records the step as applied, then drops its write-ahead record: the record first and its
/// done log after, so a crash between the two never leaves a record without the log of what
/// was already delivered (which would deliver the whole step again). A stale done log alone is
/// harmless: the next step removes it before writing its own record.
fn finish(store: &dyn Store, inf: &Inflight) -> Result<(), Refusal> {
    save(store, "applied.json", &inf.target)?;
    store.remove("inflight.json").map_err(storage)?;
    store.remove("inflight.done").map_err(storage)
}

/// Where and how an applied step is logged (`--audit`).
struct AuditTo<'a> {
    mirror: &'a Path,
    cfg: &'a Config,
    now: crate::time::Instant,
}

/// Records an applied step in the mirror's audit log exactly once: it runs before the step is
/// recorded as applied (so a crash before it is retried by the recovery), and skips the append
/// when the log's newest entry already records this commit (a crash after it). Only the agent
/// writes this log, so its newest entry is the agent's last.
fn log_apply(to: &AuditTo<'_>, inf: &Inflight) -> Result<(), Refusal> {
    let (mirror, cfg, now) = (to.mirror, to.cfg, to.now);
    let repo = git2::Repository::open_bare(mirror)
        .map_err(|e| Refusal::Storage(e.message().to_owned()))?;
    let audit_err = |e: crate::audit::AuditError| Refusal::Storage(format!("audit log: {e}"));
    // One read of the log's edge serves both the check and the append.
    let edge = crate::audit::store::resolve(&repo, None)
        .and_then(|head| crate::audit::store::load_for_append(&repo, head))
        .map_err(audit_err)?;
    let last = crate::audit::store::last_entry(&repo, &edge).map_err(audit_err)?;
    let logged = last
        .and_then(|b| crate::json::parse_value(&b).ok())
        .is_some_and(|v| v["kind"] == "agent.apply" && v["commit"] == inf.target.commit.as_str());
    if logged {
        return Ok(());
    }
    let entry = serde_json::json!({
        "kind": "agent.apply",
        "time": crate::time::format(now),
        "commit": inf.target.commit,
        "verdict": "applied",
        "subject": { "path": SNAPSHOT_PATH, "version": inf.target.snapshot_version },
        "details": {
            "repository": cfg.repository,
            "root_version": inf.target.root_version,
            "commands": inf.commands.len(),
            "idempotency_keys": inf.commands.iter().filter_map(|c| c["idempotency_key"].as_str()).collect::<Vec<_>>(),
        },
    });
    let b = crate::audit::entry_bytes(&entry).map_err(|e| Refusal::Storage(e.to_string()))?;
    crate::audit::store::append_to(&repo, &edge, &[b], "audit: agent applied a state")
        .map(|_| ())
        .map_err(audit_err)
}

/// Why the state directory could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum StateLockError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is held by another treaty-agent: one agent per state directory")]
    Held { path: String },
}

/// The state directory, held by this process: an exclusive lock on `STATE/agent.lock` for as
/// long as the value lives. One agent per state directory; and because no other agent can be
/// using it, lock files a killed predecessor left in the mirror (git's `config.lock`,
/// `packed-refs.lock`, a ref's `.lock` …) are stale, and are removed, so a `kill -9` during a
/// fetch never wedges the next run.
#[derive(Debug)]
pub struct StateLock {
    _file: std::fs::File,
}

impl StateLock {
    pub fn take(state: &Path) -> Result<StateLock, StateLockError> {
        let path = state.join("agent.lock");
        let io = |source| StateLockError::Io {
            path: path.display().to_string(),
            source,
        };
        std::fs::create_dir_all(state).map_err(io)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StateLockError::Held {
                    path: path.display().to_string(),
                })
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        remove_stale_git_locks(&state.join("mirror.git"), 0);
        Ok(StateLock { _file: file })
    }
}

/// Removes `*.lock` files under the mirror (bounded depth; the mirror is this agent's own).
fn remove_stale_git_locks(dir: &Path, depth: usize) {
    if depth > 8 {
        return;
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => remove_stale_git_locks(&p, depth + 1),
            Ok(t) if t.is_file() && p.extension().is_some_and(|x| x == "lock") => {
                let _ = std::fs::remove_file(&p);
            }
            _ => {}
        }
    }
}

/// One pull: recover an interrupted step, fetch, judge, deliver, record.
pub fn step(
    state: &Path,
    store: &dyn Store,
    cfg: &Config,
    sink: &mut dyn Sink,
    now: crate::time::Instant,
    warn: &mut dyn FnMut(String),
) -> Result<Outcome, Refusal> {
    let mirror = state.join("mirror.git");
    let audit = cfg.audit.then_some(AuditTo {
        mirror: &mirror,
        cfg,
        now,
    });
    recover(store, sink, audit.as_ref())?;
    let commit = fetch(&mirror, cfg)?;
    let applied = load::<Applied>(store, "applied.json")?;
    if applied
        .as_ref()
        .is_some_and(|a| a.commit == commit.to_string())
    {
        return Ok(Outcome::Unchanged);
    }
    let (target, commands) = judge(&mirror, commit, applied.as_ref(), cfg, now, warn)?;
    let mut inf = Inflight {
        target,
        commands,
        done: BTreeSet::new(),
    };
    // Write-ahead: the commands are recorded before the first is delivered.
    store.remove("inflight.done").map_err(storage)?;
    save(store, "inflight.json", &inf)?;
    deliver_all(store, sink, &mut inf)?;
    if let Some(to) = &audit {
        log_apply(to, &inf)?;
    }
    finish(store, &inf)?;
    let mut by_op = BTreeMap::new();
    for c in &inf.commands {
        *by_op
            .entry(c["op"].as_str().unwrap_or("").to_owned())
            .or_insert(0) += 1;
    }
    Ok(Outcome::Applied {
        commit: commit.to_string(),
        commands: inf.commands.len(),
        by_op,
    })
}

#[cfg(test)]
mod tests {
    use super::Refusal;

    /// Every refusal reason an operator can see in a log or a metric has a row in the runbook
    /// table of docs/agent.md.
    #[test]
    fn every_refusal_reason_is_in_the_runbook() {
        let doc = include_str!("../../docs/agent.md");
        let all = [
            Refusal::Unreachable(String::new()),
            Refusal::Unapproved(String::new()),
            Refusal::SnapshotMissing(String::new()),
            Refusal::SnapshotMismatch(String::new()),
            Refusal::StaleHeartbeat(String::new()),
            Refusal::Rollback(String::new()),
            Refusal::HistoryRewritten(String::new()),
            Refusal::Delivery(String::new()),
            Refusal::Storage(String::new()),
        ];
        for r in all {
            // Exhaustive: a new variant fails to compile here until it is listed above.
            match &r {
                Refusal::Unreachable(_)
                | Refusal::Unapproved(_)
                | Refusal::SnapshotMissing(_)
                | Refusal::SnapshotMismatch(_)
                | Refusal::StaleHeartbeat(_)
                | Refusal::Rollback(_)
                | Refusal::HistoryRewritten(_)
                | Refusal::Delivery(_)
                | Refusal::Storage(_) => {}
            }
            assert!(
                Refusal::REASONS.contains(&r.reason()),
                "{} is not in Refusal::REASONS (its metric would not start at zero)",
                r.reason()
            );
            let row = format!("| `{}` |", r.reason());
            assert!(
                doc.contains(&row),
                "docs/agent.md has no row for {}",
                r.reason()
            );
        }
    }
}
