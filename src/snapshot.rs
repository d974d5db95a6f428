//! Whole-state consistency and freshness (TUF's snapshot and timestamp roles, for a git tree):
//! `state/snapshot.json` lists every governed document with its version and digests and the
//! root version; `state/heartbeat.json` names the snapshot's digest and a short expiry. Both
//! are governed files approved by the group the root names in its `snapshot` role.
//!
//! Owns their formats, building them from a tree, and the checks an agent makes: the snapshot
//! matches the tree exactly (nothing missing, nothing extra, every version and digest equal),
//! and the heartbeat names this snapshot and is fresh. Approval of the files themselves is
//! [`crate::verify`]'s job.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::crypto::sha256_hex;
use crate::facts::FactCache;
use crate::governance::is_governed;
use crate::source::Tree;

/// The role whose group approves `state/`.
pub const SNAPSHOT_ROLE: &str = crate::governance::model::Role::Snapshot.as_str();
pub use crate::governance::{HEARTBEAT_PATH, SNAPSHOT_PATH};

/// One governed document in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    /// The document's `version` (absent for groups, whose version is the root's pin).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::json::present"
    )]
    pub version: Option<u64>,
    pub sha256: String,
    pub blake3: String,
}

/// `state/snapshot.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    pub spec_version: String,
    pub version: u64,
    pub root_version: u64,
    /// Every governed document (envelopes, timestamps and `state/` itself excepted), by path.
    pub files: BTreeMap<String, Item>,
}

/// `state/heartbeat.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    pub spec_version: String,
    /// Monotonic: each refresh is a new version.
    pub version: u64,
    pub snapshot_version: u64,
    pub snapshot_sha256: String,
    pub issued: String,
    pub expires: String,
}

/// The documents a snapshot covers, with their items, from `tree`.
pub fn items(tree: &Tree) -> BTreeMap<String, Item> {
    items_with(tree, &mut FactCache::in_memory())
}

/// [`items`], with facts of unchanged blobs taken from `facts` rather than re-read.
pub fn items_with(tree: &Tree, facts: &mut FactCache) -> BTreeMap<String, Item> {
    tree.entries
        .keys()
        .filter(|p| {
            is_governed(p)
                && p.top() != "state"
                && p.signed_file().is_none()
                && p.stamped_envelope().is_none()
        })
        .filter_map(|p| {
            let f = facts.get(tree, p)?;
            Some((
                p.to_string(),
                Item {
                    version: f.version,
                    sha256: f.sha256,
                    blake3: f.blake3,
                },
            ))
        })
        .collect()
}

/// A new snapshot of `tree`: version one above the tree's current snapshot (or 1).
pub fn build(tree: &Tree, root_version: u64) -> Snapshot {
    let prev = tree
        .file(SNAPSHOT_PATH)
        .and_then(|b| crate::json::from_slice::<Snapshot>(&b).ok())
        .map_or(0, |s| s.version);
    Snapshot {
        spec_version: crate::SPEC_VERSION.to_owned(),
        version: prev.saturating_add(1),
        root_version,
        files: items(tree),
    }
}

/// Pretty JSON with a trailing newline (what is written and signed).
pub fn to_bytes<T: Serialize>(v: &T) -> Vec<u8> {
    let mut b = serde_json::to_vec_pretty(v).unwrap_or_default();
    b.push(b'\n');
    b
}

/// Every way `tree` differs from its snapshot; empty when they match exactly.
pub fn mismatches(
    tree: &Tree,
    snap: &Snapshot,
    root_version: u64,
    facts: &mut FactCache,
) -> Vec<String> {
    root_mismatch(snap, root_version)
        .into_iter()
        .chain(file_mismatches(tree, snap, facts))
        .collect()
}

/// Whether the snapshot names another root version than the tree's.
pub fn root_mismatch(snap: &Snapshot, root_version: u64) -> Option<String> {
    (snap.root_version != root_version).then(|| {
        format!(
            "the snapshot names root version {}, the tree has {root_version}",
            snap.root_version
        )
    })
}

/// Every governed document missing from, extra to, or different from the snapshot.
pub fn file_mismatches(tree: &Tree, snap: &Snapshot, facts: &mut FactCache) -> Vec<String> {
    let mut out = Vec::new();
    let have = items_with(tree, facts);
    for (p, want) in &snap.files {
        match have.get(p) {
            None => out.push(format!("{p}: in the snapshot but missing from the tree")),
            Some(got) if got != want => out.push(format!(
                "{p}: differs from the snapshot (version {:?} vs {:?}, or its digests)",
                got.version, want.version
            )),
            Some(_) => {}
        }
    }
    for p in have.keys().filter(|p| !snap.files.contains_key(*p)) {
        out.push(format!("{p}: in the tree but not in the snapshot"));
    }
    out
}

/// Why a heartbeat cannot be made, a duration cannot be read, or a heartbeat is not fresh.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("{SNAPSHOT_PATH}: not a snapshot: {0}")]
    NotASnapshot(String),
    #[error("{text:?} is not a duration like 24h ({why})")]
    BadDuration { text: String, why: &'static str },
    #[error("the heartbeat names another snapshot")]
    OtherSnapshot,
    #[error("heartbeat {field}: {reason}")]
    BadTime { field: &'static str, reason: String },
    #[error("the heartbeat was issued in the future ({issued})")]
    IssuedInTheFuture { issued: String },
    #[error("the heartbeat expired at {expires} (freeze?)")]
    Expired { expires: String },
    #[error("the heartbeat is {age} old, more than the {max} allowed (freeze?)")]
    TooOld { age: String, max: String },
}

/// A new heartbeat over `snapshot_bytes`, valid for `ttl` from `now`.
pub fn heartbeat(
    tree: &Tree,
    snapshot_bytes: &[u8],
    now: crate::time::Instant,
    ttl: time::Duration,
) -> Result<Heartbeat, SnapshotError> {
    let snap: Snapshot = crate::json::from_slice(snapshot_bytes)
        .map_err(|e| SnapshotError::NotASnapshot(e.to_string()))?;
    let prev = tree
        .file(HEARTBEAT_PATH)
        .and_then(|b| crate::json::from_slice::<Heartbeat>(&b).ok())
        .map_or(0, |h| h.version);
    Ok(Heartbeat {
        spec_version: crate::SPEC_VERSION.to_owned(),
        version: prev.saturating_add(1),
        snapshot_version: snap.version,
        snapshot_sha256: sha256_hex(snapshot_bytes),
        issued: crate::time::format(now),
        expires: crate::time::format(now + ttl),
    })
}

/// The longest duration [`parse_ttl`] accepts: ten years. A heartbeat or an interval longer
/// than that is a typo, and a bound keeps every sum with an instant meaningful.
pub const MAX_TTL_SECS: i64 = 3653 * 86_400;

/// Parses a duration like `30s`, `15m`, `24h`, `7d` (at most [`MAX_TTL_SECS`]).
pub fn parse_ttl(s: &str) -> Result<time::Duration, SnapshotError> {
    let bad = |why| SnapshotError::BadDuration {
        text: s.to_owned(),
        why,
    };
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = n.parse().map_err(|_| bad("digits, then s, m, h or d"))?;
    let per = match unit {
        "s" => 1,
        "m" => 60,
        "h" | "" => 3600,
        "d" => 86_400,
        _ => return Err(bad("the unit must be s, m, h or d")),
    };
    let secs = n
        .checked_mul(per)
        .filter(|&x| x <= MAX_TTL_SECS)
        .ok_or(bad("longer than the 3653 days allowed"))?;
    if secs <= 0 {
        return Err(bad("a duration must be positive"));
    }
    Ok(time::Duration::seconds(secs))
}

/// Checks a heartbeat against the snapshot bytes it must name and the agent's freshness rule:
/// issued no more than `max_age` ago and not expired, both with `skew` of allowance.
pub fn check_heartbeat(
    hb: &Heartbeat,
    snapshot_bytes: &[u8],
    now: crate::time::Instant,
    max_age: time::Duration,
    skew: time::Duration,
) -> Result<(), SnapshotError> {
    if hb.snapshot_sha256 != sha256_hex(snapshot_bytes) {
        return Err(SnapshotError::OtherSnapshot);
    }
    let time = |field, v: &str| {
        crate::time::parse(v).map_err(|e| SnapshotError::BadTime {
            field,
            reason: e.to_string(),
        })
    };
    let issued = time("issued", &hb.issued)?;
    let expires = time("expires", &hb.expires)?;
    if issued > now + skew {
        return Err(SnapshotError::IssuedInTheFuture {
            issued: hb.issued.clone(),
        });
    }
    if now > expires + skew {
        return Err(SnapshotError::Expired {
            expires: hb.expires.clone(),
        });
    }
    if now - issued > max_age + skew {
        return Err(SnapshotError::TooOld {
            age: (now - issued).to_string(),
            max: max_age.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_parse_and_heartbeats_go_stale() {
        assert_eq!(parse_ttl("24h").unwrap(), time::Duration::hours(24));
        assert_eq!(parse_ttl("90s").unwrap(), time::Duration::seconds(90));
        assert!(parse_ttl("0h").is_err() && parse_ttl("1w").is_err() && parse_ttl("h").is_err());
        let now = crate::time::parse("2026-11-22T00:00:00Z").unwrap();
        let hb = Heartbeat {
            spec_version: "1.0".into(),
            version: 1,
            snapshot_version: 1,
            snapshot_sha256: sha256_hex(b"snap"),
            issued: "2026-11-21T23:00:00Z".into(),
            expires: "2026-11-22T23:00:00Z".into(),
        };
        let (day, skew) = (time::Duration::hours(24), time::Duration::minutes(5));
        assert!(check_heartbeat(&hb, b"snap", now, day, skew).is_ok());
        assert!(check_heartbeat(&hb, b"other", now, day, skew).is_err());
        assert!(check_heartbeat(&hb, b"snap", now, time::Duration::minutes(30), skew).is_err());
        let later = now + time::Duration::hours(30);
        assert!(check_heartbeat(&hb, b"snap", later, time::Duration::hours(48), skew).is_err());
        let early = now - time::Duration::hours(2);
        assert!(check_heartbeat(&hb, b"snap", early, day, skew).is_err());
    }
}
