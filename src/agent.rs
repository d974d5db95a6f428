//! The runtime agent's core (`treaty-agent`): pull a governance repository into a local bare
//! mirror, verify the new state end to end, refuse anything unapproved, stale, mixed or older
//! than what was applied, turn the difference into ordered commands (`treaty emit`), deliver
//! them at least once, and record what was applied — crash-safely.
//!
//! Owns the applied-state record, the write-ahead record of in-flight commands, the refusal
//! reasons, and the sinks (stdout JSON lines, a spool directory that deduplicates by
//! idempotency key). All storage goes through [`Store`], so tests can inject read-only and
//! disk-full faults. It never acts on anything it has not verified.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::snapshot::{Heartbeat, Snapshot, HEARTBEAT_PATH, SNAPSHOT_PATH};

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

/// The storage seam: named small files, replaced atomically.
pub trait Store {
    fn read(&self, name: &str) -> std::io::Result<Option<Vec<u8>>>;
    /// Temp file, fsync, rename, fsync the directory.
    fn write_atomic(&self, name: &str, bytes: &[u8]) -> std::io::Result<()>;
    fn remove(&self, name: &str) -> std::io::Result<()>;
    /// Appends `bytes` and fsyncs (the per-command "done" record: O(1) a delivery).
    fn append(&self, name: &str, bytes: &[u8]) -> std::io::Result<()>;
}

/// The real store: a directory.
#[derive(Debug, Clone)]
pub struct DirStore {
    pub dir: PathBuf,
}

impl Store for DirStore {
    fn read(&self, name: &str) -> std::io::Result<Option<Vec<u8>>> {
        match std::fs::read(self.dir.join(name)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn write_atomic(&self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        write_durably(&self.dir, name, bytes)
    }

    fn remove(&self, name: &str) -> std::io::Result<()> {
        match std::fs::remove_file(self.dir.join(name)) {
            Ok(()) => sync_dir(&self.dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn append(&self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        let path = self.dir.join(name);
        let existed = path.exists();
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        f.write_all(bytes)?;
        f.sync_data()?;
        if !existed {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Temp file in the same directory, fsync, rename over `name`, fsync the directory: after a
/// crash the file is either the old or the new bytes, never a mix.
pub fn write_durably(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, dir.join(name))?;
    sync_dir(dir)
}

/// What was applied last (`applied.json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Applied {
    pub commit: String,
    pub root_version: u64,
    pub snapshot_version: u64,
    /// Every document's version at that commit.
    pub versions: BTreeMap<String, u64>,
    /// When the heartbeat this state was accepted with was issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_issued: Option<String>,
}

/// The write-ahead record (`inflight.json`): the commands of one step, written once before
/// the first delivery; which are done is appended to `inflight.done`, one key a line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inflight {
    pub target: Applied,
    pub commands: Vec<serde_json::Value>,
    pub done: BTreeSet<String>,
}

/// Where commands go.
pub trait Sink {
    /// Delivers one command; an error stops the step (it is retried later).
    fn deliver(&mut self, cmd: &serde_json::Value) -> Result<(), String>;
}

/// JSON lines on stdout (or any writer).
pub struct LinesSink<W: Write>(pub W);

impl<W: Write> Sink for LinesSink<W> {
    fn deliver(&mut self, cmd: &serde_json::Value) -> Result<(), String> {
        writeln!(self.0, "{cmd}")
            .and_then(|()| self.0.flush())
            .map_err(|e| e.to_string())
    }
}

/// One file per command in a directory, written atomically, named by idempotency key so a
/// command delivered twice lands once.
pub struct SpoolSink {
    pub dir: PathBuf,
}

impl Sink for SpoolSink {
    fn deliver(&mut self, cmd: &serde_json::Value) -> Result<(), String> {
        let key = cmd["idempotency_key"]
            .as_str()
            .filter(|k| k.len() == 64 && k.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or("command without a valid idempotency key")?;
        let name = format!("{key}.json");
        if self.dir.join(&name).exists() {
            return Ok(());
        }
        std::fs::create_dir_all(&self.dir).map_err(|e| e.to_string())?;
        let mut b = serde_json::to_vec(cmd).map_err(|e| e.to_string())?;
        b.push(b'\n');
        write_durably(&self.dir, &name, &b).map_err(|e| format!("{}: {e}", self.dir.display()))
    }
}

/// Runs a program per command with the JSON on stdin (and `TREATY_OP`,
/// `TREATY_IDEMPOTENCY_KEY` in its environment). A non-zero exit or a timeout stops the step;
/// the command is retried at the next pull (the hook must be idempotent by key).
pub struct ExecSink {
    pub program: String,
    pub args: Vec<String>,
    pub timeout: std::time::Duration,
}

impl Sink for ExecSink {
    fn deliver(&mut self, cmd: &serde_json::Value) -> Result<(), String> {
        use std::process::{Command, Stdio};
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .env("TREATY_OP", cmd["op"].as_str().unwrap_or(""))
            .env(
                "TREATY_IDEMPOTENCY_KEY",
                cmd["idempotency_key"].as_str().unwrap_or(""),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("{}: {e}", self.program))?;
        if let Some(mut stdin) = child.stdin.take() {
            let mut b = serde_json::to_vec(cmd).map_err(|e| e.to_string())?;
            b.push(b'\n');
            // A hook that does not read its input is its own business.
            let _ = stdin.write_all(&b);
        }
        let start = std::time::Instant::now();
        loop {
            match child.try_wait() {
                Ok(Some(st)) if st.success() => return Ok(()),
                Ok(Some(st)) => return Err(format!("{} exited with {st}", self.program)),
                Ok(None) if start.elapsed() > self.timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "{} did not finish within {:?}; killed",
                        self.program, self.timeout
                    ));
                }
                Ok(None) => std::thread::sleep(std::time::Duration::from_millis(10)),
                Err(e) => return Err(e.to_string()),
            }
        }
    }
}

/// What `/metrics` reports (Prometheus text format).
#[derive(Debug, Default, Clone)]
pub struct Metrics {
    pub last_success_unix: Option<i64>,
    pub applied_snapshot_version: Option<u64>,
    pub heartbeat_issued_unix: Option<i64>,
    pub refusals: BTreeMap<String, u64>,
    pub commands: BTreeMap<String, u64>,
    /// Pull durations: counts per upper bound (seconds), plus sum and count.
    pub pull_buckets: Vec<(f64, u64)>,
    pub pull_sum: f64,
    pub pull_count: u64,
}

const BUCKETS: [f64; 9] = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

impl Metrics {
    pub fn observe_pull(&mut self, secs: f64) {
        if self.pull_buckets.is_empty() {
            self.pull_buckets = BUCKETS.iter().map(|b| (*b, 0)).collect();
        }
        for (b, n) in &mut self.pull_buckets {
            if secs <= *b {
                *n += 1;
            }
        }
        self.pull_sum += secs;
        self.pull_count += 1;
    }

    /// The exposition text at `now` (Unix seconds).
    pub fn render(&self, now: i64) -> String {
        let mut o = String::new();
        let gauge = |o: &mut String, name: &str, help: &str, v: Option<f64>| {
            o.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
            if let Some(v) = v {
                o.push_str(&format!("{name} {v}\n"));
            }
        };
        gauge(
            &mut o,
            "treaty_agent_last_success_timestamp_seconds",
            "Unix time of the last successful pull.",
            self.last_success_unix.map(|x| x as f64),
        );
        gauge(
            &mut o,
            "treaty_agent_applied_snapshot_version",
            "Snapshot version of the applied state.",
            self.applied_snapshot_version.map(|x| x as f64),
        );
        gauge(
            &mut o,
            "treaty_agent_heartbeat_age_seconds",
            "Age of the heartbeat the applied state was accepted with.",
            self.heartbeat_issued_unix.map(|x| (now - x) as f64),
        );
        o.push_str("# HELP treaty_agent_refusals_total Pulls refused, by reason.\n# TYPE treaty_agent_refusals_total counter\n");
        for (r, n) in &self.refusals {
            o.push_str(&format!(
                "treaty_agent_refusals_total{{reason=\"{r}\"}} {n}\n"
            ));
        }
        o.push_str("# HELP treaty_agent_commands_total Commands delivered, by op.\n# TYPE treaty_agent_commands_total counter\n");
        for (op, n) in &self.commands {
            o.push_str(&format!("treaty_agent_commands_total{{op=\"{op}\"}} {n}\n"));
        }
        o.push_str("# HELP treaty_agent_pull_duration_seconds Duration of a pull (fetch, verify, emit, deliver).\n# TYPE treaty_agent_pull_duration_seconds histogram\n");
        for (b, n) in &self.pull_buckets {
            o.push_str(&format!(
                "treaty_agent_pull_duration_seconds_bucket{{le=\"{b}\"}} {n}\n"
            ));
        }
        o.push_str(&format!(
            "treaty_agent_pull_duration_seconds_bucket{{le=\"+Inf\"}} {0}\ntreaty_agent_pull_duration_seconds_sum {1}\ntreaty_agent_pull_duration_seconds_count {0}\n",
            self.pull_count, self.pull_sum
        ));
        o
    }
}

/// Serves `/healthz` (alive), `/readyz` (a state has been applied) and `/metrics` on a
/// loopback address, from a background thread. Refuses non-loopback addresses.
pub fn serve_metrics(
    addr: &str,
    m: std::sync::Arc<std::sync::Mutex<Metrics>>,
) -> Result<std::net::SocketAddr, String> {
    let l = std::net::TcpListener::bind(addr).map_err(|e| format!("{addr}: {e}"))?;
    let local = l.local_addr().map_err(|e| e.to_string())?;
    if !local.ip().is_loopback() {
        return Err(format!("{addr}: metrics are served on loopback only"));
    }
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            // Read the request head (it may arrive in several segments); closing with unread
            // bytes would reset the connection and lose the answer.
            let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(2)));
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while head.len() < 8192 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match std::io::Read::read(&mut s, &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let req = String::from_utf8_lossy(&head);
            let path = req.split_whitespace().nth(1).unwrap_or("/");
            let snapshot = m.lock().map(|g| g.clone()).unwrap_or_default();
            let now = crate::time::now().unix_timestamp();
            let (status, body) = match path {
                "/healthz" => ("200 OK", "ok\n".to_owned()),
                "/readyz" if snapshot.applied_snapshot_version.is_some() => {
                    ("200 OK", "ready\n".to_owned())
                }
                "/readyz" => (
                    "503 Service Unavailable",
                    "no approved state applied yet\n".to_owned(),
                ),
                "/metrics" => ("200 OK", snapshot.render(now)),
                _ => ("404 Not Found", "not found\n".to_owned()),
            };
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    Ok(local)
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

/// Why a remote cannot be fetched by this build at all (a transport compiled out, a local path
/// that does not exist), in words an operator can act on; `None` when libgit2 should try.
pub fn transport_problem(remote: &str) -> Option<String> {
    let lower = remote.to_ascii_lowercase();
    let scp_like = !remote.contains("://")
        && remote
            .split_once(':')
            .is_some_and(|(host, _)| host.contains('@') || (host.len() > 1 && !host.contains('/')));
    if lower.starts_with("https://") && !cfg!(feature = "https") {
        return Some(format!(
            "{remote}: this build has no TLS transport; rebuild with `--features https`, or use http:// (integrity does not depend on the transport: every file is verified against the pinned root), git://, or a local mirror"
        ));
    }
    if (lower.starts_with("ssh://") || lower.starts_with("git+ssh://") || scp_like)
        && !cfg!(feature = "ssh")
    {
        return Some(format!(
            "{remote}: this build has no SSH transport; rebuild with `--features ssh`, or use http://, git://, or a local mirror"
        ));
    }
    let local = if let Some(p) = remote.strip_prefix("file://") {
        Some(p)
    } else if !remote.contains("://") && !scp_like {
        Some(remote)
    } else {
        None
    };
    match local {
        Some(p) if !Path::new(p).exists() => Some(format!("{remote}: no repository at this path")),
        _ => None,
    }
}

/// Fetches `cfg.refname` from `cfg.remote` into the bare mirror `mirror` (created if needed);
/// returns the fetched commit.
pub fn fetch(mirror: &Path, cfg: &Config) -> Result<git2::Oid, Refusal> {
    if let Some(why) = transport_problem(&cfg.remote) {
        return Err(Refusal::Unreachable(why));
    }
    let repo = match git2::Repository::open_bare(mirror) {
        Ok(r) => r,
        Err(_) => git2::Repository::init_bare(mirror)
            .map_err(|e| Refusal::Storage(e.message().to_owned()))?,
    };
    let mut remote = repo
        .remote_anonymous(&cfg.remote)
        .map_err(|e| Refusal::Unreachable(e.message().to_owned()))?;
    let spec = format!("+refs/heads/{0}:refs/remotes/origin/{0}", cfg.refname);
    let mut callbacks = git2::RemoteCallbacks::new();
    let key = cfg.ssh_key.clone();
    let mut asked = 0;
    callbacks.credentials(move |_url, user, allowed| {
        // libgit2 asks again after a refused credential; stop instead of looping.
        asked += 1;
        if asked > 3 {
            return Err(git2::Error::from_str(
                "the ssh server refused the credentials (check --ssh-key or the ssh agent)",
            ));
        }
        let user = user.unwrap_or("git");
        if allowed.contains(git2::CredentialType::SSH_KEY) {
            match &key {
                Some(k) => git2::Cred::ssh_key(user, None, k, None),
                None => git2::Cred::ssh_key_from_agent(user),
            }
        } else if allowed.contains(git2::CredentialType::USERNAME) {
            git2::Cred::username(user)
        } else {
            Err(git2::Error::from_str(
                "the remote asks for credentials this agent does not hold (it authenticates to ssh remotes with a key only)",
            ))
        }
    });
    let mut options = git2::FetchOptions::new();
    options.remote_callbacks(callbacks);
    remote
        .fetch(&[spec.as_str()], Some(&mut options), None)
        .map_err(|e| Refusal::Unreachable(format!("{}: {}", cfg.remote, e.message())))?;
    let r = repo
        .find_reference(&format!("refs/remotes/origin/{}", cfg.refname))
        .map_err(|e| {
            Refusal::Unreachable(format!("no {} on the remote: {}", cfg.refname, e.message()))
        })?;
    r.peel_to_commit()
        .map(|c| c.id())
        .map_err(|e| Refusal::Unreachable(e.message().to_owned()))
}

/// What [`judge`] works out beside verification: the snapshot and its match with the tree, the
/// heartbeat, and the commands. Computed while the same commit is being verified (it reads only
/// the mirror and caches of pure facts) and thrown away unless everything is approved.
struct Beside {
    snap: Result<(Vec<u8>, Snapshot), Refusal>,
    file_mismatches: Vec<String>,
    heartbeat: Option<Heartbeat>,
    plan: Result<crate::emit::Plan, Refusal>,
}

fn open(mirror: &Path) -> Result<crate::source::Repo, Refusal> {
    crate::source::Repo::discover(mirror).map_err(|e| Refusal::Storage(e.to_string()))
}

fn tree_at(mirror: &Path, commit: git2::Oid) -> Result<crate::source::Tree, Refusal> {
    open(mirror)?
        .tree_at(commit)
        .map_err(|e| Refusal::Storage(e.to_string()))
}

fn beside(
    mirror: &Path,
    tree: &crate::source::Tree,
    applied: Option<&Applied>,
    commit: git2::Oid,
    now: crate::time::Instant,
) -> Beside {
    let repo = open(mirror);
    let mut facts = match &repo {
        Ok(r) => crate::facts::FactCache::load(r.repo.path()),
        Err(_) => crate::facts::FactCache::in_memory(),
    };
    let snap = tree
        .file(SNAPSHOT_PATH)
        .ok_or_else(|| Refusal::SnapshotMissing(format!("{SNAPSHOT_PATH} is absent at {commit}")))
        .map(std::borrow::Cow::into_owned)
        .and_then(|b| {
            serde_json::from_slice::<Snapshot>(&b)
                .map(|s| (b, s))
                .map_err(|e| Refusal::SnapshotMissing(format!("{SNAPSHOT_PATH}: {e}")))
        });
    let file_mismatches = match &snap {
        Ok((_, s)) => crate::snapshot::file_mismatches(tree, s, &mut facts),
        Err(_) => Vec::new(),
    };
    let heartbeat = tree
        .file(HEARTBEAT_PATH)
        .and_then(|b| serde_json::from_slice::<Heartbeat>(&b).ok());
    let plan = (|| {
        let Some(a) = applied else {
            return Ok(crate::emit::plan(None, tree, now, &mut facts));
        };
        let old = git2::Oid::from_str(&a.commit)
            .map_err(|e| Refusal::Storage(format!("applied commit: {}", e.message())))?;
        let repo = repo.as_ref().map_err(Clone::clone)?;
        let from = repo
            .tree_at(old)
            .map_err(|e| Refusal::Storage(e.to_string()))?;
        // What was in force before is judged as of the applied commit's time.
        let from_at = repo
            .repo
            .find_commit(old)
            .ok()
            .and_then(|c| time::OffsetDateTime::from_unix_timestamp(c.time().seconds()).ok())
            .unwrap_or(now)
            .min(now);
        Ok(crate::emit::plan(
            Some((&from, from_at)),
            tree,
            now,
            &mut facts,
        ))
    })();
    facts.save();
    Beside {
        snap,
        file_mismatches,
        heartbeat,
        plan,
    }
}

/// Verifies `commit` in the mirror and everything about it an agent requires; returns what
/// would be applied and the commands from `applied` to it.
///
/// Verification (with the mirror's verdict cache: unchanged blobs are not judged again) runs
/// beside the snapshot match and the command plan (with the mirror's facts cache: unchanged
/// blobs are not read again), on separate threads; the refusals are then decided in a fixed
/// order, and the commands are released only when nothing was refused.
pub fn judge(
    mirror: &Path,
    commit: git2::Oid,
    applied: Option<&Applied>,
    cfg: &Config,
    now: crate::time::Instant,
    warn: &mut dyn FnMut(String),
) -> Result<(Applied, Vec<serde_json::Value>), Refusal> {
    let repo = open(mirror)?;
    let parent_id = repo.first_parent(commit).ok().flatten();
    let (tree, parent) = rayon::join(
        || tree_at(mirror, commit),
        || parent_id.and_then(|p| tree_at(mirror, p).ok()),
    );
    let tree = tree?;
    let git_dir = repo.repo.path().to_path_buf();
    let (report, side) = rayon::join(
        || {
            let mut cache = crate::cache::Cache::load(&git_dir);
            let report = crate::verify::verify_tree_cached(
                &tree,
                parent.as_ref(),
                &crate::verify::Options {
                    anchor: cfg.anchor.clone(),
                    at: now,
                    exhaustive: false,
                },
                &mut cache,
            );
            cache.save();
            report
        },
        || beside(mirror, &tree, applied, commit, now),
    );
    // An object the mirror could not read, on either thread, means nothing here can be trusted
    // (a file skipped by the snapshot match or the plan would otherwise go unnoticed).
    let unread = tree.read_errors();
    if !unread.is_empty() {
        return Err(Refusal::Storage(format!(
            "the mirror could not read {} object(s); first: {}",
            unread.len(),
            unread[0]
        )));
    }
    if !report.approved {
        let first = report
            .files
            .iter()
            .flat_map(|f| f.findings.iter())
            .chain(report.findings.iter())
            .find(|f| f.is_error())
            .map_or_else(|| "not approved".to_owned(), ToString::to_string);
        return Err(Refusal::Unapproved(format!(
            "{} of {} files unapproved at {commit}; first: {first}",
            report.summary.unapproved, report.summary.files
        )));
    }
    let root_version = report.trust.as_ref().map_or(0, |t| t.root_version);
    let (snap_bytes, snap) = side.snap?;
    let mism: Vec<String> = crate::snapshot::root_mismatch(&snap, root_version)
        .into_iter()
        .chain(side.file_mismatches)
        .collect();
    if !mism.is_empty() {
        return Err(Refusal::SnapshotMismatch(mism.join("; ")));
    }
    let hb = side.heartbeat;
    let fresh = match &hb {
        None => Err(format!("{HEARTBEAT_PATH} is absent or unreadable")),
        Some(h) => {
            crate::snapshot::check_heartbeat(h, &snap_bytes, now, cfg.max_heartbeat_age, cfg.skew)
        }
    };
    if let Err(why) = fresh {
        if cfg.allow_stale {
            warn(format!(
                "WARNING: --allow-stale: acting on a state whose heartbeat is not fresh ({why}); an attacker could be replaying an old state"
            ));
        } else {
            return Err(Refusal::StaleHeartbeat(why));
        }
    }
    let target = Applied {
        commit: commit.to_string(),
        root_version,
        snapshot_version: snap.version,
        versions: snap
            .files
            .iter()
            .filter_map(|(p, i)| i.version.map(|v| (p.clone(), v)))
            .collect(),
        heartbeat_issued: hb.as_ref().map(|h| h.issued.clone()),
    };
    if let Some(a) = applied {
        if root_version < a.root_version {
            return Err(Refusal::Rollback(format!(
                "root version {root_version} < applied {}",
                a.root_version
            )));
        }
        if snap.version < a.snapshot_version {
            return Err(Refusal::Rollback(format!(
                "snapshot version {} < applied {}",
                snap.version, a.snapshot_version
            )));
        }
        for (p, v) in &a.versions {
            if let Some(n) = target.versions.get(p) {
                if n < v {
                    return Err(Refusal::Rollback(format!("{p}: version {n} < applied {v}")));
                }
            }
        }
        let old = git2::Oid::from_str(&a.commit)
            .map_err(|e| Refusal::Storage(format!("applied commit: {}", e.message())))?;
        let descends = old == commit || repo.repo.graph_descendant_of(commit, old).unwrap_or(false);
        if !descends {
            return Err(Refusal::HistoryRewritten(format!(
                "{commit} does not descend from the applied {old}"
            )));
        }
    }
    let src = crate::emit::Source {
        repository: cfg.repository.clone(),
        commit: commit.to_string(),
        root_version,
        snapshot_version: Some(snap.version),
    };
    Ok((target, side.plan?.render(&src)))
}

fn load<T: for<'de> Deserialize<'de>>(store: &dyn Store, name: &str) -> Result<Option<T>, Refusal> {
    match store.read(name).map_err(storage)? {
        None => Ok(None),
        Some(b) => serde_json::from_slice(&b)
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
        sink.deliver(&c).map_err(Refusal::Delivery)?;
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
    let last = crate::audit::store::last_entry(&repo)
        .map_err(|e| Refusal::Storage(format!("audit log: {e}")))?;
    let logged = last
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
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
    let b = crate::audit::entry_bytes(&entry).map_err(Refusal::Storage)?;
    crate::audit::store::append(&repo, &[b], "audit: agent applied a state")
        .map(|_| ())
        .map_err(|e| Refusal::Storage(format!("audit log: {e}")))
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
    use super::transport_problem;

    #[test]
    fn compiled_out_transports_and_missing_paths_are_named() {
        let https = transport_problem("https://git.example/gov.git");
        assert_eq!(https.is_some(), !cfg!(feature = "https"));
        for ssh in ["ssh://git@host/gov", "git@host:gov.git", "host:gov.git"] {
            let p = transport_problem(ssh);
            assert_eq!(p.is_some(), !cfg!(feature = "ssh"), "{ssh}");
        }
        assert!(transport_problem("/nonexistent/gov").is_some_and(|m| m.contains("no repository")));
        assert!(transport_problem("file:///nonexistent/gov").is_some());
        assert_eq!(transport_problem("."), None);
        assert_eq!(transport_problem("http://127.0.0.1:1/gov"), None);
        assert_eq!(transport_problem("git://127.0.0.1/gov"), None);
    }
}
