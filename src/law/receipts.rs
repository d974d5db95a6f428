//! Provenance receipts (docs/law.md § Receipts): every decision an agent answers, and every
//! ACK and completion it applies, becomes a receipt — ids and digests, never the requester's
//! payload — in an append-only log of its own (the RFC 9162 / C2SP tlog-tiles log of
//! [`crate::audit`], on `refs/treaty/receipts/MEMBER` of the agent's mirror), vouched for by
//! checkpoints the agent signs with its key of the root's `agent` role.
//!
//! Owns the write-ahead record and the batching. The decision path only appends a line to the
//! write-ahead file and waits for its sync (group commit: callers that arrive together share
//! one `fdatasync`), so a crash loses no receipt of an answered decision; a thread moves the
//! receipts into the log in batches (one commit, then a signed checkpoint) off the decision
//! path. Every receipt carries a sequence number, so a batch cut short by a crash is appended
//! once: the log's last sequence number says where to resume.
//!
//! Denials are logged as receipts too: a denial consumes the order's nonce and is as much a
//! decision as an allowance (a requester disputing a refusal needs the proof as much). Messages
//! refused without a decision (unauthenticated, malformed, replayed, stale law) are not: no
//! state changed, and their signer may be anyone.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde_json::{json, Value};

use crate::time::Instant;

use super::Decision;

/// The ref prefix of the agents' receipt logs (one per agent member).
pub const REF_PREFIX: &str = "refs/treaty/receipts/";
/// The write-ahead file, and the one being moved into the log.
pub const WAL: &str = "receipts.wal";
pub const WAL_LOGGING: &str = "receipts.wal.logging";
/// The most receipts one batch appends (a commit stays small).
pub const MAX_BATCH: usize = 4_096;
/// The longest line read back from the write-ahead file.
const MAX_LINE: usize = 64 * 1024;

/// Why receipts could not be written or logged.
#[derive(Debug, thiserror::Error)]
pub enum ReceiptError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: line {line}: {reason}")]
    Damaged {
        path: String,
        line: usize,
        reason: String,
    },
    #[error("the receipt log: {0}")]
    Log(#[from] crate::audit::AuditError),
    #[error("a receipt: {0}")]
    Entry(#[from] crate::audit::EntryError),
    #[error("the checkpoint: {0}")]
    Note(#[from] crate::note::NoteError),
    #[error("the receipts' lock is poisoned (a thread panicked while holding it)")]
    Poisoned,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> ReceiptError + '_ {
    move |source| ReceiptError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The receipt of a decision answered (first or repeat): the order and decision by digest,
/// the denial codes (no messages: they may quote the order), and the approved state it was
/// decided under.
pub fn decision_receipt(d: &Decision, order_sha256: &str, repeat: bool, at: Instant) -> Value {
    let decision_sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
        serde_json::to_vec(d).unwrap_or_default(),
    ));
    json!({
        "kind": "law.decision",
        "time": crate::time::format(at),
        "subject": { "order_id": d.order_id, "treaty_id": d.treaty_id },
        "order_sha256": order_sha256,
        "decision_sha256": decision_sha256,
        "allowed": d.allowed,
        "codes": d.denials.iter().map(|x| x.code.as_str()).collect::<Vec<_>>(),
        "repeat": repeat,
        "state": {
            "commit": d.commit,
            "root_version": d.root_version,
            "snapshot_version": d.snapshot_version,
        },
    })
}

/// A provider's ACK or completion the store applied, as its receipt names it.
#[derive(Debug, Clone, Copy)]
pub struct AckFacts<'a> {
    pub order_id: &'a str,
    pub treaty_id: &'a str,
    pub order_sha256: &'a str,
    /// SHA-256 (hex) of the ACK's signed payload.
    pub ack_sha256: &'a str,
    pub status: &'a str,
    pub used_gpu_milli_hours: Option<u64>,
    /// What the store did (`running`, `released`, `ended`, `repeat`).
    pub outcome: &'a str,
}

/// The receipt of a provider's ACK or completion the store applied.
pub fn ack_receipt(a: &AckFacts<'_>, at: Instant) -> Value {
    let mut v = json!({
        "kind": "law.ack",
        "time": crate::time::format(at),
        "subject": { "order_id": a.order_id, "treaty_id": a.treaty_id },
        "order_sha256": a.order_sha256,
        "ack_sha256": a.ack_sha256,
        "status": a.status,
        "outcome": a.outcome,
    });
    if let Some(u) = a.used_gpu_milli_hours {
        v["used_gpu_milli_hours"] = u.into();
    }
    v
}

/// A line of the write-ahead file: `BLAKE3(json)[..8] hex`, a space, the receipt's JSON.
fn line(receipt: &Value) -> Vec<u8> {
    let body = serde_json::to_vec(receipt).unwrap_or_default();
    let sum = blake3::hash(&body);
    let mut out = hex::encode(&sum.as_bytes()[..8]).into_bytes();
    out.push(b' ');
    out.extend_from_slice(&body);
    out.push(b'\n');
    out
}

/// The receipts of a write-ahead file (absent: none). A last line without its newline was
/// being written when the process stopped (never synced, so never answered): ignored. A bad
/// line before the end is damage.
fn read_wal(path: &Path) -> Result<Vec<Value>, ReceiptError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(path)(e)),
    };
    let mut out = Vec::new();
    let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    for (n, l) in bytes[..complete].split(|b| *b == b'\n').enumerate() {
        if l.is_empty() {
            continue;
        }
        let bad = |reason: &str| ReceiptError::Damaged {
            path: path.display().to_string(),
            line: n + 1,
            reason: reason.to_owned(),
        };
        if l.len() > MAX_LINE || l.len() < 18 || l[16] != b' ' {
            return Err(bad("not a receipt line"));
        }
        let (sum, body) = (&l[..16], &l[17..]);
        if hex::encode(&blake3::hash(body).as_bytes()[..8]).as_bytes() != sum {
            return Err(bad("its checksum does not match"));
        }
        out.push(crate::json::parse_value(body).map_err(|e| bad(&e.to_string()))?);
    }
    Ok(out)
}

fn seq_of(v: &Value) -> u64 {
    v["seq"].as_u64().unwrap_or(0)
}

struct Wal {
    file: std::fs::File,
    next: u64,
    /// The file's length after the last whole line: a failed write is cut back to it.
    len: u64,
}

/// Completions remembered per treaty for the coverage KPI (the oldest go past it).
const MAX_COVERED: usize = 65_536;
/// The coverage window, in seconds (the KPI window).
const COVERAGE_WINDOW: i64 = 3_600;

/// The write-ahead side, shared by the decision path: see the module doc.
pub struct Receipts {
    dir: PathBuf,
    wal: Mutex<Wal>,
    /// Per treaty: the completions recorded in the window (when, sequence number).
    completions: Mutex<std::collections::HashMap<String, std::collections::VecDeque<(i64, u64)>>>,
    /// The last sequence number under a checkpoint the agent signed (0 until a batch signs
    /// one: coverage is understated after a restart, never overstated).
    checkpointed: AtomicU64,
    /// A write or a rotation failed half-way: nothing more is recorded (every call fails) until
    /// a restart reads what is on disk.
    poisoned: std::sync::atomic::AtomicBool,
    /// The highest sequence number written, and the one synced (with the file to sync).
    written: AtomicU64,
    synced: Mutex<(u64, std::fs::File)>,
    /// The agent (member id) whose receipts these are.
    pub agent: String,
    /// The classical key (Ed25519, or a TPM's P-256) its checkpoints are signed with (set by
    /// whoever holds the key).
    pub agent_key: Option<crate::crypto::PublicKey>,
    /// Orders whose lookup this process already recorded (bounded, oldest forgotten): a
    /// caller polling an order adds one receipt, not one per poll.
    looked_up: Mutex<(
        std::collections::HashSet<String>,
        std::collections::VecDeque<String>,
    )>,
}

/// Lookups remembered as recorded.
const MAX_LOOKED_UP: usize = 65_536;

impl Receipts {
    /// Opens (or creates) the write-ahead file in `dir`; numbering resumes after the highest
    /// sequence number in the files and `logged` (the log's last).
    pub fn open(dir: &Path, agent: &str, logged: u64) -> Result<Receipts, ReceiptError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let path = dir.join(WAL);
        // A rotation stopped before its new file took the name: that file never held a line.
        match std::fs::remove_file(dir.join("receipts.wal.new")) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(dir)(e)),
        }
        let mut last = logged;
        for p in [dir.join(WAL_LOGGING), path.clone()] {
            last = read_wal(&p)?.iter().map(seq_of).fold(last, u64::max);
        }
        // A torn last line is cut, so the next line starts on its own.
        if let Ok(bytes) = std::fs::read(&path) {
            let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            if complete != bytes.len() {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(io(&path))?;
                f.set_len(complete as u64).map_err(io(&path))?;
                f.sync_all().map_err(io(&path))?;
            }
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        // The file's name must be durable before a receipt in it is answered.
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))?;
        let len = file.metadata().map_err(io(&path))?.len();
        let handle = file.try_clone().map_err(io(&path))?;
        Ok(Receipts {
            dir: dir.to_path_buf(),
            wal: Mutex::new(Wal {
                file,
                next: last + 1,
                len,
            }),
            written: AtomicU64::new(last),
            completions: Mutex::default(),
            checkpointed: AtomicU64::new(0),
            poisoned: std::sync::atomic::AtomicBool::new(false),
            looked_up: Mutex::default(),
            agent_key: None,
            synced: Mutex::new((last, handle)),
            agent: agent.to_owned(),
        })
    }

    /// Appends `receipt` (numbered, with the agent's id) and returns once it is durable.
    pub fn record(&self, mut receipt: Value) -> Result<(), ReceiptError> {
        let path = self.dir.join(WAL);
        let stopped = || ReceiptError::Damaged {
            path: path.display().to_string(),
            line: 0,
            reason:
                "an earlier write or sync failed; restart the agent to recover from what is on disk"
                    .into(),
        };
        if self.poisoned.load(Ordering::Acquire) {
            return Err(stopped());
        }
        let seq = {
            let mut w = self.wal.lock().map_err(|_| ReceiptError::Poisoned)?;
            // Again under the lock: a write that failed meanwhile may have left a torn tail.
            if self.poisoned.load(Ordering::Acquire) {
                return Err(stopped());
            }
            receipt["seq"] = w.next.into();
            receipt["agent"] = self.agent.clone().into();
            let bytes = line(&receipt);
            if let Err(e) = w.file.write_all(&bytes) {
                // Cut a torn line back off, so the next one starts whole; if even that fails,
                // stop recording (a bad line mid-file would lose the receipts after it).
                if w.file.set_len(w.len).is_err() {
                    self.poisoned.store(true, Ordering::Release);
                }
                return Err(io(&path)(e));
            }
            w.len += bytes.len() as u64;
            self.written.store(w.next, Ordering::Release);
            w.next += 1;
            w.next - 1
        };
        // A job that ended (completed or failed): counted for the coverage KPI.
        if receipt["kind"] == "law.ack" && receipt["outcome"] == "ended" {
            let at = receipt["time"]
                .as_str()
                .and_then(|t| crate::time::parse(t).ok())
                .map_or(0, |t| t.unix());
            if let (Some(treaty), Ok(mut c)) = (
                receipt["subject"]["treaty_id"].as_str(),
                self.completions.lock(),
            ) {
                let q = c.entry(treaty.to_owned()).or_default();
                while q.len() >= MAX_COVERED
                    || q.front().is_some_and(|(t, _)| *t < at - COVERAGE_WINDOW)
                {
                    q.pop_front();
                }
                q.push_back((at, seq));
            }
        }
        // Group commit: one sync covers every line written before it began.
        let target = self.written.load(Ordering::Acquire);
        let mut s = self.synced.lock().map_err(|_| ReceiptError::Poisoned)?;
        // A sync that failed while this caller waited consumed the error: a second sync would
        // report success for pages the kernel dropped.
        if self.poisoned.load(Ordering::Acquire) {
            return Err(stopped());
        }
        if s.0 >= target {
            return Ok(());
        }
        let upto = self.written.load(Ordering::Acquire);
        if let Err(e) = s.1.sync_data() {
            // After a failed sync the kernel may have dropped the pages: nothing more is
            // answered as recorded until a restart.
            self.poisoned.store(true, Ordering::Release);
            return Err(io(&path)(e));
        }
        s.0 = s.0.max(upto);
        Ok(())
    }

    /// Whether `trust`'s root vouches for this agent's key: a member of the `agent` role's
    /// group, of this member id, with this classical key, not revoked (`Err`: why not).
    pub fn vouched_by(&self, trust: &crate::trust::Trust) -> Result<(), String> {
        use crate::governance::model::Role;
        let group = trust
            .root
            .role_group(Role::Agent)
            .ok_or("the root names no `agent` role")?;
        let g = trust
            .groups
            .get(group)
            .ok_or_else(|| format!("group {group:?} is not trusted"))?;
        let m = g
            .members
            .iter()
            .find(|m| m.id == self.agent)
            .ok_or_else(|| format!("no member {:?} in group {group:?}", self.agent))?;
        if m.keys_with_ids()
            .any(|(_, id)| trust.revoked.contains_key(id))
        {
            return Err("its key is revoked".into());
        }
        match &self.agent_key {
            Some(k) if *k == m.classical => Ok(()),
            Some(_) => Err(format!("member {:?} has another key", self.agent)),
            None => Err("no key was given".into()),
        }
    }

    /// Records the receipt of a decision answered by a lookup, once per order (per process).
    pub fn record_lookup(&self, receipt: Value, order_id: &str) -> Result<(), ReceiptError> {
        {
            let l = self.looked_up.lock().map_err(|_| ReceiptError::Poisoned)?;
            if l.0.contains(order_id) {
                return Ok(());
            }
        }
        self.record(receipt)?;
        let mut l = self.looked_up.lock().map_err(|_| ReceiptError::Poisoned)?;
        if l.0.insert(order_id.to_owned()) {
            l.1.push_back(order_id.to_owned());
            while l.1.len() > MAX_LOOKED_UP {
                if let Some(old) = l.1.pop_front() {
                    l.0.remove(&old);
                }
            }
        }
        Ok(())
    }

    /// Provenance coverage of `treaty` over the last hour at `now`: of the jobs that ended,
    /// the share whose receipt is under a checkpoint this agent signed (`None`: none ended).
    pub fn coverage(&self, treaty: &str, now: Instant) -> Option<f64> {
        let c = self.completions.lock().ok()?;
        let q = c.get(treaty)?;
        let since = now.unix() - COVERAGE_WINDOW;
        let cp = self.checkpointed.load(Ordering::Acquire);
        let (mut all, mut covered) = (0u64, 0u64);
        for (t, seq) in q.iter().filter(|(t, _)| *t >= since) {
            let _ = t;
            all += 1;
            covered += u64::from(*seq <= cp);
        }
        (all > 0).then(|| covered as f64 / all as f64)
    }

    /// The last sequence number written, and the last under a signed checkpoint (their
    /// difference is the receipts' lag).
    pub fn progress(&self) -> (u64, u64) {
        (
            self.written.load(Ordering::Acquire),
            self.checkpointed.load(Ordering::Acquire),
        )
    }

    /// Moves the write-ahead file aside for logging (a new one takes its place), unless a file
    /// set aside earlier is still there (a batch cut short: it goes first).
    fn rotate(&self) -> Result<(), ReceiptError> {
        let (path, logging) = (self.dir.join(WAL), self.dir.join(WAL_LOGGING));
        if logging.exists() {
            return Ok(());
        }
        let mut w = self.wal.lock().map_err(|_| ReceiptError::Poisoned)?;
        let mut s = self.synced.lock().map_err(|_| ReceiptError::Poisoned)?;
        if let Err(e) = s.1.sync_data() {
            self.poisoned.store(true, Ordering::Release);
            return Err(io(&path)(e));
        }
        s.0 = s.0.max(self.written.load(Ordering::Acquire));
        // The new file first (a failure here changes nothing), then the two renames; a
        // failure between them stops recording until a restart sorts the files out.
        let fresh = self.dir.join("receipts.wal.new");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&fresh)
            .map_err(io(&fresh))?;
        let handle = file.try_clone().map_err(io(&fresh))?;
        std::fs::rename(&path, &logging).map_err(io(&path))?;
        let swapped = std::fs::rename(&fresh, &path)
            .and_then(|()| std::fs::File::open(&self.dir).and_then(|d| d.sync_all()));
        if let Err(e) = swapped {
            self.poisoned.store(true, Ordering::Release);
            return Err(io(&path)(e));
        }
        s.1 = handle;
        w.file = file;
        w.len = 0;
        Ok(())
    }
}

/// Where the log is and who vouches for it.
pub struct Logger {
    pub mirror: PathBuf,
    pub refname: String,
    pub key: crate::crypto::SigningKey,
    /// The checkpoint's origin line (and the note key's name).
    pub origin: String,
    /// An RFC 3161 authority that timestamps each checkpoint (the token is kept beside it).
    pub tsa: Option<String>,
}

/// What one batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flushed {
    pub appended: u64,
    /// The log's size after it.
    pub size: u64,
    /// The last sequence number in the log.
    pub last_seq: u64,
}

/// The receipt log's ref for agent `member`.
pub fn refname(member: &str) -> String {
    format!("{REF_PREFIX}{member}")
}

/// The checkpoint origin of agent `member`'s receipt log.
pub fn origin(member: &str) -> String {
    format!("treaty-receipts/{member}")
}

impl Logger {
    /// The last sequence number the log holds (0: none).
    pub fn logged(&self) -> Result<u64, ReceiptError> {
        let repo =
            git2::Repository::open_bare(&self.mirror).map_err(crate::audit::AuditError::Git)?;
        let edge = crate::audit::store::load_for_append(
            &repo,
            crate::audit::store::resolve_ref(&repo, &self.refname)?,
        )?;
        Ok(crate::audit::store::last_entry(&repo, &edge)?
            .and_then(|b| crate::json::parse_value(&b).ok())
            .map_or(0, |v| seq_of(&v)))
    }

    /// Appends every receipt of the set-aside write-ahead file the log lacks (by sequence
    /// number), in batches of [`MAX_BATCH`], signs a checkpoint over the new tree, then drops
    /// the file. Receipts written meanwhile wait in the new write-ahead file for the next call.
    pub fn flush(&self, receipts: &Receipts) -> Result<Flushed, ReceiptError> {
        let repo =
            git2::Repository::open_bare(&self.mirror).map_err(crate::audit::AuditError::Git)?;
        let mut out = Flushed::default();
        let mut last = self.logged()?;
        // Twice: a file set aside by a batch cut short goes first, then the current one.
        for _ in 0..2 {
            last = self.append_set_aside(&repo, receipts, last, &mut out)?;
        }
        // Also when nothing was appended now: a crash may have come between an append and
        // its checkpoint.
        self.checkpoint(&repo)?;
        out.last_seq = last;
        receipts.checkpointed.fetch_max(last, Ordering::AcqRel);
        Ok(out)
    }

    /// Sets the write-ahead file aside (unless one already is), appends what the log lacks
    /// of it, and removes it; answers the last sequence number logged.
    fn append_set_aside(
        &self,
        repo: &git2::Repository,
        receipts: &Receipts,
        mut last: u64,
        out: &mut Flushed,
    ) -> Result<u64, ReceiptError> {
        receipts.rotate()?;
        let logging = receipts.dir.join(WAL_LOGGING);
        let pending = read_wal(&logging)?;
        let fresh: Vec<&Value> = pending.iter().filter(|v| seq_of(v) > last).collect();
        for batch in fresh.chunks(MAX_BATCH) {
            let bytes = batch
                .iter()
                .map(|v| crate::audit::entry_bytes(v))
                .collect::<Result<Vec<_>, _>>()?;
            let edge = crate::audit::store::load_for_append(
                repo,
                crate::audit::store::resolve_ref(repo, &self.refname)?,
            )?;
            let (_, size, _) = crate::audit::store::append_to_ref(
                repo,
                &self.refname,
                &edge,
                &bytes,
                &format!("receipts: {} from {}", bytes.len(), receipts.agent),
            )?;
            out.appended += bytes.len() as u64;
            out.size = size;
            last = batch.last().map_or(last, |v| seq_of(v));
        }
        match std::fs::remove_file(&logging) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&logging)(e)),
        }
        Ok(last)
    }

    /// Signs a checkpoint over the log as it stands (its right edge: O(log n) tiles read).
    fn checkpoint(&self, repo: &git2::Repository) -> Result<(), ReceiptError> {
        let edge = crate::audit::store::load_for_append(
            repo,
            crate::audit::store::resolve_ref(repo, &self.refname)?,
        )?;
        let covered = edge
            .checkpoint
            .as_deref()
            .and_then(|b| crate::note::Note::parse(b).ok())
            .and_then(|n| crate::note::Checkpoint::parse(&n.text).ok())
            .map_or(0, |c| c.size);
        if covered == edge.size {
            return Ok(());
        }
        let cp = crate::note::Checkpoint {
            origin: self.origin.clone(),
            size: edge.size,
            root: edge.root(),
            extensions: vec![],
        };
        let note = crate::note::sign(&cp.text(), &self.origin, &self.key)?;
        let bytes = note.encode().into_bytes();
        // Off the decision path, bounded (10 s, two retries): a failure leaves this checkpoint
        // without a timestamp, and the next one asks again.
        let token = match &self.tsa {
            Some(url) => match timestamp(url, &bytes) {
                Ok(t) => Some(t),
                Err(e) => {
                    tracing::warn!(
                        "receipts: the checkpoint of size {} is not timestamped: {e}",
                        cp.size
                    );
                    None
                }
            },
            None => None,
        };
        crate::audit::store::put_checkpoint_ref(
            repo,
            &self.refname,
            &bytes,
            token.as_deref(),
            &format!("receipts: checkpoint size {}", cp.size),
        )?;
        Ok(())
    }
}

/// An RFC 3161 token over `data` from the authority at `url`, checked to answer this request
/// (imprint and nonce); its signature is checked against the governed roots by whoever proves.
fn timestamp(url: &str, data: &[u8]) -> Result<Vec<u8>, crate::tsp::TspError> {
    let req = crate::tsp::request(data)?;
    let resp = crate::tsp::Client::default().post(url, &req.der)?;
    let token = crate::tsp::token_of(&resp)?;
    crate::tsp::check_imprint_and_nonce(&token, data, &req.nonce)?;
    Ok(token)
}

/// Why no proof could be made (the log or the trust could not be read; not a finding).
#[derive(Debug, thiserror::Error)]
pub enum ProveError {
    #[error("the root names no `agent` role: no agent's receipts can be vouched for")]
    NoAgentRole,
    #[error("the agent role's group {group:?} is not trusted")]
    GroupNotTrusted { group: String },
    #[error("{refname}: the receipt log does not verify: {problem}")]
    LogInvalid { refname: String, problem: String },
    #[error(transparent)]
    Log(#[from] crate::audit::AuditError),
    #[error(transparent)]
    Proof(#[from] crate::audit::ProofError),
}

/// One receipt about the order, with its proof of inclusion under the checkpoint.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Proven {
    pub receipt: Value,
    pub inclusion: crate::audit::InclusionProof,
}

/// What a receipt log proves about one order.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OrderProof {
    pub order_id: String,
    /// The agent whose log it is (its member id), and the checkpoint it signed.
    pub agent: String,
    pub checkpoint: crate::audit::CheckpointInfo,
    /// The decision (the first answered; later repeats are listed in `receipts`).
    pub decision: Option<Proven>,
    /// The provider's ACKs and completions the agent applied, in log order.
    pub provider: Vec<Proven>,
    /// The checkpoint's RFC 3161 timestamp: its time and authority when it verifies against
    /// the roots given; why not otherwise; absent when the checkpoint has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Value>,
}

/// What the receipt logs in `repo` (refs/treaty/receipts/MEMBER, one per agent of the
/// fleet) prove about `order_id`, under checkpoints each signed by the log's own agent, a
/// member of the root's `agent` role in `trust`. Only logs that verify are read; receipts
/// past the checkpoint are not vouched for and are left out.
/// A receipt log that was not read, and why (the others still are).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Skipped {
    pub refname: String,
    pub reason: String,
}

pub fn prove_order(
    repo: &git2::Repository,
    trust: &crate::trust::Trust,
    tsa_roots: Option<&crate::tsp::Roots>,
    order_id: &str,
) -> Result<(Vec<OrderProof>, Vec<Skipped>), ProveError> {
    use crate::governance::model::Role;
    let mut skipped = Vec::new();
    let group = trust
        .root
        .role_group(Role::Agent)
        .ok_or(ProveError::NoAgentRole)?;
    let g = trust
        .groups
        .get(group)
        .ok_or_else(|| ProveError::GroupNotTrusted {
            group: group.to_owned(),
        })?;
    let mut out = Vec::new();
    let refs: Vec<String> = repo
        .references_glob(&format!("{REF_PREFIX}*"))
        .map_err(crate::audit::AuditError::Git)?
        .filter_map(|r| r.ok().and_then(|r| r.name().ok().map(str::to_owned)))
        .collect();
    for refname in refs {
        match prove_in(repo, trust, g, group, tsa_roots, order_id, &refname) {
            Ok(Some(p)) => out.push(p),
            Ok(None) => {}
            Err(e) => skipped.push(Skipped {
                reason: crate::text::escape(&e.to_string()).into_owned(),
                refname: crate::text::escape(&refname).into_owned(),
            }),
        }
    }
    Ok((out, skipped))
}

/// One agent's log: what it proves about the order (`None`: nothing, or not vouched for by
/// its own agent).
fn prove_in(
    repo: &git2::Repository,
    trust: &crate::trust::Trust,
    g: &crate::governance::model::Group,
    group: &str,
    tsa_roots: Option<&crate::tsp::Roots>,
    order_id: &str,
    refname: &str,
) -> Result<Option<OrderProof>, ProveError> {
    use crate::audit::{check_checkpoint, check_inclusion, inclusion_proof, LogTrust};
    let member = refname.trim_start_matches(REF_PREFIX).to_owned();
    // The log's own agent, and only it, vouches for the log (revoked keys never).
    let Some(m) = g.members.iter().find(|m| m.id == member) else {
        return Ok(None);
    };
    if m.keys_with_ids()
        .any(|(_, id)| trust.revoked.contains_key(id))
    {
        return Ok(None);
    }
    let lt = LogTrust {
        signers: vec![(m.id.clone(), m.classical.clone())],
        threshold: 1,
        group: group.to_owned(),
        ..LogTrust::default()
    };
    let invalid = |problem: String| ProveError::LogInvalid {
        refname: refname.to_owned(),
        problem,
    };
    let head = crate::audit::store::resolve_ref(repo, refname)?;
    let s = crate::audit::store::scan(repo, head, None, true)?;
    if let Some(p) = s.problems.first() {
        return Err(invalid(p.to_string()));
    }
    let Some(Ok((cp, info))) = s.checkpoint.as_deref().map(|b| check_checkpoint(b, &lt)) else {
        return Ok(None);
    };
    // The checkpoint names this log, and covers no more than it holds.
    if cp.origin != origin(&member) {
        return Err(invalid(format!(
            "the checkpoint's origin is {:?}, not {:?}",
            crate::text::escape(&cp.origin),
            origin(&member)
        )));
    }
    let size = usize::try_from(cp.size).unwrap_or(usize::MAX);
    if size > s.entries.len() {
        return Err(invalid(format!(
            "the checkpoint covers {} entries; the log holds {}",
            cp.size,
            s.entries.len()
        )));
    }
    let timestamp = match head {
        Some(c) => crate::audit::store::checkpoint_timestamp(repo, c)?,
        None => None,
    }
    .map(|token| match tsa_roots {
        Some(roots) => match crate::tsp::verify_token(
            &token,
            s.checkpoint.as_deref().unwrap_or_default(),
            None,
            roots,
        ) {
            Ok(st) => json!({ "time": st.time, "tsa": crate::text::escape(&st.tsa) }),
            Err(e) => json!({ "invalid": e.to_string() }),
        },
        None => {
            json!({ "unverified": "no approved TSA roots (keys/tsa-roots.pem) to check it against" })
        }
    });
    let mut proof = OrderProof {
        order_id: order_id.to_owned(),
        agent: member.clone(),
        checkpoint: info,
        decision: None,
        provider: Vec::new(),
        timestamp,
    };
    for (i, bytes) in s.entries.iter().enumerate().take(size) {
        let Ok(v) = crate::json::parse_value(bytes) else {
            continue;
        };
        if v["subject"]["order_id"] != order_id {
            continue;
        }
        let inclusion = inclusion_proof(&s.tree, i as u64, cp.size)?;
        check_inclusion(&inclusion)?;
        if inclusion.root != hex::encode(cp.root) {
            return Err(invalid(
                "an inclusion proof does not reach the checkpoint's root".into(),
            ));
        }
        let p = Proven {
            receipt: v.clone(),
            inclusion,
        };
        match v["kind"].as_str() {
            // The decision's own receipt (not a repeat's or a lookup's) when the log has it.
            Some("law.decision") => {
                let first = |x: &Value| x["repeat"] == false;
                if proof
                    .decision
                    .as_ref()
                    .is_none_or(|d| !first(&d.receipt) && first(&v))
                {
                    proof.decision = Some(p);
                }
            }
            Some("law.ack") => proof.provider.push(p),
            _ => {}
        }
    }
    Ok((proof.decision.is_some() || !proof.provider.is_empty()).then_some(proof))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t: i64) -> Instant {
        Instant::from_unix(t).expect("time")
    }

    fn receipt(n: u32) -> Value {
        ack_receipt(
            &AckFacts {
                order_id: &format!("ord-{n}"),
                treaty_id: "AURORA-AKASH-001",
                order_sha256: &"ab".repeat(32),
                ack_sha256: &"cd".repeat(32),
                status: "accepted",
                used_gpu_milli_hours: None,
                outcome: "running",
            },
            at(1_900_000_000),
        )
    }

    fn logger(dir: &Path) -> Logger {
        git2::Repository::init_bare(dir.join("mirror.git")).expect("bare");
        Logger {
            mirror: dir.join("mirror.git"),
            refname: refname("agent-1"),
            origin: origin("agent-1"),
            tsa: None,
            key: crate::crypto::SigningKey::generate("agent-1").expect("key"),
        }
    }

    fn entries(l: &Logger) -> Vec<Value> {
        let repo = git2::Repository::open_bare(&l.mirror).expect("repo");
        let head = crate::audit::store::resolve_ref(&repo, &l.refname).expect("ref");
        let s = crate::audit::store::scan(&repo, head, None, true).expect("scan");
        assert!(s.problems.is_empty(), "{:?}", s.problems);
        s.entries
            .iter()
            .map(|b| crate::json::parse_value(b).expect("json"))
            .collect()
    }

    /// Every receipt reaches the log once, in order, under a checkpoint the agent signed —
    /// across a batch cut short (the set-aside file left after its entries were appended), a
    /// reopening, and a torn last line (never synced, so never answered).
    #[test]
    fn receipts_reach_the_log_once_in_order_across_crashes() {
        let dir = tempfile::tempdir().expect("tmp");
        let l = logger(dir.path());
        let wal_dir = dir.path().join("receipts");
        let r = Receipts::open(&wal_dir, "agent-1", 0).expect("open");
        for n in 0..5 {
            r.record(receipt(n)).expect("record");
        }
        let f = l.flush(&r).expect("flush");
        assert_eq!((f.appended, f.size, f.last_seq), (5, 5, 5));
        // A batch cut short: appended, but the set-aside file not yet removed.
        for n in 5..8 {
            r.record(receipt(n)).expect("record");
        }
        r.rotate().expect("rotate");
        let kept = std::fs::read(wal_dir.join(WAL_LOGGING)).expect("set aside");
        l.flush(&r).expect("flush");
        std::fs::write(wal_dir.join(WAL_LOGGING), &kept).expect("crash before removal");
        // And a torn line at the end of the write-ahead file.
        drop(r);
        let mut w = std::fs::OpenOptions::new()
            .append(true)
            .open(wal_dir.join(WAL))
            .expect("wal");
        w.write_all(b"0123456789abcdef {\"kind\":").expect("torn");
        let logged = l.logged().expect("logged");
        assert_eq!(logged, 8);
        let r = Receipts::open(&wal_dir, "agent-1", logged).expect("reopen");
        r.record(receipt(8)).expect("record");
        let f = l.flush(&r).expect("flush");
        assert_eq!((f.appended, f.size, f.last_seq), (1, 9, 9));
        let all = entries(&l);
        let seqs: Vec<u64> = all.iter().map(seq_of).collect();
        assert_eq!(seqs, (1..=9).collect::<Vec<u64>>());
        assert!(all.iter().all(|v| v["agent"] == "agent-1"));
        // The checkpoint covers the whole log and is the agent's.
        let repo = git2::Repository::open_bare(&l.mirror).expect("repo");
        let edge = crate::audit::store::load_for_append(
            &repo,
            crate::audit::store::resolve_ref(&repo, &l.refname).expect("ref"),
        )
        .expect("edge");
        let trust = crate::audit::LogTrust {
            signers: vec![("agent-1".into(), l.key.classical_public())],
            threshold: 1,
            group: "agents".into(),
            ..Default::default()
        };
        let (cp, _) =
            crate::audit::check_checkpoint(edge.checkpoint.as_deref().expect("checkpoint"), &trust)
                .expect("signed by the agent");
        assert_eq!((cp.size, cp.root), (9, edge.root()));
        // Another key does not vouch for it.
        let other = crate::audit::LogTrust {
            signers: vec![(
                "agent-2".into(),
                crate::crypto::SigningKey::generate("agent-2")
                    .expect("key")
                    .classical_public(),
            )],
            ..trust
        };
        assert!(
            crate::audit::check_checkpoint(edge.checkpoint.as_deref().expect("cp"), &other)
                .is_err()
        );
    }

    /// A damaged line before the end of the write-ahead file is refused with its line number
    /// (a receipt must never be silently dropped).
    #[test]
    fn a_damaged_receipt_line_is_refused_with_its_place() {
        let dir = tempfile::tempdir().expect("tmp");
        let r = Receipts::open(dir.path(), "agent-1", 0).expect("open");
        r.record(receipt(1)).expect("record");
        r.record(receipt(2)).expect("record");
        drop(r);
        let path = dir.path().join(WAL);
        let mut b = std::fs::read(&path).expect("wal");
        b[20] ^= 1;
        std::fs::write(&path, &b).expect("write");
        match Receipts::open(dir.path(), "agent-1", 0) {
            Err(ReceiptError::Damaged { line, .. }) => assert_eq!(line, 1),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("a damaged receipt was accepted"),
        }
    }
}
