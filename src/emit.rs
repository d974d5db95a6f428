//! `treaty emit`: the ordered commands that take a runtime from one approved state to another.
//!
//! Owns the state machine of treaties as a runtime sees them (active, suspended, revoked,
//! expired, or not in force) and the command format (`schemas/command.schema.json`): one JSON
//! object per command with `op`, its source, its subject and a stable idempotency key, in an
//! order a runtime can apply one by one — `key.revoke` and `group.update` before anything signed
//! by them, then `policy.update`, `treaty.activate`, `treaty.update`, `treaty.suspend`,
//! `treaty.revoke`, `treaty.expire`; within an op, by path. It never judges approval itself:
//! callers pass only states that verified.

use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

use crate::crypto::sha256_hex;
use crate::facts::{FactCache, Life};
use crate::governance::model::{GroupFile, Root};
use crate::path::RepoPath;
use crate::source::Tree;

/// Where the commands come from (repeated in every command).
#[derive(Debug, Clone)]
pub struct Source {
    pub repository: String,
    pub commit: String,
    pub root_version: u64,
    pub snapshot_version: Option<u64>,
}

/// The op order (index = rank).
pub const OPS: [&str; 8] = [
    "key.revoke",
    "group.update",
    "policy.update",
    "treaty.activate",
    "treaty.update",
    "treaty.suspend",
    "treaty.revoke",
    "treaty.expire",
];

/// A treaty as the runtime must treat it at `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InForce {
    No,
    Active,
    Suspended,
    Revoked,
    Expired,
}

fn in_force(t: &Life, at: crate::time::Instant) -> InForce {
    let parse = |k: &Option<String>| k.as_deref().and_then(|s| crate::time::parse(s).ok());
    match t.status.as_deref() {
        Some("active") => {
            if parse(&t.expires).is_some_and(|e| at >= e) {
                InForce::Expired
            } else if parse(&t.valid_from).is_some_and(|v| at < v) {
                InForce::No
            } else {
                InForce::Active
            }
        }
        Some("suspended") => InForce::Suspended,
        Some("revoked") => InForce::Revoked,
        _ => InForce::No,
    }
}

/// The governed documents of one kind (`top`) in `tree`, by path.
fn paths<'t>(tree: &'t Tree, top: &str) -> Vec<&'t RepoPath> {
    tree.entries
        .keys()
        .filter(|p| {
            p.top() == top
                && p.as_str().ends_with(".json")
                && p.signed_file().is_none()
                && p.stamped_envelope().is_none()
        })
        .collect()
}

/// The parsed document at `p` (`None` when unreadable or not JSON).
fn parsed(tree: &Tree, p: &RepoPath) -> Option<Value> {
    crate::json::from_slice(&tree.read(p).ok()?).ok()
}

fn groups(tree: &Tree) -> BTreeMap<String, (Vec<u8>, GroupFile)> {
    tree.entries
        .keys()
        .filter(|p| p.as_str().starts_with("keys/groups/") && p.as_str().ends_with(".json"))
        .filter_map(|p| {
            let b = tree.read(p).ok()?.into_owned();
            let g: GroupFile = crate::json::from_slice(&b).ok()?;
            Some((p.to_string(), (b, g)))
        })
        .collect()
}

fn root(tree: &Tree) -> Option<Root> {
    tree.file(crate::trust::ROOT_PATH)
        .and_then(|b| crate::json::from_slice(&b).ok())
}

fn key(parts: &[&str]) -> String {
    // Length-prefixed, so no two different commands share a key.
    let mut v = Vec::new();
    for p in parts {
        v.extend_from_slice(&(p.len() as u64).to_be_bytes());
        v.extend_from_slice(p.as_bytes());
    }
    sha256_hex(&v)
}

fn command(
    op: &str,
    src: &Source,
    subject: Value,
    idem: String,
    body: Map<String, Value>,
) -> Value {
    let mut o = Map::new();
    o.insert("op".into(), op.into());
    o.insert(
        "source".into(),
        json!({
            "repository": src.repository,
            "commit": src.commit,
            "root_version": src.root_version,
            "snapshot_version": src.snapshot_version,
        }),
    );
    o.insert("subject".into(), subject);
    o.insert("idempotency_key".into(), idem.into());
    o.extend(body);
    Value::Object(o)
}

fn subject(path: &str, version: Option<u64>, sha256: &str) -> Value {
    json!({ "path": path, "version": version, "sha256": sha256 })
}

/// The commands from `from` (None: an empty state) to `to`. What was in force at `from` is
/// judged at `from_at` (when that state was current, e.g. its commit time), what is in force at
/// `to` at `at`, so a treaty active then and past its expiry now is expired. Documents are
/// compared by digest through `facts`, so only those that changed or changed state are parsed.
pub fn emit(
    from: Option<(&Tree, crate::time::Instant)>,
    to: &Tree,
    src: &Source,
    at: crate::time::Instant,
    facts: &mut FactCache,
) -> Vec<Value> {
    plan(from, to, at, facts).render(src)
}

/// Commands worked out but not yet stamped with their [`Source`] (so the agent can plan while
/// the same state is still being verified, and render only once it is approved).
#[derive(Debug, Default)]
pub struct Plan {
    items: Vec<Planned>,
}

/// One command without its source.
#[derive(Debug)]
struct Planned {
    /// The op's rank in [`OPS`], then the subject: the apply order.
    rank: usize,
    sort: String,
    op: &'static str,
    subject: Value,
    idempotency_key: String,
    body: Map<String, Value>,
}

impl Plan {
    /// The commands, in apply order, each carrying `src`.
    pub fn render(mut self, src: &Source) -> Vec<Value> {
        self.items
            .sort_by(|a, b| (a.rank, &a.sort).cmp(&(b.rank, &b.sort)));
        self.items
            .into_iter()
            .map(|p| command(p.op, src, p.subject, p.idempotency_key, p.body))
            .collect()
    }
}

/// [`emit`] without the source: what changed from `from` to `to`.
pub fn plan(
    from: Option<(&Tree, crate::time::Instant)>,
    to: &Tree,
    at: crate::time::Instant,
    facts: &mut FactCache,
) -> Plan {
    let from_at = from.map_or(at, |(_, t)| t);
    let from = from.map(|(t, _)| t);
    let mut out = Plan::default();
    let mut push = |op: &'static str,
                    sort: String,
                    (subject, idem, body): (Value, String, Map<String, Value>)| {
        let rank = OPS.iter().position(|o| *o == op).unwrap_or(OPS.len());
        out.items.push(Planned {
            rank,
            sort,
            op,
            subject,
            idempotency_key: idem,
            body,
        });
    };
    // Revocations new in `to`.
    let old_root = from.and_then(root);
    let new_root = root(to);
    if let Some(r) = &new_root {
        let rbytes = to.file(crate::trust::ROOT_PATH).unwrap_or_default();
        for rev in &r.revoked {
            let before = old_root
                .as_ref()
                .and_then(|o| o.revoked.iter().find(|x| x.keyid == rev.keyid));
            if before.is_some_and(|b| b.reason == rev.reason) {
                continue;
            }
            let reason = serde_json::to_value(rev.reason).unwrap_or(Value::Null);
            let mut body = Map::new();
            body.insert("keyid".into(), rev.keyid.clone().into());
            body.insert("reason".into(), reason.clone());
            body.insert("revoked_at".into(), rev.time.clone().into());
            push(
                "key.revoke",
                rev.keyid.clone(),
                (
                    subject(
                        crate::trust::ROOT_PATH,
                        Some(r.version),
                        &sha256_hex(&rbytes),
                    ),
                    key(&["key.revoke", &rev.keyid, reason.as_str().unwrap_or("")]),
                    body,
                ),
            );
        }
    }
    // Groups whose pinned identity changed (members or threshold), or that are new.
    let og = from.map(groups).unwrap_or_default();
    for (path, (bytes, g)) in groups(to) {
        if og.get(&path).is_some_and(|(_, o)| o.group_id == g.group_id) {
            continue;
        }
        let mut body = Map::new();
        body.insert("name".into(), g.name.clone().into());
        body.insert("group_id".into(), g.group_id.clone().into());
        body.insert("threshold".into(), g.threshold.into());
        body.insert(
            "members".into(),
            g.members
                .iter()
                .map(|m| Value::from(m.id.clone()))
                .collect(),
        );
        push(
            "group.update",
            path.clone(),
            (
                subject(&path, None, &sha256_hex(&bytes)),
                key(&["group.update", &path, &g.group_id]),
                body,
            ),
        );
    }
    // Policies new or changed.
    for p in paths(to, "policies") {
        let Some(nf) = facts.get(to, p) else { continue };
        if from
            .and_then(|t| facts.get(t, p))
            .is_some_and(|of| of.sha256 == nf.sha256)
        {
            continue;
        }
        let Some(v) = parsed(to, p) else { continue };
        let path = p.to_string();
        let version = nf.version;
        let mut body = Map::new();
        body.insert("policy".into(), v);
        push(
            "policy.update",
            path.clone(),
            (
                subject(&path, version, &nf.sha256),
                key(&[
                    "policy.update",
                    &path,
                    &version.unwrap_or(0).to_string(),
                    &nf.sha256,
                ]),
                body,
            ),
        );
    }
    // Treaties: transitions of what is in force. Only a treaty whose bytes changed, or that
    // becomes active, is parsed; every other transition is decided from its facts.
    for p in paths(to, "treaties") {
        let Some(nf) = facts.get(to, p) else { continue };
        let Some(life) = &nf.life else { continue };
        let of = from.and_then(|t| facts.get(t, p).map(|f| (t, f)));
        let was = of
            .as_ref()
            .and_then(|(_, f)| f.life.as_ref())
            .map_or(InForce::No, |l| in_force(l, from_at));
        let now = in_force(life, at);
        let path = p.to_string();
        let version = nf.version;
        let digest = &nf.sha256;
        let idem = |op: &str| key(&[op, &path, &version.unwrap_or(0).to_string(), digest]);
        let mut body = Map::new();
        let op = match (was, now) {
            (InForce::Active, InForce::Active) => {
                let Some((ot, of)) = &of else { continue };
                if of.sha256 == nf.sha256 {
                    continue;
                }
                let (Some(o), Some(v)) = (parsed(ot, p), parsed(to, p)) else {
                    continue;
                };
                let mut changes = Map::new();
                if let (Some(o), Some(n)) = (o.as_object(), v.as_object()) {
                    for (k, nv) in n {
                        if o.get(k) != Some(nv) {
                            changes.insert(k.clone(), nv.clone());
                        }
                    }
                    for k in o.keys().filter(|k| !n.contains_key(*k)) {
                        changes.insert(k.clone(), Value::Null);
                    }
                }
                body.insert("changes".into(), Value::Object(changes));
                "treaty.update"
            }
            (w, InForce::Active) if w != InForce::Active => {
                let Some(v) = parsed(to, p) else { continue };
                body.insert("treaty".into(), v);
                "treaty.activate"
            }
            (InForce::Active, InForce::Suspended) => "treaty.suspend",
            (w, InForce::Revoked) if w != InForce::Revoked && w != InForce::No => "treaty.revoke",
            (InForce::Active, InForce::Expired) => "treaty.expire",
            (InForce::Active, InForce::No) => "treaty.suspend",
            _ => continue,
        };
        push(
            op,
            path.clone(),
            (subject(&path, version, digest), idem(op), body),
        );
    }
    out
}
