//! The durable embedded store under `--state` (docs/law.md § State): the [`State`] machine of
//! [`super::store`] kept in memory, every change appended to a checksummed journal and synced
//! to disk before the answer, and a snapshot the journal is folded into.
//!
//! Why a journal of the state machine's own events rather than an embedded database: the state
//! machine is one implementation (`State::decide`, `State::ack`) shared with the in-memory
//! store and, for a fleet, the Redis store's tests; a database would restate it as tables and
//! transactions, a second implementation to keep equal. The journal is small and boring: each
//! frame is `u32 length ‖ BLAKE3(length)[..4] ‖ BLAKE3(payload) ‖ payload` (the payload an event
//! in JSON), appended
//! and `fdatasync`ed before the decision is answered; replay re-runs the events through the same
//! transitions. Only the tail can be torn (appends are sequential and a frame is acknowledged
//! after its sync): a torn or checksum-failing *last* frame was never answered and is cut off;
//! a bad frame followed by good ones is damage, and the store refuses to open (fail closed).
//! Compaction never holds up a decision: once the journal holds [`COMPACT_AFTER`] events and at
//! least as many bytes as the snapshot (so the work stays proportional to the changes, however
//! large the state), the journal is synced and renamed [`JOURNAL_FOLDING`], a new empty journal
//! takes its place, and a background thread folds the renamed one into the snapshot — read from
//! disk, not from the live state, so nothing is copied under the lock — writing it atomically
//! ([`crate::durable::write`]) with the sequence number of the last event it holds, then
//! removing the folded journal. Replay reads the snapshot, then the folded journal if it is
//! still there, then the journal, and skips events the snapshot already holds, so a crash at any
//! step applies nothing twice and loses nothing.
//!
//! Birth: a store opened is born at the time it is opened. A restart cannot be told from a
//! restore of an older copy (or an `emptyDir`), so orders issued before the opening plus the
//! skew are `state-too-new`; a byte-identical resubmission still gets its recorded decision.

use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::time::Instant;

use super::decide::Usage;
use super::message::AckStatus;
use super::store::{
    AckFacts, AckOutcome, AckRefusal, Fill, Hold, Judged, LawStore, NonceKey, OrderFacts, Recorded,
    State, StateStats, StoreError, Timing, TreatyUsage,
};
use super::Decision;

/// The lock file held for the store's life: one process owns a state directory.
pub const LOCK: &str = "law.lock";
/// The snapshot's file name under the store's directory.
pub const SNAPSHOT: &str = "law-state.json";
/// The journal's file name under the store's directory.
pub const JOURNAL: &str = "law-journal";
/// The journal being folded into the snapshot (see the module doc).
pub const JOURNAL_FOLDING: &str = "law-journal.folding";
/// Events after which the journal may be folded into the snapshot (once it also holds as many
/// bytes as the snapshot).
pub const COMPACT_AFTER: u64 = 4096;
/// The largest frame read back (a decision with every denial is a few KiB).
const MAX_FRAME: usize = 1 << 20;

/// One change of state, as journaled.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case", deny_unknown_fields)]
enum Event {
    Decide {
        seq: u64,
        key: NonceKey,
        digest: String,
        hold: Hold,
        forget_after: i64,
        now: i64,
        reservation_ttl_seconds: u64,
        max_job_seconds: u64,
        decision: Box<Decision>,
    },
    Ack {
        seq: u64,
        treaty_id: String,
        order_id: String,
        order_sha256: String,
        status: AckStatus,
        used: Option<u64>,
        now: i64,
        reservation_ttl_seconds: u64,
        max_job_seconds: u64,
    },
}

impl Event {
    fn seq(&self) -> u64 {
        match self {
            Event::Decide { seq, .. } | Event::Ack { seq, .. } => *seq,
        }
    }
}

struct Inner {
    /// Held (an exclusive lock on [`LOCK`]) while the store is open.
    _lock: std::fs::File,
    state: State,
    journal: std::fs::File,
    /// Events in the journal since the last compaction, and their bytes.
    entries: u64,
    journal_bytes: u64,
    /// The background fold of [`JOURNAL_FOLDING`], while one runs; it answers the snapshot's
    /// new size.
    fold: Option<std::thread::JoinHandle<Result<u64, StoreError>>>,
    /// The snapshot's size in bytes (the last fold's or the opening's).
    snapshot_bytes: u64,
    /// Why the last fold failed (it is retried at the next compaction; the journal keeps
    /// everything meanwhile).
    fold_error: Option<String>,
    /// A write failed after the state in memory changed: nothing more is decided until a
    /// restart replays what is durable.
    poisoned: bool,
}

/// The durable store: see the module doc.
///
/// Group commit: a change is applied and its frame written under the state lock, and made
/// durable after the lock is released, by whichever caller syncs first: one `fdatasync` covers
/// every frame written before it began, so callers that arrive together share it. No answer is
/// given before the frames it depends on are durable: every call, a read included, waits for
/// the sync of everything written when it returns; a sync covers every earlier frame, so no
/// answered frame follows an unsynced one. (After a power loss, frames written but not yet
/// synced may be durable out of order; a gap of zeros before a good frame is then refused as
/// damage at open, with its offset: none of those frames was answered.)
pub struct JournalStore {
    dir: PathBuf,
    inner: Mutex<Inner>,
    /// Events after which the journal is folded into the snapshot ([`COMPACT_AFTER`]).
    pub compact_after: u64,
    /// The highest event sequence number written to the journal (or folded into a snapshot).
    written: std::sync::atomic::AtomicU64,
    /// The highest sequence number known durable, and the journal to sync (the same open file
    /// as the state's, a second handle, so syncs run outside the state lock); its lock
    /// serializes the syncs. Lock order: `inner`, then `synced`, never the reverse.
    synced: Mutex<Synced>,
    /// A sync failed: what it covered may be lost (the kernel may have dropped the dirty
    /// pages), so nothing more is answered until a restart replays what is durable.
    sync_failed: std::sync::atomic::AtomicBool,
    syncs: std::sync::atomic::AtomicU64,
}

struct Synced {
    upto: u64,
    file: std::fs::File,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn damaged(path: &Path, reason: impl Into<String>) -> StoreError {
    StoreError::Damaged {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// A frame's header: the length, then 4 bytes of BLAKE3 of the length (so a damaged length is
/// told from a torn tail), then BLAKE3 of the payload.
const HEADER: usize = 4 + 4 + 32;

fn length_check(len: [u8; 4]) -> [u8; 4] {
    let h = blake3::hash(&len);
    let mut c = [0u8; 4];
    c.copy_from_slice(&h.as_bytes()[..4]);
    c
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(payload.len() + HEADER);
    // Frames are at most MAX_FRAME (checked by the writer): the length fits.
    let len = u32::try_from(payload.len())
        .unwrap_or(u32::MAX)
        .to_be_bytes();
    f.extend_from_slice(&len);
    f.extend_from_slice(&length_check(len));
    f.extend_from_slice(blake3::hash(payload).as_bytes());
    f.extend_from_slice(payload);
    f
}

/// The events of a journal, and the length of its valid prefix (a torn tail is cut there).
fn read_frames(path: &Path, bytes: &[u8]) -> Result<(Vec<Event>, usize), StoreError> {
    let mut events = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        let rest = &bytes[at..];
        // A tail of zeros is what some file systems leave after a power loss: torn.
        if rest.iter().all(|&b| b == 0) {
            return Ok((events, at));
        }
        if rest.len() < 8 {
            return Ok((events, at)); // a torn header at the tail
        }
        let len_bytes: [u8; 4] = [rest[0], rest[1], rest[2], rest[3]];
        if rest[4..8] != length_check(len_bytes) {
            // Every length the store wrote carries its check: this is damage, wherever it is
            // (a torn append leaves a short file, never a wrong check).
            return Err(damaged(
                path,
                format!("journal frame at byte {at}: its length fails its check"),
            ));
        }
        let len = u32::from_be_bytes(len_bytes) as usize;
        if len > MAX_FRAME {
            return Err(damaged(
                path,
                format!("journal frame at byte {at} claims {len} bytes"),
            ));
        }
        let end = at + HEADER + len;
        if bytes.len() < end {
            return Ok((events, at)); // the last frame, cut short
        }
        let (hash, payload) = (&rest[8..HEADER], &rest[HEADER..HEADER + len]);
        if blake3::hash(payload).as_bytes() != hash {
            if end >= bytes.len() {
                return Ok((events, at));
            }
            return Err(damaged(
                path,
                format!("journal frame at byte {at} fails its checksum and is not the last"),
            ));
        }
        let e: Event = crate::json::from_slice(payload)
            .map_err(|e| damaged(path, format!("journal frame at byte {at}: {e}")))?;
        events.push(e);
        at = end;
    }
    Ok((events, at))
}

fn timing(reservation_ttl_seconds: u64, max_job_seconds: u64) -> Timing {
    Timing {
        reservation_ttl_seconds,
        max_job_seconds,
    }
}

/// Re-runs one journaled event through the state machine.
fn apply(state: &mut State, e: Event, path: &Path) -> Result<(), StoreError> {
    let seq = e.seq();
    let at = |t: i64| {
        Instant::from_unix(t)
            .ok_or_else(|| damaged(path, format!("event {seq}: time {t} out of range")))
    };
    match e {
        Event::Decide {
            key,
            digest,
            hold,
            forget_after,
            now,
            reservation_ttl_seconds,
            max_job_seconds,
            decision,
            ..
        } => {
            let digest: [u8; 32] = hex::decode(&digest)
                .ok()
                .and_then(|d| d.try_into().ok())
                .ok_or_else(|| damaged(path, format!("event {seq}: bad digest")))?;
            let facts = OrderFacts {
                key,
                digest,
                hold,
                forget_after,
            };
            let t = timing(reservation_ttl_seconds, max_job_seconds);
            match state.decide(&facts, at(now)?, t, &mut |_| {
                Judged::regardless((*decision).clone())
            }) {
                Recorded::First(_) => {}
                other => {
                    return Err(damaged(
                        path,
                        format!("event {seq}: replays as {other:?}, not as a first decision"),
                    ))
                }
            }
        }
        Event::Ack {
            treaty_id,
            order_id,
            order_sha256,
            status,
            used,
            now,
            reservation_ttl_seconds,
            max_job_seconds,
            ..
        } => {
            let t = timing(reservation_ttl_seconds, max_job_seconds);
            let facts = AckFacts {
                treaty_id: &treaty_id,
                order_id: &order_id,
                order_sha256: &order_sha256,
                status,
                used_gpu_milli_hours: used,
            };
            match state.ack(&facts, at(now)?, t) {
                Ok(AckOutcome::Running | AckOutcome::Released | AckOutcome::Ended) => {}
                other => {
                    return Err(damaged(
                        path,
                        format!("event {seq}: the ACK replays as {other:?}, not as applied"),
                    ))
                }
            }
        }
    }
    state.seq = seq;
    Ok(())
}

impl JournalStore {
    /// Opens (or creates) the store in `dir` at `now`: the snapshot, then every journaled event
    /// after it; a torn tail is cut off; then folded into a fresh snapshot.
    pub fn open(dir: &Path, now: Instant) -> Result<JournalStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        // One process per state directory: two would each keep their own nonces (an order sent
        // to both allowed twice) and truncate each other's journal.
        let lock_path = dir.join(LOCK);
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StoreError::Locked {
                    path: lock_path.display().to_string(),
                })
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(&lock_path)(e)),
        }
        let snap_path = dir.join(SNAPSHOT);
        let mut state = match std::fs::read(&snap_path) {
            Ok(b) => crate::json::from_slice::<State>(&b)
                .map_err(|e| damaged(&snap_path, format!("not a state snapshot: {e}")))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::new(now),
            Err(e) => return Err(io(&snap_path)(e)),
        };
        let jpath = dir.join(JOURNAL);
        let folding = dir.join(JOURNAL_FOLDING);
        // The journal being folded when the process stopped, then the one after it.
        replay(&mut state, &folding)?;
        replay(&mut state, &jpath)?;
        // Born now, and never before the last change it made: see the module doc.
        state.birth = now.unix().max(state.high_water);
        // Fold everything into the snapshot, then start an empty journal.
        let snapshot_bytes = write_snapshot(&snap_path, &state)?;
        match std::fs::remove_file(&folding) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&folding)(e)),
        }
        let journal = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&jpath)
            .map_err(io(&jpath))?;
        journal.sync_all().map_err(io(&jpath))?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        let sync_handle = journal.try_clone().map_err(io(&jpath))?;
        let seq = state.seq;
        Ok(JournalStore {
            dir: dir.to_path_buf(),
            inner: Mutex::new(Inner {
                _lock: lock,
                state,
                journal,
                entries: 0,
                journal_bytes: 0,
                fold: None,
                snapshot_bytes,
                fold_error: None,
                poisoned: false,
            }),
            compact_after: COMPACT_AFTER,
            written: std::sync::atomic::AtomicU64::new(seq),
            synced: Mutex::new(Synced {
                upto: seq,
                file: sync_handle,
            }),
            sync_failed: std::sync::atomic::AtomicBool::new(false),
            syncs: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Makes every frame written so far durable (one `fdatasync` for all that are pending),
    /// then returns; see the struct doc.
    fn sync_written(&self) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering;
        let failed = || {
            damaged(
                &self.dir,
                "a journal sync failed; restart the agent to recover from what is durable",
            )
        };
        if self.sync_failed.load(Ordering::Acquire) {
            return Err(failed());
        }
        let target = self.written.load(Ordering::Acquire);
        let mut synced = self.synced.lock().map_err(|_| StoreError::Poisoned)?;
        // Checked again under the lock: a sync that failed while this caller waited may have
        // consumed the error, and a second sync would then report success for pages the
        // kernel dropped.
        if self.sync_failed.load(Ordering::Acquire) {
            return Err(failed());
        }
        if synced.upto >= target {
            return Ok(());
        }
        // Every frame up to `upto` was written before this load (the counter is raised after
        // the write, under the state lock): this sync covers them all. (A rotation syncs the
        // old journal and raises `upto` before it swaps the file, under this lock.)
        let upto = self.written.load(Ordering::Acquire);
        if let Err(e) = synced.file.sync_data() {
            // Every later call sees the flag (checked before the state lock is taken).
            self.sync_failed.store(true, Ordering::Release);
            return Err(io(&self.dir.join(JOURNAL))(e));
        }
        synced.upto = synced.upto.max(upto);
        self.syncs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Starts a compaction when the journal is due one and no fold is running: under the state
    /// lock, the journal is synced and renamed, a new one opened and the directory synced (a
    /// sync's worth of time); the fold runs on its own thread (module doc).
    fn maybe_compact(
        &self,
        inner: &mut Inner,
        dir: &Path,
        compact_after: u64,
    ) -> Result<(), StoreError> {
        inner.reap_fold();
        if inner.fold.is_some()
            || inner.entries < compact_after
            || inner.journal_bytes < inner.snapshot_bytes
        {
            return Ok(());
        }
        let (jpath, folding) = (dir.join(JOURNAL), dir.join(JOURNAL_FOLDING));
        // A fold that failed left its journal: fold it again before renaming another onto it.
        if !folding.exists() {
            let mut synced = self.synced.lock().map_err(|_| StoreError::Poisoned)?;
            if let Err(e) = synced.file.sync_data() {
                self.sync_failed
                    .store(true, std::sync::atomic::Ordering::Release);
                return Err(io(&jpath)(e));
            }
            synced.upto = synced
                .upto
                .max(self.written.load(std::sync::atomic::Ordering::Acquire));
            std::fs::rename(&jpath, &folding).map_err(io(&jpath))?;
            let journal = std::fs::OpenOptions::new()
                .create_new(true)
                .write(true)
                .open(&jpath)
                .map_err(io(&jpath))?;
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io(dir))?;
            synced.file = journal.try_clone().map_err(io(&jpath))?;
            inner.journal = journal;
            inner.entries = 0;
            inner.journal_bytes = 0;
        }
        let dir = dir.to_path_buf();
        inner.fold = Some(
            std::thread::Builder::new()
                .name("law-journal-fold".into())
                .spawn(move || fold(&dir))
                .map_err(io(&folding))?,
        );
        Ok(())
    }

    /// Waits for a running fold to finish (for tools and tests; the store never waits).
    pub fn wait_for_fold(&self) -> Result<(), String> {
        let mut inner = self.inner.lock().map_err(|_| "poisoned".to_string())?;
        inner.join_fold();
        inner.fold_error.clone().map_or(Ok(()), Err)
    }

    /// How many journal syncs this store made (group commit: at most one per change).
    pub fn syncs(&self) -> u64 {
        self.syncs.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// [`Self::with`], then durable: the answer waits for every frame written so far.
    fn with_durable<T>(
        &self,
        f: impl FnOnce(&mut Inner, &Path, u64) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let r = self.with(f)?;
        self.sync_written()?;
        Ok(r)
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Inner, &Path, u64) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if self.sync_failed.load(std::sync::atomic::Ordering::Acquire) {
            return Err(damaged(
                &self.dir,
                "a journal sync failed; restart the agent to recover from what is durable",
            ));
        }
        let mut inner = self.inner.lock().map_err(|_| StoreError::Poisoned)?;
        if inner.poisoned {
            return Err(damaged(
                &self.dir,
                "a journal write failed earlier; restart the agent to recover from what is durable",
            ));
        }
        let r = f(&mut inner, &self.dir, self.compact_after);
        if r.is_err() {
            inner.poisoned = true;
        }
        r
    }
}

/// Writes the snapshot atomically and durably; answers its size.
fn write_snapshot(path: &Path, state: &State) -> Result<u64, StoreError> {
    let bytes = serde_json::to_vec(state).map_err(|e| damaged(path, e.to_string()))?;
    crate::durable::write(path, &bytes, Some(0o600)).map_err(|e| StoreError::Io {
        path: path.display().to_string(),
        source: e.source,
    })?;
    // The journal is emptied next: the snapshot's rename must be durable first, not best
    // effort.
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))?;
    Ok(bytes.len() as u64)
}

/// Applies the events of the journal at `path` (absent: none) that follow `state`: events the
/// snapshot already holds may lead it (a crash during compaction) and are skipped; after them
/// every event must follow the one before without a gap or a repeat (a journal from another
/// snapshot, or a damaged one, is refused).
fn replay(state: &mut State, path: &Path) -> Result<(), StoreError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(path)(e)),
    };
    let (events, _valid) = read_frames(path, &bytes)?;
    let mut started = false;
    for e in events {
        if !started && e.seq() <= state.seq {
            continue;
        }
        started = true;
        if e.seq() != state.seq + 1 {
            return Err(damaged(
                path,
                format!(
                    "event {} follows {} (the journal is not this snapshot's)",
                    e.seq(),
                    state.seq
                ),
            ));
        }
        apply(state, e, path)?;
    }
    Ok(())
}

/// The background half of a compaction: the snapshot on disk plus the renamed journal, written
/// as the new snapshot; then the renamed journal is removed. Runs without the state lock; the
/// store's lock file keeps every other process out.
fn fold(dir: &Path) -> Result<u64, StoreError> {
    let snap_path = dir.join(SNAPSHOT);
    let b = std::fs::read(&snap_path).map_err(io(&snap_path))?;
    let mut state = crate::json::from_slice::<State>(&b)
        .map_err(|e| damaged(&snap_path, format!("not a state snapshot: {e}")))?;
    let folding = dir.join(JOURNAL_FOLDING);
    replay(&mut state, &folding)?;
    let size = write_snapshot(&snap_path, &state)?;
    std::fs::remove_file(&folding).map_err(io(&folding))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))?;
    Ok(size)
}

impl Inner {
    /// Appends `e` (the caller syncs, see [`JournalStore::sync_written`]); folds the journal
    /// (made durable by the caller's sync; folded in the background, see the module doc).
    fn append(&mut self, e: &Event, dir: &Path) -> Result<(), StoreError> {
        let jpath = dir.join(JOURNAL);
        let payload = serde_json::to_vec(e).map_err(|x| damaged(&jpath, x.to_string()))?;
        if payload.len() > MAX_FRAME {
            return Err(damaged(&jpath, "an event over 1 MiB"));
        }
        self.journal
            .seek(std::io::SeekFrom::End(0))
            .map_err(io(&jpath))?;
        let f = frame(&payload);
        self.journal.write_all(&f).map_err(io(&jpath))?;
        self.entries += 1;
        self.journal_bytes += f.len() as u64;
        Ok(())
    }

    /// Collects a finished fold's answer (its failure is kept for [`LawStore::healthy`]).
    fn reap_fold(&mut self) {
        if self.fold.as_ref().is_some_and(|h| h.is_finished()) {
            self.join_fold();
        }
    }

    /// Waits for the fold, if one runs, and keeps its answer: the snapshot's new size, or why
    /// it failed.
    fn join_fold(&mut self) {
        if let Some(h) = self.fold.take() {
            match h.join() {
                Ok(Ok(size)) => {
                    self.snapshot_bytes = size;
                    self.fold_error = None;
                }
                Ok(Err(e)) => self.fold_error = Some(e.to_string()),
                Err(_) => self.fold_error = Some("the fold thread panicked".into()),
            }
        }
    }
}

impl LawStore for JournalStore {
    fn birth(&self) -> Instant {
        self.inner
            .lock()
            .ok()
            .and_then(|i| Instant::from_unix(i.state.birth))
            .unwrap_or(Instant::MAX)
    }

    fn high_water(&self) -> Instant {
        self.inner
            .lock()
            .ok()
            .and_then(|i| Instant::from_unix(i.state.high_water))
            .unwrap_or(Instant::MAX)
    }

    fn decide(
        &self,
        facts: &OrderFacts,
        now: Instant,
        timing: Timing,
        judge: &mut dyn FnMut(&Usage) -> Judged,
    ) -> Result<Recorded, StoreError> {
        self.with_durable(|inner, dir, compact| {
            let r = inner.state.decide(facts, now, timing, judge);
            if let Recorded::First(d) = &r {
                let seq = inner.state.seq + 1;
                let e = Event::Decide {
                    seq,
                    key: facts.key.clone(),
                    digest: hex::encode(facts.digest),
                    hold: facts.hold.clone(),
                    forget_after: facts.forget_after,
                    now: now.unix(),
                    reservation_ttl_seconds: timing.reservation_ttl_seconds,
                    max_job_seconds: timing.max_job_seconds,
                    decision: Box::new(d.clone()),
                };
                inner.state.seq = seq;
                inner.append(&e, dir)?;
                self.written
                    .store(seq, std::sync::atomic::Ordering::Release);
                self.maybe_compact(inner, dir, compact)?;
            }
            Ok(r)
        })
    }

    fn ack(
        &self,
        ack: &AckFacts,
        now: Instant,
        timing: Timing,
    ) -> Result<Result<AckOutcome, AckRefusal>, StoreError> {
        self.with_durable(|inner, dir, compact| {
            let r = inner.state.ack(ack, now, timing);
            if matches!(
                r,
                Ok(AckOutcome::Running | AckOutcome::Released | AckOutcome::Ended)
            ) {
                let seq = inner.state.seq + 1;
                let e = Event::Ack {
                    seq,
                    treaty_id: ack.treaty_id.to_owned(),
                    order_id: ack.order_id.to_owned(),
                    order_sha256: ack.order_sha256.to_owned(),
                    status: ack.status,
                    used: ack.used_gpu_milli_hours,
                    now: now.unix(),
                    reservation_ttl_seconds: timing.reservation_ttl_seconds,
                    max_job_seconds: timing.max_job_seconds,
                };
                inner.state.seq = seq;
                inner.append(&e, dir)?;
                self.written
                    .store(seq, std::sync::atomic::Ordering::Release);
                self.maybe_compact(inner, dir, compact)?;
            }
            Ok(r)
        })
    }

    fn recorded(
        &self,
        key: &super::store::NonceKey,
        digest: &[u8; 32],
    ) -> Result<Option<Decision>, StoreError> {
        self.with_durable(|inner, _, _| Ok(inner.state.recorded(key, digest)))
    }

    fn order(&self, order_id: &str) -> Result<Option<Decision>, StoreError> {
        self.with_durable(|inner, _, _| Ok(inner.state.decisions.get(order_id).cloned()))
    }

    fn healthy(&self) -> Result<(), String> {
        if self.sync_failed.load(std::sync::atomic::Ordering::Acquire) {
            return Err(format!(
                "{}: a journal sync failed; restart the agent to recover from what is durable",
                self.dir.display()
            ));
        }
        match self.inner.lock() {
            Ok(i) if i.poisoned => Err(format!(
                "{}: a journal write failed; restart the agent to recover from what is durable",
                self.dir.display()
            )),
            Ok(i) if i.fold_error.is_some() => Err(format!(
                "{}: the journal could not be folded into the snapshot ({}); decisions are still durable, but the disk needs attention",
                self.dir.display(),
                i.fold_error.as_deref().unwrap_or_default()
            )),
            Ok(_) => Ok(()),
            Err(_) => Err("the state store's lock is poisoned (a panic while it was held)".into()),
        }
    }

    fn usage(&self, treaty_id: &str, now: Instant) -> Result<TreatyUsage, StoreError> {
        self.with_durable(|inner, _, _| Ok(inner.state.treaty_usage(treaty_id, now)))
    }

    fn fill(&self, treaty_id: &str, now: Instant) -> Result<Fill, StoreError> {
        self.with_durable(|inner, _, _| Ok(inner.state.fill_at(treaty_id, now)))
    }

    fn stats(&self, now: Instant) -> Result<StateStats, StoreError> {
        self.with_durable(|inner, _, _| Ok(inner.state.stats(now)))
    }

    /// The cleared state becomes the snapshot, then the journals are emptied. Its sequence
    /// number is the old state's last: a crash between the two leaves journaled events the
    /// snapshot "already holds", which the opening skips, so nothing of the old state returns.
    fn clear(&self, now: Instant) -> Result<Instant, StoreError> {
        self.with_durable(|inner, dir, _| {
            inner.join_fold();
            let state = inner.state.cleared(now);
            let size = write_snapshot(&dir.join(SNAPSHOT), &state)?;
            let (jpath, folding) = (dir.join(JOURNAL), dir.join(JOURNAL_FOLDING));
            match std::fs::remove_file(&folding) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&folding)(e)),
            }
            inner.journal.set_len(0).map_err(io(&jpath))?;
            inner.journal.sync_all().map_err(io(&jpath))?;
            let birth = Instant::from_unix(state.birth).unwrap_or(Instant::MAX);
            inner.state = state;
            inner.entries = 0;
            inner.journal_bytes = 0;
            inner.snapshot_bytes = size;
            inner.fold_error = None;
            Ok(birth)
        })
    }
}

/// What the store in `dir` holds at `now`, read without opening it: the snapshot, then the
/// journals, in memory only (nothing is written, the agent's lock is not taken, its birth does
/// not move). The agent may be writing meanwhile: a fold that renamed a journal between two
/// reads shows as a gap, and the read is taken again (three times, then the gap is the error).
pub fn peek(dir: &Path, now: Instant) -> Result<StateStats, StoreError> {
    let snap_path = dir.join(SNAPSHOT);
    let mut last = None;
    for _ in 0..3 {
        let mut state = match std::fs::read(&snap_path) {
            Ok(b) => crate::json::from_slice::<State>(&b)
                .map_err(|e| damaged(&snap_path, format!("not a state snapshot: {e}")))?,
            // No snapshot: no store here (an agent writes one when it opens the store).
            Err(e) => return Err(io(&snap_path)(e)),
        };
        match replay(&mut state, &dir.join(JOURNAL_FOLDING))
            .and_then(|()| replay(&mut state, &dir.join(JOURNAL)))
        {
            Ok(()) => return Ok(state.stats(now)),
            Err(e @ StoreError::Damaged { .. }) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or(StoreError::Poisoned))
}

/// Reads a journal file whole, for tools and tests: its events' count and valid length.
pub fn inspect(path: &Path) -> Result<(usize, usize), StoreError> {
    let mut f = std::fs::File::open(path).map_err(io(path))?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes).map_err(io(path))?;
    let (events, valid) = read_frames(path, &bytes)?;
    Ok((events.len(), valid))
}

impl Drop for JournalStore {
    /// A running fold finishes before the store (and its lock on the directory) goes: the next
    /// opening must not read a snapshot being written.
    fn drop(&mut self) {
        let fold = match self.inner.get_mut() {
            Ok(i) => i.fold.take(),
            Err(p) => p.into_inner().fold.take(),
        };
        if let Some(h) = fold {
            let _ = h.join();
        }
    }
}
