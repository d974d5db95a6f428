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
use crate::governance::model::{GroupFile, Root};
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

fn in_force(t: &Value, at: crate::time::Instant) -> InForce {
    let parse = |k: &str| {
        t.get(k)
            .and_then(Value::as_str)
            .and_then(|s| crate::time::parse(s).ok())
    };
    match t.get("status").and_then(Value::as_str) {
        Some("active") => {
            if parse("expires").is_some_and(|e| at >= e) {
                InForce::Expired
            } else if parse("valid_from").is_some_and(|v| at < v) {
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

/// Governed documents of one kind in `tree`: path → (bytes, parsed).
fn docs(tree: &Tree, top: &str) -> BTreeMap<String, (Vec<u8>, Value)> {
    tree.entries
        .keys()
        .filter(|p| {
            p.top() == top
                && p.as_str().ends_with(".json")
                && p.signed_file().is_none()
                && p.stamped_envelope().is_none()
        })
        .filter_map(|p| {
            let b = tree.read(p).ok()?.into_owned();
            let v: Value = serde_json::from_slice(&b).ok()?;
            Some((p.to_string(), (b, v)))
        })
        .collect()
}

fn groups(tree: &Tree) -> BTreeMap<String, (Vec<u8>, GroupFile)> {
    tree.entries
        .keys()
        .filter(|p| p.as_str().starts_with("keys/groups/") && p.as_str().ends_with(".json"))
        .filter_map(|p| {
            let b = tree.read(p).ok()?.into_owned();
            let g: GroupFile = serde_json::from_slice(&b).ok()?;
            Some((p.to_string(), (b, g)))
        })
        .collect()
}

fn root(tree: &Tree) -> Option<Root> {
    tree.file(crate::trust::ROOT_PATH)
        .and_then(|b| serde_json::from_slice(&b).ok())
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

fn subject(path: &str, version: Option<u64>, bytes: &[u8]) -> Value {
    json!({ "path": path, "version": version, "sha256": sha256_hex(bytes) })
}

/// The commands from `from` (None: an empty state) to `to`. What was in force at `from` is
/// judged at `from_at` (when that state was current, e.g. its commit time), what is in force at
/// `to` at `at`, so a treaty active then and past its expiry now is expired.
pub fn emit(
    from: Option<(&Tree, crate::time::Instant)>,
    to: &Tree,
    src: &Source,
    at: crate::time::Instant,
) -> Vec<Value> {
    let from_at = from.map_or(at, |(_, t)| t);
    let from = from.map(|(t, _)| t);
    let mut out: Vec<(usize, String, Value)> = Vec::new();
    let mut push = |op: &str, sort: String, v: Value| {
        let rank = OPS.iter().position(|o| *o == op).unwrap_or(OPS.len());
        out.push((rank, sort, v));
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
                command(
                    "key.revoke",
                    src,
                    subject(crate::trust::ROOT_PATH, Some(r.version), &rbytes),
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
            command(
                "group.update",
                src,
                subject(&path, None, &bytes),
                key(&["group.update", &path, &g.group_id]),
                body,
            ),
        );
    }
    // Policies new or changed.
    let op = from.map(|t| docs(t, "policies")).unwrap_or_default();
    for (path, (bytes, v)) in docs(to, "policies") {
        if op.get(&path).is_some_and(|(b, _)| *b == bytes) {
            continue;
        }
        let version = v.get("version").and_then(Value::as_u64);
        let digest = sha256_hex(&bytes);
        let mut body = Map::new();
        body.insert("policy".into(), v);
        push(
            "policy.update",
            path.clone(),
            command(
                "policy.update",
                src,
                subject(&path, version, &bytes),
                key(&[
                    "policy.update",
                    &path,
                    &version.unwrap_or(0).to_string(),
                    &digest,
                ]),
                body,
            ),
        );
    }
    // Treaties: transitions of what is in force.
    let ot = from.map(|t| docs(t, "treaties")).unwrap_or_default();
    for (path, (bytes, v)) in docs(to, "treaties") {
        let before = ot.get(&path);
        let was = before.map_or(InForce::No, |(_, o)| in_force(o, from_at));
        let now = in_force(&v, at);
        let version = v.get("version").and_then(Value::as_u64);
        let digest = sha256_hex(&bytes);
        let idem = |op: &str| key(&[op, &path, &version.unwrap_or(0).to_string(), &digest]);
        let mut body = Map::new();
        let op = match (was, now) {
            (InForce::Active, InForce::Active) => {
                let Some((ob, o)) = before else { continue };
                if *ob == bytes {
                    continue;
                }
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
                body.insert("treaty".into(), v.clone());
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
            command(op, src, subject(&path, version, &bytes), idem(op), body),
        );
    }
    out.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    out.into_iter().map(|(_, _, v)| v).collect()
}
