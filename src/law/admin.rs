//! Operators' commands on the replay and quota state (docs/law.md § Operating the state):
//! `stats` and `clear`, each recorded in the agent's audit log (its mirror's
//! `refs/treaty/audit`) with who ran it, on which store, and why.
//!
//! A clear is the one way an operator can make the store forget; it must never reopen the
//! replay window, so it moves the store's birth ([`LawStore::clear`]), and it is written down
//! before it happens: an entry `agent.state-clear` with verdict `clearing` (the figures before
//! and the reason) is appended first — if that fails, nothing is cleared — and one with verdict
//! `cleared` (the new birth) after.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::time::Instant;

use super::store::{LawStore, StateStats, StoreError};

/// The longest reason a clear takes (characters).
pub const MAX_REASON: usize = 500;
/// Appends tried when another writer (the agent) moved the log's ref meanwhile.
const APPEND_TRIES: usize = 5;

/// Why an operator's command did nothing (or, for [`AdminError::Unrecorded`], did it without
/// its record).
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: no audit log to record this in (the agent keeps it in its mirror; has it pulled once under this --state?)")]
    NoMirror { path: PathBuf },
    #[error("{path}: the audit log: {source}")]
    Audit {
        path: PathBuf,
        #[source]
        source: crate::audit::AuditError,
    },
    #[error("--reason: {0}")]
    Reason(&'static str),
    #[error("the state was cleared (born again at {birth}) but the audit log could not record it: {source}; record it by hand")]
    Unrecorded {
        birth: String,
        #[source]
        source: Box<AdminError>,
    },
}

/// Where the record goes and what it says about who acted.
#[derive(Debug, Clone)]
pub struct Record<'a> {
    /// The agent's mirror (`STATE/mirror.git`).
    pub mirror: &'a Path,
    /// The store, as operators name it (`embedded STATE/law`, `redis://host:6379/0`).
    pub store: &'a str,
    /// Who ran the command (the login name; escaped).
    pub operator: &'a str,
}

/// The figures, recorded as an `agent.state-stats` entry.
pub fn stats(
    store: &dyn LawStore,
    now: Instant,
    rec: &Record<'_>,
) -> Result<StateStats, AdminError> {
    let s = store.stats(now)?;
    append(
        rec,
        entry(rec, "agent.state-stats", "read", now, json!({ "stats": s })),
    )?;
    Ok(s)
}

/// Figures read elsewhere (the embedded store peeked at while its agent runs), recorded alike.
pub fn record_stats(s: &StateStats, now: Instant, rec: &Record<'_>) -> Result<(), AdminError> {
    append(
        rec,
        entry(rec, "agent.state-stats", "read", now, json!({ "stats": s })),
    )
}

/// What a clear did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cleared {
    pub before: StateStats,
    pub birth: Instant,
}

/// A reason must say something, fit an entry and carry no control characters (it is shown
/// to the next operator who reads the log).
pub fn check_reason(reason: &str) -> Result<&str, AdminError> {
    let r = reason.trim();
    if r.is_empty() {
        return Err(AdminError::Reason(
            "say why the state is cleared (it goes in the audit log)",
        ));
    }
    if r.chars().count() > MAX_REASON {
        return Err(AdminError::Reason("at most 500 characters"));
    }
    if r.chars().any(char::is_control) {
        return Err(AdminError::Reason(
            "no control characters (newlines, escapes)",
        ));
    }
    Ok(r)
}

/// Records the intent, clears, records the outcome (see the module doc).
pub fn clear(
    store: &dyn LawStore,
    now: Instant,
    reason: &str,
    rec: &Record<'_>,
) -> Result<Cleared, AdminError> {
    let reason = check_reason(reason)?;
    let before = store.stats(now)?;
    append(
        rec,
        entry(
            rec,
            "agent.state-clear",
            "clearing",
            now,
            json!({ "reason": reason, "before": before }),
        ),
    )?;
    let birth = store.clear(now)?;
    let done = entry(
        rec,
        "agent.state-clear",
        "cleared",
        now,
        json!({ "reason": reason, "birth": crate::time::format(birth) }),
    );
    append(rec, done).map_err(|e| AdminError::Unrecorded {
        birth: crate::time::format(birth),
        source: Box::new(e),
    })?;
    Ok(Cleared { before, birth })
}

fn entry(rec: &Record<'_>, kind: &str, verdict: &str, now: Instant, details: Value) -> Value {
    let mut details = details;
    if let Some(o) = details.as_object_mut() {
        o.insert(
            "operator".into(),
            crate::text::escape(crate::text::clip(rec.operator, 100)).into(),
        );
    }
    json!({
        "kind": kind,
        "time": crate::time::format(now),
        "verdict": verdict,
        "subject": { "store": rec.store },
        "details": details,
    })
}

/// Appends one entry (compare-and-swap on the log's ref: the agent may append meanwhile, so a
/// moved ref is read again, [`APPEND_TRIES`] times).
fn append(rec: &Record<'_>, entry: Value) -> Result<(), AdminError> {
    let path = rec.mirror.to_path_buf();
    let audit = |source| AdminError::Audit {
        path: path.clone(),
        source,
    };
    let repo = git2::Repository::open_bare(rec.mirror)
        .map_err(|_| AdminError::NoMirror { path: path.clone() })?;
    let bytes =
        crate::audit::entry_bytes(&entry).map_err(|e| audit(crate::audit::AuditError::Entry(e)))?;
    let mut last = None;
    for _ in 0..APPEND_TRIES {
        let edge = crate::audit::store::resolve(&repo, None)
            .and_then(|head| crate::audit::store::load_for_append(&repo, head))
            .map_err(audit)?;
        match crate::audit::store::append_to(
            &repo,
            &edge,
            std::slice::from_ref(&bytes),
            "audit: an operator's command on the law state",
        ) {
            Ok(_) => return Ok(()),
            Err(e) => last = Some(e),
        }
    }
    Err(audit(last.unwrap_or(crate::audit::AuditError::Refused(
        "the log kept moving".into(),
    ))))
}
